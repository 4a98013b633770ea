/* predict_bench: times model_predict() over a file of rows, on one thread
 * and on several, and measures what loading a model costs.
 *
 *   predict_bench [--threads 1,2] [--batch 0,256] [--repeat N] [--out FILE]
 *                 MODEL ROWS
 *   predict_bench --load-only MODEL
 *
 * ROWS is raw native doubles, the model's schema.n values per row (NaN: a
 * missing value), as numpy's tofile() writes them. Each repetition predicts
 * every row once: with T threads the rows are split into T contiguous
 * ranges, each thread with its own scratch. Batch 0 calls model_predict()
 * per row; batch B calls model_predict_rows() on B rows at a time. Each
 * thread count is run with each batch size. The outputs of every run are
 * kept and each run must give, bit for bit, what the first gave; --out
 * writes them: per row the n_classes probabilities (0 without) and the
 * class index, or the regression value, as doubles.
 *
 * Prints "key=value" lines: model=, rows=, then per thread count and batch
 * "threads=T batch=B best=S median=S cpu=S rows_per_s=R": the shortest and
 * the median wall-clock seconds of a run over all rows, and the least CPU
 * seconds its threads took together. After one untimed run, the
 * configurations' runs alternate (the first of each, then the second of
 * each, ...);
 * with --load-only, load_s= and the memory counters (kB) instead. Exit
 * status 1 on any failure, 2 on a usage error. */
#include "model.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 256
#define MAX_REPEAT 1000

struct bench {
	const struct model	*m;
	const double		*rows;
	size_t			 n_rows;
	size_t			 width;		/* outputs per row */
	size_t			 batch;		/* rows per call, 0: one */
};

struct worker {
	const struct bench	*b;
	pthread_barrier_t	*start;
	double			*out;		/* the run's outputs, all rows */
	size_t			 begin, end;
	double			 t_start, t_end;	/* its own clock */
	double			 cpu;		/* its CPU seconds */
	pthread_t		 tid;
};

static double
clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* Copies prediction p into o (width doubles). */
static void
store(const struct bench *b, const struct prediction *p, double *o)
{
	const struct model *m = b->m;
	size_t k;

	if (m->task == MODEL_REGRESSION) {
		o[0] = p->value;
		return;
	}
	for (k = 0; k < m->n_classes; k++)
		o[k] = m->has_proba ? p->proba[k] : 0;
	o[m->n_classes] = (double)p->class_index;
}

/* Predicts rows [begin, end) of b into out (width doubles per row), one
 * by one or b->batch at a time; scratch holds max(1, batch) rows' worth,
 * preds max(1, batch) predictions. */
static void
predict_range(const struct bench *b, size_t begin, size_t end, double *scratch,
    struct prediction *preds, double *out)
{
	const struct model *m = b->m;
	size_t n = m->schema.n, i, j, k;

	if (b->batch == 0) {
		for (i = begin; i < end; i++) {
			model_predict(m, b->rows + i * n, scratch, preds);
			store(b, preds, out + i * b->width);
		}
		return;
	}
	for (i = begin; i < end; i += k) {
		k = end - i < b->batch ? end - i : b->batch;
		model_predict_rows(m, b->rows + i * n, k, scratch, preds);
		for (j = 0; j < k; j++)
			store(b, &preds[j], out + (i + j) * b->width);
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	size_t rows = w->b->batch > 0 ? w->b->batch : 1;
	double *scratch = calloc(rows * model_scratch_size(w->b->m) + 1,
	    sizeof(double));
	struct prediction *preds = calloc(rows, sizeof(*preds));

	if (scratch == NULL || preds == NULL) {
		perror("predict_bench: scratch");
		exit(1);
	}
	pthread_barrier_wait(w->start);
	w->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID);
	w->t_start = now();
	predict_range(w->b, w->begin, w->end, scratch, preds, w->out);
	w->t_end = now();
	w->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - w->cpu;
	free(scratch);
	free(preds);
	return NULL;
}

/* Predicts every row once on n_threads threads into out. Returns the
 * seconds from the first thread's start to the last one's end (each
 * thread reads the clock itself: the main thread may run late), and the
 * threads' CPU seconds in *cpu. */
static double
run_once(const struct bench *b, size_t n_threads, double *out, double *cpu)
{
	struct worker w[MAX_THREADS];
	pthread_barrier_t start;
	double first, last;
	size_t t;

	pthread_barrier_init(&start, NULL, (unsigned)n_threads + 1);
	for (t = 0; t < n_threads; t++) {
		w[t].b = b;
		w[t].start = &start;
		w[t].out = out;
		w[t].begin = b->n_rows * t / n_threads;
		w[t].end = b->n_rows * (t + 1) / n_threads;
		if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]) != 0) {
			fprintf(stderr, "predict_bench: cannot start a thread\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&start);
	for (t = 0; t < n_threads; t++)
		pthread_join(w[t].tid, NULL);
	pthread_barrier_destroy(&start);
	first = w[0].t_start;
	last = w[0].t_end;
	*cpu = w[0].cpu;
	for (t = 1; t < n_threads; t++) {
		*cpu += w[t].cpu;
		if (w[t].t_start < first)
			first = w[t].t_start;
		if (w[t].t_end > last)
			last = w[t].t_end;
	}
	return last - first;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The times of one configuration's runs (threads and batch size). */
struct figures {
	double	secs[MAX_REPEAT], cpu[MAX_REPEAT];
};

/* Runs once on n_threads threads (run r of the configuration), into f.
 * Returns 0, or -1 if the outputs differ from ref (which the first run of
 * all fills when *have_ref is 0). */
static int
bench_once(const struct bench *b, size_t n_threads, int r, double *ref,
    int *have_ref, double *out, struct figures *f)
{
	size_t bytes = b->n_rows * b->width * sizeof(double);

	memset(out, 0xff, bytes);
	f->secs[r] = run_once(b, n_threads, out, &f->cpu[r]);
	if (!*have_ref) {
		memcpy(ref, out, bytes);
		*have_ref = 1;
	} else if (memcmp(ref, out, bytes) != 0) {
		fprintf(stderr, "predict_bench: %zu threads, batch %zu, run %d: "
		    "outputs differ from the first run\n", n_threads, b->batch,
		    r + 1);
		return -1;
	}
	return 0;
}

/* Prints the line of a configuration's repeat runs (sorts f). */
static void
bench_print(const struct bench *b, size_t n_threads, int repeat,
    struct figures *f)
{
	qsort(f->secs, (size_t)repeat, sizeof(double), cmp_double);
	qsort(f->cpu, (size_t)repeat, sizeof(double), cmp_double);
	printf("threads=%zu batch=%zu best=%.6f median=%.6f cpu=%.6f "
	    "rows_per_s=%.0f\n", n_threads, b->batch, f->secs[0],
	    f->secs[repeat / 2], f->cpu[0], (double)b->n_rows / f->secs[0]);
	fflush(stdout);
}

/* Reads the rows file: n_cols doubles per row. Returns the rows (and
 * their number in *n_rows), or NULL after printing why. */
static double *
read_rows(const char *path, size_t n_cols, size_t *n_rows)
{
	FILE *f = fopen(path, "rb");
	double *rows = NULL;
	long size;

	if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0) {
		fprintf(stderr, "predict_bench: %s: %s\n", path, strerror(errno));
		goto done;
	}
	if (size == 0 || (size_t)size % (n_cols * sizeof(double)) != 0) {
		fprintf(stderr, "predict_bench: %s: %ld bytes is not a whole "
		    "number of rows of %zu doubles\n", path, size, n_cols);
		goto done;
	}
	*n_rows = (size_t)size / (n_cols * sizeof(double));
	rows = malloc((size_t)size);
	if (rows == NULL || fread(rows, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "predict_bench: %s: short read\n", path);
		free(rows);
		rows = NULL;
	}
done:
	if (f != NULL)
		fclose(f);
	return rows;
}

/* Returns the kB of a "Name:   N kB" line of /proc/self/status, or -1. */
static long
status_kb(const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t len = strlen(name);
	long kb = -1;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, len) == 0 && line[len] == ':') {
			kb = strtol(line + len + 1, NULL, 10);
			break;
		}
	if (f != NULL)
		fclose(f);
	return kb;
}

/* Loads the model, printing what that took: seconds, the heap bytes the
 * loaded model holds, and resident memory before, at its peak, and after
 * (the heap trimmed, so memory the loader freed is not counted). */
static int
load_only(const char *path)
{
	struct mallinfo2 before = mallinfo2(), after;
	long rss0 = status_kb("VmRSS"), hwm0 = status_kb("VmHWM");
	struct model_err err;
	struct model *m;
	double t = now();

	m = model_load_file(path, &err);
	t = now() - t;
	if (m == NULL) {
		fprintf(stderr, "predict_bench: %s\n", err.msg);
		return 1;
	}
	malloc_trim(0);
	after = mallinfo2();
	printf("model=%s load_s=%.6f heap_kb=%zu rss_before_kb=%ld "
	    "hwm_before_kb=%ld hwm_kb=%ld rss_after_kb=%ld\n", m->name, t,
	    ((after.uordblks + after.hblkhd) - (before.uordblks +
	    before.hblkhd)) / 1024, rss0, hwm0, status_kb("VmHWM"),
	    status_kb("VmRSS"));
	model_free(m);
	return 0;
}

/* Parses "1,2,4" (each from lo to hi) into v[]. Returns how many, or 0
 * if malformed. */
static size_t
parse_list(const char *s, long lo, long hi, size_t *v, size_t max)
{
	size_t n = 0;
	char *end;

	while (n < max) {
		long x = strtol(s, &end, 10);

		if (end == s || x < lo || x > hi)
			return 0;
		v[n++] = (size_t)x;
		if (*end == '\0')
			return n;
		if (*end != ',')
			return 0;
		s = end + 1;
	}
	return 0;
}

static int
usage(void)
{
	fprintf(stderr, "usage: predict_bench [--threads 1,2] [--batch 0,256] "
	    "[--repeat N] [--out FILE] MODEL ROWS\n"
	    "       predict_bench --load-only MODEL\n");
	return 2;
}

static int
write_out(const char *path, const double *out, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(out, sizeof(double), n, f) != n ||
	    fclose(f) != 0) {
		fprintf(stderr, "predict_bench: %s: cannot write\n", path);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	size_t threads[16] = { 1 }, n_threads = 1, t;
	size_t batches[16] = { 0 }, n_batches = 1, k;
	const char *out_path = NULL;
	struct model_err err;
	struct bench b;
	struct figures *figs;
	double *ref, *out;
	int i, r, repeat = 5, have_ref = 0, rc = 0;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--load-only") == 0)
			return i + 2 == argc ? load_only(argv[i + 1]) : usage();
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--threads") == 0) {
			if ((n_threads = parse_list(argv[++i], 1, MAX_THREADS,
			    threads, 16)) == 0)
				return usage();
		} else if (strcmp(argv[i], "--batch") == 0) {
			if ((n_batches = parse_list(argv[++i], 0, 1000000,
			    batches, 16)) == 0)
				return usage();
		} else if (strcmp(argv[i], "--repeat") == 0) {
			repeat = atoi(argv[++i]);
			if (repeat < 1 || repeat > MAX_REPEAT)
				return usage();
		} else if (strcmp(argv[i], "--out") == 0)
			out_path = argv[++i];
		else
			return usage();
	}
	if (i + 2 != argc)
		return usage();
	if ((b.m = model_load_file(argv[i], &err)) == NULL) {
		fprintf(stderr, "predict_bench: %s\n", err.msg);
		return 1;
	}
	if ((b.rows = read_rows(argv[i + 1], b.m->schema.n, &b.n_rows)) == NULL)
		return 1;
	b.width = b.m->task == MODEL_REGRESSION ? 1 : b.m->n_classes + 1;
	ref = calloc(b.n_rows * b.width, sizeof(double));
	out = calloc(b.n_rows * b.width, sizeof(double));
	figs = calloc(n_batches * n_threads, sizeof(*figs));
	if (ref == NULL || out == NULL || figs == NULL) {
		fprintf(stderr, "predict_bench: out of memory\n");
		return 1;
	}
	printf("model=%s rows=%zu inputs=%zu\n", b.m->name, b.n_rows,
	    b.m->n_inputs);
	/* One untimed run (it fills ref), then run r of every
	 * configuration, then run r + 1 of each: a stretch of time when the
	 * machine is slower falls on all of them. */
	b.batch = batches[0];
	rc = bench_once(&b, threads[0], 0, ref, &have_ref, out, &figs[0]);
	for (r = 0; r < repeat && rc == 0; r++)
		for (k = 0; k < n_batches && rc == 0; k++)
			for (t = 0; t < n_threads && rc == 0; t++) {
				b.batch = batches[k];
				rc = bench_once(&b, threads[t], r, ref,
				    &have_ref, out, &figs[k * n_threads + t]);
			}
	for (k = 0; k < n_batches && rc == 0; k++)
		for (t = 0; t < n_threads; t++) {
			b.batch = batches[k];
			bench_print(&b, threads[t], repeat,
			    &figs[k * n_threads + t]);
		}
	free(figs);
	if (rc == 0 && out_path != NULL)
		rc = write_out(out_path, ref, b.n_rows * b.width);
	free(ref);
	free(out);
	free((void *)b.rows);
	model_free((struct model *)b.m);
	return rc == 0 ? 0 : 1;
}
