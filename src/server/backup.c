/* backup.c -- writing, checking and unpacking a server's archive (see
 * backup.h; the format is in docs/formats.md, "Backups"). */
#include "server/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "server/store.h"

#define MAGIC "WARDBAK1"
#define MAGIC_LEN 8
#define FORMAT 1
/* Bytes of a part in one record; a record is its type and these. */
#define CHUNK (64 * 1024)
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define SS_HEADER crypto_secretstream_xchacha20poly1305_HEADERBYTES
/* Bounds a reader holds an archive to: a hostile one asks for no more. */
#define MAX_HEADER 4096
#define MAX_MANIFEST (64u << 20)
#define MAX_PARTS 1000000
#define MAX_NAME 1024
/* The part holding a PostgreSQL server's database (store_copy_part()). */
#define PG_PART "database/ward.pgdump"
#define MAX_DEPTH 16
#define MAX_OPSLIMIT 10
#define MAX_MEMLIMIT (1ULL << 30)
/* A part the database copy refers to may go while it is copied (an
 * import prunes it): the whole archive is made again, this many times. */
#define ATTEMPTS 3

enum record {
	REC_PART = 'P',      /* a part starts: {"name", "mode"} */
	REC_DATA = 'D',      /* its next bytes */
	REC_END = 'E',       /* it ends: {"size", "sha256"} */
	REC_MANIFEST = 'M',  /* the manifest's text; the last under the final tag */
};

char *backup_passphrase(const char *path, char *errbuf, size_t errlen)
{
	size_t n = 0;
	char *p = util_read_file(path, 4096, &n);

	if (!p) {
		util_set_msg(errbuf, errlen, "passphrase file %s: %s", path, strerror(errno));
		return NULL;
	}
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		p[--n] = '\0';
	if (strlen(p) != n) {
		util_set_msg(errbuf, errlen, "passphrase file %s: it holds a NUL byte", path);
		sodium_memzero(p, n);
		free(p);
		return NULL;
	}
	return p;
}

char *backup_name(const char *dir, const char *tag)
{
	char host[256], when[32];
	time_t now = time(NULL);
	struct tm tm;

	util_host_name(host);
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
	return util_printf("%s/ward-%s-%s%s%s.wbk", dir, host, when, tag ? "-" : "",
			   tag ? tag : "");
}

/* The two keys of an archive, from its passphrase and salt. */
struct keys {
	unsigned char stream[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	unsigned char check[16];   /* in the header: a wrong passphrase is told apart */
};

/* Argon2id on the passphrase, then a key for the stream and one to check
 * the passphrase by. Slow on purpose (libsodium's "moderate" limits). */
static enum serr derive(const char *passphrase, const unsigned char *salt,
			unsigned long long ops, size_t mem, struct keys *k, char *errbuf,
			size_t errlen)
{
	unsigned char master[crypto_kdf_KEYBYTES];

	if (crypto_pwhash(master, sizeof(master), passphrase, strlen(passphrase), salt, ops, mem,
			  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		util_set_msg(errbuf, errlen, "out of memory deriving the key (Argon2id, %zu MiB)",
			     mem >> 20);
		return SERR_NOMEM;
	}
	crypto_kdf_derive_from_key(k->stream, sizeof(k->stream), 1, "wardbkup", master);
	crypto_kdf_derive_from_key(k->check, sizeof(k->check), 2, "wardbkup", master);
	sodium_memzero(master, sizeof(master));
	return SERR_OK;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The writer of one archive. */
struct writer {
	int fd;
	const char *path;
	crypto_secretstream_xchacha20poly1305_state ss;
	unsigned char *ad;        /* the header, the first record's additional data */
	size_t adlen;
	unsigned char plain[1 + CHUNK];
	unsigned char cipher[4 + 1 + CHUNK + ABYTES];
	json_t *parts;            /* [{name, size, sha256}] */
	char *errbuf;
	size_t errlen;
};

/* Encrypts and writes one record of type with n bytes (n <= CHUNK). */
static enum serr put(struct writer *w, enum record type, const void *p, size_t n,
		     unsigned char tag)
{
	unsigned long long clen = 0;

	util_assert(n <= CHUNK);
	w->plain[0] = (unsigned char)type;
	if (n)
		memcpy(w->plain + 1, p, n);
	crypto_secretstream_xchacha20poly1305_push(&w->ss, w->cipher + 4, &clen, w->plain, n + 1,
						   w->ad, w->adlen, tag);
	w->ad = NULL;
	w->adlen = 0;
	put_u32(w->cipher, (uint32_t)clen);
	if (util_write_all(w->fd, w->cipher, 4 + (size_t)clen) != 0) {
		util_set_msg(w->errbuf, w->errlen, "%s: %s", w->path, strerror(errno));
		return SERR_IO;
	}
	return SERR_OK;
}

/* Writes a JSON record of type. */
static enum serr put_json(struct writer *w, enum record type, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	enum serr err = text && strlen(text) <= CHUNK ? put(w, type, text, strlen(text), 0) :
			SERR_NOMEM;

	json_decref(obj);
	free(text);
	return err;
}

/* Writes the file open on fd as part name (it takes fd over). */
static enum serr put_file(struct writer *w, const char *name, int fd, mode_t mode)
{
	crypto_hash_sha256_state h;
	unsigned char digest[crypto_hash_sha256_BYTES], buf[CHUNK];
	char hex[2 * sizeof(digest) + 1];
	enum serr err;
	uint64_t size = 0;
	ssize_t n;

	err = put_json(w, REC_PART, json_pack("{ss si}", "name", name, "mode",
					      (int)(mode & 0777)));
	crypto_hash_sha256_init(&h);
	while (err == SERR_OK && (n = util_read_full(fd, buf, sizeof(buf))) > 0) {
		crypto_hash_sha256_update(&h, buf, (unsigned long long)n);
		size += (uint64_t)n;
		err = put(w, REC_DATA, buf, (size_t)n, 0);
	}
	if (err == SERR_OK && n < 0) {
		util_set_msg(w->errbuf, w->errlen, "reading %s: %s", name, strerror(errno));
		err = SERR_IO;
	}
	close(fd);
	if (err != SERR_OK)
		return err;
	crypto_hash_sha256_final(&h, digest);
	sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
	err = put_json(w, REC_END, json_pack("{sI ss}", "size", (json_int_t)size, "sha256",
					     hex));
	if (err == SERR_OK &&
	    json_array_append_new(w->parts, json_pack("{ss sI ss}", "name", name, "size",
						      (json_int_t)size, "sha256", hex)) != 0)
		err = SERR_NOMEM;
	return err;
}

/* Opens path (no symbolic link) and writes it as part name: SERR_NOENT
 * when it is not there. */
static enum serr put_path(struct writer *w, const char *name, const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), saved = errno;
	struct stat sb;

	if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		saved = errno;
		util_set_msg(w->errbuf, w->errlen, "%s: %s", path,
			     fd < 0 ? strerror(saved) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return fd < 0 && saved == ENOENT ? SERR_NOENT : SERR_IO;
	}
	return put_file(w, name, fd, sb.st_mode);
}

/* What of the data directory is not copied as it is: the database (its
 * snapshot is), the lock of the server running on it, what an import is
 * building, and the packages and components (those the snapshot names
 * are); anywhere, files being written (".tmp") and hidden ones, and
 * archives and what a backup is writing (a backup.dir inside the data
 * directory: each backup would hold all those before it). */
static bool skipped(const char *name, bool top)
{
	static const char *const top_level[] = { "ward.db", "ward.db-wal", "ward.db-shm",
						 "ward.db-journal", "wardd.lock", "staging",
						 "packages", "components", "upgrade.json",
						 "upgrade-ward.db", "upgrade-ward.db-wal" };
	static const char *const endings[] = { ".tmp", ".wbk", ".wbk.partial", ".wbk.partial.d" };
	size_t i, n = strlen(name), e;

	if (name[0] == '.')
		return true;
	for (i = 0; i < sizeof(endings) / sizeof(*endings); i++) {
		e = strlen(endings[i]);
		if (n > e && strcmp(name + n - e, endings[i]) == 0)
			return true;
	}
	for (i = 0; top && i < sizeof(top_level) / sizeof(*top_level); i++)
		if (strcmp(name, top_level[i]) == 0)
			return true;
	return false;
}

/* Writes every file under dir as parts named prefix/..., in name order. */
static enum serr put_tree(struct writer *w, const char *dir, const char *prefix, int depth,
			  bool top)
{
	struct dirent **list = NULL;
	enum serr err = SERR_OK;
	struct stat sb;
	char *path, *name;
	int i, n;

	if (depth > MAX_DEPTH) {
		util_set_msg(w->errbuf, w->errlen, "%s: folders nest deeper than %d", dir,
			     MAX_DEPTH);
		return SERR_INVAL;
	}
	n = scandir(dir, &list, NULL, alphasort);
	if (n < 0) {
		util_set_msg(w->errbuf, w->errlen, "%s: %s", dir, strerror(errno));
		return errno == ENOENT ? SERR_NOENT : SERR_IO;
	}
	for (i = 0; i < n; i++) {
		const char *e = list[i]->d_name;

		if (err != SERR_OK || strcmp(e, ".") == 0 || strcmp(e, "..") == 0 ||
		    skipped(e, top))
			continue;
		path = util_path_join(dir, e);
		name = util_printf("%s/%s", prefix, e);
		if (!path || !name)
			err = SERR_NOMEM;
		else if (lstat(path, &sb) != 0)
			err = errno == ENOENT ? SERR_OK : SERR_IO;  /* gone since: not part of it */
		else if (S_ISDIR(sb.st_mode))
			err = put_tree(w, path, name, depth + 1, false);
		else if (S_ISREG(sb.st_mode))
			err = put_path(w, name, path);
		if (err == SERR_IO && !w->errbuf[0])
			util_set_msg(w->errbuf, w->errlen, "%s: %s", path, strerror(errno));
		free(path);
		free(name);
	}
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return err;
}

/* The packages the database copy names, and the component version each
 * was built from (the newest of each component: the base of the next
 * import's deltas and the integrated smart protection server's pattern). */
static enum serr put_packages(struct writer *w, const char *data_dir, const json_t *packages)
{
	json_t *newest = json_object(), *p;
	enum serr err = newest ? SERR_OK : SERR_NOMEM;
	const char *comp;
	char *path, *name;
	size_t i;

	json_array_foreach(packages, i, p) {
		const char *file = json_string_value(json_object_get(p, "file"));
		json_int_t v = json_integer_value(json_object_get(p, "version"));

		comp = json_string_value(json_object_get(p, "component"));
		if (err != SERR_OK || !file || !comp)
			break;
		if (v > json_integer_value(json_object_get(newest, comp)))
			json_object_set_new(newest, comp, json_integer(v));
		path = util_printf("%s/packages/%s", data_dir, file);
		name = util_printf("data/packages/%s", file);
		err = path && name ? put_path(w, name, path) : SERR_NOMEM;
		free(path);
		free(name);
	}
	json_object_foreach(newest, comp, p) {
		if (err != SERR_OK)
			break;
		path = util_printf("%s/components/%s/%lld", data_dir, comp,
				   (long long)json_integer_value(p));
		name = util_printf("data/components/%s/%lld", comp,
				   (long long)json_integer_value(p));
		err = path && name ? put_tree(w, path, name, 2, false) : SERR_NOMEM;
		free(path);
		free(name);
	}
	json_decref(newest);
	return err;
}

/* The manifest, in records of at most CHUNK bytes, the last one final. */
static enum serr put_manifest(struct writer *w, json_t *manifest)
{
	char *text = json_dumps(manifest, JSON_COMPACT);
	size_t len = text ? strlen(text) : 0, off = 0, n;
	enum serr err = text ? SERR_OK : SERR_NOMEM;

	while (err == SERR_OK) {
		n = len - off < CHUNK ? len - off : CHUNK;
		err = put(w, REC_MANIFEST, text + off, n, off + n == len ?
			  crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
		off += n;
		if (off == len)
			break;
	}
	free(text);
	return err;
}

/* The cleartext header: magic, length, JSON, SHA-256 of what precedes. */
static unsigned char *header_bytes(const json_t *header, size_t *len)
{
	char *text = json_dumps(header, JSON_COMPACT | JSON_SORT_KEYS);
	size_t n = text ? strlen(text) : 0;
	unsigned char *b = text && n <= MAX_HEADER ?
			   malloc(MAGIC_LEN + 4 + n + crypto_hash_sha256_BYTES) : NULL;

	if (b) {
		memcpy(b, MAGIC, MAGIC_LEN);
		put_u32(b + MAGIC_LEN, (uint32_t)n);
		memcpy(b + MAGIC_LEN + 4, text, n);
		crypto_hash_sha256(b + MAGIC_LEN + 4 + n, b, MAGIC_LEN + 4 + n);
		*len = MAGIC_LEN + 4 + n + crypto_hash_sha256_BYTES;
	}
	free(text);
	return b;
}

/* One attempt at the whole archive, into the open file w->fd. */
static enum serr write_archive(struct writer *w, const struct backup_source *src,
			       const char *tmpdir, json_t **manifest)
{
	unsigned char salt[crypto_pwhash_SALTBYTES], ss_header[SS_HEADER];
	char salt_hex[2 * sizeof(salt) + 1], check_hex[33], host[256], *snap, *path = NULL;
	unsigned char *ad = NULL;
	const char *part;
	json_t *info = NULL, *header = NULL, *m = NULL;
	int64_t now = (int64_t)time(NULL);
	struct keys k;
	size_t hlen = 0;
	enum serr err;

	path = src->database && src->database[0] ? strdup(src->database) :
	       util_path_join(src->data_dir, "ward.db");
	part = path ? store_copy_part(path) : NULL;
	snap = part ? util_path_join(tmpdir, strrchr(part, '/') + 1) : NULL;
	err = snap ? store_snapshot(path, snap, &info, w->errbuf, w->errlen) : SERR_NOMEM;
	if (err != SERR_OK)
		goto out;
	randombytes_buf(salt, sizeof(salt));
	err = derive(src->passphrase, salt, crypto_pwhash_OPSLIMIT_MODERATE,
		     crypto_pwhash_MEMLIMIT_MODERATE, &k, w->errbuf, w->errlen);
	if (err != SERR_OK)
		goto out;
	sodium_bin2hex(salt_hex, sizeof(salt_hex), salt, sizeof(salt));
	sodium_bin2hex(check_hex, sizeof(check_hex), k.check, sizeof(k.check));
	util_host_name(host);
	header = json_pack("{si ss sO sI ss s{ss sI sI ss ss}}", "format", FORMAT,
			   "ward_version", WARD_VERSION, "schema", json_object_get(info, "schema"),
			   "created", (json_int_t)now, "host", host, "kdf", "algorithm",
			   "argon2id13", "opslimit", (json_int_t)crypto_pwhash_OPSLIMIT_MODERATE,
			   "memlimit", (json_int_t)crypto_pwhash_MEMLIMIT_MODERATE, "salt",
			   salt_hex, "check", check_hex);
	/* Bound to the first record only (put() forgets it): owned here. */
	ad = header ? header_bytes(header, &hlen) : NULL;
	w->ad = ad;
	w->adlen = hlen;
	if (!ad) {
		err = SERR_NOMEM;
		goto out;
	}
	crypto_secretstream_xchacha20poly1305_init_push(&w->ss, ss_header, k.stream);
	sodium_memzero(&k, sizeof(k));
	if (util_write_all(w->fd, ad, hlen) != 0 ||
	    util_write_all(w->fd, ss_header, SS_HEADER) != 0) {
		util_set_msg(w->errbuf, w->errlen, "%s: %s", w->path, strerror(errno));
		err = SERR_IO;
		goto out;
	}
	m = header;
	err = put_path(w, part, snap);
	/* Gone from under the copy, whose name the server keeps: restored, the
	 * copy would not serve what it lists. */
	if (err == SERR_OK)
		err = put_packages(w, src->data_dir, json_object_get(info, "packages"));
	if (err == SERR_OK)
		err = put_tree(w, src->data_dir, "data", 0, true);
	if (err == SERR_OK && src->config_path)
		err = put_path(w, "config/wardd.ini", src->config_path);
	if (err == SERR_OK) {
		json_object_del(m, "kdf");
		if (json_object_set_new(m, "database", json_pack("{sO sO sO}", "clients",
				json_object_get(info, "clients"), "events",
				json_object_get(info, "events"), "snapshot_seconds",
				json_object_get(info, "snapshot_seconds"))) != 0 ||
		    json_object_set(m, "parts", w->parts) != 0)
			err = SERR_NOMEM;
	}
	if (err == SERR_OK)
		err = put_manifest(w, m);
	if (err == SERR_OK && fsync(w->fd) != 0) {
		util_set_msg(w->errbuf, w->errlen, "%s: %s", w->path, strerror(errno));
		err = SERR_IO;
	}
	if (err == SERR_OK && manifest)
		*manifest = json_incref(m);
out:
	sodium_memzero(&k, sizeof(k));
	if (snap)
		unlink(snap);
	free(ad);
	w->ad = NULL;
	json_decref(header);
	json_decref(info);
	free(snap);
	free(path);
	return err;
}

/* Makes fsync of the folder holding path, so a rename into it lasts. */
static void sync_dir_of(const char *path)
{
	char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
	int fd;

	if (slash)
		*slash = '\0';
	fd = dir ? open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) :
		   -1;
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/* Removes what a backup killed outright left in dir: archives being
 * written (NAME.partial, locked while their writer lives) and their
 * database copies (NAME.partial.d). */
static void sweep(const char *dir)
{
	struct dirent **list = NULL;
	char *path, *copy;
	int i, n = scandir(dir, &list, NULL, NULL), fd;
	size_t len;

	for (i = 0; i < n; i++) {
		len = strlen(list[i]->d_name);
		if (len > 12 && strcmp(list[i]->d_name + len - 12, ".wbk.partial") == 0 &&
		    (path = util_path_join(dir, list[i]->d_name))) {
			fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
				copy = util_printf("%s.d", path);
				if (copy)
					util_remove_tree(copy);
				unlink(path);
				free(copy);
			}
			if (fd >= 0)
				close(fd);
			free(path);
		}
		free(list[i]);
	}
	free(list);
}

enum serr backup_create(const struct backup_source *src, const char *out, json_t **manifest,
			char *errbuf, size_t errlen)
{
	struct writer *w = calloc(1, sizeof(*w));
	char *partial = util_printf("%s.partial", out), *tmpdir = util_printf("%s.partial.d", out);
	char *dir = strdup(out), *slash = dir ? strrchr(dir, '/') : NULL;
	enum serr err = w && partial && tmpdir && dir ? SERR_OK : SERR_NOMEM;
	struct stat sb;
	bool made;
	int attempt;

	if (!w) {
		free(partial);
		free(tmpdir);
		free(dir);
		return SERR_NOMEM;
	}
	w->fd = -1;
	if (slash)
		*slash = '\0';
	if (err == SERR_OK && strlen(src->passphrase) < BACKUP_MIN_PASSPHRASE) {
		util_set_msg(errbuf, errlen, "the passphrase is shorter than %d characters",
			     BACKUP_MIN_PASSPHRASE);
		err = SERR_INVAL;
	}
	if (err == SERR_OK && (lstat(out, &sb) == 0 || strlen(out) < 5 ||
			       strcmp(out + strlen(out) - 4, ".wbk") != 0)) {
		util_set_msg(errbuf, errlen, lstat(out, &sb) == 0 ? "%s exists already" :
			     "%s: an archive's name ends in .wbk", out);
		err = SERR_EXIST;
	}
	if (err == SERR_OK)
		sweep(slash ? (dir[0] ? dir : "/") : ".");
	/* Locked for its life: a sweep of another backup leaves it be. */
	if (err == SERR_OK)
		w->fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (err == SERR_OK && (w->fd < 0 || flock(w->fd, LOCK_EX) != 0 || mkdir(tmpdir, 0700))) {
		util_set_msg(errbuf, errlen, "%s: %s", partial, strerror(errno));
		if (w->fd >= 0)
			unlink(partial);
		err = SERR_IO;
	}
	made = err == SERR_OK;
	for (attempt = 0; err == SERR_OK && attempt < ATTEMPTS; attempt++) {
		json_decref(w->parts);
		w->parts = json_array();
		w->path = partial;
		w->errbuf = errbuf;
		w->errlen = errlen;
		errbuf[0] = '\0';
		if (!w->parts || ftruncate(w->fd, 0) != 0 || lseek(w->fd, 0, SEEK_SET) != 0) {
			util_set_msg(errbuf, errlen, "%s: %s", partial, strerror(errno));
			err = w->parts ? SERR_IO : SERR_NOMEM;
			break;
		}
		err = write_archive(w, src, tmpdir, manifest);
		if (err != SERR_NOENT)
			break;
		err = SERR_OK;  /* pruned while it was copied: once more */
	}
	if (err == SERR_OK && attempt == ATTEMPTS) {
		util_set_msg(errbuf, errlen, "the server's packages changed under each of %d "
			     "attempts (imports running): try again", ATTEMPTS);
		err = SERR_IO;
	}
	if (err == SERR_OK && rename(partial, out) != 0) {
		util_set_msg(errbuf, errlen, "%s: %s", out, strerror(errno));
		err = SERR_IO;
	}
	if (err == SERR_OK)
		sync_dir_of(out);
	else if (made)
		unlink(partial);
	if (w->fd >= 0)
		close(w->fd);
	if (made)
		util_remove_tree(tmpdir);
	json_decref(w->parts);
	free(w);
	free(partial);
	free(tmpdir);
	free(dir);
	return err;
}

/* The reader of one archive. */
struct reader {
	int fd;
	const char *path;
	crypto_secretstream_xchacha20poly1305_state ss;
	unsigned char *ad;
	size_t adlen;
	uint64_t offset;          /* of the next record */
	unsigned char cipher[4 + 1 + CHUNK + ABYTES];
	unsigned char plain[1 + CHUNK];
	size_t len;               /* bytes in plain */
	unsigned char tag;
	char *errbuf;
	size_t errlen;
};

/* Sets the message "backup PATH" + what fmt says; returns err. */
__attribute__((format(printf, 3, 4)))
static enum serr bad(struct reader *r, enum serr err, const char *fmt, ...)
{
	char what[MAX_NAME + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	util_set_msg(r->errbuf, r->errlen, "backup %s%s", r->path, what);
	return err;
}

/* Reads and decrypts the next record; where names the place in the
 * archive for a message. */
static enum serr get(struct reader *r, const char *where)
{
	unsigned long long mlen = 0;
	uint32_t clen;
	ssize_t n = util_read_full(r->fd, r->cipher, 4);

	if (n == 4) {
		clen = get_u32(r->cipher);
		if (clen < ABYTES + 1 || clen > 1 + CHUNK + ABYTES) {
			return bad(r, SERR_FORMAT, " is damaged %s (offset %llu): a record of %u "
				   "bytes", where, (unsigned long long)r->offset, clen);
		}
		n = util_read_full(r->fd, r->cipher + 4, clen);
		if (n == (ssize_t)clen) {
			if (crypto_secretstream_xchacha20poly1305_pull(&r->ss, r->plain, &mlen,
					&r->tag, r->cipher + 4, clen, r->adlen ? r->ad : NULL,
					r->adlen) != 0)
				return bad(r, SERR_FORMAT, " is damaged %s (offset %llu): it does "
					   "not authenticate", where,
					   (unsigned long long)r->offset);
			r->adlen = 0;  /* the first record's only; freed with the reader */
			r->len = (size_t)mlen;
			r->offset += 4 + clen;
			return SERR_OK;
		}
	}
	if (n < 0) {
		util_set_msg(r->errbuf, r->errlen, "%s: %s", r->path, strerror(errno));
		return SERR_IO;
	}
	return bad(r, SERR_FORMAT, " is truncated %s (offset %llu): its end is missing", where,
		   (unsigned long long)r->offset);
}

/* The JSON object of a record (after its type byte). */
static json_t *record_json(const struct reader *r)
{
	json_t *v = json_loadb((const char *)r->plain + 1, r->len - 1, 0, NULL);

	if (!json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* A part's name is data/... or config/wardd.ini, in plain segments. */
static bool name_ok(const char *name)
{
	const char *seg = name, *end;
	size_t i, n = strlen(name);
	int depth = 0;

	if (n == 0 || n > MAX_NAME || (strncmp(name, "data/", 5) != 0 &&
				       strcmp(name, "config/wardd.ini") != 0 &&
				       strcmp(name, PG_PART) != 0))
		return false;
	for (i = 0; i < n; i++)
		if (!(name[i] == '/' || name[i] == '.' || name[i] == '_' || name[i] == '-' ||
		      (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9')))
			return false;
	while (seg) {
		end = strchr(seg, '/');
		n = end ? (size_t)(end - seg) : strlen(seg);
		if (n == 0 || (seg[0] == '.' && (n == 1 || (n == 2 && seg[1] == '.'))))
			return false;
		if (++depth > MAX_DEPTH + 4)
			return false;
		seg = end ? end + 1 : NULL;
	}
	return true;
}

/* Opens dest/name for a part, making its folders (0700). */
static int open_part(const char *dest, const char *name, int mode)
{
	char *path = util_path_join(dest, name), *slash = path ? strrchr(path, '/') : NULL;
	int fd = -1;

	if (slash) {
		*slash = '\0';
		if (util_mkdir_p(path, 0700) == 0) {
			*slash = '/';
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				  (mode_t)(mode & 0700));
		}
	}
	free(path);
	return fd;
}

/* Reads the parts after the header: each announced, its bytes, its end;
 * then the manifest. Parts are written under dest (or only the database,
 * into tmp, when dest is NULL). */
static enum serr read_parts(struct reader *r, const char *dest, const char *tmp,
			    json_t *parts, json_t **manifest)
{
	crypto_hash_sha256_state h;
	unsigned char digest[crypto_hash_sha256_BYTES];
	char hex[2 * sizeof(digest) + 1], where[MAX_NAME + 64], *name = NULL;
	const char *sum;
	bool same;
	struct util_buf text = { 0 };
	enum serr err = SERR_OK;
	json_t *j, *entry;
	uint64_t size = 0;
	int fd = -1;

	snprintf(where, sizeof(where), "at its first part");
	while ((err = get(r, where)) == SERR_OK) {
		enum record type = r->len ? (enum record)r->plain[0] : REC_MANIFEST;
		bool final = r->tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;

		if (type == REC_PART && !name && !final) {
			j = record_json(r);
			if (!j || !json_is_string(json_object_get(j, "name")) ||
			    !name_ok(json_string_value(json_object_get(j, "name"))) ||
			    json_array_size(parts) >= MAX_PARTS) {
				json_decref(j);
				err = bad(r, SERR_FORMAT, ": a part's name is not acceptable, %s",
					  where);
				break;
			}
			name = strdup(json_string_value(json_object_get(j, "name")));
			snprintf(where, sizeof(where), "in part %s", name ? name : "?");
			if (name && (dest || strcmp(name, "data/ward.db") == 0 ||
				     strcmp(name, PG_PART) == 0)) {
				fd = open_part(dest ? dest : tmp,
					       dest ? name : strrchr(name, '/') + 1,
					       (int)json_integer_value(json_object_get(j, "mode")));
				if (fd < 0) {
					util_set_msg(r->errbuf, r->errlen, "%s: %s (part %s)",
						     dest ? dest : tmp, strerror(errno), name);
					err = errno == EEXIST ? SERR_FORMAT : SERR_IO;
				}
			}
			json_decref(j);
			if (!name)
				err = SERR_NOMEM;
			if (err != SERR_OK)
				break;
			crypto_hash_sha256_init(&h);
			size = 0;
		} else if (type == REC_DATA && name && !final) {
			crypto_hash_sha256_update(&h, r->plain + 1, r->len - 1);
			size += r->len - 1;
			if (fd >= 0 && util_write_all(fd, r->plain + 1, r->len - 1) != 0) {
				util_set_msg(r->errbuf, r->errlen, "writing part %s: %s", name,
					     strerror(errno));
				err = SERR_IO;
				break;
			}
		} else if (type == REC_END && name && !final) {
			j = record_json(r);
			crypto_hash_sha256_final(&h, digest);
			sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
			sum = json_string_value(json_object_get(j, "sha256"));
			same = sum && strcmp(sum, hex) == 0 &&
			       json_integer_value(json_object_get(j, "size")) == (json_int_t)size;
			json_decref(j);
			if (!same) {
				err = bad(r, SERR_HASH, " is damaged %s: its size or SHA-256 "
					  "differs from what was written", where);
				break;
			}
			entry = json_pack("{ss sI ss}", "name", name, "size", (json_int_t)size,
					  "sha256", hex);
			if (!entry || json_array_append_new(parts, entry) != 0) {
				err = SERR_NOMEM;
				break;
			}
			if (fd >= 0 && (fsync(fd) != 0 || close(fd) != 0)) {
				fd = -1;
				util_set_msg(r->errbuf, r->errlen, "writing part %s: %s", name,
					     strerror(errno));
				err = SERR_IO;
				break;
			}
			fd = -1;
			snprintf(where, sizeof(where), "after part %s", name);
			free(name);
			name = NULL;
		} else if (type == REC_MANIFEST && !name) {
			if (text.len + r->len > MAX_MANIFEST ||
			    util_buf_append(&text, r->plain + 1, r->len - 1) != 0) {
				err = bad(r, SERR_FORMAT, ": its manifest is over %u bytes",
					  MAX_MANIFEST);
				break;
			}
			snprintf(where, sizeof(where), "in its manifest");
			if (final)
				break;
		} else {
			err = bad(r, SERR_FORMAT, " is damaged %s: a record out of place", where);
			break;
		}
	}
	if (fd >= 0)
		close(fd);
	free(name);
	if (err == SERR_OK && util_read_full(r->fd, r->cipher, 1) != 0) {
		err = bad(r, SERR_FORMAT, " has data after its end");
	}
	if (err == SERR_OK) {
		*manifest = json_loadb(text.data ? text.data : "", text.len, 0, NULL);
		if (!json_is_object(*manifest) ||
		    !json_equal(json_object_get(*manifest, "parts"), parts)) {
			err = bad(r, SERR_FORMAT, ": its manifest does not list the parts it "
				  "holds");
		}
	}
	util_buf_free(&text);
	return err;
}

/* Reads and checks the cleartext header; *hdr gets its JSON, r->ad its
 * bytes. */
static enum serr read_header(struct reader *r, json_t **hdr)
{
	unsigned char fixed[MAGIC_LEN + 4], sum[crypto_hash_sha256_BYTES];
	uint32_t n;

	if (util_read_full(r->fd, fixed, sizeof(fixed)) != (ssize_t)sizeof(fixed) ||
	    memcmp(fixed, MAGIC, MAGIC_LEN) != 0) {
		util_set_msg(r->errbuf, r->errlen, "%s is not a Ward backup", r->path);
		return SERR_FORMAT;
	}
	n = get_u32(fixed + MAGIC_LEN);
	if (n > MAX_HEADER) {
		util_set_msg(r->errbuf, r->errlen, "backup %s: its header is damaged", r->path);
		return SERR_FORMAT;
	}
	r->adlen = sizeof(fixed) + n + sizeof(sum);
	r->ad = malloc(r->adlen);
	if (!r->ad)
		return SERR_NOMEM;
	memcpy(r->ad, fixed, sizeof(fixed));
	if (util_read_full(r->fd, r->ad + sizeof(fixed), n + sizeof(sum)) !=
	    (ssize_t)(n + sizeof(sum))) {
		util_set_msg(r->errbuf, r->errlen, "backup %s is truncated in its header", r->path);
		return SERR_FORMAT;
	}
	crypto_hash_sha256(sum, r->ad, sizeof(fixed) + n);
	*hdr = json_loadb((const char *)r->ad + sizeof(fixed), n, 0, NULL);
	if (sodium_memcmp(sum, r->ad + sizeof(fixed) + n, sizeof(sum)) != 0 ||
	    !json_is_object(*hdr)) {
		util_set_msg(r->errbuf, r->errlen, "backup %s: its header is damaged", r->path);
		return SERR_FORMAT;
	}
	if (json_integer_value(json_object_get(*hdr, "format")) != FORMAT) {
		util_set_msg(r->errbuf, r->errlen, "backup %s: format %lld, this wardd reads %d",
			     r->path, (long long)json_integer_value(json_object_get(*hdr,
			     "format")), FORMAT);
		return SERR_FORMAT;
	}
	r->offset = r->adlen;
	return SERR_OK;
}

enum serr backup_header(const char *path, json_t **header, char *errbuf, size_t errlen)
{
	struct reader r = { .path = path, .errbuf = errbuf, .errlen = errlen };
	json_t *h = NULL;
	enum serr err;

	r.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0) {
		util_set_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
		return SERR_IO;
	}
	err = read_header(&r, &h);
	close(r.fd);
	free(r.ad);
	if (err == SERR_OK)
		json_object_del(h, "kdf");
	if (err == SERR_OK)
		*header = h;
	else
		json_decref(h);
	return err;
}

/* Opens the stream with the key the header's parameters and passphrase
 * give: a wrong passphrase is told as such. */
static enum serr open_stream(struct reader *r, const json_t *hdr, const char *passphrase)
{
	const json_t *kdf = json_object_get(hdr, "kdf");
	const char *salt_hex = json_string_value(json_object_get(kdf, "salt"));
	const char *check_hex = json_string_value(json_object_get(kdf, "check"));
	json_int_t ops = json_integer_value(json_object_get(kdf, "opslimit"));
	json_int_t mem = json_integer_value(json_object_get(kdf, "memlimit"));
	unsigned char salt[crypto_pwhash_SALTBYTES], check[16], ss_header[SS_HEADER];
	struct keys k;
	enum serr err;

	if (!json_is_string(json_object_get(kdf, "algorithm")) ||
	    strcmp(json_string_value(json_object_get(kdf, "algorithm")), "argon2id13") != 0 ||
	    !salt_hex || !check_hex ||
	    sodium_hex2bin(salt, sizeof(salt), salt_hex, strlen(salt_hex), NULL, NULL, NULL) ||
	    sodium_hex2bin(check, sizeof(check), check_hex, strlen(check_hex), NULL, NULL,
			   NULL) || ops < (json_int_t)crypto_pwhash_OPSLIMIT_MIN ||
	    ops > MAX_OPSLIMIT || mem < (json_int_t)crypto_pwhash_MEMLIMIT_MIN ||
	    (unsigned long long)mem > MAX_MEMLIMIT) {
		util_set_msg(r->errbuf, r->errlen, "backup %s: its key derivation is not one this "
			     "wardd accepts", r->path);
		return SERR_FORMAT;
	}
	err = derive(passphrase, salt, (unsigned long long)ops, (size_t)mem, &k, r->errbuf,
		     r->errlen);
	if (err == SERR_OK && sodium_memcmp(check, k.check, sizeof(check)) != 0) {
		util_set_msg(r->errbuf, r->errlen, "backup %s: the passphrase is wrong", r->path);
		err = SERR_SIG;
	}
	if (err == SERR_OK && util_read_full(r->fd, ss_header, SS_HEADER) != SS_HEADER) {
		util_set_msg(r->errbuf, r->errlen, "backup %s is truncated in its header", r->path);
		err = SERR_FORMAT;
	}
	if (err == SERR_OK &&
	    crypto_secretstream_xchacha20poly1305_init_pull(&r->ss, ss_header, k.stream) != 0) {
		util_set_msg(r->errbuf, r->errlen, "backup %s: its header is damaged", r->path);
		err = SERR_FORMAT;
	}
	r->offset += SS_HEADER;
	sodium_memzero(&k, sizeof(k));
	return err;
}

enum serr backup_read(const char *path, const char *passphrase, const char *dest,
		      json_t **manifest, char *errbuf, size_t errlen)
{
	struct reader *r = calloc(1, sizeof(*r));
	json_t *hdr = NULL, *parts = json_array(), *m = NULL;
	char *tmp = NULL, *db = NULL, *slash;
	const char *part;
	int64_t schema = 0;
	enum serr err = r && parts ? SERR_OK : SERR_NOMEM;
	bool made = false;

	if (err == SERR_OK) {
		r->path = path;
		r->errbuf = errbuf;
		r->errlen = errlen;
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			util_set_msg(errbuf, errlen, "%s: %s", path, strerror(errno));
			err = SERR_IO;
		}
	}
	if (err == SERR_OK)
		err = read_header(r, &hdr);
	if (err == SERR_OK)
		err = open_stream(r, hdr, passphrase);
	/* The database is checked in a folder of its own beside the archive
	 * (or the destination). */
	slash = strrchr(dest ? dest : path, '/');
	if (err == SERR_OK && dest) {
		made = mkdir(dest, 0700) == 0;
		if (!made) {
			util_set_msg(errbuf, errlen, "%s: %s", dest, strerror(errno));
			err = SERR_IO;
		}
	}
	if (err == SERR_OK && !dest) {
		tmp = util_printf("%.*s.ward-verify-XXXXXX", slash ? (int)(slash - path + 1) : 0,
				  path);
		if (!tmp || !mkdtemp(tmp)) {
			util_set_msg(errbuf, errlen, "%s: %s", tmp ? tmp : path, strerror(errno));
			err = tmp ? SERR_IO : SERR_NOMEM;
		}
	}
	if (err == SERR_OK)
		err = read_parts(r, dest, tmp, parts, &m);
	/* A SQLite server's file, else a PostgreSQL server's dump. */
	if (err == SERR_OK) {
		part = "data/ward.db";
		db = dest ? util_printf("%s/%s", dest, part) : util_printf("%s/ward.db", tmp);
		if (db && access(db, F_OK) != 0) {
			free(db);
			part = PG_PART;
			db = dest ? util_printf("%s/%s", dest, part) :
			     util_printf("%s/ward.pgdump", tmp);
		}
		if (db && access(db, F_OK) != 0) {
			util_set_msg(errbuf, errlen, "backup %s holds no database", path);
			err = SERR_FORMAT;
		} else {
			err = db ? store_copy_schema(part, db, &schema, errbuf, errlen) :
			      SERR_NOMEM;
		}
	}
	if (err == SERR_OK && schema != json_integer_value(json_object_get(hdr, "schema"))) {
		util_set_msg(errbuf, errlen, "backup %s: its database is of schema %lld, its "
			     "header says %lld", path, (long long)schema, (long long)
			     json_integer_value(json_object_get(hdr, "schema")));
		err = SERR_FORMAT;
	}
	if (err == SERR_OK && manifest)
		*manifest = json_incref(m);
	if (tmp)
		util_remove_tree(tmp);
	if (err != SERR_OK && made)
		util_remove_tree(dest);
	if (r && r->fd >= 0)
		close(r->fd);
	if (r)
		free(r->ad);
	free(r);
	free(tmp);
	free(db);
	json_decref(hdr);
	json_decref(parts);
	json_decref(m);
	return err;
}
