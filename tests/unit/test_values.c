/* test_values.c -- the ward command line's client id lists and times
 * (src/cli/values.c), in time zones given as POSIX rules (no time zone
 * database needed), summer time included. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cli/values.h"

/* The ids word parses to, as compact JSON ("" when refused). */
static const char *ids(const char *word)
{
	static char out[256];
	json_t *list = json_array();
	char *text;

	out[0] = '\0';
	if (values_parse_ids(word, list)) {
		text = json_dumps(list, JSON_COMPACT);
		snprintf(out, sizeof(out), "%s", text ? text : "");
		free(text);
	}
	json_decref(list);
	return out;
}

static void test_ids(void)
{
	static const char *const bad[] = {
		"", " ", ",", ",6", "6,,8", "x", "0", "-1", "+6", "6;8", "6.0", "0x10", "[]",
		"[1.5]", "[\"1\"]", "[0]", "[1,", "99999999999999999999", "6 8 x",
	};
	json_t *list = json_array();
	size_t i;

	CHECK_STR_EQ(ids("6"), "[6]");
	CHECK_STR_EQ(ids("6,8"), "[6,8]");
	CHECK_STR_EQ(ids("6 8"), "[6,8]");
	CHECK_STR_EQ(ids(" 6 , 8 "), "[6,8]");
	CHECK_STR_EQ(ids("6,"), "[6]"); /* "6, 8" in a shell: "6," then "8" */
	CHECK_STR_EQ(ids("[6, 8]"), "[6,8]");
	CHECK_STR_EQ(ids("9223372036854775807"), "[9223372036854775807]");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_STR_EQ(ids(bad[i]), "");
		if (ids(bad[i])[0])
			fprintf(stderr, "    accepted '%s'\n", bad[i]);
	}
	/* Words add up; a refused one leaves the list as it was. */
	CHECK(values_parse_ids("6", list) && values_parse_ids("[7]", list));
	CHECK(!values_parse_ids("8,x", list));
	CHECK(json_array_size(list) == 2);
	json_decref(list);
}

/* text parsed in the zone tz with now = 1,000,000; -1 when refused. */
static int64_t at(const char *tz, const char *text)
{
	int64_t t = 0;

	setenv("TZ", tz, 1);
	tzset();
	return values_parse_time(text, 1000000, &t) ? t : -1;
}

#define BERLIN "CET-1CEST,M3.5.0,M10.5.0/3"

static void test_parse_time(void)
{
	static const char *const bad[] = {
		"", "yesterday", "2h ago", "1w", "-1h", "2 h", "h", "1.5h", "9999999h",
		"2026-13-01", "2026-00-10", "2026-02-29", "2026-04-31", "2026-1-5", "2026-12-5",
		"2026-12-05T24:00", "2026-12-05T07:60", "2026-12-05T07", "2026-12-05T07:12:03x",
		"2026-12-05T07:12:03+01:00x", "2026-12-05T07:12+24:00", "2026-12-05T07:12+1",
		"2026-12-05Z", "12:00", "9999999999999", "253402300800",
	};
	size_t i;

	/* Unix seconds and times ago. */
	CHECK(at(BERLIN, "1796451123") == 1796451123);
	CHECK(at(BERLIN, "0") == 0);
	CHECK(at(BERLIN, "30s") == 1000000 - 30);
	CHECK(at(BERLIN, "15m") == 1000000 - 900);
	CHECK(at(BERLIN, "2h") == 1000000 - 7200);
	CHECK(at(BERLIN, "7d") == 1000000 - 7 * 86400);
	/* With an offset, the zone does not matter. */
	CHECK(at(BERLIN, "2026-12-05T07:12:03+01:00") == 1796451123);
	CHECK(at("UTC0", "2026-12-05T07:12:03+0100") == 1796451123);
	CHECK(at("UTC0", "2026-12-05T07:12:03+01") == 1796451123);
	CHECK(at("UTC0", "2026-12-05T06:12:03Z") == 1796451123);
	CHECK(at("UTC0", "2026-12-05 04:42:03-01:30") == 1796451123);
	/* Without one, local time: winter and summer time in Berlin. */
	CHECK(at(BERLIN, "2026-12-05T07:12:03") == 1796451123);
	CHECK(at(BERLIN, "2026-12-05") == 1796425200);
	CHECK(at(BERLIN, "2026-07-01T12:00") == 1782900000);
	CHECK(at("WRD-1:30", "2026-12-05T07:42:03") == 1796451123);
	CHECK(at(BERLIN, "2028-02-29") == 1835391600); /* a leap day */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(at(BERLIN, bad[i]) == -1);
		if (at(BERLIN, bad[i]) != -1)
			fprintf(stderr, "    accepted '%s'\n", bad[i]);
	}
}

static const char *shown(const char *tz, int64_t t)
{
	static char out[40];

	setenv("TZ", tz, 1);
	tzset();
	values_format_time(t, out, sizeof(out));
	return out;
}

static void test_format_time(void)
{
	CHECK_STR_EQ(shown(BERLIN, 1796451123), "2026-12-05T07:12:03+01:00");
	CHECK_STR_EQ(shown(BERLIN, 1782900000), "2026-07-01T12:00:00+02:00");
	CHECK_STR_EQ(shown("UTC0", 1796451123), "2026-12-05T06:12:03+00:00");
	CHECK_STR_EQ(shown("WRD+3:30", 1796451123), "2026-12-05T02:42:03-03:30");
	/* What is shown reads back as the same time. */
	CHECK(at(BERLIN, shown(BERLIN, 1774747800)) == 1774747800);
}

int main(void)
{
	test_ids();
	test_parse_time();
	test_format_time();
	return check_finish();
}
