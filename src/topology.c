/*
 * Topology parsing follows bhyve(8)'s -c semantics exactly, extended with
 * maxcpus as the illumos/FreeBSD work on removing VM_MAXCPU describes it:
 *
 *   - cpus, cores and threads default to 1; sockets defaults to the vCPU
 *     total, so "-c 4" is four single-core sockets, as in bhyve;
 *   - the total is maxcpus when given, else cpus; when either is given
 *     explicitly, sockets*cores*threads must equal it;
 *   - when neither is given the total is computed from the topology;
 *   - cpus defaults to maxcpus when only maxcpus is given, and may never
 *     exceed it (the rest can be hot-added later).
 */
#include "topology.h"
#include "errmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_count(const char *name, const char *s, size_t len, uint32_t *out,
		       char *err, size_t errlen)
{
	char buf[32];
	if (len == 0 || len >= sizeof(buf))
		return fail_with(err, errlen, "-c: %s needs a number from 1 to %u", name,
			    TOPOLOGY_FIELD_MAX);
	memcpy(buf, s, len);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (buf[i] < '0' || buf[i] > '9')
			return fail_with(err, errlen, "-c: %s='%s' is not a number", name, buf);
	errno = 0;
	unsigned long v = strtoul(buf, NULL, 10);
	if (errno || v < 1 || v > TOPOLOGY_FIELD_MAX)
		return fail_with(err, errlen, "-c: %s=%s is out of range (1 to %u)", name, buf,
			    TOPOLOGY_FIELD_MAX);
	*out = (uint32_t)v;
	return 0;
}

int topology_parse(const char *arg, struct topology *out, char *err, size_t errlen)
{
	uint32_t cpus = 1, maxcpus = 0, sockets = 0, cores = 1, threads = 1;
	bool has_cpus = false, has_max = false, has_sockets = false;

	for (const char *p = arg; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		int r;
		if (!eq) {
			r = parse_count("cpus", p, len, &cpus, err, errlen);
			has_cpus = true;
		} else {
			size_t klen = (size_t)(eq - p);
			const char *v = eq + 1;
			size_t vlen = len - klen - 1;
#define KEY(k) (klen == strlen(k) && memcmp(p, k, klen) == 0)
			if (KEY("cpus")) {
				r = parse_count("cpus", v, vlen, &cpus, err, errlen);
				has_cpus = true;
			} else if (KEY("sockets")) {
				r = parse_count("sockets", v, vlen, &sockets, err, errlen);
				has_sockets = true;
			} else if (KEY("cores")) {
				r = parse_count("cores", v, vlen, &cores, err, errlen);
			} else if (KEY("threads")) {
				r = parse_count("threads", v, vlen, &threads, err, errlen);
			} else if (KEY("maxcpus")) {
				r = parse_count("maxcpus", v, vlen, &maxcpus, err, errlen);
				has_max = true;
			} else {
				return fail_with(err, errlen, "-c: unknown field '%.*s' (cpus, sockets, "
					    "cores, threads, maxcpus)", (int)klen, p);
			}
#undef KEY
		}
		if (r)
			return r;
		if (!end)
			break;
		p = end + 1;
		if (!*p)
			return fail_with(err, errlen, "-c: trailing ',' in '%s'", arg);
	}

	uint32_t total = has_max ? maxcpus : cpus;
	if (!has_sockets)
		sockets = total;
	uint64_t product = (uint64_t)sockets * cores * threads;
	if (product > TOPOLOGY_FIELD_MAX)
		return fail_with(err, errlen, "-c: sockets*cores*threads = %llu is too many vCPUs",
			    (unsigned long long)product);
	if (has_max || has_cpus) {
		if (product != total)
			return fail_with(err, errlen,
				    "-c: topology (%u sockets, %u cores, %u threads) does not "
				    "match %u %s", sockets, cores, threads, total,
				    has_max ? "maxcpus" : "vCPUs");
	} else {
		total = (uint32_t)product;
		cpus = total;
	}
	if (!has_max)
		maxcpus = total;
	else if (!has_cpus)
		cpus = maxcpus;
	if (cpus > maxcpus)
		return fail_with(err, errlen, "-c: cpus=%u exceeds maxcpus=%u", cpus, maxcpus);

	out->cpus = cpus;
	out->maxcpus = maxcpus;
	out->sockets = sockets;
	out->cores = cores;
	out->threads = threads;
	return 0;
}

int topology_check_limit(const struct topology *t, uint32_t kvm_max_vcpus,
			 char *err, size_t errlen)
{
	if (t->maxcpus > kvm_max_vcpus)
		return fail_with(err, errlen, "-c: maxcpus=%u exceeds what KVM supports (%u)",
			    t->maxcpus, kvm_max_vcpus);
	return 0;
}

static unsigned bits_for(uint32_t count)
{
	unsigned b = 0;
	while ((1u << b) < count)
		b++;
	return b;
}

unsigned topology_thread_bits(const struct topology *t) { return bits_for(t->threads); }
unsigned topology_core_bits(const struct topology *t) { return bits_for(t->cores); }

void topology_place(const struct topology *t, uint32_t vcpu,
		    uint32_t *socket, uint32_t *core, uint32_t *thread)
{
	*thread = vcpu % t->threads;
	*core = (vcpu / t->threads) % t->cores;
	*socket = vcpu / (t->threads * t->cores);
}

uint32_t topology_apic_id(const struct topology *t, uint32_t vcpu)
{
	uint32_t s, c, th;
	topology_place(t, vcpu, &s, &c, &th);
	unsigned tb = topology_thread_bits(t), cb = topology_core_bits(t);
	return (s << (cb + tb)) | (c << tb) | th;
}

uint32_t topology_max_apic_id(const struct topology *t)
{
	return topology_apic_id(t, t->maxcpus - 1);
}
