/*
 * Fuzz target: the control protocol (control.c, control_json.c), both ends.
 *
 * The whole input is, at once:
 *   1. a request line for control_parse_request() (the bytes after the
 *      first LF are ignored, as the server would treat them as the next
 *      line);
 *   2. that line executed by control_handle_line() against a VM with no KVM
 *      behind it (2 of 4 vCPUs created, zeroed kvm_run pages so kicks land
 *      harmlessly, fds of -1 so register reads and hot-add fail), fresh for
 *      every input so pause and destroy cannot leak into the next one;
 *   3. a response for json_parse(), as khyvectl reads it.
 *
 * Invariants: a refused request has a one-line reason; an accepted one
 * formats back to a line that parses to the same request; every response
 * is one line of valid JSON with "ok" and "proto":1, within
 * CONTROL_RESPONSE_MAX, and an error response has an "error" string;
 * malformed requests leave the VM running and unpaused with no vCPU
 * frozen; a parsed JSON value written back out with the writer parses
 * again to the same shape.
 */
#include "fuzz.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "control.h"
#include "topology.h"
#include "vcpu.h"
#include "vm_lock.h"

static void make_vm(struct vm *vm)
{
	char err[256];
	fuzz_fake_vm(vm);
	vm->name = "fuzz";
	vm->stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	FUZZ_CHECK(topology_parse("cpus=2,sockets=2,cores=2,maxcpus=4", &vm->topo, err,
				  sizeof(err)) == 0);
	vm_lock_init(vm);
	vm->vcpus = calloc(vm->topo.maxcpus, sizeof(*vm->vcpus));
	FUZZ_CHECK(vm->vcpus != NULL);
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		v->vm = vm;
		v->id = i;
		v->apic_id = topology_apic_id(&vm->topo, i);
		v->fd = -1;
		vcpu_lock_init(v);
		if (i < vm->topo.cpus) {
			v->run = calloc(1, sizeof(struct kvm_run));
			FUZZ_CHECK(v->run != NULL);
			atomic_store(&v->created, true);
			atomic_store(&v->stats[VCPU_STAT_IO], 1000 + i);
		}
	}
	atomic_store(&vm->online_vcpus, vm->topo.cpus);
}

static void free_vm(struct vm *vm)
{
	for (uint32_t i = 0; i < vm->topo.maxcpus; i++) {
		FUZZ_CHECK(vm->vcpus[i].freezers == 0 || vm->paused);
		free(vm->vcpus[i].run);
		vcpu_lock_destroy(&vm->vcpus[i]);
	}
	free(vm->vcpus);
	vm_lock_destroy(vm);
	ioport_bus_free(&vm->io);
	close(vm->stop_eventfd);
}

/* Write v back out with the writer. */
static void rewrite(struct json_writer *w, const char *key, const struct json_value *v)
{
	switch (v->type) {
	case JSON_NULL:
	case JSON_NUMBER:
		/* The writer has no null or float: an integer stands in. */
		jw_uint(w, key, 0);
		break;
	case JSON_BOOL:
		jw_bool(w, key, v->boolean);
		break;
	case JSON_STRING:
		jw_string(w, key, v->text);
		break;
	case JSON_ARRAY:
	case JSON_OBJECT:
		if (v->type == JSON_ARRAY)
			jw_begin_array(w, key);
		else
			jw_begin_object(w, key);
		for (size_t i = 0; i < v->n; i++)
			rewrite(w, v->type == JSON_OBJECT ? v->keys[i] : NULL, &v->items[i]);
		if (v->type == JSON_ARRAY)
			jw_end_array(w);
		else
			jw_end_object(w);
		break;
	}
}

static bool same_shape(const struct json_value *a, const struct json_value *b)
{
	bool scalar_a = a->type == JSON_NULL || a->type == JSON_NUMBER;
	bool scalar_b = b->type == JSON_NUMBER;
	if (scalar_a || scalar_b)
		return scalar_a && scalar_b;
	if (a->type != b->type || a->n != b->n)
		return false;
	if (a->type == JSON_BOOL)
		return a->boolean == b->boolean;
	for (size_t i = 0; i < a->n; i++) {
		if (a->type == JSON_OBJECT && strcmp(a->keys[i], b->keys[i]) != 0)
			return false;
		if (!same_shape(&a->items[i], &b->items[i]))
			return false;
	}
	return true;
}

static void check_json(const uint8_t *data, size_t size)
{
	char err[256] = "";
	struct json_value *v = json_parse((const char *)data, size, err, sizeof(err));
	if (!v) {
		FUZZ_CHECK(err[0] != '\0');
		return;
	}
	uint64_t x;
	(void)json_u64(v, &x);
	(void)json_str(v);
	(void)json_get(v, "ok");
	struct json_writer w;
	jw_init(&w, 1u << 20);
	rewrite(&w, NULL, v);
	if (!w.failed) {
		FUZZ_CHECK(w.depth == 0);
		struct json_value *again = json_parse(w.buf, w.len, err, sizeof(err));
		FUZZ_CHECK(again != NULL);
		/* Strings written with non-ASCII bytes come back re-encoded; the
		 * shape (types, counts, keys of ASCII) is what must survive. */
		FUZZ_CHECK(again->type == v->type || v->type == JSON_NULL ||
			   v->type == JSON_NUMBER);
		if (v->type == JSON_ARRAY || v->type == JSON_OBJECT)
			FUZZ_CHECK(again->n == v->n);
		bool ascii = true;
		for (size_t i = 0; i < size; i++)
			ascii &= data[i] < 0x80 && !(data[i] == '\\' && i + 1 < size &&
						     data[i + 1] == 'u');
		if (ascii)
			FUZZ_CHECK(same_shape(v, again));
		json_free(again);
	}
	jw_free(&w);
	json_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	const uint8_t *lf = memchr(data, '\n', size);
	size_t len = lf ? (size_t)(lf - data) : size;

	/* 1. The parser, and the formatter round trip. */
	struct control_request req, again;
	char err[256] = "";
	bool accepted = control_parse_request(line, len, &req, err, sizeof(err)) == 0;
	if (accepted) {
		char buf[CONTROL_REQUEST_MAX];
		int n = control_format_request(&req, buf, sizeof(buf));
		FUZZ_CHECK(n > 0 && buf[n - 1] == '\n');
		FUZZ_CHECK(control_parse_request(buf, (size_t)n - 1, &again, err, sizeof(err)) == 0);
		FUZZ_CHECK(again.verb == req.verb && again.has_cpu == req.has_cpu &&
			   again.cpu == req.cpu);
		/* Strict: the canonical form is the only spelling. */
		FUZZ_CHECK((size_t)n - 1 == len && memcmp(buf, line, len) == 0);
	} else {
		size_t n = strnlen(err, sizeof(err));
		FUZZ_CHECK(n > 0 && n < sizeof(err) && !memchr(err, '\n', n));
	}

	/* 2. The server's answer, against a VM. */
	struct vm vm;
	make_vm(&vm);
	char *out = NULL;
	size_t outlen = 0;
	control_handle_line(&vm, NULL, line, len, &out, &outlen);
	FUZZ_CHECK(out != NULL && outlen > 0 && outlen < CONTROL_RESPONSE_MAX);
	FUZZ_CHECK(strlen(out) == outlen && !memchr(out, '\n', outlen));
	struct json_value *resp = json_parse(out, outlen, err, sizeof(err));
	FUZZ_CHECK(resp != NULL && resp->type == JSON_OBJECT);
	const struct json_value *ok = json_get(resp, "ok");
	uint64_t proto;
	FUZZ_CHECK(ok && ok->type == JSON_BOOL);
	FUZZ_CHECK(json_u64(json_get(resp, "proto"), &proto) && proto == CONTROL_PROTO_VERSION);
	if (!ok->boolean)
		FUZZ_CHECK(json_str(json_get(resp, "error")) != NULL);
	if (!accepted) {
		FUZZ_CHECK(!ok->boolean);
		FUZZ_CHECK(atomic_load(&vm.suspended) == 0 && !vm.paused);
		for (uint32_t i = 0; i < vm.topo.maxcpus; i++)
			FUZZ_CHECK(vm.vcpus[i].freezers == 0);
	}
	json_free(resp);
	free(out);
	free_vm(&vm);

	/* 3. The client's reader. */
	check_json(data, size);
	return 0;
}
