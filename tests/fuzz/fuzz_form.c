/* fuzz_form: libFuzzer harness for application/x-www-form-urlencoded
 * bodies: decode_form() and schema_validate() against each fuzz model,
 * then POST /predict through route_handle(); and the same bytes as a CSV
 * body to MLflow's /invocations. */
#include "fuzz_common.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

	input_init(&in);
	verrs_init(&v);
	decoded = decode_form((const char *)data, size, &in, &v);
	fuzz_validate_all(decoded, &in, &v);

	for (i = 0; i < FUZZ_NMODELS; i++)
		fuzz_route_predict(fuzz_model_paths[i], i == 0 ?
		    "application/x-www-form-urlencoded" :
		    "application/x-www-form-urlencoded; charset=UTF-8",
		    data, size);
	fuzz_route_any("/invocations", "text/csv", data, size);
	return 0;
}
