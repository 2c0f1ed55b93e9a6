/* threats.h -- the threats the agent found and left in place, for the
 * posture report (docs/protocol.md, "Posture").
 *
 * A detection whose actions did not take its file away (pass, real time's
 * deny, or actions that failed) leaves a threat on the host. They are kept
 * in STATE/threats.json, by path, until one of these resolves them: a
 * later detection of the same file whose action took it away; the file
 * gone; a full scan (scan.paths) that covered its path, completed without
 * finding it again, and left no file unverified or unscanned (the entries
 * older than its start go). Detections of the clamd service
 * are its clients' files, not the host's: not kept.
 *
 * Every function takes the list's lock (flock): any thread, any process
 * of the agent's.
 */
#ifndef WARD_AGENT_THREATS_H
#define WARD_AGENT_THREATS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct agent;

/* Notes the detections found (an array of docs/protocol.md's detections;
 * borrowed): a threat left is kept, one taken away forgets its path. */
void threats_note(const struct agent *a, const json_t *found);

/* A full scan of roots (nroots; the trees it scanned, exclude the trees it
 * passed over) that started at started (epoch seconds) has completed
 * without an unverified file or an error: the threats it covered noted
 * before it go (it found again those still there). */
void threats_full_scan(const struct agent *a, int64_t started, const char *const *roots,
		       size_t nroots, const char *const *exclude, size_t nexclude);

/* The status's "unresolved": {"count": N, "newest": [{"time", "path",
 * "name"}, ...] (at most 5, oldest first; path and name with control
 * characters escaped, at most 200 bytes)}, after forgetting the threats
 * whose file is gone; a new JSON null when the list cannot be read. The
 * caller owns it. */
json_t *threats_status(const struct agent *a);

#endif
