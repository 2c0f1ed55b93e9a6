/* session.h -- what administrators' sessions need beyond the token table:
 * the console's cookie and its CSRF token.
 *
 * The console signs in with POST /api/v1/login {"cookie": true}: the
 * session token then travels only in an HttpOnly, Secure, SameSite=Strict
 * cookie, and every request that changes something must also carry the
 * session's CSRF token (derived from the session token, one-way) in the
 * X-Ward-CSRF header. The command line keeps using bearer tokens, which no
 * browser sends by itself and so need no CSRF token.
 *
 * Wrong passwords are counted per source address (an IPv6 address by its
 * /64) in the database, by every server on it together (store_guard_*()):
 * from the STORE_GUARD_FREE-th on, the address must wait before the next
 * try, 30 seconds doubling up to 15 minutes; a successful sign-in clears
 * it. Thread-safe: no state.
 */
#ifndef WARD_SESSION_H
#define WARD_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "common/http.h"

/* The cookie's name: __Host- makes browsers insist on Secure, Path=/ and
 * no Domain. */
#define SESSION_COOKIE "__Host-ward_session"

/* The header that carries the CSRF token. */
#define SESSION_CSRF_HEADER "X-Ward-CSRF"

/* The header the console puts on the requests it makes by itself (a page
 * refreshing): they do not count as use of the session, which therefore
 * ends after server.session_idle without the administrator's own. */
#define SESSION_BACKGROUND_HEADER "X-Ward-Background"

/* The caller's session token: from the Authorization header (a bearer
 * token), or else from the console's cookie (*cookie tells which). Returns
 * true with its 64 characters and a NUL in token. */
bool session_token(const struct http_req *req, char token[65], bool *cookie);

/* Finds the session token in the request's Cookie header. Returns true
 * with its 64 hex digits and a NUL in token. */
bool session_cookie(const struct http_req *req, char token[65]);

/* session_cookie() of a Cookie header's value (NULL: none); untrusted
 * input, strictly parsed: the cookie's value must be 64 lowercase hex
 * digits. */
bool session_cookie_parse(const char *header, char token[65]);

/* Derives the CSRF token of a session token into out (64 hex digits). */
void session_csrf(const char *token, char out[65]);

/* Sets (token not NULL, for max_age seconds) or clears the session cookie
 * on req's answer. */
void session_set_cookie(struct http_req *req, const char *token, int64_t max_age);

#endif
