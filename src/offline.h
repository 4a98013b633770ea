/* offline: scoring JSON lines without a web server (mlfcgi --predict). Each
 * input line goes through the same route as POST /predict, so validation,
 * numbers and audit rows are exactly those of the HTTP API. */
#ifndef MLFCGI_OFFLINE_H
#define MLFCGI_OFFLINE_H

#include <stdio.h>

#include "route.h"

/* Reads one instance per line from in ({"features": [...]} or named
 * fields; blank lines are skipped) and writes one JSON object per line to
 * out: the /predict answer, or {"detail": ...} for a line that fails, with
 * "line": N added. Lines longer than env->max_body are errors. Returns the
 * number of lines that failed, or -1 if out could not be written.
 * in is read through its descriptor, in blocks of lines whose rows are
 * predicted together (the answers are the same as line by line); a block
 * ends early when more input is not yet there, so that a pipe fed line by
 * line is answered line by line. */
long	offline_score(const struct route_env *env, FILE *in, FILE *out);

#endif
