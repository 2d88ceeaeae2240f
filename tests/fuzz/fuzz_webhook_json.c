/* libFuzzer target: JSON webhook bodies (json dialect) and what the listener does with them:
 * webhook_json_parse, then the json inbound and delivery-report checks. */
#include <jansson.h>

#include "fuzz_webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct webhook_params p = { 0 };
	char err[256];
	json_t *root;
	size_t i, j;

	if (webhook_json_parse((const char *)data, size, &p, err, sizeof(err)) == -1) {
		FUZZ_CHECK(fuzz_reason_ok(err, sizeof(err)));
		webhook_params_free(&p);
		return 0;
	}
	/* One pair per member of an object without duplicates; strings and integers have a value. */
	root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_CHECK(json_is_object(root) && json_object_size(root) == p.n);
	for (i = 0; i < p.n; i++) {
		json_t *v = json_object_get(root, p.v[i].name);

		FUZZ_CHECK(v != NULL);
		FUZZ_CHECK((p.v[i].value != NULL) == (json_is_string(v) || json_is_integer(v)));
		FUZZ_CHECK(!json_is_string(v) || strcmp(p.v[i].value, json_string_value(v)) == 0);
		for (j = 0; j < i && p.n <= 64; j++)
			FUZZ_CHECK(strcmp(p.v[i].name, p.v[j].name) != 0);
	}
	json_decref(root);
	fuzz_check_request(CONF_DIALECT_JSON, &p);
	webhook_params_free(&p);
	return 0;
}
