/* license_cmd.c -- ward license-issuer: an issuer's key pair and the
 * license files it signs (common/license.h), made offline: no server is
 * involved, and the secret key never leaves the issuer's file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/values.h"
#include "common/license.h"
#include "common/util.h"

#define USAGE \
	"usage: ward license-issuer keygen --out FILE\n" \
	"       ward license-issuer issue --key FILE --id ID --customer NAME\n" \
	"            --services LIST --seats N --expires TIME [--start TIME]\n" \
	"            [--grace-days N] [--evaluation] [--out FILE]\n" \
	"\n" \
	"keygen writes a new issuer's secret key to FILE (mode 0600) and prints\n" \
	"its public key, which wardd's license.issuers names.\n" \
	"issue writes a license file signed with the secret key (standard output\n" \
	"without --out): LIST is services separated by commas (antivirus,\n" \
	"smart-scan, realtime); TIME is " VALUES_TIME_FORMS ",\n" \
	"or +N followed by s, m, h or d (from now); --start defaults to now,\n" \
	"--grace-days to 0.\n"

static int keygen(const char *out)
{
	unsigned char pk[LICENSE_PK_BYTES], sk[LICENSE_SK_BYTES];
	char hex[2 * LICENSE_SK_BYTES + 2], pkhex[2 * LICENSE_PK_BYTES + 1];
	int fd, rc = 1;

	crypto_sign_keypair(pk, sk);
	sodium_bin2hex(hex, sizeof(hex) - 1, sk, sizeof(sk));
	hex[2 * LICENSE_SK_BYTES] = '\n';
	hex[2 * LICENSE_SK_BYTES + 1] = '\0';
	sodium_bin2hex(pkhex, sizeof(pkhex), pk, sizeof(pk));
	/* O_EXCL: an issuer's key is never written over by mistake. */
	fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "ward license-issuer: %s: %s\n", out, strerror(errno));
	} else if (util_write_all(fd, hex, strlen(hex)) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "ward license-issuer: writing %s: %s\n", out, strerror(errno));
		unlink(out);
	} else {
		printf("%s\n", pkhex);
		rc = 0;
	}
	if (fd >= 0)
		close(fd);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(hex, sizeof(hex));
	return rc;
}

/* Reads the secret key of an issuer's key file (keygen's). */
static bool read_key(const char *path, unsigned char sk[LICENSE_SK_BYTES],
		     unsigned char pk[LICENSE_PK_BYTES])
{
	size_t len = 0, got = 0;
	char *text = util_read_file(path, 1024, &len);
	const char *end = NULL;
	bool ok;

	if (!text) {
		fprintf(stderr, "ward license-issuer: %s: %s\n", path, strerror(errno));
		return false;
	}
	ok = sodium_hex2bin(sk, LICENSE_SK_BYTES, text, len, "\n", &got, &end) == 0 &&
	     got == LICENSE_SK_BYTES && strspn(end, "\n") == strlen(end);
	sodium_memzero(text, len);
	free(text);
	if (!ok) {
		fprintf(stderr, "ward license-issuer: %s: not an issuer's key (%d hex digits, from "
			"keygen)\n", path, 2 * LICENSE_SK_BYTES);
		return false;
	}
	crypto_sign_ed25519_sk_to_pk(pk, sk);
	return true;
}

/* A time: values_parse_time()'s forms, or +N[smhd] from now. */
static bool parse_time(const char *text, int64_t *out)
{
	time_t now = time(NULL);
	char *end;
	long long n;

	if (text[0] != '+')
		return values_parse_time(text, now, out);
	errno = 0;
	n = strtoll(text + 1, &end, 10);
	if (errno || end == text + 1 || n < 0 || n > 100LL * 366 * 86400 || strlen(end) > 1)
		return false;
	switch (*end) {
	case 'd': n *= 86400; break;
	case 'h': n *= 3600; break;
	case 'm': n *= 60; break;
	case 's': case '\0': break;
	default: return false;
	}
	*out = (int64_t)now + n;
	return true;
}

static bool parse_services(char *list, unsigned *out)
{
	char *save = NULL, *word;
	int s;

	*out = 0;
	for (word = strtok_r(list, ",", &save); word; word = strtok_r(NULL, ",", &save)) {
		s = license_service_find(word);
		if (s < 0) {
			fprintf(stderr, "ward license-issuer: --services: unknown service '%s' "
				"(antivirus, smart-scan, realtime)\n", word);
			return false;
		}
		*out |= 1u << s;
	}
	return *out != 0;
}

static int issue(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "id", required_argument, NULL, 'i' },
		{ "customer", required_argument, NULL, 'c' },
		{ "services", required_argument, NULL, 's' },
		{ "seats", required_argument, NULL, 'n' },
		{ "start", required_argument, NULL, 'b' },
		{ "expires", required_argument, NULL, 'e' },
		{ "grace-days", required_argument, NULL, 'g' },
		{ "evaluation", no_argument, NULL, 'v' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned char sk[LICENSE_SK_BYTES], pk[LICENSE_PK_BYTES];
	struct license l = { .issued = (int64_t)time(NULL), .start = (int64_t)time(NULL) };
	const char *key = NULL, *out = NULL;
	char *text = NULL, *end;
	int c, rc = 2;
	bool bad = false, expires = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'o': out = optarg; break;
		case 'v': l.evaluation = true; break;
		case 'i': bad |= snprintf(l.id, sizeof(l.id), "%s", optarg) >= (int)sizeof(l.id);
			break;
		case 'c': bad |= snprintf(l.customer, sizeof(l.customer), "%s", optarg) >=
				 (int)sizeof(l.customer);
			break;
		case 's': bad |= !parse_services(optarg, &l.services); break;
		case 'n': case 'g':
			errno = 0;
			*(c == 'n' ? &l.seats : &l.grace_days) = strtoll(optarg, &end, 10);
			bad |= errno != 0 || *end != '\0' || end == optarg;
			break;
		case 'b': bad |= !parse_time(optarg, &l.start); break;
		case 'e': bad |= !parse_time(optarg, &l.expires); expires = true; break;
		default: bad = true; break;
		}
	}
	if (bad || optind != argc || !key || !l.id[0] || !l.customer[0] || !l.services ||
	    !l.seats || !expires) {
		fputs(USAGE, stderr);
		return 2;
	}
	if (!read_key(key, sk, pk))
		return 1;
	text = license_seal(&l, pk, sk);
	sodium_memzero(sk, sizeof(sk));
	if (!text) {
		fprintf(stderr, "ward license-issuer: the license is out of range: an id of "
			"letters, digits, '.', '_' or '-'; 1 to %d seats; expires after start; "
			"0 to %d grace days\n", LICENSE_MAX_SEATS, LICENSE_MAX_GRACE_DAYS);
		return 2;
	}
	rc = 0;
	if (!out) {
		printf("%s\n", text);
	} else if (util_write_file(out, text, strlen(text), 0644) != 0) {
		fprintf(stderr, "ward license-issuer: writing %s: %s\n", out, strerror(errno));
		rc = 1;
	}
	free(text);
	return rc;
}

int license_cmd_main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fputs("ward license-issuer: libsodium failed to start\n", stderr);
		return 1;
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(USAGE, stdout);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "keygen") == 0 && strcmp(argv[2], "--out") == 0)
		return keygen(argv[3]);
	if (argc >= 2 && strcmp(argv[1], "issue") == 0)
		return issue(argc - 1, argv + 1);
	fputs(USAGE, stderr);
	return 2;
}
