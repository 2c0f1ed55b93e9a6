/* api_quarantine.c -- the quarantine on the server: each agent's
 * inventory as it reports it, listed fleet-wide, by domain or by client;
 * restores and deletes, which go to the agents as tasks (api_tasks.h). */
#include "server/api.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "server/api_tasks.h"

#define DEFAULT_LIMIT 1000
#define MAX_LIMIT 100000

/* Bounds of one inventory record. */
#define ITEM_ID_MAX 64        /* bytes of an item id: [A-Za-z0-9_-] */
#define PATH_MAX_BYTES 16384  /* bytes of a path as reported (\xNN escapes) */
#define NAMES_MAX 64          /* detection names of one record */
#define NAME_MAX_BYTES 256    /* bytes of one name */

static const char *const item_states[] = { "stored", "restored", "deleted", NULL };
static const char *const sources[] = { "realtime", "scheduled", "scan_now", "manual",
				       "clamd", NULL };

static bool one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* Whether s (len bytes) is an item id: 1 to ITEM_ID_MAX letters, digits,
 * '-' and '_' (it names a file of the central quarantine). */
static bool item_id_ok(const char *s, size_t len)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789-_";

	return len > 0 && len <= ITEM_ID_MAX && strspn(s, ok) == len;
}

/* Whether v is a string of 1 to max bytes. Paths and names may hold any
 * byte but NUL (a hostile file's name must not hide it from the report);
 * every place that shows them escapes their control characters. */
static bool text_ok(const json_t *v, size_t max)
{
	return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= max;
}

/* Checks one inventory record; false with msg naming the member. */
static bool record_ok(const json_t *r, size_t i, char *msg, size_t len)
{
	static const char *const members[] = { "id", "path", "size", "sha256", "names", "time",
					       "source", "state", NULL };
	const char *key, *bad = NULL;
	json_t *v, *n;
	size_t j;

	if (!json_is_object(r)) {
		snprintf(msg, len, "items[%zu]: expected an object", i);
		return false;
	}
	json_object_foreach((json_t *)r, key, v)
		if (!one_of(key, members)) {
			snprintf(msg, len, "items[%zu].%.64s: no such member (a record has "
				 "id, path, size, sha256, names, time, source, state)", i, key);
			return false;
		}
	v = json_object_get(r, "id");
	if (!json_is_string(v) || !item_id_ok(json_string_value(v), json_string_length(v)))
		bad = "id: expected 1 to 64 letters, digits, - and _";
	v = json_object_get(r, "path");
	if (!bad && (!text_ok(v, PATH_MAX_BYTES) || json_string_value(v)[0] != '/'))
		bad = "path: expected an absolute path (bytes not UTF-8 as \\xNN), at most 16384 "
		      "bytes";
	v = json_object_get(r, "size");
	if (!bad && (!json_is_integer(v) || json_integer_value(v) < 0))
		bad = "size: expected a whole number of bytes";
	v = json_object_get(r, "sha256");
	if (!bad && (!json_is_string(v) || json_string_length(v) != 64 ||
		     strspn(json_string_value(v), "0123456789abcdef") != 64))
		bad = "sha256: expected 64 lowercase hex digits";
	v = json_object_get(r, "names");
	if (!bad && (!json_is_array(v) || json_array_size(v) == 0 ||
		     json_array_size(v) > NAMES_MAX))
		bad = "names: expected a list of 1 to 64 detection names";
	json_array_foreach(bad ? NULL : v, j, n)
		if (!bad && !text_ok(n, NAME_MAX_BYTES))
			bad = "names: each a name of 1 to 256 bytes";
	v = json_object_get(r, "time");
	if (!bad && (!json_is_integer(v) || json_integer_value(v) <= 0))
		bad = "time: expected seconds since the epoch";
	v = json_object_get(r, "source");
	if (!bad && (!json_is_string(v) || !one_of(json_string_value(v), sources)))
		bad = "source: expected realtime, scheduled, scan_now, manual or clamd";
	v = json_object_get(r, "state");
	if (!bad && (!json_is_string(v) || !one_of(json_string_value(v), item_states)))
		bad = "state: expected stored, restored or deleted";
	if (!bad)
		return true;
	snprintf(msg, len, "items[%zu].%s", i, bad);
	return false;
}

/* The path of client's central copy of item (item checked by
 * item_id_ok()), or of its directory when item is NULL; NULL when out of
 * memory. The caller frees it. */
static char *central_path(const struct api_ctx *ctx, int64_t client, const char *item)
{
	return item ? util_printf("%s/quarantine/%lld/%s", ctx->cfg->data_dir,
				  (long long)client, item) :
		      util_printf("%s/quarantine/%lld", ctx->cfg->data_dir, (long long)client);
}

/* Removes the central copies of client's items gone (a list of ids). */
static void central_remove(const struct api_ctx *ctx, int64_t client, const json_t *gone)
{
	json_t *v;
	size_t i;
	char *path;

	json_array_foreach(gone, i, v) {
		path = central_path(ctx, client, json_string_value(v));
		if (path && unlink(path) != 0 && errno != ENOENT)
			log_msg(LOG_LVL_ERROR, "quarantine: removing %s: %s", path,
				strerror(errno));
		free(path);
	}
}

void api_quarantine_forget(struct api_ctx *ctx, int64_t client)
{
	char *dir = central_path(ctx, client, NULL);

	if (dir && util_remove_tree(dir) != 0)
		log_msg(LOG_LVL_ERROR, "quarantine: removing %s: %s", dir, strerror(errno));
	free(dir);
}

/* Removes the files of client's folder dir whose "CLIENT/ITEM" is not in
 * held; the folder too once empty. */
static size_t sweep_client(const char *dir, const char *client, const json_t *held)
{
	struct dirent *e;
	size_t gone = 0;
	char *path, key[320];
	DIR *d = opendir(dir);

	while (d && (e = readdir(d))) {
		snprintf(key, sizeof(key), "%s/%s", client, e->d_name);
		if (e->d_name[0] == '.' || json_object_get(held, key))
			continue;
		path = util_path_join(dir, e->d_name);
		if (path && unlink(path) == 0)
			gone++;
		else if (path)
			log_msg(LOG_LVL_ERROR, "quarantine: removing %s: %s", path,
				strerror(errno));
		free(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);   /* fails while a copy is left: kept */
	return gone;
}

size_t api_quarantine_sweep(struct api_ctx *ctx)
{
	char *root = util_path_join(ctx->cfg->data_dir, "quarantine"), *dir, *end;
	struct dirent *e;
	json_t *held = NULL;
	size_t gone = 0;
	DIR *d = NULL;

	/* The database did not answer: everything is kept until it does. */
	if (root && store_quarantine_centrals(ctx->st, &held) == SERR_OK)
		d = opendir(root);
	while (d && (e = readdir(d))) {
		errno = 0;
		if (e->d_name[0] == '.' || strtoll(e->d_name, &end, 10) <= 0 || errno || *end)
			continue;
		dir = util_path_join(root, e->d_name);
		if (dir)
			gone += sweep_client(dir, e->d_name, held);
		free(dir);
	}
	if (d)
		closedir(d);
	json_decref(held);
	free(root);
	if (gone)
		log_msg(LOG_LVL_INFO, "quarantine: removed %zu central copies no record holds any "
			"more", gone);
	return gone;
}

void api_quarantine_inventory(struct api_ctx *ctx, struct http_req *req, const char *who,
			      const struct api_args *args)
{
	json_t *body = api_body_object(req), *items, *complete, *gone = NULL, *r;
	int64_t client = strtoll(who, NULL, 10);
	const char *key;
	char msg[512];
	enum serr err;
	size_t i;

	(void)args;
	if (!body)
		return;
	json_object_foreach(body, key, r)
		if (strcmp(key, "items") != 0 && strcmp(key, "complete") != 0) {
			http_respond_error(req, 400, "quarantine: %.64s: no such member (it takes "
					   "items, complete)", key);
			goto out;
		}
	items = json_object_get(body, "items");
	complete = json_object_get(body, "complete");
	if (!json_is_array(items)) {
		http_respond_error(req, 400, "quarantine: items: expected a list of records");
		goto out;
	}
	if (!json_is_boolean(complete)) {
		http_respond_error(req, 400, "quarantine: complete: expected true (the whole "
				   "quarantine) or false (what changed)");
		goto out;
	}
	if ((int64_t)json_array_size(items) > ctx->cfg->quarantine_max_report) {
		http_respond_error(req, 413, "quarantine: items: at most %lld records a report "
				   "(quarantine.max_report); send the rest in further reports "
				   "with complete false",
				   (long long)ctx->cfg->quarantine_max_report);
		goto out;
	}
	json_array_foreach(items, i, r)
		if (!record_ok(r, i, msg, sizeof(msg))) {
			http_respond_error(req, 400, "quarantine: %s", msg);
			goto out;
		}
	err = store_quarantine_put(ctx->st, client, items, json_is_true(complete),
				   ctx->cfg->quarantine_max_items, &gone, msg, sizeof(msg));
	if (err == SERR_INVAL) {
		http_respond_error(req, 413, "quarantine: %s", msg);
		goto out;
	}
	if (err != SERR_OK) {
		api_store_error(req, err, msg);
		goto out;
	}
	central_remove(ctx, client, gone);
	http_respond_json(req, 200, json_pack("{sI}", "stored",
					      (json_int_t)json_array_size(items)));
out:
	json_decref(gone);
	json_decref(body);
}

void api_quarantine_list(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	const char *domain = api_arg_string(args, "domain"), *item = api_arg_string(args, "item");
	const char *state = api_arg_string(args, "state");
	int64_t node = 0, limit = DEFAULT_LIMIT;
	json_t *out = NULL;
	char msg[256];
	enum serr err;

	(void)who;
	if (api_arg_int(args, "client", &node) && node <= STORE_ROOT) {
		http_respond_error(req, 400, "client: expected a client id");
		return;
	}
	if (api_arg_int(args, "limit", &limit) && (limit < 1 || limit > MAX_LIMIT)) {
		http_respond_error(req, 400, "limit: expected 1 to %d", MAX_LIMIT);
		return;
	}
	if (state && !one_of(state, item_states)) {
		http_respond_error(req, 400, "state: expected stored, restored or deleted, not "
				   "'%.64s'", state);
		return;
	}
	if (domain && node) {
		http_respond_error(req, 400, "client and domain: give one or the other");
		return;
	}
	if (domain && (err = store_domain_lookup(ctx->st, domain, 0, &node, msg,
						 sizeof(msg))) != SERR_OK) {
		api_store_error(req, err, msg);
		return;
	}
	if (store_quarantine_list(ctx->st, node, item, state, limit, &out) != SERR_OK) {
		http_respond_error(req, 500, "database: reading the quarantine failed");
		return;
	}
	http_respond_json(req, 200, json_pack("{so}", "items", out));
}

/* Queues a task of kind with args about client's item, which must be in
 * its quarantine (stored); answers req. */
static void item_task(struct api_ctx *ctx, struct http_req *req, const char *who,
		      const struct api_args *args, const char *kind, json_t *task)
{
	const char *item = api_arg_string(args, "item");
	int64_t client = 0, id = 0;
	json_t *found = NULL;
	char msg[256];
	enum serr err;

	api_arg_int(args, "client", &client);
	if (!task) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	if (client <= STORE_ROOT || !item_id_ok(item, strlen(item))) {
		http_respond_error(req, 400, "%s", client <= STORE_ROOT ?
				   "client: expected a client id" :
				   "item: expected an item id (1 to 64 letters, digits, - and _)");
		goto out;
	}
	if (store_quarantine_list(ctx->st, client, item, NULL, 1, &found) != SERR_OK) {
		http_respond_error(req, 500, "database: reading the quarantine failed");
		goto out;
	}
	if (json_array_size(found) == 0) {
		http_respond_error(req, 404, "client %lld has no item %s in quarantine",
				   (long long)client, item);
		goto out;
	}
	if (strcmp(json_string_value(json_object_get(json_array_get(found, 0), "state")),
		   "stored") != 0) {
		http_respond_error(req, 409, "item %s of client %lld is %s already", item,
				   (long long)client, json_string_value(json_object_get(
					   json_array_get(found, 0), "state")));
		goto out;
	}
	json_object_set_new(task, "item", json_string(item));
	err = api_tasks_queue(ctx, client, kind, task, who, &id, msg, sizeof(msg));
	if (err != SERR_OK)
		api_store_error(req, err, msg);
	else
		http_respond_json(req, 200, json_pack("{sI sI ss}", "task", (json_int_t)id,
						      "client", (json_int_t)client, "item", item));
out:
	json_decref(found);
	json_decref(task);
}

/* The boolean argument name (absent: false); false, answered 400, when it
 * is not a boolean. */
static bool flag_arg(struct http_req *req, const struct api_args *args, const char *name,
		     bool *out)
{
	json_t *v = api_arg_json(args, name);

	*out = json_is_true(v);
	if (!v || json_is_boolean(v))
		return true;
	http_respond_error(req, 400, "%s: expected true or false", name);
	return false;
}

void api_quarantine_restore(struct api_ctx *ctx, struct http_req *req, const char *who,
			    const struct api_args *args)
{
	bool overwrite, exclude;

	if (!flag_arg(req, args, "overwrite", &overwrite) ||
	    !flag_arg(req, args, "exclude", &exclude))
		return;
	item_task(ctx, req, who, args, "quarantine_restore",
		  json_pack("{sb sb}", "overwrite", overwrite, "exclude", exclude));
}

void api_quarantine_delete(struct api_ctx *ctx, struct http_req *req, const char *who,
			   const struct api_args *args)
{
	item_task(ctx, req, who, args, "quarantine_delete", json_object());
}

/* The record of client's item (a new object), or NULL when it has none. */
static json_t *find_item(struct api_ctx *ctx, int64_t client, const char *item)
{
	json_t *found = NULL, *r;

	if (store_quarantine_list(ctx->st, client, item, NULL, 1, &found) != SERR_OK)
		return NULL;
	r = json_incref(json_array_get(found, 0));
	json_decref(found);
	return r;
}

/* The largest copy client may send: the server's cap, lowered by the
 * client's quarantine.central_max_file; -1 when quarantine.central is off
 * for it. */
static int64_t central_cap(struct api_ctx *ctx, int64_t client)
{
	json_t *eff = NULL;
	int64_t cap = -1, own;
	char msg[256];

	if (store_settings_get(ctx->st, client, NULL, &eff, msg, sizeof(msg)) != SERR_OK)
		return -1;
	if (json_is_true(json_object_get(eff, "quarantine.central"))) {
		cap = ctx->cfg->quarantine_central_max_file;
		own = json_integer_value(json_object_get(eff, "quarantine.central_max_file"));
		if (own < cap)
			cap = own;
	}
	json_decref(eff);
	return cap;
}

static void upload_done(void *arg)
{
	struct api_ctx *ctx = arg;

	ctx->uploads--;
}

bool api_quarantine_admit(struct api_ctx *ctx, struct http_req *req, int64_t client,
			  size_t *max_body)
{
	const char *length;
	json_t *r = NULL;
	int64_t cap, total = 0;
	unsigned long long declared = 0;
	char *end, item[OPS_MAX_PARAM];
	bool ok = false;

	if (!ops_path_param(&ops_table()[OPS_AGENT_QUARANTINE_FILE], http_req_path(req), item,
			    sizeof(item)) || !item_id_ok(item, strlen(item))) {
		http_respond_error(req, 400, "item: expected /api/v1/agent/quarantine/ID (1 to 64 "
				   "letters, digits, - and _)");
		return false;
	}
	r = find_item(ctx, client, item);
	if (!r) {
		http_respond_error(req, 404, "item %s: not in this agent's quarantine as reported "
				   "(POST /api/v1/agent/quarantine first)", item);
		return false;
	}
	cap = central_cap(ctx, client);
	length = http_req_header(req, "Content-Length");
	if (length) {
		errno = 0;
		declared = strtoull(length, &end, 10);
		if (errno || *end)
			declared = ~0ULL;
	}
	if (cap < 0) {
		http_respond_error(req, 403, "quarantine.central is off for client %lld: the "
				   "server takes no copies of its quarantine", (long long)client);
	} else if (json_integer_value(json_object_get(r, "central")) > 0) {
		http_respond_json(req, 200, json_pack("{ss sb}", "item", item, "stored", 0));
	} else if (declared > (unsigned long long)cap) {
		http_respond_error(req, 413, "item %s: %llu bytes; the central quarantine takes "
				   "copies of at most %lld (quarantine.central_max_file)", item,
				   declared, (long long)cap);
	} else if (store_quarantine_central_total(ctx->st, &total) != SERR_OK ||
		   total + (int64_t)declared > ctx->cfg->quarantine_central_max_total) {
		http_respond_error(req, 507, "the central quarantine is full "
				   "(quarantine.central_max_total %lld bytes)",
				   (long long)ctx->cfg->quarantine_central_max_total);
	} else if (ctx->uploads >= ctx->cfg->quarantine_max_uploads) {
		http_respond_busy(req, 5, "%lld copies are being received "
				  "(quarantine.max_uploads)", (long long)ctx->uploads);
	} else {
		ctx->uploads++;
		http_on_done(req, upload_done, ctx);
		*max_body = (size_t)cap;
		ok = true;
	}
	json_decref(r);
	return ok;
}

void api_quarantine_upload(struct api_ctx *ctx, struct http_req *req, const char *who,
			   const struct api_args *args)
{
	int64_t client = strtoll(who, NULL, 10);
	const char *body;
	char *dir = NULL, *path = NULL, item[OPS_MAX_PARAM];
	size_t len;

	json_t *r;
	int64_t total = 0;

	(void)args;
	body = http_req_body(req, &len);
	/* The route matched: the item is there (api_quarantine_admit()
	 * checked it). */
	if (!ops_path_param(&ops_table()[OPS_AGENT_QUARANTINE_FILE], http_req_path(req), item,
			    sizeof(item))) {
		http_respond_error(req, 400, "item: expected /api/v1/agent/quarantine/ID");
		return;
	}
	/* api_quarantine_admit() checked the item and the caps before the body
	 * came; what a body without Content-Length brought is checked now. */
	r = find_item(ctx, client, item);
	json_decref(r);
	if (!r) {
		http_respond_error(req, 404, "item %s: no longer in this agent's quarantine", item);
		goto out;
	}
	if (len == 0) {
		http_respond_error(req, 400, "item %s: an empty copy", item);
		goto out;
	}
	if (store_quarantine_central_total(ctx->st, &total) != SERR_OK ||
	    total + (int64_t)len > ctx->cfg->quarantine_central_max_total) {
		http_respond_error(req, 507, "the central quarantine is full "
				   "(quarantine.central_max_total %lld bytes)",
				   (long long)ctx->cfg->quarantine_central_max_total);
		goto out;
	}
	dir = central_path(ctx, client, NULL);
	path = central_path(ctx, client, item);
	if (!dir || !path) {
		http_respond_error(req, 500, "out of memory");
		goto out;
	}
	if (util_mkdir_p(dir, 0700) != 0 || util_replace_file(path, body, len, 0600) != 0) {
		log_msg(LOG_LVL_ERROR, "quarantine: writing %s: %s", path, strerror(errno));
		http_respond_error(req, 507, "the central quarantine could not store the copy "
				   "(%s)", strerror(errno));
		goto out;
	}
	if (store_quarantine_central(ctx->st, client, item, (int64_t)len) != SERR_OK) {
		unlink(path);
		http_respond_error(req, 500, "database: recording the copy failed");
		goto out;
	}
	store_eventf(ctx->st, "system", client, "central quarantine: a copy of item %s "
		     "(%zu bytes) stored", item, len);
	http_respond_json(req, 201, json_pack("{ss sb sI}", "item", item, "stored", 1, "size",
					      (json_int_t)len));
out:
	free(dir);
	free(path);
}
