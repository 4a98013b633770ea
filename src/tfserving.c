/* tfserving: TensorFlow Serving's REST API over the same models: model
 * status and :predict with "instances" (rows) or "inputs" (columns). */
#include "decode.h"
#include "route.h"
#include "tabular.h"

#include <string.h>

static void
tfs_error(struct route_call *c, int status, const char *msg)
{
	struct buf *b = &c->res->body;

	c->res->status = status;
	buf_reset(b);
	buf_puts(b, "{\"error\":");
	buf_json_str(b, msg);
	buf_putc(b, '}');
}

void
tfs_status(struct route_call *c)
{
	const struct model *m;
	struct buf *b = &c->res->body;
	char why[256];
	size_t i, k = 0;
	int status;

	if ((m = route_find_model(c, &status, why, sizeof(why))) == NULL) {
		tfs_error(c, status, why);
		return;
	}
	buf_puts(b, "{\"model_version_status\":[");
	for (i = 0; i < c->reg->n; i++) {
		const struct model *v = c->reg->entries[i].model;

		if (v == NULL || strcmp(v->name, m->name) != 0 ||
		    (c->n_params > 1 && v != m))
			continue;
		if (k++ > 0)
			buf_putc(b, ',');
		buf_puts(b, "{\"version\":");
		buf_json_str(b, v->version);
		buf_puts(b, ",\"state\":\"AVAILABLE\",\"status\":{\"error_code\":"
		    "\"OK\",\"error_message\":\"\"}}");
	}
	buf_puts(b, "]}");
}

/* Per instance: a classifier's probabilities (its label without them),
 * or a regressor's value, as a TF model's output tensor would be. */
static void
tfs_answer(struct route_call *c, const struct model *m, size_t n)
{
	struct buf *b = &c->res->body;
	struct prediction p;
	size_t i, k;

	buf_puts(b, "{\"predictions\":[");
	for (i = 0; i < n; i++) {
		predict_result(c, m, i, &p);
		if (i > 0)
			buf_putc(b, ',');
		if (m->task == MODEL_REGRESSION)
			buf_json_double(b, p.value);
		else if (!m->has_proba)
			buf_puts(b, m->class_json[p.class_index]);
		else {
			buf_putc(b, '[');
			for (k = 0; k < m->n_classes; k++) {
				if (k > 0)
					buf_putc(b, ',');
				buf_json_double(b, p.proba[k]);
			}
			buf_putc(b, ']');
		}
	}
	buf_puts(b, "]}");
}

void
tfs_predict(struct route_call *c)
{
	struct route_scratch *s = c->s;
	const struct model *m;
	const cJSON *inst, *inputs, *mem;
	const char *why = NULL, *key;
	struct verr_loc loc;
	cJSON *items = NULL;
	size_t n = 0;
	char msg[256];
	int status;

	if ((m = route_find_model(c, &status, msg, sizeof(msg))) == NULL) {
		tfs_error(c, status, msg);
		return;
	}
	if (predict_check_body(c, 1) < 0) {
		tfs_error(c, c->res->status, c->res->status == 413 ?
		    "request body too large" : c->res->status == 400 ?
		    c->req->body_error : "send application/json");
		return;
	}
	input_free(&s->in);
	verrs_reset(&s->errs);
	if (decode_json(c->req->body, c->req->body_len, &s->in,
	    &s->errs) < 0)
		goto invalid;
	for (mem = s->in.json->child; mem != NULL; mem = mem->next)
		if (strcmp(mem->string, "instances") &&
		    strcmp(mem->string, "inputs") &&
		    strcmp(mem->string, "signature_name")) {
			tfs_error(c, 400, "unknown key: expected instances or "
			    "inputs, and optionally signature_name");
			goto done;
		}
	inst = cJSON_GetObjectItem(s->in.json, "instances");
	inputs = cJSON_GetObjectItem(s->in.json, "inputs");
	if ((inst == NULL) == (inputs == NULL)) {
		tfs_error(c, 400, "give exactly one of instances or inputs");
		goto done;
	}
	key = inst ? "instances" : "inputs";
	items = inst ? cJSON_Duplicate(inst, 1) : cJSON_IsObject(inputs) ?
	    tabular_columns_to_records(inputs, &why) :
	    cJSON_Duplicate(inputs, 1);
	if (items == NULL) {
		tfs_error(c, 400, why);
		goto done;
	}
	loc = verr_loc_name(NULL, key, strlen(key));
	if (predict_validate_items(c, m, items, &loc, &n) < 0)
		goto invalid;
	if (predict_run(c, m, n) == 0)
		tfs_answer(c, m, n);
	else
		tfs_error(c, c->res->status, c->why);
	goto done;
invalid:
	{
		struct buf t = BUF_INIT;

		verrs_summary(&s->errs, &t);
		tfs_error(c, 400, t.data);
		buf_free(&t);
	}
done:
	cJSON_Delete(items);
	input_free(&s->in);
}
