/* scan.h -- ward-agent's scans: files and trees scanned with the engine of
 * the component in use, conventional or smart, one line per file.
 *
 * A file smart scan leaves unverified (no smart protection source
 * answered) is kept in the agent's list of unverified files, which the
 * running agent rescans as soon as a source answers again.
 */
#ifndef WARD_AGENT_SCAN_H
#define WARD_AGENT_SCAN_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/engine.h"
#include "scan/smart.h"

/* What a scan found. */
struct ascan_totals {
	uint64_t files, infected, unverified, errors;
};

/* Scans paths[0..n) recursively with e (and smart, when non-NULL, which e
 * was configured for), printing a line per file to out (NULL: none) and
 * logging each detection. Unverified files are added to unverified (a
 * JSON array of paths, kept without duplicates); files of it that are now
 * verified are removed from it. Each detection is appended to found (a
 * JSON array; NULL: not collected) as {"time", "path", "name", "method"},
 * the form the server's detection report takes. Returns 0, or -1 with
 * errbuf set when the scan could not run. */
int ascan_run(const struct engine *e, struct smart *smart, const char *const *paths, size_t n,
	      FILE *out, json_t *unverified, json_t *found, struct ascan_totals *t,
	      char *errbuf, size_t errlen);

#endif
