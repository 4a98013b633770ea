/* Unit tests: schema_validate() and friends, against a schema built by hand,
 * checking the FastAPI-shaped 422 documents verrs_render() writes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "decode.h"
#include "input.h"
#include "schema.h"
#include "verr.h"

/* The test schema:
 *   a    number   0 <= a <= 10
 *   b    number   0 <  b <  1
 *   n    integer  1 <= n <= 5
 *   opt  number   optional, default 2.5, opt <= 100
 */
enum { F_A, F_B, F_N, F_OPT, NF };

static void
feature_set(struct feature *f, const char *name, enum feature_type type)
{
	memset(f, 0, sizeof(*f));
	f->name = strdup(name);
	assert_non_null(f->name);
	f->name_len = strlen(name);
	f->type = type;
	f->required = 1;
}

static void
schema_make(struct schema *s)
{
	size_t dup = 999;

	memset(s, 0, sizeof(*s));
	s->n = NF;
	s->features = calloc(NF, sizeof(struct feature));
	assert_non_null(s->features);
	feature_set(&s->features[F_A], "a", FEATURE_NUMBER);
	s->features[F_A].has_min = 1, s->features[F_A].min = 0;
	s->features[F_A].has_max = 1, s->features[F_A].max = 10;
	feature_set(&s->features[F_B], "b", FEATURE_NUMBER);
	s->features[F_B].has_min = 1, s->features[F_B].min = 0;
	s->features[F_B].min_exclusive = 1;
	s->features[F_B].has_max = 1, s->features[F_B].max = 1;
	s->features[F_B].max_exclusive = 1;
	feature_set(&s->features[F_N], "n", FEATURE_INTEGER);
	s->features[F_N].has_min = 1, s->features[F_N].min = 1;
	s->features[F_N].has_max = 1, s->features[F_N].max = 5;
	feature_set(&s->features[F_OPT], "opt", FEATURE_NUMBER);
	s->features[F_OPT].required = 0;
	s->features[F_OPT].dflt = 2.5;
	s->features[F_OPT].has_max = 1, s->features[F_OPT].max = 100;
	assert_int_equal(schema_index(s, &dup), 0);
	assert_int_equal(dup, 999);
}

static int
setup(void **state)
{
	struct schema *s = malloc(sizeof(*s));

	if (s == NULL)
		return -1;
	schema_make(s);
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	schema_free(*state);
	free(*state);
	return 0;
}

/* One validation: decode body (JSON or form), validate, render, parse. */
struct val {
	int	 rc;		/* decode, then validate */
	double	 row[NF];
	size_t	 n, total;
	cJSON	*doc;		/* {"detail": [...]} */
	cJSON	*detail;
};

static void
validate_loc(const struct schema *s, int form, const char *body, size_t len,
    const struct verr_loc *loc, struct val *r)
{
	struct input in;
	struct verrs v;
	struct buf out = BUF_INIT;
	size_t i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < NF; i++)
		r->row[i] = -12345;
	input_init(&in);
	verrs_init(&v);
	r->rc = form ? decode_form(body, len, &in, &v) :
	    decode_json(body, len, &in, &v);
	assert_int_equal(r->rc, 0);
	r->rc = schema_validate(s, &in, loc, r->row, &v);
	r->n = v.n;
	r->total = v.total;
	verrs_render(&v, &out);
	r->doc = cJSON_Parse(out.data);
	assert_non_null(r->doc);
	r->detail = cJSON_GetObjectItem(r->doc, "detail");
	assert_true(cJSON_IsArray(r->detail));
	assert_int_equal((size_t)cJSON_GetArraySize(r->detail), r->n);
	if (r->rc == 0)
		assert_int_equal(r->total, 0);
	else
		assert_true(r->total > 0);
	buf_free(&out);
	input_free(&in);
	verrs_free(&v);
}

static void
validate(const struct schema *s, int form, const char *body, struct val *r)
{
	validate_loc(s, form, body, strlen(body), NULL, r);
}

static void
val_done(struct val *r)
{
	cJSON_Delete(r->doc);
}

/* Asserts item i of detail: type, loc (after "body", given as a string of
 * '/'-separated parts, numbers for indices; "" for just ["body"]), and the
 * rendered input (or NULL not to check). */
static void
assert_item(const struct val *r, int i, const char *type, const char *locs,
    const char *input)
{
	const cJSON *it = cJSON_GetArrayItem(r->detail, i);
	const cJSON *loc, *part;
	char buf[256], *p, *save = NULL;
	int k = 1;

	assert_non_null(it);
	assert_string_equal(cJSON_GetObjectItem(it, "type")->valuestring,
	    type);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(it, "msg")));
	loc = cJSON_GetObjectItem(it, "loc");
	assert_string_equal(cJSON_GetArrayItem(loc, 0)->valuestring, "body");
	snprintf(buf, sizeof(buf), "%s", locs);
	for (p = strtok_r(buf, "/", &save); p != NULL;
	    p = strtok_r(NULL, "/", &save), k++) {
		part = cJSON_GetArrayItem(loc, k);
		assert_non_null(part);
		if (*p == '#') {
			assert_true(cJSON_IsNumber(part));
			assert_int_equal(part->valueint, atoi(p + 1));
		} else {
			assert_true(cJSON_IsString(part));
			assert_string_equal(part->valuestring, p);
		}
	}
	assert_int_equal(cJSON_GetArraySize(loc), k);
	if (input != NULL) {
		char *got = cJSON_PrintUnformatted(cJSON_GetObjectItem(it,
		    "input"));

		assert_string_equal(got, input);
		free(got);
	}
}

static const char *
item_msg(const struct val *r, int i)
{
	return cJSON_GetObjectItem(cJSON_GetArrayItem(r->detail, i),
	    "msg")->valuestring;
}

static char *
item_ctx(const struct val *r, int i)
{
	const cJSON *ctx = cJSON_GetObjectItem(cJSON_GetArrayItem(r->detail,
	    i), "ctx");

	return ctx ? cJSON_PrintUnformatted(ctx) : NULL;
}

static void
assert_ctx(const struct val *r, int i, const char *want)
{
	char *got = item_ctx(r, i);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* Validates and asserts exactly one error. */
static void
assert_single(const struct schema *s, int form, const char *body,
    const char *type, const char *loc, const char *input)
{
	struct val r;

	validate(s, form, body, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.total, 1);
	assert_item(&r, 0, type, loc, input);
	val_done(&r);
}

/* ---- success ---------------------------------------------------------- */

static void
test_valid_json_and_form(void **state)
{
	const struct schema *s = *state;
	struct val r;

	validate(s, 0, "{\"n\": 3, \"b\": 0.5, \"a\": 7.25, \"opt\": -1e3}",
	    &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.n, 0);
	assert_true(r.row[F_A] == 7.25);
	assert_true(r.row[F_B] == 0.5);
	assert_true(r.row[F_N] == 3);
	assert_true(r.row[F_OPT] == -1000);
	val_done(&r);

	/* The optional feature takes its default. */
	validate(s, 0, "{\"a\": 0, \"b\": 0.25, \"n\": 5.0}", &r);
	assert_int_equal(r.rc, 0);
	assert_true(r.row[F_A] == 0);
	assert_true(r.row[F_N] == 5);
	assert_true(r.row[F_OPT] == 2.5);
	val_done(&r);

	/* Form text is parsed as a number. */
	validate(s, 1, "a=%2B1.5e0&b=.125&n=4.0&opt=5.", &r);
	assert_int_equal(r.rc, 0);
	assert_true(r.row[F_A] == 1.5);
	assert_true(r.row[F_B] == 0.125);
	assert_true(r.row[F_N] == 4);
	assert_true(r.row[F_OPT] == 5);
	val_done(&r);

	/* Form text longer than any fixed buffer. */
	{
		struct buf body = BUF_INIT;
		int i;

		buf_puts(&body, "b=0.5&n=1&a=0.");
		for (i = 0; i < 100; i++)
			buf_putc(&body, '0');
		buf_puts(&body, "1&opt=");
		for (i = 0; i < 80; i++)
			buf_putc(&body, i ? '0' : '1');
		buf_puts(&body, "e-78");
		validate(s, 1, body.data, &r);
		assert_int_equal(r.rc, 0);
		assert_true(r.row[F_A] == 1e-101);
		assert_true(r.row[F_OPT] == 10);
		val_done(&r);
		buf_free(&body);
	}

	validate(s, 1, "b=1e-1&a=-0&n=1", &r);
	assert_int_equal(r.rc, 0);
	assert_true(r.row[F_A] == 0);
	assert_true(r.row[F_B] == 0.1);
	assert_true(r.row[F_OPT] == 2.5);
	val_done(&r);
}

/* ---- every error type ------------------------------------------------- */

static void
test_missing(void **state)
{
	const struct schema *s = *state;
	struct val r;

	validate(s, 0, "{}", &r);
	assert_int_equal(r.rc, -1);
	/* Every required feature, in schema order; not the optional one. */
	assert_int_equal(r.n, 3);
	assert_int_equal(r.total, 3);
	assert_item(&r, 0, "missing", "a", "null");
	assert_item(&r, 1, "missing", "b", "null");
	assert_item(&r, 2, "missing", "n", "null");
	assert_string_equal(item_msg(&r, 0), "Field required");
	assert_null(item_ctx(&r, 0));
	val_done(&r);

	assert_single(s, 1, "a=1&n=2", "missing", "b", "null");
}

static void
test_float_type(void **state)
{
	const struct schema *s = *state;
	struct val r;

	/* A JSON string is never taken as a number. */
	assert_single(s, 0, "{\"a\": \"5.1\", \"b\": 0.5, \"n\": 1}",
	    "float_type", "a", "\"5.1\"");
	validate(s, 0, "{\"a\": \"5.1\", \"b\": 0.5, \"n\": 1}", &r);
	assert_string_equal(item_msg(&r, 0), "Input should be a valid number");
	val_done(&r);
	assert_single(s, 0, "{\"a\": null, \"b\": 0.5, \"n\": 1}",
	    "float_type", "a", "null");
	assert_single(s, 0, "{\"a\": true, \"b\": 0.5, \"n\": 1}",
	    "float_type", "a", "true");
	assert_single(s, 0, "{\"a\": [1], \"b\": 0.5, \"n\": 1}",
	    "float_type", "a", "[1]");
	assert_single(s, 0, "{\"a\": {\"x\": 1}, \"b\": 0.5, \"n\": 1}",
	    "float_type", "a", "{\"x\":1}");
	/* The integer feature says int_type. */
	assert_single(s, 0, "{\"a\": 1, \"b\": 0.5, \"n\": \"3\"}",
	    "int_type", "n", "\"3\"");
}

static void
test_float_parsing(void **state)
{
	const struct schema *s = *state;
	static const char *const bad[] = { "abc", "1e", "1e-", "0x10",
	    "1.2.3", "--1", "-", ".", "1 ", " 1", "1,5", "e5", "1f", "5e2.0" };
	struct val r;
	size_t i;

	validate(s, 1, "a=abc&b=0.5&n=3", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "float_parsing", "a", "\"abc\"");
	assert_string_equal(item_msg(&r, 0), "Input should be a valid number, "
	    "unable to parse string as a number");
	val_done(&r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char body[64], want[64];

		snprintf(body, sizeof(body), "b=0.5&n=3&a=%s", bad[i]);
		for (char *p = body; *p; p++)
			if (*p == ' ')
				*p = '+';
		snprintf(want, sizeof(want), "\"%s\"", bad[i]);
		assert_single(s, 1, body, "float_parsing", "a", want);
	}
	assert_single(s, 1, "a=1&b=0.5&n=three", "int_parsing", "n",
	    "\"three\"");
}

static void
test_finite_number(void **state)
{
	const struct schema *s = *state;
	static const char *const forms[] = { "nan", "NaN", "inf", "-inf",
	    "+Infinity", "infinity", "1e999", "-1e999" };
	struct val r;
	size_t i;

	validate(s, 0, "{\"a\": 1e999, \"b\": 0.5, \"n\": -1e999}", &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.n, 2);
	assert_item(&r, 0, "finite_number", "a", "\"inf\"");
	assert_item(&r, 1, "finite_number", "n", "\"-inf\"");
	assert_string_equal(item_msg(&r, 0), "Input should be a finite number");
	val_done(&r);
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char body[64], want[64];

		snprintf(body, sizeof(body), "a=%s&b=0.5&n=3", forms[i]);
		snprintf(want, sizeof(want), "\"%s\"", forms[i]);
		if (forms[i][0] == '+')
			snprintf(body, sizeof(body), "a=%%2B%s&b=0.5&n=3",
			    forms[i] + 1);
		assert_single(s, 1, body, "finite_number", "a", want);
	}
}

static void
test_bound_errors(void **state)
{
	const struct schema *s = *state;
	struct val r;

	/* b > 0 */
	validate(s, 0, "{\"a\": 1, \"b\": 0, \"n\": 1}", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "greater_than", "b", "0");
	assert_string_equal(item_msg(&r, 0), "Input should be greater than 0");
	assert_ctx(&r, 0, "{\"gt\":0}");
	val_done(&r);
	/* a >= 0 */
	validate(s, 0, "{\"a\": -0.001, \"b\": 0.5, \"n\": 1}", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "greater_than_equal", "a", "-0.001");
	assert_string_equal(item_msg(&r, 0),
	    "Input should be greater than or equal to 0");
	assert_ctx(&r, 0, "{\"ge\":0}");
	val_done(&r);
	/* b < 1 */
	validate(s, 1, "a=1&b=1&n=1", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "less_than", "b", "\"1\"");
	assert_string_equal(item_msg(&r, 0), "Input should be less than 1");
	assert_ctx(&r, 0, "{\"lt\":1}");
	val_done(&r);
	/* a <= 10 */
	validate(s, 0, "{\"a\": 10.5, \"b\": 0.5, \"n\": 1}", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "less_than_equal", "a", "10.5");
	assert_string_equal(item_msg(&r, 0),
	    "Input should be less than or equal to 10");
	assert_ctx(&r, 0, "{\"le\":10}");
	val_done(&r);
	/* Integer bounds. */
	assert_single(s, 0, "{\"a\": 1, \"b\": 0.5, \"n\": 0}",
	    "greater_than_equal", "n", "0");
	assert_single(s, 0, "{\"a\": 1, \"b\": 0.5, \"n\": 6}",
	    "less_than_equal", "n", "6");
}

static void
test_int_from_float(void **state)
{
	const struct schema *s = *state;
	struct val r;

	validate(s, 0, "{\"a\": 1, \"b\": 0.5, \"n\": 2.5}", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "int_from_float", "n", "2.5");
	assert_string_equal(item_msg(&r, 0), "Input should be a valid integer, "
	    "got a number with a fractional part");
	val_done(&r);
	/* Past 2^53 a double is no longer an exact integer. */
	assert_single(s, 0, "{\"a\": 1, \"b\": 0.5, \"n\": 1e300}",
	    "int_from_float", "n", NULL);
}

static void
test_extra_forbidden(void **state)
{
	const struct schema *s = *state;
	struct val r;

	validate(s, 0, "{\"a\": 1, \"zzz\": [1, 2], \"b\": 0.5, \"n\": 1, "
	    "\"A\": 1}", &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.n, 2);
	assert_item(&r, 0, "extra_forbidden", "zzz", "[1,2]");
	assert_item(&r, 1, "extra_forbidden", "A", "1");
	assert_string_equal(item_msg(&r, 0), "Extra inputs are not permitted");
	val_done(&r);
	assert_single(s, 1, "a=1&b=0.5&n=1&x=hello", "extra_forbidden", "x",
	    "\"hello\"");
	/* "features" is only special in a JSON body. */
	assert_single(s, 1, "a=1&b=0.5&n=1&features=1", "extra_forbidden",
	    "features", "\"1\"");
}

static void
test_duplicate_field(void **state)
{
	const struct schema *s = *state;
	struct val r;

	validate(s, 0, "{\"a\": 1, \"b\": 0.5, \"n\": 1, \"a\": 2}", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "duplicate_field", "a", "2");
	assert_string_equal(item_msg(&r, 0), "Field given more than once");
	val_done(&r);
	/* Three times: two errors, and the count does not wrap. */
	validate(s, 1, "a=1&b=0.5&n=1&a=2&a=3", &r);
	assert_int_equal(r.n, 2);
	assert_item(&r, 0, "duplicate_field", "a", "\"2\"");
	assert_item(&r, 1, "duplicate_field", "a", "\"3\"");
	val_done(&r);
	/* 300 times: the per-feature counter must not wrap back to "not
	 * seen" (which would validate the 257th copy and report the field
	 * missing). */
	{
		struct buf body = BUF_INIT;
		int i;

		buf_puts(&body, "b=0.5&n=1");
		for (i = 0; i < 300; i++)
			buf_puts(&body, "&a=1");
		validate(s, 1, body.data, &r);
		assert_int_equal(r.rc, -1);
		assert_int_equal(r.total, 299);
		assert_int_equal(r.n, VERR_MAX);
		for (i = 0; i < VERR_MAX; i++)
			assert_item(&r, i, "duplicate_field", "a", "\"1\"");
		val_done(&r);
		buf_free(&body);
	}
	/* The optional feature given twice is an error too. */
	assert_single(s, 1, "a=1&b=0.5&n=1&opt=1&opt=1", "duplicate_field",
	    "opt", "\"1\"");
}

static void
test_all_errors_at_once(void **state)
{
	const struct schema *s = *state;
	struct val r;

	validate(s, 0, "{\"a\": \"x\", \"b\": 5, \"zzz\": 0, \"opt\": 1000, "
	    "\"b\": 0.5}", &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.n, 6);
	assert_int_equal(r.total, 6);
	/* Body order first, then the missing fields in schema order. */
	assert_item(&r, 0, "float_type", "a", "\"x\"");
	assert_item(&r, 1, "less_than", "b", "5");
	assert_item(&r, 2, "extra_forbidden", "zzz", "0");
	assert_item(&r, 3, "less_than_equal", "opt", "1000");
	assert_item(&r, 4, "duplicate_field", "b", "0.5");
	assert_item(&r, 5, "missing", "n", "null");
	val_done(&r);

	validate(s, 1, "a=abc&b=0&n=0&opt=nan&q=1", &r);
	assert_int_equal(r.n, 5);
	assert_item(&r, 0, "float_parsing", "a", NULL);
	assert_item(&r, 1, "greater_than", "b", NULL);
	assert_item(&r, 2, "greater_than_equal", "n", NULL);
	assert_item(&r, 3, "finite_number", "opt", NULL);
	assert_item(&r, 4, "extra_forbidden", "q", NULL);
	val_done(&r);
}

static void
test_loc_prefix(void **state)
{
	const struct schema *s = *state;
	const char *body = "{\"a\": 11, \"b\": 0.5}";
	struct verr_loc base = verr_loc_index(NULL, 2);
	struct val r;

	/* Locations start with the caller's prefix (an instance index). */
	validate_loc(s, 0, body, strlen(body), &base, &r);
	assert_int_equal(r.n, 2);
	assert_item(&r, 0, "less_than_equal", "#2/a", "11");
	assert_item(&r, 1, "missing", "#2/n", "null");
	val_done(&r);
}

/* ---- positional {"features": [...]} ---------------------------------- */

static void
test_positional(void **state)
{
	const struct schema *s = *state;
	struct val r;
	char *ctx;

	validate(s, 0, "{\"features\": [10, 0.75, 5, 100]}", &r);
	assert_int_equal(r.rc, 0);
	assert_true(r.row[F_A] == 10);
	assert_true(r.row[F_B] == 0.75);
	assert_true(r.row[F_N] == 5);
	assert_true(r.row[F_OPT] == 100);
	val_done(&r);

	validate(s, 0, "{\"features\": [1, 0.5, 3]}", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "too_short", "features", "[1,0.5,3]");
	assert_string_equal(item_msg(&r, 0),
	    "List should have at least 4 items after validation, not 3");
	assert_ctx(&r, 0, "{\"field_type\":\"List\",\"min_length\":4,"
	    "\"actual_length\":3}");
	val_done(&r);

	validate(s, 0, "{\"features\": [1, 0.5, 3, 4, 5]}", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "too_long", "features", "[1,0.5,3,4,5]");
	assert_string_equal(item_msg(&r, 0),
	    "List should have at most 4 items after validation, not 5");
	assert_ctx(&r, 0, "{\"field_type\":\"List\",\"max_length\":4,"
	    "\"actual_length\":5}");
	val_done(&r);

	validate(s, 0, "{\"features\": []}", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "too_short", "features", "[]");
	ctx = item_ctx(&r, 0);
	assert_string_equal(ctx, "{\"field_type\":\"List\",\"min_length\":4,"
	    "\"actual_length\":0}");
	free(ctx);
	val_done(&r);

	/* Item errors are located by index, all at once. */
	validate(s, 0, "{\"features\": [\"1\", 0, 2.5, 1e999]}", &r);
	assert_int_equal(r.n, 4);
	assert_item(&r, 0, "float_type", "features/#0", "\"1\"");
	assert_item(&r, 1, "greater_than", "features/#1", "0");
	assert_item(&r, 2, "int_from_float", "features/#2", "2.5");
	assert_item(&r, 3, "finite_number", "features/#3", "\"inf\"");
	val_done(&r);

	/* A short list with a bad item: both reported. */
	validate(s, 0, "{\"features\": [11]}", &r);
	assert_int_equal(r.n, 2);
	assert_item(&r, 0, "less_than_equal", "features/#0", "11");
	assert_item(&r, 1, "too_short", "features", "[11]");
	val_done(&r);
}

static void
test_positional_list_type_and_extras(void **state)
{
	const struct schema *s = *state;
	struct val r;

	assert_single(s, 0, "{\"features\": \"1,2,3,4\"}", "list_type",
	    "features", "\"1,2,3,4\"");
	assert_single(s, 0, "{\"features\": {\"a\": 1}}", "list_type",
	    "features", "{\"a\":1}");
	assert_single(s, 0, "{\"features\": null}", "list_type", "features",
	    "null");
	validate(s, 0, "{\"features\": 5}", &r);
	assert_string_equal(item_msg(&r, 0), "Input should be a valid list");
	val_done(&r);

	/* Named fields next to "features" are extra. */
	validate(s, 0, "{\"a\": 1, \"features\": [1, 0.5, 3, 4]}", &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "extra_forbidden", "a", "1");
	val_done(&r);

	validate(s, 0, "{\"features\": [1, 0.5, 3, 4], "
	    "\"features\": [1, 0.5, 3, 4]}", &r);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "duplicate_field", "features", NULL);
	val_done(&r);
}

static void
test_validate_array_direct(void **state)
{
	const struct schema *s = *state;
	cJSON *arr = cJSON_Parse("[1, 0.5, 3, 4]");
	cJSON *obj = cJSON_Parse("{\"x\": 1}");
	struct verrs v;
	struct buf out = BUF_INIT;
	double row[NF];

	verrs_init(&v);
	assert_int_equal(schema_validate_array(s, arr, NULL, row, &v), 0);
	assert_int_equal(v.total, 0);
	assert_true(row[F_A] == 1 && row[F_B] == 0.5 && row[F_N] == 3 &&
	    row[F_OPT] == 4);
	assert_int_equal(schema_validate_array(s, obj, NULL, row, &v), -1);
	assert_int_equal(v.total, 1);
	assert_string_equal(v.first_type, "list_type");
	verrs_render(&v, &out);
	assert_string_equal(out.data, "{\"detail\":[{\"type\":\"list_type\","
	    "\"loc\":[\"body\"],\"msg\":\"Input should be a valid list\","
	    "\"input\":{\"x\":1}}]}");
	buf_free(&out);
	verrs_free(&v);
	cJSON_Delete(arr);
	cJSON_Delete(obj);
}

static void
test_feature_named_features(void **state)
{
	struct schema s;
	struct val r;
	size_t dup;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.n = 2;
	s.features = calloc(2, sizeof(struct feature));
	assert_non_null(s.features);
	feature_set(&s.features[0], "features", FEATURE_NUMBER);
	feature_set(&s.features[1], "x", FEATURE_INTEGER);
	assert_int_equal(schema_index(&s, &dup), 0);
	/* With a feature called "features", the body is named fields. */
	validate(&s, 0, "{\"features\": 3, \"x\": 4}", &r);
	assert_int_equal(r.rc, 0);
	assert_true(r.row[0] == 3 && r.row[1] == 4);
	val_done(&r);
	validate(&s, 0, "{\"features\": [3, 4]}", &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.n, 2);
	assert_item(&r, 0, "float_type", "features", "[3,4]");
	assert_item(&r, 1, "missing", "x", "null");
	val_done(&r);
	schema_free(&s);
}

/* ---- boundaries --------------------------------------------------------- */

static void
assert_row_ok(const struct schema *s, const char *body, int feature,
    double want)
{
	struct val r;

	validate(s, 0, body, &r);
	if (r.rc != 0)
		print_message("# unexpected errors for %s\n", body);
	assert_int_equal(r.rc, 0);
	assert_true(r.row[feature] == want);
	val_done(&r);
}

static void
test_boundaries(void **state)
{
	const struct schema *s = *state;
	char body[128];

	/* Inclusive bounds admit the bound itself. */
	assert_row_ok(s, "{\"a\": 0, \"b\": 0.5, \"n\": 1}", F_A, 0);
	assert_row_ok(s, "{\"a\": 10, \"b\": 0.5, \"n\": 5}", F_A, 10);
	assert_row_ok(s, "{\"a\": 10.0, \"b\": 0.5, \"n\": 1}", F_A, 10);
	assert_row_ok(s, "{\"a\": -0.0, \"b\": 0.5, \"n\": 1}", F_A, 0);
	assert_row_ok(s, "{\"a\": 1, \"b\": 0.5, \"n\": 5, \"opt\": 100}",
	    F_OPT, 100);
	/* Exclusive bounds: the closest doubles inside pass... */
	snprintf(body, sizeof(body), "{\"a\": 1, \"b\": %.17g, \"n\": 1}",
	    nextafter(0.0, 1.0));
	assert_row_ok(s, body, F_B, nextafter(0.0, 1.0));
	snprintf(body, sizeof(body), "{\"a\": 1, \"b\": %.17g, \"n\": 1}",
	    nextafter(1.0, 0.0));
	assert_row_ok(s, body, F_B, nextafter(1.0, 0.0));
	/* ... the bounds themselves do not. */
	assert_single(s, 0, "{\"a\": 1, \"b\": 0.0, \"n\": 1}", "greater_than",
	    "b", "0");
	assert_single(s, 0, "{\"a\": 1, \"b\": -0.0, \"n\": 1}",
	    "greater_than", "b", NULL);
	assert_single(s, 0, "{\"a\": 1, \"b\": 1.0, \"n\": 1}", "less_than",
	    "b", "1");
	/* The closest doubles outside inclusive bounds fail. */
	snprintf(body, sizeof(body), "{\"a\": %.17g, \"b\": 0.5, \"n\": 1}",
	    nextafter(10.0, 11.0));
	assert_single(s, 0, body, "less_than_equal", "a", NULL);
	{
		struct val r;
		const cJSON *in;

		/* (cJSON's printer would round the echo: compare values.) */
		validate(s, 0, body, &r);
		in = cJSON_GetObjectItem(cJSON_GetArrayItem(r.detail, 0),
		    "input");
		assert_true(cJSON_IsNumber(in));
		assert_true(in->valuedouble == nextafter(10.0, 11.0));
		val_done(&r);
	}
	snprintf(body, sizeof(body), "{\"a\": %.17g, \"b\": 0.5, \"n\": 1}",
	    -nextafter(0.0, 1.0));
	assert_single(s, 0, body, "greater_than_equal", "a", NULL);
	assert_single(s, 1, "a=1&b=0.5&n=1&opt=100.00000000000001",
	    "less_than_equal", "opt", NULL);
}

/* ---- limits ------------------------------------------------------------- */

static void
test_verr_max_cap(void **state)
{
	const struct schema *s = *state;
	struct buf body = BUF_INIT;
	const cJSON *last;
	struct val r;
	int i;

	buf_puts(&body, "{\"a\": 1, \"b\": 0.5, \"n\": 1");
	for (i = 0; i < 1000; i++)
		buf_printf(&body, ", \"x%d\": %d", i, i);
	buf_putc(&body, '}');
	validate(s, 0, body.data, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.total, 1000);
	assert_int_equal(r.n, VERR_MAX);
	assert_int_equal(cJSON_GetArraySize(r.detail), VERR_MAX);
	assert_item(&r, 0, "extra_forbidden", "x0", "0");
	assert_item(&r, VERR_MAX - 1, "extra_forbidden", "x63", "63");
	last = cJSON_GetArrayItem(r.detail, VERR_MAX);
	assert_null(last);
	val_done(&r);

	/* Missing fields after the cap are still counted. */
	buf_reset(&body);
	buf_puts(&body, "{\"x\": 0");
	for (i = 1; i < 1000; i++)
		buf_printf(&body, ", \"x%d\": 0", i);
	buf_putc(&body, '}');
	validate(s, 0, body.data, &r);
	assert_int_equal(r.total, 1003);
	assert_int_equal(r.n, VERR_MAX);
	val_done(&r);
	buf_free(&body);
}

static void
test_huge_field_name(void **state)
{
	const struct schema *s = *state;
	const size_t big = 1024 * 1024;
	struct buf body = BUF_INIT;
	const cJSON *it, *loc, *input;
	char *name = malloc(big + 1);
	struct val r;

	assert_non_null(name);
	memset(name, 'k', big);
	name[big] = '\0';
	buf_puts(&body, "{\"a\": 1, \"b\": 0.5, \"n\": 1, \"");
	buf_puts(&body, name);
	buf_puts(&body, "\": \"");
	buf_puts(&body, name);	/* and a 1 MB value */
	buf_puts(&body, "\"}");
	validate(s, 0, body.data, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.n, 1);
	it = cJSON_GetArrayItem(r.detail, 0);
	assert_string_equal(cJSON_GetObjectItem(it, "type")->valuestring,
	    "extra_forbidden");
	loc = cJSON_GetObjectItem(it, "loc");
	assert_int_equal(cJSON_GetArraySize(loc), 2);
	/* Cut to VERR_NAME_MAX bytes and marked with "...". */
	name[VERR_NAME_MAX] = '\0';
	strcat(name, "...");
	assert_string_equal(cJSON_GetArrayItem(loc, 1)->valuestring, name);
	input = cJSON_GetObjectItem(it, "input");
	assert_true(cJSON_IsString(input));
	assert_true(strlen(input->valuestring) < 200);
	assert_memory_equal(input->valuestring + strlen(input->valuestring) - 3,
	    "...", 3);
	val_done(&r);
	/* The whole response stays small. */
	{
		struct input in;
		struct verrs v;
		struct buf out = BUF_INIT;
		double row[NF];

		input_init(&in);
		verrs_init(&v);
		assert_int_equal(decode_json(body.data, body.len, &in, &v), 0);
		assert_int_equal(schema_validate(s, &in, NULL, row, &v), -1);
		verrs_render(&v, &out);
		assert_true(out.len < 1024);
		buf_free(&out);
		verrs_free(&v);
		input_free(&in);
	}
	/* A UTF-8 name is cut on a character boundary. */
	buf_reset(&body);
	buf_puts(&body, "{\"a\": 1, \"b\": 0.5, \"n\": 1, \"");
	for (int i = 0; i < 100; i++)
		buf_puts(&body, "\xC3\xA9");	/* 200 bytes */
	buf_puts(&body, "\": 0}");
	validate(s, 0, body.data, &r);
	it = cJSON_GetArrayItem(r.detail, 0);
	loc = cJSON_GetObjectItem(it, "loc");
	{
		const char *got = cJSON_GetArrayItem(loc, 1)->valuestring;

		assert_int_equal(strlen(got), VERR_NAME_MAX + 3);
		assert_memory_equal(got + VERR_NAME_MAX - 2, "\xC3\xA9...", 5);
	}
	val_done(&r);
	buf_free(&body);
	free(name);
}

/* ---- the index ---------------------------------------------------------- */

static void
test_index_and_lookup(void **state)
{
	const struct schema *s = *state;
	struct schema d;
	size_t dup = 0, i;
	char name[32];

	assert_int_equal(schema_lookup(s, "a", 1), F_A);
	assert_int_equal(schema_lookup(s, "opt", 3), F_OPT);
	assert_int_equal(schema_lookup(s, "op", 2), -1);
	assert_int_equal(schema_lookup(s, "optx", 3), F_OPT);
	assert_int_equal(schema_lookup(s, "A", 1), -1);
	assert_int_equal(schema_lookup(s, "", 0), -1);

	/* A duplicate name is reported by the index of its second use. */
	memset(&d, 0, sizeof(d));
	d.n = 3;
	d.features = calloc(3, sizeof(struct feature));
	assert_non_null(d.features);
	feature_set(&d.features[0], "x", FEATURE_NUMBER);
	feature_set(&d.features[1], "y", FEATURE_NUMBER);
	feature_set(&d.features[2], "x", FEATURE_NUMBER);
	assert_int_equal(schema_index(&d, &dup), -1);
	assert_int_equal(dup, 2);
	schema_free(&d);

	/* Many features: every one found. */
	memset(&d, 0, sizeof(d));
	d.n = 3000;
	d.features = calloc(d.n, sizeof(struct feature));
	assert_non_null(d.features);
	for (i = 0; i < d.n; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		feature_set(&d.features[i], name, FEATURE_NUMBER);
	}
	assert_int_equal(schema_index(&d, &dup), 0);
	for (i = 0; i < d.n; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		assert_int_equal(schema_lookup(&d, name, strlen(name)), (long)i);
	}
	assert_int_equal(schema_lookup(&d, "f3000", 5), -1);
	schema_free(&d);
}

static void
test_verrs_render_empty_and_reset(void **state)
{
	struct verrs v;
	struct buf out = BUF_INIT;
	struct verr_loc loc = verr_loc_name(NULL, "q\"", 2);

	(void)state;
	verrs_init(&v);
	verrs_render(&v, &out);
	assert_string_equal(out.data, "{\"detail\":[]}");
	buf_reset(&out);
	verrs_add(&v, "x_type", &loc, "m", NULL, "{\"k\":1}");
	verrs_render(&v, &out);
	assert_string_equal(out.data, "{\"detail\":[{\"type\":\"x_type\","
	    "\"loc\":[\"body\",\"q\\\"\"],\"msg\":\"m\",\"input\":null,"
	    "\"ctx\":{\"k\":1}}]}");
	verrs_reset(&v);
	assert_int_equal(v.n, 0);
	assert_int_equal(v.total, 0);
	assert_null(v.first_type);
	buf_reset(&out);
	verrs_render(&v, &out);
	assert_string_equal(out.data, "{\"detail\":[]}");
	buf_free(&out);
	verrs_free(&v);
}

/* ---- category features --------------------------------------------------- */

/* The category schema:
 *   city   category Paris, Oslo, Rome; unknown: error
 *   plan   category basic, it's, a"b; unknown: ignore; nullable
 *   x      number, nullable
 *   color  category red; optional, default red
 */
enum { C_CITY, C_PLAN, C_X, C_COLOR, NC };

/* Makes f a category feature of the n strings in list. */
static void
category_set(struct feature *f, const char *name, const char *const *list,
    size_t n)
{
	char **cats = calloc(n, sizeof(char *));
	size_t i, dup = 999;

	assert_non_null(cats);
	feature_set(f, name, FEATURE_NUMBER);
	for (i = 0; i < n; i++) {
		cats[i] = strdup(list[i]);
		assert_non_null(cats[i]);
	}
	assert_int_equal(schema_set_categories(f, cats, n, &dup), 0);
	assert_int_equal(dup, 999);
	assert_int_equal(f->type, FEATURE_CATEGORY);
}

static void
category_schema(struct schema *s)
{
	static const char *const cities[] = { "Paris", "Oslo", "Rome" };
	static const char *const plans[] = { "basic", "it's", "a\"b" };
	static const char *const colors[] = { "red" };
	size_t dup = 999;

	memset(s, 0, sizeof(*s));
	s->n = NC;
	s->features = calloc(NC, sizeof(struct feature));
	assert_non_null(s->features);
	category_set(&s->features[C_CITY], "city", cities, 3);
	category_set(&s->features[C_PLAN], "plan", plans, 3);
	s->features[C_PLAN].unknown_ignore = 1;
	s->features[C_PLAN].nullable = 1;
	feature_set(&s->features[C_X], "x", FEATURE_NUMBER);
	s->features[C_X].nullable = 1;
	category_set(&s->features[C_COLOR], "color", colors, 1);
	s->features[C_COLOR].required = 0;
	s->features[C_COLOR].dflt = 0;
	assert_int_equal(schema_index(s, &dup), 0);
}

/* Frees a calloc'd feature through schema_free(). */
static void
feature_free(struct feature *f)
{
	struct schema s;

	memset(&s, 0, sizeof(s));
	s.features = f;
	s.n = 1;
	schema_free(&s);
}

static void
assert_row(const struct val *r, double city, double plan, double x,
    double color)
{
	const double want[NC] = { city, plan, x, color };
	size_t i;

	assert_int_equal(r->rc, 0);
	for (i = 0; i < NC; i++)
		if (isnan(want[i]))
			assert_true(isnan(r->row[i]));
		else
			assert_true(r->row[i] == want[i]);
}

static void
test_category_valid(void **state)
{
	struct schema s;
	struct val r;

	(void)state;
	category_schema(&s);
	validate(&s, 0, "{\"city\":\"Oslo\",\"plan\":\"it's\",\"x\":null}",
	    &r);
	assert_row(&r, 1, 1, NAN, 0);
	val_done(&r);
	/* Unknown and ignored: -1. A form sends text. */
	validate(&s, 1, "city=Rome&plan=zzz&x=2&color=red", &r);
	assert_row(&r, 2, SCHEMA_UNKNOWN, 2, 0);
	val_done(&r);
	validate(&s, 1, "city=Paris&plan=a%22b&x=-1", &r);
	assert_row(&r, 0, 2, -1, 0);
	val_done(&r);
	/* Positional, with a null for the nullable category. */
	validate(&s, 0, "{\"features\":[\"Paris\",null,1.5,\"red\"]}", &r);
	assert_row(&r, 0, NAN, 1.5, 0);
	val_done(&r);
	/* Exact bytes: no case folding, no trimming, no prefixes. */
	validate(&s, 0, "{\"city\":\"Paris\",\"plan\":\"Basic\",\"x\":0,"
	    "\"color\":\"red\"}", &r);
	assert_row(&r, 0, SCHEMA_UNKNOWN, 0, 0);
	val_done(&r);
	schema_free(&s);
}

static void
test_category_errors(void **state)
{
	struct schema s;
	struct val r;

	(void)state;
	category_schema(&s);
	validate(&s, 0, "{\"city\":\"Berlin\",\"plan\":\"basic\",\"x\":1}", &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.n, 1);
	assert_item(&r, 0, "enum", "city", "\"Berlin\"");
	assert_string_equal(item_msg(&r, 0),
	    "Input should be 'Paris', 'Oslo' or 'Rome'");
	assert_ctx(&r, 0, "{\"expected\":\"'Paris', 'Oslo' or 'Rome'\"}");
	val_done(&r);
	assert_single(&s, 1, "city=paris&plan=basic&x=1", "enum", "city",
	    "\"paris\"");
	/* Not a string: string_type, whatever the unknown policy. */
	assert_single(&s, 0, "{\"city\":5,\"plan\":\"basic\",\"x\":1}",
	    "string_type", "city", "5");
	assert_single(&s, 0, "{\"city\":null,\"plan\":\"basic\",\"x\":1}",
	    "string_type", "city", "null");
	assert_single(&s, 0, "{\"city\":\"Oslo\",\"plan\":true,\"x\":1}",
	    "string_type", "plan", "true");
	assert_single(&s, 0, "{\"city\":\"Oslo\",\"plan\":[\"basic\"],\"x\":1}",
	    "string_type", "plan", NULL);
	/* A string for a number stays a float_type. */
	assert_single(&s, 0, "{\"city\":\"Oslo\",\"plan\":\"basic\",\"x\":\"1\"}",
	    "float_type", "x", "\"1\"");
	/* All at once, positional. */
	validate(&s, 0, "{\"features\":[\"Berlin\",7,null,\"blue\"]}", &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.n, 3);
	assert_item(&r, 0, "enum", "features/#0", "\"Berlin\"");
	assert_item(&r, 1, "string_type", "features/#1", "7");
	assert_item(&r, 2, "enum", "features/#3", "\"blue\"");
	assert_string_equal(item_msg(&r, 1), "Input should be a valid string");
	assert_null(item_ctx(&r, 1));
	assert_string_equal(item_msg(&r, 2), "Input should be 'red'");
	assert_ctx(&r, 2, "{\"expected\":\"'red'\"}");
	val_done(&r);
	schema_free(&s);
}

/* The enum text quotes as Python's repr() and stops near 1 KiB. */
static void
test_category_enum_text(void **state)
{
	static const char *const odd[] = { "a\\b", "x\ny\t", "it's",
		"\"q\" 'p'", "\xc2\x85", "caf\xc3\xa9" };
	const char *list[400];
	char names[400][8];
	struct schema s;
	struct feature *f = calloc(1, sizeof(*f));
	size_t i, len;

	(void)state;
	category_schema(&s);
	assert_string_equal(s.features[C_PLAN].enum_expected,
	    "'basic', \"it's\" or 'a\"b'");
	schema_free(&s);

	assert_non_null(f);
	category_set(f, "odd", odd, 6);
	assert_string_equal(f->enum_expected, "'a\\\\b', 'x\\ny\\t', \"it's\", "
	    "'\"q\" \\'p\\'', '\\x85' or 'caf\xc3\xa9'");
	feature_free(f);

	for (i = 0; i < 400; i++) {
		snprintf(names[i], sizeof(names[i]), "c%03zu", i);
		list[i] = names[i];
	}
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	category_set(f, "many", list, 400);
	len = strlen(f->enum_expected);
	assert_true(len > 900 && len < 1100);
	assert_memory_equal(f->enum_expected, "'c000', 'c001', ", 16);
	assert_non_null(strstr(f->enum_expected, ", ... ("));
	assert_string_equal(f->enum_expected + len - strlen(" more)"),
	    " more)");
	for (i = 0; i < 400; i++)
		assert_int_equal(schema_category(f, names[i], 4), (long)i);
	assert_int_equal(schema_category(f, "c40", 3), -1);
	assert_int_equal(schema_category(f, "c4000", 5), -1);
	assert_int_equal(schema_category(f, "", 0), -1);
	feature_free(f);
}

static void
test_category_duplicates(void **state)
{
	static const char *const twice[] = { "b", "a", "c", "a" };
	char **cats = calloc(4, sizeof(char *));
	struct feature *f = calloc(1, sizeof(*f));
	size_t i, dup = 999;

	(void)state;
	assert_non_null(cats);
	assert_non_null(f);
	feature_set(f, "d", FEATURE_NUMBER);
	for (i = 0; i < 4; i++)
		cats[i] = strdup(twice[i]);
	assert_int_equal(schema_set_categories(f, cats, 4, &dup), -1);
	assert_int_equal(dup, 3);
	feature_free(f);	/* f owns cats even on failure */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_json_and_form),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_float_type),
		cmocka_unit_test(test_float_parsing),
		cmocka_unit_test(test_finite_number),
		cmocka_unit_test(test_bound_errors),
		cmocka_unit_test(test_int_from_float),
		cmocka_unit_test(test_extra_forbidden),
		cmocka_unit_test(test_duplicate_field),
		cmocka_unit_test(test_all_errors_at_once),
		cmocka_unit_test(test_loc_prefix),
		cmocka_unit_test(test_positional),
		cmocka_unit_test(test_positional_list_type_and_extras),
		cmocka_unit_test(test_validate_array_direct),
		cmocka_unit_test(test_feature_named_features),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_verr_max_cap),
		cmocka_unit_test(test_huge_field_name),
		cmocka_unit_test(test_index_and_lookup),
		cmocka_unit_test(test_verrs_render_empty_and_reset),
		cmocka_unit_test(test_category_valid),
		cmocka_unit_test(test_category_errors),
		cmocka_unit_test(test_category_enum_text),
		cmocka_unit_test(test_category_duplicates),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
