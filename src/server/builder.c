/* builder.c -- components and their packages (see builder.h). */
#include "server/builder.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/comp.h"
#include "common/pack.h"
#include "common/pset.h"
#include "common/sdelta.h"
#include "common/util.h"
#include "server/importer.h"

/* The largest signature file read. */
#define MAX_FILE ((size_t)4 << 30)

/* zstd level of payloads: level 3 compresses a database of hex digests
 * nearly as well as level 19, several times faster. */
#define ZSTD_LEVEL 3

/* Whole-file hash formats: they go to the smart protection server. */
static const struct {
	const char *ext;
	const char *state;
} hash_types[] = {
	{ "hdb", "block" }, { "hsb", "block" }, { "hdu", "pua" }, { "hsu", "pua" },
	{ "fp", "allow" }, { "sfp", "allow" },
};

/* What build_contents() gathers across files. */
struct gather {
	const char *out;
	struct util_buf hashes;    /* hash entry lines, unsorted */
	struct util_buf prefixes;  /* prefix records, unsorted */
};

static const char *hash_state(const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t i;

	for (i = 0; dot && i < sizeof(hash_types) / sizeof(hash_types[0]); i++)
		if (strcmp(dot + 1, hash_types[i].ext) == 0)
			return hash_types[i].state;
	return NULL;
}

/* Parses one hash signature line "DIGEST:SIZE:NAME[:...]" of file into
 * g, the entry as state. Returns false when it is malformed. */
static bool add_hash(struct gather *g, const char *line, size_t n, const char *state)
{
	unsigned char digest[32], rec[COMP_PREFIX_WIDTH];
	const char *c1 = memchr(line, ':', n), *c2, *name, *end;
	size_t hexlen, sizelen, i;
	enum comp_digest type;
	char hexd[65];

	if (!c1)
		return false;
	hexlen = (size_t)(c1 - line);
	c2 = memchr(c1 + 1, ':', n - hexlen - 1);
	if (!c2 || (hexlen != 32 && hexlen != 40 && hexlen != 64))
		return false;
	type = hexlen == 32 ? COMP_MD5 : hexlen == 40 ? COMP_SHA1 : COMP_SHA256;
	sizelen = (size_t)(c2 - c1 - 1);
	name = c2 + 1;
	end = memchr(name, ':', (size_t)(line + n - name));
	if (!end)
		end = line + n;
	if (!sizelen || end == name ||
	    !(strncmp(c1 + 1, "*", sizelen) == 0 || strspn(c1 + 1, "0123456789") >= sizelen))
		return false;
	for (i = 0; i < hexlen; i++) {
		if (!isxdigit((unsigned char)line[i]))
			return false;
		hexd[i] = (char)tolower((unsigned char)line[i]);
	}
	hexd[hexlen] = '\0';
	if (util_buf_printf(&g->hashes, "%s:%s:%.*s:%s:%.*s\n",
			    type == COMP_MD5 ? "md5" : type == COMP_SHA1 ? "sha1" : "sha256", hexd,
			    (int)sizelen, c1 + 1, state, (int)(end - name), name) != 0)
		return false;
	/* Allow-list entries get prefixes too: an agent checks a layer
	 * against them before scanning it, as libclamav checks .fp/.sfp. */
	sodium_hex2bin(digest, sizeof(digest), hexd, 8, NULL, NULL, NULL);
	rec[0] = (unsigned char)type;
	memcpy(rec + 1, digest, 4);
	return util_buf_append(&g->prefixes, rec, sizeof(rec)) == 0;
}

/* Writes n bytes to dir/name, refusing to replace a file of that name. */
static enum serr put_file(const char *dir, const char *name, const char *data, size_t n,
			  const char *origin, char *errbuf, size_t errlen)
{
	char *path = util_path_join(dir, name);
	enum serr err = SERR_OK;
	int fd;

	if (!path)
		return SERR_NOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (n && write(fd, data, n) != (ssize_t)n) || close(fd) != 0) {
		if (errno == EEXIST)
			snprintf(errbuf, errlen, "import: %s: another source already has a file "
				 "named %s", origin, name);
		else
			snprintf(errbuf, errlen, "import: %s: %s", path, strerror(errno));
		err = errno == EEXIST ? SERR_FORMAT : SERR_IO;
	}
	free(path);
	return err;
}

/* Adds one signature file (path, shown as origin) to the components. */
static enum serr add_file(struct gather *g, const char *path, const char *name,
			  const char *origin, char *errbuf, size_t errlen)
{
	struct util_buf set = { 0 };
	const char *state = hash_state(name), *data, *p, *nl;
	char dir[4096];
	size_t len, n, line = 0;
	enum serr err = SERR_OK;
	char *raw = util_read_file(path, MAX_FILE, &len);

	if (!raw) {
		snprintf(errbuf, errlen, "import: %s: %s", path, strerror(errno));
		return SERR_IO;
	}
	data = raw;
	n = len;
	if (comp_set_width(name) == 0) {
		if (sdelta_normalize(raw, len, 0, &set) != ERR_OK) {
			err = SERR_NOMEM;
			goto out;
		}
		data = set.data ? set.data : "";
		n = set.len;
	}
	/* Hash entries are checked in the source's line order, so an error
	 * names the line an administrator sees. */
	for (p = raw; state && p < raw + len; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(raw + len - p));
		if (!nl)
			nl = raw + len;
		line++;
		if (nl - p > 0 && !(nl - p == 1 && *p == '\r') &&
		    !add_hash(g, p, (size_t)(nl - p - (nl > p && nl[-1] == '\r')), state)) {
			snprintf(errbuf, errlen, "import: %s line %zu: not a hash signature "
				 "(DIGEST:SIZE:NAME)", origin, line);
			err = SERR_FORMAT;
			goto out;
		}
	}
	snprintf(dir, sizeof(dir), "%s/%s", g->out, comp_table()[COMP_VIRUS].name);
	err = put_file(dir, name, data, n, origin, errbuf, errlen);
	if (err == SERR_OK && !state) {
		snprintf(dir, sizeof(dir), "%s/%s", g->out, comp_table()[COMP_SMART_AGENT].name);
		err = put_file(dir, name, data, n, origin, errbuf, errlen);
	}
out:
	util_buf_free(&set);
	free(raw);
	return err;
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the entries of dir (no dot files) sorted; *names is a new array
 * of new strings. */
static enum serr list_dir(const char *dir, char ***names, size_t *n, char *errbuf,
			  size_t errlen)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char **v = NULL, **grown;
	size_t count = 0;

	*names = NULL;
	*n = 0;
	if (!dp) {
		snprintf(errbuf, errlen, "%s: %s", dir, strerror(errno));
		return SERR_IO;
	}
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		grown = realloc(v, (count + 1) * sizeof(*v));
		if (!grown || !(grown[count] = strdup(de->d_name))) {
			v = grown ? grown : v;
			while (count)
				free(v[--count]);
			free(v);
			closedir(dp);
			return SERR_NOMEM;
		}
		v = grown;
		count++;
	}
	closedir(dp);
	if (count)
		qsort(v, count, sizeof(*v), by_string);
	*names = v;
	*n = count;
	return SERR_OK;
}

static void free_names(char **names, size_t n)
{
	while (n)
		free(names[--n]);
	free(names);
}

/* Writes the prefix file: the gathered prefixes cut to the width their
 * type's count calls for (pset.h), with the widths, encoded. */
static enum serr put_prefixes(struct gather *g, char *errbuf, size_t errlen)
{
	struct util_buf raw = { 0 }, set = { 0 }, file = { 0 };
	uint64_t count[PSET_TYPES + 1] = { 0 };
	unsigned char *r, params[PSET_TYPES][PSET_RECORD];
	unsigned bits[PSET_TYPES + 1] = { 0 }, type, nparams = 0;
	enum serr err = SERR_NOMEM;
	char dir[4096], msg[256];
	size_t i;

	if (sdelta_normalize(g->prefixes.data, g->prefixes.len, PSET_RECORD, &raw) != ERR_OK)
		goto out;
	for (i = 0; i < raw.len; i += PSET_RECORD)
		count[(unsigned char)raw.data[i]]++;
	for (type = 1; type <= PSET_TYPES; type++)
		if (count[type]) {
			bits[type] = pset_width(count[type]);
			pset_param(type, bits[type], params[nparams++]);
		}
	for (i = 0; i < raw.len; i += PSET_RECORD) {
		r = (unsigned char *)raw.data + i;
		pset_record(r[0], r + 1, bits[r[0]], r);
	}
	/* Cut prefixes may coincide: normalised again. Parameter records
	 * sort after every prefix. */
	if (util_buf_append(&raw, params, nparams * PSET_RECORD) != 0 ||
	    sdelta_normalize(raw.data ? raw.data : "", raw.len, PSET_RECORD, &set) != ERR_OK)
		goto out;
	if (comp_set_write(COMP_PREFIX_FILE, set.data ? set.data : "", set.len, &file, msg,
			   sizeof(msg)) != ERR_OK) {
		snprintf(errbuf, errlen, "hash prefixes: %s", msg);
		err = SERR_IO;
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/%s", g->out, comp_table()[COMP_SMART_AGENT].name);
	err = put_file(dir, COMP_PREFIX_FILE, file.data, file.len, "hash prefixes", errbuf,
		       errlen);
out:
	util_buf_free(&raw);
	util_buf_free(&set);
	util_buf_free(&file);
	return err;
}

/* Normalises the gathered hash entries and prefixes into their files. */
static enum serr put_sets(struct gather *g, char *errbuf, size_t errlen)
{
	struct util_buf set = { 0 };
	enum serr err = SERR_OK;
	char dir[4096];

	if (sdelta_normalize(g->hashes.data, g->hashes.len, 0, &set) != ERR_OK)
		return SERR_NOMEM;
	snprintf(dir, sizeof(dir), "%s/%s", g->out, comp_table()[COMP_SMART].name);
	err = put_file(dir, COMP_HASHES_FILE, set.data, set.len, "hash entries", errbuf, errlen);
	util_buf_free(&set);
	if (err == SERR_OK)
		err = put_prefixes(g, errbuf, errlen);
	return err;
}

enum serr build_contents(const char *unpacked, const char *out, char *errbuf,
			 size_t errlen)
{
	struct gather g = { .out = out };
	enum serr err;
	char **subs = NULL, **files = NULL, path[4096], origin[600];
	size_t nsubs = 0, nfiles = 0, i, j, c;

	for (c = 0; c < COMP_COUNT; c++) {
		snprintf(path, sizeof(path), "%s/%s", out, comp_table()[c].name);
		if (mkdir(path, 0700) != 0) {
			snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
			return SERR_IO;
		}
	}
	err = list_dir(unpacked, &subs, &nsubs, errbuf, errlen);
	for (i = 0; err == SERR_OK && i < nsubs; i++) {
		snprintf(path, sizeof(path), "%s/%s", unpacked, subs[i]);
		err = list_dir(path, &files, &nfiles, errbuf, errlen);
		for (j = 0; err == SERR_OK && j < nfiles; j++) {
			if (!import_signature_file(files[j]))
				continue;
			snprintf(path, sizeof(path), "%s/%s/%s", unpacked, subs[i], files[j]);
			if (strcmp(subs[i], "custom") == 0)
				snprintf(origin, sizeof(origin), "%s", files[j]);
			else
				snprintf(origin, sizeof(origin), "%s (in %s)", files[j], subs[i]);
			err = add_file(&g, path, files[j], origin, errbuf, errlen);
		}
		free_names(files, nfiles);
		files = NULL;
	}
	free_names(subs, nsubs);
	if (err == SERR_OK)
		err = put_sets(&g, errbuf, errlen);
	util_buf_free(&g.hashes);
	util_buf_free(&g.prefixes);
	return err;
}

/* Looks up name in a list from comp_describe(). */
static const json_t *find_file(const json_t *files, const char *name)
{
	const json_t *e;
	size_t i;

	json_array_foreach(files, i, e)
		if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
			return e;
	return NULL;
}

/* Puts into stage what a delta carries for file e of the new version:
 * nothing when unchanged, a set delta when one is smaller, else the file.
 * Appends the member's name to members. */
static enum serr delta_member(const json_t *e, const json_t *old_files,
			      const char *base_dir, const char *dir, const char *stage,
			      json_t *members, char *errbuf, size_t errlen)
{
	const char *name = json_string_value(json_object_get(e, "name"));
	const json_t *old = find_file(old_files, name);
	int width = comp_set_width(name);
	struct util_buf delta = { 0 }, aset = { 0 }, bset = { 0 };
	enum serr err = SERR_OK;
	char *a = NULL, *b = NULL, member[PKG_FILE_NAME_MAX + 8], from[4096], to[4096 + 256];
	char msg[256];
	const char *as, *bs;
	size_t alen = 0, blen = 0, aslen, bslen;

	if (old && json_equal(json_object_get(old, "sha256"), json_object_get(e, "sha256")))
		return SERR_OK;
	snprintf(from, sizeof(from), "%s/%s", dir, name);
	if (old && width >= 0) {
		snprintf(to, sizeof(to), "%s/%s", base_dir, name);
		a = util_read_file(to, MAX_FILE, &alen);
		b = util_read_file(from, MAX_FILE, &blen);
		if (!a || !b) {
			snprintf(errbuf, errlen, "%s: %s", a ? from : to, strerror(errno));
			err = SERR_IO;
		} else if (comp_set_read(name, a, alen, &aset, &as, &aslen, msg, sizeof(msg)) !=
			   ERR_OK ||
			   comp_set_read(name, b, blen, &bset, &bs, &bslen, msg, sizeof(msg)) !=
			   ERR_OK ||
			   sdelta_make(as, aslen, bs, bslen, (size_t)width, &delta) != ERR_OK) {
			/* Not a set after all (it was written by an older rule):
			 * the whole file goes. */
			util_buf_free(&delta);
		}
	}
	if (err == SERR_OK && delta.len && delta.len < blen) {
		snprintf(member, sizeof(member), "%s.wsd", name);
		snprintf(to, sizeof(to), "%s/%s", stage, member);
		if (util_write_file(to, delta.data, delta.len, 0600) != 0) {
			snprintf(errbuf, errlen, "%s: %s", to, strerror(errno));
			err = SERR_IO;
		}
	} else if (err == SERR_OK) {
		snprintf(member, sizeof(member), "%s", name);
		snprintf(to, sizeof(to), "%s/%s", stage, member);
		if (link(from, to) != 0) {
			snprintf(errbuf, errlen, "%s: %s", to, strerror(errno));
			err = SERR_IO;
		}
	}
	if (err == SERR_OK && json_array_append_new(members, json_string(member)) != 0)
		err = SERR_NOMEM;
	util_buf_free(&delta);
	util_buf_free(&aset);
	util_buf_free(&bset);
	free(a);
	free(b);
	return err;
}

enum serr build_package(const char *component, int64_t version, int64_t base,
			const char *base_dir, const char *dir, const char *payload_path,
			const char *payload_name, const unsigned char pk[PKG_PK_BYTES],
			const unsigned char sk[PKG_SK_BYTES], char **envelope,
			int64_t *size, char *errbuf, size_t errlen)
{
	json_t *files = NULL, *old_files = NULL, *members = json_array(), *payloads = NULL, *e;
	const char **names = NULL, *src = dir;
	enum serr err = SERR_OK;
	char stage[4096], hex[65], *manifest = NULL;
	uint64_t psize;
	size_t i, n;

	*envelope = NULL;
	errbuf[0] = '\0';
	snprintf(stage, sizeof(stage), "%s.d", payload_path);
	util_remove_tree(stage);
	if (!members)
		return SERR_NOMEM;
	if (comp_describe(dir, &files, errbuf, errlen) != ERR_OK ||
	    (base_dir && comp_describe(base_dir, &old_files, errbuf, errlen) != ERR_OK)) {
		err = SERR_IO;
		goto out;
	}
	if (base_dir) {
		src = stage;
		if (mkdir(stage, 0700) != 0) {
			snprintf(errbuf, errlen, "%s: %s", stage, strerror(errno));
			err = SERR_IO;
			goto out;
		}
		json_array_foreach(files, i, e) {
			err = delta_member(e, old_files, base_dir, dir, stage, members, errbuf,
					   errlen);
			if (err != SERR_OK)
				goto out;
		}
	} else {
		json_array_foreach(files, i, e)
			json_array_append(members, json_object_get(e, "name"));
	}
	n = json_array_size(members);
	names = calloc(n + 1, sizeof(*names));
	if (!names) {
		err = SERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		names[i] = json_string_value(json_array_get(members, i));
	if (pack_write(payload_path, src, names, n, ZSTD_LEVEL, errbuf, errlen) != ERR_OK ||
	    !pkg_file_sha256(payload_path, hex, &psize)) {
		if (!errbuf[0])
			snprintf(errbuf, errlen, "%s: %s", payload_path, strerror(errno));
		err = SERR_IO;
		goto out;
	}
	payloads = json_pack("[{ss sI ss}]", "name", payload_name, "size", (json_int_t)psize,
			     "sha256", hex);
	manifest = payloads ? pkg_manifest(component, version, base, payloads, files) : NULL;
	*envelope = manifest ? pkg_seal(manifest, pk, sk) : NULL;
	if (!*envelope)
		err = SERR_NOMEM;
	*size = (int64_t)psize;
out:
	if (base_dir)
		util_remove_tree(stage);
	if (err != SERR_OK)
		unlink(payload_path);
	free(names);
	free(manifest);
	json_decref(payloads);
	json_decref(files);
	json_decref(old_files);
	json_decref(members);
	return err;
}
