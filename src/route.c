/* route: the route table and the small endpoints (/health, /ready). */
#include "route.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

typedef void (*route_fn)(const struct route_env *, const struct request *,
    struct response *, struct route_scratch *);

static void health_handle(const struct route_env *, const struct request *,
    struct response *, struct route_scratch *);
static void ready_handle(const struct route_env *, const struct request *,
    struct response *, struct route_scratch *);

/* The route table: exact paths below the mount point. */
static const struct route {
	const char	*path;
	const char	*method;	/* the method it answers */
	const char	*allow;		/* the Allow header on 405 */
	route_fn	 fn;
} routes[] = {
	{ "/predict",	"POST",	"POST",		predict_handle },
	{ "/health",	"GET",	"GET, HEAD",	health_handle },
	{ "/ready",	"GET",	"GET, HEAD",	ready_handle },
	{ NULL, NULL, NULL, NULL }
};

void
route_scratch_init(struct route_scratch *s)
{
	memset(s, 0, sizeof(*s));
	input_init(&s->in);
	input_init(&s->inst);
	verrs_init(&s->errs);
	buf_init(&s->out);
	buf_init(&s->row_json);
	buf_init(&s->tmp);
}

void
route_scratch_free(struct route_scratch *s)
{
	input_free(&s->in);
	input_free(&s->inst);
	verrs_free(&s->errs);
	buf_free(&s->out);
	free(s->out_end);
	buf_free(&s->row_json);
	buf_free(&s->tmp);
	free(s->row);
	memset(s, 0, sizeof(*s));
}

static void
health_handle(const struct route_env *env, const struct request *req,
    struct response *res, struct route_scratch *s)
{
	(void)req, (void)s;
	buf_printf(&res->body, "{\"status\":\"healthy\",\"model_loaded\":%s}",
	    env->model != NULL ? "true" : "false");
}

static void
ready_handle(const struct route_env *env, const struct request *req,
    struct response *res, struct route_scratch *s)
{
	char why[256] = "";
	int ready = 1;

	(void)req, (void)s;
	if (env->model == NULL)
		ready = 0, strcpy(why, "no model loaded");
	else if (model_selftest(env->model, why, sizeof(why)) < 0)
		ready = 0;
	else if (env->audit != NULL && !audit_healthy(env->audit, why,
	    sizeof(why)))
		ready = 0;
	if (ready) {
		buf_puts(&res->body, "{\"ready\":true}");
		return;
	}
	res->status = 503;
	buf_puts(&res->body, "{\"ready\":false,\"error\":");
	buf_json_str(&res->body, why);
	buf_putc(&res->body, '}');
}

void
route_handle(const struct route_env *env, const struct request *req,
    struct response *res, struct route_scratch *s)
{
	const struct route *r;
	int head;

	if (!request_id_valid_copy(req->request_id, res->request_id))
		request_id_generate(res->request_id);
	for (r = routes; r->path != NULL; r++)
		if (strcmp(r->path, req->path) == 0)
			break;
	if (r->path == NULL) {
		response_error(res, 404, "Not Found");
		return;
	}
	head = strcmp(req->method, "HEAD") == 0 &&
	    strcmp(r->method, "GET") == 0;
	if (strcmp(req->method, r->method) != 0 && !head) {
		res->allow = r->allow;
		response_error(res, 405, "Method Not Allowed");
		return;
	}
	r->fn(env, req, res, s);
}
