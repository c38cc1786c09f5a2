/*
 * TEMPORARY test-only trigger for vCPU hot-add, used by
 * tests/system/21-linux-cpu-hotplug.sh only while build/khyvectl does not
 * exist yet. Delete it (and the fallback in that test) once
 * `khyvectl --vm=NAME --add-cpu` works: that is the real control path.
 *
 * It is khyve's own main() -- the same command line, machine_assemble(),
 * vm_run(), machine_disassemble() -- plus one thread standing in for the
 * control thread: it reads "add-cpu" lines from a FIFO and calls
 * cpu_hotplug_add(), exactly what the control plane does for khyvectl, and
 * answers each with one line on a second FIFO ("ok N" or "error: reason").
 * Nothing in khyve itself changes for it (no signal handler, no hidden
 * option).
 *
 *   cpu_hotplug_driver REQUEST_FIFO REPLY_FIFO KHYVE-ARGS...
 * Exit status: khyve's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "cpu_hotplug.h"
#include "machine.h"
#include "vm.h"

static struct machine m;
static const char *reply_path;

static void reply(const char *line)
{
	int fd = open(reply_path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t r = write(fd, line, strlen(line));
	(void)r;
	close(fd);
}

static void *requests(void *arg)
{
	FILE *f = arg;
	char line[128];
	while (fgets(line, sizeof(line), f)) {
		char out[600], err[512] = "";
		if (strcmp(line, "add-cpu\n") != 0) {
			snprintf(out, sizeof(out), "error: unknown request\n");
		} else {
			int id = cpu_hotplug_add(m.hotplug, err, sizeof(err));
			if (id >= 0)
				snprintf(out, sizeof(out), "ok %d\n", id);
			else
				snprintf(out, sizeof(out), "error: %s\n", err);
		}
		fprintf(stderr, "cpu_hotplug_driver: %s", out);
		reply(out);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char err[512] = "";
	if (argc < 4) {
		fprintf(stderr, "usage: %s REQUEST_FIFO REPLY_FIFO KHYVE-ARGS...\n", argv[0]);
		return VM_EXIT_ERROR;
	}
	reply_path = argv[2];
	/* O_RDWR: the FIFO never reports EOF between two writers. */
	int rfd = open(argv[1], O_RDWR | O_CLOEXEC);
	FILE *req = rfd >= 0 ? fdopen(rfd, "r") : NULL;
	if (!req) {
		fprintf(stderr, "cpu_hotplug_driver: %s: %s\n", argv[1], strerror(errno));
		return VM_EXIT_ERROR;
	}
	argv[2] = argv[0];
	config_init(&m.cfg);
	if (cli_parse(argc - 2, argv + 2, &m.cfg, err, sizeof(err)) != CLI_RUN) {
		fprintf(stderr, "cpu_hotplug_driver: %s\n", err);
		return VM_EXIT_ERROR;
	}
	int status;
	if (machine_assemble(&m, err, sizeof(err))) {
		fprintf(stderr, "khyve: %s\n", err);
		status = VM_EXIT_ERROR;
	} else {
		pthread_t t;
		pthread_create(&t, NULL, requests, req);
		pthread_detach(t);
		status = vm_run(&m.vm);
		if (status == VM_EXIT_ERROR)
			fprintf(stderr, "khyve: %s\n", m.vm.error[0] ? m.vm.error : "VM failed");
	}
	/* The request thread may still be blocked reading: exit without joining. */
	fflush(stdout);
	_exit(status);
}
