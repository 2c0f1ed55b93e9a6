/* test_quarantine.c -- the encrypted quarantine on tmpfs filesystems the
 * test mounts in a private mount namespace: quarantine and restore give
 * back identical contents and metadata (owner, mode, times, every extended
 * attribute), overwrites are refused unless asked, tampered records are
 * refused, a vault is useless without its key, a kill at every step of a
 * quarantine or a restore loses nothing, a full disk leaves the file in place, pruning goes oldest
 * first, cross-filesystem items are copied, verified and unlinked, and
 * what is not a regular file (or not the file scanned) is refused.
 * Needs root (mounts, ownership, trusted.* and security.* attributes);
 * "test_quarantine unit-caps" runs it with only the capabilities of the
 * agent's systemd unit. */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>

#include "agent/quarantine.h"
#include "check.h"
#include "common/util.h"
#include "mounts.h"
#include "unitcaps.h"

static char fs_a[600], fs_b[600], fs_c[600], fs_d[600], fs_small[600], state[620];
static const unsigned char test_key[QUARANTINE_KEY_BYTES] = "ward test quarantine key 32bytes";
static const char *const eicar_names[] = { "Eicar-Test-Signature" };
static const struct quarantine_detection det = {
	.names = eicar_names, .n_names = 1, .component = "ward-main", .version = "42",
	.source = QUARANTINE_SOURCE_REALTIME,
};

static struct quarantine *open_q(const struct quarantine_config *cfg)
{
	struct quarantine *q = NULL;
	char err[512];

	if (quarantine_open(state, test_key, cfg, &q, err, sizeof(err)) != AERR_OK) {
		fprintf(stderr, "quarantine_open: %s\n", err);
		exit(1);
	}
	return q;
}

/* Bytes, stat and extended attributes of a file, to compare. */
struct snap {
	struct stat st;
	unsigned char *data;
	size_t len;
	char xattrs[16384]; /* "name=hex\n" lines, sorted by name */
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void snap_take(const char *path, struct snap *s)
{
	char list[4096], *names[64], *p;
	ssize_t n;
	size_t count = 0, i, off = 0;
	int fd;

	memset(s, 0, sizeof(*s));
	if (lstat(path, &s->st) != 0) {
		perror(path);
		return;
	}
	/* Read without changing the access time the comparison looks at. */
	fd = open(path, O_RDONLY | O_NOATIME);
	s->data = malloc((size_t)s->st.st_size + 1);
	if (fd < 0 || !s->data || read(fd, s->data, (size_t)s->st.st_size) != s->st.st_size)
		perror(path);
	s->len = (size_t)s->st.st_size;
	if (fd >= 0)
		close(fd);
	n = llistxattr(path, list, sizeof(list));
	for (p = list; n > 0 && p < list + n && count < 64; p += strlen(p) + 1)
		names[count++] = p;
	qsort(names, count, sizeof(names[0]), cmp_str);
	for (i = 0; i < count; i++) {
		unsigned char v[1024];
		char hex[2049];
		ssize_t vl = lgetxattr(path, names[i], v, sizeof(v));

		sodium_bin2hex(hex, sizeof(hex), v, vl > 0 ? (size_t)vl : 0);
		off += (size_t)snprintf(s->xattrs + off, sizeof(s->xattrs) - off, "%s=%s\n",
					names[i], hex);
	}
}

static bool snap_same(const struct snap *a, const struct snap *b)
{
	bool same = a->data && b->data && a->len == b->len &&
		    memcmp(a->data, b->data, a->len) == 0 &&
		    a->st.st_mode == b->st.st_mode && a->st.st_uid == b->st.st_uid &&
		    a->st.st_gid == b->st.st_gid && a->st.st_size == b->st.st_size &&
		    a->st.st_mtim.tv_sec == b->st.st_mtim.tv_sec &&
		    a->st.st_mtim.tv_nsec == b->st.st_mtim.tv_nsec &&
		    a->st.st_atim.tv_sec == b->st.st_atim.tv_sec &&
		    a->st.st_atim.tv_nsec == b->st.st_atim.tv_nsec &&
		    strcmp(a->xattrs, b->xattrs) == 0;

	if (!same)
		fprintf(stderr, "    differ: mode %o/%o uid %u/%u gid %u/%u size %jd/%jd "
			"mtime %ld.%09ld/%ld.%09ld atime %ld.%09ld/%ld.%09ld\n    xattrs:\n%s"
			"    vs:\n%s", a->st.st_mode, b->st.st_mode, a->st.st_uid, b->st.st_uid,
			a->st.st_gid, b->st.st_gid, (intmax_t)a->st.st_size,
			(intmax_t)b->st.st_size, a->st.st_mtim.tv_sec, a->st.st_mtim.tv_nsec,
			b->st.st_mtim.tv_sec, b->st.st_mtim.tv_nsec, a->st.st_atim.tv_sec,
			a->st.st_atim.tv_nsec, b->st.st_atim.tv_sec, b->st.st_atim.tv_nsec,
			a->xattrs, b->xattrs);
	return same;
}

static void snap_free(struct snap *s)
{
	free(s->data);
	s->data = NULL;
}

/* Writes a file with contents of n bytes, an owner, a mode with setuid,
 * chosen times and attributes of every namespace (an ACL among them). */
static char *make_file(const char *dir, const char *name, size_t n, bool rich)
{
	unsigned char *buf = malloc(n + 1);
	char *path;
	size_t i;

	for (i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 7 + (i >> 8));
	path = test_write(dir, name, buf, n);
	free(buf);
	if (rich) {
		struct timespec ts[2] = { { 1234567890, 123456789 }, { 1500000000, 987654321 } };
		unsigned char acl[4 + 8 * 5];
		const uint16_t tags[5][2] = { { 1, 7 }, { 2, 5 }, { 4, 5 }, { 0x10, 5 },
					      { 0x20, 1 } };
		const unsigned char cap[20] = { 0, 0, 0, 2, 0, 0x20 }; /* v2, cap_net_bind */
		uint32_t v = 2;

		unitcaps_fixture(true);
		memcpy(acl, &v, 4);
		for (i = 0; i < 5; i++) {
			uint32_t id = tags[i][0] == 2 ? 1000 : 0xffffffff;

			memcpy(acl + 4 + 8 * i, &tags[i][0], 2);
			memcpy(acl + 6 + 8 * i, &tags[i][1], 2);
			memcpy(acl + 8 + 8 * i, &id, 4);
		}
		CHECK(chown(path, 1234, 5678) == 0);
		CHECK(setxattr(path, "user.comment", "hello", 5, 0) == 0);
		CHECK(setxattr(path, "trusted.bin", "\0\1\2\377", 4, 0) == 0);
		CHECK(setxattr(path, "security.ward", "label_t", 7, 0) == 0);
		CHECK(setxattr(path, "system.posix_acl_access", acl, sizeof(acl), 0) == 0);
		CHECK(setxattr(path, "security.capability", cap, sizeof(cap), 0) == 0);
		CHECK(chmod(path, 02751) == 0);
		CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
		unitcaps_fixture(false);
	}
	return path;
}

/* Quarantines path; returns the result code, the id in id. */
static enum aerr put_path(struct quarantine *q, const char *path, char *id, char *err,
			  size_t errlen)
{
	char *dir = strdup(path), *slash = strrchr(dir, '/');
	struct quarantine_record r;
	struct stat st;
	enum aerr e;
	int dfd;

	*slash = '\0';
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (lstat(path, &st) != 0)
		memset(&st, 0, sizeof(st));
	e = quarantine_put(q, dfd, slash + 1, st.st_dev, st.st_ino, &det, &r, err, errlen);
	if (e == AERR_OK && id)
		snprintf(id, QUARANTINE_ID_LEN + 1, "%s", r.id);
	quarantine_record_free(&r);
	close(dfd);
	free(dir);
	return e;
}

/* Counts the entries of dir whose name ends with suffix (NULL: all but
 * vaults.json). */
static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name), sl = suffix ? strlen(suffix) : 0;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "vaults.json") == 0)
			continue;
		if (!suffix || (l > sl && strcmp(de->d_name + l - sl, suffix) == 0))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* The vault files other than whole items (.meta/.data pairs). */
static int count_debris(const char *dir)
{
	return count_files(dir, NULL) - count_files(dir, ".meta") - count_files(dir, ".data");
}

static void test_roundtrip(void)
{
	struct quarantine *q = open_q(NULL);
	struct quarantine_record *list = NULL, r;
	struct snap before, after;
	char dir[700], vault[700], id[QUARANTINE_ID_LEN + 1], err[512], *path;
	size_t n = 0, broken = 1;
	unsigned char *raw;
	size_t rawlen;

	snprintf(dir, sizeof(dir), "%s/home", fs_a);
	snprintf(vault, sizeof(vault), "%s/.ward-quarantine", fs_a);
	mkdir(dir, 0755);
	path = make_file(dir, "evil name\n\xff.exe", 200000, true);
	snap_take(path, &before);
	CHECK(put_path(q, path, id, err, sizeof(err)) == AERR_OK);
	CHECK(access(path, F_OK) != 0);
	/* Moved into the vault at its filesystem's root, 0700, nothing else. */
	{
		struct stat st;

		CHECK(stat(vault, &st) == 0 && (st.st_mode & 07777) == 0700);
	}
	CHECK(count_files(vault, ".meta") == 1 && count_files(vault, ".data") == 1);
	CHECK(count_debris(vault) == 0);
	/* Neither the contents nor the path are readable in the vault. */
	{
		char dpath[800];

		snprintf(dpath, sizeof(dpath), "%s/%s.data", vault, id);
		raw = (unsigned char *)util_read_file(dpath, 1 << 24, &rawlen);
		CHECK(raw && rawlen > 200000 && !memmem(raw, rawlen, before.data + 1000, 64));
		free(raw);
		snprintf(dpath, sizeof(dpath), "%s/%s.meta", vault, id);
		raw = (unsigned char *)util_read_file(dpath, 1 << 20, &rawlen);
		CHECK(raw && !memmem(raw, rawlen, "evil", 4) && !memmem(raw, rawlen, "Eicar", 5));
		free(raw);
	}
	CHECK(quarantine_list(q, &list, &n, &broken, err, sizeof(err)) == AERR_OK);
	CHECK(n == 1 && broken == 0);
	if (n == 1) {
		CHECK_STR_EQ(list[0].path, path);
		CHECK(list[0].size == 200000 && list[0].uid == 1234 && list[0].gid == 5678);
		CHECK(list[0].n_names == 1 && list[0].n_xattrs == 5 && !list[0].cross);
		CHECK_STR_EQ(list[0].names[0], "Eicar-Test-Signature");
		CHECK_STR_EQ(list[0].component, "ward-main");
		CHECK(list[0].source == QUARANTINE_SOURCE_REALTIME);
		CHECK(list[0].mtime_ns == 1500000000987654321LL);
	}
	/* The inventory's form of the record: the path's bytes as \xNN. */
	if (n == 1) {
		json_t *j = quarantine_record_json(&list[0], "stored");
		const char *p = json_string_value(json_object_get(j, "path"));

		CHECK(p && strstr(p, "/home/evil name\n\\xff.exe"));
		CHECK_STR_EQ(json_string_value(json_object_get(j, "state")), "stored");
		CHECK_STR_EQ(json_string_value(json_object_get(j, "source")), "realtime");
		CHECK(json_integer_value(json_object_get(j, "size")) == 200000);
		CHECK(json_string_length(json_object_get(j, "sha256")) == 64);
		json_decref(j);
	}
	quarantine_records_free(list, n);
	/* Its files, for a central copy; the vaults, for the scans to skip. */
	{
		const char *vaults[4];
		int mfd, dfd;
		struct stat st;

		CHECK(quarantine_item_files(q, id, &mfd, &dfd, err, sizeof(err)) == AERR_OK);
		CHECK(fstat(dfd, &st) == 0 && st.st_size > 200000);
		close(mfd);
		close(dfd);
		CHECK(quarantine_vault_paths(q, vaults, 4) == 2);
		CHECK_STR_EQ(vaults[1], vault);
	}
	CHECK(quarantine_restore(q, id, false, &r, err, sizeof(err)) == AERR_OK);
	quarantine_record_free(&r);
	snap_take(path, &after);
	CHECK(snap_same(&before, &after));
	CHECK(count_files(vault, NULL) == 0);
	CHECK(quarantine_get(q, id, &r, err, sizeof(err)) == AERR_NOTFOUND);
	snap_free(&before);
	snap_free(&after);
	unlink(path);
	free(path);
	quarantine_close(q);
}

static void test_overwrite(void)
{
	struct quarantine *q = open_q(NULL);
	char id[QUARANTINE_ID_LEN + 1], err[512], *path = make_file(fs_a, "ow", 5000, true);
	struct snap before, after;

	snap_take(path, &before);
	CHECK(put_path(q, path, id, err, sizeof(err)) == AERR_OK);
	free(test_write(fs_a, "ow", "newer", 5));
	CHECK(quarantine_restore(q, id, false, NULL, err, sizeof(err)) == AERR_EXISTS);
	CHECK_STR_CONTAINS(err, "not overwritten");
	snap_take(path, &after);
	CHECK(after.len == 5 && memcmp(after.data, "newer", 5) == 0);
	snap_free(&after);
	CHECK(quarantine_restore(q, id, true, NULL, err, sizeof(err)) == AERR_OK);
	snap_take(path, &after);
	CHECK(snap_same(&before, &after));
	/* No temporary file left beside it. */
	CHECK(count_files(fs_a, NULL) == 2); /* ow and home */
	snap_free(&before);
	snap_free(&after);
	unlink(path);
	free(path);
	quarantine_close(q);
}

/* Flips every byte of the item's file ext in turn: each must be refused. */
static void tamper_each_byte(struct quarantine *q, const char *vault, const char *id,
			     const char *ext, const char *target)
{
	char fpath[800], err[512];
	unsigned char *buf;
	size_t len, i, refused = 0;

	snprintf(fpath, sizeof(fpath), "%s/%s.%s", vault, id, ext);
	buf = (unsigned char *)util_read_file(fpath, 1 << 20, &len);
	CHECK(buf != NULL);
	for (i = 0; buf && i < len; i++) {
		enum aerr e;

		buf[i] ^= 0x20;
		util_write_file(fpath, buf, len, 0600);
		e = quarantine_restore(q, id, false, NULL, err, sizeof(err));
		if (e == AERR_TAMPERED && strstr(err, "quarantine record") && access(target, F_OK))
			refused++;
		else
			fprintf(stderr, "    byte %zu of %s: %d %s\n", i, ext, (int)e, err);
		buf[i] ^= 0x20;
	}
	CHECK(buf && refused == len);
	/* Truncated and extended files are refused too. */
	if (buf) {
		util_write_file(fpath, buf, len - 1, 0600);
		CHECK(quarantine_restore(q, id, false, NULL, err, sizeof(err)) == AERR_TAMPERED);
		buf = realloc(buf, len + 1);
		buf[len] = 'x';
		util_write_file(fpath, buf, len + 1, 0600);
		CHECK(quarantine_restore(q, id, false, NULL, err, sizeof(err)) == AERR_TAMPERED);
		util_write_file(fpath, buf, len, 0600);
	}
	free(buf);
}

static void test_tampering(void)
{
	struct quarantine *q = open_q(NULL);
	char id[QUARANTINE_ID_LEN + 1], err[512], vault[700], other[700], fpath[800];
	char *path = make_file(fs_a, "t", 300, false);
	struct quarantine_record r;
	struct quarantine *q2;
	unsigned char key2[QUARANTINE_KEY_BYTES];
	size_t n, broken;
	struct quarantine_record *list;

	snprintf(vault, sizeof(vault), "%s/.ward-quarantine", fs_a);
	CHECK(put_path(q, path, id, err, sizeof(err)) == AERR_OK);
	tamper_each_byte(q, vault, id, "meta", path);
	tamper_each_byte(q, vault, id, "data", path);
	/* A flipped meta byte is named as such by get and list. */
	snprintf(fpath, sizeof(fpath), "%s/%s.meta", vault, id);
	{
		size_t len;
		unsigned char *b = (unsigned char *)util_read_file(fpath, 1 << 20, &len);

		b[len - 3] ^= 1;
		util_write_file(fpath, b, len, 0600);
		CHECK(quarantine_get(q, id, &r, err, sizeof(err)) == AERR_TAMPERED);
		CHECK_STR_CONTAINS(err, "metadata does not authenticate");
		CHECK(quarantine_list(q, &list, &n, &broken, err, sizeof(err)) == AERR_OK);
		CHECK(n == 0 && broken == 1);
		quarantine_records_free(list, n);
		b[len - 3] ^= 1;
		util_write_file(fpath, b, len, 0600);
		free(b);
	}
	/* The vault copied to another host, whose key differs: useless. */
	memset(key2, 7, sizeof(key2));
	snprintf(other, sizeof(other), "%s/other", fs_b);
	mkdir(other, 0700);
	CHECK(quarantine_open(other, key2, NULL, &q2, err, sizeof(err)) == AERR_OK);
	{
		char src[800], dst[800];
		const char *exts[] = { "meta", "data" };
		int i;

		for (i = 0; i < 2; i++) {
			size_t len;
			char *b;

			snprintf(src, sizeof(src), "%s/%s.%s", vault, id, exts[i]);
			snprintf(dst, sizeof(dst), "%s/quarantine/%s.%s", other, id, exts[i]);
			b = util_read_file(src, 1 << 24, &len);
			CHECK(b && util_write_file(dst, b, len, 0600) == 0);
			free(b);
		}
	}
	CHECK(quarantine_get(q2, id, &r, err, sizeof(err)) == AERR_TAMPERED);
	CHECK_STR_CONTAINS(err, "does not unwrap");
	CHECK(quarantine_restore(q2, id, false, NULL, err, sizeof(err)) == AERR_TAMPERED);
	CHECK(access(path, F_OK) != 0);
	quarantine_close(q2);
	/* Untouched, the item still restores. */
	CHECK(quarantine_restore(q, id, false, NULL, err, sizeof(err)) == AERR_OK);
	unlink(path);
	free(path);
	quarantine_close(q);
}

struct killer {
	int at, calls;
};

static void kill_at(void *arg, enum quarantine_step s)
{
	struct killer *k = arg;

	(void)s;
	if (++k->calls == k->at)
		_exit(9); /* as abrupt as kill -9: no cleanup, no buffers flushed */
}

/* Kills a quarantine at its Nth step, for every N, then recovers: the file
 * is in place or a whole item, never neither, and no debris is left. */
static void test_kill_every_step(bool cross, size_t size)
{
	char dir[700], vault[700], err[512], *path;
	struct snap before;
	int n, done = 0, in_place = 0, in_vault = 0;

	snprintf(dir, sizeof(dir), "%s", cross ? fs_c : fs_a);
	snprintf(vault, sizeof(vault), cross ? "%s/quarantine" : "%s/.ward-quarantine",
		 cross ? state : fs_a);
	for (n = 1; !done && n < 40; n++) {
		struct killer k = { .at = n };
		struct quarantine_config cfg = { .progress = kill_at, .progress_arg = &k };
		struct quarantine_record *list = NULL;
		struct quarantine *q;
		size_t count = 0, fixed = 0;
		int status;
		pid_t pid;

		path = make_file(dir, "k", size, true);
		snap_take(path, &before);
		pid = fork();
		if (pid == 0) {
			q = open_q(&cfg);
			_exit(put_path(q, path, NULL, err, sizeof(err)) == AERR_OK ? 0 : 1);
		}
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
		done = WEXITSTATUS(status) == 0;
		CHECK(done || WEXITSTATUS(status) == 9);
		q = open_q(NULL);
		CHECK(quarantine_recover(q, &fixed, err, sizeof(err)) == AERR_OK);
		CHECK(quarantine_list(q, &list, &count, NULL, err, sizeof(err)) == AERR_OK);
		CHECK(count_debris(vault) == 0);
		if (access(path, F_OK) == 0) {
			struct snap now;

			in_place++;
			CHECK(count == 0);
			snap_take(path, &now);
			CHECK(snap_same(&before, &now));
			snap_free(&now);
			CHECK(!done);
		} else {
			struct snap now;

			in_vault++;
			CHECK(count == 1);
			if (count == 1)
				CHECK(quarantine_restore(q, list[0].id, false, NULL, err,
							 sizeof(err)) == AERR_OK);
			snap_take(path, &now);
			CHECK(snap_same(&before, &now));
			snap_free(&now);
		}
		quarantine_records_free(list, count);
		quarantine_close(q);
		snap_free(&before);
		unlink(path);
		free(path);
	}
	CHECK(done);
	/* Both outcomes were met: the early kills leave the file in place. */
	CHECK(in_place > 0 && in_vault > 0);
	printf("kill test (%s, %zu bytes): %d steps, %d in place, %d in the vault\n",
	       cross ? "across filesystems" : "same filesystem", size, n - 1, in_place, in_vault);
}

static void sigkill_at(void *arg, enum quarantine_step s)
{
	struct killer *k = arg;

	/* Only the restore's steps count: the item was quarantined before. */
	if (s >= QUARANTINE_STEP_RESTORE_CREATED && ++k->calls == k->at)
		kill(getpid(), SIGKILL);
}

/* Kills a restore with SIGKILL at its Nth step, for every N, then recovers:
 * the file is restored whole (contents and metadata) at its path, or still
 * a whole item in the vault that restores again; never neither, never half
 * (overwrite: the file it replaces is there until the whole one is). */
static void test_kill_restore_every_step(bool overwrite, size_t size)
{
	static const char newer[] = "the file that took its place\n";
	char vault[700], id[QUARANTINE_ID_LEN + 1], err[512], *path;
	int n, done = 0, restored = 0, in_vault = 0;

	snprintf(vault, sizeof(vault), "%s/.ward-quarantine", fs_a);
	for (n = 1; !done && n < 20; n++) {
		struct killer k = { .at = n };
		struct quarantine_config cfg = { .progress = sigkill_at, .progress_arg = &k };
		struct quarantine_record *list = NULL;
		struct quarantine *q = open_q(NULL);
		struct snap before, now;
		size_t count = 0, fixed = 0;
		int status;
		pid_t pid;

		path = make_file(fs_a, "r", size, true);
		snap_take(path, &before);
		CHECK(put_path(q, path, id, err, sizeof(err)) == AERR_OK);
		quarantine_close(q);
		if (overwrite)
			free(test_write(fs_a, "r", newer, sizeof(newer) - 1));
		pid = fork();
		if (pid == 0) {
			q = open_q(&cfg);
			_exit(quarantine_restore(q, id, overwrite, NULL, err, sizeof(err)) ==
			      AERR_OK ? 0 : 1);
		}
		CHECK(waitpid(pid, &status, 0) == pid);
		done = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		CHECK(done || (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
		q = open_q(NULL);
		CHECK(quarantine_recover(q, &fixed, err, sizeof(err)) == AERR_OK);
		CHECK(quarantine_list(q, &list, &count, NULL, err, sizeof(err)) == AERR_OK);
		CHECK(count_debris(vault) == 0);
		snap_take(path, &now);
		if (snap_same(&before, &now)) {
			/* Restored whole; killed before the item left the vault,
			 * it is still there (and refuses to overwrite it). */
			restored++;
			CHECK(count <= 1);
			if (count == 1)
				CHECK(quarantine_restore(q, id, false, NULL, err, sizeof(err)) ==
				      AERR_EXISTS);
			CHECK(done || count == 1 || n > 1);
		} else {
			/* Not restored: the path is as it was, the item whole in the
			 * vault, and it restores. */
			in_vault++;
			CHECK(!done);
			if (overwrite)
				CHECK(now.data && now.len == sizeof(newer) - 1 &&
				      memcmp(now.data, newer, now.len) == 0);
			else
				CHECK(access(path, F_OK) != 0);
			CHECK(count == 1 && strcmp(list[0].id, id) == 0);
			CHECK(quarantine_restore(q, id, overwrite, NULL, err, sizeof(err)) ==
			      AERR_OK);
			snap_free(&now);
			snap_take(path, &now);
			CHECK(snap_same(&before, &now));
		}
		/* No temporary name is left beside it once the item is restored. */
		CHECK(test_count_prefixed(fs_a, ".ward-restore-") == 0);
		quarantine_records_free(list, count);
		if (count == 1 && snap_same(&before, &now))
			quarantine_delete(q, id, err, sizeof(err));
		quarantine_close(q);
		snap_free(&before);
		snap_free(&now);
		unlink(path);
		free(path);
	}
	CHECK(done);
	CHECK(restored > 0 && in_vault > 0);
	printf("restore kill test (%s, %zu bytes): %d steps, %d restored, %d in the vault\n",
	       overwrite ? "overwrite" : "new file", size, n - 1, restored, in_vault);
}

/* A moved file whose intent does not authenticate is kept as it is (never
 * removed), recovery says why, and finishes once the intent is whole. */
static void test_recover_bad_intent(void)
{
	struct killer k = { .at = 2 }; /* after MOVED */
	struct quarantine_config cfg = { .progress = kill_at, .progress_arg = &k };
	char vault[700], err[512], ipath[800], ppath[800], *path = make_file(fs_a, "bi", 500, true);
	struct quarantine_record *list;
	struct quarantine *q;
	struct snap before, now;
	struct dirent *de;
	unsigned char *b = NULL;
	size_t n, len = 0, fixed;
	int status;
	pid_t pid;
	DIR *d;

	snap_take(path, &before);
	snprintf(vault, sizeof(vault), "%s/.ward-quarantine", fs_a);
	pid = fork();
	if (pid == 0) {
		q = open_q(&cfg);
		_exit(put_path(q, path, NULL, err, sizeof(err)) == AERR_OK ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 9);
	ipath[0] = ppath[0] = '\0';
	d = opendir(vault);
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l > 7 && strcmp(de->d_name + l - 7, ".intent") == 0)
			snprintf(ipath, sizeof(ipath), "%s/%s", vault, de->d_name);
		if (l > 6 && strcmp(de->d_name + l - 6, ".plain") == 0)
			snprintf(ppath, sizeof(ppath), "%s/%s", vault, de->d_name);
	}
	if (d)
		closedir(d);
	CHECK(ipath[0] && ppath[0]);
	if (ipath[0])
		b = (unsigned char *)util_read_file(ipath, 1 << 20, &len);
	if (b) {
		b[len - 1] ^= 1;
		util_write_file(ipath, b, len, 0600);
	}
	q = open_q(NULL);
	CHECK(quarantine_recover(q, &fixed, err, sizeof(err)) == AERR_TAMPERED);
	CHECK_STR_CONTAINS(err, "does not authenticate");
	CHECK(access(ppath, F_OK) == 0 && access(path, F_OK) != 0);
	if (b) {
		b[len - 1] ^= 1;
		util_write_file(ipath, b, len, 0600);
	}
	CHECK(quarantine_recover(q, &fixed, err, sizeof(err)) == AERR_OK && fixed == 1);
	CHECK(count_debris(vault) == 0);
	CHECK(quarantine_list(q, &list, &n, NULL, err, sizeof(err)) == AERR_OK && n == 1);
	if (n == 1)
		CHECK(quarantine_restore(q, list[0].id, false, NULL, err, sizeof(err)) == AERR_OK);
	quarantine_records_free(list, n);
	snap_take(path, &now);
	CHECK(snap_same(&before, &now));
	snap_free(&before);
	snap_free(&now);
	quarantine_close(q);
	free(b);
	unlink(path);
	free(path);
}

static void test_full_disk(void)
{
	struct quarantine *q = open_q(NULL);
	char err[512], vault[700], *path = make_file(fs_small, "big", 150000, false);
	struct stat st0, st1;
	struct snap before, after;
	int nfill;

	snap_take(path, &before);
	stat(path, &st0);
	/* Make the vault first, then fill the filesystem but for 64 KiB. */
	snprintf(vault, sizeof(vault), "%s/.ward-quarantine", fs_small);
	mkdir(vault, 0700);
	nfill = test_fill(fs_small);
	CHECK(put_path(q, path, NULL, err, sizeof(err)) == AERR_IO);
	CHECK_STR_CONTAINS(err, "No space left on device");
	CHECK(stat(path, &st1) == 0 && st1.st_ino == st0.st_ino);
	snap_take(path, &after);
	CHECK(snap_same(&before, &after));
	CHECK(count_files(vault, NULL) == 0);
	snap_free(&before);
	snap_free(&after);
	test_unfill(fs_small, nfill);
	unlink(path);
	free(path);
	quarantine_close(q);
}

static void test_prune(void)
{
	struct quarantine *q = open_q(NULL);
	char ids[3][QUARANTINE_ID_LEN + 1], err[512], name[16];
	struct quarantine_record *list, r;
	size_t n, pruned, sizes[3] = { 40000, 30000, 20000 };
	int64_t t0 = 0;
	int i;

	for (i = 0; i < 3; i++) {
		char *path;

		snprintf(name, sizeof(name), "p%d", i);
		path = make_file(fs_a, name, sizes[i], false);
		CHECK(put_path(q, path, ids[i], err, sizeof(err)) == AERR_OK);
		if (i == 0 && quarantine_get(q, ids[0], &r, err, sizeof(err)) == AERR_OK) {
			t0 = r.time;
			quarantine_record_free(&r);
		}
		free(path);
		if (i < 2) {
			/* Distinct quarantine times (whole seconds) for the order. */
			int64_t t = (int64_t)time(NULL);

			while ((int64_t)time(NULL) == t)
				usleep(50000);
		}
	}
	/* A day later with a one-day retention: the first item only. */
	CHECK(quarantine_prune(q, t0 + 86400 + 1, 1, 0, &pruned, err, sizeof(err)) == AERR_OK);
	CHECK(pruned == 1);
	CHECK(quarantine_get(q, ids[0], &r, err, sizeof(err)) == AERR_NOTFOUND);
	/* A cap that only the newest fits under: the older goes. */
	CHECK(quarantine_prune(q, t0, 0, 25000, &pruned, err, sizeof(err)) == AERR_OK);
	CHECK(pruned == 1);
	CHECK(quarantine_list(q, &list, &n, NULL, err, sizeof(err)) == AERR_OK);
	CHECK(n == 1 && strcmp(list[0].id, ids[2]) == 0);
	quarantine_records_free(list, n);
	CHECK(quarantine_delete(q, ids[2], err, sizeof(err)) == AERR_OK);
	CHECK(quarantine_delete(q, ids[2], err, sizeof(err)) == AERR_NOTFOUND);
	CHECK(quarantine_list(q, &list, &n, NULL, err, sizeof(err)) == AERR_OK && n == 0);
	quarantine_records_free(list, n);
	quarantine_close(q);
}

static void test_cross_filesystem(void)
{
	struct quarantine *q = open_q(NULL);
	char id[QUARANTINE_ID_LEN + 1], err[512], vault[700], *path = make_file(fs_c, "x", 70000,
										    true);
	struct quarantine_record r;
	struct snap before, after;

	snap_take(path, &before);
	CHECK(put_path(q, path, id, err, sizeof(err)) == AERR_OK);
	CHECK(access(path, F_OK) != 0);
	snprintf(vault, sizeof(vault), "%s/quarantine", state);
	CHECK(count_files(vault, ".meta") == 1 && count_debris(vault) == 0);
	CHECK(quarantine_get(q, id, &r, err, sizeof(err)) == AERR_OK && r.cross);
	quarantine_record_free(&r);
	CHECK(quarantine_restore(q, id, false, NULL, err, sizeof(err)) == AERR_OK);
	snap_take(path, &after);
	CHECK(snap_same(&before, &after));
	snap_free(&before);
	snap_free(&after);
	unlink(path);
	free(path);
	quarantine_close(q);
}

static void test_refused(void)
{
	struct quarantine *q = open_q(NULL);
	char err[512], path[700], *file = make_file(fs_a, "reg", 100, false);
	struct stat st;

	snprintf(path, sizeof(path), "%s/fifo", fs_a);
	CHECK(mkfifo(path, 0600) == 0);
	CHECK(put_path(q, path, NULL, err, sizeof(err)) == AERR_TYPE);
	CHECK_STR_CONTAINS(err, "not a regular file");
	unlink(path);
	snprintf(path, sizeof(path), "%s/null", fs_a);
	unitcaps_fixture(true);
	CHECK(mknod(path, S_IFCHR | 0600, makedev(1, 3)) == 0);
	unitcaps_fixture(false);
	CHECK(put_path(q, path, NULL, err, sizeof(err)) == AERR_TYPE);
	unlink(path);
	snprintf(path, sizeof(path), "%s/link", fs_a);
	CHECK(symlink(file, path) == 0);
	CHECK(put_path(q, path, NULL, err, sizeof(err)) == AERR_TYPE);
	CHECK_STR_CONTAINS(err, "symbolic link");
	CHECK(access(file, F_OK) == 0);
	unlink(path);
	/* Not the file scanned: another inode, or gone. */
	CHECK(stat(file, &st) == 0);
	{
		int dfd = open(fs_a, O_RDONLY | O_DIRECTORY);

		CHECK(quarantine_put(q, dfd, "reg", st.st_dev, st.st_ino + 1, &det, NULL, err,
				     sizeof(err)) == AERR_CHANGED);
		CHECK_STR_CONTAINS(err, "changed since it was scanned");
		unlink(file);
		CHECK(quarantine_put(q, dfd, "reg", st.st_dev, st.st_ino, &det, NULL, err,
				     sizeof(err)) == AERR_GONE);
		CHECK_STR_CONTAINS(err, "gone");
		close(dfd);
	}
	free(file);
	quarantine_close(q);
}

/* A vault out of reach (its filesystem not mounted) while another is
 * first used stays on the list, and its items are found again. */
static void test_registry(void)
{
	struct quarantine *q = open_q(NULL);
	char id_a[QUARANTINE_ID_LEN + 1], id_s[QUARANTINE_ID_LEN + 1], err[512];
	char vault[700], hidden[700], *pa = make_file(fs_a, "reg-a", 10, false), *ps;
	struct quarantine_record r;

	CHECK(put_path(q, pa, id_a, err, sizeof(err)) == AERR_OK);
	quarantine_close(q);
	snprintf(vault, sizeof(vault), "%s/.ward-quarantine", fs_a);
	snprintf(hidden, sizeof(hidden), "%s/.hidden", fs_a);
	CHECK(rename(vault, hidden) == 0);
	/* A first file on fs_d makes a vault there, and rewrites the list. */
	q = open_q(NULL);
	ps = make_file(fs_d, "reg-d", 10, false);
	CHECK(put_path(q, ps, id_s, err, sizeof(err)) == AERR_OK);
	CHECK(quarantine_get(q, id_a, &r, err, sizeof(err)) == AERR_NOTFOUND);
	quarantine_close(q);
	CHECK(rename(hidden, vault) == 0);
	q = open_q(NULL);
	CHECK(quarantine_get(q, id_a, &r, err, sizeof(err)) == AERR_OK);
	quarantine_record_free(&r);
	CHECK(quarantine_delete(q, id_a, err, sizeof(err)) == AERR_OK);
	CHECK(quarantine_delete(q, id_s, err, sizeof(err)) == AERR_OK);
	quarantine_close(q);
	free(pa);
	free(ps);
}

/* A configured vault wins over the one at the root; with root vaults
 * off, a file is copied into the state directory's vault. */
static void test_configured_vaults(void)
{
	char custom[700], err[512], id[QUARANTINE_ID_LEN + 1], *path;
	const char *dirs[] = { custom };
	struct quarantine_config cfg = { .vault_dirs = dirs, .n_vault_dirs = 1 };
	struct quarantine_config off = { .no_root_vaults = true };
	struct quarantine_record r;
	struct quarantine *q;
	struct stat st;

	snprintf(custom, sizeof(custom), "%s/custom", fs_d);
	q = open_q(&cfg);
	CHECK(stat(custom, &st) == 0 && (st.st_mode & 07777) == 0700);
	path = make_file(fs_d, "conf", 10, false);
	CHECK(put_path(q, path, id, err, sizeof(err)) == AERR_OK);
	CHECK(count_files(custom, ".meta") == 1);
	CHECK(quarantine_delete(q, id, err, sizeof(err)) == AERR_OK);
	quarantine_close(q);
	free(path);

	q = open_q(&off);
	path = make_file(fs_a, "off", 10, false);
	CHECK(put_path(q, path, id, err, sizeof(err)) == AERR_OK);
	CHECK(quarantine_get(q, id, &r, err, sizeof(err)) == AERR_OK && r.cross);
	quarantine_record_free(&r);
	CHECK(quarantine_delete(q, id, err, sizeof(err)) == AERR_OK);
	quarantine_close(q);
	free(path);
}

static void test_key_and_server_seal(void)
{
	char dir[700], kpath[800], err[512], id[QUARANTINE_ID_LEN + 1], fpath[800];
	unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	unsigned char item_key[QUARANTINE_KEY_BYTES], unsealed[QUARANTINE_KEY_BYTES];
	unsigned char key[QUARANTINE_KEY_BYTES], *meta;
	struct quarantine_config cfg = { .server_pk = pk };
	struct quarantine_record r;
	struct quarantine *q = NULL;
	struct stat st;
	size_t len, klen;
	char *path, *k1;

	/* The key is made on first use, 0600, and kept. */
	snprintf(dir, sizeof(dir), "%s/keyed", fs_b);
	mkdir(dir, 0700);
	snprintf(kpath, sizeof(kpath), "%s/quarantine.key", dir);
	crypto_box_keypair(pk, sk);
	CHECK(quarantine_open(dir, NULL, &cfg, &q, err, sizeof(err)) == AERR_OK);
	CHECK(stat(kpath, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
	k1 = util_read_file(kpath, 64, &klen);
	memcpy(key, k1, sizeof(key));
	path = make_file(fs_b, "sealed", 1000, false);
	CHECK(put_path(q, path, id, err, sizeof(err)) == AERR_OK);
	quarantine_close(q);
	CHECK(quarantine_open(dir, NULL, NULL, &q, err, sizeof(err)) == AERR_OK);
	CHECK(quarantine_get(q, id, &r, err, sizeof(err)) == AERR_OK);
	quarantine_record_free(&r);
	quarantine_close(q);
	/* The server's key opens the sealed copy of the item key. */
	snprintf(fpath, sizeof(fpath), "%s/quarantine/%s.meta", dir, id);
	meta = (unsigned char *)util_read_file(fpath, 1 << 20, &len);
	CHECK(meta && quarantine_meta_open(meta, len, id, key, item_key, &r, err,
					   sizeof(err)) == AERR_OK);
	quarantine_record_free(&r);
	CHECK(meta && meta[40] == 1 &&
	      crypto_box_seal_open(unsealed, meta + 113, crypto_box_SEALBYTES + 32, pk, sk) == 0 &&
	      memcmp(unsealed, item_key, 32) == 0);
	free(meta);
	/* A key file others can read is refused. */
	chmod(kpath, 0644);
	CHECK(quarantine_open(dir, NULL, NULL, &q, err, sizeof(err)) == AERR_IO);
	CHECK_STR_CONTAINS(err, "quarantine.key");
	free(k1);
	free(path);
}

int main(int argc, char **argv)
{
	const char *base;
	struct quarantine *q;
	int rc;

	/* "test_quarantine unit-caps": as the agent's unit runs it. */
	if (geteuid() == 0 && argc > 1 && strcmp(argv[1], "unit-caps") == 0)
		unitcaps_apply(UNIT_FILE);
	if ((rc = test_private_mounts()) != 0)
		return rc;
	base = test_tmpdir();
	snprintf(fs_a, sizeof(fs_a), "%s/a", base);
	snprintf(fs_b, sizeof(fs_b), "%s/b", base);
	snprintf(fs_c, sizeof(fs_c), "%s/c", base);
	snprintf(fs_d, sizeof(fs_d), "%s/d", base);
	snprintf(fs_small, sizeof(fs_small), "%s/small", base);
	test_mount_tmpfs(fs_a, "size=64m");
	test_mount_tmpfs(fs_b, "size=64m");
	test_mount_tmpfs(fs_c, "size=64m");
	test_mount_tmpfs(fs_d, "size=1m");
	test_mount_tmpfs(fs_small, "size=512k");
	snprintf(state, sizeof(state), "%s/state", fs_b);
	mkdir(state, 0700);
	/* fs_c has no usable vault: a hostile file holds the name. */
	free(test_write(fs_c, ".ward-quarantine", "x", 1));
	q = open_q(NULL);
	quarantine_close(q);

	test_roundtrip();
	test_overwrite();
	test_tampering();
	test_refused();
	test_cross_filesystem();
	test_full_disk();
	test_recover_bad_intent();
	test_kill_every_step(false, 100);
	test_kill_every_step(false, 150000);
	test_kill_every_step(true, 100);
	test_kill_every_step(true, 150000);
	test_kill_restore_every_step(false, 100);
	test_kill_restore_every_step(false, 150000);
	test_kill_restore_every_step(true, 150000);
	test_prune();
	test_registry();
	test_configured_vaults();
	test_key_and_server_seal();

	umount2(fs_a, MNT_DETACH);
	umount2(fs_b, MNT_DETACH);
	umount2(fs_c, MNT_DETACH);
	umount2(fs_d, MNT_DETACH);
	umount2(fs_small, MNT_DETACH);
	return check_finish();
}
