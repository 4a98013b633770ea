/* buf: a growable byte buffer, and the JSON writer built on it.
 *
 * A buf owns its bytes; buf_free() releases them. The contents are always
 * NUL-terminated so b->data can be used as a C string. Appending never fails
 * (allocation policy: see xalloc.h). Not thread-safe: one owner at a time.
 *
 * The buf_json_* functions write JSON tokens: they do not track structure;
 * the caller writes the commas, colons and brackets. */
#ifndef MLFCGI_BUF_H
#define MLFCGI_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
	char	*data;	/* NUL-terminated; NULL until the first append */
	size_t	 len;	/* bytes used, excluding the terminating NUL */
	size_t	 cap;	/* bytes allocated */
};

#define BUF_INIT { NULL, 0, 0 }

void	buf_init(struct buf *b);
void	buf_free(struct buf *b);
/* Empties the buffer but keeps its memory for reuse. */
void	buf_reset(struct buf *b);
/* Makes room for extra more bytes and the NUL. */
void	buf_reserve(struct buf *b, size_t extra);

/* The three appenders are inline: they run a few dozen times per answer,
 * and buf_puts() of a literal then costs no strlen(). */
static inline void
buf_append(struct buf *b, const void *p, size_t n)
{
	if (b->cap - b->len <= n)	/* cap >= len + 1 once allocated */
		buf_reserve(b, n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static inline void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

static inline void
buf_putc(struct buf *b, char c)
{
	if (b->cap - b->len <= 1)
		buf_reserve(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}
void	buf_printf(struct buf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Appends n in decimal (printf's "%llu", without printf). */
void	buf_put_uint(struct buf *b, unsigned long long n);
/* Hands the bytes to the caller (free() them) and leaves b empty. */
char	*buf_steal(struct buf *b);

/* Writes s (n bytes) as a JSON string literal, quotes included. Control
 * characters are escaped; bytes >= 0x80 are copied as they are, except that
 * invalid UTF-8 is replaced by U+FFFD so the output is always valid JSON. */
void	buf_json_strn(struct buf *b, const char *s, size_t n);
void	buf_json_str(struct buf *b, const char *s);
/* As buf_json_strn, but a string longer than max bytes is cut (on a UTF-8
 * boundary) and ends in "...": for echoing client text in errors. */
void	buf_json_strn_cut(struct buf *b, const char *s, size_t n, size_t max);
/* Writes a finite double in the shortest form that reads back to the same
 * value ("0.1", "5", "1e-300"). A non-finite value is written as null. */
void	buf_json_double(struct buf *b, double d);
/* The same, faster for short decimals such as 5.1 (dtoa_json_decimal()):
 * for the values of a validated input row. */
void	buf_json_decimal(struct buf *b, double d);

/* Returns the length of the valid UTF-8 sequence starting at s (1-4), or 0
 * if the bytes at s (at most n of them) are not valid UTF-8. */
size_t	buf_utf8_len(const unsigned char *s, size_t n);

#endif
