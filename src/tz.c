/* Civil date arithmetic and IANA zone conversion through the C library's tzdata (switches TZ, cached). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "payremind/tz.h"

#define TZ_NAME_MAX 255
#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_DAY_S 86400

/* The zone TZ currently names ("" before the first switch): switching costs a tzset() and a file read. */
static char tz_current[TZ_NAME_MAX + 1];

/* Howard Hinnant's days_from_civil: eras of 400 years (146097 days) make it exact for every year. */
int32_t
tz_days_from_civil(int y, int m, int d)
{
	int era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Howard Hinnant's civil_from_days, the exact inverse of tz_days_from_civil. */
void
tz_civil_from_days(int32_t days, int *y, int *m, int *d)
{
	int z = days + 719468;
	int era = (z >= 0 ? z : z - 146096) / 146097;
	int doe = z - era * 146097;
	int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

/* 1970-01-01 was a Thursday (4). */
int
tz_weekday(int32_t days)
{
	return days >= -4 ? (days + 4) % 7 : (days + 5) % 7 + 6;
}

/* A zone name is a relative path of tzdata characters without "..": nothing outside the zone directory,
 * and nothing glibc would read as a POSIX TZ rule instead of a file. */
static int
tz_name_is_safe(const char *zone)
{
	size_t len;

	if (zone == NULL || zone[0] == '\0' || zone[0] == '/' || strstr(zone, "..") != NULL)
		return 0;
	len = strlen(zone);
	return len <= TZ_NAME_MAX &&
	    strspn(zone, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-.") == len;
}

/* 1 when path is a regular file starting with the TZif magic (zone.tab and friends are not zones). */
static int
tz_file_is_tzif(const char *path)
{
	struct stat st;
	char magic[4];
	ssize_t n;
	int fd;

	if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 0;
	n = read(fd, magic, sizeof(magic));
	close(fd);
	return n == (ssize_t)sizeof(magic) && memcmp(magic, "TZif", sizeof(magic)) == 0;
}

/* Looks where glibc looks ($TZDIR, else /usr/share/zoneinfo): glibc silently uses UTC for a name it cannot
 * load, so a zone must be checked before it is used. */
int
tz_is_known(const char *zone)
{
	const char *dir = getenv("TZDIR");
	char path[PATH_MAX];
	int n;

	if (!tz_name_is_safe(zone))
		return 0;
	if (dir == NULL || dir[0] == '\0')
		dir = TZ_DEFAULT_DIR;
	n = snprintf(path, sizeof(path), "%s/%s", dir, zone);
	return n > 0 && (size_t)n < sizeof(path) && tz_file_is_tzif(path);
}

/* Make zone the process's local zone; a no-op when it already is. 0, or -1 for an unknown zone. */
static int
tz_use(const char *zone)
{
	char env[TZ_NAME_MAX + 2];

	if (zone != NULL && tz_current[0] != '\0' && strcmp(zone, tz_current) == 0)
		return 0;
	if (!tz_is_known(zone))
		return -1;
	snprintf(env, sizeof(env), ":%s", zone);
	if (setenv("TZ", env, 1) == -1)
		return -1;
	tzset();
	snprintf(tz_current, sizeof(tz_current), "%s", zone);
	return 0;
}

/* UTC offset (seconds east) of the current zone at instant t. */
static int
tz_offset_at(int64_t t, long *off)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (localtime_r(&tt, &tm) == NULL)
		return -1;
	*off = tm.tm_gmtoff;
	return 0;
}

int
tz_to_local(const char *zone, int64_t t, struct tz_local *out)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (tz_use(zone) == -1 || localtime_r(&tt, &tm) == NULL)
		return -1;
	out->year = tm.tm_year + 1900;
	out->month = tm.tm_mon + 1;
	out->day = tm.tm_mday;
	out->hour = tm.tm_hour;
	out->minute = tm.tm_min;
	out->second = tm.tm_sec;
	out->wday = tm.tm_wday;
	return 0;
}

/* The first instant of (lo, hi] whose offset is hi's: the end of a DST gap, found by bisection
 * (lo has the offset before the change, hi the one after). */
static int
tz_gap_end(int64_t lo, int64_t hi, int64_t *out)
{
	long off_hi, off;
	int64_t mid;

	if (tz_offset_at(hi, &off_hi) == -1)
		return -1;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (tz_offset_at(mid, &off) == -1)
			return -1;
		if (off == off_hi)
			hi = mid;
		else
			lo = mid;
	}
	*out = hi;
	return 0;
}

/* Resolve local seconds `naive` (the local civil time read as if it were UTC) given the offsets in force a
 * day before and a day after. Each offset proposes the instant naive - offset, which is right when the zone
 * really has that offset then: two right answers are a repeated time (take the earlier), none is a skipped
 * time (take the end of the gap). Deciding on offsets, not on mktime's tm_isdst guess, also handles offset
 * changes that are not DST. */
static int
tz_resolve(int64_t naive, long before, long after, int64_t *out)
{
	int64_t cand[2] = { naive - before, naive - after };
	long want[2] = { before, after };
	long off;
	int found = 0;
	int i;

	for (i = 0; i < 2; i++) {
		if (tz_offset_at(cand[i], &off) == -1)
			return -1;
		if (off == want[i] && (!found || cand[i] < *out)) {
			*out = cand[i];
			found = 1;
		}
	}
	if (found)
		return 0;
	return tz_gap_end(cand[0] < cand[1] ? cand[0] : cand[1], cand[0] < cand[1] ? cand[1] : cand[0], out);
}

int
tz_from_local(const char *zone, const struct tz_local *lt, int64_t *out)
{
	int64_t naive = (int64_t)tz_days_from_civil(lt->year, lt->month, lt->day) * TZ_DAY_S +
	    (int64_t)lt->hour * 3600 + (int64_t)lt->minute * 60 + lt->second;
	long before, after;

	if (tz_use(zone) == -1 || tz_offset_at(naive - TZ_DAY_S, &before) == -1 ||
	    tz_offset_at(naive + TZ_DAY_S, &after) == -1)
		return -1;
	return tz_resolve(naive, before, after, out);
}
