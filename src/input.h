/* input: a request body decoded into named raw values, before validation.
 *
 * The decoders (decode_json.c, decode_form.c) fill a struct input; the
 * schema (schema.c) turns it into a typed feature row. Values are untyped
 * here: a form field is VALUE_TEXT, to be parsed by the validator; a JSON
 * string is VALUE_STRING and is never taken as a number.
 *
 * Ownership: an input owns its field array and the storage the names and
 * values point into (the cJSON tree or the decoded form text); input_free()
 * releases all of it. */
#ifndef MLFCGI_INPUT_H
#define MLFCGI_INPUT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "buf.h"

enum value_kind {
	VALUE_NUMBER,	/* JSON number; num may be +-inf after overflow */
	VALUE_TEXT,	/* form text: str/len, not yet parsed */
	VALUE_STRING,	/* JSON string: str/len */
	VALUE_NULL,
	VALUE_BOOL,
	VALUE_ARRAY,	/* JSON array: json */
	VALUE_OBJECT	/* JSON object: json */
};

struct value {
	enum value_kind	 kind;
	double		 num;
	const char	*str;
	size_t		 len;
	const cJSON	*json;	/* the JSON node, NULL for form values */
};

struct field {
	const char	*name;
	size_t		 name_len;
	struct value	 value;
};

struct input {
	struct field	*fields;
	size_t		 n;
	size_t		 cap;
	cJSON		*json;	/* owned JSON tree, or NULL */
	char		*text;	/* owned decoded form text, or NULL */
	int		 is_json; /* 1: the whole body was a JSON object */
};

void	input_init(struct input *in);
/* Empties the input for reuse and frees what it owned. */
void	input_free(struct input *in);
/* As input_free, but keeps the field array's memory for the next use
 * (input_free() at the end releases it). */
void	input_reset(struct input *in);
/* Appends a field; name and value must live as long as the input. */
void	input_add(struct input *in, const char *name, size_t name_len,
	    const struct value *v);
/* Makes cJSON allocate through input.c, so that input_parse_json() and
 * decode_json() can build their trees in a per-thread arena (no malloc per
 * node). Call once, before other threads use cJSON; without it cJSON uses
 * malloc. */
void	input_json_hooks(void);
/* Between these two, the cJSON nodes and strings this thread makes come
 * from its arena (once input_json_hooks() ran); only a parser building a
 * request's tree belongs there. The tree must be freed on the same thread.
 * Not nested. */
void	input_json_begin(void);
void	input_json_end(void);
/* Parses exactly one JSON document from text[0..len): trailing bytes other
 * than white space are an error. Returns the tree (caller frees with
 * cJSON_Delete, on the same thread), or NULL with *error_at set to the offending offset. */
cJSON	*input_parse_json(const char *text, size_t len, size_t *error_at);
/* Fills v from a JSON node. */
void	value_from_json(struct value *v, const cJSON *node);
/* Writes v as JSON for an error's "input": numbers, short strings and
 * short containers as they are; anything long is cut to a string that
 * ends in "...". Non-finite numbers are written as strings ("inf"). */
void	value_render(struct buf *b, const struct value *v);

#endif
