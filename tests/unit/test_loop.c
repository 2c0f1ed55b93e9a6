/* test_loop.c -- the event loop: timers in order, cancelled timers, work
 * posted from other threads, descriptor readiness, and signals. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "check.h"
#include "common/loop.h"

/* What the callbacks saw, in order. */
static int seen[64];
static size_t nseen;
static struct loop *loop;

static void record(void *arg)
{
	if (nseen < 64)
		seen[nseen++] = (int)(intptr_t)arg;
}

static void stop(void *arg)
{
	(void)arg;
	loop_stop(loop);
}

static int ticks;
static uint64_t ticker;

static void tick(void *arg)
{
	(void)arg;
	if (++ticks == 3)
		loop_cancel(loop, ticker); /* a timer may cancel itself */
}

/* One-off timers run by due time, those due together in the order set;
 * a cancelled one never runs; a periodic one runs until cancelled. */
static void test_timers(void)
{
	uint64_t gone, start = loop_now_ms();

	nseen = 0;
	CHECK(loop_after(loop, 60, record, (void *)3) != 0);
	CHECK(loop_after(loop, 20, record, (void *)1) != 0);
	CHECK(loop_after(loop, 40, record, (void *)2) != 0);
	CHECK(loop_after(loop, 40, record, (void *)22) != 0);
	gone = loop_after(loop, 30, record, (void *)99);
	CHECK(gone != 0);
	loop_cancel(loop, gone);
	loop_cancel(loop, gone); /* gone already: nothing happens */
	ticks = 0;
	ticker = loop_every(loop, 5, tick, NULL);
	CHECK(ticker != 0);
	CHECK(loop_after(loop, 100, stop, NULL) != 0);
	CHECK(loop_run(loop) == 0);
	CHECK(nseen == 4);
	CHECK(seen[0] == 1 && seen[1] == 2 && seen[2] == 22 && seen[3] == 3);
	CHECK(ticks == 3);
	CHECK(loop_now_ms() - start >= 100);
}

#define THREADS 4
#define POSTS 2000

static int last[THREADS];
static int out_of_order, done_threads;

struct post {
	int thread, n;
};

static void take(void *arg)
{
	struct post *p = arg;

	if (p->n != last[p->thread] + 1)
		out_of_order++;
	last[p->thread] = p->n;
	free(p);
}

static void thread_done(void *arg)
{
	(void)arg;
	if (++done_threads == THREADS)
		loop_stop(loop);
}

static void *poster(void *arg)
{
	int t = (int)(intptr_t)arg, i;
	struct post *p;

	for (i = 1; i <= POSTS; i++) {
		p = malloc(sizeof(*p));
		if (!p)
			abort();
		p->thread = t;
		p->n = i;
		if (loop_post(loop, take, p) != 0)
			abort();
	}
	loop_post(loop, thread_done, NULL);
	return NULL;
}

/* Work posted from several threads at once all runs on the loop's thread,
 * each thread's in the order posted. */
static void test_post(void)
{
	pthread_t th[THREADS];
	int i;

	for (i = 0; i < THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, poster, (void *)(intptr_t)i) == 0);
	CHECK(loop_run(loop) == 0);
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK(last[i] == POSTS);
	}
	CHECK(out_of_order == 0);
}

/* A fresh loop for each test: a stopped one stays stopped. */
static void fresh(void)
{
	char msg[256];

	loop_free(loop);
	loop = loop_new(msg, sizeof(msg));
	if (!loop) {
		fprintf(stderr, "%s\n", msg);
		exit(1);
	}
}

static int pipe_fds[2];
static char got[16];
static size_t ngot;

static void readable(int fd, uint32_t events, void *arg)
{
	ssize_t n;

	(void)arg;
	CHECK(events & EPOLLIN);
	n = read(fd, got + ngot, sizeof(got) - 1 - ngot);
	if (n > 0)
		ngot += (size_t)n;
	if (ngot >= 5)
		loop_fd_remove(loop, fd);
}

static void write_some(void *arg)
{
	CHECK(write(pipe_fds[1], arg, strlen(arg)) == (ssize_t)strlen(arg));
}

/* A watched descriptor's callback runs when it is readable; a removed one
 * is no longer watched. */
static void test_fd(void)
{
	CHECK(pipe(pipe_fds) == 0);
	CHECK(loop_fd_add(loop, pipe_fds[0], EPOLLIN, readable, NULL) == 0);
	CHECK(loop_fd_add(loop, pipe_fds[0], EPOLLIN, readable, NULL) == -1 && errno == EEXIST);
	loop_after(loop, 10, write_some, "abc");
	loop_after(loop, 30, write_some, "de");
	/* Removed by then: data waiting on it no longer calls it. */
	loop_after(loop, 60, write_some, "x");
	loop_after(loop, 100, stop, NULL);
	CHECK(loop_run(loop) == 0);
	got[ngot] = '\0';
	CHECK_STR_EQ(got, "abcde");
	CHECK(loop_fd_modify(loop, pipe_fds[0], EPOLLIN) == -1);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
}

static int hups;

static void on_hup(void *arg)
{
	(void)arg;
	hups++;
}

static void send_signal(void *arg)
{
	kill(getpid(), (int)(intptr_t)arg);
}

/* SIGHUP calls its function and the loop goes on; sig (SIGTERM, SIGINT)
 * stops it. */
static void test_signal(int sig)
{
	loop_on_hup(loop, on_hup, NULL);
	hups = 0;
	nseen = 0;
	loop_after(loop, 10, send_signal, (void *)(intptr_t)SIGHUP);
	loop_after(loop, 30, record, (void *)1);
	loop_after(loop, 50, send_signal, (void *)(intptr_t)sig);
	loop_after(loop, 5000, record, (void *)2);
	CHECK(loop_run(loop) == 0);
	CHECK(hups == 1);
	CHECK(nseen == 1);
	CHECK(loop_stopping(loop));
}

static void *stopper(void *arg)
{
	(void)arg;
	usleep(20000);
	loop_stop(loop);
	return NULL;
}

/* loop_stop() from another thread wakes a loop with nothing to do. */
static void test_stop_from_thread(void)
{
	pthread_t th;

	CHECK(pthread_create(&th, NULL, stopper, NULL) == 0);
	CHECK(loop_run(loop) == 0);
	pthread_join(th, NULL);
}

static int passes;

static int64_t count_pass(void *arg)
{
	(void)arg;
	if (++passes == 3)
		loop_stop(loop);
	return 0; /* at once again */
}

/* A pass function runs after every pass, and asks for the next at once. */
static void test_pass(void)
{
	CHECK(loop_on_pass(loop, count_pass, NULL) == 0);
	CHECK(loop_run(loop) == 0);
	CHECK(passes == 3);
	loop_off_pass(loop, count_pass, NULL);
}

static void leftover(void *arg)
{
	*(int *)arg = 1;
}

int main(void)
{
	int ran = 0;

	fresh();
	test_timers();
	fresh();
	test_post();
	fresh();
	test_fd();
	fresh();
	test_signal(SIGTERM);
	fresh();
	test_signal(SIGINT);
	fresh();
	test_stop_from_thread();
	fresh();
	test_pass();
	/* What is posted after the loop stopped runs when it is freed. */
	CHECK(loop_post(loop, leftover, &ran) == 0);
	loop_free(loop);
	CHECK(ran == 1);
	return check_finish();
}
