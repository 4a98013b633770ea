/* model: a loaded model (schema, classes, preprocessing, estimator) and the
 * interface every estimator kind implements.
 *
 * A model is immutable once loaded: any number of threads may call
 * model_predict() on it at once. It is reference counted (the registry
 * shares one model between snapshots): model_load_*() returns it with one
 * reference, model_retain() adds one, model_free() drops one and frees the
 * model with the last.
 *
 * Adding an estimator kind: one new file src/model_<kind>.c defining a
 * struct estimator_ops, and one line in the table in model_load.c. */
#ifndef MLFCGI_MODEL_H
#define MLFCGI_MODEL_H

#include <stdatomic.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "prep.h"
#include "schema.h"

#define MODEL_FORMAT "mlfcgi-model/1"

enum model_task {
	MODEL_CLASSIFICATION,
	MODEL_REGRESSION
};

/* A loader error: which file and field, and what is wrong with it. */
struct model_err {
	char	msg[512];
};

/* The result of one prediction. proba and scores point into the scratch
 * memory given to model_predict(). */
struct prediction {
	double	 value;		/* regression output */
	size_t	 class_index;	/* classification: index into classes */
	double	*proba;		/* n_classes probabilities, if has_proba */
	double	*scores;	/* n_scores decision values, if n_scores */
	double	*work;		/* est_scratch doubles for the estimator */
};

struct model;

struct estimator_ops {
	const char	*type;	/* the estimator's "type" in the model file */
	/* Builds the estimator from its JSON object for model m (whose
	 * task, n_inputs and n_classes are set; has_proba is 1 and n_scores
	 * 0, and the loader changes them if its estimator differs; it sets
	 * est_scratch to the doubles of per-row work memory predict() needs,
	 * which predict() then finds at out->work). Returns NULL and fills
	 * err (naming the field, e.g. "estimator.coef[1]") on any problem. */
	void	*(*load)(const cJSON *json, struct model *m,
		    struct model_err *err);
	/* Predicts one preprocessed row of m->n_inputs values: sets value
	 * (regression) or class_index, and fills proba and scores as the
	 * model declares. Never fails; safe to call from many threads at
	 * once. */
	void	 (*predict)(const void *est, const struct model *m,
		    const double *x, struct prediction *out);
	void	 (*free)(void *est);
};

struct cache;

struct model {
	atomic_int		 refs;
	struct cache		*cache;		/* predictions, or NULL: off */
	char			*name;
	char			*version;
	char			*description;	/* or NULL */
	enum model_task		 task;
	struct schema		 schema;	/* the request's features */
	struct prep		 prep;		/* schema row -> estimator input */
	size_t			 n_inputs;	/* values the estimator sees */
	size_t			 n_classes;	/* 0 for regression */
	int			 has_proba;	/* classifier gives probabilities */
	size_t			 n_scores;	/* decision_function values, or 0 */
	size_t			 est_scratch;	/* per-row work doubles, or 0 */
	char			**class_json;	/* labels as JSON text: 0, "a" */
	char			**class_names;
	const struct estimator_ops *est_ops;
	void			*est;
	/* Optional, set by the estimator's loader (NULL: none): predicts
	 * the n preprocessed rows x, x + stride, ... into out[0..n), giving
	 * what predict() gives each row. Each out[i] is set up as for
	 * predict(), and the rows' parts follow each other: out[i].proba
	 * is out[0].proba + i * n_classes, scores + i * n_scores, work +
	 * i * est_scratch. Thread-safe. model_predict_rows() calls it. */
	void			(*est_predict_rows)(const void *est,
				    const struct model *m, const double *x,
				    size_t stride, size_t n,
				    struct prediction *out);
	double			*test_input;	/* schema.n values, valid */
};

/* Loads and checks a model file. Returns the model, or NULL with err
 * naming the file and the first bad field. */
struct model *model_load_file(const char *path, struct model_err *err);
/* The same from a document in memory; origin names it in errors. */
struct model *model_load_text(const char *text, size_t len,
	    const char *origin, struct model_err *err);
void	model_free(struct model *m);
struct model *model_retain(struct model *m);

/* The number of doubles of scratch memory model_predict() needs. */
size_t	model_scratch_size(const struct model *m);
/* Predicts a validated row (schema.n values), using scratch (of
 * model_scratch_size() doubles) for the preprocessed row and the outputs.
 * Thread-safe. */
void	model_predict(const struct model *m, const double *row,
	    double *scratch, struct prediction *out);
/* Predicts n validated rows (schema.n values each, one after another)
 * into out[0..n), each exactly as model_predict() would, using scratch of
 * n * model_scratch_size(m) doubles (out[i]'s proba and scores point into
 * it). Tree ensembles walk each tree for many rows at a time, several
 * times faster than a model_predict() per row. Thread-safe. */
void	model_predict_rows(const struct model *m, const double *rows,
	    size_t n, double *scratch, struct prediction *out);
/* Lets estimators use the CPU's vector instructions where they have a
 * path for them (on == 1, the default) or not (0: the portable code, which
 * gives the same bits; --no-simd, to compare). Call before predicting. */
void	model_set_simd(int on);
/* Returns what model_set_simd() last set. */
int	model_simd(void);
/* Returns 0 if every output of out is finite, -1 otherwise. */
int	model_output_finite(const struct model *m, const struct prediction *out);
/* Writes a prediction's JSON members, without braces:
 * "prediction":..,"label":..,"confidence":..,"probabilities":{..} for a
 * classifier, "prediction":.. for a regressor. */
void	model_render(const struct model *m, const struct prediction *out,
	    struct buf *b);
/* Writes a validated row as a JSON object keyed by feature name: numbers,
 * a category as its string ({"unknown":true} for an ignored unknown one),
 * a missing value as null. */
void	model_render_row(const struct model *m, const double *row,
	    struct buf *b);
/* Predicts test_input and checks the output is finite. Returns 0, or -1
 * with why filled. Thread-safe. */
int	model_selftest(const struct model *m, char *why, size_t whylen);

/* Helpers for estimator loaders. Each returns 0, or -1 with err naming
 * path (e.g. "estimator.coef[2]"). */
void	model_errf(struct model_err *err, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Reads exactly n finite numbers from a JSON array into out. */
int	model_json_doubles(const cJSON *arr, size_t n, double *out,
	    const char *path, struct model_err *err);
/* Reads an array of exactly rows arrays of cols finite numbers into a new
 * row-major array *out (rows * cols doubles, which the caller frees, on
 * failure too). The shape is checked before anything is allocated. */
int	model_json_matrix(const cJSON *arr, size_t rows, size_t cols,
	    double **out, const char *path, struct model_err *err);
/* Checks that obj has only the given keys (NULL-terminated list). */
int	model_json_keys(const cJSON *obj, const char *const *keys,
	    const char *path, struct model_err *err);
/* Sums n values exactly as numpy.sum does (pairwise, eight-way unrolled),
 * so that estimators reproduce scikit-learn's sums to the bit. */
double	model_sum(const double *a, size_t n);
/* Returns 1 if a value of x[0..n) is missing (NaN), else 0. */
int	model_has_nan(const double *x, size_t n);

extern const struct estimator_ops model_logistic_ops;
extern const struct estimator_ops model_linear_ops;
extern const struct estimator_ops model_linear_classifier_ops;
extern const struct estimator_ops model_svc_ops;
extern const struct estimator_ops model_svr_ops;
extern const struct estimator_ops model_mlp_ops;
extern const struct estimator_ops model_kneighbors_ops;
extern const struct estimator_ops model_gaussian_nb_ops;
extern const struct estimator_ops model_tree_ops;
extern const struct estimator_ops model_xgboost_ops;
/* Fills m (all of it) from XGBoost's own JSON model file root (the parsed
 * Booster.save_model output); origin, the path, gives the model's name.
 * Returns 0, or -1 with err naming the field (m is then to be freed). */
int	model_xgboost_build(const cJSON *root, struct model *m,
	    const char *origin, struct model_err *err);

#endif
