/* Single-use payment tokens: 16 random bytes from libuuid, base64url without padding (22 characters). */
#ifndef PAYREMIND_TOKEN_H
#define PAYREMIND_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_LEN 22

/* Fill out with a new token (uuid_generate_random, then base64url). */
void token_generate(char out[TOKEN_LEN + 1]);
/* base64url (RFC 4648 §5) without padding; returns the length written, or 0 when outlen is too small. */
size_t token_base64url(const unsigned char *in, size_t inlen, char *out, size_t outlen);
/* A time-ordered UUID (RFC 9562 version 7: 48 bits of Unix milliseconds, then 74 random bits from
 * libuuid) as 36 characters: reminder ids, which then land at the right edge of their indexes. */
void token_uuid7(int64_t unix_ms, char out[37]);
/* 1 when s is exactly TOKEN_LEN base64url characters. */
int token_is_valid(const char *s);

#endif
