/* backup.h -- a server in one encrypted archive: a snapshot of its
 * database taken while it serves, its configuration, and its data
 * directory (CA and server keys, the package signing key, packages and the
 * components they came from, the central quarantine, enrollment files).
 *
 * The archive (docs/formats.md, "Backups") is a cleartext header (format,
 * Ward and schema versions, time, host, the key derivation's parameters)
 * and a libsodium secretstream of records, the key derived from a
 * passphrase with Argon2id: each part announced, its bytes, its size and
 * SHA-256; a manifest listing every part ends it, under the stream's final
 * tag, so a truncated archive or one with any byte changed is refused with
 * the part named. Archives are written beside their name and renamed into
 * it once complete, so none that looks complete is ever half written.
 *
 * Functions here block (disk, Argon2id): call them from a command or a
 * worker thread, never the event loop. They are thread-safe where their
 * arguments are not shared.
 */
#ifndef WARD_BACKUP_H
#define WARD_BACKUP_H

#include <jansson.h>
#include <stddef.h>
#include "server/serr.h"

/* Passphrases shorter than this are refused. */
#define BACKUP_MIN_PASSPHRASE 12

/* Reads the passphrase in the file at path, its last line break
 * dropped: NULL with why in errbuf when it cannot (missing, over 4 KiB,
 * a NUL byte in it). The caller wipes it (sodium_memzero) and frees it. */
char *backup_passphrase(const char *path, char *errbuf, size_t errlen);

/* The path of a new archive in dir: DIR/ward-HOST-TIME[-TAG].wbk, TIME
 * in UTC (20261205T221500Z), tag may be NULL. The caller frees it; NULL
 * when out of memory. */
char *backup_name(const char *dir, const char *tag);

/* What an archive is made of. */
struct backup_source {
	const char *data_dir;     /* the server's data directory */
	const char *database;     /* server.database: a PostgreSQL URI; "": ward.db in data_dir */
	const char *config_path;  /* its configuration file; NULL: none */
	const char *passphrase;   /* NUL-terminated, BACKUP_MIN_PASSPHRASE bytes or more */
};

/* Writes an archive of the server src describes to out, which must not
 * exist; nothing is left at out (nor beside it) on failure. The database
 * is copied first, in one step, while its server may go on writing; the
 * files the copy refers to follow. *manifest (may be NULL; the caller
 * owns it) gets the manifest: versions, time, host, and each part's name,
 * size and SHA-256. */
enum serr backup_create(const struct backup_source *src, const char *out, json_t **manifest,
			char *errbuf, size_t errlen);

/* Reads the cleartext header of the archive at path into *header (the
 * caller owns it): format, ward_version, schema, created, host. It is not
 * authenticated until the archive is read with its passphrase. */
enum serr backup_header(const char *path, json_t **header, char *errbuf, size_t errlen);

/* Reads the archive at path with passphrase, checking every record's
 * authenticity, every part's size and SHA-256 and the manifest, and the
 * structure of its database. With dest (a directory that must not exist)
 * the parts are written under it (data/..., config/wardd.ini, and
 * database/ward.pgdump: a PostgreSQL server's database) and stay
 * there only when all of it checks; without, nothing is kept. A wrong
 * passphrase, a damaged or truncated archive, a part out of bounds are
 * refused with what and where. *manifest (may be NULL) as for
 * backup_create(). */
enum serr backup_read(const char *path, const char *passphrase, const char *dest,
		      json_t **manifest, char *errbuf, size_t errlen);

#endif
