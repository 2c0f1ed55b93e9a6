/* http.c -- libmicrohttpd daemons under one epoll loop (see http.h). */
#include "common/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define MAX_DAEMONS 8

/* Per-connection memory for headers and buffers: a request line, a few
 * headers and a bearer token fit with room to spare; bodies stream
 * through the handler into the request's own buffer. */
#define CONN_MEMORY 8192

/* TLS 1.2 and 1.3 only. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	struct util_buf body;
	bool too_big;
	bool parked;
	bool download;               /* answered with a file: counted until done */
	struct MHD_Response *resp;   /* the answer, once given */
	unsigned status;
	char peer[INET6_ADDRSTRLEN];
	void *data;
	http_drop_fn drop;
	void *drop_arg;
	struct http_req *next, *prev; /* parked list */
	const char *const *local_headers; /* a request made in memory (no conn) */
	const char *const *local_query;
};

struct http_timer {
	uint64_t interval;
	uint64_t due;
	http_timer_fn fn;
	void *arg;
};

struct http_server {
	struct MHD_Daemon *daemons[MAX_DAEMONS];
	size_t ndaemons;
	int epfd;
	int sigfd;
	bool stop;
	http_handler_fn handler;
	void *arg;
	size_t max_request;
	char *key;
	char *cert;
	struct http_timer *timers;
	size_t ntimers;
	http_timer_fn after;
	void *after_arg;
	struct http_req *parked;
	unsigned downloads;
	unsigned downloads_peak;
};

uint64_t http_now_ms(void)
{
	return util_now_ns() / 1000000u;
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

static void unpark(struct http_req *r)
{
	struct http_server *s = r->srv;

	if (!r->parked)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		s->parked = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
	r->parked = false;
	if (r->conn)
		MHD_resume_connection(r->conn);
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
	unpark(r);
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
	if (!resp)
		free(text);
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

void http_respond_file(struct http_req *r, int fd, uint64_t size)
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
	}
	set_answer(r, 200, resp, "application/octet-stream", "no-store");
}

unsigned http_downloads(const struct http_server *s, unsigned *peak)
{
	if (peak)
		*peak = s->downloads_peak;
	return s->downloads;
}

void http_respond_busy(struct http_req *r, unsigned seconds, const char *fmt, ...)
{
	char msg[256], after[16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(LOG_LVL_DEBUG, "%s %s from %s: 503 %s", r->method, r->url, r->peer, msg);
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
		log_msg(LOG_LVL_ERROR, "%s %s from %s: %u %s", r->method, r->url, r->peer, status,
			msg);
	else
		log_msg(LOG_LVL_INFO, "%s %s from %s: %u %s", r->method, r->url, r->peer, status,
			msg);
	http_respond_json(r, status, json_pack("{ss}", "error", msg));
}

void http_park(struct http_req *r, http_drop_fn drop, void *arg)
{
	struct http_server *s = r->srv;

	r->drop = drop;
	r->drop_arg = arg;
	r->parked = true;
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_req *r = *con_cls;

	(void)version;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->srv = s;
		r->conn = c;
		r->method = method;
		r->url = url;
		fill_peer(r);
		no_delay(c);
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!r->too_big && (r->body.len + *upload_size > s->max_request ||
				    util_buf_append(&r->body, upload, *upload_size) != 0)) {
			r->too_big = true;
			util_buf_free(&r->body);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->resp)
		return queue_answer(r);
	if (r->too_big)
		http_respond_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
				   "request body larger than %zu bytes", s->max_request);
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
	struct http_req *r = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (!r)
		return;
	if (r->download)
		r->srv->downloads--;
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
	s->daemons[s->ndaemons] = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL,
		on_request, s,
		MHD_OPTION_SOCK_ADDR, sa,
		MHD_OPTION_HTTPS_MEM_KEY, s->key,
		MHD_OPTION_HTTPS_MEM_CERT, s->cert,
		MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
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

struct http_server *http_new(const struct http_config *cfg, http_handler_fn handler,
			     void *arg, char *errbuf, size_t errlen)
{
	struct http_server *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = EPOLLIN };
	char *list = NULL, *tok, *save = NULL;
	sigset_t mask;
	size_t i;

	if (!s)
		goto nomem;
	s->epfd = s->sigfd = -1;
	s->handler = handler;
	s->arg = arg;
	s->max_request = cfg->max_request;
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
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (s->epfd < 0 || pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		goto sysfail;
	ev.data.u64 = MAX_DAEMONS; /* the signal descriptor */
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sigfd, &ev) != 0)
		goto sysfail;
	for (i = 0; i < s->ndaemons; i++) {
		const union MHD_DaemonInfo *di =
			MHD_get_daemon_info(s->daemons[i], MHD_DAEMON_INFO_EPOLL_FD);

		ev.data.u64 = i;
		if (!di || epoll_ctl(s->epfd, EPOLL_CTL_ADD, di->epoll_fd, &ev) != 0)
			goto sysfail;
	}
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
	struct http_timer *t = realloc(s->timers, (s->ntimers + 1) * sizeof(*t));

	if (!t)
		return -1;
	s->timers = t;
	t[s->ntimers].interval = interval_ms;
	t[s->ntimers].due = http_now_ms() + interval_ms;
	t[s->ntimers].fn = fn;
	t[s->ntimers].arg = arg;
	s->ntimers++;
	return 0;
}

int http_after_each(struct http_server *s, http_timer_fn fn, void *arg)
{
	s->after = fn;
	s->after_arg = arg;
	return 0;
}

/* Milliseconds until the loop must next run: a timer or a daemon's own
 * deadline. -1 = none. */
static int next_wait(struct http_server *s)
{
	uint64_t now = http_now_ms(), wait = UINT64_MAX;
	MHD_UNSIGNED_LONG_LONG t;
	size_t i;

	for (i = 0; i < s->ntimers; i++)
		wait = s->timers[i].due <= now ? 0 :
		       (s->timers[i].due - now < wait ? s->timers[i].due - now : wait);
	for (i = 0; i < s->ndaemons; i++)
		if (MHD_get_timeout(s->daemons[i], &t) == MHD_YES && t < wait)
			wait = t;
	return wait == UINT64_MAX ? -1 : wait > 60000 ? 60000 : (int)wait;
}

static void run_timers(struct http_server *s)
{
	uint64_t now = http_now_ms();
	size_t i;

	for (i = 0; i < s->ntimers; i++) {
		if (s->timers[i].due > now)
			continue;
		/* Fixed rate without catching up on missed runs. */
		s->timers[i].due = now + s->timers[i].interval;
		s->timers[i].fn(s->timers[i].arg);
	}
}

int http_run(struct http_server *s)
{
	struct epoll_event evs[MAX_DAEMONS + 1];
	struct signalfd_siginfo si;
	int i, n;
	size_t d;

	s->stop = false;
	while (!s->stop) {
		n = epoll_wait(s->epfd, evs, MAX_DAEMONS + 1, next_wait(s));
		if (n < 0 && errno != EINTR) {
			log_msg(LOG_LVL_ERROR, "event loop: %s", strerror(errno));
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.u64 == MAX_DAEMONS &&
			    read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				log_msg(LOG_LVL_INFO, "signal %u: stopping", si.ssi_signo);
				s->stop = true;
			}
		}
		for (d = 0; d < s->ndaemons; d++)
			MHD_run(s->daemons[d]);
		run_timers(s);
		if (s->after)
			s->after(s->after_arg);
	}
	return 0;
}

void http_stop(struct http_server *s)
{
	s->stop = true;
}

void http_free(struct http_server *s)
{
	struct http_req *r;
	size_t i;

	if (!s)
		return;
	/* libmicrohttpd refuses to stop with suspended connections: answer
	 * each parked request, then let the daemons send the answers. */
	while ((r = s->parked) != NULL) {
		if (r->drop)
			r->drop(r, r->drop_arg);
		http_respond_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "server stopping");
	}
	for (i = 0; i < s->ndaemons; i++) {
		MHD_run(s->daemons[i]);
		MHD_stop_daemon(s->daemons[i]);
	}
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->sigfd >= 0)
		close(s->sigfd);
	free(s->timers);
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
	s->epfd = s->sigfd = -1;
	s->handler = handler;
	s->arg = arg;
	s->max_request = max_request;
	return s;
}

unsigned http_local_request(struct http_server *s, const char *method, const char *path,
			    const char *const *headers, const char *const *query,
			    const char *body, size_t len)
{
	struct http_req r = { .srv = s, .method = method, .url = path, .local_headers = headers,
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
