/* scan.h -- ward-agent's scans: files and trees scanned by the scan
 * workers of the component in use, conventional or smart, one line per
 * file.
 *
 * A file smart scan leaves unverified (no smart protection source
 * answered) is kept in the agent's list of unverified files with what
 * scanned it, which the running agent rescans as soon as a source
 * answers again.
 */
#ifndef WARD_AGENT_SCAN_H
#define WARD_AGENT_SCAN_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/quarantine.h"
#include "engine/engine.h"
#include "scan/smart.h"

struct components_handle;

/* What a scan found. */
struct ascan_totals {
	uint64_t files, infected, unverified, errors;
	uint64_t bytes; /* the sizes of the files scanned */
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

/* Called once per infected file (path, the device and inode the scan
 * read, the names found), from the scanning thread, never concurrently:
 * takes the actions and returns the detection to report (a new object of
 * docs/protocol.md), or NULL for the plain one. */
typedef json_t *(*ascan_act_fn)(const char *path, dev_t dev, ino_t ino,
				const char *const *names, size_t nnames, void *arg);

/* How a scan runs; zero-initialise. */
struct ascan_opts {
	ascan_emit_fn emit;          /* each outcome; NULL: none */
	void *emit_arg;
	ascan_act_fn act;            /* each infected file; NULL: reported only */
	void *act_arg;
	const char *const *exclude;  /* absolute paths left out, with what is under them */
	size_t nexclude;
	unsigned jobs;               /* scanning threads; 0: one per processor */
	bool low;                    /* scan.cpu=low: scanned at the workers' lowest
				      * CPU and idle I/O priority */
	const atomic_bool *cancel;   /* the scan stops when it becomes true; NULL: never */
	enum quarantine_source source; /* what scans: kept with the files left unverified */
	/* Read by the scanning thread after each file, for progress reports;
	 * NULL: none. */
	void (*progress)(const struct ascan_totals *t, void *arg);
	void *progress_arg;
};

/* An entry of the list of unverified files: {"path", "source"} (a new
 * object; NULL when out of memory). */
json_t *ascan_unverified_entry(const char *path, enum quarantine_source source);

/* The path of an entry of the list of unverified files, and in *source
 * what scanned it (a bare path, as agents before the sources kept them:
 * "manual"); NULL when entry is neither. */
const char *ascan_unverified_path(const json_t *entry, enum quarantine_source *source);

/* Scans paths[0..n) recursively, each file in a scan worker of h's
 * generation (components_scan_fd(); the caller holds h), as o says (NULL:
 * the defaults), logging each detection and error. Unverified files are
 * added to unverified (a JSON array of entries, ascan_unverified_entry(),
 * with o->source; kept without duplicates); files of it that are now
 * verified are removed from it. Each detection is appended to found (a
 * JSON array; NULL: not collected) as {"time", "path", "name", "method"},
 * the form the server's detection report takes, or as o->act returns it.
 * Returns 0, or -1 with errbuf set when the scan could not run. */
int ascan_run(const struct components_handle *h, const char *const *paths, size_t n,
	      const struct ascan_opts *o, json_t *unverified, json_t *found,
	      struct ascan_totals *t, char *errbuf, size_t errlen);


#endif
