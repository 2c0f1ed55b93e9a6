/* log.c -- daemon log lines on standard error (see log.h). */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

static enum log_level max_level = LOG_LVL_INFO;

/* The queue of lines for the writer thread (log_queue_start()). */
struct queued {
	struct queued *next;
	size_t len;
	char text[];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work, drained;
	pthread_t writer;
	struct queued *head, *tail;
	size_t bytes, max_bytes;
	uint64_t dropped;
	pid_t pid;      /* the process whose lines are queued (set before threads start) */
	bool running;   /* the writer takes lines */
	bool stopping;  /* the writer exits once the queue is empty */
	bool stuck;     /* stopped while the reader did not keep up: drop lines */
} queue = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.drained = PTHREAD_COND_INITIALIZER,
};

void log_set_level(enum log_level level)
{
	max_level = level;
}

/* Writes the whole line (a stream socket may take it in parts). */
static void write_line(const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(STDERR_FILENO, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void *writer_main(void *arg)
{
	char note[128];
	uint64_t dropped;
	int n;

	(void)arg;
	pthread_mutex_lock(&queue.lock);
	for (;;) {
		struct queued *q;

		while (!queue.head && !queue.stopping)
			pthread_cond_wait(&queue.work, &queue.lock);
		q = queue.head;
		if (!q)
			break;
		queue.head = q->next;
		if (!queue.head)
			queue.tail = NULL;
		queue.bytes -= q->len;
		dropped = queue.dropped;
		queue.dropped = 0;
		pthread_mutex_unlock(&queue.lock);
		write_line(q->text, q->len);
		free(q);
		if (dropped) {
			n = snprintf(note, sizeof(note), "warning: %llu log lines dropped "
				     "(the log's reader did not keep up)\n",
				     (unsigned long long)dropped);
			write_line(note, (size_t)n);
		}
		pthread_mutex_lock(&queue.lock);
	}
	queue.running = false;
	pthread_cond_broadcast(&queue.drained);
	pthread_mutex_unlock(&queue.lock);
	return NULL;
}

/* Queues the line; false when it is to be written directly (no writer, or
 * a child of the process that has one: the writer is not in the child,
 * and the lock may have been held at the fork). */
static bool enqueue(const char *line, size_t n)
{
	struct queued *q;

	if (!queue.pid || queue.pid != getpid())
		return false;
	q = malloc(sizeof(*q) + n);
	pthread_mutex_lock(&queue.lock);
	if (!queue.running && !queue.stuck) {
		pthread_mutex_unlock(&queue.lock);
		free(q);
		return false;
	}
	if (queue.stuck || !q || queue.bytes + n > queue.max_bytes) {
		queue.dropped++;
		pthread_mutex_unlock(&queue.lock);
		free(q);
		return true;
	}
	q->next = NULL;
	q->len = n;
	memcpy(q->text, line, n);
	if (queue.tail)
		queue.tail->next = q;
	else
		queue.head = q;
	queue.tail = q;
	queue.bytes += n;
	pthread_cond_signal(&queue.work);
	pthread_mutex_unlock(&queue.lock);
	return true;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char msg[2048], line[2048 + 16];
	va_list ap;
	size_t n;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages carry what clients sent (paths, names): escaped, so that
	 * no one can forge a line or drive the terminal of whoever reads it. */
	n = (size_t)snprintf(line, sizeof(line), "%s: ", names[level]);
	n += util_escape(line + n, sizeof(line) - n - 1, msg);
	line[n++] = '\n';
	if (enqueue(line, n))
		return;
	/* One write(2) per line keeps lines of concurrent threads whole. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

int log_queue_start(size_t max_bytes)
{
	int rc;

	queue.max_bytes = max_bytes;
	queue.running = true;
	rc = pthread_create(&queue.writer, NULL, writer_main, NULL);
	if (rc != 0) {
		queue.running = false;
		errno = rc;
		return -1;
	}
	queue.pid = getpid();
	return 0;
}

void log_queue_stop(int timeout_ms)
{
	struct timespec until;
	bool drained;

	if (!queue.pid || queue.pid != getpid())
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&queue.lock);
	queue.stopping = true;
	pthread_cond_signal(&queue.work);
	while (queue.running &&
	       pthread_cond_timedwait(&queue.drained, &queue.lock, &until) == 0)
		;
	drained = !queue.running;
	queue.stuck = !drained;
	pthread_mutex_unlock(&queue.lock);
	/* A writer stuck in write(2) is left to the process's exit. */
	if (drained)
		pthread_join(queue.writer, NULL);
}
