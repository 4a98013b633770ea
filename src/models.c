/* models: GET /models and GET /models/{name}, what is loaded and in which
 * state. */
#include "describe.h"
#include "route.h"

#include <string.h>

void
models_list(struct route_call *c)
{
	const struct registry *r = c->reg;
	struct buf *b = &c->res->body;
	size_t i, k = 0;

	buf_puts(b, "{\"models\":[");
	for (i = 0; i < r->n; i++) {
		const struct registry_entry *e = &r->entries[i];
		const struct model *m = e->model;

		/* One object per name, at its first (lowest) version. */
		if (m != NULL && i > 0 && r->entries[i - 1].model != NULL &&
		    strcmp(r->entries[i - 1].model->name, m->name) == 0)
			continue;
		if (k++ > 0)
			buf_putc(b, ',');
		if (m == NULL) {
			/* A file that never loaded: no name to show. */
			buf_puts(b, "{\"file\":");
			buf_json_str(b, describe_basename(e->path));
			buf_puts(b, ",\"state\":\"failed\",\"error\":");
			buf_json_str(b, strstr(e->error, ": ") ?
			    strstr(e->error, ": ") + 2 : e->error);
			buf_putc(b, '}');
			continue;
		}
		buf_puts(b, "{\"name\":");
		buf_json_str(b, m->name);
		buf_printf(b, ",\"task\":\"%s\",\"versions\":",
		    m->task == MODEL_CLASSIFICATION ? "classification" :
		    "regression");
		describe_versions(b, r, m->name, strlen(m->name));
		buf_putc(b, '}');
	}
	buf_puts(b, "],\"default\":");
	if (r->dflt != NULL) {
		buf_puts(b, "{\"name\":");
		buf_json_str(b, r->dflt->name);
		buf_puts(b, ",\"version\":");
		buf_json_str(b, r->dflt->version);
		buf_putc(b, '}');
	} else
		buf_puts(b, "null");
	buf_printf(b, ",\"generation\":%lu}", r->generation);
}

void
models_show(struct route_call *c)
{
	const struct model *m = route_model(c);
	struct buf *b = &c->res->body;

	if (m == NULL)
		return;
	describe_model(b, m);
	/* Add the versions of this name to the latest version's object. */
	b->len--;
	buf_puts(b, ",\"versions\":");
	describe_versions(b, c->reg, m->name, strlen(m->name));
	buf_putc(b, '}');
}
