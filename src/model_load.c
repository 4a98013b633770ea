/* model_load: model files (JSON, format mlfcgi-model/1) to struct model.
 * Every field is checked; the first problem is reported with its path. */
#include "input.h"
#include "model.h"
#include "xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Largest model file accepted, in bytes. */
#define MODEL_FILE_MAX (1024L * 1024 * 1024)
#define MODEL_MAX_FEATURES 65536
#define MODEL_MAX_CLASSES 65536

/* The estimator kinds, by their "type". */
static const struct estimator_ops *const model_kinds[] = {
	&model_logistic_ops,
	&model_linear_ops,
	&model_linear_classifier_ops,
	&model_svc_ops,
	&model_svr_ops,
	&model_mlp_ops,
	&model_kneighbors_ops,
	&model_gaussian_nb_ops,
	&model_tree_ops,
	&model_xgboost_ops,
	NULL
};

static const char *const model_top_keys[] = { "format", "name", "version",
	"task", "description", "features", "classes", "class_names",
	"preprocessing", "estimator", "test_input", "metadata", NULL };

static const char *const model_feature_keys[] = { "name", "type", "minimum",
	"exclusiveMinimum", "maximum", "exclusiveMaximum", "required",
	"default", "nullable", "description", "categories", "unknown", NULL };

/* Returns 1 if s is 1..max characters from the given extra punctuation,
 * letters and digits. */
static int
model_name_ok(const char *s, size_t max, const char *punct)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++) {
		char c = s[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(punct, c) != NULL))
			return 0;
	}
	return n >= 1 && n <= max;
}

static const cJSON *
model_get(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Reads a required string member into *out (copied). */
static int
model_load_string(const cJSON *obj, const char *key, const char *path,
    char **out, struct model_err *err)
{
	const cJSON *v = model_get(obj, key);

	if (!cJSON_IsString(v)) {
		model_errf(err, "%s%s: expected a string", path, key);
		return -1;
	}
	*out = xstrdup(v->valuestring);
	return 0;
}

/* Reads an optional finite number member; *has says whether it was there. */
static int
model_load_bound(const cJSON *f, const char *key, const char *path,
    int *has, double *out, struct model_err *err)
{
	const cJSON *v = model_get(f, key);

	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
		model_errf(err, "%s.%s: expected a finite number", path, key);
		return -1;
	}
	if (*has) {
		model_errf(err, "%s.%s: a bound is given twice", path, key);
		return -1;
	}
	*has = 1;
	*out = v->valuedouble;
	return 0;
}

/* Returns 0 if the feature's default passes its own schema, else -1. */
static int
model_check_default(const struct feature *f)
{
	struct value v = { 0 };
	struct verrs errs;
	double x;
	int rc;

	v.kind = VALUE_NUMBER;
	v.num = f->dflt;
	verrs_init(&errs);
	rc = schema_check_value(f, &v, NULL, &x, &errs);
	verrs_free(&errs);
	return rc;
}

/* Reads a category feature's "categories" and "unknown" into f. A category
 * has no bounds. */
static int
model_load_categories(const cJSON *fj, const char *path, struct feature *f,
    struct model_err *err)
{
	static const char *const bounds[] = { "minimum", "exclusiveMinimum",
		"maximum", "exclusiveMaximum", NULL };
	const cJSON *cs = model_get(fj, "categories");
	const cJSON *unk = model_get(fj, "unknown"), *c;
	size_t k, dup;
	char **cats;
	int n;

	for (k = 0; bounds[k] != NULL; k++)
		if (model_get(fj, bounds[k]) != NULL) {
			model_errf(err, "%s.%s: a category feature has no "
			    "bounds", path, bounds[k]);
			return -1;
		}
	if (!cJSON_IsArray(cs) || (n = cJSON_GetArraySize(cs)) < 1 ||
	    n > SCHEMA_MAX_CATEGORIES) {
		model_errf(err, "%s.categories: expected an array of 1 to %d "
		    "strings", path, SCHEMA_MAX_CATEGORIES);
		return -1;
	}
	k = 0;
	cJSON_ArrayForEach(c, cs) {
		if (!cJSON_IsString(c)) {
			model_errf(err, "%s.categories[%zu]: expected a string",
			    path, k);
			return -1;
		}
		k++;
	}
	if (unk != NULL && (!cJSON_IsString(unk) ||
	    (strcmp(unk->valuestring, "error") != 0 &&
	    strcmp(unk->valuestring, "ignore") != 0))) {
		model_errf(err, "%s.unknown: expected \"error\" or \"ignore\"",
		    path);
		return -1;
	}
	f->unknown_ignore = unk != NULL &&
	    strcmp(unk->valuestring, "ignore") == 0;
	cats = xcalloc((size_t)n, sizeof(char *));
	k = 0;
	cJSON_ArrayForEach(c, cs)
		cats[k++] = xstrdup(c->valuestring);
	if (schema_set_categories(f, cats, (size_t)n, &dup) < 0) {
		model_errf(err, "%s.categories[%zu]: repeats an earlier "
		    "category", path, dup);
		return -1;
	}
	return 0;
}

/* Sets the default of an optional category feature: one of its
 * categories. */
static int
model_category_default(const cJSON *dflt, const char *path,
    struct feature *f, struct model_err *err)
{
	long k = cJSON_IsString(dflt) ? schema_category(f, dflt->valuestring,
	    strlen(dflt->valuestring)) : -1;

	if (k < 0) {
		model_errf(err, "%s.default: an optional category feature "
		    "needs one of its categories (or null, if nullable) as "
		    "default", path);
		return -1;
	}
	f->dflt = (double)k;
	return 0;
}

static int
model_load_feature(const cJSON *fj, size_t i, struct feature *f,
    struct model_err *err)
{
	const cJSON *type, *req, *desc, *dflt, *nul;
	char path[48];

	snprintf(path, sizeof(path), "features[%zu]", i);
	if (model_json_keys(fj, model_feature_keys, path, err) < 0)
		return -1;
	if (model_load_string(fj, "name", "", &f->name, err) < 0) {
		model_errf(err, "%s.name: expected a string", path);
		return -1;
	}
	f->name_len = strlen(f->name);
	if (!model_name_ok(f->name, 128, "_.-")) {
		model_errf(err, "%s.name: \"%.64s\" is not 1-128 characters of "
		    "[A-Za-z0-9_.-]", path, f->name);
		return -1;
	}
	type = model_get(fj, "type");
	if (!cJSON_IsString(type) || (strcmp(type->valuestring, "number") &&
	    strcmp(type->valuestring, "integer") &&
	    strcmp(type->valuestring, "category"))) {
		model_errf(err, "%s.type: expected \"number\", \"integer\" or "
		    "\"category\"", path);
		return -1;
	}
	f->type = strcmp(type->valuestring, "integer") == 0 ?
	    FEATURE_INTEGER : FEATURE_NUMBER;
	if (strcmp(type->valuestring, "category") == 0) {
		if (model_load_categories(fj, path, f, err) < 0)
			return -1;
	} else if (model_get(fj, "categories") != NULL ||
	    model_get(fj, "unknown") != NULL) {
		model_errf(err, "%s.%s: only a category feature has one", path,
		    model_get(fj, "categories") ? "categories" : "unknown");
		return -1;
	}
	if (model_load_bound(fj, "minimum", path, &f->has_min, &f->min,
	    err) < 0 ||
	    model_load_bound(fj, "exclusiveMaximum", path, &f->has_max,
	    &f->max, err) < 0)
		return -1;
	f->max_exclusive = f->has_max;
	f->min_exclusive = 0;
	if (!f->has_min) {
		if (model_load_bound(fj, "exclusiveMinimum", path, &f->has_min,
		    &f->min, err) < 0)
			return -1;
		f->min_exclusive = f->has_min;
	} else if (model_get(fj, "exclusiveMinimum") != NULL) {
		model_errf(err, "%s: minimum and exclusiveMinimum both given",
		    path);
		return -1;
	}
	if (!f->has_max) {
		if (model_load_bound(fj, "maximum", path, &f->has_max, &f->max,
		    err) < 0)
			return -1;
	} else if (model_get(fj, "maximum") != NULL) {
		model_errf(err, "%s: maximum and exclusiveMaximum both given",
		    path);
		return -1;
	}
	if (f->has_min && f->has_max && (f->min > f->max ||
	    (f->min == f->max && (f->min_exclusive || f->max_exclusive)))) {
		model_errf(err, "%s: the bounds admit no value", path);
		return -1;
	}
	if (f->type == FEATURE_INTEGER && f->has_min && f->has_max) {
		double lo = f->min_exclusive ? floor(f->min) + 1 : ceil(f->min);

		if (lo > f->max || (f->max_exclusive && lo == f->max)) {
			model_errf(err, "%s: the bounds admit no integer", path);
			return -1;
		}
	}
	nul = model_get(fj, "nullable");
	if (nul != NULL && !cJSON_IsBool(nul)) {
		model_errf(err, "%s.nullable: expected true or false", path);
		return -1;
	}
	f->nullable = cJSON_IsTrue(nul);
	req = model_get(fj, "required");
	f->required = 1;
	if (req != NULL) {
		if (!cJSON_IsBool(req)) {
			model_errf(err, "%s.required: expected true or false",
			    path);
			return -1;
		}
		f->required = cJSON_IsTrue(req);
	}
	dflt = model_get(fj, "default");
	if (!f->required && f->nullable && cJSON_IsNull(dflt))
		f->dflt = NAN;
	else if (!f->required && f->type == FEATURE_CATEGORY) {
		if (model_category_default(dflt, path, f, err) < 0)
			return -1;
	} else if (!f->required) {
		if (!cJSON_IsNumber(dflt) || !isfinite(dflt->valuedouble)) {
			model_errf(err, "%s.default: an optional feature needs "
			    "a finite number (or null, if nullable) as default",
			    path);
			return -1;
		}
		f->dflt = dflt->valuedouble;
		if (model_check_default(f) < 0) {
			model_errf(err, "%s.default: outside the feature's "
			    "bounds, or not of its type", path);
			return -1;
		}
	} else if (dflt != NULL) {
		model_errf(err, "%s.default: only an optional feature "
		    "(\"required\": false) has a default", path);
		return -1;
	}
	desc = model_get(fj, "description");
	if (desc != NULL) {
		if (!cJSON_IsString(desc)) {
			model_errf(err, "%s.description: expected a string",
			    path);
			return -1;
		}
		f->description = xstrdup(desc->valuestring);
	}
	return 0;
}

static int
model_load_features(const cJSON *root, struct model *m, struct model_err *err)
{
	const cJSON *fs = model_get(root, "features"), *fj;
	size_t i = 0, dup;
	int n;

	if (!cJSON_IsArray(fs) || (n = cJSON_GetArraySize(fs)) == 0 ||
	    n > MODEL_MAX_FEATURES) {
		model_errf(err, "features: expected an array of 1 to %d "
		    "feature definitions", MODEL_MAX_FEATURES);
		return -1;
	}
	m->schema.features = xcalloc((size_t)n, sizeof(struct feature));
	m->schema.n = (size_t)n;
	cJSON_ArrayForEach(fj, fs) {
		if (model_load_feature(fj, i, &m->schema.features[i], err) < 0)
			return -1;
		i++;
	}
	if (schema_index(&m->schema, &dup) < 0) {
		model_errf(err, "features[%zu].name: \"%s\" is used twice", dup,
		    m->schema.features[dup].name);
		return -1;
	}
	m->n_inputs = m->schema.n;
	return 0;
}

static int
model_load_classes(const cJSON *root, struct model *m, struct model_err *err)
{
	const cJSON *cs = model_get(root, "classes");
	const cJSON *names = model_get(root, "class_names");
	const cJSON *c;
	size_t i = 0, j;
	int n, strings;

	if (m->task == MODEL_REGRESSION) {
		if (cs != NULL || names != NULL) {
			model_errf(err, "%s: a regression model has no classes",
			    cs ? "classes" : "class_names");
			return -1;
		}
		return 0;
	}
	if (!cJSON_IsArray(cs) || (n = cJSON_GetArraySize(cs)) < 2 ||
	    n > MODEL_MAX_CLASSES) {
		model_errf(err, "classes: expected an array of at least 2 "
		    "class labels");
		return -1;
	}
	m->n_classes = (size_t)n;
	m->class_json = xcalloc(m->n_classes, sizeof(char *));
	m->class_names = xcalloc(m->n_classes, sizeof(char *));
	strings = cJSON_IsString(cs->child);
	cJSON_ArrayForEach(c, cs) {
		struct buf b = BUF_INIT;

		if (strings && cJSON_IsString(c)) {
			buf_json_str(&b, c->valuestring);
			m->class_names[i] = xstrdup(c->valuestring);
		} else if (!strings && cJSON_IsNumber(c) &&
		    c->valuedouble == floor(c->valuedouble) &&
		    fabs(c->valuedouble) < 9007199254740992.0) {
			buf_printf(&b, "%.0f", c->valuedouble);
			m->class_names[i] = xstrdup(b.data);
		} else {
			model_errf(err, "classes[%zu]: expected %s, like the "
			    "first label", i, strings ? "a string" :
			    "an integer");
			buf_free(&b);
			return -1;
		}
		m->class_json[i] = buf_steal(&b);
		for (j = 0; j < i; j++)
			if (strcmp(m->class_json[j], m->class_json[i]) == 0) {
				model_errf(err, "classes[%zu]: repeats "
				    "classes[%zu]", i, j);
				return -1;
			}
		i++;
	}
	if (names == NULL)
		return 0;
	if (!cJSON_IsArray(names) || cJSON_GetArraySize(names) != n) {
		model_errf(err, "class_names: expected %d strings", n);
		return -1;
	}
	i = 0;
	cJSON_ArrayForEach(c, names) {
		if (!cJSON_IsString(c) || c->valuestring[0] == '\0') {
			model_errf(err, "class_names[%zu]: expected a "
			    "non-empty string", i);
			return -1;
		}
		free(m->class_names[i]);
		m->class_names[i] = xstrdup(c->valuestring);
		for (j = 0; j < i; j++)
			if (strcmp(m->class_names[j], m->class_names[i]) == 0) {
				model_errf(err, "class_names[%zu]: repeats "
				    "class_names[%zu]", i, j);
				return -1;
			}
		i++;
	}
	return 0;
}

static int
model_load_steps(const cJSON *root, struct model *m, struct model_err *err)
{
	if (prep_load(&m->prep, model_get(root, "preprocessing"), m->schema.n,
	    err) < 0)
		return -1;
	m->n_inputs = m->prep.n_out;
	return 0;
}

static int
model_load_estimator(const cJSON *root, struct model *m,
    struct model_err *err)
{
	const cJSON *ej = model_get(root, "estimator");
	const cJSON *type = model_get(ej, "type");
	size_t k;

	if (!cJSON_IsObject(ej) || !cJSON_IsString(type)) {
		model_errf(err, "estimator.type: expected a string");
		return -1;
	}
	for (k = 0; model_kinds[k] != NULL; k++)
		if (strcmp(model_kinds[k]->type, type->valuestring) == 0)
			break;
	if (model_kinds[k] == NULL) {
		model_errf(err, "estimator.type: unknown estimator \"%.64s\"",
		    type->valuestring);
		return -1;
	}
	m->has_proba = m->task == MODEL_CLASSIFICATION;
	m->n_scores = 0;
	m->est_scratch = 0;
	m->est = model_kinds[k]->load(ej, m, err);
	if (m->est == NULL)
		return -1;
	m->est_ops = model_kinds[k];
	return 0;
}

/* A value inside the feature's bounds, for the default test input. */
static double
model_feature_midpoint(const struct feature *f)
{
	double x = 0;

	if (f->has_min && f->has_max)
		x = f->min / 2 + f->max / 2;	/* no overflow */
	else if (f->has_min)
		x = f->min + 1;
	else if (f->has_max)
		x = f->max - 1;
	if (f->type == FEATURE_INTEGER) {
		x = floor(x);
		if (f->has_min && (x < f->min || (f->min_exclusive &&
		    x == f->min)))
			x += 1;
	}
	/* Past 2^53, min + 1 may round back to min: step one ulp in. */
	if (f->has_min && f->min_exclusive && x == f->min)
		x = nextafter(x, INFINITY);
	if (f->has_max && f->max_exclusive && x == f->max)
		x = nextafter(x, -INFINITY);
	return x;
}

static int
model_load_test_input(const cJSON *root, struct model *m,
    struct model_err *err)
{
	const cJSON *ti = model_get(root, "test_input");
	struct verrs v;
	size_t i;
	int rc;

	cJSON *made = NULL;

	m->test_input = xcalloc(m->schema.n, sizeof(double));
	if (ti == NULL) {
		/* Made from the bounds, then validated as a given one is:
		 * bounds no double fits between are refused here. */
		made = cJSON_CreateArray();
		for (i = 0; made != NULL && i < m->schema.n; i++)
			cJSON_AddItemToArray(made, m->schema.features[i].type ==
			    FEATURE_CATEGORY ? cJSON_CreateString(
			    m->schema.features[i].categories[0]) :
			    cJSON_CreateNumber(model_feature_midpoint(
			    &m->schema.features[i])));
		if (made == NULL)	/* out of memory: xalloc's policy */
			abort();
		ti = made;
	}
	verrs_init(&v);
	rc = schema_validate_array(&m->schema, ti, NULL, m->test_input, &v);
	if (rc < 0)
		model_errf(err, "%s: does not pass the feature schema (%s)",
		    made != NULL ? "no test_input given, and the example "
		    "made from the bounds" : "test_input", v.first_type);
	verrs_free(&v);
	cJSON_Delete(made);
	return rc;
}

static int
model_load_header(const cJSON *root, struct model *m, struct model_err *err)
{
	const cJSON *format = model_get(root, "format");
	const cJSON *task = model_get(root, "task");
	const cJSON *desc = model_get(root, "description");

	if (!cJSON_IsObject(root)) {
		model_errf(err, "expected a JSON object");
		return -1;
	}
	if (!cJSON_IsString(format) ||
	    strcmp(format->valuestring, MODEL_FORMAT) != 0) {
		model_errf(err, "format: expected \"%s\"", MODEL_FORMAT);
		return -1;
	}
	if (model_json_keys(root, model_top_keys, "model", err) < 0) {
		/* "model.x: unknown key" reads better as "x: unknown key". */
		memmove(err->msg, err->msg + 6, strlen(err->msg + 6) + 1);
		return -1;
	}
	if (model_load_string(root, "name", "", &m->name, err) < 0 ||
	    model_load_string(root, "version", "", &m->version, err) < 0)
		return -1;
	if (!model_name_ok(m->name, 64, "_.-")) {
		model_errf(err, "name: \"%.64s\" is not 1-64 characters of "
		    "[A-Za-z0-9_.-]", m->name);
		return -1;
	}
	if (!model_name_ok(m->version, 64, "_.+-")) {
		model_errf(err, "version: \"%.64s\" is not 1-64 characters of "
		    "[A-Za-z0-9_.+-]", m->version);
		return -1;
	}
	if (cJSON_IsString(task) &&
	    strcmp(task->valuestring, "classification") == 0)
		m->task = MODEL_CLASSIFICATION;
	else if (cJSON_IsString(task) &&
	    strcmp(task->valuestring, "regression") == 0)
		m->task = MODEL_REGRESSION;
	else {
		model_errf(err, "task: expected \"classification\" or "
		    "\"regression\"");
		return -1;
	}
	if (desc != NULL && !cJSON_IsString(desc)) {
		model_errf(err, "description: expected a string");
		return -1;
	}
	if (desc != NULL)
		m->description = xstrdup(desc->valuestring);
	return 0;
}

/* Turns a byte offset into "line L, column C". */
static void
model_where(const char *text, size_t off, size_t *line, size_t *col)
{
	size_t i;

	*line = 1, *col = 1;
	for (i = 0; i < off; i++) {
		if (text[i] == '\n')
			(*line)++, *col = 1;
		else
			(*col)++;
	}
}

struct model *
model_load_text(const char *text, size_t len, const char *origin,
    struct model_err *err)
{
	struct model *m;
	cJSON *root;
	size_t off;
	char msg[sizeof(err->msg)];

	root = input_parse_json(text, len, &off);
	if (root == NULL) {
		size_t line, col;

		model_where(text, off, &line, &col);
		snprintf(err->msg, sizeof(err->msg), "%.200s: line %zu, column "
		    "%zu: not valid JSON", origin, line, col);
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	/* XGBoost's own JSON model file (a "learner" key): model_xgboost.c
	 * fills the whole model; otherwise our format, part by part. */
	if (cJSON_IsObject(root) && model_get(root, "learner") != NULL ?
	    model_xgboost_build(root, m, origin, err) < 0 :
	    model_load_header(root, m, err) < 0 ||
	    model_load_features(root, m, err) < 0 ||
	    model_load_classes(root, m, err) < 0 ||
	    model_load_steps(root, m, err) < 0 ||
	    model_load_estimator(root, m, err) < 0 ||
	    model_load_test_input(root, m, err) < 0) {
		memcpy(msg, err->msg, sizeof(msg));
		snprintf(err->msg, sizeof(err->msg), "%.200s: %.300s", origin, msg);
		model_free(m);
		cJSON_Delete(root);
		return NULL;
	}
	cJSON_Delete(root);
	if (model_selftest(m, msg, sizeof(msg)) < 0) {
		snprintf(err->msg, sizeof(err->msg), "%.200s: %.300s", origin, msg);
		model_free(m);
		return NULL;
	}
	atomic_store(&m->refs, 1);
	return m;
}

struct model *
model_load_file(const char *path, struct model_err *err)
{
	struct model *m;
	struct stat st;
	size_t got;
	char *text;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err->msg, sizeof(err->msg), "%s: cannot open: %s",
		    path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MODEL_FILE_MAX) {
		snprintf(err->msg, sizeof(err->msg), "%s: not a regular file "
		    "of at most %ld bytes", path, MODEL_FILE_MAX);
		fclose(f);
		return NULL;
	}
	text = xmalloc((size_t)st.st_size + 1);
	got = fread(text, 1, (size_t)st.st_size, f);
	fclose(f);
	if (got != (size_t)st.st_size) {
		snprintf(err->msg, sizeof(err->msg), "%s: short read", path);
		free(text);
		return NULL;
	}
	text[got] = '\0';
	m = model_load_text(text, got, path, err);
	free(text);
	return m;
}
