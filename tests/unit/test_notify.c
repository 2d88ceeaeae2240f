/* Unit tests of notify.c: each sd_notify message as a test socket receives it, path and abstract. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "payremind/notify.h"

/* What systemd would be: a datagram socket bound at a path in a temp dir, or in the abstract namespace. */
struct listener {
	int fd;
	char dir[64];
	char env[sizeof(((struct sockaddr_un *)0)->sun_path) + 1]; /* the NOTIFY_SOCKET value */
};

enum addr_kind { ADDR_PATH, ADDR_ABSTRACT };

static void
listener_open(struct listener *l, enum addr_kind kind)
{
	static int serial;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;

	l->dir[0] = '\0';
	if (kind == ADDR_PATH) {
		snprintf(l->dir, sizeof(l->dir), "/tmp/payremind-notify-XXXXXX");
		assert_non_null(mkdtemp(l->dir));
		snprintf(l->env, sizeof(l->env), "%s/notify.sock", l->dir);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->env);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(l->env) + 1);
	} else {
		snprintf(l->env, sizeof(l->env), "@payremind-notify-%ld-%d", (long)getpid(), serial++);
		memcpy(sa.sun_path + 1, l->env + 1, strlen(l->env) - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(l->env));
	}
	assert_int_not_equal(l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), -1);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", l->env, 1), 0);
}

static void
listener_close(struct listener *l)
{
	char path[128];

	close(l->fd);
	if (l->dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/notify.sock", l->dir);
		unlink(path);
		rmdir(l->dir);
	}
	unsetenv("NOTIFY_SOCKET");
}

/* The next datagram as a string, waiting up to a second; fails the test when none comes. */
static void
listener_recv(struct listener *l, char *buf, size_t len)
{
	struct pollfd p = { .fd = l->fd, .events = POLLIN };
	ssize_t n;

	assert_int_equal(poll(&p, 1, 1000), 1);
	n = recv(l->fd, buf, len - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
}

/* True when no datagram is waiting. */
static int
listener_empty(struct listener *l)
{
	char c;

	return recv(l->fd, &c, 1, MSG_DONTWAIT) == -1 && errno == EAGAIN;
}

static int
send_status(void)
{
	return notify_status("queued=%d sending=%d oldest=%s", 3, 1, "12s");
}

static const struct {
	const char *what;
	int (*send)(void);
	const char *want;
} message_cases[] = {
	{ "ready", notify_ready, "READY=1" },
	{ "stopping", notify_stopping, "STOPPING=1" },
	{ "watchdog", notify_watchdog, "WATCHDOG=1" },
	{ "status, printf-formatted", send_status, "STATUS=queued=3 sending=1 oldest=12s" },
};

static void
check_messages(enum addr_kind kind)
{
	struct listener l;
	char got[2048];
	size_t i;

	listener_open(&l, kind);
	for (i = 0; i < sizeof(message_cases) / sizeof(message_cases[0]); i++) {
		print_message("case: %s\n", message_cases[i].what);
		assert_int_equal(message_cases[i].send(), 1);
		listener_recv(&l, got, sizeof(got));
		assert_string_equal(got, message_cases[i].want);
	}
	listener_close(&l);
}

static void
each_message_reaches_a_socket_path(void **state)
{
	(void)state;
	check_messages(ADDR_PATH);
}

static void
each_message_reaches_an_abstract_socket(void **state)
{
	(void)state;
	check_messages(ADDR_ABSTRACT);
}

static uint64_t
monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* RELOADING=1 and, on its own line, the CLOCK_MONOTONIC time in µs at which it was sent. */
static void
reloading_carries_the_monotonic_time_it_was_sent_at(void **state)
{
	static const enum addr_kind kinds[] = { ADDR_PATH, ADDR_ABSTRACT };
	struct listener l;
	char got[256], tail;
	uint64_t before, after, sent;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		listener_open(&l, kinds[i]);
		before = monotonic_usec();
		assert_int_equal(notify_reloading(), 1);
		after = monotonic_usec();
		listener_recv(&l, got, sizeof(got));
		assert_int_equal(sscanf(got, "RELOADING=1\nMONOTONIC_USEC=%" SCNu64 "%c", &sent, &tail), 1);
		assert_true(before <= sent && sent <= after);
		listener_close(&l);
	}
}

/* A newline would end STATUS= and turn the rest of the text into assignments of its own. */
static const struct {
	const char *text;
	const char *want;
} status_cases[] = {
	{ "db down\nREADY=1", "STATUS=db down READY=1" },
	{ "\n\n", "STATUS=  " },
	{ "", "STATUS=" },
	{ "été: 2 envoyés", "STATUS=été: 2 envoyés" },
};

static void
status_newlines_cannot_inject_assignments(void **state)
{
	struct listener l;
	char got[2048];
	size_t i;

	(void)state;
	listener_open(&l, ADDR_PATH);
	for (i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
		assert_int_equal(notify_status("%s", status_cases[i].text), 1);
		listener_recv(&l, got, sizeof(got));
		assert_string_equal(got, status_cases[i].want);
	}
	listener_close(&l);
}

/* An over-long status is cut to one bounded datagram rather than dropped or overflowing. */
static void
long_status_is_truncated_not_dropped(void **state)
{
	struct listener l;
	char text[8000], got[16384];

	(void)state;
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	listener_open(&l, ADDR_PATH);
	assert_int_equal(notify_status("%s", text), 1);
	listener_recv(&l, got, sizeof(got));
	assert_memory_equal(got, "STATUS=xxxx", 11);
	assert_true(strlen(got) > 500 && strlen(got) < strlen(text));
	assert_int_equal(strspn(got + 7, "x"), strlen(got) - 7);
	listener_close(&l);
}

/* Not under systemd (no NOTIFY_SOCKET, or an empty one): every call is a no-op returning 0. */
static void
without_notify_socket_every_call_is_a_no_op(void **state)
{
	static const char *const envs[] = { NULL, "" };
	int (*const sends[])(
	    void) = { notify_ready, notify_reloading, notify_stopping, notify_watchdog, send_status };
	struct listener l;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		listener_open(&l, ADDR_PATH);
		if (envs[i] == NULL)
			unsetenv("NOTIFY_SOCKET");
		else
			setenv("NOTIFY_SOCKET", envs[i], 1);
		for (j = 0; j < sizeof(sends) / sizeof(sends[0]); j++)
			assert_int_equal(sends[j](), 0);
		assert_true(listener_empty(&l));
		listener_close(&l);
	}
}

/* A NOTIFY_SOCKET that cannot be used is a failure the daemon survives: -1, never an exit. */
static void
unusable_notify_socket_fails_softly(void **state)
{
	char long_path[200], long_abstract[120];
	const char *const envs[] = { "relative/notify.sock", "vsock:2:1234",
		"/nonexistent-payremind/notify.sock", "@", "/", long_path, long_abstract };
	size_t i;

	(void)state;
	memset(long_path, 'p', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	memset(long_abstract, 'a', sizeof(long_abstract) - 1);
	long_abstract[0] = '@';
	long_abstract[sizeof(long_abstract) - 1] = '\0';
	for (i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		print_message("case: %.40s\n", envs[i]);
		setenv("NOTIFY_SOCKET", envs[i], 1);
		assert_int_equal(notify_ready(), -1);
		assert_int_equal(notify_reloading(), -1);
		assert_int_equal(notify_status("x"), -1);
	}
	unsetenv("NOTIFY_SOCKET");
}

/* Lines notify.c wrote to stderr while fn ran. */
static int
stderr_lines_during(void (*fn)(void))
{
	char buf[4096];
	FILE *tmp = tmpfile();
	int saved = dup(2), lines = 0;
	size_t n, i;

	assert_non_null(tmp);
	fflush(stderr);
	assert_int_not_equal(dup2(fileno(tmp), 2), -1);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, sizeof(buf), tmp);
	for (i = 0; i < n; i++)
		lines += buf[i] == '\n';
	fclose(tmp);
	return lines;
}

/* Sends to the socket l listens on, then to one that does not exist. */
static void
send_ok(struct listener *l)
{
	char got[64];

	setenv("NOTIFY_SOCKET", l->env, 1);
	assert_int_equal(notify_watchdog(), 1);
	listener_recv(l, got, sizeof(got));
}

static void
send_lost(int times)
{
	setenv("NOTIFY_SOCKET", "/nonexistent-payremind/notify.sock", 1);
	while (times-- > 0)
		assert_int_equal(notify_watchdog(), -1);
}

/* Two outages (three failed pings, then two) with a working send before each: the lost socket is
 * reported at the first failure of each outage, not at every ping. */
static void
two_outages(void)
{
	struct listener l;

	listener_open(&l, ADDR_PATH);
	send_ok(&l);
	send_lost(3);
	send_ok(&l);
	send_lost(2);
	listener_close(&l);
}

static void
a_lost_socket_is_logged_once_per_outage(void **state)
{
	(void)state;
	assert_int_equal(stderr_lines_during(two_outages), 2);
}

/* WATCHDOG_PID "self" stands for getpid(), "other" for a pid that is not ours. */
static const struct {
	const char *what;
	const char *usec, *pid;
	long want;
} watchdog_cases[] = {
	{ "no WatchdogSec", NULL, NULL, 0 },
	{ "interval, no WATCHDOG_PID", "400000", NULL, 400000 },
	{ "interval for this process", "30000000", "self", 30000000 },
	{ "interval for another process (inherited)", "400000", "other", 0 },
	{ "unparsable WATCHDOG_PID", "400000", "12ab", 0 },
	{ "empty WATCHDOG_PID", "400000", "", 0 },
	{ "zero", "0", NULL, 0 },
	{ "negative", "-400000", NULL, 0 },
	{ "explicit plus sign", "+400000", NULL, 0 },
	{ "leading space", " 400000", NULL, 0 },
	{ "trailing junk", "400000us", NULL, 0 },
	{ "empty", "", NULL, 0 },
	{ "beyond long", "99999999999999999999999", NULL, 0 },
};

static void
watchdog_interval_follows_sd_watchdog_enabled(void **state)
{
	char pid[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(watchdog_cases) / sizeof(watchdog_cases[0]); i++) {
		const char *p = watchdog_cases[i].pid;

		print_message("case: %s\n", watchdog_cases[i].what);
		unsetenv("WATCHDOG_USEC");
		unsetenv("WATCHDOG_PID");
		if (watchdog_cases[i].usec != NULL)
			setenv("WATCHDOG_USEC", watchdog_cases[i].usec, 1);
		if (p != NULL) {
			if (strcmp(p, "self") == 0 || strcmp(p, "other") == 0)
				snprintf(pid, sizeof(pid), "%ld", (long)getpid() + (strcmp(p, "other") == 0));
			else
				snprintf(pid, sizeof(pid), "%s", p);
			setenv("WATCHDOG_PID", pid, 1);
		}
		assert_int_equal(notify_watchdog_usec(), watchdog_cases[i].want);
	}
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_message_reaches_a_socket_path),
		cmocka_unit_test(each_message_reaches_an_abstract_socket),
		cmocka_unit_test(reloading_carries_the_monotonic_time_it_was_sent_at),
		cmocka_unit_test(status_newlines_cannot_inject_assignments),
		cmocka_unit_test(long_status_is_truncated_not_dropped),
		cmocka_unit_test(without_notify_socket_every_call_is_a_no_op),
		cmocka_unit_test(unusable_notify_socket_fails_softly),
		cmocka_unit_test(a_lost_socket_is_logged_once_per_outage),
		cmocka_unit_test(watchdog_interval_follows_sd_watchdog_enabled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
