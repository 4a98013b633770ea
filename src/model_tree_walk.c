/* model_tree_walk: predicting with a tree ensemble (model_tree.h): one
 * row, or blocks of rows tree by tree, with an AVX2 walk where the CPU has
 * it. */
#include "model_tree.h"

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
/* Inner loops of the AVX2 walks in inline assembly (tree_asm_first(),
 * tree_asm_csteps()): GCC on x86-64, optimised builds without
 * AddressSanitizer (which may take registers the walks need); the C walk
 * otherwise, with the same answers. */
#if TREE_AVX2 && defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__clang__)
#define TREE_ASM 1
#else
#define TREE_ASM 0
#endif

/* Rows walked together through one tree (model_predict_rows()), as
 * TREE_GROUP trees are for one row. */
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
/* Rows that tree_predict_rows() walks through one tree before the next. */
#define TREE_BLOCK 4096

/* ------------------------------------------------------------ predicting */

static int
tree_has(const struct tree_ensemble *e, struct tree_set s, uint32_t c)
{
	return c / 32 < s.n && (e->words[s.off + c / 32] >> (c % 32)) & 1;
}

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
	int		 asm_rows;	/* xf for tree_asm_first(): no NaN */
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

/* Records the n walks i + k, now on nodes at[k], in d: where each got
 * to in d->end; those not on their leaf appended to d->pend. */
static inline void
tree_deep_record(const struct tree_ensemble *e, struct tree_deep *d,
    size_t i, const uint32_t *at, size_t n)
{
	size_t k, np = d->np;

#pragma GCC unroll 16	/* TREE_DEEP_WALKS */
	for (k = 0; k < n; k++) {
		d->end[i + k] = at[k];
		d->pend[np] = (uint32_t)(i + k);
		np += e->fnodes[at[k]].delta != 0;
	}
	d->np = np;
}

/* Takes the TREE_DEEP_WALKS walks i + k, from at[k], exactly steps
 * steps (the first pass of TREE_FIRST); records in d->end where each got
 * to, and appends to d->pend those not on their leaf. */
static inline void
tree_deep_first(const struct tree_ensemble *e, const struct tree_rows *r,
    struct tree_deep *d, size_t i, uint32_t *at, size_t steps)
{
	const float *row[TREE_DEEP_WALKS];
	size_t k;

#pragma GCC unroll 16	/* TREE_DEEP_WALKS */
	for (k = 0; k < TREE_DEEP_WALKS; k++)
		row[k] = r->xf + (i + k) * r->xf_stride;
	tree_walk_rows(e->fnodes, row, at, TREE_DEEP_WALKS, steps, steps);
	tree_deep_record(e, d, i, at, TREE_DEEP_WALKS);
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

	if (e->agg == AGG_MEAN && e->n_out <= 2) {
		/* A forest's one or two values a leaf, row after row: as
		 * tree_add_rows(), without its eight pointers at once. */
		const double *v;
		char *acc = r->acc;
		double *a;

		for (i = 0; i < n; i++, acc += r->acc_stride) {
			a = (double *)(void *)acc;
			v = e->values + e->fleaf[d->end[i]];
			a[0] += v[0];
			if (e->n_out == 2)
				a[1] += v[1];
		}
		return;
	}
	for (i = 0; i < n; i += TREE_ROWS) {
#pragma GCC unroll 8	/* TREE_ROWS */
		for (k = 0; k < TREE_ROWS; k++)
			leaf[k] = e->fleaf[d->end[i + k]];
		tree_add_rows(e, r, t, i, leaf);
	}
}

/* The steps of a first pass of pass levels (TREE_FIRST, or
 * TREE_ASM_FIRST) through trees whose leaves are sure to steps deep, for
 * walks that took skip steps before: pass - skip, but at least the steps
 * every walk needs and at most those any may need. */
static size_t
tree_deep_steps(size_t pass, size_t sure, size_t steps, size_t skip)
{
	size_t first = pass > skip ? pass - skip : 0;

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
			first = tree_deep_steps(TREE_FIRST, e->gsure[g], steps,
			    0);
			tree_deep_first(e, &r, &d, j, at, first);
			if (steps - first > rest)
				rest = steps - first;
		}
		tree_deep_finish(e, &r, &d, rest);
		for (j = 0; j < n; j++)
			tree_add(e, acc, c + j, e->fleaf[end[j]]);
	}
}

void
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
	size_t first = tree_deep_steps(TREE_FIRST, e->tsure[t],
	    e->tsteps[t], 0);

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

#if TREE_ASM
/* Walk k's step through a complete tree: its node index from at[k], the
 * node's feature offset and threshold, "vcomiss" of the threshold with
 * the row's value (carry: thr < x), then 2i + 1 + carry back to at[k].
 * Seven instructions where GCC makes ten of the C step. */
#define TREE_ASM_CSTEP(k)						\
	"movl " #k "*4(%[at]), %%eax\n\t"				\
	"movl 4(%[vn],%%rax,8), %%ecx\n\t"				\
	"vmovss (%[vn],%%rax,8), %%xmm0\n\t"				\
	"vcomiss " #k "*4(%[x],%%rcx,4), %%xmm0\n\t"			\
	"leal 1(%%rax,%%rax), %%eax\n\t"				\
	"adcl $0, %%eax\n\t"						\
	"movl %%eax, " #k "*4(%[at])\n\t"

/* Takes steps steps (at least 1) of the TREE_VROWS walks at[k] of the
 * rows x + k (transposed) down the complete tree vn. */
__attribute__((target("avx2"), noinline)) static void
tree_asm_csteps(const struct tree_vnode *vn, const float *x, unsigned steps,
    uint32_t *at)
{
	_Static_assert(TREE_VROWS == 32, "tree_asm_csteps()'s walks");
	__asm__ volatile(
	    "1:\n\t"
	    TREE_ASM_CSTEP(0) TREE_ASM_CSTEP(1) TREE_ASM_CSTEP(2)
	    TREE_ASM_CSTEP(3) TREE_ASM_CSTEP(4) TREE_ASM_CSTEP(5)
	    TREE_ASM_CSTEP(6) TREE_ASM_CSTEP(7) TREE_ASM_CSTEP(8)
	    TREE_ASM_CSTEP(9) TREE_ASM_CSTEP(10) TREE_ASM_CSTEP(11)
	    TREE_ASM_CSTEP(12) TREE_ASM_CSTEP(13) TREE_ASM_CSTEP(14)
	    TREE_ASM_CSTEP(15) TREE_ASM_CSTEP(16) TREE_ASM_CSTEP(17)
	    TREE_ASM_CSTEP(18) TREE_ASM_CSTEP(19) TREE_ASM_CSTEP(20)
	    TREE_ASM_CSTEP(21) TREE_ASM_CSTEP(22) TREE_ASM_CSTEP(23)
	    TREE_ASM_CSTEP(24) TREE_ASM_CSTEP(25) TREE_ASM_CSTEP(26)
	    TREE_ASM_CSTEP(27) TREE_ASM_CSTEP(28) TREE_ASM_CSTEP(29)
	    TREE_ASM_CSTEP(30) TREE_ASM_CSTEP(31)
	    "decl %[n]\n\t"
	    "jnz 1b\n\t"
	    : [n] "+r" (steps)
	    : [at] "r" (at), [vn] "r" (vn), [x] "r" (x)
	    : "rax", "rcx", "xmm0", "cc", "memory");
}
#endif

/* Takes steps more steps (1 to 5) of the walks at[0..rows) (rows 8 or
 * TREE_VROWS) of the rows at x (transposed), in the tree vn. */
__attribute__((target("avx2"), always_inline)) static inline void
tree_v_steps(const struct tree_vnode *vn, const float *x, unsigned steps,
    unsigned rows, uint32_t *at)
{
	const struct tree_vnode *c;
	unsigned d, k;

#if TREE_ASM
	if (rows == TREE_VROWS) {
		tree_asm_csteps(vn, x, steps, at);
		return;
	}
#endif
#pragma GCC unroll 5
	for (d = 0; d < steps; d++) {
#pragma GCC unroll 32	/* TREE_VROWS */
		for (k = 0; k < rows; k++) {
			c = &vn[at[k]];
			/* (x + k)[off], not x[off + k]: k goes into the
			 * load's displacement, one add less a step (7.7 %
			 * fewer instructions on GB-300). */
			at[k] = 2 * at[k] + 1 + ((x + k)[c->off] > c->thr);
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

/* The first pass through a deep tree in assembly (TREE_ASM):
 * TREE_ASM_WALKS walks, each in one register and nothing else,
 * so that no walk's state goes to the stack and back at every step. A
 * walk is its node's address / 8 (nodes are 8 bytes, 8-aligned), so a
 * step addresses the node without a base register; walk k's row is at a
 * fixed distance k * S floats from the first walk's (the block's rows
 * S floats apart, S a constant of the function). One step of one walk:
 * the node's feature, its offset to the children and its threshold,
 * then "comiss" of the threshold with the row's value, whose carry flag
 * (thr < x) "adc" adds to the walk with the offset: i + delta + (x >
 * thr), as tree_step(). A NaN would set the carry too and move a walk
 * off its leaf, so the rows a block walks this way have none (see
 * tree_block()). */
#if TREE_ASM
/* 11 walks, the row's base and two scratch registers: 14 of the 15
 * general registers, so that a build keeping the frame pointer fits. */
#define TREE_ASM_WALKS 11
/* The rows of a block walked TREE_ASM_WALKS at a time: the TREE_ROWS
 * rows of tree_v_cap() a whole number of times. */
#define TREE_ASM_ROWS 88
/* The levels of the first pass in assembly: as TREE_FIRST, but its
 * steps cost half as much, so that waiting for the deepest walk of a
 * group costs less than gathering the walks again: 13 -> 16 levels took
 * 9 % fewer instructions on RF-100 and 3-7 % less time. */
#define TREE_ASM_FIRST 16
/* Walk k's step; its row is k * S * 4 bytes after x. */
#define TREE_ASM_STEP(k, S)						\
	"movzwl 4(,%[a" #k "],8), %%ecx\n\t"				\
	"movzwl 6(,%[a" #k "],8), %%edx\n\t"				\
	"vmovss (,%[a" #k "],8), %%xmm0\n\t"				\
	"vcomiss " #k "*" #S "*4(%[x],%%rcx,4), %%xmm0\n\t"		\
	"adc %%rdx, %[a" #k "]\n\t"
/* tree_asm_walks_S(): takes the TREE_ASM_WALKS walks a[k] (node address
 * / 8) steps steps (at least 1) for the rows x + k * S. */
#define TREE_ASM_FN(S)							\
__attribute__((target("avx2"), noinline)) static void		\
tree_asm_walks_##S(uintptr_t *a, const float *x, unsigned steps)	\
{									\
	uintptr_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];		\
	uintptr_t a4 = a[4], a5 = a[5], a6 = a[6], a7 = a[7];		\
	uintptr_t a8 = a[8], a9 = a[9], a10 = a[10];			\
									\
	__asm__ volatile(						\
	    "1:\n\t"							\
	    TREE_ASM_STEP(0, S) TREE_ASM_STEP(1, S) TREE_ASM_STEP(2, S)	\
	    TREE_ASM_STEP(3, S) TREE_ASM_STEP(4, S) TREE_ASM_STEP(5, S)	\
	    TREE_ASM_STEP(6, S) TREE_ASM_STEP(7, S) TREE_ASM_STEP(8, S)	\
	    TREE_ASM_STEP(9, S) TREE_ASM_STEP(10, S)			\
	    "decl %[n]\n\t"						\
	    "jnz 1b\n\t"						\
	    : [a0] "+r" (a0), [a1] "+r" (a1), [a2] "+r" (a2),		\
	      [a3] "+r" (a3), [a4] "+r" (a4), [a5] "+r" (a5),		\
	      [a6] "+r" (a6), [a7] "+r" (a7), [a8] "+r" (a8),		\
	      [a9] "+r" (a9), [a10] "+r" (a10),				\
	      [n] "+m" (steps)						\
	    : [x] "r" (x)						\
	    : "rcx", "rdx", "xmm0", "cc", "memory");			\
	a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3; a[4] = a4;		\
	a[5] = a5; a[6] = a6; a[7] = a7; a[8] = a8; a[9] = a9;		\
	a[10] = a10;							\
}
TREE_ASM_FN(16)
TREE_ASM_FN(32)
TREE_ASM_FN(64)

/* Takes the TREE_ASM_ROWS walks of the rows i + k of r, from the nodes
 * at[k], exactly steps steps (1 or more); records them in d as
 * tree_deep_first() does. r->xf_stride is 16, 32 or 64. */
__attribute__((target("avx2"))) static void
tree_asm_first(const struct tree_ensemble *e, const struct tree_rows *r,
    struct tree_deep *d, size_t i, const uint32_t *at, unsigned steps)
{
	uintptr_t a[TREE_ASM_ROWS], fn = (uintptr_t)e->fnodes / 8;
	const float *x = r->xf + i * r->xf_stride;
	uint32_t end[TREE_ASM_ROWS];
	size_t k;

	for (k = 0; k < TREE_ASM_ROWS; k++)
		a[k] = fn + at[k];
	for (k = 0; k < TREE_ASM_ROWS; k += TREE_ASM_WALKS) {
		const float *xk = x + k * r->xf_stride;

		if (r->xf_stride == 16)
			tree_asm_walks_16(a + k, xk, steps);
		else if (r->xf_stride == 32)
			tree_asm_walks_32(a + k, xk, steps);
		else
			tree_asm_walks_64(a + k, xk, steps);
	}
	for (k = 0; k < TREE_ASM_ROWS; k++)
		end[k] = (uint32_t)(a[k] - fn);
	tree_deep_record(e, d, i, end, TREE_ASM_ROWS);
}
#endif

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
	size_t first = tree_deep_steps(TREE_FIRST, e->tsure[t], e->tsteps[t],
	    TREE_CAP);
	uint32_t at[TREE_DEEP_WALKS];
	unsigned sh = r->shift;

	for (k = 0; k < splits; k++) {
		w->col[k] = r->xt + ((size_t)cn[k].feature << sh);
		w->cut[k] = _mm256_set1_ps(cn[k].thr);
	}
	d->np = 0;
	i = 0;
#if TREE_ASM
	size_t asm_first = tree_deep_steps(TREE_ASM_FIRST, e->tsure[t],
	    e->tsteps[t], TREE_CAP);

	/* Walks that went further than first have fewer steps left than
	 * tree_deep_finish() is told below, which is harmless. */
	if (asm_first > 0 && r->asm_rows)
		for (; i + TREE_ASM_ROWS <= n; i += TREE_ASM_ROWS) {
			uint32_t aa[TREE_ASM_ROWS];

			for (k = 0; k < TREE_ASM_ROWS; k += TREE_ROWS)
				tree_v_cap(w, i + k, aa + k);
			for (k = 0; k < TREE_ASM_ROWS; k++)
				aa[k] = ends[aa[k] - splits];
			tree_asm_first(e, r, d, i, aa, (unsigned)asm_first);
		}
#endif
	for (; i + TREE_DEEP_WALKS <= n; i += TREE_DEEP_WALKS) {
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
	r.asm_rows = 0;
#if TREE_ASM
	/* The rows S floats apart, none with a NaN (those are predicted
	 * again below), for tree_asm_first(). */
	if (vec && e->cnodes == NULL && e->tops != NULL &&
	    m->n_inputs <= 64) {
		r.xf_stride = tree_xf_stride(m->n_inputs);
		r.asm_rows = 1;
	}
#endif
	for (i = 0; i < n; i++) {
		if (e->cnodes == NULL && tree_f32_row(x + i * stride,
		    m->n_inputs, xf + i * r.xf_stride) < 0 && r.asm_rows)
			memset(xf + i * r.xf_stride, 0,
			    m->n_inputs * sizeof(*xf));
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
		if (model_has_nan(x + i * stride, m->n_inputs))
			tree_predict(e, m, x + i * stride, &out[i]);
		else
			tree_finish(e, m, tree_acc(e, m, &out[i]), &out[i]);
	}
}

void
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
