/* Unit tests: dtoa_json (the fast shortest round-trip text of a double that
 * buf_json_double writes) against its definition, dtoa_json_reference. */
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

#include "dtoa.h"

typedef size_t (*dtoa_fn)(double, char[DTOA_BUFSZ]);

/* Fails unless fast(d) is byte for byte ref(d)'s text, with its length. */
static void
assert_same_as(dtoa_fn fast_fn, dtoa_fn ref_fn, double d)
{
	char fast[DTOA_BUFSZ], ref[DTOA_BUFSZ];
	size_t n = fast_fn(d, fast);

	ref_fn(d, ref);
	if (strcmp(fast, ref) != 0)
		print_error("%a: fast \"%s\", reference \"%s\"\n", d, fast,
		    ref);
	assert_string_equal(fast, ref);
	assert_int_equal(n, strlen(fast));
}

/* dtoa_json(d) against the reference. */
static void
assert_same(double d)
{
	assert_same_as(dtoa_json, dtoa_json_reference, d);
}

/* Whether s is what the reference writes for d, at the cost of at most
 * two snprintf and two strtod (the reference takes up to three of each):
 * s reads back to d, is "%.*g" at the precision its digits imply (at
 * least 15 for a normal double), and one digit fewer would not read back.
 * Fewer digits still cannot either: if a shorter text were inside d's
 * rounding interval, the nearest one with one digit fewer would be too
 * (the interval is symmetric except at powers of two, which the callers
 * test against the reference itself). */
static int
matches_definition(double d, const char *s)
{
	int sub = fabs(d) < DBL_MIN, n = 0, prec;
	const char *p = s, *e = strchr(s, 'e');
	char t[320];

	if (strtod(s, NULL) != d)
		return 0;
	if (*p == '-')
		p++;
	while (*p == '0' || *p == '.')
		p++;
	for (; *p != '\0' && *p != 'e'; p++)
		if (*p != '.')
			n++;
	/* An integer's trailing zeros ("100") are not significant. */
	if (e == NULL && strchr(s, '.') == NULL)
		for (p = s + strlen(s) - 1; n > 1 && *p == '0'; p--)
			n--;
	if (n < 1)
		n = 1;
	prec = sub ? n : n < 15 ? 15 : n;
	snprintf(t, sizeof(t), "%.*g", prec, d);
	if (strcmp(t, s) != 0)
		return 0;
	if (prec > (sub ? 1 : 15)) {
		snprintf(t, sizeof(t), "%.*g", prec - 1, d);
		if (strtod(t, NULL) == d)
			return 0;
	}
	return 1;
}

static void
test_dtoa_known(void **state)
{
	static const struct {
		double		 d;
		const char	*text;
	} k[] = {
		{ 0, "0" }, { -0.0, "-0" }, { 0.1, "0.1" }, { 5, "5" },
		{ -2.5, "-2.5" }, { 1e-300, "1e-300" }, { 1e21, "1e+21" },
		{ 1e15, "1e+15" }, { 1e14, "100000000000000" },
		{ 1234567890123456.0, "1234567890123456" },
		{ 123456789012345678.0, "1.2345678901234568e+17" },
		{ 1e-5, "1e-05" }, { 1e-4, "0.0001" }, { 0.00123, "0.00123" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 1.0 / 3.0, "0.3333333333333333" },
		{ 2.0 / 3.0, "0.6666666666666666" },
		{ 0.9815857562405158, "0.9815857562405158" },
		{ 5e-324, "5e-324" }, { 1e-320, "1e-320" },
		{ DBL_MIN, "2.2250738585072014e-308" },
		{ DBL_MAX, "1.7976931348623157e+308" },
		{ -DBL_MAX, "-1.7976931348623157e+308" },
		{ 9007199254740993.0, "9007199254740992" },
		{ 1e23, "1e+23" }, { 5e-310, "5e-310" },
		{ NAN, "null" }, { INFINITY, "null" }, { -INFINITY, "null" },
	};
	char out[DTOA_BUFSZ];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		dtoa_json(k[i].d, out);
		assert_string_equal(out, k[i].text);
		assert_same(k[i].d);
	}
}

/* Every power of two and of ten, and the doubles either side of each:
 * the lopsided intervals, exact ties, subnormals and their edges. */
static void
test_dtoa_edges(void **state)
{
	char s[32];
	int e;

	(void)state;
	for (e = -1074; e <= 1023; e++) {
		double d = ldexp(1, e);

		assert_same(d);
		assert_same(-d);
		assert_same(nextafter(d, 0));
		assert_same(nextafter(d, INFINITY));
		assert_same(ldexp(3, e - 1));
	}
	for (e = -324; e <= 308; e++) {
		double d;

		snprintf(s, sizeof(s), "1e%d", e);
		d = strtod(s, NULL);
		assert_same(d);
		assert_same(nextafter(d, 0));
		assert_same(nextafter(d, INFINITY));
	}
	for (e = 0; e < 20000; e++) {
		assert_same(e);
		assert_same(e / 1000.0);
	}
	assert_same(nextafter(0, 1));
	assert_same(nextafter(DBL_MIN, 0));
	assert_same(DBL_MAX);
	assert_same(nextafter(DBL_MAX, 0));
}

/* The next of 4 kinds of double from random bits: any bit pattern, a
 * probability in [0, 1) with all 53 bits, an integer of random size, a
 * subnormal. */
static double
random_double(uint64_t *x, unsigned kind)
{
	uint64_t y;
	double d;

	*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
	y = *x;
	switch (kind % 4) {
	case 1:
		return (double)(y >> 11) / 9007199254740992.0;
	case 2:
		return (double)(int64_t)(y >> (y & 63));
	case 3:
		y &= 0x800FFFFFFFFFFFFFull;
		break;
	}
	memcpy(&d, &y, sizeof(d));
	return d;
}

static void
test_dtoa_random_reference(void **state)
{
	uint64_t x = 0x2545F4914F6CDD1Du;
	unsigned i;

	(void)state;
	for (i = 0; i < 100000; i++) {
		double d = random_double(&x, i);

		if (isfinite(d))
			assert_same(d);
	}
}

static void
test_dtoa_random_definition(void **state)
{
	uint64_t x = 0x9E3779B97F4A7C15u;
	char out[DTOA_BUFSZ];
	unsigned i, bad = 0;

	(void)state;
	for (i = 0; i < 2000000; i++) {
		double d = random_double(&x, i);

		if (!isfinite(d))
			continue;
		dtoa_json(d, out);
		if (!matches_definition(d, out) && bad++ < 10)
			print_error("%a: \"%s\"\n", d, out);
	}
	assert_int_equal(bad, 0);
}

/* The double nearest a random decimal: 1 to max_digits digits times 10^e,
 * e in [e_lo, e_lo + e_span), of either sign. */
static double
random_decimal(uint64_t *x, unsigned max_digits, int e_lo, unsigned e_span)
{
	char text[64];
	unsigned digits, k;
	uint64_t m;

	*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
	digits = 1 + (unsigned)(*x % max_digits);
	for (m = 0, k = 0; k < digits; k++) {
		*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
		m = m * 10 + *x % 10;
	}
	snprintf(text, sizeof(text), "%s%llue%d", (*x >> 40) & 1 ? "-" : "",
	    (unsigned long long)m, e_lo + (int)((*x >> 20) % e_span));
	return strtod(text, NULL);
}

/* Decimals of few digits (5.1, 0.2, 1.4490908726697348e-08's short
 * cousins): the digits removed four and two at a time must give the
 * reference's text. */
static void
test_dtoa_short_decimals(void **state)
{
	uint64_t x = 0xD1B54A32D192ED03u;
	unsigned i;

	(void)state;
	for (i = 0; i < 200000; i++)
		assert_same(random_decimal(&x, 15, -40, 60));
}

/* dtoa_json_decimal() (the fast path for an input row's short decimals)
 * must give dtoa_json()'s text for every double: short decimals with up to
 * 8 decimals (past its 6), random doubles of every kind, and the edges. */
static void
assert_decimal_same(double d)
{
	assert_same_as(dtoa_json_decimal, dtoa_json, d);
}

static void
test_dtoa_decimal_fast_path(void **state)
{
	static const double edges[] = { 0.0, -0.0, 1e-6, 9.99999e-7, 1e15,
	    999999999999999.0, 99999999999999.9, 0.1 + 0.2, 1.0 / 3.0, 5e-324,
	    1.7976931348623157e308, 9007199254740993.0, 0.000001, 0.0000015,
	    123456.789012, 1234567.890123, 0.5, 2.5, -7.25, 1e14 + 0.5 };
	uint64_t x = 0x94D049BB133111EBu;
	unsigned i;

	(void)state;
	assert_decimal_same(NAN);
	assert_decimal_same(INFINITY);
	assert_decimal_same(-INFINITY);
	for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		assert_decimal_same(edges[i]);
		assert_decimal_same(-edges[i]);
	}
	for (i = 0; i < 300000; i++) {
		assert_decimal_same(random_decimal(&x, 17, -8, 9));
		assert_decimal_same(random_double(&x, i));
	}
}

/* The check above must be able to fail: texts the reference would not
 * write are refused. */
static void
test_dtoa_definition_check(void **state)
{
	(void)state;
	assert_true(matches_definition(0.1, "0.1"));
	assert_false(matches_definition(0.1, "0.10000000000000001"));
	assert_false(matches_definition(0.1, "1e-01"));
	assert_false(matches_definition(100, "1e+02"));
	assert_true(matches_definition(100, "100"));
	assert_false(matches_definition(0.3, "0.30000000000000004"));
	assert_false(matches_definition(5e-324, "4.94065645841247e-324"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dtoa_known),
		cmocka_unit_test(test_dtoa_edges),
		cmocka_unit_test(test_dtoa_definition_check),
		cmocka_unit_test(test_dtoa_random_reference),
		cmocka_unit_test(test_dtoa_short_decimals),
		cmocka_unit_test(test_dtoa_decimal_fast_path),
		cmocka_unit_test(test_dtoa_random_definition),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
