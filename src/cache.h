/* cache: a per-model LRU cache of predictions, keyed by the validated
 * feature row (its bytes), holding the instance's output JSON and its
 * numbers. Thread-safe: one mutex per cache, held only to look up, link
 * and unlink. A cache belongs to one model and dies with it. */
#ifndef MLFCGI_CACHE_H
#define MLFCGI_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct cache;

/* A cache of at most capacity entries (capacity > 0). */
struct cache *cache_new(size_t capacity);
void	cache_free(struct cache *c);
/* On a hit, appends the stored output to out, copies nres numbers into
 * res and returns 1; returns 0 on a miss. Counts hits and misses. */
int	cache_get(struct cache *c, const void *key, size_t klen,
	    struct buf *out, double *res, size_t nres);
/* Stores a copy of (key, output, res), evicting the least recently used
 * entry when full. */
void	cache_put(struct cache *c, const void *key, size_t klen,
	    const char *output, size_t olen, const double *res, size_t nres);
/* Empties the cache (on reload). */
void	cache_clear(struct cache *c);
void	cache_counts(struct cache *c, uint64_t *hits, uint64_t *misses,
	    size_t *entries);

#endif
