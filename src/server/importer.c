/* importer.c -- checking a signature source directory (see importer.h). */
#include "server/importer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* SHA-256 of the file at path, as hex, and its size. */
static bool file_digest(const char *path, char hex[65], long long *size)
{
	crypto_hash_sha256_state st;
	unsigned char buf[65536], digest[32];
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	*size = 0;
	crypto_hash_sha256_init(&st);
	while ((got = read(fd, buf, sizeof(buf))) > 0) {
		crypto_hash_sha256_update(&st, buf, (unsigned long long)got);
		*size += got;
	}
	close(fd);
	if (got < 0)
		return false;
	crypto_hash_sha256_final(&st, digest);
	sodium_bin2hex(hex, 65, digest, sizeof(digest));
	return true;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks one file and appends its inventory entry; skipped types go to
 * skipped. */
static enum import_err add_file(const char *dir, const char *name, json_t *inv, json_t *skipped,
				char *errbuf, size_t errlen)
{
	const char *ext = extension(name);
	bool container = strcmp(ext, "cvd") == 0 || strcmp(ext, "cld") == 0;
	struct cvd_header h;
	char *path, hex[65], msg[512];
	long long size;
	json_t *e;
	enum import_err err = IMPORT_OK;

	if (!container && !is_text_type(ext)) {
		json_array_append_new(skipped, json_string(name));
		return IMPORT_OK;
	}
	path = util_path_join(dir, name);
	if (!path)
		return IMPORT_ENOMEM;
	if (container && cvd_check_file(path, &h, msg, sizeof(msg)) != CVD_OK) {
		snprintf(errbuf, errlen, "import: %s", msg);
		err = IMPORT_EBAD;
	} else if (!file_digest(path, hex, &size)) {
		snprintf(errbuf, errlen, "import: %s: %s", path, strerror(errno));
		err = IMPORT_EIO;
	} else {
		e = json_pack("{ss ss sI ss}", "name", name, "kind", container ? "container" : ext,
			      "size", (json_int_t)size, "sha256", hex);
		if (e && container) {
			json_object_set_new(e, "version", json_integer(h.version));
			json_object_set_new(e, "sigs", json_integer(h.sigs));
		}
		if (!e || json_array_append_new(inv, e) != 0)
			err = IMPORT_ENOMEM;
	}
	free(path);
	return err;
}

enum import_err import_scan(const char *dir, json_t **inventory, char digest[65],
			    json_t **skipped, char *errbuf, size_t errlen)
{
	crypto_hash_sha256_state st;
	unsigned char d[32];
	enum import_err err = IMPORT_OK;
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
		return IMPORT_EIO;
	}
	while (inv && skip && (de = readdir(dp))) {
		if (de->d_name[0] == '.' || fstatat(dirfd(dp), de->d_name, &sb, 0) != 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown || !(grown[n] = strdup(de->d_name))) {
			names = grown ? grown : names;
			err = IMPORT_ENOMEM;
			break;
		}
		names = grown;
		n++;
	}
	closedir(dp);
	if (!inv || !skip)
		err = IMPORT_ENOMEM;
	if (err == IMPORT_OK && n)
		qsort(names, n, sizeof(*names), by_name);
	for (i = 0; err == IMPORT_OK && i < n; i++)
		err = add_file(dir, names[i], inv, skip, errbuf, errlen);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (err == IMPORT_OK && json_array_size(inv) == 0) {
		snprintf(errbuf, errlen, "import: %s holds no signature file", dir);
		err = IMPORT_EEMPTY;
	}
	if (err == IMPORT_OK) {
		text = json_dumps(inv, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text) {
			err = IMPORT_ENOMEM;
		} else {
			crypto_hash_sha256_init(&st);
			crypto_hash_sha256_update(&st, (const unsigned char *)text, strlen(text));
			crypto_hash_sha256_final(&st, d);
			sodium_bin2hex(digest, 65, d, sizeof(d));
			free(text);
		}
	}
	if (err != IMPORT_OK) {
		json_decref(inv);
		json_decref(skip);
		return err;
	}
	*inventory = inv;
	*skipped = skip;
	return IMPORT_OK;
}
