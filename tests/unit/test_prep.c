/* Unit tests: preprocessing steps (src/prep.c) and category features, loaded
 * through model_load_text(): what each step computes, and every load error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "model.h"
#include "prep.h"

/* Features: age (number, nullable), city (Paris/Oslo/Rome, ignore unknown,
 * nullable), plan (basic/pro), x (number). */
static const char default_features[] =
    "[{\"name\":\"age\",\"type\":\"number\",\"nullable\":true},"
    "{\"name\":\"city\",\"type\":\"category\","
    "\"categories\":[\"Paris\",\"Oslo\",\"Rome\"],\"unknown\":\"ignore\","
    "\"nullable\":true},"
    "{\"name\":\"plan\",\"type\":\"category\",\"categories\":[\"basic\",\"pro\"]},"
    "{\"name\":\"x\",\"type\":\"number\"}]";

/* num: impute (age 40, x 0, indicator for age), min-max with clip;
 * cat: one-hot city (NaN listed) and plan (only "pro");
 * pass: x and age again. Width 3 + 5 + 2 = 10. */
static const char ct_steps[] =
    "[{\"type\":\"column_transformer\",\"branches\":["
    "{\"name\":\"num\",\"columns\":[0,3],\"steps\":["
    "{\"type\":\"simple_imputer\",\"fill\":[40,0],\"indicator\":[0]},"
    "{\"type\":\"min_max_scaler\",\"scale\":[0.5,2,1],\"min\":[1,-1,0],"
    "\"clip\":[0,10]}]},"
    "{\"name\":\"cat\",\"columns\":[1,2],\"steps\":["
    "{\"type\":\"one_hot_encoder\",\"categories\":[[0,1,2,null],[1]]}]},"
    "{\"columns\":[3,0],\"steps\":[]}]}]";

static const char ten_coef[] = "[1,1,1,1,1,1,1,1,1,1]";

/* Loads a regression model with the given features, steps and coef. */
static struct model *
load(const char *features, const char *steps, const char *coef,
    struct model_err *err)
{
	struct buf b = BUF_INIT;
	struct model *m;

	buf_printf(&b, "{\"format\":\"mlfcgi-model/1\",\"name\":\"p\","
	    "\"version\":\"1\",\"task\":\"regression\",\"features\":%s,",
	    features ? features : default_features);
	if (steps != NULL)
		buf_printf(&b, "\"preprocessing\":%s,", steps);
	buf_printf(&b, "\"estimator\":{\"type\":\"linear_regression\","
	    "\"coef\":%s,\"intercept\":0}}", coef);
	m = model_load_text(b.data, b.len, "t.json", err);
	buf_free(&b);
	return m;
}

static struct model *
load_ok(const char *features, const char *steps, const char *coef)
{
	struct model_err err;
	struct model *m = load(features, steps, coef, &err);

	if (m == NULL)
		print_error("load failed: %s\n", err.msg);
	assert_non_null(m);
	return m;
}

static void
assert_error(const char *features, const char *steps, const char *coef,
    const char *want)
{
	struct model_err err;
	struct model *m = load(features, steps, coef, &err);
	char full[600];

	if (m != NULL) {
		print_error("loaded, expected: %s\n", want);
		model_free(m);
		fail();
	}
	snprintf(full, sizeof(full), "t.json: %s", want);
	assert_string_equal(err.msg, full);
}

/* Runs the preprocessing of m on row; out gets m->n_inputs values. */
static void
apply(const struct model *m, const double *row, double *out)
{
	double *scratch = calloc(m->prep.scratch + 1, sizeof(double));

	assert_non_null(scratch);
	prep_apply(&m->prep, row, out, scratch);
	free(scratch);
}

static void
assert_values(const double *got, const double *want, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (isnan(want[i]) && isnan(got[i]))
			continue;
		if (got[i] != want[i]) {
			print_error("value %zu: got %.17g, want %.17g\n", i, got[i],
			    want[i]);
			fail();
		}
	}
}

static void
test_column_transformer(void **state)
{
	struct model *m = load_ok(NULL, ct_steps, ten_coef);
	const double row1[] = { NAN, NAN, 1, 3 };
	const double want1[] = { 10, 5, 1, 0, 0, 0, 1, 1, 3, NAN };
	const double row2[] = { 4, SCHEMA_UNKNOWN, 0, -2 };
	const double want2[] = { 3, 0, 0, 0, 0, 0, 0, 0, -2, 4 };
	const double row3[] = { -10, 2, 1, 100 };
	const double want3[] = { 0, 10, 0, 0, 0, 1, 0, 1, 100, -10 };
	struct prediction p;
	double out[10], *scratch;

	(void)state;
	assert_int_equal(m->n_inputs, 10);
	assert_int_equal(m->prep.n_in, 4);
	assert_int_equal(m->prep.n_out, 10);
	apply(m, row1, out);
	assert_values(out, want1, 10);
	apply(m, row2, out);
	assert_values(out, want2, 10);
	apply(m, row3, out);
	assert_values(out, want3, 10);
	/* Through model_predict: the sum of the outputs. */
	scratch = calloc(model_scratch_size(m), sizeof(double));
	assert_non_null(scratch);
	model_predict(m, row2, scratch, &p);
	assert_true(p.value == 3 + 0 + 0 + -2 + 4);
	free(scratch);
	model_free(m);
}

static void
test_steps_in_sequence(void **state)
{
	/* Standard scaler, then an imputer that drops column 1 and adds
	 * indicators for 1 and 0, then one-hot on numbers. */
	const char *steps = "[{\"type\":\"standard_scaler\",\"mean\":[1,0,0,0],"
	    "\"scale\":[2,1,1,4]},"
	    "{\"type\":\"simple_imputer\",\"fill\":[-1,null,7,0.5],"
	    "\"indicator\":[1,0]},"
	    "{\"type\":\"one_hot_encoder\",\"categories\":[[-1,0.5],[2,1,0],"
	    "[0.25],[1],[1,0]]}]";
	struct model *m = load_ok(NULL, steps, "[1,1,1,1,1,1,1,1,1]");
	const double row[] = { NAN, NAN, 0, 1 };
	const double want[] = { 1, 0, 0, 0, 1, 1, 1, 1, 0 };
	const double row2[] = { 2, 1, 1, 3 };
	const double want2[] = { 0, 1, 0, 1, 0, 0, 0, 0, 1 };
	double out[9];

	(void)state;
	assert_int_equal(m->n_inputs, 9);
	apply(m, row, out);
	assert_values(out, want, 9);
	apply(m, row2, out);
	assert_values(out, want2, 9);
	model_free(m);
}

static void
test_nested(void **state)
{
	/* A column transformer inside a branch, and a repeated column. */
	const char *steps = "[{\"type\":\"column_transformer\",\"branches\":["
	    "{\"columns\":[3,0,3],\"steps\":[{\"type\":\"column_transformer\","
	    "\"branches\":[{\"columns\":[2],\"steps\":[{\"type\":"
	    "\"standard_scaler\",\"mean\":[1],\"scale\":[4]}]},"
	    "{\"columns\":[0,1],\"steps\":[]}]}]},"
	    "{\"columns\":[2],\"steps\":[{\"type\":\"one_hot_encoder\","
	    "\"categories\":[[1,0]]}]}]}]";
	struct model *m = load_ok(NULL, steps, "[1,1,1,1,1]");
	const double row[] = { 7, 0, 1, 9 };
	const double want[] = { 2, 9, 7, 1, 0 };
	double out[5];

	(void)state;
	apply(m, row, out);
	assert_values(out, want, 5);
	model_free(m);
}

static void
test_render_row(void **state)
{
	struct model *m = load_ok(NULL, ct_steps, ten_coef);
	const double row1[] = { NAN, NAN, 1, 3 };
	const double row2[] = { 4.5, SCHEMA_UNKNOWN, 0, -2 };
	struct buf b = BUF_INIT;

	(void)state;
	model_render_row(m, row1, &b);
	assert_string_equal(b.data,
	    "{\"age\":null,\"city\":null,\"plan\":\"pro\",\"x\":3}");
	buf_reset(&b);
	model_render_row(m, row2, &b);
	assert_string_equal(b.data, "{\"age\":4.5,\"city\":{\"unknown\":true},"
	    "\"plan\":\"basic\",\"x\":-2}");
	buf_free(&b);
	model_free(m);
}

static void
test_category_features(void **state)
{
	/* Optional category with a default; test_input as strings. */
	const char *features = "[{\"name\":\"c\",\"type\":\"category\","
	    "\"categories\":[\"a\",\"b\"],\"required\":false,\"default\":\"b\"},"
	    "{\"name\":\"d\",\"type\":\"category\",\"categories\":[\"x\"],"
	    "\"nullable\":true,\"required\":false,\"default\":null}]";
	struct model *m = load_ok(features, NULL, "[1,1]");

	(void)state;
	assert_int_equal(m->schema.features[0].type, FEATURE_CATEGORY);
	assert_true(m->schema.features[0].dflt == 1);
	assert_false(m->schema.features[0].unknown_ignore);
	assert_true(isnan(m->schema.features[1].dflt));
	assert_true(m->test_input[0] == 0 && m->test_input[1] == 0);
	model_free(m);
}

static void
test_feature_errors(void **state)
{
	(void)state;
	assert_error("[{\"name\":\"c\",\"type\":\"category\"}]", NULL, "[1]",
	    "features[0].categories: expected an array of 1 to 65536 strings");
	assert_error("[{\"name\":\"c\",\"type\":\"category\",\"categories\":[]}]",
	    NULL, "[1]", "features[0].categories: expected an array of 1 to "
	    "65536 strings");
	assert_error("[{\"name\":\"c\",\"type\":\"category\","
	    "\"categories\":[\"a\",1]}]", NULL, "[1]",
	    "features[0].categories[1]: expected a string");
	assert_error("[{\"name\":\"c\",\"type\":\"category\","
	    "\"categories\":[\"a\",\"b\",\"a\"]}]", NULL, "[1]",
	    "features[0].categories[2]: repeats an earlier category");
	assert_error("[{\"name\":\"c\",\"type\":\"category\","
	    "\"categories\":[\"a\"],\"maximum\":3}]", NULL, "[1]",
	    "features[0].maximum: a category feature has no bounds");
	assert_error("[{\"name\":\"c\",\"type\":\"category\","
	    "\"categories\":[\"a\"],\"unknown\":\"skip\"}]", NULL, "[1]",
	    "features[0].unknown: expected \"error\" or \"ignore\"");
	assert_error("[{\"name\":\"c\",\"type\":\"number\","
	    "\"categories\":[\"a\"]}]", NULL, "[1]",
	    "features[0].categories: only a category feature has one");
	assert_error("[{\"name\":\"c\",\"type\":\"integer\","
	    "\"unknown\":\"error\"}]", NULL, "[1]",
	    "features[0].unknown: only a category feature has one");
	assert_error("[{\"name\":\"c\",\"type\":\"category\","
	    "\"categories\":[\"a\"],\"required\":false,\"default\":\"z\"}]",
	    NULL, "[1]", "features[0].default: an optional category feature "
	    "needs one of its categories (or null, if nullable) as default");
	assert_error("[{\"name\":\"c\",\"type\":\"category\","
	    "\"categories\":[\"a\"],\"required\":false,\"default\":0}]",
	    NULL, "[1]", "features[0].default: an optional category feature "
	    "needs one of its categories (or null, if nullable) as default");
	assert_error("[{\"name\":\"c\",\"type\":\"category\","
	    "\"categories\":[\"a\"],\"required\":false,\"default\":null}]",
	    NULL, "[1]", "features[0].default: an optional category feature "
	    "needs one of its categories (or null, if nullable) as default");
}

/* Returns n column transformers nested around a standard scaler. */
static char *
nested(int n)
{
	struct buf b = BUF_INIT;
	int i;

	buf_putc(&b, '[');
	for (i = 0; i < n; i++)
		buf_puts(&b, "{\"type\":\"column_transformer\",\"branches\":"
		    "[{\"columns\":[0],\"steps\":[");
	buf_puts(&b, "{\"type\":\"standard_scaler\",\"mean\":[0],"
	    "\"scale\":[1]}");
	for (i = 0; i < n; i++)
		buf_puts(&b, "]}]}");
	buf_putc(&b, ']');
	return buf_steal(&b);
}

static void
test_step_errors(void **state)
{
	char *deep;
	struct model *m;

	(void)state;
	assert_error(NULL, "{}", "[1]",
	    "preprocessing: expected an array of steps");
	assert_error(NULL, "[{\"type\":\"pca\"}]", "[1]",
	    "preprocessing[0].type: unknown step \"pca\"");
	assert_error(NULL, "[{\"type\":\"min_max_scaler\",\"scale\":[1,1,1,1],"
	    "\"min\":[0,0,0,0],\"clip\":[1,1]}]", "[1,1,1,1]",
	    "preprocessing[0].clip: expected [low, high] with low < high");
	assert_error(NULL, "[{\"type\":\"min_max_scaler\",\"scale\":[1,1,1,1],"
	    "\"min\":[0,0,0]}]", "[1,1,1,1]",
	    "preprocessing[0].min: expected 4 numbers, found 3");
	assert_error(NULL, "[{\"type\":\"standard_scaler\",\"mean\":[0,0,0,0],"
	    "\"scale\":[1,1,1,1],\"clip\":[0,1]}]", "[1,1,1,1]",
	    "preprocessing[0].clip: unknown key");
	assert_error(NULL, "[{\"type\":\"simple_imputer\",\"fill\":[0,0]}]",
	    "[1,1]", "preprocessing[0].fill: expected an array of 4 numbers or "
	    "nulls");
	assert_error(NULL, "[{\"type\":\"simple_imputer\","
	    "\"fill\":[0,\"a\",0,0]}]", "[1,1,1,1]",
	    "preprocessing[0].fill[1]: expected a finite number or null");
	assert_error(NULL, "[{\"type\":\"simple_imputer\","
	    "\"fill\":[null,null,null,null]}]", "[1]",
	    "preprocessing[0]: the step outputs 0 columns (1 to 4194304 "
	    "allowed)");
	assert_error(NULL, "[{\"type\":\"simple_imputer\",\"fill\":[0,0,0,0],"
	    "\"indicator\":[4]}]", "[1,1,1,1,1]",
	    "preprocessing[0].indicator[0]: expected a column index from 0 to 3");
	assert_error(NULL, "[{\"type\":\"one_hot_encoder\","
	    "\"categories\":[[0],[1]]}]", "[1,1]",
	    "preprocessing[0].categories: expected 4 arrays, one per input "
	    "column");
	assert_error(NULL, "[{\"type\":\"one_hot_encoder\","
	    "\"categories\":[[0],[1],[0,1,0],[2]]}]", "[1,1,1,1,1,1]",
	    "preprocessing[0].categories[2]: a value is listed twice");
	assert_error(NULL, "[{\"type\":\"one_hot_encoder\","
	    "\"categories\":[[0],[null,1,null],[0],[2]]}]", "[1,1,1,1,1,1]",
	    "preprocessing[0].categories[1][2]: expected a finite number, or "
	    "one null");
	assert_error(NULL, "[{\"type\":\"one_hot_encoder\","
	    "\"categories\":[[0],[],[0],[2]]}]", "[1,1,1]",
	    "preprocessing[0].categories[1]: expected a non-empty array of "
	    "numbers (or null)");
	assert_error(NULL, "[{\"type\":\"column_transformer\",\"branches\":[]}]",
	    "[1]", "preprocessing[0].branches: expected a non-empty array");
	assert_error(NULL, "[{\"type\":\"column_transformer\",\"branches\":["
	    "{\"columns\":[0],\"steps\":[]},{\"columns\":[1,4],\"steps\":[]}]}]",
	    "[1,1,1]", "preprocessing[0].branches[1].columns[1]: expected a "
	    "column index from 0 to 3");
	assert_error(NULL, "[{\"type\":\"column_transformer\",\"branches\":["
	    "{\"columns\":[],\"steps\":[]}]}]", "[1]",
	    "preprocessing[0].branches[0].columns: expected an array of 1 to "
	    "4194304 column indices");
	assert_error(NULL, "[{\"type\":\"column_transformer\",\"branches\":["
	    "{\"columns\":[0.5],\"steps\":[]}]}]", "[1]",
	    "preprocessing[0].branches[0].columns[0]: expected a column index "
	    "from 0 to 3");
	assert_error(NULL, "[{\"type\":\"column_transformer\",\"branches\":["
	    "{\"columns\":[0]}]}]", "[1]",
	    "preprocessing[0].branches[0].steps: expected an array of steps "
	    "(empty: the columns pass through)");
	assert_error(NULL, "[{\"type\":\"column_transformer\",\"branches\":["
	    "{\"columns\":[0],\"steps\":[],\"weight\":2}]}]", "[1]",
	    "preprocessing[0].branches[0].weight: unknown key");
	assert_error(NULL, "[{\"type\":\"column_transformer\",\"branches\":["
	    "{\"columns\":[0],\"steps\":[{\"type\":\"standard_scaler\","
	    "\"mean\":[0],\"scale\":[0]}]}]}]", "[1]",
	    "preprocessing[0].branches[0].steps[0].scale[0]: a scale of 0");
	/* The estimator sees the last step's width. */
	assert_error(NULL, ct_steps, "[1,1,1,1]",
	    "estimator.coef: expected 10 numbers, found 4");

	deep = nested(PREP_MAX_DEPTH);
	m = load_ok(NULL, deep, "[1]");
	model_free(m);
	free(deep);
	deep = nested(PREP_MAX_DEPTH + 1);
	m = load(NULL, deep, "[1]", &(struct model_err){ { 0 } });
	assert_null(m);
	free(deep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_column_transformer),
		cmocka_unit_test(test_steps_in_sequence),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_render_row),
		cmocka_unit_test(test_category_features),
		cmocka_unit_test(test_feature_errors),
		cmocka_unit_test(test_step_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
