/* deploy.h -- deploying agents: wardd serves the agent's Debian package
 * and an install script for an enrollment token's domain, and follows each
 * deployment from the first download of its script to the agent it
 * enrolled.
 *
 * An administrator asks for the command (`ward deploy script --domain /X`):
 * a new enrollment token for /X, in the URL of the script:
 *
 *   curl -fsS --cacert ca.crt https://SERVER:8443/deploy/TOKEN/install.sh | sudo sh
 *
 * Each download of the script starts a deployment with an id of its own,
 * written into the script, and a deadline (deploy.timeout). The script
 * downloads the package for its host's architecture
 * (/deploy/TOKEN/ward-agent.deb?arch=A&deployment=ID), checks it against
 * the SHA-256 the script carries, installs it, enrolls the agent with
 * the token (ward-agent enroll --deployment ID) and starts its unit; a
 * step that fails is reported (/deploy/TOKEN/report). A deployment is in
 * progress until the agent enrolls, a step fails, it is cancelled or its
 * deadline passes; `wardd upgrade --check` refuses while any is.
 *
 * The packages are the files ward-agent_*.deb in deploy.package_dir, read
 * with libarchive: the newest version of each architecture is served.
 *
 * Handlers of the operations in src/common/ops.def; they run on the HTTP
 * loop's thread like every handler (see api.h).
 */
#ifndef WARD_DEPLOY_H
#define WARD_DEPLOY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "server/api.h"

struct deploy;

/* The deployments' state: the package directory of cfg as last read, and
 * a timer on http's loop that ends deployments whose deadline passed.
 * NULL when out of memory. Used on http's loop thread only. */
struct deploy *deploy_new(const struct config *cfg, struct store *st, struct http_server *http);

/* Frees d (NULL is accepted); http's loop must not run afterwards, since
 * its timer still names d. */
void deploy_free(struct deploy *d);

/* The packages found in dir: {"dir", "packages": [{"file", "package",
 * "version", "arch", "platform"? (Ward-Platform), "restart" (Ward-Restart:
 * none, service, host), "size", "sha256", "served"}], "problems": [{"file",
 * "error"}]}, a new object; each file's reading is kept while its size and
 * time stay (the package directory is read again on each call). NULL when
 * out of memory. */
json_t *deploy_packages(struct deploy *d);

/* Reads the control file of the Debian package open at fd: its Package,
 * Version and Architecture fields, and the optional Ward-Platform and
 * Ward-Restart, into *out (a new object {"package", "version", "arch",
 * "restart", "platform"?}). Returns false with the reason in errbuf when fd is
 * no Debian binary package, or one whose fields are missing or malformed.
 * Reads at most what a control member may hold; thread-safe. */
bool deploy_read_control(int fd, json_t **out, char *errbuf, size_t errlen);

/* Whether text is a deployment id: 32 lowercase hex digits. */
bool deploy_id_valid(const char *text);

/* Records that deployment id (of the enrollment token whose SHA-256 is
 * token_hash) enrolled as client, from api_agent_enroll(). */
void deploy_enrolled(struct api_ctx *ctx, const unsigned char token_hash[32], const char *id,
		     int64_t client, const char *hostname);

/* The path of req as logs show it: an enrollment token in a /deploy/
 * path is replaced by its id. */
void deploy_redact(struct http_req *req);

/* POST /api/v1/deploy/script {"domain"?, "days"?, "max_uses"?}: a new
 * enrollment token and the command that installs agents with it. */
void deploy_post_script(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args);

/* GET /api/v1/deployments[?all=1]: deployments in progress (or recent). */
void deploy_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		const struct api_args *args);

/* POST /api/v1/deployments/cancel {"id"}: the deployment is no longer in
 * progress (its host may still finish: its enrollment is recorded). */
void deploy_post_cancel(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args);

/* GET /api/v1/deploy/packages: deploy_packages(). */
void deploy_get_packages(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args);

/* GET /deploy/{token}/install.sh: the install script of a new deployment
 * (who is the token's domain). */
void deploy_get_script(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args);

/* GET /deploy/{token}/ward-agent.deb?arch=A&deployment=ID: the package. */
void deploy_get_package(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args);

/* POST /deploy/{token}/report?deployment=ID&step=S with the failure's
 * text (at most 4 KiB kept): the deployment failed at step S. */
void deploy_post_report(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args);

#endif
