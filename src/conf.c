/* Configuration: libconfig file -> a fresh struct conf, every key checked against one table. */
#define _GNU_SOURCE /* vasprintf, open_memstream, explicit_bzero */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libconfig.h>
#include <libpq-fe.h>

#include "payremind/conf.h"
#include "payremind/gsm.h"
#include "payremind/holidays.h"
#include "payremind/log.h"
#include "payremind/policy.h"
#include "payremind/template.h"
#include "payremind/tz.h"
#include "payremind/webhook.h"

#define CONF_SECRET_MAX 4096            /* a bearer token, a password or an auth token: far less than this */
#define CONF_RENDER_MAX 16384           /* 10 segments of 4-byte characters, with room to spare */
#define CONF_PATH_MAX 128               /* "regions.QC.windows[7].start" and the like */
#define CONF_NOTICE_DAYS_MAX 60         /* regions.*.notice_days: 0 .. this */
#define CONF_URL_MAX 256                /* a link in an SMS, a callback URL: longer is a mistake */
#define CONF_CAP_MAX POLICY_MAX_HISTORY /* regions.*.max_per_7_days: 0 .. this (the history a claim reads) */

/* How a key's value is read, stored and printed. */
enum conf_kind {
	CK_STRING,   /* char *, with an optional extra rule */
	CK_CONNINFO, /* char *, a libpq connection string whose password is never printed */
	CK_SECRET,   /* char * path, and the file's content at off_secret */
	CK_SENDER,   /* char short_code[8], one of the approved short codes */
	CK_DIALECT,  /* enum conf_dialect */
	CK_INT,      /* int in [min, max] */
	CK_FLOAT,    /* double in [min, max]; an integer is accepted */
	CK_BOOL,     /* int, 0 or 1 */
	CK_OFFSETS,  /* rules.offsets_days / noffsets: a strictly increasing array, elements in [min, max] */
	CK_REGIONS,  /* rules.regions / nregions */
	CK_ADDRS,    /* listen.trusted_proxies: an array of IP addresses, stored canonical */
};

/* One configuration key: the single place that gives its type, range, default and reload behaviour. */
struct conf_key {
	const char *path; /* "group.name" as written in the file */
	enum conf_kind kind;
	double min, max;     /* CK_INT, CK_FLOAT, CK_OFFSETS (per element) */
	double def_num;      /* CK_INT, CK_FLOAT, CK_BOOL, CK_DIALECT */
	const char *def_str; /* CK_STRING, CK_CONNINFO, CK_SECRET, CK_SENDER */
	const int *def_ints; /* CK_OFFSETS */
	int def_nints;
	int reloadable; /* 0: SIGHUP cannot apply a change, the daemon must restart */
	size_t off;     /* where the value lives in struct conf */
	int (*check)(
	    const char *value, char *err, size_t errlen); /* CK_STRING, CK_CONNINFO: a rule, or NULL */
	size_t off_secret;                                /* CK_SECRET: where the content goes */
	const char *credential; /* CK_SECRET: file name under $CREDENTIALS_DIRECTORY when the path is "" */
};

/* One load in progress: the parsed file, the conf being filled, and what went wrong so far. */
struct loader {
	const char *path;
	int flags;
	config_t cfg;
	struct conf *conf;
	struct conf_errors *errs;
	unsigned char *bad; /* per key of conf_keys: its value in the file was rejected */
};

/* Every way to pay, within 2 GSM-7 segments for references up to TEMPLATE_REF_LONGEST characters
 * (../FRENCH.md E1: OQLF typography, no character outside GSM-7, no amount: a phone can be read by
 * others). */
static const char conf_default_fr[] =
    "ARO : paiement attendu, dossier {ref}. En ligne : {link} Par téléphone : 1 877 322-1414, du lun. au "
    "ven., de 8 h à 20 h (heure de l'Est). Banque en ligne : fournisseur ARO, numéro de compte {ref}. "
    "Textez ARRET pour ne plus en recevoir.";
static const char conf_default_en[] =
    "ARO: payment due on account {ref}. Online: {link} By phone: 1-877-322-1414, Mon-Fri, 8 a.m. to 8 p.m. "
    "ET. Online banking: payee ARO, account number {ref}. Text STOP to opt out.";
static const int conf_default_offsets[] = { 1, 7, 14 };

/* The approved short codes: built in, never configurable (SPEC §5). */
static const char *const conf_short_codes[] = { "27022", "270282" };

static const char *const conf_day_names[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

/* URLs the daemon hands to libcurl or to phones: plain HTTP(S), with something after the scheme. */
/* database.pooling: how the daemon reaches PostgreSQL. */
static int
conf_check_pooling(const char *value, char *err, size_t errlen)
{
	if (strcmp(value, "none") == 0 || strcmp(value, "transaction") == 0)
		return 0;
	snprintf(err, errlen,
	    "\"%s\" is not a pooling mode: \"none\" (a direct connection, or PgBouncer in session mode) or "
	    "\"transaction\" (PgBouncer pool_mode = transaction)",
	    value);
	return -1;
}

static int
conf_check_url(const char *value, char *err, size_t errlen)
{
	size_t n = strncmp(value, "https://", 8) == 0 ? 8 : strncmp(value, "http://", 7) == 0 ? 7 : 0;

	if (n == 0 || value[n] == '\0') {
		snprintf(err, errlen, "\"%s\" must start with http:// or https:// and name a host", value);
		return -1;
	}
	if (strlen(value) > CONF_URL_MAX) {
		snprintf(err, errlen, "is %zu characters long; at most %d", strlen(value), CONF_URL_MAX);
		return -1;
	}
	return 0;
}

/* 1 when host is a loopback name or address (tests and the demo may use plain http there). */
static int
conf_is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	    strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* A URL that people (the link in the SMS) or their browsers (the hand-off) follow: https, except on a
 * loopback host; no user or password in it. */
static int
conf_check_public_url(const char *value, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL;
	int rc = -1;

	if (u == NULL)
		fatalx("curl_url: out of memory");
	if (conf_check_url(value, err, errlen) == -1)
		rc = -1;
	else if (curl_url_set(u, CURLUPART_URL, value, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		snprintf(err, errlen, "\"%s\" is not a URL", value);
	else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		snprintf(err, errlen, "\"%s\" must not carry a user or password", value);
	else if (strcmp(scheme, "https") != 0 && !conf_is_loopback(host))
		snprintf(err, errlen, "\"%s\" must be https:// (plain http only on a loopback host)", value);
	else
		rc = 0;
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_url_cleanup(u);
	return rc;
}

/* token.base_url: a public URL whose path ends with '/' (the listener serves base path + token). */
static int
conf_check_base_url(const char *value, char *err, size_t errlen)
{
	if (conf_check_public_url(value, err, errlen) == -1)
		return -1;
	if (strchr(value, '?') != NULL || strchr(value, '#') != NULL || value[strlen(value) - 1] != '/') {
		snprintf(
		    err, errlen, "\"%s\" must end with / and have no query (the token follows it)", value);
		return -1;
	}
	return 0;
}

/* checkout.url: empty (no online payment) or a public URL. */
static int
conf_check_checkout_url(const char *value, char *err, size_t errlen)
{
	return value[0] == '\0' ? 0 : conf_check_public_url(value, err, errlen);
}

/* Text shown on the payment page: one line, printable. */
static int
conf_check_line(const char *value, char *err, size_t errlen)
{
	const unsigned char *p;

	for (p = (const unsigned char *)value; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "must be one line of text (no control characters)");
			return -1;
		}
	}
	if (strlen(value) > 200) {
		snprintf(err, errlen, "is %zu bytes long; at most 200", strlen(value));
		return -1;
	}
	return 0;
}

/* A connection string libpq accepts (keyword=value pairs or a postgresql:// URI). */
static int
conf_check_conninfo(const char *value, char *err, size_t errlen)
{
	PQconninfoOption *opts;
	char *msg = NULL;
	size_t n;

	opts = PQconninfoParse(value, &msg);
	if (opts != NULL) {
		PQconninfoFree(opts);
		return 0;
	}
	if (msg == NULL)
		fatalx("PQconninfoParse: out of memory");
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		n--;
	snprintf(err, errlen, "%.*s", (int)n, msg);
	PQfreemem(msg);
	return -1;
}

#define RESTART 0
#define RELOAD 1
#define AT(field) offsetof(struct conf, field)
#define K_STRING(p, field, def, chk, rl)                                                      \
	{                                                                                     \
		.path = p, .kind = CK_STRING, .def_str = def, .check = chk, .reloadable = rl, \
		.off = AT(field)                                                              \
	}
#define K_CONNINFO(p, field, def, rl)                                                         \
	{                                                                                     \
		.path = p, .kind = CK_CONNINFO, .def_str = def, .check = conf_check_conninfo, \
		.reloadable = rl, .off = AT(field)                                            \
	}
#define K_SECRET(p, field, secret, cred, rl)                                                     \
	{                                                                                        \
		.path = p, .kind = CK_SECRET, .def_str = "", .reloadable = rl, .off = AT(field), \
		.off_secret = AT(secret), .credential = cred                                     \
	}
#define K_SENDER(p, field, def, rl)                                                              \
	{                                                                                        \
		.path = p, .kind = CK_SENDER, .def_str = def, .reloadable = rl, .off = AT(field) \
	}
#define K_DIALECT(p, field, def, rl)                                                              \
	{                                                                                         \
		.path = p, .kind = CK_DIALECT, .def_num = def, .reloadable = rl, .off = AT(field) \
	}
#define K_INT(p, field, lo, hi, def, rl)                                                           \
	{                                                                                          \
		.path = p, .kind = CK_INT, .min = lo, .max = hi, .def_num = def, .reloadable = rl, \
		.off = AT(field)                                                                   \
	}
#define K_FLOAT(p, field, lo, hi, def, rl)                                                           \
	{                                                                                            \
		.path = p, .kind = CK_FLOAT, .min = lo, .max = hi, .def_num = def, .reloadable = rl, \
		.off = AT(field)                                                                     \
	}
#define K_BOOL(p, field, def, rl)                                                              \
	{                                                                                      \
		.path = p, .kind = CK_BOOL, .def_num = def, .reloadable = rl, .off = AT(field) \
	}
#define K_OFFSETS(p, lo, hi, def, rl)                                                                  \
	{                                                                                              \
		.path = p, .kind = CK_OFFSETS, .min = lo, .max = hi, .def_ints = def,                  \
		.def_nints = (int)(sizeof(def) / sizeof((def)[0])), .reloadable = rl, .off = AT(rules) \
	}
#define K_ADDRS(p, rl)                                                                           \
	{                                                                                        \
		.path = p, .kind = CK_ADDRS, .reloadable = rl, .off = AT(listen.trusted_proxies) \
	}
#define K_REGIONS(p, rl)                                                          \
	{                                                                         \
		.path = p, .kind = CK_REGIONS, .reloadable = rl, .off = AT(rules) \
	}

/*
 * Every key of the file, in the order of conf/payremind.conf. Defaults are set from here and nowhere
 * else, except the built-in regions, which come from policy_defaults() (SPEC §3) and are replaced as a
 * whole when the file has a `regions` group.
 */
static const struct conf_key conf_keys[] = {
	K_CONNINFO("database.conninfo", db_conninfo, "host=/run/postgresql dbname=payremind", RESTART),
	K_STRING("database.pooling", db_pooling, "none", conf_check_pooling, RESTART),
	K_SENDER("sender.short_code", short_code, "27022", RELOAD),
	K_DIALECT("gateway.dialect", gateway.dialect, CONF_DIALECT_JSON, RELOAD),
	K_STRING("gateway.url", gateway.url, "http://127.0.0.1:9090/sms", conf_check_url, RELOAD),
	K_STRING("gateway.username", gateway.username, "", NULL, RELOAD),
	K_SECRET("gateway.secret_file", gateway.secret_file, gateway.secret, "gateway_secret", RELOAD),
	K_INT("gateway.timeout_ms", gateway.timeout_ms, 100, 120000, 10000, RELOAD),
	K_INT("gateway.connect_timeout_ms", gateway.connect_timeout_ms, 50, 60000, 3000, RELOAD),
	K_INT("gateway.max_in_flight", gateway.max_in_flight, 1, 1024, 32, RELOAD),
	K_FLOAT("gateway.rate_per_second", gateway.rate_per_second, 0, 100000, 30.0, RELOAD),
	K_INT("gateway.max_attempts", gateway.max_attempts, 1, 100, 8, RELOAD),
	K_INT("gateway.backoff_base_ms", gateway.backoff_base_ms, 10, 3600000, 30000, RELOAD),
	K_INT("gateway.backoff_cap_ms", gateway.backoff_cap_ms, 10, 86400000, 3600000, RELOAD),
	K_STRING("token.base_url", token.base_url, "https://pay.aro.ca/p/", conf_check_base_url, RELOAD),
	K_INT("token.ttl_hours", token.ttl_hours, 1, 2160, 168, RELOAD),
	K_INT("schedule.poll_interval_s", schedule.poll_interval_s, 1, 3600, 30, RELOAD),
	K_INT("schedule.batch_size", schedule.batch_size, 1, 10000, 500, RELOAD),
	K_OFFSETS("schedule.offsets_days", 0, 365, conf_default_offsets, RELOAD),
	K_INT("schedule.lease_s", schedule.lease_s, 2, 3600, 60, RESTART),
	K_INT("schedule.min_gap_hours", rules.min_gap_hours, 0, 720, 24, RELOAD),
	K_INT("schedule.window_guard_s", rules.window_guard_s, 0, 3600, 60, RELOAD),
	K_REGIONS("regions", RELOAD),
	K_STRING("templates.fr", templates.fr, conf_default_fr, NULL, RELOAD),
	K_STRING("templates.en", templates.en, conf_default_en, NULL, RELOAD),
	K_INT("templates.max_segments", templates.max_segments, 1, 10, 2, RELOAD),
	K_BOOL("templates.transliterate", templates.transliterate, 0, RELOAD),
	K_STRING("listen.address", listen.address, "127.0.0.1", NULL, RESTART),
	K_INT("listen.port", listen.port, 0, 65535, 8787, RESTART),
	K_SECRET("listen.secret_file", listen.secret_file, listen.secret, "listen_secret", RESTART),
	K_STRING("listen.public_url", listen.public_url, "http://127.0.0.1:8787", conf_check_url, RESTART),
	K_ADDRS("listen.trusted_proxies", RESTART),
	K_INT("retention.days", retention.days, 1, 3650, 180, RELOAD),
	K_STRING("checkout.url", checkout.url, "", conf_check_checkout_url, RELOAD),
	K_SECRET("checkout.secret_file", checkout.secret_file, checkout.secret, "checkout_secret", RELOAD),
	K_INT("checkout.ttl_s", checkout.ttl_s, 60, 86400, 900, RELOAD),
	K_STRING("paypage.bank_payee", paypage.bank_payee, "ARO", conf_check_line, RELOAD),
	K_STRING("paypage.mail_address", paypage.mail_address, "", conf_check_line, RELOAD),
	K_STRING("paypage.permit", paypage.permit, "", conf_check_line, RELOAD),
};

#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

#define CONF_VAL(conf, k, type) ((type *)((char *)(conf) + (k)->off))
#define CONF_CVAL(conf, k, type) ((const type *)((const char *)(conf) + (k)->off))

static char *
conf_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("strdup");
	return p;
}

/* Append one message to errs; running out of memory while loading a config is a start-up failure. */
static void
conf_errors_add(struct conf_errors *errs, char *msg)
{
	char **msgs = realloc(errs->msgs, (size_t)(errs->n + 1) * sizeof(*msgs));

	if (msgs == NULL)
		fatal("realloc");
	msgs[errs->n++] = msg;
	errs->msgs = msgs;
}

/* Record "FILE:LINE: msg", or "FILE: msg" when line is 0. */
static void
conf_error_at(struct loader *ld, const char *file, unsigned line, const char *msg)
{
	char *text;
	int r;

	if (line > 0)
		r = asprintf(&text, "%s:%u: %s", file, line, msg);
	else
		r = asprintf(&text, "%s: %s", file, msg);
	if (r == -1)
		fatal("asprintf");
	conf_errors_add(ld->errs, text);
}

/*
 * Record an error about setting s (NULL: about no line in particular). A setting without a line of its
 * own (the root) borrows its parent's; FILE is the path as given, or the @include'd file s came from.
 */
static void conf_errorf(struct loader *ld, const config_setting_t *s, const char *fmt, ...) PR_PRINTF(3, 4);

static void
conf_errorf(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	const char *file = ld->path;
	unsigned line = 0;
	char msg[1024];
	va_list ap;

	while (s != NULL && config_setting_source_line(s) == 0)
		s = config_setting_parent(s);
	if (s != NULL) {
		line = config_setting_source_line(s);
		if (config_setting_source_file(s) != NULL)
			file = config_setting_source_file(s);
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	conf_error_at(ld, file, line, msg);
}

/* "an integer", "a string", ...: what a setting is, for type errors. */
static const char *
conf_type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	case CONFIG_TYPE_GROUP:
		return "a group";
	}
	return "nothing";
}

static int
conf_is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* The integer value of s in [min, max], or -1 after reporting why not. */
static int
conf_get_int(struct loader *ld, const config_setting_t *s, const char *path, double min, double max, int *out)
{
	long long v;

	if (!conf_is_int(s)) {
		conf_errorf(ld, s, "%s: expected an integer, not %s", path, conf_type_name(s));
		return -1;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		conf_errorf(ld, s, "%s: %lld is out of range [%.15g, %.15g]", path, v, min, max);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* The string value of s (owned by the config), or NULL after reporting a type error. */
static const char *
conf_get_string(struct loader *ld, const config_setting_t *s, const char *path)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		conf_errorf(ld, s, "%s: expected a string, not %s", path, conf_type_name(s));
		return NULL;
	}
	return config_setting_get_string(s);
}

static void
conf_set_string(struct loader *ld, const struct conf_key *k, const config_setting_t *s)
{
	const char *v = conf_get_string(ld, s, k->path);
	char err[512];
	char **dst = CONF_VAL(ld->conf, k, char *);

	if (v == NULL)
		return;
	if (k->check != NULL && k->check(v, err, sizeof(err)) == -1) {
		conf_errorf(ld, s, "%s: %s", k->path, err);
		return;
	}
	free(*dst);
	*dst = conf_xstrdup(v);
}

int
conf_sender_allowed(const char *code)
{
	size_t i;

	if (code == NULL)
		return 0;
	for (i = 0; i < sizeof(conf_short_codes) / sizeof(conf_short_codes[0]); i++)
		if (strcmp(code, conf_short_codes[i]) == 0)
			return 1;
	return 0;
}

static void
conf_set_sender(struct loader *ld, const struct conf_key *k, const config_setting_t *s)
{
	const char *v = conf_get_string(ld, s, k->path);

	if (v == NULL)
		return;
	if (!conf_sender_allowed(v)) {
		conf_errorf(ld, s, "%s: \"%s\" is not an approved short code (%s, %s)", k->path, v,
		    conf_short_codes[0], conf_short_codes[1]);
		return;
	}
	snprintf(ld->conf->short_code, sizeof(ld->conf->short_code), "%s", v);
}

const char *
conf_dialect_to_text(enum conf_dialect dialect)
{
	switch (dialect) {
	case CONF_DIALECT_JSON:
		return "json";
	case CONF_DIALECT_KANNEL:
		return "kannel";
	case CONF_DIALECT_TWILIO:
		return "twilio";
	}
	return "unknown";
}

static void
conf_set_dialect(struct loader *ld, const struct conf_key *k, const config_setting_t *s)
{
	static const enum conf_dialect all[] = { CONF_DIALECT_JSON, CONF_DIALECT_KANNEL,
		CONF_DIALECT_TWILIO };
	const char *v = conf_get_string(ld, s, k->path);
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(v, conf_dialect_to_text(all[i])) == 0) {
			*CONF_VAL(ld->conf, k, enum conf_dialect) = all[i];
			return;
		}
	}
	conf_errorf(ld, s, "%s: \"%s\" is not a dialect (json, kannel, twilio)", k->path, v);
}

static void
conf_set_float(struct loader *ld, const struct conf_key *k, const config_setting_t *s)
{
	double v;

	if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		v = config_setting_get_float(s);
	else if (conf_is_int(s))
		v = (double)config_setting_get_int64(s);
	else {
		conf_errorf(ld, s, "%s: expected a number, not %s", k->path, conf_type_name(s));
		return;
	}
	if (v < k->min || v > k->max) {
		conf_errorf(ld, s, "%s: %g is out of range [%.15g, %.15g]", k->path, v, k->min, k->max);
		return;
	}
	*CONF_VAL(ld->conf, k, double) = v;
}

static void
conf_set_bool(struct loader *ld, const struct conf_key *k, const config_setting_t *s)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		conf_errorf(ld, s, "%s: expected true or false, not %s", k->path, conf_type_name(s));
		return;
	}
	*CONF_VAL(ld->conf, k, int) = config_setting_get_bool(s);
}

/* schedule.offsets_days: 1..POLICY_MAX_OFFSETS integers, each in range, strictly increasing. */
static void
conf_set_offsets(struct loader *ld, const struct conf_key *k, const config_setting_t *s)
{
	struct policy_rules *rules = CONF_VAL(ld->conf, k, struct policy_rules);
	int v[POLICY_MAX_OFFSETS], n, i;

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY) {
		conf_errorf(ld, s, "%s: expected an array of integers like [1, 7, 14], not %s", k->path,
		    conf_type_name(s));
		return;
	}
	n = config_setting_length(s);
	if (n < 1 || n > POLICY_MAX_OFFSETS) {
		conf_errorf(ld, s, "%s: has %d entries, expected 1 to %d", k->path, n, POLICY_MAX_OFFSETS);
		return;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (conf_get_int(ld, e, k->path, k->min, k->max, &v[i]) == -1)
			return;
		if (i > 0 && v[i] <= v[i - 1]) {
			conf_errorf(ld, e, "%s: must be strictly increasing (%d follows %d)", k->path, v[i],
			    v[i - 1]);
			return;
		}
	}
	memcpy(rules->offsets_days, v, sizeof(v[0]) * (size_t)n);
	rules->noffsets = n;
}

/* "HH:MM" -> minutes after midnight; "24:00" only when allow_24 (a window's end). -1 when malformed. */
static int
conf_parse_hhmm(const char *s, int allow_24)
{
	int h, m;

	if (strlen(s) != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
	    !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
		return -1;
	return h * 60 + m;
}

/* A window's start or end: "HH:MM", -1 after reporting. */
static int
conf_window_time(struct loader *ld, const config_setting_t *s, const char *path, int is_end)
{
	const char *v = conf_get_string(ld, s, path);
	int min;

	if (v == NULL)
		return -1;
	min = conf_parse_hhmm(v, is_end);
	if (min == -1)
		conf_errorf(ld, s, "%s: \"%s\" is not a time HH:MM (00:00 to %s)", path, v,
		    is_end ? "24:00" : "23:59");
	return min;
}

/* 0 (Sunday) .. 6 for "sun" .. "sat", -1 for anything else. */
static int
conf_day_index(const char *name)
{
	int d;

	for (d = 0; d < 7; d++)
		if (strcmp(name, conf_day_names[d]) == 0)
			return d;
	return -1;
}

/* A window's days: a non-empty array of "mon".."sun" -> bit mask (bit 0 = Sunday); 0 after reporting. */
static unsigned
conf_window_days(struct loader *ld, const config_setting_t *s, const char *path)
{
	unsigned mask = 0;
	int i, d, n = config_setting_length(s);

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY || n == 0) {
		conf_errorf(ld, s, "%s: expected a non-empty array of days like [\"mon\", \"tue\"], not %s",
		    path, config_setting_type(s) == CONFIG_TYPE_ARRAY ? "an empty array" : conf_type_name(s));
		return 0;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = conf_get_string(ld, e, path);

		if (v == NULL)
			return 0;
		if ((d = conf_day_index(v)) == -1) {
			conf_errorf(
			    ld, e, "%s: \"%s\" is not a day (mon, tue, wed, thu, fri, sat, sun)", path, v);
			return 0;
		}
		mask |= 1u << d;
	}
	return mask;
}

/* One contact window { days = [...]; start = "HH:MM"; end = "HH:MM"; }, all three required; 0 or -1. */
static int
conf_parse_window(struct loader *ld, const config_setting_t *s, const char *path, struct policy_window *w)
{
	char sub[CONF_PATH_MAX];
	int i, n, bad = 0;

	if (!config_setting_is_group(s)) {
		conf_errorf(ld, s,
		    "%s: expected a group { days = [...]; start = \"HH:MM\"; end = \"HH:MM\"; }, not %s",
		    path, conf_type_name(s));
		return -1;
	}
	w->start_min = w->end_min = -1;
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
		const char *name = config_setting_name(m);

		snprintf(sub, sizeof(sub), "%s.%s", path, name);
		if (strcmp(name, "days") == 0)
			bad |= (w->days = conf_window_days(ld, m, sub)) == 0;
		else if (strcmp(name, "start") == 0)
			bad |= (w->start_min = conf_window_time(ld, m, sub, 0)) == -1;
		else if (strcmp(name, "end") == 0)
			bad |= (w->end_min = conf_window_time(ld, m, sub, 1)) == -1;
		else {
			conf_errorf(ld, m, "unknown key %s", sub);
			bad = 1;
		}
	}
	if (bad)
		return -1;
	if (w->days == 0 || w->start_min == -1 || w->end_min == -1) {
		conf_errorf(ld, s, "%s: needs days, start and end", path);
		return -1;
	}
	if (w->start_min >= w->end_min) {
		conf_errorf(ld, s, "%s: start %02d:%02d is not before end %02d:%02d", path, w->start_min / 60,
		    w->start_min % 60, w->end_min / 60, w->end_min % 60);
		return -1;
	}
	return 0;
}

/* A region's windows: a list of 1..POLICY_MAX_WINDOWS groups. */
static void
conf_parse_windows(struct loader *ld, const config_setting_t *s, const char *path, struct policy_region *r)
{
	char sub[CONF_PATH_MAX];
	int i, n = config_setting_length(s);

	if (config_setting_type(s) != CONFIG_TYPE_LIST || n == 0) {
		conf_errorf(ld, s,
		    "%s: expected a non-empty list of windows like ( { days = [...]; ... } ), not %s", path,
		    config_setting_type(s) == CONFIG_TYPE_LIST ? "an empty list" : conf_type_name(s));
		return;
	}
	if (n > POLICY_MAX_WINDOWS) {
		conf_errorf(ld, s, "%s: %d windows, at most %d", path, n, POLICY_MAX_WINDOWS);
		return;
	}
	for (i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s[%d]", path, i);
		if (conf_parse_window(ld, config_setting_get_elem(s, (unsigned)i), sub, &r->windows[i]) == 0)
			r->nwindows++;
	}
}

/* "YYYY-MM-DD" naming a real calendar date -> day number; -1 when not. */
static int
conf_parse_date(const char *s, int32_t *out)
{
	int y, m, d, yy, mm, dd, i;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return -1;
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	if (m < 1 || m > 12 || d < 1 || d > 31)
		return -1;
	*out = tz_days_from_civil(y, m, d);
	tz_civil_from_days(*out, &yy, &mm, &dd);
	return yy == y && mm == m && dd == d ? 0 : -1;
}

/* A region's extra_holidays: an array of "YYYY-MM-DD", at most POLICY_MAX_EXTRA_HOLIDAYS. */
static void
conf_parse_extra_holidays(
    struct loader *ld, const config_setting_t *s, const char *path, struct policy_region *r)
{
	int i, n = config_setting_length(s);

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY) {
		conf_errorf(ld, s, "%s: expected an array of dates like [\"2026-12-24\"], not %s", path,
		    conf_type_name(s));
		return;
	}
	if (n > POLICY_MAX_EXTRA_HOLIDAYS) {
		conf_errorf(ld, s, "%s: %d dates, at most %d", path, n, POLICY_MAX_EXTRA_HOLIDAYS);
		return;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = conf_get_string(ld, e, path);

		if (v == NULL)
			return;
		if (conf_parse_date(v, &r->extra_holidays[r->nextra]) == -1) {
			conf_errorf(ld, e, "%s: \"%s\" is not a date YYYY-MM-DD", path, v);
			return;
		}
		r->nextra++;
	}
}

static void
conf_parse_holiday_set(
    struct loader *ld, const config_setting_t *s, const char *path, struct policy_region *r)
{
	const char *v = conf_get_string(ld, s, path);

	if (v != NULL && holidays_parse(v, &r->holidays) == -1)
		conf_errorf(ld, s, "%s: \"%s\" is not a holiday calendar (QC, ON, BC, none)", path, v);
}

/* 1 for a region code: two upper-case ASCII letters. */
static int
conf_is_region_code(const char *s)
{
	return strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

/*
 * One region: windows and holidays are required (a region without them would be a guess), notice_days,
 * max_per_7_days and extra_holidays default to 0 / none.
 */
static void
conf_parse_region(struct loader *ld, const config_setting_t *s, struct policy_region *r)
{
	char path[48], sub[CONF_PATH_MAX];
	int i, n, has_windows = 0, has_holidays = 0;

	snprintf(path, sizeof(path), "regions.%.32s", config_setting_name(s));
	if (!conf_is_region_code(config_setting_name(s)))
		conf_errorf(
		    ld, s, "%s: a region is named by its 2-letter upper-case code (QC, ON, ...)", path);
	if (!config_setting_is_group(s)) {
		conf_errorf(ld, s, "%s: expected a group, not %s", path, conf_type_name(s));
		return;
	}
	snprintf(r->code, sizeof(r->code), "%s", config_setting_name(s));
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
		const char *name = config_setting_name(m);

		snprintf(sub, sizeof(sub), "%s.%s", path, name);
		if (strcmp(name, "windows") == 0) {
			has_windows = 1;
			conf_parse_windows(ld, m, sub, r);
		} else if (strcmp(name, "holidays") == 0) {
			has_holidays = 1;
			conf_parse_holiday_set(ld, m, sub, r);
		} else if (strcmp(name, "notice_days") == 0)
			(void)conf_get_int(ld, m, sub, 0, CONF_NOTICE_DAYS_MAX, &r->notice_days);
		else if (strcmp(name, "max_per_7_days") == 0)
			(void)conf_get_int(ld, m, sub, 0, CONF_CAP_MAX, &r->max_per_7_days);
		else if (strcmp(name, "extra_holidays") == 0)
			conf_parse_extra_holidays(ld, m, sub, r);
		else
			conf_errorf(ld, m, "unknown key %s", sub);
	}
	if (!has_windows)
		conf_errorf(ld, s, "%s: needs windows (when it may be contacted)", path);
	if (!has_holidays)
		conf_errorf(ld, s, "%s: needs holidays (QC, ON, BC or none)", path);
}

/* The regions group replaces the built-in rules as a whole: an empty one would contact nobody. */
static void
conf_set_regions(struct loader *ld, const struct conf_key *k, const config_setting_t *s)
{
	struct policy_rules *rules = CONF_VAL(ld->conf, k, struct policy_rules);
	int i, n;

	if (!config_setting_is_group(s)) {
		conf_errorf(ld, s, "%s: expected a group, not %s", k->path, conf_type_name(s));
		return;
	}
	n = config_setting_length(s);
	if (n == 0 || n > POLICY_MAX_REGIONS) {
		conf_errorf(ld, s,
		    "%s: has %d regions, expected 1 to %d (remove the group for the built-in rules)", k->path,
		    n, POLICY_MAX_REGIONS);
		return;
	}
	memset(rules->regions, 0, sizeof(rules->regions));
	rules->nregions = n;
	for (i = 0; i < n; i++)
		conf_parse_region(ld, config_setting_get_elem(s, (unsigned)i), &rules->regions[i]);
}

/* listen.trusted_proxies: an array (or list) of at most CONF_MAX_TRUSTED_PROXIES numeric IP addresses. */
static void
conf_set_addrs(struct loader *ld, const struct conf_key *k, const config_setting_t *s)
{
	char canon[CONF_MAX_TRUSTED_PROXIES][CONF_ADDR_MAX];
	int n, i;

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST) {
		conf_errorf(ld, s,
		    "%s: expected an array of IP addresses like [\"10.0.0.5\", \"::1\"], not %s", k->path,
		    conf_type_name(s));
		return;
	}
	if ((n = config_setting_length(s)) > CONF_MAX_TRUSTED_PROXIES) {
		conf_errorf(ld, s, "%s: has %d entries, at most %d", k->path, n, CONF_MAX_TRUSTED_PROXIES);
		return;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = conf_get_string(ld, e, k->path);

		if (v == NULL)
			return;
		if (webhook_addr_canonical(v, canon[i], sizeof(canon[i])) == -1) {
			conf_errorf(ld, e, "%s: \"%s\" is not an IPv4 or IPv6 address (no names, no ranges)",
			    k->path, v);
			return;
		}
	}
	memcpy(ld->conf->listen.trusted_proxies, canon, sizeof(canon[0]) * (size_t)n);
	ld->conf->listen.ntrusted_proxies = n;
}

/* Apply the file's setting s to key k, or report why it cannot be. */
static void
conf_apply(struct loader *ld, const struct conf_key *k, const config_setting_t *s)
{
	int before = ld->errs->n;

	switch (k->kind) {
	case CK_STRING:
	case CK_CONNINFO:
	case CK_SECRET:
		conf_set_string(ld, k, s);
		break;
	case CK_SENDER:
		conf_set_sender(ld, k, s);
		break;
	case CK_DIALECT:
		conf_set_dialect(ld, k, s);
		break;
	case CK_INT:
		(void)conf_get_int(ld, s, k->path, k->min, k->max, CONF_VAL(ld->conf, k, int));
		break;
	case CK_FLOAT:
		conf_set_float(ld, k, s);
		break;
	case CK_BOOL:
		conf_set_bool(ld, k, s);
		break;
	case CK_OFFSETS:
		conf_set_offsets(ld, k, s);
		break;
	case CK_REGIONS:
		conf_set_regions(ld, k, s);
		break;
	case CK_ADDRS:
		conf_set_addrs(ld, k, s);
		break;
	}
	if (ld->errs->n > before)
		ld->bad[k - conf_keys] = 1;
}

/* Set key k of a fresh conf to its default. */
static void
conf_set_default(struct conf *c, const struct conf_key *k)
{
	switch (k->kind) {
	case CK_STRING:
	case CK_CONNINFO:
	case CK_SECRET:
		*CONF_VAL(c, k, char *) = conf_xstrdup(k->def_str);
		break;
	case CK_SENDER:
		snprintf(CONF_VAL(c, k, char), sizeof(c->short_code), "%s", k->def_str);
		break;
	case CK_DIALECT:
		*CONF_VAL(c, k, enum conf_dialect) = (enum conf_dialect)k->def_num;
		break;
	case CK_INT:
	case CK_BOOL:
		*CONF_VAL(c, k, int) = (int)k->def_num;
		break;
	case CK_FLOAT:
		*CONF_VAL(c, k, double) = k->def_num;
		break;
	case CK_OFFSETS:
		memcpy(c->rules.offsets_days, k->def_ints, sizeof(k->def_ints[0]) * (size_t)k->def_nints);
		c->rules.noffsets = k->def_nints;
		break;
	case CK_REGIONS:
		break; /* policy_defaults() */
	case CK_ADDRS:
		c->listen.ntrusted_proxies = 0; /* none: every peer is a client */
		break;
	}
}

/* A fresh conf holding every default. */
static struct conf *
conf_defaults(const char *path)
{
	struct conf *c = calloc(1, sizeof(*c));
	size_t i;

	if (c == NULL)
		fatal("calloc");
	c->file = conf_xstrdup(path);
	policy_defaults(&c->rules);
	for (i = 0; i < CONF_NKEYS; i++)
		conf_set_default(c, &conf_keys[i]);
	return c;
}

static const struct conf_key *
conf_key_find(const char *path)
{
	size_t i;

	for (i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_keys[i].path, path) == 0)
			return &conf_keys[i];
	return NULL;
}

/* 1 when path names a group of keys ("gateway" for "gateway.url"). */
static int
conf_is_group_path(const char *path)
{
	size_t i, n = strlen(path);

	for (i = 0; i < CONF_NKEYS; i++)
		if (strncmp(conf_keys[i].path, path, n) == 0 && conf_keys[i].path[n] == '.')
			return 1;
	return 0;
}

/* Apply every setting of group g (whose path is prefix, NULL for the root), in file order; report strays. */
static void
conf_walk(struct loader *ld, const config_setting_t *g, const char *prefix)
{
	char path[CONF_PATH_MAX];
	int i, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const struct conf_key *k;

		if (prefix != NULL)
			snprintf(path, sizeof(path), "%s.%s", prefix, config_setting_name(s));
		else
			snprintf(path, sizeof(path), "%s", config_setting_name(s));
		if ((k = conf_key_find(path)) != NULL)
			conf_apply(ld, k, s);
		else if (!conf_is_group_path(path))
			conf_errorf(
			    ld, s, "unknown %s %s", config_setting_is_group(s) ? "group" : "key", path);
		else if (!config_setting_is_group(s))
			conf_errorf(ld, s, "%s: expected a group, not %s", path, conf_type_name(s));
		else
			conf_walk(ld, s, path);
	}
}

/* The file's setting for path, or NULL when the file leaves it to its default. */
static const config_setting_t *
conf_setting(struct loader *ld, const char *path)
{
	return config_lookup(&ld->cfg, path);
}

/* The first of two settings the file has, for errors about a pair of keys. */
static const config_setting_t *
conf_setting2(struct loader *ld, const char *a, const char *b)
{
	const config_setting_t *s = conf_setting(ld, a);

	return s != NULL ? s : conf_setting(ld, b);
}

/* 1 when the file gave a bad value for the key at path (checks that depend on it are skipped). */
static int
conf_is_bad(struct loader *ld, const char *path)
{
	return ld->bad[conf_key_find(path) - conf_keys];
}

/* Read at most len bytes of fd into buf; the count, or -1 with errno set. */
static ssize_t
conf_read_fd(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t r;

	while (got < len) {
		r = read(fd, buf + got, len - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/*
 * Read a secret: refuse a file group or others may read or write (it would not stay secret), strip
 * one trailing newline, refuse an empty one. With missing_ok, a missing file is no secret (*out NULL).
 */
static int
conf_read_secret(const char *file, int missing_ok, char **out, char *err, size_t errlen)
{
	char buf[CONF_SECRET_MAX + 1];
	struct stat st;
	ssize_t len;
	int fd;

	*out = NULL;
	if ((fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		if (missing_ok && errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot open %s: %s", file, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		snprintf(err, errlen, "%s is not a regular file", file);
	else if ((st.st_mode & 077) != 0)
		snprintf(err, errlen, "%s is readable by group or others (mode %04o); chmod 600 it", file,
		    (unsigned)(st.st_mode & 07777));
	else if ((len = conf_read_fd(fd, buf, sizeof(buf))) == -1)
		snprintf(err, errlen, "cannot read %s: %s", file, strerror(errno));
	else if (len > CONF_SECRET_MAX)
		snprintf(err, errlen, "%s is longer than %d bytes", file, CONF_SECRET_MAX);
	else {
		if (len > 0 && buf[len - 1] == '\n')
			len--;
		if (len == 0)
			snprintf(err, errlen, "%s is empty", file);
		else if ((*out = strndup(buf, (size_t)len)) == NULL)
			fatal("strndup");
	}
	close(fd);
	explicit_bzero(buf, sizeof(buf));
	return *out != NULL ? 0 : -1;
}

/* Load the secret of key k: its file, else $CREDENTIALS_DIRECTORY/<credential> when that exists. */
static void
conf_load_secret(struct loader *ld, const struct conf_key *k)
{
	const char *file = *CONF_VAL(ld->conf, k, char *), *dir = getenv("CREDENTIALS_DIRECTORY");
	char **secret = (char **)((char *)ld->conf + k->off_secret);
	char cred[4096], err[4096 + 256];

	if (file[0] == '\0') {
		if (dir == NULL || dir[0] == '\0')
			return;
		snprintf(cred, sizeof(cred), "%s/%s", dir, k->credential);
		file = cred;
	}
	if (conf_read_secret(file, file == cred, secret, err, sizeof(err)) == -1)
		conf_errorf(ld, conf_setting(ld, k->path), "%s: %s", k->path, err);
}

/* A Twilio account SID: "AC" and 32 lower-case hex digits. */
static int
conf_is_twilio_sid(const char *s)
{
	return strlen(s) == 34 && strncmp(s, "AC", 2) == 0 && strspn(s + 2, "0123456789abcdef") == 32;
}

/* The user name a dialect needs: any for kannel, the account SID for twilio. */
static void
conf_check_username(struct loader *ld, const char *dialect)
{
	const struct conf *c = ld->conf;
	int twilio = c->gateway.dialect == CONF_DIALECT_TWILIO;

	if (conf_is_bad(ld, "gateway.username"))
		return;
	if (c->gateway.username[0] == '\0')
		conf_errorf(ld, conf_setting2(ld, "gateway.username", "gateway.dialect"),
		    "gateway.username: the %s dialect needs a username%s", dialect,
		    twilio ? " (the account SID)" : "");
	else if (twilio && !conf_is_twilio_sid(c->gateway.username))
		conf_errorf(ld, conf_setting(ld, "gateway.username"),
		    "gateway.username: \"%s\" is not a Twilio account SID (AC and 32 hex digits, lower case)",
		    c->gateway.username);
}

/* Kannel and Twilio cannot work without credentials: say so at load rather than at the first send. */
static void
conf_check_dialect(struct loader *ld)
{
	const struct conf *c = ld->conf;
	const char *dialect = conf_dialect_to_text(c->gateway.dialect);

	if (c->gateway.dialect == CONF_DIALECT_JSON || conf_is_bad(ld, "gateway.dialect"))
		return;
	conf_check_username(ld, dialect);
	if (c->gateway.secret == NULL && !conf_is_bad(ld, "gateway.secret_file"))
		conf_errorf(ld, conf_setting2(ld, "gateway.secret_file", "gateway.dialect"),
		    "gateway.secret_file: the %s dialect needs a secret (%s, or "
		    "$CREDENTIALS_DIRECTORY/gateway_secret)",
		    dialect, c->gateway.dialect == CONF_DIALECT_TWILIO ? "the auth token" : "the password");
}

/* Checks that involve two keys, made once both have their final values. */
static void
conf_check_pairs(struct loader *ld)
{
	const struct conf *c = ld->conf;

	if (!conf_is_bad(ld, "gateway.backoff_base_ms") && !conf_is_bad(ld, "gateway.backoff_cap_ms") &&
	    c->gateway.backoff_cap_ms < c->gateway.backoff_base_ms)
		conf_errorf(ld, conf_setting2(ld, "gateway.backoff_cap_ms", "gateway.backoff_base_ms"),
		    "gateway.backoff_cap_ms: %d is less than gateway.backoff_base_ms (%d)",
		    c->gateway.backoff_cap_ms, c->gateway.backoff_base_ms);
	if (!conf_is_bad(ld, "schedule.lease_s") && !conf_is_bad(ld, "gateway.timeout_ms") &&
	    (long long)c->schedule.lease_s * 1000 <= 2LL * c->gateway.timeout_ms)
		conf_errorf(ld, conf_setting2(ld, "schedule.lease_s", "gateway.timeout_ms"),
		    "schedule.lease_s: %d s must exceed twice gateway.timeout_ms (2 x %d ms): "
		    "a lease must outlive a request",
		    c->schedule.lease_s, c->gateway.timeout_ms);
}

/* The hand-off is signed: a portal without the shared key would refuse every payment. */
static void
conf_check_checkout(struct loader *ld)
{
	const struct conf *c = ld->conf;

	if (!conf_is_bad(ld, "checkout.url") && !conf_is_bad(ld, "checkout.secret_file") &&
	    c->checkout.url[0] != '\0' && c->checkout.secret == NULL)
		conf_errorf(ld, conf_setting2(ld, "checkout.secret_file", "checkout.url"),
		    "checkout.secret_file: checkout.url needs the key shared with the portal (a file, mode 0600, "
		    "or $CREDENTIALS_DIRECTORY/checkout_secret)");
}

int
conf_template_longest(const struct conf *c, const char *lang, struct gsm_info *info, char *err, size_t errlen)
{
	const char *tmpl = strcmp(lang, "fr") == 0 ? c->templates.fr : c->templates.en;
	char *buf, *text;
	int rc = 0;

	if ((buf = malloc(CONF_RENDER_MAX)) == NULL)
		fatal("malloc");
	if (template_render_longest(tmpl, lang, c->token.base_url, buf, CONF_RENDER_MAX, err, errlen) == -1) {
		free(buf);
		return -1;
	}
	if ((text = c->templates.transliterate ? gsm_transliterate(buf) : buf) == NULL)
		fatal("gsm_transliterate");
	if (gsm_analyze(text, info) == -1) {
		snprintf(err, errlen, "is not valid UTF-8");
		rc = -1;
	}
	if (text != buf)
		free(text);
	free(buf);
	return rc;
}

/*
 * A template must pass template_check and, rendered with the longest values any row can produce (and
 * transliterated when the daemon will do so), fit in templates.max_segments.
 */
static void
conf_check_template(struct loader *ld, const char *path, const char *lang, const char *tmpl)
{
	const struct conf *c = ld->conf;
	const config_setting_t *s = conf_setting(ld, path);
	struct gsm_info info;
	char err[512];

	if (template_check(tmpl, lang, err, sizeof(err)) == -1 ||
	    conf_template_longest(c, lang, &info, err, sizeof(err)) == -1)
		conf_errorf(ld, s, "%s: %s", path, err);
	else if (info.segments > c->templates.max_segments)
		conf_errorf(ld, s,
		    "%s: renders to %d segments (%s, %zu units) at its longest; templates.max_segments is %d",
		    path, info.segments, info.coding == GSM_CODING_GSM7 ? "GSM-7" : "UCS-2", info.units,
		    c->templates.max_segments);
}

/* Everything that needs more than one key or reads outside the file, once every key has its value. */
static void
conf_check_all(struct loader *ld)
{
	size_t i;

	ld->conf->db_pooled =
	    ld->conf->db_pooling != NULL && strcmp(ld->conf->db_pooling, "transaction") == 0;
	conf_check_pairs(ld);
	if (!(ld->flags & CONF_NO_SECRETS)) {
		for (i = 0; i < CONF_NKEYS; i++)
			if (conf_keys[i].kind == CK_SECRET && !ld->bad[i])
				conf_load_secret(ld, &conf_keys[i]);
		conf_check_dialect(ld);
		conf_check_checkout(ld);
	}
	if (conf_is_bad(ld, "token.base_url") || conf_is_bad(ld, "templates.max_segments"))
		return;
	if (!conf_is_bad(ld, "templates.fr"))
		conf_check_template(ld, "templates.fr", "fr", ld->conf->templates.fr);
	if (!conf_is_bad(ld, "templates.en"))
		conf_check_template(ld, "templates.en", "en", ld->conf->templates.en);
}

/* Parse the file; a missing file or a syntax error (libconfig stops at the first) is reported here. */
static int
conf_parse(struct loader *ld)
{
	const char *file;
	int saved;

	errno = 0;
	if (config_read_file(&ld->cfg, ld->path) == CONFIG_TRUE)
		return 0;
	saved = errno;
	if (config_error_type(&ld->cfg) == CONFIG_ERR_FILE_IO) {
		conf_errorf(
		    ld, NULL, "cannot read: %s", saved != 0 ? strerror(saved) : config_error_text(&ld->cfg));
		return -1;
	}
	file = config_error_file(&ld->cfg) != NULL ? config_error_file(&ld->cfg) : ld->path;
	conf_error_at(ld, file, (unsigned)config_error_line(&ld->cfg), config_error_text(&ld->cfg));
	return -1;
}

int
conf_load(const char *path, struct conf **out, struct conf_errors *errs)
{
	return conf_load_flags(path, 0, out, errs);
}

struct conf *
conf_load_or_exit(const char *path, int flags)
{
	struct conf_errors errs = { 0 };
	struct conf *conf;
	int i;

	if (conf_load_flags(path, flags, &conf, &errs) == -1) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		conf_errors_free(&errs);
		exit(EX_CONFIG);
	}
	return conf;
}

int
conf_load_flags(const char *path, int flags, struct conf **out, struct conf_errors *errs)
{
	unsigned char bad[CONF_NKEYS] = { 0 };
	struct loader ld = { .path = path, .flags = flags, .errs = errs, .bad = bad };
	int nerrs = errs->n;

	*out = NULL;
	config_init(&ld.cfg);
	if (conf_parse(&ld) == 0) {
		ld.conf = conf_defaults(path);
		conf_walk(&ld, config_root_setting(&ld.cfg), NULL);
		conf_check_all(&ld);
	}
	config_destroy(&ld.cfg);
	if (errs->n > nerrs) {
		conf_free(ld.conf);
		return -1;
	}
	*out = ld.conf;
	return 0;
}

/* Free a secret without leaving it in the heap. */
static void
conf_free_secret(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

void
conf_free(struct conf *conf)
{
	size_t i;

	if (conf == NULL)
		return;
	for (i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (k->kind == CK_STRING || k->kind == CK_CONNINFO || k->kind == CK_SECRET)
			free(*CONF_VAL(conf, k, char *));
		if (k->kind == CK_SECRET)
			conf_free_secret(*(char **)((char *)conf + k->off_secret));
	}
	free(conf->file);
	free(conf);
}

void
conf_errors_free(struct conf_errors *errs)
{
	int i;

	for (i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}

/* s as a libconfig string literal. */
static void
conf_dump_quoted(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(fp, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(fp, "\\x%02x", (unsigned char)*s);
		else
			fputc(*s, fp);
	}
	fputc('"', fp);
}

/* One conninfo value as libpq reads it back: quoted, with ' and \\ escaped. */
static void
conf_conninfo_value(FILE *fp, const char *v)
{
	fputc('\'', fp);
	for (; *v != '\0'; v++) {
		if (*v == '\'' || *v == '\\')
			fputc('\\', fp);
		fputc(*v, fp);
	}
	fputc('\'', fp);
}

/* The parsed connection string rebuilt with the password shown as (set); newly allocated. */
static char *
conf_conninfo_redacted(const PQconninfoOption *opts)
{
	const PQconninfoOption *o;
	const char *sep = "";
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	if (mem == NULL)
		fatal("open_memstream");
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		fprintf(mem, "%s%s=", sep, o->keyword);
		if (strcmp(o->keyword, "password") == 0)
			fputs("(set)", mem);
		else
			conf_conninfo_value(mem, o->val);
		sep = " ";
	}
	fclose(mem);
	return text;
}

/* A URL as written, unless it carries a password (http://user:secret@host/): then with the password
 * shown as (set), like the conninfo's. */
static void
conf_dump_url(FILE *fp, const char *url)
{
	CURLU *u = curl_url();
	char *pw = NULL, *text = NULL;

	if (u == NULL)
		fatalx("conf_dump_url: out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) != CURLUE_OK)
		conf_dump_quoted(fp, url);
	else if (curl_url_set(u, CURLUPART_PASSWORD, "(set)", 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &text, 0) == CURLUE_OK)
		conf_dump_quoted(fp, text);
	else
		conf_dump_quoted(fp, "(a URL with a password)");
	curl_free(pw);
	curl_free(text);
	curl_url_cleanup(u);
}

/* 1 when the parsed connection string sets a password. */
static int
conf_conninfo_has_password(const PQconninfoOption *opts)
{
	const PQconninfoOption *o;

	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL && strcmp(o->keyword, "password") == 0)
			return 1;
	return 0;
}

/* The connection string as written, unless it holds a password (a secret like any other). */
static void
conf_dump_conninfo(FILE *fp, const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	char *text;

	if (opts == NULL)
		fatalx("conf_dump_conninfo: out of memory");
	if (!conf_conninfo_has_password(opts))
		conf_dump_quoted(fp, conninfo);
	else {
		text = conf_conninfo_redacted(opts);
		conf_dump_quoted(fp, text);
		free(text);
	}
	PQconninfoFree(opts);
}

static void
conf_dump_window(FILE *fp, const struct policy_window *w)
{
	const char *sep = "";
	int d;

	fputs("{ days = [", fp);
	for (d = 1; d <= 7; d++) {
		if (w->days & (1u << (d % 7))) {
			fprintf(fp, "%s\"%s\"", sep, conf_day_names[d % 7]);
			sep = ", ";
		}
	}
	fprintf(fp, "]; start = \"%02d:%02d\"; end = \"%02d:%02d\"; }", w->start_min / 60, w->start_min % 60,
	    w->end_min / 60, w->end_min % 60);
}

/* One region in config syntax, on one line. */
static void
conf_dump_region(FILE *fp, const struct policy_region *r)
{
	int i, y, m, d;

	fprintf(fp, "regions.%s = { windows = ( ", r->code);
	for (i = 0; i < r->nwindows; i++) {
		fputs(i > 0 ? ", " : "", fp);
		conf_dump_window(fp, &r->windows[i]);
	}
	fprintf(fp, " ); holidays = \"%s\"; notice_days = %d; max_per_7_days = %d; extra_holidays = [",
	    holidays_to_text(r->holidays), r->notice_days, r->max_per_7_days);
	for (i = 0; i < r->nextra; i++) {
		tz_civil_from_days(r->extra_holidays[i], &y, &m, &d);
		fprintf(fp, "%s\"%04d-%02d-%02d\"", i > 0 ? ", " : "", y, m, d);
	}
	fputs("]; }\n", fp);
}

/* The line(s) of one key: "path = value", secrets as (set)/(none), regions one line each. */
static void
conf_dump_key(const struct conf *c, const struct conf_key *k, FILE *fp)
{
	const struct policy_rules *rules = &c->rules;
	int i;

	if (k->kind == CK_REGIONS) {
		for (i = 0; i < rules->nregions; i++)
			conf_dump_region(fp, &rules->regions[i]);
		return;
	}
	fprintf(fp, "%s = ", k->path);
	switch (k->kind) {
	case CK_STRING:
		if (k->check == conf_check_url)
			conf_dump_url(fp, *CONF_CVAL(c, k, char *));
		else
			conf_dump_quoted(fp, *CONF_CVAL(c, k, char *));
		break;
	case CK_SECRET:
		conf_dump_quoted(fp, *CONF_CVAL(c, k, char *));
		break;
	case CK_CONNINFO:
		conf_dump_conninfo(fp, *CONF_CVAL(c, k, char *));
		break;
	case CK_SENDER:
		conf_dump_quoted(fp, CONF_CVAL(c, k, char));
		break;
	case CK_DIALECT:
		conf_dump_quoted(fp, conf_dialect_to_text(*CONF_CVAL(c, k, enum conf_dialect)));
		break;
	case CK_INT:
		fprintf(fp, "%d", *CONF_CVAL(c, k, int));
		break;
	case CK_FLOAT:
		fprintf(fp, "%g", *CONF_CVAL(c, k, double));
		break;
	case CK_BOOL:
		fputs(*CONF_CVAL(c, k, int) ? "true" : "false", fp);
		break;
	case CK_OFFSETS:
		for (i = 0; i < rules->noffsets; i++)
			fprintf(fp, "%s%d", i > 0 ? ", " : "[", rules->offsets_days[i]);
		fputc(']', fp);
		break;
	case CK_ADDRS:
		fputc('[', fp);
		for (i = 0; i < c->listen.ntrusted_proxies; i++)
			fprintf(fp, "%s\"%s\"", i > 0 ? ", " : "", c->listen.trusted_proxies[i]);
		fputc(']', fp);
		break;
	case CK_REGIONS:
		break;
	}
	fputc('\n', fp);
	if (k->kind == CK_SECRET)
		fprintf(fp, "%.*s.secret = %s\n", (int)(strchr(k->path, '.') - k->path), k->path,
		    *(char *const *)((const char *)c + k->off_secret) != NULL ? "(set)" : "(none)");
}

void
conf_dump(const struct conf *conf, FILE *fp)
{
	size_t i;

	for (i = 0; i < CONF_NKEYS; i++)
		conf_dump_key(conf, &conf_keys[i], fp);
}

/* The dumped text of one key: two confs agree on a key when they print it the same. */
static char *
conf_key_text(const struct conf *c, const struct conf_key *k)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	if (mem == NULL)
		fatal("open_memstream");
	conf_dump_key(c, k, mem);
	fclose(mem);
	return text;
}

int
conf_restart_changes(const struct conf *old, const struct conf *new, char *buf, size_t len)
{
	size_t i, used = 0;
	int n = 0;

	if (len > 0)
		buf[0] = '\0';
	for (i = 0; i < CONF_NKEYS; i++) {
		char *a, *b;

		if (conf_keys[i].reloadable)
			continue;
		a = conf_key_text(old, &conf_keys[i]);
		b = conf_key_text(new, &conf_keys[i]);
		if (strcmp(a, b) != 0) {
			if (used < len)
				used += (size_t)snprintf(
				    buf + used, len - used, "%s%s", n > 0 ? ", " : "", conf_keys[i].path);
			n++;
		}
		free(a);
		free(b);
	}
	return n;
}
