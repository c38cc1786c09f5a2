#include "size.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

int size_parse(const char *s, uint64_t *bytes, char *err, size_t errlen)
{
	if (!s || !isdigit((unsigned char)*s)) {
		snprintf(err, errlen, "size '%s' must start with a number", s ? s : "");
		return -1;
	}
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno) {
		snprintf(err, errlen, "size '%s' is too large", s);
		return -1;
	}
	unsigned shift;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': case '\0': shift = 20; if (*end) end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default:
		snprintf(err, errlen, "size '%s' has an unknown suffix (K, M, G or T)", s);
		return -1;
	}
	if (*end && strcasecmp(end, "b") != 0 && strcasecmp(end, "ib") != 0) {
		snprintf(err, errlen, "size '%s' has trailing junk '%s'", s, end);
		return -1;
	}
	if (v == 0) {
		snprintf(err, errlen, "size '%s' must not be zero", s);
		return -1;
	}
	if (v > (UINT64_MAX >> shift)) {
		snprintf(err, errlen, "size '%s' is too large", s);
		return -1;
	}
	*bytes = (uint64_t)v << shift;
	return 0;
}
