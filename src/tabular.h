/* tabular: the table shapes other serving protocols send, turned into the
 * instances /predict takes: columns ({"a": [1, 2], "b": [3, 4]}) into
 * records, and CSV text into named text fields. */
#ifndef MLFCGI_TABULAR_H
#define MLFCGI_TABULAR_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "input.h"

/* {"a": [1, 2], "b": [3, 4]} -> [{"a": 1, "b": 3}, {"a": 2, "b": 4}].
 * Returns a new array (caller frees), or NULL with why set when the
 * columns are not all arrays of one length. */
cJSON	*tabular_columns_to_records(const cJSON *cols, const char **why);
/* {"columns": [...], "data": [[...]]} -> records (or the rows as they are
 * without columns). Returns a new array, or NULL with why set. */
cJSON	*tabular_split_to_records(const cJSON *split, const char **why);

/* A parsed CSV body: a header of names, then rows of text fields. */
struct csv {
	char	 *text;		/* owned, unescaped, NUL-separated */
	char	**cells;	/* ncols * (nrows + 1), header first */
	size_t	  ncols, nrows;
};

/* Parses RFC 4180 CSV (quoted fields, "" escapes, CRLF or LF; blank lines
 * skipped). Returns 0, or -1 with why set (rows of unequal width, an
 * unterminated quote, NUL bytes). */
int	tabular_csv_parse(const char *body, size_t len, struct csv *csv,
	    const char **why);
void	tabular_csv_free(struct csv *csv);
/* Fills in with row r's cells as form-like text fields named by the
 * header (valid while csv lives). */
void	tabular_csv_row(const struct csv *csv, size_t r, struct input *in);

#endif
