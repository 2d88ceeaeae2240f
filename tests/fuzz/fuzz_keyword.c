/*
 * libFuzzer target: keyword matching of inbound texts (keyword_normalize, keyword_match). Checks that
 * only valid UTF-8 normalises, that the result is upper-case ASCII without surrounding space or
 * punctuation, that normalising is idempotent, that "does not fit" happens exactly when the result is
 * longer than the buffer, and that a match names its keyword and has a one-segment GSM-7 reply.
 */
#include "fuzz.h"
#include "payremind/gsm.h"
#include "payremind/keyword.h"

static int
is_trimmed(char c)
{
	return c == ' ' || strchr(".!?,;:", c) != NULL;
}

/* The normalised text r of a valid input: its shape, and the same result again from r. */
static void
check_normalized(const char *r)
{
	size_t n = strlen(r), i;
	char *again = fuzz_xmalloc(n + 1);

	for (i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)r[i] < 0x80 && !(r[i] >= 'a' && r[i] <= 'z'));
	FUZZ_CHECK(n == 0 || (!is_trimmed(r[0]) && !is_trimmed(r[n - 1])));
	FUZZ_CHECK(keyword_normalize(r, again, n + 1) == 0 && strcmp(again, r) == 0);
	free(again);
}

/* A buffer of exactly the result's size works, one byte less does not. */
static void
check_sizes(const char *text, const char *r)
{
	size_t n = strlen(r);
	char *buf = fuzz_xmalloc(n + 1);

	FUZZ_CHECK(keyword_normalize(text, buf, n + 1) == 0 && strcmp(buf, r) == 0);
	FUZZ_CHECK(keyword_normalize(text, buf, n) == -1);
	FUZZ_CHECK(keyword_normalize(text, buf, 0) == -1);
	free(buf);
}

static void
check_match(const char *text, const char *r)
{
	struct keyword_match m;
	struct gsm_info info;
	const char *reply;
	int i, want = -1;

	for (i = 0; i < KEYWORD_COUNT; i++) {
		if (strcmp(keyword_name(i), r) == 0)
			want = i;
	}
	keyword_match(text, &m);
	FUZZ_CHECK(m.index == want);
	if (want == -1) {
		FUZZ_CHECK(m.action == KEYWORD_NONE && keyword_reply(m.action, m.lang) == NULL);
		return;
	}
	FUZZ_CHECK(m.action != KEYWORD_NONE && strcmp(keyword_action_to_text(m.action), "none") != 0);
	reply = keyword_reply(m.action, m.lang);
	FUZZ_CHECK(reply != NULL && gsm_analyze(reply, &info) == 0);
	FUZZ_CHECK(info.coding == GSM_CODING_GSM7 && info.segments == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size), *r = fuzz_xmalloc(strlen(text) + 1);
	struct keyword_match m;

	if (keyword_normalize(text, r, strlen(text) + 1) == 0) {
		FUZZ_CHECK(fuzz_utf8_valid(text));
		check_normalized(r);
		check_sizes(text, r);
		check_match(text, r);
	} else {
		/* Every character becomes at most one, so a valid text always fits in its own length. */
		FUZZ_CHECK(!fuzz_utf8_valid(text));
		keyword_match(text, &m);
		FUZZ_CHECK(m.action == KEYWORD_NONE && m.index == -1);
	}
	keyword_match(NULL, &m);
	FUZZ_CHECK(m.action == KEYWORD_NONE);
	free(r);
	free(text);
	return 0;
}
