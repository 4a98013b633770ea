/* mlflow: the MLflow scoring server's protocol over the default model:
 * /ping, /version and /invocations (JSON in its four shapes, or CSV). */
#include "config.h"

#include "decode.h"
#include "route.h"
#include "tabular.h"

#include <string.h>
#include <strings.h>

static void
mlflow_error(struct route_call *c, int status, const char *msg)
{
	struct buf *b = &c->res->body;

	c->res->status = status;
	c->res->content_type = "application/json";
	buf_reset(b);
	buf_puts(b, "{\"error_code\":\"BAD_REQUEST\",\"message\":");
	buf_json_str(b, msg);
	buf_putc(b, '}');
}

void
mlflow_ping(struct route_call *c)
{
	c->res->content_type = "text/plain; charset=utf-8";
	buf_puts(&c->res->body, "\n");
}

void
mlflow_version(struct route_call *c)
{
	c->res->content_type = "text/plain; charset=utf-8";
	buf_puts(&c->res->body, PACKAGE_VERSION);
}

/* MLflow answers a classifier's or regressor's predict(): the labels. */
static void
mlflow_answer(struct route_call *c, const struct model *m, size_t n)
{
	struct buf *b = &c->res->body;
	struct prediction p;
	size_t i;

	buf_puts(b, "{\"predictions\":[");
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

/* Validation errors as MLflow's message. */
static void
mlflow_invalid(struct route_call *c)
{
	struct buf t = BUF_INIT;

	verrs_summary(&c->s->errs, &t);
	mlflow_error(c, 400, t.data);
	buf_free(&t);
}

static int
mlflow_is_csv(const char *ct)
{
	return ct != NULL && strncasecmp(ct, "text/csv", 8) == 0 &&
	    (ct[8] == '\0' || ct[8] == ';' || ct[8] == ' ');
}

static void
mlflow_csv(struct route_call *c, const struct model *m)
{
	struct route_scratch *s = c->s;
	struct verr_loc loc;
	const char *why = NULL;
	struct csv csv;
	size_t r, n;
	double *rows;
	int rc = 0;

	if (tabular_csv_parse(c->req->body, c->req->body_len, &csv,
	    &why) < 0) {
		mlflow_error(c, 400, why);
		return;
	}
	if (csv.nrows == 0 || csv.nrows > c->env->max_batch) {
		mlflow_error(c, 400, csv.nrows ? "too many rows (see "
		    "--max-batch)" : "no rows after the header");
		tabular_csv_free(&csv);
		return;
	}
	rows = predict_rows_alloc(c, m, csv.nrows);
	for (r = 0; r < csv.nrows; r++) {
		input_free(&s->inst);
		tabular_csv_row(&csv, r, &s->inst);
		loc = verr_loc_index(NULL, (long)r);
		if (schema_validate(&m->schema, &s->inst, &loc,
		    rows + r * m->schema.n, &s->errs) < 0)
			rc = -1;
	}
	input_free(&s->inst);
	n = csv.nrows;
	tabular_csv_free(&csv);
	if (rc < 0)
		mlflow_invalid(c);
	else if (predict_run(c, m, n) == 0)
		mlflow_answer(c, m, n);
	else
		mlflow_error(c, c->res->status, c->why);
}

/* The instances of a JSON body: exactly one of the four MLflow keys. */
static cJSON *
mlflow_records(const cJSON *root, const char **key, const char **why)
{
	static const char *const keys[] = { "dataframe_split",
	    "dataframe_records", "instances", "inputs" };
	const cJSON *v = NULL, *m;
	size_t k, found = 0;

	for (m = root->child; m != NULL; m = m->next) {
		for (k = 0; k < 4; k++)
			if (strcmp(m->string, keys[k]) == 0)
				break;
		if (k < 4) {
			found++;
			v = m;
			*key = keys[k];
		} else if (strcmp(m->string, "params") != 0) {
			*why = "unknown key: give exactly one of "
			    "dataframe_split, dataframe_records, instances, "
			    "inputs (and optionally params)";
			return NULL;
		}
	}
	if (found != 1) {
		*why = "give exactly one of dataframe_split, "
		    "dataframe_records, instances or inputs";
		return NULL;
	}
	if (strcmp(*key, "dataframe_split") == 0)
		return tabular_split_to_records(v, why);
	if (cJSON_IsObject(v))		/* columns: {"a": [...], ...} */
		return tabular_columns_to_records(v, why);
	if (!cJSON_IsArray(v)) {
		*why = "expected a list of instances";
		return NULL;
	}
	return cJSON_Duplicate(v, 1);
}

void
mlflow_invocations(struct route_call *c)
{
	struct route_scratch *s = c->s;
	const struct model *m;
	const char *why = NULL, *key = "instances";
	struct verr_loc loc;
	cJSON *items;
	size_t n = 0;
	char msg[256];
	int status;

	if ((m = route_find_model(c, &status, msg, sizeof(msg))) == NULL) {
		mlflow_error(c, status, msg);
		return;
	}
	verrs_reset(&s->errs);
	if (mlflow_is_csv(c->req->content_type) && !c->req->body_too_large &&
	    c->req->body_error == NULL) {
		mlflow_csv(c, m);
		return;
	}
	if (predict_check_body(c, 1) < 0) {
		mlflow_error(c, c->res->status, c->res->status == 413 ?
		    "request body too large" : c->res->status == 400 ?
		    c->req->body_error : "send application/json or "
		    "text/csv");
		return;
	}
	input_free(&s->in);
	if (decode_json(c->req->body, c->req->body_len, &s->in,
	    &s->errs) < 0) {
		mlflow_invalid(c);
		return;
	}
	items = mlflow_records(s->in.json, &key, &why);
	if (items == NULL) {
		mlflow_error(c, 400, why);
		input_free(&s->in);
		return;
	}
	loc = verr_loc_name(NULL, key, strlen(key));
	if (predict_validate_items(c, m, items, &loc, &n) < 0)
		mlflow_invalid(c);
	else if (predict_run(c, m, n) == 0)
		mlflow_answer(c, m, n);
	else
		mlflow_error(c, c->res->status, c->why);
	cJSON_Delete(items);
	input_free(&s->in);
}
