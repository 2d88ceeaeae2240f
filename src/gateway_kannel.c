/* The kannel dialect: smsbox sendsms over GET; no idempotency key and no message id in the reply. */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "payremind/gsm.h"
#include "gateway_dialect.h"

/* Kannel answers with one line; these decide the outcome before the generic status rule. */
static const struct {
	long status;
	const char *prefix; /* start of the reply line, NULL for any */
	enum gw_outcome outcome;
} kannel_rules[] = {
	{ 202, "0:", GW_OK },                       /* 0: Accepted for delivery */
	{ 202, "3:", GW_OK },                       /* 3: Queued for later delivery (SMSC link down) */
	{ 403, "Authorization failed", GW_CONFIG }, /* wrong username or password */
	{ 403, "Not routable", GW_PERMFAIL },       /* Not routable. Do not try again. */
	{ 400, NULL, GW_PERMFAIL },                 /* rejected: missing or malformed field */
	{ 503, NULL, GW_TEMPFAIL },                 /* temporal failure */
	{ 500, "Sending failed", GW_AMBIGUOUS },    /* bearerbox may have queued it */
};

/* The listener's key for the dlr-url: percent-encoded, then each '%' doubled, because Kannel reads
 * %X in a dlr-url as its own escape (%A, %F, … would eat an encoded byte) and turns %% into %. */
static char *
kannel_dlr_key(const char *secret)
{
	char *esc = curl_easy_escape(NULL, secret, 0), *out, *w;
	const char *r;

	if (esc == NULL || (out = malloc(strlen(esc) * 2 + 1)) == NULL) {
		curl_free(esc);
		return NULL;
	}
	for (r = esc, w = out; *r; r++) {
		if (*r == '%')
			*w++ = '%';
		*w++ = *r;
	}
	*w = '\0';
	curl_free(esc);
	return out;
}

/* The DLR callback, with Kannel's escapes %d (report type) and %i (SMSC id) left for Kannel to
 * fill; ref brings the reminder id back since Kannel gives no message id, and key (when the listener
 * has one) authenticates the callback, since Kannel cannot send an X-Payremind-Key header. */
static int
kannel_dlr_url(const struct conf *conf, const struct gw_message *m, char **out, char *err, size_t errlen)
{
	const char *secret = conf->listen.secret;
	char *suffix, *key = NULL;
	int rc;

	if (secret != NULL && secret[0] != '\0' && (key = kannel_dlr_key(secret)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (asprintf(&suffix, "/v1/dlr/kannel?ref=%s&status=%%d&smsc_id=%%i%s%s", m->reminder_id,
	        key ? "&key=" : "", key ? key : "") < 0) {
		free(key);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = gw_callback_url(conf, suffix, out, err, errlen);
	free(suffix);
	free(key);
	return rc;
}

/* Every value percent-encoded once, the dlr-url included, so its own '%', '?' and '&' reach Kannel
 * intact. coding=2 (UCS-2) is asked for whenever the text is not GSM-7: Kannel never picks it
 * itself and would turn ç, ê or ’ into '?'. */
static int
kannel_write_url(FILE *fp, const struct conf *conf, const struct gw_message *m, const char *dlr)
{
	const char *url = conf->gateway.url;
	const char *user = conf->gateway.username ? conf->gateway.username : "";
	const char *pass = conf->gateway.secret ? conf->gateway.secret : "";
	int64_t left = gw_seconds_left(m);
	char validity[24];

	/* validity: whole minutes left in the recipient's window, rounded down, at least 1 */
	snprintf(validity, sizeof(validity), "%lld", (long long)(left / 60 > 1 ? left / 60 : 1));

	if (fputs(url, fp) == EOF || gw_form_add(fp, strchr(url, '?') ? '&' : '?', "username", user) == -1 ||
	    gw_form_add(fp, '&', "password", pass) == -1 || gw_form_add(fp, '&', "from", m->from) == -1 ||
	    gw_form_add(fp, '&', "to", m->to) == -1 || gw_form_add(fp, '&', "text", m->text) == -1 ||
	    gw_form_add(fp, '&', "charset", "UTF-8") == -1 ||
	    (!gsm_is_gsm7(m->text) && gw_form_add(fp, '&', "coding", "2") == -1) ||
	    gw_form_add(fp, '&', "dlr-mask", "31") == -1 || gw_form_add(fp, '&', "dlr-url", dlr) == -1 ||
	    (left > 0 && gw_form_add(fp, '&', "validity", validity) == -1))
		return -1;
	return 0;
}

/* GET gateway.url?username=…&password=…&from&to&text&charset=UTF-8[&coding=2]&dlr-mask=31&dlr-url=…
 * (smsbox answers a form POST with 400). The URL holds the password: never log it. */
static int
kannel_build(
    const struct conf *conf, const struct gw_message *m, struct gw_request *req, char *err, size_t errlen)
{
	char *dlr, *url = NULL;
	size_t len = 0;
	FILE *fp;
	int rc;

	if (kannel_dlr_url(conf, m, &dlr, err, errlen) == -1)
		return -1;
	fp = open_memstream(&url, &len);
	rc = fp == NULL ? -1 : gw_memstream_close(fp, kannel_write_url(fp, conf, m, dlr), &url);
	free(dlr);
	if (rc == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	req->url = url;
	req->post = 0;
	return 0;
}

static enum gw_outcome
kannel_outcome(long status, const char *line)
{
	size_t i;

	for (i = 0; i < sizeof(kannel_rules) / sizeof(kannel_rules[0]); i++) {
		if (kannel_rules[i].status == status &&
		    (kannel_rules[i].prefix == NULL ||
		        strncmp(line, kannel_rules[i].prefix, strlen(kannel_rules[i].prefix)) == 0))
			return kannel_rules[i].outcome;
	}
	return gw_classify_status(status);
}

/* Classify on the status and the reply line; the line goes into error unless it is the plain
 * "0: Accepted for delivery". message_id stays "": DLRs come back by the ref in the dlr-url. */
static void
kannel_classify(const struct gw_response *resp, struct gw_result *res)
{
	char line[GW_REPLY_MAX + 1];

	gw_result_begin(resp, res);
	gw_reply_text(resp->body ? resp->body : "", resp->body ? resp->body_len : 0, line, sizeof(line));
	res->outcome = kannel_outcome(resp->status, line);
	if (line[0] == '\0')
		snprintf(res->error, sizeof(res->error), "kannel %ld", resp->status);
	else if (res->outcome != GW_OK || strncmp(line, "0:", 2) != 0)
		snprintf(res->error, sizeof(res->error), "kannel %ld: %s", resp->status, line);
}

const struct gw_dialect gw_dialect_kannel = {
	.name = "kannel",
	.idempotent = 0,
	.build = kannel_build,
	.classify = kannel_classify,
};
