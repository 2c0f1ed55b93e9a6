/* scanner.c -- generations of scan workers (see scanner.h). */
#include "agent/scanner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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

/* A scan waiting for its verdict; on the scanning thread's stack. */
struct request {
	uint64_t id;
	bool done;
	enum scanner_err err;
	struct engine_result *res;
	struct smart_outcome *out;
	char *errbuf;
	size_t errlen;
	pthread_cond_t cond;
	struct request *next;
};

/* A worker's smart protection request, waiting for a relay thread. */
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
	atomic_uint refs;          /* the generation's, and each request's */
	pthread_mutex_t lock;      /* guards what follows */
	pthread_cond_t relay_cv;
	bool dead, stopping;
	char why[512];             /* dead: what happened to it */
	uint64_t next_id;
	struct request *pending;
	uint64_t overdue[MAX_THREADS];  /* requests given up on, unanswered */
	unsigned noverdue;
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
	pthread_mutex_t lock;       /* guards proc and the start state */
	struct proc *proc;          /* the worker now; NULL: none yet */
	uint64_t retry_at;          /* no start before (after a failed one) */
	char start_error[512];
};

static void cond_init(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

static struct timespec deadline(unsigned seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += seconds;
	return ts;
}

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

/* Takes the verdict m for its request. Returns false when the worker
 * answered a request never sent to it. */
static bool finish(struct proc *p, const struct wmsg *m)
{
	struct request **pp, *r;
	size_t i;

	pthread_mutex_lock(&p->lock);
	if (m->id == 0 || m->id > p->next_id) {
		pthread_mutex_unlock(&p->lock);
		return false;
	}
	for (pp = &p->pending; *pp && (*pp)->id != m->id; pp = &(*pp)->next)
		;
	r = *pp;
	if (!r) {  /* its scan gave up waiting */
		for (i = 0; i < p->noverdue; i++)
			if (p->overdue[i] == m->id)
				p->overdue[i] = p->overdue[--p->noverdue];
		pthread_mutex_unlock(&p->lock);
		return true;
	}
	*pp = r->next;
	r->err = SCANNER_OK;
	if (m->verdict == WMSG_ERROR) {
		r->err = SCANNER_ESCAN;
		util_set_msg(r->errbuf, r->errlen, "%s", m->text);
	} else if (m->nnames) {
		r->res->names = calloc(m->nnames, sizeof(*r->res->names));
		for (i = 0; r->res->names && i < m->nnames; i++) {
			r->res->names[i] = strdup(m->names[i]);
			if (!r->res->names[i])
				break;
			r->res->nnames++;
		}
		if (r->res->nnames != m->nnames) {
			r->err = SCANNER_ENOMEM;
			util_set_msg(r->errbuf, r->errlen, "out of memory");
		}
	}
	r->res->infected = m->verdict == WMSG_INFECTED;
	r->res->bytes_scanned = m->bytes;
	r->out->asked = (m->flags & WMSG_ASKED) != 0;
	r->out->unverified = m->verdict == WMSG_UNVERIFIED;
	r->done = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&p->lock);
	return true;
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
	j->timeout = m->timeout;
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

	for (;;) {
		struct util_buf ans = { 0 };
		struct wmsg m = { .type = WMSG_ANSWER, .text = "" };
		long status = 0;

		pthread_mutex_lock(&p->lock);
		while (!p->rq_head && !p->stopping && !p->dead)
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

/* The end of a worker: reaped, marked dead, its requests failed with why. */
static void end(struct proc *p, const char *why, bool violation)
{
	char how[128], msg[512];
	struct request *r;

	if (violation) {
		log_msg(LOG_LVL_ERROR, "scan worker %d: %s; killed", (int)p->pid, why);
		kill(p->pid, SIGKILL);
	}
	reap(p->pid, violation ? 0 : EXIT_GRACE_MS, how, sizeof(how));
	snprintf(msg, sizeof(msg), "the scan worker (pid %d) %s%s%s", (int)p->pid, how,
		 violation ? " after " : "", violation ? why : "");
	pthread_mutex_lock(&p->lock);
	if (!p->stopping && !violation)
		log_msg(LOG_LVL_ERROR, "%s", msg);
	p->dead = true;
	snprintf(p->why, sizeof(p->why), "%s", msg);
	while ((r = p->pending)) {
		p->pending = r->next;
		r->err = SCANNER_EWORKER;
		util_set_msg(r->errbuf, r->errlen, "%s; the file was not scanned", msg);
		r->done = true;
		pthread_cond_signal(&r->cond);
	}
	pthread_cond_broadcast(&p->relay_cv);
	pthread_mutex_unlock(&p->lock);
}

/* Reads the worker's messages; every one is checked before use. */
static void *reader_thread(void *arg)
{
	struct proc *p = arg;
	unsigned char *buf = malloc(WMSG_MAX);
	char why[512] = "";
	struct iovec iov;
	struct msghdr msg;
	struct wmsg m;
	bool violation = false;
	ssize_t n;

	while (buf) {
		iov = (struct iovec){ buf, WMSG_MAX };
		msg = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1 };
		/* No room for control data: descriptors a worker sends are
		 * dropped by the kernel, and flagged. */
		n = recvmsg(p->sock, &msg, MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(why, sizeof(why), "%s", n == 0 ? "closed its channel" :
				 strerror(errno));
			break;
		}
		violation = true;
		if (msg.msg_flags & MSG_CTRUNC) {
			snprintf(why, sizeof(why), "sent descriptors over its channel");
			break;
		}
		if ((size_t)n > WMSG_MAX) {
			snprintf(why, sizeof(why), "sent a message of %zd bytes (at most %u)", n,
				 WMSG_MAX);
			break;
		}
		if (wmsg_decode(buf, (size_t)n, &m, why, sizeof(why)) != 0)
			break;
		if (m.type == WMSG_RESULT && !finish(p, &m)) {
			snprintf(why, sizeof(why), "answered request %llu, which it was never sent",
				 (unsigned long long)m.id);
			break;
		}
		if (m.type == WMSG_QUERY)
			relay_push(p, &m);
		else if (m.type != WMSG_RESULT) {
			snprintf(why, sizeof(why), "sent a message of type %u", (unsigned)m.type);
			break;
		}
		violation = false;
	}
	if (!buf)
		snprintf(why, sizeof(why), "could not be read: out of memory");
	free(buf);
	end(p, why, violation || !buf);
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

/* Drops a reference on p; the last closes the channel (the worker exits),
 * waits for its threads and frees it. */
static void proc_put(struct proc *p)
{
	unsigned i;

	if (atomic_fetch_sub(&p->refs, 1) != 1)
		return;
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

/* Starts a worker of g and waits until it is ready. Called with g->lock
 * held. */
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
	atomic_init(&p->refs, 1);
	pthread_mutex_init(&p->lock, NULL);
	cond_init(&p->relay_cv);
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

/* Returns the worker to send a request to, with a reference, starting
 * one when there is none or the last one died. */
static struct proc *proc_get(struct scanner *g, char *errbuf, size_t errlen)
{
	struct proc *p, *old = NULL;
	bool dead;

	pthread_mutex_lock(&g->lock);
	p = g->proc;
	if (p) {
		pthread_mutex_lock(&p->lock);
		dead = p->dead;
		pthread_mutex_unlock(&p->lock);
		if (dead) {
			old = p;
			p = g->proc = NULL;
		}
	}
	if (!p && util_now_ns() < g->retry_at) {
		util_set_msg(errbuf, errlen, "%s; tried again soon", g->start_error);
	} else if (!p) {
		p = g->proc = proc_start(g, g->start_error, sizeof(g->start_error));
		if (!p) {
			g->retry_at = util_now_ns() + RESTART_PAUSE_NS;
			util_set_msg(errbuf, errlen, "%s", g->start_error);
			log_msg(LOG_LVL_ERROR, "%s", g->start_error);
		}
	}
	if (p)
		atomic_fetch_add(&p->refs, 1);
	pthread_mutex_unlock(&g->lock);
	if (old)
		proc_put(old);
	return p;
}

enum scanner_err scanner_scan_fd(struct scanner *g, int fd, const char *name,
				 unsigned timeout, struct engine_result *res,
				 struct smart_outcome *out, char *errbuf, size_t errlen)
{
	char shown[WMSG_MAX_TEXT + 1], why[256];
	struct request r = { .res = res, .out = out, .errbuf = errbuf, .errlen = errlen };
	struct wmsg m = { .type = WMSG_SCAN, .text = shown };
	struct request **pp;
	struct timespec ts;
	struct proc *p;
	bool sent, stuck = false;

	memset(res, 0, sizeof(*res));
	memset(out, 0, sizeof(*out));
	snprintf(shown, sizeof(shown), "%s", name);
	if (fd < 0) {
		util_set_msg(errbuf, errlen, "%s: no descriptor to scan", name);
		return SCANNER_ESCAN;
	}
	p = proc_get(g, errbuf, errlen);
	if (!p)
		return SCANNER_ESTART;
	cond_init(&r.cond);
	pthread_mutex_lock(&p->lock);
	if (p->dead) {
		util_set_msg(errbuf, errlen, "%s; the file was not scanned", p->why);
		r.err = SCANNER_EWORKER;
		pthread_mutex_unlock(&p->lock);
		goto out;
	}
	r.id = m.id = ++p->next_id;
	r.next = p->pending;
	p->pending = &r;
	pthread_mutex_unlock(&p->lock);
	sent = send_msg(p->sock, &m, fd, why, sizeof(why)) == 0;
	ts = deadline(timeout ? timeout : g->cfg.scan_timeout);
	pthread_mutex_lock(&p->lock);
	while (sent && !r.done && pthread_cond_timedwait(&r.cond, &p->lock, &ts) != ETIMEDOUT)
		;
	if (!r.done) {  /* still pending: taken off the list */
		for (pp = &p->pending; *pp != &r; pp = &(*pp)->next)
			;
		*pp = r.next;
	}
	if (!r.done && !sent) {
		r.err = SCANNER_EWORKER;
		util_set_msg(errbuf, errlen, "%s; the file was not scanned", why);
	} else if (!r.done) {
		r.err = SCANNER_ETIMEOUT;
		util_set_msg(errbuf, errlen, "%s: no verdict from the scan worker in %u s", name,
			     timeout ? timeout : g->cfg.scan_timeout);
		/* As many requests overdue as it has scan threads: they are
		 * stuck (a file that never ends, a loop in a parser), and the
		 * worker can serve no one. */
		if (p->noverdue < MAX_THREADS)
			p->overdue[p->noverdue++] = r.id;
		stuck = p->noverdue >= g->cfg.threads && !p->dead;
		if (stuck) {  /* new scans go to a new worker at once */
			p->dead = true;
			snprintf(p->why, sizeof(p->why), "the scan worker (pid %d) was stuck and "
				 "killed", (int)p->pid);
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (stuck) {
		log_msg(LOG_LVL_ERROR, "scan worker %d: %u requests past their deadline, as many "
			"as its scan threads; killed", (int)p->pid, g->cfg.threads);
		kill(p->pid, SIGKILL);  /* not reaped yet: the reader reaps it */
	}
out:
	pthread_cond_destroy(&r.cond);
	proc_put(p);
	return r.err;
}

int scanner_sjob_scan(void *arg, int fd, const char *name, struct engine_result *res,
		      struct smart_outcome *out, char *errbuf, size_t errlen)
{
	return scanner_scan_fd(arg, fd, name, 0, res, out, errbuf, errlen) == SCANNER_OK ? 0 :
	       -1;
}

pid_t scanner_pid(struct scanner *g)
{
	pid_t pid = 0;

	pthread_mutex_lock(&g->lock);
	if (g->proc) {
		pthread_mutex_lock(&g->proc->lock);
		pid = g->proc->dead ? 0 : g->proc->pid;
		pthread_mutex_unlock(&g->proc->lock);
	}
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
	pthread_mutex_lock(&g->lock);
	g->proc = proc_start(g, errbuf, errlen);
	pthread_mutex_unlock(&g->lock);
	if (!g->proc)
		goto fail;
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

void scanner_release(struct scanner *g)
{
	if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	if (g->proc)
		proc_put(g->proc);
	scanner_free(g);
}
