/* Unit tests: the SQLite audit log (queue, writer thread, schema), read
 * back with the sqlite3 API. Each test works in its own mkdtemp directory
 * under /tmp and removes it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"

struct tmp {
	char	dir[64];
	char	db[128];
};

static int
setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/mlfcgi-audit-XXXXXX");
	if (mkdtemp(t->dir) == NULL) {
		free(t);
		return -1;
	}
	snprintf(t->db, sizeof(t->db), "%s/audit.db", t->dir);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tmp *t = *state;
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char path[160];
	size_t i;

	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", t->db, suffix[i]);
		unlink(path);
	}
	rmdir(t->dir);
	free(t);
	return 0;
}

static sqlite3 *
db_open(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* Runs a query returning one integer. */
static long long
db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Runs a query returning one text value, into out. */
static void
db_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static long long
count_rows(const char *path)
{
	sqlite3 *db = db_open(path);
	long long n = db_int(db, "SELECT count(*) FROM predictions");

	sqlite3_close(db);
	return n;
}

static struct audit *
open_ok(const char *path, size_t capacity)
{
	char err[256] = "";
	struct audit *a = audit_open(path, capacity, err, sizeof(err));

	if (a == NULL)
		print_error("audit_open: %s\n", err);
	assert_non_null(a);
	return a;
}

static void
row_make(struct audit_row *r, int64_t ts_ms, const char *rid)
{
	memset(r, 0, sizeof(*r));
	r->ts_ms = ts_ms;
	r->latency_us = 1234;
	r->cached = 0;
	r->request_id = rid;
	r->model = "iris";
	r->version = "1.0.0";
	r->input = "{\"x\":1}";
	r->output = "{\"prediction\":0}";
}

/* Waits (at most 5 s) until the writer has committed n rows in total. */
static void
wait_written(struct audit *a, uint64_t n)
{
	struct audit_stats st;
	int i;

	for (i = 0; i < 5000; i++) {
		audit_get_stats(a, &st);
		if (st.written >= n)
			return;
		usleep(1000);
	}
	audit_get_stats(a, &st);
	assert_int_equal(st.written, n);
}

/* ---- schema --------------------------------------------------------------- */

static void
test_open_creates_schema(void **state)
{
	struct tmp *t = *state;
	static const char *const cols[] = { "id", "ts", "request_id", "model",
	    "version", "input", "output", "latency_us", "cached", "pid" };
	struct audit *a;
	sqlite3 *db;
	sqlite3_stmt *st;
	char mode[32];
	size_t i = 0;

	a = open_ok(t->db, 0);
	assert_int_equal(access(t->db, F_OK), 0);
	db = db_open(t->db);
	assert_int_equal(db_int(db, "PRAGMA user_version"),
	    AUDIT_SCHEMA_VERSION);
	db_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	assert_int_equal(db_int(db, "PRAGMA page_size"), 16384);
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions"), 0);
	assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master WHERE "
	    "type = 'index' AND name = 'predictions_ts'"), 1);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA table_info(predictions)",
	    -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		assert_true(i < sizeof(cols) / sizeof(cols[0]));
		assert_string_equal((const char *)sqlite3_column_text(st, 1),
		    cols[i]);
		i++;
	}
	sqlite3_finalize(st);
	assert_int_equal(i, sizeof(cols) / sizeof(cols[0]));
	sqlite3_close(db);
	audit_close(a);

	/* Opening an existing database keeps it (and its rows). */
	{
		struct audit_row r;

		a = open_ok(t->db, 0);
		row_make(&r, 0, "one");
		assert_int_equal(audit_enqueue(a, &r), 0);
		audit_close(a);
		a = open_ok(t->db, 0);
		audit_close(a);
		assert_int_equal(count_rows(t->db), 1);
	}
}

/* A database made with SQLite's default 4 KiB pages (as by an mlfcgi before
 * 16 KiB pages) keeps them, and its rows, and takes new ones. */
static void
test_open_keeps_page_size(void **state)
{
	struct tmp *t = *state;
	struct audit_row r;
	struct audit *a;
	sqlite3 *db;
	char ok[16];

	db = db_open(t->db);
	assert_int_equal(sqlite3_exec(db, "PRAGMA page_size=4096; "
	    "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, audit_schema_sql, NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO predictions (ts, "
	    "request_id, model, version, input, output, latency_us, pid) "
	    "VALUES ('2026-01-01T00:00:00.000Z', 'old', 'iris', '1.0.0', '{}', "
	    "'{}', 1, 1)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	a = open_ok(t->db, 0);
	row_make(&r, 0, "new");
	assert_int_equal(audit_enqueue(a, &r), 0);
	audit_close(a);
	db = db_open(t->db);
	assert_int_equal(db_int(db, "PRAGMA page_size"), 4096);
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions WHERE "
	    "request_id IN ('old', 'new')"), 2);
	db_text(db, "PRAGMA integrity_check", ok, sizeof(ok));
	assert_string_equal(ok, "ok");
	sqlite3_close(db);
}

static void
test_open_newer_schema_fails(void **state)
{
	struct tmp *t = *state;
	char err[256] = "";
	sqlite3 *db;

	db = db_open(t->db);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL,
	    NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_null(audit_open(t->db, 0, err, sizeof(err)));
	assert_string_equal(err, "schema version 99 is newer than this "
	    "mlfcgi's (1)");
	/* And nothing was created in it. */
	db = db_open(t->db);
	assert_int_equal(db_int(db, "SELECT count(*) FROM sqlite_master"), 0);
	assert_int_equal(db_int(db, "PRAGMA user_version"), 99);
	sqlite3_close(db);
}

static void
test_open_bad_paths(void **state)
{
	struct tmp *t = *state;
	char err[256] = "", path[200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/no/such/dir/audit.db", t->dir);
	assert_null(audit_open(path, 0, err, sizeof(err)));
	assert_true(strncmp(err, path, strlen(path)) == 0);

	/* A file that is not a database. */
	f = fopen(t->db, "w");
	assert_non_null(f);
	fputs("this is not an SQLite database, not even close: "
	    "0123456789abcdef0123456789abcdef0123456789abcdef\n", f);
	fclose(f);
	err[0] = '\0';
	assert_null(audit_open(t->db, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "not a database"));
}

/* ---- rows ----------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 250

struct producer {
	struct audit	*a;
	int		 id;
	int		 failed;
};

static void *
produce(void *arg)
{
	struct producer *p = arg;
	char rid[32], input[64], output[64];
	struct audit_row r;
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		snprintf(rid, sizeof(rid), "t%d-%d", p->id, i);
		snprintf(input, sizeof(input), "{\"t\":%d,\"i\":%d}", p->id, i);
		snprintf(output, sizeof(output), "{\"prediction\":%d}", i % 3);
		row_make(&r, 1764460799123 + i, rid);
		r.latency_us = p->id * 100000 + i;
		r.cached = i % 2;
		r.input = input;
		r.output = output;
		if (audit_enqueue(p->a, &r) != 0)
			p->failed++;
	}
	return NULL;
}

static void
test_threads_all_rows_written(void **state)
{
	struct tmp *t = *state;
	struct producer prod[THREADS];
	pthread_t th[THREADS];
	struct audit_stats st;
	struct audit *a;
	sqlite3 *db;
	sqlite3_stmt *q;
	regex_t re;
	char why[128];
	int i, n = 0;

	a = open_ok(t->db, 0);
	for (i = 0; i < THREADS; i++) {
		prod[i].a = a, prod[i].id = i, prod[i].failed = 0;
		assert_int_equal(pthread_create(&th[i], NULL, produce, &prod[i]),
		    0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(prod[i].failed, 0);
	}
	wait_written(a, THREADS * PER_THREAD);
	audit_get_stats(a, &st);
	assert_int_equal(st.enqueued, THREADS * PER_THREAD);
	assert_int_equal(st.written, THREADS * PER_THREAD);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.depth, 0);
	assert_int_equal(audit_healthy(a, why, sizeof(why)), 1);
	audit_close(a);

	db = db_open(t->db);
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions"),
	    THREADS * PER_THREAD);
	assert_int_equal(db_int(db, "SELECT count(DISTINCT request_id) FROM "
	    "predictions"), THREADS * PER_THREAD);
	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
	    "[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$", REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT ts, request_id, model, "
	    "version, input, output, latency_us, cached, pid FROM predictions",
	    -1, &q, NULL), SQLITE_OK);
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *ts = (const char *)sqlite3_column_text(q, 0);
		const char *rid = (const char *)sqlite3_column_text(q, 1);
		char want[64];
		int tid, k;

		assert_int_equal(regexec(&re, ts, 0, NULL, 0), 0);
		assert_int_equal(sscanf(rid, "t%d-%d", &tid, &k), 2);
		assert_in_range(tid, 0, THREADS - 1);
		assert_in_range(k, 0, PER_THREAD - 1);
		/* 1764460799123 ms is 2025-11-29T23:59:59.123Z. */
		snprintf(want, sizeof(want), "2025-11-29T23:59:59.%03dZ",
		    123 + k);
		assert_string_equal(ts, want);
		assert_string_equal(sqlite3_column_text(q, 2), "iris");
		assert_string_equal(sqlite3_column_text(q, 3), "1.0.0");
		snprintf(want, sizeof(want), "{\"t\":%d,\"i\":%d}", tid, k);
		assert_string_equal(sqlite3_column_text(q, 4), want);
		snprintf(want, sizeof(want), "{\"prediction\":%d}", k % 3);
		assert_string_equal(sqlite3_column_text(q, 5), want);
		assert_int_equal(sqlite3_column_int64(q, 6), tid * 100000 + k);
		assert_int_equal(sqlite3_column_int(q, 7), k % 2);
		assert_int_equal(sqlite3_column_int64(q, 8), (long long)getpid());
		n++;
	}
	sqlite3_finalize(q);
	regfree(&re);
	assert_int_equal(n, THREADS * PER_THREAD);
	/* Each thread's rows are in the order it enqueued them. */
	for (i = 0; i < THREADS; i++) {
		char sql[256];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM predictions a "
		    "JOIN predictions b ON a.request_id LIKE 't%d-%%' AND "
		    "b.request_id LIKE 't%d-%%' AND a.id < b.id AND "
		    "a.latency_us > b.latency_us", i, i);
		assert_int_equal(db_int(db, sql), 0);
	}
	sqlite3_close(db);
}

static void
test_ts_format(void **state)
{
	struct tmp *t = *state;
	static const struct {
		int64_t		 ms;
		const char	*ts;
	} cases[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 5, "1970-01-01T00:00:00.005Z" },
		{ 1764460799123, "2025-11-29T23:59:59.123Z" },
		{ 951782400999, "2000-02-29T00:00:00.999Z" },
		{ 4102444800000, "2100-01-01T00:00:00.000Z" },
	};
	struct audit *a;
	sqlite3 *db;
	size_t i;

	a = open_ok(t->db, 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct audit_row r;
		char rid[16];

		snprintf(rid, sizeof(rid), "r%zu", i);
		row_make(&r, cases[i].ms, rid);
		assert_int_equal(audit_enqueue(a, &r), 0);
	}
	audit_close(a);
	db = db_open(t->db);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sql[96], ts[64];

		snprintf(sql, sizeof(sql), "SELECT ts FROM predictions WHERE "
		    "request_id = 'r%zu'", i);
		db_text(db, sql, ts, sizeof(ts));
		assert_string_equal(ts, cases[i].ts);
	}
	sqlite3_close(db);
}

/* ---- a locked database ------------------------------------------------- */

static void
test_queue_full_while_locked(void **state)
{
	struct tmp *t = *state;
	struct audit_stats st;
	struct audit_row r;
	struct audit *a;
	sqlite3 *other;
	char why[128] = "", rid[16];
	int i;

	a = open_ok(t->db, 4);
	assert_int_equal(audit_healthy(a, why, sizeof(why)), 1);
	/* Another connection (another process, say) holds the write lock. */
	other = db_open(t->db);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	for (i = 0; i < 6; i++) {
		snprintf(rid, sizeof(rid), "q%d", i);
		row_make(&r, 1000 + i, rid);
		/* Four fit; the rest are dropped, not waited for. */
		assert_int_equal(audit_enqueue(a, &r), i < 4 ? 0 : -1);
	}
	audit_get_stats(a, &st);
	assert_int_equal(st.enqueued, 4);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.written, 0);
	assert_int_equal(st.depth, 4);
	/* A full queue is not healthy. */
	assert_int_equal(audit_healthy(a, why, sizeof(why)), 0);
	assert_string_equal(why, "audit log: queue full");
	/* Nothing reached the table yet. */
	assert_int_equal(db_int(other, "SELECT count(*) FROM predictions"), 0);

	/* Unlocked: close writes every queued row. */
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	audit_close(a);
	assert_int_equal(db_int(other, "SELECT count(*) FROM predictions"), 4);
	assert_int_equal(db_int(other, "SELECT count(*) FROM predictions "
	    "WHERE request_id IN ('q0', 'q1', 'q2', 'q3')"), 4);
	sqlite3_close(other);
}

/* The queue's bytes: rows of 300 KB with a 1 MiB cap, the writer locked
 * out: three fit, the rest are dropped, /ready says full; once they are
 * committed, a row of 2 MiB goes into the empty queue. */
static void
test_queue_bytes_full_while_locked(void **state)
{
	struct tmp *t = *state;
	struct audit_stats st;
	struct audit_row r;
	struct audit *a;
	sqlite3 *other;
	char why[128] = "", rid[16], *wide;
	size_t big = 2 << 20;
	int i;

	wide = malloc(big + 1);
	assert_non_null(wide);
	memset(wide, 'x', big);
	a = open_ok(t->db, 100);
	audit_set_queue_bytes(a, 1 << 20);
	other = db_open(t->db);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	wide[300000] = '\0';
	for (i = 0; i < 5; i++) {
		snprintf(rid, sizeof(rid), "w%d", i);
		row_make(&r, 0, rid);
		r.output = wide;
		assert_int_equal(audit_enqueue(a, &r), i < 3 ? 0 : -1);
	}
	audit_get_stats(a, &st);
	assert_int_equal(st.enqueued, 3);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.depth, 3);
	assert_true(st.bytes > 900000 && st.bytes <= 1 << 20);
	assert_int_equal(audit_healthy(a, why, sizeof(why)), 0);
	assert_string_equal(why, "audit log: queue full");
	/* A small row does not fit either until the writer makes room. */
	row_make(&r, 0, "small");
	assert_int_equal(audit_enqueue(a, &r), -1);

	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	wait_written(a, 3);
	audit_get_stats(a, &st);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(audit_healthy(a, why, sizeof(why)), 1);
	/* Larger than the cap, into an empty queue: taken. */
	wide[300000] = 'x';
	wide[big] = '\0';
	row_make(&r, 0, "huge");
	r.output = wide;
	assert_int_equal(audit_enqueue(a, &r), 0);
	audit_close(a);
	assert_int_equal(db_int(other, "SELECT count(*) FROM predictions"), 4);
	assert_int_equal(db_int(other, "SELECT length(output) FROM predictions "
	    "WHERE request_id = 'huge'"), (long long)big);
	sqlite3_close(other);
	free(wide);
}

static void
test_healthy_again_after_unlock(void **state)
{
	struct tmp *t = *state;
	struct audit_stats st;
	struct audit_row r;
	struct audit *a;
	sqlite3 *other;
	char why[128] = "";

	a = open_ok(t->db, 2);
	other = db_open(t->db);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	row_make(&r, 0, "h0");
	assert_int_equal(audit_enqueue(a, &r), 0);
	row_make(&r, 0, "h1");
	assert_int_equal(audit_enqueue(a, &r), 0);
	assert_int_equal(audit_healthy(a, why, sizeof(why)), 0);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	/* The writer catches up and the queue drains. */
	wait_written(a, 2);
	audit_get_stats(a, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(audit_healthy(a, why, sizeof(why)), 1);
	row_make(&r, 0, "h2");
	assert_int_equal(audit_enqueue(a, &r), 0);
	audit_close(a);
	sqlite3_close(other);
	assert_int_equal(count_rows(t->db), 3);
}

/* The writer yields the CPU after each 16-row statement only while its
 * batch is on time: until the batch's oldest row is half of
 * --audit-flush-ms old. Rows that waited for another connection's lock
 * are written without a yield. */
static void
test_yield_only_while_on_time(void **state)
{
	struct tmp *t = *state;
	struct audit_stats st;
	struct audit_row r;
	struct audit *a;
	sqlite3 *other;
	char rid[16];
	uint64_t fresh;
	int i;

	a = open_ok(t->db, 4096);
	/* On time: a 1,000 ms window; 1,024 rows start a batch at once. */
	audit_set_flush_ms(a, 2000);
	for (i = 0; i < 1024; i++) {
		snprintf(rid, sizeof(rid), "y%d", i);
		row_make(&r, 0, rid);
		assert_int_equal(audit_enqueue(a, &r), 0);
	}
	wait_written(a, 1024);
	audit_get_stats(a, &st);
	fresh = st.yields;
	assert_true(fresh > 0);
	assert_true(fresh <= 1024 / 16);

	/* Late: 64 rows queued behind a lock held 200 ms, with a 50 ms
	 * window. */
	audit_set_flush_ms(a, 100);
	other = db_open(t->db);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	for (i = 0; i < 64; i++) {
		snprintf(rid, sizeof(rid), "z%d", i);
		row_make(&r, 0, rid);
		assert_int_equal(audit_enqueue(a, &r), 0);
	}
	usleep(200 * 1000);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	wait_written(a, 1024 + 64);
	audit_get_stats(a, &st);
	assert_int_equal(st.yields, fresh);
	audit_close(a);
	sqlite3_close(other);
	assert_int_equal(count_rows(t->db), 1024 + 64);
}

/* ---- two writers on one file -------------------------------------------- */

struct pair_producer {
	struct audit	*a;
	char		 prefix;
	int		 n, failed;
};

static void *
produce_pair(void *arg)
{
	struct pair_producer *p = arg;
	struct audit_row r;
	char rid[32];
	int i;

	for (i = 0; i < p->n; i++) {
		snprintf(rid, sizeof(rid), "%c%d", p->prefix, i);
		row_make(&r, 1000, rid);
		if (audit_enqueue(p->a, &r) != 0)
			p->failed++;
		if (i % 50 == 0)
			usleep(500);	/* several batches each */
	}
	return NULL;
}

static void
test_two_handles_one_file(void **state)
{
	struct tmp *t = *state;
	struct pair_producer p1, p2;
	pthread_t t1, t2;
	struct audit *a1, *a2;
	sqlite3 *db;

	a1 = open_ok(t->db, 0);
	a2 = open_ok(t->db, 0);
	p1.a = a1, p1.prefix = 'a', p1.n = 600, p1.failed = 0;
	p2.a = a2, p2.prefix = 'b', p2.n = 400, p2.failed = 0;
	assert_int_equal(pthread_create(&t1, NULL, produce_pair, &p1), 0);
	assert_int_equal(pthread_create(&t2, NULL, produce_pair, &p2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(p1.failed, 0);
	assert_int_equal(p2.failed, 0);
	audit_close(a1);
	audit_close(a2);
	db = db_open(t->db);
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions"), 1000);
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions WHERE "
	    "request_id LIKE 'a%'"), 600);
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions WHERE "
	    "request_id LIKE 'b%'"), 400);
	assert_int_equal(db_int(db, "SELECT count(DISTINCT request_id) FROM "
	    "predictions"), 1000);
	assert_int_equal(db_int(db, "PRAGMA user_version"),
	    AUDIT_SCHEMA_VERSION);
	sqlite3_close(db);
}

static void
test_row_strings_copied(void **state)
{
	struct tmp *t = *state;
	struct audit_row r;
	struct audit *a;
	char rid[32], input[32];
	sqlite3 *db;
	char got[64];

	a = open_ok(t->db, 0);
	/* The caller's strings may change right after audit_enqueue(). */
	snprintf(rid, sizeof(rid), "copy-me");
	snprintf(input, sizeof(input), "{\"v\":\"\xC3\xA9'\"}");
	row_make(&r, 0, rid);
	r.input = input;
	r.cached = 1;
	assert_int_equal(audit_enqueue(a, &r), 0);
	memset(rid, 'X', sizeof(rid) - 1);
	memset(input, 'Y', sizeof(input) - 1);
	audit_close(a);
	db = db_open(t->db);
	db_text(db, "SELECT request_id FROM predictions", got, sizeof(got));
	assert_string_equal(got, "copy-me");
	db_text(db, "SELECT input FROM predictions", got, sizeof(got));
	assert_string_equal(got, "{\"v\":\"\xC3\xA9'\"}");
	assert_int_equal(db_int(db, "SELECT cached FROM predictions"), 1);
	assert_int_equal(db_int(db, "SELECT latency_us FROM predictions"),
	    1234);
	sqlite3_close(db);
}

/* ---- one request's rows, a moved file ---------------------------------- */

/* Rows with more set wait for the request's last row, then queue (and
 * commit) together; a group the queue has no room for is dropped whole. */
static void
test_group_queued_whole(void **state)
{
	struct tmp *t = *state;
	struct audit *a = open_ok(t->db, 3);
	struct audit_stats st;
	struct audit_row r;
	char rid[16];
	sqlite3 *db;
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(rid, sizeof(rid), "g-%d", i);
		row_make(&r, 1764460799123LL, rid);
		r.more = i < 2;
		assert_int_equal(audit_enqueue(a, &r), 0);
		audit_get_stats(a, &st);
		assert_int_equal(st.enqueued, i < 2 ? 0 : 3);
	}
	wait_written(a, 3);
	/* Four rows do not fit in a queue of three: all four dropped. */
	for (i = 0; i < 4; i++) {
		snprintf(rid, sizeof(rid), "h-%d", i);
		row_make(&r, 1764460799123LL, rid);
		r.more = i < 3;
		assert_int_equal(audit_enqueue(a, &r), i < 3 ? 0 : -1);
	}
	audit_get_stats(a, &st);
	assert_int_equal(st.enqueued, 3);
	assert_int_equal(st.dropped, 4);
	audit_close(a);
	db = db_open(t->db);
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions WHERE "
	    "request_id LIKE 'g-%'"), 3);
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions WHERE "
	    "request_id LIKE 'h-%'"), 0);
	sqlite3_close(db);
}

/* A batch the database refuses a row of (here a trigger, at the 21st of
 * 40 rows: in the second of the writer's several-row INSERTs, after rows of
 * the same statement) is rolled back whole: while it fails, none of its
 * rows is in the table; once the trigger is gone, every row is there
 * exactly once. */
static void
test_failed_batch_rolled_back_whole(void **state)
{
	struct tmp *t = *state;
	struct audit *a = open_ok(t->db, 100);
	struct audit_row r;
	char rid[16], why[128] = "";
	sqlite3 *db = db_open(t->db);
	int i;

	assert_int_equal(sqlite3_exec(db, "CREATE TRIGGER refuse BEFORE "
	    "INSERT ON predictions WHEN NEW.request_id = 'b-20' BEGIN "
	    "SELECT RAISE(FAIL, 'refused'); END", NULL, NULL, NULL),
	    SQLITE_OK);
	/* One request's rows: queued, and so written, together. */
	for (i = 0; i < 40; i++) {
		snprintf(rid, sizeof(rid), "b-%d", i);
		row_make(&r, 1764460799123LL, rid);
		r.more = i < 39;
		assert_int_equal(audit_enqueue(a, &r), 0);
	}
	for (i = 0; i < 5000 && audit_healthy(a, why, sizeof(why)); i++)
		usleep(1000);
	assert_non_null(strstr(why, "refused"));
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions"), 0);
	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER refuse", NULL, NULL,
	    NULL), SQLITE_OK);
	audit_close(a);
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions"), 40);
	assert_int_equal(db_int(db, "SELECT count(DISTINCT request_id) FROM "
	    "predictions"), 40);
	sqlite3_close(db);
}

/* The file renamed while open: the renamed file keeps the rows committed
 * before (checkpointed into it), the next rows go to a new file at the
 * path. */
/* Enqueues n rows of about 1 KiB each (ids prefix0 ..), and waits until
 * the writer has committed total rows. */
static void
enqueue_wide(struct audit *a, const char *prefix, int n, uint64_t total)
{
	static char out[1100];
	struct audit_row r;
	char rid[32];
	int i;

	memset(out, 0, sizeof(out));
	memcpy(out, "{\"prediction\":\"", 15);
	memset(out + 15, 'x', 1024);
	memcpy(out + 15 + 1024, "\"}", 2);
	for (i = 0; i < n; i++) {
		snprintf(rid, sizeof(rid), "%s%d", prefix, i);
		row_make(&r, 1764460799123LL, rid);
		r.output = out;
		assert_int_equal(audit_enqueue(a, &r), 0);
	}
	wait_written(a, total);
}

/* Waits (at most 5 s) for the checkpointer's first checkpoint. */
static void
wait_checkpoint(struct audit *a)
{
	struct audit_stats st;
	int i;

	for (i = 0; i < 5000; i++) {
		audit_get_stats(a, &st);
		if (st.checkpoints > 0)
			return;
		usleep(1000);
	}
	assert_true(st.checkpoints > 0);
}

/* 9 MiB of rows make the WAL pass 256 frames (4 MiB) twice, and stay under
 * AUDIT_WAL_MAX_FRAMES (16 MiB) even if it never starts over: the
 * checkpointer thread copies it into the database, not the writer. */
static void
test_checkpointer_checkpoints(void **state)
{
	struct tmp *t = *state;
	struct audit *a = open_ok(t->db, 0);
	struct audit_stats st;
	struct stat sb;

	enqueue_wide(a, "c", 8000, 8000);
	wait_checkpoint(a);
	audit_get_stats(a, &st);
	assert_int_equal(st.writer_checkpoints, 0);
	assert_int_equal(st.failures, 0);
	/* A checkpoint wrote rows into the file itself, open (the writer
	 * writes only the WAL; a new file's schema is 3 pages, 48 KiB). The
	 * first checkpoint copies 4 MiB of frames, some of them the same page
	 * again: more than 1 MiB of pages. */
	assert_int_equal(stat(t->db, &sb), 0);
	assert_true(sb.st_size > 1024 * 1024);
	audit_close(a);
	assert_int_equal(count_rows(t->db), 8000);
}

/* Bytes of the file at path in the OS page cache (mincore()). */
static long long
resident_bytes(const char *path)
{
	long page = sysconf(_SC_PAGESIZE);
	long long n = 0;
	struct stat sb;
	unsigned char *vec;
	void *map;
	size_t i, pages;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	pages = ((size_t)sb.st_size + page - 1) / page;
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	vec = malloc(pages);
	assert_non_null(vec);
	assert_int_equal(mincore(map, (size_t)sb.st_size, vec), 0);
	for (i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	munmap(map, (size_t)sb.st_size);
	close(fd);
	return n * page;
}

/* Checkpoints leave only the database's last 16 MiB in the OS page cache:
 * 100,000 rows of 1 KiB make about 115 MiB, at least 99 MiB of it in the
 * file (the WAL holds at most 16 MiB), of which a third at most may stay
 * cached (the tail, and a checkpoint in progress: 32 MiB at worst).
 * Without the drop every page stays. tmpfs pages are the file itself and
 * cannot be dropped: skipped there. */
static void
test_checkpoints_drop_cache(void **state)
{
	struct tmp *t = *state;
	struct audit *a = open_ok(t->db, 0);
	struct audit_stats st;
	struct statfs fs;
	struct stat sb;
	long long resident;

	assert_int_equal(statfs(t->dir, &fs), 0);
	if (fs.f_type == 0x01021994) {	/* TMPFS_MAGIC */
		audit_close(a);
		skip();
	}
	enqueue_wide(a, "c", 100000, 100000);
	wait_checkpoint(a);
	audit_get_stats(a, &st);
	assert_int_equal(st.failures, 0);
	assert_int_equal(stat(t->db, &sb), 0);
	assert_true(sb.st_size > 96LL << 20);
	resident = resident_bytes(t->db);
	print_message("database %lld MiB, %lld MiB of it cached\n",
	    (long long)sb.st_size >> 20, resident >> 20);
	assert_true(resident < sb.st_size / 3);
	audit_close(a);
	assert_int_equal(count_rows(t->db), 100000);
}

/* Asserts that the database at path holds n rows, all with request ids
 * starting with prefix, and passes integrity_check. */
static void
assert_only_rows(const char *path, const char *prefix, long long n)
{
	sqlite3 *db = db_open(path);
	char sql[128], ok[16];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM predictions WHERE "
	    "request_id LIKE '%s%%'", prefix);
	assert_int_equal(db_int(db, sql), n);
	assert_int_equal(db_int(db, "SELECT count(*) FROM predictions"), n);
	db_text(db, "PRAGMA integrity_check", ok, sizeof(ok));
	assert_string_equal(ok, "ok");
	sqlite3_close(db);
}

/* Removes the database at path and its -wal and -shm. */
static void
unlink_db(const char *path)
{
	char side[256];

	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

/* A move while the checkpointer works: the checkpointer's connection is
 * closed before the writer's, so neither file gets the other's WAL. */
static void
test_moved_file_with_checkpoints(void **state)
{
	struct tmp *t = *state;
	struct audit *a = open_ok(t->db, 0);
	struct audit_stats st;
	char moved[160];

	snprintf(moved, sizeof(moved), "%s.1", t->db);
	enqueue_wide(a, "before", 10000, 10000);
	wait_checkpoint(a);
	assert_int_equal(rename(t->db, moved), 0);
	enqueue_wide(a, "after", 10000, 20000);
	audit_get_stats(a, &st);
	assert_int_equal(st.reopened, 1);
	assert_int_equal(st.failures, 0);
	audit_close(a);

	assert_only_rows(moved, "before", 10000);
	assert_only_rows(t->db, "after", 10000);
	unlink_db(moved);
}

static void
test_moved_file_reopened(void **state)
{
	struct tmp *t = *state;
	struct audit *a = open_ok(t->db, 0);
	struct audit_stats st;
	struct audit_row r;
	char moved[160];

	snprintf(moved, sizeof(moved), "%s.1", t->db);
	row_make(&r, 1764460799123LL, "before");
	assert_int_equal(audit_enqueue(a, &r), 0);
	wait_written(a, 1);
	assert_int_equal(rename(t->db, moved), 0);
	row_make(&r, 1764460799123LL, "after");
	assert_int_equal(audit_enqueue(a, &r), 0);
	wait_written(a, 2);
	audit_get_stats(a, &st);
	assert_int_equal(st.reopened, 1);
	assert_int_equal(st.failures, 0);
	audit_close(a);

	assert_only_rows(moved, "before", 1);
	assert_only_rows(t->db, "after", 1);
	unlink_db(moved);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_schema, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_keeps_page_size, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_newer_schema_fails,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_bad_paths, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_threads_all_rows_written,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ts_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full_while_locked,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_queue_bytes_full_while_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_healthy_again_after_unlock,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_yield_only_while_on_time,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_handles_one_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_row_strings_copied, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_group_queued_whole, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_failed_batch_rolled_back_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints_drop_cache,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpointer_checkpoints,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_moved_file_with_checkpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moved_file_reopened, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
