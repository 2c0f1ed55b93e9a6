/* config.c -- wardd's configuration table (see config.h). */
#include "server/config.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/ini.h"
#include "common/settings.h"
#include "sps/service.h"

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
	F("server", "database", INI_STRING, database, "", 0, 0,
	  "empty = SQLite, ward.db in data_dir; else a PostgreSQL connection URI "
	  "(postgresql://USER@HOST:PORT/DBNAME?sslmode=verify-full)"),
	F("server", "frontend", INI_INT, frontend, "0", 0, 1023,
	  "this wardd's number among several on one PostgreSQL database, each its own"),
	F("server", "frontends", INI_STRING, frontends, "", 0, 0,
	  "the URLs agents reach the wardd of this database by (https://HOST:PORT, "
	  "comma-separated, tried in turn when one fails); empty = this server's own"),
	F("server", "console_dir", INI_STRING, console_dir, "", 0, 0,
	  "the web console's files; empty = share/ward/console beside wardd's bin/ directory"),
	F("server", "session_lifetime", INI_DURATION, session_lifetime, "8h", 300, 7 * 86400,
	  "how long an administrator's session (console or command line) lasts after sign-in"),
	F("server", "session_idle", INI_DURATION, session_idle, "30m", 5, 7 * 86400,
	  "a console session unused for this long ends"),
	F("server", "signin_workers", INI_INT, signin_workers, "2", 1, 64,
	  "threads that verify and hash administrators' passwords (Argon2id), off the loop "
	  "that answers requests"),
	F("server", "signin_queue", INI_INT, signin_queue, "32", 1, 10000,
	  "sign-ins and password changes waiting or being verified at once; more are answered "
	  "503 with Retry-After"),
	F("server", "signin_brake_failures", INI_INT, signin_brake_failures, "50", 1, 1000000,
	  "wrong passwords from all addresses together within signin_brake_window that engage "
	  "the global brake (besides each address's own)"),
	F("server", "signin_brake_window", INI_DURATION, signin_brake_window, "5m", 10, 86400,
	  "the window wrong passwords are counted over; the brake holds until a window passes "
	  "after the last one that kept it engaged"),
	F("server", "signin_brake_pace", INI_DURATION, signin_brake_pace, "1s", 1, 60,
	  "while the brake is engaged, sign-ins are verified one at a time, this far apart"),
	F("server", "password_min_length", INI_INT, password_min_length, "12", 8, 1024,
	  "shortest password an administrator may be given, in bytes"),
	F("agents", "heartbeat_interval", INI_DURATION, heartbeat_interval, "60s", 5, 86400,
	  "how often agents report their status"),
	F("agents", "offline_after", INI_DURATION, offline_after, "150s", 10, 7 * 86400,
	  "an agent without event channel or heartbeat for this long is offline"),
	F("agents", "inactive_after", INI_DURATION, inactive_after, "30d", 3600, 3650 * 86400,
	  "an agent not seen for this long is inactive"),
	F("agents", "remove_after", INI_DURATION, remove_after, "90d", 3600, 3650 * 86400,
	  "an agent not seen for this long is removed from the tree by the daily task "
	  "(never uninstalled)"),
	F("agents", "removed_keep", INI_DURATION, removed_keep, "30d", 3600, 3650 * 86400,
	  "how long a client removed from the tree is kept for an administrator to restore "
	  "(ward client restore)"),
	F("agents", "verify_interval", INI_DURATION, verify_interval, "10m", 10, 86400,
	  "how often connection states are verified and changes logged"),
	F("agents", "default_domain", INI_STRING, default_domain, "/", 0, 0,
	  "domain path where new agents land when no grouping rule matches"),
	F("enroll", "bootstrap_lifetime", INI_DURATION, bootstrap_lifetime, "7d", 3600,
	  365 * 86400, "how long the enrollment token wardd makes for itself (DATA_DIR/"
	  "enroll.bundle, when no other is in force) stays valid"),
	F("enroll", "per_token", INI_INT, enroll_per_token, "60", 0, 1000000,
	  "enrollments one token may make a minute (bursts of as many); 0 = no limit"),
	F("enroll", "per_address", INI_INT, enroll_per_address, "20", 0, 1000000,
	  "enrollments from one address (an IPv6 /64) a minute, bursts of as many; agents "
	  "behind one NAT share it; 0 = no limit"),
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
	F("updates", "max_downloads_per_client", INI_INT, max_downloads_per_client, "2", 1,
	  100000, "package downloads one agent (one credential) is served at once; more are "
	  "answered 429 with Retry-After"),
	F("updates", "download_idle", INI_DURATION, download_idle, "30s", 1, 3600,
	  "a download whose client takes nothing for this long is cut off, freeing its slot"),
	F("sps", "enabled", INI_BOOL, sps_enabled, "yes", 0, 0,
	  "serve the Smart Scan Pattern to smart-scan agents (the integrated smart protection "
	  "server, at /sps/v1/ on the server's own address)"),
	F("sps", "ttl", INI_DURATION, sps_ttl, "1h", 0, 7 * 86400,
	  "how long agents may keep a lookup's answers (a new pattern flushes them anyway)"),
	F("sps", "max_answer_entries", INI_INT, sps_max_answer_entries, "8192", 256, 1 << 20,
	  "entries one lookup's answer holds at most; a lookup drawing more is answered 413 "
	  "(agents then ask for fewer prefixes at once)"),
	F("sps", "max_answer_bytes", INI_INT, sps_max_answer_bytes, "1048576",
	  SPS_MIN_ANSWER_BYTES, 64 << 20,
	  "bytes one lookup's answer takes at most; a lookup drawing more is answered 413"),
	F("sps", "max_held_answers", INI_INT, sps_max_held_answers, "67108864", 1 << 20,
	  (int64_t)1 << 34, "bytes of answers wardd keeps for clients that have not yet read "
	  "them; past it lookups are answered 503 with Retry-After"),
	F("logs", "keep", INI_DURATION, logs_keep, "90d", 86400, 3650 * 86400,
	  "how long the event log (system, verification, deliveries, detections) is kept"),
	F("logs", "detections_per_hour", INI_INT, detections_per_hour, "1000", 1000, 100000000,
	  "detections one agent may report in an hour; past it reports are answered 429 with "
	  "Retry-After and the agent keeps them"),
	F("logs", "detections_per_day", INI_INT, detections_per_day, "5000", 1000, 100000000,
	  "detections one agent may report in a day (its quota); past it as above"),
	F("tasks", "expire", INI_DURATION, tasks_expire, "24h", 10, 365 * 86400,
	  "a task (Scan Now, a quarantine restore or delete, a cancellation) its agent has not "
	  "reported on for this long fails as expired: an offline agent keeps it until then"),
	F("tasks", "max_per_client", INI_INT, tasks_max_per_client, "32", 1, 10000,
	  "unfinished tasks one client may have; more are refused"),
	F("quarantine", "max_items", INI_INT, quarantine_max_items, "10000", 1, 10000000,
	  "quarantine records the server keeps of one agent; a report past it is refused 413"),
	F("quarantine", "max_report", INI_INT, quarantine_max_report, "1000", 1, 100000,
	  "quarantine records one report of an agent may carry (it sends more in several)"),
	F("quarantine", "central_max_file", INI_INT, quarantine_central_max_file, "33554432",
	  0, 1LL << 30, "bytes of one quarantined file's copy in the central quarantine (larger "
	  "copies are refused 413; the client setting quarantine.central_max_file may lower it); "
	  "wardd holds a copy in memory while receiving it"),
	F("quarantine", "central_max_total", INI_INT, quarantine_central_max_total,
	  "10737418240", 0, 1LL << 50, "bytes the central quarantine (DATA_DIR/quarantine) may "
	  "hold in all; past it copies are refused 507"),
	F("quarantine", "max_uploads", INI_INT, quarantine_max_uploads, "4", 1, 1000,
	  "copies received at once (each held in memory up to central_max_file); more are "
	  "answered 503 with Retry-After"),
	F("backup", "dir", INI_STRING, backup_dir, "/var/lib/ward/backups", 0, 0,
	  "where `wardd backup` writes its archives when not told a file (ward-HOST-TIME.wbk)"),
	F("backup", "passphrase_file", INI_STRING, backup_passphrase_file, "", 0, 0,
	  "a file (readable by wardd's user only) holding the passphrase archives are encrypted "
	  "with (Argon2id, then XChaCha20-Poly1305); `wardd backup` and `wardd restore` take "
	  "--passphrase-file or $WARD_BACKUP_PASSPHRASE instead"),
	F("backup", "schedule", INI_STRING, backup_schedule, "", 0, 0,
	  "when wardd backs itself up into backup.dir (\"daily HH:MM\", \"weekly DAY HH:MM\", "
	  "\"hourly\" or \"every N\"); empty: only when asked (`ward backup create`, the "
	  "console); needs backup.passphrase_file"),
	F("backup", "keep", INI_INT, backup_keep, "7", 1, 10000,
	  "archives named ward-*.wbk kept in backup.dir: after each backup wardd makes, the "
	  "oldest beyond this many are removed"),
	F("deploy", "package_dir", INI_STRING, deploy_package_dir, "/var/lib/ward/deploy", 0, 0,
	  "the agent's Debian packages wardd serves to the hosts it deploys to "
	  "(ward-agent_VERSION_ARCH.deb, from make deb): the newest of each architecture"),
	F("deploy", "timeout", INI_DURATION, deploy_timeout, "30m", 5, 7 * 86400,
	  "a deployment not enrolled this long after its host downloaded the install script "
	  "has timed out (until then it is in progress, and upgrades wait for it)"),
	F("deploy", "max_in_progress", INI_INT, deploy_max_in_progress, "10000", 1, 1000000,
	  "deployments in progress at once; past it an install script is answered 503 with "
	  "Retry-After"),
	F("deploy", "keep", INI_DURATION, deploy_keep, "30d", 3600, 3650LL * 86400,
	  "how long ended deployments are listed"),
	F("alerts", "check_interval", INI_DURATION, alerts_check_interval, "30s", 1, 3600,
	  "how often the conditions alert rules watch (outbreaks, outdated components, smart "
	  "protection, real-time protection, imports, backups, licenses) are looked at"),
	F("metrics", "token_file", INI_STRING, metrics_token_file, "", 0, 0,
	  "a file (readable by wardd's user only) holding a bearer token a scraper presents "
	  "for GET /metrics, and for nothing else; empty: administrators' sessions only"),
	F("license", "issuers", INI_STRING, license_issuers, "", 0, 0,
	  "the Ed25519 public keys (64 hex digits each, separated by commas) of the issuers "
	  "whose license files this server accepts (`ward license-issuer keygen` makes a key "
	  "pair); empty: none, only the 30-day evaluation license wardd made at its first "
	  "start"),
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

/* Decodes license.issuers into cfg->issuers. */
static bool issuers(struct config *cfg, const char *path, char *errbuf, size_t errlen)
{
	const char *p = cfg->license_issuers, *end;
	size_t n, got;

	cfg->nissuers = 0;
	while (*p) {
		p += strspn(p, " \t,");
		if (!*p)
			break;
		n = strcspn(p, " \t,");
		end = NULL;
		if (cfg->nissuers == CONFIG_MAX_ISSUERS) {
			snprintf(errbuf, errlen, "%s: license.issuers: more than %d keys",
				 path ? path : "defaults", CONFIG_MAX_ISSUERS);
			return false;
		}
		if (n != 64 || sodium_hex2bin(cfg->issuers[cfg->nissuers], 32, p, n, NULL, &got,
					      &end) != 0 || got != 32 || end != p + n) {
			snprintf(errbuf, errlen, "%s: license.issuers: key %zu: expected 64 hex "
				 "digits, not \"%.*s\"", path ? path : "defaults",
				 cfg->nissuers + 1, (int)(n > 80 ? 80 : n), p);
			return false;
		}
		cfg->nissuers++;
		p += n;
	}
	return true;
}

bool config_load(struct config *cfg, const char *path, char *errbuf, size_t errlen)
{
	struct settings_schedule sc;

	memset(cfg, 0, sizeof(*cfg));
	if (!ini_defaults(fields, NFIELDS, cfg, errbuf, errlen))
		return false;
	if (path && !ini_load(path, fields, NFIELDS, cfg, errbuf, errlen))
		return false;
	if (cfg->backup_schedule[0] && !settings_schedule_parse(cfg->backup_schedule, &sc)) {
		snprintf(errbuf, errlen, "%s: backup.schedule: expected \"hourly\", \"daily "
			 "HH:MM\", \"weekly DAY HH:MM\" or \"every N\", not \"%s\"",
			 path ? path : "defaults", cfg->backup_schedule);
		return false;
	}
	if (cfg->backup_schedule[0] && !cfg->backup_passphrase_file[0]) {
		snprintf(errbuf, errlen, "%s: backup.schedule needs backup.passphrase_file (the "
			 "archives are encrypted)", path ? path : "defaults");
		return false;
	}
	if (!issuers(cfg, path, errbuf, errlen))
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
	ini_print_defaults(f, "wardd", fields, NFIELDS);
}

void config_free(struct config *cfg)
{
	ini_free(fields, NFIELDS, cfg);
}
