/* Strict UTF-8 (RFC 3629), pure: the one decoder the GSM-7 counter, the keywords and the webhook checks share. */
#ifndef PAYREMIND_UTF8_H
#define PAYREMIND_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decode the code point at *p (at most left bytes) into *cp and advance *p past it. -1, *p unchanged,
 * for a stray continuation byte, a truncated sequence, an overlong form, a surrogate (U+D800..DFFF),
 * anything above U+10FFFF or a 5- or 6-byte form. */
int utf8_next(const unsigned char **p, size_t left, uint32_t *cp) __attribute__((warn_unused_result));
/* 1 when s[0..len) is entirely valid UTF-8 by the rules of utf8_next (NUL bytes included), 0 otherwise. */
int utf8_valid(const char *s, size_t len);

#endif
