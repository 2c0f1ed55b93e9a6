/* api_tree.c -- the client tree's domains, and its export and import. */
#include "server/api_tree.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/settings.h"
#include "server/api_clients.h"
#include "server/grouping.h"
#include "server/licenses.h"

void api_tree_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		  const struct api_args *args)
{
	json_t *tree = NULL;
	char msg[256];

	(void)args;
	(void)who;
	if (store_tree(ctx->st, &tree, msg, sizeof(msg)) != SERR_OK) {
		http_respond_error(req, 500, "%s", msg);
		return;
	}
	http_respond_json(req, 200, tree);
}

enum serr api_tree_make(struct api_ctx *ctx, const char *who, const char *path,
			json_t **out, char *msg, size_t len)
{
	enum serr err;
	int64_t id;

	err = store_domain_lookup(ctx->st, path, 1, &id, msg, len);
	if (err != SERR_OK)
		return err;
	store_eventf(ctx->st, "system", 0, "%s created domain %s", who, path);
	*out = json_pack("{sI ss}", "id", (json_int_t)id, "path", path);
	return SERR_OK;
}

void api_tree_domain_create(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 201, api_tree_make(ctx, who, api_arg_string(args, "path"), &out, msg,
					   sizeof(msg)), &out, msg);
}

enum serr api_tree_rename(struct api_ctx *ctx, const char *who, const char *path,
			  const char *name, json_t **out, char *msg, size_t len)
{
	enum serr err;
	int64_t id;

	err = store_domain_lookup(ctx->st, path, 0, &id, msg, len);
	if (err == SERR_OK)
		err = store_domain_rename(ctx->st, id, name, msg, len);
	if (err != SERR_OK)
		return err;
	store_eventf(ctx->st, "system", 0, "%s renamed domain %s to %s", who, path, name);
	*out = json_pack("{sI ss}", "id", (json_int_t)id, "name", name);
	return SERR_OK;
}

void api_tree_domain_rename(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_tree_rename(ctx, who, api_arg_string(args, "path"),
					     api_arg_string(args, "name"), &out, msg,
					     sizeof(msg)), &out, msg);
}

enum serr api_tree_move(struct api_ctx *ctx, const char *who, const char *path,
			const char *to, json_t **out, char *msg, size_t len)
{
	enum serr err;
	int64_t id, parent;

	err = store_domain_lookup(ctx->st, path, 0, &id, msg, len);
	if (err == SERR_OK)
		err = store_domain_lookup(ctx->st, to, 0, &parent, msg, len);
	if (err == SERR_OK)
		err = api_clients_move_licensed(ctx, id, parent, msg, len);
	if (err == SERR_OK)
		err = store_domain_move(ctx->st, id, parent, msg, len);
	if (err != SERR_OK)
		return err;
	store_eventf(ctx->st, "system", 0, "%s moved domain %s under %s", who, path, to);
	notify_kick(ctx->notify);
	*out = json_pack("{sI}", "id", (json_int_t)id);
	return SERR_OK;
}

void api_tree_domain_move(struct api_ctx *ctx, struct http_req *req, const char *who,
			  const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_tree_move(ctx, who, api_arg_string(args, "path"),
					   api_arg_string(args, "to"), &out, msg, sizeof(msg)),
		   &out, msg);
}

enum serr api_tree_delete(struct api_ctx *ctx, const char *who, const char *path,
			  json_t **out, char *msg, size_t len)
{
	enum serr err;
	int64_t id;

	err = store_domain_lookup(ctx->st, path, 0, &id, msg, len);
	if (err == SERR_OK)
		err = store_domain_delete(ctx->st, id, msg, len);
	if (err != SERR_OK)
		return err;
	store_eventf(ctx->st, "system", 0, "%s deleted domain %s", who, path);
	*out = json_pack("{sI}", "deleted", (json_int_t)id);
	return SERR_OK;
}

void api_tree_domain_delete(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_tree_delete(ctx, who, api_arg_string(args, "path"), &out, msg,
					     sizeof(msg)), &out, msg);
}

void api_tree_export(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	json_t *domains = NULL;

	(void)args;
	(void)who;
	if (store_export(ctx->st, &domains) != SERR_OK) {
		http_respond_error(req, 500, "export: reading the tree failed");
		return;
	}
	http_respond_json(req, 200, json_pack("{si so sO}", "format", 1, "domains", domains,
					      "grouping", ctx->rules));
}

/* Makes one node's own settings those of an export entry. */
static enum serr import_node(struct api_ctx *ctx, int64_t node, json_t *want,
			     char *msg, size_t len)
{
	json_t *own = NULL, *above = NULL, *v;
	enum serr err = store_settings_get(ctx->st, node, &own, NULL, msg, len);
	const char *key;
	int service;

	/* A node whose import would switch its clients to what no active
	 * license covers is left as it is: a value placed, or one taken from
	 * above once its own is removed. */
	if (err == SERR_OK && node != STORE_ROOT)
		err = store_settings_inherited(ctx->st, node, &above, msg, len);
	json_object_foreach(want, key, v) {
		if (err == SERR_OK && !json_equal(json_object_get(own, key), v) &&
		    (service = licenses_setting_service(key, v)) >= 0)
			err = licenses_switch(ctx->licenses, service, msg, len);
	}
	json_object_foreach(own, key, v) {
		if (err == SERR_OK && above && !json_object_get(want, key) &&
		    !json_equal(v, json_object_get(above, key)) &&
		    (service = licenses_setting_service(key, json_object_get(above, key))) >= 0)
			err = licenses_switch(ctx->licenses, service, msg, len);
	}
	json_object_foreach(want, key, v) {
		if (err != SERR_OK)
			break;
		if (!json_equal(json_object_get(own, key), v))
			err = store_setting_set(ctx->st, node, key, v, STORE_APPLY_INHERIT,
						NULL, msg, len);
	}
	json_object_foreach(own, key, v) {
		if (err == SERR_OK && node != STORE_ROOT && !json_object_get(want, key))
			err = store_setting_unset(ctx->st, node, key, NULL, msg, len);
	}
	json_decref(own);
	json_decref(above);
	return err;
}

enum serr api_tree_import_export(struct api_ctx *ctx, const char *who, json_t *ex,
				 json_t **out, char *msg, size_t len)
{
	json_t *domains = json_object_get(ex, "domains"), *rules = json_object_get(ex, "grouping");
	json_t *d, *results;
	const char *path;
	char *text = NULL;
	enum serr err;
	int64_t node, done = 0;
	size_t i;

	if (!json_is_array(domains) || json_integer_value(json_object_get(ex, "format")) != 1 ||
	    (rules && !grouping_validate(rules, msg, len))) {
		snprintf(msg, len, "import: expected {\"export\": the output of GET "
			 "/api/v1/export (format 1)}");
		return SERR_INVAL;
	}
	results = json_array();
	if (!results) {
		snprintf(msg, len, "out of memory");
		return SERR_NOMEM;
	}
	json_array_foreach(domains, i, d) {
		path = json_string_value(json_object_get(d, "path"));
		err = path ? store_domain_lookup(ctx->st, path, 1, &node, msg, len) : SERR_INVAL;
		if (!path)
			snprintf(msg, len, "entry %zu has no path", i + 1);
		if (err == SERR_OK)
			err = import_node(ctx, node, json_object_get(d, "settings"), msg, len);
		json_array_append_new(results, err == SERR_OK ?
				      json_pack("{ss sb}", "path", path, "ok", 1) :
				      json_pack("{ss sb ss}", "path", path ? path : "", "ok", 0,
						"error", msg));
		done += err == SERR_OK;
	}
	if (rules && ((text = json_dumps(rules, JSON_COMPACT)) == NULL ||
		      store_kv_put(ctx->st, "grouping_rules", text, msg, len) != SERR_OK ||
		      !api_load_rules(ctx)))
		log_msg(LOG_LVL_ERROR, "import: saving the grouping rules failed");
	free(text);
	store_eventf(ctx->st, "system", 0, "%s imported %lld domains", who, (long long)done);
	notify_kick(ctx->notify);
	*out = json_pack("{sI so}", "imported", (json_int_t)done, "results", results);
	return SERR_OK;
}

void api_tree_import(struct api_ctx *ctx, struct http_req *req, const char *who,
		     const struct api_args *args)
{
	json_t *out = NULL;
	char msg[256];

	api_answer(req, 200, api_tree_import_export(ctx, who, api_arg_json(args, "export"), &out,
						    msg, sizeof(msg)), &out, msg);
}
