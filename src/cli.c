#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char *const topology_keys[] = { "cpus", "sockets", "cores", "threads", "maxcpus" };

static int set_topology(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	/* Store each field under its key; topology_parse() validates later. */
	char buf[256];
	if (strlen(arg) >= sizeof(buf)) {
		snprintf(err, errlen, "-c: argument too long");
		return -1;
	}
	strcpy(buf, arg);
	for (size_t i = 0; i < sizeof(topology_keys) / sizeof(*topology_keys); i++)
		config_set(cfg, topology_keys[i], "");
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq) {
			config_set(cfg, "cpus", tok);
			continue;
		}
		*eq = '\0';
		size_t i;
		for (i = 0; i < sizeof(topology_keys) / sizeof(*topology_keys); i++)
			if (strcmp(tok, topology_keys[i]) == 0)
				break;
		if (i == sizeof(topology_keys) / sizeof(*topology_keys)) {
			snprintf(err, errlen, "-c: unknown field '%s' (cpus, sockets, cores, "
				 "threads, maxcpus)", tok);
			return -1;
		}
		config_set(cfg, tok, eq + 1);
	}
	return 0;
}

int cli_topology_string(const struct config *cfg, char *out, size_t outlen)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(topology_keys) / sizeof(*topology_keys); i++) {
		const char *v = config_get(cfg, topology_keys[i]);
		if (!v || !*v)
			continue;
		int n = snprintf(out + used, outlen - used, "%s%s=%s", used ? "," : "",
				 topology_keys[i], v);
		if (n < 0 || (size_t)n >= outlen - used)
			return -1;
		used += (size_t)n;
	}
	return 0;
}

static int set_lpc(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	const char *comma = strchr(arg, ',');
	if (!comma || comma == arg || !comma[1]) {
		snprintf(err, errlen, "-l: expected DEVICE,BACKEND (e.g. com1,stdio), got '%s'",
			 arg);
		return -1;
	}
	size_t dlen = (size_t)(comma - arg);
	if (!((dlen == 4 && (memcmp(arg, "com1", 4) == 0 || memcmp(arg, "com2", 4) == 0)))) {
		snprintf(err, errlen, "-l: unknown LPC device '%.*s' (com1, com2)", (int)dlen, arg);
		return -1;
	}
	char key[32];
	snprintf(key, sizeof(key), "lpc.%.*s.path", (int)dlen, arg);
	config_set(cfg, key, comma + 1);
	return 0;
}

/*
 * -s SLOT[:FUNC],EMULATION[,CONF]: bhyve's PCI slot syntax. Every CONF is
 * KEY=VALUE or a bare word; the first bare word is the emulation's
 * "backing" (the TAP of a virtio-net, the file of a virtio-blk), other bare
 * words are flags (ro). Keys land under pci.0.SLOT.FUNC.
 */
static int set_pci_slot(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	char buf[512];
	if (strlen(arg) >= sizeof(buf)) {
		snprintf(err, errlen, "-s: argument too long");
		return -1;
	}
	strcpy(buf, arg);
	char *save = NULL, *slot_s = strtok_r(buf, ",", &save);
	char *emul = strtok_r(NULL, ",", &save);
	unsigned slot, func = 0;
	int used = 0;
	if (!slot_s || !emul ||
	    !((sscanf(slot_s, "%u:%u%n", &slot, &func, &used) == 2 && !slot_s[used]) ||
	      (sscanf(slot_s, "%u%n", &slot, &used) == 1 && !slot_s[used])) ||
	    slot >= 32 || func >= 8) {
		snprintf(err, errlen, "-s: expected SLOT[:FUNC],EMULATION[,OPTIONS] with slot "
			 "0-31 and function 0-7, got '%s'", arg);
		return -1;
	}
	if (func != 0) {
		snprintf(err, errlen, "-s %s: function %u: only function 0 of a slot is emulated",
			 slot_s, func);
		return -1;
	}
	char prefix[32], key[96];
	snprintf(prefix, sizeof(prefix), "pci.0.%u.%u", slot, func);
	snprintf(key, sizeof(key), "%s.device", prefix);
	config_set(cfg, key, emul);
	const char *backing = strcmp(emul, "virtio-blk") == 0 ? "path" : "tap";
	bool have_backing = false;
	for (char *tok = strtok_r(NULL, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		/* The key must fit a config key; a value (an image path) may be long. */
		size_t keylen = eq ? (size_t)(eq - tok) : strlen(tok);
		if (eq == tok || (keylen > 48 && (eq || have_backing))) {
			snprintf(err, errlen, "-s: malformed option '%.60s'", tok);
			return -1;
		}
		if (eq) {
			*eq = '\0';
			snprintf(key, sizeof(key), "%s.%s", prefix, tok);
			config_set(cfg, key, eq + 1);
		} else if (!have_backing && strcmp(tok, "ro") != 0) {
			snprintf(key, sizeof(key), "%s.%s", prefix, backing);
			config_set(cfg, key, tok);
			have_backing = true;
		} else {
			snprintf(key, sizeof(key), "%s.%s", prefix, tok);
			config_set(cfg, key, "true");
		}
	}
	return 0;
}

enum cli_result cli_parse(int argc, char **argv, struct config *cfg, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' },
		{ "lpc", required_argument, NULL, 'l' },
		{ "option", required_argument, NULL, 'o' },
		{ "slot", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'k' },
		{ "no-sandbox", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	/*
	 * 0, not 1: glibc then also forgets where it was inside a cluster of
	 * short options ("-AHc2"); a parse that stopped early (an error,
	 * --help) would otherwise make the next one resume in freed argv.
	 */
	optind = 0;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "+hc:m:l:o:k:s:AHPuwS", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			return CLI_HELP;
		case 'c':
			if (set_topology(cfg, optarg, err, errlen))
				return CLI_ERROR;
			break;
		case 'm':
			config_set(cfg, "memory.size", optarg);
			break;
		case 'l':
			if (set_lpc(cfg, optarg, err, errlen))
				return CLI_ERROR;
			break;
		case 's':
			if (set_pci_slot(cfg, optarg, err, errlen))
				return CLI_ERROR;
			break;
		case 'o':
			if (config_set_pair(cfg, optarg, err, errlen))
				return CLI_ERROR;
			break;
		case 'k':
			if (config_load_file(cfg, optarg, err, errlen))
				return CLI_ERROR;
			break;
		case 'S':
			config_set(cfg, "sandbox", "false");
			break;
		case 'A': case 'H': case 'P': case 'u': case 'w':
			/*
			 * bhyve flags khyve always behaves as if given (ACPI tables,
			 * yield on HLT, exit on PAUSE, UTC clock, ignore unknown MSRs):
			 * accepted so existing bhyve command lines work.
			 */
			break;
		case '?':
		default:
			if (optopt && strchr("cmloks", optopt))
				snprintf(err, errlen, "option -%c needs an argument (see --help)",
					 optopt);
			else if (optopt)
				snprintf(err, errlen, "unknown option -%c (see --help)", optopt);
			else
				snprintf(err, errlen, "unknown option '%s' (see --help)",
					 argv[optind - 1]);
			return CLI_ERROR;
		}
	}
	if (optind < argc)
		config_set(cfg, "name", argv[optind++]);
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' after the VM name", argv[optind]);
		return CLI_ERROR;
	}
	if (!config_get(cfg, "name")) {
		snprintf(err, errlen, "no VM name given (the last argument; see --help)");
		return CLI_ERROR;
	}
	return CLI_RUN;
}

void cli_print_help(const char *prog)
{
	printf(
"KHYVE(8)                     khyve manual                     KHYVE(8)\n"
"\n"
"NAME\n"
"     khyve - run a virtual machine on Linux KVM, the bhyve way\n"
"\n"
"SYNOPSIS\n"
"     %s [-AHPuw] [-c [[cpus=]N][,sockets=S][,cores=C][,threads=T][,maxcpus=M]]\n"
"           [-m memsize[K|M|G|T]] [-l com1,stdio] [-s slot,emulation[,conf]]\n"
"           [-k config_file]\n"
"           [-o key=value] ... [--no-sandbox] vmname\n"
"\n"
"DESCRIPTION\n"
"     khyve runs an unmodified Linux guest on KVM. It boots a bzImage or a\n"
"     vmlinux directly (no firmware): a bzImage's compressed kernel is\n"
"     decompressed on the host, loaded, and entered at its 64-bit entry.\n"
"     The guest sees an in-kernel LAPIC/IOAPIC/PIT, a 16550 UART on COM1,\n"
"     a PCI host bridge and ACPI tables describing its CPUs.\n"
"\n"
"     There is no compile-time vCPU limit: every per-vCPU structure is sized\n"
"     at start-up from maxcpus, up to what KVM reports.\n"
"\n"
"OPTIONS\n"
"     -c [[cpus=]N][,sockets=S][,cores=C][,threads=T][,maxcpus=M]\n"
"             Number of vCPUs and their topology, as in bhyve(8). cpus,\n"
"             cores and threads default to 1, sockets to the vCPU total.\n"
"             sockets*cores*threads must equal maxcpus when given, else\n"
"             cpus. cpus vCPUs run at boot; up to maxcpus may exist.\n"
"             Default: one vCPU, one socket, one core, one thread.\n"
"\n"
"     -m memsize\n"
"             Guest memory, with an optional K, M, G or T suffix; a bare\n"
"             number is megabytes. Default 256M.\n"
"\n"
"     -l com1,stdio\n"
"             Connect COM1 (or com2) to khyve's standard input and output.\n"
"             A terminal is put in raw mode while the VM runs.\n"
"\n"
"     -s slot[:function],emulation[,conf]\n"
"             Put a PCI device at slot (1-31; 0 is the host bridge):\n"
"               hostbridge   the host bridge (always present at slot 0)\n"
"               virtio-net,TAP[,mac=xx:xx:xx:xx:xx:xx][,backend=vhost|user]\n"
"                            virtio-net (viona) on an existing TAP device;\n"
"                            backend vhost: the kernel's vhost-net datapath\n"
"                            (default when /dev/vhost-net opens), user: khyve's\n"
"                            own datapath thread. Checksum offload and TSO\n"
"                            both ways.\n"
"               virtio-blk,PATH[,ro]\n"
"                            virtio-blk on a raw image file; ro: read-only.\n"
"             Keys: pci.0.SLOT.FUNC.{device,tap,mac,backend,path,ro}.\n"
"\n"
"     -o key=value\n"
"             Set a configuration key (see below). May be repeated.\n"
"\n"
"     -k file\n"
"             Read key=value lines from file ('#' starts a comment).\n"
"             Options apply in command-line order.\n"
"\n"
"     -A -H -P -u -w\n"
"             Accepted for bhyve compatibility; khyve always provides ACPI\n"
"             tables, yields on HLT, and keeps the RTC in UTC.\n"
"\n"
"     --no-sandbox\n"
"             Run without the seccomp-bpf sandbox (sets sandbox=false).\n"
"\n"
"     -h, --help\n"
"             Print this manual.\n"
"\n"
"CONFIGURATION KEYS\n"
"     name             VM name (the last argument).\n"
"     cpus sockets cores threads maxcpus\n"
"                      Topology, as -c.\n"
"     memory.size      As -m.\n"
"     lpc.com1.path    stdio, or unset for no backend.\n"
"     boot.kernel      Linux kernel: bzImage or vmlinux ELF.\n"
"     boot.initrd      Initial ramdisk.\n"
"     boot.cmdline     Kernel command line.\n"
"     boot.classic     true: let the guest decompress a bzImage itself\n"
"                      instead of decompressing it on the host.\n"
"     boot.raw         A flat binary to run instead of Linux (tests).\n"
"     boot.raw.mode    real (16-bit, loaded at 0x8000, CS:IP=0:8000) or\n"
"                      long (64-bit, loaded at 0x100000, identity-mapped).\n"
"     kvm.allow_emulated\n"
"                      true: run even on kvm_pvm, which emulates guest code\n"
"                      and cannot boot Linux.\n"
"     sandbox          false: do not confine khyve with seccomp-bpf while the\n"
"                      guest runs (default true; see docs/hardening.md).\n"
"     debug.forbidden-syscall-port\n"
"                      Test hook: an I/O port whose handler makes a system\n"
"                      call the sandbox forbids, so a guest can prove that\n"
"                      khyve then dies of SIGSYS. Never set it otherwise.\n"
"     pci.testdev, pci.testdev.slot\n"
"                      Test hook: true (or a slot, default 4) adds the PCI\n"
"                      test device of the accelerated-driver interface\n"
"                      (src/pci_testdev.h): doorbells, MSI-X, INTx.\n"
"\n"
"EXIT STATUS\n"
"     As bhyve(8):\n"
"       0  the guest rebooted\n"
"       1  the guest powered off (or khyve got SIGTERM/SIGINT/SIGHUP)\n"
"       2  the guest halted (every vCPU halted with interrupts disabled)\n"
"       3  the guest triple-faulted\n"
"       4  an error; the message names what was wrong. Also the VM was\n"
"          destroyed with khyvectl --destroy: bhyve exits 4 when its VM\n"
"          is destroyed (VM_SUSPEND_DESTROY), and so does khyve.\n"
"\n"
"CONTROL SOCKET\n"
"     While it runs, khyve answers khyvectl(8) on RUNDIR/vmname.sock:\n"
"     RUNDIR is $KHYVE_RUNTIME_DIR, else /run/khyve for root, else\n"
"     $XDG_RUNTIME_DIR/khyve (mode 0700; the socket 0600; only the same\n"
"     uid or root is answered). So vmname is 1 to 64 letters, digits,\n"
"     '.', '_', '-' or '+', and khyve refuses to start when a live VM\n"
"     already has the name (a socket left by a dead khyve is replaced).\n"
"\n"
"EXAMPLES\n"
"     Boot a Debian kernel with 4 vCPUs in two sockets on the console:\n"
"\n"
"       khyve -c 4,sockets=2,cores=2,threads=1 -m 512M -l com1,stdio \\\n"
"             -o boot.kernel=vmlinuz -o boot.initrd=initrd.img \\\n"
"             -o boot.cmdline='console=ttyS0' debian\n"
"\n"
"SEE ALSO\n"
"     khyvectl(8), bhyve(8), bhyve_config(5)\n", prog);
}
