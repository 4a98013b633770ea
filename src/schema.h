/* schema: a model's feature definitions and the validators that turn a
 * decoded input into a typed feature row, kcgi style: one small function per
 * check, every failure collected (not just the first).
 *
 * This is the boundary: behind schema_validate() nothing looks at client
 * input again. A schema is immutable after schema_index() and may be shared
 * by any number of threads. */
#ifndef MLFCGI_SCHEMA_H
#define MLFCGI_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "input.h"
#include "verr.h"

enum feature_type {
	FEATURE_NUMBER,		/* any finite double */
	FEATURE_INTEGER,	/* a finite whole number, |x| <= 2^53 */
	FEATURE_CATEGORY	/* one of a list of strings; the row holds its
				 * index (SCHEMA_UNKNOWN if unknown_ignore) */
};

/* The row value of a category that is not in the list, when the feature
 * ignores unknown categories. */
#define SCHEMA_UNKNOWN (-1.0)
/* Most categories a feature may have. */
#define SCHEMA_MAX_CATEGORIES 65536

struct feature {
	char			*name;
	size_t			 name_len;
	enum feature_type	 type;
	int			 has_min, min_exclusive;
	int			 has_max, max_exclusive;
	double			 min, max;
	int			 required;
	double			 dflt;		/* when !required; NaN: missing */
	int			 nullable;	/* JSON null is a missing value */
	char			*description;	/* or NULL */
	/* FEATURE_CATEGORY only (set by schema_set_categories): */
	char			**categories;	/* n_categories strings */
	size_t			*category_len;
	size_t			 n_categories;
	uint32_t		*category_order; /* indices, sorted by bytes */
	int			 unknown_ignore; /* unknown: SCHEMA_UNKNOWN,
						  * not an "enum" error */
	char			*enum_expected;	/* "'a', 'b' or 'c'" */
};

struct schema {
	struct feature	*features;	/* n, in the estimator's order */
	size_t		 n;
	uint32_t	*slots;		/* hash index: feature i + 1, 0 empty */
	size_t		 nslots;	/* a power of two */
};

/* Builds the name index; call once after filling features. Returns 0, or
 * -1 if two features share a name (then *dup is the second one's index). */
int	schema_index(struct schema *s, size_t *dup);
void	schema_free(struct schema *s);
/* Returns the index of the named feature, or -1. */
long	schema_lookup(const struct schema *s, const char *name, size_t len);
/* Makes f a FEATURE_CATEGORY with the n strings of cats (an array of
 * malloc'd strings, n >= 1), which f owns from now on, whatever the result.
 * Builds the lookup order and the text of the "enum" error, written as
 * pydantic writes it ("'a', 'b' or 'c'", Python repr quoting; a list longer
 * than about 1 KiB ends in ", ... (N more)"). Returns 0, or -1 if two
 * categories are equal (*dup is the second one's index). */
int	schema_set_categories(struct feature *f, char **cats, size_t n,
	    size_t *dup);
/* Returns the index of the category s[0..len) of f, or -1. Thread-safe. */
long	schema_category(const struct feature *f, const char *s, size_t len);

/* Validates in against s. Accepted shapes: named fields ({"a": 1, ...} or
 * a form), or {"features": [...]} in schema order when no feature is itself
 * called "features". A JSON null for a nullable feature becomes NaN, the
 * missing value of the estimators that handle one. A category feature takes
 * a JSON string (or form text) and puts its index in the row; an unknown
 * one is an "enum" error, or SCHEMA_UNKNOWN if the feature ignores unknown
 * categories. Unknown fields are rejected (extra_forbidden), as are
 * repeated ones (duplicate_field). On success fills row[0..s->n) and returns
 * 0; otherwise adds every error (locations start with loc) and returns -1. */
int	schema_validate(const struct schema *s, const struct input *in,
	    const struct verr_loc *loc, double *row, struct verrs *v);
/* Validates a bare JSON array of values in schema order. */
int	schema_validate_array(const struct schema *s, const cJSON *arr,
	    const struct verr_loc *loc, double *row, struct verrs *v);
/* Checks one value against one feature; 0 and *out set, or -1 and an error
 * added at loc. */
int	schema_check_value(const struct feature *f, const struct value *val,
	    const struct verr_loc *loc, double *out, struct verrs *v);

#endif
