/* Civil dates and IANA time zones (through the C library's tzdata); the only place that switches TZ. */
#ifndef PAYREMIND_TZ_H
#define PAYREMIND_TZ_H

#include <stdint.h>

struct tz_local {
	int year, month, day; /* month 1-12, day 1-31 */
	int hour, minute, second;
	int wday; /* 0 = Sunday ... 6 = Saturday */
};

/* Days since 1970-01-01 for a proleptic Gregorian date (negative before). */
int32_t tz_days_from_civil(int y, int m, int d);
/* The inverse of tz_days_from_civil. */
void tz_civil_from_days(int32_t days, int *y, int *m, int *d);
/* Weekday of a day number, 0 = Sunday. */
int tz_weekday(int32_t days);
/* 1 when zone names a zone of the system's tzdata (e.g. "America/Toronto"), 0 otherwise. */
int tz_is_known(const char *zone);
/* Local civil time of instant t (Unix seconds) in zone. 0, or -1 for an unknown zone. */
int tz_to_local(const char *zone, int64_t t, struct tz_local *out) __attribute__((warn_unused_result));
/* The instant of a local civil time in zone (wday ignored). A time skipped by a DST change maps to the
 * first instant after the gap; a repeated time to its first occurrence. 0, or -1 for an unknown zone. */
int tz_from_local(const char *zone, const struct tz_local *lt, int64_t *out)
    __attribute__((warn_unused_result));

#endif
