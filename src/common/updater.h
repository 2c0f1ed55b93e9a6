/* updater.h -- the agent's signature components: which versions are
 * installed, and bringing one up to date.
 *
 * Components live in DIR/NAME/VERSION/ with DIR/NAME/current, a symbolic
 * link to the version in use, replaced atomically. An update asks the
 * server how to reach the newest version (a chain of deltas or the full
 * package), downloads each payload from the update source the server
 * names (falling back to the server itself) into a temporary file,
 * verifies it (the signature by the pinned key, the version newer than the
 * installed one, the payload's SHA-256), puts the version together beside
 * the installed one and checks every file. The server's answer also
 * carries the key rotation chain: a record signed by the pinned key moves
 * the pin to the key it names (key and rotated are updated; the caller
 * stores the new pin). Nothing in use is touched
 * until updater_commit(): a cut download, a refused package or a failed
 * load leaves the installed version as it was. A delta that does not fit
 * (a broken chain) is replaced by the full package.
 *
 * Version numbers count within one server's sequence: DIR/NAME/origin
 * names the package signing key the installed version was verified with,
 * and that version.
 * When that key does not lead to the pinned one by the server's rotation
 * chain (the agent moved to another server), or the installed version is
 * newer than the server's newest, the update starts over with the full
 * package.
 *
 * Not thread-safe: one updater per thread, using its own REST client.
 */
#ifndef WARD_UPDATER_H
#define WARD_UPDATER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "common/pkg.h"
#include "common/rest.h"
#include "common/err.h"


struct updater {
	struct rest_client *rc;              /* to the server, with the agent's token */
	const char *dir;                     /* where components live */
	unsigned char key[PKG_PK_BYTES];     /* the pinned package signing key */
	unsigned max_wait;                   /* seconds to keep retrying a busy server */
	const atomic_bool *abort;            /* set: waits for a busy server end (NULL: never) */
	bool rotated;                        /* key changed by a rotation: pin it */
};

/* Downloads file (size bytes) into path: from the update source when
 * there is one (source NULL: none), else (or when the source fails) from
 * the server, waiting as a busy server asks, with random jitter so that
 * refused agents do not come back together. */
enum err updater_download(struct updater *u, const char *source, const char *file,
			  int64_t size, const char *path, char *errbuf, size_t errlen);

/* Takes the pinned key from a credential's "package_key" (hex). Returns
 * false when it is missing or malformed. */
bool updater_load_pin(struct updater *u, const json_t *cred);

/* Stores u's key as the "package_key" of the credential file at path
 * (replaced atomically), after a rotation moved the pin; clears rotated.
 * so that the pin survives a restart. A failure is logged: the new pin
 * then holds until the daemon restarts. */
void updater_store_pin(struct updater *u, const char *path);

/* Opens an instruction the server signed ({"signed": envelope,
 * "rotations": chain}, from updates_sign()): follows the chain from the
 * pinned key (u->rotated then says to store the pin), then checks the
 * envelope against the key. Stores the instruction in *content (a new
 * reference); errors name what failed. */
enum err updater_open_signed(struct updater *u, const json_t *instruction, json_t **content,
			     char *errbuf, size_t errlen);

/* Returns the version of component in use under dir (0: none). */
int64_t updater_installed(const char *dir, const char *component);

/* Writes the directory of component's version under dir into buf. */
void updater_path(const char *dir, const char *component, int64_t version, char *buf,
		  size_t len);

/* Brings component to the server's newest version, put together in its
 * own directory but not yet in use: *staged is that version, or 0 when
 * the installed one is current. Errors are logged and described in
 * errbuf. */
enum err updater_fetch(struct updater *u, const char *component, int64_t *staged,
		       char *errbuf, size_t errlen);

/* Makes staged version of component the one in use, records the key it
 * was verified with as its origin, and removes the others. Returns 0, or
 * -1 with errno set. */
int updater_commit(const struct updater *u, const char *component, int64_t version);

/* Removes a staged version that is not to be used; one staged in place of
 * an installed version of the same number gives that one back. */
void updater_discard(const struct updater *u, const char *component, int64_t version);

#endif
