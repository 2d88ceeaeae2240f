/* The payment page, pure: (what the link leads to, the due row, the language, the page settings) ->
 * HTTP status and HTML. No SQL, no HTTP library: the listener looks the link up and sends the page. */
#ifndef PAYREMIND_PAYPAGE_H
#define PAYREMIND_PAYPAGE_H

#include <stdint.h>

#include "payremind/html.h"

/* What a link leads to (SPEC §10). */
enum paypage_view {
	PAYPAGE_VALID,   /* 200: the amount, every way to pay, the button */
	PAYPAGE_SPENT,   /* 410: already used or expired: the other ways to pay */
	PAYPAGE_NOTHING, /* 200: the due row is settled or paid: nothing to pay */
	PAYPAGE_UNKNOWN, /* 404: unknown or malformed token: the phone line only */
};

/* The due row behind a link (unused for PAYPAGE_UNKNOWN). */
struct paypage_row {
	const char *account_ref;
	int64_t amount_cents;
	const char *currency;
	int32_t due_date; /* days since 1970-01-01 */
};

/* The paypage group of the configuration. */
struct paypage_conf {
	const char *bank_payee;   /* the payee to add in online banking ("ARO") */
	const char *mail_address; /* "" or NULL: no payment by mail */
	const char *permit;       /* "" or NULL: no permit in the footer */
	int online;               /* checkout.url is set: the page has the "Pay online" button */
};

/* The headers every page carries (name, value), ended by { NULL, NULL }. */
extern const char *const paypage_headers[][2];

/* Write the page for view in lang ("fr", else English) into out; returns its HTTP status. */
int paypage_render(enum paypage_view view, const char *lang, const struct paypage_row *row,
    const struct paypage_conf *conf, struct html *out);
/* "1 234,56 $" (fr, with no-break spaces) or "$1,234.56". */
void paypage_amount(int64_t cents, const char *currency, const char *lang, char *buf, size_t len);
/* "le 15 janvier 2027" / "le 1er mars 2027" (fr, with no-break spaces) or "January 15, 2027". */
void paypage_date(int32_t day, const char *lang, char *buf, size_t len);

#endif
