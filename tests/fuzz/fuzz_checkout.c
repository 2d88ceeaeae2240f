/*
 * libFuzzer target: the payment portal's signatures (checkout.h). Input: the key, the signature a
 * callback carries, the hand-off base URL and an account reference, one a line; the rest is the signed
 * callback data (any bytes). Checks: a MAC is 64 lower-case hex digits; checkout_verify accepts exactly
 * that MAC, in either case, and nothing else; a hand-off URL's query, read back as a form, gives each
 * value as it was, and its signature verifies over the query exactly as written.
 */
#include <ctype.h>
#include <strings.h>

#include "fuzz.h"
#include "payremind/checkout.h"
#include "payremind/webhook.h"

static void
check_verify(const unsigned char *key, size_t keylen, const uint8_t *data, size_t size, const char *given)
{
	char mac[CHECKOUT_SIG_HEX + 1], other[CHECKOUT_SIG_HEX + 1];
	size_t i;

	FUZZ_CHECK(checkout_mac_hex(key, keylen, data, size, mac) == 0);
	FUZZ_CHECK(strlen(mac) == CHECKOUT_SIG_HEX && strspn(mac, "0123456789abcdef") == CHECKOUT_SIG_HEX);
	FUZZ_CHECK(checkout_verify(key, keylen, data, size, mac) == 1);
	for (i = 0; i <= CHECKOUT_SIG_HEX; i++)
		other[i] = (char)toupper((unsigned char)mac[i]);
	FUZZ_CHECK(checkout_verify(key, keylen, data, size, other) == 1);
	other[0] = other[0] == '0' ? '1' : '0';
	FUZZ_CHECK(checkout_verify(key, keylen, data, size, other) == 0);
	FUZZ_CHECK(checkout_verify(key, keylen, data, size, NULL) == 0);
	FUZZ_CHECK(checkout_verify(key, keylen, data, size, given) ==
	    (strlen(given) == CHECKOUT_SIG_HEX && strcasecmp(given, mac) == 0));
}

/* The hand-off URL for these values: one byte too small is refused; the query reads back. */
static void
check_url(const unsigned char *key, size_t keylen, const char *base, const char *account_ref)
{
	const struct checkout_handoff h = { "3f2b8c1e-7d4a-4e9b-a1c2-5d6e7f809a1b", account_ref, -123456789,
		"CAD", "fr", 1798761600 };
	size_t cap = strlen(base) + 3 * strlen(account_ref) + 512, len, qstart = strlen(base) + 1;
	char *url = fuzz_xmalloc(cap), *sig;
	struct webhook_params p = { 0 };

	FUZZ_CHECK(checkout_url(base, key, keylen, &h, url, cap) == 0);
	len = strlen(url);
	FUZZ_CHECK(checkout_url(base, key, keylen, &h, url, len) == -1);
	FUZZ_CHECK(checkout_url(base, key, keylen, &h, url, len + 1) == 0 && strlen(url) == len);
	FUZZ_CHECK(strncmp(url, base, strlen(base)) == 0);
	sig = strstr(url + qstart, "&signature=");
	FUZZ_CHECK(sig != NULL && strlen(sig) == strlen("&signature=") + CHECKOUT_SIG_HEX);
	FUZZ_CHECK(checkout_verify(key, keylen, url + qstart, (size_t)(sig - url) - qstart, sig + 11) == 1);
	FUZZ_CHECK(webhook_form_parse(url + qstart, (size_t)(sig - url) - qstart, &p) == 0 && p.n == 6);
	FUZZ_CHECK(strcmp(p.v[0].name, "reference") == 0 && strcmp(p.v[0].value, h.reference) == 0);
	FUZZ_CHECK(strcmp(p.v[1].name, "account_ref") == 0 && strcmp(p.v[1].value, account_ref) == 0);
	FUZZ_CHECK(strcmp(webhook_params_get(&p, "amount_cents"), "-123456789") == 0);
	FUZZ_CHECK(strcmp(webhook_params_get(&p, "expires"), "1798761600") == 0);
	webhook_params_free(&p);
	free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	char *key = fuzz_take_line(&in), *given = fuzz_take_line(&in), *base = fuzz_take_line(&in);
	char *ref = fuzz_take_line(&in);
	uint8_t *rest = fuzz_xmalloc(in.n); /* exact size: ASan sees a read past the data */

	memcpy(rest, in.p, in.n);
	check_verify((const unsigned char *)key, strlen(key), rest, in.n, given);
	if (ref[0] != '\0')
		check_url((const unsigned char *)key, strlen(key), base, ref);
	free(rest);
	free(ref);
	free(base);
	free(given);
	free(key);
	return 0;
}
