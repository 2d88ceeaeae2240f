/* libcurl multi glued to the loop with CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "payremind/http.h"
#include "payremind/loop.h"
#include "payremind/log.h"

#define HTTP_MAX_BODY (64 * 1024)

struct http_job {
	struct http_job *next_free;
	struct http *http;
	CURL *easy;
	struct curl_slist *headers;
	struct gw_request req;
	char *body;
	size_t body_len, body_cap;
	http_cb cb;
	void *arg;
};

struct http {
	struct loop *loop;
	CURLM *multi;
	struct loop_timer *timer;
	struct http_job *free_jobs; /* finished jobs kept with their easy handle for reuse */
	int in_flight;
};

static void http_check_done(struct http *http);

static void
http_socket_event(int fd, unsigned events, void *arg)
{
	struct http *http = arg;
	int running, flags = 0;

	if (events & LOOP_READ)
		flags |= CURL_CSELECT_IN;
	if (events & LOOP_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(http->multi, fd, flags, &running);
	http_check_done(http);
}

static int
http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http *http = userp;
	unsigned events = 0;

	(void)easy;
	(void)socketp;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= LOOP_READ;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= LOOP_WRITE;
	if (loop_fd(http->loop, fd, what == CURL_POLL_REMOVE ? 0 : events, http_socket_event, http) == -1)
		log_warn("http: watch socket %d", (int)fd);
	return 0;
}

static void
http_timeout(void *arg)
{
	struct http *http = arg;
	int running;

	curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_check_done(http);
}

static int
http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *http = userp;

	(void)multi;
	loop_timer_set(http->timer, timeout_ms);
	return 0;
}

struct http *
http_new(struct loop *loop, int max_connections)
{
	struct http *http = calloc(1, sizeof(*http));

	if (http == NULL || (http->multi = curl_multi_init()) == NULL)
		fatalx("http_new: out of memory");
	http->loop = loop;
	http->timer = loop_timer_new(loop, http_timeout, http);
	curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
	curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
	curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
	curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
	curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_connections);
	curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS, (long)max_connections);
	return http;
}

static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_job *job = userp;
	size_t n = size * nmemb, keep = n;

	if (job->body_len + keep > HTTP_MAX_BODY)
		keep = HTTP_MAX_BODY - job->body_len; /* a huge reply is cut, not fatal */
	if (job->body_len + keep + 1 > job->body_cap) {
		size_t cap = job->body_cap ? job->body_cap * 2 : 1024;
		char *p;

		while (cap < job->body_len + keep + 1)
			cap *= 2;
		if ((p = realloc(job->body, cap)) == NULL)
			return 0;
		job->body = p;
		job->body_cap = cap;
	}
	memcpy(job->body + job->body_len, data, keep);
	job->body_len += keep;
	job->body[job->body_len] = '\0';
	return n;
}

static struct http_job *
http_job_get(struct http *http)
{
	struct http_job *job = http->free_jobs;

	if (job != NULL) {
		http->free_jobs = job->next_free;
		job->body_len = 0;
		return job;
	}
	if ((job = calloc(1, sizeof(*job))) == NULL || (job->easy = curl_easy_init()) == NULL)
		fatalx("http: out of memory");
	job->http = http;
	return job;
}

static void
http_job_put(struct http *http, struct http_job *job)
{
	curl_slist_free_all(job->headers);
	job->headers = NULL;
	gw_request_free(&job->req);
	job->next_free = http->free_jobs;
	http->free_jobs = job;
}

int
http_submit(struct http *http, struct gw_request *req, long timeout_ms, long connect_timeout_ms, http_cb cb,
    void *arg)
{
	struct http_job *job = http_job_get(http);
	CURL *e = job->easy;
	char clock[64];
	double now;
	int i;

	job->req = *req;
	memset(req, 0, sizeof(*req));
	job->cb = cb;
	job->arg = arg;
	for (i = 0; i < job->req.nheaders; i++)
		job->headers = curl_slist_append(job->headers, job->req.headers[i]);
	job->headers = curl_slist_append(job->headers, "Expect:");
	if (loop_test_clock(&now)) { /* the instant the request leaves, for the tests' sandbox to record */
		snprintf(clock, sizeof(clock), "X-Payremind-Test-Clock: %.3f", now);
		job->headers = curl_slist_append(job->headers, clock);
	}
	curl_easy_setopt(e, CURLOPT_URL, job->req.url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, job->headers);
	/* A reused handle keeps its options (no curl_easy_reset: every request sets the same ones); the
	 * method is the one that changes. */
	if (!job->req.post)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, job->req.body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)job->req.body_len);
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, job);
	curl_easy_setopt(e, CURLOPT_PRIVATE, job);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (curl_multi_add_handle(http->multi, e) != CURLM_OK) {
		http_job_put(http, job);
		return -1;
	}
	http->in_flight++;
	return 0;
}

/* Deliver a finished transfer. Everything needed is read before the handle leaves the multi. */
static void
http_deliver(struct http *http, CURL *easy, CURLcode code)
{
	struct http_job *job;
	struct http_result res = { 0 };
	struct curl_header *h = NULL;
	curl_off_t reqsize = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&job);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res.status);
	curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &reqsize);
	curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME, &res.seconds);
	if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
		res.retry_after = h->value;
	res.curl_code = (int)code;
	res.request_sent = reqsize > 0;
	res.body = job->body ? job->body : "";
	res.body_len = job->body_len;
	http->in_flight--;
	job->cb(&res, job->arg);
	curl_multi_remove_handle(http->multi, easy);
	http_job_put(http, job);
}

/* Drain every finished transfer: curl_multi_info_read until NULL; each message is copied before
 * curl_multi_remove_handle invalidates it. */
static void
http_check_done(struct http *http)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(http->multi, &left)) != NULL) {
		CURL *easy = msg->easy_handle;
		CURLcode code = msg->data.result;

		if (msg->msg == CURLMSG_DONE)
			http_deliver(http, easy, code);
	}
}

int
http_in_flight(const struct http *http)
{
	return http->in_flight;
}

void
http_free(struct http *http)
{
	struct http_job *job;

	if (http == NULL)
		return;
	while ((job = http->free_jobs) != NULL) {
		http->free_jobs = job->next_free;
		curl_easy_cleanup(job->easy);
		free(job->body);
		free(job);
	}
	curl_multi_cleanup(http->multi);
	free(http);
}
