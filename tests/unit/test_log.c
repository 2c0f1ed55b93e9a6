/* test_log.c -- the log's queue (log_queue_start()): with standard error a
 * pipe nobody reads, logging never waits (lines past the queue's bound
 * are dropped), and the stop gives up after its timeout; once the pipe is
 * read again, the lines queued come out, then a line saying how many were
 * dropped. Each case runs in a child process with an alarm, so a log that
 * waits fails the test rather than hanging it. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "common/log.h"

#define LINES 2000

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In the child: standard error is the pipe's end w (a page of buffer),
 * the queue started with max bytes; logs LINES lines of 100 bytes. */
static void child_log_lines(int w, size_t max)
{
	static const char pad[] = "................................................................"
				  "..........";
	int i;

	alarm(20);
	fcntl(w, F_SETPIPE_SZ, 4096);
	dup2(w, STDERR_FILENO);
	if (log_queue_start(max) != 0)
		_exit(3);
	for (i = 0; i < LINES; i++)
		log_msg(LOG_LVL_INFO, "line %d %s", i, pad);
}

static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Nobody reads: logging, the stop and the lines after it never wait. */
static void test_stalled_reader(void)
{
	int p[2], r[2];
	double took[3] = { -1, -1, -1 };
	pid_t pid;

	CHECK(pipe(p) == 0 && pipe(r) == 0);
	pid = fork();
	if (pid == 0) {
		double t0 = now(), t[3];

		close(p[0]);
		close(r[0]);
		child_log_lines(p[1], 65536);
		t[0] = now() - t0;
		t0 = now();
		log_queue_stop(300);
		t[1] = now() - t0;
		t0 = now();
		log_msg(LOG_LVL_INFO, "after the stop");
		t[2] = now() - t0;
		_exit(write(r[1], t, sizeof(t)) == sizeof(t) ? 0 : 4);
	}
	close(p[1]);
	close(r[1]);
	CHECK(wait_child(pid) == 0);
	CHECK(read(r[0], took, sizeof(took)) == sizeof(took));
	/* A blocked write would have taken the alarm's 20 s. */
	CHECK(took[0] >= 0 && took[0] < 5);
	CHECK(took[1] >= 0.25 && took[1] < 5);
	CHECK(took[2] >= 0 && took[2] < 1);
	close(p[0]);
	close(r[0]);
}

/* The reader comes back: what was queued is written, and how many lines
 * were dropped is said; the stop waits for the queue to drain. */
static void test_reader_resumes(void)
{
	char *text = calloc(1, 1 << 22), c;
	size_t len = 0, lines = 0, i;
	int p[2], r[2];
	ssize_t n;
	pid_t pid;

	CHECK(text && pipe(p) == 0 && pipe(r) == 0);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		close(r[0]);
		child_log_lines(p[1], 65536);
		if (write(r[1], "r", 1) != 1)
			_exit(4);
		usleep(200000);
		log_msg(LOG_LVL_INFO, "the last line");
		log_queue_stop(10000);
		_exit(0);
	}
	close(p[1]);
	close(r[1]);
	CHECK(read(r[0], &c, 1) == 1);
	while (len < (1 << 22) - 1 && (n = read(p[0], text + len, (1 << 22) - 1 - len)) > 0)
		len += (size_t)n;
	CHECK(wait_child(pid) == 0);
	for (i = 0; i < len; i++)
		lines += text[i] == '\n';
	CHECK_STR_CONTAINS(text, "info: line 0 ");
	CHECK_STR_CONTAINS(text, "log lines dropped (the log's reader did not keep up)");
	CHECK_STR_CONTAINS(text, "info: the last line\n");
	/* The queue's 64 KiB hold about 600 lines of the 2000. */
	CHECK(lines > 100 && lines < LINES);
	free(text);
	close(p[0]);
	close(r[0]);
}

int main(void)
{
	test_stalled_reader();
	test_reader_resumes();
	return check_finish();
}
