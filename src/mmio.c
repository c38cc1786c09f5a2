#include "mmio.h"

#include <stdio.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>

void mmio_bus_init(struct mmio_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	/*
	 * Reader-preferring: a handler may query the bus (mmio_claimed, e.g.
	 * hooking a doorbell from a register write) under its own dispatch's
	 * read lock even while a BAR move waits to write.
	 */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_READER_NP);
	pthread_rwlock_init(&bus->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

void mmio_bus_free(struct mmio_bus *bus)
{
	free(bus->regions);
	bus->regions = NULL;
	bus->n = bus->cap = 0;
	pthread_rwlock_destroy(&bus->lock);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Index of the first region ending after gpa (binary search). Under the lock. */
static size_t first_after(const struct mmio_bus *bus, uint64_t gpa)
{
	size_t lo = 0, hi = bus->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct mmio_region *r = &bus->regions[mid];
		if (r->gpa + r->len <= gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct mmio_region *find_overlap(const struct mmio_bus *bus, uint64_t gpa,
					      uint64_t len)
{
	size_t i = first_after(bus, gpa);
	if (i < bus->n && overlaps(gpa, len, bus->regions[i].gpa, bus->regions[i].len))
		return &bus->regions[i];
	return NULL;
}

static int insert_locked(struct mmio_bus *bus, const struct mmio_region *nr, char *err,
			 size_t errlen)
{
	if (nr->len == 0 || nr->gpa + nr->len < nr->gpa) {
		snprintf(err, errlen, "mmio: %s 0x%llx+0x%llx is empty or wraps", nr->name,
			 (unsigned long long)nr->gpa, (unsigned long long)nr->len);
		return -1;
	}
	const struct mmio_region *o = find_overlap(bus, nr->gpa, nr->len);
	if (o) {
		snprintf(err, errlen, "mmio: %s 0x%llx+0x%llx overlaps %s 0x%llx+0x%llx", nr->name,
			 (unsigned long long)nr->gpa, (unsigned long long)nr->len, o->name,
			 (unsigned long long)o->gpa, (unsigned long long)o->len);
		return -1;
	}
	if (bus->n == bus->cap) {
		size_t cap = bus->cap ? bus->cap * 2 : 8;
		struct mmio_region *r = realloc(bus->regions, cap * sizeof(*r));
		if (!r) {
			snprintf(err, errlen, "mmio: out of memory");
			return -1;
		}
		bus->regions = r;
		bus->cap = cap;
	}
	size_t pos = first_after(bus, nr->gpa);
	memmove(&bus->regions[pos + 1], &bus->regions[pos], (bus->n - pos) * sizeof(*nr));
	bus->regions[pos] = *nr;
	bus->n++;
	return 0;
}

static ssize_t index_of(const struct mmio_bus *bus, uint64_t gpa, void *opaque)
{
	for (size_t i = 0; i < bus->n; i++)
		if (bus->regions[i].gpa == gpa && bus->regions[i].opaque == opaque)
			return (ssize_t)i;
	return -1;
}

static void remove_at(struct mmio_bus *bus, size_t i)
{
	memmove(&bus->regions[i], &bus->regions[i + 1], (bus->n - i - 1) * sizeof(*bus->regions));
	bus->n--;
}

int mmio_register(struct mmio_bus *bus, uint64_t gpa, uint64_t len, const char *name,
		  mmio_handler_fn handler, void *opaque, char *err, size_t errlen)
{
	struct mmio_region nr = { gpa, len, name, handler, opaque };
	pthread_rwlock_wrlock(&bus->lock);
	int r = insert_locked(bus, &nr, err, errlen);
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

int mmio_unregister(struct mmio_bus *bus, uint64_t gpa, void *opaque)
{
	pthread_rwlock_wrlock(&bus->lock);
	ssize_t i = index_of(bus, gpa, opaque);
	if (i >= 0)
		remove_at(bus, (size_t)i);
	pthread_rwlock_unlock(&bus->lock);
	return i >= 0 ? 0 : -1;
}

int mmio_move(struct mmio_bus *bus, uint64_t old_gpa, void *opaque, uint64_t new_gpa,
	      char *err, size_t errlen)
{
	pthread_rwlock_wrlock(&bus->lock);
	int r = -1;
	ssize_t i = index_of(bus, old_gpa, opaque);
	if (i < 0) {
		snprintf(err, errlen, "mmio: no region at 0x%llx to move",
			 (unsigned long long)old_gpa);
	} else {
		struct mmio_region moved = bus->regions[i];
		remove_at(bus, (size_t)i);
		moved.gpa = new_gpa;
		r = insert_locked(bus, &moved, err, errlen);
		if (r) {
			/* Put it back where it was: that place is still free. */
			char ignore[8];
			moved.gpa = old_gpa;
			insert_locked(bus, &moved, ignore, sizeof(ignore));
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

void mmio_place(struct mmio_bus *bus, struct mmio_bar *bars, size_t n)
{
	char err[160];
	/* First every move that works in one step; the rest leave the bus... */
	for (size_t i = 0; i < n; i++) {
		struct mmio_bar *b = &bars[i];
		if (b->at == b->want || b->at == MMIO_NOWHERE)
			continue;
		if (b->want != MMIO_NOWHERE &&
		    mmio_move(bus, b->at, b->opaque, b->want, err, sizeof(err)) == 0) {
			b->at = b->want;
			continue;
		}
		mmio_unregister(bus, b->at, b->opaque);
		b->at = MMIO_NOWHERE;
	}
	/* ...so that none of them is in another's way when it comes back. */
	for (size_t i = 0; i < n; i++) {
		struct mmio_bar *b = &bars[i];
		if (b->at == MMIO_NOWHERE && b->want != MMIO_NOWHERE &&
		    mmio_register(bus, b->want, b->len, b->name, b->handler, b->opaque, err,
				  sizeof(err)) == 0)
			b->at = b->want;
	}
}

bool mmio_claimed(struct mmio_bus *bus, uint64_t gpa, uint64_t len)
{
	pthread_rwlock_rdlock(&bus->lock);
	bool c = find_overlap(bus, gpa, len) != NULL;
	pthread_rwlock_unlock(&bus->lock);
	return c;
}

void mmio_dispatch(struct mmio_bus *bus, uint64_t gpa, unsigned len, bool is_write,
		   uint8_t *data)
{
	bool sized = len == 1 || len == 2 || len == 4 || len == 8;
	pthread_rwlock_rdlock(&bus->lock);
	size_t i = first_after(bus, gpa);
	const struct mmio_region *r = i < bus->n ? &bus->regions[i] : NULL;
	if (sized && r && gpa >= r->gpa && gpa - r->gpa + len <= r->len) {
		uint64_t val = 0;
		if (is_write)
			memcpy(&val, data, len);
		r->handler(r->opaque, gpa - r->gpa, len, is_write, &val);
		if (!is_write)
			memcpy(data, &val, len);
		pthread_rwlock_unlock(&bus->lock);
		return;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (is_write) {
		atomic_fetch_add_explicit(&bus->unclaimed_writes, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&bus->unclaimed_reads, 1, memory_order_relaxed);
		memset(data, 0xff, len > 8 ? 8 : len);
	}
}
