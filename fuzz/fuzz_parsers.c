/*
 * Fuzz target: everything khyve parses from its user before a VM exists:
 * the command line (cli_parse, getopt and all), the -k configuration file,
 * -o key=value pairs, -c topologies, -m sizes and boolean keys, and what
 * machine.c derives from them (the topology string round trip, APIC IDs).
 *
 * Input: [argv area] 0xff [config file]. The argv area is split at NUL
 * bytes into arguments after "khyve" (at most 64). The command line is
 * parsed twice, from two copies, the first freed before the second parse:
 * state one cli_parse() leaves behind (getopt's) must not reach the next. Every -k FILE reads the
 * config file part of the input: this target replaces fopen() so that no
 * real file is ever opened (a path that is empty fails as a missing file
 * would). Each argument is also fed on its own to topology_parse,
 * size_parse and config_set_pair.
 *
 * Invariants: a failure always comes with a reason; a parsed
 * topology is consistent (1 <= cpus <= maxcpus = sockets*cores*threads)
 * with distinct, increasing APIC IDs; a parsed size is not zero; the
 * topology keys cli_parse stores round-trip through cli_topology_string.
 */
#include "fuzz.h"

#include <dlfcn.h>
#include <errno.h>

#include "cli.h"
#include "config.h"
#include "size.h"
#include "topology.h"

#define MAX_ARGS 64

static const uint8_t *file_data;
static size_t file_len;
static bool serving;

/* config_load_file's fopen: the input's config part while the target runs. */
FILE *fopen(const char *path, const char *mode)
{
	if (!serving) {
		FILE *(*real)(const char *, const char *) =
			(FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT, "fopen");
		return real(path, mode);
	}
	if (!*path) {
		errno = ENOENT;
		return NULL;
	}
	if (file_len == 0)
		return fmemopen((void *)"", 1, "r");  /* one NUL byte: an empty line */
	return fmemopen((void *)file_data, file_len, "r");
}

static void check_err(const char *err, size_t errlen)
{
	size_t n = strnlen(err, errlen);
	FUZZ_CHECK(n > 0 && n < errlen);
}

static void check_topology(const char *s)
{
	struct topology t;
	char err[256] = "";
	if (topology_parse(s, &t, err, sizeof(err))) {
		check_err(err, sizeof(err));
		return;
	}
	FUZZ_CHECK(t.cpus >= 1 && t.cpus <= t.maxcpus);
	FUZZ_CHECK(t.sockets >= 1 && t.cores >= 1 && t.threads >= 1);
	FUZZ_CHECK((uint64_t)t.sockets * t.cores * t.threads == t.maxcpus);
	FUZZ_CHECK(t.maxcpus <= TOPOLOGY_FIELD_MAX);
	uint32_t prev = 0;
	for (uint32_t i = 0; i < t.maxcpus && i < 300; i++) {
		uint32_t id = topology_apic_id(&t, i);
		FUZZ_CHECK(i == 0 || id > prev);
		prev = id;
	}
	FUZZ_CHECK(topology_max_apic_id(&t) >= t.maxcpus - 1);
	(void)topology_check_limit(&t, 1024, err, sizeof(err));
}

static void check_size(const char *s)
{
	uint64_t bytes = 0;
	char err[256] = "";
	if (size_parse(s, &bytes, err, sizeof(err)))
		check_err(err, sizeof(err));
	else
		FUZZ_CHECK(bytes != 0);
}

static void check_pair(const char *s)
{
	struct config c;
	char err[256] = "";
	config_init(&c);
	if (config_set_pair(&c, s, err, sizeof(err))) {
		check_err(err, sizeof(err));
	} else {
		const char *eq = strchr(s, '=');
		FUZZ_CHECK(eq && c.n == 1);
		FUZZ_CHECK(strcmp(c.entries[0].value, eq + 1) == 0);
		bool b;
		if (config_get_bool(&c, c.entries[0].key, false, &b, err, sizeof(err)))
			check_err(err, sizeof(err));
	}
	config_free(&c);
}

/* What machine.c's build_options() does with a parsed configuration. */
static void use_config(const struct config *cfg)
{
	char topo[256], err[256] = "";
	if (cli_topology_string(cfg, topo, sizeof(topo)) == 0)
		check_topology(topo);
	check_size(config_get_default(cfg, "memory.size", "256M"));
	bool b;
	static const char *const bools[] = { "kvm.allow_emulated", "boot.classic", "sandbox" };
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
		if (config_get_bool(cfg, bools[i], false, &b, err, sizeof(err)))
			check_err(err, sizeof(err));
}

/* Split a copy of the argv area into argv; the caller frees *area. */
static int split_args(const uint8_t *data, size_t len, char **area, char **argv)
{
	*area = malloc(len + 1);
	if (!*area)
		abort();
	memcpy(*area, data, len);
	(*area)[len] = '\0';
	int argc = 0;
	argv[argc++] = "khyve";
	for (char *p = *area; argc <= MAX_ARGS && p <= *area + len; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	return argc;
}

static void parse_command_line(int argc, char **argv)
{
	struct config cfg;
	char err[512] = "";
	config_init(&cfg);
	serving = true;
	enum cli_result r = cli_parse(argc, argv, &cfg, err, sizeof(err));
	serving = false;
	if (r == CLI_ERROR)
		check_err(err, sizeof(err));
	else if (r == CLI_RUN)
		use_config(&cfg);
	config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, 0xff, size);
	size_t argv_len = sep ? (size_t)(sep - data) : size;
	file_data = sep ? sep + 1 : NULL;
	file_len = sep ? size - argv_len - 1 : 0;

	char *area, *argv[MAX_ARGS + 2];
	int argc = split_args(data, argv_len, &area, argv);
	for (int i = 1; i < argc; i++) {
		check_topology(argv[i]);
		check_size(argv[i]);
		check_pair(argv[i]);
	}
	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			argc = split_args(data, argv_len, &area, argv);
		parse_command_line(argc, argv);
		free(area);
	}
	return 0;
}
