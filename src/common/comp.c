/* comp.c -- signature components (see comp.h). */
#include "common/comp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/pack.h"
#include "common/pkg.h"
#include "common/pset.h"
#include "common/sdelta.h"
#include "common/util.h"

static const struct comp_def table[COMP_COUNT] = {
	{ COMP_VIRUS, "virus-pattern", "Virus Pattern" },
	{ COMP_SMART_AGENT, "smart-agent-pattern", "Smart Scan Agent Pattern" },
	{ COMP_SMART, "smart-pattern", "Smart Scan Pattern" },
};

/* ClamAV text formats whose lines are independent signatures: their order
 * means nothing to libclamav, so they are kept sorted. Bytecode (.cbc),
 * YARA rules and file-type magic (.ftm) are files of another shape. */
static const char *const line_sets[] = {
	"hdb", "hdu", "hsb", "hsu", "mdb", "mdu", "msb", "msu", "ndb", "ndu", "ldb", "ldu",
	"idb", "fp", "sfp", "cfg", "crb", "cdb", "ign", "ign2", "pdb", "gdb", "wdb", "wsp", NULL,
};

/* Limits on what a payload may unpack to. */
#define MAX_MEMBER (2LL << 30)
#define MAX_TOTAL (8LL << 30)

/* The largest file a delta is applied to. */
#define MAX_SET_FILE ((size_t)2 << 30)

const struct comp_def *comp_table(void)
{
	return table;
}

int comp_find(const char *name)
{
	int i;

	for (i = 0; i < COMP_COUNT; i++)
		if (strcmp(table[i].name, name) == 0)
			return i;
	return -1;
}

int comp_set_width(const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t i;

	if (strcmp(name, COMP_PREFIX_FILE) == 0)
		return COMP_PREFIX_WIDTH;
	for (i = 0; dot && line_sets[i]; i++)
		if (strcmp(dot + 1, line_sets[i]) == 0)
			return 0;
	return -1;
}

enum err comp_set_read(const char *name, const char *data, size_t n, struct util_buf *buf,
		       const char **set, size_t *setlen, char *errbuf, size_t errlen)
{
	enum err err;

	if (strcmp(name, COMP_PREFIX_FILE) != 0) {
		*set = data;
		*setlen = n;
		return ERR_OK;
	}
	err = pset_decode(data, n, buf, errbuf, errlen);
	if (err == ERR_NOMEM)
		snprintf(errbuf, errlen, "out of memory");
	*set = buf->data ? buf->data : "";
	*setlen = buf->len;
	return err == ERR_OK ? ERR_OK : err == ERR_NOMEM ? ERR_NOMEM : ERR_FORMAT;
}

enum err comp_set_write(const char *name, const char *set, size_t n, struct util_buf *out,
			char *errbuf, size_t errlen)
{
	enum err err;

	if (strcmp(name, COMP_PREFIX_FILE) != 0)
		return util_buf_append(out, set, n) == 0 ? ERR_OK : ERR_NOMEM;
	err = pset_encode(set, n, out, errbuf, errlen);
	if (err == ERR_NOMEM)
		snprintf(errbuf, errlen, "out of memory");
	return err == ERR_OK ? ERR_OK : err == ERR_NOMEM ? ERR_NOMEM : ERR_FORMAT;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
		      json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

enum err comp_describe(const char *dir, json_t **files, char *errbuf, size_t errlen)
{
	json_t *list = json_array(), *e, **v = NULL;
	enum err err = ERR_OK;
	DIR *dp = opendir(dir);
	struct dirent *de;
	struct stat sb;
	char *path, hex[65];
	uint64_t size;
	size_t n, i;

	*files = NULL;
	if (!dp || !list) {
		snprintf(errbuf, errlen, "%s: %s", dir, dp ? "out of memory" : strerror(errno));
		if (dp)
			closedir(dp);
		json_decref(list);
		return dp ? ERR_NOMEM : ERR_IO;
	}
	while (err == ERR_OK && (de = readdir(dp))) {
		if (de->d_name[0] == '.' || fstatat(dirfd(dp), de->d_name, &sb, 0) != 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		path = util_path_join(dir, de->d_name);
		if (!path) {
			err = ERR_NOMEM;
		} else if (!pkg_file_sha256(path, hex, &size)) {
			snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
			err = ERR_IO;
		} else if (!(e = json_pack("{ss sI ss}", "name", de->d_name, "size",
					   (json_int_t)size, "sha256", hex)) ||
			   json_array_append_new(list, e) != 0) {
			err = ERR_NOMEM;
		}
		free(path);
	}
	closedir(dp);
	n = json_array_size(list);
	/* Sort through a plain array: jansson has no in-place sort. */
	if (err == ERR_OK && n && !(v = malloc(n * sizeof(*v))))
		err = ERR_NOMEM;
	if (err == ERR_OK && n) {
		for (i = 0; i < n; i++)
			v[i] = json_incref(json_array_get(list, i));
		qsort(v, n, sizeof(*v), by_name);
		json_array_clear(list);
		for (i = 0; i < n; i++)
			json_array_append_new(list, v[i]);
	}
	free(v);
	if (err != ERR_OK) {
		json_decref(list);
		return err;
	}
	*files = list;
	return ERR_OK;
}

/* Makes out/name from the delta file at dpath applied to installed/name. */
static enum err apply_delta(const char *installed, const char *name, const char *dpath,
			    const char *to, char *errbuf, size_t errlen)
{
	char *from = installed ? util_path_join(installed, name) : NULL, *old = NULL, *delta;
	struct util_buf out = { 0 }, decoded = { 0 }, file = { 0 };
	size_t oldlen = 0, dlen = 0, setlen = 0;
	enum err err = ERR_OK;
	enum err serr;
	const char *set;
	char msg[256];

	delta = util_read_file(dpath, MAX_SET_FILE, &dlen);
	if (from)
		old = util_read_file(from, MAX_SET_FILE, &oldlen);
	if (!delta) {
		snprintf(errbuf, errlen, "%s: %s", dpath, strerror(errno));
		err = ERR_IO;
		goto out;
	}
	if (!old) {
		snprintf(errbuf, errlen, "delta for %s: the installed version has no such file",
			 name);
		err = ERR_BASE;
		goto out;
	}
	/* An installed file that does not decode is not the base either. */
	if (comp_set_read(name, old, oldlen, &decoded, &set, &setlen, msg, sizeof(msg)) !=
	    ERR_OK) {
		snprintf(errbuf, errlen, "installed %s: %s", name, msg);
		err = ERR_BASE;
		goto out;
	}
	serr = sdelta_apply(set, setlen, delta, dlen, &out, msg, sizeof(msg));
	if (serr != ERR_OK) {
		snprintf(errbuf, errlen, "%s: %s", name,
			 serr == ERR_NOMEM ? "out of memory" : msg);
		err = serr == ERR_BASE ? ERR_BASE : serr == ERR_NOMEM ? ERR_NOMEM :
		      ERR_FORMAT;
		goto out;
	}
	err = comp_set_write(name, out.data ? out.data : "", out.len, &file, msg, sizeof(msg));
	if (err != ERR_OK) {
		snprintf(errbuf, errlen, "%s: %s", name, msg);
		goto out;
	}
	if (util_write_file(to, file.data ? file.data : "", file.len, 0600) != 0) {
		snprintf(errbuf, errlen, "%s: %s", to, strerror(errno));
		err = ERR_IO;
	}
out:
	util_buf_free(&file);
	util_buf_free(&decoded);
	util_buf_free(&out);
	free(from);
	free(old);
	free(delta);
	return err;
}

/* Makes to a copy of installed/name (a hard link when possible). */
static enum err keep_file(const char *installed, const char *name, const char *to,
			  char *errbuf, size_t errlen)
{
	char *from = installed ? util_path_join(installed, name) : NULL, *data = NULL;
	enum err err = ERR_OK;
	size_t len;

	if (!from || (link(from, to) != 0 && errno == ENOENT)) {
		snprintf(errbuf, errlen, "%s: the package expects the installed version to have it",
			 name);
		err = ERR_BASE;
	} else if (access(to, F_OK) != 0) {
		data = util_read_file(from, MAX_SET_FILE, &len);
		if (!data || util_write_file(to, data, len, 0600) != 0) {
			snprintf(errbuf, errlen, "%s: %s", data ? to : from, strerror(errno));
			err = ERR_IO;
		}
	}
	free(data);
	free(from);
	return err;
}

/* Builds out/name from what the payload holds for it, or from the
 * installed version, then checks it against the manifest's entry. */
static enum err assemble_file(const json_t *entry, const char *payload_dir,
			      const char *installed, const char *out, char *errbuf,
			      size_t errlen)
{
	const char *name = json_string_value(json_object_get(entry, "name"));
	const char *want = json_string_value(json_object_get(entry, "sha256"));
	json_int_t want_size = json_integer_value(json_object_get(entry, "size"));
	char *to = util_path_join(out, name), *whole = util_path_join(payload_dir, name);
	char *dpath = NULL, hex[65];
	enum err err = ERR_OK;
	uint64_t size;

	if (!to || !whole || asprintf(&dpath, "%s.wsd", whole) < 0) {
		dpath = NULL;
		err = ERR_NOMEM;
		goto out;
	}
	if (rename(whole, to) == 0)
		;
	else if (access(dpath, F_OK) == 0)
		err = apply_delta(installed, name, dpath, to, errbuf, errlen);
	else
		err = keep_file(installed, name, to, errbuf, errlen);
	if (err == ERR_OK && !pkg_file_sha256(to, hex, &size)) {
		snprintf(errbuf, errlen, "%s: %s", to, strerror(errno));
		err = ERR_IO;
	} else if (err == ERR_OK && (strcmp(hex, want) != 0 || (json_int_t)size != want_size)) {
		snprintf(errbuf, errlen, "%s: put together, it differs from the signed manifest",
			 name);
		err = ERR_HASH;
	}
	if (dpath)
		unlink(dpath);
out:
	free(to);
	free(whole);
	free(dpath);
	return err;
}

enum err comp_assemble(const json_t *manifest, const char *payload_path,
		       const char *installed, const char *work, const char *out,
		       char *errbuf, size_t errlen)
{
	const json_t *files = json_object_get(manifest, "files");
	json_int_t base = json_integer_value(json_object_get(manifest, "base"));
	char *payload_dir = util_path_join(work, "payload"), msg[512];
	enum err err = ERR_OK;
	enum err perr;
	struct dirent *de;
	const json_t *e;
	DIR *dp;
	size_t i;
	int fd = -1;

	if (!payload_dir)
		return ERR_NOMEM;
	if (!json_is_array(files) || (base > 0 && !installed)) {
		snprintf(errbuf, errlen, "%s", !json_is_array(files) ?
			 "manifest: no file list" : "a delta needs an installed version");
		err = !json_is_array(files) ? ERR_FORMAT : ERR_BASE;
		goto out;
	}
	if (base == 0)
		installed = NULL;
	if (mkdir(payload_dir, 0700) != 0 || mkdir(out, 0700) != 0 ||
	    (fd = open(payload_path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(errbuf, errlen, "%s: %s", fd < 0 && errno != EEXIST ? payload_path : out,
			 strerror(errno));
		err = ERR_IO;
		goto out;
	}
	perr = pack_extract_fd(fd, payload_path, payload_dir, MAX_MEMBER, MAX_TOTAL, msg,
			       sizeof(msg));
	if (perr != ERR_OK) {
		snprintf(errbuf, errlen, "%s", msg);
		err = perr == ERR_NOMEM ? ERR_NOMEM : perr == ERR_IO ? ERR_IO :
		      ERR_FORMAT;
		goto out;
	}
	json_array_foreach(files, i, e) {
		err = assemble_file(e, payload_dir, installed, out, errbuf, errlen);
		if (err != ERR_OK)
			goto out;
	}
	/* Whatever the manifest did not name is refused. */
	dp = opendir(payload_dir);
	while (dp && (de = readdir(dp)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			snprintf(errbuf, errlen, "%s: member '%s' is not in the manifest",
				 payload_path, de->d_name);
			err = ERR_FORMAT;
			break;
		}
	if (dp)
		closedir(dp);
out:
	if (fd >= 0)
		close(fd);
	util_remove_tree(payload_dir);
	free(payload_dir);
	return err;
}
