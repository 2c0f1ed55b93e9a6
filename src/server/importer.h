/* importer.h -- reading a signature source directory: the ClamAV
 * containers (.cvd, .cld) and the signature files an administrator adds,
 * each checked, as the first step of building components.
 *
 * The result is an inventory: one entry per usable file {name, kind,
 * size, sha256, version?, sigs?}, sorted by name, and a digest of it that
 * changes whenever any file does, so an unchanged directory is not
 * imported again. A file that fails its checks makes the whole import fail
 * with a message naming it: components are never built from part of a
 * source. Thread-safe.
 */
#ifndef WARD_IMPORTER_H
#define WARD_IMPORTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "server/serr.h"


/* Reads directory dir into a new inventory (*inventory, a JSON list the
 * caller owns) and its digest (64 hex digits). Files of unknown types are
 * skipped and listed in *skipped (a JSON list of names, caller owns). */
enum serr import_scan(const char *dir, json_t **inventory, char digest[65],
		      json_t **skipped, char *errbuf, size_t errlen);

/* Unpacks every container of inventory (from dir) into out, one
 * subdirectory per container named by its stem ("main" for main.cvd),
 * and copies the other signature files into out/custom. Member names must
 * be plain file names; anything else (a path, "..", a link, a device)
 * fails the unpack, as does a member over max_member bytes. */
enum serr import_unpack(const char *dir, const json_t *inventory, const char *out,
			long long max_member, char *errbuf, size_t errlen);

/* Returns true when name is a signature file libclamav loads (what a
 * container's ".info" index is not). */
bool import_signature_file(const char *name);

#endif
