/* Helpers shared by the libFuzzer targets: checks that abort, strict UTF-8, splitting an input into fields. */
#ifndef PAYREMIND_FUZZ_H
#define PAYREMIND_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A property every input must keep: print it and abort, which libFuzzer reports as a crash. */
#define FUZZ_CHECK(cond)                                                                         \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/* An allocation that cannot fail here (libFuzzer's -rss_limit_mb stops a run long before). */
static inline void *
fuzz_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

/* A C string of data[0..size): what a C caller sees, so an embedded NUL ends it. */
static inline char *
fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = fuzz_xmalloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* The rest of an input, consumed field by field. */
struct fuzz_input {
	const uint8_t *p;
	size_t n;
};

/* The next line (without its '\n'), or all that is left, as a new C string. */
static inline char *
fuzz_take_line(struct fuzz_input *in)
{
	const uint8_t *nl = memchr(in->p, '\n', in->n);
	size_t len = nl ? (size_t)(nl - in->p) : in->n;
	char *s = fuzz_strndup(in->p, len);

	in->p += nl ? len + 1 : len;
	in->n -= nl ? len + 1 : len;
	return s;
}

/*
 * Decode one code point of strict UTF-8 at *s (no overlong form, no surrogate, nothing above
 * U+10FFFF), advancing *s. -1 on anything else. Written independently of the project's decoders.
 */
static inline long
fuzz_utf8_next(const unsigned char **s)
{
	const unsigned char *p = *s;
	long cp, min;
	int n, i;

	if (p[0] < 0x80)
		n = 0, cp = p[0], min = 0;
	else if ((p[0] & 0xe0) == 0xc0)
		n = 1, cp = p[0] & 0x1f, min = 0x80;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 2, cp = p[0] & 0x0f, min = 0x800;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 3, cp = p[0] & 0x07, min = 0x10000;
	else
		return -1;
	for (i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*s = p + n + 1;
	return cp;
}

/* 1 when s is strict UTF-8. */
static inline int
fuzz_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		if (fuzz_utf8_next(&p) < 0)
			return 0;
	}
	return 1;
}

/* 1 when err is a non-empty reason that ends inside its buffer. */
static inline int
fuzz_reason_ok(const char *err, size_t errlen)
{
	return memchr(err, '\0', errlen) != NULL && err[0] != '\0';
}

#endif
