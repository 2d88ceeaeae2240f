/* Unit tests of webhook.c: Twilio signatures, form and JSON parsing, field checks, DLR status mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "payremind/webhook.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Twilio's published validator test vector (twilio-python tests/unit/test_request_validator.py, the
 * example of Twilio's "Secure webhooks" page): auth token 12345, this URL and these parameters. */
#define TW_TOKEN "12345"
#define TW_URL "https://mycompany.com/myapp.php?foo=1&bar=2"
#define TW_FORM \
	"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212"
#define TW_SIG "RSOYDt4T1cUTdK1PDd93/VVr8B8="
/* Same URL and token, a repeated name: sorted by name, then value. */
#define TW_DUP_FORM "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"
#define TW_DUP_SIG "IK+Dwps556ElfBT0I3Rgjkr1wJU="

static void
form(const char *s, struct webhook_params *p)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(webhook_form_parse(s, strlen(s), p), 0);
}

static void
test_twilio_signature_matches_twilios_published_examples(void **state)
{
	static const struct {
		const char *form;
		const char *sig;
	} cases[] = {
		{ TW_FORM, TW_SIG },
		{ "To=%2B18005551212&From=%2B14158675309&Digits=1234&Caller=%2B14158675309&CallSid="
		  "CA1234567890ABCDE",
		    TW_SIG }, /* order of arrival does not matter */
		{ TW_DUP_FORM, TW_DUP_SIG },
		{ "Digits=1234&SidAccount=AC123&Digits=5678&Sid=CA123", TW_DUP_SIG },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p;
		char sig[29];

		form(cases[i].form, &p);
		assert_int_equal(webhook_twilio_signature(TW_TOKEN, TW_URL, &p, sig, sizeof(sig)), 0);
		assert_string_equal(sig, cases[i].sig);
		assert_int_equal(webhook_twilio_valid(TW_TOKEN, TW_URL, &p, cases[i].sig), 1);
		webhook_params_free(&p);
	}
}

static void
test_twilio_signature_refuses_any_tampering(void **state)
{
	static const struct {
		const char *what;
		const char *token;
		const char *url;
		const char *form;
		const char *sig;
	} cases[] = {
		{ "value changed", TW_TOKEN, TW_URL,
		    "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1235"
		    "&From=%2B14158675309&To=%2B18005551212",
		    TW_SIG },
		{ "parameter added", TW_TOKEN, TW_URL, TW_FORM "&Body=STOP", TW_SIG },
		{ "parameter dropped", TW_TOKEN, TW_URL,
		    "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309",
		    TW_SIG },
		{ "name renamed", TW_TOKEN, TW_URL,
		    "CallSid=CA1234567890ABCDE&caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%"
		    "2B18005551212",
		    TW_SIG },
		{ "http instead of https", TW_TOKEN, "http://mycompany.com/myapp.php?foo=1&bar=2", TW_FORM,
		    TW_SIG },
		{ "query changed", TW_TOKEN, "https://mycompany.com/myapp.php?foo=1&bar=3", TW_FORM, TW_SIG },
		{ "other token", "12346", TW_URL, TW_FORM, TW_SIG },
		{ "empty token", "", TW_URL, TW_FORM, TW_SIG },
		{ "no token", NULL, TW_URL, TW_FORM, TW_SIG },
		{ "signature truncated", TW_TOKEN, TW_URL, TW_FORM, "RSOYDt4T1cUTdK1PDd93/VVr8B8" },
		{ "signature with a byte flipped", TW_TOKEN, TW_URL, TW_FORM,
		    "RSOYDt4T1cUTdK1PDd93/VVr8B9=" },
		{ "signature longer", TW_TOKEN, TW_URL, TW_FORM, TW_SIG "=" },
		{ "signature empty", TW_TOKEN, TW_URL, TW_FORM, "" },
		{ "no signature", TW_TOKEN, TW_URL, TW_FORM, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p;

		print_message("case: %s\n", cases[i].what);
		form(cases[i].form, &p);
		assert_int_equal(webhook_twilio_valid(cases[i].token, cases[i].url, &p, cases[i].sig), 0);
		webhook_params_free(&p);
	}
}

static void
test_form_parse_decodes_plus_and_percent_and_keeps_duplicates(void **state)
{
	static const struct {
		const char *in;
		size_t n;
		const char *pairs[4][2];
	} cases[] = {
		{ "a=1&b=2", 2, { { "a", "1" }, { "b", "2" } } },
		{ "text=+STOP+", 1, { { "text", " STOP " } } },
		{ "text=ARR%C3%8AT&to=27022", 2, { { "text", "ARRÊT" }, { "to", "27022" } } },
		{ "From=%2B15145550123", 1, { { "From", "+15145550123" } } },
		{ "a=x%20y+z%2b", 1, { { "a", "x y z+" } } },
		{ "flag&b=", 2, { { "flag", "" }, { "b", "" } } },
		{ "&&a=1&", 1, { { "a", "1" } } },
		{ "d=1&d=2", 2, { { "d", "1" }, { "d", "2" } } },
		{ "k%3Dy=v%26w", 1, { { "k=y", "v&w" } } },
		{ "", 0, { { NULL, NULL } } },
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p;

		print_message("case: %s\n", cases[i].in);
		form(cases[i].in, &p);
		assert_int_equal(p.n, cases[i].n);
		for (j = 0; j < cases[i].n; j++) {
			assert_string_equal(p.v[j].name, cases[i].pairs[j][0]);
			assert_string_equal(p.v[j].value, cases[i].pairs[j][1]);
		}
		webhook_params_free(&p);
	}
}

static void
test_form_parse_refuses_bad_escapes_and_escaped_nul(void **state)
{
	static const char *const cases[] = { "a=%zz", "a=%4", "a=%", "a%=1", "a=%00", "a=1&b=x%g1" };
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p = { 0 };

		print_message("case: %s\n", cases[i]);
		assert_int_equal(webhook_form_parse(cases[i], strlen(cases[i]), &p), -1);
		webhook_params_free(&p);
	}
}

static void
test_json_parse_keeps_strings_and_integers_and_refuses_non_objects(void **state)
{
	static const struct {
		const char *body;
		int rc;
		const char *err_has;      /* rc -1 */
		const char *name, *value; /* rc 0: one member checked */
		int present;              /* the name is there (value may be NULL) */
	} cases[] = {
		{ "{\"from\":\"+15145550123\",\"id\":\"m1\"}", 0, NULL, "from", "+15145550123", 1 },
		{ "{\"id\":12345}", 0, NULL, "id", "12345", 1 },
		{ "{\"id\":null}", 0, NULL, "id", NULL, 1 },
		{ "{\"id\":[1]}", 0, NULL, "id", NULL, 1 },
		{ "{\"text\":\"Arr\\u00eat\"}", 0, NULL, "text", "Arrêt", 1 },
		{ "{}", 0, NULL, "id", NULL, 0 },
		{ "[1,2]", -1, "expected an object", NULL, NULL, 0 },
		{ "\"x\"", -1, "bad JSON", NULL, NULL, 0 },
		{ "{\"id\":", -1, "bad JSON", NULL, NULL, 0 },
		{ "", -1, "bad JSON", NULL, NULL, 0 },
		{ "{\"id\":\"a\",\"id\":\"b\"}", -1, "duplicate", NULL, NULL, 0 },
		{ "{\"t\":\"a\\u0000b\"}", -1, "bad JSON", NULL, NULL, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p = { 0 };
		char err[256] = "";
		size_t k;
		int found = 0;

		print_message("case: %s\n", cases[i].body);
		assert_int_equal(
		    webhook_json_parse(cases[i].body, strlen(cases[i].body), &p, err, sizeof(err)),
		    cases[i].rc);
		if (cases[i].rc == -1) {
			assert_non_null(strstr(err, cases[i].err_has));
		} else {
			for (k = 0; k < p.n; k++)
				found |= strcmp(p.v[k].name, cases[i].name) == 0;
			assert_int_equal(found, cases[i].present);
			if (cases[i].value)
				assert_string_equal(webhook_params_get(&p, cases[i].name), cases[i].value);
			else
				assert_null(webhook_params_get(&p, cases[i].name));
		}
		webhook_params_free(&p);
	}
}

static void
test_inbound_parse_reads_each_dialects_names_and_normalises_the_sender(void **state)
{
	static const struct {
		enum conf_dialect dialect;
		const char *form;
		const char *from, *to, *text, *id;
	} cases[] = {
		{ CONF_DIALECT_JSON, "from=%2B15145550123&to=27022&text=STOP&id=m1", "+15145550123", "27022",
		    "STOP", "m1" },
		{ CONF_DIALECT_KANNEL, "from=15145550123&to=270282&text=+arr%C3%AAt+&id=k-1", "+15145550123",
		    "270282", " arrêt ", "k-1" },
		{ CONF_DIALECT_KANNEL, "from=4385550123&to=27022&text=&id=k2", "+14385550123", "27022", "",
		    "k2" },
		{ CONF_DIALECT_TWILIO,
		    "From=%2B15145550123&To=27022&Body=Help&MessageSid=SM0123456789abcdef0123456789abcdef&"
		    "NumMedia=0",
		    "+15145550123", "27022", "Help", "SM0123456789abcdef0123456789abcdef" },
		{ CONF_DIALECT_JSON, "from=%2B15145550123&to=12345&text=x&id=m1", "+15145550123", "12345",
		    "x", "m1" }, /* whether 12345 is ours is the listener's check */
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p;
		struct webhook_inbound in;
		char err[256] = "";

		print_message("case: %s\n", cases[i].form);
		form(cases[i].form, &p);
		assert_int_equal(webhook_inbound_parse(cases[i].dialect, &p, &in, err, sizeof(err)), 0);
		assert_string_equal(in.from, cases[i].from);
		assert_string_equal(in.to, cases[i].to);
		assert_string_equal(in.text, cases[i].text);
		assert_string_equal(in.id, cases[i].id);
		webhook_params_free(&p);
	}
}

static void
test_inbound_parse_names_the_missing_or_bad_field(void **state)
{
	static const struct {
		enum conf_dialect dialect;
		const char *form;
		const char *err;
	} cases[] = {
		{ CONF_DIALECT_JSON, "to=27022&text=STOP&id=m1", "missing field: from" },
		{ CONF_DIALECT_JSON, "from=%2B15145550123&text=STOP&id=m1", "missing field: to" },
		{ CONF_DIALECT_JSON, "from=%2B15145550123&to=27022&id=m1", "missing field: text" },
		{ CONF_DIALECT_JSON, "from=%2B15145550123&to=27022&text=STOP", "missing field: id" },
		{ CONF_DIALECT_TWILIO, "From=%2B15145550123&To=27022&MessageSid=SM1", "missing field: Body" },
		{ CONF_DIALECT_TWILIO, "from=%2B15145550123&To=27022&Body=x&MessageSid=SM1",
		    "missing field: From" },
		{ CONF_DIALECT_JSON,
		    "from=%2B15145550123&to=27022&text=STOP&id=", "field id: expected 1 to 128" },
		{ CONF_DIALECT_JSON, "from=%2B15145550123&to=27022&text=STOP&id=a+b",
		    "field id: expected 1 to 128" },
		{ CONF_DIALECT_JSON, "from=%2B15145550123&to=&text=STOP&id=m1", "field to:" },
		{ CONF_DIALECT_JSON,
		    "from=%2B15145550123&to=27022&text=STOP&id=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaa",
		    "field id: expected 1 to 128" },
		{ CONF_DIALECT_JSON, "from=%2B441234567890&to=27022&text=STOP&id=m1",
		    "field from: not a North-American phone number" },
		{ CONF_DIALECT_KANNEL, "from=%2B15141550123&to=27022&text=STOP&id=m1",
		    "field from: not a North-American phone number" },
		{ CONF_DIALECT_TWILIO, "From=&To=27022&Body=x&MessageSid=SM1",
		    "field From: not a North-American phone number" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p;
		struct webhook_inbound in;
		char err[256] = "";

		print_message("case: %s\n", cases[i].form);
		form(cases[i].form, &p);
		assert_int_equal(webhook_inbound_parse(cases[i].dialect, &p, &in, err, sizeof(err)), -1);
		assert_non_null(strstr(err, cases[i].err));
		webhook_params_free(&p);
	}
}

static void
test_inbound_parse_says_which_field_is_not_a_string(void **state)
{
	static const char body[] = "{\"from\":\"+15145550123\",\"to\":27022,\"text\":null,\"id\":\"m1\"}";
	struct webhook_params p = { 0 };
	struct webhook_inbound in;
	char err[256] = "";

	(void)state;
	assert_int_equal(webhook_json_parse(body, strlen(body), &p, err, sizeof(err)), 0);
	assert_int_equal(webhook_inbound_parse(CONF_DIALECT_JSON, &p, &in, err, sizeof(err)), -1);
	assert_string_equal(err, "field text: must be a string");
	webhook_params_free(&p);
}

static void
test_dlr_parse_maps_each_dialects_status(void **state)
{
	static const struct {
		enum conf_dialect dialect;
		const char *form;
		enum webhook_dlr_status status;
		const char *ref, *gateway_id, *code;
		int by_sid, opt_out;
	} cases[] = {
		{ CONF_DIALECT_JSON, "id=g1&reference=r1&status=accepted", WEBHOOK_DLR_ACCEPTED, "r1", "g1",
		    "", 0, 0 },
		{ CONF_DIALECT_JSON, "id=g1&reference=r1&status=buffered", WEBHOOK_DLR_BUFFERED, "r1", "g1",
		    "", 0, 0 },
		{ CONF_DIALECT_JSON, "id=g1&reference=r1&status=delivered", WEBHOOK_DLR_DELIVERED, "r1", "g1",
		    "", 0, 0 },
		{ CONF_DIALECT_JSON, "id=g1&reference=r1&status=undelivered&code=E42",
		    WEBHOOK_DLR_UNDELIVERED, "r1", "g1", "E42", 0, 0 },
		{ CONF_DIALECT_JSON, "id=g1&reference=r1&status=failed", WEBHOOK_DLR_FAILED, "r1", "g1", "",
		    0, 0 },
		{ CONF_DIALECT_KANNEL, "ref=r2&status=1&smsc_id=fake", WEBHOOK_DLR_DELIVERED, "r2", "", "1",
		    0, 0 },
		{ CONF_DIALECT_KANNEL, "ref=r2&status=2", WEBHOOK_DLR_UNDELIVERED, "r2", "", "2", 0, 0 },
		{ CONF_DIALECT_KANNEL, "ref=r2&status=4", WEBHOOK_DLR_BUFFERED, "r2", "", "4", 0, 0 },
		{ CONF_DIALECT_KANNEL, "ref=r2&status=8", WEBHOOK_DLR_SMSC_ACK, "r2", "", "8", 0, 0 },
		{ CONF_DIALECT_KANNEL, "ref=r2&status=16&key=k", WEBHOOK_DLR_SMSC_REJECT, "r2", "", "16", 0,
		    0 },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=queued", WEBHOOK_DLR_ACCEPTED, "SM1",
		    "SM1", "", 1, 0 },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=sending", WEBHOOK_DLR_ACCEPTED, "SM1",
		    "SM1", "", 1, 0 },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=sent", WEBHOOK_DLR_SENT, "SM1", "SM1",
		    "", 1, 0 },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=delivered", WEBHOOK_DLR_DELIVERED, "SM1",
		    "SM1", "", 1, 0 },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=read", WEBHOOK_DLR_DELIVERED, "SM1",
		    "SM1", "", 1, 0 },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003",
		    WEBHOOK_DLR_UNDELIVERED, "SM1", "SM1", "30003", 1, 0 },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=failed&ErrorCode=21610",
		    WEBHOOK_DLR_FAILED, "SM1", "SM1", "21610", 1, 1 },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=canceled", WEBHOOK_DLR_FAILED, "SM1",
		    "SM1", "", 1, 0 },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=partially_delivered&ErrorCode=",
		    WEBHOOK_DLR_OTHER, "SM1", "SM1", "", 1, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p;
		struct webhook_dlr d;
		char err[256] = "";

		print_message("case: %s\n", cases[i].form);
		form(cases[i].form, &p);
		assert_int_equal(webhook_dlr_parse(cases[i].dialect, &p, &d, err, sizeof(err)), 0);
		assert_int_equal(d.status, cases[i].status);
		assert_string_equal(d.ref, cases[i].ref);
		assert_string_equal(d.gateway_id, cases[i].gateway_id);
		assert_string_equal(d.code, cases[i].code);
		assert_int_equal(d.by_sid, cases[i].by_sid);
		assert_int_equal(d.opt_out, cases[i].opt_out);
		webhook_params_free(&p);
	}
}

static void
test_dlr_parse_refuses_unknown_statuses_and_names_missing_fields(void **state)
{
	static const struct {
		enum conf_dialect dialect;
		const char *form;
		const char *err;
	} cases[] = {
		{ CONF_DIALECT_JSON, "id=g1&reference=r1&status=DELIVERED", "field status: unknown status" },
		{ CONF_DIALECT_JSON, "id=g1&reference=r1&status=sent", "field status: unknown status" },
		{ CONF_DIALECT_JSON, "reference=r1&status=delivered", "missing field: id" },
		{ CONF_DIALECT_JSON, "id=g1&status=delivered", "missing field: reference" },
		{ CONF_DIALECT_JSON, "id=g1&reference=r1", "missing field: status" },
		{ CONF_DIALECT_JSON, "id=g1&reference=r1&status=failed&code=a%20b", "field code:" },
		{ CONF_DIALECT_KANNEL, "ref=r2&status=3", "field status: unknown status (1, 2, 4, 8 or 16)" },
		{ CONF_DIALECT_KANNEL, "ref=r2&status=%25d", "field status: unknown status" },
		{ CONF_DIALECT_KANNEL, "status=1", "missing field: ref" },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=Delivered!",
		    "field MessageStatus: unknown status" },
		{ CONF_DIALECT_TWILIO,
		    "MessageSid=SM1&MessageStatus=", "field MessageStatus: unknown status" },
		{ CONF_DIALECT_TWILIO, "MessageStatus=delivered", "missing field: MessageSid" },
		{ CONF_DIALECT_TWILIO, "MessageSid=SM1&MessageStatus=failed&ErrorCode=1%3B2",
		    "field ErrorCode:" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p;
		struct webhook_dlr d;
		char err[256] = "";

		print_message("case: %s\n", cases[i].form);
		form(cases[i].form, &p);
		assert_int_equal(webhook_dlr_parse(cases[i].dialect, &p, &d, err, sizeof(err)), -1);
		assert_non_null(strstr(err, cases[i].err));
		webhook_params_free(&p);
	}
}

static void
test_dlr_status_texts_are_the_database_vocabulary(void **state)
{
	static const char *const texts[WEBHOOK_DLR_COUNT] = { "accepted", "buffered", "smsc_ack", "sent",
		"delivered", "undelivered", "failed", "smsc_reject", "other" };
	int i;

	(void)state;
	for (i = 0; i < WEBHOOK_DLR_COUNT; i++)
		assert_string_equal(webhook_dlr_status_to_text((enum webhook_dlr_status)i), texts[i]);
	assert_string_equal(webhook_dlr_status_to_text(WEBHOOK_DLR_COUNT), "other");
}

static void
test_msisdn_accepts_north_american_shapes_only(void **state)
{
	static const struct {
		const char *in;
		const char *out; /* NULL: refused */
	} cases[] = {
		{ "+15145550123", "+15145550123" },
		{ "15145550123", "+15145550123" },
		{ "5145550123", "+15145550123" },
		{ "+14385550123", "+14385550123" },
		{ "+11145550123", NULL }, /* area code starts with 1 */
		{ "+15141550123", NULL }, /* exchange starts with 1 */
		{ "+1514555012", NULL },
		{ "+151455501234", NULL },
		{ "+441234567890", NULL },
		{ "05145550123", NULL },
		{ "+1514555012a", NULL },
		{ "27022", NULL },
		{ "", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		char out[16] = "";

		print_message("case: %s\n", cases[i].in);
		assert_int_equal(webhook_msisdn(cases[i].in, out), cases[i].out ? 0 : -1);
		if (cases[i].out)
			assert_string_equal(out, cases[i].out);
	}
}

static void
test_uuid_shape(void **state)
{
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
		{ "0b6c7d5e-8f90-4a1b-9c2d-3e4f5a6b7c8d", 1 },
		{ "0B6C7D5E-8F90-4A1B-9C2D-3E4F5A6B7C8D", 1 },
		{ "0b6c7d5e8f904a1b9c2d3e4f5a6b7c8d", 0 },
		{ "0b6c7d5e-8f90-4a1b-9c2d-3e4f5a6b7c8", 0 },
		{ "0b6c7d5e-8f90-4a1b-9c2d-3e4f5a6b7c8dd", 0 },
		{ "0b6c7d5e-8f90-4a1b-9c2d-3e4f5a6b7c8g", 0 },
		{ "0b6c7d5e_8f90-4a1b-9c2d-3e4f5a6b7c8d", 0 },
		{ "", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		assert_int_equal(webhook_is_uuid(cases[i].s), cases[i].ok);
}

/* Build params from "name=value" pieces ("name" alone: a NULL value, as a JSON non-string). */
static void
params_of(struct webhook_params *p, const char *const *pairs)
{
	size_t i;

	for (i = 0; pairs[i] != NULL; i++) {
		const char *eq = strchr(pairs[i], '=');
		char name[64];

		snprintf(
		    name, sizeof(name), "%.*s", eq ? (int)(eq - pairs[i]) : (int)strlen(pairs[i]), pairs[i]);
		assert_int_equal(webhook_params_add(p, name, eq ? eq + 1 : NULL), 0);
	}
}

/* Every name and value must be strict UTF-8 and no name may repeat: 400 naming it, never 5xx later. */
static void
test_params_check_refuses_bad_utf8_and_repeated_names(void **state)
{
	static const struct {
		const char *what;
		const char *pairs[6];
		const char *err; /* NULL: accepted */
	} cases[] = {
		{ "plain kannel inbound",
		    { "key=k", "from=15145550101", "to=27022", "text=STOP", "id=a", NULL }, NULL },
		{ "accents and an emoji", { "text=ARR\xc3\x8aT \xf0\x9f\x98\x80", NULL }, NULL },
		{ "U+10FFFF is the last code point", { "text=\xf4\x8f\xbf\xbf", NULL }, NULL },
		{ "a JSON member that is not a string", { "text", NULL }, NULL },
		{ "above U+10FFFF", { "from=15145550101", "text=\xf4\x90\x80\x80", NULL },
		    "field text: not valid UTF-8" },
		{ "Latin-1 is not UTF-8", { "text=caf\xe9", NULL }, "field text: not valid UTF-8" },
		{ "a surrogate", { "id=\xed\xa0\x80", NULL }, "field id: not valid UTF-8" },
		{ "an overlong slash", { "to=\xc0\xaf", NULL }, "field to: not valid UTF-8" },
		{ "a 5-byte form", { "Body=\xf8\x88\x80\x80\x80", NULL }, "field Body: not valid UTF-8" },
		{ "a truncated sequence", { "text=ok \xe2\x82", NULL }, "field text: not valid UTF-8" },
		{ "a bad name", { "te\xffxt=x", NULL }, "a parameter name is not valid UTF-8" },
		{ "a made-up name is not echoed", { "15145550101=\xff", NULL },
		    "a parameter value is not valid UTF-8" },
		{ "key twice", { "key=wrong", "from=15145550101", "key=right", NULL },
		    "parameter key: given more than once" },
		{ "text twice", { "text=hello", "text=STOP", NULL }, "parameter text: given more than once" },
		{ "ref twice", { "ref=a", "status=1", "ref=b", NULL },
		    "parameter ref: given more than once" },
		{ "an empty name twice", { "=a", "=b", NULL }, "a parameter is given more than once" },
		{ "a number as a repeated name is not echoed", { "15145550101=a", "15145550101=b", NULL },
		    "a parameter is given more than once" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct webhook_params p = { 0 };
		char err[128] = "";

		print_message("case: %s\n", cases[i].what);
		params_of(&p, cases[i].pairs);
		assert_int_equal(webhook_params_check(&p, err, sizeof(err)), cases[i].err ? -1 : 0);
		if (cases[i].err != NULL)
			assert_string_equal(err, cases[i].err);
		webhook_params_free(&p);
	}
}

/* A form with thousands of parameters is checked quickly, and one repeat among them is found. */
static void
test_params_check_scales_to_a_full_body(void **state)
{
	struct webhook_params p = { 0 };
	char name[16], err[128];
	int i;

	(void)state;
	for (i = 0; i < 8000; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(webhook_params_add(&p, name, "v"), 0);
	}
	assert_int_equal(webhook_params_check(&p, err, sizeof(err)), 0);
	assert_int_equal(webhook_params_add(&p, "p77", "again"), 0);
	assert_int_equal(webhook_params_check(&p, err, sizeof(err)), -1);
	assert_string_equal(err, "parameter p77: given more than once");
	webhook_params_free(&p);
}

/* What a client sent goes to the log only when it cannot be a phone number. */
static void
test_log_value_masks_anything_that_may_be_a_number(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "+15145550109", "+1514***0109" },
		{ "15145550109", "+1514***0109" },
		{ "5145550109", "+1514***0109" },
		{ "514-555-0109", "***" },
		{ "(514)555-0109", "***" },
		{ "+442071234567", "***" },
		{ "tel:15145550109x", "***" },
		{ "27022", "27022" },
		{ "270282", "270282" },
		{ "m-1", "m-1" },
		{ "kannel-42", "kannel-42" },
		{ "0b6c7d5e-8f90-4a1b-9c2d-3e4f5a6b7c8d", "0b6c7d5e-8f90-4a1b-9c2d-3e4f5a6b7c8d" },
		{ "SM0123456789abcdef0123456789abcdef", "SM0123456789abcdef0123456789abcdef" },
		{ "30001", "30001" },
		{ "", "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		char buf[24];

		print_message("case: %s\n", cases[i].in);
		assert_string_equal(webhook_log_value(cases[i].in, buf, sizeof(buf)), cases[i].out);
	}
	assert_string_equal(webhook_log_value(NULL, NULL, 0), "-");
}

/* X-Forwarded-For counts only from a trusted proxy, and names the rightmost untrusted hop. */
static void
test_forwarded_client_trusts_only_listed_proxies(void **state)
{
	static const char *const trusted[] = { "10.0.0.5", "10.0.0.6", "2001:db8::1" };
	static const struct {
		const char *peer, *xff, *client;
		int rc;
	} cases[] = {
		{ "192.0.2.9", NULL, "192.0.2.9", 0 },
		{ "192.0.2.9", "198.51.100.1", "192.0.2.9", 0 }, /* not a proxy: its header is ignored */
		{ "10.0.0.5", NULL, "10.0.0.5", 0 },             /* a proxy's own request */
		{ "10.0.0.5", "198.51.100.1", "198.51.100.1", 0 },
		{ "10.0.0.5", "1.2.3.4, 198.51.100.1", "198.51.100.1",
		    0 }, /* the left one is the client's say */
		{ "10.0.0.5", "198.51.100.1,10.0.0.6", "198.51.100.1", 0 }, /* through two proxies */
		{ "10.0.0.5", " 198.51.100.1 ,\t10.0.0.6 ", "198.51.100.1", 0 },
		{ "10.0.0.5", "10.0.0.6", "10.0.0.6", 0 }, /* every hop trusted: the first */
		{ "2001:db8::1", "2001:DB8:0::7", "2001:db8::7", 0 },
		{ "10.0.0.5", "::ffff:198.51.100.1", "198.51.100.1", 0 },
		{ "10.0.0.5", "unknown", "10.0.0.5", -1 },
		{ "10.0.0.5", "198.51.100.1, garbage", "10.0.0.5", -1 },
		{ "10.0.0.5", "", "10.0.0.5", -1 },
		{ "10.0.0.5", "198.51.100.1:443", "10.0.0.5", -1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		char out[WEBHOOK_ADDR_MAX];

		print_message("case: %s via %s\n", cases[i].xff ? cases[i].xff : "(none)", cases[i].peer);
		assert_int_equal(webhook_forwarded_client(
		                     cases[i].peer, cases[i].xff, trusted, NELEM(trusted), out, sizeof(out)),
		    cases[i].rc);
		assert_string_equal(out, cases[i].client);
	}
}

static void
test_key_equal_needs_the_exact_configured_key(void **state)
{
	static const struct {
		const char *expected, *given;
		int ok;
	} cases[] = {
		{ "s3cret", "s3cret", 1 },
		{ "s3cret", "s3cre", 0 },
		{ "s3cret", "s3cret ", 0 },
		{ "s3cret", "S3cret", 0 },
		{ "s3cret", "", 0 },
		{ "s3cret", NULL, 0 },
		{ "", "", 0 },
		{ NULL, "s3cret", 0 },
		{ NULL, NULL, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		assert_int_equal(webhook_key_equal(cases[i].expected, cases[i].given), cases[i].ok);
}

/* The portal's payment results: every field checked, named when wrong. */
static void
test_payment_fields_are_checked_and_named(void **state)
{
	static const struct {
		const char *body, *err; /* err NULL: accepted */
	} cases[] = {
		{ "{\"id\":\"pay-1\",\"reference\":\"0190f1c2-7d1e-7abc-8def-0123456789ab\",\"status\":\"paid\","
		  "\"amount_cents\":123456}",
		    NULL },
		{ "{\"id\":\"pay-1\",\"reference\":\"0190f1c2-7d1e-7abc-8def-0123456789ab\",\"status\":\"cancelled\","
		  "\"amount_cents\":0,\"extra\":true}",
		    NULL },
		{ "{\"reference\":\"0190f1c2-7d1e-7abc-8def-0123456789ab\",\"status\":\"paid\",\"amount_cents\":1}",
		    "missing field: id" },
		{ "{\"id\":\"a b\",\"reference\":\"0190f1c2-7d1e-7abc-8def-0123456789ab\",\"status\":\"paid\","
		  "\"amount_cents\":1}",
		    "field id: 1 to 200 printable characters without spaces" },
		{ "{\"id\":\"p\",\"reference\":\"A-1001\",\"status\":\"paid\",\"amount_cents\":1}",
		    "field reference: not a reminder id (a UUID)" },
		{ "{\"id\":\"p\",\"reference\":\"0190f1c2-7d1e-7abc-8def-0123456789ab\",\"status\":\"refunded\","
		  "\"amount_cents\":1}",
		    "field status: one of paid, failed, cancelled" },
		{ "{\"id\":\"p\",\"reference\":\"0190f1c2-7d1e-7abc-8def-0123456789ab\",\"status\":\"paid\","
		  "\"amount_cents\":-5}",
		    "field amount_cents: an integer of cents, 0 or more" },
		{ "{\"id\":\"p\",\"reference\":\"0190f1c2-7d1e-7abc-8def-0123456789ab\",\"status\":\"paid\","
		  "\"amount_cents\":1.5}",
		    "field amount_cents: must be a string" },
		{ "{\"id\":\"p\",\"reference\":\"0190f1c2-7d1e-7abc-8def-0123456789ab\",\"status\":\"paid\","
		  "\"amount_cents\":99999999999999999999}",
		    "bad JSON" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct webhook_params p = { 0 };
		struct webhook_payment pay;
		char err[256] = "";
		int rc = webhook_json_parse(cases[i].body, strlen(cases[i].body), &p, err, sizeof(err));

		print_message("case: %s\n", cases[i].body);
		if (rc == 0)
			rc = webhook_payment_parse(&p, &pay, err, sizeof(err));
		if (cases[i].err == NULL) {
			assert_int_equal(rc, 0);
			assert_string_equal(pay.reference, "0190f1c2-7d1e-7abc-8def-0123456789ab");
		} else {
			assert_int_equal(rc, -1);
			assert_memory_equal(err, cases[i].err, strlen(cases[i].err));
		}
		webhook_params_free(&p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_twilio_signature_matches_twilios_published_examples),
		cmocka_unit_test(test_twilio_signature_refuses_any_tampering),
		cmocka_unit_test(test_form_parse_decodes_plus_and_percent_and_keeps_duplicates),
		cmocka_unit_test(test_form_parse_refuses_bad_escapes_and_escaped_nul),
		cmocka_unit_test(test_json_parse_keeps_strings_and_integers_and_refuses_non_objects),
		cmocka_unit_test(test_inbound_parse_reads_each_dialects_names_and_normalises_the_sender),
		cmocka_unit_test(test_inbound_parse_names_the_missing_or_bad_field),
		cmocka_unit_test(test_inbound_parse_says_which_field_is_not_a_string),
		cmocka_unit_test(test_dlr_parse_maps_each_dialects_status),
		cmocka_unit_test(test_dlr_parse_refuses_unknown_statuses_and_names_missing_fields),
		cmocka_unit_test(test_dlr_status_texts_are_the_database_vocabulary),
		cmocka_unit_test(test_msisdn_accepts_north_american_shapes_only),
		cmocka_unit_test(test_uuid_shape),
		cmocka_unit_test(test_params_check_refuses_bad_utf8_and_repeated_names),
		cmocka_unit_test(test_params_check_scales_to_a_full_body),
		cmocka_unit_test(test_log_value_masks_anything_that_may_be_a_number),
		cmocka_unit_test(test_forwarded_client_trusts_only_listed_proxies),
		cmocka_unit_test(test_key_equal_needs_the_exact_configured_key),
		cmocka_unit_test(test_payment_fields_are_checked_and_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
