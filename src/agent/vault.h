/* vault.h -- the agent's quarantine service: the quarantine opened (and
 * half-done items recovered) at the agent's start, the respond step every
 * scan's detections go through (the policy's actions, the detection
 * report), restores and deletes, pruning, the agent's local exclusions
 * (files an administrator restored and excluded), and the inventory the
 * server is told of.
 *
 * Thread-safe: every function serialises on the vault's lock (the
 * quarantine itself is not thread-safe), which a restore holds while it
 * decrypts up to quarantine.max_size: the loop's thread calls only
 * vault_configure(), vault_excluded() and vault_exclusions(), which wait
 * for a lock of their own held briefly. The settings it acts on are a
 * copy vault_configure() replaces, so the channel's thread keeps its own.
 */
#ifndef WARD_AGENT_VAULT_H
#define WARD_AGENT_VAULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/aerr.h"
#include "agent/quarantine.h"

struct agent;
struct vault;

/* A file a scan found infected: the directory descriptor and entry name
 * it opened it through, and the device and inode it read. */
struct vault_detection {
	enum quarantine_source source;
	int dirfd;
	const char *name;                /* entry name in dirfd (no slash) */
	const char *path;                /* its path, for the report */
	dev_t dev;
	ino_t ino;
	const char *const *names;        /* signature names, at least one */
	size_t nnames;
	int64_t task;                    /* the task that found it; 0: none */
	pid_t pid;                       /* real time: who opened it; 0: none */
	const char *exe;                 /* real time: its executable; NULL: none */
	bool denied;                     /* real time: the access was denied */
};

/* Opens the quarantine of a's state directory and recovers what a killed
 * agent left half done (logged). A quarantine that cannot be opened is
 * logged and the vault works without it (quarantine actions then fail and
 * the second action runs). Returns NULL only when out of memory. The
 * caller closes it with vault_close(). */
struct vault *vault_open(struct agent *a);

/* Closes v (NULL is fine). */
void vault_close(struct vault *v);

/* Takes the settings that apply to the vault (action.*, quarantine.*)
 * from settings (NULL: the defaults; borrowed). Any thread. */
void vault_configure(struct vault *v, const json_t *settings);

/* The respond step: takes the policy's actions on the file d names and
 * fills report_out (an object the caller owns) with the detection's
 * members of docs/protocol.md ("time", "path", "name", "method",
 * "source", the action's members, "task", "process", "deny"), for the
 * caller to queue (reports_queue_detections()). Any thread. */
void vault_respond(struct vault *v, const struct vault_detection *d, json_t *report_out);

/* vault_respond() for a file a tree scan found by its path (d->dirfd and
 * d->name are not used: the directory of d->path is opened here, and the
 * file acted on only if still d->dev, d->ino). Returns the detection (a
 * new object), or NULL (out of memory, or v NULL: the caller reports the
 * plain detection). Any thread. */
json_t *vault_respond_path(struct vault *v, const struct vault_detection *d);

/* Restores item id to its path (replacing a file there when overwrite);
 * with exclude, its path is added to the local exclusions. Returns
 * AERR_OK or a code with errbuf set. Any thread. */
enum aerr vault_restore(struct vault *v, const char *id, bool overwrite, bool exclude,
			char *errbuf, size_t errlen);

/* Deletes item id. Returns AERR_OK or a code with errbuf set. Any thread. */
enum aerr vault_delete(struct vault *v, const char *id, char *errbuf, size_t errlen);

/* The quarantine's items as a new array of inventory RECORDs (state
 * "stored"), or NULL with errbuf set. Any thread. */
json_t *vault_list(struct vault *v, char *errbuf, size_t errlen);

/* Removes what is past quarantine.retention_days and quarantine.max_size
 * (logged, and reported in the inventory). Any thread. */
void vault_prune(struct vault *v);

/* True when path is one of the local exclusions or under one: scans and
 * real-time scanning leave it alone. Any thread. */
bool vault_excluded(struct vault *v, const char *path);

/* The local exclusions: a new array of paths (NULL when out of memory).
 * Any thread. */
json_t *vault_exclusions(struct vault *v);

/* The directories of the vaults in use: a new array of paths (NULL when out
 * of memory). What is in a vault is never acted upon, and its items are
 * encrypted: tree scans leave them out. Any thread but the loop's (it
 * waits for a restore). */
json_t *vault_paths(struct vault *v);

/* Tells the server the inventory (complete after the start, then the
 * changes), through a->up.rc: the channel's thread. What is not accepted
 * is sent again next time. */
void vault_report(struct vault *v);

#endif
