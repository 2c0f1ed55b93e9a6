/* vault.c -- the agent's quarantine service (see vault.h). */
#include "agent/vault.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/action.h"
#include "agent/astate.h"
#include "agent/components.h"
#include "agent/reports.h"
#include "common/log.h"
#include "common/rest.h"
#include "common/state.h"
#include "common/util.h"

/* Local exclusions kept at most (each a path of at most 4096 bytes). */
#define MAX_EXCLUSIONS 1024

/* Inventory changes kept for the server at most; past it the whole list
 * is sent instead. */
#define MAX_CHANGES 1000

/* Central copies waiting at most (a copy past it is not made). */
#define MAX_CENTRAL 1000

/* Records an inventory report carries at most (the server's
 * quarantine.max_report is larger by default). */
#define REPORT_BATCH 200

/* Two locks: lock, held through the quarantine's operations (a restore
 * holds it while it decrypts up to quarantine.max_size), and slock, held
 * only to read or change the settings and the local exclusions, so that
 * the loop's thread, which reads them, never waits for a restore. slock
 * is taken inside lock, never the other way round. */
struct vault {
	pthread_mutex_t lock;       /* the quarantine and what follows it */
	struct agent *a;
	struct quarantine *q;       /* NULL: the quarantine could not be opened */
	json_t *changes;            /* inventory RECORDs not yet reported */
	bool complete_due;          /* the whole inventory is to be sent */
	uint64_t complete_gen;      /* counts the times complete_due was set */
	time_t last_prune;
	char *central_path;         /* STATE/central.json: the ids to copy */
	json_t *central_queue;      /* those ids */
	pthread_mutex_t slock;      /* what follows */
	struct action_policy policy;
	unsigned retention_days;
	uint64_t max_size;
	bool central;               /* quarantine.central */
	uint64_t central_max_file;  /* quarantine.central_max_file */
	char *excl_path;            /* STATE/exclusions.json */
	json_t *excluded;           /* array of paths */
};

struct vault *vault_open(struct agent *a)
{
	struct vault *v = calloc(1, sizeof(*v));
	char msg[512];
	size_t fixed = 0;

	if (!v)
		return NULL;
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->slock, NULL);
	v->a = a;
	v->excl_path = astate_file(a, "exclusions.json");
	v->central_path = astate_file(a, "central.json");
	v->changes = json_array();
	if (!v->excl_path || !v->central_path || !v->changes) {
		vault_close(v);
		return NULL;
	}
	v->excluded = reports_load_list(v->excl_path);
	v->central_queue = reports_load_list(v->central_path);
	v->complete_due = true;
	vault_configure(v, NULL);
	if (quarantine_open(a->cfg.state_dir, NULL, NULL, &v->q, msg, sizeof(msg)) != AERR_OK) {
		log_msg(LOG_LVL_ERROR, "quarantine: %s; quarantine actions fail until the agent "
			"restarts", msg);
		v->q = NULL;
		return v;
	}
	if (quarantine_recover(v->q, &fixed, msg, sizeof(msg)) != AERR_OK)
		log_msg(LOG_LVL_ERROR, "quarantine: recovery: %s", msg);
	if (fixed)
		log_msg(LOG_LVL_INFO, "quarantine: %zu half-done item%s finished or rolled back",
			fixed, fixed == 1 ? "" : "s");
	return v;
}

void vault_close(struct vault *v)
{
	if (!v)
		return;
	quarantine_close(v->q);
	json_decref(v->excluded);
	json_decref(v->changes);
	json_decref(v->central_queue);
	free(v->central_path);
	free(v->excl_path);
	pthread_mutex_destroy(&v->lock);
	pthread_mutex_destroy(&v->slock);
	free(v);
}

/* The action setting key of settings (NULL: defaults), else dflt. */
static enum action_kind setting_action(struct vault *v, const json_t *settings, const char *key,
				       enum action_kind dflt)
{
	json_t *val = astate_setting(v->a, settings, key);
	enum action_kind k = dflt;

	if (!json_is_string(val) || !action_parse(json_string_value(val), &k))
		k = dflt;
	json_decref(val);
	return k;
}

static int64_t setting_int(struct vault *v, const json_t *settings, const char *key)
{
	json_t *val = astate_setting(v->a, settings, key);
	int64_t n = json_is_integer(val) ? json_integer_value(val) : 0;

	json_decref(val);
	return n < 0 ? 0 : n;
}

void vault_configure(struct vault *v, const json_t *settings)
{
	struct action_policy p = action_default_policy();
	json_t *none = settings ? NULL : json_object();
	const json_t *s = settings ? settings : none;
	unsigned days;
	uint64_t max, central_max;
	json_t *central;

	p.malware_first = setting_action(v, s, "action.malware.first", p.malware_first);
	p.malware_second = setting_action(v, s, "action.malware.second", p.malware_second);
	p.pua_first = setting_action(v, s, "action.pua.first", p.pua_first);
	p.pua_second = setting_action(v, s, "action.pua.second", p.pua_second);
	days = (unsigned)setting_int(v, s, "quarantine.retention_days");
	max = (uint64_t)setting_int(v, s, "quarantine.max_size");
	central_max = (uint64_t)setting_int(v, s, "quarantine.central_max_file");
	central = astate_setting(v->a, s, "quarantine.central");
	json_decref(none);
	pthread_mutex_lock(&v->slock);
	v->policy = p;
	v->retention_days = days;
	v->max_size = max;
	v->central = json_is_true(central);
	v->central_max_file = central_max;
	pthread_mutex_unlock(&v->slock);
	json_decref(central);
}

/* Makes the next report the whole inventory; the lock is held. */
static void want_complete(struct vault *v)
{
	v->complete_due = true;
	v->complete_gen++;
	json_array_clear(v->changes);
}

/* Adds r in state to the changes to report; the lock is held. Past
 * MAX_CHANGES the whole inventory is sent instead. */
static void note_change(struct vault *v, const struct quarantine_record *r, const char *state)
{
	json_t *rec;

	rec = json_array_size(v->changes) < MAX_CHANGES ? quarantine_record_json(r, state) : NULL;
	if (!rec || json_array_append_new(v->changes, rec) != 0)
		want_complete(v);
}

/* Prunes by the settings; the lock is held. */
static void prune_locked(struct vault *v)
{
	char msg[512];
	size_t pruned = 0;
	unsigned days;
	uint64_t max;

	if (!v->q)
		return;
	pthread_mutex_lock(&v->slock);
	days = v->retention_days;
	max = v->max_size;
	pthread_mutex_unlock(&v->slock);
	v->last_prune = time(NULL);
	if (quarantine_prune(v->q, (int64_t)v->last_prune, days, max, &pruned, msg,
			     sizeof(msg)) != AERR_OK)
		log_msg(LOG_LVL_ERROR, "quarantine: prune: %s", msg);
	if (pruned) {
		/* The records of what went are gone with it: the whole list
		 * tells the server. */
		want_complete(v);
	}
}

void vault_respond(struct vault *v, const struct vault_detection *d, json_t *report_out)
{
	const struct components_handle *h = components_acquire(v->a->comps);
	struct quarantine_detection det = { 0 };
	struct action_target t = { 0 };
	struct action_outcome out;
	struct quarantine_record rec = { 0 };
	struct action_policy policy;
	char version[32];
	bool central;

	snprintf(version, sizeof(version), "%lld", h ? (long long)h->version : 0LL);
	det.names = d->names;
	det.n_names = d->nnames;
	det.component = h && h->name ? h->name : "unknown";
	det.version = version;
	det.source = d->source;
	t.dirfd = d->dirfd;
	t.name = d->name;
	t.path = d->path;
	t.dev = d->dev;
	t.ino = d->ino;
	json_object_set_new(report_out, "time", json_integer((json_int_t)time(NULL)));
	json_object_set_new(report_out, "path", util_json_bytes(d->path ? d->path : d->name));
	json_object_set_new(report_out, "name", json_string(d->nnames ? d->names[0] : "unknown"));
	json_object_set_new(report_out, "method", json_string(h && h->smart ? "smart" :
							      "conventional"));
	json_object_set_new(report_out, "source", json_string(quarantine_source_name(d->source)));
	components_release(v->a->comps, h);
	if (d->task > 0)
		json_object_set_new(report_out, "task", json_integer(d->task));
	if (d->pid > 0)
		json_object_set_new(report_out, "process", json_pack("{sI so}", "pid",
				    (json_int_t)d->pid, "exe", util_json_bytes(d->exe ? d->exe :
									       "")));
	pthread_mutex_lock(&v->slock);
	policy = v->policy;
	central = v->central;
	pthread_mutex_unlock(&v->slock);
	pthread_mutex_lock(&v->lock);
	action_take(&policy, v->q, ACTION_VERDICT_INFECTED, &t, &det, &out);
	if (out.quarantine_id[0] && v->q) {
		if (quarantine_get(v->q, out.quarantine_id, &rec, NULL, 0) == AERR_OK)
			note_change(v, &rec, "stored");
		else
			want_complete(v);
		if (central && json_array_size(v->central_queue) < MAX_CENTRAL &&
		    (json_array_append_new(v->central_queue, json_string(out.quarantine_id)) != 0 ||
		     !state_write_json(v->central_path, v->central_queue)))
			log_msg(LOG_LVL_ERROR, "quarantine: %s: the central copy of item %s may "
				"not be made", v->central_path, out.quarantine_id);
		quarantine_record_free(&rec);
		prune_locked(v);
	}
	pthread_mutex_unlock(&v->lock);
	action_outcome_json(&out, report_out);
	/* Block mode denied the access: when the policy left the file in
	 * place (pass), the denial is what was done. */
	if (d->denied && out.first == ACTION_PASS && !out.second_taken)
		json_object_set_new(report_out, "action", json_string("deny"));
}

json_t *vault_respond_path(struct vault *v, const struct vault_detection *d)
{
	struct vault_detection at = *d;
	char dir[PATH_MAX], base[PATH_MAX];
	size_t len = strlen(d->path);
	json_t *det;

	if (!v || len >= sizeof(dir))
		return NULL;
	det = json_object();
	if (!det)
		return NULL;
	memcpy(dir, d->path, len + 1);
	memcpy(base, d->path, len + 1);
	at.dirfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	at.name = basename(base);
	vault_respond(v, &at, det);
	if (at.dirfd >= 0)
		close(at.dirfd);
	return det;
}

/* Adds path to the local exclusions, kept in the state directory; slock
 * is held. */
static bool exclude_slocked(struct vault *v, const char *path, char *errbuf, size_t errlen)
{
	size_t i;

	for (i = 0; i < json_array_size(v->excluded); i++)
		if (strcmp(json_string_value(json_array_get(v->excluded, i)), path) == 0)
			return true;
	if (json_array_size(v->excluded) >= MAX_EXCLUSIONS || strlen(path) > 4096) {
		util_set_msg(errbuf, errlen, "%s: not excluded: the agent keeps at most %d local "
			     "exclusions of at most 4096 bytes", path, MAX_EXCLUSIONS);
		return false;
	}
	json_array_append_new(v->excluded, json_string_nocheck(path));
	if (!state_write_json(v->excl_path, v->excluded)) {
		json_array_remove(v->excluded, json_array_size(v->excluded) - 1);
		util_set_msg(errbuf, errlen, "%s: the exclusion could not be kept in %s", path,
			     v->excl_path);
		return false;
	}
	log_msg(LOG_LVL_INFO, "quarantine: %s excluded from scans", path);
	return true;
}

enum aerr vault_restore(struct vault *v, const char *id, bool overwrite, bool exclude,
			char *errbuf, size_t errlen)
{
	struct quarantine_record rec = { 0 };
	enum aerr rc = AERR_NOTFOUND;
	bool excluded;

	pthread_mutex_lock(&v->lock);
	if (!v->q) {
		util_set_msg(errbuf, errlen, "the quarantine is not open (see the agent's log)");
		rc = AERR_IO;
		goto out;
	}
	/* Excluded first: a scan must not find the restored file again. */
	if (exclude) {
		rc = quarantine_get(v->q, id, &rec, errbuf, errlen);
		if (rc != AERR_OK)
			goto out;
		pthread_mutex_lock(&v->slock);
		excluded = exclude_slocked(v, rec.path, errbuf, errlen);
		pthread_mutex_unlock(&v->slock);
		if (!excluded) {
			rc = AERR_IO;
			goto out;
		}
		quarantine_record_free(&rec);
	}
	rc = quarantine_restore(v->q, id, overwrite, &rec, errbuf, errlen);
	if (rc == AERR_OK) {
		log_msg(LOG_LVL_INFO, "quarantine: item %s restored to %s", id, rec.path);
		note_change(v, &rec, "restored");
	}
out:
	quarantine_record_free(&rec);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

enum aerr vault_delete(struct vault *v, const char *id, char *errbuf, size_t errlen)
{
	struct quarantine_record rec = { 0 };
	enum aerr rc = AERR_IO;

	pthread_mutex_lock(&v->lock);
	if (!v->q) {
		util_set_msg(errbuf, errlen, "the quarantine is not open (see the agent's log)");
		goto out;
	}
	rc = quarantine_get(v->q, id, &rec, errbuf, errlen);
	if (rc == AERR_TAMPERED || rc == AERR_OK)
		rc = quarantine_delete(v->q, id, errbuf, errlen);
	if (rc == AERR_OK) {
		if (rec.path)
			note_change(v, &rec, "deleted");
		else
			want_complete(v);
	}
out:
	quarantine_record_free(&rec);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

/* The inventory as RECORDs; the lock is held. */
static json_t *list_locked(struct vault *v, char *errbuf, size_t errlen)
{
	struct quarantine_record *recs = NULL;
	json_t *items;
	size_t n = 0, i;

	if (!v->q) {
		util_set_msg(errbuf, errlen, "the quarantine is not open (see the agent's log)");
		return NULL;
	}
	if (quarantine_list(v->q, &recs, &n, NULL, errbuf, errlen) != AERR_OK)
		return NULL;
	items = json_array();
	for (i = 0; items && i < n; i++)
		if (json_array_append_new(items, quarantine_record_json(&recs[i], "stored")) != 0) {
			json_decref(items);
			items = NULL;
		}
	quarantine_records_free(recs, n);
	if (!items)
		util_set_msg(errbuf, errlen, "out of memory");
	return items;
}

json_t *vault_list(struct vault *v, char *errbuf, size_t errlen)
{
	json_t *items;

	pthread_mutex_lock(&v->lock);
	items = list_locked(v, errbuf, errlen);
	pthread_mutex_unlock(&v->lock);
	return items;
}

void vault_prune(struct vault *v)
{
	pthread_mutex_lock(&v->lock);
	prune_locked(v);
	pthread_mutex_unlock(&v->lock);
}

bool vault_excluded(struct vault *v, const char *path)
{
	bool hit = false;
	size_t i, len;
	const char *e;

	pthread_mutex_lock(&v->slock);
	for (i = 0; !hit && i < json_array_size(v->excluded); i++) {
		e = json_string_value(json_array_get(v->excluded, i));
		len = e ? strlen(e) : 0;
		hit = len && strncmp(path, e, len) == 0 &&
		      (path[len] == '\0' || path[len] == '/' || strcmp(e, "/") == 0);
	}
	pthread_mutex_unlock(&v->slock);
	return hit;
}

json_t *vault_exclusions(struct vault *v)
{
	json_t *copy;

	pthread_mutex_lock(&v->slock);
	copy = json_deep_copy(v->excluded);
	pthread_mutex_unlock(&v->slock);
	return copy;
}

json_t *vault_paths(struct vault *v)
{
	json_t *list = json_array();
	const char **dirs = NULL;
	size_t i, n;
	int rc = list ? 0 : -1;

	pthread_mutex_lock(&v->lock);
	n = v->q ? quarantine_vault_paths(v->q, NULL, 0) : 0;
	if (n && !(dirs = calloc(n, sizeof(*dirs))))
		rc = -1;
	if (!rc && n)
		quarantine_vault_paths(v->q, dirs, n);
	/* Paths are bytes: not checked as UTF-8 (only read back as C strings). */
	for (i = 0; !rc && i < n; i++)
		rc = json_array_append_new(list, json_string_nocheck(dirs[i]));
	pthread_mutex_unlock(&v->lock);
	free(dirs);
	if (rc) {
		json_decref(list);
		return NULL;
	}
	return list;
}

/* Posts items (complete or not) to the server. Returns true when it took
 * them (200), or refused them as malformed (logged: they would be refused
 * again). */
static bool post_inventory(struct vault *v, json_t *items, bool complete)
{
	json_t *body = json_pack("{sOsb}", "items", items, "complete", complete), *answer = NULL;
	char msg[256];
	long status = 0;
	bool done = false;

	if (body && rest_call(v->a->up.rc, "POST", "/api/v1/agent/quarantine", body, 30, &status,
			      &answer, msg, sizeof(msg)) == ERR_OK) {
		if (status == 200) {
			done = true;
		} else if (status == 400) {
			const char *why = json_string_value(json_object_get(answer, "error"));

			log_msg(LOG_LVL_ERROR, "quarantine: the server refused the inventory (%s); "
				"dropped", why ? why : "malformed");
			done = true;
		} else {
			log_msg(LOG_LVL_WARN, "quarantine: the inventory report got HTTP %ld; "
				"tried again later", status);
		}
	} else if (body) {
		log_msg(LOG_LVL_WARN, "quarantine: the inventory report failed (%s); tried again "
			"later", msg);
	}
	json_decref(answer);
	json_decref(body);
	return done;
}

/* Reads item id's central copy into *buf: the meta file's length (8
 * bytes, big-endian), the meta file, the data file (docs/formats.md).
 * Returns 0; 1 when it is past max bytes or gone (not to be sent); -1 on
 * a failure to retry. The lock is held. */
static int read_copy(struct vault *v, const char *id, uint64_t max, struct util_buf *buf)
{
	unsigned char head[8];
	struct stat ms, ds;
	char chunk[65536], msg[512];
	int fds[2] = { -1, -1 }, rc = -1, i;
	ssize_t n;

	if (quarantine_item_files(v->q, id, &fds[0], &fds[1], msg, sizeof(msg)) != AERR_OK) {
		log_msg(LOG_LVL_WARN, "quarantine: central copy of %s: %s", id, msg);
		return 1;
	}
	if (fstat(fds[0], &ms) != 0 || fstat(fds[1], &ds) != 0)
		goto out;
	if ((uint64_t)ms.st_size + (uint64_t)ds.st_size + 8 > max) {
		log_msg(LOG_LVL_INFO, "quarantine: item %s is past quarantine.central_max_file; "
			"no central copy", id);
		rc = 1;
		goto out;
	}
	for (i = 0; i < 8; i++)
		head[i] = (unsigned char)((uint64_t)ms.st_size >> (56 - 8 * i));
	if (util_buf_append(buf, head, 8) != 0)
		goto out;
	for (i = 0; i < 2; i++)
		while ((n = read(fds[i], chunk, sizeof(chunk))) > 0)
			if (util_buf_append(buf, chunk, (size_t)n) != 0 || buf->len > max + 8)
				goto out;
	rc = n == 0 ? 0 : -1;
out:
	for (i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

/* Copies the items waiting to the central quarantine, until one does not
 * get through (tried again next time). */
static void send_central(struct vault *v)
{
	struct util_buf buf = { 0 }, answer = { 0 };
	char id[QUARANTINE_ID_LEN + 1], path[128], msg[256];
	uint64_t central_max;
	bool drop, central;
	long status;
	int rc;

	for (;;) {
		pthread_mutex_lock(&v->slock);
		central = v->central;
		central_max = v->central_max_file;
		pthread_mutex_unlock(&v->slock);
		pthread_mutex_lock(&v->lock);
		if (!v->q || !json_array_size(v->central_queue)) {
			pthread_mutex_unlock(&v->lock);
			break;
		}
		snprintf(id, sizeof(id), "%s",
			 json_string_value(json_array_get(v->central_queue, 0)));
		rc = central ? read_copy(v, id, central_max, &buf) : 1;
		pthread_mutex_unlock(&v->lock);
		drop = rc == 1;
		if (rc == 0) {
			status = 0;
			snprintf(path, sizeof(path), "/api/v1/agent/quarantine/%s", id);
			if (rest_send(v->a->up.rc, "PUT", path, buf.data, buf.len,
				      "application/octet-stream", 300, 4096, &status, &answer, msg,
				      sizeof(msg)) != ERR_OK || status == 404 || status == 503 ||
			    status == 507 || status >= 500) {
				/* 404: the inventory naming it is not there yet. */
				log_msg(LOG_LVL_WARN, "quarantine: central copy of %s: %s; tried "
					"again later", id, status ? "not taken now" : msg);
				util_buf_free(&buf);
				util_buf_free(&answer);
				break;
			}
			drop = true;
			if (status == 200 || status == 201)
				log_msg(LOG_LVL_INFO, "quarantine: item %s copied to the central "
					"quarantine", id);
			else
				log_msg(LOG_LVL_ERROR, "quarantine: the server refused the central "
					"copy of %s (HTTP %ld); not sent again", id, status);
		}
		util_buf_free(&buf);
		util_buf_free(&answer);
		if (rc < 0)
			break;
		pthread_mutex_lock(&v->lock);
		if (drop && json_array_size(v->central_queue) &&
		    strcmp(json_string_value(json_array_get(v->central_queue, 0)), id) == 0) {
			json_array_remove(v->central_queue, 0);
			if (!state_write_json(v->central_path, v->central_queue))
				log_msg(LOG_LVL_WARN, "quarantine: %s could not be rewritten",
					v->central_path);
		}
		pthread_mutex_unlock(&v->lock);
	}
}

void vault_report(struct vault *v)
{
	json_t *items = NULL;
	bool complete;
	uint64_t gen;
	size_t taken, i;
	char msg[512];

	pthread_mutex_lock(&v->lock);
	if (v->q && time(NULL) - v->last_prune >= 86400)
		prune_locked(v);
	complete = v->complete_due;
	gen = v->complete_gen;
	taken = json_array_size(v->changes);
	if (complete) {
		items = list_locked(v, msg, sizeof(msg));
		if (!items)
			log_msg(LOG_LVL_ERROR, "quarantine: inventory: %s", msg);
	} else if (taken) {
		taken = taken > REPORT_BATCH ? REPORT_BATCH : taken;
		items = json_array();
		for (i = 0; items && i < taken; i++)
			json_array_append(items, json_array_get(v->changes, i));
	}
	pthread_mutex_unlock(&v->lock);
	if (!items) {
		send_central(v);
		return;
	}
	/* The network call runs without the lock: detections keep being
	 * acted upon meanwhile, their changes reported next time. */
	if (post_inventory(v, items, complete)) {
		pthread_mutex_lock(&v->lock);
		/* Changes noted while the list was out are sent next time. */
		if (gen == v->complete_gen) {
			v->complete_due = false;
			for (i = 0; i < taken && json_array_size(v->changes); i++)
				json_array_remove(v->changes, 0);
		}
		pthread_mutex_unlock(&v->lock);
		if (complete)
			log_msg(LOG_LVL_INFO, "quarantine: inventory of %zu item%s reported",
				json_array_size(items), json_array_size(items) == 1 ? "" : "s");
		/* The server takes a copy of what its inventory names. */
		send_central(v);
	}
	json_decref(items);
}
