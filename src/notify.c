/* The sd_notify datagram protocol, as documented in sd_notify(3), without libsystemd. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "payremind/log.h"
#include "payremind/notify.h"

#define NOTIFY_MSG_MAX 1024

/* Set after a failed send so that a lost socket is logged once, not at every watchdog ping. */
static int notify_failing;

/*
 * Fill *sa from $NOTIFY_SOCKET: an absolute path, or "@name" for the abstract namespace (the '@'
 * becomes the leading NUL byte, and the address length excludes any trailing NUL). Returns 0, or -1
 * with errno set (EAFNOSUPPORT for other forms, e.g. systemd's "vsock:", ENAMETOOLONG).
 */
static int
notify_address(const char *env, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = strlen(env);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (env[0] != '/' && env[0] != '@') {
		errno = EAFNOSUPPORT;
		return -1;
	}
	if (n < 2 || n > sizeof(sa->sun_path) || (env[0] == '/' && n == sizeof(sa->sun_path))) {
		errno = n < 2 ? EINVAL : ENAMETOOLONG;
		return -1;
	}
	memcpy(sa->sun_path, env, n);
	if (env[0] == '@') {
		sa->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

/*
 * Send msg as one datagram. MSG_DONTWAIT: systemd's receive buffer is large, and a stuck service
 * manager must not stall the loop (a lost WATCHDOG=1 is followed by another). Returns 1/0/-1.
 */
static int
notify_send(const char *msg)
{
	const char *env = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	ssize_t r = -1;
	int fd;

	if (env == NULL || env[0] == '\0')
		return 0;
	if (notify_address(env, &sa, &salen) == 0 &&
	    (fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) != -1) {
		r = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, salen);
		close(fd);
	}
	if (r == (ssize_t)strlen(msg)) {
		notify_failing = 0;
		return 1;
	}
	if (!notify_failing)
		log_warn(
		    "notify: cannot send \"%.*s\" to NOTIFY_SOCKET %s", (int)strcspn(msg, "\n="), msg, env);
	notify_failing = 1;
	return -1;
}

int
notify_ready(void)
{
	return notify_send("READY=1");
}

int
notify_stopping(void)
{
	return notify_send("STOPPING=1");
}

int
notify_watchdog(void)
{
	return notify_send("WATCHDOG=1");
}

/* RELOADING=1 carries the monotonic time it was sent at (sd_notify(3) MONOTONIC_USEC=): systemd uses
 * it to tie the message to the reload cycle it belongs to (Type=notify-reload, systemd >= 253, needs
 * it); older versions ignore the extra line. */
int
notify_reloading(void)
{
	char msg[64];
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return -1;
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	    (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
	return notify_send(msg);
}

/* The text is truncated to fit one message, and newlines are flattened: a newline would end the
 * STATUS= assignment and let the rest of the text read as other assignments (e.g. READY=1). */
int
notify_status(const char *fmt, ...)
{
	char msg[NOTIFY_MSG_MAX] = "STATUS=", *p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), fmt, ap);
	va_end(ap);
	for (p = msg; (p = strchr(p, '\n')) != NULL; p++)
		*p = ' ';
	return notify_send(msg);
}

/* A decimal number made of digits only, within [1, max]; -1 otherwise (strtoll alone takes signs,
 * spaces and trailing junk). */
static long long
notify_parse_positive(const char *s, long long max)
{
	char *end;
	long long v;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > max)
		return -1;
	return v;
}

/* As sd_watchdog_enabled(3): $WATCHDOG_PID, when set, must be this process (a child that inherited
 * the environment must not ping on its parent's behalf); anything unparsable disables the watchdog. */
long
notify_watchdog_usec(void)
{
	const char *pid = getenv("WATCHDOG_PID");
	long long usec = notify_parse_positive(getenv("WATCHDOG_USEC"), LONG_MAX);

	if (usec == -1)
		return 0;
	if (pid != NULL && notify_parse_positive(pid, INT_MAX) != (long long)getpid())
		return 0;
	return (long)usec;
}
