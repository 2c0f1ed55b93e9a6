/* fuzz_agent.c -- libFuzzer target for ward-agent's handling of what its
 * server answers: the enrollment answer (and the credential it writes and
 * reads back), the event channel's deliveries (settings, update requests,
 * moves), update plans and downloads (updater.c), the smart protection
 * source list, and its own state files (settings.json, detections.json,
 * unverified.json).
 *
 * The agent's real code runs (its services, linked from ward_agent) and
 * talks HTTPS over loopback, through its own REST
 * client, to a server in this process (http.c, on a thread of its own)
 * that answers each request with the next answer of the input. The
 * input's first byte picks the scenario; then come the answers, each a
 * byte picking the status, two bytes of length (little-endian) and the
 * body. Moves are sent back to this server whatever they name, so that
 * nothing leaves the machine. */
#include <pthread.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/astate.h"
#include "agent/channel.h"
#include "agent/components.h"
#include "agent/reports.h"
#include "common/comp.h"
#include "common/http.h"
#include "common/log.h"
#include "common/rest.h"
#include "common/state.h"
#include "common/util.h"
#include "scratch.h"
#include "server/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The answers of the input being run, served in order; once they run out,
 * 404. Read by the server's thread while the agent's waits for it. */
static pthread_mutex_t script_lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *script;
static size_t script_len;

static void answer(struct http_req *req, void *arg)
{
	static const unsigned statuses[8] = { 200, 201, 204, 400, 401, 404, 500, 503 };
	struct util_buf body = { 0 };
	unsigned status = 404;
	size_t len = 0;

	(void)arg;
	pthread_mutex_lock(&script_lock);
	if (script_len >= 3) {
		status = statuses[script[0] % 8];
		len = (size_t)script[1] | (size_t)script[2] << 8;
		if (len > script_len - 3)
			len = script_len - 3;
		if (util_buf_append(&body, script + 3, len) != 0)
			abort();
		script += 3 + len;
		script_len -= 3 + len;
	}
	pthread_mutex_unlock(&script_lock);
	http_respond_data(req, status, "application/json", &body);
}

static void *serve(void *arg)
{
	loop_run(arg);
	return NULL;
}

static struct agent a = { .heartbeat_interval = 60, .long_poll = 55 };
static char url[64];

static void fail(const char *what, const char *msg)
{
	fprintf(stderr, "fuzz_agent: %s: %s\n", what, msg);
	abort();
}

/* The server (a CA and a certificate for 127.0.0.1, on a free port), and
 * an agent enrolled with it in the scratch directory, pinning a key that
 * signs nothing. */
static void setup(void)
{
	static const char *const names[] = { "127.0.0.1" };
	char *ca_key, *ca_crt, *key, *crt, msg[512], listen[32];
	struct http_server *srv = NULL;
	struct loop *loop;
	pthread_t thread;
	unsigned port, tries;

	if (!state_process_init())
		abort();
	log_set_level(LOG_LVL_ERROR);
	loop = loop_new(msg, sizeof(msg));
	if (!loop)
		fail("loop", msg);
	if (pki_make_ca("Ward fuzz CA", 30, &ca_key, &ca_crt, msg, sizeof(msg)) != SERR_OK ||
	    pki_issue_server(ca_key, ca_crt, names, 1, 30, &key, &crt, msg, sizeof(msg)) !=
	    SERR_OK)
		fail("certificate", msg);
	for (port = 20000 + randombytes_uniform(30000), tries = 0; !srv; port++, tries++) {
		if (tries == 100)
			fail("server", msg);
		snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
		srv = http_new(loop, &(struct http_config){ .listen = listen, .key_pem = key,
						      .cert_pem = crt, .max_connections = 8,
						      .max_request = 1 << 20, .idle_timeout = 60 },
			       answer, NULL, msg, sizeof(msg));
	}
	snprintf(url, sizeof(url), "https://127.0.0.1:%u", port - 1);
	if (pthread_create(&thread, NULL, serve, loop) != 0)
		abort();
	a.cfg.state_dir = (char *)scratch_dir();
	a.cfg.networks = "auto";
	/* A version the fuzzed server gives never verifies, so no worker
	 * starts; the options are there all the same. */
	a.cfg.worker_user = "";
	a.cfg.scratch_dir = (char *)scratch_dir();
	a.cfg.scan_timeout = 300;
	a.server = strdup(url);
	a.uuid = strdup("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
	a.comps = components_new();
	if (!astate_init(&a) || !a.server || !a.uuid || !a.comps ||
	    !state_write(a.ca_path, ca_crt))
		abort();
	a.up.max_wait = 0;
	a.up.rc = rest_new(url, a.ca_path);
	if (!a.up.rc || rest_set_token(a.up.rc, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee:secret") != 0)
		abort();
	free(ca_key);
	free(ca_crt);
	free(key);
	free(crt);
}

/* What the channel does with an event channel's answer: the delivery taken
 * (updating components when it asks), the next update planned, a move
 * followed (to this server). */
static void event_answer(void)
{
	json_t *ans = NULL, *settings, *move;
	json_int_t version;
	long status = 0;
	char msg[512];

	if (rest_call(a.up.rc, "POST", "/api/v1/agent/events", NULL, 30, &status, &ans, msg,
		      sizeof(msg)) != ERR_OK || status != 200 ||
	    json_unpack(ans, "{s:I, s:o}", "version", &version, "settings", &settings) != 0 ||
	    !json_is_object(settings) ||
	    !channel_take_delivery(&a, version, settings,
				   json_is_true(json_object_get(ans, "update")))) {
		json_decref(ans);
		return;
	}
	channel_plan_update(&a);
	move = json_object_get(ans, "move");
	if (json_is_object(move) && json_object_set_new(move, "server", json_string(url)) == 0)
		(void)channel_move(&a, move);
	json_decref(ans);
}

/* Reads back what an enrollment wrote, as a restart does. */
static void reload(void)
{
	char *server = a.server, *uuid = a.uuid;

	a.server = a.uuid = NULL;
	(void)astate_load(&a);
	free(a.server);
	free(a.uuid);
	free(a.token);
	a.token = NULL;
	a.server = server;
	a.uuid = uuid;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char credential[] =
		"{\"server\": \"x\", \"uuid\": \"u\", \"secret\": \"s\", \"package_key\": "
		"\"0000000000000000000000000000000000000000000000000000000000000000\"}";
	static bool ready;
	json_t *list;

	if (size < 1)
		return 0;
	if (!ready) {
		setup();
		ready = true;
	}
	pthread_mutex_lock(&script_lock);
	script = data + 1;
	script_len = size - 1;
	pthread_mutex_unlock(&script_lock);
	switch (data[0] % 5) {
	case 0:
		if (channel_enroll(&a, url, a.ca_path, "0123456789abcdef0123456789abcdef"
				   "0123456789abcdef0123456789abcdef", a.uuid, "/", NULL))
			reload();
		unlink(a.cred_path);
		break;
	case 1:
		event_answer();
		break;
	case 2:
		(void)components_update(&a, comp_table()[data[0] & 8 ? COMP_SMART_AGENT :
							COMP_VIRUS].name);
		break;
	case 3: {
		struct smart_config sc;
		const char *urls[32];

		list = components_sps_list(&a);
		smart_free(components_open_smart(&a, list, &sc, urls));
		json_decref(list);
		break;
	}
	default:
		/* The state files, as the agent reads them back. */
		pthread_mutex_lock(&script_lock);
		script_len = 0;
		pthread_mutex_unlock(&script_lock);
		if (util_write_file(a.detections_path, data + 1, size - 1, 0600) == 0)
			json_decref(reports_keep_newest(reports_load_list(a.detections_path),
							NULL));
		if (util_write_file(a.settings_path, data + 1, size - 1, 0600) == 0 &&
		    state_write(a.cred_path, credential))
			reload();
		unlink(a.cred_path);
		channel_plan_update(&a);
	}
	/* Each input starts from the same agent: no settings, no engine. */
	json_decref(a.settings);
	a.settings = NULL;
	a.version = 0;
	json_decref(a.sps_sources);
	a.sps_sources = NULL;
	components_free(a.comps);
	a.comps = components_new();
	if (!a.comps)
		abort();
	a.next_update = 0;
	util_remove_tree(a.comp_dir);
	return 0;
}
