/*
 * vCPU topology: how many vCPUs run at boot (cpus), how many may ever exist
 * (maxcpus), and how they are arranged in sockets, cores and threads.
 *
 * There is no compile-time vCPU limit anywhere in khyve: every per-vCPU
 * structure is sized from topology.maxcpus when the VM is created, and the
 * only ceiling is what KVM reports (KVM_CAP_MAX_VCPUS), checked at creation.
 *
 * The guest learns the arrangement from CPUID (cpuid.c) and ACPI (acpi.c);
 * both derive APIC IDs from topology_apic_id() so they cannot disagree.
 * IDs are laid out the way real x86 parts do it: the thread number in the low
 * bits, then the core, then the socket, each field as wide as the next power
 * of two of its count.
 */
#ifndef KHYVE_TOPOLOGY_H
#define KHYVE_TOPOLOGY_H

#include <stdint.h>
#include <stddef.h>

struct topology {
	uint32_t cpus;     /* vCPUs online at boot */
	uint32_t maxcpus;  /* vCPUs that may ever exist = sockets*cores*threads */
	uint32_t sockets;
	uint32_t cores;    /* per socket */
	uint32_t threads;  /* per core */
};

/* Largest value accepted for any field before KVM's own limit is applied. */
#define TOPOLOGY_FIELD_MAX 65535u

/*
 * Parse a bhyve -c argument: [[cpus=]N][,sockets=S][,cores=C][,threads=T]
 * [,maxcpus=M]. Fields left out keep bhyve's defaults (see topology.c).
 * Returns 0, or -1 with a one-line reason in err.
 */
int topology_parse(const char *arg, struct topology *out, char *err, size_t errlen);

/* Check a topology against KVM's limit. 0 or -1 with a reason in err. */
int topology_check_limit(const struct topology *t, uint32_t kvm_max_vcpus,
			 char *err, size_t errlen);

/* Bits of the APIC ID taken by the thread and core fields. */
unsigned topology_thread_bits(const struct topology *t);
unsigned topology_core_bits(const struct topology *t);

/* APIC ID (x2APIC ID; equal to the xAPIC ID when < 255) of vCPU index i. */
uint32_t topology_apic_id(const struct topology *t, uint32_t vcpu);

/* Where vCPU index i sits. */
void topology_place(const struct topology *t, uint32_t vcpu,
		    uint32_t *socket, uint32_t *core, uint32_t *thread);

/* Largest APIC ID of any possible vCPU (decides x2APIC vs xAPIC in MADT). */
uint32_t topology_max_apic_id(const struct topology *t);

#endif
