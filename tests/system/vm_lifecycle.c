/*
 * VM lifecycle leak check: assemble, run and tear down machines of several
 * sizes in one process, and check that the process ends each round with the
 * same file descriptors and threads it started with. Also a machine whose
 * assembly fails half-way must leave nothing behind.
 *
 *   vm_lifecycle GUEST_BIN N...
 * Prints the guest's output (the smp micro-guest's count) and one line per
 * round; exits 1 on any leak or unexpected status.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
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
	int status;
	if (machine_assemble(&m, err, sizeof(err))) {
		printf("assembly failed: %s\n", err);
		status = VM_EXIT_ERROR;
	} else {
		status = vm_run(&m.vm);
	}
	machine_disassemble(&m);
	config_free(&m.cfg);
	fflush(stdout);
	int fds_after = count_entries("/proc/self/fd"), threads_after = count_entries("/proc/self/task");
	printf("cpus=%s: status %d; fds %d -> %d; threads %d -> %d\n", cpus, status, fds,
	       fds_after, threads, threads_after);
	return status == expect_status && fds == fds_after && threads == threads_after ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: vm_lifecycle GUEST_BIN N...\n");
		return 2;
	}
	int bad = 0;
	for (int i = 2; i < argc; i++)
		bad |= round_trip(argv[1], argv[i], VM_EXIT_POWEROFF);
	/* Fails after the VM, vCPUs, PCI and UARTs exist: the guest image is missing. */
	bad |= round_trip("/nonexistent/guest.bin", "4", VM_EXIT_ERROR);
	printf(bad ? "LEAK or wrong status\n" : "no leaks\n");
	return bad;
}
