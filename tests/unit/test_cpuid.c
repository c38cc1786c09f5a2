/* Unit tests for CPUID topology rewriting and filtering (cpuid.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cpuid.h"
#include "topology.h"

#define MAXE 64

/* A plausible KVM_GET_SUPPORTED_CPUID answer for a vendor. */
static uint32_t fake_supported(struct kvm_cpuid_entry2 *e, const char *vendor)
{
	uint32_t n = 0;
	memset(e, 0, MAXE * sizeof(*e));
	e[n].function = 0;
	e[n].eax = 0x1f;
	memcpy(&e[n].ebx, vendor, 4);
	memcpy(&e[n].edx, vendor + 4, 4);
	memcpy(&e[n].ecx, vendor + 8, 4);
	n++;
	e[n].function = 1;
	e[n].eax = 0x00a20f12;
	e[n].ebx = 0xff0f0800;    /* host APIC ID and counts that must be replaced */
	e[n].ecx = 1u << 21;      /* x2APIC */
	e[n].edx = 1u << 28;
	n++;
	for (uint32_t i = 0; i < 4; i++) {  /* L1d, L1i, L2, L3 */
		e[n].function = 4;
		e[n].index = i;
		e[n].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e[n].eax = (i < 2 ? 1u : i) << 5 | (i == 1 ? 2 : i == 3 ? 3 : 1);
		e[n].eax |= 0xfc000000u | 0x03ffc000u;  /* host sharing counts */
		n++;
	}
	e[n].function = 7;
	e[n].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e[n].edx = 1u << 29;      /* ARCH_CAPABILITIES */
	n++;
	for (uint32_t leaf = 0xb; leaf <= 0x1f; leaf += 0x14)
		for (uint32_t i = 0; i < 4; i++) {  /* host has an extra (die) level */
			e[n].function = leaf;
			e[n].index = i;
			e[n].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
			e[n].eax = 7;
			e[n].ebx = 99;
			n++;
		}
	e[n].function = 0x80000001;
	e[n].ecx = 1u << 22;      /* TOPOEXT */
	n++;
	e[n].function = 0x80000008;
	e[n].ecx = 0x0000f0ff;
	n++;
	e[n].function = 0x8000001e;
	e[n].eax = 0x55;
	n++;
	return n;
}

static struct topology topo(const char *spec)
{
	struct topology t;
	char err[128];
	assert_int_equal(topology_parse(spec, &t, err, sizeof(err)), 0);
	return t;
}

static struct kvm_cpuid_entry2 *get(struct kvm_cpuid_entry2 *e, int n, uint32_t f, uint32_t i)
{
	struct kvm_cpuid_entry2 *r = cpuid_find(e, (uint32_t)n, f, i);
	assert_non_null(r);
	return r;
}

static void test_leaf1_and_0xb_intel(void **state)
{
	struct kvm_cpuid_entry2 sup[MAXE], out[MAXE];
	uint32_t ns = fake_supported(sup, "GenuineIntel");
	struct topology t = topo("sockets=2,cores=3,threads=2");
	struct cpuid_filter f = { 0 };
	/* vCPU 7: socket 1, core 0, thread 1 -> APIC ID 0b1_00_1 = 9. */
	int n = cpuid_build(sup, ns, &f, &t, 7, out, MAXE);
	assert_true(n > 0);
	assert_false(cpuid_vendor_is_amd(out, (uint32_t)n));
	struct kvm_cpuid_entry2 *e = get(out, n, 1, 0);
	assert_int_equal(e->ebx >> 24, 9);
	assert_int_equal((e->ebx >> 16) & 0xff, 8);  /* 2^(1+2) addressable IDs */
	assert_int_equal(e->ebx & 0xffff, 0x0800);   /* CLFLUSH etc. kept */
	assert_true(e->edx & (1u << 28));            /* HTT */
	assert_true(e->ecx & (1u << 31));            /* hypervisor */
	assert_true(e->ecx & (1u << 21));            /* x2APIC kept */
	assert_false(e->ecx & (1u << 24));           /* no TSC deadline without the cap */

	e = get(out, n, 0xb, 0);
	assert_int_equal(e->eax, 1);
	assert_int_equal(e->ebx, 2);
	assert_int_equal(e->ecx, (1u << 8) | 0);
	assert_int_equal(e->edx, 9);
	e = get(out, n, 0xb, 1);
	assert_int_equal(e->eax, 3);
	assert_int_equal(e->ebx, 6);
	assert_int_equal(e->ecx, (2u << 8) | 1);
	e = get(out, n, 0xb, 2);
	assert_int_equal(e->ecx, 2);                 /* level type 0: the end */
	assert_null(cpuid_find(out, (uint32_t)n, 0xb, 3));  /* host's die level dropped */
	e = get(out, n, 0x1f, 1);
	assert_int_equal(e->ebx, 6);

	/* Leaf 4: L1/L2 shared by the 2 threads, L3 by the package; 4 core IDs. */
	for (uint32_t i = 0; i < 4; i++) {
		e = get(out, n, 4, i);
		unsigned level = (e->eax >> 5) & 7;
		assert_int_equal((e->eax >> 14) & 0xfff, level == 3 ? 7 : 1);
		assert_int_equal(e->eax >> 26, 3);
	}
	/* ARCH_CAPABILITIES hidden because the MSR does not work here. */
	assert_false(get(out, n, 7, 0)->edx & (1u << 29));
}

static void test_single_cpu_has_no_htt(void **state)
{
	struct kvm_cpuid_entry2 sup[MAXE], out[MAXE];
	uint32_t ns = fake_supported(sup, "GenuineIntel");
	struct topology t = topo("");
	struct cpuid_filter f = { .arch_capabilities_msr = true, .tsc_deadline_timer = true };
	int n = cpuid_build(sup, ns, &f, &t, 0, out, MAXE);
	struct kvm_cpuid_entry2 *e = get(out, n, 1, 0);
	assert_false(e->edx & (1u << 28));
	assert_int_equal(e->ebx >> 24, 0);
	assert_int_equal((e->ebx >> 16) & 0xff, 1);
	assert_true(e->ecx & (1u << 24));
	assert_true(get(out, n, 7, 0)->edx & (1u << 29));
	assert_false(get(out, n, 0x80000001, 0)->ecx & 2);  /* CmpLegacy */
}

static void test_amd_leaves(void **state)
{
	struct kvm_cpuid_entry2 sup[MAXE], out[MAXE];
	uint32_t ns = fake_supported(sup, "AuthenticAMD");
	struct topology t = topo("4,sockets=2,cores=2,threads=1");
	struct cpuid_filter f = { 0 };
	/* vCPU 3: socket 1, core 1 -> APIC ID 0b1_1 = 3. */
	int n = cpuid_build(sup, ns, &f, &t, 3, out, MAXE);
	assert_true(cpuid_vendor_is_amd(out, (uint32_t)n));
	struct kvm_cpuid_entry2 *e = get(out, n, 0x80000008, 0);
	assert_int_equal(e->ecx & 0xff, 1);          /* 2 threads in the package - 1 */
	assert_int_equal((e->ecx >> 12) & 0xf, 1);   /* ApicIdCoreIdSize */
	e = get(out, n, 0x8000001e, 0);
	assert_int_equal(e->eax, 3);
	assert_int_equal(e->ebx & 0xff, 1);          /* core 1 */
	assert_int_equal((e->ebx >> 8) & 0xff, 0);   /* 1 thread per core */
	assert_int_equal(e->ecx & 0xff, 1);          /* node = socket 1 */
	assert_true(get(out, n, 0x80000001, 0)->ecx & 2);   /* CmpLegacy */
	/* Leaf 4 is Intel's; on AMD it is left as KVM reported it. */
	assert_int_equal(get(out, n, 4, 3)->eax, sup[5].eax);
}

/* KVM's empty brand-string leaves get the host's; one KVM filled is kept. */
static void test_brand_string(void **state)
{
	struct kvm_cpuid_entry2 sup[MAXE], out[MAXE];
	uint32_t ns = fake_supported(sup, "AuthenticAMD");
	for (uint32_t i = 0; i < 3; i++)
		sup[ns++] = (struct kvm_cpuid_entry2){ .function = 0x80000002 + i };
	struct topology t = topo("");
	char brand[48] = "AMD EPYC 7B13 64-Core Processor";
	struct cpuid_filter f = { .brand = brand };
	int n = cpuid_build(sup, ns, &f, &t, 0, out, MAXE);
	char got[49] = { 0 };
	for (uint32_t i = 0; i < 3; i++) {
		struct kvm_cpuid_entry2 *e = get(out, n, 0x80000002 + i, 0);
		memcpy(got + 16 * i, &e->eax, 4);
		memcpy(got + 16 * i + 4, &e->ebx, 4);
		memcpy(got + 16 * i + 8, &e->ecx, 4);
		memcpy(got + 16 * i + 12, &e->edx, 4);
	}
	assert_string_equal(got, brand);
	/* No brand known: the leaves stay as KVM gave them (empty). */
	f.brand = NULL;
	n = cpuid_build(sup, ns, &f, &t, 0, out, MAXE);
	assert_int_equal(get(out, n, 0x80000002, 0)->eax, 0);
	/* KVM's own brand string is not overwritten. */
	sup[ns - 3].eax = 0x20444d41;  /* "AMD " */
	f.brand = brand;
	n = cpuid_build(sup, ns, &f, &t, 0, out, MAXE);
	assert_int_equal(get(out, n, 0x80000002, 0)->eax, 0x20444d41);
	assert_int_equal(get(out, n, 0x80000002, 0)->ebx, 0);
}

static void test_too_small_output(void **state)
{
	struct kvm_cpuid_entry2 sup[MAXE], out[MAXE];
	uint32_t ns = fake_supported(sup, "GenuineIntel");
	struct topology t = topo("");
	struct cpuid_filter f = { 0 };
	assert_int_equal(cpuid_build(sup, ns, &f, &t, 0, out, ns - 1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaf1_and_0xb_intel),
		cmocka_unit_test(test_single_cpu_has_no_htt),
		cmocka_unit_test(test_brand_string),
		cmocka_unit_test(test_amd_leaves),
		cmocka_unit_test(test_too_small_output),
	};
	return cmocka_run_group_tests_name("cpuid", tests, NULL, NULL);
}
