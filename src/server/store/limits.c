/* limits.c -- limits every server on the database enforces together:
 * enrollment rates, the brake on an address's wrong passwords and the
 * global brake (see store.h).
 *
 * One table, a row per limit and name: failures, since and ends mean what
 * each kind below says. Each change is one statement (an upsert returning
 * the row as it leaves it), so that servers counting at once never lose a
 * count: no row is read, changed in C and written back.
 */
#include "server/store/store_int.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

/* The kinds beside enum store_limit's:
 * - rates (STORE_LIMIT_ENROLL_*): ends is the theoretical arrival time of
 *   the next request in ms (GCRA), failures the refusals since the last
 *   allowed request, since when a refusal was last logged (ms);
 * - LIMIT_GUARD: failures are an address's wrong passwords, since the
 *   time of the last (s), ends when it may try again (s);
 * - LIMIT_BRAKE (name ""): failures of all addresses in the window that
 *   started at since (s), the brake engaged until ends (s);
 * - LIMIT_TURN (name ""): ends is the start of the next free turn (s). */
#define LIMIT_GUARD 3
#define LIMIT_BRAKE 4
#define LIMIT_TURN 5

/* Steps s (an upsert ... RETURNING failures, since, ends) to its row and
 * ends it; row gets the three. */
static enum serr returned(struct db_stmt *s, int64_t row[3], char *errbuf, size_t errlen)
{
	enum serr err = SERR_OK;
	int i;

	if (!s)
		return SERR_DB;
	if (!db_step(s, &err, errbuf, errlen)) {
		if (err == SERR_OK) {
			util_set_msg(errbuf, errlen, "database: the limit's row was not returned");
			err = SERR_DB;
		}
	} else {
		for (i = 0; i < 3; i++)
			row[i] = db_column_int(s, i);
	}
	db_finalize(s);
	return err;
}

enum serr store_rate_take(struct store *st, enum store_limit limit, const char *name,
			  int64_t per_minute, int64_t burst, int64_t now_ms, int64_t log_interval,
			  unsigned *wait, bool *first, char *errbuf, size_t errlen)
{
	int64_t period, tolerance, row[3], w;
	enum serr err;

	*wait = 0;
	if (first)
		*first = false;
	if (per_minute <= 0)
		return SERR_OK;
	period = 60000 / per_minute > 0 ? 60000 / per_minute : 1;
	tolerance = (burst > 1 ? burst - 1 : 0) * period;
	/* ?3 now, ?4 the period, ?5 the tolerance: a request is refused while
	 * the next arrival is more than the tolerance ahead. An arrival
	 * further ahead than any request could have put it was left by a
	 * clock since stepped back, and starts over. */
	err = returned(store_prepare(st, errbuf, errlen,
		"INSERT INTO limits (kind, name, failures, since, ends) "
		"VALUES (?1, ?2, 0, 0, ?3 + ?4) "
		"ON CONFLICT (kind, name) DO UPDATE SET "
		"failures = CASE WHEN limits.ends - ?3 > ?5 AND limits.ends - ?3 <= ?5 + ?4 "
		"THEN limits.failures + 1 ELSE 0 END, "
		"since = CASE WHEN limits.ends - ?3 > ?5 AND limits.ends - ?3 <= ?5 + ?4 AND "
		"(limits.failures = 0 OR ?3 - limits.since >= ?6 OR ?3 < limits.since) "
		"THEN ?3 ELSE limits.since END, "
		"ends = CASE WHEN limits.ends - ?3 > ?5 AND limits.ends - ?3 <= ?5 + ?4 "
		"THEN limits.ends WHEN limits.ends > ?3 AND limits.ends - ?3 <= ?5 + ?4 "
		"THEN limits.ends + ?4 ELSE ?3 + ?4 END "
		"RETURNING failures, since, ends", "isiiii", (int64_t)limit, name, now_ms, period,
		tolerance, log_interval * 1000), row, errbuf, errlen);
	if (err != SERR_OK || row[0] == 0)
		return err;
	w = (row[2] - now_ms - tolerance + 999) / 1000;
	*wait = w < 1 ? 1 : (unsigned)w;
	if (first)
		*first = row[1] == now_ms;
	return SERR_OK;
}

enum serr store_guard_wait(struct store *st, const char *address, int64_t now, unsigned *wait)
{
	int64_t ends = 0;
	enum serr err = store_sql_int(st, &ends, NULL, 0, "SELECT ends FROM limits WHERE kind = ? "
				      "AND name = ?", "is", (int64_t)LIMIT_GUARD, address);

	*wait = err == SERR_OK && ends > now ? (unsigned)(ends - now) : 0;
	return err == SERR_NOENT ? SERR_OK : err;
}

enum serr store_guard_fail(struct store *st, const char *address, int64_t now, unsigned *wait)
{
	int64_t row[3], w = STORE_GUARD_FIRST_WAIT, over;
	enum serr err;

	*wait = 0;
	/* Failures count again from one once the last is older than the
	 * window and no wait is running. */
	err = returned(store_prepare(st, NULL, 0,
		"INSERT INTO limits (kind, name, failures, since, ends) VALUES (?1, ?2, 1, ?3, 0) "
		"ON CONFLICT (kind, name) DO UPDATE SET "
		"failures = CASE WHEN ?3 - limits.since > ?4 AND limits.ends <= ?3 THEN 1 "
		"ELSE limits.failures + 1 END, since = ?3 "
		"RETURNING failures, since, ends", "isii", (int64_t)LIMIT_GUARD, address, now,
		(int64_t)STORE_GUARD_WINDOW), row, NULL, 0);
	if (err != SERR_OK || row[0] < STORE_GUARD_FREE)
		return err;
	for (over = row[0] - STORE_GUARD_FREE; over > 0 && w < STORE_GUARD_MAX_WAIT; over--)
		w *= 2;
	if (w > STORE_GUARD_MAX_WAIT)
		w = STORE_GUARD_MAX_WAIT;
	*wait = (unsigned)w;
	return store_sql_exec(st, NULL, 0, "UPDATE limits SET ends = ? WHERE kind = ? AND "
			      "name = ?", "iis", now + w, (int64_t)LIMIT_GUARD, address);
}

enum serr store_guard_clear(struct store *st, const char *address)
{
	return store_sql_exec(st, NULL, 0, "DELETE FROM limits WHERE kind = ? AND name = ?",
			      "is", (int64_t)LIMIT_GUARD, address);
}

enum serr store_brake_fail(struct store *st, int64_t failures, int64_t window, int64_t now,
			   bool *engaged)
{
	int64_t row[3];
	enum serr err;

	*engaged = false;
	/* A window ends window seconds after it started (or when the clock
	 * went back before its start): the next failure starts another. */
	err = returned(store_prepare(st, NULL, 0,
		"INSERT INTO limits (kind, name, failures, since, ends) VALUES (?1, '', 1, ?2, 0) "
		"ON CONFLICT (kind, name) DO UPDATE SET "
		"failures = CASE WHEN ?2 - limits.since >= ?3 OR ?2 < limits.since THEN 1 "
		"ELSE limits.failures + 1 END, "
		"since = CASE WHEN ?2 - limits.since >= ?3 OR ?2 < limits.since THEN ?2 "
		"ELSE limits.since END "
		"RETURNING failures, since, ends", "iii", (int64_t)LIMIT_BRAKE, now, window),
		row, NULL, 0);
	if (err != SERR_OK || row[0] < failures)
		return err;
	*engaged = row[2] <= now;
	return store_sql_exec(st, NULL, 0, "UPDATE limits SET ends = ? WHERE kind = ? AND "
			      "name = ''", "ii", now + window, (int64_t)LIMIT_BRAKE);
}

enum serr store_brake_until(struct store *st, int64_t *until)
{
	enum serr err = store_sql_int(st, until, NULL, 0, "SELECT ends FROM limits WHERE "
				      "kind = ? AND name = ''", "i", (int64_t)LIMIT_BRAKE);

	if (err == SERR_NOENT)
		*until = 0;
	return err == SERR_NOENT ? SERR_OK : err;
}

enum serr store_brake_turn(struct store *st, int64_t pace, int64_t cap, int64_t now,
			   int64_t *turn)
{
	int64_t row[3];
	enum serr err = returned(store_prepare(st, NULL, 0,
		"INSERT INTO limits (kind, name, failures, since, ends) "
		"VALUES (?1, '', 0, 0, ?2 + ?3) "
		"ON CONFLICT (kind, name) DO UPDATE SET "
		"ends = CASE WHEN limits.ends > ?2 AND limits.ends - ?2 <= ?4 "
		"THEN limits.ends + ?3 ELSE ?2 + ?3 END "
		"RETURNING failures, since, ends", "iiii", (int64_t)LIMIT_TURN, now, pace, cap),
		row, NULL, 0);

	*turn = err == SERR_OK ? row[2] - pace : now;
	return err;
}

enum serr store_limits_prune(struct store *st, int64_t now)
{
	return store_sql_exec(st, NULL, 0,
		"DELETE FROM limits WHERE ((kind = ?1 OR kind = ?2) AND ends < ?3 * 1000) OR "
		"(kind = ?4 AND ends <= ?3 AND (?3 - since > ?5 OR since > ?3))",
		"iiiii", (int64_t)STORE_LIMIT_ENROLL_TOKEN, (int64_t)STORE_LIMIT_ENROLL_ADDRESS,
		now, (int64_t)LIMIT_GUARD, (int64_t)STORE_GUARD_WINDOW);
}
