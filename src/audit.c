/* audit: bounded queue and deferred SQLite writer thread (see audit.h). */
#include "audit.h"
#include "buf.h"
#include "request.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* Busy timeout for each statement when another process holds the lock. */
#define AUDIT_BUSY_MS 5000
/* A commit or prune running this long (a slow disk) stops backpressure. */
#define AUDIT_STALL_MS 1000
/* Longest wait between retries of a failed commit. */
#define AUDIT_BACKOFF_MAX_MS 1000
/* Rows one INSERT statement writes (the rest of a batch: one at a time).
 * SQLite then opens and positions its table and index cursors once per
 * statement, and each further row appends where the last one went: 8,100
 * instead of 12,900 instructions per row (callgrind, bench/audit_rate.c),
 * and the writer thread's CPU per row behind lighttpd 4.2-4.6 us instead
 * of 6.0-6.2 (bench/RESULTS.md). */
#define AUDIT_INSERT_ROWS 16
/* The columns a row binds, ? 1-8 of its VALUES group; the ninth, pid, is
 * the statement's constant (audit_prepare_insert()). */
#define AUDIT_COLUMNS 8
/* WAL frames (pages) after which the checkpointer copies the WAL into the
 * database: 4 MiB of 16 KiB pages, as SQLite's default autocheckpoint of
 * 1000 pages of 4 KiB. */
#define AUDIT_CKPT_FRAMES 256
/* WAL frames past which the writer checkpoints itself, once the
 * checkpointer's run in progress is over, so that the WAL stops growing at
 * about 16 MiB. SQLite starts a WAL over only when a transaction begins
 * with every frame copied, and the writer's commits come faster than a
 * slow disk's checkpoints: then the WAL grows to this. On a disk slower
 * than the rows, the writer's wait here is what holds the requests back
 * (through the backpressure) instead of the queue filling: with 4096
 * frames that wait passed a second and rows were dropped (bench/RESULTS.md,
 * "The checkpointer thread"). */
#define AUDIT_WAL_MAX_FRAMES 1024
/* Bytes at the end of the database that stay in the OS page cache after a
 * checkpoint; the rest is dropped (audit_drop_cache()). The tail holds the
 * pages the next checkpoints rewrite and what operators read most: about
 * the last 35,000 rows. */
#define AUDIT_CACHE_KEEP (16L << 20)

/* One queued row: the row, then its strings, in one allocation. */
struct audit_item {
	struct audit_item *next;
	struct audit_row   row;
	int64_t		   queued_ms;	/* monotonic ms when queued */
	int		   len[5];	/* of request_id .. output */
};

/* The size of the one allocation of an item whose five strings
 * (request_id .. output) have the lengths len, each with its NUL. */
static size_t
audit_item_bytes(const size_t len[5])
{
	return sizeof(struct audit_item) + len[0] + len[1] + len[2] + len[3] +
	    len[4] + 5;
}

/* The memory item holds (its one allocation). */
static size_t
audit_item_size(const struct audit_item *it)
{
	size_t len[5];
	int i;

	for (i = 0; i < 5; i++)
		len[i] = (size_t)it->len[i];
	return audit_item_bytes(len);
}

struct audit {
	pthread_mutex_t	  lock;		/* guards everything below it */
	pthread_cond_t	  wake;		/* the writer waits on it */
	pthread_cond_t	  committed;	/* broadcast after a commit when
					 * waiters > 0 */
	struct audit_item *head, *tail;	/* queued, not yet taken */
	size_t		  queued;	/* rows in head..tail */
	size_t		  count;	/* queued + taken, not committed */
	size_t		  capacity;
	size_t		  bytes;	/* audit_item_size() of those count */
	size_t		  capacity_bytes;
	int		  bytes_full;	/* rows dropped for capacity_bytes
					 * since the last commit */
	int64_t		  oldest_ms;	/* queued_ms of the oldest row not
					 * committed; 0: none */
	int64_t		  busy_since;	/* monotonic ms the writer's current
					 * commit or prune began; 0: none */
	int		  lock_wait;	/* ... and it waits for another
					 * process's lock */
	int		  writer_idle;	/* the writer waits for a first row */
	int		  gathering;	/* ... for a fuller batch */
	int		  waiters;	/* threads waiting on committed */
	int		  closing;
	int		  healthy;	/* last commit succeeded */
	unsigned long long next_ticket;	/* the last ticket handed out */
	unsigned long long done_ticket;	/* every ticket <= it is committed */
	unsigned	  retain_days;
	int		  durable;
	long		  flush_ms;
	char		  last_error[128];
	struct audit_stats stats;
	pthread_cond_t	  ckpt_wake;	/* the checkpointer waits on it */
	int		  ckpt_wanted;	/* the WAL has AUDIT_CKPT_FRAMES */
	int		  ckpt_stop;	/* the checkpointer is to end */

	/* The checkpointer's connection to the writer's file: opened and
	 * closed by the writer thread, used by the checkpointer thread, both
	 * with ckpt_lock held (a checkpoint holds it throughout). The writer
	 * reads the pointer without it. */
	pthread_mutex_t	  ckpt_lock;
	sqlite3		 *ckpt_db;	/* NULL: the writer checkpoints */
	int		  ckpt_fd;	/* the same file, read-only, for
					 * posix_fadvise(); -1 without ckpt_db */
	pthread_t	  ckpt_thread;
	int		  ckpt_running;	/* ckpt_thread was started */
	int		  ckpt_failing;	/* checkpointer thread only: its last
					 * checkpoint failed (said once) */

	/* Writer thread only (and audit_open() before it starts): */
	pthread_t	  thread;
	char		 *path;
	sqlite3		 *db;		/* NULL: to reopen */
	sqlite3_stmt	 *insert;	/* one row */
	sqlite3_stmt	 *insert_many;	/* AUDIT_INSERT_ROWS rows */
	int		  full_sync;	/* synchronous=FULL set on db */
	long		  pid;
	int64_t		  pruned_at;	/* monotonic ms of the last prune */
	int64_t		  failing_since; /* monotonic ms; 0: not failing */
	int64_t		  lock_since;	/* audit_busy(): first try, ms */
	long		  backoff;	/* ms before the next retry */
	time_t		  ts_secs;	/* audit_format_ts() cache */
	char		  ts_prefix[48];
};

/* A request's rows before its last one, held by the calling thread. */
static _Thread_local struct {
	struct audit_item *head, *tail;
	size_t		   n;
	size_t		   bytes;	/* audit_item_size() of the n */
} audit_group;

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

/* Formats ms since the epoch as 2026-11-29T23:59:59.123Z, keeping the
 * formatted second in a (writer thread only). Returns its length. */
static size_t
audit_format_ts(struct audit *a, int64_t ms, char out[64])
{
	time_t secs = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	struct tm tm;
	size_t n;

	if (frac < 0) {		/* before 1970: a far retention cutoff */
		frac += 1000;
		secs--;
	}
	if (secs != a->ts_secs || a->ts_prefix[0] == '\0') {
		gmtime_r(&secs, &tm);
		snprintf(a->ts_prefix, sizeof(a->ts_prefix),
		    "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
		a->ts_secs = secs;
	}
	n = strlen(a->ts_prefix);
	memcpy(out, a->ts_prefix, n);
	out[n] = '.';
	out[n + 1] = (char)('0' + frac / 100);
	out[n + 2] = (char)('0' + frac / 10 % 10);
	out[n + 3] = (char)('0' + frac % 10);
	out[n + 4] = 'Z';
	out[n + 5] = '\0';
	return n + 5;
}

/* Applies the schema to a new database; checks the version of an old one.
 * Runs in one IMMEDIATE transaction so that processes starting together
 * apply it once. Returns 0, -2 if another connection's lock was in the way
 * (worth trying again), or -1. */
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
	rc = sqlite3_errcode(db) & 0xff;
	snprintf(err, errlen, "cannot apply the schema: %s",
	    msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -2 : -1;
}

/* SQLite's busy handler: waits for another process's lock as
 * sqlite3_busy_timeout(AUDIT_BUSY_MS) would, and meanwhile marks the writer
 * as waiting for a lock, which ends backpressure at once (request threads
 * are not held up by another process). Writer thread only. */
static int
audit_busy(void *arg, int tries)
{
	static const int delays[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50,
	    100 };
	struct audit *a = arg;
	int64_t now = audit_now_ms();

	if (tries == 0) {
		pthread_mutex_lock(&a->lock);
		a->lock_since = now;	/* read by audit_wait() */
		a->lock_wait = 1;
		if (a->waiters > 0)
			pthread_cond_broadcast(&a->committed);
		pthread_mutex_unlock(&a->lock);
	}
	if (now - a->lock_since >= AUDIT_BUSY_MS)
		return 0;
	audit_sleep_ms(delays[tries < 12 ? tries : 11]);
	return 1;
}

/* Closes the checkpointer's connection, after its checkpoint in
 * progress. Writer thread only, or audit_destroy(). */
static void
audit_close_ckpt(struct audit *a)
{
	pthread_mutex_lock(&a->ckpt_lock);
	sqlite3_close(a->ckpt_db);
	a->ckpt_db = NULL;
	if (a->ckpt_fd >= 0)
		close(a->ckpt_fd);
	a->ckpt_fd = -1;
	pthread_mutex_unlock(&a->ckpt_lock);
}

/* Drops the database's pages that a checkpoint has written out from the
 * OS page cache, all but the last AUDIT_CACHE_KEEP bytes. The log is
 * written once and read rarely: without this, every checkpoint takes
 * 4 MiB of new memory from the kernel for pages nobody reads again, which
 * costs several times the copy itself where fresh memory is expensive
 * (a virtual machine whose memory the host backs on first touch: 26-55 us
 * of CPU per 16 KiB page written into a growing file, against 4 us into
 * pages the kernel recycles; bench/RESULTS.md), and elsewhere pushes
 * more useful pages (the models, the web server's files) out of the
 * cache. Pages still dirty (a checkpoint that could not copy every frame
 * does not sync the file) are only queued for writeback, not dropped.
 * The caller holds ckpt_lock and has just checkpointed. */
static void
audit_drop_cache(struct audit *a)
{
	struct stat st;

	if (a->ckpt_fd < 0 || fstat(a->ckpt_fd, &st) != 0 ||
	    st.st_size <= AUDIT_CACHE_KEEP)
		return;
	(void)posix_fadvise(a->ckpt_fd, 0, st.st_size - AUDIT_CACHE_KEEP,
	    POSIX_FADV_DONTNEED);
}

/* Closes the writer's connection, the checkpointer's first: SQLite deletes
 * the -wal beside the path when the last connection to a file closes, so
 * that last one must be the writer's, which knows whether the file moved.
 * A moved or deleted file first gets its WAL checkpointed into it (SQLite
 * does not do it on close for a moved file), and that WAL truncated, so
 * that the old -wal left at the path cannot be read over a new file
 * there. Returns 0, or -1 if that checkpoint failed (the connection then
 * stays open). Writer thread only, or audit_destroy(). */
static int
audit_close_db(struct audit *a, char *why, size_t whylen)
{
	int moved = 0;

	audit_close_ckpt(a);
	if (a->db == NULL)
		return 0;
	if (sqlite3_file_control(a->db, "main", SQLITE_FCNTL_HAS_MOVED,
	    &moved) == SQLITE_OK && moved &&
	    sqlite3_wal_checkpoint_v2(a->db, NULL,
	    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) != SQLITE_OK &&
	    !sqlite3_db_readonly(a->db, "main")) {
		snprintf(why, whylen, "audit log: %s was moved or deleted and "
		    "its WAL cannot be checkpointed: %s", a->path,
		    sqlite3_errmsg(a->db));
		return -1;
	}
	sqlite3_finalize(a->insert);
	sqlite3_finalize(a->insert_many);
	sqlite3_close(a->db);
	a->insert = a->insert_many = NULL;
	a->db = NULL;
	a->full_sync = 0;
	return 0;
}

/* sqlite3_wal_hook() of the writer's connection, called after each of its
 * commits with the frames in the WAL: past AUDIT_CKPT_FRAMES it wakes the
 * checkpointer. Without a checkpointer connection, or past
 * AUDIT_WAL_MAX_FRAMES, it checkpoints here (PASSIVE, as SQLite's own
 * autocheckpoint), after the checkpointer's run in progress. Writer thread
 * only. */
static int
audit_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct audit *a = arg;
	int rc;

	if (frames < AUDIT_CKPT_FRAMES)
		return SQLITE_OK;
	if (a->ckpt_db != NULL && frames < AUDIT_WAL_MAX_FRAMES) {
		pthread_mutex_lock(&a->lock);
		if (!a->ckpt_wanted) {
			a->ckpt_wanted = 1;
			pthread_cond_signal(&a->ckpt_wake);
		}
		pthread_mutex_unlock(&a->lock);
		return SQLITE_OK;
	}
	pthread_mutex_lock(&a->ckpt_lock);
	rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE,
	    NULL, NULL);
	if (rc == SQLITE_OK)
		audit_drop_cache(a);
	pthread_mutex_unlock(&a->ckpt_lock);
	if (rc == SQLITE_OK) {
		pthread_mutex_lock(&a->lock);
		a->stats.writer_checkpoints++;
		pthread_mutex_unlock(&a->lock);
	}
	/* As SQLite's own hook: a failed checkpoint does not fail the
	 * commit; the next commit tries again. */
	return SQLITE_OK;
}

/* Opens the checkpointer's connection to the file the writer has just
 * opened, when the checkpointer thread runs. SQLite finds a WAL by its
 * name beside the path, so both must be the same file: a first read opens
 * this connection's WAL at once, and if the path then no longer names the
 * file either connection has open, there is no checkpointer connection
 * (the writer checkpoints itself, audit_wal_hook()). Writer thread only,
 * or audit_open(). */
static void
audit_open_ckpt(struct audit *a)
{
	sqlite3 *c = NULL;
	int moved = 1, cmoved = 1, fd;

	if (!a->ckpt_running)
		return;
	/* Opened before the checks below, so that the file they find at the
	 * path unmoved is the one fd has open. */
	fd = open(a->path, O_RDONLY | O_CLOEXEC);
	/* Up to 1 s for that first read (another process may be recovering
	 * the WAL); PASSIVE checkpoints never wait. */
	if (sqlite3_open_v2(a->path, &c, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
	    sqlite3_busy_timeout(c, 1000) == SQLITE_OK &&
	    sqlite3_db_readonly(c, "main") == 0 &&
	    sqlite3_exec(c, "SELECT count(*) FROM sqlite_master", NULL, NULL,
	    NULL) == SQLITE_OK &&
	    sqlite3_file_control(a->db, "main", SQLITE_FCNTL_HAS_MOVED,
	    &moved) == SQLITE_OK && !moved &&
	    sqlite3_file_control(c, "main", SQLITE_FCNTL_HAS_MOVED,
	    &cmoved) == SQLITE_OK && !cmoved) {
		pthread_mutex_lock(&a->ckpt_lock);
		a->ckpt_db = c;
		a->ckpt_fd = fd;
		pthread_mutex_unlock(&a->ckpt_lock);
		return;
	}
	if (fd >= 0)
		close(fd);
	sqlite3_close(c);
}

/* Prepares *st, an INSERT of rows rows. OR FAIL: with the default (OR
 * ABORT), a statement of several rows keeps a statement journal, in a
 * temporary file, to undo its own first rows if a later one fails; that
 * cost more system time than the statement saved. A failed batch is rolled
 * back whole anyway (audit_write_batch()). The pid is written into the
 * statement, not bound to each row: about 90 instructions a row less
 * (sqlite3_bind_int64, callgrind). Returns SQLITE_OK or an error code. */
static int
audit_prepare_insert(sqlite3 *db, size_t rows, long pid, sqlite3_stmt **st)
{
	struct buf sql = BUF_INIT;
	size_t i;
	int rc;

	buf_puts(&sql, "INSERT OR FAIL INTO predictions (ts, request_id, "
	    "model, version, input, output, latency_us, cached, pid) VALUES ");
	for (i = 0; i < rows; i++)
		buf_printf(&sql, "%s(?, ?, ?, ?, ?, ?, ?, ?, %ld)", i ? ", " : "",
		    pid);
	rc = sqlite3_prepare_v2(db, sql.data, (int)sql.len, st, NULL);
	buf_free(&sql);
	return rc;
}

/* Opens the database at a->path for writing (creating it and its schema).
 * Returns 0; or -1 with the message in err and no connection left open,
 * *readonly telling whether the cause is a read-only file, *busy whether
 * it is another connection's lock. Writer thread only, or audit_open(). */
static int
audit_open_db_once(struct audit *a, int *readonly, int *busy, char *err,
    size_t errlen)
{
	char *msg = NULL;
	int rc;

	*readonly = *busy = 0;
	if (sqlite3_open_v2(a->path, &a->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", a->path, a->db ?
		    sqlite3_errmsg(a->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_handler(a->db, audit_busy, a);
	if (sqlite3_db_readonly(a->db, "main") == 1) {
		snprintf(err, errlen, "%s: attempt to write a readonly "
		    "database", a->path);
		*readonly = 1;
		goto fail;
	}
	/* 16 KiB pages for a new file (an old one keeps its own): 10-15 %
	 * less writer CPU per row than 4 KiB, in fewer, larger writes. The
	 * WAL is checkpointed by the checkpointer thread (audit_wal_hook()).
	 * 1 MiB of page cache: the writer appends, down one path of each
	 * B-tree; SQLite's default 2 MiB made the process 1.2 MB larger
	 * (7.6 MB resident at 16,000 rows/s, against 8 MB allowed) for
	 * nothing measurable in rows/s (bench/RESULTS.md). */
	if (sqlite3_exec(a->db, "PRAGMA page_size=16384; "
	    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
	    "PRAGMA cache_size=-1024", NULL, NULL, &msg) != SQLITE_OK) {
		rc = sqlite3_errcode(a->db) & 0xff;
		*busy = rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
		snprintf(err, errlen, "%s: %s", a->path, msg ? msg :
		    sqlite3_errmsg(a->db));
		sqlite3_free(msg);
		goto fail;
	}
	if ((rc = audit_apply_schema(a->db, err, errlen)) < 0) {
		*busy = rc == -2;
		goto fail;
	}
	if (audit_prepare_insert(a->db, 1, a->pid, &a->insert) != SQLITE_OK ||
	    audit_prepare_insert(a->db, AUDIT_INSERT_ROWS, a->pid,
	    &a->insert_many) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", a->path, sqlite3_errmsg(a->db));
		goto fail;
	}
	sqlite3_wal_hook(a->db, audit_wal_hook, a);
	audit_open_ckpt(a);
	return 0;
fail:
	if (a->db != NULL && (sqlite3_extended_errcode(a->db) & 0xff) ==
	    SQLITE_READONLY)
		*readonly = 1;
	sqlite3_finalize(a->insert);
	sqlite3_finalize(a->insert_many);
	sqlite3_close(a->db);
	a->insert = a->insert_many = NULL;
	a->db = NULL;
	return -1;
}

/* audit_open_db_once(), tried again for up to AUDIT_BUSY_MS while another
 * connection's lock is in the way: processes started together all switch
 * a new file to WAL and apply the schema, and SQLite answers some of those
 * lock upgrades SQLITE_BUSY at once, without the busy handler (it would
 * deadlock). Same contract as audit_open_db_once(). */
static int
audit_open_db(struct audit *a, int *readonly, char *err, size_t errlen)
{
	int64_t until = audit_now_ms() + AUDIT_BUSY_MS;
	int busy, tries = 0;

	while (audit_open_db_once(a, readonly, &busy, err, errlen) < 0) {
		if (!busy || audit_now_ms() >= until)
			return -1;
		/* Spread the retries of processes started together. */
		audit_sleep_ms(5 + (long)((a->pid + tries++) % 7) * 3);
	}
	return 0;
}

/* Makes a->db a writable connection to the file now at the path: opens it
 * if closed; closes and reopens it if the file was moved, deleted or
 * replaced. Returns 0, or -1 with the reason in why. Writer thread only. */
static int
audit_ready_db(struct audit *a, int durable, char *why, size_t whylen)
{
	char err[sizeof(a->last_error) - 16];
	int moved = 0, readonly;

	if (a->db != NULL && sqlite3_file_control(a->db, "main",
	    SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved) {
		if (audit_close_db(a, why, whylen) < 0)
			return -1;
		fprintf(stderr, "mlfcgi[%ld]: audit log: %s was moved, "
		    "deleted or replaced: the rows committed so far stay in "
		    "that file; writing to a database at the path now\n",
		    a->pid, a->path);
	}
	if (a->db == NULL) {
		if (audit_open_db(a, &readonly, err, sizeof(err)) < 0) {
			snprintf(why, whylen, "audit log: %s", err);
			return -1;
		}
		pthread_mutex_lock(&a->lock);
		a->stats.reopened++;
		pthread_mutex_unlock(&a->lock);
	}
	if (durable && !a->full_sync) {
		sqlite3_exec(a->db, "PRAGMA synchronous=FULL", NULL, NULL,
		    NULL);
		a->full_sync = 1;
	}
	return 0;
}

/* Binds it's row as row k (from 0) of the INSERT st, its ts formatted
 * into ts. Its strings and ts are bound without a copy: the caller keeps
 * ts until st is reset and clears st's bindings before it frees the
 * item. Writer thread only. */
static void
audit_bind_row(struct audit *a, sqlite3_stmt *st, int k,
    const struct audit_item *it, char ts[64])
{
	const struct audit_row *r = &it->row;
	int o = k * AUDIT_COLUMNS;
	size_t n = audit_format_ts(a, r->ts_ms, ts);

	sqlite3_bind_text(st, o + 1, ts, (int)n, SQLITE_STATIC);
	sqlite3_bind_text(st, o + 2, r->request_id, it->len[0], SQLITE_STATIC);
	sqlite3_bind_text(st, o + 3, r->model, it->len[1], SQLITE_STATIC);
	sqlite3_bind_text(st, o + 4, r->version, it->len[2], SQLITE_STATIC);
	sqlite3_bind_text(st, o + 5, r->input, it->len[3], SQLITE_STATIC);
	sqlite3_bind_text(st, o + 6, r->output, it->len[4], SQLITE_STATIC);
	sqlite3_bind_int64(st, o + 7, r->latency_us);
	sqlite3_bind_int(st, o + 8, r->cached);
}

/* Writes the n rows from first in one transaction: AUDIT_INSERT_ROWS rows
 * a statement, the rest one at a time, yielding the CPU after each
 * statement until yield_until (audit_now_ms() time), counted in
 * *yields. Returns 0 once committed; -1 with the transaction rolled back,
 * the reason in why, and the connection closed if it cannot write
 * (read-only) so that the next try reopens it. Writer thread only. */
static int
audit_write_batch(struct audit *a, const struct audit_item *first, size_t n,
    int durable, int64_t yield_until, uint64_t *yields, char *why,
    size_t whylen)
{
	const struct audit_item *it;
	sqlite3_stmt *st;
	/* The statement's timestamps, bound without a copy (SQLITE_STATIC):
	 * 313 instructions a row less than SQLITE_TRANSIENT's (callgrind,
	 * bench/audit_rate.c). */
	char ts[AUDIT_INSERT_ROWS][64];
	size_t i, rows, k;
	int code, rc;

	if (audit_ready_db(a, durable, why, whylen) < 0)
		return -1;
	if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		goto fail;
	for (i = 0, it = first; i < n; i += rows) {
		rows = n - i >= AUDIT_INSERT_ROWS ? AUDIT_INSERT_ROWS : 1;
		st = rows > 1 ? a->insert_many : a->insert;
		for (k = 0; k < rows; k++, it = it->next)
			audit_bind_row(a, st, (int)k, it, ts[k]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			goto fail;
		/* Let a request thread or the web server that woke up on
		 * this core run now rather than after the whole batch: on
		 * a busy machine a batch is a millisecond or more of CPU,
		 * and the requests waiting behind it cost more throughput
		 * than the writer's own time (bench/RESULTS.md). Returns
		 * at once when nothing else waits. But each yield may put
		 * the writer behind every runnable thread: with many
		 * connections it fell --audit-flush-ms behind, requests
		 * waited for it and the queue grew, so it stops yielding
		 * once the batch is that late (yield_until). */
		if (rows > 1 && audit_now_ms() < yield_until) {
			sched_yield();
			(*yields)++;
		}
	}
	if (sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
		sqlite3_clear_bindings(a->insert);
		sqlite3_clear_bindings(a->insert_many);
		return 0;
	}
fail:
	code = sqlite3_extended_errcode(a->db) & 0xff;
	snprintf(why, whylen, "audit log: %s", sqlite3_errmsg(a->db));
	sqlite3_clear_bindings(a->insert);
	sqlite3_clear_bindings(a->insert_many);
	if (!sqlite3_get_autocommit(a->db))
		sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	if (code == SQLITE_READONLY || sqlite3_db_readonly(a->db, "main") ==
	    1) {
		char ignored[8];

		audit_close_db(a, ignored, sizeof(ignored));
	}
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

	if (a->db == NULL ||
	    (a->pruned_at != 0 && now - a->pruned_at < 60000))
		return;
	a->pruned_at = now;
	audit_format_ts(a, request_wall_ms() - (int64_t)days * 86400000,
	    cutoff);
	if (sqlite3_prepare_v2(a->db, "DELETE FROM predictions WHERE id IN "
	    "(SELECT id FROM predictions WHERE ts < ? ORDER BY id LIMIT 5000)",
	    -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, cutoff, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(a->db) > 0)
		sqlite3_reset(st);
	sqlite3_finalize(st);
}

/* Prunes if a retention is set, marking the writer busy meanwhile. Caller
 * holds the lock; it is released during the prune. */
static void
audit_prune_locked(struct audit *a)
{
	unsigned days = a->retain_days;

	if (days == 0)
		return;
	a->busy_since = audit_now_ms();
	a->lock_wait = 0;
	pthread_mutex_unlock(&a->lock);
	audit_prune(a, days);
	pthread_mutex_lock(&a->lock);
	a->busy_since = 0;
	a->lock_wait = 0;
}

/* Frees the list of n items from first; returns the item after them. */
static struct audit_item *
audit_free_items(struct audit_item *first, size_t n)
{
	struct audit_item *next;

	for (; n > 0 && first != NULL; n--, first = next) {
		next = first->next;
		free(first);
	}
	return first;
}

/* Turns a deadline in monotonic ms into a timespec for the condition
 * variables (which use CLOCK_MONOTONIC). */
static struct timespec
audit_deadline(int64_t ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	return ts;
}

/* Writes the taken list of n rows, in transactions of about
 * AUDIT_BATCH_MAX rows cut between requests, retrying each until it
 * commits (or, closing, until AUDIT_CLOSE_RETRY_MS of failure: then it
 * and everything queued are dropped and counted). Each transaction yields
 * the CPU (audit_write_batch()) until its oldest row is half of flush_ms
 * old. Called without the lock; returns with it held. Writer thread
 * only. */
static void
audit_write_list(struct audit *a, struct audit_item *list, size_t n,
    int durable, long flush_ms)
{
	char why[sizeof(a->last_error)];

	while (n > 0) {
		struct audit_item *it = list;
		size_t k = 1, bytes = audit_item_size(list);
		uint64_t t0, t1, yields = 0;
		int rc;

		while (k < n && (k < AUDIT_BATCH_MAX || it->row.more)) {
			it = it->next;
			bytes += audit_item_size(it);
			k++;
		}
		t0 = request_now_ns();
		rc = audit_write_batch(a, list, k, durable,
		    list->queued_ms + flush_ms / 2, &yields, why, sizeof(why));
		t1 = request_now_ns();
		/* The written rows are no one else's: freed before the lock,
		 * which request threads wait for. */
		if (rc == 0)
			list = audit_free_items(list, k);
		pthread_mutex_lock(&a->lock);
		a->stats.yields += yields;
		if (rc == 0) {
			if (a->failing_since != 0)
				fprintf(stderr, "mlfcgi[%ld]: audit log: "
				    "writing again\n", a->pid);
			a->count -= k;
			a->bytes -= bytes;
			a->bytes_full = 0;
			a->done_ticket += k;
			a->stats.written += k;
			a->stats.commits++;
			a->stats.last_commit_us = (t1 - t0) / 1000;
			a->healthy = 1;
			a->failing_since = 0;
			a->backoff = 10;
			n -= k;
			a->oldest_ms = list != NULL ? list->queued_ms :
			    a->head != NULL ? a->head->queued_ms : 0;
			a->busy_since = n > 0 ? audit_now_ms() : 0;
			a->lock_wait = 0;
			if (a->waiters > 0)
				pthread_cond_broadcast(&a->committed);
			if (n == 0) {
				/* Busy or not, prune (at most once a
				 * minute). */
				audit_prune_locked(a);
				return;
			}
			pthread_mutex_unlock(&a->lock);
			continue;
		}
		a->stats.failures++;
		a->healthy = 0;
		a->busy_since = 0;
		a->lock_wait = 0;
		memcpy(a->last_error, why, sizeof(why));
		if (a->waiters > 0)
			pthread_cond_broadcast(&a->committed);
		if (a->failing_since == 0) {
			a->failing_since = audit_now_ms();
			fprintf(stderr, "mlfcgi[%ld]: %s; %zu rows queued, "
			    "retrying\n", a->pid, why, a->count);
		}
		if (a->closing &&
		    audit_now_ms() - a->failing_since > AUDIT_CLOSE_RETRY_MS) {
			fprintf(stderr, "mlfcgi[%ld]: %s; giving up on %zu "
			    "queued rows at exit\n", a->pid, why, a->count);
			a->stats.dropped += a->count;
			audit_free_items(list, n);
			audit_free_items(a->head, a->queued);
			a->head = a->tail = NULL;
			a->queued = a->count = 0;
			a->bytes = 0;
			a->bytes_full = 0;
			a->oldest_ms = 0;
			return;
		}
		pthread_mutex_unlock(&a->lock);
		audit_sleep_ms(a->backoff);
		a->backoff = a->backoff * 2 > AUDIT_BACKOFF_MAX_MS ?
		    AUDIT_BACKOFF_MAX_MS : a->backoff * 2;
		pthread_mutex_lock(&a->lock);
		a->busy_since = audit_now_ms();
		a->lock_wait = 0;
		pthread_mutex_unlock(&a->lock);
	}
	pthread_mutex_lock(&a->lock);
}

static void *
audit_writer(void *arg)
{
	struct audit *a = arg;

#ifdef __linux__
	/* Its own name in top -H, ps -L and perf: the process's name stays
	 * the main thread's. */
	prctl(PR_SET_NAME, "mlfcgi-audit", 0, 0, 0);
#endif
	pthread_mutex_lock(&a->lock);
	for (;;) {
		struct audit_item *list;
		size_t n;
		int durable;
		long flush_ms;

		while (a->queued == 0 && !a->closing) {
			struct timespec until;

			audit_prune_locked(a);
			if (a->queued > 0 || a->closing)
				break;
			/* Wake once a second to retry opening a database
			 * that could not be opened, or to notice a moved
			 * file (the old one then gets its WAL at once). */
			until = audit_deadline(audit_now_ms() +
			    AUDIT_BACKOFF_MAX_MS);
			a->writer_idle = 1;
			pthread_cond_timedwait(&a->wake, &a->lock, &until);
			a->writer_idle = 0;
			if (a->queued == 0 && !a->closing) {
				char why[sizeof(a->last_error)];
				int full = a->durable;

				pthread_mutex_unlock(&a->lock);
				if (audit_ready_db(a, full, why,
				    sizeof(why)) == 0) {
					pthread_mutex_lock(&a->lock);
					a->healthy = 1;
					a->failing_since = 0;
				} else
					pthread_mutex_lock(&a->lock);
			}
		}
		if (a->queued == 0)
			break;
		/* A short wait for a fuller batch (not when a request waits
		 * for its row, nor when the writer lags behind). */
		if (!a->durable && !a->closing && a->queued < AUDIT_BATCH_MAX) {
			int64_t until = a->head->queued_ms + (a->flush_ms + 3) /
			    4;

			a->gathering = 1;
			while (a->queued < AUDIT_BATCH_MAX && !a->closing &&
			    audit_now_ms() < until) {
				struct timespec ts = audit_deadline(until);

				pthread_cond_timedwait(&a->wake, &a->lock, &ts);
			}
			a->gathering = 0;
		}
		/* Take the whole queue: producers go on adding to an empty
		 * one while it is written. */
		list = a->head;
		n = a->queued;
		a->head = a->tail = NULL;
		a->queued = 0;
		a->busy_since = audit_now_ms();
		a->lock_wait = 0;
		durable = a->durable;
		flush_ms = a->flush_ms;
		pthread_mutex_unlock(&a->lock);
		audit_write_list(a, list, n, durable, flush_ms);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* The checkpointer thread: copies the WAL into the database each time the
 * writer's hook asks (audit_wal_hook()). PASSIVE: it never waits for the
 * writer, which goes on committing into the WAL meanwhile. So a
 * checkpoint's two syncs, the WAL's and the database's, the long part on a
 * slow disk, hold neither the writer nor, through its backpressure, the
 * requests; only the sync of the WAL's header when the writer starts it
 * over remains in a commit. A failed checkpoint is said on stderr once,
 * and tried again at the next wake. */
static void *
audit_checkpointer(void *arg)
{
	struct audit *a = arg;

#ifdef __linux__
	prctl(PR_SET_NAME, "mlfcgi-ckpt", 0, 0, 0);
#endif
	pthread_mutex_lock(&a->lock);
	for (;;) {
		char why[sizeof(a->last_error)] = "";
		uint64_t t0, t1;
		int rc = SQLITE_OK, ran = 0;

		while (!a->ckpt_wanted && !a->ckpt_stop)
			pthread_cond_wait(&a->ckpt_wake, &a->lock);
		if (a->ckpt_stop)
			break;
		a->ckpt_wanted = 0;
		pthread_mutex_unlock(&a->lock);
		pthread_mutex_lock(&a->ckpt_lock);
		t0 = request_now_ns();
		if (a->ckpt_db != NULL) {
			rc = sqlite3_wal_checkpoint_v2(a->ckpt_db, NULL,
			    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
			ran = 1;
			if (rc == SQLITE_OK)
				audit_drop_cache(a);
			/* SQLITE_BUSY: another process's checkpoint runs. */
			if (rc != SQLITE_OK && rc != SQLITE_BUSY)
				snprintf(why, sizeof(why), "%s",
				    sqlite3_errmsg(a->ckpt_db));
		}
		t1 = request_now_ns();
		pthread_mutex_unlock(&a->ckpt_lock);
		if (why[0] != '\0' && !a->ckpt_failing)
			fprintf(stderr, "mlfcgi[%ld]: audit log: checkpoint of "
			    "%s failed: %s; the rows stay in its WAL, and it "
			    "is tried again\n", a->pid, a->path, why);
		else if (ran && rc == SQLITE_OK && a->ckpt_failing)
			fprintf(stderr, "mlfcgi[%ld]: audit log: checkpoints "
			    "work again\n", a->pid);
		if (ran && rc != SQLITE_BUSY)
			a->ckpt_failing = rc != SQLITE_OK;
		pthread_mutex_lock(&a->lock);
		if (ran && rc == SQLITE_OK) {
			a->stats.checkpoints++;
			a->stats.last_checkpoint_us = (t1 - t0) / 1000;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* Frees a, whose writer thread is not running: ends the checkpointer,
 * then closes both connections. */
static void
audit_destroy(struct audit *a)
{
	char ignored[8];

	if (a->ckpt_running) {
		pthread_mutex_lock(&a->lock);
		a->ckpt_stop = 1;
		pthread_cond_signal(&a->ckpt_wake);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->ckpt_thread, NULL);
	}
	if (audit_close_db(a, ignored, sizeof(ignored)) < 0) {
		sqlite3_finalize(a->insert);
		sqlite3_finalize(a->insert_many);
		sqlite3_close(a->db);
	}
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->ckpt_lock);
	pthread_cond_destroy(&a->wake);
	pthread_cond_destroy(&a->committed);
	pthread_cond_destroy(&a->ckpt_wake);
	free(a->path);
	free(a);
}

/* Turns off SQLite's memory statistics, which nothing here reads: each of
 * its allocations then skips a global mutex (8 % of the writer's
 * CPU per row). Effective only before SQLite's first use in the process;
 * later it fails harmlessly. Once, from audit_open(). */
static void
audit_sqlite_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct audit *
audit_open(const char *path, size_t capacity, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct audit *a;
	pthread_condattr_t ca;
	int readonly;

	pthread_once(&once, audit_sqlite_config);
	a = xcalloc(1, sizeof(*a));
	a->capacity = capacity ? capacity : AUDIT_QUEUE_DEFAULT;
	a->capacity_bytes = AUDIT_QUEUE_BYTES_DEFAULT;
	a->path = xstrdup(path);
	a->pid = (long)getpid();
	a->healthy = 1;
	a->flush_ms = AUDIT_FLUSH_MS_DEFAULT;
	a->backoff = 10;
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->ckpt_lock, NULL);
	a->ckpt_fd = -1;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->wake, &ca);
	pthread_cond_init(&a->committed, &ca);
	pthread_cond_init(&a->ckpt_wake, &ca);
	pthread_condattr_destroy(&ca);
	/* Without it, the writer checkpoints as SQLite would. */
	a->ckpt_running = pthread_create(&a->ckpt_thread, NULL,
	    audit_checkpointer, a) == 0;
	if (audit_open_db(a, &readonly, err, errlen) < 0) {
		if (!readonly)
			goto fail;
		/* Serve anyway; the writer retries (see audit.h). */
		fprintf(stderr, "mlfcgi[%ld]: audit log: %s; rows will be "
		    "queued until it is writable\n", a->pid, err);
		snprintf(a->last_error, sizeof(a->last_error),
		    "audit log: %s", err);
		a->healthy = 0;
		a->failing_since = audit_now_ms();
	}
	if (pthread_create(&a->thread, NULL, audit_writer, a) != 0) {
		snprintf(err, errlen, "cannot start the audit writer thread");
		goto fail;
	}
	return a;
fail:
	audit_destroy(a);
	return NULL;
}

/* Copies s (n bytes and its NUL) to *p and advances it; returns the
 * copy. */
static const char *
audit_copy(char **p, const char *s, size_t n)
{
	char *d = *p;

	memcpy(d, s, n + 1);
	*p += n + 1;
	return d;
}

/* Copies row into one new item. */
static struct audit_item *
audit_item_new(const struct audit_row *row, int64_t now)
{
	size_t len[5] = { strlen(row->request_id), strlen(row->model),
	    strlen(row->version), strlen(row->input), strlen(row->output) };
	struct audit_item *it = xmalloc(audit_item_bytes(len));
	char *p = (char *)(it + 1);
	int i;

	it->next = NULL;
	it->row = *row;
	it->queued_ms = now;
	for (i = 0; i < 5; i++)
		it->len[i] = (int)len[i];
	it->row.request_id = audit_copy(&p, row->request_id, len[0]);
	it->row.model = audit_copy(&p, row->model, len[1]);
	it->row.version = audit_copy(&p, row->version, len[2]);
	it->row.input = audit_copy(&p, row->input, len[3]);
	it->row.output = audit_copy(&p, row->output, len[4]);
	return it;
}

/* Backpressure before queuing n rows: waits while the writer is healthy
 * and making progress but the oldest uncommitted row is older than
 * flush_ms, or the n rows would make more than AUDIT_LAG_ROWS uncommitted
 * (unless none is). Gives up as soon as the writer fails, waits for
 * another process's lock, stalls (one commit or prune longer than
 * AUDIT_STALL_MS) or closes. Caller holds the lock. */
static void
audit_backpressure(struct audit *a, int64_t now, size_t n)
{
	int waited = 0;

	while (!a->closing && a->healthy && a->count > 0 &&
	    (now - a->oldest_ms > a->flush_ms ||
	    a->count + n > AUDIT_LAG_ROWS) &&
	    !a->lock_wait &&
	    !(a->busy_since != 0 && now - a->busy_since > AUDIT_STALL_MS)) {
		struct timespec until = audit_deadline(now + a->flush_ms);

		if (!waited++)
			a->stats.waits++;
		a->waiters++;
		pthread_cond_timedwait(&a->committed, &a->lock, &until);
		a->waiters--;
		now = audit_now_ms();
	}
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
	int64_t now = audit_now_ms();
	struct audit_item *it = audit_item_new(row, now), *first;
	size_t n, bytes;
	int full;

	if (audit_group.tail != NULL)
		audit_group.tail->next = it;
	else
		audit_group.head = it;
	audit_group.tail = it;
	audit_group.n++;
	audit_group.bytes += audit_item_size(it);
	*ticket = 0;
	if (row->more)
		return 0;
	first = audit_group.head;
	n = audit_group.n;
	bytes = audit_group.bytes;
	audit_group.head = audit_group.tail = NULL;
	audit_group.n = 0;
	audit_group.bytes = 0;

	pthread_mutex_lock(&a->lock);
	audit_backpressure(a, now, n);
	/* Full: --audit-queue rows, or its bytes (but one request's rows go
	 * into an empty queue whatever their size). */
	if (a->count > 0 && a->bytes + bytes > a->capacity_bytes)
		a->bytes_full = 1;
	full = a->count + n > a->capacity || a->closing || a->bytes_full;
	if (!full) {
		if (a->tail != NULL)
			a->tail->next = first;
		else
			a->head = first;
		a->tail = it;
		if (a->count == 0)
			a->oldest_ms = first->queued_ms;
		a->queued += n;
		a->count += n;
		a->bytes += bytes;
		a->stats.enqueued += n;
		a->next_ticket += n;
		*ticket = a->next_ticket;
		/* The writer sleeps only when idle, or gathering a batch. */
		if (a->writer_idle ||
		    (a->gathering && a->queued >= AUDIT_BATCH_MAX))
			pthread_cond_signal(&a->wake);
	} else {
		if (a->stats.dropped / 10000 != (a->stats.dropped + n) / 10000 ||
		    a->stats.dropped == 0)
			fprintf(stderr, "mlfcgi[%ld]: audit queue full (%zu "
			    "rows, %zu bytes): dropping rows (%llu so far)\n",
			    a->pid, a->count, a->bytes,
			    (unsigned long long)(a->stats.dropped + n));
		a->stats.dropped += n;
	}
	pthread_mutex_unlock(&a->lock);
	if (full)
		audit_free_items(first, n);
	return full ? -1 : 0;
}

/* Tells whether the writer is stuck: failing, waiting for another
 * process's lock, or in one commit or prune, for over AUDIT_STALL_MS.
 * Caller holds the lock. */
static int
audit_stuck(const struct audit *a, int64_t now)
{
	return !a->healthy ||
	    (a->lock_wait && now - a->lock_since > AUDIT_STALL_MS) ||
	    (a->busy_since != 0 && now - a->busy_since > AUDIT_STALL_MS);
}

int
audit_wait(struct audit *a, unsigned long long ticket, long timeout_ms)
{
	int64_t now = audit_now_ms(), deadline = now + timeout_ms;
	int rc = 0;

	pthread_mutex_lock(&a->lock);
	a->waiters++;
	while (a->done_ticket < ticket) {
		struct timespec until;

		if (now >= deadline || audit_stuck(a, now)) {
			rc = -1;
			break;
		}
		/* Woken by each commit; looks again every 100 ms. */
		until = audit_deadline(now + 100 < deadline ? now + 100 :
		    deadline);
		pthread_cond_timedwait(&a->committed, &a->lock, &until);
		now = audit_now_ms();
	}
	a->waiters--;
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
audit_set_flush_ms(struct audit *a, long ms)
{
	pthread_mutex_lock(&a->lock);
	a->flush_ms = ms > 0 ? ms : 1;
	pthread_mutex_unlock(&a->lock);
}

void
audit_set_queue_bytes(struct audit *a, size_t bytes)
{
	pthread_mutex_lock(&a->lock);
	a->capacity_bytes = bytes > 0 ? bytes : 1;
	pthread_mutex_unlock(&a->lock);
}

void
audit_set_retention(struct audit *a, unsigned days)
{
	pthread_mutex_lock(&a->lock);
	a->retain_days = days;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

int
audit_healthy(struct audit *a, char *why, size_t whylen)
{
	int ok;

	pthread_mutex_lock(&a->lock);
	ok = a->healthy && a->count < a->capacity && !a->bytes_full;
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
	st->bytes = a->bytes;
	pthread_mutex_unlock(&a->lock);
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->closing = 1;
	pthread_cond_signal(&a->wake);
	pthread_cond_broadcast(&a->committed);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	audit_destroy(a);
}
