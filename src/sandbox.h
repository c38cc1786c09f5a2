/*
 * The seccomp-bpf sandbox khyve runs the guest in (theory in sandbox.c).
 *
 * sandbox_apply() is called once, after machine_assemble() and before
 * vm_run(): from then on every khyve thread, those already running and those
 * started later, may only make the system calls in sandbox.c's allow-list,
 * and any other one kills the whole process with SIGSYS.
 */
#ifndef KHYVE_SANDBOX_H
#define KHYVE_SANDBOX_H

#include <stddef.h>

struct config;
struct vm;

/*
 * Reads the configuration keys
 *   sandbox=BOOL                       (default true; --no-sandbox sets false)
 *   debug.forbidden-syscall-port=PORT  (test hook, see sandbox.c)
 * registers the test hook's port if asked, then installs the filter in every
 * thread unless the sandbox is off. rundir_fd is the control socket's
 * directory (control_dir_fd()), the only fd the teardown's fstatat/unlinkat
 * may use; -1 forbids them. 0, or -1 with a one-line reason in err.
 */
int sandbox_apply(struct vm *vm, const struct config *cfg, int rundir_fd, char *err,
		  size_t errlen);

#endif
