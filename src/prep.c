/* prep: preprocessing steps between the feature row and the estimator
 * (see prep.h and the step table in models/FORMAT.md). */
#include "model.h"
#include "prep.h"
#include "xalloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREP_NONE SIZE_MAX
#define PREP_PATH 320

struct prep_step {
	const struct prep_kind	*kind;
	size_t			 n_in, n_out;
	size_t			 need;	/* scratch doubles apply uses */
	void			*par;	/* the kind's parameters */
};

/* One kind of step: its "type" in the model file and its keys, how to load
 * its parameters (setting n_out and need), apply and free them. */
struct prep_kind {
	const char		*type;
	const char *const	*keys;
	int	(*load)(struct prep_step *st, const cJSON *json,
		    const char *path, int depth, struct model_err *err);
	void	(*apply)(const struct prep_step *st, const double *in,
		    double *out, double *scratch);
	void	(*free)(void *par);
};

/* standard_scaler: (x - a) / b. min_max_scaler: x * a + b, then clipped
 * to [lo, hi] if clip. */
struct prep_affine {
	double	*a, *b;
	int	 clip;
	double	 lo, hi;
};

/* simple_imputer: NaN in column keep[k] becomes fill[keep[k]]; then one
 * 0/1 column per ind[k], 1 where that input column was NaN. */
struct prep_imputer {
	double	*fill;
	size_t	*keep, n_keep;
	size_t	*ind, n_ind;
};

/* one_hot_encoder: input column j owns output block [off[j], off[j+1]).
 * Its values are vals[first[j] .. first[j+1]), sorted, each mapping to the
 * block position pos[]; NaN maps to nan_pos[j] (PREP_NONE: zeros). */
struct prep_onehot {
	size_t	*off, *first, *nan_pos, *pos;
	double	*vals;
};

struct prep_branch {
	size_t		*cols, n_cols;
	struct prep	 sub;
};

/* column_transformer: each branch's output, in order, concatenated. */
struct prep_columns {
	struct prep_branch	*br;
	size_t			 n_br;
};

static int	prep_load_at(struct prep *p, const cJSON *json, size_t n_in,
		    const char *path, int depth, struct model_err *err);

static void	prep_path(char *p, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));

/* Formats a field path into p (PREP_PATH bytes), cutting if too long. */
static void
prep_path(char *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p, PREP_PATH, fmt, ap);
	va_end(ap);
}

static const cJSON *
prep_get(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Reads an array of column indices below n_in (at least one; at most max)
 * into a new array *out of *n. */
static int
prep_indices(const cJSON *arr, size_t n_in, size_t max, size_t **out,
    size_t *n, const char *path, struct model_err *err)
{
	const cJSON *it;
	size_t k = 0;
	int size = cJSON_GetArraySize(arr);

	if (!cJSON_IsArray(arr) || size < 1 || (size_t)size > max) {
		model_errf(err, "%s: expected an array of 1 to %zu column "
		    "indices", path, max);
		return -1;
	}
	*out = xcalloc((size_t)size, sizeof(size_t));
	cJSON_ArrayForEach(it, arr) {
		double d = it->valuedouble;

		if (!cJSON_IsNumber(it) || d != floor(d) || d < 0 ||
		    d >= (double)n_in) {
			model_errf(err, "%s[%zu]: expected a column index from "
			    "0 to %zu", path, k, n_in - 1);
			return -1;
		}
		(*out)[k++] = (size_t)d;
	}
	*n = k;
	return 0;
}

static void
prep_affine_free(void *par)
{
	struct prep_affine *af = par;

	if (af != NULL) {
		free(af->a);
		free(af->b);
	}
	free(af);
}

/* Reads the two per-column arrays ka and kb of an affine step. */
static struct prep_affine *
prep_affine_load(struct prep_step *st, const cJSON *json, const char *ka,
    const char *kb, const char *path, struct model_err *err)
{
	struct prep_affine *af = xcalloc(1, sizeof(*af));
	char p[PREP_PATH];

	st->par = af;
	st->n_out = st->n_in;
	af->a = xcalloc(st->n_in, sizeof(double));
	af->b = xcalloc(st->n_in, sizeof(double));
	prep_path(p, "%s.%s", path, ka);
	if (model_json_doubles(prep_get(json, ka), st->n_in, af->a, p,
	    err) < 0)
		return NULL;
	prep_path(p, "%s.%s", path, kb);
	if (model_json_doubles(prep_get(json, kb), st->n_in, af->b, p,
	    err) < 0)
		return NULL;
	return af;
}

static int
prep_load_standard(struct prep_step *st, const cJSON *json, const char *path,
    int depth, struct model_err *err)
{
	struct prep_affine *af;
	size_t k;

	(void)depth;
	if ((af = prep_affine_load(st, json, "mean", "scale", path,
	    err)) == NULL)
		return -1;
	for (k = 0; k < st->n_in; k++)
		if (af->b[k] == 0) {
			model_errf(err, "%s.scale[%zu]: a scale of 0", path, k);
			return -1;
		}
	return 0;
}

static void
prep_apply_standard(const struct prep_step *st, const double *in,
    double *out, double *scratch)
{
	const struct prep_affine *af = st->par;
	size_t i;

	(void)scratch;
	/* A division, as scikit-learn does, so results match to the bit. */
	for (i = 0; i < st->n_in; i++)
		out[i] = (in[i] - af->a[i]) / af->b[i];
}

static int
prep_load_minmax(struct prep_step *st, const cJSON *json, const char *path,
    int depth, struct model_err *err)
{
	const cJSON *clip = prep_get(json, "clip");
	struct prep_affine *af;
	double range[2];
	char p[PREP_PATH];

	(void)depth;
	if ((af = prep_affine_load(st, json, "scale", "min", path,
	    err)) == NULL)
		return -1;
	if (clip == NULL)
		return 0;
	prep_path(p, "%s.clip", path);
	if (model_json_doubles(clip, 2, range, p, err) < 0)
		return -1;
	if (!(range[0] < range[1])) {
		model_errf(err, "%s: expected [low, high] with low < high", p);
		return -1;
	}
	af->clip = 1;
	af->lo = range[0];
	af->hi = range[1];
	return 0;
}

static void
prep_apply_minmax(const struct prep_step *st, const double *in, double *out,
    double *scratch)
{
	const struct prep_affine *af = st->par;
	size_t i;

	(void)scratch;
	/* Two roundings, as numpy's X *= scale; X += min (C11 mode does not
	 * contract this into a fused multiply-add). NaN stays NaN. */
	for (i = 0; i < st->n_in; i++) {
		double x = in[i] * af->a[i];

		x += af->b[i];
		if (af->clip && x < af->lo)
			x = af->lo;
		if (af->clip && x > af->hi)
			x = af->hi;
		out[i] = x;
	}
}

static void
prep_imputer_free(void *par)
{
	struct prep_imputer *im = par;

	if (im != NULL) {
		free(im->fill);
		free(im->keep);
		free(im->ind);
	}
	free(im);
}

static int
prep_load_imputer(struct prep_step *st, const cJSON *json, const char *path,
    int depth, struct model_err *err)
{
	struct prep_imputer *im = xcalloc(1, sizeof(*im));
	const cJSON *fill = prep_get(json, "fill"), *ind, *it;
	size_t k = 0;
	char p[PREP_PATH];

	(void)depth;
	st->par = im;
	if (!cJSON_IsArray(fill) ||
	    (size_t)cJSON_GetArraySize(fill) != st->n_in) {
		model_errf(err, "%s.fill: expected an array of %zu numbers or "
		    "nulls", path, st->n_in);
		return -1;
	}
	im->fill = xcalloc(st->n_in, sizeof(double));
	im->keep = xcalloc(st->n_in, sizeof(size_t));
	cJSON_ArrayForEach(it, fill) {
		if (cJSON_IsNull(it)) {
			k++;		/* scikit-learn drops the column */
			continue;
		}
		if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
			model_errf(err, "%s.fill[%zu]: expected a finite number "
			    "or null", path, k);
			return -1;
		}
		im->fill[k] = it->valuedouble;
		im->keep[im->n_keep++] = k++;
	}
	ind = prep_get(json, "indicator");
	prep_path(p, "%s.indicator", path);
	if (ind != NULL && prep_indices(ind, st->n_in, st->n_in, &im->ind,
	    &im->n_ind, p, err) < 0)
		return -1;
	st->n_out = im->n_keep + im->n_ind;
	return 0;
}

static void
prep_apply_imputer(const struct prep_step *st, const double *in, double *out,
    double *scratch)
{
	const struct prep_imputer *im = st->par;
	size_t k;

	(void)scratch;
	for (k = 0; k < im->n_keep; k++) {
		size_t c = im->keep[k];

		out[k] = isnan(in[c]) ? im->fill[c] : in[c];
	}
	for (k = 0; k < im->n_ind; k++)
		out[im->n_keep + k] = isnan(in[im->ind[k]]) ? 1.0 : 0.0;
}

static void
prep_onehot_free(void *par)
{
	struct prep_onehot *oh = par;

	if (oh != NULL) {
		free(oh->off);
		free(oh->first);
		free(oh->nan_pos);
		free(oh->pos);
		free(oh->vals);
	}
	free(oh);
}

/* Sorts entries [lo, hi) of vals and pos by value (a shell sort; load
 * time only). */
static void
prep_onehot_sort(double *vals, size_t *pos, size_t lo, size_t hi)
{
	size_t gap, i, j;

	for (gap = (hi - lo) / 2; gap > 0; gap /= 2)
		for (i = lo + gap; i < hi; i++) {
			double v = vals[i];
			size_t q = pos[i];

			for (j = i; j >= lo + gap && vals[j - gap] > v; j -= gap) {
				vals[j] = vals[j - gap];
				pos[j] = pos[j - gap];
			}
			vals[j] = v;
			pos[j] = q;
		}
}

/* Loads one input column's value list (numbers and at most one null). */
static int
prep_onehot_column(struct prep_onehot *oh, size_t j, const cJSON *list,
    const char *path, struct model_err *err)
{
	const cJSON *it;
	size_t k = 0, n = oh->first[j];

	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) < 1) {
		model_errf(err, "%s.categories[%zu]: expected a non-empty array "
		    "of numbers (or null)", path, j);
		return -1;
	}
	oh->nan_pos[j] = PREP_NONE;
	cJSON_ArrayForEach(it, list) {
		if (cJSON_IsNull(it) && oh->nan_pos[j] == PREP_NONE)
			oh->nan_pos[j] = k;
		else if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) {
			oh->vals[n] = it->valuedouble;
			oh->pos[n++] = k;
		} else {
			model_errf(err, "%s.categories[%zu][%zu]: expected a "
			    "finite number, or one null", path, j, k);
			return -1;
		}
		k++;
	}
	oh->first[j + 1] = n;
	oh->off[j + 1] = oh->off[j] + k;
	prep_onehot_sort(oh->vals, oh->pos, oh->first[j], n);
	for (k = oh->first[j] + 1; k < n; k++)
		if (oh->vals[k] == oh->vals[k - 1]) {
			model_errf(err, "%s.categories[%zu]: a value is listed "
			    "twice", path, j);
			return -1;
		}
	return 0;
}

static int
prep_load_onehot(struct prep_step *st, const cJSON *json, const char *path,
    int depth, struct model_err *err)
{
	struct prep_onehot *oh = xcalloc(1, sizeof(*oh));
	const cJSON *cats = prep_get(json, "categories"), *list;
	size_t j = 0, total = 0;

	(void)depth;
	st->par = oh;
	if (!cJSON_IsArray(cats) ||
	    (size_t)cJSON_GetArraySize(cats) != st->n_in) {
		model_errf(err, "%s.categories: expected %zu arrays, one per "
		    "input column", path, st->n_in);
		return -1;
	}
	cJSON_ArrayForEach(list, cats)
		total += (size_t)cJSON_GetArraySize(list);
	if (total > PREP_MAX_WIDTH) {
		model_errf(err, "%s.categories: more than %u in all", path,
		    PREP_MAX_WIDTH);
		return -1;
	}
	oh->off = xcalloc(st->n_in + 1, sizeof(size_t));
	oh->first = xcalloc(st->n_in + 1, sizeof(size_t));
	oh->nan_pos = xcalloc(st->n_in, sizeof(size_t));
	oh->pos = xcalloc(total + 1, sizeof(size_t));
	oh->vals = xcalloc(total + 1, sizeof(double));
	cJSON_ArrayForEach(list, cats)
		if (prep_onehot_column(oh, j++, list, path, err) < 0)
			return -1;
	st->n_out = oh->off[st->n_in];
	return 0;
}

/* Returns the block position of x among vals[lo, hi), or PREP_NONE. */
static size_t
prep_onehot_find(const struct prep_onehot *oh, size_t lo, size_t hi, double x)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (oh->vals[mid] == x)
			return oh->pos[mid];
		if (oh->vals[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return PREP_NONE;
}

static void
prep_apply_onehot(const struct prep_step *st, const double *in, double *out,
    double *scratch)
{
	const struct prep_onehot *oh = st->par;
	size_t j;

	(void)scratch;
	memset(out, 0, st->n_out * sizeof(double));
	for (j = 0; j < st->n_in; j++) {
		size_t k = isnan(in[j]) ? oh->nan_pos[j] :
		    prep_onehot_find(oh, oh->first[j], oh->first[j + 1], in[j]);

		/* Unknown (not listed): all zeros, as handle_unknown="ignore". */
		if (k != PREP_NONE)
			out[oh->off[j] + k] = 1.0;
	}
}

static void
prep_columns_free(void *par)
{
	struct prep_columns *ct = par;
	size_t b;

	if (ct == NULL)
		return;
	for (b = 0; b < ct->n_br; b++) {
		free(ct->br[b].cols);
		prep_free(&ct->br[b].sub);
	}
	free(ct->br);
	free(ct);
}

static int
prep_load_branch(struct prep_branch *br, const cJSON *bj, size_t n_in,
    const char *path, int depth, struct model_err *err)
{
	static const char *const keys[] = { "name", "columns", "steps", NULL };
	const cJSON *name = prep_get(bj, "name");
	char p[PREP_PATH];

	if (model_json_keys(bj, keys, path, err) < 0)
		return -1;
	if (name != NULL && !cJSON_IsString(name)) {
		model_errf(err, "%s.name: expected a string", path);
		return -1;
	}
	prep_path(p, "%s.columns", path);
	if (prep_indices(prep_get(bj, "columns"), n_in, PREP_MAX_WIDTH,
	    &br->cols, &br->n_cols, p, err) < 0)
		return -1;
	prep_path(p, "%s.steps", path);
	if (!cJSON_IsArray(prep_get(bj, "steps"))) {
		model_errf(err, "%s: expected an array of steps (empty: the "
		    "columns pass through)", p);
		return -1;
	}
	return prep_load_at(&br->sub, prep_get(bj, "steps"), br->n_cols, p,
	    depth + 1, err);
}

static int
prep_load_columns(struct prep_step *st, const cJSON *json, const char *path,
    int depth, struct model_err *err)
{
	struct prep_columns *ct = xcalloc(1, sizeof(*ct));
	const cJSON *brs = prep_get(json, "branches"), *bj;
	char p[PREP_PATH];

	st->par = ct;
	if (depth >= PREP_MAX_DEPTH) {
		model_errf(err, "%s: column transformers nested more than %d "
		    "deep", path, PREP_MAX_DEPTH);
		return -1;
	}
	if (!cJSON_IsArray(brs) || cJSON_GetArraySize(brs) < 1) {
		model_errf(err, "%s.branches: expected a non-empty array",
		    path);
		return -1;
	}
	ct->br = xcalloc((size_t)cJSON_GetArraySize(brs), sizeof(*ct->br));
	cJSON_ArrayForEach(bj, brs) {
		struct prep_branch *br = &ct->br[ct->n_br];
		size_t need;

		prep_path(p, "%s.branches[%zu]", path, ct->n_br);
		ct->n_br++;
		if (prep_load_branch(br, bj, st->n_in, p, depth, err) < 0)
			return -1;
		if (br->sub.n_out > PREP_MAX_WIDTH - st->n_out) {
			model_errf(err, "%s: the output is wider than %u", path,
			    PREP_MAX_WIDTH);
			return -1;
		}
		st->n_out += br->sub.n_out;
		need = br->sub.n_steps == 0 ? 0 : br->n_cols + br->sub.scratch;
		if (need > st->need)
			st->need = need;
	}
	return 0;
}

static void
prep_apply_columns(const struct prep_step *st, const double *in, double *out,
    double *scratch)
{
	const struct prep_columns *ct = st->par;
	size_t b, c;

	for (b = 0; b < ct->n_br; b++) {
		const struct prep_branch *br = &ct->br[b];
		double *dst = br->sub.n_steps == 0 ? out : scratch;

		for (c = 0; c < br->n_cols; c++)
			dst[c] = in[br->cols[c]];
		if (br->sub.n_steps > 0)
			prep_apply(&br->sub, scratch, out, scratch + br->n_cols);
		out += br->sub.n_out;
	}
}

static const char *const prep_standard_keys[] = { "type", "mean", "scale",
	NULL };
static const char *const prep_minmax_keys[] = { "type", "scale", "min",
	"clip", NULL };
static const char *const prep_imputer_keys[] = { "type", "fill", "indicator",
	NULL };
static const char *const prep_onehot_keys[] = { "type", "categories", NULL };
static const char *const prep_columns_keys[] = { "type", "branches", NULL };

static const struct prep_kind prep_kinds[] = {
	{ "standard_scaler", prep_standard_keys, prep_load_standard,
	  prep_apply_standard, prep_affine_free },
	{ "min_max_scaler", prep_minmax_keys, prep_load_minmax,
	  prep_apply_minmax, prep_affine_free },
	{ "simple_imputer", prep_imputer_keys, prep_load_imputer,
	  prep_apply_imputer, prep_imputer_free },
	{ "one_hot_encoder", prep_onehot_keys, prep_load_onehot,
	  prep_apply_onehot, prep_onehot_free },
	{ "column_transformer", prep_columns_keys, prep_load_columns,
	  prep_apply_columns, prep_columns_free },
	{ NULL, NULL, NULL, NULL, NULL }
};

/* Loads one step for rows of st->n_in values. */
static int
prep_load_step(struct prep_step *st, const cJSON *sj, const char *path,
    int depth, struct model_err *err)
{
	const cJSON *type = prep_get(sj, "type");
	const struct prep_kind *k;

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
	if (model_json_keys(sj, k->keys, path, err) < 0 ||
	    k->load(st, sj, path, depth, err) < 0)
		return -1;
	if (st->n_out == 0 || st->n_out > PREP_MAX_WIDTH) {
		model_errf(err, "%s: the step outputs %zu columns (1 to %u "
		    "allowed)", path, st->n_out, PREP_MAX_WIDTH);
		return -1;
	}
	return 0;
}

/* Loads the steps array json (NULL: none) under path, at nesting depth. */
static int
prep_load_at(struct prep *p, const cJSON *json, size_t n_in, const char *path,
    int depth, struct model_err *err)
{
	const cJSON *sj;
	size_t i = 0, width = n_in, widest = n_in, need = 0;

	memset(p, 0, sizeof(*p));
	p->n_in = p->n_out = n_in;
	if (json == NULL)
		return 0;
	if (!cJSON_IsArray(json)) {
		model_errf(err, "%s: expected an array of steps", path);
		return -1;
	}
	p->steps = xcalloc((size_t)cJSON_GetArraySize(json) + 1,
	    sizeof(struct prep_step));
	cJSON_ArrayForEach(sj, json) {
		struct prep_step *st = &p->steps[i];
		char sp[PREP_PATH];

		prep_path(sp, "%s[%zu]", path, i);
		p->n_steps = ++i;
		st->n_in = width;
		if (prep_load_step(st, sj, sp, depth, err) < 0)
			return -1;
		width = st->n_out;
		if (width > widest)
			widest = width;
		if (st->need > need)
			need = st->need;
	}
	p->n_out = width;
	p->widest = widest;
	p->scratch = 2 * widest + need;
	return 0;
}

int
prep_load(struct prep *p, const cJSON *json, size_t n_in,
    struct model_err *err)
{
	return prep_load_at(p, json, n_in, "preprocessing", 0, err);
}

void
prep_free(struct prep *p)
{
	size_t i;

	for (i = 0; i < p->n_steps; i++)
		if (p->steps[i].kind != NULL)
			p->steps[i].kind->free(p->steps[i].par);
	free(p->steps);
	memset(p, 0, sizeof(*p));
}

void
prep_apply(const struct prep *p, const double *row, double *out,
    double *scratch)
{
	const double *in = row;
	double *bufs[2], *extra;
	size_t i;

	if (p->n_steps == 0) {
		memcpy(out, row, p->n_in * sizeof(double));
		return;
	}
	bufs[0] = scratch;
	bufs[1] = scratch + p->widest;
	extra = scratch + 2 * p->widest;
	for (i = 0; i < p->n_steps; i++) {
		double *dst = i + 1 == p->n_steps ? out : bufs[i % 2];

		p->steps[i].kind->apply(&p->steps[i], in, dst, extra);
		in = dst;
	}
}
