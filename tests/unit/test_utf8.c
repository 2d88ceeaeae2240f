/* Unit tests of utf8.c: the one strict UTF-8 decoder (RFC 3629) that gsm, keyword and webhook share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "payremind/gsm.h"
#include "payremind/utf8.h"
#include "payremind/webhook.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One sequence (len bytes, NULs allowed), whether it is valid, and for a single valid code point what it is. */
static const struct {
	const char *what;
	const char *bytes;
	size_t len;
	int valid;
	uint32_t cp; /* the first code point, when valid */
} cases[] = {
	{ "ASCII", "A", 1, 1, 0x41 },
	{ "NUL is a code point", "\x00", 1, 1, 0 },
	{ "last 1-byte", "\x7F", 1, 1, 0x7F },
	{ "first 2-byte", "\xC2\x80", 2, 1, 0x80 },
	{ "e-acute", "\xC3\xA9", 2, 1, 0xE9 },
	{ "last 2-byte", "\xDF\xBF", 2, 1, 0x7FF },
	{ "first 3-byte", "\xE0\xA0\x80", 3, 1, 0x800 },
	{ "euro", "\xE2\x82\xAC", 3, 1, 0x20AC },
	{ "last before the surrogates", "\xED\x9F\xBF", 3, 1, 0xD7FF },
	{ "first after the surrogates", "\xEE\x80\x80", 3, 1, 0xE000 },
	{ "U+FFFF (a noncharacter, still UTF-8)", "\xEF\xBF\xBF", 3, 1, 0xFFFF },
	{ "first 4-byte", "\xF0\x90\x80\x80", 4, 1, 0x10000 },
	{ "an emoji", "\xF0\x9F\x98\x80", 4, 1, 0x1F600 },
	{ "U+10FFFF, the last code point", "\xF4\x8F\xBF\xBF", 4, 1, 0x10FFFF },
	{ "U+110000, above the last", "\xF4\x90\x80\x80", 4, 0, 0 },
	{ "F5 lead (above U+13FFFF)", "\xF5\x80\x80\x80", 4, 0, 0 },
	{ "F7 lead", "\xF7\xBF\xBF\xBF", 4, 0, 0 },
	{ "5-byte form", "\xF8\x88\x80\x80\x80", 5, 0, 0 },
	{ "6-byte form", "\xFC\x84\x80\x80\x80\x80", 6, 0, 0 },
	{ "FE", "\xFE", 1, 0, 0 },
	{ "FF", "\xFF", 1, 0, 0 },
	{ "stray continuation", "\x80", 1, 0, 0 },
	{ "stray last continuation", "\xBF", 1, 0, 0 },
	{ "overlong NUL C0 80", "\xC0\x80", 2, 0, 0 },
	{ "overlong C1 BF", "\xC1\xBF", 2, 0, 0 },
	{ "overlong 3-byte slash", "\xE0\x80\xAF", 3, 0, 0 },
	{ "overlong 3-byte U+7FF", "\xE0\x9F\xBF", 3, 0, 0 },
	{ "overlong 4-byte slash", "\xF0\x80\x80\xAF", 4, 0, 0 },
	{ "overlong 4-byte U+FFFF", "\xF0\x8F\xBF\xBF", 4, 0, 0 },
	{ "high surrogate U+D800", "\xED\xA0\x80", 3, 0, 0 },
	{ "low surrogate U+DFFF", "\xED\xBF\xBF", 3, 0, 0 },
	{ "CESU-8 surrogate pair", "\xED\xA0\xBD\xED\xB8\x80", 6, 0, 0 },
	{ "truncated 2-byte", "\xC3", 1, 0, 0 },
	{ "truncated 3-byte", "\xE2\x82", 2, 0, 0 },
	{ "truncated 4-byte", "\xF0\x9F\x98", 3, 0, 0 },
	{ "truncated by a NUL", "\xE2\x00\xAC", 3, 0, 0 },
	{ "continuation replaced by ASCII", "\xC3\x41", 2, 0, 0 },
	{ "valid then invalid", "ok\xC3\xA9\xFF", 5, 0, 0 },
	{ "Latin-1 e-acute", "caf\xE9", 4, 0, 0 },
};

/* utf8_next and utf8_valid agree on every case, and give the right code point. */
static void
test_decoder_follows_rfc_3629(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		const unsigned char *p = (const unsigned char *)cases[i].bytes;
		uint32_t cp = 0xDEAD;
		int rc;

		print_message("case: %s\n", cases[i].what);
		assert_int_equal(utf8_valid(cases[i].bytes, cases[i].len), cases[i].valid);
		rc = utf8_next(&p, cases[i].len, &cp);
		if (cases[i].valid) {
			assert_int_equal(rc, 0);
			assert_int_equal(cp, cases[i].cp);
		} else if (rc == -1) {
			assert_ptr_equal(p, (const unsigned char *)cases[i].bytes); /* unchanged */
		}
	}
}

/* A sequence is never read past the length given, even when the bytes after it would complete it. */
static void
test_decoder_never_reads_past_the_length(void **state)
{
	static const char euro[] = "\xE2\x82\xAC";
	const unsigned char *p = (const unsigned char *)euro;
	uint32_t cp;

	(void)state;
	assert_int_equal(utf8_next(&p, 2, &cp), -1);
	assert_int_equal(utf8_next(&p, 0, &cp), -1);
	assert_int_equal(utf8_valid(euro, 2), 0);
	assert_int_equal(utf8_valid(euro, 3), 1);
	assert_int_equal(utf8_valid("", 0), 1);
}

/* The GSM-7 counter and the webhook check give the same verdict as the decoder (one decoder). */
static void
test_gsm_and_webhooks_use_the_same_rules(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p = { 0 };
		struct gsm_info info;
		char text[16], err[128];

		if (memchr(cases[i].bytes, '\0', cases[i].len) != NULL)
			continue; /* C strings: NUL never reaches either */
		print_message("case: %s\n", cases[i].what);
		memcpy(text, cases[i].bytes, cases[i].len);
		text[cases[i].len] = '\0';
		assert_int_equal(gsm_analyze(text, &info), cases[i].valid ? 0 : -1);
		assert_int_equal(webhook_params_add(&p, "text", text), 0);
		assert_int_equal(webhook_params_check(&p, err, sizeof(err)), cases[i].valid ? 0 : -1);
		webhook_params_free(&p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decoder_follows_rfc_3629),
		cmocka_unit_test(test_decoder_never_reads_past_the_length),
		cmocka_unit_test(test_gsm_and_webhooks_use_the_same_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
