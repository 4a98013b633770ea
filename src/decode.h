/* decode: request body bytes to a struct input of raw named values.
 *
 * The decoders know nothing of models: they check that the bytes are
 * well-formed JSON or urlencoded form text, valid UTF-8 and free of NUL
 * bytes, and report what is not as FastAPI-shaped errors. */
#ifndef MLFCGI_DECODE_H
#define MLFCGI_DECODE_H

#include <stddef.h>

#include "input.h"
#include "verr.h"

/* Parses a JSON body whose top level must be an object. On success fills
 * in (which takes the tree) with the object's members in order and returns
 * 0. On failure adds one error (json_invalid with the byte offset, missing
 * for an empty body, model_attributes_type for a non-object) and returns -1;
 * in is then empty. */
int	decode_json(const char *body, size_t len, struct input *in,
	    struct verrs *v);
/* Fills in with the members of a JSON object it does not own. */
void	decode_json_members(const cJSON *obj, struct input *in);
/* Parses an application/x-www-form-urlencoded body: name=value pairs joined
 * by '&', '+' for space, %XX escapes. Returns 0 and fills in, or -1 after
 * adding a form_invalid error (bad escape, NUL byte, invalid UTF-8). */
int	decode_form(const char *body, size_t len, struct input *in,
	    struct verrs *v);

#endif
