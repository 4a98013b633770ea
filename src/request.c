/* request: response values, HTTP reason phrases and request ids. */
#include "request.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void
response_init(struct response *res)
{
	buf_init(&res->body);
	response_reset(res);
}

void
response_reset(struct response *res)
{
	res->status = 200;
	res->content_type = "application/json";
	res->allow = NULL;
	res->x_cache = NULL;
	res->request_id[0] = '\0';
	buf_reset(&res->body);
}

void
response_free(struct response *res)
{
	buf_free(&res->body);
}

void
response_error(struct response *res, int status, const char *detail)
{
	res->status = status;
	res->content_type = "application/json";
	buf_reset(&res->body);
	buf_puts(&res->body, "{\"detail\":");
	buf_json_str(&res->body, detail);
	buf_putc(&res->body, '}');
}

const char *
response_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default:  return "Unknown";
	}
}

uint64_t
request_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t
request_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
request_id_valid_copy(const char *id, char out[REQUEST_ID_MAX + 1])
{
	size_t n;

	if (id == NULL)
		return 0;
	for (n = 0; id[n] != '\0'; n++) {
		char c = id[n];

		if (n >= REQUEST_ID_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	if (n == 0)
		return 0;
	memcpy(out, id, n + 1);
	return 1;
}

/* Per-thread xorshift128+ state, seeded once from getrandom(), so that a
 * request id costs no system call. Ids need to be unique, not secret. */
static _Thread_local uint64_t rid_state[2];

static uint64_t
rid_next(void)
{
	uint64_t s1 = rid_state[0];
	const uint64_t s0 = rid_state[1];

	rid_state[0] = s0;
	s1 ^= s1 << 23;
	rid_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return rid_state[1] + s0;
}

void
request_id_generate(char out[REQUEST_ID_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t r[2];
	size_t i;

	if (rid_state[0] == 0 && rid_state[1] == 0) {
		if (getrandom(rid_state, sizeof(rid_state), 0) !=
		    (ssize_t)sizeof(rid_state)) {
			rid_state[0] = request_now_ns();
			rid_state[1] = (uint64_t)(uintptr_t)&rid_state;
		}
		rid_state[0] |= 1;
	}
	r[0] = rid_next();
	r[1] = rid_next();
	for (i = 0; i < 32; i++)
		out[i] = hex[(r[i / 16] >> (4 * (i % 16))) & 15];
	out[32] = '\0';
}
