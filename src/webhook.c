/* Webhook requests, pure: parsing, field checks, Twilio signatures, keys, delivery-report statuses. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "payremind/utf8.h"
#include "payremind/webhook.h"

#define WEBHOOK_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The names each dialect gives the fields, in the order of struct webhook_inbound / webhook_dlr. */
static const struct {
	const char *from, *to, *text, *id;
} webhook_inbound_names[] = {
	[CONF_DIALECT_JSON] = { "from", "to", "text", "id" },
	[CONF_DIALECT_KANNEL] = { "from", "to", "text", "id" },
	[CONF_DIALECT_TWILIO] = { "From", "To", "Body", "MessageSid" },
};

static const char *const webhook_dlr_texts[WEBHOOK_DLR_COUNT] = {
	[WEBHOOK_DLR_ACCEPTED] = "accepted",
	[WEBHOOK_DLR_BUFFERED] = "buffered",
	[WEBHOOK_DLR_SMSC_ACK] = "smsc_ack",
	[WEBHOOK_DLR_SENT] = "sent",
	[WEBHOOK_DLR_DELIVERED] = "delivered",
	[WEBHOOK_DLR_UNDELIVERED] = "undelivered",
	[WEBHOOK_DLR_FAILED] = "failed",
	[WEBHOOK_DLR_SMSC_REJECT] = "smsc_reject",
	[WEBHOOK_DLR_OTHER] = "other",
};

/* A gateway's status text and what it is in our vocabulary. */
struct webhook_status_map {
	const char *text;
	enum webhook_dlr_status status;
};

/* SPEC §6: the json dialect's statuses, exactly. */
static const struct webhook_status_map webhook_json_statuses[] = {
	{ "accepted", WEBHOOK_DLR_ACCEPTED },
	{ "buffered", WEBHOOK_DLR_BUFFERED },
	{ "delivered", WEBHOOK_DLR_DELIVERED },
	{ "undelivered", WEBHOOK_DLR_UNDELIVERED },
	{ "failed", WEBHOOK_DLR_FAILED },
};

/* Kannel's %d: one report type per callback. */
static const struct webhook_status_map webhook_kannel_statuses[] = {
	{ "1", WEBHOOK_DLR_DELIVERED },
	{ "2", WEBHOOK_DLR_UNDELIVERED },
	{ "4", WEBHOOK_DLR_BUFFERED },
	{ "8", WEBHOOK_DLR_SMSC_ACK },
	{ "16", WEBHOOK_DLR_SMSC_REJECT },
};

/* Twilio's MessageStatus values; any other well-formed one is WEBHOOK_DLR_OTHER. read (RCS) means
 * delivered; canceled (a scheduled message) will never be delivered. */
static const struct webhook_status_map webhook_twilio_statuses[] = {
	{ "accepted", WEBHOOK_DLR_ACCEPTED },
	{ "scheduled", WEBHOOK_DLR_ACCEPTED },
	{ "queued", WEBHOOK_DLR_ACCEPTED },
	{ "sending", WEBHOOK_DLR_ACCEPTED },
	{ "sent", WEBHOOK_DLR_SENT },
	{ "delivered", WEBHOOK_DLR_DELIVERED },
	{ "read", WEBHOOK_DLR_DELIVERED },
	{ "undelivered", WEBHOOK_DLR_UNDELIVERED },
	{ "failed", WEBHOOK_DLR_FAILED },
	{ "canceled", WEBHOOK_DLR_FAILED },
};

#define WEBHOOK_TWILIO_OPTED_OUT "21610" /* "Attempt to send to unsubscribed recipient" */

int
webhook_params_add(struct webhook_params *p, const char *name, const char *value)
{
	struct webhook_param *v;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;

		if ((v = realloc(p->v, cap * sizeof(*v))) == NULL)
			return -1;
		p->v = v;
		p->cap = cap;
	}
	v = &p->v[p->n];
	v->name = strdup(name);
	v->value = value ? strdup(value) : NULL;
	if (v->name == NULL || (value != NULL && v->value == NULL)) {
		free(v->name);
		free(v->value);
		return -1;
	}
	p->n++;
	return 0;
}

static const struct webhook_param *
webhook_params_find(const struct webhook_params *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (strcmp(p->v[i].name, name) == 0)
			return &p->v[i];
	}
	return NULL;
}

const char *
webhook_params_get(const struct webhook_params *p, const char *name)
{
	const struct webhook_param *v = webhook_params_find(p, name);

	return v ? v->value : NULL;
}

void
webhook_params_free(struct webhook_params *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].value);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

static int
webhook_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode s[0..len) into a new string: '+' is a space, %XX a byte. NULL on a truncated or non-hex
 * escape, or an escaped NUL (a C string could not carry what the sender signed). */
static char *
webhook_unescape(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t i, w = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		int hi, lo;

		if (s[i] != '%') {
			out[w++] = s[i] == '+' ? ' ' : s[i];
			continue;
		}
		if (i + 2 >= len)
			break;
		if ((hi = webhook_hex(s[i + 1])) < 0 || (lo = webhook_hex(s[i + 2])) < 0 || (hi | lo) == 0)
			break;
		out[w++] = (char)(hi << 4 | lo);
		i += 2;
	}
	if (i < len) {
		free(out);
		return NULL;
	}
	out[w] = '\0';
	return out;
}

/* One "name[=value]" piece of a form; empty pieces are skipped, as browsers and gateways do. */
static int
webhook_form_piece(const char *s, size_t len, struct webhook_params *p)
{
	const char *eq = memchr(s, '=', len);
	size_t nlen = eq ? (size_t)(eq - s) : len;
	char *name, *value;
	int rc = -1;

	if (len == 0)
		return 0;
	name = webhook_unescape(s, nlen);
	value = eq ? webhook_unescape(eq + 1, len - nlen - 1) : strdup("");
	if (name != NULL && value != NULL)
		rc = webhook_params_add(p, name, value);
	free(name);
	free(value);
	return rc;
}

int
webhook_form_parse(const char *s, size_t len, struct webhook_params *p)
{
	size_t start = 0, i;

	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == '&') {
			if (webhook_form_piece(s + start, i - start, p) == -1)
				return -1;
			start = i + 1;
		}
	}
	return 0;
}

/* A member's value as webhook_params holds it: strings as they are, integers in decimal. */
static int
webhook_json_member(struct webhook_params *p, const char *name, json_t *v)
{
	char num[32];

	if (json_is_string(v))
		return webhook_params_add(p, name, json_string_value(v));
	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return webhook_params_add(p, name, num);
	}
	return webhook_params_add(p, name, NULL);
}

int
webhook_json_parse(const char *body, size_t len, struct webhook_params *p, char *err, size_t errlen)
{
	json_error_t jerr;
	const char *name;
	json_t *root, *v;
	int rc = 0;

	if (!utf8_valid(body, len)) {
		snprintf(err, errlen, "body: not valid UTF-8");
		return -1;
	}
	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		snprintf(err, errlen, "bad JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "bad JSON: expected an object");
		json_decref(root);
		return -1;
	}
	json_object_foreach(root, name, v)
	{
		if (rc == 0 && webhook_json_member(p, name, v) == -1) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
		}
	}
	json_decref(root);
	return rc;
}

/* The value of a required field, or NULL with a reason naming it. */
static const char *
webhook_field(const struct webhook_params *p, const char *name, char *err, size_t errlen)
{
	const struct webhook_param *v = webhook_params_find(p, name);

	if (v == NULL)
		snprintf(err, errlen, "missing field: %s", name);
	else if (v->value == NULL)
		snprintf(err, errlen, "field %s: must be a string", name);
	return v ? v->value : NULL;
}

/* 1..max printable ASCII characters without spaces: ids and codes, safe in logs and SQL texts. */
static int
webhook_is_token(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] <= ' ' || s[i] > '~')
			return 0;
	}
	return 1;
}

/* Copy a required id-like field into out (room for WEBHOOK_ID_MAX + 1). */
static int
webhook_id_field(const struct webhook_params *p, const char *name, char *out, char *err, size_t errlen)
{
	const char *v = webhook_field(p, name, err, errlen);

	if (v == NULL)
		return -1;
	if (!webhook_is_token(v, WEBHOOK_ID_MAX)) {
		snprintf(err, errlen, "field %s: expected 1 to %d printable characters without spaces", name,
		    WEBHOOK_ID_MAX);
		return -1;
	}
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

int
webhook_inbound_parse(enum conf_dialect dialect, const struct webhook_params *p, struct webhook_inbound *out,
    char *err, size_t errlen)
{
	const char *from;

	memset(out, 0, sizeof(*out));
	if ((from = webhook_field(p, webhook_inbound_names[dialect].from, err, errlen)) == NULL ||
	    webhook_id_field(p, webhook_inbound_names[dialect].to, out->to, err, errlen) == -1 ||
	    (out->text = webhook_field(p, webhook_inbound_names[dialect].text, err, errlen)) == NULL ||
	    webhook_id_field(p, webhook_inbound_names[dialect].id, out->id, err, errlen) == -1)
		return -1;
	if (webhook_msisdn(from, out->from) == -1) {
		snprintf(err, errlen, "field %s: not a North-American phone number",
		    webhook_inbound_names[dialect].from);
		return -1;
	}
	return 0;
}

/* An optional error code: letters, digits, '-' and '_' only; "" when absent or empty. */
static int
webhook_code_field(const struct webhook_params *p, const char *name, char *out, char *err, size_t errlen)
{
	static const char chars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
	const struct webhook_param *v = webhook_params_find(p, name);
	size_t n = v && v->value ? strlen(v->value) : 0;

	out[0] = '\0';
	if (v != NULL && v->value == NULL) {
		snprintf(err, errlen, "field %s: must be a string", name);
		return -1;
	}
	if (n > WEBHOOK_CODE_MAX || (n > 0 && strspn(v->value, chars) != n)) {
		snprintf(
		    err, errlen, "field %s: expected up to %d letters and digits", name, WEBHOOK_CODE_MAX);
		return -1;
	}
	memcpy(out, n > 0 ? v->value : "", n + 1);
	return 0;
}

/* Look text up in a status table of n entries. 0, or -1 when it is not there. */
static int
webhook_lookup(const struct webhook_status_map *t, size_t n, const char *text, enum webhook_dlr_status *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(t[i].text, text) == 0) {
			*out = t[i].status;
			return 0;
		}
	}
	return -1;
}

/* The Twilio status: known ones mapped, other lower-case words WEBHOOK_DLR_OTHER. */
static int
webhook_twilio_status(const char *s, enum webhook_dlr_status *out)
{
	if (webhook_lookup(webhook_twilio_statuses, WEBHOOK_NELEM(webhook_twilio_statuses), s, out) == 0)
		return 0;
	if (*s == '\0' || strspn(s, "abcdefghijklmnopqrstuvwxyz_") != strlen(s))
		return -1;
	*out = WEBHOOK_DLR_OTHER;
	return 0;
}

static int
webhook_status_field(enum conf_dialect dialect, const struct webhook_params *p, const char *name,
    struct webhook_dlr *out, char *err, size_t errlen)
{
	const char *v = webhook_field(p, name, err, errlen);
	int rc;

	if (v == NULL)
		return -1;
	if (strlen(v) >= sizeof(out->raw_status))
		rc = -1;
	else if (dialect == CONF_DIALECT_JSON)
		rc = webhook_lookup(
		    webhook_json_statuses, WEBHOOK_NELEM(webhook_json_statuses), v, &out->status);
	else if (dialect == CONF_DIALECT_KANNEL)
		rc = webhook_lookup(
		    webhook_kannel_statuses, WEBHOOK_NELEM(webhook_kannel_statuses), v, &out->status);
	else
		rc = webhook_twilio_status(v, &out->status);
	if (rc == -1) {
		snprintf(err, errlen, "field %s: unknown status (%s)", name,
		    dialect == CONF_DIALECT_JSON ? "accepted, buffered, delivered, undelivered or failed"
		        : dialect == CONF_DIALECT_KANNEL ? "1, 2, 4, 8 or 16"
		                                         : "a Twilio MessageStatus");
		return -1;
	}
	snprintf(out->raw_status, sizeof(out->raw_status), "%s", v);
	return 0;
}

int
webhook_dlr_parse(enum conf_dialect dialect, const struct webhook_params *p, struct webhook_dlr *out,
    char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	switch (dialect) {
	case CONF_DIALECT_JSON:
		if (webhook_id_field(p, "id", out->gateway_id, err, errlen) == -1 ||
		    webhook_id_field(p, "reference", out->ref, err, errlen) == -1 ||
		    webhook_status_field(dialect, p, "status", out, err, errlen) == -1 ||
		    webhook_code_field(p, "code", out->code, err, errlen) == -1)
			return -1;
		return 0;
	case CONF_DIALECT_KANNEL:
		if (webhook_id_field(p, "ref", out->ref, err, errlen) == -1 ||
		    webhook_status_field(dialect, p, "status", out, err, errlen) == -1)
			return -1;
		/* Kannel's report type is its only code for what happened. */
		snprintf(out->code, sizeof(out->code), "%s", out->raw_status);
		return 0;
	case CONF_DIALECT_TWILIO:
		if (webhook_id_field(p, "MessageSid", out->ref, err, errlen) == -1 ||
		    webhook_status_field(dialect, p, "MessageStatus", out, err, errlen) == -1 ||
		    webhook_code_field(p, "ErrorCode", out->code, err, errlen) == -1)
			return -1;
		out->by_sid = 1;
		memcpy(out->gateway_id, out->ref, sizeof(out->ref));
		out->opt_out = strcmp(out->code, WEBHOOK_TWILIO_OPTED_OUT) == 0;
		return 0;
	}
	snprintf(err, errlen, "unknown dialect");
	return -1;
}

const char *
webhook_dlr_status_to_text(enum webhook_dlr_status status)
{
	return (unsigned)status < WEBHOOK_DLR_COUNT ? webhook_dlr_texts[status] : "other";
}

/* NANP: area code and exchange each start with 2-9. */
static int
webhook_is_nanp(const char *ten)
{
	return strlen(ten) == 10 && strspn(ten, "0123456789") == 10 && ten[0] >= '2' && ten[3] >= '2';
}

int
webhook_msisdn(const char *in, char out[16])
{
	const char *ten = in;

	if (in[0] == '+' && in[1] == '1')
		ten = in + 2;
	else if (in[0] == '1' && strlen(in) == 11)
		ten = in + 1;
	if (!webhook_is_nanp(ten))
		return -1;
	snprintf(out, 16, "+1%s", ten);
	return 0;
}

int
webhook_is_uuid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;

	if (strlen(s) != sizeof(shape) - 1)
		return 0;
	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == '-' ? s[i] != '-' : webhook_hex(s[i]) < 0)
			return 0;
	}
	return 1;
}

/* 1 when a parameter name may be echoed in an answer and a log: a short ASCII word with few digits
 * (every name we read is one), so that a name a client made up from a phone number is never shown. */
static int
webhook_name_is_showable(const char *name)
{
	static const char chars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";
	size_t n = strlen(name), digits = 0, i;

	for (i = 0; i < n; i++)
		digits += name[i] >= '0' && name[i] <= '9';
	return n > 0 && n <= 32 && strspn(name, chars) == n && digits <= 2;
}

static int
webhook_name_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The first name given twice, or NULL: sorted copies of the name pointers, so O(n log n) even for a
 * body of thousands of "a&a&a". -1 when out of memory. */
static int
webhook_repeated_name(const struct webhook_params *p, const char **dup)
{
	const char **names;
	size_t i;

	*dup = NULL;
	if (p->n < 2)
		return 0;
	if ((names = malloc(p->n * sizeof(*names))) == NULL)
		return -1;
	for (i = 0; i < p->n; i++)
		names[i] = p->v[i].name;
	qsort(names, p->n, sizeof(*names), webhook_name_cmp);
	for (i = 1; i < p->n && *dup == NULL; i++) {
		if (strcmp(names[i - 1], names[i]) == 0)
			*dup = names[i];
	}
	free(names);
	return 0;
}

int
webhook_params_check(const struct webhook_params *p, char *err, size_t errlen)
{
	const char *dup;
	size_t i;

	for (i = 0; i < p->n; i++) {
		const struct webhook_param *v = &p->v[i];

		if (!utf8_valid(v->name, strlen(v->name))) {
			snprintf(err, errlen, "a parameter name is not valid UTF-8");
			return -1;
		}
		if (v->value != NULL && !utf8_valid(v->value, strlen(v->value))) {
			if (webhook_name_is_showable(v->name))
				snprintf(err, errlen, "field %s: not valid UTF-8", v->name);
			else
				snprintf(err, errlen, "a parameter value is not valid UTF-8");
			return -1;
		}
	}
	if (webhook_repeated_name(p, &dup) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (dup != NULL) {
		if (webhook_name_is_showable(dup))
			snprintf(err, errlen, "parameter %s: given more than once", dup);
		else
			snprintf(err, errlen, "a parameter is given more than once");
		return -1;
	}
	return 0;
}

/* Twilio's ids: two capital letters and 32 hex digits (SM…, MM…, AC…). */
static int
webhook_is_twilio_sid(const char *s)
{
	size_t i;

	if (strlen(s) != 34 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z')
		return 0;
	for (i = 2; i < 34; i++) {
		if (webhook_hex(s[i]) < 0)
			return 0;
	}
	return 1;
}

/* The longest run of digits in s, the separators people write numbers with ("+-.() ") not breaking it. */
static size_t
webhook_digit_run(const char *s)
{
	size_t run = 0, best = 0;

	for (; *s != '\0'; s++) {
		if (*s >= '0' && *s <= '9')
			run++;
		else if (strchr("+-.() ", *s) == NULL)
			run = 0;
		if (run > best)
			best = run;
	}
	return best;
}

const char *
webhook_log_value(const char *v, char *buf, size_t len)
{
	char e164[16];

	if (v == NULL)
		return "-";
	if (webhook_is_uuid(v) || webhook_is_twilio_sid(v) || webhook_digit_run(v) < 7)
		return v;
	if (webhook_msisdn(v, e164) == 0 && len >= 13)
		snprintf(buf, len, "%.5s***%s", e164, e164 + 8);
	else
		snprintf(buf, len, "***");
	return buf;
}

/* inet_pton then inet_ntop: the canonical text of an IPv4 or IPv6 address (an IPv4-mapped IPv6
 * address as IPv4), or -1 when s is not an address. out needs WEBHOOK_ADDR_MAX bytes. */
int
webhook_addr_canonical(const char *s, char *out, size_t outlen)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, s, a) == 1)
		return inet_ntop(AF_INET, a, out, (socklen_t)outlen) ? 0 : -1;
	if (inet_pton(AF_INET6, s, a) != 1)
		return -1;
	if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0)
		return inet_ntop(AF_INET, a + 12, out, (socklen_t)outlen) ? 0 : -1;
	return inet_ntop(AF_INET6, a, out, (socklen_t)outlen) ? 0 : -1;
}

static int
webhook_addr_in(const char *addr, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(addr, list[i]) == 0)
			return 1;
	}
	return 0;
}

int
webhook_forwarded_client(
    const char *peer, const char *xff, const char *const *trusted, size_t ntrusted, char *out, size_t outlen)
{
	char item[WEBHOOK_ADDR_MAX + 8];
	const char *end;

	snprintf(out, outlen, "%s", peer);
	if (xff == NULL || !webhook_addr_in(peer, trusted, ntrusted))
		return 0;
	end = xff + strlen(xff);
	for (;;) {
		const char *start = end;
		size_t n;

		while (start > xff && start[-1] != ',')
			start--;
		while (start < end && (*start == ' ' || *start == '\t'))
			start++;
		n = (size_t)(end - start);
		while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
			n--;
		if (n >= sizeof(item))
			break;
		memcpy(item, start, n);
		item[n] = '\0';
		if (webhook_addr_canonical(item, out, outlen) == -1)
			break;
		if (!webhook_addr_in(out, trusted, ntrusted))
			return 0;
		while (start > xff && start[-1] != ',')
			start--;
		if (start == xff)
			return 0; /* every hop a trusted proxy: the first one is the client */
		end = start - 1;
	}
	snprintf(out, outlen, "%s", peer);
	return -1;
}

int
webhook_key_equal(const char *expected, const char *given)
{
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned int alen = 0, blen = 0;

	if (expected == NULL || given == NULL || expected[0] == '\0')
		return 0;
	if (!EVP_Digest(expected, strlen(expected), a, &alen, EVP_sha256(), NULL) ||
	    !EVP_Digest(given, strlen(given), b, &blen, EVP_sha256(), NULL) || alen != blen)
		return 0;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

static int
webhook_param_cmp(const void *x, const void *y)
{
	const struct webhook_param *a = *(const struct webhook_param *const *)x;
	const struct webhook_param *b = *(const struct webhook_param *const *)y;
	int c = strcmp(a->name, b->name);

	return c != 0 ? c : strcmp(a->value ? a->value : "", b->value ? b->value : "");
}

/* What Twilio signs: the URL, then every parameter's name and value, sorted by name (then value,
 * which is how Twilio's own validators order a repeated name). */
static char *
webhook_twilio_data(const char *url, const struct webhook_params *p, size_t *len)
{
	const struct webhook_param **sorted = calloc(p->n + 1, sizeof(*sorted));
	char *data = NULL;
	FILE *fp;
	size_t i;

	if (sorted == NULL)
		return NULL;
	for (i = 0; i < p->n; i++)
		sorted[i] = &p->v[i];
	qsort(sorted, p->n, sizeof(*sorted), webhook_param_cmp);
	if ((fp = open_memstream(&data, len)) != NULL) {
		fputs(url, fp);
		for (i = 0; i < p->n; i++)
			fprintf(fp, "%s%s", sorted[i]->name, sorted[i]->value ? sorted[i]->value : "");
		if (ferror(fp) | fclose(fp)) {
			free(data);
			data = NULL;
		}
	}
	free(sorted);
	return data;
}

int
webhook_twilio_signature(
    const char *token, const char *url, const struct webhook_params *p, char *out, size_t outlen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t len = 0;
	char *data;
	int ok;

	if (outlen < 29 || (data = webhook_twilio_data(url, p, &len)) == NULL)
		return -1;
	ok = HMAC(EVP_sha1(), token, (int)strlen(token), (unsigned char *)data, len, mac, &maclen) != NULL;
	free(data);
	if (!ok || maclen != 20)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
	return 0;
}

int
webhook_twilio_valid(
    const char *token, const char *url, const struct webhook_params *p, const char *signature)
{
	char want[32];

	if (token == NULL || token[0] == '\0' || signature == NULL || signature[0] == '\0' ||
	    webhook_twilio_signature(token, url, p, want, sizeof(want)) == -1)
		return 0;
	return strlen(signature) == strlen(want) && CRYPTO_memcmp(want, signature, strlen(want)) == 0;
}

int
webhook_payment_parse(const struct webhook_params *p, struct webhook_payment *out, char *err, size_t errlen)
{
	const char *id, *ref, *status, *amount;
	char *end;

	memset(out, 0, sizeof(*out));
	if ((id = webhook_field(p, "id", err, errlen)) == NULL ||
	    (ref = webhook_field(p, "reference", err, errlen)) == NULL ||
	    (status = webhook_field(p, "status", err, errlen)) == NULL ||
	    (amount = webhook_field(p, "amount_cents", err, errlen)) == NULL)
		return -1;
	if (!webhook_is_token(id, WEBHOOK_PAYMENT_ID_MAX)) {
		snprintf(err, errlen, "field id: 1 to %d printable characters without spaces",
		    WEBHOOK_PAYMENT_ID_MAX);
		return -1;
	}
	if (!webhook_is_uuid(ref)) {
		snprintf(err, errlen, "field reference: not a reminder id (a UUID)");
		return -1;
	}
	if (strcmp(status, "paid") != 0 && strcmp(status, "failed") != 0 &&
	    strcmp(status, "cancelled") != 0) {
		snprintf(err, errlen, "field status: one of paid, failed, cancelled");
		return -1;
	}
	errno = 0;
	out->amount_cents = strtoll(amount, &end, 10);
	if (amount[0] < '0' || amount[0] > '9' || *end != '\0' || errno == ERANGE) {
		snprintf(err, errlen, "field amount_cents: an integer of cents, 0 or more");
		return -1;
	}
	snprintf(out->id, sizeof(out->id), "%s", id);
	snprintf(out->reference, sizeof(out->reference), "%s", ref);
	snprintf(out->status, sizeof(out->status), "%s", status);
	return 0;
}
