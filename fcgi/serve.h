/* serve: the FastCGI (and CGI) front. Turns what the web server sends into
 * a struct request, calls route_handle(), and writes the struct response
 * back. The only module that includes fcgiapp.h. */
#ifndef MLFCGI_SERVE_H
#define MLFCGI_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "route.h"

/* Shared by the request threads of one process. Owned by main(). */
struct serve_pool {
	const struct route_env	*env;
	int			 listen_fd;	/* FastCGI listening socket */
	int			 wake_fd;	/* readable once stopping */
	pthread_mutex_t		 accept_lock;	/* one thread polls at once */
	atomic_int		 stopping;
	size_t			 max_body;
	unsigned		 io_timeout;	/* seconds; see serve_timeouts() */
	unsigned		 body_timeout;	/* seconds a whole body may take */
};

/* Bounds every read from and write to the web server on fd by seconds
 * (SO_RCVTIMEO, SO_SNDTIMEO): a read or write that waits longer fails, and
 * the request with it, instead of holding its thread for ever. Set on the
 * listening socket, TCP connections inherit it; unix-socket connections do
 * not, and serve_thread() sets it on each. Returns 0, or -1 with errno. */
int	serve_timeouts(int fd, unsigned seconds);

/* A request thread: accepts and answers requests until pool->stopping is
 * set and wake_fd becomes readable. A request in flight is finished. */
void	*serve_thread(void *pool);

/* Answers the one request of a CGI invocation (environment and stdin),
 * writing to stdout. Returns 0, or -1 if the response could not be
 * written. */
int	serve_cgi(const struct route_env *env, size_t max_body);

/* Opens a FastCGI listening socket on "HOST:PORT", ":PORT" or a unix
 * socket path (with mode, octal, if not NULL). A unix socket path that
 * another process still answers on is refused, not taken over. Returns the
 * fd, or -1 with a message in err. */
int	serve_listen(const char *addr, const char *mode, char *err,
	    size_t errlen);
/* Closes fd and, for a unix socket, removes the path if it is still the
 * socket this process created. */
void	serve_unlisten(const char *addr, int fd);

/* Returns 1 if fd 0 is a FastCGI listening socket (spawned by a web
 * server), 0 if this is a CGI invocation. */
int	serve_spawned(void);

#endif
