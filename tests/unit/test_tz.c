/* Unit tests of tz.c: civil dates, weekdays, zone names, and local/UTC conversion across DST changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "payremind/tz.h"

struct civil_case {
	int y, m, d;
	int32_t days; /* independently computed */
	int wday;
};

static const struct civil_case civil_cases[] = {
	{ 1970, 1, 1, 0, 4 },
	{ 1969, 12, 31, -1, 3 },
	{ 2000, 1, 1, 10957, 6 },
	{ 2000, 2, 29, 11016, 2 },
	{ 2000, 3, 1, 11017, 3 },
	{ 1900, 2, 28, -25509, 3 },
	{ 1900, 3, 1, -25508, 4 },
	{ 2024, 2, 29, 19782, 4 },
	{ 2027, 3, 14, 20891, 0 },
	{ 1600, 1, 1, -135140, 6 },
	{ 2100, 3, 1, 47541, 1 },
	{ 1, 1, 1, -719162, 1 },
	{ 9999, 12, 31, 2932896, 5 },
};

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

static void
days_from_civil_matches_known_day_numbers(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(civil_cases); i++)
		assert_int_equal(tz_days_from_civil(civil_cases[i].y, civil_cases[i].m, civil_cases[i].d),
		    civil_cases[i].days);
}

static void
civil_from_days_inverts_known_day_numbers(void **state)
{
	int y, m, d;
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(civil_cases); i++) {
		tz_civil_from_days(civil_cases[i].days, &y, &m, &d);
		assert_int_equal(y, civil_cases[i].y);
		assert_int_equal(m, civil_cases[i].m);
		assert_int_equal(d, civil_cases[i].d);
	}
}

static void
weekday_matches_known_dates(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(civil_cases); i++)
		assert_int_equal(tz_weekday(civil_cases[i].days), civil_cases[i].wday);
}

static int
month_length(int y, int m)
{
	static const int len[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return len[m - 1] + (m == 2 && leap);
}

/* Every day from 1927 to 2127 converts back to itself, each day is the calendar successor of the one before
 * (checked with an independent leap-year rule), and weekdays advance by one. */
static void
dates_round_trip_over_two_centuries(void **state)
{
	int32_t first = tz_days_from_civil(1927, 1, 1), last = tz_days_from_civil(2127, 12, 31);
	int py = 1926, pm = 12, pd = 31, y, m, d;
	int32_t day;

	(void)state;
	for (day = first; day <= last; day++) {
		tz_civil_from_days(day, &y, &m, &d);
		assert_int_equal(tz_days_from_civil(y, m, d), day);
		if (pd < month_length(py, pm)) {
			assert_true(y == py && m == pm && d == pd + 1);
		} else if (pm < 12) {
			assert_true(y == py && m == pm + 1 && d == 1);
		} else {
			assert_true(y == py + 1 && m == 1 && d == 1);
		}
		assert_int_equal(tz_weekday(day), (tz_weekday(day - 1) + 1) % 7);
		py = y, pm = m, pd = d;
	}
}

struct known_case {
	const char *zone;
	int known;
};

static const struct known_case known_cases[] = {
	{ "America/Toronto", 1 },
	{ "America/Montreal", 1 }, /* a link to Toronto in tzdata */
	{ "America/Vancouver", 1 },
	{ "America/Halifax", 1 },
	{ "America/St_Johns", 1 },
	{ "UTC", 1 },
	{ "Mars/Olympus_Mons", 0 },
	{ "America/Montréal", 0 },
	{ "", 0 },
	{ "America", 0 },                 /* a directory */
	{ "zone.tab", 0 },                /* a tzdata file that is not a zone */
	{ "/usr/share/zoneinfo/UTC", 0 }, /* absolute */
	{ "../zoneinfo/UTC", 0 },
	{ "America/../UTC", 0 },
	{ "America/Toronto/", 0 },
	{ "EST5EDT,M3.2.0,M11.1.0", 0 }, /* a POSIX rule, not a zone name */
	{ NULL, 0 },
};

static void
is_known_accepts_only_tzdata_zone_files(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(known_cases); i++) {
		if (tz_is_known(known_cases[i].zone) != known_cases[i].known)
			fail_msg("tz_is_known(%s) != %d", known_cases[i].zone ? known_cases[i].zone : "NULL",
			    known_cases[i].known);
	}
}

static void
is_known_looks_under_tzdir(void **state)
{
	(void)state;
	assert_int_equal(setenv("TZDIR", "/usr/share/zoneinfo/America", 1), 0);
	assert_int_equal(tz_is_known("Toronto"), 1);
	assert_int_equal(tz_is_known("America/Toronto"), 0);
	assert_int_equal(unsetenv("TZDIR"), 0);
	assert_int_equal(tz_is_known("Toronto"), 0);
	assert_int_equal(tz_is_known("America/Toronto"), 1);
}

struct local_case {
	const char *what;
	const char *zone;
	int64_t t;
	struct tz_local lt;
};

/* Instants and their local times, computed independently (Python zoneinfo on the same tzdata). */
static const struct local_case to_local_cases[] = {
	{ "Toronto last second of EST, 2027 spring", "America/Toronto", 1805007599,
	    { 2027, 3, 14, 1, 59, 59, 0 } },
	{ "Toronto first second of EDT", "America/Toronto", 1805007600, { 2027, 3, 14, 3, 0, 0, 0 } },
	{ "Montreal 01:30 EDT, 2027 fall", "America/Montreal", 1825565400, { 2027, 11, 7, 1, 30, 0, 0 } },
	{ "Montreal 01:30 EST, same night", "America/Montreal", 1825569000, { 2027, 11, 7, 1, 30, 0, 0 } },
	{ "Vancouver last second of PST", "America/Vancouver", 1805018399, { 2027, 3, 14, 1, 59, 59, 0 } },
	{ "Vancouver first second of PDT", "America/Vancouver", 1805018400, { 2027, 3, 14, 3, 0, 0, 0 } },
	{ "Halifax first second of ADT", "America/Halifax", 1805004000, { 2027, 3, 14, 3, 0, 0, 0 } },
	{ "Halifax 01:30 ADT, 2027 fall", "America/Halifax", 1825561800, { 2027, 11, 7, 1, 30, 0, 0 } },
	{ "Halifax 01:30 AST, same night", "America/Halifax", 1825565400, { 2027, 11, 7, 1, 30, 0, 0 } },
	{ "UTC", "UTC", 1813838400, { 2027, 6, 24, 12, 0, 0, 4 } },
	{ "St. John's half-hour offset", "America/St_Johns", 1814443200, { 2027, 7, 1, 9, 30, 0, 4 } },
	{ "Toronto at the epoch", "America/Toronto", 0, { 1969, 12, 31, 19, 0, 0, 3 } },
	{ "Vancouver leap day", "America/Vancouver", 1835424000, { 2028, 2, 29, 0, 0, 0, 2 } },
};

static void
assert_local_equal(const struct tz_local *got, const struct tz_local *want, const char *what)
{
	if (got->year != want->year || got->month != want->month || got->day != want->day ||
	    got->hour != want->hour || got->minute != want->minute || got->second != want->second ||
	    got->wday != want->wday)
		fail_msg("%s: got %04d-%02d-%02d %02d:%02d:%02d wday %d", what, got->year, got->month,
		    got->day, got->hour, got->minute, got->second, got->wday);
}

static void
to_local_gives_civil_time_and_weekday(void **state)
{
	struct tz_local lt;
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(to_local_cases); i++) {
		assert_int_equal(tz_to_local(to_local_cases[i].zone, to_local_cases[i].t, &lt), 0);
		assert_local_equal(&lt, &to_local_cases[i].lt, to_local_cases[i].what);
	}
}

/* Local times and the instant each must map to; wday is ignored by tz_from_local. */
static const struct local_case from_local_cases[] = {
	{ "Toronto before the spring gap", "America/Toronto", 1805007599, { 2027, 3, 14, 1, 59, 59, 0 } },
	{ "Toronto 02:00 skipped: first instant after", "America/Toronto", 1805007600,
	    { 2027, 3, 14, 2, 0, 0, 0 } },
	{ "Toronto 02:30 skipped: first instant after", "America/Toronto", 1805007600,
	    { 2027, 3, 14, 2, 30, 0, 0 } },
	{ "Toronto 03:00 after the gap", "America/Toronto", 1805007600, { 2027, 3, 14, 3, 0, 0, 0 } },
	{ "Montreal before the repeated hour", "America/Montreal", 1825563599,
	    { 2027, 11, 7, 0, 59, 59, 0 } },
	{ "Montreal 01:30 repeated: first (EDT)", "America/Montreal", 1825565400,
	    { 2027, 11, 7, 1, 30, 0, 0 } },
	{ "Montreal 02:00 after the repeated hour", "America/Montreal", 1825570800,
	    { 2027, 11, 7, 2, 0, 0, 0 } },
	{ "Vancouver 02:00 skipped", "America/Vancouver", 1805018400, { 2027, 3, 14, 2, 0, 0, 0 } },
	{ "Vancouver 01:00 repeated: first (PDT)", "America/Vancouver", 1825574400,
	    { 2027, 11, 7, 1, 0, 0, 0 } },
	{ "Vancouver 01:59:59 repeated: first", "America/Vancouver", 1825577999,
	    { 2027, 11, 7, 1, 59, 59, 0 } },
	{ "Halifax 02:15 skipped", "America/Halifax", 1805004000, { 2027, 3, 14, 2, 15, 0, 0 } },
	{ "Halifax 01:30 repeated: first (ADT)", "America/Halifax", 1825561800,
	    { 2027, 11, 7, 1, 30, 0, 0 } },
	{ "St. John's 02:30 skipped", "America/St_Johns", 1805002200, { 2027, 3, 14, 2, 30, 0, 0 } },
	{ "Regina has no DST", "America/Regina", 1805013000, { 2027, 3, 14, 2, 30, 0, 0 } },
	{ "UTC", "UTC", 1813838400, { 2027, 6, 24, 12, 0, 0, 0 } },
	{ "Toronto a century ago (EDT)", "America/Toronto", -1343894400, { 1927, 6, 1, 12, 0, 0, 0 } },
	{ "Edmonton a century ahead, repeated", "America/Edmonton", 4981249800,
	    { 2127, 11, 7, 1, 30, 0, 0 } },
};

static void
from_local_resolves_gaps_forward_and_repeats_to_first(void **state)
{
	int64_t t;
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(from_local_cases); i++) {
		assert_int_equal(tz_from_local(from_local_cases[i].zone, &from_local_cases[i].lt, &t), 0);
		if (t != from_local_cases[i].t)
			fail_msg("%s: got %lld, want %lld", from_local_cases[i].what, (long long)t,
			    (long long)from_local_cases[i].t);
	}
}

/* Hour by hour through 2027 in several zones: the local time of t maps back to t, except in a repeated hour,
 * where it maps to the earlier instant with the same local time. */
static void
from_local_inverts_to_local_through_a_year(void **state)
{
	static const char *const zones[] = { "America/Toronto", "America/Vancouver", "America/Halifax",
		"America/St_Johns", "UTC" };
	struct tz_local lt, back;
	int64_t t, r;
	size_t z;
	int repeated;

	(void)state;
	for (z = 0; z < NCASES(zones); z++) {
		repeated = 0;
		for (t = 1798761600; t < 1830297600; t += 3600) {
			assert_int_equal(tz_to_local(zones[z], t, &lt), 0);
			assert_int_equal(tz_from_local(zones[z], &lt, &r), 0);
			assert_int_equal(tz_to_local(zones[z], r, &back), 0);
			assert_local_equal(&back, &lt, zones[z]);
			assert_true(r <= t);
			repeated += r != t;
		}
		assert_int_equal(repeated, z + 1 < NCASES(zones) ? 1 : 0);
	}
}

static void
unknown_zones_fail_and_keep_the_current_zone(void **state)
{
	static const char *const unknown[] = { "America/Atlantis", "", "../../etc/passwd", NULL };
	struct tz_local lt = { 2027, 1, 1, 12, 0, 0, 0 };
	struct tz_local got;
	int64_t t;
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(unknown); i++) {
		assert_int_equal(tz_to_local("America/Toronto", 1805007600, &got), 0);
		assert_int_equal(tz_to_local(unknown[i], 0, &got), -1);
		assert_int_equal(tz_from_local(unknown[i], &lt, &t), -1);
		assert_int_equal(tz_to_local("America/Toronto", 1805007599, &got), 0);
		assert_int_equal(got.hour, 1);
	}
}

/* Alternating zones must switch each time (the cache holds one zone, keyed by name). */
static void
alternating_zones_each_convert_in_their_own_zone(void **state)
{
	struct tz_local lt;
	int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		assert_int_equal(
		    tz_to_local(i % 2 ? "America/Vancouver" : "America/Halifax", 1813838400, &lt), 0);
		assert_int_equal(lt.hour, i % 2 ? 5 : 9);
		assert_int_equal(tz_to_local("UTC", 1813838400, &lt), 0);
		assert_int_equal(lt.hour, 12);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(days_from_civil_matches_known_day_numbers),
		cmocka_unit_test(civil_from_days_inverts_known_day_numbers),
		cmocka_unit_test(weekday_matches_known_dates),
		cmocka_unit_test(dates_round_trip_over_two_centuries),
		cmocka_unit_test(is_known_accepts_only_tzdata_zone_files),
		cmocka_unit_test(is_known_looks_under_tzdir),
		cmocka_unit_test(to_local_gives_civil_time_and_weekday),
		cmocka_unit_test(from_local_resolves_gaps_forward_and_repeats_to_first),
		cmocka_unit_test(from_local_inverts_to_local_through_a_year),
		cmocka_unit_test(unknown_zones_fail_and_keep_the_current_zone),
		cmocka_unit_test(alternating_zones_each_convert_in_their_own_zone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
