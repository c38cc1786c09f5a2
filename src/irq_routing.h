/*
 * KVM's GSI routing table for one VM, and MSI delivery without a route.
 *
 * An irqfd (KVM_IRQFD) raises a GSI; what a GSI means is KVM's routing
 * table. Until userspace sets a table, KVM uses its built-in default: GSIs
 * 0-15 go to the PIC (master 0-7, slave 8-15) and GSIs 0-23 to the IOAPIC
 * pin of the same number. KVM_SET_GSI_ROUTING replaces the WHOLE table, so
 * every table khyve installs starts with exactly those 40 default irqchip
 * entries (vm_irq_line, the in-kernel PIT on GSI 0 and every device's INTx
 * keep working as before) and adds one MSI entry per route a driver holds:
 * a GSI of 24 or more whose "interrupt" is a message (address, data) sent
 * to the LAPICs. irq_routing_build() is the pure construction, unit-tested;
 * the rest keeps the table of one VM and installs it.
 *
 * The table is only ever installed once some driver asks for an MSI route,
 * so a VM without accelerated devices runs on KVM's default table, exactly
 * as before this file existed.
 *
 * Cost: KVM_SET_GSI_ROUTING copies the table and waits for an SRCU grace
 * period (tens of microseconds and more), so routes are set when the guest
 * programs a vector, never per interrupt. Changing the message of a route
 * updates every irqfd bound to its GSI inside KVM.
 *
 * Locking: one mutex per VM (a leaf: nothing else is taken under it, the
 * ioctl takes no khyve lock). KVM_SIGNAL_MSI needs no table and no lock.
 */
#ifndef KHYVE_IRQ_ROUTING_H
#define KHYVE_IRQ_ROUTING_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IRQ_ROUTING_IOAPIC_PINS 24   /* GSIs 0-23: IOAPIC, 0-15 also PIC */
#define IRQ_ROUTING_PIC_PINS 16
#define IRQ_ROUTING_DEFAULT_ENTRIES (IRQ_ROUTING_IOAPIC_PINS + IRQ_ROUTING_PIC_PINS)
#define IRQ_ROUTING_FIRST_MSI_GSI IRQ_ROUTING_IOAPIC_PINS
#define IRQ_ROUTING_MAX_GSI 4096     /* KVM_MAX_IRQ_ROUTES on x86 */

struct irq_msi_route {
	uint32_t gsi;
	uint64_t addr;
	uint32_t data;
};

/*
 * The table for a set of MSI routes: the default irqchip entries, then the
 * routes in the order given. Returns the number of entries written to out
 * (which has room for cap), or -1 if they do not fit or a route's GSI is
 * below IRQ_ROUTING_FIRST_MSI_GSI / at or above IRQ_ROUTING_MAX_GSI.
 */
int irq_routing_build(const struct irq_msi_route *routes, size_t n,
		      struct kvm_irq_routing_entry *out, size_t cap);

struct irq_routing {
	int vm_fd;
	pthread_mutex_t lock;
	struct irq_msi_route *routes;  /* sorted by GSI; under lock */
	size_t n, cap;
	unsigned long commits;         /* tables installed; under lock */
	/* For unit tests: installs the table instead of the ioctl (0 or -errno). */
	int (*install)(void *arg, const struct kvm_irq_routing *table);
	void *install_arg;
};

void irq_routing_init(struct irq_routing *r, int vm_fd);
void irq_routing_fini(struct irq_routing *r);

/*
 * Add an MSI route on the lowest free GSI >= 24 and install the table.
 * 0 and *gsi, or -1 with a reason.
 */
int irq_routing_add_msi(struct irq_routing *r, uint64_t addr, uint32_t data, uint32_t *gsi,
			char *err, size_t errlen);
/* Change the message of a route; installs the table only if it changed. */
int irq_routing_set_msi(struct irq_routing *r, uint32_t gsi, uint64_t addr, uint32_t data,
			char *err, size_t errlen);
/* Remove a route (its irqfds must already be deassigned) and install the table. */
void irq_routing_del_msi(struct irq_routing *r, uint32_t gsi);

/* Send one MSI now (KVM_SIGNAL_MSI): 0, or -1 with errno. No lock, no route. */
int irq_signal_msi(int vm_fd, uint64_t addr, uint32_t data);

#endif
