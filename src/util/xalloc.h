/*
 * Allocation that cannot fail: sizes from the wire are bounded before they
 * reach an allocator, so running out of memory here is fatal (logged, abort),
 * as in Redis.  Call sites therefore never check for NULL.
 */
#ifndef WARREN_UTIL_XALLOC_H
#define WARREN_UTIL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
void *xmemdup(const void *p, size_t n);

#endif
