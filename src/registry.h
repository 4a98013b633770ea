/* registry: the loaded models, by name and version, as immutable snapshots.
 *
 * A snapshot (struct registry) is built once from the configured sources
 * (--model files and --model-dir) and never changes. Request threads take
 * the current snapshot with registry_acquire() and give it back with
 * registry_release(); a reload builds a new snapshot and swaps it in, so
 * requests in flight finish on the models they started with and nothing
 * pauses. Models are reference counted and shared between snapshots: an
 * unchanged file is not loaded again, and a file that fails to reload
 * keeps serving its previous model.
 *
 * Names and versions come from inside the model files; requests only ever
 * look them up, never turn them into paths. Files found in --model-dir must
 * resolve (after symbolic links) to a path inside that directory.
 *
 * Thread-safety: the holder's mutex guards only the swap and the reference
 * count increment; snapshots themselves are read-only. */
#ifndef MLFCGI_REGISTRY_H
#define MLFCGI_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "model.h"

/* Where models come from. */
struct registry_source {
	const char	**files;	/* --model, in the order given */
	size_t		  n_files;
	const char	 *dir;		/* --model-dir, or NULL */
	const char	 *default_model; /* "NAME" or "NAME:VERSION", or NULL */
	size_t		  cache_size;	/* entries per model cache; 0: off */
};

/* One model file and what came of loading it. */
struct registry_entry {
	char		*path;
	struct model	*model;		/* served; NULL if it never loaded */
	char		*error;		/* why it last failed, or NULL */
	dev_t		 dev;		/* the file as last read */
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
};

struct registry {
	atomic_long		 refs;
	struct registry_entry	*entries;	/* sorted by name, version */
	size_t			 n;
	const struct model	*dflt;		/* what /predict serves */
	unsigned long		 generation;	/* 1, 2, ... per reload */
	time_t			 loaded_at;
};

struct registry_holder {
	pthread_mutex_t	 lock;
	struct registry	*current;
};

/* Builds a snapshot. With old == NULL (start-up) any file that fails to
 * load, or a duplicate name and version, is an error: returns NULL with
 * the reason in err. With an old snapshot (reload), failures are recorded
 * in the entries and reported on stderr, and a failed file keeps its old
 * model; it returns NULL only if no model at all can be served. */
struct registry *registry_build(const struct registry_source *src,
	    const struct registry *old, char *err, size_t errlen);
/* Returns 1 if a file of the sources changed since r was built (a file
 * added, removed, or modified), else 0. For reload by polling. */
int	registry_changed(const struct registry *r,
	    const struct registry_source *src);

void	registry_holder_init(struct registry_holder *h, struct registry *r);
/* Swaps in r; the old snapshot is freed when its last user releases it. */
void	registry_holder_swap(struct registry_holder *h, struct registry *r);
void	registry_holder_free(struct registry_holder *h);
/* The current snapshot, which stays valid until registry_release(). */
struct registry *registry_acquire(struct registry_holder *h);
void	registry_release(struct registry *r);

/* The model named name (len bytes) at version (vlen bytes), or its latest
 * version when version is NULL; NULL if there is none. */
const struct model *registry_find(const struct registry *r, const char *name,
	    size_t len, const char *version, size_t vlen);

#endif
