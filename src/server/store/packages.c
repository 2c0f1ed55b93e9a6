/* packages.c -- the store's component packages (see store.h). */
#include "server/store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"

enum serr store_package_remove(struct store *st, const char *file)
{
	enum serr err = store_sql_exec(st, NULL, 0, "DELETE FROM packages WHERE file = ?", "s",
				       file);

	return err == SERR_OK ? store_sql_exec(st, NULL, 0, "DELETE FROM package_parts WHERE "
					       "file = ?", "s", file) : err;
}

bool store_shared(const struct store *st)
{
	return db_shared(st->db);
}

/* Puts the file at path into the database as file's parts. Inside the
 * caller's transaction. */
static enum serr upload(struct store *st, const char *file, const char *path, char *errbuf,
			size_t errlen)
{
	unsigned char *buf = malloc(STORE_PART_BYTES);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	enum serr err = SERR_OK;
	int64_t part = 0;
	ssize_t n;

	if (!buf || fd < 0) {
		util_set_msg(errbuf, errlen, "%s: %s", path, fd < 0 ? strerror(errno) :
			     "out of memory");
		err = fd < 0 ? SERR_IO : SERR_NOMEM;
		goto out;
	}
	while (err == SERR_OK && (n = util_read_full(fd, buf, STORE_PART_BYTES)) > 0)
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO package_parts (file, part, "
				     "data) VALUES (?, ?, ?)", "sib", file, part++, buf, (size_t)n);
	if (err == SERR_OK && n < 0) {
		util_set_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
		err = SERR_IO;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return err;
}

enum serr store_package_add(struct store *st, const char *component, int64_t version,
			    int64_t base, const char *file, int64_t size,
			    const char *envelope, const char *path, char *errbuf, size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);

	/* Parts a failed recording left are replaced; a recorded file's never. */
	if (err == SERR_OK)
		err = store_sql_exec(st, errbuf, errlen, "INSERT INTO packages (file, component, "
				     "version, base, size, envelope, created) "
				     "VALUES (?, ?, ?, ?, ?, ?, ?)", "ssiiisi", file, component,
				     version, base, size, envelope, (int64_t)time(NULL));
	if (err == SERR_EXIST)
		util_set_msg(errbuf, errlen, "package %s (%s %lld) is recorded already", file,
			     component, (long long)version);
	if (err == SERR_OK && path)
		err = store_sql_exec(st, errbuf, errlen, "DELETE FROM package_parts WHERE file = ?",
				     "s", file);
	if (err == SERR_OK && path)
		err = upload(st, file, path, errbuf, errlen);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_package_part(struct store *st, const char *file, int64_t part, void **data,
			     size_t *len)
{
	struct db_stmt *s = store_prepare(st, NULL, 0, "SELECT data FROM package_parts WHERE "
					  "file = ? AND part = ?", "si", file, part);
	enum serr err = s ? SERR_NOENT : SERR_DB;
	const void *blob;

	*data = NULL;
	*len = 0;
	if (s && db_step(s, &err, NULL, 0)) {
		blob = db_column_blob(s, 0, len);
		*data = malloc(*len ? *len : 1);
		err = !*data ? SERR_NOMEM : *len > STORE_PART_BYTES ? SERR_INVAL : SERR_OK;
		if (err == SERR_OK)
			memcpy(*data, blob, *len);
	} else if (s && err == SERR_OK) {
		err = SERR_NOENT;
	}
	db_finalize(s);
	if (err != SERR_OK) {
		free(*data);
		*data = NULL;
	}
	return err;
}

enum serr store_hold(struct store *st, enum store_hold what, bool on, bool *taken)
{
	return db_hold(st->db, (int64_t)what, on, taken, NULL, 0);
}

enum serr store_package_reseal(struct store *st, const json_t *envelopes, const char *key,
			       const char *value, char *errbuf, size_t errlen)
{
	enum serr err = store_begin(st, errbuf, errlen);
	const char *file;
	json_t *env;

	if (err != SERR_OK)
		return err;
	json_object_foreach((json_t *)envelopes, file, env)
		if (err == SERR_OK)
			err = store_sql_exec(st, errbuf, errlen, "UPDATE packages SET envelope = ? "
					     "WHERE file = ?", "ss", json_string_value(env), file);
	if (err == SERR_OK)
		err = store_kv_put(st, key, value, errbuf, errlen);
	return store_finish(st, err, errbuf, errlen);
}

enum serr store_packages(struct store *st, const char *component, json_t **out)
{
	return store_sql_rows(st, 0, out, "SELECT version, base, file, size, envelope, "
				  "created FROM packages WHERE component = ? "
				  "ORDER BY version, base", "s", component);
}

enum serr store_package_versions(struct store *st, json_t **out)
{
	json_t *rows = NULL, *r, *by = json_object(), *list;
	enum serr err = store_sql_rows(st, 0, &rows, "SELECT component, version, min(created) "
				       "AS created FROM packages GROUP BY component, version "
				       "ORDER BY component, version", "");
	const char *comp;
	size_t i;

	if (err == SERR_OK && !by)
		err = SERR_NOMEM;
	json_array_foreach(rows, i, r) {
		if (err != SERR_OK)
			break;
		comp = json_string_value(json_object_get(r, "component"));
		list = json_object_get(by, comp);
		if (!list && json_object_set_new(by, comp, list = json_array()) != 0)
			err = SERR_NOMEM;
		json_object_del(r, "component");
		if (err == SERR_OK && json_array_append(list, r) != 0)
			err = SERR_NOMEM;
	}
	json_decref(rows);
	if (err != SERR_OK) {
		json_decref(by);
		return err;
	}
	*out = by;
	return SERR_OK;
}
