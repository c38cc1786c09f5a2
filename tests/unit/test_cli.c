/* Unit tests for the command line, configuration keys and sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"
#include "config.h"
#include "size.h"
#include "topology.h"

static enum cli_result parse(struct config *c, char *err, const char *first, ...)
{
	char *argv[32] = { "khyve" };
	int argc = 1;
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	config_init(c);
	return cli_parse(argc, argv, c, err, 256);
}

static void test_bhyve_command_line(void **state)
{
	struct config c;
	char err[256];
	assert_int_equal(parse(&c, err, "-AHP", "-c", "4,sockets=2,cores=2,threads=1", "-m", "512M",
			       "-l", "com1,stdio", "-o", "boot.kernel=/k", "-o",
			       "boot.cmdline=console=ttyS0 quiet", "vm0", NULL), CLI_RUN);
	assert_string_equal(config_get(&c, "name"), "vm0");
	assert_string_equal(config_get(&c, "memory.size"), "512M");
	assert_string_equal(config_get(&c, "lpc.com1.path"), "stdio");
	assert_string_equal(config_get(&c, "boot.cmdline"), "console=ttyS0 quiet");
	char topo[128];
	assert_int_equal(cli_topology_string(&c, topo, sizeof(topo)), 0);
	struct topology t;
	assert_int_equal(topology_parse(topo, &t, err, sizeof(err)), 0);
	assert_int_equal(t.cpus, 4);
	assert_int_equal(t.sockets, 2);
	assert_int_equal(t.cores, 2);
	config_free(&c);
}

/* -s SLOT[:FUNC],EMULATION[,CONF]: bhyve's slot syntax into pci.0.SLOT.0.* keys. */
static void test_pci_slots(void **state)
{
	struct config c;
	char err[256];
	const char *long_path = "/var/lib/khyve/images/a-rather-long-directory-name/and-a-long-file-name.raw";
	char blk[256];
	snprintf(blk, sizeof(blk), "4,virtio-blk,%s,ro", long_path);
	assert_int_equal(parse(&c, err, "-s", "0,hostbridge", "-s",
			       "3,virtio-net,tap0,mac=02:00:00:00:00:01,backend=user", "-s", blk,
			       "vm", NULL), CLI_RUN);
	assert_string_equal(config_get(&c, "pci.0.0.0.device"), "hostbridge");
	assert_string_equal(config_get(&c, "pci.0.3.0.device"), "virtio-net");
	assert_string_equal(config_get(&c, "pci.0.3.0.tap"), "tap0");
	assert_string_equal(config_get(&c, "pci.0.3.0.mac"), "02:00:00:00:00:01");
	assert_string_equal(config_get(&c, "pci.0.3.0.backend"), "user");
	assert_string_equal(config_get(&c, "pci.0.4.0.device"), "virtio-blk");
	assert_string_equal(config_get(&c, "pci.0.4.0.path"), long_path);
	assert_string_equal(config_get(&c, "pci.0.4.0.ro"), "true");
	config_free(&c);

	static const char *const bad[] = { "virtio-net", "32,virtio-net,tap0", "x,virtio-blk,/i",
					   "3:1,virtio-net,tap0", "3:8,virtio-net", "3,virtio-net,=x",
					   "3", "-1,virtio-blk,/i" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		assert_int_equal(parse(&c, err, "-s", bad[i], "vm", NULL), CLI_ERROR);
		assert_non_null(strstr(err, "-s"));
		config_free(&c);
	}
}

static void test_later_settings_win(void **state)
{
	char path[] = "/tmp/khyve-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "# defaults\n\nmemory.size=1G\n  cpus=2\nboot.cmdline=a=b c\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct config c;
	char err[256];
	assert_int_equal(parse(&c, err, "-k", path, "-m", "2G", "vm", NULL), CLI_RUN);
	unlink(path);
	assert_string_equal(config_get(&c, "memory.size"), "2G");
	assert_string_equal(config_get(&c, "cpus"), "2");
	assert_string_equal(config_get(&c, "boot.cmdline"), "a=b c");
	config_free(&c);
}

static void test_cli_errors(void **state)
{
	struct config c;
	char err[256];
	assert_int_equal(parse(&c, err, "-m", "1G", NULL), CLI_ERROR);
	assert_non_null(strstr(err, "no VM name"));
	config_free(&c);
	assert_int_equal(parse(&c, err, "-Q", "vm", NULL), CLI_ERROR);
	assert_non_null(strstr(err, "unknown option -Q"));
	config_free(&c);
	assert_int_equal(parse(&c, err, "-c", NULL), CLI_ERROR);
	assert_non_null(strstr(err, "needs an argument"));
	config_free(&c);
	assert_int_equal(parse(&c, err, "-c", "4,foo=2", "vm", NULL), CLI_ERROR);
	assert_non_null(strstr(err, "unknown field 'foo'"));
	config_free(&c);
	assert_int_equal(parse(&c, err, "-l", "com3,stdio", "vm", NULL), CLI_ERROR);
	config_free(&c);
	assert_int_equal(parse(&c, err, "-o", "=x", "vm", NULL), CLI_ERROR);
	assert_non_null(strstr(err, "bad key"));
	config_free(&c);
	assert_int_equal(parse(&c, err, "vm", "extra", NULL), CLI_ERROR);
	config_free(&c);
	assert_int_equal(parse(&c, err, "-k", "/nonexistent/x.conf", "vm", NULL), CLI_ERROR);
	assert_non_null(strstr(err, "/nonexistent/x.conf"));
	config_free(&c);
	assert_int_equal(parse(&c, err, "--help", NULL), CLI_HELP);
	config_free(&c);
}

static void test_bool(void **state)
{
	struct config c;
	char err[128];
	bool b;
	config_init(&c);
	config_set(&c, "a", "yes");
	config_set(&c, "b", "Off");
	config_set(&c, "c", "maybe");
	assert_int_equal(config_get_bool(&c, "a", false, &b, err, sizeof(err)), 0);
	assert_true(b);
	assert_int_equal(config_get_bool(&c, "b", true, &b, err, sizeof(err)), 0);
	assert_false(b);
	assert_int_equal(config_get_bool(&c, "missing", true, &b, err, sizeof(err)), 0);
	assert_true(b);
	assert_int_equal(config_get_bool(&c, "c", true, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "c=maybe"));
	config_free(&c);
}

static void test_sizes(void **state)
{
	uint64_t v;
	char err[128];
	assert_int_equal(size_parse("512", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 512ULL << 20);  /* bare number: megabytes, as bhyve */
	assert_int_equal(size_parse("64k", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 64ULL << 10);
	assert_int_equal(size_parse("2G", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(size_parse("1T", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(size_parse("256MiB", &v, err, sizeof(err)), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(size_parse("0", &v, err, sizeof(err)), -1);
	assert_int_equal(size_parse("-1G", &v, err, sizeof(err)), -1);
	assert_int_equal(size_parse("12X", &v, err, sizeof(err)), -1);
	assert_int_equal(size_parse("1Gx", &v, err, sizeof(err)), -1);
	assert_int_equal(size_parse("99999999999999999999", &v, err, sizeof(err)), -1);
	assert_int_equal(size_parse("17179869184T", &v, err, sizeof(err)), -1);  /* 2^64 */
	assert_int_equal(size_parse("", &v, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bhyve_command_line),
		cmocka_unit_test(test_pci_slots),
		cmocka_unit_test(test_later_settings_win),
		cmocka_unit_test(test_cli_errors),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_sizes),
	};
	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
