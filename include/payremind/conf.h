/* Configuration: libconfig file -> a fresh struct conf, every key checked against one table. */
#ifndef PAYREMIND_CONF_H
#define PAYREMIND_CONF_H

#include <stdio.h>
#include "payremind/gsm.h"
#include "payremind/policy.h"

enum conf_dialect { CONF_DIALECT_JSON, CONF_DIALECT_KANNEL, CONF_DIALECT_TWILIO };

#define CONF_MAX_TRUSTED_PROXIES 32 /* listen.trusted_proxies: at most this many addresses */
#define CONF_ADDR_MAX 46            /* an IPv6 address in text (INET6_ADDRSTRLEN) */

struct conf {
	char *file; /* path as given on the command line */

	char *db_conninfo;  /* database.conninfo */
	char *db_pooling;   /* database.pooling: "none" or "transaction" (behind PgBouncer, SPEC §8) */
	int db_pooled;      /* pooling = "transaction": no LISTEN, no prepared statements, no session SET */
	char short_code[8]; /* sender.short_code: "27022" or "270282" */

	struct {
		enum conf_dialect dialect;
		char *url;
		char *username;    /* kannel user, twilio account SID */
		char *secret_file; /* "" = none (or $CREDENTIALS_DIRECTORY/gateway_secret) */
		char *secret;      /* content of secret_file, trailing newline stripped; NULL = none */
		int timeout_ms;
		int connect_timeout_ms;
		int max_in_flight;
		double rate_per_second; /* 0 = no limit */
		int max_attempts;
		int backoff_base_ms;
		int backoff_cap_ms;
	} gateway;

	struct {
		char *base_url;
		int ttl_hours;
	} token;

	struct {
		int poll_interval_s;
		int batch_size;
		int lease_s;
	} schedule; /* offsets_days, min_gap_hours and window_guard_s live in rules */

	struct policy_rules rules; /* regions (built-in defaults when the file has no `regions` group) */

	struct {
		char *fr;
		char *en;
		int max_segments;
		int transliterate;
	} templates;

	struct {
		char *address;
		int port;
		char *secret_file;
		char *secret;
		char *public_url;
		/* Peers whose X-Forwarded-For names the client, canonical text (webhook_addr_canonical);
		 * they are not held to the per-client connection limit. */
		char trusted_proxies[CONF_MAX_TRUSTED_PROXIES][CONF_ADDR_MAX];
		int ntrusted_proxies;
	} listen;

	struct {
		int days;
	} retention;

	struct {
		char *url;         /* ARO's payment portal ("" = no online payment: the page has no button) */
		char *secret_file; /* the HMAC-SHA256 key shared with the portal; mode 0600 */
		char *secret;      /* its content; NULL = none */
		int ttl_s;         /* how long a hand-off stays valid */
	} checkout;

	struct {
		char *bank_payee;   /* the payee to add in online banking */
		char *mail_address; /* "" = no payment by mail */
		char *permit;       /* ARO's collection permit number ("" = not shown) */
	} paypage;
};

/* Errors collected while loading, each "FILE:LINE: message" (or "FILE: message" when no line applies). */
struct conf_errors {
	char **msgs;
	int n;
};

/* Load and validate path into a newly allocated conf. 0, or -1 with every error in errs (*out NULL). */
int conf_load(const char *path, struct conf **out, struct conf_errors *errs)
    __attribute__((warn_unused_result));
#define CONF_NO_SECRETS 1 /* conf_load_flags: leave the secret files alone (operators' tools need none) */

/* conf_load with flags (CONF_NO_SECRETS). */
int conf_load_flags(const char *path, int flags, struct conf **out, struct conf_errors *errs)
    __attribute__((warn_unused_result));
/* Start-up: conf_load_flags, or print every error on stderr and exit 78 (EX_CONFIG). */
struct conf *conf_load_or_exit(const char *path, int flags);
/* Free a conf from conf_load (NULL is fine). */
void conf_free(struct conf *conf);
/* Free the messages of errs and reset it. */
void conf_errors_free(struct conf_errors *errs);
/* 1 when code is one of the approved short codes {27022, 270282}, whatever any config says. */
int conf_sender_allowed(const char *code);
/* "json", "kannel" or "twilio". */
const char *conf_dialect_to_text(enum conf_dialect dialect);
/* Encoding and segments of the lang ("fr" or "en") template at its longest rendering (largest amount,
 * full link, transliterated when templates.transliterate): what the start-up check reports. 0 or -1. */
int conf_template_longest(const struct conf *conf, const char *lang, struct gsm_info *info, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/* Print the effective configuration on one line per key, secrets redacted. */
void conf_dump(const struct conf *conf, FILE *fp);
/* How many keys that only a restart applies (database.conninfo, schedule.lease_s, listen.*) differ between
 * old and new, their names comma-separated in buf: what a SIGHUP reload must warn about. */
int conf_restart_changes(const struct conf *old, const struct conf *new, char *buf, size_t len);

#endif
