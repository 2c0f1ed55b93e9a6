/* tasks.c -- the agent's scans, each on a thread of its own (see tasks.h). */
#include "agent/tasks.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/astate.h"
#include "agent/components.h"
#include "agent/reports.h"
#include "common/log.h"
#include "common/util.h"

/* A scan's answer line waits this long at most for its client to take it
 * before the cancellation flag is looked at again. */
#define WRITE_POLL_MS 500

struct scan {
	struct tasks *t;
	uint64_t id;
	char **paths;
	size_t n;
	int fd;
	pthread_t thread;
	atomic_bool cancel;
	bool joined;          /* by tasks_stop() */
	struct scan *next;
};

struct tasks {
	struct agent *a;
	struct loop *loop;
	unsigned max, running;
	uint64_t next_id;
	struct scan *scans;
};

struct tasks *tasks_new(struct agent *a, struct loop *loop, unsigned max_scans)
{
	struct tasks *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->a = a;
	t->loop = loop;
	t->max = max_scans;
	t->next_id = 1;
	return t;
}

static void scan_free(struct scan *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->paths[i]);
	free(s->paths);
	free(s);
}

/* Writes obj (a reference taken) as one line to the scan's client; a
 * client that is gone, or takes nothing while the scan is cancelled,
 * cancels the scan. */
static void send_line(struct scan *s, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	struct pollfd p = { .fd = s->fd, .events = POLLOUT };
	size_t len, off = 0;
	ssize_t w;

	json_decref(obj);
	if (!text) {
		atomic_store(&s->cancel, true);
		return;
	}
	len = strlen(text);
	text[len++] = '\n'; /* over the NUL: the length is known */
	while (off < len) {
		w = send(s->fd, text + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;
		if (atomic_load(&s->cancel))
			break;
		poll(&p, 1, WRITE_POLL_MS);
	}
	if (off < len)
		atomic_store(&s->cancel, true);
	free(text);
}

static void emit(const char *path, enum ascan_verdict v, const char *what, void *arg)
{
	static const char *const names[] = { "OK", "FOUND", "Unverified", "error" };
	json_t *line = json_pack("{so ss}", "file", util_json_bytes(path), "verdict", names[v]);

	if (line && v == ASCAN_FOUND)
		json_object_set_new(line, "name", json_string(what));
	if (line && v == ASCAN_ERROR)
		json_object_set_new(line, "error", json_string(what));
	send_line(arg, line);
}

/* Takes the lists' lock, waiting while another scan or a rescan holds it;
 * -1 when cancelled meanwhile, or it cannot be taken. */
static int take_lock(struct scan *s)
{
	int fd;

	while ((fd = reports_lock(s->t->a, false)) < 0 && !atomic_load(&s->cancel))
		usleep(100000);
	return fd;
}

/* On the loop's thread: the scan's thread has ended. */
static void finished(void *arg)
{
	struct scan *s = arg, **pp;

	for (pp = &s->t->scans; *pp != s; pp = &(*pp)->next)
		;
	*pp = s->next;
	if (!s->joined)
		pthread_join(s->thread, NULL);
	s->t->running--;
	scan_free(s);
}

static void *run(void *arg)
{
	struct scan *s = arg;
	struct agent *a = s->t->a;
	const struct components_handle *h = components_acquire_wait(a, &s->cancel);
	struct ascan_totals tot = { 0 };
	char why[1024];
	int lock = -1;

	if (!h) {
		components_error(a->comps, why, sizeof(why));
		send_line(s, why[0] ? json_pack("{ss}", "error", why) :
			  json_pack("{ss}", "error", "no component in use yet: the agent has "
				    "not received one from its server (ward-agent update)"));
		goto out;
	}
	if (components_is_smart(h->name) && !h->smart) {
		send_line(s, json_pack("{ss}", "error", "smart protection could not be set up "
				       "(see the agent's log)"));
		goto out;
	}
	lock = take_lock(s);
	if (lock < 0) {
		send_line(s, json_pack("{ss}", "error", "cancelled"));
		goto out;
	}
	if (reports_scan(a, h, (const char *const *)s->paths, s->n, emit, s, &s->cancel,
			 &tot) != 0)
		send_line(s, json_pack("{ss}", "error", atomic_load(&s->cancel) ?
				       "the scan was cancelled" : "the scan failed (see the "
				       "agent's log)"));
	else
		send_line(s, json_pack("{sb ss sI sI sI sI}", "done", 1, "method", h->smart ?
				       "smart" : "conventional", "files", (json_int_t)tot.files,
				       "infected", (json_int_t)tot.infected, "unverified",
				       (json_int_t)tot.unverified, "errors",
				       (json_int_t)tot.errors));
out:
	if (lock >= 0)
		close(lock);
	components_release(a->comps, h);
	close(s->fd);
	s->fd = -1;
	if (loop_post(s->t->loop, finished, s) != 0)
		log_msg(LOG_LVL_ERROR, "out of memory: a finished scan is not collected");
	return NULL;
}

int tasks_scan(struct tasks *t, const char *const *paths, size_t n, int fd, char *errbuf,
	       size_t errlen)
{
	struct scan *s;

	if (t->running >= t->max) {
		snprintf(errbuf, errlen, "%u scans run already (the most at once)", t->max);
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->paths = calloc(n ? n : 1, sizeof(*s->paths))))
		goto nomem;
	for (s->n = 0; s->n < n; s->n++)
		if (!(s->paths[s->n] = strdup(paths[s->n])))
			goto nomem;
	s->t = t;
	s->id = t->next_id++;
	s->fd = fd;
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		snprintf(errbuf, errlen, "cannot start a scan: %s", strerror(errno));
		scan_free(s);
		return -1;
	}
	s->next = t->scans;
	t->scans = s;
	t->running++;
	return 0;
nomem:
	if (s)
		scan_free(s);
	snprintf(errbuf, errlen, "out of memory");
	return -1;
}

unsigned tasks_running(const struct tasks *t)
{
	return t->running;
}

void tasks_stop(struct tasks *t)
{
	struct scan *s;

	for (s = t->scans; s; s = s->next)
		atomic_store(&s->cancel, true);
	/* Each stays listed until its finished() runs (loop_free() runs it). */
	for (s = t->scans; s; s = s->next)
		if (!s->joined) {
			pthread_join(s->thread, NULL);
			s->joined = true;
		}
}

void tasks_free(struct tasks *t)
{
	struct scan *s;

	if (!t)
		return;
	while ((s = t->scans) != NULL) { /* their finished() never ran */
		t->scans = s->next;
		scan_free(s);
	}
	free(t);
}
