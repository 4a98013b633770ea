/* kserve: the KServe Open Inference Protocol (v2) over the same models:
 * health, server and model metadata, and infer with tensor inputs. */
#include "config.h"

#include "decode.h"
#include "describe.h"
#include "route.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
kserve_error(struct route_call *c, int status, const char *msg)
{
	struct buf *b = &c->res->body;

	c->res->status = status;
	buf_reset(b);
	buf_puts(b, "{\"error\":");
	buf_json_str(b, msg);
	buf_putc(b, '}');
}

/* The model named by the path, or an error answered in v2's shape. */
static const struct model *
kserve_model(struct route_call *c)
{
	char why[256];
	int status;
	const struct model *m = route_find_model(c, &status, why, sizeof(why));

	if (m == NULL)
		kserve_error(c, status, why);
	return m;
}

void
kserve_live(struct route_call *c)
{
	buf_puts(&c->res->body, "{\"live\":true}");
}

void
kserve_server_ready(struct route_call *c)
{
	int ready = c->reg->dflt != NULL;

	c->res->status = ready ? 200 : 503;
	buf_printf(&c->res->body, "{\"ready\":%s}", ready ? "true" : "false");
}

void
kserve_server(struct route_call *c)
{
	buf_puts(&c->res->body, "{\"name\":\"mlfcgi\",\"version\":");
	buf_json_str(&c->res->body, PACKAGE_VERSION);
	buf_puts(&c->res->body, ",\"extensions\":[]}");
}

/* The datatype of the "predict" output. */
static const char *
kserve_label_type(const struct model *m)
{
	if (m->task == MODEL_REGRESSION)
		return "FP64";
	return m->class_json[0][0] == '"' ? "BYTES" : "INT64";
}

void
kserve_metadata(struct route_call *c)
{
	const struct model *m = kserve_model(c);
	struct buf *b = &c->res->body;

	if (m == NULL)
		return;
	buf_puts(b, "{\"name\":");
	buf_json_str(b, m->name);
	buf_puts(b, ",\"versions\":");
	describe_versions(b, c->reg, m->name, strlen(m->name));
	buf_puts(b, ",\"platform\":\"mlfcgi\",\"inputs\":[{\"name\":"
	    "\"input-0\",\"datatype\":\"FP64\",");
	buf_printf(b, "\"shape\":[-1,%zu]}],\"outputs\":[{\"name\":"
	    "\"predict\",\"datatype\":\"%s\",\"shape\":[-1]}", m->schema.n,
	    kserve_label_type(m));
	if (m->task == MODEL_CLASSIFICATION && m->has_proba)
		buf_printf(b, ",{\"name\":\"probabilities\",\"datatype\":"
		    "\"FP64\",\"shape\":[-1,%zu]}", m->n_classes);
	buf_puts(b, "]}");
}

void
kserve_model_ready(struct route_call *c)
{
	const struct model *m = kserve_model(c);

	if (m == NULL)
		return;
	buf_puts(&c->res->body, "{\"name\":");
	buf_json_str(&c->res->body, m->name);
	buf_puts(&c->res->body, ",\"ready\":true}");
}

/* Appends the leaves of a (possibly nested) data array to leaves. */
static void
kserve_flatten(const cJSON *data, const cJSON ***leaves, size_t *n,
    size_t *cap)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, data) {
		if (cJSON_IsArray(e)) {
			kserve_flatten(e, leaves, n, cap);
			continue;
		}
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 64;
			*leaves = xrealloc(*leaves, *cap * sizeof(**leaves));
		}
		(*leaves)[(*n)++] = e;
	}
}

/* A copy of a tensor element as a plain JSON value; FP32 data is rounded
 * to single precision, as the client meant it. */
static cJSON *
kserve_value(const cJSON *leaf, const char *datatype)
{
	if (cJSON_IsNumber(leaf) && strcmp(datatype, "FP32") == 0)
		return cJSON_CreateNumber((double)(float)leaf->valuedouble);
	return cJSON_Duplicate(leaf, 0);
}

/* The largest dimension a shape may name: 2^53, past which a double
 * no longer counts every integer (no body holds that many values). */
#define KSERVE_MAX_DIM 9007199254740992.0

/* One input tensor: its data flattened, and its shape's product. */
struct kserve_tensor {
	const char	 *name;
	const char	 *datatype;
	const cJSON	**leaves;
	size_t		  n, cap;
	long		  rows;		/* the first dimension */
};

static int
kserve_tensor(const cJSON *in, struct kserve_tensor *t, char *err,
    size_t errlen)
{
	const cJSON *name = cJSON_GetObjectItem(in, "name");
	const cJSON *shape = cJSON_GetObjectItem(in, "shape");
	const cJSON *dt = cJSON_GetObjectItem(in, "datatype");
	const cJSON *data = cJSON_GetObjectItem(in, "data");
	const cJSON *d;
	double product = 1;

	if (!cJSON_IsString(name) || !cJSON_IsString(dt) ||
	    !cJSON_IsArray(shape) || !cJSON_IsArray(data)) {
		snprintf(err, errlen, "each input needs name, shape, datatype "
		    "and data");
		return -1;
	}
	t->name = name->valuestring;
	t->datatype = dt->valuestring;
	if (strcmp(t->datatype, "FP32") && strcmp(t->datatype, "FP64") &&
	    strcmp(t->datatype, "INT64") && strcmp(t->datatype, "INT32") &&
	    strcmp(t->datatype, "BYTES")) {
		snprintf(err, errlen, "input '%.64s': unsupported datatype "
		    "'%.16s' (FP32, FP64, INT32, INT64 or BYTES)", t->name,
		    t->datatype);
		return -1;
	}
	t->rows = -1;
	cJSON_ArrayForEach(d, shape) {
		/* Checked before the cast: (long) of 1e999 is undefined. */
		if (!cJSON_IsNumber(d) || !(d->valuedouble >= 0 &&
		    d->valuedouble <= KSERVE_MAX_DIM) ||
		    d->valuedouble != (long)d->valuedouble) {
			snprintf(err, errlen, "input '%.64s': bad shape",
			    t->name);
			return -1;
		}
		if (t->rows < 0)
			t->rows = (long)d->valuedouble;
		product *= d->valuedouble;
	}
	kserve_flatten(data, &t->leaves, &t->n, &t->cap);
	if (t->rows < 0 || product != (double)t->n) {
		snprintf(err, errlen, "input '%.64s': shape holds %.0f "
		    "values, data has %zu", t->name, product, t->n);
		return -1;
	}
	return 0;
}

/* Builds the rows array: one [N, F] tensor, or one [N] (or [N, 1])
 * tensor per feature, named as the features. */
static cJSON *
kserve_rows(const struct model *m, struct kserve_tensor *ts, size_t nt,
    char *err, size_t errlen)
{
	size_t F = m->schema.n, i, j, N;
	cJSON *rows = cJSON_CreateArray();

	if (nt == 1 && ts[0].n % F == 0 && (size_t)ts[0].rows * F == ts[0].n) {
		N = (size_t)ts[0].rows;
		for (i = 0; i < N; i++) {
			cJSON *row = cJSON_CreateArray();

			for (j = 0; j < F; j++)
				cJSON_AddItemToArray(row, kserve_value(
				    ts[0].leaves[i * F + j], ts[0].datatype));
			cJSON_AddItemToArray(rows, row);
		}
		return rows;
	}
	N = nt > 0 ? ts[0].n : 0;
	for (i = 0; i < nt; i++)
		if (ts[i].n != N || schema_lookup(&m->schema, ts[i].name,
		    strlen(ts[i].name)) < 0) {
			snprintf(err, errlen, "expected one input of shape "
			    "[N, %zu], or one input of shape [N] per feature, "
			    "named as the features", F);
			cJSON_Delete(rows);
			return NULL;
		}
	for (j = 0; j < N; j++) {
		cJSON *row = cJSON_CreateObject();

		for (i = 0; i < nt; i++)
			cJSON_AddItemToObject(row, ts[i].name,
			    kserve_value(ts[i].leaves[j], ts[i].datatype));
		cJSON_AddItemToArray(rows, row);
	}
	return rows;
}

/* Returns 1 if output name was asked for (or no outputs were named). */
static int
kserve_wants(const cJSON *outputs, const char *name)
{
	const cJSON *o;

	if (!cJSON_IsArray(outputs))
		return 1;
	cJSON_ArrayForEach(o, outputs)
		if (cJSON_IsString(cJSON_GetObjectItem(o, "name")) &&
		    strcmp(cJSON_GetObjectItem(o, "name")->valuestring,
		    name) == 0)
			return 1;
	return 0;
}

static void
kserve_answer(struct route_call *c, const struct model *m, size_t n,
    const cJSON *id, const cJSON *outputs)
{
	struct buf *b = &c->res->body;
	struct prediction p;
	size_t i, k, nout = 0;

	buf_puts(b, "{\"model_name\":");
	buf_json_str(b, m->name);
	buf_puts(b, ",\"model_version\":");
	buf_json_str(b, m->version);
	buf_puts(b, ",\"id\":");
	if (cJSON_IsString(id))
		buf_json_str(b, id->valuestring);
	else
		buf_json_str(b, c->res->request_id);
	buf_puts(b, ",\"outputs\":[");
	if (kserve_wants(outputs, "predict")) {
		nout++;
		buf_printf(b, "{\"name\":\"predict\",\"datatype\":\"%s\","
		    "\"shape\":[%zu],\"data\":[", kserve_label_type(m), n);
		for (i = 0; i < n; i++) {
			predict_result(c, m, i, &p);
			if (i > 0)
				buf_putc(b, ',');
			if (m->task == MODEL_REGRESSION)
				buf_json_double(b, p.value);
			else
				buf_puts(b, m->class_json[p.class_index]);
		}
		buf_puts(b, "]}");
	}
	if (m->task == MODEL_CLASSIFICATION && m->has_proba &&
	    kserve_wants(outputs, "probabilities")) {
		buf_printf(b, "%s{\"name\":\"probabilities\",\"datatype\":"
		    "\"FP64\",\"shape\":[%zu,%zu],\"data\":[", nout ? "," : "",
		    n, m->n_classes);
		for (i = 0; i < n; i++) {
			predict_result(c, m, i, &p);
			for (k = 0; k < m->n_classes; k++) {
				if (i + k > 0)
					buf_putc(b, ',');
				buf_json_double(b, p.proba[k]);
			}
		}
		buf_puts(b, "]}");
	}
	buf_puts(b, "]}");
}

void
kserve_infer(struct route_call *c)
{
	struct route_scratch *s = c->s;
	struct kserve_tensor *ts = NULL;
	struct verr_loc loc = verr_loc_name(NULL, "inputs", 6);
	const struct model *m;
	const cJSON *inputs = NULL, *in;
	size_t nt = 0, i, n = 0;
	cJSON *rows = NULL;
	char err[256] = "";

	if ((m = kserve_model(c)) == NULL)
		return;
	if (predict_check_body(c, 1) < 0) {
		kserve_error(c, c->res->status, c->res->status == 413 ?
		    "request body too large" : c->res->status == 400 ?
		    c->req->body_error : "send application/json");
		return;
	}
	input_free(&s->in);
	verrs_reset(&s->errs);
	if (decode_json(c->req->body, c->req->body_len, &s->in,
	    &s->errs) < 0) {
		struct buf t = BUF_INIT;

		verrs_summary(&s->errs, &t);
		kserve_error(c, 400, t.data);
		buf_free(&t);
		return;
	}
	inputs = cJSON_GetObjectItem(s->in.json, "inputs");
	if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) == 0) {
		kserve_error(c, 400, "expected \"inputs\": a non-empty array "
		    "of tensors");
		goto done;
	}
	ts = xcalloc((size_t)cJSON_GetArraySize(inputs), sizeof(*ts));
	cJSON_ArrayForEach(in, inputs)
		if (kserve_tensor(in, &ts[nt++], err, sizeof(err)) < 0)
			goto bad;
	if ((rows = kserve_rows(m, ts, nt, err, sizeof(err))) == NULL)
		goto bad;
	if (predict_validate_items(c, m, rows, &loc, &n) < 0) {
		struct buf t = BUF_INIT;

		verrs_summary(&s->errs, &t);
		kserve_error(c, 400, t.data);
		buf_free(&t);
		goto done;
	}
	if (predict_run(c, m, n) < 0) {
		kserve_error(c, c->res->status, c->why);
		goto done;
	}
	kserve_answer(c, m, n, cJSON_GetObjectItem(s->in.json, "id"),
	    cJSON_GetObjectItem(s->in.json, "outputs"));
	goto done;
bad:
	kserve_error(c, 400, err);
done:
	for (i = 0; i < nt; i++)
		free(ts[i].leaves);
	free(ts);
	cJSON_Delete(rows);
	input_free(&s->in);
}
