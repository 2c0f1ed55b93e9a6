/* scan.h -- ward-agent's scans: files and trees scanned by the scan
 * workers of the component in use, conventional or smart, one line per
 * file.
 *
 * A file smart scan leaves unverified (no smart protection source
 * answered) is kept in the agent's list of unverified files, which the
 * running agent rescans as soon as a source answers again.
 */
#ifndef WARD_AGENT_SCAN_H
#define WARD_AGENT_SCAN_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "engine/engine.h"
#include "scan/smart.h"

struct components_handle;

/* What a scan found. */
struct ascan_totals {
	uint64_t files, infected, unverified, errors;
};

/* What became of one file. */
enum ascan_verdict {
	ASCAN_OK,
	ASCAN_FOUND,        /* what: the signature's name (once per name) */
	ASCAN_UNVERIFIED,
	ASCAN_ERROR,        /* what: why it could not be scanned */
};

/* Called once per outcome (and per name found), in traversal order, from
 * the scanning thread. */
typedef void (*ascan_emit_fn)(const char *path, enum ascan_verdict v, const char *what,
			      void *arg);

/* Scans paths[0..n) recursively, each file in a scan worker of h's
 * generation (components_scan_fd(); the caller holds h), giving each
 * outcome to emit (NULL: none) and logging each detection and error; a
 * scan stops when *cancel (NULL: never) becomes true. Unverified files are added to unverified (a
 * JSON array of paths, kept without duplicates); files of it that are now
 * verified are removed from it. Each detection is appended to found (a
 * JSON array; NULL: not collected) as {"time", "path", "name", "method"},
 * the form the server's detection report takes. Returns 0, or -1 with
 * errbuf set when the scan could not run. */
int ascan_run(const struct components_handle *h, const char *const *paths, size_t n,
	      ascan_emit_fn emit, void *emit_arg, const atomic_bool *cancel, json_t *unverified,
	      json_t *found, struct ascan_totals *t, char *errbuf, size_t errlen);


#endif
