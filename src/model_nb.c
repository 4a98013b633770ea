/* model_nb: Gaussian naive Bayes (scikit-learn's GaussianNB): joint log
 * likelihood per class, normalised with logsumexp, summed as numpy sums. */
#include "model.h"
#include "xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gnb {
	size_t	 n_classes, n_in;
	double	*theta;		/* n_classes x n_in means */
	double	*var;		/* n_classes x n_in variances (smoothed) */
	double	*log_prior;	/* log(class_prior[c]) */
	double	*norm;		/* -0.5 * sum(log(2 pi var[c])) */
};

static void
gnb_free(void *p)
{
	struct gnb *g = p;

	if (g == NULL)
		return;
	free(g->theta);
	free(g->var);
	free(g->log_prior);
	free(g->norm);
	free(g);
}

/* Precomputes each class's log prior and normalising term; the
 * variances must be positive and the priors in (0, 1]. */
static int
gnb_prepare(struct gnb *g, const double *prior, struct model_err *err)
{
	double *t = xcalloc(g->n_in, sizeof(double));
	size_t c, j;
	int rc = -1;

	for (c = 0; c < g->n_classes; c++) {
		if (!(prior[c] > 0 && prior[c] <= 1)) {
			model_errf(err, "estimator.class_prior[%zu]: expected a "
			    "probability above 0", c);
			goto done;
		}
		g->log_prior[c] = log(prior[c]);
		for (j = 0; j < g->n_in; j++) {
			double v = g->var[c * g->n_in + j];

			if (!(v > 0)) {
				model_errf(err, "estimator.var[%zu][%zu]: "
				    "expected a variance above 0", c, j);
				goto done;
			}
			t[j] = log(2.0 * M_PI * v);
		}
		g->norm[c] = -0.5 * model_sum(t, g->n_in);
	}
	rc = 0;
done:
	free(t);
	return rc;
}

static void *
gnb_load(const cJSON *json, struct model *m, struct model_err *err)
{
	static const char *const keys[] = { "type", "class_prior", "theta",
	    "var", NULL };
	struct gnb *g = xcalloc(1, sizeof(*g));
	double *prior;

	g->n_classes = m->n_classes;
	g->n_in = m->n_inputs;
	prior = xcalloc(g->n_classes + 1, sizeof(double));
	g->log_prior = xcalloc(g->n_classes + 1, sizeof(double));
	g->norm = xcalloc(g->n_classes + 1, sizeof(double));
	if (m->task != MODEL_CLASSIFICATION) {
		model_errf(err, "estimator.type: gaussian_nb needs task "
		    "\"classification\"");
		goto fail;
	}
	if (model_json_keys(json, keys, "estimator", err) < 0 ||
	    model_json_doubles(cJSON_GetObjectItemCaseSensitive(json,
	    "class_prior"), g->n_classes, prior, "estimator.class_prior",
	    err) < 0 ||
	    model_json_matrix(cJSON_GetObjectItemCaseSensitive(json, "theta"),
	    g->n_classes, g->n_in, &g->theta, "estimator.theta", err) < 0 ||
	    model_json_matrix(cJSON_GetObjectItemCaseSensitive(json, "var"),
	    g->n_classes, g->n_in, &g->var, "estimator.var", err) < 0 ||
	    gnb_prepare(g, prior, err) < 0)
		goto fail;
	free(prior);
	m->est_scratch = g->n_in > g->n_classes ? g->n_in : g->n_classes;
	return g;
fail:
	free(prior);
	gnb_free(g);
	return NULL;
}

/* The joint log likelihood into p, the first argmax as the class, then
 * p = exp(jll - logsumexp(jll)), as predict_proba computes it. work holds
 * max(n_in, n_classes) doubles. */
static void
gnb_predict(const void *est, const struct model *m, const double *x,
    struct prediction *out)
{
	const struct gnb *g = est;
	double *p = out->proba, *t = out->work, top, lse;
	size_t c, j;

	(void)m;
	out->class_index = 0;
	for (c = 0; c < g->n_classes; c++) {
		const double *mu = g->theta + c * g->n_in;
		const double *v = g->var + c * g->n_in;

		for (j = 0; j < g->n_in; j++) {
			double d = x[j] - mu[j];

			t[j] = d * d / v[j];
		}
		p[c] = g->log_prior[c] + (g->norm[c] - 0.5 *
		    model_sum(t, g->n_in));
		if (p[c] > p[out->class_index])
			out->class_index = c;
	}
	/* scipy's logsumexp: shift by the (finite) maximum */
	top = p[out->class_index];
	if (!isfinite(top))
		top = 0;
	for (c = 0; c < g->n_classes; c++)
		t[c] = exp(p[c] - top);
	lse = log(model_sum(t, g->n_classes)) + top;
	for (c = 0; c < g->n_classes; c++)
		p[c] = exp(p[c] - lse);
}

const struct estimator_ops model_gaussian_nb_ops = {
	"gaussian_nb", gnb_load, gnb_predict, gnb_free
};
