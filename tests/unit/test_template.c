/* Unit tests of template.c: placeholder and opt-out checks, fr/en rendering, worst-case rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "payremind/gsm.h"
#include "payremind/template.h"

static const struct {
	const char *tmpl;
	const char *lang;
	const char *err; /* NULL: the template is accepted */
} check_cases[] = {
	{ "ARO: paiement dû {link} Texter ARRET pour annuler", "fr", NULL },
	{ "ARO: paiement dû {link} Texter ARRÊT pour annuler", "fr", NULL },
	{ "ARO {link} {amount} {due_date} «ARRET»", "fr", NULL },
	{ "ARO: payment due {link} Reply STOP to opt out", "en", NULL },
	{ "{link}STOP", "en", NULL },
	{ "ARO {link} {amout} ARRET", "fr", "unknown placeholder {amout}" },
	{ "ARO {Link} STOP", "en", "unknown placeholder {Link}" },
	{ "ARO {link} { link } STOP", "en", "unknown placeholder { link }" },
	{ "ARO {link} {} STOP", "en", "unknown placeholder {}" },
	{ "{link} {abcdefghijklmnopqrstuvwxyz0123456789} STOP", "en",
	    "unknown placeholder {abcdefghijklmnopqrstuvwxyz01234...}" },
	{ "ARO {link ARRET", "fr", "unmatched {" },
	{ "ARO {{link}} ARRET", "fr", "unmatched {" },
	{ "ARO link} ARRET", "fr", "unmatched }" },
	{ "ARO: paiement dû. Texter ARRET", "fr", "no {link}" },
	{ "ARO {amount} STOP", "en", "no {link}" },
	{ "ARO {link} Texter arret", "fr", "no ARRET (French opt-out word)" },
	{ "ARO {link} ARRETER", "fr", "no ARRET (French opt-out word)" },
	{ "ARO {link} ARRETÉ", "fr", "no ARRET (French opt-out word)" },
	{ "ARO {link} Reply STOP", "fr", "no ARRET (French opt-out word)" },
	{ "ARO {link} Reply stop", "en", "no STOP (English opt-out word)" },
	{ "ARO {link} NONSTOP STOPPED", "en", "no STOP (English opt-out word)" },
	{ "ARO {link} Texter ARRET", "en", "no STOP (English opt-out word)" },
	{ "ARO {link} STOP", "de", "unknown language \"de\" (fr or en)" },
};

static void
check_accepts_valid_templates_and_names_each_error(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
		char err[128] = "";
		int r = template_check(check_cases[i].tmpl, check_cases[i].lang, err, sizeof(err));

		print_message("case: %s\n", check_cases[i].tmpl);
		if (check_cases[i].err == NULL) {
			assert_int_equal(r, 0);
		} else {
			assert_int_equal(r, -1);
			assert_string_equal(err, check_cases[i].err);
		}
	}
}

static const struct {
	const char *tmpl;
	const char *lang;
	int64_t cents;
	const char *currency;
	const char *out;
} render_cases[] = {
	{ "{amount}", "fr", 123456, "CAD", "1 234,56 $" },
	{ "{amount}", "en", 123456, "CAD", "$1,234.56" },
	{ "{amount}", "fr", 123456, "USD", "1 234,56 USD" },
	{ "{amount}", "en", 123456, "USD", "USD 1,234.56" },
	{ "{amount}", "fr", 5, "CAD", "0,05 $" },
	{ "{amount}", "en", 100, "CAD", "$1.00" },
	{ "{amount}", "fr", 99999, "CAD", "999,99 $" },
	{ "{amount}", "en", 100000000, "CAD", "$1,000,000.00" },
	{ "{amount}", "fr", 100000000, "CAD", "1 000 000,00 $" },
	{ "{amount}", "en", 12345678, "EUR", "EUR 123,456.78" },
	{ "{amount}", "fr", INT64_MAX, "CAD", "92 233 720 368 547 758,07 $" },
	{ "{amount}", "en", INT64_MAX, "CAD", "$92,233,720,368,547,758.07" },
	{ "Échéance {due_date}", "fr", 1, "CAD", "Échéance 2026-11-20" },
	{ "ARO: {amount} dû le {due_date}. Payer: {link} ARRET", "fr", 12345, "CAD",
	    "ARO: 123,45 $ dû le 2026-11-20. Payer: https://pay.aro.ca/p/tok ARRET" },
	{ "ARO: {amount} due {due_date}. Pay: {link} STOP", "en", 12345, "CAD",
	    "ARO: $123.45 due 2026-11-20. Pay: https://pay.aro.ca/p/tok STOP" },
	{ "{link} {link}", "en", 1, "CAD", "https://pay.aro.ca/p/tok https://pay.aro.ca/p/tok" },
	{ "Dossier {ref}, compte {ref}", "fr", 1, "CAD", "Dossier A-1001, compte A-1001" },
};

static void
render_substitutes_per_language(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++) {
		struct template_vars v = { "https://pay.aro.ca/p/tok", render_cases[i].cents,
			render_cases[i].currency, 2026, 11, 20, "A-1001" };
		char out[256], err[128] = "";

		print_message(
		    "case: %s %s %s\n", render_cases[i].lang, render_cases[i].tmpl, render_cases[i].out);
		assert_int_equal(template_render(render_cases[i].tmpl, render_cases[i].lang, &v, out,
		                     sizeof(out), err, sizeof(err)),
		    0);
		assert_string_equal(out, render_cases[i].out);
	}
}

static void
render_french_amount_stays_gsm7(void **state)
{
	struct template_vars v = { "https://pay.aro.ca/p/tok", 123456789, "CAD", 2026, 1, 5, "A-1001" };
	char out[128], err[128];

	(void)state;
	assert_int_equal(
	    template_render("{amount} {due_date}", "fr", &v, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "1 234 567,89 $ 2026-01-05");
	assert_int_equal(gsm_is_gsm7(out), 1);
}

static const struct {
	const char *tmpl;
	const char *lang;
	size_t outlen;
	const char *err;
} render_error_cases[] = {
	{ "{link} {amout}", "fr", 256, "unknown placeholder {amout}" },
	{ "{link", "fr", 256, "unmatched {" },
	{ "{link}", "xx", 256, "unknown language \"xx\" (fr or en)" },
	{ "Payer {link}", "fr", 10, "rendering needs 31 bytes" },
	{ "Payer {link}", "fr", 30, "rendering needs 31 bytes" },
	{ "Payer {link}", "fr", 0, "rendering needs 31 bytes" },
};

static void
render_fails_with_reason_and_leaves_out_empty(void **state)
{
	struct template_vars v = { "https://pay.aro.ca/p/tok", 1, "CAD", 2026, 11, 20, "A-1001" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(render_error_cases) / sizeof(render_error_cases[0]); i++) {
		char out[256] = "untouched", err[128] = "";

		print_message("case: %s\n", render_error_cases[i].err);
		assert_int_equal(template_render(render_error_cases[i].tmpl, render_error_cases[i].lang, &v,
		                     out, render_error_cases[i].outlen, err, sizeof(err)),
		    -1);
		assert_string_equal(err, render_error_cases[i].err);
		if (render_error_cases[i].outlen > 0)
			assert_string_equal(out, "");
		else
			assert_string_equal(out, "untouched");
	}
}

static void
render_fits_a_buffer_of_exactly_the_needed_size(void **state)
{
	struct template_vars v = { "https://pay.aro.ca/p/tok", 1, "CAD", 2026, 11, 20, "A-1001" };
	char out[31], err[128];

	(void)state;
	assert_int_equal(template_render("Payer {link}", "fr", &v, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "Payer https://pay.aro.ca/p/tok");
}

static const struct {
	const char *tmpl;
	const char *lang;
	const char *out;
} longest_cases[] = {
	{ "ARO {link} {amount} {due_date} ARRET", "fr",
	    "ARO https://pay.aro.ca/p/AAAAAAAAAAAAAAAAAAAAAA 92 233 720 368 547 758,07 USD 9999-12-31 "
	    "ARRET" },
	{ "ARO {link} {amount} {due_date} STOP", "en",
	    "ARO https://pay.aro.ca/p/AAAAAAAAAAAAAAAAAAAAAA USD 92,233,720,368,547,758.07 9999-12-31 STOP" },
	{ "ARO {ref} STOP", "en", "ARO WWWWWWWWWWWWWWWW STOP" },
};

static void
render_longest_uses_largest_values(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(longest_cases) / sizeof(longest_cases[0]); i++) {
		char out[256], err[128];

		assert_int_equal(template_render_longest(longest_cases[i].tmpl, longest_cases[i].lang,
		                     "https://pay.aro.ca/p/", out, sizeof(out), err, sizeof(err)),
		    0);
		assert_string_equal(out, longest_cases[i].out);
	}
}

/* Real rows (any currency, any amount, a real 22-character token) never render longer. */
static const struct template_vars real_rows[] = {
	{ "https://pay.aro.ca/p/Zx-9_aQ3bC7dE1fG2hI4jA", 1, "CAD", 2026, 11, 20, "A-1001" },
	{ "https://pay.aro.ca/p/Zx-9_aQ3bC7dE1fG2hI4jA", 123456789012, "CAD", 2026, 1, 1, "A-1001" },
	{ "https://pay.aro.ca/p/Zx-9_aQ3bC7dE1fG2hI4jA", 99999999999999999, "USD", 2099, 12, 31, "A-1001" },
	{ "https://pay.aro.ca/p/Zx-9_aQ3bC7dE1fG2hI4jA", INT64_MAX, "CAD", 2026, 11, 20, "A-1001" },
	{ "https://pay.aro.ca/p/Zx-9_aQ3bC7dE1fG2hI4jA", 1, "CAD", 2026, 11, 20, "ABCDEFGHIJKLMNOP" },
};

static void
render_longest_is_never_shorter_than_a_real_row(void **state)
{
	const char *langs[] = { "fr", "en" };
	const char *tmpl = "{link} {amount} {due_date} {ref} ARRET STOP";
	size_t i, k;

	(void)state;
	for (k = 0; k < 2; k++) {
		char longest[256], err[128];

		assert_int_equal(template_render_longest(tmpl, langs[k], "https://pay.aro.ca/p/", longest,
		                     sizeof(longest), err, sizeof(err)),
		    0);
		for (i = 0; i < sizeof(real_rows) / sizeof(real_rows[0]); i++) {
			char out[256];

			assert_int_equal(template_render(tmpl, langs[k], &real_rows[i], out, sizeof(out), err,
			                     sizeof(err)),
			    0);
			assert_true(strlen(out) <= strlen(longest));
		}
	}
}

/* The SMS as sent: the template of the row's language (French unless "en"), transliterated when asked. */
static void
render_sms_picks_the_language_and_transliterates(void **state)
{
	struct template_vars v = { "https://pay.aro.ca/p/x", 1000, "CAD", 2026, 11, 20, "A-1" };
	char out[256], err[128];

	(void)state;
	assert_int_equal(template_render_sms("Reçu {link} ARRET", "Got {link} STOP", 0, "en", &v, out,
	                     sizeof(out), err, sizeof(err)),
	    0);
	assert_string_equal(out, "Got https://pay.aro.ca/p/x STOP");
	assert_int_equal(template_render_sms("Reçu {link} ARRET", "Got {link} STOP", 0, "fr", &v, out,
	                     sizeof(out), err, sizeof(err)),
	    0);
	assert_string_equal(out, "Reçu https://pay.aro.ca/p/x ARRET");
	assert_int_equal(template_render_sms("Reçu {link} ARRET", "Got {link} STOP", 1, "fr", &v, out,
	                     sizeof(out), err, sizeof(err)),
	    0);
	assert_string_equal(out, "Recu https://pay.aro.ca/p/x ARRET");
	assert_int_equal(
	    template_render_sms("{nope} {link} ARRET", "x", 1, "fr", &v, out, sizeof(out), err, sizeof(err)),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_accepts_valid_templates_and_names_each_error),
		cmocka_unit_test(render_substitutes_per_language),
		cmocka_unit_test(render_french_amount_stays_gsm7),
		cmocka_unit_test(render_fails_with_reason_and_leaves_out_empty),
		cmocka_unit_test(render_fits_a_buffer_of_exactly_the_needed_size),
		cmocka_unit_test(render_longest_uses_largest_values),
		cmocka_unit_test(render_longest_is_never_shorter_than_a_real_row),
		cmocka_unit_test(render_sms_picks_the_language_and_transliterates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
