/* test_settings.c -- the settings table's schedules and numbers: which
 * schedules parse, when each next falls due (local time, across days and
 * weeks), the range of update.window, the protection settings (real time,
 * scans, actions, quarantine) and their lists of paths. */
#include <string.h>

#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "common/settings.h"

static char msg[256];

/* The Unix time of a local date and time. */
static time_t local(int y, int mon, int d, int h, int min, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = min, .tm_sec = s, .tm_isdst = -1 };

	return mktime(&tm);
}

static bool valid(const char *key, const char *json)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	bool ok = settings_validate(settings_find(key), v, SETTINGS_AT_DOMAIN, msg, sizeof(msg));

	json_decref(v);
	return ok;
}

int main(void)
{
	struct settings_schedule sc;
	time_t now;

	setenv("TZ", "UTC", 1);
	tzset();
	CHECK(settings_schedule_parse("every 10s", &sc) && sc.every == 10);
	CHECK(settings_schedule_parse("every 90", &sc) && sc.every == 90);
	CHECK(settings_schedule_parse("every 30m", &sc) && sc.every == 1800);
	CHECK(settings_schedule_parse("every 4h", &sc) && sc.every == 4 * 3600);
	CHECK(settings_schedule_parse("hourly", &sc) && sc.every == 3600);
	CHECK(!settings_schedule_parse("every 9s", &sc));
	CHECK(!settings_schedule_parse("every 8d", &sc));
	CHECK(!settings_schedule_parse("every 0m", &sc));
	CHECK(!settings_schedule_parse("every 5mm", &sc));
	CHECK(!settings_schedule_parse("every m", &sc));
	CHECK(!settings_schedule_parse("daily 24:00", &sc));
	CHECK(!settings_schedule_parse("weekly fun 01:00", &sc));

	/* 2026-11-22 is a Sunday. */
	now = local(2026, 11, 22, 10, 17, 5);
	CHECK(settings_schedule_parse("every 30m", &sc));
	CHECK(settings_schedule_next(&sc, now) == local(2026, 11, 22, 10, 30, 0));
	CHECK(settings_schedule_parse("daily 03:00", &sc));
	CHECK(settings_schedule_next(&sc, now) == local(2026, 11, 23, 3, 0, 0));
	CHECK(settings_schedule_parse("daily 22:15", &sc));
	CHECK(settings_schedule_next(&sc, now) == local(2026, 11, 22, 22, 15, 0));
	CHECK(settings_schedule_parse("weekly sun 10:17", &sc));
	CHECK(settings_schedule_next(&sc, now) == local(2026, 11, 29, 10, 17, 0));
	CHECK(settings_schedule_parse("weekly wed 01:00", &sc));
	CHECK(settings_schedule_next(&sc, now) == local(2026, 11, 25, 1, 0, 0));
	CHECK(settings_schedule_parse("weekly sun 23:00", &sc));
	CHECK(settings_schedule_next(&sc, now) == local(2026, 11, 22, 23, 0, 0));

	CHECK(valid("update.schedule", "\"every 15m\""));
	CHECK(!valid("update.schedule", "\"every 5s\""));
	CHECK_STR_CONTAINS(msg, "update.schedule: expected");
	CHECK(valid("update.window", "0"));
	CHECK(valid("update.window", "1440"));
	CHECK(!valid("update.window", "1441"));
	CHECK_STR_CONTAINS(msg, "update.window: expected a whole number from 0 to 1440");
	CHECK(!valid("update.window", "\"60\""));

	/* Every default is valid at the root. */
	{
		const struct settings_def *defs;
		size_t n, i;
		json_t *d = settings_defaults(), *v;

		defs = settings_table(&n);
		CHECK(d != NULL && json_object_size(d) == n);
		for (i = 0; i < n; i++) {
			v = json_object_get(d, defs[i].key);
			CHECK(settings_validate(&defs[i], v, SETTINGS_AT_ROOT, msg, sizeof(msg)));
		}
		json_decref(d);
	}
	CHECK(valid("realtime.paths", "[\"/\", \"/home\", \"/srv/www data\", \"/a..b\"]"));
	CHECK(valid("scan.exclude_paths", "[]"));
	CHECK(!valid("realtime.paths", "\"/home\""));
	CHECK_STR_CONTAINS(msg, "realtime.paths: expected a list of at most 256 absolute paths");
	CHECK(!valid("realtime.paths", "[\"/home\", 7]"));
	CHECK_STR_CONTAINS(msg, "realtime.paths[1]: expected a path");
	CHECK(!valid("scan.paths", "[\"home\"]"));
	CHECK_STR_CONTAINS(msg, "scan.paths[0]: 'home' is not a path it takes: not an "
			   "absolute path");
	CHECK(!valid("scan.paths", "[\"/home/\"]"));
	CHECK_STR_CONTAINS(msg, "a trailing slash");
	CHECK(!valid("scan.paths", "[\"/home/../etc\"]"));
	CHECK_STR_CONTAINS(msg, "a . or .. component");
	CHECK(!valid("scan.paths", "[\"/home/..\"]"));
	CHECK(!valid("scan.paths", "[\"/./home\"]"));
	CHECK(!valid("scan.paths", "[\"/home//x\"]"));
	CHECK_STR_CONTAINS(msg, "an empty component");
	{
		/* A NUL inside a string (jansson keeps it when asked to). */
		json_t *list = json_pack("[o]", json_stringn("/usr/bin/a\0b", 12));

		CHECK(!settings_validate(settings_find("realtime.exclude_processes"), list,
					 SETTINGS_AT_ROOT, msg, sizeof(msg)));
		CHECK_STR_CONTAINS(msg, "realtime.exclude_processes[0]");
		CHECK_STR_CONTAINS(msg, "a NUL byte");
		json_decref(list);
	}
	{
		/* 4096 bytes pass, 4097 do not; 256 entries pass, 257 do not. */
		static char big[4200 + 8];
		json_t *list = json_array();

		memset(big, 'a', sizeof(big) - 1);
		big[0] = '/';
		big[4096] = '\0';
		json_array_append_new(list, json_string(big));
		CHECK(settings_validate(settings_find("scan.paths"), list, SETTINGS_AT_CLIENT, msg,
					sizeof(msg)));
		big[4096] = 'a';
		big[4097] = '\0';
		json_array_set_new(list, 0, json_string(big));
		CHECK(!settings_validate(settings_find("scan.paths"), list, SETTINGS_AT_CLIENT, msg,
					 sizeof(msg)));
		CHECK_STR_CONTAINS(msg, "longer than 4096 bytes");
		json_array_clear(list);
		while (json_array_size(list) < SETTINGS_MAX_PATHS)
			json_array_append_new(list, json_string("/x"));
		CHECK(settings_validate(settings_find("scan.paths"), list, SETTINGS_AT_CLIENT, msg,
					sizeof(msg)));
		json_array_append_new(list, json_string("/x"));
		CHECK(!settings_validate(settings_find("scan.paths"), list, SETTINGS_AT_CLIENT, msg,
					 sizeof(msg)));
		json_decref(list);
	}
	CHECK(valid("realtime.mode", "\"detect\""));
	CHECK(!valid("realtime.mode", "\"prevent\""));
	CHECK_STR_CONTAINS(msg, "realtime.mode: expected one of detect, block");
	CHECK(valid("realtime.timeout", "60"));
	CHECK(!valid("realtime.timeout", "0"));
	CHECK_STR_CONTAINS(msg, "realtime.timeout: expected a whole number from 1 to 60");
	CHECK(valid("realtime.max_size", "1048576"));
	CHECK(!valid("realtime.max_size", "1048575"));
	CHECK(valid("quarantine.max_size", "1099511627776"));
	CHECK(!valid("quarantine.max_size", "1099511627777"));
	CHECK(!valid("quarantine.retention_days", "0"));
	CHECK(valid("quarantine.central_max_file", "0"));
	CHECK(valid("scan.schedule", "\"weekly sun 02:00\""));
	CHECK(valid("scan.cpu", "\"normal\""));
	CHECK(!valid("action.pua.second", "\"shred\""));
	CHECK_STR_CONTAINS(msg, "action.pua.second: expected one of quarantine, delete, "
			   "rename, pass");
	return check_finish();
}
