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
	if (decoded < 0)
		fuzz_check_validation(fuzz_models[0], -1, NULL, &v);
	for (i = 0; decoded == 0 && i < FUZZ_NMODELS; i++) {
		const struct model *m = fuzz_models[i];
		double *row = calloc(m->schema.n, sizeof(double));
		int rc;

		if (row == NULL)
			abort();
		verrs_reset(&v);
		rc = schema_validate(&m->schema, &in, NULL, row, &v);
		fuzz_check_validation(m, rc, row, &v);
		free(row);
	}
	input_free(&in);
	verrs_free(&v);

	for (i = 0; i < FUZZ_NMODELS; i++)
		fuzz_route_predict(fuzz_model_paths[i], i == 0 ?
		    "application/x-www-form-urlencoded" :
		    "application/x-www-form-urlencoded; charset=UTF-8",
		    data, size);
	fuzz_route_any("/invocations", "text/csv", data, size);
	return 0;
}
