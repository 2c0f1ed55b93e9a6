/* test_action.c -- first and second actions on tmpfs filesystems the
 * test mounts in a private mount namespace: nothing is done on an error,
 * timeout or unverified verdict; quarantine, delete, rename and pass; the
 * PUA policy; a full disk makes the second action run; a file changed,
 * gone, or turned into a symbolic link is left alone and the second
 * action is not tried; a directory replaced by a symbolic link after the
 * scan is not followed; a detection inside an archive (the real engine,
 * EICAR in a tar) acts on the archive. Needs root (mounts). */
#include <fcntl.h>
#include <sys/stat.h>

#include "agent/action.h"
#include "check.h"
#include "engine/engine.h"
#include "mounts.h"

static char fs_a[600], fs_small[600], state[620];
static const unsigned char test_key[QUARANTINE_KEY_BYTES] = "ward test action key, 32 bytes!";
static const char eicar[] =
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/* The scan's view of dir/name: a directory descriptor and the identity. */
static struct action_target target(const char *dir, const char *name)
{
	struct action_target t = { .name = name };
	struct stat st;

	t.dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fstatat(t.dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		t.dev = st.st_dev;
		t.ino = st.st_ino;
	}
	return t;
}

static struct action_policy policy(enum action_kind first, enum action_kind second)
{
	struct action_policy p = { first, second, first, second };

	return p;
}

static struct quarantine_detection detection(const char *const *names, size_t n)
{
	struct quarantine_detection d = { .names = names, .n_names = n, .component = "ward-main",
					  .version = "7", .source = QUARANTINE_SOURCE_SCAN_NOW };

	return d;
}

static void remove_in(const char *dir, const char *name)
{
	char path[800];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

static bool exists(const char *dir, const char *name)
{
	char path[800];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static const char *const malware[] = { "Win.Trojan.Agent-1" };

static void test_never_on_error(struct quarantine *q)
{
	const enum action_verdict verdicts[] = { ACTION_VERDICT_ERROR, ACTION_VERDICT_TIMEOUT,
						 ACTION_VERDICT_UNVERIFIED, ACTION_VERDICT_CLEAN };
	struct quarantine_detection d = detection(malware, 1);
	struct action_policy p = policy(ACTION_DELETE, ACTION_DELETE);
	struct action_outcome out;
	size_t i;

	free(test_write(fs_a, "err", "data", 4));
	for (i = 0; i < 4; i++) {
		struct action_target t = target(fs_a, "err");

		CHECK(action_take(&p, q, verdicts[i], &t, &d, &out) == AERR_REFUSED);
		CHECK(out.first_result == AERR_REFUSED && !out.second_taken);
		CHECK_STR_CONTAINS(out.first_error, "not found infected");
		CHECK(exists(fs_a, "err"));
		close(t.dirfd);
	}
	remove_in(fs_a, "err");
}

static void test_each_action(struct quarantine *q)
{
	struct quarantine_detection d = detection(malware, 1);
	struct action_outcome out;
	struct action_policy p;
	struct action_target t;
	struct quarantine_record r;
	char err[512], renamed[700];
	struct stat st;

	free(test_write(fs_a, "q", eicar, sizeof(eicar) - 1));
	p = action_default_policy();
	t = target(fs_a, "q");
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	CHECK(out.first == ACTION_QUARANTINE && out.first_result == AERR_OK && !out.second_taken);
	CHECK(!exists(fs_a, "q") && strlen(out.quarantine_id) == QUARANTINE_ID_LEN);
	CHECK(quarantine_get(q, out.quarantine_id, &r, err, sizeof(err)) == AERR_OK);
	CHECK(r.source == QUARANTINE_SOURCE_SCAN_NOW && r.n_names == 1);
	{
		json_t *j = json_object();

		CHECK(action_outcome_json(&out, j) == 0);
		CHECK_STR_EQ(json_string_value(json_object_get(j, "action")), "quarantine");
		CHECK_STR_EQ(json_string_value(json_object_get(j, "action_result")), "ok");
		CHECK_STR_EQ(json_string_value(json_object_get(j, "quarantine")),
			     out.quarantine_id);
		CHECK(!json_object_get(j, "second_action") && !json_object_get(j, "action_error"));
		json_decref(j);
	}
	quarantine_record_free(&r);
	close(t.dirfd);

	free(test_write(fs_a, "d", eicar, sizeof(eicar) - 1));
	p = policy(ACTION_DELETE, ACTION_PASS);
	t = target(fs_a, "d");
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	CHECK(!exists(fs_a, "d") && out.quarantine_id[0] == '\0');
	close(t.dirfd);

	free(test_write(fs_a, "r", eicar, sizeof(eicar) - 1));
	p = policy(ACTION_RENAME, ACTION_PASS);
	t = target(fs_a, "r");
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	snprintf(renamed, sizeof(renamed), "%s/r" ACTION_SUFFIX, fs_a);
	CHECK(!exists(fs_a, "r") && stat(renamed, &st) == 0 && st.st_ino == t.ino);
	close(t.dirfd);
	/* The new name taken: rename fails, the second action deletes. */
	free(test_write(fs_a, "r", eicar, sizeof(eicar) - 1));
	p = policy(ACTION_RENAME, ACTION_DELETE);
	t = target(fs_a, "r");
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	CHECK(out.first_result == AERR_IO && out.second_taken && out.second_result == AERR_OK);
	CHECK_STR_CONTAINS(out.first_error, "taken");
	CHECK(!exists(fs_a, "r") && stat(renamed, &st) == 0);
	{
		json_t *j = json_object();

		CHECK(action_outcome_json(&out, j) == 0);
		CHECK_STR_EQ(json_string_value(json_object_get(j, "action")), "rename");
		CHECK_STR_EQ(json_string_value(json_object_get(j, "action_result")), "failed");
		CHECK_STR_CONTAINS(json_string_value(json_object_get(j, "action_error")), "taken");
		CHECK_STR_EQ(json_string_value(json_object_get(j, "second_action")), "delete");
		CHECK_STR_EQ(json_string_value(json_object_get(j, "second_result")), "ok");
		CHECK(!json_object_get(j, "quarantine"));
		json_decref(j);
	}
	unlink(renamed);
	close(t.dirfd);

	free(test_write(fs_a, "p", eicar, sizeof(eicar) - 1));
	p = policy(ACTION_PASS, ACTION_DELETE);
	t = target(fs_a, "p");
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	CHECK(exists(fs_a, "p") && !out.second_taken);
	remove_in(fs_a, "p");
	close(t.dirfd);
	/* No temporary names left behind. */
	CHECK(test_count_prefixed(fs_a, ".ward-") == 0);
}

static void test_pua_policy(struct quarantine *q)
{
	static const char *const pua[] = { "PUA.Win.Packer.Upx-1", "PUA.Win.Tool.Nc" };
	static const char *const mixed[] = { "PUA.Win.Tool.Nc", "Win.Trojan.Agent-1" };
	struct action_policy p = { .malware_first = ACTION_DELETE, .malware_second = ACTION_PASS,
				   .pua_first = ACTION_RENAME, .pua_second = ACTION_PASS };
	struct quarantine_detection d = detection(pua, 2);
	struct action_outcome out;
	struct action_target t;
	char renamed[700];

	free(test_write(fs_a, "pua", eicar, 10));
	t = target(fs_a, "pua");
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	CHECK(out.pua && out.first == ACTION_RENAME);
	snprintf(renamed, sizeof(renamed), "%s/pua" ACTION_SUFFIX, fs_a);
	CHECK(access(renamed, F_OK) == 0);
	unlink(renamed);
	close(t.dirfd);
	d = detection(mixed, 2);
	free(test_write(fs_a, "mixed", eicar, 10));
	t = target(fs_a, "mixed");
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	CHECK(!out.pua && out.first == ACTION_DELETE && !exists(fs_a, "mixed"));
	close(t.dirfd);
	CHECK(action_is_pua(pua, 2) && !action_is_pua(mixed, 2) && !action_is_pua(pua, 0));
	{
		enum action_kind k;

		CHECK(action_parse("rename", &k) && k == ACTION_RENAME);
		CHECK(!action_parse("clean", &k));
		CHECK_STR_EQ(action_name(ACTION_QUARANTINE), "quarantine");
	}
}

/* The file is replaced, removed or turned into a symbolic link after the
 * scan: nothing is done to what has the name now, and no second action. */
static void test_changed_gone_symlink(struct quarantine *q)
{
	struct quarantine_detection d = detection(malware, 1);
	struct action_policy p = policy(ACTION_QUARANTINE, ACTION_DELETE);
	const enum action_kind firsts[] = { ACTION_QUARANTINE, ACTION_DELETE, ACTION_RENAME };
	struct action_outcome out;
	struct action_target t;
	char path[700], other[700];
	size_t i;

	for (i = 0; i < 3; i++) {
		p.malware_first = firsts[i];
		free(test_write(fs_a, "c", eicar, 10));
		t = target(fs_a, "c");
		snprintf(path, sizeof(path), "%s/c", fs_a);
		unlink(path);
		free(test_write(fs_a, "c", "innocent", 8));
		CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_CHANGED);
		CHECK_STR_CONTAINS(out.first_error, "changed since it was scanned");
		CHECK(!out.second_taken && exists(fs_a, "c"));

		unlink(path);
		CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_GONE);
		CHECK_STR_CONTAINS(out.first_error, "gone");
		CHECK(!out.second_taken);

		/* A symbolic link to the scanned file: not followed. */
		snprintf(other, sizeof(other), "%s/real", fs_a);
		free(test_write(fs_a, "real", eicar, 10));
		CHECK(symlink(other, path) == 0);
		close(t.dirfd);
		t = target(fs_a, "real");
		t.name = "c";
		CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_TYPE);
		CHECK_STR_CONTAINS(out.first_error, "symbolic link");
		CHECK(!out.second_taken && exists(fs_a, "real") && exists(fs_a, "c"));
		unlink(path);
		unlink(other);
		close(t.dirfd);
	}
}

/* The scanned file's directory is moved away and a symbolic link put in
 * its place: the action follows the directory descriptor, never the link. */
static void test_directory_swapped(struct quarantine *q)
{
	struct quarantine_detection d = detection(malware, 1);
	struct action_policy p = policy(ACTION_DELETE, ACTION_PASS);
	char dir[700], moved[700], elsewhere[700];
	struct action_outcome out;
	struct action_target t;

	snprintf(dir, sizeof(dir), "%s/dir", fs_a);
	snprintf(moved, sizeof(moved), "%s/dir.moved", fs_a);
	snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", fs_a);
	mkdir(dir, 0755);
	mkdir(elsewhere, 0755);
	free(test_write(dir, "f", eicar, 10));
	free(test_write(elsewhere, "f", "precious", 8));
	t = target(dir, "f");
	CHECK(rename(dir, moved) == 0 && symlink(elsewhere, dir) == 0);
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	CHECK(!exists(moved, "f") && exists(elsewhere, "f"));
	close(t.dirfd);
	/* The same with quarantine: the record names where the file really was. */
	free(test_write(moved, "g", eicar, 10));
	unlink(dir);
	CHECK(rename(moved, dir) == 0);
	t = target(dir, "g");
	CHECK(rename(dir, moved) == 0 && symlink(elsewhere, dir) == 0);
	p = policy(ACTION_QUARANTINE, ACTION_PASS);
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	CHECK(!exists(moved, "g") && exists(elsewhere, "f"));
	{
		struct quarantine_record r;
		char err[512], want[800];

		snprintf(want, sizeof(want), "%s/g", moved);
		CHECK(quarantine_get(q, out.quarantine_id, &r, err, sizeof(err)) == AERR_OK);
		CHECK_STR_EQ(r.path, want);
		quarantine_record_free(&r);
	}
	close(t.dirfd);
}

/* A full disk makes quarantine fail with the file in place; the second
 * action then runs (delete for malware, pass for PUA). */
static void test_full_disk(struct quarantine *q)
{
	static const char *const pua[] = { "PUA.Win.Tool.Nc" };
	struct quarantine_detection d = detection(malware, 1);
	struct action_policy p = action_default_policy();
	struct action_outcome out;
	struct action_target t;
	char vault[700];
	int nfill;
	unsigned char *big = calloc(1, 150000);

	memcpy(big, eicar, sizeof(eicar) - 1);
	free(test_write(fs_small, "big", big, 150000));
	free(big);
	snprintf(vault, sizeof(vault), "%s/.ward-quarantine", fs_small);
	mkdir(vault, 0700);
	nfill = test_fill(fs_small);
	d = detection(pua, 1);
	t = target(fs_small, "big");
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	CHECK(out.first_result == AERR_IO && out.second_taken && out.second == ACTION_PASS);
	CHECK_STR_CONTAINS(out.first_error, "No space left on device");
	CHECK(exists(fs_small, "big"));
	d = detection(malware, 1);
	CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
	CHECK(out.first_result == AERR_IO && out.second_taken && out.second == ACTION_DELETE &&
	      out.second_result == AERR_OK);
	CHECK(!exists(fs_small, "big"));
	close(t.dirfd);
	test_unfill(fs_small, nfill);
}

/* One ustar member holding data, then the end-of-archive blocks. */
static size_t tar_one(unsigned char *out, const char *name, const char *data, size_t n)
{
	unsigned sum = 0;
	size_t i;

	memset(out, 0, 512 * 5);
	snprintf((char *)out, 100, "%s", name);
	memcpy(out + 100, "0000644", 8);
	memcpy(out + 108, "0000000", 8);
	memcpy(out + 116, "0000000", 8);
	snprintf((char *)out + 124, 12, "%011zo", n);
	memcpy(out + 136, "00000000000", 12);
	memset(out + 148, ' ', 8);
	out[156] = '0';
	memcpy(out + 257, "ustar", 6);
	memcpy(out + 263, "00", 2);
	for (i = 0; i < 512; i++)
		sum += out[i];
	snprintf((char *)out + 148, 8, "%06o", sum);
	memcpy(out + 512, data, n);
	return 512 * 4;
}

static void test_archive(struct quarantine *q)
{
	struct engine_config cfg = { 0 };
	struct engine_result res = { 0 };
	struct action_policy p = action_default_policy();
	struct quarantine_detection d;
	struct action_outcome out;
	struct action_target t;
	unsigned char tar[512 * 5];
	char msg[ENGINE_ERRLEN], err[512];
	enum engine_err ee;
	struct engine *e;
	size_t len = tar_one(tar, "inner/eicar.com", eicar, sizeof(eicar) - 1);
	int fd;

	engine_limits_default(&cfg.limits);
	e = engine_new(&cfg, &ee, msg, sizeof(msg));
	CHECK(e && engine_load_builtin(e, msg, sizeof(msg)) == ENGINE_OK &&
	      engine_compile(e, msg, sizeof(msg)) == ENGINE_OK);
	free(test_write(fs_a, "bundle.tar", tar, len));
	t = target(fs_a, "bundle.tar");
	fd = openat(t.dirfd, "bundle.tar", O_RDONLY | O_NOFOLLOW);
	CHECK(e && engine_scan_fd(e, fd, "bundle.tar", 0, NULL, NULL, &res, msg, sizeof(msg)) ==
	      ENGINE_OK && res.infected && res.nnames == 1);
	close(fd);
	if (res.nnames == 1) {
		struct quarantine_record r;

		d = detection((const char *const *)res.names, res.nnames);
		CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
		CHECK(!exists(fs_a, "bundle.tar"));
		CHECK(quarantine_get(q, out.quarantine_id, &r, err, sizeof(err)) == AERR_OK);
		CHECK(r.size == len);
		CHECK_STR_CONTAINS(r.names[0], "Eicar-Test-Signature");
		quarantine_record_free(&r);
	}
	close(t.dirfd);
	engine_result_clear(&res);
	engine_free(e);
}

int main(void)
{
	struct quarantine *q = NULL;
	const char *base;
	char err[512];
	int rc;

	if ((rc = test_private_mounts()) != 0)
		return rc;
	base = test_tmpdir();
	snprintf(fs_a, sizeof(fs_a), "%s/a", base);
	snprintf(fs_small, sizeof(fs_small), "%s/small", base);
	test_mount_tmpfs(fs_a, "size=16m");
	test_mount_tmpfs(fs_small, "size=512k");
	snprintf(state, sizeof(state), "%s/state", fs_a);
	mkdir(state, 0700);
	if (quarantine_open(state, test_key, NULL, &q, err, sizeof(err)) != AERR_OK) {
		fprintf(stderr, "quarantine_open: %s\n", err);
		return 1;
	}
	test_never_on_error(q);
	test_each_action(q);
	test_pua_policy(q);
	test_changed_gone_symlink(q);
	test_directory_swapped(q);
	test_full_disk(q);
	test_archive(q);
	/* An infected file in the agent's own vault (say an item's plaintext
	 * seen by a scan while it is encrypted) is never acted upon. */
	{
		static const char *const names[] = { "Win.Trojan.Agent-1" };
		struct quarantine_detection d = detection(names, 1);
		struct action_policy p = policy(ACTION_DELETE, ACTION_DELETE);
		struct action_outcome out;
		struct action_target t;
		char vault[700];

		snprintf(vault, sizeof(vault), "%s/quarantine", state);
		free(test_write(vault, "0123.plain", eicar, 10));
		t = target(vault, "0123.plain");
		CHECK(action_take(&p, q, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_REFUSED);
		CHECK_STR_CONTAINS(out.first_error, "quarantine vault");
		CHECK(exists(vault, "0123.plain"));
		p = policy(ACTION_QUARANTINE, ACTION_PASS);
		CHECK(quarantine_put(q, t.dirfd, "0123.plain", t.dev, t.ino, &d, NULL, err,
				     sizeof(err)) == AERR_REFUSED);
		remove_in(vault, "0123.plain");
		close(t.dirfd);
	}
	/* With no quarantine at all, the second action still runs. */
	{
		static const char *const names[] = { "Win.Trojan.Agent-1" };
		struct quarantine_detection d = detection(names, 1);
		struct action_policy p = action_default_policy();
		struct action_outcome out;
		struct action_target t;

		free(test_write(fs_a, "noq", eicar, 10));
		t = target(fs_a, "noq");
		CHECK(action_take(&p, NULL, ACTION_VERDICT_INFECTED, &t, &d, &out) == AERR_OK);
		CHECK(out.second_taken && !exists(fs_a, "noq"));
		close(t.dirfd);
	}
	quarantine_close(q);
	umount2(fs_a, MNT_DETACH);
	umount2(fs_small, MNT_DETACH);
	return check_finish();
}
