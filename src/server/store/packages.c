/* packages.c -- the store's component packages (see store.h). */
#include "server/store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/settings.h"
#include "common/util.h"

enum serr store_package_add(struct store *st, const char *component, int64_t version,
			    int64_t base, const char *file, int64_t size,
			    const char *envelope, char *errbuf, size_t errlen)
{
	enum serr err = store_sql_exec(st, errbuf, errlen, "INSERT INTO packages (file, "
				       "component, version, base, size, envelope, created) VALUES "
				       "(?, ?, ?, ?, ?, ?, ?)", "ssiiisi", file, component, version,
				       base, size, envelope, (int64_t)time(NULL));

	if (err == SERR_EXIST)
		util_set_msg(errbuf, errlen, "package %s (%s %lld) is recorded already", file,
			     component, (long long)version);
	return err;
}

enum serr store_package_remove(struct store *st, const char *file)
{
	return store_sql_exec(st, NULL, 0, "DELETE FROM packages WHERE file = ?", "s", file);
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
