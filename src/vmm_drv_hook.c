/*
 * vmm_drv: the driver thread, eventfd watches and I/O-port/MMIO hooks
 * (KVM_IOEVENTFD), those with a callback and those that signal an eventfd
 * of the caller's. Theory: section 3 of vmm_drv.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "mmio.h"
#include "vm.h"
#include "vmm_drv_impl.h"

#define WAKE_ID 0   /* the epoll tag of wakefd; watch ids start at 1 */
#define BATCH 16

static struct vmm_drv_watch *find(struct vmm_drv_vm *d, uint64_t id)
{
	for (size_t i = 0; i < d->nwatches; i++)
		if (d->watches[i]->id == id)
			return d->watches[i];
	return NULL;
}

static void *driver_thread(void *arg)
{
	struct vmm_drv_vm *d = arg;
	struct epoll_event ev[BATCH];
	/* Named from inside: naming another thread opens /proc (the sandbox says no). */
	prctl(PR_SET_NAME, "vmm-drv");
	for (;;) {
		int n = epoll_wait(d->epfd, ev, BATCH, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < n; i++) {
			pthread_mutex_lock(&d->lock);
			if (ev[i].data.u64 == WAKE_ID) {
				uint64_t junk;
				if (read(d->wakefd, &junk, sizeof(junk)) < 0) {
					/* EAGAIN: another wake already consumed it. */
				}
				bool stop = d->thread_stop;
				pthread_mutex_unlock(&d->lock);
				if (stop)
					return NULL;
				continue;
			}
			/*
			 * Found by id and read under the mutex: once unhook has
			 * removed a watch, nothing here can reach it any more.
			 */
			struct vmm_drv_watch *w = find(d, ev[i].data.u64);
			uint64_t count = 0;
			if (!w || !w->enabled || w->dying ||
			    read(w->fd, &count, sizeof(count)) != sizeof(count) || count == 0) {
				pthread_mutex_unlock(&d->lock);
				continue;
			}
			vmm_drv_hook_fn cb = w->cb;
			void *cb_arg = w->arg;
			bool is_hook = w->is_hook;
			d->running_id = w->id;
			pthread_mutex_unlock(&d->lock);

			cb(cb_arg, count);
			if (is_hook) {
				atomic_fetch_add_explicit(&d->hook_callbacks, 1, memory_order_relaxed);
				atomic_fetch_add_explicit(&d->hook_writes, count, memory_order_relaxed);
			}
			pthread_mutex_lock(&d->lock);
			d->running_id = 0;
			pthread_cond_broadcast(&d->cond);
			pthread_mutex_unlock(&d->lock);
		}
	}
	return NULL;
}

/* Under d->lock. */
static int thread_start(struct vmm_drv_vm *d, char *err, size_t errlen)
{
	if (d->thread_started)
		return 0;
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_ID };
	if (d->epfd < 0 || d->wakefd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wakefd, &ev) < 0)
		goto fail;
	/* No signals here: SIGINT & co. belong to vm_run's signalfd, kicks to vCPUs. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&d->thread, NULL, driver_thread, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		errno = r;
		goto fail;
	}
	d->thread_started = true;
	return 0;
fail:
	snprintf(err, errlen, "vmm_drv: starting the driver thread: %s", strerror(errno));
	int e = -errno;
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->wakefd >= 0)
		close(d->wakefd);
	d->epfd = d->wakefd = -1;
	return e;
}

void vmm_drv_thread_stop(struct vmm_drv_vm *d)
{
	pthread_mutex_lock(&d->lock);
	bool started = d->thread_started;
	d->thread_stop = true;
	pthread_mutex_unlock(&d->lock);
	if (started) {
		uint64_t one = 1;
		if (write(d->wakefd, &one, sizeof(one)) < 0) {
			/* Cannot fail on an eventfd far from its limit. */
		}
		pthread_join(d->thread, NULL);
	}
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->wakefd >= 0)
		close(d->wakefd);
	d->epfd = d->wakefd = -1;
	d->thread_started = false;
}

/* Under d->lock: put w in the table (not yet in the epoll set). */
static int table_add(struct vmm_drv_vm *d, struct vmm_drv_watch *w, char *err, size_t errlen)
{
	if (d->nwatches == d->capwatches) {
		size_t cap = d->capwatches ? d->capwatches * 2 : 8;
		struct vmm_drv_watch **nw = realloc(d->watches, cap * sizeof(*nw));
		if (!nw) {
			snprintf(err, errlen, "vmm_drv: out of memory");
			return -ENOMEM;
		}
		d->watches = nw;
		d->capwatches = cap;
	}
	w->id = d->next_id++;
	d->watches[d->nwatches++] = w;
	return 0;
}

/* Under d->lock. */
static void table_del(struct vmm_drv_vm *d, struct vmm_drv_watch *w)
{
	for (size_t i = 0; i < d->nwatches; i++)
		if (d->watches[i] == w) {
			d->watches[i] = d->watches[--d->nwatches];
			break;
		}
}

/* Under d->lock: in or out of the epoll set. */
static void set_enabled(struct vmm_drv_vm *d, struct vmm_drv_watch *w, bool enabled)
{
	if (w->enabled == enabled)
		return;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = w->id };
	if (enabled)
		epoll_ctl(d->epfd, EPOLL_CTL_ADD, w->fd, &ev);
	else
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->enabled = enabled;
}

/* Under d->lock: leave the table, then wait out a running callback. */
static void remove_sync(struct vmm_drv_vm *d, struct vmm_drv_watch *w)
{
	set_enabled(d, w, false);
	table_del(d, w);
	while (d->running_id == w->id && !pthread_equal(d->thread, pthread_self()))
		pthread_cond_wait(&d->cond, &d->lock);
}

int vmm_drv_watch_add(struct vmm_drv_vm *d, struct vmm_hold *h, int fd, vmm_drv_hook_fn cb,
		      void *arg, bool enabled, uint64_t *id, char *err, size_t errlen)
{
	struct vmm_drv_watch *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "vmm_drv: out of memory");
		return -ENOMEM;
	}
	w->fd = fd;
	w->cb = cb;
	w->arg = arg;
	w->hold = h;
	pthread_mutex_lock(&d->lock);
	int r = thread_start(d, err, errlen);
	if (r == 0)
		r = table_add(d, w, err, errlen);
	if (r == 0) {
		set_enabled(d, w, enabled);
		*id = w->id;
	}
	pthread_mutex_unlock(&d->lock);
	if (r)
		free(w);
	return r;
}

void vmm_drv_watch_enable(struct vmm_drv_vm *d, uint64_t id, bool enabled)
{
	pthread_mutex_lock(&d->lock);
	struct vmm_drv_watch *w = find(d, id);
	if (w)
		set_enabled(d, w, enabled);
	pthread_mutex_unlock(&d->lock);
}

void vmm_drv_watch_remove(struct vmm_drv_vm *d, uint64_t id)
{
	pthread_mutex_lock(&d->lock);
	struct vmm_drv_watch *w = find(d, id);
	if (w)
		remove_sync(d, w);
	pthread_mutex_unlock(&d->lock);
	free(w);
}

/* ---- Hooks ---- */

/* Ports KVM's in-kernel PIC, ELCR, PIT and speaker answer: never seen in userspace. */
static const struct { uint16_t base, len; const char *what; } kvm_ports[] = {
	{ 0x20, 2, "KVM's in-kernel PIC" },
	{ 0xa0, 2, "KVM's in-kernel PIC" },
	{ 0x4d0, 2, "KVM's in-kernel ELCR" },
	{ 0x40, 4, "KVM's in-kernel PIT" },
	{ 0x61, 1, "KVM's in-kernel PIT (speaker)" },
};
#define LAPIC_GPA 0xfee00000ULL
#define LAPIC_LEN 0x1000ULL
#define IOAPIC_GPA 0xfec00000ULL
#define IOAPIC_LEN 0x100ULL

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* The span a hook's writes can touch; size 0 (any) is treated as up to 8 bytes. */
static uint64_t span(unsigned size)
{
	return size ? size : 8;
}

/* Is [addr, addr+len) claimed by a device model or KVM? Fills why. */
static bool claimed(struct vm *vm, bool pio, uint64_t addr, uint64_t len, char *why,
		    size_t whylen)
{
	if (pio) {
		/* The I/O-port bus is fixed once the machine is assembled: no lock. */
		for (size_t i = 0; i < vm->io.n; i++) {
			const struct ioport_range *r = &vm->io.ranges[i];
			if (ranges_overlap(addr, len, r->base, r->len)) {
				snprintf(why, whylen, "claimed by %s", r->name);
				return true;
			}
		}
		for (size_t i = 0; i < sizeof(kvm_ports) / sizeof(kvm_ports[0]); i++)
			if (ranges_overlap(addr, len, kvm_ports[i].base, kvm_ports[i].len)) {
				snprintf(why, whylen, "answered by %s", kvm_ports[i].what);
				return true;
			}
		return false;
	}
	if (ranges_overlap(addr, len, LAPIC_GPA, LAPIC_LEN) ||
	    ranges_overlap(addr, len, IOAPIC_GPA, IOAPIC_LEN)) {
		snprintf(why, whylen, "answered by KVM's in-kernel LAPIC/IOAPIC");
		return true;
	}
	if (mmio_claimed(&vm->mmio, addr, len)) {
		snprintf(why, whylen, "claimed by a device's MMIO region");
		return true;
	}
	return false;
}

/* Under d->lock: does a new hook collide with an existing one? */
static bool collides(struct vmm_drv_vm *d, const struct vmm_drv_watch *n)
{
	for (size_t i = 0; i < d->nwatches; i++) {
		const struct vmm_drv_watch *w = d->watches[i];
		if (!w->is_hook || w->pio != n->pio ||
		    !ranges_overlap(w->addr, span(w->size), n->addr, span(n->size)))
			continue;
		/* KVM's rule: same address and size, both matching, different values. */
		bool coexist = w->addr == n->addr && w->size == n->size && w->match && n->match &&
			       w->value != n->value;
		if (!coexist)
			return true;
	}
	return false;
}

static int ioeventfd(struct vm *vm, const struct vmm_drv_watch *w, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = w->match ? w->value : 0,
		.addr = w->addr,
		.len = w->size,
		.fd = w->fd,
		.flags = (w->pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (w->match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

/*
 * A hook with efd >= 0 is an eventfd hook: w->fd is a dup of the caller's
 * eventfd and there is no callback (cb NULL is how the rest of this file
 * tells the two kinds apart; a callback hook must have one).
 */
static int hook(struct vmm_hold *h, bool pio, uint64_t addr, unsigned size, bool match,
		uint64_t value, vmm_drv_hook_fn cb, void *arg, int efd, struct vmm_hook **cookie,
		char *err, size_t errlen)
{
	struct vmm_drv_vm *d = h->d;
	struct vm *vm = d->vm;
	const char *kind = pio ? "port" : "MMIO address";
	*cookie = NULL;
	bool size_ok = pio ? (size == 1 || size == 2 || size == 4)
			   : (size == 0 || size == 1 || size == 2 || size == 4 || size == 8);
	bool has_consumer = efd >= 0 ? cb == NULL : cb != NULL;
	if (!size_ok || !has_consumer || (pio && addr + size > 0x10000) ||
	    addr + span(size) < addr || (match && size == 0)) {
		snprintf(err, errlen, "vmm_drv: hook of %s 0x%llx size %u: invalid", kind,
			 (unsigned long long)addr, size);
		return -EINVAL;
	}
	char why[96];
	if (claimed(vm, pio, addr, span(size), why, sizeof(why))) {
		snprintf(err, errlen, "vmm_drv: %s 0x%llx is %s", kind, (unsigned long long)addr, why);
		return -EBUSY;
	}
	struct vmm_drv_watch *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "vmm_drv: out of memory");
		return -ENOMEM;
	}
	*w = (struct vmm_drv_watch){ .cb = cb, .arg = arg, .hold = h, .is_hook = true,
				     .pio = pio, .match = match, .addr = addr, .value = value,
				     .size = size, .fd = -1 };
	/*
	 * Our own fd either way, closed by unhook. For an eventfd hook a dup:
	 * KVM finds the ioeventfd to deassign by its eventfd, so the fd we
	 * deassign with must outlive the hook whatever the caller does with
	 * its own.
	 */
	w->fd = efd >= 0 ? fcntl(efd, F_DUPFD_CLOEXEC, 0) : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->fd < 0) {
		int e = -errno;
		if (efd >= 0)
			snprintf(err, errlen, "vmm_drv: hook of %s 0x%llx: fd %d: %s", kind,
				 (unsigned long long)addr, efd, strerror(errno));
		else
			snprintf(err, errlen, "vmm_drv: eventfd: %s", strerror(errno));
		free(w);
		return e;
	}
	/* Reserve the range in the table (so it collides), assign outside the mutex. */
	pthread_mutex_lock(&d->lock);
	int r = 0;
	if (atomic_load(&h->release_reqd)) {
		snprintf(err, errlen, "vmm_drv: the VM is being destroyed");
		r = -ESHUTDOWN;
	} else if (collides(d, w)) {
		snprintf(err, errlen, "vmm_drv: %s 0x%llx is already hooked", kind,
			 (unsigned long long)addr);
		r = -EBUSY;
	} else if ((r = thread_start(d, err, errlen)) == 0) {
		r = table_add(d, w, err, errlen);
	}
	pthread_mutex_unlock(&d->lock);
	if (r) {
		close(w->fd);
		free(w);
		return r;
	}
	r = ioeventfd(vm, w, true);
	pthread_mutex_lock(&d->lock);
	if (r) {
		table_del(d, w);
		snprintf(err, errlen, "vmm_drv: KVM_IOEVENTFD for %s 0x%llx: %s%s", kind,
			 (unsigned long long)addr, strerror(-r),
			 efd >= 0 && r == -EINVAL ? " (is it an eventfd?)" : "");
	} else {
		w->armed = true;
		/* An eventfd hook's doorbells are for the caller's consumer, not this thread. */
		if (cb)
			set_enabled(d, w, true);
	}
	pthread_mutex_unlock(&d->lock);
	if (r) {
		close(w->fd);
		free(w);
		return r;
	}
	*cookie = (struct vmm_hook *)w;
	return 0;
}

int vmm_drv_ioport_hook(struct vmm_hold *h, uint16_t port, unsigned size, vmm_drv_hook_fn cb,
			void *arg, struct vmm_hook **cookie, char *err, size_t errlen)
{
	return hook(h, true, port, size, false, 0, cb, arg, -1, cookie, err, errlen);
}

int vmm_drv_ioport_hook_match(struct vmm_hold *h, uint16_t port, unsigned size,
			      uint64_t value, vmm_drv_hook_fn cb, void *arg,
			      struct vmm_hook **cookie, char *err, size_t errlen)
{
	return hook(h, true, port, size, true, value, cb, arg, -1, cookie, err, errlen);
}

int vmm_drv_mmio_hook(struct vmm_hold *h, uint64_t gpa, unsigned size, vmm_drv_hook_fn cb,
		      void *arg, struct vmm_hook **cookie, char *err, size_t errlen)
{
	return hook(h, false, gpa, size, false, 0, cb, arg, -1, cookie, err, errlen);
}

int vmm_drv_ioport_hook_eventfd(struct vmm_hold *h, uint16_t port, unsigned size, int efd,
				struct vmm_hook **cookie, char *err, size_t errlen)
{
	if (efd < 0) {
		*cookie = NULL;
		snprintf(err, errlen, "vmm_drv: hook of port 0x%x: no eventfd (fd %d)", port, efd);
		return -EBADF;
	}
	return hook(h, true, port, size, false, 0, NULL, NULL, efd, cookie, err, errlen);
}

int vmm_drv_mmio_hook_eventfd(struct vmm_hold *h, uint64_t gpa, unsigned size, int efd,
			      struct vmm_hook **cookie, char *err, size_t errlen)
{
	if (efd < 0) {
		*cookie = NULL;
		snprintf(err, errlen, "vmm_drv: hook of MMIO address 0x%llx: no eventfd (fd %d)",
			 (unsigned long long)gpa, efd);
		return -EBADF;
	}
	return hook(h, false, gpa, size, false, 0, NULL, NULL, efd, cookie, err, errlen);
}

static void unhook(struct vmm_hold *h, struct vmm_hook **cookie)
{
	struct vmm_drv_vm *d = h->d;
	struct vmm_drv_watch *w = (struct vmm_drv_watch *)*cookie;
	if (!w)
		return;
	*cookie = NULL;
	pthread_mutex_lock(&d->lock);
	w->dying = true;   /* no callback starts from here on */
	pthread_mutex_unlock(&d->lock);
	/* 1: from now on writes exit to userspace (KVM waits for in-flight ones). */
	if (w->armed)
		ioeventfd(d->vm, w, false);
	/* 2 and 3: out of the table, and any running callback finished. */
	pthread_mutex_lock(&d->lock);
	remove_sync(d, w);
	pthread_mutex_unlock(&d->lock);
	/*
	 * Ours: with whatever writes were still counted in it -- or, for an
	 * eventfd hook, our dup: the caller's eventfd and its count live on.
	 */
	close(w->fd);
	free(w);
}

void vmm_drv_ioport_unhook(struct vmm_hold *h, struct vmm_hook **cookie)
{
	unhook(h, cookie);
}

void vmm_drv_mmio_unhook(struct vmm_hold *h, struct vmm_hook **cookie)
{
	unhook(h, cookie);
}

void vmm_drv_hooks_release(struct vmm_hold *h)
{
	struct vmm_drv_vm *d = h->d;
	for (;;) {
		struct vmm_drv_watch *w = NULL;
		pthread_mutex_lock(&d->lock);
		for (size_t i = 0; i < d->nwatches && !w; i++)
			if (d->watches[i]->hold == h && d->watches[i]->is_hook && !d->watches[i]->dying)
				w = d->watches[i];
		pthread_mutex_unlock(&d->lock);
		if (!w)
			break;
		struct vmm_hook *c = (struct vmm_hook *)w;
		unhook(h, &c);
	}
}
