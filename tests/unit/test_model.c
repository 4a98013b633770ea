/* Unit tests: model loading (models/iris.json and broken documents, each
 * error naming its field) and prediction with small hand-written models
 * whose outputs are computed by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "model.h"
#include "schema.h"


#define TOL 1e-12

#define assert_near(a, b) do {						\
	double a_ = (a), b_ = (b);					\
	if (!(fabs(a_ - b_) <= TOL)) {					\
		print_error("%.17g != %.17g (tolerance %g)\n", a_, b_, TOL); \
		fail();							\
	}								\
} while (0)

/* ---- helpers ------------------------------------------------------------ */

static char *
read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *text;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = malloc((size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return text;
}

static char *
iris_path(void)
{
	const char *srcdir = getenv("SRCDIR");
	static char path[4096];

	snprintf(path, sizeof(path), "%s/models/iris.json",
	    srcdir != NULL ? srcdir : ".");
	return path;
}

/* A small valid binary model; tests edit it with doc_set(). */
static const char base_doc[] =
    "{\"format\": \"mlfcgi-model/1\", \"name\": \"t\", \"version\": \"1\","
    " \"task\": \"classification\","
    " \"features\": ["
    "  {\"name\": \"x\", \"type\": \"number\", \"minimum\": 0,"
    "   \"maximum\": 10},"
    "  {\"name\": \"y\", \"type\": \"number\"}],"
    " \"classes\": [0, 1],"
    " \"estimator\": {\"type\": \"logistic_regression\","
    "  \"coef\": [[1, 2]], \"intercept\": [0.5]}}";

/* Sets (or with json NULL deletes) the member at path in doc, path being
 * '/'-separated object keys and array indices: "features/0/maximum". */
static void
doc_set(cJSON *doc, const char *path, const char *json)
{
	char buf[256], *p, *next;
	cJSON *node = doc, *child;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf; (next = strchr(p, '/')) != NULL; p = next + 1) {
		*next = '\0';
		node = cJSON_IsArray(node) ? cJSON_GetArrayItem(node, atoi(p)) :
		    cJSON_GetObjectItemCaseSensitive(node, p);
		assert_non_null(node);
	}
	if (json == NULL) {
		if (cJSON_IsArray(node))
			cJSON_DeleteItemFromArray(node, atoi(p));
		else
			cJSON_DeleteItemFromObjectCaseSensitive(node, p);
		return;
	}
	child = cJSON_Parse(json);
	assert_non_null(child);
	if (cJSON_IsArray(node)) {
		int i = atoi(p);

		if (i < cJSON_GetArraySize(node))
			cJSON_ReplaceItemInArray(node, i, child);
		else
			cJSON_AddItemToArray(node, child);
	} else if (cJSON_GetObjectItemCaseSensitive(node, p) != NULL)
		cJSON_ReplaceItemInObjectCaseSensitive(node, p, child);
	else
		cJSON_AddItemToObject(node, p, child);
}

/* Loads base (or base_doc) after up to three edits (path, json) and returns
 * the model, or NULL with the error in *err. */
static struct model *
load_edited(const char *base, const char *p1, const char *j1, const char *p2,
    const char *j2, const char *p3, const char *j3, struct model_err *err)
{
	cJSON *doc = cJSON_Parse(base != NULL ? base : base_doc);
	struct model *m;
	char *text;

	assert_non_null(doc);
	if (p1 != NULL)
		doc_set(doc, p1, j1);
	if (p2 != NULL)
		doc_set(doc, p2, j2);
	if (p3 != NULL)
		doc_set(doc, p3, j3);
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	memset(err->msg, 0, sizeof(err->msg));
	m = model_load_text(text, strlen(text), "t.json", err);
	free(text);
	return m;
}

/* Asserts that the edited document fails with exactly this message (after
 * the "t.json: " prefix). */
static void
assert_load_error3(const char *base, const char *p1, const char *j1,
    const char *p2, const char *j2, const char *p3, const char *j3,
    const char *want)
{
	struct model_err err;
	struct model *m;
	char full[600];

	m = load_edited(base, p1, j1, p2, j2, p3, j3, &err);
	if (m != NULL) {
		print_error("loaded, expected error: %s\n", want);
		model_free(m);
		fail();
	}
	snprintf(full, sizeof(full), "t.json: %s", want);
	assert_string_equal(err.msg, full);
}

static void
assert_load_error(const char *path, const char *json, const char *want)
{
	assert_load_error3(NULL, path, json, NULL, NULL, NULL, NULL, want);
}

static struct model *
load_ok(const char *text)
{
	struct model_err err;
	struct model *m;

	memset(&err, 0, sizeof(err));
	m = model_load_text(text, strlen(text), "ok.json", &err);
	if (m == NULL)
		print_error("load failed: %s\n", err.msg);
	assert_non_null(m);
	return m;
}

static struct model *
load_ok_edited(const char *p1, const char *j1, const char *p2,
    const char *j2)
{
	struct model_err err;
	struct model *m = load_edited(NULL, p1, j1, p2, j2, NULL, NULL, &err);

	if (m == NULL)
		print_error("load failed: %s\n", err.msg);
	assert_non_null(m);
	return m;
}

/* Predicts row with m; proba (n_classes) is filled for a classifier.
 * out->scores points into scratch memory that lives until the next call
 * (static: render() reads them after this returns). */
static void
predict(const struct model *m, const double *row, struct prediction *out,
    double *proba)
{
	static double scratch[64];
	size_t k;

	assert_true(model_scratch_size(m) <= 64);
	memset(out, 0, sizeof(*out));
	model_predict(m, row, scratch, out);
	assert_int_equal(model_output_finite(m, out), 0);
	/* Copy the probabilities out of the scratch memory. */
	for (k = 0; proba != NULL && k < m->n_classes; k++)
		proba[k] = out->proba[k];
	out->proba = proba;
}

static double
expit(double s)
{
	return 1.0 / (1.0 + exp(-s));
}

/* Renders the prediction as an object and parses it. */
static cJSON *
render(const struct model *m, const struct prediction *out)
{
	struct buf b = BUF_INIT;
	cJSON *j;

	buf_putc(&b, '{');
	model_render(m, out, &b);
	buf_putc(&b, '}');
	j = cJSON_Parse(b.data);
	if (j == NULL)
		print_error("not JSON: %s\n", b.data);
	assert_non_null(j);
	buf_free(&b);
	return j;
}

/* ---- iris --------------------------------------------------------------- */

static const double iris_coef[3][4] = {
	{ -0.42305431935746224, 0.9671297223529787, -2.5173861532076667,
	  -1.079541177264922 },
	{ 0.5340655779895052, -0.32128899396651733, -0.20624041423408926,
	  -0.9442043826194948 },
	{ -0.11101125863203942, -0.6458407283864623, 2.7236265674417517,
	  2.0237455598844214 },
};
static const double iris_intercept[3] = { 9.848606570112947,
	2.238043520298953, -12.086650090412059 };

static void
test_iris_loads(void **state)
{
	struct model_err err;
	struct model *m;
	const struct feature *f;
	static const double ti[4] = { 5.843333333333335, 3.057333333333334,
	    3.7580000000000027, 1.199333333333334 };
	size_t i;

	(void)state;
	m = model_load_file(iris_path(), &err);
	if (m == NULL)
		print_error("%s\n", err.msg);
	assert_non_null(m);
	assert_string_equal(m->name, "iris");
	assert_string_equal(m->version, "1.0.0");
	assert_non_null(m->description);
	assert_int_equal(m->task, MODEL_CLASSIFICATION);
	assert_int_equal(m->schema.n, 4);
	assert_int_equal(m->n_inputs, 4);
	assert_int_equal(m->n_classes, 3);
	assert_int_equal(m->prep.n_steps, 0);
	assert_ptr_equal(m->est_ops, &model_linear_classifier_ops);
	assert_int_equal(m->n_scores, 3);
	for (i = 0; i < 3; i++) {
		char want[4];

		snprintf(want, sizeof(want), "%zu", i);
		assert_string_equal(m->class_json[i], want);
	}
	assert_string_equal(m->class_names[0], "setosa");
	assert_string_equal(m->class_names[1], "versicolor");
	assert_string_equal(m->class_names[2], "virginica");

	f = &m->schema.features[0];
	assert_string_equal(f->name, "sepal_length");
	assert_int_equal(f->name_len, 12);
	assert_int_equal(f->type, FEATURE_NUMBER);
	assert_true(f->has_min && f->min_exclusive && f->min == 0);
	assert_true(f->has_max && !f->max_exclusive && f->max == 10);
	assert_true(f->required);
	assert_string_equal(f->description, "sepal length in cm");
	f = &m->schema.features[2];
	assert_string_equal(f->name, "petal_length");
	assert_true(f->has_min && !f->min_exclusive && f->min == 0);
	assert_true(f->has_max && !f->max_exclusive && f->max == 7);
	f = &m->schema.features[3];
	assert_string_equal(f->name, "petal_width");
	assert_true(f->max == 3);
	assert_int_equal(schema_lookup(&m->schema, "petal_width", 11), 3);
	for (i = 0; i < 4; i++)
		assert_true(m->test_input[i] == ti[i]);
	assert_int_equal(model_selftest(m, err.msg, sizeof(err.msg)), 0);
	model_free(m);
}

static void
test_iris_text_equals_file(void **state)
{
	struct model_err err;
	struct model *m;
	size_t len = 0;
	char *text;

	(void)state;
	text = read_text(iris_path(), &len);
	assert_non_null(text);
	m = model_load_text(text, len, "iris.json", &err);
	assert_non_null(m);
	assert_int_equal(m->n_classes, 3);
	model_free(m);
	free(text);

	m = model_load_file("/nonexistent/mlfcgi/model.json", &err);
	assert_null(m);
	assert_string_equal(err.msg, "/nonexistent/mlfcgi/model.json: cannot "
	    "open: No such file or directory");
	m = model_load_file("/tmp", &err);
	assert_null(m);
	assert_non_null(strstr(err.msg, "/tmp: not a regular file"));
}

static void
test_iris_predict(void **state)
{
	static const struct {
		double	 x[4];
		size_t	 cls;
		double	 p[3];	/* from the coefficients, by hand */
	} cases[] = {
		{ { 5.1, 3.5, 1.4, 0.2 }, 0, { 0.9815857562405158,
		    0.01841422926857547, 1.4490908726697348e-08 } },
		{ { 5.9, 3.0, 4.2, 1.5 }, 1, { 0.015181734677038337,
		    0.8988341462484891, 0.08598411907447265 } },
		{ { 6.7, 3.0, 5.2, 2.3 }, 2, { 5.596001433487466e-05,
		    0.08007780389779964, 0.9198662360878654 } },
	};
	struct model_err err;
	struct model *m;
	size_t i, k;

	(void)state;
	m = model_load_file(iris_path(), &err);
	assert_non_null(m);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct prediction out;
		double p[3], s[3], e[3], best, sum = 0;
		cJSON *j;

		predict(m, cases[i].x, &out, p);
		assert_int_equal(out.class_index, cases[i].cls);
		for (k = 0; k < 3; k++)
			assert_near(p[k], cases[i].p[k]);
		/* The same from the coefficients in this file. */
		for (k = 0; k < 3; k++)
			s[k] = iris_coef[k][0] * cases[i].x[0] +
			    iris_coef[k][1] * cases[i].x[1] +
			    iris_coef[k][2] * cases[i].x[2] +
			    iris_coef[k][3] * cases[i].x[3] + iris_intercept[k];
		best = fmax(s[0], fmax(s[1], s[2]));
		for (k = 0; k < 3; k++)
			sum += e[k] = exp(s[k] - best);
		for (k = 0; k < 3; k++)
			assert_near(p[k], e[k] / sum);
		assert_near(p[0] + p[1] + p[2], 1.0);

		j = render(m, &out);
		assert_int_equal(cJSON_GetArraySize(j), 5);
		assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j,
		    "prediction")));
		assert_int_equal(cJSON_GetObjectItem(j, "prediction")->valueint,
		    (int)cases[i].cls);
		assert_string_equal(cJSON_GetObjectItem(j, "label")->valuestring,
		    m->class_names[cases[i].cls]);
		assert_true(cJSON_GetObjectItem(j, "confidence")->valuedouble ==
		    p[cases[i].cls]);
		cJSON_Delete(j);
	}
	model_free(m);
}

/* ---- broken documents --------------------------------------------------- */

static void
test_load_base_ok(void **state)
{
	struct model *m;

	(void)state;
	m = load_ok(base_doc);
	assert_string_equal(m->name, "t");
	assert_int_equal(m->n_classes, 2);
	/* Default test input: the midpoint of [0, 10], and 0 unbounded. */
	assert_true(m->test_input[0] == 5);
	assert_true(m->test_input[1] == 0);
	/* Class names default to the labels. */
	assert_string_equal(m->class_names[0], "0");
	assert_string_equal(m->class_names[1], "1");
	model_free(m);
}

static void
test_load_not_json(void **state)
{
	struct model_err err;
	struct model *m;
	const char *doc = "{\n  \"format\": x\n}";

	(void)state;
	m = model_load_text(doc, strlen(doc), "t.json", &err);
	assert_null(m);
	assert_string_equal(err.msg, "t.json: line 2, column 13: not valid "
	    "JSON");
	m = model_load_text("{} x", 4, "t.json", &err);
	assert_null(m);
	assert_string_equal(err.msg, "t.json: line 1, column 4: not valid "
	    "JSON");
	m = model_load_text("[1]", 3, "t.json", &err);
	assert_null(m);
	assert_string_equal(err.msg, "t.json: expected a JSON object");
	m = model_load_text("", 0, "t.json", &err);
	assert_null(m);
	assert_non_null(strstr(err.msg, "not valid JSON"));
}

static void
test_load_header_errors(void **state)
{
	(void)state;
	assert_load_error("format", "\"mlfcgi-model/2\"",
	    "format: expected \"mlfcgi-model/1\"");
	assert_load_error("format", NULL, "format: expected \"mlfcgi-model/1\"");
	assert_load_error("format", "1", "format: expected \"mlfcgi-model/1\"");
	assert_load_error("colour", "\"red\"", "colour: unknown key");
	assert_load_error("Name", "\"t\"", "Name: unknown key");
	assert_load_error("name", NULL, "name: expected a string");
	assert_load_error("name", "\"bad name\"", "name: \"bad name\" is not "
	    "1-64 characters of [A-Za-z0-9_.-]");
	assert_load_error("name", "\"\"", "name: \"\" is not 1-64 characters "
	    "of [A-Za-z0-9_.-]");
	assert_load_error("version", NULL, "version: expected a string");
	assert_load_error("version", "\"1/2\"", "version: \"1/2\" is not 1-64 "
	    "characters of [A-Za-z0-9_.+-]");
	assert_load_error("task", "\"clustering\"", "task: expected "
	    "\"classification\" or \"regression\"");
	assert_load_error("description", "5", "description: expected a "
	    "string");
}

static void
test_load_feature_errors(void **state)
{
	(void)state;
	assert_load_error("features", "[]", "features: expected an array of 1 "
	    "to 65536 feature definitions");
	assert_load_error("features", "{}", "features: expected an array of 1 "
	    "to 65536 feature definitions");
	assert_load_error("features/0", "5", "features[0]: expected an object");
	assert_load_error("features/0/maximum", "\"10\"",
	    "features[0].maximum: expected a finite number");
	assert_load_error("features/1/exclusiveMinimum", "null",
	    "features[1].exclusiveMinimum: expected a finite number");
	assert_load_error("features/0/colour", "1",
	    "features[0].colour: unknown key");
	assert_load_error("features/1/name", "\"x\"",
	    "features[1].name: \"x\" is used twice");
	assert_load_error("features/1/name", NULL,
	    "features[1].name: expected a string");
	assert_load_error("features/1/name", "\"a b\"", "features[1].name: "
	    "\"a b\" is not 1-128 characters of [A-Za-z0-9_.-]");
	assert_load_error("features/0/type", "\"string\"",
	    "features[0].type: expected \"number\", \"integer\" or "
	    "\"category\"");
	assert_load_error("features/0/type", NULL,
	    "features[0].type: expected \"number\", \"integer\" or "
	    "\"category\"");
	assert_load_error("features/1/required", "\"no\"",
	    "features[1].required: expected true or false");
	assert_load_error("features/1/required", "false", "features[1].default: "
	    "an optional feature needs a finite number (or null, if nullable) as default");
	assert_load_error("features/1/default", "1", "features[1].default: "
	    "only an optional feature (\"required\": false) has a default");
	assert_load_error("features/1/description", "[]",
	    "features[1].description: expected a string");
	assert_load_error3(NULL, "features/0/exclusiveMinimum", "1", NULL,
	    NULL, NULL, NULL, "features[0]: minimum and exclusiveMinimum both "
	    "given");
	assert_load_error3(NULL, "features/0/exclusiveMaximum", "1", NULL,
	    NULL, NULL, NULL, "features[0]: maximum and exclusiveMaximum both "
	    "given");
}

static void
test_load_bounds_admit_no_value(void **state)
{
	struct model *m;

	(void)state;
	assert_load_error3(NULL, "features/0/minimum", "5",
	    "features/0/maximum", "4", NULL, NULL,
	    "features[0]: the bounds admit no value");
	assert_load_error3(NULL, "features/0/minimum", NULL,
	    "features/0/exclusiveMinimum", "5", "features/0/maximum", "5",
	    "features[0]: the bounds admit no value");
	assert_load_error3(NULL, "features/0/minimum", "5",
	    "features/0/maximum", NULL, "features/0/exclusiveMaximum", "5",
	    "features[0]: the bounds admit no value");
	/* [5, 5] admits 5: it loads, and the test input is 5. */
	m = load_ok_edited("features/0/minimum", "5", "features/0/maximum",
	    "5");
	assert_true(m->test_input[0] == 5);
	model_free(m);
}

/* Regression (was a bug): model_load_feature() (src/model_load.c) checks that a feature's
 * bounds admit a value, but not that an integer feature's bounds admit an
 * integer ({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum":
 * 1} loads, though no request can ever pass), nor that an optional
 * feature's default lies within its bounds and type ({"required": false,
 * "default": 50, "maximum": 10} loads, and schema_validate() then feeds 50
 * to the estimator without a check). Expected: both rejected naming the
 * feature. */
static void
test_load_impossible_integer_and_default(void **state)
{
	struct model_err err;
	struct model *m;

	(void)state;
	m = load_edited(NULL, "features/0/type", "\"integer\"",
	    "features/0/minimum", NULL, "features/0/exclusiveMinimum", "0",
	    &err);
	assert_non_null(m);	/* 0 < x <= 10 has integers: fine */
	model_free(m);
	m = load_edited(NULL, "features/0", "{\"name\": \"x\", \"type\": "
	    "\"integer\", \"exclusiveMinimum\": 0, \"exclusiveMaximum\": 1}",
	    NULL, NULL, NULL, NULL, &err);
	assert_null(m);
	assert_non_null(strstr(err.msg, "features[0]"));
	m = load_edited(NULL, "features/0/required", "false",
	    "features/0/default", "50", NULL, NULL, &err);
	assert_null(m);
	assert_non_null(strstr(err.msg, "features[0]"));
}

/* Regression (was a bug): model_feature_midpoint() (src/model_load.c) computes the default
 * test input as min + (max - min) / 2, which overflows to +inf for wide
 * bounds: a regression model whose feature has "minimum": -1e308,
 * "maximum": 1e308 and no test_input fails to load with "model r 2: test
 * prediction is not finite" (a multinomial one likewise). Expected: it
 * loads, with test_input[0] == 0 (min / 2 + max / 2 does not overflow). */
static void
test_load_wide_bounds_midpoint(void **state)
{
	static const char reg[] =
	    "{\"format\": \"mlfcgi-model/1\", \"name\": \"r\", \"version\": \"2\","
	    " \"task\": \"regression\","
	    " \"features\": [{\"name\": \"x\", \"type\": \"number\","
	    "  \"minimum\": -1e308, \"maximum\": 1e308}],"
	    " \"estimator\": {\"type\": \"linear_regression\","
	    "  \"coef\": [1], \"intercept\": 0}}";
	struct model_err err;
	struct model *m;

	(void)state;
	m = model_load_text(reg, strlen(reg), "t.json", &err);
	if (m == NULL)
		print_error("%s\n", err.msg);
	assert_non_null(m);
	assert_true(m->test_input[0] == 0);
	model_free(m);
}

static void
test_load_class_errors(void **state)
{
	struct model *m;

	(void)state;
	assert_load_error("classes", "[0]", "classes: expected an array of at "
	    "least 2 class labels");
	assert_load_error("classes", NULL, "classes: expected an array of at "
	    "least 2 class labels");
	assert_load_error3(NULL, "classes", "[0, 1, 1]", "estimator/coef",
	    "[[1, 2], [1, 2], [1, 2]]", "estimator/intercept", "[0, 0, 0]",
	    "classes[2]: repeats classes[1]");
	assert_load_error3(NULL, "classes", "[0, 1, \"2\"]", NULL, NULL, NULL,
	    NULL, "classes[2]: expected an integer, like the first label");
	assert_load_error("classes", "[0, 1.5]", "classes[1]: expected an "
	    "integer, like the first label");
	assert_load_error("classes", "[\"a\", 1]", "classes[1]: expected a "
	    "string, like the first label");
	assert_load_error("classes", "[\"a\", \"a\"]", "classes[1]: repeats "
	    "classes[0]");
	assert_load_error("class_names", "[\"a\"]", "class_names: expected 2 "
	    "strings");
	assert_load_error("class_names", "[\"a\", \"a\"]",
	    "class_names[1]: repeats class_names[0]");
	assert_load_error("class_names", "[\"a\", \"\"]",
	    "class_names[1]: expected a non-empty string");
	assert_load_error("class_names", "[\"a\", 2]",
	    "class_names[1]: expected a non-empty string");

	/* String labels: the JSON form is quoted, names default to them. */
	m = load_ok_edited("classes", "[\"no\", \"yes\\\"\"]", NULL, NULL);
	assert_string_equal(m->class_json[0], "\"no\"");
	assert_string_equal(m->class_json[1], "\"yes\\\"\"");
	assert_string_equal(m->class_names[1], "yes\"");
	model_free(m);
	/* Negative integer labels. */
	m = load_ok_edited("classes", "[-1, 1]", NULL, NULL);
	assert_string_equal(m->class_json[0], "-1");
	model_free(m);
}

static void
test_load_estimator_errors(void **state)
{
	static const char multi3[] = "[[1, 2], [3, 4], [5, 6]]";

	(void)state;
	assert_load_error("estimator", NULL, "estimator.type: expected a "
	    "string");
	assert_load_error("estimator/type", "\"svm\"", "estimator.type: unknown "
	    "estimator \"svm\"");
	assert_load_error("estimator/extra", "1", "estimator.extra: unknown "
	    "key");
	assert_load_error("estimator/coef", NULL, "estimator.coef: expected a "
	    "non-empty array");
	assert_load_error("estimator/coef", "[]", "estimator.coef: expected a "
	    "non-empty array");
	assert_load_error("estimator/coef", "[1, 2]", "estimator.coef[0]: "
	    "expected an array of 2 numbers");
	assert_load_error("estimator/coef", "[[1, \"2\"]]",
	    "estimator.coef[0][1]: expected a finite number");
	assert_load_error("estimator/coef", "[[1, 1e999]]",
	    "estimator.coef[0][1]: expected a finite number");
	assert_load_error("estimator/coef", "[[1, 2, 3]]", "estimator.coef[0]: "
	    "expected 2 numbers, found 3");
	/* Three classes: row 1 too short. */
	assert_load_error3(NULL, "classes", "[0, 1, 2]", "estimator/coef",
	    "[[1, 2], [3], [5, 6]]", NULL, NULL,
	    "estimator.coef[1]: expected 2 numbers, found 1");
	/* Wrong number of rows. */
	assert_load_error3(NULL, "classes", "[0, 1, 2]", "estimator/coef",
	    "[[1, 2], [3, 4]]", "estimator/intercept", "[0, 0]",
	    "estimator.coef: 2 rows for 3 classes (expected 3, or 1 for two "
	    "classes)");
	/* One row is only for two classes. */
	assert_load_error3(NULL, "classes", "[0, 1, 2]", NULL, NULL, NULL,
	    NULL, "estimator.coef: 1 rows for 3 classes (expected 3, or 1 for "
	    "two classes)");
	assert_load_error("estimator/coef", "[[1, 2], [3, 4], [5, 6]]",
	    "estimator.intercept: expected 3 numbers, found 1");
	assert_load_error("estimator/intercept", "[0.5, 1]",
	    "estimator.intercept: expected 1 numbers, found 2");
	assert_load_error("estimator/intercept", NULL, "estimator.intercept: "
	    "expected an array of 1 numbers");
	assert_load_error3(NULL, "classes", "[0, 1, 2]", "estimator/coef",
	    multi3, "estimator/intercept", "[0, 0, 0]",
	    "estimator.multi_class: expected \"multinomial\" or \"ovr\"");
	{
		char want[] = "estimator.multi_class: expected \"multinomial\" "
		    "or \"ovr\", not \"auto\"";
		cJSON *doc = cJSON_Parse(base_doc);
		char *text;

		doc_set(doc, "classes", "[0, 1, 2]");
		doc_set(doc, "estimator/coef", multi3);
		doc_set(doc, "estimator/intercept", "[0, 0, 0]");
		text = cJSON_PrintUnformatted(doc);
		assert_load_error3(text, "estimator/multi_class", "\"auto\"",
		    NULL, NULL, NULL, NULL, want);
		free(text);
		cJSON_Delete(doc);
	}
	/* A classifier's estimator on a regression task and back. */
	assert_load_error3(NULL, "task", "\"regression\"", "classes", NULL,
	    NULL, NULL, "estimator.type: logistic_regression needs task "
	    "\"classification\"");
	assert_load_error3(NULL, "estimator/type", "\"linear_regression\"",
	    NULL, NULL, NULL, NULL, "estimator.type: linear_regression needs "
	    "task \"regression\"");
	assert_load_error("task", "\"regression\"", "classes: a regression "
	    "model has no classes");
}

static void
test_load_linear_errors(void **state)
{
	static const char reg[] =
	    "{\"format\": \"mlfcgi-model/1\", \"name\": \"r\", \"version\": \"2\","
	    " \"task\": \"regression\","
	    " \"features\": [{\"name\": \"x\", \"type\": \"number\"},"
	    "  {\"name\": \"y\", \"type\": \"number\"}],"
	    " \"estimator\": {\"type\": \"linear_regression\","
	    "  \"coef\": [2, -3], \"intercept\": 1}}";

	(void)state;
	assert_load_error3(reg, "class_names", "[\"a\", \"b\"]", NULL, NULL,
	    NULL, NULL, "class_names: a regression model has no classes");
	assert_load_error3(reg, "estimator/coef", "[[1, 2], [3, 4]]", NULL,
	    NULL, NULL, NULL, "estimator.coef: expected one row, not 2");
	assert_load_error3(reg, "estimator/coef", "[1]", NULL, NULL, NULL,
	    NULL, "estimator.coef: expected 2 numbers, found 1");
	assert_load_error3(reg, "estimator/coef", "[[1, 2], 3]", NULL, NULL,
	    NULL, NULL, "estimator.coef[1]: expected an array of 2 numbers");
	assert_load_error3(reg, "estimator/intercept", "[1, 2]", NULL, NULL,
	    NULL, NULL, "estimator.intercept: expected 1 numbers, found 2");
	assert_load_error3(reg, "estimator/intercept", "\"1\"", NULL, NULL,
	    NULL, NULL, "estimator.intercept: expected an array of 1 numbers");
	assert_load_error3(reg, "estimator/multi_class", "\"ovr\"", NULL, NULL,
	    NULL, NULL, "estimator.multi_class: unknown key");
}

static void
test_load_preprocessing_errors(void **state)
{
	(void)state;
	assert_load_error("preprocessing", "{}", "preprocessing: expected an "
	    "array of steps");
	assert_load_error("preprocessing", "[5]", "preprocessing[0].type: "
	    "expected a string");
	assert_load_error("preprocessing", "[{\"type\": \"pca\"}]",
	    "preprocessing[0].type: unknown step \"pca\"");
	assert_load_error("preprocessing", "[{\"type\": \"standard_scaler\", "
	    "\"mean\": [0, 0], \"scale\": [1, 0]}]",
	    "preprocessing[0].scale[1]: a scale of 0");
	assert_load_error("preprocessing", "[{\"type\": \"standard_scaler\", "
	    "\"mean\": [0, 0], \"scale\": [1, 1]}, {\"type\": "
	    "\"standard_scaler\", \"mean\": [0], \"scale\": [1, 1]}]",
	    "preprocessing[1].mean: expected 2 numbers, found 1");
	assert_load_error("preprocessing", "[{\"type\": \"standard_scaler\", "
	    "\"mean\": [0, 0], \"scale\": [1, 1], \"with_std\": true}]",
	    "preprocessing[0].with_std: unknown key");
	assert_load_error("preprocessing", "[{\"type\": \"standard_scaler\", "
	    "\"mean\": [0, 0]}]", "preprocessing[0].scale: expected an array "
	    "of 2 numbers");
}

static void
test_load_test_input_errors(void **state)
{
	(void)state;
	assert_load_error("test_input", "[11, 0]", "test_input: does not pass "
	    "the feature schema (less_than_equal)");
	assert_load_error("test_input", "[1]", "test_input: does not pass the "
	    "feature schema (too_short)");
	assert_load_error("test_input", "{\"x\": 1}", "test_input: does not "
	    "pass the feature schema (list_type)");
	assert_load_error("test_input", "[1, \"2\"]", "test_input: does not "
	    "pass the feature schema (float_type)");
}

static void
test_load_selftest_not_finite(void **state)
{
	static const char reg[] =
	    "{\"format\": \"mlfcgi-model/1\", \"name\": \"r\", \"version\": \"2\","
	    " \"task\": \"regression\","
	    " \"features\": [{\"name\": \"x\", \"type\": \"number\"},"
	    "  {\"name\": \"y\", \"type\": \"number\"}],"
	    " \"estimator\": {\"type\": \"linear_regression\","
	    "  \"coef\": [1e308, 1e308], \"intercept\": 0},"
	    " \"test_input\": [10, 10]}";

	(void)state;
	/* The loader predicts test_input: an overflow is refused. */
	assert_load_error3(reg, NULL, NULL, NULL, NULL, NULL, NULL,
	    "model r 2: test prediction is not finite");
}

/* ---- hand-written models ------------------------------------------------ */

static void
test_predict_binary(void **state)
{
	static const struct {
		double	 x[2];
		size_t	 cls;
		double	 p1;
	} cases[] = {
		/* s = x + 2y + 0.5 */
		{ { 1, -1 }, 0, 0.3775406687981454 },	/* s = -0.5 */
		{ { 1, 1 }, 1, 0.9706877692486436 },	/* s = 3.5 */
		{ { -0.5, 0 }, 0, 0.5 },		/* s = 0: class 0 */
		{ { 0, 0 }, 1, 0.6224593312018546 },	/* s = 0.5 */
		{ { -1000, 0 }, 0, 0 },			/* saturates */
		{ { 1000, 0 }, 1, 1 },
	};
	struct model *m;
	size_t i;

	(void)state;
	m = load_ok(base_doc);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct prediction out;
		double p[2];
		cJSON *j, *probs;

		predict(m, cases[i].x, &out, p);
		assert_int_equal(out.class_index, cases[i].cls);
		assert_near(p[1], cases[i].p1);
		assert_near(p[0], 1 - cases[i].p1);
		assert_near(p[0] + p[1], 1.0);
		j = render(m, &out);
		probs = cJSON_GetObjectItem(j, "probabilities");
		assert_int_equal(cJSON_GetArraySize(probs), 2);
		assert_string_equal(probs->child->string, "0");
		assert_string_equal(probs->child->next->string, "1");
		assert_true(cJSON_GetObjectItem(probs, "1")->valuedouble ==
		    p[1]);
		assert_string_equal(cJSON_GetObjectItem(j, "label")->valuestring,
		    cases[i].cls ? "1" : "0");
		cJSON_Delete(j);
	}
	model_free(m);
}

static void
test_predict_binary_scaled_string_labels(void **state)
{
	struct model *m;
	struct prediction out;
	double p[2], row[2] = { 3, 5 };
	struct buf b = BUF_INIT;
	const double s = 1 * ((3 - 1) / 2.0) + 2 * ((5 - 1) / 4.0) + 0.5;

	(void)state;
	m = load_ok_edited("classes", "[\"no\", \"yes\"]", "preprocessing",
	    "[{\"type\": \"standard_scaler\", \"mean\": [1, 1], "
	    "\"scale\": [2, 4]}]");
	assert_int_equal(m->prep.n_steps, 1);
	/* x' = (3-1)/2 = 1, y' = (5-1)/4 = 1; s = 1 + 2 + 0.5 = 3.5 */
	predict(m, row, &out, p);
	assert_int_equal(out.class_index, 1);
	assert_near(p[1], expit(s));
	assert_near(p[1], 0.9706877692486436);
	/* The exact rendering. */
	buf_putc(&b, '{');
	model_render(m, &out, &b);
	buf_putc(&b, '}');
	{
		struct buf p0 = BUF_INIT, p1 = BUF_INIT;
		char want[256];

		buf_json_double(&p0, p[0]);
		buf_json_double(&p1, p[1]);
		snprintf(want, sizeof(want), "{\"prediction\":\"yes\","
		    "\"label\":\"yes\",\"confidence\":%s,\"probabilities\":"
		    "{\"no\":%s,\"yes\":%s}}", p1.data, p0.data, p1.data);
		assert_string_equal(b.data, want);
		buf_free(&p0);
		buf_free(&p1);
	}
	buf_free(&b);
	model_free(m);
}

static const char multi_doc[] =
    "{\"format\": \"mlfcgi-model/1\", \"name\": \"m\", \"version\": \"1\","
    " \"task\": \"classification\","
    " \"features\": [{\"name\": \"x\", \"type\": \"number\"},"
    "  {\"name\": \"y\", \"type\": \"number\"}],"
    " \"classes\": [\"a\", \"b\", \"c\"],"
    " \"class_names\": [\"Alpha\", \"Beta\", \"Gamma\"],"
    " \"estimator\": {\"type\": \"logistic_regression\","
    "  \"multi_class\": \"%s\","
    "  \"coef\": [[1, 0], [0, 1], [-1, -1]], \"intercept\": [0, 0, 0]}}";

static struct model *
load_multi(const char *mc)
{
	char text[1024];

	snprintf(text, sizeof(text), multi_doc, mc);
	return load_ok(text);
}

static void
test_predict_multinomial(void **state)
{
	struct model *m = load_multi("multinomial");
	struct prediction out;
	double p[3], row[2] = { 1, 2 };
	cJSON *j, *probs, *c;
	double sum = 0;

	(void)state;
	/* s = (1, 2, -3): softmax. */
	predict(m, row, &out, p);
	assert_int_equal(out.class_index, 1);
	assert_near(p[0], 0.2676231541498624);
	assert_near(p[1], 0.7274751568004648);
	assert_near(p[2], 0.004901689049672921);
	assert_near(p[0], exp(1) / (exp(1) + exp(2) + exp(-3)));
	assert_near(p[0] + p[1] + p[2], 1);

	j = render(m, &out);
	assert_string_equal(cJSON_GetObjectItem(j, "prediction")->valuestring,
	    "b");
	assert_string_equal(cJSON_GetObjectItem(j, "label")->valuestring,
	    "Beta");
	assert_true(cJSON_GetObjectItem(j, "confidence")->valuedouble == p[1]);
	probs = cJSON_GetObjectItem(j, "probabilities");
	assert_int_equal(cJSON_GetArraySize(probs), 3);
	assert_string_equal(probs->child->string, "Alpha");
	assert_string_equal(probs->child->next->next->string, "Gamma");
	cJSON_ArrayForEach(c, probs)
		sum += c->valuedouble;
	assert_near(sum, 1);
	cJSON_Delete(j);

	/* Ties go to the first class, as numpy's argmax does. */
	row[0] = 1, row[1] = 1;	/* s = (1, 1, -2) */
	predict(m, row, &out, p);
	assert_int_equal(out.class_index, 0);
	assert_true(p[0] == p[1]);
	row[0] = -1, row[1] = -1;	/* s = (-1, -1, 2) */
	predict(m, row, &out, p);
	assert_int_equal(out.class_index, 2);
	/* Large scores do not overflow. */
	row[0] = 800, row[1] = 0;	/* s = (800, 0, -800) */
	predict(m, row, &out, p);
	assert_int_equal(out.class_index, 0);
	assert_near(p[0], 1);
	assert_near(p[1], 0);
	model_free(m);
}

static void
test_predict_ovr(void **state)
{
	struct model *m = load_multi("ovr");
	struct prediction out;
	double p[3], row[2] = { 1, 2 };
	double e0 = expit(1), e1 = expit(2), e2 = expit(-3);

	(void)state;
	predict(m, row, &out, p);
	assert_int_equal(out.class_index, 1);
	assert_near(p[0], 0.4405874262485952);
	assert_near(p[1], 0.5308303998850453);
	assert_near(p[2], 0.02858217386635948);
	assert_near(p[0], e0 / (e0 + e1 + e2));
	assert_near(p[2], e2 / (e0 + e1 + e2));
	assert_near(p[0] + p[1] + p[2], 1);
	model_free(m);
}

static void
test_predict_linear_regression(void **state)
{
	static const char reg[] =
	    "{\"format\": \"mlfcgi-model/1\", \"name\": \"r\", \"version\": \"2\","
	    " \"task\": \"regression\","
	    " \"features\": [{\"name\": \"x\", \"type\": \"number\"},"
	    "  {\"name\": \"y\", \"type\": \"integer\", \"minimum\": 0}],"
	    " \"estimator\": {\"type\": \"linear_regression\","
	    "  \"coef\": %s, \"intercept\": %s}%s}";
	static const struct {
		const char *coef, *icpt, *extra;
	} forms[] = {
		{ "[2, -3]", "1", "" },
		{ "[[2, -3]]", "[1]", "" },
		{ "[2, -3]", "[1]", ", \"preprocessing\": [{\"type\": "
		    "\"standard_scaler\", \"mean\": [0, 0], \"scale\": [1, 1]}]" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char text[1024];
		struct model *m;
		struct prediction out;
		double row[2] = { 4, 1 };
		struct buf b = BUF_INIT;

		snprintf(text, sizeof(text), reg, forms[i].coef, forms[i].icpt,
		    forms[i].extra);
		m = load_ok(text);
		assert_int_equal(m->task, MODEL_REGRESSION);
		assert_int_equal(m->n_classes, 0);
		assert_ptr_equal(m->est_ops, &model_linear_ops);
		/* Default test input: 0 and min + 1 for the integer. */
		assert_true(m->test_input[0] == 0);
		assert_true(m->test_input[1] == 1);
		predict(m, row, &out, NULL);
		assert_near(out.value, 2 * 4 - 3 * 1 + 1);	/* 6 */
		model_render(m, &out, &b);
		assert_string_equal(b.data, "\"prediction\":6");
		buf_reset(&b);
		row[0] = 0.1, row[1] = 0;
		predict(m, row, &out, NULL);
		assert_near(out.value, 1.2);
		model_render(m, &out, &b);
		assert_string_equal(b.data, "\"prediction\":1.2");
		buf_free(&b);
		model_free(m);
	}
	/* With a scaler: ((x - 1) / 2, (y - 0) / 0.5) */
	{
		char text[1024];
		struct model *m;
		struct prediction out;
		double row[2] = { 5, 1 };

		snprintf(text, sizeof(text), reg, "[2, -3]", "1",
		    ", \"preprocessing\": [{\"type\": \"standard_scaler\", "
		    "\"mean\": [1, 0], \"scale\": [2, 0.5]}]");
		m = load_ok(text);
		predict(m, row, &out, NULL);
		assert_near(out.value, 2 * 2 - 3 * 2 + 1);	/* -1 */
		model_free(m);
	}
}

static void
test_probabilities_sum_to_one(void **state)
{
	static const char *const kinds[] = { "multinomial", "ovr" };
	uint64_t x = 88172645463325252u;
	size_t k, i;

	(void)state;
	for (k = 0; k < 3; k++) {
		struct model *m = k < 2 ? load_multi(kinds[k]) : load_ok(base_doc);

		for (i = 0; i < 2000; i++) {
			struct prediction out;
			double p[3], row[2], sum = 0, best = -1;
			size_t c;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			row[0] = (double)(x % 20001) / 1000 - 10;
			row[1] = (double)((x >> 20) % 20001) / 1000 - 10;
			predict(m, row, &out, p);
			for (c = 0; c < m->n_classes; c++) {
				assert_true(p[c] >= 0 && p[c] <= 1);
				sum += p[c];
				if (p[c] > best)
					best = p[c];
			}
			assert_near(sum, 1);
			/* The predicted class has the top probability. */
			assert_true(p[out.class_index] == best ||
			    fabs(p[out.class_index] - best) < 1e-15);
		}
		model_free(m);
	}
}

static void
test_render_row_and_selftest(void **state)
{
	struct model *m;
	struct buf b = BUF_INIT;
	double row[2] = { 0.1, -2 };
	char why[256];

	(void)state;
	m = load_ok(base_doc);
	model_render_row(m, row, &b);
	assert_string_equal(b.data, "{\"x\":0.1,\"y\":-2}");
	assert_int_equal(model_selftest(m, why, sizeof(why)), 0);
	buf_free(&b);
	model_free(m);
}

/* ---- deep forests in blocks ---------------------------------------------- */

static uint64_t deep_seed;

/* A deterministic pseudo-random number in [0, 1). */
static double
deep_rand(void)
{
	deep_seed = deep_seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(deep_seed >> 11) / 9007199254740992.0;
}

/* One tree of a deep forest as it is built: its node arrays, in the
 * model format's order (feature, threshold, left, right, missing_left),
 * and its leaf values, width per node. Built in plain arrays, then turned
 * into JSON once: appending to and replacing in cJSON arrays node by
 * node takes time quadratic in the nodes (70 % of this test program's
 * time, minutes under valgrind). */
struct deep_tree {
	double	*node[5];
	double	*value;
	size_t	 n, cap;
	int	 width;
};

/* Appends a node to t (aborting the test if out of memory); returns its
 * index. */
static int
deep_node(struct deep_tree *t, double feature, double threshold,
    double missing_left)
{
	size_t k;

	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 256;
		for (k = 0; k < 5; k++) {
			t->node[k] = realloc(t->node[k],
			    t->cap * sizeof(double));
			assert_non_null(t->node[k]);
		}
		t->value = realloc(t->value,
		    t->cap * (size_t)t->width * sizeof(double));
		assert_non_null(t->value);
	}
	t->node[0][t->n] = feature;
	t->node[1][t->n] = threshold;
	t->node[2][t->n] = -1;
	t->node[3][t->n] = -1;
	t->node[4][t->n] = missing_left;
	return (int)t->n++;
}

/* Appends to t a subtree rooted at depth d (its node the next index) and
 * returns its root's index; the leftmost path goes down to depth deep
 * (18, or 6 for complete trees), others end at random from depth 2 (at
 * the latest at 14, or deep). */
static int
deep_subtree(struct deep_tree *t, int d, int leftmost, int n_features,
    int deep)
{
	int leaf = leftmost ? d >= deep : d >= 2 && (d >= 14 || d >= deep ||
	    deep_rand() < 0.22);
	double feature = leaf ? -1 : (int)(deep_rand() * n_features);
	/* Thresholds on float32 values and between them. */
	double threshold = leaf ? 0 : deep_rand() < 0.5 ?
	    (double)(float)deep_rand() : deep_rand();
	int self = deep_node(t, feature, threshold, deep_rand() < 0.5), k;

	for (k = 0; k < t->width; k++)
		t->value[(size_t)self * (size_t)t->width + (size_t)k] =
		    leaf ? deep_rand() : 0;
	if (leaf)
		return self;
	t->node[2][self] = deep_subtree(t, d + 1, leftmost, n_features, deep);
	t->node[3][self] = deep_subtree(t, d + 1, 0, n_features, deep);
	return self;
}

/* A float32 forest of n_trees trees deep levels deep (deeper than 8: the
 * deep walk; else the complete trees' walk) on n_features nullable
 * inputs: two classes, or a regression. */
static struct model *
deep_forest(int n_features, int n_trees, int classify, int deep)
{
	cJSON *doc = cJSON_CreateObject(), *fs, *est, *trees, *t;
	const char *keys[] = { "feature", "threshold", "left", "right",
	    "missing_left", "value" };
	struct model_err err;
	struct model *m;
	char name[16], *text;
	int i, k;

	cJSON_AddStringToObject(doc, "format", "mlfcgi-model/1");
	cJSON_AddStringToObject(doc, "name", "deep");
	cJSON_AddStringToObject(doc, "version", "1");
	cJSON_AddStringToObject(doc, "task", classify ? "classification" :
	    "regression");
	fs = cJSON_AddArrayToObject(doc, "features");
	for (i = 0; i < n_features; i++) {
		cJSON *f = cJSON_CreateObject();

		snprintf(name, sizeof(name), "f%d", i);
		cJSON_AddStringToObject(f, "name", name);
		cJSON_AddStringToObject(f, "type", "number");
		cJSON_AddBoolToObject(f, "nullable", 1);
		cJSON_AddItemToArray(fs, f);
	}
	if (classify)
		cJSON_AddItemToObject(doc, "classes",
		    cJSON_Parse("[0, 1]"));
	est = cJSON_AddObjectToObject(doc, "estimator");
	cJSON_AddStringToObject(est, "type", "tree_ensemble");
	cJSON_AddStringToObject(est, "aggregation", "mean");
	cJSON_AddStringToObject(est, "input_dtype", "float32");
	cJSON_AddNumberToObject(est, "n_outputs", classify ? 2 : 1);
	trees = cJSON_AddArrayToObject(est, "trees");
	for (i = 0; i < n_trees; i++) {
		struct deep_tree dt = { .width = classify ? 2 : 1 };

		deep_subtree(&dt, 0, 1, n_features, deep);
		t = cJSON_CreateObject();
		for (k = 0; k < 5; k++)
			cJSON_AddItemToObject(t, keys[k],
			    cJSON_CreateDoubleArray(dt.node[k], (int)dt.n));
		cJSON_AddItemToObject(t, keys[5], cJSON_CreateDoubleArray(
		    dt.value, (int)dt.n * dt.width));
		cJSON_AddItemToArray(trees, t);
		for (k = 0; k < 5; k++)
			free(dt.node[k]);
		free(dt.value);
	}
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	m = model_load_text(text, strlen(text), "deep.json", &err);
	free(text);
	if (m == NULL)
		print_error("%s\n", err.msg);
	assert_non_null(m);
	return m;
}

/* model_predict_rows() on blocks of deep trees (the first pass in
 * assembly with rows 16, 32 or 64 floats apart, or the C walk for wider
 * rows) and of complete trees (their lower levels in assembly), a row with
 * a missing value among them, and model_predict() give, bit for bit, what
 * model_predict() gives each row with the vector walks off. */
static void
test_tree_deep_blocks(void **state)
{
	static const int widths[] = { 3, 16, 20, 33, 64, 70, 5, 20 };
	size_t w, i, j, n = 300, sz;
	int simd;

	(void)state;
	for (w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
		int nf = widths[w], classify = (int)(w % 2);
		struct model *m;
		double *rows = malloc(n * (size_t)nf * sizeof(double));
		double *scratch, *one, *ref = malloc(2 * n * sizeof(double));
		struct prediction *out, p;

		deep_seed = 42 + w;
		/* The last two: complete trees, 6 deep. */
		m = deep_forest(nf, 12, classify, w >= 6 ? 6 : 18);
		sz = model_scratch_size(m);
		scratch = calloc(n * sz, sizeof(double));
		one = calloc(sz, sizeof(double));
		out = calloc(n, sizeof(*out));
		assert_non_null(rows);
		assert_non_null(scratch);
		assert_non_null(one);
		assert_non_null(out);
		assert_non_null(ref);
		for (i = 0; i < n * (size_t)nf; i++)
			rows[i] = deep_rand();
		for (i = 5; i < n; i += 37)	/* a missing value */
			rows[i * (size_t)nf + i % (size_t)nf] = NAN;
		/* The reference: one row at a time, the portable walk. */
		model_set_simd(0);
		for (i = 0; i < n; i++) {
			model_predict(m, rows + i * (size_t)nf, one, &p);
			ref[2 * i] = classify ? p.proba[0] : p.value;
			ref[2 * i + 1] = classify ? p.proba[1] : 0;
		}
		for (simd = 1; simd >= 0; simd--) {
			model_set_simd(simd);
			model_predict_rows(m, rows, n, scratch, out);
			for (i = 0; i < n; i++) {
				model_predict(m, rows + i * (size_t)nf, one, &p);
				if (!classify) {
					assert_memory_equal(&p.value,
					    &ref[2 * i], sizeof(double));
					assert_memory_equal(&out[i].value,
					    &ref[2 * i], sizeof(double));
					continue;
				}
				assert_int_equal(p.class_index,
				    out[i].class_index);
				for (j = 0; j < 2; j++) {
					assert_memory_equal(&p.proba[j],
					    &ref[2 * i + j], sizeof(double));
					assert_memory_equal(&out[i].proba[j],
					    &ref[2 * i + j], sizeof(double));
				}
			}
		}
		model_set_simd(1);
		model_free(m);
		free(rows);
		free(scratch);
		free(one);
		free(out);
		free(ref);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iris_loads),
		cmocka_unit_test(test_iris_text_equals_file),
		cmocka_unit_test(test_iris_predict),
		cmocka_unit_test(test_load_base_ok),
		cmocka_unit_test(test_load_not_json),
		cmocka_unit_test(test_load_header_errors),
		cmocka_unit_test(test_load_feature_errors),
		cmocka_unit_test(test_load_bounds_admit_no_value),
		cmocka_unit_test(test_load_impossible_integer_and_default),
		cmocka_unit_test(test_load_wide_bounds_midpoint),
		cmocka_unit_test(test_load_class_errors),
		cmocka_unit_test(test_load_estimator_errors),
		cmocka_unit_test(test_load_linear_errors),
		cmocka_unit_test(test_load_preprocessing_errors),
		cmocka_unit_test(test_load_test_input_errors),
		cmocka_unit_test(test_load_selftest_not_finite),
		cmocka_unit_test(test_predict_binary),
		cmocka_unit_test(test_predict_binary_scaled_string_labels),
		cmocka_unit_test(test_predict_multinomial),
		cmocka_unit_test(test_predict_ovr),
		cmocka_unit_test(test_predict_linear_regression),
		cmocka_unit_test(test_probabilities_sum_to_one),
		cmocka_unit_test(test_render_row_and_selftest),
		cmocka_unit_test(test_tree_deep_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
