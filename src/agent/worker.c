/* worker.c -- a scan worker process (see worker.h). */
#include "agent/worker.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent/sandbox.h"
#include "agent/wmsg.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/engine.h"
#include "scan/smart.h"

/* Requests waiting for a scan thread at most; past it, refused. */
#define MAX_QUEUE 4096
#define MAX_SOURCES 32
#define MAX_THREADS 64
/* Bytes of log lines waiting for the writer thread at most. */
#define LOG_QUEUE_BYTES (256u << 10)
/* Seconds the agent gets beyond a source's own timeout to relay. */
#define RELAY_MARGIN 5

/* One file to scan: received by a thread that waits for a smart
 * protection answer, queued for the next free scan thread. */
struct job {
	uint64_t id;
	int fd;
	char *name;
	bool low;               /* WMSG_LOW: for the low priority thread */
	unsigned flags;         /* engine_scan_fd()'s (WMSG_ALLMATCH) */
	struct job *next;
};

/* A smart protection request waiting for the agent's answer. */
struct query {
	uint64_t id;
	bool done;
	int rc;
	long *status;
	struct util_buf *answer;
	size_t max;
	char *errbuf;
	size_t errlen;
	struct query *next;
};

/* The scan threads read the channel themselves: a request and its
 * descriptor come in one datagram, which one recvmsg() takes whole, so
 * the thread that reads a request scans it, with no hand-off. A thread
 * waiting for a smart protection answer reads too when no other thread
 * does, queueing the requests it takes for the next free thread. */
struct worker {
	int sock;
	struct engine *engine;
	struct smart *smart;
	pthread_mutex_t lock;   /* guards what follows */
	pthread_cond_t turn;    /* a query answered, or a reader left */
	unsigned readers;       /* threads waiting on the channel */
	struct job *head, *tail;
	size_t queued;
	/* Requests for the thread at the lowest CPU and idle I/O priority,
	 * which never reads the channel: a thread's priority can be lowered
	 * without privilege, never raised again. */
	struct job *low_head, *low_tail;
	pthread_cond_t low_cv;
	struct query *queries;
	uint64_t next_query;
};

/* What the command line says. */
struct options {
	int fd;
	const char *dir, *scratch, *proxy;
	bool builtin, smart;
	unsigned threads;
	struct sandbox_config sandbox;
	struct engine_limits limits;
	const char *sources[MAX_SOURCES];
	size_t nsources;
	int family;
	long source_timeout, retry_after;
};

/* Sends m; a channel the agent closed, or one that fails, ends the
 * worker. */
static void send_msg(struct worker *w, const struct wmsg *m)
{
	struct util_buf b = { 0 };

	if (wmsg_encode(m, &b) != 0) {
		log_msg(LOG_LVL_ERROR, "scan worker: a message could not be encoded");
	} else if (send(w->sock, b.data, b.len, MSG_NOSIGNAL) < 0) {
		if (errno == EPIPE || errno == ECONNRESET)
			_exit(0);
		log_msg(LOG_LVL_ERROR, "scan worker: sending to the agent: %s", strerror(errno));
		_exit(1);
	}
	util_buf_free(&b);
}

/* Copies name into buf (at most WMSG_MAX_SIGNAME bytes), control
 * characters replaced, as the channel takes it. */
static const char *channel_name(const char *name, char *buf)
{
	size_t i;

	for (i = 0; name[i] && i < WMSG_MAX_SIGNAME; i++)
		buf[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
	buf[i] = 0;
	return i ? buf : "?";
}

/* Scans fd (closed here) for request id, as flags (engine_scan_fd()'s)
 * say, and answers. */
static void scan_file(struct worker *w, uint64_t id, int fd, const char *name, unsigned flags)
{
	char names[WMSG_MAX_NAMES][WMSG_MAX_SIGNAME + 1];
	struct engine_result res = { 0 };
	struct smart_outcome out = { 0 };
	struct wmsg m = { .type = WMSG_RESULT, .id = id, .text = "" };
	char err[ENGINE_ERRLEN] = "";
	enum engine_err rc;
	size_t i;

	rc = w->smart ? smart_scan_fd(w->smart, w->engine, fd, name, flags, &res, &out, err,
				      sizeof(err)) :
	     engine_scan_fd(w->engine, fd, name, flags, NULL, NULL, &res, err, sizeof(err));
	if (rc != ENGINE_OK) {
		m.verdict = WMSG_ERROR;
		m.text = err[0] ? err : "the engine could not scan the file";
	} else {
		m.verdict = res.infected ? WMSG_INFECTED : out.unverified ? WMSG_UNVERIFIED :
			    WMSG_CLEAN;
		m.flags = out.asked ? WMSG_ASKED : 0;
		m.bytes = res.bytes_scanned;
		for (i = 0; res.infected && i < res.nnames && i < WMSG_MAX_NAMES; i++)
			m.names[m.nnames++] = channel_name(res.names[i], names[i]);
		if (m.verdict == WMSG_INFECTED && !m.nnames)
			m.names[m.nnames++] = "?";
	}
	send_msg(w, &m);
	engine_result_clear(&res);
	close(fd);
}

/* Answers request id with an error at once. */
static void refuse(struct worker *w, uint64_t id, const char *why)
{
	struct wmsg m = { .type = WMSG_RESULT, .id = id, .verdict = WMSG_ERROR, .text = why };

	send_msg(w, &m);
}

/* Queues a copy of the request read into src (its fd now owned here),
 * for the next scan thread that is free, or the low priority thread. */
static void enqueue(struct worker *w, const struct job *src)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j)
		j->name = strdup(src->name);
	if (!j || !j->name) {
		free(j);
		close(src->fd);
		refuse(w, src->id, "the scan worker is out of memory");
		return;
	}
	j->id = src->id;
	j->fd = src->fd;
	j->low = src->low;
	j->flags = src->flags;
	pthread_mutex_lock(&w->lock);
	if (w->queued >= MAX_QUEUE) {
		pthread_mutex_unlock(&w->lock);
		close(j->fd);
		free(j->name);
		free(j);
		refuse(w, src->id, "the scan worker has too many requests waiting");
		return;
	}
	if (j->low) {
		*(w->low_tail ? &w->low_tail->next : &w->low_head) = j;
		w->low_tail = j;
		pthread_cond_signal(&w->low_cv);
	} else {
		*(w->tail ? &w->tail->next : &w->head) = j;
		w->tail = j;
	}
	w->queued++;
	pthread_mutex_unlock(&w->lock);
}

/* Hands the agent's answer m to the query waiting for it (none: it has
 * given up). */
static void deliver(struct worker *w, const struct wmsg *m)
{
	struct query *q;

	pthread_mutex_lock(&w->lock);
	for (q = w->queries; q && q->id != m->id; q = q->next)
		;
	if (q && !q->done) {
		q->done = true;
		q->rc = -1;
		if (m->status == 0)
			util_set_msg(q->errbuf, q->errlen, "%s", m->text);
		else if (m->body_len > q->max)
			util_set_msg(q->errbuf, q->errlen, "an answer of more than %zu bytes",
				     q->max);
		else if (util_buf_append(q->answer, m->body, m->body_len) != 0)
			util_set_msg(q->errbuf, q->errlen, "out of memory");
		else
			q->rc = 0;
		*q->status = m->status;
		pthread_cond_broadcast(&w->turn);
	}
	pthread_mutex_unlock(&w->lock);
}

/* Reads one message from the agent, waiting at most wait_ms (-1: no
 * limit), into buf (WMSG_MAX bytes), and handles it: an answer goes to
 * its query; a scan request is returned in *j (name pointing into buf)
 * for the caller. Returns whether *j was filled. A closed channel ends
 * the worker, and so does a message that breaks the protocol. */
static bool receive(struct worker *w, unsigned char *buf, int wait_ms, struct job *j)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	struct pollfd pfd = { w->sock, POLLIN, 0 };
	struct iovec iov = { buf, WMSG_MAX };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
			      .msg_controllen = sizeof(ctl.b) };
	struct cmsghdr *c;
	struct wmsg m;
	char err[256];
	int fds[4], nfds = 0, k;
	ssize_t n;

	if (wait_ms >= 0 && poll(&pfd, 1, wait_ms) <= 0)
		return false;
	n = recvmsg(w->sock, &msg, MSG_CMSG_CLOEXEC | (wait_ms >= 0 ? MSG_DONTWAIT : 0));
	if (n == 0)
		_exit(0);  /* the agent closed the channel: nothing left to do */
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return false;  /* another thread took it */
	if (n < 0) {
		log_msg(LOG_LVL_ERROR, "scan worker: reading the channel: %s", strerror(errno));
		_exit(1);
	}
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (k = 0; (size_t)k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) &&
				    nfds < 4; k++)
				memcpy(&fds[nfds++], CMSG_DATA(c) + k * sizeof(int), sizeof(int));
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		log_msg(LOG_LVL_ERROR, "scan worker: a message from the agent was cut");
		_exit(1);
	}
	if (wmsg_decode(buf, (size_t)n, &m, err, sizeof(err)) != 0) {
		log_msg(LOG_LVL_ERROR, "scan worker: %s", err);
		_exit(1);
	}
	if (m.type == WMSG_SCAN && nfds == 1) {
		*j = (struct job){ .id = m.id, .fd = fds[0], .name = (char *)m.text,
				   .low = (m.flags & WMSG_LOW) != 0,
				   .flags = m.flags & WMSG_ALLMATCH ? ENGINE_SCAN_ALLMATCH : 0 };
		return true;
	}
	for (k = 0; k < nfds; k++)
		close(fds[k]);
	if (m.type == WMSG_SCAN) {
		refuse(w, m.id, "a scan request came without exactly one descriptor");
	} else if (m.type == WMSG_ANSWER && !nfds) {
		deliver(w, &m);
	} else {
		log_msg(LOG_LVL_ERROR, "scan worker: unexpected message type %u from the agent",
			(unsigned)m.type);
		_exit(1);
	}
	return false;
}

/* The thread's receive buffer, made on first use. */
static unsigned char *thread_buf(void)
{
	static _Thread_local unsigned char *buf;

	if (!buf)
		buf = malloc(WMSG_MAX);
	if (!buf) {
		log_msg(LOG_LVL_ERROR, "scan worker: out of memory");
		_exit(1);
	}
	return buf;
}

/* Reads one message as one of the threads waiting on the channel; a
 * thread waiting for an answer learns when it stops reading. */
static bool read_turn(struct worker *w, int wait_ms, struct job *j)
{
	bool got;

	pthread_mutex_lock(&w->lock);
	w->readers++;
	pthread_mutex_unlock(&w->lock);
	got = receive(w, thread_buf(), wait_ms, j);
	pthread_mutex_lock(&w->lock);
	w->readers--;
	pthread_cond_broadcast(&w->turn);
	pthread_mutex_unlock(&w->lock);
	return got;
}

/* The thread of the low priority requests (scan.cpu=low): the lowest CPU
 * priority and the idle I/O class, its own only (sandbox.c allows exactly
 * these two calls). */
static void *low_thread(void *arg)
{
	struct worker *w = arg;
	struct job *q;

	if (setpriority(PRIO_PROCESS, 0, 19) != 0)
		log_msg(LOG_LVL_WARN, "scan worker: nice 19: %s", strerror(errno));
	if (syscall(SYS_ioprio_set, SANDBOX_IOPRIO_WHO_PROCESS, 0, SANDBOX_IOPRIO_IDLE) != 0)
		log_msg(LOG_LVL_WARN, "scan worker: the idle I/O class: %s", strerror(errno));
	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (!w->low_head)
			pthread_cond_wait(&w->low_cv, &w->lock);
		q = w->low_head;
		w->low_head = q->next;
		if (!w->low_head)
			w->low_tail = NULL;
		w->queued--;
		pthread_mutex_unlock(&w->lock);
		scan_file(w, q->id, q->fd, q->name, q->flags);
		free(q->name);
		free(q);
	}
	return NULL;
}

/* Takes a queued request, or reads the channel for one, and scans it. */
static void *scan_thread(void *arg)
{
	struct worker *w = arg;
	struct job j, *q;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		q = w->head;
		if (q) {
			w->head = q->next;
			if (!w->head)
				w->tail = NULL;
			w->queued--;
		}
		pthread_mutex_unlock(&w->lock);
		if (q) {
			scan_file(w, q->id, q->fd, q->name, q->flags);
			free(q->name);
			free(q);
		} else if (read_turn(w, -1, &j)) {
			if (j.low)
				enqueue(w, &j);
			else
				scan_file(w, j.id, j.fd, j.name, j.flags);
		}
	}
	return NULL;
}

/* Smart scan's transport: the request goes to the agent, which posts it
 * to source i and sends back what the source answered. The waiting
 * thread reads the channel itself while no other thread does. */
static int channel_post(void *arg, size_t i, const char *body, size_t len, long timeout,
			size_t max, long *status, struct util_buf *answer, char *errbuf,
			size_t errlen)
{
	struct worker *w = arg;
	struct query q = { .status = status, .answer = answer, .max = max, .errbuf = errbuf,
			   .errlen = errlen };
	struct wmsg m = { .type = WMSG_QUERY, .source = (uint32_t)i, .text = "",
			  .body = (const unsigned char *)body, .body_len = len };
	struct query **pp;
	struct timespec ts, now;
	struct job j;
	long left_ms;

	timeout = timeout < 1 ? 1 : timeout > 3600 ? 3600 : timeout;
	m.timeout = (uint32_t)timeout;
	if (len + WMSG_HEADER + 8 > WMSG_MAX) {
		util_set_msg(errbuf, errlen, "a request of %zu bytes is larger than the scan "
			     "worker's channel takes", len);
		return -1;
	}
	pthread_mutex_lock(&w->lock);
	q.id = m.id = ++w->next_query;
	q.next = w->queries;
	w->queries = &q;
	pthread_mutex_unlock(&w->lock);
	send_msg(w, &m);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout + RELAY_MARGIN;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left_ms = (ts.tv_sec - now.tv_sec) * 1000 + (ts.tv_nsec - now.tv_nsec) / 1000000;
		if (q.done || left_ms <= 0)
			break;
		if (w->readers) {  /* a reader delivers the answer */
			pthread_cond_timedwait(&w->turn, &w->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&w->lock);
		if (read_turn(w, (int)(left_ms > 1000 ? 1000 : left_ms), &j))
			enqueue(w, &j);
		pthread_mutex_lock(&w->lock);
	}
	for (pp = &w->queries; *pp != &q; pp = &(*pp)->next)
		;
	*pp = q.next;
	pthread_mutex_unlock(&w->lock);
	if (!q.done) {
		util_set_msg(errbuf, errlen, "the agent did not relay the request in %ld s",
			     timeout + RELAY_MARGIN);
		return -1;
	}
	return q.rc;
}

/* Parses an unsigned number of at most max into *v. */
static bool number(const char *s, unsigned long long max, unsigned long long *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end && !errno && *v <= max;
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
		{ "fd", required_argument, NULL, 'f' },
		{ "dir", required_argument, NULL, 'd' },
		{ "builtin", no_argument, NULL, 'b' },
		{ "smart", no_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "scratch", required_argument, NULL, 'w' },
		{ "max-filesize", required_argument, NULL, 'F' },
		{ "max-scansize", required_argument, NULL, 'S' },
		{ "max-files", required_argument, NULL, 'N' },
		{ "max-recursion", required_argument, NULL, 'R' },
		{ "max-scantime", required_argument, NULL, 'T' },
		{ "source", required_argument, NULL, 'o' },
		{ "proxy", required_argument, NULL, 'p' },
		{ "family", required_argument, NULL, 'a' },
		{ "source-timeout", required_argument, NULL, 'O' },
		{ "retry-after", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long v;
	int c;
	bool ok = true, uid = false, gid = false;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	o->threads = 1;
	o->family = AF_UNSPEC;
	engine_limits_default(&o->limits);
	optind = 1;
	while (ok && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *a = optarg;

		switch (c) {
		case 'f': ok = number(a, 1 << 20, &v); o->fd = (int)v; break;
		case 'd': o->dir = a; break;
		case 'b': o->builtin = true; break;
		case 's': o->smart = true; break;
		case 't': ok = number(a, MAX_THREADS, &v) && v; o->threads = (unsigned)v; break;
		case 'u': ok = number(a, UINT32_MAX - 1, &v); o->sandbox.uid = (uid_t)v; uid = true;
			break;
		case 'g': ok = number(a, UINT32_MAX - 1, &v); o->sandbox.gid = (gid_t)v; gid = true;
			break;
		case 'w': o->scratch = a; break;
		case 'F': ok = number(a, UINT64_MAX, &v); o->limits.max_filesize = v; break;
		case 'S': ok = number(a, UINT64_MAX, &v); o->limits.max_scansize = v; break;
		case 'N': ok = number(a, UINT32_MAX, &v); o->limits.max_files = (uint32_t)v; break;
		case 'R': ok = number(a, UINT32_MAX, &v); o->limits.max_recursion = (uint32_t)v;
			break;
		case 'T': ok = number(a, UINT32_MAX, &v); o->limits.max_scantime = (uint32_t)v;
			break;
		case 'o': ok = o->nsources < MAX_SOURCES; o->sources[o->nsources++] = a; break;
		case 'p': o->proxy = a; break;
		case 'a': ok = strcmp(a, "any") == 0 || strcmp(a, "ipv4") == 0 ||
			       strcmp(a, "ipv6") == 0;
			o->family = strcmp(a, "ipv4") == 0 ? AF_INET :
				    strcmp(a, "ipv6") == 0 ? AF_INET6 : AF_UNSPEC;
			break;
		case 'O': ok = number(a, 3600, &v); o->source_timeout = (long)v; break;
		case 'r': ok = number(a, 86400, &v); o->retry_after = (long)v; break;
		default: ok = false; break;
		}
	}
	if (!ok || optind != argc || o->fd < 0 || uid != gid || !o->scratch ||
	    (o->smart && !o->dir) || (!o->dir && !o->builtin)) {
		log_msg(LOG_LVL_ERROR, "scan worker: a bad command line (ward-agent starts its "
			"workers itself)");
		return -1;
	}
	o->sandbox.set_user = uid;
	o->sandbox.scratch = o->scratch;
	return 0;
}

/* Loads and compiles the engine, and for smart scan its state. */
static int load(struct worker *w, const struct options *o)
{
	struct engine_config cfg = { .official = true, .limits = o->limits };
	struct smart_config sc = { .sources = o->sources, .nsources = o->nsources,
				   .proxy = o->proxy, .family = o->family,
				   .timeout = o->source_timeout, .retry_after = o->retry_after,
				   .post = channel_post, .post_arg = w };
	char err[ENGINE_ERRLEN];
	enum engine_err rc;

	if (o->smart)
		cfg = smart_engine_config(&cfg);
	w->engine = engine_new(&cfg, &rc, err, sizeof(err));
	if (!w->engine ||
	    (o->dir && engine_has_databases(o->dir) &&
	     engine_load(w->engine, o->dir, err, sizeof(err)) != ENGINE_OK) ||
	    (o->builtin && engine_load_builtin(w->engine, err, sizeof(err)) != ENGINE_OK) ||
	    engine_compile(w->engine, err, sizeof(err)) != ENGINE_OK) {
		log_msg(LOG_LVL_ERROR, "scan worker: %s", err);
		return -1;
	}
	if (o->smart) {
		w->smart = smart_new(o->dir, &sc, err, sizeof(err));
		if (!w->smart) {
			log_msg(LOG_LVL_ERROR, "scan worker: %s", err);
			return -1;
		}
	}
	return 0;
}

int worker_main(int argc, char **argv)
{
	struct worker w = { .sock = -1 };
	struct sandbox_report rep;
	struct options o;
	struct wmsg ready = { .type = WMSG_READY, .text = "" };
	char err[512];
	pthread_t t;
	unsigned i;

	if (parse(argc, argv, &o) != 0)
		return 2;
	w.sock = o.fd;
	pthread_mutex_init(&w.lock, NULL);
	util_cond_init_monotonic(&w.turn);
	pthread_cond_init(&w.low_cv, NULL);
	engine_tune_allocator();
	/* Everything read from files is read now, before the lockdown. */
	if (load(&w, &o) != 0)
		return 1;
	if (sandbox_apply(&o.sandbox, &rep, err, sizeof(err)) != 0) {
		log_msg(LOG_LVL_ERROR, "scan worker: confining itself: %s", err);
		return 1;
	}
	/* Its lines go through a writer thread (made confined, as every
	 * thread from here on): a stalled log reader never holds a scan. */
	if (log_queue_start(LOG_QUEUE_BYTES) != 0)
		log_msg(LOG_LVL_WARN, "scan worker: its log lines are written directly");
	if (!rep.landlock_abi)
		log_msg(LOG_LVL_WARN, "scan worker: no Landlock (%s): its file access is "
			"limited by its user and the system call filter only",
			rep.landlock_why);
	/* Ready is said before any thread reads the channel. */
	ready.signatures = engine_signatures(w.engine);
	send_msg(&w, &ready);
	if (pthread_create(&t, NULL, low_thread, &w) != 0 || pthread_detach(t) != 0) {
		log_msg(LOG_LVL_ERROR, "scan worker: starting its low priority thread failed");
		return 1;
	}
	for (i = 1; i < o.threads; i++)
		if (pthread_create(&t, NULL, scan_thread, &w) != 0 || pthread_detach(t) != 0) {
			log_msg(LOG_LVL_ERROR, "scan worker: starting its scan threads failed");
			return 1;
		}
	/* This thread is a scan thread too; the channel's end ends the
	 * process (never a return: the others may be inside the engine). */
	scan_thread(&w);
	return 1;
}
