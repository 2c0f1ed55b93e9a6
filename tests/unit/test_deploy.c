/* test_deploy.c -- what deploying agents decides by itself: Debian's order
 * of versions (the newest package of an architecture is served), and the
 * reading of a package's control file, on packages dpkg-deb makes and on
 * files that are none. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
		CHECK(util_deb_version_cmp(ordered[i][0], ordered[i][1]) < 0);
		CHECK(util_deb_version_cmp(ordered[i][1], ordered[i][0]) > 0);
	}
	for (i = 0; i < sizeof(equal) / sizeof(equal[0]); i++)
		CHECK(util_deb_version_cmp(equal[i][0], equal[i][1]) == 0);
}

/* Runs argv (no shell) in dir, its output discarded: its exit status. */
static int run(const char *dir, char *const argv[])
{
	pid_t pid = fork();
	int status = -1, null;

	if (pid == 0) {
		null = open("/dev/null", O_WRONLY);
		if (null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || chdir(dir) != 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Writes text into dir/name. */
static void write_file(const char *dir, const char *name, const char *text)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Reads the control fields of the file dir/name; NULL with errbuf set. */
static json_t *control(const char *dir, const char *name, char *errbuf, size_t len)
{
	char path[600];
	json_t *out = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	if (!deploy_read_control(fd, &out, errbuf, len))
		out = NULL;
	close(fd);
	return out;
}

/* A package of dpkg-deb's making, of that version, compressed so, with
 * more control fields (lines, or ""). */
static int make_deb(const char *dir, const char *version, const char *compression,
		    const char *name, bool check, const char *more)
{
	char control_text[400], *argv[] = { "dpkg-deb", (char *)compression,
		"--root-owner-group", check ? "-b" : "--nocheck", check ? "p" : "-b",
		check ? (char *)name : "p", check ? NULL : (char *)name, NULL };

	snprintf(control_text, sizeof(control_text), "Package: ward-agent\nVersion: %s\n"
		 "Architecture: arm64\nMaintainer: t <t@example.org>\nDescription: x\n%s",
		 version, more);
	write_file(dir, "p/DEBIAN/control", control_text);
	return run(dir, argv);
}

static void test_control(const char *dir)
{
	char msg[300], sub[600];
	char *ar[] = { "ar", "qc", "other.deb", "member", NULL };
	json_t *c;

	snprintf(sub, sizeof(sub), "%s/p", dir);
	CHECK(mkdir(sub, 0755) == 0);
	snprintf(sub, sizeof(sub), "%s/p/DEBIAN", dir);
	CHECK(mkdir(sub, 0755) == 0);
	/* A real package, xz-compressed (dpkg-deb's default) and gzip. */
	CHECK(make_deb(dir, "1:2.3~rc1-4", "-Zxz", "xz.deb", true, "") == 0);
	CHECK(make_deb(dir, "1:2.3~rc1-4", "-Zgzip", "gz.deb", true, "") == 0);
	c = control(dir, "xz.deb", msg, sizeof(msg));
	CHECK(c != NULL);
	CHECK_STR_EQ(json_string_value(json_object_get(c, "package")), "ward-agent");
	CHECK_STR_EQ(json_string_value(json_object_get(c, "version")), "1:2.3~rc1-4");
	CHECK_STR_EQ(json_string_value(json_object_get(c, "arch")), "arm64");
	/* Without Ward-Platform, no platform (no upgrades); a service restart. */
	CHECK(json_object_get(c, "platform") == NULL);
	CHECK_STR_EQ(json_string_value(json_object_get(c, "restart")), "service");
	json_decref(c);
	CHECK(make_deb(dir, "2-1", "-Zxz", "plat.deb", true, "Ward-Platform: debian-12\n"
		       "Ward-Restart: host\n") == 0);
	c = control(dir, "plat.deb", msg, sizeof(msg));
	CHECK_STR_EQ(json_string_value(json_object_get(c, "platform")), "debian-12");
	CHECK_STR_EQ(json_string_value(json_object_get(c, "restart")), "host");
	json_decref(c);
	CHECK(make_deb(dir, "2-2", "-Zxz", "plat2.deb", true, "Ward-Platform: Debian 12\n") == 0);
	CHECK(control(dir, "plat2.deb", msg, sizeof(msg)) == NULL);
	CHECK(strstr(msg, "Ward-Platform") != NULL);
	CHECK(make_deb(dir, "2-3", "-Zxz", "plat3.deb", true, "Ward-Restart: reboot\n") == 0);
	CHECK(control(dir, "plat3.deb", msg, sizeof(msg)) == NULL);
	c = control(dir, "gz.deb", msg, sizeof(msg));
	CHECK(c != NULL);
	json_decref(c);
	/* Not an ar archive; an ar archive that is no Debian package. */
	write_file(dir, "text.deb", "hello\n");
	CHECK(control(dir, "text.deb", msg, sizeof(msg)) == NULL);
	CHECK(strstr(msg, "not a Debian package") != NULL);
	write_file(dir, "member", "x");
	CHECK(run(dir, ar) == 0);
	CHECK(control(dir, "other.deb", msg, sizeof(msg)) == NULL);
	CHECK(strstr(msg, "no debian-binary member") != NULL);
	/* A version with characters Debian does not allow there (which the
	 * install script would write into a shell word). */
	CHECK(make_deb(dir, "1.0$(id)", "-Zxz", "bad.deb", false, "") == 0);
	CHECK(control(dir, "bad.deb", msg, sizeof(msg)) == NULL);
	CHECK(strstr(msg, "characters Debian does not allow") != NULL);
	CHECK(deploy_id_valid("0123456789abcdef0123456789abcdef"));
	CHECK(!deploy_id_valid("0123456789ABCDEF0123456789abcdef"));
	CHECK(!deploy_id_valid("0123"));
}

int main(void)
{
	char dir[] = "/tmp/ward-test-deploy-XXXXXX";
	char *rm[] = { "rm", "-rf", dir, NULL };

	CHECK(mkdtemp(dir) != NULL);
	test_versions();
	test_control(dir);
	CHECK(run("/", rm) == 0);
	return check_finish();
}
