/* Unit tests of conf: defaults, every error with its line, secrets, regions, templates, the example file. */
#define _GNU_SOURCE /* open_memstream, mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libconfig.h>

#include "payremind/conf.h"
#include "payremind/gsm.h"
#include "payremind/policy.h"
#include "payremind/template.h"
#include "payremind/tz.h"

#define MAX_ERRORS 6

/* The temporary directory every test writes its files into. */
static char tmpdir[] = "/tmp/test_conf.XXXXXX";

/* dir/name, in a static buffer per slot (a test needs at most a few paths at once). */
static const char *
tmp_path(int slot, const char *name)
{
	static char paths[4][512];

	snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", tmpdir, name);
	return paths[slot];
}

/* Write text to dir/name with that mode; returns the path (slot 0 unless given otherwise). */
static const char *
write_file_slot(int slot, const char *name, const char *text, mode_t mode)
{
	const char *path = tmp_path(slot, name);
	FILE *fp;

	unlink(path);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static const char *
write_conf(const char *text)
{
	return write_file_slot(0, "case.conf", text, 0644);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	if (mkdir(tmp_path(0, "creds"), 0700) == -1)
		return -1;
	unsetenv("CREDENTIALS_DIRECTORY");
	return 0;
}

static int
teardown(void **state)
{
	static const char *const files[] = { "case.conf", "secret", "creds/gateway_secret",
		"creds/listen_secret" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(tmp_path(0, files[i]));
	rmdir(tmp_path(0, "creds"));
	return rmdir(tmpdir);
}

/* Load text from a file; 0 with *out, or -1 with errs. */
static int
load_text(const char *text, struct conf **out, struct conf_errors *errs)
{
	return conf_load(write_conf(text), out, errs);
}

/* Load text that must be valid. */
static struct conf *
load_ok(const char *text)
{
	struct conf_errors errs = { 0 };
	struct conf *c = NULL;
	int r = load_text(text, &c, &errs);

	if (r == -1)
		fprintf(stderr, "unexpected error: %s\n", errs.msgs[0]);
	assert_int_equal(r, 0);
	assert_int_equal(errs.n, 0);
	assert_non_null(c);
	return c;
}

/* conf_dump's output, newly allocated. */
static char *
dump_text(const struct conf *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	assert_non_null(mem);
	conf_dump(c, mem);
	assert_int_equal(fclose(mem), 0);
	return text;
}

/* Assert errs holds exactly the expected messages, each given after "FILE" (":LINE: msg" or ": msg"). */
static void
assert_errors(const char *file, const struct conf_errors *errs, const char *const *expected)
{
	char want[1024];
	int n;

	for (n = 0; n < MAX_ERRORS && expected[n] != NULL; n++) {
		snprintf(want, sizeof(want), "%s%s", file, expected[n]);
		if (n < errs->n)
			assert_string_equal(errs->msgs[n], want);
	}
	if (errs->n != n) {
		int i;

		for (i = 0; i < errs->n; i++)
			fprintf(stderr, "got: %s\n", errs->msgs[i]);
	}
	assert_int_equal(errs->n, n);
}

struct error_case {
	const char *name;
	const char *text;
	const char *errors[MAX_ERRORS + 1]; /* after the file name, NULL-terminated */
};

static const struct error_case error_cases[] = {
	{ "int below its range", "gateway = {\n\ttimeout_ms = 0;\n};\n",
	    { ":2: gateway.timeout_ms: 0 is out of range [100, 120000]" } },
	{ "int above its range", "\ntoken = { ttl_hours = 2161; };\n",
	    { ":2: token.ttl_hours: 2161 is out of range [1, 2160]" } },
	{ "large range printed in full", "gateway = { backoff_cap_ms = 86400001; };\n",
	    { ":1: gateway.backoff_cap_ms: 86400001 is out of range [10, 86400000]" } },
	{ "unknown key in a group", "gateway = {\n\ttimout_ms = 5000;\n};\n",
	    { ":2: unknown key gateway.timout_ms" } },
	{ "unknown group", "\n\ngatway = { url = \"http://x\"; };\n", { ":3: unknown group gatway" } },
	{ "unknown top-level key", "port = 8787;\n", { ":1: unknown key port" } },
	{ "unknown key in a known group nested as a group", "listen = { tls = { cert = \"x\"; }; };\n",
	    { ":1: unknown group listen.tls" } },
	{ "string for an integer", "listen = {\n\tport = \"8787\";\n};\n",
	    { ":2: listen.port: expected an integer, not a string" } },
	{ "float for an integer", "gateway = { max_attempts = 8.0; };\n",
	    { ":1: gateway.max_attempts: expected an integer, not a float" } },
	{ "integer for a string", "database = { conninfo = 5; };\n",
	    { ":1: database.conninfo: expected a string, not an integer" } },
	{ "integer for a boolean", "templates = { transliterate = 1; };\n",
	    { ":1: templates.transliterate: expected true or false, not an integer" } },
	{ "scalar for a group", "\ngateway = 5;\n", { ":2: gateway: expected a group, not an integer" } },
	{ "negative rate", "gateway = { rate_per_second = -1.5; };\n",
	    { ":1: gateway.rate_per_second: -1.5 is out of range [0, 100000]" } },
	{ "string rate", "gateway = { rate_per_second = \"30\"; };\n",
	    { ":1: gateway.rate_per_second: expected a number, not a string" } },
	{ "unapproved short code", "sender = {\n\tshort_code = \"12345\";\n};\n",
	    { ":2: sender.short_code: \"12345\" is not an approved short code (27022, 270282)" } },
	{ "short code as a number", "sender = { short_code = 27022; };\n",
	    { ":1: sender.short_code: expected a string, not an integer" } },
	{ "unknown dialect", "gateway = {\n\n\tdialect = \"smpp\";\n};\n",
	    { ":3: gateway.dialect: \"smpp\" is not a dialect (json, kannel, twilio)" } },
	{ "gateway url not http", "gateway = { url = \"ftp://gw/sms\"; };\n",
	    { ":1: gateway.url: \"ftp://gw/sms\" must start with http:// or https:// and name a host" } },
	{ "base url without scheme", "token = { base_url = \"pay.aro.ca/p/\"; };\n",
	    { ":1: token.base_url: \"pay.aro.ca/p/\" must start with http:// or https:// and name a host" } },
	{ "url with no host", "listen = { public_url = \"https://\"; };\n",
	    { ":1: listen.public_url: \"https://\" must start with http:// or https:// and name a host" } },
	{ "payment link over plain http", "token = { base_url = \"http://pay.aro.ca/p/\"; };\n",
	    { ":1: token.base_url: \"http://pay.aro.ca/p/\" must be https:// (plain http only on a loopback host)" } },
	{ "payment link not ending with a slash", "token = { base_url = \"https://pay.aro.ca/p\"; };\n",
	    { ":1: token.base_url: \"https://pay.aro.ca/p\" must end with / and have no query (the token follows "
	      "it)" } },
	{ "checkout over plain http", "checkout = { url = \"http://portal.aro.ca/pay\"; };\n",
	    { ":1: checkout.url: \"http://portal.aro.ca/pay\" must be https:// (plain http only on a loopback "
	      "host)" } },
	{ "checkout with a password in the URL", "checkout = { url = \"https://a:b@portal.aro.ca/pay\"; };\n",
	    { ":1: checkout.url: \"https://a:b@portal.aro.ca/pay\" must not carry a user or password" } },
	{ "checkout without its key", "checkout = { url = \"https://portal.aro.ca/pay\"; };\n",
	    { ":1: checkout.secret_file: checkout.url needs the key shared with the portal (a file, mode 0600, "
	      "or $CREDENTIALS_DIRECTORY/checkout_secret)" } },
	{ "checkout lifetime too short", "checkout = { ttl_s = 5; };\n",
	    { ":1: checkout.ttl_s: 5 is out of range [60, 86400]" } },
	{ "page text over two lines", "paypage = { mail_address = \"ARO\\nC.P. 1\"; };\n",
	    { ":1: paypage.mail_address: must be one line of text (no control characters)" } },
	{ "trusted proxy that is a name",
	    "listen = {\n\ttrusted_proxies = [\"10.0.0.5\",\n\t\"proxy.aro.ca\"];\n};\n",
	    { ":3: listen.trusted_proxies: \"proxy.aro.ca\" is not an IPv4 or IPv6 address (no names, no ranges)" } },
	{ "trusted proxy that is a range", "listen = { trusted_proxies = [\"10.0.0.0/8\"]; };\n",
	    { ":1: listen.trusted_proxies: \"10.0.0.0/8\" is not an IPv4 or IPv6 address (no names, no ranges)" } },
	{ "trusted proxies as a string", "listen = {\n\ttrusted_proxies = \"10.0.0.5\";\n};\n",
	    { ":2: listen.trusted_proxies: expected an array of IP addresses like [\"10.0.0.5\", \"::1\"], not a "
	      "string" } },
	{ "trusted proxy that is a number", "listen = { trusted_proxies = [ 10 ]; };\n",
	    { ":1: listen.trusted_proxies: expected a string, not an integer" } },
	{ "conninfo libpq rejects", "database = { conninfo = \"host\"; };\n",
	    { ":1: database.conninfo: missing \"=\" after \"host\" in connection info string" } },
	{ "offsets empty", "schedule = { offsets_days = []; };\n",
	    { ":1: schedule.offsets_days: has 0 entries, expected 1 to 16" } },
	{ "offsets too many", "schedule = { offsets_days = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]; };\n",
	    { ":1: schedule.offsets_days: has 17 entries, expected 1 to 16" } },
	{ "offset out of range", "schedule = { offsets_days = [1,\n 400]; };\n",
	    { ":2: schedule.offsets_days: 400 is out of range [0, 365]" } },
	{ "offsets not increasing", "schedule = { offsets_days = [1, 7, 7]; };\n",
	    { ":1: schedule.offsets_days: must be strictly increasing (7 follows 7)" } },
	{ "offsets not an array", "schedule = { offsets_days = \"1,7,14\"; };\n",
	    { ":1: schedule.offsets_days: expected an array of integers like [1, 7, 14], not a string" } },
	{ "backoff cap below base", "gateway = {\n\tbackoff_base_ms = 60000;\n\tbackoff_cap_ms = 1000;\n};\n",
	    { ":3: gateway.backoff_cap_ms: 1000 is less than gateway.backoff_base_ms (60000)" } },
	{ "lease no longer than two requests", "schedule = {\n\tlease_s = 20;\n};\n",
	    { ":2: schedule.lease_s: 20 s must exceed twice gateway.timeout_ms (2 x 10000 ms): a lease must "
	      "outlive "
	      "a request" } },
	{ "request timeout outliving the default lease", "gateway = { timeout_ms = 30000; };\n",
	    { ":1: schedule.lease_s: 60 s must exceed twice gateway.timeout_ms (2 x 30000 ms): a lease must "
	      "outlive "
	      "a request" } },
	{ "kannel without credentials", "gateway = {\n\tdialect = \"kannel\";\n};\n",
	    { ":2: gateway.username: the kannel dialect needs a username",
	        ":2: gateway.secret_file: the kannel dialect needs a secret (the password, or "
	        "$CREDENTIALS_DIRECTORY/gateway_secret)" } },
	{ "twilio with a malformed account SID",
	    "gateway = {\n\tdialect = \"twilio\";\n\tusername = \"AC123\";\n};\n",
	    { ":3: gateway.username: \"AC123\" is not a Twilio account SID (AC and 32 hex digits, lower "
	      "case)",
	        ":2: gateway.secret_file: the twilio dialect needs a secret (the auth token, or "
	        "$CREDENTIALS_DIRECTORY/gateway_secret)" } },
	{ "template with an unknown placeholder",
	    "templates = {\n\tfr = \"Payez {amout}: {link} ARRET\";\n};\n",
	    { ":2: templates.fr: unknown placeholder {amout}" } },
	{ "template without a link", "templates = {\n\ten = \"Pay now. Reply STOP to opt out.\";\n};\n",
	    { ":2: templates.en: no {link}" } },
	{ "French template without ARRET", "templates = { fr = \"Payez: {link}\"; };\n",
	    { ":1: templates.fr: no ARRET (French opt-out word)" } },
	{ "English template without STOP", "templates = { en = \"Pay: {link} Reply ARRET\"; };\n",
	    { ":1: templates.en: no STOP (English opt-out word)" } },
	{ "template over max_segments",
	    "templates = {\n\ten = \"STOP {link} "
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\";\n};\n",
	    /* "STOP " + 43-character link + " " + 100 x U+00EA: UCS-2, 149 units, ceil(149 / 67) = 3 */
	    { ":2: templates.en: renders to 3 segments (UCS-2, 149 units) at its longest; "
	      "templates.max_segments is "
	      "2" } },
	{ "default template over a smaller max_segments", "templates = { max_segments = 1; };\n",
	    { ": templates.fr: renders to 2 segments (GSM-7, 294 units) at its longest; "
	      "templates.max_segments is 1",
	        ": templates.en: renders to 2 segments (GSM-7, 235 units) at its longest; "
	        "templates.max_segments is "
	        "1" } },
	{ "bad day name",
	    "regions = {\n\tQC = {\n\t\twindows = ( { days = [\"mon\", \"sam\"]; start = \"08:00\"; "
	    "end = \"20:00\"; } );\n\t\tholidays = \"QC\";\n\t};\n};\n",
	    { ":3: regions.QC.windows[0].days: \"sam\" is not a day (mon, tue, wed, thu, fri, sat, sun)" } },
	{ "window start not before end",
	    "regions = {\n\tQC = {\n\t\twindows = ( { days = [\"mon\"]; start = \"08:00\"; end = \"20:00\"; "
	    "},\n"
	    "\t\t\t{ days = [\"sat\"]; start = \"20:00\"; end = \"08:00\"; } );\n\t\tholidays = "
	    "\"QC\";\n\t};\n};\n",
	    { ":4: regions.QC.windows[1]: start 20:00 is not before end 08:00" } },
	{ "window of zero length",
	    "regions = { QC = { windows = ( { days = [\"mon\"]; start = \"08:00\"; end = \"08:00\"; } ); "
	    "holidays = "
	    "\"none\"; }; };\n",
	    { ":1: regions.QC.windows[0]: start 08:00 is not before end 08:00" } },
	{ "window start at 24:00",
	    "regions = { QC = { windows = ( { days = [\"mon\"]; start = \"24:00\"; end = \"24:00\"; } ); "
	    "holidays = "
	    "\"none\"; }; };\n",
	    { ":1: regions.QC.windows[0].start: \"24:00\" is not a time HH:MM (00:00 to 23:59)" } },
	{ "malformed times",
	    "regions = { QC = { windows = ( { days = [\"mon\"];\nstart = \"8:00\";\nend = \"20:60\"; } ); "
	    "holidays "
	    "= \"none\"; }; };\n",
	    { ":2: regions.QC.windows[0].start: \"8:00\" is not a time HH:MM (00:00 to 23:59)",
	        ":3: regions.QC.windows[0].end: \"20:60\" is not a time HH:MM (00:00 to 24:00)" } },
	{ "days not an array",
	    "regions = { QC = { windows = ( { days = \"mon\"; start = \"08:00\"; end = \"09:00\"; } ); "
	    "holidays = "
	    "\"none\"; }; };\n",
	    { ":1: regions.QC.windows[0].days: expected a non-empty array of days like [\"mon\", \"tue\"], "
	      "not a "
	      "string" } },
	{ "days empty",
	    "regions = { QC = { windows = ( { days = []; start = \"08:00\"; end = \"09:00\"; } ); holidays = "
	    "\"none\"; }; };\n",
	    { ":1: regions.QC.windows[0].days: expected a non-empty array of days like [\"mon\", \"tue\"], "
	      "not an "
	      "empty array" } },
	{ "window missing its end",
	    "regions = { QC = { windows = ( { days = [\"mon\"]; start = \"08:00\"; } ); holidays = \"none\"; "
	    "}; };\n",
	    { ":1: regions.QC.windows[0]: needs days, start and end" } },
	{ "window with an unknown key",
	    "regions = { QC = { windows = ( { days = [\"mon\"]; start = \"08:00\"; end = \"09:00\"; tz = "
	    "\"x\"; } ); "
	    "holidays = \"none\"; }; };\n",
	    { ":1: unknown key regions.QC.windows[0].tz" } },
	{ "windows not a list",
	    "regions = { QC = { windows = { days = [\"mon\"]; start = \"08:00\"; end = \"09:00\"; }; "
	    "holidays = "
	    "\"none\"; }; };\n",
	    { ":1: regions.QC.windows: expected a non-empty list of windows like ( { days = [...]; ... } ), "
	      "not a "
	      "group" } },
	{ "region code not upper case",
	    "regions = {\n\tqc = { windows = ( { days = [\"mon\"]; start = \"08:00\"; end = \"09:00\"; } ); "
	    "holidays "
	    "= \"QC\"; };\n};\n",
	    { ":2: regions.qc: a region is named by its 2-letter upper-case code (QC, ON, ...)" } },
	{ "unknown holiday calendar",
	    "regions = { QC = { windows = ( { days = [\"mon\"]; start = \"08:00\"; end = \"09:00\"; } );\n"
	    "holidays = \"AB\"; }; };\n",
	    { ":2: regions.QC.holidays: \"AB\" is not a holiday calendar (QC, ON, BC, none)" } },
	{ "region without windows or holidays", "regions = {\n\tQC = { notice_days = 5; };\n};\n",
	    { ":2: regions.QC: needs windows (when it may be contacted)",
	        ":2: regions.QC: needs holidays (QC, ON, BC or none)" } },
	{ "region with an unknown key and a bad range",
	    "regions = { QC = { windows = ( { days = [\"mon\"]; start = \"08:00\"; end = \"09:00\"; } ); "
	    "holidays = "
	    "\"QC\";\n notice = 5;\n notice_days = 61; }; };\n",
	    { ":2: unknown key regions.QC.notice",
	        ":3: regions.QC.notice_days: 61 is out of range [0, 60]" } },
	{ "extra holiday that is no date",
	    "regions = { QC = { windows = ( { days = [\"mon\"]; start = \"08:00\"; end = \"09:00\"; } ); "
	    "holidays = "
	    "\"QC\";\n extra_holidays = [\"2026-12-24\", \"2026-02-30\"]; }; };\n",
	    { ":2: regions.QC.extra_holidays: \"2026-02-30\" is not a date YYYY-MM-DD" } },
	{ "empty regions group", "\nregions = { };\n",
	    { ":2: regions: has 0 regions, expected 1 to 16 (remove the group for the built-in rules)" } },
	{ "syntax error", "gateway = {\n\ttimeout_ms = ;\n};\n", { ":2: syntax error" } },
	{ "several errors reported together",
	    "database = { conninfo = \"dbname=payremind\"; };\n"
	    "sender = { short_code = \"270283\"; };\n"
	    "gateway = {\n"
	    "\tdialect = \"json\";\n"
	    "\ttimeout_ms = 99;\n"
	    "\tmax_in_flight = 0;\n"
	    "};\n"
	    "schedule = { batch_size = 10001; };\n"
	    "retention = { dayz = 30; };\n",
	    { ":2: sender.short_code: \"270283\" is not an approved short code (27022, 270282)",
	        ":5: gateway.timeout_ms: 99 is out of range [100, 120000]",
	        ":6: gateway.max_in_flight: 0 is out of range [1, 1024]",
	        ":8: schedule.batch_size: 10001 is out of range [1, 10000]",
	        ":9: unknown key retention.dayz" } },
};

/* Each error case fails to load and reports exactly its messages, each with its line. */
static void
test_each_error_is_reported_with_its_line(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *t = &error_cases[i];
		struct conf_errors errs = { 0 };
		struct conf *c = (struct conf *)1;

		fprintf(stderr, "case: %s\n", t->name);
		assert_int_equal(load_text(t->text, &c, &errs), -1);
		assert_null(c);
		assert_errors(tmp_path(0, "case.conf"), &errs, t->errors);
		conf_errors_free(&errs);
		assert_null(errs.msgs);
		assert_int_equal(errs.n, 0);
	}
}

/* A file that cannot be read is reported as "FILE: message", with the reason. */
static void
test_missing_file_is_reported_without_line(void **state)
{
	const char *path = tmp_path(1, "no-such.conf");
	struct conf_errors errs = { 0 };
	struct conf *c = NULL;
	char want[600];

	(void)state;
	assert_int_equal(conf_load(path, &c, &errs), -1);
	assert_null(c);
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
	assert_string_equal(errs.msgs[0], want);
	conf_errors_free(&errs);
}

#define INT_AT(c, off) (*(const int *)((const char *)(c) + (off)))
#define STR_AT(c, off) (*(char *const *)((const char *)(c) + (off)))

/* A file with nothing but a comment gets every default of the contract. */
static void
test_nearly_empty_file_gets_every_default(void **state)
{
	static const struct {
		size_t off;
		int value;
	} ints[] = {
		{ offsetof(struct conf, gateway.timeout_ms), 10000 },
		{ offsetof(struct conf, gateway.connect_timeout_ms), 3000 },
		{ offsetof(struct conf, gateway.max_in_flight), 32 },
		{ offsetof(struct conf, gateway.max_attempts), 8 },
		{ offsetof(struct conf, gateway.backoff_base_ms), 30000 },
		{ offsetof(struct conf, gateway.backoff_cap_ms), 3600000 },
		{ offsetof(struct conf, token.ttl_hours), 168 },
		{ offsetof(struct conf, schedule.poll_interval_s), 30 },
		{ offsetof(struct conf, schedule.batch_size), 500 },
		{ offsetof(struct conf, schedule.lease_s), 60 },
		{ offsetof(struct conf, rules.min_gap_hours), 24 },
		{ offsetof(struct conf, rules.window_guard_s), 60 },
		{ offsetof(struct conf, templates.max_segments), 2 },
		{ offsetof(struct conf, templates.transliterate), 0 },
		{ offsetof(struct conf, listen.port), 8787 },
		{ offsetof(struct conf, retention.days), 180 },
	};
	static const struct {
		size_t off;
		const char *value;
	} strs[] = {
		{ offsetof(struct conf, db_conninfo), "host=/run/postgresql dbname=payremind" },
		{ offsetof(struct conf, gateway.url), "http://127.0.0.1:9090/sms" },
		{ offsetof(struct conf, gateway.username), "" },
		{ offsetof(struct conf, gateway.secret_file), "" },
		{ offsetof(struct conf, token.base_url), "https://pay.aro.ca/p/" },
		{ offsetof(struct conf, listen.address), "127.0.0.1" },
		{ offsetof(struct conf, listen.secret_file), "" },
		{ offsetof(struct conf, listen.public_url), "http://127.0.0.1:8787" },
	};
	struct policy_rules builtin;
	struct conf *c = load_ok("# nothing but a comment\n");
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		assert_int_equal(INT_AT(c, ints[i].off), ints[i].value);
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		assert_string_equal(STR_AT(c, strs[i].off), strs[i].value);
	assert_string_equal(c->short_code, "27022");
	assert_int_equal(c->gateway.dialect, CONF_DIALECT_JSON);
	assert_true(c->gateway.rate_per_second == 30.0);
	assert_null(c->gateway.secret);
	assert_null(c->listen.secret);
	assert_int_equal(c->rules.noffsets, 3);
	assert_int_equal(c->rules.offsets_days[0], 1);
	assert_int_equal(c->rules.offsets_days[1], 7);
	assert_int_equal(c->rules.offsets_days[2], 14);
	policy_defaults(&builtin);
	assert_memory_equal(&c->rules, &builtin, sizeof(builtin));
	assert_string_equal(c->file, tmp_path(0, "case.conf"));
	conf_free(c);
}

struct value_case {
	const char *name;
	const char *text;
	const char *line; /* a line conf_dump must print */
};

static const struct value_case value_cases[] = {
	{ "an integer rate is accepted", "gateway = { rate_per_second = 5; };\n",
	    "gateway.rate_per_second = 5\n" },
	{ "a fractional rate is kept", "gateway = { rate_per_second = 2.5; };\n",
	    "gateway.rate_per_second = 2.5\n" },
	{ "rate 0 means no limit", "gateway = { rate_per_second = 0.0; };\n",
	    "gateway.rate_per_second = 0\n" },
	{ "the other short code", "sender = { short_code = \"270282\"; };\n",
	    "sender.short_code = \"270282\"\n" },
	{ "range bounds are inclusive", "gateway = { timeout_ms = 100; max_in_flight = 1024; };\n",
	    "gateway.timeout_ms = 100\n" },
	{ "port 0 disables the listener", "listen = { port = 0; };\n", "listen.port = 0\n" },
	{ "no trusted proxies by default", "", "listen.trusted_proxies = []\n" },
	{ "trusted proxies are kept in canonical form",
	    "listen = { trusted_proxies = [\"10.0.0.5\", \"::FFFF:192.0.2.7\", \"2001:DB8::0:1\"]; };\n",
	    "listen.trusted_proxies = [\"10.0.0.5\", \"192.0.2.7\", \"2001:db8::1\"]\n" },
	{ "offsets may start at 0", "schedule = { offsets_days = [0, 3, 365]; };\n",
	    "schedule.offsets_days = [0, 3, 365]\n" },
	{ "lease just over two requests", "schedule = { lease_s = 21; };\n", "schedule.lease_s = 21\n" },
	{ "cap equal to base", "gateway = { backoff_base_ms = 1000; backoff_cap_ms = 1000; };\n",
	    "gateway.backoff_cap_ms = 1000\n" },
	{ "transliterate on", "templates = { transliterate = true; };\n",
	    "templates.transliterate = true\n" },
	{ "strings are dumped quoted", "templates = { en = \"Say \\\"STOP\\\" {link}\"; };\n",
	    "templates.en = \"Say \\\"STOP\\\" {link}\"\n" },
	{ "a conninfo password is never printed",
	    "database = { conninfo = \"host=db dbname=payremind password=hunter2\"; };\n",
	    "database.conninfo = \"password=(set) dbname='payremind' host='db'\"\n" },
	{ "a gateway URL's password is never printed",
	    "gateway = { url = \"http://aro:hunter2@sms.example:13013/cgi-bin/sendsms\"; };\n",
	    "gateway.url = \"http://aro:(set)@sms.example:13013/cgi-bin/sendsms\"\n" },
	{ "a URL without password is printed as written",
	    "listen = { public_url = \"https://hooks.aro.example/payremind/\"; };\n",
	    "listen.public_url = \"https://hooks.aro.example/payremind/\"\n" },
	{ "a conninfo without password is printed as written",
	    "database = { conninfo = \"dbname=x  host=db\"; };\n",
	    "database.conninfo = \"dbname=x  host=db\"\n" },
	{ "a URI conninfo is accepted", "database = { conninfo = \"postgresql://db/payremind\"; };\n",
	    "database.conninfo = \"postgresql://db/payremind\"\n" },
	{ "a window may end at 24:00",
	    "regions = { QC = { windows = ( { days = [\"sun\", \"mon\"]; start = \"00:00\"; end = \"24:00\"; "
	    "} ); "
	    "holidays = \"none\"; }; };\n",
	    "regions.QC = { windows = ( { days = [\"mon\", \"sun\"]; start = \"00:00\"; end = \"24:00\"; } "
	    "); holidays "
	    "= \"none\"; notice_days = 0; max_per_7_days = 0; extra_holidays = []; }\n" },
	{ "transliteration applies before counting",
	    "templates = { transliterate = true;\n\ten = \"STOP {link} "
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa"
	    "\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\xc3\xaa\"; };\n",
	    "templates.transliterate = true\n" },
	{ "twilio with an account SID and a credential",
	    "gateway = { dialect = \"twilio\"; username = \"AC0123456789abcdef0123456789abcdef\"; };\n",
	    "gateway.username = \"AC0123456789abcdef0123456789abcdef\"\n" },
};

/* Valid values load, and conf_dump prints them back (secrets excepted). */
static void
test_valid_values_load_and_dump(void **state)
{
	size_t i;

	(void)state;
	/* the Twilio case needs a secret: give it one through systemd's credential directory */
	write_file_slot(1, "creds/gateway_secret", "tw1l10-auth\n", 0600);
	setenv("CREDENTIALS_DIRECTORY", tmp_path(2, "creds"), 1);
	for (i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
		struct conf *c;
		char *text;

		fprintf(stderr, "case: %s\n", value_cases[i].name);
		c = load_ok(value_cases[i].text);
		text = dump_text(c);
		if (strstr(text, value_cases[i].line) == NULL)
			fprintf(stderr, "dump:\n%s", text);
		assert_non_null(strstr(text, value_cases[i].line));
		assert_null(strstr(text, "hunter2"));
		assert_null(strstr(text, "tw1l10-auth"));
		free(text);
		conf_free(c);
	}
	unsetenv("CREDENTIALS_DIRECTORY");
	unlink(tmp_path(1, "creds/gateway_secret"));
}

/* A regions group replaces the built-ins as a whole; offsets and the gap still come from schedule. */
static void
test_regions_group_replaces_builtins(void **state)
{
	struct conf *c =
	    load_ok("schedule = { offsets_days = [2, 9]; min_gap_hours = 48; };\n"
	            "regions = {\n"
	            "  NB = { windows = ( { days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"];\n"
	            "                       start = \"09:00\"; end = \"17:30\"; },\n"
	            "                     { days = [\"sat\"]; start = \"10:00\"; end = \"24:00\"; } );\n"
	            "         holidays = \"none\"; notice_days = 3; max_per_7_days = 2;\n"
	            "         extra_holidays = [\"2026-12-24\", \"2027-02-28\"]; };\n"
	            "};\n");
	const struct policy_region *nb;

	(void)state;
	assert_int_equal(c->rules.nregions, 1);
	assert_null(policy_region_find(&c->rules, "QC"));
	nb = policy_region_find(&c->rules, "NB");
	assert_non_null(nb);
	assert_int_equal(nb->nwindows, 2);
	assert_int_equal(nb->windows[0].days, 0x3e); /* Monday (bit 1) .. Friday (bit 5) */
	assert_int_equal(nb->windows[0].start_min, 9 * 60);
	assert_int_equal(nb->windows[0].end_min, 17 * 60 + 30);
	assert_int_equal(nb->windows[1].days, 0x40);
	assert_int_equal(nb->windows[1].start_min, 10 * 60);
	assert_int_equal(nb->windows[1].end_min, 1440);
	assert_int_equal(nb->holidays, HOLIDAYS_NONE);
	assert_int_equal(nb->notice_days, 3);
	assert_int_equal(nb->max_per_7_days, 2);
	assert_int_equal(nb->nextra, 2);
	assert_int_equal(nb->extra_holidays[0], tz_days_from_civil(2026, 12, 24));
	assert_int_equal(nb->extra_holidays[1], tz_days_from_civil(2027, 2, 28));
	assert_int_equal(c->rules.noffsets, 2);
	assert_int_equal(c->rules.offsets_days[0], 2);
	assert_int_equal(c->rules.offsets_days[1], 9);
	assert_int_equal(c->rules.min_gap_hours, 48);
	conf_free(c);
}

struct secret_case {
	const char *name;
	const char *content; /* NULL: no file at all */
	mode_t mode;
	const char *secret; /* the expected secret, or NULL when loading fails */
	const char *error;  /* after "FILE:2: gateway.secret_file: PATH" */
};

static const struct secret_case secret_cases[] = {
	{ "0600 accepted, one newline stripped", "s3cret\n", 0600, "s3cret", NULL },
	{ "only one newline stripped", "s3cret\n\n", 0600, "s3cret\n", NULL },
	{ "no newline kept as is", "s3cret", 0400, "s3cret", NULL },
	{ "0644 rejected", "s3cret\n", 0644, NULL,
	    " is readable by group or others (mode 0644); chmod 600 it" },
	{ "group-writable rejected", "s3cret\n", 0620, NULL,
	    " is readable by group or others (mode 0620); chmod 600 it" },
	{ "empty rejected", "", 0600, NULL, " is empty" },
	{ "a lone newline is empty", "\n", 0600, NULL, " is empty" },
	{ "missing file", NULL, 0600, NULL, ": No such file or directory" },
};

/* gateway.secret_file: mode 0600 or stricter, one trailing newline stripped, never printed. */
static void
test_secret_file_rules(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(secret_cases) / sizeof(secret_cases[0]); i++) {
		const struct secret_case *t = &secret_cases[i];
		const char *secret_path = tmp_path(1, "secret");
		struct conf_errors errs = { 0 };
		struct conf *c = NULL;
		char text[800], want[1200];

		fprintf(stderr, "case: %s\n", t->name);
		unlink(secret_path);
		if (t->content != NULL)
			write_file_slot(1, "secret", t->content, t->mode);
		snprintf(text, sizeof(text), "gateway = {\n\tsecret_file = \"%s\";\n};\n", secret_path);
		if (t->secret != NULL) {
			char *dump;

			c = load_ok(text);
			assert_string_equal(c->gateway.secret, t->secret);
			dump = dump_text(c);
			assert_null(strstr(dump, "s3cret"));
			assert_non_null(strstr(dump, "\ngateway.secret = (set)\n"));
			assert_non_null(strstr(dump, "\nlisten.secret = (none)\n"));
			free(dump);
			conf_free(c);
			continue;
		}
		assert_int_equal(load_text(text, &c, &errs), -1);
		assert_int_equal(errs.n, 1);
		snprintf(want, sizeof(want), "%s:2: gateway.secret_file: %s%s%s", tmp_path(0, "case.conf"),
		    t->content == NULL ? "cannot open " : "", secret_path, t->error);
		assert_string_equal(errs.msgs[0], want);
		conf_errors_free(&errs);
	}
	unlink(tmp_path(1, "secret"));
}

struct credential_case {
	const char *name;
	const char *conf_text;
	const char *gateway_cred; /* content of creds/gateway_secret, NULL: none */
	mode_t mode;
	const char *gateway_secret; /* expected, NULL: none */
	const char *error;          /* expected sole error after "FILE", NULL: loads */
};

static const struct credential_case credential_cases[] = {
	{ "credential used when secret_file is empty", "", "tok\n", 0400, "tok", NULL },
	{ "no credential file is no secret", "", NULL, 0, NULL, NULL },
	{ "kannel satisfied by a credential", "gateway = { dialect = \"kannel\"; username = \"pr\"; };\n",
	    "pw\n", 0600, "pw", NULL },
	{ "secret_file wins over the credential", "gateway = { secret_file = \"SECRET\"; };\n", "tok\n", 0600,
	    "file", NULL },
	{ "a credential others can read is refused", "", "tok\n", 0644, NULL,
	    ": gateway.secret_file: CREDS/gateway_secret is readable by group or others (mode 0644); chmod "
	    "600 it" },
};

/* Replace the first "SECRET" or "CREDS" in in by the matching temp path. */
static void
expand_paths(const char *in, char *out, size_t len)
{
	const char *secret = strstr(in, "SECRET"), *creds = strstr(in, "CREDS");

	if (secret != NULL)
		snprintf(out, len, "%.*s%s%s", (int)(secret - in), in, tmp_path(1, "secret"), secret + 6);
	else if (creds != NULL)
		snprintf(out, len, "%.*s%s%s", (int)(creds - in), in, tmp_path(1, "creds"), creds + 5);
	else
		snprintf(out, len, "%s", in);
}

/* With secret_file "", $CREDENTIALS_DIRECTORY/gateway_secret (systemd LoadCredential=) is the secret. */
static void
test_credentials_directory_fallback(void **state)
{
	size_t i;

	(void)state;
	write_file_slot(1, "secret", "file\n", 0600);
	setenv("CREDENTIALS_DIRECTORY", tmp_path(2, "creds"), 1);
	for (i = 0; i < sizeof(credential_cases) / sizeof(credential_cases[0]); i++) {
		const struct credential_case *t = &credential_cases[i];
		struct conf_errors errs = { 0 };
		struct conf *c = NULL;
		char text[800], want[1200];

		fprintf(stderr, "case: %s\n", t->name);
		unlink(tmp_path(3, "creds/gateway_secret"));
		if (t->gateway_cred != NULL)
			write_file_slot(3, "creds/gateway_secret", t->gateway_cred, t->mode);
		expand_paths(t->conf_text, text, sizeof(text));
		if (t->error == NULL) {
			c = load_ok(text);
			if (t->gateway_secret == NULL)
				assert_null(c->gateway.secret);
			else
				assert_string_equal(c->gateway.secret, t->gateway_secret);
			assert_null(c->listen.secret);
			conf_free(c);
			continue;
		}
		assert_int_equal(load_text(text, &c, &errs), -1);
		assert_int_equal(errs.n, 1);
		expand_paths(t->error, text, sizeof(text));
		snprintf(want, sizeof(want), "%s%s", tmp_path(0, "case.conf"), text);
		assert_string_equal(errs.msgs[0], want);
		conf_errors_free(&errs);
	}
	unsetenv("CREDENTIALS_DIRECTORY");
	unlink(tmp_path(3, "creds/gateway_secret"));
	unlink(tmp_path(1, "secret"));
}

/* The default templates name ARO, the phone line and the opt-out, and fit 2 GSM-7 segments at their longest. */
static void
test_default_templates_fit_two_gsm7_segments(void **state)
{
	struct conf *c = load_ok("");
	const struct {
		const char *lang;
		const char *tmpl;
		const char *optout;
	} cases[] = {
		{ "fr", c->templates.fr, "ARRET" },
		{ "en", c->templates.en, "STOP" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[1024], err[256];
		struct gsm_info info;

		assert_int_equal(template_check(cases[i].tmpl, cases[i].lang, err, sizeof(err)), 0);
		assert_int_equal(template_render_longest(cases[i].tmpl, cases[i].lang, c->token.base_url, out,
		                     sizeof(out), err, sizeof(err)),
		    0);
		assert_int_equal(gsm_analyze(out, &info), 0);
		assert_int_equal(info.coding, GSM_CODING_GSM7);
		assert_in_range(info.segments, 1, 2);
		/* who writes, every way to pay (link, phone with its hours, online banking with the account
		 * reference twice), how to stop; the phone as each language writes it */
		assert_true(strncmp(out, "ARO", 3) == 0);
		assert_non_null(strstr(out, "https://pay.aro.ca/p/AAAAAAAAAAAAAAAAAAAAAA "));
		assert_non_null(strstr(out,
		    i == 0 ? "1 877 322-1414, du lun. au ven., de 8 h à 20 h (heure de l'Est)"
		           : "1-877-322-1414, Mon-Fri, 8 a.m. to 8 p.m. ET"));
		assert_non_null(strstr(out,
		    i == 0 ? "fournisseur ARO, numéro de compte WWWWWWWWWWWWWWWW"
		           : "payee ARO, account number WWWWWWWWWWWWWWWW"));
		assert_non_null(strstr(out, cases[i].optout));
		assert_null(strstr(cases[i].tmpl, "{amount}"));
	}
	conf_free(c);
}

/* The path of conf/payremind.conf, found from this source file's location. */
static void
example_path(char *buf, size_t len)
{
	const char *slash = strrchr(__FILE__, '/');

	snprintf(buf, len, "%.*s/../../conf/payremind.conf", slash != NULL ? (int)(slash - __FILE__) : 1,
	    slash != NULL ? __FILE__ : ".");
}

/* conf/payremind.conf loads cleanly, writes out every key, and holds exactly the defaults. */
static void
test_example_config_loads_and_holds_the_defaults(void **state)
{
	struct conf_errors errs = { 0 };
	struct conf *example = NULL, *defaults = load_ok("");
	char path[1024], *a, *b, *line, *save = NULL;
	config_t cfg;

	(void)state;
	example_path(path, sizeof(path));
	if (conf_load(path, &example, &errs) == -1)
		fprintf(stderr, "%s\n", errs.msgs[0]);
	assert_int_equal(errs.n, 0);
	assert_non_null(example);
	a = dump_text(example);
	b = dump_text(defaults);
	assert_string_equal(a, b);
	config_init(&cfg);
	assert_int_equal(config_read_file(&cfg, path), CONFIG_TRUE);
	for (line = strtok_r(a, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char key[128];

		if (strstr(line, " = (set)") != NULL || strstr(line, " = (none)") != NULL)
			continue; /* the secrets themselves are not keys */
		snprintf(key, sizeof(key), "%.*s", (int)(strchr(line, ' ') - line), line);
		if (config_lookup(&cfg, key) == NULL)
			fprintf(stderr, "not in the example: %s\n", key);
		assert_non_null(config_lookup(&cfg, key));
	}
	config_destroy(&cfg);
	free(a);
	free(b);
	conf_free(example);
	conf_free(defaults);
}

/* Only 27022 and 270282, exactly. */
static void
test_sender_allowed_only_approved_codes(void **state)
{
	static const struct {
		const char *code;
		int allowed;
	} cases[] = {
		{ "27022", 1 },
		{ "270282", 1 },
		{ "27023", 0 },
		{ "027022", 0 },
		{ "27022 ", 0 },
		{ "2702", 0 },
		{ "", 0 },
		{ NULL, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(conf_sender_allowed(cases[i].code), cases[i].allowed);
}

static void
test_dialect_to_text(void **state)
{
	static const struct {
		enum conf_dialect d;
		const char *text;
	} cases[] = {
		{ CONF_DIALECT_JSON, "json" },
		{ CONF_DIALECT_KANNEL, "kannel" },
		{ CONF_DIALECT_TWILIO, "twilio" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(conf_dialect_to_text(cases[i].d), cases[i].text);
}

/* A reload reports the changed keys that only a restart applies, and only those. */
static void
test_restart_changes_names_restart_only_keys(void **state)
{
	static const struct {
		const char *text;
		int n;
		const char *names;
	} cases[] = {
		{ "", 0, "" },
		{ "gateway = { timeout_ms = 5000; }; retention = { days = 30; };", 0, "" },
		{ "listen = { port = 9000; };", 1, "listen.port" },
		{ "database = { conninfo = \"dbname=x\"; }; schedule = { lease_s = 120; };", 2,
		    "database.conninfo, schedule.lease_s" },
		{ "listen = { address = \"::1\"; public_url = \"https://hooks.aro.ca\"; };", 2,
		    "listen.address, listen.public_url" },
	};
	struct conf *old = load_ok("");
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *new = load_ok(cases[i].text);
		char names[256];

		assert_int_equal(conf_restart_changes(old, new, names, sizeof(names)), cases[i].n);
		assert_string_equal(names, cases[i].names);
		conf_free(new);
	}
	conf_free(old);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_error_is_reported_with_its_line),
		cmocka_unit_test(test_missing_file_is_reported_without_line),
		cmocka_unit_test(test_nearly_empty_file_gets_every_default),
		cmocka_unit_test(test_valid_values_load_and_dump),
		cmocka_unit_test(test_regions_group_replaces_builtins),
		cmocka_unit_test(test_secret_file_rules),
		cmocka_unit_test(test_credentials_directory_fallback),
		cmocka_unit_test(test_default_templates_fit_two_gsm7_segments),
		cmocka_unit_test(test_example_config_loads_and_holds_the_defaults),
		cmocka_unit_test(test_sender_allowed_only_approved_codes),
		cmocka_unit_test(test_dialect_to_text),
		cmocka_unit_test(test_restart_changes_names_restart_only_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
