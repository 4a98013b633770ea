/* describe: JSON descriptions of loaded models, for /models, /models/{name}
 * and the API documents: each feature as a JSON Schema, classes, versions.
 * Pure functions of immutable models; thread-safe. */
#ifndef MLFCGI_DESCRIBE_H
#define MLFCGI_DESCRIBE_H

#include "buf.h"
#include "model.h"
#include "registry.h"

/* Writes one feature as a JSON Schema object: {"type": "number",
 * "exclusiveMinimum": 0, "maximum": 10, "description": ...}; a nullable
 * feature's type is ["number", "null"]. A category feature is {"type":
 * "string", "enum": [...]} (null in the enum too when nullable), or, when
 * it accepts unknown categories, {"type": "string", "examples": [...]}. */
void	describe_feature(struct buf *b, const struct feature *f);
/* Writes a model's request schema: {"type": "object", "properties": {...},
 * "required": [...], "additionalProperties": false}. */
void	describe_request_schema(struct buf *b, const struct model *m);
/* Writes {"name", "version", "task", "estimator", "features": [...],
 * "classes"?, "class_names"?, "description"?} for one model. */
void	describe_model(struct buf *b, const struct model *m);
/* Writes the "versions" array of name: [{"version", "state", ...}]. */
void	describe_versions(struct buf *b, const struct registry *r,
	    const char *name, size_t len);
/* The file name part of a path, so that errors show no directories. */
const char *describe_basename(const char *path);

#endif
