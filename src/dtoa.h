/* dtoa: a double as the shortest text that reads back to it, in the form
 * buf_json_double() writes.
 *
 * The form is printf's "%.*g" at the least precision P in 15, 16, 17 (from
 * 1 for subnormals) whose text strtod() reads back to the same double: so
 * "0.1", "5", "1e+21", "1e-05", "0.30000000000000004", "5e-324", "-0". The
 * fast path computes the shortest digits exactly with 128-bit products
 * (Ryu's method: the rounding interval of d scaled by a power of ten, digits
 * removed while the interval still holds a shorter number) and lays them
 * out with printf's rules for that P. Pure functions; thread-safe. */
#ifndef MLFCGI_DTOA_H
#define MLFCGI_DTOA_H

#include <stddef.h>

/* Room for the longest text, "-2.2250738585072014e-308", and a NUL. */
#define DTOA_BUFSZ 32

/* Writes d into out (NUL-terminated) and returns its length. A non-finite
 * d is written as "null". */
size_t	dtoa_json(double d, char out[DTOA_BUFSZ]);
/* The same text as dtoa_json(), found faster when d is the double nearest
 * a decimal of at most 15 significant digits and 6 decimals (5.1, 0.25,
 * 1200: the values people send as features); a few dozen instructions
 * slower than dtoa_json() for other doubles. */
size_t	dtoa_json_decimal(double d, char out[DTOA_BUFSZ]);
/* The same text by the definition: snprintf at each precision and strtod
 * back. Slow (thousands of instructions); for the rare doubles the fast
 * path leaves to it, and as the reference in tests. */
size_t	dtoa_json_reference(double d, char out[DTOA_BUFSZ]);

#endif
