/* model_mlp: multi-layer perceptrons (scikit-learn's MLPClassifier and
 * MLPRegressor), forward pass as scikit-learn computes it. */
#include "model.h"
#include "xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mlp_act {
	ACT_IDENTITY,
	ACT_LOGISTIC,
	ACT_TANH,
	ACT_RELU,
	ACT_SOFTMAX		/* output layer only */
};

static const char *const mlp_act_names[] = { "identity", "logistic", "tanh",
	"relu", "softmax", NULL };

struct mlp_layer {
	size_t	 n_in, n_out;
	double	*coef;		/* n_in x n_out, row-major, as coefs_[i] */
	double	*intercept;	/* n_out */
};

struct mlp {
	enum mlp_act	  hidden, output;
	size_t		  n_layers;
	struct mlp_layer *layers;
	size_t		  max_width;	/* widest layer output */
};

static void	mlp_predict_rows(const void *, const struct model *,
		    const double *, size_t, size_t, struct prediction *);

static void
mlp_free(void *p)
{
	struct mlp *n = p;
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; n->layers != NULL && i < n->n_layers; i++) {
		free(n->layers[i].coef);
		free(n->layers[i].intercept);
	}
	free(n->layers);
	free(n);
}

/* Reads json[key], one of mlp_act_names up to last (inclusive). */
static int
mlp_load_act(const cJSON *json, const char *key, enum mlp_act last,
    enum mlp_act *out, struct model_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, key);
	size_t k;

	for (k = 0; k <= (size_t)last; k++)
		if (cJSON_IsString(v) && strcmp(v->valuestring,
		    mlp_act_names[k]) == 0) {
			*out = (enum mlp_act)k;
			return 0;
		}
	model_errf(err, "estimator.%s: expected \"identity\", \"logistic\", "
	    "\"tanh\", \"relu\"%s", key, last == ACT_SOFTMAX ?
	    " or \"softmax\"" : "");
	return -1;
}

/* Reads layer i (json: {"coef": [[n_out] x n_in], "intercept": [n_out]})
 * taking n_in inputs; its width comes from the first coef row. */
static int
mlp_load_layer(const cJSON *json, size_t i, size_t n_in,
    struct mlp_layer *l, struct model_err *err)
{
	static const char *const keys[] = { "coef", "intercept", NULL };
	const cJSON *coef = cJSON_GetObjectItemCaseSensitive(json, "coef");
	char path[80];

	snprintf(path, sizeof(path), "estimator.layers[%zu]", i);
	if (model_json_keys(json, keys, path, err) < 0)
		return -1;
	if (!cJSON_IsArray(coef) || (size_t)cJSON_GetArraySize(coef) != n_in ||
	    !cJSON_IsArray(coef->child) ||
	    cJSON_GetArraySize(coef->child) < 1) {
		model_errf(err, "%s.coef: expected %zu non-empty rows, one per "
		    "input", path, n_in);
		return -1;
	}
	l->n_in = n_in;
	l->n_out = (size_t)cJSON_GetArraySize(coef->child);
	l->intercept = xcalloc(l->n_out, sizeof(double));
	snprintf(path, sizeof(path), "estimator.layers[%zu].coef", i);
	if (model_json_matrix(coef, n_in, l->n_out, &l->coef, path, err) < 0)
		return -1;
	snprintf(path, sizeof(path), "estimator.layers[%zu].intercept", i);
	return model_json_doubles(cJSON_GetObjectItemCaseSensitive(json,
	    "intercept"), l->n_out, l->intercept, path, err);
}

/* Checks that the output layer fits the task: softmax over n_classes
 * (three or more), logistic with one unit for two classes, identity with
 * one unit for regression. */
static int
mlp_check_output(const struct mlp *n, const struct model *m,
    struct model_err *err)
{
	size_t width = n->layers[n->n_layers - 1].n_out;

	if (m->task == MODEL_REGRESSION && n->output == ACT_IDENTITY &&
	    width == 1)
		return 0;
	if (m->task == MODEL_CLASSIFICATION && n->output == ACT_SOFTMAX &&
	    width == m->n_classes && m->n_classes > 2)
		return 0;
	if (m->task == MODEL_CLASSIFICATION && n->output == ACT_LOGISTIC &&
	    width == 1 && m->n_classes == 2)
		return 0;
	model_errf(err, "estimator.output: a %s output of %zu units does not "
	    "fit a %s model%s", mlp_act_names[n->output], width,
	    m->task == MODEL_REGRESSION ? "regression" : "classification",
	    m->task == MODEL_REGRESSION ? " (expected identity, 1 unit)" :
	    " (expected logistic with 1 unit for two classes, softmax with "
	    "one per class otherwise)");
	return -1;
}

static void *
mlp_load(const cJSON *json, struct model *m, struct model_err *err)
{
	static const char *const keys[] = { "type", "activation", "output",
	    "layers", NULL };
	const cJSON *layers = cJSON_GetObjectItemCaseSensitive(json, "layers");
	const cJSON *lj;
	struct mlp *n = xcalloc(1, sizeof(*n));
	size_t i = 0, width = m->n_inputs;

	if (model_json_keys(json, keys, "estimator", err) < 0 ||
	    mlp_load_act(json, "activation", ACT_RELU, &n->hidden, err) < 0 ||
	    mlp_load_act(json, "output", ACT_SOFTMAX, &n->output, err) < 0)
		goto fail;
	if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) < 1) {
		model_errf(err, "estimator.layers: expected a non-empty array");
		goto fail;
	}
	n->n_layers = (size_t)cJSON_GetArraySize(layers);
	n->layers = xcalloc(n->n_layers, sizeof(*n->layers));
	cJSON_ArrayForEach(lj, layers) {
		if (mlp_load_layer(lj, i, width, &n->layers[i], err) < 0)
			goto fail;
		width = n->layers[i].n_out;
		if (width > n->max_width)
			n->max_width = width;
		i++;
	}
	if (mlp_check_output(n, m, err) < 0)
		goto fail;
	m->est_scratch = 2 * n->max_width;
	m->est_predict_rows = mlp_predict_rows;
	return n;
fail:
	mlp_free(n);
	return NULL;
}

/* Rows and outputs one step of mlp_affine_rows() computes together, in
 * registers: MLP_ROWS rows by 2 x MLP_VEC outputs. */
#define MLP_ROWS 4
#define MLP_VEC 2
typedef double mlp_vec __attribute__((vector_size(MLP_VEC * sizeof(double))));

/* Outputs [j, j + 2 * MLP_VEC) of z = in . coef + intercept for the rows
 * in[0..R) (R at most MLP_ROWS), into out[r]. Each output is summed as
 * mlp_affine_cols() sums it: 0, then in[i] * coef[i][j] for i = 0, 1, ...,
 * then the intercept, so that every row gets the same bits however many
 * rows are computed together. */
static inline __attribute__((always_inline)) void
mlp_affine_block(const struct mlp_layer *l, const double *const *in,
    double *const *out, size_t R, size_t j)
{
	mlp_vec acc[MLP_ROWS][2], w0, w1, b, c;
	const double *w = l->coef + j;
	size_t i, r;

#pragma GCC unroll 4	/* MLP_ROWS */
	for (r = 0; r < R; r++)
		acc[r][0] = acc[r][1] = (mlp_vec){ 0 };
	for (i = 0; i < l->n_in; i++, w += l->n_out) {
		memcpy(&w0, w, sizeof(w0));
		memcpy(&w1, w + MLP_VEC, sizeof(w1));
#pragma GCC unroll 4	/* MLP_ROWS */
		for (r = 0; r < R; r++) {
			b = (mlp_vec){ in[r][i], in[r][i] };
			acc[r][0] += b * w0;
			acc[r][1] += b * w1;
		}
	}
	memcpy(&w0, l->intercept + j, sizeof(w0));
	memcpy(&w1, l->intercept + j + MLP_VEC, sizeof(w1));
#pragma GCC unroll 4	/* MLP_ROWS */
	for (r = 0; r < R; r++) {
		c = acc[r][0] + w0;
		memcpy(out[r] + j, &c, sizeof(c));
		c = acc[r][1] + w1;
		memcpy(out[r] + j + MLP_VEC, &c, sizeof(c));
	}
}

/* Outputs [from, n_out) of the same, one at a time, for one row. */
static void
mlp_affine_cols(const struct mlp_layer *l, const double *in, double *out,
    size_t from)
{
	size_t i, j;

	for (j = from; j < l->n_out; j++) {
		double z = 0;

		for (i = 0; i < l->n_in; i++)
			z += in[i] * l->coef[i * l->n_out + j];
		out[j] = z + l->intercept[j];
	}
}

/* z = in . coef + intercept for R rows (at most MLP_ROWS; R constant
 * where inlined). */
static inline __attribute__((always_inline)) void
mlp_affine_some(const struct mlp_layer *l, const double *const *in,
    double *const *out, size_t R)
{
	size_t j, r, wide = l->n_out - l->n_out % (2 * MLP_VEC);

	for (j = 0; j < wide; j += 2 * MLP_VEC)
		mlp_affine_block(l, in, out, R, j);
	for (r = 0; r < R; r++)
		mlp_affine_cols(l, in[r], out[r], wide);
}

/* z = in . coef + intercept for the n rows in + k * in_stride, into
 * out + k * out_stride: MLP_ROWS rows at a time, so that each weight
 * loaded serves several rows. */
static void
mlp_affine_rows(const struct mlp_layer *l, const double *in,
    size_t in_stride, double *out, size_t out_stride, size_t n)
{
	const double *ip[MLP_ROWS];
	double *op[MLP_ROWS];
	size_t k, r;

	for (k = 0; k + MLP_ROWS <= n; k += MLP_ROWS) {
		for (r = 0; r < MLP_ROWS; r++) {
			ip[r] = in + (k + r) * in_stride;
			op[r] = out + (k + r) * out_stride;
		}
		mlp_affine_some(l, ip, op, MLP_ROWS);
	}
	for (; k < n; k++) {
		ip[0] = in + k * in_stride;
		op[0] = out + k * out_stride;
		mlp_affine_some(l, ip, op, 1);
	}
}

/* Applies a hidden activation in place, as scikit-learn's ACTIVATIONS. */
static void
mlp_activate(enum mlp_act act, double *z, size_t n)
{
	size_t j;

	for (j = 0; j < n; j++)
		switch (act) {
		case ACT_LOGISTIC:
			z[j] = 1.0 / (1.0 + exp(-z[j]));
			break;
		case ACT_TANH:
			z[j] = tanh(z[j]);
			break;
		case ACT_RELU:
			z[j] = z[j] >= 0 ? z[j] : 0.0;	/* np.maximum(z, 0) */
			break;
		default:
			break;
		}
}

/* The output layer's z to the prediction: softmax and argmax; logistic and
 * p > 0.5 (scikit-learn's LabelBinarizer threshold); identity. */
static void
mlp_output(const struct mlp *n, double *z, size_t width,
    struct prediction *out)
{
	double top, sum;
	size_t k;

	if (n->output == ACT_IDENTITY) {
		out->value = z[0];
		return;
	}
	if (n->output == ACT_LOGISTIC) {
		out->proba[1] = 1.0 / (1.0 + exp(-z[0]));
		out->proba[0] = 1 - out->proba[1];
		out->class_index = out->proba[1] > 0.5 ? 1 : 0;
		return;
	}
	top = z[0];
	for (k = 1; k < width; k++)
		if (z[k] > top)
			top = z[k];
	for (k = 0; k < width; k++)
		out->proba[k] = exp(z[k] - top);
	sum = model_sum(out->proba, width);
	out->class_index = 0;
	for (k = 0; k < width; k++) {
		out->proba[k] /= sum;
		if (out->proba[k] > out->proba[out->class_index])
			out->class_index = k;
	}
}

/* Rows mlp_predict_rows() takes through all the layers together: few
 * enough that their layers' outputs stay in the L1 cache. */
#define MLP_CHUNK 16

/* Predicts the n rows x + k * stride into out[0..n) (laid out as
 * model_predict_rows() does: each row's work memory follows the row
 * before's), MLP_CHUNK rows at a time, layer after layer. */
static void
mlp_predict_rows(const void *est, const struct model *m, const double *x,
    size_t stride, size_t n, struct prediction *out)
{
	const struct mlp *nn = est;
	const double *in;
	size_t b, c, i, k, in_stride, w = m->est_scratch;
	double *z = NULL;

	for (b = 0; b < n; b += c) {
		c = n - b < MLP_CHUNK ? n - b : MLP_CHUNK;
		in = x + b * stride;
		in_stride = stride;
		for (i = 0; i < nn->n_layers; i++) {
			const struct mlp_layer *l = &nn->layers[i];

			z = out[b].work + (i % 2) * nn->max_width;
			mlp_affine_rows(l, in, in_stride, z, w, c);
			if (i + 1 < nn->n_layers)
				for (k = 0; k < c; k++)
					mlp_activate(nn->hidden, z + k * w,
					    l->n_out);
			in = z;
			in_stride = w;
		}
		for (k = 0; k < c; k++)
			mlp_output(nn, z + k * w,
			    nn->layers[nn->n_layers - 1].n_out, &out[b + k]);
	}
}

static void
mlp_predict(const void *est, const struct model *m, const double *x,
    struct prediction *out)
{
	mlp_predict_rows(est, m, x, m->n_inputs, 1, out);
}

const struct estimator_ops model_mlp_ops = {
	"mlp", mlp_load, mlp_predict, mlp_free
};
