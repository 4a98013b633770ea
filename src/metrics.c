/* metrics: counters, histograms and the Prometheus exposition (see
 * metrics.h). */
#include "metrics.h"
#include "cache.h"
#include "route.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define METRICS_SERIES_MAX 4096
#define METRICS_INDEX_SIZE 8192	/* a power of two, > 2 x METRICS_SERIES_MAX */
#define METRICS_ROUTES_MAX 32
#define METRICS_LABELS_MAX 512	/* rendered labels; model names are <= 64 */

/* Latency histogram bucket bounds, seconds. */
static const double metrics_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001,
	0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
#define METRICS_NBOUNDS (sizeof(metrics_bounds) / sizeof(metrics_bounds[0]))

struct series {
	const char		*name;		/* a static metric name */
	char			*labels;	/* rendered: model="iris",... */
	uint64_t		 hash;		/* of name and labels */
	_Atomic uint64_t	 value;
};

struct histogram {
	_Atomic(const char *)	 route;	/* static route pattern; set last */
	/* buckets[i]: answers in (bound[i-1], bound[i]]; the last one past
	 * every bound. Summed into Prometheus' cumulative form on render. */
	_Atomic uint64_t	 buckets[METRICS_NBOUNDS + 1];
	_Atomic uint64_t	 sum_ns;
};

/* Counting takes no lock: a series once made is found through index[] (an
 * open-addressed table of series numbers + 1, each slot written once, with
 * release, after its series is complete) and incremented atomically. The
 * lock serialises making series and histograms, and rendering. */
static struct {
	pthread_mutex_t		 lock;
	struct series		 series[METRICS_SERIES_MAX];
	_Atomic uint32_t	 index[METRICS_INDEX_SIZE];
	_Atomic size_t		 n_series;
	_Atomic uint64_t	 overflow;	/* increments that found no slot */
	struct histogram	 hist[METRICS_ROUTES_MAX];
	_Atomic size_t		 n_hist;
	double			 start_time;
} M = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Labels rendered on the stack: no allocation to count a request. */
struct metrics_labels {
	char	s[METRICS_LABELS_MAX];
	size_t	len;
	int	over;	/* did not fit: the increment goes to overflow */
};

void
metrics_init(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	M.start_time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
metrics_put(struct metrics_labels *l, const char *p, size_t n)
{
	if (l->over || n >= sizeof(l->s) - l->len) {
		l->over = 1;
		return;
	}
	memcpy(l->s + l->len, p, n);
	l->len += n;
	l->s[l->len] = '\0';
}

/* Appends key="val", val escaped as the text format asks. */
static void
metrics_label(struct metrics_labels *l, const char *key, const char *val)
{
	const char *run;

	if (l->len > 0)
		metrics_put(l, ",", 1);
	metrics_put(l, key, strlen(key));
	metrics_put(l, "=\"", 2);
	for (run = val; *val != '\0'; val++) {
		if (*val != '\\' && *val != '"' && *val != '\n')
			continue;
		metrics_put(l, run, (size_t)(val - run));
		metrics_put(l, *val == '\n' ? "\\n" : *val == '"' ? "\\\"" :
		    "\\\\", 2);
		run = val + 1;
	}
	metrics_put(l, run, (size_t)(val - run));
	metrics_put(l, "\"", 1);
}

static uint64_t
metrics_hash(const char *name, const char *labels)
{
	uint64_t h = 0xcbf29ce484222325u ^ (uint64_t)(uintptr_t)name;

	for (; *labels != '\0'; labels++)
		h = (h ^ (unsigned char)*labels) * 0x100000001b3u;
	return h ^ (h >> 29);
}

/* The series name{labels} with that hash, or NULL. Lock-free. */
static struct series *
metrics_find(const char *name, const char *labels, uint64_t h)
{
	size_t i = (size_t)h & (METRICS_INDEX_SIZE - 1);
	uint32_t k;

	while ((k = atomic_load_explicit(&M.index[i],
	    memory_order_acquire)) != 0) {
		struct series *s = &M.series[k - 1];

		if (s->hash == h && s->name == name &&
		    strcmp(s->labels, labels) == 0)
			return s;
		i = (i + 1) & (METRICS_INDEX_SIZE - 1);
	}
	return NULL;
}

/* The series name{labels}, made the first time; NULL when
 * METRICS_SERIES_MAX are taken or the labels did not fit. */
static struct series *
metrics_series(const char *name, const struct metrics_labels *l)
{
	struct series *s;
	uint64_t h;
	size_t k, i;

	if (l->over)
		return NULL;
	h = metrics_hash(name, l->s);
	if ((s = metrics_find(name, l->s, h)) != NULL)
		return s;
	pthread_mutex_lock(&M.lock);
	if ((s = metrics_find(name, l->s, h)) == NULL) {
		k = atomic_load_explicit(&M.n_series, memory_order_relaxed);
		if (k == METRICS_SERIES_MAX) {
			pthread_mutex_unlock(&M.lock);
			return NULL;
		}
		s = &M.series[k];
		s->name = name;
		s->labels = xstrdup(l->s);
		s->hash = h;
		atomic_init(&s->value, 0);
		for (i = (size_t)h & (METRICS_INDEX_SIZE - 1);
		    atomic_load_explicit(&M.index[i], memory_order_relaxed);
		    i = (i + 1) & (METRICS_INDEX_SIZE - 1))
			;
		atomic_store_explicit(&M.n_series, k + 1,
		    memory_order_release);
		atomic_store_explicit(&M.index[i], (uint32_t)k + 1,
		    memory_order_release);
	}
	pthread_mutex_unlock(&M.lock);
	return s;
}

/* Adds n to series s, or to the overflow count when s is NULL. */
static void
metrics_bump(struct series *s, uint64_t n)
{
	atomic_fetch_add_explicit(s != NULL ? &s->value : &M.overflow, n,
	    memory_order_relaxed);
}

/* Adds n to the series name{labels}, making it the first time. */
static void
metrics_add(const char *name, const struct metrics_labels *l, uint64_t n)
{
	metrics_bump(metrics_series(name, l), n);
}

/* Each thread remembers the series it counted a request and its
 * predictions in last: a server counts the same few series over and over,
 * and rendering, hashing and finding their labels was most of what
 * counting cost. A memo is keyed by the label values themselves (copies,
 * compared: a reload may give a new model the address of an old one), and
 * series are never freed, so a hit is the series a lookup would find. */
#define METRICS_MEMO_TEXT 64	/* longer names and versions: no memo */

struct metrics_memo {
	const char	*route;		/* static pattern; NULL: no route */
	int		 status;
	int		 valid;
	char		 model[METRICS_MEMO_TEXT];
	char		 version[METRICS_MEMO_TEXT];
	struct series	*s[3];
};

static _Thread_local struct metrics_memo metrics_memo_request,
    metrics_memo_predictions;

static int
metrics_memo_hit(const struct metrics_memo *c, const char *route,
    int status, const struct model *m)
{
	return c->valid && c->route == route && c->status == status &&
	    strcmp(c->model, m ? m->name : "") == 0 &&
	    strcmp(c->version, m ? m->version : "") == 0;
}

/* Keys c by its arguments; 0 when a value is too long to keep. */
static int
metrics_memo_key(struct metrics_memo *c, const char *route, int status,
    const struct model *m)
{
	const char *name = m ? m->name : "", *version = m ? m->version : "";
	size_t nl = strlen(name), vl = strlen(version);

	c->valid = 0;
	if (nl >= sizeof(c->model) || vl >= sizeof(c->version))
		return 0;
	memcpy(c->model, name, nl + 1);
	memcpy(c->version, version, vl + 1);
	c->route = route;
	c->status = status;
	return 1;
}

static void
metrics_model_labels(struct metrics_labels *l, const struct model *m)
{
	metrics_label(l, "model", m ? m->name : "");
	metrics_label(l, "version", m ? m->version : "");
}

/* The histogram of route (a static pattern), made the first time; NULL
 * when METRICS_ROUTES_MAX are taken. */
static struct histogram *
metrics_histogram(const char *route)
{
	size_t i, n = atomic_load_explicit(&M.n_hist, memory_order_acquire);

	for (i = 0; i < n; i++)
		if (atomic_load_explicit(&M.hist[i].route,
		    memory_order_acquire) == route)
			return &M.hist[i];
	pthread_mutex_lock(&M.lock);
	n = atomic_load_explicit(&M.n_hist, memory_order_relaxed);
	for (i = 0; i < n; i++)
		if (atomic_load_explicit(&M.hist[i].route,
		    memory_order_relaxed) == route)
			break;
	if (i == n && n < METRICS_ROUTES_MAX) {
		atomic_store_explicit(&M.hist[n].route, route,
		    memory_order_release);
		atomic_store_explicit(&M.n_hist, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&M.lock);
	return i < METRICS_ROUTES_MAX ? &M.hist[i] : NULL;
}

void
metrics_request(const char *route, const struct model *m, int status,
    double seconds)
{
	struct metrics_memo *c = &metrics_memo_request;
	struct metrics_labels l;
	struct histogram *h;
	char code[16];
	size_t i;
	int n = 0, st = status;

	if (!metrics_memo_hit(c, route, status, m)) {
		l.len = 0, l.over = 0, l.s[0] = '\0';
		metrics_model_labels(&l, m);
		metrics_label(&l, "route", route);
		/* status: 100..999 from the router; by hand, no printf. */
		if (st < 0 || st > 999999)
			st = 0;
		do {
			code[sizeof(code) - 2 - n++] = (char)('0' + st % 10);
			st /= 10;
		} while (st != 0);
		code[sizeof(code) - 1] = '\0';
		metrics_label(&l, "status", code + sizeof(code) - 1 - n);
		c->s[0] = metrics_series("mlfcgi_requests_total", &l);
		c->valid = metrics_memo_key(c, route, status, m) &&
		    c->s[0] != NULL;
	}
	metrics_bump(c->s[0], 1);
	if ((h = metrics_histogram(route)) == NULL)
		return;
	for (i = 0; i < METRICS_NBOUNDS; i++)
		if (seconds <= metrics_bounds[i])
			break;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, seconds > 0 ?
	    (uint64_t)(seconds * 1e9 + 0.5) : 0, memory_order_relaxed);
}

void
metrics_predictions(const struct model *m, size_t n, size_t hits)
{
	struct metrics_memo *c = &metrics_memo_predictions;
	struct metrics_labels l;
	int cached = m->cache != NULL;

	/* The cache's series exist only for a model with a cache. */
	if (!metrics_memo_hit(c, NULL, cached, m)) {
		l.len = 0, l.over = 0, l.s[0] = '\0';
		metrics_model_labels(&l, m);
		c->s[0] = metrics_series("mlfcgi_predictions_total", &l);
		c->s[1] = c->s[2] = NULL;
		if (cached) {
			c->s[1] = metrics_series("mlfcgi_cache_hits_total",
			    &l);
			c->s[2] = metrics_series("mlfcgi_cache_misses_total",
			    &l);
		}
		c->valid = metrics_memo_key(c, NULL, cached, m) &&
		    c->s[0] != NULL && (!cached || (c->s[1] != NULL &&
		    c->s[2] != NULL));
	}
	metrics_bump(c->s[0], n);
	if (cached) {
		metrics_bump(c->s[1], hits);
		metrics_bump(c->s[2], n - hits);
	}
}

void
metrics_validation(const struct verrs *v)
{
	struct metrics_labels l;
	size_t i;

	for (i = 0; i < v->n_types; i++) {
		l.len = 0, l.over = 0, l.s[0] = '\0';
		metrics_label(&l, "type", v->types[i]);
		metrics_add("mlfcgi_validation_errors_total", &l, 1);
	}
}

/* Writes every series of one metric, with its HELP and TYPE lines. */
static void
metrics_render_family(struct buf *b, const char *name, const char *type,
    const char *help, const char *pid)
{
	size_t i;
	int any = 0;

	size_t n = atomic_load_explicit(&M.n_series, memory_order_acquire);

	for (i = 0; i < n; i++) {
		if (strcmp(M.series[i].name, name) != 0)
			continue;
		if (!any++)
			buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			    name, type);
		buf_printf(b, "%s{%s,%s} %llu\n", name, pid,
		    M.series[i].labels,
		    (unsigned long long)atomic_load_explicit(
		    &M.series[i].value, memory_order_relaxed));
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
		struct metrics_labels l;
		uint64_t hits, misses;
		size_t entries;

		if (m == NULL || m->cache == NULL)
			continue;
		cache_counts(m->cache, &hits, &misses, &entries);
		if (!any++)
			buf_puts(b, "# HELP mlfcgi_cache_hit_ratio Cache hits "
			    "over lookups since the model was loaded.\n"
			    "# TYPE mlfcgi_cache_hit_ratio gauge\n");
		l.len = 0, l.over = 0, l.s[0] = '\0';
		metrics_model_labels(&l, m);
		buf_printf(b, "mlfcgi_cache_hit_ratio{%s,%s} %.6f\n", pid,
		    l.s, hits + misses ? (double)hits / (hits + misses) : 0);
	}
}

static void
metrics_render_histograms(struct buf *b, const char *pid)
{
	size_t i, k, n = atomic_load_explicit(&M.n_hist, memory_order_acquire);

	if (n == 0)
		return;
	buf_puts(b, "# HELP mlfcgi_request_duration_seconds Time from a "
	    "request's arrival to its answer.\n"
	    "# TYPE mlfcgi_request_duration_seconds histogram\n");
	for (i = 0; i < n; i++) {
		struct histogram *h = &M.hist[i];
		const char *route = atomic_load_explicit(&h->route,
		    memory_order_acquire);
		unsigned long long count = 0;

		/* Counts go on while we read: each line is at least the one
		 * before it, and the count is the +Inf bucket. */
		for (k = 0; k < METRICS_NBOUNDS; k++) {
			count += atomic_load_explicit(&h->buckets[k],
			    memory_order_relaxed);
			buf_printf(b, "mlfcgi_request_duration_seconds_bucket"
			    "{%s,route=\"%s\",le=\"%g\"} %llu\n", pid, route,
			    metrics_bounds[k], count);
		}
		count += atomic_load_explicit(&h->buckets[k],
		    memory_order_relaxed);
		buf_printf(b, "mlfcgi_request_duration_seconds_bucket{%s,"
		    "route=\"%s\",le=\"+Inf\"} %llu\n", pid, route, count);
		buf_printf(b, "mlfcgi_request_duration_seconds_sum{%s,"
		    "route=\"%s\"} %.9f\n", pid, route,
		    (double)atomic_load_explicit(&h->sum_ns,
		    memory_order_relaxed) / 1e9);
		buf_printf(b, "mlfcgi_request_duration_seconds_count{%s,"
		    "route=\"%s\"} %llu\n", pid, route, count);
	}
}

/* Writes one series of this process: its HELP and TYPE lines, then
 * name{pid} v, or v / 1e6 in seconds if micro (v in microseconds). */
static void
metrics_render_one(struct buf *b, const char *name, const char *type,
    const char *help, const char *pid, uint64_t v, int micro)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	if (micro)
		buf_printf(b, "%s{%s} %.6f\n", name, pid, (double)v / 1e6);
	else
		buf_printf(b, "%s{%s} %llu\n", name, pid,
		    (unsigned long long)v);
}

static void
metrics_render_audit(struct buf *b, struct audit *a, const char *pid)
{
	struct audit_stats st;
	size_t i;

	if (a == NULL)
		return;
	audit_get_stats(a, &st);
	{
		const struct {
			const char	*name, *type, *help;
			uint64_t	 v;
			int		 micro;
		} s[] = {
			{ "mlfcgi_audit_queue_depth", "gauge",
			  "Audit rows waiting for the writer.",
			  st.depth, 0 },
			{ "mlfcgi_audit_rows_written_total", "counter",
			  "Audit rows committed.", st.written, 0 },
			{ "mlfcgi_audit_rows_dropped_total", "counter",
			  "Audit rows lost (queue full, or given up at exit).",
			  st.dropped, 0 },
			{ "mlfcgi_audit_commit_failures_total", "counter",
			  "Failed audit commits (each retried).",
			  st.failures, 0 },
			{ "mlfcgi_audit_batch_commit_seconds", "gauge",
			  "Duration of the last audit batch commit.",
			  st.last_commit_us, 1 },
			{ "mlfcgi_audit_commits_total", "counter",
			  "Audit transactions committed.",
			  st.commits, 0 },
			{ "mlfcgi_audit_reopens_total", "counter",
			  "Audit database reopened (moved, deleted, replaced "
			  "or read-only).", st.reopened, 0 },
			{ "mlfcgi_audit_backpressure_waits_total", "counter",
			  "Requests that waited for the audit writer to catch "
			  "up.", st.waits, 0 },
			{ "mlfcgi_audit_checkpoints_total", "counter",
			  "Audit WAL checkpoints by the checkpointer thread.",
			  st.checkpoints, 0 },
			{ "mlfcgi_audit_checkpoint_seconds", "gauge",
			  "Duration of the checkpointer's last checkpoint.",
			  st.last_checkpoint_us, 1 },
			{ "mlfcgi_audit_writer_checkpoints_total", "counter",
			  "Audit WAL checkpoints the writer ran itself: the "
			  "checkpointer fell behind, or has no connection.",
			  st.writer_checkpoints, 0 },
		};

		for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
			metrics_render_one(b, s[i].name, s[i].type, s[i].help,
			    pid, s[i].v, s[i].micro);
	}
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
	    (unsigned long long)atomic_load_explicit(&M.overflow,
	    memory_order_relaxed));
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
