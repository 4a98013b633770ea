/* model_tree: the flat tree ensemble that model_tree.c builds from a model
 * file and model_tree_walk.c walks to predict. Private to those two files;
 * the rest of mlfcgi reaches them through model_tree_ops (model.h). */
#ifndef MLFCGI_MODEL_TREE_H
#define MLFCGI_MODEL_TREE_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

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
 * memory loads are in flight: trees for one row (model_predict()). The
 * ensemble keeps the steps of each such group of trees (gsure, gsteps). */
#define TREE_GROUP 16	/* against 8: up to 1.8 x on fully grown forests */
/* Levels of a tree the vector walk decides for eight rows at once. */
#define TREE_CAP 3
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

/* The distance, in floats, between the rows of a block's float32 copy
 * for the fast walk of deep trees: 16, 32 or 64 where n inputs fit
 * (model_tree_walk.c's first pass in assembly needs one of these), else
 * n. */
static inline size_t
tree_xf_stride(size_t n)
{
	return n <= 16 ? 16 : n <= 32 ? 32 : n <= 64 ? 64 : n;
}

/* Predicts one row (estimator_ops.predict) and n rows x[i * stride]
 * (model.est_predict_rows), as model.h says: model_tree_walk.c. */
void	tree_predict(const void *, const struct model *, const double *,
	    struct prediction *);
void	tree_predict_rows(const void *, const struct model *, const double *,
	    size_t, size_t, struct prediction *);

#endif
