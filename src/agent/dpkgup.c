/* dpkgup.c -- upgrades of an agent installed by its Debian package (see
 * dpkgup.h). */
#include "agent/dpkgup.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/upgrade.h"
#include "common/log.h"
#include "common/util.h"

#define HELPER_UNIT "ward-agent-upgrade.service"
#define SYSTEMD_RUN "/usr/bin/systemd-run"
#define SYSTEMCTL "/usr/bin/systemctl"
#define DPKG "/usr/bin/dpkg"
#define DPKG_QUERY "/usr/bin/dpkg-query"
#define PACKAGE "ward-agent"
#define KEEP_DIR "packages"
#define HELPER_FILE "upgrade/ward-agent-helper"
#define DROPIN_DIR "/etc/systemd/system"
#define DROPIN_NAME "ward-agent-upgrade.conf"
#define MAX_PROGRAM (256 << 20)
/* One dpkg -i at most this long. */
#define DPKG_SECONDS 600
/* dpkg's lock held by another (apt, unattended-upgrades): waited this long. */
#define LOCK_SECONDS 300
/* Restarts of the agent's service (its Restart=) within the trial that
 * make the new version one that crashes. */
#define CRASH_RESTARTS 2
/* Steps one helper takes at most (install, trial, commit or go back). */
#define MAX_STEPS 8

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

bool dpkgup_available(char *why, size_t len)
{
	struct stat st;

	if (stat("/run/systemd/system", &st) != 0 || !S_ISDIR(st.st_mode))
		util_set_msg(why, len, "systemd does not run this host");
	else if (!getenv("INVOCATION_ID"))
		util_set_msg(why, len, "the agent does not run as its systemd service "
			     "(ward-agent.service)");
	else if (access(SYSTEMD_RUN, X_OK) != 0 || access(SYSTEMCTL, X_OK) != 0 ||
		 access(DPKG, X_OK) != 0)
		util_set_msg(why, len, "%s, %s or %s is missing", SYSTEMD_RUN, SYSTEMCTL, DPKG);
	else
		return true;
	return false;
}

bool dpkgup_installed(char *version, size_t len, bool *configured)
{
	char *argv[] = { DPKG_QUERY, "-W", "-f", "${db:Status-Status} ${Version}\n", PACKAGE,
			 NULL };
	char out[160];
	int status;

	version[0] = '\0';
	*configured = false;
	if (access(DPKG_QUERY, X_OK) != 0)
		return false;
	status = util_run(argv, 30, out, sizeof(out));
	/* Removed but its configuration kept, or never there: not installed. */
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    strncmp(out, "not-installed ", 14) == 0 || strncmp(out, "config-files ", 13) == 0 ||
	    !strchr(out, ' '))
		return false;
	out[strcspn(out, "\n")] = '\0';
	/* (Triggers still to run leave the package configured.) */
	*configured = strncmp(out, "installed ", 10) == 0 ||
		      strncmp(out, "triggers-pending ", 17) == 0 ||
		      strncmp(out, "triggers-awaited ", 17) == 0;
	snprintf(version, len, "%s", strchr(out, ' ') + 1);
	return version[0] != '\0';
}

char *dpkgup_kept(const struct agent *a, const char *version)
{
	char name[128];

	snprintf(name, sizeof(name), KEEP_DIR "/" PACKAGE "_%.63s.deb", version);
	return astate_file(a, name);
}

bool dpkgup_keep_only(const struct agent *a, const char *keep)
{
	char *dir = astate_file(a, KEEP_DIR), *path;
	struct dirent *de;
	DIR *d;

	if (!dir || (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
		free(dir);
		return false;
	}
	d = opendir(dir);
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || (keep && strcmp(de->d_name, keep) == 0))
			continue;
		path = util_path_join(dir, de->d_name);
		if (path)
			util_remove_tree(path);
		free(path);
	}
	if (d)
		closedir(d);
	free(dir);
	return true;
}

/* The systemd unit this process runs in (its cgroup's last part), into
 * out; ward-agent.service when it cannot be told. */
static void own_unit(char *out, size_t len)
{
	char *text = util_read_file("/proc/self/cgroup", 1 << 16, NULL), *line, *name;

	snprintf(out, len, PACKAGE ".service");
	for (line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 :
							     NULL) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		name = strrchr(line, '/');
		if (name && strlen(name + 1) > 8 && strlen(name + 1) < len &&
		    strcmp(name + strlen(name) - 8, ".service") == 0 &&
		    strspn(name + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789-_.@\\") == strlen(name + 1))
			snprintf(out, len, "%s", name + 1);
		break;
	}
	free(text);
}

bool dpkgup_prepare(struct agent *a, json_t *s, char *why, size_t len)
{
	char *helper = astate_file(a, HELPER_FILE), *program = NULL, *conf = NULL, unit[256];
	size_t n = 0;
	bool ok = false;

	/* The helper is the program that took the offer, which runs here:
	 * the new one may not. */
	program = util_read_file("/proc/self/exe", MAX_PROGRAM, &n);
	if (!helper || !program || util_replace_file(helper, program, n, 0700) != 0) {
		util_set_msg(why, len, "the helper's copy of this program (%s): %s",
			     helper ? helper : HELPER_FILE, strerror(errno));
		goto out;
	}
	if (a->conf_path && !(conf = realpath(a->conf_path, NULL))) {
		util_set_msg(why, len, "%s: %s", a->conf_path, strerror(errno));
		goto out;
	}
	own_unit(unit, sizeof(unit));
	if (json_object_set_new(s, "mode", json_string("dpkg")) != 0 ||
	    json_object_set_new(s, "unit", json_string(unit)) != 0 ||
	    json_object_set_new(s, "helper", json_string(helper)) != 0 ||
	    (conf && json_object_set_new(s, "config", json_string(conf)) != 0)) {
		util_set_msg(why, len, "out of memory");
		goto out;
	}
	ok = true;
out:
	free(conf);
	free(program);
	free(helper);
	return ok;
}

/* What systemd says of unit: its automatic restarts (NRestarts), how its
 * main process last ended (into ended, "" when it did not) and whether it
 * is active (or activating). False when systemctl cannot tell. */
static bool unit_show(const char *unit, long *restarts, char *ended, size_t len, bool *active)
{
	char *argv[] = { SYSTEMCTL, "show", "-p", "NRestarts", "-p", "ExecMainCode", "-p",
			 "ExecMainStatus", "-p", "ActiveState", "--", (char *)unit, NULL };
	char out[1024], *p;
	long code = 0, value = 0;
	int status = util_run(argv, 30, out, sizeof(out));

	*restarts = 0;
	*active = false;
	ended[0] = '\0';
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return false;
	for (p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, "NRestarts=", 10) == 0)
			*restarts = strtol(p + 10, NULL, 10);
		else if (strncmp(p, "ExecMainCode=", 13) == 0)
			code = strtol(p + 13, NULL, 10);
		else if (strncmp(p, "ExecMainStatus=", 15) == 0)
			value = strtol(p + 15, NULL, 10);
		else if (strncmp(p, "ActiveState=", 12) == 0)
			*active = strncmp(p + 12, "active\n", 7) == 0 ||
				  strncmp(p + 12, "activating\n", 11) == 0 ||
				  strncmp(p + 12, "reloading\n", 10) == 0;
	}
	/* ExecMainCode is the CLD_ code of waitid(): 1 exited, 2 killed, 3 dumped. */
	if (code == 1)
		snprintf(ended, len, "exited with status %ld", value);
	else if (code == 2 || code == 3)
		snprintf(ended, len, "was killed by signal %ld (%s)", value,
			 strsignal((int)value));
	return true;
}

bool dpkgup_launch(const json_t *s, char *why, size_t len)
{
	/* A helper killed (or failing to put the previous version back) is
	 * started again by systemd, and goes on from the record. */
	char *argv[16] = { SYSTEMD_RUN, "--unit=" HELPER_UNIT, "--collect", "--quiet",
			   "--description=Ward agent upgrade (dpkg)",
			   "--property=Restart=on-failure", "--property=RestartSec=10",
			   (char *)str(s, "helper") };
	char out[512], ended[80];
	long restarts;
	bool active;
	int i = 8, status;

	if (unit_show(HELPER_UNIT, &restarts, ended, sizeof(ended), &active) && active)
		return true;
	if (str(s, "config")[0]) {
		argv[i++] = "--config";
		argv[i++] = (char *)str(s, "config");
	}
	argv[i++] = "upgrade-dpkg";
	status = util_run(argv, 60, out, sizeof(out));
	if (status == 0)
		return true;
	out[strcspn(out, "\n")] = '\0';
	if (status < 0)
		util_set_msg(why, len, "systemd-run: %s", strerror(errno));
	else
		util_set_msg(why, len, "systemd-run could not start the helper: %s", out);
	return false;
}

void dpkgup_resume(struct agent *a)
{
	json_t *s = upgrade_record_load(a);
	const char *state = str(s, "state");
	char boot[64], why[600], version[64];
	bool configured = false, known;
	int lock = -1;

	if (!s || strcmp(str(s, "mode"), "dpkg") != 0)
		goto out;
	/* (dpkg's record, not this program's: the helper's copy runs this too.) */
	known = dpkgup_installed(version, sizeof(version), &configured);
	if (strcmp(state, "staged") == 0) {
		upgrade_boot_id(a, boot);
		if (strcmp(str(s, "needs"), "host") == 0 && strcmp(str(s, "boot_id"), boot) == 0) {
			log_msg(LOG_LVL_INFO, "upgrade: %s waits for this host's restart",
				str(s, "to"));
			goto out;
		}
		lock = upgrade_record_lock(a);
		json_decref(s);
		s = lock >= 0 ? upgrade_record_load(a) : NULL;
		if (!s || strcmp(str(s, "state"), "staged") != 0)
			goto out;
		if (known && strcmp(version, str(s, "from")) != 0) {
			/* The package manager put another version in meanwhile:
			 * what was staged is dropped, and the offer reported so. */
			util_set_msg(why, sizeof(why), "dropped: %s was installed meanwhile",
				     version);
			log_msg(LOG_LVL_WARN, "upgrade: %s %s", str(s, "to"), why);
			unlink(str(s, "new"));
			json_object_set_new(s, "state", json_string("rolled_back"));
			json_object_set_new(s, "reason", json_string(why));
			json_object_set_new(s, "from", json_string(version));
			upgrade_record_save(a, s);
			goto out;
		}
		log_msg(LOG_LVL_INFO, "upgrade: the restart %s waited for: installing it",
			str(s, "to"));
		json_object_set_new(s, "state", json_string("installing"));
		if (!upgrade_record_save(a, s))
			goto out;
		upgrade_record_unlock(lock);
		lock = -1;
	} else if (strcmp(state, "installing") != 0 && strcmp(state, "trial") != 0 &&
		   strcmp(state, "healthy") != 0 && !(strcmp(state, "rolled_back") == 0 &&
			(!configured || strcmp(version, str(s, "from")) != 0))) {
		goto out;   /* nothing left for the helper */
	}
	if (!dpkgup_launch(s, why, sizeof(why)))
		log_msg(LOG_LVL_ERROR, "upgrade: %s", why);
out:
	upgrade_record_unlock(lock);
	json_decref(s);
}

/* ---- the helper ------------------------------------------------------ */

/* Whether s is a path systemd takes unquoted in a command line. */
static bool plain_path(const char *s)
{
	return s[0] == '/' && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789/._-+@") == strlen(s);
}

/* While an upgrade is under way, each start of the agent's service first
 * starts the helper again when it does not run: the version on trial may
 * crash before it could, and a host's restart ends the helper. A drop-in
 * of the service's (on: written, off: removed), then systemd reloaded. */
static void guard(const json_t *s, bool on)
{
	char *reload[] = { SYSTEMCTL, "daemon-reload", NULL };
	char dir[PATH_MAX], path[PATH_MAX + 32], *text = NULL;
	const char *config = str(s, "config");

	snprintf(dir, sizeof(dir), DROPIN_DIR "/%.200s.d", str(s, "unit"));
	snprintf(path, sizeof(path), "%s/" DROPIN_NAME, dir);
	if (!on) {
		if (unlink(path) != 0)
			return;
	} else if (!plain_path(str(s, "helper")) || (config[0] && !plain_path(config))) {
		log_msg(LOG_LVL_WARN, "upgrade-dpkg: %s or %s is no path for a unit: the "
			"service's starts do not start the helper", str(s, "helper"), config);
		return;
	} else {
		text = util_printf("# Written by ward-agent upgrade-dpkg while an upgrade of the "
				   "agent is under way;\n# removed when it ends.\n[Service]\n"
				   "ExecStartPre=-%s%s%s upgrade-dpkg-resume\n", str(s, "helper"),
				   config[0] ? " --config " : "", config);
		if (!text || (mkdir(dir, 0755) != 0 && errno != EEXIST) ||
		    util_replace_file(path, text, strlen(text), 0644) != 0) {
			log_msg(LOG_LVL_WARN, "upgrade-dpkg: %s: %s", path, strerror(errno));
			free(text);
			return;
		}
		free(text);
	}
	if (util_run(reload, 60, NULL, 0) != 0)
		log_msg(LOG_LVL_WARN, "upgrade-dpkg: systemctl daemon-reload failed");
}

/* dpkg -i deb, waiting out another's lock; false with why when it fails
 * (what dpkg said goes to the log). */
static bool install(const char *deb, char *why, size_t len)
{
	char *argv[] = { DPKG, "--force-confdef", "--force-confold", "-i", (char *)deb, NULL };
	char out[4096], how[200], *last;
	int status, waited = 0;

	for (;;) {
		log_msg(LOG_LVL_INFO, "upgrade-dpkg: dpkg -i %s", deb);
		status = util_run(argv, DPKG_SECONDS, out, sizeof(out));
		if (status == 0)
			return true;
		/* dpkg's "dpkg frontend lock was locked by another process",
		 * "dpkg status database is locked by another process". */
		if (status > 0 && strstr(out, "locked by another process") &&
		    waited < LOCK_SECONDS) {
			log_msg(LOG_LVL_INFO, "upgrade-dpkg: dpkg is busy (another holds its "
				"lock); again in 5 s");
			sleep(5);
			waited += 5;
			continue;
		}
		break;
	}
	log_msg(LOG_LVL_ERROR, "upgrade-dpkg: dpkg -i %s failed; what it said:\n%s", deb, out);
	if (status < 0)
		snprintf(how, sizeof(how), "%s", errno == ETIMEDOUT ? "did not end in time" :
			 strerror(errno));
	else
		util_status_text(status, how, sizeof(how));
	while (out[0] && out[strlen(out) - 1] == '\n')
		out[strlen(out) - 1] = '\0';
	last = strrchr(out, '\n');
	util_set_msg(why, len, "dpkg -i %s %s: %.300s", strrchr(deb, '/') ? strrchr(deb, '/') + 1 :
		     deb, how, last ? last + 1 : out);
	return false;
}

/* Sets the record's state to state, and extra's members (taken), under
 * the record's lock, if it still is what s says (the same version, in s's
 * state): false when another wrote it meanwhile (the new version recorded
 * itself healthy, say). s becomes what was written. */
static bool move(struct agent *a, json_t *s, const char *state, json_t *extra)
{
	int lock = upgrade_record_lock(a);
	json_t *now = lock >= 0 ? upgrade_record_load(a) : NULL;
	bool ok = false;

	if (now && strcmp(str(now, "to"), str(s, "to")) == 0 &&
	    strcmp(str(now, "state"), str(s, "state")) == 0) {
		json_object_update(now, extra);
		json_object_set_new(now, "state", json_string(state));
		ok = upgrade_record_save(a, now);
		if (ok)
			json_object_update(s, now);
	} else {
		log_msg(LOG_LVL_INFO, "upgrade-dpkg: the upgrade to %s is %s now", str(s, "to"),
			now ? str(now, "state") : "over");
	}
	json_decref(extra);
	json_decref(now);
	upgrade_record_unlock(lock);
	return ok;
}

/* Records the version on trial rolled back, and why (crashed: it is not
 * tried here again); going back is the next step. */
static void roll_back(struct agent *a, json_t *s, const char *reason, bool crashed)
{
	if (move(a, s, "rolled_back", json_pack("{ss sb}", "reason", reason, "crashed",
						crashed)))
		log_msg(LOG_LVL_ERROR, "upgrade-dpkg: %s %s: going back to %s", str(s, "to"),
			reason, str(s, "from"));
}

/* Counts a start of the version on trial (the record's state is set to
 * state); past UPGRADE_TRIALS, rolls it back instead and returns false. A
 * helper killed at each try (a host that hangs) does not try forever. */
static bool count_start(struct agent *a, json_t *s, const char *state)
{
	json_int_t starts = json_integer_value(json_object_get(s, "starts")) + 1;
	char reason[80];

	if (starts > UPGRADE_TRIALS) {
		snprintf(reason, sizeof(reason), "did not come up in %d starts", UPGRADE_TRIALS);
		roll_back(a, s, reason, true);
		return false;
	}
	return move(a, s, state, json_pack("{sI}", "starts", starts));
}

/* Installs the new version, on trial from before dpkg starts it. */
static void step_install(struct agent *a, json_t *s)
{
	char why[600];

	if (!count_start(a, s, "trial"))
		return;
	guard(s, true);
	/* (A package that did not install never ran: a lock held too long, a
	 * full disk or a missing dependency may be gone at the next offer.) */
	if (!install(str(s, "new"), why, sizeof(why)))
		roll_back(a, s, why, false);
}

/* Waits for the version on trial to reach the server (the agent records
 * it healthy), to crash (its service restarted CRASH_RESTARTS times) or
 * for the window to pass. A trial that an earlier helper began counts as
 * another start of the version. */
static void step_trial(struct agent *a, json_t *s, bool resumed)
{
	int64_t window = json_integer_value(json_object_get(s, "window"));
	uint64_t deadline;
	long base = 0, restarts;
	char ended[80], last[80] = "", reason[300], version[64];
	bool active, configured, known, shown;
	json_t *t;

	if (resumed) {
		/* A helper killed while dpkg ran left the package half done:
		 * installed again (which counts the start). */
		if (!dpkgup_installed(version, sizeof(version), &configured) || !configured ||
		    strcmp(version, str(s, "to")) != 0) {
			move(a, s, "installing", json_object());
			return;
		}
		if (!count_start(a, s, "trial"))
			return;
	}
	if (window <= 0)
		window = 60;
	known = unit_show(str(s, "unit"), &base, ended, sizeof(ended), &active);
	log_msg(LOG_LVL_INFO, "upgrade-dpkg: %s on trial for %lld s", str(s, "to"),
		(long long)window);
	deadline = util_now_ns() + (uint64_t)window * 1000000000u;
	for (;;) {
		usleep(500000);
		t = upgrade_record_load(a);
		if (!t || strcmp(str(t, "state"), "trial") != 0 ||
		    strcmp(str(t, "to"), str(s, "to")) != 0) {
			json_decref(t);
			return;   /* healthy, or no longer this helper's */
		}
		json_decref(t);
		/* (How the main process ended is shown until the next one
		 * starts: kept from the poll that saw it.) */
		shown = unit_show(str(s, "unit"), &restarts, ended, sizeof(ended), &active);
		/* (The count starts again when someone restarts the service.) */
		if (shown && (!known || restarts < base)) {
			base = restarts;
			known = true;
		}
		if (shown && ended[0])
			snprintf(last, sizeof(last), "%s", ended);
		if (shown && restarts - base >= CRASH_RESTARTS) {
			snprintf(reason, sizeof(reason), "crashed: its service %s, and was "
				 "restarted %ld times", last[0] ? last : "ended",
				 restarts - base);
			roll_back(a, s, reason, true);
			return;
		}
		if (util_now_ns() <= deadline)
			continue;
		if (active)
			snprintf(reason, sizeof(reason), "started but did not reach the server "
				 "within %lld s", (long long)window);
		else
			snprintf(reason, sizeof(reason), "did not stay running (its service %s) "
				 "and did not reach the server within %lld s",
				 last[0] ? last : "ended", (long long)window);
		roll_back(a, s, reason, !active);
		return;
	}
}

/* The new version reached the server: its package is kept (the one to go
 * back to at the next upgrade), the rest and the record go. */
static void step_commit(struct agent *a, json_t *s)
{
	char *kept = dpkgup_kept(a, str(s, "to"));
	int lock;
	json_t *now;

	/* (Kept already when an earlier helper was killed past this.) */
	if (kept && dpkgup_keep_only(a, strrchr(kept, '/') + 1) &&
	    rename(str(s, "new"), kept) != 0 && access(kept, F_OK) != 0)
		log_msg(LOG_LVL_WARN, "upgrade-dpkg: keeping %s as %s: %s", str(s, "new"), kept,
			strerror(errno));
	lock = upgrade_record_lock(a);
	now = lock >= 0 ? upgrade_record_load(a) : NULL;
	if (now && strcmp(str(now, "state"), "healthy") == 0 &&
	    strcmp(str(now, "to"), str(s, "to")) == 0)
		upgrade_record_save(a, NULL);
	json_decref(now);
	upgrade_record_unlock(lock);
	/* Last: a helper killed before this finds no record, and removes it
	 * then. (Its program stays; the next upgrade writes it again.) */
	guard(s, false);
	log_msg(LOG_LVL_INFO, "upgrade-dpkg: %s committed (its package kept to go back to at "
		"the next upgrade)", str(s, "to"));
	free(kept);
}

/* Installs the previous version's package again, unless it is installed
 * already (a helper killed after dpkg ended). The agent it starts reports
 * the offer failed and removes the record. */
static int step_restore(struct agent *a, json_t *s)
{
	char *old = dpkgup_kept(a, str(s, "from")), version[64], why[600];
	bool configured;
	int ret = 0;

	unlink(str(s, "new"));
	if (!(dpkgup_installed(version, sizeof(version), &configured) && configured &&
	      strcmp(version, str(s, "from")) == 0) && (!old || !install(old, why, sizeof(why)))) {
		log_msg(LOG_LVL_ERROR, "upgrade-dpkg: going back to %s failed: %s; tried again "
			"in 10 s", str(s, "from"), old ? why : "out of memory");
		ret = 1;
	} else {
		log_msg(LOG_LVL_INFO, "upgrade-dpkg: %s is installed again", str(s, "from"));
		guard(s, false);
	}
	free(old);
	return ret;
}

int dpkgup_helper(struct agent *a)
{
	const char *state;
	json_t *s;
	int step, ret = 0;
	bool done = false;

	/* dpkg's maintainer scripts ask no one: there is no one to ask. */
	setenv("DEBIAN_FRONTEND", "noninteractive", 1);
	for (step = 0; step < MAX_STEPS && !done; step++) {
		s = upgrade_record_load(a);
		state = str(s, "state");
		if (!s || strcmp(str(s, "mode"), "dpkg") != 0) {
			log_msg(LOG_LVL_INFO, "upgrade-dpkg: no upgrade through dpkg is under way");
			/* (One ended: a helper killed as it finished left its drop-in.) */
			if (!s) {
				s = json_pack("{ss}", "unit", PACKAGE ".service");
				guard(s, false);
			}
			done = true;
		} else if (strcmp(state, "installing") == 0) {
			step_install(a, s);
			/* The trial below was begun here, not resumed. */
			json_decref(s);
			s = upgrade_record_load(a);
			if (s && strcmp(str(s, "state"), "trial") == 0)
				step_trial(a, s, false);
		} else if (strcmp(state, "trial") == 0) {
			step_trial(a, s, true);
		} else if (strcmp(state, "healthy") == 0) {
			step_commit(a, s);
			done = true;
		} else if (strcmp(state, "rolled_back") == 0) {
			ret = step_restore(a, s);
			done = true;
		} else {
			log_msg(LOG_LVL_INFO, "upgrade-dpkg: the upgrade to %s is %s: nothing "
				"to do now", str(s, "to"), state);
			done = true;
		}
		json_decref(s);
	}
	return ret;
}
