/* test_vault.c -- the vault service on a tmpfs the test mounts in a
 * private mount namespace: the respond step quarantines by the policy in
 * effect and fills the detection's wire members (PUA left by its own
 * policy, "deny" when block mode denied and the policy passed), the list,
 * a restore with exclude (the path and what is under it excluded, kept
 * across a reopen), a delete, unknown ids; detections queued apart from
 * the scans' lock. Needs root (mounts). */
#include <fcntl.h>
#include <sys/stat.h>

#include "agent/astate.h"
#include "agent/components.h"
#include "agent/reports.h"
#include "agent/vault.h"
#include "check.h"
#include "mounts.h"

static const char eicar[] =
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/* Responds to dir/name found as names; the report (caller releases). */
static json_t *respond(struct vault *v, const char *dir, const char *name,
		       const char *const *names, bool denied)
{
	struct vault_detection d = { .source = QUARANTINE_SOURCE_SCAN_NOW, .name = name,
				     .names = names, .nnames = 1, .task = 7, .denied = denied };
	char path[1200];
	struct stat st;
	json_t *out = json_object();

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	d.path = path;
	d.dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fstatat(d.dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		d.dev = st.st_dev;
		d.ino = st.st_ino;
	}
	vault_respond(v, &d, out);
	close(d.dirfd);
	return out;
}

int main(void)
{
	static const char *const malware[] = { "Eicar-Test" }, *const pua[] = { "PUA.Tool" };
	struct agent a = { 0 };
	struct vault *v;
	json_t *r, *list, *settings;
	char base[600], files[700], path[800], err[512], id[64];
	int rc;

	if ((rc = test_private_mounts()) != 0)
		return rc;
	snprintf(base, sizeof(base), "%s/fs", test_tmpdir());
	test_mount_tmpfs(base, "size=16m");
	snprintf(files, sizeof(files), "%s/files", base);
	mkdir(files, 0755);
	a.cfg.state_dir = util_printf("%s/state", base);
	mkdir(a.cfg.state_dir, 0700);
	CHECK(astate_init(&a));
	a.comps = components_new();
	v = vault_open(&a);
	CHECK(v != NULL);

	/* The defaults: malware quarantined, the report's members. */
	free(test_write(files, "eicar.com", eicar, sizeof(eicar) - 1));
	r = respond(v, files, "eicar.com", malware, false);
	snprintf(path, sizeof(path), "%s/eicar.com", files);
	CHECK_STR_EQ(json_string_value(json_object_get(r, "path")), path);
	CHECK_STR_EQ(json_string_value(json_object_get(r, "name")), "Eicar-Test");
	CHECK_STR_EQ(json_string_value(json_object_get(r, "source")), "scan_now");
	CHECK_STR_EQ(json_string_value(json_object_get(r, "action")), "quarantine");
	CHECK_STR_EQ(json_string_value(json_object_get(r, "action_result")), "ok");
	CHECK(json_integer_value(json_object_get(r, "task")) == 7);
	CHECK(json_object_get(r, "deny") == NULL);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r, "quarantine")));
	CHECK(strlen(id) == QUARANTINE_ID_LEN);
	CHECK(access(path, F_OK) != 0);
	json_decref(r);
	list = vault_list(v, err, sizeof(err));
	CHECK(json_array_size(list) == 1);
	CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(list, 0), "id")), id);
	json_decref(list);

	/* PUA passed by its own policy; with block mode's denial, "deny". */
	settings = json_pack("{ss}", "action.pua.first", "pass");
	vault_configure(v, settings);
	json_decref(settings);
	free(test_write(files, "tool", "tool", 4));
	r = respond(v, files, "tool", pua, true);
	CHECK_STR_EQ(json_string_value(json_object_get(r, "action")), "deny");
	CHECK(json_object_get(r, "quarantine") == NULL);
	json_decref(r);
	snprintf(path, sizeof(path), "%s/tool", files);
	CHECK(access(path, F_OK) == 0);

	/* Restored and excluded: the path and what is under it, after a
	 * reopen too; a second restore or a delete finds nothing. */
	CHECK(vault_restore(v, "00000000000000000000000000000000", false, true, err,
			    sizeof(err)) == AERR_NOTFOUND);
	CHECK(vault_restore(v, id, false, true, err, sizeof(err)) == AERR_OK);
	snprintf(path, sizeof(path), "%s/eicar.com", files);
	CHECK(access(path, F_OK) == 0);
	CHECK(vault_excluded(v, path));
	snprintf(path, sizeof(path), "%s/eicar.com/x", files);
	CHECK(vault_excluded(v, path));
	snprintf(path, sizeof(path), "%s/eicar.co", files);
	CHECK(!vault_excluded(v, path));
	CHECK(vault_delete(v, id, err, sizeof(err)) == AERR_NOTFOUND);
	vault_close(v);
	v = vault_open(&a);
	snprintf(path, sizeof(path), "%s/eicar.com", files);
	CHECK(vault_excluded(v, path));

	/* Quarantined again, then deleted for good. */
	r = respond(v, files, "eicar.com", malware, false);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r, "quarantine")));
	json_decref(r);
	CHECK(vault_delete(v, id, err, sizeof(err)) == AERR_OK);
	list = vault_list(v, err, sizeof(err));
	CHECK(json_array_size(list) == 0);
	json_decref(list);
	vault_close(v);

	/* Detections queued while a scan holds the scans' lock. */
	{
		int lock = reports_lock(&a, true);
		json_t *det = json_pack("[{ss}{ss}]", "name", "x", "name", "y"), *kept;
		char *live = astate_file(&a, "detections-live.json");

		CHECK(reports_queue_detections(&a, det) == 0);
		CHECK(reports_queue_detections(&a, det) == 0);
		kept = reports_load_list(live);
		CHECK(json_array_size(kept) == 4);
		json_decref(kept);
		json_decref(det);
		free(live);
		close(lock);
	}
	components_free(a.comps);
	free(a.cfg.state_dir);
	astate_free(&a);
	umount2(base, MNT_DETACH);
	return check_finish();
}
