/* enroll.h -- enrollment tokens: what lets agents and smart protection
 * servers join this server. A token is a secret shown once, when made;
 * the store keeps its SHA-256, and the API names it by an id derived
 * from that hash. Each token places new agents in its domain (grouping
 * rules first).
 *
 * Handlers of the table in src/common/ops.c; they run on the HTTP loop's
 * thread like every handler (see api.h).
 */
#ifndef WARD_ENROLL_H
#define WARD_ENROLL_H

#include "server/api.h"

/* Makes an enrollment token for domain (a canonical path) valid until
 * expires, for the server at url whose CA certificate is ca (PEM).
 * Returns {"server", "ca", "token", "id", "domain", "expires"}: itself an
 * enrollment bundle (`ward-agent enroll --bundle` reads the first three),
 * owned by the caller; NULL with a message in errbuf. */
json_t *enroll_token_new(struct store *st, const char *url, const char *ca,
			 const char *domain, int64_t expires, char *errbuf, size_t errlen);

/* GET /api/v1/enroll/tokens: the tokens in force. */
void enroll_get_tokens(struct api_ctx *ctx, struct http_req *req, const char *who);

/* POST /api/v1/enroll/tokens {"domain"?, "days"?}: a new token (201). */
void enroll_post_token(struct api_ctx *ctx, struct http_req *req, const char *who);

/* POST /api/v1/enroll/tokens/revoke {"id"}: the token stops working. */
void enroll_post_revoke(struct api_ctx *ctx, struct http_req *req, const char *who);

#endif
