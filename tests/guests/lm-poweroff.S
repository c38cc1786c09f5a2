/*
 * 64-bit: the boot vCPU powers the VM off at once (exit 1). The other vCPUs
 * are never woken: they stay parked waiting for INIT/SIPI. bench/scale.sh
 * uses it to time creating, starting and destroying a VM of N vCPUs with
 * nothing else in the way.
 */
#include "common.h"
	.code64
	.text
	.globl _start
_start:
	POWEROFF
1:	cli
	hlt
	jmp 1b
