/* fuzz_json: libFuzzer harness for JSON request bodies: decode_json() and
 * schema_validate() against each fuzz model, then the whole POST /predict
 * path (single instances and {"instances": [...]} batches) through
 * route_handle(), and the same bytes to the other protocols' endpoints. */
#include "fuzz_common.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The other protocols' JSON endpoints (a 404, should one not exist). */
static const char *const fuzz_other_paths[] = {
	"/v2/models/iris/infer",		/* KServe v2 */
	"/invocations",				/* MLflow */
	"/v1/models/fuzz-mixed:predict",	/* TensorFlow Serving */
	NULL
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_setup();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in;
	struct verrs v;
	size_t i;
	int decoded;

	/* The decoder gets exactly size bytes, not NUL-terminated, so that
	 * AddressSanitizer sees any read past the end. */
	input_init(&in);
	verrs_init(&v);
	decoded = decode_json((const char *)data, size, &in, &v);
	/* README: a NUL byte anywhere is json_invalid. */
	if (memchr(data, '\0', size) != NULL && (decoded == 0 ||
	    v.first_type == NULL || strcmp(v.first_type, "json_invalid") != 0))
		fuzz_die("a body with a NUL byte is not json_invalid",
		    v.first_type);
	fuzz_validate_all(decoded, &in, &v);

	for (i = 0; i < FUZZ_NMODELS; i++)
		fuzz_route_predict(fuzz_model_paths[i], i == 0 ?
		    "application/json" : NULL, data, size);
	for (i = 0; fuzz_other_paths[i] != NULL; i++)
		fuzz_route_any(fuzz_other_paths[i], "application/json", data,
		    size);
	return 0;
}
