/* The json dialect (our sandbox gateway's API): honours Idempotency-Key, so ambiguous sends are retried. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "gateway_dialect.h"

/* A secret goes into a header line as is: control characters would split or corrupt it. */
static int
json_secret_printable(const char *secret)
{
	for (; *secret != '\0'; secret++) {
		if ((unsigned char)*secret < 0x20 || *secret == 0x7f)
			return 0;
	}
	return 1;
}

static int
json_headers(
    const struct conf *conf, const struct gw_message *m, struct gw_request *req, char *err, size_t errlen)
{
	const char *secret = conf->gateway.secret;
	int bearer = secret != NULL && secret[0] != '\0';

	if (bearer && !json_secret_printable(secret)) {
		snprintf(err, errlen, "gateway secret contains control characters");
		return -1;
	}
	if (gw_request_add_header(req, "Content-Type: application/json") == -1 ||
	    gw_request_add_header(req, "Idempotency-Key: %s", m->reminder_id) == -1 ||
	    (bearer && gw_request_add_header(req, "Authorization: Bearer %s", secret) == -1)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* POST gateway.url {"from","to","text","reference"}; the reminder id is both the reference the
 * DLRs come back with and the Idempotency-Key that makes a retry after a timeout safe. */
static int
json_build(
    const struct conf *conf, const struct gw_message *m, struct gw_request *req, char *err, size_t errlen)
{
	json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "from", m->from, "to", m->to, "text", m->text,
	    "reference", m->reminder_id);
	char expires[32];
	time_t t = (time_t)m->expires_at;
	struct tm tm;

	/* The end of the contact window: a gateway that queues drops the message after it (SPEC §11). */
	if (body != NULL && m->expires_at > 0 && gmtime_r(&t, &tm) != NULL &&
	    strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
		json_object_set_new(body, "expires_at", json_string(expires));
	if (body == NULL) {
		snprintf(err, errlen, "cannot encode the message as JSON (text not valid UTF-8?)");
		return -1;
	}
	req->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	req->url = strdup(conf->gateway.url);
	if (req->body == NULL || req->url == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	req->body_len = strlen(req->body);
	req->post = 1;
	return json_headers(conf, m, req, err, errlen);
}

/* A 2xx means the gateway took the message whatever its body says: resending would duplicate it,
 * so a missing id is only noted in error. */
static void
json_accepted(json_t *reply, struct gw_result *res)
{
	json_t *id = json_object_get(reply, "id");

	if (!json_is_string(id) || json_string_length(id) == 0)
		snprintf(res->error, sizeof(res->error), "gateway reply: \"id\" missing or not a string");
	else if (json_string_length(id) >= sizeof(res->message_id))
		snprintf(res->error, sizeof(res->error), "gateway reply: \"id\" longer than %zu bytes",
		    sizeof(res->message_id) - 1);
	else
		snprintf(res->message_id, sizeof(res->message_id), "%s", json_string_value(id));
}

static void
json_refused(json_t *reply, long status, struct gw_result *res)
{
	json_t *msg = json_object_get(reply, "error");
	char text[GW_REPLY_MAX + 1];

	if (json_is_string(msg)) {
		gw_reply_text(json_string_value(msg), json_string_length(msg), text, sizeof(text));
		snprintf(res->error, sizeof(res->error), "http %ld: %s", status, text);
	} else {
		snprintf(res->error, sizeof(res->error), "http %ld", status);
	}
}

/* 2xx OK with {"id"}; everything else by the generic status rule, with the gateway's "error" text. */
static void
json_classify(const struct gw_response *resp, struct gw_result *res)
{
	json_t *reply = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;

	gw_result_begin(resp, res);
	res->outcome = gw_classify_status(resp->status);
	if (res->outcome == GW_OK)
		json_accepted(reply, res);
	else
		json_refused(reply, resp->status, res);
	json_decref(reply);
}

const struct gw_dialect gw_dialect_json = {
	.name = "json",
	.idempotent = 1,
	.build = json_build,
	.classify = json_classify,
};
