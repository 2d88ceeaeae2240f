/* libFuzzer target: application/x-www-form-urlencoded bodies (Twilio webhooks) and what the listener
 * does with them: webhook_form_parse, then the twilio inbound and delivery-report checks. */
#include "fuzz_webhook.h"

/* Append s percent-encoded (every byte but unreserved ones; space as '+') to out at *w. */
static void
form_encode(const char *s, char *out, size_t *w)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    strchr("-._~", c) != NULL) {
			out[(*w)++] = (char)c;
		} else if (c == ' ') {
			out[(*w)++] = '+';
		} else {
			out[(*w)++] = '%';
			out[(*w)++] = hex[c >> 4];
			out[(*w)++] = hex[c & 15];
		}
	}
}

/* Encode p back into a form and parse it again: the same pairs, in the same order. */
static void
check_round_trip(const struct webhook_params *p, size_t size)
{
	struct webhook_params q = { 0 };
	char *form = fuzz_xmalloc(3 * size + p->n + 1);
	size_t w = 0, i;

	for (i = 0; i < p->n; i++) {
		if (i > 0)
			form[w++] = '&';
		form_encode(p->v[i].name, form, &w);
		form[w++] = '=';
		form_encode(p->v[i].value, form, &w);
	}
	form[w] = '\0';
	FUZZ_CHECK(webhook_form_parse(form, w, &q) == 0);
	FUZZ_CHECK(q.n == p->n);
	for (i = 0; i < p->n; i++) {
		FUZZ_CHECK(strcmp(q.v[i].name, p->v[i].name) == 0);
		FUZZ_CHECK(strcmp(q.v[i].value, p->v[i].value) == 0);
	}
	webhook_params_free(&q);
	free(form);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct webhook_params p = { 0 };
	size_t i, pieces = 1;

	for (i = 0; i < size; i++)
		pieces += data[i] == '&';
	if (webhook_form_parse((const char *)data, size, &p) == -1) {
		webhook_params_free(&p); /* what was parsed before the bad escape */
		return 0;
	}
	FUZZ_CHECK(p.n <= pieces);
	for (i = 0; i < p.n; i++) {
		/* a form value is always a string; the first of a repeated name is the one looked up */
		FUZZ_CHECK(p.v[i].name != NULL && p.v[i].value != NULL);
		FUZZ_CHECK(strlen(p.v[i].name) + strlen(p.v[i].value) <= size);
		FUZZ_CHECK(webhook_params_get(&p, p.v[i].name) != NULL);
	}
	if (p.n > 0)
		FUZZ_CHECK(webhook_params_get(&p, p.v[0].name) == p.v[0].value);
	check_round_trip(&p, size);
	fuzz_check_request(CONF_DIALECT_TWILIO, &p);
	webhook_params_free(&p);
	return 0;
}
