/* Provincial public holidays (Québec, Ontario, British Columbia) computed per year; pure. */
#ifndef PAYREMIND_HOLIDAYS_H
#define PAYREMIND_HOLIDAYS_H

enum holiday_set { HOLIDAYS_NONE, HOLIDAYS_QC, HOLIDAYS_ON, HOLIDAYS_BC };

/* "QC", "ON", "BC" or "none" (case-sensitive). 0, or -1 when unknown. */
int holidays_parse(const char *name, enum holiday_set *out) __attribute__((warn_unused_result));
/* "QC", "ON", "BC" or "none". */
const char *holidays_to_text(enum holiday_set set);
/* Easter Sunday of year y (Gregorian computus). */
void holidays_easter(int y, int *month, int *day);
/* The holiday's English name when y-m-d is a public holiday of the set, NULL otherwise. */
const char *holidays_name(enum holiday_set set, int y, int m, int d);
/* 1 when y-m-d is a public holiday of the set, 0 otherwise. */
int holidays_is_holiday(enum holiday_set set, int y, int m, int d);

#endif
