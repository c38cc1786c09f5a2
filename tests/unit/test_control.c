/*
 * Unit tests for the control plane (control.c, control_json.c): the request
 * parser and formatter, the JSON writer and reader, names and paths, the
 * verbs executed against a VM object with no KVM behind it (fds of -1, vCPUs
 * marked created with a zeroed kvm_run page so kicks land harmlessly), and
 * the server itself on a real unix socket in a temporary RUNDIR: peer
 * check aside (root and the owner are the same uid here), every connection
 * path, the duplicate-name refusal, stale-socket removal and teardown.
 * add-memory runs on a real KVM VM (vm_create; on a kvm_pvm host only with
 * KHYVE_TEST_ALLOW_EMULATED=1, else it skips): placement, the map change
 * that breaks a driver's lease, the renewed lease seeing the new RAM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "control.h"
#include "ioport.h"
#include "topology.h"
#include "vcpu.h"
#include "vm.h"
#include "vm_lock.h"
#include "vmm_drv.h"

/* ---- request parsing ---- */

static int parse(const char *s, struct control_request *r, char *err)
{
	return control_parse_request(s, strlen(s), r, err, 256);
}

static void test_parse_valid(void **state)
{
	struct control_request r;
	char err[256];
	static const struct { const char *line; enum control_verb v; } ok[] = {
		{ "khyve/1 info", CONTROL_INFO }, { "khyve/1 stats", CONTROL_STATS },
		{ "khyve/1 pause", CONTROL_PAUSE }, { "khyve/1 resume", CONTROL_RESUME },
		{ "khyve/1 destroy", CONTROL_DESTROY }, { "khyve/1 topology", CONTROL_TOPOLOGY },
		{ "khyve/1 add-cpu", CONTROL_ADD_CPU },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(parse(ok[i].line, &r, err), 0);
		assert_int_equal(r.verb, ok[i].v);
		assert_false(r.has_cpu);
	}
	assert_int_equal(parse("khyve/1 regs 0", &r, err), 0);
	assert_int_equal(r.verb, CONTROL_REGS);
	assert_true(r.has_cpu);
	assert_int_equal(r.cpu, 0);
	assert_int_equal(parse("khyve/1 regs 4294967295", &r, err), 0);
	assert_int_equal(r.cpu, 4294967295u);
	assert_int_equal(parse("khyve/1 stats 17", &r, err), 0);
	assert_true(r.has_cpu);
	assert_int_equal(r.cpu, 17);

	/* add-memory's SIZE: a bare number is bytes; one K/M/G/T suffix, binary. */
	static const struct { const char *line; uint64_t bytes; } sizes[] = {
		{ "khyve/1 add-memory 64M", 64ULL << 20 },
		{ "khyve/1 add-memory 2097152", 2ULL << 20 },
		{ "khyve/1 add-memory 1", 1 },
		{ "khyve/1 add-memory 1G", 1ULL << 30 },
		{ "khyve/1 add-memory 4096K", 4ULL << 20 },
		{ "khyve/1 add-memory 16777215T", 16777215ULL << 40 },
		{ "khyve/1 add-memory 18446744073709551615", UINT64_MAX },
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (parse(sizes[i].line, &r, err))
			fail_msg("'%s' refused: %s", sizes[i].line, err);
		assert_int_equal(r.verb, CONTROL_ADD_MEMORY);
		assert_false(r.has_cpu);
		assert_true(r.size == sizes[i].bytes);
		/* The protocol's strictness: it formats back to the very same line. */
		char buf[CONTROL_REQUEST_MAX];
		int n = control_format_request(&r, buf, sizeof(buf));
		assert_int_equal(n, strlen(sizes[i].line) + 1);
		assert_memory_equal(buf, sizes[i].line, (size_t)n - 1);
	}
}

static void expect_bad(const char *line, size_t len, const char *needle)
{
	struct control_request r;
	char err[256] = "";
	assert_int_equal(control_parse_request(line, len, &r, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("'%.*s': expected an error containing '%s', got '%s'", (int)len, line,
			 needle, err);
}

#define BAD(s, needle) expect_bad(s, sizeof(s) - 1, needle)

static void test_parse_malformed(void **state)
{
	BAD("", "empty request");
	BAD("khyve/1", "no verb");
	BAD("khyve/1 ", "trailing space");
	BAD(" khyve/1 info", "leading space");
	BAD("khyve/1  info", "double space");
	BAD("khyve/1 info\r", "byte 0x0d");
	BAD("khyve/1 in\0fo", "byte 0x00");
	BAD("khyve/1 info\xff", "byte 0xff");
	BAD("khyve/1\tinfo", "byte 0x09");
	BAD("khyve/2 info", "unsupported protocol version 'khyve/2'");
	BAD("khyve/10 info", "unsupported protocol version");
	BAD("KHYVE/1 info", "expected 'khyve/1 VERB");
	BAD("info", "expected 'khyve/1 VERB");
	BAD("khyve/1 frobnicate", "unknown verb 'frobnicate'");
	BAD("khyve/1 INFO", "unknown verb");
	BAD("khyve/1 info 0", "info takes no argument");
	BAD("khyve/1 pause now", "pause takes no argument");
	BAD("khyve/1 regs", "regs takes one argument");
	BAD("khyve/1 regs 1 2", "regs takes one argument");
	BAD("khyve/1 stats 1 2", "stats takes at most one");
	BAD("khyve/1 regs 1 2 3", "too many words");
	BAD("khyve/1 regs -1", "malformed vCPU number '-1'");
	BAD("khyve/1 regs +1", "malformed vCPU number");
	BAD("khyve/1 regs 01", "malformed vCPU number '01'");
	BAD("khyve/1 regs 0x1", "malformed vCPU number");
	BAD("khyve/1 regs 4294967296", "malformed vCPU number");
	BAD("khyve/1 regs 99999999999999999999", "malformed vCPU number");
	BAD("khyve/1 add-memory", "add-memory takes one argument");
	BAD("khyve/1 add-memory 64M 1", "add-memory takes one argument");
	BAD("khyve/1 add-memory 12X", "malformed size '12X'");
	BAD("khyve/1 add-memory 0", "malformed size '0'");
	BAD("khyve/1 add-memory 0M", "malformed size");
	BAD("khyve/1 add-memory 064", "malformed size");
	BAD("khyve/1 add-memory -1", "malformed size");
	BAD("khyve/1 add-memory 0x100000", "malformed size");
	BAD("khyve/1 add-memory M", "malformed size");
	BAD("khyve/1 add-memory 1Gx", "malformed size");
	BAD("khyve/1 add-memory 1GB", "malformed size");
	/* Other spellings of the same size: one spelling on the wire (khyvectl converts). */
	BAD("khyve/1 add-memory 64m", "malformed size");
	BAD("khyve/1 add-memory 2MiB", "malformed size");
	BAD("khyve/1 add-memory 18446744073709551616", "malformed size");
	BAD("khyve/1 add-memory 16777216T", "malformed size");
	BAD("khyve/1 add-memory 123456789012345678901234567890", "malformed size");
	char longline[CONTROL_REQUEST_MAX + 8];
	memset(longline, 'a', sizeof(longline));
	expect_bad(longline, CONTROL_REQUEST_MAX, "longer than 255");
	/* The longest acceptable line is CONTROL_REQUEST_MAX - 1 bytes. */
	struct control_request r;
	char err[256];
	memcpy(longline, "khyve/1 info", 12);
	assert_int_equal(control_parse_request(longline, CONTROL_REQUEST_MAX - 1, &r, err,
					       sizeof(err)), -1);
	assert_null(strstr(err, "longer"));
	/* An error message quotes at most a bounded part of what it got. */
	char verb[200] = "khyve/1 ";
	memset(verb + 8, 'v', 150);
	assert_int_equal(parse(verb, &r, err), -1);
	assert_true(strlen(err) < 120);
}

static void test_format_round_trip(void **state)
{
	char buf[CONTROL_REQUEST_MAX];
	for (int v = 0; v < CONTROL_VERB_COUNT; v++) {
		struct control_request in = { .verb = (enum control_verb)v,
					      .has_cpu = v == CONTROL_REGS || v == CONTROL_STATS,
					      .cpu = 4294967295u,
					      .size = v == CONTROL_ADD_MEMORY ? 3ULL << 40 : 0,
					      .size_shift = v == CONTROL_ADD_MEMORY ? 40 : 0 },
				       out;
		int n = control_format_request(&in, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(buf[n - 1], '\n');
		char err[256];
		assert_int_equal(control_parse_request(buf, (size_t)n - 1, &out, err, sizeof(err)), 0);
		assert_int_equal(out.verb, in.verb);
		assert_int_equal(out.has_cpu, in.has_cpu);
		assert_int_equal(out.cpu, in.has_cpu ? in.cpu : 0);
		assert_true(out.size == in.size);
		assert_int_equal(out.size_shift, in.size_shift);
		const char *name = control_verb_name(in.verb);
		assert_memory_equal(buf, "khyve/1 ", 8);
		assert_memory_equal(buf + 8, name, strlen(name));
	}
	struct control_request in = { .verb = CONTROL_REGS, .has_cpu = true, .cpu = 1 };
	assert_int_equal(control_format_request(&in, buf, 10), -1);
	in.verb = CONTROL_VERB_COUNT;
	assert_int_equal(control_format_request(&in, buf, sizeof(buf)), -1);
	/* A size its unit does not divide, or no size, has no line. */
	struct control_request mem = { .verb = CONTROL_ADD_MEMORY, .size = (1ULL << 20) + 1,
				       .size_shift = 20 };
	assert_int_equal(control_format_request(&mem, buf, sizeof(buf)), -1);
	mem.size = 0;
	mem.size_shift = 0;
	assert_int_equal(control_format_request(&mem, buf, sizeof(buf)), -1);
	mem.size = 64ULL << 20;
	assert_int_equal(control_format_request(&mem, buf, sizeof(buf)), 28);
	assert_memory_equal(buf, "khyve/1 add-memory 67108864\n", 28);
}

/* ---- names and paths ---- */

static void test_names_and_paths(void **state)
{
	char err[256], buf[256];
	assert_int_equal(control_check_name("demo", err, sizeof(err)), 0);
	assert_int_equal(control_check_name("test-lm_spin.2+x", err, sizeof(err)), 0);
	const char *bad[] = { "", ".hidden", "-x", "a/b", "a b", "..", "x\n", "\xc3\xa9" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(control_check_name(bad[i], err, sizeof(err)), -1);
	assert_int_equal(control_check_name(NULL, err, sizeof(err)), -1);
	char longname[CONTROL_NAME_MAX + 2];
	memset(longname, 'n', sizeof(longname));
	longname[CONTROL_NAME_MAX] = '\0';
	assert_int_equal(control_check_name(longname, err, sizeof(err)), 0);
	longname[CONTROL_NAME_MAX] = 'n';
	longname[CONTROL_NAME_MAX + 1] = '\0';
	assert_int_equal(control_check_name(longname, err, sizeof(err)), -1);

	assert_int_equal(control_socket_path("/run/khyve", "demo", buf, sizeof(buf), err,
					     sizeof(err)), 0);
	assert_string_equal(buf, "/run/khyve/demo.sock");
	char deep[200];
	memset(deep, 'd', sizeof(deep));
	deep[0] = '/';
	deep[sizeof(deep) - 1] = '\0';
	assert_int_equal(control_socket_path(deep, "demo", buf, sizeof(buf), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer than a unix socket allows"));

	setenv("KHYVE_RUNTIME_DIR", "/tmp/some/dir//", 1);
	assert_int_equal(control_runtime_dir(buf, sizeof(buf), err, sizeof(err)), 0);
	assert_string_equal(buf, "/tmp/some/dir");
	unsetenv("KHYVE_RUNTIME_DIR");
	if (geteuid() == 0) {
		assert_int_equal(control_runtime_dir(buf, sizeof(buf), err, sizeof(err)), 0);
		assert_string_equal(buf, "/run/khyve");
	}
}

/* ---- JSON ---- */

static void test_json_writer(void **state)
{
	struct json_writer w;
	jw_init(&w, 1024);
	jw_begin_object(&w, NULL);
	jw_string(&w, "s", "a\"b\\c\n\x01\x7f\xc3");
	jw_uint(&w, "u", UINT64_MAX);
	jw_bool(&w, "t", true);
	jw_hex(&w, "h", 0x1234, 8);
	jw_begin_array(&w, "a");
	jw_uint(&w, NULL, 1);
	jw_begin_object(&w, NULL);
	jw_end_object(&w);
	jw_begin_array(&w, NULL);
	jw_end_array(&w);
	jw_end_array(&w);
	jw_end_object(&w);
	assert_false(w.failed);
	assert_string_equal(w.buf, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\\u007f\\u00c3\","
			    "\"u\":18446744073709551615,\"t\":true,\"h\":\"0x00001234\","
			    "\"a\":[1,{},[]]}");
	/* What it writes, the reader reads back. */
	char err[128];
	struct json_value *v = json_parse(w.buf, w.len, err, sizeof(err));
	assert_non_null(v);
	uint64_t x;
	assert_true(json_u64(json_get(v, "u"), &x));
	assert_true(x == UINT64_MAX);
	assert_true(json_u64(json_get(v, "h"), &x));
	assert_int_equal(x, 0x1234);
	assert_string_equal(json_str(json_get(v, "s")), "a\"b\\c\n\x01\x7f\xc3\x83");
	json_free(v);
	jw_free(&w);

	/* Over the limit: failed, never a truncated document. */
	jw_init(&w, 16);
	jw_begin_object(&w, NULL);
	jw_string(&w, "k", "0123456789abcdef");
	jw_end_object(&w);
	assert_true(w.failed);
	jw_free(&w);
	/* Too deep, and unbalanced. */
	jw_init(&w, 1024);
	for (int i = 0; i <= JSON_MAX_DEPTH; i++)
		jw_begin_array(&w, NULL);
	assert_true(w.failed);
	jw_free(&w);
	jw_init(&w, 1024);
	jw_end_object(&w);
	assert_true(w.failed);
	jw_free(&w);
}

static void test_json_reader(void **state)
{
	char err[128];
	static const char *const good[] = {
		"{}", "[]", " {\"a\" : [1, -2.5e+3, 0, true, false, null, \"x\"] } ",
		"\"\\u00e9\\ud83d\\ude00\\/\"", "0", "-0.0e0", "{\"a\":{\"b\":{}}}",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct json_value *v = json_parse(good[i], strlen(good[i]), err, sizeof(err));
		if (!v)
			fail_msg("'%s' refused: %s", good[i], err);
		json_free(v);
	}
	struct json_value *v = json_parse(good[3], strlen(good[3]), err, sizeof(err));
	assert_string_equal(json_str(v), "\xc3\xa9\xf0\x9f\x98\x80/");
	json_free(v);

	static const char *const bad[] = {
		"", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "01", "1.", ".5",
		"-", "1e", "+1", "tru", "nul", "\"abc", "\"a\nb\"", "\"\\u0000\"", "\"\\ud800\"",
		"\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\x\"", "\"\\u12g4\"", "{} x", "[] []",
		"NaN", "'a'", "{\"a\":1}\n{}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = json_parse(bad[i], strlen(bad[i]), err, sizeof(err));
		if (v)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(strlen(err) > 0);
	}
	/* Embedded NUL bytes are not whitespace. */
	v = json_parse("{}\0", 3, err, sizeof(err));
	assert_null(v);

	char deep[2 * JSON_MAX_DEPTH + 4];
	size_t n = 0;
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		deep[n++] = ']';
	v = json_parse(deep, n, err, sizeof(err));
	assert_non_null(v);
	json_free(v);
	memmove(deep + 1, deep, n);
	deep[0] = '[';
	deep[n + 1] = ']';
	v = json_parse(deep, n + 2, err, sizeof(err));
	assert_null(v);
	assert_non_null(strstr(err, "nested deeper"));

	/* Numbers: only non-negative integers and 0x strings convert. */
	const char *nums = "[18446744073709551615, 18446744073709551616, -1, 1.5, 1e3, "
			   "\"0xffffffffffffffff\", \"0x10000000000000000\", \"0x\", \"12\", 7]";
	v = json_parse(nums, strlen(nums), err, sizeof(err));
	assert_non_null(v);
	uint64_t x;
	assert_true(json_u64(&v->items[0], &x) && x == UINT64_MAX);
	assert_false(json_u64(&v->items[1], &x));
	assert_false(json_u64(&v->items[2], &x));
	assert_false(json_u64(&v->items[3], &x));
	assert_false(json_u64(&v->items[4], &x));
	assert_true(json_u64(&v->items[5], &x) && x == UINT64_MAX);
	assert_false(json_u64(&v->items[6], &x));
	assert_false(json_u64(&v->items[7], &x));
	assert_false(json_u64(&v->items[8], &x));
	assert_true(json_u64(&v->items[9], &x) && x == 7);
	assert_null(json_get(v, "a"));
	assert_null(json_str(&v->items[0]));
	assert_false(json_u64(NULL, &x));
	json_free(v);
}

/* ---- verbs on a VM without KVM ---- */

static void fake_vm(struct vm *vm, const char *topo, uint32_t online)
{
	char err[256];
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = -1;
	vm->stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->name = "unit";
	vm->ram_size = 64 << 20;
	assert_int_equal(topology_parse(topo, &vm->topo, err, sizeof(err)), 0);
	ioport_bus_init(&vm->io);
	vm_lock_init(vm);
	vm->vcpus = calloc(vm->topo.maxcpus, sizeof(*vm->vcpus));
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		v->vm = vm;
		v->id = i;
		v->apic_id = topology_apic_id(&vm->topo, i);
		v->fd = -1;
		vcpu_lock_init(v);
		if (i < online) {
			/* A kick writes immediate_exit; no thread, so no signal. */
			v->run = calloc(1, sizeof(struct kvm_run));
			atomic_store(&v->created, true);
		}
	}
	atomic_store(&vm->online_vcpus, online);
}

static void free_vm(struct vm *vm)
{
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++) {
		free(vm->vcpus[i].run);
		vcpu_lock_destroy(&vm->vcpus[i]);
	}
	free(vm->vcpus);
	vm_lock_destroy(vm);
	ioport_bus_free(&vm->io);
	close(vm->stop_eventfd);
}

/* Run one raw request line; the parsed response (the caller frees). */
static struct json_value *run(struct vm *vm, const char *line)
{
	char *out, err[128];
	size_t len;
	control_handle_line(vm, NULL, line, strlen(line), &out, &len);
	assert_non_null(out);
	assert_int_equal(strlen(out), len);
	assert_null(memchr(out, '\n', len));
	struct json_value *v = json_parse(out, len, err, sizeof(err));
	if (!v)
		fail_msg("response to '%s' is not JSON (%s): %s", line, err, out);
	uint64_t proto;
	assert_true(json_u64(json_get(v, "proto"), &proto));
	assert_int_equal(proto, CONTROL_PROTO_VERSION);
	free(out);
	return v;
}

static bool ok(const struct json_value *v)
{
	const struct json_value *o = json_get(v, "ok");
	assert_non_null(o);
	assert_int_equal(o->type, JSON_BOOL);
	return o->boolean;
}

static uint64_t num(const struct json_value *v, const char *key)
{
	uint64_t x;
	if (!json_u64(json_get(v, key), &x))
		fail_msg("no number '%s'", key);
	return x;
}

static void expect_error(struct vm *vm, const char *line, const char *needle)
{
	struct json_value *v = run(vm, line);
	assert_false(ok(v));
	const char *e = json_str(json_get(v, "error"));
	assert_non_null(e);
	if (!strstr(e, needle))
		fail_msg("'%s': expected an error containing '%s', got '%s'", line, needle, e);
	json_free(v);
}

static void test_verbs(void **state)
{
	struct vm vm;
	fake_vm(&vm, "cpus=2,sockets=2,cores=2,threads=1,maxcpus=4", 2);
	atomic_store(&vm.vcpus[0].stats[VCPU_STAT_IO], 100);
	atomic_store(&vm.vcpus[0].stats[VCPU_STAT_INTR], 5);
	atomic_store(&vm.vcpus[1].stats[VCPU_STAT_MMIO], 7);
	atomic_store(&vm.io.unclaimed_writes, 99);

	struct json_value *v = run(&vm, "khyve/1 info");
	assert_true(ok(v));
	assert_string_equal(json_str(json_get(v, "verb")), "info");
	assert_string_equal(json_str(json_get(v, "name")), "unit");
	assert_string_equal(json_str(json_get(v, "state")), "running");
	assert_int_equal(num(v, "pid"), (uint64_t)getpid());
	assert_int_equal(num(v, "online"), 2);
	assert_int_equal(num(v, "maxcpus"), 4);
	assert_int_equal(num(v, "memory"), 64 << 20);
	json_free(v);

	v = run(&vm, "khyve/1 stats");
	assert_true(ok(v));
	const struct json_value *vc = json_get(v, "vcpus");
	assert_int_equal(vc->type, JSON_ARRAY);
	assert_int_equal(vc->n, 2);   /* online ones only */
	assert_int_equal(num(&vc->items[0], "total"), 105);
	assert_int_equal(num(json_get(&vc->items[0], "exits"), "io"), 100);
	assert_int_equal(num(json_get(&vc->items[1], "exits"), "mmio"), 7);
	assert_int_equal(num(json_get(v, "io_unclaimed"), "writes"), 99);
	assert_int_equal(json_get(v, "reasons")->n, VCPU_STAT_COUNT);
	/* The driver interface's counters, all of them (zero: no interface here). */
	const struct json_value *drv = json_get(v, "drv");
	assert_non_null(drv);
	assert_int_equal(drv->type, JSON_OBJECT);
	static const char *const drv_keys[] = { "holds", "leases_signed", "leases_broken",
						"lease_expiries", "map_changes", "hook_callbacks",
						"hook_writes", "msi_irqfd", "msi_signal",
						"routing_commits" };
	assert_int_equal(drv->n, sizeof(drv_keys) / sizeof(drv_keys[0]));
	for (size_t i = 0; i < drv->n; i++)
		assert_int_equal(num(drv, drv_keys[i]), 0);
	json_free(v);
	v = run(&vm, "khyve/1 stats 1");
	assert_true(ok(v));
	assert_int_equal(json_get(v, "vcpus")->n, 1);
	assert_int_equal(num(&json_get(v, "vcpus")->items[0], "cpu"), 1);
	assert_null(json_get(v, "drv"));   /* VM-wide: not in one vCPU's stats */
	json_free(v);

	/* add-memory: sizes it cannot add are refused before anything is mapped. */
	expect_error(&vm, "khyve/1 add-memory 1M", "the size must be 2 MiB to 64 GiB");
	expect_error(&vm, "khyve/1 add-memory 65G", "the size must be 2 MiB to 64 GiB");
	expect_error(&vm, "khyve/1 add-memory 3M", "the size must be a multiple of 2 MiB");
	expect_error(&vm, "khyve/1 add-memory 12X", "malformed size");
	assert_int_equal(vm.nhotmem, 0);

	v = run(&vm, "khyve/1 topology");
	assert_true(ok(v));
	assert_int_equal(num(v, "sockets"), 2);
	assert_int_equal(num(v, "cores"), 2);
	assert_int_equal(num(v, "threads"), 1);
	assert_int_equal(num(v, "cpus"), 2);
	assert_int_equal(num(v, "maxcpus"), 4);
	vc = json_get(v, "vcpus");
	assert_int_equal(vc->n, 4);
	assert_int_equal(num(&vc->items[3], "socket"), 1);
	assert_int_equal(num(&vc->items[3], "core"), 1);
	assert_int_equal(num(&vc->items[3], "apic_id"), topology_apic_id(&vm.topo, 3));
	assert_string_equal(json_str(json_get(&vc->items[0], "state")), "idle");
	assert_string_equal(json_str(json_get(&vc->items[3], "state")), "offline");
	json_free(v);

	/* Unknown and offline vCPUs, and a vCPU whose registers cannot be read. */
	expect_error(&vm, "khyve/1 regs 99", "no vCPU 99 (this VM has maxcpus 4)");
	expect_error(&vm, "khyve/1 stats 4", "no vCPU 4");
	expect_error(&vm, "khyve/1 regs 3", "vCPU 3 is not online");
	expect_error(&vm, "khyve/1 regs 0", "KVM_GET_REGS");
	assert_int_equal(vm.vcpus[0].freezers, 0);   /* the freeze was undone */
	assert_int_equal(vm.vcpus[0].state, VCPU_IDLE);

	/* Pause / resume and their misuse. */
	v = run(&vm, "khyve/1 pause");
	assert_true(ok(v));
	assert_string_equal(json_str(json_get(v, "state")), "paused");
	json_free(v);
	assert_int_equal(vm.vcpus[1].state, VCPU_FROZEN);
	expect_error(&vm, "khyve/1 pause", "already paused");
	v = run(&vm, "khyve/1 info");
	assert_string_equal(json_str(json_get(v, "state")), "paused");
	json_free(v);
	v = run(&vm, "khyve/1 resume");
	assert_true(ok(v));
	json_free(v);
	assert_int_equal(vm.vcpus[1].state, VCPU_IDLE);
	expect_error(&vm, "khyve/1 resume", "not paused");

	/* Hot-add needs KVM; its refusal is an answer, and maxcpus is reported. */
	expect_error(&vm, "khyve/1 add-cpu", "KVM_CREATE_VCPU");
	atomic_store(&vm.online_vcpus, 4);
	expect_error(&vm, "khyve/1 add-cpu", "maxcpus");
	atomic_store(&vm.online_vcpus, 2);

	/* Malformed input never changes the VM. */
	expect_error(&vm, "garbage", "malformed request");
	expect_error(&vm, "khyve/1 frob", "unknown verb");
	assert_int_equal(atomic_load(&vm.suspended), 0);

	/* Destroy: bhyve's status for a destroyed VM, and the reason recorded. */
	v = run(&vm, "khyve/1 destroy");
	assert_true(ok(v));
	assert_int_equal(num(v, "status"), CONTROL_DESTROY_STATUS);
	json_free(v);
	assert_int_equal(atomic_load(&vm.suspended), 1 + VM_EXIT_ERROR);
	assert_int_equal(CONTROL_DESTROY_STATUS, VM_EXIT_ERROR);
	assert_non_null(strstr(vm.error, "destroyed"));
	v = run(&vm, "khyve/1 info");
	assert_string_equal(json_str(json_get(v, "state")), "stopping");
	json_free(v);
	expect_error(&vm, "khyve/1 pause", "stopping");
	expect_error(&vm, "khyve/1 destroy", "already stopping");
	expect_error(&vm, "khyve/1 add-memory 2M", "stopping");
	free_vm(&vm);
}

/* ---- the server on a real socket ---- */

static char rundir[128];

static int connect_to(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.80s/%.20s.sock", rundir, name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Send raw bytes; read until n LFs or EOF; the text read. */
static char *exchange(int fd, const void *data, size_t len, int lines, bool shut)
{
	static char buf[65536];
	/* A refused connection may already be closed: EPIPE, but its answer waits. */
	if (len)
		(void)!send(fd, data, len, MSG_NOSIGNAL);
	if (shut)
		shutdown(fd, SHUT_WR);
	size_t got = 0;
	int seen = 0;
	while (seen < lines && got < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++)
			seen += buf[got + (size_t)i] == '\n';
		got += (size_t)r;
	}
	buf[got] = '\0';
	return buf;
}

static bool at_eof(int fd)
{
	char c;
	ssize_t r = read(fd, &c, 1);
	return r == 0 || (r < 0 && errno == ECONNRESET);
}

static void test_server(void **state)
{
	char err[256];
	snprintf(rundir, sizeof(rundir), "/tmp/khyve-unit-XXXXXX");
	assert_non_null(mkdtemp(rundir));
	char sub[sizeof(rundir)];
	snprintf(sub, sizeof(sub), "%.100s/run", rundir);
	setenv("KHYVE_RUNTIME_DIR", sub, 1);
	snprintf(rundir, sizeof(rundir), "%s", sub);

	struct vm vm;
	fake_vm(&vm, "2", 2);
	struct control *c = control_create("srv", err, sizeof(err));
	if (!c)
		fail_msg("control_create: %s", err);
	struct stat st;
	assert_int_equal(stat(rundir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	char path[100];
	snprintf(path, sizeof(path), "%.80s/srv.sock", rundir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	/* The name is taken while it listens, even before the thread runs. */
	assert_null(control_create("srv", err, sizeof(err)));
	assert_non_null(strstr(err, "already running"));
	assert_int_equal(control_start(c, &vm, NULL, err, sizeof(err)), 0);

	int fd = connect_to("srv");
	assert_true(fd >= 0);
	const char *r = exchange(fd, "khyve/1 info\nkhyve/1 topology\n", 30, 2, false);
	assert_non_null(strstr(r, "\"verb\":\"info\""));
	assert_non_null(strstr(r, "\"verb\":\"topology\""));
	/* A request in pieces is one request. */
	exchange(fd, "khyve/1 st", 10, 0, false);
	r = exchange(fd, "ats\n", 4, 1, false);
	assert_non_null(strstr(r, "\"verb\":\"stats\""));
	/* A malformed line is answered and the connection stays usable. */
	r = exchange(fd, "khyve/1 regs 77\nbad\0line\nkhyve/1 info\n", 38, 3, false);
	assert_non_null(strstr(r, "no vCPU 77"));
	assert_non_null(strstr(r, "byte 0x00"));
	assert_non_null(strstr(r, "\"verb\":\"info\""));
	close(fd);

	/* Too long: answered, then closed. */
	fd = connect_to("srv");
	char big[600];
	memset(big, 'x', sizeof(big));
	r = exchange(fd, big, CONTROL_REQUEST_MAX, 1, false);
	assert_non_null(strstr(r, "longer than"));
	assert_true(at_eof(fd));
	close(fd);
	/* No final newline: answered, then closed. */
	fd = connect_to("srv");
	r = exchange(fd, "khyve/1 info", 12, 1, true);
	assert_non_null(strstr(r, "not terminated by a newline"));
	assert_true(at_eof(fd));
	close(fd);
	/* A client that goes away mid-request costs nothing. */
	fd = connect_to("srv");
	exchange(fd, "khyve/1 in", 10, 0, false);
	close(fd);
	/* More connections than the server serves: the extra ones are told so. */
	int fds[20], refused = 0;
	for (int i = 0; i < 20; i++)
		fds[i] = connect_to("srv");
	for (int i = 0; i < 20; i++) {
		r = exchange(fds[i], "khyve/1 info\n", 13, 1, false);
		refused += strstr(r, "too many control connections") != NULL;
		if (!strstr(r, "too many"))
			assert_non_null(strstr(r, "\"ok\":true"));
	}
	assert_true(refused >= 4);
	for (int i = 0; i < 20; i++)
		close(fds[i]);

	/* The VM stops: the server still answers until it is torn down. */
	fd = connect_to("srv");
	r = exchange(fd, "khyve/1 destroy\n", 16, 1, false);
	assert_non_null(strstr(r, "\"status\":4"));
	r = exchange(fd, "khyve/1 info\n", 13, 1, false);
	assert_non_null(strstr(r, "stopping"));
	control_destroy(c);
	/* Teardown unlinks the socket, then closes connections. */
	assert_true(at_eof(fd));
	assert_int_equal(stat(path, &st), -1);
	close(fd);
	free_vm(&vm);

	/* A stale socket (nobody listening) is replaced; a non-socket is not. */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	c = control_create("srv", err, sizeof(err));
	if (!c)
		fail_msg("stale socket not replaced: %s", err);
	control_destroy(c);   /* never started: fine too */
	assert_int_equal(stat(path, &st), -1);
	FILE *f = fopen(path, "w");
	fclose(f);
	assert_null(control_create("srv", err, sizeof(err)));
	assert_non_null(strstr(err, "not a socket"));
	unlink(path);
	/* An unsafe RUNDIR is refused. */
	chmod(rundir, 0777);
	assert_null(control_create("srv", err, sizeof(err)));
	assert_non_null(strstr(err, "writable by group or others"));
	chmod(rundir, 0700);
	assert_null(control_create("bad/name", err, sizeof(err)));
	assert_non_null(strstr(err, "VM name"));

	rmdir(rundir);
	*strrchr(rundir, '/') = '\0';
	rmdir(rundir);
	unsetenv("KHYVE_RUNTIME_DIR");
}

/* ---- add-memory on a real KVM VM ---- */

/* A driver that breaks its lease from the expire callback, as vmm_drv.h allows. */
struct lease_driver {
	struct vmm_hold *hold;
	struct vmm_lease *lease;
	int expiries;
};

static void lease_expire(void *arg)
{
	struct lease_driver *d = arg;
	d->expiries++;
	vmm_drv_lease_break(d->hold, d->lease);
	d->lease = NULL;
}

static const struct json_value *drv_of(const struct json_value *stats)
{
	const struct json_value *d = json_get(stats, "drv");
	assert_non_null(d);
	return d;
}

static void test_add_memory_kvm(void **state)
{
	char err[512];
	struct vm vm;
	struct vm_options o = { .name = "test-add-memory", .mem_size = 8 << 20,
				.allow_emulated_kvm = getenv("KHYVE_TEST_ALLOW_EMULATED") != NULL };
	assert_int_equal(topology_parse("1", &o.topo, err, sizeof(err)), 0);
	if (vm_create(&vm, &o, err, sizeof(err))) {
		vm_destroy(&vm);
		printf("skipping: no KVM VM: %s\n", err);
		skip();
	}
	struct lease_driver d = { 0 };
	d.hold = vmm_drv_hold(&vm, NULL, NULL, err, sizeof(err));
	if (!d.hold)
		fail_msg("vmm_drv_hold: %s", err);
	d.lease = vmm_drv_lease_sign(d.hold, lease_expire, &d);
	assert_non_null(d.lease);
	assert_null(vmm_drv_gpa2kva(d.lease, 1ULL << 32, 4096));

	struct json_value *v = run(&vm, "khyve/1 stats");
	uint64_t changes0 = num(drv_of(v), "map_changes");
	assert_int_equal(num(drv_of(v), "holds"), 1);
	assert_int_equal(num(drv_of(v), "leases_signed"), 1);
	json_free(v);

	/* Above 4 GiB (the 8 MiB of RAM end far below), on a 1 GiB boundary. */
	v = run(&vm, "khyve/1 add-memory 64M");
	if (!ok(v))
		fail_msg("add-memory: %s", json_str(json_get(v, "error")));
	uint64_t gpa1 = num(v, "gpa");
	assert_true(gpa1 == 1ULL << 32);
	assert_int_equal(num(v, "size"), 64 << 20);
	assert_int_equal(num(v, "segments"), 2);
	assert_string_equal(json_str(json_get(v, "gpa")), "0x0000000100000000");
	json_free(v);
	/* The change expired the lease; the driver broke it and renews it now. */
	assert_int_equal(d.expiries, 1);
	assert_null(d.lease);
	d.lease = vmm_drv_lease_sign(d.hold, lease_expire, &d);
	assert_non_null(d.lease);
	uint8_t *p = vmm_drv_gpa2kva(d.lease, gpa1, 64 << 20);
	assert_non_null(p);
	assert_true(p == vm.hotmem[0].hva);
	p[0] = 0x5a;   /* real, writable memory */
	p[(64 << 20) - 1] = 0xa5;
	assert_null(vmm_drv_gpa2kva(d.lease, gpa1 + (64 << 20), 1));
	struct vmm_drv_segment seg[4];
	assert_int_equal(vmm_drv_lease_segments(d.lease, seg, 4), 2);

	/* The next one goes above it: the next 1 GiB boundary over the top of RAM. */
	char *out;
	size_t len;
	control_handle_line(&vm, NULL, "khyve/1 add-memory 2M", 21, &out, &len);
	v = json_parse(out, len, err, sizeof(err));
	free(out);
	assert_non_null(v);
	assert_true(ok(v));
	uint64_t gpa2 = num(v, "gpa");
	assert_true(gpa2 == 5ULL << 30);
	assert_int_equal(num(v, "segments"), 3);
	json_free(v);
	assert_int_equal(d.expiries, 2);
	d.lease = vmm_drv_lease_sign(d.hold, lease_expire, &d);
	assert_non_null(vmm_drv_gpa2kva(d.lease, gpa2, 2 << 20));
	assert_int_equal(vmm_drv_lease_segments(d.lease, seg, 4), 3);

	v = run(&vm, "khyve/1 stats");
	assert_int_equal(num(drv_of(v), "map_changes"), changes0 + 2);
	assert_int_equal(num(drv_of(v), "lease_expiries"), 2);
	assert_int_equal(num(drv_of(v), "leases_broken"), 2);
	assert_int_equal(num(drv_of(v), "leases_signed"), 3);
	json_free(v);
	v = run(&vm, "khyve/1 info");
	assert_int_equal(num(v, "memory_added"), (64 + 2) << 20);
	json_free(v);

	/* A refusal changes nothing: no map change, the lease stands. */
	expect_error(&vm, "khyve/1 add-memory 3M", "multiple of 2 MiB");
	assert_int_equal(d.expiries, 2);
	assert_int_equal(vm.nhotmem, 2);

	vmm_drv_lease_break(d.hold, d.lease);
	vmm_drv_rele(d.hold);
	/* vm_destroy unmaps the hot-added RAM with the rest. */
	uint8_t *hva = vm.hotmem[0].hva;
	vm_destroy(&vm);
	assert_null(vm.hotmem);
	assert_int_equal(vm.nhotmem, 0);
	unsigned char vec;
	assert_int_equal(mincore(hva, 4096, &vec), -1);
	assert_int_equal(errno, ENOMEM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_names_and_paths),
		cmocka_unit_test(test_json_writer),
		cmocka_unit_test(test_json_reader),
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_server),
		cmocka_unit_test(test_add_memory_kvm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
