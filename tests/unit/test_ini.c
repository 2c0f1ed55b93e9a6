/* test_ini.c -- the INI configuration reader: defaults, values, and a
 * message naming file and line for every kind of mistake. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "common/ini.h"

struct cfg {
	char *listen;
	int64_t batch;
	bool dual;
	int64_t retry;
};

static const struct ini_field fields[] = {
	{ "server", "listen", INI_STRING, offsetof(struct cfg, listen), "[::]:8443", 0, 0, "" },
	{ "server", "dual_stack", INI_BOOL, offsetof(struct cfg, dual), "yes", 0, 0, "" },
	{ "notify", "batch", INI_INT, offsetof(struct cfg, batch), "500", 1, 100000, "" },
	{ "notify", "retry", INI_DURATION, offsetof(struct cfg, retry), "15m", 1, 86400, "" },
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static char err[512];

static bool parse(const char *text, struct cfg *c)
{
	CHECK(ini_defaults(fields, NFIELDS, c, err, sizeof(err)));
	return ini_parse("ward.ini", text, strlen(text), fields, NFIELDS, c, err, sizeof(err));
}

/* Expects text to be refused with a message containing want. */
static void refused(const char *text, const char *want)
{
	struct cfg c;

	CHECK(!parse(text, &c));
	CHECK_STR_CONTAINS(err, want);
	ini_free(fields, NFIELDS, &c);
}

int main(void)
{
	struct cfg c;
	const char *dir = test_tmpdir();
	char *path;

	/* Defaults alone. */
	CHECK(parse("", &c));
	CHECK(c.listen && strcmp(c.listen, "[::]:8443") == 0);
	CHECK(c.batch == 500 && c.dual && c.retry == 900);
	ini_free(fields, NFIELDS, &c);

	/* Every form of value, comments, blank lines, CRLF, spaces. */
	CHECK(parse("# Ward\r\n; also a comment\n\n[server]\n  listen =  127.0.0.1:9000 \n"
		    "dual_stack = Off\n[notify]\nbatch=42\nretry = 2h\n", &c));
	CHECK(strcmp(c.listen, "127.0.0.1:9000") == 0);
	CHECK(!c.dual && c.batch == 42 && c.retry == 7200);
	ini_free(fields, NFIELDS, &c);
	CHECK(parse("[notify]\nretry = 1d\n", &c) && c.retry == 86400);
	ini_free(fields, NFIELDS, &c);
	refused("[notify]\nretry = 86401s\n",
		"notify.retry: 86401s is out of range (1 to 86400 seconds)");

	refused("listen = x\n", "ward.ini:1: 'listen' outside any [section]");
	refused("[server]\n[nope]\n", "ward.ini:2: unknown section [nope]");
	refused("[server]\nport = 1\n", "ward.ini:2: unknown key 'port' in [server]");
	refused("[server]\nlisten = a\nlisten = b\n", "ward.ini:3: server.listen is set twice");
	refused("[notify]\nbatch = 0\n",
		"ward.ini:2: notify.batch: 0 is out of range (1 to 100000)");
	refused("[notify]\nbatch = 12x\n", "notify.batch: '12x' is not an integer");
	refused("[notify]\nretry = 5w\n", "notify.retry: '5w' is not a duration");
	refused("[server]\ndual_stack = maybe\n", "server.dual_stack: 'maybe' is not yes or no");
	refused("[server\n", "ward.ini:1: malformed section header");
	refused("[server]\njust words\n", "ward.ini:2: expected 'key = value'");
	refused("[server]\nlisten = \xff\n", "server.listen: not valid UTF-8");
	{
		char big[5000];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		refused(big, "ward.ini:1: line longer than 4096 bytes");
	}

	/* From a file; a missing file names its path. */
	path = test_write(dir, "w.ini", "[notify]\nbatch = 7\n", 19);
	CHECK(ini_defaults(fields, NFIELDS, &c, err, sizeof(err)));
	CHECK(ini_load(path, fields, NFIELDS, &c, err, sizeof(err)) && c.batch == 7);
	ini_free(fields, NFIELDS, &c);
	CHECK(ini_defaults(fields, NFIELDS, &c, err, sizeof(err)));
	CHECK(!ini_load("/nonexistent/ward.ini", fields, NFIELDS, &c, err, sizeof(err)));
	CHECK_STR_CONTAINS(err, "/nonexistent/ward.ini: No such file");
	ini_free(fields, NFIELDS, &c);
	free(path);
	return check_finish();
}
