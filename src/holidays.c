/* Public holidays of Québec, Ontario and British Columbia, computed per year from a table of rules; pure. */
#include <stddef.h>
#include <string.h>

#include "payremind/holidays.h"
#include "payremind/tz.h"

#define HOLIDAY_NO_DAY INT32_MIN
#define HOLIDAY_SUN (1u << 0)
#define HOLIDAY_SAT (1u << 6)
#define HOLIDAY_MAX_SUBSTITUTES 8

enum holiday_kind {
	HOLIDAY_FIXED,         /* month/arg = day of month */
	HOLIDAY_NTH_MONDAY,    /* arg = n: the n-th Monday of month */
	HOLIDAY_MONDAY_BEFORE, /* the last Monday strictly before month/arg */
	HOLIDAY_EASTER,        /* arg = days after Easter Sunday */
};

/* One holiday of one set. A fixed date whose weekday is in substitute_days also makes the next free weekday
 * a holiday (named `observed`); the date itself stays a holiday. */
struct holiday_rule {
	enum holiday_set set;
	const char *name;
	enum holiday_kind kind;
	int month;
	int arg;
	int first_year, last_year; /* 0: no bound */
	unsigned substitute_days;
	const char *observed;
};

/*
 * Sources: Québec OPC list for s.34(4); Ontario ESA public holidays plus the Civic Holiday; B.C.
 * Employment Standards statutory holidays. Substitute days are where a collection agency errs on the side of
 * not calling: when a fixed holiday falls on a weekend and Ontario observes a substitute weekday, both the
 * date and the substitute are holidays. Canada Day on a Sunday moves to Monday July 2 (federal Holidays Act:
 * the "2 if Sunday" of the OPC list) in every province; July 1 stays a holiday too, for the same reason.
 */
static const struct holiday_rule holiday_rules[] = {
	{ HOLIDAYS_QC, "New Year's Day", HOLIDAY_FIXED, 1, 1, 0, 0, 0, NULL },
	{ HOLIDAYS_QC, "Good Friday", HOLIDAY_EASTER, 0, -2, 0, 0, 0, NULL },
	{ HOLIDAYS_QC, "Easter Monday", HOLIDAY_EASTER, 0, 1, 0, 0, 0, NULL },
	{ HOLIDAYS_QC, "National Patriots' Day", HOLIDAY_MONDAY_BEFORE, 5, 25, 0, 0, 0, NULL },
	{ HOLIDAYS_QC, "Saint-Jean-Baptiste Day (Fête nationale)", HOLIDAY_FIXED, 6, 24, 0, 0, 0, NULL },
	{ HOLIDAYS_QC, "Canada Day", HOLIDAY_FIXED, 7, 1, 0, 0, HOLIDAY_SUN, "Canada Day (observed)" },
	{ HOLIDAYS_QC, "Labour Day", HOLIDAY_NTH_MONDAY, 9, 1, 0, 0, 0, NULL },
	{ HOLIDAYS_QC, "Thanksgiving", HOLIDAY_NTH_MONDAY, 10, 2, 0, 0, 0, NULL },
	{ HOLIDAYS_QC, "Christmas Day", HOLIDAY_FIXED, 12, 25, 0, 0, 0, NULL },

	{ HOLIDAYS_ON, "New Year's Day", HOLIDAY_FIXED, 1, 1, 0, 0, HOLIDAY_SAT | HOLIDAY_SUN,
	    "New Year's Day (observed)" },
	{ HOLIDAYS_ON, "Family Day", HOLIDAY_NTH_MONDAY, 2, 3, 2008, 0, 0, NULL },
	{ HOLIDAYS_ON, "Good Friday", HOLIDAY_EASTER, 0, -2, 0, 0, 0, NULL },
	{ HOLIDAYS_ON, "Victoria Day", HOLIDAY_MONDAY_BEFORE, 5, 25, 0, 0, 0, NULL },
	{ HOLIDAYS_ON, "Canada Day", HOLIDAY_FIXED, 7, 1, 0, 0, HOLIDAY_SAT | HOLIDAY_SUN,
	    "Canada Day (observed)" },
	{ HOLIDAYS_ON, "Civic Holiday", HOLIDAY_NTH_MONDAY, 8, 1, 0, 0, 0, NULL },
	{ HOLIDAYS_ON, "Labour Day", HOLIDAY_NTH_MONDAY, 9, 1, 0, 0, 0, NULL },
	{ HOLIDAYS_ON, "Thanksgiving", HOLIDAY_NTH_MONDAY, 10, 2, 0, 0, 0, NULL },
	{ HOLIDAYS_ON, "Christmas Day", HOLIDAY_FIXED, 12, 25, 0, 0, HOLIDAY_SAT | HOLIDAY_SUN,
	    "Christmas Day (observed)" },
	{ HOLIDAYS_ON, "Boxing Day", HOLIDAY_FIXED, 12, 26, 0, 0, HOLIDAY_SAT | HOLIDAY_SUN,
	    "Boxing Day (observed)" },

	{ HOLIDAYS_BC, "New Year's Day", HOLIDAY_FIXED, 1, 1, 0, 0, 0, NULL },
	{ HOLIDAYS_BC, "Family Day", HOLIDAY_NTH_MONDAY, 2, 2, 2013, 2018, 0, NULL },
	{ HOLIDAYS_BC, "Family Day", HOLIDAY_NTH_MONDAY, 2, 3, 2019, 0, 0, NULL },
	{ HOLIDAYS_BC, "Good Friday", HOLIDAY_EASTER, 0, -2, 0, 0, 0, NULL },
	{ HOLIDAYS_BC, "Victoria Day", HOLIDAY_MONDAY_BEFORE, 5, 25, 0, 0, 0, NULL },
	{ HOLIDAYS_BC, "Canada Day", HOLIDAY_FIXED, 7, 1, 0, 0, HOLIDAY_SUN, "Canada Day (observed)" },
	{ HOLIDAYS_BC, "B.C. Day", HOLIDAY_NTH_MONDAY, 8, 1, 0, 0, 0, NULL },
	{ HOLIDAYS_BC, "Labour Day", HOLIDAY_NTH_MONDAY, 9, 1, 0, 0, 0, NULL },
	{ HOLIDAYS_BC, "National Day for Truth and Reconciliation", HOLIDAY_FIXED, 9, 30, 2023, 0, 0, NULL },
	{ HOLIDAYS_BC, "Thanksgiving", HOLIDAY_NTH_MONDAY, 10, 2, 0, 0, 0, NULL },
	{ HOLIDAYS_BC, "Remembrance Day", HOLIDAY_FIXED, 11, 11, 0, 0, 0, NULL },
	{ HOLIDAYS_BC, "Christmas Day", HOLIDAY_FIXED, 12, 25, 0, 0, 0, NULL },
};

#define HOLIDAY_NRULES (sizeof(holiday_rules) / sizeof(holiday_rules[0]))

static const char *const holiday_set_names[] = { "none", "QC", "ON", "BC" };

int
holidays_parse(const char *name, enum holiday_set *out)
{
	size_t i;

	for (i = 0; i < sizeof(holiday_set_names) / sizeof(holiday_set_names[0]); i++) {
		if (strcmp(name, holiday_set_names[i]) == 0) {
			*out = (enum holiday_set)i;
			return 0;
		}
	}
	return -1;
}

const char *
holidays_to_text(enum holiday_set set)
{
	if ((unsigned)set >= sizeof(holiday_set_names) / sizeof(holiday_set_names[0]))
		return "none";
	return holiday_set_names[set];
}

/* Anonymous Gregorian computus (Meeus/Jones/Butcher), valid for every Gregorian year. */
void
holidays_easter(int y, int *month, int *day)
{
	int a = y % 19, b = y / 100, c = y % 100;
	int d = b / 4, e = b % 4;
	int f = (b + 8) / 25, g = (b - f + 1) / 3;
	int h = (19 * a + b - d - g + 15) % 30;
	int i = c / 4, k = c % 4;
	int l = (32 + 2 * e + 2 * i - h - k) % 7;
	int m = (a + 11 * h + 22 * l) / 451;

	*month = (h + l - 7 * m + 114) / 31;
	*day = (h + l - 7 * m + 114) % 31 + 1;
}

/* The n-th Monday (n >= 1) of month m of year y, as a day number. */
static int32_t
holiday_nth_monday(int y, int m, int n)
{
	int32_t first = tz_days_from_civil(y, m, 1);

	return first + (8 - tz_weekday(first)) % 7 + 7 * (n - 1);
}

/* The last Monday strictly before y-m-d (a week earlier when y-m-d is itself a Monday). */
static int32_t
holiday_monday_before(int y, int m, int d)
{
	int32_t day = tz_days_from_civil(y, m, d);
	int back = (tz_weekday(day) + 6) % 7;

	return day - (back == 0 ? 7 : back);
}

/* The day number of rule r in year y, or HOLIDAY_NO_DAY when the rule is not in force that year. */
static int32_t
holiday_rule_day(const struct holiday_rule *r, int y)
{
	int em, ed;

	if ((r->first_year != 0 && y < r->first_year) || (r->last_year != 0 && y > r->last_year))
		return HOLIDAY_NO_DAY;
	switch (r->kind) {
	case HOLIDAY_FIXED:
		return tz_days_from_civil(y, r->month, r->arg);
	case HOLIDAY_NTH_MONDAY:
		return holiday_nth_monday(y, r->month, r->arg);
	case HOLIDAY_MONDAY_BEFORE:
		return holiday_monday_before(y, r->month, r->arg);
	case HOLIDAY_EASTER:
		holidays_easter(y, &em, &ed);
		return tz_days_from_civil(y, em, ed) + r->arg;
	}
	return HOLIDAY_NO_DAY;
}

/* The rule of set whose date in year y is day, or NULL. */
static const struct holiday_rule *
holiday_actual(enum holiday_set set, int y, int32_t day)
{
	size_t i;

	for (i = 0; i < HOLIDAY_NRULES; i++) {
		if (holiday_rules[i].set == set && holiday_rule_day(&holiday_rules[i], y) == day)
			return &holiday_rules[i];
	}
	return NULL;
}

static int
holiday_day_in(int32_t day, const int32_t *days, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (days[i] == day)
			return 1;
	}
	return 0;
}

/* The substitute of rule r in year y: the first weekday after its date that is neither a holiday nor an
 * earlier rule's substitute (Christmas on a Saturday gives Monday 27, Boxing Day Tuesday 28). */
static int32_t
holiday_substitute(const struct holiday_rule *r, int y, const int32_t *taken, int ntaken)
{
	int32_t day = holiday_rule_day(r, y);
	int w;

	if (r->substitute_days == 0 || day == HOLIDAY_NO_DAY ||
	    !(r->substitute_days & (1u << tz_weekday(day))))
		return HOLIDAY_NO_DAY;
	do {
		day++;
		w = tz_weekday(day);
	} while (
	    w == 0 || w == 6 || holiday_actual(r->set, y, day) != NULL || holiday_day_in(day, taken, ntaken));
	return day;
}

/* The rule of set whose substitute day in year y is day, or NULL. Substitutes are assigned in table order. */
static const struct holiday_rule *
holiday_observed(enum holiday_set set, int y, int32_t day)
{
	int32_t taken[HOLIDAY_MAX_SUBSTITUTES];
	int32_t sub;
	int ntaken = 0;
	size_t i;

	for (i = 0; i < HOLIDAY_NRULES && ntaken < HOLIDAY_MAX_SUBSTITUTES; i++) {
		if (holiday_rules[i].set != set)
			continue;
		sub = holiday_substitute(&holiday_rules[i], y, taken, ntaken);
		if (sub == HOLIDAY_NO_DAY)
			continue;
		if (sub == day)
			return &holiday_rules[i];
		taken[ntaken++] = sub;
	}
	return NULL;
}

const char *
holidays_name(enum holiday_set set, int y, int m, int d)
{
	int32_t day = tz_days_from_civil(y, m, d);
	const struct holiday_rule *r;

	if (set == HOLIDAYS_NONE)
		return NULL;
	r = holiday_actual(set, y, day);
	if (r != NULL)
		return r->name;
	r = holiday_observed(set, y, day);
	return r != NULL ? r->observed : NULL;
}

int
holidays_is_holiday(enum holiday_set set, int y, int m, int d)
{
	return holidays_name(set, y, m, d) != NULL;
}
