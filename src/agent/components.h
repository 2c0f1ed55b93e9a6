/* components.h -- the agent's components: the one in use, which scans run
 * on, and bringing it up to date.
 *
 * The component in use (its engine, and for smart scan its smart
 * protection state) is reference counted: a scan takes a handle with
 * components_acquire() and keeps scanning with it until
 * components_release(); an update installs a new one for the scans that
 * start after it, and the old one is freed when its last holder releases
 * it. The holder is thread-safe.
 *
 * The updates (components_update(), components_use_installed(),
 * components_refresh_sources()) talk to the server and load engines: they
 * run on the channel's thread (channel.h), or in a command of its own,
 * never on the loop's.
 */
#ifndef WARD_AGENT_COMPONENTS_H
#define WARD_AGENT_COMPONENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "scan/smart.h"

struct agent;
struct components;

/* What a scan runs on, valid from components_acquire() to
 * components_release(). */
struct components_handle {
	const struct engine *engine;
	struct smart *smart;     /* smart scan's state; NULL: conventional */
	const char *name;        /* the component (comp_table()'s name) */
	int64_t version;
};

/* A holder with no component in use. Returns NULL when out of memory. The
 * caller frees it with components_free(). */
struct components *components_new(void);

/* Frees the holder and the component in use. Every handle must have been
 * released. */
void components_free(struct components *c);

/* A handle on the component in use (NULL: none yet), which the caller
 * releases with components_release(). Any thread. */
const struct components_handle *components_acquire(struct components *c);

/* Gives a handle back; the component is freed with its last holder. Any
 * thread; NULL is accepted. */
void components_release(struct components *c, const struct components_handle *h);

/* Scans the open file fd (name is for messages) with the component of h:
 * res says what it found (the caller clears it in every case), out, for
 * smart scan, whether the verdict is unverified. Returns 0, or -1 with
 * errbuf saying why the file could not be scanned (never a verdict to act
 * on). Any thread, while h is held. */
int components_scan_fd(const struct components_handle *h, int fd, const char *name,
		       struct engine_result *res, struct smart_outcome *out, char *errbuf,
		       size_t errlen);

/* Makes e (compiled) and sm (the smart protection state e was configured
 * for; NULL: conventional), of version of component (a comp_table() name,
 * not copied), the component in use, taking both over; the one before is
 * freed when its last holder releases it. Returns 0, or -1 when out of
 * memory (e and sm freed, the one in use stays). Any thread. */
int components_install(struct components *c, struct engine *e, struct smart *sm,
		       const char *name, int64_t version);

/* The component the scan method of settings needs (NULL: the settings
 * in effect of a). */
const char *components_needed(const struct agent *a, const json_t *settings);

/* Whether component is the one smart scan uses. */
bool components_is_smart(const char *component);

/* Makes the installed version of component the one in use, loading its
 * engine when it is not already (after `ward-agent update` by another
 * process, say). Returns false when it does not load (a->update_error
 * says why). */
bool components_use_installed(struct agent *a, const char *component);

/* Brings component up to date from the server (a->up) and loads it: a new
 * version is used only once its engine has loaded, else the one in use
 * stays and a->update_error says why. Returns true when component is
 * current (or the server has none yet). Serialised with other processes on
 * the same state by a lock. */
bool components_update(struct agent *a, const char *component);

/* For smart scan: fetches the smart protection source list again and,
 * when it changed, installs smart protection state made from it with the
 * same engine. */
void components_refresh_sources(struct agent *a);

/* The agent's smart protection source list: from the server through rest
 * (kept in the state directory), else the one kept, else the server's
 * integrated one. The caller releases it. */
json_t *components_sps_list(struct agent *a);

/* Smart protection state for the agent pattern in dir with the source
 * list (the integrated server reached at a's server). NULL when it cannot
 * be set up (logged). */
struct smart *components_open_smart(struct agent *a, const json_t *list, const char *dir);

#endif
