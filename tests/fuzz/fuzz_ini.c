/* fuzz_ini.c -- libFuzzer target for the INI configuration parser, which
 * reads files an administrator (or a careless deployment tool) wrote. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_cfg {
	char *name;
	int64_t port;
	bool flag;
	int64_t every;
};

static const struct ini_field fields[] = {
	{ "main", "name", INI_STRING, offsetof(struct fuzz_cfg, name), "x", 0, 0, "" },
	{ "main", "port", INI_INT, offsetof(struct fuzz_cfg, port), "1", 1, 65535, "" },
	{ "main", "flag", INI_BOOL, offsetof(struct fuzz_cfg, flag), "no", 0, 0, "" },
	{ "other", "every", INI_DURATION, offsetof(struct fuzz_cfg, every), "15m", 1, 86400, "" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_cfg cfg;
	char err[256];
	size_t n = sizeof(fields) / sizeof(fields[0]);

	if (!ini_defaults(fields, n, &cfg, err, sizeof(err)))
		return 0;
	if (!ini_parse("fuzz.ini", (const char *)data, size, fields, n, &cfg, err, sizeof(err)))
		(void)err[0];
	ini_free(fields, n, &cfg);
	return 0;
}
