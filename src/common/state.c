/* state.c -- state directory files (see state.h). */
#include "common/state.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rest.h"
#include "common/util.h"

bool state_process_init(void)
{
	if (sodium_init() < 0)
		return false;
	rest_global_init();
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	return true;
}

bool state_write(const char *path, const char *text)
{
	if (util_replace_file(path, text, strlen(text), 0600) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

json_t *state_read_bundle(const char *path, const char **server, const char **ca,
			  const char **token)
{
	json_error_t jerr;
	json_t *bundle = json_load_file(path, 0, &jerr);

	if (!bundle || json_unpack(bundle, "{s:s, s:s, s:s}", "server", server, "ca", ca,
				   "token", token) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: not an enrollment bundle%s%s", path,
			bundle ? "" : ": ", bundle ? "" : jerr.text);
		json_decref(bundle);
		return NULL;
	}
	return bundle;
}

bool state_enroll_begin(const char *state_dir, const char *cred_path)
{
	if (access(cred_path, F_OK) == 0) {
		log_msg(LOG_LVL_ERROR, "already enrolled (%s exists); remove the state directory "
			"to enroll anew", cred_path);
		return false;
	}
	if (util_mkdir_p(state_dir, 0700) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: %s", state_dir, strerror(errno));
		return false;
	}
	return true;
}

json_t *state_enroll(const char *server, const char *ca_file, const char *token,
		     const char *path, json_t *body)
{
	struct rest_client *rc = rest_new(server, ca_file);
	json_t *answer = NULL;
	const char *why;
	char msg[512];
	long status;

	if (!rc || !body || rest_set_token(rc, token) != 0) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto fail;
	}
	if (rest_call(rc, "POST", path, body, 60, &status, &answer, msg, sizeof(msg)) !=
	    ERR_OK) {
		log_msg(LOG_LVL_ERROR, "enroll: %s", msg);
		goto fail;
	}
	if (status != 201 || !json_is_object(answer)) {
		why = json_string_value(json_object_get(answer, "error"));
		log_msg(LOG_LVL_ERROR, "enroll: the server answered %ld: %s", status,
			why ? why : "(no message)");
		goto fail;
	}
	rest_free(rc);
	return answer;
fail:
	json_decref(answer);
	rest_free(rc);
	return NULL;
}

json_t *state_read_credential(const char *path, const char *program, char **token)
{
	json_t *cred = json_load_file(path, 0, NULL);
	const char *server, *uuid, *secret;

	if (!cred || json_unpack(cred, "{s:s, s:s, s:s}", "server", &server, "uuid", &uuid,
				 "secret", &secret) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: not enrolled (run %s enroll first)", path, program);
		json_decref(cred);
		return NULL;
	}
	*token = util_printf("%s:%s", uuid, secret);
	if (!*token) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		json_decref(cred);
		return NULL;
	}
	return cred;
}

bool state_write_json(const char *path, const json_t *obj)
{
	if (util_write_json(path, obj) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: %s", path, strerror(errno));
		return false;
	}
	return true;
}
