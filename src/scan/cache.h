/* cache.h -- the persistent scan cache: verdicts of files under a signature set.
 *
 * A cache directory holds one table per signature-set identity
 * (engine_sigset_id()). A table is a sorted array of file identities
 * (device, inode, size, mtime, ctime), each with its verdict: clean, or the
 * names of the signatures that matched. A file whose identity is found need
 * not be scanned again: the same bytes under the same signatures give the
 * same verdict. Writing a file changes its ctime, which no user can set, so
 * a modified or replaced file never matches. The format is documented in
 * docs/formats.md.
 *
 * Thread-safety: scache_lookup() and scache_add() may be called from any
 * number of threads; scache_open(), scache_save() and scache_close() not
 * concurrently with anything else on the same cache. Several processes may
 * share a directory: scache_save() merges under a lock.
 */
#ifndef WARD_SCAN_CACHE_H
#define WARD_SCAN_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "scan/scan.h"

/* The identity of a file as the cache keys it. */
struct scache_key {
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
};

/* A stored entry: a file identity and its verdict. */
struct scache_entry {
	struct scache_key key;
	uint32_t names_off;  /* into the table's names area */
	uint32_t names_len;  /* bytes of NUL-terminated signature names; 0 = clean */
};

/* Upper bound on entries kept in one table; past it, entries neither added
 * nor confirmed by this run are dropped when saving. */
#define SCACHE_MAX_ENTRIES 4000000u

struct scache;

/* Fills *key from a stat result. */
void scache_key_from_stat(struct scache_key *key, const struct stat *st);

/* Opens (creating if needed) the cache directory dir for the signature set
 * id. A missing or unusable table (corrupt, other version, other machine
 * word order) starts empty; *warning then says why, for a message. Returns
 * SCAN_OK, or SCAN_EIO / SCAN_ENOMEM with errbuf naming the problem; the
 * caller owns the returned cache. */
enum scan_err scache_open(const char *dir, const unsigned char id[32],
			  struct scache **out, char *warning, size_t warnlen,
			  char *errbuf, size_t errlen);

/* Looks key up. Returns false when it is not recorded; true when it is,
 * with *names and *len the signature names that matched, NUL-terminated one
 * after another (*len 0: clean), valid until scache_close(). */
bool scache_lookup(struct scache *c, const struct scache_key *key, const char **names,
		   size_t *len);

/* Records the verdict of key: clean when nnames is 0, else the names that
 * matched (copied; kept in memory until scache_save()). Returns SCAN_OK or
 * SCAN_ENOMEM. */
enum scan_err scache_add(struct scache *c, const struct scache_key *key, char *const *names,
			 size_t nnames);

/* Returns how many verdicts the table held when opened. */
size_t scache_entries(const struct scache *c);

/* Signature count stored with the table (0 when unknown), so a run that
 * needs no scan can still report it without loading the signatures. */
uint32_t scache_signatures(const struct scache *c);
void scache_set_signatures(struct scache *c, uint32_t sigs);

/* Writes the table back: merges what is on disk now (another process may
 * have saved meanwhile) with this run's additions, replacing entries of the
 * same device and inode, and renames the result into place. Also removes
 * the tables of all but the most recently used signature sets. */
enum scan_err scache_save(struct scache *c, char *errbuf, size_t errlen);

/* Frees the cache without saving. */
void scache_close(struct scache *c);

/* A table's contents, pointing into its serialised bytes. */
struct scache_table {
	const struct scache_entry *entries;  /* sorted by device and inode */
	size_t n;
	const char *names;                   /* the names area */
	size_t names_len;
	uint32_t signatures;
};

/* Validates a serialised table (the whole file's bytes, 8-byte aligned)
 * for id and describes it in *t. Exposed for the fuzz target and tests.
 * Returns NULL on success or a static text naming the defect. */
const char *scache_parse(const unsigned char *buf, size_t len, const unsigned char id[32],
			 struct scache_table *t);

/* Serialises t (entries sorted and unique) for id into a new allocation
 * (*out, *outlen) the caller frees. Returns SCAN_OK or SCAN_ENOMEM. */
enum scan_err scache_serialise(const struct scache_table *t, const unsigned char id[32],
			       unsigned char **out, size_t *outlen);

#endif
