/* fuzz_routes.c -- libFuzzer target for every request wardd and ward-sps
 * parse: the input is run through wardd's real request handler
 * (api_handle(), which also serves the integrated smart protection
 * server's routes, the same code as ward-sps's) against a real store in a
 * scratch directory, as a request made in memory (http_local_request(),
 * no socket). The input's first byte picks the route (routes[] below:
 * the operations and the smart protection lookup); up to the first newline comes the
 * query string ("a=1&b=2", not decoded), the rest is the body. Each route
 * gets the credential it asks for (an administrator's session, the
 * enrollment token, in a deployment's path too, an agent's or a smart
 * protection server's), made anew
 * whenever a request took it away (a logout, a client removed). */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http.h"
#include "common/log.h"
#include "common/ops.h"
#include "input.h"
#include "scratch.h"
#include "server/api.h"
#include "server/alerts.h"
#include "server/backups.h"
#include "server/deploy.h"
#include "server/licenses.h"
#include "server/metrics.h"
#include "server/pki.h"
#include "server/posture.h"
#include "server/rollout.h"
#include "server/logs.h"
#include "server/session.h"
#include "server/signin.h"
#include "sps/service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One kind of credential: the Authorization header that carries it. */
struct cred {
	char header[7 + 36 + 1 + 64 + 1];
	unsigned char hash[32];
	char uuid[37];
};

static struct config cfg;
static struct api_ctx ctx;
static struct http_server *srv;
static struct cred admin, enroll, sps_enroll, agent, sps, posture;

static void fail(const char *what, const char *msg)
{
	fprintf(stderr, "fuzz_routes: %s: %s\n", what, msg);
	abort();
}

/* A new bearer token in c (uuid: "UUID:" before it, for agents and smart
 * protection servers). */
static void new_token(struct cred *c, bool uuid)
{
	char tok[65];
	unsigned char raw[16];

	api_new_token(tok, c->hash);
	if (uuid) {
		randombytes_buf(raw, sizeof(raw));
		raw[6] = (raw[6] & 0x0f) | 0x40;
		raw[8] = (raw[8] & 0x3f) | 0x80;
		snprintf(c->uuid, sizeof(c->uuid),
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8],
			 raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]);
		snprintf(c->header, sizeof(c->header), "Bearer %s:%s", c->uuid, tok);
	} else {
		snprintf(c->header, sizeof(c->header), "Bearer %s", tok);
	}
}

/* Makes sure the credential route auth asks for is in force. */
static void ensure(enum ops_auth auth)
{
	int64_t now = (int64_t)time(NULL), id, domain;
	char who[128], msg[256];

	switch (auth) {
	case OPS_AUTH_ADMIN:
	case OPS_AUTH_READ:
		if (store_token_check(ctx.st, admin.hash, STORE_TOKEN_SESSION, now, 0, who,
				      sizeof(who), NULL) == SERR_OK)
			return;
		new_token(&admin, false);
		if (store_token_put(ctx.st, admin.hash, STORE_TOKEN_SESSION, "admin",
				    now + 86400, 0, msg, sizeof(msg)) != SERR_OK)
			fail("session", msg);
		return;
	case OPS_AUTH_ENROLL:
	case OPS_AUTH_DEPLOY:
		if (store_token_check(ctx.st, enroll.hash, STORE_TOKEN_ENROLL, now, 0, who,
				      sizeof(who), NULL) == SERR_OK)
			return;
		new_token(&enroll, false);
		if (store_token_put(ctx.st, enroll.hash, STORE_TOKEN_ENROLL, "/", now + 86400, 0,
				    msg, sizeof(msg)) != SERR_OK)
			fail("enrollment token", msg);
		return;
	case OPS_AUTH_POSTURE:
		if (store_token_check(ctx.st, posture.hash, STORE_TOKEN_POSTURE, now, 0, who,
				      sizeof(who), NULL) == SERR_OK)
			return;
		new_token(&posture, false);
		if (store_token_put(ctx.st, posture.hash, STORE_TOKEN_POSTURE, "radius",
				    now + 86400, 0, msg, sizeof(msg)) != SERR_OK)
			fail("posture token", msg);
		return;
	case OPS_AUTH_SPS_ENROLL:
		/* Good for one enrollment: made again once spent. */
		if (store_token_check(ctx.st, sps_enroll.hash, STORE_TOKEN_SPS_ENROLL, now, 0, who,
				      sizeof(who), NULL) == SERR_OK)
			return;
		new_token(&sps_enroll, false);
		if (store_token_put(ctx.st, sps_enroll.hash, STORE_TOKEN_SPS_ENROLL, "admin",
				    now + 86400, 0, msg, sizeof(msg)) != SERR_OK ||
		    store_token_use(ctx.st, sps_enroll.hash, 1) != SERR_OK)
			fail("smart protection server token", msg);
		return;
	case OPS_AUTH_AGENT:
	case OPS_AUTH_COMPONENTS:
		if (agent.uuid[0] && store_agent_auth(ctx.st, agent.uuid, agent.hash, &id) ==
		    SERR_OK)
			return;
		new_token(&agent, true);
		if (store_domain_lookup(ctx.st, "/", 1, &domain, msg, sizeof(msg)) != SERR_OK ||
		    store_client_add(ctx.st, domain, agent.uuid, "fuzz-agent", agent.hash, &id,
				     msg, sizeof(msg)) != SERR_OK)
			fail("agent", msg);
		return;
	case OPS_AUTH_SPS:
		if (sps.uuid[0] && store_sps_auth(ctx.st, sps.uuid, sps.hash, &id) == SERR_OK)
			return;
		new_token(&sps, true);
		if (store_sps_add(ctx.st, sps.uuid, sps.hash, "fuzz-sps", "[\"sps.example\"]",
				  "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", now, msg,
				  sizeof(msg)) != SERR_OK)
			fail("smart protection server", msg);
		return;
	case OPS_AUTH_NONE:
		return;
	}
}

static const struct cred *cred_of(enum ops_auth auth)
{
	switch (auth) {
	case OPS_AUTH_ADMIN:
	case OPS_AUTH_READ:
		return &admin;
	case OPS_AUTH_ENROLL:
	case OPS_AUTH_DEPLOY:
		return &enroll;
	case OPS_AUTH_SPS_ENROLL:
		return &sps_enroll;
	case OPS_AUTH_POSTURE:
		return &posture;
	case OPS_AUTH_AGENT:
	case OPS_AUTH_COMPONENTS:
		return &agent;
	case OPS_AUTH_SPS:
		return &sps;
	default:
		return NULL;
	}
}

/* wardd as wardd.c sets it up, on the scratch directory, with a CA to
 * issue smart protection certificates from, an administrator whose
 * password hash is cheap to check, and a small Smart Scan Pattern. */
static void setup(void)
{
	static const char pattern[] =
		"md5:44d88612fea8a8f36de82e1278abb02f:68:block:Eicar-Test-Signature\n"
		"sha256:1234567800000000000000000000000000000000000000000000000000000000:"
		"*:allow:Clean\n";
	char conf[600], path[600], msg[512], hash[crypto_pwhash_STRBYTES];
	static char sps_key_path[600], sps_crt_path[600];
	static const char *const names[] = { "wardd.example" };
	char *ca_key = NULL, *ca_crt = NULL, *sps_key = NULL, *sps_crt = NULL, *key = NULL;
	char *crt = NULL, *text;
	struct sps_pattern *p;

	if (sodium_init() < 0)
		fail("libsodium", "cannot start");
	log_set_level(LOG_LVL_ERROR);
	scratch_path(path, sizeof(path), "source");
	if (util_mkdir_p(path, 0700) != 0)
		fail(path, "cannot make");
	/* No backup passphrase: a backup asked for is refused at once. */
	if (asprintf(&text, "[server]\ndata_dir = %s\n[updates]\nsource_dir = %s\n"
		     "[backup]\ndir = %s/backups\n[deploy]\npackage_dir = %s/deploy\n",
		     scratch_dir(), path, scratch_dir(), scratch_dir()) < 0)
		fail("config", "out of memory");
	snprintf(conf, sizeof(conf), "%s", scratch_file("wardd.conf", text, strlen(text)));
	free(text);
	if (!config_load(&cfg, conf, msg, sizeof(msg)))
		fail("config", msg);
	if (pki_make_ca("Ward fuzz CA", 30, &ca_key, &ca_crt, msg, sizeof(msg)) != SERR_OK)
		fail("CA", msg);
	scratch_file("ca.key", ca_key, strlen(ca_key));
	scratch_file("ca.crt", ca_crt, strlen(ca_crt));
	/* wardd's own certificate, and the CA smart protection servers get
	 * theirs from. */
	if (pki_issue_server(ca_key, ca_crt, names, 1, 30, &key, &crt, msg, sizeof(msg)) !=
	    SERR_OK || pki_pin(crt, ctx.server_pin, msg, sizeof(msg)) != SERR_OK ||
	    pki_make_ca("Ward fuzz smart protection CA", 30, &sps_key, &sps_crt, msg,
			sizeof(msg)) != SERR_OK)
		fail("certificates", msg);
	snprintf(sps_key_path, sizeof(sps_key_path), "%s",
		 scratch_file("sps-ca.key", sps_key, strlen(sps_key)));
	snprintf(sps_crt_path, sizeof(sps_crt_path), "%s",
		 scratch_file("sps-ca.crt", sps_crt, strlen(sps_crt)));
	free(ca_key);
	free(sps_key);
	free(key);
	scratch_path(path, sizeof(path), "ward.db");
	ctx.st = store_open(path, msg, sizeof(msg));
	if (!ctx.st)
		fail("store", msg);
	if (crypto_pwhash_str(hash, "fuzz-password", 13, crypto_pwhash_OPSLIMIT_MIN,
			      crypto_pwhash_MEMLIMIT_MIN) != 0 ||
	    store_admin_put(ctx.st, "admin", hash, msg, sizeof(msg)) != SERR_OK)
		fail("administrator", msg);
	/* Enrollments as fast as the fuzzer sends them. */
	cfg.enroll_per_token = 0;
	cfg.enroll_per_address = 0;
	ctx.cfg = &cfg;
	ctx.started = (int64_t)time(NULL);
	ctx.server_url = "https://wardd.example:8443";
	ctx.server_name = "wardd.example";
	ctx.warnings = json_array();
	ctx.ca_pem = ca_crt;
	ctx.server_crt = crt;
	ctx.sps_ca_pem = sps_crt;
	ctx.sps_ca_key_path = sps_key_path;
	ctx.sps_ca_crt_path = sps_crt_path;
	ctx.quota = logs_quota_new();
	srv = http_new_local(api_handle, &ctx, (size_t)cfg.max_request);
	if (!ctx.quota || !srv || !api_load_rules(&ctx))
		fail("setup", "out of memory");
	/* Sign-ins are parked for the workers and dropped by the seam. */
	ctx.signin = signin_new(&(struct signin_config){
				.workers = 1, .queue = (unsigned)cfg.signin_queue }, NULL);
	ctx.notify = notify_new(ctx.st, &cfg, srv);
	ctx.sps = sps_service_new(&(struct sps_limits){
			.ttl = cfg.sps_ttl, .max_entries = (size_t)cfg.sps_max_answer_entries,
			.max_bytes = (size_t)cfg.sps_max_answer_bytes,
			.max_held = (size_t)cfg.sps_max_held_answers });
	if (!ctx.signin || !ctx.notify || !ctx.sps)
		fail("setup", "out of memory");
	ctx.updates = updates_new(ctx.st, &cfg, srv, ctx.sps, msg, sizeof(msg));
	if (!ctx.updates)
		fail("updates", msg);
	notify_set_signer(ctx.notify, ctx.updates);
	ctx.backups = backups_new(&cfg, NULL, ctx.st, srv);
	ctx.deploy = deploy_new(&cfg, ctx.st, srv);
	ctx.http = srv;
	/* Its timer never runs here (no loop): nothing is sent. */
	ctx.alerts = alerts_new(&ctx, srv);
	ctx.metrics = metrics_new();
	if (!ctx.backups || !ctx.deploy || !ctx.alerts || !ctx.metrics)
		fail("backups", "out of memory");
	ctx.licenses = licenses_new(&ctx, srv, msg, sizeof(msg));
	if (!ctx.licenses)
		fail("licenses", msg);
	ctx.rollout = rollout_new(&ctx, srv);
	ctx.posture = posture_new(&ctx);
	if (!ctx.rollout || !ctx.posture)
		fail("rollout", "out of memory");
	http_on_answer(srv, metrics_answered, ctx.metrics);
	p = sps_pattern_load(scratch_file("hashes.wsp", pattern, sizeof(pattern) - 1), 7, msg,
			     sizeof(msg));
	if (!p)
		fail("pattern", msg);
	sps_service_set(ctx.sps, p);
}

/* Splits "a=1&b=2" (changed in place) into name, value pairs. */
static void split_query(char *q, const char **pairs, size_t max)
{
	size_t n = 0;
	char *amp, *eq;

	while (*q && n + 2 < max) {
		amp = strchr(q, '&');
		if (amp)
			*amp = '\0';
		eq = strchr(q, '=');
		if (eq)
			*eq = '\0';
		pairs[n++] = q;
		pairs[n++] = eq ? eq + 1 : "";
		if (!amp)
			break;
		q = amp + 1;
	}
	pairs[n] = NULL;
}

/* The routes in the order an input's first byte picks them: ops.def's
 * order when the seeds were made, then the smart protection lookup, then
 * each operation added since, at the end, so that an operation put in
 * ops.def does not send the seeds to other routes. setup() checks that
 * each operation has its place. */
#define ROUTE_LOOKUP OPS_COUNT
static const unsigned routes[] = {
	OPS_HEALTH, OPS_LOGIN, OPS_LOGOUT, OPS_SESSION, OPS_ADMIN_PASSWD, OPS_ADMIN_LIST,
	OPS_ADMIN_ADD, OPS_ADMIN_REMOVE, OPS_ADMIN_ROLE, OPS_OVERVIEW, OPS_TREE,
	OPS_DOMAIN_CREATE, OPS_DOMAIN_RENAME, OPS_DOMAIN_MOVE, OPS_DOMAIN_DELETE,
	OPS_CLIENT_LIST, OPS_CLIENT_SHOW, OPS_CLIENT_MOVE, OPS_CLIENT_VERIFY,
	OPS_CLIENT_MOVE_SERVER, OPS_CLIENT_REMOVE, OPS_CLIENT_REMOVED, OPS_CLIENT_RESTORE,
	OPS_ENROLL_TOKENS, OPS_ENROLL_TOKEN_NEW, OPS_ENROLL_TOKEN_REVOKE, OPS_EXPORT, OPS_IMPORT,
	OPS_SETTINGS_KEYS, OPS_SETTINGS_GET, OPS_SETTINGS_SET, OPS_SETTINGS_UNSET,
	OPS_NOTIFY_QUEUE, OPS_NOTIFY_PAUSE, OPS_NOTIFY_RESUME, OPS_NOTIFY_CANCEL,
	OPS_GROUPING_GET, OPS_GROUPING_SET, OPS_SOURCES_GET, OPS_SOURCES_SET, OPS_SPS_GET,
	OPS_SPS_SET, OPS_SPS_SERVERS, OPS_SPS_TOKEN_NEW, OPS_SPS_DISABLE, OPS_SPS_ENABLE,
	OPS_SPS_REVOKE, OPS_SPS_ENROLL, OPS_SPS_HEARTBEAT, OPS_METRICS, OPS_BACKUP_CREATE,
	OPS_BACKUP_LIST, OPS_DEPLOY_SCRIPT, OPS_DEPLOY_LIST, OPS_DEPLOY_CANCEL,
	OPS_DEPLOY_PACKAGES, OPS_ALERT_CHANNELS, OPS_ALERT_CHANNEL_SET, OPS_ALERT_CHANNEL_REMOVE,
	OPS_ALERT_CHANNEL_TEST, OPS_ALERT_RULES, OPS_ALERT_RULE_SET, OPS_ALERT_RULE_REMOVE,
	OPS_ALERT_LOG, OPS_LICENSE_LIST, OPS_LICENSE_ADD, OPS_LICENSE_REMOVE,
	OPS_AGENT_UPGRADE_STATUS, OPS_AGENT_UPGRADE_START, OPS_AGENT_UPGRADE_PAUSE,
	OPS_AGENT_UPGRADE_RESUME, OPS_AGENT_UPGRADE_CANCEL, OPS_UPDATE_STATUS, OPS_UPDATE_NOW,
	OPS_UPDATE_AGENTS, OPS_UPDATE_ROTATE_KEY, OPS_UPDATE_SETTINGS, OPS_UPDATE_CONFIGURE,
	OPS_SCAN_NOW, OPS_TASK_LIST, OPS_TASK_SHOW, OPS_TASK_CANCEL, OPS_QUARANTINE_LIST,
	OPS_QUARANTINE_RESTORE, OPS_QUARANTINE_DELETE, OPS_LOGS, OPS_AGENT_ENROLL,
	OPS_AGENT_EVENTS, OPS_AGENT_ACK, OPS_AGENT_HEARTBEAT, OPS_AGENT_SOURCE, OPS_AGENT_SPS,
	OPS_AGENT_UPDATE, OPS_AGENT_DOWNLOAD, OPS_AGENT_DETECTIONS, OPS_AGENT_TASKS,
	OPS_AGENT_QUARANTINE, OPS_AGENT_QUARANTINE_FILE, OPS_DEPLOY_INSTALL, OPS_DEPLOY_PACKAGE,
	OPS_DEPLOY_REPORT, ROUTE_LOOKUP, OPS_POSTURE, OPS_POSTURE_HOST, OPS_POSTURE_TOKENS,
	OPS_POSTURE_TOKEN_NEW, OPS_POSTURE_TOKEN_REVOKE
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Aborts, naming it, when an operation has no place in routes[], or two. */
static void check_routes(void)
{
	unsigned seen[OPS_COUNT + 1] = { 0 }, i;

	for (i = 0; i < NROUTES; i++)
		seen[routes[i]]++;
	for (i = 0; i <= OPS_COUNT; i++) {
		if (seen[i] != 1) {
			fprintf(stderr, "fuzz_routes: route %u (%s) is %u times in routes[]: "
				"append each new operation once\n", i, i < OPS_COUNT ?
				ops_table()[i].path : "the lookup", seen[i]);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	const struct ops_op *ops = ops_table(), *op;
	const char *headers[5] = { "Content-Type", "application/json" }, *query[17], *method;
	const char *path, *body;
	char deploy_path[200];
	const struct cred *c;
	unsigned pick, status;
	char *text, *nl;
	size_t len;

	if (size < 1)
		return 0;
	if (!ready) {
		check_routes();
		setup();
		ready = true;
	}
	pick = routes[data[0] % NROUTES];
	if (pick == ROUTE_LOOKUP) {
		method = "POST";
		path = "/sps/v1/lookup";
		c = NULL;
	} else {
		op = &ops[pick];
		/* Work that is not parsing, and grows without bound when repeated. */
		if (op->id == OPS_UPDATE_NOW || op->id == OPS_UPDATE_ROTATE_KEY)
			return 0;
		ensure(op->auth);
		method = op->method;
		path = op->path;
		c = cred_of(op->auth);
		/* A deployment's token is in its path. */
		if (op->auth == OPS_AUTH_DEPLOY) {
			snprintf(deploy_path, sizeof(deploy_path), "/deploy/%s%s", c->header + 7,
				 strchr(op->path, '}') + 1);
			path = deploy_path;
		}
	}
	text = fuzz_text(data, size);
	if (!text)
		return 0;
	nl = memchr(text, '\n', size - 1);
	if (nl)
		*nl = '\0';
	body = nl ? nl + 1 : "";
	len = nl ? size - 1 - (size_t)(nl + 1 - text) : 0;
	split_query(text, query, sizeof(query) / sizeof(*query));
	if (c) {
		headers[2] = "Authorization";
		headers[3] = c->header;
	}
	status = http_local_request(srv, method, path, headers, query, body, len);
	/* Every request is answered, or parked: an event channel, password
	 * work handed to the sign-in workers, a channel's test. */
	if (status == 0 && pick != OPS_AGENT_EVENTS && pick != OPS_LOGIN &&
	    pick != OPS_ADMIN_PASSWD && pick != OPS_ADMIN_ADD && pick != OPS_ALERT_CHANNEL_TEST)
		abort();
	free(text);
	return 0;
}
