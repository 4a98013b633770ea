/* model_svm: kernel support vector machines (scikit-learn's SVC, NuSVC, SVR,
 * NuSVR), evaluated as scikit-learn's copy of libsvm evaluates them. */
#include "model.h"
#include "xalloc.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum svm_kernel {
	KERNEL_LINEAR,		/* x.y */
	KERNEL_POLY,		/* (gamma x.y + coef0)^degree */
	KERNEL_RBF,		/* exp(-gamma |x-y|^2) */
	KERNEL_SIGMOID		/* tanh(gamma x.y + coef0) */
};

struct svm {
	enum svm_kernel	 kernel;
	double		 gamma, coef0;
	int		 degree;
	size_t		 n_in;
	size_t		 n_sv;		/* support vectors */
	double		*sv;		/* n_sv x n_in */
	/* svc: libsvm's sv_coef, (n_classes - 1) x n_sv; svr: n_sv */
	double		*coef;
	double		*intercept;	/* n_pairs (svr: 1), libsvm's -rho */
	/* svc only */
	size_t		 n_classes, n_pairs;
	size_t		*start, *count;	/* each class's support vectors */
	double		*prob_a, *prob_b; /* n_pairs, or NULL */
	int		 ovo;		/* decision_function_shape "ovo" */
	int		 break_ties;
};

static void
svm_free(void *p)
{
	struct svm *s = p;

	if (s == NULL)
		return;
	free(s->sv);
	free(s->coef);
	free(s->intercept);
	free(s->start);
	free(s->count);
	free(s->prob_a);
	free(s->prob_b);
	free(s);
}

static const cJSON *
svm_get(const cJSON *json, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(json, key);
}

/* Reads the finite number json[key] into *out. */
static int
svm_load_number(const cJSON *json, const char *key, double *out,
    struct model_err *err)
{
	const cJSON *v = svm_get(json, key);

	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
		model_errf(err, "estimator.%s: expected a finite number", key);
		return -1;
	}
	*out = v->valuedouble;
	return 0;
}

/* Reads json[key], an array of exactly rows arrays of cols numbers, into
 * a new row-major array *out. */
static int
svm_load_matrix(const cJSON *json, const char *key, size_t rows,
    size_t cols, double **out, struct model_err *err)
{
	char path[64];

	snprintf(path, sizeof(path), "estimator.%s", key);
	return model_json_matrix(svm_get(json, key), rows, cols, out, path,
	    err);
}

/* Reads json[key], an array of n finite numbers, into a new array *out. */
static int
svm_load_vector(const cJSON *json, const char *key, size_t n, double **out,
    struct model_err *err)
{
	char path[64];

	snprintf(path, sizeof(path), "estimator.%s", key);
	*out = xcalloc(n + 1, sizeof(double));
	return model_json_doubles(svm_get(json, key), n, *out, path, err);
}

/* Reads the kernel and its parameters (gamma, coef0, degree). */
static int
svm_load_kernel(const cJSON *json, struct svm *s, struct model_err *err)
{
	static const char *const names[] = { "linear", "poly", "rbf",
	    "sigmoid", NULL };
	const cJSON *kj = svm_get(json, "kernel");
	double degree;
	size_t k;

	for (k = 0; names[k] != NULL; k++)
		if (cJSON_IsString(kj) && strcmp(kj->valuestring,
		    names[k]) == 0)
			break;
	if (names[k] == NULL) {
		model_errf(err, "estimator.kernel: expected \"linear\", "
		    "\"poly\", \"rbf\" or \"sigmoid\"");
		return -1;
	}
	s->kernel = (enum svm_kernel)k;
	if (svm_load_number(json, "gamma", &s->gamma, err) < 0 ||
	    svm_load_number(json, "coef0", &s->coef0, err) < 0 ||
	    svm_load_number(json, "degree", &degree, err) < 0)
		return -1;
	if (degree < 0 || degree > INT_MAX || degree != floor(degree)) {
		model_errf(err, "estimator.degree: expected a whole number "
		    ">= 0");
		return -1;
	}
	s->degree = (int)degree;
	return 0;
}

/* Reads the support vectors; sets n_sv. */
static int
svm_load_sv(const cJSON *json, struct svm *s, struct model_err *err)
{
	const cJSON *sv = svm_get(json, "support_vectors");

	if (!cJSON_IsArray(sv) || cJSON_GetArraySize(sv) < 1) {
		model_errf(err, "estimator.support_vectors: expected a "
		    "non-empty array");
		return -1;
	}
	s->n_sv = (size_t)cJSON_GetArraySize(sv);
	return svm_load_matrix(json, "support_vectors", s->n_sv, s->n_in,
	    &s->sv, err);
}

/* Reads n_support (support vectors per class, in order) into start and
 * count; they must add up to n_sv. */
static int
svm_load_n_support(const cJSON *json, struct svm *s, struct model_err *err)
{
	double *n = NULL;
	size_t k, total = 0;
	int rc = -1;

	if (svm_load_vector(json, "n_support", s->n_classes, &n, err) < 0)
		goto done;
	s->start = xcalloc(s->n_classes, sizeof(size_t));
	s->count = xcalloc(s->n_classes, sizeof(size_t));
	for (k = 0; k < s->n_classes; k++) {
		if (n[k] < 0 || n[k] > (double)s->n_sv || n[k] != floor(n[k])) {
			model_errf(err, "estimator.n_support[%zu]: expected a "
			    "whole number from 0 to %zu", k, s->n_sv);
			goto done;
		}
		s->start[k] = total;
		s->count[k] = (size_t)n[k];
		total += s->count[k];
	}
	if (total != s->n_sv) {
		model_errf(err, "estimator.n_support: adds up to %zu, but "
		    "there are %zu support vectors", total, s->n_sv);
		goto done;
	}
	rc = 0;
done:
	free(n);
	return rc;
}

/* Reads decision_function_shape, break_ties and the optional Platt
 * scaling (prob_a, prob_b: both or neither). */
static int
svm_load_svc_options(const cJSON *json, struct svm *s, struct model *m,
    struct model_err *err)
{
	const cJSON *shape = svm_get(json, "decision_function_shape");
	const cJSON *ties = svm_get(json, "break_ties");

	if (!cJSON_IsString(shape) || (strcmp(shape->valuestring, "ovr") &&
	    strcmp(shape->valuestring, "ovo"))) {
		model_errf(err, "estimator.decision_function_shape: expected "
		    "\"ovr\" or \"ovo\"");
		return -1;
	}
	s->ovo = strcmp(shape->valuestring, "ovo") == 0;
	if (ties != NULL && !cJSON_IsBool(ties)) {
		model_errf(err, "estimator.break_ties: expected true or false");
		return -1;
	}
	s->break_ties = cJSON_IsTrue(ties);
	if (s->break_ties && s->ovo) {
		model_errf(err, "estimator.break_ties: needs "
		    "decision_function_shape \"ovr\"");
		return -1;
	}
	if ((svm_get(json, "prob_a") == NULL) !=
	    (svm_get(json, "prob_b") == NULL)) {
		model_errf(err, "estimator.%s: prob_a and prob_b come together",
		    svm_get(json, "prob_a") == NULL ? "prob_a" : "prob_b");
		return -1;
	}
	m->has_proba = svm_get(json, "prob_a") != NULL;
	if (m->has_proba && (svm_load_vector(json, "prob_a", s->n_pairs,
	    &s->prob_a, err) < 0 || svm_load_vector(json, "prob_b",
	    s->n_pairs, &s->prob_b, err) < 0))
		return -1;
	return 0;
}

static void *
svc_load(const cJSON *json, struct model *m, struct model_err *err)
{
	static const char *const keys[] = { "type", "kernel", "gamma", "coef0",
	    "degree", "support_vectors", "n_support", "dual_coef", "intercept",
	    "decision_function_shape", "break_ties", "prob_a", "prob_b",
	    NULL };
	struct svm *s = xcalloc(1, sizeof(*s));
	size_t k;

	s->n_in = m->n_inputs;
	s->n_classes = m->n_classes;
	s->n_pairs = s->n_classes * (s->n_classes - 1) / 2;
	if (m->task != MODEL_CLASSIFICATION) {
		model_errf(err, "estimator.type: svc needs task "
		    "\"classification\"");
		goto fail;
	}
	if (model_json_keys(json, keys, "estimator", err) < 0 ||
	    svm_load_kernel(json, s, err) < 0 ||
	    svm_load_sv(json, s, err) < 0 ||
	    svm_load_n_support(json, s, err) < 0 ||
	    svm_load_matrix(json, "dual_coef", s->n_classes - 1, s->n_sv,
	    &s->coef, err) < 0 ||
	    svm_load_vector(json, "intercept", s->n_pairs, &s->intercept,
	    err) < 0 ||
	    svm_load_svc_options(json, s, m, err) < 0)
		goto fail;
	m->n_scores = s->n_classes == 2 ? 1 : s->ovo ? s->n_pairs :
	    s->n_classes;
	/* kernel values, pairwise decisions, votes, ovr confidences; with
	 * probabilities the pairwise matrix, Q and Qp of libsvm. */
	k = s->n_classes;
	m->est_scratch = s->n_sv + s->n_pairs + 2 * k;
	if (m->has_proba)
		m->est_scratch += 2 * k * k + k;
	return s;
fail:
	svm_free(s);
	return NULL;
}

static void *
svr_load(const cJSON *json, struct model *m, struct model_err *err)
{
	static const char *const keys[] = { "type", "kernel", "gamma", "coef0",
	    "degree", "support_vectors", "dual_coef", "intercept", NULL };
	const cJSON *ic = svm_get(json, "intercept");
	struct svm *s = xcalloc(1, sizeof(*s));

	s->n_in = m->n_inputs;
	if (m->task != MODEL_REGRESSION) {
		model_errf(err, "estimator.type: svr needs task \"regression\"");
		goto fail;
	}
	if (model_json_keys(json, keys, "estimator", err) < 0 ||
	    svm_load_kernel(json, s, err) < 0 ||
	    svm_load_sv(json, s, err) < 0 ||
	    svm_load_matrix(json, "dual_coef", 1, s->n_sv, &s->coef,
	    err) < 0)
		goto fail;
	if (cJSON_IsNumber(ic)) {
		s->intercept = xcalloc(1, sizeof(double));
		if (svm_load_number(json, "intercept", s->intercept, err) < 0)
			goto fail;
	} else if (svm_load_vector(json, "intercept", 1, &s->intercept,
	    err) < 0)
		goto fail;
	return s;
fail:
	svm_free(s);
	return NULL;
}

/* libsvm's powi: base^times by repeated squaring. */
static double
svm_powi(double base, int times)
{
	double tmp = base, ret = 1.0;
	int t;

	for (t = times; t > 0; t /= 2) {
		if (t % 2 == 1)
			ret *= tmp;
		tmp = tmp * tmp;
	}
	return ret;
}

/* The kernel between x and support vector i, as libsvm's k_function. */
static double
svm_kernel(const struct svm *s, const double *x, size_t i)
{
	const double *v = s->sv + i * s->n_in;
	double sum = 0, d;
	size_t j;

	if (s->kernel == KERNEL_RBF) {
		for (j = 0; j < s->n_in; j++) {
			d = x[j] - v[j];
			sum += d * d;
		}
		return exp(-s->gamma * sum);
	}
	for (j = 0; j < s->n_in; j++)
		sum += x[j] * v[j];
	switch (s->kernel) {
	case KERNEL_POLY:
		return svm_powi(s->gamma * sum + s->coef0, s->degree);
	case KERNEL_SIGMOID:
		return tanh(s->gamma * sum + s->coef0);
	default:
		return sum;
	}
}

/* libsvm's predict_values for classification: the n_pairs decision values
 * into dec (pair order 0-1, 0-2, ..., 1-2, ...) and the votes into votes.
 * Returns the class with the most votes, the first on ties. kv holds
 * n_sv doubles. */
static size_t
svc_decisions(const struct svm *s, const double *x, double *kv,
    double *dec, double *votes)
{
	size_t i, j, t, p = 0, best = 0;

	for (t = 0; t < s->n_sv; t++)
		kv[t] = svm_kernel(s, x, t);
	for (i = 0; i < s->n_classes; i++)
		votes[i] = 0;
	for (i = 0; i < s->n_classes; i++)
		for (j = i + 1; j < s->n_classes; j++) {
			const double *c1 = s->coef + (j - 1) * s->n_sv;
			const double *c2 = s->coef + i * s->n_sv;
			double sum = 0;

			for (t = s->start[i]; t < s->start[i] + s->count[i];
			    t++)
				sum += c1[t] * kv[t];
			for (t = s->start[j]; t < s->start[j] + s->count[j];
			    t++)
				sum += c2[t] * kv[t];
			/* sum - rho, with intercept = -rho exactly */
			dec[p] = sum + s->intercept[p];
			votes[dec[p] > 0 ? i : j] += 1;
			p++;
		}
	for (i = 1; i < s->n_classes; i++)
		if (votes[i] > votes[best])
			best = i;
	return best;
}

/* scikit-learn's _ovr_decision_function(dec < 0, -dec, n_classes): votes
 * plus the summed confidences squashed into (-1/3, 1/3). sums holds
 * n_classes doubles. */
static void
svc_ovr(const struct svm *s, const double *dec, double *sums, double *out)
{
	size_t i, j, p = 0;

	for (i = 0; i < s->n_classes; i++)
		out[i] = sums[i] = 0;
	for (i = 0; i < s->n_classes; i++)
		for (j = i + 1; j < s->n_classes; j++) {
			double c = -dec[p];

			sums[i] -= c;
			sums[j] += c;
			out[dec[p] < 0 ? j : i] += 1;
			p++;
		}
	for (i = 0; i < s->n_classes; i++)
		out[i] += sums[i] / (3 * (fabs(sums[i]) + 1));
}

/* libsvm's sigmoid_predict: Platt's 1 / (1 + exp(dec * A + B)). */
static double
svm_sigmoid(double dec, double a, double b)
{
	double f = dec * a + b;

	if (f >= 0)
		return exp(-f) / (1.0 + exp(-f));
	return 1.0 / (1 + exp(f));
}

/* libsvm's multiclass_probability (method 2 of Wu, Lin and Weng): class
 * probabilities p[k] from the pairwise ones r (k x k, row-major), with the
 * same iteration and stopping rule. q holds k * k and qp k doubles. */
static void
svm_coupling(size_t k, const double *r, double *p, double *q, double *qp)
{
	size_t t, j, iter, max_iter = k > 100 ? k : 100;
	double pqp, eps = 0.005 / (double)k;

	for (t = 0; t < k; t++) {
		p[t] = 1.0 / (double)k;
		q[t * k + t] = 0;
		for (j = 0; j < t; j++) {
			q[t * k + t] += r[j * k + t] * r[j * k + t];
			q[t * k + j] = q[j * k + t];
		}
		for (j = t + 1; j < k; j++) {
			q[t * k + t] += r[j * k + t] * r[j * k + t];
			q[t * k + j] = -r[j * k + t] * r[t * k + j];
		}
	}
	for (iter = 0; iter < max_iter; iter++) {
		double max_error = 0;

		pqp = 0;
		for (t = 0; t < k; t++) {
			qp[t] = 0;
			for (j = 0; j < k; j++)
				qp[t] += q[t * k + j] * p[j];
			pqp += p[t] * qp[t];
		}
		for (t = 0; t < k; t++) {
			double error = fabs(qp[t] - pqp);

			if (error > max_error)
				max_error = error;
		}
		if (max_error < eps)
			break;
		for (t = 0; t < k; t++) {
			double diff = (-qp[t] + pqp) / q[t * k + t];

			p[t] += diff;
			pqp = (pqp + diff * (diff * q[t * k + t] + 2 *
			    qp[t])) / (1 + diff) / (1 + diff);
			for (j = 0; j < k; j++) {
				qp[j] = (qp[j] + diff * q[t * k + j]) /
				    (1 + diff);
				p[j] /= (1 + diff);
			}
		}
	}
}

/* libsvm's predict_probability, from the decision values: Platt-scaled
 * pairwise probabilities clipped to [1e-7, 1 - 1e-7], then coupled. work
 * holds 2 k^2 + k doubles. */
static void
svc_proba(const struct svm *s, const double *dec, double *p, double *work)
{
	const double min_prob = 1e-7;
	size_t k = s->n_classes, i, j, n = 0;
	double *r = work, *q = r + k * k, *qp = q + k * k;

	for (i = 0; i < k; i++)
		for (j = i + 1; j < k; j++) {
			double v = svm_sigmoid(dec[n], s->prob_a[n],
			    s->prob_b[n]);

			v = v > min_prob ? v : min_prob;
			v = v < 1 - min_prob ? v : 1 - min_prob;
			r[i * k + j] = v;
			r[j * k + i] = 1 - v;
			n++;
		}
	svm_coupling(k, r, p, q, qp);
}

static void
svc_predict(const void *est, const struct model *m, const double *x,
    struct prediction *out)
{
	const struct svm *s = est;
	double *kv = out->work, *dec = kv + s->n_sv;
	double *votes = dec + s->n_pairs, *sums = votes + s->n_classes;
	size_t k;

	out->class_index = svc_decisions(s, x, kv, dec, votes);
	if (s->n_classes == 2)
		out->scores[0] = -dec[0];
	else if (s->ovo)
		memcpy(out->scores, dec, s->n_pairs * sizeof(double));
	else {
		svc_ovr(s, dec, sums, out->scores);
		if (s->break_ties) {
			out->class_index = 0;
			for (k = 1; k < s->n_classes; k++)
				if (out->scores[k] >
				    out->scores[out->class_index])
					out->class_index = k;
		}
	}
	if (m->has_proba)
		svc_proba(s, dec, out->proba, sums + s->n_classes);
}

static void
svr_predict(const void *est, const struct model *m, const double *x,
    struct prediction *out)
{
	const struct svm *s = est;
	double sum = 0;
	size_t t;

	(void)m;
	for (t = 0; t < s->n_sv; t++)
		sum += s->coef[t] * svm_kernel(s, x, t);
	out->value = sum + s->intercept[0];
}

const struct estimator_ops model_svc_ops = {
	"svc", svc_load, svc_predict, svm_free
};

const struct estimator_ops model_svr_ops = {
	"svr", svr_load, svr_predict, svm_free
};
