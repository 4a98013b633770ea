/* prep: preprocessing steps between the feature row and the estimator
 * (see prep.h). */
#include "model.h"
#include "prep.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct prep_step {
	const struct prep_kind	*kind;
	size_t			 n_in, n_out;
	double			*a;	/* per-kind parameters */
	double			*b;
};

/* One kind of step: its "type" in the model file, how to load its
 * parameters (setting n_out), and how to apply it. */
struct prep_kind {
	const char	*type;
	int		(*load)(struct prep_step *st, const cJSON *json,
			    const char *path, struct model_err *err);
	void		(*apply)(const struct prep_step *st, const double *in,
			    double *out);
};

static int
prep_load_standard(struct prep_step *st, const cJSON *json, const char *path,
    struct model_err *err)
{
	static const char *const keys[] = { "type", "mean", "scale", NULL };
	char p[96];
	size_t k;

	st->n_out = st->n_in;
	st->a = xcalloc(st->n_in, sizeof(double));
	st->b = xcalloc(st->n_in, sizeof(double));
	if (model_json_keys(json, keys, path, err) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s.mean", path);
	if (model_json_doubles(cJSON_GetObjectItemCaseSensitive(json, "mean"),
	    st->n_in, st->a, p, err) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s.scale", path);
	if (model_json_doubles(cJSON_GetObjectItemCaseSensitive(json, "scale"),
	    st->n_in, st->b, p, err) < 0)
		return -1;
	for (k = 0; k < st->n_in; k++)
		if (st->b[k] == 0) {
			model_errf(err, "%s[%zu]: a scale of 0", p, k);
			return -1;
		}
	return 0;
}

static void
prep_apply_standard(const struct prep_step *st, const double *in, double *out)
{
	size_t i;

	/* A division, as scikit-learn does, so results match to the bit. */
	for (i = 0; i < st->n_in; i++)
		out[i] = (in[i] - st->a[i]) / st->b[i];
}

static const struct prep_kind prep_kinds[] = {
	{ "standard_scaler", prep_load_standard, prep_apply_standard },
	{ NULL, NULL, NULL }
};

int
prep_load(struct prep *p, const cJSON *json, size_t n_in,
    struct model_err *err)
{
	const cJSON *sj;
	size_t i = 0, width = n_in, widest = n_in;

	memset(p, 0, sizeof(*p));
	p->n_in = p->n_out = n_in;
	if (json == NULL)
		return 0;
	if (!cJSON_IsArray(json)) {
		model_errf(err, "preprocessing: expected an array of steps");
		return -1;
	}
	p->steps = xcalloc((size_t)cJSON_GetArraySize(json) + 1,
	    sizeof(struct prep_step));
	cJSON_ArrayForEach(sj, json) {
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(sj, "type");
		struct prep_step *st = &p->steps[i];
		const struct prep_kind *k;
		char path[48];

		snprintf(path, sizeof(path), "preprocessing[%zu]", i);
		p->n_steps = ++i;
		if (!cJSON_IsObject(sj) || !cJSON_IsString(type)) {
			model_errf(err, "%s.type: expected a string", path);
			return -1;
		}
		for (k = prep_kinds; k->type != NULL; k++)
			if (strcmp(k->type, type->valuestring) == 0)
				break;
		if (k->type == NULL) {
			model_errf(err, "%s.type: unknown step \"%.64s\"", path,
			    type->valuestring);
			return -1;
		}
		st->kind = k;
		st->n_in = width;
		if (k->load(st, sj, path, err) < 0)
			return -1;
		width = st->n_out;
		if (width > widest)
			widest = width;
	}
	p->n_out = width;
	p->scratch = 2 * widest;
	return 0;
}

void
prep_free(struct prep *p)
{
	size_t i;

	for (i = 0; i < p->n_steps; i++) {
		free(p->steps[i].a);
		free(p->steps[i].b);
	}
	free(p->steps);
	memset(p, 0, sizeof(*p));
}

void
prep_apply(const struct prep *p, const double *row, double *out,
    double *scratch)
{
	const double *in = row;
	double *bufs[2] = { scratch, scratch + p->scratch / 2 };
	size_t i;

	if (p->n_steps == 0) {
		memcpy(out, row, p->n_in * sizeof(double));
		return;
	}
	for (i = 0; i < p->n_steps; i++) {
		double *dst = i + 1 == p->n_steps ? out : bufs[i % 2];

		p->steps[i].kind->apply(&p->steps[i], in, dst);
		in = dst;
	}
}
