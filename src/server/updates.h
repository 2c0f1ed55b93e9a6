/* updates.h -- the server's side of signature updates: importing the
 * source directory into new component versions, keeping their packages,
 * and serving them to agents.
 *
 * An import runs on a worker thread (reading, sorting and compressing a
 * large database takes seconds) and is started when the source directory
 * changes (looked at every updates.watch_interval), every
 * updates.check_interval, and on demand (`ward update now`). It checks the
 * source (importer.h), builds the components (builder.h) and, for each
 * component whose files changed, makes version N+1 as a full package and a
 * delta from N, signed with the server's package key. A failed import
 * changes nothing: the previous versions stay served. Deltas reaching
 * back updates.keep_deltas versions are kept, and the full packages of the
 * last two versions.
 *
 * Packages live in DATA_DIR/packages (a directory a mirror can copy as it
 * is), each version's files in DATA_DIR/components/NAME/VERSION.
 * Everything but the worker runs on the HTTP loop's thread.
 */
#ifndef WARD_UPDATES_H
#define WARD_UPDATES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/config.h"
#include "common/http.h"
#include "server/store.h"
#include "sps/service.h"

struct updates;

/* Creates the update service: loads the package signing key from the data
 * directory (DATA_DIR/signing.key, made on first start; its public half
 * in signing.pub) and the key rotation chain, and registers its timers on
 * http. With sps (the integrated smart protection server), it loads the
 * newest Smart Scan Pattern into it now and each new one after an import.
 * Returns NULL with a message in errbuf on failure. The caller frees
 * it with updates_free() after http_free(). */
struct updates *updates_new(struct store *st, const struct config *cfg, struct http_server *http,
			    struct sps_service *sps, char *errbuf, size_t errlen);

/* Waits for a running import, then frees u (NULL is accepted). */
void updates_free(struct updates *u);

/* Starts an import now (when one runs, the next one, after it) and
 * answers req with its outcome when it ends. */
void updates_import_now(struct updates *u, struct http_req *req);

/* Returns a new object describing the components, their packages, the
 * source and the last import; NULL when the store fails. */
json_t *updates_status(struct updates *u);

/* Returns a new object of what GET /metrics shows of imports and
 * downloads: {"imports_ok", "imports_failed" (since start), "importing",
 * "last_import" (or null), "downloads", "downloads_peak",
 * "max_downloads"}; NULL when out of memory. */
json_t *updates_counts(const struct updates *u);

/* Returns a new object of the update options in use ({"source_dir",
 * "watch_interval", "check_interval", "max_downloads"}), with "set": those
 * set through the API, and "config": wardd.conf's values; NULL when out of
 * memory. */
json_t *updates_settings(const struct updates *u);

/* Sets update options while wardd runs (who: the administrator, for the
 * log): changes is {option: value, ...}, a null value going back to
 * wardd.conf's. The source directory must exist on the server; numbers
 * keep wardd.conf's ranges. Saved in the store, they outlive restarts and
 * take precedence over wardd.conf. A new source is imported at once.
 * Returns false with a message naming the option in errbuf; nothing
 * changes then. */
bool updates_configure(struct updates *u, const json_t *changes, const char *who,
		       char *errbuf, size_t errlen);

/* The package signing key in use: its public half as 64 hex digits, for
 * agents to pin at enrollment. Valid until the next rotation. */
const char *updates_key(const struct updates *u);

/* Signs an instruction to an agent (the JSON text of an object) with the
 * package signing key the agent pinned, or one it leads to: returns
 * {"signed": envelope (as pkg_open_signed() opens it), "rotations": the
 * rotation chain}, owned by the caller, or NULL when out of memory. */
json_t *updates_sign(const struct updates *u, const char *text);

/* Rotates the package signing key (who: the administrator, for the log):
 * makes a new key pair, appends a record of the new key signed by the old
 * one to the rotation chain, signs every stored package anew, and answers
 * req with {"key", "previous", "rotations", "packages"}. Agents pinned to
 * any earlier key follow the chain (it comes with every update plan).
 * Refused (409) while an import runs, whose packages the old key signs. */
void updates_rotate_key(struct updates *u, struct http_req *req, const char *who);

/* Answers an agent asking how to get from version have of component to
 * the newest: {"component", "version", "steps": [{"envelope", "file",
 * "size"}], "rotations": [record, ...]}. The steps are a chain of deltas
 * or one full package (with full, always the full package), whichever is
 * smaller; none when have is current. The rotations are the key rotation
 * chain, oldest first, as text (see pkg_rotate()). */
void updates_plan(struct updates *u, struct http_req *req, const char *component, int64_t have,
		  bool full);

/* Sends the file at path (size bytes, shown as file in messages) to
 * client who under the caps of updates_download(). */
void updates_send(struct updates *u, struct http_req *req, const char *who, const char *path,
		  const char *file, int64_t size);

/* Answers client who's download of package file: 429 with Retry-After
 * when who is served updates.max_downloads_per_client already, 503 with
 * Retry-After when updates.max_downloads are being served. A download
 * that goes unread for updates.download_idle is cut off. */
void updates_download(struct updates *u, struct http_req *req, const char *who,
		      const char *file);

#endif
