/* The daemon's one event loop (epoll): file descriptors, timers and signals. The only place that waits. */
#ifndef PAYREMIND_LOOP_H
#define PAYREMIND_LOOP_H

#include <stdint.h>

#define LOOP_READ 1u
#define LOOP_WRITE 2u

struct loop;
struct loop_timer;

typedef void (*loop_fd_cb)(int fd, unsigned events, void *arg);
typedef void (*loop_cb)(void *arg);
typedef void (*loop_signal_cb)(int signo, void *arg);

/* A new loop, or NULL with errno set. */
struct loop *loop_new(void);
/* Free the loop and its timers (fds are the caller's). */
void loop_free(struct loop *loop);
/* Watch fd for events (LOOP_READ | LOOP_WRITE); events 0 stops watching. 0 or -1 with errno. */
int loop_fd(struct loop *loop, int fd, unsigned events, loop_fd_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* A stopped timer that calls cb(arg) when it fires. */
struct loop_timer *loop_timer_new(struct loop *loop, loop_cb cb, void *arg);
/* Fire once after ms milliseconds (0 = on the next iteration); a negative ms stops the timer. */
void loop_timer_set(struct loop_timer *t, int64_t ms);
/* 1 when the timer is armed. */
int loop_timer_armed(const struct loop_timer *t);
/* Deliver signo through a signalfd to cb (the signal is blocked for normal delivery). 0 or -1. */
int loop_signal(struct loop *loop, int signo, loop_signal_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Run until loop_break. 0, or -1 when epoll fails. */
int loop_run(struct loop *loop);
/* Make loop_run return after the current iteration. */
void loop_break(struct loop *loop);
/* Monotonic clock in milliseconds. */
int64_t loop_now_ms(void);
/* Monotonic clock in seconds, for durations. */
double loop_mono_s(void);
/* Wall clock (Unix time) in seconds, for instants stored in the database. */
double loop_wall_s(void);
/* 1 with *now when the tests' simulated clock runs (PAYREMIND_TEST_CLOCK, in builds with
 * -DPAYREMIND_TEST_CLOCK=ON), else 0. */
int loop_test_clock(double *now);
/* The test clock moves only while busy(arg) says no reply is awaited (unused otherwise). */
void loop_set_busy(struct loop *loop, int (*busy)(void *arg), void *arg);

#endif
