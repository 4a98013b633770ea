/* decode_json: JSON request bodies to raw fields (see decode.h). */
#include "decode.h"

#include <stdio.h>
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

/* Returns the offset of the first NUL byte or invalid UTF-8 sequence in
 * s, or len if there is none. */
static size_t
decode_bad_byte(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, l;

	while (i < len) {
		if (p[i] == 0)
			return i;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((l = buf_utf8_len(p + i, len - i)) == 0)
			return i;
		i += l;
	}
	return len;
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
	struct value val;
	size_t i, bad;
	cJSON *root;

	for (i = 0; i < len && strchr(" \t\r\n", body[i]) != NULL; i++)
		continue;
	if (i == len) {
		verrs_add(v, "missing", NULL, "Field required", NULL, NULL);
		return -1;
	}
	if ((bad = decode_bad_byte(body, len)) < len) {
		decode_json_invalid(v, bad, body[bad] == '\0' ?
		    "NUL byte in body" : "invalid UTF-8");
		return -1;
	}
	root = input_parse_json(body, len, &bad);
	if (root == NULL) {
		decode_json_invalid(v, bad, bad >= len ?
		    "unexpected end of input" : "invalid JSON");
		return -1;
	}
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
