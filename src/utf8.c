/* Strict UTF-8 (RFC 3629) decoding and validation, pure. */
#include "payremind/utf8.h"

/*
 * RFC 3629 section 4: the lead byte gives the length (C0, C1 and F5..FF never appear), and the first
 * continuation byte has a narrower range after E0 (no overlong), ED (no surrogate), F0 (no overlong)
 * and F4 (nothing above U+10FFFF). Checking the ranges byte by byte never reads past a byte that is
 * not a continuation, so a sequence cut by the end of the buffer or by a NUL is refused, not overrun.
 */
int
utf8_next(const unsigned char **p, size_t left, uint32_t *cp)
{
	const unsigned char *s = *p;
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len, i;
	uint32_t c;

	if (left == 0)
		return -1;
	if (s[0] < 0x80) {
		*cp = s[0];
		*p = s + 1;
		return 0;
	}
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2;
		c = s[0] & 0x1F;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3;
		c = s[0] & 0x0F;
		lo = s[0] == 0xE0 ? 0xA0 : 0x80;
		hi = s[0] == 0xED ? 0x9F : 0xBF;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4;
		c = s[0] & 0x07;
		lo = s[0] == 0xF0 ? 0x90 : 0x80;
		hi = s[0] == 0xF4 ? 0x8F : 0xBF;
	} else {
		return -1;
	}
	if (left < len)
		return -1;
	for (i = 1; i < len; i++) {
		if (s[i] < lo || s[i] > hi)
			return -1;
		c = (c << 6) | (s[i] & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*cp = c;
	*p = s + len;
	return 0;
}

int
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	uint32_t cp;

	while (p < end) {
		if (utf8_next(&p, (size_t)(end - p), &cp) == -1)
			return 0;
	}
	return 1;
}
