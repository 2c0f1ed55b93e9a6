/* fuzz_comp.c -- libFuzzer target for putting a component version
 * together from a package (comp_assemble()), as agents and smart
 * protection servers do: the payload's members (whole files and set
 * deltas) against an installed version in the scratch directory. The
 * harness builds the payload archive from the input, so that the fuzzer
 * spends its time on the members rather than on the tar format (which
 * fuzz_pack covers): the input's first byte picks the file the manifest
 * names; then come members, each a byte picking its name, two bytes of
 * length (little-endian) and its bytes. A delta member's header is fixed
 * up to name the installed file it applies to, as in fuzz_sdelta. */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/comp.h"
#include "common/pack.h"
#include "common/util.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NNAMES 8
static const char *const names[NNAMES] = {
	"main.hdb", "main.hdb.wsd", COMP_PREFIX_FILE, COMP_PREFIX_FILE ".wsd", "bytecode.cbc",
	"new.ndb", "new.ndb.wsd", "extra.txt",
};

/* The installed version's files and, for set files, the SHA-256 of their
 * set form (what a delta names as its base). */
static const char hdb[] = "a:1:A\nb:2:B\nc:3:C\n";
static const char records[] = "\x01\xaa\xaa\xaa\x00" "\x01\xbb\xbb\xbb\x00"
			       "\x03\xcc\xcc\xcc\x00" "\x11\x18\x00\x00\x00"
			       "\x13\x18\x00\x00\x00";
static unsigned char hdb_hash[32], records_hash[32];
static char installed[600];

static void setup(void)
{
	struct util_buf wpx = { 0 };
	char path[700], msg[256];

	if (sodium_init() < 0)
		abort();
	scratch_path(installed, sizeof(installed), "installed");
	if (util_mkdir_p(installed, 0700) != 0 ||
	    comp_set_write(COMP_PREFIX_FILE, records, sizeof(records) - 1, &wpx, msg,
			   sizeof(msg)) != ERR_OK)
		abort();
	snprintf(path, sizeof(path), "%s/main.hdb", installed);
	if (util_write_file(path, hdb, sizeof(hdb) - 1, 0600) != 0)
		abort();
	snprintf(path, sizeof(path), "%s/%s", installed, COMP_PREFIX_FILE);
	if (util_write_file(path, wpx.data, wpx.len, 0600) != 0)
		abort();
	snprintf(path, sizeof(path), "%s/bytecode.cbc", installed);
	if (util_write_file(path, "bytecode", 8, 0600) != 0)
		abort();
	util_buf_free(&wpx);
	crypto_hash_sha256(hdb_hash, (const unsigned char *)hdb, sizeof(hdb) - 1);
	crypto_hash_sha256(records_hash, (const unsigned char *)records, sizeof(records) - 1);
}

/* Writes member i's bytes to dir, a delta's header fixed up first. */
static void write_member(const char *dir, unsigned i, const uint8_t *p, size_t n)
{
	unsigned char *d = malloc(n + 1);
	char path[700];
	bool prefix = strcmp(names[i], COMP_PREFIX_FILE ".wsd") == 0;

	if (!d)
		abort();
	memcpy(d, p, n);
	if (strstr(names[i], ".wsd") && n >= 9 + 32) {
		memcpy(d, "WSDELTA2", 8);
		d[8] = prefix ? COMP_PREFIX_WIDTH : 0;
		memcpy(d + 9, prefix ? records_hash : hdb_hash, 32);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
	if (util_write_file(path, d, n, 0600) != 0)
		abort();
	free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	const char *list[NNAMES];
	char members[600], work[600], out[600], payload[600], msg[512];
	bool have[NNAMES] = { false };
	size_t at, len, n = 0;
	unsigned i;
	json_t *manifest;

	if (size < 1)
		return 0;
	if (!ready) {
		setup();
		ready = true;
	}
	scratch_path(members, sizeof(members), "members");
	scratch_path(work, sizeof(work), "work");
	scratch_path(out, sizeof(out), "out");
	scratch_path(payload, sizeof(payload), "payload.tar.zst");
	if (mkdir(members, 0700) != 0 || mkdir(work, 0700) != 0)
		abort();
	for (at = 1; at + 3 <= size; at += 3 + len) {
		i = data[at] % NNAMES;
		len = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;
		if (len > size - at - 3)
			len = size - at - 3;
		write_member(members, i, data + at + 3, len);
		if (!have[i])
			list[n++] = names[i];
		have[i] = true;
	}
	if (pack_write(payload, members, list, n, 1, msg, sizeof(msg)) != ERR_OK)
		abort();
	i = data[0] % NNAMES;
	manifest = json_pack("{sI sI s[{ss sI ss}]}", "version", (json_int_t)2, "base",
			     (json_int_t)(data[0] & 0x80 ? 0 : 1), "files", "name",
			     strstr(names[i], ".wsd") ? "main.hdb" : names[i], "size",
			     (json_int_t)8, "sha256",
			     "0000000000000000000000000000000000000000000000000000000000000000");
	if (!manifest)
		abort();
	(void)comp_assemble(manifest, payload, installed, work, out, msg, sizeof(msg));
	json_decref(manifest);
	if (util_remove_tree(members) != 0 || util_remove_tree(work) != 0 ||
	    util_remove_tree(out) != 0)
		abort();
	return 0;
}
