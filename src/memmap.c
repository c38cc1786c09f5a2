#include "memmap.h"

void *memmap_translate(const struct memmap *map, uint64_t gpa, uint64_t len)
{
	for (size_t i = 0; i < map->nsegs; i++) {
		const struct mem_segment *s = &map->segs[i];
		if (gpa < s->gpa)
			continue;
		uint64_t off = gpa - s->gpa;
		/* off < len and len - off >= len: no overflow possible. */
		if (off < s->len && len <= s->len - off)
			return s->hva + off;
	}
	return NULL;
}

uint64_t memmap_ram_top(const struct memmap *map)
{
	uint64_t top = 0;
	for (size_t i = 0; i < map->nsegs; i++)
		if (map->segs[i].gpa + map->segs[i].len > top)
			top = map->segs[i].gpa + map->segs[i].len;
	return top;
}
