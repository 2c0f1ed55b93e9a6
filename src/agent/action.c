/* action.c -- first and second actions on infected files. See action.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "agent/action.h"
#include "common/log.h"
#include "common/util.h"

static const char *const kind_names[] = { "quarantine", "delete", "rename", "pass" };

struct action_policy action_default_policy(void)
{
	struct action_policy p = {
		.malware_first = ACTION_QUARANTINE, .malware_second = ACTION_DELETE,
		.pua_first = ACTION_QUARANTINE, .pua_second = ACTION_PASS,
	};

	return p;
}

bool action_parse(const char *s, enum action_kind *out)
{
	size_t i;

	for (i = 0; s && i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum action_kind)i;
			return true;
		}
	return false;
}

const char *action_name(enum action_kind k)
{
	return (unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[k] : "?";
}

bool action_is_pua(const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strncmp(names[i], "PUA.", 4) != 0)
			return false;
	return n > 0;
}

/* Checks that entry name of dirfd is still the regular file dev/ino. */
static enum aerr check_entry(const struct action_target *t, const char *name, char *msg,
			     size_t len)
{
	struct stat st;

	if (fstatat(t->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		int saved = errno;

		snprintf(msg, len, "%s", saved == ENOENT ? "gone: it no longer exists" :
			 strerror(saved));
		return saved == ENOENT ? AERR_GONE : AERR_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(msg, len, "refused: %s", S_ISLNK(st.st_mode) ?
			 "it is a symbolic link now (never followed)" : "it is not a regular file");
		return AERR_TYPE;
	}
	if (st.st_dev != t->dev || st.st_ino != t->ino) {
		snprintf(msg, len, "changed since it was scanned (another file has its name now)");
		return AERR_CHANGED;
	}
	return AERR_OK;
}

/* Renames from to to in the target's directory, then checks that what
 * moved is the file scanned, moving it back when it is not. */
static enum aerr move_checked(const struct action_target *t, const char *from, const char *to,
			      char *msg, size_t len)
{
	enum aerr e = check_entry(t, from, msg, len);

	if (e != AERR_OK)
		return e;
	if (renameat2(t->dirfd, from, t->dirfd, to, RENAME_NOREPLACE) != 0) {
		e = errno == ENOENT ? AERR_GONE : AERR_IO;
		snprintf(msg, len, "%s%s%s", e == AERR_GONE ? "gone: " : "renaming it: ",
			 strerror(errno), errno == EEXIST ? " (the new name is taken)" : "");
		return e;
	}
	if (check_entry(t, to, msg, len) != AERR_OK) {
		/* Replaced between the check and the rename: put it back. */
		if (renameat2(t->dirfd, to, t->dirfd, from, RENAME_NOREPLACE) != 0)
			log_msg(LOG_LVL_ERROR, "action: cannot rename %s back to %s: %s", to, from,
				strerror(errno));
		snprintf(msg, len, "changed since it was scanned (replaced during the action)");
		return AERR_CHANGED;
	}
	fsync(t->dirfd);
	return AERR_OK;
}

static enum aerr do_rename(const struct action_target *t, char *msg, size_t len)
{
	char to[NAME_MAX + 16];

	if (strlen(t->name) + strlen(ACTION_SUFFIX) > NAME_MAX) {
		snprintf(msg, len, "its name is too long to take the suffix %s", ACTION_SUFFIX);
		return AERR_IO;
	}
	snprintf(to, sizeof(to), "%s%s", t->name, ACTION_SUFFIX);
	return move_checked(t, t->name, to, msg, len);
}

/* Deletes through a private temporary name, so that what is unlinked is
 * certainly the file scanned. */
static enum aerr do_delete(const struct action_target *t, char *msg, size_t len)
{
	unsigned char raw[8];
	char hex[17], tmp[64];
	enum aerr e;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
	snprintf(tmp, sizeof(tmp), ".ward-delete-%s", hex);
	e = move_checked(t, t->name, tmp, msg, len);
	if (e != AERR_OK)
		return e;
	if (unlinkat(t->dirfd, tmp, 0) != 0) {
		snprintf(msg, len, "deleting it: %s", strerror(errno));
		if (renameat2(t->dirfd, tmp, t->dirfd, t->name, RENAME_NOREPLACE) != 0)
			log_msg(LOG_LVL_ERROR, "action: cannot rename %s back to %s: %s", tmp,
				t->name, strerror(errno));
		return AERR_IO;
	}
	fsync(t->dirfd);
	return AERR_OK;
}

static enum aerr act(enum action_kind k, struct quarantine *q, const struct action_target *t,
		     const struct quarantine_detection *det, struct action_outcome *out, char *msg,
		     size_t len)
{
	struct quarantine_record r;
	enum aerr e;

	switch (k) {
	case ACTION_QUARANTINE:
		if (!q) {
			snprintf(msg, len, "no quarantine is available");
			return AERR_IO;
		}
		e = quarantine_put(q, t->dirfd, t->name, t->dev, t->ino, det, &r, msg, len);
		if (e == AERR_OK) {
			snprintf(out->quarantine_id, sizeof(out->quarantine_id), "%s", r.id);
			quarantine_record_free(&r);
		}
		return e;
	case ACTION_DELETE:
		return do_delete(t, msg, len);
	case ACTION_RENAME:
		return do_rename(t, msg, len);
	case ACTION_PASS:
		return AERR_OK;
	}
	snprintf(msg, len, "unknown action %d", (int)k);
	return AERR_REFUSED;
}

/* Whether a failure leaves the file scanned where it was, so that the
 * second action would act on that same file. */
static bool second_applies(enum aerr e)
{
	return e == AERR_IO || e == AERR_NOMEM;
}

enum aerr action_take(const struct action_policy *p, struct quarantine *q, enum action_verdict v,
		      const struct action_target *t, const struct quarantine_detection *det,
		      struct action_outcome *out)
{
	char esc[512];

	memset(out, 0, sizeof(*out));
	out->first_result = out->second_result = AERR_OK;
	if (v != ACTION_VERDICT_INFECTED || !det || det->n_names == 0) {
		snprintf(out->first_error, sizeof(out->first_error), "refused: %s",
			 v == ACTION_VERDICT_INFECTED ? "no detection name given" :
			 "no action is taken on a file not found infected (an error, a timeout "
			 "or an unverified verdict)");
		out->first_result = AERR_REFUSED;
		out->first = ACTION_PASS;
		return AERR_REFUSED;
	}
	if (q && quarantine_in_vault(q, t->dirfd)) {
		snprintf(out->first_error, sizeof(out->first_error), "refused: the file is in a "
			 "quarantine vault");
		out->first_result = AERR_REFUSED;
		out->first = ACTION_PASS;
		return AERR_REFUSED;
	}
	util_escape(esc, sizeof(esc), t->path ? t->path : t->name);
	out->pua = action_is_pua(det->names, det->n_names);
	out->first = out->pua ? p->pua_first : p->malware_first;
	out->second = out->pua ? p->pua_second : p->malware_second;
	out->first_result = act(out->first, q, t, det, out, out->first_error,
				sizeof(out->first_error));
	if (out->first_result == AERR_OK) {
		log_msg(LOG_LVL_INFO, "action: %s %s (%s): %s", action_name(out->first), esc,
			det->names[0], "ok");
		return AERR_OK;
	}
	log_msg(LOG_LVL_WARN, "action: %s %s (%s) failed: %s", action_name(out->first), esc,
		det->names[0], out->first_error);
	if (!second_applies(out->first_result) || out->second == out->first)
		return out->first_result;
	out->second_taken = true;
	out->second_result = act(out->second, q, t, det, out, out->second_error,
				 sizeof(out->second_error));
	if (out->second_result == AERR_OK)
		log_msg(LOG_LVL_INFO, "action: second action %s %s (%s): ok",
			action_name(out->second), esc, det->names[0]);
	else
		log_msg(LOG_LVL_WARN, "action: second action %s %s (%s) failed: %s",
			action_name(out->second), esc, det->names[0], out->second_error);
	return out->second_result;
}

int action_outcome_json(const struct action_outcome *out, json_t *det)
{
	bool ok = out->first_result == AERR_OK;
	int rc = 0;

	if (out->first_result == AERR_REFUSED)
		return 0;
	rc |= json_object_set_new(det, "action", json_string(action_name(out->first)));
	rc |= json_object_set_new(det, "action_result", json_string(ok ? "ok" : "failed"));
	if (!ok) {
		char *text = out->second_taken && out->second_result != AERR_OK ?
			     util_printf("%s; second: %s", out->first_error, out->second_error) :
			     strdup(out->first_error);

		rc |= text ? json_object_set_new(det, "action_error", util_json_bytes(text)) : -1;
		free(text);
	}
	if (out->second_taken) {
		rc |= json_object_set_new(det, "second_action",
					  json_string(action_name(out->second)));
		rc |= json_object_set_new(det, "second_result", json_string(
			out->second_result == AERR_OK ? "ok" : "failed"));
	}
	if (out->quarantine_id[0])
		rc |= json_object_set_new(det, "quarantine", json_string(out->quarantine_id));
	return rc ? -1 : 0;
}
