/* settings.c -- the client settings table (see settings.h). */
#include "common/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scan_methods[] = { "smart", "conventional", NULL };
static const char *const realtime_modes[] = { "detect", "block", NULL };
static const char *const on_timeouts[] = { "allow", "deny", NULL };
static const char *const cpu_levels[] = { "low", "normal", NULL };
static const char *const actions[] = { "quarantine", "delete", "rename", "pass", NULL };
static const char *const upgrade_modes[] = { "allow", "prevent", NULL };

#define MIB (1024LL * 1024)

/* Conventional scan is the default: it needs nothing but the agent's own
 * pattern, where smart scan also needs a reachable smart protection server. */
static const struct settings_def table[] = {
	{ "scan_method", SETTINGS_ENUM, SETTINGS_AT_ANY, scan_methods, "\"conventional\"",
	  "smart (local agent pattern plus smart protection server) or conventional", 0, 0 },
	{ "update.scheduled", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "true",
	  "the agent updates its components on a schedule", 0, 0 },
	{ "update.schedule", SETTINGS_SCHEDULE, SETTINGS_AT_ANY, NULL, "\"daily 03:00\"",
	  "when scheduled updates run: hourly, daily HH:MM, weekly DAY HH:MM or every N "
	  "(seconds, or N followed by s, m or h; at least 10 seconds)", 0, 0 },
	{ "update.window", SETTINGS_INT, SETTINGS_AT_ANY, NULL, "60",
	  "minutes over which agents spread a scheduled update at random, so that they do "
	  "not all arrive at once", 0, 24 * 60 },
	{ "update.allow_update_now", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "true",
	  "users may start an update from the agent (Update Now)", 0, 0 },
	{ "agent.upgrade", SETTINGS_ENUM, SETTINGS_AT_ANY, upgrade_modes, "\"allow\"",
	  "allow: the agent is upgraded when a new version is rolled out (ward agent-upgrade "
	  "start); prevent: it stays on the version it has", 0, 0 },
	{ "restart.postpone_updates", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "false",
	  "updates that need a restart (a new agent program: of the agent, or of the host) "
	  "wait for the next one instead of interrupting protection now; the agent reports "
	  "the restart pending", 0, 0 },
	{ "restart.notify", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "false",
	  "logged-in users are told, once, when an update waits for a restart: on their "
	  "terminals, and by a desktop notification where a desktop session runs", 0, 0 },
	{ "roaming", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "false",
	  "the agent may roam: while away it gets no pushes and sends no logs", 0, 0 },
	{ "realtime.enabled", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "false",
	  "real-time (on-access) scanning with fanotify", 0, 0 },
	{ "realtime.mode", SETTINGS_ENUM, SETTINGS_AT_ANY, realtime_modes, "\"block\"",
	  "detect: log and allow an infected file; block: deny access to it, then act", 0, 0 },
	{ "realtime.paths", SETTINGS_PATHS, SETTINGS_AT_ANY, NULL,
	  "[\"/home\",\"/root\",\"/tmp\",\"/var/tmp\",\"/srv\",\"/opt\"]",
	  "trees whose files are scanned when opened (programs are scanned when run "
	  "everywhere)", 0, 0 },
	{ "realtime.exclude_paths", SETTINGS_PATHS, SETTINGS_AT_ANY, NULL, "[]",
	  "trees real-time scanning passes over", 0, 0 },
	{ "realtime.exclude_processes", SETTINGS_PATHS, SETTINGS_AT_ANY, NULL, "[]",
	  "programs (executable paths) whose file accesses real-time scanning passes over",
	  0, 0 },
	{ "realtime.max_size", SETTINGS_INT, SETTINGS_AT_ANY, NULL, "134217728",
	  "bytes: larger files are not scanned in real time (logged)", MIB, 2047 * MIB },
	{ "realtime.timeout", SETTINGS_INT, SETTINGS_AT_ANY, NULL, "3",
	  "seconds a file access waits for its verdict; then realtime.on_timeout applies",
	  1, 60 },
	{ "realtime.on_timeout", SETTINGS_ENUM, SETTINGS_AT_ANY, on_timeouts, "\"allow\"",
	  "an access whose verdict is late: allow (logged, rescanned) or deny", 0, 0 },
	{ "scan.scheduled", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "false",
	  "the agent runs a scan on a schedule", 0, 0 },
	{ "scan.schedule", SETTINGS_SCHEDULE, SETTINGS_AT_ANY, NULL, "\"weekly sun 02:00\"",
	  "when scheduled scans run (as update.schedule)", 0, 0 },
	{ "scan.paths", SETTINGS_PATHS, SETTINGS_AT_ANY, NULL, "[\"/\"]",
	  "trees scheduled scans and Scan Now scan", 0, 0 },
	{ "scan.exclude_paths", SETTINGS_PATHS, SETTINGS_AT_ANY, NULL,
	  "[\"/proc\",\"/sys\",\"/dev\",\"/run\"]",
	  "trees scheduled scans and Scan Now pass over", 0, 0 },
	{ "scan.cpu", SETTINGS_ENUM, SETTINGS_AT_ANY, cpu_levels, "\"low\"",
	  "low: one thread at the lowest CPU and idle I/O priority; normal", 0, 0 },
	{ "action.malware.first", SETTINGS_ENUM, SETTINGS_AT_ANY, actions, "\"quarantine\"",
	  "what is done to a file with malware", 0, 0 },
	{ "action.malware.second", SETTINGS_ENUM, SETTINGS_AT_ANY, actions, "\"delete\"",
	  "what is done to it when the first action fails", 0, 0 },
	{ "action.pua.first", SETTINGS_ENUM, SETTINGS_AT_ANY, actions, "\"quarantine\"",
	  "what is done to a potentially unwanted application (a PUA. name)", 0, 0 },
	{ "action.pua.second", SETTINGS_ENUM, SETTINGS_AT_ANY, actions, "\"pass\"",
	  "what is done to it when the first action fails", 0, 0 },
	{ "quarantine.retention_days", SETTINGS_INT, SETTINGS_AT_ANY, NULL, "30",
	  "days a quarantined file is kept before it is deleted", 1, 3650 },
	{ "quarantine.max_size", SETTINGS_INT, SETTINGS_AT_ANY, NULL, "1073741824",
	  "bytes the agent's quarantine may take; past it the oldest go first (logged)",
	  MIB, 1024LL * 1024 * MIB },
	{ "quarantine.central", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "false",
	  "the agent copies each quarantined file (encrypted) to the server", 0, 0 },
	{ "quarantine.central_max_file", SETTINGS_INT, SETTINGS_AT_ANY, NULL, "33554432",
	  "bytes: larger quarantined files are not copied to the server (the server's own "
	  "quarantine.central_max_file caps it too)", 0, 1024LL * MIB },
	{ "posture.component_max_age_hours", SETTINGS_INT, SETTINGS_AT_ANY, NULL, "24",
	  "posture: the pattern of the client's scan method may be out of date (a newer one "
	  "on the server) this many hours at most; 0: not checked", 0, 8760 },
	{ "posture.realtime_required", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "true",
	  "posture: real-time protection must be on", 0, 0 },
	{ "posture.full_scan_max_age_days", SETTINGS_INT, SETTINGS_AT_ANY, NULL, "7",
	  "posture: a full scan (of scan.paths, scheduled or Scan Now) must have completed "
	  "within this many days; 0: not checked", 0, 3650 },
	{ "posture.license_required", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "true",
	  "posture: a valid license (active, or in its grace period) must cover each service "
	  "the client uses", 0, 0 },
	{ "posture.threats_resolved", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "true",
	  "posture: no detection may be left unresolved (a threat passed, denied or whose "
	  "actions failed, still in place)", 0, 0 },
};

#define NSETTINGS (sizeof(table) / sizeof(table[0]))

const struct settings_def *settings_table(size_t *n)
{
	*n = NSETTINGS;
	return table;
}

const struct settings_def *settings_find(const char *key)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		if (strcmp(table[i].key, key) == 0)
			return &table[i];
	return NULL;
}

bool settings_path_ok(const char *path, size_t len, const char **why)
{
	const char *p, *end = path + len, *slash;

	*why = NULL;
	if (len == 0 || path[0] != '/')
		*why = "not an absolute path";
	else if (len > SETTINGS_MAX_PATH_LEN)
		*why = "longer than 4096 bytes";
	else if (memchr(path, '\0', len))
		*why = "a NUL byte";
	else if (len > 1 && path[len - 1] == '/')
		*why = "a trailing slash";
	for (p = path + 1; !*why && len > 1 && p <= end; p = slash + 1) {
		slash = memchr(p, '/', (size_t)(end - p));
		if (!slash)
			slash = end;
		if (slash == p)
			*why = "an empty component (//)";
		else if ((slash - p == 1 && p[0] == '.') ||
			 (slash - p == 2 && p[0] == '.' && p[1] == '.'))
			*why = "a . or .. component";
	}
	return *why == NULL;
}

/* Checks a SETTINGS_PATHS value; false with errbuf naming the entry. */
static bool paths_valid(const struct settings_def *def, const json_t *value, char *errbuf,
			size_t errlen)
{
	const char *why;
	json_t *v;
	size_t i;

	if (!json_is_array(value) || json_array_size(value) > SETTINGS_MAX_PATHS) {
		snprintf(errbuf, errlen, "%s: expected a list of at most %d absolute paths",
			 def->key, SETTINGS_MAX_PATHS);
		return false;
	}
	json_array_foreach(value, i, v) {
		if (!json_is_string(v)) {
			snprintf(errbuf, errlen, "%s[%zu]: expected a path (a string)", def->key,
				 i);
			return false;
		}
		if (!settings_path_ok(json_string_value(v), json_string_length(v), &why)) {
			snprintf(errbuf, errlen, "%s[%zu]: '%.64s' is not a path it takes: %s "
				 "(absolute, no . or .. components, no trailing slash, at most "
				 "%d bytes)", def->key, i, json_string_value(v), why,
				 SETTINGS_MAX_PATH_LEN);
			return false;
		}
	}
	return true;
}

/* Parses "HH:MM" (24-hour clock) exactly into seconds after midnight. */
static bool parse_clock(const char *s, long *secs)
{
	unsigned h, m;
	int end = 0;

	if (strlen(s) != 5 || sscanf(s, "%2u:%2u%n", &h, &m, &end) != 2 || end != 5 ||
	    s[0] < '0' || s[0] > '9' || s[3] < '0' || s[3] > '9' || h >= 24 || m >= 60)
		return false;
	*secs = (long)(h * 3600 + m * 60);
	return true;
}

bool settings_schedule_parse(const char *s, struct settings_schedule *out)
{
	static const char *const days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
	char *end;
	long n;
	int i;

	memset(out, 0, sizeof(*out));
	out->weekday = -1;
	if (strcmp(s, "hourly") == 0) {
		out->every = 3600;
		return true;
	}
	if (strncmp(s, "every ", 6) == 0 && s[6] >= '1' && s[6] <= '9') {
		n = strtol(s + 6, &end, 10);
		if (*end == 'm' || *end == 'h')
			n *= *end == 'm' ? 60 : 3600;
		if ((*end == 's' || *end == 'm' || *end == 'h') && end[1] == '\0')
			end++;
		out->every = n;
		return *end == '\0' && n >= 10 && n <= 7 * 86400;
	}
	if (strncmp(s, "daily ", 6) == 0)
		return parse_clock(s + 6, &out->at);
	if (strncmp(s, "weekly ", 7) == 0 && strlen(s) == 7 + 3 + 1 + 5 && s[10] == ' ') {
		for (i = 0; i < 7; i++)
			if (strncmp(s + 7, days[i], 3) == 0) {
				out->weekday = i;
				return parse_clock(s + 11, &out->at);
			}
	}
	return false;
}

time_t settings_schedule_next(const struct settings_schedule *sc, time_t now)
{
	struct tm tm;
	time_t t;
	int i;

	if (sc->every)
		return now - now % sc->every + sc->every;
	localtime_r(&now, &tm);
	tm.tm_hour = (int)(sc->at / 3600);
	tm.tm_min = (int)(sc->at % 3600 / 60);
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	/* The first matching day from today on whose time is still ahead. */
	for (i = 0; i <= 7; i++) {
		struct tm day = tm;

		day.tm_mday += i;
		t = mktime(&day);
		localtime_r(&t, &day);
		if (t > now && (sc->weekday < 0 || day.tm_wday == sc->weekday))
			return t;
	}
	return now + 86400;
}

static const char *level_name(unsigned level)
{
	return level == SETTINGS_AT_ROOT ? "the root" :
	       level == SETTINGS_AT_DOMAIN ? "a domain" : "a client";
}

bool settings_validate(const struct settings_def *def, const json_t *value, unsigned level,
		       char *errbuf, size_t errlen)
{
	struct settings_schedule sc;
	size_t i;

	if (!(def->levels & level)) {
		snprintf(errbuf, errlen, "%s: cannot be set on %s (root only)", def->key,
			 level_name(level));
		return false;
	}
	switch (def->type) {
	case SETTINGS_BOOL:
		if (json_is_boolean(value))
			return true;
		snprintf(errbuf, errlen, "%s: expected true or false", def->key);
		return false;
	case SETTINGS_ENUM:
		if (json_is_string(value))
			for (i = 0; def->choices[i]; i++)
				if (strcmp(json_string_value(value), def->choices[i]) == 0)
					return true;
		snprintf(errbuf, errlen, "%s: expected one of", def->key);
		for (i = 0; def->choices[i]; i++) {
			size_t n = strlen(errbuf);

			snprintf(errbuf + n, errlen > n ? errlen - n : 0, "%s %s", i ? "," : "",
				 def->choices[i]);
		}
		return false;
	case SETTINGS_SCHEDULE:
		if (json_is_string(value) && settings_schedule_parse(json_string_value(value), &sc))
			return true;
		snprintf(errbuf, errlen,
			 "%s: expected \"hourly\", \"daily HH:MM\", \"weekly DAY HH:MM\" "
			 "(DAY: mon..sun) or \"every N\" (10s to 7d, e.g. 90s, 30m, 4h)", def->key);
		return false;
	case SETTINGS_INT:
		if (json_is_integer(value) && json_integer_value(value) >= def->min &&
		    json_integer_value(value) <= def->max)
			return true;
		snprintf(errbuf, errlen, "%s: expected a whole number from %lld to %lld", def->key,
			 def->min, def->max);
		return false;
	case SETTINGS_PATHS:
		return paths_valid(def, value, errbuf, errlen);
	}
	snprintf(errbuf, errlen, "%s: unknown type", def->key);
	return false;
}

json_t *settings_defaults(void)
{
	json_t *obj = json_object(), *v;
	size_t i;

	if (!obj)
		return NULL;
	for (i = 0; i < NSETTINGS; i++) {
		v = json_loads(table[i].default_json, JSON_DECODE_ANY, NULL);
		if (!v || json_object_set_new(obj, table[i].key, v) != 0) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}
