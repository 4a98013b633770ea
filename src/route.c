/* route: the route table, path matching, and the small endpoints
 * (/health, /ready). */
#include "metrics.h"
#include "route.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void health_handle(struct route_call *);
static void ready_handle(struct route_call *);

/* The route table. A "{}" segment matches one non-empty path segment and
 * becomes a parameter. A path that matches with another method is a 405. */
static const struct route {
	const char	*pattern;
	const char	*method;
	const char	*allow;		/* the Allow header on 405 */
	void		(*fn)(struct route_call *);
} routes[] = {
	{ "/predict",				"POST",	"POST",	predict_handle },
	{ "/models/{}/predict",			"POST",	"POST",	predict_handle },
	{ "/models/{}/versions/{}/predict",	"POST",	"POST",	predict_handle },
	{ "/models",				"GET",	"GET, HEAD", models_list },
	{ "/models/{}",				"GET",	"GET, HEAD", models_show },
	{ "/health",				"GET",	"GET, HEAD", health_handle },
	{ "/ready",				"GET",	"GET, HEAD", ready_handle },
	{ "/metrics",				"GET",	"GET, HEAD", metrics_handle },
	/* KServe Open Inference Protocol v2 */
	{ "/v2/health/live",			"GET",	"GET, HEAD", kserve_live },
	{ "/v2/health/ready",			"GET",	"GET, HEAD", kserve_server_ready },
	{ "/v2",				"GET",	"GET, HEAD", kserve_server },
	{ "/v2/models/{}",			"GET",	"GET, HEAD", kserve_metadata },
	{ "/v2/models/{}/versions/{}",		"GET",	"GET, HEAD", kserve_metadata },
	{ "/v2/models/{}/ready",		"GET",	"GET, HEAD", kserve_model_ready },
	{ "/v2/models/{}/versions/{}/ready",	"GET",	"GET, HEAD", kserve_model_ready },
	{ "/v2/models/{}/infer",		"POST",	"POST",	kserve_infer },
	{ "/v2/models/{}/versions/{}/infer",	"POST",	"POST",	kserve_infer },
	/* MLflow scoring server */
	{ "/ping",				"GET",	"GET, HEAD", mlflow_ping },
	{ "/version",				"GET",	"GET, HEAD", mlflow_version },
	{ "/invocations",			"POST",	"POST",	mlflow_invocations },
	/* TensorFlow Serving REST */
	{ "/v1/models/{}",			"GET",	"GET, HEAD", tfs_status },
	{ "/v1/models/{}/versions/{}",		"GET",	"GET, HEAD", tfs_status },
	{ "/v1/models/{}:predict",		"POST",	"POST",	tfs_predict },
	{ "/v1/models/{}/versions/{}:predict",	"POST",	"POST",	tfs_predict },
	{ "/openapi.json",			"GET",	"GET, HEAD", openapi_handle },
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
	free(s->cached);
	free(s->results);
	buf_free(&s->row_json);
	buf_free(&s->tmp);
	free(s->row);
	free(s->preds);
	predict_pre_clear(s);
	free(s->pre.rows);
	free(s->pre.res);
	free(s->pre.first);
	free(s->pre.count);
	free(s->pre.batch);
	memset(s, 0, sizeof(*s));
}

/* Matches path against pattern, filling c's parameters. A "{}" ends at
 * the next '/', or at the pattern's next character if that is another
 * delimiter (TF Serving's "/v1/models/{}:predict"). Returns 1 on a match. */
static int
route_match(const char *pattern, const char *path, struct route_call *c)
{
	c->n_params = 0;
	while (*pattern != '\0') {
		if (strncmp(pattern, "{}", 2) == 0) {
			char stop[3] = { '/', pattern[2], '\0' };
			size_t n = strcspn(path, stop);

			if (n == 0 || c->n_params == 2)
				return 0;
			c->param[c->n_params].s = path;
			c->param[c->n_params++].n = n;
			pattern += 2;
			path += n;
			continue;
		}
		if (*pattern++ != *path++)
			return 0;
	}
	return *path == '\0';
}

static void
health_handle(struct route_call *c)
{
	buf_printf(&c->res->body, "{\"status\":\"healthy\",\"model_loaded\":%s}",
	    c->reg->dflt != NULL ? "true" : "false");
}

/* Ready when every served model predicts its test input and the audit
 * writer keeps up. */
static void
ready_handle(struct route_call *c)
{
	struct buf *b = &c->res->body;
	char why[256] = "";
	size_t i;
	int ready = c->reg->dflt != NULL;

	if (!ready)
		strcpy(why, "no model loaded");
	for (i = 0; ready && i < c->reg->n; i++)
		if (c->reg->entries[i].model != NULL &&
		    model_selftest(c->reg->entries[i].model, why,
		    sizeof(why)) < 0)
			ready = 0;
	if (ready && c->env->audit != NULL &&
	    !audit_healthy(c->env->audit, why, sizeof(why)))
		ready = 0;
	if (ready) {
		buf_puts(b, "{\"ready\":true}");
		return;
	}
	c->res->status = 503;
	buf_puts(b, "{\"ready\":false,\"error\":");
	buf_json_str(b, why);
	buf_putc(b, '}');
}

const struct model *
route_find_model(struct route_call *c, int *status, char *why, size_t len)
{
	const struct model *m;
	int n0 = (int)(c->param[0].n > 64 ? 64 : c->param[0].n);
	int n1 = (int)(c->param[1].n > 64 ? 64 : c->param[1].n);

	if (c->n_params == 0) {
		if (c->reg->dflt == NULL) {
			*status = 503;
			snprintf(why, len, "No model is loaded");
		}
		return c->model = c->reg->dflt;
	}
	m = registry_find(c->reg, c->param[0].s, c->param[0].n,
	    c->n_params > 1 ? c->param[1].s : NULL,
	    c->n_params > 1 ? c->param[1].n : 0);
	if (m != NULL)
		return c->model = m;
	*status = 404;
	if (c->n_params > 1 && registry_find(c->reg, c->param[0].s,
	    c->param[0].n, NULL, 0) != NULL)
		snprintf(why, len, "Model '%.*s' has no version '%.*s'", n0,
		    c->param[0].s, n1, c->param[1].s);
	else
		snprintf(why, len, "Model '%.*s' not found", n0,
		    c->param[0].s);
	return NULL;
}

const struct model *
route_model(struct route_call *c)
{
	const struct model *m;
	char why[256];
	int status;

	if ((m = route_find_model(c, &status, why, sizeof(why))) == NULL)
		response_error(c->res, status, why);
	return m;
}

/* Seconds since the request arrived. */
static double
route_seconds(const struct request *req)
{
	return req->start_ns ? (request_now_ns() - req->start_ns) / 1e9 : 0;
}

void
route_handle(const struct route_env *env, const struct request *req,
    struct response *res, struct route_scratch *s)
{
	const struct route *r, *other = NULL;
	struct route_call c;
	int head = strcmp(req->method, "HEAD") == 0;

	if (!request_id_valid_copy(req->request_id, res->request_id))
		request_id_generate(res->request_id);
	memset(&c, 0, sizeof(c));
	c.env = env;
	c.req = req;
	c.res = res;
	c.s = s;
	for (r = routes; r->pattern != NULL; r++) {
		if (!route_match(r->pattern, req->path, &c))
			continue;
		if (strcmp(req->method, r->method) == 0 ||
		    (head && strcmp(r->method, "GET") == 0))
			break;
		if (other == NULL)
			other = r;
	}
	if (r->pattern == NULL) {
		if (other != NULL) {
			res->allow = other->allow;
			response_error(res, 405, "Method Not Allowed");
		} else
			response_error(res, 404, "Not Found");
		metrics_request(other ? other->pattern : "unmatched", NULL,
		    res->status, route_seconds(req));
		return;
	}
	c.reg = registry_acquire(env->models);
	if (req->body_timed_out == 2)
		response_error(res, 408, "The request body took longer than "
		    "the body timeout to arrive");
	else if (req->body_timed_out)
		response_error(res, 408, "The request body stopped arriving "
		    "for longer than the I/O timeout");
	else
		r->fn(&c);
	metrics_request(r->pattern, c.model, res->status, route_seconds(req));
	registry_release((struct registry *)c.reg);
}
