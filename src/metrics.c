/* metrics: counters, histograms and the Prometheus exposition (see
 * metrics.h). */
#include "metrics.h"
#include "cache.h"
#include "route.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define METRICS_SERIES_MAX 4096
#define METRICS_ROUTES_MAX 32

/* Latency histogram bucket bounds, seconds. */
static const double metrics_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001,
	0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
#define METRICS_NBOUNDS (sizeof(metrics_bounds) / sizeof(metrics_bounds[0]))

struct series {
	const char	*name;		/* a static metric name */
	char		*labels;	/* rendered: model="iris",... */
	uint64_t	 value;
};

struct histogram {
	const char	*route;		/* static route pattern */
	uint64_t	 buckets[METRICS_NBOUNDS];
	uint64_t	 count;
	double		 sum;
};

static struct {
	pthread_mutex_t	 lock;		/* guards everything below */
	struct series	 series[METRICS_SERIES_MAX];
	size_t		 n_series;
	uint64_t	 overflow;	/* increments that found no slot */
	struct histogram hist[METRICS_ROUTES_MAX];
	size_t		 n_hist;
	double		 start_time;
} M = { .lock = PTHREAD_MUTEX_INITIALIZER };

void
metrics_init(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	M.start_time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Writes a label value, escaped as the text format asks. */
static void
metrics_label(struct buf *b, const char *key, const char *val)
{
	if (b->len > 0)
		buf_putc(b, ',');
	buf_printf(b, "%s=\"", key);
	for (; *val != '\0'; val++) {
		if (*val == '\\' || *val == '"')
			buf_putc(b, '\\');
		if (*val == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *val);
	}
	buf_putc(b, '"');
}

/* Adds n to the series name{labels}. Caller holds the lock. */
static void
metrics_add_locked(const char *name, const char *labels, uint64_t n)
{
	size_t i;

	for (i = 0; i < M.n_series; i++)
		if (M.series[i].name == name &&
		    strcmp(M.series[i].labels, labels) == 0) {
			M.series[i].value += n;
			return;
		}
	if (M.n_series == METRICS_SERIES_MAX) {
		M.overflow += n;
		return;
	}
	M.series[M.n_series].name = name;
	M.series[M.n_series].labels = xstrdup(labels);
	M.series[M.n_series++].value = n;
}

static void
metrics_add(const char *name, const char *labels, uint64_t n)
{
	pthread_mutex_lock(&M.lock);
	metrics_add_locked(name, labels, n);
	pthread_mutex_unlock(&M.lock);
}

static void
metrics_model_labels(struct buf *b, const struct model *m)
{
	metrics_label(b, "model", m ? m->name : "");
	metrics_label(b, "version", m ? m->version : "");
}

void
metrics_request(const char *route, const struct model *m, int status,
    double seconds)
{
	struct buf l = BUF_INIT;
	struct histogram *h = NULL;
	char code[8];
	size_t i;

	metrics_model_labels(&l, m);
	metrics_label(&l, "route", route);
	snprintf(code, sizeof(code), "%d", status);
	metrics_label(&l, "status", code);
	pthread_mutex_lock(&M.lock);
	metrics_add_locked("mlfcgi_requests_total", l.data, 1);
	for (i = 0; i < M.n_hist; i++)
		if (M.hist[i].route == route)
			h = &M.hist[i];
	if (h == NULL && M.n_hist < METRICS_ROUTES_MAX) {
		h = &M.hist[M.n_hist++];
		h->route = route;
	}
	if (h != NULL) {
		for (i = 0; i < METRICS_NBOUNDS; i++)
			if (seconds <= metrics_bounds[i])
				h->buckets[i]++;
		h->count++;
		h->sum += seconds;
	}
	pthread_mutex_unlock(&M.lock);
	buf_free(&l);
}

void
metrics_predictions(const struct model *m, size_t n, size_t hits)
{
	struct buf l = BUF_INIT;

	metrics_model_labels(&l, m);
	pthread_mutex_lock(&M.lock);
	metrics_add_locked("mlfcgi_predictions_total", l.data, n);
	if (m->cache != NULL) {
		metrics_add_locked("mlfcgi_cache_hits_total", l.data, hits);
		metrics_add_locked("mlfcgi_cache_misses_total", l.data,
		    n - hits);
	}
	pthread_mutex_unlock(&M.lock);
	buf_free(&l);
}

void
metrics_validation(const struct verrs *v)
{
	struct buf l = BUF_INIT;
	size_t i;

	for (i = 0; i < v->n_types; i++) {
		buf_reset(&l);
		l.len = 0;
		metrics_label(&l, "type", v->types[i]);
		metrics_add("mlfcgi_validation_errors_total", l.data, 1);
	}
	buf_free(&l);
}

/* Writes every series of one metric, with its HELP and TYPE lines. */
static void
metrics_render_family(struct buf *b, const char *name, const char *type,
    const char *help, const char *pid)
{
	size_t i;
	int any = 0;

	for (i = 0; i < M.n_series; i++) {
		if (strcmp(M.series[i].name, name) != 0)
			continue;
		if (!any++)
			buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			    name, type);
		buf_printf(b, "%s{%s,%s} %llu\n", name, pid,
		    M.series[i].labels,
		    (unsigned long long)M.series[i].value);
	}
}

static long
metrics_rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * sysconf(_SC_PAGESIZE);
}

static void
metrics_render_caches(struct buf *b, const struct registry *r,
    const char *pid)
{
	size_t i;
	int any = 0;

	for (i = 0; i < r->n; i++) {
		const struct model *m = r->entries[i].model;
		struct buf l = BUF_INIT;
		uint64_t hits, misses;
		size_t entries;

		if (m == NULL || m->cache == NULL)
			continue;
		cache_counts(m->cache, &hits, &misses, &entries);
		if (!any++)
			buf_puts(b, "# HELP mlfcgi_cache_hit_ratio Cache hits "
			    "over lookups since the model was loaded.\n"
			    "# TYPE mlfcgi_cache_hit_ratio gauge\n");
		metrics_model_labels(&l, m);
		buf_printf(b, "mlfcgi_cache_hit_ratio{%s,%s} %.6f\n", pid,
		    l.data, hits + misses ? (double)hits / (hits + misses) : 0);
		buf_free(&l);
	}
}

static void
metrics_render_histograms(struct buf *b, const char *pid)
{
	size_t i, k;

	if (M.n_hist == 0)
		return;
	buf_puts(b, "# HELP mlfcgi_request_duration_seconds Time from a "
	    "request's arrival to its answer.\n"
	    "# TYPE mlfcgi_request_duration_seconds histogram\n");
	for (i = 0; i < M.n_hist; i++) {
		const struct histogram *h = &M.hist[i];

		for (k = 0; k < METRICS_NBOUNDS; k++)
			buf_printf(b, "mlfcgi_request_duration_seconds_bucket"
			    "{%s,route=\"%s\",le=\"%g\"} %llu\n", pid, h->route,
			    metrics_bounds[k],
			    (unsigned long long)h->buckets[k]);
		buf_printf(b, "mlfcgi_request_duration_seconds_bucket{%s,"
		    "route=\"%s\",le=\"+Inf\"} %llu\n", pid, h->route,
		    (unsigned long long)h->count);
		buf_printf(b, "mlfcgi_request_duration_seconds_sum{%s,"
		    "route=\"%s\"} %.9f\n", pid, h->route, h->sum);
		buf_printf(b, "mlfcgi_request_duration_seconds_count{%s,"
		    "route=\"%s\"} %llu\n", pid, h->route,
		    (unsigned long long)h->count);
	}
}

static void
metrics_render_audit(struct buf *b, struct audit *a, const char *pid)
{
	struct audit_stats st;

	if (a == NULL)
		return;
	audit_get_stats(a, &st);
	buf_printf(b, "# HELP mlfcgi_audit_queue_depth Audit rows waiting for "
	    "the writer.\n# TYPE mlfcgi_audit_queue_depth gauge\n"
	    "mlfcgi_audit_queue_depth{%s} %zu\n", pid, st.depth);
	buf_printf(b, "# HELP mlfcgi_audit_rows_written_total Audit rows "
	    "committed.\n# TYPE mlfcgi_audit_rows_written_total counter\n"
	    "mlfcgi_audit_rows_written_total{%s} %llu\n", pid,
	    (unsigned long long)st.written);
	buf_printf(b, "# HELP mlfcgi_audit_rows_dropped_total Audit rows lost "
	    "(queue full, or given up at exit).\n"
	    "# TYPE mlfcgi_audit_rows_dropped_total counter\n"
	    "mlfcgi_audit_rows_dropped_total{%s} %llu\n", pid,
	    (unsigned long long)st.dropped);
	buf_printf(b, "# HELP mlfcgi_audit_commit_failures_total Failed audit "
	    "commits (each retried).\n"
	    "# TYPE mlfcgi_audit_commit_failures_total counter\n"
	    "mlfcgi_audit_commit_failures_total{%s} %llu\n", pid,
	    (unsigned long long)st.failures);
	buf_printf(b, "# HELP mlfcgi_audit_batch_commit_seconds Duration of "
	    "the last audit batch commit.\n"
	    "# TYPE mlfcgi_audit_batch_commit_seconds gauge\n"
	    "mlfcgi_audit_batch_commit_seconds{%s} %.6f\n", pid,
	    st.last_commit_us / 1e6);
}

void
metrics_handle(struct route_call *c)
{
	struct buf *b = &c->res->body;
	char pid[32];

	snprintf(pid, sizeof(pid), "pid=\"%ld\"", (long)getpid());
	c->res->content_type = "text/plain; version=0.0.4; charset=utf-8";
	pthread_mutex_lock(&M.lock);
	metrics_render_family(b, "mlfcgi_requests_total", "counter",
	    "Requests answered, by model, route and status.", pid);
	metrics_render_histograms(b, pid);
	metrics_render_family(b, "mlfcgi_predictions_total", "counter",
	    "Instances predicted (a batch counts each).", pid);
	metrics_render_family(b, "mlfcgi_validation_errors_total", "counter",
	    "Validation errors in 422 answers, by type.", pid);
	metrics_render_family(b, "mlfcgi_cache_hits_total", "counter",
	    "Predictions answered from the cache.", pid);
	metrics_render_family(b, "mlfcgi_cache_misses_total", "counter",
	    "Predictions computed with the cache on.", pid);
	buf_printf(b, "# HELP mlfcgi_metrics_overflow_total Increments lost "
	    "for want of a series slot.\n"
	    "# TYPE mlfcgi_metrics_overflow_total counter\n"
	    "mlfcgi_metrics_overflow_total{%s} %llu\n", pid,
	    (unsigned long long)M.overflow);
	pthread_mutex_unlock(&M.lock);
	metrics_render_caches(b, c->reg, pid);
	metrics_render_audit(b, c->env->audit, pid);
	buf_printf(b, "# HELP process_start_time_seconds Start time of the "
	    "process since the epoch.\n"
	    "# TYPE process_start_time_seconds gauge\n"
	    "process_start_time_seconds{%s} %.3f\n", pid, M.start_time);
	buf_printf(b, "# HELP process_resident_memory_bytes Resident memory "
	    "size.\n# TYPE process_resident_memory_bytes gauge\n"
	    "process_resident_memory_bytes{%s} %ld\n", pid,
	    metrics_rss_bytes());
}
