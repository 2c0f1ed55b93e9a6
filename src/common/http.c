/* http.c -- libmicrohttpd daemons on the program's event loop (see http.h). */
#include "common/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/util.h"

#define MAX_DAEMONS 8

/* Per-connection memory for headers and buffers: a request line and
 * headers of up to about 3 KiB (agents send under 500 bytes, browsers
 * about 1 KiB); bodies stream through the handler into the request's own
 * buffer. Each agent holds a connection: 4 KiB less than 8 was 39 MiB
 * less at 10,000 agents. */
#define CONN_MEMORY 4096

/* Runs of a daemon in one pass of the loop while connections wait in
 * its listen queue: libmicrohttpd accepts at most 10 a run, so a fleet
 * reconnecting at once (a frontend gone, a restart) was taken in at 10 a
 * pass; with passes of 200 ms under that load, 50 a second, and most
 * waited in the queue past http.header_timeout and came again. */
#define ACCEPT_ROUNDS 32

/* The longest wait after passes in a row that only found TLS handshakes
 * waiting on their peers (see pass()); the first waits 1 ms, each next
 * twice as long. */
#define STALLED_WAIT_MS 1024

/* TLS 1.2 and 1.3 only; the server's preferences first, and those the
 * cheapest of the strong: X25519 and AES-128-GCM (its suite's SHA-256 has
 * instructions of its own where SHA-384 has none). A handshake cost 530
 * us of the server's CPU with the clients' order (P-256, AES-256-GCM with
 * SHA-384, whose hashing alone was 14 % of a failover's samples), 430
 * with this. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE:" \
	"-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:" \
	"-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305"

/* Peers by IPv4 address or IPv6 /64 (a host holds a whole /64): their
 * connections, and when one was last reported. */
#define PEER_BUCKETS 4096

/* A limit's log lines: one per HTTP_LOG_INTERVAL, counting the rest. */
struct report {
	uint64_t logged_ms;       /* last line (0: never) */
	unsigned unreported;      /* times since */
};

struct peer {
	unsigned char key[16];
	unsigned conns;
	struct report rep;        /* refusals and cuts */
	struct peer *next;
};

/* What a connection is waiting for, and so which deadline it is under. */
enum conn_phase {
	CONN_HEAD,    /* a request's headers (since it connected or was last answered) */
	CONN_BODY,    /* the request's body */
	CONN_BUSY,    /* its answer: being made, parked or sent */
};

/* The slot a connection holds. */
enum conn_slot {
	SLOT_NONE,      /* none: cut off, closing */
	SLOT_ORDINARY,  /* one of max_connections */
	SLOT_RESERVE,   /* one of admin_reserve: privileged requests only */
};

/* Connections cut off (their socket shut down) until libmicrohttpd closes
 * them, at its next pass: room it keeps beyond the slots. */
#define CUT_HEADROOM 64

struct conn {
	struct http_server *srv;
	struct MHD_Connection *mc;
	int fd;
	gnutls_session_t tls;     /* NULL: its reads and writes are not counted */
	bool fed;                 /* in srv's fed list */
	struct conn *fed_next, *fed_prev;
	struct peer *peer;
	enum conn_phase phase;
	enum conn_slot slot;
	uint64_t since_ms;        /* when the phase began */
	bool listed;              /* in its phase's waiting list */
	bool cut;                 /* shut down by us; closing */
	struct conn *next, *prev; /* waiting list */
};

/* The connections waiting in one phase (HEAD or BODY), longest first. */
struct conn_list {
	struct conn *head, *tail;
};

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	struct util_buf body;
	size_t max_body;             /* bytes its body may have */
	bool too_big;
	bool started;                /* the handler saw the headers */
	bool nul;                    /* the path or query has an encoded NUL byte */
	bool parked;
	bool download;               /* answered with a file: counted until done */
	size_t held;                 /* bytes of a buffered answer, counted until done */
	http_done_fn done;           /* called when the request ends (NULL: none) */
	void *done_arg;
	struct MHD_Response *resp;   /* the answer, once given */
	unsigned status;
	char peer[INET6_ADDRSTRLEN];
	void *data;
	http_drop_fn drop;
	void *drop_arg;
	int watched;                 /* parked: its socket, watched for the client leaving; -1 */
	struct http_req *next, *prev; /* parked list */
	int route;                   /* the handler's tag for it (http_req_set_route()) */
	char shown[128];             /* the path as logs show it; empty: url */
	const char *const *local_headers; /* a request made in memory (no conn) */
	const char *const *local_query;
};

struct http_server {
	struct MHD_Daemon *daemons[MAX_DAEMONS];
	size_t ndaemons;
	struct loop *loop;           /* NULL: a local server (http_new_local()) */
	bool hooked;                 /* its pass function is set */
	uint64_t sweeper;            /* the sweep timer */
	http_handler_fn handler;
	void *arg;
	http_answer_fn answered;     /* told of each answer (metrics), or NULL */
	void *answered_arg;
	size_t max_request;
	http_headers_fn headers;
	char *key;
	char *cert;
	http_timer_fn after;
	void *after_arg;
	struct http_req *parked;
	bool closing;             /* http_free() under way: nothing parks any more */
	unsigned downloads;
	unsigned downloads_peak;
	size_t held;                 /* bytes of buffered answers not yet sent */
	/* Connections and their deadlines (see struct http_config). */
	struct conn_list waiting[2];  /* by phase: CONN_HEAD, CONN_BODY */
	unsigned ordinary, reserved;  /* slots held */
	unsigned max_connections, admin_reserve, max_per_address;
	uint64_t header_ms, body_ms;
	http_privileged_fn privileged;
	struct report full;           /* connections beyond max_connections */
	struct peer *peers[PEER_BUCKETS];
	/* This pass's TLS reads and writes (conn_pull(), conn_push()) and
	 * callbacks: those that moved bytes, ended or ran (progress), those
	 * that would have blocked. */
	unsigned long progress;
	unsigned stalled_passes;      /* passes in a row without progress */
	bool resumed;                 /* a parked request was answered since the daemons ran */
	/* Connections whose reads brought bytes that the TLS layer may still
	 * hold as whole records: libmicrohttpd takes one a pass, unseen. */
	struct conn *fed;
};

uint64_t http_now_ms(void)
{
	return loop_now_ms();
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	/* TLS handshake failures of stray clients are common; not warnings. */
	log_msg(LOG_LVL_DEBUG, "http: %s", line);
}

/* The peer key of sa: an IPv4 address (as IPv4-mapped IPv6), or an IPv6
 * address's /64. Returns false for other families. */
static bool peer_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa && sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa && sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		memcpy(key, a->s6_addr, IN6_IS_ADDR_V4MAPPED(a) ? 16 : 8);
		return true;
	}
	return false;
}

static struct peer **peer_slot(struct http_server *s, const unsigned char key[16])
{
	uint32_t h = 2166136261u;
	struct peer **pp;
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	for (pp = &s->peers[h % PEER_BUCKETS]; *pp; pp = &(*pp)->next)
		if (memcmp((*pp)->key, key, 16) == 0)
			break;
	return pp;
}

/* Frees p when it holds no connection and its report interval is over. */
static void peer_release(struct http_server *s, struct peer *p, uint64_t now)
{
	struct peer **pp;

	if (p->conns || (p->rep.logged_ms && now - p->rep.logged_ms < HTTP_LOG_INTERVAL * 1000u))
		return;
	pp = peer_slot(s, p->key);
	*pp = p->next;
	free(p);
}

/* Logs "WHO: WHAT" unless rep logged within HTTP_LOG_INTERVAL, in which
 * case it is only counted, into the next line. */
static void report(struct report *rep, const char *who, const char *what)
{
	uint64_t now = http_now_ms();

	if (rep->logged_ms && now - rep->logged_ms < HTTP_LOG_INTERVAL * 1000u) {
		rep->unreported++;
		return;
	}
	log_msg(LOG_LVL_WARN, "http: %s: %s (%u more since the last report)", who, what,
		rep->unreported);
	rep->logged_ms = now;
	rep->unreported = 0;
}

/* Reports what happened to peer p, named by its address or /64. */
static void peer_report(struct peer *p, const char *what)
{
	char addr[INET6_ADDRSTRLEN], name[INET6_ADDRSTRLEN + 3];
	bool v4 = p->key[10] == 0xff && p->key[11] == 0xff &&
		  !memcmp(p->key, (const unsigned char[10]){ 0 }, 10);

	inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? p->key + 12 : p->key, addr, sizeof(addr));
	snprintf(name, sizeof(name), "%s%s", addr, v4 ? "" : "/64");
	report(&p->rep, name, what);
}

/* Accepts a connection unless its peer already holds max_per_address. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http_server *s = cls;
	unsigned char key[16];
	struct peer *p;

	(void)addrlen;
	s->progress++;
	if (!peer_key(addr, key))
		return MHD_YES;
	p = *peer_slot(s, key);
	if (p && p->conns >= s->max_per_address) {
		peer_report(p, "holds http.max_per_address connections; more refused");
		return MHD_NO;
	}
	return MHD_YES;
}

static void conn_unlist(struct http_server *s, struct conn *c)
{
	struct conn_list *l = &s->waiting[c->phase];

	if (!c->listed)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->next = c->prev = NULL;
	c->listed = false;
}

/* Moves c into phase from now: its deadline starts again. Each waiting
 * list stays in order of since_ms, since connections join at its tail. */
static void conn_enter(struct http_server *s, struct conn *c, enum conn_phase phase)
{
	struct conn_list *l = &s->waiting[phase];

	conn_unlist(s, c);
	c->phase = phase;
	c->since_ms = http_now_ms();
	if (phase == CONN_BUSY || c->cut)
		return;
	c->prev = l->tail;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	c->listed = true;
}

static void conn_release(struct http_server *s, struct conn *c)
{
	if (c->slot == SLOT_ORDINARY)
		s->ordinary--;
	else if (c->slot == SLOT_RESERVE)
		s->reserved--;
	c->slot = SLOT_NONE;
}

/* Closes c's socket under libmicrohttpd, which notices at once and drops
 * the connection (it has no call to close one itself); its slot is free
 * from now. */
static void conn_cut(struct http_server *s, struct conn *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);

	if (c->cut)
		return;
	c->cut = true;
	conn_unlist(s, c);
	conn_release(s, c);
	if (ci)
		shutdown(ci->connect_fd, SHUT_RDWR);
}

/* The connection of slot that has waited longest for its request (headers
 * or body), or NULL. Connections answering or parked never wait. */
static struct conn *oldest_waiting(struct http_server *s, enum conn_slot slot)
{
	struct conn *best = NULL, *c;
	size_t i;

	for (i = 0; i < 2; i++) {
		for (c = s->waiting[i].head; c && c->slot != slot; c = c->next)
			;
		if (c && (!best || c->since_ms < best->since_ms))
			best = c;
	}
	return best;
}

/* Finds a new connection a slot. With every ordinary one taken, the
 * connection that has waited longest for its request gives up its slot:
 * slow and silent clients go first, while agents in their long poll and
 * requests being answered stay. When none waits, privileged requests
 * still get one of the reserve. */
static enum conn_slot conn_place(struct http_server *s)
{
	struct conn *victim;

	if (s->ordinary < s->max_connections)
		return SLOT_ORDINARY;
	report(&s->full, "http.max_connections", "every connection in use: the one waiting "
	       "longest for its request is closed for a new one, or the new one serves "
	       "administrators only (http.admin_reserve)");
	if ((victim = oldest_waiting(s, SLOT_ORDINARY)) != NULL) {
		conn_cut(s, victim);
		return SLOT_ORDINARY;
	}
	if (!s->privileged)
		return SLOT_NONE;
	if (s->reserved < s->admin_reserve)
		return SLOT_RESERVE;
	if ((victim = oldest_waiting(s, SLOT_RESERVE)) != NULL) {
		conn_cut(s, victim);
		return SLOT_RESERVE;
	}
	return SLOT_NONE;
}

/* Counts a read or write of c's TLS layer: libmicrohttpd never sees one
 * that would block during a handshake, so it keeps that connection among
 * those ready, and asks to run again at once, until the peer's next
 * message comes (see pass()). */
static void conn_count(struct conn *c, ssize_t n)
{
	int e = errno;

	if (n >= 0 || (e != EAGAIN && e != EWOULDBLOCK))
		c->srv->progress++;
	errno = e;
}

static void conn_unfeed(struct http_server *s, struct conn *c)
{
	if (!c->fed)
		return;
	if (c->fed_prev)
		c->fed_prev->fed_next = c->fed_next;
	else
		s->fed = c->fed_next;
	if (c->fed_next)
		c->fed_next->fed_prev = c->fed_prev;
	c->fed_next = c->fed_prev = NULL;
	c->fed = false;
}

static ssize_t conn_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct conn *c = p;
	struct http_server *s = c->srv;
	ssize_t n = recv(c->fd, buf, len, 0);

	conn_count(c, n);
	if (n > 0 && !c->fed) {
		c->fed = true;
		c->fed_prev = NULL;
		c->fed_next = s->fed;
		if (s->fed)
			s->fed->fed_prev = c;
		s->fed = c;
	}
	return n;
}

static ssize_t conn_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
	struct conn *c = p;
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);

	conn_count(c, n);
	return n;
}

/* GnuTLS's wait for c's data, as its own would on the socket. */
static int conn_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct conn *c = p;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

	return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

/* Routes c's TLS reads and writes through conn_pull() and conn_push(),
 * handing GnuTLS c itself as the transport: c outlives the session, which
 * libmicrohttpd deinits before it tells on_connection() of the close.
 * The loop's thread only. */
static void conn_watch_tls(struct conn *c)
{
	const union MHD_ConnectionInfo *fi =
		MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *ti =
		MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);

	if (!fi || !ti || !ti->tls_session)
		return;
	c->fd = fi->connect_fd;
	c->tls = ti->tls_session;
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_pull_function(c->tls, conn_pull);
	gnutls_transport_set_pull_timeout_function(c->tls, conn_pull_timeout);
	gnutls_transport_set_vec_push_function(c->tls, conn_push);
}

/* Whether a connection's TLS layer holds records libmicrohttpd has yet to
 * read; forgets those that hold none. */
static bool fed_pending(struct http_server *s)
{
	struct conn *c = s->fed, *next;
	bool any = false;

	for (; c; c = next) {
		next = c->fed_next;
		if (gnutls_record_check_pending(c->tls) > 0)
			any = true;
		else
			conn_unfeed(s, c);
	}
	return any;
}

/* Tracks each connection from accept to close: its peer's count, its slot,
 * and its phase for the deadlines. */
static void on_connection(void *cls, struct MHD_Connection *mc, void **ctx,
			  enum MHD_ConnectionNotificationCode what)
{
	struct http_server *s = cls;
	const union MHD_ConnectionInfo *ci;
	struct conn *c = *ctx;
	unsigned char key[16];
	struct peer **pp;

	s->progress++;
	if (what == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (!c)
			return;
		conn_unfeed(s, c);
		conn_unlist(s, c);
		conn_release(s, c);
		if (c->peer) {
			c->peer->conns--;
			peer_release(s, c->peer, http_now_ms());
		}
		free(c);
		*ctx = NULL;
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return; /* untracked: counted nowhere, cut by the idle timeout */
	c->srv = s;
	c->mc = mc;
	conn_watch_tls(c);
	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && peer_key(ci->client_addr, key)) {
		pp = peer_slot(s, key);
		if (!*pp && (*pp = calloc(1, sizeof(**pp))) != NULL)
			memcpy((*pp)->key, key, 16);
		if ((c->peer = *pp) != NULL)
			c->peer->conns++;
	}
	*ctx = c;
	c->slot = conn_place(s);
	if (c->slot == SLOT_ORDINARY)
		s->ordinary++;
	else if (c->slot == SLOT_RESERVE)
		s->reserved++;
	else
		conn_cut(s, c);
	conn_enter(s, c, CONN_HEAD);
}

/* Cuts off connections past their phase's deadline: libmicrohttpd's own
 * timeout only counts silence, which a byte every few seconds defeats.
 * Each waiting list is in order of age, so only the expired are looked
 * at. Also frees peers whose report interval is over. */
static void sweep(void *arg)
{
	struct http_server *s = arg;
	uint64_t now = http_now_ms(), limit;
	struct peer *p, *next;
	struct conn *c;
	size_t i;

	for (i = 0; i < 2; i++) {
		limit = i == CONN_HEAD ? s->header_ms : s->body_ms;
		while ((c = s->waiting[i].head) != NULL && now - c->since_ms > limit) {
			if (c->peer)
				peer_report(c->peer, i == CONN_HEAD ?
					    "request headers not complete within "
					    "http.header_timeout; connection closed" :
					    "request body not complete within http.body_timeout; "
					    "connection closed");
			conn_cut(s, c);
		}
	}
	for (i = 0; i < PEER_BUCKETS; i++)
		for (p = s->peers[i]; p; p = next) {
			next = p->next;
			peer_release(s, p, now);
		}
}

/* The connection state of request r's connection, or NULL (untracked). */
static struct conn *req_conn(const struct http_req *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void fill_peer(struct http_req *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(r->peer, sizeof(r->peer), "unknown");
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->peer,
			  sizeof(r->peer));
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], r->peer, sizeof(r->peer));
		else
			inet_ntop(AF_INET6, a, r->peer, sizeof(r->peer));
	}
}

/* Answers go out as soon as they are written: with Nagle's algorithm a
 * TLS record sent after another waits for the peer's delayed ACK (40 ms),
 * which is most of a delivery's latency. */
static void no_delay(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	int one = 1;

	if (ci)
		setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Takes r off the parked list and stops watching its socket; returns
 * whether it was parked. */
static bool forget_parked(struct http_req *r)
{
	struct http_server *s = r->srv;

	if (!r->parked)
		return false;
	if (r->watched >= 0)
		loop_fd_remove(s->loop, r->watched);
	r->watched = -1;
	if (r->prev)
		r->prev->next = r->next;
	else
		s->parked = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
	r->parked = false;
	return true;
}

static void unpark(struct http_req *r)
{
	if (forget_parked(r) && r->conn) {
		MHD_resume_connection(r->conn);
		r->srv->resumed = true;
	}
}

/* Headers every answer carries: nothing of wardd's may be sniffed as
 * another type, framed, or run scripts from elsewhere (the console's pages
 * come from the same origin as the API). */
static void add_security_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'self'; img-src 'self' data:; object-src 'none'; "
				"base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
}

/* Makes resp (NULL: it could not be made) r's answer, of content type
 * (NULL: none) and with the Cache-Control cache; a parked request is
 * resumed so the loop sends it. */
static void set_answer(struct http_req *r, unsigned status, struct MHD_Response *resp,
		       const char *type, const char *cache)
{
	if (!resp) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		type = NULL;
	}
	if (resp && type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (resp) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
		add_security_headers(resp);
	}
	r->resp = resp;
	r->status = status;
	if (r->srv->answered)
		r->srv->answered(r, status, r->srv->answered_arg);
	unpark(r);
}

void http_on_answer(struct http_server *s, http_answer_fn fn, void *arg)
{
	s->answered = fn;
	s->answered_arg = arg;
}

void http_req_set_shown(struct http_req *r, const char *path)
{
	snprintf(r->shown, sizeof(r->shown), "%s", path);
}

/* The path of r as logs show it. */
static const char *shown(const struct http_req *r)
{
	return r->shown[0] ? r->shown : r->url;
}

void http_req_set_route(struct http_req *r, int route)
{
	r->route = route;
}

int http_req_route(const struct http_req *r)
{
	return r->route;
}

void http_respond_data(struct http_req *r, unsigned status, const char *type,
		       struct util_buf *body)
{
	struct MHD_Response *resp;
	char *text = body->data;
	size_t len = body->len;

	*body = (struct util_buf){ 0 };
	if (r->resp) { /* answered twice: keep the first */
		free(text);
		return;
	}
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
	} else {
		r->held = len;
		r->srv->held += len;
	}
	set_answer(r, status, resp, len ? type : NULL, "no-store");
}

void http_respond_text(struct http_req *r, unsigned status, struct util_buf *body)
{
	http_respond_data(r, status, "text/plain; charset=utf-8", body);
}

void http_respond_static(struct http_req *r, const void *data, size_t len, const char *type,
			 const char *etag)
{
	const char *match = http_req_header(r, "If-None-Match");
	bool same = match && strcmp(match, etag) == 0;
	struct MHD_Response *resp;

	if (r->resp)
		return;
	resp = MHD_create_response_from_buffer(same ? 0 : len, same ? (void *)"" : (void *)data,
					       MHD_RESPMEM_PERSISTENT);
	set_answer(r, same ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp, same ? NULL : type,
		   "no-cache");
	if (r->resp)
		MHD_add_response_header(r->resp, MHD_HTTP_HEADER_ETAG, etag);
}

void http_add_header(struct http_req *r, const char *name, const char *value)
{
	if (r->resp)
		MHD_add_response_header(r->resp, name, value);
}

void http_respond_file(struct http_req *r, int fd, uint64_t size, unsigned idle)
{
	struct MHD_Response *resp = r->resp ? NULL : MHD_create_response_from_fd64(size, fd);

	if (!resp) { /* answered twice, or out of memory */
		close(fd);
		if (r->resp)
			return;
	} else {
		r->download = true;
		if (++r->srv->downloads > r->srv->downloads_peak)
			r->srv->downloads_peak = r->srv->downloads;
		/* libmicrohttpd's timeout counts from the last byte sent: a
		 * client that stops reading loses the download after idle. */
		MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, idle);
	}
	set_answer(r, 200, resp, "application/octet-stream", "no-store");
}

unsigned http_downloads(const struct http_server *s, unsigned *peak)
{
	if (peak)
		*peak = s->downloads_peak;
	return s->downloads;
}

size_t http_held(const struct http_req *r)
{
	return r->srv->held;
}

void http_on_done(struct http_req *r, http_done_fn fn, void *arg)
{
	r->done = fn;
	r->done_arg = arg;
}

void http_respond_busy(struct http_req *r, unsigned seconds, const char *fmt, ...)
{
	char msg[256], after[16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(LOG_LVL_DEBUG, "%s %s from %s: 503 %s", r->method, shown(r), r->peer, msg);
	http_respond_json(r, MHD_HTTP_SERVICE_UNAVAILABLE, json_pack("{ss}", "error", msg));
	snprintf(after, sizeof(after), "%u", seconds);
	http_add_header(r, MHD_HTTP_HEADER_RETRY_AFTER, after);
}

void http_respond_json(struct http_req *r, unsigned status, json_t *body)
{
	char *text = NULL;
	size_t len = 0;

	if (body) {
		text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(body);
		if (!text) {
			status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		} else {
			len = strlen(text);
			text[len] = '\n';
			len++;
		}
	}
	http_respond_data(r, status, "application/json", &(struct util_buf){ text, len, len });
}

void http_respond_error(struct http_req *r, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (status >= 500)
		log_msg(LOG_LVL_ERROR, "%s %s from %s: %u %s", r->method, shown(r), r->peer, status,
			msg);
	else
		log_msg(LOG_LVL_INFO, "%s %s from %s: %u %s", r->method, shown(r), r->peer, status,
			msg);
	/* Bytes a client sent may be no UTF-8: escaped, never no answer. */
	http_respond_json(r, status, json_pack("{so}", "error", util_json_bytes(msg)));
}

/* A parked request's client closed its connection (it stopped, or gave
 * up waiting): its owner lets it go at once, rather than count it among
 * those waiting, or send it something, until its time runs out; the
 * empty answer closes the connection. */
static void on_parked_closed(int fd, uint32_t events, void *arg)
{
	struct http_req *r = arg;

	(void)fd;
	(void)events;
	if (r->drop)
		r->drop(r, r->drop_arg);
	r->drop = NULL;
	http_respond_json(r, MHD_HTTP_NO_CONTENT, NULL);
}

bool http_parked_gone(struct http_req *r)
{
	struct pollfd p = { .fd = r->watched, .events = POLLRDHUP };

	if (!r->parked || r->watched < 0 || poll(&p, 1, 0) != 1)
		return false;
	on_parked_closed(r->watched, 0, r);
	return true;
}

void http_park(struct http_req *r, http_drop_fn drop, void *arg)
{
	struct http_server *s = r->srv;
	const union MHD_ConnectionInfo *ci;

	/* A request completed during http_free()'s last pass would stay
	 * suspended, and libmicrohttpd aborts on stopping with one. */
	if (s->closing) {
		if (drop)
			drop(r, arg);
		http_respond_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server stopping");
		return;
	}
	r->drop = drop;
	r->drop_arg = arg;
	r->parked = true;
	/* (Level-triggered: a client gone already is seen at the next pass.) */
	ci = r->conn && s->loop ? MHD_get_connection_info(r->conn,
							 MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
	if (ci && loop_fd_add(s->loop, ci->connect_fd, EPOLLRDHUP, on_parked_closed, r) == 0)
		r->watched = ci->connect_fd;
	r->next = s->parked;
	r->prev = NULL;
	if (s->parked)
		s->parked->prev = r;
	s->parked = r;
}

static enum MHD_Result queue_answer(struct http_req *r)
{
	enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->resp);

	MHD_destroy_response(r->resp);
	r->resp = NULL;
	return ret;
}

/* Makes each request's state as its request line arrives, while the raw
 * URI is at hand: libmicrohttpd decodes %00 into the path and the query,
 * where it would cut names short ("x.tar.zst%00.txt"). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct http_req *r = calloc(1, sizeof(*r));

	(void)c;
	/* A request may end before its headers are complete (a connection
	 * cut off): what on_completed() counts must be there from the start. */
	if (r) {
		r->watched = -1;
		r->srv = cls;
		r->nul = strstr(uri, "%00") != NULL;
		r->route = -1;
	}
	return r;
}

struct length_count {
	unsigned lengths;   /* Content-Length headers */
	bool bad;           /* one is not a plain decimal number */
	bool chunked;       /* a Transfer-Encoding header too */
};

static enum MHD_Result count_length(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct length_count *n = cls;

	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		n->lengths++;
		if (!value || !*value || strspn(value, "0123456789") != strlen(value))
			n->bad = true;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		n->chunked = true;
	}
	return MHD_YES;
}

/* Answers at once what must not reach a handler: an encoded NUL byte, a
 * body length given twice or in two ways (a proxy in front may read another
 * body than this server), and, on a reserve connection, anything that is
 * not privileged. Returns false when r has been answered. */
static bool admit(struct http_req *r, struct conn *c)
{
	struct http_server *s = r->srv;
	struct length_count n = { 0 };

	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_length, &n);
	if (r->nul)
		http_respond_error(r, MHD_HTTP_BAD_REQUEST, "a NUL byte (%%00) in the path or "
				   "query");
	else if (n.lengths > 1 || n.bad || (n.lengths && n.chunked))
		http_respond_error(r, MHD_HTTP_BAD_REQUEST, "%s", n.lengths > 1 ?
				   "more than one Content-Length header" : n.bad ?
				   "a Content-Length that is not a number" :
				   "both Content-Length and Transfer-Encoding");
	else if (c && c->slot == SLOT_RESERVE && !s->privileged(r, s->arg))
		http_respond_busy(r, 5, "the server is at its connection limit "
				  "(http.max_connections)");
	else
		return true;
	/* The body, if any, is never read: the connection cannot go on. */
	http_add_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_req *r = *con_cls;
	struct conn *conn;

	(void)version;
	s->progress++;
	if (!r)
		return MHD_NO; /* out of memory in on_uri() */
	if (!r->started) {
		r->started = true;
		r->conn = c;
		r->method = method;
		r->url = url;
		fill_peer(r);
		no_delay(c);
		conn = req_conn(r);
		if (conn)
			conn_enter(s, conn, CONN_BODY);
		if (!admit(r, conn))
			return queue_answer(r);
		/* http_free()'s last pass takes requests in, but what handles them
		 * may be gone already: none is handled. */
		if (s->closing) {
			http_respond_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server stopping");
			return queue_answer(r);
		}
		r->max_body = s->max_request;
		if (s->headers && !s->headers(r, s->arg, &r->max_body)) {
			/* The body is never read: the connection cannot go on. */
			http_add_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
			return queue_answer(r);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (!r->too_big && (r->body.len + *upload_size > r->max_body ||
				    util_buf_append(&r->body, upload, *upload_size) != 0)) {
			r->too_big = true;
			util_buf_free(&r->body);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->resp)
		return queue_answer(r);
	conn = req_conn(r);
	if (conn)
		conn_enter(s, conn, CONN_BUSY);
	if (r->too_big)
		http_respond_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
				   "request body larger than %zu bytes", r->max_body);
	else if (s->closing)
		http_respond_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server stopping");
	else
		s->handler(r, s->arg);
	if (r->resp)
		return queue_answer(r);
	if (r->parked) {
		MHD_suspend_connection(c);
		return MHD_YES;
	}
	http_respond_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "no answer");
	return queue_answer(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_req *r = *con_cls;
	struct conn *conn;

	s->progress++;
	(void)c;
	(void)toe;
	if (!r)
		return;
	/* (libmicrohttpd ends no suspended request but at its stop, when
	 * none is left: never a dangling one on the list or the loop.) */
	forget_parked(r);
	/* The next request's headers are due from now. */
	if (r->started && (conn = req_conn(r)) != NULL)
		conn_enter(r->srv, conn, CONN_HEAD);
	if (r->download)
		r->srv->downloads--;
	r->srv->held -= r->held;
	if (r->done)
		r->done(r->done_arg);
	if (r->resp)
		MHD_destroy_response(r->resp);
	util_buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

/* Parses one listen address ("*:PORT", "IPV4:PORT", "[IPV6]:PORT") and
 * starts its daemon. */
static bool start_daemon(struct http_server *s, const struct http_config *cfg, const char *addr,
			 char *errbuf, size_t errlen)
{
	struct sockaddr_in6 sin6 = { 0 };
	struct sockaddr_in sin = { 0 };
	struct sockaddr *sa = NULL;
	char host[64];
	const char *colon = strrchr(addr, ':');
	unsigned flags = MHD_USE_EPOLL | MHD_USE_TLS | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	unsigned long port;
	char *end;
	size_t hl;

	if (!colon || colon == addr || (hl = (size_t)(colon - addr)) >= sizeof(host))
		goto bad;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port == 0 || port > 65535)
		goto bad;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (strcmp(host, "*") == 0) {
		flags |= MHD_USE_DUAL_STACK;
	} else if (host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &sin6.sin6_addr) != 1)
			goto bad;
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&sin6;
		flags |= MHD_USE_IPv6;
	} else {
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
			goto bad;
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&sin;
	}
	if (s->ndaemons == MAX_DAEMONS) {
		snprintf(errbuf, errlen, "listen: more than %d addresses", MAX_DAEMONS);
		return false;
	}
	s->daemons[s->ndaemons] = MHD_start_daemon(flags, (uint16_t)port, on_accept, s,
		on_request, s,
		MHD_OPTION_SOCK_ADDR, sa,
		MHD_OPTION_HTTPS_MEM_KEY, s->key,
		MHD_OPTION_HTTPS_MEM_CERT, s->cert,
		MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections + s->admin_reserve + CUT_HEADROOM,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		MHD_OPTION_END);
	if (!s->daemons[s->ndaemons]) {
		snprintf(errbuf, errlen, "listen %s: cannot start (address in use, or not "
			 "available on this host)", addr);
		return false;
	}
	s->ndaemons++;
	return true;
bad:
	snprintf(errbuf, errlen, "listen: '%s' is not *:PORT, IPV4:PORT or [IPV6]:PORT", addr);
	return false;
}

/* Raises the soft limit of open files (and the hard one, when allowed) to
 * need; fails naming both when the hard limit is lower and stays so. */
static bool raise_fd_limit(rlim_t need, char *errbuf, size_t errlen)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(errbuf, errlen, "open files limit: %s", strerror(errno));
		return false;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
		return true;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		struct rlimit want = { need, need };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return true;
		snprintf(errbuf, errlen, "open files: http.max_connections + http.admin_reserve + "
			 "%d need %llu, but the hard limit is %llu (LimitNOFILE= in the unit, "
			 "ulimit -Hn): raise it or lower http.max_connections", HTTP_SPARE_FDS,
			 (unsigned long long)need, (unsigned long long)rl.rlim_max);
		return false;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(errbuf, errlen, "open files limit %llu: %s", (unsigned long long)need,
			 strerror(errno));
		return false;
	}
	return true;
}

/* A daemon's descriptor is ready: pass() runs every daemon. */
static void on_daemon(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
}

/* Runs d, again while its listen queue holds connections (ACCEPT_ROUNDS
 * at most: a daemon at its connection limit accepts none). */
static void run_daemon(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *li = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
	struct pollfd p = { .fd = li ? li->listen_fd : -1, .events = POLLIN };
	int rounds = 0;

	do
		MHD_run(d);
	while (p.fd >= 0 && ++rounds < ACCEPT_ROUNDS && poll(&p, 1, 0) == 1 &&
	       (p.revents & POLLIN));
}

/* After each pass of the loop: the daemons take what is ready (and
 * answers given by timers and posted work), then what their handlers set
 * in motion goes out in the same pass (http_after_each()). Returns when
 * libmicrohttpd wants to run again.
 *
 * libmicrohttpd wants to run again at once while a TLS handshake waits
 * for its peer (it learns nothing of the handshake's reads that would
 * block): one client that sent a few bytes of its hello had wardd
 * spinning on a core, and in a fleet's reconnection storm the passes
 * over handshakes waiting for their clients' next message took most of
 * a server's CPU. So a pass in which no read or write moved a byte, no
 * callback ran and no TLS record waits unread is followed by a wait for
 * the sockets (their events end it at once) of 1 ms, doubling in a row of
 * such passes up to STALLED_WAIT_MS.
 *
 * On a loop of the program's, libmicrohttpd takes a resumed connection
 * back at its next run, and nothing wakes it for that: what the after
 * hook answered (a delivery the doorbell made possible, say) waited for
 * the loop's next timer, up to 250 ms. So the daemons run again then, and
 * a pass whose handlers answered parked requests asks for the next at
 * once. */
static int64_t pass(void *arg)
{
	struct http_server *s = arg;
	MHD_UNSIGNED_LONG_LONG t;
	int64_t wait = -1;
	size_t i;

	s->progress = 0;
	s->resumed = false;
	for (i = 0; i < s->ndaemons; i++)
		run_daemon(s->daemons[i]);
	if (s->after)
		s->after(s->after_arg);
	if (s->resumed) {
		s->resumed = false;
		for (i = 0; i < s->ndaemons; i++)
			MHD_run(s->daemons[i]);
	}
	if (s->resumed)
		return 0;
	for (i = 0; i < s->ndaemons; i++)
		if (MHD_get_timeout(s->daemons[i], &t) == MHD_YES &&
		    (wait < 0 || t < (MHD_UNSIGNED_LONG_LONG)wait))
			wait = t > INT64_MAX ? INT64_MAX : (int64_t)t;
	if (fed_pending(s) || s->progress || wait != 0) {
		s->stalled_passes = 0;
		return wait;
	}
	wait = (int64_t)1 << s->stalled_passes;
	if (wait < STALLED_WAIT_MS)
		s->stalled_passes++;
	return wait;
}

struct http_server *http_new(struct loop *loop, const struct http_config *cfg,
			     http_handler_fn handler, void *arg, char *errbuf, size_t errlen)
{
	struct http_server *s = calloc(1, sizeof(*s));
	char *list = NULL, *tok, *save = NULL;
	size_t i;

	if (!s)
		goto nomem;
	s->handler = handler;
	s->arg = arg;
	s->max_request = cfg->max_request;
	s->headers = cfg->headers;
	s->max_connections = cfg->max_connections;
	s->privileged = cfg->privileged;
	s->admin_reserve = cfg->privileged ? cfg->admin_reserve : 0;
	s->max_per_address = cfg->max_per_address;
	s->header_ms = cfg->header_timeout * 1000ull;
	s->body_ms = cfg->body_timeout * 1000ull;
	if (!raise_fd_limit((rlim_t)cfg->max_connections + s->admin_reserve + HTTP_SPARE_FDS,
			    errbuf, errlen))
		goto fail;
	s->key = strdup(cfg->key_pem);
	s->cert = strdup(cfg->cert_pem);
	list = strdup(cfg->listen);
	if (!s->key || !s->cert || !list)
		goto nomem;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		tok[strcspn(tok, " ")] = '\0';
		if (!start_daemon(s, cfg, tok, errbuf, errlen))
			goto fail;
	}
	if (s->ndaemons == 0) {
		snprintf(errbuf, errlen, "listen: no address given");
		goto fail;
	}
	s->loop = loop;
	for (i = 0; i < s->ndaemons; i++) {
		const union MHD_DaemonInfo *di =
			MHD_get_daemon_info(s->daemons[i], MHD_DAEMON_INFO_EPOLL_FD);

		if (!di || loop_fd_add(loop, di->epoll_fd, EPOLLIN, on_daemon, s) != 0)
			goto sysfail;
	}
	if (loop_on_pass(loop, pass, s) != 0)
		goto nomem;
	s->hooked = true;
	if ((s->sweeper = loop_every(loop, 1000, sweep, s)) == 0)
		goto nomem;
	free(list);
	return s;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	goto fail;
sysfail:
	snprintf(errbuf, errlen, "event loop: %s", strerror(errno));
fail:
	free(list);
	http_free(s);
	return NULL;
}

int http_every(struct http_server *s, uint64_t interval_ms, http_timer_fn fn, void *arg)
{
	if (!s->loop)
		return 0; /* a local server (http_new_local()) runs no timers */
	return loop_every(s->loop, interval_ms, fn, arg) ? 0 : -1;
}

int http_after_each(struct http_server *s, http_timer_fn fn, void *arg)
{
	s->after = fn;
	s->after_arg = arg;
	return 0;
}

void http_free(struct http_server *s)
{
	struct http_req *r;
	struct peer *p;
	size_t i;

	if (!s)
		return;
	/* libmicrohttpd refuses to stop with suspended connections: answer
	 * each parked request, then let the daemons send the answers. */
	s->closing = true;
	while ((r = s->parked) != NULL) {
		if (r->drop)
			r->drop(r, r->drop_arg);
		http_respond_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server stopping");
	}
	for (i = 0; i < s->ndaemons; i++) {
		const union MHD_DaemonInfo *di =
			MHD_get_daemon_info(s->daemons[i], MHD_DAEMON_INFO_EPOLL_FD);

		if (s->loop && di)
			loop_fd_remove(s->loop, di->epoll_fd);
		MHD_run(s->daemons[i]);
		MHD_stop_daemon(s->daemons[i]);
	}
	if (s->hooked)
		loop_off_pass(s->loop, pass, s);
	if (s->sweeper)
		loop_cancel(s->loop, s->sweeper);
	/* Every connection is closed now; peers may linger for their reports. */
	for (i = 0; i < PEER_BUCKETS; i++)
		while ((p = s->peers[i]) != NULL) {
			s->peers[i] = p->next;
			free(p);
		}
	free(s->key);
	free(s->cert);
	free(s);
}

const char *http_req_method(const struct http_req *r)
{
	return r->method;
}

const char *http_req_path(const struct http_req *r)
{
	return r->url;
}

/* The value of name in a request made in memory: pairs, NULL-ended. */
static const char *local_value(const char *const *pairs, const char *name)
{
	for (; pairs && pairs[0]; pairs += 2)
		if (strcasecmp(pairs[0], name) == 0)
			return pairs[1];
	return NULL;
}

const char *http_req_header(const struct http_req *r, const char *name)
{
	if (!r->conn)
		return local_value(r->local_headers, name);
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_req_query(const struct http_req *r, const char *name)
{
	if (!r->conn)
		return local_value(r->local_query, name);
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_req_body(const struct http_req *r, size_t *len)
{
	*len = r->body.len;
	return r->body.data ? r->body.data : "";
}

const char *http_req_peer(const struct http_req *r)
{
	return r->peer;
}

void http_req_set_data(struct http_req *r, void *data)
{
	r->data = data;
}

void *http_req_data(const struct http_req *r)
{
	return r->data;
}

struct http_server *http_new_local(http_handler_fn handler, void *arg, size_t max_request)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->handler = handler;
	s->arg = arg;
	s->max_request = max_request;
	return s;
}

unsigned http_local_request(struct http_server *s, const char *method, const char *path,
			    const char *const *headers, const char *const *query,
			    const char *body, size_t len)
{
	struct http_req r = { .srv = s, .method = method, .url = path, .route = -1, .watched = -1,
			      .local_headers = headers,
			      .local_query = query };
	unsigned status;

	snprintf(r.peer, sizeof(r.peer), "127.0.0.1");
	if (len > s->max_request)
		http_respond_error(&r, MHD_HTTP_CONTENT_TOO_LARGE,
				   "request body larger than %zu bytes", s->max_request);
	else if (util_buf_append(&r.body, body, len) != 0)
		http_respond_error(&r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	else
		s->handler(&r, s->arg);
	if (r.parked) { /* its owner forgets it, as when the server stops */
		if (r.drop)
			r.drop(&r, r.drop_arg);
		unpark(&r);
	}
	status = r.resp ? r.status : 0;
	if (r.download)
		s->downloads--;
	if (r.resp)
		MHD_destroy_response(r.resp);
	util_buf_free(&r.body);
	return status;
}
