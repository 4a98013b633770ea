/* Unit tests: request body decoding (decode_json, decode_form) and the JSON
 * writer (buf_json_strn, buf_json_double). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "decode.h"
#include "input.h"
#include "verr.h"


/* One decode: the input, the errors and the rendered error document. */
struct dec {
	struct input	 in;
	struct verrs	 v;
	int		 rc;
	cJSON		*doc;	/* verrs_render() parsed */
	cJSON		*item;	/* detail[0] or NULL */
};

static void
dec_run(struct dec *d, int form, const char *body, size_t len)
{
	struct buf out = BUF_INIT;

	input_init(&d->in);
	verrs_init(&d->v);
	d->rc = form ? decode_form(body, len, &d->in, &d->v) :
	    decode_json(body, len, &d->in, &d->v);
	verrs_render(&d->v, &out);
	d->doc = cJSON_Parse(out.data);
	assert_non_null(d->doc);
	d->item = cJSON_GetArrayItem(cJSON_GetObjectItem(d->doc, "detail"), 0);
	buf_free(&out);
}

static void
dec_done(struct dec *d)
{
	cJSON_Delete(d->doc);
	input_free(&d->in);
	verrs_free(&d->v);
}

static void
json_run(struct dec *d, const char *body)
{
	dec_run(d, 0, body, strlen(body));
}

static void
form_run(struct dec *d, const char *body)
{
	dec_run(d, 1, body, strlen(body));
}

/* Asserts exactly one error, of the given type. */
static void
assert_one_error(const struct dec *d, const char *type)
{
	const cJSON *detail = cJSON_GetObjectItem(d->doc, "detail");

	assert_int_equal(d->rc, -1);
	assert_int_equal(d->v.total, 1);
	assert_int_equal(d->v.n, 1);
	assert_int_equal(cJSON_GetArraySize(detail), 1);
	assert_string_equal(cJSON_GetObjectItem(d->item, "type")->valuestring,
	    type);
	assert_string_equal(d->v.first_type, type);
	/* A failed decode leaves the input empty. */
	assert_int_equal(d->in.n, 0);
	assert_null(d->in.json);
	assert_null(d->in.text);
}

/* Asserts one json_invalid error at loc ["body", offset] with ctx.error. */
static void
assert_json_invalid(const char *body, size_t len, long offset,
    const char *why)
{
	struct dec d;
	const cJSON *loc, *ctx;

	dec_run(&d, 0, body, len);
	assert_one_error(&d, "json_invalid");
	loc = cJSON_GetObjectItem(d.item, "loc");
	assert_int_equal(cJSON_GetArraySize(loc), 2);
	assert_string_equal(cJSON_GetArrayItem(loc, 0)->valuestring, "body");
	assert_true(cJSON_IsNumber(cJSON_GetArrayItem(loc, 1)));
	assert_int_equal(cJSON_GetArrayItem(loc, 1)->valueint, offset);
	assert_string_equal(cJSON_GetObjectItem(d.item, "msg")->valuestring,
	    "JSON decode error");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(d.item, "input")));
	ctx = cJSON_GetObjectItem(d.item, "ctx");
	assert_non_null(ctx);
	/* "invalid JSON" stands for any specific syntax message ("expected
	 * ':'"); the others must match exactly. */
	if (why != NULL && strcmp(why, "invalid JSON") == 0) {
		const char *got = cJSON_GetObjectItem(ctx, "error")->valuestring;

		assert_true(got[0] != '\0');
		assert_string_not_equal(got, "unexpected end of input");
		assert_string_not_equal(got, "invalid UTF-8");
		assert_string_not_equal(got, "NUL byte in body");
	} else if (why != NULL)
		assert_string_equal(cJSON_GetObjectItem(ctx, "error")->valuestring,
		    why);
	dec_done(&d);
}

static void
assert_json_invalid_str(const char *body, long offset, const char *why)
{
	assert_json_invalid(body, strlen(body), offset, why);
}

/* Asserts one form_invalid error whose ctx is {error: why, offset: off}. */
static void
assert_form_invalid(const char *body, size_t len, const char *why, long off)
{
	struct dec d;
	const cJSON *ctx, *loc;

	dec_run(&d, 1, body, len);
	assert_one_error(&d, "form_invalid");
	loc = cJSON_GetObjectItem(d.item, "loc");
	assert_int_equal(cJSON_GetArraySize(loc), 1);
	assert_string_equal(cJSON_GetArrayItem(loc, 0)->valuestring, "body");
	assert_string_equal(cJSON_GetObjectItem(d.item, "msg")->valuestring,
	    "Invalid form body");
	ctx = cJSON_GetObjectItem(d.item, "ctx");
	assert_non_null(ctx);
	assert_string_equal(cJSON_GetObjectItem(ctx, "error")->valuestring, why);
	if (off >= 0)
		assert_int_equal(cJSON_GetObjectItem(ctx, "offset")->valueint,
		    off);
	dec_done(&d);
}

static void
assert_form_invalid_str(const char *body, const char *why, long off)
{
	assert_form_invalid(body, strlen(body), why, off);
}

static void
assert_field(const struct input *in, size_t i, const char *name,
    enum value_kind kind)
{
	assert_true(i < in->n);
	assert_int_equal(in->fields[i].name_len, strlen(name));
	assert_memory_equal(in->fields[i].name, name, strlen(name));
	assert_int_equal(in->fields[i].value.kind, kind);
}

static void
assert_text(const struct input *in, size_t i, const char *name,
    const char *text, size_t len)
{
	assert_field(in, i, name, VALUE_TEXT);
	assert_int_equal(in->fields[i].value.len, len);
	assert_memory_equal(in->fields[i].value.str, text, len);
	assert_null(in->fields[i].value.json);
}

/* ---- decode_json ----------------------------------------------------- */

static void
test_json_object_fields_in_order(void **state)
{
	struct dec d;

	(void)state;
	json_run(&d, "{\"b\": 1.5, \"a\": \"x y\", \"c\": null, \"d\": true, "
	    "\"e\": [1, 2], \"f\": {\"g\": 1}, \"A\": -3e2, \"\": 0}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.v.total, 0);
	assert_int_equal(d.v.n, 0);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d.doc,
	    "detail")), 0);
	assert_int_equal(d.in.is_json, 1);
	assert_non_null(d.in.json);
	assert_int_equal(d.in.n, 8);
	assert_field(&d.in, 0, "b", VALUE_NUMBER);
	assert_true(d.in.fields[0].value.num == 1.5);
	assert_field(&d.in, 1, "a", VALUE_STRING);
	assert_int_equal(d.in.fields[1].value.len, 3);
	assert_string_equal(d.in.fields[1].value.str, "x y");
	assert_field(&d.in, 2, "c", VALUE_NULL);
	assert_field(&d.in, 3, "d", VALUE_BOOL);
	assert_field(&d.in, 4, "e", VALUE_ARRAY);
	assert_int_equal(cJSON_GetArraySize(d.in.fields[4].value.json), 2);
	assert_field(&d.in, 5, "f", VALUE_OBJECT);
	assert_field(&d.in, 6, "A", VALUE_NUMBER);
	assert_true(d.in.fields[6].value.num == -300.0);
	assert_field(&d.in, 7, "", VALUE_NUMBER);
	dec_done(&d);

	/* Escapes in names and values are decoded; leading and trailing
	 * white space around the document is fine. */
	json_run(&d, " \r\n\t{\"n\\u00e9\\\"\": \"\\u263a\\n\"} \t\r\n ");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.in.n, 1);
	assert_field(&d.in, 0, "n\xC3\xA9\"", VALUE_STRING);
	assert_string_equal(d.in.fields[0].value.str, "\xE2\x98\xBA\n");
	assert_int_equal(d.in.fields[0].value.len, 4);
	dec_done(&d);

	/* An empty object decodes to no fields. */
	json_run(&d, "{}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.in.n, 0);
	assert_int_equal(d.in.is_json, 1);
	dec_done(&d);
}

static void
test_json_duplicate_keys_kept(void **state)
{
	struct dec d;

	(void)state;
	/* Both members are kept, in order: the schema reports the repeat. */
	json_run(&d, "{\"a\":1,\"a\":2}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.in.n, 2);
	assert_field(&d.in, 0, "a", VALUE_NUMBER);
	assert_field(&d.in, 1, "a", VALUE_NUMBER);
	assert_true(d.in.fields[0].value.num == 1);
	assert_true(d.in.fields[1].value.num == 2);
	dec_done(&d);
}

static void
test_json_empty_body_missing(void **state)
{
	static const char *const bodies[] = { "", " ", "\r\n\t  \n" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct dec d;
		const cJSON *loc;

		json_run(&d, bodies[i]);
		assert_one_error(&d, "missing");
		loc = cJSON_GetObjectItem(d.item, "loc");
		assert_int_equal(cJSON_GetArraySize(loc), 1);
		assert_string_equal(cJSON_GetArrayItem(loc, 0)->valuestring,
		    "body");
		assert_string_equal(cJSON_GetObjectItem(d.item,
		    "msg")->valuestring, "Field required");
		assert_true(cJSON_IsNull(cJSON_GetObjectItem(d.item, "input")));
		dec_done(&d);
	}
	/* A NULL pointer with length 0 is an empty body too. */
	{
		struct dec d;

		dec_run(&d, 0, NULL, 0);
		assert_one_error(&d, "missing");
		dec_done(&d);
	}
}

static void
test_json_malformed_offsets(void **state)
{
	(void)state;
	/* The offsets are those Python's json module reports (FastAPI's
	 * loc ["body", pos]). */
	assert_json_invalid_str("{\"a\":tru}", 5, "invalid JSON");
	assert_json_invalid_str("{\"a\" 1}", 5, "invalid JSON");
	assert_json_invalid_str("{\"a\":1,}", 7, "invalid JSON");
	assert_json_invalid_str("{\"a\":1 \"b\":2}", 7, "invalid JSON");
	assert_json_invalid_str("{\"a\":[1,2}", 9, "invalid JSON");
	assert_json_invalid_str("{\"a\":'x'}", 5, "invalid JSON");
	assert_json_invalid_str("{\"a\":-}", 5, "invalid JSON");
	assert_json_invalid_str("{\"a\":.5}", 5, "invalid JSON");
	assert_json_invalid_str("x", 0, "invalid JSON");
	/* Cut inside a literal: Python also points at its start. */
	assert_json_invalid_str("{\"a\":tr", 5, "invalid JSON");
}

static void
test_json_truncated_clean_error(void **state)
{
	static const char *const bodies[] = { "{", "{\"a\"", "{\"a\":",
	    "{\"a\":1", "{\"a\":1,", "{\"a\":[1,2", "[" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct dec d;
		const cJSON *off;
		size_t len = strlen(bodies[i]);

		json_run(&d, bodies[i]);
		assert_one_error(&d, "json_invalid");
		off = cJSON_GetArrayItem(cJSON_GetObjectItem(d.item, "loc"), 1);
		assert_true(cJSON_IsNumber(off));
		/* At the end of the input or on its last byte (see the BUG
		 * test below for the exact offset). */
		assert_in_range(off->valueint, len - 1, len);
		dec_done(&d);
	}
	/* An unterminated string: an error somewhere in it. */
	{
		struct dec d;
		const cJSON *off;

		json_run(&d, "{\"a\":\"xy");
		assert_one_error(&d, "json_invalid");
		off = cJSON_GetArrayItem(cJSON_GetObjectItem(d.item, "loc"), 1);
		assert_in_range(off->valueint, 5, 8);
		dec_done(&d);
	}
}

/* Regression (was a bug): input_parse_json() (src/input.c) takes the error offset from cJSON,
 * which clamps it to len - 1 when the input ends early. A truncated body
 * "{\"a\":" (5 bytes) is reported at loc ["body", 4] with ctx.error
 * "invalid JSON"; expected (as Python's json: "Expecting value: char 5")
 * loc ["body", 5] and ctx.error "unexpected end of input" -- the branch in
 * decode_json() that would say so (bad >= len) can never run. */
static void
test_json_truncated_offset_is_len(void **state)
{
	(void)state;
	assert_json_invalid_str("{\"a\":", 5, "unexpected end of input");
	assert_json_invalid_str("{\"a\":1", 6, "unexpected end of input");
	assert_json_invalid_str("{", 1, "unexpected end of input");
}

static void
test_json_trailing_garbage(void **state)
{
	(void)state;
	assert_json_invalid_str("{\"a\":1}x", 7, "invalid JSON");
	assert_json_invalid_str("{\"a\":1} x", 8, "invalid JSON");
	assert_json_invalid_str("{\"a\":1}{}", 7, "invalid JSON");
	assert_json_invalid_str("{\"a\":1}\n\n,", 9, "invalid JSON");
	assert_json_invalid_str("{}\f", 2, "invalid JSON");
}

static void
test_json_trailing_whitespace_ok(void **state)
{
	struct dec d;

	(void)state;
	json_run(&d, "{\"a\":1}  \r\n\t\n");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.v.total, 0);
	assert_int_equal(d.in.n, 1);
	assert_field(&d.in, 0, "a", VALUE_NUMBER);
	dec_done(&d);
}

static void
test_json_invalid_utf8_and_nul(void **state)
{
	(void)state;
	/* Lone continuation byte, bad lead byte, overlong '/', a UTF-16
	 * surrogate, a code point past U+10FFFF, a sequence cut short. */
	assert_json_invalid_str("{\"a\":\"\xff\"}", 6, "invalid UTF-8");
	assert_json_invalid_str("{\"a\":\"\x80\"}", 6, "invalid UTF-8");
	assert_json_invalid_str("{\"a\":\"\xC0\xAF\"}", 6, "invalid UTF-8");
	assert_json_invalid_str("{\"a\":\"\xED\xA0\x80\"}", 6, "invalid UTF-8");
	assert_json_invalid_str("{\"a\":\"\xF4\x90\x80\x80\"}", 6,
	    "invalid UTF-8");
	assert_json_invalid_str("{\"\xC3\":1}", 2, "invalid UTF-8");
	assert_json_invalid_str("{\"a\":1}\xC3", 7, "invalid UTF-8");
	/* Valid multi-byte text around the bad byte: the offset is a byte
	 * offset. */
	assert_json_invalid_str("{\"\xC3\xA9\xE2\x98\xBA\":\"\xfe\"}", 10,
	    "invalid UTF-8");
	/* NUL bytes anywhere, even where white space would be allowed. */
	assert_json_invalid("{\"a\":1}\0", 8, 7, "NUL byte in body");
	assert_json_invalid("{\"a\0\":1}", 8, 3, "NUL byte in body");
	assert_json_invalid("\0{}", 3, 0, "NUL byte in body");
	assert_json_invalid("{\"a\":\"x\0y\"}", 11, 7, "NUL byte in body");
}

/* Regression (was a bug): a JSON string escape \u0000 is cut by cJSON at the NUL, and
 * decode_json_members() (src/decode_json.c) takes the name's length with
 * strlen(): {"a\u0000zzz": 1} decodes to a field named "a" (name_len 1), so
 * a client can send {"sepal_length\u0000junk": 5} and have it taken as
 * sepal_length. Expected: the name is kept whole (name_len 5) or the body
 * is rejected (json_invalid, as a raw NUL byte is). Same for values:
 * "x\u0000y" becomes "x" (len 1). */
static void
test_json_escaped_nul_not_truncated(void **state)
{
	struct dec d;

	(void)state;
	json_run(&d, "{\"a\\u0000zzz\":1}");
	if (d.rc == 0) {
		assert_int_equal(d.in.n, 1);
		assert_int_equal(d.in.fields[0].name_len, 5);
	} else
		assert_one_error(&d, "json_invalid");
	dec_done(&d);
}

/* Regression (was a bug): cJSON (via input_parse_json(), src/input.c) accepts bodies that are
 * not JSON, contrary to decode.h ("check that the bytes are well-formed
 * JSON") and to FastAPI, which answers json_invalid for each of these:
 * leading control bytes ("\x01{}", "\f{}": cJSON skips every byte <= 0x20
 * as white space), numbers with a leading zero ("01") or a bare trailing
 * point ("1."), and raw control characters inside strings ("x<TAB>y"). The
 * offsets are Python's. */
static void
test_json_lenient_cjson_rejected(void **state)
{
	(void)state;
	assert_json_invalid_str("\x01{}", 0, "invalid JSON");
	assert_json_invalid_str("\f{}", 0, "invalid JSON");
	assert_json_invalid_str("{\"a\":01}", 6, "invalid JSON");
	assert_json_invalid_str("{\"a\":1.}", 6, "invalid JSON");
	assert_json_invalid_str("{\"a\":\"x\ty\"}", 7, "invalid JSON");
}

static void
test_json_top_level_not_object(void **state)
{
	static const struct {
		const char	*body;
		const char	*input;	/* the rendered "input" */
	} cases[] = {
		{ "[1, 2]", "[1,2]" },
		{ "[]", "[]" },
		{ "\"x\"", "\"x\"" },
		{ "5", "5" },
		{ "null", "null" },
		{ " true ", "true" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dec d;
		const cJSON *loc;
		char *in;

		json_run(&d, cases[i].body);
		assert_one_error(&d, "model_attributes_type");
		loc = cJSON_GetObjectItem(d.item, "loc");
		assert_int_equal(cJSON_GetArraySize(loc), 1);
		assert_string_equal(cJSON_GetArrayItem(loc, 0)->valuestring,
		    "body");
		assert_string_equal(cJSON_GetObjectItem(d.item,
		    "msg")->valuestring, "Input should be a valid dictionary "
		    "or object to extract fields from");
		in = cJSON_PrintUnformatted(cJSON_GetObjectItem(d.item,
		    "input"));
		assert_string_equal(in, cases[i].input);
		free(in);
		dec_done(&d);
	}
}

static void
test_json_deep_nesting(void **state)
{
	const size_t n = 100000;
	char *body = malloc(n + 8);
	struct dec d;

	(void)state;
	assert_non_null(body);
	memset(body, '[', n);
	dec_run(&d, 0, body, n);
	assert_one_error(&d, "json_invalid");
	dec_done(&d);

	/* Nested objects, inside a member. */
	memcpy(body, "{\"a\":", 5);
	for (size_t i = 5; i + 5 <= n; i += 5)
		memcpy(body + i, "{\"a\":", 5);
	dec_run(&d, 0, body, n);
	assert_one_error(&d, "json_invalid");
	dec_done(&d);

	/* Balanced deep nesting is rejected too, without a crash. */
	memset(body, '[', n / 2);
	memset(body + n / 2, ']', n / 2);
	dec_run(&d, 0, body, n);
	assert_int_equal(d.rc, -1);
	assert_int_equal(d.in.n, 0);
	dec_done(&d);
	free(body);
}

static void
test_json_huge_number(void **state)
{
	enum { digits = 10000 };
	static char body[digits + 32];
	struct dec d;
	size_t len;

	(void)state;
	/* An integer of 10,000 digits: either a clean decode error, or a
	 * number (which overflows to +inf and is refused by the schema as
	 * finite_number). */
	memcpy(body, "{\"a\":", 5);
	memset(body + 5, '7', digits);
	memcpy(body + 5 + digits, "}", 2);
	len = strlen(body);
	dec_run(&d, 0, body, len);
	if (d.rc == 0) {
		assert_int_equal(d.v.total, 0);
		assert_int_equal(d.in.n, 1);
		assert_field(&d.in, 0, "a", VALUE_NUMBER);
		assert_true(isinf(d.in.fields[0].value.num));
		assert_true(d.in.fields[0].value.num > 0);
	} else
		assert_one_error(&d, "json_invalid");
	dec_done(&d);

	/* 0.777... with 10,000 digits: a clean error or 7/9. */
	memcpy(body, "{\"a\":0.", 7);
	memset(body + 7, '7', digits);
	memcpy(body + 7 + digits, "}", 2);
	len = strlen(body);
	dec_run(&d, 0, body, len);
	if (d.rc == 0) {
		assert_int_equal(d.in.n, 1);
		assert_true(d.in.fields[0].value.num == 7.0 / 9.0);
	} else
		assert_one_error(&d, "json_invalid");
	dec_done(&d);
}

static void
test_json_overflow_is_inf(void **state)
{
	struct dec d;

	(void)state;
	json_run(&d, "{\"a\":1e999,\"b\":-1e999,\"c\":1e-999}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.in.n, 3);
	assert_true(isinf(d.in.fields[0].value.num) &&
	    d.in.fields[0].value.num > 0);
	assert_true(isinf(d.in.fields[1].value.num) &&
	    d.in.fields[1].value.num < 0);
	assert_true(d.in.fields[2].value.num == 0);
	dec_done(&d);
}

/* decode_json() builds its tree itself (one strict pass, Clinger's fast
 * path for numbers); it must be the tree cJSON's own parser makes of the
 * same document: the same shape, names, strings and bit-identical numbers. */
static void
assert_same_tree(const cJSON *a, const cJSON *b)
{
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->type & 0xFF, b->type & 0xFF);
	if (a->string != NULL || b->string != NULL) {
		assert_non_null(a->string);
		assert_non_null(b->string);
		assert_string_equal(a->string, b->string);
	}
	if (cJSON_IsString(a))
		assert_string_equal(a->valuestring, b->valuestring);
	if (cJSON_IsNumber(a)) {
		if (memcmp(&a->valuedouble, &b->valuedouble,
		    sizeof(double)) != 0)
			fail_msg("number %.17g, cJSON %.17g", a->valuedouble,
			    b->valuedouble);
		assert_int_equal(a->valueint, b->valueint);
	}
	for (a = a->child, b = b->child; a != NULL || b != NULL;
	    a = a->next, b = b->next)
		assert_same_tree(a, b);
}

static void
assert_tree_as_cjson(const char *body)
{
	struct dec d;
	cJSON *ref;

	json_run(&d, body);
	if (d.rc != 0)
		fail_msg("rejected: %s", body);
	ref = cJSON_ParseWithLength(body, strlen(body));
	assert_non_null(ref);
	assert_same_tree(d.in.json, ref);
	cJSON_Delete(ref);
	dec_done(&d);
}

static void
test_json_tree_as_cjson(void **state)
{
	static const char *docs[] = {
		"{}",
		"{\"a\":[],\"b\":{},\"c\":[[]],\"d\":[{}]}",
		"{\"a\":true,\"b\":false,\"c\":null,\"d\":\"\",\"e\":[1,\"x\"]}",
		"{ \"a\" : { \"b\" : [ 1 , { \"c\" : [ ] } ] } , \"d\":2 }",
		"{\"a\":1,\"a\":2,\"a\":\"three\"}",
		"{\"esc\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t end\"}",
		"{\"u\":\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\\uFFFF\\u07ff\"}",
		"{\"\\u00e9t\\u00e9\":\"\xc3\xa9t\xc3\xa9 \xe2\x98\xba "
		    "\xf0\x9f\x98\x80\"}",
		"{\"n\":[0,-0,0.0,-0.0,0e5,-0E-5,1,-1,10,1e1,1E+1,1e-1,0.1]}",
		"{\"n\":[0.30000000000000004,5e-324,2.2250738585072014e-308,"
		    "1.7976931348623157e308,1e308,1e-308,1e22,1e23,1e-22,"
		    "1e-23,9007199254740992,9007199254740993,"
		    "9007199254740991.5,123456789012345678901234567890,"
		    "0.000000000000000000000000000001,4.35,5.1,3.5,1.4,0.2,"
		    "2147483647,2147483648,-2147483648,-2147483649,1e999,"
		    "-1e999,1e-999,1.00000000000000000000000000000001]}",
	};
	uint64_t x = 0x9E3779B97F4A7C15u;
	char body[8192];
	size_t i, k, len;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		assert_tree_as_cjson(docs[i]);
	/* Random numbers: 1..19 integer digits, 0..19 fraction digits, an
	 * exponent in -340..340 or none: every path of the conversion, the
	 * fast one and strtod()'s. */
	for (i = 0; i < 400; i++) {
		len = (size_t)snprintf(body, sizeof(body), "{\"n\":[");
		for (k = 0; k < 60; k++) {
			int nint, nfrac, j;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			nint = 1 + (int)(x % 19);
			nfrac = (int)(x >> 8) % 20;
			if (k > 0)
				body[len++] = ',';
			if ((x >> 16) & 1)
				body[len++] = '-';
			for (j = 0; j < nint; j++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				body[len++] = (char)('0' + (j == 0 && nint > 1 ?
				    1 + x % 9 : x % 10));
			}
			if (nfrac > 0) {
				body[len++] = '.';
				for (j = 0; j < nfrac; j++) {
					x ^= x << 13, x ^= x >> 7, x ^= x << 17;
					body[len++] = (char)('0' + x % 10);
				}
			}
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			if (x % 3 != 0)
				len += (size_t)snprintf(body + len,
				    sizeof(body) - len, "e%d",
				    (int)(x >> 8 & 0x3FF) % 681 - 340 +
				    (x % 3 == 1 ? 0 : 0));
		}
		len += (size_t)snprintf(body + len, sizeof(body) - len, "]}");
		assert_true(len < sizeof(body));
		assert_tree_as_cjson(body);
	}
	/* And the exponents around the fast path's edge, +-22, with short
	 * and long digit strings. */
	for (i = 0; i < 2000; i++) {
		int e1, e2;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		e1 = (int)((x >> 40) % 9) + 18;		/* 18..26 */
		e2 = (int)((x >> 30) % 9) + 18;
		snprintf(body, sizeof(body), "{\"n\":[%llue%d,%llu.%llue%d]}",
		    (unsigned long long)(x % 10000000), (x >> 50) & 1 ? -e1 : e1,
		    (unsigned long long)(x >> 11),
		    (unsigned long long)(x >> 44), (x >> 52) & 1 ? -e2 : e2);
		assert_tree_as_cjson(body);
	}
}

/* The trees of the server's request threads come from a per-thread arena
 * (src/input.c, once input_json_hooks() ran; valgrind and AddressSanitizer
 * builds keep malloc, to see every node): a tree made while another is
 * alive, one left half-built by an error, one larger than the arena, freed
 * in any order, must each read back intact. */
static void
assert_json_doc(const struct dec *d, const char *want)
{
	char *got = cJSON_PrintUnformatted(d->in.json);

	assert_int_equal(d->rc, 0);
	assert_string_equal(got, want);
	cJSON_free(got);
}

static void
test_json_arena_trees(void **state)
{
	struct dec a, b, c, big;
	struct buf body = BUF_INIT;
	int i;

	(void)state;
	input_json_hooks();
	json_run(&a, "{\"a\":[1,2,3],\"s\":\"first\"}");
	json_run(&b, "{\"a\":[1,2,{\"b\":\"x\",\"c\":[tru");
	assert_one_error(&b, "json_invalid");
	json_run(&c, "{\"t\":\"second\",\"n\":-0.5}");
	assert_json_doc(&a, "{\"a\":[1,2,3],\"s\":\"first\"}");
	dec_done(&a);		/* the oldest first, while c lives */
	buf_puts(&body, "{\"k\":[");
	for (i = 0; i < 5000; i++)	/* 5,000 nodes: past the 32 KB */
		buf_printf(&body, "%s%d", i ? "," : "", i);
	buf_puts(&body, "],\"z\":\"last\"}");
	json_run(&big, body.data);
	assert_json_doc(&c, "{\"t\":\"second\",\"n\":-0.5}");
	assert_json_doc(&big, body.data);
	dec_done(&c);
	json_run(&a, "{\"again\":[true,false,null,{}]}");
	assert_json_doc(&a, "{\"again\":[true,false,null,{}]}");
	assert_json_doc(&big, body.data);
	dec_done(&big);
	dec_done(&a);
	dec_done(&b);
	buf_free(&body);
}

/* A \u escape of a UTF-16 surrogate that is not half of a pair has no
 * UTF-8 form: json_invalid at the escape (cJSON refused these too). */
static void
test_json_lone_surrogate(void **state)
{
	(void)state;
	assert_json_invalid_str("{\"a\":\"x\\ud800\"}", 7,
	    "lone UTF-16 surrogate in a \\u escape");
	assert_json_invalid_str("{\"a\":\"\\udc00\"}", 6,
	    "lone UTF-16 surrogate in a \\u escape");
	assert_json_invalid_str("{\"a\":\"\\ud800\\u0041\"}", 6,
	    "lone UTF-16 surrogate in a \\u escape");
	assert_json_invalid_str("{\"\\ud83d\\ud83d\":1}", 2,
	    "lone UTF-16 surrogate in a \\u escape");
	assert_tree_as_cjson("{\"a\":\"\\uD83D\\uDE00\\udbff\\udfff\"}");
}

/* ---- decode_form ----------------------------------------------------- */

static void
test_form_plus_and_percent(void **state)
{
	struct dec d;

	(void)state;
	form_run(&d, "a=1+2&b=%41%42%2b%26%3D%25&x+y%5F=%c3%A9&c=+%20+");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.v.total, 0);
	assert_int_equal(d.in.is_json, 0);
	assert_null(d.in.json);
	assert_int_equal(d.in.n, 4);
	assert_text(&d.in, 0, "a", "1 2", 3);
	assert_text(&d.in, 1, "b", "AB+&=%", 6);
	assert_text(&d.in, 2, "x y_", "\xC3\xA9", 2);
	assert_text(&d.in, 3, "c", "   ", 3);
	/* Names and values are NUL-terminated. */
	assert_string_equal(d.in.fields[2].name, "x y_");
	assert_string_equal(d.in.fields[1].value.str, "AB+&=%");
	dec_done(&d);

	/* Raw UTF-8 and a 4-byte sequence are fine. */
	form_run(&d, "k=\xE2\x98\xBA%F0%9F%98%80");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.in.n, 1);
	assert_text(&d.in, 0, "k", "\xE2\x98\xBA\xF0\x9F\x98\x80", 7);
	dec_done(&d);
}

static void
test_form_bad_escapes(void **state)
{
	(void)state;
	assert_form_invalid_str("a=%zz", "invalid percent-escape", 2);
	assert_form_invalid_str("a=%4g", "invalid percent-escape", 2);
	assert_form_invalid_str("a=1&b=%G1", "invalid percent-escape", 6);
	assert_form_invalid_str("%zz=1", "invalid percent-escape", 0);
	assert_form_invalid_str("a=%", "truncated percent-escape", 2);
	assert_form_invalid_str("a=%4", "truncated percent-escape", 2);
	assert_form_invalid_str("a=1%", "truncated percent-escape", 3);
	assert_form_invalid_str("ab%4=1", "truncated percent-escape", 2);
	assert_form_invalid_str("x=1&a%=1", "truncated percent-escape", 5);
}

static void
test_form_nul(void **state)
{
	(void)state;
	assert_form_invalid_str("a=%00", "NUL byte", -1);
	assert_form_invalid_str("a=1&b=x%00y", "NUL byte", -1);
	assert_form_invalid_str("a%00=1", "NUL byte", -1);
	assert_form_invalid("a=1\0", 4, "NUL byte", -1);
	assert_form_invalid("a\0=1", 4, "NUL byte", -1);
}

static void
test_form_invalid_utf8(void **state)
{
	(void)state;
	assert_form_invalid_str("a=%FF", "invalid UTF-8", -1);
	assert_form_invalid_str("a=\xff", "invalid UTF-8", -1);
	assert_form_invalid_str("a=%C3", "invalid UTF-8", -1);
	assert_form_invalid_str("a=%C3x", "invalid UTF-8", -1);
	assert_form_invalid_str("a=%C0%AF", "invalid UTF-8", -1);
	assert_form_invalid_str("a=%ED%A0%80", "invalid UTF-8", -1);
	assert_form_invalid_str("%80=1", "invalid UTF-8", -1);
	assert_form_invalid_str("ok=1&b=\xC3", "invalid UTF-8", -1);
}

static void
test_form_empty_segments(void **state)
{
	struct dec d;

	(void)state;
	form_run(&d, "&&a=1&&b=2&");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.in.n, 2);
	assert_text(&d.in, 0, "a", "1", 1);
	assert_text(&d.in, 1, "b", "2", 1);
	dec_done(&d);

	form_run(&d, "");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.v.total, 0);
	assert_int_equal(d.in.n, 0);
	dec_done(&d);

	form_run(&d, "&");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.in.n, 0);
	dec_done(&d);
}

static void
test_form_without_equals(void **state)
{
	struct dec d;

	(void)state;
	form_run(&d, "a&b=2&c=&=5&d==x&e");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.in.n, 6);
	assert_text(&d.in, 0, "a", "", 0);
	assert_string_equal(d.in.fields[0].value.str, "");
	assert_text(&d.in, 1, "b", "2", 1);
	assert_text(&d.in, 2, "c", "", 0);
	assert_text(&d.in, 3, "", "5", 1);
	assert_text(&d.in, 4, "d", "=x", 2);
	assert_text(&d.in, 5, "e", "", 0);
	dec_done(&d);
}

static void
test_form_many_fields(void **state)
{
	struct buf body = BUF_INIT;
	struct dec d;
	size_t i;

	(void)state;
	/* Many one-byte segments: the worst case for the decode buffer. */
	for (i = 0; i < 5000; i++)
		buf_puts(&body, i ? "&k" : "k");
	dec_run(&d, 1, body.data, body.len);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.in.n, 5000);
	assert_text(&d.in, 4999, "k", "", 0);
	dec_done(&d);
	buf_free(&body);
}

/* ---- buf_json_strn ---------------------------------------------------- */

static void
assert_json_str(const char *s, size_t n, const char *want)
{
	struct buf b = BUF_INIT;

	buf_json_strn(&b, s, n);
	assert_string_equal(b.data, want);
	assert_int_equal(b.len, strlen(want));
	buf_free(&b);
}

static void
test_json_str_escapes(void **state)
{
	(void)state;
	assert_json_str("", 0, "\"\"");
	assert_json_str("plain", 5, "\"plain\"");
	assert_json_str("a\"b\\c/", 6, "\"a\\\"b\\\\c/\"");
	assert_json_str("\n\r\t", 3, "\"\\n\\r\\t\"");
	assert_json_str("\x01\x1f\b\f\x7f", 5,
	    "\"\\u0001\\u001f\\u0008\\u000c\x7f\"");
	assert_json_str("a\0b", 3, "\"a\\u0000b\"");
}

static void
test_json_str_utf8(void **state)
{
	(void)state;
	/* Valid UTF-8 is copied as it is. */
	assert_json_str("\xC3\xA9\xE2\x98\xBA\xF0\x9F\x98\x80", 9,
	    "\"\xC3\xA9\xE2\x98\xBA\xF0\x9F\x98\x80\"");
	/* Each bad byte becomes U+FFFD. */
	assert_json_str("a\xff" "b", 3, "\"a\xEF\xBF\xBD" "b\"");
	assert_json_str("\xC3", 1, "\"\xEF\xBF\xBD\"");
	assert_json_str("\xC3\"", 2, "\"\xEF\xBF\xBD\\\"\"");
	assert_json_str("\xC0\xAF", 2, "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
	assert_json_str("\xED\xA0\x80", 3,
	    "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
	assert_json_str("\xF4\x90\x80\x80", 4, "\"\xEF\xBF\xBD\xEF\xBF\xBD"
	    "\xEF\xBF\xBD\xEF\xBF\xBD\"");
	/* A sequence cut by n is invalid even if the bytes go on. */
	assert_json_str("\xC3\xA9", 1, "\"\xEF\xBF\xBD\"");
}

static void
test_json_str_roundtrip(void **state)
{
	unsigned char raw[256];
	struct buf b = BUF_INIT;
	cJSON *j;
	size_t i;

	(void)state;
	/* Every ASCII byte but NUL: the output parses back to the input. */
	for (i = 1; i < 128; i++)
		raw[i - 1] = (unsigned char)i;
	raw[127] = '\0';
	buf_json_strn(&b, (const char *)raw, 127);
	j = cJSON_Parse(b.data);
	assert_non_null(j);
	assert_true(cJSON_IsString(j));
	assert_string_equal(j->valuestring, (const char *)raw);
	cJSON_Delete(j);

	/* Every byte value, valid or not: the output is still valid JSON. */
	for (i = 0; i < 256; i++)
		raw[i] = (unsigned char)(255 - i);
	buf_reset(&b);
	buf_json_strn(&b, (const char *)raw, 256);
	j = cJSON_Parse(b.data);
	assert_non_null(j);
	assert_true(cJSON_IsString(j));
	cJSON_Delete(j);
	buf_free(&b);
}

static void
test_json_str_cut(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	buf_json_strn_cut(&b, "abcdef", 6, 6);
	assert_string_equal(b.data, "\"abcdef\"");
	buf_reset(&b);
	buf_json_strn_cut(&b, "abcdefg", 7, 6);
	assert_string_equal(b.data, "\"abcdef...\"");
	buf_reset(&b);
	/* Never inside a UTF-8 sequence: C3 A9 C3 A9 C3 A9, cut at 3. */
	buf_json_strn_cut(&b, "\xC3\xA9\xC3\xA9\xC3\xA9", 6, 3);
	assert_string_equal(b.data, "\"\xC3\xA9...\"");
	buf_free(&b);
}

/* ---- buf_json_double -------------------------------------------------- */

static void
assert_double_text(double d, const char *want)
{
	struct buf b = BUF_INIT;

	buf_json_double(&b, d);
	assert_string_equal(b.data, want);
	if (isfinite(d))
		assert_true(strtod(b.data, NULL) == d);
	buf_free(&b);
}

static void
test_json_double_shortest(void **state)
{
	(void)state;
	assert_double_text(0.1, "0.1");
	assert_double_text(1e-300, "1e-300");
	assert_double_text(5, "5");
	assert_double_text(0, "0");
	assert_double_text(-2.5, "-2.5");
	assert_double_text(1.0 / 3.0, "0.3333333333333333");
	assert_double_text(0.1 + 0.2, "0.30000000000000004");
	assert_double_text(2.0 / 3.0, "0.6666666666666666");
	assert_double_text(1e21, "1e+21");
	assert_double_text(123456789012345678.0, "1.2345678901234568e+17");
	assert_double_text(DBL_MAX, "1.7976931348623157e+308");
	assert_double_text(DBL_MIN, "2.2250738585072014e-308");
	assert_double_text(0.9815857562405158, "0.9815857562405158");
	assert_double_text(NAN, "null");
	assert_double_text(INFINITY, "null");
	assert_double_text(-INFINITY, "null");
}

/* Regression (was a bug): buf_json_double() (src/buf.c) tries 15, 16 and 17 significant
 * digits, which is the shortest form only for normal numbers: subnormals
 * have fewer significant bits, so 5e-324 (the smallest double) is written
 * as "4.94065645841247e-324" (it does read back equal) where the shortest
 * form, and Python's repr, is "5e-324". Likewise 1e-320 is written
 * "9.99988867182683e-321". */
static void
test_json_double_subnormal_shortest(void **state)
{
	(void)state;
	assert_double_text(5e-324, "5e-324");
	assert_double_text(1e-320, "1e-320");
}

static void
test_json_double_roundtrip(void **state)
{
	uint64_t x = 0x9E3779B97F4A7C15u;
	struct buf b = BUF_INIT;
	int i;

	(void)state;
	/* Many doubles from random bit patterns: every finite one reads back
	 * to the same value and never needs more than 17 digits. */
	for (i = 0; i < 20000; i++) {
		double d;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		memcpy(&d, &x, sizeof(d));
		if (i % 2)
			d = (double)(x >> 11) / 9007199254740992.0;
		if (!isfinite(d))
			continue;
		buf_reset(&b);
		buf_json_double(&b, d);
		assert_true(strtod(b.data, NULL) == d);
		assert_true(b.len <= 24);
	}
	buf_free(&b);
}

/* ---- value_render (what errors echo as "input") ---------------------- */

static void
test_value_render(void **state)
{
	struct buf b = BUF_INIT;
	struct value v;
	char *longs = malloc(1000);

	(void)state;
	assert_non_null(longs);
	memset(&v, 0, sizeof(v));
	v.kind = VALUE_NUMBER;
	v.num = INFINITY;
	value_render(&b, &v);
	assert_string_equal(b.data, "\"inf\"");
	buf_reset(&b);
	v.num = -INFINITY;
	value_render(&b, &v);
	assert_string_equal(b.data, "\"-inf\"");
	buf_reset(&b);
	v.num = NAN;
	value_render(&b, &v);
	assert_string_equal(b.data, "\"nan\"");
	buf_reset(&b);
	v.num = 0.1;
	value_render(&b, &v);
	assert_string_equal(b.data, "0.1");
	buf_reset(&b);

	memset(longs, 'x', 1000);
	v.kind = VALUE_TEXT;
	v.str = longs;
	v.len = 1000;
	value_render(&b, &v);
	assert_int_equal(b.len, 128 + 3 + 2);
	assert_memory_equal(b.data + 1 + 128, "...\"", 4);
	buf_free(&b);
	free(longs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_object_fields_in_order),
		cmocka_unit_test(test_json_duplicate_keys_kept),
		cmocka_unit_test(test_json_empty_body_missing),
		cmocka_unit_test(test_json_malformed_offsets),
		cmocka_unit_test(test_json_truncated_clean_error),
		cmocka_unit_test(test_json_truncated_offset_is_len),
		cmocka_unit_test(test_json_trailing_garbage),
		cmocka_unit_test(test_json_trailing_whitespace_ok),
		cmocka_unit_test(test_json_invalid_utf8_and_nul),
		cmocka_unit_test(test_json_escaped_nul_not_truncated),
		cmocka_unit_test(test_json_lenient_cjson_rejected),
		cmocka_unit_test(test_json_top_level_not_object),
		cmocka_unit_test(test_json_deep_nesting),
		cmocka_unit_test(test_json_huge_number),
		cmocka_unit_test(test_json_overflow_is_inf),
		cmocka_unit_test(test_json_tree_as_cjson),
		cmocka_unit_test(test_json_lone_surrogate),
		cmocka_unit_test(test_json_arena_trees),
		cmocka_unit_test(test_form_plus_and_percent),
		cmocka_unit_test(test_form_bad_escapes),
		cmocka_unit_test(test_form_nul),
		cmocka_unit_test(test_form_invalid_utf8),
		cmocka_unit_test(test_form_empty_segments),
		cmocka_unit_test(test_form_without_equals),
		cmocka_unit_test(test_form_many_fields),
		cmocka_unit_test(test_json_str_escapes),
		cmocka_unit_test(test_json_str_utf8),
		cmocka_unit_test(test_json_str_roundtrip),
		cmocka_unit_test(test_json_str_cut),
		cmocka_unit_test(test_json_double_shortest),
		cmocka_unit_test(test_json_double_subnormal_shortest),
		cmocka_unit_test(test_json_double_roundtrip),
		cmocka_unit_test(test_value_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
