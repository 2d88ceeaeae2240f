/* libFuzzer target: the request targets Kannel calls (get-url of an sms-service, dlr-url), as the
 * listener takes them: the query string after '?', the `key` parameter, then the kannel inbound and
 * delivery-report checks. */
#include "fuzz_webhook.h"

#define KEY "4f1c0b7e9a2d4c3e8b6a5f0e1d2c3b4a" /* the listener key the seeds carry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct webhook_params p = { 0 };
	char *uri = fuzz_strndup(data, size);
	const char *q = strchr(uri, '?'), *key;

	if (q != NULL && webhook_form_parse(q + 1, strlen(q + 1), &p) == -1) {
		webhook_params_free(&p);
		free(uri);
		return 0;
	}
	/* The key compares equal to exactly itself, and no key or an empty expected one never passes. */
	key = webhook_params_get(&p, "key");
	FUZZ_CHECK(webhook_key_equal(KEY, key) == (key != NULL && strcmp(key, KEY) == 0));
	FUZZ_CHECK(!webhook_key_equal("", key) && !webhook_key_equal(NULL, key));
	FUZZ_CHECK(key == NULL || key[0] == '\0' || webhook_key_equal(key, key));
	fuzz_check_request(CONF_DIALECT_KANNEL, &p);
	webhook_params_free(&p);
	free(uri);
	return 0;
}
