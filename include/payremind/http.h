/* HTTP client on the daemon's loop: libcurl multi with kept-alive connections, one timeout per request. */
#ifndef PAYREMIND_HTTP_H
#define PAYREMIND_HTTP_H

#include <stddef.h>

#include "payremind/gateway.h"
#include "payremind/loop.h"

struct http;

/* What one request ended with. Valid during the callback only. */
struct http_result {
	int curl_code;    /* CURLcode, 0 = an HTTP answer arrived */
	int request_sent; /* bytes of the request reached the socket */
	long status;
	const char *body; /* NUL-terminated */
	size_t body_len;
	const char *retry_after; /* Retry-After header, or NULL */
	double seconds;          /* total time */
};

typedef void (*http_cb)(const struct http_result *res, void *arg);

/* A client on loop keeping up to max_connections connections per host. */
struct http *http_new(struct loop *loop, int max_connections);
/* Free (requests still running are abandoned without callback). */
void http_free(struct http *http);
/* Send req (ownership passes to http: freed with gw_request_free when done). 0 or -1. */
int http_submit(struct http *http, struct gw_request *req, long timeout_ms, long connect_timeout_ms,
    http_cb cb, void *arg) __attribute__((warn_unused_result));
/* Requests in flight. */
int http_in_flight(const struct http *http);

#endif
