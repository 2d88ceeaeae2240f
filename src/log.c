/* Logging to stderr with journald priority prefixes, and phone-number masking. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payremind/log.h"

static const char *log_progname = "payremind";
static int log_verbose;
static int log_is_buffered;
static pthread_t log_loop_thread; /* the thread whose lines wait for log_flush */

void
log_init(const char *progname, int verbose)
{
	log_progname = progname;
	log_verbose = verbose;
}

/* One line: "<N>progname: message[: strerror]\n", written in one call so lines never interleave. */
static void
log_vwrite(int prio, int with_errno, const char *fmt, va_list ap)
{
	char msg[2048];
	int saved = errno;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno)
		fprintf(stderr, "<%d>%s: %s: %s\n", prio, log_progname, msg, strerror(saved));
	else
		fprintf(stderr, "<%d>%s: %s\n", prio, log_progname, msg);
	if (log_is_buffered && !pthread_equal(pthread_self(), log_loop_thread))
		fflush(stderr); /* other threads (the listener's) have no loop iteration to wait for */
	errno = saved;
}

#define LOG_BODY(prio, with_errno)                     \
	do {                                           \
		va_list ap;                            \
		va_start(ap, fmt);                     \
		log_vwrite(prio, with_errno, fmt, ap); \
		va_end(ap);                            \
	} while (0)

void
log_buffered(void)
{
	static char buf[64 * 1024];

	setvbuf(stderr, buf, _IOFBF, sizeof(buf));
	log_loop_thread = pthread_self();
	log_is_buffered = 1;
}

void
log_flush(void)
{
	fflush(stderr);
}

void
log_warn(const char *fmt, ...)
{
	LOG_BODY(3, 1);
}
void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(3, 0);
}
void
log_notice(const char *fmt, ...)
{
	LOG_BODY(4, 0);
}
void
log_info(const char *fmt, ...)
{
	LOG_BODY(6, 0);
}

void
log_debug(const char *fmt, ...)
{
	if (log_verbose)
		LOG_BODY(7, 0);
}

void
fatal(const char *fmt, ...)
{
	LOG_BODY(2, 1);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(2, 0);
	exit(1);
}

const char *
log_mask_msisdn(const char *msisdn, char *buf, size_t len)
{
	size_t n = msisdn ? strlen(msisdn) : 0;

	if (n == 12 && msisdn[0] == '+' && msisdn[1] == '1')
		snprintf(buf, len, "%.5s***%s", msisdn, msisdn + 8);
	else
		snprintf(buf, len, "***");
	return buf;
}
