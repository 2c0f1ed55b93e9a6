/* posture.h -- the posture report for network access control (docs/api.md,
 * "Posture"; the trust model of its tokens: docs/protocol.md).
 *
 * Each client is compliant or not under the posture policy in effect for
 * it, the client settings posture.* (inherited down the tree like every
 * setting), each check with the reason it failed:
 *
 *   component   the pattern its scan method uses (the Virus Pattern, or for
 *               smart scan the Smart Scan Agent Pattern) is out of date for
 *               no longer than posture.component_max_age_hours: a newer
 *               version has been on the server for at most that long;
 *   realtime    real-time protection is on (posture.realtime_required);
 *   full_scan   a full scan completed within posture.full_scan_max_age_days;
 *   license     a valid license (active, or in its grace period) covers each
 *               service the client uses (posture.license_required);
 *   threats     no detection left unresolved (posture.threats_resolved);
 *   report      the client has reported its status at all.
 *
 * A policy server asks for one host (by name, address, MAC address or
 * uuid) with a posture token: made by an administrator, good for that
 * route alone, kept hashed like enrollment tokens.
 *
 * Loop thread only, like every handler (api.h).
 */
#ifndef WARD_POSTURE_H
#define WARD_POSTURE_H

#include <stdint.h>

#include <jansson.h>

struct api_ctx;
struct posture;

/* What the posture routes keep: the index of the hosts a policy server
 * asks for (by name, address, MAC address, uuid), built from one read of
 * the clients at most every 5 s, or every second while questions miss.
 * NULL when out of memory. Loop thread only. */
struct posture *posture_new(struct api_ctx *ctx);

/* Frees p (NULL is accepted). */
void posture_free(struct posture *p);

/* When a client holding version have of component comp became out of
 * date, from the server's versions (store_package_versions()): the time
 * the first newer version was made; 0 when it is not out of date. */
int64_t posture_outdated_since(const json_t *versions, const char *comp, int64_t have);

/* The pattern a client of scan method method ("smart", "conventional";
 * NULL: conventional) scans with. Static storage. */
const char *posture_pattern(const char *method);

#endif
