/* model_tree: decision trees and tree ensembles ("tree_ensemble"): forests
 * that average per-tree leaf values, and boosted trees that add raw scores
 * and apply a link, computed as scikit-learn computes them. This file reads
 * a model file's trees, checks them and builds the flat ensemble of
 * model_tree.h and its fast-walk copies; model_tree_walk.c predicts. */
#include "model_tree.h"
#include "xalloc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sizes of the arrays, counted before the one allocation. */
struct tree_sizes {
	size_t	nodes, values, words, max_nodes, known;
};

/* Scratch space for reading one tree's arrays. */
struct tree_scratch {
	long	*feature, *left, *right, *missing;
	double	*threshold, *value;
};

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
	 * three times (transposed, then one row after another, up to 64 floats
 * apart: tree_xf_stride()); a regressor,
	 * one double more (its sum). See tree_block(). */
	m->est_scratch = (e->cnodes != NULL ? m->n_inputs : e->tops != NULL ?
	    m->n_inputs + (tree_xf_stride(m->n_inputs) + 1) / 2 :
	    (m->n_inputs + 1) / 2) +
	    (m->task == MODEL_REGRESSION);
	m->est_predict_rows = tree_predict_rows;
	return e;
fail:
	tree_free(e);
	return NULL;
}


const struct estimator_ops model_tree_ops = {
	"tree_ensemble", tree_load, tree_predict, tree_free
};
