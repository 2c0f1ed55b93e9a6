/* state.h -- the files of a daemon's state directory (ward-agent's,
 * ward-sps's) and the enrollment that fills it: each file replaced
 * atomically with mode 0600, so the daemon may be killed at any moment,
 * and a failure logged naming the file.
 * Thread-safe: no state.
 */
#ifndef WARD_STATE_H
#define WARD_STATE_H

#include <jansson.h>
#include <stdbool.h>

/* The process setup of a daemon with a state directory: libsodium and
 * libcurl initialised, SIGPIPE ignored (a peer closing is an error
 * return), files private (umask 077). Call first, single-threaded.
 * Returns false when libsodium cannot start. */
bool state_process_init(void);

/* Replaces path with text. Returns false (logged) on failure. */
bool state_write(const char *path, const char *text);

/* Replaces path with obj as indented JSON with sorted keys. Returns false
 * (logged) on failure. */
bool state_write_json(const char *path, const json_t *obj);

/* Reads the enrollment bundle wardd wrote (server URL, CA certificate,
 * enrollment token). Returns the bundle, owned by the caller, with
 * *server, *ca and *token pointing into it; NULL (logged) when path is
 * not a bundle. */
json_t *state_read_bundle(const char *path, const char **server, const char **ca,
			  const char **token);

/* Before an enrollment: refuses (logged) when cred_path shows one was
 * done, else creates state_dir (mode 0700). Returns false on refusal or
 * failure. */
bool state_enroll_begin(const char *state_dir, const char *cred_path);

/* Posts an enrollment body to path at server (trusting the CA in
 * ca_file, authenticated by token). Returns the answer of a 201, owned by
 * the caller; NULL (logged with the server's reason) otherwise. */
json_t *state_enroll(const char *server, const char *ca_file, const char *token,
		     const char *path, json_t *body);

/* Reads the credential at path. Returns it, owned by the caller, with
 * *token (malloc'd, the caller frees it) set to "uuid:secret"; NULL
 * (logged, telling to run program's enroll) when path holds none. */
json_t *state_read_credential(const char *path, const char *program, char **token);

#endif
