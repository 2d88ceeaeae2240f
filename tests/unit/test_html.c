/* html: what a request or a database row carries comes out as text, never as markup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "payremind/html.h"

static void
text_is_escaped_and_literals_are_not(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "A-1001", "A-1001" },
		{ "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;" },
		{ "\" onmouseover=\"x", "&quot; onmouseover=&quot;x" },
		{ "l'\xc3\xa9t\xc3\xa9 & co", "l&#39;\xc3\xa9t\xc3\xa9 &amp; co" },
		{ "&amp;", "&amp;amp;" },
		{ "a\x01"
		  "b\r\nc\td",
		    "ab\nc\td" },
		{ "", "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct html h;

		html_init(&h);
		html_lit(&h, "<p class=\"x\">");
		html_text(&h, cases[i].in);
		html_lit(&h, "</p>");
		assert_false(h.failed);
		assert_int_equal(strlen(html_str(&h)), strlen("<p class=\"x\"></p>") + strlen(cases[i].want));
		assert_memory_equal(
		    html_str(&h) + strlen("<p class=\"x\">"), cases[i].want, strlen(cases[i].want));
		assert_string_equal(html_str(&h) + strlen(html_str(&h)) - 4, "</p>");
		html_free(&h);
	}
}

static void
formatted_text_is_escaped_as_a_whole(void **state)
{
	struct html h;
	char big[600];

	(void)state;
	html_init(&h);
	assert_string_equal(html_str(&h), "");
	html_textf(&h, "%s: %d <%s>", "Réf", 42, "b&c");
	assert_string_equal(html_str(&h), "Réf: 42 &lt;b&amp;c&gt;");
	memset(big, '<', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	html_textf(&h, "%s", big); /* longer than the writer's small buffer */
	assert_int_equal(strlen(html_str(&h)), strlen("Réf: 42 &lt;b&amp;c&gt;") + 4 * (sizeof(big) - 1));
	html_text(&h, NULL);
	html_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_is_escaped_and_literals_are_not),
		cmocka_unit_test(formatted_text_is_escaped_as_a_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
