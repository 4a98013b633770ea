/* offline: JSON-lines scoring through the /predict route (see offline.h). */
#include "offline.h"
#include "xalloc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Most lines scored together: their rows are predicted with one
 * model_predict_rows() call per PREDICT_BLOCK rows (see predict_prepare()).
 * A block also ends after the line that reaches OFFLINE_BLOCK_BYTES, which
 * bounds the memory its text and rows take. */
#define OFFLINE_BLOCK 4096
#define OFFLINE_BLOCK_BYTES (4 << 20)

/* The input, read through its descriptor: lines are cut in place in buf
 * (the '\n' becomes the NUL that ends a request body). */
struct offline_in {
	int	 fd;
	char	*buf;
	size_t	 len, cap;
	int	 eof;
};

/* A non-blank line of the current block: where it is in buf. */
struct offline_line {
	size_t	 off, len;
	long	 lineno;
};

/* Returns 1 if reading fd now would not wait. */
static int
offline_ready(int fd)
{
	struct pollfd pfd;

	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) != 0;
}

/* Reads more input after buf's len bytes; sets eof at the end (or on a
 * read error, which ends the input as getline() would). */
static void
offline_read(struct offline_in *in)
{
	ssize_t n;

	if (in->cap - in->len < 4096) {
		in->cap = in->cap ? 2 * in->cap : 65536;
		in->buf = xrealloc(in->buf, in->cap);
	}
	do
		n = read(in->fd, in->buf + in->len, in->cap - in->len - 1);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		in->eof = 1;
	else
		in->len += (size_t)n;
}

/* Cuts the line [off, end) of buf: strips the line ending, NUL-terminates
 * it and records it in lines[*n] unless it is blank. */
static void
offline_cut(struct offline_in *in, size_t off, size_t end, long lineno,
    struct offline_line *lines, size_t *n)
{
	size_t len = end - off, i;
	char *line = in->buf + off;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	line[len] = '\0';
	for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		continue;
	if (i == len)
		return;
	lines[*n].off = off;
	lines[*n].len = len;
	lines[*n].lineno = lineno;
	(*n)++;
}

/* Reads the next block of lines, from *start in buf (consumed input before
 * it is dropped first): up to OFFLINE_BLOCK non-blank ones or
 * OFFLINE_BLOCK_BYTES, fewer when the input would make us wait (so that a
 * pipe fed line by line is answered line by line) or ends. Returns the
 * number of lines; 0 at the end. */
static size_t
offline_block(struct offline_in *in, size_t *start, long *lineno,
    struct offline_line *lines)
{
	size_t n = 0, scan;
	char *nl;

	if (*start > 0) {
		memmove(in->buf, in->buf + *start, in->len - *start);
		in->len -= *start;
	}
	*start = scan = 0;
	while (n < OFFLINE_BLOCK && *start < OFFLINE_BLOCK_BYTES) {
		nl = in->len > scan ? memchr(in->buf + scan, '\n',
		    in->len - scan) : NULL;
		if (nl != NULL) {
			scan = (size_t)(nl - in->buf) + 1;
			offline_cut(in, *start, scan, ++*lineno, lines, &n);
			*start = scan;
			continue;
		}
		scan = in->len;
		if (in->eof) {
			if (*start < in->len) {
				offline_cut(in, *start, in->len, ++*lineno,
				    lines, &n);
				*start = in->len;
			}
			break;
		}
		if (n > 0 && !offline_ready(in->fd))
			break;
		offline_read(in);
	}
	return n;
}

long
offline_score(const struct route_env *env, FILE *in, FILE *out)
{
	struct offline_in src = { .fd = fileno(in) };
	struct offline_line *lines;
	struct route_scratch scratch;
	struct request *reqs;
	struct response res;
	char (*ids)[32];
	size_t start = 0, n, j;
	long lineno = 0, failed = 0;
	uint64_t now;

	lines = xcalloc(OFFLINE_BLOCK, sizeof(*lines));
	reqs = xcalloc(OFFLINE_BLOCK, sizeof(*reqs));
	ids = xcalloc(OFFLINE_BLOCK, sizeof(*ids));
	route_scratch_init(&scratch);
	response_init(&res);
	while (failed >= 0 &&
	    (n = offline_block(&src, &start, &lineno, lines)) > 0) {
		now = request_now_ns();
		for (j = 0; j < n; j++) {
			struct request *req = &reqs[j];

			snprintf(ids[j], sizeof(ids[j]), "line-%ld",
			    lines[j].lineno);
			memset(req, 0, sizeof(*req));
			req->method = "POST";
			req->path = "/predict";
			req->content_type = "application/json";
			req->request_id = ids[j];
			req->body = src.buf + lines[j].off;
			req->body_len = lines[j].len;
			req->body_too_large = lines[j].len > env->max_body;
			req->start_ns = now;
		}
		/* The block's lines validated and their rows predicted
		 * together; each line then goes through /predict, which
		 * takes its rows and answers from there. */
		predict_prepare(env, &scratch, reqs, n);
		for (j = 0; j < n; j++) {
			scratch.pre.cur = j;
			response_reset(&res);
			route_handle(env, &reqs[j], &res, &scratch);
			if (res.status != 200)
				failed++;
			/* Close the object with the line number:
			 * {...,"line":N}. */
			res.body.len--;
			buf_printf(&res.body, ",\"line\":%ld}\n",
			    lines[j].lineno);
			if (fwrite(res.body.data, 1, res.body.len, out) !=
			    res.body.len) {
				failed = -1;
				break;
			}
		}
		predict_pre_clear(&scratch);
		/* Answers go out block by block, as the lines come. */
		if (failed >= 0 && fflush(out) != 0)
			failed = -1;
	}
	free(src.buf);
	free(lines);
	free(reqs);
	free(ids);
	response_free(&res);
	route_scratch_free(&scratch);
	if (fflush(out) != 0)
		return -1;
	return failed;
}
