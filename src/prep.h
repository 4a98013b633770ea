/* prep: a model's preprocessing, the steps between the validated feature row
 * (schema order, schema.n values) and the estimator's input (n_out values).
 *
 * A pipeline is loaded once from the model file's "preprocessing" array and
 * is immutable afterwards: prep_apply() may run on many threads at once.
 * Steps may change the width of the row (one-hot encoding, column
 * selection), so each records its n_in and n_out.
 *
 * Adding a step kind: a loader and an apply function in prep.c, and one
 * line in its table. */
#ifndef MLFCGI_PREP_H
#define MLFCGI_PREP_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct model_err;

struct prep_step;

struct prep {
	struct prep_step	*steps;
	size_t			 n_steps;
	size_t			 n_in;		/* the schema's width */
	size_t			 n_out;		/* the estimator's width */
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
