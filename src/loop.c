/* The daemon's one event loop: epoll for descriptors, a small timer list, signals via signalfd. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "payremind/log.h"
#include "payremind/loop.h"

#define LOOP_MAX_FD 65536
#define LOOP_MAX_SIGNALS 8

struct loop_watch {
	loop_fd_cb cb;
	void *arg;
	unsigned events;
};

struct loop_timer {
	struct loop *loop;
	struct loop_timer *next;
	loop_cb cb;
	void *arg;
	int64_t due; /* monotonic ms, -1 = stopped */
};

struct loop_sig {
	int signo;
	loop_signal_cb cb;
	void *arg;
};

struct loop {
	int epfd;
	int sigfd;
	sigset_t sigmask;
	struct loop_watch *watch; /* indexed by fd */
	struct loop_timer *timers;
	struct loop_sig sigs[LOOP_MAX_SIGNALS];
	int nsigs;
	int stop;
	int (*busy)(void *arg); /* the test clock: 1 while replies are awaited */
	void *busy_arg;
};

/* The tests' simulated clock (below); never on without -DPAYREMIND_TEST_CLOCK=ON. */
static struct {
	int state; /* 0 not read yet, 1 on, -1 off */
	double now;
	double end; /* SIGTERM to itself once there (0: never) */
} loop_clock;

#ifdef PAYREMIND_TEST_CLOCK
#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>

/* One simulated clock for several daemons (PAYREMIND_TEST_CLOCK_SHARED="FILE N"): a file mapped by each,
 * under flock. The clock moves only when every daemon there is idle, to the earliest of their next
 * timers, and not before N daemons have joined: a conservative discrete-event simulation, so that two
 * daemons on two short codes live the same simulated day. A daemon leaves at exit; one that dies
 * (its pid gone) no longer holds the clock. */
#define LOOP_SHARE_SLOTS 8

struct loop_share {
	uint32_t gen;    /* futex word: bumped each time the clock moves */
	uint32_t joined; /* daemons that ever joined */
	double now;
	struct {
		int32_t pid; /* 0: a free slot */
		int32_t idle;
		double wants; /* idle until then (its next timer; INFINITY: none) */
	} slot[LOOP_SHARE_SLOTS];
};

static struct {
	int fd;
	struct loop_share *m;
	int me;
	uint32_t want;
} loop_share;

static void
loop_share_lock(int op)
{
	while (flock(loop_share.fd, op) == -1)
		if (errno != EINTR)
			fatal("PAYREMIND_TEST_CLOCK_SHARED: flock");
}

static void
loop_share_leave(void)
{
	loop_share_lock(LOCK_EX);
	loop_share.m->slot[loop_share.me].pid = 0;
	loop_share.m->gen++;
	loop_share_lock(LOCK_UN);
	syscall(SYS_futex, &loop_share.m->gen, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

/* Join the shared clock at FILE (created if need be), which starts at start; its instant. */
static double
loop_share_join(const char *v, double start)
{
	char path[512];
	unsigned want;
	struct loop_share *m;
	int i;

	if (sscanf(v, "%511s %u", path, &want) != 2 || want < 1 || want > LOOP_SHARE_SLOTS)
		fatalx("PAYREMIND_TEST_CLOCK_SHARED: want \"FILE N\" (N 1..%d), got \"%s\"", LOOP_SHARE_SLOTS,
		    v);
	if ((loop_share.fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		fatal("PAYREMIND_TEST_CLOCK_SHARED: %s", path);
	loop_share_lock(LOCK_EX);
	if (ftruncate(loop_share.fd, sizeof(*m)) == -1 ||
	    (m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, loop_share.fd, 0)) == MAP_FAILED)
		fatal("PAYREMIND_TEST_CLOCK_SHARED: %s", path);
	if (m->joined == 0)
		m->now = start;
	for (i = 0; i < LOOP_SHARE_SLOTS && m->slot[i].pid != 0; i++)
		;
	if (i == LOOP_SHARE_SLOTS)
		fatalx("PAYREMIND_TEST_CLOCK_SHARED: %s: all %d slots taken", path, LOOP_SHARE_SLOTS);
	m->slot[i].pid = (int32_t)getpid();
	m->slot[i].idle = 0;
	m->joined++;
	loop_share.m = m;
	loop_share.me = i;
	loop_share.want = want;
	loop_share_lock(LOCK_UN);
	atexit(loop_share_leave);
	return m->now;
}

/* The loop is idle until wants (INFINITY: until an event): say so, move the shared clock if every
 * daemon is idle, and wait until it moves or an event comes. The events ready (0: the clock moved). */
static int
loop_share_idle(int epfd, struct epoll_event *evs, int nevs, double wants)
{
	struct loop_share *m = loop_share.m;
	struct timespec tick = { 0, 2000000 }; /* look at the descriptors every 2 ms while waiting */
	uint32_t gen;
	double next;
	int i, n, all;

	for (;;) {
		loop_share_lock(LOCK_EX);
		m->slot[loop_share.me].idle = 1;
		m->slot[loop_share.me].wants = wants;
		for (i = 0, next = INFINITY, all = m->joined >= loop_share.want; i < LOOP_SHARE_SLOTS && all;
		     i++) {
			if (m->slot[i].pid == 0 || (kill(m->slot[i].pid, 0) == -1 && errno == ESRCH))
				continue;
			all = m->slot[i].idle;
			next = fmin(next, m->slot[i].wants);
		}
		if (all && next > m->now && next < INFINITY) {
			m->now = next;
			m->gen++;
			syscall(SYS_futex, &m->gen, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
		}
		gen = m->gen;
		if (m->now != loop_clock.now) { /* moved (never past wants): timers may be due */
			m->slot[loop_share.me].idle = 0;
			loop_clock.now = m->now;
			loop_share_lock(LOCK_UN);
			return 0;
		}
		loop_share_lock(LOCK_UN);
		if ((n = epoll_wait(epfd, evs, nevs, 0)) != 0) {
			loop_share_lock(LOCK_EX);
			m->slot[loop_share.me].idle = 0;
			loop_clock.now = m->now;
			loop_share_lock(LOCK_UN);
			return n;
		}
		syscall(SYS_futex, &m->gen, FUTEX_WAIT, gen, &tick, NULL, 0);
	}
}

/* The tests' simulated clock, built only with -DPAYREMIND_TEST_CLOCK=ON (never in a package).
 * PAYREMIND_TEST_CLOCK="START [END]" (epoch seconds) starts every clock of the loop there (instants, durations,
 * timers: windows, claims, the rate limiter, polls, backoff), and time then moves only when the loop has
 * nothing to do: with no event ready and nothing outstanding (loop_set_busy's answer: a query or a
 * request awaiting its reply), it jumps to the next timer. A reply is waited for in real time with the
 * clock stopped, so the simulation does not depend on how fast this machine is: a simulated day runs in
 * about the time its work takes. At END the daemon sends itself SIGTERM. */

static int
loop_clock_on(void)
{
	const char *v;
	char *end;

	if (loop_clock.state == 0) {
		loop_clock.state = -1;
		if ((v = getenv("PAYREMIND_TEST_CLOCK")) != NULL) {
			loop_clock.now = strtod(v, &end);
			if (*end == ' ')
				loop_clock.end = strtod(end, &end);
			if (end == v || *end != '\0' || !(loop_clock.now > 0))
				fatalx(
				    "PAYREMIND_TEST_CLOCK: want \"START [END]\" in epoch seconds, got \"%s\"",
				    v);
			loop_clock.state = 1;
			if ((v = getenv("PAYREMIND_TEST_CLOCK_SHARED")) != NULL)
				loop_clock.now = loop_share_join(v, loop_clock.now);
			log_warnx("PAYREMIND_TEST_CLOCK: simulated time from %.0f, moving only when idle%s",
			    loop_clock.now, loop_share.m != NULL ? " (shared)" : "");
		}
	}
	return loop_clock.state == 1;
}
#else
#define loop_clock_on() 0
#define loop_share_idle(epfd, evs, nevs, wants) 0
static struct {
	void *m;
} loop_share;
#endif

int
loop_test_clock(double *now)
{
	if (!loop_clock_on())
		return 0;
	*now = loop_clock.now;
	return 1;
}

int64_t
loop_now_ms(void)
{
	struct timespec ts;

	if (loop_clock_on())
		return (int64_t)(loop_clock.now * 1000);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
loop_mono_s(void)
{
	struct timespec ts;

	if (loop_clock_on())
		return loop_clock.now;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double
loop_wall_s(void)
{
	struct timespec ts;

	if (loop_clock_on())
		return loop_clock.now;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct loop *
loop_new(void)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (loop == NULL)
		return NULL;
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	loop->watch = calloc(LOOP_MAX_FD, sizeof(*loop->watch));
	if (loop->watch == NULL || (loop->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		free(loop->watch);
		free(loop);
		return NULL;
	}
	return loop;
}

void
loop_free(struct loop *loop)
{
	struct loop_timer *t, *next;

	if (loop == NULL)
		return;
	for (t = loop->timers; t != NULL; t = next) {
		next = t->next;
		free(t);
	}
	if (loop->sigfd != -1)
		close(loop->sigfd);
	close(loop->epfd);
	free(loop->watch);
	free(loop);
}

int
loop_fd(struct loop *loop, int fd, unsigned events, loop_fd_cb cb, void *arg)
{
	struct epoll_event ev = { 0 };
	struct loop_watch *w;
	int op;

	if (fd < 0 || fd >= LOOP_MAX_FD) {
		errno = EBADF;
		return -1;
	}
	w = &loop->watch[fd];
	if (events == 0) {
		if (w->events != 0 && epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) == -1 &&
		    errno != EBADF && errno != ENOENT)
			return -1;
		memset(w, 0, sizeof(*w));
		return 0;
	}
	op = w->events != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	ev.events = ((events & LOOP_READ) ? EPOLLIN : 0) | ((events & LOOP_WRITE) ? EPOLLOUT : 0);
	ev.data.fd = fd;
	if (epoll_ctl(loop->epfd, op, fd, &ev) == -1) {
		if (op != EPOLL_CTL_MOD || errno != ENOENT ||
		    epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
			return -1;
	}
	w->cb = cb;
	w->arg = arg;
	w->events = events;
	return 0;
}

struct loop_timer *
loop_timer_new(struct loop *loop, loop_cb cb, void *arg)
{
	struct loop_timer *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->loop = loop;
	t->cb = cb;
	t->arg = arg;
	t->due = -1;
	t->next = loop->timers;
	loop->timers = t;
	return t;
}

void
loop_timer_set(struct loop_timer *t, int64_t ms)
{
	t->due = ms < 0 ? -1 : loop_now_ms() + ms;
}

int
loop_timer_armed(const struct loop_timer *t)
{
	return t->due >= 0;
}

/* Milliseconds until the next timer (-1: none), and fire the ones that are due. */
static int
loop_timers_run(struct loop *loop)
{
	struct loop_timer *t;
	int64_t now = loop_now_ms(), next = -1;
	int fired;

	do {
		fired = 0;
		for (t = loop->timers; t != NULL; t = t->next) {
			if (t->due >= 0 && t->due <= now) {
				t->due = -1;
				t->cb(t->arg);
				fired = 1;
				break; /* the callback may have changed the list's timers: rescan */
			}
		}
	} while (fired && !loop->stop);
	for (t = loop->timers; t != NULL; t = t->next)
		if (t->due >= 0 && (next < 0 || t->due - now < next))
			next = t->due - now;
	return next < 0 ? -1 : (int)(next > 60000 ? 60000 : next);
}

static void
loop_signal_read(int fd, unsigned events, void *arg)
{
	struct loop *loop = arg;
	struct signalfd_siginfo si;
	int i;

	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si))
		for (i = 0; i < loop->nsigs; i++)
			if (loop->sigs[i].signo == (int)si.ssi_signo)
				loop->sigs[i].cb((int)si.ssi_signo, loop->sigs[i].arg);
}

int
loop_signal(struct loop *loop, int signo, loop_signal_cb cb, void *arg)
{
	int fd;

	if (loop->nsigs == LOOP_MAX_SIGNALS) {
		errno = ENOSPC;
		return -1;
	}
	sigaddset(&loop->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &loop->sigmask, NULL) == -1)
		return -1;
	fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd == -1)
		return -1;
	loop->sigfd = fd;
	loop->sigs[loop->nsigs++] = (struct loop_sig){ signo, cb, arg };
	return loop_fd(loop, fd, LOOP_READ, loop_signal_read, loop);
}

void
loop_set_busy(struct loop *loop, int (*busy)(void *arg), void *arg)
{
	loop->busy = busy;
	loop->busy_arg = arg;
}

int
loop_run(struct loop *loop)
{
	struct epoll_event evs[64];
	int i, n, timeout;

	loop->stop = 0;
	while (!loop->stop) {
		timeout = loop_timers_run(loop);
		if (loop->stop)
			break;
		log_flush(); /* the lines of this iteration, in one write, before waiting */
		if (loop_clock_on()) {
			/* what is ready now; else wait for outstanding replies with the clock stopped; else jump
			 * to the next timer (or, with none, wait for a signal) */
			if ((n = epoll_wait(loop->epfd, evs, 64, 0)) == 0) {
				if (loop->busy != NULL && loop->busy(loop->busy_arg))
					n = epoll_wait(loop->epfd, evs, 64, 100);
				else if (loop_share.m != NULL || timeout >= 0) {
					double wants =
					    timeout >= 0 ? loop_clock.now + timeout / 1000.0 : INFINITY;

					if (loop_share.m == NULL)
						loop_clock.now = wants;
					else if ((n = loop_share_idle(loop->epfd, evs, 64, wants)) != 0)
						goto events;
					if (loop_clock.end > 0 && loop_clock.now >= loop_clock.end) {
						loop_clock.end = 0;
						raise(
						    SIGTERM); /* the simulated day is over: stop as on systemctl stop */
					}
					continue;
				} else
					n = epoll_wait(loop->epfd, evs, 64, -1);
			}
		} else
			n = epoll_wait(loop->epfd, evs, 64, timeout);
	events:
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (i = 0; i < n; i++) {
			struct loop_watch *w = &loop->watch[evs[i].data.fd];
			unsigned ev = 0;

			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				ev |= LOOP_READ;
			if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				ev |= LOOP_WRITE;
			if (w->cb != NULL)
				w->cb(evs[i].data.fd,
				    ev & (w->events | (evs[i].events & (EPOLLHUP | EPOLLERR) ? 3u : 0u)),
				    w->arg);
		}
	}
	return 0;
}

void
loop_break(struct loop *loop)
{
	loop->stop = 1;
}
