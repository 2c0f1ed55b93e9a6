/* admins.h -- administrators: signing in, their roles, passwords and
 * sessions.
 *
 * Two roles: "admin" may call every administration operation;
 * "read-only" may call those of OPS_AUTH_READ (what the console reads,
 * signing out, changing its own password) and nothing that changes
 * anything else. A session names its administrator, whose role is looked
 * up on every request: a removed administrator's sessions end with them,
 * a demoted one's lose their rights at once. Passwords are hashed and
 * verified off the loop (signin.h). Every change is a system event.
 *
 * Handlers of the operations in src/common/ops.def; they run on the HTTP loop's
 * thread like every handler (see api.h).
 */
#ifndef WARD_ADMINS_H
#define WARD_ADMINS_H

#include "common/ops.h"
#include "server/api.h"

/* The administrator made on first start, whose password is in DATA_DIR's
 * initial password file until it is changed. */
#define ADMINS_FIRST "admin"

/* Checks req's session (a bearer token, or the console's cookie with its
 * CSRF token when not a GET) for an operation of auth (OPS_AUTH_ADMIN or
 * OPS_AUTH_READ) and names the administrator in who. Returns 0, 401 (no
 * valid session, or its administrator removed) or 403 (a read-only
 * administrator asking to change something). */
unsigned admins_authorize(struct api_ctx *ctx, struct http_req *req, enum ops_auth auth,
			  char *who, size_t len);

/* POST /api/v1/login {"user", "password", "cookie"?}: a session, answered
 * once the password is verified. */
void admins_post_login(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args);

/* POST /api/v1/admins/passwd {"password", "new_password", "user"?}: changes
 * the caller's password, or (an administrator) another's; the caller's
 * current password is verified either way. */
void admins_post_passwd(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args);

/* GET /api/v1/admins: the administrators and their roles. */
void admins_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		const struct api_args *args);

/* POST /api/v1/admins {"name", "new_password", "role"?}: a new
 * administrator (201). */
void admins_post(struct api_ctx *ctx, struct http_req *req, const char *who,
		 const struct api_args *args);

/* DELETE /api/v1/admins?name=NAME: removes an administrator; their sessions
 * end. The last one of role "admin" stays. */
void admins_delete(struct api_ctx *ctx, struct http_req *req, const char *who,
		   const struct api_args *args);

/* PUT /api/v1/admins/role {"name", "role"}: sets an administrator's role. */
void admins_put_role(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args);

#endif
