/* settings.c -- the client settings table (see settings.h). */
#include "common/settings.h"

#include <stdio.h>
#include <string.h>

static const char *const scan_methods[] = { "smart", "conventional", NULL };

/* Conventional scan is the default: it needs nothing but the agent's own
 * pattern, where smart scan also needs a reachable smart protection server. */
static const struct settings_def table[] = {
	{ "scan_method", SETTINGS_ENUM, SETTINGS_AT_ANY, scan_methods, "\"conventional\"",
	  "smart (local agent pattern plus smart protection server) or conventional" },
	{ "update.scheduled", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "true",
	  "the agent updates its components on a schedule" },
	{ "update.schedule", SETTINGS_SCHEDULE, SETTINGS_AT_ANY, NULL, "\"daily 03:00\"",
	  "when scheduled updates run: hourly, daily HH:MM or weekly DAY HH:MM" },
	{ "update.allow_update_now", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "true",
	  "users may start an update from the agent (Update Now)" },
	{ "roaming", SETTINGS_BOOL, SETTINGS_AT_ANY, NULL, "false",
	  "the agent may roam: while away it gets no pushes and sends no logs" },
	{ "restart.notify", SETTINGS_BOOL, SETTINGS_AT_ROOT, NULL, "true",
	  "show a notification when an update needs a restart" },
	{ "restart.postpone_updates", SETTINGS_BOOL, SETTINGS_AT_ROOT, NULL, "false",
	  "postpone updates that need a restart until the next restart" },
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

/* Parses "HH:MM" (24-hour clock) exactly. */
static bool parse_clock(const char *s)
{
	unsigned h, m;
	int end = 0;

	if (strlen(s) != 5 || sscanf(s, "%2u:%2u%n", &h, &m, &end) != 2 || end != 5)
		return false;
	return s[0] >= '0' && s[0] <= '9' && s[3] >= '0' && s[3] <= '9' && h < 24 && m < 60;
}

static bool valid_schedule(const char *s)
{
	static const char *const days[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
	size_t i;

	if (strcmp(s, "hourly") == 0)
		return true;
	if (strncmp(s, "daily ", 6) == 0)
		return parse_clock(s + 6);
	if (strncmp(s, "weekly ", 7) == 0 && strlen(s) == 7 + 3 + 1 + 5 && s[10] == ' ') {
		for (i = 0; i < sizeof(days) / sizeof(days[0]); i++)
			if (strncmp(s + 7, days[i], 3) == 0)
				return parse_clock(s + 11);
	}
	return false;
}

static const char *level_name(unsigned level)
{
	return level == SETTINGS_AT_ROOT ? "the root" :
	       level == SETTINGS_AT_DOMAIN ? "a domain" : "a client";
}

bool settings_validate(const struct settings_def *def, const json_t *value, unsigned level,
		       char *errbuf, size_t errlen)
{
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
		if (json_is_string(value) && valid_schedule(json_string_value(value)))
			return true;
		snprintf(errbuf, errlen,
			 "%s: expected \"hourly\", \"daily HH:MM\" or \"weekly DAY HH:MM\" "
			 "(DAY: mon..sun)", def->key);
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
