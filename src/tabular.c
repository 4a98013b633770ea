/* tabular: columns, splits and CSV to instances (see tabular.h). */
#include "tabular.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

cJSON *
tabular_columns_to_records(const cJSON *cols, const char **why)
{
	const cJSON *col;
	cJSON *out;
	int n = -1, i;

	if (!cJSON_IsObject(cols) || cols->child == NULL) {
		*why = "expected an object of columns";
		return NULL;
	}
	cJSON_ArrayForEach(col, cols) {
		if (!cJSON_IsArray(col) || (n >= 0 &&
		    cJSON_GetArraySize(col) != n)) {
			*why = "every column must be an array, all of one "
			    "length";
			return NULL;
		}
		n = cJSON_GetArraySize(col);
	}
	out = cJSON_CreateArray();
	for (i = 0; i < n; i++) {
		cJSON *rec = cJSON_CreateObject();

		cJSON_ArrayForEach(col, cols)
			cJSON_AddItemToObject(rec, col->string, cJSON_Duplicate(
			    cJSON_GetArrayItem(col, i), 1));
		cJSON_AddItemToArray(out, rec);
	}
	return out;
}

cJSON *
tabular_split_to_records(const cJSON *split, const char **why)
{
	const cJSON *cols = cJSON_GetObjectItem(split, "columns");
	const cJSON *data = cJSON_GetObjectItem(split, "data"), *row, *v, *c;
	cJSON *out;

	if (!cJSON_IsArray(data)) {
		*why = "dataframe_split needs \"data\": an array of rows";
		return NULL;
	}
	if (cols == NULL)
		return cJSON_Duplicate(data, 1);
	if (!cJSON_IsArray(cols)) {
		*why = "dataframe_split \"columns\" must be an array of names";
		return NULL;
	}
	out = cJSON_CreateArray();
	cJSON_ArrayForEach(row, data) {
		cJSON *rec = cJSON_CreateObject();

		if (!cJSON_IsArray(row) ||
		    cJSON_GetArraySize(row) != cJSON_GetArraySize(cols)) {
			*why = "each dataframe_split row must have one value "
			    "per column";
			cJSON_Delete(rec);
			cJSON_Delete(out);
			return NULL;
		}
		c = cols->child;
		cJSON_ArrayForEach(v, row) {
			if (!cJSON_IsString(c)) {
				*why = "column names must be strings";
				cJSON_Delete(rec);
				cJSON_Delete(out);
				return NULL;
			}
			cJSON_AddItemToObject(rec, c->valuestring,
			    cJSON_Duplicate(v, 1));
			c = c->next;
		}
		cJSON_AddItemToArray(out, rec);
	}
	return out;
}

void
tabular_csv_free(struct csv *csv)
{
	free(csv->text);
	free(csv->cells);
	memset(csv, 0, sizeof(*csv));
}

/* Appends a cell pointer. */
static void
tabular_csv_cell(struct csv *csv, size_t *ncells, size_t *cap, char *cell)
{
	if (*ncells == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		csv->cells = xrealloc(csv->cells, *cap * sizeof(char *));
	}
	csv->cells[(*ncells)++] = cell;
}

int
tabular_csv_parse(const char *body, size_t len, struct csv *csv,
    const char **why)
{
	size_t i = 0, o = 0, col = 0, ncells = 0, cap = 0;

	memset(csv, 0, sizeof(*csv));
	csv->text = xmalloc(len + 2);
	if (memchr(body, '\0', len) != NULL) {
		*why = "NUL byte in the CSV body";
		goto fail;
	}
	while (i < len) {
		char *cell = csv->text + o;

		/* Skip blank lines between rows. */
		if (col == 0 && (body[i] == '\n' || body[i] == '\r')) {
			i++;
			continue;
		}
		if (body[i] == '"') {
			for (i++; ; i++) {
				if (i >= len) {
					*why = "unterminated quoted field";
					goto fail;
				}
				if (body[i] == '"' && i + 1 < len &&
				    body[i + 1] == '"')
					csv->text[o++] = '"', i++;
				else if (body[i] == '"') {
					i++;
					break;
				} else
					csv->text[o++] = body[i];
			}
		}
		while (i < len && body[i] != ',' && body[i] != '\n' &&
		    body[i] != '\r')
			csv->text[o++] = body[i++];
		csv->text[o++] = '\0';
		tabular_csv_cell(csv, &ncells, &cap, cell);
		col++;
		if (i < len && body[i] == ',') {
			i++;
			if (i < len)
				continue;
			/* A comma at the very end: one more, empty cell. */
			csv->text[o] = '\0';
			tabular_csv_cell(csv, &ncells, &cap, csv->text + o++);
			col++;
		}
		/* The end of a row. */
		if (csv->ncols == 0)
			csv->ncols = col;
		else if (col != csv->ncols) {
			*why = "rows of unequal width";
			goto fail;
		}
		col = 0;
	}
	if (csv->ncols == 0) {
		*why = "an empty CSV body";
		goto fail;
	}
	csv->nrows = ncells / csv->ncols - 1;
	return 0;
fail:
	tabular_csv_free(csv);
	return -1;
}

void
tabular_csv_row(const struct csv *csv, size_t r, struct input *in)
{
	size_t j;

	for (j = 0; j < csv->ncols; j++) {
		const char *v = csv->cells[(r + 1) * csv->ncols + j];
		struct value val = { 0 };

		val.kind = VALUE_TEXT;
		val.str = v;
		val.len = strlen(v);
		input_add(in, csv->cells[j], strlen(csv->cells[j]), &val);
	}
}
