/* registry: model snapshots, reference counted, swapped on reload (see
 * registry.h). */
#define _GNU_SOURCE	/* strverscmp */
#include "cache.h"
#include "registry.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A growing list of candidate file paths. */
struct paths {
	char	**p;
	size_t	  n, cap;
};

static void
paths_add(struct paths *ps, char *path)
{
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? 2 * ps->cap : 8;
		ps->p = xrealloc(ps->p, ps->cap * sizeof(char *));
	}
	ps->p[ps->n++] = path;
}

static void
paths_free(struct paths *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		free(ps->p[i]);
	free(ps->p);
}

static char *
registry_join(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
	char *p = xmalloc(n);

	snprintf(p, n, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
	return p;
}

static int
registry_visible(const char *name)
{
	return name[0] != '.';
}

static int
registry_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

/* Adds path if it resolves to a regular file inside root (a realpath). */
static void
registry_add_inside(struct paths *ps, const char *root, char *path)
{
	char real[PATH_MAX];
	size_t n = strlen(root);
	struct stat st;

	if (realpath(path, real) == NULL || strncmp(real, root, n) != 0 ||
	    real[n] != '/' || stat(real, &st) < 0 || !S_ISREG(st.st_mode)) {
		free(path);
		return;
	}
	paths_add(ps, path);
}

/* Lists DIR/NAME.json and DIR/NAME/VERSION/model.json, sorted. */
static void
registry_scan(const char *dir, struct paths *ps)
{
	char root[PATH_MAX];
	struct dirent *de, *ve;
	DIR *d, *vd;

	if (realpath(dir, root) == NULL || (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *sub;

		if (!registry_visible(de->d_name))
			continue;
		if (registry_ends_with(de->d_name, ".json")) {
			registry_add_inside(ps, root,
			    registry_join(dir, de->d_name, NULL));
			continue;
		}
		sub = registry_join(dir, de->d_name, NULL);
		if ((vd = opendir(sub)) != NULL) {
			while ((ve = readdir(vd)) != NULL)
				if (registry_visible(ve->d_name))
					registry_add_inside(ps, root,
					    registry_join(sub, ve->d_name,
					    "model.json"));
			closedir(vd);
		}
		free(sub);
	}
	closedir(d);
}

static int
registry_cmp_paths(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file of the sources: --model files first, then the directory's. */
static void
registry_list(const struct registry_source *src, struct paths *ps)
{
	size_t i, first;

	for (i = 0; i < src->n_files; i++)
		paths_add(ps, xstrdup(src->files[i]));
	first = ps->n;
	if (src->dir != NULL)
		registry_scan(src->dir, ps);
	qsort(ps->p + first, ps->n - first, sizeof(char *),
	    registry_cmp_paths);
}

static const struct registry_entry *
registry_old_entry(const struct registry *old, const char *path)
{
	size_t i;

	for (i = 0; old != NULL && i < old->n; i++)
		if (strcmp(old->entries[i].path, path) == 0)
			return &old->entries[i];
	return NULL;
}

static int
registry_same_file(const struct registry_entry *e, const struct stat *st)
{
	return e->dev == st->st_dev && e->ino == st->st_ino &&
	    e->size == st->st_size &&
	    e->mtime.tv_sec == st->st_mtim.tv_sec &&
	    e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Orders entries by name, then version (numeric-aware); failed entries
 * without a model last. */
static int
registry_cmp_entries(const void *a, const void *b)
{
	const struct registry_entry *x = a, *y = b;
	int c;

	if (x->model == NULL || y->model == NULL)
		return (x->model == NULL) - (y->model == NULL);
	if ((c = strcmp(x->model->name, y->model->name)) != 0)
		return c;
	return strverscmp(x->model->version, y->model->version);
}

static void
registry_free(struct registry *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->entries[i].path);
		model_free(r->entries[i].model);
		free(r->entries[i].error);
	}
	free(r->entries);
	free(r);
}

/* Loads (or reuses) the model of one file into e; a new model gets a
 * cache of cache_size entries. */
static void
registry_load_entry(struct registry_entry *e, const char *path,
    const struct registry_entry *prev, size_t cache_size)
{
	struct model_err merr;
	struct stat st;

	e->path = xstrdup(path);
	if (stat(path, &st) < 0) {
		snprintf(merr.msg, sizeof(merr.msg), "%s: cannot open: %s",
		    path, strerror(errno));
		e->error = xstrdup(merr.msg);
		e->model = prev && prev->model ? model_retain(prev->model) :
		    NULL;
		return;
	}
	if (prev != NULL && prev->model != NULL &&
	    registry_same_file(prev, &st)) {
		e->model = model_retain(prev->model);
		e->error = prev->error ? xstrdup(prev->error) : NULL;
		e->dev = prev->dev;
		e->ino = prev->ino;
		e->size = prev->size;
		e->mtime = prev->mtime;
		return;
	}
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->size = st.st_size;
	e->mtime = st.st_mtim;
	e->model = model_load_file(path, &merr);
	if (e->model != NULL && cache_size > 0)
		e->model->cache = cache_new(cache_size);
	if (e->model == NULL) {
		e->error = xstrdup(merr.msg);
		/* The old version keeps serving. */
		if (prev != NULL && prev->model != NULL)
			e->model = model_retain(prev->model);
	}
}

/* Picks what /predict serves: --default-model, else the first model of
 * the first --model file, else the first name in order. */
static int
registry_pick_default(struct registry *r, const struct registry_source *src,
    char *err, size_t errlen)
{
	const char *spec = src->default_model, *colon;
	size_t i;

	if (spec != NULL) {
		colon = strchr(spec, ':');
		r->dflt = registry_find(r, spec, colon ? (size_t)(colon - spec) :
		    strlen(spec), colon ? colon + 1 : NULL,
		    colon ? strlen(colon + 1) : 0);
		if (r->dflt == NULL)
			snprintf(err, errlen, "--default-model %s: no such "
			    "model", spec);
		return r->dflt ? 0 : -1;
	}
	for (i = 0; src->n_files > 0 && i < r->n; i++)
		if (r->entries[i].model != NULL &&
		    strcmp(r->entries[i].path, src->files[0]) == 0) {
			r->dflt = r->entries[i].model;
			return 0;
		}
	if (r->n > 0 && r->entries[0].model != NULL)
		r->dflt = registry_find(r, r->entries[0].model->name,
		    strlen(r->entries[0].model->name), NULL, 0);
	if (r->dflt == NULL)
		snprintf(err, errlen, "no model to serve");
	return r->dflt ? 0 : -1;
}

struct registry *
registry_build(const struct registry_source *src, const struct registry *old,
    char *err, size_t errlen)
{
	struct registry *r = xcalloc(1, sizeof(*r));
	struct paths ps = { 0 };
	size_t i;

	atomic_init(&r->refs, 1);
	r->generation = old ? old->generation + 1 : 1;
	r->loaded_at = time(NULL);
	registry_list(src, &ps);
	r->entries = xcalloc(ps.n + 1, sizeof(*r->entries));
	for (i = 0; i < ps.n; i++) {
		struct registry_entry *e = &r->entries[r->n++];

		registry_load_entry(e, ps.p[i], registry_old_entry(old,
		    ps.p[i]), src->cache_size);
		/* A reload empties the caches of the models it keeps. */
		if (e->model != NULL && e->model->cache != NULL && old != NULL)
			cache_clear(e->model->cache);
		if (e->error == NULL)
			continue;
		if (old == NULL) {
			snprintf(err, errlen, "%s", e->error);
			goto fail;
		}
		fprintf(stderr, "mlfcgi[%ld]: reload: %s%s\n", (long)getpid(),
		    e->error, e->model ? " (the previous version keeps "
		    "serving)" : "");
	}
	paths_free(&ps);
	qsort(r->entries, r->n, sizeof(*r->entries), registry_cmp_entries);
	for (i = 1; i < r->n; i++) {
		struct registry_entry *a = &r->entries[i - 1], *b = &r->entries[i];

		if (a->model == NULL || b->model == NULL ||
		    strcmp(a->model->name, b->model->name) != 0 ||
		    strcmp(a->model->version, b->model->version) != 0)
			continue;
		snprintf(err, errlen, "%s and %s: both are model %s version "
		    "%s", a->path, b->path, a->model->name, a->model->version);
		if (old == NULL)
			goto fail;
		/* On reload, the second file is not served. */
		fprintf(stderr, "mlfcgi[%ld]: reload: %s\n", (long)getpid(), err);
		model_free(b->model);
		b->model = NULL;
		free(b->error);
		b->error = xstrdup(err);
	}
	qsort(r->entries, r->n, sizeof(*r->entries), registry_cmp_entries);
	if (registry_pick_default(r, src, err, errlen) < 0) {
		registry_free(r);
		return NULL;
	}
	return r;
fail:
	paths_free(&ps);
	registry_free(r);
	return NULL;
}

int
registry_changed(const struct registry *r, const struct registry_source *src)
{
	struct paths ps = { 0 };
	size_t i;
	int changed = 0;

	registry_list(src, &ps);
	if (ps.n != r->n)
		changed = 1;
	for (i = 0; !changed && i < ps.n; i++) {
		const struct registry_entry *e = registry_old_entry(r, ps.p[i]);
		struct stat st;

		if (e == NULL || stat(ps.p[i], &st) < 0 ||
		    !registry_same_file(e, &st))
			changed = 1;
	}
	paths_free(&ps);
	return changed;
}

const struct model *
registry_find(const struct registry *r, const char *name, size_t len,
    const char *version, size_t vlen)
{
	const struct model *best = NULL;
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct model *m = r->entries[i].model;

		if (m == NULL || strlen(m->name) != len ||
		    memcmp(m->name, name, len) != 0)
			continue;
		if (version == NULL) {
			best = m;	/* entries are in version order */
			continue;
		}
		if (strlen(m->version) == vlen &&
		    memcmp(m->version, version, vlen) == 0)
			return m;
	}
	return best;
}

void
registry_holder_init(struct registry_holder *h, struct registry *r)
{
	pthread_mutex_init(&h->lock, NULL);
	h->current = r;
}

void
registry_holder_swap(struct registry_holder *h, struct registry *r)
{
	struct registry *old;

	pthread_mutex_lock(&h->lock);
	old = h->current;
	h->current = r;
	pthread_mutex_unlock(&h->lock);
	registry_release(old);
}

void
registry_holder_free(struct registry_holder *h)
{
	registry_release(h->current);
	h->current = NULL;
	pthread_mutex_destroy(&h->lock);
}

struct registry *
registry_acquire(struct registry_holder *h)
{
	struct registry *r;

	pthread_mutex_lock(&h->lock);
	r = h->current;
	atomic_fetch_add(&r->refs, 1);
	pthread_mutex_unlock(&h->lock);
	return r;
}

void
registry_release(struct registry *r)
{
	if (r != NULL && atomic_fetch_sub(&r->refs, 1) == 1)
		registry_free(r);
}
