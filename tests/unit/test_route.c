/* Unit tests: route_handle() with requests built here and the iris model
 * (models/iris.json under $SRCDIR): status, headers and JSON bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "audit.h"
#include "model.h"
#include "request.h"
#include "route.h"

#define MAX_BODY (1024 * 1024)

#define IRIS_SETOSA "{\"sepal_length\": 5.1, \"sepal_width\": 3.5, " \
	"\"petal_length\": 1.4, \"petal_width\": 0.2}"
#define SETOSA_PREFIX "{\"prediction\":0,\"label\":\"setosa\"," \
	"\"confidence\":"
#define IRIS_VIRGINICA_FORM "sepal_length=6.7&sepal_width=3.0&" \
	"petal_length=5.2&petal_width=2.3"

struct fixture {
	const struct model	*model;		/* the iris model, in models */
	struct registry_holder	 models;
	struct registry		*full;		/* kept while swapped out */
	struct route_env	 env;
	struct route_scratch	 scratch;
	struct response		 res;
	cJSON			*body;	/* the last response body, parsed */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *srcdir = getenv("SRCDIR");
	struct registry_source src;
	struct registry *r;
	const char *files[1];
	char path[4096], err[512];

	if (f == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/models/iris.json",
	    srcdir != NULL ? srcdir : ".");
	files[0] = path;
	memset(&src, 0, sizeof(src));
	src.files = files;
	src.n_files = 1;
	if ((r = registry_build(&src, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		free(f);
		return -1;
	}
	f->model = r->dflt;
	registry_holder_init(&f->models, r);
	f->env.models = &f->models;
	f->env.audit = NULL;
	f->env.max_body = MAX_BODY;
	route_scratch_init(&f->scratch);
	response_init(&f->res);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	cJSON_Delete(f->body);
	response_free(&f->res);
	route_scratch_free(&f->scratch);
	registry_holder_free(&f->models);
	free(f);
	return 0;
}

/* Swaps in a registry with no model at all, as if nothing had loaded. */
static void
no_model(struct fixture *f)
{
	struct registry *empty = calloc(1, sizeof(*empty));

	assert_non_null(empty);
	atomic_init(&empty->refs, 1);
	f->full = registry_acquire(&f->models);
	registry_holder_swap(&f->models, empty);
}

/* Puts the iris registry back. */
static void
restore_model(struct fixture *f)
{
	registry_holder_swap(&f->models, f->full);
	f->full = NULL;
}

/* Sends req through route_handle(); the response is in f->res and its
 * body, parsed, in f->body (always JSON). */
static void
send_request(struct fixture *f, const struct request *req)
{
	response_reset(&f->res);
	cJSON_Delete(f->body);
	route_handle(&f->env, req, &f->res, &f->scratch);
	f->body = cJSON_Parse(f->res.body.data != NULL ? f->res.body.data :
	    "");
	if (f->body == NULL)
		print_error("body is not JSON: %s\n", f->res.body.data);
	assert_non_null(f->body);
	assert_string_equal(f->res.content_type, "application/json");
	assert_true(f->res.request_id[0] != '\0');
}

/* The same for a request made of these parts. */
static void
send_req(struct fixture *f, const char *method, const char *path,
    const char *ctype, const char *rid, const char *body)
{
	struct request req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	req.content_type = ctype;
	req.request_id = rid;
	req.body = body != NULL ? body : "";
	req.body_len = body != NULL ? strlen(body) : 0;
	req.start_ns = request_now_ns();
	send_request(f, &req);
}

static void
post_json(struct fixture *f, const char *ctype, const char *body)
{
	send_req(f, "POST", "/predict", ctype, NULL, body);
}

static const char *
str_member(const cJSON *j, const char *key)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, key);

	assert_true(cJSON_IsString(m));
	return m->valuestring;
}

static void
assert_detail(const struct fixture *f, int status, const char *detail)
{
	assert_int_equal(f->res.status, status);
	assert_int_equal(cJSON_GetArraySize(f->body), 1);
	assert_string_equal(str_member(f->body, "detail"), detail);
}

static int
is_generated_id(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return i == 32;
}

/* ---- /predict ------------------------------------------------------------- */

static void
assert_prediction(const struct fixture *f, int cls, const char *label,
    const double *row)
{
	const cJSON *probs, *c;
	struct prediction out;
	double scratch[64], *p, sum = 0;
	int k = 0;

	assert_int_equal(f->res.status, 200);
	assert_null(f->res.allow);
	assert_int_equal(cJSON_GetArraySize(f->body), 8);
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(f->body, "prediction")));
	assert_int_equal(cJSON_GetObjectItem(f->body, "prediction")->valueint,
	    cls);
	assert_string_equal(str_member(f->body, "label"), label);
	assert_string_equal(str_member(f->body, "model"), "iris");
	assert_string_equal(str_member(f->body, "version"), "1.0.0");
	assert_string_equal(str_member(f->body, "request_id"),
	    f->res.request_id);
	/* The same numbers as model_predict() on the row. */
	assert_true(model_scratch_size(f->model) <= 64);
	model_predict(f->model, row, scratch, &out);
	p = out.proba;
	assert_int_equal(out.class_index, (size_t)cls);
	probs = cJSON_GetObjectItem(f->body, "probabilities");
	assert_int_equal(cJSON_GetArraySize(probs), 3);
	cJSON_ArrayForEach(c, probs) {
		assert_string_equal(c->string, f->model->class_names[k]);
		assert_true(fabs(c->valuedouble - p[k]) <= 1e-15);
		sum += c->valuedouble;
		k++;
	}
	assert_true(fabs(sum - 1) <= 1e-12);
	assert_true(fabs(cJSON_GetObjectItem(f->body,
	    "confidence")->valuedouble - p[cls]) <= 1e-15);
}

static void
test_predict_json(void **state)
{
	struct fixture *f = *state;
	static const double row[4] = { 5.1, 3.5, 1.4, 0.2 };

	post_json(f, "application/json", IRIS_SETOSA);
	assert_prediction(f, 0, "setosa", row);
	assert_true(is_generated_id(f->res.request_id));
	/* The key order of the body is fixed. */
	assert_true(strncmp(f->res.body.data, SETOSA_PREFIX,
	    strlen(SETOSA_PREFIX)) == 0);
}

static void
test_predict_form(void **state)
{
	struct fixture *f = *state;
	static const double row[4] = { 6.7, 3.0, 5.2, 2.3 };

	post_json(f, "application/x-www-form-urlencoded", IRIS_VIRGINICA_FORM);
	assert_prediction(f, 2, "virginica", row);
	post_json(f, "application/x-www-form-urlencoded; charset=UTF-8",
	    IRIS_VIRGINICA_FORM);
	assert_prediction(f, 2, "virginica", row);
}

static void
test_predict_positional(void **state)
{
	struct fixture *f = *state;
	static const double row[4] = { 5.9, 3.0, 4.2, 1.5 };

	post_json(f, "application/json", "{\"features\": [5.9, 3.0, 4.2, 1.5]}");
	assert_prediction(f, 1, "versicolor", row);
}

static void
test_predict_422(void **state)
{
	struct fixture *f = *state;
	const cJSON *detail, *it;

	post_json(f, "application/json", "{\"sepal_length\": 0, "
	    "\"sepal_width\": \"3\", \"petal_length\": 8, \"colour\": 1}");
	assert_int_equal(f->res.status, 422);
	detail = cJSON_GetObjectItem(f->body, "detail");
	assert_int_equal(cJSON_GetArraySize(detail), 5);
	it = cJSON_GetArrayItem(detail, 0);
	assert_string_equal(str_member(it, "type"), "greater_than");
	it = cJSON_GetArrayItem(detail, 1);
	assert_string_equal(str_member(it, "type"), "float_type");
	it = cJSON_GetArrayItem(detail, 2);
	assert_string_equal(str_member(it, "type"), "less_than_equal");
	it = cJSON_GetArrayItem(detail, 3);
	assert_string_equal(str_member(it, "type"), "extra_forbidden");
	it = cJSON_GetArrayItem(detail, 4);
	assert_string_equal(str_member(it, "type"), "missing");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(it, "loc"),
	    1)->valuestring, "petal_width");

	/* Empty body, bad JSON, bad form. */
	post_json(f, "application/json", "");
	assert_int_equal(f->res.status, 422);
	assert_string_equal(str_member(cJSON_GetArrayItem(cJSON_GetObjectItem(
	    f->body, "detail"), 0), "type"), "missing");
	post_json(f, "application/json", "{\"sepal_length\": }");
	assert_int_equal(f->res.status, 422);
	assert_string_equal(str_member(cJSON_GetArrayItem(cJSON_GetObjectItem(
	    f->body, "detail"), 0), "type"), "json_invalid");
	post_json(f, "application/x-www-form-urlencoded", "a=%zz");
	assert_int_equal(f->res.status, 422);
	assert_string_equal(str_member(cJSON_GetArrayItem(cJSON_GetObjectItem(
	    f->body, "detail"), 0), "type"), "form_invalid");

	/* The scratch is reused: a good request after bad ones is clean. */
	post_json(f, "application/json", IRIS_SETOSA);
	assert_int_equal(f->res.status, 200);
	assert_int_equal(cJSON_GetArraySize(f->body), 8);
}

static void
test_413(void **state)
{
	struct fixture *f = *state;
	struct request req;

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/predict";
	req.content_type = "application/json";
	req.body = "{\"sepal_len";	/* what was read before the limit */
	req.body_len = strlen(req.body);
	req.body_too_large = 1;
	send_request(f, &req);
	assert_detail(f, 413, "Request body is larger than the limit of "
	    "1048576 bytes");
}

/* A body the front stopped waiting for: 408, on a body route and on a
 * route that reads none, with the front's partial body ignored. */
static void
test_408(void **state)
{
	static const char *const paths[][2] = {
		{ "POST", "/predict" }, { "GET", "/health" },
		{ "POST", "/models/iris/predict" }
	};
	struct fixture *f = *state;
	struct request req;
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		memset(&req, 0, sizeof(req));
		req.method = paths[i][0];
		req.path = paths[i][1];
		req.content_type = "application/json";
		req.body = "";
		req.body_len = 0;
		req.body_timed_out = 1;
		send_request(f, &req);
		assert_detail(f, 408, "The request body stopped arriving for "
		    "longer than the I/O timeout");
		req.body_timed_out = 2;		/* past --body-timeout */
		send_request(f, &req);
		assert_detail(f, 408, "The request body took longer than the "
		    "body timeout to arrive");
	}
	assert_string_equal(response_reason(408), "Request Timeout");
}

static void
test_415(void **state)
{
	struct fixture *f = *state;
	static const char *const bad_type[] = { "text/plain",
	    "text/plain; charset=utf-8", "application/jsonx",
	    "multipart/form-data; boundary=x",
	    "json", "application/", "*/*" };
	static const char *const bad_charset[] = {
	    "application/json; charset=latin-1",
	    "application/json;charset=ISO-8859-1",
	    "application/json; charset=\"utf-16\"",
	    "application/x-www-form-urlencoded; charset=latin1",
	    "application/json; charset=utf-8; charset=latin-1" };
	size_t i;

	for (i = 0; i < sizeof(bad_type) / sizeof(bad_type[0]); i++) {
		post_json(f, bad_type[i], IRIS_SETOSA);
		assert_detail(f, 415, "Unsupported media type: send "
		    "application/json or application/x-www-form-urlencoded");
	}
	for (i = 0; i < sizeof(bad_charset) / sizeof(bad_charset[0]); i++) {
		post_json(f, bad_charset[i], IRIS_SETOSA);
		assert_detail(f, 415, "Unsupported charset: send UTF-8");
	}
}

static void
test_content_type_accepted(void **state)
{
	struct fixture *f = *state;
	static const double row[4] = { 5.1, 3.5, 1.4, 0.2 };
	static const char *const ok[] = { "application/json",
	    "application/json; charset=utf-8", "application/json;charset=UTF-8",
	    "application/json; charset=\"utf-8\"", "Application/JSON",
	    " application/json ; charset=utf8", "application/json; foo=bar",
	    "" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		post_json(f, ok[i], IRIS_SETOSA);
		if (f->res.status != 200)
			print_error("content type \"%s\": %d\n", ok[i],
			    f->res.status);
		assert_prediction(f, 0, "setosa", row);
	}
	/* No Content-Type at all: the body is read as JSON. */
	post_json(f, NULL, IRIS_SETOSA);
	assert_prediction(f, 0, "setosa", row);
	post_json(f, NULL, IRIS_VIRGINICA_FORM);
	assert_int_equal(f->res.status, 422);
}

static void
test_predict_no_model_503(void **state)
{
	struct fixture *f = *state;

	no_model(f);
	post_json(f, "application/json", IRIS_SETOSA);
	restore_model(f);
	assert_detail(f, 503, "No model is loaded");
}

/* ---- routing ------------------------------------------------------------- */

static void
test_404(void **state)
{
	struct fixture *f = *state;
	static const char *const paths[] = { "/nope", "/", "", "/predict/",
	    "/Predict", "/health/x", "/predict?x=1", "//predict" };
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		send_req(f, "GET", paths[i], NULL, NULL, NULL);
		assert_detail(f, 404, "Not Found");
		assert_null(f->res.allow);
		send_req(f, "POST", paths[i], "application/json", NULL,
		    IRIS_SETOSA);
		assert_detail(f, 404, "Not Found");
	}
}

static void
test_405(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *method, *path, *allow;
	} cases[] = {
		{ "GET", "/predict", "POST" },
		{ "HEAD", "/predict", "POST" },
		{ "PUT", "/predict", "POST" },
		{ "post", "/predict", "POST" },
		{ "POST", "/health", "GET, HEAD" },
		{ "DELETE", "/health", "GET, HEAD" },
		{ "POST", "/ready", "GET, HEAD" },
		{ "OPTIONS", "/ready", "GET, HEAD" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		send_req(f, cases[i].method, cases[i].path, "application/json",
		    NULL, IRIS_SETOSA);
		assert_detail(f, 405, "Method Not Allowed");
		assert_non_null(f->res.allow);
		assert_string_equal(f->res.allow, cases[i].allow);
	}
}

static void
test_health(void **state)
{
	struct fixture *f = *state;

	send_req(f, "GET", "/health", NULL, NULL, NULL);
	assert_int_equal(f->res.status, 200);
	assert_null(f->res.allow);
	assert_string_equal(f->res.body.data,
	    "{\"status\":\"healthy\",\"model_loaded\":true}");
	/* HEAD is answered like GET (the front drops the body). */
	send_req(f, "HEAD", "/health", NULL, NULL, NULL);
	assert_int_equal(f->res.status, 200);
	assert_null(f->res.allow);
	no_model(f);
	send_req(f, "GET", "/health", NULL, NULL, NULL);
	restore_model(f);
	assert_int_equal(f->res.status, 200);
	assert_string_equal(f->res.body.data,
	    "{\"status\":\"healthy\",\"model_loaded\":false}");
}

static void
test_ready(void **state)
{
	struct fixture *f = *state;

	send_req(f, "GET", "/ready", NULL, NULL, NULL);
	assert_int_equal(f->res.status, 200);
	assert_string_equal(f->res.body.data, "{\"ready\":true}");
	send_req(f, "HEAD", "/ready", NULL, NULL, NULL);
	assert_int_equal(f->res.status, 200);
	no_model(f);
	send_req(f, "GET", "/ready", NULL, NULL, NULL);
	restore_model(f);
	assert_int_equal(f->res.status, 503);
	assert_string_equal(f->res.body.data,
	    "{\"ready\":false,\"error\":\"no model loaded\"}");
}

/* ---- X-Request-Id --------------------------------------------------------- */

static void
test_request_id(void **state)
{
	struct fixture *f = *state;
	char id128[129], id129[130], id200[201], first[REQUEST_ID_MAX + 1];
	static const char *const bad[] = { "has space", "a/b", "a\tb", "",
	    "caf\xC3\xA9", "x\"y", "id\n", "a,b" };
	size_t i;

	/* Honoured when well-formed, echoed in the body. */
	send_req(f, "POST", "/predict", "application/json", "abc-123_X.y",
	    IRIS_SETOSA);
	assert_int_equal(f->res.status, 200);
	assert_string_equal(f->res.request_id, "abc-123_X.y");
	assert_string_equal(str_member(f->body, "request_id"), "abc-123_X.y");
	memset(id128, 'a', 128);
	id128[128] = '\0';
	send_req(f, "GET", "/health", NULL, id128, NULL);
	assert_string_equal(f->res.request_id, id128);
	/* Also on errors. */
	send_req(f, "GET", "/nope", NULL, "err-1", NULL);
	assert_int_equal(f->res.status, 404);
	assert_string_equal(f->res.request_id, "err-1");

	/* Replaced when not: a fresh 32-hex-digit id each time. */
	memset(id129, 'b', 129);
	id129[129] = '\0';
	memset(id200, 'c', 200);
	id200[200] = '\0';
	send_req(f, "POST", "/predict", "application/json", id129,
	    IRIS_SETOSA);
	assert_true(is_generated_id(f->res.request_id));
	assert_string_equal(str_member(f->body, "request_id"),
	    f->res.request_id);
	send_req(f, "POST", "/predict", "application/json", id200,
	    IRIS_SETOSA);
	assert_true(is_generated_id(f->res.request_id));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		send_req(f, "GET", "/health", NULL, bad[i], NULL);
		assert_true(is_generated_id(f->res.request_id));
	}
	send_req(f, "GET", "/health", NULL, NULL, NULL);
	assert_true(is_generated_id(f->res.request_id));
	snprintf(first, sizeof(first), "%s", f->res.request_id);
	send_req(f, "GET", "/health", NULL, NULL, NULL);
	assert_true(is_generated_id(f->res.request_id));
	assert_string_not_equal(first, f->res.request_id);
}

/* ---- with the audit log ------------------------------------------------- */

static void
test_predict_audited(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/mlfcgi-route-XXXXXX", path[64], err[256], sql[128];
	sqlite3 *other, *db;
	sqlite3_stmt *st;
	struct audit *a;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit.db", dir);
	a = audit_open(path, 1, err, sizeof(err));
	assert_non_null(a);
	f->env.audit = a;
	/* Lock the database so the one-row queue stays full. */
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	send_req(f, "GET", "/ready", NULL, NULL, NULL);
	assert_int_equal(f->res.status, 200);
	send_req(f, "POST", "/predict", "application/json", "audit-1",
	    IRIS_SETOSA);
	assert_int_equal(f->res.status, 200);
	send_req(f, "GET", "/ready", NULL, NULL, NULL);
	assert_int_equal(f->res.status, 503);
	assert_string_equal(f->res.body.data,
	    "{\"ready\":false,\"error\":\"audit log: queue full\"}");
	/* A second prediction is answered even though its row is dropped. */
	send_req(f, "POST", "/predict", "application/json", "audit-2",
	    IRIS_SETOSA);
	assert_int_equal(f->res.status, 200);
	/* A rejected request is not logged. */
	send_req(f, "POST", "/predict", "application/json", "audit-3", "{}");
	assert_int_equal(f->res.status, 422);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(other);
	f->env.audit = NULL;
	audit_close(a);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT request_id, model, "
	    "version, input, output, cached, latency_us >= 0 FROM predictions",
	    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal(sqlite3_column_text(st, 0), "audit-1");
	assert_string_equal(sqlite3_column_text(st, 1), "iris");
	assert_string_equal(sqlite3_column_text(st, 2), "1.0.0");
	assert_string_equal(sqlite3_column_text(st, 3), "{\"sepal_length\":5.1,"
	    "\"sepal_width\":3.5,\"petal_length\":1.4,\"petal_width\":0.2}");
	assert_true(strncmp((const char *)sqlite3_column_text(st, 4),
	    SETOSA_PREFIX, strlen(SETOSA_PREFIX)) == 0);
	assert_int_equal(sqlite3_column_int(st, 5), 0);
	assert_int_equal(sqlite3_column_int(st, 6), 1);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	snprintf(sql, sizeof(sql), "%s-wal", path);
	unlink(sql);
	snprintf(sql, sizeof(sql), "%s-shm", path);
	unlink(sql);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_predict_json),
		cmocka_unit_test(test_predict_form),
		cmocka_unit_test(test_predict_positional),
		cmocka_unit_test(test_predict_422),
		cmocka_unit_test(test_413),
		cmocka_unit_test(test_408),
		cmocka_unit_test(test_415),
		cmocka_unit_test(test_content_type_accepted),
		cmocka_unit_test(test_predict_no_model_503),
		cmocka_unit_test(test_404),
		cmocka_unit_test(test_405),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_ready),
		cmocka_unit_test(test_request_id),
		cmocka_unit_test(test_predict_audited),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
