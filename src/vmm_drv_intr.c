/*
 * vmm_drv: MSIs, irqfd routes and MSI-X bindings. Theory: section 4 of
 * vmm_drv.c; the masking rules: pci_msix.c.
 *
 * A route publishes (address, data, live) for vmm_drv_msi's lock-free
 * lookup with a sequence counter: odd while the route changes, so a reader
 * that sees the same even value before and after reading has a consistent
 * triple. A reader that matched a route and then writes its eventfd may
 * race with the route being masked: the write then stays pending and is
 * delivered on unmask -- exactly what the PCI spec asks of an event that
 * arrives as the vector is masked.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vm.h"
#include "vmm_drv_impl.h"

struct vmm_msi_route {
	struct vmm_hold *hold;
	unsigned slot;
	uint32_t gsi;
	int efd;
	bool assigned;               /* irqfd attached in KVM */
	uint64_t addr;               /* the message KVM's route has */
	uint32_t data;
	atomic_uint seq;             /* publication for vmm_drv_msi */
	atomic_ullong pub_addr;
	atomic_uint pub_data;
	atomic_bool pub_live;
};

struct intx_watch {
	struct vmm_drv_msix *b;
	unsigned v;
	uint64_t id;
};

struct vmm_drv_msix {
	struct vmm_hold *hold;
	struct pci_msix *msix;
	unsigned nvec;
	struct vmm_msi_route **routes;
	struct intx_watch *watches;
	vmm_drv_intr_fn cb;
	void *arg;
	struct vmm_drv_msix *next;   /* in the hold's list, under d->lock */
};

/* Sequentially consistent throughout: plain loads on x86, and TSan understands it. */
static void publish(struct vmm_msi_route *r, uint64_t addr, uint32_t data, bool live)
{
	unsigned s = atomic_load(&r->seq);
	atomic_store(&r->seq, s + 1);
	atomic_store(&r->pub_addr, addr);
	atomic_store(&r->pub_data, data);
	atomic_store(&r->pub_live, live);
	atomic_store(&r->seq, s + 2);
}

static bool route_matches(struct vmm_msi_route *r, uint64_t addr, uint32_t data)
{
	unsigned s1 = atomic_load(&r->seq);
	if (s1 & 1)
		return false;
	uint64_t a = atomic_load(&r->pub_addr);
	uint32_t dd = atomic_load(&r->pub_data);
	bool live = atomic_load(&r->pub_live);
	return atomic_load(&r->seq) == s1 && live && a == addr && dd == data;
}

static int irqfd(struct vm *vm, struct vmm_msi_route *r, bool assign)
{
	struct kvm_irqfd f = {
		.fd = (uint32_t)r->efd,
		.gsi = r->gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};
	return ioctl(vm->vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

static int signal_fd(int efd)
{
	uint64_t one = 1;
	return write(efd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

int vmm_drv_msi(struct vmm_hold *h, uint64_t addr, uint32_t data)
{
	struct vmm_drv_vm *d = h->d;
	unsigned hwm = atomic_load_explicit(&h->routes_hwm, memory_order_acquire);
	for (unsigned i = 0; i < hwm; i++) {
		struct vmm_msi_route *r = atomic_load_explicit(&h->routes[i], memory_order_acquire);
		if (r && route_matches(r, addr, data) && signal_fd(r->efd) == 0) {
			atomic_fetch_add_explicit(&d->msi_irqfd, 1, memory_order_relaxed);
			return 0;
		}
	}
	atomic_fetch_add_explicit(&d->msi_signal, 1, memory_order_relaxed);
	return irq_signal_msi(d->vm->vm_fd, addr, data) < 0 ? -errno : 0;
}

int vmm_drv_msi_route_set(struct vmm_msi_route *r, uint64_t addr, uint32_t data, bool masked,
			  char *err, size_t errlen)
{
	struct vmm_drv_vm *d = r->hold->d;
	if (masked) {
		/* Readers stop matching first; then detach: writes now accumulate. */
		publish(r, addr, data, false);
		if (r->assigned) {
			int e = irqfd(d->vm, r, false);
			if (e) {
				snprintf(err, errlen, "KVM_IRQFD deassign (GSI %u): %s", r->gsi,
					 strerror(-e));
				return e;
			}
			r->assigned = false;
		}
		return 0;
	}
	if (addr != r->addr || data != r->data) {
		if (r->assigned)
			publish(r, r->addr, r->data, false);
		if (irq_routing_set_msi(&d->routing, r->gsi, addr, data, err, errlen))
			return -EIO;
		r->addr = addr;
		r->data = data;
	}
	if (!r->assigned) {
		/* KVM polls the eventfd here: a write made while masked is delivered now. */
		int e = irqfd(d->vm, r, true);
		if (e) {
			snprintf(err, errlen, "KVM_IRQFD assign (GSI %u): %s", r->gsi, strerror(-e));
			return e;
		}
		r->assigned = true;
	}
	publish(r, addr, data, true);
	return 0;
}

struct vmm_msi_route *vmm_drv_msi_route(struct vmm_hold *h, uint64_t addr, uint32_t data,
					bool masked, char *err, size_t errlen)
{
	struct vmm_drv_vm *d = h->d;
	struct vmm_msi_route *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "vmm_drv: out of memory");
		return NULL;
	}
	r->hold = h;
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		snprintf(err, errlen, "vmm_drv: eventfd: %s", strerror(errno));
		free(r);
		return NULL;
	}
	if (irq_routing_add_msi(&d->routing, addr, data, &r->gsi, err, errlen)) {
		close(r->efd);
		free(r);
		return NULL;
	}
	r->addr = addr;
	r->data = data;
	if (!masked && vmm_drv_msi_route_set(r, addr, data, false, err, errlen)) {
		irq_routing_del_msi(&d->routing, r->gsi);
		close(r->efd);
		free(r);
		return NULL;
	}
	/* A slot for vmm_drv_msi's lookup. */
	pthread_mutex_lock(&d->lock);
	unsigned slot = 0;
	while (slot < VMM_DRV_MAX_ROUTES && atomic_load(&h->routes[slot]))
		slot++;
	if (slot < VMM_DRV_MAX_ROUTES) {
		r->slot = slot;
		atomic_store_explicit(&h->routes[slot], r, memory_order_release);
		if (slot >= atomic_load(&h->routes_hwm))
			atomic_store_explicit(&h->routes_hwm, slot + 1, memory_order_release);
	}
	pthread_mutex_unlock(&d->lock);
	if (slot == VMM_DRV_MAX_ROUTES) {
		snprintf(err, errlen, "vmm_drv: a hold has at most %u routes", VMM_DRV_MAX_ROUTES);
		if (r->assigned)
			irqfd(d->vm, r, false);
		irq_routing_del_msi(&d->routing, r->gsi);
		close(r->efd);
		free(r);
		return NULL;
	}
	return r;
}

int vmm_drv_msi_route_fd(struct vmm_msi_route *r)
{
	return r->efd;
}

bool vmm_drv_msi_route_pending(struct vmm_msi_route *r)
{
	if (r->assigned)
		return false;
	/* Readable = the counter is non-zero; poll does not consume it. */
	struct pollfd p = { .fd = r->efd, .events = POLLIN };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

void vmm_drv_msi_route_free(struct vmm_msi_route *r)
{
	if (!r)
		return;
	struct vmm_drv_vm *d = r->hold->d;
	publish(r, r->addr, r->data, false);
	pthread_mutex_lock(&d->lock);
	atomic_store_explicit(&r->hold->routes[r->slot], NULL, memory_order_release);
	pthread_mutex_unlock(&d->lock);
	if (r->assigned)
		irqfd(d->vm, r, false);
	irq_routing_del_msi(&d->routing, r->gsi);
	close(r->efd);
	free(r);
}

/* ---- MSI-X bindings ---- */

static void report(struct vmm_drv_msix *b, const struct vmm_drv_intr_event *ev)
{
	if (b->cb)
		b->cb(b->arg, ev);
}

static void be_vector_update(void *arg, unsigned v, uint64_t addr, uint32_t data, bool masked)
{
	struct vmm_drv_msix *b = arg;
	char err[160];
	if (vmm_drv_msi_route_set(b->routes[v], addr, data, masked, err, sizeof(err)))
		fprintf(stderr, "khyve: MSI-X vector %u: %s\n", v, err);
	struct vmm_drv_intr_event ev = { .what = VMM_DRV_INTR_VECTOR, .vector = v, .addr = addr,
					 .data = data, .masked = masked, .mode = PCI_IRQ_MSIX };
	report(b, &ev);
}

static bool be_vector_pending(void *arg, unsigned v)
{
	struct vmm_drv_msix *b = arg;
	return vmm_drv_msi_route_pending(b->routes[v]);
}

static void be_vector_signal(void *arg, unsigned v)
{
	struct vmm_drv_msix *b = arg;
	signal_fd(b->routes[v]->efd);
}

static void be_mode_update(void *arg, enum pci_irq_mode mode)
{
	struct vmm_drv_msix *b = arg;
	struct vmm_drv_vm *d = b->hold->d;
	/* In INTx mode the driver thread reads the eventfds; in MSI-X mode, KVM. */
	for (unsigned v = 0; v < b->nvec; v++)
		vmm_drv_watch_enable(d, b->watches[v].id, mode == PCI_IRQ_INTX);
	struct vmm_drv_intr_event ev = { .what = VMM_DRV_INTR_MODE, .mode = mode };
	report(b, &ev);
}

static const struct pci_msix_backend backend = {
	.vector_update = be_vector_update,
	.vector_pending = be_vector_pending,
	.vector_signal = be_vector_signal,
	.mode_update = be_mode_update,
};

/* Driver thread, INTx mode: an event on a vector raises the device's INTx. */
static void intx_event(void *arg, uint64_t count)
{
	struct intx_watch *w = arg;
	pci_msix_notify(w->b->msix, w->v);
}

static void binding_free(struct vmm_drv_msix *b)
{
	struct vmm_drv_vm *d = b->hold->d;
	for (unsigned v = 0; v < b->nvec; v++)
		if (b->watches[v].id)
			vmm_drv_watch_remove(d, b->watches[v].id);
	for (unsigned v = 0; v < b->nvec; v++)
		vmm_drv_msi_route_free(b->routes[v]);
	free(b->routes);
	free(b->watches);
	free(b);
}

struct vmm_drv_msix *vmm_drv_msix_bind(struct vmm_hold *h, struct pci_msix *msix,
				       vmm_drv_intr_fn cb, void *arg, char *err, size_t errlen)
{
	struct vmm_drv_vm *d = h->d;
	struct vmm_drv_msix *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "vmm_drv: out of memory");
		return NULL;
	}
	b->hold = h;
	b->msix = msix;
	b->nvec = msix->nvec;
	b->cb = cb;
	b->arg = arg;
	b->routes = calloc(b->nvec, sizeof(*b->routes));
	b->watches = calloc(b->nvec, sizeof(*b->watches));
	if (!b->routes || !b->watches) {
		snprintf(err, errlen, "vmm_drv: out of memory");
		binding_free(b);
		return NULL;
	}
	for (unsigned v = 0; v < b->nvec; v++) {
		b->routes[v] = vmm_drv_msi_route(h, 0, 0, true, err, errlen);
		b->watches[v] = (struct intx_watch){ .b = b, .v = v };
		if (!b->routes[v] ||
		    vmm_drv_watch_add(d, h, b->routes[v]->efd, intx_event, &b->watches[v], false,
				      &b->watches[v].id, err, errlen)) {
			binding_free(b);
			return NULL;
		}
	}
	pthread_mutex_lock(&d->lock);
	b->next = h->bindings;
	h->bindings = b;
	pthread_mutex_unlock(&d->lock);
	pci_msix_set_backend(msix, &backend, b);   /* replays the current state */
	return b;
}

void vmm_drv_msix_unbind(struct vmm_drv_msix *b)
{
	if (!b)
		return;
	struct vmm_drv_vm *d = b->hold->d;
	pci_msix_set_backend(b->msix, NULL, NULL);   /* no backend call after this */
	pthread_mutex_lock(&d->lock);
	for (struct vmm_drv_msix **p = &b->hold->bindings; *p; p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			break;
		}
	pthread_mutex_unlock(&d->lock);
	binding_free(b);
}

int vmm_drv_msix_signal(struct vmm_drv_msix *b, unsigned v)
{
	if (v >= b->nvec)
		return -EINVAL;
	return signal_fd(b->routes[v]->efd);
}

int vmm_drv_msix_fd(struct vmm_drv_msix *b, unsigned v)
{
	return v < b->nvec ? b->routes[v]->efd : -1;
}

void vmm_drv_intr_release(struct vmm_hold *h)
{
	struct vmm_drv_vm *d = h->d;
	for (;;) {
		pthread_mutex_lock(&d->lock);
		struct vmm_drv_msix *b = h->bindings;
		pthread_mutex_unlock(&d->lock);
		if (!b)
			break;
		vmm_drv_msix_unbind(b);
	}
	/* The driver's own routes (bindings' routes are gone with them). */
	for (unsigned i = 0; i < VMM_DRV_MAX_ROUTES; i++) {
		struct vmm_msi_route *r = atomic_load(&h->routes[i]);
		if (r)
			vmm_drv_msi_route_free(r);
	}
}
