/* fuzz_model: libFuzzer harness for model files: model_load_text() on
 * arbitrary bytes. A file that loads must then behave: its test input
 * predicts, renders as JSON, and, rendered as named fields the way the
 * audit log writes it, passes the model's own validation again. A file
 * that does not load must say why, naming the file. */
#include "fuzz_common.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ORIGIN "fuzz.json"

/* Returns 1 if every feature is a plain number or integer, whose rendered
 * row reads back as the same row. */
static int
fuzz_numeric_schema(const struct model *m)
{
	size_t i;

	for (i = 0; i < m->schema.n; i++)
		if (m->schema.features[i].type != FEATURE_NUMBER &&
		    m->schema.features[i].type != FEATURE_INTEGER)
			return 0;
	return 1;
}

/* Aborts unless the named-field JSON object in b validates against m
 * to the very same row. */
static void
fuzz_revalidate(const struct model *m, const struct buf *b)
{
	double *row = calloc(m->schema.n, sizeof(double));
	struct input in;
	struct verrs v;
	size_t i;

	if (row == NULL)
		abort();
	input_init(&in);
	verrs_init(&v);
	if (decode_json(b->data, b->len, &in, &v) < 0 ||
	    schema_validate(&m->schema, &in, NULL, row, &v) < 0) {
		verrs_render(&v, &v.out);
		fprintf(stderr, "%s\n", v.out.data);
		fuzz_die("the model's own test input fails its validation",
		    b->data);
	}
	for (i = 0; i < m->schema.n; i++)
		if (!(row[i] == m->test_input[i] ||
		    (isnan(row[i]) && isnan(m->test_input[i]))))
			fuzz_die("the test input reads back as another row",
			    b->data);
	input_free(&in);
	verrs_free(&v);
	free(row);
}

static void
fuzz_exercise(const struct model *m)
{
	double *scratch = calloc(model_scratch_size(m) + 1, sizeof(double));
	struct prediction out;
	struct buf b = BUF_INIT;

	if (scratch == NULL)
		abort();
	if (m->schema.n < 1 || m->test_input == NULL)
		fuzz_die("a loaded model without features or test input", NULL);
	fuzz_check_row(m, m->test_input);
	model_predict(m, m->test_input, scratch, &out);
	if (model_output_finite(m, &out) < 0)
		fuzz_die("loaded model's test input gives a non-finite output",
		    m->name);
	buf_putc(&b, '{');
	model_render(m, &out, &b);
	buf_putc(&b, '}');
	cJSON_Delete(fuzz_check_json(b.data, b.len, "prediction JSON"));
	free(scratch);

	buf_reset(&b);
	model_render_row(m, m->test_input, &b);
	cJSON_Delete(fuzz_check_json(b.data, b.len, "test input JSON"));
	if (fuzz_numeric_schema(m))
		fuzz_revalidate(m, &b);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct model_err err;
	struct model *m;

	memset(err.msg, 'x', sizeof(err.msg));
	/* Exactly size bytes, not NUL-terminated (see model.h). */
	m = model_load_text((const char *)data, size, FUZZ_ORIGIN, &err);
	if (m == NULL) {
		if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL ||
		    strncmp(err.msg, FUZZ_ORIGIN ": ",
		    sizeof(FUZZ_ORIGIN ": ") - 1) != 0 ||
		    strlen(err.msg) <= sizeof(FUZZ_ORIGIN ": "))
			fuzz_die("a refused model without a message naming the "
			    "file", err.msg);
		return 0;
	}
	fuzz_exercise(m);
	model_free(m);
	return 0;
}
