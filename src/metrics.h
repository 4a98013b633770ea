/* metrics: this process's counters and latency histogram, and GET /metrics
 * in the Prometheus text format (0.0.4).
 *
 * Shared state: one table of labelled counters and one histogram per
 * route. Counting is lock-free and allocates nothing once a series exists
 * (an atomic increment found through a lock-free index); a mutex is taken
 * only to make a series (the first time a label set is seen) and to render.
 * Every series carries a pid label: each process of a pool reports its own
 * figures (see the README, "Metrics"). */
#ifndef MLFCGI_METRICS_H
#define MLFCGI_METRICS_H

#include <stddef.h>

#include "buf.h"
#include "model.h"
#include "verr.h"

/* Records the process start time; call once before the threads start. */
void	metrics_init(void);
/* One request answered: route is the route pattern ("/predict", or
 * "unmatched"), m the model it used or NULL. */
void	metrics_request(const char *route, const struct model *m, int status,
	    double seconds);
/* n predictions made by m, hits of them from the cache. */
void	metrics_predictions(const struct model *m, size_t n, size_t hits);
/* The types of the validation errors of a 422. */
void	metrics_validation(const struct verrs *v);

struct route_call;
void	metrics_handle(struct route_call *c);

#endif
