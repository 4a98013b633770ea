/* input: decoded request bodies and their raw values (see input.h). */
#include "config.h"
#include "input.h"
#include "xalloc.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Longest echo of a client value in an error, in bytes. */
#define VALUE_ECHO_MAX 128

void
input_init(struct input *in)
{
	memset(in, 0, sizeof(*in));
}

void
input_free(struct input *in)
{
	free(in->fields);
	if (in->json != NULL)
		cJSON_Delete(in->json);
	free(in->text);
	input_init(in);
}

void
input_reset(struct input *in)
{
	struct field *fields = in->fields;
	size_t cap = in->cap;

	in->fields = NULL;
	input_free(in);
	in->fields = fields;
	in->cap = cap;
}

void
input_add(struct input *in, const char *name, size_t name_len,
    const struct value *v)
{
	if (in->n == in->cap) {
		in->cap = in->cap ? in->cap * 2 : 8;
		in->fields = xrealloc(in->fields, in->cap * sizeof(*in->fields));
	}
	in->fields[in->n].name = name;
	in->fields[in->n].name_len = name_len;
	in->fields[in->n].value = *v;
	in->n++;
}

/* Request bodies are parsed into a per-thread arena instead of one
 * malloc per node and string: a bump allocator, emptied when the last of
 * its blocks is freed (cJSON_Delete() of the tree, at input_free()). Blocks
 * past its size come from malloc. Only the parsers between
 * input_json_begin() and input_json_end() allocate from it, so a tree from
 * the arena is made and freed on one thread. */
#define INPUT_ARENA_SIZE 32768

static _Thread_local struct {
	size_t			used;	/* bytes handed out */
	size_t			live;	/* blocks not yet freed */
	int			on;	/* between input_json_begin() and _end() */
	_Alignas(16) char	mem[INPUT_ARENA_SIZE];
} input_arena;

static int
input_arena_owns(const void *p)
{
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)input_arena.mem;

	return a >= lo && a < lo + INPUT_ARENA_SIZE;
}

static void *
input_json_malloc(size_t n)
{
	size_t need = (n + 15) & ~(size_t)15;

	if (input_arena.on && n > 0 && need >= n &&
	    need <= INPUT_ARENA_SIZE - input_arena.used) {
		void *p = input_arena.mem + input_arena.used;

		input_arena.used += need;
		input_arena.live++;
		return p;
	}
	return xmalloc(n);	/* xalloc's policy: never NULL */
}

static void
input_json_free(void *p)
{
	if (p == NULL)
		return;
	if (!input_arena_owns(p)) {
		free(p);
		return;
	}
	if (--input_arena.live == 0)
		input_arena.used = 0;
}

void
input_json_hooks(void)
{
	cJSON_Hooks h = { input_json_malloc, input_json_free };

	/* AddressSanitizer and valgrind's memcheck should see every node. */
#ifdef __SANITIZE_ADDRESS__
	return;
#endif
#ifdef HAVE_VALGRIND_VALGRIND_H
	if (RUNNING_ON_VALGRIND)
		return;
#endif
	cJSON_InitHooks(&h);
}

void
input_json_begin(void)
{
	input_arena.on = 1;
}

void
input_json_end(void)
{
	input_arena.on = 0;
}

cJSON *
input_parse_json(const char *text, size_t len, size_t *error_at)
{
	const char *end = NULL;
	cJSON *root;
	size_t off;

	/* cJSON's own trailing-data check misreads trailing white space, so
	 * parse without it and check the rest here. */
	input_json_begin();
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	input_json_end();
	off = end != NULL && end >= text && end <= text + len ?
	    (size_t)(end - text) : 0;
	if (root == NULL) {
		*error_at = off;
		return NULL;
	}
	while (off < len && strchr(" \t\r\n", text[off]) != NULL &&
	    text[off] != '\0')
		off++;
	if (off < len) {
		cJSON_Delete(root);
		*error_at = off;
		return NULL;
	}
	return root;
}

void
value_from_json(struct value *v, const cJSON *node)
{
	memset(v, 0, sizeof(*v));
	v->json = node;
	if (cJSON_IsNumber(node)) {
		v->kind = VALUE_NUMBER;
		v->num = node->valuedouble;
	} else if (cJSON_IsString(node)) {
		v->kind = VALUE_STRING;
		v->str = node->valuestring;
		v->len = strlen(node->valuestring);
	} else if (cJSON_IsNull(node))
		v->kind = VALUE_NULL;
	else if (cJSON_IsBool(node))
		v->kind = VALUE_BOOL;
	else if (cJSON_IsArray(node))
		v->kind = VALUE_ARRAY;
	else
		v->kind = VALUE_OBJECT;
}

void
value_render(struct buf *b, const struct value *v)
{
	char *s;

	switch (v->kind) {
	case VALUE_NUMBER:
		if (isfinite(v->num))
			buf_json_double(b, v->num);
		else
			buf_puts(b, isnan(v->num) ? "\"nan\"" :
			    v->num > 0 ? "\"inf\"" : "\"-inf\"");
		return;
	case VALUE_TEXT:
	case VALUE_STRING:
		buf_json_strn_cut(b, v->str, v->len, VALUE_ECHO_MAX);
		return;
	case VALUE_NULL:
		buf_puts(b, "null");
		return;
	case VALUE_BOOL:
		buf_puts(b, cJSON_IsTrue(v->json) ? "true" : "false");
		return;
	case VALUE_ARRAY:
	case VALUE_OBJECT:
		s = cJSON_PrintUnformatted(v->json);
		if (s == NULL) {
			buf_puts(b, "null");
			return;
		}
		if (strlen(s) <= VALUE_ECHO_MAX)
			buf_puts(b, s);
		else
			buf_json_strn_cut(b, s, strlen(s), VALUE_ECHO_MAX);
		cJSON_free(s);
		return;
	}
}
