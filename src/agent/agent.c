/* agent.c -- ward-agent: enrolls with a wardd, then keeps an event channel
 * open to it, reports its status by heartbeat and applies the settings the
 * server sends.
 *
 * State lives in one directory (agent.state_dir): the credential, the
 * server's CA certificate and the settings in effect, each replaced
 * atomically, so the agent may be killed at any moment.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <net/if.h>
#include <signal.h>
#include <sodium.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/scan.h"
#include "agent/worker.h"
#include "common/updater.h"
#include "common/comp.h"
#include "common/ini.h"
#include "common/log.h"
#include "common/rest.h"
#include "common/settings.h"
#include "common/state.h"
#include "common/util.h"
#include "engine/engine.h"

struct agent_config {
	char *state_dir;
	char *networks;
};

static const struct ini_field fields[] = {
	{ "agent", "state_dir", INI_STRING, offsetof(struct agent_config, state_dir),
	  "/var/lib/ward/agent", 0, 0, "credential, server CA and settings in effect" },
	{ "agent", "networks", INI_STRING, offsetof(struct agent_config, networks), "auto", 0, 0,
	  "the address families this host's networks carry: auto (from its addresses), "
	  "ipv4, ipv6 or dual" },
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* The running agent's state (one thread). */
struct agent {
	struct agent_config cfg;
	char *cred_path, *ca_path, *settings_path, *comp_dir;
	char *server, *uuid, *token;   /* token = "UUID:SECRET" */
	int64_t version;
	json_t *settings;
	int64_t heartbeat_interval;
	long long_poll;
	struct updater up;
	/* The engine scans run on, loaded from the component in use, and for
	 * smart scan its smart protection state. */
	struct engine *engine;
	const char *engine_comp;
	int64_t engine_version;
	struct smart *smart;
	json_t *sps_sources;           /* the source list it was set up with */
	uint64_t last_sources;         /* when that list was last fetched (monotonic s) */
	char *unverified_path;         /* the files smart scan left unverified */
	char *detections_path;         /* detections not yet reported to the server */
	uint64_t last_rescan;          /* when they were last tried (monotonic s) */
	size_t unverified;             /* how many files are on that list */
	char update_error[1024];       /* the last update's failure; empty: none */
	time_t next_update;            /* the next scheduled update; 0: none */
};

static void usage(FILE *f)
{
	fputs("usage: ward-agent [--config FILE] COMMAND\n"
	      "       ward-agent --print-defaults   every option at its default, as an INI file\n"
	      "       ward-agent [--config FILE] --check-config   whether FILE is valid\n\n"
	      "commands:\n"
	      "  enroll --bundle FILE [--server URL]\n"
	      "                                    enroll with the server the bundle names\n"
	      "                                    (or at URL, https://HOST[:PORT])\n"
	      "  enroll --server URL --token T --ca FILE\n"
	      "  run                               serve: event channel, heartbeats, settings,\n"
	      "                                    component updates\n"
	      "  update                            update the components now (Update Now)\n"
	      "  scan PATH...                      scan files and directories with the\n"
	      "                                    component in use (smart or conventional)\n"
	      "  status                            print the enrollment, settings and components\n",
	      f);
}

static char *state_file(const struct agent *a, const char *name)
{
	return util_path_join(a->cfg.state_dir, name);
}

/* The operating system's name from /etc/os-release. */
static json_t *os_name(void)
{
	char *text = util_read_file("/etc/os-release", 1 << 16, NULL), *p, *end;
	json_t *name;

	p = text ? strstr(text, "PRETTY_NAME=") : NULL;
	if (!p) {
		free(text);
		return json_string("Linux");
	}
	p += 12;
	if (*p == '"')
		p++;
	end = p + strcspn(p, "\"\n");
	*end = '\0';
	name = json_string(p);
	free(text);
	return name;
}

/* The address of i, when it is one other hosts reach this one by: not
 * loopback, not link-local (meaningless off its link, and on every link,
 * so it would match grouping and source ranges that were never meant for
 * it), IPv4 or IPv6. Returns its family and sets *addr, else 0. */
static int network_address(const struct ifaddrs *i, const void **addr)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK))
		return 0;
	if (i->ifa_addr->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)i->ifa_addr;
		/* 169.254.0.0/16 */
		if ((ntohl(sin->sin_addr.s_addr) >> 16) == 0xa9fe)
			return 0;
		*addr = &sin->sin_addr;
		return AF_INET;
	}
	if (i->ifa_addr->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)i->ifa_addr;
		if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr))
			return 0;
		*addr = &sin6->sin6_addr;
		return AF_INET6;
	}
	return 0;
}

/* The host's addresses (network_address()) as {"ipv4": [...], "ipv6": [...]}. */
static void add_addresses(json_t *status)
{
	json_t *v4 = json_array(), *v6 = json_array();
	struct ifaddrs *ifs = NULL, *i;
	char buf[INET6_ADDRSTRLEN];
	const void *addr;
	int family;

	if (getifaddrs(&ifs) == 0) {
		for (i = ifs; i; i = i->ifa_next) {
			family = network_address(i, &addr);
			if (family && inet_ntop(family, addr, buf, sizeof(buf)))
				json_array_append_new(family == AF_INET ? v4 : v6,
						      json_string(buf));
		}
		freeifaddrs(ifs);
	}
	json_object_set_new(status, "ipv4", v4);
	json_object_set_new(status, "ipv6", v6);
}

/* The components an agent installs: never the Smart Scan Pattern, which
 * smart protection servers hold. */
static const enum comp_id agent_components[] = { COMP_VIRUS, COMP_SMART_AGENT };

/* {name: version} of the installed components. */
static json_t *installed_components(const struct agent *a)
{
	json_t *out = json_object();
	const char *name;
	int64_t v;
	size_t i;

	for (i = 0; out && i < sizeof(agent_components) / sizeof(agent_components[0]); i++) {
		name = comp_table()[agent_components[i]].name;
		v = updater_installed(a->comp_dir, name);
		if (v)
			json_object_set_new(out, name, json_integer(v));
	}
	return out;
}

/* The address family smart protection sources must be reached by:
 * agent.networks, or with "auto" the families of the host's addresses
 * (network_address()); AF_UNSPEC for both. */
static int network_family(const struct agent *a)
{
	struct ifaddrs *ifs = NULL, *i;
	bool v4 = false, v6 = false;
	const void *addr;
	int family;

	if (strcmp(a->cfg.networks, "ipv4") == 0)
		return AF_INET;
	if (strcmp(a->cfg.networks, "ipv6") == 0)
		return AF_INET6;
	if (strcmp(a->cfg.networks, "dual") == 0 || getifaddrs(&ifs) != 0)
		return AF_UNSPEC;
	for (i = ifs; i; i = i->ifa_next) {
		family = network_address(i, &addr);
		v4 |= family == AF_INET;
		v6 |= family == AF_INET6;
	}
	freeifaddrs(ifs);
	return v4 == v6 ? AF_UNSPEC : v4 ? AF_INET : AF_INET6;
}

static const char *network_name(int af)
{
	return af == AF_INET ? "ipv4" : af == AF_INET6 ? "ipv6" : "dual";
}

/* What a heartbeat reports. */
static json_t *status_report(struct agent *a)
{
	char host[256];
	json_t *s;

	util_host_name(host);
	s = json_pack("{ss so ss}", "hostname", host, "os", os_name(), "agent_version",
		      WARD_VERSION);
	if (!s)
		return NULL;
	add_addresses(s);
	json_object_set_new(s, "settings_version", json_integer(a->version));
	json_object_set_new(s, "components", installed_components(a));
	json_object_set_new(s, "update_error", a->update_error[0] ?
			    json_string(a->update_error) : json_null());
	/* Reported empty until the agent scans on the server's behalf. */
	json_object_set_new(s, "last_scan", json_null());
	json_object_set(s, "scan_method", a->settings ?
			json_object_get(a->settings, "scan_method") : json_null());
	json_object_set_new(s, "networks", json_string(network_name(network_family(a))));
	json_object_set_new(s, "unverified", json_integer((json_int_t)a->unverified));
	if (a->smart) {
		struct smart_stats st;

		smart_stats(a->smart, &st);
		json_object_set_new(s, "smart", json_pack("{sb sI sI}", "answering",
				    st.answering, "requests",
				    (json_int_t)st.requests, "failures", (json_int_t)st.failures));
	}
	return s;
}

/* Enrolls as uuid with server, trusting the CA in ca_file, into domain
 * (NULL: the server decides), and on success writes the credential. The
 * caller makes the state directory and puts the CA in place. */
static bool enroll_at(struct agent *a, const char *server, const char *ca_file,
		      const char *token, const char *uuid, const char *domain)
{
	json_t *body, *answer = NULL, *cred = NULL;
	const char *secret;
	char host[256];
	bool ok = false;

	util_host_name(host);
	body = json_pack("{ss ss so}", "uuid", uuid, "hostname", host, "status",
			 status_report(a));
	if (body && domain)
		json_object_set_new(body, "domain", json_string(domain));
	answer = state_enroll(server, ca_file, token, "/api/v1/agent/enroll", body);
	if (!answer)
		goto out;
	if (json_unpack(answer, "{s:s}", "secret", &secret) != 0) {
		log_msg(LOG_LVL_ERROR, "enroll: the server's answer has no secret");
		goto out;
	}
	/* The package signing key is pinned here: every component package must
	 * be signed by it (or by a key it rotated to). */
	cred = json_pack("{ss ss ss sO sO sO sO}", "server", server, "uuid", uuid, "secret",
			 secret, "client", json_object_get(answer, "client"), "long_poll",
			 json_object_get(answer, "long_poll"), "heartbeat_interval",
			 json_object_get(answer, "heartbeat_interval"), "package_key",
			 json_object_get(answer, "package_key"));
	ok = cred && state_write_json(a->cred_path, cred);
out:
	json_decref(cred);
	json_decref(answer);
	json_decref(body);
	return ok;
}

/* Whether url is a server's base address: https://HOST[:PORT] with HOST a
 * name, an IPv4 address or a bracketed IPv6 address; no path, which the
 * API's paths are appended to. */
static bool server_url_valid(const char *url)
{
	const char *p = url + 8;
	char *end;
	size_t n;
	long port;

	if (strncmp(url, "https://", 8) != 0 || strlen(url) > 300)
		return false;
	if (*p == '[') {
		n = strspn(p + 1, "0123456789abcdefABCDEF:.");
		if (n == 0 || p[1 + n] != ']')
			return false;
		p += n + 2;
	} else {
		n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.");
		if (n == 0 || p[0] == '-' || p[0] == '.')
			return false;
		p += n;
	}
	if (*p == '\0')
		return true;
	if (*p != ':' || !isdigit((unsigned char)p[1]))
		return false;
	port = strtol(p + 1, &end, 10);
	return port >= 1 && port <= 65535 && *end == '\0';
}

static int cmd_enroll(struct agent *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "server", required_argument, NULL, 's' },
		{ "token", required_argument, NULL, 't' },
		{ "ca", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *bundle_path = NULL, *server = NULL, *token = NULL, *ca_file = NULL;
	const char *bundle_ca, *bundle_server;
	json_t *bundle = NULL;
	char uuid[37], *ca = NULL;
	int c, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "b:s:t:c:", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			bundle_path = optarg;
			break;
		case 's':
			server = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'c':
			ca_file = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (bundle_path && (token || ca_file)) {
		log_msg(LOG_LVL_ERROR, "enroll: --bundle carries the token and the CA; of the "
			"other options only --server may go with it");
		ret = 2;
		goto out;
	}
	if (bundle_path) {
		/* --server overrides the bundle's address: the server as this
		 * host reaches it (another name, a proxy, an address). */
		bundle = state_read_bundle(bundle_path, server ? &bundle_server : &server,
					   &bundle_ca, &token);
		if (!bundle)
			goto out;
		ca = strdup(bundle_ca);
	} else if (server && token && ca_file) {
		ca = util_read_file(ca_file, 1 << 16, NULL);
		if (!ca) {
			log_msg(LOG_LVL_ERROR, "%s: %s", ca_file, strerror(errno));
			goto out;
		}
	} else {
		usage(stderr);
		ret = 2;
		goto out;
	}
	if (!server_url_valid(server)) {
		log_msg(LOG_LVL_ERROR, "enroll: server '%s' is not https://HOST[:PORT] (a name, "
			"an IPv4 address or an [IPv6] address; no path)", server);
		ret = 2;
		goto out;
	}
	if (!state_enroll_begin(a->cfg.state_dir, a->cred_path))
		goto out;
	util_uuid(uuid);
	if (ca && state_write(a->ca_path, ca) &&
	    enroll_at(a, server, a->ca_path, token, uuid, NULL)) {
		printf("enrolled with %s as %s\n", server, uuid);
		ret = 0;
	}
out:
	free(ca);
	json_decref(bundle);
	return ret;
}

/* Moves to the server the old one named: enroll there (same uuid, domain
 * of the same path) with the CA beside the current one, so that the old
 * server can still be told; the caller acknowledges and switches. The
 * instruction must be signed by the package key this agent pinned (or one
 * it rotated to) and name this agent: nothing else that reaches the event
 * channel can send it elsewhere. */
static bool move_server(struct agent *a, const json_t *move)
{
	const char *kind, *client, *server, *ca, *token, *domain;
	char next_ca[4096], msg[256];
	json_t *order = NULL;
	bool ok = false;

	if (updater_open_signed(&a->up, move, &order, msg, sizeof(msg)) != ERR_OK) {
		log_msg(LOG_LVL_ERROR, "move: refused an instruction not signed by this agent's "
			"server (%s)", msg);
		goto out;
	}
	if (a->up.rotated)
		updater_store_pin(&a->up, a->cred_path);
	if (json_unpack(order, "{s:s, s:s, s:s, s:s, s:s, s:s}", "kind", &kind, "client", &client,
			"server", &server, "ca", &ca, "token", &token, "domain", &domain) != 0 ||
	    strcmp(kind, "move") != 0 || strcmp(client, a->uuid) != 0) {
		log_msg(LOG_LVL_ERROR, "move: refused a signed instruction that is no move of this "
			"agent");
		goto out;
	}
	snprintf(next_ca, sizeof(next_ca), "%s.next", a->ca_path);
	log_msg(LOG_LVL_INFO, "move: the server sends this agent to %s (domain %s)", server,
		domain);
	if (!state_write(next_ca, ca) || !enroll_at(a, server, next_ca, token, a->uuid, domain))
		goto out;
	if (rename(next_ca, a->ca_path) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: %s", a->ca_path, strerror(errno));
		goto out;
	}
	log_msg(LOG_LVL_INFO, "move: enrolled with %s", server);
	ok = true;
out:
	json_decref(order);
	return ok;
}

/* Loads the credential and the settings in effect. */
static bool load_state(struct agent *a)
{
	json_t *cred = state_read_credential(a->cred_path, "ward-agent", &a->token), *st;
	bool ok = false;

	if (!cred)
		return false;
	a->server = strdup(json_string_value(json_object_get(cred, "server")));
	a->uuid = strdup(json_string_value(json_object_get(cred, "uuid")));
	if (!a->server || !a->uuid)
		goto out;
	if (!updater_load_pin(&a->up, cred)) {
		log_msg(LOG_LVL_ERROR, "%s: no package signing key: enroll anew", a->cred_path);
		goto out;
	}
	if (json_integer_value(json_object_get(cred, "long_poll")) > 0)
		a->long_poll = (long)json_integer_value(json_object_get(cred, "long_poll"));
	if (json_integer_value(json_object_get(cred, "heartbeat_interval")) > 0)
		a->heartbeat_interval = json_integer_value(json_object_get(cred,
							   "heartbeat_interval"));
	st = json_load_file(a->settings_path, 0, NULL);
	if (st) {
		a->version = json_integer_value(json_object_get(st, "version"));
		a->settings = json_incref(json_object_get(st, "settings"));
		json_decref(st);
	}
	ok = true;
out:
	json_decref(cred);
	return ok;
}

/* Logs each setting that changes, then makes settings the ones in effect. */
static bool apply(struct agent *a, int64_t version, json_t *settings)
{
	json_t *doc, *old, *v;
	const char *key;
	char *was, *now;
	bool ok;

	json_object_foreach(settings, key, v) {
		old = a->settings ? json_object_get(a->settings, key) : NULL;
		if (old && json_equal(old, v))
			continue;
		was = old ? json_dumps(old, JSON_ENCODE_ANY) : NULL;
		now = json_dumps(v, JSON_ENCODE_ANY);
		log_msg(LOG_LVL_INFO, "settings %lld: %s %s -> %s", (long long)version, key,
			was ? was : "(unset)", now ? now : "?");
		free(was);
		free(now);
	}
	doc = json_pack("{sI sO}", "version", (json_int_t)version, "settings", settings);
	ok = doc && state_write_json(a->settings_path, doc);
	json_decref(doc);
	if (!ok)
		return false;
	json_decref(a->settings);
	a->settings = json_incref(settings);
	a->version = version;
	return true;
}

/* Reloads the credential (after a move) and connects to its server. */
static bool switch_server(struct agent *a, struct rest_client **rc)
{
	free(a->server);
	free(a->uuid);
	free(a->token);
	a->server = a->uuid = a->token = NULL;
	if (!load_state(a))
		return false;
	a->version = 0;
	*rc = rest_new(a->server, a->ca_path);
	if (!*rc || rest_set_token(*rc, a->token) != 0) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		return false;
	}
	log_msg(LOG_LVL_INFO, "now served by %s", a->server);
	return true;
}

/* A setting in effect: from settings (NULL: those in effect), else its
 * default. The caller releases the reference. */
static json_t *setting(const struct agent *a, const json_t *settings, const char *key)
{
	const struct settings_def *def = settings_find(key);
	json_t *v = json_object_get(settings ? settings : a->settings, key);

	if (v)
		return json_incref(v);
	return def ? json_loads(def->default_json, JSON_DECODE_ANY, NULL) : NULL;
}

/* The component the scan method of settings (NULL: those in effect) needs. */
static const char *needed_component(const struct agent *a, const json_t *settings)
{
	json_t *method = setting(a, settings, "scan_method");
	bool smart = method && strcmp(json_string_value(method), "smart") == 0;

	json_decref(method);
	return comp_table()[smart ? COMP_SMART_AGENT : COMP_VIRUS].name;
}

/* Whether component is the one smart scan uses. */
static bool is_smart(const char *component)
{
	return strcmp(component, comp_table()[COMP_SMART_AGENT].name) == 0;
}

/* Loads a new engine from the version of component in dir. */
static struct engine *load_engine(const char *component, const char *dir, char *errbuf,
				  size_t errlen)
{
	struct engine_config cfg = { .official = true };
	enum engine_err err;
	struct engine *e;

	engine_limits_default(&cfg.limits);
	if (is_smart(component))
		cfg = smart_engine_config(&cfg);
	e = engine_new(&cfg, &err, errbuf, errlen);
	if (e && ((engine_has_databases(dir) && engine_load(e, dir, errbuf, errlen) != ENGINE_OK) ||
		  engine_compile(e, errbuf, errlen) != ENGINE_OK)) {
		engine_free(e);
		e = NULL;
	}
	return e;
}

/* The agent's smart protection source list: from the server (kept in the
 * state directory), else the one kept, else the server's integrated one.
 * The caller releases it. */
static json_t *sps_list(struct agent *a, struct rest_client *rc)
{
	char *path = state_file(a, "sps-sources.json"), msg[512];
	json_t *list = NULL;
	long status = 0;

	if (rc && rest_call(rc, "GET", "/api/v1/agent/sps-sources", NULL, 30, &status, &list,
			    msg, sizeof(msg)) == ERR_OK && status == 200 &&
	    json_is_array(json_object_get(list, "sources"))) {
		if (path)
			state_write_json(path, list);
	} else {
		json_decref(list);
		list = path ? json_load_file(path, 0, NULL) : NULL;
		if (!list)
			list = json_pack("{s[s] sn}", "sources", "integrated", "proxy");
	}
	free(path);
	return list;
}

/* Writes what smart protection sources are trusted by: the server CA
 * (the integrated server is wardd itself) and the smart protection CA the
 * list names, to sps-ca.crt; and the keys the list pins, joined as libcurl
 * takes them, to pins (NULL: none pinned). Returns the file's path (the
 * caller frees it), or NULL when it cannot be written (logged). */
static char *sps_trust(struct agent *a, const json_t *list, char **pins)
{
	const char *sps_ca = json_string_value(json_object_get(list, "ca"));
	char *server_ca = util_read_file(a->ca_path, 1 << 16, NULL);
	char *path = state_file(a, "sps-ca.crt");
	struct util_buf b = { 0 };
	const json_t *p;
	size_t i;

	*pins = NULL;
	if (!server_ca || !path || util_buf_append(&b, server_ca, strlen(server_ca)) != 0 ||
	    (sps_ca && util_buf_append(&b, sps_ca, strlen(sps_ca)) != 0) ||
	    util_buf_append(&b, "", 1) != 0 || !state_write(path, b.data)) {
		log_msg(LOG_LVL_ERROR, "smart protection: cannot write %s", path ? path : "its CA");
		free(path);
		path = NULL;
		goto out;
	}
	util_buf_free(&b);
	json_array_foreach(json_object_get(list, "pins"), i, p) {
		const char *pin = json_string_value(p);

		if (!pin || strchr(pin, ';'))
			continue;
		if ((b.len && util_buf_append(&b, ";", 1) != 0) ||
		    util_buf_append(&b, pin, strlen(pin)) != 0)
			goto out;
	}
	if (b.len && util_buf_append(&b, "", 1) == 0) {
		*pins = b.data;
		b = (struct util_buf){ 0 };
	}
out:
	util_buf_free(&b);
	free(server_ca);
	return path;
}

/* Sets up smart protection for the agent pattern in dir: its source list
 * (the integrated server is reached at the server's own address), what
 * the sources are trusted by, this host's address family. Returns NULL
 * when it cannot (logged). */
static struct smart *open_smart(struct agent *a, const json_t *list, const char *dir)
{
	json_t *u;
	const char *urls[32];
	struct smart_config cfg = { .sources = urls, .family = network_family(a) };
	struct smart *sm = NULL;
	char msg[512], *trust, *pins = NULL;
	size_t i;

	trust = sps_trust(a, list, &pins);
	if (!trust)
		return NULL;
	cfg.ca_file = trust;
	cfg.pins = pins;
	cfg.proxy = json_string_value(json_object_get(list, "proxy"));
	json_array_foreach(json_object_get(list, "sources"), i, u) {
		if (!json_is_string(u) || cfg.nsources == sizeof(urls) / sizeof(*urls))
			continue;
		urls[cfg.nsources++] = strcmp(json_string_value(u), "integrated") == 0 ?
				       a->server : json_string_value(u);
	}
	sm = smart_new(dir, &cfg, msg, sizeof(msg));
	if (!sm)
		log_msg(LOG_LVL_ERROR, "smart protection: %s", msg);
	else
		log_msg(LOG_LVL_INFO, "smart protection: %zu source%s from list %lld "
			"(0: none matched, the integrated server), %s networks", cfg.nsources,
			cfg.nsources == 1 ? "" : "s",
			(long long)json_integer_value(json_object_get(list, "list")),
			network_name(cfg.family));
	free(trust);
	free(pins);
	return sm;
}

/* Fetches the source list again; when it changed, smart protection
 * starts over with it (the engine stays). */
static void refresh_sources(struct agent *a)
{
	json_t *list = sps_list(a, a->up.rc);
	char dir[PATH_MAX];
	struct smart *sm;

	if (!list || !a->smart || (a->sps_sources && json_equal(list, a->sps_sources))) {
		json_decref(list);
		return;
	}
	log_msg(LOG_LVL_INFO, "smart protection: the source list changed");
	updater_path(a->comp_dir, a->engine_comp, a->engine_version, dir, sizeof(dir));
	sm = open_smart(a, list, dir);
	if (!sm) {
		json_decref(list);
		return;
	}
	smart_free(a->smart);
	a->smart = sm;
	json_decref(a->sps_sources);
	a->sps_sources = list;
}

/* Makes e, loaded from version of component, the engine in use; for smart
 * scan with new smart protection state (so no answer cached for an older
 * pattern survives). */
static void set_engine(struct agent *a, struct engine *e, const char *component, int64_t version)
{
	char dir[PATH_MAX];

	smart_free(a->smart);
	a->smart = NULL;
	engine_free(a->engine);
	a->engine = e;
	a->engine_comp = component;
	a->engine_version = version;
	if (is_smart(component)) {
		updater_path(a->comp_dir, component, version, dir, sizeof(dir));
		json_decref(a->sps_sources);
		a->sps_sources = sps_list(a, a->up.rc);
		a->smart = a->sps_sources ? open_smart(a, a->sps_sources, dir) : NULL;
	}
}

/* Makes the engine the one of component's installed version, loading it
 * when it is not (after an update by `ward-agent update`, say). */
static bool use_installed(struct agent *a, const char *component)
{
	int64_t v = updater_installed(a->comp_dir, component);
	char dir[PATH_MAX], msg[ENGINE_ERRLEN];
	struct engine *e;

	if (!v || (a->engine && a->engine_comp == component && a->engine_version == v))
		return true;
	updater_path(a->comp_dir, component, v, dir, sizeof(dir));
	e = load_engine(component, dir, msg, sizeof(msg));
	if (!e) {
		snprintf(a->update_error, sizeof(a->update_error), "%s version %lld does not "
			 "load: %s", component, (long long)v, msg);
		log_msg(LOG_LVL_ERROR, "%s", a->update_error);
		return false;
	}
	set_engine(a, e, component, v);
	log_msg(LOG_LVL_INFO, "engine: %s version %lld, %u signatures", component, (long long)v,
		engine_signatures(e));
	return true;
}

/* Brings component up to date and loads it: a new version is used only
 * once an engine has loaded it, else the installed one stays in use and
 * the failure is reported. Returns true when component is current (or
 * the server has none yet). Serialised with other agent processes on the
 * same state by a lock. */
static bool update_component(struct agent *a, const char *component)
{
	char lock_path[PATH_MAX], dir[PATH_MAX], msg[ENGINE_ERRLEN];
	enum err err;
	struct engine *e = NULL;
	int64_t staged = 0;
	bool ok = false;
	int lock;

	snprintf(lock_path, sizeof(lock_path), "%s/.lock", a->comp_dir);
	if (util_mkdir_p(a->comp_dir, 0700) != 0 ||
	    (lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		snprintf(a->update_error, sizeof(a->update_error), "%s: %s", a->comp_dir,
			 strerror(errno));
		return false;
	}
	flock(lock, LOCK_EX);
	err = updater_fetch(&a->up, component, &staged, a->update_error,
			    sizeof(a->update_error));
	if (a->up.rotated)
		updater_store_pin(&a->up, a->cred_path);
	if (err == ERR_NONE) {
		log_msg(LOG_LVL_INFO, "update: %s", a->update_error);
		a->update_error[0] = '\0';
		ok = true;
		goto out;
	}
	if (err != ERR_OK)
		goto out;
	if (staged) {
		updater_path(a->comp_dir, component, staged, dir, sizeof(dir));
		e = load_engine(component, dir, msg, sizeof(msg));
		if (!e) {
			updater_discard(&a->up, component, staged);
			snprintf(a->update_error, sizeof(a->update_error), "%s version %lld does "
				 "not load (%s); version %lld stays in use", component,
				 (long long)staged, msg,
				 (long long)updater_installed(a->comp_dir, component));
			log_msg(LOG_LVL_ERROR, "update: %s", a->update_error);
			goto out;
		}
		if (updater_commit(&a->up, component, staged) != 0) {
			snprintf(a->update_error, sizeof(a->update_error), "%s: %s", component,
				 strerror(errno));
			engine_free(e);
			goto out;
		}
		set_engine(a, e, component, staged);
		log_msg(LOG_LVL_INFO, "update: %s version %lld in use, %u signatures", component,
			(long long)staged, engine_signatures(e));
	}
	a->update_error[0] = '\0';
	ok = use_installed(a, component);
out:
	flock(lock, LOCK_UN);
	close(lock);
	return ok;
}

/* Sets the time of the next scheduled update from the settings in effect:
 * the schedule's next time plus a random part of update.window, so that
 * agents on the same schedule spread out. */
static void plan_next_update(struct agent *a)
{
	json_t *on = setting(a, NULL, "update.scheduled"), *sched = setting(a, NULL,
									  "update.schedule");
	json_t *window = setting(a, NULL, "update.window");
	struct settings_schedule sc;
	time_t now = time(NULL);
	int64_t spread;

	a->next_update = 0;
	if (json_is_true(on) && json_is_string(sched) &&
	    settings_schedule_parse(json_string_value(sched), &sc)) {
		spread = json_integer_value(window) * 60;
		if (sc.every && spread > sc.every)
			spread = sc.every;
		a->next_update = settings_schedule_next(&sc, now) +
				 (spread > 0 ? (time_t)randombytes_uniform((uint32_t)spread) : 0);
	}
	json_decref(on);
	json_decref(sched);
	json_decref(window);
}

/* Handles a delivery of settings (and perhaps an update request): a change
 * of scan method, or a request, updates the components first; the
 * delivery is applied and acknowledged only once that is done, so the
 * server counts the agent done only when its download is installed. */
static bool take_delivery(struct agent *a, json_int_t version, json_t *settings,
			  bool update)
{
	const char *comp = needed_component(a, settings);

	if ((update || comp != needed_component(a, NULL) ||
	     !updater_installed(a->comp_dir, comp)) && !update_component(a, comp))
		return false;
	return apply(a, version, settings);
}

/* Opens (creating) the lock of the scan state (the unverified list and
 * the detections not yet reported) and takes it; with wait false, returns
 * -1 at once when another process holds it. */
static int lock_unverified(const struct agent *a, bool wait)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s.lock", a->unverified_path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The JSON list in the state file path (a new list; empty when none is
 * kept): the unverified files, or the detections to report. */
static json_t *load_list(const char *path)
{
	json_t *list = json_load_file(path, 0, NULL);

	if (!json_is_array(list)) {
		json_decref(list);
		list = json_array();
	}
	return list;
}

/* Detections kept for the server at most; past it the oldest go (an
 * agent cut off from its server for long, on an infested machine). */
#define MAX_KEPT_DETECTIONS 10000

/* Returns a new list of the last MAX_KEPT_DETECTIONS of kept (whose
 * reference it takes) followed by found; NULL when out of memory. */
static json_t *keep_newest(json_t *kept, const json_t *found)
{
	size_t n = json_array_size(kept) + json_array_size(found), i;
	size_t skip = n > MAX_KEPT_DETECTIONS ? n - MAX_KEPT_DETECTIONS : 0;
	json_t *out = json_array();

	for (i = skip; out && i < n; i++)
		json_array_append(out, i < json_array_size(kept) ? json_array_get(kept, i) :
				  json_array_get(found, i - json_array_size(kept)));
	json_decref(kept);
	return out;
}

/* Scans paths with the engine in use (and its smart protection), keeping
 * the unverified list and the detections to report up to date; the caller
 * has locked them. */
static int scan_paths(struct agent *a, const char *const *paths, size_t n, FILE *out,
		      struct ascan_totals *t)
{
	json_t *list = load_list(a->unverified_path), *found = json_array(), *kept;
	char msg[512];
	int rc;

	rc = ascan_run(a->engine, a->smart, paths, n, out, list, found, t, msg, sizeof(msg));
	if (rc != 0)
		log_msg(LOG_LVL_ERROR, "scan: %s", msg);
	if (!state_write_json(a->unverified_path, list))
		rc = -1;
	a->unverified = json_array_size(list);
	json_decref(list);
	if (json_array_size(found)) {
		kept = keep_newest(load_list(a->detections_path), found);
		if (!kept || !state_write_json(a->detections_path, kept)) {
			log_msg(LOG_LVL_ERROR, "scan: %s: the detections could not be kept for the "
				"server", a->detections_path);
			rc = -1;
		}
		json_decref(kept);
	}
	json_decref(found);
	return rc;
}

/* Detections a report carries at most: well under the server's request
 * size limit even with long paths. */
#define REPORT_BATCH 100

/* Reports the detections kept in the state directory to the server,
 * REPORT_BATCH a request, and forgets those it took. Skipped while a scan
 * holds the lock; what the server cannot be reached for, is busy for or
 * limits (429) is tried again later, what it refuses as malformed (it
 * would refuse it again) is dropped, logged. */
static void report_detections(struct agent *a, struct rest_client *rc)
{
	json_t *kept, *batch, *body = NULL, *answer = NULL, *rest;
	const char *why;
	char msg[256];
	long status = 0;
	size_t i, n;
	int lock;

	if (access(a->detections_path, F_OK) != 0)
		return;
	lock = lock_unverified(a, false);
	if (lock < 0)
		return;
	kept = load_list(a->detections_path);
	n = json_array_size(kept) < REPORT_BATCH ? json_array_size(kept) : REPORT_BATCH;
	batch = json_array();
	for (i = 0; batch && i < n; i++)
		json_array_append(batch, json_array_get(kept, i));
	body = batch ? json_pack("{sO}", "detections", batch) : NULL;
	if (n && body && rest_call(rc, "POST", "/api/v1/agent/detections", body, 30, &status,
				   &answer, msg, sizeof(msg)) == ERR_OK &&
	    (status == 200 || status == 400 || status == 413)) {
		why = json_string_value(json_object_get(answer, "error"));
		if (status == 200)
			log_msg(LOG_LVL_INFO, "reported %zu detection%s to the server", n,
				n == 1 ? "" : "s");
		else
			log_msg(LOG_LVL_ERROR, "the server refused %zu detection%s (%s); dropped",
				n, n == 1 ? "" : "s", why ? why : "too large");
		rest = json_array();
		for (i = n; rest && i < json_array_size(kept); i++)
			json_array_append(rest, json_array_get(kept, i));
		json_decref(kept);
		kept = rest;
	} else if (n) {
		/* 429: this agent's hourly or daily number is reached; they
		 * are kept like any other refusal that may pass later. */
		log_msg(LOG_LVL_WARN, "reporting detections failed (%s); tried again later",
			status == 429 ? "the server's limit for this agent is reached" :
			status ? "the server is busy or failing" : msg);
	}
	if (kept && json_array_size(kept) == 0)
		unlink(a->detections_path);
	else if (n && (!kept || !state_write_json(a->detections_path, kept)))
		log_msg(LOG_LVL_ERROR, "%s: could not be rewritten; reported detections may be "
			"sent again", a->detections_path);
	json_decref(answer);
	json_decref(body);
	json_decref(batch);
	json_decref(kept);
	close(lock);
}

/* Rescans the unverified files once a smart protection source answers
 * again, trying at most every 10 seconds; skipped while a scan of
 * `ward-agent scan` holds the list. The source list is fetched again
 * every 5 minutes, and at each try while no source answers, so that an
 * administrator's new list takes over. */
static void rescan_unverified(struct agent *a)
{
	uint64_t now = util_now_ns() / 1000000000u;
	const char **paths;
	struct ascan_totals t;
	json_t *list;
	size_t i, n;
	int lock;

	if (!a->smart || !a->engine || now - a->last_rescan < 10)
		return;
	a->last_rescan = now;
	if (now - a->last_sources >= 300) {
		refresh_sources(a);
		a->last_sources = now;
	}
	lock = lock_unverified(a, false);
	if (lock < 0)
		return;
	list = load_list(a->unverified_path);
	n = json_array_size(list);
	a->unverified = n;
	paths = n ? calloc(n, sizeof(*paths)) : NULL;
	if (paths && !smart_reachable(a->smart)) {
		refresh_sources(a);
		a->last_sources = now;
	}
	if (paths && smart_reachable(a->smart)) {
		for (i = 0; i < n; i++)
			paths[i] = json_string_value(json_array_get(list, i));
		log_msg(LOG_LVL_INFO, "rescan: %zu unverified file%s, now that a smart protection "
			"source answers", n, n == 1 ? "" : "s");
		if (scan_paths(a, paths, n, NULL, &t) == 0)
			log_msg(LOG_LVL_INFO, "rescan: %llu file%s scanned, %llu infected, %llu "
				"still unverified", (unsigned long long)t.files,
				t.files == 1 ? "" : "s", (unsigned long long)t.infected,
				(unsigned long long)t.unverified);
	}
	free(paths);
	json_decref(list);
	close(lock);
}

/* The event channel: one long poll after another over one connection,
 * carrying the agent's status (its heartbeat) whenever the heartbeat
 * interval has passed, applying and acknowledging what comes, taking
 * scheduled updates between polls, and backing off (1 s doubling to 60 s)
 * while the server cannot be reached or an update fails. */
static int cmd_run(struct agent *a)
{
	struct rest_client *rc;
	json_t *answer, *settings, *ack, *poll, *move;
	char msg[512];
	json_int_t version;
	bool moved;
	unsigned backoff = 1;
	uint64_t last_status = 0, now;
	time_t wall;
	int64_t wait;
	long status;

	if (!load_state(a))
		return 1;
	rc = rest_new(a->server, a->ca_path);
	if (!rc || rest_set_token(rc, a->token) != 0) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		return 1;
	}
	a->up.rc = rc;
	log_msg(LOG_LVL_INFO, "ward-agent %s: %s, settings version %lld", WARD_VERSION, a->server,
		(long long)a->version);
	/* A new agent gets its pattern at once; others load what they have. */
	if (!updater_installed(a->comp_dir, needed_component(a, NULL)) ||
	    !use_installed(a, needed_component(a, NULL)))
		update_component(a, needed_component(a, NULL));
	plan_next_update(a);
	for (;;) {
		now = util_now_ns() / 1000000000u;
		/* Schedules are in wall-clock time; heartbeats in monotonic. */
		wall = time(NULL);
		if (a->next_update && wall >= a->next_update) {
			log_msg(LOG_LVL_INFO, "update: scheduled update");
			update_component(a, needed_component(a, NULL));
			plan_next_update(a);
		}
		use_installed(a, needed_component(a, NULL));
		rescan_unverified(a);
		report_detections(a, rc);
		poll = json_pack("{sI}", "version", (json_int_t)a->version);
		/* Status goes with the poll once 90% of the interval has passed:
		 * polls end every http.long_poll, a little less than it. */
		if (poll && (!last_status ||
			     (now - last_status) * 10 >= (uint64_t)a->heartbeat_interval * 9)) {
			json_object_set_new(poll, "status", status_report(a));
			last_status = now;
		}
		/* The poll ends in time for the next scheduled update. */
		wait = a->next_update ? (int64_t)(a->next_update - time(NULL)) : a->long_poll;
		/* Unverified files are retried every 10 s, between polls. */
		if (a->unverified && a->smart && wait > 10)
			wait = 10;
		if (poll && wait < a->long_poll)
			json_object_set_new(poll, "wait", json_integer(wait > 1 ? wait : 1));
		answer = NULL;
		status = 0;
		if (rest_call(rc, "POST", "/api/v1/agent/events", poll, a->long_poll + 30,
			      &status, &answer, msg, sizeof(msg)) != ERR_OK ||
		    (status != 200 && status != 204)) {
			if (status == 401)
				log_msg(LOG_LVL_ERROR, "events: the server does not know "
					"this agent (removed, or moved to another server)");
			else
				log_msg(LOG_LVL_WARN, "events: %s",
					status ? "unexpected answer" : msg);
			json_decref(answer);
			json_decref(poll);
			last_status = 0; /* report status on the first poll that gets through */
			sleep(backoff);
			backoff = backoff >= 60 ? 60 : backoff * 2;
			continue;
		}
		json_decref(poll);
		if (status == 204) {
			backoff = 1;
			json_decref(answer);
			continue;
		}
		if (json_unpack(answer, "{s:I, s:o}", "version", &version, "settings",
				&settings) != 0 || !json_is_object(settings)) {
			log_msg(LOG_LVL_WARN, "events: malformed settings ignored");
			json_decref(answer);
			continue;
		}
		if (!take_delivery(a, version, settings,
				   json_is_true(json_object_get(answer, "update")))) {
			/* Not acknowledged: the server delivers it again. */
			json_decref(answer);
			last_status = 0;
			sleep(backoff);
			backoff = backoff >= 60 ? 60 : backoff * 2;
			continue;
		}
		backoff = 1;
		plan_next_update(a);
		/* A move is acknowledged only once this agent is enrolled with
		 * the new server; until then the old one keeps it. */
		move = json_object_get(answer, "move");
		moved = move && move_server(a, move);
		if (move && !moved) {
			json_decref(answer);
			sleep(backoff);
			continue;
		}
		ack = json_pack("{sI}", "version", version);
		json_decref(answer);
		answer = NULL;
		if (rest_call(rc, "POST", "/api/v1/agent/ack", ack, 30, &status, &answer,
			      msg, sizeof(msg)) != ERR_OK || status != 200)
			log_msg(LOG_LVL_WARN, "ack of settings %lld failed; the next event "
				"poll reports the version instead", (long long)version);
		json_decref(ack);
		json_decref(answer);
		if (moved) {
			rest_free(rc);
			rc = NULL;
			a->version = 0; /* the new server's settings come next */
			if (!switch_server(a, &rc))
				return 1;
			a->up.rc = rc;
			/* The new server's components at once: what this agent
			 * holds is another server's sequence (updater.h). */
			update_component(a, needed_component(a, NULL));
			last_status = 0; /* the new server hears the status at once */
		}
	}
}

/* An on-demand scan with the component the scan method needs. */
static int cmd_scan(struct agent *a, int argc, char **argv)
{
	const char *comp;
	struct ascan_totals t;
	int ret = 2, lock = -1;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!load_state(a))
		return 2;
	a->up.rc = rest_new(a->server, a->ca_path);
	if (!a->up.rc || rest_set_token(a->up.rc, a->token) != 0) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	comp = needed_component(a, NULL);
	if (!updater_installed(a->comp_dir, comp)) {
		log_msg(LOG_LVL_ERROR, "scan: no %s installed yet (ward-agent update)", comp);
		goto out;
	}
	if (!use_installed(a, comp) || (is_smart(comp) && !a->smart))
		goto out;
	lock = lock_unverified(a, true);
	if (lock < 0 || scan_paths(a, (const char *const *)argv + 1, (size_t)argc - 1, stdout,
				   &t) != 0)
		goto out;
	printf("\n----------- SCAN SUMMARY -----------\nScan method: %s\nScanned files: %llu\n"
	       "Infected files: %llu\n", is_smart(comp) ? "smart" : "conventional",
	       (unsigned long long)t.files, (unsigned long long)t.infected);
	if (t.unverified)
		printf("Unverified files: %llu (rescanned when a smart protection source "
		       "answers)\n", (unsigned long long)t.unverified);
	if (t.errors)
		printf("Total errors: %llu\n", (unsigned long long)t.errors);
	ret = t.infected ? 1 : (t.errors || t.unverified) ? 2 : 0;
out:
	if (lock >= 0)
		close(lock);
	rest_free(a->up.rc);
	a->up.rc = NULL;
	return ret;
}

/* Update Now from the endpoint: allowed unless the administrator switched
 * it off (update.allow_update_now). */
static int cmd_update(struct agent *a)
{
	json_t *allowed;
	const char *comp;
	int ret = 1;

	if (!load_state(a))
		return 1;
	allowed = setting(a, NULL, "update.allow_update_now");
	if (!json_is_true(allowed)) {
		log_msg(LOG_LVL_ERROR, "update: Update Now is switched off by the administrator "
			"(update.allow_update_now)");
		json_decref(allowed);
		return 1;
	}
	json_decref(allowed);
	a->up.rc = rest_new(a->server, a->ca_path);
	if (!a->up.rc || rest_set_token(a->up.rc, a->token) != 0) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	comp = needed_component(a, NULL);
	if (update_component(a, comp)) {
		printf("%s version %lld\n", comp,
		       (long long)updater_installed(a->comp_dir, comp));
		ret = 0;
	}
out:
	rest_free(a->up.rc);
	a->up.rc = NULL;
	return ret;
}

static int cmd_status(struct agent *a)
{
	char *text, key[2 * PKG_PK_BYTES + 1];
	json_t *comps;

	if (!load_state(a))
		return 1;
	sodium_bin2hex(key, sizeof(key), a->up.key, sizeof(a->up.key));
	printf("server: %s\nagent: %s\npackage key: %s\nsettings version: %lld\n", a->server,
	       a->uuid, key, (long long)a->version);
	text = a->settings ? json_dumps(a->settings, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	printf("settings: %s\n", text ? text : "(none yet)");
	free(text);
	comps = installed_components(a);
	text = comps ? json_dumps(comps, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	printf("components: %s\n", text ? text : "(none)");
	free(text);
	json_decref(comps);
	return 0;
}

int main(int argc, char **argv)
{
	struct agent a = { .heartbeat_interval = 60, .long_poll = 55 };
	int i, ret;

	if (argc > 1 && strcmp(argv[1], "worker") == 0)
		return worker_main(argc - 1, argv + 1);
	i = ini_command_line(argc, argv, "ward-agent", usage, fields, NFIELDS, &a.cfg, &ret);
	if (!i)
		return ret;
	if (!state_process_init())
		return 1;
	a.cred_path = state_file(&a, "credential.json");
	a.ca_path = state_file(&a, "server-ca.crt");
	a.settings_path = state_file(&a, "settings.json");
	a.comp_dir = state_file(&a, "components");
	a.unverified_path = state_file(&a, "unverified.json");
	a.detections_path = state_file(&a, "detections.json");
	if (!a.cred_path || !a.ca_path || !a.settings_path || !a.comp_dir || !a.unverified_path ||
	    !a.detections_path)
		return 1;
	if (strcmp(a.cfg.networks, "auto") != 0 && strcmp(a.cfg.networks, "ipv4") != 0 &&
	    strcmp(a.cfg.networks, "ipv6") != 0 && strcmp(a.cfg.networks, "dual") != 0) {
		log_msg(LOG_LVL_ERROR, "config: agent.networks: expected auto, ipv4, ipv6 or dual, "
			"not '%s'", a.cfg.networks);
		return 2;
	}
	a.up.dir = a.comp_dir;
	a.up.max_wait = 3600;
	if (strcmp(argv[i], "enroll") == 0)
		ret = cmd_enroll(&a, argc - i, argv + i);
	else if (strcmp(argv[i], "run") == 0 && i + 1 == argc)
		ret = cmd_run(&a);
	else if (strcmp(argv[i], "status") == 0 && i + 1 == argc)
		ret = cmd_status(&a);
	else if (strcmp(argv[i], "update") == 0 && i + 1 == argc)
		ret = cmd_update(&a);
	else if (strcmp(argv[i], "scan") == 0)
		ret = cmd_scan(&a, argc - i, argv + i);
	else {
		usage(stderr);
		ret = 2;
	}
	json_decref(a.settings);
	smart_free(a.smart);
	json_decref(a.sps_sources);
	engine_free(a.engine);
	free(a.unverified_path);
	free(a.detections_path);
	free(a.comp_dir);
	free(a.server);
	free(a.uuid);
	free(a.token);
	free(a.cred_path);
	free(a.ca_path);
	free(a.settings_path);
	ini_free(fields, NFIELDS, &a.cfg);
	return ret;
}
