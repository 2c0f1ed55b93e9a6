/* main.c -- ward-sps: a standalone smart protection server. It enrolls
 * with a wardd, with a token an administrator made for it (wardd issues
 * its TLS certificate from the smart protection CA, and agents trust it
 * while the administrator keeps it enabled), takes the Smart Scan Pattern
 * from it through the signed update channel, and answers hash-prefix
 * lookups over HTTPS on every address (dual-stack).
 *
 * Two threads: the HTTP loop answers lookups and swaps a new pattern in
 * between two requests; a worker checks for new patterns, puts them
 * together and loads them (seconds for a large one), and sends the
 * heartbeat, so lookups never wait on either.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/comp.h"
#include "common/http.h"
#include "common/ini.h"
#include "common/log.h"
#include "common/rest.h"
#include "common/state.h"
#include "common/updater.h"
#include "common/util.h"
#include "sps/pattern.h"
#include "sps/service.h"

struct sps_config {
	char *state_dir;
	char *listen;
	int64_t ttl;
	int64_t max_answer_entries;
	int64_t max_answer_bytes;
	int64_t max_held_answers;
	int64_t update_interval;
	int64_t max_connections;
	int64_t max_per_address;
	int64_t header_timeout;
	int64_t body_timeout;
	int64_t max_request;
};

static const struct ini_field fields[] = {
	{ "sps", "state_dir", INI_STRING, offsetof(struct sps_config, state_dir),
	  "/var/lib/ward/sps", 0, 0, "credential, TLS key and certificate, patterns" },
	{ "sps", "listen", INI_STRING, offsetof(struct sps_config, listen), "*:8444", 0, 0,
	  "addresses to listen on, comma-separated ADDR:PORT; *:PORT is dual-stack" },
	{ "sps", "ttl", INI_DURATION, offsetof(struct sps_config, ttl), "1h", 0, 7 * 86400,
	  "how long agents may keep a lookup's answers" },
	{ "sps", "max_answer_entries", INI_INT, offsetof(struct sps_config, max_answer_entries),
	  "8192", 256, 1 << 20, "entries one lookup's answer holds at most; a lookup drawing "
	  "more is answered 413 (agents then ask for fewer prefixes at once)" },
	{ "sps", "max_answer_bytes", INI_INT, offsetof(struct sps_config, max_answer_bytes),
	  "1048576", SPS_MIN_ANSWER_BYTES, 64 << 20, "bytes one lookup's answer takes at most; a "
	  "lookup drawing more is answered 413" },
	{ "sps", "max_held_answers", INI_INT, offsetof(struct sps_config, max_held_answers),
	  "67108864", 1 << 20, (int64_t)1 << 34, "bytes of answers kept for clients that have "
	  "not yet read them; past it lookups are answered 503 with Retry-After" },
	{ "sps", "update_interval", INI_DURATION, offsetof(struct sps_config, update_interval),
	  "5m", 10, 86400, "how often wardd is asked for a newer Smart Scan Pattern" },
	{ "http", "max_connections", INI_INT, offsetof(struct sps_config, max_connections),
	  "4096", 16, 1000000, "simultaneous connections; when all are taken, a new one replaces "
	  "the one waiting longest for its request; ward-sps raises its open files limit to "
	  "this + 256, or refuses to start" },
	{ "http", "max_per_address", INI_INT, offsetof(struct sps_config, max_per_address),
	  "256", 1, 1000000, "simultaneous connections from one IPv4 address or IPv6 /64 "
	  "(agents behind one NAT address share it: raise it for them)" },
	{ "http", "header_timeout", INI_DURATION, offsetof(struct sps_config, header_timeout),
	  "20s", 1, 3600, "a request's headers must be in within this long after connecting or "
	  "the last answer, however slowly they trickle in" },
	{ "http", "body_timeout", INI_DURATION, offsetof(struct sps_config, body_timeout),
	  "60s", 1, 3600, "a request's body must be in within this long after its headers" },
	{ "http", "max_request", INI_INT, offsetof(struct sps_config, max_request), "131072",
	  1024, 16 << 20, "largest request body accepted, in bytes" },
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

struct sps_daemon {
	struct sps_config cfg;
	char *cred_path, *ca_path, *key_path, *cert_path, *comp_dir;
	char *server, *token;
	int64_t heartbeat_interval;
	struct updater up;
	struct sps_service *svc;
	struct http_server *http;
	/* Shared by the loop and the worker, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct sps_pattern *ready;  /* loaded by the worker, for the loop to swap in */
	char *status;               /* the loop's last status, for the heartbeat */
	int64_t status_version;     /* the pattern version it reports */
	bool stop;
};

static void usage(FILE *f)
{
	fputs("usage: ward-sps [--config FILE] COMMAND\n"
	      "       ward-sps --print-defaults   every option at its default, as an INI file\n"
	      "       ward-sps [--config FILE] --check-config   whether FILE is valid\n\n"
	      "commands:\n"
	      "  enroll --bundle FILE --name NAME...  enroll with the wardd the bundle names\n"
	      "                                      (ward sps token --json makes one);\n"
	      "                                      NAME: a host name or address agents reach\n"
	      "                                      this server by (its certificate's names)\n"
	      "  run                                 serve lookups; keep the pattern current\n"
	      "  status                              print the enrollment and the pattern\n",
	      f);
}

static char *state_file(const struct sps_daemon *d, const char *name)
{
	return util_path_join(d->cfg.state_dir, name);
}

static int cmd_enroll(struct sps_daemon *d, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "name", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *bundle_path = NULL, *server, *ca, *token, *secret, *key, *cert, *tls_key;
	json_t *bundle = NULL, *names = json_array(), *body = NULL, *answer = NULL, *cred = NULL;
	char uuid[37], host[256];
	int c, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "b:n:", opts, NULL)) != -1) {
		if (c == 'b') {
			bundle_path = optarg;
		} else if (c == 'n') {
			json_array_append_new(names, json_string(optarg));
		} else {
			usage(stderr);
			ret = 2;
			goto out;
		}
	}
	if (!bundle_path || json_array_size(names) == 0) {
		usage(stderr);
		ret = 2;
		goto out;
	}
	bundle = state_read_bundle(bundle_path, &server, &ca, &token);
	if (!bundle || !state_enroll_begin(d->cfg.state_dir, d->cred_path))
		goto out;
	util_host_name(host);
	util_uuid(uuid);
	if (!state_write(d->ca_path, ca))
		goto out;
	body = json_pack("{ss ss sO}", "uuid", uuid, "hostname", host, "names", names);
	answer = state_enroll(server, d->ca_path, token, "/api/v1/sps/enroll", body);
	if (!answer)
		goto out;
	if (json_unpack(answer, "{s:s, s:s, s:s, s:s}", "secret", &secret, "package_key", &key,
			"certificate", &cert, "key", &tls_key) != 0) {
		log_msg(LOG_LVL_ERROR, "enroll: the server's answer lacks the secret, the package "
			"key or the TLS certificate");
		goto out;
	}
	/* The TLS key and certificate before the credential: a credential
	 * alone would be an enrollment that cannot serve. */
	cred = json_pack("{ss ss ss ss sO}", "server", server, "uuid", uuid, "secret", secret,
			 "package_key", key, "heartbeat_interval",
			 json_object_get(answer, "heartbeat_interval"));
	if (!cred || !state_write(d->key_path, tls_key) || !state_write(d->cert_path, cert) ||
	    !state_write_json(d->cred_path, cred))
		goto out;
	printf("enrolled with %s as %s\n", server, uuid);
	ret = 0;
out:
	json_decref(cred);
	json_decref(answer);
	json_decref(body);
	json_decref(bundle);
	json_decref(names);
	return ret;
}

/* Loads the credential: the server, the token and the pinned key. */
static bool load_credential(struct sps_daemon *d)
{
	json_t *cred = state_read_credential(d->cred_path, "ward-sps", &d->token);
	bool ok = false;

	if (!cred)
		return false;
	if (!updater_load_pin(&d->up, cred)) {
		log_msg(LOG_LVL_ERROR, "%s: malformed package key: enroll anew", d->cred_path);
		goto out;
	}
	d->server = strdup(json_string_value(json_object_get(cred, "server")));
	if (!d->server)
		goto out;
	d->heartbeat_interval = json_integer_value(json_object_get(cred, "heartbeat_interval"));
	if (d->heartbeat_interval <= 0)
		d->heartbeat_interval = 60;
	ok = true;
out:
	json_decref(cred);
	return ok;
}

/* Loads version of the Smart Scan Pattern installed under the state
 * directory; NULL when it does not load (logged). */
static struct sps_pattern *load_version(struct sps_daemon *d, int64_t version)
{
	char dir[PATH_MAX], msg[512], *path;
	struct sps_pattern *p;

	updater_path(d->comp_dir, comp_table()[COMP_SMART].name, version, dir, sizeof(dir));
	path = util_path_join(dir, COMP_HASHES_FILE);
	p = path ? sps_pattern_load(path, version, msg, sizeof(msg)) : NULL;
	if (!p)
		log_msg(LOG_LVL_ERROR, "Smart Scan Pattern version %lld: %s", (long long)version,
			path ? msg : "out of memory");
	free(path);
	return p;
}

/* Brings the pattern up to date: a new version is put together, loaded,
 * and only then made current and handed to the loop. */
static void update_pattern(struct sps_daemon *d)
{
	const char *name = comp_table()[COMP_SMART].name;
	struct sps_pattern *p;
	char msg[1024];
	int64_t staged = 0;
	enum err err;

	err = updater_fetch(&d->up, name, &staged, msg, sizeof(msg));
	if (d->up.rotated)
		updater_store_pin(&d->up, d->cred_path);
	if (err == ERR_NONE || (err == ERR_OK && !staged))
		return;
	if (err != ERR_OK) {
		log_msg(LOG_LVL_WARN, "update: %s", msg);
		return;
	}
	p = load_version(d, staged);
	if (!p) {
		updater_discard(&d->up, name, staged);
		return;
	}
	if (updater_commit(&d->up, name, staged) != 0) {
		log_msg(LOG_LVL_ERROR, "update: %s: %s", name, strerror(errno));
		sps_pattern_free(p);
		return;
	}
	pthread_mutex_lock(&d->lock);
	sps_pattern_free(d->ready);
	d->ready = p;
	pthread_mutex_unlock(&d->lock);
}

/* Sends the loop's last status to wardd. */
static void send_heartbeat(struct sps_daemon *d)
{
	json_t *body = NULL, *answer = NULL;
	char msg[512];
	long status = 0;

	pthread_mutex_lock(&d->lock);
	if (d->status)
		body = json_loads(d->status, 0, NULL);
	pthread_mutex_unlock(&d->lock);
	if (!body)
		return;
	if (rest_call(d->up.rc, "POST", "/api/v1/sps/heartbeat", body, 30, &status, &answer, msg,
		      sizeof(msg)) != ERR_OK || status != 200)
		log_msg(LOG_LVL_WARN, "heartbeat: %s", status ? "the server refused it" : msg);
	json_decref(answer);
	json_decref(body);
}

/* The worker: pattern updates every update_interval, heartbeats every
 * heartbeat interval and as soon as a new pattern is in use, until
 * stopped. */
static void *worker(void *arg)
{
	struct sps_daemon *d = arg;
	uint64_t now, next_update = 0, next_beat = 0;
	int64_t sent = -1, version;
	struct timespec until;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		now = util_now_ns() / 1000000000u;
		version = d->status_version;
		pthread_mutex_unlock(&d->lock);
		if (now >= next_update) {
			update_pattern(d);
			next_update = now + (uint64_t)d->cfg.update_interval;
		}
		if (now >= next_beat || version != sent) {
			send_heartbeat(d);
			sent = version;
			next_beat = now + (uint64_t)d->heartbeat_interval;
		}
		pthread_mutex_lock(&d->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (!d->stop)
			pthread_cond_timedwait(&d->wake, &d->lock, &until);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Loop timer: swaps in a pattern the worker loaded, and leaves the status
 * for the next heartbeat. */
static void on_tick(void *arg)
{
	struct sps_daemon *d = arg;
	struct sps_pattern *p;
	json_t *st;
	char *text;

	pthread_mutex_lock(&d->lock);
	p = d->ready;
	d->ready = NULL;
	pthread_mutex_unlock(&d->lock);
	if (p) {
		/* Logged first: once set, a query may already see the version. */
		log_msg(LOG_LVL_INFO, "Smart Scan Pattern version %lld in use, %llu entries",
			(long long)sps_pattern_version(p),
			(unsigned long long)sps_pattern_entries(p));
		sps_service_set(d->svc, p);
	}
	st = sps_service_status(d->svc);
	text = st ? json_dumps(st, JSON_COMPACT) : NULL;
	json_decref(st);
	if (!text)
		return;
	pthread_mutex_lock(&d->lock);
	free(d->status);
	d->status = text;
	d->status_version = p ? sps_pattern_version(p) : d->status_version;
	pthread_mutex_unlock(&d->lock);
}

static void handle(struct http_req *req, void *arg)
{
	struct sps_daemon *d = arg;

	if (!sps_service_handle(d->svc, req))
		http_respond_error(req, 404, "no such resource: %s", http_req_path(req));
}

static int cmd_run(struct sps_daemon *d)
{
	char *key = NULL, *cert = NULL, msg[512];
	struct loop *loop = NULL;
	pthread_t thread;
	bool started = false;
	int64_t v;
	int ret = 1;

	if (!load_credential(d))
		return 1;
	key = util_read_file(d->key_path, 1 << 16, NULL);
	cert = util_read_file(d->cert_path, 1 << 16, NULL);
	d->up.rc = rest_new(d->server, d->ca_path);
	d->svc = sps_service_new(&(struct sps_limits){
		.ttl = d->cfg.ttl, .max_entries = (size_t)d->cfg.max_answer_entries,
		.max_bytes = (size_t)d->cfg.max_answer_bytes,
		.max_held = (size_t)d->cfg.max_held_answers });
	if (!key || !cert) {
		log_msg(LOG_LVL_ERROR, "%s, %s: unreadable (enroll anew)", d->key_path,
			d->cert_path);
		goto out;
	}
	if (!d->up.rc || rest_set_token(d->up.rc, d->token) != 0 || !d->svc) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	if (util_mkdir_p(d->comp_dir, 0700) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: %s", d->comp_dir, strerror(errno));
		goto out;
	}
	/* What is installed serves at once; the worker asks for newer. */
	v = updater_installed(d->comp_dir, comp_table()[COMP_SMART].name);
	if (v)
		d->ready = load_version(d, v);
	/* Before the worker starts: the loop blocks the signals it reads. */
	loop = loop_new(msg, sizeof(msg));
	if (!loop) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	d->http = http_new(loop, &(struct http_config){
				.listen = d->cfg.listen, .key_pem = key, .cert_pem = cert,
				.max_connections = (unsigned)d->cfg.max_connections,
				.max_per_address = (unsigned)d->cfg.max_per_address,
				.max_request = (size_t)d->cfg.max_request, .idle_timeout = 60,
				.header_timeout = (unsigned)d->cfg.header_timeout,
				.body_timeout = (unsigned)d->cfg.body_timeout },
			   handle, d, msg, sizeof(msg));
	if (!d->http) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		goto out;
	}
	on_tick(d);
	if (!loop_every(loop, 500, on_tick, d) ||
	    pthread_create(&thread, NULL, worker, d) != 0) {
		log_msg(LOG_LVL_ERROR, "cannot start the worker");
		goto out;
	}
	started = true;
	log_msg(LOG_LVL_INFO, "ward-sps %s: listening on %s, patterns from %s", WARD_VERSION,
		d->cfg.listen, d->server);
	ret = loop_run(loop) == 0 ? 0 : 1;
	log_msg(LOG_LVL_INFO, "stopping");
out:
	if (started) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_cond_signal(&d->wake);
		pthread_mutex_unlock(&d->lock);
		pthread_join(thread, NULL);
	}
	http_free(d->http);
	loop_free(loop);
	sps_service_free(d->svc);
	sps_pattern_free(d->ready);
	rest_free(d->up.rc);
	if (key)
		sodium_memzero(key, strlen(key));
	free(key);
	free(cert);
	free(d->status);
	return ret;
}

static int cmd_status(struct sps_daemon *d)
{
	int64_t v;

	if (!load_credential(d))
		return 1;
	v = updater_installed(d->comp_dir, comp_table()[COMP_SMART].name);
	printf("server: %s\nlisten: %s\nSmart Scan Pattern: %s%lld\n", d->server, d->cfg.listen,
	       v ? "version " : "none yet", v ? (long long)v : 0LL);
	return 0;
}

int main(int argc, char **argv)
{
	struct sps_daemon d = { .lock = PTHREAD_MUTEX_INITIALIZER,
				.wake = PTHREAD_COND_INITIALIZER };
	int i, ret;

	i = ini_command_line(argc, argv, "ward-sps", usage, fields, NFIELDS, &d.cfg, &ret);
	if (!i)
		return ret;
	if (!state_process_init())
		return 1;
	d.cred_path = state_file(&d, "credential.json");
	d.ca_path = state_file(&d, "server-ca.crt");
	d.key_path = state_file(&d, "tls.key");
	d.cert_path = state_file(&d, "tls.crt");
	d.comp_dir = state_file(&d, "components");
	if (!d.cred_path || !d.ca_path || !d.key_path || !d.cert_path || !d.comp_dir)
		return 1;
	d.up.dir = d.comp_dir;
	d.up.max_wait = 60;
	if (strcmp(argv[i], "enroll") == 0)
		ret = cmd_enroll(&d, argc - i, argv + i);
	else if (strcmp(argv[i], "run") == 0 && i + 1 == argc)
		ret = cmd_run(&d);
	else if (strcmp(argv[i], "status") == 0 && i + 1 == argc)
		ret = cmd_status(&d);
	else {
		usage(stderr);
		ret = 2;
	}
	free(d.server);
	free(d.token);
	free(d.cred_path);
	free(d.ca_path);
	free(d.key_path);
	free(d.cert_path);
	free(d.comp_dir);
	ini_free(fields, NFIELDS, &d.cfg);
	return ret;
}
