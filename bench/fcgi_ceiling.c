/* fcgi_ceiling: the FastCGI ceiling for bench/run, a libfcgi responder that
 * reads the whole body and answers a fixed small JSON (with its
 * Content-Length, as mlfcgi answers), with nothing else.
 *
 * Spawned by lighttpd ("bin-path") with the listening socket on fd 0, like
 * mlfcgi. It runs CEILING_THREADS request threads (default 4, mlfcgi's
 * default) that take turns accepting, as libfcgi's threaded example does, so
 * it pays the same per-request FastCGI costs as mlfcgi's front and none of
 * its work. It also ends each connection as mlfcgi does on a unix socket
 * once the request is read to its end: closed at once, instead of
 * libfcgi's shutdown and wait for the web server to close first (15-30 %
 * more requests/s on its own; see bench/RESULTS.md), so that the ratio
 * measures mlfcgi's work and not a different close. SIGTERM ends it at
 * once. Build: see bench/run. */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CEILING_MAX_THREADS 64

static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;

static const char body[] =
    "{\"prediction\":0,\"label\":\"setosa\",\"confidence\":0.98}";

/* The whole answer, built once by main(). Its head gives the body's
 * length, as mlfcgi's does: without it, lighttpd served this responder
 * markedly slower (11,000 against 21,000 requests/s with one thread; see
 * bench/RESULTS.md), so the ceiling would sit too low. */
static char answer[256];
static int answer_len;

/* One request thread: accept, drain the body, answer, until accept fails. */
static void *
ceiling_thread(void *unused)
{
	FCGX_Request req;
	char buf[4096];
	int rc;

	(void)unused;
	FCGX_InitRequest(&req, 0, 0);
	for (;;) {
		pthread_mutex_lock(&accept_lock);
		rc = FCGX_Accept_r(&req);
		pthread_mutex_unlock(&accept_lock);
		if (rc < 0)
			break;
		while (FCGX_GetStr(buf, sizeof(buf), req.in) > 0)
			;
		FCGX_PutStr(answer, answer_len, req.out);
		/* The body was read to its end: close at once (libfcgi leaves
		 * a kept connection's fd to us). */
		req.keepConnection = 1;
		FCGX_Finish_r(&req);
		if (req.ipcFd >= 0) {
			close(req.ipcFd);
			req.ipcFd = -1;
		}
	}
	return NULL;
}

int
main(void)
{
	pthread_t tid[CEILING_MAX_THREADS];
	const char *s = getenv("CEILING_THREADS");
	long n = s != NULL ? strtol(s, NULL, 10) : 4;
	long i;

	if (n < 1 || n > CEILING_MAX_THREADS) {
		fprintf(stderr, "fcgi_ceiling: CEILING_THREADS must be 1-%d\n",
		    CEILING_MAX_THREADS);
		return 2;
	}
	answer_len = snprintf(answer, sizeof(answer),
	    "Status: 200 OK\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "\r\n%s", sizeof(body) - 1, body);
	if (FCGX_Init() != 0 || FCGX_IsCGI()) {
		fprintf(stderr, "fcgi_ceiling: fd 0 is not a FastCGI socket\n");
		return 1;
	}
	/* libfcgi's own SIGTERM handler only stops after the next request:
	 * die at once instead, as lighttpd and bench/run expect. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	for (i = 0; i < n; i++)
		if (pthread_create(&tid[i], NULL, ceiling_thread, NULL) != 0) {
			fprintf(stderr, "fcgi_ceiling: cannot start threads\n");
			return 1;
		}
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	return 0;
}
