/* serve: FastCGI and CGI requests to struct request, struct response back
 * (see serve.h). */
#include "serve.h"
#include "xalloc.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* Answers up to this size never wait to be written (see serve_thread()). */
#define SERVE_SMALL_ANSWER 65536

/* Per-thread memory, reused for every request. */
struct serve_conn {
	int			body_whole;	/* read to its end (see
						 * serve_read_body()) */
	int			body_timed_out;	/* stopped arriving */
	struct buf		body;
	struct buf		head;
	struct response		res;
	struct route_scratch	scratch;
};

static void
serve_conn_init(struct serve_conn *c)
{
	buf_init(&c->body);
	buf_init(&c->head);
	response_init(&c->res);
	route_scratch_init(&c->scratch);
}

static void
serve_conn_free(struct serve_conn *c)
{
	buf_free(&c->body);
	buf_free(&c->head);
	response_free(&c->res);
	route_scratch_free(&c->scratch);
}

/* Parses a CONTENT_LENGTH value. Returns -1 if absent or malformed. */
static long long
serve_content_length(const char *s)
{
	long long n = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || n > (1LL << 50))
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n;
}

/* The path below the mount point: PATH_INFO when the web server split the
 * URL (a prefix mount, Apache, nginx with fastcgi_split_path_info), else
 * SCRIPT_NAME (lighttpd mounted at "/"). */
static const char *
serve_path(const char *script_name, const char *path_info)
{
	if (path_info != NULL && *path_info != '\0')
		return path_info;
	if (script_name != NULL && *script_name != '\0')
		return script_name;
	return "/";
}

/* Reads up to n bytes of the body into buf. Returns the bytes read, 0 at
 * its end, SERVE_READ_TIMEOUT when the web server sent nothing for the I/O
 * timeout, or another negative value on an error. */
typedef int (*serve_read_fn)(void *stream, char *buf, int n);
#define SERVE_READ_TIMEOUT (-2)
/* ... or when the body took longer than its deadline in all. */
#define SERVE_READ_DEADLINE (-3)

/* Reads the body into c->body: at most max bytes. Sets *too_large (and
 * reads nothing more) when CONTENT_LENGTH, or the stream, exceeds max;
 * sets *error when CONTENT_LENGTH is malformed or the body ends short of
 * it (a truncated upload must not become a prediction). Sets
 * c->body_whole when the body was read to its CONTENT_LENGTH or to the end
 * of the stream: too large, malformed or timed out, it was not; and
 * c->body_timed_out to 1 when it stopped arriving for the I/O timeout, 2
 * when it took longer than its deadline (struct request's values). */
static void
serve_read_body(struct serve_conn *c, const char *clen, size_t max,
    serve_read_fn rd, void *stream, int *too_large, const char **error)
{
	long long want = serve_content_length(clen);
	size_t limit;
	int n = 0;

	buf_reset(&c->body);
	c->body_whole = 0;
	*too_large = 0;
	*error = NULL;
	c->body_timed_out = 0;
	if (want < 0 && clen != NULL && *clen != '\0') {
		*error = "Malformed Content-Length";
		buf_reserve(&c->body, 0);
		c->body.data[0] = '\0';
		return;
	}
	if (want >= 0 && (unsigned long long)want > max) {
		*too_large = 1;
		return;
	}
	/* Without a length, read to the end, but no further than max + 1. */
	limit = want >= 0 ? (size_t)want : max + 1;
	while (c->body.len < limit) {
		size_t chunk = limit - c->body.len;

		if (chunk > 65536)
			chunk = 65536;
		buf_reserve(&c->body, chunk);
		n = rd(stream, c->body.data + c->body.len, (int)chunk);
		if (n <= 0)
			break;
		c->body.len += (size_t)n;
	}
	if (n == SERVE_READ_TIMEOUT || n == SERVE_READ_DEADLINE) {
		c->body_timed_out = n == SERVE_READ_DEADLINE ? 2 : 1;
		c->body.len = 0;
	} else if (c->body.len > max) {
		*too_large = 1;
		c->body.len = 0;
	} else {
		c->body_whole = 1;
		if (want >= 0 && c->body.len < (size_t)want)
			*error = "The request body is shorter than its "
			    "Content-Length";
	}
	buf_reserve(&c->body, 0);
	c->body.data[c->body.len] = '\0';
}

/* Writes "Name: value\r\n". */
static void
serve_header(struct buf *b, const char *name, const char *value)
{
	buf_puts(b, name);
	buf_puts(b, value);
	buf_puts(b, "\r\n");
}

/* Builds the CGI-style response head into c->head (without printf: this
 * runs for every request). */
static void
serve_head(struct serve_conn *c, int with_body)
{
	const struct response *r = &c->res;

	buf_reset(&c->head);
	buf_reserve(&c->head, 256 + (with_body ? r->body.len : 0));
	buf_puts(&c->head, "Status: ");
	buf_put_uint(&c->head, r->status > 0 ? (unsigned)r->status : 0);
	buf_putc(&c->head, ' ');
	serve_header(&c->head, "", response_reason(r->status));
	serve_header(&c->head, "Content-Type: ", r->content_type);
	buf_puts(&c->head, "Content-Length: ");
	buf_put_uint(&c->head, r->body.len);
	buf_puts(&c->head, "\r\nCache-Control: no-store\r\n");
	if (r->request_id[0] != '\0')
		serve_header(&c->head, "X-Request-Id: ", r->request_id);
	if (r->allow != NULL)
		serve_header(&c->head, "Allow: ", r->allow);
	if (r->x_cache != NULL)
		serve_header(&c->head, "X-Cache: ", r->x_cache);
	buf_puts(&c->head, "\r\n");
	if (with_body)
		buf_append(&c->head, r->body.data, r->body.len);
}

/* The request parameters serve_one() reads: an array of PARAM_N values,
 * each NULL when absent. serve_fcgi_params() picks a name by its first
 * letter, and tries CONTENT_TYPE and CONTENT_LENGTH in turn: keep those two
 * adjacent, and its switch in step with the names. */
enum serve_param {
	PARAM_METHOD,
	PARAM_SCRIPT_NAME,
	PARAM_PATH_INFO,
	PARAM_CONTENT_TYPE,
	PARAM_CONTENT_LENGTH,
	PARAM_REQUEST_ID,
	PARAM_N
};

#define SERVE_PARAM(s) { s, sizeof(s) - 1 }
static const struct {
	const char	*name;
	size_t		 len;
} serve_params[PARAM_N] = {
	SERVE_PARAM("REQUEST_METHOD"), SERVE_PARAM("SCRIPT_NAME"),
	SERVE_PARAM("PATH_INFO"), SERVE_PARAM("CONTENT_TYPE"),
	SERVE_PARAM("CONTENT_LENGTH"), SERVE_PARAM("HTTP_X_REQUEST_ID")
};

/* Fills prm from a FastCGI request's "NAME=value" strings in one pass. A
 * lookup per name (FCGX_GetParam()) compared each name with every one of
 * the 20-30 strings a web server sends: 2,500 of the 40,000 instructions a
 * /predict took (callgrind, bench/RESULTS.md). Here a string's first letter
 * picks the one or two names it may be. The first of a repeated name
 * counts, as with FCGX_GetParam(). */
static void
serve_fcgi_params(FCGX_ParamArray envp, const char *prm[PARAM_N])
{
	const char *e;
	size_t i, n, len;

	for (i = 0; i < PARAM_N; i++)
		prm[i] = NULL;
	for (; envp != NULL && (e = *envp) != NULL; envp++) {
		switch (e[0]) {
		case 'R': i = PARAM_METHOD, n = 1; break;
		case 'S': i = PARAM_SCRIPT_NAME, n = 1; break;
		case 'P': i = PARAM_PATH_INFO, n = 1; break;
		case 'C': i = PARAM_CONTENT_TYPE, n = 2; break;
		case 'H': i = PARAM_REQUEST_ID, n = 1; break;
		default: continue;
		}
		for (; n > 0; i++, n--) {
			len = serve_params[i].len;
			if (prm[i] == NULL && strncmp(e, serve_params[i].name,
			    len) == 0 && e[len] == '=') {
				prm[i] = e + len + 1;
				break;
			}
		}
	}
}

/* Fills prm from the environment (CGI). */
static void
serve_cgi_params(const char *prm[PARAM_N])
{
	size_t i;

	for (i = 0; i < PARAM_N; i++)
		prm[i] = getenv(serve_params[i].name);
}

/* Answers one request with the parameters prm. */
static void
serve_one(const struct route_env *env, struct serve_conn *c,
    const char *const prm[PARAM_N], size_t max_body, serve_read_fn rd,
    void *stream, uint64_t start)
{
	struct request req;

	memset(&req, 0, sizeof(req));
	req.start_ns = start;
	req.method = prm[PARAM_METHOD] ? prm[PARAM_METHOD] : "GET";
	req.path = serve_path(prm[PARAM_SCRIPT_NAME], prm[PARAM_PATH_INFO]);
	req.content_type = prm[PARAM_CONTENT_TYPE];
	req.request_id = prm[PARAM_REQUEST_ID];
	serve_read_body(c, prm[PARAM_CONTENT_LENGTH], max_body, rd, stream,
	    &req.body_too_large, &req.body_error);
	req.body_timed_out = c->body_timed_out;
	req.body = c->body.data;
	req.body_len = c->body.len;

	response_reset(&c->res);
	route_handle(env, &req, &c->res, &c->scratch);
	serve_head(c, strcmp(req.method, "HEAD") != 0);
}

/* Sets the socket option opt (SO_RCVTIMEO or SO_SNDTIMEO) of fd to ns
 * nanoseconds (at least one microsecond: 0 would mean no timeout). */
static int
serve_timeout_ns(int fd, int opt, uint64_t ns)
{
	struct timeval tv;

	if (ns < 1000)
		ns = 1000;
	tv.tv_sec = (time_t)(ns / 1000000000u);
	tv.tv_usec = (suseconds_t)(ns % 1000000000u / 1000);
	return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

/* The same in seconds. */
static int
serve_timeout(int fd, int opt, unsigned seconds)
{
	return serve_timeout_ns(fd, opt, (uint64_t)seconds * 1000000000u);
}

/* A FastCGI request's body as serve_read_body() reads it: the stream, its
 * connection, and the time by which the whole body must be in. */
struct serve_fcgi_in {
	FCGX_Stream	*s;
	int		 fd;
	uint64_t	 deadline_ns;	/* request_now_ns() clock */
	uint64_t	 io_ns;		/* the connection's SO_RCVTIMEO */
};

/* SO_RCVTIMEO bounds each read; the deadline bounds them all, so that a
 * body trickling in a byte at a time cannot hold the thread. libfcgi's
 * FCGX_GetStr() reads until it has n bytes, so n is cut to what its buffer
 * holds (1 when empty: one more read); a body that arrived with its
 * parameters, as web servers send it, is read in one call as before. Once
 * less than the I/O timeout is left, a read may wait only that long. */
static int
serve_fcgi_read(void *stream, char *buf, int n)
{
	struct serve_fcgi_in *in = stream;
	uint64_t now = request_now_ns();
	int got, e, held = (int)(in->s->stop - in->s->rdNext);

	if (now >= in->deadline_ns)
		return SERVE_READ_DEADLINE;
	if (n > held)
		n = held > 0 ? held : 1;
	if (held == 0 && in->deadline_ns - now < in->io_ns && in->fd >= 0) {
		(void)serve_timeout_ns(in->fd, SO_RCVTIMEO,
		    in->deadline_ns - now);
		in->io_ns = in->deadline_ns - now;
	}
	if ((got = FCGX_GetStr(buf, n, in->s)) > 0)
		return got;
	/* libfcgi keeps a failed read's errno as the stream's error. */
	e = FCGX_GetError(in->s);
	if (e == EAGAIN || e == EWOULDBLOCK)
		return request_now_ns() >= in->deadline_ns ?
		    SERVE_READ_DEADLINE : SERVE_READ_TIMEOUT;
	return e != 0 ? -1 : 0;
}

/* Whether the request on in was read to its end: the empty FCGI_STDIN
 * record seen, after a body read whole (c->body_whole). The web server
 * sends that record with the body's last bytes, so reading it does not
 * wait on a client; after it, the web server sends nothing more for this
 * request. More bytes than CONTENT_LENGTH said are not the end. */
static int
serve_fcgi_read_all(const struct serve_conn *c, FCGX_Stream *in)
{
	if (!c->body_whole)
		return 0;
	if (!FCGX_HasSeenEOF(in))
		(void)FCGX_GetChar(in);
	return FCGX_HasSeenEOF(in) != 0;
}

/* Waits until listen_fd is readable or the stop signal. Returns 1 when
 * readable, 0 when stopping. */
static int
serve_wait(struct serve_pool *p)
{
	struct pollfd fds[2];

	for (;;) {
		if (atomic_load(&p->stopping))
			return 0;
		fds[0].fd = p->listen_fd;
		fds[0].events = POLLIN;
		fds[1].fd = p->wake_fd;
		fds[1].events = POLLIN;
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (fds[1].revents != 0)
			return 0;
		if (fds[0].revents & (POLLERR | POLLNVAL))
			return 0;
		return 1;
	}
}

/* Accepts the next connection into req->ipcFd, for FCGX_Accept_r() to read
 * the request from. The listening socket is non-blocking: accept first and
 * poll only when nothing is waiting, so a busy server makes one system call
 * here per request (poll-then-accept made two, and libfcgi's own accept a
 * select on top). Does what libfcgi's accept does: TCP_NODELAY on TCP.
 * Returns 1 with a connection (*is_unix set), 0 when stopping. Caller
 * holds accept_lock. */
static int
serve_accept(struct serve_pool *p, FCGX_Request *req, int *is_unix)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int fd, one = 1;

	for (;;) {
		if (atomic_load(&p->stopping))
			return 0;
		len = sizeof(sa);
		/* On Linux the new socket does not inherit O_NONBLOCK:
		 * libfcgi's reads block, as with its own accept. */
		fd = accept(p->listen_fd, (struct sockaddr *)&sa, &len);
		if (fd >= 0)
			break;
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		/* Nothing waiting, or out of descriptors or memory for now. */
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EMFILE &&
		    errno != ENFILE && errno != ENOBUFS && errno != ENOMEM)
			return 0;
		if (!serve_wait(p))
			return 0;
	}
	if (sa.ss_family == AF_INET || sa.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	req->ipcFd = fd;
	*is_unix = sa.ss_family == AF_UNIX;
	/* Else FCGX_Accept_r() would close it as the end of the last one. */
	req->keepConnection = 1;
	return 1;
}

int
serve_timeouts(int fd, unsigned seconds)
{
	if (serve_timeout(fd, SO_RCVTIMEO, seconds) != 0 ||
	    serve_timeout(fd, SO_SNDTIMEO, seconds) != 0)
		return -1;
	return 0;
}

/* As serve_accept, but libfcgi accepts (under the lock): needed when
 * FCGI_WEB_SERVER_ADDRS asks libfcgi to check the peer's address. */
static int
serve_accept_libfcgi(struct serve_pool *p, FCGX_Request *req)
{
	for (;;) {
		if (!serve_wait(p))
			return 0;
		/* If another process took the connection first,
		 * FCGX_Accept_r fails with EAGAIN and we poll again. */
		if (FCGX_Accept_r(req) == 0)
			return 1;
	}
}

void *
serve_thread(void *arg)
{
	struct serve_pool *p = arg;
	struct serve_conn c;
	FCGX_Request req;
	const char *prm[PARAM_N];
	int got, rc, is_unix = 0, own = getenv("FCGI_WEB_SERVER_ADDRS") == NULL;
	int now;
	struct serve_fcgi_in in;
	uint64_t start;

#ifdef __linux__
	prctl(PR_SET_NAME, "mlfcgi-request", 0, 0, 0);	/* top -H, perf */
#endif
	serve_conn_init(&c);
	/* When this thread accepts (own), libfcgi must never accept on its
	 * own: its connections would miss the timeouts and the lock. */
	FCGX_InitRequest(&req, own ? -1 : p->listen_fd, 0);
	for (;;) {
		pthread_mutex_lock(&p->accept_lock);
		got = own ? serve_accept(p, &req, &is_unix) :
		    serve_accept_libfcgi(p, &req);
		pthread_mutex_unlock(&p->accept_lock);
		if (!got)
			break;
		/* Reads the request's parameters outside the lock. A
		 * unix-socket connection does not inherit the listening
		 * socket's timeouts (TCP does): bound its reads here, which
		 * also drops a connection that stays silent (libfcgi's own
		 * accept does that after 2 seconds, with a poll per
		 * request); its writes are bounded below, where they can
		 * wait. On an error (a timeout included) libfcgi closes the
		 * connection ("detached": at once, not with its shut down
		 * and read for up to 2 more seconds) and tries to accept
		 * again on listen_sock, which is -1 here: it returns at
		 * once. */
		if (own) {
			if (is_unix)
				(void)serve_timeout(req.ipcFd, SO_RCVTIMEO,
				    p->io_timeout);
			req.detached = 1;
			rc = FCGX_Accept_r(&req);
			req.detached = 0;
			if (rc != 0)
				continue;
		}
		serve_fcgi_params(req.envp, prm);
		in.s = req.in;
		in.fd = req.ipcFd;
		start = request_now_ns();
		in.deadline_ns = start + (uint64_t)p->body_timeout *
		    1000000000u;
		in.io_ns = (uint64_t)p->io_timeout * 1000000000u;
		serve_one(p->env, &c, prm, p->max_body, serve_fcgi_read, &in,
		    start);
		/* A write waits only once the socket's buffer (about 200 KB
		 * on a unix socket) is full and the web server reads no
		 * more: bound it for answers that could fill it. */
		if (own && is_unix && c.head.len > SERVE_SMALL_ANSWER)
			(void)serve_timeout(req.ipcFd, SO_SNDTIMEO,
			    p->io_timeout);
		FCGX_PutStr(c.head.data, (int)c.head.len, req.out);
		/* One request per connection: a kept connection would block
		 * this thread in a read that no stop signal can end.
		 * libfcgi closes by shutting down its side, then reading
		 * until the web server closes, for up to 2 seconds, so that
		 * unread input cannot make TCP reset the connection and
		 * lose the answer. On a unix socket whose request was read
		 * to its end there is nothing to reset: close at once,
		 * which spares a poll and a read per request and frees the
		 * thread without waiting for the web server (bench/RESULTS.md:
		 * +8-13 % requests/s at 16 connections, +22-24 % at 64). */
		now = own && is_unix && serve_fcgi_read_all(&c, req.in);
		req.keepConnection = now;	/* libfcgi leaves the fd to us */
		/* A body that stopped arriving: no shut down and read until
		 * the web server closes, which a trickle could make last. */
		req.detached = c.body_timed_out;
		FCGX_Finish_r(&req);
		if (now && req.ipcFd >= 0) {
			close(req.ipcFd);
			req.ipcFd = -1;
		}
	}
	FCGX_Free(&req, 1);
	serve_conn_free(&c);
	return NULL;
}

static int
serve_cgi_read(void *stream, char *buf, int n)
{
	return (int)fread(buf, 1, (size_t)n, (FILE *)stream);
}

int
serve_cgi(const struct route_env *env, size_t max_body)
{
	struct serve_conn c;
	const char *prm[PARAM_N];
	size_t wrote;

	serve_conn_init(&c);
	serve_cgi_params(prm);
	serve_one(env, &c, prm, max_body, serve_cgi_read, stdin,
	    request_now_ns());
	wrote = fwrite(c.head.data, 1, c.head.len, stdout);
	wrote = fflush(stdout) == 0 && wrote == c.head.len;
	serve_conn_free(&c);
	return wrote ? 0 : -1;
}

/* Returns 1 if something accepts connections on the unix socket path. */
static int
serve_socket_in_use(const char *path)
{
	struct sockaddr_un sa;
	int fd, in_use;

	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return 0;
	in_use = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return in_use;
}

/* The unix socket this process created, to remove only that at exit. */
static struct stat serve_sock_st;

int
serve_listen(const char *addr, const char *mode, char *err, size_t errlen)
{
	int is_path = strchr(addr, ':') == NULL;
	struct stat st;
	unsigned long m = 0;
	char *end;
	int fd;

	FCGX_Init();
	if (mode != NULL) {
		m = strtoul(mode, &end, 8);
		if (*mode == '\0' || *end != '\0' || m > 07777) {
			snprintf(err, errlen, "--socket-mode %s: expected an "
			    "octal mode such as 0660", mode);
			return -1;
		}
	}
	/* A socket left behind by a process that is gone would make bind()
	 * fail; remove it. One that still answers belongs to a running
	 * server: refuse, rather than steal its path. Never remove anything
	 * that is not a socket. */
	if (is_path && stat(addr, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket",
			    addr);
			return -1;
		}
		if (serve_socket_in_use(addr)) {
			snprintf(err, errlen, "%s is in use by another "
			    "process", addr);
			return -1;
		}
		unlink(addr);
	}
	fd = FCGX_OpenSocket(addr, 1024);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr,
		    strerror(errno));
		return -1;
	}
	if (is_path) {
		if (mode != NULL && chmod(addr, (mode_t)m) < 0) {
			snprintf(err, errlen, "%s: chmod: %s", addr,
			    strerror(errno));
			close(fd);
			return -1;
		}
		stat(addr, &serve_sock_st);
	}
	return fd;
}

void
serve_unlisten(const char *addr, int fd)
{
	struct stat st;

	close(fd);
	if (addr != NULL && strchr(addr, ':') == NULL &&
	    stat(addr, &st) == 0 && st.st_dev == serve_sock_st.st_dev &&
	    st.st_ino == serve_sock_st.st_ino)
		unlink(addr);
}

int
serve_spawned(void)
{
	return !FCGX_IsCGI();
}
