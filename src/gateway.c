/* Gateway dialect interface: request checks common to every dialect, and outcome classification. */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <uuid/uuid.h>

#include "payremind/conf.h"
#include "payremind/gateway.h"
#include "gateway_dialect.h"

#define GW_RETRY_AFTER_CAP_S 3600
#define GW_PHONE_MIN_DIGITS 7

const struct gw_dialect *
gw_dialect_get(enum conf_dialect dialect)
{
	switch (dialect) {
	case CONF_DIALECT_JSON:
		return &gw_dialect_json;
	case CONF_DIALECT_KANNEL:
		return &gw_dialect_kannel;
	case CONF_DIALECT_TWILIO:
		return &gw_dialect_twilio;
	}
	return NULL;
}

/* One character of gw_valid_msisdn's pattern: 'n' is a digit 2-9, 'd' any digit, anything else itself. */
static int
gw_pattern_match(char p, char c)
{
	switch (p) {
	case 'n':
		return c >= '2' && c <= '9';
	case 'd':
		return c >= '0' && c <= '9';
	default:
		return c == p;
	}
}

/* 1 when to is a North-American E.164 number: ^\+1[2-9][0-9]{2}[2-9][0-9]{6}$. */
static int
gw_valid_msisdn(const char *to)
{
	static const char pattern[] = "+1nddndddddd";
	size_t i;

	for (i = 0; pattern[i] != '\0'; i++) {
		if (!gw_pattern_match(pattern[i], to[i]))
			return 0;
	}
	return to[i] == '\0';
}

/* The sender is named in the error only when it looks like a short code, so a phone number put
 * there by mistake never reaches the logs. */
static void
gw_sender_refused(const char *from, char *err, size_t errlen)
{
	size_t n = from ? strlen(from) : 0;

	if (n > 0 && n <= 6 && strspn(from, "0123456789") == n)
		snprintf(err, errlen, "sender \"%s\" is not an approved short code", from);
	else
		snprintf(err, errlen, "sender is not an approved short code");
}

/* Checks every message must pass whatever the dialect and the configuration: the sender is an
 * approved short code (checked here before every request, not only at config load), the recipient
 * a North-American number, the text non-empty, the reference a uuid (it goes into headers and URLs). */
static int
gw_check_message(const struct gw_message *m, char *err, size_t errlen)
{
	uuid_t uu;

	if (m->from == NULL || !conf_sender_allowed(m->from)) {
		gw_sender_refused(m->from, err, errlen);
		return -1;
	}
	if (m->to == NULL || !gw_valid_msisdn(m->to)) {
		snprintf(err, errlen, "recipient is not a North-American E.164 number");
		return -1;
	}
	if (m->text == NULL || m->text[0] == '\0') {
		snprintf(err, errlen, "empty message text");
		return -1;
	}
	if (m->reminder_id == NULL || uuid_parse(m->reminder_id, uu) != 0) {
		snprintf(err, errlen, "reminder id is not a uuid");
		return -1;
	}
	return 0;
}

int64_t
gw_seconds_left(const struct gw_message *m)
{
	if (m->expires_at <= 0)
		return 0;
	return m->expires_at - m->now > 1 ? m->expires_at - m->now : 1;
}

int
gw_build(const struct gw_dialect *d, const struct conf *conf, const struct gw_message *m,
    struct gw_request *req, char *err, size_t errlen)
{
	memset(req, 0, sizeof(*req));
	if (gw_check_message(m, err, errlen) == -1)
		return -1;
	if (conf->gateway.url == NULL || conf->gateway.url[0] == '\0') {
		snprintf(err, errlen, "gateway.url is not set");
		return -1;
	}
	if (d->build(conf, m, req, err, errlen) == -1) {
		gw_request_free(req);
		return -1;
	}
	return 0;
}

void
gw_request_free(struct gw_request *req)
{
	int i;

	free(req->url);
	free(req->body);
	for (i = 0; i < req->nheaders; i++)
		free(req->headers[i]);
	memset(req, 0, sizeof(*req));
}

int
gw_request_add_header(struct gw_request *req, const char *fmt, ...)
{
	va_list ap;
	char *h;
	int rc;

	if (req->nheaders >= GW_MAX_HEADERS)
		return -1;
	va_start(ap, fmt);
	rc = vasprintf(&h, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	req->headers[req->nheaders++] = h;
	return 0;
}

int
gw_form_add(FILE *fp, char sep, const char *name, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0);
	int rc;

	if (esc == NULL)
		return -1;
	if (sep != '\0' && fputc(sep, fp) == EOF)
		rc = -1;
	else
		rc = fprintf(fp, "%s=%s", name, esc) < 0 ? -1 : 0;
	curl_free(esc);
	return rc;
}

int
gw_memstream_close(FILE *fp, int rc, char **buf)
{
	if (ferror(fp))
		rc = -1;
	if (fclose(fp) != 0)
		rc = -1;
	if (rc == -1) {
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

size_t
gw_url_len(const char *url)
{
	size_t n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		n--;
	return n;
}

int
gw_callback_url(const struct conf *conf, const char *suffix, char **out, char *err, size_t errlen)
{
	const char *base = conf->listen.public_url;

	if (base == NULL || base[0] == '\0') {
		snprintf(err, errlen, "listen.public_url is not set (gateway callbacks need it)");
		return -1;
	}
	if (asprintf(out, "%.*s%s", (int)gw_url_len(base), base, suffix) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

enum gw_outcome
gw_classify_status(long status)
{
	if (status >= 200 && status <= 299)
		return GW_OK;
	if (status == 408 || status == 429 || status == 503)
		return GW_TEMPFAIL;
	if (status == 401 || status == 403)
		return GW_CONFIG;
	if (status >= 400 && status <= 499)
		return GW_PERMFAIL;
	return GW_AMBIGUOUS; /* 5xx, and answers no gateway should give (1xx, 3xx) */
}

/* Transport failures whose outcome does not depend on how much of the request went out. */
static const struct {
	int code;
	enum gw_outcome outcome;
} gw_transport_rules[] = {
	/* no connection was ever made */
	{ CURLE_COULDNT_RESOLVE_PROXY, GW_TEMPFAIL },
	{ CURLE_COULDNT_RESOLVE_HOST, GW_TEMPFAIL },
	{ CURLE_COULDNT_CONNECT, GW_TEMPFAIL },
	{ CURLE_SSL_CONNECT_ERROR, GW_TEMPFAIL },
	/* the URL or TLS setup is wrong: retrying cannot help, the operator must act */
	{ CURLE_UNSUPPORTED_PROTOCOL, GW_CONFIG },
	{ CURLE_URL_MALFORMAT, GW_CONFIG },
	{ CURLE_PEER_FAILED_VERIFICATION, GW_CONFIG },
	{ CURLE_SSL_CERTPROBLEM, GW_CONFIG },
	{ CURLE_SSL_CACERT_BADFILE, GW_CONFIG },
	{ CURLE_SSL_PINNEDPUBKEYNOTMATCH, GW_CONFIG },
	/* the server answered the request with nothing or with half an answer */
	{ CURLE_GOT_NOTHING, GW_AMBIGUOUS },
	{ CURLE_PARTIAL_FILE, GW_AMBIGUOUS },
};

/* A failure before the whole request was written cannot have been acted on, so it is retried;
 * after that the gateway may have taken the message (timeout, reset while reading the answer). */
void
gw_classify_transport(int curl_code, int request_sent, struct gw_result *res)
{
	size_t i;

	memset(res, 0, sizeof(*res));
	res->outcome = request_sent ? GW_AMBIGUOUS : GW_TEMPFAIL;
	for (i = 0; i < sizeof(gw_transport_rules) / sizeof(gw_transport_rules[0]); i++) {
		if (gw_transport_rules[i].code == curl_code) {
			res->outcome = gw_transport_rules[i].outcome;
			break;
		}
	}
	snprintf(res->error, sizeof(res->error), "curl %d: %s%s", curl_code,
	    curl_easy_strerror((CURLcode)curl_code), request_sent ? " (after the request was sent)" : "");
}

/* Delay-seconds (all digits) or an HTTP-date (which starts with a day name); anything else,
 * a date in the past, or 0 gives 0. Capped so a confused gateway cannot park the queue for days. */
int64_t
gw_parse_retry_after(const char *value, int64_t now)
{
	char buf[64];
	size_t n;
	int64_t secs;

	if (value == NULL)
		return 0;
	value += strspn(value, " \t");
	n = strlen(value);
	while (n > 0 && isspace((unsigned char)value[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, value, n);
	buf[n] = '\0';
	if (strspn(buf, "0123456789") == n) {
		secs = n > 9 ? GW_RETRY_AFTER_CAP_S : strtoll(buf, NULL, 10);
	} else if (isalpha((unsigned char)buf[0])) {
		time_t t = curl_getdate(buf, NULL);
		secs = t == -1 ? 0 : (int64_t)t - now;
	} else {
		return 0;
	}
	if (secs <= 0)
		return 0;
	if (secs > GW_RETRY_AFTER_CAP_S)
		secs = GW_RETRY_AFTER_CAP_S;
	return secs * 1000;
}

void
gw_result_begin(const struct gw_response *resp, struct gw_result *res)
{
	memset(res, 0, sizeof(*res));
	res->http_status = resp->status;
	res->retry_after_ms = gw_parse_retry_after(resp->retry_after, (int64_t)time(NULL));
}

/* Length of the phone-number-like run at s (digits with + - . ( ) and spaces between them, at
 * least GW_PHONE_MIN_DIGITS digits, ending on a digit), or 0. */
static size_t
gw_phone_run(const char *s, size_t n)
{
	size_t i, end = 0, digits = 0;

	if (!isdigit((unsigned char)s[0]) && s[0] != '+' && s[0] != '(')
		return 0;
	for (i = 0; i < n && s[i] != '\0' && strchr("0123456789+-.() ", s[i]) != NULL; i++) {
		if (isdigit((unsigned char)s[i])) {
			digits++;
			end = i + 1;
		}
	}
	return digits >= GW_PHONE_MIN_DIGITS ? end : 0;
}

static int
gw_line_end(char c)
{
	return c == '\0' || c == '\n' || c == '\r';
}

void
gw_reply_text(const char *src, size_t srclen, char *dst, size_t dstlen)
{
	size_t limit = dstlen - 1 < GW_REPLY_MAX ? dstlen - 1 : GW_REPLY_MAX;
	size_t i = 0, o = 0, run;

	while (i < srclen && !gw_line_end(src[i])) {
		unsigned char c = (unsigned char)src[i];
		if (c >= 0x80 && c <= 0xbf) {
			i++; /* UTF-8 continuation: its lead byte already gave one '?' */
			continue;
		}
		run = gw_phone_run(src + i, srclen - i);
		if (o + (run > 0 ? 3 : 1) > limit)
			break;
		if (run > 0) {
			memcpy(dst + o, "***", 3);
			o += 3;
			i += run;
		} else {
			dst[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
			i++;
		}
	}
	if (i < srclen && !gw_line_end(src[i]) && limit >= 3) {
		o = o + 3 > limit ? limit - 3 : o;
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

const char *
gw_outcome_to_text(enum gw_outcome outcome)
{
	switch (outcome) {
	case GW_OK:
		return "ok";
	case GW_TEMPFAIL:
		return "tempfail";
	case GW_PERMFAIL:
		return "permfail";
	case GW_AMBIGUOUS:
		return "ambiguous";
	case GW_CONFIG:
		return "config";
	}
	return "unknown";
}
