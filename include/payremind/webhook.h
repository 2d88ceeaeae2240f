/* Webhook requests, pure: form and JSON parsing, field checks (UTF-8, repeats), the Twilio signature,
 * webhook keys, each gateway's delivery-report status mapped onto one vocabulary, what of a request may
 * be logged, and the client address behind trusted proxies. */
#ifndef PAYREMIND_WEBHOOK_H
#define PAYREMIND_WEBHOOK_H

#include <stddef.h>

#include "payremind/conf.h"

#define WEBHOOK_ID_MAX 128  /* longest gateway message id or reference accepted */
#define WEBHOOK_CODE_MAX 32 /* longest gateway error code accepted */

/* One name=value pair of a request (query string, form body or JSON object). */
struct webhook_param {
	char *name;
	char *value; /* NULL when a JSON member is neither a string nor an integer */
};

/* A request's parameters in arrival order, duplicates kept (the Twilio signature covers them all). */
struct webhook_params {
	struct webhook_param *v;
	size_t n, cap;
};

/* The delivery-report vocabulary (payremind.dlr_events.status); the database decides what each one
 * does to a reminder (payremind.dlr_effect): delivered moves it to delivered; undelivered, failed and
 * smsc_reject to failed; the others change no state. */
enum webhook_dlr_status {
	WEBHOOK_DLR_ACCEPTED,
	WEBHOOK_DLR_BUFFERED,
	WEBHOOK_DLR_SMSC_ACK,
	WEBHOOK_DLR_SENT,
	WEBHOOK_DLR_DELIVERED,
	WEBHOOK_DLR_UNDELIVERED,
	WEBHOOK_DLR_FAILED,
	WEBHOOK_DLR_SMSC_REJECT,
	WEBHOOK_DLR_OTHER, /* a well-formed Twilio status this code does not know: recorded, no effect */
	WEBHOOK_DLR_COUNT
};

/* A checked inbound message. text points into the params it was parsed from. */
struct webhook_inbound {
	char from[16]; /* E.164 North-American number, normalised to +1NPANXXXXXX */
	char to[WEBHOOK_ID_MAX +
	    1]; /* the number written to: the caller checks it is one of our short codes */
	char id[WEBHOOK_ID_MAX + 1];
	const char *text;
};

#define WEBHOOK_PAYMENT_ID_MAX 200

/* A checked delivery report. */
struct webhook_dlr {
	char ref[WEBHOOK_ID_MAX + 1];        /* reminder or reply id (json, kannel), MessageSid (twilio) */
	int by_sid;                          /* 1 when ref is the gateway's message id (twilio) */
	char gateway_id[WEBHOOK_ID_MAX + 1]; /* json "id", "" when none */
	enum webhook_dlr_status status;
	char raw_status[33];             /* the gateway's own status text */
	char code[WEBHOOK_CODE_MAX + 1]; /* the gateway's error code, "" when none */
	int opt_out;                     /* Twilio 21610: the number opted out at the carrier */
};

/* A checked payment result from the portal (SPEC §10, POST /v1/payments/json). */
struct webhook_payment {
	char id[WEBHOOK_PAYMENT_ID_MAX + 1]; /* the portal's payment id */
	char reference[37];                  /* our reminder id */
	char status[10];                     /* paid, failed or cancelled */
	long long amount_cents;
};

/* Parse an application/x-www-form-urlencoded body or query string ('+' is a space) into p
 * (appended). 0, or -1 on a bad escape or out of memory. */
int webhook_form_parse(const char *s, size_t len, struct webhook_params *p)
    __attribute__((warn_unused_result));
/* Parse a JSON object: string members as they are, integers in decimal, others with a NULL value.
 * 0, or -1 with the reason in err (not UTF-8, not JSON, not an object, duplicate member). */
int webhook_json_parse(const char *body, size_t len, struct webhook_params *p, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Append a copy of name=value. 0 or -1 (out of memory). */
int webhook_params_add(struct webhook_params *p, const char *name, const char *value)
    __attribute__((warn_unused_result));
/* The first value of name, NULL when absent (or not a string). */
const char *webhook_params_get(const struct webhook_params *p, const char *name);
/* Release what p holds and reset it. */
void webhook_params_free(struct webhook_params *p);

/* Check an inbound message in the names of dialect (json/kannel: from, to, text, id; twilio: From,
 * To, Body, MessageSid): all present, from a North-American number, ids printable. Whether `to` is
 * one of our short codes is left to the caller, which must say so loudly. 0, or -1 with a reason
 * naming the field in err. */
int webhook_inbound_parse(enum conf_dialect dialect, const struct webhook_params *p,
    struct webhook_inbound *out, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Check a delivery report (json: id, reference, status [, code]; kannel: ref, status [, smsc_id];
 * twilio: MessageSid, MessageStatus [, ErrorCode]). 0, or -1 with a reason naming the field. */
int webhook_dlr_parse(enum conf_dialect dialect, const struct webhook_params *p, struct webhook_dlr *out,
    char *err, size_t errlen) __attribute__((warn_unused_result));
/* Check a payment result's fields (from webhook_json_parse): id (1..200 printable characters without
 * spaces), reference (a UUID), status (paid, failed, cancelled), amount_cents (an integer >= 0). 0, or
 * -1 with a reason naming the field. */
int webhook_payment_parse(const struct webhook_params *p, struct webhook_payment *out, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/* The status as dlr_events stores it: "accepted", "buffered", "smsc_ack", "sent", "delivered",
 * "undelivered", "failed", "smsc_reject" or "other". */
const char *webhook_dlr_status_to_text(enum webhook_dlr_status status);

/* "+15145550123", "15145550123" or "5145550123" (NANP) -> "+15145550123". 0, or -1 for anything else. */
int webhook_msisdn(const char *in, char out[16]) __attribute__((warn_unused_result));
/* 1 when s is a UUID in text form (8-4-4-4-12 hex digits). */
int webhook_is_uuid(const char *s);
/* Check what a request carried before any of it is used: every name and value valid UTF-8 (RFC 3629,
 * utf8.h), no name given twice. 0, or -1 with a reason for a 400 in err, naming the field or parameter
 * when its name is a plain word (a made-up name is never echoed: it could be a phone number). */
int webhook_params_check(const struct webhook_params *p, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* A value a client sent, safe for a log line: UUIDs, Twilio SIDs and values without a run of 7 digits
 * (separators "+-.() " ignored) as they are; a North-American number masked like log_mask_msisdn
 * (+1514***0123); anything else that may be a number "***". buf needs 16 bytes; the result is v or buf. */
const char *webhook_log_value(const char *v, char *buf, size_t len);

#define WEBHOOK_ADDR_MAX 46 /* INET6_ADDRSTRLEN */
/* The canonical text of an IPv4 or IPv6 address (IPv4-mapped IPv6 as IPv4) in out. 0, or -1 when s is
 * not a numeric address. */
int webhook_addr_canonical(const char *s, char *out, size_t outlen) __attribute__((warn_unused_result));
/* The client of a request from peer (canonical text): peer itself, unless peer is one of the trusted
 * proxies (canonical texts) and xff (X-Forwarded-For) is given; then the rightmost address of xff that
 * is not itself a trusted proxy (the leftmost when all are). 0 with the client in out, or -1 with peer
 * in out when xff is malformed. */
int webhook_forwarded_client(
    const char *peer, const char *xff, const char *const *trusted, size_t ntrusted, char *out, size_t outlen);

/* 1 when given equals expected, compared in constant time (on their SHA-256, so the length of
 * the secret does not leak either); 0 otherwise or when either is NULL or expected is empty. */
int webhook_key_equal(const char *expected, const char *given);
/* Twilio's X-Twilio-Signature: base64(HMAC-SHA1(token, url + each parameter's name and value, sorted
 * by name then value)). out needs 29 bytes. 0, or -1 when out of memory or out is too small. */
int webhook_twilio_signature(const char *token, const char *url, const struct webhook_params *p, char *out,
    size_t outlen) __attribute__((warn_unused_result));
/* 1 when signature is the Twilio signature of url + p under token (constant-time compare); 0 otherwise,
 * or when token or signature is NULL or empty. */
int webhook_twilio_valid(
    const char *token, const char *url, const struct webhook_params *p, const char *signature);

#endif
