/*
 * Memory sizes as bhyve(8) -m takes them: a number with an optional K, M, G
 * or T suffix (either case, optionally followed by 'B'/'iB'); a bare number
 * is megabytes, as in bhyve. Overflow, junk and zero are errors.
 */
#ifndef KHYVE_SIZE_H
#define KHYVE_SIZE_H

#include <stddef.h>
#include <stdint.h>

int size_parse(const char *s, uint64_t *bytes, char *err, size_t errlen);

#endif
