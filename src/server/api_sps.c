/* api_sps.c -- smart protection: the source lists, the enrolled servers'
 * heartbeats and list, and an agent's sources. */
#include "server/api.h"

#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "server/api_clients.h"
#include "server/api_settings.h"
#include "server/sources.h"

/* A smart protection server's status: what its /sps/v1/status says. */
void api_sps_heartbeat(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	json_t *body = api_body_object(req);
	char msg[256], *status;

	(void)args;
	if (!body)
		return;
	status = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!status || store_sps_seen(ctx->st, strtoll(who + 4, NULL, 10), status,
				      (int64_t)time(NULL), msg, sizeof(msg)) != SERR_OK)
		http_respond_error(req, 500, "heartbeat: database failed");
	else
		http_respond_json(req, 200, json_pack("{sI}", "heartbeat_interval",
						      (json_int_t)ctx->cfg->heartbeat_interval));
	free(status);
	json_decref(body);
}

/* The enrolled smart protection servers, each online when it reported
 * within three heartbeat intervals. */
void api_sps_servers(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	int64_t now = (int64_t)time(NULL);
	json_t *list = NULL, *e;
	size_t i;

	(void)args;
	(void)who;
	if (store_sps_list(ctx->st, &list) != SERR_OK) {
		http_respond_error(req, 500, "sps servers: database failed");
		return;
	}
	json_array_foreach(list, i, e)
		json_object_set_new(e, "state", json_string(
			now - json_integer_value(json_object_get(e, "last_seen")) <=
			3 * ctx->cfg->heartbeat_interval ? "online" : "offline"));
	http_respond_json(req, 200, json_pack("{so}", "servers", list));
}

/* Counts, per list, the agents that reach the network over one family only
 * and can reach none of the list's sources by it. */
struct reach {
	const json_t *lists;
	size_t *v4_only, *v6_only;  /* per list */
};

static int count_unreachable(json_t *c, void *arg)
{
	struct reach *r = arg;
	json_t *status = json_object_get(c, "status"), *addresses = json_array();
	const char *networks = json_string_value(json_object_get(status, "networks"));
	const json_t *list;
	size_t i;

	if (!addresses)
		return 1;
	api_clients_addresses(c, addresses);
	list = sources_match(r->lists, addresses);
	json_decref(addresses);
	if (!list || !networks)
		return 0;
	i = (size_t)json_array_size(r->lists);
	while (i-- > 0 && json_array_get(r->lists, i) != list)
		;
	if (strcmp(networks, "ipv4") == 0 && !sources_sps_reachable(list, AF_INET))
		r->v4_only[i]++;
	if (strcmp(networks, "ipv6") == 0 && !sources_sps_reachable(list, AF_INET6))
		r->v6_only[i]++;
	return 0;
}

/* Warnings for the lists some agents cannot use (a new list of strings),
 * each also logged when log is set. */
static json_t *sps_warnings(struct api_ctx *ctx, bool log)
{
	size_t n = json_array_size(ctx->sps_lists), i, k;
	struct reach r = { ctx->sps_lists, calloc(n + 1, sizeof(size_t)),
			   calloc(n + 1, sizeof(size_t)) };
	json_t *out = json_array();
	char text[512];

	if (out && r.v4_only && r.v6_only)
		store_clients_each(ctx->st, 0, count_unreachable, &r);
	for (i = 0; out && r.v4_only && r.v6_only && i < n; i++)
		for (k = 0; k < 2; k++) {
			size_t count = k ? r.v6_only[i] : r.v4_only[i];

			if (!count)
				continue;
			snprintf(text, sizeof(text), "smart protection list %zu (%s): %zu agent%s "
				 "reach%s the network over %s only and can reach none of its "
				 "sources%s", i + 1, json_string_value(json_object_get(
				 json_array_get(ctx->sps_lists, i), "range")), count,
				 count == 1 ? "" : "s", count == 1 ? "es" : "",
				 k ? "IPv6" : "IPv4",
				 json_object_get(json_array_get(ctx->sps_lists, i), "proxy") ?
				 " (its proxy)" : "");
			json_array_append_new(out, json_string(text));
			if (log)
				log_msg(LOG_LVL_WARN, "%s", text);
		}
	free(r.v4_only);
	free(r.v6_only);
	return out;
}

void api_sps_lists_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	(void)who;
	(void)args;
	http_respond_json(req, 200, json_pack("{sO so}", "lists", ctx->sps_lists, "warnings",
					      sps_warnings(ctx, false)));
}

void api_sps_lists_set(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_settings_replace(ctx, who, api_arg_json(args, "lists"), "lists",
						  "sps_lists", "smart protection source lists",
						  sources_sps_validate, &out, msg, sizeof(msg)),
		   &out, msg);
	json_decref(sps_warnings(ctx, true));
}

/* The smart protection sources of the agent: the first list holding an
 * address it connects from or reported; the integrated server when none
 * does. With them what it may trust: certificates of the smart protection
 * CA (wardd's own for the integrated server), and of those only the keys
 * pinned here: wardd's and the enabled servers'. */
void api_sps_agent_sources(struct api_ctx *ctx, struct http_req *req, const char *who,
			   const struct api_args *args)
{
	json_t *addresses = json_pack("[s]", http_req_peer(req)), *pins = NULL, *out, *p;
	const json_t *list;
	size_t i = 0;

	(void)args;
	if (!addresses || store_sps_pins(ctx->st, &pins) != SERR_OK) {
		json_decref(addresses);
		http_respond_error(req, 500, "sps sources: database failed");
		return;
	}
	store_clients_each(ctx->st, strtoll(who, NULL, 10), api_clients_addresses, addresses);
	list = sources_match(ctx->sps_lists, addresses);
	json_decref(addresses);
	while (list && json_array_get(ctx->sps_lists, i) != list)
		i++;
	if (list)
		out = json_pack("{sI sO sO sO*}", "list", (json_int_t)i + 1, "range",
				json_object_get(list, "range"), "sources",
				json_object_get(list, "sources"), "proxy",
				json_object_get(list, "proxy"));
	else
		out = json_pack("{sn sn s[s] sn}", "list", "range", "sources", SOURCES_INTEGRATED,
				"proxy");
	json_array_foreach(pins, i, p)
		json_array_set(pins, i, json_object_get(p, "pin"));
	json_array_append_new(pins, json_string(ctx->server_pin));
	if (out) {
		json_object_set_new(out, "ca", json_string(ctx->sps_ca_pem));
		json_object_set_new(out, "pins", pins);
	} else {
		json_decref(pins);
	}
	http_respond_json(req, 200, out);
}
