/* Single-use payment tokens: 16 random bytes from libuuid, base64url without padding (22 characters). */
#include <string.h>

#include <openssl/evp.h>
#include <sys/random.h>
#include <uuid/uuid.h>

#include "payremind/token.h"

#define TOKEN_CHUNK_IN 48 /* a multiple of 3: only the last chunk can carry '=' padding */
#define TOKEN_CHUNK_OUT (TOKEN_CHUNK_IN / 3 * 4)

static const char token_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * 122 random bits (uuid_generate_random reads the kernel's CSPRNG; 6 bits are the UUID version and
 * variant), which is what the spec asks for and more than anyone can guess before the token expires.
 */
void
token_generate(char out[TOKEN_LEN + 1])
{
	uuid_t u;

	uuid_generate_random(u);
	token_base64url(u, sizeof(u), out, TOKEN_LEN + 1);
}

/*
 * OpenSSL does the encoding (standard alphabet, padded); we map '+' '/' to '-' '_' and drop the
 * padding, chunk by chunk, so out only needs room for the unpadded text and its NUL.
 */
size_t
token_base64url(const unsigned char *in, size_t inlen, char *out, size_t outlen)
{
	size_t need = inlen / 3 * 4 + (inlen % 3 != 0 ? inlen % 3 + 1 : 0), done = 0, w = 0;
	unsigned char chunk[TOKEN_CHUNK_OUT + 1];

	if (outlen < need + 1)
		return 0;
	while (done < inlen) {
		size_t n = inlen - done < TOKEN_CHUNK_IN ? inlen - done : TOKEN_CHUNK_IN;
		int k = EVP_EncodeBlock(chunk, in + done, (int)n), i;

		for (i = 0; i < k && chunk[i] != '='; i++)
			out[w++] = chunk[i] == '+' ? '-' : chunk[i] == '/' ? '_' : (char)chunk[i];
		done += n;
	}
	out[w] = '\0';
	return w;
}

int
token_is_valid(const char *s)
{
	return s != NULL && strlen(s) == TOKEN_LEN && strspn(s, token_alphabet) == TOKEN_LEN;
}

void
token_uuid7(int64_t unix_ms, char out[37])
{
	uuid_t u;
	int i;

	/* An id needs uniqueness, not secrecy: the kernel's bytes directly (libuuid's generator, kept for
	 * the tokens, reseeds the C library's random() on every call). */
	if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
		uuid_generate_random(u);
	for (i = 0; i < 6; i++)
		u[i] = (unsigned char)((uint64_t)unix_ms >> (8 * (5 - i)));
	u[6] = (unsigned char)(0x70 | (u[6] & 0x0f)); /* version 7 */
	u[8] = (unsigned char)(0x80 | (u[8] & 0x3f)); /* RFC 4122 variant */
	uuid_unparse_lower(u, out);
}
