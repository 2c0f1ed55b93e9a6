/* wardd.c -- the management server: configuration, first start (data
 * directory, CA, server certificate, first administrator, enrollment
 * token), then the HTTPS API until SIGTERM. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "server/admins.h"
#include "server/alerts.h"
#include "server/api.h"
#include "server/api_clients.h"
#include "server/api_tasks.h"
#include "server/backups.h"
#include "server/config.h"
#include "server/console.h"
#include "server/deploy.h"
#include "server/enroll.h"
#include "server/licenses.h"
#include "server/logs.h"
#include "server/maint.h"
#include "server/metrics.h"
#include "server/session.h"
#include "server/signin.h"
#include "common/http.h"
#include "server/doorbell.h"
#include "server/notify.h"
#include "server/pki.h"
#include "server/posture.h"
#include "server/rollout.h"
#include "server/store.h"
#include "server/upgrade.h"

#define CA_DAYS (20 * 365)
#define CERT_DAYS 825
struct files {
	char *ca_key, *ca_crt, *key, *crt, *db, *password, *token, *bundle;
	char *sps_ca_key, *sps_ca_crt;
};

static void usage(FILE *f)
{
	fputs("usage: wardd [--config FILE] [--debug]\n"
	      "       wardd backup | backup verify | restore ... (wardd backup --help)\n"
	      "       wardd upgrade --check [--json]   (the preflight of an upgrade)\n"
	      "  --config FILE     read settings from FILE (INI; defaults need none)\n"
	      "  --debug           log debug messages\n"
	      "  --print-defaults  print every setting at its default, as an INI file\n"
	      "  --check-config    read the configuration, say whether it is valid, and exit\n"
	      "  --version         print the version\n", f);
}

/* The name agents should use: the configured one, else this host's
 * fully qualified name, else its bare host name. */
static char *server_name(const struct config *cfg)
{
	struct addrinfo hints = { .ai_flags = AI_CANONNAME }, *res = NULL;
	char host[256];
	char *name;

	if (cfg->hostname[0])
		return strdup(cfg->hostname);
	util_host_name(host);
	if (getaddrinfo(host, NULL, &hints, &res) == 0 && res && res->ai_canonname)
		name = strdup(res->ai_canonname);
	else
		name = strdup(host);
	if (res)
		freeaddrinfo(res);
	return name;
}

static bool is_ip_literal(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Logs a warning about wardd's setup and keeps it for the overview's
 * health. */
__attribute__((format(printf, 2, 3)))
static void warn(struct api_ctx *ctx, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_msg(LOG_LVL_WARN, "%s", text);
	json_array_append_new(ctx->warnings, json_string(text));
}

/* The port of the first listen address, for the URL agents are given. */
static unsigned listen_port(const char *listen)
{
	const char *end = listen + strcspn(listen, ",");
	const char *colon = end;

	while (colon > listen && colon[-1] != ':')
		colon--;
	return (unsigned)strtoul(colon, NULL, 10);
}


/* The URLs of server.frontends (list), or [own] when it is empty: NULL,
 * with what is wrong in errbuf, for a URL that is none, one given twice,
 * or too many. The caller owns the array. */
static json_t *frontend_urls(const char *list, const char *own, char *errbuf, size_t errlen)
{
	json_t *urls = json_array();
	char url[320];
	size_t n, i;
	const char *p = list;
	json_t *u;

	while (urls && *p) {
		p += strspn(p, " \t,");
		n = strcspn(p, " \t,");
		if (n == 0)
			break;
		snprintf(url, sizeof(url), "%.*s", (int)(n < sizeof(url) ? n : sizeof(url) - 1), p);
		p += n;
		if (n >= sizeof(url) || !util_url_valid(url)) {
			util_set_msg(errbuf, errlen, "server.frontends: %.60s is no "
				     "https://HOST:PORT", url);
			goto fail;
		}
		json_array_foreach(urls, i, u)
			if (strcmp(json_string_value(u), url) == 0) {
				util_set_msg(errbuf, errlen, "server.frontends: %s is given twice",
					     url);
				goto fail;
			}
		if (json_array_size(urls) == CONFIG_MAX_FRONTENDS) {
			util_set_msg(errbuf, errlen, "server.frontends: more than %d URLs",
				     CONFIG_MAX_FRONTENDS);
			goto fail;
		}
		json_array_append_new(urls, json_string(url));
	}
	if (urls && json_array_size(urls) == 0 && own)
		json_array_append_new(urls, json_string(own));
	if (!urls)
		util_set_msg(errbuf, errlen, "out of memory");
	return urls;
fail:
	json_decref(urls);
	return NULL;
}

/* Writes a file readable by wardd's user only. */
static bool write_private(const char *path, const char *text)
{
	if (util_write_file(path, text, strlen(text), 0600) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

/* Loads the CA of key_path and crt_path into *key and *crt, making it
 * when missing. */
static bool load_ca(const char *key_path, const char *crt_path, const char *cn, char **key,
		    char **crt)
{
	char msg[256];

	*key = util_read_file(key_path, 1 << 16, NULL);
	*crt = util_read_file(crt_path, 1 << 16, NULL);
	if (*key && *crt)
		return true;
	free(*key);
	free(*crt);
	*key = *crt = NULL;
	if (pki_make_ca(cn, CA_DAYS, key, crt, msg, sizeof(msg)) != SERR_OK) {
		log_msg(LOG_LVL_ERROR, "%s: %s", crt_path, msg);
		return false;
	}
	if (!write_private(key_path, *key) || !write_private(crt_path, *crt))
		return false;
	log_msg(LOG_LVL_INFO, "made the %s %s", cn, crt_path);
	return true;
}

/* Loads the server CA and the smart protection CA (making them when
 * missing) and a server certificate that names name (issued anew when
 * missing or when the name changed). The server CA signs wardd's own
 * certificate and nothing else, so whoever trusts it for wardd (agents,
 * ward-sps, the command line) can be shown no other server; smart
 * protection servers get theirs from the other CA. */
static bool setup_tls(const struct files *f, const char *name, char **key, char **crt)
{
	const char *names[] = { name, "localhost", "127.0.0.1", "::1" };
	char *cakey = NULL, *cacrt = NULL, *spskey = NULL, *spscrt = NULL;
	char msg[256];
	bool ok = false;

	*key = *crt = NULL;
	if (!load_ca(f->ca_key, f->ca_crt, "Ward server CA", &cakey, &cacrt) ||
	    !load_ca(f->sps_ca_key, f->sps_ca_crt, "Ward smart protection CA", &spskey, &spscrt))
		goto out;
	*key = util_read_file(f->key, 1 << 16, NULL);
	*crt = util_read_file(f->crt, 1 << 16, NULL);
	if (*key && *crt && pki_verify_server(cacrt, *crt, name, msg, sizeof(msg)) == SERR_OK) {
		ok = true;
		goto out;
	}
	free(*key);
	free(*crt);
	*key = *crt = NULL;
	if (pki_issue_server(cakey, cacrt, names, 4, CERT_DAYS, key, crt, msg, sizeof(msg)) !=
	    SERR_OK) {
		log_msg(LOG_LVL_ERROR, "server certificate for %s: %s", name, msg);
		goto out;
	}
	ok = write_private(f->key, *key) && write_private(f->crt, *crt);
	if (ok)
		log_msg(LOG_LVL_INFO, "issued the server certificate for %s", name);
out:
	if (cakey)
		sodium_memzero(cakey, strlen(cakey));
	if (spskey)
		sodium_memzero(spskey, strlen(spskey));
	free(cakey);
	free(cacrt);
	free(spskey);
	free(spscrt);
	return ok;
}

/* On first start: the administrator "admin" with a random password, which
 * is written to a file only wardd's user can read, never to the log. */
static bool setup_admin(struct store *st, const struct files *f)
{
	unsigned char raw[18];
	char password[32], hash[crypto_pwhash_STRBYTES], msg[256], line[64];
	int64_t n = 0;

	if (store_admin_count(st, &n) != SERR_OK)
		return false;
	if (n > 0)
		return true;
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(password, sizeof(password), raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (crypto_pwhash_str(hash, password, strlen(password), SIGNIN_OPSLIMIT,
			      SIGNIN_MEMLIMIT) != 0) {
		log_msg(LOG_LVL_ERROR, "first administrator: out of memory hashing the password");
		return false;
	}
	snprintf(line, sizeof(line), "%s\n", password);
	sodium_memzero(password, sizeof(password));
	if (!write_private(f->password, line))
		return false;
	sodium_memzero(line, sizeof(line));
	if (store_admin_put(st, ADMINS_FIRST, hash, msg, sizeof(msg)) != SERR_OK) {
		log_msg(LOG_LVL_ERROR, "first administrator: %s", msg);
		return false;
	}
	log_msg(LOG_LVL_INFO, "first start: administrator '" ADMINS_FIRST "' created; its "
		"password is in %s until it is changed", f->password);
	return true;
}

/* On first start (or when no enrollment token is left in force): a new
 * one for agents.default_domain, in DATA_DIR with the one-file bundle
 * agents enroll with. Administrators make others through the API. */
static bool setup_enrollment(struct store *st, const struct config *cfg, const struct files *f,
			     const char *url, const char *ca)
{
	char msg[256], *text = NULL;
	int64_t n = 0, now = (int64_t)time(NULL);
	json_t *made;
	bool ok;

	if (store_token_count(st, STORE_TOKEN_ENROLL, now, &n) != SERR_OK)
		return false;
	if (n > 0)
		return true;
	made = enroll_token_new(st, url, ca, cfg->default_domain, now + cfg->bootstrap_lifetime,
				STORE_TOKEN_ENROLL, 0, msg, sizeof(msg));
	if (!made) {
		log_msg(LOG_LVL_ERROR, "enrollment token: %s", msg);
		return false;
	}
	json_object_del(made, "id");
	json_object_del(made, "domain");
	json_object_del(made, "expires");
	json_object_del(made, "max_uses");
	text = json_dumps(made, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	ok = text && write_private(f->token, json_string_value(json_object_get(made, "token"))) &&
	     write_private(f->bundle, text);
	if (ok)
		log_msg(LOG_LVL_INFO, "enrollment: token in %s, bundle for agents in %s", f->token,
			f->bundle);
	if (text)
		sodium_memzero(text, strlen(text));
	free(text);
	json_decref(made);
	return ok;
}

/* Every second: the agents' reports held are written (not while the
 * database is out of reach or silent: kept for when it answers). */
static void on_second(void *arg)
{
	struct api_ctx *ctx = arg;
	enum serr err;
	char msg[256];

	if (!doorbell_answering(ctx->bell))
		return;
	err = store_seen_flush(ctx->st, msg, sizeof(msg));
	if (err != SERR_OK && err != SERR_BUSY)
		log_msg(LOG_LVL_ERROR, "writing agents' reports: %s", msg);
}

/* The scheduled connection verification (its report is logged); the
 * server's own count of time is saved with it, limits that hold nothing
 * back any more are forgotten, and central quarantine copies no record
 * holds any more removed. */
static void on_verify(void *arg)
{
	struct api_ctx *ctx = arg;

	json_decref(api_clients_verify_all(ctx, false));
	api_quarantine_sweep(ctx);
	if (store_observed_save(ctx->st) != SERR_OK)
		log_msg(LOG_LVL_ERROR, "database: saving the server's running time failed");
	if (store_limits_prune(ctx->st, (int64_t)time(NULL)) != SERR_OK)
		log_msg(LOG_LVL_ERROR, "database: forgetting spent rate limits failed");
}

/* Every minute (or tasks.expire, when shorter): tasks whose agents have
 * not reported on them for tasks.expire fail. */
static void on_tasks(void *arg)
{
	api_tasks_expire(arg);
}

/* The daily task: verification that also removes long-inactive clients,
 * and the event log's oldest events and the removed clients kept past
 * agents.removed_keep going. */
static void on_daily(void *arg)
{
	struct api_ctx *ctx = arg;
	int64_t n = 0, now = (int64_t)time(NULL);

	json_decref(api_clients_verify_all(ctx, true));
	if (store_events_prune(ctx->st, ctx->cfg->logs_keep, now, &n) != SERR_OK)
		log_msg(LOG_LVL_ERROR, "logs: removing old events failed");
	else if (n)
		log_msg(LOG_LVL_INFO, "logs: removed %lld events older than %llds", (long long)n,
			(long long)ctx->cfg->logs_keep);
	if (store_tasks_prune(ctx->st, ctx->cfg->logs_keep, now, &n) != SERR_OK)
		log_msg(LOG_LVL_ERROR, "tasks: removing old finished tasks failed");
	if (store_removed_purge(ctx->st, ctx->cfg->removed_keep, now, &n) != SERR_OK)
		log_msg(LOG_LVL_ERROR, "clients: forgetting removed clients failed");
	else if (n)
		log_msg(LOG_LVL_INFO, "clients: forgot %lld clients removed more than %llds ago",
			(long long)n, (long long)ctx->cfg->removed_keep);
}

/* Loads the web console from server.console_dir, or by default from
 * share/ward/console beside the directory of wardd's program (bin/), as
 * in the build tree and under an installation prefix. Without it wardd
 * serves the API alone. */
static struct console *load_console(const struct config *cfg)
{
	char exe[4096], dir[4200], msg[512], *slash;
	struct console *c;
	ssize_t n;

	if (cfg->console_dir[0]) {
		snprintf(dir, sizeof(dir), "%s", cfg->console_dir);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		snprintf(dir, sizeof(dir), "%s/../share/ward/console", exe);
	}
	c = console_load(dir, msg, sizeof(msg));
	if (!c)
		log_msg(LOG_LVL_WARN, "%s: the web console is not served", msg);
	else
		log_msg(LOG_LVL_INFO, "console: %zu files from %s", console_files(c), dir);
	return c;
}

/* The files every wardd of one database shares: the CA that signs agents'
 * and servers' certificates, the smart protection servers' CA, and the
 * key that signs packages. */
static const char *const shared_files[] = { "ca.key", "ca.crt", "sps-ca.key", "sps-ca.crt",
					    "signing.key", "signing.pub" };

/* Whether the data directory holds the shared files, as a wardd joining a
 * database other wardd serve needs (made anew, they would be none the
 * agents trust); says which to copy when not. */
static bool joined(const struct config *cfg)
{
	struct util_buf missing = { 0 };
	char *path;
	size_t i;
	bool ok;

	for (i = 0; i < sizeof(shared_files) / sizeof(*shared_files); i++) {
		path = util_path_join(cfg->data_dir, shared_files[i]);
		if (!path || access(path, F_OK) != 0)
			util_buf_printf(&missing, " %s", shared_files[i]);
		free(path);
	}
	ok = missing.len == 0;
	if (!ok)
		log_msg(LOG_LVL_ERROR, "the PostgreSQL database (server.database) holds a "
			"server's data, and %s lacks what each wardd of it shares:%s; copy them "
			"from the data directory of a wardd of that database (mode 0600), or empty "
			"the database to start a new server", cfg->data_dir,
			missing.data ? missing.data : "");
	util_buf_free(&missing);
	return ok;
}

/* A database is made only on a first start, in an empty data directory:
 * a missing or empty ward.db (or PostgreSQL database) beside the
 * server's keys is a loss (a disk, a hand, a failed restore), not a new
 * server, and starting afresh would issue a new administrator password
 * and token and drop every client. */
static bool database_present(const struct config *cfg, const struct files *f)
{
	struct stat sb;
	DIR *dir;
	struct dirent *e;
	bool empty = true;
	int64_t version = 0;
	char msg[512];

	if (cfg->database[0]) {
		if (store_schema_of(f->db, &version, msg, sizeof(msg)) != SERR_OK) {
			log_msg(LOG_LVL_ERROR, "%s", msg);
			return false;
		}
		/* Another wardd's database: this one joins it with the keys
		 * that make every server of it the same to agents. */
		if (version > 0 && !joined(cfg))
			return false;
		if (version > 0)
			return true;
	} else if (stat(f->db, &sb) == 0) {
		if (sb.st_size > 0)
			return true;
		log_msg(LOG_LVL_ERROR, "%s is empty: restore the database from a backup (wardd "
			"makes a new one only in an empty data directory)", f->db);
		return false;
	}
	dir = opendir(cfg->data_dir);
	if (!dir) {
		log_msg(LOG_LVL_ERROR, "%s: %s", cfg->data_dir, strerror(errno));
		return false;
	}
	/* The lock this wardd took is no server's file. */
	while (empty && (e = readdir(dir)) != NULL)
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
			strcmp(e->d_name, "wardd.lock") == 0;
	closedir(dir);
	if (!empty)
		log_msg(LOG_LVL_ERROR, "%s is missing but %s holds a server's files: restore the "
			"database from a backup, or empty the directory to start a new server",
			cfg->database[0] ? "the PostgreSQL database (server.database)" : f->db,
			cfg->data_dir);
	return empty;
}

/* Reads metrics.token_file: its token's SHA-256 goes into ctx. */
static bool load_metrics_token(const struct config *cfg, struct api_ctx *ctx)
{
	size_t n = 0;
	char *t = util_read_file(cfg->metrics_token_file, 4096, &n);

	while (t && n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r'))
		t[--n] = '\0';
	if (!t || n < 16 || strlen(t) != n) {
		log_msg(LOG_LVL_ERROR, "metrics.token_file %s: %s", cfg->metrics_token_file,
			t ? "the token is shorter than 16 characters" : strerror(errno));
		free(t);
		return false;
	}
	crypto_hash_sha256(ctx->metrics_token_hash, (const unsigned char *)t, n);
	ctx->metrics_token = true;
	sodium_memzero(t, n);
	free(t);
	return true;
}

static char *data_path(const struct config *cfg, const char *name)
{
	return util_path_join(cfg->data_dir, name);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "debug", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "print-defaults", no_argument, NULL, 'p' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config cfg;
	struct files f = { 0 };
	struct store *st = NULL;
	struct doorbell *bell = NULL;
	struct http_server *http = NULL;
	struct loop *loop = NULL;
	struct api_ctx ctx = { 0 };
	const char *conf_path = NULL;
	char msg[512], url[300], *name = NULL, *key = NULL, *crt = NULL, *ca = NULL;
	char *sps_ca = NULL;
	int c, status = 1, lock = -1;
	bool check = false;

	if (maint_is_command(argc, argv))
		return maint_main(argc, argv);
	while ((c = getopt_long(argc, argv, "c:dVhpk", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf_path = optarg;
			break;
		case 'd':
			log_set_level(LOG_LVL_DEBUG);
			break;
		case 'V':
			printf("wardd %s\n", WARD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'p':
			config_print_defaults(stdout);
			return 0;
		case 'k':
			check = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!config_load(&cfg, conf_path, msg, sizeof(msg))) {
		log_msg(LOG_LVL_ERROR, "config: %s", msg);
		config_free(&cfg);
		return 2;
	}
	if (cfg.database[0] && strncmp(cfg.database, "postgresql://", 13) != 0 &&
	    strncmp(cfg.database, "postgres://", 11) != 0) {
		log_msg(LOG_LVL_ERROR, "config: server.database is a PostgreSQL connection URI "
			"(postgresql://...), or empty for SQLite in data_dir");
		config_free(&cfg);
		return 2;
	}
	ctx.frontends = frontend_urls(cfg.frontends, NULL, msg, sizeof(msg));
	if (!ctx.frontends) {
		log_msg(LOG_LVL_ERROR, "config: %s", msg);
		config_free(&cfg);
		return 2;
	}
	json_decref(ctx.frontends);
	ctx.frontends = NULL;
	if (check) {
		printf("%s: valid\n", conf_path ? conf_path : "defaults");
		config_free(&cfg);
		return 0;
	}
	if (sodium_init() < 0) {
		log_msg(LOG_LVL_ERROR, "libsodium could not be initialised");
		goto out;
	}
	umask(077);
	if (util_mkdir_p(cfg.data_dir, 0700) != 0) {
		log_msg(LOG_LVL_ERROR, "data directory %s: %s", cfg.data_dir, strerror(errno));
		goto out;
	}
	/* One wardd per data directory; backups and restores see it. */
	lock = maint_lock(cfg.data_dir, msg, sizeof(msg));
	if (lock < 0) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	f.ca_key = data_path(&cfg, "ca.key");
	f.ca_crt = data_path(&cfg, "ca.crt");
	f.key = data_path(&cfg, "server.key");
	f.crt = data_path(&cfg, "server.crt");
	f.db = cfg.database[0] ? strdup(cfg.database) : data_path(&cfg, "ward.db");
	f.password = data_path(&cfg, "initial-admin-password");
	f.token = data_path(&cfg, "enroll-token");
	f.bundle = data_path(&cfg, "enroll.bundle");
	f.sps_ca_key = data_path(&cfg, "sps-ca.key");
	f.sps_ca_crt = data_path(&cfg, "sps-ca.crt");
	name = server_name(&cfg);
	if (!f.ca_key || !f.ca_crt || !f.key || !f.crt || !f.db || !f.password || !f.token ||
	    !f.bundle || !f.sps_ca_key || !f.sps_ca_crt || !name) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	ctx.warnings = json_array();
	if (!ctx.warnings) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	if (is_ip_literal(name))
		warn(&ctx, "server.hostname is the bare address %s: agents enrolled to it are "
		     "stranded if the address changes; prefer a host name", name);
	if (!database_present(&cfg, &f))
		goto out;
	if (!upgrade_at_start(&cfg, conf_path, f.db, msg, sizeof(msg))) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	st = store_open(f.db, msg, sizeof(msg));
	if (!st) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	store_set_frontend(st, cfg.frontend);
	snprintf(url, sizeof(url), is_ip_literal(name) && strchr(name, ':') ?
		 "https://[%s]:%u" : "https://%s:%u", name, listen_port(cfg.listen));
	if (!setup_tls(&f, name, &key, &crt))
		goto out;
	ca = util_read_file(f.ca_crt, 1 << 16, NULL);
	sps_ca = util_read_file(f.sps_ca_crt, 1 << 16, NULL);
	if (!ca || !sps_ca) {
		log_msg(LOG_LVL_ERROR, "%s: %s", ca ? f.sps_ca_crt : f.ca_crt, strerror(errno));
		goto out;
	}
	if (pki_pin(crt, ctx.server_pin, msg, sizeof(msg)) != SERR_OK) {
		log_msg(LOG_LVL_ERROR, "%s: %s", f.crt, msg);
		goto out;
	}
	if (!setup_admin(st, &f) || !setup_enrollment(st, &cfg, &f, url, ca))
		goto out;
	ctx.st = st;
	ctx.cfg = &cfg;
	ctx.started = (int64_t)time(NULL);
	ctx.server_url = url;
	ctx.frontends = frontend_urls(cfg.frontends, url, msg, sizeof(msg));
	if (!ctx.frontends) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	ctx.server_name = name;
	ctx.ca_pem = ca;
	ctx.server_crt = crt;
	ctx.sps_ca_pem = sps_ca;
	ctx.sps_ca_key_path = f.sps_ca_key;
	ctx.sps_ca_crt_path = f.sps_ca_crt;
	ctx.console = load_console(&cfg);
	ctx.quota = logs_quota_new();
	if (!ctx.quota) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	if (!api_load_rules(&ctx)) {
		log_msg(LOG_LVL_ERROR, "database: the grouping rules or update sources are "
			"unreadable");
		goto out;
	}
	/* Before any thread starts: the loop blocks the signals it reads. */
	loop = loop_new(msg, sizeof(msg));
	if (!loop) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	http = http_new(loop, &(struct http_config){
				.listen = cfg.listen, .key_pem = key, .cert_pem = crt,
				.max_connections = (unsigned)cfg.max_connections,
				.admin_reserve = (unsigned)cfg.admin_reserve,
				.privileged = api_privileged,
				.headers = api_headers,
				.max_per_address = (unsigned)cfg.max_per_address,
				.max_request = (size_t)cfg.max_request,
				.idle_timeout = (unsigned)cfg.long_poll + 30,
				.header_timeout = (unsigned)cfg.header_timeout,
				.body_timeout = (unsigned)cfg.body_timeout },
			api_handle, &ctx, msg, sizeof(msg));
	if (!http) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	ctx.password_file = f.password;
	ctx.signin = signin_new(&(struct signin_config){
					.workers = (unsigned)cfg.signin_workers,
					.queue = (unsigned)cfg.signin_queue }, loop);
	if (!ctx.signin) {
		log_msg(LOG_LVL_ERROR, "cannot start the threads that verify passwords");
		goto out;
	}
	ctx.notify = notify_new(st, &cfg, http);
	bell = ctx.notify ? doorbell_new(loop, st, f.db, cfg.frontend, ctx.notify, msg,
					 sizeof(msg)) : NULL;
	ctx.bell = bell;
	if (ctx.notify && !bell && msg[0]) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	if (cfg.sps_enabled &&
	    !(ctx.sps = sps_service_new(&(struct sps_limits){
			.ttl = cfg.sps_ttl, .max_entries = (size_t)cfg.sps_max_answer_entries,
			.max_bytes = (size_t)cfg.sps_max_answer_bytes,
			.max_held = (size_t)cfg.sps_max_held_answers }))) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	ctx.updates = updates_new(st, &cfg, http, ctx.sps, msg, sizeof(msg));
	if (!ctx.updates) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	ctx.backups = backups_new(&cfg, conf_path, st, http);
	ctx.deploy = deploy_new(&cfg, st, http);
	ctx.http = http;
	/* libcurl (the alerts' email and webhooks) before any thread of it. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ctx.alerts = alerts_new(&ctx, http);
	ctx.licenses = licenses_new(&ctx, http, msg, sizeof(msg));
	if (!ctx.licenses) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	ctx.rollout = rollout_new(&ctx, http);
	ctx.posture = posture_new(&ctx);
	ctx.metrics = metrics_new();
	if (ctx.metrics) {
		http_on_answer(http, metrics_answered, ctx.metrics);
		if (ctx.notify)
			notify_set_metrics(ctx.notify, ctx.metrics);
	}
	if (cfg.metrics_token_file[0] && !load_metrics_token(&cfg, &ctx))
		goto out;
	if (ctx.notify) {
		notify_set_signer(ctx.notify, ctx.updates);
		notify_set_frontends(ctx.notify, ctx.frontends);
	}
	if (!ctx.notify || !ctx.backups || !ctx.deploy || !ctx.alerts || !ctx.metrics ||
	    !ctx.rollout || !ctx.posture ||
	    !loop_every(loop, 1000, on_second, &ctx) ||
	    !loop_every(loop, (uint64_t)cfg.verify_interval * 1000, on_verify, &ctx) ||
	    !loop_every(loop, (uint64_t)(cfg.tasks_expire < 60 ? cfg.tasks_expire : 60) * 1000,
			on_tasks, &ctx) ||
	    !loop_every(loop, 86400u * 1000, on_daily, &ctx)) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	api_quarantine_sweep(&ctx);
	store_eventf(st, "system", 0, "wardd %s started: %s (listening on %s), data in %s",
		     WARD_VERSION, url, cfg.listen, cfg.data_dir);
	status = loop_run(loop) == 0 ? 0 : 1;
out:
	doorbell_free(bell);
	alerts_free(ctx.alerts);
	licenses_free(ctx.licenses);
	rollout_free(ctx.rollout);
	posture_free(ctx.posture);
	backups_free(ctx.backups);
	deploy_free(ctx.deploy);
	http_free(http);
	metrics_free(ctx.metrics);
	signin_free(ctx.signin);
	updates_free(ctx.updates);
	sps_service_free(ctx.sps);
	notify_free(ctx.notify);
	console_free(ctx.console);
	logs_quota_free(ctx.quota);
	json_decref(ctx.warnings);
	json_decref(ctx.frontends);
	json_decref(ctx.rules);
	json_decref(ctx.sources);
	json_decref(ctx.sps_lists);
	store_close(st);
	loop_free(loop);
	if (key)
		sodium_memzero(key, strlen(key));
	free(key);
	free(crt);
	free(ca);
	free(sps_ca);
	free(name);
	free(f.ca_key);
	free(f.ca_crt);
	free(f.key);
	free(f.crt);
	free(f.db);
	free(f.password);
	free(f.token);
	free(f.bundle);
	free(f.sps_ca_key);
	free(f.sps_ca_crt);
	config_free(&cfg);
	if (lock >= 0)
		close(lock);
	return status;
}
