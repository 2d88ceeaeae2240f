/* The HTML writer: everything that is not a literal of ours is escaped on the way in. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payremind/html.h"

void
html_init(struct html *h)
{
	memset(h, 0, sizeof(*h));
}

static int
html_reserve(struct html *h, size_t n)
{
	size_t cap;
	char *p;

	if (h->failed)
		return -1;
	if (h->len + n + 1 <= h->cap)
		return 0;
	for (cap = h->cap ? h->cap : 1024; cap < h->len + n + 1; cap *= 2)
		;
	if ((p = realloc(h->buf, cap)) == NULL) {
		h->failed = 1;
		return -1;
	}
	h->buf = p;
	h->cap = cap;
	return 0;
}

void
html_raw_(struct html *h, const char *s, size_t n)
{
	if (html_reserve(h, n) == -1)
		return;
	memcpy(h->buf + h->len, s, n);
	h->len += n;
	h->buf[h->len] = '\0';
}

void
html_text(struct html *h, const char *s)
{
	const char *esc;

	for (; s != NULL && *s; s++) {
		switch (*s) {
		case '&':
			esc = "&amp;";
			break;
		case '<':
			esc = "&lt;";
			break;
		case '>':
			esc = "&gt;";
			break;
		case '"':
			esc = "&quot;";
			break;
		case '\'':
			esc = "&#39;";
			break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
				continue;
			html_raw_(h, s, 1);
			continue;
		}
		html_raw_(h, esc, strlen(esc));
	}
}

void
html_textf(struct html *h, const char *fmt, ...)
{
	char small[256], *big = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		h->failed = 1;
		return;
	}
	if ((size_t)n >= sizeof(small)) {
		if ((big = malloc((size_t)n + 1)) == NULL) {
			h->failed = 1;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	html_text(h, big != NULL ? big : small);
	free(big);
}

const char *
html_str(const struct html *h)
{
	return h->buf != NULL ? h->buf : "";
}

void
html_free(struct html *h)
{
	free(h->buf);
	html_init(h);
}
