#include "irq_routing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>
#include <sys/ioctl.h>

int irq_routing_build(const struct irq_msi_route *routes, size_t n,
		      struct kvm_irq_routing_entry *out, size_t cap)
{
	if (cap < IRQ_ROUTING_DEFAULT_ENTRIES || n > cap - IRQ_ROUTING_DEFAULT_ENTRIES)
		return -1;
	size_t k = 0;
	/* KVM's own default, in its order: IOAPIC and PIC for 0-15, IOAPIC for 16-23. */
	for (uint32_t gsi = 0; gsi < IRQ_ROUTING_IOAPIC_PINS; gsi++) {
		out[k++] = (struct kvm_irq_routing_entry){
			.gsi = gsi,
			.type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
		if (gsi < IRQ_ROUTING_PIC_PINS)
			out[k++] = (struct kvm_irq_routing_entry){
				.gsi = gsi,
				.type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
								  : KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
	}
	for (size_t i = 0; i < n; i++) {
		if (routes[i].gsi < IRQ_ROUTING_FIRST_MSI_GSI || routes[i].gsi >= IRQ_ROUTING_MAX_GSI)
			return -1;
		out[k++] = (struct kvm_irq_routing_entry){
			.gsi = routes[i].gsi,
			.type = KVM_IRQ_ROUTING_MSI,
			.u.msi = {
				.address_lo = (uint32_t)routes[i].addr,
				.address_hi = (uint32_t)(routes[i].addr >> 32),
				.data = routes[i].data,
			},
		};
	}
	return (int)k;
}

void irq_routing_init(struct irq_routing *r, int vm_fd)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = vm_fd;
	pthread_mutex_init(&r->lock, NULL);
}

void irq_routing_fini(struct irq_routing *r)
{
	free(r->routes);
	r->routes = NULL;
	r->n = r->cap = 0;
	pthread_mutex_destroy(&r->lock);
}

/* Install the current table. Under lock. 0 or -errno. */
static int commit(struct irq_routing *r)
{
	size_t cap = IRQ_ROUTING_DEFAULT_ENTRIES + r->n;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + cap * sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	int n = irq_routing_build(r->routes, r->n, t->entries, cap);
	int rc = -EINVAL;
	if (n >= 0) {
		t->nr = (uint32_t)n;
		if (r->install)
			rc = r->install(r->install_arg, t);
		else
			rc = ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
	}
	free(t);
	if (rc == 0)
		r->commits++;
	return rc;
}

static ssize_t find(const struct irq_routing *r, uint32_t gsi)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->routes[i].gsi == gsi)
			return (ssize_t)i;
	return -1;
}

int irq_routing_add_msi(struct irq_routing *r, uint64_t addr, uint32_t data, uint32_t *gsi,
			char *err, size_t errlen)
{
	pthread_mutex_lock(&r->lock);
	int rc = -1;
	/* routes is sorted: the first gap from 24 up is the lowest free GSI. */
	uint32_t g = IRQ_ROUTING_FIRST_MSI_GSI;
	size_t pos = 0;
	while (pos < r->n && r->routes[pos].gsi == g) {
		pos++;
		g++;
	}
	if (g >= IRQ_ROUTING_MAX_GSI) {
		snprintf(err, errlen, "irq routing: all %u MSI routes are in use",
			 IRQ_ROUTING_MAX_GSI - IRQ_ROUTING_FIRST_MSI_GSI);
		goto out;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct irq_msi_route *nr = realloc(r->routes, cap * sizeof(*nr));
		if (!nr) {
			snprintf(err, errlen, "irq routing: out of memory");
			goto out;
		}
		r->routes = nr;
		r->cap = cap;
	}
	memmove(&r->routes[pos + 1], &r->routes[pos], (r->n - pos) * sizeof(*r->routes));
	r->routes[pos] = (struct irq_msi_route){ g, addr, data };
	r->n++;
	int e = commit(r);
	if (e) {
		snprintf(err, errlen, "KVM_SET_GSI_ROUTING (%zu MSI routes): %s", r->n,
			 strerror(-e));
		memmove(&r->routes[pos], &r->routes[pos + 1], (r->n - pos - 1) * sizeof(*r->routes));
		r->n--;
		goto out;
	}
	*gsi = g;
	rc = 0;
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int irq_routing_set_msi(struct irq_routing *r, uint32_t gsi, uint64_t addr, uint32_t data,
			char *err, size_t errlen)
{
	pthread_mutex_lock(&r->lock);
	int rc = 0;
	ssize_t i = find(r, gsi);
	if (i < 0) {
		snprintf(err, errlen, "irq routing: GSI %u has no MSI route", gsi);
		rc = -1;
	} else if (r->routes[i].addr != addr || r->routes[i].data != data) {
		struct irq_msi_route old = r->routes[i];
		r->routes[i].addr = addr;
		r->routes[i].data = data;
		int e = commit(r);
		if (e) {
			r->routes[i] = old;
			snprintf(err, errlen, "KVM_SET_GSI_ROUTING (GSI %u): %s", gsi, strerror(-e));
			rc = -1;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void irq_routing_del_msi(struct irq_routing *r, uint32_t gsi)
{
	pthread_mutex_lock(&r->lock);
	ssize_t i = find(r, gsi);
	if (i >= 0) {
		memmove(&r->routes[i], &r->routes[i + 1], (r->n - (size_t)i - 1) * sizeof(*r->routes));
		r->n--;
		/* A stale route on a GSI nobody signals is harmless if this fails. */
		commit(r);
	}
	pthread_mutex_unlock(&r->lock);
}

int irq_signal_msi(int vm_fd, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};
	/* > 0: delivered; 0: blocked by the guest (e.g. APIC disabled); < 0: error. */
	return ioctl(vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -1 : 0;
}
