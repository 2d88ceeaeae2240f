/* SMS templates: placeholder checking and rendering in French and English; pure. */
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payremind/gsm.h"
#include "payremind/template.h"
#include "payremind/token.h"

#define TEMPLATE_NAME_MAX 32 /* longest placeholder name quoted in an error */

enum template_lang { LANG_FR, LANG_EN };

enum piece_kind { PIECE_TEXT, PIECE_LINK, PIECE_AMOUNT, PIECE_DUE_DATE, PIECE_REF };

/* One piece of a template: literal text, or a placeholder. */
struct piece {
	enum piece_kind kind;
	const char *text; /* PIECE_TEXT only */
	size_t len;
};

/* Output that keeps counting past the end of the buffer, so an overflow can say how much it needs. */
struct sbuf {
	char *out;
	size_t cap;
	size_t len;
};

static const struct {
	const char *name;
	enum piece_kind kind;
} placeholders[] = {
	{ "{link}", PIECE_LINK },
	{ "{amount}", PIECE_AMOUNT },
	{ "{due_date}", PIECE_DUE_DATE },
	{ "{ref}", PIECE_REF },
};

/* "fr" or "en"; -1 with the reason otherwise. */
static int
template_lang(const char *lang, enum template_lang *out, char *err, size_t errlen)
{
	if (lang != NULL && strcmp(lang, "fr") == 0) {
		*out = LANG_FR;
		return 0;
	}
	if (lang != NULL && strcmp(lang, "en") == 0) {
		*out = LANG_EN;
		return 0;
	}
	snprintf(err, errlen, "unknown language \"%.8s\" (fr or en)", lang != NULL ? lang : "");
	return -1;
}

/* The placeholder `{...}` of length len at s, or -1 naming it (cut short: never the template text). */
static int
template_placeholder(const char *s, size_t len, struct piece *p, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++) {
		if (strlen(placeholders[i].name) == len && memcmp(placeholders[i].name, s, len) == 0) {
			p->kind = placeholders[i].kind;
			return 0;
		}
	}
	if (len > TEMPLATE_NAME_MAX)
		snprintf(err, errlen, "unknown placeholder %.*s...}", TEMPLATE_NAME_MAX, s);
	else
		snprintf(err, errlen, "unknown placeholder %.*s", (int)len, s);
	return -1;
}

/*
 * Read the piece at *s and advance past it: literal text up to the next brace, or one placeholder.
 * 1 when a piece was read, 0 at the end, -1 on an unknown placeholder or an unmatched brace. Braces
 * are reserved for placeholders (a GSM-7 brace costs 2 septets and a typo must not reach a phone).
 */
static int
template_next(const char **s, struct piece *p, char *err, size_t errlen)
{
	const char *start = *s, *rbrace;
	size_t n;

	if (*start == '\0')
		return 0;
	if (*start == '}') {
		snprintf(err, errlen, "unmatched }");
		return -1;
	}
	if (*start != '{') {
		n = strcspn(start, "{}");
		p->kind = PIECE_TEXT;
		p->text = start;
		p->len = n;
		*s = start + n;
		return 1;
	}
	n = strcspn(start + 1, "{}");
	rbrace = start + 1 + n;
	if (*rbrace != '}') {
		snprintf(err, errlen, "unmatched {");
		return -1;
	}
	if (template_placeholder(start, n + 2, p, err, errlen) == -1)
		return -1;
	*s = rbrace + 1;
	return 1;
}

/* 1 when the byte before/after a match does not continue a word (ASCII or Latin-1 letters). */
static int
template_word_edge(const char *tmpl, const char *at, const char *end)
{
	unsigned char before = at > tmpl ? (unsigned char)at[-1] : ' ';
	unsigned char after = (unsigned char)*end;
	unsigned char lead = at > tmpl + 1 ? (unsigned char)at[-2] : ' ';

	if (isalnum(before) || (before >= 0x80 && before < 0xC0 && lead == 0xC3))
		return 0;
	return !isalnum(after) && after != 0xC3;
}

/* 1 when word appears in tmpl as a whole word, in exactly that case. */
static int
template_has_word(const char *tmpl, const char *word)
{
	const char *at = tmpl;

	while ((at = strstr(at, word)) != NULL) {
		if (template_word_edge(tmpl, at, at + strlen(word)))
			return 1;
		at++;
	}
	return 0;
}

/* The opt-out instruction CWTA requires in each message: ARRET (or ARRÊT) in French, STOP in English. */
static int
template_check_optout(const char *tmpl, enum template_lang lang, char *err, size_t errlen)
{
	if (lang == LANG_FR && !template_has_word(tmpl, "ARRET") &&
	    !template_has_word(tmpl, "ARR\xC3\x8AT")) {
		snprintf(err, errlen, "no ARRET (French opt-out word)");
		return -1;
	}
	if (lang == LANG_EN && !template_has_word(tmpl, "STOP")) {
		snprintf(err, errlen, "no STOP (English opt-out word)");
		return -1;
	}
	return 0;
}

int
template_check(const char *tmpl, const char *lang, char *err, size_t errlen)
{
	enum template_lang l;
	struct piece p;
	const char *s = tmpl;
	int has_link = 0, r;

	if (template_lang(lang, &l, err, errlen) == -1)
		return -1;
	while ((r = template_next(&s, &p, err, errlen)) == 1)
		has_link |= p.kind == PIECE_LINK;
	if (r == -1)
		return -1;
	if (!has_link) {
		snprintf(err, errlen, "no {link}");
		return -1;
	}
	return template_check_optout(tmpl, l, err, errlen);
}

/* Append n bytes, copying what fits (leaving room for the NUL) and counting all of them. */
static void
sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len < b->cap) {
		size_t room = b->cap - 1 - b->len;

		memcpy(b->out + b->len, s, n < room ? n : room);
	}
	b->len += n;
}

/* Digits of v grouped by three with sep ("1 234 567" or "1,234,567"), into buf of 32 bytes. */
static void
template_group_digits(uint64_t v, char sep, char *buf)
{
	char digits[24];
	int n = snprintf(digits, sizeof(digits), "%" PRIu64, v), i, w = 0;

	for (i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[w++] = sep;
		buf[w++] = digits[i];
	}
	buf[w] = '\0';
}

/*
 * The amount as a Canadian reader expects it: "1 234,56 $" in French (the separator is a plain
 * space: a NBSP would force the whole message into UCS-2), "$1,234.56" in English; another
 * currency is written as its code, "1 234,56 USD" / "USD 1,234.56".
 */
static void
template_format_amount(int64_t cents, const char *currency, enum template_lang lang, char *buf, size_t len)
{
	uint64_t mag = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
	const char *sign = cents < 0 ? "-" : "";
	unsigned frac = (unsigned)(mag % 100);
	int cad = currency == NULL || strcmp(currency, "CAD") == 0;
	char units[32];

	template_group_digits(mag / 100, lang == LANG_FR ? ' ' : ',', units);
	if (lang == LANG_FR)
		snprintf(buf, len, "%s%s,%02u %s", sign, units, frac, cad ? "$" : currency);
	else if (cad)
		snprintf(buf, len, "%s$%s.%02u", sign, units, frac);
	else
		snprintf(buf, len, "%s%s %s.%02u", sign, currency, units, frac);
}

void
template_amount(int64_t cents, const char *currency, const char *lang, char *buf, size_t len)
{
	template_format_amount(cents, currency, strcmp(lang, "fr") == 0 ? LANG_FR : LANG_EN, buf, len);
}

/* Append a piece: literal text as it is, a placeholder as its value. */
static void
template_emit(struct sbuf *b, const struct piece *p, enum template_lang lang, const struct template_vars *v)
{
	char buf[64];

	switch (p->kind) {
	case PIECE_TEXT:
		sbuf_add(b, p->text, p->len);
		break;
	case PIECE_LINK:
		sbuf_add(b, v->link != NULL ? v->link : "", v->link != NULL ? strlen(v->link) : 0);
		break;
	case PIECE_AMOUNT:
		template_format_amount(v->amount_cents, v->currency, lang, buf, sizeof(buf));
		sbuf_add(b, buf, strlen(buf));
		break;
	case PIECE_DUE_DATE:
		snprintf(buf, sizeof(buf), "%04d-%02d-%02d", v->due_year, v->due_month, v->due_day);
		sbuf_add(b, buf, strlen(buf));
		break;
	case PIECE_REF:
		sbuf_add(b, v->account_ref != NULL ? v->account_ref : "",
		    v->account_ref != NULL ? strlen(v->account_ref) : 0);
		break;
	}
}

/*
 * Render into out. On any failure out is left empty (when it has room for the NUL), so a caller
 * that ignores the result still cannot send half a message; a too-small buffer reports the size
 * needed, NUL included.
 */
int
template_render(const char *tmpl, const char *lang, const struct template_vars *vars, char *out,
    size_t outlen, char *err, size_t errlen)
{
	struct sbuf b = { out, outlen, 0 };
	enum template_lang l;
	struct piece p = { 0 };
	int r = -1;

	if (template_lang(lang, &l, err, errlen) == 0)
		while ((r = template_next(&tmpl, &p, err, errlen)) == 1)
			template_emit(&b, &p, l, vars);
	if (r == 0 && b.len + 1 > outlen) {
		snprintf(err, errlen, "rendering needs %zu bytes", b.len + 1);
		r = -1;
	}
	if (outlen > 0)
		out[r == 0 ? b.len : 0] = '\0';
	return r;
}

/*
 * The worst case for the segment check: the largest amount, a 3-letter currency code (longer than
 * "$"), a link of base_url + TOKEN_LEN characters and an account reference of TEMPLATE_REF_LONGEST.
 * Token characters are all GSM-7 basic, so any filler of that length costs what a real token costs.
 */
int
template_render_longest(const char *tmpl, const char *lang, const char *base_url, char *out, size_t outlen,
    char *err, size_t errlen)
{
	char link[2048], ref[TEMPLATE_REF_LONGEST + 1];
	struct template_vars v = { link, INT64_MAX, "USD", 9999, 12, 31, ref };
	size_t blen = strlen(base_url);

	if (blen + TOKEN_LEN + 1 > sizeof(link)) {
		snprintf(err, errlen, "base_url longer than %zu bytes", sizeof(link) - TOKEN_LEN - 1);
		return -1;
	}
	memcpy(link, base_url, blen);
	memset(link + blen, 'A', TOKEN_LEN);
	link[blen + TOKEN_LEN] = '\0';
	memset(ref, 'W', TEMPLATE_REF_LONGEST);
	ref[TEMPLATE_REF_LONGEST] = '\0';
	return template_render(tmpl, lang, &v, out, outlen, err, errlen);
}

int
template_render_sms(const char *fr, const char *en, int transliterate, const char *lang,
    const struct template_vars *vars, char *out, size_t outlen, char *err, size_t errlen)
{
	int is_en = strcmp(lang, "en") == 0;
	char *t;

	if (template_render(is_en ? en : fr, is_en ? "en" : "fr", vars, out, outlen, err, errlen) == -1)
		return -1;
	if (!transliterate)
		return 0;
	if ((t = gsm_transliterate(out)) == NULL) {
		snprintf(err, errlen, "transliteration failed");
		return -1;
	}
	snprintf(out, outlen, "%s", t);
	free(t);
	return 0;
}
