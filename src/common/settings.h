/* settings.h -- the client settings the server manages, defined once.
 *
 * Every setting an administrator can place at the root, on a domain or on
 * a client is one row of a table: its key, its type, the levels it may be
 * set at, its default and how a value is validated. The server stores and
 * inherits values, the REST API and the CLI validate with it, the agent
 * reads its effective settings by the same keys. Values are JSON (jansson).
 */
#ifndef WARD_SETTINGS_H
#define WARD_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The levels of the client tree a setting may be placed at (a bit set). */
#define SETTINGS_AT_ROOT   0x1
#define SETTINGS_AT_DOMAIN 0x2
#define SETTINGS_AT_CLIENT 0x4
#define SETTINGS_AT_ANY    (SETTINGS_AT_ROOT | SETTINGS_AT_DOMAIN | SETTINGS_AT_CLIENT)

enum settings_type {
	SETTINGS_BOOL,
	SETTINGS_ENUM,      /* one of a fixed list of strings */
	SETTINGS_SCHEDULE,  /* "hourly", "daily HH:MM", "weekly DAY HH:MM" or "every N" */
	SETTINGS_INT,       /* a whole number from min to max */
	SETTINGS_PATHS,     /* a list of absolute paths (settings_path_ok()), at most
			     * SETTINGS_MAX_PATHS */
};

/* Bounds of a SETTINGS_PATHS value: entries, and bytes of one path. */
#define SETTINGS_MAX_PATHS 256
#define SETTINGS_MAX_PATH_LEN 4096

struct settings_def {
	const char *key;
	enum settings_type type;
	unsigned levels;              /* SETTINGS_AT_* */
	const char *const *choices;   /* SETTINGS_ENUM: NULL-terminated */
	const char *default_json;     /* the root's value on a new server */
	const char *summary;
	long long min, max;           /* SETTINGS_INT: the range */
};

/* A parsed schedule: every `every` seconds (counted from the epoch), or
 * at `at` seconds after local midnight, every day or on weekday (0 =
 * Sunday; -1: every day). */
struct settings_schedule {
	long every;
	long at;
	int weekday;
};

/* Returns the table of every setting and stores its length in *n. Static
 * storage; safe from any thread. */
const struct settings_def *settings_table(size_t *n);

/* Returns the definition of key, or NULL when no setting has that name. */
const struct settings_def *settings_find(const char *key);

/* Checks that value is valid for def at the given level (one SETTINGS_AT_*
 * bit). Returns true, or false with a message naming the setting and what
 * is wrong written to errbuf. */
bool settings_validate(const struct settings_def *def, const json_t *value, unsigned level,
		       char *errbuf, size_t errlen);

/* Returns whether path (len bytes) is one a SETTINGS_PATHS value may hold:
 * absolute, at most SETTINGS_MAX_PATH_LEN bytes, no NUL, no empty, "." or
 * ".." component and no trailing slash ("/" itself aside). On false, why
 * is set to a static description of what is wrong. Safe from any thread. */
bool settings_path_ok(const char *path, size_t len, const char **why);

/* Parses a schedule value; returns false when it is not one. */
bool settings_schedule_parse(const char *s, struct settings_schedule *out);

/* Returns the first time after now the schedule falls due (local time). */
time_t settings_schedule_next(const struct settings_schedule *sc, time_t now);

/* Returns a new object holding every setting at its default. The caller
 * owns the reference; NULL when out of memory. */
json_t *settings_defaults(void);

#endif
