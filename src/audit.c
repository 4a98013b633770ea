/* audit: bounded queue and deferred SQLite writer thread (see audit.h). */
#include "audit.h"
#include "request.h"
#include "xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Busy timeout for each statement when another process holds the lock. */
#define AUDIT_BUSY_MS 5000
/* Longest wait between retries of a failed commit. */
#define AUDIT_BACKOFF_MAX_MS 1000

struct audit {
	pthread_mutex_t	  lock;		/* guards everything below it */
	pthread_cond_t	  nonempty;	/* signalled on enqueue and close */
	struct audit_row **ring;	/* capacity slots */
	size_t		  capacity;
	size_t		  head;		/* oldest queued row */
	size_t		  count;
	int		  closing;
	int		  healthy;	/* last commit succeeded */
	pthread_cond_t	  committed;	/* broadcast after each commit */
	unsigned long long next_ticket;	/* the last ticket handed out */
	unsigned long long done_ticket;	/* every ticket <= it is committed */
	unsigned	  retain_days;
	int		  durable;
	char		  last_error[128];
	struct audit_stats stats;

	/* Writer thread only: */
	pthread_t	  thread;
	sqlite3		 *db;
	sqlite3_stmt	 *insert;
	long		  pid;
	int64_t		  pruned_at;	/* monotonic ms of the last prune */
};

static int64_t
audit_now_ms(void)
{
	return (int64_t)(request_now_ns() / 1000000);
}

static void
audit_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		continue;
}

/* Formats ms since the epoch as 2026-11-29T23:59:59.123Z. */
static void
audit_format_ts(int64_t ms, char out[64])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Applies the schema to a new database; checks the version of an old one.
 * Runs in one IMMEDIATE transaction so that processes starting together
 * apply it once. */
static int
audit_apply_schema(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int version = -1, rc;
	char *msg = NULL;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version < 0) {
		snprintf(err, errlen, "cannot read the schema version: %s",
		    sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (version > AUDIT_SCHEMA_VERSION) {
		snprintf(err, errlen, "schema version %d is newer than this "
		    "mlfcgi's (%d)", version, AUDIT_SCHEMA_VERSION);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (version == 0 &&
	    sqlite3_exec(db, audit_schema_sql, NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		return 0;
fail:
	snprintf(err, errlen, "cannot apply the schema: %s",
	    msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
audit_open_db(struct audit *a, const char *path, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, a->db ?
		    sqlite3_errmsg(a->db) : "cannot open");
		return -1;
	}
	sqlite3_busy_timeout(a->db, AUDIT_BUSY_MS);
	if (sqlite3_exec(a->db, "PRAGMA journal_mode=WAL; "
	    "PRAGMA synchronous=NORMAL", NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, msg ? msg :
		    sqlite3_errmsg(a->db));
		sqlite3_free(msg);
		return -1;
	}
	if (audit_apply_schema(a->db, err, errlen) < 0)
		return -1;
	if (sqlite3_prepare_v2(a->db, "INSERT INTO predictions (ts, "
	    "request_id, model, version, input, output, latency_us, cached, "
	    "pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &a->insert,
	    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(a->db));
		return -1;
	}
	return 0;
}

/* Writes rows[0..n) in one transaction. Returns 0 once committed; -1 with
 * the transaction rolled back and the reason in a->last_error (under no
 * lock: the caller copies it). Writer thread only. */
static int
audit_write_batch(struct audit *a, struct audit_row **rows, size_t n,
    char *why, size_t whylen)
{
	sqlite3_stmt *st = a->insert;
	char ts[64];
	size_t i;

	if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		goto fail;
	for (i = 0; i < n; i++) {
		const struct audit_row *r = rows[i];

		audit_format_ts(r->ts_ms, ts);
		sqlite3_bind_text(st, 1, ts, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, r->request_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->model, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r->version, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, r->input, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, r->output, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, r->latency_us);
		sqlite3_bind_int(st, 8, r->cached);
		sqlite3_bind_int64(st, 9, a->pid);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			goto fail;
		}
		sqlite3_reset(st);
	}
	if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
		sqlite3_clear_bindings(st);
		return 0;
	}
fail:
	snprintf(why, whylen, "audit log: %s", sqlite3_errmsg(a->db));
	sqlite3_clear_bindings(st);
	if (!sqlite3_get_autocommit(a->db))
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Deletes rows older than the retention, 5000 at a time so that no
 * transaction holds the lock long; at most once a minute. Writer thread
 * only. */
static void
audit_prune(struct audit *a, unsigned days)
{
	sqlite3_stmt *st = NULL;
	int64_t now = audit_now_ms();
	char cutoff[64];

	if (a->pruned_at != 0 && now - a->pruned_at < 60000)
		return;
	a->pruned_at = now;
	audit_format_ts(request_wall_ms() - (int64_t)days * 86400000, cutoff);
	if (sqlite3_prepare_v2(a->db, "DELETE FROM predictions WHERE id IN "
	    "(SELECT id FROM predictions WHERE ts < ? ORDER BY id LIMIT 5000)",
	    -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, cutoff, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(a->db) > 0)
		sqlite3_reset(st);
	sqlite3_finalize(st);
}

/* Removes and frees the n oldest rows. Caller holds the lock. */
static void
audit_pop(struct audit *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(a->ring[a->head]);
		a->ring[a->head] = NULL;
		a->head = (a->head + 1) % a->capacity;
	}
	a->count -= n;
}

static void *
audit_writer(void *arg)
{
	struct audit *a = arg;
	struct audit_row *batch[AUDIT_BATCH_MAX];
	int64_t failing_since = 0;
	long backoff = 10;
	int durable, full_sync = 0;
	char why[sizeof(a->last_error)];

	pthread_mutex_lock(&a->lock);
	for (;;) {
		size_t n, i;
		uint64_t t0, t1;
		int rc;

		while (a->count == 0 && !a->closing) {
			struct timespec until;

			if (a->retain_days > 0) {
				unsigned days = a->retain_days;

				pthread_mutex_unlock(&a->lock);
				audit_prune(a, days);
				pthread_mutex_lock(&a->lock);
				if (a->count > 0 || a->closing)
					break;
			}
			/* Wake at least once a minute to prune. */
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 60;
			pthread_cond_timedwait(&a->nonempty, &a->lock, &until);
		}
		if (a->count == 0)
			break;
		/* Only this thread removes rows, and producers only add at
		 * the tail, so the batch stays valid while unlocked. */
		n = a->count < AUDIT_BATCH_MAX ? a->count : AUDIT_BATCH_MAX;
		for (i = 0; i < n; i++)
			batch[i] = a->ring[(a->head + i) % a->capacity];
		durable = a->durable;
		pthread_mutex_unlock(&a->lock);

		if (durable && !full_sync) {
			sqlite3_exec(a->db, "PRAGMA synchronous=FULL", NULL,
			    NULL, NULL);
			full_sync = 1;
		}

		t0 = request_now_ns();
		rc = audit_write_batch(a, batch, n, why, sizeof(why));
		t1 = request_now_ns();

		pthread_mutex_lock(&a->lock);
		if (rc == 0) {
			audit_pop(a, n);
			a->done_ticket += n;
			pthread_cond_broadcast(&a->committed);
			a->stats.written += n;
			a->stats.last_commit_us = (t1 - t0) / 1000;
			a->healthy = 1;
			failing_since = 0;
			backoff = 10;
			if (a->retain_days > 0) {
				/* Busy or not, prune (at most once a minute). */
				unsigned days = a->retain_days;

				pthread_mutex_unlock(&a->lock);
				audit_prune(a, days);
				pthread_mutex_lock(&a->lock);
			}
			continue;
		}
		a->stats.failures++;
		a->healthy = 0;
		memcpy(a->last_error, why, sizeof(why));
		if (failing_since == 0) {
			failing_since = audit_now_ms();
			fprintf(stderr, "mlfcgi[%ld]: %s; %zu rows queued, "
			    "retrying\n", a->pid, why, a->count);
		}
		if (a->closing &&
		    audit_now_ms() - failing_since > AUDIT_CLOSE_RETRY_MS) {
			fprintf(stderr, "mlfcgi[%ld]: %s; giving up on %zu "
			    "queued rows at exit\n", a->pid, why, a->count);
			a->stats.dropped += a->count;
			audit_pop(a, a->count);
			break;
		}
		pthread_mutex_unlock(&a->lock);
		audit_sleep_ms(backoff);
		backoff = backoff * 2 > AUDIT_BACKOFF_MAX_MS ?
		    AUDIT_BACKOFF_MAX_MS : backoff * 2;
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* Frees a, whose writer thread is not running. */
static void
audit_destroy(struct audit *a)
{
	sqlite3_finalize(a->insert);
	sqlite3_close(a->db);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->nonempty);
	pthread_cond_destroy(&a->committed);
	free(a->ring);
	free(a);
}

struct audit *
audit_open(const char *path, size_t capacity, char *err, size_t errlen)
{
	struct audit *a = xcalloc(1, sizeof(*a));

	a->capacity = capacity ? capacity : AUDIT_QUEUE_DEFAULT;
	a->ring = xcalloc(a->capacity, sizeof(*a->ring));
	a->pid = (long)getpid();
	a->healthy = 1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->nonempty, NULL);
	pthread_cond_init(&a->committed, NULL);
	if (audit_open_db(a, path, err, errlen) < 0)
		goto fail;
	if (pthread_create(&a->thread, NULL, audit_writer, a) != 0) {
		snprintf(err, errlen, "cannot start the audit writer thread");
		goto fail;
	}
	return a;
fail:
	audit_destroy(a);
	return NULL;
}

/* Copies s to *p and advances it; returns the copy. */
static const char *
audit_copy(char **p, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = *p;

	memcpy(d, s, n);
	*p += n;
	return d;
}

int
audit_enqueue(struct audit *a, const struct audit_row *row)
{
	unsigned long long ticket;

	return audit_enqueue_ticket(a, row, &ticket);
}

int
audit_enqueue_ticket(struct audit *a, const struct audit_row *row,
    unsigned long long *ticket)
{
	size_t size = sizeof(struct audit_row) + strlen(row->request_id) +
	    strlen(row->model) + strlen(row->version) + strlen(row->input) +
	    strlen(row->output) + 5;
	struct audit_row *r = xmalloc(size);
	char *p = (char *)(r + 1);
	int full;

	*r = *row;
	r->request_id = audit_copy(&p, row->request_id);
	r->model = audit_copy(&p, row->model);
	r->version = audit_copy(&p, row->version);
	r->input = audit_copy(&p, row->input);
	r->output = audit_copy(&p, row->output);

	pthread_mutex_lock(&a->lock);
	full = a->count == a->capacity || a->closing;
	if (!full) {
		a->ring[(a->head + a->count) % a->capacity] = r;
		a->count++;
		a->stats.enqueued++;
		*ticket = ++a->next_ticket;
		pthread_cond_signal(&a->nonempty);
	} else if (a->stats.dropped++ % 10000 == 0)
		fprintf(stderr, "mlfcgi[%ld]: audit queue full (%zu rows): "
		    "dropping rows (%llu so far)\n", a->pid, a->capacity,
		    (unsigned long long)a->stats.dropped);
	pthread_mutex_unlock(&a->lock);
	if (full)
		free(r);
	return full ? -1 : 0;
}

int
audit_wait(struct audit *a, unsigned long long ticket, long timeout_ms)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L)
		until.tv_sec++, until.tv_nsec -= 1000000000L;
	pthread_mutex_lock(&a->lock);
	while (a->done_ticket < ticket && rc == 0)
		if (pthread_cond_timedwait(&a->committed, &a->lock, &until) ==
		    ETIMEDOUT && a->done_ticket < ticket)
			rc = -1;
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void
audit_set_durable(struct audit *a)
{
	/* The writer applies it on its own connection, before its next
	 * batch. */
	pthread_mutex_lock(&a->lock);
	a->durable = 1;
	pthread_mutex_unlock(&a->lock);
}

void
audit_set_retention(struct audit *a, unsigned days)
{
	pthread_mutex_lock(&a->lock);
	a->retain_days = days;
	pthread_cond_signal(&a->nonempty);
	pthread_mutex_unlock(&a->lock);
}

int
audit_healthy(struct audit *a, char *why, size_t whylen)
{
	int ok;

	pthread_mutex_lock(&a->lock);
	ok = a->healthy && a->count < a->capacity;
	if (!a->healthy)
		snprintf(why, whylen, "%s", a->last_error);
	else if (!ok)
		snprintf(why, whylen, "audit log: queue full");
	pthread_mutex_unlock(&a->lock);
	return ok;
}

void
audit_get_stats(struct audit *a, struct audit_stats *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->stats;
	st->depth = a->count;
	pthread_mutex_unlock(&a->lock);
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->closing = 1;
	pthread_cond_signal(&a->nonempty);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	audit_destroy(a);
}
