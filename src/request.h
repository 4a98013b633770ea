/* request: the plain HTTP request the FastCGI front hands to the core, and
 * the response value the core hands back. Nothing here knows FastCGI.
 *
 * Ownership: a request's strings and body belong to the front and live until
 * the response has been written; the core only reads them. A response owns
 * its body buffer; response_free() releases it. */
#ifndef MLFCGI_REQUEST_H
#define MLFCGI_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define REQUEST_ID_MAX 128

struct request {
	const char	*method;	/* "GET", "POST", ...; never NULL */
	const char	*path;		/* path below the mount point, "/..." */
	const char	*content_type;	/* NULL when the request had none */
	const char	*request_id;	/* X-Request-Id as received, or NULL */
	const char	*body;		/* NUL-terminated; body_len bytes */
	size_t		 body_len;
	int		 body_too_large; /* front stopped reading at the limit */
	const char	*body_error;	/* static: why the body is unusable
					 * (short of its Content-Length, a
					 * malformed length), or NULL */
	int		 body_timed_out; /* 1: the web server sent nothing
					 * for the I/O timeout mid-body; 2: the
					 * body took longer than its deadline */
	uint64_t	 start_ns;	/* request_now_ns() when accepted, or 0 */
};

struct response {
	int		 status;
	const char	*content_type;	/* static string */
	const char	*allow;		/* static string; set on 405 */
	const char	*x_cache;	/* static "hit", "miss", "partial" */
	char		 request_id[REQUEST_ID_MAX + 1];
	struct buf	 body;
};

void	response_init(struct response *res);
/* Makes res empty for the next request, keeping the body's memory. */
void	response_reset(struct response *res);
void	response_free(struct response *res);
/* Sets status and the body {"detail": "<detail>"}. */
void	response_error(struct response *res, int status, const char *detail);
/* The reason phrase for an HTTP status ("Unprocessable Entity"). */
const char *response_reason(int status);

/* Monotonic clock in nanoseconds. */
uint64_t request_now_ns(void);
/* Wall clock in milliseconds since the epoch. */
int64_t	request_wall_ms(void);
/* Copies a well-formed request id ([A-Za-z0-9._-], 1-128 bytes) from id
 * into out and returns 1; returns 0 and leaves out untouched otherwise. */
int	request_id_valid_copy(const char *id, char out[REQUEST_ID_MAX + 1]);
/* Writes a new random request id (32 hex digits) into out. Thread-safe. */
void	request_id_generate(char out[REQUEST_ID_MAX + 1]);

#endif
