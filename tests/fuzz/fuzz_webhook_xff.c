/*
 * libFuzzer target: the client address of a request behind proxies (webhook_addr_canonical,
 * webhook_forwarded_client). Input: the peer address, the trusted proxies (comma-separated), each on a
 * line, then the X-Forwarded-For header (no third line: no header). Checks that canonical texts are
 * addresses and canonical again, and compares the client chosen with an independent walk of the header:
 * the rightmost hop that is not a trusted proxy, the leftmost when all are, the peer itself when the
 * peer is not trusted, and -1 with the peer when a hop is not an address.
 */
#include <arpa/inet.h>

#include "fuzz_webhook.h"

#define MAX_TRUSTED 32

/* Canonicalise s into out; when it works, out must be an address whose canonical text is itself. */
static int
canonical(const char *s, char out[WEBHOOK_ADDR_MAX])
{
	unsigned char a[16];
	char again[WEBHOOK_ADDR_MAX];

	if (webhook_addr_canonical(s, out, WEBHOOK_ADDR_MAX) == -1)
		return -1;
	FUZZ_CHECK(strlen(out) < WEBHOOK_ADDR_MAX);
	FUZZ_CHECK(inet_pton(AF_INET, out, a) == 1 || inet_pton(AF_INET6, out, a) == 1);
	FUZZ_CHECK(webhook_addr_canonical(out, again, sizeof(again)) == 0 && strcmp(again, out) == 0);
	return 0;
}

static int
is_in(const char *addr, char (*list)[WEBHOOK_ADDR_MAX], size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(addr, list[i]) == 0)
			return 1;
	}
	return 0;
}

/* The client the header names, by walking its hops from the right. 0, or -1 when a hop on the way
 * is not an address. */
static int
expected_client(const char *xff, char (*trusted)[WEBHOOK_ADDR_MAX], size_t n, char out[WEBHOOK_ADDR_MAX])
{
	size_t len = strlen(xff), end = len;

	for (;;) {
		size_t start = end, a, b;
		char *hop;
		int rc;

		while (start > 0 && xff[start - 1] != ',')
			start--;
		for (a = start; a < end && (xff[a] == ' ' || xff[a] == '\t'); a++)
			;
		for (b = end; b > a && (xff[b - 1] == ' ' || xff[b - 1] == '\t'); b--)
			;
		hop = fuzz_strndup((const uint8_t *)xff + a, b - a);
		rc = canonical(hop, out);
		free(hop);
		if (rc == -1)
			return -1;
		if (!is_in(out, trusted, n) || start == 0)
			return 0;
		end = start - 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	char *peer_in = fuzz_take_line(&in), *list = fuzz_take_line(&in), *xff = NULL, *tok, *save = NULL;
	char trusted[MAX_TRUSTED][WEBHOOK_ADDR_MAX], peer[WEBHOOK_ADDR_MAX], out[WEBHOOK_ADDR_MAX],
	    want[WEBHOOK_ADDR_MAX];
	const char *tv[MAX_TRUSTED];
	size_t n = 0, i;
	int rc, wrc;

	const uint8_t *nl = memchr(data, '\n', size);

	if (nl != NULL && memchr(nl + 1, '\n', size - (size_t)(nl + 1 - data)) != NULL)
		xff = fuzz_strndup(in.p, in.n); /* a third line: the header */
	if (canonical(peer_in, peer) == -1)
		memcpy(peer, "192.0.2.1", sizeof("192.0.2.1")); /* a socket's peer is always an address */
	for (tok = strtok_r(list, ",", &save); tok != NULL && n < MAX_TRUSTED;
	     tok = strtok_r(NULL, ",", &save)) {
		if (canonical(tok, trusted[n]) == 0)
			n++;
	}
	for (i = 0; i < n; i++)
		tv[i] = trusted[i];

	rc = webhook_forwarded_client(peer, xff, tv, n, out, sizeof(out));
	FUZZ_CHECK(memchr(out, '\0', sizeof(out)) != NULL);
	if (xff == NULL || !is_in(peer, trusted, n)) {
		FUZZ_CHECK(rc == 0 && strcmp(out, peer) == 0);
	} else {
		wrc = expected_client(xff, trusted, n, want);
		FUZZ_CHECK(rc == wrc);
		FUZZ_CHECK(strcmp(out, rc == 0 ? want : peer) == 0);
	}
	free(xff);
	free(list);
	free(peer_in);
	return 0;
}
