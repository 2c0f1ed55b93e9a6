/* fuzz_quarantine.c -- libFuzzer target for quarantine records, which the
 * agent reads back from vaults anyone with the disk can alter (and the
 * server may read from central copies). The input's first byte picks what
 * the rest is: a meta file opened with a key nobody holds (nothing may
 * open); metadata text the harness seals with its own key before opening,
 * so that the field checks behind the AEAD are reached; or a data file
 * restored under a valid meta file (the contents must never authenticate). */
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/quarantine.h"
#include "common/util.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char item_id[] = "00112233445566778899aabbccddeeff";
static const unsigned char harness_key[QUARANTINE_KEY_BYTES] = "ward fuzz_quarantine harness key";
static const unsigned char item_key[QUARANTINE_KEY_BYTES] = "ward fuzz_quarantine item key 32";

/* Restores a data file of the fuzzer's bytes under a valid meta file. */
static void restore_data(const uint8_t *data, size_t size)
{
	static struct quarantine *q;
	char state[600], vault[700], path[800], json[2048], err[512];
	unsigned char *meta;
	size_t len;

	snprintf(state, sizeof(state), "%s/state", scratch_dir());
	if (!q) {
		mkdir(state, 0700);
		if (quarantine_open(state, harness_key, NULL, &q, err, sizeof(err)) != AERR_OK)
			abort();
	}
	snprintf(vault, sizeof(vault), "%s/quarantine", state);
	snprintf(path, sizeof(path), "%s/restored", scratch_dir());
	{
		char hex[sizeof(path) * 2 + 1];

		sodium_bin2hex(hex, sizeof(hex), (const unsigned char *)path, strlen(path));
		snprintf(json, sizeof(json), "{\"v\":1,\"path\":\"%.900s\",\"size\":3,\"sha256\":"
			 "\"%064d\",\"uid\":%u,\"gid\":%u,\"mode\":33152,\"atime_ns\":1,"
			 "\"mtime_ns\":2,\"ctime_ns\":3,\"dev\":1,\"ino\":2,\"xattrs\":[],"
			 "\"names\":[\"Eicar\"],\"component\":\"c\",\"version\":\"1\",\"time\":5,"
			 "\"source\":\"manual\",\"cross\":false}", hex, 0, (unsigned)getuid(),
			 (unsigned)getgid());
	}
	meta = quarantine_meta_seal(item_id, harness_key, item_key, json, strlen(json), &len);
	if (!meta)
		return;
	snprintf(path, sizeof(path), "%s/%s.meta", vault, item_id);
	util_write_file(path, meta, len, 0600);
	free(meta);
	snprintf(path, sizeof(path), "%s/%s.data", vault, item_id);
	util_write_file(path, data, size, 0600);
	/* Nobody without the item key can make contents that authenticate. */
	if (quarantine_restore(q, item_id, true, NULL, err, sizeof(err)) == AERR_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char nobody[QUARANTINE_KEY_BYTES] = { 1 };
	struct quarantine_record r;
	unsigned char *meta;
	char msg[512];
	size_t len;

	if (size < 1 || sodium_init() < 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (quarantine_meta_open(data + 1, size - 1, item_id, nobody, NULL, &r, msg,
					 sizeof(msg)) == AERR_OK)
			abort(); /* nobody holds that key: nothing may open */
		break;
	case 1:
		meta = quarantine_meta_seal(item_id, harness_key, item_key, (const char *)data + 1,
					    size - 1, &len);
		if (meta && quarantine_meta_open(meta, len, item_id, harness_key, NULL, &r, msg,
						 sizeof(msg)) == AERR_OK)
			quarantine_record_free(&r);
		free(meta);
		break;
	default:
		restore_data(data + 1, size - 1);
	}
	return 0;
}
