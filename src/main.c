/*
 * khyve: parse the command line into a configuration, assemble the machine
 * (machine.c), run it, and exit with bhyve(8)'s status for how it ended.
 */
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "control.h"
#include "machine.h"
#include "sandbox.h"
#include "vm.h"

int main(int argc, char **argv)
{
	static struct machine m;
	char err[512] = "";
	config_init(&m.cfg);
	switch (cli_parse(argc, argv, &m.cfg, err, sizeof(err))) {
	case CLI_HELP:
		cli_print_help("khyve");
		config_free(&m.cfg);
		return 0;
	case CLI_ERROR:
		config_free(&m.cfg);
		fprintf(stderr, "khyve: %s\n", err);
		return VM_EXIT_ERROR;
	case CLI_RUN:
		break;
	}
	int status;
	/* The control socket first, so a name a live VM has is refused at once. */
	struct control *ctl = control_create(config_get(&m.cfg, "name"), err, sizeof(err));
	if (!ctl || machine_assemble(&m, err, sizeof(err)) ||
	    control_start(ctl, &m.vm, m.hotplug, err, sizeof(err)) ||
	    sandbox_apply(&m.vm, &m.cfg, control_dir_fd(ctl), err, sizeof(err))) {
		fprintf(stderr, "khyve: %s\n", err);
		status = VM_EXIT_ERROR;
	} else {
		status = vm_run(&m.vm);
		if (status == VM_EXIT_ERROR)
			fprintf(stderr, "khyve: %s\n", m.vm.error[0] ? m.vm.error : "VM failed");
	}
	/* The control thread goes first: it uses the VM until it is joined. */
	control_destroy(ctl);
	machine_disassemble(&m);
	config_free(&m.cfg);
	return status;
}
