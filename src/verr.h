/* verr: the list of validation errors a request collects, rendered in
 * FastAPI's 422 shape: {"detail": [{"type", "loc", "msg", "input"[, "ctx"]}]}.
 *
 * Errors are written straight into a JSON buffer as they are added. At most
 * VERR_MAX are kept (a body with a million bad fields must not produce a
 * response a million errors long); `total` still counts all of them.
 * Not thread-safe: one per request. */
#ifndef MLFCGI_VERR_H
#define MLFCGI_VERR_H

#include <stddef.h>

#include "buf.h"
#include "input.h"

#define VERR_MAX 64
/* Longest field name echoed in a "loc", in bytes. */
#define VERR_NAME_MAX 128

struct verrs {
	size_t		n;	/* errors rendered */
	size_t		total;	/* errors seen */
	const char	*first_type; /* static type string of the first error */
	const char	*types[VERR_MAX]; /* the kept errors' static types */
	size_t		 n_types;
	struct buf	out;	/* the "detail" array's items, comma-separated */
};

/* A location: "body" followed by up to four parts, each a name or an index. */
struct verr_loc {
	size_t	n;
	struct {
		const char	*name;	/* NULL: use index */
		size_t		 len;
		long		 index;
	} part[4];
};

void	verrs_init(struct verrs *v);
void	verrs_reset(struct verrs *v);
void	verrs_free(struct verrs *v);
/* Adds an error. type and msg are copied; input may be NULL (rendered as
 * null); ctx_json, if not NULL, is a JSON object's text written as "ctx". */
void	verrs_add(struct verrs *v, const char *type, const struct verr_loc *loc,
	    const char *msg, const struct value *input, const char *ctx_json);
/* Writes the errors as one line of text: "body.sepal_width: Input should
 * be greater than 0; ...", for protocols whose errors are a string. */
void	verrs_summary(const struct verrs *v, struct buf *b);
/* Writes {"detail":[...]} into b. */
void	verrs_render(const struct verrs *v, struct buf *b);

/* Location builders: return a copy of loc with one more part. */
struct verr_loc verr_loc_name(const struct verr_loc *loc, const char *name,
	    size_t len);
struct verr_loc verr_loc_index(const struct verr_loc *loc, long index);

#endif
