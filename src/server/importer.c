/* importer.c -- checking a signature source directory (see importer.h). */
#include "server/importer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/pack.h"
#include "common/pkg.h"
#include "common/util.h"
#include "server/cvd.h"

/* The signature file types libclamav reads from a database directory,
 * besides the .cvd/.cld containers. */
static const char *const text_types[] = {
	"hdb", "hdu", "hsb", "hsu", "mdb", "mdu", "msb", "msu", "ndb", "ndu", "ldb", "ldu",
	"idb", "fp", "sfp", "cfg", "crb", "cdb", "ftm", "ign", "ign2", "pdb", "gdb", "wdb",
	"cbc", "yar", "yara", "info", NULL,
};

static const char *extension(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot && dot != name ? dot + 1 : "";
}

static bool is_text_type(const char *ext)
{
	size_t i;

	for (i = 0; text_types[i]; i++)
		if (strcmp(ext, text_types[i]) == 0)
			return true;
	return false;
}

bool import_signature_file(const char *name)
{
	const char *ext = extension(name);

	return strcmp(ext, "info") != 0 && is_text_type(ext);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks one file and appends its inventory entry; skipped types go to
 * skipped. */
static enum serr add_file(const char *dir, const char *name, json_t *inv, json_t *skipped,
			  char *errbuf, size_t errlen)
{
	const char *ext = extension(name);
	bool container = strcmp(ext, "cvd") == 0 || strcmp(ext, "cld") == 0;
	struct cvd_header h;
	char *path, hex[65], msg[512];
	uint64_t size;
	json_t *e;
	enum serr err = SERR_OK;

	if (!container && !is_text_type(ext)) {
		json_array_append_new(skipped, json_string(name));
		return SERR_OK;
	}
	path = util_path_join(dir, name);
	if (!path)
		return SERR_NOMEM;
	if (container && cvd_check_file(path, &h, msg, sizeof(msg)) != SERR_OK) {
		snprintf(errbuf, errlen, "import: %s", msg);
		err = SERR_FORMAT;
	} else if (!pkg_file_sha256(path, hex, &size)) {
		snprintf(errbuf, errlen, "import: %s: %s", path, strerror(errno));
		err = SERR_IO;
	} else {
		e = json_pack("{ss ss sI ss}", "name", name, "kind", container ? "container" : ext,
			      "size", (json_int_t)size, "sha256", hex);
		if (e && container) {
			json_object_set_new(e, "version", json_integer(h.version));
			json_object_set_new(e, "sigs", json_integer(h.sigs));
		}
		if (!e || json_array_append_new(inv, e) != 0)
			err = SERR_NOMEM;
	}
	free(path);
	return err;
}

enum serr import_scan(const char *dir, json_t **inventory, char digest[65],
		      json_t **skipped, char *errbuf, size_t errlen)
{
	crypto_hash_sha256_state st;
	unsigned char d[32];
	enum serr err = SERR_OK;
	char **names = NULL, **grown, *text;
	size_t n = 0, i;
	struct dirent *de;
	struct stat sb;
	DIR *dp = opendir(dir);
	json_t *inv = json_array(), *skip = json_array();

	*inventory = *skipped = NULL;
	if (!dp) {
		snprintf(errbuf, errlen, "import: %s: %s", dir, strerror(errno));
		json_decref(inv);
		json_decref(skip);
		return SERR_IO;
	}
	while (inv && skip && (de = readdir(dp))) {
		if (de->d_name[0] == '.' || fstatat(dirfd(dp), de->d_name, &sb, 0) != 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown || !(grown[n] = strdup(de->d_name))) {
			names = grown ? grown : names;
			err = SERR_NOMEM;
			break;
		}
		names = grown;
		n++;
	}
	closedir(dp);
	if (!inv || !skip)
		err = SERR_NOMEM;
	if (err == SERR_OK && n)
		qsort(names, n, sizeof(*names), by_name);
	for (i = 0; err == SERR_OK && i < n; i++)
		err = add_file(dir, names[i], inv, skip, errbuf, errlen);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (err == SERR_OK && json_array_size(inv) == 0) {
		snprintf(errbuf, errlen, "import: %s holds no signature file", dir);
		err = SERR_EMPTY;
	}
	if (err == SERR_OK) {
		text = json_dumps(inv, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text) {
			err = SERR_NOMEM;
		} else {
			crypto_hash_sha256_init(&st);
			crypto_hash_sha256_update(&st, (const unsigned char *)text, strlen(text));
			crypto_hash_sha256_final(&st, d);
			sodium_bin2hex(digest, 65, d, sizeof(d));
			free(text);
		}
	}
	if (err != SERR_OK) {
		json_decref(inv);
		json_decref(skip);
		return err;
	}
	*inventory = inv;
	*skipped = skip;
	return SERR_OK;
}

/* Unpacks the container at path (its tar after the 512-byte header,
 * gzip-compressed or not) into dir. */
static enum serr unpack_one(const char *path, const char *dir, long long max,
			    char *errbuf, size_t errlen)
{
	enum err perr;
	char msg[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || lseek(fd, CVD_HEADER_SIZE, SEEK_SET) != CVD_HEADER_SIZE) {
		snprintf(errbuf, errlen, "import: %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SERR_IO;
	}
	perr = pack_extract_fd(fd, path, dir, max, LLONG_MAX, msg, sizeof(msg));
	close(fd);
	if (perr == ERR_OK)
		return SERR_OK;
	snprintf(errbuf, errlen, "import: %s", msg);
	return perr == ERR_NOMEM ? SERR_NOMEM : perr == ERR_IO ? SERR_IO : SERR_FORMAT;
}

/* Copies the file at from to to (mode 0600). */
static enum serr copy_file(const char *from, const char *to, char *errbuf, size_t errlen)
{
	size_t len;
	char *data = util_read_file(from, 1u << 30, &len);

	if (!data || util_write_file(to, data, len, 0600) != 0) {
		snprintf(errbuf, errlen, "import: %s: %s", data ? to : from, strerror(errno));
		free(data);
		return SERR_IO;
	}
	free(data);
	return SERR_OK;
}

enum serr import_unpack(const char *dir, const json_t *inventory, const char *out,
			long long max_member, char *errbuf, size_t errlen)
{
	enum serr err = SERR_OK;
	char *from = NULL, *sub = NULL, *to = NULL, stem[256];
	const char *name, *kind;
	json_t *e;
	size_t i;

	errbuf[0] = '\0';
	json_array_foreach(inventory, i, e) {
		name = json_string_value(json_object_get(e, "name"));
		kind = json_string_value(json_object_get(e, "kind"));
		snprintf(stem, sizeof(stem), "%.*s", (int)(strrchr(name, '.') - name), name);
		from = util_path_join(dir, name);
		sub = util_path_join(out, strcmp(kind, "container") == 0 ? stem : "custom");
		if (!from || !sub) {
			err = SERR_NOMEM;
		} else if (util_mkdir_p(sub, 0700) != 0) {
			snprintf(errbuf, errlen, "import: %s: %s", sub, strerror(errno));
			err = SERR_IO;
		} else if (strcmp(kind, "container") == 0) {
			err = unpack_one(from, sub, max_member, errbuf, errlen);
		} else if (!(to = util_path_join(sub, name))) {
			err = SERR_NOMEM;
		} else {
			err = copy_file(from, to, errbuf, errlen);
		}
		free(from);
		free(sub);
		free(to);
		from = sub = to = NULL;
		if (err != SERR_OK)
			break;
	}
	return err;
}
