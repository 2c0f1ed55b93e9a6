/* astate.c -- the agent's state directory, credential and settings (see
 * astate.h). */
#include "agent/astate.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/comp.h"
#include "common/log.h"
#include "common/settings.h"
#include "common/state.h"
#include "common/util.h"

char *astate_file(const struct agent *a, const char *name)
{
	return util_path_join(a->cfg.state_dir, name);
}

bool astate_init(struct agent *a)
{
	a->cred_path = astate_file(a, "credential.json");
	a->ca_path = astate_file(a, "server-ca.crt");
	a->settings_path = astate_file(a, "settings.json");
	a->comp_dir = astate_file(a, "components");
	a->unverified_path = astate_file(a, "unverified.json");
	a->detections_path = astate_file(a, "detections.json");
	a->control_path = astate_file(a, "control.sock");
	a->up.dir = a->comp_dir;
	return a->cred_path && a->ca_path && a->settings_path && a->comp_dir &&
	       a->unverified_path && a->detections_path && a->control_path;
}

void astate_free(struct agent *a)
{
	json_decref(a->settings);
	json_decref(a->sps_sources);
	json_decref(a->servers);
	a->servers = NULL;
	free(a->unverified_path);
	free(a->detections_path);
	free(a->control_path);
	free(a->comp_dir);
	free(a->server);
	free(a->uuid);
	free(a->token);
	free(a->cred_path);
	free(a->ca_path);
	free(a->settings_path);
	a->settings = a->sps_sources = NULL;
	a->server = a->uuid = a->token = NULL;
}

/* The components an agent installs: never the Smart Scan Pattern, which
 * smart protection servers hold. */
static const enum comp_id agent_components[] = { COMP_VIRUS, COMP_SMART_AGENT };

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
/* The hardware address of i as aa:bb:cc:dd:ee:ff in out, when it is an
 * Ethernet-like interface's other than loopback (network access control
 * knows hosts by it); false otherwise. */
static bool mac_address(const struct ifaddrs *i, char out[18])
{
	const struct sockaddr_ll *ll = (const struct sockaddr_ll *)i->ifa_addr;
	static const unsigned char zero[6];

	if (!ll || ll->sll_family != AF_PACKET || (i->ifa_flags & IFF_LOOPBACK) ||
	    ll->sll_halen != 6 || memcmp(ll->sll_addr, zero, 6) == 0)
		return false;
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", ll->sll_addr[0], ll->sll_addr[1],
		 ll->sll_addr[2], ll->sll_addr[3], ll->sll_addr[4], ll->sll_addr[5]);
	return true;
}

static bool listed(const json_t *list, const char *s)
{
	const json_t *v;
	size_t i;

	json_array_foreach(list, i, v)
		if (strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

void astate_add_addresses(json_t *status)
{
	json_t *v4 = json_array(), *v6 = json_array(), *macs = json_array();
	char mac[18];
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
			/* (Bonded and bridged ports share one: named once.) */
			if (mac_address(i, mac) && !listed(macs, mac) &&
			    json_array_size(macs) < ASTATE_MAX_MACS)
				json_array_append_new(macs, json_string(mac));
		}
		freeifaddrs(ifs);
	}
	json_object_set_new(status, "ipv4", v4);
	json_object_set_new(status, "ipv6", v6);
	json_object_set_new(status, "macs", macs);
}

/* {name: version} of the installed components. */
json_t *astate_installed(const struct agent *a)
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
int astate_network_family(const struct agent *a)
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

const char *astate_network_name(int af)
{
	return af == AF_INET ? "ipv4" : af == AF_INET6 ? "ipv6" : "dual";
}

json_t *astate_servers(const json_t *urls, const char *server)
{
	json_t *list = json_array(), *u;
	size_t i;
	bool has = false;

	if (json_is_array(urls) && json_array_size(urls) <= ASTATE_MAX_SERVERS)
		json_array_foreach(urls, i, u) {
			if (!json_is_string(u) || !util_url_valid(json_string_value(u))) {
				json_array_clear(list);
				break;
			}
			has = has || strcmp(json_string_value(u), server) == 0;
			json_array_append(list, u);
		}
	if (list && !has)
		json_array_insert_new(list, 0, json_string(server));
	return list;
}

/* Loads the credential and the settings in effect. */
bool astate_load(struct agent *a)
{
	json_t *cred = state_read_credential(a->cred_path, "ward-agent", &a->token), *st;
	bool ok = false;

	if (!cred)
		return false;
	a->server = strdup(json_string_value(json_object_get(cred, "server")));
	a->uuid = strdup(json_string_value(json_object_get(cred, "uuid")));
	if (!a->server || !a->uuid)
		goto out;
	json_decref(a->servers);
	a->servers = astate_servers(json_object_get(cred, "servers"), a->server);
	if (!a->servers)
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
		json_decref(a->settings);
		a->settings = json_incref(json_object_get(st, "settings"));
		json_decref(st);
	}
	ok = true;
out:
	json_decref(cred);
	return ok;
}

/* Logs each setting that changes, then makes settings the ones in effect. */
bool astate_apply(struct agent *a, int64_t version, json_t *settings)
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

/* A setting in effect: from settings (NULL: those in effect), else its
 * default. The caller releases the reference. */
json_t *astate_setting(const struct agent *a, const json_t *settings, const char *key)
{
	const struct settings_def *def = settings_find(key);
	json_t *v = json_object_get(settings ? settings : a->settings, key);

	if (v)
		return json_incref(v);
	return def ? json_loads(def->default_json, JSON_DECODE_ANY, NULL) : NULL;
}
