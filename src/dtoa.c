/* dtoa: shortest round-trip text of a double (see dtoa.h). */
#include "dtoa.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DTOA_POW5_N	326	/* 5^0 .. 5^325: the largest i for e2 < 0 */
#define DTOA_POW5_INV_N	342	/* 5^-0 .. 5^-341: covers q <= 291 for e2 >= 0 */
#define DTOA_BITS	125	/* bits kept of each power of 5 */
#include "dtoa_tables.h"

static const char dtoa_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

__extension__ typedef unsigned __int128 dtoa_u128;

/* ceil(log2(5^e)) for 1 <= e <= 3528 (1 for e = 0). */
static inline int
dtoa_pow5_bits(int e)
{
	return (int)(((uint32_t)e * 1217359) >> 19) + 1;
}

/* floor(log10(2^e)) for 0 <= e <= 1650. */
static inline int
dtoa_log10_pow2(int e)
{
	return (int)(((uint32_t)e * 78913) >> 18);
}

/* floor(log10(5^e)) for 0 <= e <= 2620. */
static inline int
dtoa_log10_pow5(int e)
{
	return (int)(((uint32_t)e * 732923) >> 20);
}

/* Whether 5^p divides v (v > 0). */
static int
dtoa_mult_pow5(uint64_t v, int p)
{
	int n = 0;

	while (v % 5 == 0) {
		v /= 5;
		n++;
	}
	return n >= p;
}

/* (m * mul) >> j, mul a 125-bit table entry, 64 <= j. */
static inline uint64_t
dtoa_mul_shift(uint64_t m, const uint64_t mul[2], int j)
{
	dtoa_u128 lo = (dtoa_u128)m * mul[0];
	dtoa_u128 hi = (dtoa_u128)m * mul[1];

	return (uint64_t)(((lo >> 64) + hi) >> (j - 64));
}

/* The shortest decimal digits * 10^*exp10 inside the rounding interval of
 * the finite nonzero double with fields ieee_m, ieee_e (the interval's
 * ends included when the significand is even, as strtod rounds ties to
 * even), the closest to it of that length (ties to an even last digit). */
static void
dtoa_shortest(uint64_t ieee_m, int ieee_e, uint64_t *digits, int *exp10)
{
	uint64_t m2, mv, vr, vp, vm, mm_shift;
	int e2, e10, removed = 0, accept, vm_tz = 0, vr_tz = 0;
	unsigned last = 0;

	if (ieee_e == 0) {
		e2 = 1 - 1023 - 52 - 2;
		m2 = ieee_m;
	} else {
		e2 = ieee_e - 1023 - 52 - 2;
		m2 = (1ull << 52) | ieee_m;
	}
	accept = (m2 & 1) == 0;
	mv = 4 * m2;
	/* The gap below is half the gap above at a power of two. */
	mm_shift = ieee_m != 0 || ieee_e <= 1;
	/* vr, vp, vm: d, the interval's top and bottom, times 10^-e10,
	 * rounded down; *_tz: that nothing was lost in the rounding. */
	if (e2 >= 0) {
		int q = dtoa_log10_pow2(e2) - (e2 > 3);
		int i = -e2 + q + DTOA_BITS + dtoa_pow5_bits(q) - 1;

		e10 = q;
		vr = dtoa_mul_shift(mv, dtoa_pow5_inv[q], i);
		vp = dtoa_mul_shift(mv + 2, dtoa_pow5_inv[q], i);
		vm = dtoa_mul_shift(mv - 1 - mm_shift, dtoa_pow5_inv[q], i);
		/* Exact only if 5^q divides the scaled value; at most one of
		 * the three can be a multiple of 5. */
		if (q <= 21) {
			if (mv % 5 == 0)
				vr_tz = dtoa_mult_pow5(mv, q);
			else if (accept)
				vm_tz = dtoa_mult_pow5(mv - 1 - mm_shift, q);
			else
				vp -= (uint64_t)dtoa_mult_pow5(mv + 2, q);
		}
	} else {
		int q = dtoa_log10_pow5(-e2) - (-e2 > 1);
		int i = -e2 - q;
		int j = q - (dtoa_pow5_bits(i) - DTOA_BITS);

		e10 = q + e2;
		vr = dtoa_mul_shift(mv, dtoa_pow5[i], j);
		vp = dtoa_mul_shift(mv + 2, dtoa_pow5[i], j);
		vm = dtoa_mul_shift(mv - 1 - mm_shift, dtoa_pow5[i], j);
		/* Exact only if 2^q divides the scaled value. */
		if (q <= 1) {
			vr_tz = 1;
			if (accept)
				vm_tz = mm_shift == 1;
			else
				vp--;
		} else if (q < 63)
			vr_tz = (mv & ((1ull << q) - 1)) == 0;
	}
	if (vm_tz || vr_tz) {
		/* Rare: an exact end or an exact tie to account for. */
		while (vp / 10 > vm / 10) {
			vm_tz &= vm % 10 == 0;
			vr_tz &= last == 0;
			last = (unsigned)(vr % 10);
			vr /= 10, vp /= 10, vm /= 10, removed++;
		}
		if (vm_tz)
			while (vm % 10 == 0) {
				vr_tz &= last == 0;
				last = (unsigned)(vr % 10);
				vr /= 10, vp /= 10, vm /= 10, removed++;
			}
		if (vr_tz && last == 5 && vr % 2 == 0)
			last = 4;
		*digits = vr + ((vr == vm && (!accept || !vm_tz)) ||
		    last >= 5);
	} else {
		int up = 0;

		/* Four, then two digits at a time while the interval still
		 * holds a shorter number, then one: the same as one at a time
		 * (vp / 10^k > vm / 10^k is k single steps in a row), with
		 * up taken from the last digit removed. Short numbers such as
		 * 5.1 lose 15 digits. */
		while (vp / 10000 > vm / 10000) {
			up = vr % 10000 >= 5000;
			vr /= 10000, vp /= 10000, vm /= 10000, removed += 4;
		}
		while (vp / 100 > vm / 100) {
			up = vr % 100 >= 50;
			vr /= 100, vp /= 100, vm /= 100, removed += 2;
		}
		while (vp / 10 > vm / 10) {
			up = vr % 10 >= 5;
			vr /= 10, vp /= 10, vm /= 10, removed++;
		}
		*digits = vr + (vr == vm || up);
	}
	*exp10 = e10 + removed;
}

/* Lays out digits * 10^exp10 as "%.*g" does at precision prec. */
static size_t
dtoa_layout(char *out, int neg, uint64_t digits, int exp10, int prec)
{
	char dig[20], *p = out;
	const char *d;
	uint32_t rest;
	int n = 0, x, i;

	while (digits % 10 == 0)
		digits /= 10, exp10++;
	/* Two digits a step; 8 at a time in 32 bits once they fit. */
	while (digits >= 100000000) {
		uint32_t low = (uint32_t)(digits % 100000000);

		digits /= 100000000;
		for (i = 0; i < 4; i++) {
			memcpy(dig + 18 - n, dtoa_pairs + 2 * (low % 100), 2);
			low /= 100;
			n += 2;
		}
	}
	rest = (uint32_t)digits;
	while (rest >= 100) {
		memcpy(dig + 18 - n, dtoa_pairs + 2 * (rest % 100), 2);
		rest /= 100;
		n += 2;
	}
	if (rest >= 10) {
		memcpy(dig + 18 - n, dtoa_pairs + 2 * rest, 2);
		n += 2;
	} else
		dig[19 - n++] = (char)('0' + rest);
	d = dig + 20 - n;

	x = exp10 + n - 1;		/* the exponent in d.ddde+x */
	if (prec < n)
		prec = n;
	if (neg)
		*p++ = '-';
	if (x < -4 || x >= prec) {
		*p++ = d[0];
		if (n > 1) {
			*p++ = '.';
			memcpy(p, d + 1, (size_t)n - 1);
			p += n - 1;
		}
		*p++ = 'e';
		*p++ = x < 0 ? '-' : '+';
		if (x < 0)
			x = -x;
		if (x >= 100)
			*p++ = (char)('0' + x / 100);
		*p++ = (char)('0' + x / 10 % 10);
		*p++ = (char)('0' + x % 10);
	} else if (x >= 0) {
		if (n <= x + 1) {
			memcpy(p, d, (size_t)n);
			p += n;
			for (i = n; i <= x; i++)
				*p++ = '0';
		} else {
			memcpy(p, d, (size_t)x + 1);
			p += x + 1;
			*p++ = '.';
			memcpy(p, d + x + 1, (size_t)(n - x - 1));
			p += n - x - 1;
		}
	} else {
		*p++ = '0';
		*p++ = '.';
		for (i = -1; i > x; i--)
			*p++ = '0';
		memcpy(p, d, (size_t)n);
		p += n;
	}
	*p = '\0';
	return (size_t)(p - out);
}

size_t
dtoa_json_reference(double d, char out[DTOA_BUFSZ])
{
	int prec;

	if (!isfinite(d)) {
		memcpy(out, "null", 5);
		return 4;
	}
	/* 15 digits suffice for most doubles; subnormals have fewer
	 * significant digits, so search those from 1. */
	for (prec = fabs(d) < 2.2250738585072014e-308 ? 1 : 15; prec <= 17;
	    prec++) {
		snprintf(out, DTOA_BUFSZ, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	return strlen(out);
}

/* If d / 10^k rounds to |d| for m = |d| x 10^k rounded, an integer below
 * 10^15, then |d| is the double nearest the decimal m x 10^-k (m and 10^k
 * are exact doubles, and IEEE division rounds correctly). A decimal of at
 * most 15 significant digits survives the trip to a double and back to 15
 * digits (DBL_DIG), so "%.15g" of d is that decimal, and 15 is the least
 * precision dtoa_json() tries: its text is the decimal's, laid out at
 * precision 15. The k tried first that fits gives the decimal without
 * trailing zeros. */
size_t
dtoa_json_decimal(double d, char out[DTOA_BUFSZ])
{
	static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
	double a = fabs(d), s;
	uint64_t m;
	int k;

	if (a >= 1e-6 && a < 1e15)	/* false for NaN */
		for (k = 0; k < 7; k++) {
			if ((s = a * p10[k]) >= 1e15)
				break;
			m = (uint64_t)(s + 0.5);
			if ((double)m / p10[k] == a)
				return dtoa_layout(out, signbit(d) != 0, m, -k, 15);
		}
	return dtoa_json(d, out);
}

size_t
dtoa_json(double d, char out[DTOA_BUFSZ])
{
	uint64_t bits, ieee_m, digits;
	int ieee_e, neg, exp10, prec;

	memcpy(&bits, &d, sizeof(bits));
	neg = (int)(bits >> 63);
	ieee_e = (int)((bits >> 52) & 0x7FF);
	ieee_m = bits & ((1ull << 52) - 1);
	if (ieee_e == 0x7FF) {
		memcpy(out, "null", 5);
		return 4;
	}
	if (ieee_e == 0 && ieee_m == 0) {
		if (neg)
			memcpy(out, "-0", 3);
		else
			memcpy(out, "0", 2);
		return (size_t)neg + 1;
	}
	dtoa_shortest(ieee_m, ieee_e, &digits, &exp10);
	while (digits % 10 == 0)
		digits /= 10, exp10++;
	prec = digits >= 10000000000000000ull ? 17 :
	    digits >= 1000000000000000ull ? 16 : 15;
	/* At a power of two the interval is lopsided: printf's nearest 16
	 * digits may fall outside it below while Ryu's lie inside above,
	 * and "%.*g" then goes on to 17. Only 15 or fewer digits are
	 * unique in the interval; leave the rest to the definition. */
	if (ieee_m == 0 && ieee_e > 1 && prec > 15)
		return dtoa_json_reference(d, out);
	/* The precision printf reached: 15 (or the digits, if more); for
	 * subnormals the digits themselves (the exponent form anyway). */
	return dtoa_layout(out, neg, digits, exp10, ieee_e == 0 ? 1 : prec);
}
