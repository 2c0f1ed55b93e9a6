/* licenses.h -- the licenses a server holds and what they allow
 * (docs/api.md, "Licenses"; the file format: docs/formats.md).
 *
 * License files (common/license.h) are kept in the database (server_kv,
 * "license:ID"), so that every wardd of a database and every backup holds
 * them. A file is trusted when an issuer of license.issuers signed it, or
 * when it is the evaluation license this server made at its first start
 * with a key of its own (whose secret half it forgot at once: no other
 * license can be made with it).
 *
 * What they allow, per service: while one covering it is active, all of
 * it; through the grace period after the last expired, everything but
 * switching clients to it (smart scan, real-time scanning); after that,
 * no pattern updates for it either. Protection never stops: scanning,
 * real-time scanning and smart protection queries go on.
 *
 * Reminders: at 60, 30 and 7 days before a service's coverage ends, at
 * its expiry and at the end of its grace period, an event in the log
 * (once, of all servers on the database) and the conditions alert rules
 * of kind "license" watch.
 *
 * Loop thread only, like every handler (api.h).
 */
#ifndef WARD_LICENSES_H
#define WARD_LICENSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/license.h"
#include "server/api.h"

struct licenses;

/* The licenses of ctx's server: loads them, makes the evaluation license
 * on a database that never had one, and starts the hourly look for
 * reminders on http's loop. NULL with msg on failure (the database). */
struct licenses *licenses_new(struct api_ctx *ctx, struct http_server *http, char *msg,
			      size_t len);

/* Frees ls (NULL is accepted). */
void licenses_free(struct licenses *ls);

/* Whether a license covering service is valid now: active, or in its
 * grace period (as the posture report asks); else false with why (len
 * bytes) saying what ended or is missing. */
bool licenses_valid(struct licenses *ls, enum license_service service, char *why,
		    size_t len);

/* Whether pattern updates of service may go out now: true while a license
 * covering it is active or in its grace period; else false with msg
 * saying why. */
bool licenses_updates(struct licenses *ls, enum license_service service, char *msg,
		      size_t len);

/* Whether clients may be switched to service now (an active license
 * covers it): SERR_OK, else SERR_LICENSE with msg saying why. */
enum serr licenses_switch(struct licenses *ls, enum license_service service, char *msg,
			  size_t len);

/* The service a client setting switches clients to when it is set to
 * value (scan_method "smart": smart-scan; realtime.enabled true:
 * realtime), or -1. */
int licenses_setting_service(const char *key, const json_t *value);

/* Each service's state now, as GET /api/v1/licenses lists them: a new
 * array of {service, state, seats, in_use, evaluation, updates, expires?,
 * updates_until?, starts?, days_left?}, or NULL when the clients cannot
 * be read. */
json_t *licenses_services(struct licenses *ls, int64_t now);

/* The same with n, the clients using each service as counted by the
 * caller (licenses_count() over every client): a walk of its own shares
 * it, with a cost that does not depend on when the last count was. */
json_t *licenses_services_counted(struct licenses *ls, int64_t now,
				  const int64_t n[LICENSE_NSERVICES]);

/* Adds to n what client c (a store_clients_each() row) uses, by what it
 * reports: every client the antivirus service, smart scan when it scans
 * so, real time when that runs; a client moved away nothing. Loop
 * thread. */
void licenses_count(const struct api_ctx *ctx, const json_t *c, int64_t now,
		    int64_t n[LICENSE_NSERVICES]);

/* The conditions of the license alert rules now, as alerts.c keeps them:
 * a new object {key: {"subject", "detail"}}. */
json_t *licenses_conditions(struct licenses *ls, int64_t now);

#endif
