/* rollout.h -- agent upgrades from the server: the agent's packages of
 * each platform, rolled out a batch at a time (docs/protocol.md, "Agent
 * upgrades").
 *
 * The packages are the agent's Debian packages in deploy.package_dir
 * (deploy.h) that name the release they were built for (their control
 * field Ward-Platform, "debian-12"): an agent's platform is that release
 * and its architecture, as it reports them. A rollout (one at a time,
 * kept in server_kv so that every wardd of a database sees it) offers one
 * version to the online agents of a scope whose agent.upgrade is
 * "allow", at most its batch at once: each offer is a task of kind
 * agent_upgrade (api_tasks.h) carrying the package's description signed
 * with the package signing key, which the agent checks before it
 * installs anything. An agent reports the task completed once the new
 * version runs and reached the server, or failed with the reason (its
 * previous version came back). max_failures failures pause the rollout.
 *
 * Agents on a platform no package serves, agents whose agent.upgrade is
 * "prevent", agents installed from source, and agents older than this
 * server accepts (UPGRADE_MIN_AGENT, upgrade.h) are listed for the administrator;
 * none of them is offered anything, and all are managed as before.
 *
 * Loop thread only, like every handler (api.h).
 */
#ifndef WARD_ROLLOUT_H
#define WARD_ROLLOUT_H

#include "server/api.h"

struct rollout;

/* The rollouts of ctx's server: a timer on http's loop that hands out the
 * running rollout's offers. NULL when out of memory. */
struct rollout *rollout_new(struct api_ctx *ctx, struct http_server *http);

/* Frees r (NULL is accepted). */
void rollout_free(struct rollout *r);

/* Answers an agent's download of file (its package, by the name an offer
 * gave it) as updates_download() does, under the same caps, and returns
 * true; false when file is no agent package here. */
bool rollout_download(struct rollout *r, struct http_req *req, const char *who,
		      const char *file);

#endif
