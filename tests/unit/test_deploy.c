/* test_deploy.c -- what deploying agents decides by itself: Debian's order
 * of versions (the newest package of an architecture is served), and the
 * reading of a package's control file, on packages dpkg-deb makes and on
 * files that are none. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "server/deploy.h"

/* Pairs in Debian's order (dpkg --compare-versions A lt B), from dpkg's
 * own rules: epochs first, '~' before anything (even the end), letters
 * before other characters, numbers by value, the revision last. */
static const char *const ordered[][2] = {
	{ "1.0~rc1", "1.0" },
	{ "1.0", "1.0a" },
	{ "1.0a", "1.0+b1" },
	{ "1.9", "1.10" },
	{ "1.0-1", "1.0-2" },
	{ "1.0-9", "1.0-10" },
	{ "2.0", "1:0.1" },
	{ "0.0~", "0.0" },
	{ "1.0~~", "1.0~" },
	{ "1.2.3", "1.2.3.0" },
	{ "1.0-1", "1.0.1-1" },
	{ "0.1.0", "0.1.0+git20261206" },
};

static const char *const equal[][2] = {
	{ "1.0", "1.0" },
	{ "1.00", "1.0" },
	{ "0:1.0", "1.0" },
	{ "1.0-0", "1.0" },
};

static void test_versions(void)
{
	size_t i;

	for (i = 0; i < sizeof(ordered) / sizeof(ordered[0]); i++) {
		CHECK(deploy_version_cmp(ordered[i][0], ordered[i][1]) < 0);
		CHECK(deploy_version_cmp(ordered[i][1], ordered[i][0]) > 0);
	}
	for (i = 0; i < sizeof(equal) / sizeof(equal[0]); i++)
		CHECK(deploy_version_cmp(equal[i][0], equal[i][1]) == 0);
}

/* Reads the control fields of the file at path; NULL with errbuf set. */
static json_t *control(const char *path, char *errbuf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	json_t *out = NULL;

	CHECK(fd >= 0);
	if (!deploy_read_control(fd, &out, errbuf, len))
		out = NULL;
	close(fd);
	return out;
}

static void test_control(const char *dir)
{
	char cmd[1500], path[600], msg[300];
	json_t *c;
	FILE *f;

	/* A real package, xz-compressed (dpkg-deb's default) and gzip. */
	snprintf(cmd, sizeof(cmd), "set -e; cd %s; mkdir -p p/DEBIAN; printf 'Package: "
		 "ward-agent\\nVersion: 1:2.3~rc1-4\\nArchitecture: arm64\\nMaintainer: t "
		 "<t@example.org>\\nDescription: x\\n' >p/DEBIAN/control; dpkg-deb -Zxz "
		 "--root-owner-group -b p xz.deb >/dev/null; dpkg-deb -Zgzip --root-owner-group "
		 "-b p gz.deb >/dev/null", dir);
	CHECK(system(cmd) == 0);
	snprintf(path, sizeof(path), "%s/xz.deb", dir);
	c = control(path, msg, sizeof(msg));
	CHECK(c != NULL);
	CHECK_STR_EQ(json_string_value(json_object_get(c, "package")), "ward-agent");
	CHECK_STR_EQ(json_string_value(json_object_get(c, "version")), "1:2.3~rc1-4");
	CHECK_STR_EQ(json_string_value(json_object_get(c, "arch")), "arm64");
	json_decref(c);
	snprintf(path, sizeof(path), "%s/gz.deb", dir);
	c = control(path, msg, sizeof(msg));
	CHECK(c != NULL);
	json_decref(c);
	/* Not an ar archive; an ar archive that is no Debian package. */
	snprintf(path, sizeof(path), "%s/text.deb", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("hello\n", f);
	fclose(f);
	CHECK(control(path, msg, sizeof(msg)) == NULL);
	CHECK(strstr(msg, "not a Debian package") != NULL);
	snprintf(cmd, sizeof(cmd), "cd %s && printf x >member && ar qc other.deb member "
		 "2>/dev/null", dir);
	CHECK(system(cmd) == 0);
	snprintf(path, sizeof(path), "%s/other.deb", dir);
	CHECK(control(path, msg, sizeof(msg)) == NULL);
	CHECK(strstr(msg, "no debian-binary member") != NULL);
	/* A version with a character Debian does not allow there (which the
	 * install script would write into a shell word). */
	snprintf(cmd, sizeof(cmd), "set -e; cd %s; sed -i 's/^Version: .*/Version: 1.0$(id)/' "
		 "p/DEBIAN/control; dpkg-deb --nocheck --root-owner-group -b p bad.deb "
		 ">/dev/null", dir);
	CHECK(system(cmd) == 0);
	snprintf(path, sizeof(path), "%s/bad.deb", dir);
	CHECK(control(path, msg, sizeof(msg)) == NULL);
	CHECK(strstr(msg, "characters Debian does not allow") != NULL);
	CHECK(deploy_id_valid("0123456789abcdef0123456789abcdef"));
	CHECK(!deploy_id_valid("0123456789ABCDEF0123456789abcdef"));
	CHECK(!deploy_id_valid("0123"));
}

int main(void)
{
	char dir[] = "/tmp/ward-test-deploy-XXXXXX", cmd[100];

	CHECK(mkdtemp(dir) != NULL);
	test_versions();
	test_control(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	return check_finish();
}
