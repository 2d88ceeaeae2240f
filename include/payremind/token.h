/* Single-use payment tokens: 16 random bytes from libuuid, base64url without padding (22 characters). */
#ifndef PAYREMIND_TOKEN_H
#define PAYREMIND_TOKEN_H

#include <stddef.h>

#define TOKEN_LEN 22

/* Fill out with a new token (uuid_generate_random, then base64url). */
void token_generate(char out[TOKEN_LEN + 1]);
/* base64url (RFC 4648 §5) without padding; returns the length written, or 0 when outlen is too small. */
size_t token_base64url(const unsigned char *in, size_t inlen, char *out, size_t outlen);
/* 1 when s is exactly TOKEN_LEN base64url characters. */
int token_is_valid(const char *s);

#endif
