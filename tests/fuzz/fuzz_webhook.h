/* What the webhook targets check of a parsed request, whatever the dialect: the fields the listener
 * hands to the database and the keyword matcher must be what webhook.h promises. */
#ifndef PAYREMIND_FUZZ_WEBHOOK_H
#define PAYREMIND_FUZZ_WEBHOOK_H

#include "fuzz.h"
#include "payremind/keyword.h"
#include "payremind/webhook.h"

/* 1 when s is 1..max printable ASCII characters without spaces (ids, safe in logs and SQL texts). */
static inline int
fuzz_is_token(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	for (i = 0; i < n; i++) {
		if (s[i] <= ' ' || s[i] > '~')
			return 0;
	}
	return n >= 1 && n <= max;
}

/* 1 when s is "+1" and ten NANP digits (area code and exchange starting with 2-9). */
static inline int
fuzz_is_nanp(const char *s)
{
	return strlen(s) == 12 && s[0] == '+' && s[1] == '1' && strspn(s + 2, "0123456789") == 10 &&
	    s[2] >= '2' && s[5] >= '2';
}

/* 1 when s is 8-4-4-4-12 hexadecimal digits. */
static inline int
fuzz_is_uuid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;

	if (strlen(s) != sizeof(shape) - 1)
		return 0;
	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == '-' ? s[i] != '-'
		                    : strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0')
			return 0;
	}
	return 1;
}

/* The longest run of digits in s, the separators "+-.() " ignored (what could be a phone number). */
static inline size_t
fuzz_digit_run(const char *s)
{
	size_t run = 0, best = 0;

	for (; *s != '\0'; s++) {
		if (*s >= '0' && *s <= '9')
			best = ++run > best ? run : best;
		else if (strchr("+-.() ", *s) == NULL)
			run = 0;
	}
	return best;
}

/* 1 when s is two capital letters and 32 hexadecimal digits (a Twilio SID). */
static inline int
fuzz_is_twilio_sid(const char *s)
{
	return strlen(s) == 34 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' &&
	    strspn(s + 2, "0123456789abcdefABCDEF") == 32;
}

/* What a log line may show of a value a client sent: ids as they are, never 7 digits of a number. */
static inline void
fuzz_check_log_value(const char *v)
{
	char buf[16];
	const char *shown = webhook_log_value(v, buf, sizeof(buf));

	FUZZ_CHECK(shown == v || shown == buf);
	if (fuzz_is_uuid(v) || fuzz_is_twilio_sid(v))
		FUZZ_CHECK(shown == v);
	else
		FUZZ_CHECK(fuzz_digit_run(shown) < 7);
	FUZZ_CHECK(shown == v || strlen(buf) < sizeof(buf));
}

/*
 * Check what the listener checks before using any parameter: webhook_params_check accepts exactly
 * the requests whose names and values are all valid UTF-8 and whose names are all different. 1 when
 * it accepted p.
 */
static inline int
fuzz_check_params(const struct webhook_params *p)
{
	char err[256];
	int valid = 1, rc;
	size_t i, j;

	for (i = 0; i < p->n && valid; i++) {
		valid = fuzz_utf8_valid(p->v[i].name) &&
		    (p->v[i].value == NULL || fuzz_utf8_valid(p->v[i].value));
		for (j = 0; j < i && valid; j++)
			valid = strcmp(p->v[i].name, p->v[j].name) != 0;
	}
	rc = webhook_params_check(p, err, sizeof(err));
	FUZZ_CHECK((rc == 0) == valid);
	FUZZ_CHECK(rc == 0 || fuzz_reason_ok(err, sizeof(err)));
	/* a reason never echoes a value (it could be a phone number) */
	FUZZ_CHECK(rc == 0 || fuzz_digit_run(err) < 7);
	return rc == 0;
}

/* Check an inbound message the way the listener uses it: numbers and ids safe to store and to log,
 * the text the value of its name, matched against the keywords. */
static inline void
fuzz_check_inbound(enum conf_dialect d, const struct webhook_params *p, const char *text_name)
{
	struct webhook_inbound in;
	struct keyword_match m;
	char err[256];

	if (webhook_inbound_parse(d, p, &in, err, sizeof(err)) == -1) {
		FUZZ_CHECK(fuzz_reason_ok(err, sizeof(err)));
		return;
	}
	FUZZ_CHECK(fuzz_is_nanp(in.from));
	FUZZ_CHECK(fuzz_is_token(in.to, WEBHOOK_ID_MAX));
	FUZZ_CHECK(fuzz_is_token(in.id, WEBHOOK_ID_MAX));
	FUZZ_CHECK(in.text != NULL && in.text == webhook_params_get(p, text_name));
	FUZZ_CHECK(fuzz_utf8_valid(in.text));
	fuzz_check_log_value(in.id);
	fuzz_check_log_value(in.to);
	keyword_match(in.text, &m);
	FUZZ_CHECK((m.action == KEYWORD_NONE) == (m.index == -1));
	FUZZ_CHECK(m.index == -1 || keyword_reply(m.action, m.lang) != NULL);
}

/* Check a delivery report: ids and codes safe to store, the status one of the vocabulary. */
static inline void
fuzz_check_dlr(enum conf_dialect d, const struct webhook_params *p)
{
	struct webhook_dlr dlr;
	char err[256];
	const char *text;

	if (webhook_dlr_parse(d, p, &dlr, err, sizeof(err)) == -1) {
		FUZZ_CHECK(fuzz_reason_ok(err, sizeof(err)));
		return;
	}
	FUZZ_CHECK(fuzz_is_token(dlr.ref, WEBHOOK_ID_MAX));
	FUZZ_CHECK(dlr.gateway_id[0] == '\0' || fuzz_is_token(dlr.gateway_id, WEBHOOK_ID_MAX));
	FUZZ_CHECK((unsigned)dlr.status < WEBHOOK_DLR_COUNT);
	text = webhook_dlr_status_to_text(dlr.status);
	FUZZ_CHECK(text != NULL && (strcmp(text, "other") != 0) == (dlr.status != WEBHOOK_DLR_OTHER));
	FUZZ_CHECK(dlr.raw_status[0] != '\0' && memchr(dlr.raw_status, '\0', sizeof(dlr.raw_status)) != NULL);
	FUZZ_CHECK(strlen(dlr.code) <= WEBHOOK_CODE_MAX &&
	    strspn(dlr.code, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_") ==
	        strlen(dlr.code));
	FUZZ_CHECK(dlr.by_sid == (d == CONF_DIALECT_TWILIO));
	FUZZ_CHECK(dlr.opt_out == (d == CONF_DIALECT_TWILIO && strcmp(dlr.code, "21610") == 0));
	FUZZ_CHECK(d != CONF_DIALECT_KANNEL || strcmp(dlr.code, dlr.raw_status) == 0);
	FUZZ_CHECK(d != CONF_DIALECT_JSON || dlr.status != WEBHOOK_DLR_OTHER);
	FUZZ_CHECK(webhook_is_uuid(dlr.ref) == fuzz_is_uuid(dlr.ref));
	fuzz_check_log_value(dlr.ref);
	fuzz_check_log_value(dlr.code);
}

/* Check a payment result from the portal: what is stored is what the SPEC allows. */
static inline void
fuzz_check_payment(const struct webhook_params *p)
{
	struct webhook_payment pay;
	char err[256];

	if (webhook_payment_parse(p, &pay, err, sizeof(err)) == -1) {
		FUZZ_CHECK(fuzz_reason_ok(err, sizeof(err)));
		return;
	}
	FUZZ_CHECK(fuzz_is_token(pay.id, WEBHOOK_PAYMENT_ID_MAX));
	FUZZ_CHECK(fuzz_is_uuid(pay.reference));
	FUZZ_CHECK(strcmp(pay.status, "paid") == 0 || strcmp(pay.status, "failed") == 0 ||
	    strcmp(pay.status, "cancelled") == 0);
	FUZZ_CHECK(pay.amount_cents >= 0);
}

/* Everything the listener does with the parameters of a request of dialect d, in its order. */
static inline void
fuzz_check_request(enum conf_dialect d, const struct webhook_params *p)
{
	if (!fuzz_check_params(p))
		return;
	fuzz_check_inbound(d, p, d == CONF_DIALECT_TWILIO ? "Body" : "text");
	fuzz_check_dlr(d, p);
	if (d == CONF_DIALECT_JSON)
		fuzz_check_payment(p);
}

#endif
