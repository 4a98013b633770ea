/* model_tree: decision trees and tree ensembles ("tree_ensemble"): forests
 * that average per-tree leaf values, and boosted trees that add raw scores
 * and apply a link, computed as scikit-learn computes them. */
#include "model.h"
#include "xalloc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define TREE_AVX2 1
#include <immintrin.h>
#else
#define TREE_AVX2 0
#endif

/* Largest category code a categorical split or known set may hold. */
#define TREE_MAX_CODE 65535
/* Most nodes, and most leaf values, in one ensemble (indices are 32 bits). */
#define TREE_MAX_INDEX ((size_t)UINT32_MAX - 1)
/* off of a struct tree_set that is absent. */
#define TREE_NO_SET UINT32_MAX

enum tree_agg {
	AGG_MEAN,		/* average of the trees' leaf vectors */
	AGG_SUM			/* base + learning_rate * sum, then a link */
};

enum tree_link {
	LINK_IDENTITY,		/* regression */
	LINK_LOGISTIC,		/* one score, two classes */
	LINK_SOFTMAX,		/* exp(s - max) / sum */
	LINK_LOGSUMEXP		/* exp(s - logsumexp(s)) */
};

enum tree_kind {
	NODE_LEAF,
	NODE_NUMERIC,
	NODE_CATEGORICAL
};

/* A set of category codes: n bitset words from the ensemble's pool. */
struct tree_set {
	uint32_t	off;		/* first word, or TREE_NO_SET */
	uint32_t	n;		/* codes >= 32 * n are not members */
};

struct tree_node {
	union {
		double		threshold;	/* numeric: left iff x <= it */
		struct tree_set	left_set;	/* categorical: codes going left */
	} u;
	uint32_t	feature;	/* input index */
	uint32_t	left;		/* node index; a leaf: its values' offset */
	uint32_t	right;		/* node index */
	uint8_t		kind;		/* enum tree_kind */
	uint8_t		missing_left;	/* NaN (and unknown categories) go left */
};

/* A node of the fast walk (float32 ensembles of numeric splits, rows
 * without a missing value): right iff x > thr in float32, where thr is the
 * split's double threshold rounded down to a float, which for a float32 x
 * is the same test as (double)x <= threshold. The children of node i are
 * i + delta and i + delta + 1. A leaf is its own child (delta 0, thr +inf,
 * feature 0), so a walk may take more steps than its depth and stay on
 * its leaf; its values' offset is in the ensemble's fleaf[i]. Eight bytes,
 * so that more of a tree stays in the caches. */
struct tree_fnode {
	float		thr;
	uint16_t	feature;
	uint16_t	delta;
};

/* A split of a complete tree (see struct tree_ensemble's cnodes): right
 * iff x > thr, as struct tree_fnode. */
struct tree_cnode {
	float		thr;
	uint32_t	feature;
};

/* Walks taken together, each step one node of each, so that several
 * memory loads are in flight: trees for one row (model_predict()), rows
 * for one tree (model_predict_rows()). */
#define TREE_GROUP 16	/* against 8: up to 1.8 x on fully grown forests */
#define TREE_ROWS 8
/* The walks in flight through a deep tree (model_predict_rows()): two
 * sets of TREE_ROWS rows, so that more loads overlap. Against 8, a
 * regressor's fully grown trees (6,000 nodes, in L2 rather than L1) go
 * about 20 % faster, a classifier's (2,500 nodes) about 10 %; 32 is
 * slower again. */
#define TREE_DEEP_WALKS 16
/* So that a group of walks through a deep tree does not wait for its
 * deepest one, each group takes TREE_FIRST steps (levels) only; the walks
 * not yet on their leaf are then gathered, from every group of the
 * block, into new groups, which take TREE_MORE steps more; those still
 * not on their leaf, gathered again, go on to their leaves. On RF-100,
 * whose paths are 13.5 deep on average, a group of 16 waits for a walk
 * 21 deep; this takes about 13 steps per walk, and predicts 20-30 % more
 * rows per second (bench/RESULTS.md). One row's walks through many trees
 * go the same way (tree_deep_row()). */
#define TREE_FIRST 13
#define TREE_MORE 4
/* Trees one row's walks take in passes together (model_predict()). */
#define TREE_CHUNK 256
/* One row's walks in passes take TREE_GROUP trees as a group of
 * TREE_DEEP_WALKS walks, and TREE_CHUNK whole groups. */
_Static_assert(TREE_GROUP == TREE_DEEP_WALKS &&
    TREE_CHUNK % TREE_GROUP == 0, "tree_deep_row()'s groups");
/* Levels of a tree the vector walk decides for eight rows at once. */
#define TREE_CAP 3
/* Rows that tree_predict_rows() walks through one tree before the next. */
#define TREE_BLOCK 4096
/* Trees at most this deep are walked their full depth, without checking
 * whether every walk has already reached its leaf. */
#define TREE_SHALLOW 8

struct tree_ensemble {
	enum tree_agg	 agg;
	enum tree_link	 link;
	int		 f32;		/* round x to float32 before comparing */
	size_t		 width;		/* values per leaf: n_out (mean) or 1 */
	size_t		 n_out;		/* outputs (mean) or raw scores (sum) */
	size_t		 n_trees;
	double		 learning_rate;
	/* Views into block, the ensemble's one allocation: */
	double		*base;		/* n_out initial scores (sum) */
	double		*values;	/* leaf values, width per leaf */
	struct tree_node *nodes;	/* every tree's nodes, roots first */
	struct tree_set	*known;		/* per input, or NULL: codes seen */
	uint32_t	*roots;		/* n_trees root node indices */
	uint32_t	*outputs;	/* n_trees: the score a tree adds to */
	uint32_t	*words;		/* category bitsets */
	void		*block;
	/* The fast walk, or NULL (categorical splits, or float64 input): */
	struct tree_fnode *fnodes;	/* every tree breadth first */
	uint32_t	*fleaf;		/* per node: a leaf's values' offset */
	uint32_t	*froots;	/* n_trees root indices into fnodes */
	/* Steps every walk needs (the least leaf depth) and may need (the
	 * depth): per TREE_GROUP trees, and per tree. */
	uint16_t	*gsure, *gsteps;
	uint16_t	*tsure, *tsteps;
	/* The fast walk's trees again as complete trees, when none is deeper
	 * than TREE_SHALLOW (else NULL): tree t of depth d = tsteps[t] has
	 * 2^d - 1 splits at cnodes + coff[t], node i's children at 2i + 1
	 * (left) and 2i + 2, and 2^d leaves (their values' offsets) at
	 * cleaf + loff[t]: a walk is d steps i = 2i + 1 + (x > thr), and
	 * ends on leaf i - (2^d - 1). A leaf less deep than d is pushed down
	 * under splits that always go left (thr +inf). */
	struct tree_cnode *cnodes;
	uint32_t	*cleaf, *coff, *loff;
	/* Otherwise (deeper trees), the first TREE_CAP levels of each fast
	 * walk as a complete tree, for the vector walk: tree t's splits at
	 * tops + t * (2^TREE_CAP - 1) (a leaf pushed down as in cnodes),
	 * and at texit + t * 2^TREE_CAP the fast-walk node each of its
	 * 2^TREE_CAP ends leads to (a leaf reached earlier: that leaf). */
	struct tree_cnode *tops;
	uint32_t	*texit;
};

/* Sizes of the arrays, counted before the one allocation. */
struct tree_sizes {
	size_t	nodes, values, words, max_nodes, known;
};

/* Scratch space for reading one tree's arrays. */
struct tree_scratch {
	long	*feature, *left, *right, *missing;
	double	*threshold, *value;
};

static void	tree_predict_rows(const void *, const struct model *,
		    const double *, size_t, size_t, struct prediction *);

static const char *const tree_keys[] = { "type", "aggregation", "input_dtype",
	"n_outputs", "link", "base", "learning_rate", "known_categories",
	"trees", NULL };
static const char *const tree_tree_keys[] = { "feature", "threshold", "left",
	"right", "value", "missing_left", "categories", "output", NULL };
static const char *const tree_known_keys[] = { "feature", "codes", NULL };

static void
tree_free(void *p)
{
	struct tree_ensemble *e = p;

	if (e == NULL)
		return;
	free(e->block);
	free(e->fnodes);
	free(e->cnodes);
	free(e->tops);
	free(e);
}

/* ------------------------------------------------------------ JSON helpers */

/* Sets *out and returns 0 if v is an integer in [lo, hi], else -1. */
static int
tree_int(const cJSON *v, long lo, long hi, long *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return -1;
	d = v->valuedouble;
	if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
		return -1;
	*out = (long)d;
	return 0;
}

/* Reads exactly n integers in [lo, hi] from arr into out. */
static int
tree_ints(const cJSON *arr, size_t n, long lo, long hi, long *out,
    const char *path, struct model_err *err)
{
	const cJSON *v;
	size_t i = 0;

	if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n) {
		model_errf(err, "%s: expected an array of %zu integers", path, n);
		return -1;
	}
	cJSON_ArrayForEach(v, arr) {
		if (tree_int(v, lo, hi, &out[i]) < 0) {
			model_errf(err, "%s[%zu]: expected an integer from %ld to "
			    "%ld", path, i, lo, hi);
			return -1;
		}
		i++;
	}
	return 0;
}

/* Returns the bitset words that a list of codes checked by
 * tree_codes_check() needs. */
static size_t
tree_codes_words(const cJSON *arr)
{
	const cJSON *v;
	size_t words = 0;

	cJSON_ArrayForEach(v, arr)
		if ((size_t)v->valuedouble / 32 + 1 > words)
			words = (size_t)v->valuedouble / 32 + 1;
	return words;
}

/* Checks that arr is a list of category codes (0 to TREE_MAX_CODE). */
static int
tree_codes_check(const cJSON *arr, const char *path, struct model_err *err)
{
	const cJSON *v;
	long code;
	size_t i = 0;

	if (!cJSON_IsArray(arr)) {
		model_errf(err, "%s: expected an array of category codes", path);
		return -1;
	}
	cJSON_ArrayForEach(v, arr) {
		if (tree_int(v, 0, TREE_MAX_CODE, &code) < 0) {
			model_errf(err, "%s[%zu]: expected a category code from 0 "
			    "to %d", path, i, TREE_MAX_CODE);
			return -1;
		}
		i++;
	}
	return 0;
}

/* Returns the set of a checked list of codes, its words taken from the
 * pool at *next (which advances past them). */
static struct tree_set
tree_codes_fill(struct tree_ensemble *e, const cJSON *arr, size_t *next)
{
	struct tree_set s = { (uint32_t)*next, (uint32_t)tree_codes_words(arr) };
	const cJSON *v;

	cJSON_ArrayForEach(v, arr) {
		uint32_t c = (uint32_t)v->valuedouble;

		e->words[s.off + c / 32] |= UINT32_C(1) << (c % 32);
	}
	*next += s.n;
	return s;
}

static int
tree_has(const struct tree_ensemble *e, struct tree_set s, uint32_t c)
{
	return c / 32 < s.n && (e->words[s.off + c / 32] >> (c % 32)) & 1;
}

/* ------------------------------------------------------------ measuring */

/* Counts one tree's nodes, leaves and bitset words into sz, checking what
 * the sizes depend on: the arrays' lengths and the category codes. */
static int
tree_measure_one(const cJSON *t, size_t width, struct tree_sizes *sz,
    const char *path, struct model_err *err)
{
	const cJSON *feature = cJSON_GetObjectItemCaseSensitive(t, "feature");
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(t, "value");
	const cJSON *cats = cJSON_GetObjectItemCaseSensitive(t, "categories");
	const cJSON *v;
	char sub[96];
	size_t n, i = 0;

	if (model_json_keys(t, tree_tree_keys, path, err) < 0)
		return -1;
	if (!cJSON_IsArray(feature) || cJSON_GetArraySize(feature) < 1) {
		model_errf(err, "%s.feature: expected a non-empty array", path);
		return -1;
	}
	n = (size_t)cJSON_GetArraySize(feature);
	if (!cJSON_IsArray(value) ||
	    (size_t)cJSON_GetArraySize(value) != n * width) {
		model_errf(err, "%s.value: expected an array of %zu numbers "
		    "(%zu per node)", path, n * width, width);
		return -1;
	}
	cJSON_ArrayForEach(v, feature)
		if (cJSON_IsNumber(v) && v->valuedouble == -1)
			sz->values += width;
	sz->nodes += n;
	if (n > sz->max_nodes)
		sz->max_nodes = n;
	if (cats == NULL)
		return 0;
	if (!cJSON_IsArray(cats) || (size_t)cJSON_GetArraySize(cats) != n) {
		model_errf(err, "%s.categories: expected an array of %zu "
		    "entries (null or codes)", path, n);
		return -1;
	}
	cJSON_ArrayForEach(v, cats) {
		snprintf(sub, sizeof(sub), "%s.categories[%zu]", path, i++);
		if (cJSON_IsNull(v))
			continue;
		if (tree_codes_check(v, sub, err) < 0)
			return -1;
		sz->words += tree_codes_words(v);
	}
	return 0;
}

static int
tree_measure_known(const cJSON *known, size_t n_inputs, struct tree_sizes *sz,
    struct model_err *err)
{
	const cJSON *k, *codes;
	char path[80];
	size_t i = 0;

	if (known == NULL)
		return 0;
	if (!cJSON_IsArray(known)) {
		model_errf(err, "estimator.known_categories: expected an array");
		return -1;
	}
	cJSON_ArrayForEach(k, known) {
		snprintf(path, sizeof(path), "estimator.known_categories[%zu]",
		    i++);
		if (model_json_keys(k, tree_known_keys, path, err) < 0)
			return -1;
		strcat(path, ".codes");
		codes = cJSON_GetObjectItemCaseSensitive(k, "codes");
		if (tree_codes_check(codes, path, err) < 0)
			return -1;
		sz->words += tree_codes_words(codes);
	}
	sz->known = n_inputs;
	return 0;
}

static int
tree_measure(const cJSON *trees, const cJSON *known, size_t n_inputs,
    size_t width, struct tree_sizes *sz, struct model_err *err)
{
	const cJSON *t;
	char path[48];
	size_t i = 0;

	memset(sz, 0, sizeof(*sz));
	cJSON_ArrayForEach(t, trees) {
		snprintf(path, sizeof(path), "estimator.trees[%zu]", i++);
		if (tree_measure_one(t, width, sz, path, err) < 0)
			return -1;
	}
	if (sz->nodes > TREE_MAX_INDEX || sz->values > TREE_MAX_INDEX ||
	    sz->words > TREE_MAX_INDEX) {
		model_errf(err, "estimator.trees: more than %zu nodes, leaf "
		    "values or category words", TREE_MAX_INDEX);
		return -1;
	}
	return tree_measure_known(known, n_inputs, sz, err);
}

/* Makes the one allocation and points the arrays into it. */
static void
tree_alloc(struct tree_ensemble *e, const struct tree_sizes *sz)
{
	size_t doubles = e->n_out + sz->values;
	size_t bytes = doubles * sizeof(double) +
	    sz->nodes * sizeof(struct tree_node) +
	    sz->known * sizeof(struct tree_set) +
	    (2 * e->n_trees + sz->words) * sizeof(uint32_t);
	char *p = xcalloc(1, bytes > 0 ? bytes : 1);

	e->block = p;
	e->base = (double *)p;
	e->values = e->base + e->n_out;
	p += doubles * sizeof(double);
	e->nodes = (struct tree_node *)p;
	p += sz->nodes * sizeof(struct tree_node);
	e->known = sz->known > 0 ? (struct tree_set *)p : NULL;
	p += sz->known * sizeof(struct tree_set);
	e->roots = (uint32_t *)p;
	e->outputs = e->roots + e->n_trees;
	e->words = e->outputs + e->n_trees;
}

/* ------------------------------------------------------------ filling */

/* Returns the member called name of tree t, writing its path into sub. */
static const cJSON *
tree_field(const cJSON *t, const char *name, const char *path, char *sub,
    size_t sublen)
{
	snprintf(sub, sublen, "%s.%s", path, name);
	return cJSON_GetObjectItemCaseSensitive(t, name);
}

/* Reads the arrays of a tree of n nodes into sc. */
static int
tree_read_arrays(const cJSON *t, size_t n, size_t width, size_t n_inputs,
    struct tree_scratch *sc, const char *path, struct model_err *err)
{
	char sub[96];
	size_t j;

	if (tree_ints(tree_field(t, "feature", path, sub, sizeof(sub)), n, -1,
	    (long)n_inputs - 1, sc->feature, sub, err) < 0 ||
	    tree_ints(tree_field(t, "left", path, sub, sizeof(sub)), n, -1,
	    (long)n - 1, sc->left, sub, err) < 0 ||
	    tree_ints(tree_field(t, "right", path, sub, sizeof(sub)), n, -1,
	    (long)n - 1, sc->right, sub, err) < 0 ||
	    model_json_doubles(tree_field(t, "threshold", path, sub,
	    sizeof(sub)), n, sc->threshold, sub, err) < 0 ||
	    model_json_doubles(tree_field(t, "value", path, sub, sizeof(sub)),
	    n * width, sc->value, sub, err) < 0)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(t, "missing_left") == NULL) {
		for (j = 0; j < n; j++)
			sc->missing[j] = 0;
		return 0;
	}
	return tree_ints(tree_field(t, "missing_left", path, sub, sizeof(sub)),
	    n, 0, 1, sc->missing, sub, err);
}

/* Checks node j's children: later nodes of the tree for an internal node
 * (so every path ends), -1 for a leaf. */
static int
tree_check_children(const struct tree_scratch *sc, size_t j,
    const char *path, struct model_err *err)
{
	long l = sc->left[j], r = sc->right[j];

	if (sc->feature[j] < 0) {
		if (l == -1 && r == -1)
			return 0;
		model_errf(err, "%s.%s[%zu]: a leaf (feature -1) has no "
		    "children: expected -1", path, l != -1 ? "left" : "right", j);
		return -1;
	}
	if (l > (long)j && r > (long)j)
		return 0;
	model_errf(err, "%s.%s[%zu]: a child must come after its parent "
	    "node", path, l > (long)j ? "right" : "left", j);
	return -1;
}

/* Builds one tree from t (measured by tree_measure_one()): its nodes,
 * leaf values and bitsets go at ofs[0], ofs[1] and ofs[2] of e->nodes,
 * e->values and e->words, and ofs advances past them. */
static int
tree_fill_one(struct tree_ensemble *e, const cJSON *t, size_t n_inputs,
    struct tree_scratch *sc, size_t ofs[3], const char *path,
    struct model_err *err)
{
	const cJSON *cats = cJSON_GetObjectItemCaseSensitive(t, "categories");
	const cJSON *cat = cats != NULL ? cats->child : NULL;
	size_t n = (size_t)cJSON_GetArraySize(
	    cJSON_GetObjectItemCaseSensitive(t, "feature"));
	size_t j, root = ofs[0];

	if (tree_read_arrays(t, n, e->width, n_inputs, sc, path, err) < 0)
		return -1;
	for (j = 0; j < n; j++, cat = cat != NULL ? cat->next : NULL) {
		struct tree_node *nd = &e->nodes[root + j];

		if (tree_check_children(sc, j, path, err) < 0)
			return -1;
		if (sc->feature[j] < 0) {
			if (cat != NULL && !cJSON_IsNull(cat)) {
				model_errf(err, "%s.categories[%zu]: a leaf has "
				    "no categories", path, j);
				return -1;
			}
			nd->kind = NODE_LEAF;
			nd->left = (uint32_t)ofs[1];
			memcpy(e->values + ofs[1], sc->value + j * e->width,
			    e->width * sizeof(double));
			ofs[1] += e->width;
			continue;
		}
		nd->feature = (uint32_t)sc->feature[j];
		nd->left = (uint32_t)(root + (size_t)sc->left[j]);
		nd->right = (uint32_t)(root + (size_t)sc->right[j]);
		nd->missing_left = (uint8_t)sc->missing[j];
		if (cat != NULL && !cJSON_IsNull(cat)) {
			nd->kind = NODE_CATEGORICAL;
			nd->u.left_set = tree_codes_fill(e, cat, &ofs[2]);
		} else {
			nd->kind = NODE_NUMERIC;
			nd->u.threshold = sc->threshold[j];
		}
	}
	ofs[0] += n;
	return 0;
}

/* Reads a tree's "output": the raw score it adds to (sum), 0 if absent. */
static int
tree_output(const struct tree_ensemble *e, const cJSON *t, size_t i,
    uint32_t *out, struct model_err *err)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(t, "output");
	long k = 0;

	if (o != NULL && (e->agg != AGG_SUM ||
	    tree_int(o, 0, (long)e->n_out - 1, &k) < 0)) {
		model_errf(err, "estimator.trees[%zu].output: %s", i,
		    e->agg != AGG_SUM ? "only \"sum\" aggregation has outputs" :
		    "expected an integer from 0 to n_outputs - 1");
		return -1;
	}
	*out = (uint32_t)k;
	return 0;
}

static int
tree_fill_known(struct tree_ensemble *e, const cJSON *known, size_t n_inputs,
    size_t *word, struct model_err *err)
{
	const cJSON *k;
	size_t i = 0, f;
	long feature;

	for (f = 0; e->known != NULL && f < n_inputs; f++)
		e->known[f].off = TREE_NO_SET;
	cJSON_ArrayForEach(k, known) {
		const cJSON *codes = cJSON_GetObjectItemCaseSensitive(k, "codes");

		if (tree_int(cJSON_GetObjectItemCaseSensitive(k, "feature"), 0,
		    (long)n_inputs - 1, &feature) < 0 ||
		    e->known[feature].off != TREE_NO_SET) {
			model_errf(err, "estimator.known_categories[%zu].feature: "
			    "expected a feature index from 0 to %zu, not given "
			    "before", i, n_inputs - 1);
			return -1;
		}
		e->known[feature] = tree_codes_fill(e, codes, word);
		i++;
	}
	return 0;
}

static int
tree_fill(struct tree_ensemble *e, const cJSON *trees, const cJSON *known,
    size_t n_inputs, const struct tree_sizes *sz, struct model_err *err)
{
	struct tree_scratch sc;
	const cJSON *t;
	char path[48];
	size_t ofs[3] = { 0, 0, 0 }, i = 0;	/* node, value, word */
	int rc = 0;

	sc.feature = xcalloc(4 * sz->max_nodes, sizeof(long));
	sc.left = sc.feature + sz->max_nodes;
	sc.right = sc.left + sz->max_nodes;
	sc.missing = sc.right + sz->max_nodes;
	sc.threshold = xcalloc(sz->max_nodes * (1 + e->width), sizeof(double));
	sc.value = sc.threshold + sz->max_nodes;
	cJSON_ArrayForEach(t, trees) {
		snprintf(path, sizeof(path), "estimator.trees[%zu]", i);
		e->roots[i] = (uint32_t)ofs[0];
		if (tree_output(e, t, i, &e->outputs[i], err) < 0 ||
		    tree_fill_one(e, t, n_inputs, &sc, ofs, path, err) < 0) {
			rc = -1;
			break;
		}
		i++;
	}
	free(sc.feature);
	free(sc.threshold);
	if (rc == 0 && known != NULL)
		rc = tree_fill_known(e, known, n_inputs, &ofs[2], err);
	return rc;
}

/* ------------------------------------------------------------ fast walk */

/* The largest float not above t: for a float32 x, x <= t iff x <= it. */
static float
tree_f32_floor(double t)
{
	float f = (float)t;

	return (double)f > t ? nextafterf(f, -INFINITY) : f;
}

/* Copies the tree rooted at root breadth first into e->fnodes[base...],
 * at most max nodes, using queue and depth (max entries each) as work
 * space. Returns the nodes written, or 0 if the tree has a categorical
 * split, more than max reachable nodes (a node with two parents), a level
 * too wide for delta or a depth over UINT16_MAX; *sure and *steps are its
 * least and greatest leaf depths. */
static size_t
tree_fast_one(struct tree_ensemble *e, uint32_t root, size_t base, size_t max,
    uint32_t *queue, uint32_t *depth, uint16_t *sure, uint16_t *steps)
{
	size_t head, tail = 1;

	queue[0] = root;
	depth[0] = 0;
	*sure = UINT16_MAX;
	*steps = 0;
	for (head = 0; head < tail; head++) {
		const struct tree_node *nd = &e->nodes[queue[head]];
		struct tree_fnode *f = &e->fnodes[base + head];

		if (nd->kind == NODE_LEAF) {
			*f = (struct tree_fnode){ INFINITY, 0, 0 };
			e->fleaf[base + head] = nd->left;
			if (depth[head] < *sure)
				*sure = (uint16_t)depth[head];
			if (depth[head] > *steps)
				*steps = (uint16_t)depth[head];
			continue;
		}
		if (nd->kind != NODE_NUMERIC || tail + 2 > max ||
		    tail - head > UINT16_MAX || depth[head] >= UINT16_MAX)
			return 0;
		*f = (struct tree_fnode){ tree_f32_floor(nd->u.threshold),
		    (uint16_t)nd->feature, (uint16_t)(tail - head) };
		queue[tail] = nd->left;
		queue[tail + 1] = nd->right;
		depth[tail] = depth[tail + 1] = depth[head] + 1;
		tail += 2;
	}
	return tail;
}

/* Writes the subtree of fast-walk node fi, from depth d of a complete
 * tree of depth depth, at complete node ci of cn (leaves into leaf). */
static void
tree_complete_one(const struct tree_ensemble *e, uint32_t fi, size_t ci,
    size_t d, size_t depth, struct tree_cnode *cn, uint32_t *leaf)
{
	const struct tree_fnode *f = &e->fnodes[fi];

	if (d == depth) {
		leaf[ci - (((size_t)1 << depth) - 1)] = e->fleaf[fi];
		return;
	}
	if (f->delta == 0) {	/* a leaf: pushed down, always left */
		cn[ci] = (struct tree_cnode){ INFINITY, 0 };
		tree_complete_one(e, fi, 2 * ci + 1, d + 1, depth, cn, leaf);
		tree_complete_one(e, fi, 2 * ci + 2, d + 1, depth, cn, leaf);
		return;
	}
	cn[ci] = (struct tree_cnode){ f->thr, f->feature };
	tree_complete_one(e, fi + f->delta, 2 * ci + 1, d + 1, depth, cn, leaf);
	tree_complete_one(e, fi + f->delta + 1, 2 * ci + 2, d + 1, depth, cn,
	    leaf);
}

/* Builds the complete trees of a built fast walk if no tree is deeper
 * than TREE_SHALLOW. */
static void
tree_complete_build(struct tree_ensemble *e)
{
	size_t t, nodes = 0, leaves = 0;

	for (t = 0; t < e->n_trees; t++) {
		if (e->tsteps[t] > TREE_SHALLOW)
			return;
		nodes += ((size_t)1 << e->tsteps[t]) - 1;
		leaves += (size_t)1 << e->tsteps[t];
	}
	if (leaves > UINT32_MAX)
		return;
	e->cnodes = xcalloc(1, nodes * sizeof(struct tree_cnode) +
	    (leaves + 2 * e->n_trees) * sizeof(uint32_t) + 1);
	e->cleaf = (uint32_t *)(e->cnodes + nodes);
	e->coff = e->cleaf + leaves;
	e->loff = e->coff + e->n_trees;
	nodes = leaves = 0;
	for (t = 0; t < e->n_trees; t++) {
		e->coff[t] = (uint32_t)nodes;
		e->loff[t] = (uint32_t)leaves;
		tree_complete_one(e, e->froots[t], 0, 0, e->tsteps[t],
		    e->cnodes + nodes, e->cleaf + leaves);
		nodes += ((size_t)1 << e->tsteps[t]) - 1;
		leaves += (size_t)1 << e->tsteps[t];
	}
}

/* Writes the first TREE_CAP levels under fast-walk node fi, from depth d,
 * at node ci of the complete tree cn; the fast-walk nodes reached at
 * depth TREE_CAP into ends. */
static void
tree_top_one(const struct tree_ensemble *e, uint32_t fi, size_t ci, size_t d,
    struct tree_cnode *cn, uint32_t *ends)
{
	const struct tree_fnode *f = &e->fnodes[fi];
	uint32_t left = fi, right = fi;

	if (d == TREE_CAP) {
		ends[ci - (((size_t)1 << TREE_CAP) - 1)] = fi;
		return;
	}
	if (f->delta == 0)	/* a leaf: pushed down, always left */
		cn[ci] = (struct tree_cnode){ INFINITY, 0 };
	else {
		cn[ci] = (struct tree_cnode){ f->thr, f->feature };
		left = fi + f->delta;
		right = left + 1;
	}
	tree_top_one(e, left, 2 * ci + 1, d + 1, cn, ends);
	tree_top_one(e, right, 2 * ci + 2, d + 1, cn, ends);
}

/* Builds the tops of a built fast walk's trees. */
static void
tree_top_build(struct tree_ensemble *e)
{
	size_t t, splits = ((size_t)1 << TREE_CAP) - 1;

	e->tops = xcalloc(e->n_trees, splits * sizeof(struct tree_cnode) +
	    (splits + 1) * sizeof(uint32_t));
	e->texit = (uint32_t *)(e->tops + e->n_trees * splits);
	for (t = 0; t < e->n_trees; t++)
		tree_top_one(e, e->froots[t], 0, 0, e->tops + t * splits,
		    e->texit + t * (splits + 1));
}

/* Builds the fast walk of a filled float32 ensemble of n_nodes numeric
 * nodes; leaves it off (fnodes NULL) if a tree does not fit. */
static void
tree_fast_build(struct tree_ensemble *e, size_t n_nodes)
{
	size_t groups = (e->n_trees + TREE_GROUP - 1) / TREE_GROUP;
	size_t used = 0, t, n, g;
	uint32_t *queue, *depth;

	e->fnodes = xcalloc(1, n_nodes * sizeof(struct tree_fnode) +
	    (n_nodes + e->n_trees) * sizeof(uint32_t) +
	    2 * (groups + e->n_trees) * sizeof(uint16_t) + 1);
	e->fleaf = (uint32_t *)(e->fnodes + n_nodes);
	e->froots = e->fleaf + n_nodes;
	e->gsure = (uint16_t *)(e->froots + e->n_trees);
	e->gsteps = e->gsure + groups;
	e->tsure = e->gsteps + groups;
	e->tsteps = e->tsure + e->n_trees;
	for (g = 0; g < groups; g++)
		e->gsure[g] = UINT16_MAX;
	queue = xcalloc(2 * n_nodes + 1, sizeof(uint32_t));
	depth = queue + n_nodes;
	for (t = 0; t < e->n_trees; t++) {
		size_t end = t + 1 < e->n_trees ? e->roots[t + 1] : n_nodes;

		g = t / TREE_GROUP;
		n = tree_fast_one(e, e->roots[t], used, end - e->roots[t],
		    queue, depth, &e->tsure[t], &e->tsteps[t]);
		if (n == 0) {
			free(e->fnodes);
			e->fnodes = NULL;
			break;
		}
		e->froots[t] = (uint32_t)used;
		if (e->tsteps[t] <= TREE_SHALLOW)
			e->tsure[t] = e->tsteps[t];
		if (e->tsure[t] < e->gsure[g])
			e->gsure[g] = e->tsure[t];
		if (e->tsteps[t] > e->gsteps[g])
			e->gsteps[g] = e->tsteps[t];
		used += n;
	}
	for (g = 0; e->fnodes != NULL && g < groups; g++)
		if (e->gsteps[g] <= TREE_SHALLOW)
			e->gsure[g] = e->gsteps[g];
	free(queue);
	if (e->fnodes != NULL)
		tree_complete_build(e);
	if (e->fnodes != NULL && e->cnodes == NULL)
		tree_top_build(e);
}

/* ------------------------------------------------------------ loading */

/* Returns the index of s in names (NULL-terminated), or -1. */
static int
tree_pick(const cJSON *s, const char *const *names)
{
	int i;

	for (i = 0; cJSON_IsString(s) && names[i] != NULL; i++)
		if (strcmp(s->valuestring, names[i]) == 0)
			return i;
	return -1;
}

/* Reads aggregation, input_dtype and n_outputs. */
static int
tree_load_kind(struct tree_ensemble *e, const cJSON *json,
    struct model_err *err)
{
	static const char *const aggs[] = { "mean", "sum", NULL };
	static const char *const dtypes[] = { "float64", "float32", NULL };
	int agg = tree_pick(cJSON_GetObjectItemCaseSensitive(json,
	    "aggregation"), aggs);
	int dt = tree_pick(cJSON_GetObjectItemCaseSensitive(json,
	    "input_dtype"), dtypes);
	long n_out;

	if (agg < 0) {
		model_errf(err, "estimator.aggregation: expected \"mean\" or "
		    "\"sum\"");
		return -1;
	}
	if (dt < 0) {
		model_errf(err, "estimator.input_dtype: expected \"float32\" or "
		    "\"float64\"");
		return -1;
	}
	e->agg = agg == 0 ? AGG_MEAN : AGG_SUM;
	e->f32 = dt == 1;
	if (tree_int(cJSON_GetObjectItemCaseSensitive(json, "n_outputs"), 1,
	    65536, &n_out) < 0) {
		model_errf(err, "estimator.n_outputs: expected an integer from 1 "
		    "to 65536");
		return -1;
	}
	e->n_out = (size_t)n_out;
	e->width = e->agg == AGG_MEAN ? e->n_out : 1;
	return 0;
}

/* Checks n_outputs against the task: mean aggregation gives a class
 * distribution or one value. */
static int
tree_load_mean(struct tree_ensemble *e, const cJSON *json,
    const struct model *m, struct model_err *err)
{
	static const char *const sum_only[] = { "link", "base",
	    "learning_rate", NULL };
	size_t want = m->task == MODEL_CLASSIFICATION ? m->n_classes : 1;
	int i;

	for (i = 0; sum_only[i] != NULL; i++)
		if (cJSON_GetObjectItemCaseSensitive(json, sum_only[i])) {
			model_errf(err, "estimator.%s: only \"sum\" aggregation "
			    "has one", sum_only[i]);
			return -1;
		}
	if (e->n_out != want) {
		model_errf(err, "estimator.n_outputs: %zu, expected %zu (%s)",
		    e->n_out, want, m->task == MODEL_CLASSIFICATION ?
		    "the number of classes" : "regression");
		return -1;
	}
	return 0;
}

/* Reads link and learning_rate, and checks them against the task and
 * n_outputs. A classifier's decision_function is its raw scores. */
static int
tree_load_sum(struct tree_ensemble *e, const cJSON *json, struct model *m,
    struct model_err *err)
{
	static const char *const links[] = { "identity", "logistic", "softmax",
	    "logsumexp", NULL };
	const cJSON *lr = cJSON_GetObjectItemCaseSensitive(json,
	    "learning_rate");
	int link = tree_pick(cJSON_GetObjectItemCaseSensitive(json, "link"),
	    links);
	int ok;

	e->learning_rate = 1.0;
	if (lr != NULL) {
		if (!cJSON_IsNumber(lr) || !isfinite(lr->valuedouble)) {
			model_errf(err, "estimator.learning_rate: expected a "
			    "finite number");
			return -1;
		}
		e->learning_rate = lr->valuedouble;
	}
	if (link < 0) {
		model_errf(err, "estimator.link: expected \"identity\", "
		    "\"logistic\", \"softmax\" or \"logsumexp\"");
		return -1;
	}
	e->link = (enum tree_link)link;
	if (m->task == MODEL_REGRESSION)
		ok = e->link == LINK_IDENTITY && e->n_out == 1;
	else if (e->link == LINK_LOGISTIC)
		ok = e->n_out == 1 && m->n_classes == 2;
	else
		ok = e->link != LINK_IDENTITY && e->n_out == m->n_classes;
	if (!ok) {
		model_errf(err, "estimator.link: \"%s\" with n_outputs %zu does "
		    "not fit this task (regression: identity, 1; two classes: "
		    "logistic, 1; n classes: softmax or logsumexp, n)",
		    links[link], e->n_out);
		return -1;
	}
	if (m->task == MODEL_CLASSIFICATION)
		m->n_scores = e->n_out;
	return 0;
}

static void *
tree_load(const cJSON *json, struct model *m, struct model_err *err)
{
	const cJSON *trees = cJSON_GetObjectItemCaseSensitive(json, "trees");
	const cJSON *known = cJSON_GetObjectItemCaseSensitive(json,
	    "known_categories");
	struct tree_ensemble *e = xcalloc(1, sizeof(*e));
	struct tree_sizes sz;

	if (model_json_keys(json, tree_keys, "estimator", err) < 0 ||
	    tree_load_kind(e, json, err) < 0)
		goto fail;
	if (e->agg == AGG_MEAN ? tree_load_mean(e, json, m, err) < 0 :
	    tree_load_sum(e, json, m, err) < 0)
		goto fail;
	if (!cJSON_IsArray(trees) || (e->agg == AGG_MEAN &&
	    cJSON_GetArraySize(trees) == 0)) {
		model_errf(err, "estimator.trees: expected an array of trees%s",
		    e->agg == AGG_MEAN ? " (at least one)" : "");
		goto fail;
	}
	e->n_trees = (size_t)cJSON_GetArraySize(trees);
	if (tree_measure(trees, known, m->n_inputs, e->width, &sz, err) < 0)
		goto fail;
	tree_alloc(e, &sz);
	if (e->agg == AGG_SUM && model_json_doubles(
	    cJSON_GetObjectItemCaseSensitive(json, "base"), e->n_out, e->base,
	    "estimator.base", err) < 0)
		goto fail;
	if (tree_fill(e, trees, known, m->n_inputs, &sz, err) < 0)
		goto fail;
	if (e->f32)
		tree_fast_build(e, sz.nodes);
	/* Per row: the float32 row; with complete trees, room for twice as
	 * much (the rows of a block together hold their float32 values
	 * transposed, for n rows rounded up to a power of two); with tops,
	 * three times (transposed, then one row after another); a regressor,
	 * one double more (its sum). See tree_block(). */
	m->est_scratch = (e->cnodes != NULL ? m->n_inputs : e->tops != NULL ?
	    m->n_inputs + (m->n_inputs + 1) / 2 : (m->n_inputs + 1) / 2) +
	    (m->task == MODEL_REGRESSION);
	m->est_predict_rows = tree_predict_rows;
	return e;
fail:
	tree_free(e);
	return NULL;
}

/* ------------------------------------------------------------ predicting */

/* Whether a categorical split sends v (not NaN) left, as scikit-learn's
 * HistGradientBoosting does: a negative value or an unknown category goes
 * where missing values go; a value is truncated to its integer code. */
static int
tree_category_left(const struct tree_ensemble *e, const struct tree_node *nd,
    double v)
{
	uint32_t c;

	if (v < 0 || v >= TREE_MAX_CODE + 1.0)
		return nd->missing_left;
	c = (uint32_t)v;
	if (tree_has(e, nd->u.left_set, c))
		return 1;
	if (e->known == NULL || e->known[nd->feature].off == TREE_NO_SET ||
	    tree_has(e, e->known[nd->feature], c))
		return 0;
	return nd->missing_left;
}

/* Returns the leaf values of the tree rooted at root for row x. */
static const double *
tree_leaf(const struct tree_ensemble *e, uint32_t root, const double *x)
{
	const struct tree_node *nd = &e->nodes[root];
	int left;

	while (nd->kind != NODE_LEAF) {
		double v = x[nd->feature];

		if (isnan(v))
			left = nd->missing_left;
		else if (nd->kind == NODE_NUMERIC)
			/* scikit-learn's trees see X as float32. */
			left = (e->f32 ? (double)(float)v : v) <=
			    nd->u.threshold;
		else
			left = tree_category_left(e, nd, v);
		nd = &e->nodes[left ? nd->left : nd->right];
	}
	return e->values + nd->left;
}

/* Converts row x (n values) to float32 into xf. Returns 0, or -1 if a
 * value is missing (NaN). */
static int
tree_f32_row(const double *x, size_t n, float *xf)
{
	size_t i;
	int nan = 0;

	for (i = 0; i < n; i++) {
		xf[i] = (float)x[i];
		nan |= isnan(x[i]);
	}
	return nan ? -1 : 0;
}

/* One step of a fast walk at node at for the float32 row x. */
static inline uint32_t
tree_step(const struct tree_fnode *fn, uint32_t at, const float *x)
{
	const struct tree_fnode *nd = &fn[at];

	return at + nd->delta + (x[nd->feature] > nd->thr);
}

/* Takes the TREE_GROUP fast walks at[k] of different trees for the float32
 * row x, up to steps steps: sure steps, then more until no walk moves
 * (every one is on its leaf). */
static inline void
tree_walk_trees(const struct tree_fnode *fn, const float *x, uint32_t *at,
    size_t sure, size_t steps)
{
	uint32_t next, moved = 1;
	size_t k, step;

	for (step = 0; step < sure; step++) {
#pragma GCC unroll 16	/* TREE_GROUP */
		for (k = 0; k < TREE_GROUP; k++)
			at[k] = tree_step(fn, at[k], x);
	}
	/* Two steps at a time, as in tree_walk_rows(). */
	for (; step < steps && moved != 0; step += 2) {
#pragma GCC unroll 16	/* TREE_GROUP */
		for (k = 0; k < TREE_GROUP; k++)
			at[k] = tree_step(fn, at[k], x);
		moved = 0;
#pragma GCC unroll 16	/* TREE_GROUP */
		for (k = 0; k < TREE_GROUP; k++) {
			next = tree_step(fn, at[k], x);
			moved |= next ^ at[k];
			at[k] = next;
		}
	}
}

/* The same for the n walks at[k] of one tree, for the rows row[k] (n a
 * constant: TREE_ROWS or TREE_DEEP_WALKS, so that the loops unroll). */
static inline void
tree_walk_rows(const struct tree_fnode *fn, const float *const *row,
    uint32_t *at, size_t n, size_t sure, size_t steps)
{
	uint32_t next, moved = 1;
	size_t k, step;

	for (step = 0; step < sure; step++) {
#pragma GCC unroll 16	/* TREE_DEEP_WALKS */
		for (k = 0; k < n; k++)
			at[k] = tree_step(fn, at[k], row[k]);
	}
	/* Two steps at a time, the second asking whether any walk moved:
	 * a step more on a leaf changes nothing. */
	for (; step < steps && moved != 0; step += 2) {
#pragma GCC unroll 16	/* TREE_DEEP_WALKS */
		for (k = 0; k < n; k++)
			at[k] = tree_step(fn, at[k], row[k]);
		moved = 0;
#pragma GCC unroll 16	/* TREE_DEEP_WALKS */
		for (k = 0; k < n; k++) {
			next = tree_step(fn, at[k], row[k]);
			moved |= next ^ at[k];
			at[k] = next;
		}
	}
}

/* Walks the TREE_GROUP trees from t (those past n_trees walk tree t again)
 * for the float32 row xf; leaf[k] gets the values' offset of tree t + k's
 * leaf. */
static void
tree_fast_group(const struct tree_ensemble *e, size_t t, const float *xf,
    uint32_t *leaf)
{
	uint32_t at[TREE_GROUP];
	size_t k;

	for (k = 0; k < TREE_GROUP; k++)
		at[k] = e->froots[t + k < e->n_trees ? t + k : t];
	tree_walk_trees(e->fnodes, xf, at, e->gsure[t / TREE_GROUP],
	    e->gsteps[t / TREE_GROUP]);
	for (k = 0; k < TREE_GROUP; k++)
		leaf[k] = e->fleaf[at[k]];
}

/* Returns the index of the first largest of p[0..n). */
static size_t
tree_argmax(const double *p, size_t n)
{
	size_t k, best = 0;

	for (k = 1; k < n; k++)
		if (p[k] > p[best])
			best = k;
	return best;
}

/* Class probabilities p[0..n) from raw scores s, as scikit-learn's
 * HistGradientBoostingClassifier (softmax) or GradientBoostingClassifier
 * (logsumexp) computes them. */
static void
tree_softmax(enum tree_link link, const double *s, double *p, size_t n)
{
	double max = s[tree_argmax(s, n)], sum = 0, lse;
	size_t k;

	if (link == LINK_SOFTMAX) {
		/* scikit-learn's raw scores are in Fortran order here, so
		 * numpy sums each row from left to right. */
		for (k = 0; k < n; k++) {
			p[k] = exp(s[k] - max);
			sum += p[k];
		}
		for (k = 0; k < n; k++)
			p[k] /= sum;
		return;
	}
	if (!isfinite(max))
		max = 0;	/* scipy.special.logsumexp does the same */
	for (k = 0; k < n; k++)
		p[k] = exp(s[k] - max);
	lse = log(model_sum(p, n)) + max;	/* C-order rows */
	for (k = 0; k < n; k++)
		p[k] = exp(s[k] - lse);
}

/* Returns where a row's trees add up: a classifier's class distribution
 * (mean) or raw scores (sum), else its value. */
static inline double *
tree_acc(const struct tree_ensemble *e, const struct model *m,
    struct prediction *out)
{
	if (m->task == MODEL_REGRESSION)
		return &out->value;
	return e->agg == AGG_MEAN ? out->proba : out->scores;
}

/* Sets a row's sums to their start, zeros or the base scores; returns
 * them. */
static double *
tree_start(const struct tree_ensemble *e, const struct model *m,
    struct prediction *out)
{
	double *acc = tree_acc(e, m, out);
	size_t k;

	for (k = 0; k < e->n_out; k++)
		acc[k] = e->agg == AGG_MEAN ? 0 : e->base[k];
	return acc;
}

/* Adds tree t's leaf, its values at offset leaf, to acc. */
static inline void
tree_add(const struct tree_ensemble *e, double *acc, size_t t, uint32_t leaf)
{
	const double *v = e->values + leaf;
	size_t k;

	if (e->agg == AGG_SUM) {
		acc[e->outputs[t]] += e->learning_rate * *v;
		return;
	}
	for (k = 0; k < e->n_out; k++)
		acc[k] += v[k];
}

/* Turns the sums in acc into the prediction. */
static void
tree_finish(const struct tree_ensemble *e, const struct model *m,
    double *acc, struct prediction *out)
{
	double *p = out->proba;
	size_t k;

	if (e->agg == AGG_MEAN)
		for (k = 0; k < e->n_out; k++)
			acc[k] /= (double)e->n_trees;
	if (m->task == MODEL_REGRESSION) {
		out->value = acc[0];
		return;
	}
	if (e->agg == AGG_MEAN) {
		out->class_index = tree_argmax(acc, e->n_out);
		return;
	}
	if (e->link == LINK_LOGISTIC) {
		p[1] = 1.0 / (1.0 + exp(-acc[0]));	/* scipy's expit */
		p[0] = 1.0 - p[1];
	} else
		tree_softmax(e->link, acc, p, e->n_out);
	out->class_index = tree_argmax(p, m->n_classes);
}

/* Where tree_block() finds a row's float32 row and sums: row i's at
 * xf + i * xf_stride and at acc + i * acc_stride bytes (xt: the block's
 * rows transposed, feature f of row i at xt[(f << shift) + i], 2^shift
 * the least power of two not below n). */
struct tree_rows {
	const float	*xf, *xt;
	char		*acc;
	size_t		 xf_stride, acc_stride, n;
	unsigned	 shift;
};

/* Row i's sums. */
static inline double *
tree_row_acc(const struct tree_rows *r, size_t i)
{
	return (double *)(void *)(r->acc + i * r->acc_stride);
}

/* Adds tree t's leaves to the sums of the TREE_ROWS rows from i: leaf[k]
 * (values' offsets) to row i + k's, as tree_add() does, with a forest's
 * one or two values a leaf added without a loop. */
static inline void
tree_add_rows(const struct tree_ensemble *e, const struct tree_rows *r,
    size_t t, size_t i, const uint32_t *leaf)
{
	char *acc = (char *)tree_row_acc(r, i);
	const double *v;
	double *a;
	size_t k;

	if (e->agg == AGG_MEAN && e->n_out <= 2) {
#pragma GCC unroll 8	/* TREE_ROWS */
		for (k = 0; k < TREE_ROWS; k++) {
			a = (double *)(void *)(acc + k * r->acc_stride);
			v = e->values + leaf[k];
			a[0] += v[0];
			if (e->n_out == 2)
				a[1] += v[1];
		}
		return;
	}
	for (k = 0; k < TREE_ROWS; k++)
		tree_add(e, tree_row_acc(r, i + k), t, leaf[k]);
}

/* Walks through deep trees in passes (TREE_FIRST): the rows of a block
 * through one tree (walk i: row i, at r->xf + i * r->xf_stride), or one
 * row through many trees (walk i: tree i, r->xf_stride 0). The caller
 * provides the arrays, an entry per walk. */
struct tree_deep {
	uint32_t	*end;		/* per walk: the node it is on */
	uint32_t	*pend;		/* the walks not yet on their leaf */
	size_t		 np;		/* walks in pend */
};

/* Takes the TREE_DEEP_WALKS walks i + k, from at[k], exactly steps
 * steps (the first pass of TREE_FIRST); records in d->end where each got
 * to, and appends to d->pend those not on their leaf. */
static inline void
tree_deep_first(const struct tree_ensemble *e, const struct tree_rows *r,
    struct tree_deep *d, size_t i, uint32_t *at, size_t steps)
{
	const float *row[TREE_DEEP_WALKS];
	size_t k, np = d->np;

#pragma GCC unroll 16	/* TREE_DEEP_WALKS */
	for (k = 0; k < TREE_DEEP_WALKS; k++)
		row[k] = r->xf + (i + k) * r->xf_stride;
	tree_walk_rows(e->fnodes, row, at, TREE_DEEP_WALKS, steps, steps);
#pragma GCC unroll 16	/* TREE_DEEP_WALKS */
	for (k = 0; k < TREE_DEEP_WALKS; k++) {
		d->end[i + k] = at[k];
		d->pend[np] = (uint32_t)(i + k);
		np += e->fnodes[at[k]].delta != 0;
	}
	d->np = np;
}

/* Takes the walks d->pend on from d->end to their leaves (the passes
 * after the first of TREE_FIRST): TREE_DEEP_WALKS at a time, TREE_MORE
 * steps, then those not yet on their leaf to their leaves (steps: at most
 * the steps left). */
static void
tree_deep_finish(const struct tree_ensemble *e, const struct tree_rows *r,
    struct tree_deep *d, size_t steps)
{
	const float *row[TREE_DEEP_WALKS];
	uint32_t at[TREE_DEEP_WALKS];
	size_t np = d->np, i, k, left, more;
	int last;

	for (; np > 0; np = left, steps -= more) {
		last = steps <= TREE_MORE;
		more = last ? steps : TREE_MORE;
		for (left = 0, i = 0; i < np; i += TREE_DEEP_WALKS) {
			/* The last group filled up with its first walk. */
#pragma GCC unroll 16	/* TREE_DEEP_WALKS */
			for (k = 0; k < TREE_DEEP_WALKS; k++) {
				uint32_t w = d->pend[i + k < np ? i + k : i];

				at[k] = d->end[w];
				row[k] = r->xf + w * r->xf_stride;
			}
			tree_walk_rows(e->fnodes, row, at, TREE_DEEP_WALKS,
			    last ? 0 : more, more);
			/* pend[left] was read: left <= i + k. */
			for (k = 0; k < TREE_DEEP_WALKS && i + k < np; k++) {
				d->end[d->pend[i + k]] = at[k];
				d->pend[left] = d->pend[i + k];
				left += e->fnodes[at[k]].delta != 0;
			}
		}
		if (last)
			break;
	}
}

/* Adds the leaves tree t's walks for the rows [0, n) of r ended on (d, a
 * walk per row) to the rows' sums; n a multiple of TREE_ROWS. */
static void
tree_deep_add(const struct tree_ensemble *e, size_t t,
    const struct tree_rows *r, const struct tree_deep *d, size_t n)
{
	uint32_t leaf[TREE_ROWS];
	size_t i, k;

	for (i = 0; i < n; i += TREE_ROWS) {
#pragma GCC unroll 8	/* TREE_ROWS */
		for (k = 0; k < TREE_ROWS; k++)
			leaf[k] = e->fleaf[d->end[i + k]];
		tree_add_rows(e, r, t, i, leaf);
	}
}

/* The steps of the first pass (TREE_FIRST) through trees whose leaves
 * are sure to steps deep, for walks that took skip steps before:
 * TREE_FIRST - skip, but at least the steps every walk needs and at most
 * those any may need. */
static size_t
tree_deep_steps(size_t sure, size_t steps, size_t skip)
{
	size_t first = TREE_FIRST > skip ? TREE_FIRST - skip : 0;

	sure = sure > skip ? sure - skip : 0;
	steps = steps > skip ? steps - skip : 0;
	return first < sure ? sure : first > steps ? steps : first;
}

/* Walks the trees for the float32 row xf in passes (TREE_FIRST), up to
 * TREE_CHUNK trees at a time, and adds each one's leaf to acc in tree
 * order. */
static void
tree_deep_row(const struct tree_ensemble *e, const float *xf, double *acc)
{
	uint32_t end[TREE_CHUNK], pend[TREE_CHUNK], at[TREE_GROUP];
	struct tree_deep d = { end, pend, 0 };
	struct tree_rows r = { 0 };
	size_t c, j, k, g, n, first, steps, rest;

	r.xf = xf;		/* every walk's row: xf_stride 0 */
	for (c = 0; c < e->n_trees; c += TREE_CHUNK) {
		n = e->n_trees - c < TREE_CHUNK ? e->n_trees - c : TREE_CHUNK;
		d.np = 0;
		for (rest = 0, j = 0; j < n; j += TREE_GROUP) {
			/* Trees past n_trees walk tree c + j again. */
			for (k = 0; k < TREE_GROUP; k++)
				at[k] = e->froots[c + j + (j + k < n ? k : 0)];
			g = (c + j) / TREE_GROUP;
			steps = e->gsteps[g];
			first = tree_deep_steps(e->gsure[g], steps, 0);
			tree_deep_first(e, &r, &d, j, at, first);
			if (steps - first > rest)
				rest = steps - first;
		}
		tree_deep_finish(e, &r, &d, rest);
		for (j = 0; j < n; j++)
			tree_add(e, acc, c + j, e->fleaf[end[j]]);
	}
}

static void
tree_predict(const void *est, const struct model *m, const double *x,
    struct prediction *out)
{
	const struct tree_ensemble *e = est;
	float *xf = (float *)out->work;
	double *acc = tree_start(e, m, out);
	uint32_t leaf[TREE_GROUP];
	size_t t, k;

	if (e->fnodes == NULL || tree_f32_row(x, m->n_inputs, xf) < 0)
		for (t = 0; t < e->n_trees; t++)
			tree_add(e, acc, t, (uint32_t)(tree_leaf(e,
			    e->roots[t], x) - e->values));
	else if (e->cnodes == NULL)	/* a tree deeper than TREE_SHALLOW */
		tree_deep_row(e, xf, acc);
	else
		for (t = 0; t < e->n_trees; t += TREE_GROUP) {
			tree_fast_group(e, t, xf, leaf);
			for (k = 0; k < TREE_GROUP && t + k < e->n_trees; k++)
				tree_add(e, acc, t + k, leaf[k]);
		}
	tree_finish(e, m, acc, out);
}

/* Walks tree t for the rows of r, TREE_DEEP_WALKS at a time in passes
 * (TREE_FIRST), the rest TREE_ROWS at a time, and adds each one's leaf to
 * its sums; d is work space. */
static void
tree_fast_rows(const struct tree_ensemble *e, size_t t,
    const struct tree_rows *r, struct tree_deep *d)
{
	const float *row[TREE_ROWS];
	uint32_t at[TREE_DEEP_WALKS];
	size_t i, k, n = r->n;
	size_t first = tree_deep_steps(e->tsure[t], e->tsteps[t], 0);

	d->np = 0;
	for (i = 0; i + TREE_DEEP_WALKS <= n; i += TREE_DEEP_WALKS) {
		for (k = 0; k < TREE_DEEP_WALKS; k++)
			at[k] = e->froots[t];
		tree_deep_first(e, r, d, i, at, first);
	}
	tree_deep_finish(e, r, d, e->tsteps[t] - first);
	tree_deep_add(e, t, r, d, i);
	for (; i < n; i += TREE_ROWS) {
		for (k = 0; k < TREE_ROWS; k++) {
			row[k] = r->xf + (i + k < n ? i + k : i) * r->xf_stride;
			at[k] = e->froots[t];
		}
		tree_walk_rows(e->fnodes, row, at, TREE_ROWS, e->tsure[t],
		    e->tsteps[t]);
		for (k = 0; k < TREE_ROWS; k++)
			at[k] = e->fleaf[at[k]];
		if (i + TREE_ROWS <= n)
			tree_add_rows(e, r, t, i, at);
		else
			for (k = 0; i + k < n; k++)
				tree_add(e, tree_row_acc(r, i + k), t, at[k]);
	}
}

/* The same with tree t's complete tree, on the transposed rows. */
static void
tree_complete_rows(const struct tree_ensemble *e, size_t t,
    const struct tree_rows *r)
{
	const struct tree_cnode *cn = e->cnodes + e->coff[t], *c;
	const uint32_t *leaf = e->cleaf + e->loff[t] -
	    (((size_t)1 << e->tsteps[t]) - 1);
	size_t i, k, d, depth = e->tsteps[t], n = r->n;
	unsigned sh = r->shift;
	size_t at[TREE_ROWS];

	for (i = 0; i + TREE_ROWS <= n; i += TREE_ROWS) {
		const float *x = r->xt + i;

#pragma GCC unroll 8	/* TREE_ROWS */
		for (k = 0; k < TREE_ROWS; k++)
			at[k] = 0;
		for (d = 0; d < depth; d++) {
#pragma GCC unroll 8	/* TREE_ROWS */
			for (k = 0; k < TREE_ROWS; k++) {
				c = &cn[at[k]];
				at[k] = 2 * at[k] + 1 +
				    (x[((size_t)c->feature << sh) + k] > c->thr);
			}
		}
		for (k = 0; k < TREE_ROWS; k++)
			tree_add(e, tree_row_acc(r, i + k), t, leaf[at[k]]);
	}
	for (; i < n; i++) {
		size_t a = 0;

		for (d = 0; d < depth; d++) {
			c = &cn[a];
			a = 2 * a + 1 + (r->xt[((size_t)c->feature << sh) + i] >
			    c->thr);
		}
		tree_add(e, tree_row_acc(r, i), t, leaf[a]);
	}
}

#if TREE_AVX2
/* The vector walk (AVX2): the rows of a block eight at a time, each
 * taking the same path as in tree_complete_rows(). The first TREE_CAP
 * levels of a complete tree are decided without a gather: each of their
 * splits is compared for the eight rows at once (one load of its
 * feature's eight transposed values; a lane all ones means right), and
 * each row's own split at a level is then chosen by its decisions above
 * (blends). The levels below are walked one row at a time, TREE_VROWS
 * walks in flight. Measured on AMD Zen 3 (bench/RESULTS.md): a fourth level of
 * blends, or gathering each row's value on the next levels (a gather
 * costs as much as eight loads there), was no faster. */

/* Rows the vector walk of a complete tree takes together: their first
 * levels eight at a time, the rest as that many walks in flight (32 were
 * about 20 % faster than 8 on GB-300, bench/RESULTS.md). */
#define TREE_VROWS 32

/* A split of the vector walk's copy of a tree: its feature as the offset
 * of the feature's values in the block's transposed rows. */
struct tree_vnode {
	float		thr;
	uint32_t	off;
};

/* Work space of the vector walk: one tree for one block. */
struct tree_vwork {
	struct tree_vnode node[((size_t)1 << TREE_SHALLOW) - 1];
	/* With one sum: the term a leaf adds, by its node index. */
	double		 lv[((size_t)2 << TREE_SHALLOW) - 1];
	const float	*col[((size_t)1 << TREE_CAP) - 1];
	__m256		 cut[((size_t)1 << TREE_CAP) - 1];
};

/* Right (all ones) or left (zero) for the eight rows from i at split j. */
#define TREE_V_SPLIT(w, j, i)						\
	_mm256_cmp_ps(_mm256_loadu_ps((w)->col[j] + (i)), (w)->cut[j],	\
	    _CMP_GT_OQ)
#define TREE_V_BLEND(a, c, m) _mm256_blendv_ps(a, c, m)
/* -m (m all ones or zero) times 2^sh, as 32-bit integers. */
#define TREE_V_BIT(m, sh) _mm256_slli_epi32(_mm256_castps_si256(m), sh)

/* Walks the first TREE_CAP levels of w's tree for the eight rows from i;
 * stores their node indices there in at. */
__attribute__((target("avx2"), always_inline)) static inline void
tree_v_cap(const struct tree_vwork *w, size_t i, uint32_t *at)
{
	__m256 b0, b1, b2;
	__m256i q;

	b0 = TREE_V_SPLIT(w, 0, i);
	b1 = TREE_V_BLEND(TREE_V_SPLIT(w, 1, i), TREE_V_SPLIT(w, 2, i), b0);
	b2 = TREE_V_BLEND(
	    TREE_V_BLEND(TREE_V_SPLIT(w, 3, i), TREE_V_SPLIT(w, 4, i), b1),
	    TREE_V_BLEND(TREE_V_SPLIT(w, 5, i), TREE_V_SPLIT(w, 6, i), b1), b0);
	/* node 7 + (b0 b1 b2 in binary) */
	q = _mm256_sub_epi32(_mm256_set1_epi32(7), _mm256_add_epi32(
	    _mm256_add_epi32(TREE_V_BIT(b0, 2), TREE_V_BIT(b1, 1)),
	    TREE_V_BIT(b2, 0)));
	_mm256_storeu_si256((__m256i *)(void *)at, q);
}

/* Takes steps more steps (1 to 5) of the walks at[0..rows) (rows 8 or
 * TREE_VROWS) of the rows at x (transposed), in the tree vn. */
__attribute__((target("avx2"), always_inline)) static inline void
tree_v_steps(const struct tree_vnode *vn, const float *x, unsigned steps,
    unsigned rows, uint32_t *at)
{
	const struct tree_vnode *c;
	unsigned d, k;

#pragma GCC unroll 5
	for (d = 0; d < steps; d++) {
#pragma GCC unroll 32	/* TREE_VROWS */
		for (k = 0; k < rows; k++) {
			c = &vn[at[k]];
			at[k] = 2 * at[k] + 1 + (x[c->off + k] > c->thr);
		}
	}
}

/* Walks complete tree t, at least 3 deep, for the rows (8 or TREE_VROWS)
 * of r from i and adds each one's leaf to its sums. */
__attribute__((target("avx2"), always_inline)) static inline void
tree_v_rows(const struct tree_ensemble *e, size_t t, const struct tree_rows *r,
    const struct tree_vwork *w, size_t i, unsigned rows)
{
	size_t depth = e->tsteps[t], splits = ((size_t)1 << depth) - 1, k;
	const uint32_t *leaf = e->cleaf + e->loff[t];
	const float *x = r->xt + i;
	uint32_t at[TREE_VROWS];
	char *acc;

	for (k = 0; k < rows; k += TREE_ROWS)
		tree_v_cap(w, i + k, at + k);
	/* The levels left: one function per count, unrolled. */
	switch (depth - TREE_CAP) {
	case 0: break;
	case 1: tree_v_steps(w->node, x, 1, rows, at); break;
	case 2: tree_v_steps(w->node, x, 2, rows, at); break;
	case 3: tree_v_steps(w->node, x, 3, rows, at); break;
	case 4: tree_v_steps(w->node, x, 4, rows, at); break;
	default: tree_v_steps(w->node, x, 5, rows, at); break;
	}
	acc = (char *)tree_row_acc(r, i);
	if (e->agg == AGG_SUM && e->n_out == 1) {
#pragma GCC unroll 32	/* TREE_VROWS */
		for (k = 0; k < rows; k++) {
			*(double *)(void *)acc += w->lv[at[k]];
			acc += r->acc_stride;
		}
	} else
		for (k = 0; k < rows; k++)
			tree_add(e, tree_row_acc(r, i + k), t,
			    leaf[at[k] - splits]);
}

/* Walks complete tree t, at least 3 deep, for the rows of r and adds each
 * one's leaf to its sums, as tree_complete_rows() does; w is work space. */
__attribute__((target("avx2"))) static void
tree_complete_rows_avx2(const struct tree_ensemble *e, size_t t,
    const struct tree_rows *r, struct tree_vwork *w)
{
	const struct tree_cnode *cn = e->cnodes + e->coff[t];
	size_t depth = e->tsteps[t], n = r->n, i, k, d, a;
	size_t splits = ((size_t)1 << depth) - 1;
	const uint32_t *leaf = e->cleaf + e->loff[t];
	const struct tree_vnode *vn = w->node;
	int sum1 = e->agg == AGG_SUM && e->n_out == 1;

	/* The tree for this block; with one sum, each leaf as the term it
	 * adds (the same product tree_add() computes). */
	for (k = 0; k < splits; k++)
		w->node[k] = (struct tree_vnode){ cn[k].thr,
		    cn[k].feature << r->shift };
	for (k = 0; sum1 && k <= splits; k++)
		w->lv[splits + k] = e->learning_rate * e->values[leaf[k]];
	for (k = 0; k < ((size_t)1 << TREE_CAP) - 1; k++) {
		w->col[k] = r->xt + w->node[k].off;
		w->cut[k] = _mm256_set1_ps(w->node[k].thr);
	}
	for (i = 0; i + TREE_VROWS <= n; i += TREE_VROWS)
		tree_v_rows(e, t, r, w, i, TREE_VROWS);
	for (; i + TREE_ROWS <= n; i += TREE_ROWS)
		tree_v_rows(e, t, r, w, i, TREE_ROWS);
	for (; i < n; i++) {
		for (a = 0, d = 0; d < depth; d++)
			a = 2 * a + 1 + (r->xt[vn[a].off + i] > vn[a].thr);
		tree_add(e, tree_row_acc(r, i), t, leaf[a - splits]);
	}
}

/* Walks tree t for the TREE_ROWS rows from i of r: its top for the rows
 * at once, then on from the top's ends, sure steps and up to steps more;
 * adds the leaves to the rows' sums. */
__attribute__((target("avx2"), always_inline)) static inline void
tree_top_walks(const struct tree_ensemble *e, size_t t,
    const struct tree_rows *r, const struct tree_vwork *w, size_t i,
    size_t sure, size_t steps)
{
	size_t splits = ((size_t)1 << TREE_CAP) - 1, k;
	const uint32_t *ends = e->texit + t * (splits + 1);
	const float *row[TREE_ROWS];
	uint32_t at[TREE_ROWS];

	tree_v_cap(w, i, at);
#pragma GCC unroll 8	/* TREE_ROWS */
	for (k = 0; k < TREE_ROWS; k++) {
		at[k] = ends[at[k] - splits];
		row[k] = r->xf + (i + k) * r->xf_stride;
	}
	tree_walk_rows(e->fnodes, row, at, TREE_ROWS, sure, steps);
#pragma GCC unroll 8	/* TREE_ROWS */
	for (k = 0; k < TREE_ROWS; k++)
		at[k] = e->fleaf[at[k]];
	tree_add_rows(e, r, t, i, at);
}

/* Walks tree t of a fast walk (deeper trees) for the rows of r, its
 * first TREE_CAP levels as tree_complete_rows_avx2() does from its top,
 * the rest as tree_fast_rows() does, and adds each row's leaf to its
 * sums; w and d are work space. */
__attribute__((target("avx2"))) static void
tree_top_rows_avx2(const struct tree_ensemble *e, size_t t,
    const struct tree_rows *r, struct tree_vwork *w, struct tree_deep *d)
{
	size_t splits = ((size_t)1 << TREE_CAP) - 1, n = r->n, i, k;
	const struct tree_cnode *cn = e->tops + t * splits;
	const uint32_t *ends = e->texit + t * (splits + 1);
	const struct tree_fnode *fn = e->fnodes, *nd;
	size_t sure = e->tsure[t] > TREE_CAP ? e->tsure[t] - TREE_CAP : 0;
	size_t steps = e->tsteps[t] > TREE_CAP ? e->tsteps[t] - TREE_CAP : 0;
	size_t first = tree_deep_steps(e->tsure[t], e->tsteps[t], TREE_CAP);
	uint32_t at[TREE_DEEP_WALKS];
	unsigned sh = r->shift;

	for (k = 0; k < splits; k++) {
		w->col[k] = r->xt + ((size_t)cn[k].feature << sh);
		w->cut[k] = _mm256_set1_ps(cn[k].thr);
	}
	d->np = 0;
	for (i = 0; i + TREE_DEEP_WALKS <= n; i += TREE_DEEP_WALKS) {
		for (k = 0; k < TREE_DEEP_WALKS; k += TREE_ROWS)
			tree_v_cap(w, i + k, at + k);
#pragma GCC unroll 16	/* TREE_DEEP_WALKS */
		for (k = 0; k < TREE_DEEP_WALKS; k++)
			at[k] = ends[at[k] - splits];
		tree_deep_first(e, r, d, i, at, first);
	}
	tree_deep_finish(e, r, d, steps - first);
	tree_deep_add(e, t, r, d, i);
	for (; i + TREE_ROWS <= n; i += TREE_ROWS)
		tree_top_walks(e, t, r, w, i, sure, steps);
	for (; i < n; i++) {
		const float *xf = r->xf + i * r->xf_stride;
		uint32_t a = e->froots[t];

		while ((nd = &fn[a])->delta != 0)
			a += nd->delta + (xf[nd->feature] > nd->thr);
		tree_add(e, tree_row_acc(r, i), t, e->fleaf[a]);
	}
}
#endif

/* Returns 1 if the vector walk may be used: the CPU has AVX2 and
 * model_simd() allows it. */
static int
tree_avx2(void)
{
#if TREE_AVX2
	return model_simd() && __builtin_cpu_supports("avx2");
#else
	return 0;
#endif
}

/* Returns 1 if a value of x[0..n) is missing (NaN), else 0. */
static int
tree_has_nan(const double *x, size_t n)
{
	size_t i;
	int nan = 0;

	for (i = 0; i < n; i++)
		nan |= isnan(x[i]);
	return nan;
}

/* Predicts the n rows of a block tree by tree: each tree's nodes are
 * fetched once for the whole block. The rows with a missing value are
 * walked too (where NaN leads does not matter) and then predicted again
 * by tree_predict(). out is laid out as model_predict_rows() does: each
 * part of a row follows the same part of the row before. */
static void
tree_block(const struct tree_ensemble *e, const struct model *m,
    const double *x, size_t stride, size_t n, struct prediction *out)
{
	struct tree_rows r;
	double *work;
	float *xt, *xf;
	size_t i, t, f;
	int vec = tree_avx2();		/* 0 without TREE_AVX2 */
#if TREE_AVX2
	struct tree_vwork vw;
#endif
	uint32_t end[TREE_BLOCK], pend[TREE_BLOCK];
	struct tree_deep deep = { end, pend, 0 };

	for (r.shift = 0; ((size_t)1 << r.shift) < n; r.shift++)
		continue;
	/* The work memory of the rows together holds, one after another: a
	 * regressor's sums (contiguous, where out[i].value is
	 * sizeof(*out) apart); the rows in float32 transposed (complete
	 * trees and the vector walk); the rows in float32 one after another
	 * (the fast walk). */
	work = out[0].work;
	if (m->task == MODEL_REGRESSION) {
		r.acc = (char *)work;
		r.acc_stride = sizeof(double);
		work += n;
	} else {
		r.acc = (char *)tree_acc(e, m, &out[0]);
		r.acc_stride = sizeof(double) * (e->agg == AGG_MEAN ?
		    m->n_classes : m->n_scores);
	}
	xt = (float *)work;
	xf = xt;
	if (e->cnodes != NULL || (vec && e->tops != NULL))
		xf = xt + (m->n_inputs << r.shift);
	r.xt = xt;
	r.xf = xf;
	r.xf_stride = m->n_inputs;
	for (i = 0; i < n; i++) {
		if (e->cnodes == NULL)
			tree_f32_row(x + i * stride, m->n_inputs,
			    xf + i * r.xf_stride);
		if (e->cnodes != NULL || (vec && e->tops != NULL))
			for (f = 0; f < m->n_inputs; f++)
				xt[(f << r.shift) + i] = (float)x[i * stride +
				    f];
		tree_start(e, m, &out[i]);
		if (m->task == MODEL_REGRESSION)
			*tree_row_acc(&r, i) = out[i].value;
	}
	r.n = n;
	for (t = 0; t < e->n_trees; t++) {
#if TREE_AVX2
		if (vec && e->cnodes != NULL && e->tsteps[t] >= TREE_CAP) {
			tree_complete_rows_avx2(e, t, &r, &vw);
			continue;
		}
		if (vec && e->cnodes == NULL && e->tops != NULL) {
			tree_top_rows_avx2(e, t, &r, &vw, &deep);
			continue;
		}
#endif
		if (e->cnodes != NULL)
			tree_complete_rows(e, t, &r);
		else
			tree_fast_rows(e, t, &r, &deep);
	}
	/* All sums out of the work memory before tree_predict() uses a
	 * row's. */
	for (i = 0; m->task == MODEL_REGRESSION && i < n; i++)
		out[i].value = *tree_row_acc(&r, i);
	for (i = 0; i < n; i++) {
		if (tree_has_nan(x + i * stride, m->n_inputs))
			tree_predict(e, m, x + i * stride, &out[i]);
		else
			tree_finish(e, m, tree_acc(e, m, &out[i]), &out[i]);
	}
}

static void
tree_predict_rows(const void *est, const struct model *m, const double *x,
    size_t stride, size_t n, struct prediction *out)
{
	const struct tree_ensemble *e = est;
	size_t b, i;

	if (e->fnodes == NULL) {
		for (i = 0; i < n; i++)
			tree_predict(e, m, x + i * stride, &out[i]);
		return;
	}
	for (b = 0; b < n; b += TREE_BLOCK)
		tree_block(e, m, x + b * stride, stride,
		    n - b < TREE_BLOCK ? n - b : TREE_BLOCK, out + b);
}

const struct estimator_ops model_tree_ops = {
	"tree_ensemble", tree_load, tree_predict, tree_free
};
