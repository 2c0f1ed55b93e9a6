/* builder.h -- making the three signature components from an imported
 * source, and their signed packages.
 *
 * From the unpacked source (importer.h: one directory per container plus
 * "custom"), build_contents() writes each component's files:
 *   - virus-pattern: every signature file;
 *   - smart-agent-pattern: every file but the whole-file hash signatures
 *     and their allow-lists (.hdb .hsb .hdu .hsu .fp .sfp), plus
 *     hash-prefixes.wpx, the set of {digest type, first four digest bytes}
 *     of the hashes that detect;
 *   - smart-pattern: hashes.wsp, every hash entry as a line
 *     "TYPE:DIGEST:SIZE:STATE:NAME" (STATE: block, pua or allow).
 * Line-set files are normalised (sorted, duplicates dropped), so equal
 * sources give equal files and a changed source differs only where it
 * changed. build_package() makes a full or delta package of a version.
 * Thread-safe: no state; one call may run on a worker thread.
 */
#ifndef WARD_BUILDER_H
#define WARD_BUILDER_H

#include <stdint.h>
#include <stddef.h>

#include "common/pkg.h"
#include "server/serr.h"


/* Writes the components built from the unpacked source in unpacked into
 * out/<component name>/ (out must exist and be empty). Errors name the
 * file and line at fault. */
enum serr build_contents(const char *unpacked, const char *out, char *errbuf,
			 size_t errlen);

/* Makes the package of component at version from its files in dir: a
 * full package when base_dir is NULL, else a delta from version base
 * whose files are in base_dir. The payload is written to payload_path;
 * its name in the manifest is payload_name. The manifest is signed with
 * sk (public half pk); the envelope is stored in *envelope (caller
 * frees) and the payload's size in *size. */
enum serr build_package(const char *component, int64_t version, int64_t base,
			const char *base_dir, const char *dir, const char *payload_path,
			const char *payload_name, const unsigned char pk[PKG_PK_BYTES],
			const unsigned char sk[PKG_SK_BYTES], char **envelope,
			int64_t *size, char *errbuf, size_t errlen);

#endif
