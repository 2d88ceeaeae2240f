/* GSM 03.38 (GSM-7) / UCS-2 detection, SMS segment counting and French transliteration; pure. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "payremind/gsm.h"
#include "payremind/utf8.h"

#define GSM7_SINGLE 160 /* septets in a one-part message */
#define GSM7_PART 153   /* septets per part once a user-data header is needed */
#define UCS2_SINGLE 70
#define UCS2_PART 67
#define GSM_NO_CHAR 0xFFFFFFFFu /* 0x1B is the escape to the extension table, not a character */

/* The basic character set, indexed by its GSM-7 code. 0x09 is Ç (upper case): ç is not GSM-7. */
static const uint32_t gsm_basic[128] = {
	0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC,      /* @ £ $ ¥ è é ù ì */
	0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5,      /* ò Ç LF Ø ø CR Å å */
	0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8,      /* Δ _ Φ Γ Λ Ω Π Ψ */
	0x03A3, 0x0398, 0x039E, GSM_NO_CHAR, 0x00C6, 0x00E6, 0x00DF, 0x00C9, /* Σ Θ Ξ ESC Æ æ ß É */
	0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027,      /* space ! " # ¤ % & ' */
	0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F,      /* ( ) * + , - . / */
	0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037,      /* 0-7 */
	0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F,      /* 8 9 : ; < = > ? */
	0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047,      /* ¡ A-G */
	0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F,      /* H-O */
	0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057,      /* P-W */
	0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7,      /* X Y Z Ä Ö Ñ Ü § */
	0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067,      /* ¿ a-g */
	0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F,      /* h-o */
	0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077,      /* p-w */
	0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,      /* x y z ä ö ñ ü à */
};

/* The extension table (FF ^ { } \ [ ~ ] | €): each is sent as ESC + code, so it costs 2 septets. */
static const uint32_t gsm_extension[] = { 0x000C, 0x005E, 0x007B, 0x007D, 0x005C, 0x005B, 0x007E, 0x005D,
	0x007C, 0x20AC };

/* What gsm_transliterate replaces: characters that would force UCS-2 and have a GSM-7 look-alike. */
static const struct {
	uint32_t cp;
	const char *ascii;
} gsm_translit[] = {
	{ 0x00E7, "c" },
	{ 0x00C7, "C" },
	{ 0x00EA, "e" },
	{ 0x00EB, "e" },
	{ 0x00E2, "a" },
	{ 0x00EE, "i" },
	{ 0x00EF, "i" },
	{ 0x00F4, "o" },
	{ 0x00FB, "u" },
	{ 0x00C0, "A" },
	{ 0x00C8, "E" },
	{ 0x00CA, "E" },
	{ 0x00C2, "A" },
	{ 0x00CE, "I" },
	{ 0x00D4, "O" },
	{ 0x00DB, "U" },
	{ 0x2019, "'" },
	{ 0x2018, "'" },
	{ 0x00AB, "\"" },
	{ 0x00BB, "\"" },
	{ 0x201C, "\"" },
	{ 0x201D, "\"" },
	{ 0x00A0, " " },
	{ 0x202F, " " },
	{ 0x2013, "-" },
	{ 0x2014, "-" },
	{ 0x2026, "..." },
};

/* The septets of code points below 256 (nearly every character of a French or English text), filled
 * once at start-up from the two tables: a lookup instead of a walk through both for each character. */
static uint8_t gsm_latin[256];

__attribute__((constructor)) static void
gsm_latin_init(void)
{
	size_t i;

	for (i = 0; i < sizeof(gsm_extension) / sizeof(gsm_extension[0]); i++)
		if (gsm_extension[i] < 256)
			gsm_latin[gsm_extension[i]] = 2;
	for (i = 0; i < sizeof(gsm_basic) / sizeof(gsm_basic[0]); i++)
		if (gsm_basic[i] < 256)
			gsm_latin[gsm_basic[i]] = 1;
}

/* Septets a code point costs in GSM-7: 1 in the basic set, 2 in the extension, 0 when not GSM-7. */
static size_t
gsm_septets(uint32_t cp)
{
	size_t i;

	if (cp < 256)
		return gsm_latin[cp];
	for (i = 0; i < sizeof(gsm_basic) / sizeof(gsm_basic[0]); i++)
		if (gsm_basic[i] == cp)
			return 1;
	for (i = 0; i < sizeof(gsm_extension) / sizeof(gsm_extension[0]); i++)
		if (gsm_extension[i] == cp)
			return 2;
	return 0;
}

/* Units a code point costs in the given coding: septets, or UTF-16 code units (2 above the BMP). */
static size_t
gsm_width(uint32_t cp, enum gsm_coding coding)
{
	if (coding == GSM_CODING_GSM7)
		return gsm_septets(cp);
	return cp > 0xFFFF ? 2 : 1;
}

/* Pick the coding: GSM-7 unless some character is outside both GSM-7 tables. -1 on bad UTF-8. */
static int
gsm_choose_coding(const unsigned char *s, enum gsm_coding *coding)
{
	const unsigned char *end = s + strlen((const char *)s);
	uint32_t cp;

	*coding = GSM_CODING_GSM7;
	while (s < end) {
		if (utf8_next(&s, (size_t)(end - s), &cp) == -1)
			return -1;
		if (gsm_septets(cp) == 0)
			*coding = GSM_CODING_UCS2;
	}
	return 0;
}

/*
 * Count units and segments of valid UTF-8 in the chosen coding. A multi-part message is packed
 * character by character, the way gateways split it: an escape pair (ESC + extension code) or a
 * surrogate pair is never cut across two parts, so a part may hold one unit less than the maximum.
 */
static void
gsm_count(const unsigned char *s, enum gsm_coding coding, struct gsm_info *out)
{
	size_t single = coding == GSM_CODING_GSM7 ? GSM7_SINGLE : UCS2_SINGLE;
	size_t part = coding == GSM_CODING_GSM7 ? GSM7_PART : UCS2_PART;
	const unsigned char *end = s + strlen((const char *)s);
	size_t units = 0, in_part = 0;
	int parts = 1;
	uint32_t cp;

	while (s < end && utf8_next(&s, (size_t)(end - s), &cp) == 0) {
		size_t w = gsm_width(cp, coding);

		units += w;
		if (in_part + w > part) {
			parts++;
			in_part = 0;
		}
		in_part += w;
	}
	out->coding = coding;
	out->units = units;
	out->segments = units <= single ? 1 : parts;
}

int
gsm_analyze(const char *utf8, struct gsm_info *out)
{
	const unsigned char *s = (const unsigned char *)utf8;
	enum gsm_coding coding;

	if (gsm_choose_coding(s, &coding) == -1)
		return -1;
	gsm_count(s, coding, out);
	return 0;
}

int
gsm_is_gsm7(const char *utf8)
{
	struct gsm_info info;

	if (gsm_analyze(utf8, &info) == -1)
		return 0;
	return info.coding == GSM_CODING_GSM7;
}

/* The GSM-7 replacement for a code point, or NULL when it is kept as it is. */
static const char *
gsm_translit_for(uint32_t cp)
{
	size_t i;

	for (i = 0; i < sizeof(gsm_translit) / sizeof(gsm_translit[0]); i++)
		if (gsm_translit[i].cp == cp)
			return gsm_translit[i].ascii;
	return NULL;
}

/*
 * Copy with French typography folded to GSM-7 so a message costs septets instead of UCS-2 units
 * (which would halve what fits in a segment). Every replacement is no longer than the UTF-8 it
 * replaces, so the copy never outgrows the input. Bytes that are not valid UTF-8 are copied as they
 * are (gsm_analyze reports them). NULL only when out of memory.
 */
char *
gsm_transliterate(const char *utf8)
{
	const unsigned char *s = (const unsigned char *)utf8, *end = s + strlen(utf8);
	char *out = malloc(strlen(utf8) + 1), *w = out;
	const char *rep;
	uint32_t cp;

	if (out == NULL)
		return NULL;
	while (s < end) {
		const unsigned char *start = s;

		if (utf8_next(&s, (size_t)(end - s), &cp) == -1) {
			*w++ = (char)*s++;
			continue;
		}
		rep = gsm_translit_for(cp);
		if (rep == NULL) {
			memcpy(w, start, (size_t)(s - start));
			w += s - start;
		} else {
			memcpy(w, rep, strlen(rep));
			w += strlen(rep);
		}
	}
	*w = '\0';
	return out;
}

const char *
gsm_coding_to_text(enum gsm_coding coding)
{
	return coding == GSM_CODING_GSM7 ? "gsm7" : "ucs2";
}
