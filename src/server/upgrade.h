/* upgrade.h -- bringing a data directory to a new wardd: the preflight
 * checks (`wardd upgrade --check`, and every start on a database of an
 * older schema), the copy of the database taken before its migration, and
 * the way back when the migration fails or wardd is killed during it.
 *
 * At start, before the store is opened (upgrade_at_start()):
 *   1. an upgrade cut short (DATA_DIR/upgrade.json left) is rolled back:
 *      the database and its journal as the old wardd left them;
 *   2. a database of an older schema is checked (upgrade_preflight()),
 *      copied (DATA_DIR/upgrade-ward.db, with its journal), and, when
 *      backup.passphrase_file is set, backed up into backup.dir;
 *   3. it is migrated, one step per transaction, each step logged with an
 *      estimate of what is left; a failure restores the copy, leaving the
 *      data directory as the old wardd left it, and wardd does not start.
 *
 * Blocking (disk, the database): commands and wardd's start only.
 */
#ifndef WARD_UPGRADE_H
#define WARD_UPGRADE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "server/config.h"

/* The oldest agent version this wardd serves fully: older ones are
 * listed by the preflight. */
#define UPGRADE_MIN_AGENT "0.1.0"

/* Runs the preflight on cfg's data directory: {"ok": bool, "checks":
 * [{"name", "result" ("ok", "warn" or "fail"), "detail"}]}, "ok" false
 * when any fails. running tells whether a wardd runs on the directory
 * now (an import or the server itself then count). New; the caller owns
 * it. NULL when out of memory. */
json_t *upgrade_preflight(const struct config *cfg, bool running);

/* Steps 1 to 3 above, for the database at db of cfg's data directory
 * (config_path: the configuration file, for the archive; may be NULL).
 * Returns true when the database is ready to open, false with what went
 * wrong (and where the data directory stands) in errbuf. */
bool upgrade_at_start(const struct config *cfg, const char *config_path, const char *db,
		      char *errbuf, size_t errlen);

#endif
