/* offline: JSON-lines scoring through the /predict route (see offline.h). */
#include "offline.h"

#include <stdlib.h>
#include <string.h>

long
offline_score(const struct route_env *env, FILE *in, FILE *out)
{
	struct route_scratch scratch;
	struct response res;
	struct request req;
	char *line = NULL, id[32];
	size_t cap = 0;
	ssize_t n;
	long lineno = 0, failed = 0;

	route_scratch_init(&scratch);
	response_init(&res);
	while ((n = getline(&line, &cap, in)) >= 0) {
		size_t len = (size_t)n, i;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' ||
		    line[len - 1] == '\r'))
			line[--len] = '\0';
		for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
			continue;
		if (i == len)
			continue;
		snprintf(id, sizeof(id), "line-%ld", lineno);
		memset(&req, 0, sizeof(req));
		req.method = "POST";
		req.path = "/predict";
		req.content_type = "application/json";
		req.request_id = id;
		req.body = line;
		req.body_len = len;
		req.body_too_large = len > env->max_body;
		req.start_ns = request_now_ns();
		response_reset(&res);
		route_handle(env, &req, &res, &scratch);
		if (res.status != 200)
			failed++;
		/* Close the object with the line number: {...,"line":N}. */
		res.body.len--;
		buf_printf(&res.body, ",\"line\":%ld}\n", lineno);
		if (fwrite(res.body.data, 1, res.body.len, out) != res.body.len) {
			failed = -1;
			break;
		}
	}
	free(line);
	response_free(&res);
	route_scratch_free(&scratch);
	if (fflush(out) != 0)
		return -1;
	return failed;
}
