/* paypage: each view's status and texts, amounts and dates per language, every way to pay, the
 * security headers, and nothing a row carries ever becoming markup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "payremind/paypage.h"
#include "payremind/tz.h"

#define NBSP "\xc2\xa0"

static const struct paypage_conf conf = { "ARO", "", "", 1 };

static char page[16384];

static int
render(enum paypage_view v, const char *lang, const struct paypage_row *row, const struct paypage_conf *c)
{
	struct html h;
	int status;

	html_init(&h);
	status = paypage_render(v, lang, row, c, &h);
	assert_false(h.failed);
	assert_true(strlen(html_str(&h)) < sizeof(page));
	strcpy(page, html_str(&h));
	html_free(&h);
	return status;
}

static void
has(const char *needle)
{
	if (strstr(page, needle) == NULL)
		fail_msg("page lacks \"%s\":\n%s", needle, page);
}

static void
lacks(const char *needle)
{
	if (strstr(page, needle) != NULL)
		fail_msg("page has \"%s\":\n%s", needle, page);
}

static void
amounts_and_dates_per_language(void **state)
{
	static const struct {
		int64_t cents;
		const char *cur, *lang, *want;
	} amounts[] = {
		{ 123456, "CAD", "fr", "1" NBSP "234,56" NBSP "$" },
		{ 123456, "CAD", "en", "$1,234.56" },
		{ 75, "CAD", "fr", "0,75" NBSP "$" },
		{ 100000000, "CAD", "fr", "1" NBSP "000" NBSP "000,00" NBSP "$" },
		{ 5000, "USD", "en", "USD 50.00" },
	};
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		paypage_amount(amounts[i].cents, amounts[i].cur, amounts[i].lang, buf, sizeof(buf));
		assert_string_equal(buf, amounts[i].want);
	}
	paypage_date(tz_days_from_civil(2027, 1, 15), "fr", buf, sizeof(buf));
	assert_string_equal(buf, "le" NBSP "15" NBSP "janvier" NBSP "2027");
	paypage_date(tz_days_from_civil(2027, 3, 1), "fr", buf, sizeof(buf));
	assert_string_equal(buf, "le" NBSP "1er" NBSP "mars" NBSP "2027");
	paypage_date(tz_days_from_civil(2027, 8, 9), "fr", buf, sizeof(buf));
	assert_string_equal(buf, "le" NBSP "9" NBSP "août" NBSP "2027");
	paypage_date(tz_days_from_civil(2027, 1, 15), "en", buf, sizeof(buf));
	assert_string_equal(buf, "January 15, 2027");
}

static void
valid_link_gives_every_way_to_pay_in_french(void **state)
{
	struct paypage_row row = { "A-1001", 123456, "CAD", tz_days_from_civil(2027, 1, 15) };

	(void)state;
	assert_int_equal(render(PAYPAGE_VALID, "fr", &row, &conf), 200);
	has("<html lang=\"fr\">");
	has("ARO vous écrit au sujet du dossier <span class=\"ref\">A-1001</span>.");
	has("1" NBSP "234,56" NBSP "$");
	has("le" NBSP "15" NBSP "janvier" NBSP "2027");
	has("<form method=\"post\"><button type=\"submit\">Payer en ligne</button></form>");
	has("1" NBSP "877" NBSP "322-1414</a>, du lundi au vendredi, de 8" NBSP "h à 20" NBSP
	    "h (heure de l'Est)");
	has("ajoutez <strong>ARO</strong> comme fournisseur (ou bénéficiaire), puis inscrivez <strong><span "
	    "class=\"ref\">A-1001</span></strong>");
	has("répondez ARRET");
	has("<a href=\"?lang=en\" lang=\"en\">English</a>");
	lacks("Par la poste"); /* no mail address configured */
	lacks("permis");
	lacks("<script");
	/* without a portal, no button: the other ways only */
	struct paypage_conf offline = { "ARO", "", "", 0 };
	assert_int_equal(render(PAYPAGE_VALID, "fr", &row, &offline), 200);
	lacks("<button");
	has("1" NBSP "877" NBSP "322-1414");
}

static void
valid_link_in_english_with_mail_and_permit(void **state)
{
	struct paypage_row row = { "A-1001", 123456, "CAD", tz_days_from_civil(2027, 1, 15) };
	struct paypage_conf c = { "ARO Recouvrement", "ARO, C.P. 123, Montréal QC H3C 0A1", "123456", 1 };

	(void)state;
	assert_int_equal(render(PAYPAGE_VALID, "en", &row, &c), 200);
	has("<html lang=\"en\">");
	has("$1,234.56");
	has("January 15, 2027");
	has("<button type=\"submit\">Pay online</button>");
	has("1-877-322-1414</a>, Monday to Friday");
	has("add <strong>ARO Recouvrement</strong> as a payee, then enter <strong><span class=\"ref\">A-1001</span></strong>");
	has("By mail: ARO, C.P. 123, Montréal QC H3C 0A1");
	has("Collection agency permit number 123456, issued by the Office de la protection du consommateur.");
	has("reply STOP");
}

static void
spent_nothing_and_unknown_views(void **state)
{
	struct paypage_row row = { "A-1001", 5000, "CAD", tz_days_from_civil(2027, 1, 15) };

	(void)state;
	assert_int_equal(render(PAYPAGE_SPENT, "fr", &row, &conf), 410);
	has("Ce lien a déjà servi ou n'est plus valide.");
	has("322-1414");
	has("inscrivez <strong><span class=\"ref\">A-1001</span></strong>");
	lacks("<button");
	assert_int_equal(render(PAYPAGE_NOTHING, "en", &row, &conf), 200);
	has("No payment is due on this account.");
	lacks("<button");
	lacks("50.00");
	assert_int_equal(render(PAYPAGE_UNKNOWN, "fr", NULL, &conf), 404);
	has("Ce lien n'est pas valide.");
	has("322-1414");
	lacks("A-1001");
	lacks("<button");
	assert_int_equal(render(PAYPAGE_UNKNOWN, "xx", NULL, &conf), 404);
	has("<html lang=\"en\">");
}

static void
what_a_row_carries_never_becomes_markup(void **state)
{
	struct paypage_row row = { "<script>alert(1)</script>\"'&", 100, "<b>",
		tz_days_from_civil(2027, 1, 15) };
	struct paypage_conf c = { "<img src=x>", "<a href=//evil>", "<i>", 1 };

	(void)state;
	assert_int_equal(render(PAYPAGE_VALID, "en", &row, &c), 200);
	lacks("<script>");
	lacks("<img");
	lacks("<a href=//evil>");
	lacks("<b>");
	lacks("<i>");
	has("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;");
	has("&lt;img src=x&gt;");
}

static void
headers_forbid_caching_framing_scripts_and_referrers(void **state)
{
	int i, csp = 0;

	(void)state;
	for (i = 0; paypage_headers[i][0] != NULL; i++) {
		if (strcmp(paypage_headers[i][0], "Content-Security-Policy") == 0) {
			csp = 1;
			assert_non_null(strstr(paypage_headers[i][1], "default-src 'none'"));
			assert_non_null(strstr(paypage_headers[i][1], "frame-ancestors 'none'"));
			assert_null(strstr(paypage_headers[i][1], "script-src"));
		}
	}
	assert_true(csp);
	assert_string_equal(paypage_headers[1][1], "no-store");
	assert_string_equal(paypage_headers[2][1], "no-referrer");
	assert_string_equal(paypage_headers[3][1], "noindex");
	assert_string_equal(paypage_headers[4][1], "nosniff");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(amounts_and_dates_per_language),
		cmocka_unit_test(valid_link_gives_every_way_to_pay_in_french),
		cmocka_unit_test(valid_link_in_english_with_mail_and_permit),
		cmocka_unit_test(spent_nothing_and_unknown_views),
		cmocka_unit_test(what_a_row_carries_never_becomes_markup),
		cmocka_unit_test(headers_forbid_caching_framing_scripts_and_referrers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
