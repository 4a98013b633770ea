/* audit: the SQLite audit log, written by one deferred writer thread.
 *
 * Request threads call audit_enqueue(), which only takes a lock, appends to
 * a bounded in-memory queue and signals; it never touches SQLite. The writer
 * thread drains the queue in batches, one transaction per batch (group
 * commit), into the predictions table (sql/schema.sql) in WAL mode.
 *
 * Guarantees:
 * - A row is removed from the queue only after its transaction committed;
 *   a failed or busy commit is retried, never silently dropped.
 * - When the queue is full, the new row is dropped, counted (dropped) and
 *   reported on stderr; the request is still answered. The queue holds
 *   `capacity` rows (default AUDIT_QUEUE_DEFAULT).
 * - audit_close() writes every queued row before returning (giving up only
 *   after AUDIT_CLOSE_RETRY_MS of continuous failure, and counting what it
 *   could not write as dropped).
 * - Several processes may write one file: each commit waits for the lock
 *   (busy timeout) and is retried.
 * - In durable mode (audit_set_durable), audit_wait() lets a request wait
 *   until its rows are committed (synchronous=FULL), so an answer is sent
 *   only for a prediction that is on disk; commits are still grouped.
 * - With a retention of N days, the writer deletes rows older than that,
 *   in small batches, at start and then at most once a minute.
 *
 * Shared state, all in struct audit behind `lock`: the queue, the counters
 * and the health flag. The SQLite connection belongs to the writer thread. */
#ifndef MLFCGI_AUDIT_H
#define MLFCGI_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_QUEUE_DEFAULT 65536
#define AUDIT_BATCH_MAX 1024
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
};

struct audit_stats {
	uint64_t	enqueued;	/* rows accepted into the queue */
	uint64_t	written;	/* rows committed */
	uint64_t	dropped;	/* rows lost: queue full or given up */
	uint64_t	failures;	/* failed commit attempts */
	size_t		depth;		/* rows waiting now */
	uint64_t	last_commit_us;	/* duration of the last commit */
};

/* Opens (creating if needed) the database at path, applies the schema if
 * the database is new, and starts the writer thread. Returns NULL with a
 * message in err if the file cannot be opened or has a schema newer than
 * this program's. */
struct audit *audit_open(const char *path, size_t capacity, char *err,
	    size_t errlen);
/* Copies the row into the queue (one allocation). Returns 0, or -1 when
 * the queue is full or closing (the row is then counted as dropped).
 * Thread-safe; never blocks on the disk. audit_enqueue_ticket() also
 * gives the row's ticket for audit_wait(). */
int	audit_enqueue(struct audit *a, const struct audit_row *row);
int	audit_enqueue_ticket(struct audit *a, const struct audit_row *row,
	    unsigned long long *ticket);
/* Waits until every row up to ticket is committed, at most timeout_ms.
 * Returns 0 once they are, -1 on timeout. Thread-safe. */
int	audit_wait(struct audit *a, unsigned long long ticket, long timeout_ms);
/* Durable mode: synchronous=FULL, for callers that audit_wait(). Call
 * before the first row. */
void	audit_set_durable(struct audit *a);
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
