/* The sd_notify datagram protocol (READY, RELOADING, STOPPING, STATUS, WATCHDOG), without libsystemd. */
#ifndef PAYREMIND_NOTIFY_H
#define PAYREMIND_NOTIFY_H

#include "payremind/log.h"

/*
 * Each call sends one datagram to $NOTIFY_SOCKET (a path, or "@name" for an abstract socket) and
 * returns 1 when it was sent, 0 when there is no $NOTIFY_SOCKET (not under systemd: nothing to do),
 * -1 when it could not be sent. A failure is never fatal and is logged here (once, until a send
 * works again), so callers may ignore the result. Sends never block the loop.
 */

/* "READY=1": start-up (config and database good) or a reload is complete. */
int notify_ready(void);
/* "RELOADING=1\nMONOTONIC_USEC=<CLOCK_MONOTONIC, µs>": a reload (SIGHUP) begins; READY=1 ends it. */
int notify_reloading(void);
/* "STOPPING=1": shutdown has begun. */
int notify_stopping(void);
/* "STATUS=<text>": one line for `systemctl status`; newlines in the text become spaces. */
int notify_status(const char *fmt, ...) PR_PRINTF(1, 2);
/* "WATCHDOG=1": the loop is alive; send at least every notify_watchdog_usec() / 2. */
int notify_watchdog(void);
/* The watchdog interval systemd asked for (WatchdogSec=), in µs, as sd_watchdog_enabled() reads it:
 * $WATCHDOG_USEC, ignored when $WATCHDOG_PID names another process. 0 = no watchdog (or unparsable). */
long notify_watchdog_usec(void);

#endif
