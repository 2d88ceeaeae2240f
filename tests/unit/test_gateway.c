/* Unit tests of the gateway dialects: request building and outcome classification, without network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "payremind/gateway.h"

#define RID "0b6c7d5e-8f90-4a1b-9c2d-3e4f5a6b7c8d"
#define TO "+15145550123"
#define NOW 1700000000 /* Tue, 14 Nov 2023 22:13:20 GMT */
#define KANNEL_URL "http://127.0.0.1:13013/cgi-bin/sendsms"
#define KANNEL_AUTH "username=aro&password=s3cr%20et%26%3D&from=27022&to=%2B15145550123"
#define KANNEL_DLR                                                                                        \
	"&dlr-mask=31&dlr-url=http%3A%2F%2F127.0.0.1%3A8787%2Fv1%2Fdlr%2Fkannel%3Fref%3D" RID "%26status" \
	"%3D%25d%26smsc_id%3D%25i"
#define TWILIO_SID "AC0123456789abcdef0123456789abcdef"
#define LONG_ID                                                                                            \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static struct conf *
conf_new(enum conf_dialect dialect, char *url, char *username, char *secret)
{
	struct conf *conf = calloc(1, sizeof(*conf));

	assert_non_null(conf);
	snprintf(conf->short_code, sizeof(conf->short_code), "27022");
	conf->gateway.dialect = dialect;
	conf->gateway.url = url;
	conf->gateway.username = username;
	conf->gateway.secret = secret;
	conf->listen.public_url = "http://127.0.0.1:8787/";
	return conf;
}

static struct gw_message
message(const char *from, const char *to, const char *text)
{
	struct gw_message m = { .reminder_id = RID, .from = from, .to = to, .text = text };

	return m;
}

/* The value of header name in req, or NULL. */
static const char *
header(const struct gw_request *req, const char *name)
{
	size_t n = strlen(name);
	int i;

	for (i = 0; i < req->nheaders; i++) {
		if (strncmp(req->headers[i], name, n) == 0 && strncmp(req->headers[i] + n, ": ", 2) == 0)
			return req->headers[i] + n + 2;
	}
	return NULL;
}

static void
build_ok(const struct conf *conf, const struct gw_message *m, struct gw_request *req)
{
	char err[256] = "";

	if (gw_build(gw_dialect_get(conf->gateway.dialect), conf, m, req, err, sizeof(err)) != 0)
		fail_msg("gw_build refused: %s", err);
}

static void
test_dialect_get_names_each_dialect_and_only_json_is_idempotent(void **state)
{
	static const struct {
		enum conf_dialect dialect;
		const char *name;
		int idempotent;
	} cases[] = {
		{ CONF_DIALECT_JSON, "json", 1 },
		{ CONF_DIALECT_KANNEL, "kannel", 0 },
		{ CONF_DIALECT_TWILIO, "twilio", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct gw_dialect *d = gw_dialect_get(cases[i].dialect);
		assert_non_null(d);
		assert_string_equal(d->name, cases[i].name);
		assert_int_equal(d->idempotent, cases[i].idempotent);
		assert_non_null(d->build);
		assert_non_null(d->classify);
	}
}

static void
test_json_request_posts_reference_with_idempotency_key_and_optional_bearer(void **state)
{
	static const struct {
		char *secret;
		const char *authorization; /* NULL: no Authorization header */
		int nheaders;
	} cases[] = {
		{ "t0k3n", "Bearer t0k3n", 3 },
		{ NULL, NULL, 2 },
		{ "", NULL, 2 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *conf =
		    conf_new(CONF_DIALECT_JSON, "http://127.0.0.1:9090/sms", "", cases[i].secret);
		struct gw_message m = message("270282", TO, "Reçu: payez « ici » ARRET");
		struct gw_request req;
		json_t *body;

		build_ok(conf, &m, &req);
		assert_string_equal(req.url, "http://127.0.0.1:9090/sms");
		assert_int_equal(req.post, 1);
		assert_int_equal(req.nheaders, cases[i].nheaders);
		assert_string_equal(header(&req, "Content-Type"), "application/json");
		assert_string_equal(header(&req, "Idempotency-Key"), RID);
		if (cases[i].authorization)
			assert_string_equal(header(&req, "Authorization"), cases[i].authorization);
		else
			assert_null(header(&req, "Authorization"));
		assert_int_equal(req.body_len, strlen(req.body));
		body = json_loadb(req.body, req.body_len, 0, NULL);
		assert_non_null(body);
		assert_int_equal(json_object_size(body), 4);
		assert_string_equal(json_string_value(json_object_get(body, "from")), "270282");
		assert_string_equal(json_string_value(json_object_get(body, "to")), TO);
		assert_string_equal(
		    json_string_value(json_object_get(body, "text")), "Reçu: payez « ici » ARRET");
		assert_string_equal(json_string_value(json_object_get(body, "reference")), RID);
		json_decref(body);
		gw_request_free(&req);
		free(conf);
	}
}

static void
test_kannel_request_percent_encodes_values_and_asks_ucs2_only_for_non_gsm7(void **state)
{
	static const struct {
		char *url;
		const char *text;
		const char *want;
	} cases[] = {
		{ KANNEL_URL, "Reçu",
		    KANNEL_URL "?" KANNEL_AUTH "&text=Re%C3%A7u&charset=UTF-8&coding=2" KANNEL_DLR },
		{ KANNEL_URL, "Payé à ARO",
		    KANNEL_URL "?" KANNEL_AUTH "&text=Pay%C3%A9%20%C3%A0%20ARO&charset=UTF-8" KANNEL_DLR },
		{ KANNEL_URL, "STOP 50% & more?",
		    KANNEL_URL "?" KANNEL_AUTH
		               "&text=STOP%2050%25%20%26%20more%3F&charset=UTF-8" KANNEL_DLR },
		{ KANNEL_URL "?smsc=fake", "Payé",
		    KANNEL_URL "?smsc=fake&" KANNEL_AUTH "&text=Pay%C3%A9&charset=UTF-8" KANNEL_DLR },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *conf = conf_new(CONF_DIALECT_KANNEL, cases[i].url, "aro", "s3cr et&=");
		struct gw_message m = message("27022", TO, cases[i].text);
		struct gw_request req;

		build_ok(conf, &m, &req);
		assert_string_equal(req.url, cases[i].want);
		assert_int_equal(req.post, 0);
		assert_null(req.body);
		assert_int_equal(req.nheaders, 0);
		gw_request_free(&req);
		free(conf);
	}
}

/* The value of query parameter name in url, percent-decoded (caller frees), or NULL. */
static char *
query_param(const char *url, const char *name)
{
	size_t n = strlen(name);
	const char *p = strchr(url, '?');

	while (p != NULL) {
		p++;
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			char *raw = strndup(p + n + 1, strcspn(p + n + 1, "&")), *dec;

			dec = curl_easy_unescape(NULL, raw, 0, NULL);
			free(raw);
			return dec;
		}
		p = strchr(p, '&');
	}
	return NULL;
}

/* What Kannel does to a dlr-url before calling it: %d and %i filled, %% turned into %. */
static char *
kannel_fill(const char *dlr)
{
	char *out = calloc(1, strlen(dlr) * 2 + 1), *w = out;

	assert_non_null(out);
	for (; *dlr; dlr++) {
		if (dlr[0] == '%' && dlr[1] == '%')
			*w++ = *dlr++;
		else if (dlr[0] == '%' && (dlr[1] == 'd' || dlr[1] == 'i'))
			w += sprintf(w, "%s", *++dlr == 'd' ? "1" : "fake");
		else
			*w++ = *dlr;
	}
	return out;
}

static void
test_kannel_dlr_url_carries_the_listener_key_through_kannel_escapes(void **state)
{
	static const struct {
		char *secret;
		const char *in_dlr_url; /* NULL: no key parameter */
	} cases[] = {
		{ NULL, NULL },
		{ "", NULL },
		{ "0123abcdef", "&key=0123abcdef" },
		{ "a+b/c é%A", "&key=a%%2Bb%%2Fc%%20%%C3%%A9%%25A" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *conf = conf_new(CONF_DIALECT_KANNEL, KANNEL_URL, "aro", "pw");
		struct gw_message m = message("27022", TO, "Payé");
		struct gw_request req;
		char *dlr, *filled, *key;

		conf->listen.secret = cases[i].secret;
		build_ok(conf, &m, &req);
		dlr = query_param(req.url, "dlr-url");
		assert_non_null(dlr);
		assert_non_null(strstr(dlr, "/v1/dlr/kannel?ref=" RID "&status=%d&smsc_id=%i"));
		filled = kannel_fill(dlr);
		key = query_param(filled, "key");
		if (cases[i].in_dlr_url == NULL) {
			assert_null(strstr(dlr, "key="));
			assert_null(key);
		} else {
			assert_non_null(strstr(dlr, cases[i].in_dlr_url));
			assert_non_null(key);
			assert_string_equal(key, cases[i].secret);
		}
		curl_free(key);
		free(filled);
		curl_free(dlr);
		gw_request_free(&req);
		free(conf);
	}
}

static void
test_twilio_request_posts_form_with_basic_auth_under_account_path(void **state)
{
	static const struct {
		char *url;
		const char *want_url;
	} cases[] = {
		{ "https://api.twilio.com/",
		    "https://api.twilio.com/2010-04-01/Accounts/" TWILIO_SID "/Messages.json" },
		{ "http://127.0.0.1:9091",
		    "http://127.0.0.1:9091/2010-04-01/Accounts/" TWILIO_SID "/Messages.json" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *conf = conf_new(CONF_DIALECT_TWILIO, cases[i].url, TWILIO_SID, "t0k3n");
		struct gw_message m = message("27022", TO, "Reçu à 100%");
		struct gw_request req;

		build_ok(conf, &m, &req);
		assert_string_equal(req.url, cases[i].want_url);
		assert_int_equal(req.post, 1);
		assert_string_equal(req.body,
		    "To=%2B15145550123&From=27022&Body=Re%C3%A7u%20%C3%A0%20100%25"
		    "&StatusCallback=http%3A%2F%2F127.0.0.1%3A8787%2Fv1%2Fdlr%2Ftwilio%3Fref%3D" RID);
		assert_int_equal(req.body_len, strlen(req.body));
		assert_int_equal(req.nheaders, 2);
		assert_string_equal(header(&req, "Content-Type"), "application/x-www-form-urlencoded");
		/* base64("AC0123456789abcdef0123456789abcdef:t0k3n") */
		assert_string_equal(header(&req, "Authorization"),
		    "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp0MGszbg==");
		gw_request_free(&req);
		free(conf);
	}
}

static void
test_build_refuses_unapproved_sender_bad_recipient_empty_text_and_bad_reference(void **state)
{
	static const struct {
		const char *from;
		const char *to;
		const char *text;
		const char *reminder_id;
		const char *err;
	} cases[] = {
		{ "12345", TO, "x", RID, "sender \"12345\" is not an approved short code" },
		{ "27023", TO, "x", RID, "sender \"27023\" is not an approved short code" },
		{ "", TO, "x", RID, "sender is not an approved short code" },
		{ NULL, TO, "x", RID, "sender is not an approved short code" },
		{ "+15145550199", TO, "x", RID, "sender is not an approved short code" },
		{ "27022", "+1514555012", "x", RID, "recipient is not a North-American E.164 number" },
		{ "27022", "+151455501234", "x", RID, "recipient is not a North-American E.164 number" },
		{ "27022", "+11145550123", "x", RID, "recipient is not a North-American E.164 number" },
		{ "27022", "+15141550123", "x", RID, "recipient is not a North-American E.164 number" },
		{ "27022", "15145550123", "x", RID, "recipient is not a North-American E.164 number" },
		{ "27022", "+33145550123", "x", RID, "recipient is not a North-American E.164 number" },
		{ "27022", "+1514555012a", "x", RID, "recipient is not a North-American E.164 number" },
		{ "27022", NULL, "x", RID, "recipient is not a North-American E.164 number" },
		{ "27022", TO, "", RID, "empty message text" },
		{ "27022", TO, NULL, RID, "empty message text" },
		{ "27022", TO, "x", "42\r\nX-Evil: 1", "reminder id is not a uuid" },
		{ "27022", TO, "x", NULL, "reminder id is not a uuid" },
	};
	static const enum conf_dialect dialects[] = { CONF_DIALECT_JSON, CONF_DIALECT_KANNEL,
		CONF_DIALECT_TWILIO };
	size_t i, j;

	(void)state;
	for (j = 0; j < sizeof(dialects) / sizeof(dialects[0]); j++) {
		struct conf *conf = conf_new(dialects[j], "http://127.0.0.1:9090/sms", TWILIO_SID, "t0k3n");
		/* the configured short code is the refused one: the check ignores the configuration */
		snprintf(conf->short_code, sizeof(conf->short_code), "12345");
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct gw_message m = { .reminder_id = cases[i].reminder_id,
				.from = cases[i].from,
				.to = cases[i].to,
				.text = cases[i].text };
			struct gw_request req;
			char err[256] = "";

			assert_int_equal(
			    gw_build(gw_dialect_get(dialects[j]), conf, &m, &req, err, sizeof(err)), -1);
			assert_string_equal(err, cases[i].err);
			assert_null(req.url);
			assert_null(req.body);
			assert_int_equal(req.nheaders, 0);
		}
		free(conf);
	}
}

static void
test_build_accepts_both_approved_short_codes(void **state)
{
	static const char *const senders[] = { "27022", "270282" };
	static const enum conf_dialect dialects[] = { CONF_DIALECT_JSON, CONF_DIALECT_KANNEL,
		CONF_DIALECT_TWILIO };
	size_t i, j;

	(void)state;
	for (j = 0; j < sizeof(dialects) / sizeof(dialects[0]); j++) {
		struct conf *conf = conf_new(dialects[j], "http://127.0.0.1:9090/sms", TWILIO_SID, "t0k3n");
		for (i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
			struct gw_message m = message(senders[i], "+12042220000", "x");
			struct gw_request req;

			build_ok(conf, &m, &req);
			assert_non_null(req.url);
			gw_request_free(&req);
		}
		free(conf);
	}
}

static void
test_build_refuses_missing_settings_the_dialect_needs(void **state)
{
	static const struct {
		enum conf_dialect dialect;
		char *url;
		char *username;
		char *public_url;
		const char *err; /* NULL: builds */
	} cases[] = {
		{ CONF_DIALECT_JSON, NULL, "", NULL, "gateway.url is not set" },
		{ CONF_DIALECT_JSON, "", "", NULL, "gateway.url is not set" },
		{ CONF_DIALECT_JSON, "http://gw/sms", "", NULL, NULL },
		{ CONF_DIALECT_KANNEL, KANNEL_URL, "aro", NULL,
		    "listen.public_url is not set (gateway callbacks need it)" },
		{ CONF_DIALECT_KANNEL, KANNEL_URL, "aro", "",
		    "listen.public_url is not set (gateway callbacks need it)" },
		{ CONF_DIALECT_TWILIO, "https://api.twilio.com", TWILIO_SID, NULL,
		    "listen.public_url is not set (gateway callbacks need it)" },
		{ CONF_DIALECT_TWILIO, "https://api.twilio.com", "", "http://x",
		    "gateway.username (the Twilio account SID) is not set" },
		{ CONF_DIALECT_TWILIO, "https://api.twilio.com", NULL, "http://x",
		    "gateway.username (the Twilio account SID) is not set" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *conf = conf_new(cases[i].dialect, cases[i].url, cases[i].username, "s");
		struct gw_message m = message("27022", TO, "x");
		struct gw_request req;
		char err[256] = "";
		int rc;

		conf->listen.public_url = cases[i].public_url;
		rc = gw_build(gw_dialect_get(cases[i].dialect), conf, &m, &req, err, sizeof(err));
		if (cases[i].err == NULL) {
			assert_int_equal(rc, 0);
			gw_request_free(&req);
		} else {
			assert_int_equal(rc, -1);
			assert_string_equal(err, cases[i].err);
		}
		free(conf);
	}
}

static void
test_json_refuses_a_secret_that_would_break_the_header(void **state)
{
	struct conf *conf = conf_new(CONF_DIALECT_JSON, "http://gw/sms", "", "tok\r\nX-Evil: 1");
	struct gw_message m = message("27022", TO, "x");
	struct gw_request req;
	char err[256] = "";

	(void)state;
	assert_int_equal(gw_build(gw_dialect_get(CONF_DIALECT_JSON), conf, &m, &req, err, sizeof(err)), -1);
	assert_string_equal(err, "gateway secret contains control characters");
	assert_int_equal(req.nheaders, 0);
	free(conf);
}

static void
test_status_rule_sorts_every_status_class(void **state)
{
	static const struct {
		long status;
		enum gw_outcome outcome;
	} cases[] = {
		{ 200, GW_OK },
		{ 201, GW_OK },
		{ 202, GW_OK },
		{ 299, GW_OK },
		{ 100, GW_AMBIGUOUS },
		{ 301, GW_AMBIGUOUS },
		{ 302, GW_AMBIGUOUS },
		{ 400, GW_PERMFAIL },
		{ 401, GW_CONFIG },
		{ 403, GW_CONFIG },
		{ 404, GW_PERMFAIL },
		{ 408, GW_TEMPFAIL },
		{ 413, GW_PERMFAIL },
		{ 422, GW_PERMFAIL },
		{ 429, GW_TEMPFAIL },
		{ 500, GW_AMBIGUOUS },
		{ 502, GW_AMBIGUOUS },
		{ 503, GW_TEMPFAIL },
		{ 504, GW_AMBIGUOUS },
		{ 599, GW_AMBIGUOUS },
		{ 0, GW_AMBIGUOUS },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (gw_classify_status(cases[i].status) != cases[i].outcome)
			fail_msg("status %ld: got %s, want %s", cases[i].status,
			    gw_outcome_to_text(gw_classify_status(cases[i].status)),
			    gw_outcome_to_text(cases[i].outcome));
	}
}

/* One HTTP answer and what a dialect must make of it. */
struct answer_case {
	long status;
	const char *body; /* NULL: no body */
	const char *retry_after;
	enum gw_outcome outcome;
	const char *message_id;
	const char *error;
	int opt_out;
	int64_t retry_after_ms;
};

static void
check_answers(enum conf_dialect dialect, const struct answer_case *cases, size_t n)
{
	const struct gw_dialect *d = gw_dialect_get(dialect);
	size_t i;

	for (i = 0; i < n; i++) {
		struct gw_response resp = { .status = cases[i].status,
			.body = cases[i].body,
			.body_len = cases[i].body ? strlen(cases[i].body) : 0,
			.retry_after = cases[i].retry_after };
		struct gw_result res;

		memset(&res, 0x5a, sizeof(res)); /* classify must set every field */
		d->classify(&resp, &res);
		if (res.outcome != cases[i].outcome)
			fail_msg("%s %ld %s: got %s, want %s", d->name, cases[i].status,
			    cases[i].body ? cases[i].body : "(no body)", gw_outcome_to_text(res.outcome),
			    gw_outcome_to_text(cases[i].outcome));
		assert_int_equal(res.http_status, cases[i].status);
		assert_string_equal(res.message_id, cases[i].message_id);
		assert_string_equal(res.error, cases[i].error);
		assert_int_equal(res.opt_out, cases[i].opt_out);
		assert_int_equal(res.retry_after_ms, cases[i].retry_after_ms);
	}
}

static void
test_json_answers_are_classified_with_id_and_gateway_error(void **state)
{
	static const char missing[] = "gateway reply: \"id\" missing or not a string";
	static const struct answer_case cases[] = {
		{ 200, "{\"id\":\"gw-1\"}", NULL, GW_OK, "gw-1", "", 0, 0 },
		{ 201, "{\"id\":\"gw-2\",\"status\":\"queued\"}", NULL, GW_OK, "gw-2", "", 0, 0 },
		{ 202, "accepted", NULL, GW_OK, "", missing, 0, 0 },
		{ 200, NULL, NULL, GW_OK, "", missing, 0, 0 },
		{ 200, "{}", NULL, GW_OK, "", missing, 0, 0 },
		{ 200, "{\"id\":42}", NULL, GW_OK, "", missing, 0, 0 },
		{ 200, "{\"id\":\"\"}", NULL, GW_OK, "", missing, 0, 0 },
		{ 200, "[\"gw-3\"]", NULL, GW_OK, "", missing, 0, 0 },
		{ 200, "{\"id\":\"" LONG_ID "\"}", NULL, GW_OK, "",
		    "gateway reply: \"id\" longer than 127 bytes", 0, 0 },
		{ 400, "{\"error\":\"invalid number +15145550123\"}", NULL, GW_PERMFAIL, "",
		    "http 400: invalid number ***", 0, 0 },
		{ 401, "{\"error\":\"bad token\"}", NULL, GW_CONFIG, "", "http 401: bad token", 0, 0 },
		{ 403, "<html>Forbidden</html>", NULL, GW_CONFIG, "", "http 403", 0, 0 },
		{ 404, NULL, NULL, GW_PERMFAIL, "", "http 404", 0, 0 },
		{ 408, NULL, NULL, GW_TEMPFAIL, "", "http 408", 0, 0 },
		{ 422, "{\"error\":\"bell\\u0007 \\u00e9t\\u00e9\"}", NULL, GW_PERMFAIL, "",
		    "http 422: bell? ?t?", 0, 0 },
		{ 422, "{\"error\":{\"field\":\"to\"}}", NULL, GW_PERMFAIL, "", "http 422", 0, 0 },
		{ 429, "{\"error\":\"slow down\"}", "30", GW_TEMPFAIL, "", "http 429: slow down", 0, 30000 },
		{ 500, NULL, NULL, GW_AMBIGUOUS, "", "http 500", 0, 0 },
		{ 502, NULL, NULL, GW_AMBIGUOUS, "", "http 502", 0, 0 },
		{ 503, "{\"error\":\"maintenance\"}", "120", GW_TEMPFAIL, "", "http 503: maintenance", 0,
		    120000 },
		{ 504, NULL, NULL, GW_AMBIGUOUS, "", "http 504", 0, 0 },
		{ 302, NULL, NULL, GW_AMBIGUOUS, "", "http 302", 0, 0 },
	};

	(void)state;
	check_answers(CONF_DIALECT_JSON, cases, sizeof(cases) / sizeof(cases[0]));
}

static void
test_kannel_answers_are_classified_on_status_and_reply_line(void **state)
{
	static const struct answer_case cases[] = {
		{ 202, "0: Accepted for delivery", NULL, GW_OK, "", "", 0, 0 },
		{ 202, "0: Accepted for delivery\n", NULL, GW_OK, "", "", 0, 0 },
		{ 202, "3: Queued for later delivery", NULL, GW_OK, "",
		    "kannel 202: 3: Queued for later delivery", 0, 0 },
		{ 403, "Authorization failed for sendsms", NULL, GW_CONFIG, "",
		    "kannel 403: Authorization failed for sendsms", 0, 0 },
		{ 403, "Not routable. Do not try again.", NULL, GW_PERMFAIL, "",
		    "kannel 403: Not routable. Do not try again.", 0, 0 },
		{ 403, "Forbidden", NULL, GW_CONFIG, "", "kannel 403: Forbidden", 0, 0 },
		{ 400, "Missing receiver number, rejected", NULL, GW_PERMFAIL, "",
		    "kannel 400: Missing receiver number, rejected", 0, 0 },
		{ 400, "Coding field misformed, rejected", NULL, GW_PERMFAIL, "",
		    "kannel 400: Coding field misformed, rejected", 0, 0 },
		{ 503, "Temporal failure, try again later.", "60", GW_TEMPFAIL, "",
		    "kannel 503: Temporal failure, try again later.", 0, 60000 },
		{ 500, "Sending failed.", NULL, GW_AMBIGUOUS, "", "kannel 500: Sending failed.", 0, 0 },
		{ 500, NULL, NULL, GW_AMBIGUOUS, "", "kannel 500", 0, 0 },
		{ 401, "Unauthorized", NULL, GW_CONFIG, "", "kannel 401: Unauthorized", 0, 0 },
		{ 404, "Not Found", NULL, GW_PERMFAIL, "", "kannel 404: Not Found", 0, 0 },
		{ 502, "Bad Gateway", NULL, GW_AMBIGUOUS, "", "kannel 502: Bad Gateway", 0, 0 },
	};

	(void)state;
	check_answers(CONF_DIALECT_KANNEL, cases, sizeof(cases) / sizeof(cases[0]));
}

static void
test_twilio_answers_are_classified_on_error_code_then_status(void **state)
{
	static const char sid[] = "SM0123456789abcdef0123456789abcdef";
	static const struct answer_case cases[] = {
		{ 201, "{\"sid\":\"SM0123456789abcdef0123456789abcdef\",\"status\":\"queued\"}", NULL, GW_OK,
		    sid, "", 0, 0 },
		{ 201, "{}", NULL, GW_OK, "", "twilio reply: \"sid\" missing or not a string", 0, 0 },
		{ 400,
		    "{\"code\":21211,\"message\":\"The 'To' number +15145550123 is not a valid phone "
		    "number.\","
		    "\"more_info\":\"https://www.twilio.com/docs/errors/21211\",\"status\":400}",
		    NULL, GW_PERMFAIL, "", "twilio 21211: The 'To' number *** is not a valid phone number.",
		    0, 0 },
		{ 400, "{\"code\":21612,\"message\":\"not reachable\",\"status\":400}", NULL, GW_PERMFAIL, "",
		    "twilio 21612: not reachable", 0, 0 },
		{ 400, "{\"code\":21614,\"message\":\"not a mobile number\",\"status\":400}", NULL,
		    GW_PERMFAIL, "", "twilio 21614: not a mobile number", 0, 0 },
		{ 400, "{\"code\":21635,\"message\":\"landline\",\"status\":400}", NULL, GW_PERMFAIL, "",
		    "twilio 21635: landline", 0, 0 },
		{ 400,
		    "{\"code\":21610,\"message\":\"Attempt to send to unsubscribed "
		    "recipient\",\"status\":400}",
		    NULL, GW_PERMFAIL, "", "twilio 21610: Attempt to send to unsubscribed recipient", 1, 0 },
		{ 401, "{\"code\":20003,\"message\":\"Authenticate\",\"status\":401}", NULL, GW_CONFIG, "",
		    "twilio 20003: Authenticate", 0, 0 },
		{ 400, "{\"code\":21608,\"message\":\"unverified number\",\"status\":400}", NULL, GW_CONFIG,
		    "", "twilio 21608: unverified number", 0, 0 },
		{ 429, "{\"code\":20429,\"message\":\"Too Many Requests\",\"status\":429}", "2", GW_TEMPFAIL,
		    "", "twilio 20429: Too Many Requests", 0, 2000 },
		{ 400, "{\"code\":20429,\"message\":\"Too Many Requests\"}", NULL, GW_TEMPFAIL, "",
		    "twilio 20429: Too Many Requests", 0, 0 },
		{ 429, NULL, NULL, GW_TEMPFAIL, "", "twilio http 429", 0, 0 },
		{ 408, NULL, NULL, GW_TEMPFAIL, "", "twilio http 408", 0, 0 },
		{ 401, NULL, NULL, GW_CONFIG, "", "twilio http 401", 0, 0 },
		{ 403,
		    "{\"code\":21408,\"message\":\"Permission to send an SMS has not been enabled for the "
		    "region "
		    "indicated by the 'To' number: +15145550123.\"}",
		    NULL, GW_PERMFAIL, "",
		    "twilio 21408: Permission to send an SMS has not been enabled for the region indicated "
		    "by the 'To' "
		    "number: ***.",
		    0, 0 },
		{ 404, "{\"code\":20404,\"message\":\"Not Found\"}", NULL, GW_PERMFAIL, "",
		    "twilio 20404: Not Found", 0, 0 },
		{ 400, "{\"code\":21602}", NULL, GW_PERMFAIL, "", "twilio 21602", 0, 0 },
		{ 500, "{\"code\":20500,\"message\":\"Internal Server Error\"}", NULL, GW_AMBIGUOUS, "",
		    "twilio 20500: Internal Server Error", 0, 0 },
		{ 502, "<html>Bad Gateway</html>", NULL, GW_AMBIGUOUS, "", "twilio http 502", 0, 0 },
		{ 503, NULL, NULL, GW_TEMPFAIL, "", "twilio http 503", 0, 0 },
	};

	(void)state;
	check_answers(CONF_DIALECT_TWILIO, cases, sizeof(cases) / sizeof(cases[0]));
}

static void
test_gateway_error_text_is_printable_short_and_masks_numbers(void **state)
{
	static const struct {
		const char *gateway_error; /* the json dialect's {"error": …}, JSON-escaped */
		const char *want;
	} cases[] = {
		{ "bad to 5145550123", "http 400: bad to ***" },
		{ "bad to (514) 555-0123!", "http 400: bad to ***!" },
		{ "bad to +1 514-555-0123.", "http 400: bad to ***." },
		{ "bad to 514.555.0123", "http 400: bad to ***" },
		{ "code 21211 at 2023", "http 400: code 21211 at 2023" },
		{ "first line\\nsecond line", "http 400: first line" },
		{ "tab\\there", "http 400: tab?here" },
		{ "\\u00e7a \\u2019", "http 400: ?a ?" },
		{ "0123456789012345678901234567890123456789", "http 400: ***" },
		{ "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"
		  "mnopqrstuvwxyz"
		  "abcdefghijklmnopqrstuvwxyz",
		    "http 400: abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
		    "abcdefghijklmnopqrstuvwxyzabcdefghijklm..." },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[512];
		struct gw_response resp = { .status = 400, .body = body };
		struct gw_result res;

		snprintf(body, sizeof(body), "{\"error\":\"%s\"}", cases[i].gateway_error);
		resp.body_len = strlen(body);
		gw_dialect_get(CONF_DIALECT_JSON)->classify(&resp, &res);
		assert_string_equal(res.error, cases[i].want);
	}
}

static void
test_transport_failures_retry_before_sending_and_are_ambiguous_after(void **state)
{
	static const struct {
		int code;
		int request_sent;
		enum gw_outcome outcome;
	} cases[] = {
		{ CURLE_COULDNT_CONNECT, 0, GW_TEMPFAIL },
		{ CURLE_COULDNT_CONNECT, 1, GW_TEMPFAIL },
		{ CURLE_COULDNT_RESOLVE_HOST, 0, GW_TEMPFAIL },
		{ CURLE_COULDNT_RESOLVE_PROXY, 0, GW_TEMPFAIL },
		{ CURLE_SSL_CONNECT_ERROR, 0, GW_TEMPFAIL },
		{ CURLE_OPERATION_TIMEDOUT, 0, GW_TEMPFAIL },
		{ CURLE_OPERATION_TIMEDOUT, 1, GW_AMBIGUOUS },
		{ CURLE_SEND_ERROR, 0, GW_TEMPFAIL },
		{ CURLE_SEND_ERROR, 1, GW_AMBIGUOUS },
		{ CURLE_RECV_ERROR, 1, GW_AMBIGUOUS },
		{ CURLE_GOT_NOTHING, 1, GW_AMBIGUOUS },
		{ CURLE_GOT_NOTHING, 0, GW_AMBIGUOUS },
		{ CURLE_PARTIAL_FILE, 1, GW_AMBIGUOUS },
		{ CURLE_URL_MALFORMAT, 0, GW_CONFIG },
		{ CURLE_UNSUPPORTED_PROTOCOL, 0, GW_CONFIG },
		{ CURLE_PEER_FAILED_VERIFICATION, 0, GW_CONFIG },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_result res;
		char want[256];

		memset(&res, 0x5a, sizeof(res));
		gw_classify_transport(cases[i].code, cases[i].request_sent, &res);
		if (res.outcome != cases[i].outcome)
			fail_msg("curl %d sent=%d: got %s, want %s", cases[i].code, cases[i].request_sent,
			    gw_outcome_to_text(res.outcome), gw_outcome_to_text(cases[i].outcome));
		snprintf(want, sizeof(want), "curl %d: %s%s", cases[i].code,
		    curl_easy_strerror((CURLcode)cases[i].code),
		    cases[i].request_sent ? " (after the request was sent)" : "");
		assert_string_equal(res.error, want);
		assert_int_equal(res.http_status, 0);
		assert_string_equal(res.message_id, "");
		assert_int_equal(res.retry_after_ms, 0);
		assert_int_equal(res.opt_out, 0);
	}
}

static void
test_retry_after_takes_seconds_or_http_date_capped_at_one_hour(void **state)
{
	static const struct {
		const char *value;
		int64_t ms;
	} cases[] = {
		{ NULL, 0 },
		{ "", 0 },
		{ "0", 0 },
		{ "120", 120000 },
		{ " 45 ", 45000 },
		{ "45\r\n", 45000 },
		{ "3600", 3600000 },
		{ "86400", 3600000 },
		{ "99999999999999999999", 3600000 },
		{ "-5", 0 },
		{ "1.5", 0 },
		{ "+5", 0 },
		{ "soon", 0 },
		{ "Tue, 14 Nov 2023 22:15:20 GMT", 120000 },
		{ "Tuesday, 14-Nov-23 22:15:20 GMT", 120000 },
		{ "Tue Nov 14 22:15:20 2023", 120000 },
		{ "Tue, 14 Nov 2023 22:13:20 GMT", 0 },
		{ "Mon, 13 Nov 2023 10:00:00 GMT", 0 },
		{ "Wed, 15 Nov 2023 22:13:20 GMT", 3600000 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = gw_parse_retry_after(cases[i].value, NOW);
		if (got != cases[i].ms)
			fail_msg("Retry-After \"%s\": got %lld ms, want %lld",
			    cases[i].value ? cases[i].value : "(null)", (long long)got,
			    (long long)cases[i].ms);
	}
}

static void
test_outcome_to_text_names_every_outcome(void **state)
{
	static const struct {
		enum gw_outcome outcome;
		const char *text;
	} cases[] = {
		{ GW_OK, "ok" },
		{ GW_TEMPFAIL, "tempfail" },
		{ GW_PERMFAIL, "permfail" },
		{ GW_AMBIGUOUS, "ambiguous" },
		{ GW_CONFIG, "config" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(gw_outcome_to_text(cases[i].outcome), cases[i].text);
}

/* Each dialect carries the end of the recipient's window (SPEC §11): json expires_at (UTC, whole seconds,
 * Z), Twilio ValidityPeriod (seconds left, at most 36000), Kannel validity (whole minutes left, rounded
 * down, at least 1); none of them when there is no window end (a keyword reply). */
static void
test_every_dialect_carries_the_window_end(void **state)
{
	static const struct {
		int window;
		int64_t left;
		const char *json, *twilio, *kannel; /* the twilio and kannel parameters end the request */
	} cases[] = {
		{ 1, 3 * 3600 + 59, "\"expires_at\":\"2026-12-01T01:00:00Z\"", "&ValidityPeriod=10859",
		    "&validity=180" },
		{ 1, 11 * 3600, "\"expires_at\":\"2026-12-01T01:00:00Z\"", "&ValidityPeriod=36000",
		    "&validity=660" },
		{ 1, 45, "\"expires_at\":\"2026-12-01T01:00:00Z\"", "&ValidityPeriod=45", "&validity=1" },
		{ 1, -30, "\"expires_at\":\"2026-12-01T01:00:00Z\"", "&ValidityPeriod=1", "&validity=1" },
		{ 0, 0, NULL, NULL, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_message m = message("27022", TO, "x");
		struct conf *json = conf_new(CONF_DIALECT_JSON, "http://127.0.0.1:9090/sms", "", NULL);
		struct conf *tw =
		    conf_new(CONF_DIALECT_TWILIO, "https://api.twilio.com", TWILIO_SID, "t0k3n");
		struct conf *kn = conf_new(CONF_DIALECT_KANNEL, KANNEL_URL, "aro", "pw");
		struct gw_request a = { 0 }, b = { 0 }, c = { 0 };

		if (cases[i].window) {
			m.expires_at = 1796086800; /* 2026-12-01T01:00:00Z */
			m.now = m.expires_at - cases[i].left;
		}
		build_ok(json, &m, &a);
		build_ok(tw, &m, &b);
		build_ok(kn, &m, &c);
		if (cases[i].json != NULL) {
			assert_non_null(strstr(a.body, cases[i].json));
			assert_string_equal(
			    b.body + strlen(b.body) - strlen(cases[i].twilio), cases[i].twilio);
			assert_string_equal(c.url + strlen(c.url) - strlen(cases[i].kannel), cases[i].kannel);
		} else {
			assert_null(strstr(a.body, "expires_at"));
			assert_null(strstr(b.body, "ValidityPeriod"));
			assert_null(strstr(c.url, "validity"));
		}
		gw_request_free(&a);
		gw_request_free(&b);
		gw_request_free(&c);
		free(json);
		free(tw);
		free(kn);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dialect_get_names_each_dialect_and_only_json_is_idempotent),
		cmocka_unit_test(test_json_request_posts_reference_with_idempotency_key_and_optional_bearer),
		cmocka_unit_test(test_kannel_request_percent_encodes_values_and_asks_ucs2_only_for_non_gsm7),
		cmocka_unit_test(test_kannel_dlr_url_carries_the_listener_key_through_kannel_escapes),
		cmocka_unit_test(test_twilio_request_posts_form_with_basic_auth_under_account_path),
		cmocka_unit_test(
		    test_build_refuses_unapproved_sender_bad_recipient_empty_text_and_bad_reference),
		cmocka_unit_test(test_build_accepts_both_approved_short_codes),
		cmocka_unit_test(test_build_refuses_missing_settings_the_dialect_needs),
		cmocka_unit_test(test_json_refuses_a_secret_that_would_break_the_header),
		cmocka_unit_test(test_status_rule_sorts_every_status_class),
		cmocka_unit_test(test_json_answers_are_classified_with_id_and_gateway_error),
		cmocka_unit_test(test_kannel_answers_are_classified_on_status_and_reply_line),
		cmocka_unit_test(test_twilio_answers_are_classified_on_error_code_then_status),
		cmocka_unit_test(test_gateway_error_text_is_printable_short_and_masks_numbers),
		cmocka_unit_test(test_transport_failures_retry_before_sending_and_are_ambiguous_after),
		cmocka_unit_test(test_retry_after_takes_seconds_or_http_date_capped_at_one_hour),
		cmocka_unit_test(test_outcome_to_text_names_every_outcome),
		cmocka_unit_test(test_every_dialect_carries_the_window_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
