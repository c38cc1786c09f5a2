/*
 * The control plane: a unix socket per running VM that khyvectl talks to.
 * The protocol and the theory are at the top of control.c; the JSON both
 * ends use is in control_json.c.
 *
 * Server lifetime (main.c):
 *   control_create()   before machine_assemble(): find RUNDIR, refuse a
 *                      name a live VM already uses, bind and listen;
 *   control_start()    after machine_assemble(), before vm_run(): start
 *                      the control thread;
 *   control_destroy()  after vm_run(), before machine_disassemble(): stop
 *                      the thread, unlink the socket, close every fd.
 */
#ifndef KHYVE_CONTROL_H
#define KHYVE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct cpu_hotplug;

#define CONTROL_PROTO_VERSION 1
#define CONTROL_PROTO_TOKEN "khyve/1"
/* A request line, its LF included, is at most this long. */
#define CONTROL_REQUEST_MAX 256
/* A response line, its LF included, is at most this long. */
#define CONTROL_RESPONSE_MAX (4u << 20)
/* VM names: 1..CONTROL_NAME_MAX of [A-Za-z0-9._+-], not starting with '.' or '-'. */
#define CONTROL_NAME_MAX 64

enum control_verb {
	CONTROL_INFO,
	CONTROL_STATS,
	CONTROL_REGS,
	CONTROL_PAUSE,
	CONTROL_RESUME,
	CONTROL_DESTROY,
	CONTROL_TOPOLOGY,
	CONTROL_ADD_CPU,
	CONTROL_ADD_MEMORY,
	CONTROL_VERB_COUNT,
};

struct control_request {
	enum control_verb verb;
	bool has_cpu;
	uint32_t cpu;
	uint64_t size;             /* add-memory: bytes */
	unsigned size_shift;       /* ... as written: 0 bytes, 10 K, 20 M, 30 G, 40 T */
};

const char *control_verb_name(enum control_verb v);

/*
 * Parse one request line of len bytes, without its LF (it may contain any
 * byte: everything is checked). 0, or -1 with a one-line reason.
 */
int control_parse_request(const char *line, size_t len, struct control_request *req,
			  char *err, size_t errlen);
/*
 * add-memory's SIZE (len bytes, not NUL-terminated): [1-9][0-9]* bytes, or
 * that number with one suffix K, M, G or T, read by size_parse (size.h).
 * A bare number is bytes here, not megabytes as in khyve -m: a protocol
 * must not guess. One spelling per size and unit, so that a request
 * formats back to the same line: *shift (may be NULL) is the suffix's
 * (0, 10, 20, 30, 40). 0, or -1 with a reason.
 */
int control_parse_size(const char *tok, size_t len, uint64_t *bytes, unsigned *shift,
		       char *err, size_t errlen);
/* The request line for req, LF included. Length, or -1 if it does not fit. */
int control_format_request(const struct control_request *req, char *buf, size_t len);

/*
 * The status bhyve(8) gives a VM destroyed under it (bhyvectl --destroy:
 * VM_SUSPEND_DESTROY makes bhyve exit 4); khyve exits with it after
 * khyvectl --destroy.
 */
#define CONTROL_DESTROY_STATUS 4

/* Is name usable as a VM name (it becomes RUNDIR/NAME.sock)? */
int control_check_name(const char *name, char *err, size_t errlen);
/*
 * RUNDIR: $KHYVE_RUNTIME_DIR, else /run/khyve for root, else
 * $XDG_RUNTIME_DIR/khyve. Nothing is created. 0, or -1 with a reason.
 */
int control_runtime_dir(char *buf, size_t len, char *err, size_t errlen);
/* RUNDIR/NAME.sock, checked to fit a sockaddr_un. */
int control_socket_path(const char *dir, const char *name, char *buf, size_t len, char *err,
			size_t errlen);

struct control;

struct control *control_create(const char *name, char *err, size_t errlen);
/* hp may be NULL when the machine has no hot-plug controller. */
int control_start(struct control *c, struct vm *vm, struct cpu_hotplug *hp, char *err,
		  size_t errlen);
/* NULL is fine; safe whether or not control_start() ran. */
void control_destroy(struct control *c);
/*
 * RUNDIR's fd, open from control_create() to control_destroy(): the
 * teardown removes the socket with fstatat/unlinkat relative to it (never
 * by path), so a sandbox may pin those calls to this fd. -1 for NULL.
 */
int control_dir_fd(const struct control *c);

/*
 * Execute one parsed request against a VM and write the response (one JSON
 * object, no LF) into *out (malloc'd; the caller frees). The control thread
 * calls it; tests call it on a VM they built. Never fails: errors are
 * responses.
 */
void control_execute(struct vm *vm, struct cpu_hotplug *hp, const struct control_request *req,
		     char **out, size_t *outlen);
/* Parse-and-execute of one raw line, as the control thread does it. */
void control_handle_line(struct vm *vm, struct cpu_hotplug *hp, const char *line, size_t len,
			 char **out, size_t *outlen);

/* ---- JSON (control_json.c) ---- */

/*
 * Writer: builds one JSON value into a growing buffer, capped at limit
 * bytes. Keys are NULL inside arrays. Errors (out of memory, over the limit,
 * nesting deeper than JSON_MAX_DEPTH) make it "failed"; the caller then
 * sends an error response instead.
 */
#define JSON_MAX_DEPTH 16
struct json_writer {
	char *buf;
	size_t len, cap, limit;
	bool failed;
	int depth;
	bool first[JSON_MAX_DEPTH + 1];
};

void jw_init(struct json_writer *w, size_t limit);
void jw_free(struct json_writer *w);
void jw_begin_object(struct json_writer *w, const char *key);
void jw_end_object(struct json_writer *w);
void jw_begin_array(struct json_writer *w, const char *key);
void jw_end_array(struct json_writer *w);
void jw_string(struct json_writer *w, const char *key, const char *val);
void jw_uint(struct json_writer *w, const char *key, uint64_t val);
void jw_bool(struct json_writer *w, const char *key, bool val);
/* "0x%0*llx" as a string: JSON numbers lose 64-bit precision in many readers. */
void jw_hex(struct json_writer *w, const char *key, uint64_t val, int digits);

/* Reader: a strict RFC 8259 parser into a tree, bounded in depth and size. */
enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value {
	enum json_type type;
	bool boolean;
	char *text;                 /* string contents (NUL-free), or the number's text */
	size_t n;                   /* array items / object members */
	struct json_value *items;   /* n values */
	char **keys;                /* n keys, objects only */
};

struct json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(struct json_value *v);
/* Member of an object, or NULL (also when obj is NULL or not an object). */
const struct json_value *json_get(const struct json_value *obj, const char *key);
/* A non-negative integer number, or a "0x..." string. */
bool json_u64(const struct json_value *v, uint64_t *out);
/* A string's contents, or NULL. */
const char *json_str(const struct json_value *v);

#endif
