/* backups.c -- backups on the API's request and on backup.schedule (see
 * backups.h). */
#include "server/backups.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"
#include "server/api.h"
#include "server/backup.h"

/* How often the loop looks for a finished backup and the schedule. */
#define TICK_MS 500

/* One backup under way: its thread fills in the outcome. */
struct job {
	pthread_t thread;
	atomic_bool done;
	struct backup_source src;
	char *out;                /* the archive's path */
	char *who;                /* who asked: an administrator, or "schedule" */
	struct http_req *req;     /* waiting for the outcome, or NULL */
	int64_t started;          /* seconds since the epoch */
	uint64_t started_ms;
	enum serr err;
	char msg[1024];
	json_t *manifest;
};

struct backups {
	const struct config *cfg;
	const char *config_path;
	struct store *st;
	struct http_server *http;
	struct settings_schedule schedule;
	bool scheduled;
	time_t next;              /* when the schedule falls due next */
	struct job *job;
	json_t *last;             /* the last outcome, or NULL */
	int64_t last_ok;          /* when the last one that succeeded started; 0: none */
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	if (j->src.passphrase)
		sodium_memzero((char *)j->src.passphrase, strlen(j->src.passphrase));
	free((char *)j->src.passphrase);
	free(j->out);
	free(j->who);
	json_decref(j->manifest);
	free(j);
}

static void *run(void *arg)
{
	struct job *j = arg;

	j->err = backup_create(&j->src, j->out, &j->manifest, j->msg, sizeof(j->msg));
	atomic_store(&j->done, true);
	return NULL;
}

/* The passphrase of backup.passphrase_file (its last line break
 * dropped), or NULL with why in msg. The caller wipes and frees it. */
static char *read_passphrase(const struct config *cfg, char *msg, size_t len)
{
	if (!cfg->backup_passphrase_file[0]) {
		snprintf(msg, len, "backup.passphrase_file is not set: wardd makes no backup "
			 "without a passphrase");
		return NULL;
	}
	return backup_passphrase(cfg->backup_passphrase_file, msg, len);
}

/* A parked request's connection ends before the backup does. */
static void dropped(struct http_req *req, void *arg)
{
	struct backups *b = arg;

	(void)req;
	if (b->job)
		b->job->req = NULL;
}

void backups_start(struct backups *b, struct http_req *req, const char *who)
{
	char msg[512] = "out of memory";
	time_t now = time(NULL);
	int rc = 0;
	struct job *j;

	if (b->job) {
		if (req)
			http_respond_error(req, 409, "a backup is running (asked by %s)",
					   b->job->who);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		if (req)
			http_respond_error(req, 500, "out of memory");
		return;
	}
	j->src.passphrase = read_passphrase(b->cfg, msg, sizeof(msg));
	j->out = backup_name(b->cfg->backup_dir, NULL);
	j->who = strdup(who);
	j->src.data_dir = b->cfg->data_dir;
	j->src.database = b->cfg->database;
	j->src.config_path = b->config_path;
	j->started = (int64_t)now;
	j->started_ms = http_now_ms();
	j->req = req;
	if (j->src.passphrase && j->out && j->who) {
		if (util_mkdir_p(b->cfg->backup_dir, 0700) != 0)
			rc = errno;
		else
			rc = pthread_create(&j->thread, NULL, run, j);
		if (rc)
			snprintf(msg, sizeof(msg), "%s: %s", b->cfg->backup_dir, strerror(rc));
	}
	if (!j->src.passphrase || !j->out || !j->who || rc) {
		log_msg(LOG_LVL_ERROR, "backup: %s", msg);
		store_eventf(b->st, "system", 0, "backup asked by %s not made: %s", who, msg);
		/* A backup that could not start failed too (a schedule's above
		 * all): the last outcome says so, and alerts tell it. */
		json_decref(b->last);
		b->last = json_pack("{sb sI sf ss ss}", "ok", 0, "time", (json_int_t)now,
				    "seconds", 0.0, "by", who, "error", msg);
		if (req)
			http_respond_error(req, 409, "%s", msg);
		job_free(j);
		return;
	}
	b->job = j;
	if (req)
		http_park(req, dropped, b);
	log_msg(LOG_LVL_INFO, "backup: started by %s into %s", who, j->out);
}

/* Keeps the backup.keep newest archives wardd names (ward-*.wbk) in
 * backup.dir, removing the others. */
static void prune(struct backups *b)
{
	struct dirent **list = NULL;
	struct { char *name; time_t mtime; } *found = NULL;
	struct stat sb;
	char *path;
	int i, n = scandir(b->cfg->backup_dir, &list, NULL, alphasort), k = 0, oldest, j;
	size_t len;

	found = n > 0 ? calloc((size_t)n, sizeof(*found)) : NULL;
	for (i = 0; i < n; i++) {
		len = strlen(list[i]->d_name);
		path = util_path_join(b->cfg->backup_dir, list[i]->d_name);
		if (found && path && strncmp(list[i]->d_name, "ward-", 5) == 0 && len > 9 &&
		    strcmp(list[i]->d_name + len - 4, ".wbk") == 0 && lstat(path, &sb) == 0 &&
		    S_ISREG(sb.st_mode)) {
			found[k].name = path;
			found[k++].mtime = sb.st_mtime;
			path = NULL;
		}
		free(path);
		free(list[i]);
	}
	free(list);
	/* The oldest go first, keep of them stay. */
	while (k > b->cfg->backup_keep) {
		for (oldest = 0, j = 0; j < k; j++)
			if (found[j].mtime < found[oldest].mtime ||
			    (found[j].mtime == found[oldest].mtime &&
			     strcmp(found[j].name, found[oldest].name) < 0))
				oldest = j;
		if (unlink(found[oldest].name) == 0)
			log_msg(LOG_LVL_INFO, "backup: removed %s (backup.keep %lld)",
				found[oldest].name, (long long)b->cfg->backup_keep);
		free(found[oldest].name);
		found[oldest] = found[--k];
	}
	for (j = 0; j < k; j++)
		free(found[j].name);
	free(found);
}

/* Records a finished backup: the event log, the last outcome, the
 * waiting request, the archives kept. */
static void collect(struct backups *b)
{
	struct job *j = b->job;
	double secs = (double)(http_now_ms() - j->started_ms) / 1000.0;
	json_t *answer;

	pthread_join(j->thread, NULL);
	b->job = NULL;
	json_decref(b->last);
	b->last = json_pack("{sb sI sf ss ss}", "ok", j->err == SERR_OK, "time",
			    (json_int_t)j->started, "seconds", secs, "by", j->who, "archive",
			    j->out);
	if (j->err == SERR_OK) {
		json_int_t bytes = 0;
		const json_t *p;
		size_t i;

		json_array_foreach(json_object_get(j->manifest, "parts"), i, p)
			bytes += json_integer_value(json_object_get(p, "size"));
		json_object_set_new(b->last, "bytes", json_integer(bytes));
		b->last_ok = j->started;
		store_eventf(b->st, "system", 0, "backup by %s written to %s in %.1f s (%lld "
			     "bytes of %zu parts)", j->who, j->out, secs, (long long)bytes,
			     json_array_size(json_object_get(j->manifest, "parts")));
		prune(b);
	} else {
		json_object_set_new(b->last, "error", json_string(j->msg));
		log_msg(LOG_LVL_ERROR, "backup by %s failed: %s", j->who, j->msg);
		store_eventf(b->st, "system", 0, "backup by %s failed: %s", j->who, j->msg);
	}
	if (j->req && j->err == SERR_OK) {
		answer = json_pack("{sO sO}", "archive", json_object_get(b->last, "archive"),
				   "manifest", j->manifest);
		http_respond_json(j->req, 201, answer);
	} else if (j->req) {
		http_respond_error(j->req, 500, "backup failed: %s", j->msg);
	}
	job_free(j);
}

static void tick(void *arg)
{
	struct backups *b = arg;
	time_t now;

	if (b->job && atomic_load(&b->job->done))
		collect(b);
	if (!b->scheduled)
		return;
	now = time(NULL);
	if (now < b->next)
		return;
	b->next = settings_schedule_next(&b->schedule, now);
	backups_start(b, NULL, "schedule");
}

struct backups *backups_new(const struct config *cfg, const char *config_path,
			    struct store *st, struct http_server *http)
{
	struct backups *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->cfg = cfg;
	b->config_path = config_path;
	b->st = st;
	b->http = http;
	b->scheduled = cfg->backup_schedule[0] &&
		       settings_schedule_parse(cfg->backup_schedule, &b->schedule);
	if (b->scheduled)
		b->next = settings_schedule_next(&b->schedule, time(NULL));
	if (http_every(http, TICK_MS, tick, b) != 0) {
		free(b);
		return NULL;
	}
	return b;
}

void backups_free(struct backups *b)
{
	if (!b)
		return;
	if (b->job) {
		pthread_join(b->job->thread, NULL);
		if (b->job->req)
			http_respond_error(b->job->req, 503, "wardd is stopping");
		job_free(b->job);
	}
	json_decref(b->last);
	free(b);
}

json_t *backups_status(const struct backups *b)
{
	json_t *out = json_pack("{ss ss* sI sb so sO* so}", "dir", b->cfg->backup_dir,
				"schedule", b->cfg->backup_schedule[0] ? b->cfg->backup_schedule :
				NULL, "keep", (json_int_t)b->cfg->backup_keep, "running",
				b->job != NULL, "next", b->scheduled ?
				json_integer((json_int_t)b->next) : json_null(), "last", b->last,
				"last_success", b->last_ok ? json_integer((json_int_t)b->last_ok) :
				json_null());
	json_t *archives = json_array();
	struct dirent **list = NULL;
	struct stat sb;
	char *path;
	int i, n = scandir(b->cfg->backup_dir, &list, NULL, alphasort);
	size_t len;

	/* Newest first: names sort by their time. */
	for (i = n - 1; i >= 0; i--) {
		len = strlen(list[i]->d_name);
		path = util_path_join(b->cfg->backup_dir, list[i]->d_name);
		if (archives && path && len > 4 && strcmp(list[i]->d_name + len - 4, ".wbk") == 0 &&
		    lstat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			json_array_append_new(archives, json_pack("{ss sI sI}", "name",
					      list[i]->d_name, "size", (json_int_t)sb.st_size,
					      "time", (json_int_t)sb.st_mtime));
		free(path);
		free(list[i]);
	}
	free(list);
	if (!out || !archives || json_object_set_new(out, "archives", archives) != 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

void backups_post(struct api_ctx *ctx, struct http_req *req, const char *who,
		  const struct api_args *args)
{
	(void)args;
	backups_start(ctx->backups, req, who);
}

void backups_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		 const struct api_args *args)
{
	json_t *out = backups_status(ctx->backups);

	(void)who;
	(void)args;
	if (!out)
		http_respond_error(req, 500, "out of memory");
	else
		http_respond_json(req, 200, out);
}
