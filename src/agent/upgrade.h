/* upgrade.h -- the agent's own upgrades: what is installed and how, the
 * server's offers of a new version, and the supervisor that runs the
 * agent, starts a new version on trial and brings the previous one back
 * when the new one fails (docs/protocol.md, "Agent upgrades").
 *
 * An agent installed in versioned directories runs as
 *
 *     ROOT/versions/VERSION/ward-agent      one directory per version
 *     ROOT/current -> versions/VERSION      the version in use
 *
 * under `ward-agent supervise` (what the unit starts), which runs
 * ROOT/current/ward-agent run as its child. An offer (a task of kind
 * agent_upgrade, its description signed with the package signing key) is
 * checked, its package downloaded, checked and unpacked beside the
 * version in use, and the new program asked to read the configuration;
 * then the child records the step in STATE/upgrade.json, points current
 * at the new version and exits UPGRADE_EXIT_RESTART. The supervisor
 * starts the new version on trial: it must reach the server within the
 * offer's window (its first poll answered), which it records; if it
 * exits or the window passes first, the supervisor points current back,
 * starts the previous version, and that one reports the offer failed with
 * the reason. With restart.postpone_updates on, the new version waits in
 * its directory for the next start of the service (a package that needs
 * the host restarted: for the next boot, by its boot id) instead.
 *
 * An agent installed by its Debian package (dpkg) takes an offer the same
 * way up to the check of the new program; then it makes sure it holds the
 * package of the version it runs (to go back to), and a helper outside its
 * service installs the new package and watches it on trial (dpkgup.h).
 * An agent installed from source reports so, and is upgraded by hand.
 */
#ifndef WARD_UPGRADE_H
#define WARD_UPGRADE_H

#include <limits.h>
#include <stdbool.h>

#include <jansson.h>

#include "agent/astate.h"

/* The child's exit status that asks the supervisor to start current
 * again at once (a new version is in place). */
#define UPGRADE_EXIT_RESTART 75

/* Starts a version on trial gets when its supervisor (or, for dpkg, its
 * helper) does not outlive the trial. */
#define UPGRADE_TRIALS 3

/* How the running program is installed. */
struct upgrade_install {
	const char *mode;        /* "dir", "dpkg" or "source" (static) */
	char version[64];        /* the package version running */
	char root[PATH_MAX];     /* dir: ROOT */
	char os[64];             /* the release: ID-VERSION_ID of os-release ("debian-12") */
	char arch[32];           /* Debian's name of the machine's architecture */
};

/* Finds how the running program is installed. Thread-safe. */
void upgrade_install(struct upgrade_install *out);

/* The record of the upgrade under way, STATE/upgrade.json (a new
 * object), or NULL: none. Its members: task (the offer's id), from and to
 * (versions), window, started, needs (none, service or host), boot_id
 * (when it was taken), state (staged, switching, trial, healthy,
 * rolled_back; dpkg: also installing), and for dpkg (dpkgup.h) mode,
 * new, unit, helper, config. Thread-safe. */
json_t *upgrade_record_load(const struct agent *a);

/* Takes the record's lock (flock, waiting for it): who reads the record to
 * write it holds it from the read to the write, never across a long step.
 * Returns the lock (-1: it could not be taken, logged); released by
 * upgrade_record_unlock(). Thread-safe. */
int upgrade_record_lock(const struct agent *a);
void upgrade_record_unlock(int lock);

/* Writes s as the record (NULL: removes it), replaced atomically; false
 * (logged) when it could not be written. Thread-safe. */
bool upgrade_record_save(const struct agent *a, const json_t *s);

/* This boot's id (the configuration's boot_id_file, else the kernel's),
 * "" when unknown. Thread-safe. */
void upgrade_boot_id(const struct agent *a, char out[64]);

/* Adds to status (a heartbeat's) "platform" {os, arch}, "install",
 * "package_version" and, while an upgrade waits for a restart,
 * "restart_pending" {version, needs: service|host, since}. Thread-safe. */
void upgrade_status(const struct agent *a, json_t *status);

/* Reports on a task: report(arg, {"id", "state", ...}) (taken). */
typedef void (*upgrade_report_fn)(void *arg, json_t *report);

/* An offer (a task of kind agent_upgrade, its members checked by
 * upgrade_task_invalid()), on the channel's thread, which owns a->up:
 * reports it running, then failed, completed (this version runs it
 * already), or running and staged (postponed). Returns true when the new
 * version is in place and the agent must exit UPGRADE_EXIT_RESTART. */
bool upgrade_take(struct agent *a, const json_t *task, upgrade_report_fn report, void *arg);

/* Why task (an agent_upgrade's members) is malformed, into why; NULL
 * when it is not. */
const char *upgrade_task_invalid(const json_t *task, char *why, size_t len);

/* Whether STATE/upgrade.json waits for the server's word: a version on
 * trial, or one rolled back to report. */
bool upgrade_waiting(const struct agent *a);

/* The server answered this agent (its first poll since it started): a
 * version on trial is this one, so it is recorded healthy and its offer
 * reported completed; an offer the supervisor (or dpkg's helper) rolled
 * back is reported failed with the reason, by the previous version once it
 * runs again. Channel's thread. */
void upgrade_connected(struct agent *a, upgrade_report_fn report, void *arg);

/* ward-agent supervise: runs `ROOT/current/ward-agent ARGS run` (args:
 * the options before the command, argc of them) until SIGTERM or SIGINT,
 * which it passes on; starts a version on trial and rolls it back as
 * described above; restarts a child that exits otherwise after 1 s,
 * doubling to 60 s while it keeps failing. Returns the exit status. */
int upgrade_supervise(struct agent *a, int argc, char **argv);

#endif
