/* Unit tests for -c topology parsing and APIC ID layout (topology.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "topology.h"

static struct topology parse_ok(const char *arg)
{
	struct topology t;
	char err[256] = "";
	int r = topology_parse(arg, &t, err, sizeof(err));
	if (r != 0)
		fail_msg("'%s' rejected: %s", arg, err);
	return t;
}

static void parse_bad(const char *arg, const char *needle)
{
	struct topology t;
	char err[256] = "";
	assert_int_equal(topology_parse(arg, &t, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("'%s': error '%s' lacks '%s'", arg, err, needle);
}

static void test_defaults(void **state)
{
	struct topology t = parse_ok("");
	assert_int_equal(t.cpus, 1);
	assert_int_equal(t.maxcpus, 1);
	assert_int_equal(t.sockets, 1);
	assert_int_equal(t.cores, 1);
	assert_int_equal(t.threads, 1);
}

static void test_plain_count_is_sockets(void **state)
{
	/* bhyve: "-c 4" means 4 sockets of one core, one thread. */
	struct topology t = parse_ok("4");
	assert_int_equal(t.cpus, 4);
	assert_int_equal(t.sockets, 4);
	assert_int_equal(t.cores, 1);
	t = parse_ok("cpus=6");
	assert_int_equal(t.cpus, 6);
	assert_int_equal(t.maxcpus, 6);
}

static void test_full_topology(void **state)
{
	struct topology t = parse_ok("4,sockets=2,cores=2,threads=1");
	assert_int_equal(t.cpus, 4);
	assert_int_equal(t.maxcpus, 4);
	assert_int_equal(t.sockets, 2);
	assert_int_equal(t.cores, 2);
	t = parse_ok("sockets=2,cores=4,threads=2");
	assert_int_equal(t.cpus, 16);
	assert_int_equal(t.maxcpus, 16);
}

static void test_maxcpus(void **state)
{
	struct topology t = parse_ok("cpus=2,sockets=1,cores=8,threads=1,maxcpus=8");
	assert_int_equal(t.cpus, 2);
	assert_int_equal(t.maxcpus, 8);
	t = parse_ok("maxcpus=4");
	assert_int_equal(t.cpus, 4);
	assert_int_equal(t.sockets, 4);
	t = parse_ok("2,maxcpus=4");
	assert_int_equal(t.cpus, 2);
	assert_int_equal(t.maxcpus, 4);
}

static void test_rejects(void **state)
{
	parse_bad("4,sockets=2,cores=1", "does not match");
	parse_bad("cpus=2,sockets=1,cores=8,maxcpus=4", "does not match");
	parse_bad("8,maxcpus=4", "exceeds maxcpus");
	parse_bad("0", "out of range");
	parse_bad("cpus=x", "not a number");
	parse_bad("4,bogus=1", "unknown field");
	parse_bad("4,", "trailing");
	parse_bad("cores=", "needs a number");
	parse_bad("99999999999", "");
	parse_bad("sockets=256,cores=256,threads=2", "too many");
}

static void test_kvm_limit(void **state)
{
	struct topology t = parse_ok("2048");
	char err[128];
	assert_int_equal(topology_check_limit(&t, 1024, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1024"));
	t = parse_ok("1024");
	assert_int_equal(topology_check_limit(&t, 1024, err, sizeof(err)), 0);
}

static void test_apic_ids(void **state)
{
	/* 2 sockets x 3 cores x 2 threads: thread 1 bit, core 2 bits. */
	struct topology t = parse_ok("sockets=2,cores=3,threads=2");
	assert_int_equal(topology_thread_bits(&t), 1);
	assert_int_equal(topology_core_bits(&t), 2);
	assert_int_equal(topology_apic_id(&t, 0), 0x0);
	assert_int_equal(topology_apic_id(&t, 1), 0x1);  /* s0 c0 t1 */
	assert_int_equal(topology_apic_id(&t, 2), 0x2);  /* s0 c1 t0 */
	assert_int_equal(topology_apic_id(&t, 5), 0x5);  /* s0 c2 t1 */
	assert_int_equal(topology_apic_id(&t, 6), 0x8);  /* s1 c0 t0 */
	assert_int_equal(topology_apic_id(&t, 11), 0xd); /* s1 c2 t1 */
	assert_int_equal(topology_max_apic_id(&t), 0xd);
	uint32_t s, c, th;
	topology_place(&t, 9, &s, &c, &th);
	assert_int_equal(s, 1);
	assert_int_equal(c, 1);
	assert_int_equal(th, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_plain_count_is_sockets),
		cmocka_unit_test(test_full_topology),
		cmocka_unit_test(test_maxcpus),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_kvm_limit),
		cmocka_unit_test(test_apic_ids),
	};
	return cmocka_run_group_tests_name("topology", tests, NULL, NULL);
}
