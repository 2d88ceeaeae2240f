/* Unit tests of gsm.c: GSM-7 / UCS-2 detection, unit and segment counts, strict UTF-8, transliteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "payremind/gsm.h"

/* A text written as up to three runs of a repeated piece, so boundary cases stay readable. */
struct run {
	const char *piece;
	int times;
};

struct count_case {
	const char *what;
	struct run runs[3];
	enum gsm_coding coding;
	size_t units;
	int segments;
};

static const struct count_case count_cases[] = {
	{ "empty text", { { "", 0 } }, GSM_CODING_GSM7, 0, 1 },
	{ "plain ASCII", { { "Bonjour", 1 } }, GSM_CODING_GSM7, 7, 1 },
	{ "e-acute e-grave a-grave are basic", { { "éèà", 1 } }, GSM_CODING_GSM7, 3, 1 },
	{ "upper-case C-cedilla is basic 0x09", { { "Ç", 1 } }, GSM_CODING_GSM7, 1, 1 },
	{ "dollar, at and underscore are basic", { { "$@_", 1 } }, GSM_CODING_GSM7, 3, 1 },
	{ "euro is an extension: 2 septets", { { "€", 1 } }, GSM_CODING_GSM7, 2, 1 },
	{ "every extension character costs 2", { { "\f^{}\\[~]|€", 1 } }, GSM_CODING_GSM7, 20, 1 },
	{ "lower-case c-cedilla forces UCS-2", { { "ç", 1 } }, GSM_CODING_UCS2, 1, 1 },
	{ "e-circumflex forces UCS-2", { { "fenêtre", 1 } }, GSM_CODING_UCS2, 7, 1 },
	{ "curly apostrophe forces UCS-2", { { "l’avis", 1 } }, GSM_CODING_UCS2, 6, 1 },
	{ "NBSP forces UCS-2", { { "1\xC2\xA0$", 1 } }, GSM_CODING_UCS2, 3, 1 },
	{ "NNBSP forces UCS-2", { { "1\xE2\x80\xAF$", 1 } }, GSM_CODING_UCS2, 3, 1 },
	{ "backtick is not GSM-7", { { "`", 1 } }, GSM_CODING_UCS2, 1, 1 },
	{ "an emoji is 2 UTF-16 units", { { "a\xF0\x9F\x98\x80", 1 } }, GSM_CODING_UCS2, 3, 1 },
	{ "euro in a UCS-2 text is 1 unit", { { "€ç", 1 } }, GSM_CODING_UCS2, 2, 1 },
	{ "160 septets fit one segment", { { "a", 160 } }, GSM_CODING_GSM7, 160, 1 },
	{ "161 septets need two", { { "a", 161 } }, GSM_CODING_GSM7, 161, 2 },
	{ "80 euros are 160 septets, one segment", { { "€", 80 } }, GSM_CODING_GSM7, 160, 1 },
	{ "an escape tips 159 + 2 over 160", { { "a", 159 }, { "€", 1 } }, GSM_CODING_GSM7, 161, 2 },
	{ "306 septets fill two parts of 153", { { "a", 306 } }, GSM_CODING_GSM7, 306, 2 },
	{ "307 septets need a third part", { { "a", 307 } }, GSM_CODING_GSM7, 307, 3 },
	{ "an escape pair is not split at a part boundary", { { "a", 152 }, { "€", 1 }, { "a", 152 } },
	    GSM_CODING_GSM7, 306, 3 },
	{ "an escape pair ending a part exactly fits", { { "a", 151 }, { "€", 1 }, { "a", 153 } },
	    GSM_CODING_GSM7, 306, 2 },
	{ "70 UCS-2 units fit one segment", { { "ç", 70 } }, GSM_CODING_UCS2, 70, 1 },
	{ "71 UCS-2 units need two", { { "ç", 71 } }, GSM_CODING_UCS2, 71, 2 },
	{ "35 emoji are 70 units", { { "\xF0\x9F\x98\x80", 35 } }, GSM_CODING_UCS2, 70, 1 },
	{ "134 units fill two parts of 67", { { "ç", 134 } }, GSM_CODING_UCS2, 134, 2 },
	{ "135 units need a third part", { { "ç", 135 } }, GSM_CODING_UCS2, 135, 3 },
	{ "a surrogate pair is not split at a part boundary",
	    { { "ç", 66 }, { "\xF0\x9F\x98\x80", 1 }, { "ç", 66 } }, GSM_CODING_UCS2, 134, 3 },
	{ "one c-cedilla turns 160 septets into 161 UCS-2 units", { { "a", 160 }, { "ç", 1 } },
	    GSM_CODING_UCS2, 161, 3 },
};

/* Concatenate the runs of a case into a new string. */
static char *
build_text(const struct run runs[3])
{
	size_t len = 1, i;
	char *s;
	int k;

	for (i = 0; i < 3 && runs[i].piece != NULL; i++)
		len += strlen(runs[i].piece) * (size_t)runs[i].times;
	s = calloc(1, len);
	assert_non_null(s);
	for (i = 0; i < 3 && runs[i].piece != NULL; i++)
		for (k = 0; k < runs[i].times; k++)
			strcat(s, runs[i].piece);
	return s;
}

static void
analyze_counts_units_and_segments(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(count_cases) / sizeof(count_cases[0]); i++) {
		const struct count_case *c = &count_cases[i];
		char *text = build_text(c->runs);
		struct gsm_info info;

		print_message("case: %s\n", c->what);
		assert_int_equal(gsm_analyze(text, &info), 0);
		assert_string_equal(gsm_coding_to_text(info.coding), gsm_coding_to_text(c->coding));
		assert_int_equal(info.units, c->units);
		assert_int_equal(info.segments, c->segments);
		assert_int_equal(gsm_is_gsm7(text), c->coding == GSM_CODING_GSM7);
		free(text);
	}
}

/* All 127 characters of the basic set (every code but the 0x1B escape), in table order. */
static const char gsm_basic_utf8[] = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
                                     "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

static void
analyze_counts_whole_basic_set_as_one_septet_each(void **state)
{
	struct gsm_info info;

	(void)state;
	assert_int_equal(gsm_analyze(gsm_basic_utf8, &info), 0);
	assert_int_equal(info.coding, GSM_CODING_GSM7);
	assert_int_equal(info.units, 127);
}

static const char *const not_gsm7[] = {
	"ç",
	"ê",
	"â",
	"î",
	"ô",
	"û",
	"ë",
	"ï",
	"À",
	"È",
	"’",
	"‘",
	"«",
	"»",
	"“",
	"”",
	"\xC2\xA0",
	"\xE2\x80\xAF",
	"–",
	"—",
	"…",
	"`",
	"\xF0\x9F\x98\x80",
};

static void
analyze_detects_characters_outside_gsm7(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(not_gsm7) / sizeof(not_gsm7[0]); i++) {
		struct gsm_info info;

		print_message("case: %s\n", not_gsm7[i]);
		assert_int_equal(gsm_analyze(not_gsm7[i], &info), 0);
		assert_int_equal(info.coding, GSM_CODING_UCS2);
		assert_int_equal(gsm_is_gsm7(not_gsm7[i]), 0);
	}
}

static const struct {
	const char *what;
	const char *text;
} bad_utf8[] = {
	{ "invalid byte 0xFF", "a\xFF" },
	{ "stray continuation byte", "\x80" },
	{ "Latin-1 e-acute", "caf\xE9" },
	{ "truncated 2-byte sequence", "\xC3" },
	{ "truncated 3-byte sequence", "\xE2\x82" },
	{ "overlong 2-byte slash", "\xC0\xAF" },
	{ "overlong 3-byte slash", "\xE0\x80\xAF" },
	{ "overlong 4-byte slash", "\xF0\x80\x80\xAF" },
	{ "UTF-16 high surrogate", "\xED\xA0\x80" },
	{ "UTF-16 low surrogate", "\xED\xBF\xBF" },
	{ "above U+10FFFF", "\xF4\x90\x80\x80" },
	{ "5-byte lead", "\xF8\x88\x80\x80\x80" },
};

static void
analyze_rejects_invalid_utf8(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		struct gsm_info info;

		print_message("case: %s\n", bad_utf8[i].what);
		assert_int_equal(gsm_analyze(bad_utf8[i].text, &info), -1);
		assert_int_equal(gsm_is_gsm7(bad_utf8[i].text), 0);
	}
}

static const struct {
	const char *in;
	const char *out;
} translit_cases[] = {
	{ "ç Ç ê ë â î ï ô û", "c C e e a i i o u" },
	{ "À È Ê Â Î Ô Û", "A E E A I O U" },
	{ "l’a ‘b’", "l'a 'b'" },
	{ "« x » “y”", "\" x \" \"y\"" },
	{ "1\xC2\xA0"
	  "234\xE2\x80\xAF$",
	    "1 234 $" },
	{ "a–b—c", "a-b-c" },
	{ "suite…", "suite..." },
	{ "é è à É ù € {x}", "é è à É ù € {x}" },
	{ "emoji \xF0\x9F\x98\x80 kept", "emoji \xF0\x9F\x98\x80 kept" },
	{ "bad \xFF byte", "bad \xFF byte" },
	{ "", "" },
};

static void
transliterate_replaces_only_listed_characters(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(translit_cases) / sizeof(translit_cases[0]); i++) {
		char *out = gsm_transliterate(translit_cases[i].in);

		assert_non_null(out);
		assert_string_equal(out, translit_cases[i].out);
		free(out);
	}
}

static void
transliterate_turns_french_sentence_into_gsm7(void **state)
{
	const char *fr = "ARO : votre paiement reçu ? Ça m’êtes « dû » — fenêtre\xC2\xA0ouverte… ARRÊT";
	struct gsm_info info;
	char *out;

	(void)state;
	assert_int_equal(gsm_is_gsm7(fr), 0);
	out = gsm_transliterate(fr);
	assert_non_null(out);
	assert_string_equal(out, "ARO : votre paiement recu ? Ca m'etes \" du \" - fenetre ouverte... ARRET");
	assert_int_equal(gsm_analyze(out, &info), 0);
	assert_int_equal(info.coding, GSM_CODING_GSM7);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(analyze_counts_units_and_segments),
		cmocka_unit_test(analyze_counts_whole_basic_set_as_one_septet_each),
		cmocka_unit_test(analyze_detects_characters_outside_gsm7),
		cmocka_unit_test(analyze_rejects_invalid_utf8),
		cmocka_unit_test(transliterate_replaces_only_listed_characters),
		cmocka_unit_test(transliterate_turns_french_sentence_into_gsm7),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
