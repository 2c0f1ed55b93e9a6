/* clamd.c -- the agent's clamd service (see clamd.h). */
#include "agent/clamd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/astate.h"
#include "agent/channel.h"
#include "agent/components.h"
#include "agent/cproto.h"
#include "agent/reports.h"
#include "agent/scanner.h"
#include "agent/vault.h"
#include "common/log.h"
#include "common/updater.h"
#include "common/util.h"
#include "scan/cache.h"
#include "scan/job.h"

/* The path Debian's clamd answers on, for programs configured for it. */
#define DEBIAN_SOCKET "/run/clamav/clamd.ctl"
#define MAX_LISTENERS 16
/* Replies waiting to be written to a client that does not read: past
 * this, nothing more is read from it. */
#define MAX_OUT (1u << 20)

struct listener {
	struct clamd *d;
	int fd;
	bool local;  /* a UNIX socket: peers have credentials, FILDES works */
	char *path;  /* UNIX: removed at the end */
};

enum mode {
	MODE_COMMAND,   /* reading commands */
	MODE_STREAM,    /* reading INSTREAM's chunks */
	MODE_FILDES,    /* FILDES read: waiting for its byte and descriptor */
	MODE_PORT,      /* legacy STREAM: its data comes on a port of its own */
	MODE_WAITREPLY, /* the one command outside a session was taken */
	MODE_DONE,      /* END, an error, EOF: closes once answered */
	MODE_CLOSING,   /* answered and shut for writing: what the client
			 * still sends is read and dropped until it closes
			 * (or 2 s), so that it reads the answer, not a reset */
};

struct conn {
	struct clamd *d;
	int fd;
	bool local;
	pid_t pid;               /* local peers (SO_PEERCRED); 0: unknown */
	uid_t uid;
	char exe[PATH_MAX];      /* the client program; "" unknown */
	char addr[64];           /* TCP peers: address:port */
	char in[CPROTO_MAX_COMMAND + 1];
	size_t nin;
	int recvfd;              /* a descriptor received, not claimed yet */
	enum mode mode;
	bool session;
	unsigned id;             /* the next command's id in a session */
	char term;               /* the last command's terminator */
	bool eof;                /* the client sends no more (shut or closed) */
	bool loopback;           /* a TCP client on a loopback address */
	unsigned fildes_id;      /* FILDES waiting for its descriptor: its id */
	char fildes_term;        /* and terminator */
	uint64_t out_since_ms;   /* when output last went out, or began to wait */
	struct cproto_stream stream;
	uint64_t stream_got;     /* bytes of the stream in streamfd */
	int streamfd;            /* INSTREAM's and STREAM's data (a memfd) */
	int port_fd;             /* STREAM: the port listening, then the data's
				  * connection */
	bool port_data;          /* port_fd is the data's connection */
	uint64_t port_bytes;
	unsigned stream_id;
	char stream_term;
	struct util_buf out;
	size_t out_at;           /* bytes of out written */
	unsigned pending;        /* requests dispatched, not answered */
	bool watching_out;
	uint64_t deadline_ms;    /* reading gives up then (pending == 0) */
	atomic_bool cancel;      /* the path scans it holds stop */
	struct conn *prev, *next;
};

/* A scan request: a descriptor or stream to the workers, or a path to a
 * pool thread. Owns fd and path. */
struct req {
	struct conn *c;
	enum cproto_cmd cmd;
	unsigned id;             /* 0: outside a session */
	char term;
	int fd;
	char name[40];           /* the reply's name: "stream", "fd[N]" */
	char *path;
	const struct components_handle *h;
	bool smart;              /* h is smart scan's (kept once h is released) */
	bool commit;             /* MULTISCAN: the cache learned verdicts */
	bool path_cmd;           /* counted in clamd's paths */
	struct engine_result res; /* FILDES, clamd.actions: what the pool acts on */
	uint64_t stream_bytes;   /* the stream's bytes, counted in the budget */
	struct util_buf reply;   /* built off the loop, handed back whole */
	json_t *found;           /* detections to queue */
	struct req *next;        /* the pool's queue */
};

struct clamd {
	struct agent *a;
	struct loop *loop;
	struct channel *ch;
	struct vault *vault;     /* clamd.actions: path commands' findings acted on */
	struct listener lst[MAX_LISTENERS];
	size_t nlst;
	bool accepting;
	struct conn *conns;
	unsigned nconns;
	uint64_t sweeper;
	/* The pool: path commands and detection reports. */
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct req *first, *last;
	bool stopping;
	/* The verdicts of MULTISCAN (clamd.cache): for the component of
	 * cache_name and cache_version; walks hold the lock shared, a switch
	 * to another component and a save hold it alone. */
	pthread_rwlock_t cache_lock;
	struct scache *cache;
	char cache_name[64];
	int64_t cache_version;
	pthread_t *threads;
	size_t nthreads;
	/* Settings and counters: read by clamd_status() on any thread. */
	atomic_bool closing;     /* SHUTDOWN: the listeners close */
	uint64_t stream_bytes;   /* bytes of streams held (loop's thread) */
	bool held;               /* a connection is not read for the caps */
	atomic_uint paths;       /* path commands queued or walked */
	uint64_t last_reload_ms; /* when RELOAD last asked for an update */
	struct sjob_pattern proc; /* /proc and what is in it */
	atomic_uint inflight;    /* requests with the scan workers */
	atomic_bool unverified_ok; /* clamd.unverified = clean */
	atomic_uint_fast64_t requests, found, errors, unverified, cached;
};

static void conn_free(struct conn *c);
static void port_close(struct conn *c);
static void process(struct conn *c);

/* Forgets the stream c was receiving: its memfd and its bytes. */
static void stream_drop(struct conn *c)
{
	if (c->streamfd >= 0)
		close(c->streamfd);
	c->streamfd = -1;
	c->d->stream_bytes -= c->stream_got;
	c->stream_got = 0;
}

/* The client is gone (a reset, an error): what it asked is dropped, the
 * connection closed (freed once its answers are in). */
static void conn_drop(struct conn *c)
{
	atomic_store(&c->cancel, true);
	conn_free(c);
}

/* Output. */

/* Appends one reply line of c: "<id>: " inside a session, the text, the
 * terminator. */
static void reply_add(struct util_buf *b, unsigned id, char term, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void reply_add(struct util_buf *b, unsigned id, char term, const char *fmt, ...)
{
	char line[PATH_MAX + 1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (id)
		util_buf_printf(b, "%u: ", id);
	util_buf_append(b, line, strlen(line));
	util_buf_append(b, &term, 1);
}

/* Writes what c has to send; watches for room when the socket is full. */
static void flush_out(struct conn *c)
{
	ssize_t n;

	while (c->fd >= 0 && c->out_at < c->out.len) {
		n = send(c->fd, c->out.data + c->out_at, c->out.len - c->out_at,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* The client went away: what it waits for is dropped. */
			c->out_at = c->out.len;
			c->mode = MODE_DONE;
			atomic_store(&c->cancel, true);
			break;
		}
		c->out_at += (size_t)n;
		c->out_since_ms = loop_now_ms();
	}
	if (c->out_at == c->out.len) {
		c->out.len = 0;
		c->out_at = 0;
		c->out_since_ms = 0;
	} else if (!c->out_since_ms) {
		c->out_since_ms = loop_now_ms();
	}
}

/* Connections. */

/* Whether the service holds all its caps allow, so that no new command is
 * read (a stream under way goes on: each is bounded by stream_max_length):
 * clamd.max_scans streams and descriptors with the workers, streams of
 * clamd.stream_memory bytes, clamd.max_threads path commands walked and
 * clamd.max_queue waiting for a walker (clamd's MaxQueue). Marks the
 * connections held, to be read again once under them. */
static bool capped(struct clamd *d)
{
	const struct agent_config *o = &d->a->cfg;

	if (atomic_load(&d->inflight) < (unsigned)o->clamd_max_scans &&
	    d->stream_bytes < (uint64_t)o->clamd_stream_memory &&
	    atomic_load(&d->paths) < (unsigned)(o->clamd_max_threads + o->clamd_max_queue))
		return false;
	d->held = true;
	return true;
}

/* The commands clamd hands to its threads. */
static bool dispatched(enum cproto_cmd cmd)
{
	return cmd == CPROTO_SCAN || cmd == CPROTO_CONTSCAN || cmd == CPROTO_MULTISCAN ||
	       cmd == CPROTO_ALLMATCHSCAN || cmd == CPROTO_STATS;
}

static uint32_t conn_events(const struct conn *c)
{
	uint32_t ev = 0;
	const struct agent_config *o = &c->d->a->cfg;
	bool held = (c->mode == MODE_COMMAND || c->mode == MODE_FILDES) && capped(c->d);

	if (c->mode == MODE_CLOSING)
		return c->eof ? 0 : EPOLLIN;
	/* A full buffer is read no further: its commands wait for the caps. */
	if (!c->eof && !held && c->nin < CPROTO_MAX_COMMAND &&
	    (c->mode == MODE_COMMAND || c->mode == MODE_STREAM || c->mode == MODE_FILDES ||
	     c->mode == MODE_WAITREPLY) &&
	    c->out.len < MAX_OUT && c->pending < (unsigned)o->clamd_max_queue)
		ev |= EPOLLIN;
	if (c->out.len > c->out_at)
		ev |= EPOLLOUT;
	return ev;
}

/* Closes c once nothing is owed to it; else updates what it waits for. */
static void conn_settle(struct conn *c)
{
	bool over;

	flush_out(c);
	over = c->fd < 0 || c->mode == MODE_DONE ||
	       (c->mode == MODE_WAITREPLY && !c->session);
	if (over && !c->pending && c->out.len == 0) {
		if (c->fd < 0 || shutdown(c->fd, SHUT_WR) != 0) {
			conn_free(c);
			return;
		}
		c->mode = MODE_CLOSING;
		c->deadline_ms = loop_now_ms() + 2000;
	}
	if (c->fd >= 0)
		loop_fd_modify(c->d->loop, c->fd, conn_events(c));
}

static void conn_free(struct conn *c)
{
	struct clamd *d = c->d;

	if (c->fd >= 0) {
		loop_fd_remove(d->loop, c->fd);
		close(c->fd);
		c->fd = -1;
	}
	atomic_store(&c->cancel, true);
	if (c->pending)
		return; /* freed by the last answer */
	if (c->recvfd >= 0)
		close(c->recvfd);
	stream_drop(c);
	port_close(c);
	util_buf_free(&c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	d->nconns--; /* the sweep accepts again */
}

/* An error reply that ends the connection, as clamd's. */
static void fail(struct conn *c, const char *text)
{
	if (text)
		reply_add(&c->out, c->session ? c->id : 0, c->term, "%s", text);
	c->mode = MODE_DONE;
}

/* Requests. */

static struct req *req_new(struct conn *c, enum cproto_cmd cmd)
{
	struct req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->c = c;
	r->cmd = cmd;
	r->id = c->session ? c->id : 0;
	r->term = c->term;
	r->fd = -1;
	c->pending++;
	atomic_fetch_add(&c->d->requests, 1);
	return r;
}

/* Frees r (its descriptor, its handle on the component). */
static void req_free(struct clamd *d, struct req *r)
{
	if (r->fd >= 0)
		close(r->fd);
	components_release(d->a->comps, r->h);
	free(r->path);
	engine_result_clear(&r->res);
	util_buf_free(&r->reply);
	json_decref(r->found);
	free(r);
}

/* The pool's queue: at its end, or first (what a client waits for that no
 * walk should hold up). Any thread. */
static void pool_push(struct clamd *d, struct req *r, bool first)
{
	pthread_mutex_lock(&d->lock);
	r->next = first ? d->first : NULL;
	if (first)
		d->first = r;
	else if (d->last)
		d->last->next = r;
	else
		d->first = r;
	if (!r->next)
		d->last = r;
	pthread_cond_signal(&d->work);
	pthread_mutex_unlock(&d->lock);
}

/* Adds the detections of path (names) to r's reports for the server
 * (docs/protocol.md, "What a detection says"), and logs them. */
static void add_found(struct req *r, const char *path, const char *const *names, size_t n)
{
	const struct conn *c = r->c;
	json_t *det, *p;
	size_t i;

	if (!r->found)
		r->found = json_array();
	for (i = 0; i < n; i++) {
		if (c->local)
			log_msg(LOG_LVL_WARN, "clamd: %s: %s found (pid %d, uid %u, %s)", path,
				names[i], (int)c->pid, (unsigned)c->uid,
				c->exe[0] ? c->exe : "unknown executable");
		else
			log_msg(LOG_LVL_WARN, "clamd: %s: %s found (client %s)", path, names[i],
				c->addr);
		p = c->local ? json_pack("{sI sI}", "pid", (json_int_t)c->pid, "uid",
					 (json_int_t)c->uid) :
			       json_pack("{ss}", "address", c->addr);
		if (p && c->exe[0])
			json_object_set_new(p, "exe", util_json_bytes(c->exe));
		det = json_pack("{sI so ss ss ss so*}", "time", (json_int_t)time(NULL), "path",
				util_json_bytes(path), "name", names[i], "method",
				r->smart ? "smart" : "conventional", "source", "clamd",
				"process", c->local && c->pid <= 0 ? NULL : p);
		if (c->local && c->pid <= 0)
			json_decref(p);
		if (r->found && det)
			json_array_append_new(r->found, det);
		else
			json_decref(det);
	}
	atomic_fetch_add(&r->c->d->found, n);
}

/* Reads again the connections the caps held back, once under them, and
 * takes the commands they had sent already. */
static void resume_held(struct clamd *d)
{
	struct conn *c, *older;

	if (!d->held)
		return;
	d->held = false;
	if (capped(d))
		return;
	/* The oldest first (new ones are at the head), so that the room
	 * goes to those that waited longest. */
	for (c = d->conns; c && c->next; c = c->next)
		;
	for (; c; c = older) {
		older = c->prev;
		if (c->fd < 0)
			continue;
		if (c->nin && c->mode == MODE_COMMAND) {
			process(c);
			conn_settle(c); /* may free c */
		} else {
			loop_fd_modify(d->loop, c->fd, conn_events(c));
		}
	}
}

/* On the loop's thread: r's reply goes to its connection (which the
 * caller settles), its detections to the pool, which keeps them for the
 * server; r is freed. Never frees the connection. */
static void req_finish(struct req *r)
{
	struct conn *c = r->c;
	struct clamd *d = c->d;

	if (c->fd >= 0 && r->reply.len)
		util_buf_append(&c->out, r->reply.data, r->reply.len);
	c->pending--;
	d->stream_bytes -= r->stream_bytes;
	if (json_array_size(r->found) && d->stopping) {
		/* The pool is gone: kept here, at the end. */
		if (reports_queue_detections(d->a, r->found) != 0)
			log_msg(LOG_LVL_ERROR, "clamd: detections could not be kept");
		req_free(d, r);
	} else if (json_array_size(r->found)) {
		r->cmd = CPROTO_UNKNOWN; /* now a report for the pool */
		r->c = NULL;
		components_release(d->a->comps, r->h);
		r->h = NULL;
		if (r->fd >= 0)
			close(r->fd);
		r->fd = -1;
		pool_push(d, r, false);
	} else {
		req_free(d, r);
	}
}

/* Posted to the loop's thread: req_finish(), then the connection goes on
 * or is freed, and those the caps held back are read again. */
static void req_answered(void *arg)
{
	struct req *r = arg;
	struct conn *c = r->c;
	struct clamd *d = c->d;

	if (r->path_cmd)
		atomic_fetch_sub(&d->paths, 1);
	req_finish(r);
	/* Commands that waited for clamd.max_queue, already read. */
	if (c->fd >= 0 && c->nin && c->mode == MODE_COMMAND)
		process(c);
	if (c->fd < 0)
		conn_free(c);
	else
		conn_settle(c);
	resume_held(d);
}

/* The verdict line of a scan of name as clamd words it. */
static void verdict_line(struct req *r, const char *name, const struct scanner_result *v)
{
	struct clamd *d = r->c->d;

	if (v->err != AERR_OK) {
		atomic_fetch_add(&d->errors, 1);
		reply_add(&r->reply, r->id, r->term, "%s: %s ERROR", name, v->error);
	} else if (v->res.infected) {
		/* One name, as clamd without allmatch. */
		reply_add(&r->reply, r->id, r->term, "%s: %s FOUND", name, v->res.names[0]);
	} else if (v->out.unverified && !atomic_load(&d->unverified_ok)) {
		atomic_fetch_add(&d->unverified, 1);
		reply_add(&r->reply, r->id, r->term, "%s: Can't verify: no smart protection "
			  "source answered ERROR", name);
	} else {
		if (v->out.unverified) {
			atomic_fetch_add(&d->unverified, 1);
			log_msg(LOG_LVL_WARN, "clamd: %s: answered OK unverified (no smart "
				"protection source answered; clamd.unverified is \"clean\")",
				r->path ? r->path : name);
		}
		reply_add(&r->reply, r->id, r->term, "%s: OK", name);
	}
}

/* A scan worker's verdict on a descriptor or stream (a scanner thread). */
static void on_verdict(void *arg, struct scanner_result *v)
{
	struct req *r = arg;
	struct clamd *d = r->c->d;

	verdict_line(r, r->name, v);
	/* Here, not on the loop: the last holder of a retired generation
	 * waits for its worker to exit. */
	components_release(d->a->comps, r->h);
	r->h = NULL;
	if (v->err == AERR_OK && v->res.infected && r->cmd == CPROTO_FILDES && d->vault &&
	    r->path) {
		/* The client's file is acted on by a pool thread, which then
		 * answers. */
		r->res = v->res;
		v->res = (struct engine_result){ 0 };
		pool_push(d, r, true);
	} else {
		if (v->err == AERR_OK && v->res.infected)
			add_found(r, r->path ? r->path : r->name,
				  (const char *const *)v->res.names, 1);
		if (loop_post(d->loop, req_answered, r) != 0)
			log_msg(LOG_LVL_ERROR, "clamd: out of memory: an answer is lost");
	}
	atomic_fetch_sub(&d->inflight, 1);
}

/* Sends r's descriptor to the component's scan workers. */
static void scan_descriptor(struct conn *c, struct req *r)
{
	struct clamd *d = c->d;
	struct scanner_request rq = { .fd = r->fd, .name = r->path ? r->path : r->name,
				      .done = on_verdict, .arg = r };
	char msg[512];
	enum aerr e;

	r->h = components_acquire(d->a->comps);
	r->smart = r->h && r->h->smart;
	if (!r->h) {
		components_error(d->a->comps, msg, sizeof(msg));
		reply_add(&r->reply, r->id, r->term, "%s: No signatures loaded%s%s ERROR", r->name,
			  msg[0] ? ": " : "", msg);
		atomic_fetch_add(&d->errors, 1);
		req_finish(r);
		return;
	}
	atomic_fetch_add(&d->inflight, 1);
	e = scanner_submit(r->h->scanner, &rq, msg, sizeof(msg));
	if (e != AERR_OK) {
		atomic_fetch_sub(&d->inflight, 1);
		atomic_fetch_add(&d->errors, 1);
		reply_add(&r->reply, r->id, r->term, "%s: %s ERROR", r->name,
			  e == AERR_FULL ? "Too many scans waiting" : msg);
		req_finish(r);
	}
}

/* Path commands, on the pool's threads. */

struct walk {
	struct req *r;
	const struct components_handle *h;
	atomic_bool stop;
	bool found_stop;         /* SCAN found one: the walk ends */
	unsigned total, errors, infected;
	unsigned files, file_errors; /* MULTISCAN of a directory: its answer */
	bool learned;            /* a verdict the cache did not have */
};

static int walk_scan(void *arg, int fd, const char *name, struct engine_result *res,
		     struct smart_outcome *out, char *errbuf, size_t errlen)
{
	struct walk *w = arg;

	if (atomic_load(&w->r->c->cancel)) {
		atomic_store(&w->stop, true);
		util_set_msg(errbuf, errlen, "the client went away");
		return -1;
	}
	return components_scan_fd(w->h, fd, name,
				  w->r->cmd == CPROTO_ALLMATCHSCAN ? SCANNER_ALLMATCH : 0, res, out,
				  errbuf, errlen);
}

/* clamd.actions: the policy's actions on a file a path command found (the
 * answer is clamd's all the same), reported with what was done. Returns
 * false when the vault is not asked (off) or cannot report (add_found()
 * then reports the plain detection). A pool thread. */
static bool act_on(struct req *r, const struct sjob_report *rep, size_t n)
{
	const struct conn *c = r->c;
	struct vault_detection v = { .source = QUARANTINE_SOURCE_CLAMD, .path = rep->path,
				     .dev = rep->dev, .ino = rep->ino,
				     .names = (const char *const *)rep->names, .nnames = n };
	json_t *det;

	if (!c->d->vault)
		return false;
	if (c->local) {
		v.pid = c->pid;
		v.exe = c->exe[0] ? c->exe : NULL;
	}
	det = vault_respond_path(c->d->vault, &v);
	if (!det)
		return false;
	/* The client: its uid beside the pid (and no empty exe: the server
	 * takes only a path), or its address. */
	if (c->local && json_object_get(det, "process")) {
		json_t *p = json_object_get(det, "process");

		json_object_set_new(p, "uid", json_integer((json_int_t)c->uid));
		if (!c->exe[0])
			json_object_del(p, "exe");
	}
	else if (!c->local)
		json_object_set_new(det, "process", json_pack("{ss}", "address", c->addr));
	if (!r->found)
		r->found = json_array();
	json_array_append_new(r->found, det);
	atomic_fetch_add(&c->d->found, n);
	return true;
}

/* clamd.actions on the file of an infected FILDES descriptor, named by
 * the descriptor's link and checked by its identity (vault.c); reported
 * plain when it cannot be acted on (deleted, or the service stops). A pool
 * thread. */
static void act_descriptor(struct req *r, bool stopping)
{
	struct sjob_report rep = { .path = r->path, .names = r->res.names };
	struct stat st;

	if (!stopping && fstat(r->fd, &st) == 0) {
		rep.dev = st.st_dev;
		rep.ino = st.st_ino;
		if (act_on(r, &rep, 1))
			return;
	}
	add_found(r, r->path, (const char *const *)r->res.names, 1);
}

/* Posted: a part of a walk's answer goes out while the walk goes on (the
 * connection lives: the walk is one of its pending requests). */
static void part_deliver(void *arg)
{
	struct req *part = arg;

	if (part->c->fd >= 0) {
		util_buf_append(&part->c->out, part->reply.data, part->reply.len);
		conn_settle(part->c);
	}
	util_buf_free(&part->reply);
	free(part);
}

/* A long walk's lines go out as they come (64 KiB at a time) and what it
 * found is kept for the server 100 at a time, so neither grows with the
 * tree. */
static void walk_flush(struct walk *w)
{
	struct req *r = w->r, *part;
	struct clamd *d = r->c->d;

	if (json_array_size(r->found) >= 100) {
		if (reports_queue_detections(d->a, r->found) == 0 && d->ch)
			channel_wake(d->ch);
		json_array_clear(r->found);
	}
	if (r->reply.len < 65536 || !(part = calloc(1, sizeof(*part))))
		return;
	part->c = r->c;
	part->reply = r->reply;
	memset(&r->reply, 0, sizeof(r->reply));
	if (loop_post(d->loop, part_deliver, part) != 0) {
		util_buf_free(&part->reply);
		free(part);
	}
}

static void walk_report(const struct sjob_report *rep, void *arg)
{
	struct walk *w = arg;
	struct req *r = w->r;
	bool top = strcmp(rep->path, r->path) == 0;

	/* SCAN stops at the first file found: what the walk had under way
	 * beside it is not told. */
	if (w->found_stop)
		return;
	if (atomic_load(&r->c->cancel))
		atomic_store(&w->stop, true);
	w->total++;
	if (rep->kind == SJOB_FILE || rep->kind == SJOB_EMPTY || rep->kind == SJOB_ERROR)
		w->files++;
	if (rep->kind == SJOB_ERROR || (rep->kind == SJOB_FILE && rep->unverified &&
					!atomic_load(&r->c->d->unverified_ok)))
		w->file_errors++;
	if (rep->cached)
		atomic_fetch_add(&r->c->d->cached, 1);
	else if (rep->kind == SJOB_FILE && !rep->unverified)
		w->learned = true;
	switch (rep->kind) {
	case SJOB_FILE:
		if (rep->infected) {
			size_t n = r->cmd == CPROTO_ALLMATCHSCAN ? rep->nnames : 1, i;

			w->infected++;
			for (i = 0; i < n; i++)
				reply_add(&r->reply, r->id, r->term, "%s: %s FOUND", rep->path,
					  rep->names[i]);
			if (!act_on(r, rep, n))
				add_found(r, rep->path, (const char *const *)rep->names, n);
			if (r->cmd == CPROTO_SCAN || r->cmd == CPROTO_ALLMATCHSCAN) {
				w->found_stop = true;
				atomic_store(&w->stop, true);
			}
		} else if (rep->unverified) {
			atomic_fetch_add(&r->c->d->unverified, 1);
			if (atomic_load(&r->c->d->unverified_ok)) {
				log_msg(LOG_LVL_WARN, "clamd: %s: counted clean unverified "
					"(no smart protection source answered; "
					"clamd.unverified is \"clean\")", rep->path);
			} else {
				w->errors++;
				reply_add(&r->reply, r->id, r->term, "%s: Can't verify: no smart "
					  "protection source answered ERROR", rep->path);
			}
		}
		break;
	case SJOB_EMPTY:
		break;
	case SJOB_SKIPPED:
		if (top)
			reply_add(&r->reply, r->id, r->term, "%s: Not supported file type ERROR",
				  rep->path);
		break;
	case SJOB_UNSCANNABLE:
		/* Named by the client: missing, or no file to read (a FIFO). */
		if (!rep->err) {
			reply_add(&r->reply, r->id, r->term, "%s: Not supported file type ERROR",
				  rep->path);
			break;
		}
		w->errors++;
		reply_add(&r->reply, r->id, r->term, "%s: File path check failure: %s. ERROR",
			  rep->path, strerror(rep->err));
		break;
	case SJOB_ERROR:
		w->errors++;
		atomic_fetch_add(&r->c->d->errors, 1);
		reply_add(&r->reply, r->id, r->term, "%s: %s ERROR", rep->path, rep->message);
		break;
	case SJOB_EXCLUDED:
	case SJOB_LINK:
		break;
	}
	walk_flush(w);
}

/* The verdict cache of MULTISCAN, which clamdscan --multiscan sends for
 * trees: a tree scanned again is answered from what the walk before
 * learned. (The other commands' paths are mostly a mail server's temporary
 * files, each new: they would only fill it.) */

/* Opens the cache for h's component into d->cache (the lock held alone);
 * false when it cannot be (logged). */
static bool cache_open(struct clamd *d, const struct components_handle *h)
{
	unsigned char id[32];
	char text[128], warn[256], msg[512], *dir;

	/* The signatures are the component's version. */
	snprintf(text, sizeof(text), "ward-agent clamd cache\n%s\n%lld", h->name,
		 (long long)h->version);
	engine_hash("sha256", text, strlen(text), id);
	warn[0] = 0;
	dir = astate_file(d->a, "clamd-cache");
	if (!dir || scache_open(dir, id, &d->cache, warn, sizeof(warn), msg, sizeof(msg)) !=
		    SCAN_OK) {
		log_msg(LOG_LVL_WARN, "clamd: no verdict cache: %s", dir ? msg : "out of memory");
		free(dir);
		d->cache = NULL;
		return false;
	}
	free(dir);
	if (warn[0])
		log_msg(LOG_LVL_WARN, "clamd: the verdict cache starts empty: %s", warn);
	snprintf(d->cache_name, sizeof(d->cache_name), "%s", h->name);
	d->cache_version = h->version;
	return true;
}

/* Takes the cache shared for a walk with h's component, switching it to
 * that component first; returns it, or NULL (no cache: off, or it could
 * not be opened) with nothing held. */
static struct scache *cache_take(struct clamd *d, const struct components_handle *h)
{
	bool ok = true;

	if (!d->a->cfg.clamd_cache)
		return NULL;
	for (;;) {
		pthread_rwlock_rdlock(&d->cache_lock);
		if (d->cache && strcmp(d->cache_name, h->name) == 0 &&
		    d->cache_version == h->version)
			return d->cache;
		pthread_rwlock_unlock(&d->cache_lock);
		if (!ok)
			return NULL;
		pthread_rwlock_wrlock(&d->cache_lock);
		if (!d->cache || strcmp(d->cache_name, h->name) != 0 ||
		    d->cache_version != h->version) {
			scache_close(d->cache);
			ok = cache_open(d, h);
		}
		pthread_rwlock_unlock(&d->cache_lock);
	}
}

/* After a walk that learned verdicts: they are written to the state
 * directory and read back, for the walks that come next. */
static void cache_commit(struct clamd *d, const struct components_handle *h)
{
	char msg[512];

	pthread_rwlock_wrlock(&d->cache_lock);
	if (d->cache && strcmp(d->cache_name, h->name) == 0 && d->cache_version == h->version) {
		if (scache_save(d->cache, msg, sizeof(msg)) != SCAN_OK)
			log_msg(LOG_LVL_WARN, "clamd: the verdict cache: %s", msg);
		scache_close(d->cache);
		cache_open(d, h);
	}
	pthread_rwlock_unlock(&d->cache_lock);
}

/* SCAN, CONTSCAN, MULTISCAN, ALLMATCHSCAN of r->path: the walk and its
 * lines, then clamd's closing "<path>: OK" when nothing was found and not
 * everything failed. */
/* A regular file named alone: scanned here, without a walk's threads, so
 * that its round trip is as short as clamd's; told as a walk tells it.
 * Returns false, having told nothing, when it is not one after all (the
 * walk then says what it is). */
static bool scan_alone(struct walk *w, const char *path, const struct stat *lst)
{
	struct sjob_report rep = { .path = path, .kind = SJOB_FILE };
	struct engine_result res = { 0 };
	struct smart_outcome out = { 0 };
	char err[ENGINE_ERRLEN];
	struct stat st;
	int flags = O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW, fd;

	/* O_NOATIME when the agent may: a scan leaves the access time. */
	fd = open(path, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(path, flags);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != lst->st_dev ||
	    st.st_ino != lst->st_ino) {
		close(fd);
		return false;
	}
	rep.size = (uint64_t)st.st_size;
	rep.dev = st.st_dev;
	rep.ino = st.st_ino;
	if (walk_scan(w, fd, path, &res, &out, err, sizeof(err)) != 0) {
		rep.kind = SJOB_ERROR;
		rep.message = err;
	} else {
		rep.infected = res.infected;
		rep.names = res.names;
		rep.nnames = res.nnames;
		rep.unverified = out.unverified;
	}
	walk_report(&rep, w);
	engine_result_clear(&res);
	close(fd);
	return true;
}

static void run_path(struct clamd *d, struct req *r)
{
	struct walk w = { .r = r };
	struct sjob_config cfg = { 0 };
	const char *paths[1] = { r->path };
	struct sjob_stats st;
	struct stat sb;
	char msg[512];
	enum scan_err rc;
	bool dir;

	w.h = r->h = components_acquire(d->a->comps);
	if (!r->h) {
		components_error(d->a->comps, msg, sizeof(msg));
		reply_add(&r->reply, r->id, r->term, "%s: No signatures loaded%s%s ERROR", r->path,
			  msg[0] ? ": " : "", msg);
		return;
	}
	cfg.jobs = r->cmd == CPROTO_MULTISCAN && stat(r->path, &sb) == 0 && S_ISDIR(sb.st_mode) ?
		   (unsigned)d->a->cfg.clamd_max_threads : 1;
	cfg.recursive = true;
	cfg.max_depth = 15; /* clamd's MaxDirectoryRecursion */
	cfg.scan = walk_scan;
	cfg.scan_arg = &w;
	cfg.report = walk_report;
	cfg.report_arg = &w;
	cfg.cancel = &w.stop;
	/* /proc is passed over without a word, as clamd does. */
	cfg.exclude = cfg.exclude_dir = &d->proc;
	cfg.nexclude = cfg.nexclude_dir = 1;
	/* Files known unchanged since their verdict are not read again. */
	if (r->cmd == CPROTO_MULTISCAN && cfg.jobs > 1)
		cfg.cache = cache_take(d, r->h);
	/* A directory counts once, as clamd's walk counts it. */
	dir = stat(r->path, &sb) == 0 && S_ISDIR(sb.st_mode);
	if (dir)
		w.total++;
	if (!dir && regexec(&d->proc.re, r->path, 0, NULL, 0) != 0 &&
	    lstat(r->path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
	    scan_alone(&w, r->path, &sb))
		rc = SCAN_OK;
	else
		rc = sjob_run(&cfg, paths, 1, &st, msg, sizeof(msg));
	if (cfg.cache) {
		pthread_rwlock_unlock(&d->cache_lock);
		/* Written back once the answer is out (pool_main()). */
		r->commit = w.learned;
	}
	if (rc != SCAN_OK && !atomic_load(&w.stop))
		reply_add(&r->reply, r->id, r->term, "%s: %s ERROR", r->path, msg);
	else if (r->cmd == CPROTO_MULTISCAN && dir ?
		 /* clamd counts the files it handed to its threads only: a
		  * directory without any gets no answer at all. */
		 w.files && !w.infected && w.file_errors < w.files :
		 !w.infected && w.errors < w.total)
		reply_add(&r->reply, r->id, r->term, "%s: OK", r->path);
}

static void *pool_main(void *arg)
{
	struct clamd *d = arg;
	struct components_handle done = { 0 };
	struct req *r;
	bool stopping, commit;

	for (;;) {
		pthread_mutex_lock(&d->lock);
		while (!d->first && !d->stopping)
			pthread_cond_wait(&d->work, &d->lock);
		r = d->first;
		if (r) {
			d->first = r->next;
			if (!d->first)
				d->last = NULL;
		}
		stopping = d->stopping;
		pthread_mutex_unlock(&d->lock);
		if (!r)
			return NULL;
		if (r->cmd == CPROTO_UNKNOWN) {
			/* Detections to keep for the server. */
			if (reports_queue_detections(d->a, r->found) == 0 && d->ch)
				channel_wake(d->ch);
			req_free(d, r);
			continue;
		}
		if (r->cmd == CPROTO_FILDES)
			act_descriptor(r, stopping);
		else if (!stopping)
			run_path(d, r);
		/* The component is let go here, not on the loop: the last
		 * holder of a retired generation waits for its worker. */
		done.name = r->h ? r->h->name : NULL;
		done.version = r->h ? r->h->version : 0;
		commit = r->commit;
		components_release(d->a->comps, r->h);
		r->h = NULL;
		if (loop_post(d->loop, req_answered, r) != 0) {
			log_msg(LOG_LVL_ERROR, "clamd: out of memory: an answer is lost");
			if (r->path_cmd) /* not for ever against the cap */
				atomic_fetch_sub(&d->paths, 1);
		}
		if (commit && done.name)
			cache_commit(d, &done);
	}
}

/* Commands. */

/* "ClamAV <libclamav>/<component version>/<when it was installed>", as
 * clamd's VERSION (no date: no component in use yet). */
static void version_text(struct clamd *d, char *buf, size_t len)
{
	const struct components_handle *h = components_acquire(d->a->comps);
	char path[PATH_MAX], when[64];
	struct stat st;
	struct tm tm;

	if (!h) {
		snprintf(buf, len, "ClamAV %s", engine_version());
		return;
	}
	snprintf(path, sizeof(path), "%s/%s/%lld", d->a->comp_dir, h->name,
		 (long long)h->version);
	if (stat(path, &st) != 0 || !localtime_r(&st.st_mtime, &tm) ||
	    !strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm))
		snprintf(when, sizeof(when), "unknown");
	snprintf(buf, len, "ClamAV %s/%lld/%s", engine_version(), (long long)h->version, when);
	components_release(d->a->comps, h);
}

/* STATS in clamd's layout ("subject to change", its manual says): the
 * pool of path threads, what it holds (the STATS itself among them), the
 * agent's heap. */
static void stats_text(struct clamd *d, struct conn *c, unsigned id)
{
	struct mallinfo2 mi = mallinfo2();
	unsigned queued = 0;
	struct req *r;

	pthread_mutex_lock(&d->lock);
	for (r = d->first; r; r = r->next)
		queued++;
	pthread_mutex_unlock(&d->lock);
	if (id)
		util_buf_printf(&c->out, "%u: ", id);
	util_buf_printf(&c->out, "POOLS: 1\n\nSTATE: VALID PRIMARY\n"
			"THREADS: live %zu  idle %zu max %zu idle-timeout %u\nQUEUE: %u items\n"
			"\tSTATS 0.000000 \n\n", d->nthreads, d->nthreads, d->nthreads, 30u,
			queued);
	util_buf_printf(&c->out, "MEMSTATS: heap %.3fM mmap %.3fM used %.3fM free %.3fM "
			"releasable %.3fM pools 1 pools_used %.3fM pools_total %.3fM\nEND",
			mi.arena / 1048576.0, mi.hblkhd / 1048576.0, mi.uordblks / 1048576.0,
			mi.fordblks / 1048576.0, mi.keepcost / 1048576.0,
			mi.uordblks / 1048576.0, mi.arena / 1048576.0);
	util_buf_append(&c->out, &c->term, 1);
}

/* Starts INSTREAM: its data goes into a memfd. */
static void start_stream(struct conn *c)
{
	c->streamfd = memfd_create("ward-clamd-stream", MFD_CLOEXEC);
	if (c->streamfd < 0) {
		log_msg(LOG_LVL_ERROR, "clamd: a stream's file: %s", strerror(errno));
		fail(c, NULL); /* clamd closes without a word */
		return;
	}
	cproto_stream_init(&c->stream, (uint64_t)c->d->a->cfg.clamd_stream_max);
	c->stream_id = c->session ? c->id : 0;
	c->stream_term = c->term;
	c->mode = MODE_STREAM;
}

static int stream_sink(void *arg, const unsigned char *data, size_t n)
{
	struct conn *c = arg;
	ssize_t w;

	while (n) {
		w = write(c->streamfd, data, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		data += w;
		n -= (size_t)w;
		c->stream_got += (uint64_t)w;
		c->d->stream_bytes += (uint64_t)w;
	}
	return 0;
}

/* The stream is whole: it is scanned. */
static void end_stream(struct conn *c)
{
	struct req *r;

	c->mode = c->session ? MODE_COMMAND : MODE_WAITREPLY;
	c->term = c->stream_term;
	r = req_new(c, CPROTO_INSTREAM);
	if (!r) {
		stream_drop(c);
		fail(c, NULL);
		return;
	}
	r->id = c->stream_id;
	r->fd = c->streamfd;
	r->stream_bytes = c->stream_got;
	c->streamfd = -1;
	c->stream_got = 0;
	snprintf(r->name, sizeof(r->name), "stream");
	if (c->local)
		r->path = util_printf("instream(local)");
	else
		r->path = util_printf("instream(%s)", c->addr);
	scan_descriptor(c, r);
}

/* FILDES got its byte: the descriptor received with it is scanned. */
static void take_descriptor(struct conn *c)
{
	char link[64], target[PATH_MAX];
	struct stat st;
	struct req *r;
	ssize_t n;

	c->mode = c->session ? MODE_COMMAND : MODE_WAITREPLY;
	if (c->recvfd < 0) {
		/* With FILDES's id, as clamd; the session ends. */
		reply_add(&c->out, c->fildes_id, c->fildes_term,
			  "No file descriptor received. ERROR");
		c->mode = MODE_DONE;
		return;
	}
	r = req_new(c, CPROTO_FILDES);
	if (!r) {
		fail(c, NULL);
		return;
	}
	r->id = c->fildes_id;
	r->term = c->fildes_term;
	r->fd = c->recvfd;
	c->recvfd = -1;
	snprintf(r->name, sizeof(r->name), "fd[%d]", r->fd);
	if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		reply_add(&r->reply, r->id, r->term, "%s: Not a regular file ERROR", r->name);
		req_finish(r);
		return;
	}
	/* The file's name, for the log and the server, as clamd logs it. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", r->fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = 0;
		r->path = strdup(target);
	}
	scan_descriptor(c, r);
}

/* Legacy STREAM (clamd 0.103, removed in 0.104; ClamAV::Client's
 * scan_stream() and so qpsmtpd's and Courier::Filter's scanning): "PORT n",
 * a TCP port of its own for the data, read to its end (at most
 * stream_max_length: the rest is not read, as 0.103 did), then one answer
 * on the command's connection. */

static void port_close(struct conn *c)
{
	if (c->port_fd < 0)
		return;
	loop_fd_remove(c->d->loop, c->port_fd);
	close(c->port_fd);
	c->port_fd = -1;
}

/* The owner of the local TCP socket at addr (the connecting side), from
 * /proc/net/tcp; -1 when not found. */
static long tcp_owner(const struct sockaddr_in *addr)
{
	unsigned long ip, port, rip, rport, uid;
	char line[512];
	long found = -1;
	FILE *f = fopen("/proc/net/tcp", "re");

	if (!f)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, " %*u: %lx:%lx %lx:%lx %*x %*x:%*x %*x:%*x %*x %lu", &ip, &port,
			   &rip, &rport, &uid) == 5 &&
		    ip == addr->sin_addr.s_addr && port == ntohs(addr->sin_port))
			found = (long)uid;
	fclose(f);
	return found;
}

/* Says why the STREAM ended and closes the command's connection. */
static void port_fail(struct conn *c, const char *text)
{
	port_close(c);
	stream_drop(c);
	reply_add(&c->out, 0, c->term, "%s", text);
	c->mode = MODE_DONE;
	conn_settle(c);
}

static void on_port_data(int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	uint64_t max = (uint64_t)c->d->a->cfg.clamd_stream_max;
	unsigned char buf[65536];
	struct req *r;
	size_t want;
	ssize_t n = 1;
	int turns = 16; /* 1 MiB a wake-up: a fast sender does not hold the loop */

	(void)events;
	while (n > 0 && c->port_bytes < max) {
		if (!turns--)
			return;
		want = max - c->port_bytes < sizeof(buf) ? (size_t)(max - c->port_bytes) :
		       sizeof(buf);
		n = recv(fd, buf, want, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n > 0 && stream_sink(c, buf, (size_t)n) != 0) {
			port_fail(c, "Temporary file -> write ERROR");
			return;
		}
		if (n > 0)
			c->port_bytes += (size_t)n;
		c->deadline_ms = loop_now_ms() + (uint64_t)c->d->a->cfg.clamd_read_timeout * 1000;
	}
	if (n < 0) {
		port_fail(c, "read poll ERROR");
		return;
	}
	/* Its end, or the limit: what came is scanned. */
	port_close(c);
	c->mode = MODE_WAITREPLY;
	r = req_new(c, CPROTO_STREAM);
	if (!r) {
		port_fail(c, "Error processing command. ERROR");
		return;
	}
	r->fd = c->streamfd;
	r->stream_bytes = c->stream_got;
	c->streamfd = -1;
	c->stream_got = 0;
	snprintf(r->name, sizeof(r->name), "stream");
	r->path = c->local ? util_printf("stream(local)") : util_printf("stream(%s)", c->addr);
	scan_descriptor(c, r);
	conn_settle(c);
}

static void on_port_accept(int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	struct sockaddr_in peer, ctl;
	socklen_t pl = sizeof(peer), cl = sizeof(ctl);
	int s;

	(void)events;
	s = accept4(fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s < 0)
		return;
	/* The data must come from the client that asked: over TCP from its
	 * address, and for a client of the UNIX socket from a socket its
	 * user owns (another local user could connect first). */
	if (c->local ? tcp_owner(&peer) != (long)c->uid :
	    getpeername(c->fd, (struct sockaddr *)&ctl, &cl) != 0 || ctl.sin_family != AF_INET ||
	    ctl.sin_addr.s_addr != peer.sin_addr.s_addr) {
		close(s);
		log_msg(LOG_LVL_WARN, "clamd: STREAM: a connection to the data port from "
			"another client was refused");
		return;
	}
	port_close(c);
	c->port_fd = s;
	c->port_data = true;
	c->deadline_ms = loop_now_ms() + (uint64_t)c->d->a->cfg.clamd_read_timeout * 1000;
	if (loop_fd_add(c->d->loop, s, EPOLLIN, on_port_data, c) != 0) {
		close(s);
		c->port_fd = -1;
		port_fail(c, "accept() ERROR");
	}
}

/* STREAM: a port on the address the client reached (loopback for the
 * UNIX socket), tried from a random one within the options' range. */
static void legacy_stream(struct conn *c)
{
	const struct agent_config *o = &c->d->a->cfg;
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	unsigned span = (unsigned)(o->clamd_stream_max_port - o->clamd_stream_min_port + 1), i;
	unsigned start = randombytes_uniform(span);
	int fd;

	if (!c->local && (getsockname(c->fd, (struct sockaddr *)&sin, &sl) != 0 ||
			  sin.sin_family != AF_INET)) {
		fail(c, "Can't find any free port. ERROR"); /* IPv4 only, as 0.103 */
		return;
	}
	c->streamfd = memfd_create("ward-clamd-stream", MFD_CLOEXEC);
	fd = c->streamfd < 0 ? -1 : socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	for (i = 0; fd >= 0 && i < span; i++) {
		sin.sin_port = htons((uint16_t)(o->clamd_stream_min_port + (start + i) % span));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			break;
	}
	if (fd < 0 || i == span || listen(fd, 1) != 0 ||
	    loop_fd_add(c->d->loop, fd, EPOLLIN, on_port_accept, c) != 0) {
		if (fd >= 0)
			close(fd);
		stream_drop(c);
		fail(c, "Can't find any free port. ERROR");
		return;
	}
	c->port_fd = fd;
	c->port_data = false;
	c->port_bytes = 0;
	c->mode = MODE_PORT;
	c->deadline_ms = loop_now_ms() + (uint64_t)o->clamd_command_timeout * 1000;
	reply_add(&c->out, 0, c->term, "PORT %u", (unsigned)ntohs(sin.sin_port));
}

/* A path command: to the pool. */
static void path_command(struct conn *c, enum cproto_cmd cmd, const char *arg)
{
	struct req *r;
	size_t n;

	/* A path is read as the agent reads files: for this host's clients
	 * (clamd.tcp_remote opens streams to others, not the host's files). */
	if (!c->local && !c->loopback) {
		reply_add(&c->out, c->session ? c->id : 0, c->term, "%s: Access denied. ERROR",
			  arg);
		return;
	}
	if (cmd == CPROTO_ALLMATCHSCAN && !c->d->a->cfg.clamd_allmatch) {
		reply_add(&c->out, 0, c->term, "%s: ALLMATCHSCAN command disabled by clamd "
			  "configuration. ERROR", arg);
		return;
	}
	r = req_new(c, cmd);
	if (!r || !(r->path = strdup(arg))) {
		if (r)
			req_finish(r);
		fail(c, NULL);
		return;
	}
	/* The answers name the path without its trailing slashes, as clamd. */
	n = strlen(r->path);
	while (n > 1 && r->path[n - 1] == '/')
		r->path[--n] = 0;
	atomic_fetch_add(&c->d->paths, 1);
	r->path_cmd = true;
	pool_push(c->d, r, false);
}

/* Has the agent update its component now (Update Now), once a minute at
 * most: each asks the channel to cut what it is doing short. */
static void ask_update(struct clamd *d)
{
	if (d->ch && (!d->last_reload_ms || loop_now_ms() - d->last_reload_ms >= 60000)) {
		d->last_reload_ms = loop_now_ms();
		channel_ask(d->ch, CHANNEL_UPDATE, 0);
	}
}

/* Whether the option enabled allows cmd; else says so, as newer clamd. */
static bool available(struct conn *c, bool enabled)
{
	if (!enabled)
		fail(c, "COMMAND UNAVAILABLE");
	return enabled;
}

/* Carries out one command (its argument, if any, in c->in). */
static void execute(struct conn *c, const struct cproto_command *cmd)
{
	struct clamd *d = c->d;
	const struct agent_config *o = &d->a->cfg;
	unsigned id = c->session ? c->id : 0;
	char text[256];

	if (c->session && cmd->oldstyle) {
		/* With the terminator of the command before, as clamd. */
		fail(c, "Only nCMDS\\n and zCMDS\\0 are accepted inside IDSESSION. ERROR");
		reply_add(&c->out, id, c->term, "Error processing command. ERROR");
		return;
	}
	c->term = cmd->term;
	if (c->session && !cproto_in_session(cmd->cmd)) {
		fail(c, "Command invalid inside IDSESSION. ERROR");
		return;
	}
	if (!c->session && cmd->cmd != CPROTO_IDSESSION)
		c->mode = MODE_WAITREPLY;
	switch (cmd->cmd) {
	case CPROTO_SHUTDOWN:
	case CPROTO_QUIT:
		if (available(c, o->clamd_shutdown)) {
			log_msg(LOG_LVL_INFO, "clamd: SHUTDOWN: the service stops (the agent "
				"goes on)");
			d->closing = true;
			c->mode = MODE_DONE;
		}
		break;
	case CPROTO_RELOAD:
		if (available(c, o->clamd_reload)) {
			reply_add(&c->out, 0, c->term, "RELOADING");
			ask_update(d);
		}
		break;
	case CPROTO_SELFCHECK:
		/* Newer clamd's: whether the signatures in use are the latest
		 * installed ones, else they are taken (an update brings the
		 * installed version into use). */
		if (available(c, o->clamd_reload)) {
			const struct components_handle *h = components_acquire(d->a->comps);
			bool current = h && updater_installed(d->a->comp_dir, h->name) ==
					    h->version;

			components_release(d->a->comps, h);
			reply_add(&c->out, 0, c->term, current ? "DBUPTODATE" : "RELOADING");
			if (!current)
				ask_update(d);
		}
		break;
	case CPROTO_PING:
		reply_add(&c->out, id, c->term, "PONG");
		break;
	case CPROTO_VERSION:
		version_text(d, text, sizeof(text));
		reply_add(&c->out, id, c->term, "%s", text);
		break;
	case CPROTO_VERSIONCOMMANDS: {
		enum cproto_cmd i;

		version_text(d, text, sizeof(text));
		if (id)
			util_buf_printf(&c->out, "%u: ", id);
		util_buf_printf(&c->out, "%s| COMMANDS:", text);
		for (i = 0; i <= CPROTO_ALLMATCHSCAN; i++)
			util_buf_printf(&c->out, " %s", cproto_name(i));
		util_buf_append(&c->out, &c->term, 1);
		break;
	}
	case CPROTO_END:
		if (!c->session)
			fail(c, "UNKNOWN COMMAND");
		else
			c->mode = MODE_DONE;
		break;
	case CPROTO_DETSTATS:
	case CPROTO_DETSTATSCLEAR:
		c->mode = MODE_DONE; /* removed from clamd: it closes */
		break;
	case CPROTO_IDSESSION:
		c->session = true;
		break;
	case CPROTO_STATS:
		stats_text(d, c, id);
		break;
	case CPROTO_INSTREAM:
		start_stream(c);
		break;
	case CPROTO_FILDES:
		c->fildes_id = id;
		c->fildes_term = c->term;
		c->mode = MODE_FILDES;
		break;
	case CPROTO_SCAN:
	case CPROTO_CONTSCAN:
	case CPROTO_MULTISCAN:
	case CPROTO_ALLMATCHSCAN:
		path_command(c, cmd->cmd, cmd->arg);
		break;
	case CPROTO_STREAM:
		if (o->clamd_stream_command)
			legacy_stream(c);
		else
			fail(c, "UNKNOWN COMMAND"); /* as clamd since 0.104 */
		break;
	default:
		fail(c, "UNKNOWN COMMAND");
		break;
	}
}

/* Takes what c has read: commands, a stream's chunks, FILDES's byte. */
static void process(struct conn *c)
{
	struct cproto_command cmd;
	bool waiting = false;    /* commands left for the caps */
	size_t used;
	int st;

	while (c->nin && c->fd >= 0) {
		if (c->mode == MODE_STREAM) {
			st = cproto_stream_feed(&c->stream, (unsigned char *)c->in, c->nin, &used,
						stream_sink, c);
			memmove(c->in, c->in + used, c->nin - used);
			c->nin -= used;
			if (st == CPROTO_STREAM_END) {
				end_stream(c);
			} else if (st == CPROTO_STREAM_LIMIT) {
				c->term = c->stream_term;
				reply_add(&c->out, c->stream_id, c->term,
					  "INSTREAM size limit exceeded. ERROR");
				c->mode = MODE_DONE;
			} else if (st < 0) {
				c->term = c->stream_term;
				reply_add(&c->out, c->stream_id, c->term,
					  "Error writing to temporary file ERROR");
				c->mode = MODE_DONE;
			}
			continue;
		}
		if (c->mode == MODE_FILDES) {
			/* The byte the descriptor came with. */
			memmove(c->in, c->in + 1, --c->nin);
			take_descriptor(c);
			continue;
		}
		if (c->mode != MODE_COMMAND)
			break;
		if (c->pending >= (unsigned)c->d->a->cfg.clamd_max_queue || capped(c->d)) {
			waiting = true;
			break;
		}
		if (cproto_next(c->in, c->nin, &cmd) == 0)
			break;
		/* Bytes after a command clamd hands to its threads, outside a
		 * session: it says so before the command's answer. */
		if (!c->session && c->nin > cmd.used && dispatched(cmd.cmd))
			reply_add(&c->out, 0, cmd.term, "Error processing command. ERROR");
		execute(c, &cmd);
		if (c->session && cmd.cmd != CPROTO_IDSESSION)
			c->id++;
		else if (cmd.cmd == CPROTO_IDSESSION)
			c->id = 1;
		memmove(c->in, c->in + cmd.used, c->nin - cmd.used);
		c->nin -= cmd.used;
		c->deadline_ms = loop_now_ms() + (uint64_t)c->d->a->cfg.clamd_read_timeout * 1000;
	}
	if (c->recvfd >= 0 && c->mode != MODE_FILDES) {
		/* Unasked for: an error, unless the one command outside a
		 * session was answered already (clamd has closed then). */
		close(c->recvfd);
		c->recvfd = -1;
		if (c->mode != MODE_WAITREPLY || c->pending)
			fail(c, "PROTOCOL ERROR: ancillary data sent without FILDES. ERROR");
	}
	if (c->mode == MODE_COMMAND && !waiting && c->nin >= CPROTO_MAX_COMMAND)
		fail(c, NULL); /* no command fits: clamd closes */
	if (c->mode == MODE_WAITREPLY || c->mode == MODE_DONE)
		c->nin = 0; /* nothing more is taken */
}

/* Reads what c sent, with a descriptor when one comes; false when c was
 * freed (closed and answered). */
static bool read_some(struct conn *c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = c->in + c->nin,
			     .iov_len = CPROTO_MAX_COMMAND - c->nin };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	ssize_t n;
	int fd;

	if (c->mode != MODE_COMMAND && c->mode != MODE_STREAM && c->mode != MODE_FILDES) {
		char sink[4096];

		/* After the one command, clamd takes nothing more. */
		n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n < 0 || (n == 0 && c->mode == MODE_CLOSING)) {
			conn_drop(c);
			return false;
		}
		/* Shut for writing: its answer still goes out. */
		c->eof = n == 0;
		return true;
	}
	n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n < 0) {
		conn_drop(c);
		return false;
	}
	for (cm = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		/* Every descriptor is closed but the last one; more than one
		 * in a message is the peer's mistake, not kept. */
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (c->recvfd >= 0)
				close(c->recvfd);
			c->recvfd = fd;
		}
	}
	if (n == 0 || (msg.msg_flags & MSG_CTRUNC)) {
		/* The client sends no more, or sent more descriptors at once
		 * than fit (clamd then answers nothing more either): whatever
		 * it asked before is still answered. */
		if (n > 0)
			log_msg(LOG_LVL_WARN, "clamd: a client sent more descriptors at once "
				"than FILDES takes: nothing more is read from it");
		c->eof = n == 0;
		if (c->mode == MODE_STREAM)
			stream_drop(c);
		c->mode = MODE_DONE;
		return true;
	}
	c->nin += (size_t)n;
	if (c->mode == MODE_STREAM)
		c->deadline_ms = loop_now_ms() + (uint64_t)c->d->a->cfg.clamd_read_timeout * 1000;
	process(c);
	return true;
}

static void on_conn(int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	if ((events & EPOLLIN) && !read_some(c))
		return;
	/* Gone both ways (or broken): nobody reads the answers. */
	if (events & (EPOLLHUP | EPOLLERR)) {
		conn_drop(c);
		return;
	}
	if (c->fd >= 0)
		conn_settle(c);
}

/* The peer of a new connection: its credentials (UNIX) or address. */
static void identify(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN], port[8], link[64];
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	ssize_t n;

	if (c->local) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
			c->pid = cred.pid;
			c->uid = cred.uid;
			snprintf(link, sizeof(link), "/proc/%d/exe", (int)cred.pid);
			n = readlink(link, c->exe, sizeof(c->exe) - 1);
			c->exe[n > 0 ? n : 0] = 0;
		}
		return;
	}
	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0)
		ss.ss_family = AF_UNSPEC;
	c->loopback = ss.ss_family == AF_INET ?
		      (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127 :
		      ss.ss_family == AF_INET6 &&
		      IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
	if (ss.ss_family != AF_UNSPEC &&
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(c->addr, sizeof(c->addr), ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
			 host, port);
	else
		snprintf(c->addr, sizeof(c->addr), "unknown");
}

/* Stops or resumes accepting (at clamd.max_connections). */
static void accepting(struct clamd *d, bool on)
{
	size_t i;

	if (d->accepting == on)
		return;
	for (i = 0; i < d->nlst; i++)
		loop_fd_modify(d->loop, d->lst[i].fd, on ? EPOLLIN : 0);
	d->accepting = on;
}

#define TOO_MANY "Too many connections from this client (clamd.max_per_client). ERROR\n"

/* Whether c's client (its uid on the UNIX socket, its address over TCP)
 * has clamd.max_per_client connections already. */
static bool over_client_cap(const struct clamd *d, const struct conn *c)
{
	const struct conn *o;
	unsigned n = 0;
	size_t len = strcspn(c->addr, "]") + 1; /* "[v6]" or "v4:" before the port */

	if (!c->local && c->addr[0] != '[')
		len = strcspn(c->addr, ":") + 1;
	for (o = d->conns; o; o = o->next)
		if (o->fd >= 0 && o->local == c->local &&
		    (c->local ? o->uid == c->uid : strncmp(o->addr, c->addr, len) == 0))
			n++;
	return n >= (unsigned)d->a->cfg.clamd_max_per_client;
}

static void on_accept(int fd, uint32_t events, void *arg)
{
	struct listener *l = arg;
	struct clamd *d = l->d;
	struct conn *c;
	int s;

	(void)events;
	s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s < 0) {
		/* Out of descriptors: the listeners rest until the sweep (a
		 * second), rather than wake the loop for ever. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			accepting(d, false);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || loop_fd_add(d->loop, s, EPOLLIN, on_conn, c) != 0) {
		log_msg(LOG_LVL_ERROR, "clamd: out of memory: a connection is closed");
		free(c);
		close(s);
		return;
	}
	c->d = d;
	c->fd = s;
	c->local = l->local;
	c->recvfd = c->streamfd = c->port_fd = -1;
	c->term = '\n';
	c->mode = MODE_COMMAND;
	c->deadline_ms = loop_now_ms() + (uint64_t)d->a->cfg.clamd_command_timeout * 1000;
	identify(c);
	if (over_client_cap(d, c)) {
		/* Told, then closed: one client does not take every slot. */
		(void)!send(s, TOO_MANY, sizeof(TOO_MANY) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		log_msg(LOG_LVL_WARN, "clamd: a connection past clamd.max_per_client from %s was "
			"refused", c->local ? "a local user" : c->addr);
		loop_fd_remove(d->loop, s);
		close(s);
		free(c);
		return;
	}
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	if (++d->nconns >= (unsigned)d->a->cfg.clamd_max_connections)
		accepting(d, false);
}

/* Closes the listening sockets (removing the UNIX ones' files). */
static void close_listeners(struct clamd *d)
{
	size_t i;

	for (i = 0; i < d->nlst; i++) {
		loop_fd_remove(d->loop, d->lst[i].fd);
		close(d->lst[i].fd);
		if (d->lst[i].path)
			unlink(d->lst[i].path);
		free(d->lst[i].path);
	}
	d->nlst = 0;
}

/* Every second: connections that sent no command in time are told and
 * closed; after SHUTDOWN, the service closes its sockets. */
static void sweep(void *arg)
{
	struct clamd *d = arg;
	uint64_t now = loop_now_ms();
	struct conn *c, *next;

	for (c = d->conns; c; c = next) {
		next = c->next;
		if (c->mode == MODE_CLOSING && now >= c->deadline_ms) {
			conn_free(c);
			continue;
		}
		/* A client that takes none of its answers for read_timeout
		 * (clamd's SendBufTimeout) is cut off. */
		if (c->fd >= 0 && c->out_since_ms && c->out.len > c->out_at &&
		    now - c->out_since_ms >= (uint64_t)d->a->cfg.clamd_read_timeout * 1000) {
			log_msg(LOG_LVL_WARN, "clamd: a client that took none of its answers for "
				"%llds was cut off", (long long)d->a->cfg.clamd_read_timeout);
			conn_drop(c);
			continue;
		}
		if (c->mode == MODE_PORT && c->fd >= 0 && now >= c->deadline_ms) {
			port_fail(c, c->port_data ? "read timeout ERROR" : "Accept timeout. ERROR");
			continue;
		}
		/* Not read for the caps, as clamd's clients wait for its
		 * receiving thread: no time runs out meanwhile. */
		if (d->held && (c->mode == MODE_COMMAND || c->mode == MODE_FILDES)) {
			c->deadline_ms = now + (uint64_t)d->a->cfg.clamd_read_timeout * 1000;
			continue;
		}
		if (c->fd < 0 || c->pending || now < c->deadline_ms ||
		    (c->mode != MODE_COMMAND && c->mode != MODE_STREAM && c->mode != MODE_FILDES))
			continue;
		/* After the answers still to go, if any. */
		util_buf_append(&c->out, "COMMAND READ TIMED OUT\n", 23);
		c->mode = MODE_DONE;
		conn_settle(c);
	}
	if (d->closing)
		close_listeners(d);
	if (d->nconns < (unsigned)d->a->cfg.clamd_max_connections && !d->closing)
		accepting(d, true);
	/* Room may have come without an answer (a stream dropped, a scan
	 * refused, an answer posted before its scan left the count). */
	resume_held(d);
}

/* Listeners. */

/* Gives the socket just bound at path its mode and group, through a
 * descriptor of the socket itself: whoever may write in its directory
 * (clamav in /run/clamav) cannot have them given to another file by a
 * link put there meanwhile. Returns 0, or -1 with errno set. */
static int set_owner(const char *path, mode_t mode, gid_t gid)
{
	char proc[64];
	struct stat st;
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc = -1;

	if (fd < 0)
		return -1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		errno = EEXIST;
	else if (chmod(proc, mode) == 0 &&
		 (gid == (gid_t)-1 || fchownat(fd, "", (uid_t)-1, gid, AT_EMPTY_PATH) == 0))
		rc = 0;
	close(fd);
	return rc;
}

/* Listens on the UNIX socket path with the options' mode and group. */
static int listen_unix(struct clamd *d, const char *path, char *errbuf, size_t errlen)
{
	const struct agent_config *o = &d->a->cfg;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct listener *l = &d->lst[d->nlst];
	char *end, *dir;
	unsigned long mode = strtoul(o->clamd_socket_mode, &end, 8);
	struct group *gr = NULL;
	struct stat st;
	int fd, probe;

	if (strlen(path) >= sizeof(sun.sun_path) || path[0] != '/') {
		util_set_msg(errbuf, errlen, "%s: not an absolute path of at most %zu bytes", path,
			     sizeof(sun.sun_path) - 1);
		return -1;
	}
	if (!o->clamd_socket_mode[0] || *end || mode > 0777) {
		util_set_msg(errbuf, errlen, "clamd.socket_mode: %s is not an octal mode",
			     o->clamd_socket_mode);
		return -1;
	}
	if (o->clamd_socket_group[0] && !(gr = getgrnam(o->clamd_socket_group))) {
		util_set_msg(errbuf, errlen, "clamd.socket_group: no group %s",
			     o->clamd_socket_group);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/* A socket left by a process that is gone is replaced; one that
	 * answers is another daemon's (clamd's, say), and stays. */
	if (lstat(path, &st) == 0) {
		probe = S_ISSOCK(st.st_mode) ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
		if (!S_ISSOCK(st.st_mode) ||
		    (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0)) {
			if (probe >= 0)
				close(probe);
			util_set_msg(errbuf, errlen, "%s: %s", path,
				     S_ISSOCK(st.st_mode) ? "another program answers on it" :
				     "exists and is not a socket");
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	dir = strdup(path);
	if (dir && strrchr(dir, '/') != dir) {
		*strrchr(dir, '/') = 0;
		(void)mkdir(dir, 0755);
	}
	free(dir);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    set_owner(path, (mode_t)mode, gr ? gr->gr_gid : (gid_t)-1) != 0 ||
	    listen(fd, (int)o->clamd_max_connections) != 0) {
		util_set_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	l->d = d;
	l->fd = fd;
	l->local = true;
	l->path = strdup(path);
	d->nlst++;
	return 0;
}

/* Listens on the TCP address text ("HOST:PORT", "[V6]:PORT"): loopback
 * only unless clamd.tcp_remote. */
static int listen_tcp(struct clamd *d, const char *text, char *errbuf, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST |
				  AI_NUMERICSERV | AI_PASSIVE }, *ai = NULL;
	struct listener *l = &d->lst[d->nlst];
	char host[INET6_ADDRSTRLEN + 2], *colon;
	const char *port;
	int fd = -1, one = 1, rc;
	bool loopback;

	snprintf(host, sizeof(host), "%s", text);
	colon = strrchr(host, ':');
	if (!colon || strlen(text) >= sizeof(host)) {
		util_set_msg(errbuf, errlen, "clamd.tcp: %s is not HOST:PORT", text);
		return -1;
	}
	*colon = 0;
	port = colon + 1;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0 || !ai) {
		util_set_msg(errbuf, errlen, "clamd.tcp: %s: %s", text, gai_strerror(rc));
		return -1;
	}
	loopback = ai->ai_family == AF_INET ?
		   (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127 :
		   IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
	if (!loopback && !d->a->cfg.clamd_tcp_remote) {
		util_set_msg(errbuf, errlen, "clamd.tcp: %s is not a loopback address (only local "
			     "peers unless clamd.tcp_remote = yes)", text);
		freeaddrinfo(ai);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, (int)d->a->cfg.clamd_max_connections) != 0) {
		util_set_msg(errbuf, errlen, "clamd.tcp: %s: %s", text, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	l->d = d;
	l->fd = fd;
	l->local = false;
	d->nlst++;
	return 0;
}

static int listen_all(struct clamd *d, char *errbuf, size_t errlen)
{
	const struct agent_config *o = &d->a->cfg;
	char *list, *save = NULL, *tok;
	int rc = 0;

	if (listen_unix(d, o->clamd_socket, errbuf, errlen) != 0)
		return -1;
	if (o->clamd_debian_socket && strcmp(o->clamd_socket, DEBIAN_SOCKET) != 0 &&
	    listen_unix(d, DEBIAN_SOCKET, errbuf, errlen) != 0)
		return -1;
	list = strdup(o->clamd_tcp);
	if (!list)
		return -1;
	for (tok = strtok_r(list, " ,", &save); tok && rc == 0; tok = strtok_r(NULL, " ,", &save)) {
		if (d->nlst == MAX_LISTENERS) {
			util_set_msg(errbuf, errlen, "clamd.tcp: more than %d addresses",
				     MAX_LISTENERS - 2);
			rc = -1;
		} else {
			rc = listen_tcp(d, tok, errbuf, errlen);
		}
	}
	free(list);
	return rc;
}

/* The service. */

struct clamd *clamd_new(struct agent *a, struct loop *loop, struct channel *ch,
			struct vault *v, bool *off, char *errbuf, size_t errlen)
{
	struct clamd *d;
	size_t i;

	*off = !a->cfg.clamd_enabled;
	if (*off)
		return NULL;
	if (strcmp(a->cfg.clamd_unverified, "error") != 0 &&
	    strcmp(a->cfg.clamd_unverified, "clean") != 0) {
		util_set_msg(errbuf, errlen, "clamd.unverified: %s is neither error nor clean",
			     a->cfg.clamd_unverified);
		return NULL;
	}
	if (a->cfg.clamd_stream_min_port > a->cfg.clamd_stream_max_port) {
		util_set_msg(errbuf, errlen, "clamd.stream_min_port (%lld) is above "
			     "clamd.stream_max_port (%lld)",
			     (long long)a->cfg.clamd_stream_min_port,
			     (long long)a->cfg.clamd_stream_max_port);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	d->a = a;
	d->loop = loop;
	d->ch = ch;
	d->vault = a->cfg.clamd_actions ? v : NULL;
	atomic_store(&d->unverified_ok, strcmp(a->cfg.clamd_unverified, "clean") == 0);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->work, NULL);
	pthread_rwlock_init(&d->cache_lock, NULL);
	if (regcomp(&d->proc.re, "^/proc(/|$)", REG_EXTENDED | REG_NOSUB) != 0) {
		util_set_msg(errbuf, errlen, "out of memory");
		pthread_rwlock_destroy(&d->cache_lock);
		pthread_cond_destroy(&d->work);
		pthread_mutex_destroy(&d->lock);
		free(d);
		return NULL;
	}
	d->threads = calloc((size_t)a->cfg.clamd_max_threads, sizeof(*d->threads));
	if (!d->threads || listen_all(d, errbuf, errlen) != 0)
		goto fail;
	for (; d->nthreads < (size_t)a->cfg.clamd_max_threads; d->nthreads++)
		if (pthread_create(&d->threads[d->nthreads], NULL, pool_main, d) != 0) {
			util_set_msg(errbuf, errlen, "a thread: %s", strerror(errno));
			goto fail;
		}
	for (i = 0; i < d->nlst; i++)
		if (loop_fd_add(loop, d->lst[i].fd, EPOLLIN, on_accept, &d->lst[i]) != 0) {
			util_set_msg(errbuf, errlen, "out of memory");
			goto fail;
		}
	d->accepting = true;
	d->sweeper = loop_every(loop, 1000, sweep, d);
	if (!d->sweeper) {
		util_set_msg(errbuf, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < d->nlst; i++)
		log_msg(LOG_LVL_INFO, "clamd: listening on %s", d->lst[i].path ? d->lst[i].path :
			"a TCP address (clamd.tcp)");
	return d;
fail:
	clamd_free(d);
	return NULL;
}

json_t *clamd_status(struct clamd *d)
{
	if (!d)
		return NULL;
	return json_pack("{ss sI sI sI sI sI}", "state", atomic_load(&d->closing) ? "stopped" :
			 "on", "requests", (json_int_t)atomic_load(&d->requests),
			 "found", (json_int_t)atomic_load(&d->found), "errors",
			 (json_int_t)atomic_load(&d->errors), "unverified",
			 (json_int_t)atomic_load(&d->unverified), "cached",
			 (json_int_t)atomic_load(&d->cached));
}

void clamd_stop(struct clamd *d)
{
	const struct components_handle *h;
	struct conn *c;
	size_t i;

	if (!d || d->stopping)
		return;
	loop_cancel(d->loop, d->sweeper);
	close_listeners(d);
	for (c = d->conns; c; c = c->next) {
		atomic_store(&c->cancel, true);
		port_close(c);
		if (c->fd >= 0) {
			loop_fd_remove(d->loop, c->fd);
			close(c->fd);
			c->fd = -1;
		}
	}
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->work);
	pthread_mutex_unlock(&d->lock);
	for (i = 0; i < d->nthreads; i++)
		pthread_join(d->threads[i], NULL);
	d->nthreads = 0;
	/* Streams and descriptors with the workers: those still queued end
	 * now, those sent end within scan.timeout. Their answers run in
	 * loop_free(), before clamd_free(). */
	h = components_acquire(d->a->comps);
	if (h)
		scanner_cancel(h->scanner, on_verdict);
	components_release(d->a->comps, h);
	while (atomic_load(&d->inflight))
		usleep(10000);
}

void clamd_free(struct clamd *d)
{
	struct req *r;

	if (!d)
		return;
	clamd_stop(d);
	while ((r = d->first)) {
		d->first = r->next;
		if (r->cmd == CPROTO_FILDES) /* its verdict came as the pool stopped */
			add_found(r, r->path, (const char *const *)r->res.names, 1);
		if (json_array_size(r->found) && reports_queue_detections(d->a, r->found) != 0)
			log_msg(LOG_LVL_ERROR, "clamd: detections could not be kept");
		req_free(d, r);
	}
	/* Every answer has run (loop_free()); one lost for want of memory
	 * must not keep its connection. */
	while (d->conns) {
		d->conns->pending = 0;
		conn_free(d->conns);
	}
	scache_close(d->cache);
	regfree(&d->proc.re);
	pthread_rwlock_destroy(&d->cache_lock);
	free(d->threads);
	pthread_cond_destroy(&d->work);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
