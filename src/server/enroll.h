/* enroll.h -- enrollment: the tokens that let agents and smart protection
 * servers join this server, the smart protection servers' own enrollment
 * and their states, and the brakes every enrollment passes.
 *
 * A token is a secret shown once, when made; the store keeps its SHA-256,
 * and the API names it by an id derived from that hash. An agent's token
 * places new agents in its domain or below (grouping rules within it); a
 * smart protection server's token is made by an administrator for one
 * server and is good for one enrollment. The certificate a smart
 * protection server gets comes from the smart protection CA and never
 * carries a name of wardd's, so it cannot stand for wardd.
 *
 * Handlers of the operations in src/common/ops.def; they run on the HTTP loop's
 * thread like every handler (see api.h).
 */
#ifndef WARD_ENROLL_H
#define WARD_ENROLL_H

#include <stdbool.h>

#include "server/api.h"

/* Makes a token of kind (STORE_TOKEN_ENROLL: subject is the canonical
 * domain path; STORE_TOKEN_SPS_ENROLL: the administrator who makes it)
 * valid until expires and good for max_uses enrollments (0: no cap), for
 * the server at url whose CA certificate is ca (PEM). Returns {"server",
 * "ca", "token", "id", "kind", "expires", "max_uses"[, "domain"]}: itself
 * an enrollment bundle (`ward-agent enroll --bundle` and `ward-sps enroll
 * --bundle` read the first three), owned by the caller; NULL with a
 * message in errbuf. */
json_t *enroll_token_new(struct store *st, const char *url, const char *ca, const char *subject,
			 int64_t expires, enum store_token kind, int64_t max_uses, char *errbuf,
			 size_t errlen);

/* GET /api/v1/enroll/tokens: the tokens in force, of both kinds. */
void enroll_get_tokens(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args);

/* A new agent enrollment token from args {"domain"?, "days"?,
 * "max_uses"?} made by who, logged; as enroll_token_new() returns it (the
 * caller owns it). NULL once req is answered with why not. */
json_t *enroll_new_agent_token(struct api_ctx *ctx, struct http_req *req, const char *who,
				const struct api_args *args);

/* POST /api/v1/enroll/tokens {"domain"?, "days"?, "max_uses"?}: a new
 * agent enrollment token (201). */
void enroll_post_token(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args);

/* POST /api/v1/sps/tokens {"days"?}: a token for one smart protection
 * server (201). */
void enroll_post_sps_token(struct api_ctx *ctx, struct http_req *req, const char *who,
			   const struct api_args *args);

/* POST /api/v1/enroll/tokens/revoke {"id"}: the token stops working. */
void enroll_post_revoke(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args);

/* POST /api/v1/sps/enroll with a smart protection server's token. */
void enroll_post_sps(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args);

/* POST /api/v1/sps-servers/{disable,enable,revoke} {"id"}: agents trust
 * only enabled servers; a revoked one's credential stops working too. */
void enroll_post_sps_disable(struct api_ctx *ctx, struct http_req *req, const char *who,
			     const struct api_args *args);
void enroll_post_sps_enable(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args);
void enroll_post_sps_revoke(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args);

/* The brakes on enrollment: enroll.per_token for the token the request
 * presented (ctx->caller_token), enroll.per_address for its peer. Returns
 * true when it may go on, else false after answering 429 with Retry-After
 * (logged once per offender and interval). */
bool enroll_admit(struct api_ctx *ctx, struct http_req *req);

/* Returns whether name is an acceptable host name to record: 1 to 253
 * letters, digits, dots, dashes and underscores (nothing that could
 * forge a log line or move a terminal's cursor). */
bool enroll_valid_host(const char *name);

#endif
