/* mirror.h -- on several servers sharing one database, each server's copy
 * of the packages another one built.
 *
 * One server imports at a time (store_hold(STORE_HOLD_IMPORT)); it puts
 * each package file into the database in parts (store_package_add())
 * before recording it. Every other server copies what its packages
 * directory lacks, part by part between other work on the loop, checks
 * each copy against the package's signed envelope (the package key all
 * servers share, the payload's size and SHA-256) and only then moves it
 * into place; a file no package names any more is removed. The newest
 * full package of each component is put together into the components
 * directory on a thread of its own (the next import here builds its
 * deltas on it), and a new Smart Scan Pattern is handed to the integrated
 * smart protection server, so that every server's answers use the same
 * pattern. A copy that fails its check is thrown away, logged and tried
 * again later; what is served is never a file that has not passed it.
 *
 * Everything but the assembling thread runs on the loop's thread.
 */
#ifndef WARD_MIRROR_H
#define WARD_MIRROR_H

#include <stdbool.h>
#include <stdint.h>

#include "common/pkg.h"
#include "server/store.h"
#include "sps/service.h"

struct mirror;

/* Returns a mirror of st's packages into packages_dir and components_dir,
 * checked with the key pk (read at each check: a rotation changes it),
 * loading new Smart Scan Patterns into sps (may be NULL); NULL when out of
 * memory. The arguments are borrowed and must outlive it. The caller frees
 * it with mirror_free(). */
struct mirror *mirror_new(struct store *st, const char *packages_dir, const char *components_dir,
			  const unsigned char *pk, struct sps_service *sps);

/* Waits for an assembly under way, removes a partial copy, frees m (NULL
 * is accepted). */
void mirror_free(struct mirror *m);

/* Does a bounded share of the work at now_ms (a monotonic clock): looks at
 * the package table every 2 seconds, copies a few parts, collects a
 * finished assembly. Not while this server imports (its own files are in
 * place already; the removal of unlisted files would take its new ones). */
void mirror_step(struct mirror *m, uint64_t now_ms);

/* Removes every version directory of a component's directory dir but
 * version's (dot files, work in progress, stay). */
void mirror_keep_only(const char *dir, int64_t version);

/* Returns whether every component's newest version is in the components
 * directory: an import here builds on it, and must wait until then. */
bool mirror_current(const struct mirror *m);

#endif
