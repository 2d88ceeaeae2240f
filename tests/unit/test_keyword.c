/* Unit tests of keyword.c: normalisation, whole-message matching, reply language and reply texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "payremind/gsm.h"
#include "payremind/keyword.h"

static void
test_normalize_trims_folds_case_and_strips_accents(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{ " arrêt ", "ARRET" },
		{ "Arret", "ARRET" },
		{ "ARRÊT", "ARRET" },
		{ "ARRE\xcc\x82T", "ARRET" }, /* decomposed: E + combining circumflex */
		{ "STOP ", "STOP" },
		{ "stop.", "STOP" },
		{ "Stop!", "STOP" },
		{ "...stop?!", "STOP" },
		{ "\t\r\nHelp\n", "HELP" },
		{ "\xc2\xa0stop\xe2\x80\xaf", "STOP" }, /* NBSP before, narrow NBSP after */
		{ "ARRÊTER", "ARRETER" },
		{ "Opt out", "OPT OUT" },
		{ "a. b", "A. B" },
		{ "ÉàÇîÔûÿ", "EACIOUY" },
		{ "stop😀", "STOP\x1a" },
		{ "straße",
		    "STRA\x1a"
		    "E" },
		{ "", "" },
		{ "  . ", "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[KEYWORD_NORM_MAX + 1];

		print_message("case: \"%s\"\n", cases[i].in);
		assert_int_equal(keyword_normalize(cases[i].in, out, sizeof(out)), 0);
		assert_string_equal(out, cases[i].out);
	}
}

static void
test_normalize_refuses_invalid_utf8_and_what_does_not_fit(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		int rc;
		const char *out; /* when rc == 0 */
	} cases[] = {
		{ "\xff", 33, -1, NULL },
		{ "STOP\xc3", 33, -1, NULL },     /* truncated sequence */
		{ "\xc0\xaf", 33, -1, NULL },     /* overlong '/' */
		{ "\xed\xa0\x80", 33, -1, NULL }, /* UTF-16 surrogate */
		{ "STOPSTOP", 8, -1, NULL },      /* 8 characters need 9 bytes */
		{ "STOPSTOP", 9, 0, "STOPSTOP" },
		{ "STOP                                                                  ", 5, 0, "STOP" },
		{ "          STOP", 5, 0, "STOP" },
		{ "STOP  STOP", 9, -1, NULL }, /* inner spaces count */
		{ "x", 0, -1, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[64] = "";

		print_message("case %zu\n", i);
		assert_int_equal(keyword_normalize(cases[i].in, out, cases[i].len), cases[i].rc);
		if (cases[i].rc == 0)
			assert_string_equal(out, cases[i].out);
	}
}

static void
test_match_takes_the_whole_message_and_picks_the_reply_language(void **state)
{
	static const struct {
		const char *text;
		enum keyword_action action;
		enum keyword_lang lang;
		const char *keyword; /* NULL: none */
	} cases[] = {
		{ "STOP", KEYWORD_OPT_OUT, KEYWORD_EN, "STOP" },
		{ " arrêt ", KEYWORD_OPT_OUT, KEYWORD_FR, "ARRET" },
		{ "Arret", KEYWORD_OPT_OUT, KEYWORD_FR, "ARRET" },
		{ "ARRÊT", KEYWORD_OPT_OUT, KEYWORD_FR, "ARRET" },
		{ "STOP ", KEYWORD_OPT_OUT, KEYWORD_EN, "STOP" },
		{ "stop.", KEYWORD_OPT_OUT, KEYWORD_EN, "STOP" },
		{ "end", KEYWORD_OPT_OUT, KEYWORD_EN, "END" },
		{ "Quit", KEYWORD_OPT_OUT, KEYWORD_EN, "QUIT" },
		{ "cancel", KEYWORD_OPT_OUT, KEYWORD_EN, "CANCEL" },
		{ "UnSubscribe", KEYWORD_OPT_OUT, KEYWORD_EN, "UNSUBSCRIBE" },
		{ "optout", KEYWORD_OPT_OUT, KEYWORD_EN, "OPTOUT" },
		{ "help", KEYWORD_HELP, KEYWORD_EN, "HELP" },
		{ "AIDE", KEYWORD_HELP, KEYWORD_FR, "AIDE" },
		{ "aidé", KEYWORD_HELP, KEYWORD_FR, "AIDE" },
		{ "Info", KEYWORD_HELP, KEYWORD_EN, "INFO" },
		{ "start", KEYWORD_OPT_IN, KEYWORD_EN, "START" },
		{ "Retour", KEYWORD_OPT_IN, KEYWORD_FR, "RETOUR" },
		{ "ARRÊTER", KEYWORD_NONE, KEYWORD_EN, NULL },
		{ "opt-out", KEYWORD_NONE, KEYWORD_EN, NULL },
		{ "stop please", KEYWORD_NONE, KEYWORD_EN, NULL },
		{ "please stop", KEYWORD_NONE, KEYWORD_EN, NULL },
		{ "STOPSTOP", KEYWORD_NONE, KEYWORD_EN, NULL },
		{ "I paid yesterday, thanks", KEYWORD_NONE, KEYWORD_EN, NULL },
		{ "", KEYWORD_NONE, KEYWORD_EN, NULL },
		{ "\xff", KEYWORD_NONE, KEYWORD_EN, NULL },
		{ NULL, KEYWORD_NONE, KEYWORD_EN, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct keyword_match m;

		print_message("case: \"%s\"\n", cases[i].text ? cases[i].text : "(null)");
		keyword_match(cases[i].text, &m);
		assert_int_equal(m.action, cases[i].action);
		assert_int_equal(m.lang, cases[i].lang);
		if (cases[i].keyword == NULL) {
			assert_int_equal(m.index, -1);
		} else {
			assert_non_null(keyword_name(m.index));
			assert_string_equal(keyword_name(m.index), cases[i].keyword);
		}
	}
}

static void
test_replies_fit_one_gsm7_segment_and_say_who_how_to_stop_and_call(void **state)
{
	static const struct {
		enum keyword_action action;
		enum keyword_lang lang;
		const char *must; /* the instruction the reply has to give */
	} cases[] = {
		{ KEYWORD_OPT_OUT, KEYWORD_EN, "Reply START" },
		{ KEYWORD_OPT_OUT, KEYWORD_FR, "RETOUR" },
		{ KEYWORD_HELP, KEYWORD_EN, "Reply STOP" },
		{ KEYWORD_HELP, KEYWORD_FR, "ARRET" },
		{ KEYWORD_OPT_IN, KEYWORD_EN, "Reply STOP" },
		{ KEYWORD_OPT_IN, KEYWORD_FR, "ARRET" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *text = keyword_reply(cases[i].action, cases[i].lang);
		struct gsm_info info;

		print_message("case: %s %s\n", keyword_action_to_text(cases[i].action),
		    keyword_lang_to_text(cases[i].lang));
		assert_non_null(text);
		assert_int_equal(gsm_analyze(text, &info), 0);
		assert_int_equal(info.coding, GSM_CODING_GSM7);
		assert_true(info.units <= 160);
		assert_int_equal(info.segments, 1);
		assert_non_null(strstr(text, "ARO"));
		/* the number in each language's notation (OQLF in French) */
		assert_non_null(
		    strstr(text, cases[i].lang == KEYWORD_FR ? "1 877 322-1414" : "1-877-322-1414"));
		assert_non_null(strstr(text, cases[i].must));
	}
}

static void
test_replies_differ_by_language_and_none_has_no_reply(void **state)
{
	static const enum keyword_action actions[] = { KEYWORD_OPT_OUT, KEYWORD_HELP, KEYWORD_OPT_IN };
	size_t i;

	(void)state;
	assert_null(keyword_reply(KEYWORD_NONE, KEYWORD_EN));
	assert_null(keyword_reply(KEYWORD_NONE, KEYWORD_FR));
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		const char *en = keyword_reply(actions[i], KEYWORD_EN),
		           *fr = keyword_reply(actions[i], KEYWORD_FR);

		assert_string_not_equal(en, fr);
		assert_true(strstr(fr, "textez") != NULL || strstr(fr, "Textez") != NULL);
		assert_non_null(strstr(en, "Reply"));
	}
}

static void
test_names_and_texts_cover_every_keyword_and_action(void **state)
{
	static const struct {
		enum keyword_action action;
		const char *text;
	} actions[] = {
		{ KEYWORD_NONE, "none" },
		{ KEYWORD_OPT_OUT, "opt_out" },
		{ KEYWORD_HELP, "help" },
		{ KEYWORD_OPT_IN, "opt_in" },
	};
	size_t i;
	int k;

	(void)state;
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		assert_string_equal(keyword_action_to_text(actions[i].action), actions[i].text);
	assert_string_equal(keyword_lang_to_text(KEYWORD_EN), "en");
	assert_string_equal(keyword_lang_to_text(KEYWORD_FR), "fr");
	assert_null(keyword_name(-1));
	assert_null(keyword_name(KEYWORD_COUNT));
	for (k = 0; k < KEYWORD_COUNT; k++) {
		struct keyword_match m;

		keyword_match(keyword_name(k), &m); /* every listed keyword matches itself */
		assert_int_equal(m.index, k);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize_trims_folds_case_and_strips_accents),
		cmocka_unit_test(test_normalize_refuses_invalid_utf8_and_what_does_not_fit),
		cmocka_unit_test(test_match_takes_the_whole_message_and_picks_the_reply_language),
		cmocka_unit_test(test_replies_fit_one_gsm7_segment_and_say_who_how_to_stop_and_call),
		cmocka_unit_test(test_replies_differ_by_language_and_none_has_no_reply),
		cmocka_unit_test(test_names_and_texts_cover_every_keyword_and_action),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
