/* scanner.c -- generations of scan workers (see scanner.h). */
#include "agent/scanner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/sandbox.h"
#include "agent/wmsg.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_THREADS 64
#define MAX_RELAYS 8
/* Smart protection requests of one worker waiting for a relay thread. */
#define MAX_RELAY_QUEUE 64
/* A worker that failed to start is not started again for this long. */
#define RESTART_PAUSE_NS (10ull * 1000000000u)
/* How long a worker whose channel closed gets to exit before SIGKILL. */
#define EXIT_GRACE_MS 1000
/* Requests sent to a worker and not answered yet, per scan thread: enough
 * that a thread finds the next one waiting in the channel, few enough that
 * an urgent request waits behind little. */
#define INFLIGHT_PER_THREAD 2
/* How often the queue is checked for requests past their deadline. */
#define SWEEP_NS (250ull * 1000000u)
#define DEFAULT_MAX_QUEUE 8192

/* A scan request: queued in its generation, then in flight at a worker,
 * then done exactly once. */
struct request {
	uint64_t id;               /* in flight: its id at the worker */
	int fd;                    /* the caller's, open until done */
	unsigned flags;
	unsigned timeout;          /* seconds, for messages */
	uint64_t deadline;         /* monotonic ns */
	scanner_done_fn done;
	bool (*needed)(void *arg);
	void *arg;
	struct request *next;
	/* Set when it ends in an error decided under the lock. */
	enum aerr err;
	char why[512];
	char name[];               /* for the worker's messages */
};

/* A smart protection request of a worker, waiting for a relay thread. */
struct relay_job {
	uint64_t id;
	uint32_t source, timeout;
	unsigned char *body;
	size_t len;
	struct relay_job *next;
};

/* One worker process. */
struct proc {
	struct scanner *g;
	pid_t pid;
	int sock;
	char scratch[PATH_MAX];
	/* Under g->lock: */
	bool dead;
	char why[512];             /* dead: what happened to it */
	uint64_t next_id;
	struct request *pending;   /* sent, not answered, not given up on */
	unsigned inflight;         /* sent, not answered (overdue ones too) */
	uint64_t overdue[MAX_THREADS];  /* requests given up on, unanswered */
	unsigned noverdue;
	/* The relay queue, under lock: */
	pthread_mutex_t lock;
	pthread_cond_t relay_cv;
	bool stopping;
	struct relay_job *rq_head, *rq_tail;
	size_t rq_len;
	pthread_t reader;
	pthread_t relays[MAX_RELAYS];
	unsigned nrelays;
};

struct scanner {
	struct scanner_config cfg;  /* strings and sources owned */
	struct sandbox_config user;
	atomic_uint refs;
	pthread_mutex_t lock;       /* guards what follows and the procs' fields
				     * marked so */
	struct proc *proc;          /* the worker now; NULL: none yet */
	bool starting;              /* a starter thread runs */
	uint64_t retry_at;          /* no start before (after a failed one) */
	char start_error[512];
	struct request *urgent, *urgent_tail, *normal, *normal_tail;
	size_t queued;
	uint64_t next_sweep;
};

/* Set on the threads a generation runs (reader, relays, starter): a
 * generation whose last reference is dropped on one of them is torn down
 * on a thread of its own, which can wait for them. */
static _Thread_local bool scanner_thread;

/* Says what a wait status means: "exited with status 1", "was killed by
 * SIGKILL". */
static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status)) {
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		const char *name = sigabbrev_np(WTERMSIG(status));

		snprintf(buf, len, "was killed by signal %d%s%s%s", WTERMSIG(status),
			 name ? " (SIG" : "", name ? name : "", name ? ")" : "");
	} else {
		snprintf(buf, len, "ended (wait status %d)", status);
	}
}

/* Reaps the worker: waits up to grace_ms for it to exit, then kills it.
 * Returns what happened to it. */
static void reap(pid_t pid, int grace_ms, char *buf, size_t len)
{
	int status = 0, waited;
	pid_t r;

	for (waited = 0; waited < grace_ms; waited += 10) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			describe_status(status, buf, len);
			return;
		}
		if (r < 0 && errno != EINTR)
			break;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (r == pid)
		describe_status(status, buf, len);
	else
		snprintf(buf, len, "could not be waited for: %s", strerror(errno));
}

static int send_msg(int sock, const struct wmsg *m, int fd, char *errbuf, size_t errlen)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct util_buf b = { 0 };
	struct iovec iov;
	struct msghdr msg = { 0 };
	struct cmsghdr *c;
	ssize_t n;

	if (wmsg_encode(m, &b) != 0) {
		util_set_msg(errbuf, errlen, "out of memory");
		return -1;
	}
	iov = (struct iovec){ b.data, b.len };
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.b;
		msg.msg_controllen = sizeof(ctl.b);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	/* Never blocks: a worker that stops reading has its requests failed
	 * rather than holding the agent's threads. */
	n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	util_buf_free(&b);
	if (n < 0) {
		util_set_msg(errbuf, errlen, "the scan worker is not taking requests: %s",
			     errno == EAGAIN ? "its channel is full" : strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- requests ---- */

/* Calls r's done() with res, then frees both's contents. No lock held. */
static void request_end(struct request *r, struct scanner_result *res)
{
	r->done(r->arg, res);
	engine_result_clear(&res->res);
	free(r);
}

/* Ends each request of list with the error set on it. No lock held. */
static void end_failed(struct request *list)
{
	struct request *r;

	while ((r = list)) {
		struct scanner_result res = { .err = r->err, .error = r->why };

		list = r->next;
		request_end(r, &res);
	}
}

/* Sets r's error and moves it onto *failed (for end_failed()). */
__attribute__((format(printf, 4, 5)))
static void fail(struct request *r, struct request **failed, enum aerr err,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	r->err = err;
	r->next = *failed;
	*failed = r;
}

static void queue_push(struct scanner *g, struct request *r)
{
	bool urgent = r->flags & SCANNER_URGENT;
	struct request **head = urgent ? &g->urgent : &g->normal;
	struct request **tail = urgent ? &g->urgent_tail : &g->normal_tail;

	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
	g->queued++;
}

static struct request *queue_pop(struct scanner *g)
{
	bool urgent = g->urgent != NULL;
	struct request **head = urgent ? &g->urgent : &g->normal;
	struct request *r = *head;

	if (!r)
		return NULL;
	*head = r->next;
	if (!*head)
		*(urgent ? &g->urgent_tail : &g->normal_tail) = NULL;
	g->queued--;
	r->next = NULL;
	return r;
}

/* Fails every queued request with err and why (lock held). */
static void fail_queue(struct scanner *g, struct request **failed, enum aerr err,
		       const char *why)
{
	struct request *r;

	while ((r = queue_pop(g)))
		fail(r, failed, err, "%s: not scanned: %s", r->name, why);
}

static void *starter_thread(void *arg);

/* Starts a worker on a thread of its own, unless one is being started or
 * the last start failed a moment ago (lock held; a request waits). */
static void start_worker(struct scanner *g, struct request **failed)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (g->starting)
		return;
	if (util_now_ns() < g->retry_at) {
		fail_queue(g, failed, AERR_START, g->start_error);
		return;
	}
	g->starting = true;
	atomic_fetch_add(&g->refs, 1);  /* the starter's */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, starter_thread, g);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		g->starting = false;
		/* Never the last: the waiting requests' callers hold theirs. */
		atomic_fetch_sub(&g->refs, 1);
		fail_queue(g, failed, AERR_START, "no thread to start a scan worker");
	}
}

/* Sends one request; r->why says why not. */
static int send_request(struct proc *p, struct request *r)
{
	struct wmsg m = { .type = WMSG_SCAN, .id = r->id, .text = r->name,
			  .flags = (r->flags & SCANNER_LOW ? WMSG_LOW : 0) |
				   (r->flags & SCANNER_ALLMATCH ? WMSG_ALLMATCH : 0) };

	return send_msg(p->sock, &m, r->fd, r->why, sizeof(r->why));
}

/* Sends queued requests while g's worker has room, urgent ones first;
 * starts a worker when none runs (lock held). */
static void dispatch(struct scanner *g, struct request **failed)
{
	struct proc *p = g->proc;
	unsigned room = g->cfg.threads * INFLIGHT_PER_THREAD;
	struct request *r;

	if (!g->queued)
		return;
	if (!p || p->dead) {
		start_worker(g, failed);
		return;
	}
	while (p->inflight < room && (r = queue_pop(g))) {
		if (r->needed && !r->needed(r->arg)) {
			fail(r, failed, AERR_NOTNEEDED, "%s: answered by another scan",
			     r->name);
			continue;
		}
		r->id = ++p->next_id;
		if (send_request(p, r) != 0) {
			/* A broken channel: its reader ends the worker, and the
			 * queue goes to the next one. */
			fail(r, failed, AERR_WORKER, "%s; %s was not scanned", r->why,
			     r->name);
			break;
		}
		r->next = p->pending;
		p->pending = r;
		p->inflight++;
	}
}

/* Moves the queued requests that match key onto *out (lock held). */
static void unqueue(struct scanner *g, bool (*match)(const struct request *r, const void *key),
		    const void *key, struct request **out)
{
	struct request **heads[2] = { &g->urgent, &g->normal };
	struct request **tails[2] = { &g->urgent_tail, &g->normal_tail };
	struct request **pp, *r, *last;
	size_t i;

	for (i = 0; i < 2; i++) {
		last = NULL;
		for (pp = heads[i]; (r = *pp);) {
			if (!match(r, key)) {
				last = r;
				pp = &r->next;
				continue;
			}
			*pp = r->next;
			g->queued--;
			r->next = *out;
			*out = r;
		}
		*tails[i] = last;
	}
}

static bool past_deadline(const struct request *r, const void *now)
{
	return *(const uint64_t *)now >= r->deadline;
}

static bool has_callback(const struct request *r, const void *done)
{
	return r->done == *(const scanner_done_fn *)done;
}

/* Gives up on the requests of p and of the queue past their deadline
 * (lock held). As many of p's overdue as it has scan threads: they are
 * stuck (a file that never ends, a loop in a parser), the worker can
 * serve no one, and it is killed; returns whether it was. */
static bool sweep(struct proc *p, struct request **failed)
{
	struct scanner *g = p->g;
	uint64_t now = util_now_ns();
	struct request **pp = &p->pending, *r, *late = NULL;

	g->next_sweep = now + SWEEP_NS;
	while ((r = *pp)) {
		if (now < r->deadline) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (p->noverdue < MAX_THREADS)
			p->overdue[p->noverdue++] = r->id;
		else
			p->inflight--;  /* not remembered: its answer is a violation */
		fail(r, failed, AERR_TIMEOUT, "%s: no verdict from the scan worker in %u s",
		     r->name, r->timeout);
	}
	if (g->proc == p)
		unqueue(g, past_deadline, &now, &late);
	while ((r = late)) {
		late = r->next;
		fail(r, failed, AERR_TIMEOUT, "%s: not scanned: it waited %u s for the "
		     "scan worker", r->name, r->timeout);
	}
	if (p->dead || p->noverdue < g->cfg.threads)
		return false;
	p->dead = true;  /* new scans go to a new worker at once */
	snprintf(p->why, sizeof(p->why), "the scan worker (pid %d) was stuck and killed",
		 (int)p->pid);
	if (g->proc == p)
		dispatch(g, failed);
	return true;
}

/* Takes the worker's answer m (lock held): its request, done, goes to
 * *answered. Returns false when the worker answered a request never sent
 * to it. */
static bool finish(struct proc *p, const struct wmsg *m, struct request **answered)
{
	struct request **pp, *r;
	size_t i;

	if (m->id == 0 || m->id > p->next_id)
		return false;
	for (pp = &p->pending; *pp && (*pp)->id != m->id; pp = &(*pp)->next)
		;
	r = *pp;
	if (r) {
		*pp = r->next;
		*answered = r;
	} else {
		for (i = 0; i < p->noverdue && p->overdue[i] != m->id; i++)
			;
		if (i == p->noverdue)
			return false;  /* answered twice */
		p->overdue[i] = p->overdue[--p->noverdue];
	}
	p->inflight--;
	return true;
}

/* Ends r with the worker's verdict m. No lock held. */
static void answer_request(struct request *r, const struct wmsg *m)
{
	struct scanner_result res = { .err = AERR_OK, .error = r->why };
	size_t i;

	if (m->verdict == WMSG_ERROR) {
		res.err = AERR_SCAN;
		snprintf(r->why, sizeof(r->why), "%s", m->text);
	} else if (m->nnames) {
		res.res.names = calloc(m->nnames, sizeof(*res.res.names));
		for (i = 0; res.res.names && i < m->nnames; i++) {
			res.res.names[i] = strdup(m->names[i]);
			if (!res.res.names[i])
				break;
			res.res.nnames++;
		}
		if (res.res.nnames != m->nnames) {
			res.err = AERR_NOMEM;
			snprintf(r->why, sizeof(r->why), "%s: out of memory", r->name);
		}
	}
	res.res.infected = m->verdict == WMSG_INFECTED;
	res.res.bytes_scanned = m->bytes;
	res.out.asked = (m->flags & WMSG_ASKED) != 0;
	res.out.unverified = m->verdict == WMSG_UNVERIFIED;
	request_end(r, &res);
}

/* Answers query id of the worker at once, with why (no answer). */
static void answer_none(struct proc *p, uint64_t id, const char *why)
{
	struct wmsg m = { .type = WMSG_ANSWER, .id = id, .text = why };

	(void)send_msg(p->sock, &m, -1, NULL, 0);
}

/* Queues the worker's smart protection request m for a relay thread. */
static void relay_push(struct proc *p, const struct wmsg *m)
{
	struct relay_job *j;

	if (!p->nrelays) {
		answer_none(p, m->id, "the agent relays no smart protection requests for "
			    "this worker");
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j)
		j->body = malloc(m->body_len);
	if (!j || !j->body) {
		free(j);
		answer_none(p, m->id, "the agent is out of memory");
		return;
	}
	memcpy(j->body, m->body, m->body_len);
	j->len = m->body_len;
	j->id = m->id;
	j->source = m->source;
	/* The worker names the wait; no longer than the agent gave it. */
	j->timeout = (long)m->timeout < p->g->cfg.source_timeout ? m->timeout :
		(uint32_t)p->g->cfg.source_timeout;
	pthread_mutex_lock(&p->lock);
	if (p->rq_len >= MAX_RELAY_QUEUE) {
		pthread_mutex_unlock(&p->lock);
		free(j->body);
		free(j);
		answer_none(p, m->id, "too many smart protection requests waiting");
		return;
	}
	if (p->rq_tail)
		p->rq_tail->next = j;
	else
		p->rq_head = j;
	p->rq_tail = j;
	p->rq_len++;
	pthread_cond_signal(&p->relay_cv);
	pthread_mutex_unlock(&p->lock);
}

/* Posts the worker's requests to the sources through the agent's relay. */
static void *relay_thread(void *arg)
{
	struct proc *p = arg;
	const struct scanner_config *cfg = &p->g->cfg;
	struct relay_job *j;
	char why[WMSG_MAX_TEXT / 4];

	scanner_thread = true;
	for (;;) {
		struct util_buf ans = { 0 };
		struct wmsg m = { .type = WMSG_ANSWER, .text = "" };
		long status = 0;

		pthread_mutex_lock(&p->lock);
		while (!p->rq_head && !p->stopping)
			pthread_cond_wait(&p->relay_cv, &p->lock);
		j = p->rq_head;
		if (j) {
			p->rq_head = j->next;
			if (!p->rq_head)
				p->rq_tail = NULL;
			p->rq_len--;
		}
		pthread_mutex_unlock(&p->lock);
		if (!j)
			return NULL;
		why[0] = 0;
		m.id = j->id;
		if (cfg->relay(cfg->relay_arg, j->source, (const char *)j->body, j->len,
			       (long)j->timeout, WMSG_MAX - WMSG_MAX_TEXT - 64, &status, &ans, why,
			       sizeof(why)) != 0 || status < 1 || status > 999) {
			m.text = why[0] ? why : "the source gave no answer";
		} else {
			m.status = (int32_t)status;
			m.body = (const unsigned char *)ans.data;
			m.body_len = ans.len;
		}
		(void)send_msg(p->sock, &m, -1, NULL, 0);
		util_buf_free(&ans);
		free(j->body);
		free(j);
	}
}

/* The end of a worker: reaped, marked dead, the requests it held failed
 * with why, and a new worker started for the queue. */
static void end(struct proc *p, const char *why, bool violation)
{
	struct scanner *g = p->g;
	struct request *failed = NULL, *r;
	char how[128], msg[512];
	bool stopping;

	if (violation) {
		log_msg(LOG_LVL_ERROR, "scan worker %d: %s; killed", (int)p->pid, why);
		kill(p->pid, SIGKILL);
	}
	reap(p->pid, violation ? 0 : EXIT_GRACE_MS, how, sizeof(how));
	snprintf(msg, sizeof(msg), "the scan worker (pid %d) %s%s%s", (int)p->pid, how,
		 violation ? " after " : "", violation ? why : "");
	pthread_mutex_lock(&p->lock);
	stopping = p->stopping;
	p->stopping = true;  /* the relays end */
	pthread_cond_broadcast(&p->relay_cv);
	pthread_mutex_unlock(&p->lock);
	if (!stopping && !violation)
		log_msg(LOG_LVL_ERROR, "%s", msg);
	pthread_mutex_lock(&g->lock);
	if (!p->dead) {
		p->dead = true;
		snprintf(p->why, sizeof(p->why), "%s", msg);
	}
	while ((r = p->pending)) {
		p->pending = r->next;
		fail(r, &failed, AERR_WORKER, "%s; %s was not scanned", msg, r->name);
	}
	p->inflight = p->noverdue = 0;
	if (g->proc == p)
		dispatch(g, &failed);
	pthread_mutex_unlock(&g->lock);
	end_failed(failed);
}

/* Checks and takes the worker's message of n bytes at buf. Returns false,
 * with why, when it breaks the protocol. */
static bool take(struct proc *p, const unsigned char *buf, ssize_t n, int flags, char *why,
		 size_t whylen)
{
	struct scanner *g = p->g;
	struct request *answered = NULL, *failed = NULL;
	struct wmsg m;
	bool ok = true;

	/* No room for control data: descriptors a worker sends are dropped
	 * by the kernel, and flagged. */
	if (flags & MSG_CTRUNC) {
		snprintf(why, whylen, "sent descriptors over its channel");
		return false;
	}
	if ((size_t)n > WMSG_MAX) {
		snprintf(why, whylen, "sent a message of %zd bytes (at most %u)", n, WMSG_MAX);
		return false;
	}
	if (wmsg_decode(buf, (size_t)n, &m, why, whylen) != 0)
		return false;
	if (m.type == WMSG_QUERY) {
		relay_push(p, &m);
		return true;
	}
	if (m.type != WMSG_RESULT) {
		snprintf(why, whylen, "sent a message of type %u", (unsigned)m.type);
		return false;
	}
	pthread_mutex_lock(&g->lock);
	ok = finish(p, &m, &answered);
	if (ok && g->proc == p)
		dispatch(g, &failed);
	pthread_mutex_unlock(&g->lock);
	if (!ok)
		snprintf(why, whylen, "answered request %llu, which it was never sent or "
			 "answered already", (unsigned long long)m.id);
	if (answered)
		answer_request(answered, &m);
	end_failed(failed);
	return ok;
}

/* Reads the worker's messages, every one checked before use, and gives
 * up on requests past their deadline. */
static void *reader_thread(void *arg)
{
	struct proc *p = arg;
	struct scanner *g = p->g;
	unsigned char *buf = malloc(WMSG_MAX);
	struct pollfd pfd = { p->sock, POLLIN, 0 };
	struct request *failed;
	char why[512] = "";
	struct iovec iov;
	struct msghdr msg;
	bool busy, stuck, more = false;
	ssize_t n;
	int wait;

	scanner_thread = true;
	while (buf) {
		pthread_mutex_lock(&g->lock);
		busy = p->pending || (g->proc == p && g->queued);
		failed = NULL;
		stuck = busy && util_now_ns() >= g->next_sweep && sweep(p, &failed);
		pthread_mutex_unlock(&g->lock);
		end_failed(failed);
		if (stuck) {
			log_msg(LOG_LVL_ERROR, "scan worker %d: %u requests past their deadline, "
				"as many as its scan threads; killed", (int)p->pid,
				g->cfg.threads);
			kill(p->pid, SIGKILL);  /* reaped once its channel closes */
		}
		/* Idle, it wakes now and then only; while answers come, it
		 * reads on until none is left before it waits again. */
		wait = busy ? (int)(SWEEP_NS / 1000000u) : 2000;
		if (!more && poll(&pfd, 1, wait) <= 0)
			continue;
		iov = (struct iovec){ buf, WMSG_MAX };
		msg = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1 };
		n = recvmsg(p->sock, &msg, MSG_TRUNC | MSG_DONTWAIT);
		more = n > 0;
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			snprintf(why, sizeof(why), "%s", n == 0 ? "closed its channel" :
				 strerror(errno));
			end(p, why, false);
			break;
		}
		if (!take(p, buf, n, msg.msg_flags, why, sizeof(why))) {
			end(p, why, true);
			break;
		}
	}
	if (!buf)
		end(p, "could not be read: out of memory", true);
	free(buf);
	return NULL;
}

/* Removes a worker's scratch directory: what the worker made in it as
 * the worker's user (the agent may have no CAP_DAC_OVERRIDE; the file
 * system ids are the calling thread's alone), the directory as itself. */
static void remove_scratch(const struct scanner *g, const char *dir)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();

	if (g->user.set_user) {
		syscall(SYS_setfsgid, g->user.gid);
		syscall(SYS_setfsuid, g->user.uid);
		(void)util_remove_tree(dir);  /* all but the directory's own entry */
		syscall(SYS_setfsuid, uid);
		syscall(SYS_setfsgid, gid);
	}
	if (util_remove_tree(dir) != 0)
		log_msg(LOG_LVL_WARN, "scan worker: cannot remove %s: %s", dir, strerror(errno));
}

/* Frees a proc whose threads have ended or never started. */
static void proc_free(struct proc *p)
{
	struct relay_job *j;

	if (p->sock >= 0)
		close(p->sock);
	if (p->scratch[0])
		remove_scratch(p->g, p->scratch);
	while ((j = p->rq_head)) {
		p->rq_head = j->next;
		free(j->body);
		free(j);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->relay_cv);
	free(p);
}

/* Closes p's channel (the worker exits), waits for its threads and frees
 * it. Never on one of p's own threads. */
static void proc_stop(struct proc *p)
{
	unsigned i;

	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->relay_cv);
	pthread_mutex_unlock(&p->lock);
	shutdown(p->sock, SHUT_RDWR);
	pthread_join(p->reader, NULL);
	for (i = 0; i < p->nrelays; i++)
		pthread_join(p->relays[i], NULL);
	proc_free(p);
}

/* Sizes the channel's buffers for the largest message. */
static void size_buffers(int sock)
{
	int size = (int)WMSG_MAX * 2;

	if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
		(void)setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
		(void)setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

/* The worker's command line, made before fork (the child of a threaded
 * process may only make async-signal-safe calls). */
struct cmdline {
	const char *scratch;
	char *argv[64];
	char *env[2];
	int argc;
	bool nomem;
};

static void arg(struct cmdline *c, char *s)
{
	if (!s)
		c->nomem = true;
	else if (c->argc < 62)
		c->argv[c->argc++] = s;
	else
		free(s);
}

static void build_cmdline(const struct scanner *g, const struct proc *p, struct cmdline *c)
{
	const struct scanner_config *cfg = &g->cfg;
	const struct engine_limits *l = &cfg->limits;
	size_t i;

	memset(c, 0, sizeof(*c));
	arg(c, strdup("ward-agent"));
	arg(c, strdup("worker"));
	arg(c, strdup("--fd=3"));
	arg(c, util_printf("--threads=%u", cfg->threads));
	arg(c, strdup("--scratch=."));
	if (cfg->component)
		arg(c, util_printf("--dir=%s", cfg->component));
	if (cfg->builtin)
		arg(c, strdup("--builtin"));
	if (g->user.set_user) {
		arg(c, util_printf("--uid=%u", (unsigned)g->user.uid));
		arg(c, util_printf("--gid=%u", (unsigned)g->user.gid));
	}
	arg(c, util_printf("--max-filesize=%llu", (unsigned long long)l->max_filesize));
	arg(c, util_printf("--max-scansize=%llu", (unsigned long long)l->max_scansize));
	arg(c, util_printf("--max-files=%u", l->max_files));
	arg(c, util_printf("--max-recursion=%u", l->max_recursion));
	arg(c, util_printf("--max-scantime=%u", l->max_scantime));
	if (cfg->smart) {
		arg(c, strdup("--smart"));
		for (i = 0; i < cfg->nsources; i++)
			arg(c, util_printf("--source=%s", cfg->sources[i]));
		if (cfg->proxy)
			arg(c, util_printf("--proxy=%s", cfg->proxy));
		arg(c, strdup(cfg->family == AF_INET ? "--family=ipv4" :
			      cfg->family == AF_INET6 ? "--family=ipv6" : "--family=any"));
		arg(c, util_printf("--source-timeout=%ld", cfg->source_timeout));
		arg(c, util_printf("--retry-after=%ld", cfg->retry_after));
	}
	/* libclamav writes its temporary files where TMPDIR says. */
	c->scratch = p->scratch;
	c->env[0] = strdup("TMPDIR=.");
	if (!c->env[0])
		c->nomem = true;
}

static void free_cmdline(struct cmdline *c)
{
	int i;

	for (i = 0; i < c->argc; i++)
		free(c->argv[i]);
	free(c->env[0]);
}

/* In the child: the channel becomes descriptor 3, every other descriptor
 * above 2 is closed, and the worker's program replaces the agent's. */
static _Noreturn void exec_worker(const struct scanner *g, int sock, pid_t parent,
				  struct cmdline *c)
{
	sigset_t all;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
		_exit(127);
	if (sock == 3 ? fcntl(3, F_SETFD, 0) != 0 : dup2(sock, 3) != 3)
		_exit(127);
	if (close_range(4, ~0u, 0) != 0)
		_exit(127);
	/* The scratch directory is reached from the working directory, so
	 * the worker's user needs no right on the directories above it. */
	if (chdir(c->scratch) != 0)
		_exit(127);
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	execve(g->cfg.program, c->argv, c->env);
	_exit(127);
}

/* Starts a worker of g and waits until it is ready (seconds: never on a
 * thread that must not block). */
static struct proc *proc_start(struct scanner *g, char *errbuf, size_t errlen)
{
	struct proc *p = calloc(1, sizeof(*p));
	unsigned char buf[WMSG_HEADER + 64];
	struct pollfd pfd;
	struct cmdline c = { 0 };
	struct wmsg m;
	char why[512] = "could not be read", how[128];
	pid_t parent = getpid();
	int sv[2] = { -1, -1 }, rc;
	ssize_t n;
	unsigned i;

	if (!p) {
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	p->g = g;
	p->sock = -1;
	pthread_mutex_init(&p->lock, NULL);
	util_cond_init_monotonic(&p->relay_cv);
	if (snprintf(p->scratch, sizeof(p->scratch), "%s/worker-XXXXXX", g->cfg.scratch) >=
	    (int)sizeof(p->scratch) || !mkdtemp(p->scratch)) {
		util_set_msg(errbuf, errlen, "scan worker scratch directory in %s: %s",
			     g->cfg.scratch, strerror(errno));
		p->scratch[0] = 0;
		goto fail;
	}
	if (g->user.set_user && chown(p->scratch, g->user.uid, g->user.gid) != 0) {
		util_set_msg(errbuf, errlen, "%s: %s", p->scratch, strerror(errno));
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		util_set_msg(errbuf, errlen, "scan worker channel: %s", strerror(errno));
		goto fail;
	}
	size_buffers(sv[0]);
	size_buffers(sv[1]);
	build_cmdline(g, p, &c);
	if (c.nomem) {
		util_set_msg(errbuf, errlen, "out of memory");
		goto fail;
	}
	p->pid = fork();
	if (p->pid == 0)
		exec_worker(g, sv[1], parent, &c);
	free_cmdline(&c);
	close(sv[1]);
	sv[1] = -1;
	p->sock = sv[0];
	if (p->pid < 0) {
		util_set_msg(errbuf, errlen, "starting a scan worker: %s", strerror(errno));
		goto fail;
	}
	pfd = (struct pollfd){ p->sock, POLLIN, 0 };
	while ((rc = poll(&pfd, 1, (int)g->cfg.start_timeout * 1000)) < 0 && errno == EINTR)
		;
	n = rc > 0 ? recv(p->sock, buf, sizeof(buf), MSG_DONTWAIT) : -1;
	if (n <= 0 || wmsg_decode(buf, (size_t)n, &m, why, sizeof(why)) != 0 ||
	    m.type != WMSG_READY) {
		if (rc == 0)
			snprintf(why, sizeof(why), "was not ready in %u s", g->cfg.start_timeout);
		else if (n == 0)
			snprintf(why, sizeof(why), "did not start");
		else if (n > 0 && m.type != WMSG_READY)
			snprintf(why, sizeof(why), "did not say it was ready");
		reap(p->pid, n == 0 ? EXIT_GRACE_MS : 0, how, sizeof(how));
		util_set_msg(errbuf, errlen, "the scan worker (%s) %s and %s (its reason is "
			     "logged)", g->cfg.program, why, how);
		goto fail;
	}
	log_msg(LOG_LVL_INFO, "scan worker %d ready: %llu signatures, %u threads%s", (int)p->pid,
		(unsigned long long)m.signatures, g->cfg.threads, g->cfg.smart ? ", smart" : "");
	if (pthread_create(&p->reader, NULL, reader_thread, p) != 0) {
		reap(p->pid, 0, how, sizeof(how));
		util_set_msg(errbuf, errlen, "scan worker: no reader thread");
		goto fail;
	}
	for (i = 0; g->cfg.relay && i < g->cfg.threads && i < MAX_RELAYS; i++)
		if (pthread_create(&p->relays[i], NULL, relay_thread, p) == 0)
			p->nrelays++;
	return p;
fail:
	if (sv[1] >= 0)
		close(sv[1]);
	if (sv[0] >= 0 && p->sock < 0)
		close(sv[0]);
	proc_free(p);
	return NULL;
}

/* Starts a worker in place of the dead one (or none), then hands it the
 * queue; a worker that cannot start fails the queue, and new requests
 * fail at once for a while. */
static void *starter_thread(void *arg)
{
	struct scanner *g = arg;
	struct request *failed = NULL;
	struct proc *p, *old;
	char err[512];

	scanner_thread = true;
	p = proc_start(g, err, sizeof(err));
	if (!p)
		log_msg(LOG_LVL_ERROR, "%s", err);
	pthread_mutex_lock(&g->lock);
	g->starting = false;
	old = g->proc;
	g->proc = p;
	if (p) {
		dispatch(g, &failed);
	} else {
		g->retry_at = util_now_ns() + RESTART_PAUSE_NS;
		snprintf(g->start_error, sizeof(g->start_error), "%s", err);
		fail_queue(g, &failed, AERR_START, err);
	}
	pthread_mutex_unlock(&g->lock);
	end_failed(failed);
	if (old)
		proc_stop(old);
	scanner_release(g);
	return NULL;
}

enum aerr scanner_submit(struct scanner *g, const struct scanner_request *rq,
				char *errbuf, size_t errlen)
{
	const char *name = rq->name;
	size_t len = strnlen(name, WMSG_MAX_TEXT);
	struct request *r, *failed = NULL;
	enum aerr err = AERR_OK;
	struct proc *p;

	if (rq->fd < 0) {
		util_set_msg(errbuf, errlen, "%s: no descriptor to scan", name);
		return AERR_SCAN;
	}
	r = calloc(1, sizeof(*r) + len + 1);
	if (!r) {
		util_set_msg(errbuf, errlen, "%s: not scanned: out of memory", name);
		return AERR_NOMEM;
	}
	memcpy(r->name, name, len);
	r->fd = rq->fd;
	r->flags = rq->flags;
	r->timeout = rq->timeout ? rq->timeout : g->cfg.scan_timeout;
	r->deadline = util_now_ns() + r->timeout * 1000000000ull;
	r->done = rq->done;
	r->needed = rq->needed;
	r->arg = rq->arg;
	pthread_mutex_lock(&g->lock);
	p = g->proc;
	if (g->queued >= g->cfg.max_queue) {
		err = AERR_FULL;
		util_set_msg(errbuf, errlen, "%s: not scanned: %zu files wait for the scan "
			     "worker already", name, g->queued);
	} else if ((!p || p->dead) && !g->starting && util_now_ns() < g->retry_at) {
		err = AERR_START;
		util_set_msg(errbuf, errlen, "%s; tried again soon", g->start_error);
	} else {
		queue_push(g, r);
		dispatch(g, &failed);
	}
	pthread_mutex_unlock(&g->lock);
	if (err != AERR_OK)
		free(r);
	end_failed(failed);
	return err;
}

void scanner_cancel(struct scanner *g, scanner_done_fn done)
{
	struct request *failed = NULL, *r, *taken = NULL;

	pthread_mutex_lock(&g->lock);
	unqueue(g, has_callback, &done, &taken);
	while ((r = taken)) {
		taken = r->next;
		fail(r, &failed, AERR_CANCELLED, "%s: not scanned: the scan was cancelled",
		     r->name);
	}
	pthread_mutex_unlock(&g->lock);
	end_failed(failed);
}

/* What scanner_scan_fd() waits on. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	enum aerr err;
	struct engine_result *res;
	struct smart_outcome *out;
	char *errbuf;
	size_t errlen;
};

static void wake(void *arg, struct scanner_result *r)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->lock);
	w->err = r->err;
	if (r->err != AERR_OK) {
		util_set_msg(w->errbuf, w->errlen, "%s", r->error);
	} else {
		*w->res = r->res;
		r->res = (struct engine_result){ 0 };
		*w->out = r->out;
	}
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

enum aerr scanner_scan_fd(struct scanner *g, int fd, const char *name,
				 unsigned flags, unsigned timeout, struct engine_result *res,
				 struct smart_outcome *out, char *errbuf, size_t errlen)
{
	struct waiter w = { .res = res, .out = out, .errbuf = errbuf, .errlen = errlen };
	struct scanner_request rq = { .fd = fd, .name = name, .flags = flags,
				      .timeout = timeout, .done = wake, .arg = &w };
	enum aerr err;

	memset(res, 0, sizeof(*res));
	memset(out, 0, sizeof(*out));
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	scanner_acquire(g);  /* the scan's own: a retired generation waits for it */
	err = scanner_submit(g, &rq, errbuf, errlen);
	if (err == AERR_OK) {
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock);
		err = w.err;
		pthread_mutex_unlock(&w.lock);
	}
	scanner_release(g);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return err;
}

int scanner_sjob_scan(void *arg, int fd, const char *name, struct engine_result *res,
		      struct smart_outcome *out, char *errbuf, size_t errlen)
{
	return scanner_scan_fd(arg, fd, name, 0, 0, res, out, errbuf, errlen) == AERR_OK ? 0 :
	       -1;
}

size_t scanner_in_flight(struct scanner *g)
{
	size_t n;

	pthread_mutex_lock(&g->lock);
	n = g->proc ? g->proc->inflight : 0;
	pthread_mutex_unlock(&g->lock);
	return n;
}

pid_t scanner_pid(struct scanner *g)
{
	pid_t pid = 0;

	pthread_mutex_lock(&g->lock);
	if (g->proc && !g->proc->dead)
		pid = g->proc->pid;
	pthread_mutex_unlock(&g->lock);
	return pid;
}

static void scanner_free(struct scanner *g)
{
	size_t i;

	for (i = 0; i < g->cfg.nsources; i++)
		free((char *)g->cfg.sources[i]);
	free((void *)g->cfg.sources);
	free((char *)g->cfg.program);
	free((char *)g->cfg.component);
	free((char *)g->cfg.user);
	free((char *)g->cfg.scratch);
	free((char *)g->cfg.proxy);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* Copies s into *to (NULL stays NULL). Returns false when out of memory. */
static bool copy(const char **to, const char *s)
{
	*to = s ? strdup(s) : NULL;
	return !s || *to;
}

struct scanner *scanner_start(const struct scanner_config *cfg, char *errbuf, size_t errlen)
{
	struct scanner *g = calloc(1, sizeof(*g));
	const char **sources = calloc(cfg->nsources + 1, sizeof(*sources));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct proc *p;
	size_t i;

	if (!g || !sources) {
		free(g);
		free(sources);
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&g->lock, NULL);
	atomic_init(&g->refs, 1);
	g->cfg = *cfg;
	g->cfg.sources = sources;
	g->cfg.nsources = 0;
	/* The strings become copies of g's own, one by one. */
	g->cfg.component = g->cfg.user = g->cfg.scratch = g->cfg.proxy = NULL;
	/* A program named relative to the working directory is found from
	 * the worker's own (its scratch directory): made absolute. */
	g->cfg.program = cfg->program && cfg->program[0] != '/' ?
			 realpath(cfg->program, NULL) : NULL;
	if (cfg->program && cfg->program[0] != '/' && !g->cfg.program) {
		util_set_msg(errbuf, errlen, "scan workers: %s: %s", cfg->program,
			     strerror(errno));
		goto fail;
	}
	if ((!g->cfg.program &&
	     !copy(&g->cfg.program, cfg->program ? cfg->program : "/proc/self/exe")) ||
	    !copy(&g->cfg.component, cfg->component) || !copy(&g->cfg.user, cfg->user) ||
	    !copy(&g->cfg.scratch, cfg->scratch) || !copy(&g->cfg.proxy, cfg->proxy))
		goto nomem;
	for (i = 0; i < cfg->nsources; i++, g->cfg.nsources++)
		if (!copy(&sources[i], cfg->sources[i]))
			goto nomem;
	if (!g->cfg.threads)
		g->cfg.threads = ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : (unsigned)ncpu;
	if (!g->cfg.start_timeout)
		g->cfg.start_timeout = 120;
	if (!g->cfg.scan_timeout)
		g->cfg.scan_timeout = 300;
	if (!g->cfg.max_queue)
		g->cfg.max_queue = DEFAULT_MAX_QUEUE;
	if (g->cfg.threads > MAX_THREADS || !g->cfg.scratch ||
	    (!g->cfg.component && !g->cfg.builtin) || (g->cfg.smart && !g->cfg.component)) {
		util_set_msg(errbuf, errlen, "scan workers: %s", g->cfg.threads > MAX_THREADS ?
			     "at most 64 threads" : !g->cfg.scratch ? "no scratch directory" :
			     "no signatures to load");
		goto fail;
	}
	if (mkdir(g->cfg.scratch, 0700) != 0 && errno != EEXIST) {
		util_set_msg(errbuf, errlen, "scan workers: %s: %s", g->cfg.scratch,
			     strerror(errno));
		goto fail;
	}
	/* Only root can switch users; another user keeps its own. */
	if (g->cfg.user && geteuid() == 0 &&
	    sandbox_lookup_user(g->cfg.user, &g->user, errbuf, errlen) != 0)
		goto fail;
	if (!g->user.set_user && geteuid() == 0)
		log_msg(LOG_LVL_WARN, "scan workers run as root (without capabilities): no "
			"worker user is configured");
	p = proc_start(g, errbuf, errlen);
	if (!p)
		goto fail;
	pthread_mutex_lock(&g->lock);
	g->proc = p;
	pthread_mutex_unlock(&g->lock);
	return g;
nomem:
	util_set_msg(errbuf, errlen, "out of memory");
fail:
	scanner_free(g);
	return NULL;
}

void scanner_acquire(struct scanner *g)
{
	atomic_fetch_add(&g->refs, 1);
}

/* Ends g's worker and frees g: its last reference is gone, so no request
 * is queued or in flight, and no starter runs. */
static void teardown(struct scanner *g)
{
	if (g->proc)
		proc_stop(g->proc);
	if (g->cfg.relay_free)
		g->cfg.relay_free(g->cfg.relay_arg);
	scanner_free(g);
}

static void *teardown_thread(void *arg)
{
	teardown(arg);
	return NULL;
}

void scanner_release(struct scanner *g)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	if (!scanner_thread) {
		teardown(g);
		return;
	}
	/* On a thread teardown() waits for (a request's done() dropped the
	 * last reference): done on one of its own. */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, teardown_thread, g);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		log_msg(LOG_LVL_ERROR, "scan workers: no thread to retire a generation: its "
			"worker stays until the agent exits");
}
