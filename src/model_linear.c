/* model_linear: linear classifiers (logistic regression, SGD, linear SVM and
 * the like: decision scores, optional probabilities) and linear regression,
 * computed as scikit-learn computes them. */
#include "model.h"
#include "xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum linear_link {
	LINK_IDENTITY,		/* regression */
	LINK_BINARY,		/* one score, logistic */
	LINK_SOFTMAX,		/* multinomial */
	LINK_OVR,		/* one logistic per class, normalised */
	LINK_SCORES		/* linear_classifier: see linear_proba */
};

/* How a linear_classifier turns its scores into probabilities. */
enum linear_proba {
	PROBA_NONE,		/* decision_function only */
	PROBA_LOGISTIC,		/* expit; one-vs-rest normalised */
	PROBA_SOFTMAX,		/* softmax; binary: softmax([-s, s]) */
	PROBA_MODIFIED_HUBER	/* (clip(s, -1, 1) + 1) / 2, normalised */
};

struct linear {
	enum linear_link link;
	enum linear_proba proba;
	size_t		 n_out;		/* rows of coef */
	size_t		 n_in;
	double		*coef;		/* n_out x n_in, row-major */
	double		*intercept;	/* n_out */
};

static void
linear_free(void *p)
{
	struct linear *l = p;

	if (l == NULL)
		return;
	free(l->coef);
	free(l->intercept);
	free(l);
}

/* Reads coef as [[...]] (n_out rows) or, if flat_ok, as a flat [...]. */
static int
linear_load_coef(const cJSON *json, struct linear *l, int flat_ok,
    struct model_err *err)
{
	const cJSON *coef = cJSON_GetObjectItemCaseSensitive(json, "coef");
	const cJSON *row;
	char path[64];
	size_t r = 0;

	if (!cJSON_IsArray(coef) || cJSON_GetArraySize(coef) == 0) {
		model_errf(err, "estimator.coef: expected a non-empty array");
		return -1;
	}
	if (flat_ok && !cJSON_IsArray(coef->child)) {
		l->n_out = 1;
		l->coef = xcalloc(l->n_in, sizeof(double));
		return model_json_doubles(coef, l->n_in, l->coef,
		    "estimator.coef", err);
	}
	l->n_out = (size_t)cJSON_GetArraySize(coef);
	l->coef = xcalloc(l->n_out * l->n_in, sizeof(double));
	cJSON_ArrayForEach(row, coef) {
		snprintf(path, sizeof(path), "estimator.coef[%zu]", r);
		if (model_json_doubles(row, l->n_in, l->coef + r * l->n_in,
		    path, err) < 0)
			return -1;
		r++;
	}
	return 0;
}

static int
linear_load_intercept(const cJSON *json, struct linear *l,
    struct model_err *err)
{
	const cJSON *ic = cJSON_GetObjectItemCaseSensitive(json, "intercept");

	l->intercept = xcalloc(l->n_out, sizeof(double));
	if (cJSON_IsNumber(ic) && l->n_out == 1) {
		l->intercept[0] = ic->valuedouble;
		if (!isfinite(l->intercept[0])) {
			model_errf(err, "estimator.intercept: not finite");
			return -1;
		}
		return 0;
	}
	return model_json_doubles(ic, l->n_out, l->intercept,
	    "estimator.intercept", err);
}

static void *
logistic_load(const cJSON *json, struct model *m, struct model_err *err)
{
	static const char *const keys[] = { "type", "multi_class", "coef",
	    "intercept", NULL };
	const cJSON *mc = cJSON_GetObjectItemCaseSensitive(json, "multi_class");
	struct linear *l = xcalloc(1, sizeof(*l));

	l->n_in = m->n_inputs;
	if (m->task != MODEL_CLASSIFICATION) {
		model_errf(err, "estimator.type: logistic_regression needs "
		    "task \"classification\"");
		goto fail;
	}
	if (model_json_keys(json, keys, "estimator", err) < 0 ||
	    linear_load_coef(json, l, 0, err) < 0 ||
	    linear_load_intercept(json, l, err) < 0)
		goto fail;
	if (m->n_classes == 2 && l->n_out == 1)
		l->link = LINK_BINARY;
	else if (l->n_out != m->n_classes) {
		model_errf(err, "estimator.coef: %zu rows for %zu classes "
		    "(expected %zu, or 1 for two classes)", l->n_out,
		    m->n_classes, m->n_classes);
		goto fail;
	} else if (!cJSON_IsString(mc)) {
		model_errf(err, "estimator.multi_class: expected "
		    "\"multinomial\" or \"ovr\"");
		goto fail;
	} else if (strcmp(mc->valuestring, "multinomial") == 0)
		l->link = LINK_SOFTMAX;
	else if (strcmp(mc->valuestring, "ovr") == 0)
		l->link = LINK_OVR;
	else {
		model_errf(err, "estimator.multi_class: expected "
		    "\"multinomial\" or \"ovr\", not \"%.64s\"",
		    mc->valuestring);
		goto fail;
	}
	return l;
fail:
	linear_free(l);
	return NULL;
}

static void *
linear_load(const cJSON *json, struct model *m, struct model_err *err)
{
	static const char *const keys[] = { "type", "coef", "intercept", NULL };
	struct linear *l = xcalloc(1, sizeof(*l));

	l->n_in = m->n_inputs;
	l->link = LINK_IDENTITY;
	if (m->task != MODEL_REGRESSION) {
		model_errf(err, "estimator.type: linear_regression needs "
		    "task \"regression\"");
		goto fail;
	}
	if (model_json_keys(json, keys, "estimator", err) < 0 ||
	    linear_load_coef(json, l, 1, err) < 0)
		goto fail;
	if (l->n_out != 1) {
		model_errf(err, "estimator.coef: expected one row, not %zu",
		    l->n_out);
		goto fail;
	}
	if (linear_load_intercept(json, l, err) < 0)
		goto fail;
	return l;
fail:
	linear_free(l);
	return NULL;
}

/* The "proba" member of a linear_classifier. */
static int
linear_load_proba(const cJSON *json, struct linear *l, struct model_err *err)
{
	static const char *const names[] = { "none", "logistic", "softmax",
	    "modified_huber", NULL };
	const cJSON *pj = cJSON_GetObjectItemCaseSensitive(json, "proba");
	size_t k;

	for (k = 0; cJSON_IsString(pj) && names[k] != NULL; k++)
		if (strcmp(pj->valuestring, names[k]) == 0) {
			l->proba = (enum linear_proba)k;
			return 0;
		}
	model_errf(err, "estimator.proba: expected \"none\", \"logistic\", "
	    "\"softmax\" or \"modified_huber\"");
	return -1;
}

static void *
linear_classifier_load(const cJSON *json, struct model *m,
    struct model_err *err)
{
	static const char *const keys[] = { "type", "coef", "intercept",
	    "proba", NULL };
	struct linear *l = xcalloc(1, sizeof(*l));

	l->n_in = m->n_inputs;
	l->link = LINK_SCORES;
	if (m->task != MODEL_CLASSIFICATION) {
		model_errf(err, "estimator.type: linear_classifier needs "
		    "task \"classification\"");
		goto fail;
	}
	if (model_json_keys(json, keys, "estimator", err) < 0 ||
	    linear_load_coef(json, l, 0, err) < 0 ||
	    linear_load_intercept(json, l, err) < 0 ||
	    linear_load_proba(json, l, err) < 0)
		goto fail;
	if (l->n_out != m->n_classes && !(l->n_out == 1 &&
	    m->n_classes == 2)) {
		model_errf(err, "estimator.coef: %zu rows for %zu classes "
		    "(expected %zu, or 1 for two classes)", l->n_out,
		    m->n_classes, m->n_classes);
		goto fail;
	}
	m->n_scores = l->n_out;
	m->has_proba = l->proba != PROBA_NONE;
	return l;
fail:
	linear_free(l);
	return NULL;
}

static double
linear_score(const struct linear *l, size_t k, const double *x)
{
	const double *w = l->coef + k * l->n_in;
	double s = 0;
	size_t i;

	for (i = 0; i < l->n_in; i++)
		s += w[i] * x[i];
	return s + l->intercept[k];
}

/* The logistic function, as scipy.special.expit computes it. */
static double
linear_expit(double s)
{
	return 1.0 / (1.0 + exp(-s));
}

static void
linear_predict(const void *est, const struct model *m, const double *x,
    struct prediction *out)
{
	const struct linear *l = est;
	double *p = out->proba, best, sum;
	size_t k;

	(void)m;
	if (l->link == LINK_IDENTITY) {
		out->value = linear_score(l, 0, x);
		return;
	}
	if (l->link == LINK_BINARY) {
		double s = linear_score(l, 0, x);

		p[1] = linear_expit(s);
		p[0] = 1.0 - p[1];
		out->class_index = s > 0 ? 1 : 0;
		return;
	}
	/* Multiclass predicts the first argmax of the scores. */
	out->class_index = 0;
	for (k = 0; k < l->n_out; k++) {
		p[k] = linear_score(l, k, x);
		if (p[k] > p[out->class_index])
			out->class_index = k;
	}
	best = p[out->class_index];
	for (k = 0; k < l->n_out; k++)
		p[k] = l->link == LINK_SOFTMAX ? exp(p[k] - best) :
		    linear_expit(p[k]);
	sum = model_sum(p, l->n_out);
	for (k = 0; k < l->n_out; k++)
		p[k] /= sum;
}

/* numpy.clip(s, -1, 1). */
static double
linear_clip1(double s)
{
	return s < -1 ? -1 : s > 1 ? 1 : s;
}

/* Binary probabilities from the one score s, as scikit-learn's
 * predict_proba computes them for each kind. */
static void
linear_proba_binary(enum linear_proba kind, double s, double *p)
{
	double lo, hi, top;

	switch (kind) {
	case PROBA_LOGISTIC:
		p[1] = linear_expit(s);
		p[0] = 1.0 - p[1];
		break;
	case PROBA_SOFTMAX:
		/* softmax([-s, s]) */
		top = -s > s ? -s : s;
		lo = exp(-s - top);
		hi = exp(s - top);
		p[0] = lo / (lo + hi);
		p[1] = hi / (lo + hi);
		break;
	case PROBA_MODIFIED_HUBER:
		p[1] = (linear_clip1(s) + 1.0) / 2.0;
		p[0] = 1.0 - p[1];
		break;
	case PROBA_NONE:
		break;
	}
}

/* Multiclass probabilities from the n scores s (n >= 3) into p. */
static void
linear_proba_multi(enum linear_proba kind, const double *s, size_t n,
    double *p)
{
	double top = s[0], sum;
	size_t k;

	for (k = 1; k < n; k++)
		if (s[k] > top)
			top = s[k];
	for (k = 0; k < n; k++) {
		if (kind == PROBA_LOGISTIC)
			p[k] = linear_expit(s[k]);
		else if (kind == PROBA_SOFTMAX)
			p[k] = exp(s[k] - top);
		else
			p[k] = (linear_clip1(s[k]) + 1.0) / 2.0;
	}
	sum = model_sum(p, n);
	/* modified_huber: all zero gives the uniform distribution. */
	if (sum == 0 && kind == PROBA_MODIFIED_HUBER) {
		for (k = 0; k < n; k++)
			p[k] = 1;
		sum = (double)n;
	}
	for (k = 0; k < n; k++)
		p[k] /= sum;
}

/* linear_classifier: scores, class (s > 0 for one score, else the first
 * argmax), probabilities if the model has them. */
static void
linear_classifier_predict(const void *est, const struct model *m,
    const double *x, struct prediction *out)
{
	const struct linear *l = est;
	double *s = out->scores;
	size_t k;

	out->class_index = 0;
	for (k = 0; k < l->n_out; k++) {
		s[k] = linear_score(l, k, x);
		if (s[k] > s[out->class_index])
			out->class_index = k;
	}
	if (l->n_out == 1)
		out->class_index = s[0] > 0 ? 1 : 0;
	if (!m->has_proba)
		return;
	if (l->n_out == 1)
		linear_proba_binary(l->proba, s[0], out->proba);
	else
		linear_proba_multi(l->proba, s, l->n_out, out->proba);
}

const struct estimator_ops model_logistic_ops = {
	"logistic_regression", logistic_load, linear_predict, linear_free
};

const struct estimator_ops model_linear_ops = {
	"linear_regression", linear_load, linear_predict, linear_free
};

const struct estimator_ops model_linear_classifier_ops = {
	"linear_classifier", linear_classifier_load, linear_classifier_predict,
	linear_free
};
