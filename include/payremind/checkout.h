/* The hand-off to ARO's payment portal and the portal's callbacks, pure: HMAC-SHA256 (SPEC §10). */
#ifndef PAYREMIND_CHECKOUT_H
#define PAYREMIND_CHECKOUT_H

#include <stddef.h>
#include <stdint.h>

#define CHECKOUT_SIG_HEX 64 /* lower-case hex of a SHA-256 MAC */

/* What the portal is told about one payment link. */
struct checkout_handoff {
	const char *reference;   /* the reminder id */
	const char *account_ref; /* billing's account reference */
	int64_t amount_cents;
	const char *currency;
	const char *lang; /* "fr" or "en" */
	int64_t expires;  /* Unix seconds */
};

/* The signed hand-off URL: base + "?" (or "&" when base has a query) + reference, account_ref,
 * amount_cents, currency, lang, expires, each percent-encoded (RFC 3986 unreserved characters kept), in
 * that order, then "&signature=" + the hex HMAC-SHA256 under key of the query string before it, exactly
 * as written. 0, or -1 when out is too small or the MAC fails. */
int checkout_url(const char *base, const unsigned char *key, size_t keylen, const struct checkout_handoff *h,
    char *out, size_t outlen) __attribute__((warn_unused_result));
/* hex = lower-case hex HMAC-SHA256 of data under key. 0 or -1. */
int checkout_mac_hex(const unsigned char *key, size_t keylen, const void *data, size_t len,
    char hex[CHECKOUT_SIG_HEX + 1]) __attribute__((warn_unused_result));
/* 1 when sig is the hex HMAC-SHA256 of data under key (either case), compared in constant time. */
int checkout_verify(const unsigned char *key, size_t keylen, const void *data, size_t len, const char *sig);

#endif
