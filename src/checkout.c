/* The signed hand-off to the payment portal and the check of its callbacks (HMAC-SHA256). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "payremind/checkout.h"

/* A bounded string being built; overflow makes it fail once, at the end. */
struct checkout_buf {
	char *p;
	size_t len, cap;
	int overflow;
};

static void
checkout_put(struct checkout_buf *b, const char *s, size_t n)
{
	if (b->overflow || b->len + n >= b->cap) {
		b->overflow = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* "&name=" (or "name=" first) and the value percent-encoded: RFC 3986 unreserved kept, the rest %XX. */
static void
checkout_param(struct checkout_buf *b, int first, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *v;
	char esc[3];

	if (!first)
		checkout_put(b, "&", 1);
	checkout_put(b, name, strlen(name));
	checkout_put(b, "=", 1);
	for (v = (const unsigned char *)(value != NULL ? value : ""); *v; v++) {
		if (isalnum(*v) || *v == '-' || *v == '.' || *v == '_' || *v == '~') {
			checkout_put(b, (const char *)v, 1);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[*v >> 4];
		esc[2] = hex[*v & 15];
		checkout_put(b, esc, 3);
	}
}

int
checkout_mac_hex(
    const unsigned char *key, size_t keylen, const void *data, size_t len, char hex[CHECKOUT_SIG_HEX + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0, i;

	if (keylen > INT32_MAX || HMAC(EVP_sha256(), key, (int)keylen, data, len, mac, &maclen) == NULL ||
	    maclen != 32)
		return -1;
	for (i = 0; i < maclen; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	return 0;
}

int
checkout_url(const char *base, const unsigned char *key, size_t keylen, const struct checkout_handoff *h,
    char *out, size_t outlen)
{
	struct checkout_buf b = { out, 0, outlen, outlen == 0 };
	char amount[24], expires[24], sig[CHECKOUT_SIG_HEX + 1];
	size_t query;

	if (outlen > 0)
		out[0] = '\0';
	snprintf(amount, sizeof(amount), "%" PRId64, h->amount_cents);
	snprintf(expires, sizeof(expires), "%" PRId64, h->expires);
	checkout_put(&b, base, strlen(base));
	checkout_put(&b, strchr(base, '?') != NULL ? "&" : "?", 1);
	query = b.len;
	checkout_param(&b, 1, "reference", h->reference);
	checkout_param(&b, 0, "account_ref", h->account_ref);
	checkout_param(&b, 0, "amount_cents", amount);
	checkout_param(&b, 0, "currency", h->currency);
	checkout_param(&b, 0, "lang", h->lang);
	checkout_param(&b, 0, "expires", expires);
	if (b.overflow || checkout_mac_hex(key, keylen, out + query, b.len - query, sig) == -1)
		return -1;
	checkout_put(&b, "&signature=", strlen("&signature="));
	checkout_put(&b, sig, CHECKOUT_SIG_HEX);
	explicit_bzero(sig, sizeof(sig));
	return b.overflow ? -1 : 0;
}

int
checkout_verify(const unsigned char *key, size_t keylen, const void *data, size_t len, const char *sig)
{
	char want[CHECKOUT_SIG_HEX + 1], got[CHECKOUT_SIG_HEX + 1];
	size_t i;

	if (sig == NULL || strlen(sig) != CHECKOUT_SIG_HEX ||
	    checkout_mac_hex(key, keylen, data, len, want) == -1)
		return 0;
	for (i = 0; i < CHECKOUT_SIG_HEX; i++)
		got[i] = (char)tolower((unsigned char)sig[i]);
	got[CHECKOUT_SIG_HEX] = '\0';
	return CRYPTO_memcmp(want, got, CHECKOUT_SIG_HEX) == 0;
}
