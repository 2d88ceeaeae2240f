/* Unit tests of holidays.c: Easter computus, the QC/ON/BC calendars, Ontario substitutes, set names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "payremind/holidays.h"
#include "payremind/tz.h"

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

struct easter_case {
	int y, m, d;
};

/* Published Easter Sundays, including the earliest (March 22) and latest (April 25) possible dates. */
static const struct easter_case easter_cases[] = {
	{ 2024, 3, 31 },
	{ 2025, 4, 20 },
	{ 2026, 4, 5 },
	{ 2027, 3, 28 },
	{ 2028, 4, 16 },
	{ 2029, 4, 1 },
	{ 2030, 4, 21 },
	{ 1583, 4, 10 },
	{ 1818, 3, 22 },
	{ 1943, 4, 25 },
	{ 1961, 4, 2 },
	{ 2000, 4, 23 },
	{ 2038, 4, 25 },
	{ 2285, 3, 22 },
};

static void
easter_matches_published_dates(void **state)
{
	int m, d;
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(easter_cases); i++) {
		holidays_easter(easter_cases[i].y, &m, &d);
		if (m != easter_cases[i].m || d != easter_cases[i].d)
			fail_msg("Easter %d: got %d-%d", easter_cases[i].y, m, d);
	}
}

struct day_case {
	enum holiday_set set;
	int y, m, d;
	const char *name; /* NULL: not a holiday */
};

static const struct day_case day_cases[] = {
	/* Québec (OPC list for s.34(4)) */
	{ HOLIDAYS_QC, 2027, 1, 1, "New Year's Day" },
	{ HOLIDAYS_QC, 2027, 3, 26, "Good Friday" },
	{ HOLIDAYS_QC, 2027, 3, 28, NULL }, /* Easter Sunday itself */
	{ HOLIDAYS_QC, 2027, 3, 29, "Easter Monday" },
	{ HOLIDAYS_QC, 2026, 5, 18, "National Patriots' Day" },
	{ HOLIDAYS_QC, 2026, 5, 25, NULL }, /* a Monday May 25 is not "before May 25" */
	{ HOLIDAYS_QC, 2027, 5, 24, "National Patriots' Day" },
	{ HOLIDAYS_QC, 2027, 6, 24, "Saint-Jean-Baptiste Day (Fête nationale)" },
	{ HOLIDAYS_QC, 2027, 7, 1, "Canada Day" },
	{ HOLIDAYS_QC, 2027, 7, 2, NULL },
	{ HOLIDAYS_QC, 2028, 7, 1, "Canada Day" }, /* a Saturday: no substitute in Québec */
	{ HOLIDAYS_QC, 2028, 7, 2, NULL },
	{ HOLIDAYS_QC, 2028, 7, 3, NULL },
	{ HOLIDAYS_QC, 2029, 7, 1, "Canada Day" }, /* a Sunday */
	{ HOLIDAYS_QC, 2029, 7, 2, "Canada Day (observed)" },
	{ HOLIDAYS_QC, 2027, 9, 6, "Labour Day" },
	{ HOLIDAYS_QC, 2027, 10, 11, "Thanksgiving" },
	{ HOLIDAYS_QC, 2027, 12, 25, "Christmas Day" },
	{ HOLIDAYS_QC, 2027, 12, 26, NULL },
	{ HOLIDAYS_QC, 2027, 12, 27, NULL },
	{ HOLIDAYS_QC, 2027, 2, 15, NULL },
	{ HOLIDAYS_QC, 2027, 8, 2, NULL },
	{ HOLIDAYS_QC, 2027, 3, 30, NULL },
	/* Ontario */
	{ HOLIDAYS_ON, 2027, 1, 1, "New Year's Day" },
	{ HOLIDAYS_ON, 2027, 2, 15, "Family Day" },
	{ HOLIDAYS_ON, 2007, 2, 19, NULL }, /* Family Day began in 2008 */
	{ HOLIDAYS_ON, 2008, 2, 18, "Family Day" },
	{ HOLIDAYS_ON, 2027, 3, 26, "Good Friday" },
	{ HOLIDAYS_ON, 2027, 3, 29, NULL },
	{ HOLIDAYS_ON, 2027, 5, 24, "Victoria Day" },
	{ HOLIDAYS_ON, 2026, 5, 18, "Victoria Day" },
	{ HOLIDAYS_ON, 2027, 6, 24, NULL },
	{ HOLIDAYS_ON, 2027, 7, 1, "Canada Day" },
	{ HOLIDAYS_ON, 2027, 8, 2, "Civic Holiday" },
	{ HOLIDAYS_ON, 2027, 9, 6, "Labour Day" },
	{ HOLIDAYS_ON, 2027, 10, 11, "Thanksgiving" },
	{ HOLIDAYS_ON, 2027, 11, 11, NULL },
	{ HOLIDAYS_ON, 2027, 12, 25, "Christmas Day" }, /* Saturday */
	{ HOLIDAYS_ON, 2027, 12, 26, "Boxing Day" },    /* Sunday */
	{ HOLIDAYS_ON, 2027, 12, 27, "Christmas Day (observed)" },
	{ HOLIDAYS_ON, 2027, 12, 28, "Boxing Day (observed)" },
	{ HOLIDAYS_ON, 2027, 12, 29, NULL },
	{ HOLIDAYS_ON, 2022, 12, 26, "Boxing Day" }, /* Christmas on a Sunday */
	{ HOLIDAYS_ON, 2022, 12, 27, "Christmas Day (observed)" },
	{ HOLIDAYS_ON, 2022, 12, 28, NULL },
	{ HOLIDAYS_ON, 2026, 12, 28, "Boxing Day (observed)" }, /* Boxing Day on a Saturday */
	{ HOLIDAYS_ON, 2022, 1, 3, "New Year's Day (observed)" },
	{ HOLIDAYS_ON, 2023, 1, 2, "New Year's Day (observed)" },
	{ HOLIDAYS_ON, 2028, 7, 3, "Canada Day (observed)" },
	{ HOLIDAYS_ON, 2029, 7, 2, "Canada Day (observed)" },
	{ HOLIDAYS_ON, 2027, 3, 30, NULL },
	/* British Columbia */
	{ HOLIDAYS_BC, 2027, 1, 1, "New Year's Day" },
	{ HOLIDAYS_BC, 2012, 2, 13, NULL },
	{ HOLIDAYS_BC, 2018, 2, 12, "Family Day" }, /* second Monday until 2018 */
	{ HOLIDAYS_BC, 2018, 2, 19, NULL },
	{ HOLIDAYS_BC, 2019, 2, 18, "Family Day" }, /* third Monday since 2019 */
	{ HOLIDAYS_BC, 2027, 2, 15, "Family Day" },
	{ HOLIDAYS_BC, 2027, 3, 26, "Good Friday" },
	{ HOLIDAYS_BC, 2027, 3, 29, NULL },
	{ HOLIDAYS_BC, 2027, 5, 24, "Victoria Day" },
	{ HOLIDAYS_BC, 2027, 7, 1, "Canada Day" },
	{ HOLIDAYS_BC, 2029, 7, 2, "Canada Day (observed)" },
	{ HOLIDAYS_BC, 2028, 7, 3, NULL },
	{ HOLIDAYS_BC, 2027, 8, 2, "B.C. Day" },
	{ HOLIDAYS_BC, 2027, 9, 6, "Labour Day" },
	{ HOLIDAYS_BC, 2022, 9, 30, NULL },
	{ HOLIDAYS_BC, 2023, 9, 30, "National Day for Truth and Reconciliation" },
	{ HOLIDAYS_BC, 2027, 10, 11, "Thanksgiving" },
	{ HOLIDAYS_BC, 2027, 11, 11, "Remembrance Day" },
	{ HOLIDAYS_BC, 2027, 12, 25, "Christmas Day" },
	{ HOLIDAYS_BC, 2027, 12, 26, NULL },
	{ HOLIDAYS_BC, 2027, 12, 27, NULL },
	/* no calendar */
	{ HOLIDAYS_NONE, 2027, 12, 25, NULL },
	{ HOLIDAYS_NONE, 2027, 1, 1, NULL },
};

static void
holidays_are_named_on_their_days_only(void **state)
{
	const struct day_case *c;
	const char *got;
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(day_cases); i++) {
		c = &day_cases[i];
		got = holidays_name(c->set, c->y, c->m, c->d);
		if ((got == NULL) != (c->name == NULL) || (got != NULL && strcmp(got, c->name) != 0))
			fail_msg("%s %04d-%02d-%02d: got %s, want %s", holidays_to_text(c->set), c->y, c->m,
			    c->d, got ? got : "none", c->name ? c->name : "none");
		assert_int_equal(holidays_is_holiday(c->set, c->y, c->m, c->d), c->name != NULL);
	}
}

struct count_case {
	enum holiday_set set;
	int y;
	int count;
};

/* Whole-year counts catch a rule that fires on extra days. */
static const struct count_case count_cases[] = {
	{ HOLIDAYS_QC, 2027, 9 },
	{ HOLIDAYS_QC, 2029, 10 }, /* + July 2 */
	{ HOLIDAYS_ON, 2027, 12 }, /* + December 27 and 28 */
	{ HOLIDAYS_ON, 2022, 12 }, /* + January 3 and December 27 */
	{ HOLIDAYS_ON, 2029, 11 }, /* + July 2 */
	{ HOLIDAYS_BC, 2022, 10 },
	{ HOLIDAYS_BC, 2023, 11 },
	{ HOLIDAYS_BC, 2029, 12 }, /* + July 2 */
	{ HOLIDAYS_NONE, 2027, 0 },
};

static void
holiday_counts_per_year_have_no_extra_days(void **state)
{
	int32_t day, last;
	int y, m, d, n;
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(count_cases); i++) {
		n = 0;
		last = tz_days_from_civil(count_cases[i].y, 12, 31);
		for (day = tz_days_from_civil(count_cases[i].y, 1, 1); day <= last; day++) {
			tz_civil_from_days(day, &y, &m, &d);
			n += holidays_is_holiday(count_cases[i].set, y, m, d);
		}
		if (n != count_cases[i].count)
			fail_msg("%s %d: %d holidays, want %d", holidays_to_text(count_cases[i].set),
			    count_cases[i].y, n, count_cases[i].count);
	}
}

/* Holidays that are Mondays by rule must be Mondays every year; Good Friday always a Friday. */
static void
rule_holidays_fall_on_their_weekday_for_a_century(void **state)
{
	static const struct {
		enum holiday_set set;
		const char *name;
		int wday;
	} rules[] = {
		{ HOLIDAYS_QC, "National Patriots' Day", 1 },
		{ HOLIDAYS_QC, "Good Friday", 5 },
		{ HOLIDAYS_QC, "Easter Monday", 1 },
		{ HOLIDAYS_ON, "Family Day", 1 },
		{ HOLIDAYS_ON, "Civic Holiday", 1 },
		{ HOLIDAYS_BC, "B.C. Day", 1 },
		{ HOLIDAYS_BC, "Thanksgiving", 1 },
	};
	const char *name;
	int32_t day;
	int year, y, m, d, found;
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(rules); i++) {
		for (year = 2020; year < 2120; year++) {
			found = 0;
			for (day = tz_days_from_civil(year, 1, 1); day <= tz_days_from_civil(year, 12, 31);
			     day++) {
				tz_civil_from_days(day, &y, &m, &d);
				name = holidays_name(rules[i].set, y, m, d);
				if (name != NULL && strcmp(name, rules[i].name) == 0) {
					assert_int_equal(tz_weekday(day), rules[i].wday);
					found++;
				}
			}
			assert_int_equal(found, 1);
		}
	}
}

struct parse_case {
	const char *text;
	int rc;
	enum holiday_set set;
};

static const struct parse_case parse_cases[] = {
	{ "QC", 0, HOLIDAYS_QC },
	{ "ON", 0, HOLIDAYS_ON },
	{ "BC", 0, HOLIDAYS_BC },
	{ "none", 0, HOLIDAYS_NONE },
	{ "qc", -1, HOLIDAYS_NONE },
	{ "AB", -1, HOLIDAYS_NONE },
	{ "", -1, HOLIDAYS_NONE },
	{ "QC ", -1, HOLIDAYS_NONE },
};

static void
parse_accepts_exact_set_names_and_to_text_inverts_it(void **state)
{
	enum holiday_set set;
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(parse_cases); i++) {
		set = HOLIDAYS_NONE;
		assert_int_equal(holidays_parse(parse_cases[i].text, &set), parse_cases[i].rc);
		if (parse_cases[i].rc == 0) {
			assert_int_equal(set, parse_cases[i].set);
			assert_string_equal(holidays_to_text(set), parse_cases[i].text);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(easter_matches_published_dates),
		cmocka_unit_test(holidays_are_named_on_their_days_only),
		cmocka_unit_test(holiday_counts_per_year_have_no_extra_days),
		cmocka_unit_test(rule_holidays_fall_on_their_weekday_for_a_century),
		cmocka_unit_test(parse_accepts_exact_set_names_and_to_text_inverts_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
