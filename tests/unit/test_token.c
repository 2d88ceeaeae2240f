/* Unit tests of token.c: base64url encoding (RFC 4648), token shape, and uniqueness of generated tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uuid/uuid.h>

#include "payremind/token.h"

#define TOKEN_SAMPLE 10000

static const unsigned char bytes_0_to_49[50] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
	18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42,
	43, 44, 45, 46, 47, 48, 49 };

static const struct {
	const char *what;
	const unsigned char *in;
	size_t inlen;
	const char *out;
} b64_cases[] = {
	{ "RFC 4648 §10 empty", (const unsigned char *)"", 0, "" },
	{ "RFC 4648 §10 f", (const unsigned char *)"f", 1, "Zg" },
	{ "RFC 4648 §10 fo", (const unsigned char *)"fo", 2, "Zm8" },
	{ "RFC 4648 §10 foo", (const unsigned char *)"foo", 3, "Zm9v" },
	{ "RFC 4648 §10 foob", (const unsigned char *)"foob", 4, "Zm9vYg" },
	{ "RFC 4648 §10 fooba", (const unsigned char *)"fooba", 5, "Zm9vYmE" },
	{ "RFC 4648 §10 foobar", (const unsigned char *)"foobar", 6, "Zm9vYmFy" },
	{ "62 and 63 become - and _", (const unsigned char *)"\xFB\xFF", 2, "-_8" },
	{ "all 62", (const unsigned char *)"\xFB\xEF\xBE", 3, "----" },
	{ "all 63", (const unsigned char *)"\xFF\xFF\xFF", 3, "____" },
	{ "16 bytes make 22 characters",
	    (const unsigned char *)"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"
	                           "\xFF\xFF\xFF\xFF",
	    16, "_____________________w" },
	{ "longer than one encoding chunk", bytes_0_to_49, sizeof(bytes_0_to_49),
	    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDE" },
};

static void
base64url_encodes_without_padding(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(b64_cases) / sizeof(b64_cases[0]); i++) {
		char out[128];

		print_message("case: %s\n", b64_cases[i].what);
		memset(out, 'X', sizeof(out));
		assert_int_equal(token_base64url(b64_cases[i].in, b64_cases[i].inlen, out, sizeof(out)),
		    strlen(b64_cases[i].out));
		assert_string_equal(out, b64_cases[i].out);
	}
}

/* "fooba" is "Zm9vYmE": 7 characters and a NUL; its padded form would need one byte more. */
static const struct {
	size_t outlen;
	size_t ret;
} room_cases[] = {
	{ 0, 0 },
	{ 7, 0 },
	{ 8, 7 },
	{ 16, 7 },
};

static void
base64url_needs_room_for_text_and_nul_only(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(room_cases) / sizeof(room_cases[0]); i++) {
		char out[16] = "untouched";

		assert_int_equal(
		    token_base64url((const unsigned char *)"fooba", 5, out, room_cases[i].outlen),
		    room_cases[i].ret);
		assert_string_equal(out, room_cases[i].ret != 0 ? "Zm9vYmE" : "untouched");
	}
}

static const struct {
	const char *s;
	int valid;
} valid_cases[] = {
	{ "AAAAAAAAAAAAAAAAAAAAAA", 1 },
	{ "Zx-9_aQ3bC7dE1fG2hI4jA", 1 },
	{ "Zx-9_aQ3bC7dE1fG2hI4j", 0 },   /* 21 */
	{ "Zx-9_aQ3bC7dE1fG2hI4jAA", 0 }, /* 23 */
	{ "Zx+9/aQ3bC7dE1fG2hI4jA", 0 },  /* standard alphabet */
	{ "Zx-9_aQ3bC7dE1fG2hI4j=", 0 },
	{ "Zx-9_aQ3bC7 E1fG2hI4jA", 0 },
	{ "Zx-9_aQ3bC7éE1fG2hI4j", 0 }, /* 22 bytes */
	{ "", 0 },
	{ NULL, 0 },
};

static void
is_valid_accepts_exactly_22_base64url_characters(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		print_message("case: %s\n", valid_cases[i].s != NULL ? valid_cases[i].s : "(null)");
		assert_int_equal(token_is_valid(valid_cases[i].s), valid_cases[i].valid);
	}
}

static int
cmp_token(const void *a, const void *b)
{
	return memcmp(a, b, TOKEN_LEN + 1);
}

static void
generate_makes_valid_distinct_tokens(void **state)
{
	char(*tokens)[TOKEN_LEN + 1] = calloc(TOKEN_SAMPLE, TOKEN_LEN + 1);
	size_t i;

	(void)state;
	assert_non_null(tokens);
	for (i = 0; i < TOKEN_SAMPLE; i++) {
		token_generate(tokens[i]);
		assert_true(token_is_valid(tokens[i]));
	}
	qsort(tokens, TOKEN_SAMPLE, TOKEN_LEN + 1, cmp_token);
	for (i = 1; i < TOKEN_SAMPLE; i++)
		assert_int_not_equal(cmp_token(tokens[i - 1], tokens[i]), 0);
	free(tokens);
}

/* Reminder ids: valid version-7 UUIDs whose text sorts by their millisecond, and never repeat. */
static void
uuid7_is_time_ordered_and_distinct(void **state)
{
	static const int64_t times[] = { 0, 1, 1000, 1795000000000LL, 1795000000001LL, 281474976710655LL };
	char prev[37] = "", cur[37], same[37];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		uuid_t u;

		token_uuid7(times[i], cur);
		assert_int_equal(strlen(cur), 36);
		assert_int_equal(uuid_parse(cur, u), 0);
		assert_int_equal(u[6] >> 4, 7); /* version */
		assert_int_equal(u[8] >> 6, 2); /* variant 10 */
		assert_int_equal(((int64_t)u[0] << 40 | (int64_t)u[1] << 32 | (int64_t)u[2] << 24 |
		                     (int64_t)u[3] << 16 | (int64_t)u[4] << 8 | u[5]),
		    times[i]);
		assert_true(strcmp(prev, cur) < 0); /* a later millisecond sorts after */
		token_uuid7(times[i], same);
		assert_string_not_equal(cur, same); /* the same millisecond twice: still distinct */
		memcpy(prev, strcmp(cur, same) > 0 ? cur : same, sizeof(prev));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(base64url_encodes_without_padding),
		cmocka_unit_test(base64url_needs_room_for_text_and_nul_only),
		cmocka_unit_test(is_valid_accepts_exactly_22_base64url_characters),
		cmocka_unit_test(generate_makes_valid_distinct_tokens),
		cmocka_unit_test(uuid7_is_time_ordered_and_distinct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
