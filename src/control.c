/*
 * THE CONTROL PLANE — theory statement and protocol
 * =================================================
 *
 * Every running VM listens on a unix stream socket, RUNDIR/NAME.sock, and
 * khyvectl (src/khyvectl.c) talks to it. bhyvectl reaches a bhyve VM through
 * the vmm device in the kernel; a KVM VM only exists inside the khyve process
 * that created it, so that process has to answer for it.
 *
 * Where: RUNDIR is $KHYVE_RUNTIME_DIR if set, else /run/khyve for root, else
 * $XDG_RUNTIME_DIR/khyve. khyve creates it (only its last component) with
 * mode 0700 and refuses one that is not a directory, is owned by another
 * user, or is writable by group or others. The socket is made 0600.
 *
 * One VM per name: before binding, khyve takes an flock on RUNDIR (so two
 * khyves starting at once cannot both decide the name is free), then looks
 * at NAME.sock: if something accepts a connection there a live VM owns the
 * name and khyve refuses to start; if the connection is refused the socket
 * is stale (its khyve died without cleaning up) and is removed. A path that
 * exists but is not a socket is never removed. At teardown khyve unlinks the
 * socket only if the path still names the very socket it bound (same device
 * and inode), so it never removes a successor's.
 *
 * Who: the socket's 0600 mode is the first fence; the second is
 * SO_PEERCRED on every accepted connection. Only the uid khyve runs as, or
 * root, may talk to it; anyone else gets one error response and is
 * disconnected before any request is read.
 *
 * The control thread. One thread, not a vCPU thread, serves every
 * connection with poll(): the listening socket, a stop eventfd and at most
 * CONTROL_MAX_CLIENTS connections (a connection over that gets an error and
 * is closed). It is started after machine_assemble() and before vm_run(),
 * with every signal blocked (the process's SIGINT/SIGTERM/SIGHUP belong to
 * vm_run's signalfd, and SIGUSR1 is the vCPU kick), and it keeps serving
 * until control_destroy() writes the stop eventfd and joins it, after
 * vm_run() has returned: a VM that has stopped can still be inspected until
 * khyve tears it down. Every socket is non-blocking and written with
 * MSG_NOSIGNAL, so a client that vanishes costs an EPIPE, never a SIGPIPE;
 * a client that stops reading only stops being read from (its pending
 * response is its whole budget), and a connection idle for
 * CONTROL_IDLE_SECONDS is closed.
 *
 * Locking (vm_lock.c is the model, and this follows it). The control thread
 * holds no device lock and takes the map lock only for add-memory, holding
 * nothing else, so it may wait for freezes and for drivers:
 *   - regs:     vcpu_freeze / KVM_GET_REGS, KVM_GET_SREGS, MP state /
 *               vcpu_unfreeze, on that vCPU alone; the others keep running.
 *               The state it reports is the one seen before freezing.
 *   - pause/resume: vm_pause / vm_resume (lock-all held until resume).
 *   - add-cpu:  cpu_hotplug_add (lock-all inside).
 *   - add-memory: vm_add_memory, a memory-map change: it takes the map
 *               write lock, so it first expires every driver lease and
 *               waits until each is broken (vmm_drv.c); drivers renew them
 *               after. The control thread holds no lock meanwhile, so a
 *               driver that needs any lock to break its lease gets it.
 *   - destroy:  vm_fail() with the reason, i.e. vm_suspend(VM_EXIT_ERROR):
 *               bhyve exits 4 for a VM destroyed under it (VM_SUSPEND_DESTROY).
 *   - stats, topology, info: relaxed atomics and each vCPU's own mutex (a
 *               leaf, held for one load), and for stats the driver
 *               interface's counters (vmm_drv_get_stats: relaxed atomics
 *               and two leaf mutexes): no vCPU is stopped.
 * A request that fails (unknown vCPU, already paused, maxcpus reached) is an
 * error response; nothing a client sends can stop the VM except destroy.
 *
 * THE PROTOCOL, version 1
 * -----------------------
 * Line-oriented over the stream socket. The client sends request lines, the
 * server answers each with exactly one response line, in order. Several
 * requests may share a connection.
 *
 *   request  = "khyve/1" SP verb [SP argument] LF
 *   verb     = "info" | "stats" | "regs" | "pause" | "resume" | "destroy"
 *            | "topology" | "add-cpu" | "add-memory"
 *   argument = for regs (required) and stats (optional: one vCPU), a vCPU
 *              index in decimal, "0" or [1-9][0-9]*, at most 2^32-1;
 *              for add-memory (required), SIZE: [1-9][0-9]* bytes, or
 *              that number with one suffix K, M, G or T (binary units:
 *              "64M", "1G"); a bare number is bytes, not megabytes as in
 *              khyve -m. Absent for every other verb.
 *
 * Strictness: a line is at most CONTROL_REQUEST_MAX bytes with its LF, holds
 * only printable ASCII (0x20-0x7e), tokens are separated by exactly one
 * space, with none leading or trailing. A request with another version
 * token is refused with the version this khyve speaks. A line too long, or
 * data that ends without an LF, gets one error response and the connection
 * is closed (there is no way to resynchronize); any other malformed line
 * gets an error response and the connection stays usable.
 *
 *   response = JSON-object LF          (at most CONTROL_RESPONSE_MAX bytes)
 *
 * Every response has "ok" (bool) and "proto" (1); errors have "error" (a
 * one-line message) and, when the verb was understood, "verb". Successes
 * have "verb" and:
 *   info      name, pid, uid, state ("running" | "paused" | "stopping"),
 *             cpus, online, maxcpus, memory (boot RAM, bytes), memory_added
 *             (khyvectl --add-memory segments, bytes)
 *   stats     reasons (the exit reason names, in order), vcpus: [{cpu,
 *             exits: {reason: count...}, total}] for every online vCPU (or
 *             the one asked for), io_unclaimed: {reads, writes}; the
 *             whole-VM form (no vCPU) also drv: the driver interface's
 *             counters (vmm_drv.h) {holds, leases_signed, leases_broken,
 *             lease_expiries, map_changes, hook_callbacks, hook_writes,
 *             msi_irqfd, msi_signal, routing_commits}
 *   regs      cpu, apic_id, state (vm_lock.h: idle | frozen | running),
 *             activity (vcpu.h: running | sleeping | halted | parked |
 *             unknown), regs: {rax..r15, rip, rflags, cr0, cr2, cr3, cr4,
 *             cr8, efer, apic_base}, segments: {cs, ds, es, fs, gs, ss, tr,
 *             ldtr: {selector, base, limit, access}}, gdtr/idtr: {base,
 *             limit}. Register values are "0x..." strings: 64-bit numbers
 *             do not survive every JSON reader. access is VMX-style access
 *             rights (type, S<<4, DPL<<5, P<<7, AVL<<12, L<<13, D/B<<14,
 *             G<<15, unusable<<16), as bhyvectl prints them.
 *   pause, resume   state
 *   destroy   status (the exit status khyve will have: 4)
 *   topology  sockets, cores, threads, cpus, maxcpus, online, vcpus:
 *             [{cpu, apic_id, socket, core, thread, state}] for all maxcpus
 *             vCPUs; state is "offline" for one not hot-added yet
 *   add-cpu   cpu, apic_id, online, maxcpus
 *   add-memory  gpa (a "0x..." string: where the new RAM starts), size
 *             (bytes), segments (RAM segments in the memory map after the
 *             add). The guest is not told yet (vm.h: vm_add_memory).
 *
 * Examples:
 *   > khyve/1 regs 0
 *   < {"ok":true,"proto":1,"verb":"regs","cpu":0,...}
 *   > khyve/1 regs 99
 *   < {"ok":false,"proto":1,"verb":"regs","error":"no vCPU 99 (this VM has maxcpus 2)"}
 *   > khyve/1 add-memory 64M
 *   < {"ok":true,"proto":1,"verb":"add-memory","gpa":"0x0000000100000000",
 *      "size":67108864,"segments":2}
 */
#include "control.h"
#include "errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cpu_hotplug.h"
#include "size.h"
#include "topology.h"
#include "vcpu.h"
#include "vm.h"
#include "vm_lock.h"
#include "vmm_drv.h"

/* vm_fail() stops the VM with VM_EXIT_ERROR: that must be bhyve's status. */
_Static_assert(CONTROL_DESTROY_STATUS == VM_EXIT_ERROR, "destroy exits as bhyve does");

#define CONTROL_MAX_CLIENTS 16
#define CONTROL_IDLE_SECONDS 60

/* ---- requests ---- */

static const char *const verb_names[CONTROL_VERB_COUNT] = {
	[CONTROL_INFO] = "info",
	[CONTROL_STATS] = "stats",
	[CONTROL_REGS] = "regs",
	[CONTROL_PAUSE] = "pause",
	[CONTROL_RESUME] = "resume",
	[CONTROL_DESTROY] = "destroy",
	[CONTROL_TOPOLOGY] = "topology",
	[CONTROL_ADD_CPU] = "add-cpu",
	[CONTROL_ADD_MEMORY] = "add-memory",
};

const char *control_verb_name(enum control_verb v)
{
	return (unsigned)v < CONTROL_VERB_COUNT ? verb_names[v] : "?";
}

static bool token_is(const char *tok, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(tok, word, len) == 0;
}

static int parse_cpu(const char *tok, size_t len, uint32_t *out, char *err, size_t errlen)
{
	if (len == 0 || len > 10 || (len > 1 && tok[0] == '0'))
		goto bad;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			goto bad;
		v = v * 10 + (uint64_t)(tok[i] - '0');
	}
	if (v > UINT32_MAX)
		goto bad;
	*out = (uint32_t)v;
	return 0;
bad:
	return fail_with(err, errlen, "malformed vCPU number '%.*s' (a decimal index)",
		    (int)(len > 16 ? 16 : len), tok);
}

int control_parse_size(const char *tok, size_t len, uint64_t *bytes, unsigned *shift,
		       char *err, size_t errlen)
{
	/* [1-9][0-9]* and at most one suffix: one spelling per request, as everywhere. */
	size_t nd = 0;
	while (nd < len && tok[nd] >= '0' && tok[nd] <= '9')
		nd++;
	const char *units = "KMGT";
	const char *u = nd + 1 == len ? strchr(units, tok[nd]) : NULL;
	if (nd == 0 || nd > 20 || tok[0] == '0' || (nd != len && (!u || !*u)))
		goto bad;
	/* 20 digits and a suffix; size_parse wants a NUL-terminated copy. */
	char buf[24];
	memcpy(buf, tok, len);
	buf[len] = '\0';
	uint64_t v = 0;
	if (u) {
		char why[96];
		if (size_parse(buf, &v, why, sizeof(why)))
			goto bad;   /* too large */
	} else {
		/* Bytes: size_parse would read a bare number as megabytes (bhyve -m). */
		for (size_t i = 0; i < nd; i++) {
			unsigned d = (unsigned)(tok[i] - '0');
			if (v > (UINT64_MAX - d) / 10)
				goto bad;
			v = v * 10 + d;
		}
	}
	*bytes = v;
	if (shift)
		*shift = u ? 10 * (unsigned)(u - units + 1) : 0;
	return 0;
bad:
	return fail_with(err, errlen, "malformed size '%.*s' (bytes, or a number with a K, M, G "
		    "or T suffix, e.g. 64M)", (int)(len > 24 ? 24 : len), tok);
}

int control_parse_request(const char *line, size_t len, struct control_request *req,
			  char *err, size_t errlen)
{
	memset(req, 0, sizeof(*req));
	req->verb = CONTROL_VERB_COUNT;
	if (len == 0)
		return fail_with(err, errlen, "empty request (expected '%s VERB')", CONTROL_PROTO_TOKEN);
	if (len >= CONTROL_REQUEST_MAX)
		return fail_with(err, errlen, "request longer than %d bytes", CONTROL_REQUEST_MAX - 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c > 0x7e)
			return fail_with(err, errlen, "malformed request: byte 0x%02x at offset %zu is not "
				    "printable ASCII", c, i);
	}
	/* Split on single spaces; at most three tokens are meaningful. */
	const char *tok[4];
	size_t tlen[4], n = 0;
	for (size_t i = 0; i <= len;) {
		size_t j = i;
		while (j < len && line[j] != ' ')
			j++;
		if (j == i)
			return fail_with(err, errlen, "malformed request: %s space",
				    i == 0 ? "leading" : i == len ? "trailing" : "double");
		if (n == 4)
			return fail_with(err, errlen, "malformed request: too many words");
		tok[n] = line + i;
		tlen[n++] = j - i;
		i = j + 1;
	}
	if (!token_is(tok[0], tlen[0], CONTROL_PROTO_TOKEN)) {
		if (tlen[0] > 6 && memcmp(tok[0], "khyve/", 6) == 0)
			return fail_with(err, errlen, "unsupported protocol version '%.*s' (this khyve "
				    "speaks %s)", (int)(tlen[0] > 16 ? 16 : tlen[0]), tok[0],
				    CONTROL_PROTO_TOKEN);
		return fail_with(err, errlen, "malformed request: expected '%s VERB ...'",
			    CONTROL_PROTO_TOKEN);
	}
	if (n < 2)
		return fail_with(err, errlen, "malformed request: no verb");
	int v;
	for (v = 0; v < CONTROL_VERB_COUNT; v++)
		if (token_is(tok[1], tlen[1], verb_names[v]))
			break;
	if (v == CONTROL_VERB_COUNT)
		return fail_with(err, errlen, "unknown verb '%.*s' (info, stats, regs, pause, resume, "
			    "destroy, topology, add-cpu, add-memory)",
			    (int)(tlen[1] > 24 ? 24 : tlen[1]), tok[1]);
	req->verb = (enum control_verb)v;
	size_t nargs = n - 2;
	switch (req->verb) {
	case CONTROL_REGS:
		if (nargs != 1)
			return fail_with(err, errlen, "regs takes one argument: a vCPU number");
		break;
	case CONTROL_STATS:
		if (nargs > 1)
			return fail_with(err, errlen, "stats takes at most one argument: a vCPU number");
		break;
	case CONTROL_ADD_MEMORY:
		if (nargs != 1)
			return fail_with(err, errlen, "add-memory takes one argument: a size (e.g. 64M)");
		return control_parse_size(tok[2], tlen[2], &req->size, &req->size_shift, err, errlen);
	default:
		if (nargs != 0)
			return fail_with(err, errlen, "%s takes no argument", verb_names[v]);
		break;
	}
	if (nargs == 1) {
		if (parse_cpu(tok[2], tlen[2], &req->cpu, err, errlen))
			return -1;
		req->has_cpu = true;
	}
	return 0;
}

int control_format_request(const struct control_request *req, char *buf, size_t len)
{
	if ((unsigned)req->verb >= CONTROL_VERB_COUNT)
		return -1;
	int n;
	if (req->verb == CONTROL_ADD_MEMORY) {
		/* In the unit it was parsed with: the same line back. */
		static const char unit[] = { '\0', 'K', 'M', 'G', 'T' };
		unsigned sh = req->size_shift;
		if (sh % 10 || sh > 40 || req->size == 0 || req->size & ((1ULL << sh) - 1))
			return -1;
		n = snprintf(buf, len, "%s %s %llu%.1s\n", CONTROL_PROTO_TOKEN,
			     verb_names[req->verb], (unsigned long long)(req->size >> sh),
			     &unit[sh / 10]);
	}
	else if (req->has_cpu)
		n = snprintf(buf, len, "%s %s %u\n", CONTROL_PROTO_TOKEN, verb_names[req->verb],
			     req->cpu);
	else
		n = snprintf(buf, len, "%s %s\n", CONTROL_PROTO_TOKEN, verb_names[req->verb]);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* ---- names and paths ---- */

int control_check_name(const char *name, char *err, size_t errlen)
{
	size_t n = name ? strlen(name) : 0;
	bool ok = n > 0 && n <= CONTROL_NAME_MAX && name[0] != '.' && name[0] != '-';
	for (size_t i = 0; ok && i < n; i++) {
		char c = name[i];
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '.' || c == '_' || c == '-' || c == '+';
	}
	if (ok)
		return 0;
	return fail_with(err, errlen, "VM name '%.*s%s': use 1 to %d letters, digits, '.', '_', '-' "
		    "or '+', not starting with '.' or '-'", 32, name ? name : "",
		    n > 32 ? "..." : "", CONTROL_NAME_MAX);
}

int control_runtime_dir(char *buf, size_t len, char *err, size_t errlen)
{
	const char *env = getenv("KHYVE_RUNTIME_DIR");
	int n;
	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/khyve");
	else if ((env = getenv("XDG_RUNTIME_DIR")) && *env)
		n = snprintf(buf, len, "%s/khyve", env);
	else
		return fail_with(err, errlen, "no runtime directory for control sockets: set "
			    "KHYVE_RUNTIME_DIR (or XDG_RUNTIME_DIR)");
	if (n < 0 || (size_t)n >= len)
		return fail_with(err, errlen, "runtime directory path too long");
	/* "dir/" and "/dir/" are the same place: keep paths tidy in messages. */
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return 0;
}

int control_socket_path(const char *dir, const char *name, char *buf, size_t len, char *err,
			size_t errlen)
{
	if (control_check_name(name, err, errlen))
		return -1;
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n = snprintf(buf, len, "%s/%s.sock", dir, name);
	if (n < 0 || (size_t)n >= len || (size_t)n >= max)
		return fail_with(err, errlen, "the control socket path (%zu bytes) is longer than a "
			    "unix socket allows (%zu): use a shorter KHYVE_RUNTIME_DIR or VM name",
			    strlen(dir) + strlen(name) + 6, max - 1);
	return 0;
}

/* ---- responses ---- */

static void begin_response(struct json_writer *w, bool ok, const struct control_request *req)
{
	jw_begin_object(w, NULL);
	jw_bool(w, "ok", ok);
	jw_uint(w, "proto", CONTROL_PROTO_VERSION);
	if (req && (unsigned)req->verb < CONTROL_VERB_COUNT)
		jw_string(w, "verb", verb_names[req->verb]);
}

static void error_response(const struct control_request *req, const char *msg, char **out,
			   size_t *outlen)
{
	struct json_writer w;
	jw_init(&w, CONTROL_REQUEST_MAX * 4);
	begin_response(&w, false, req);
	jw_string(&w, "error", msg);
	jw_end_object(&w);
	if (w.failed) {
		/* Only out of memory: answer something well-formed anyway. */
		jw_free(&w);
		*out = strdup("{\"ok\":false,\"proto\":1,\"error\":\"out of memory\"}");
		*outlen = *out ? strlen(*out) : 0;
		return;
	}
	*out = w.buf;
	*outlen = w.len;
}

static void finish(struct json_writer *w, const struct control_request *req, char **out,
		   size_t *outlen)
{
	jw_end_object(w);
	if (w->failed || w->depth != 0) {
		jw_free(w);
		error_response(req, "response too large or out of memory", out, outlen);
		return;
	}
	*out = w->buf;
	*outlen = w->len;
}

static const char *const stat_names[VCPU_STAT_COUNT] = {
	[VCPU_STAT_IO] = "io",
	[VCPU_STAT_MMIO] = "mmio",
	[VCPU_STAT_INTR] = "intr",
	[VCPU_STAT_SHUTDOWN] = "shutdown",
	[VCPU_STAT_HLT] = "hlt",
	[VCPU_STAT_OTHER] = "other",
};

static bool vm_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->lockall_mutex);
	bool p = vm->paused;
	pthread_mutex_unlock(&vm->lockall_mutex);
	return p;
}

static const char *vm_state(struct vm *vm)
{
	if (atomic_load(&vm->suspended))
		return "stopping";
	return vm_paused(vm) ? "paused" : "running";
}

static int check_cpu(struct vm *vm, uint32_t cpu, char *err, size_t errlen)
{
	if (cpu >= vm->topo.maxcpus)
		return fail_with(err, errlen, "no vCPU %u (this VM has maxcpus %u)", cpu,
			    vm->topo.maxcpus);
	if (!atomic_load(&vm->vcpus[cpu].created))
		return fail_with(err, errlen, "vCPU %u is not online (%u of %u online; see add-cpu)",
			    cpu, atomic_load(&vm->online_vcpus), vm->topo.maxcpus);
	return 0;
}

static void do_info(struct vm *vm, struct json_writer *w)
{
	jw_string(w, "name", vm->name ? vm->name : "");
	jw_uint(w, "pid", (uint64_t)getpid());
	jw_uint(w, "uid", (uint64_t)geteuid());
	jw_string(w, "state", vm_state(vm));
	jw_uint(w, "cpus", vm->topo.cpus);
	jw_uint(w, "online", atomic_load(&vm->online_vcpus));
	jw_uint(w, "maxcpus", vm->topo.maxcpus);
	jw_uint(w, "memory", vm->ram_size);
	/* Hot-added (khyvectl --add-memory), under the map lock it changes under. */
	uint64_t added = 0;
	vm_map_rdlock(vm);
	for (size_t i = 0; i < vm->nhotmem; i++)
		added += vm->hotmem[i].len;
	vm_map_rdunlock(vm);
	jw_uint(w, "memory_added", added);
}

static void stats_of(struct json_writer *w, struct vcpu *v)
{
	uint64_t total = 0;
	jw_begin_object(w, NULL);
	jw_uint(w, "cpu", v->id);
	jw_begin_object(w, "exits");
	for (int s = 0; s < VCPU_STAT_COUNT; s++) {
		uint64_t c = atomic_load_explicit(&v->stats[s], memory_order_relaxed);
		total += c;
		jw_uint(w, stat_names[s], c);
	}
	jw_end_object(w);
	jw_uint(w, "total", total);
	jw_end_object(w);
}

static void do_stats(struct vm *vm, const struct control_request *req, struct json_writer *w)
{
	jw_begin_array(w, "reasons");
	for (int s = 0; s < VCPU_STAT_COUNT; s++)
		jw_string(w, NULL, stat_names[s]);
	jw_end_array(w);
	jw_begin_array(w, "vcpus");
	if (req->has_cpu) {
		stats_of(w, &vm->vcpus[req->cpu]);
	} else {
		for (uint32_t i = 0; i < vm->topo.maxcpus; i++)
			if (atomic_load(&vm->vcpus[i].created))
				stats_of(w, &vm->vcpus[i]);
	}
	jw_end_array(w);
	jw_begin_object(w, "io_unclaimed");
	jw_uint(w, "reads", atomic_load_explicit(&vm->io.unclaimed_reads, memory_order_relaxed));
	jw_uint(w, "writes", atomic_load_explicit(&vm->io.unclaimed_writes, memory_order_relaxed));
	jw_end_object(w);
	if (req->has_cpu)
		return;
	/* VM-wide, so only in the whole-VM form: a vCPU's stats are that vCPU's. */
	struct vmm_drv_stats d;
	vmm_drv_get_stats(vm, &d);
	jw_begin_object(w, "drv");
	jw_uint(w, "holds", d.holds);
	jw_uint(w, "leases_signed", d.leases_signed);
	jw_uint(w, "leases_broken", d.leases_broken);
	jw_uint(w, "lease_expiries", d.lease_expiries);
	jw_uint(w, "map_changes", d.map_changes);
	jw_uint(w, "hook_callbacks", d.hook_callbacks);
	jw_uint(w, "hook_writes", d.hook_writes);
	jw_uint(w, "msi_irqfd", d.msi_irqfd);
	jw_uint(w, "msi_signal", d.msi_signal);
	jw_uint(w, "routing_commits", d.routing_commits);
	jw_end_object(w);
}

static enum vcpu_state read_state(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	enum vcpu_state s = v->state;
	pthread_mutex_unlock(&v->lock);
	return s;
}

/* VMX-style access rights from KVM's unpacked segment. */
static uint32_t seg_access(const struct kvm_segment *s)
{
	return (uint32_t)(s->type & 15) | (uint32_t)(s->s & 1) << 4 | (uint32_t)(s->dpl & 3) << 5 |
	       (uint32_t)(s->present & 1) << 7 | (uint32_t)(s->avl & 1) << 12 |
	       (uint32_t)(s->l & 1) << 13 | (uint32_t)(s->db & 1) << 14 |
	       (uint32_t)(s->g & 1) << 15 | (uint32_t)(s->unusable & 1) << 16;
}

static void segment(struct json_writer *w, const char *name, const struct kvm_segment *s)
{
	jw_begin_object(w, name);
	jw_hex(w, "selector", s->selector, 4);
	jw_hex(w, "base", s->base, 16);
	jw_hex(w, "limit", s->limit, 8);
	jw_hex(w, "access", seg_access(s), 8);
	jw_end_object(w);
}

static void dtable(struct json_writer *w, const char *name, const struct kvm_dtable *t)
{
	jw_begin_object(w, name);
	jw_hex(w, "base", t->base, 16);
	jw_hex(w, "limit", t->limit, 4);
	jw_end_object(w);
}

static int do_regs(struct vm *vm, const struct control_request *req, struct json_writer *w,
		   char *err, size_t errlen)
{
	struct vcpu *v = &vm->vcpus[req->cpu];
	struct kvm_regs r;
	struct kvm_sregs s;
	enum vcpu_state state = read_state(v);
	/* The locking model: registers only under a freeze of this vCPU. */
	if (!vcpu_freeze(v))
		return fail_with(err, errlen, "vCPU %u is not online", req->cpu);
	int e = 0;
	const char *what = NULL;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0)
		e = errno, what = "KVM_GET_REGS";
	else if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		e = errno, what = "KVM_GET_SREGS";
	enum vcpu_activity act = what ? VCPU_ACT_UNKNOWN : vcpu_read_activity(v);
	vcpu_unfreeze(v);
	if (what)
		return fail_with(err, errlen, "vCPU %u: %s: %s", req->cpu, what, strerror(e));

	jw_uint(w, "cpu", req->cpu);
	jw_uint(w, "apic_id", v->apic_id);
	jw_string(w, "state", vcpu_state_name(state));
	jw_string(w, "activity", vcpu_activity_name(act));
	jw_begin_object(w, "regs");
	static const char *const gpr[] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
					   "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
	const uint64_t gval[] = { r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp,
				  r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15 };
	for (size_t i = 0; i < sizeof(gpr) / sizeof(gpr[0]); i++)
		jw_hex(w, gpr[i], gval[i], 16);
	jw_hex(w, "rip", r.rip, 16);
	jw_hex(w, "rflags", r.rflags, 16);
	jw_hex(w, "cr0", s.cr0, 16);
	jw_hex(w, "cr2", s.cr2, 16);
	jw_hex(w, "cr3", s.cr3, 16);
	jw_hex(w, "cr4", s.cr4, 16);
	jw_hex(w, "cr8", s.cr8, 16);
	jw_hex(w, "efer", s.efer, 16);
	jw_hex(w, "apic_base", s.apic_base, 16);
	jw_end_object(w);
	jw_begin_object(w, "segments");
	segment(w, "cs", &s.cs);
	segment(w, "ds", &s.ds);
	segment(w, "es", &s.es);
	segment(w, "fs", &s.fs);
	segment(w, "gs", &s.gs);
	segment(w, "ss", &s.ss);
	segment(w, "tr", &s.tr);
	segment(w, "ldtr", &s.ldt);
	jw_end_object(w);
	dtable(w, "gdtr", &s.gdt);
	dtable(w, "idtr", &s.idt);
	return 0;
}

static void do_topology(struct vm *vm, struct json_writer *w)
{
	const struct topology *t = &vm->topo;
	jw_uint(w, "sockets", t->sockets);
	jw_uint(w, "cores", t->cores);
	jw_uint(w, "threads", t->threads);
	jw_uint(w, "cpus", t->cpus);
	jw_uint(w, "maxcpus", t->maxcpus);
	jw_uint(w, "online", atomic_load(&vm->online_vcpus));
	jw_begin_array(w, "vcpus");
	for (uint32_t i = 0; i < t->maxcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		uint32_t so, co, th;
		topology_place(t, i, &so, &co, &th);
		jw_begin_object(w, NULL);
		jw_uint(w, "cpu", i);
		jw_uint(w, "apic_id", v->apic_id);
		jw_uint(w, "socket", so);
		jw_uint(w, "core", co);
		jw_uint(w, "thread", th);
		jw_string(w, "state", atomic_load(&v->created) ? vcpu_state_name(read_state(v))
							       : "offline");
		jw_end_object(w);
	}
	jw_end_array(w);
}

static int do_add_cpu(struct vm *vm, struct cpu_hotplug *hp, struct json_writer *w, char *err,
		      size_t errlen)
{
	/* Through ACPI so the guest sees it; a bare VM (tests) has no controller. */
	int id = hp ? cpu_hotplug_add(hp, err, errlen) : vm_add_vcpu(vm, err, errlen);
	if (id < 0)
		return -1;
	jw_uint(w, "cpu", (uint64_t)id);
	jw_uint(w, "apic_id", vm->vcpus[id].apic_id);
	jw_uint(w, "online", atomic_load(&vm->online_vcpus));
	jw_uint(w, "maxcpus", vm->topo.maxcpus);
	return 0;
}

static int do_add_memory(struct vm *vm, const struct control_request *req,
			 struct json_writer *w, char *err, size_t errlen)
{
	uint64_t gpa;
	if (vm_add_memory(vm, req->size, &gpa, err, errlen))
		return -1;
	vm_map_rdlock(vm);
	size_t nsegs = vm->mem.nsegs;
	vm_map_rdunlock(vm);
	jw_hex(w, "gpa", gpa, 16);
	jw_uint(w, "size", req->size);
	jw_uint(w, "segments", nsegs);
	return 0;
}

void control_execute(struct vm *vm, struct cpu_hotplug *hp, const struct control_request *req,
		     char **out, size_t *outlen)
{
	char err[256] = "";
	struct json_writer w;
	jw_init(&w, CONTROL_RESPONSE_MAX - 1);   /* room for the LF */
	begin_response(&w, true, req);
	int r = 0;
	if (req->has_cpu && (req->verb == CONTROL_REGS || req->verb == CONTROL_STATS))
		r = check_cpu(vm, req->cpu, err, sizeof(err));
	if (r == 0) {
		switch (req->verb) {
		case CONTROL_INFO:
			do_info(vm, &w);
			break;
		case CONTROL_STATS:
			do_stats(vm, req, &w);
			break;
		case CONTROL_REGS:
			r = do_regs(vm, req, &w, err, sizeof(err));
			break;
		case CONTROL_PAUSE:
			if (atomic_load(&vm->suspended))
				r = fail_with(err, sizeof(err), "the VM is stopping");
			else if (vm_pause(vm))
				r = fail_with(err, sizeof(err), "the VM is already paused");
			else
				jw_string(&w, "state", "paused");
			break;
		case CONTROL_RESUME:
			if (vm_resume(vm))
				r = fail_with(err, sizeof(err), "the VM is not paused");
			else
				jw_string(&w, "state", vm_state(vm));
			break;
		case CONTROL_DESTROY:
			if (atomic_load(&vm->suspended)) {
				r = fail_with(err, sizeof(err), "the VM is already stopping");
				break;
			}
			/* bhyve exits 4 when its VM is destroyed; vm_fail says why. */
			vm_fail(vm, "VM destroyed by a control request (khyvectl --destroy)");
			if (atomic_load(&vm->suspended) != 1 + CONTROL_DESTROY_STATUS)
				r = fail_with(err, sizeof(err), "the VM stopped by itself first (status %d)",
					 atomic_load(&vm->suspended) - 1);
			else
				jw_uint(&w, "status", CONTROL_DESTROY_STATUS);
			break;
		case CONTROL_TOPOLOGY:
			do_topology(vm, &w);
			break;
		case CONTROL_ADD_CPU:
			r = do_add_cpu(vm, hp, &w, err, sizeof(err));
			break;
		case CONTROL_ADD_MEMORY:
			r = do_add_memory(vm, req, &w, err, sizeof(err));
			break;
		default:
			r = fail_with(err, sizeof(err), "unknown verb");
			break;
		}
	}
	if (r) {
		jw_free(&w);
		error_response(req, err, out, outlen);
		return;
	}
	finish(&w, req, out, outlen);
}

void control_handle_line(struct vm *vm, struct cpu_hotplug *hp, const char *line, size_t len,
			 char **out, size_t *outlen)
{
	struct control_request req;
	char err[256];
	if (control_parse_request(line, len, &req, err, sizeof(err)))
		error_response(&req, err, out, outlen);
	else
		control_execute(vm, hp, &req, out, outlen);
}

/* ---- the server ---- */

struct client {
	int fd;                      /* -1: free slot */
	char in[CONTROL_REQUEST_MAX];
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	bool close_after_flush;
	bool eof;
	struct timespec last;
};

struct control {
	char name[CONTROL_NAME_MAX + 1];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	int dir_fd;                  /* RUNDIR, for the teardown's fstatat/unlinkat */
	char base[CONTROL_NAME_MAX + 6];   /* NAME.sock */
	int listen_fd, stop_fd;
	struct vm *vm;
	struct cpu_hotplug *hp;
	pthread_t thread;
	bool thread_started;
	struct client clients[CONTROL_MAX_CLIENTS];
};

static int make_rundir(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fail_with(err, errlen, "cannot create the runtime directory %s: %s", dir,
			    strerror(errno));
	struct stat st;
	if (stat(dir, &st) < 0)
		return fail_with(err, errlen, "runtime directory %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail_with(err, errlen, "runtime directory %s is not a directory", dir);
	if (st.st_uid != geteuid())
		return fail_with(err, errlen, "runtime directory %s belongs to uid %u, not to uid %u "
			    "(set KHYVE_RUNTIME_DIR)", dir, (unsigned)st.st_uid,
			    (unsigned)geteuid());
	if (st.st_mode & 022)
		return fail_with(err, errlen, "runtime directory %s is writable by group or others "
			    "(mode %03o): make it 0700", dir, (unsigned)(st.st_mode & 0777));
	return 0;
}

/* Is a live VM listening at path? 1 yes, 0 no (stale socket removed), -1 error. */
static int claim_path(const char *path, const char *name, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return fail_with(err, errlen, "control socket %s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return fail_with(err, errlen, "%s exists and is not a socket: not touching it", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail_with(err, errlen, "socket: %s", strerror(errno));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS)
		return fail_with(err, errlen, "a VM named '%s' is already running (its control socket "
			    "%s answers)", name, path);
	if (e != ECONNREFUSED)
		return fail_with(err, errlen, "control socket %s: %s", path, strerror(e));
	/* Nobody listens: a khyve that died left it behind. */
	if (unlink(path) < 0 && errno != ENOENT)
		return fail_with(err, errlen, "removing the stale control socket %s: %s", path,
			    strerror(errno));
	return 0;
}

struct control *control_create(const char *name, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		fail_with(err, errlen, "out of memory");
		return NULL;
	}
	c->listen_fd = c->stop_fd = c->dir_fd = -1;
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	if (control_check_name(name, err, errlen) ||
	    control_runtime_dir(dir, sizeof(dir), err, errlen) ||
	    control_socket_path(dir, name, c->path, sizeof(c->path), err, errlen) ||
	    make_rundir(dir, err, errlen)) {
		c->path[0] = '\0';
		control_destroy(c);
		return NULL;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->base, sizeof(c->base), "%s.sock", name);
	char path[sizeof(c->path)];
	memcpy(path, c->path, sizeof(path));
	c->path[0] = '\0';   /* nothing of ours to unlink yet */

	/* Kept open (and closed by control_destroy, which drops the lock too). */
	int dfd = c->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || flock(dfd, LOCK_EX) < 0) {
		fail_with(err, errlen, "locking the runtime directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (claim_path(path, name, err, errlen))
		goto fail;
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0) {
		fail_with(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fail_with(err, errlen, "binding the control socket %s: %s", path, strerror(errno));
		goto fail;
	}
	memcpy(c->path, path, sizeof(path));
	struct stat st;
	/* The directory is 0700, so nobody else could reach it before this. */
	if (chmod(path, 0600) < 0 || stat(path, &st) < 0) {
		fail_with(err, errlen, "control socket %s: %s", path, strerror(errno));
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if (listen(c->listen_fd, CONTROL_MAX_CLIENTS) < 0) {
		fail_with(err, errlen, "listen on %s: %s", path, strerror(errno));
		goto fail;
	}
	c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->stop_fd < 0) {
		fail_with(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	flock(dfd, LOCK_UN);
	return c;
fail:
	control_destroy(c);
	return NULL;
}

static void client_close(struct client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

static double since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* Send what is pending; false if the connection is dead. */
static bool client_flush(struct client *cl)
{
	while (cl->outoff < cl->outlen) {
		ssize_t n = send(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		cl->outoff += (size_t)n;
		clock_gettime(CLOCK_MONOTONIC, &cl->last);
	}
	free(cl->out);
	cl->out = NULL;
	cl->outlen = cl->outoff = 0;
	return true;
}

/* Queue a response (taking ownership of resp) with its LF. */
static void client_respond(struct client *cl, char *resp, size_t len)
{
	char *b = resp ? realloc(resp, len + 1) : NULL;
	if (!b) {
		free(resp);
		static const char oom[] = "{\"ok\":false,\"proto\":1,\"error\":\"out of memory\"}";
		b = strdup(oom);
		len = b ? strlen(b) : 0;
		cl->close_after_flush = true;
		if (!b)
			return;
	}
	b[len] = '\n';
	cl->out = b;
	cl->outlen = len + 1;
	cl->outoff = 0;
}

static void client_error(struct client *cl, const char *msg)
{
	char *resp;
	size_t len;
	error_response(NULL, msg, &resp, &len);
	client_respond(cl, resp, len);
}

/* Answer the complete lines in the input buffer, one at a time. */
static void client_process(struct control *c, struct client *cl)
{
	while (!cl->out && !cl->close_after_flush) {
		char *lf = memchr(cl->in, '\n', cl->inlen);
		if (!lf) {
			if (cl->inlen == sizeof(cl->in)) {
				char msg[96];
				snprintf(msg, sizeof(msg), "request longer than %d bytes; closing",
					 CONTROL_REQUEST_MAX - 1);
				client_error(cl, msg);
				cl->close_after_flush = true;
			} else if (cl->eof && cl->inlen > 0) {
				client_error(cl, "request not terminated by a newline; closing");
				cl->close_after_flush = true;
			}
			return;
		}
		size_t len = (size_t)(lf - cl->in);
		char *resp;
		size_t rlen;
		control_handle_line(c->vm, c->hp, cl->in, len, &resp, &rlen);
		memmove(cl->in, lf + 1, cl->inlen - len - 1);
		cl->inlen -= len + 1;
		client_respond(cl, resp, rlen);
		client_flush(cl);
	}
}

static void accept_clients(struct control *c)
{
	while (true) {
		int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;   /* EAGAIN, or a connection reset before we got it */
		struct client *cl = NULL;
		for (int i = 0; i < CONTROL_MAX_CLIENTS && !cl; i++)
			if (c->clients[i].fd < 0)
				cl = &c->clients[i];
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		char msg[160] = "";
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
			snprintf(msg, sizeof(msg), "cannot identify the peer: %s", strerror(errno));
		else if (cred.uid != geteuid() && cred.uid != 0)
			snprintf(msg, sizeof(msg), "permission denied: uid %u is neither the VM's "
				 "owner (uid %u) nor root", (unsigned)cred.uid, (unsigned)geteuid());
		else if (!cl)
			snprintf(msg, sizeof(msg), "too many control connections (%d); try again",
				 CONTROL_MAX_CLIENTS);
		if (msg[0]) {
			/* One line into a fresh socket buffer: it fits, never blocks. */
			char *resp;
			size_t len;
			error_response(NULL, msg, &resp, &len);
			if (resp) {
				resp[len] = '\0';
				char line[512];
				int n = snprintf(line, sizeof(line), "%s\n", resp);
				if (n > 0 && (size_t)n < sizeof(line))
					(void)!send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
				free(resp);
			}
			close(fd);
			continue;
		}
		memset(cl, 0, sizeof(*cl));
		cl->fd = fd;
		clock_gettime(CLOCK_MONOTONIC, &cl->last);
	}
}

static void client_read(struct control *c, struct client *cl)
{
	ssize_t n = read(cl->fd, cl->in + cl->inlen, sizeof(cl->in) - cl->inlen);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			client_close(cl);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &cl->last);
	if (n == 0)
		cl->eof = true;
	cl->inlen += (size_t)n;
	client_process(c, cl);
}

static void *control_thread(void *arg)
{
	struct control *c = arg;
	struct pollfd pfd[2 + CONTROL_MAX_CLIENTS];
	struct client *who[2 + CONTROL_MAX_CLIENTS];
	while (true) {
		nfds_t n = 0;
		pfd[n++] = (struct pollfd){ c->stop_fd, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ c->listen_fd, POLLIN, 0 };
		for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
			struct client *cl = &c->clients[i];
			if (cl->fd < 0)
				continue;
			short ev = cl->out ? POLLOUT : (cl->eof || cl->close_after_flush) ? 0 : POLLIN;
			who[n] = cl;
			pfd[n++] = (struct pollfd){ cl->fd, ev, 0 };
		}
		int r = poll(pfd, n, 1000);
		if (r < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		/* Connections first: slots of clients that left are free for new ones. */
		for (nfds_t i = 2; i < n; i++) {
			struct client *cl = who[i];
			short re = r > 0 ? pfd[i].revents : 0;
			if (re & POLLOUT) {
				if (!client_flush(cl)) {
					client_close(cl);
					continue;
				}
				client_process(c, cl);
			}
			if (re & POLLIN)
				client_read(c, cl);
			else if ((re & (POLLERR | POLLNVAL)) || ((re & POLLHUP) && !cl->out))
				cl->eof = true;
			if (cl->fd < 0)
				continue;
			/* Done: nothing left to say, and nothing more will be asked. */
			if (!cl->out && (cl->close_after_flush || cl->eof))
				client_close(cl);
			else if (since(&cl->last) > CONTROL_IDLE_SECONDS)
				client_close(cl);
		}
		if (r > 0 && (pfd[1].revents & POLLIN))
			accept_clients(c);
	}
	return NULL;
}

int control_start(struct control *c, struct vm *vm, struct cpu_hotplug *hp, char *err,
		  size_t errlen)
{
	c->vm = vm;
	c->hp = hp;
	/*
	 * Every signal blocked from the thread's first instruction: the
	 * process's signals are vm_run's (signalfd), SIGUSR1 kicks vCPUs.
	 */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&c->thread, NULL, control_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return fail_with(err, errlen, "starting the control thread: %s", strerror(r));
	pthread_setname_np(c->thread, "control");
	c->thread_started = true;
	return 0;
}

int control_dir_fd(const struct control *c)
{
	return c ? c->dir_fd : -1;
}

void control_destroy(struct control *c)
{
	if (!c)
		return;
	if (c->thread_started) {
		uint64_t one = 1;
		(void)!write(c->stop_fd, &one, sizeof(one));
		pthread_join(c->thread, NULL);
		c->thread_started = false;
	}
	/*
	 * Unlink before closing the connections: a client that waits for its
	 * connection to close (khyvectl --destroy) then finds the name free.
	 * Only our own socket: the path may have been taken over since. Relative
	 * to RUNDIR's fd, opened before the sandbox, which can pin calls to it.
	 */
	struct stat st;
	if (c->path[0] && c->dir_fd >= 0 &&
	    fstatat(c->dir_fd, c->base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == c->dev && st.st_ino == c->ino)
		unlinkat(c->dir_fd, c->base, 0);
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		client_close(&c->clients[i]);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	free(c);
}
