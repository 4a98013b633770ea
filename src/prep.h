/* prep: a model's preprocessing, the steps between the validated feature row
 * (schema order, schema.n values) and the estimator's input (n_out values).
 *
 * A pipeline is loaded once from the model file's "preprocessing" array and
 * is immutable afterwards: prep_apply() may run on many threads at once.
 * Steps may change the width of the row (one-hot encoding, imputers that
 * drop or add columns, column transformers), so each records its n_in and
 * n_out. A column_transformer step holds branches, each a list of column
 * indices into its input and a pipeline of its own (a struct prep), whose
 * outputs are concatenated.
 *
 * Missing values are NaN; a category is its index in the feature's list
 * (SCHEMA_UNKNOWN when unknown and ignored). Steps never fail at apply time.
 *
 * Adding a step kind: its parameters, a loader, an apply and a free
 * function in prep.c, and one line in its table. */
#ifndef MLFCGI_PREP_H
#define MLFCGI_PREP_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Widest row any step may produce. */
#define PREP_MAX_WIDTH (1u << 22)
/* Deepest nesting of column transformers. */
#define PREP_MAX_DEPTH 8

struct model_err;

struct prep_step;

struct prep {
	struct prep_step	*steps;
	size_t			 n_steps;
	size_t			 n_in;		/* the schema's width */
	size_t			 n_out;		/* the estimator's width */
	size_t			 widest;	/* widest row between steps */
	size_t			 scratch;	/* doubles prep_apply needs */
};

/* Loads the steps of json (an array, or NULL for none) for rows of n_in
 * values. Returns 0, or -1 with err naming the field
 * ("preprocessing[1].scale[3]"). On failure p must still be freed. */
int	prep_load(struct prep *p, const cJSON *json, size_t n_in,
	    struct model_err *err);
void	prep_free(struct prep *p);
/* Transforms row (n_in values) into out (n_out values). scratch holds
 * p->scratch doubles. Thread-safe; never fails. */
void	prep_apply(const struct prep *p, const double *row, double *out,
	    double *scratch);

#endif
