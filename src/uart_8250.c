/*
 * 8250/16550A UART model.
 *
 * Registers (offset from base; DLAB = LCR bit 7 selects the divisor latch):
 *   0 RBR (read) / THR (write) / DLL (DLAB)   4 MCR
 *   1 IER / DLM (DLAB)                        5 LSR
 *   2 IIR (read) / FCR (write)                6 MSR
 *   3 LCR                                     7 SCR
 *
 * Interrupts follow the 16550's priority: receiver line status (not
 * modelled: no errors occur), received data available, THR empty, modem
 * status. The THRE interrupt is a latch: it is set when THR becomes empty
 * (always at once here, output is synchronous) and cleared by reading IIR
 * while it is the reported source or by writing THR, which is what Linux's
 * 8250 driver relies on to send. The IRQ line is driven as a level that
 * follows "some enabled source pending", like QEMU's serial model; MCR.OUT2
 * gates it as on a PC.
 *
 * Locking: one mutex per UART, taken by vCPU threads (register access) and the
 * input thread (FIFO fill). The IRQ line ioctl is issued under it so that line
 * transitions are ordered with the state that caused them.
 */
#include "uart_8250.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include "ioport.h"
#include "vm.h"

#define UART_FIFO_SIZE 16

#define IER_ERBFI 0x01  /* received data available */
#define IER_ETBEI 0x02  /* THR empty */
#define IER_EMSI  0x08  /* modem status */

#define IIR_NONE  0x01
#define IIR_MSI   0x00
#define IIR_THRE  0x02
#define IIR_RDA   0x04
#define IIR_FIFO_ENABLED 0xc0

#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define MCR_OUT2 0x08
#define LSR_DR   0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02

struct uart_8250 {
	struct vm *vm;
	uint16_t base;
	uint32_t irq;
	int in_fd, out_fd;
	pthread_mutex_t lock;
	pthread_cond_t rx_space;

	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm, msr;
	bool thre_pending;
	bool irq_level;
	uint8_t rx[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;

	pthread_t reader;
	bool reader_started;
	int stop_fd;
	bool stopping;
	bool tty_raw;
	struct termios saved_tio;
};

static uint8_t current_iir(struct uart_8250 *u)
{
	if ((u->ier & IER_ERBFI) && u->rx_count)
		return IIR_RDA;
	if ((u->ier & IER_ETBEI) && u->thre_pending)
		return IIR_THRE;
	if ((u->ier & IER_EMSI) && (u->msr & 0x0f))
		return IIR_MSI;
	return IIR_NONE;
}

static void update_irq(struct uart_8250 *u)
{
	bool level = current_iir(u) != IIR_NONE && (u->mcr & MCR_OUT2);
	if (level != u->irq_level) {
		u->irq_level = level;
		vm_irq_line(u->vm, u->irq, level);
	}
}

static void emit(struct uart_8250 *u, uint8_t ch)
{
	if (u->mcr & MCR_LOOP) {
		if (u->rx_count < UART_FIFO_SIZE)
			u->rx[(u->rx_head + u->rx_count++) % UART_FIFO_SIZE] = ch;
		return;
	}
	if (u->out_fd < 0)
		return;
	/*
	 * Output is synchronous: a full pipe or a stopped terminal stalls this
	 * vCPU, and the guest's data is never dropped for being slow. A VM
	 * that stops must not wait for a reader that may never come back,
	 * though: vm_suspend() kicks every vCPU thread (a signal without
	 * SA_RESTART, so the write returns EINTR) and vcpu_join() kicks again
	 * until the thread is gone; then the character is dropped.
	 */
	while (write(u->out_fd, &ch, 1) < 0 && errno == EINTR)
		if (atomic_load(&u->vm->suspended))
			return;
}

static uint8_t reg_read(struct uart_8250 *u, unsigned off)
{
	uint8_t v = 0;
	switch (off) {
	case 0:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
			u->rx_count--;
			pthread_cond_signal(&u->rx_space);
		}
		return v;
	case 1:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case 2:
		v = current_iir(u);
		if (v == IIR_THRE)
			u->thre_pending = false;  /* reading IIR acknowledges THRE */
		return v | ((u->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0);
	case 3:
		return u->lcr;
	case 4:
		return u->mcr;
	case 5:
		return LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0);
	case 6:
		if (u->mcr & MCR_LOOP) {
			/* Loopback wires OUT1/OUT2/RTS/DTR back to RI/DCD/CTS/DSR. */
			v = (uint8_t)(((u->mcr & 0x0c) << 4) | ((u->mcr & 0x01) << 5) |
				      ((u->mcr & 0x02) << 3));
		} else {
			v = 0xb0;  /* DCD, DSR, CTS: a cable is plugged in */
		}
		v |= u->msr & 0x0f;
		u->msr &= 0xf0;
		return v;
	default:
		return u->scr;
	}
}

static void reg_write(struct uart_8250 *u, unsigned off, uint8_t v)
{
	switch (off) {
	case 0:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
		} else {
			emit(u, v);
			/* THR empties at once; the THRE interrupt fires again. */
			u->thre_pending = true;
		}
		break;
	case 1:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
		} else {
			/* Enabling ETBEI with THR empty raises THRE (16550 behaviour). */
			if (!(u->ier & IER_ETBEI) && (v & IER_ETBEI))
				u->thre_pending = true;
			u->ier = v & 0x0f;
		}
		break;
	case 2:
		u->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX) {
			u->rx_count = 0;
			pthread_cond_signal(&u->rx_space);
		}
		break;
	case 3:
		u->lcr = v;
		break;
	case 4:
		u->mcr = v & 0x1f;
		break;
	case 7:
		u->scr = v;
		break;
	default:
		break;  /* LSR and MSR are read-only */
	}
}

static void uart_io(void *opaque, uint16_t port, unsigned size, bool is_write, uint32_t *val)
{
	struct uart_8250 *u = opaque;
	unsigned off = port - u->base;
	pthread_mutex_lock(&u->lock);
	if (is_write) {
		reg_write(u, off, (uint8_t)*val);
	} else {
		/* Wider accesses read the byte register repeated, as ISA decoders do. */
		uint8_t b = reg_read(u, off);
		*val = size == 1 ? b : size == 2 ? b * 0x0101u : b * 0x01010101u;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void *reader_thread(void *arg)
{
	struct uart_8250 *u = arg;
	struct pollfd pfd[2] = { { u->in_fd, POLLIN, 0 }, { u->stop_fd, POLLIN, 0 } };
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		uint8_t buf[UART_FIFO_SIZE];
		ssize_t n = read(u->in_fd, buf, sizeof(buf));
		if (n <= 0) {
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			break;  /* EOF: the guest simply receives no more input */
		}
		pthread_mutex_lock(&u->lock);
		for (ssize_t i = 0; i < n && !u->stopping; i++) {
			/* Back-pressure: wait for the guest to drain the FIFO. */
			while (u->rx_count == UART_FIFO_SIZE && !u->stopping)
				pthread_cond_wait(&u->rx_space, &u->lock);
			if (u->stopping)
				break;
			u->rx[(u->rx_head + u->rx_count++) % UART_FIFO_SIZE] = buf[i];
			update_irq(u);
		}
		bool stop = u->stopping;
		pthread_mutex_unlock(&u->lock);
		if (stop)
			break;
	}
	return NULL;
}

static void make_raw(struct uart_8250 *u)
{
	if (u->in_fd < 0 || !isatty(u->in_fd) || tcgetattr(u->in_fd, &u->saved_tio) < 0)
		return;
	struct termios raw = u->saved_tio;
	cfmakeraw(&raw);
	/* Keep output post-processing so host-side messages stay readable. */
	raw.c_oflag |= OPOST;
	if (tcsetattr(u->in_fd, TCSANOW, &raw) == 0)
		u->tty_raw = true;
}

struct uart_8250 *uart_8250_create(struct vm *vm, uint16_t base, uint32_t irq, int in_fd,
				   int out_fd, char *err, size_t errlen)
{
	struct uart_8250 *u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "uart: out of memory");
		return NULL;
	}
	u->vm = vm;
	u->base = base;
	u->irq = irq;
	u->in_fd = in_fd;
	u->out_fd = out_fd;
	u->stop_fd = -1;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->rx_space, NULL);
	if (ioport_register(&vm->io, base, 8, "uart", uart_io, u, err, errlen))
		goto fail;
	if (in_fd >= 0) {
		u->stop_fd = eventfd(0, EFD_CLOEXEC);
		if (u->stop_fd < 0) {
			snprintf(err, errlen, "uart: eventfd: %s", strerror(errno));
			goto fail;
		}
		make_raw(u);
		int r = pthread_create(&u->reader, NULL, reader_thread, u);
		if (r) {
			snprintf(err, errlen, "uart: input thread: %s", strerror(r));
			goto fail;
		}
		pthread_setname_np(u->reader, "uart-in");
		u->reader_started = true;
	}
	return u;
fail:
	uart_8250_destroy(u);
	return NULL;
}

void uart_8250_destroy(struct uart_8250 *u)
{
	if (!u)
		return;
	if (u->reader_started) {
		pthread_mutex_lock(&u->lock);
		u->stopping = true;
		pthread_cond_broadcast(&u->rx_space);
		pthread_mutex_unlock(&u->lock);
		uint64_t one = 1;
		if (write(u->stop_fd, &one, sizeof(one)) < 0) {
			/* cannot fail on a fresh eventfd */
		}
		pthread_join(u->reader, NULL);
	}
	if (u->tty_raw)
		tcsetattr(u->in_fd, TCSANOW, &u->saved_tio);
	if (u->stop_fd >= 0)
		close(u->stop_fd);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->rx_space);
	free(u);
}
