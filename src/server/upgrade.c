/* upgrade.c -- preflight, copy, migration and rollback of a data
 * directory (see upgrade.h). */
#include "server/upgrade.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "server/backup.h"
#include "server/store.h"

#define MARKER "upgrade.json"
#define COPY "upgrade-ward.db"
#define MIB (1024 * 1024)

/* Appends a check's outcome to list. */
__attribute__((format(printf, 4, 5)))
static void check(json_t *list, const char *name, const char *result, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_array_append_new(list, json_pack("{ss ss so}", "name", name, "result", result,
					      "detail", util_json_bytes(detail)));
}

/* Bytes of the regular files under dir (its depth bounded). */
static uint64_t tree_bytes(const char *dir, int depth)
{
	struct dirent *e;
	struct stat sb;
	uint64_t sum = 0;
	char *path;
	DIR *d = depth < 16 ? opendir(dir) : NULL;

	while (d && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		path = util_path_join(dir, e->d_name);
		if (path && lstat(path, &sb) == 0)
			sum += S_ISDIR(sb.st_mode) ? tree_bytes(path, depth + 1) :
			       S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
		free(path);
	}
	if (d)
		closedir(d);
	return sum;
}

/* Bytes free to an unprivileged writer on the file system of path (or
 * of the nearest folder above it that exists). */
static uint64_t free_bytes(const char *path)
{
	char *p = strdup(path), *slash;
	struct statvfs sv;
	uint64_t n = 0;

	while (p && statvfs(p, &sv) != 0 && (slash = strrchr(p, '/')) && slash != p)
		*slash = '\0';
	if (p && statvfs(p[0] ? p : "/", &sv) == 0)
		n = (uint64_t)sv.f_bavail * sv.f_frsize;
	free(p);
	return n;
}

/* The disk check: room for the copy of the database and its migration
 * (twice the database, with its journal) in the data directory (none for
 * PostgreSQL, whose disk is its server's), and for an archive of the data
 * directory in backup.dir when one is made. */
static void check_disk(json_t *list, const struct config *cfg, const char *db)
{
	char *wal = util_printf("%s-wal", db);
	struct stat sb;
	uint64_t size = 0, need, room = free_bytes(cfg->data_dir), data, broom;

	if (!cfg->database[0] && stat(db, &sb) == 0)
		size += (uint64_t)sb.st_size;
	if (!cfg->database[0] && wal && stat(wal, &sb) == 0)
		size += (uint64_t)sb.st_size;
	free(wal);
	need = 2 * size + 16 * MIB;
	if (room < need) {
		check(list, "disk space", "fail", "%llu MiB free in %s; the copy of the database "
		      "and its migration need about %llu MiB", (unsigned long long)(room / MIB),
		      cfg->data_dir, (unsigned long long)(need / MIB));
		return;
	}
	if (cfg->backup_passphrase_file[0]) {
		data = tree_bytes(cfg->data_dir, 0) + 16 * MIB;
		broom = free_bytes(cfg->backup_dir);
		if (broom < data) {
			check(list, "disk space", "fail", "%llu MiB free for backup.dir %s; the "
			      "archive made before the upgrade needs about %llu MiB",
			      (unsigned long long)(broom / MIB), cfg->backup_dir,
			      (unsigned long long)(data / MIB));
			return;
		}
	}
	check(list, "disk space", "ok", "%llu MiB free in %s, about %llu MiB needed",
	      (unsigned long long)(room / MIB), cfg->data_dir, (unsigned long long)(need / MIB));
}

/* The agents that report a version older than UPGRADE_MIN_AGENT. */
static void check_agents(json_t *list, const json_t *agents)
{
	struct util_buf names = { 0 };
	size_t i, old = 0, unknown = 0;
	const json_t *a;
	const char *v;

	json_array_foreach(agents, i, a) {
		v = json_string_value(json_object_get(a, "version"));
		if (!v) {
			unknown++;
		} else if (util_version_cmp(v, UPGRADE_MIN_AGENT) < 0 && old++ < 10) {
			util_buf_printf(&names, "%s%s (client %lld, %s)", old > 1 ? ", " : "",
					json_string_value(json_object_get(a, "hostname")),
					(long long)json_integer_value(json_object_get(a, "id")), v);
		}
	}
	if (old)
		check(list, "agents", "warn", "%zu older than %s, which this wardd serves fully: "
		      "%.*s%s", old, UPGRADE_MIN_AGENT, (int)names.len,
		      names.data ? names.data : "", old > 10 ? ", ..." : "");
	else
		check(list, "agents", "ok", "every agent that reported a version runs %s or newer "
		      "(%zu never reported one)", UPGRADE_MIN_AGENT, unknown);
	util_buf_free(&names);
}

/* No agent deployment may be in progress: its host would install an agent
 * and enroll while the server changes under it. */
static void check_deployments(json_t *list, const json_t *open)
{
	struct util_buf hosts = { 0 };
	int64_t last = 0, deadline;
	const json_t *d;
	char when[32];
	size_t i;
	struct tm tm;
	time_t t;

	if (json_array_size(open) == 0) {
		check(list, "deployments", "ok", "none in progress");
		return;
	}
	json_array_foreach(open, i, d) {
		deadline = json_integer_value(json_object_get(d, "deadline"));
		if (deadline > last)
			last = deadline;
		if (i < 5)
			util_buf_printf(&hosts, "%s%s (%s)", i ? ", " : "",
					json_string_value(json_object_get(d, "address")),
					json_string_value(json_object_get(d, "id")));
	}
	t = (time_t)last;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
	check(list, "deployments", "fail", "%zu agent deployments are in progress: %s%s; the "
	      "last times out at %s: wait for them (ward deploy list), or cancel them (ward "
	      "deploy cancel ID)", json_array_size(open), hosts.data ? hosts.data : "",
	      json_array_size(open) > 5 ? ", ..." : "", when);
	util_buf_free(&hosts);
}

json_t *upgrade_preflight(const struct config *cfg, bool running)
{
	json_t *list = json_array(), *info = NULL, *out, *servers;
	char *numbers = NULL, *db = cfg->database[0] ? strdup(cfg->database) :
		   util_path_join(cfg->data_dir, "ward.db"), msg[1024];
	int64_t schema = 0, current = store_schema_version(), queued;
	const json_t *v;
	size_t i;
	bool ok = true;

	if (!list || !db) {
		json_decref(list);
		free(db);
		return NULL;
	}
	if (cfg->database[0] ? store_schema_of(db, &schema, msg, sizeof(msg)) == SERR_OK &&
	    schema == 0 : access(db, F_OK) != 0) {
		check(list, "database", "ok", "none in %s: this wardd makes one at its first start",
		      cfg->database[0] ? "server.database" : cfg->data_dir);
		goto out;
	}
	if (store_inspect(db, true, &info, msg, sizeof(msg)) != SERR_OK) {
		check(list, "database", "fail", "%s", msg);
		goto out;
	}
	schema = json_integer_value(json_object_get(info, "schema"));
	check(list, "database", "ok", "schema %lld, structure intact: %lld clients, %lld events",
	      (long long)schema, (long long)json_integer_value(json_object_get(info, "clients")),
	      (long long)json_integer_value(json_object_get(info, "events")));
	if (schema > current)
		check(list, "upgrade path", "fail", "schema %lld is newer than this wardd's "
		      "(%lld): it belongs to a later Ward", (long long)schema, (long long)current);
	else if (schema == current)
		check(list, "upgrade path", "ok", "schema %lld is this wardd's: nothing to migrate",
		      (long long)schema);
	else
		check(list, "upgrade path", "ok", "schema %lld to %lld: %lld steps, each in a "
		      "transaction of its own", (long long)schema, (long long)current,
		      (long long)(current - schema));
	check_disk(list, cfg, db);
	/* On PostgreSQL the wardd of other machines may serve from the same
	 * database: none may while its schema changes under them. */
	servers = json_object_get(info, "servers");
	if (json_array_size(servers)) {
		numbers = json_dumps(servers, JSON_COMPACT);
		check(list, "servers", running ? "ok" : "fail", "%zu wardd serve from this "
		      "database now (server.frontend %s): stop every one of them, then start the "
		      "new one", json_array_size(servers), numbers ? numbers : "?");
	} else if (servers) {
		check(list, "servers", "ok", "no wardd serves from this database now");
	}
	if ((running || json_array_size(servers)) &&
	    json_is_string(json_object_get(info, "importing")))
		check(list, "imports", "fail", "a signature import runs (started at %s): wait for "
		      "it to end (ward update status)",
		      json_string_value(json_object_get(info, "importing")));
	else
		check(list, "imports", "ok", "none running");
	check_deployments(list, json_object_get(info, "deploying"));
	queued = json_integer_value(json_object_get(info, "deliveries"));
	if (queued && !json_is_true(json_object_get(info, "paused")))
		check(list, "deliveries", "fail", "%lld deliveries of settings are queued: let "
		      "them go out (ward notify queue), or hold them for the upgrade (ward notify "
		      "pause)", (long long)queued);
	else if (queued)
		check(list, "deliveries", "ok", "%lld queued and held (ward notify resume once "
		      "upgraded)", (long long)queued);
	else
		check(list, "deliveries", "ok", "none queued");
	check_agents(list, json_object_get(info, "agents"));
	if (running)
		check(list, "server", "ok", "a wardd runs on %s: stop it, then start the new one, "
		      "which upgrades the database before it serves", cfg->data_dir);
out:
	json_array_foreach(list, i, v)
		if (strcmp(json_string_value(json_object_get(v, "result")), "fail") == 0)
			ok = false;
	out = json_pack("{sb so}", "ok", ok, "checks", list);
	json_decref(info);
	free(numbers);
	free(db);
	return out;
}

/* Copies the file from to the new file to, flushed to disk. */
static int copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, saved, rc = -1;
	ssize_t n = 0, w;

	if (in >= 0)
		out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0) {
		for (w = 0; w < n; ) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));

			if (k < 0 && errno != EINTR)
				goto out;
			w += k > 0 ? k : 0;
		}
	}
	if (out >= 0 && n == 0 && fsync(out) == 0)
		rc = 0;
out:
	saved = errno;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0)
		rc = -1;
	if (rc != 0 && out >= 0)
		unlink(to);
	errno = saved;
	return rc;
}

/* Flushes the folder dir, so that the renames in it last. */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* The paths of the upgrade's files in cfg's data directory. */
struct paths {
	char *db, *db_wal, *db_shm, *copy, *copy_wal, *marker;
};

static bool paths_make(struct paths *p, const struct config *cfg, const char *db)
{
	p->db = strdup(db);
	p->db_wal = util_printf("%s-wal", db);
	p->db_shm = util_printf("%s-shm", db);
	p->copy = util_path_join(cfg->data_dir, COPY);
	p->copy_wal = util_printf("%s/%s-wal", cfg->data_dir, COPY);
	p->marker = util_path_join(cfg->data_dir, MARKER);
	return p->db && p->db_wal && p->db_shm && p->copy && p->copy_wal && p->marker;
}

static void paths_free(struct paths *p)
{
	free(p->db);
	free(p->db_wal);
	free(p->db_shm);
	free(p->copy);
	free(p->copy_wal);
	free(p->marker);
}

/* Puts back the database the copy holds, in an order that a kill at any
 * point leaves to be finished by the next start (the marker goes last). */
static bool roll_back(const struct config *cfg, const struct paths *p, char *errbuf,
		      size_t errlen)
{
	if (access(p->copy, F_OK) == 0) {
		unlink(p->db_wal);
		unlink(p->db_shm);
		if (rename(p->copy, p->db) != 0) {
			util_set_msg(errbuf, errlen, "putting back %s: %s", p->copy,
				     strerror(errno));
			return false;
		}
	}
	if (access(p->copy_wal, F_OK) == 0 && rename(p->copy_wal, p->db_wal) != 0) {
		util_set_msg(errbuf, errlen, "putting back %s: %s", p->copy_wal, strerror(errno));
		return false;
	}
	sync_dir(cfg->data_dir);
	unlink(p->marker);
	sync_dir(cfg->data_dir);
	return true;
}

/* The failed checks of a preflight, in one line. */
static void failed_checks(const json_t *pre, char *out, size_t len)
{
	const json_t *c;
	size_t i, used = 0;

	out[0] = '\0';
	json_array_foreach(json_object_get(pre, "checks"), i, c)
		if (strcmp(json_string_value(json_object_get(c, "result")), "fail") == 0 &&
		    used < len)
			used += (size_t)snprintf(out + used, len - used, "%s%s: %s",
						 used ? "; " : "",
						 json_string_value(json_object_get(c, "name")),
						 json_string_value(json_object_get(c, "detail")));
}

/* The archive made before an upgrade, when a passphrase is configured. */
static bool archive_before(const struct config *cfg, const char *config_path, int64_t from,
			   char *errbuf, size_t errlen)
{
	struct backup_source src = { .data_dir = cfg->data_dir, .database = cfg->database,
				     .config_path = config_path };
	char tag[40], *pass, *out = NULL;
	bool ok = false;

	if (!cfg->backup_passphrase_file[0])
		return true;
	pass = backup_passphrase(cfg->backup_passphrase_file, errbuf, errlen);
	snprintf(tag, sizeof(tag), "schema-%lld", (long long)from);
	if (pass && util_mkdir_p(cfg->backup_dir, 0700) == 0)
		out = backup_name(cfg->backup_dir, tag);
	src.passphrase = pass;
	if (out && backup_create(&src, out, NULL, errbuf, errlen) == SERR_OK) {
		log_msg(LOG_LVL_INFO, "upgrade: the server before it is backed up in %s", out);
		ok = true;
	} else if (pass && !out) {
		util_set_msg(errbuf, errlen, "%s: %s", cfg->backup_dir, strerror(errno));
	}
	if (pass)
		sodium_memzero(pass, strlen(pass));
	free(pass);
	free(out);
	return ok;
}

bool upgrade_at_start(const struct config *cfg, const char *config_path, const char *db,
		      char *errbuf, size_t errlen)
{
	struct paths p = { 0 };
	json_t *pre = NULL, *marker = NULL;
	int64_t from, to = store_schema_version();
	struct store *st;
	char msg[2048], why[1024];
	uint64_t t0;
	bool ok = false;
	/* A PostgreSQL URI may hold a password: never in a message. */
	const char *shown = cfg->database[0] ? "the PostgreSQL database" : db;

	if (!paths_make(&p, cfg, db)) {
		util_set_msg(errbuf, errlen, "out of memory");
		goto out;
	}
	/* Killed while it upgraded: back as the old wardd left it, then on. */
	if (access(p.marker, F_OK) == 0) {
		if (!roll_back(cfg, &p, errbuf, errlen))
			goto out;
		log_msg(LOG_LVL_WARN, "upgrade: wardd stopped during an upgrade of %s: the "
			"database is back as it was before it, and is upgraded again", db);
	}
	/* The version alone: every start reads it, the checks only an upgrade
	 * runs (store_open() checks the structure once itself). */
	if ((!cfg->database[0] && access(db, F_OK) != 0) ||
	    store_schema_of(db, &from, msg, sizeof(msg)) != SERR_OK) {
		ok = true;  /* none yet, or damaged: store_open() says so */
		goto out;
	}
	if (from >= to || from == 0) {
		ok = true;  /* current, new, or newer: store_open() refuses that */
		goto out;
	}
	pre = upgrade_preflight(cfg, false);
	if (!pre || !json_is_true(json_object_get(pre, "ok"))) {
		if (pre)
			failed_checks(pre, msg, sizeof(msg));
		util_set_msg(errbuf, errlen, "the upgrade of %s from schema %lld to %lld is "
			     "refused before it starts (nothing changed): %s", shown,
			     (long long)from, (long long)to, pre ? msg : "out of memory");
		goto out;
	}
	if (!archive_before(cfg, config_path, from, why, sizeof(why))) {
		util_set_msg(errbuf, errlen, "the upgrade of %s from schema %lld is refused: the "
			     "backup before it failed (nothing changed): %s", shown,
			     (long long)from, why);
		goto out;
	}
	/* On PostgreSQL each step, its schema changes included, is one
	 * transaction: one that fails leaves the database at the step
	 * before, and the way back to the old wardd is the archive. */
	if (cfg->database[0]) {
		st = store_open(db, msg, sizeof(msg));
		if (!st)
			util_set_msg(errbuf, errlen, "the upgrade from schema %lld to %lld "
				     "failed (run the wardd you had until this is fixed; a step "
				     "that failed changed nothing): %s", (long long)from,
				     (long long)to, msg);
		store_close(st);
		ok = st != NULL;
		goto out;
	}
	/* The copy first, the marker once it is whole. */
	marker = json_pack("{sI sI sI ss}", "from", (json_int_t)from, "to", (json_int_t)to,
			   "started", (json_int_t)time(NULL), "by", WARD_VERSION);
	unlink(p.copy);
	unlink(p.copy_wal);
	if (!marker || copy_file(db, p.copy) != 0 ||
	    (access(p.db_wal, F_OK) == 0 && copy_file(p.db_wal, p.copy_wal) != 0) ||
	    util_write_json(p.marker, marker) != 0) {
		util_set_msg(errbuf, errlen, "the upgrade of %s is refused: copying the database "
			     "before it: %s (nothing changed)", db, strerror(errno));
		unlink(p.copy);
		unlink(p.copy_wal);
		unlink(p.marker);
		goto out;
	}
	sync_dir(cfg->data_dir);
	log_msg(LOG_LVL_INFO, "upgrade: %s from schema %lld to %lld (%lld steps); the database "
		"as it was is in %s until it is done", db, (long long)from, (long long)to,
		(long long)(to - from), p.copy);
	t0 = util_now_ns();
	st = store_open(db, msg, sizeof(msg));
	if (!st) {
		if (!roll_back(cfg, &p, why, sizeof(why)))
			util_set_msg(errbuf, errlen, "the upgrade of %s failed (%s), and putting "
				     "the database back failed too (%s): %s holds it as it was", db,
				     msg, why, p.copy);
		else
			util_set_msg(errbuf, errlen, "the upgrade of %s from schema %lld to %lld "
				     "failed, and the database is back as it was (run the wardd "
				     "you had until this is fixed): %s", db, (long long)from,
				     (long long)to, msg);
		goto out;
	}
	store_close(st);
	unlink(p.copy_wal);
	unlink(p.copy);
	unlink(p.marker);
	sync_dir(cfg->data_dir);
	log_msg(LOG_LVL_INFO, "upgrade: %s is at schema %lld, in %.1f s", db, (long long)to,
		(double)(util_now_ns() - t0) / 1e9);
	ok = true;
out:
	json_decref(pre);
	json_decref(marker);
	paths_free(&p);
	return ok;
}
