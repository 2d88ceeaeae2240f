/*
 * libFuzzer target: configuration loading (conf_load_flags), through a temporary file since libconfig
 * reads files. Checks: a refused file has every error prefixed "FILE:" and no struct; an accepted one
 * keeps every promise conf.h makes to the rest of the daemon: an approved short code, templates that
 * pass template_check and fit max_segments at their longest, a lease that outlives a request, a cap
 * not below the backoff base; and it can be dumped and compared.
 *
 * Secret files are not read (CONF_NO_SECRETS): a fuzzed path could name a FIFO or a device. Inputs
 * with libconfig's @include directive are skipped for the same reason.
 */
#define _GNU_SOURCE /* memmem */
#include <unistd.h>

#include "fuzz.h"
#include "payremind/conf.h"
#include "payremind/template.h"

static char conf_path[4096];
static int conf_fd = -1;

static void
remove_conf_file(void)
{
	if (conf_fd != -1)
		unlink(conf_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	unsetenv("CREDENTIALS_DIRECTORY");
	snprintf(conf_path, sizeof(conf_path), "%s/payremind-fuzz-XXXXXX.conf", tmp && tmp[0] ? tmp : "/tmp");
	if ((conf_fd = mkstemps(conf_path, 5)) == -1) {
		perror(conf_path);
		abort();
	}
	atexit(remove_conf_file);
	return 0;
}

static void
write_conf(const uint8_t *data, size_t size)
{
	size_t off = 0;

	FUZZ_CHECK(ftruncate(conf_fd, 0) == 0);
	while (off < size) {
		ssize_t n = pwrite(conf_fd, data + off, size - off, (off_t)off);

		FUZZ_CHECK(n > 0);
		off += (size_t)n;
	}
}

static void
check_refused(const struct conf_errors *errs)
{
	size_t plen = strlen(conf_path);
	int i;

	FUZZ_CHECK(errs->n > 0);
	for (i = 0; i < errs->n; i++) {
		FUZZ_CHECK(errs->msgs[i] != NULL);
		FUZZ_CHECK(strncmp(errs->msgs[i], conf_path, plen) == 0 && errs->msgs[i][plen] == ':');
	}
}

static void
check_template(const struct conf *c, const char *lang, const char *tmpl)
{
	struct gsm_info info;
	char err[512];

	FUZZ_CHECK(tmpl != NULL && template_check(tmpl, lang, err, sizeof(err)) == 0);
	FUZZ_CHECK(conf_template_longest(c, lang, &info, err, sizeof(err)) == 0);
	FUZZ_CHECK(info.segments >= 1 && info.segments <= c->templates.max_segments);
}

static void
check_accepted(const struct conf *c)
{
	char *dump = NULL, buf[512];
	size_t len = 0;
	FILE *fp;

	FUZZ_CHECK(conf_sender_allowed(c->short_code));
	FUZZ_CHECK(c->db_conninfo != NULL && c->gateway.url != NULL && c->token.base_url != NULL);
	FUZZ_CHECK((unsigned)c->gateway.dialect <= CONF_DIALECT_TWILIO);
	FUZZ_CHECK(c->gateway.secret == NULL && c->listen.secret == NULL);
	FUZZ_CHECK((long long)c->schedule.lease_s * 1000 > 2LL * c->gateway.timeout_ms);
	FUZZ_CHECK(c->gateway.backoff_cap_ms >= c->gateway.backoff_base_ms);
	FUZZ_CHECK(c->gateway.max_in_flight >= 1 && c->schedule.batch_size >= 1);
	check_template(c, "fr", c->templates.fr);
	check_template(c, "en", c->templates.en);
	FUZZ_CHECK(conf_restart_changes(c, c, buf, sizeof(buf)) == 0);
	FUZZ_CHECK((fp = open_memstream(&dump, &len)) != NULL);
	conf_dump(c, fp);
	FUZZ_CHECK(fclose(fp) == 0 && len > 0 && dump[len - 1] == '\n');
	free(dump);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_errors errs = { 0 };
	struct conf *c = (struct conf *)1;

	if (memmem(data, size, "@include", 8) != NULL)
		return 0;
	write_conf(data, size);
	if (conf_load_flags(conf_path, CONF_NO_SECRETS, &c, &errs) == -1) {
		FUZZ_CHECK(c == NULL);
		check_refused(&errs);
	} else {
		FUZZ_CHECK(c != NULL && errs.n == 0);
		check_accepted(c);
	}
	conf_free(c);
	conf_errors_free(&errs);
	return 0;
}
