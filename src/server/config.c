/* config.c -- wardd's configuration table (see config.h). */
#include "server/config.h"

#include <stdio.h>
#include <string.h>

#include "common/ini.h"

#define F(sec, key, type, member, def, min, max, help) \
	{ sec, key, type, offsetof(struct config, member), def, min, max, help }

/* The one definition of every option: docs/configuration.md follows it. */
static const struct ini_field fields[] = {
	F("server", "listen", INI_STRING, listen, "*:8443", 0, 0,
	  "addresses to listen on, comma-separated ADDR:PORT; *:PORT is dual-stack"),
	F("server", "hostname", INI_STRING, hostname, "", 0, 0,
	  "the host name agents reach the server by (its certificate names it)"),
	F("server", "data_dir", INI_STRING, data_dir, "/var/lib/ward/server", 0, 0,
	  "database, certificates and enrollment files"),
	F("server", "console_dir", INI_STRING, console_dir, "", 0, 0,
	  "the web console's files; empty = share/ward/console beside wardd's bin/ directory"),
	F("server", "session_lifetime", INI_DURATION, session_lifetime, "8h", 300, 7 * 86400,
	  "how long an administrator's session (console or command line) lasts after sign-in"),
	F("server", "session_idle", INI_DURATION, session_idle, "30m", 5, 7 * 86400,
	  "a console session unused for this long ends"),
	F("agents", "heartbeat_interval", INI_DURATION, heartbeat_interval, "60s", 5, 86400,
	  "how often agents report their status"),
	F("agents", "offline_after", INI_DURATION, offline_after, "150s", 10, 7 * 86400,
	  "an agent without event channel or heartbeat for this long is offline"),
	F("agents", "inactive_after", INI_DURATION, inactive_after, "30d", 3600, 3650 * 86400,
	  "an agent not seen for this long is inactive"),
	F("agents", "remove_after", INI_DURATION, remove_after, "90d", 3600, 3650 * 86400,
	  "an agent not seen for this long is removed from the tree by the daily task "
	  "(never uninstalled)"),
	F("agents", "verify_interval", INI_DURATION, verify_interval, "10m", 10, 86400,
	  "how often connection states are verified and changes logged"),
	F("agents", "default_domain", INI_STRING, default_domain, "/", 0, 0,
	  "domain path where new agents land when no grouping rule matches"),
	F("notify", "batch", INI_INT, notify_batch, "500", 1, 1000000,
	  "agents notified of a change at once"),
	F("notify", "ack_timeout", INI_DURATION, ack_timeout, "120s", 1, 86400,
	  "a notified agent that has not acknowledged after this long counts as failed"),
	F("notify", "retry_interval", INI_DURATION, retry_interval, "15m", 1, 86400,
	  "failed deliveries are retried this often"),
	F("notify", "retries", INI_INT, retries, "5", 0, 1000,
	  "retries of a failed delivery before it waits for the agent to reconnect"),
	F("updates", "source_dir", INI_STRING, source_dir, "/var/lib/clamav", 0, 0,
	  "directory of ClamAV databases (.cvd, .cld; kept current by freshclam) and custom "
	  "signature files, from which the components are built"),
	F("updates", "watch_interval", INI_DURATION, watch_interval, "10s", 1, 3600,
	  "how often the source directory is looked at for changed files"),
	F("updates", "check_interval", INI_DURATION, check_interval, "1h", 60, 7 * 86400,
	  "how often the source is imported in full, changed or not"),
	F("updates", "keep_deltas", INI_INT, keep_deltas, "8", 0, 1000,
	  "how many versions back an agent can update by deltas instead of a full package"),
	F("updates", "max_downloads", INI_INT, max_downloads, "50", 1, 100000,
	  "package downloads served at once; more are answered 503 with Retry-After"),
	F("updates", "retry_after", INI_DURATION, retry_after, "5s", 1, 3600,
	  "the Retry-After of a download refused for the cap (agents add random jitter)"),
	F("sps", "enabled", INI_BOOL, sps_enabled, "yes", 0, 0,
	  "serve the Smart Scan Pattern to smart-scan agents (the integrated smart protection "
	  "server, at /sps/v1/ on the server's own address)"),
	F("sps", "ttl", INI_DURATION, sps_ttl, "1h", 0, 7 * 86400,
	  "how long agents may keep a lookup's answers (a new pattern flushes them anyway)"),
	F("logs", "keep", INI_DURATION, logs_keep, "90d", 86400, 3650 * 86400,
	  "how long the event log (system, verification, deliveries, detections) is kept"),
	F("http", "max_connections", INI_INT, max_connections, "16000", 16, 1000000,
	  "simultaneous connections (agents hold one each); when all are taken, a new one "
	  "replaces the one waiting longest for its request; wardd raises its open files limit "
	  "to this + admin_reserve + 256, or refuses to start"),
	F("http", "admin_reserve", INI_INT, admin_reserve, "32", 0, 10000,
	  "connections beyond max_connections kept for administrators, when none waits to be "
	  "replaced: on them only sign-in, the console's files and requests of a signed-in "
	  "administrator are served"),
	F("http", "max_per_address", INI_INT, max_per_address, "256", 1, 1000000,
	  "simultaneous connections from one IPv4 address or IPv6 /64 (agents behind one NAT "
	  "address share it: raise it for them)"),
	F("http", "header_timeout", INI_DURATION, header_timeout, "20s", 1, 3600,
	  "a request's headers must be in within this long after connecting or the last "
	  "answer, however slowly they trickle in (idle kept-alive connections close then too)"),
	F("http", "body_timeout", INI_DURATION, body_timeout, "60s", 1, 3600,
	  "a request's body must be in within this long after its headers"),
	F("http", "max_request", INI_INT, max_request, "1048576", 1024, 64 << 20,
	  "largest request body accepted, in bytes"),
	F("http", "long_poll", INI_DURATION, long_poll, "55s", 1, 3600,
	  "how long an agent's event channel is held before it is answered empty"),
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

bool config_load(struct config *cfg, const char *path, char *errbuf, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (!ini_defaults(fields, NFIELDS, cfg, errbuf, errlen))
		return false;
	if (path && !ini_load(path, fields, NFIELDS, cfg, errbuf, errlen))
		return false;
	if (cfg->offline_after <= cfg->heartbeat_interval) {
		snprintf(errbuf, errlen, "%s: agents.offline_after (%llds) must exceed "
			 "agents.heartbeat_interval (%llds)", path ? path : "defaults",
			 (long long)cfg->offline_after, (long long)cfg->heartbeat_interval);
		return false;
	}
	return true;
}

void config_print_defaults(FILE *f)
{
	const char *section = "";
	size_t i;

	fputs("# wardd configuration: every option at its default.\n", f);
	for (i = 0; i < NFIELDS; i++) {
		if (strcmp(section, fields[i].section) != 0) {
			section = fields[i].section;
			fprintf(f, "\n[%s]\n", section);
		}
		fprintf(f, "# %s\n%s =%s%s\n", fields[i].help, fields[i].key,
			fields[i].def[0] ? " " : "", fields[i].def);
	}
}

void config_free(struct config *cfg)
{
	ini_free(fields, NFIELDS, cfg);
}
