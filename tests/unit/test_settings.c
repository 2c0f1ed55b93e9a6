/* test_settings.c -- the settings table's schedules and numbers: which
 * schedules parse, when each next falls due (local time, across days and
 * weeks), and the range of update.window. */
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
	return check_finish();
}
