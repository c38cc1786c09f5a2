/*
 * The CPUID table a vCPU sees.
 *
 * It starts from what KVM says it can virtualize (KVM_GET_SUPPORTED_CPUID) and
 * is then only ever narrowed or rewritten, never widened beyond it: a feature
 * KVM cannot honour must not be advertised, because the guest would use it
 * and fault. Two kinds of edit are made:
 *
 *  - topology: the leaves through which x86 software learns sockets, cores
 *    and threads are rewritten from the VM's topology and the vCPU's APIC ID
 *    (leaf 0x1 EBX/HTT; 0x4 and 0xB/0x1F in the Intel style; 0x80000001
 *    CmpLegacy, 0x80000008 ECX and 0x8000001E in the AMD style); both styles
 *    are filled when KVM lists the leaf, since Linux reads both on AMD.
 *  - honesty: the hypervisor bit is set; features whose MSR KVM cannot
 *    provide are cleared (cpuid_filter describes what the host's KVM has).
 *  - the brand string (leaves 0x80000002-4, the guest's "model name"): KVM
 *    lists these leaves but leaves them empty, and Linux then names the CPU
 *    after its family ("AMD Hammer" for a modern EPYC). It is text, not a
 *    feature, so the host's own is filled in, as QEMU's -cpu host does.
 *
 * The function is pure (no ioctls) so it is unit-tested without KVM.
 */
#ifndef KHYVE_CPUID_H
#define KHYVE_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "topology.h"

struct cpuid_filter {
	bool arch_capabilities_msr;   /* MSR 0x10a readable through KVM */
	bool tsc_deadline_timer;      /* KVM_CAP_TSC_DEADLINE_TIMER */
	const char *brand;            /* 48 bytes for leaves 0x80000002-4 where KVM
					 left them empty, or NULL */
};

/*
 * Build vCPU `vcpu`'s table into out[0..max) from supported[0..nsupported).
 * Returns the number of entries, or -1 if max is too small.
 */
int cpuid_build(const struct kvm_cpuid_entry2 *supported, uint32_t nsupported,
		const struct cpuid_filter *filter, const struct topology *topo,
		uint32_t vcpu, struct kvm_cpuid_entry2 *out, uint32_t max);

/* Entry for (function, index) or NULL; index ignored for non-indexed leaves. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *entries, uint32_t n,
				    uint32_t function, uint32_t index);

/* True when leaf 0's vendor string is AMD's (or Hygon's, an AMD derivative). */
bool cpuid_vendor_is_amd(const struct kvm_cpuid_entry2 *entries, uint32_t n);

#endif
