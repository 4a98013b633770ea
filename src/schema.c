/* schema: feature definitions and request validation (see schema.h). */
#include "schema.h"
#include "xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCHEMA_POSITIONAL_KEY "features"
#define SCHEMA_INT_LIMIT 9007199254740992.0	/* 2^53 */
/* Longest list of categories an "enum" error spells out, in bytes. */
#define SCHEMA_ENUM_TEXT_MAX 1024

static uint32_t
schema_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

int
schema_index(struct schema *s, size_t *dup)
{
	size_t i, nslots = 8;

	while (nslots < 2 * s->n)
		nslots *= 2;
	free(s->slots);
	s->slots = xcalloc(nslots, sizeof(*s->slots));
	s->nslots = nslots;
	for (i = 0; i < s->n; i++) {
		const struct feature *f = &s->features[i];
		size_t h;

		if (schema_lookup(s, f->name, f->name_len) >= 0) {
			*dup = i;
			return -1;
		}
		h = schema_hash(f->name, f->name_len) & (nslots - 1);
		while (s->slots[h] != 0)
			h = (h + 1) & (nslots - 1);
		s->slots[h] = (uint32_t)i + 1;
	}
	return 0;
}

void
schema_free(struct schema *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		struct feature *f = &s->features[i];
		size_t k;

		free(f->name);
		free(f->description);
		for (k = 0; f->categories != NULL && k < f->n_categories; k++)
			free(f->categories[k]);
		free(f->categories);
		free(f->category_len);
		free(f->category_order);
		free(f->enum_expected);
	}
	free(s->features);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

long
schema_lookup(const struct schema *s, const char *name, size_t len)
{
	size_t h;

	if (s->nslots == 0)
		return -1;
	h = schema_hash(name, len) & (s->nslots - 1);
	while (s->slots[h] != 0) {
		const struct feature *f = &s->features[s->slots[h] - 1];

		if (f->name_len == len && memcmp(f->name, name, len) == 0)
			return (long)s->slots[h] - 1;
		h = (h + 1) & (s->nslots - 1);
	}
	return -1;
}

/* Compares a[0..alen) with b[0..blen) bytewise, shorter first on a tie. */
static int
schema_bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

struct schema_cat {
	const char	*s;
	size_t		 len;
	uint32_t	 index;
};

static int
schema_cat_cmp(const void *a, const void *b)
{
	const struct schema_cat *x = a, *y = b;

	return schema_bytes_cmp(x->s, x->len, y->s, y->len);
}

/* Writes s[0..n) as Python's repr() writes a str: single quotes unless s
 * holds a ' and no ", backslash escapes for the quote, backslash and
 * control characters (C0, DEL and C1). */
static void
schema_repr(struct buf *b, const char *s, size_t n)
{
	char q = memchr(s, '\'', n) != NULL && memchr(s, '"', n) == NULL ?
	    '"' : '\'';
	size_t i;

	buf_putc(b, q);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == (unsigned char)q || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
		} else if (c == '\n')
			buf_puts(b, "\\n");
		else if (c == '\r')
			buf_puts(b, "\\r");
		else if (c == '\t')
			buf_puts(b, "\\t");
		else if (c < 0x20 || c == 0x7f)
			buf_printf(b, "\\x%02x", c);
		else if (c == 0xc2 && i + 1 < n &&
		    (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			buf_printf(b, "\\x%02x", (unsigned char)s[++i]);
		else
			buf_putc(b, (char)c);
	}
	buf_putc(b, q);
}

/* Builds f->enum_expected: "'a'", "'a' or 'b'", "'a', 'b' or 'c'". */
static void
schema_enum_text(struct feature *f)
{
	struct buf b = BUF_INIT, item = BUF_INIT;
	size_t k, n = f->n_categories;

	for (k = 0; k < n; k++) {
		buf_reset(&item);
		schema_repr(&item, f->categories[k], f->category_len[k]);
		if (k > 0 && b.len + item.len > SCHEMA_ENUM_TEXT_MAX) {
			buf_printf(&b, ", ... (%zu more)", n - k);
			break;
		}
		if (k > 0)
			buf_puts(&b, k + 1 == n ? " or " : ", ");
		buf_append(&b, item.data, item.len);
	}
	buf_free(&item);
	f->enum_expected = buf_steal(&b);
}

int
schema_set_categories(struct feature *f, char **cats, size_t n, size_t *dup)
{
	struct schema_cat *sorted;
	size_t k;
	int rc = 0;

	f->type = FEATURE_CATEGORY;
	f->categories = cats;
	f->n_categories = n;
	f->category_len = xcalloc(n, sizeof(size_t));
	f->category_order = xcalloc(n, sizeof(uint32_t));
	sorted = xcalloc(n, sizeof(*sorted));
	for (k = 0; k < n; k++) {
		f->category_len[k] = strlen(cats[k]);
		sorted[k].s = cats[k];
		sorted[k].len = f->category_len[k];
		sorted[k].index = (uint32_t)k;
	}
	qsort(sorted, n, sizeof(*sorted), schema_cat_cmp);
	for (k = 0; k < n; k++) {
		f->category_order[k] = sorted[k].index;
		if (k > 0 && rc == 0 && schema_cat_cmp(&sorted[k - 1],
		    &sorted[k]) == 0) {
			*dup = sorted[k].index > sorted[k - 1].index ?
			    sorted[k].index : sorted[k - 1].index;
			rc = -1;
		}
	}
	free(sorted);
	schema_enum_text(f);
	return rc;
}

long
schema_category(const struct feature *f, const char *s, size_t len)
{
	size_t lo = 0, hi = f->n_categories;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t k = f->category_order[mid];
		int c = schema_bytes_cmp(s, len, f->categories[k],
		    f->category_len[k]);

		if (c == 0)
			return (long)k;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* Checks a category feature's value: a string (JSON) or text (form) from
 * its list. */
static int
schema_check_category(const struct feature *f, const struct value *val,
    const struct verr_loc *loc, double *out, struct verrs *v)
{
	struct buf msg = BUF_INIT, ctx = BUF_INIT;
	long k;

	if (val->kind != VALUE_STRING && val->kind != VALUE_TEXT) {
		verrs_add(v, "string_type", loc,
		    "Input should be a valid string", val, NULL);
		return -1;
	}
	k = schema_category(f, val->str, val->len);
	if (k >= 0 || f->unknown_ignore) {
		*out = k >= 0 ? (double)k : SCHEMA_UNKNOWN;
		return 0;
	}
	buf_printf(&msg, "Input should be %s", f->enum_expected);
	buf_puts(&ctx, "{\"expected\":");
	buf_json_str(&ctx, f->enum_expected);
	buf_putc(&ctx, '}');
	verrs_add(v, "enum", loc, msg.data, val, ctx.data);
	buf_free(&msg);
	buf_free(&ctx);
	return -1;
}

/* Parses form text as a decimal number: [+-]digits[.digits][e[+-]digits].
 * Returns 0 with *out set; -1 if it is not a number; -2 if it names a
 * non-finite value (nan, inf, infinity) or overflows. */
static int
schema_parse_text(const char *s, size_t n, double *out)
{
	size_t i = 0, digits = 0;
	char tmp[64], *end;

	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	if ((n - i == 3 && (strncasecmp(s + i, "nan", 3) == 0 ||
	    strncasecmp(s + i, "inf", 3) == 0)) ||
	    (n - i == 8 && strncasecmp(s + i, "infinity", 8) == 0))
		return -2;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits == 0)
		return -1;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t e = 0;

		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			e++;
		if (e == 0)
			return -1;
	}
	if (i != n)
		return -1;
	if (n < sizeof(tmp)) {
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		*out = strtod(tmp, &end);
	} else {
		char *big = xstrndup(s, n);
		*out = strtod(big, &end);
		free(big);
	}
	return isfinite(*out) ? 0 : -2;
}

/* Turns a raw value into a double, or adds a type error. */
static int
schema_to_double(const struct feature *f, const struct value *val,
    const struct verr_loc *loc, double *out, struct verrs *v)
{
	int integer = f->type == FEATURE_INTEGER;
	int rc;

	switch (val->kind) {
	case VALUE_NUMBER:
		*out = val->num;
		if (!isfinite(*out)) {
			verrs_add(v, "finite_number", loc,
			    "Input should be a finite number", val, NULL);
			return -1;
		}
		return 0;
	case VALUE_TEXT:
		rc = schema_parse_text(val->str, val->len, out);
		if (rc == -2) {
			verrs_add(v, "finite_number", loc,
			    "Input should be a finite number", val, NULL);
			return -1;
		}
		if (rc < 0) {
			verrs_add(v, integer ? "int_parsing" : "float_parsing",
			    loc, integer ? "Input should be a valid integer, "
			    "unable to parse string as an integer" :
			    "Input should be a valid number, unable to parse "
			    "string as a number", val, NULL);
			return -1;
		}
		return 0;
	default:
		verrs_add(v, integer ? "int_type" : "float_type", loc,
		    integer ? "Input should be a valid integer" :
		    "Input should be a valid number", val, NULL);
		return -1;
	}
}

/* Adds a bound error: kind is "greater_than" etc, key is "gt" etc. */
static void
schema_bound_error(struct verrs *v, const struct verr_loc *loc,
    const struct value *val, const char *kind, const char *key,
    const char *words, double bound)
{
	struct buf msg = BUF_INIT, ctx = BUF_INIT;

	buf_printf(&msg, "Input should be %s ", words);
	buf_json_double(&msg, bound);
	buf_printf(&ctx, "{\"%s\":", key);
	buf_json_double(&ctx, bound);
	buf_putc(&ctx, '}');
	verrs_add(v, kind, loc, msg.data, val, ctx.data);
	buf_free(&msg);
	buf_free(&ctx);
}

int
schema_check_value(const struct feature *f, const struct value *val,
    const struct verr_loc *loc, double *out, struct verrs *v)
{
	double x;
	int ok = 1;

	if (f->nullable && val->kind == VALUE_NULL) {
		*out = NAN;
		return 0;
	}
	if (f->type == FEATURE_CATEGORY)
		return schema_check_category(f, val, loc, out, v);
	if (schema_to_double(f, val, loc, &x, v) < 0)
		return -1;
	if (f->type == FEATURE_INTEGER && (x != floor(x) ||
	    fabs(x) > SCHEMA_INT_LIMIT)) {
		verrs_add(v, "int_from_float", loc, "Input should be a valid "
		    "integer, got a number with a fractional part", val, NULL);
		return -1;
	}
	if (f->has_min && f->min_exclusive && !(x > f->min))
		schema_bound_error(v, loc, val, "greater_than", "gt",
		    "greater than", f->min), ok = 0;
	else if (f->has_min && !f->min_exclusive && !(x >= f->min))
		schema_bound_error(v, loc, val, "greater_than_equal", "ge",
		    "greater than or equal to", f->min), ok = 0;
	if (f->has_max && f->max_exclusive && !(x < f->max))
		schema_bound_error(v, loc, val, "less_than", "lt",
		    "less than", f->max), ok = 0;
	else if (f->has_max && !f->max_exclusive && !(x <= f->max))
		schema_bound_error(v, loc, val, "less_than_equal", "le",
		    "less than or equal to", f->max), ok = 0;
	if (!ok)
		return -1;
	*out = x;
	return 0;
}

/* Checks the length of a positional list, adding too_short / too_long. */
static int
schema_check_count(const struct schema *s, size_t got,
    const struct verr_loc *loc, const struct value *val, struct verrs *v)
{
	struct buf msg = BUF_INIT, ctx = BUF_INIT;
	int shorter = got < s->n;

	if (got == s->n)
		return 0;
	buf_printf(&msg, "List should have %s %zu item%s after validation, "
	    "not %zu", shorter ? "at least" : "at most", s->n,
	    s->n == 1 ? "" : "s", got);
	buf_printf(&ctx, "{\"field_type\":\"List\",\"%s\":%zu,"
	    "\"actual_length\":%zu}", shorter ? "min_length" : "max_length",
	    s->n, got);
	verrs_add(v, shorter ? "too_short" : "too_long", loc, msg.data, val,
	    ctx.data);
	buf_free(&msg);
	buf_free(&ctx);
	return -1;
}

int
schema_validate_array(const struct schema *s, const cJSON *arr,
    const struct verr_loc *loc, double *row, struct verrs *v)
{
	const cJSON *item;
	struct value val;
	size_t i = 0;
	int rc = 0;

	if (!cJSON_IsArray(arr)) {
		value_from_json(&val, arr);
		verrs_add(v, "list_type", loc, "Input should be a valid list",
		    &val, NULL);
		return -1;
	}
	for (item = arr->child; item != NULL; item = item->next, i++) {
		struct verr_loc l;

		if (i >= s->n)
			continue;
		l = verr_loc_index(loc, (long)i);
		value_from_json(&val, item);
		if (schema_check_value(&s->features[i], &val, &l, &row[i],
		    v) < 0)
			rc = -1;
	}
	value_from_json(&val, arr);
	if (schema_check_count(s, i, loc, &val, v) < 0)
		rc = -1;
	return rc;
}

/* Validates {"features": [...]}: every other member is extra. */
static int
schema_validate_positional(const struct schema *s, const struct input *in,
    const struct verr_loc *loc, double *row, struct verrs *v)
{
	size_t i;
	int rc = 0, seen = 0;

	for (i = 0; i < in->n; i++) {
		const struct field *fl = &in->fields[i];
		struct verr_loc l = verr_loc_name(loc, fl->name, fl->name_len);

		if (strcmp(fl->name, SCHEMA_POSITIONAL_KEY) != 0) {
			verrs_add(v, "extra_forbidden", &l,
			    "Extra inputs are not permitted", &fl->value, NULL);
			rc = -1;
		} else if (seen++) {
			verrs_add(v, "duplicate_field", &l,
			    "Field given more than once", &fl->value, NULL);
			rc = -1;
		} else if (fl->value.kind != VALUE_ARRAY) {
			verrs_add(v, "list_type", &l,
			    "Input should be a valid list", &fl->value, NULL);
			rc = -1;
		} else if (schema_validate_array(s, fl->value.json, &l, row,
		    v) < 0)
			rc = -1;
	}
	return rc;
}

int
schema_validate(const struct schema *s, const struct input *in,
    const struct verr_loc *loc, double *row, struct verrs *v)
{
	unsigned char stackseen[256], *seen;
	size_t i;
	int rc = 0;

	if (in->is_json && schema_lookup(s, SCHEMA_POSITIONAL_KEY,
	    strlen(SCHEMA_POSITIONAL_KEY)) < 0) {
		for (i = 0; i < in->n; i++)
			if (strcmp(in->fields[i].name,
			    SCHEMA_POSITIONAL_KEY) == 0)
				return schema_validate_positional(s, in, loc,
				    row, v);
	}
	seen = s->n <= sizeof(stackseen) ? stackseen : xmalloc(s->n);
	memset(seen, 0, s->n);
	for (i = 0; i < in->n; i++) {
		const struct field *fl = &in->fields[i];
		struct verr_loc l = verr_loc_name(loc, fl->name, fl->name_len);
		long k = schema_lookup(s, fl->name, fl->name_len);

		if (k < 0) {
			verrs_add(v, "extra_forbidden", &l,
			    "Extra inputs are not permitted", &fl->value, NULL);
			rc = -1;
		} else if (seen[k]++) {
			verrs_add(v, "duplicate_field", &l,
			    "Field given more than once", &fl->value, NULL);
			seen[k] = 2;
			rc = -1;
		} else if (schema_check_value(&s->features[k], &fl->value, &l,
		    &row[k], v) < 0)
			rc = -1;
	}
	for (i = 0; i < s->n; i++) {
		const struct feature *f = &s->features[i];
		struct verr_loc l;

		if (seen[i])
			continue;
		if (!f->required) {
			row[i] = f->dflt;
			continue;
		}
		l = verr_loc_name(loc, f->name, f->name_len);
		verrs_add(v, "missing", &l, "Field required", NULL, NULL);
		rc = -1;
	}
	if (seen != stackseen)
		free(seen);
	return rc;
}
