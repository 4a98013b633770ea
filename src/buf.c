/* buf: growable byte buffer and JSON token writer (see buf.h). */
#include "buf.h"
#include "dtoa.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	buf_reserve(b, 64);
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void
buf_put_uint(struct buf *b, unsigned long long n)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n != 0);
	buf_append(b, tmp + i, sizeof(tmp) - i);
}

char *
buf_steal(struct buf *b)
{
	char *p;

	if (b->data == NULL)
		buf_reserve(b, 0), b->data[0] = '\0';
	p = b->data;
	buf_init(b);
	return p;
}

size_t
buf_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return 0;
	return len;
}

/* 1 for the bytes a JSON string holds as they are: printable ASCII but
 * '"' and '\\'. */
static const unsigned char buf_json_plain[256] = {
	[0x20] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/*  !"#... */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,		/* 0-9 ... */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,		/* @A-O */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,		/* P-Z[\]^_ */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,		/* `a-o */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,		/* p-z{|}~DEL */
};

void
buf_json_strn(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start;

	buf_reserve(b, n + 2);
	b->data[b->len++] = '"';
	for (;;) {
		unsigned char c;
		size_t l;

		for (start = i; i < n && buf_json_plain[p[i]]; i++)
			continue;
		buf_append(b, p + start, i - start);
		if (i == n)
			break;
		c = p[i];
		if (c >= 0x80) {
			l = buf_utf8_len(p + i, n - i);
			if (l == 0) {
				buf_puts(b, "\xEF\xBF\xBD");
				i++;
			} else {
				buf_append(b, p + i, l);
				i += l;
			}
			continue;
		}
		switch (c) {
		case '"':  buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\t': buf_puts(b, "\\t"); break;
		default: {
			char esc[6] = { '\\', 'u', '0', '0',
			    hex[c >> 4], hex[c & 15] };
			buf_append(b, esc, 6);
		}
		}
		i++;
	}
	buf_putc(b, '"');
}

void
buf_json_str(struct buf *b, const char *s)
{
	buf_json_strn(b, s, strlen(s));
}

void
buf_json_strn_cut(struct buf *b, const char *s, size_t n, size_t max)
{
	struct buf t = BUF_INIT;

	if (n <= max) {
		buf_json_strn(b, s, n);
		return;
	}
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	buf_append(&t, s, n);
	buf_puts(&t, "...");
	buf_json_strn(b, t.data, t.len);
	buf_free(&t);
}

void
buf_json_decimal(struct buf *b, double d)
{
	char tmp[DTOA_BUFSZ];
	size_t n = dtoa_json_decimal(d, tmp);

	buf_append(b, tmp, n);
}

void
buf_json_double(struct buf *b, double d)
{
	char tmp[DTOA_BUFSZ];
	size_t n = dtoa_json(d, tmp);

	buf_append(b, tmp, n);
}
