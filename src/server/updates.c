/* updates.c -- imports, component versions and package downloads (see
 * updates.h). */
#include "server/updates.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/comp.h"
#include "common/log.h"
#include "common/pack.h"
#include "common/pkg.h"
#include "common/util.h"
#include "server/builder.h"
#include "server/importer.h"
#include "server/mirror.h"
#include "sps/pattern.h"

/* How often the loop looks at a running import and the watch clock. */
#define TICK_MS 250

/* The server value saying since when an import runs (none: none runs). */
#define IMPORTING_KEY "updates.importing"

/* The server value holding the key rotation chain (a JSON list). */
#define ROTATIONS_KEY "updates.rotations"

/* The largest member a container may unpack to. */
#define MAX_MEMBER (2LL << 30)

/* What one component's import produced. */
struct built {
	int64_t version;            /* 0: unchanged */
	int64_t base;               /* the version the delta applies to; 0: no delta */
	char full[160], delta[200]; /* payload file names */
	char *full_env, *delta_env;
	int64_t full_size, delta_size;
};

/* One import, handed to the worker thread and back. */
struct job {
	/* Set before the worker starts. */
	char *source_dir, *packages_dir, *components_dir, *staging_dir;
	char last_digest[65];
	int64_t current[COMP_COUNT];
	const unsigned char *pk, *sk;
	/* Set by the worker. */
	bool failed, unchanged;
	char msg[1024];
	char digest[65];
	struct built built[COMP_COUNT];
	struct sps_pattern *pattern; /* the new Smart Scan Pattern, loaded for the SPS */
	bool load_pattern;
	atomic_bool done;
};

/* A `ward update now` waiting for the import to end. */
struct waiter {
	struct http_req *req;
	struct waiter *next;
};

struct updates {
	struct store *st;
	const struct config *cfg;
	struct http_server *http;
	struct sps_service *sps;  /* the integrated smart protection server, or NULL */
	unsigned char pk[PKG_PK_BYTES], sk[PKG_SK_BYTES];
	char pk_hex[2 * PKG_PK_BYTES + 1];
	char *key_path, *new_key_path, *pub_path;
	json_t *rotations;        /* the rotation records, oldest first (strings) */
	char *packages_dir, *components_dir, *staging_dir;
	struct job *job;          /* the running import, or NULL */
	pthread_t thread;
	uint64_t watch_sig;       /* the source directory as last looked at */
	bool watched;
	uint64_t next_watch_ms, next_check_ms;
	struct waiter *waiters;   /* for the running (or next) import */
	struct waiter *queued;    /* came while an import ran: for the one after */
	json_t *last;             /* the last import's outcome */
	int64_t imports_ok, imports_failed;  /* since start */
	/* The options an administrator may change while wardd runs: wardd.conf's
	 * values, or those set through the API (kept in the store) over them. */
	char *source_dir;
	int64_t watch_interval, check_interval, max_downloads;
	json_t *overrides;        /* {option: value} set through the API */
	struct downloader *downloaders; /* clients with downloads being served */
	struct mirror *mirror;    /* copies of other servers' packages; NULL: alone */
	bool holding;             /* holds STORE_HOLD_IMPORT */
	uint64_t busy_logged_ms;  /* when an import held back by another was logged */
};

/* A client (its credential's identity) and the downloads it is served. */
struct downloader {
	struct updates *u;
	struct downloader *next;
	unsigned n;
	uint64_t logged_ms;       /* when its refusal was last logged */
	char who[];
};

/* A client's refusals for the per-client cap are logged at most this often. */
#define DOWNLOADER_LOG_MS 60000

/* Where the options set through the API are kept. */
#define SETTINGS_KEY "updates.settings"

/* The options of updates_configure(): name, and the range of a number. */
static const struct {
	const char *name;
	int64_t min, max;
} options[] = {
	{ "source_dir", 0, 0 },
	{ "watch_interval", 1, 3600 },
	{ "check_interval", 60, 7 * 86400 },
	{ "max_downloads", 1, 100000 },
};

static const char *comp_name(int c)
{
	return comp_table()[c].name;
}

/* Makes version's package files of component c in the staging area
 * (full, and a delta when the previous version's files are there). */
static bool build_one(struct job *j, int c, const char *dir)
{
	struct built *b = &j->built[c];
	char prev[4096], path[4400], msg[512];
	json_t *now = NULL, *before = NULL;
	bool same, has_prev;

	b->version = 0;
	snprintf(prev, sizeof(prev), "%s/%s/%lld", j->components_dir, comp_name(c),
		 (long long)j->current[c]);
	if (comp_describe(dir, &now, msg, sizeof(msg)) != ERR_OK) {
		snprintf(j->msg, sizeof(j->msg), "%s", msg);
		return false;
	}
	/* Without the previous version's files there is no delta to make. */
	has_prev = j->current[c] > 0 &&
		   comp_describe(prev, &before, msg, sizeof(msg)) == ERR_OK;
	same = has_prev && json_equal(now, before);
	json_decref(now);
	json_decref(before);
	if (same)
		return true;
	b->version = j->current[c] + 1;
	snprintf(b->full, sizeof(b->full), "%s-%lld.tar.zst", comp_name(c), (long long)b->version);
	snprintf(path, sizeof(path), "%s/%s", j->packages_dir, b->full);
	if (build_package(comp_name(c), b->version, 0, NULL, dir, path, b->full, j->pk, j->sk,
			  &b->full_env, &b->full_size, j->msg, sizeof(j->msg)) != SERR_OK)
		return false;
	if (!has_prev)
		return true;
	b->base = j->current[c];
	snprintf(b->delta, sizeof(b->delta), "%s-%lld-%lld.tar.zst", comp_name(c),
		 (long long)b->base, (long long)b->version);
	snprintf(path, sizeof(path), "%s/%s", j->packages_dir, b->delta);
	return build_package(comp_name(c), b->version, b->base, prev, dir, path, b->delta, j->pk,
			     j->sk, &b->delta_env, &b->delta_size, j->msg, sizeof(j->msg)) ==
	       SERR_OK;
}

/* Removes what a failed job made. */
static void undo(struct job *j)
{
	char path[4400];
	int c;

	for (c = 0; c < COMP_COUNT; c++) {
		struct built *b = &j->built[c];

		if (b->full[0]) {
			snprintf(path, sizeof(path), "%s/%s", j->packages_dir, b->full);
			unlink(path);
		}
		if (b->delta[0]) {
			snprintf(path, sizeof(path), "%s/%s", j->packages_dir, b->delta);
			unlink(path);
		}
		b->version = 0;
	}
}

/* The worker: import, build, package; every file goes into place only when
 * all components are built, and the loop thread records them. */
static void *run_job(void *arg)
{
	struct job *j = arg;
	json_t *inv = NULL, *skipped = NULL;
	char unpacked[4200], out[4200], dir[4400], to[4400];
	int c;

	if (import_scan(j->source_dir, &inv, j->digest, &skipped, j->msg, sizeof(j->msg)) !=
	    SERR_OK) {
		j->failed = true;
		goto out;
	}
	if (strcmp(j->digest, j->last_digest) == 0) {
		j->unchanged = true;
		goto out;
	}
	snprintf(unpacked, sizeof(unpacked), "%s/unpacked", j->staging_dir);
	snprintf(out, sizeof(out), "%s/out", j->staging_dir);
	if (util_remove_tree(j->staging_dir) != 0 || util_mkdir_p(out, 0700) != 0) {
		snprintf(j->msg, sizeof(j->msg), "%s: %s", j->staging_dir, strerror(errno));
		j->failed = true;
		goto out;
	}
	if (import_unpack(j->source_dir, inv, unpacked, MAX_MEMBER, j->msg, sizeof(j->msg)) !=
	    SERR_OK || build_contents(unpacked, out, j->msg, sizeof(j->msg)) != SERR_OK) {
		j->failed = true;
		goto out;
	}
	for (c = 0; c < COMP_COUNT && !j->failed; c++) {
		snprintf(dir, sizeof(dir), "%s/%s", out, comp_name(c));
		j->failed = !build_one(j, c, dir);
	}
	for (c = 0; c < COMP_COUNT && !j->failed; c++) {
		if (!j->built[c].version)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", out, comp_name(c));
		snprintf(to, sizeof(to), "%s/%s/%lld", j->components_dir, comp_name(c),
			 (long long)j->built[c].version);
		if (util_remove_tree(to) != 0 || util_mkdir_p(to, 0700) != 0 || rmdir(to) != 0 ||
		    rename(dir, to) != 0) {
			snprintf(j->msg, sizeof(j->msg), "%.512s: %s", to, strerror(errno));
			j->failed = true;
		}
	}
	/* The integrated smart protection server's next pattern is loaded
	 * (and checked) here, off the loop thread. */
	if (!j->failed && j->load_pattern && j->built[COMP_SMART].version) {
		snprintf(to, sizeof(to), "%s/%s/%lld/%s", j->components_dir,
			 comp_name(COMP_SMART), (long long)j->built[COMP_SMART].version,
			 COMP_HASHES_FILE);
		j->pattern = sps_pattern_load(to, j->built[COMP_SMART].version, j->msg,
					      sizeof(j->msg));
		j->failed = !j->pattern;
	}
	if (j->failed)
		undo(j);
out:
	util_remove_tree(j->staging_dir);
	json_decref(inv);
	json_decref(skipped);
	atomic_store(&j->done, true);
	return NULL;
}

static void job_free(struct job *j)
{
	int c;

	if (!j)
		return;
	free(j->source_dir);
	sps_pattern_free(j->pattern);
	for (c = 0; c < COMP_COUNT; c++) {
		free(j->built[c].full_env);
		free(j->built[c].delta_env);
	}
	free(j);
}

/* The newest full version of component c (0: none), from its packages. */
static int64_t latest(const json_t *packages)
{
	int64_t v = 0;
	json_t *p;
	size_t i;

	json_array_foreach(packages, i, p)
		if (json_integer_value(json_object_get(p, "base")) == 0 &&
		    json_integer_value(json_object_get(p, "version")) > v)
			v = json_integer_value(json_object_get(p, "version"));
	return v;
}

/* A 64-bit summary of the source directory's entries (name, size, mtime,
 * inode), cheap enough to take every few seconds: it changes when a file
 * is added, removed, replaced or written. */
static uint64_t source_signature(const char *dir)
{
	unsigned char h[8];
	uint64_t sum = 0, v;
	struct dirent *de;
	struct stat sb;
	char line[600];
	DIR *dp = opendir(dir);

	if (!dp)
		return (uint64_t)errno;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.' || fstatat(dirfd(dp), de->d_name, &sb, 0) != 0)
			continue;
		snprintf(line, sizeof(line), "%s/%lld/%lld.%ld/%llu", de->d_name,
			 (long long)sb.st_size, (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
			 (unsigned long long)sb.st_ino);
		crypto_generichash(h, sizeof(h), (const unsigned char *)line, strlen(line), NULL,
				   0);
		memcpy(&v, h, sizeof(v));
		sum += v; /* order-independent: readdir's order means nothing */
	}
	closedir(dp);
	return sum;
}

/* Whether this server may import now: of several on one database, one
 * at a time (the others copy what it built), and only once this one has
 * the components in use (an import builds its deltas on them). Logged
 * once a minute when held back. */
static bool may_import(struct updates *u)
{
	uint64_t now = http_now_ms();
	const char *why = NULL;
	bool taken = false;

	if (!u->mirror)
		return true;
	if (!mirror_current(u->mirror))
		why = "the components in use are still being copied from the database";
	else if (store_hold(u->st, STORE_HOLD_IMPORT, true, &taken) != SERR_OK)
		why = "the database does not answer";
	else if (!taken)
		why = "another server on the database is importing";
	u->holding = taken;
	if (why && now - u->busy_logged_ms >= 60000) {
		u->busy_logged_ms = now;
		log_msg(LOG_LVL_INFO, "update: the import waits: %s", why);
	}
	return !why;
}

/* Whether this server is still copying the components in use from the
 * database (may_import()). */
static bool copying(const struct updates *u)
{
	return u->mirror && !mirror_current(u->mirror);
}

/* Gives the import hold back. */
static void release(struct updates *u)
{
	bool taken;

	if (u->holding)
		store_hold(u->st, STORE_HOLD_IMPORT, false, &taken);
	u->holding = false;
}

/* Starts an import on the worker thread; false when it cannot start now
 * (may_import()). */
static bool start(struct updates *u)
{
	struct job *j;
	json_t *packages;
	char *digest = NULL, when[24];
	int c;

	if (!may_import(u))
		return false;
	j = calloc(1, sizeof(*j));
	if (!j) {
		release(u);
		return true;
	}
	/* The source as the import finds it: a change made while it runs is
	 * seen by the watch afterwards and imported then. */
	u->watch_sig = source_signature(u->source_dir);
	u->watched = true;
	j->source_dir = strdup(u->source_dir);
	if (!j->source_dir) {
		free(j);
		release(u);
		return true;
	}
	j->packages_dir = u->packages_dir;
	j->components_dir = u->components_dir;
	j->staging_dir = u->staging_dir;
	j->pk = u->pk;
	j->sk = u->sk;
	j->load_pattern = u->sps != NULL;
	if (store_kv_get(u->st, "updates.digest", &digest) == SERR_OK)
		snprintf(j->last_digest, sizeof(j->last_digest), "%s", digest);
	free(digest);
	for (c = 0; c < COMP_COUNT; c++) {
		packages = NULL;
		if (store_packages(u->st, comp_name(c), &packages) != SERR_OK) {
			log_msg(LOG_LVL_ERROR, "update: the package table is unreadable");
			job_free(j);
			release(u);
			return true;
		}
		j->current[c] = latest(packages);
		json_decref(packages);
	}
	if (pthread_create(&u->thread, NULL, run_job, j) != 0) {
		log_msg(LOG_LVL_ERROR, "update: cannot start the import thread");
		job_free(j);
		release(u);
		return true;
	}
	u->job = j;
	/* For an upgrade's preflight, which reads the database beside us. */
	snprintf(when, sizeof(when), "%lld", (long long)time(NULL));
	store_kv_put(u->st, IMPORTING_KEY, when, NULL, 0);
	return true;
}

/* Removes a package's file and row. */
static void drop_package(struct updates *u, const char *file)
{
	char *path = util_path_join(u->packages_dir, file);

	if (path)
		unlink(path);
	free(path);
	store_package_remove(u->st, file);
}

/* Keeps component c's deltas reaching keep_deltas versions back from v and
 * the full packages of v and v - 1; removes older versions' files. */
static void prune(struct updates *u, int c, int64_t v)
{
	char dir[4200];
	json_t *packages = NULL, *p;
	int64_t pv, base;
	size_t i;

	if (store_packages(u->st, comp_name(c), &packages) != SERR_OK)
		return;
	json_array_foreach(packages, i, p) {
		pv = json_integer_value(json_object_get(p, "version"));
		base = json_integer_value(json_object_get(p, "base"));
		if ((base == 0 && pv < v - 1) || (base > 0 && base < v - u->cfg->keep_deltas))
			drop_package(u, json_string_value(json_object_get(p, "file")));
	}
	json_decref(packages);
	snprintf(dir, sizeof(dir), "%s/%s", u->components_dir, comp_name(c));
	mirror_keep_only(dir, v);
}

/* Records a package file the job built; on a database other servers
 * share, with the file itself, which they copy. */
static enum serr record_package(struct updates *u, int c, const struct built *b, bool delta,
				char *errbuf, size_t errlen)
{
	const char *file = delta ? b->delta : b->full;
	char *path = store_shared(u->st) ? util_path_join(u->packages_dir, file) : NULL;
	enum serr err = store_shared(u->st) && !path ? SERR_NOMEM :
			store_package_add(u->st, comp_name(c), b->version, delta ? b->base : 0,
					  file, delta ? b->delta_size : b->full_size,
					  delta ? b->delta_env : b->full_env, path, errbuf, errlen);

	free(path);
	return err;
}

/* Records what a finished job built; returns the outcome for the log and
 * for `ward update now`. */
static json_t *record(struct updates *u, struct job *j)
{
	json_t *out = json_pack("{sI sb}", "time", (json_int_t)time(NULL), "ok", !j->failed);
	json_t *versions = json_object();
	char msg[512];
	int c;
	bool ok = !j->failed;

	for (c = 0; c < COMP_COUNT && ok; c++) {
		struct built *b = &j->built[c];

		if (!b->version)
			continue;
		if (record_package(u, c, b, false, msg, sizeof(msg)) != SERR_OK ||
		    (b->base && record_package(u, c, b, true, msg, sizeof(msg)) != SERR_OK)) {
			snprintf(j->msg, sizeof(j->msg), "recording packages: %s", msg);
			ok = false;
			break;
		}
		json_object_set_new(versions, comp_name(c), json_integer(b->version));
		if (b->base)
			store_eventf(u->st, "system", 0, "%s version %lld built: full package %lld "
				     "bytes, delta from %lld %lld bytes", comp_table()[c].title,
				     (long long)b->version, (long long)b->full_size,
				     (long long)b->base, (long long)b->delta_size);
		else
			store_eventf(u->st, "system", 0, "%s version %lld built: full package %lld "
				     "bytes", comp_table()[c].title, (long long)b->version,
				     (long long)b->full_size);
		prune(u, c, b->version);
	}
	if (ok && !j->unchanged)
		store_kv_put(u->st, "updates.digest", j->digest, msg, sizeof(msg));
	if (ok && j->pattern) {
		log_msg(LOG_LVL_INFO, "sps: Smart Scan Pattern version %lld in use, %llu entries",
			(long long)sps_pattern_version(j->pattern),
			(unsigned long long)sps_pattern_entries(j->pattern));
		sps_service_set(u->sps, j->pattern);
		j->pattern = NULL;
	}
	if (!ok) {
		undo(j);
		log_msg(LOG_LVL_ERROR, "update: import of %s failed: %s", u->source_dir,
			j->msg);
		store_eventf(u->st, "system", 0, "signature import of %s failed: %s; the "
			     "components in use stay as they were", u->source_dir, j->msg);
	} else if (j->unchanged) {
		snprintf(j->msg, sizeof(j->msg), "the source is unchanged");
	} else if (json_object_size(versions) == 0) {
		snprintf(j->msg, sizeof(j->msg), "the source changed, the components did not");
	} else {
		snprintf(j->msg, sizeof(j->msg), "new component versions built");
	}
	if (ok)
		u->imports_ok++;
	else
		u->imports_failed++;
	json_object_set_new(out, "ok", json_boolean(ok));
	json_object_set_new(out, "message", json_string(j->msg));
	json_object_set_new(out, "built", versions);
	return out;
}


static void answer_waiters(struct updates *u)
{
	struct waiter *w;

	while ((w = u->waiters)) {
		u->waiters = w->next;
		http_respond_json(w->req, 200, json_incref(u->last));
		free(w);
	}
}

/* The loop's timer: collects a finished import, starts one when due. */
static void tick(void *arg)
{
	struct updates *u = arg;
	uint64_t now = http_now_ms(), sig;

	if (u->job && atomic_load(&u->job->done)) {
		pthread_join(u->thread, NULL);
		json_decref(u->last);
		u->last = record(u, u->job);
		job_free(u->job);
		u->job = NULL;
		store_kv_delete(u->st, IMPORTING_KEY);
		release(u);
		answer_waiters(u);
		u->waiters = u->queued;
		u->queued = NULL;
	}
	if (u->job)
		return;
	if (u->mirror)
		mirror_step(u->mirror, now);
	/* An import held back only until this server has copied the
	 * components in use is tried again at the next tick; one another
	 * server makes is that server's. */
	if (u->waiters || now >= u->next_check_ms) {
		if (start(u) || !copying(u))
			u->next_check_ms = now + (uint64_t)u->check_interval * 1000;
		return;
	}
	if (now >= u->next_watch_ms) {
		u->next_watch_ms = now + (uint64_t)u->watch_interval * 1000;
		sig = source_signature(u->source_dir);
		if (u->watched && sig != u->watch_sig) {
			if (start(u))
				log_msg(LOG_LVL_INFO, "update: %s changed; importing",
					u->source_dir);
			else if (copying(u))
				return;  /* the change is seen again next time */
		}
		u->watch_sig = sig;
		u->watched = true;
	}
}

/* Removes req from list; returns whether it was there. */
static bool unlink_waiter(struct waiter **list, struct http_req *req)
{
	struct waiter **p, *w;

	for (p = list; (w = *p); p = &w->next)
		if (w->req == req) {
			*p = w->next;
			free(w);
			return true;
		}
	return false;
}

static void drop_waiter(struct http_req *req, void *arg)
{
	struct updates *u = arg;

	if (!unlink_waiter(&u->waiters, req))
		unlink_waiter(&u->queued, req);
}

void updates_import_now(struct updates *u, struct http_req *req)
{
	struct waiter *w = malloc(sizeof(*w));
	struct waiter **list = u->job ? &u->queued : &u->waiters;

	if (!w) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	/* An import already running may have read the source before the
	 * change the administrator wants imported: wait for the next one. */
	w->req = req;
	w->next = *list;
	*list = w;
	http_park(req, drop_waiter, u);
	log_msg(LOG_LVL_INFO, "update: import of %s requested", u->source_dir);
}

/* Reads the secret key at path (hex) into sk and its public half into pk.
 * Returns false with errno set: ENOENT when there is none, EINVAL when it
 * is not a key. */
static bool read_key(const char *path, unsigned char sk[PKG_SK_BYTES],
		     unsigned char pk[PKG_PK_BYTES])
{
	char *text = util_read_file(path, 1024, NULL);
	size_t got = 0;
	bool ok;

	if (!text)
		return false;
	ok = sodium_hex2bin(sk, PKG_SK_BYTES, text, strcspn(text, "\n"), NULL, &got, NULL) == 0 &&
	     got == PKG_SK_BYTES;
	sodium_memzero(text, strlen(text));
	free(text);
	if (!ok) {
		errno = EINVAL;
		return false;
	}
	crypto_sign_ed25519_sk_to_pk(pk, sk);
	return true;
}

/* Writes secret key sk to path (hex, mode 0600), replacing it atomically. */
static bool write_key(const char *path, const unsigned char sk[PKG_SK_BYTES])
{
	char text[2 * PKG_SK_BYTES + 2];
	bool ok;

	sodium_bin2hex(text, sizeof(text) - 1, sk, PKG_SK_BYTES);
	text[2 * PKG_SK_BYTES] = '\n';
	text[2 * PKG_SK_BYTES + 1] = '\0';
	ok = util_replace_file(path, text, strlen(text), 0600) == 0;
	if (!ok)
		log_msg(LOG_LVL_ERROR, "%s: %s", path, strerror(errno));
	sodium_memzero(text, sizeof(text));
	return ok;
}

/* Makes pk (with sk) the key in use: its hex form for enrollment answers,
 * and DATA_DIR/signing.pub for administrators (rewritten when it differs). */
static void use_key(struct updates *u, const unsigned char pk[PKG_PK_BYTES],
		    const unsigned char sk[PKG_SK_BYTES])
{
	char line[2 * PKG_PK_BYTES + 2], *old = util_read_file(u->pub_path, 256, NULL);

	memcpy(u->pk, pk, PKG_PK_BYTES);
	memcpy(u->sk, sk, PKG_SK_BYTES);
	sodium_bin2hex(u->pk_hex, sizeof(u->pk_hex), pk, PKG_PK_BYTES);
	snprintf(line, sizeof(line), "%s\n", u->pk_hex);
	if ((!old || strcmp(old, line) != 0) &&
	    util_replace_file(u->pub_path, line, strlen(line), 0644) != 0)
		log_msg(LOG_LVL_WARN, "%s: %s", u->pub_path, strerror(errno));
	free(old);
}

/* The public key the last rotation record names; false when there is none. */
static bool last_rotated_key(const struct updates *u, unsigned char pk[PKG_PK_BYTES])
{
	json_t *rec = json_loads(json_string_value(json_array_get(
		u->rotations, json_array_size(u->rotations) - 1)), 0, NULL);
	const char *key = json_string_value(json_object_get(rec, "key"));
	size_t got = 0;
	bool ok = key && sodium_hex2bin(pk, PKG_PK_BYTES, key, strlen(key), NULL, &got,
					NULL) == 0 && got == PKG_PK_BYTES;

	json_decref(rec);
	return ok;
}

/* Loads the package signing key pair and the rotation chain; makes the key
 * on first start. A rotation is committed by the store (the chain and the
 * packages signed anew) between writing signing.key.new and renaming it
 * over signing.key: one cut off in between is finished here when the
 * store has it, else discarded. */
static bool load_key(struct updates *u, char *errbuf, size_t errlen)
{
	unsigned char pk[PKG_PK_BYTES], sk[PKG_SK_BYTES], rotated[PKG_PK_BYTES];
	char *chain = NULL;
	enum serr err = store_kv_get(u->st, ROTATIONS_KEY, &chain);
	bool ok = false;

	u->rotations = err == SERR_OK ? json_loads(chain, 0, NULL) :
		       err == SERR_NOENT ? json_array() : NULL;
	free(chain);
	if (!json_is_array(u->rotations)) {
		snprintf(errbuf, errlen, "database: the key rotation chain is unreadable");
		return false;
	}
	if (read_key(u->new_key_path, sk, pk)) {
		if (!last_rotated_key(u, rotated) ||
		    sodium_memcmp(rotated, pk, PKG_PK_BYTES) != 0) {
			log_msg(LOG_LVL_WARN, "update: %s: discarded a key rotation that was cut "
				"off before it was recorded", u->new_key_path);
			unlink(u->new_key_path);
		} else if (rename(u->new_key_path, u->key_path) != 0) {
			snprintf(errbuf, errlen, "%s: %s (finishing a key rotation)", u->key_path,
				 strerror(errno));
			goto out;
		} else {
			log_msg(LOG_LVL_WARN, "update: finished the key rotation to %s that was "
				"cut off", u->new_key_path);
		}
	}
	if (read_key(u->key_path, sk, pk)) {
		ok = true;
	} else if (errno == ENOENT) {
		pkg_keygen(pk, sk);
		ok = write_key(u->key_path, sk);
		if (ok)
			log_msg(LOG_LVL_INFO, "first start: made the package signing key %s",
				u->pub_path);
		else
			snprintf(errbuf, errlen, "%s: %s", u->key_path, strerror(errno));
	} else {
		snprintf(errbuf, errlen, "%s: not a package signing key", u->key_path);
	}
	if (ok)
		use_key(u, pk, sk);
out:
	sodium_memzero(sk, sizeof(sk));
	return ok;
}

/* Gives the integrated smart protection server the newest Smart Scan
 * Pattern there is at start. */
static bool load_pattern(struct updates *u, char *errbuf, size_t errlen)
{
	json_t *packages = NULL;
	struct sps_pattern *p;
	char path[4400];
	int64_t v;

	if (store_packages(u->st, comp_name(COMP_SMART), &packages) != SERR_OK) {
		snprintf(errbuf, errlen, "database: the package table is unreadable");
		return false;
	}
	v = latest(packages);
	json_decref(packages);
	if (v == 0)
		return true;
	snprintf(path, sizeof(path), "%s/%s/%lld/%s", u->components_dir, comp_name(COMP_SMART),
		 (long long)v, COMP_HASHES_FILE);
	/* Built by another server on the database: loaded once copied. */
	if (u->mirror && access(path, F_OK) != 0 && errno == ENOENT) {
		log_msg(LOG_LVL_INFO, "sps: Smart Scan Pattern version %lld is copied from the "
			"database first", (long long)v);
		return true;
	}
	p = sps_pattern_load(path, v, errbuf, errlen);
	if (!p)
		return false;
	log_msg(LOG_LVL_INFO, "sps: Smart Scan Pattern version %lld in use, %llu entries",
		(long long)v, (unsigned long long)sps_pattern_entries(p));
	sps_service_set(u->sps, p);
	return true;
}

/* Checks overrides ({option: value}; see options[]) and makes them, over
 * wardd.conf's values, the options in use. Nothing changes on failure,
 * which names the option and what is wrong in errbuf. */
static bool apply_settings(struct updates *u, json_t *overrides, char *errbuf, size_t errlen)
{
	int64_t num[sizeof(options) / sizeof(options[0])] = { 0, u->cfg->watch_interval,
							      u->cfg->check_interval,
							      u->cfg->max_downloads };
	const char *dir = u->cfg->source_dir, *key, *fs;
	char *copy;
	struct stat sb;
	json_t *v;
	size_t i;

	json_object_foreach(overrides, key, v) {
		for (i = 0; i < sizeof(options) / sizeof(options[0]); i++)
			if (strcmp(options[i].name, key) == 0)
				break;
		if (i == sizeof(options) / sizeof(options[0])) {
			snprintf(errbuf, errlen, "%s: no such option (source_dir, watch_interval, "
				 "check_interval, max_downloads)", key);
			return false;
		}
		if (i == 0) {
			dir = json_string_value(v);
			if (!dir || dir[0] != '/' || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
				snprintf(errbuf, errlen, "source_dir: %s is not a directory on "
					 "the server (an absolute path is needed)",
					 dir ? dir : "(not text)");
				return false;
			}
		} else if (!json_is_integer(v) || json_integer_value(v) < options[i].min ||
			   json_integer_value(v) > options[i].max) {
			snprintf(errbuf, errlen, "%s: expected a whole number from %lld to %lld",
				 key, (long long)options[i].min, (long long)options[i].max);
			return false;
		} else {
			num[i] = json_integer_value(v);
		}
	}
	/* /proc and its kind change under every look: endless imports. */
	if ((fs = util_pseudo_fs(dir)) != NULL) {
		snprintf(errbuf, errlen, "source_dir: %s is on the kernel's %s pseudo file "
			 "system, not a directory of signature files", dir, fs);
		return false;
	}
	copy = strdup(dir);
	if (!copy) {
		snprintf(errbuf, errlen, "out of memory");
		return false;
	}
	free(u->source_dir);
	u->source_dir = copy;
	u->watch_interval = num[1];
	u->check_interval = num[2];
	u->max_downloads = num[3];
	json_decref(u->overrides);
	u->overrides = json_incref(overrides);
	return true;
}

json_t *updates_settings(const struct updates *u)
{
	return json_pack("{ss sI sI sI sO s{ss sI sI sI}}", "source_dir", u->source_dir,
			 "watch_interval", (json_int_t)u->watch_interval, "check_interval",
			 (json_int_t)u->check_interval, "max_downloads",
			 (json_int_t)u->max_downloads, "set", u->overrides, "config", "source_dir",
			 u->cfg->source_dir, "watch_interval", (json_int_t)u->cfg->watch_interval,
			 "check_interval", (json_int_t)u->cfg->check_interval, "max_downloads",
			 (json_int_t)u->cfg->max_downloads);
}

bool updates_configure(struct updates *u, const json_t *changes, const char *who,
		       char *errbuf, size_t errlen)
{
	json_t *next = json_deep_copy(u->overrides), *v;
	char *old = strdup(u->source_dir), *text = NULL, msg[256];
	const char *key;
	bool ok = false;

	if (!next || !old || !json_is_object(changes) || json_object_size(changes) == 0) {
		snprintf(errbuf, errlen, next && old ? "expected an object of options to set "
			 "(null: back to wardd.conf's value)" : "out of memory");
		goto out;
	}
	json_object_foreach((json_t *)changes, key, v) {
		if (json_is_null(v))
			json_object_del(next, key);
		else
			json_object_set(next, key, v);
	}
	if (!apply_settings(u, next, errbuf, errlen))
		goto out;
	text = json_dumps(next, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text || store_kv_put(u->st, SETTINGS_KEY, text, msg, sizeof(msg)) != SERR_OK) {
		snprintf(errbuf, errlen, "database: the update settings could not be saved");
		goto out;
	}
	store_eventf(u->st, "system", 0, "%s set the update settings: source %s, looked at every "
		     "%llds, imported every %llds, %lld downloads at once", who, u->source_dir,
		     (long long)u->watch_interval, (long long)u->check_interval,
		     (long long)u->max_downloads);
	/* The new source is looked at now, and imported at once if it moved. */
	u->next_watch_ms = 0;
	if (strcmp(old, u->source_dir) != 0)
		u->next_check_ms = 0;
	ok = true;
out:
	free(text);
	free(old);
	json_decref(next);
	return ok;
}

/* Takes the options in use from wardd.conf and the overrides kept in the
 * store; overrides that no longer hold (a source directory gone) are
 * dropped, logged. */
static bool load_settings(struct updates *u, char *errbuf, size_t errlen)
{
	char *text = NULL, msg[512];
	json_t *saved = NULL, *none = json_object();

	if (store_kv_get(u->st, SETTINGS_KEY, &text) == SERR_OK)
		saved = json_loads(text, 0, NULL);
	free(text);
	if (saved && !apply_settings(u, saved, msg, sizeof(msg)))
		log_msg(LOG_LVL_ERROR, "update settings set through the API no longer hold (%s); "
			"wardd.conf's are used", msg);
	json_decref(saved);
	if (!u->source_dir && !apply_settings(u, none, errbuf, errlen)) {
		json_decref(none);
		return false;
	}
	json_decref(none);
	return true;
}

struct updates *updates_new(struct store *st, const struct config *cfg, struct http_server *http,
			    struct sps_service *sps, char *errbuf, size_t errlen)
{
	struct updates *u = calloc(1, sizeof(*u));

	if (!u) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	u->st = st;
	u->cfg = cfg;
	u->http = http;
	u->sps = sps;
	u->packages_dir = util_path_join(cfg->data_dir, "packages");
	u->components_dir = util_path_join(cfg->data_dir, "components");
	u->staging_dir = util_path_join(cfg->data_dir, "staging");
	u->key_path = util_path_join(cfg->data_dir, "signing.key");
	u->new_key_path = util_path_join(cfg->data_dir, "signing.key.new");
	u->pub_path = util_path_join(cfg->data_dir, "signing.pub");
	u->last = json_pack("{sn sb ss}", "time", "ok", 1, "message", "no import yet");
	if (!u->packages_dir || !u->components_dir || !u->staging_dir || !u->key_path ||
	    !u->new_key_path || !u->pub_path || !u->last) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	if (!load_settings(u, errbuf, errlen))
		goto fail;
	if (store_shared(st) && !(u->mirror = mirror_new(st, u->packages_dir, u->components_dir,
							 u->pk, sps))) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	if (util_mkdir_p(u->packages_dir, 0700) != 0 || util_mkdir_p(u->components_dir, 0700)) {
		snprintf(errbuf, errlen, "%s: %s", u->packages_dir, strerror(errno));
		goto fail;
	}
	if (!load_key(u, errbuf, errlen) || (sps && !load_pattern(u, errbuf, errlen)))
		goto fail;
	if (http_every(http, TICK_MS, tick, u) != 0) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	return u;
fail:
	updates_free(u);
	return NULL;
}

void updates_free(struct updates *u)
{
	struct waiter *w;

	if (!u)
		return;
	if (u->job) {
		pthread_join(u->thread, NULL);
		undo(u->job);
		job_free(u->job);
		store_kv_delete(u->st, IMPORTING_KEY);
		release(u);
	}
	mirror_free(u->mirror);
	while ((w = u->waiters) || (w = u->queued)) {
		if (w == u->waiters)
			u->waiters = w->next;
		else
			u->queued = w->next;
		free(w);
	}
	sodium_memzero(u->sk, sizeof(u->sk));
	free(u->source_dir);
	json_decref(u->overrides);
	json_decref(u->last);
	json_decref(u->rotations);
	free(u->key_path);
	free(u->new_key_path);
	free(u->pub_path);
	free(u->packages_dir);
	free(u->components_dir);
	free(u->staging_dir);
	free(u);
}

json_t *updates_counts(const struct updates *u)
{
	unsigned peak, now = http_downloads(u->http, &peak);

	return json_pack("{sI sI sb sO* si si sI}", "imports_ok", (json_int_t)u->imports_ok,
			 "imports_failed", (json_int_t)u->imports_failed, "importing",
			 u->job != NULL, "last_import", u->last, "downloads", (int)now,
			 "downloads_peak", (int)peak, "max_downloads",
			 (json_int_t)u->max_downloads);
}

json_t *updates_status(struct updates *u)
{
	unsigned peak, now = http_downloads(u->http, &peak);
	json_t *out = json_pack("{ss sO sb si si sI ss sI sI sI}", "source_dir",
				u->source_dir, "last_import", u->last, "importing",
				u->job != NULL, "downloads", (int)now, "downloads_peak", (int)peak,
				"max_downloads", (json_int_t)u->max_downloads, "key",
				u->pk_hex,
				"rotations", (json_int_t)json_array_size(u->rotations),
				"watch_interval", (json_int_t)u->watch_interval,
				"check_interval", (json_int_t)u->check_interval);
	json_t *list = json_array(), *packages, *p, *deltas, *entry, *history;
	int64_t v;
	size_t i;
	int c;

	if (!out || !list) {
		json_decref(out);
		json_decref(list);
		return NULL;
	}
	json_object_set_new(out, "components", list);
	for (c = 0; c < COMP_COUNT; c++) {
		packages = NULL;
		if (store_packages(u->st, comp_name(c), &packages) != SERR_OK) {
			json_decref(out);
			return NULL;
		}
		v = latest(packages);
		deltas = json_array();
		history = json_array();
		entry = json_pack("{ss ss sI so so}", "name", comp_name(c), "title",
				  comp_table()[c].title, "version", (json_int_t)v, "deltas",
				  deltas, "history", history);
		/* The versions still kept, newest first, each with its full package. */
		for (i = json_array_size(packages); i-- > 0;) {
			p = json_array_get(packages, i);
			if (json_integer_value(json_object_get(p, "base")) != 0)
				continue;
			if (json_integer_value(json_object_get(p, "version")) == v)
				json_object_set(entry, "size", json_object_get(p, "size"));
			json_array_append_new(history, json_pack(
				"{sO sO sO}", "version", json_object_get(p, "version"), "created",
				json_object_get(p, "created"), "size", json_object_get(p, "size")));
		}
		json_array_foreach(packages, i, p)
			if (json_integer_value(json_object_get(p, "base")) > 0)
				json_array_append_new(deltas, json_pack(
					"{sO sO sO}", "base", json_object_get(p, "base"), "version",
					json_object_get(p, "version"), "size",
					json_object_get(p, "size")));
		json_array_append_new(list, entry);
		json_decref(packages);
	}
	return out;
}

const char *updates_key(const struct updates *u)
{
	return u->pk_hex;
}

json_t *updates_sign(const struct updates *u, const char *text)
{
	char *env = pkg_seal(text, u->pk, u->sk);
	json_t *out = env ? json_pack("{ss sO}", "signed", env, "rotations", u->rotations) : NULL;

	free(env);
	return out;
}

/* Signs every package's manifest anew with pk/sk: returns a new object
 * payload file -> envelope, or NULL (a message in errbuf). */
static json_t *reseal_all(struct updates *u, const unsigned char pk[PKG_PK_BYTES],
			  const unsigned char sk[PKG_SK_BYTES], char *errbuf, size_t errlen)
{
	json_t *out = json_object(), *packages = NULL, *p, *env;
	const char *manifest, *text;
	char *sealed;
	size_t i;
	int c;

	for (c = 0; c < COMP_COUNT && out; c++) {
		if (store_packages(u->st, comp_name(c), &packages) != SERR_OK) {
			snprintf(errbuf, errlen, "database: the package table is unreadable");
			goto fail;
		}
		json_array_foreach(packages, i, p) {
			text = json_string_value(json_object_get(p, "envelope"));
			env = json_loads(text, 0, NULL);
			manifest = json_string_value(json_object_get(env, "manifest"));
			sealed = manifest ? pkg_seal(manifest, pk, sk) : NULL;
			json_decref(env);
			if (!sealed || json_object_set_new(out, json_string_value(json_object_get(
				p, "file")), json_string(sealed)) != 0) {
				snprintf(errbuf, errlen, "package %s: cannot sign it anew",
					 json_string_value(json_object_get(p, "file")));
				free(sealed);
				goto fail;
			}
			free(sealed);
		}
		json_decref(packages);
		packages = NULL;
	}
	if (!out)
		snprintf(errbuf, errlen, "out of memory");
	return out;
fail:
	json_decref(packages);
	json_decref(out);
	return NULL;
}

void updates_rotate_key(struct updates *u, struct http_req *req, const char *who)
{
	unsigned char pk[PKG_PK_BYTES], sk[PKG_SK_BYTES];
	char msg[512], old_hex[sizeof(u->pk_hex)], *record = NULL, *chain_text = NULL;
	json_t *chain = NULL, *envelopes = NULL;

	if (u->job) {
		http_respond_error(req, 409, "an import is running; rotate the key once it ends");
		return;
	}
	pkg_keygen(pk, sk);
	record = pkg_rotation(pk, u->sk);
	chain = json_copy(u->rotations);
	if (!record || !chain || json_array_append_new(chain, json_string(record)) != 0 ||
	    !(chain_text = json_dumps(chain, JSON_COMPACT))) {
		http_respond_error(req, 500, "out of memory");
		goto out;
	}
	envelopes = reseal_all(u, pk, sk, msg, sizeof(msg));
	if (!envelopes) {
		http_respond_error(req, 500, "%s", msg);
		goto out;
	}
	/* The new key is on disk before the store commits to it (load_key()
	 * finishes a rotation cut off after the commit). */
	if (!write_key(u->new_key_path, sk)) {
		http_respond_error(req, 500, "%s: %s", u->new_key_path, strerror(errno));
		goto out;
	}
	if (store_package_reseal(u->st, envelopes, ROTATIONS_KEY, chain_text, msg,
				 sizeof(msg)) != SERR_OK) {
		unlink(u->new_key_path);
		http_respond_error(req, 500, "%s", msg);
		goto out;
	}
	if (rename(u->new_key_path, u->key_path) != 0)
		log_msg(LOG_LVL_ERROR, "%s: %s; the rotation is finished at the next start",
			u->key_path, strerror(errno));
	snprintf(old_hex, sizeof(old_hex), "%s", u->pk_hex);
	json_decref(u->rotations);
	u->rotations = chain;
	chain = NULL;
	use_key(u, pk, sk);
	store_eventf(u->st, "system", 0, "%s rotated the package signing key from %s to %s; "
		     "%zu packages signed anew", who, old_hex, u->pk_hex,
		     json_object_size(envelopes));
	http_respond_json(req, 200, json_pack("{ss ss sI sI}", "key", u->pk_hex, "previous",
					      old_hex, "rotations",
					      (json_int_t)json_array_size(u->rotations), "packages",
					      (json_int_t)json_object_size(envelopes)));
out:
	sodium_memzero(sk, sizeof(sk));
	json_decref(envelopes);
	json_decref(chain);
	free(chain_text);
	free(record);
}

/* Appends package p to steps as {"envelope", "file", "size"}. */
static void add_step(json_t *steps, const json_t *p)
{
	json_array_append_new(steps, json_pack("{sO sO sO}", "envelope",
					       json_object_get(p, "envelope"), "file",
					       json_object_get(p, "file"), "size",
					       json_object_get(p, "size")));
}

void updates_plan(struct updates *u, struct http_req *req, const char *component, int64_t have,
		  bool full)
{
	json_t *packages = NULL, *p, *steps = json_array(), *full_pkg = NULL, *answer;
	int64_t v, target, reached = have, chain_size = 0;
	size_t i;
	bool found;

	if (comp_find(component) < 0) {
		http_respond_error(req, 400, "component: no component is called '%s'", component);
		goto out;
	}
	if (!steps || store_packages(u->st, component, &packages) != SERR_OK) {
		http_respond_error(req, 500, "the package table is unreadable");
		goto out;
	}
	target = latest(packages);
	if (target == 0) {
		http_respond_error(req, 404, "%s: no version built yet (is updates.source_dir "
				   "set?)", component);
		goto out;
	}
	json_array_foreach(packages, i, p)
		if (json_integer_value(json_object_get(p, "version")) == target &&
		    json_integer_value(json_object_get(p, "base")) == 0)
			full_pkg = p;
	/* Deltas are always from one version to the next: follow them. */
	while (have > 0 && reached < target && !full) {
		found = false;
		json_array_foreach(packages, i, p) {
			v = json_integer_value(json_object_get(p, "base"));
			if (v == reached) {
				add_step(steps, p);
				chain_size += json_integer_value(json_object_get(p, "size"));
				reached = json_integer_value(json_object_get(p, "version"));
				found = true;
				break;
			}
		}
		if (!found)
			break;
	}
	/* An agent ahead of the newest holds another sequence's version (a
	 * database restored, say): the full package is its way back. */
	if (have != target && (reached != target || full || have <= 0 ||
			      chain_size >= json_integer_value(json_object_get(full_pkg,
									       "size")))) {
		json_array_clear(steps);
		add_step(steps, full_pkg);
	}
	if (have == target)
		json_array_clear(steps);
	answer = json_pack("{ss sI sO sO}", "component", component, "version",
			   (json_int_t)target, "steps", steps, "rotations", u->rotations);
	http_respond_json(req, 200, answer);
out:
	json_decref(packages);
	json_decref(steps);
}

/* Forgets d once it has no download. */
static void downloader_release(struct downloader *d)
{
	struct downloader **at;

	if (d->n)
		return;
	for (at = &d->u->downloaders; *at != d; at = &(*at)->next)
		;
	*at = d->next;
	free(d);
}

/* Called when one of d's downloads ends. */
static void downloader_done(void *arg)
{
	struct downloader *d = arg;

	d->n--;
	downloader_release(d);
}

/* Returns who's entry, made (with no download) when it has none; NULL
 * when out of memory. */
static struct downloader *downloader(struct updates *u, const char *who)
{
	struct downloader *d;
	size_t len = strlen(who) + 1;

	for (d = u->downloaders; d; d = d->next)
		if (strcmp(d->who, who) == 0)
			return d;
	d = calloc(1, sizeof(*d) + len);
	if (!d)
		return NULL;
	memcpy(d->who, who, len);
	d->u = u;
	d->next = u->downloaders;
	u->downloaders = d;
	return d;
}

/* Refuses a download past who's own cap (answered 429; logged once a
 * minute per client); returns whether it did. */
static bool refuse_downloader(struct updates *u, struct http_req *req, struct downloader *d)
{
	char after[24];
	uint64_t now = http_now_ms();

	if (d->n < (unsigned)u->cfg->max_downloads_per_client)
		return false;
	if (!d->logged_ms || now - d->logged_ms >= DOWNLOADER_LOG_MS) {
		log_msg(LOG_LVL_WARN, "updates: client %s holds %u downloads "
			"(updates.max_downloads_per_client); more are refused", d->who, d->n);
		d->logged_ms = now;
	}
	http_respond_json(req, 429, json_pack("{ss}", "error", "this client's downloads are at "
					      "updates.max_downloads_per_client; try again later"));
	snprintf(after, sizeof(after), "%lld", (long long)u->cfg->retry_after);
	http_add_header(req, "Retry-After", after);
	return true;
}

void updates_send(struct updates *u, struct http_req *req, const char *who, const char *path,
		  const char *file, int64_t size)
{
	struct downloader *d;
	struct stat sb;
	int fd;

	d = downloader(u, who);
	if (!d) {
		http_respond_error(req, 500, "out of memory");
		return;
	}
	if (refuse_downloader(u, req, d))
		return;  /* d holds downloads: kept */
	if (http_downloads(u->http, NULL) >= (unsigned)u->max_downloads) {
		http_respond_busy(req, (unsigned)u->cfg->retry_after, "%u downloads in progress; "
				  "try again later", http_downloads(u->http, NULL));
		goto out;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && u->mirror) {
		/* Another server built it; the copy here is not done yet. */
		http_respond_busy(req, (unsigned)u->cfg->retry_after, "%s is still being copied "
				  "from the database; try again later", file);
	} else if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size != size) {
		http_respond_error(req, 500, "%s: %s", file, fd < 0 ? strerror(errno) :
				   "its size differs from what was listed");
		if (fd >= 0)
			close(fd);
	} else {
		/* Counted until the download ends, sent or cut off. */
		d->n++;
		http_on_done(req, downloader_done, d);
		http_respond_file(req, fd, (uint64_t)size, (unsigned)u->cfg->download_idle);
	}
out:
	downloader_release(d);
}

void updates_download(struct updates *u, struct http_req *req, const char *who,
		      const char *file)
{
	json_t *packages = NULL, *p;
	const char *name;
	char *path = NULL;
	int64_t size = -1;
	size_t i, n;
	int c;

	for (c = 0; c < COMP_COUNT && size < 0; c++) {
		name = comp_name(c);
		n = strlen(name);
		if (strncmp(file, name, n) != 0 || file[n] != '-' ||
		    store_packages(u->st, name, &packages) != SERR_OK)
			continue;
		json_array_foreach(packages, i, p)
			if (strcmp(json_string_value(json_object_get(p, "file")), file) == 0)
				size = json_integer_value(json_object_get(p, "size"));
		json_decref(packages);
		packages = NULL;
	}
	if (size < 0 || !pack_plain_name(file)) {
		http_respond_error(req, 404, "no package file '%s'", file);
		return;
	}
	path = util_path_join(u->packages_dir, file);
	if (!path)
		http_respond_error(req, 500, "out of memory");
	else
		updates_send(u, req, who, path, file, size);
	free(path);
}
