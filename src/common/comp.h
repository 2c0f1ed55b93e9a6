/* comp.h -- signature components: what each is, the files it is made of,
 * and putting an installed version together from a package (full or
 * delta), as the agent and smart protection servers do.
 *
 * A component version is a flat directory of files. Files whose elements
 * are unordered (signature lines, hash-prefix records) are kept as sets
 * (sdelta.h) so that a delta carries only the elements that changed; any
 * other file travels whole when it changes. The signed manifest lists
 * every file of the version with its size and SHA-256, so what is put
 * together is checked file by file against what the server signed.
 * Thread-safe: no state.
 */
#ifndef WARD_COMP_H
#define WARD_COMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "common/err.h"


enum comp_id {
	COMP_VIRUS,        /* the Virus Pattern: every signature, for conventional scan */
	COMP_SMART_AGENT,  /* the Smart Scan Agent Pattern: all but whole-file hashes,
			    * plus their prefixes */
	COMP_SMART,        /* the Smart Scan Pattern: the whole-file hash entries */
	COMP_COUNT
};

struct comp_def {
	enum comp_id id;
	const char *name;   /* in manifests, URLs and directories */
	const char *title;  /* for people */
};

/* The file of hash-digest prefixes in the Smart Scan Agent Pattern (a
 * compact file whose set form has records of a digest type byte and four
 * digest bytes: pset.h). */
#define COMP_PREFIX_FILE "hash-prefixes.wpx"
#define COMP_PREFIX_WIDTH 5

/* The file of hash entries in the Smart Scan Pattern. */
#define COMP_HASHES_FILE "hashes.wsp"

/* Digest types in prefix records and hash entries. */
enum comp_digest {
	COMP_MD5 = 1,
	COMP_SHA1 = 2,
	COMP_SHA256 = 3,
};

/* Returns the table (static storage, indexed by enum comp_id). */
const struct comp_def *comp_table(void);

/* Returns the id of the component called name, or -1. */
int comp_find(const char *name);

/* Returns the element width of file name when it is kept as a set (0 for
 * lines, COMP_PREFIX_WIDTH for the prefix file), or -1 when it is not. */
int comp_set_width(const char *name);

/* Gives the set form of set file name, whose bytes are data (n): for the
 * prefix file its decoded records, appended to buf (*set then points into
 * buf); for any other set file the bytes themselves (*set = data). */
enum err comp_set_read(const char *name, const char *data, size_t n, struct util_buf *buf,
		       const char **set, size_t *setlen, char *errbuf, size_t errlen);

/* Appends to out the bytes of set file name whose set form is set (n
 * bytes): the prefix file is encoded; any other set is its own file. */
enum err comp_set_write(const char *name, const char *set, size_t n, struct util_buf *out,
			char *errbuf, size_t errlen);

/* Lists the regular files of dir as a new JSON array of {name, size,
 * sha256}, sorted by name; the caller owns it. */
enum err comp_describe(const char *dir, json_t **files, char *errbuf, size_t errlen);

/* Puts together the version a package describes: manifest (opened and
 * checked with pkg_open()) and its one payload at payload_path (checked
 * with pkg_check_payload()). A delta (base > 0) applies to the installed
 * version in the directory installed; a full package needs none (NULL).
 * work must be an empty directory for scratch files; out, which must not
 * exist, receives the files, each checked against the manifest. On
 * failure out may hold part of the files: the caller removes it. */
enum err comp_assemble(const json_t *manifest, const char *payload_path,
		       const char *installed, const char *work, const char *out,
		       char *errbuf, size_t errlen);

#endif
