/* Process-wide Prometheus counters and the gateway latency histogram: C11 atomics, safe from any thread. */
#ifndef PAYREMIND_METRICS_H
#define PAYREMIND_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "payremind/gateway.h"
#include "payremind/policy.h"
#include "payremind/webhook.h"

/* One delivery attempt classified as outcome (payremind_sends_total{outcome}). */
void metrics_count_send(enum gw_outcome outcome);
/* One gateway request that took seconds, answered or not (payremind_gateway_latency_seconds). */
void metrics_observe_latency(double seconds);
/* One new inbound message: keyword_index from struct keyword_match, -1 for "other". */
void metrics_count_inbound(int keyword_index);
/* One new delivery report (payremind_dlrs_total{status}). */
void metrics_count_dlr(enum webhook_dlr_status status);
/* One payment page view: result 0 valid, 1 spent, 2 nothing to pay, 3 unknown (enum paypage_view). */
void metrics_count_page(int result);
/* One link spent by its button and handed to the portal (payremind_checkouts_total). */
void metrics_count_checkout(void);
/* One new payment result from the portal: "paid", "failed" or "cancelled". */
void metrics_count_payment(const char *status);
/* One webhook answer with this HTTP status (payremind_webhook_responses_total{code}). */
void metrics_count_response(unsigned status);
/* One due row the scheduler did not send to, for this reason (payremind_skips_total{reason}). */
void metrics_count_skip(enum policy_reason reason);
/* This daemon's circuit breaker: 0 closed, 1 open, 2 half open, since epoch s (gauges
 * payremind_gateway_circuit_open and payremind_gateway_circuit_since_seconds). */
void metrics_set_circuit(int state, double since);
/* The breaker as last set: its state, and since when in *since. */
int metrics_circuit(double *since);
/* Write every counter and the histogram in Prometheus text format 0.0.4. 0, or -1 on a write error. */
int metrics_write(FILE *fp) __attribute__((warn_unused_result));
/* Write a gauge family: name{label="keys[i]"} values[i] for each i < n. 0, or -1 on a write error. */
int metrics_write_gauge(FILE *fp, const char *name, const char *help, const char *label,
    const char *const *keys, const long long *values, size_t n) __attribute__((warn_unused_result));
/* Set everything back to zero (tests). */
void metrics_reset(void);

#endif
