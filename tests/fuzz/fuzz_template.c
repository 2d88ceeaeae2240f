/*
 * libFuzzer target: SMS templates (template_check, template_render, template_render_longest). Input:
 * the language ("fr", "en" or anything), then "AMOUNT_CENTS CURRENCY YYYY-MM-DD [ACCOUNT_REF]", then the link, each
 * on a line; the rest is the template. The values are kept to what a due row can hold (a currency is
 * 3 upper-case letters, "-" for none; a real date). Checks: a checked template renders; the size a
 * render reports is exact (that size works, one byte less fails and leaves the buffer empty); the
 * output is valid UTF-8 when the inputs are, has no brace of its own and holds the link; an amount
 * renders as a number that reads back to the cents in both languages, the same as template_amount.
 */
#include <inttypes.h>
#include <limits.h>

#include "fuzz.h"
#include "payremind/gsm.h"
#include "payremind/template.h"

/* The values line; anything it does not say keeps a plausible default. What follows the date is the
 * account reference (none when empty). */
static void
parse_values(const char *line, struct template_vars *v, char currency[4])
{
	long long cents = 12345;
	char cur[16] = "CAD";
	int y = 2026, m = 11, d = 20, end = -1;

	if (sscanf(line, "%lld %15s %d-%d-%d %n", &cents, cur, &y, &m, &d, &end) < 1)
		cents = 12345;
	v->account_ref = end >= 0 && line[end] != '\0' ? line + end : NULL;
	v->amount_cents = cents;
	if (strcmp(cur, "-") == 0)
		v->currency = NULL;
	else if (strlen(cur) == 3 && strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3)
		v->currency = memcpy(currency, cur, 4);
	else
		v->currency = "CAD";
	v->due_year = 1 + (int)((unsigned)y % 9999u);
	v->due_month = 1 + (int)((unsigned)m % 12u);
	v->due_day = 1 + (int)((unsigned)d % 31u);
}

/* Render into a buffer of exactly the size the template says it needs, after checking that one byte
 * less is refused. The output (malloc'ed), or NULL when the template is refused (err says why). */
static char *
render_exact(const char *tmpl, const char *lang, const struct template_vars *v, const char *base_url)
{
	char one[1], err[256], *out, *small;
	size_t need = 0;
	int rc;

	rc = base_url ? template_render_longest(tmpl, lang, base_url, one, sizeof(one), err, sizeof(err))
	              : template_render(tmpl, lang, v, one, sizeof(one), err, sizeof(err));
	FUZZ_CHECK(one[0] == '\0');
	if (rc == 0)
		return strdup("");
	FUZZ_CHECK(fuzz_reason_ok(err, sizeof(err)));
	if (sscanf(err, "rendering needs %zu bytes", &need) != 1)
		return NULL;
	FUZZ_CHECK(need > 1);
	out = fuzz_xmalloc(need);
	rc = base_url ? template_render_longest(tmpl, lang, base_url, out, need, err, sizeof(err))
	              : template_render(tmpl, lang, v, out, need, err, sizeof(err));
	FUZZ_CHECK(rc == 0 && strlen(out) == need - 1);
	small = fuzz_xmalloc(need - 1);
	rc = base_url ? template_render_longest(tmpl, lang, base_url, small, need - 1, err, sizeof(err))
	              : template_render(tmpl, lang, v, small, need - 1, err, sizeof(err));
	FUZZ_CHECK(rc == -1 && small[0] == '\0');
	free(small);
	return out;
}

/* Digits grouped by three with sep, the first group 1 to 3 digits ("1 234 567"), into *out. */
static int
read_units(const char *s, size_t n, char sep, uint64_t *out)
{
	size_t i, run = 0, groups = 0;
	uint64_t v = 0;

	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == sep) {
			if (run == 0 || run > 3 || (groups > 0 && run != 3))
				return -1;
			groups++;
			run = 0;
			continue;
		}
		if (s[i] < '0' || s[i] > '9' || v > UINT64_MAX / 10 - 1)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
		run++;
	}
	*out = v;
	return 0;
}

/* Read back "[-]1 234,56 $" / "[-]1 234,56 USD" (fr) or "[-]$1,234.56" / "[-]USD 1,234.56" (en). */
static int
read_amount(const char *s, int fr, const char *currency, int *neg, uint64_t *mag)
{
	const char *cur = currency == NULL || strcmp(currency, "CAD") == 0 ? "$" : currency;
	size_t n, clen = strlen(cur), pre = 0;
	char dot = fr ? ',' : '.';
	uint64_t units;

	*neg = *s == '-';
	s += *neg;
	n = strlen(s);
	if (fr) {
		if (n < clen + 1 || strcmp(s + n - clen, cur) != 0 || s[n - clen - 1] != ' ')
			return -1;
		n -= clen + 1;
	} else {
		pre = clen + (strcmp(cur, "$") != 0); /* "USD " */
		if (n < pre || strncmp(s, cur, clen) != 0 || (pre > clen && s[clen] != ' '))
			return -1;
		s += pre;
		n -= pre;
	}
	if (n < 4 || s[n - 3] != dot || s[n - 2] < '0' || s[n - 2] > '9' || s[n - 1] < '0' || s[n - 1] > '9')
		return -1;
	if (read_units(s, n - 3, fr ? ' ' : ',', &units) == -1)
		return -1;
	*mag = units * 100 + (uint64_t)(s[n - 2] - '0') * 10 + (uint64_t)(s[n - 1] - '0');
	return 0;
}

static void
check_amount(const struct template_vars *v)
{
	uint64_t want =
	    v->amount_cents < 0 ? (uint64_t)0 - (uint64_t)v->amount_cents : (uint64_t)v->amount_cents;
	static const char *const langs[] = { "fr", "en" };
	char out[128], err[256];
	uint64_t mag;
	int neg;
	size_t i;

	for (i = 0; i < 2; i++) {
		char direct[128];

		FUZZ_CHECK(template_render("{amount}", langs[i], v, out, sizeof(out), err, sizeof(err)) == 0);
		template_amount(v->amount_cents, v->currency, langs[i], direct, sizeof(direct));
		FUZZ_CHECK(strcmp(out, direct) == 0);
		FUZZ_CHECK(read_amount(out, i == 0, v->currency, &neg, &mag) == 0);
		FUZZ_CHECK(neg == (v->amount_cents < 0) && mag == want);
	}
}

/* What any successful rendering must be (v NULL: the longest rendering, its own reference). */
static void
check_output(const char *out, const char *tmpl, const struct template_vars *v, const char *link, int checked)
{
	const char *ref = v != NULL && v->account_ref != NULL ? v->account_ref : "";

	if (fuzz_utf8_valid(tmpl) && fuzz_utf8_valid(link) && fuzz_utf8_valid(ref))
		FUZZ_CHECK(fuzz_utf8_valid(out));
	if (strpbrk(link, "{}") == NULL && strpbrk(ref, "{}") == NULL)
		FUZZ_CHECK(strpbrk(out, "{}") == NULL);
	if (checked && link[0] != '\0' && v != NULL)
		FUZZ_CHECK(strstr(out, link) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	char *lang = fuzz_take_line(&in), *values = fuzz_take_line(&in), *link = fuzz_take_line(&in);
	char *tmpl = fuzz_strndup(in.p, in.n), *out, err[256], currency[4];
	struct template_vars v = { 0 };
	struct gsm_info info;
	int checked;

	parse_values(values, &v, currency);
	v.link = link;
	check_amount(&v);
	checked = template_check(tmpl, lang, err, sizeof(err)) == 0;
	FUZZ_CHECK(checked || fuzz_reason_ok(err, sizeof(err)));
	FUZZ_CHECK(!checked || strcmp(lang, "fr") == 0 || strcmp(lang, "en") == 0);
	out = render_exact(tmpl, lang, &v, NULL);
	FUZZ_CHECK(!checked || out != NULL);
	if (out != NULL)
		check_output(out, tmpl, &v, link, checked);
	free(out);
	out = render_exact(tmpl, lang, NULL, link);
	if (out != NULL) {
		check_output(out, tmpl, NULL, link, checked);
		FUZZ_CHECK(!fuzz_utf8_valid(out) || gsm_analyze(out, &info) == 0);
	}
	free(out);
	free(tmpl);
	free(link);
	free(values);
	free(lang);
	return 0;
}
