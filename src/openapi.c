/* openapi: GET /openapi.json, an OpenAPI 3.1 document of the models in the
 * request's registry snapshot: one path per model and version, each with
 * its own request schema (from describe.c), response schema and examples
 * (the model's test input), plus the fixed endpoints and error shapes. */
#include "config.h"
#include "describe.h"
#include "route.h"
#include "xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A component name: [A-Za-z0-9._-], at most "name_version" plus a suffix. */
#define OPENAPI_KEY_MAX 160

/* What the document is built from: the snapshot and, per entry, the
 * prefix of its components' names (empty for an entry with no model). */
struct openapi {
	const struct registry	 *reg;
	const struct route_env	 *env;
	char			(*key)[OPENAPI_KEY_MAX];
	struct buf		 *b;
};

/* The shapes every endpoint shares: FastAPI's error bodies and the fixed
 * endpoints' answers. */
static const char openapi_common_schemas[] =
	"\"HTTPError\":{\"type\":\"object\",\"title\":\"HTTPError\","
	"\"properties\":{\"detail\":{\"type\":\"string\"}},"
	"\"required\":[\"detail\"]},"
	"\"ValidationError\":{\"type\":\"object\",\"title\":\"ValidationError\","
	"\"properties\":{"
	"\"type\":{\"type\":\"string\",\"description\":\"What is wrong: "
	"missing, float_type, greater_than, enum, extra_forbidden, ...\"},"
	"\"loc\":{\"type\":\"array\",\"items\":{\"anyOf\":["
	"{\"type\":\"string\"},{\"type\":\"integer\"}]},"
	"\"description\":\"Where: [\\\"body\\\", field] or [\\\"body\\\", "
	"\\\"instances\\\", row, field]\"},"
	"\"msg\":{\"type\":\"string\"},"
	"\"input\":{\"description\":\"The value that failed, as sent\"},"
	"\"ctx\":{\"type\":\"object\",\"description\":\"The bound or the "
	"expected values\"}},"
	"\"required\":[\"type\",\"loc\",\"msg\"]},"
	"\"HTTPValidationError\":{\"type\":\"object\","
	"\"title\":\"HTTPValidationError\",\"properties\":{\"detail\":{"
	"\"type\":\"array\",\"maxItems\":64,\"items\":{\"$ref\":"
	"\"#/components/schemas/ValidationError\"}}},"
	"\"required\":[\"detail\"]},"
	"\"Health\":{\"type\":\"object\",\"properties\":{"
	"\"status\":{\"const\":\"healthy\"},"
	"\"model_loaded\":{\"type\":\"boolean\"}},"
	"\"required\":[\"status\",\"model_loaded\"]},"
	"\"Ready\":{\"type\":\"object\",\"properties\":{"
	"\"ready\":{\"const\":true}},\"required\":[\"ready\"]},"
	"\"NotReady\":{\"type\":\"object\",\"properties\":{"
	"\"ready\":{\"const\":false},\"error\":{\"type\":\"string\"}},"
	"\"required\":[\"ready\",\"error\"]},"
	"\"VersionInfo\":{\"type\":\"object\",\"properties\":{"
	"\"version\":{\"type\":\"string\"},"
	"\"state\":{\"enum\":[\"ready\"]},"
	"\"default\":{\"type\":\"boolean\"},"
	"\"file\":{\"type\":\"string\"},"
	"\"reload_error\":{\"type\":\"string\",\"description\":\"Why the "
	"last reload of this file failed; this version keeps serving\"}},"
	"\"required\":[\"version\",\"state\",\"default\",\"file\"]},"
	"\"ModelSummary\":{\"oneOf\":["
	"{\"type\":\"object\",\"properties\":{"
	"\"name\":{\"type\":\"string\"},"
	"\"task\":{\"enum\":[\"classification\",\"regression\"]},"
	"\"versions\":{\"type\":\"array\",\"items\":{\"$ref\":"
	"\"#/components/schemas/VersionInfo\"}}},"
	"\"required\":[\"name\",\"task\",\"versions\"]},"
	"{\"type\":\"object\",\"description\":\"A file that never loaded\","
	"\"properties\":{\"file\":{\"type\":\"string\"},"
	"\"state\":{\"const\":\"failed\"},\"error\":{\"type\":\"string\"}},"
	"\"required\":[\"file\",\"state\",\"error\"]}]},"
	"\"ModelList\":{\"type\":\"object\",\"properties\":{"
	"\"models\":{\"type\":\"array\",\"items\":{\"$ref\":"
	"\"#/components/schemas/ModelSummary\"}},"
	"\"default\":{\"oneOf\":[{\"type\":\"null\"},{\"type\":\"object\","
	"\"properties\":{\"name\":{\"type\":\"string\"},"
	"\"version\":{\"type\":\"string\"}},"
	"\"required\":[\"name\",\"version\"]}]},"
	"\"generation\":{\"type\":\"integer\",\"minimum\":1}},"
	"\"required\":[\"models\",\"default\",\"generation\"]},"
	"\"ModelInfo\":{\"type\":\"object\",\"properties\":{"
	"\"name\":{\"type\":\"string\"},\"version\":{\"type\":\"string\"},"
	"\"task\":{\"enum\":[\"classification\",\"regression\"]},"
	"\"estimator\":{\"type\":\"string\"},"
	"\"description\":{\"type\":\"string\"},"
	"\"features\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
	"\"properties\":{\"name\":{\"type\":\"string\"},"
	"\"required\":{\"type\":\"boolean\"},"
	"\"schema\":{\"type\":\"object\",\"description\":\"The feature as a "
	"JSON Schema\"}},\"required\":[\"name\",\"required\",\"schema\"]}},"
	"\"classes\":{\"type\":\"array\"},"
	"\"class_names\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
	"\"probabilities\":{\"type\":\"boolean\"},"
	"\"versions\":{\"type\":\"array\",\"items\":{\"$ref\":"
	"\"#/components/schemas/VersionInfo\"}}},"
	"\"required\":[\"name\",\"version\",\"task\",\"estimator\","
	"\"features\",\"versions\"]}";

/* Responses shared by the operations, by status. */
#define OPENAPI_ERROR(desc) "{\"description\":\"" desc "\",\"content\":" \
	"{\"application/json\":{\"schema\":{\"$ref\":" \
	"\"#/components/schemas/HTTPError\"}}}}"
static const char openapi_common_responses[] =
	"\"NotFound\":" OPENAPI_ERROR("No such model or version") ","
	"\"MethodNotAllowed\":{\"description\":\"Any path answers a method "
	"it does not take with 405 and an Allow header\",\"headers\":{"
	"\"Allow\":{\"schema\":{\"type\":\"string\"}}},\"content\":{"
	"\"application/json\":{\"schema\":{\"$ref\":"
	"\"#/components/schemas/HTTPError\"}}}},"
	"\"RequestTimeout\":" OPENAPI_ERROR("The body stopped arriving for "
	"longer than --io-timeout, or was not whole after --body-timeout") ","
	"\"PayloadTooLarge\":" OPENAPI_ERROR("The body is larger than "
	"--max-body; it was not read") ","
	"\"UnsupportedMediaType\":" OPENAPI_ERROR("A Content-Type other than "
	"JSON or a form, or a charset other than UTF-8") ","
	"\"ValidationFailed\":{\"description\":\"Validation Error: every "
	"failing field (at most 64)\",\"content\":{\"application/json\":{"
	"\"schema\":{\"$ref\":\"#/components/schemas/HTTPValidationError\"}"
	"}}},"
	"\"ModelFailure\":" OPENAPI_ERROR("The model produced a non-finite "
	"output for this input") ","
	"\"NoModel\":" OPENAPI_ERROR("No model is loaded");

/* Writes one row value as a client sends it: a number, null (NaN), or a
 * category's string (any string, for an unknown one the feature ignores). */
static void
openapi_value(struct buf *b, const struct feature *f, double x)
{
	if (f->type != FEATURE_CATEGORY || isnan(x))
		buf_json_double(b, x);	/* NaN: null */
	else if (x >= 0 && (size_t)x < f->n_categories)
		buf_json_strn(b, f->categories[(size_t)x],
		    f->category_len[(size_t)x]);
	else
		buf_puts(b, "\"(unknown)\"");
}

/* Writes the model's test input as an object keyed by feature name. */
static void
openapi_row_object(struct buf *b, const struct model *m)
{
	size_t i;

	buf_putc(b, '{');
	for (i = 0; i < m->schema.n; i++) {
		const struct feature *f = &m->schema.features[i];

		if (i > 0)
			buf_putc(b, ',');
		buf_json_strn(b, f->name, f->name_len);
		buf_putc(b, ':');
		openapi_value(b, f, m->test_input[i]);
	}
	buf_putc(b, '}');
}

/* Writes the model's test input in schema order, as a JSON array. */
static void
openapi_row_array(struct buf *b, const struct model *m)
{
	size_t i;

	buf_putc(b, '[');
	for (i = 0; i < m->schema.n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		openapi_value(b, &m->schema.features[i], m->test_input[i]);
	}
	buf_putc(b, ']');
}

/* Whether m takes {"features": [...]} and {"instances": [...]}: not when a
 * feature has that name (predict.c and schema.c then read it as the
 * feature). */
static int
openapi_takes(const struct model *m, const char *field)
{
	return schema_lookup(&m->schema, field, strlen(field)) < 0;
}

/* Writes {"$ref": "#/components/schemas/<key>.<what>"}, with a title
 * unless title is NULL. */
static void
openapi_ref_titled(struct buf *b, const char *key, const char *what,
    const char *title)
{
	buf_printf(b, "{\"$ref\":\"#/components/schemas/%s.%s\"", key, what);
	if (title != NULL)
		buf_printf(b, ",\"title\":\"%s\"", title);
	buf_putc(b, '}');
}

static void
openapi_ref(struct buf *b, const char *key, const char *what)
{
	openapi_ref_titled(b, key, what, NULL);
}

/* Fills o->key: "<name>_<version>" with '+' made '_', or "model<i>" for
 * all but one of the models that would get the same one. A "model<i>" has
 * no '_', which every "<name>_<version>" has, so the keys are unique. */
static void
openapi_keys(struct openapi *o)
{
	const struct registry *r = o->reg;
	size_t i, j;
	char *p;

	o->key = xcalloc(r->n ? r->n : 1, sizeof(*o->key));
	for (i = 0; i < r->n; i++) {
		const struct model *m = r->entries[i].model;

		if (m == NULL)
			continue;
		snprintf(o->key[i], OPENAPI_KEY_MAX, "%s_%s", m->name,
		    m->version);
		for (p = o->key[i]; (p = strchr(p, '+')) != NULL; )
			*p = '_';
	}
	for (i = 0; i < r->n; i++)
		for (j = 0; j < r->n; j++)
			if (i != j && o->key[i][0] != '\0' &&
			    strcmp(o->key[i], o->key[j]) == 0) {
				snprintf(o->key[i], OPENAPI_KEY_MAX,
				    "model%zu", i);
				break;
			}
}

/* The registry index of m. */
static size_t
openapi_index(const struct openapi *o, const struct model *m)
{
	size_t i;

	for (i = 0; i < o->reg->n; i++)
		if (o->reg->entries[i].model == m)
			break;
	return i;
}

/* Writes the properties of one prediction (what model_render writes),
 * without braces, and sets *req to the JSON list of the required ones. */
static void
openapi_prediction_props(struct buf *b, const struct model *m,
    const char **req)
{
	size_t k;

	if (m->task == MODEL_REGRESSION) {
		buf_puts(b, "\"prediction\":{\"type\":\"number\"}");
		*req = "\"prediction\"";
		return;
	}
	buf_puts(b, "\"prediction\":{\"description\":\"The class, as the "
	    "estimator's predict() returns it\",\"enum\":[");
	for (k = 0; k < m->n_classes; k++)
		buf_printf(b, "%s%s", k ? "," : "", m->class_json[k]);
	buf_puts(b, "]},\"label\":{\"description\":\"The class's name\","
	    "\"enum\":[");
	for (k = 0; k < m->n_classes; k++) {
		if (k > 0)
			buf_putc(b, ',');
		buf_json_str(b, m->class_names[k]);
	}
	buf_puts(b, "]}");
	if (m->n_scores == 1)
		buf_puts(b, ",\"decision_function\":{\"type\":\"number\"}");
	else if (m->n_scores > 1)
		buf_printf(b, ",\"decision_function\":{\"type\":\"array\","
		    "\"items\":{\"type\":\"number\"},\"minItems\":%zu,"
		    "\"maxItems\":%zu}", m->n_scores, m->n_scores);
	*req = "\"prediction\",\"label\"";
	if (!m->has_proba)
		return;
	buf_puts(b, ",\"confidence\":{\"type\":\"number\",\"minimum\":0,"
	    "\"maximum\":1,\"description\":\"The predicted class's "
	    "probability\"},\"probabilities\":{\"type\":\"object\","
	    "\"description\":\"predict_proba(), by class name\","
	    "\"properties\":{");
	for (k = 0; k < m->n_classes; k++) {
		if (k > 0)
			buf_putc(b, ',');
		buf_json_str(b, m->class_names[k]);
		buf_puts(b, ":{\"type\":\"number\",\"minimum\":0,"
		    "\"maximum\":1}");
	}
	buf_puts(b, "},\"required\":[");
	for (k = 0; k < m->n_classes; k++) {
		if (k > 0)
			buf_putc(b, ',');
		buf_json_str(b, m->class_names[k]);
	}
	buf_puts(b, "],\"additionalProperties\":false}");
	*req = "\"prediction\",\"label\",\"confidence\",\"probabilities\"";
}

/* Writes the "model", "version" and "request_id" properties. */
static void
openapi_answer_props(struct buf *b, const struct model *m)
{
	buf_puts(b, "\"model\":{\"const\":");
	buf_json_str(b, m->name);
	buf_puts(b, "},\"version\":{\"const\":");
	buf_json_str(b, m->version);
	buf_puts(b, "},\"request_id\":{\"type\":\"string\","
	    "\"pattern\":\"^[A-Za-z0-9._-]{1,128}$\",\"description\":\"As in "
	    "the X-Request-Id header and the audit log\"}");
}

/* Writes {"type": "array", "prefixItems": [...]}: m's features in schema
 * order. */
static void
openapi_feature_array(struct buf *b, const struct model *m)
{
	size_t i;

	buf_puts(b, "{\"type\":\"array\",\"prefixItems\":[");
	for (i = 0; i < m->schema.n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		describe_feature(b, &m->schema.features[i]);
	}
	buf_printf(b, "],\"items\":false,\"minItems\":%zu,\"maxItems\":%zu}",
	    m->schema.n, m->schema.n);
}

/* Writes the components of one model (after a comma if not first):
 * <key>.Features (named fields, also the form), <key>.FeatureList
 * (positional), <key>.Batch, <key>.Request (any of them), <key>.Prediction
 * and <key>.Predictions (the batch answer). */
static void
openapi_model_schemas(struct openapi *o, const struct model *m,
    const char *key)
{
	struct buf *b = o->b;
	const char *req;

	buf_printf(b, "\"%s.Features\":", key);
	describe_request_schema(b, m);
	if (openapi_takes(m, "features")) {
		buf_printf(b, ",\"%s.FeatureList\":{\"type\":\"object\","
		    "\"description\":\"The features in schema order\","
		    "\"properties\":{\"features\":", key);
		openapi_feature_array(b, m);
		buf_puts(b, "},\"required\":[\"features\"],"
		    "\"additionalProperties\":false}");
	}
	if (openapi_takes(m, "instances")) {
		buf_printf(b, ",\"%s.Batch\":{\"type\":\"object\","
		    "\"description\":\"Several instances: all arrays in schema "
		    "order, or all objects with named fields\","
		    "\"properties\":{\"instances\":{\"type\":\"array\","
		    "\"minItems\":1,\"maxItems\":%zu,\"items\":{\"oneOf\":[",
		    key, o->env->max_batch);
		openapi_feature_array(b, m);
		buf_putc(b, ',');
		openapi_ref(b, key, "Features");
		buf_puts(b, "]}}},\"required\":[\"instances\"],"
		    "\"additionalProperties\":false}");
	}
	buf_printf(b, ",\"%s.Request\":{\"oneOf\":[", key);
	openapi_ref_titled(b, key, "Features", "Features by name");
	if (openapi_takes(m, "features")) {
		buf_putc(b, ',');
		openapi_ref_titled(b, key, "FeatureList",
		    "Features in schema order");
	}
	if (openapi_takes(m, "instances")) {
		buf_putc(b, ',');
		openapi_ref_titled(b, key, "Batch", "Several instances");
	}
	buf_printf(b, "]},\"%s.Prediction\":{\"type\":\"object\","
	    "\"properties\":{", key);
	openapi_prediction_props(b, m, &req);
	buf_putc(b, ',');
	openapi_answer_props(b, m);
	buf_printf(b, "},\"required\":[%s,\"model\",\"version\","
	    "\"request_id\"]}", req);
	buf_printf(b, ",\"%s.Predictions\":{\"type\":\"object\","
	    "\"properties\":{\"predictions\":{\"type\":\"array\",\"items\":{"
	    "\"type\":\"object\",\"properties\":{", key);
	openapi_prediction_props(b, m, &req);
	buf_printf(b, "},\"required\":[%s]}},", req);
	openapi_answer_props(b, m);
	buf_puts(b, "},\"required\":[\"predictions\",\"model\",\"version\","
	    "\"request_id\"]}");
}

/* Writes the request body of a prediction: JSON (named, positional or
 * batch, with the test input as examples) or a form. */
static void
openapi_request_body(struct buf *b, const struct model *m, const char *key)
{
	buf_puts(b, "\"requestBody\":{\"required\":true,\"content\":{"
	    "\"application/json\":{\"schema\":");
	openapi_ref(b, key, "Request");
	buf_puts(b, ",\"examples\":{\"by_name\":{\"summary\":\"Features by "
	    "name\",\"value\":");
	openapi_row_object(b, m);
	buf_putc(b, '}');
	if (openapi_takes(m, "features")) {
		buf_puts(b, ",\"in_order\":{\"summary\":\"Features in schema "
		    "order\",\"value\":{\"features\":");
		openapi_row_array(b, m);
		buf_puts(b, "}}");
	}
	if (openapi_takes(m, "instances")) {
		buf_puts(b, ",\"batch\":{\"summary\":\"Several instances\","
		    "\"value\":{\"instances\":[");
		openapi_row_array(b, m);
		buf_putc(b, ',');
		openapi_row_array(b, m);
		buf_puts(b, "]}}");
	}
	buf_puts(b, "}},\"application/x-www-form-urlencoded\":{\"schema\":");
	openapi_ref(b, key, "Features");
	buf_puts(b, ",\"example\":");
	openapi_row_object(b, m);
	buf_puts(b, "}}}");
}

/* Writes {"post": {...}} predicting with m, a model of the snapshot, at
 * /predict (by_path 0; m NULL: none loaded, a 503), /models/{name}/predict
 * (1) or /models/{name}/versions/{version}/predict (2). what is the
 * summary. */
static void
openapi_predict_op(struct openapi *o, const struct model *m,
    const char *what, int by_path)
{
	struct buf *b = o->b;
	const char *key;

	buf_puts(b, "{\"post\":{\"tags\":[");
	if (m == NULL || !by_path)
		buf_puts(b, "\"Predict\"");
	else {
		buf_puts(b, "\"Model ");
		buf_puts(b, m->name);	/* [A-Za-z0-9_.-] */
		buf_putc(b, '"');
	}
	buf_puts(b, "],\"summary\":");
	buf_json_str(b, what);
	if (m == NULL) {
		buf_puts(b, ",\"operationId\":\"predict\",\"responses\":{"
		    "\"503\":{\"$ref\":\"#/components/responses/NoModel\"}}}}");
		return;
	}
	buf_puts(b, ",\"operationId\":");
	if (!by_path)
		buf_puts(b, "\"predict\"");
	else {
		buf_printf(b, "\"predict:%s", m->name);
		if (by_path > 1)
			buf_printf(b, ":%s", m->version);
		buf_putc(b, '"');
	}
	key = o->key[openapi_index(o, m)];
	buf_puts(b, ",");
	openapi_request_body(b, m, key);
	buf_puts(b, ",\"responses\":{\"200\":{\"description\":\"The "
	    "prediction; for {\\\"instances\\\": [...]}, one per instance\","
	    "\"headers\":{\"X-Request-Id\":{\"$ref\":"
	    "\"#/components/headers/X-Request-Id\"}},\"content\":{"
	    "\"application/json\":{\"schema\":{\"oneOf\":[");
	openapi_ref_titled(b, key, "Prediction", "One prediction");
	buf_putc(b, ',');
	openapi_ref_titled(b, key, "Predictions", "A batch's predictions");
	buf_puts(b, "]}}}}");
	if (by_path)
		buf_puts(b, ",\"404\":{\"$ref\":"
		    "\"#/components/responses/NotFound\"}");
	buf_puts(b, ",\"408\":{\"$ref\":\"#/components/responses/"
	    "RequestTimeout\"},\"413\":{\"$ref\":\"#/components/responses/"
	    "PayloadTooLarge\"},\"415\":{\"$ref\":\"#/components/responses/"
	    "UnsupportedMediaType\"},\"422\":{\"$ref\":\"#/components/"
	    "responses/ValidationFailed\"},\"500\":{\"$ref\":\"#/components/"
	    "responses/ModelFailure\"}");
	if (!by_path)
		buf_puts(b, ",\"503\":{\"$ref\":\"#/components/responses/"
		    "NoModel\"}");
	buf_puts(b, "}}}");
}

/* Writes the paths of the prediction endpoints: /predict, then per name
 * /models/{name}/predict (its latest version) and per version
 * /models/{name}/versions/{version}/predict. */
static void
openapi_predict_paths(struct openapi *o)
{
	const struct registry *r = o->reg;
	struct buf *b = o->b;
	char what[256];
	size_t i;

	if (r->dflt != NULL)
		snprintf(what, sizeof(what), "Predict with the default model, "
		    "%s %s", r->dflt->name, r->dflt->version);
	else
		snprintf(what, sizeof(what), "Predict with the default model "
		    "(none is loaded)");
	buf_puts(b, "\"/predict\":");
	openapi_predict_op(o, r->dflt, what, 0);
	for (i = 0; i < r->n; i++) {
		const struct model *m = r->entries[i].model;

		if (m == NULL)
			continue;
		if (registry_find(r, m->name, strlen(m->name), NULL, 0) ==
		    m) {
			snprintf(what, sizeof(what), "Predict with %s (latest "
			    "version, %s)", m->name, m->version);
			buf_printf(b, ",\"/models/%s/predict\":", m->name);
			openapi_predict_op(o, m, what, 1);
		}
		snprintf(what, sizeof(what), "Predict with %s %s", m->name,
		    m->version);
		buf_printf(b, ",\"/models/%s/versions/%s/predict\":", m->name,
		    m->version);
		openapi_predict_op(o, m, what, 2);
	}
}

/* Writes the paths of /models, /models/{name}, /health and /ready. */
static void
openapi_other_paths(struct openapi *o)
{
	const struct registry *r = o->reg;
	struct buf *b = o->b;
	size_t i, k = 0;

	buf_puts(b, ",\"/models\":{\"get\":{\"tags\":[\"Models\"],"
	    "\"summary\":\"The loaded models, their versions and state\","
	    "\"operationId\":\"models\",\"responses\":{\"200\":{"
	    "\"description\":\"The models\",\"content\":{\"application/json\":"
	    "{\"schema\":{\"$ref\":\"#/components/schemas/ModelList\"}}}}}}}");
	buf_puts(b, ",\"/models/{name}\":{\"get\":{\"tags\":[\"Models\"],"
	    "\"summary\":\"One model: task, features, classes, versions\","
	    "\"operationId\":\"model\",\"parameters\":[{\"name\":\"name\","
	    "\"in\":\"path\",\"required\":true,\"schema\":{\"type\":"
	    "\"string\"");
	for (i = 0; i < r->n; i++) {
		const struct model *m = r->entries[i].model;

		if (m == NULL || registry_find(r, m->name, strlen(m->name),
		    NULL, 0) != m)
			continue;
		buf_puts(b, k++ ? "," : ",\"enum\":[");
		buf_json_str(b, m->name);
	}
	if (k > 0)
		buf_putc(b, ']');
	if (r->dflt != NULL) {
		buf_puts(b, "},\"example\":");
		buf_json_str(b, r->dflt->name);
	} else
		buf_putc(b, '}');
	buf_puts(b, "}],\"responses\":{\"200\":{\"description\":\"The model "
	    "(its latest version) and its versions\",\"content\":{"
	    "\"application/json\":{\"schema\":{\"$ref\":"
	    "\"#/components/schemas/ModelInfo\"}}}},\"404\":{\"$ref\":"
	    "\"#/components/responses/NotFound\"}}}}");
	buf_puts(b, ",\"/health\":{\"get\":{\"tags\":[\"Health\"],"
	    "\"summary\":\"Liveness\",\"operationId\":\"health\","
	    "\"responses\":{\"200\":{\"description\":\"The process runs\","
	    "\"content\":{\"application/json\":{\"schema\":{\"$ref\":"
	    "\"#/components/schemas/Health\"}}}}}}}");
	buf_puts(b, ",\"/ready\":{\"get\":{\"tags\":[\"Health\"],"
	    "\"summary\":\"Readiness: every model predicts its test input "
	    "and the audit log keeps up\",\"operationId\":\"ready\","
	    "\"responses\":{\"200\":{\"description\":\"Ready\",\"content\":{"
	    "\"application/json\":{\"schema\":{\"$ref\":"
	    "\"#/components/schemas/Ready\"}}}},\"503\":{\"description\":"
	    "\"Not ready\",\"content\":{\"application/json\":{\"schema\":{"
	    "\"$ref\":\"#/components/schemas/NotReady\"}}}}}}}");
}

/* Writes "info", "servers" and "tags". */
static void
openapi_head(struct openapi *o)
{
	const struct registry *r = o->reg;
	struct buf *b = o->b;
	size_t i;

	buf_puts(b, "\"openapi\":\"3.1.0\",\"info\":{\"title\":\"mlfcgi\","
	    "\"version\":");
	buf_json_str(b, PACKAGE_VERSION);
	buf_printf(b, ",\"summary\":\"Predictions from the models this "
	    "server has loaded\",\"description\":\"Generated from the models "
	    "loaded now (reload generation %lu). POST features as JSON, by "
	    "name or in schema order, several at once as "
	    "{\\\"instances\\\": [...]}, or as a form. Invalid input is a 422 "
	    "listing every failing field, as FastAPI does. Every answer has "
	    "an X-Request-Id header.\"},", r->generation);
	/* Relative to this document: right under any mount point. */
	buf_puts(b, "\"servers\":[{\"url\":\".\",\"description\":\"This "
	    "server\"}],\"tags\":[{\"name\":\"Predict\",\"description\":"
	    "\"The default model\"}");
	for (i = 0; i < r->n; i++) {
		const struct model *m = r->entries[i].model;

		if (m == NULL || registry_find(r, m->name, strlen(m->name),
		    NULL, 0) != m)
			continue;
		buf_printf(b, ",{\"name\":\"Model %s\",\"description\":",
		    m->name);
		buf_json_str(b, m->description != NULL ? m->description :
		    m->task == MODEL_CLASSIFICATION ? "A classifier" :
		    "A regressor");
		buf_putc(b, '}');
	}
	buf_puts(b, ",{\"name\":\"Models\",\"description\":\"What is "
	    "loaded\"},{\"name\":\"Health\",\"description\":\"For load "
	    "balancers and Kubernetes probes\"}]");
}

void
openapi_handle(struct route_call *c)
{
	struct openapi o;
	size_t i;

	o.reg = c->reg;
	o.env = c->env;
	o.b = &c->res->body;
	openapi_keys(&o);
	buf_putc(o.b, '{');
	openapi_head(&o);
	buf_puts(o.b, ",\"paths\":{");
	openapi_predict_paths(&o);
	openapi_other_paths(&o);
	buf_puts(o.b, "},\"components\":{\"schemas\":{");
	buf_puts(o.b, openapi_common_schemas);
	for (i = 0; i < o.reg->n; i++)
		if (o.reg->entries[i].model != NULL) {
			buf_putc(o.b, ',');
			openapi_model_schemas(&o, o.reg->entries[i].model,
			    o.key[i]);
		}
	buf_puts(o.b, "},\"responses\":{");
	buf_puts(o.b, openapi_common_responses);
	buf_puts(o.b, "},\"headers\":{\"X-Request-Id\":{\"description\":"
	    "\"The request's id: the client's X-Request-Id if well formed, "
	    "else a new one\",\"schema\":{\"type\":\"string\"}}}}}");
	free(o.key);
}
