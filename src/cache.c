/* cache: LRU prediction cache (see cache.h). */
#include "cache.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct centry {
	struct centry	*prev, *next;	/* LRU list, most recent first */
	struct centry	*chain;		/* hash bucket */
	uint64_t	 hash;
	size_t		 klen, olen, nres;
	/* key bytes, then res doubles, then output bytes */
	unsigned char	 data[];
};

struct cache {
	pthread_mutex_t	  lock;		/* guards everything below */
	struct centry	**buckets;
	size_t		  nbuckets;	/* a power of two >= 2 * capacity */
	size_t		  capacity, count;
	struct centry	  head;		/* sentinel of the LRU list */
	uint64_t	  hits, misses;
};

static uint64_t
cache_hash(const void *key, size_t n)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603u;	/* FNV-1a, 64 bit */
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211u;
	return h;
}

struct cache *
cache_new(size_t capacity)
{
	struct cache *c = xcalloc(1, sizeof(*c));

	c->capacity = capacity;
	c->nbuckets = 16;
	while (c->nbuckets < 2 * capacity)
		c->nbuckets *= 2;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	c->head.prev = c->head.next = &c->head;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void
cache_unlink(struct cache *c, struct centry *e)
{
	struct centry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	e->prev->next = e->next;
	e->next->prev = e->prev;
	c->count--;
}

static void
cache_front(struct cache *c, struct centry *e)
{
	e->next = c->head.next;
	e->prev = &c->head;
	c->head.next->prev = e;
	c->head.next = e;
}

void
cache_clear(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	while (c->head.next != &c->head) {
		struct centry *e = c->head.next;

		cache_unlink(c, e);
		free(e);
	}
	pthread_mutex_unlock(&c->lock);
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	cache_clear(c);
	pthread_mutex_destroy(&c->lock);
	free(c->buckets);
	free(c);
}

static struct centry *
cache_find(struct cache *c, const void *key, size_t klen, uint64_t h)
{
	struct centry *e = c->buckets[h & (c->nbuckets - 1)];

	for (; e != NULL; e = e->chain)
		if (e->hash == h && e->klen == klen &&
		    memcmp(e->data, key, klen) == 0)
			return e;
	return NULL;
}

int
cache_get(struct cache *c, const void *key, size_t klen, struct buf *out,
    double *res, size_t nres)
{
	uint64_t h = cache_hash(key, klen);
	struct centry *e;

	pthread_mutex_lock(&c->lock);
	e = cache_find(c, key, klen, h);
	if (e == NULL || e->nres != nres) {
		c->misses++;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	c->hits++;
	e->prev->next = e->next;
	e->next->prev = e->prev;
	cache_front(c, e);
	memcpy(res, e->data + e->klen, nres * sizeof(double));
	buf_append(out, e->data + e->klen + nres * sizeof(double), e->olen);
	pthread_mutex_unlock(&c->lock);
	return 1;
}

void
cache_put(struct cache *c, const void *key, size_t klen, const char *output,
    size_t olen, const double *res, size_t nres)
{
	uint64_t h = cache_hash(key, klen);
	struct centry *e = xmalloc(sizeof(*e) + klen + nres * sizeof(double) +
	    olen);
	struct centry *old;

	e->hash = h;
	e->klen = klen;
	e->olen = olen;
	e->nres = nres;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, res, nres * sizeof(double));
	memcpy(e->data + klen + nres * sizeof(double), output, olen);

	pthread_mutex_lock(&c->lock);
	if ((old = cache_find(c, key, klen, h)) != NULL) {
		cache_unlink(c, old);
		free(old);
	}
	if (c->count == c->capacity) {
		struct centry *lru = c->head.prev;

		cache_unlink(c, lru);
		free(lru);
	}
	e->chain = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	cache_front(c, e);
	c->count++;
	pthread_mutex_unlock(&c->lock);
}

void
cache_counts(struct cache *c, uint64_t *hits, uint64_t *misses,
    size_t *entries)
{
	pthread_mutex_lock(&c->lock);
	*hits = c->hits;
	*misses = c->misses;
	*entries = c->count;
	pthread_mutex_unlock(&c->lock);
}
