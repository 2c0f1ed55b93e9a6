/* tokens.c -- the store's administrators, sessions and tokens (see store.h). */
#include "server/store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"

/* A token in force at ?3 (the clock) and ?4 (store_observed()): expired
 * by either, it opens nothing; used up, neither. */
#define TOKEN_VALID "expires > ?3 AND observed_expires > ?4 AND " \
	"(max_uses = 0 OR uses < max_uses)"

enum serr store_admin_put(struct store *st, const char *name, const char *pwhash,
			  char *errbuf, size_t errlen)
{
	return store_sql_exec(st, errbuf, errlen, "INSERT INTO admins (name, pwhash) VALUES (?1, "
			      "?2) ON CONFLICT (name) DO UPDATE SET pwhash = ?2", "ss", name,
			      pwhash);
}

enum serr store_admin_add(struct store *st, const char *name, const char *pwhash,
			  const char *role, char *errbuf, size_t errlen)
{
	int64_t n = 0;
	enum serr err = store_sql_int(st, &n, errbuf, errlen, "SELECT count(*) FROM admins "
				      "WHERE name = ?", "s", name);

	if (err == SERR_OK && n > 0) {
		util_set_msg(errbuf, errlen, "administrator '%s' exists already", name);
		return SERR_EXIST;
	}
	if (err != SERR_OK)
		return err;
	return store_sql_exec(st, errbuf, errlen, "INSERT INTO admins (name, pwhash, role) "
			      "VALUES (?, ?, ?)", "sss", name, pwhash, role);
}

enum serr store_admin_role(struct store *st, const char *name, char **role)
{
	return store_sql_text(st, role, NULL, 0, "SELECT role FROM admins WHERE name = ?", "s",
			      name);
}

enum serr store_admin_set_role(struct store *st, const char *name, const char *role,
			       char *errbuf, size_t errlen)
{
	return store_sql_exec(st, errbuf, errlen, "UPDATE admins SET role = ? WHERE name = ?", "ss",
			      role, name);
}

enum serr store_admin_remove(struct store *st, const char *name, char *errbuf,
			     size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);

	if (err != SERR_OK)
		return err;
	err = store_sql_exec(st, errbuf, errlen, "DELETE FROM admins WHERE name = ?", "s", name);
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "DELETE FROM tokens WHERE kind IN (?, ?) "
				     "AND subject = ?", "iis", (int64_t)STORE_TOKEN_SESSION,
				     (int64_t)STORE_TOKEN_CONSOLE, name);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_admin_list(struct store *st, json_t **out)
{
	return store_sql_rows(st, 0, out, "SELECT name, role FROM admins ORDER BY name",
				  "");
}

enum serr store_admin_count_role(struct store *st, const char *role, int64_t *count)
{
	return store_sql_int(st, count, NULL, 0, "SELECT count(*) FROM admins WHERE role = ?", "s",
			     role);
}

enum serr store_admin_get(struct store *st, const char *name, char **pwhash,
			  char *errbuf, size_t errlen)
{
	return store_sql_text(st, pwhash, errbuf, errlen, "SELECT pwhash FROM admins WHERE name = "
			      "?", "s", name);
}

enum serr store_admin_count(struct store *st, int64_t *count)
{
	return store_sql_int(st, count, NULL, 0, "SELECT count(*) FROM admins", "");
}

enum serr store_token_put(struct store *st, const unsigned char hash[32],
			  enum store_token kind, const char *subject, int64_t expires,
			  int64_t ends, char *errbuf, size_t errlen)
{
	int64_t now = (int64_t)time(NULL), observed = store_observed(st);

	/* Expired tokens go as new ones come: expired by the clock and by this
	 * server's own count, so a clock set forward deletes none. */
	if (store_sql_exec(st, errbuf, errlen, "DELETE FROM tokens WHERE expires <= ? AND "
			   "observed_expires <= ?", "ii", now, observed) != SERR_OK)
		return SERR_DB;
	return store_sql_exec(st, errbuf, errlen, "INSERT INTO tokens (hash, kind, subject, "
			      "expires, ends, observed_expires) VALUES (?, ?, ?, ?, ?, ?)",
			      "hisiii", hash, (int64_t)kind, subject, expires, ends,
			      observed + (expires - now));
}

enum serr store_token_check(struct store *st, const unsigned char hash[32],
			    enum store_token kind, int64_t now, int64_t idle,
			    char *subject, size_t len, int64_t *expires)
{
	struct db_stmt *stmt = store_prepare(st, NULL, 0, "SELECT subject, expires, ends FROM "
					     "tokens WHERE hash = ?1 AND kind = ?2 AND "
					     TOKEN_VALID, "hiii", hash, (int64_t)kind, now,
					     store_observed(st));
	enum serr err = SERR_NOENT, step = SERR_OK;
	int64_t until = 0, ends = 0, slid;

	if (!stmt)
		return SERR_DB;
	if (db_step(stmt, &step, NULL, 0)) {
		snprintf(subject, len, "%s", db_column_text(stmt, 0));
		until = db_column_int(stmt, 1);
		ends = db_column_int(stmt, 2);
		err = SERR_OK;
	} else if (step != SERR_OK) {
		err = step;   /* the database failed: not "no such token" */
	}
	db_finalize(stmt);
	/* A sliding token lives idle seconds past its last use, up to its end;
	 * written only when that moves it by a twelfth of idle or more, not on
	 * every request. A failed write leaves the token valid as it was. */
	slid = now + idle < ends ? now + idle : ends;
	if (err == SERR_OK && idle > 0 && ends > 0 && (slid - until) * 12 >= idle &&
	    store_sql_exec(st, NULL, 0, "UPDATE tokens SET expires = ?, observed_expires = ? "
			   "WHERE hash = ?", "iih", slid, store_observed(st) + (slid - now),
			   hash) == SERR_OK)
		until = slid;
	if (expires)
		*expires = until;
	return err;
}

enum serr store_token_delete(struct store *st, const unsigned char hash[32])
{
	return store_sql_exec(st, NULL, 0, "DELETE FROM tokens WHERE hash = ?", "h", hash);
}

enum serr store_admin_end_sessions(struct store *st, const char *name,
				   const unsigned char keep[32])
{
	return store_sql_exec(st, NULL, 0, "DELETE FROM tokens WHERE kind IN (?1, ?2) AND "
			      "subject = ?3 AND (?4 IS NULL OR hash <> ?4)", "iish",
			      (int64_t)STORE_TOKEN_SESSION, (int64_t)STORE_TOKEN_CONSOLE, name,
			      keep);
}

/* A token's public name: the first 8 bytes of its SHA-256, in hex. */
#define TOKEN_ID_BYTES 8

enum serr store_tokens_list(struct store *st, enum store_token kind, int64_t now,
			    json_t **out)
{
	struct db_stmt *s = store_prepare(st, NULL, 0, "SELECT hash, subject, expires, uses, "
					  "max_uses FROM tokens WHERE kind = ?2 AND " TOKEN_VALID
					  " ORDER BY expires", "iiii", (int64_t)0, (int64_t)kind,
					  now, store_observed(st));
	json_t *list = json_array();
	enum serr err = s ? SERR_OK : SERR_DB;
	char id[2 * TOKEN_ID_BYTES + 1];
	const unsigned char *hash;
	size_t n, i;

	if (!list)
		err = SERR_NOMEM;
	while (err == SERR_OK && db_step(s, &err, NULL, 0)) {
		hash = db_column_blob(s, 0, &n);
		for (i = 0; i < TOKEN_ID_BYTES; i++)
			snprintf(id + 2 * i, 3, "%02x", i < n ? hash[i] : 0);
		if (json_array_append_new(list, json_pack("{ss ss sI sI sI}", "id", id, "subject",
				db_column_text(s, 1), "expires", (json_int_t)db_column_int(s, 2),
				"uses", (json_int_t)db_column_int(s, 3), "max_uses",
				(json_int_t)db_column_int(s, 4))) != 0)
			err = SERR_NOMEM;
	}
	db_finalize(s);
	if (err != SERR_OK) {
		json_decref(list);
		return err;
	}
	*out = list;
	return SERR_OK;
}

enum serr store_token_use(struct store *st, const unsigned char hash[32],
			  int64_t max_uses)
{
	if (max_uses >= 0)
		return store_sql_exec(st, NULL, 0, "UPDATE tokens SET max_uses = ? WHERE hash = ?",
				      "ih", max_uses, hash);
	return store_sql_exec(st, NULL, 0, "UPDATE tokens SET uses = uses + 1 WHERE hash = ?",
			      "h", hash);
}

enum serr store_token_revoke(struct store *st, enum store_token kind, const char *id,
			     int64_t *n)
{
	unsigned char lo[32] = { 0 }, hi[32];
	size_t i;
	int digit;

	/* The hashes that start with id's bytes lie between these two. */
	*n = 0;
	memset(hi, 0xff, sizeof(hi));
	if (strlen(id) != 2 * TOKEN_ID_BYTES)
		return SERR_OK;
	for (i = 0; i < 2 * TOKEN_ID_BYTES; i++) {
		digit = id[i] >= '0' && id[i] <= '9' ? id[i] - '0' :
			id[i] >= 'a' && id[i] <= 'f' ? id[i] - 'a' + 10 : -1;
		if (digit < 0)
			return SERR_OK;
		lo[i / 2] = hi[i / 2] = (unsigned char)(lo[i / 2] << 4 | digit);
	}
	return store_sql_count(st, n, NULL, 0, "DELETE FROM tokens WHERE kind = ? AND "
			       "hash >= ? AND hash <= ?", "ihh", (int64_t)kind, lo, hi);
}

enum serr store_token_count(struct store *st, enum store_token kind, int64_t now,
			    int64_t *count)
{
	return store_sql_int(st, count, NULL, 0, "SELECT count(*) FROM tokens WHERE kind = ?2 "
			     "AND " TOKEN_VALID, "iiii", (int64_t)0, (int64_t)kind, now,
			     store_observed(st));
}
