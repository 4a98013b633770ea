/* model_neighbors: k-nearest neighbours (scikit-learn's KNeighborsClassifier
 * and KNeighborsRegressor). The neighbours are found as scikit-learn finds
 * them, by its brute-force scan or by replaying its k-d tree or ball tree
 * search, so that ties between equally distant training rows resolve the
 * same way. */
#include "model.h"
#include "xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum knn_metric {
	METRIC_EUCLIDEAN,	/* reduced distance: sum of squares */
	METRIC_MANHATTAN	/* reduced distance = distance */
};

enum knn_algo {
	ALGO_BRUTE,		/* every training row, in order */
	ALGO_KD_TREE,
	ALGO_BALL_TREE
};

struct knn_node {
	size_t	start, end;	/* range of idx_array */
	int	leaf;
	double	radius;
};

struct knn {
	size_t		 n, n_in, k;
	int		 distance;	/* weights "distance", else uniform */
	enum knn_metric	 metric;
	enum knn_algo	 algo;
	double		*fit_x;		/* n x n_in */
	double		*y;		/* n: class index, or target */
	size_t		*idx;		/* trees: idx_array, n */
	size_t		 n_nodes;
	struct knn_node	*nodes;
	double		*bounds;	/* n_nodes x n_in: kd lower, ball centre */
	double		*upper;		/* kd: n_nodes x n_in upper bounds */
};

/* The nearest neighbours found so far: scikit-learn's NeighborsHeap row, a
 * max-heap on the reduced distance, k entries, starting at +inf. */
struct knn_heap {
	double	*dist;
	double	*idx;		/* training row indices, as doubles */
	size_t	 k;
};

static void
knn_free(void *p)
{
	struct knn *t = p;

	if (t == NULL)
		return;
	free(t->fit_x);
	free(t->y);
	free(t->idx);
	free(t->nodes);
	free(t->bounds);
	free(t->upper);
	free(t);
}

static const cJSON *
knn_get(const cJSON *json, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(json, key);
}

/* Returns the index of json[key] in the NULL-terminated names, or -1 with
 * err set. */
static int
knn_load_enum(const cJSON *json, const char *key, const char *const *names,
    struct model_err *err)
{
	const cJSON *v = knn_get(json, key);
	char list[128] = "";
	int k;

	for (k = 0; names[k] != NULL; k++) {
		if (cJSON_IsString(v) && strcmp(v->valuestring, names[k]) == 0)
			return k;
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
		    "%s\"%s\"", k == 0 ? "" : names[k + 1] == NULL ? " or " :
		    ", ", names[k]);
	}
	model_errf(err, "estimator.%s: expected %s", key, list);
	return -1;
}

/* Reads n numbers at path, each a whole number in [0, max). */
static int
knn_load_indices(const cJSON *arr, size_t n, size_t max, double *out,
    const char *path, struct model_err *err)
{
	size_t i;

	if (model_json_doubles(arr, n, out, path, err) < 0)
		return -1;
	for (i = 0; i < n; i++)
		if (out[i] < 0 || out[i] >= (double)max ||
		    out[i] != floor(out[i])) {
			model_errf(err, "%s[%zu]: expected a whole number from "
			    "0 to %zu", path, i, max - 1);
			return -1;
		}
	return 0;
}

/* Reads the training set: fit_X (n rows) and y (class indices for a
 * classifier, targets for a regressor). */
static int
knn_load_data(const cJSON *json, struct knn *t, const struct model *m,
    struct model_err *err)
{
	const cJSON *fx = knn_get(json, "fit_X");

	if (!cJSON_IsArray(fx) || cJSON_GetArraySize(fx) < 1) {
		model_errf(err, "estimator.fit_X: expected a non-empty array");
		return -1;
	}
	t->n = (size_t)cJSON_GetArraySize(fx);
	t->y = xcalloc(t->n, sizeof(double));
	if (model_json_matrix(fx, t->n, t->n_in, &t->fit_x, "estimator.fit_X",
	    err) < 0)
		return -1;
	if (m->task == MODEL_CLASSIFICATION)
		return knn_load_indices(knn_get(json, "y"), t->n, m->n_classes,
		    t->y, "estimator.y", err);
	return model_json_doubles(knn_get(json, "y"), t->n, t->y,
	    "estimator.y", err);
}

/* Reads one node of node_data, [idx_start, idx_end, is_leaf, radius], and
 * checks that it is a range of idx_array and that a split node has both
 * children. */
static int
knn_load_node(const cJSON *nj, size_t i, struct knn *t,
    struct model_err *err)
{
	struct knn_node *nd = &t->nodes[i];
	char path[64];
	double v[4];

	snprintf(path, sizeof(path), "estimator.tree.node_data[%zu]", i);
	if (model_json_doubles(nj, 4, v, path, err) < 0)
		return -1;
	if (v[0] < 0 || v[1] > (double)t->n || v[0] >= v[1] ||
	    v[0] != floor(v[0]) || v[1] != floor(v[1]) ||
	    (v[2] != 0 && v[2] != 1) || v[3] < 0) {
		model_errf(err, "%s: expected [start, end, is_leaf (0 or 1), "
		    "radius] with 0 <= start < end <= %zu", path, t->n);
		return -1;
	}
	nd->start = (size_t)v[0];
	nd->end = (size_t)v[1];
	nd->leaf = v[2] == 1;
	nd->radius = v[3];
	if (!nd->leaf && 2 * i + 2 >= t->n_nodes) {
		model_errf(err, "%s: a split node whose children %zu and %zu "
		    "do not exist", path, 2 * i + 1, 2 * i + 2);
		return -1;
	}
	return 0;
}

/* Reads the search tree: idx_array, node_data and node_bounds (kd_tree:
 * [lower, upper], each n_nodes x n_in; ball_tree: [centroids]). */
static int
knn_load_tree(const cJSON *json, struct knn *t, struct model_err *err)
{
	static const char *const keys[] = { "idx_array", "node_data",
	    "node_bounds", NULL };
	const cJSON *tj = knn_get(json, "tree"), *nodes, *bounds, *b;
	size_t i, nb = t->algo == ALGO_KD_TREE ? 2 : 1;
	double *idx = xcalloc(t->n, sizeof(double));
	int rc = -1;

	if (model_json_keys(tj, keys, "estimator.tree", err) < 0 ||
	    knn_load_indices(knn_get(tj, "idx_array"), t->n, t->n, idx,
	    "estimator.tree.idx_array", err) < 0)
		goto done;
	t->idx = xcalloc(t->n, sizeof(size_t));
	for (i = 0; i < t->n; i++)
		t->idx[i] = (size_t)idx[i];
	nodes = knn_get(tj, "node_data");
	if (!cJSON_IsArray(nodes) || cJSON_GetArraySize(nodes) < 1) {
		model_errf(err, "estimator.tree.node_data: expected a "
		    "non-empty array");
		goto done;
	}
	t->n_nodes = (size_t)cJSON_GetArraySize(nodes);
	t->nodes = xcalloc(t->n_nodes, sizeof(*t->nodes));
	i = 0;
	cJSON_ArrayForEach(b, nodes)
		if (knn_load_node(b, i++, t, err) < 0)
			goto done;
	bounds = knn_get(tj, "node_bounds");
	if (!cJSON_IsArray(bounds) || (size_t)cJSON_GetArraySize(bounds) != nb) {
		model_errf(err, "estimator.tree.node_bounds: expected %zu "
		    "arrays of %zu rows", nb, t->n_nodes);
		goto done;
	}
	if (model_json_matrix(bounds->child, t->n_nodes, t->n_in, &t->bounds,
	    "estimator.tree.node_bounds[0]", err) < 0 || (nb == 2 &&
	    model_json_matrix(bounds->child->next, t->n_nodes, t->n_in,
	    &t->upper, "estimator.tree.node_bounds[1]", err) < 0))
		goto done;
	rc = 0;
done:
	free(idx);
	return rc;
}

static void *
knn_load(const cJSON *json, struct model *m, struct model_err *err)
{
	static const char *const keys[] = { "type", "n_neighbors", "weights",
	    "metric", "algorithm", "fit_X", "y", "tree", NULL };
	static const char *const weights[] = { "uniform", "distance", NULL };
	static const char *const metrics[] = { "euclidean", "manhattan", NULL };
	static const char *const algos[] = { "brute", "kd_tree", "ball_tree",
	    NULL };
	const cJSON *kj = knn_get(json, "n_neighbors");
	struct knn *t = xcalloc(1, sizeof(*t));
	int w, metric, algo;

	t->n_in = m->n_inputs;
	if (model_json_keys(json, keys, "estimator", err) < 0 ||
	    (w = knn_load_enum(json, "weights", weights, err)) < 0 ||
	    (metric = knn_load_enum(json, "metric", metrics, err)) < 0 ||
	    (algo = knn_load_enum(json, "algorithm", algos, err)) < 0 ||
	    knn_load_data(json, t, m, err) < 0)
		goto fail;
	t->distance = w == 1;
	t->metric = (enum knn_metric)metric;
	t->algo = (enum knn_algo)algo;
	if (!cJSON_IsNumber(kj) || kj->valuedouble < 1 ||
	    kj->valuedouble > (double)t->n ||
	    kj->valuedouble != floor(kj->valuedouble)) {
		model_errf(err, "estimator.n_neighbors: expected a whole number "
		    "from 1 to %zu (the training rows)", t->n);
		goto fail;
	}
	t->k = (size_t)kj->valuedouble;
	if (t->algo == ALGO_BRUTE && knn_get(json, "tree") != NULL) {
		model_errf(err, "estimator.tree: algorithm \"brute\" has none");
		goto fail;
	}
	if (t->algo != ALGO_BRUTE && knn_load_tree(json, t, err) < 0)
		goto fail;
	m->est_scratch = 2 * t->k;
	return t;
fail:
	knn_free(t);
	return NULL;
}

/* The reduced distance between x and training row i (squared euclidean,
 * or manhattan), summed in feature order as scikit-learn does. */
static double
knn_rdist(const struct knn *t, const double *x, const double *row)
{
	double d = 0, e;
	size_t j;

	for (j = 0; j < t->n_in; j++) {
		e = x[j] - row[j];
		d += t->metric == METRIC_EUCLIDEAN ? e * e : fabs(e);
	}
	return d;
}

/* scikit-learn's heap_push: if val is below the largest distance kept,
 * it replaces the root and sinks to its place. */
static void
knn_push(struct knn_heap *h, double val, size_t i)
{
	size_t cur = 0, left, right, swap;

	if (val >= h->dist[0])
		return;
	for (;;) {
		left = 2 * cur + 1;
		right = left + 1;
		if (left >= h->k)
			break;
		if (right >= h->k) {
			if (h->dist[left] > val)
				swap = left;
			else
				break;
		} else if (h->dist[left] >= h->dist[right]) {
			if (val < h->dist[left])
				swap = left;
			else
				break;
		} else {
			if (val < h->dist[right])
				swap = right;
			else
				break;
		}
		h->dist[cur] = h->dist[swap];
		h->idx[cur] = h->idx[swap];
		cur = swap;
	}
	h->dist[cur] = val;
	h->idx[cur] = (double)i;
}

/* The lower bound on the reduced distance from x to any row of node i. */
static double
knn_min_rdist(const struct knn *t, size_t i, const double *x)
{
	const double *lo = t->bounds + i * t->n_in;
	double p = t->metric == METRIC_EUCLIDEAN ? 2.0 : 1.0, r = 0, d;
	size_t j;

	if (t->algo == ALGO_BALL_TREE) {
		d = knn_rdist(t, x, lo);
		if (t->metric == METRIC_EUCLIDEAN)
			d = sqrt(d);
		d = fmax(0, d - t->nodes[i].radius);
		return t->metric == METRIC_EUCLIDEAN ? d * d : d;
	}
	/* kd_tree: distance to the node's bounding box */
	for (j = 0; j < t->n_in; j++) {
		double up = t->upper[i * t->n_in + j];
		double d_lo = lo[j] - x[j], d_hi = x[j] - up;

		d = (d_lo + fabs(d_lo)) + (d_hi + fabs(d_hi));
		r += pow(0.5 * d, p);
	}
	return r;
}

/* scikit-learn's _query_single_depthfirst: prune, scan a leaf, or visit
 * the nearer child first (the left one on a tie). */
static void
knn_query(const struct knn *t, size_t i, const double *x, double lb,
    struct knn_heap *h)
{
	const struct knn_node *nd = &t->nodes[i];
	double lb1, lb2, d;
	size_t j;

	if (lb > h->dist[0])
		return;
	if (nd->leaf) {
		for (j = nd->start; j < nd->end; j++) {
			d = knn_rdist(t, x, t->fit_x + t->idx[j] * t->n_in);
			if (d < h->dist[0])
				knn_push(h, d, t->idx[j]);
		}
		return;
	}
	lb1 = knn_min_rdist(t, 2 * i + 1, x);
	lb2 = knn_min_rdist(t, 2 * i + 2, x);
	if (lb1 <= lb2) {
		knn_query(t, 2 * i + 1, x, lb1, h);
		knn_query(t, 2 * i + 2, x, lb2, h);
	} else {
		knn_query(t, 2 * i + 2, x, lb2, h);
		knn_query(t, 2 * i + 1, x, lb1, h);
	}
}

/* Fills h with the k nearest training rows and sorts them by distance
 * (rows at equal distance weigh the same, so their order does not
 * matter); distances become true distances. */
static void
knn_neighbours(const struct knn *t, const double *x, struct knn_heap *h)
{
	size_t i, j;

	for (i = 0; i < h->k; i++) {
		h->dist[i] = INFINITY;
		h->idx[i] = 0;
	}
	if (t->algo == ALGO_BRUTE)
		for (i = 0; i < t->n; i++)
			knn_push(h, knn_rdist(t, x, t->fit_x + i * t->n_in), i);
	else
		knn_query(t, 0, x, knn_min_rdist(t, 0, x), h);
	for (i = 1; i < h->k; i++)	/* insertion sort, k is small */
		for (j = i; j > 0 && h->dist[j - 1] > h->dist[j]; j--) {
			double d = h->dist[j], n = h->idx[j];

			h->dist[j] = h->dist[j - 1];
			h->idx[j] = h->idx[j - 1];
			h->dist[j - 1] = d;
			h->idx[j - 1] = n;
		}
	for (i = 0; i < h->k; i++)
		if (t->metric == METRIC_EUCLIDEAN)
			h->dist[i] = sqrt(h->dist[i]);
}

/* Turns the distances into weights in place, as scikit-learn's
 * _get_weights: 1 (uniform) or 1/d, except that if any neighbour is at
 * distance 0 (1/d infinite), those weigh 1 and the others 0. */
static void
knn_weights(const struct knn *t, double *w, size_t k)
{
	size_t i;
	int inf = 0;

	for (i = 0; i < k; i++) {
		w[i] = t->distance ? 1.0 / w[i] : 1.0;
		inf |= isinf(w[i]);
	}
	for (i = 0; inf && i < k; i++)
		w[i] = isinf(w[i]) ? 1.0 : 0.0;
}

static void
knn_predict(const void *est, const struct model *m, const double *x,
    struct prediction *out)
{
	const struct knn *t = est;
	struct knn_heap h = { out->work, out->work + t->k, t->k };
	double *w = h.dist, den;
	size_t i;

	knn_neighbours(t, x, &h);
	knn_weights(t, w, t->k);
	if (m->task == MODEL_REGRESSION) {
		/* sum(y * w) / sum(w), or mean(y) for uniform weights */
		den = t->distance ? model_sum(w, t->k) : (double)t->k;
		for (i = 0; i < t->k; i++)
			w[i] = t->y[(size_t)h.idx[i]] * w[i];
		out->value = model_sum(w, t->k) / den;
		return;
	}
	/* Class weights, the first heaviest class, then normalised. */
	for (i = 0; i < m->n_classes; i++)
		out->proba[i] = 0;
	for (i = 0; i < t->k; i++)
		out->proba[(size_t)t->y[(size_t)h.idx[i]]] += w[i];
	out->class_index = 0;
	for (i = 1; i < m->n_classes; i++)
		if (out->proba[i] > out->proba[out->class_index])
			out->class_index = i;
	den = model_sum(out->proba, m->n_classes);
	if (den == 0)
		den = 1;
	for (i = 0; i < m->n_classes; i++)
		out->proba[i] /= den;
}

const struct estimator_ops model_kneighbors_ops = {
	"kneighbors", knn_load, knn_predict, knn_free
};
