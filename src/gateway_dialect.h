/* Private to the gateway module: the dialect tables and the helpers gateway.c shares with them. */
#ifndef PAYREMIND_GATEWAY_DIALECT_H
#define PAYREMIND_GATEWAY_DIALECT_H

#include <stdio.h>
#include "payremind/gateway.h"

/* Longest gateway reply text (after sanitizing) quoted in gw_result.error. */
#define GW_REPLY_MAX 120

extern const struct gw_dialect gw_dialect_json;
extern const struct gw_dialect gw_dialect_kannel;
extern const struct gw_dialect gw_dialect_twilio;

/* Append a "Name: value" header built from fmt. 0, or -1 when full or out of memory. */
int gw_request_add_header(struct gw_request *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((warn_unused_result));
/* Write sep (unless 0), name, '=' and the percent-encoded value to fp. 0 or -1. */
int gw_form_add(FILE *fp, char sep, const char *name, const char *value) __attribute__((warn_unused_result));
/* Close fp, opened by open_memstream on *buf, after a writer that returned rc: 0 when everything was
 * written, else -1 with *buf freed and NULL. */
int gw_memstream_close(FILE *fp, int rc, char **buf) __attribute__((warn_unused_result));
/* Length of url without its trailing slashes. */
size_t gw_url_len(const char *url);
/* Newly allocated listen.public_url (trailing '/' stripped) + suffix. 0, or -1 with err. */
int gw_callback_url(const struct conf *conf, const char *suffix, char **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Reset res for an HTTP answer: http_status, and retry_after_ms from its Retry-After header. */
void gw_result_begin(const struct gw_response *resp, struct gw_result *res);
/* The first line of a reply, safe for logs: printable ASCII only, possible phone numbers as "***",
 * at most GW_REPLY_MAX characters ("..." marks a cut); dstlen >= 1. */
void gw_reply_text(const char *src, size_t srclen, char *dst, size_t dstlen);

#endif
