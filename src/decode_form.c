/* decode_form: urlencoded request bodies to raw fields (see decode.h). */
#include "decode.h"
#include "xalloc.h"

#include <string.h>

static int
decode_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
decode_form_invalid(struct verrs *v, const char *why, size_t offset)
{
	struct buf ctx = BUF_INIT;

	buf_puts(&ctx, "{\"error\":");
	buf_json_str(&ctx, why);
	buf_printf(&ctx, ",\"offset\":%zu}", offset);
	verrs_add(v, "form_invalid", NULL, "Invalid form body", NULL, ctx.data);
	buf_free(&ctx);
}

/* Decodes src[0..n) into dst (at most n bytes) and NUL-terminates it.
 * Returns the decoded length, or -1 with *bad set to the offending offset
 * (relative to src) and *why to the reason. */
static long
decode_component(const char *src, size_t n, char *dst, size_t *bad,
    const char **why)
{
	size_t i, o = 0, l;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (src[i] == '+')
			dst[o++] = ' ';
		else if (src[i] == '%') {
			if (i + 2 >= n) {
				*bad = i, *why = "truncated percent-escape";
				return -1;
			}
			if ((hi = decode_hex(src[i + 1])) < 0 ||
			    (lo = decode_hex(src[i + 2])) < 0) {
				*bad = i, *why = "invalid percent-escape";
				return -1;
			}
			dst[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			dst[o++] = src[i];
	}
	for (i = 0; i < o; i += l) {
		if (dst[i] == '\0') {
			*bad = 0, *why = "NUL byte";
			return -1;
		}
		if ((l = buf_utf8_len((unsigned char *)dst + i, o - i)) == 0) {
			*bad = 0, *why = "invalid UTF-8";
			return -1;
		}
	}
	dst[o] = '\0';
	return (long)o;
}

int
decode_form(const char *body, size_t len, struct input *in, struct verrs *v)
{
	size_t pos = 0, bad = 0;
	const char *why = NULL;
	char *out;

	/* Each segment decodes to at most its length plus two NULs. */
	out = in->text = xmalloc(2 * len + 2);
	while (pos < len) {
		const char *seg = body + pos, *amp, *eq;
		size_t seglen, nlen;
		long dn, dv;
		struct value val;

		amp = memchr(seg, '&', len - pos);
		seglen = amp ? (size_t)(amp - seg) : len - pos;
		if (seglen == 0) {
			pos++;
			continue;
		}
		eq = memchr(seg, '=', seglen);
		nlen = eq ? (size_t)(eq - seg) : seglen;
		dn = decode_component(seg, nlen, out, &bad, &why);
		if (dn < 0) {
			decode_form_invalid(v, why, pos + bad);
			input_free(in);
			return -1;
		}
		memset(&val, 0, sizeof(val));
		val.kind = VALUE_TEXT;
		val.str = out + dn + 1;
		dv = 0;
		if (eq != NULL) {
			dv = decode_component(eq + 1, seglen - nlen - 1,
			    out + dn + 1, &bad, &why);
			if (dv < 0) {
				decode_form_invalid(v, why, pos + nlen + 1 + bad);
				input_free(in);
				return -1;
			}
		} else
			out[dn + 1] = '\0';
		val.len = (size_t)dv;
		input_add(in, out, (size_t)dn, &val);
		out += dn + 1 + dv + 1;
		pos += seglen + (amp ? 1 : 0);
	}
	return 0;
}
