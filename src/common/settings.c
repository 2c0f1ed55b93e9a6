/* settings.c -- the client settings table (see settings.h). */
#include "common/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scan_methods[] = { "smart", "conventional", NULL };

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
	{ "roaming", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "false",
	  "the agent may roam: while away it gets no pushes and sends no logs", 0, 0 },
};

/* Keys once offered that nothing read (restart.notify and
 * restart.postpone_updates, until agents restart for updates): wardd drops
 * their stored values when it opens its database, and passes over them in
 * an older export. */
static const char *const retired[] = { "restart.notify", "restart.postpone_updates" };

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

const char *settings_retired_key(size_t i)
{
	return i < sizeof(retired) / sizeof(retired[0]) ? retired[i] : NULL;
}

bool settings_retired(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(retired) / sizeof(retired[0]); i++)
		if (strcmp(retired[i], key) == 0)
			return true;
	return false;
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
