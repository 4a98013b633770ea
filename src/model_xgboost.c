/* model_xgboost: gradient-boosted trees predicted as XGBoost 1.7 predicts
 * them (float32 splits, sums and links), from XGBoost's own JSON model file
 * or from an "xgboost" estimator in an mlfcgi model file. */
#include "model.h"
#include "xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* As model_load.c: the format's limits on features and classes. */
#define XGB_MAX_FEATURES 65536
#define XGB_MAX_CLASSES 65536
/* Nodes in one model; node indices are 32-bit. */
#define XGB_MAX_NODES 0x7fffffffUL

#define XGB_LEAF		0xffffffffU	/* node.split of a leaf */
#define XGB_DEFAULT_LEFT	0x80000000U	/* missing goes left */
#define XGB_FEATURE		0x7fffffffU

/* How the summed margin becomes the output (XGBoost's PredTransform). */
enum xgb_link {
	XGB_IDENTITY,		/* the margin */
	XGB_LOGISTIC,		/* sigmoid; base_score is a probability */
	XGB_EXP,		/* exp; base_score is a mean */
	XGB_SOFTPROB,		/* softmax, class = argmax of probabilities */
	XGB_SOFTMAX		/* softmax, class = argmax of margins */
};

struct xgb_objective {
	const char	*name;
	enum xgb_link	 link;
	int		 classifier;
};

static const struct xgb_objective xgb_objectives[] = {
	{ "reg:squarederror",		XGB_IDENTITY,	0 },
	{ "reg:squaredlogerror",	XGB_IDENTITY,	0 },
	{ "reg:pseudohubererror",	XGB_IDENTITY,	0 },
	{ "reg:absoluteerror",		XGB_IDENTITY,	0 },
	{ "reg:logistic",		XGB_LOGISTIC,	0 },
	{ "count:poisson",		XGB_EXP,	0 },
	{ "reg:gamma",			XGB_EXP,	0 },
	{ "reg:tweedie",		XGB_EXP,	0 },
	{ "binary:logistic",		XGB_LOGISTIC,	1 },
	{ "multi:softprob",		XGB_SOFTPROB,	1 },
	{ "multi:softmax",		XGB_SOFTMAX,	1 },
	{ NULL,				XGB_IDENTITY,	0 }
};

/* A node of the flat tree array. The children of a split are adjacent:
 * left at `left`, right at `left + 1`. */
struct xgb_node {
	float		value;	/* split threshold, or leaf value */
	uint32_t	split;	/* feature | XGB_DEFAULT_LEFT, or XGB_LEAF */
	uint32_t	left;
};

/* A node of the fast walk (rows without a missing value): right iff
 * x > thr, where thr is the float below the split's threshold, which for
 * a float x is the same test as !(x < threshold). The children of node i
 * are i + delta and i + delta + 1. A leaf is its own child (delta 0, thr
 * +inf, feature 0), so a walk may take more steps than its depth and stay
 * on its leaf; its value is in the model's leaf[i]. Eight bytes, so that
 * more of the trees stay in the caches. */
struct xgb_fnode {
	float		thr;
	uint16_t	feature;
	uint16_t	delta;
};

/* Walks taken together, each step one node of each, so that several
 * memory loads are in flight: trees for one row (xgb_predict()), rows for
 * one tree (xgb_predict_rows()). */
#define XGB_GROUP 8
/* Rows that xgb_predict_rows() walks through one tree before the next. */
#define XGB_BLOCK 4096
/* Trees at most this deep are walked their full depth, without checking
 * whether every walk has already reached its leaf. */
#define XGB_SHALLOW 8

/* A whole model in one allocation: this header, then nodes, then the
 * trees' roots and groups; the fast walk in a second one. */
struct xgb {
	enum xgb_link	 link;
	size_t		 n_groups;	/* margins: classes, or 1 */
	size_t		 n_trees;
	size_t		 n_nodes;
	float		 base_margin;
	uint32_t	*roots;		/* n_trees node indices */
	uint32_t	*groups;	/* n_trees margin indices */
	struct xgb_fnode *fast;		/* n_nodes, or NULL: none */
	float		*leaf;		/* n_nodes: a leaf's value */
	/* Steps every walk needs (the least leaf depth) and may need (the
	 * depth): per XGB_GROUP trees, and per tree. */
	uint16_t	*gsure, *gsteps;
	uint16_t	*tsure, *tsteps;
	struct xgb_node	 nodes[];
};

/* One tree as read from JSON, in XGBoost's node numbering (load time). */
struct xgb_raw {
	size_t	 n;
	double	*cond, *feat, *left, *right, *dleft;
	uint32_t *order;	/* new node -> XGBoost node */
	unsigned char *seen;
};

static void	xgb_predict_rows(const void *, const struct model *,
		    const double *, size_t, size_t, struct prediction *);

static const cJSON *
xgb_get(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static const struct xgb_objective *
xgb_objective(const char *name)
{
	size_t k;

	for (k = 0; xgb_objectives[k].name != NULL; k++)
		if (strcmp(xgb_objectives[k].name, name) == 0)
			return &xgb_objectives[k];
	return NULL;
}

/* Finds the objective named by json (a string). Returns NULL with err
 * naming path if it is missing or not supported. */
static const struct xgb_objective *
xgb_load_objective(const cJSON *json, const char *path,
    struct model_err *err)
{
	const struct xgb_objective *obj = NULL;

	if (cJSON_IsString(json))
		obj = xgb_objective(json->valuestring);
	if (obj == NULL)
		model_errf(err, "%s: %s%.64s%s is not a supported objective "
		    "(binary:logistic, multi:softprob, multi:softmax, "
		    "reg:squarederror, reg:logistic, count:poisson, ...)",
		    path, cJSON_IsString(json) ? "\"" : "",
		    cJSON_IsString(json) ? json->valuestring : "(not a string)",
		    cJSON_IsString(json) ? "\"" : "");
	return obj;
}

/* Reads a float32 given as a JSON number or, as XGBoost writes
 * learner_model_param, a string ("5E-1", or "[5E-1]" in later versions).
 * Strings are converted by strtof, as XGBoost reads them. */
static int
xgb_load_float(const cJSON *v, const char *path, float *out,
    struct model_err *err)
{
	char buf[64], *end;
	size_t len;

	if (cJSON_IsNumber(v)) {
		*out = (float)v->valuedouble;
		if (isfinite(*out))
			return 0;
	} else if (cJSON_IsString(v) && (len = strlen(v->valuestring)) > 0 &&
	    len < sizeof(buf)) {
		memcpy(buf, v->valuestring, len + 1);
		if (buf[0] == '[' && buf[len - 1] == ']') {
			buf[len - 1] = '\0';
			memmove(buf, buf + 1, len - 1);
		}
		errno = 0;
		*out = strtof(buf, &end);
		if (end != buf && *end == '\0' && errno == 0 && isfinite(*out))
			return 0;
	}
	model_errf(err, "%s: expected a finite number", path);
	return -1;
}

/* Reads a count given as a JSON number or a decimal string ("3"). */
static int
xgb_load_count(const cJSON *v, const char *path, size_t max, size_t *out,
    struct model_err *err)
{
	unsigned long n;
	char *end;

	if (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
	    v->valuedouble <= (double)max &&
	    v->valuedouble == floor(v->valuedouble)) {
		*out = (size_t)v->valuedouble;
		return 0;
	}
	if (cJSON_IsString(v) && v->valuestring[0] >= '0' &&
	    v->valuestring[0] <= '9') {
		errno = 0;
		n = strtoul(v->valuestring, &end, 10);
		if (*end == '\0' && errno == 0 && n <= max) {
			*out = n;
			return 0;
		}
	}
	model_errf(err, "%s: expected a whole number from 0 to %zu", path, max);
	return -1;
}

/* The margin XGBoost starts every row from: base_score through the
 * objective's ProbToMargin, in float32. */
static int
xgb_base_margin(enum xgb_link link, float base_score, const char *path,
    float *out, struct model_err *err)
{
	if (link == XGB_LOGISTIC) {
		if (!(base_score > 0.0f && base_score < 1.0f)) {
			model_errf(err, "%s: %g is not a probability strictly "
			    "between 0 and 1", path, (double)base_score);
			return -1;
		}
		*out = -logf(1.0f / base_score - 1.0f);
	} else if (link == XGB_EXP) {
		if (!(base_score > 0.0f)) {
			model_errf(err, "%s: %g is not positive", path,
			    (double)base_score);
			return -1;
		}
		*out = logf(base_score);
	} else
		*out = base_score;
	return 0;
}

/* ---- trees --------------------------------------------------------------- */

static void
xgb_raw_free(struct xgb_raw *r)
{
	free(r->cond);
	free(r->feat);
	free(r->left);
	free(r->right);
	free(r->dleft);
	free(r->order);
	free(r->seen);
	memset(r, 0, sizeof(*r));
}

/* Reads default_left: numbers 0/1 (XGBoost's JSON) or booleans. */
static int
xgb_load_flags(const cJSON *arr, size_t n, double *out, const char *path,
    struct model_err *err)
{
	const cJSON *v;
	size_t i = 0;

	if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n) {
		model_errf(err, "%s: expected an array of %zu flags", path, n);
		return -1;
	}
	cJSON_ArrayForEach(v, arr) {
		if (cJSON_IsBool(v))
			out[i] = cJSON_IsTrue(v);
		else if (cJSON_IsNumber(v) && (v->valuedouble == 0 ||
		    v->valuedouble == 1))
			out[i] = v->valuedouble;
		else {
			model_errf(err, "%s[%zu]: expected 0 or 1", path, i);
			return -1;
		}
		i++;
	}
	return 0;
}

/* Reads the n numbers of tree tj's array key into out. */
static int
xgb_load_array(const cJSON *tj, const char *key, size_t n, double *out,
    const char *path, struct model_err *err)
{
	char p[192];

	snprintf(p, sizeof(p), "%s.%s", path, key);
	if (strcmp(key, "default_left") == 0)
		return xgb_load_flags(xgb_get(tj, key), n, out, p, err);
	return model_json_doubles(xgb_get(tj, key), n, out, p, err);
}

/* Refuses XGBoost's categorical splits: a split_type other than 0, or any
 * categories_nodes. */
static int
xgb_numeric_splits(const cJSON *tj, const char *path, struct model_err *err)
{
	const cJSON *st = xgb_get(tj, "split_type"), *v;

	if (cJSON_GetArraySize(xgb_get(tj, "categories_nodes")) > 0) {
		model_errf(err, "%s.categories_nodes: categorical splits are "
		    "not supported", path);
		return -1;
	}
	if (!cJSON_IsArray(st))
		return 0;
	cJSON_ArrayForEach(v, st)
		if (!cJSON_IsNumber(v) || v->valuedouble != 0) {
			model_errf(err, "%s.split_type: categorical splits are "
			    "not supported", path);
			return -1;
		}
	return 0;
}

/* Reads one tree's node arrays into r (sized for r->n nodes). strict: the
 * object may have no other keys (our format); XGBoost's own trees carry
 * more, which are ignored, but categorical splits are refused. */
static int
xgb_raw_load(const cJSON *tj, struct xgb_raw *r, int strict,
    const char *path, struct model_err *err)
{
	static const char *const keys[] = { "split_indices",
	    "split_conditions", "left_children", "right_children",
	    "default_left", NULL };

	if (strict && model_json_keys(tj, keys, path, err) < 0)
		return -1;
	if (xgb_numeric_splits(tj, path, err) < 0 ||
	    xgb_load_array(tj, "left_children", r->n, r->left, path, err) < 0 ||
	    xgb_load_array(tj, "right_children", r->n, r->right, path,
	    err) < 0 ||
	    xgb_load_array(tj, "split_indices", r->n, r->feat, path, err) < 0 ||
	    xgb_load_array(tj, "split_conditions", r->n, r->cond, path,
	    err) < 0 ||
	    xgb_load_array(tj, "default_left", r->n, r->dleft, path, err) < 0)
		return -1;
	return 0;
}

/* Checks that child, the child of node `from`, is a node not yet reached.
 * Returns its index, or -1 with err set. */
static long
xgb_child(const struct xgb_raw *r, size_t from, double child,
    const char *side, const char *path, struct model_err *err)
{
	if (child != floor(child) || child < 0 || child >= (double)r->n ||
	    r->seen[(size_t)child]) {
		model_errf(err, "%s.%s[%zu]: %g is not a node of this tree "
		    "that no other split leads to", path, side, from, child);
		return -1;
	}
	return (long)child;
}

/* Fills one node from XGBoost's node o; for a split, queues its children
 * at order[*next], order[*next + 1]. */
static int
xgb_node_load(struct xgb_raw *r, size_t o, struct xgb_node *node,
    uint32_t base, size_t *next, size_t n_inputs, const char *path,
    struct model_err *err)
{
	float value = (float)r->cond[o];
	long l, rt;

	if (!isfinite(value)) {
		model_errf(err, "%s.split_conditions[%zu]: %g is not a finite "
		    "float32", path, o, r->cond[o]);
		return -1;
	}
	node->value = value;
	if (r->left[o] == -1) {
		if (r->right[o] != -1) {
			model_errf(err, "%s.right_children[%zu]: a leaf (left "
			    "child -1) needs -1", path, o);
			return -1;
		}
		node->split = XGB_LEAF;
		node->left = 0;
		return 0;
	}
	if (r->feat[o] != floor(r->feat[o]) || r->feat[o] < 0 ||
	    r->feat[o] >= (double)n_inputs) {
		model_errf(err, "%s.split_indices[%zu]: expected a feature "
		    "index below %zu", path, o, n_inputs);
		return -1;
	}
	if ((l = xgb_child(r, o, r->left[o], "left_children", path,
	    err)) < 0)
		return -1;
	r->seen[l] = 1;
	if ((rt = xgb_child(r, o, r->right[o], "right_children", path,
	    err)) < 0)
		return -1;
	r->seen[rt] = 1;
	node->split = (uint32_t)r->feat[o] |
	    (r->dleft[o] != 0 ? XGB_DEFAULT_LEFT : 0);
	node->left = base + (uint32_t)*next;
	r->order[(*next)++] = (uint32_t)l;
	r->order[(*next)++] = (uint32_t)rt;
	return 0;
}

/* Renumbers the nodes reachable from XGBoost's root 0 breadth first into
 * nodes[base...], children adjacent. Each node may be reached once, so
 * every walk from the root ends at a leaf. Returns the nodes written, or
 * 0 with err set. */
static size_t
xgb_tree_flatten(struct xgb_raw *r, struct xgb_node *nodes, uint32_t base,
    size_t n_inputs, const char *path, struct model_err *err)
{
	size_t k, next = 1;

	memset(r->seen, 0, r->n);
	r->order[0] = 0;
	r->seen[0] = 1;
	for (k = 0; k < next; k++)
		if (xgb_node_load(r, r->order[k], &nodes[base + k], base,
		    &next, n_inputs, path, err) < 0)
			return 0;
	return next;
}

/* Counts the nodes of every tree (the lengths of their left_children) and
 * checks tree_info. Returns 0, or -1 with err naming the field. */
static int
xgb_count(const cJSON *trees, const cJSON *info, size_t n_groups,
    const char *path, size_t *n_trees, size_t *n_nodes, size_t *widest,
    struct model_err *err)
{
	const cJSON *t, *g;
	size_t i = 0;
	int n;

	*n_nodes = *widest = 0;
	if (!cJSON_IsArray(trees) || cJSON_GetArraySize(trees) == 0) {
		model_errf(err, "%s.trees: expected a non-empty array", path);
		return -1;
	}
	*n_trees = (size_t)cJSON_GetArraySize(trees);
	cJSON_ArrayForEach(t, trees) {
		n = cJSON_GetArraySize(xgb_get(t, "left_children"));
		if (!cJSON_IsObject(t) || n < 1 ||
		    *n_nodes + (size_t)n > XGB_MAX_NODES) {
			model_errf(err, "%s.trees[%zu]: expected a tree object "
			    "with a non-empty left_children array", path, i);
			return -1;
		}
		*n_nodes += (size_t)n;
		if ((size_t)n > *widest)
			*widest = (size_t)n;
		i++;
	}
	if (!cJSON_IsArray(info) ||
	    (size_t)cJSON_GetArraySize(info) != *n_trees) {
		model_errf(err, "%s.tree_info: expected %zu group numbers, one "
		    "per tree", path, *n_trees);
		return -1;
	}
	i = 0;
	cJSON_ArrayForEach(g, info) {
		if (!cJSON_IsNumber(g) || g->valuedouble < 0 ||
		    g->valuedouble >= (double)n_groups ||
		    g->valuedouble != floor(g->valuedouble)) {
			model_errf(err, "%s.tree_info[%zu]: expected a group "
			    "below %zu", path, i, n_groups);
			return -1;
		}
		i++;
	}
	return 0;
}

static void
xgb_free(void *p)
{
	struct xgb *x = p;

	if (x != NULL)
		free(x->fast);
	free(x);
}

/* Fills the fast walk of tree t (nodes [begin, end)), depth holding room
 * for the depth of each node. Returns 0, or -1 if a split's children are
 * more than UINT16_MAX nodes on or the tree is deeper than that. */
static int
xgb_fast_tree(struct xgb *x, size_t t, size_t begin, size_t end,
    uint16_t *depth)
{
	size_t i;

	x->tsure[t] = UINT16_MAX;
	depth[begin] = 0;
	for (i = begin; i < end; i++) {
		const struct xgb_node *n = &x->nodes[i];

		if (n->split == XGB_LEAF) {
			x->fast[i] = (struct xgb_fnode){ INFINITY, 0, 0 };
			x->leaf[i] = n->value;
			if (depth[i] < x->tsure[t])
				x->tsure[t] = depth[i];
			if (depth[i] > x->tsteps[t])
				x->tsteps[t] = depth[i];
			continue;
		}
		if (depth[i] == UINT16_MAX || n->left - i > UINT16_MAX ||
		    (n->split & XGB_FEATURE) > UINT16_MAX)
			return -1;
		x->fast[i] = (struct xgb_fnode){ nextafterf(n->value,
		    -INFINITY), (uint16_t)(n->split & XGB_FEATURE),
		    (uint16_t)(n->left - i) };
		depth[n->left] = depth[n->left + 1] = (uint16_t)(depth[i] + 1);
	}
	return 0;
}

/* Builds the fast walk of a flattened model; leaves it off (fast NULL) if
 * a tree does not fit it. */
static void
xgb_fast_build(struct xgb *x)
{
	size_t groups = (x->n_trees + XGB_GROUP - 1) / XGB_GROUP, t, g;
	uint16_t *depth = xcalloc(x->n_nodes + 1, sizeof(uint16_t));

	x->fast = xcalloc(1, x->n_nodes * (sizeof(struct xgb_fnode) +
	    sizeof(float)) + 2 * (groups + x->n_trees) * sizeof(uint16_t) + 1);
	x->leaf = (float *)(x->fast + x->n_nodes);
	x->gsure = (uint16_t *)(x->leaf + x->n_nodes);
	x->gsteps = x->gsure + groups;
	x->tsure = x->gsteps + groups;
	x->tsteps = x->tsure + x->n_trees;
	for (g = 0; g < groups; g++)
		x->gsure[g] = UINT16_MAX;
	for (t = 0; t < x->n_trees; t++) {
		size_t end = t + 1 < x->n_trees ? x->roots[t + 1] : x->n_nodes;

		g = t / XGB_GROUP;
		if (xgb_fast_tree(x, t, x->roots[t], end, depth) < 0) {
			free(x->fast);
			x->fast = NULL;
			break;
		}
		if (x->tsteps[t] <= XGB_SHALLOW)
			x->tsure[t] = x->tsteps[t];
		if (x->tsure[t] < x->gsure[g])
			x->gsure[g] = x->tsure[t];
		if (x->tsteps[t] > x->gsteps[g])
			x->gsteps[g] = x->tsteps[t];
	}
	for (g = 0; x->fast != NULL && g < groups; g++)
		if (x->gsteps[g] <= XGB_SHALLOW)
			x->gsure[g] = x->gsteps[g];
	free(depth);
}

/* Builds the flat model from the trees and tree_info members of json
 * (XGBoost's gradient_booster.model, or our estimator), path naming json
 * in errors. Returns it, or NULL with err set. */
static struct xgb *
xgb_build(const cJSON *json, const char *path, size_t n_inputs,
    size_t n_groups, int strict, struct model_err *err)
{
	const cJSON *trees = xgb_get(json, "trees"), *t, *g;
	struct xgb_raw r = { 0 };
	struct xgb *x;
	size_t n_trees, n_nodes, widest, used = 0, i = 0, k;
	char p[128];

	if (xgb_count(trees, xgb_get(json, "tree_info"), n_groups, path,
	    &n_trees, &n_nodes, &widest, err) < 0)
		return NULL;
	x = xcalloc(1, sizeof(*x) + n_nodes * sizeof(struct xgb_node) +
	    2 * n_trees * sizeof(uint32_t));
	x->n_groups = n_groups;
	x->n_trees = n_trees;
	x->roots = (uint32_t *)(x->nodes + n_nodes);
	x->groups = x->roots + n_trees;
	r.cond = xcalloc(widest, sizeof(double));
	r.feat = xcalloc(widest, sizeof(double));
	r.left = xcalloc(widest, sizeof(double));
	r.right = xcalloc(widest, sizeof(double));
	r.dleft = xcalloc(widest, sizeof(double));
	r.order = xcalloc(widest, sizeof(uint32_t));
	r.seen = xcalloc(widest, 1);
	g = xgb_get(json, "tree_info")->child;
	cJSON_ArrayForEach(t, trees) {
		snprintf(p, sizeof(p), "%s.trees[%zu]", path, i);
		r.n = (size_t)cJSON_GetArraySize(xgb_get(t, "left_children"));
		if (xgb_raw_load(t, &r, strict, p, err) < 0 ||
		    (k = xgb_tree_flatten(&r, x->nodes, (uint32_t)used,
		    n_inputs, p, err)) == 0) {
			xgb_raw_free(&r);
			free(x);
			return NULL;
		}
		x->roots[i] = (uint32_t)used;
		x->groups[i] = (uint32_t)g->valuedouble;
		used += k;
		g = g->next;
		i++;
	}
	x->n_nodes = used;
	xgb_raw_free(&r);
	xgb_fast_build(x);
	return x;
}

/* The doubles of per-row work memory: the row in float32, then a
 * margin. */
static size_t
xgb_scratch(size_t n_inputs)
{
	return (n_inputs + 1) / 2 + 1;
}

/* ---- our format: "estimator": {"type": "xgboost", ...} ------------------- */

static void *
xgb_load(const cJSON *json, struct model *m, struct model_err *err)
{
	static const char *const keys[] = { "type", "objective", "base_score",
	    "num_class", "tree_info", "trees", NULL };
	const struct xgb_objective *obj;
	size_t num_class, n_groups;
	float base_score, margin;
	struct xgb *x;

	if (model_json_keys(json, keys, "estimator", err) < 0 ||
	    (obj = xgb_load_objective(xgb_get(json, "objective"),
	    "estimator.objective", err)) == NULL ||
	    xgb_load_float(xgb_get(json, "base_score"),
	    "estimator.base_score", &base_score, err) < 0 ||
	    xgb_load_count(xgb_get(json, "num_class"), "estimator.num_class",
	    XGB_MAX_CLASSES, &num_class, err) < 0 ||
	    xgb_base_margin(obj->link, base_score, "estimator.base_score",
	    &margin, err) < 0)
		return NULL;
	if (obj->classifier != (m->task == MODEL_CLASSIFICATION)) {
		model_errf(err, "estimator.objective: %s needs task \"%s\"",
		    obj->name, obj->classifier ? "classification" :
		    "regression");
		return NULL;
	}
	n_groups = obj->link == XGB_SOFTPROB || obj->link == XGB_SOFTMAX ?
	    num_class : 1;
	if (n_groups == 1 ? num_class > 1 : num_class != m->n_classes) {
		model_errf(err, "estimator.num_class: expected %zu", n_groups ==
		    1 ? (size_t)0 : m->n_classes);
		return NULL;
	}
	if (obj->link == XGB_LOGISTIC && obj->classifier &&
	    m->n_classes != 2) {
		model_errf(err, "classes: binary:logistic needs 2 classes");
		return NULL;
	}
	x = xgb_build(json, "estimator", m->n_inputs, n_groups, 1, err);
	if (x == NULL)
		return NULL;
	x->link = obj->link;
	x->base_margin = margin;
	m->est_scratch = xgb_scratch(m->n_inputs);
	m->est_predict_rows = xgb_predict_rows;
	return x;
}

/* ---- prediction ---------------------------------------------------------- */

/* The leaf of tree t that row in reaches: x < threshold goes left, in
 * float32; a missing value (NaN) follows the default direction. */
static float
xgb_leaf(const struct xgb *x, size_t t, const double *in)
{
	const struct xgb_node *n = &x->nodes[x->roots[t]];

	while (n->split != XGB_LEAF) {
		double v = in[n->split & XGB_FEATURE];
		int right = isnan(v) ? !(n->split & XGB_DEFAULT_LEFT) :
		    !((float)v < n->value);

		n = &x->nodes[n->left + (uint32_t)right];
	}
	return n->value;
}

/* One step of a fast walk at node at for the float row x. */
static inline uint32_t
xgb_step(const struct xgb_fnode *fn, uint32_t at, const float *x)
{
	const struct xgb_fnode *nd = &fn[at];

	return at + nd->delta + (x[nd->feature] > nd->thr);
}

/* Takes the XGB_GROUP fast walks at[k] for the float rows row[k] (one row
 * for several trees, or several rows for one tree), up to steps steps:
 * sure steps, then more until no walk moves (every one is on its leaf). */
static inline void
xgb_walk(const struct xgb_fnode *fn, const float *const *row, uint32_t *at,
    size_t sure, size_t steps)
{
	uint32_t next, moved = 1;
	size_t k, step;

	for (step = 0; step < sure; step++) {
#pragma GCC unroll 8	/* XGB_GROUP */
		for (k = 0; k < XGB_GROUP; k++)
			at[k] = xgb_step(fn, at[k], row[k]);
	}
	for (; step < steps && moved != 0; step++) {
		moved = 0;
#pragma GCC unroll 8	/* XGB_GROUP */
		for (k = 0; k < XGB_GROUP; k++) {
			next = xgb_step(fn, at[k], row[k]);
			moved |= next ^ at[k];
			at[k] = next;
		}
	}
}

/* Walks the XGB_GROUP trees from t (those past n_trees walk tree t again)
 * for the float row xf; leaf[k] gets tree t + k's leaf value. */
static void
xgb_fast_group(const struct xgb *x, size_t t, const float *xf, float *leaf)
{
	const float *row[XGB_GROUP];
	uint32_t at[XGB_GROUP];
	size_t k;

	for (k = 0; k < XGB_GROUP; k++) {
		row[k] = xf;
		at[k] = x->roots[t + k < x->n_trees ? t + k : t];
	}
	xgb_walk(x->fast, row, at, x->gsure[t / XGB_GROUP],
	    x->gsteps[t / XGB_GROUP]);
	for (k = 0; k < XGB_GROUP; k++)
		leaf[k] = x->leaf[at[k]];
}

/* Walks tree t for the n float rows xf, xf + xf_stride, ..., XGB_GROUP
 * at a time, and adds each one's leaf value to its margins at acc +
 * i * acc_stride. */
static void
xgb_fast_rows(const struct xgb *x, size_t t, const float *xf,
    size_t xf_stride, double *acc, size_t acc_stride, size_t n)
{
	const float *row[XGB_GROUP];
	uint32_t at[XGB_GROUP];
	size_t i, k;

	acc += x->groups[t];
	for (i = 0; i < n; i += XGB_GROUP) {
		for (k = 0; k < XGB_GROUP; k++) {
			row[k] = xf + (i + k < n ? i + k : i) * xf_stride;
			at[k] = x->roots[t];
		}
		xgb_walk(x->fast, row, at, x->tsure[t], x->tsteps[t]);
		for (k = 0; k < XGB_GROUP && i + k < n; k++) {
			/* In float32, as XGBoost sums. */
			float s = (float)acc[(i + k) * acc_stride];

			s += x->leaf[at[k]];
			acc[(i + k) * acc_stride] = s;
		}
	}
}

/* Converts row in (n values) to float into xf. Returns 0, or -1 if a value
 * is missing (NaN). */
static int
xgb_float_row(const double *in, size_t n, float *xf)
{
	size_t k;
	int nan = 0;

	for (k = 0; k < n; k++) {
		xf[k] = (float)in[k];
		nan |= isnan(in[k]);
	}
	return nan ? -1 : 0;
}

/* XGBoost's float32 sigmoid, with its clamp of exp's argument. */
static float
xgb_sigmoid(float margin)
{
	float z = fminf(-margin, 88.7f);

	return 1.0f / (expf(z) + 1.0f + 1e-16f);
}

/* Index of the first largest of v[0..n). */
static size_t
xgb_argmax(const double *v, size_t n)
{
	size_t k, best = 0;

	for (k = 1; k < n; k++)
		if (v[k] > v[best])
			best = k;
	return best;
}

/* A row's work memory (out->work): the float row, then one double. */
#define XGB_WORK_ONE(m)		(((m)->n_inputs + 1) / 2)

/* Returns where a row's margins add up (floats held in doubles): the
 * probabilities' place with several groups, else the double in its work
 * memory. */
static inline double *
xgb_acc(const struct xgb *x, const struct model *m,
    const struct prediction *out)
{
	return x->n_groups > 1 ? out->proba : out->work + XGB_WORK_ONE(m);
}

/* Sets a row's margins to the base margin; returns them. */
static double *
xgb_start(const struct xgb *x, const struct model *m, struct prediction *out)
{
	double *acc = xgb_acc(x, m, out);
	size_t k;

	for (k = 0; k < x->n_groups; k++)
		acc[k] = x->base_margin;
	return acc;
}

/* Adds tree t's leaf value to its group's margin, in float32 as XGBoost
 * sums. */
static inline void
xgb_add(const struct xgb *x, double *acc, size_t t, float leaf)
{
	float s = (float)acc[x->groups[t]];

	s += leaf;
	acc[x->groups[t]] = s;
}

/* Softmax of the margins in p as XGBoost's: float max and exponentials, a
 * double sum, float division. */
static void
xgb_finish_multi(const struct xgb *x, double *p, struct prediction *out)
{
	double wsum = 0;
	float wmax;
	size_t k;

	if (x->link == XGB_SOFTMAX)
		out->class_index = xgb_argmax(p, x->n_groups);
	wmax = (float)p[0];
	for (k = 1; k < x->n_groups; k++)
		wmax = fmaxf((float)p[k], wmax);
	for (k = 0; k < x->n_groups; k++) {
		float e = expf((float)p[k] - wmax);

		p[k] = e;
		wsum += e;
	}
	for (k = 0; k < x->n_groups; k++)
		p[k] = (float)p[k] / (float)wsum;
	if (x->link == XGB_SOFTPROB)
		out->class_index = xgb_argmax(p, x->n_groups);
}

/* Turns the summed margins in acc into the prediction. */
static void
xgb_finish(const struct xgb *x, const struct model *m, double *acc,
    struct prediction *out)
{
	float s = (float)acc[0], p;

	if (x->n_groups > 1) {
		xgb_finish_multi(x, acc, out);
		return;
	}
	if (x->link == XGB_IDENTITY) {
		out->value = s;
		return;
	}
	if (x->link == XGB_EXP) {
		out->value = expf(s);
		return;
	}
	p = xgb_sigmoid(s);
	if (m->task == MODEL_REGRESSION) {
		out->value = p;
		return;
	}
	/* As XGBClassifier: [1 - p, p] in float32, class 1 iff p > 0.5. */
	out->proba[0] = 1.0f - p;
	out->proba[1] = p;
	out->class_index = p > 0.5f;
}

static void
xgb_predict(const void *est, const struct model *m, const double *in,
    struct prediction *out)
{
	const struct xgb *x = est;
	float *xf = (float *)out->work, leaf[XGB_GROUP];
	double *acc = xgb_start(x, m, out);
	size_t t, k;

	if (x->fast == NULL || xgb_float_row(in, m->n_inputs, xf) < 0)
		for (t = 0; t < x->n_trees; t++)
			xgb_add(x, acc, t, xgb_leaf(x, t, in));
	else
		for (t = 0; t < x->n_trees; t += XGB_GROUP) {
			xgb_fast_group(x, t, xf, leaf);
			for (k = 0; k < XGB_GROUP && t + k < x->n_trees; k++)
				xgb_add(x, acc, t + k, leaf[k]);
		}
	xgb_finish(x, m, acc, out);
}

/* Predicts the n rows of a block tree by tree: each tree's nodes are
 * fetched once for the whole block. The rows with a missing value are
 * walked too (where NaN leads does not matter) and then predicted again
 * by xgb_predict(). out is laid out as model_predict_rows() does: each
 * part of a row follows the same part of the row before. */
static void
xgb_block(const struct xgb *x, const struct model *m, const double *in,
    size_t stride, size_t n, struct prediction *out)
{
	size_t i, t, acc_stride = x->n_groups > 1 ? m->n_classes :
	    m->est_scratch;

	for (i = 0; i < n; i++) {
		xgb_float_row(in + i * stride, m->n_inputs, (float *)out[i].work);
		xgb_start(x, m, &out[i]);
	}
	for (t = 0; t < x->n_trees; t++)
		xgb_fast_rows(x, t, (const float *)out[0].work,
		    2 * m->est_scratch, xgb_acc(x, m, &out[0]), acc_stride, n);
	for (i = 0; i < n; i++) {
		if (model_has_nan(in + i * stride, m->n_inputs))
			xgb_predict(x, m, in + i * stride, &out[i]);
		else
			xgb_finish(x, m, xgb_acc(x, m, &out[i]), &out[i]);
	}
}

static void
xgb_predict_rows(const void *est, const struct model *m, const double *in,
    size_t stride, size_t n, struct prediction *out)
{
	const struct xgb *x = est;
	size_t b, i;

	if (x->fast == NULL) {
		for (i = 0; i < n; i++)
			xgb_predict(x, m, in + i * stride, &out[i]);
		return;
	}
	for (b = 0; b < n; b += XGB_BLOCK)
		xgb_block(x, m, in + b * stride, stride,
		    n - b < XGB_BLOCK ? n - b : XGB_BLOCK, out + b);
}

const struct estimator_ops model_xgboost_ops = {
	"xgboost", xgb_load, xgb_predict, xgb_free
};

/* ---- XGBoost's own JSON model file --------------------------------------- */

/* Replaces characters outside [A-Za-z0-9_.-] by '_' in s. */
static void
xgb_sanitise(char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' ||
		    *s == '-'))
			*s = '_';
}

/* The model name: origin's file name without ".json", sanitised, at most
 * 64 characters; "xgboost" if nothing is left. */
static char *
xgb_name(const char *origin)
{
	const char *base = strrchr(origin, '/');
	char *name;
	size_t len;

	base = base != NULL ? base + 1 : origin;
	len = strlen(base);
	if (len > 5 && strcmp(base + len - 5, ".json") == 0)
		len -= 5;
	if (len == 0)
		return xstrdup("xgboost");
	name = xstrndup(base, len > 64 ? 64 : len);
	xgb_sanitise(name);
	return name;
}

/* The version: learner.attributes.version if set, else "1". */
static int
xgb_version(const cJSON *learner, struct model *m, struct model_err *err)
{
	const cJSON *v = xgb_get(xgb_get(learner, "attributes"), "version");
	const char *s;
	size_t n;

	if (v == NULL) {
		m->version = xstrdup("1");
		return 0;
	}
	s = cJSON_IsString(v) ? v->valuestring : "";
	n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_.+-");
	if (n == 0 || n > 64 || s[n] != '\0') {
		model_errf(err, "learner.attributes.version: expected 1-64 "
		    "characters of [A-Za-z0-9_.+-]");
		return -1;
	}
	m->version = xstrdup(s);
	return 0;
}

/* The schema: n nullable number features named by learner.feature_names
 * (sanitised) or f0..fN-1. Categorical features are refused. */
static int
xgb_features(const cJSON *learner, struct model *m, size_t n,
    struct model_err *err)
{
	const cJSON *names = xgb_get(learner, "feature_names");
	const cJSON *types = xgb_get(learner, "feature_types");
	const cJSON *v;
	size_t i, dup, n_name;
	char buf[32];

	if (cJSON_GetArraySize(names) > 0 &&
	    (size_t)cJSON_GetArraySize(names) != n) {
		model_errf(err, "learner.feature_names: expected %zu names", n);
		return -1;
	}
	i = 0;
	cJSON_ArrayForEach(v, (cJSON_IsArray(types) ? types : NULL)) {
		if (cJSON_IsString(v) && strcmp(v->valuestring, "c") == 0) {
			model_errf(err, "learner.feature_types[%zu]: "
			    "categorical features are not supported", i);
			return -1;
		}
		i++;
	}
	m->schema.features = xcalloc(n, sizeof(struct feature));
	m->schema.n = n;
	v = cJSON_GetArraySize(names) > 0 ? names->child : NULL;
	for (i = 0; i < n; i++, v = v != NULL ? v->next : NULL) {
		struct feature *f = &m->schema.features[i];

		snprintf(buf, sizeof(buf), "f%zu", i);
		if (v != NULL && (!cJSON_IsString(v) ||
		    v->valuestring[0] == '\0')) {
			model_errf(err, "learner.feature_names[%zu]: expected "
			    "a non-empty string", i);
			return -1;
		}
		if (v != NULL) {
			n_name = strlen(v->valuestring);
			f->name = xstrndup(v->valuestring,
			    n_name < 128 ? n_name : 128);
		} else
			f->name = xstrdup(buf);
		xgb_sanitise(f->name);
		f->name_len = strlen(f->name);
		f->type = FEATURE_NUMBER;
		f->nullable = 1;
		f->required = 1;
	}
	if (schema_index(&m->schema, &dup) < 0) {
		model_errf(err, "learner.feature_names[%zu]: \"%s\" is used "
		    "twice (after replacing characters outside "
		    "[A-Za-z0-9_.-] by _)", dup, m->schema.features[dup].name);
		return -1;
	}
	return 0;
}

/* Classes 0..n-1, labelled by their numbers. */
static void
xgb_classes(struct model *m, size_t n)
{
	char buf[32];
	size_t k;

	m->n_classes = n;
	m->class_json = xcalloc(n, sizeof(char *));
	m->class_names = xcalloc(n, sizeof(char *));
	for (k = 0; k < n; k++) {
		snprintf(buf, sizeof(buf), "%zu", k);
		m->class_json[k] = xstrdup(buf);
		m->class_names[k] = xstrdup(buf);
	}
}

/* Checks root.version: XGBoost 1.x or 2.x wrote the file. */
static int
xgb_check_version(const cJSON *root, int *major, int *minor,
    struct model_err *err)
{
	const cJSON *v = xgb_get(root, "version");

	/* Both in range before they become ints (a minor of 1e11 would not
	 * fit one). */
	if (!cJSON_IsArray(v) || !cJSON_IsNumber(v->child) ||
	    !cJSON_IsNumber(v->child->next) ||
	    !(v->child->valuedouble >= 1 && v->child->valuedouble <= 2) ||
	    !(v->child->next->valuedouble >= 0 &&
	    v->child->next->valuedouble <= 1000)) {
		model_errf(err, "version: expected [major, minor, patch] of "
		    "XGBoost 1.x or 2.x");
		return -1;
	}
	*major = (int)v->child->valuedouble;
	*minor = (int)v->child->next->valuedouble;
	return 0;
}

/* The booster: gbtree, one output per class (num_target 1). */
static const cJSON *
xgb_gbtree(const cJSON *learner, const cJSON *param, struct model_err *err)
{
	const cJSON *gb = xgb_get(learner, "gradient_booster");
	const cJSON *name = xgb_get(gb, "name");
	const cJSON *target = xgb_get(param, "num_target");
	size_t n_target = 1;

	if (!cJSON_IsString(name) ||
	    strcmp(name->valuestring, "gbtree") != 0) {
		model_errf(err, "learner.gradient_booster.name: only "
		    "\"gbtree\" boosters are supported, not \"%.32s\"",
		    cJSON_IsString(name) ? name->valuestring : "");
		return NULL;
	}
	if (target != NULL && (xgb_load_count(target,
	    "learner.learner_model_param.num_target", 1000000, &n_target,
	    err) < 0 || n_target != 1)) {
		model_errf(err, "learner.learner_model_param.num_target: only "
		    "single-target models are supported");
		return NULL;
	}
	if (!cJSON_IsObject(xgb_get(gb, "model"))) {
		model_errf(err, "learner.gradient_booster.model: expected an "
		    "object");
		return NULL;
	}
	return xgb_get(gb, "model");
}

/* Reads the objective, base margin and shape of learner: task, classes
 * and groups. */
static int
xgb_header(const cJSON *learner, const cJSON *param, struct model *m,
    const struct xgb_objective **obj, float *margin, size_t *n_groups,
    size_t *n_features, struct model_err *err)
{
	float base_score;
	size_t num_class;

	if ((*obj = xgb_load_objective(xgb_get(xgb_get(learner, "objective"),
	    "name"), "learner.objective.name", err)) == NULL ||
	    xgb_load_float(xgb_get(param, "base_score"),
	    "learner.learner_model_param.base_score", &base_score, err) < 0 ||
	    xgb_base_margin((*obj)->link, base_score,
	    "learner.learner_model_param.base_score", margin, err) < 0 ||
	    xgb_load_count(xgb_get(param, "num_class"),
	    "learner.learner_model_param.num_class", XGB_MAX_CLASSES,
	    &num_class, err) < 0 ||
	    xgb_load_count(xgb_get(param, "num_feature"),
	    "learner.learner_model_param.num_feature", XGB_MAX_FEATURES,
	    n_features, err) < 0)
		return -1;
	if (*n_features == 0) {
		model_errf(err, "learner.learner_model_param.num_feature: "
		    "expected at least 1");
		return -1;
	}
	m->task = (*obj)->classifier ? MODEL_CLASSIFICATION : MODEL_REGRESSION;
	*n_groups = 1;
	if ((*obj)->link == XGB_SOFTPROB || (*obj)->link == XGB_SOFTMAX) {
		if (num_class < 2) {
			model_errf(err, "learner.learner_model_param.num_class:"
			    " %s needs at least 2", (*obj)->name);
			return -1;
		}
		*n_groups = num_class;
		xgb_classes(m, num_class);
	} else if (num_class > 1) {
		model_errf(err, "learner.learner_model_param.num_class: %s "
		    "has one output, not %zu", (*obj)->name, num_class);
		return -1;
	} else if ((*obj)->classifier)
		xgb_classes(m, 2);
	return 0;
}

int
model_xgboost_build(const cJSON *root, struct model *m, const char *origin,
    struct model_err *err)
{
	const cJSON *learner = xgb_get(root, "learner");
	const cJSON *param = xgb_get(learner, "learner_model_param");
	const cJSON *booster;
	const struct xgb_objective *obj;
	size_t n_groups, n_features;
	struct xgb *x;
	float margin;
	int major, minor;
	char desc[160];

	if (xgb_check_version(root, &major, &minor, err) < 0)
		return -1;
	if (!cJSON_IsObject(learner) || !cJSON_IsObject(param)) {
		model_errf(err, "learner.learner_model_param: expected an "
		    "object");
		return -1;
	}
	m->name = xgb_name(origin);
	if (xgb_version(learner, m, err) < 0 ||
	    xgb_header(learner, param, m, &obj, &margin, &n_groups,
	    &n_features, err) < 0 ||
	    (booster = xgb_gbtree(learner, param, err)) == NULL ||
	    xgb_features(learner, m, n_features, err) < 0 ||
	    prep_load(&m->prep, NULL, n_features, err) < 0)
		return -1;
	m->n_inputs = n_features;
	m->has_proba = m->task == MODEL_CLASSIFICATION;
	m->n_scores = 0;
	x = xgb_build(booster, "learner.gradient_booster.model", n_features,
	    n_groups, 0, err);
	if (x == NULL)
		return -1;
	x->link = obj->link;
	x->base_margin = margin;
	m->est_scratch = xgb_scratch(n_features);
	m->est_predict_rows = xgb_predict_rows;
	m->est = x;
	m->est_ops = &model_xgboost_ops;
	snprintf(desc, sizeof(desc), "XGBoost %d.%d model: %s, %zu trees",
	    major, minor, obj->name, x->n_trees);
	m->description = xstrdup(desc);
	m->test_input = xcalloc(n_features, sizeof(double));
	return 0;
}
