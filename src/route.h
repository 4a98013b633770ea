/* route: the core's entry point. Maps (method, path) to a handler and turns
 * a struct request into a struct response. Knows nothing of FastCGI.
 *
 * Thread-safety: route_handle() may run on many threads at once with one
 * shared route_env (read-only) and one route_scratch per thread. */
#ifndef MLFCGI_ROUTE_H
#define MLFCGI_ROUTE_H

#include <stddef.h>

#include "audit.h"
#include "buf.h"
#include "input.h"
#include "model.h"
#include "request.h"
#include "verr.h"

/* What every request thread shares. Owned by main(); outlives the
 * threads. */
struct route_env {
	const struct model	*model;		/* the model /predict serves */
	struct audit		*audit;		/* NULL: audit log off */
	size_t			 max_body;	/* for the 413 message */
	size_t			 max_batch;	/* most instances per request */
};

/* Per-thread working memory, reused from request to request so that the
 * request path allocates as little as possible. */
struct route_scratch {
	struct input	 in;
	struct input	 inst;		/* one instance of a batch */
	struct verrs	 errs;
	struct buf	 out;		/* the instances' output JSON objects */
	size_t		*out_end;	/* where each one ends in out */
	struct buf	 row_json;	/* one instance's input JSON */
	struct buf	 tmp;
	double		*row;		/* rows, then model_scratch_size() */
	size_t		 row_cap;
};

void	route_scratch_init(struct route_scratch *s);
void	route_scratch_free(struct route_scratch *s);

/* Answers req into res (which must be reset). Never fails: every problem
 * becomes an HTTP status and a JSON body. */
void	route_handle(const struct route_env *env, const struct request *req,
	    struct response *res, struct route_scratch *s);

/* The handlers, one per endpoint. */
void	predict_handle(const struct route_env *env, const struct request *req,
	    struct response *res, struct route_scratch *s);

#endif
