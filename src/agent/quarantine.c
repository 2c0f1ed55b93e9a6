/* quarantine.c -- the agent's encrypted quarantine: vaults, items, crash
 * recovery, restore. See quarantine.h and docs/formats.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "agent/quarantine.h"
#include "common/log.h"
#include "common/util.h"

#define MAGIC_LEN 8
#define MAGIC_META "WARDQM1\n"
#define MAGIC_INTENT "WARDQI1\n"
#define MAGIC_DATA "WARDQD1\n"
#define FLAG_SEALED 1u
#define OFF_ID MAGIC_LEN
#define OFF_FLAGS (OFF_ID + QUARANTINE_ID_LEN)
#define OFF_WNONCE (OFF_FLAGS + 1)
#define WRAP_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define AEAD_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
#define OFF_WKEY (OFF_WNONCE + WRAP_NONCE)
#define OFF_REST (OFF_WKEY + QUARANTINE_KEY_BYTES + AEAD_TAG)
#define SEALED_LEN (crypto_box_SEALBYTES + QUARANTINE_KEY_BYTES)
#define DATA_HDR (MAGIC_LEN + QUARANTINE_ID_LEN)
#define SS_HDR crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SS_TAG crypto_secretstream_xchacha20poly1305_ABYTES
#define CHUNK 65536
#define META_MAX (4u << 20)     /* a meta file's largest size */
#define XATTR_TOTAL_MAX (1u << 20) /* all of a file's xattr names and values */
#define NAMES_MAX 64
#define NAME_MAX_LEN 1024
#define VAULT_NAME ".ward-quarantine"
#define VAULTS_MAX 64

struct vault {
	char *path;
	int fd;
	dev_t dev;
	bool configured; /* one of quarantine_config's vault_dirs */
};

struct quarantine {
	int statefd;
	unsigned char key[QUARANTINE_KEY_BYTES];
	unsigned char server_pk[QUARANTINE_SERVER_PK_BYTES];
	bool has_server_pk, no_root_vaults;
	char **extra;
	size_t n_extra;
	quarantine_progress_fn progress;
	void *progress_arg;
	struct vault vaults[VAULTS_MAX]; /* [0]: the state directory's */
	size_t n_vaults;
	json_t *registry; /* vaults.json: every vault but [0], reachable or not */
	dev_t no_vault[VAULTS_MAX]; /* filesystems found without a usable vault */
	size_t n_no_vault;
};

static const char *const source_names[] = { "realtime", "scheduled", "scan_now", "manual",
					    "clamd" };

const char *quarantine_source_name(enum quarantine_source s)
{
	return (unsigned)s < sizeof(source_names) / sizeof(source_names[0]) ? source_names[s] : "?";
}

static void step(struct quarantine *q, enum quarantine_step s)
{
	if (q->progress)
		q->progress(q->progress_arg, s);
}

/* Reads up to n bytes at off; returns how many (fewer only at the end), or
 * -1 with errno set. */
static ssize_t pread_full(int fd, void *p, size_t n, off_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, (unsigned char *)p + got, n - got, off + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static void item_name(char *out, size_t len, const char *id, const char *ext)
{
	snprintf(out, len, "%s.%s", id, ext);
}

static bool valid_id(const char *id)
{
	size_t i;

	for (i = 0; i < QUARANTINE_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return id[QUARANTINE_ID_LEN] == '\0';
}

/* ---- the envelope: meta and intent files ---- */

static unsigned char *envelope_seal(const char *magic, const char *id, const unsigned char *key,
				    const unsigned char *server_pk, const unsigned char *item_key,
				    const char *body, size_t len, size_t *size)
{
	size_t head = OFF_REST + (server_pk ? SEALED_LEN : 0) + WRAP_NONCE + 4;
	size_t total = head + len + AEAD_TAG;
	unsigned char *b, *p;

	if (len > META_MAX || !(b = malloc(total)))
		return NULL;
	memcpy(b, magic, MAGIC_LEN);
	memcpy(b + OFF_ID, id, QUARANTINE_ID_LEN);
	b[OFF_FLAGS] = server_pk ? FLAG_SEALED : 0;
	randombytes_buf(b + OFF_WNONCE, WRAP_NONCE);
	crypto_aead_xchacha20poly1305_ietf_encrypt(b + OFF_WKEY, NULL, item_key,
						   QUARANTINE_KEY_BYTES, b, OFF_WNONCE, NULL,
						   b + OFF_WNONCE, key);
	p = b + OFF_REST;
	if (server_pk) {
		crypto_box_seal(p, item_key, QUARANTINE_KEY_BYTES, server_pk);
		p += SEALED_LEN;
	}
	randombytes_buf(p, WRAP_NONCE);
	p += WRAP_NONCE;
	p[0] = (unsigned char)((len + AEAD_TAG) >> 24);
	p[1] = (unsigned char)((len + AEAD_TAG) >> 16);
	p[2] = (unsigned char)((len + AEAD_TAG) >> 8);
	p[3] = (unsigned char)(len + AEAD_TAG);
	crypto_aead_xchacha20poly1305_ietf_encrypt(b + head, NULL, (const unsigned char *)body, len,
						   b, head, NULL, p - WRAP_NONCE, item_key);
	*size = total;
	return b;
}

unsigned char *quarantine_meta_seal(const char *id, const unsigned char *key,
				    const unsigned char *item_key, const char *json, size_t len,
				    size_t *size)
{
	return envelope_seal(MAGIC_META, id, key, NULL, item_key, json, len, size);
}

/* Opens an envelope: checks the magic and the id, unwraps the item key and
 * decrypts the body into a new NUL-terminated allocation. */
static enum aerr envelope_open(const unsigned char *b, size_t len, const char *magic,
			       const char *id, const unsigned char *key, unsigned char *item_key,
			       char **body, size_t *body_len, char *errbuf, size_t errlen)
{
	unsigned char ikey[QUARANTINE_KEY_BYTES];
	size_t head, clen;
	const unsigned char *p;
	unsigned long long plen;
	char *out;

	*body = NULL;
	if (len < OFF_REST + WRAP_NONCE + 4 + AEAD_TAG || memcmp(b, magic, MAGIC_LEN) != 0) {
		util_set_msg(errbuf, errlen, "quarantine record %s: not a Ward quarantine %s file "
			     "(bad magic or too short)", id,
			     strcmp(magic, MAGIC_META) == 0 ? "meta" : "intent");
		return AERR_TAMPERED;
	}
	if (memcmp(b + OFF_ID, id, QUARANTINE_ID_LEN) != 0) {
		util_set_msg(errbuf, errlen, "quarantine record %s: the file names another item "
			     "(its id was altered or the file renamed)", id);
		return AERR_TAMPERED;
	}
	if (b[OFF_FLAGS] & ~FLAG_SEALED) {
		util_set_msg(errbuf, errlen, "quarantine record %s: unknown flags 0x%02x", id,
			     b[OFF_FLAGS]);
		return AERR_TAMPERED;
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(ikey, NULL, NULL, b + OFF_WKEY,
						       QUARANTINE_KEY_BYTES + AEAD_TAG, b,
						       OFF_WNONCE, b + OFF_WNONCE, key) != 0) {
		util_set_msg(errbuf, errlen, "quarantine record %s: its key does not unwrap with "
			     "this agent's quarantine key (altered, or from another host)", id);
		return AERR_TAMPERED;
	}
	head = OFF_REST + ((b[OFF_FLAGS] & FLAG_SEALED) ? SEALED_LEN : 0) + WRAP_NONCE + 4;
	if (len < head + AEAD_TAG) {
		util_set_msg(errbuf, errlen, "quarantine record %s: truncated header", id);
		goto tampered;
	}
	p = b + head - 4;
	clen = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	if (clen != len - head || clen < AEAD_TAG) {
		util_set_msg(errbuf, errlen, "quarantine record %s: metadata length %zu does not "
			     "match the file (%zu bytes after the header)", id, clen, len - head);
		goto tampered;
	}
	out = malloc(clen - AEAD_TAG + 1);
	if (!out) {
		sodium_memzero(ikey, sizeof(ikey));
		return AERR_NOMEM;
	}
	if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)out, &plen, NULL,
						       b + head, clen, b, head, p - WRAP_NONCE,
						       ikey) != 0) {
		free(out);
		util_set_msg(errbuf, errlen, "quarantine record %s: metadata does not "
			     "authenticate (the record was altered)", id);
		goto tampered;
	}
	out[plen] = '\0';
	*body = out;
	*body_len = (size_t)plen;
	if (item_key)
		memcpy(item_key, ikey, sizeof(ikey));
	sodium_memzero(ikey, sizeof(ikey));
	return AERR_OK;
tampered:
	sodium_memzero(ikey, sizeof(ikey));
	return AERR_TAMPERED;
}

/* ---- metadata as JSON ---- */

static json_t *hex_json(const void *p, size_t n)
{
	char *h = malloc(n * 2 + 1);
	json_t *j;

	if (!h)
		return NULL;
	sodium_bin2hex(h, n * 2 + 1, p, n);
	j = json_string(h);
	free(h);
	return j;
}

/* Decodes the hex string j into a new allocation of *n bytes plus a NUL. */
static unsigned char *json_hex(const json_t *j, size_t max, size_t *n)
{
	const char *s = json_string_value(j);
	size_t len, bin;
	unsigned char *out;

	if (!s)
		return NULL;
	len = json_string_length(j);
	if (len % 2 || len / 2 > max || !(out = malloc(len / 2 + 1)))
		return NULL;
	if (sodium_hex2bin(out, len / 2, s, len, NULL, &bin, NULL) != 0 || bin != len / 2) {
		free(out);
		return NULL;
	}
	out[bin] = '\0';
	*n = bin;
	return out;
}

static char *record_json(const struct quarantine_record *r)
{
	json_t *o = json_object(), *x = json_array(), *names = json_array();
	char *text = NULL;
	size_t i;
	bool ok = o && x && names;

	for (i = 0; ok && i < r->n_xattrs; i++) {
		json_t *pair = json_array();

		const char *xn = r->xattrs[i].name;

		ok = pair && json_array_append_new(pair, hex_json(xn, strlen(xn))) == 0 &&
		     json_array_append_new(pair, hex_json(r->xattrs[i].value,
							  r->xattrs[i].len)) == 0 &&
		     json_array_append_new(x, pair) == 0;
	}
	for (i = 0; ok && i < r->n_names; i++)
		ok = json_array_append_new(names, util_json_bytes(r->names[i])) == 0;
	if (ok) {
		ok = json_object_set_new(o, "v", json_integer(1)) == 0 &&
		     json_object_set_new(o, "path", hex_json(r->path, strlen(r->path))) == 0 &&
		     json_object_set_new(o, "size", json_integer((json_int_t)r->size)) == 0 &&
		     json_object_set_new(o, "sha256", hex_json(r->sha256, 32)) == 0 &&
		     json_object_set_new(o, "uid", json_integer(r->uid)) == 0 &&
		     json_object_set_new(o, "gid", json_integer(r->gid)) == 0 &&
		     json_object_set_new(o, "mode", json_integer(r->mode)) == 0 &&
		     json_object_set_new(o, "atime_ns", json_integer(r->atime_ns)) == 0 &&
		     json_object_set_new(o, "mtime_ns", json_integer(r->mtime_ns)) == 0 &&
		     json_object_set_new(o, "ctime_ns", json_integer(r->ctime_ns)) == 0 &&
		     json_object_set_new(o, "dev", json_integer((json_int_t)r->dev)) == 0 &&
		     json_object_set_new(o, "ino", json_integer((json_int_t)r->ino)) == 0 &&
		     json_object_set_new(o, "xattrs", json_incref(x)) == 0 &&
		     json_object_set_new(o, "names", json_incref(names)) == 0 &&
		     json_object_set_new(o, "component", util_json_bytes(r->component)) == 0 &&
		     json_object_set_new(o, "version", util_json_bytes(r->version)) == 0 &&
		     json_object_set_new(o, "time", json_integer(r->time)) == 0 &&
		     json_object_set_new(o, "source",
					 json_string(quarantine_source_name(r->source))) == 0 &&
		     json_object_set_new(o, "cross", json_boolean(r->cross)) == 0;
	}
	if (ok)
		text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(x);
	json_decref(names);
	json_decref(o);
	return text;
}

/* Reads the integer member key of o into *v within [lo, hi]. */
static bool get_int(const json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *v)
{
	const json_t *j = json_object_get(o, key);

	if (!json_is_integer(j))
		return false;
	*v = json_integer_value(j);
	return *v >= lo && *v <= hi;
}

static char *get_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && strlen(s) < NAME_MAX_LEN ? strdup(s) : NULL;
}

/* Parses metadata text into *r; names the first bad field in errbuf. */
static enum aerr record_parse(const char *text, size_t len, const char *id,
			      struct quarantine_record *r, char *errbuf, size_t errlen)
{
	json_error_t jerr;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *x, *names, *v;
	const char *bad = NULL, *src;
	json_int_t n;
	size_t i, plen, sh, total = 0;
	unsigned char *sha = NULL;

	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	if (!json_is_object(o)) {
		util_set_msg(errbuf, errlen, "quarantine record %s: metadata is not a JSON object",
			     id);
		json_decref(o);
		return AERR_TAMPERED;
	}
#define NEED(cond, field) do { if (!(cond)) { bad = field; goto fail; } } while (0)
	NEED(get_int(o, "v", 1, 1, &n), "v");
	r->path = (char *)json_hex(json_object_get(o, "path"), PATH_MAX, &plen);
	NEED(r->path && plen > 1 && r->path[0] == '/' && strlen(r->path) == plen, "path");
	NEED(get_int(o, "size", 0, INT64_MAX, &n), "size");
	r->size = (uint64_t)n;
	sha = json_hex(json_object_get(o, "sha256"), 32, &sh);
	NEED(sha && sh == 32, "sha256");
	memcpy(r->sha256, sha, 32);
	NEED(get_int(o, "uid", 0, UINT32_MAX, &n), "uid");
	r->uid = (uint32_t)n;
	NEED(get_int(o, "gid", 0, UINT32_MAX, &n), "gid");
	r->gid = (uint32_t)n;
	NEED(get_int(o, "mode", 0, UINT32_MAX, &n) && S_ISREG((mode_t)n), "mode");
	r->mode = (uint32_t)n;
	NEED(get_int(o, "atime_ns", INT64_MIN, INT64_MAX, &n), "atime_ns");
	r->atime_ns = (int64_t)n;
	NEED(get_int(o, "mtime_ns", INT64_MIN, INT64_MAX, &n), "mtime_ns");
	r->mtime_ns = (int64_t)n;
	NEED(get_int(o, "ctime_ns", INT64_MIN, INT64_MAX, &n), "ctime_ns");
	r->ctime_ns = (int64_t)n;
	NEED(get_int(o, "dev", 0, INT64_MAX, &n), "dev");
	r->dev = (uint64_t)n;
	NEED(get_int(o, "ino", 0, INT64_MAX, &n), "ino");
	r->ino = (uint64_t)n;
	NEED(get_int(o, "time", INT64_MIN, INT64_MAX, &n), "time");
	r->time = (int64_t)n;
	NEED(json_is_boolean(json_object_get(o, "cross")), "cross");
	r->cross = json_is_true(json_object_get(o, "cross"));
	src = json_string_value(json_object_get(o, "source"));
	for (i = 0; src && i < sizeof(source_names) / sizeof(source_names[0]); i++)
		if (strcmp(src, source_names[i]) == 0)
			break;
	NEED(src && i < sizeof(source_names) / sizeof(source_names[0]), "source");
	r->source = (enum quarantine_source)i;
	NEED((r->component = get_str(o, "component")) != NULL, "component");
	NEED((r->version = get_str(o, "version")) != NULL, "version");
	names = json_object_get(o, "names");
	NEED(json_is_array(names) && json_array_size(names) <= NAMES_MAX, "names");
	r->names = calloc(json_array_size(names) + 1, sizeof(*r->names));
	NEED(r->names, "names");
	json_array_foreach(names, i, v) {
		NEED(json_is_string(v) && json_string_length(v) < NAME_MAX_LEN, "names");
		NEED((r->names[i] = strdup(json_string_value(v))) != NULL, "names");
		r->n_names = i + 1;
	}
	x = json_object_get(o, "xattrs");
	NEED(json_is_array(x) && json_array_size(x) <= XATTR_LIST_MAX / 2, "xattrs");
	r->xattrs = calloc(json_array_size(x) + 1, sizeof(*r->xattrs));
	NEED(r->xattrs, "xattrs");
	json_array_foreach(x, i, v) {
		struct quarantine_xattr *a = &r->xattrs[i];
		size_t nl;

		NEED(json_is_array(v) && json_array_size(v) == 2, "xattrs");
		r->n_xattrs = i + 1;
		a->name = (char *)json_hex(json_array_get(v, 0), XATTR_NAME_MAX, &nl);
		NEED(a->name && nl > 0 && strlen(a->name) == nl, "xattrs (a name)");
		a->value = json_hex(json_array_get(v, 1), XATTR_SIZE_MAX, &a->len);
		NEED(a->value, "xattrs (a value)");
		total += nl + a->len;
		NEED(total <= XATTR_TOTAL_MAX, "xattrs (over 1 MiB)");
	}
#undef NEED
	free(sha);
	json_decref(o);
	return AERR_OK;
fail:
	util_set_msg(errbuf, errlen, "quarantine record %s: metadata field \"%s\" is missing "
		     "or malformed", id, bad);
	free(sha);
	json_decref(o);
	quarantine_record_free(r);
	return AERR_TAMPERED;
}

enum aerr quarantine_meta_open(const unsigned char *buf, size_t len, const char *id,
			       const unsigned char *key, unsigned char *item_key,
			       struct quarantine_record *out, char *errbuf, size_t errlen)
{
	char *body;
	size_t blen;
	enum aerr e;

	memset(out, 0, sizeof(*out));
	if (!valid_id(id)) {
		util_set_msg(errbuf, errlen, "quarantine record: malformed id");
		return AERR_TAMPERED;
	}
	e = envelope_open(buf, len, MAGIC_META, id, key, item_key, &body, &blen, errbuf, errlen);
	if (e != AERR_OK)
		return e;
	e = record_parse(body, blen, id, out, errbuf, errlen);
	sodium_memzero(body, blen);
	free(body);
	return e;
}

void quarantine_record_free(struct quarantine_record *r)
{
	size_t i;

	if (!r)
		return;
	free(r->path);
	for (i = 0; i < r->n_xattrs; i++) {
		free(r->xattrs[i].name);
		free(r->xattrs[i].value);
	}
	free(r->xattrs);
	for (i = 0; i < r->n_names; i++)
		free(r->names[i]);
	free(r->names);
	free(r->component);
	free(r->version);
	memset(r, 0, sizeof(*r));
}

void quarantine_records_free(struct quarantine_record *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		quarantine_record_free(&r[i]);
	free(r);
}

/* ---- files in a vault ---- */

/* Writes n bytes as vault/name durably: a temporary name, flushed, renamed,
 * the directory flushed. */
static int vault_write(int vfd, const char *name, const void *p, size_t n)
{
	char tmp[NAME_MAX + 16];
	int fd, saved;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(vfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (util_write_all(fd, p, n) != 0 || fsync(fd) != 0)
		goto fail;
	close(fd);
	if (renameat(vfd, tmp, vfd, name) != 0 || fsync(vfd) != 0) {
		saved = errno;
		unlinkat(vfd, tmp, 0);
		errno = saved;
		return -1;
	}
	return 0;
fail:
	saved = errno;
	close(fd);
	unlinkat(vfd, tmp, 0);
	errno = saved;
	return -1;
}

/* Reads vault/name (at most META_MAX bytes) into a new allocation. */
static unsigned char *vault_read(int vfd, const char *name, size_t *len)
{
	int fd = openat(vfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	unsigned char *b = NULL;
	ssize_t r;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)META_MAX) {
		errno = EFBIG;
		goto out;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b)
		goto out;
	r = pread_full(fd, b, (size_t)st.st_size, 0);
	if (r != st.st_size) {
		free(b);
		b = NULL;
		errno = EIO;
		goto out;
	}
	*len = (size_t)r;
out:
	close(fd);
	return b;
}

/* Encrypts what in_fd holds (from offset 0 to its end) into out_fd as an
 * item's data file, hashing the plaintext. */
static enum aerr data_write(struct quarantine *q, int in_fd, int out_fd, const char *id,
			    const unsigned char *item_key, unsigned char *sha, uint64_t *size,
			    char *errbuf, size_t errlen)
{
	crypto_secretstream_xchacha20poly1305_state st;
	crypto_hash_sha256_state h;
	unsigned char hdr[DATA_HDR + SS_HDR], *in = malloc(CHUNK), *out = malloc(CHUNK + SS_TAG);
	enum aerr e = AERR_IO;
	off_t off = 0;
	bool first = true;

	if (!in || !out) {
		e = AERR_NOMEM;
		goto done;
	}
	memcpy(hdr, MAGIC_DATA, MAGIC_LEN);
	memcpy(hdr + MAGIC_LEN, id, QUARANTINE_ID_LEN);
	crypto_secretstream_xchacha20poly1305_init_push(&st, hdr + DATA_HDR, item_key);
	crypto_hash_sha256_init(&h);
	if (util_write_all(out_fd, hdr, sizeof(hdr)) != 0) {
		util_set_msg(errbuf, errlen, "writing the encrypted copy: %s", strerror(errno));
		goto done;
	}
	for (;;) {
		ssize_t n = pread_full(in_fd, in, CHUNK, off);
		unsigned long long clen;
		unsigned char tag;

		if (n < 0) {
			util_set_msg(errbuf, errlen, "reading the file: %s", strerror(errno));
			goto done;
		}
		tag = n < CHUNK ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0;
		crypto_hash_sha256_update(&h, in, (size_t)n);
		crypto_secretstream_xchacha20poly1305_push(&st, out, &clen, in, (size_t)n, hdr,
							   DATA_HDR, tag);
		if (util_write_all(out_fd, out, (size_t)clen) != 0) {
			util_set_msg(errbuf, errlen, "writing the encrypted copy: %s",
				     strerror(errno));
			goto done;
		}
		if (first)
			step(q, QUARANTINE_STEP_DATA);
		first = false;
		off += n;
		if (tag)
			break;
	}
	if (fsync(out_fd) != 0) {
		util_set_msg(errbuf, errlen, "flushing the encrypted copy: %s", strerror(errno));
		goto done;
	}
	crypto_hash_sha256_final(&h, sha);
	*size = (uint64_t)off;
	e = AERR_OK;
done:
	sodium_memzero(&st, sizeof(st));
	if (in)
		sodium_memzero(in, CHUNK);
	free(in);
	free(out);
	return e;
}

/* Decrypts the data file in_fd of item id, writing the plaintext to out_fd
 * (-1: only checked), hashing it. Any byte altered, removed or added makes
 * it fail with AERR_TAMPERED. */
static enum aerr data_read(int in_fd, int out_fd, const char *id, const unsigned char *item_key,
			   unsigned char *sha, uint64_t *size, char *errbuf, size_t errlen)
{
	crypto_secretstream_xchacha20poly1305_state st;
	crypto_hash_sha256_state h;
	unsigned char hdr[DATA_HDR + SS_HDR], *in = malloc(CHUNK + SS_TAG), *out = malloc(CHUNK);
	enum aerr e = AERR_IO;
	off_t off = sizeof(hdr);
	uint64_t total = 0;

	if (!in || !out) {
		e = AERR_NOMEM;
		goto done;
	}
	if (pread_full(in_fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    memcmp(hdr, MAGIC_DATA, MAGIC_LEN) != 0 ||
	    memcmp(hdr + MAGIC_LEN, id, QUARANTINE_ID_LEN) != 0 ||
	    crypto_secretstream_xchacha20poly1305_init_pull(&st, hdr + DATA_HDR, item_key) != 0) {
		util_set_msg(errbuf, errlen, "quarantine record %s: the data file's header is "
			     "altered or truncated", id);
		e = AERR_TAMPERED;
		goto done;
	}
	crypto_hash_sha256_init(&h);
	for (;;) {
		ssize_t n = pread_full(in_fd, in, CHUNK + SS_TAG, off);
		unsigned long long plen;
		unsigned char tag;

		if (n < 0) {
			util_set_msg(errbuf, errlen, "quarantine record %s: reading its data: %s",
				     id, strerror(errno));
			goto done;
		}
		if (n < (ssize_t)SS_TAG ||
		    crypto_secretstream_xchacha20poly1305_pull(&st, out, &plen, &tag, in,
							       (size_t)n, hdr, DATA_HDR) != 0) {
			util_set_msg(errbuf, errlen, "quarantine record %s: the contents do not "
				     "authenticate at byte %jd of the data file (altered or "
				     "truncated)", id, (intmax_t)off);
			e = AERR_TAMPERED;
			goto done;
		}
		off += n;
		if (tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL &&
		    n < (ssize_t)(CHUNK + SS_TAG)) {
			util_set_msg(errbuf, errlen, "quarantine record %s: the data file ends "
				     "before its last chunk (truncated)", id);
			e = AERR_TAMPERED;
			goto done;
		}
		crypto_hash_sha256_update(&h, out, (size_t)plen);
		total += plen;
		if (out_fd >= 0 && util_write_all(out_fd, out, (size_t)plen) != 0) {
			util_set_msg(errbuf, errlen, "writing the restored file: %s",
				     strerror(errno));
			goto done;
		}
		if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
			break;
	}
	if (pread_full(in_fd, in, 1, off) != 0) {
		util_set_msg(errbuf, errlen, "quarantine record %s: bytes after the data "
			     "file's last chunk (altered)", id);
		e = AERR_TAMPERED;
		goto done;
	}
	crypto_hash_sha256_final(&h, sha);
	*size = total;
	e = AERR_OK;
done:
	sodium_memzero(&st, sizeof(st));
	if (out)
		sodium_memzero(out, CHUNK);
	free(in);
	free(out);
	return e;
}

/* ---- vaults ---- */

/* Checks that fd is a directory of the agent's user, mode 0700, on dev
 * (0: any). */
static bool vault_usable(int fd, dev_t dev, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 07777) != 0700 || (dev && st.st_dev != dev)) {
		log_msg(LOG_LVL_WARN, "quarantine: %s is not a 0700 directory of the agent's "
			"user on its filesystem; not used as a vault", path);
		return false;
	}
	return true;
}

/* Opens (making it when missing) the vault directory name under dirfd. */
static int vault_open_at(int dirfd, const char *name, dev_t dev, const char *path)
{
	int fd;

	if (mkdirat(dirfd, name, 0700) != 0 && errno != EEXIST)
		return -1;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		log_msg(LOG_LVL_WARN, "quarantine: cannot open vault %s: %s", path,
			strerror(errno));
		return -1;
	}
	if (!vault_usable(fd, dev, path)) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct vault *vault_add(struct quarantine *q, const char *path, int fd)
{
	struct stat st;
	struct vault *v;

	if (q->n_vaults >= VAULTS_MAX || fstat(fd, &st) != 0) {
		close(fd);
		return NULL;
	}
	v = &q->vaults[q->n_vaults];
	v->path = strdup(path);
	if (!v->path) {
		close(fd);
		return NULL;
	}
	v->fd = fd;
	v->dev = st.st_dev;
	q->n_vaults++;
	return v;
}

/* Records path in STATE/quarantine/vaults.json, the list of the vaults
 * other than the state directory's (hex-encoded paths), so that recovery
 * and listing find them, also those on filesystems not mounted now. */
static int vaults_save(struct quarantine *q, const char *path)
{
	json_t *h = hex_json(path, strlen(path)), *v;
	char *text;
	size_t i;
	int rc = -1;

	if (!h)
		return -1;
	json_array_foreach(q->registry, i, v)
		if (json_equal(v, h)) {
			json_decref(h);
			return 0;
		}
	if (json_array_append_new(q->registry, h) != 0)
		return -1;
	text = json_dumps(q->registry, JSON_COMPACT);
	if (text)
		rc = vault_write(q->vaults[0].fd, "vaults.json", text, strlen(text));
	free(text);
	if (rc != 0)
		json_array_remove(q->registry, json_array_size(q->registry) - 1);
	return rc;
}

static void vaults_load(struct quarantine *q)
{
	size_t len, i, n;
	unsigned char *text = vault_read(q->vaults[0].fd, "vaults.json", &len);
	json_t *a = text ? json_loadb((char *)text, len, 0, NULL) : NULL, *v;

	if (text && !json_is_array(a))
		log_msg(LOG_LVL_WARN, "quarantine: vaults.json is malformed; ignored");
	json_array_foreach(a, i, v) {
		char *path = (char *)json_hex(v, PATH_MAX, &n);
		int fd = path ? open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;

		if (!path || strlen(path) != n || path[0] != '/') {
			log_msg(LOG_LVL_WARN, "quarantine: vaults.json: entry %zu is malformed; "
				"ignored", i);
			if (fd >= 0)
				close(fd);
			free(path);
			continue;
		}
		json_array_append(q->registry, v);
		if (fd < 0)
			log_msg(LOG_LVL_INFO, "quarantine: vault %s not reachable now: %s", path,
				strerror(errno));
		else if (vault_usable(fd, 0, path))
			vault_add(q, path, fd);
		else
			close(fd);
		free(path);
	}
	json_decref(a);
	free(text);
}

/* Decodes mountinfo's octal escapes (\040 for a space...) in place. */
static void unescape_octal(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
}

/* Finds the mount point of the root of filesystem dev, or NULL. */
static char *mount_root(dev_t dev)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *found = NULL;
	size_t cap = 0;

	if (!f)
		return NULL;
	while (!found && getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		char root[4096], point[4096];

		if (sscanf(line, "%*u %*u %u:%u %4095s %4095s", &maj, &min, root, point) != 4)
			continue;
		if (makedev(maj, min) != dev || strcmp(root, "/") != 0)
			continue;
		unescape_octal(point);
		found = strdup(point);
	}
	free(line);
	fclose(f);
	return found;
}

/* The vault for files of filesystem dev: one already open, a configured
 * directory, or a new one at the mount's root; NULL when there is none. */
static struct vault *vault_for(struct quarantine *q, dev_t dev)
{
	struct vault *v = NULL, *at_root = NULL;
	char *root, *path;
	size_t i;
	int rfd, fd;

	/* The state directory's vault or a configured one first, then one
	 * at the filesystem's root. */
	for (i = 0; i < q->n_vaults; i++)
		if (q->vaults[i].dev == dev) {
			if (i == 0 || q->vaults[i].configured)
				return &q->vaults[i];
			at_root = at_root ? at_root : &q->vaults[i];
		}
	for (i = 0; i < q->n_no_vault; i++)
		if (q->no_vault[i] == dev)
			return NULL;
	for (i = 0; i < q->n_extra; i++) {
		const char *dir = q->extra[i];
		struct stat st;

		if (stat(dir, &st) == 0 && st.st_dev == dev &&
		    (fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
			if (vault_usable(fd, dev, dir) && (v = vault_add(q, dir, fd))) {
				v->configured = true;
				goto found;
			}
			close(fd);
		}
	}
	if (at_root)
		return q->no_root_vaults ? NULL : at_root;
	if (q->no_root_vaults || !(root = mount_root(dev)))
		goto none;
	path = util_path_join(root, VAULT_NAME);
	rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(root);
	fd = rfd >= 0 && path ? vault_open_at(rfd, VAULT_NAME, dev, path) : -1;
	if (rfd >= 0)
		close(rfd);
	if (fd >= 0)
		v = vault_add(q, path, fd);
	free(path);
	if (!v)
		goto none;
found:
	if (vaults_save(q, v->path) != 0) {
		log_msg(LOG_LVL_WARN, "quarantine: cannot record vault %s: %s", v->path,
			strerror(errno));
		close(v->fd);
		free(v->path);
		q->n_vaults--;
		return NULL;
	}
	log_msg(LOG_LVL_INFO, "quarantine: vault %s in use", v->path);
	return v;
none:
	/* Remembered until the agent restarts, so that a read-only or hostile
	 * filesystem costs one look (and one warning), not one per file. */
	if (q->n_no_vault < VAULTS_MAX)
		q->no_vault[q->n_no_vault++] = dev;
	return NULL;
}

/* ---- opening ---- */

static enum aerr key_load(struct quarantine *q, char *errbuf, size_t errlen)
{
	unsigned char k[QUARANTINE_KEY_BYTES];
	struct stat st;
	int fd = openat(q->statefd, "quarantine.key", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		randombytes_buf(k, sizeof(k));
		fd = openat(q->statefd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0) {
			char proc[64];

			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
			if (util_write_all(fd, k, sizeof(k)) != 0 || fsync(fd) != 0 ||
			    (linkat(AT_FDCWD, proc, q->statefd, "quarantine.key",
				    AT_SYMLINK_FOLLOW) != 0 && errno != EEXIST) ||
			    fsync(q->statefd) != 0) {
				util_set_msg(errbuf, errlen, "quarantine.key: cannot write it: %s",
					     strerror(errno));
				close(fd);
				sodium_memzero(k, sizeof(k));
				return AERR_IO;
			}
			close(fd);
		}
		sodium_memzero(k, sizeof(k));
		fd = openat(q->statefd, "quarantine.key", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		util_set_msg(errbuf, errlen, "quarantine.key: %s", strerror(errno));
		return AERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) ||
	    st.st_size != QUARANTINE_KEY_BYTES ||
	    pread_full(fd, q->key, QUARANTINE_KEY_BYTES, 0) != QUARANTINE_KEY_BYTES) {
		util_set_msg(errbuf, errlen, "quarantine.key: must be a %d-byte file that only its "
			     "owner can read (mode 0600)", QUARANTINE_KEY_BYTES);
		close(fd);
		return AERR_IO;
	}
	close(fd);
	return AERR_OK;
}

enum aerr quarantine_open(const char *state_dir, const unsigned char *key,
			  const struct quarantine_config *config, struct quarantine **out,
			  char *errbuf, size_t errlen)
{
	struct quarantine *q;
	enum aerr e = AERR_NOMEM;
	size_t i;
	int fd;

	*out = NULL;
	if (sodium_init() < 0) {
		util_set_msg(errbuf, errlen, "libsodium cannot start");
		return AERR_IO;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return AERR_NOMEM;
	q->statefd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->statefd < 0) {
		util_set_msg(errbuf, errlen, "state directory %s: %s", state_dir, strerror(errno));
		e = AERR_IO;
		goto fail;
	}
	if (config) {
		if (config->server_pk) {
			memcpy(q->server_pk, config->server_pk, sizeof(q->server_pk));
			q->has_server_pk = true;
		}
		q->no_root_vaults = config->no_root_vaults;
		q->progress = config->progress;
		q->progress_arg = config->progress_arg;
		q->extra = calloc(config->n_vault_dirs + 1, sizeof(*q->extra));
		if (!q->extra)
			goto fail;
		for (i = 0; i < config->n_vault_dirs; i++, q->n_extra++)
			if (!(q->extra[i] = strdup(config->vault_dirs[i])))
				goto fail;
	}
	if (!(q->registry = json_array()))
		goto fail;
	if (key)
		memcpy(q->key, key, sizeof(q->key));
	else if ((e = key_load(q, errbuf, errlen)) != AERR_OK)
		goto fail;
	{
		char *path = util_path_join(state_dir, "quarantine");

		fd = path ? vault_open_at(q->statefd, "quarantine", 0, path) : -1;
		if (fd < 0 || !vault_add(q, path, fd)) {
			util_set_msg(errbuf, errlen, "quarantine vault %s/quarantine: cannot use "
				     "it (see the log)", state_dir);
			free(path);
			e = AERR_IO;
			goto fail;
		}
		free(path);
	}
	vaults_load(q);
	for (i = 0; i < q->n_extra; i++)
		if (mkdir(q->extra[i], 0700) != 0 && errno != EEXIST)
			log_msg(LOG_LVL_WARN, "quarantine: cannot make vault %s: %s", q->extra[i],
				strerror(errno));
	*out = q;
	return AERR_OK;
fail:
	quarantine_close(q);
	return e;
}

void quarantine_close(struct quarantine *q)
{
	size_t i;

	if (!q)
		return;
	for (i = 0; i < q->n_vaults; i++) {
		close(q->vaults[i].fd);
		free(q->vaults[i].path);
	}
	for (i = 0; i < q->n_extra; i++)
		free(q->extra[i]);
	free(q->extra);
	json_decref(q->registry);
	if (q->statefd >= 0)
		close(q->statefd);
	sodium_memzero(q->key, sizeof(q->key));
	free(q);
}

/* ---- quarantining ---- */

static void unlink_quiet(int vfd, const char *id, const char *ext)
{
	char name[NAME_MAX + 1];

	item_name(name, sizeof(name), id, ext);
	unlinkat(vfd, name, 0);
}

/* Reads every extended attribute of fd into r. */
static enum aerr xattrs_read(int fd, struct quarantine_record *r, char *errbuf, size_t errlen)
{
	ssize_t len = flistxattr(fd, NULL, 0), vlen;
	char *list, *p;
	size_t total = 0;

	if (len < 0 && (errno == ENOTSUP || errno == ENOSYS))
		return AERR_OK;
	if (len < 0 || len > XATTR_LIST_MAX)
		goto io;
	list = malloc((size_t)len + 1);
	if (!list)
		return AERR_NOMEM;
	len = flistxattr(fd, list, (size_t)len);
	if (len < 0) {
		free(list);
		goto io;
	}
	r->xattrs = calloc((size_t)len + 1, sizeof(*r->xattrs));
	for (p = list; r->xattrs && p < list + len; p += strlen(p) + 1) {
		struct quarantine_xattr *a = &r->xattrs[r->n_xattrs];

		vlen = fgetxattr(fd, p, NULL, 0);
		total += strlen(p) + (vlen > 0 ? (size_t)vlen : 0);
		if (vlen < 0 || total > XATTR_TOTAL_MAX) {
			free(list);
			goto io;
		}
		a->name = strdup(p);
		a->value = malloc((size_t)vlen + 1);
		if (!a->name || !a->value) {
			free(a->name);
			free(a->value);
			free(list);
			return AERR_NOMEM;
		}
		r->n_xattrs++;
		vlen = fgetxattr(fd, p, a->value, (size_t)vlen);
		if (vlen < 0) {
			free(list);
			goto io;
		}
		a->len = (size_t)vlen;
	}
	free(list);
	return r->xattrs ? AERR_OK : AERR_NOMEM;
io:
	util_set_msg(errbuf, errlen, "reading its extended attributes: %s",
		     errno == E2BIG || total > XATTR_TOTAL_MAX ? "more than 1 MiB" :
		     strerror(errno));
	return AERR_IO;
}

/* The path of dirfd/name as this process sees it. */
static char *full_path(int dirfd, const char *name)
{
	char proc[64], dir[PATH_MAX];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
	if (dirfd == AT_FDCWD) {
		if (!getcwd(dir, sizeof(dir)))
			return NULL;
	} else {
		n = readlink(proc, dir, sizeof(dir) - 1);
		if (n <= 0 || dir[0] != '/')
			return NULL;
		dir[n] = '\0';
	}
	return util_path_join(dir, name);
}

/* Seals and durably writes an item's intent or meta file. */
static int write_envelope(struct quarantine *q, struct vault *v, const char *magic,
			  const char *ext, const struct quarantine_record *r,
			  const unsigned char *item_key)
{
	char *text = record_json(r), name[NAME_MAX + 1];
	unsigned char *env;
	size_t size;
	int rc = -1;

	if (!text) {
		errno = ENOMEM;
		return -1;
	}
	env = envelope_seal(magic, r->id, q->key, q->has_server_pk ? q->server_pk : NULL,
			    item_key, text, strlen(text), &size);
	sodium_memzero(text, strlen(text));
	free(text);
	if (!env) {
		errno = ENOMEM;
		return -1;
	}
	item_name(name, sizeof(name), r->id, ext);
	if (strcmp(magic, MAGIC_META) == 0) {
		char tmp[NAME_MAX + 16];
		int fd;

		/* Written in two steps so that the META step is seen between. */
		snprintf(tmp, sizeof(tmp), "%s.tmp", name);
		fd = openat(v->fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			    0600);
		if (fd >= 0 && util_write_all(fd, env, size) == 0 && fsync(fd) == 0) {
			close(fd);
			step(q, QUARANTINE_STEP_META);
			rc = renameat(v->fd, tmp, v->fd, name) == 0 && fsync(v->fd) == 0 ? 0 : -1;
		} else if (fd >= 0) {
			close(fd);
		}
		if (rc != 0) {
			int saved = errno;

			unlinkat(v->fd, tmp, 0);
			errno = saved;
		}
	} else {
		rc = vault_write(v->fd, name, env, size);
	}
	free(env);
	return rc;
}

/* Encrypts src_fd into the item's data file, checks it decrypts to the same
 * bytes, and commits the item by writing its meta file. On failure removes
 * the partial files. */
static enum aerr encrypt_commit(struct quarantine *q, struct vault *v, int src_fd,
				struct quarantine_record *r, char *errbuf, size_t errlen)
{
	unsigned char item_key[QUARANTINE_KEY_BYTES], sha[32];
	char name[NAME_MAX + 1];
	uint64_t size;
	enum aerr e;
	int fd;

	crypto_secretstream_xchacha20poly1305_keygen(item_key);
	item_name(name, sizeof(name), r->id, "data");
	fd = openat(v->fd, name, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		util_set_msg(errbuf, errlen, "creating %s/%s: %s", v->path, name, strerror(errno));
		e = AERR_IO;
		goto out;
	}
	e = data_write(q, src_fd, fd, r->id, item_key, r->sha256, &r->size, errbuf, errlen);
	if (e != AERR_OK)
		goto out;
	step(q, QUARANTINE_STEP_SYNCED);
	e = data_read(fd, -1, r->id, item_key, sha, &size, errbuf, errlen);
	if (e == AERR_OK && (size != r->size || memcmp(sha, r->sha256, 32) != 0)) {
		util_set_msg(errbuf, errlen, "the encrypted copy does not decrypt to the file "
			     "read (it changed while it was read?)");
		e = AERR_IO;
	}
	if (e != AERR_OK)
		goto out;
	step(q, QUARANTINE_STEP_VERIFIED);
	if (write_envelope(q, v, MAGIC_META, "meta", r, item_key) != 0) {
		util_set_msg(errbuf, errlen, "writing %s/%s.meta: %s", v->path, r->id,
			     strerror(errno));
		e = AERR_IO;
		goto out;
	}
	step(q, QUARANTINE_STEP_COMMITTED);
out:
	if (fd >= 0)
		close(fd);
	if (e != AERR_OK) {
		unlink_quiet(v->fd, r->id, "data");
		unlink_quiet(v->fd, r->id, "meta.tmp");
	}
	sodium_memzero(item_key, sizeof(item_key));
	return e;
}

/* Removes an item's files, the meta file first (so a crash between leaves
 * only debris that recovery removes), and flushes the vault. */
static void item_remove(struct vault *v, const char *id)
{
	unlink_quiet(v->fd, id, "meta");
	fsync(v->fd);
	unlink_quiet(v->fd, id, "data");
	unlink_quiet(v->fd, id, "intent");
	fsync(v->fd);
}

/* Opens dirfd/name for reading as the regular file dev/ino, without
 * following a symbolic link and without opening anything else (a FIFO or
 * device is never opened). */
static int open_scanned(int dirfd, const char *name, dev_t dev, ino_t ino, struct stat *st,
			enum aerr *e, char *errbuf, size_t errlen)
{
	char proc[64];
	struct stat st2;
	int pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), fd;

	*e = AERR_IO;
	if (pfd < 0) {
		*e = errno == ENOENT ? AERR_GONE : AERR_IO;
		util_set_msg(errbuf, errlen, "%s", errno == ENOENT ? "gone: it no longer exists" :
			     strerror(errno));
		return -1;
	}
	if (fstat(pfd, st) != 0)
		goto io;
	if (S_ISLNK(st->st_mode) || !S_ISREG(st->st_mode)) {
		util_set_msg(errbuf, errlen, "refused: %s", S_ISLNK(st->st_mode) ?
			     "it is a symbolic link (never followed)" : "it is not a regular file");
		*e = AERR_TYPE;
		close(pfd);
		return -1;
	}
	if (st->st_dev != dev || st->st_ino != ino) {
		util_set_msg(errbuf, errlen, "changed since it was scanned (another file has "
			     "its name now)");
		*e = AERR_CHANGED;
		close(pfd);
		return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, O_RDONLY | O_NOATIME | O_CLOEXEC);
	if (fd < 0 && errno == EPERM)
		fd = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st2) != 0 || st2.st_ino != ino || st2.st_dev != dev) {
		if (fd >= 0)
			close(fd);
		goto io;
	}
	close(pfd);
	*e = AERR_OK;
	return fd;
io:
	util_set_msg(errbuf, errlen, "cannot open it: %s", strerror(errno));
	close(pfd);
	return -1;
}

static void record_stat(struct quarantine_record *r, const struct stat *st)
{
	r->size = (uint64_t)st->st_size;
	r->uid = st->st_uid;
	r->gid = st->st_gid;
	r->mode = st->st_mode;
	r->atime_ns = (int64_t)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec;
	r->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	r->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
	r->dev = st->st_dev;
	r->ino = st->st_ino;
}

static enum aerr record_detection(struct quarantine_record *r,
				  const struct quarantine_detection *det)
{
	size_t i, n = det->n_names < NAMES_MAX ? det->n_names : NAMES_MAX;

	r->names = calloc(n + 1, sizeof(*r->names));
	r->component = strdup(det->component ? det->component : "");
	r->version = strdup(det->version ? det->version : "");
	if (!r->names || !r->component || !r->version)
		return AERR_NOMEM;
	for (i = 0; i < n; i++, r->n_names++)
		if (!(r->names[i] = strdup(det->names[i])))
			return AERR_NOMEM;
	r->source = det->source;
	r->time = (int64_t)time(NULL);
	return AERR_OK;
}

/* Flushes directory dirfd, also when it was opened O_PATH (fsync() on
 * such a descriptor fails with EBADF: the callers' walks use O_PATH). */
static int sync_dir(int dirfd)
{
	int fd, rc;

	if (fsync(dirfd) == 0)
		return 0;
	if (errno != EBADF)
		return -1;
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Same filesystem: move the file into the vault, encrypt, commit. */
static enum aerr put_move(struct quarantine *q, struct vault *v, int dirfd, const char *name,
			  int fd, struct quarantine_record *r, char *errbuf, size_t errlen)
{
	char plain[NAME_MAX + 1];
	struct stat st;
	enum aerr e;

	item_name(plain, sizeof(plain), r->id, "plain");
	/* The random name is new; a filesystem without RENAME_NOREPLACE
	 * (EINVAL) takes a plain rename. */
	if (renameat2(dirfd, name, v->fd, plain, RENAME_NOREPLACE) != 0 &&
	    (errno != EINVAL || renameat(dirfd, name, v->fd, plain) != 0)) {
		e = errno == ENOENT ? AERR_GONE : AERR_IO;
		util_set_msg(errbuf, errlen, "%s%s", e == AERR_GONE ? "gone: " : "moving it to "
			     "the vault: ", strerror(errno));
		return e;
	}
	if (fstatat(v->fd, plain, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_ino != r->ino ||
	    st.st_dev != r->dev) {
		/* Another file took the name between the check and the move. */
		if (renameat2(v->fd, plain, dirfd, name, RENAME_NOREPLACE) != 0)
			log_msg(LOG_LVL_ERROR, "quarantine: cannot put back %s (left in %s as "
				"%s): %s", r->path, v->path, plain, strerror(errno));
		util_set_msg(errbuf, errlen, "changed since it was scanned (replaced while it "
			     "was being quarantined)");
		return AERR_CHANGED;
	}
	if (fsync(v->fd) != 0 || sync_dir(dirfd) != 0)
		log_msg(LOG_LVL_WARN, "quarantine: flushing %s: %s", v->path, strerror(errno));
	step(q, QUARANTINE_STEP_MOVED);
	e = encrypt_commit(q, v, fd, r, errbuf, errlen);
	if (e != AERR_OK) {
		if (renameat2(v->fd, plain, dirfd, name, RENAME_NOREPLACE) != 0) {
			log_msg(LOG_LVL_ERROR, "quarantine: cannot put back %s (kept in %s as %s "
				"until the next start): %s", r->path, v->path, plain,
				strerror(errno));
			return e;
		}
		sync_dir(dirfd);
		return e;
	}
	unlinkat(v->fd, plain, 0);
	fsync(v->fd);
	step(q, QUARANTINE_STEP_CLEANED);
	return AERR_OK;
}

/* Another filesystem: encrypt into the state directory's vault, verify,
 * commit, then unlink the original. */
static enum aerr put_copy(struct quarantine *q, struct vault *v, int dirfd, const char *name,
			  int fd, struct quarantine_record *r, char *errbuf, size_t errlen)
{
	struct stat st;
	enum aerr e = encrypt_commit(q, v, fd, r, errbuf, errlen);

	if (e != AERR_OK)
		return e;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		e = errno == ENOENT ? AERR_GONE : AERR_IO;
		util_set_msg(errbuf, errlen, "%s: %s", e == AERR_GONE ? "gone while it was "
			     "copied" : "looking at it after the copy", strerror(errno));
		goto undo;
	}
	if (st.st_ino != r->ino || st.st_dev != r->dev) {
		e = AERR_CHANGED;
		util_set_msg(errbuf, errlen, "changed since it was scanned (replaced while it "
			     "was copied)");
		goto undo;
	}
	if (unlinkat(dirfd, name, 0) != 0) {
		int saved = errno;

		e = saved == ENOENT ? AERR_GONE : AERR_IO;
		util_set_msg(errbuf, errlen, "removing it after the copy: %s", strerror(saved));
		goto undo;
	}
	sync_dir(dirfd);
	step(q, QUARANTINE_STEP_CLEANED);
	return AERR_OK;
undo:
	item_remove(v, r->id);
	return e;
}

enum aerr quarantine_put(struct quarantine *q, int dirfd, const char *name, dev_t dev, ino_t ino,
			 const struct quarantine_detection *det, struct quarantine_record *out,
			 char *errbuf, size_t errlen)
{
	struct quarantine_record r = { 0 };
	unsigned char raw[QUARANTINE_ID_LEN / 2], intent_key[QUARANTINE_KEY_BYTES];
	char msg[512] = "";
	struct vault *v;
	struct stat st;
	enum aerr e;
	int fd;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!name || !*name || strchr(name, '/') || !det || det->n_names == 0) {
		util_set_msg(errbuf, errlen, "quarantine: bad arguments (a plain entry name and "
			     "at least one detection name are needed)");
		return AERR_REFUSED;
	}
	if (quarantine_in_vault(q, dirfd)) {
		snprintf(msg, sizeof(msg), "refused: it is in a quarantine vault");
		e = AERR_REFUSED;
		fd = -1;
		goto fail;
	}
	fd = open_scanned(dirfd, name, dev, ino, &st, &e, msg, sizeof(msg));
	if (fd < 0)
		goto fail;
	record_stat(&r, &st);
	r.path = full_path(dirfd, name);
	if (!r.path) {
		snprintf(msg, sizeof(msg), "cannot tell its path: %s", strerror(errno));
		e = AERR_IO;
		goto fail;
	}
	if ((e = record_detection(&r, det)) != AERR_OK ||
	    (e = xattrs_read(fd, &r, msg, sizeof(msg))) != AERR_OK)
		goto fail;
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(r.id, sizeof(r.id), raw, sizeof(raw));
	v = vault_for(q, st.st_dev);
	r.cross = v == NULL;
	if (!v)
		v = &q->vaults[0];
	/* The intent says what is being moved and from where, before anything
	 * moves, so that recovery can finish or roll back. */
	randombytes_buf(intent_key, sizeof(intent_key));
	if (write_envelope(q, v, MAGIC_INTENT, "intent", &r, intent_key) != 0) {
		snprintf(msg, sizeof(msg), "writing the quarantine intent in %s: %s", v->path,
			 strerror(errno));
		e = AERR_IO;
		goto fail;
	}
	step(q, QUARANTINE_STEP_INTENT);
	e = r.cross ? put_copy(q, v, dirfd, name, fd, &r, msg, sizeof(msg)) :
		      put_move(q, v, dirfd, name, fd, &r, msg, sizeof(msg));
	{
		/* The intent stays only when a failed move could not put the
		 * file back: recovery finishes that item at the next start. */
		char plain[NAME_MAX + 1];

		item_name(plain, sizeof(plain), r.id, "plain");
		if (faccessat(v->fd, plain, F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
			unlink_quiet(v->fd, r.id, "intent");
			fsync(v->fd);
		}
	}
	if (e != AERR_OK)
		goto fail;
	step(q, QUARANTINE_STEP_DONE);
	log_msg(LOG_LVL_INFO, "quarantine: %s quarantined as %s in %s (%s)", r.path, r.id,
		v->path, r.names[0]);
	if (st.st_nlink > 1)
		log_msg(LOG_LVL_WARN, "quarantine: %s had %ju other hard links, which still "
			"reach its contents", r.path, (uintmax_t)st.st_nlink - 1);
	close(fd);
	if (out)
		*out = r;
	else
		quarantine_record_free(&r);
	return AERR_OK;
fail:
	util_set_msg(errbuf, errlen, "quarantine of %s: %s", r.path ? r.path : name, msg);
	if (fd >= 0)
		close(fd);
	quarantine_record_free(&r);
	return e;
}

/* ---- reading items ---- */

/* Reads and opens the meta (or intent) file of item id in v. */
static enum aerr item_read(struct quarantine *q, struct vault *v, const char *id,
			   const char *magic, struct quarantine_record *r, unsigned char *item_key,
			   char *errbuf, size_t errlen)
{
	char name[NAME_MAX + 1], *body;
	unsigned char *buf;
	size_t len, blen;
	enum aerr e;

	memset(r, 0, sizeof(*r));
	item_name(name, sizeof(name), id, strcmp(magic, MAGIC_META) == 0 ? "meta" : "intent");
	buf = vault_read(v->fd, name, &len);
	if (!buf) {
		e = errno == ENOENT ? AERR_NOTFOUND : errno == ENOMEM ? AERR_NOMEM : AERR_IO;
		util_set_msg(errbuf, errlen, "quarantine record %s: %s/%s: %s", id, v->path, name,
			     errno == EFBIG ? "larger than a record can be" : strerror(errno));
		return e;
	}
	e = envelope_open(buf, len, magic, id, q->key, item_key, &body, &blen, errbuf, errlen);
	free(buf);
	if (e != AERR_OK)
		return e;
	e = record_parse(body, blen, id, r, errbuf, errlen);
	sodium_memzero(body, blen);
	free(body);
	return e;
}

static struct vault *item_find(struct quarantine *q, const char *id)
{
	char name[NAME_MAX + 1];
	size_t i;

	if (!valid_id(id))
		return NULL;
	item_name(name, sizeof(name), id, "meta");
	for (i = 0; i < q->n_vaults; i++)
		if (faccessat(q->vaults[i].fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return &q->vaults[i];
	return NULL;
}

enum aerr quarantine_get(struct quarantine *q, const char *id, struct quarantine_record *out,
			 char *errbuf, size_t errlen)
{
	struct vault *v = item_find(q, id);

	memset(out, 0, sizeof(*out));
	if (!v) {
		util_set_msg(errbuf, errlen, "quarantine: no item %s", id);
		return AERR_NOTFOUND;
	}
	return item_read(q, v, id, MAGIC_META, out, NULL, errbuf, errlen);
}

/* Splits "ID.ext" into id (when it is one) and returns ext, or NULL. */
static const char *split_name(const char *name, char *id)
{
	if (strlen(name) < QUARANTINE_ID_LEN + 2 || name[QUARANTINE_ID_LEN] != '.')
		return NULL;
	memcpy(id, name, QUARANTINE_ID_LEN);
	id[QUARANTINE_ID_LEN] = '\0';
	return valid_id(id) ? name + QUARANTINE_ID_LEN + 1 : NULL;
}

struct listed {
	struct quarantine_record rec;
	size_t vault;
};

static int listed_cmp(const void *a, const void *b)
{
	const struct quarantine_record *x = &((const struct listed *)a)->rec;
	const struct quarantine_record *y = &((const struct listed *)b)->rec;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Every item that authenticates, oldest first, with its vault. */
static enum aerr list_all(struct quarantine *q, struct listed **out, size_t *n, size_t *broken)
{
	struct listed *l = NULL;
	size_t cap = 0, i;

	*n = 0;
	*broken = 0;
	for (i = 0; i < q->n_vaults; i++) {
		int fd = openat(q->vaults[i].fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (!d) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((de = readdir(d))) {
			char id[QUARANTINE_ID_LEN + 1], msg[512];
			const char *ext = split_name(de->d_name, id);

			if (!ext || strcmp(ext, "meta") != 0)
				continue;
			if (*n == cap) {
				struct listed *nl;

				cap = cap ? cap * 2 : 16;
				nl = realloc(l, cap * sizeof(*l));

				if (!nl) {
					closedir(d);
					goto nomem;
				}
				l = nl;
			}
			if (item_read(q, &q->vaults[i], id, MAGIC_META, &l[*n].rec, NULL, msg,
				      sizeof(msg)) != AERR_OK) {
				log_msg(LOG_LVL_WARN, "%s (in %s)", msg, q->vaults[i].path);
				(*broken)++;
				continue;
			}
			l[(*n)++].vault = i;
		}
		closedir(d);
	}
	if (*n)
		qsort(l, *n, sizeof(*l), listed_cmp);
	*out = l;
	return AERR_OK;
nomem:
	for (i = 0; i < *n; i++)
		quarantine_record_free(&l[i].rec);
	free(l);
	*n = 0;
	return AERR_NOMEM;
}

enum aerr quarantine_list(struct quarantine *q, struct quarantine_record **out, size_t *n,
			  size_t *broken, char *errbuf, size_t errlen)
{
	struct listed *l;
	size_t i, bad;
	enum aerr e = list_all(q, &l, n, &bad);

	*out = NULL;
	if (broken)
		*broken = bad;
	if (e != AERR_OK) {
		util_set_msg(errbuf, errlen, "quarantine list: out of memory");
		return e;
	}
	*out = calloc(*n + 1, sizeof(**out));
	if (!*out) {
		for (i = 0; i < *n; i++)
			quarantine_record_free(&l[i].rec);
		free(l);
		*n = 0;
		util_set_msg(errbuf, errlen, "quarantine list: out of memory");
		return AERR_NOMEM;
	}
	for (i = 0; i < *n; i++)
		(*out)[i] = l[i].rec;
	free(l);
	return AERR_OK;
}

/* ---- recovery ---- */

/* Finishes an item moved into v but not yet encrypted (ID.plain). */
static enum aerr recover_plain(struct quarantine *q, struct vault *v, const char *id,
			       char *errbuf, size_t errlen)
{
	struct quarantine_record r;
	char plain[NAME_MAX + 1];
	struct stat st;
	enum aerr e = item_read(q, v, id, MAGIC_INTENT, &r, NULL, errbuf, errlen);
	int fd;

	item_name(plain, sizeof(plain), id, "plain");
	if (e != AERR_OK) {
		log_msg(LOG_LVL_ERROR, "quarantine: %s/%s kept as it is: its intent cannot be "
			"read (%s)", v->path, plain, errbuf);
		return e;
	}
	fd = openat(v->fd, plain, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_ino != r.ino || st.st_dev != r.dev) {
		util_set_msg(errbuf, errlen, "quarantine: %s/%s kept as it is: it is not the file "
			     "its intent names", v->path, plain);
		log_msg(LOG_LVL_ERROR, "%s", errbuf);
		if (fd >= 0)
			close(fd);
		quarantine_record_free(&r);
		return AERR_CHANGED;
	}
	e = encrypt_commit(q, v, fd, &r, errbuf, errlen);
	close(fd);
	if (e == AERR_OK) {
		unlinkat(v->fd, plain, 0);
		unlink_quiet(v->fd, id, "intent");
		fsync(v->fd);
		log_msg(LOG_LVL_INFO, "quarantine: finished quarantining %s as %s", r.path, id);
	} else {
		log_msg(LOG_LVL_ERROR, "quarantine: cannot finish %s/%s (kept): %s", v->path,
			plain, errbuf);
	}
	quarantine_record_free(&r);
	return e;
}

/* Settles item id of v after a crash; returns whether anything was done. */
static bool recover_item(struct quarantine *q, struct vault *v, const char *id, enum aerr *e,
			 char *errbuf, size_t errlen)
{
	char name[NAME_MAX + 1], msg[512];
	struct quarantine_record r;
	bool meta, plain, intent;
	struct stat st;

#define HAS(ext) (item_name(name, sizeof(name), id, ext), \
		  faccessat(v->fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
	unlink_quiet(v->fd, id, "meta.tmp");
	unlink_quiet(v->fd, id, "intent.tmp");
	meta = HAS("meta");
	plain = HAS("plain");
	intent = HAS("intent");
#undef HAS
	if (meta && !intent && !plain)
		return false;
	if (meta && intent &&
	    item_read(q, v, id, MAGIC_INTENT, &r, NULL, msg, sizeof(msg)) == AERR_OK) {
		if (r.cross && lstat(r.path, &st) == 0 && st.st_ino == r.ino &&
		    st.st_dev == r.dev) {
			/* Copied but the original never unlinked: the copy goes. */
			item_remove(v, id);
			log_msg(LOG_LVL_INFO, "quarantine: rolled back %s: %s is still in place",
				id, r.path);
			quarantine_record_free(&r);
			return true;
		}
		quarantine_record_free(&r);
	}
	if (meta) {
		unlink_quiet(v->fd, id, "plain");
		unlink_quiet(v->fd, id, "intent");
		fsync(v->fd);
		log_msg(LOG_LVL_INFO, "quarantine: finished %s (staging files removed)", id);
		return true;
	}
	unlink_quiet(v->fd, id, "data");
	if (plain) {
		enum aerr pe = recover_plain(q, v, id, msg, sizeof(msg));

		if (pe != AERR_OK && *e == AERR_OK) {
			*e = pe;
			util_set_msg(errbuf, errlen, "%s", msg);
		}
		return true;
	}
	unlink_quiet(v->fd, id, "intent");
	fsync(v->fd);
	log_msg(LOG_LVL_INFO, "quarantine: rolled back %s (the file was never moved)", id);
	return true;
}

enum aerr quarantine_recover(struct quarantine *q, size_t *fixed, char *errbuf, size_t errlen)
{
	enum aerr e = AERR_OK;
	size_t i, n = 0;

	for (i = 0; i < q->n_vaults; i++) {
		struct vault *v = &q->vaults[i];
		int fd = openat(v->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;
		char (*ids)[QUARANTINE_ID_LEN + 1] = NULL;
		size_t nids = 0, cap = 0, j;

		if (!d) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((de = readdir(d))) {
			char id[QUARANTINE_ID_LEN + 1];
			const char *ext = split_name(de->d_name, id);

			if (!ext || strcmp(ext, "meta") == 0)
				continue; /* a whole item needs nothing */
			for (j = 0; j < nids && strcmp(ids[j], id) != 0; j++)
				;
			if (j < nids)
				continue;
			if (nids == cap) {
				void *ni = realloc(ids, (cap = cap ? cap * 2 : 16) * sizeof(*ids));

				if (!ni) {
					e = AERR_NOMEM;
					break;
				}
				ids = ni;
			}
			memcpy(ids[nids++], id, sizeof(id));
		}
		closedir(d);
		for (j = 0; j < nids; j++)
			n += recover_item(q, v, ids[j], &e, errbuf, errlen);
		free(ids);
		unlinkat(v->fd, "vaults.json.tmp", 0);
	}
	if (fixed)
		*fixed = n;
	if (e == AERR_NOMEM)
		util_set_msg(errbuf, errlen, "quarantine recovery: out of memory");
	return e;
}

/* ---- restore, delete, prune ---- */

/* Opens the directory part of path, walking from "/" without following a
 * symbolic link; *base points at the last component. */
static int open_parent(const char *path, const char **base, char *errbuf, size_t errlen)
{
	char *copy = strdup(path), *p, *next, *save = NULL;
	const char *slash = strrchr(path, '/');
	int fd;

	if (!copy)
		return -1;
	*base = slash + 1;
	copy[slash - path] = '\0';
	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (p = strtok_r(copy, "/", &save); fd >= 0 && p; p = next) {
		int sub;

		next = strtok_r(NULL, "/", &save);
		if (strcmp(p, "..") == 0 || strcmp(p, ".") == 0) {
			util_set_msg(errbuf, errlen, "its path %s has a \"%s\" component", path, p);
			close(fd);
			fd = -1;
			break;
		}
		sub = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			util_set_msg(errbuf, errlen, "the directory of %s: %s: %s", path, p,
				     errno == ELOOP || errno == ENOTDIR ?
				     "not a directory (symbolic links are not followed)" :
				     strerror(errno));
		close(fd);
		fd = sub;
	}
	free(copy);
	return fd;
}

/* Gives fd the owner, extended attributes, mode and times of r. */
static int apply_meta(int fd, const struct quarantine_record *r, char *errbuf, size_t errlen)
{
	struct timespec ts[2] = {
		{ .tv_sec = r->atime_ns / 1000000000, .tv_nsec = r->atime_ns % 1000000000 },
		{ .tv_sec = r->mtime_ns / 1000000000, .tv_nsec = r->mtime_ns % 1000000000 },
	};
	size_t i;

	if (fchown(fd, r->uid, r->gid) != 0) {
		util_set_msg(errbuf, errlen, "setting owner %u:%u: %s", r->uid, r->gid,
			     strerror(errno));
		return -1;
	}
	/* After the owner (a chown clears file capabilities), before the mode
	 * (an ACL sets the group bits, the mode then sets them back). */
	for (i = 0; i < r->n_xattrs; i++) {
		const struct quarantine_xattr *a = &r->xattrs[i];

		if (fsetxattr(fd, a->name, a->value, a->len, 0) != 0) {
			util_set_msg(errbuf, errlen, "setting extended attribute %s: %s", a->name,
				     strerror(errno));
			return -1;
		}
	}
	if (fchmod(fd, r->mode & 07777) != 0 || futimens(fd, ts) != 0 || fsync(fd) != 0) {
		util_set_msg(errbuf, errlen, "setting mode and times: %s", strerror(errno));
		return -1;
	}
	return 0;
}

enum aerr quarantine_restore(struct quarantine *q, const char *id, bool overwrite,
			     struct quarantine_record *out, char *errbuf, size_t errlen)
{
	struct quarantine_record r = { 0 };
	unsigned char item_key[QUARANTINE_KEY_BYTES], sha[32];
	char msg[512] = "", tmp[NAME_MAX + 1], proc[64], name[NAME_MAX + 1], esc[1024];
	const char *base;
	struct vault *v = item_find(q, id);
	struct stat st;
	uint64_t size;
	enum aerr e;
	int dirfd = -1, tfd = -1, dfd = -1;
	bool named = false, linked = false;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!v) {
		util_set_msg(errbuf, errlen, "quarantine: no item %s", id);
		return AERR_NOTFOUND;
	}
	e = item_read(q, v, id, MAGIC_META, &r, item_key, errbuf, errlen);
	if (e != AERR_OK)
		return e;
	util_escape(esc, sizeof(esc), r.path);
	e = AERR_IO;
	dirfd = open_parent(r.path, &base, msg, sizeof(msg));
	if (dirfd < 0) {
		e = AERR_GONE;
		goto fail;
	}
	if (!overwrite && fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		snprintf(msg, sizeof(msg), "a file exists there: not overwritten unless asked");
		e = AERR_EXISTS;
		goto fail;
	}
	snprintf(tmp, sizeof(tmp), ".ward-restore-%s", id);
	/* A restore of this item killed after linking its temporary name left
	 * it (a whole copy); the name is the item's own. */
	unlinkat(dirfd, tmp, 0);
	tfd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (tfd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		tfd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		named = tfd >= 0;
	}
	item_name(name, sizeof(name), id, "data");
	dfd = openat(v->fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (tfd < 0 || dfd < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", tfd < 0 ? "creating the file" :
			 "opening its data", strerror(errno));
		goto fail;
	}
	step(q, QUARANTINE_STEP_RESTORE_CREATED);
	e = data_read(dfd, tfd, id, item_key, sha, &size, msg, sizeof(msg));
	if (e != AERR_OK)
		goto fail;
	if (size != r.size || memcmp(sha, r.sha256, 32) != 0) {
		snprintf(msg, sizeof(msg), "the contents do not match the recorded size and "
			 "SHA-256 (altered)");
		e = AERR_TAMPERED;
		goto fail;
	}
	step(q, QUARANTINE_STEP_RESTORE_WRITTEN);
	e = AERR_IO;
	if (apply_meta(tfd, &r, msg, sizeof(msg)) != 0)
		goto fail;
	step(q, QUARANTINE_STEP_RESTORE_META);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", tfd);
	if (!named && linkat(AT_FDCWD, proc, dirfd, overwrite ? tmp : base,
			     AT_SYMLINK_FOLLOW) != 0) {
		e = errno == EEXIST ? AERR_EXISTS : AERR_IO;
		snprintf(msg, sizeof(msg), "%s", errno == EEXIST ? "a file exists there: not "
			 "overwritten unless asked" : strerror(errno));
		goto fail;
	}
	named = named || overwrite;
	linked = true;
	sync_dir(dirfd);
	step(q, QUARANTINE_STEP_RESTORE_LINKED);
	if (named) {
		if (renameat2(dirfd, tmp, dirfd, base, overwrite ? 0 : RENAME_NOREPLACE) != 0) {
			e = errno == EEXIST ? AERR_EXISTS : AERR_IO;
			snprintf(msg, sizeof(msg), "%s", errno == EEXIST ? "a file exists "
				 "there: not overwritten unless asked" : strerror(errno));
			goto fail;
		}
		sync_dir(dirfd);
		step(q, QUARANTINE_STEP_RESTORE_PLACED);
	}
	item_remove(v, id);
	step(q, QUARANTINE_STEP_RESTORE_REMOVED);
	log_msg(LOG_LVL_INFO, "quarantine: restored %s to %s", id, esc);
	close(tfd);
	close(dfd);
	close(dirfd);
	sodium_memzero(item_key, sizeof(item_key));
	if (out)
		*out = r;
	else
		quarantine_record_free(&r);
	return AERR_OK;
fail:
	if (named && (linked || tfd >= 0))
		unlinkat(dirfd, tmp, 0);
	if (tfd >= 0)
		close(tfd);
	if (dfd >= 0)
		close(dfd);
	if (dirfd >= 0)
		close(dirfd);
	sodium_memzero(item_key, sizeof(item_key));
	util_set_msg(errbuf, errlen, "quarantine restore of %s to %s: %s", id, esc, msg);
	quarantine_record_free(&r);
	return e;
}

enum aerr quarantine_delete(struct quarantine *q, const char *id, char *errbuf, size_t errlen)
{
	struct vault *v = item_find(q, id);

	if (!v) {
		util_set_msg(errbuf, errlen, "quarantine: no item %s", id);
		return AERR_NOTFOUND;
	}
	item_remove(v, id);
	log_msg(LOG_LVL_INFO, "quarantine: deleted %s", id);
	return AERR_OK;
}

static uint64_t item_bytes(struct vault *v, const char *id)
{
	char name[NAME_MAX + 1];
	struct stat st;
	uint64_t n = 0;

	item_name(name, sizeof(name), id, "meta");
	if (fstatat(v->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		n += (uint64_t)st.st_size;
	item_name(name, sizeof(name), id, "data");
	if (fstatat(v->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		n += (uint64_t)st.st_size;
	return n;
}

enum aerr quarantine_prune(struct quarantine *q, int64_t now, unsigned retention_days,
			   uint64_t max_bytes, size_t *pruned, char *errbuf, size_t errlen)
{
	struct listed *l;
	size_t n, broken, i, count = 0;
	uint64_t total = 0, *bytes;
	enum aerr e = list_all(q, &l, &n, &broken);

	if (pruned)
		*pruned = 0;
	if (e != AERR_OK) {
		util_set_msg(errbuf, errlen, "quarantine prune: out of memory");
		return e;
	}
	bytes = calloc(n + 1, sizeof(*bytes));
	if (!bytes) {
		for (i = 0; i < n; i++)
			quarantine_record_free(&l[i].rec);
		free(l);
		util_set_msg(errbuf, errlen, "quarantine prune: out of memory");
		return AERR_NOMEM;
	}
	for (i = 0; i < n; i++)
		total += bytes[i] = item_bytes(&q->vaults[l[i].vault], l[i].rec.id);
	for (i = 0; i < n; i++) {
		const struct quarantine_record *r = &l[i].rec;
		char esc[1024], why[128];

		if (retention_days && r->time < now - (int64_t)retention_days * 86400)
			snprintf(why, sizeof(why), "older than %u days", retention_days);
		else if (max_bytes && total > max_bytes)
			snprintf(why, sizeof(why), "the vaults hold %" PRIu64 " bytes, over the "
				 "cap of %" PRIu64, total, max_bytes);
		else
			continue;
		util_escape(esc, sizeof(esc), r->path);
		item_remove(&q->vaults[l[i].vault], r->id);
		log_msg(LOG_LVL_INFO, "quarantine: pruned %s (%s, quarantined at %" PRId64 "): %s",
			r->id, esc, r->time, why);
		total -= bytes[i];
		count++;
	}
	for (i = 0; i < n; i++)
		quarantine_record_free(&l[i].rec);
	free(l);
	free(bytes);
	if (pruned)
		*pruned = count;
	return AERR_OK;
}

size_t quarantine_vault_paths(const struct quarantine *q, const char **out, size_t max)
{
	size_t i;

	for (i = 0; i < q->n_vaults && i < max; i++)
		out[i] = q->vaults[i].path;
	return q->n_vaults;
}

enum aerr quarantine_item_files(struct quarantine *q, const char *id, int *meta_fd, int *data_fd,
				char *errbuf, size_t errlen)
{
	struct vault *v = item_find(q, id);
	char name[NAME_MAX + 1];

	*meta_fd = *data_fd = -1;
	if (!v) {
		util_set_msg(errbuf, errlen, "quarantine: no item %s", id);
		return AERR_NOTFOUND;
	}
	item_name(name, sizeof(name), id, "meta");
	*meta_fd = openat(v->fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	item_name(name, sizeof(name), id, "data");
	*data_fd = openat(v->fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (*meta_fd < 0 || *data_fd < 0) {
		util_set_msg(errbuf, errlen, "quarantine item %s: %s", id, strerror(errno));
		if (*meta_fd >= 0)
			close(*meta_fd);
		if (*data_fd >= 0)
			close(*data_fd);
		*meta_fd = *data_fd = -1;
		return AERR_IO;
	}
	return AERR_OK;
}

json_t *quarantine_record_json(const struct quarantine_record *r, const char *state)
{
	json_t *o = json_object(), *names = json_array();
	char sha[65];
	size_t i;
	bool ok = o && names;

	sodium_bin2hex(sha, sizeof(sha), r->sha256, sizeof(r->sha256));
	for (i = 0; ok && i < r->n_names; i++)
		ok = json_array_append_new(names, util_json_bytes(r->names[i])) == 0;
	ok = ok && json_object_set_new(o, "id", json_string(r->id)) == 0 &&
	     json_object_set_new(o, "path", util_json_bytes(r->path)) == 0 &&
	     json_object_set_new(o, "size", json_integer((json_int_t)r->size)) == 0 &&
	     json_object_set_new(o, "sha256", json_string(sha)) == 0 &&
	     json_object_set_new(o, "names", json_incref(names)) == 0 &&
	     json_object_set_new(o, "time", json_integer(r->time)) == 0 &&
	     json_object_set_new(o, "source",
				 json_string(quarantine_source_name(r->source))) == 0 &&
	     json_object_set_new(o, "state", json_string(state)) == 0;
	json_decref(names);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

bool quarantine_in_vault(const struct quarantine *q, int dirfd)
{
	struct stat d, v;
	size_t i;

	if (fstat(dirfd, &d) != 0)
		return false;
	for (i = 0; i < q->n_vaults; i++)
		if (fstat(q->vaults[i].fd, &v) == 0 && v.st_dev == d.st_dev && v.st_ino == d.st_ino)
			return true;
	return false;
}
