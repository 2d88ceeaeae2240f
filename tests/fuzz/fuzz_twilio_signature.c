/*
 * libFuzzer target: the Twilio signature check (X-Twilio-Signature). Input: the auth token, the URL
 * Twilio called, the signature it sent, each on a line, then the form body. Checks that a signature
 * is base64 of 20 bytes, that the check accepts exactly the computed signature, that the order of the
 * parameters does not matter, and that another URL or an added parameter changes it.
 */
#include "fuzz_webhook.h"

/* p's pairs in reverse order (copies). */
static void
reversed(const struct webhook_params *p, struct webhook_params *r)
{
	size_t i;

	for (i = p->n; i > 0; i--)
		FUZZ_CHECK(webhook_params_add(r, p->v[i - 1].name, p->v[i - 1].value) == 0);
}

static int
is_base64_sha1(const char *s)
{
	return strlen(s) == 28 && s[27] == '=' &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") == 27;
}

static void
check_signature(const char *token, const char *url, const struct webhook_params *p, const char *given)
{
	struct webhook_params r = { 0 };
	char sig[29], other[29], *url2;

	FUZZ_CHECK(webhook_twilio_signature(token, url, p, sig, sizeof(sig) - 1) == -1);
	FUZZ_CHECK(webhook_twilio_signature(token, url, p, sig, sizeof(sig)) == 0);
	FUZZ_CHECK(is_base64_sha1(sig));
	FUZZ_CHECK(webhook_twilio_valid(token, url, p, sig) == (token[0] != '\0'));
	FUZZ_CHECK(webhook_twilio_valid(token, url, p, given) ==
	    (token[0] != '\0' && given[0] != '\0' && strcmp(given, sig) == 0));
	FUZZ_CHECK(
	    webhook_twilio_valid(NULL, url, p, sig) == 0 && webhook_twilio_valid(token, url, p, NULL) == 0);

	reversed(p, &r);
	FUZZ_CHECK(webhook_twilio_signature(token, url, &r, other, sizeof(other)) == 0);
	FUZZ_CHECK(strcmp(sig, other) == 0);
	FUZZ_CHECK(webhook_params_add(&r, "AddedBy", "attacker") == 0);
	FUZZ_CHECK(webhook_twilio_valid(token, url, &r, sig) == 0);
	webhook_params_free(&r);

	url2 = fuzz_xmalloc(strlen(url) + 2);
	memcpy(url2, url, strlen(url));
	memcpy(url2 + strlen(url), "/", 2);
	FUZZ_CHECK(webhook_twilio_valid(token, url2, p, sig) == 0);
	free(url2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	char *token = fuzz_take_line(&in), *url = fuzz_take_line(&in), *given = fuzz_take_line(&in);
	struct webhook_params p = { 0 };

	if (webhook_form_parse((const char *)in.p, in.n, &p) == 0) {
		check_signature(token, url, &p, given);
		fuzz_check_request(CONF_DIALECT_TWILIO, &p);
	}
	webhook_params_free(&p);
	free(token);
	free(url);
	free(given);
	return 0;
}
