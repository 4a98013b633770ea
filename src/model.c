/* model: prediction, rendering and the shared loader helpers (see model.h). */
#include "cache.h"
#include "model.h"
#include "xalloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct model *
model_retain(struct model *m)
{
	atomic_fetch_add(&m->refs, 1);
	return m;
}

void
model_free(struct model *m)
{
	size_t i;

	if (m == NULL || atomic_fetch_sub(&m->refs, 1) > 1)
		return;
	cache_free(m->cache);
	free(m->name);
	free(m->version);
	free(m->description);
	schema_free(&m->schema);
	for (i = 0; i < m->n_classes; i++) {
		if (m->class_json != NULL)
			free(m->class_json[i]);
		if (m->class_names != NULL)
			free(m->class_names[i]);
	}
	free(m->class_json);
	free(m->class_names);
	prep_free(&m->prep);
	if (m->est_ops != NULL && m->est != NULL)
		m->est_ops->free(m->est);
	free(m->test_input);
	free(m);
}

/* Set once at start-up (model_set_simd()), then only read. */
static int model_simd_on = 1;

void
model_set_simd(int on)
{
	model_simd_on = on != 0;
}

int
model_simd(void)
{
	return model_simd_on;
}

size_t
model_scratch_size(const struct model *m)
{
	return m->n_inputs + m->prep.scratch + m->n_classes + m->n_scores +
	    m->est_scratch;
}

/* Sets out up in scratch and preprocesses row into its start, the
 * estimator's input. */
static void
model_setup(const struct model *m, const double *row, double *scratch,
    struct prediction *out)
{
	out->proba = scratch + m->n_inputs;
	out->scores = out->proba + m->n_classes;
	out->work = out->scores + m->n_scores + m->prep.scratch;
	prep_apply(&m->prep, row, scratch, out->scores + m->n_scores);
	out->value = 0;
	out->class_index = 0;
}

void
model_predict(const struct model *m, const double *row, double *scratch,
    struct prediction *out)
{
	model_setup(m, row, scratch, out);
	m->est_ops->predict(m->est, m, scratch, out);
}

void
model_predict_rows(const struct model *m, const double *rows, size_t n,
    double *scratch, struct prediction *out)
{
	double *x = scratch, *proba = x + n * m->n_inputs;
	double *scores = proba + n * m->n_classes;
	double *work = scores + n * m->n_scores, *prep = work + n *
	    m->est_scratch;
	size_t i;

	if (m->est_predict_rows == NULL) {
		for (i = 0; i < n; i++)
			model_predict(m, rows + i * m->schema.n,
			    scratch + i * model_scratch_size(m), &out[i]);
		return;
	}
	/* Each part for all rows together: inputs, probabilities, scores,
	 * work memory, then one preprocessing scratch. */
	for (i = 0; i < n; i++) {
		out[i].proba = proba + i * m->n_classes;
		out[i].scores = scores + i * m->n_scores;
		out[i].work = work + i * m->est_scratch;
		out[i].value = 0;
		out[i].class_index = 0;
		prep_apply(&m->prep, rows + i * m->schema.n, x + i * m->n_inputs,
		    prep);
	}
	m->est_predict_rows(m->est, m, x, m->n_inputs, n, out);
}

int
model_output_finite(const struct model *m, const struct prediction *out)
{
	size_t k;

	if (m->task == MODEL_REGRESSION)
		return isfinite(out->value) ? 0 : -1;
	for (k = 0; m->has_proba && k < m->n_classes; k++)
		if (!isfinite(out->proba[k]))
			return -1;
	for (k = 0; k < m->n_scores; k++)
		if (!isfinite(out->scores[k]))
			return -1;
	return 0;
}

/* "confidence" and "probabilities" keyed by class name. */
static void
model_render_proba(const struct model *m, const struct prediction *out,
    struct buf *b)
{
	size_t k;

	buf_puts(b, ",\"confidence\":");
	buf_json_double(b, out->proba[out->class_index]);
	buf_puts(b, ",\"probabilities\":{");
	for (k = 0; k < m->n_classes; k++) {
		if (k > 0)
			buf_putc(b, ',');
		buf_json_str(b, m->class_names[k]);
		buf_putc(b, ':');
		buf_json_double(b, out->proba[k]);
	}
	buf_putc(b, '}');
}

/* As scikit-learn's decision_function: a number for one score, else an
 * array. */
static void
model_render_scores(const struct model *m, const struct prediction *out,
    struct buf *b)
{
	size_t k;

	buf_puts(b, ",\"decision_function\":");
	if (m->n_scores > 1)
		buf_putc(b, '[');
	for (k = 0; k < m->n_scores; k++) {
		if (k > 0)
			buf_putc(b, ',');
		buf_json_double(b, out->scores[k]);
	}
	if (m->n_scores > 1)
		buf_putc(b, ']');
}

void
model_render(const struct model *m, const struct prediction *out,
    struct buf *b)
{
	buf_puts(b, "\"prediction\":");
	if (m->task == MODEL_REGRESSION) {
		buf_json_double(b, out->value);
		return;
	}
	buf_puts(b, m->class_json[out->class_index]);
	buf_puts(b, ",\"label\":");
	buf_json_str(b, m->class_names[out->class_index]);
	if (m->has_proba)
		model_render_proba(m, out, b);
	if (m->n_scores > 0)
		model_render_scores(m, out, b);
}

void
model_render_row(const struct model *m, const double *row, struct buf *b)
{
	size_t i;

	buf_putc(b, '{');
	for (i = 0; i < m->schema.n; i++) {
		const struct feature *f = &m->schema.features[i];

		if (i > 0)
			buf_putc(b, ',');
		buf_json_strn(b, f->name, f->name_len);
		buf_putc(b, ':');
		/* A category as its string; missing (NaN) as null. */
		if (f->type != FEATURE_CATEGORY || isnan(row[i]))
			buf_json_decimal(b, row[i]);
		else if (row[i] == SCHEMA_UNKNOWN)
			buf_puts(b, "{\"unknown\":true}");
		else
			buf_json_strn(b, f->categories[(size_t)row[i]],
			    f->category_len[(size_t)row[i]]);
	}
	buf_putc(b, '}');
}

int
model_selftest(const struct model *m, char *why, size_t whylen)
{
	double *scratch = xcalloc(model_scratch_size(m) + 1, sizeof(double));
	struct prediction out;
	int rc;

	model_predict(m, m->test_input, scratch, &out);
	rc = model_output_finite(m, &out);
	if (rc < 0)
		snprintf(why, whylen, "model %s %s: test prediction is not "
		    "finite", m->name, m->version);
	free(scratch);
	return rc;
}

void
model_errf(struct model_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

int
model_json_doubles(const cJSON *arr, size_t n, double *out, const char *path,
    struct model_err *err)
{
	const cJSON *item;
	size_t i = 0;

	if (!cJSON_IsArray(arr)) {
		model_errf(err, "%s: expected an array of %zu numbers", path, n);
		return -1;
	}
	cJSON_ArrayForEach(item, arr) {
		if (i >= n)
			break;
		if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble)) {
			model_errf(err, "%s[%zu]: expected a finite number",
			    path, i);
			return -1;
		}
		out[i++] = item->valuedouble;
	}
	if (i != n || (size_t)cJSON_GetArraySize(arr) != n) {
		model_errf(err, "%s: expected %zu numbers, found %d", path, n,
		    cJSON_GetArraySize(arr));
		return -1;
	}
	return 0;
}

int
model_json_matrix(const cJSON *arr, size_t rows, size_t cols, double **out,
    const char *path, struct model_err *err)
{
	const cJSON *row;
	char at[160];
	size_t r = 0;

	*out = NULL;
	if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != rows) {
		model_errf(err, "%s: expected an array of %zu rows", path, rows);
		return -1;
	}
	cJSON_ArrayForEach(row, arr) {
		if (!cJSON_IsArray(row) ||
		    (size_t)cJSON_GetArraySize(row) != cols) {
			model_errf(err, "%s[%zu]: expected an array of %zu "
			    "numbers", path, r, cols);
			return -1;
		}
		r++;
	}
	*out = xcalloc(rows * cols + 1, sizeof(double));
	r = 0;
	cJSON_ArrayForEach(row, arr) {
		snprintf(at, sizeof(at), "%s[%zu]", path, r);
		if (model_json_doubles(row, cols, *out + r * cols, at, err) < 0)
			return -1;
		r++;
	}
	return 0;
}

int
model_json_keys(const cJSON *obj, const char *const *keys, const char *path,
    struct model_err *err)
{
	const cJSON *m;
	size_t k;

	if (!cJSON_IsObject(obj)) {
		model_errf(err, "%s: expected an object", path);
		return -1;
	}
	for (m = obj->child; m != NULL; m = m->next) {
		for (k = 0; keys[k] != NULL; k++)
			if (strcmp(m->string, keys[k]) == 0)
				break;
		if (keys[k] == NULL) {
			model_errf(err, "%s.%.64s: unknown key", path,
			    m->string);
			return -1;
		}
	}
	return 0;
}

int
model_has_nan(const double *x, size_t n)
{
	size_t i;
	int nan = 0;

	for (i = 0; i < n; i++)
		nan |= isnan(x[i]);
	return nan;
}

double
model_sum(const double *a, size_t n)
{
	double r[8], res = 0;
	size_t i, j, n2;

	if (n < 8) {
		for (i = 0; i < n; i++)
			res += a[i];
		return res;
	}
	if (n > 128) {
		n2 = n / 2;
		n2 -= n2 % 8;
		return model_sum(a, n2) + model_sum(a + n2, n - n2);
	}
	for (j = 0; j < 8; j++)
		r[j] = a[j];
	for (i = 8; i < n - n % 8; i += 8)
		for (j = 0; j < 8; j++)
			r[j] += a[i + j];
	res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
	for (; i < n; i++)
		res += a[i];
	return res;
}
