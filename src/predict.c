/* predict: POST /predict, from body bytes to a logged prediction. */
#include "decode.h"
#include "route.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

void
predict_handle(const struct route_env *env, const struct request *req,
    struct response *res, struct route_scratch *s)
{
	const struct model *m = env->model;
	struct prediction out;
	enum body_kind kind;
	double *row, *scratch;
	char msg[96];
	int rc;

	if (m == NULL) {
		response_error(res, 503, "No model is loaded");
		return;
	}
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
	row = predict_row(s, m->schema.n + model_scratch_size(m));
	scratch = row + m->schema.n;
	rc = kind == BODY_JSON ?
	    decode_json(req->body, req->body_len, &s->in, &s->errs) :
	    decode_form(req->body, req->body_len, &s->in, &s->errs);
	if (rc == 0)
		rc = schema_validate(&m->schema, &s->in, NULL, row, &s->errs);
	input_free(&s->in);
	if (rc < 0) {
		res->status = 422;
		verrs_render(&s->errs, &res->body);
		return;
	}

	model_predict(m, row, scratch, &out);
	if (model_output_finite(m, &out) < 0) {
		response_error(res, 500, "The model produced a non-finite "
		    "output for this input");
		return;
	}
	buf_reset(&s->out);
	buf_putc(&s->out, '{');
	model_render(m, &out, &s->out);
	buf_putc(&s->out, '}');

	buf_append(&res->body, s->out.data, s->out.len - 1);
	buf_puts(&res->body, ",\"model\":");
	buf_json_str(&res->body, m->name);
	buf_puts(&res->body, ",\"version\":");
	buf_json_str(&res->body, m->version);
	buf_puts(&res->body, ",\"request_id\":");
	buf_json_str(&res->body, res->request_id);
	buf_putc(&res->body, '}');

	if (env->audit != NULL) {
		struct audit_row ar;
		uint64_t start = req->start_ns ? req->start_ns :
		    request_now_ns();

		buf_reset(&s->row_json);
		model_render_row(m, row, &s->row_json);
		ar.ts_ms = request_wall_ms();
		ar.latency_us = (int64_t)((request_now_ns() - start) / 1000);
		ar.cached = 0;
		ar.request_id = res->request_id;
		ar.model = m->name;
		ar.version = m->version;
		ar.input = s->row_json.data;
		ar.output = s->out.data;
		audit_enqueue(env->audit, &ar);
	}
}
