/* components.h -- the agent's components: the one in use, which scans run
 * on, and bringing it up to date.
 *
 * The component in use is a generation of scan workers (scanner.h): a
 * worker process that loaded its engine and scans the descriptors it is
 * handed; the privileged agent loads no engine. For smart scan the agent
 * keeps a smart protection state without prefixes beside it, which posts
 * the worker's requests to the sources. The generation in use is
 * reference counted: a scan takes a handle with components_acquire() and
 * keeps scanning with it until components_release(); an update starts a
 * new generation and, once it is ready, installs it for the scans that
 * start after it; the old one is retired when its last holder releases
 * it (its worker exits after the requests it holds). The holder is
 * thread-safe.
 *
 * The updates (components_update(), components_use_installed(),
 * components_refresh_sources()) talk to the server and start workers:
 * they run on the channel's thread (channel.h), or in a command of its
 * own, never on the loop's.
 */
#ifndef WARD_AGENT_COMPONENTS_H
#define WARD_AGENT_COMPONENTS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "scan/smart.h"

struct agent;
/* The largest file the scan workers scan, bytes: libclamav's own ceiling
 * (2 GiB - 1), above realtime.max_size's greatest value (2047 MiB). */
#define COMPONENTS_MAX_FILESIZE ((2048ull << 20) - 1)

struct components;
struct scanner;

/* What a scan runs on, valid from components_acquire() to
 * components_release(). */
struct components_handle {
	struct scanner *scanner; /* the generation of scan workers */
	struct smart *smart;     /* smart scan: the agent's relay state (no
				  * prefixes: the sources' health and
				  * counters); NULL: conventional */
	const char *name;        /* the component (comp_table()'s name) */
	int64_t version;
};

/* A holder with no component in use. Returns NULL when out of memory. The
 * caller frees it with components_free(). */
struct components *components_new(void);

/* Frees the holder and retires the generation in use. Every handle must
 * have been released. */
void components_free(struct components *c);

/* A handle on the component in use (NULL: none yet), which the caller
 * releases with components_release(). Any thread. */
const struct components_handle *components_acquire(struct components *c);

/* components_acquire(), waiting (up to 60 s, polling; never on the loop's
 * thread) while a generation may be starting: a version is installed and
 * no start has failed; stops waiting once *cancel (NULL: never) is set.
 * For scans that may come right after the agent started. */
const struct components_handle *components_acquire_wait(struct agent *a,
							 const atomic_bool *cancel);

/* Gives a handle back; a retired generation is freed with its last
 * holder (its worker exits, which this waits for). Any thread; NULL is
 * accepted. */
void components_release(struct components *c, const struct components_handle *h);

/* Scans the open file fd (name is for messages) in a scan worker of h's
 * generation, within the agent option scan.timeout: res says what it
 * found (the caller clears it in every case), out, for smart scan,
 * whether the verdict is unverified; flags as scanner.h's (SCANNER_LOW:
 * scan.cpu=low). fd stays the caller's. Returns 0, or
 * -1 with errbuf saying why the file could not be scanned (never a
 * verdict to act on). Any thread, while h is held; blocking. */
int components_scan_fd(const struct components_handle *h, int fd, const char *name,
		       unsigned flags, struct engine_result *res, struct smart_outcome *out,
		       char *errbuf, size_t errlen);

/* Makes the generation g (started, ready) with relay (smart scan: the
 * state g's relay posts through; NULL: conventional), of version of
 * component (a comp_table() name, not copied), the one in use, taking
 * both over; the one before is retired. Returns 0, or -1 when out of
 * memory (g and relay released, the one in use stays). Any thread. */
int components_install(struct components *c, struct scanner *g, struct smart *relay,
		       const char *name, int64_t version);

/* Copies why no generation is in use (the last start that failed; empty
 * when one is, or none was tried) into buf. Any thread. */
void components_error(struct components *c, char *buf, size_t len);

/* The component the scan method of settings needs (NULL: the settings
 * in effect of a). */
const char *components_needed(const struct agent *a, const json_t *settings);

/* Whether component is the one smart scan uses. */
bool components_is_smart(const char *component);

/* Makes the installed version of component the one in use, starting its
 * generation when it is not already (after an update by another
 * process, say). Returns false when it does not start (a->update_error
 * says why). */
bool components_use_installed(struct agent *a, const char *component);

/* Brings component up to date from the server (a->up) and starts its
 * generation: a new version is used only once its worker is ready (its
 * engine loaded), else the one in use stays and a->update_error says
 * why. Returns true when component is
 * current (or the server has none yet). Serialised with other processes on
 * the same state by a lock. */
bool components_update(struct agent *a, const char *component);

/* For smart scan: fetches the smart protection source list again and,
 * when it changed, installs a new generation of the same version made
 * with it (the old one stays when it does not start). */
void components_refresh_sources(struct agent *a);

/* The agent's smart protection source list: from the server through rest
 * (kept in the state directory), else the one kept, else the server's
 * integrated one. The caller releases it. */
json_t *components_sps_list(struct agent *a);

/* The agent's smart protection relay state (smart_new(NULL, ...): no
 * prefixes; it posts the workers' requests) for the source list (the
 * integrated server reached at a's server), and in cfg (urls: room for
 * 32) the sources as it keeps them, which a worker must be given so that
 * the indexes agree. NULL when it cannot be set up (logged). */
struct smart *components_open_smart(struct agent *a, const json_t *list,
				    struct smart_config *cfg, const char **urls);

#endif
