/* audit_rate: the audit writer's throughput on its own, for bench/run.
 *
 *     audit_rate DB ROWS
 *
 * Opens a new audit log at DB (src/audit.h), enqueues ROWS iris-like rows
 * from one thread as fast as it can (queue capacity ROWS, so none is
 * dropped), then audit_close() writes what is still queued. Prints one line:
 *
 *     rows=N written=N dropped=N enqueue_s=S total_s=S enqueue_rows_per_s=R rows_per_s=R
 *
 * where total_s runs from the first enqueue to audit_close() returning (every
 * row committed). Exit status 1 on any error or dropped row. */
#include "audit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	static const char input[] = "{\"sepal_length\":5.1,\"sepal_width\":3.5,"
	    "\"petal_length\":1.4,\"petal_width\":0.2}";
	static const char output[] = "{\"prediction\":0,\"label\":\"setosa\","
	    "\"confidence\":0.98158575624051,\"probabilities\":{\"setosa\":"
	    "0.98158575624051,\"versicolor\":0.0184142292685,\"virginica\":"
	    "1.44909087266e-08}}";
	struct audit *a;
	struct audit_stats st;
	struct audit_row row = { 0 };
	char err[256], rid[40];
	long rows, i;
	double t0, t1, t2;

	if (argc != 3 || (rows = strtol(argv[2], NULL, 10)) < 1) {
		fprintf(stderr, "usage: audit_rate DB ROWS\n");
		return 2;
	}
	a = audit_open(argv[1], (size_t)rows, err, sizeof(err));
	if (a == NULL) {
		fprintf(stderr, "audit_rate: %s\n", err);
		return 1;
	}
	row.model = "iris";
	row.version = "1.0.0";
	row.input = input;
	row.output = output;
	row.request_id = rid;
	t0 = now_s();
	for (i = 0; i < rows; i++) {
		snprintf(rid, sizeof(rid), "bench%027ld", i);
		row.ts_ms = (int64_t)(t0 * 1000);
		row.latency_us = 100 + i % 50;
		if (audit_enqueue(a, &row) != 0)
			break;
	}
	t1 = now_s();
	audit_get_stats(a, &st);
	audit_close(a);
	t2 = now_s();
	/* audit_close() freed a; rows not yet written at the snapshot were
	 * written by it unless it reported otherwise on stderr. */
	printf("rows=%ld enqueued=%" PRIu64 " dropped=%" PRIu64
	    " enqueue_s=%.3f total_s=%.3f enqueue_rows_per_s=%.0f"
	    " rows_per_s=%.0f\n", rows, st.enqueued, st.dropped, t1 - t0,
	    t2 - t0, (double)rows / (t1 - t0), (double)rows / (t2 - t0));
	return i == rows && st.dropped == 0 ? 0 : 1;
}
