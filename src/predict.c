/* predict: POST /predict, from body bytes to a logged prediction. */
#include "cache.h"
#include "decode.h"
#include "metrics.h"
#include "route.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* How long a request waits for its audit rows in durable mode. */
#define PREDICT_SYNC_WAIT_MS 10000

/* Most rows predicted by one model_predict_rows() call: tree ensembles
 * walk each tree over this many rows (see model_tree.c). */
#define PREDICT_BLOCK 4096

/* The member that makes a request a batch. */
#define PREDICT_BATCH_KEY "instances"

enum body_kind {
	BODY_JSON,
	BODY_FORM,
	BODY_BAD_TYPE,
	BODY_BAD_CHARSET
};

/* Compares the media type in ct (up to ';') with want, ignoring case and
 * surrounding blanks. */
static int
predict_type_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* Returns 1 unless ct has a charset parameter other than UTF-8. */
static int
predict_charset_ok(const char *ct)
{
	const char *p = ct;

	while ((p = strchr(p, ';')) != NULL) {
		char val[32];
		size_t n = 0;

		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "charset=", 8) != 0)
			continue;
		p += 8;
		if (*p == '"')
			p++;
		while (*p != '\0' && *p != '"' && *p != ';' && *p != ' ' &&
		    n < sizeof(val) - 1)
			val[n++] = (char)tolower((unsigned char)*p++);
		val[n] = '\0';
		if (strcmp(val, "utf-8") != 0 && strcmp(val, "utf8") != 0)
			return 0;
	}
	return 1;
}

static enum body_kind
predict_body_kind(const char *ct)
{
	if (ct == NULL || *ct == '\0')
		return BODY_JSON;	/* as FastAPI does */
	if (predict_type_is(ct, "application/json"))
		return predict_charset_ok(ct) ? BODY_JSON : BODY_BAD_CHARSET;
	if (predict_type_is(ct, "application/x-www-form-urlencoded"))
		return predict_charset_ok(ct) ? BODY_FORM : BODY_BAD_CHARSET;
	return BODY_BAD_TYPE;
}

/* Makes sure s->row holds n doubles. */
/* Makes sure s->row holds n doubles. */
static double *
predict_row(struct route_scratch *s, size_t n)
{
	if (s->row_cap < n) {
		s->row = xrealloc(s->row, n * sizeof(double));
		s->row_cap = n;
	}
	return s->row;
}

/* The rows predict_run() predicts with one model_predict_rows() call. */
static size_t
predict_block(size_t n)
{
	return n < PREDICT_BLOCK ? n : PREDICT_BLOCK;
}

double *
predict_rows_alloc(struct route_call *c, const struct model *m, size_t n)
{
	return predict_row(c->s, n * m->schema.n +
	    (predict_block(n) ? predict_block(n) : 1) * model_scratch_size(m));
}

/* Returns the index of the "instances" member that makes in a batch, or
 * -1 for a single instance. A model with a feature of that name takes it
 * as a feature. */
static long
predict_batch_field(const struct model *m, const struct input *in)
{
	size_t i;

	if (!in->is_json || schema_lookup(&m->schema, PREDICT_BATCH_KEY,
	    strlen(PREDICT_BATCH_KEY)) >= 0)
		return -1;
	for (i = 0; i < in->n; i++)
		if (strcmp(in->fields[i].name, PREDICT_BATCH_KEY) == 0)
			return (long)i;
	return -1;
}

int
predict_validate_items(struct route_call *c, const struct model *m,
    const cJSON *arr, const struct verr_loc *loc, size_t *n)
{
	struct route_scratch *s = c->s;
	const cJSON *item;
	struct verr_loc l;
	size_t i, count;
	int rc = 0, arrays;
	double *rows;

	if (!cJSON_IsArray(arr)) {
		struct value v;

		value_from_json(&v, arr);
		verrs_add(&s->errs, "list_type", loc,
		    "Input should be a valid list", &v, NULL);
		return -1;
	}
	count = (size_t)cJSON_GetArraySize(arr);
	if (count == 0 || count > c->env->max_batch) {
		size_t bound = count ? c->env->max_batch : 1;
		char msg[128], ctx[128];

		snprintf(msg, sizeof(msg), "List should have %s %zu item%s "
		    "after validation, not %zu", count ? "at most" : "at least",
		    bound, bound == 1 ? "" : "s", count);
		snprintf(ctx, sizeof(ctx), "{\"field_type\":\"List\",\"%s\":%zu,"
		    "\"actual_length\":%zu}", count ? "max_length" :
		    "min_length", bound, count);
		verrs_add(&s->errs, count ? "too_long" : "too_short", loc,
		    msg, NULL, ctx);
		return -1;
	}
	rows = predict_rows_alloc(c, m, count);
	arrays = cJSON_IsArray(arr->child);
	i = 0;
	cJSON_ArrayForEach(item, arr) {
		double *row = rows + i * m->schema.n;

		l = verr_loc_index(loc, (long)i++);
		if (arrays) {
			if (schema_validate_array(&m->schema, item, &l, row,
			    &s->errs) < 0)
				rc = -1;
			continue;
		}
		if (!cJSON_IsObject(item)) {
			struct value v;

			value_from_json(&v, item);
			verrs_add(&s->errs, "model_attributes_type", &l,
			    "Input should be a valid dictionary or object to "
			    "extract fields from (instances must be all objects "
			    "or all arrays)", &v, NULL);
			rc = -1;
			continue;
		}
		input_free(&s->inst);
		s->inst.is_json = 1;
		decode_json_members(item, &s->inst);
		if (schema_validate(&m->schema, &s->inst, &l, row,
		    &s->errs) < 0)
			rc = -1;
	}
	input_free(&s->inst);
	*n = count;
	return rc;
}

/* Validates {"instances": [...]}: nothing else may be in the object. */
static int
predict_validate_batch(struct route_call *c, const struct model *m,
    const struct input *in, long at, size_t *n)
{
	const struct field *fl = &in->fields[at];
	struct verr_loc loc = verr_loc_name(NULL, PREDICT_BATCH_KEY,
	    strlen(PREDICT_BATCH_KEY)), l;
	size_t i;
	int rc = 0;

	for (i = 0; i < in->n; i++) {
		if ((long)i == at)
			continue;
		l = verr_loc_name(NULL, in->fields[i].name,
		    in->fields[i].name_len);
		verrs_add(&c->s->errs, "extra_forbidden", &l,
		    "Extra inputs are not permitted", &in->fields[i].value,
		    NULL);
		rc = -1;
	}
	if (predict_validate_items(c, m, fl->value.json, &loc, n) < 0)
		rc = -1;
	return rc;
}

/* Validates a decoded body: one instance, or a batch. On success s->row
 * holds *n rows and *batch says which shape to answer in. */
static int
predict_validate(struct route_call *c, const struct model *m,
    const struct input *in, size_t *n, int *batch)
{
	long at = predict_batch_field(m, in);

	*batch = at >= 0;
	if (*batch)
		return predict_validate_batch(c, m, in, at, n);
	*n = 1;
	return schema_validate(&m->schema, in, NULL,
	    predict_rows_alloc(c, m, 1), &c->s->errs);
}

size_t
predict_result_width(const struct model *m)
{
	return 1 + m->n_classes + m->n_scores;
}

/* Packs a prediction into res: value or class index, proba, scores. */
static void
predict_pack(const struct model *m, const struct prediction *out,
    double *res)
{
	res[0] = m->task == MODEL_REGRESSION ? out->value :
	    (double)out->class_index;
	if (m->has_proba)
		memcpy(res + 1, out->proba, m->n_classes * sizeof(double));
	memcpy(res + 1 + m->n_classes, out->scores,
	    m->n_scores * sizeof(double));
}

/* The reverse of predict_pack, for rendering a cached answer. */
static void
predict_unpack(const struct model *m, double *res, struct prediction *out)
{
	out->value = res[0];
	out->class_index = m->task == MODEL_REGRESSION ? 0 : (size_t)res[0];
	out->proba = res + 1;
	out->scores = res + 1 + m->n_classes;
}

/* Takes the answer to row (of model m) from the rows predicted ahead
 * into res, if they hold it next. Returns 1 if so, else 0. */
static int
predict_pre_take(struct route_scratch *s, const struct model *m,
    const double *row, double *res)
{
	struct predict_pre *p = &s->pre;
	size_t w = predict_result_width(m);

	if (p->m != m || p->next >= p->n || memcmp(row, p->rows + p->next *
	    m->schema.n, m->schema.n * sizeof(double)) != 0)
		return 0;
	memcpy(res, p->res + p->next * w, w * sizeof(double));
	p->next++;
	return 1;
}

/* Predicts, renders and caches rows [from, from + k) of the n in s->row
 * (k at most PREDICT_BLOCK; the scratch follows the n rows), counting
 * cache hits in *hits. Without a cache (which a row may fill for a later
 * one of the same request) or rows predicted ahead, the k rows are
 * predicted with one model_predict_rows() call, which gives each row what
 * model_predict() gives it. Returns -1 after answering 500 on a
 * non-finite output. */
static int
predict_rows(struct route_call *c, const struct model *m, size_t n,
    size_t from, size_t k, size_t *hits)
{
	struct route_scratch *s = c->s;
	double *scratch, *res;
	size_t i, j, w = predict_result_width(m);
	size_t klen = m->schema.n * sizeof(double);
	int batch = m->cache == NULL && k > 1 && s->pre.m == NULL;
	struct prediction out;

	scratch = predict_row(s, n * m->schema.n + k *
	    model_scratch_size(m)) + n * m->schema.n;
	if (batch) {
		if (s->preds_cap < k) {
			s->preds = xrealloc(s->preds, k * sizeof(*s->preds));
			s->preds_cap = k;
		}
		model_predict_rows(m, s->row + from * m->schema.n, k, scratch,
		    s->preds);
	}
	for (j = 0; j < k; j++) {
		const double *row = s->row + (from + j) * m->schema.n;
		int packed = 0;

		i = from + j;
		res = s->results + i * w;
		s->cached[i] = m->cache != NULL && cache_get(m->cache, row,
		    klen, &s->out, res, w);
		if (s->cached[i]) {
			(*hits)++;
			s->out_end[i] = s->out.len;
			continue;
		}
		if (batch)
			out = s->preds[j];
		else if ((packed = predict_pre_take(s, m, row, res)))
			predict_unpack(m, res, &out);
		else
			model_predict(m, row, scratch, &out);
		if (model_output_finite(m, &out) < 0) {
			c->why = "The model produced a non-finite output for "
			    "this input";
			response_error(c->res, 500, c->why);
			return -1;
		}
		if (!packed)
			predict_pack(m, &out, res);
		buf_putc(&s->out, '{');
		model_render(m, &out, &s->out);
		buf_putc(&s->out, '}');
		s->out_end[i] = s->out.len;
		if (m->cache != NULL) {
			size_t at = i ? s->out_end[i - 1] : 0;

			cache_put(m->cache, row, klen, s->out.data + at,
			    s->out_end[i] - at, res, w);
		}
	}
	return 0;
}

int
predict_run(struct route_call *c, const struct model *m, size_t n)
{
	struct route_scratch *s = c->s;
	size_t i, k, w = predict_result_width(m), hits = 0;

	if (s->out_cap < n) {
		s->out_end = xrealloc(s->out_end, n * sizeof(size_t));
		s->cached = xrealloc(s->cached, n);
		s->out_cap = n;
	}
	if (s->results_cap < n * w) {
		s->results = xrealloc(s->results, n * w * sizeof(double));
		s->results_cap = n * w;
	}
	buf_reset(&s->out);
	for (i = 0; i < n; i += k) {
		k = predict_block(n - i);
		if (predict_rows(c, m, n, i, k, &hits) < 0)
			return -1;
	}
	if (m->cache != NULL)
		c->res->x_cache = hits == n ? "hit" : hits == 0 ? "miss" :
		    "partial";
	metrics_predictions(m, n, hits);
	if (c->env->audit != NULL && predict_audit(c, m, n) < 0) {
		c->why = "The audit log cannot be written now: the "
		    "prediction is not confirmed as recorded";
		response_error(c->res, 503, c->why);
		return -1;
	}
	return 0;
}

void
predict_result(const struct route_call *c, const struct model *m, size_t i,
    struct prediction *out)
{
	predict_unpack(m, c->s->results + i * predict_result_width(m), out);
}

/* Answers in mlfcgi's own shape: the instance's object, or for a batch
 * {"predictions": [...]}, with model, version and request_id. */
static void
predict_answer(struct route_call *c, const struct model *m, size_t n,
    int batch)
{
	struct route_scratch *s = c->s;
	struct buf *b = &c->res->body;
	size_t i;

	if (batch) {
		buf_puts(b, "{\"predictions\":[");
		for (i = 0; i < n; i++) {
			size_t from = i ? s->out_end[i - 1] : 0;

			if (i > 0)
				buf_putc(b, ',');
			buf_append(b, s->out.data + from, s->out_end[i] - from);
		}
		buf_puts(b, "],");
	} else {
		buf_append(b, s->out.data, s->out.len - 1);
		buf_putc(b, ',');
	}
	buf_puts(b, "\"model\":");
	buf_json_str(b, m->name);
	buf_puts(b, ",\"version\":");
	buf_json_str(b, m->version);
	buf_puts(b, ",\"request_id\":");
	buf_json_str(b, c->res->request_id);
	buf_putc(b, '}');
}

int
predict_audit(struct route_call *c, const struct model *m, size_t n)
{
	struct route_scratch *s = c->s;
	unsigned long long ticket = 0;
	int rc = 0;
	uint64_t start = c->req->start_ns ? c->req->start_ns :
	    request_now_ns();
	struct audit_row ar;
	size_t i;

	ar.ts_ms = request_wall_ms();
	ar.latency_us = (int64_t)((request_now_ns() - start) / 1000);
	ar.request_id = c->res->request_id;
	ar.model = m->name;
	ar.version = m->version;
	for (i = 0; i < n; i++) {
		size_t from = i ? s->out_end[i - 1] : 0;

		buf_reset(&s->row_json);
		model_render_row(m, s->row + i * m->schema.n, &s->row_json);
		/* Each instance's output, NUL-terminated apart. */
		buf_reset(&s->tmp);
		buf_append(&s->tmp, s->out.data + from, s->out_end[i] - from);
		ar.cached = s->cached[i];
		ar.input = s->row_json.data;
		ar.output = s->tmp.data;
		ar.more = i + 1 < n;	/* one transaction per request */
		if (audit_enqueue_ticket(c->env->audit, &ar, &ticket) < 0)
			rc = -1;
	}
	/* Durable mode: answer only once the rows are committed; with the
	 * writer already failing, say so at once rather than wait. */
	if (c->env->audit_sync) {
		char why[128];

		if (rc < 0 || !audit_healthy(c->env->audit, why, sizeof(why)))
			return -1;
		if (audit_wait(c->env->audit, ticket, PREDICT_SYNC_WAIT_MS) < 0)
			return -1;
	}
	/* Otherwise a row the full queue refused is dropped and counted
	 * (see audit.h); the answer still goes out. */
	return 0;
}

int
predict_check_body(struct route_call *c, int json_only)
{
	char msg[96];
	enum body_kind kind;

	if (c->req->body_too_large) {
		snprintf(msg, sizeof(msg), "Request body is larger than the "
		    "limit of %zu bytes", c->env->max_body);
		response_error(c->res, 413, msg);
		return -1;
	}
	if (c->req->body_error != NULL) {
		response_error(c->res, 400, c->req->body_error);
		return -1;
	}
	kind = predict_body_kind(c->req->content_type);
	if (kind == BODY_BAD_TYPE || (json_only && kind == BODY_FORM)) {
		response_error(c->res, 415, json_only ? "Unsupported media "
		    "type: send application/json" : "Unsupported media type: "
		    "send application/json or "
		    "application/x-www-form-urlencoded");
		return -1;
	}
	if (kind == BODY_BAD_CHARSET) {
		response_error(c->res, 415, "Unsupported charset: send UTF-8");
		return -1;
	}
	return kind == BODY_FORM;
}

void
predict_unprocessable(struct route_call *c)
{
	c->res->status = 422;
	verrs_render(&c->s->errs, &c->res->body);
	metrics_validation(&c->s->errs);
}

/* Decodes and validates the body (a form if form) for model m: on success
 * s->row holds *nrows rows and *batch says which shape to answer in; on
 * failure the errors are in s->errs. */
static int
predict_decode(struct route_call *c, const struct model *m, int form,
    size_t *nrows, int *batch)
{
	struct route_scratch *s = c->s;
	int rc;

	input_reset(&s->in);
	verrs_reset(&s->errs);
	rc = !form ?
	    decode_json(c->req->body, c->req->body_len, &s->in, &s->errs) :
	    decode_form(c->req->body, c->req->body_len, &s->in, &s->errs);
	if (rc == 0)
		rc = predict_validate(c, m, &s->in, nrows, batch);
	input_reset(&s->in);
	return rc;
}

/* Offline scoring: takes the rows of the body validated ahead, if this
 * request is the one predict_prepare() validated for m, into s->row, and
 * points the answers predicted ahead at them. Returns 0, or -1 if the body
 * is to be decoded (not validated ahead, or invalid: for its errors). */
static int
predict_pre_rows(struct route_call *c, const struct model *m, size_t *nrows,
    int *batch)
{
	struct predict_pre *p = &c->s->pre;
	size_t n = m->schema.n;

	if (p->m != m || p->cur >= p->nreqs || c->req != &p->reqs[p->cur] ||
	    p->count[p->cur] == 0)
		return -1;
	*nrows = p->count[p->cur];
	*batch = p->batch[p->cur];
	memcpy(predict_rows_alloc(c, m, *nrows), p->rows + p->first[p->cur] *
	    n, *nrows * n * sizeof(double));
	p->next = p->first[p->cur];
	return 0;
}

void
predict_handle(struct route_call *c)
{
	const struct model *m;
	size_t nrows = 0;
	int batch = 0, form;

	if ((m = route_model(c)) == NULL)
		return;
	if ((form = predict_check_body(c, 0)) < 0)
		return;
	if (predict_pre_rows(c, m, &nrows, &batch) < 0 &&
	    predict_decode(c, m, form, &nrows, &batch) < 0) {
		predict_unprocessable(c);
		return;
	}
	if (predict_run(c, m, nrows) == 0)
		predict_answer(c, m, nrows, batch);
}

void
predict_pre_clear(struct route_scratch *s)
{
	model_free(s->pre.m);
	s->pre.m = NULL;
	s->pre.reqs = NULL;
	s->pre.n = s->pre.next = s->pre.nreqs = s->pre.cur = 0;
}

/* Makes sure the rows predicted ahead have room for n more rows. */
static void
predict_pre_grow(struct predict_pre *p, const struct model *m, size_t n)
{
	size_t want = (p->n + n) * m->schema.n;

	if (p->rows_cap < want) {
		p->rows_cap = want > 2 * p->rows_cap ? want : 2 * p->rows_cap;
		p->rows = xrealloc(p->rows, p->rows_cap * sizeof(double));
	}
}

void
predict_prepare(const struct route_env *env, struct route_scratch *s,
    const struct request *reqs, size_t n)
{
	struct predict_pre *p = &s->pre;
	struct prediction *out;
	struct route_call c;
	const struct model *m;
	size_t i, j, k, nrows, w;
	int batch, status;
	char why[256];
	double *scratch;

	predict_pre_clear(s);
	if (p->reqs_cap < n) {
		p->first = xrealloc(p->first, n * sizeof(size_t));
		p->count = xrealloc(p->count, n * sizeof(size_t));
		p->batch = xrealloc(p->batch, n);
		p->reqs_cap = n;
	}
	memset(&c, 0, sizeof(c));
	c.env = env;
	c.s = s;
	c.reg = registry_acquire(env->models);
	m = route_find_model(&c, &status, why, sizeof(why));
	if (m != NULL)
		p->m = model_retain((struct model *)m);
	registry_release((struct registry *)c.reg);
	if (m == NULL)
		return;
	p->reqs = reqs;
	p->nreqs = n;
	for (i = 0; i < n; i++) {
		p->first[i] = p->n;
		p->count[i] = 0;
		p->batch[i] = 0;
		c.req = &reqs[i];
		if (reqs[i].body_too_large || reqs[i].body_error != NULL ||
		    predict_decode(&c, m, 0, &nrows, &batch) < 0)
			continue;
		predict_pre_grow(p, m, nrows);
		memcpy(p->rows + p->n * m->schema.n, s->row,
		    nrows * m->schema.n * sizeof(double));
		p->count[i] = nrows;
		p->batch[i] = (unsigned char)batch;
		p->n += nrows;
	}
	verrs_reset(&s->errs);
	w = predict_result_width(m);
	if (p->res_cap < p->n * w) {
		p->res_cap = p->n * w;
		p->res = xrealloc(p->res, p->res_cap * sizeof(double));
	}
	k = predict_block(p->n);
	scratch = predict_row(s, k * model_scratch_size(m));
	if (s->preds_cap < k) {
		s->preds = xrealloc(s->preds, k * sizeof(*s->preds));
		s->preds_cap = k;
	}
	out = s->preds;
	for (i = 0; i < p->n; i += k) {
		k = predict_block(p->n - i);
		model_predict_rows(m, p->rows + i * m->schema.n, k, scratch,
		    out);
		for (j = 0; j < k; j++)
			predict_pack(m, &out[j], p->res + (i + j) * w);
	}
}
