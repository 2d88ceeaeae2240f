/*
 * libFuzzer target: UTF-8 / GSM-7 analysis and transliteration of any text (gsm_analyze, gsm_is_gsm7,
 * gsm_transliterate). Checks against an independent decoder: only valid UTF-8 is analysed; the units
 * match the coding (UCS-2: UTF-16 code units; GSM-7: 1 or 2 septets per character); the segments are
 * consistent with the units; transliteration never grows a text, keeps it valid, is idempotent, leaves
 * none of the characters it promises to replace, and keeps a GSM-7 text GSM-7 at the same length.
 */
#include "fuzz.h"
#include "payremind/gsm.h"
#include "payremind/utf8.h"

/* The replacements gsm.h promises (ç Ç ê ë â î ï ô û À È ’ ‘ « » “ ” NBSP NNBSP – —). */
static const long promised[] = { 0xE7, 0xC7, 0xEA, 0xEB, 0xE2, 0xEE, 0xEF, 0xF4, 0xFB, 0xC0, 0xC8, 0x2019,
	0x2018, 0xAB, 0xBB, 0x201C, 0x201D, 0xA0, 0x202F, 0x2013, 0x2014 };

static int
is_promised(long cp)
{
	size_t i;

	for (i = 0; i < sizeof(promised) / sizeof(promised[0]); i++) {
		if (promised[i] == cp)
			return 1;
	}
	return 0;
}

/* The text's code points and UTF-16 code units; whether each one is GSM-7 or promised. */
struct census {
	size_t cps, utf16;
	int all_gsm7, all_gsm7_or_promised, has_promised;
};

static void
take_census(const char *s, struct census *c)
{
	const unsigned char *p = (const unsigned char *)s;

	memset(c, 0, sizeof(*c));
	c->all_gsm7 = c->all_gsm7_or_promised = 1;
	while (*p != '\0') {
		const unsigned char *start = p;
		long cp = fuzz_utf8_next(&p);
		char one[5] = { 0 };
		int gsm7;

		memcpy(one, start, (size_t)(p - start));
		gsm7 = gsm_is_gsm7(one);
		c->cps++;
		c->utf16 += cp > 0xFFFF ? 2 : 1;
		c->all_gsm7 &= gsm7;
		c->all_gsm7_or_promised &= gsm7 || is_promised(cp);
		c->has_promised |= is_promised(cp);
	}
}

/* The segments of units in a coding: one up to the single-part size, else packed per part (a part
 * may hold one unit less, so that an escape or surrogate pair is never cut). */
static void
check_info(const struct gsm_info *info, const struct census *c)
{
	size_t single = info->coding == GSM_CODING_GSM7 ? 160 : 70;
	size_t part = info->coding == GSM_CODING_GSM7 ? 153 : 67;

	if (info->coding == GSM_CODING_UCS2)
		FUZZ_CHECK(info->units == c->utf16 && !c->all_gsm7);
	else
		FUZZ_CHECK(c->all_gsm7 && info->units >= c->cps && info->units <= 2 * c->cps);
	if (info->units <= single)
		FUZZ_CHECK(info->segments == 1);
	else
		FUZZ_CHECK((size_t)info->segments >= (info->units + part - 1) / part &&
		    (size_t)info->segments <= (info->units + part - 2) / (part - 1));
}

static void
check_transliterate(const char *text, int valid, const struct gsm_info *info, const struct census *c)
{
	char *t = gsm_transliterate(text), *tt;
	struct gsm_info tinfo;
	struct census tc;

	FUZZ_CHECK(t != NULL && strlen(t) <= strlen(text));
	if (!valid) {
		free(t);
		return;
	}
	FUZZ_CHECK(gsm_analyze(t, &tinfo) == 0);
	take_census(t, &tc);
	check_info(&tinfo, &tc);
	FUZZ_CHECK(!tc.has_promised);
	FUZZ_CHECK(!c->all_gsm7_or_promised || tinfo.coding == GSM_CODING_GSM7);
	FUZZ_CHECK(info->coding != GSM_CODING_GSM7 ||
	    (tinfo.coding == GSM_CODING_GSM7 && tinfo.units == info->units));
	tt = gsm_transliterate(t);
	FUZZ_CHECK(tt != NULL && strcmp(tt, t) == 0);
	free(tt);
	free(t);
}

/*
 * The shared decoder (utf8.h) on the raw bytes, NULs included, against this file's: the same verdict,
 * the same code points, and a refused sequence leaves the position where it was.
 */
static void
check_utf8(const uint8_t *data, size_t size)
{
	char *copy = fuzz_strndup(data, size); /* NUL-terminated: a sequence cut by the end is refused */
	const unsigned char *p = data, *end = data + size;
	size_t off;
	int mine = 1;

	for (off = 0; off < size; off += strlen(copy + off) + 1)
		mine &= fuzz_utf8_valid(copy + off);
	FUZZ_CHECK(utf8_valid((const char *)data, size) == mine);
	while (p < end) {
		const unsigned char *at = p, *mp = (const unsigned char *)copy + (p - data);
		long want = fuzz_utf8_next(&mp);
		uint32_t cp;

		if (utf8_next(&p, (size_t)(end - p), &cp) == -1) {
			FUZZ_CHECK(p == at && want == -1 && !mine);
			break;
		}
		FUZZ_CHECK(want >= 0 && cp == (uint32_t)want);
		FUZZ_CHECK(p - at == mp - ((const unsigned char *)copy + (at - data)));
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	int valid = fuzz_utf8_valid(text), rc;
	struct gsm_info info;
	struct census c;

	check_utf8(data, size);
	rc = gsm_analyze(text, &info);
	FUZZ_CHECK((rc == 0) == valid);
	if (valid) {
		take_census(text, &c);
		check_info(&info, &c);
		FUZZ_CHECK(gsm_is_gsm7(text) == (info.coding == GSM_CODING_GSM7));
		FUZZ_CHECK(strcmp(gsm_coding_to_text(info.coding),
		               info.coding == GSM_CODING_GSM7 ? "gsm7" : "ucs2") == 0);
	} else {
		FUZZ_CHECK(!gsm_is_gsm7(text));
	}
	check_transliterate(text, valid, &info, &c);
	free(text);
	return 0;
}
