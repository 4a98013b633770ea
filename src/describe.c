/* describe: JSON descriptions of models and features (see describe.h). */
#include "describe.h"

#include <math.h>
#include <string.h>

/* Writes a category feature's "enum" (or, when unknown categories are
 * accepted, its known categories as "examples"), and its default. */
static void
describe_categories(struct buf *b, const struct feature *f)
{
	size_t k;

	buf_puts(b, f->unknown_ignore ? ",\"examples\":[" : ",\"enum\":[");
	for (k = 0; k < f->n_categories; k++) {
		if (k > 0)
			buf_putc(b, ',');
		buf_json_strn(b, f->categories[k], f->category_len[k]);
	}
	if (f->nullable && !f->unknown_ignore)
		buf_puts(b, ",null");
	buf_putc(b, ']');
	if (!f->required) {
		buf_puts(b, ",\"default\":");
		if (isnan(f->dflt))
			buf_puts(b, "null");
		else
			buf_json_strn(b, f->categories[(size_t)f->dflt],
			    f->category_len[(size_t)f->dflt]);
	}
}

void
describe_feature(struct buf *b, const struct feature *f)
{
	const char *type = f->type == FEATURE_INTEGER ? "integer" :
	    f->type == FEATURE_CATEGORY ? "string" : "number";

	buf_puts(b, "{\"type\":");
	if (f->nullable)
		buf_printf(b, "[\"%s\",\"null\"]", type);
	else
		buf_printf(b, "\"%s\"", type);
	if (f->type == FEATURE_CATEGORY)
		describe_categories(b, f);
	if (f->has_min) {
		buf_puts(b, f->min_exclusive ? ",\"exclusiveMinimum\":" :
		    ",\"minimum\":");
		buf_json_double(b, f->min);
	}
	if (f->has_max) {
		buf_puts(b, f->max_exclusive ? ",\"exclusiveMaximum\":" :
		    ",\"maximum\":");
		buf_json_double(b, f->max);
	}
	if (!f->required && f->type != FEATURE_CATEGORY) {
		buf_puts(b, ",\"default\":");
		buf_json_double(b, f->dflt);	/* NaN: null */
	}
	if (f->description != NULL) {
		buf_puts(b, ",\"description\":");
		buf_json_str(b, f->description);
	}
	buf_putc(b, '}');
}

void
describe_request_schema(struct buf *b, const struct model *m)
{
	size_t i, k = 0;

	buf_puts(b, "{\"type\":\"object\",\"properties\":{");
	for (i = 0; i < m->schema.n; i++) {
		const struct feature *f = &m->schema.features[i];

		if (i > 0)
			buf_putc(b, ',');
		buf_json_strn(b, f->name, f->name_len);
		buf_putc(b, ':');
		describe_feature(b, f);
	}
	buf_puts(b, "},\"required\":[");
	for (i = 0; i < m->schema.n; i++) {
		const struct feature *f = &m->schema.features[i];

		if (!f->required)
			continue;
		if (k++ > 0)
			buf_putc(b, ',');
		buf_json_strn(b, f->name, f->name_len);
	}
	buf_puts(b, "],\"additionalProperties\":false}");
}

void
describe_model(struct buf *b, const struct model *m)
{
	size_t i;

	buf_puts(b, "{\"name\":");
	buf_json_str(b, m->name);
	buf_puts(b, ",\"version\":");
	buf_json_str(b, m->version);
	buf_printf(b, ",\"task\":\"%s\",\"estimator\":",
	    m->task == MODEL_CLASSIFICATION ? "classification" : "regression");
	buf_json_str(b, m->est_ops->type);
	if (m->description != NULL) {
		buf_puts(b, ",\"description\":");
		buf_json_str(b, m->description);
	}
	buf_puts(b, ",\"features\":[");
	for (i = 0; i < m->schema.n; i++) {
		const struct feature *f = &m->schema.features[i];

		if (i > 0)
			buf_putc(b, ',');
		buf_puts(b, "{\"name\":");
		buf_json_strn(b, f->name, f->name_len);
		buf_printf(b, ",\"required\":%s,\"schema\":",
		    f->required ? "true" : "false");
		describe_feature(b, f);
		buf_putc(b, '}');
	}
	buf_putc(b, ']');
	if (m->task == MODEL_CLASSIFICATION) {
		buf_puts(b, ",\"classes\":[");
		for (i = 0; i < m->n_classes; i++)
			buf_printf(b, "%s%s", i ? "," : "", m->class_json[i]);
		buf_puts(b, "],\"class_names\":[");
		for (i = 0; i < m->n_classes; i++) {
			if (i > 0)
				buf_putc(b, ',');
			buf_json_str(b, m->class_names[i]);
		}
		buf_printf(b, "],\"probabilities\":%s",
		    m->has_proba ? "true" : "false");
	}
	buf_putc(b, '}');
}

const char *
describe_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Writes an error message with every occurrence of path shortened to its
 * file name, so that no directory reaches a client. */
static void
describe_error(struct buf *b, const char *error, const char *path)
{
	struct buf t = BUF_INIT;
	size_t n = strlen(path);
	const char *p = error, *hit;

	while ((hit = strstr(p, path)) != NULL) {
		buf_append(&t, p, (size_t)(hit - p));
		buf_puts(&t, describe_basename(path));
		p = hit + n;
	}
	buf_puts(&t, p);
	buf_json_str(b, t.data);
	buf_free(&t);
}

void
describe_versions(struct buf *b, const struct registry *r, const char *name,
    size_t len)
{
	size_t i, k = 0;

	buf_putc(b, '[');
	for (i = 0; i < r->n; i++) {
		const struct registry_entry *e = &r->entries[i];
		const struct model *m = e->model;

		if (m == NULL || strlen(m->name) != len ||
		    memcmp(m->name, name, len) != 0)
			continue;
		if (k++ > 0)
			buf_putc(b, ',');
		buf_puts(b, "{\"version\":");
		buf_json_str(b, m->version);
		buf_printf(b, ",\"state\":\"ready\",\"default\":%s",
		    m == r->dflt ? "true" : "false");
		buf_puts(b, ",\"file\":");
		buf_json_str(b, describe_basename(e->path));
		if (e->error != NULL) {
			/* A reload of this file failed; this is the version
			 * it had before. */
			buf_puts(b, ",\"reload_error\":");
			describe_error(b, e->error, e->path);
		}
		buf_putc(b, '}');
	}
	buf_putc(b, ']');
}
