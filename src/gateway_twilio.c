/* The twilio dialect: Programmable Messaging REST API; no idempotency key, so ambiguous stays unknown. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "gateway_dialect.h"

/* Twilio error codes that decide the outcome whatever the HTTP status. */
static const struct {
	int code;
	enum gw_outcome outcome;
	int opt_out;
} twilio_codes[] = {
	{ 21211, GW_PERMFAIL, 0 }, /* invalid 'To' number */
	{ 21612, GW_PERMFAIL, 0 }, /* 'To' not reachable from this 'From' */
	{ 21614, GW_PERMFAIL, 0 }, /* 'To' is not a mobile number */
	{ 21635, GW_PERMFAIL, 0 }, /* 'To' is a landline */
	{ 21610, GW_PERMFAIL, 1 }, /* the recipient replied STOP: record the opt-out */
	{ 20003, GW_CONFIG, 0 },   /* authentication failed */
	{ 21608, GW_CONFIG, 0 },   /* trial account: number not verified */
	{ 20429, GW_TEMPFAIL, 0 }, /* too many requests */
};

static int
twilio_url(const struct conf *conf, char **out)
{
	const char *base = conf->gateway.url;
	char *sid = curl_easy_escape(NULL, conf->gateway.username, 0);
	int rc;

	if (sid == NULL)
		return -1;
	rc = asprintf(out, "%.*s/2010-04-01/Accounts/%s/Messages.json", (int)gw_url_len(base), base, sid);
	curl_free(sid);
	return rc < 0 ? -1 : 0;
}

/* "Authorization: Basic base64(account SID:auth token)". */
static int
twilio_auth(const struct conf *conf, struct gw_request *req)
{
	const char *token = conf->gateway.secret ? conf->gateway.secret : "";
	unsigned char *b64 = NULL;
	char *pair;
	size_t n;
	int rc = -1;

	if (asprintf(&pair, "%s:%s", conf->gateway.username, token) < 0)
		return -1;
	n = strlen(pair);
	if ((b64 = malloc(4 * ((n + 2) / 3) + 1)) != NULL) {
		EVP_EncodeBlock(b64, (const unsigned char *)pair, (int)n);
		rc = gw_request_add_header(req, "Authorization: Basic %s", (const char *)b64);
	}
	free(b64);
	free(pair);
	return rc;
}

static int
twilio_write_form(FILE *fp, const struct gw_message *m, const char *callback)
{
	int64_t left = gw_seconds_left(m);
	char validity[24];

	/* ValidityPeriod: the seconds left in the recipient's window, Twilio's maximum 36000 at most */
	snprintf(validity, sizeof(validity), "%lld", (long long)(left > 36000 ? 36000 : left));
	if (gw_form_add(fp, 0, "To", m->to) == -1 || gw_form_add(fp, '&', "From", m->from) == -1 ||
	    gw_form_add(fp, '&', "Body", m->text) == -1 ||
	    gw_form_add(fp, '&', "StatusCallback", callback) == -1 ||
	    (left > 0 && gw_form_add(fp, '&', "ValidityPeriod", validity) == -1))
		return -1;
	return 0;
}

/* POST {url}/2010-04-01/Accounts/{sid}/Messages.json, form To, From, Body, StatusCallback. The callback
 * names our reminder (?ref=<id>): its status reports find it by key, not by Twilio's message sid. */
static int
twilio_build(
    const struct conf *conf, const struct gw_message *m, struct gw_request *req, char *err, size_t errlen)
{
	char *callback, suffix[96];
	FILE *fp;
	int rc;

	if (conf->gateway.username == NULL || conf->gateway.username[0] == '\0') {
		snprintf(err, errlen, "gateway.username (the Twilio account SID) is not set");
		return -1;
	}
	snprintf(suffix, sizeof(suffix), "/v1/dlr/twilio?ref=%s", m->reminder_id);
	if (gw_callback_url(conf, suffix, &callback, err, errlen) == -1)
		return -1;
	fp = open_memstream(&req->body, &req->body_len);
	rc = fp == NULL ? -1 : gw_memstream_close(fp, twilio_write_form(fp, m, callback), &req->body);
	free(callback);
	req->post = 1;
	if (rc == -1 || twilio_url(conf, &req->url) == -1 ||
	    gw_request_add_header(req, "Content-Type: application/x-www-form-urlencoded") == -1 ||
	    twilio_auth(conf, req) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* The status rule of Twilio's API: a 5xx may come after the message was created, but a 503 says the
 * service is unavailable: nothing was taken, retried like everywhere else. */
static enum gw_outcome
twilio_status(long status)
{
	if (status >= 500 && status <= 599 && status != 503)
		return GW_AMBIGUOUS;
	if (status >= 400 && status <= 499 && status != 401 && status != 408 && status != 429)
		return GW_PERMFAIL;
	return gw_classify_status(status);
}

static void
twilio_accepted(json_t *reply, struct gw_result *res)
{
	json_t *sid = json_object_get(reply, "sid");

	if (!json_is_string(sid) || json_string_length(sid) == 0 ||
	    json_string_length(sid) >= sizeof(res->message_id))
		snprintf(res->error, sizeof(res->error), "twilio reply: \"sid\" missing or not a string");
	else
		snprintf(res->message_id, sizeof(res->message_id), "%s", json_string_value(sid));
}

/* {"code","message","more_info","status"}: the code decides when it is one we know, else the status.
 * Twilio's message often quotes the number; gw_reply_text masks it. */
static void
twilio_refused(json_t *reply, long status, struct gw_result *res)
{
	json_t *code = json_object_get(reply, "code");
	json_t *msg = json_object_get(reply, "message");
	char text[GW_REPLY_MAX + 1] = "";
	size_t i;

	res->outcome = twilio_status(status);
	if (!json_is_integer(code)) {
		snprintf(res->error, sizeof(res->error), "twilio http %ld", status);
		return;
	}
	for (i = 0; i < sizeof(twilio_codes) / sizeof(twilio_codes[0]); i++) {
		if (twilio_codes[i].code == json_integer_value(code)) {
			res->outcome = twilio_codes[i].outcome;
			res->opt_out = twilio_codes[i].opt_out;
		}
	}
	if (json_is_string(msg))
		gw_reply_text(json_string_value(msg), json_string_length(msg), text, sizeof(text));
	snprintf(res->error, sizeof(res->error), "twilio %" JSON_INTEGER_FORMAT "%s%s",
	    json_integer_value(code), text[0] ? ": " : "", text);
}

static void
twilio_classify(const struct gw_response *resp, struct gw_result *res)
{
	json_t *reply = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;

	gw_result_begin(resp, res);
	if (resp->status >= 200 && resp->status <= 299) {
		res->outcome = GW_OK;
		twilio_accepted(reply, res);
	} else {
		twilio_refused(reply, resp->status, res);
	}
	json_decref(reply);
}

const struct gw_dialect gw_dialect_twilio = {
	.name = "twilio",
	.idempotent = 0,
	.build = twilio_build,
	.classify = twilio_classify,
};
