/* SMS templates: placeholder checking and rendering in French and English; pure. */
#ifndef PAYREMIND_TEMPLATE_H
#define PAYREMIND_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

/* Account references up to this many characters are covered by the start-up segment check (a longer
 * one may cost a segment more than templates.max_segments). */
#define TEMPLATE_REF_LONGEST 16

/* The values a template may use: {link}, {amount}, {due_date}, {ref}. */
struct template_vars {
	const char *link;     /* token.base_url + token */
	int64_t amount_cents; /* rendered per language: "1 234,56 $" (fr), "$1,234.56" (en) */
	const char *currency; /* "CAD" renders as "$"; any other code is written after the amount */
	int due_year, due_month, due_day; /* rendered "2026-11-20" */
	const char *account_ref;          /* billing's account reference (online banking's account number) */
};

/* An amount as the language writes it ("1 234,56 $" for lang "fr", "$1,234.56" otherwise), with plain
 * spaces (the SMS alphabet has no NBSP). */
void template_amount(int64_t cents, const char *currency, const char *lang, char *buf, size_t len);

/* Check a template: every placeholder known, {link} present, the opt-out word present ("ARRET" for
 * lang "fr", "STOP" for "en"). 0 or -1 with the reason in err. */
int template_check(const char *tmpl, const char *lang, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Render into out (NUL-terminated). 0, or -1 with the reason in err (unknown placeholder, too long). */
int template_render(const char *tmpl, const char *lang, const struct template_vars *vars, char *out,
    size_t outlen, char *err, size_t errlen) __attribute__((warn_unused_result));
/* A reminder's SMS as sent: the French template unless lang is "en", rendered, then transliterated to
 * GSM-7 when asked (templates.transliterate). Same contract as template_render. */
int template_render_sms(const char *fr, const char *en, int transliterate, const char *lang,
    const struct template_vars *vars, char *out, size_t outlen, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Render with the longest values any row can produce (largest amount, a link of base_url + 22
 * characters), for the start-up segment check. Same contract as template_render. */
int template_render_longest(const char *tmpl, const char *lang, const char *base_url, char *out,
    size_t outlen, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
