/*
 * A 16550A-compatible UART (the 8250 family Linux's serial driver expects),
 * at the legacy COM ports, with its interrupt on the ISA IRQ line.
 *
 * Output goes to a host fd as the guest writes THR; input comes from a host fd
 * read by a thread of its own into the 16-byte receive FIFO. When the host
 * side is a terminal it is put in raw mode for the VM's life (as bhyve does
 * for -l com1,stdio) so keystrokes reach the guest untouched.
 */
#ifndef KHYVE_UART_8250_H
#define KHYVE_UART_8250_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct uart_8250;

/* Create a UART at port `base` raising `irq`, backed by in_fd/out_fd (-1 = none). */
struct uart_8250 *uart_8250_create(struct vm *vm, uint16_t base, uint32_t irq, int in_fd,
				   int out_fd, char *err, size_t errlen);
void uart_8250_destroy(struct uart_8250 *u);

#endif
