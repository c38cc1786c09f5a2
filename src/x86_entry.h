/*
 * The register state a vCPU starts in, for the two ways khyve enters a guest:
 *
 *  - 64-bit: what the Linux x86 boot protocol's 64-bit entry requires, and
 *    what 64-bit micro-guests use: long mode with paging, an identity map of
 *    the first 4 GiB in 2 MiB pages, a flat GDT with __BOOT_CS = 0x10 and
 *    __BOOT_DS = 0x18, interrupts off, RSI = the zero page.
 *  - real mode: CS:IP as a BIOS would hand over to a boot sector, for
 *    16-bit micro-guests.
 *
 * The page tables and GDT are written at the fixed addresses of boot_layout.h.
 */
#ifndef KHYVE_X86_ENTRY_H
#define KHYVE_X86_ENTRY_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;

int x86_enter_long_mode(struct vm *vm, struct vcpu *vcpu, uint64_t rip, uint64_t rsi,
			uint64_t rsp, char *err, size_t errlen);
int x86_enter_real_mode(struct vcpu *vcpu, uint16_t cs, uint16_t ip, char *err,
			size_t errlen);

#endif
