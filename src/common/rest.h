/* rest.h -- a JSON-over-HTTPS client for Ward's REST API (libcurl).
 *
 * One struct rest_client per thread: it holds a libcurl handle, which keeps
 * its TLS connection to the server between requests. The server's
 * certificate is checked against the given CA file and host name.
 */
#ifndef WARD_REST_H
#define WARD_REST_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "common/util.h"
#include "common/err.h"

/* Errors of the client layer (an HTTP error status is not one: the
 * request succeeded and the status says what the server answered). */

struct rest_client;

/* Initialises libcurl; call once at program start, before threads. */
void rest_global_init(void);

/* Creates a client for base (e.g. "https://host:8443") trusting the CA
 * certificates in ca_file (NULL: the system's). Returns NULL when out of
 * memory. The caller owns it; not thread-safe. */
struct rest_client *rest_new(const char *base, const char *ca_file);

/* Frees the client (NULL is accepted). */
void rest_free(struct rest_client *c);

/* Sets the bearer token sent with every request (copied; NULL: none). */
int rest_set_token(struct rest_client *c, const char *token);

/* Accepts only servers whose certificate key is one of pins
 * ("sha256//BASE64;sha256//BASE64...", as libcurl pins; copied; NULL: any
 * the CA signed), on top of the CA check. Returns 0, or -1 when out of
 * memory. */
int rest_set_pins(struct rest_client *c, const char *pins);

/* Sends every request through the HTTP proxy at url (copied; NULL: the
 * environment's, as libcurl does), and resolves and connects over the
 * address family af only (AF_INET, AF_INET6; AF_UNSPEC: either). The
 * family applies to the proxy when there is one. Returns 0, or -1 when out
 * of memory. */
int rest_set_route(struct rest_client *c, const char *proxy, int af);

/* Makes every transfer of c end as soon as *flag is true (checked at
 * least once a second while it waits, from the thread that uses c), with
 * an error saying it was aborted; NULL: never. flag must outlive c. */
void rest_set_abort(struct rest_client *c, const atomic_bool *flag);

/* Sends method path (appended to base) with body (JSON, may be NULL) and
 * waits up to timeout seconds. Stores the HTTP status in *status and the
 * answer, parsed, in *answer (a new reference; NULL for an empty body; a
 * JSON string holding a successful text/... answer). Returns ERR_OK, or
 * an error with a message in errbuf. */
enum err rest_call(struct rest_client *c, const char *method, const char *path,
		   json_t *body, long timeout, long *status, json_t **answer,
		   char *errbuf, size_t errlen);

/* Sends body (len bytes of content_type) to path with method and waits
 * up to timeout seconds; the HTTP status goes to *status and the answer's
 * body to *answer (appended; at most max bytes, else ERR_PROTO). */
enum err rest_send(struct rest_client *c, const char *method, const char *path,
		   const char *body, size_t len, const char *content_type, long timeout,
		   size_t max, long *status, struct util_buf *answer, char *errbuf,
		   size_t errlen);

/* rest_send() with POST. */
enum err rest_post_text(struct rest_client *c, const char *path, const char *body,
			size_t len, const char *content_type, long timeout, size_t max,
			long *status, struct util_buf *answer, char *errbuf, size_t errlen);

/* Downloads where (a path on the server, sent with the token; or an
 * absolute http(s) URL of a mirror, sent without it) into fd, at most max
 * bytes, waiting up to timeout seconds. Stores the HTTP status in *status
 * and the Retry-After seconds of the answer (0: none) in *retry_after.
 * What fd receives is the answer's body whatever the status; the caller
 * keeps it only on 200. */
enum err rest_download(struct rest_client *c, const char *where, int fd, long long max,
		       long timeout, long *status, long *retry_after, char *errbuf,
		       size_t errlen);

#endif
