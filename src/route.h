/* route: the core's entry point. Maps (method, path) to a handler and turns
 * a struct request into a struct response. Knows nothing of FastCGI.
 *
 * Thread-safety: route_handle() may run on many threads at once with one
 * shared route_env and one route_scratch per thread. Each call takes the
 * current model snapshot for its whole duration (see registry.h). */
#ifndef MLFCGI_ROUTE_H
#define MLFCGI_ROUTE_H

#include <stddef.h>

#include "audit.h"
#include "buf.h"
#include "input.h"
#include "model.h"
#include "registry.h"
#include "request.h"
#include "verr.h"

/* What every request thread shares. Owned by main(); outlives the
 * threads. */
struct route_env {
	struct registry_holder	*models;
	struct audit		*audit;		/* NULL: audit log off */
	size_t			 max_body;	/* for the 413 message */
	size_t			 max_batch;	/* most instances per request */
	int			 audit_sync;	/* answer after the row commits */
};

/* Bodies validated and rows predicted ahead, for offline scoring
 * (predict_prepare()): predict_handle() takes body cur's rows from here
 * instead of decoding it again when it handles reqs[cur] for model m,
 * and predict_run() takes row next's answer instead of predicting it
 * when its values are bit for bit rows[next]. */
struct predict_pre {
	struct model	*m;		/* a reference, or NULL: none */
	double		*rows;		/* n rows of m->schema.n values */
	double		*res;		/* n packed answers (result width) */
	size_t		 n, next;
	const struct request *reqs;	/* the bodies */
	size_t		 nreqs, cur;
	size_t		*first;		/* per body: its first row */
	size_t		*count;		/* its rows, or 0: not valid */
	unsigned char	*batch;		/* it is {"instances": [...]} */
	size_t		 rows_cap, res_cap, reqs_cap;
};

/* Per-thread working memory, reused from request to request so that the
 * request path allocates as little as possible. */
struct route_scratch {
	struct input	 in;
	struct input	 inst;		/* one instance of a batch */
	struct verrs	 errs;
	struct buf	 out;		/* the instances' output JSON objects */
	size_t		*out_end;	/* where each one ends in out */
	unsigned char	*cached;	/* per instance: from the cache */
	size_t		 out_cap;
	double		*results;	/* per instance: predict_result_width */
	size_t		 results_cap;
	struct buf	 row_json;	/* one instance's input JSON */
	struct buf	 tmp;
	double		*row;		/* rows, then model scratch for a block */
	size_t		 row_cap;
	struct prediction *preds;	/* a block's predictions */
	size_t		 preds_cap;
	struct predict_pre pre;
};

/* One request on its way through a handler. */
struct route_call {
	const struct route_env	*env;
	const struct registry	*reg;		/* this request's snapshot */
	const struct request	*req;
	struct response		*res;
	struct route_scratch	*s;
	const struct model	*model;		/* set by route_model() */
	const char		*why;		/* predict_run's failure */
	struct {
		const char	*s;
		size_t		 n;
	}			 param[2];	/* the path's {} segments */
	size_t			 n_params;
};

void	route_scratch_init(struct route_scratch *s);
void	route_scratch_free(struct route_scratch *s);

/* Answers req into res (which must be reset). Never fails: every problem
 * becomes an HTTP status and a JSON body. */
void	route_handle(const struct route_env *env, const struct request *req,
	    struct response *res, struct route_scratch *s);

/* The model a call names: the default for no parameter, else by name and
 * optional version. Answers 404 (503 with no model at all) and returns
 * NULL if there is none. route_find_model() answers nothing: it gives the
 * status and reason, for protocols with their own error shapes. */
const struct model *route_model(struct route_call *c);
const struct model *route_find_model(struct route_call *c, int *status,
	    char *why, size_t len);

/* The prediction pipeline, for /predict and the other protocols' routes
 * (each returns -1 after answering the error itself):
 * predict_check_body: 413, and 415 unless the body is JSON (or, unless
 *   json_only, a form); returns 1 for a form, 0 for JSON.
 * predict_validate_items: validates a JSON array of instances (all arrays
 *   in schema order, or all objects), at most max_batch, into the rows;
 *   errors go to c->s->errs at loc.
 * predict_rows_alloc: room for n rows (and the model's scratch), to fill
 *   directly with validated values.
 * predict_run: predicts n rows (through the model's cache), renders each
 *   instance's canonical output, and queues the audit rows (in durable
 *   mode, waits for them to be committed); on failure c->why says why.
 * predict_result: instance i's numbers after predict_run (proba and
 *   scores point into scratch memory valid until the next request).
 * predict_unprocessable: answers 422 with the collected errors.
 * predict_prepare: for offline scoring, validates the n /predict bodies
 *   in reqs against the default model and predicts the rows of those that
 *   validate together (model_predict_rows()), into s->pre. Answers
 *   nothing; with s->pre.cur set to i, route_handle() on reqs[i] then
 *   takes its rows and answers from there. predict_pre_clear() drops
 *   them. */
int	predict_check_body(struct route_call *c, int json_only);
int	predict_validate_items(struct route_call *c, const struct model *m,
	    const cJSON *arr, const struct verr_loc *loc, size_t *n);
double	*predict_rows_alloc(struct route_call *c, const struct model *m,
	    size_t n);
int	predict_run(struct route_call *c, const struct model *m, size_t n);
size_t	predict_result_width(const struct model *m);
void	predict_result(const struct route_call *c, const struct model *m,
	    size_t i, struct prediction *out);
int	predict_audit(struct route_call *c, const struct model *m, size_t n);
void	predict_unprocessable(struct route_call *c);
void	predict_prepare(const struct route_env *env, struct route_scratch *s,
	    const struct request *reqs, size_t n);
void	predict_pre_clear(struct route_scratch *s);

/* The handlers, one per endpoint. */
void	predict_handle(struct route_call *c);
void	models_list(struct route_call *c);
void	models_show(struct route_call *c);
void	kserve_live(struct route_call *c);
void	kserve_server_ready(struct route_call *c);
void	kserve_server(struct route_call *c);
void	kserve_metadata(struct route_call *c);
void	kserve_model_ready(struct route_call *c);
void	kserve_infer(struct route_call *c);
void	mlflow_ping(struct route_call *c);
void	mlflow_version(struct route_call *c);
void	mlflow_invocations(struct route_call *c);
void	tfs_status(struct route_call *c);
void	tfs_predict(struct route_call *c);
void	openapi_handle(struct route_call *c);

#endif
