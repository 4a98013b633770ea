/* audit: the SQLite audit log, written by one deferred writer thread.
 *
 * Request threads call audit_enqueue(), which allocates and copies the row
 * outside any lock, then takes one lock to link it into a bounded in-memory
 * queue; it never touches SQLite. The writer thread takes the whole queue
 * at once and writes it in transactions of about AUDIT_BATCH_MAX rows
 * (group commit) into the predictions table (sql/schema.sql), WAL mode.
 * A checkpointer thread, on a second connection to the same file, copies
 * the WAL into the database whenever the writer's commits have put 4 MiB
 * in it, so that a checkpoint's syncs never hold a commit; past 16 MiB of
 * WAL (the checkpointer behind a slow disk) the writer checkpoints itself.
 * After a checkpoint, the database's pages but its last 16 MiB leave the
 * OS page cache (written once, read rarely).
 *
 * Guarantees:
 * - A row is counted out of the queue only after its transaction
 *   committed; a failed or busy commit is retried, never silently dropped.
 * - The rows of one request (audit_row.more) are committed in one
 *   transaction, never split across two.
 * - When the queue is full, the new request's rows are dropped, counted
 *   (dropped) and reported on stderr; the request is still answered. The
 *   queue holds `capacity` rows (default AUDIT_QUEUE_DEFAULT), and at
 *   most AUDIT_QUEUE_BYTES_DEFAULT bytes of them (audit_set_queue_bytes();
 *   one request's rows are taken into an empty queue whatever their
 *   size), so that wide rows cannot fill the memory.
 * - Unflushed window: a row waits at most flush_ms / 4 for a fuller
 *   batch. While the writer is healthy, not waiting for another process's
 *   lock and not stalled (one commit for more than 1 s), a request thread
 *   waits before queuing while the oldest uncommitted row is older than
 *   flush_ms or its rows would make more than AUDIT_LAG_ROWS uncommitted
 *   (backpressure), so that a kill -9 loses only recent rows: at most
 *   AUDIT_LAG_ROWS (or one request's rows if more), queued in about the
 *   last flush_ms plus the commit in progress. A failing, locked out or
 *   stalled writer lets rows queue up to `capacity`.
 * - audit_close() writes every queued row before returning (giving up only
 *   after AUDIT_CLOSE_RETRY_MS of continuous failure, and counting what it
 *   could not write as dropped).
 * - Several processes may write one file: each commit waits for the lock
 *   (busy timeout) and is retried.
 * - The file deleted, moved or replaced (checked before each transaction):
 *   the old file gets what was committed to it (its WAL is checkpointed
 *   into it), then the writer reopens the path, creating the database, and
 *   goes on there. A read-only database (at start or later) is reopened
 *   on each retry, so rows land once it is writable.
 * - In durable mode (audit_set_durable), audit_wait() lets a request wait
 *   until its rows are committed (synchronous=FULL), so an answer is sent
 *   only for a prediction that is on disk; commits are still grouped.
 * - With a retention of N days, the writer deletes rows older than that,
 *   in small batches, at start and then at most once a minute.
 *
 * Shared state, all in struct audit behind `lock`: the queue, the counters,
 * the health flag and the writer's progress. The SQLite connection belongs
 * to the writer thread, and so does the checkpointer's (the writer opens
 * and closes it, the checkpointer uses it, each under a second mutex; it
 * is closed before the writer's, which alone may delete the -wal). A
 * request's rows with `more` set wait in a thread-local list of the
 * calling thread until its last row. */
#ifndef MLFCGI_AUDIT_H
#define MLFCGI_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_QUEUE_DEFAULT 65536
#define AUDIT_QUEUE_BYTES_DEFAULT ((size_t)256 << 20)
#define AUDIT_BATCH_MAX 1024
#define AUDIT_LAG_ROWS 8192		/* backpressure above this backlog */
#define AUDIT_FLUSH_MS_DEFAULT 100
#define AUDIT_CLOSE_RETRY_MS 10000
#define AUDIT_SCHEMA_VERSION 1

struct audit;

/* One prediction to log. Built by audit_row_new() as one allocation. */
struct audit_row {
	int64_t		 ts_ms;		/* wall clock, ms since the epoch */
	int64_t		 latency_us;
	int		 cached;
	const char	*request_id;
	const char	*model;
	const char	*version;
	const char	*input;		/* JSON text */
	const char	*output;	/* JSON text */
	int		 more;		/* 1: the request has more rows */
};

struct audit_stats {
	uint64_t	enqueued;	/* rows accepted into the queue */
	uint64_t	written;	/* rows committed */
	uint64_t	commits;	/* transactions committed */
	uint64_t	dropped;	/* rows lost: queue full or given up */
	uint64_t	failures;	/* failed commit attempts */
	size_t		depth;		/* rows waiting now */
	uint64_t	last_commit_us;	/* duration of the last commit */
	uint64_t	reopened;	/* file moved, deleted or read-only:
					 * connections reopened */
	uint64_t	waits;		/* backpressure waits of requests */
	uint64_t	yields;		/* the writer's sched_yield() calls
					 * (audit_write_batch()) */
	size_t		bytes;		/* memory the rows not committed hold */
	uint64_t	checkpoints;	/* WAL checkpoints the checkpointer
					 * thread completed */
	uint64_t	last_checkpoint_us; /* duration of its last one */
	uint64_t	writer_checkpoints; /* ... the writer completed itself:
					 * no checkpointer connection, or the
					 * WAL past AUDIT_WAL_MAX_FRAMES */
};

/* Opens (creating if needed) the database at path, applies the schema if
 * the database is new, and starts the writer thread. Returns NULL with a
 * message in err if the file cannot be opened or has a schema newer than
 * this program's. A database that opens read-only is not an error: the
 * writer starts unhealthy and retries until it can write. */
struct audit *audit_open(const char *path, size_t capacity, char *err,
	    size_t errlen);
/* Copies the row (one allocation). With row->more set, the copy waits in
 * the calling thread's list and 0 is returned; the row with more == 0
 * queues the thread's whole list at once. Returns 0, or -1 when the queue
 * has no room for them all or is closing (they are then dropped and
 * counted). Thread-safe; never blocks on the disk, but may wait for the
 * writer (at most about flush_ms each time it is making progress) when
 * the backlog exceeds the bounds above. audit_enqueue_ticket() also gives
 * the ticket of the last row queued, for audit_wait(). */
int	audit_enqueue(struct audit *a, const struct audit_row *row);
int	audit_enqueue_ticket(struct audit *a, const struct audit_row *row,
	    unsigned long long *ticket);
/* Waits until every row up to ticket is committed, at most timeout_ms,
 * and no longer once the writer is stuck (failing, or for over
 * a second waiting for another process's lock or in one commit), so
 * that request threads are not all held up. Returns 0 once they are
 * committed, -1 on timeout or a stuck writer (the rows stay queued and
 * land later). Thread-safe. */
int	audit_wait(struct audit *a, unsigned long long ticket, long timeout_ms);
/* Durable mode: synchronous=FULL, for callers that audit_wait(). Call
 * before the first row. */
void	audit_set_durable(struct audit *a);
/* Sets the flush interval in ms (default AUDIT_FLUSH_MS_DEFAULT, at least
 * 1): see "Unflushed window" above. Call before the first row. */
void	audit_set_flush_ms(struct audit *a, long ms);
/* Sets the most bytes the queued rows may hold (default
 * AUDIT_QUEUE_BYTES_DEFAULT, at least 1): see the queue above. Call before
 * the first row. */
void	audit_set_queue_bytes(struct audit *a, size_t bytes);
/* Deletes rows older than days (0: keep everything). Call before the
 * first row. */
void	audit_set_retention(struct audit *a, unsigned days);
/* Returns 1 if the writer is keeping up (last commit succeeded and the
 * queue is not full), else 0 with the reason in why. Thread-safe. */
int	audit_healthy(struct audit *a, char *why, size_t whylen);
void	audit_get_stats(struct audit *a, struct audit_stats *st);
/* Stops the writer after writing every queued row, then closes the
 * database and frees a. Call once, after the last audit_enqueue(). */
void	audit_close(struct audit *a);

/* The schema text (sql/schema.sql), embedded at build time. */
extern const char audit_schema_sql[];

#endif
