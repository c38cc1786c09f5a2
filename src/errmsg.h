/*
 * Every fallible khyve function reports failure the same way: it returns -1
 * and leaves a one-line, human-readable reason in a caller-supplied buffer
 * (err, errlen), naming what was wrong. fail_with() is that idiom.
 */
#ifndef KHYVE_ERRMSG_H
#define KHYVE_ERRMSG_H

#include <stddef.h>

/* Format the reason into err (truncated to errlen) and return -1. */
int fail_with(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
