/* decode_json: JSON request bodies to raw fields (see decode.h). */
#include "decode.h"

#include <stdio.h>
#include <string.h>

static void
decode_json_invalid(struct verrs *v, size_t offset, const char *why)
{
	struct verr_loc loc = verr_loc_index(NULL, (long)offset);
	struct buf ctx = BUF_INIT;

	buf_puts(&ctx, "{\"error\":");
	buf_json_str(&ctx, why);
	buf_putc(&ctx, '}');
	verrs_add(v, "json_invalid", &loc, "JSON decode error", NULL, ctx.data);
	buf_free(&ctx);
}

/* Deepest nesting of arrays and objects accepted (cJSON stops at 1000). */
#define DECODE_DEPTH_MAX 512
/* Longest number accepted: cJSON reads at most 63 characters of one. */
#define DECODE_NUMBER_MAX 63

/* A strict RFC 8259 scanner, run before cJSON builds the tree: cJSON is
 * lenient (it skips any byte <= 0x20, takes "01" and "1.", raw control
 * characters in strings) and cannot represent "\u0000" in a C string.
 * jscan_document() returns 0, or -1 with pos at the offending byte (len for
 * a document that ends early) and why set. No allocation; iterative, so
 * deep nesting costs no stack. */
struct jscan {
	const unsigned char	*s;
	size_t			 len, pos;
	const char		*why;
};

static int
jscan_fail(struct jscan *j, const char *why)
{
	if (j->pos >= j->len)
		why = "unexpected end of input";
	j->why = why;
	return -1;
}

/* Fails at an unexpected byte, naming a NUL or invalid UTF-8 as such. */
static int
jscan_unexpected(struct jscan *j, const char *why)
{
	const unsigned char *p = j->s + j->pos;

	if (j->pos < j->len && *p == 0)
		why = "NUL byte in body";
	else if (j->pos < j->len && *p >= 0x80 &&
	    buf_utf8_len(p, j->len - j->pos) == 0)
		why = "invalid UTF-8";
	return jscan_fail(j, why);
}

static void
jscan_ws(struct jscan *j)
{
	while (j->pos < j->len && (j->s[j->pos] == ' ' ||
	    j->s[j->pos] == '\t' || j->s[j->pos] == '\n' ||
	    j->s[j->pos] == '\r'))
		j->pos++;
}

static int
jscan_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

static int
jscan_string(struct jscan *j)
{
	size_t l, k;

	j->pos++;	/* the opening quote */
	for (;;) {
		unsigned char c;

		if (j->pos >= j->len)
			return jscan_fail(j, "unterminated string");
		c = j->s[j->pos];
		if (c == '"') {
			j->pos++;
			return 0;
		}
		if (c < 0x20)
			return jscan_fail(j, c == 0 ? "NUL byte in body" :
			    "control character in a string");
		if (c >= 0x80) {
			if ((l = buf_utf8_len(j->s + j->pos, j->len - j->pos)) ==
			    0)
				return jscan_fail(j, "invalid UTF-8");
			j->pos += l;
			continue;
		}
		if (c != '\\') {
			j->pos++;
			continue;
		}
		if (j->pos + 1 >= j->len)
			return j->pos++, jscan_fail(j, "");
		c = j->s[j->pos + 1];
		if (c == 'u') {
			for (k = 2; k < 6; k++) {
				if (j->pos + k >= j->len)
					return j->pos = j->len, jscan_fail(j, "");
				if (!jscan_hex(j->s[j->pos + k]))
					return jscan_fail(j, "invalid \\u escape");
			}
			if (memcmp(j->s + j->pos + 2, "0000", 4) == 0)
				return jscan_fail(j, "\\u0000 in a string");
			j->pos += 6;
		} else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0')
			j->pos += 2;
		else
			return jscan_fail(j, "invalid escape");
	}
}

/* Skips digits; returns how many. */
static size_t
jscan_digits(struct jscan *j)
{
	size_t start = j->pos;

	while (j->pos < j->len && j->s[j->pos] >= '0' && j->s[j->pos] <= '9')
		j->pos++;
	return j->pos - start;
}

/* Scans the longest valid number at pos, as Python's json does: "1." is
 * the number 1 followed by a stray ".", reported by the caller there. */
static int
jscan_number(struct jscan *j)
{
	size_t start = j->pos, mark;

	if (j->s[j->pos] == '-')
		j->pos++;
	if (j->pos < j->len && j->s[j->pos] == '0')
		j->pos++;
	else if (jscan_digits(j) == 0) {
		j->pos = start;
		return jscan_fail(j, "invalid number");
	}
	mark = j->pos;
	if (j->pos < j->len && j->s[j->pos] == '.') {
		j->pos++;
		if (jscan_digits(j) == 0)
			j->pos = mark;
	}
	mark = j->pos;
	if (j->pos < j->len && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
		j->pos++;
		if (j->pos < j->len && (j->s[j->pos] == '+' ||
		    j->s[j->pos] == '-'))
			j->pos++;
		if (jscan_digits(j) == 0)
			j->pos = mark;
	}
	if (j->pos - start > DECODE_NUMBER_MAX) {
		j->pos = start;
		return jscan_fail(j, "number longer than 63 characters");
	}
	return 0;
}

static int
jscan_literal(struct jscan *j, const char *word)
{
	size_t n = strlen(word);

	if (j->len - j->pos < n || memcmp(j->s + j->pos, word, n) != 0)
		return jscan_fail(j, "invalid JSON");
	j->pos += n;
	return 0;
}

/* Scans one value and everything nested in it. */
static int
jscan_document(struct jscan *j)
{
	char stack[DECODE_DEPTH_MAX];	/* '{' or '[' per open container */
	size_t depth = 0;
	int rc;

	for (;;) {
		/* A value is expected here. */
		rc = 0;
		jscan_ws(j);
		if (j->pos >= j->len)
			return jscan_fail(j, "");
		switch (j->s[j->pos]) {
		case '{':
		case '[':
			if (depth == DECODE_DEPTH_MAX)
				return jscan_fail(j, "nesting too deep");
			stack[depth++] = (char)j->s[j->pos++];
			jscan_ws(j);
			if (j->pos < j->len && j->s[j->pos] ==
			    (stack[depth - 1] == '{' ? '}' : ']')) {
				j->pos++, depth--;
				break;
			}
			if (stack[depth - 1] == '[')
				continue;
			goto key;
		case '"':
			rc = jscan_string(j);
			break;
		case 't':
			rc = jscan_literal(j, "true");
			break;
		case 'f':
			rc = jscan_literal(j, "false");
			break;
		case 'n':
			rc = jscan_literal(j, "null");
			break;
		default:
			if (j->s[j->pos] == '-' || (j->s[j->pos] >= '0' &&
			    j->s[j->pos] <= '9'))
				rc = jscan_number(j);
			else
				rc = jscan_unexpected(j, "invalid JSON");
		}
		if (rc < 0)
			return -1;
		/* After a value: close containers, or a comma. */
		for (;;) {
			jscan_ws(j);
			if (depth == 0)
				return j->pos == j->len ? 0 :
				    jscan_unexpected(j, "data after the document");
			if (j->pos >= j->len)
				return jscan_fail(j, "");
			if (j->s[j->pos] == (stack[depth - 1] == '{' ? '}' :
			    ']')) {
				j->pos++, depth--;
				continue;
			}
			if (j->s[j->pos] != ',')
				return jscan_unexpected(j, "expected ',' or a "
				    "closing bracket");
			j->pos++;
			break;
		}
		if (stack[depth - 1] == '[')
			continue;
key:
		/* In an object: "key" : value. */
		jscan_ws(j);
		if (j->pos >= j->len || j->s[j->pos] != '"')
			return jscan_fail(j, "expected a quoted member name");
		if (jscan_string(j) < 0)
			return -1;
		jscan_ws(j);
		if (j->pos >= j->len || j->s[j->pos] != ':')
			return jscan_fail(j, "expected ':'");
		j->pos++;
	}
}

void
decode_json_members(const cJSON *obj, struct input *in)
{
	const cJSON *m;
	struct value val;

	for (m = obj->child; m != NULL; m = m->next) {
		value_from_json(&val, m);
		input_add(in, m->string, strlen(m->string), &val);
	}
}

int
decode_json(const char *body, size_t len, struct input *in, struct verrs *v)
{
	struct jscan scan;
	struct value val;
	size_t i, bad;
	cJSON *root;

	for (i = 0; i < len && body[i] != '\0' &&
	    strchr(" \t\r\n", body[i]) != NULL; i++)
		continue;
	if (i == len) {
		verrs_add(v, "missing", NULL, "Field required", NULL, NULL);
		return -1;
	}
	scan.s = (const unsigned char *)body;
	scan.len = len;
	scan.pos = 0;
	if (jscan_document(&scan) < 0) {
		decode_json_invalid(v, scan.pos, scan.why);
		return -1;
	}
	root = input_parse_json(body, len, &bad);
	if (root == NULL) {
		/* Well-formed, yet cJSON refused it: report where. */
		decode_json_invalid(v, bad, "invalid JSON");
		return -1;
	}
	if (!cJSON_IsObject(root)) {
		value_from_json(&val, root);
		verrs_add(v, "model_attributes_type", NULL,
		    "Input should be a valid dictionary or object to extract "
		    "fields from", &val, NULL);
		cJSON_Delete(root);
		return -1;
	}
	in->json = root;
	in->is_json = 1;
	decode_json_members(root, in);
	return 0;
}
