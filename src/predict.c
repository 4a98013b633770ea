/* predict: POST /predict, from body bytes to a logged prediction. */
#include "decode.h"
#include "route.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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
static double *
predict_row(struct route_scratch *s, size_t n)
{
	if (s->row_cap < n) {
		s->row = xrealloc(s->row, n * sizeof(double));
		s->row_cap = n;
	}
	return s->row;
}

static void predict_audit(const struct route_env *, const struct model *,
    const struct request *, const struct response *, struct route_scratch *,
    size_t);

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

/* Validates {"instances": [...]}: all arrays (schema order) or all
 * objects (named), 1 to max_batch of them. Fills s->row with n rows. */
static int
predict_validate_batch(const struct route_env *env, const struct model *m,
    const struct input *in, long at, struct route_scratch *s, size_t *n)
{
	const struct field *fl = &in->fields[at];
	struct verr_loc loc = verr_loc_name(NULL, PREDICT_BATCH_KEY,
	    strlen(PREDICT_BATCH_KEY)), l;
	const cJSON *item;
	size_t i, count;
	int rc = 0, arrays;
	double *rows;

	for (i = 0; i < in->n; i++) {
		if ((long)i == at)
			continue;
		l = verr_loc_name(NULL, in->fields[i].name,
		    in->fields[i].name_len);
		verrs_add(&s->errs, "extra_forbidden", &l,
		    "Extra inputs are not permitted", &in->fields[i].value,
		    NULL);
		rc = -1;
	}
	if (fl->value.kind != VALUE_ARRAY) {
		verrs_add(&s->errs, "list_type", &loc,
		    "Input should be a valid list", &fl->value, NULL);
		return -1;
	}
	count = (size_t)cJSON_GetArraySize(fl->value.json);
	if (count == 0 || count > env->max_batch) {
		size_t bound = count ? env->max_batch : 1;
		char msg[128], ctx[128];

		snprintf(msg, sizeof(msg), "List should have %s %zu item%s "
		    "after validation, not %zu", count ? "at most" : "at least",
		    bound, bound == 1 ? "" : "s", count);
		snprintf(ctx, sizeof(ctx), "{\"field_type\":\"List\",\"%s\":%zu,"
		    "\"actual_length\":%zu}", count ? "max_length" :
		    "min_length", bound, count);
		verrs_add(&s->errs, count ? "too_long" : "too_short", &loc,
		    msg, NULL, ctx);
		return -1;
	}
	rows = predict_row(s, count * m->schema.n + model_scratch_size(m));
	arrays = cJSON_IsArray(fl->value.json->child);
	i = 0;
	cJSON_ArrayForEach(item, fl->value.json) {
		double *row = rows + i * m->schema.n;

		l = verr_loc_index(&loc, (long)i++);
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

/* Validates a decoded body: one instance, or a batch. On success s->row
 * holds *n rows and *batch says which shape to answer in. */
static int
predict_validate(const struct route_env *env, const struct model *m,
    const struct input *in, struct route_scratch *s, size_t *n, int *batch)
{
	long at = predict_batch_field(m, in);

	*batch = at >= 0;
	if (*batch)
		return predict_validate_batch(env, m, in, at, s, n);
	*n = 1;
	return schema_validate(&m->schema, in,  NULL,
	    predict_row(s, m->schema.n + model_scratch_size(m)), &s->errs);
}

/* Predicts the n validated rows in s->row, answers, and logs each. */
static void
predict_rows(const struct route_env *env, const struct model *m,
    const struct request *req, struct response *res,
    struct route_scratch *s, size_t n, int batch)
{
	double *scratch = s->row + n * m->schema.n;
	struct prediction out;
	size_t i;

	buf_reset(&s->out);
	if (s->out_cap < n) {
		s->out_end = xrealloc(s->out_end, n * sizeof(size_t));
		s->out_cap = n;
	}
	for (i = 0; i < n; i++) {
		model_predict(m, s->row + i * m->schema.n, scratch, &out);
		if (model_output_finite(m, &out) < 0) {
			response_error(res, 500, "The model produced a "
			    "non-finite output for this input");
			return;
		}
		buf_putc(&s->out, '{');
		model_render(m, &out, &s->out);
		buf_putc(&s->out, '}');
		s->out_end[i] = s->out.len;
	}

	if (batch) {
		buf_puts(&res->body, "{\"predictions\":[");
		for (i = 0; i < n; i++) {
			size_t from = i ? s->out_end[i - 1] : 0;

			if (i > 0)
				buf_putc(&res->body, ',');
			buf_append(&res->body, s->out.data + from,
			    s->out_end[i] - from);
		}
		buf_puts(&res->body, "],");
	} else {
		buf_append(&res->body, s->out.data, s->out.len - 1);
		buf_putc(&res->body, ',');
	}
	buf_puts(&res->body, "\"model\":");
	buf_json_str(&res->body, m->name);
	buf_puts(&res->body, ",\"version\":");
	buf_json_str(&res->body, m->version);
	buf_puts(&res->body, ",\"request_id\":");
	buf_json_str(&res->body, res->request_id);
	buf_putc(&res->body, '}');
	if (env->audit != NULL)
		predict_audit(env, m, req, res, s, n);
}

/* Queues one audit row per instance, all with the request's id. */
static void
predict_audit(const struct route_env *env, const struct model *m,
    const struct request *req, const struct response *res,
    struct route_scratch *s, size_t n)
{
	uint64_t start = req->start_ns ? req->start_ns : request_now_ns();
	struct audit_row ar;
	size_t i;

	ar.ts_ms = request_wall_ms();
	ar.latency_us = (int64_t)((request_now_ns() - start) / 1000);
	ar.cached = 0;
	ar.request_id = res->request_id;
	ar.model = m->name;
	ar.version = m->version;
	for (i = 0; i < n; i++) {
		size_t from = i ? s->out_end[i - 1] : 0;

		buf_reset(&s->row_json);
		model_render_row(m, s->row + i * m->schema.n, &s->row_json);
		/* Each instance's output, NUL-terminated in place. */
		buf_reset(&s->tmp);
		buf_append(&s->tmp, s->out.data + from, s->out_end[i] - from);
		ar.input = s->row_json.data;
		ar.output = s->tmp.data;
		audit_enqueue(env->audit, &ar);
	}
}

void
predict_handle(struct route_call *c)
{
	const struct route_env *env = c->env;
	const struct request *req = c->req;
	struct response *res = c->res;
	struct route_scratch *s = c->s;
	const struct model *m;
	enum body_kind kind;
	size_t nrows = 0;
	char msg[96];
	int rc, batch = 0;

	if ((m = route_model(c)) == NULL)
		return;
	if (req->body_too_large) {
		snprintf(msg, sizeof(msg), "Request body is larger than the "
		    "limit of %zu bytes", env->max_body);
		response_error(res, 413, msg);
		return;
	}
	kind = predict_body_kind(req->content_type);
	if (kind == BODY_BAD_TYPE) {
		response_error(res, 415, "Unsupported media type: send "
		    "application/json or application/x-www-form-urlencoded");
		return;
	}
	if (kind == BODY_BAD_CHARSET) {
		response_error(res, 415, "Unsupported charset: send UTF-8");
		return;
	}

	input_free(&s->in);
	verrs_reset(&s->errs);
	rc = kind == BODY_JSON ?
	    decode_json(req->body, req->body_len, &s->in, &s->errs) :
	    decode_form(req->body, req->body_len, &s->in, &s->errs);
	if (rc == 0)
		rc = predict_validate(env, m, &s->in, s, &nrows, &batch);
	input_free(&s->in);
	if (rc < 0) {
		res->status = 422;
		verrs_render(&s->errs, &res->body);
		return;
	}
	predict_rows(env, m, req, res, s, nrows, batch);
}
