/* One HTML writer: text and attribute values are escaped by default; raw markup only from string
 * literals (html_lit does not compile with anything else). */
#ifndef PAYREMIND_HTML_H
#define PAYREMIND_HTML_H

#include <stddef.h>

struct html {
	char *buf;
	size_t len, cap;
	int failed; /* out of memory: the page is incomplete and must not be served */
};

/* Markup: s must be a string literal ("" s "" refuses anything else at compile time). */
#define html_lit(h, s) html_raw_((h), "" s "", sizeof("" s "") - 1)

/* An empty writer. */
void html_init(struct html *h);
/* Append n bytes as they are: through html_lit only. */
void html_raw_(struct html *h, const char *s, size_t n);
/* Append text escaped for element content and double-quoted attribute values (& < > " ' are
 * replaced; control characters other than tab and newline are dropped). NULL appends nothing. */
void html_text(struct html *h, const char *s);
/* The same for printf-formatted text: the result of the format is escaped as a whole. */
void html_textf(struct html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The page so far (never NULL once anything was written; "" otherwise). */
const char *html_str(const struct html *h);
/* Free the buffer. */
void html_free(struct html *h);

#endif
