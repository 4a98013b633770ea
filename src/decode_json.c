/* decode_json: JSON request bodies to raw fields (see decode.h). */
#include "decode.h"

#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A strict RFC 8259 parser that builds the cJSON tree as it scans, in one
 * pass. cJSON's own parser is lenient (it skips any byte <= 0x20, takes
 * "01" and "1.", raw control characters in strings), cannot represent
 * "\u0000" in a C string, and reads every number with strtod() after a
 * localeconv() call: the largest cost of a small request, hence this.
 *
 * jscan_document() returns 0 with root set, or -1 with pos at the
 * offending byte (len for a document that ends early), why set and root
 * NULL. Nodes come from cJSON_Create*() and strings from cJSON_malloc(),
 * so through cJSON's hooks (input.c's arena between input_json_begin()
 * and input_json_end()); each node is linked into its parent as soon as it
 * is made, so cJSON_Delete(root) frees a tree left half-built by an error.
 * Iterative, so deep nesting costs no stack beyond the parents array. */
struct jscan {
	const unsigned char	*s;
	size_t			 len, pos;
	const char		*why;
	cJSON			*root;	/* the document, once begun */
	char			*key;	/* a member name whose value is next */
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

/* The UTF-16 code unit of the 4 hex digits at p (checked by the caller). */
static unsigned
jscan_u16(const unsigned char *p)
{
	unsigned v = 0;
	int k;

	for (k = 0; k < 4; k++)
		v = v << 4 | (unsigned)(p[k] <= '9' ? p[k] - '0' :
		    (p[k] | 0x20) - 'a' + 10);
	return v;
}

/* Copies the body s[0..n) of a string jscan_string() has checked into out
 * (n + 1 bytes) with its escapes decoded and a NUL after; UTF-8 is never
 * longer than the escapes it comes from. */
static void
jscan_unescape(const unsigned char *s, size_t n, char *out)
{
	const unsigned char *bs;
	size_t i = 0, o = 0, run;
	unsigned cp;

	while (i < n) {
		bs = memchr(s + i, '\\', n - i);
		run = bs != NULL ? (size_t)(bs - (s + i)) : n - i;
		memcpy(out + o, s + i, run);
		o += run, i += run;
		if (i == n)
			break;
		switch (s[i + 1]) {
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u':
			cp = jscan_u16(s + i + 2);
			if (cp >= 0xD800 && cp < 0xDC00) {
				cp = 0x10000 + ((cp - 0xD800) << 10) +
				    (jscan_u16(s + i + 8) - 0xDC00);
				i += 6;
			}
			if (cp < 0x80)
				out[o++] = (char)cp;
			else if (cp < 0x800) {
				out[o++] = (char)(0xC0 | cp >> 6);
				out[o++] = (char)(0x80 | (cp & 0x3F));
			} else if (cp < 0x10000) {
				out[o++] = (char)(0xE0 | cp >> 12);
				out[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
				out[o++] = (char)(0x80 | (cp & 0x3F));
			} else {
				out[o++] = (char)(0xF0 | cp >> 18);
				out[o++] = (char)(0x80 | (cp >> 12 & 0x3F));
				out[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
				out[o++] = (char)(0x80 | (cp & 0x3F));
			}
			i += 6;
			continue;
		default: out[o++] = (char)s[i + 1]; break;	/* " \ / */
		}
		i += 2;
	}
	out[o] = '\0';
}

/* Whether a \u escape of a low surrogate starts at pos. */
static int
jscan_low_surrogate_at(const struct jscan *j, size_t pos)
{
	const unsigned char *p = j->s + pos;
	unsigned u;
	int k;

	if (j->len - pos < 6 || p[0] != '\\' || p[1] != 'u')
		return 0;
	for (k = 2; k < 6; k++)
		if (!jscan_hex(p[k]))
			return 0;
	u = jscan_u16(p + 2);
	return u >= 0xDC00 && u < 0xE000;
}

/* Checks the string at pos and sets *out to its decoded text, a NUL-
 * terminated block from cJSON_malloc() the caller owns. */
static int
jscan_string(struct jscan *j, char **out)
{
	size_t l, k, start;
	int escaped = 0;
	unsigned u;

	start = ++j->pos;	/* past the opening quote */
	for (;;) {
		unsigned char c;

		if (j->pos >= j->len)
			return jscan_fail(j, "unterminated string");
		c = j->s[j->pos];
		if (c == '"')
			break;
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
		escaped = 1;
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
			u = jscan_u16(j->s + j->pos + 2);
			if (u == 0)
				return jscan_fail(j, "\\u0000 in a string");
			/* UTF-8 has no lone surrogates: a high one must be
			 * followed by a low one. */
			if (u >= 0xD800 && u < 0xDC00 &&
			    jscan_low_surrogate_at(j, j->pos + 6))
				j->pos += 6;
			else if (u >= 0xD800 && u < 0xE000)
				return jscan_fail(j, "lone UTF-16 surrogate in "
				    "a \\u escape");
			j->pos += 6;
		} else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0')
			j->pos += 2;
		else
			return jscan_fail(j, "invalid escape");
	}
	l = j->pos - start;
	j->pos++;	/* the closing quote */
	if ((*out = cJSON_malloc(l + 1)) == NULL)
		return jscan_fail(j, "out of memory");
	if (escaped)
		jscan_unescape(j->s + start, l, *out);
	else {
		memcpy(*out, j->s + start, l);
		(*out)[l] = '\0';
	}
	return 0;
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

/* 10^0 .. 10^22: every one is an exact double. */
static const double jscan_pow10[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
	1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/* The double nearest the number s[0..n) that jscan_number() accepted.
 * When its digits make an integer m <= 2^53 and its power of ten e is
 * within +-22, m and 10^|e| are exact doubles and one IEEE multiplication
 * or division rounds the exact value correctly (Clinger's fast path), so
 * the result is strtod()'s; other numbers go to strtod(). The process
 * never calls setlocale(), so strtod() reads '.' as the point. */
static double
jscan_number_value(const unsigned char *s, size_t n)
{
	char text[DECODE_NUMBER_MAX + 1];
	uint64_t m = 0;
	size_t i = 0;
	int neg = 0, e = 0, ex = 0, eneg = 0;
	double d;

	if (FLT_EVAL_METHOD != 0)	/* wider intermediates: no fast path */
		goto slow;
	if (s[i] == '-')
		neg = 1, i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		if ((m = m * 10 + (s[i] - '0')) > (UINT64_C(1) << 53))
			goto slow;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, e--)
			if ((m = m * 10 + (s[i] - '0')) > (UINT64_C(1) << 53))
				goto slow;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (s[i] == '+' || s[i] == '-')
			eneg = s[i++] == '-';
		for (; i < n; i++)
			if (ex < 100000)
				ex = ex * 10 + (s[i] - '0');
		e += eneg ? -ex : ex;
	}
	if (m == 0)
		return neg ? -0.0 : 0.0;
	if (e < -22 || e > 22)
		goto slow;
	d = (double)m;
	d = e < 0 ? d / jscan_pow10[-e] : d * jscan_pow10[e];
	return neg ? -d : d;
slow:
	memcpy(text, s, n);
	text[n] = '\0';
	return strtod(text, NULL);
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

/* Links node into the open container parent, with the pending member name
 * if parent is an object, or makes it the root. */
static int
jscan_attach(struct jscan *j, cJSON *parent, cJSON *node)
{
	if (node == NULL)
		return jscan_fail(j, "out of memory");
	if (parent == NULL) {
		j->root = node;
		return 0;
	}
	node->string = j->key;	/* NULL in an array */
	j->key = NULL;
	cJSON_AddItemToArray(parent, node);
	return 0;
}

/* A string node that takes str, or NULL (str freed). */
static cJSON *
jscan_string_node(char *str)
{
	cJSON *node = cJSON_CreateNull();

	if (node == NULL) {
		cJSON_free(str);
		return NULL;
	}
	node->type = cJSON_String;
	node->valuestring = str;
	return node;
}

/* Scans one value and everything nested in it, building its tree. */
static int
jscan_document(struct jscan *j)
{
	cJSON *open[DECODE_DEPTH_MAX];	/* the containers not yet closed */
	size_t depth = 0, start;
	cJSON *parent, *node;
	char *str;
	int rc;

	j->root = NULL;
	j->key = NULL;
	for (;;) {
		/* A value is expected here. */
		jscan_ws(j);
		if (j->pos >= j->len) {
			rc = jscan_fail(j, "");
			goto done;
		}
		parent = depth > 0 ? open[depth - 1] : NULL;
		switch (j->s[j->pos]) {
		case '{':
		case '[':
			if (depth == DECODE_DEPTH_MAX) {
				rc = jscan_fail(j, "nesting too deep");
				break;
			}
			node = j->s[j->pos] == '{' ? cJSON_CreateObject() :
			    cJSON_CreateArray();
			if ((rc = jscan_attach(j, parent, node)) < 0)
				break;
			open[depth++] = node;
			j->pos++;
			jscan_ws(j);
			if (j->pos < j->len && j->s[j->pos] ==
			    (cJSON_IsObject(node) ? '}' : ']')) {
				j->pos++, depth--;
				break;
			}
			if (cJSON_IsArray(node))
				continue;
			goto key;
		case '"':
			if ((rc = jscan_string(j, &str)) == 0)
				rc = jscan_attach(j, parent,
				    jscan_string_node(str));
			break;
		case 't':
			if ((rc = jscan_literal(j, "true")) == 0)
				rc = jscan_attach(j, parent, cJSON_CreateTrue());
			break;
		case 'f':
			if ((rc = jscan_literal(j, "false")) == 0)
				rc = jscan_attach(j, parent,
				    cJSON_CreateFalse());
			break;
		case 'n':
			if ((rc = jscan_literal(j, "null")) == 0)
				rc = jscan_attach(j, parent, cJSON_CreateNull());
			break;
		default:
			start = j->pos;
			if (j->s[j->pos] == '-' || (j->s[j->pos] >= '0' &&
			    j->s[j->pos] <= '9')) {
				if ((rc = jscan_number(j)) == 0)
					rc = jscan_attach(j, parent,
					    cJSON_CreateNumber(
					    jscan_number_value(j->s + start,
					    j->pos - start)));
			} else
				rc = jscan_unexpected(j, "invalid JSON");
		}
		if (rc < 0)
			goto done;
		/* After a value: close containers, or a comma. */
		for (;;) {
			jscan_ws(j);
			if (depth == 0) {
				rc = j->pos == j->len ? 0 :
				    jscan_unexpected(j, "data after the document");
				goto done;
			}
			if (j->pos >= j->len) {
				rc = jscan_fail(j, "");
				goto done;
			}
			if (j->s[j->pos] == (cJSON_IsObject(open[depth - 1]) ?
			    '}' : ']')) {
				j->pos++, depth--;
				continue;
			}
			if (j->s[j->pos] != ',') {
				rc = jscan_unexpected(j, "expected ',' or a "
				    "closing bracket");
				goto done;
			}
			j->pos++;
			break;
		}
		if (cJSON_IsArray(open[depth - 1]))
			continue;
key:
		/* In an object: "key" : value. */
		jscan_ws(j);
		if (j->pos >= j->len || j->s[j->pos] != '"') {
			rc = jscan_fail(j, "expected a quoted member name");
			goto done;
		}
		if ((rc = jscan_string(j, &j->key)) < 0)
			goto done;
		jscan_ws(j);
		if (j->pos >= j->len || j->s[j->pos] != ':') {
			rc = jscan_fail(j, "expected ':'");
			goto done;
		}
		j->pos++;
	}
done:
	if (rc < 0) {
		cJSON_Delete(j->root);
		cJSON_free(j->key);
		j->root = NULL;
		j->key = NULL;
	}
	return rc;
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
	cJSON *root;
	size_t i;
	int rc;

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
	input_json_begin();
	rc = jscan_document(&scan);
	input_json_end();
	if (rc < 0) {
		decode_json_invalid(v, scan.pos, scan.why);
		return -1;
	}
	root = scan.root;
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
