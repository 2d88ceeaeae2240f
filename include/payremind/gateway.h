/* SMS gateway dialects (json, kannel, twilio) as tables of pure functions, and the one place where
 * a delivery outcome is classified: OK, TEMPFAIL, PERMFAIL, AMBIGUOUS, or CONFIG (stop and tell). */
#ifndef PAYREMIND_GATEWAY_H
#define PAYREMIND_GATEWAY_H

#include <stddef.h>
#include <stdint.h>
#include "payremind/conf.h"

enum gw_outcome {
	GW_OK,       /* the gateway took the message */
	GW_TEMPFAIL, /* nothing reached the gateway, or it said "later": retry with backoff */
	GW_PERMFAIL, /* refused for good: never retried */
	GW_AMBIGUOUS, /* may have been taken: retry with the same key if the dialect is idempotent, else unknown */
	GW_CONFIG, /* our configuration is wrong (credentials): stop sending and tell the operator */
};

#define GW_MAX_HEADERS 8

/* One SMS to send. */
struct gw_message {
	const char *reminder_id; /* uuid text: json reference + Idempotency-Key, kannel dlr-url ref */
	const char *from;        /* short code; refused unless conf_sender_allowed() */
	const char *to;          /* E.164 */
	const char *text;        /* UTF-8 */
	int64_t expires_at; /* the end of the recipient's contact window (epoch s), 0 = none (SPEC §11) */
	int64_t now;        /* the instant the request is built (epoch s), for the time left */
};

/* The validity a request carries: whole seconds left until expires_at, at least 1; 0 when none. */
int64_t gw_seconds_left(const struct gw_message *m);

/* An HTTP request ready for libcurl. Free with gw_request_free(). */
struct gw_request {
	char *url;
	int post;   /* 0 = GET */
	char *body; /* NULL for GET */
	size_t body_len;
	char *headers[GW_MAX_HEADERS]; /* "Name: value" */
	int nheaders;
};

/* What came back over HTTP. */
struct gw_response {
	long status;
	const char *body;
	size_t body_len;
	const char *retry_after; /* Retry-After header value, NULL when absent */
};

struct gw_result {
	enum gw_outcome outcome;
	long http_status;       /* 0 when no HTTP answer */
	char message_id[128];   /* gateway's id when OK ("" when the dialect gives none) */
	char error[256];        /* short reason for last_error and logs: never the message text */
	int64_t retry_after_ms; /* from Retry-After, 0 when none */
	int opt_out;            /* the gateway says the number opted out (Twilio 21610) */
};

struct gw_dialect {
	const char *name;
	int idempotent; /* honours an idempotency key: ambiguous outcomes may be retried */
	/* Build the request for m under conf. 0, or -1 with the reason in err. */
	int (*build)(const struct conf *conf, const struct gw_message *m, struct gw_request *req, char *err,
	    size_t errlen);
	/* Classify an HTTP answer (transport failures go through gw_classify_transport). */
	void (*classify)(const struct gw_response *resp, struct gw_result *res);
};

/* The dialect of conf->gateway.dialect. */
const struct gw_dialect *gw_dialect_get(enum conf_dialect dialect);
/* Check the sender against the built-in list, then build with the dialect. 0 or -1 with err. */
int gw_build(const struct gw_dialect *d, const struct conf *conf, const struct gw_message *m,
    struct gw_request *req, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Release what a build allocated. */
void gw_request_free(struct gw_request *req);
/* Transport failure: curl_code is a CURLcode; request_sent is 1 once the whole request was written.
 * Connection refused, DNS and connect timeouts are TEMPFAIL; a failure after sending is AMBIGUOUS. */
void gw_classify_transport(int curl_code, int request_sent, struct gw_result *res);
/* The generic rule for an HTTP status: 2xx OK; 408, 429, 503 TEMPFAIL; 500, 502, 504 and other 5xx
 * AMBIGUOUS; 401/403 CONFIG; other 4xx PERMFAIL. */
enum gw_outcome gw_classify_status(long status);
/* Retry-After as delay-seconds or an HTTP-date, relative to now (Unix s); milliseconds, 0 if unusable. */
int64_t gw_parse_retry_after(const char *value, int64_t now);
/* "ok", "tempfail", "permfail", "ambiguous", "config". */
const char *gw_outcome_to_text(enum gw_outcome outcome);

#endif
