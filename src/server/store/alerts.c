/* alerts.c -- the store's alerts: channels, rules, what rules raised and
 * hold, the conditions alerted and still true, and every message (see
 * store.h). */
#include "server/store/store_int.h"

#include <stdio.h>
#include <string.h>

enum serr store_alert_channel_put(struct store *st, const char *name, const char *kind,
				  const char *config, int64_t now, char *errbuf, size_t errlen)
{
	return store_sql_exec(st, errbuf, errlen, "INSERT INTO alert_channels (name, kind, "
			      "config, updated) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO "
			      "UPDATE SET kind = ?2, config = ?3, updated = ?4", "sssi", name, kind,
			      config, now);
}

enum serr store_alert_channel_delete(struct store *st, const char *name)
{
	int64_t n = 0;
	enum serr err = store_sql_count(st, &n, NULL, 0, "DELETE FROM alert_channels WHERE "
					"name = ?", "s", name);

	return err == SERR_OK && n == 0 ? SERR_NOENT : err;
}

enum serr store_alert_channels(struct store *st, json_t **out)
{
	return store_sql_rows(st, 1u << 2, out, "SELECT name, kind, config, updated FROM "
			      "alert_channels ORDER BY name", "");
}

enum serr store_alert_rule_put(struct store *st, const char *name, const char *kind,
			       const char *scope, const char *params, const char *channels,
			       int64_t every, bool enabled, int64_t now, char *errbuf,
			       size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);

	/* A rule changed starts afresh: what it held and had told goes. */
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "DELETE FROM alert_open WHERE rule = "
				     "?1 AND NOT EXISTS (SELECT 1 FROM alert_rules WHERE name = "
				     "?1 AND kind = ?2 AND scope = ?3 AND params = ?4)", "ssss",
				     name, kind, scope, params);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO alert_rules (name, "
				     "kind, scope, params, channels, every, enabled, updated) "
				     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT "
				     "(name) DO UPDATE SET kind = ?2, scope = ?3, params = ?4, "
				     "channels = ?5, every = ?6, enabled = ?7, updated = ?8",
				     "sssssiii", name,
				     kind, scope, params, channels, every, (int64_t)enabled, now);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_alert_rule_delete(struct store *st, const char *name)
{
	enum serr err = store_begin(st, NULL, 0);
	int64_t n = 0;

	if (err == SERR_OK)
		err = store_sql_count(st, &n, NULL, 0, "DELETE FROM alert_rules WHERE name = ?",
				      "s", name);
	if (err == SERR_OK && n == 0)
		err = SERR_NOENT;
	if (err == SERR_OK)
		err = store_sql_exec(st, NULL, 0, "DELETE FROM alert_items WHERE rule = ?", "s",
				     name);
	if (err == SERR_OK)
		err = store_sql_exec(st, NULL, 0, "DELETE FROM alert_open WHERE rule = ?", "s",
				     name);
	return store_finish(st, err, NULL, 0);
}

enum serr store_alert_rules(struct store *st, json_t **out)
{
	return store_sql_rows(st, (1u << 3) | (1u << 4), out, "SELECT name, kind, scope, "
			      "params, channels, every, enabled, last_sent, dropped, updated, "
			      "(SELECT count(*) FROM alert_items i WHERE i.rule = r.name) AS held "
			      "FROM alert_rules r ORDER BY name", "");
}

enum serr store_alert_raise(struct store *st, const char *rule, int64_t now,
			    const char *subject, const char *detail, int64_t max_held)
{
	int64_t held = 0;
	enum serr err = store_sql_int(st, &held, NULL, 0, "SELECT count(*) FROM alert_items "
				      "WHERE rule = ?", "s", rule);

	if (err != SERR_OK)
		return err;
	/* Past what a rule holds, it counts what it raised. */
	if (held >= max_held)
		return store_sql_exec(st, NULL, 0, "UPDATE alert_rules SET dropped = dropped + 1 "
				      "WHERE name = ?", "s", rule);
	return store_sql_exec(st, NULL, 0, "INSERT INTO alert_items (rule, time, subject, "
			      "detail) VALUES (?, ?, ?, ?)", "siss", rule, now, subject, detail);
}

enum serr store_alert_items(struct store *st, const char *rule, int64_t limit, json_t **out)
{
	return store_sql_rows(st, 1u << 3, out, "SELECT id, time, subject, detail FROM "
			      "alert_items WHERE rule = ? ORDER BY id LIMIT ?", "si", rule, limit);
}

enum serr store_alert_flush(struct store *st, const char *rule, int64_t upto, int64_t now,
			    const json_t *channels, const char *subject, const char *body)
{
	enum serr err = store_begin(st, NULL, 0);
	const json_t *c;
	size_t i;

	json_array_foreach(channels, i, c)
		if (err == SERR_OK)
			err = store_sql_exec(st, NULL, 0, "INSERT INTO alert_messages (time, rule, "
					     "channel, subject, body, state, next_try) VALUES (?1, "
					     "?2, ?3, ?4, ?5, 'pending', ?1)", "issss", now, rule,
					     json_string_value(c), subject, body);
	if (err == SERR_OK)
		err = store_sql_exec(st, NULL, 0, "DELETE FROM alert_items WHERE rule = ? AND "
				     "id <= ?", "si", rule, upto);
	if (err == SERR_OK)
		err = store_sql_exec(st, NULL, 0, "UPDATE alert_rules SET last_sent = ?, dropped "
				     "= 0 WHERE name = ?", "is", now, rule);
	return store_finish(st, err, NULL, 0);
}

enum serr store_alert_open(struct store *st, const char *rule, const json_t *now_true,
			   int64_t now, json_t **fresh)
{
	json_t *before = NULL, *row, *cond, *known = json_object();
	enum serr err = store_begin(st, NULL, 0);
	const char *subject;
	size_t i;

	*fresh = json_array();
	if (err == SERR_OK && !*fresh)
		err = SERR_NOMEM;
	if (err == SERR_OK)
		err = store_sql_rows(st, 0, &before, "SELECT subject FROM alert_open WHERE "
				     "rule = ?", "s", rule);
	if (err == SERR_OK && !known)
		err = SERR_NOMEM;
	/* Conditions no longer true are forgotten: told again if they return. */
	json_array_foreach(before, i, row) {
		subject = json_string_value(json_object_get(row, "subject"));
		if (err == SERR_OK && json_object_set(known, subject, json_true()) != 0)
			err = SERR_NOMEM;
		if (err == SERR_OK && !json_object_get(now_true, subject))
			err = store_sql_exec(st, NULL, 0, "DELETE FROM alert_open WHERE "
					     "rule = ? AND subject = ?", "ss", rule, subject);
	}
	json_object_foreach((json_t *)now_true, subject, cond) {
		if (json_object_get(known, subject) || err != SERR_OK)
			continue;
		err = store_sql_exec(st, NULL, 0, "INSERT INTO alert_open (rule, subject, since) "
				     "VALUES (?, ?, ?)", "ssi", rule, subject, now);
		if (err == SERR_OK && json_array_append_new(*fresh, json_string(subject)) != 0)
			err = SERR_NOMEM;
	}
	json_decref(before);
	json_decref(known);
	err = store_finish(st, err, NULL, 0);
	if (err != SERR_OK) {
		json_decref(*fresh);
		*fresh = NULL;
	}
	return err;
}

enum serr store_alert_pending(struct store *st, int64_t now, int64_t limit, json_t **out)
{
	return store_sql_rows(st, (1u << 5) | (1u << 8), out, "SELECT m.id, m.rule, m.channel, "
			      "m.subject, m.attempts, m.body, c.kind, m.time, c.config FROM "
			      "alert_messages m LEFT JOIN alert_channels c ON c.name = m.channel "
			      "WHERE m.state = 'pending' AND m.next_try <= ? ORDER BY m.id LIMIT ?",
			      "ii", now, limit);
}

enum serr store_alert_result(struct store *st, int64_t id, const char *state,
			     int64_t attempts, int64_t next_try, const char *error, int64_t now)
{
	return store_sql_exec(st, NULL, 0, "UPDATE alert_messages SET state = ?2, attempts = "
			      "?3, next_try = ?4, error = ?5, done = CASE WHEN ?2 = 'pending' THEN "
			      "NULL ELSE ?6 END WHERE id = ?1", "isiisi", id, state, attempts,
			      next_try, error, now);
}

enum serr store_alert_log(struct store *st, const char *rule, int64_t limit, json_t **out)
{
	return store_sql_rows(st, 1u << 5, out, "SELECT id, time, rule, channel, subject, body, "
			      "state, attempts, error, done FROM alert_messages WHERE ?1 IS NULL "
			      "OR rule = ?1 ORDER BY id DESC LIMIT ?2", "si", rule, limit);
}

enum serr store_alert_counts(struct store *st, json_t **out)
{
	return store_sql_rows(st, 0, out, "SELECT state, count(*) AS n FROM alert_messages "
			      "GROUP BY state ORDER BY state", "");
}

enum serr store_alert_prune(struct store *st, int64_t before)
{
	return store_sql_exec(st, NULL, 0, "DELETE FROM alert_messages WHERE state <> 'pending' "
			      "AND time < ?", "i", before);
}
