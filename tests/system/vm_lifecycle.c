/*
 * VM lifecycle leak check: assemble, run and tear down machines of several
 * sizes in one process, and check that the process ends each round with the
 * same file descriptors and threads it started with. Also a machine whose
 * assembly fails half-way must leave nothing behind.
 *
 * Each machine has its control socket and thread, as khyve's main() sets
 * them up (in a private RUNDIR): after the VM stops, a client asks it for
 * info, stats, topology and vCPU 0's registers and keeps its connection
 * open across the teardown, which must close it and remove the socket.
 *
 *   vm_lifecycle GUEST_BIN N...
 * Prints the guest's output (the smp micro-guest's count) and one line per
 * round; exits 1 on any leak or unexpected status.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "machine.h"
#include "vm.h"

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - (strcmp(dir, "/proc/self/fd") == 0);  /* opendir's own fd */
}

static char rundir[64];

/*
 * Ask the stopped VM's control thread four questions on one connection;
 * the connection (fd in *keep) is left open for the teardown to close.
 */
static int query_control(int *keep)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/lifecycle.sock", rundir);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { 10, 0 };
	*keep = fd;
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		perror("control socket");
		return 1;
	}
	static const char req[] = "khyve/1 info\nkhyve/1 stats\nkhyve/1 topology\nkhyve/1 regs 0\n";
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
		perror("control request");
		return 1;
	}
	static char buf[1 << 20];
	size_t got = 0;
	int lines = 0;
	while (lines < 4 && got < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++)
			lines += buf[got + (size_t)i] == '\n';
		got += (size_t)r;
	}
	buf[got] = '\0';
	int ok = 0;
	for (char *p = buf; (p = strstr(p, "{\"ok\":true,")); p++)
		ok++;
	if (lines != 4 || ok != 4 || !strstr(buf, "\"rip\":")) {
		printf("control: expected 4 good answers, got: %.300s\n", buf);
		return 1;
	}
	return 0;
}

static int round_trip(const char *guest, const char *cpus, int expect_status)
{
	static struct machine m;
	char err[512];
	int fds = count_entries("/proc/self/fd"), threads = count_entries("/proc/self/task");
	config_init(&m.cfg);
	config_set(&m.cfg, "name", "lifecycle");
	config_set(&m.cfg, "cpus", cpus);
	config_set(&m.cfg, "memory.size", "64M");
	config_set(&m.cfg, "boot.raw", guest);
	config_set(&m.cfg, "lpc.com1.path", "stdio");
	/* For a quick look on a kvm_pvm host; the real run is in the testbox. */
	if (getenv("KHYVE_TEST_ALLOW_EMULATED"))
		config_set(&m.cfg, "kvm.allow_emulated", "true");
	int status, bad = 0, client = -1;
	struct control *ctl = control_create("lifecycle", err, sizeof(err));
	if (!ctl) {
		printf("control socket: %s\n", err);
		status = VM_EXIT_ERROR;
		bad = 1;
	} else if (machine_assemble(&m, err, sizeof(err))) {
		printf("assembly failed: %s\n", err);
		status = VM_EXIT_ERROR;
	} else if (control_start(ctl, &m.vm, m.hotplug, err, sizeof(err))) {
		printf("control thread: %s\n", err);
		status = VM_EXIT_ERROR;
		bad = 1;
	} else {
		status = vm_run(&m.vm);
		bad |= query_control(&client);
	}
	control_destroy(ctl);
	if (client >= 0) {
		char c;
		struct stat st;
		char path[sizeof(rundir) + 32];
		snprintf(path, sizeof(path), "%s/lifecycle.sock", rundir);
		if (read(client, &c, 1) != 0 || stat(path, &st) == 0) {
			printf("control: teardown left the connection open or the socket behind\n");
			bad = 1;
		}
		close(client);
	}
	machine_disassemble(&m);
	config_free(&m.cfg);
	fflush(stdout);
	int fds_after = count_entries("/proc/self/fd"), threads_after = count_entries("/proc/self/task");
	printf("cpus=%s: status %d; fds %d -> %d; threads %d -> %d\n", cpus, status, fds,
	       fds_after, threads, threads_after);
	return !bad && status == expect_status && fds == fds_after && threads == threads_after ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: vm_lifecycle GUEST_BIN N...\n");
		return 2;
	}
	/* A private RUNDIR: this test must not meet any real VM's socket. */
	snprintf(rundir, sizeof(rundir), "/tmp/khyve-lifecycle-XXXXXX");
	if (!mkdtemp(rundir)) {
		perror("mkdtemp");
		return 1;
	}
	setenv("KHYVE_RUNTIME_DIR", rundir, 1);
	int bad = 0;
	for (int i = 2; i < argc; i++)
		bad |= round_trip(argv[1], argv[i], VM_EXIT_POWEROFF);
	/* Fails after the VM, vCPUs, PCI and UARTs exist: the guest image is missing. */
	bad |= round_trip("/nonexistent/guest.bin", "4", VM_EXIT_ERROR);
	rmdir(rundir);
	printf(bad ? "LEAK or wrong status\n" : "no leaks\n");
	return bad;
}
