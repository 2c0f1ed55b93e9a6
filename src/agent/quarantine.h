/* quarantine.h -- the agent's encrypted quarantine.
 *
 * A vault per filesystem: a 0700 directory `.ward-quarantine` at the root
 * of the file's mount (or a configured directory on that filesystem; the
 * state directory's own vault `STATE/quarantine` for its filesystem), so a
 * quarantined file is moved there by rename and never exists twice. A
 * filesystem without a usable vault (read-only, or a `.ward-quarantine`
 * that is not the agent's 0700 directory) has its files encrypted straight
 * into the state directory's vault, verified, and only then unlinked.
 *
 * Each item is a pair `ID.meta` (the metadata, authenticated and
 * encrypted) and `ID.data` (the contents, encrypted with
 * crypto_secretstream_xchacha20poly1305 under a random per-item key that
 * the meta file holds wrapped with the agent's key `STATE/quarantine.key`,
 * and optionally sealed to the server's public key). Format and crash
 * states: docs/formats.md, "Quarantine vault".
 *
 * Not thread-safe: one thread (the agent's loop) uses a quarantine.
 */
#ifndef WARD_AGENT_QUARANTINE_H
#define WARD_AGENT_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "agent/aerr.h"

#define QUARANTINE_KEY_BYTES 32
#define QUARANTINE_SERVER_PK_BYTES 32
#define QUARANTINE_ID_LEN 32 /* hex digits of the 128-bit id */

/* What found the file. */
enum quarantine_source {
	QUARANTINE_SOURCE_REALTIME,
	QUARANTINE_SOURCE_SCHEDULED,
	QUARANTINE_SOURCE_SCAN_NOW,
	QUARANTINE_SOURCE_MANUAL,
	QUARANTINE_SOURCE_CLAMD,  /* the clamd service's path scans (clamd.actions) */
};

/* The durable steps of quarantine_put(), then of quarantine_restore(), in
 * order, each reported to the progress callback once it is done (the fault
 * tests kill the process at each). MOVED only when the vault is on the
 * file's own filesystem; RESTORE_PLACED only when the restored file went
 * through a temporary name (overwrite, or no O_TMPFILE). */
enum quarantine_step {
	QUARANTINE_STEP_INTENT,   /* the intent (what is being moved, from where) is on disk */
	QUARANTINE_STEP_MOVED,    /* the file is in its vault under ID.plain, not encrypted */
	QUARANTINE_STEP_DATA,     /* the first chunk of ID.data is written, not flushed */
	QUARANTINE_STEP_SYNCED,   /* ID.data is flushed */
	QUARANTINE_STEP_VERIFIED, /* ID.data decrypted again and its hash compared */
	QUARANTINE_STEP_META,     /* ID.meta is written under its temporary name */
	QUARANTINE_STEP_COMMITTED, /* ID.meta is in place: the item exists */
	QUARANTINE_STEP_CLEANED,  /* ID.plain (or, across filesystems, the original) unlinked */
	QUARANTINE_STEP_DONE,     /* the intent removed */
	QUARANTINE_STEP_RESTORE_CREATED, /* the unnamed (or temporary) file made, empty */
	QUARANTINE_STEP_RESTORE_WRITTEN, /* the contents decrypted into it, hash checked */
	QUARANTINE_STEP_RESTORE_META,    /* owner, attributes, mode and times set, flushed */
	QUARANTINE_STEP_RESTORE_LINKED,  /* linked at its path (or its temporary name) */
	QUARANTINE_STEP_RESTORE_PLACED,  /* renamed from the temporary name to its path */
	QUARANTINE_STEP_RESTORE_REMOVED, /* the item removed from its vault */
	QUARANTINE_STEP_COUNT,
};

/* Called after each step of quarantine_put() and quarantine_restore(), on
 * the calling thread. */
typedef void (*quarantine_progress_fn)(void *arg, enum quarantine_step step);

/* Options of quarantine_open(). Zero-initialise; every field is optional. */
struct quarantine_config {
	/* Extra vault directories, each used (rather than one at the root)
	 * for the files of its filesystem; made 0700 when missing, and like
	 * every vault used only when a 0700 directory of the agent's user. */
	const char *const *vault_dirs;
	size_t n_vault_dirs;
	/* When non-NULL (QUARANTINE_SERVER_PK_BYTES, crypto_box), each item's
	 * key is also sealed to it, so the server can decrypt central copies. */
	const unsigned char *server_pk;
	/* When true, no vault at a filesystem's root is made or used: the
	 * files of filesystems without a configured vault are encrypted into
	 * the state directory's vault, verified, then unlinked. */
	bool no_root_vaults;
	quarantine_progress_fn progress;
	void *progress_arg;
};

/* What a detection says about the file, kept in its record. */
struct quarantine_detection {
	const char *const *names; /* signature names, at least one */
	size_t n_names;
	const char *component; /* the component that found it, e.g. "ward-main" */
	const char *version;   /* its version */
	enum quarantine_source source;
};

/* One extended attribute, name and raw value. */
struct quarantine_xattr {
	char *name;
	unsigned char *value;
	size_t len;
};

/* A quarantined item: everything known about the original file. */
struct quarantine_record {
	char id[QUARANTINE_ID_LEN + 1];
	char *path; /* the original path's bytes, NUL-terminated (not always UTF-8) */
	uint64_t size;
	unsigned char sha256[32];
	uint32_t uid, gid, mode; /* mode: type and permission bits as st_mode */
	int64_t atime_ns, mtime_ns, ctime_ns;
	uint64_t dev, ino;       /* of the original */
	struct quarantine_xattr *xattrs;
	size_t n_xattrs;
	char **names;
	size_t n_names;
	char *component, *version;
	int64_t time;            /* Unix seconds when quarantined */
	enum quarantine_source source;
	bool cross;              /* copied across filesystems rather than moved */
};

struct quarantine;

/* Opens the quarantine of the state directory state_dir (its vault
 * STATE/quarantine is made 0700 when missing). key: QUARANTINE_KEY_BYTES of
 * key, or NULL to use STATE/quarantine.key (made 0600 on first use; refused
 * when group or others can read it). config may be NULL. Does not recover
 * half-done items: call quarantine_recover() next. Returns AERR_OK and
 * *out (the caller closes it), or a code with errbuf set. */
enum aerr quarantine_open(const char *state_dir, const unsigned char *key,
			  const struct quarantine_config *config, struct quarantine **out,
			  char *errbuf, size_t errlen);

/* Closes q (NULL is fine) and wipes its key from memory. */
void quarantine_close(struct quarantine *q);

/* Finishes or rolls back every item a killed agent left half done, so
 * each file is either back in place or a whole item: a file moved but not
 * yet encrypted is encrypted; a copy across filesystems whose original is
 * still in place is removed; partial files are removed. Each fix is
 * logged; *fixed (may be NULL) counts them. Returns AERR_OK, or the first
 * failure with errbuf set (the other items are still handled). */
enum aerr quarantine_recover(struct quarantine *q, size_t *fixed, char *errbuf, size_t errlen);

/* Quarantines the entry name of the directory dirfd, which a scan found
 * to be the file dev/ino: refuses (AERR_TYPE) a symbolic link (never
 * followed), FIFO, device or directory, and (AERR_REFUSED) a file in a
 * vault; AERR_GONE when it no longer exists; AERR_CHANGED when it is
 * another file now. On failure the file is left where it was (AERR_IO: a
 * full disk, a read-only filesystem...). On success fills *out (may be
 * NULL; release with quarantine_record_free()). */
enum aerr quarantine_put(struct quarantine *q, int dirfd, const char *name, dev_t dev, ino_t ino,
			 const struct quarantine_detection *det, struct quarantine_record *out,
			 char *errbuf, size_t errlen);

/* Lists the items of every vault in *out (an array of *n records, oldest
 * first; release with quarantine_records_free()). An item that does not
 * authenticate is left out and logged as a warning; *broken (may be NULL)
 * counts them. Returns AERR_OK or a code with errbuf set. */
enum aerr quarantine_list(struct quarantine *q, struct quarantine_record **out, size_t *n,
			  size_t *broken, char *errbuf, size_t errlen);

/* Reads item id into *out (release with quarantine_record_free()):
 * AERR_NOTFOUND when no vault has it, AERR_TAMPERED when its metadata does
 * not authenticate (errbuf says so). The contents are not checked. */
enum aerr quarantine_get(struct quarantine *q, const char *id, struct quarantine_record *out,
			 char *errbuf, size_t errlen);

/* Restores item id to its original path: decrypted into an unnamed file
 * in the original directory (reached without following symbolic links),
 * given the original owner, group, mode, extended attributes and access
 * and modification times, its SHA-256 checked, then linked into place.
 * An existing file there is replaced only when overwrite is true
 * (otherwise AERR_EXISTS), through the temporary name .ward-restore-ID
 * beside it (a whole copy that a kill may leave; the next restore of the
 * item removes it). Contents that do not authenticate give
 * AERR_TAMPERED and nothing is written. On success the item is removed
 * from the vault and *out (may be NULL) holds its record. */
enum aerr quarantine_restore(struct quarantine *q, const char *id, bool overwrite,
			     struct quarantine_record *out, char *errbuf, size_t errlen);

/* Removes item id from its vault (logged). AERR_NOTFOUND when absent. */
enum aerr quarantine_delete(struct quarantine *q, const char *id, char *errbuf, size_t errlen);

/* Removes the items quarantined more than retention_days days before now
 * (Unix seconds), then the oldest until the vaults hold at most max_bytes
 * (both 0: no limit), each logged. *pruned (may be NULL) counts them. */
enum aerr quarantine_prune(struct quarantine *q, int64_t now, unsigned retention_days,
			   uint64_t max_bytes, size_t *pruned, char *errbuf, size_t errlen);

/* Writes into out[0..max) the directories of the vaults in use (owned by q,
 * valid until it is closed), so that scans and real-time scanning can
 * leave them out; returns how many there are (may exceed max). */
size_t quarantine_vault_paths(const struct quarantine *q, const char **out, size_t max);

/* True when dirfd is one of q's vaults: what is in a vault (an item being
 * encrypted among them) is never acted upon. */
bool quarantine_in_vault(const struct quarantine *q, int dirfd);

/* Opens item id's meta and data files read-only into *meta_fd and
 * *data_fd (the caller closes them), for a copy to the server's central
 * quarantine: the server opens them with its key when the item key was
 * sealed to it. AERR_NOTFOUND when no vault has the item. */
enum aerr quarantine_item_files(struct quarantine *q, const char *id, int *meta_fd, int *data_fd,
				char *errbuf, size_t errlen);

/* Returns r as the inventory's RECORD (docs/protocol.md): {"id", "path"
 * (bytes from 0x80 up as \xNN when not UTF-8), "size", "sha256", "names",
 * "time", "source", "state"} with state ("stored", "restored", "deleted").
 * NULL when out of memory. The caller owns it. Thread-safe. */
json_t *quarantine_record_json(const struct quarantine_record *r, const char *state);

/* Frees what r holds (not r itself) and zeroes it. */
void quarantine_record_free(struct quarantine_record *r);

/* Frees an array from quarantine_list(). */
void quarantine_records_free(struct quarantine_record *r, size_t n);

/* The source's name as reports spell it ("realtime", "scheduled",
 * "scan_now", "manual"). */
const char *quarantine_source_name(enum quarantine_source s);

/* The record format, for the fuzz target and the server's reader:
 * seals the metadata text json (len bytes) as the meta file of item id
 * (QUARANTINE_ID_LEN hex digits) under key, its data key item_key
 * (QUARANTINE_KEY_BYTES) wrapped in it. Returns a new allocation of *size
 * bytes, or NULL when out of memory. Thread-safe. */
unsigned char *quarantine_meta_seal(const char *id, const unsigned char *key,
				    const unsigned char *item_key, const char *json, size_t len,
				    size_t *size);

/* Opens the meta file bytes buf (len) of item id with key: checks its
 * magic and id, unwraps the item key into item_key (may be NULL),
 * authenticates and decrypts the metadata and parses it into *out. Returns
 * AERR_OK, or AERR_TAMPERED with errbuf naming what failed. Thread-safe. */
enum aerr quarantine_meta_open(const unsigned char *buf, size_t len, const char *id,
			       const unsigned char *key, unsigned char *item_key,
			       struct quarantine_record *out, char *errbuf, size_t errlen);

#endif
