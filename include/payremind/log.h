/* Logging to stderr with journald priority prefixes (<3> err ... <7> debug), and number masking. */
#ifndef PAYREMIND_LOG_H
#define PAYREMIND_LOG_H

#include <stddef.h>

#define PR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PR_MUSTCHECK __attribute__((warn_unused_result))

/* Start logging as `progname`; debug lines are printed when verbose is non-zero. */
void log_init(const char *progname, int verbose);
/* Buffer stderr (a daemon logging thousands of lines a second); log_flush then writes them. */
void log_buffered(void);
/* Write out buffered lines (the event loop calls it before it waits). */
void log_flush(void);
/* Error with strerror(errno) appended. */
void log_warn(const char *fmt, ...) PR_PRINTF(1, 2);
/* Error without errno. */
void log_warnx(const char *fmt, ...) PR_PRINTF(1, 2);
/* Warning-level notice (<4>). */
void log_notice(const char *fmt, ...) PR_PRINTF(1, 2);
/* Informational line (<6>). */
void log_info(const char *fmt, ...) PR_PRINTF(1, 2);
/* Debug line (<7>), printed only when verbose. */
void log_debug(const char *fmt, ...) PR_PRINTF(1, 2);
/* Log at <2> with strerror(errno) and exit(1): start-up failures and broken invariants only. */
void fatal(const char *fmt, ...) PR_PRINTF(1, 2) __attribute__((noreturn));
/* Same without errno. */
void fatalx(const char *fmt, ...) PR_PRINTF(1, 2) __attribute__((noreturn));
/* Mask a phone number for logs: "+15145550123" -> "+1514***0123"; anything else -> "***". */
const char *log_mask_msisdn(const char *msisdn, char *buf, size_t len);

#endif
