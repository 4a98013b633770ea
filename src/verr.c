/* verr: FastAPI-shaped validation error lists (see verr.h). */
#include "verr.h"

#include <string.h>

void
verrs_init(struct verrs *v)
{
	v->n = v->total = v->n_types = 0;
	v->first_type = NULL;
	buf_init(&v->out);
}

void
verrs_reset(struct verrs *v)
{
	v->n = v->total = v->n_types = 0;
	v->first_type = NULL;
	buf_reset(&v->out);
}

void
verrs_free(struct verrs *v)
{
	buf_free(&v->out);
	verrs_init(v);
}

void
verrs_add(struct verrs *v, const char *type, const struct verr_loc *loc,
    const char *msg, const struct value *input, const char *ctx_json)
{
	struct buf *b = &v->out;
	size_t i;

	if (v->total++ == 0)
		v->first_type = type;
	if (v->n >= VERR_MAX)
		return;
	v->types[v->n_types++] = type;
	if (v->n++ > 0)
		buf_putc(b, ',');
	buf_puts(b, "{\"type\":");
	buf_json_str(b, type);
	buf_puts(b, ",\"loc\":[\"body\"");
	for (i = 0; loc != NULL && i < loc->n; i++) {
		buf_putc(b, ',');
		if (loc->part[i].name != NULL)
			buf_json_strn_cut(b, loc->part[i].name,
			    loc->part[i].len, VERR_NAME_MAX);
		else
			buf_printf(b, "%ld", loc->part[i].index);
	}
	buf_puts(b, "],\"msg\":");
	buf_json_str(b, msg);
	buf_puts(b, ",\"input\":");
	if (input != NULL)
		value_render(b, input);
	else
		buf_puts(b, "null");
	if (ctx_json != NULL) {
		buf_puts(b, ",\"ctx\":");
		buf_puts(b, ctx_json);
	}
	buf_putc(b, '}');
}

void
verrs_render(const struct verrs *v, struct buf *b)
{
	buf_puts(b, "{\"detail\":[");
	if (v->out.len > 0)
		buf_append(b, v->out.data, v->out.len);
	buf_puts(b, "]}");
}

struct verr_loc
verr_loc_name(const struct verr_loc *loc, const char *name, size_t len)
{
	struct verr_loc l = { 0 };

	if (loc != NULL)
		l = *loc;
	if (l.n < 4) {
		l.part[l.n].name = name;
		l.part[l.n].len = len;
		l.n++;
	}
	return l;
}

struct verr_loc
verr_loc_index(const struct verr_loc *loc, long index)
{
	struct verr_loc l = { 0 };

	if (loc != NULL)
		l = *loc;
	if (l.n < 4) {
		l.part[l.n].name = NULL;
		l.part[l.n].index = index;
		l.n++;
	}
	return l;
}

void
verrs_summary(const struct verrs *v, struct buf *b)
{
	cJSON *root, *item, *part;
	struct buf t = BUF_INIT;
	int k = 0;

	verrs_render(v, &t);
	root = cJSON_Parse(t.data);
	buf_free(&t);
	cJSON_ArrayForEach(item, cJSON_GetObjectItem(root, "detail")) {
		const cJSON *msg = cJSON_GetObjectItem(item, "msg");

		if (k++ > 0)
			buf_puts(b, "; ");
		cJSON_ArrayForEach(part, cJSON_GetObjectItem(item, "loc")) {
			if (part != cJSON_GetObjectItem(item, "loc")->child)
				buf_putc(b, '.');
			if (cJSON_IsString(part))
				buf_puts(b, part->valuestring);
			else
				buf_printf(b, "%d", part->valueint);
		}
		buf_printf(b, ": %s", cJSON_IsString(msg) ? msg->valuestring :
		    "invalid");
	}
	if (v->total > v->n)
		buf_printf(b, "; and %zu more", v->total - v->n);
	cJSON_Delete(root);
}
