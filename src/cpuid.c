#include "cpuid.h"

#include <string.h>

#define CPUID_1_ECX_TSC_DEADLINE   (1u << 24)
#define CPUID_1_ECX_HYPERVISOR     (1u << 31)
#define CPUID_1_EDX_HTT            (1u << 28)
#define CPUID_7_EDX_ARCH_CAPS      (1u << 29)
#define CPUID_80000001_ECX_CMPLEGACY (1u << 1)
#define CPUID_80000001_ECX_TOPOEXT (1u << 22)

/* Level types of leaves 0xB/0x1F. */
#define TOPO_LEVEL_INVALID 0
#define TOPO_LEVEL_SMT     1
#define TOPO_LEVEL_CORE    2

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *entries, uint32_t n,
				    uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &entries[i];
		if (e->function != function)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
			return e;
	}
	return NULL;
}

bool cpuid_vendor_is_amd(const struct kvm_cpuid_entry2 *entries, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (entries[i].function != 0)
			continue;
		char v[12];
		memcpy(v, &entries[i].ebx, 4);
		memcpy(v + 4, &entries[i].edx, 4);
		memcpy(v + 8, &entries[i].ecx, 4);
		return memcmp(v, "AuthenticAMD", 12) == 0 || memcmp(v, "HygonGenuine", 12) == 0;
	}
	return false;
}

static void set_topology_level(struct kvm_cpuid_entry2 *e, unsigned shift, uint32_t count,
			       uint32_t type, uint32_t apic_id)
{
	e->eax = shift;
	e->ebx = count;
	e->ecx = (type << 8) | (e->index & 0xff);
	e->edx = apic_id;
}

/*
 * Leaves 0xB and 0x1F are indexed: KVM reports them with as many subleaves as
 * the host has levels. We write exactly three: SMT, core and the terminating
 * invalid level, reusing the host's slots and dropping any extra (die, tile).
 */
static int rewrite_extended_topology(struct kvm_cpuid_entry2 *out, int n, uint32_t leaf,
				     const struct topology *t, uint32_t apic_id, uint32_t max)
{
	int w = 0;
	for (int i = 0; i < n; i++)
		if (!(out[i].function == leaf && out[i].index > 2))
			out[w++] = out[i];
	n = w;
	unsigned tb = topology_thread_bits(t), cb = topology_core_bits(t);
	for (uint32_t sub = 0; sub < 3; sub++) {
		struct kvm_cpuid_entry2 *e = NULL;
		for (int i = 0; i < n; i++)
			if (out[i].function == leaf && out[i].index == sub)
				e = &out[i];
		if (!e) {
			if ((uint32_t)n >= max)
				return -1;
			e = &out[n++];
			memset(e, 0, sizeof(*e));
			e->function = leaf;
			e->index = sub;
			e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		}
		if (sub == 0)
			set_topology_level(e, tb, t->threads, TOPO_LEVEL_SMT, apic_id);
		else if (sub == 1)
			set_topology_level(e, tb + cb, t->threads * t->cores, TOPO_LEVEL_CORE,
					   apic_id);
		else
			set_topology_level(e, 0, 0, TOPO_LEVEL_INVALID, apic_id);
	}
	return n;
}

int cpuid_build(const struct kvm_cpuid_entry2 *supported, uint32_t nsupported,
		const struct cpuid_filter *filter, const struct topology *t,
		uint32_t vcpu, struct kvm_cpuid_entry2 *out, uint32_t max)
{
	if (nsupported > max)
		return -1;
	memcpy(out, supported, nsupported * sizeof(*out));
	int n = (int)nsupported;

	uint32_t apic_id = topology_apic_id(t, vcpu);
	uint32_t per_package = t->threads * t->cores;
	unsigned tb = topology_thread_bits(t), cb = topology_core_bits(t);
	bool amd = cpuid_vendor_is_amd(out, n);
	struct kvm_cpuid_entry2 *e;

	uint32_t max_basic = (e = cpuid_find(out, n, 0, 0)) ? e->eax : 0;

	if ((e = cpuid_find(out, n, 1, 0))) {
		e->ebx &= 0x0000ffff;
		e->ebx |= (apic_id & 0xff) << 24;
		e->ebx |= ((1u << (tb + cb)) & 0xff) << 16;
		if (per_package > 1)
			e->edx |= CPUID_1_EDX_HTT;
		else
			e->edx &= ~CPUID_1_EDX_HTT;
		e->ecx |= CPUID_1_ECX_HYPERVISOR;
		if (filter->tsc_deadline_timer)
			e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
		else
			e->ecx &= ~CPUID_1_ECX_TSC_DEADLINE;
	}

	/* Deterministic cache parameters (Intel): who shares each cache. */
	if (!amd) {
		for (int i = 0; i < n; i++) {
			e = &out[i];
			if (e->function != 4 || (e->eax & 0x1f) == 0)
				continue;
			unsigned level = (e->eax >> 5) & 7;
			uint32_t sharing = level >= 3 ? (1u << (tb + cb)) - 1 : (1u << tb) - 1;
			e->eax &= 0x00003fff;
			e->eax |= (sharing & 0xfff) << 14;
			e->eax |= (((1u << cb) - 1) & 0x3f) << 26;
		}
	}

	if ((e = cpuid_find(out, n, 7, 0)) && !filter->arch_capabilities_msr)
		e->edx &= ~CPUID_7_EDX_ARCH_CAPS;

	if (max_basic >= 0xb && cpuid_find(out, n, 0xb, 0)) {
		n = rewrite_extended_topology(out, n, 0xb, t, apic_id, max);
		if (n < 0)
			return -1;
	}
	if (max_basic >= 0x1f && cpuid_find(out, n, 0x1f, 0)) {
		n = rewrite_extended_topology(out, n, 0x1f, t, apic_id, max);
		if (n < 0)
			return -1;
	}

	if ((e = cpuid_find(out, n, 0x80000001, 0))) {
		if (per_package > 1)
			e->ecx |= CPUID_80000001_ECX_CMPLEGACY;
		else
			e->ecx &= ~CPUID_80000001_ECX_CMPLEGACY;
	}
	if (amd && (e = cpuid_find(out, n, 0x80000008, 0))) {
		e->ecx &= ~0xf0ffu;
		e->ecx |= (per_package - 1) & 0xff;
		e->ecx |= ((tb + cb) & 0xf) << 12;
	}
	bool topoext = (e = cpuid_find(out, n, 0x80000001, 0)) &&
		       (e->ecx & CPUID_80000001_ECX_TOPOEXT);
	if ((e = cpuid_find(out, n, 0x8000001e, 0))) {
		if (topoext) {
			uint32_t s, c, th;
			topology_place(t, vcpu, &s, &c, &th);
			e->eax = apic_id;
			e->ebx = ((t->threads - 1) & 0xff) << 8 | (c & 0xff);
			e->ecx = s & 0xff;  /* one node per socket */
			e->edx = 0;
		} else {
			memset(&e->eax, 0, 4 * sizeof(e->eax));
		}
	}
	/* A brand string KVM did provide is kept; an empty one is filled in. */
	for (uint32_t i = 0; filter->brand && i < 3; i++) {
		e = cpuid_find(out, n, 0x80000002 + i, 0);
		if (e && !(e->eax | e->ebx | e->ecx | e->edx)) {
			const char *part = filter->brand + 16 * i;
			memcpy(&e->eax, part, 4);
			memcpy(&e->ebx, part + 4, 4);
			memcpy(&e->ecx, part + 8, 4);
			memcpy(&e->edx, part + 12, 4);
		}
	}
	return n;
}
