/* fuzz_state.c -- libFuzzer target for the files of a daemon's state
 * directory that ward-agent and ward-sps read back at start: the
 * enrollment bundle, and the credential (credential.json) with its pinned
 * package key. The input's first byte picks the file; the rest is it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/state.h"
#include "common/updater.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *server, *ca, *token;
	struct updater up = { 0 };
	char *cred_token = NULL;
	json_t *j;

	if (size < 1)
		return 0;
	log_set_level(LOG_LVL_ERROR);
	if (data[0] & 1) {
		j = state_read_credential(scratch_file("credential.json", data + 1, size - 1),
					  "ward-agent", &cred_token);
		if (j) {
			if (!cred_token || !strchr(cred_token, ':'))
				abort();
			(void)updater_load_pin(&up, j);
		}
	} else {
		j = state_read_bundle(scratch_file("enroll.bundle", data + 1, size - 1), &server,
				      &ca, &token);
		if (j && (!server || !ca || !token))
			abort();
	}
	free(cred_token);
	json_decref(j);
	return 0;
}
