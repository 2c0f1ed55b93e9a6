/* state.h -- the files of a daemon's state directory (ward-agent's,
 * ward-sps's): each replaced atomically with mode 0600, so the daemon may
 * be killed at any moment, and a failure logged naming the file.
 * Thread-safe: no state.
 */
#ifndef WARD_STATE_H
#define WARD_STATE_H

#include <jansson.h>
#include <stdbool.h>

/* Replaces path with text. Returns false (logged) on failure. */
bool state_write(const char *path, const char *text);

/* Replaces path with obj as indented JSON with sorted keys. Returns false
 * (logged) on failure. */
bool state_write_json(const char *path, const json_t *obj);

#endif
