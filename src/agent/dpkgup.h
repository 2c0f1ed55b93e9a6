/* dpkgup.h -- upgrades of an agent installed by its Debian package
 * (docs/protocol.md, "Agent upgrades").
 *
 * The agent runs as ward-agent.service, in a sandbox that keeps /usr
 * read-only, and a package's maintainer scripts restart that service: so
 * the package is installed by a helper outside it, a transient unit of
 * systemd's (ward-agent-upgrade.service) that runs `ward-agent
 * upgrade-dpkg` from a copy of the program that took the offer. Its steps
 * are recorded in STATE/upgrade.json (upgrade.h), each before it is taken,
 * so that a helper killed at any step, or a host restarted, goes on from
 * where it was: systemd starts a helper that failed again (Restart=), and
 * while an upgrade is under way a drop-in of the service's
 * (/etc/systemd/system/UNIT.d/ward-agent-upgrade.conf) has each start of
 * the service start it (`upgrade-dpkg-resume`), even of a version that
 * crashes at once:
 *
 *   installing   dpkg -i NEW (its postinst restarts the service)
 *   trial        the new version must reach the server within the window
 *                (the agent records "healthy"); if its service keeps
 *                crashing, or the window passes, it is rolled back
 *   healthy      committed: NEW is kept in STATE/packages, to go back to
 *                at the next upgrade; the record goes
 *   rolled_back  dpkg -i the package of the previous version (kept in
 *                STATE/packages, or downloaded from the server with the
 *                offer), which starts that version; it reports the offer
 *                failed with the reason
 */
#ifndef WARD_DPKGUP_H
#define WARD_DPKGUP_H
#include <stdbool.h>
#include <stddef.h>
#include "agent/astate.h"

/* Whether an upgrade through dpkg can be done here: systemd runs the host
 * and this agent as its service, with systemd-run and dpkg at hand;
 * when not, why says what is missing. Thread-safe. */
bool dpkgup_available(char *why, size_t len);

/* Whether dpkg has the agent's package's files in place (installed, or
 * while its maintainer scripts run), and its version then; *configured
 * when dpkg is done with it. Thread-safe (dpkg-query is run). */
bool dpkgup_installed(char *version, size_t len, bool *configured);

/* The path where the package of version is kept (STATE/packages/), a new
 * string, or NULL (out of memory). Thread-safe. */
char *dpkgup_kept(const struct agent *a, const char *version);

/* Makes STATE/packages, removing from it every package but keep's (a file
 * name; NULL: none). Returns false with errno set when it cannot be made. */
bool dpkgup_keep_only(const struct agent *a, const char *keep);

/* Readies the helper (a copy of the running program) and the record s (an
 * upgrade.json object with task, from, to, window, started, needs and
 * new, the downloaded package), for upgrade_take(): adds mode, unit and
 * helper to s. False with why when it cannot. Channel's thread. */
bool dpkgup_prepare(struct agent *a, json_t *s, char *why, size_t len);

/* Starts the helper outside the service (systemd-run), unless it runs
 * already. False with why when it cannot be started. Thread-safe. */
bool dpkgup_launch(const json_t *s, char *why, size_t len);

/* At the start of `ward-agent run` and of the service (the drop-in's
 * `upgrade-dpkg-resume`): an update staged for this restart
 * (restart.postpone_updates) is installed now (a host restart's, once the
 * boot id changed), and a helper that did not finish is started again. */
void dpkgup_resume(struct agent *a);

/* ward-agent upgrade-dpkg: the helper. Takes the recorded upgrade through
 * its steps (above) and returns the exit status: 0 when it ended, be it
 * committed or rolled back; 1 when going back failed too. */
int dpkgup_helper(struct agent *a);
#endif
