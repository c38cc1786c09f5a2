#include "ioport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ioport_bus_init(struct ioport_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
}

void ioport_bus_free(struct ioport_bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->n = bus->cap = 0;
}

int ioport_register(struct ioport_bus *bus, uint16_t base, uint32_t len, const char *name,
		    ioport_handler_fn handler, void *opaque, char *err, size_t errlen)
{
	if (len == 0 || (uint32_t)base + len > 0x10000) {
		snprintf(err, errlen, "ioport: %s range 0x%x+%u is outside the port space",
			 name, base, len);
		return -1;
	}
	size_t pos = 0;
	while (pos < bus->n && bus->ranges[pos].base < base)
		pos++;
	const struct ioport_range *prev = pos ? &bus->ranges[pos - 1] : NULL;
	const struct ioport_range *next = pos < bus->n ? &bus->ranges[pos] : NULL;
	if ((prev && (uint32_t)prev->base + prev->len > base) ||
	    (next && (uint32_t)base + len > next->base)) {
		const struct ioport_range *o = (prev && (uint32_t)prev->base + prev->len > base)
						       ? prev : next;
		snprintf(err, errlen, "ioport: %s 0x%x+%u overlaps %s 0x%x+%u", name, base, len,
			 o->name, o->base, o->len);
		return -1;
	}
	if (bus->n == bus->cap) {
		size_t cap = bus->cap ? bus->cap * 2 : 16;
		struct ioport_range *r = realloc(bus->ranges, cap * sizeof(*r));
		if (!r) {
			snprintf(err, errlen, "ioport: out of memory");
			return -1;
		}
		bus->ranges = r;
		bus->cap = cap;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->n - pos) * sizeof(*bus->ranges));
	bus->ranges[pos] = (struct ioport_range){ base, len, name, handler, opaque };
	bus->n++;
	return 0;
}

void ioport_dispatch(struct ioport_bus *bus, uint16_t port, unsigned size, bool is_write,
		     uint32_t *val)
{
	size_t lo = 0, hi = bus->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct ioport_range *r = &bus->ranges[mid];
		if (port < r->base)
			hi = mid;
		else if (port >= r->base + r->len)
			lo = mid + 1;
		else {
			r->handler(r->opaque, port, size, is_write, val);
			return;
		}
	}
	if (is_write) {
		atomic_fetch_add_explicit(&bus->unclaimed_writes, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&bus->unclaimed_reads, 1, memory_order_relaxed);
		*val = size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffff;
	}
}
