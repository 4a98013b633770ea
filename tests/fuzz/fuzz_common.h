/* fuzz_common: what the libFuzzer harnesses share: the models requests are
 * validated against, and the checks every answer must pass (a failed check
 * aborts, which libFuzzer reports as a crash with the input that caused it).
 *
 * Included by exactly one harness per program; everything here is static. */
#ifndef MLFCGI_FUZZ_COMMON_H
#define MLFCGI_FUZZ_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "decode.h"
#include "model.h"
#include "registry.h"
#include "request.h"
#include "route.h"
#include "schema.h"
#include "verr.h"

/* Not every harness uses every helper. */
#define FUZZ_UNUSED __attribute__((unused))

#ifndef FUZZ_SRCDIR
#define FUZZ_SRCDIR "."
#endif

/* The iris model (numbers with inclusive and exclusive bounds) and a small
 * regression model with integer, nullable and optional features. */
#define FUZZ_NMODELS 2
static const char *const fuzz_model_files[FUZZ_NMODELS] FUZZ_UNUSED = {
	"models/iris.json",
	"tests/fuzz/models/mixed.json"
};
/* Their names, and the path that predicts with each. */
static const char *const fuzz_model_names[FUZZ_NMODELS] FUZZ_UNUSED = {
	"iris",
	"fuzz-mixed"
};
static const char *const fuzz_model_paths[FUZZ_NMODELS] FUZZ_UNUSED = {
	"/predict",
	"/models/fuzz-mixed/predict"
};
static const struct model *fuzz_models[FUZZ_NMODELS] FUZZ_UNUSED;
static struct registry_holder fuzz_holder;

/* Per-process state, reused from input to input as a request thread
 * reuses its own. */
static struct route_scratch fuzz_scratch;
static struct response fuzz_res;

static FUZZ_UNUSED void
fuzz_die(const char *what, const char *detail)
{
	fprintf(stderr, "\nfuzz check failed: %s\n%.4000s\n", what,
	    detail != NULL ? detail : "");
	abort();
}

/* Loads the models into a registry (SRCDIR from the environment, else the
 * source tree the harness was built from), iris the default, and sets up
 * the scratch state. Exits on error: a harness without its models tests
 * nothing. */
static FUZZ_UNUSED void
fuzz_setup(void)
{
	static char paths[FUZZ_NMODELS][4096];
	static const char *files[FUZZ_NMODELS];
	const char *src = getenv("SRCDIR");
	struct registry_source rs;
	struct registry *r;
	char err[1024];
	size_t i;

	if (src == NULL || *src == '\0')
		src = FUZZ_SRCDIR;
	for (i = 0; i < FUZZ_NMODELS; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", src,
		    fuzz_model_files[i]);
		files[i] = paths[i];
	}
	memset(&rs, 0, sizeof(rs));
	rs.files = files;
	rs.n_files = FUZZ_NMODELS;
	rs.default_model = "iris";
	if ((r = registry_build(&rs, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz: %s\n", err);
		exit(2);
	}
	for (i = 0; i < FUZZ_NMODELS; i++) {
		fuzz_models[i] = registry_find(r, fuzz_model_names[i],
		    strlen(fuzz_model_names[i]), NULL, 0);
		if (fuzz_models[i] == NULL) {
			fprintf(stderr, "fuzz: no model %s\n",
			    fuzz_model_names[i]);
			exit(2);
		}
	}
	registry_holder_init(&fuzz_holder, r);
	route_scratch_init(&fuzz_scratch);
	response_init(&fuzz_res);
}

/* Aborts unless text[0..len) is one strict JSON object (checked with the
 * project's own RFC 8259 scanner); returns its cJSON tree (caller frees). */
static FUZZ_UNUSED cJSON *
fuzz_check_json(const char *text, size_t len, const char *what)
{
	struct input in;
	struct verrs v;
	cJSON *tree;

	input_init(&in);
	verrs_init(&v);
	if (decode_json(text, len, &in, &v) < 0) {
		verrs_render(&v, &v.out);
		fprintf(stderr, "scanner says: %s\n", v.out.data);
		fuzz_die(what, text);
	}
	tree = in.json;
	in.json = NULL;
	input_free(&in);
	verrs_free(&v);
	return tree;
}

/* Aborts unless body is a 422 detail: {"detail": [1..VERR_MAX items, each
 * with a string "type" and "msg" and a "loc" starting with "body"]}. */
static FUZZ_UNUSED void
fuzz_check_detail(const char *body, size_t len)
{
	cJSON *tree = fuzz_check_json(body, len, "422 body is not JSON");
	const cJSON *detail = cJSON_GetObjectItemCaseSensitive(tree, "detail");
	const cJSON *e;
	int n = cJSON_GetArraySize(detail);

	if (!cJSON_IsArray(detail) || n < 1 || n > VERR_MAX)
		fuzz_die("422 detail is not an array of 1..VERR_MAX errors",
		    body);
	cJSON_ArrayForEach(e, detail) {
		const cJSON *loc = cJSON_GetObjectItemCaseSensitive(e, "loc");

		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e,
		    "type")) || !cJSON_IsString(
		    cJSON_GetObjectItemCaseSensitive(e, "msg")) ||
		    !cJSON_IsArray(loc) || !cJSON_IsString(loc->child) ||
		    strcmp(loc->child->valuestring, "body") != 0)
			fuzz_die("422 error without type, msg or loc", body);
	}
	cJSON_Delete(tree);
}

/* Aborts unless row is what the schema promises behind the boundary:
 * numbers finite and within their bounds, integers whole, NaN only where
 * a feature may be missing. */
static FUZZ_UNUSED void
fuzz_check_row(const struct model *m, const double *row)
{
	char why[512];
	size_t i;

	for (i = 0; i < m->schema.n; i++) {
		const struct feature *f = &m->schema.features[i];
		double x = row[i];
		int bad;

		if (f->type != FEATURE_NUMBER && f->type != FEATURE_INTEGER)
			continue;
		if (isnan(x))
			bad = !f->nullable && !(!f->required && isnan(f->dflt));
		else
			bad = !isfinite(x) ||
			    (f->has_min && (f->min_exclusive ? x <= f->min :
			    x < f->min)) ||
			    (f->has_max && (f->max_exclusive ? x >= f->max :
			    x > f->max)) ||
			    (f->type == FEATURE_INTEGER && x != floor(x));
		if (bad) {
			snprintf(why, sizeof(why), "model %s, feature %s: %.17g",
			    m->name, f->name, x);
			fuzz_die("a validated row breaks its schema", why);
		}
	}
}

/* Checks the outcome of decode + schema_validate: on success a valid row
 * and no errors (the row is also rendered as the audit log would); on
 * failure at least one error, rendered as a valid 422 detail. */
static FUZZ_UNUSED void
fuzz_check_validation(const struct model *m, int rc, const double *row,
    const struct verrs *v)
{
	struct buf b = BUF_INIT;

	if (rc == 0) {
		if (v->total != 0)
			fuzz_die("validation succeeded with errors", v->out.data);
		fuzz_check_row(m, row);
		model_render_row(m, row, &b);
		cJSON_Delete(fuzz_check_json(b.data, b.len,
		    "audit input JSON is not JSON"));
	} else {
		if (v->total == 0 || v->n == 0 || v->n > v->total ||
		    v->n > VERR_MAX)
			fuzz_die("validation failed without an error", NULL);
		verrs_render(v, &b);
		fuzz_check_detail(b.data, b.len);
	}
	buf_free(&b);
}

/* Checks what decoding gave (decoded, with in and v): on failure, a valid
 * 422 detail; on success, schema_validate() against every fuzz model, each
 * outcome through fuzz_check_validation(). Frees in and v. */
static FUZZ_UNUSED void
fuzz_validate_all(int decoded, struct input *in, struct verrs *v)
{
	size_t i;

	if (decoded < 0)
		fuzz_check_validation(fuzz_models[0], -1, NULL, v);
	for (i = 0; decoded == 0 && i < FUZZ_NMODELS; i++) {
		const struct model *m = fuzz_models[i];
		double *row = calloc(m->schema.n, sizeof(double));
		int rc;

		if (row == NULL)
			abort();
		verrs_reset(v);
		rc = schema_validate(&m->schema, in, NULL, row, v);
		fuzz_check_validation(m, rc, row, v);
		free(row);
	}
	input_free(in);
	verrs_free(v);
}

/* Sends data (size bytes, given NUL-terminated to the router, as the
 * FastCGI front does) as POST path with content_type through
 * route_handle() with the fuzz models' registry, no audit log and a batch
 * limit of 8 (small, so the fuzzer reaches too_long). The answer is left
 * in fuzz_res; returns its status. */
static FUZZ_UNUSED int
fuzz_route(const char *path, const char *content_type, const uint8_t *data,
    size_t size)
{
	struct route_env env;
	struct request req;
	char *body = malloc(size + 1);

	if (body == NULL)
		abort();
	memcpy(body, data, size);
	body[size] = '\0';
	memset(&env, 0, sizeof(env));
	env.models = &fuzz_holder;
	env.audit = NULL;
	env.max_body = 1 << 20;
	env.max_batch = 8;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = path;
	req.content_type = content_type;
	req.body = body;
	req.body_len = size;
	response_reset(&fuzz_res);
	route_handle(&env, &req, &fuzz_res, &fuzz_scratch);
	free(body);
	return fuzz_res.status;
}

/* Sends body as POST path with content_type through route_handle() (the
 * fuzz models' registry) and checks the answer: 200 with a prediction,
 * 422 with a valid detail, or 500 for a non-finite output; always valid
 * JSON. Returns the status. */
static FUZZ_UNUSED int
fuzz_route_predict(const char *path, const char *content_type,
    const uint8_t *data, size_t size)
{
	int status = fuzz_route(path, content_type, data, size);
	cJSON *tree;

	switch (status) {
	case 200:
		tree = fuzz_check_json(fuzz_res.body.data, fuzz_res.body.len,
		    "200 body is not JSON");
		if (cJSON_GetObjectItemCaseSensitive(tree, "prediction") ==
		    NULL && !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(
		    tree, "predictions")))
			fuzz_die("200 without a prediction", fuzz_res.body.data);
		cJSON_Delete(tree);
		break;
	case 422:
		fuzz_check_detail(fuzz_res.body.data, fuzz_res.body.len);
		break;
	case 500:
		cJSON_Delete(fuzz_check_json(fuzz_res.body.data,
		    fuzz_res.body.len, "500 body is not JSON"));
		break;
	default:
		fuzz_die("unexpected status for POST /predict",
		    fuzz_res.body.data);
	}
	return status;
}

/* Sends body as POST path with content_type through route_handle() and
 * checks only what every endpoint promises: a status from 200 to 599 and
 * a JSON object as the body, whatever the protocol's error shape. For the
 * other protocols' parsers (KServe v2, MLflow, TensorFlow Serving). */
static FUZZ_UNUSED void
fuzz_route_any(const char *path, const char *content_type,
    const uint8_t *data, size_t size)
{
	int status = fuzz_route(path, content_type, data, size);

	if (status < 200 || status > 599)
		fuzz_die("a status outside 200-599", path);
	cJSON_Delete(fuzz_check_json(fuzz_res.body.data, fuzz_res.body.len,
	    "an answer that is not a JSON object"));
}

#endif
