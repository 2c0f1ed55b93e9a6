/* api_settings.c -- settings on the tree, their delivery queue, the grouping
 * rules and the update source table. */
#include "server/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/settings.h"
#include "server/api_settings.h"
#include "server/grouping.h"
#include "server/licenses.h"
#include "server/sources.h"

enum serr api_settings_read(struct api_ctx *ctx, const char *scope, json_t **out,
			    char *msg, size_t len)
{
	json_t *own = NULL, *eff = NULL, *origin = NULL;
	enum serr err;
	int64_t node;

	err = api_scope(ctx, scope, &node, msg, len);
	if (err == SERR_OK)
		err = store_settings_get(ctx->st, node, &own, &eff, msg, len);
	if (err == SERR_OK && store_settings_origin(ctx->st, node, &origin) != SERR_OK) {
		json_decref(own);
		json_decref(eff);
		snprintf(msg, len, "database: where the settings come from is unreadable");
		err = SERR_DB;
	}
	if (err == SERR_OK)
		*out = json_pack("{so so so}", "own", own, "effective", eff, "origin", origin);
	return err;
}

void api_settings_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	(void)who;
	api_answer(req, 200, api_settings_read(ctx, api_arg_string(args, "scope"), &out, msg,
					       sizeof(msg)), &out, msg);
}

void api_settings_keys(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	static const char *const types[] = { "bool", "enum", "schedule", "int", "paths" };
	const struct settings_def *defs;
	json_t *list = json_array(), *e, *levels, *choices;
	size_t n, i, c;

	(void)args;
	(void)ctx;
	(void)who;
	defs = settings_table(&n);
	for (i = 0; list && i < n; i++) {
		levels = json_array();
		if (defs[i].levels & SETTINGS_AT_ROOT)
			json_array_append_new(levels, json_string("root"));
		if (defs[i].levels & SETTINGS_AT_DOMAIN)
			json_array_append_new(levels, json_string("domain"));
		if (defs[i].levels & SETTINGS_AT_CLIENT)
			json_array_append_new(levels, json_string("client"));
		e = json_pack("{ss ss so so ss}", "key", defs[i].key, "type", types[defs[i].type],
			      "levels", levels, "default",
			      json_loads(defs[i].default_json, JSON_DECODE_ANY, NULL),
			      "summary", defs[i].summary);
		if (e && defs[i].type == SETTINGS_ENUM) {
			choices = json_array();
			for (c = 0; defs[i].choices[c]; c++)
				json_array_append_new(choices, json_string(defs[i].choices[c]));
			json_object_set_new(e, "choices", choices);
		}
		if (e && defs[i].type == SETTINGS_INT) {
			json_object_set_new(e, "min", json_integer(defs[i].min));
			json_object_set_new(e, "max", json_integer(defs[i].max));
		}
		json_array_append_new(list, e);
	}
	http_respond_json(req, 200, json_pack("{so}", "settings", list));
}

/* Refuses (SERR_LICENSE, msg saying why) a change of key at node that
 * switches clients to what no active license covers (smart scan, real-time
 * scanning): value placed there (all: overriding what is below too), or,
 * value NULL, the node's own removed so that it takes what is above. */
static enum serr refuse_unlicensed(struct api_ctx *ctx, int64_t node, const char *key,
				   const json_t *value, bool all, char *msg, size_t len)
{
	json_t *eff = NULL, *above = NULL;
	enum serr err = store_settings_get(ctx->st, node, NULL, &eff, msg, len);
	int service;

	if (err == SERR_OK && !value && (err = store_settings_inherited(ctx->st, node, &above,
									 msg, len)) == SERR_OK)
		value = json_object_get(above, key);
	if (err == SERR_OK && value && (all || !json_equal(json_object_get(eff, key), value)) &&
	    (service = licenses_setting_service(key, value)) >= 0)
		err = licenses_switch(ctx->licenses, service, msg, len);
	json_decref(eff);
	json_decref(above);
	return err;
}

enum serr api_settings_place(struct api_ctx *ctx, const char *who, const char *scope,
			     const char *key, json_t *value, const char *apply,
			     json_t **out, char *msg, size_t len)
{
	enum serr err;
	size_t changed = 0;
	int64_t node;

	if (!apply)
		apply = "inherit";
	if (strcmp(apply, "all") != 0 && strcmp(apply, "inherit") != 0) {
		snprintf(msg, len, "apply: expected \"all\" or \"inherit\"");
		return SERR_INVAL;
	}
	err = api_scope(ctx, scope, &node, msg, len);
	if (err == SERR_OK)
		err = api_refuse_moved(ctx, node, msg, len);
	if (err == SERR_OK)
		err = refuse_unlicensed(ctx, node, key, value, strcmp(apply, "all") == 0, msg,
					len);
	if (err == SERR_OK)
		err = store_setting_set(ctx->st, node, key, value, strcmp(apply, "all") == 0 ?
					STORE_APPLY_ALL : STORE_APPLY_INHERIT, &changed, msg,
					len);
	if (err != SERR_OK)
		return err;
	store_eventf(ctx->st, "system", 0, "%s set %s on %s (%s): %zu clients changed", who, key,
		     scope, apply, changed);
	if (changed)
		notify_kick(ctx->notify);
	*out = json_pack("{sI}", "changed", (json_int_t)changed);
	return SERR_OK;
}

void api_settings_set(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_settings_place(ctx, who, api_arg_string(args, "scope"),
						api_arg_string(args, "key"),
						api_arg_json(args, "value"),
						api_arg_string(args, "apply"), &out, msg,
						sizeof(msg)), &out, msg);
}


enum serr api_settings_remove(struct api_ctx *ctx, const char *who, const char *scope,
			      const char *key, json_t **out, char *msg, size_t len)
{
	enum serr err;
	size_t changed = 0;
	int64_t node;

	err = api_scope(ctx, scope, &node, msg, len);
	if (err == SERR_OK)
		err = api_refuse_moved(ctx, node, msg, len);
	if (err == SERR_OK)
		err = refuse_unlicensed(ctx, node, key, NULL, false, msg, len);
	if (err == SERR_OK)
		err = store_setting_unset(ctx->st, node, key, &changed, msg, len);
	if (err != SERR_OK)
		return err;
	store_eventf(ctx->st, "system", 0, "%s removed %s from %s (it inherits): %zu clients "
		     "changed", who, key, scope, changed);
	if (changed)
		notify_kick(ctx->notify);
	*out = json_pack("{sI}", "changed", (json_int_t)changed);
	return SERR_OK;
}

void api_settings_unset(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_settings_remove(ctx, who, api_arg_string(args, "scope"),
						 api_arg_string(args, "key"), &out, msg,
						 sizeof(msg)), &out, msg);
}

void api_settings_queue(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *list = NULL;

	(void)args;
	(void)who;
	if (store_deliveries_json(ctx->st, &list) != SERR_OK) {
		http_respond_error(req, 500, "database: reading the queue failed");
		return;
	}
	http_respond_json(req, 200, json_pack("{so sI sb}", "queue", list, "in_flight",
					      (json_int_t)notify_in_flight(ctx->notify), "paused",
					      notify_paused(ctx->notify)));
}

/* Holds or lets go the deliveries, logged as who did it. */
static void pause_deliveries(struct api_ctx *ctx, struct http_req *req, const char *who,
			     bool paused)
{
	char msg[256];

	if (notify_pause(ctx->notify, paused, msg, sizeof(msg)) != SERR_OK) {
		http_respond_error(req, 500, "%s", msg);
		return;
	}
	store_eventf(ctx->st, "system", 0, "deliveries of settings %s by %s", paused ?
		     "paused" : "resumed", who);
	http_respond_json(req, 200, json_pack("{sb}", "paused", paused));
}

void api_settings_pause(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	(void)args;
	pause_deliveries(ctx, req, who, true);
}

void api_settings_resume(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	(void)args;
	pause_deliveries(ctx, req, who, false);
}

enum serr api_settings_cancel_queue(struct api_ctx *ctx, const char *who, int64_t client,
				    json_t **out, char *msg, size_t len)
{
	int64_t n = 0;

	if (client != -1 && client <= STORE_ROOT) {
		snprintf(msg, len, "client: '%lld' is not a client id", (long long)client);
		return SERR_INVAL;
	}
	if (store_deliveries_cancel(ctx->st, client, &n) != SERR_OK) {
		snprintf(msg, len, "database: cancelling failed");
		return SERR_DB;
	}
	store_eventf(ctx->st, "delivery", 0, "%s cancelled %lld queued deliveries", who,
		     (long long)n);
	*out = json_pack("{sI}", "cancelled", (json_int_t)n);
	return SERR_OK;
}

void api_settings_cancel(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	json_t *out = NULL;
	int64_t id = -1;
	char msg[256];

	api_arg_int(args, "client", &id);
	api_answer(req, 200, api_settings_cancel_queue(ctx, who, id, &out, msg, sizeof(msg)),
		   &out, msg);
}

void api_settings_grouping_get(struct api_ctx *ctx, struct http_req *req, const char *who,
			       const struct api_args *args)
{
	(void)who;
	(void)args;
	http_respond_json(req, 200, json_pack("{sO}", "rules", ctx->rules));
}

enum serr api_settings_replace(struct api_ctx *ctx, const char *who, json_t *list,
			       const char *member, const char *key, const char *what,
			       bool (*validate)(const json_t *list, char *errbuf,
			       size_t errlen),
			       json_t **out, char *msg, size_t len)
{
	enum serr err = SERR_OK;
	char *text = NULL;

	if (!validate(list, msg, len))
		return SERR_INVAL;
	if (!(text = json_dumps(list, JSON_COMPACT)) ||
	    store_kv_put(ctx->st, key, text, msg, len) != SERR_OK || !api_load_rules(ctx)) {
		snprintf(msg, len, "%s: saving failed", member);
		err = SERR_DB;
	}
	free(text);
	if (err != SERR_OK)
		return err;
	store_eventf(ctx->st, "system", 0, "%s replaced the %s (%zu entries)", who, what,
		     json_array_size(list));
	*out = json_pack("{sO}", member, list);
	return SERR_OK;
}

void api_settings_grouping_set(struct api_ctx *ctx, struct http_req *req, const char *who,
			       const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_settings_replace(ctx, who, api_arg_json(args, "rules"), "rules",
						  "grouping_rules", "grouping rules",
						  grouping_validate, &out, msg, sizeof(msg)),
		   &out, msg);
}

void api_settings_sources_get(struct api_ctx *ctx, struct http_req *req, const char *who,
			      const struct api_args *args)
{
	(void)who;
	(void)args;
	http_respond_json(req, 200, json_pack("{sO}", "sources", ctx->sources));
}

void api_settings_sources_set(struct api_ctx *ctx, struct http_req *req, const char *who,
			      const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_settings_replace(ctx, who, api_arg_json(args, "sources"),
						  "sources", "update_sources",
						  "update source table", sources_validate, &out,
						  msg, sizeof(msg)), &out, msg);
}
