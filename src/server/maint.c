/* maint.c -- wardd backup, wardd backup verify, wardd restore, and the
 * data directory's lock (see maint.h). */
#include "server/maint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "server/backup.h"
#include "server/config.h"
#include "server/store.h"
#include "server/upgrade.h"

#define LOCK_FILE "wardd.lock"

int maint_lock(const char *data_dir, char *errbuf, size_t errlen)
{
	char *path = util_path_join(data_dir, LOCK_FILE), pid[32] = "";
	int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	ssize_t n;

	if (fd < 0) {
		util_set_msg(errbuf, errlen, "%s: %s", path ? path : data_dir, strerror(errno));
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		n = read(fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		util_set_msg(errbuf, errlen, "wardd%s%s runs on %s (%s is locked): stop it first",
			     pid[0] ? " pid " : "", pid, data_dir, path);
		close(fd);
		free(path);
		return -2;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, strlen(pid), 0) < 0)
		log_msg(LOG_LVL_WARN, "%s: %s", path, strerror(errno));
	free(path);
	return fd;
}

bool maint_is_command(int argc, char **argv)
{
	return argc > 1 && (strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "restore") == 0 ||
			    strcmp(argv[1], "upgrade") == 0);
}

static void usage(FILE *f)
{
	fputs("usage: wardd backup [--config FILE] [--passphrase-file FILE] [--out ARCHIVE]\n"
	      "       wardd backup verify [--config FILE] [--passphrase-file FILE] ARCHIVE\n"
	      "       wardd restore [--config FILE] [--passphrase-file FILE] [--force] ARCHIVE\n"
	      "       wardd upgrade --check [--config FILE] [--json]\n"
	      "  --config FILE           the server's configuration (its data_dir, backup.dir)\n"
	      "  --passphrase-file FILE  the archive's passphrase (else $WARD_BACKUP_PASSPHRASE,\n"
	      "                          else backup.passphrase_file)\n"
	      "  --out ARCHIVE           write there (default: backup.dir/ward-HOST-TIME.wbk)\n"
	      "  --force                 restore over a data directory that holds a server\n"
	      "                          (kept beside it as DATA_DIR.before-restore-TIME)\n"
	      "  --check                 run the preflight of an upgrade to this wardd: each\n"
	      "                          check and its result (exit 1 when one fails)\n"
	      "  --json                  print the preflight as JSON\n", f);
}

/* The passphrase: the file given, else $WARD_BACKUP_PASSPHRASE, else
 * backup.passphrase_file; its last line break dropped. NULL with a
 * message when there is none. The caller wipes and frees it. */
static char *passphrase(const char *file, const struct config *cfg)
{
	const char *env = getenv("WARD_BACKUP_PASSPHRASE");
	char msg[512], *p;

	if (!file && env && *env)
		return strdup(env);
	if (!file && !cfg->backup_passphrase_file[0]) {
		log_msg(LOG_LVL_ERROR, "no passphrase: give --passphrase-file, set "
			"$WARD_BACKUP_PASSPHRASE or backup.passphrase_file");
		return NULL;
	}
	p = backup_passphrase(file ? file : cfg->backup_passphrase_file, msg, sizeof(msg));
	if (!p)
		log_msg(LOG_LVL_ERROR, "%s", msg);
	return p;
}

static void wipe(char *p)
{
	if (p)
		sodium_memzero(p, strlen(p));
	free(p);
}

/* The options every command takes, parsed from argv[first]; the
 * configuration loaded. Returns 0, or the exit status to leave with. */
struct opts {
	const char *config, *pass_file, *out;
	bool force, check, json;
	int next;                 /* argv index of the first operand */
	struct config cfg;
};

static int parse(int argc, char **argv, int first, struct opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ "out", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "check", no_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char msg[512];
	int c;

	optind = first;
	while ((c = getopt_long(argc, argv, "c:p:o:fkjh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'p':
			o->pass_file = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'f':
			o->force = true;
			break;
		case 'k':
			o->check = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return 2;
		}
	}
	o->next = optind;
	if (!config_load(&o->cfg, o->config, msg, sizeof(msg))) {
		log_msg(LOG_LVL_ERROR, "config: %s", msg);
		return 2;
	}
	if (sodium_init() < 0) {
		log_msg(LOG_LVL_ERROR, "libsodium could not be initialised");
		return 1;
	}
	umask(077);
	return 0;
}

/* Prints what a manifest says of an archive. */
static void describe(const char *path, const json_t *m)
{
	const json_t *db = json_object_get(m, "database");
	json_int_t bytes = 0;
	const json_t *p;
	size_t i;

	json_array_foreach(json_object_get(m, "parts"), i, p)
		bytes += json_integer_value(json_object_get(p, "size"));
	if (json_is_number(json_object_get(db, "snapshot_seconds")))
		printf("%s: the database was copied in %.2f s\n", path,
		       json_number_value(json_object_get(db, "snapshot_seconds")));
	printf("%s: Ward %s, schema %lld, host %s, made %lld; %zu parts, %lld bytes; %lld "
	       "clients, %lld events\n", path, json_string_value(json_object_get(m,
	       "ward_version")), (long long)json_integer_value(json_object_get(m, "schema")),
	       json_string_value(json_object_get(m, "host")),
	       (long long)json_integer_value(json_object_get(m, "created")),
	       json_array_size(json_object_get(m, "parts")), (long long)bytes,
	       (long long)json_integer_value(json_object_get(db, "clients")),
	       (long long)json_integer_value(json_object_get(db, "events")));
}

static int cmd_backup(struct opts *o)
{
	char *out = NULL, *pass = passphrase(o->pass_file, &o->cfg), msg[1024];
	struct backup_source src = { .data_dir = o->cfg.data_dir, .database = o->cfg.database,
				     .config_path = o->config };
	json_t *manifest = NULL;
	int status = 1;

	if (!pass)
		return 1;
	src.passphrase = pass;
	if (o->out) {
		out = strdup(o->out);
	} else {
		out = backup_name(o->cfg.backup_dir, NULL);
		if (out && util_mkdir_p(o->cfg.backup_dir, 0700) != 0) {
			log_msg(LOG_LVL_ERROR, "%s: %s", o->cfg.backup_dir, strerror(errno));
			goto out;
		}
	}
	if (!out) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	if (backup_create(&src, out, &manifest, msg, sizeof(msg)) != SERR_OK) {
		log_msg(LOG_LVL_ERROR, "backup: %s", msg);
		goto out;
	}
	describe(out, manifest);
	status = 0;
out:
	json_decref(manifest);
	wipe(pass);
	free(out);
	return status;
}

static int cmd_verify(struct opts *o, const char *archive)
{
	char *pass = passphrase(o->pass_file, &o->cfg), msg[1024];
	json_t *manifest = NULL;
	int status = 1;

	if (!pass)
		return 1;
	if (backup_read(archive, pass, NULL, &manifest, msg, sizeof(msg)) != SERR_OK) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
	} else {
		describe(archive, manifest);
		printf("%s: every part and the database check\n", archive);
		status = 0;
	}
	json_decref(manifest);
	wipe(pass);
	return status;
}

/* Refuses an archive made by a newer Ward than this one (by version or
 * schema), naming both. */
static bool not_newer(const char *archive, const json_t *hdr)
{
	const char *v = json_string_value(json_object_get(hdr, "ward_version"));
	json_int_t schema = json_integer_value(json_object_get(hdr, "schema"));

	if (v && util_version_cmp(v, WARD_VERSION) <= 0 && schema <= store_schema_version())
		return true;
	log_msg(LOG_LVL_ERROR, "%s was made by Ward %s (database schema %lld); this is Ward %s "
		"(schema %lld), which cannot read it: restore it with Ward %s or later", archive,
		v ? v : "?", (long long)schema, WARD_VERSION, (long long)store_schema_version(),
		v ? v : "?");
	return false;
}

/* Whether dir holds anything but the lock. */
static bool holds_files(const char *dir)
{
	struct dirent **list = NULL;
	int i, n = scandir(dir, &list, NULL, NULL), found = 0;

	for (i = 0; i < n; i++) {
		const char *e = list[i]->d_name;

		if (strcmp(e, ".") && strcmp(e, "..") && strcmp(e, LOCK_FILE))
			found = 1;
		free(list[i]);
	}
	free(list);
	return found;
}

/* Where the archive's configuration goes: the --config file when it does
 * not exist, else beside it (or beside the data directory) with a
 * suffix, for the administrator to compare. */
static void restore_config(const struct opts *o, const char *from, const char *stamp)
{
	char *parent = strdup(o->cfg.data_dir), *slash = parent ? strrchr(parent, '/') : NULL;
	char *to = NULL, *text;
	size_t n = 0;

	if (access(from, F_OK) != 0)
		goto out;
	if (slash)
		*slash = '\0';
	if (o->config && access(o->config, F_OK) != 0)
		to = strdup(o->config);
	else if (o->config)
		to = util_printf("%s.restored-%s", o->config, stamp);
	else
		to = util_printf("%s/wardd.ini.restored-%s", slash && parent[0] ? parent : ".",
				 stamp);
	text = to ? util_read_file(from, 1 << 20, &n) : NULL;
	if (text && util_replace_file(to, text, n, 0600) == 0)
		printf("the archive's configuration is in %s%s\n", to, o->config &&
		       strcmp(to, o->config) == 0 ? "" : ": compare it with the one in use");
	else
		log_msg(LOG_LVL_WARN, "writing the archive's configuration to %s: %s",
			to ? to : "?", strerror(errno));
	free(text);
out:
	free(to);
	free(parent);
}

/* Puts the unpacked data directory at data_dir: exchanged with the one
 * there (kept as data_dir.before-restore-STAMP) in one step, so no wardd
 * ever sees neither. */
static bool swap_in(const char *unpacked, const char *data_dir, const char *stamp)
{
	char *kept = util_printf("%s.before-restore-%s", data_dir, stamp);
	struct stat sb;
	bool ok = false;

	if (!kept)
		return false;
	if (stat(data_dir, &sb) != 0) {
		ok = rename(unpacked, data_dir) == 0;
	} else if (renameat2(AT_FDCWD, unpacked, AT_FDCWD, data_dir, RENAME_EXCHANGE) == 0) {
		/* unpacked now names the former one: kept when it held a server. */
		ok = true;
		if (holds_files(unpacked) && rename(unpacked, kept) == 0)
			printf("the former data directory is kept as %s\n", kept);
		else if (holds_files(unpacked))
			log_msg(LOG_LVL_WARN, "keeping the former data directory as %s: %s", kept,
				strerror(errno));
	}
	if (!ok)
		log_msg(LOG_LVL_ERROR, "%s: %s", data_dir, strerror(errno));
	free(kept);
	return ok;
}

/* Restores the database of the archive unpacked at unpacked, brought to
 * this wardd's schema: its file stays in the data directory unpacked
 * (SQLite), or its dump goes into the PostgreSQL database of
 * server.database, replacing what is there (with --force when that is a
 * server's). An archive of the one backend is not restored to the other. */
static bool restore_database(const struct opts *o, const char *unpacked)
{
	char *file = util_printf("%s/data/ward.db", unpacked), *dump = NULL, msg[1024];
	const char *target = file;
	struct store *st = NULL;
	bool pg = o->cfg.database[0] != '\0';

	dump = util_printf("%s/%s", unpacked, store_copy_part("postgresql://"));
	if (!file || !dump) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	if (pg != (access(dump, F_OK) == 0)) {
		log_msg(LOG_LVL_ERROR, "restore refused: the archive holds the database of a "
			"server on %s, and this one's is on %s (server.database): Ward does not "
			"move a database from one to the other", pg ? "SQLite" : "PostgreSQL",
			pg ? "PostgreSQL" : "SQLite");
		goto out;
	}
	if (pg) {
		target = o->cfg.database;
		if (store_restore(target, dump, o->force, msg, sizeof(msg)) != SERR_OK) {
			log_msg(LOG_LVL_ERROR, "restore refused: %s", msg);
			goto out;
		}
	}
	st = store_open(target, msg, sizeof(msg));
	if (!st)
		log_msg(LOG_LVL_ERROR, "restore: %s", msg);
	store_close(st);
out:
	free(file);
	free(dump);
	return st != NULL;
}

static int cmd_restore(struct opts *o, const char *archive)
{
	char *pass = NULL, *staging = NULL, *unpacked = NULL, *db = NULL, *conf = NULL, msg[1024];
	char stamp[32];
	json_t *hdr = NULL, *manifest = NULL;
	struct stat sb;
	time_t now = time(NULL);
	struct tm tm;
	int lock = -1, lock2 = -1, status = 1;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	if (backup_header(archive, &hdr, msg, sizeof(msg)) != SERR_OK) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	if (!not_newer(archive, hdr))
		goto out;
	if (stat(o->cfg.data_dir, &sb) == 0) {
		lock = maint_lock(o->cfg.data_dir, msg, sizeof(msg));
		if (lock < 0) {
			log_msg(LOG_LVL_ERROR, "restore refused: %s", msg);
			goto out;
		}
		if (holds_files(o->cfg.data_dir) && !o->force) {
			log_msg(LOG_LVL_ERROR, "restore refused: %s holds a server's files; "
				"restore over them with --force (they are kept as "
				"%s.before-restore-TIME)", o->cfg.data_dir, o->cfg.data_dir);
			goto out;
		}
	}
	pass = passphrase(o->pass_file, &o->cfg);
	if (!pass)
		goto out;
	/* Unpacked beside the data directory, on its disk. */
	staging = util_printf("%s.restore-XXXXXX", o->cfg.data_dir);
	if (!staging || !mkdtemp(staging)) {
		log_msg(LOG_LVL_ERROR, "%s: %s", staging ? staging : "restore", strerror(errno));
		goto out;
	}
	unpacked = util_printf("%s/unpacked", staging);
	if (!unpacked || backup_read(archive, pass, unpacked, &manifest, msg, sizeof(msg)) !=
	    SERR_OK) {
		log_msg(LOG_LVL_ERROR, "%s", unpacked ? msg : "out of memory");
		goto out;
	}
	/* Brought to this wardd's schema before it goes in place: a SQLite
	 * server's file in the data directory unpacked, a PostgreSQL server's
	 * dump into server.database. */
	if (!restore_database(o, unpacked))
		goto out;
	db = util_printf("%s/data", unpacked);
	lock2 = db ? maint_lock(db, msg, sizeof(msg)) : -1;
	if (lock2 < 0 || !swap_in(db, o->cfg.data_dir, stamp))
		goto out;
	conf = util_printf("%s/config/wardd.ini", unpacked);
	if (conf)
		restore_config(o, conf, stamp);
	describe(archive, manifest);
	printf("restored into %s (database schema %lld)\n", o->cfg.data_dir,
	       (long long)store_schema_version());
	status = 0;
out:
	if (staging)
		util_remove_tree(staging);
	if (lock >= 0)
		close(lock);
	if (lock2 >= 0)
		close(lock2);
	json_decref(hdr);
	json_decref(manifest);
	wipe(pass);
	free(staging);
	free(unpacked);
	free(db);
	free(conf);
	return status;
}

/* wardd upgrade --check: the preflight, beside a running wardd or not. */
static int cmd_upgrade_check(struct opts *o)
{
	char msg[512];
	int lock = maint_lock(o->cfg.data_dir, msg, sizeof(msg));
	json_t *pre = upgrade_preflight(&o->cfg, lock == -2), *c;
	char *text;
	size_t i;
	int status = pre && json_is_true(json_object_get(pre, "ok")) ? 0 : 1;

	if (lock >= 0)
		close(lock);
	if (!pre) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		return 1;
	}
	if (o->json) {
		text = json_dumps(pre, JSON_INDENT(2));
		if (text)
			printf("%s\n", text);
		free(text);
	} else {
		json_array_foreach(json_object_get(pre, "checks"), i, c)
			printf("%-5s %s: %s\n", json_string_value(json_object_get(c, "result")),
			       json_string_value(json_object_get(c, "name")),
			       json_string_value(json_object_get(c, "detail")));
		printf("%s\n", status ? "the upgrade would be refused" :
		       "the upgrade may go ahead: start this wardd on the data directory");
	}
	json_decref(pre);
	return status;
}

int maint_main(int argc, char **argv)
{
	struct opts o = { 0 };
	bool verify = argc > 2 && strcmp(argv[1], "backup") == 0 && strcmp(argv[2], "verify") == 0;
	int status = parse(argc, argv, verify ? 3 : 2, &o);

	if (status == -1) {
		status = 0;
	} else if (status == 0 && strcmp(argv[1], "upgrade") == 0) {
		status = o.check && o.next == argc ? cmd_upgrade_check(&o) : 2;
	} else if (status == 0 && strcmp(argv[1], "backup") == 0 && !verify) {
		status = o.next == argc ? cmd_backup(&o) : 2;
	} else if (status == 0) {
		status = o.next + 1 != argc ? 2 : verify ? cmd_verify(&o, argv[o.next]) :
			 cmd_restore(&o, argv[o.next]);
	} else {
		status = status == 2 ? 3 : status;   /* said already */
	}
	if (status == 2)
		usage(stderr);
	status = status == 3 ? 2 : status;
	config_free(&o.cfg);
	return status;
}
