/* values.h -- how the ward command line reads and shows the values an
 * administrator types and reads: client id lists and times. */
#ifndef WARD_CLI_VALUES_H
#define WARD_CLI_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

/* What the time parser accepts, for error messages and help. */
#define VALUES_TIME_FORMS "2026-12-05, 2026-12-05T07:12[:03][+01:00|Z] (local time " \
	"without an offset), 30s, 15m, 2h or 7d ago, or Unix seconds"

/* What the client list parser accepts. */
#define VALUES_IDS_FORMS "6, 6 8, 6,8 or [6,8]"

/* Appends the client ids in word ("6", "6,8", "6 8" or the JSON list
 * "[6,8]") to the array list. Returns false, with list unchanged, when
 * word holds anything but positive integers. Thread-safe. */
bool values_parse_ids(const char *word, json_t *list);

/* Parses text as a point in time (VALUES_TIME_FORMS) into *out, Unix
 * seconds; relative forms count back from now. Returns false when text is
 * none of those. Reads the local time zone ($TZ); thread-safe. */
bool values_parse_time(const char *text, time_t now, int64_t *out);

/* Writes t as local ISO 8601 with its offset ("2026-12-05T07:12:03+01:00")
 * into out (size bytes, 26 suffice). Thread-safe. */
void values_format_time(int64_t t, char *out, size_t size);

#endif
