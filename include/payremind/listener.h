/* The webhook listener (SPEC §6): /healthz, /metrics, inbound messages and delivery reports, served by
 * libmicrohttpd threads with a PostgreSQL connection of their own; it never touches the daemon's loop. */
#ifndef PAYREMIND_LISTENER_H
#define PAYREMIND_LISTENER_H

#include <stddef.h>

#include "payremind/conf.h"

struct listener;

/* Bind listen.address:listen.port and serve in the listener's own threads. Returns the listener, or
 * NULL with the reason in err when it cannot listen (the daemon then exits 69). listen.port = 0 means
 * no listener: a no-op listener is returned (never NULL), on which the other calls do nothing. The
 * listener copies what it needs from conf: conf may be freed once this returns. It raises the process's soft
 * RLIMIT_NOFILE to the hard limit, holds each client address (listen.trusted_proxies excepted) to 64
 * connections, and closes a connection whose request has not arrived whole within 10 s. */
struct listener *listener_start(const struct conf *conf, char *err, size_t errlen);
/* After a reload: take the new webhook key, Twilio auth token and public URL from conf (copied under
 * the listener's lock; conf may be freed once this returns). The address and port need a restart. */
void listener_set_conf(struct listener *l, const struct conf *conf);
/* Stop serving (requests in progress finish first), close the database connection, free (NULL is fine). */
void listener_stop(struct listener *l);

#endif
