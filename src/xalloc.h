/* xalloc: the project's one allocation policy.
 *
 * Memory exhaustion is not a condition mlfcgi tries to survive: every
 * allocation goes through these wrappers, which print a message naming the
 * size and abort() on failure. Callers therefore never check for NULL.
 * They are thread-safe (they only call the C library). */
#ifndef MLFCGI_XALLOC_H
#define MLFCGI_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Copies exactly n bytes of s (which must hold that many) and adds a NUL:
 * unlike strndup(), it does not stop at a NUL in s. */
char *xstrndup(const char *s, size_t n);

#endif
