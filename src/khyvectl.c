/*
 * khyvectl: inspect and control running khyve VMs, bhyvectl(8)-style.
 *
 * It is a client of the control protocol (control.c has the protocol and
 * the server): it connects to RUNDIR/NAME.sock, sends one request line per
 * operation, checks that each answer is a well-formed protocol-1 JSON
 * object, and renders it as an aligned table, or passes it through with
 * --json. Every wait is bounded (--timeout), and every failure is one line
 * on stderr and a non-zero exit status.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"

#define EXIT_USAGE 2
#define DEFAULT_TIMEOUT_S 5

static const char *prog = "khyvectl";

/* ---- register options: --get-<opt> ---- */

enum field_kind { F_REG, F_SEL, F_DESC, F_DTAB, F_ACTIVITY };

struct field {
	const char *opt;         /* after "--get-" */
	enum field_kind kind;
	const char *key;         /* in the regs response */
};

static const struct field fields[] = {
	{ "rax", F_REG, "rax" }, { "rbx", F_REG, "rbx" }, { "rcx", F_REG, "rcx" },
	{ "rdx", F_REG, "rdx" }, { "rsi", F_REG, "rsi" }, { "rdi", F_REG, "rdi" },
	{ "rsp", F_REG, "rsp" }, { "rbp", F_REG, "rbp" }, { "r8", F_REG, "r8" },
	{ "r9", F_REG, "r9" }, { "r10", F_REG, "r10" }, { "r11", F_REG, "r11" },
	{ "r12", F_REG, "r12" }, { "r13", F_REG, "r13" }, { "r14", F_REG, "r14" },
	{ "r15", F_REG, "r15" }, { "rip", F_REG, "rip" }, { "rflags", F_REG, "rflags" },
	{ "cr0", F_REG, "cr0" }, { "cr2", F_REG, "cr2" }, { "cr3", F_REG, "cr3" },
	{ "cr4", F_REG, "cr4" }, { "cr8", F_REG, "cr8" }, { "efer", F_REG, "efer" },
	{ "apic-base", F_REG, "apic_base" },
	{ "cs", F_SEL, "cs" }, { "ds", F_SEL, "ds" }, { "es", F_SEL, "es" },
	{ "fs", F_SEL, "fs" }, { "gs", F_SEL, "gs" }, { "ss", F_SEL, "ss" },
	{ "tr", F_SEL, "tr" }, { "ldtr", F_SEL, "ldtr" },
	{ "desc-cs", F_DESC, "cs" }, { "desc-ds", F_DESC, "ds" }, { "desc-es", F_DESC, "es" },
	{ "desc-fs", F_DESC, "fs" }, { "desc-gs", F_DESC, "gs" }, { "desc-ss", F_DESC, "ss" },
	{ "desc-tr", F_DESC, "tr" }, { "desc-ldtr", F_DESC, "ldtr" },
	{ "gdtr", F_DTAB, "gdtr" }, { "idtr", F_DTAB, "idtr" },
	{ "activity", F_ACTIVITY, NULL },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* ---- errors ---- */

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int status, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static int errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- the connection ---- */

struct conn {
	int fd;
	const char *name;
	char *buf;               /* received, not yet consumed */
	size_t len, cap;
	int timeout_ms;
};

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Wait for ev on fd until deadline: 1 ready, 0 timed out. */
static int wait_fd(int fd, short ev, long long deadline)
{
	while (true) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { fd, ev, 0 };
		int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1;   /* let the following call report the error */
	}
}

static int conn_open(struct conn *c, const char *dir, const char *name, int timeout_ms,
		     char *err, size_t errlen)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->name = name;
	c->timeout_ms = timeout_ms;
	if (control_check_name(name, err, errlen))
		return -1;
	if (control_socket_path(dir, name, path, sizeof(path), err, errlen))
		return -1;
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return errf(err, errlen, "no VM named %s (no control socket %s)", name, path);
		return errf(err, errlen, "cannot reach VM %s: %s: %s", name, path, strerror(errno));
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return errf(err, errlen, "socket: %s", strerror(errno));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	long long deadline = now_ms() + timeout_ms;
	while (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		if (e == EAGAIN && now_ms() < deadline) {
			/* Its backlog is full: it is busy, not gone. */
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (e == ECONNREFUSED || e == ENOENT)
			return errf(err, errlen, "no VM named %s (stale control socket %s: its khyve "
				    "is gone)", name, path);
		if (e == EAGAIN)
			return errf(err, errlen, "VM %s did not accept a connection within %d ms",
				    name, timeout_ms);
		return errf(err, errlen, "cannot connect to VM %s (%s): %s", name, path,
			    strerror(e));
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/*
 * Read one response line (without its LF) into *line (malloc'd). 0, or -1
 * with a reason. A peer that closes right after a final line (a refusal)
 * still gets that line read.
 */
static int conn_read_line(struct conn *c, long long deadline, char **line, size_t *len,
			  char *err, size_t errlen)
{
	size_t scanned = 0;
	while (true) {
		char *lf = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
		if (lf) {
			size_t n = (size_t)(lf - c->buf);
			*line = malloc(n + 1);
			if (!*line)
				return errf(err, errlen, "out of memory");
			memcpy(*line, c->buf, n);
			(*line)[n] = '\0';
			*len = n;
			memmove(c->buf, lf + 1, c->len - n - 1);
			c->len -= n + 1;
			return 0;
		}
		scanned = c->len;
		if (c->len >= CONTROL_RESPONSE_MAX)
			return errf(err, errlen, "malformed response from VM %s: longer than %u "
				    "bytes", c->name, CONTROL_RESPONSE_MAX);
		if (c->cap - c->len < 4096) {
			size_t cap = c->cap ? c->cap * 2 : 65536;
			if (cap > CONTROL_RESPONSE_MAX + 4096)
				cap = CONTROL_RESPONSE_MAX + 4096;
			char *nb = realloc(c->buf, cap);
			if (!nb)
				return errf(err, errlen, "out of memory");
			c->buf = nb;
			c->cap = cap;
		}
		if (!wait_fd(c->fd, POLLIN, deadline))
			return errf(err, errlen, "VM %s did not answer within %d ms", c->name,
				    c->timeout_ms);
		ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return errf(err, errlen, "reading from VM %s: %s", c->name, strerror(errno));
		}
		if (r == 0)
			return errf(err, errlen, c->len ? "malformed response from VM %s: it ends "
				    "without a newline" : "VM %s closed the connection without "
				    "answering", c->name);
		c->len += (size_t)r;
	}
}

static int conn_send(struct conn *c, const char *s, size_t n, long long deadline, char *err,
		     size_t errlen)
{
	while (n > 0) {
		ssize_t r = send(c->fd, s, n, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!wait_fd(c->fd, POLLOUT, deadline))
					return errf(err, errlen, "VM %s did not take the request "
						    "within %d ms", c->name, c->timeout_ms);
				continue;
			}
			if (errno == EPIPE || errno == ECONNRESET) {
				/* It may have said why before closing: a refusal. */
				return 1;
			}
			return errf(err, errlen, "sending to VM %s: %s", c->name, strerror(errno));
		}
		s += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * One request and its response. On success *resp is the parsed response
 * (ok is true) and *raw its text. On failure, -1 and a one-line reason; an
 * error response from the VM gives its message.
 */
static int request(struct conn *c, const struct control_request *req, struct json_value **resp,
		   char **raw, char *err, size_t errlen)
{
	char line[CONTROL_REQUEST_MAX];
	*resp = NULL;
	*raw = NULL;
	int n = control_format_request(req, line, sizeof(line));
	if (n < 0)
		return errf(err, errlen, "request does not fit");
	long long deadline = now_ms() + c->timeout_ms;
	int s = conn_send(c, line, (size_t)n, deadline, err, errlen);
	if (s < 0)
		return -1;
	size_t len = 0;
	char *text = NULL;
	if (conn_read_line(c, deadline, &text, &len, err, errlen))
		return -1;
	char jerr[160];
	struct json_value *v = json_parse(text, len, jerr, sizeof(jerr));
	if (!v) {
		free(text);
		return errf(err, errlen, "malformed response from VM %s: %s", c->name, jerr);
	}
	const struct json_value *ok = json_get(v, "ok");
	uint64_t proto;
	const char *msg = json_str(json_get(v, "error"));
	int r = 0;
	if (!ok || ok->type != JSON_BOOL || !json_u64(json_get(v, "proto"), &proto))
		r = errf(err, errlen, "malformed response from VM %s: not a khyve control response",
			 c->name);
	else if (proto != CONTROL_PROTO_VERSION)
		r = errf(err, errlen, "VM %s speaks control protocol %llu, this khyvectl %d",
			 c->name, (unsigned long long)proto, CONTROL_PROTO_VERSION);
	else if (!ok->boolean)
		r = errf(err, errlen, "%s: %s", c->name, msg ? msg : "failed (no reason given)");
	else if (s > 0)
		r = errf(err, errlen, "VM %s closed the connection", c->name);
	if (r) {
		json_free(v);
		free(text);
		return -1;
	}
	*resp = v;
	*raw = text;
	return 0;
}

/* After destroy: the VM closes every connection when it is gone. */
static int wait_closed(struct conn *c, char *err, size_t errlen)
{
	long long deadline = now_ms() + c->timeout_ms;
	char b[256];
	while (true) {
		if (!wait_fd(c->fd, POLLIN, deadline))
			return errf(err, errlen, "VM %s accepted destroy but did not stop within %d ms",
				    c->name, c->timeout_ms);
		ssize_t r = read(c->fd, b, sizeof(b));
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return 0;
	}
}

/* ---- rendering ---- */

static uint64_t u64_or(const struct json_value *v, uint64_t dflt)
{
	uint64_t x;
	return json_u64(v, &x) ? x : dflt;
}

static const char *str_or(const struct json_value *v, const char *dflt)
{
	const char *s = json_str(v);
	return s ? s : dflt;
}

/* A value the response must have; missing means the response is malformed. */
static const struct json_value *need(const struct json_value *obj, const char *key,
				     const char *vm)
{
	const struct json_value *v = json_get(obj, key);
	if (!v)
		die(1, "malformed response from VM %s: no \"%s\"", vm, key);
	return v;
}

static const char *need_hex(const struct json_value *obj, const char *key, const char *vm)
{
	const char *s = json_str(need(obj, key, vm));
	uint64_t x;
	if (!s || !json_u64(json_get(obj, key), &x))
		die(1, "malformed response from VM %s: \"%s\" is not a 0x number", vm, key);
	return s;
}

static uint64_t need_u64(const struct json_value *obj, const char *key, const char *vm)
{
	uint64_t x;
	if (!json_u64(need(obj, key, vm), &x))
		die(1, "malformed response from VM %s: \"%s\" is not a number", vm, key);
	return x;
}

static void print_stats(const struct json_value *r, const char *vm)
{
	const struct json_value *reasons = need(r, "reasons", vm), *vcpus = need(r, "vcpus", vm);
	if (reasons->type != JSON_ARRAY || vcpus->type != JSON_ARRAY || reasons->n > 32)
		die(1, "malformed response from VM %s: bad stats", vm);
	size_t ncol = reasons->n + 2;   /* VCPU, reasons..., TOTAL */
	int width[34];
	char head[34][24];
	snprintf(head[0], sizeof(head[0]), "VCPU");
	for (size_t i = 0; i < reasons->n; i++) {
		const char *s = json_str(&reasons->items[i]);
		if (!s)
			die(1, "malformed response from VM %s: bad reason name", vm);
		snprintf(head[i + 1], sizeof(head[i + 1]), "%s", s);
		for (char *p = head[i + 1]; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	}
	snprintf(head[ncol - 1], sizeof(head[0]), "TOTAL");
	for (size_t i = 0; i < ncol; i++)
		width[i] = (int)strlen(head[i]);
	/* Two passes: widths, then rows. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			for (size_t i = 0; i < ncol; i++)
				printf(i ? "  %*s" : "%-*s", width[i], head[i]);
			printf("\n");
		}
		for (size_t k = 0; k < vcpus->n; k++) {
			const struct json_value *v = &vcpus->items[k], *ex = need(v, "exits", vm);
			uint64_t vals[34];
			vals[0] = need_u64(v, "cpu", vm);
			for (size_t i = 0; i < reasons->n; i++)
				vals[i + 1] = need_u64(ex, reasons->items[i].text, vm);
			vals[ncol - 1] = need_u64(v, "total", vm);
			for (size_t i = 0; i < ncol; i++) {
				char b[24];
				int w = snprintf(b, sizeof(b), "%llu", (unsigned long long)vals[i]);
				if (pass == 0 && w > width[i])
					width[i] = w;
				if (pass == 1)
					printf(i ? "  %*s" : "%-*s", width[i], b);
			}
			if (pass == 1)
				printf("\n");
		}
	}
	const struct json_value *io = need(r, "io_unclaimed", vm);
	printf("unclaimed I/O ports: %llu reads, %llu writes\n",
	       (unsigned long long)need_u64(io, "reads", vm),
	       (unsigned long long)need_u64(io, "writes", vm));
	/* Only the whole-VM form has them (and a khyve older than them has none). */
	const struct json_value *drv = json_get(r, "drv");
	if (!drv)
		return;
	if (drv->type != JSON_OBJECT)
		die(1, "malformed response from VM %s: bad drv", vm);
	printf("driver interface:\n");
	for (size_t i = 0; i < drv->n; i++) {
		uint64_t x;
		if (!json_u64(&drv->items[i], &x))
			die(1, "malformed response from VM %s: drv.%s is not a number", vm,
			    drv->keys[i]);
		printf("  %-16s %llu\n", drv->keys[i], (unsigned long long)x);
	}
}

/* "64 MiB", "3 GiB": the largest binary unit that divides bytes exactly. */
static void human_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;
	while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, len, "%llu %s", (unsigned long long)bytes, unit[u]);
}

static void print_topology(const struct json_value *r, const char *vm)
{
	printf("topology: %llu sockets x %llu cores x %llu threads; %llu of %llu vCPUs online "
	       "(cpus=%llu, maxcpus=%llu)\n",
	       (unsigned long long)need_u64(r, "sockets", vm),
	       (unsigned long long)need_u64(r, "cores", vm),
	       (unsigned long long)need_u64(r, "threads", vm),
	       (unsigned long long)need_u64(r, "online", vm),
	       (unsigned long long)need_u64(r, "maxcpus", vm),
	       (unsigned long long)need_u64(r, "cpus", vm),
	       (unsigned long long)need_u64(r, "maxcpus", vm));
	const struct json_value *vcpus = need(r, "vcpus", vm);
	if (vcpus->type != JSON_ARRAY)
		die(1, "malformed response from VM %s: bad vcpus", vm);
	static const char *const head[] = { "VCPU", "APIC ID", "SOCKET", "CORE", "THREAD" };
	static const char *const keys[] = { "cpu", "apic_id", "socket", "core", "thread" };
	int width[5];
	for (int i = 0; i < 5; i++)
		width[i] = (int)strlen(head[i]);
	for (size_t k = 0; k < vcpus->n; k++)
		for (int i = 0; i < 5; i++) {
			char b[24];
			int w = snprintf(b, sizeof(b), "%llu",
					 (unsigned long long)need_u64(&vcpus->items[k], keys[i], vm));
			if (w > width[i])
				width[i] = w;
		}
	for (int i = 0; i < 5; i++)
		printf("%-*s  ", width[i], head[i]);
	printf("STATE\n");
	for (size_t k = 0; k < vcpus->n; k++) {
		const struct json_value *v = &vcpus->items[k];
		for (int i = 0; i < 5; i++)
			printf("%-*llu  ", width[i], (unsigned long long)need_u64(v, keys[i], vm));
		printf("%s\n", str_or(json_get(v, "state"), "?"));
	}
}

static void print_field(const struct json_value *r, const struct field *f, uint32_t cpu,
			const char *vm, int width)
{
	char label[40];
	const struct json_value *regs = need(r, "regs", vm), *segs = need(r, "segments", vm);
	switch (f->kind) {
	case F_REG:
		snprintf(label, sizeof(label), "%s[%u]", f->opt, cpu);
		printf("%-*s  %s\n", width, label, need_hex(regs, f->key, vm));
		break;
	case F_SEL:
		snprintf(label, sizeof(label), "%s[%u]", f->opt, cpu);
		printf("%-*s  %s\n", width, label, need_hex(need(segs, f->key, vm), "selector", vm));
		break;
	case F_DESC: {
		const struct json_value *s = need(segs, f->key, vm);
		snprintf(label, sizeof(label), "%s[%u]", f->opt, cpu);
		printf("%-*s  base %s  limit %s  access %s\n", width, label, need_hex(s, "base", vm),
		       need_hex(s, "limit", vm), need_hex(s, "access", vm));
		break;
	}
	case F_DTAB: {
		const struct json_value *t = need(r, f->key, vm);
		snprintf(label, sizeof(label), "%s[%u]", f->opt, cpu);
		printf("%-*s  base %s  limit %s\n", width, label, need_hex(t, "base", vm),
		       need_hex(t, "limit", vm));
		break;
	}
	case F_ACTIVITY:
		snprintf(label, sizeof(label), "%s[%u]", f->opt, cpu);
		printf("%-*s  %s (thread %s)\n", width, label,
		       str_or(need(r, "activity", vm), "?"), str_or(need(r, "state", vm), "?"));
		break;
	}
}

/* --get-all: every register, segment and table, bhyvectl --get-all's set. */
static void print_all(const struct json_value *r, uint32_t cpu, const char *vm)
{
	const struct json_value *regs = need(r, "regs", vm), *segs = need(r, "segments", vm);
	printf("vCPU %u (APIC ID %llu): %s, thread %s\n", cpu,
	       (unsigned long long)need_u64(r, "apic_id", vm), str_or(need(r, "activity", vm), "?"),
	       str_or(need(r, "state", vm), "?"));
	/* General registers two to a row, then the rest one to a row. */
	for (size_t i = 0; i < NFIELDS && fields[i].kind == F_REG; i++) {
		const struct field *f = &fields[i];
		bool gpr = i < 16;
		printf("%-10s %s", f->opt, need_hex(regs, f->key, vm));
		printf(gpr && i % 2 == 0 ? "    " : "\n");
	}
	printf("%-10s %-8s %-18s %-10s %s\n", "SEGMENT", "SELECTOR", "BASE", "LIMIT", "ACCESS");
	for (size_t i = 0; i < NFIELDS; i++) {
		if (fields[i].kind != F_SEL)
			continue;
		const struct json_value *s = need(segs, fields[i].key, vm);
		printf("%-10s %-8s %-18s %-10s %s\n", fields[i].opt, need_hex(s, "selector", vm),
		       need_hex(s, "base", vm), need_hex(s, "limit", vm), need_hex(s, "access", vm));
	}
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "idtr" : "gdtr";
		const struct json_value *t = need(r, k, vm);
		printf("%-10s base %s  limit %s\n", k, need_hex(t, "base", vm),
		       need_hex(t, "limit", vm));
	}
}

/* ---- --list ---- */

struct listed {
	char name[CONTROL_NAME_MAX + 1];
	struct json_value *info;   /* NULL: unreachable */
	char *raw;
	char err[256];
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct listed *)a)->name, ((const struct listed *)b)->name);
}

static int do_list(const char *dir, int timeout_ms, bool json)
{
	DIR *d = opendir(dir);
	struct listed *vms = NULL;
	size_t n = 0, cap = 0;
	if (!d && errno != ENOENT)
		die(1, "cannot read the runtime directory %s: %s", dir, strerror(errno));
	for (struct dirent *e; d && (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		char err[256];
		if (len <= 5 || strcmp(e->d_name + len - 5, ".sock") != 0 || len - 5 > CONTROL_NAME_MAX)
			continue;
		char name[CONTROL_NAME_MAX + 1];
		memcpy(name, e->d_name, len - 5);
		name[len - 5] = '\0';
		if (control_check_name(name, err, sizeof(err)))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			vms = realloc(vms, cap * sizeof(*vms));
			if (!vms)
				die(1, "out of memory");
		}
		struct listed *l = &vms[n];
		memset(l, 0, sizeof(*l));
		snprintf(l->name, sizeof(l->name), "%s", name);
		struct conn c;
		struct control_request req = { .verb = CONTROL_INFO };
		if (conn_open(&c, dir, l->name, timeout_ms, l->err, sizeof(l->err)) == 0)
			request(&c, &req, &l->info, &l->raw, l->err, sizeof(l->err));
		conn_close(&c);
		/* A stale socket is a VM that is gone: not listed. */
		if (!l->info && strstr(l->err, "stale control socket"))
			continue;
		n++;
	}
	if (d)
		closedir(d);
	qsort(vms, n, sizeof(*vms), by_name);
	if (json) {
		printf("[");
		for (size_t i = 0; i < n; i++) {
			printf("%s", i ? "," : "");
			if (vms[i].raw) {
				printf("%s", vms[i].raw);
			} else {
				struct json_writer w;
				jw_init(&w, 4096);
				jw_begin_object(&w, NULL);
				jw_string(&w, "name", vms[i].name);
				jw_string(&w, "error", vms[i].err);
				jw_end_object(&w);
				printf("%s", w.failed ? "{}" : w.buf);
				jw_free(&w);
			}
		}
		printf("]\n");
	} else {
		int wname = 4;
		for (size_t i = 0; i < n; i++)
			if ((int)strlen(vms[i].name) > wname)
				wname = (int)strlen(vms[i].name);
		printf("%-*s  %-8s  %-7s  %s\n", wname, "NAME", "PID", "VCPUS", "STATE");
		for (size_t i = 0; i < n; i++) {
			const struct json_value *v = vms[i].info;
			if (!v) {
				printf("%-*s  %-8s  %-7s  unreachable: %s\n", wname, vms[i].name, "-",
				       "-", vms[i].err);
				continue;
			}
			char cpus[32];
			snprintf(cpus, sizeof(cpus), "%llu/%llu",
				 (unsigned long long)u64_or(json_get(v, "online"), 0),
				 (unsigned long long)u64_or(json_get(v, "maxcpus"), 0));
			printf("%-*s  %-8llu  %-7s  %s\n", wname, vms[i].name,
			       (unsigned long long)u64_or(json_get(v, "pid"), 0), cpus,
			       str_or(json_get(v, "state"), "?"));
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_free(vms[i].info);
		free(vms[i].raw);
	}
	free(vms);
	return 0;
}

/* ---- the manual ---- */

static void usage(FILE *f)
{
	fprintf(f,
"KHYVECTL(8)                  khyve manual                  KHYVECTL(8)\n"
"\n"
"NAME\n"
"     khyvectl - inspect and control running khyve virtual machines\n"
"\n"
"SYNOPSIS\n"
"     khyvectl --vm=NAME [--cpu=N] [--json] [--timeout=SECONDS]\n"
"              [--get-stats] [--get-all] [--get-REGISTER ...] [--get-topology]\n"
"              [--pause] [--resume] [--add-cpu] [--add-memory=SIZE]\n"
"              [--destroy]\n"
"     khyvectl --list [--json] [--timeout=SECONDS]\n"
"     khyvectl --help\n"
"\n"
"DESCRIPTION\n"
"     khyvectl is to khyve(8) what bhyvectl(8) is to bhyve(8). Every running\n"
"     khyve listens on a control socket, RUNDIR/NAME.sock; khyvectl sends it\n"
"     one request per operation and prints the answers as aligned tables,\n"
"     or, with --json, exactly as the VM sent them (one JSON object a line).\n"
"\n"
"     Operations given together run in this order: --pause, --resume,\n"
"     --add-cpu, --add-memory, --get-stats, --get-topology, the register\n"
"     gets, --destroy.\n"
"\n"
"OPTIONS\n"
"     --vm=NAME       The VM to talk to (khyve's last argument).\n"
"     --cpu=N         The vCPU for register gets, and for --get-stats when\n"
"                     given (default: vCPU 0; --get-stats shows all).\n"
"     --list          Every VM in RUNDIR: name, pid, vCPUs online/maximum,\n"
"                     state (running, paused, stopping). Sockets left by a\n"
"                     khyve that died are skipped.\n"
"     --get-stats     Exits to khyve per vCPU, by reason (io, mmio, intr:\n"
"                     kicked out by a signal, shutdown: triple fault, hlt,\n"
"                     other), and the I/O-port accesses no device claimed.\n"
"                     Without --cpu also the driver interface's counters:\n"
"                     holds, leases signed and broken, lease expiries (a\n"
"                     memory-map change asking a driver to let go), map\n"
"                     changes, hook callbacks and the guest writes they\n"
"                     counted, MSIs sent by irqfd and by KVM_SIGNAL_MSI, and\n"
"                     GSI routing commits.\n"
"     --get-topology  sockets, cores, threads, cpus, maxcpus, vCPUs online,\n"
"                     and every vCPU's APIC ID, place and state (offline\n"
"                     until hot-added).\n"
"     --get-all       Every register of vCPU N, its activity, segments and\n"
"                     descriptor tables.\n"
"     --get-REGISTER  One register of vCPU N: rax rbx rcx rdx rsi rdi rsp\n"
"                     rbp r8-r15 rip rflags cr0 cr2 cr3 cr4 cr8 efer\n"
"                     apic-base; segment selectors cs ds es fs gs ss tr\n"
"                     ldtr; desc-cs ... desc-ldtr (base, limit, access\n"
"                     rights); gdtr idtr; activity (running, sleeping:\n"
"                     halted with interrupts on, halted: with them off,\n"
"                     parked: waiting for INIT/SIPI). The vCPU is frozen\n"
"                     only while its registers are read.\n"
"     --pause         Stop every vCPU until --resume. A paused VM can still\n"
"                     be inspected.\n"
"     --resume        Let a paused VM run again.\n"
"     --add-cpu       Bring the next vCPU online (up to maxcpus, see khyve\n"
"                     -c); the guest is told through ACPI.\n"
"     --add-memory=SIZE\n"
"                     Map SIZE more RAM into the VM at run time, at the\n"
"                     first 1 GiB boundary at or above both 4 GiB and the\n"
"                     top of RAM. SIZE is bytes, or a number with a K, M,\n"
"                     G or T suffix (64M, 1G: binary units); unlike khyve\n"
"                     -m, a bare number is bytes. It must be a multiple of\n"
"                     2 MiB, from 2 MiB to 64 GiB.\n"
"                     A memory-map change: drivers' leases are broken and\n"
"                     renewed (see map_changes in --get-stats). The guest is\n"
"                     not told yet (no ACPI memory device): it does not use\n"
"                     the new memory.\n"
"     --destroy       Stop the VM for good, as bhyvectl --destroy: khyve\n"
"                     exits with status 4, the status bhyve(8) exits with\n"
"                     when its VM is destroyed, and removes its socket.\n"
"                     khyvectl returns once the VM is gone.\n"
"     --json          Print responses as JSON instead of tables; --list\n"
"                     prints one JSON array.\n"
"     --timeout=SECONDS\n"
"                     How long to wait for each answer (default %d).\n"
"     -h, --help      Print this manual.\n"
"\n"
"FILES\n"
"     RUNDIR is $KHYVE_RUNTIME_DIR if set, else /run/khyve for root, else\n"
"     $XDG_RUNTIME_DIR/khyve. khyve creates it with mode 0700 and its socket\n"
"     with mode 0600, and answers only its own uid and root.\n"
"\n"
"EXIT STATUS\n"
"     0 on success; 1 on any failure, after one line on stderr: no VM of\n"
"     that name, an unknown vCPU, a refused peer, a malformed response, no\n"
"     answer within the timeout, or the VM's own error (already paused,\n"
"     maxcpus reached, a size --add-memory cannot add, ...); 2 on a usage\n"
"     error (a malformed option argument such as --add-memory=12X).\n"
"\n"
"EXAMPLES\n"
"     khyvectl --list\n"
"     khyvectl --vm=demo --get-stats\n"
"     khyvectl --vm=demo --cpu=1 --get-rip --get-cr3 --get-efer\n"
"     khyvectl --vm=demo --pause --get-all --json\n"
"     khyvectl --vm=demo --add-memory=1G\n"
"     khyvectl --vm=demo --destroy\n"
"\n"
"SEE ALSO\n"
"     khyve(8), bhyvectl(8)\n", DEFAULT_TIMEOUT_S);
}

/* ---- main ---- */

enum {
	OPT_VM = 256, OPT_CPU, OPT_LIST, OPT_JSON, OPT_TIMEOUT, OPT_STATS, OPT_ALL, OPT_TOPO,
	OPT_PAUSE, OPT_RESUME, OPT_DESTROY, OPT_ADD_CPU, OPT_ADD_MEMORY, OPT_FIELD0 = 512,
};

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see --help)\n");
	exit(EXIT_USAGE);
}

static bool parse_uint(const char *s, uint32_t max, uint32_t *out)
{
	if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 10)
		return false;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option fixed[] = {
		{ "vm", required_argument, NULL, OPT_VM },
		{ "cpu", required_argument, NULL, OPT_CPU },
		{ "list", no_argument, NULL, OPT_LIST },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "get-stats", no_argument, NULL, OPT_STATS },
		{ "get-all", no_argument, NULL, OPT_ALL },
		{ "get-topology", no_argument, NULL, OPT_TOPO },
		{ "pause", no_argument, NULL, OPT_PAUSE },
		{ "resume", no_argument, NULL, OPT_RESUME },
		{ "destroy", no_argument, NULL, OPT_DESTROY },
		{ "add-cpu", no_argument, NULL, OPT_ADD_CPU },
		{ "add-memory", required_argument, NULL, OPT_ADD_MEMORY },
		{ "help", no_argument, NULL, 'h' },
	};
	const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	struct option opts[sizeof(fixed) / sizeof(fixed[0]) + NFIELDS + 1];
	static char names[NFIELDS][24];
	memcpy(opts, fixed, sizeof(fixed));
	for (size_t i = 0; i < NFIELDS; i++) {
		snprintf(names[i], sizeof(names[i]), "get-%s", fields[i].opt);
		opts[nfixed + i] = (struct option){ names[i], no_argument, NULL,
						    OPT_FIELD0 + (int)i };
	}
	opts[nfixed + NFIELDS] = (struct option){ NULL, 0, NULL, 0 };

	const char *vm = NULL;
	uint32_t cpu = 0, timeout_s = DEFAULT_TIMEOUT_S;
	bool cpu_given = false, list = false, json = false, stats = false, all = false,
	     topo = false, pause_ = false, resume = false, destroy = false, add_cpu = false,
	     add_mem = false;
	uint64_t mem_size = 0;
	bool want[NFIELDS] = { false };
	size_t order[NFIELDS], norder = 0;
	int ch;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case OPT_VM: vm = optarg; break;
		case OPT_CPU:
			if (!parse_uint(optarg, UINT32_MAX, &cpu))
				usage_error("--cpu=%s: expected a vCPU number", optarg);
			cpu_given = true;
			break;
		case OPT_LIST: list = true; break;
		case OPT_JSON: json = true; break;
		case OPT_TIMEOUT:
			if (!parse_uint(optarg, 3600, &timeout_s) || timeout_s == 0)
				usage_error("--timeout=%s: expected whole seconds from 1 to 3600",
					    optarg);
			break;
		case OPT_STATS: stats = true; break;
		case OPT_ALL: all = true; break;
		case OPT_TOPO: topo = true; break;
		case OPT_PAUSE: pause_ = true; break;
		case OPT_RESUME: resume = true; break;
		case OPT_DESTROY: destroy = true; break;
		case OPT_ADD_CPU: add_cpu = true; break;
		case OPT_ADD_MEMORY: {
			char why[160];
			/* The same reading as the server's: what is checked here is what is sent. */
			if (control_parse_size(optarg, strlen(optarg), &mem_size, NULL, why,
					       sizeof(why)))
				usage_error("--add-memory=%s: %s", optarg, why);
			add_mem = true;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (ch >= OPT_FIELD0 && ch < OPT_FIELD0 + (int)NFIELDS) {
				size_t i = (size_t)(ch - OPT_FIELD0);
				if (!want[i])
					order[norder++] = i;
				want[i] = true;
				break;
			}
			if (optopt)
				usage_error("option '%s': missing or unexpected argument",
					    argv[optind - 1]);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);

	char dir[PATH_MAX], err[512];
	if (control_runtime_dir(dir, sizeof(dir), err, sizeof(err)))
		die(1, "%s", err);
	int timeout_ms = (int)timeout_s * 1000;
	bool any = stats || all || topo || pause_ || resume || destroy || add_cpu || add_mem ||
		   norder;
	if (list) {
		if (vm || any)
			usage_error("--list takes no --vm or other operation");
		return do_list(dir, timeout_ms, json);
	}
	if (!vm)
		usage_error("no VM given: --vm=NAME, or --list");
	if (!any)
		usage_error("nothing to do for VM %s: give an operation such as --get-stats", vm);

	struct conn c;
	if (conn_open(&c, dir, vm, timeout_ms, err, sizeof(err)))
		die(1, "%s", err);

	struct control_request reqs[8];
	size_t nreq = 0;
	if (pause_)
		reqs[nreq++] = (struct control_request){ .verb = CONTROL_PAUSE };
	if (resume)
		reqs[nreq++] = (struct control_request){ .verb = CONTROL_RESUME };
	if (add_cpu)
		reqs[nreq++] = (struct control_request){ .verb = CONTROL_ADD_CPU };
	if (add_mem)
		reqs[nreq++] = (struct control_request){ .verb = CONTROL_ADD_MEMORY,
							 .size = mem_size };
	if (stats)
		reqs[nreq++] = (struct control_request){ .verb = CONTROL_STATS, .has_cpu = cpu_given,
							 .cpu = cpu };
	if (topo)
		reqs[nreq++] = (struct control_request){ .verb = CONTROL_TOPOLOGY };
	if (all || norder)
		reqs[nreq++] = (struct control_request){ .verb = CONTROL_REGS, .has_cpu = true,
							 .cpu = cpu };
	if (destroy)
		reqs[nreq++] = (struct control_request){ .verb = CONTROL_DESTROY };

	for (size_t k = 0; k < nreq; k++) {
		struct json_value *r;
		char *raw;
		if (request(&c, &reqs[k], &r, &raw, err, sizeof(err))) {
			conn_close(&c);
			die(1, "%s", err);
		}
		if (reqs[k].verb == CONTROL_DESTROY && wait_closed(&c, err, sizeof(err))) {
			conn_close(&c);
			die(1, "%s", err);
		}
		if (json) {
			printf("%s\n", raw);
		} else {
			switch (reqs[k].verb) {
			case CONTROL_PAUSE:
				printf("VM %s paused\n", vm);
				break;
			case CONTROL_RESUME:
				printf("VM %s resumed\n", vm);
				break;
			case CONTROL_ADD_CPU:
				printf("vCPU %llu (APIC ID %llu) added: %llu of %llu vCPUs online\n",
				       (unsigned long long)need_u64(r, "cpu", vm),
				       (unsigned long long)need_u64(r, "apic_id", vm),
				       (unsigned long long)need_u64(r, "online", vm),
				       (unsigned long long)need_u64(r, "maxcpus", vm));
				break;
			case CONTROL_ADD_MEMORY: {
				char sz[32];
				human_size(need_u64(r, "size", vm), sz, sizeof(sz));
				printf("added %s of memory at 0x%llx (%llu segments)\n", sz,
				       (unsigned long long)need_u64(r, "gpa", vm),
				       (unsigned long long)need_u64(r, "segments", vm));
				break;
			}
			case CONTROL_STATS:
				print_stats(r, vm);
				break;
			case CONTROL_TOPOLOGY:
				print_topology(r, vm);
				break;
			case CONTROL_REGS: {
				if (all)
					print_all(r, cpu, vm);
				int width = 0;
				for (size_t i = 0; i < norder; i++) {
					char label[40];
					int w = snprintf(label, sizeof(label), "%s[%u]",
							 fields[order[i]].opt, cpu);
					if (w > width)
						width = w;
				}
				for (size_t i = 0; i < norder; i++)
					print_field(r, &fields[order[i]], cpu, vm, width);
				break;
			}
			case CONTROL_DESTROY:
				printf("VM %s destroyed (khyve exits with status %llu)\n", vm,
				       (unsigned long long)need_u64(r, "status", vm));
				break;
			default:
				break;
			}
		}
		json_free(r);
		free(raw);
	}
	conn_close(&c);
	return fflush(stdout) == 0 ? 0 : 1;
}
