/* alerts.h -- telling administrators what needs them: rules that raise
 * alerts, and channels (channels.h: email, syslog, webhook) that carry
 * them, configured through the API, the command line and the console.
 *
 * A rule has a kind, a scope (a domain path: it and below; "/" for all),
 * parameters, the channels it sends by and a rate limit (every: at most
 * one message per that many seconds; what it raises in between waits and
 * goes out together). Kinds:
 *
 *   detection  each detection an agent in scope reports
 *   outbreak   params.detections detections (default 10) within
 *              params.minutes (60) by at least params.clients agents (1)
 *              in scope; told once until the count falls below again
 *   outdated   agents in scope whose component in use has lacked a newer
 *              version for more than params.hours (24)
 *   sps        enrolled smart protection servers that stopped reporting,
 *              and agents in scope whose smart protection sources do not
 *              answer
 *   realtime   agents in scope whose real-time protection is unavailable
 *   import     a signature import that failed
 *   backup     a backup wardd made that failed, or none newer than
 *              params.hours (26) while backup.schedule is set
 *   license    a service's licenses end within 60, 30 or 7 days, have
 *              expired (grace period) or stopped its updates; more
 *              clients use a service than its seats, or use it unlicensed
 *
 * Conditions (outbreak, outdated, sps, realtime, backup, license) are looked at
 * every alerts.check_interval and told once each while they hold; events (detection,
 * import, a failed backup) each time. What a rule raises is stored before
 * it is sent (alert_items), and every message until it is sent or given
 * up after 4 attempts (alert_messages): a restart loses none. Each message
 * is logged (the event log, and GET /api/v1/alerts/log).
 *
 * Handlers of the operations in src/common/ops.def run on the HTTP loop's
 * thread like every handler (see api.h); messages are sent by a thread of
 * the alerts' own.
 */
#ifndef WARD_ALERTS_H
#define WARD_ALERTS_H

#include <stdint.h>

#include <jansson.h>

#include "server/api.h"

struct alerts;

/* The alerts of ctx's server: a timer on http's loop and the sender
 * thread. NULL when out of memory or the thread cannot start. Used on the
 * loop's thread only; free with alerts_free() before the store. */
struct alerts *alerts_new(struct api_ctx *ctx, struct http_server *http);

/* Stops the sender thread (a message being sent ends within its
 * deadline, and is sent again at the next start when it did not finish)
 * and frees al (NULL is accepted). */
void alerts_free(struct alerts *al);

/* Client's report of detections (objects as the event log keeps them),
 * logged already: raises the detection rules and looks at the outbreak
 * rules whose scope holds the client. */
void alerts_detections(struct alerts *al, int64_t client, const json_t *detections,
		       char *const *messages);

/* The operations (ops.def). */
void alerts_get_channels(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args);
void alerts_put_channel(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args);
void alerts_delete_channel(struct api_ctx *ctx, struct http_req *req, const char *who,
			   const struct api_args *args);
void alerts_post_test(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args);
void alerts_get_rules(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args);
void alerts_put_rule(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args);
void alerts_delete_rule(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args);
void alerts_get_log(struct api_ctx *ctx, struct http_req *req, const char *who,
		    const struct api_args *args);

#endif
