/* main: options and environment, start mode (spawned on fd 0, --listen,
 * CGI), request threads, signals and orderly shutdown. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "input.h"
#include "model.h"
#include "registry.h"
#include "metrics.h"
#include "offline.h"
#include "route.h"
#include "serve.h"

#define MODELS_MAX 256

enum opt_type {
	OPT_STRING,
	OPT_LIST,	/* a string that may be given more than once */
	OPT_SIZE,	/* a whole number within [min, max] */
	OPT_FLAG
};

struct config {
	const char	*models[MODELS_MAX];
	size_t		 n_models;
	const char	*model_dir;
	const char	*default_model;
	size_t		 reload_check;
	const char	*audit_db;
	const char	*listen;
	const char	*predict;
	size_t		 threads;
	size_t		 max_body;
	size_t		 io_timeout;
	size_t		 body_timeout;
	size_t		 audit_queue;
	size_t		 audit_queue_mb;
	size_t		 audit_flush_ms;
	size_t		 max_batch;
	size_t		 cache_size;
	size_t		 audit_sync;
	size_t		 no_simd;
	size_t		 retain_days;
	const char	*user;
	const char	*socket_mode;
	size_t		 check;
	size_t		 help;
	size_t		 version;
};

/* Every option, with its environment variable, type, bounds and default.
 * Checked once, here, at start-up. */
static const struct opt {
	const char	*name;
	const char	*env;
	enum opt_type	 type;
	size_t		 offset;
	size_t		 min, max;
	const char	*dflt;
	const char	*help;
} opts[] = {
	{ "model", "MLFCGI_MODEL", OPT_LIST, offsetof(struct config, models),
	  0, 0, NULL, "a model file to serve; may be repeated" },
	{ "model-dir", "MLFCGI_MODEL_DIR", OPT_STRING,
	  offsetof(struct config, model_dir), 0, 0, NULL,
	  "serve DIR/NAME.json and DIR/NAME/VERSION/model.json" },
	{ "default-model", "MLFCGI_DEFAULT_MODEL", OPT_STRING,
	  offsetof(struct config, default_model), 0, 0, NULL,
	  "NAME or NAME:VERSION that /predict serves" },
	{ "reload-check", "MLFCGI_RELOAD_CHECK", OPT_SIZE,
	  offsetof(struct config, reload_check), 0, 86400, "0",
	  "every N seconds, reload the models if a file changed (0: off)" },
	{ "audit-db", "MLFCGI_AUDIT_DB", OPT_STRING,
	  offsetof(struct config, audit_db), 0, 0, NULL,
	  "SQLite audit log; off when not given" },
	{ "threads", "MLFCGI_THREADS", OPT_SIZE,
	  offsetof(struct config, threads), 1, 1024, "4",
	  "request threads per process" },
	{ "max-body", "MLFCGI_MAX_BODY", OPT_SIZE,
	  offsetof(struct config, max_body), 1, 1UL << 30, "1048576",
	  "largest request body in bytes (413 above it)" },
	{ "io-timeout", "MLFCGI_IO_TIMEOUT", OPT_SIZE,
	  offsetof(struct config, io_timeout), 1, 3600, "10",
	  "seconds a read from or a write to the web server may wait "
	  "(408 for a body that stops arriving)" },
	{ "body-timeout", "MLFCGI_BODY_TIMEOUT", OPT_SIZE,
	  offsetof(struct config, body_timeout), 1, 86400, "60",
	  "seconds a whole request body may take to arrive, however it "
	  "trickles (408 after)" },
	{ "max-batch", "MLFCGI_MAX_BATCH", OPT_SIZE,
	  offsetof(struct config, max_batch), 1, 1000000, "1000",
	  "most instances in one {\"instances\": [...]} request" },
	{ "audit-sync", "MLFCGI_AUDIT_SYNC", OPT_FLAG,
	  offsetof(struct config, audit_sync), 0, 0, NULL,
	  "durable: answer only after the audit row is committed" },
	{ "audit-retain-days", "MLFCGI_AUDIT_RETAIN_DAYS", OPT_SIZE,
	  offsetof(struct config, retain_days), 0, 36500, "0",
	  "delete audit rows older than N days (0: keep all)" },
	{ "user", "MLFCGI_USER", OPT_STRING, offsetof(struct config, user), 0,
	  0, NULL, "started as root: run as this user after opening sockets" },
	{ "socket-mode", "MLFCGI_SOCKET_MODE", OPT_STRING,
	  offsetof(struct config, socket_mode), 0, 0, NULL,
	  "permissions of a --listen unix socket, octal (e.g. 0660)" },
	{ "cache-size", "MLFCGI_CACHE_SIZE", OPT_SIZE,
	  offsetof(struct config, cache_size), 0, 10000000, "0",
	  "predictions cached per model, LRU (0: no cache)" },
	{ "listen", "MLFCGI_LISTEN", OPT_STRING,
	  offsetof(struct config, listen), 0, 0, NULL,
	  "HOST:PORT or socket path; default: fd 0 from the web server" },
	{ "audit-queue", "MLFCGI_AUDIT_QUEUE", OPT_SIZE,
	  offsetof(struct config, audit_queue), 1, 100000000, "65536",
	  "audit rows held in memory before new ones are dropped" },
	{ "audit-queue-mb", "MLFCGI_AUDIT_QUEUE_MB", OPT_SIZE,
	  offsetof(struct config, audit_queue_mb), 1, 1048576, "256",
	  "... and the most MB they may hold (one request's rows always fit "
	  "an empty queue)" },
	{ "audit-flush-ms", "MLFCGI_AUDIT_FLUSH_MS", OPT_SIZE,
	  offsetof(struct config, audit_flush_ms), 1, 60000, "100",
	  "bound on how long audit rows wait uncommitted while the writer "
	  "keeps up" },
	{ "no-simd", "MLFCGI_NO_SIMD", OPT_FLAG,
	  offsetof(struct config, no_simd), 0, 0, NULL,
	  "predict without the CPU's vector instructions (the same answers, "
	  "slower; to compare)" },
	{ "predict", NULL, OPT_STRING, offsetof(struct config, predict), 0, 0,
	  NULL, "score JSON lines from FILE (- for stdin) to stdout, exit" },
	{ "check", NULL, OPT_FLAG, offsetof(struct config, check), 0, 0, NULL,
	  "load the configuration and model, print a summary, exit" },
	{ "help", NULL, OPT_FLAG, offsetof(struct config, help), 0, 0, NULL,
	  "print this help and exit" },
	{ "version", NULL, OPT_FLAG, offsetof(struct config, version), 0, 0,
	  NULL, "print the version and exit" },
	{ NULL, NULL, 0, 0, 0, 0, NULL, NULL }
};

static void
usage(FILE *f)
{
	const struct opt *o;

	fprintf(f, "usage: mlfcgi --model FILE [options]\n"
	    "Serves a machine-learning model over FastCGI (or CGI).\n\n");
	for (o = opts; o->name != NULL; o++) {
		char lhs[64];

		snprintf(lhs, sizeof(lhs), "--%s%s", o->name,
		    o->type == OPT_FLAG ? "" : o->type == OPT_SIZE ? " N" :
		    " VALUE");
		fprintf(f, "  %-22s %s", lhs, o->help);
		if (o->dflt != NULL)
			fprintf(f, " [%s]", o->dflt);
		if (o->env != NULL)
			fprintf(f, " (%s)", o->env);
		fputc('\n', f);
	}
	fprintf(f, "\nSee mlfcgi(8).\n");
}

/* Stores value into the option's field. Returns 0, or -1 after printing
 * what is wrong. */
static int
opt_set(struct config *cfg, const struct opt *o, const char *value,
    const char *from)
{
	char *field = (char *)cfg + o->offset;
	unsigned long long n = 0;
	const char *p;

	if (o->type == OPT_STRING || o->type == OPT_LIST) {
		if (*value == '\0') {
			fprintf(stderr, "mlfcgi: %s: empty value\n", from);
			return -1;
		}
		if (o->type == OPT_STRING) {
			*(const char **)field = value;
			return 0;
		}
		if (cfg->n_models == MODELS_MAX) {
			fprintf(stderr, "mlfcgi: %s: at most %d\n", from,
			    MODELS_MAX);
			return -1;
		}
		cfg->models[cfg->n_models++] = value;
		return 0;
	}
	if (o->type == OPT_FLAG) {
		/* From the environment: 1/yes/true or 0/no/false. */
		if (strcmp(value, "1") == 0 || strcmp(value, "yes") == 0 ||
		    strcmp(value, "true") == 0)
			*(size_t *)field = 1;
		else if (strcmp(value, "0") == 0 || strcmp(value, "no") == 0 ||
		    strcmp(value, "false") == 0)
			*(size_t *)field = 0;
		else {
			fprintf(stderr, "mlfcgi: %s: expected 1 or 0, not "
			    "\"%.32s\"\n", from, value);
			return -1;
		}
		return 0;
	}
	for (p = value; *p >= '0' && *p <= '9' && n <= o->max; p++)
		n = n * 10 + (unsigned long long)(*p - '0');
	if (p == value || *p != '\0' || n < o->min || n > o->max) {
		fprintf(stderr, "mlfcgi: %s: expected a whole number from %zu "
		    "to %zu, not \"%.32s\"\n", from, o->min, o->max, value);
		return -1;
	}
	*(size_t *)field = (size_t)n;
	return 0;
}

/* Defaults, then the environment, then the command line. */
static int
config_load(struct config *cfg, int argc, char **argv)
{
	const struct opt *o;
	const char *v;
	char from[64];
	size_t env_models;
	int i;

	memset(cfg, 0, sizeof(*cfg));
	for (o = opts; o->name != NULL; o++)
		if (o->dflt != NULL && opt_set(cfg, o, o->dflt, o->name) < 0)
			return -1;
	for (o = opts; o->name != NULL; o++)
		if (o->env != NULL && (v = getenv(o->env)) != NULL &&
		    *v != '\0' && opt_set(cfg, o, v, o->env) < 0)
			return -1;
	env_models = cfg->n_models;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq;
		size_t len;

		if (strncmp(arg, "--", 2) != 0) {
			fprintf(stderr, "mlfcgi: unexpected argument \"%s\"\n",
			    arg);
			return -1;
		}
		arg += 2;
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		for (o = opts; o->name != NULL; o++)
			if (strlen(o->name) == len &&
			    strncmp(o->name, arg, len) == 0)
				break;
		if (o->name == NULL) {
			fprintf(stderr, "mlfcgi: unknown option \"%s\"\n",
			    argv[i]);
			return -1;
		}
		if (o->type == OPT_FLAG) {
			if (eq != NULL) {
				fprintf(stderr, "mlfcgi: --%s takes no value\n",
				    o->name);
				return -1;
			}
			v = "1";
		} else if (eq != NULL)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			fprintf(stderr, "mlfcgi: --%s needs a value\n",
			    o->name);
			return -1;
		}
		snprintf(from, sizeof(from), "--%s", o->name);
		/* --model on the command line replaces MLFCGI_MODEL. */
		if (o->type == OPT_LIST && env_models > 0) {
			cfg->n_models = 0;
			env_models = 0;
		}
		if (opt_set(cfg, o, v, from) < 0)
			return -1;
	}
	return 0;
}

/* Started as root with --user: become that user (and its groups). */
static int
drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL) {
		fprintf(stderr, "mlfcgi: --user %s: no such user\n", user);
		return -1;
	}
	if (getuid() != 0) {
		if (getuid() == pw->pw_uid)
			return 0;
		fprintf(stderr, "mlfcgi: --user %s: only root can change "
		    "user\n", user);
		return -1;
	}
	if (setgroups(0, NULL) < 0 || initgroups(user, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0 ||
	    setuid(0) == 0) {
		fprintf(stderr, "mlfcgi: --user %s: cannot drop privileges: "
		    "%s\n", user, strerror(errno));
		return -1;
	}
	return 0;
}

static void
print_summary(const struct config *cfg, const struct registry *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct model *m = r->entries[i].model;

		printf("model: %s %s (%s)%s\n", m->name, m->version,
		    r->entries[i].path, m == r->dflt ? ", default" : "");
		printf("  task: %s, %zu features, %zu classes, estimator %s\n",
		    m->task == MODEL_CLASSIFICATION ? "classification" :
		    "regression", m->schema.n, m->n_classes, m->est_ops->type);
	}
	printf("audit log: %s\n", cfg->audit_db ? cfg->audit_db : "off");
	printf("threads: %zu, max body: %zu bytes, max batch: %zu, "
	    "audit queue: %zu rows, %zu MB\n", cfg->threads, cfg->max_body,
	    cfg->max_batch, cfg->audit_queue, cfg->audit_queue_mb);
	printf("listen: %s\n", cfg->listen ? cfg->listen :
	    "fd 0 (spawned by the web server), or CGI");
}

/* Builds a new snapshot and swaps it in; on failure the old one stays. */
static void
reload_models(const struct registry_source *src, struct registry_holder *h)
{
	struct registry *old = registry_acquire(h), *r;
	char err[512];

	r = registry_build(src, old, err, sizeof(err));
	registry_release(old);
	if (r == NULL) {
		fprintf(stderr, "mlfcgi[%ld]: reload failed, keeping the "
		    "loaded models: %s\n", (long)getpid(), err);
		return;
	}
	registry_holder_swap(h, r);
	fprintf(stderr, "mlfcgi[%ld]: models reloaded (generation %lu, %zu "
	    "files)\n", (long)getpid(), r->generation, r->n);
}

/* Waits for SIGTERM or SIGINT, reloading the models on SIGHUP and, with
 * --reload-check, whenever a model file changes. */
static void
wait_for_stop(const struct config *cfg, const struct registry_source *src,
    struct registry_holder *h)
{
	struct timespec tick = { (time_t)cfg->reload_check, 0 };
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		sig = cfg->reload_check ? sigtimedwait(&set, NULL, &tick) :
		    sigwaitinfo(&set, NULL);
		if (sig == SIGTERM || sig == SIGINT)
			return;
		if (sig == SIGHUP)
			reload_models(src, h);
		else if (sig < 0 && errno == EAGAIN) {
			struct registry *r = registry_acquire(h);
			int changed = registry_changed(r, src);

			registry_release(r);
			if (changed)
				reload_models(src, h);
		}
	}
}

/* Runs the request threads until SIGTERM or SIGINT. */
static int
run_fastcgi(const struct config *cfg, const struct route_env *env,
    const struct registry_source *src, int listen_fd)
{
	struct serve_pool pool;
	pthread_t *threads;
	int wake[2], flags;
	size_t i, started = 0;

	if (pipe(wake) < 0) {
		perror("mlfcgi: pipe");
		return 1;
	}
	flags = fcntl(listen_fd, F_GETFL);
	if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		perror("mlfcgi: listening socket");
		return 1;
	}
	memset(&pool, 0, sizeof(pool));
	pool.env = env;
	pool.listen_fd = listen_fd;
	pool.wake_fd = wake[0];
	pool.max_body = cfg->max_body;
	pool.io_timeout = (unsigned)cfg->io_timeout;
	pool.body_timeout = (unsigned)cfg->body_timeout;
	/* TCP connections inherit these; serve_thread() sets unix ones. */
	if (serve_timeouts(listen_fd, pool.io_timeout) != 0)
		perror("mlfcgi: warning: --io-timeout on the listening socket");
	atomic_init(&pool.stopping, 0);
	pthread_mutex_init(&pool.accept_lock, NULL);

	threads = calloc(cfg->threads, sizeof(*threads));
	for (i = 0; threads != NULL && i < cfg->threads; i++) {
		if (pthread_create(&threads[i], NULL, serve_thread, &pool) != 0)
			break;
		started++;
	}
	if (started == 0) {
		fprintf(stderr, "mlfcgi: cannot start request threads\n");
		return 1;
	}

	wait_for_stop(cfg, src, env->models);

	/* Stop accepting; requests in flight finish, then threads return. */
	atomic_store(&pool.stopping, 1);
	if (write(wake[1], "x", 1) < 0)
		perror("mlfcgi: wake");
	for (i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	close(wake[0]);
	close(wake[1]);
	pthread_mutex_destroy(&pool.accept_lock);
	return 0;
}

int
main(int argc, char **argv)
{
	struct registry_holder models;
	struct registry_source src;
	struct route_env env;
	struct registry *reg;
	struct config cfg;
	sigset_t block;
	char err[512];
	int listen_fd = 0, rc;

	/* Before any thread: request bodies parse into per-thread arenas. */
	input_json_hooks();
	if (config_load(&cfg, argc, argv) < 0) {
		fprintf(stderr, "Try 'mlfcgi --help'.\n");
		return 2;
	}
	if (cfg.help) {
		usage(stdout);
		return 0;
	}
	if (cfg.version) {
		printf("mlfcgi %s\n", PACKAGE_VERSION);
		return 0;
	}
	model_set_simd(!cfg.no_simd);
	if (cfg.n_models == 0 && cfg.model_dir == NULL) {
		fprintf(stderr, "mlfcgi: no model: give --model FILE (or "
		    "--model-dir DIR), or set MLFCGI_MODEL\n");
		return 2;
	}
	memset(&src, 0, sizeof(src));
	src.files = cfg.models;
	src.n_files = cfg.n_models;
	src.dir = cfg.model_dir;
	src.default_model = cfg.default_model;
	src.cache_size = cfg.cache_size;
	if ((reg = registry_build(&src, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mlfcgi: cannot load model: %s\n", err);
		return 1;
	}
	registry_holder_init(&models, reg);
	metrics_init();

	/* Every thread inherits this mask: SIGTERM, SIGINT and SIGHUP are
	 * taken by the main thread only, SIGPIPE never kills us. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, NULL);

	memset(&env, 0, sizeof(env));
	env.models = &models;
	env.max_body = cfg.max_body;
	env.max_batch = cfg.max_batch;
	env.audit_sync = cfg.audit_sync != 0;
	/* The socket first (it may need root), then drop privileges, then
	 * the audit log, so that its files belong to the serving user. */
	if (cfg.listen != NULL && !cfg.check && cfg.predict == NULL) {
		listen_fd = serve_listen(cfg.listen, cfg.socket_mode, err,
		    sizeof(err));
		if (listen_fd < 0) {
			fprintf(stderr, "mlfcgi: %s\n", err);
			registry_holder_free(&models);
			return 1;
		}
	}
	if (cfg.user != NULL && drop_privileges(cfg.user) < 0) {
		registry_holder_free(&models);
		return 1;
	}
	if (cfg.audit_db != NULL) {
		env.audit = audit_open(cfg.audit_db, cfg.audit_queue, err,
		    sizeof(err));
		if (env.audit == NULL) {
			fprintf(stderr, "mlfcgi: cannot open the audit log: "
			    "%s\n", err);
			registry_holder_free(&models);
			return 1;
		}
		if (cfg.audit_sync)
			audit_set_durable(env.audit);
		audit_set_flush_ms(env.audit, (long)cfg.audit_flush_ms);
		/* At most 1 TiB: clamped where size_t is 32 bits. */
		audit_set_queue_bytes(env.audit, cfg.audit_queue_mb >
		    SIZE_MAX >> 20 ? SIZE_MAX : cfg.audit_queue_mb << 20);
		audit_set_retention(env.audit, (unsigned)cfg.retain_days);
	} else if (cfg.audit_sync) {
		fprintf(stderr, "mlfcgi: --audit-sync needs --audit-db\n");
		registry_holder_free(&models);
		return 2;
	}
	if (cfg.check && env.audit != NULL &&
	    !audit_healthy(env.audit, err, sizeof(err))) {
		/* Served anyway (the writer retries), but not "ok". */
		fprintf(stderr, "mlfcgi: %s\n", err);
		rc = 1;
	} else if (cfg.check) {
		print_summary(&cfg, reg);
		printf("ok\n");
		rc = 0;
	} else if (cfg.predict != NULL) {
		FILE *in = strcmp(cfg.predict, "-") == 0 ? stdin :
		    fopen(cfg.predict, "r");
		long failed;

		if (in == NULL) {
			fprintf(stderr, "mlfcgi: %s: %s\n", cfg.predict,
			    strerror(errno));
			rc = 1;
			goto done;
		}
		failed = offline_score(&env, in, stdout);
		if (in != stdin)
			fclose(in);
		if (failed < 0)
			fprintf(stderr, "mlfcgi: cannot write the output\n");
		else if (failed > 0)
			fprintf(stderr, "mlfcgi: %ld lines failed\n", failed);
		rc = failed == 0 ? 0 : 1;
	} else if (cfg.listen != NULL) {
		rc = run_fastcgi(&cfg, &env, &src, listen_fd);
	} else if (serve_spawned())
		rc = run_fastcgi(&cfg, &env, &src, 0);
	else
		rc = serve_cgi(&env, cfg.max_body) == 0 ? 0 : 1;
done:
	audit_close(env.audit);
	registry_holder_free(&models);
	if (listen_fd > 0)
		serve_unlisten(cfg.listen, listen_fd);
	return rc;
}
