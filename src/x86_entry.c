#include "x86_entry.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "boot_layout.h"
#include "vcpu.h"
#include "vm.h"

#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_ET (1ULL << 4)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)

#define PTE_PRESENT (1ULL << 0)
#define PTE_WRITE   (1ULL << 1)
#define PTE_PS      (1ULL << 7)

#define GDT_CODE64 0x00af9b000000ffffULL   /* present, DPL0, code, L=1 */
#define GDT_DATA   0x00cf93000000ffffULL   /* present, DPL0, data, 4 GiB */
#define BOOT_CS 0x10
#define BOOT_DS 0x18

static int write_guest(struct vm *vm, uint64_t gpa, const void *src, size_t len, char *err,
		       size_t errlen)
{
	void *dst = memmap_translate(&vm->mem, gpa, len);
	if (!dst) {
		snprintf(err, errlen, "boot structures at 0x%llx do not fit in guest RAM",
			 (unsigned long long)gpa);
		return -1;
	}
	memcpy(dst, src, len);
	return 0;
}

static struct kvm_segment segment_from_gdt(uint64_t desc, uint16_t selector)
{
	struct kvm_segment s = {
		.base = (desc >> 16 & 0xffffff) | (desc >> 32 & 0xff000000),
		.limit = (uint32_t)((desc & 0xffff) | (desc >> 32 & 0xf0000)),
		.selector = selector,
		.type = desc >> 40 & 0xf,
		.present = desc >> 47 & 1,
		.dpl = desc >> 45 & 3,
		.db = desc >> 54 & 1,
		.s = desc >> 44 & 1,
		.l = desc >> 53 & 1,
		.g = desc >> 55 & 1,
	};
	if (s.g)
		s.limit = (s.limit << 12) | 0xfff;
	return s;
}

int x86_enter_long_mode(struct vm *vm, struct vcpu *v, uint64_t rip, uint64_t rsi,
			uint64_t rsp, char *err, size_t errlen)
{
	uint64_t gdt[4] = { 0, 0, GDT_CODE64, GDT_DATA };
	uint64_t pml4[512] = { BOOT_PDPT_GPA | PTE_PRESENT | PTE_WRITE };
	uint64_t pdpt[512] = { 0 };
	uint64_t pd[4][512];  /* 16 KiB, written once at boot */
	for (int i = 0; i < 4; i++) {
		pdpt[i] = (BOOT_PD_GPA + i * 0x1000ULL) | PTE_PRESENT | PTE_WRITE;
		for (int j = 0; j < 512; j++)
			pd[i][j] = (((uint64_t)i << 30) + ((uint64_t)j << 21)) |
				   PTE_PRESENT | PTE_WRITE | PTE_PS;
	}
	if (write_guest(vm, BOOT_GDT_GPA, gdt, sizeof(gdt), err, errlen) ||
	    write_guest(vm, BOOT_PML4_GPA, pml4, sizeof(pml4), err, errlen) ||
	    write_guest(vm, BOOT_PDPT_GPA, pdpt, sizeof(pdpt), err, errlen) ||
	    write_guest(vm, BOOT_PD_GPA, pd, sizeof(pd), err, errlen))
		return -1;

	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		goto ioctl_failed;
	sregs.gdt.base = BOOT_GDT_GPA;
	sregs.gdt.limit = sizeof(gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cs = segment_from_gdt(GDT_CODE64, BOOT_CS);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment_from_gdt(GDT_DATA, BOOT_DS);
	sregs.cr3 = BOOT_PML4_GPA;
	sregs.cr4 = X86_CR4_PAE;
	sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
	sregs.efer = X86_EFER_LME | X86_EFER_LMA;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		goto ioctl_failed;

	struct kvm_regs regs = { .rip = rip, .rsi = rsi, .rsp = rsp, .rflags = 2 };
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		goto ioctl_failed;
	return 0;
ioctl_failed:
	snprintf(err, errlen, "setting the 64-bit entry state of vCPU %u: %s", v->id,
		 strerror(errno));
	return -1;
}

int x86_enter_real_mode(struct vcpu *v, uint16_t cs, uint16_t ip, char *err, size_t errlen)
{
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		goto ioctl_failed;
	sregs.cs.selector = cs;
	sregs.cs.base = (uint64_t)cs << 4;
	sregs.ds = sregs.es = sregs.ss = sregs.cs;
	sregs.ds.type = sregs.es.type = sregs.ss.type = 3;  /* data, read/write */
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		goto ioctl_failed;
	struct kvm_regs regs = { .rip = ip, .rsp = 0xfffe, .rflags = 2 };
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		goto ioctl_failed;
	return 0;
ioctl_failed:
	snprintf(err, errlen, "setting the real-mode entry state of vCPU %u: %s", v->id,
		 strerror(errno));
	return -1;
}
