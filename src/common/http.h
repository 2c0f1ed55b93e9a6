/* http.h -- the HTTPS front of wardd and ward-sps: libmicrohttpd daemons
 * (one per listen address) driven by the program's event loop (loop.h),
 * which also runs its timers.
 *
 * Every callback (request handler, timers) runs on the loop's thread, the
 * thread that runs loop_run(); nothing here is thread-safe otherwise.
 * A handler answers a request at once with http_respond_*(), or parks it
 * (a long poll) and answers it later from a timer or another handler; a
 * parked request must be answered eventually, since libmicrohttpd never
 * times out a suspended connection itself.
 *
 * Before a handler sees a request, the front has enforced the connection
 * limits of struct http_config (deadlines for headers and body, connections
 * per address, the administrators' reserve) and answered 400 a request
 * with %00 in its path or query or an ambiguous Content-Length.
 */
#ifndef WARD_HTTP_H
#define WARD_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "common/util.h"

struct http_server;
struct http_req;

/* Called once per complete request (headers and body). */
typedef void (*http_handler_fn)(struct http_req *req, void *arg);

/* Called when a timer falls due. */
typedef void (*http_timer_fn)(void *arg);

/* Called when a request ends: its answer sent, or its connection closed. */
typedef void (*http_done_fn)(void *arg);

/* Called when a parked request's connection is about to be dropped
 * because the server stops or its client closed it; the request must not
 * be used afterwards. */
typedef void (*http_drop_fn)(struct http_req *req, void *arg);

/* Called when a request's headers are in, on a connection beyond
 * max_connections (one of the admin_reserve): true lets it through, false
 * answers 503 and closes the connection. It must be cheap (no password
 * hashing). */
typedef bool (*http_privileged_fn)(struct http_req *req, void *arg);

/* Called when a request's headers are in, before its body is read: may
 * set *max_body (preset to max_request) to the body bytes this request may
 * carry, or answer the request (a refusal: 403, 413, 503...) and return
 * false, when its body is not read and its connection closes. It must be
 * cheap. */
typedef bool (*http_headers_fn)(struct http_req *req, void *arg, size_t *max_body);

struct http_config {
	const char *listen;       /* "ADDR:PORT, ..."; "*:PORT" = dual-stack, all addresses */
	const char *key_pem;      /* TLS key and certificate chain */
	const char *cert_pem;
	unsigned max_connections; /* when all are taken, a new connection replaces the one
				   * waiting longest for its request (headers or body) */
	unsigned admin_reserve;   /* connections beyond max_connections, for privileged
				   * requests, when no connection waits to be replaced */
	http_privileged_fn privileged; /* NULL: no reserve */
	unsigned max_per_address; /* connections from one IPv4 address or IPv6 /64 */
	size_t max_request;       /* body bytes; larger requests get 413 */
	http_headers_fn headers;  /* NULL: every request may carry max_request */
	unsigned idle_timeout;    /* seconds a connection may idle while an answer is sent */
	unsigned header_timeout;  /* seconds from connecting (or the last answer) to a
				   * request's complete headers */
	unsigned body_timeout;    /* seconds from the headers to the complete body */
};

/* File descriptors http_new() asks for beyond its connections: the
 * database, imports, certificates, worker threads' files, and connections
 * cut off but not closed yet. */
#define HTTP_SPARE_FDS 256

/* Seconds between two log lines about one offender (an address held at
 * max_per_address, or cut off at a deadline); what happens in between is
 * counted into the next line. */
#define HTTP_LOG_INTERVAL 60

/* Starts listening as cfg says (the PEM strings are copied), served by
 * loop, first raising the process's limit of open files to max_connections
 * + admin_reserve + HTTP_SPARE_FDS. Returns NULL with a message naming the
 * address, or the limit that could not be raised, on failure. The caller
 * owns the server and releases it with http_free() before loop_free(). */
struct http_server *http_new(struct loop *loop, const struct http_config *cfg,
			     http_handler_fn handler, void *arg, char *errbuf, size_t errlen);

/* Stops listening, drops every connection, takes the server off its loop
 * and frees it. Loop's thread. */
void http_free(struct http_server *s);

/* Calls fn(arg) every interval_ms milliseconds, the first time one interval
 * from now, on the server's loop (loop_every()), for as long as the loop
 * runs; never on a local server (http_new_local()), which has no loop.
 * Returns 0, or -1 when out of memory. */
int http_every(struct http_server *s, uint64_t interval_ms, http_timer_fn fn, void *arg);

/* Calls fn(arg) after every pass of the loop over the daemons: work that
 * handlers set in motion (answering parked requests) then goes out in the
 * same pass. fn must be cheap when there is nothing to do. Returns 0, or
 * -1 when out of memory. */
int http_after_each(struct http_server *s, http_timer_fn fn, void *arg);

/* Request accessors; the strings live as long as the request. */
const char *http_req_method(const struct http_req *r);
/* The URL path, without the query string. */
const char *http_req_path(const struct http_req *r);
/* A request header (case-insensitive name), or NULL. */
const char *http_req_header(const struct http_req *r, const char *name);
/* A query-string argument, or NULL. */
const char *http_req_query(const struct http_req *r, const char *name);
/* The body (NUL-terminated; *len without the NUL). */
const char *http_req_body(const struct http_req *r, size_t *len);
/* The peer's address as text ("192.0.2.1", "2001:db8::1"; IPv4-mapped
 * IPv6 addresses are shown as IPv4). */
const char *http_req_peer(const struct http_req *r);

/* Sets the path r's log lines show instead of its own (at most 127
 * bytes kept): a path that carries a secret is logged without it. */
void http_req_set_shown(struct http_req *r, const char *path);

/* Per-request slot for the handler's own state. */
void http_req_set_data(struct http_req *r, void *data);
void *http_req_data(const struct http_req *r);

/* Answers with status and a JSON body (reference stolen; NULL: no body). */
void http_respond_json(struct http_req *r, unsigned status, json_t *body);

/* Answers with status and the bytes in body, of content type, which are
 * taken over: body is left empty. */
void http_respond_data(struct http_req *r, unsigned status, const char *type,
		       struct util_buf *body);

/* Answers with status and the text in body (text/plain), which is taken
 * over: body is left empty. */
void http_respond_text(struct http_req *r, unsigned status, struct util_buf *body);

/* Answers 200 with the len bytes at data (not copied: they must outlive
 * the server) of content type, or 304 when the request's If-None-Match
 * is etag; the browser revalidates each time (no-cache). */
void http_respond_static(struct http_req *r, const void *data, size_t len, const char *type,
			 const char *etag);

/* Adds a header to r's answer, once one is given (Set-Cookie, Retry-After). */
void http_add_header(struct http_req *r, const char *name, const char *value);

/* Answers with status and {"error": message}. */
void http_respond_error(struct http_req *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Answers 200 with the size bytes of the open file fd, which is taken
 * over (closed when the answer is done, or at once on failure). The
 * answer counts in http_downloads() until it is sent or cut off; it is
 * cut off when the client has taken nothing for idle seconds. */
void http_respond_file(struct http_req *r, int fd, uint64_t size, unsigned idle);

/* Returns the number of file answers being sent, and in *peak (may be
 * NULL) the most there were at once since the server started. */
unsigned http_downloads(const struct http_server *s, unsigned *peak);

/* Returns the bytes of answers held in memory by r's server until their
 * clients have taken them (or their connections end): what clients that
 * do not read make the server keep. */
size_t http_held(const struct http_req *r);

/* Has fn(arg) called once when r ends (its answer sent, or its
 * connection closed), after which r must not be used. */
void http_on_done(struct http_req *r, http_done_fn fn, void *arg);

/* Answers 503 with a Retry-After of seconds and {"error": message}; logged
 * at debug level only, since a busy server sends many. */
void http_respond_busy(struct http_req *r, unsigned seconds, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parks r: it is answered later by http_respond_*(). drop is called
 * instead if the server stops first, or as soon as the client closes
 * the connection. */
void http_park(struct http_req *r, http_drop_fn drop, void *arg);

/* Whether parked r's client has closed its connection, though the loop
 * has not yet seen it: then r is dropped (as http_park() says) and must
 * not be used any more. Call before answering a request parked long ago
 * with something that must not be lost. */
bool http_parked_gone(struct http_req *r);

/* Called as a request is given its answer, with its status. */
typedef void (*http_answer_fn)(struct http_req *req, unsigned status, void *arg);

/* Has fn(req, status, arg) called for every answer s gives (one at a
 * time: loop thread). */
void http_on_answer(struct http_server *s, http_answer_fn fn, void *arg);

/* Tags r with route (what the handler counts it as); http_req_route()
 * reads it back: -1 until set. */
void http_req_set_route(struct http_req *r, int route);
int http_req_route(const struct http_req *r);

/* Returns the loop's clock, in milliseconds (monotonic). */
uint64_t http_now_ms(void);

/* Test seam: a server with no listener, whose handler (called as for
 * http_new()) only sees requests made in memory by http_local_request().
 * Freed with http_free(). Returns NULL when out of memory. */
struct http_server *http_new_local(http_handler_fn handler, void *arg, size_t max_request);

/* Test seam: runs s's handler on a request made in memory, from 127.0.0.1,
 * without a socket: method, path, headers and query arguments (each a
 * NULL-ended list of name, value pairs; NULL: none) and the len bytes of
 * body. Returns the answer's status, or 0 when the handler gave none; a
 * request it parked is dropped at once, as when the server stops. */
unsigned http_local_request(struct http_server *s, const char *method, const char *path,
			    const char *const *headers, const char *const *query,
			    const char *body, size_t len);

#endif
