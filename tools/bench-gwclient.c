/* bench-gwclient: the gateway ceiling for bench/: a plain libcurl multi client sending json-dialect SMS requests. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <curl/curl.h>
#include <uuid/uuid.h>

#include "payremind/loop.h"

#define GWC_MAX_IN_FLIGHT 1024
#define GWC_BODY_MAX 1024

/* A text as long as the default French template rendered with a link (GSM-7, 2 segments). */
static const char gwc_text[] =
    "ARO Recouvrement: un paiement est attendu sur votre dossier. Payez en ligne: "
    "https://pay.aro.ca/p/AAAAAAAAAAAAAAAAAAAAAA Questions: 1-877-322-1414 (lun-ven 8h-20h HE). "
    "Repondez ARRET pour ne plus recevoir ces SMS.";

/* One easy handle, reused for request after request so its connection stays alive. */
struct gwc_slot {
	CURL *easy;
	struct curl_slist *headers;
	char body[GWC_BODY_MAX];
	char reply[256];
	size_t reply_len;
};

struct gwc {
	const char *url;
	long total;    /* requests to send */
	int in_flight; /* at once */
	long started;  /* requests handed to libcurl */
	long ok, failed;
	CURLM *multi;
	struct gwc_slot *slots;
};

static void
gwc_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: bench-gwclient --url URL [-n REQUESTS] [-m IN_FLIGHT]\n"
	    "  sends REQUESTS (100000) json-dialect SMS requests with unique Idempotency-Keys,\n"
	    "  IN_FLIGHT (64) at once on kept-alive connections; prints requests/s\n");
}

/* Keep the start of the reply (for the first error's message); the rest is dropped. */
static size_t
gwc_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct gwc_slot *slot = userp;
	size_t n = size * nmemb, room = sizeof(slot->reply) - 1 - slot->reply_len;
	size_t keep = n < room ? n : room;

	memcpy(slot->reply + slot->reply_len, data, keep);
	slot->reply_len += keep;
	slot->reply[slot->reply_len] = '\0';
	return n;
}

/* Request number seq on slot: a new reminder id (uuid) as reference and Idempotency-Key, a distinct number. */
static void
gwc_start(struct gwc *g, struct gwc_slot *slot, long seq)
{
	char key[40], hdr[64];
	uuid_t u;
	int len;

	uuid_generate_random(u);
	uuid_unparse_lower(u, key);
	len = snprintf(slot->body, sizeof(slot->body),
	    "{\"from\":\"27022\",\"to\":\"+1514%07ld\",\"text\":\"%s\",\"reference\":\"%s\"}",
	    2000000 + seq % 8000000, gwc_text, key);
	curl_slist_free_all(slot->headers);
	snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
	slot->headers = curl_slist_append(NULL, "Content-Type: application/json");
	slot->headers = curl_slist_append(slot->headers, hdr);
	slot->headers = curl_slist_append(slot->headers, "Expect:");
	slot->reply_len = 0;
	curl_easy_setopt(slot->easy, CURLOPT_URL, g->url);
	curl_easy_setopt(slot->easy, CURLOPT_HTTPHEADER, slot->headers);
	curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDS, slot->body);
	curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(slot->easy, CURLOPT_WRITEFUNCTION, gwc_write_cb);
	curl_easy_setopt(slot->easy, CURLOPT_WRITEDATA, slot);
	curl_easy_setopt(slot->easy, CURLOPT_PRIVATE, slot);
	curl_easy_setopt(slot->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(slot->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(slot->easy, CURLOPT_TIMEOUT_MS, 10000L);
	if (curl_multi_add_handle(g->multi, slot->easy) != CURLM_OK) {
		fprintf(stderr, "bench-gwclient: curl_multi_add_handle failed\n");
		exit(1);
	}
	g->started++;
}

/* Count each finished request (2xx = ok) and start the next one on the same handle. */
static void
gwc_reap(struct gwc *g)
{
	struct gwc_slot *slot;
	CURLMsg *msg;
	long status = 0;
	int left;

	while ((msg = curl_multi_info_read(g->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		if (msg->data.result == CURLE_OK && status >= 200 && status < 300) {
			g->ok++;
		} else {
			if (g->failed++ == 0)
				fprintf(stderr, "bench-gwclient: first failure: %s, http %ld: %s\n",
				    curl_easy_strerror(msg->data.result), status, slot->reply);
		}
		curl_multi_remove_handle(g->multi, slot->easy);
		if (g->started < g->total)
			gwc_start(g, slot, g->started);
	}
}

static void
gwc_parse(int argc, char **argv, struct gwc *g)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "requests", required_argument, NULL, 'n' },
		{ "in-flight", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	g->total = 100000;
	g->in_flight = 64;
	while ((ch = getopt_long(argc, argv, "u:n:m:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			g->url = optarg;
			break;
		case 'n':
			g->total = strtol(optarg, NULL, 10);
			break;
		case 'm':
			g->in_flight = atoi(optarg);
			break;
		case 'h':
			gwc_usage(stdout);
			exit(0);
		default:
			gwc_usage(stderr);
			exit(EX_USAGE);
		}
	}
	if (optind != argc || g->url == NULL || g->total < 1 || g->in_flight < 1 ||
	    g->in_flight > GWC_MAX_IN_FLIGHT) {
		gwc_usage(stderr);
		exit(EX_USAGE);
	}
}

int
main(int argc, char **argv)
{
	struct gwc g = { 0 };
	double t0, secs;
	int i, running = 1;

	gwc_parse(argc, argv, &g);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (g.multi = curl_multi_init()) == NULL ||
	    (g.slots = calloc((size_t)g.in_flight, sizeof(*g.slots))) == NULL) {
		fprintf(stderr, "bench-gwclient: cannot initialise libcurl\n");
		return 1;
	}
	curl_multi_setopt(g.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)g.in_flight);
	curl_multi_setopt(g.multi, CURLMOPT_MAXCONNECTS, (long)g.in_flight);
	t0 = loop_mono_s();
	for (i = 0; i < g.in_flight && g.started < g.total; i++) {
		if ((g.slots[i].easy = curl_easy_init()) == NULL) {
			fprintf(stderr, "bench-gwclient: curl_easy_init failed\n");
			return 1;
		}
		gwc_start(&g, &g.slots[i], g.started);
	}
	while (g.ok + g.failed < g.total) {
		if (curl_multi_perform(g.multi, &running) != CURLM_OK) {
			fprintf(stderr, "bench-gwclient: curl_multi_perform failed\n");
			return 1;
		}
		gwc_reap(&g); /* before waiting: a finished request frees its handle for the next one */
		if (g.ok + g.failed < g.total && curl_multi_poll(g.multi, NULL, 0, 1000, NULL) != CURLM_OK) {
			fprintf(stderr, "bench-gwclient: curl_multi_poll failed\n");
			return 1;
		}
	}
	secs = loop_mono_s() - t0;
	printf("requests=%ld ok=%ld failed=%ld in_flight=%d seconds=%.3f requests_per_s=%.0f\n", g.total,
	    g.ok, g.failed, g.in_flight, secs, (double)g.ok / secs);
	for (i = 0; i < g.in_flight; i++) {
		curl_slist_free_all(g.slots[i].headers);
		curl_easy_cleanup(g.slots[i].easy);
	}
	free(g.slots);
	curl_multi_cleanup(g.multi);
	curl_global_cleanup();
	return g.failed == 0 ? 0 : 1;
}
