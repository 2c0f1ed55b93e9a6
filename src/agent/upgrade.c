/* upgrade.c -- the agent's own upgrades (see upgrade.h). */
#include "agent/upgrade.h"
#include "agent/dpkgup.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <paths.h>
#include <poll.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utmpx.h>

#include "common/log.h"
#include "common/pack.h"
#include "common/pkg.h"
#include "common/updater.h"
#include "common/util.h"

#define STATE_FILE "upgrade.json"
/* Held (flock) by whoever reads the record to write it: the agent, its
 * supervisor, dpkg's helper. */
#define LOCK_FILE "upgrade.lock"
#define FAILED_FILE "upgrade-failed.json"
#define WORK_DIR "upgrade"
#define PROGRAM "ward-agent"
/* The program inside the Debian package. */
#define PACKAGE_PROGRAM "usr/sbin/ward-agent"
#define MAX_PROGRAM (256LL << 20)
#define MAX_PACKAGE (512LL << 20)
/* Versions an agent remembers failing, so that it does not try them again. */
#define MAX_FAILED 32
/* The supervisor's child is given this to say it is supervised. */
#define SUPERVISED_ENV "WARD_AGENT_SUPERVISED"
#define SELF_TEST_SECONDS 30
#define BOOT_ID "/proc/sys/kernel/random/boot_id"
#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- what is installed, and where ------------------------------------ */

/* Debian's name of the architecture of machine (uname's). */
static const char *debian_arch(const char *machine)
{
	static const struct { const char *machine, *arch; } names[] = {
		{ "x86_64", "amd64" }, { "aarch64", "arm64" }, { "i686", "i386" },
		{ "i586", "i386" }, { "i386", "i386" }, { "armv7l", "armhf" },
		{ "ppc64le", "ppc64el" }, { "s390x", "s390x" }, { "riscv64", "riscv64" },
		{ "mips64", "mips64el" }, { "loongarch64", "loong64" },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i].machine, machine) == 0)
			return names[i].arch;
	return machine;
}

/* The value of KEY= in os-release's text, unquoted, into out. */
static void os_field(const char *text, const char *key, char *out, size_t len)
{
	const char *p = text;
	size_t n = strlen(key), m;

	out[0] = '\0';
	for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, n) != 0 || p[n] != '=')
			continue;
		p += n + 1;
		if (*p == '"' || *p == '\'')
			p++;
		m = strcspn(p, "\"'\n");
		snprintf(out, len, "%.*s", (int)m, p);
		return;
	}
}

/* The release as packages name it: ID-VERSION_ID ("debian-12"), lower
 * case, from letters, digits, '.' and '-' only. */
static void release(char *out, size_t len)
{
	char *text = util_read_file("/etc/os-release", 1 << 16, NULL), id[64], ver[64];
	size_t i;

	if (!text)
		text = util_read_file("/usr/lib/os-release", 1 << 16, NULL);
	os_field(text, "ID", id, sizeof(id));
	os_field(text, "VERSION_ID", ver, sizeof(ver));
	free(text);
	snprintf(out, len, "%.31s%s%.30s", id[0] ? id : "linux", ver[0] ? "-" : "", ver);
	for (i = 0; out[i]; i++) {
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] - 'A' + 'a');
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789.-", out[i]))
			out[i] = '-';
	}
}

/* Whether dpkg installed path as ward-agent's: it is where the package
 * puts it, and dpkg has the package (its version then; while its
 * maintainer scripts run too: they start the agent). */
static bool dpkg_installed(const char *path, char *version, size_t len)
{
	bool configured;

	return strcmp(path, "/usr/sbin/" PROGRAM) == 0 &&
	       dpkgup_installed(version, len, &configured);
}

static bool version_ok(const char *v)
{
	size_t n = strlen(v);

	return n > 0 && n < 64 && v[0] >= '0' && v[0] <= '9' &&
	       strspn(v, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.+~:-") ==
	       n;
}

static void find_install(struct upgrade_install *out)
{
	char exe[PATH_MAX], link[PATH_MAX + 16], *slash, *versions;
	char *real = realpath("/proc/self/exe", NULL);
	struct utsname u;
	struct stat st;

	memset(out, 0, sizeof(*out));
	release(out->os, sizeof(out->os));
	snprintf(out->arch, sizeof(out->arch), "%.31s", uname(&u) == 0 ?
		 debian_arch(u.machine) : "unknown");
	out->mode = "source";
	snprintf(out->version, sizeof(out->version), "%s", WARD_VERSION);
	if (!real)
		return;
	snprintf(exe, sizeof(exe), "%s", real);
	free(real);
	/* ROOT/versions/VERSION/ward-agent with ROOT/current beside. */
	slash = strrchr(exe, '/');
	if (slash && strcmp(slash + 1, PROGRAM) == 0) {
		*slash = '\0';
		versions = strrchr(exe, '/');
		if (versions && versions > exe) {
			*versions = '\0';
			slash = strrchr(exe, '/');
			if (slash && strcmp(slash + 1, "versions") == 0) {
				*slash = '\0';
				snprintf(out->root, sizeof(out->root), "%s", exe[0] ? exe : "/");
				snprintf(link, sizeof(link), "%s/current", out->root);
				if (lstat(link, &st) == 0 && S_ISLNK(st.st_mode) &&
				    version_ok(versions + 1)) {
					out->mode = "dir";
					snprintf(out->version, sizeof(out->version), "%.63s",
						 versions + 1);
					return;
				}
				out->root[0] = '\0';
			}
		}
	}
	real = realpath("/proc/self/exe", NULL);
	if (real && dpkg_installed(real, out->version, sizeof(out->version)))
		out->mode = "dpkg";
	free(real);
}

static struct upgrade_install installed;
static pthread_once_t installed_once = PTHREAD_ONCE_INIT;

static void find_installed(void)
{
	find_install(&installed);
}

/* What the running program is does not change while it runs: looked at
 * once (dpkg-query is a process). */
void upgrade_install(struct upgrade_install *out)
{
	pthread_once(&installed_once, find_installed);
	*out = installed;
}

/* ---- the record of an upgrade ---------------------------------------- */

json_t *upgrade_record_load(const struct agent *a)
{
	char *path = astate_file(a, STATE_FILE);
	json_t *s = path ? json_load_file(path, 0, NULL) : NULL;

	free(path);
	if (s && !json_is_object(s)) {
		json_decref(s);
		s = NULL;
	}
	return s;
}

int upgrade_record_lock(const struct agent *a)
{
	char *path = astate_file(a, LOCK_FILE);
	int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;

	if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		log_msg(LOG_LVL_ERROR, "upgrade: %s: %s", path ? path : LOCK_FILE, strerror(errno));
	free(path);
	return fd;
}

void upgrade_record_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

bool upgrade_record_save(const struct agent *a, const json_t *s)
{
	char *path = astate_file(a, STATE_FILE);
	bool ok = path && (s ? util_write_json(path, s) == 0 :
			   (unlink(path) == 0 || errno == ENOENT));

	if (!ok)
		log_msg(LOG_LVL_ERROR, "upgrade: %s: %s", path ? path : STATE_FILE,
			strerror(errno));
	free(path);
	return ok;
}

static const char *text(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

void upgrade_boot_id(const struct agent *a, char out[64])
{
	char *t = util_read_file(a->cfg.boot_id_file[0] ? a->cfg.boot_id_file : BOOT_ID, 256,
				 NULL);

	snprintf(out, 64, "%.*s", t ? (int)strcspn(t, "\n") : 0, t ? t : "");
	free(t);
}

void upgrade_status(const struct agent *a, json_t *status)
{
	struct upgrade_install ins;
	json_t *s = upgrade_record_load(a);
	char why[200];

	upgrade_install(&ins);
	json_object_set_new(status, "platform", json_pack("{ss ss}", "os", ins.os, "arch",
							 ins.arch));
	json_object_set_new(status, "install", json_string(ins.mode));
	/* Whether something brings the version back when a new one fails: the
	 * supervisor of a versioned install, dpkg's helper under systemd. */
	json_object_set_new(status, "supervised", json_boolean(
		strcmp(ins.mode, "dpkg") == 0 ? dpkgup_available(why, sizeof(why)) :
		getenv(SUPERVISED_ENV) != NULL));
	json_object_set_new(status, "package_version", json_string(ins.version));
	if (s && strcmp(text(s, "state"), "staged") == 0)
		json_object_set_new(status, "restart_pending", json_pack(
			"{ss ss sO}", "version", text(s, "to"), "needs", text(s, "needs"), "since",
			json_object_get(s, "started")));
	json_decref(s);
}

/* ---- checking an offer ------------------------------------------------ */

const char *upgrade_task_invalid(const json_t *task, char *why, size_t len)
{
	const char *key, *version = json_string_value(json_object_get(task, "version"));
	const json_t *v, *offer;

	json_object_foreach((json_t *)task, key, v)
		if (strcmp(key, "id") != 0 && strcmp(key, "kind") != 0 &&
		    strcmp(key, "version") != 0 && strcmp(key, "window") != 0 &&
		    strcmp(key, "offer") != 0 && strcmp(key, "previous") != 0) {
			util_set_msg(why, len, "%.64s: not a member of an agent_upgrade task", key);
			return why;
		}
	if (!version || !version_ok(version)) {
		util_set_msg(why, len, "version: expected a package version");
		return why;
	}
	v = json_object_get(task, "window");
	if (!json_is_integer(v) || json_integer_value(v) < 10 || json_integer_value(v) > 3600) {
		util_set_msg(why, len, "window: expected 10 to 3600 seconds");
		return why;
	}
	for (key = "offer"; key; key = strcmp(key, "offer") == 0 ? "previous" : NULL) {
		offer = json_object_get(task, key);
		if ((offer || strcmp(key, "offer") == 0) &&
		    (!json_is_object(offer) || !json_is_string(json_object_get(offer, "signed")) ||
		     !json_is_array(json_object_get(offer, "rotations")))) {
			util_set_msg(why, len, "%s: expected {\"signed\", \"rotations\"}", key);
			return why;
		}
	}
	return NULL;
}

/* Checks the signed description of the package against this agent and
 * the task: the error in why when it does not fit. */
static bool description_ok(const json_t *d, const char *version,
			   const struct upgrade_install *ins, char *why, size_t len)
{
	const char *file, *sha, *restart;
	json_int_t size;

	if (strcmp(text(d, "kind"), "agent-package") != 0 ||
	    strcmp(text(d, "package"), PROGRAM) != 0 || strcmp(text(d, "version"), version) != 0) {
		util_set_msg(why, len, "the signed offer is not of %s %s", PROGRAM, version);
		return false;
	}
	if (strcmp(text(d, "os"), ins->os) != 0 || strcmp(text(d, "arch"), ins->arch) != 0) {
		util_set_msg(why, len, "the package is for %s/%s, this host is %s/%s",
			     text(d, "os"), text(d, "arch"), ins->os, ins->arch);
		return false;
	}
	file = text(d, "file");
	sha = text(d, "sha256");
	restart = text(d, "restart");
	size = json_integer_value(json_object_get(d, "size"));
	if (!pack_plain_name(file) || strlen(file) < 5 || strcmp(file + strlen(file) - 4, ".deb") ||
	    size <= 0 || size > MAX_PACKAGE || strlen(sha) != 64 ||
	    strspn(sha, "0123456789abcdef") != 64 || (strcmp(restart, "none") != 0 &&
	    strcmp(restart, "service") != 0 && strcmp(restart, "host") != 0)) {
		util_set_msg(why, len, "the signed offer's file, size, sha256 or restart is "
			     "malformed");
		return false;
	}
	return true;
}

/* The reason version failed here before, or NULL; from failed (the
 * record of versions that failed, an object). */
static const char *failed_before(const json_t *failed, const char *version)
{
	return json_string_value(json_object_get(failed, version));
}

static json_t *failed_load(const struct agent *a)
{
	char *path = astate_file(a, FAILED_FILE);
	json_t *f = path ? json_load_file(path, 0, NULL) : NULL;

	free(path);
	if (!json_is_object(f)) {
		json_decref(f);
		f = json_object();
	}
	return f;
}

/* Records that version failed here, and why (the oldest forgotten past
 * MAX_FAILED). */
static void failed_add(const struct agent *a, const char *version, const char *why)
{
	json_t *f = failed_load(a);
	char *path = astate_file(a, FAILED_FILE);
	void *it;

	while (json_object_size(f) >= MAX_FAILED && (it = json_object_iter(f)) != NULL)
		json_object_del(f, json_object_iter_key(it));
	json_object_set_new(f, version, json_string(why));
	if (!path || util_write_json(path, f) != 0)
		log_msg(LOG_LVL_ERROR, "upgrade: recording that %s failed: %s", version,
			strerror(errno));
	free(path);
	json_decref(f);
}

/* ---- unpacking -------------------------------------------------------- */

struct member {
	struct archive *outer;
};

static la_ssize_t member_read(struct archive *inner, void *arg, const void **buf)
{
	struct member *m = arg;
	la_ssize_t n;
	static char block[65536];

	(void)inner;
	n = archive_read_data(m->outer, block, sizeof(block));
	*buf = block;
	return n;
}

/* Writes the program in the Debian package at deb (its data member's
 * usr/sbin/ward-agent) to path, mode 0755. */
static bool unpack(const char *deb, const char *path, char *why, size_t len)
{
	struct archive *outer = archive_read_new(), *inner = NULL;
	struct archive_entry *e;
	struct member m = { .outer = outer };
	const char *name;
	char buf[65536];
	la_ssize_t n;
	int64_t total = 0;
	bool found = false, ok = false;
	int fd = -1;

	util_set_msg(why, len, "the package holds no %s", PACKAGE_PROGRAM);
	archive_read_support_format_ar(outer);
	if (archive_read_open_filename(outer, deb, 65536) != ARCHIVE_OK) {
		util_set_msg(why, len, "the package: %s", archive_error_string(outer));
		goto out;
	}
	while (!inner && archive_read_next_header(outer, &e) == ARCHIVE_OK) {
		name = archive_entry_pathname(e);
		if (!name || strncmp(name, "data.tar", 8) != 0)
			continue;
		inner = archive_read_new();
		archive_read_support_format_tar(inner);
		archive_read_support_filter_xz(inner);
		archive_read_support_filter_zstd(inner);
		archive_read_support_filter_gzip(inner);
		if (archive_read_open(inner, &m, NULL, member_read, NULL) != ARCHIVE_OK) {
			util_set_msg(why, len, "the package's data: %s",
				     archive_error_string(inner));
			goto out;
		}
	}
	while (inner && !found && archive_read_next_header(inner, &e) == ARCHIVE_OK) {
		name = archive_entry_pathname(e);
		if (name && strncmp(name, "./", 2) == 0)
			name += 2;
		if (!name || strcmp(name, PACKAGE_PROGRAM) != 0 ||
		    archive_entry_filetype(e) != AE_IFREG)
			continue;
		found = true;
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0755);
		if (fd < 0) {
			util_set_msg(why, len, "%s: %s", path, strerror(errno));
			goto out;
		}
		while ((n = archive_read_data(inner, buf, sizeof(buf))) > 0) {
			total += n;
			if (total > MAX_PROGRAM || util_write_all(fd, buf, (size_t)n) != 0) {
				util_set_msg(why, len, "%s: %s", path, total > MAX_PROGRAM ?
					 "larger than a program may be" : strerror(errno));
				goto out;
			}
		}
		if (n < 0) {
			util_set_msg(why, len, "the package's data: %s",
				     archive_error_string(inner));
			goto out;
		}
		if (fchmod(fd, 0755) != 0 || fsync(fd) != 0) {
			util_set_msg(why, len, "%s: %s", path, strerror(errno));
			goto out;
		}
		ok = true;
	}
out:
	if (fd >= 0)
		close(fd);
	if (inner)
		archive_read_free(inner);
	archive_read_free(outer);
	return ok;
}

/* Runs program with args (NULL-terminated, without argv[0]) and its
 * output to /dev/null, for at most SELF_TEST_SECONDS: true when it exits
 * 0; else why says how it ended. */
static bool run_program(const char *program, char *const *args, char *why, size_t len)
{
	char *argv[8] = { (char *)program };
	int status, i;

	for (i = 0; args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	status = util_run(argv, SELF_TEST_SECONDS, NULL, 0);
	if (status < 0) {
		if (errno == ETIMEDOUT)
			util_set_msg(why, len, "did not end within %d s", SELF_TEST_SECONDS);
		else
			util_set_msg(why, len, "could not be started: %s", strerror(errno));
		return false;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	util_status_text(status, why, len);
	return false;
}

/* Points ROOT/current at versions/version, replaced atomically. */
static bool point_current(const char *root, const char *version, char *why, size_t len)
{
	char link[PATH_MAX + 16], tmp[PATH_MAX + 32], target[PATH_MAX];

	snprintf(link, sizeof(link), "%s/current", root);
	snprintf(tmp, sizeof(tmp), "%s/.current.%d", root, (int)getpid());
	snprintf(target, sizeof(target), "versions/%s", version);
	unlink(tmp);
	if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
		util_set_msg(why, len, "%s: %s", link, strerror(errno));
		unlink(tmp);
		return false;
	}
	return true;
}

/* ---- telling users of a restart ----------------------------------------- */

#define NOTIFY_SEND "/usr/bin/notify-send"

/* Writes text to the terminal line (utmp's "pts/3") of user uid: only a
 * character device of that user's, opened without becoming anyone's
 * controlling terminal and without waiting. */
static bool tell_terminal(const char *line, uid_t uid, const char *text)
{
	char path[64];
	struct stat st, before;
	bool ok = false;
	int fd;

	if (!line[0] || strstr(line, "..") ||
	    strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/") !=
	    strlen(line))
		return false;
	snprintf(path, sizeof(path), "/dev/%.40s", line);
	/* Looked at before it is opened: opening some devices does things. */
	if (lstat(path, &before) != 0 || !S_ISCHR(before.st_mode) || before.st_uid != uid)
		return false;
	fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && st.st_rdev == before.st_rdev && st.st_uid == uid)
		ok = util_write_all(fd, text, strlen(text)) == 0;
	close(fd);
	return ok;
}

/* A desktop notification on uid's session bus, by notify-send run as that
 * user (10 s at most); nothing where no session bus or notify-send is. */
static void tell_desktop(const struct passwd *pw, const char *text)
{
	char bus[64], env_bus[128], env_home[PATH_MAX + 8];
	char *argv[] = { NOTIFY_SEND, "--app-name=Ward", "--urgency=normal",
			 "Ward: a restart is needed", (char *)text, NULL };
	char *envp[] = { env_bus, env_home, "PATH=/usr/bin:/bin", NULL };
	struct stat st;
	int status, i;
	pid_t pid;

	snprintf(bus, sizeof(bus), "/run/user/%u/bus", (unsigned)pw->pw_uid);
	if (stat(bus, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != pw->pw_uid ||
	    access(NOTIFY_SEND, X_OK) != 0)
		return;
	snprintf(env_bus, sizeof(env_bus), "DBUS_SESSION_BUS_ADDRESS=unix:path=%s", bus);
	snprintf(env_home, sizeof(env_home), "HOME=%s", pw->pw_dir);
	pid = fork();
	if (pid == 0) {
		/* Nothing of the agent's goes with it to the user. */
		close_range(3, ~0U, 0);
		if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
		    setuid(pw->pw_uid) != 0)
			_exit(126);
		execve(NOTIFY_SEND, argv, envp);
		_exit(127);
	}
	for (i = 0; pid > 0 && i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(100000);
	if (pid > 0 && i == 100) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

/* Tells every logged-in user (utmp's user processes) text: on each of
 * their terminals, and on each desktop session once. Returns how many
 * were told. Not thread-safe (utmp's reading): the channel's thread. */
static int tell_users(const struct agent *a, const char *text)
{
	char user[sizeof(((struct utmpx *)0)->ut_user) + 1], buf[1024], done[64][40];
	char line[sizeof(((struct utmpx *)0)->ut_line) + 1], message[1200];
	struct passwd pwbuf, *pw;
	struct utmpx *u;
	size_t ndone = 0, i;
	int told = 0;

	snprintf(message, sizeof(message), "\r\n\aWard endpoint protection: %.1000s\r\n", text);
	if (utmpxname(a->cfg.utmp_file[0] ? a->cfg.utmp_file : _PATH_UTMPX) != 0)
		return 0;
	setutxent();
	while ((u = getutxent()) != NULL) {
		if (u->ut_type != USER_PROCESS)
			continue;
		snprintf(user, sizeof(user), "%.*s", (int)sizeof(u->ut_user), u->ut_user);
		snprintf(line, sizeof(line), "%.*s", (int)sizeof(u->ut_line), u->ut_line);
		if (getpwnam_r(user, &pwbuf, buf, sizeof(buf), &pw) != 0 || !pw)
			continue;
		told += tell_terminal(line, pw->pw_uid, message);
		for (i = 0; i < ndone && strcmp(done[i], user) != 0; i++)
			;
		if (i == ndone && ndone < 64) {
			snprintf(done[ndone++], sizeof(done[0]), "%.39s", user);
			tell_desktop(pw, text);
		}
	}
	endutxent();
	return told;
}

/* ---- taking an offer ---------------------------------------------------- */

static void report_state(upgrade_report_fn report, void *arg, json_int_t id, const char *state,
			 int64_t started, const char *error)
{
	json_t *r = json_pack("{sI ss sI}", "id", id, "state", state, "started",
			      (json_int_t)started);

	if (r && strcmp(state, "running") != 0)
		json_object_set_new(r, "finished", json_integer((json_int_t)time(NULL)));
	if (r && error)
		json_object_set_new(r, "error", json_string(error));
	report(arg, r);
}

/* Whether the boolean setting key is on in the settings in effect. */
static bool setting_on(const struct agent *a, const char *key)
{
	json_t *v = astate_setting(a, NULL, key);
	bool on = json_is_true(v);

	json_decref(v);
	return on;
}

/* Unpacks the program of the package deb into dir (made as dir.new, then
 * renamed) and has it read the configuration: false with why when either
 * fails (nothing is left then). */
static bool unpack_checked(const struct agent *a, const char *deb, const char *dir, char *why,
			   size_t len)
{
	char tmpdir[PATH_MAX], program[PATH_MAX + 32], how[300];
	char *conf_args[4] = { NULL };

	if ((size_t)snprintf(tmpdir, sizeof(tmpdir), "%s.new", dir) >= sizeof(tmpdir)) {
		util_set_msg(why, len, "%s: %s", dir, strerror(ENAMETOOLONG));
		return false;
	}
	util_remove_tree(tmpdir);
	snprintf(program, sizeof(program), "%s/" PROGRAM, tmpdir);
	if (mkdir(tmpdir, 0755) != 0) {
		util_set_msg(why, len, "%s: %s", tmpdir, strerror(errno));
		return false;
	}
	if (!unpack(deb, program, why, len))
		goto fail;
	/* The new program reads the configuration before anything depends on it. */
	conf_args[0] = a->conf_path ? "--config" : "--check-config";
	conf_args[1] = a->conf_path ? (char *)a->conf_path : NULL;
	conf_args[2] = a->conf_path ? "--check-config" : NULL;
	if (!run_program(program, conf_args, how, sizeof(how))) {
		util_set_msg(why, len, "the new program, asked to read the configuration, %s", how);
		goto fail;
	}
	util_remove_tree(dir);
	if (rename(tmpdir, dir) == 0)
		return true;
	util_set_msg(why, len, "%s: %s", dir, strerror(errno));
fail:
	util_remove_tree(tmpdir);
	return false;
}

/* Downloads the package d describes (checked) into path (through
 * path.part): false with why when it fails or is not the one signed. */
static bool download(struct agent *a, const json_t *d, const char *path, char *why, size_t len)
{
	char part[PATH_MAX + 8], sha[65];
	uint64_t size;

	snprintf(part, sizeof(part), "%s.part", path);
	if (updater_download(&a->up, NULL, text(d, "file"),
			     json_integer_value(json_object_get(d, "size")), part, why, len) !=
	    ERR_OK)
		goto fail;
	if (!pkg_file_sha256(part, sha, &size) || strcmp(sha, text(d, "sha256")) != 0 ||
	    (json_int_t)size != json_integer_value(json_object_get(d, "size"))) {
		util_set_msg(why, len, "the package downloaded (%s) is not the one the server "
			     "signed (size or SHA-256)", text(d, "file"));
		goto fail;
	}
	if (rename(part, path) == 0)
		return true;
	util_set_msg(why, len, "%s: %s", path, strerror(errno));
fail:
	unlink(part);
	return false;
}

/* The package of the version running here, which dpkg's helper installs
 * again if the new one fails: kept from the last upgrade, else the one
 * the task's "previous" describes (the server signs it when it has it),
 * downloaded. False with why when there is none. */
static bool previous_package(struct agent *a, const json_t *task,
			     const struct upgrade_install *ins, char *why, size_t len)
{
	char *kept = dpkgup_kept(a, ins->version), what[400];
	json_t *d = NULL;
	bool ok = false;

	if (!kept) {
		util_set_msg(why, len, "out of memory");
		return false;
	}
	if (access(kept, R_OK) == 0) {
		ok = true;
	} else if (!json_object_get(task, "previous")) {
		util_set_msg(why, len, "no package of the version running here (%s) to go back "
			     "to if the new one failed: none is kept here, and the server has "
			     "none for %s/%s", ins->version, ins->os, ins->arch);
	} else if (updater_open_signed(&a->up, json_object_get(task, "previous"), &d, what,
				       sizeof(what)) != ERR_OK ||
		   !description_ok(d, ins->version, ins, what, sizeof(what))) {
		util_set_msg(why, len, "the package to go back to: %s", what);
	} else if (!dpkgup_keep_only(a, NULL)) {
		util_set_msg(why, len, "%s: %s", kept, strerror(errno));
	} else {
		ok = download(a, d, kept, why, len);
	}
	json_decref(d);
	free(kept);
	return ok;
}

/* Whether the record s (of an earlier offer) holds back a new one (why
 * says so): all but one staged for a restart, or one done that only
 * awaits its cleanup. */
static bool under_way(const json_t *s, const struct upgrade_install *ins, char *why,
		      size_t len)
{
	if (!s || strcmp(text(s, "state"), "staged") == 0 ||
	    (strcmp(text(s, "state"), "healthy") == 0 &&
	     strcmp(text(s, "to"), ins->version) == 0))
		return false;
	util_set_msg(why, len, "another upgrade is under way here (to %s: %s)", text(s, "to"),
		     text(s, "state"));
	return true;
}

/* Writes s, a new offer's record, unless another upgrade got under way
 * since it was looked at (why says so). A staged package it replaces
 * goes. */
static bool record_start(const struct agent *a, const json_t *s,
			 const struct upgrade_install *ins, char *why, size_t len)
{
	int lock = upgrade_record_lock(a);
	json_t *was = upgrade_record_load(a);
	bool ok = false;

	if (lock < 0)
		util_set_msg(why, len, "the upgrade's record could not be locked");
	else if (!under_way(was, ins, why, len) && !(ok = upgrade_record_save(a, s)))
		util_set_msg(why, len, "the upgrade's record could not be written");
	/* (Its package replaced, a staged offer's goes.) */
	if (ok && text(was, "new")[0] && strcmp(text(was, "new"), text(s, "new")) != 0)
		unlink(text(was, "new"));
	json_decref(was);
	upgrade_record_unlock(lock);
	return ok;
}

bool upgrade_take(struct agent *a, const json_t *task, upgrade_report_fn report, void *arg)
{
	json_int_t id = json_integer_value(json_object_get(task, "id"));
	const char *version = text(task, "version"), *why_before;
	int64_t started = (int64_t)time(NULL);
	char why[600], dir[PATH_MAX + 300], message[300], missing[200];
	char *work = NULL, *deb = NULL;
	struct upgrade_install ins;
	json_t *d = NULL, *failed = NULL, *s = NULL;
	char boot[64];
	bool restart = false, dpkg;

	upgrade_install(&ins);
	dpkg = strcmp(ins.mode, "dpkg") == 0;
	if (updater_open_signed(&a->up, json_object_get(task, "offer"), &d, why, sizeof(why)) !=
	    ERR_OK)
		goto fail;
	if (!description_ok(d, version, &ins, why, sizeof(why)))
		goto fail;
	if (util_deb_version_cmp(ins.version, version) >= 0) {
		log_msg(LOG_LVL_INFO, "upgrade: %s runs here already (%s)", version, ins.version);
		report_state(report, arg, id, "completed", started, NULL);
		goto out;
	}
	if (strcmp(ins.mode, "source") == 0) {
		util_set_msg(why, sizeof(why), "this agent was installed from source: upgrade it "
			     "by hand");
		goto fail;
	}
	if (!dpkg && !getenv(SUPERVISED_ENV)) {
		util_set_msg(why, sizeof(why), "this agent does not run under ward-agent "
			     "supervise, which would bring its version back if the new one failed");
		goto fail;
	}
	if (dpkg && !dpkgup_available(missing, sizeof(missing))) {
		util_set_msg(why, sizeof(why), "this agent was installed by its Debian package, "
			     "and %s: upgrade it with the package manager", missing);
		goto fail;
	}
	failed = failed_load(a);
	why_before = failed_before(failed, version);
	if (why_before) {
		util_set_msg(why, sizeof(why), "%s failed here before: %s", version, why_before);
		goto fail;
	}
	s = upgrade_record_load(a);
	if (s && strcmp(text(s, "state"), "staged") == 0 && strcmp(text(s, "to"), version) == 0) {
		report_state(report, arg, id, "running", started, NULL);
		goto out;   /* waits for its restart already */
	}
	if (under_way(s, &ins, why, sizeof(why)))
		goto fail;
	/* Nothing is downloaded for an upgrade that could not be undone. */
	if (dpkg && !previous_package(a, task, &ins, why, sizeof(why)))
		goto fail;
	report_state(report, arg, id, "running", started, NULL);
	log_msg(LOG_LVL_INFO, "upgrade: %s offered (running %s, a %s install)", version,
		ins.version, ins.mode);
	work = astate_file(a, WORK_DIR);
	if (!work || (mkdir(work, 0700) != 0 && errno != EEXIST)) {
		util_set_msg(why, sizeof(why), "%s: %s", work ? work : WORK_DIR, strerror(errno));
		goto fail;
	}
	deb = util_path_join(work, text(d, "file"));
	if (!deb || !download(a, d, deb, why, sizeof(why)))
		goto fail;
	/* dpkg: the program is only checked; a versioned install keeps it. */
	if (dpkg)
		snprintf(dir, sizeof(dir), "%s/check", work);
	else
		snprintf(dir, sizeof(dir), "%s/versions/%s", ins.root, version);
	if (!unpack_checked(a, deb, dir, why, sizeof(why)))
		goto fail;
	if (dpkg)
		util_remove_tree(dir);
	else
		unlink(deb);
	upgrade_boot_id(a, boot);
	json_decref(s);
	s = json_pack("{sI ss ss ss sI sI ss ss}", "task", id, "from", ins.version, "to",
		      version, "root", ins.root, "window", json_integer_value(json_object_get(
			      task, "window")), "started", (json_int_t)started, "needs",
		      text(d, "restart"), "boot_id", boot);
	if (!s || (dpkg && json_object_set_new(s, "new", json_string(deb)) != 0))
		goto nomem;
	if (dpkg && !dpkgup_prepare(a, s, why, sizeof(why)))
		goto fail;
	if (setting_on(a, "restart.postpone_updates") &&
	    strcmp(text(d, "restart"), "none") != 0) {
		json_object_set_new(s, "state", json_string("staged"));
		if (setting_on(a, "restart.notify")) {
			snprintf(message, sizeof(message), "an update (agent %s) waits for %s; "
				 "please restart it when you can.", version,
				 strcmp(text(d, "restart"), "host") == 0 ?
				 "this computer to restart" :
				 "the Ward agent to restart (it does with this computer)");
			log_msg(LOG_LVL_INFO, "upgrade: %d terminals told: %s",
				tell_users(a, message), message);
			json_object_set_new(s, "notified", json_integer((json_int_t)time(NULL)));
		}
		if (!record_start(a, s, &ins, why, sizeof(why)))
			goto fail;
		log_msg(LOG_LVL_INFO, "upgrade: %s waits for the next %s "
			"(restart.postpone_updates)", version,
			strcmp(text(d, "restart"), "host") == 0 ? "boot of this host" :
			"start of the agent");
		goto out;
	}
	if (dpkg) {
		/* The helper installs it; dpkg restarts this agent. */
		json_object_set_new(s, "state", json_string("installing"));
		if (!record_start(a, s, &ins, why, sizeof(why)))
			goto fail;
		if (!dpkgup_launch(s, why, sizeof(why))) {
			upgrade_record_save(a, NULL);
			goto fail;
		}
		log_msg(LOG_LVL_INFO, "upgrade: %s goes to dpkg (%s)", version,
			"ward-agent-upgrade.service");
		goto out;
	}
	json_object_set_new(s, "state", json_string("switching"));
	if (!record_start(a, s, &ins, why, sizeof(why)))
		goto fail;
	if (!point_current(ins.root, version, why, sizeof(why))) {
		upgrade_record_save(a, NULL);
		goto fail;
	}
	log_msg(LOG_LVL_INFO, "upgrade: %s in place; restarting into it", version);
	restart = true;
	goto out;
nomem:
	util_set_msg(why, sizeof(why), "out of memory");
fail:
	if (deb)
		unlink(deb);
	log_msg(LOG_LVL_ERROR, "upgrade to %s: %s", version, why);
	report_state(report, arg, id, "failed", started, why);
out:
	free(deb);
	free(work);
	json_decref(s);
	json_decref(failed);
	json_decref(d);
	return restart;
}

bool upgrade_waiting(const struct agent *a)
{
	json_t *s = upgrade_record_load(a);
	const char *state = text(s, "state");
	bool waiting = strcmp(state, "trial") == 0 || strcmp(state, "switching") == 0 ||
		       strcmp(state, "rolled_back") == 0;

	json_decref(s);
	return waiting;
}

void upgrade_connected(struct agent *a, upgrade_report_fn report, void *arg)
{
	int lock = upgrade_record_lock(a);
	json_t *s = upgrade_record_load(a);
	struct upgrade_install ins;
	const char *state = text(s, "state");
	json_int_t id = json_integer_value(json_object_get(s, "task"));
	char why[700];

	if (!s)
		goto out;
	upgrade_install(&ins);
	if ((strcmp(state, "trial") == 0 || strcmp(state, "switching") == 0) &&
	    strcmp(text(s, "to"), ins.version) == 0) {
		json_object_set_new(s, "state", json_string("healthy"));
		if (upgrade_record_save(a, s)) {
			log_msg(LOG_LVL_INFO, "upgrade: %s runs and reached the server (from %s)",
				ins.version, text(s, "from"));
			report_state(report, arg, id, "completed", json_integer_value(
					     json_object_get(s, "started")), NULL);
		}
	} else if (strcmp(state, "rolled_back") == 0 && strcmp(text(s, "to"), ins.version) != 0) {
		/* (While the version that failed still runs, dpkg's helper has
		 * yet to put the previous one back: that one reports.) */
		util_set_msg(why, sizeof(why), "%s %s; %s came back", text(s, "to"),
			     text(s, "reason"), ins.version);
		/* A version that crashed is not tried again; one that did not
		 * reach the server may have met a network down: it may be. */
		if (json_is_true(json_object_get(s, "crashed")))
			failed_add(a, text(s, "to"), text(s, "reason"));
		report_state(report, arg, id, "failed", json_integer_value(json_object_get(s,
										"started")), why);
		upgrade_record_save(a, NULL);
	}
out:
	json_decref(s);
	upgrade_record_unlock(lock);
}

/* ---- the supervisor ------------------------------------------------------ */

/* Milliseconds on the monotonic clock: a step of the wall clock neither
 * ends a trial early nor keeps it going. */
static int64_t mono_ms(void)
{
	return (int64_t)(util_now_ns() / 1000000);
}

struct supervisor {
	struct agent *a;
	char root[PATH_MAX];
	char **argv;          /* the child's: program, options, "run", NULL */
	int sfd;              /* signalfd: SIGTERM, SIGINT, SIGCHLD */
	pid_t child;
	int64_t trial_end;    /* monotonic ms the version on trial must be healthy by; 0: none */
};

static pid_t start_child(struct supervisor *sv)
{
	char program[PATH_MAX + 32];
	sigset_t none;
	pid_t pid;

	snprintf(program, sizeof(program), "%s/current/" PROGRAM, sv->root);
	sv->argv[0] = program;
	pid = fork();
	if (pid == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* A supervisor killed outright takes its agent along: the next
		 * one starts it again, never beside it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		setenv(SUPERVISED_ENV, "1", 1);
		execv(program, sv->argv);
		fprintf(stderr, "error: supervise: %s: %s\n", program, strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		log_msg(LOG_LVL_ERROR, "supervise: fork: %s", strerror(errno));
	return pid;
}

/* Puts the previous version back for reason, records so for it to report,
 * and removes the one that failed. */
static void roll_back(struct supervisor *sv, json_t *s, const char *reason, bool crashed)
{
	char why[300], dir[PATH_MAX + 300];

	log_msg(LOG_LVL_ERROR, "supervise: %s %s: going back to %s", text(s, "to"), reason,
		text(s, "from"));
	/* Recorded before current moves: a kill between leaves a record the
	 * previous version reports, never a switch that seems not to have
	 * happened. */
	json_object_set_new(s, "state", json_string("rolled_back"));
	json_object_set_new(s, "reason", json_string(reason));
	json_object_set_new(s, "crashed", json_boolean(crashed));
	upgrade_record_save(sv->a, s);
	sv->trial_end = 0;
	if (!point_current(sv->root, text(s, "from"), why, sizeof(why))) {
		log_msg(LOG_LVL_ERROR, "supervise: %s", why);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/versions/%s", sv->root, text(s, "to"));
	util_remove_tree(dir);
}

/* Whether s is the record of the version on trial now. */
static bool on_trial(const json_t *s)
{
	return s && strcmp(text(s, "state"), "trial") == 0;
}

/* A healthy new version: every other version but the one it replaced
 * goes, and the record with them. */
static void commit(struct supervisor *sv, json_t *s)
{
	char path[PATH_MAX + 300];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/versions", sv->root);
	d = opendir(path);
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, text(s, "to")) == 0 ||
		    strcmp(de->d_name, text(s, "from")) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/versions/%s", sv->root, de->d_name);
		util_remove_tree(path);
	}
	if (d)
		closedir(d);
	log_msg(LOG_LVL_INFO, "supervise: %s committed (%s kept to go back to by hand)",
		text(s, "to"), text(s, "from"));
	upgrade_record_save(sv->a, NULL);
	sv->trial_end = 0;
}

/* A staged version whose restart has come (the service's start; for a
 * host restart, a new boot id): put in place, to go on trial. */
static void apply_staged(struct supervisor *sv)
{
	json_t *s = upgrade_record_load(sv->a);
	char boot[64], why[300];

	if (!s || strcmp(text(s, "state"), "staged") != 0) {
		json_decref(s);
		return;
	}
	upgrade_boot_id(sv->a, boot);
	if (strcmp(text(s, "needs"), "host") == 0 && strcmp(text(s, "boot_id"), boot) == 0) {
		log_msg(LOG_LVL_INFO, "supervise: %s waits for this host's restart", text(s, "to"));
	} else if (point_current(sv->root, text(s, "to"), why, sizeof(why))) {
		log_msg(LOG_LVL_INFO, "supervise: the restart %s waited for: starting it",
			text(s, "to"));
		json_object_set_new(s, "state", json_string("switching"));
		upgrade_record_save(sv->a, s);
	} else {
		log_msg(LOG_LVL_ERROR, "supervise: %s", why);
	}
	json_decref(s);
}

/* Before a child starts: a version just switched to goes on trial (false:
 * it was rolled back instead, start the previous one). A record whose
 * switch never happened (the agent killed between writing it and moving
 * current) goes. */
static bool begin_trial(struct supervisor *sv)
{
	json_t *s = upgrade_record_load(sv->a);
	int64_t window = json_integer_value(json_object_get(s, "window"));
	char link[PATH_MAX + 16], target[PATH_MAX], want[PATH_MAX];
	ssize_t n;

	if (s && (strcmp(text(s, "state"), "switching") == 0 ||
		  strcmp(text(s, "state"), "trial") == 0)) {
		snprintf(link, sizeof(link), "%s/current", sv->root);
		snprintf(want, sizeof(want), "versions/%.200s", text(s, "to"));
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		if (strcmp(target, want) != 0) {
			log_msg(LOG_LVL_WARN, "supervise: the switch to %s never happened; its "
				"record goes", text(s, "to"));
			upgrade_record_save(sv->a, NULL);
			json_decref(s);
			return true;
		}
		/* A version whose trial its supervisor did not outlive (the
		 * host hung, the service restarted) gets UPGRADE_TRIALS starts. */
		json_object_set_new(s, "starts", json_integer(json_integer_value(
			json_object_get(s, "starts")) + 1));
		json_object_set_new(s, "state", json_string("trial"));
		upgrade_record_save(sv->a, s);
		if (json_integer_value(json_object_get(s, "starts")) > UPGRADE_TRIALS) {
			roll_back(sv, s, "did not come up in " STR(UPGRADE_TRIALS) " starts", true);
			json_decref(s);
			return false;
		}
		sv->trial_end = mono_ms() + (window > 0 ? window : 60) * 1000;
		log_msg(LOG_LVL_INFO, "supervise: %s on trial for %lld s", text(s, "to"),
			(long long)(window > 0 ? window : 60));
	}
	json_decref(s);
	return true;
}

/* Waits for the child to end (SIGKILL after 10 s), returning its status. */
static int reap(pid_t pid, int sig)
{
	int status = 0, i;

	kill(pid, sig);
	for (i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(100000);
	if (i == 100) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	return status;
}

int upgrade_supervise(struct agent *a, int argc, char **argv)
{
	struct supervisor sv = { .a = a, .sfd = -1 };
	struct signalfd_siginfo si;
	struct upgrade_install ins;
	unsigned backoff = 1;
	int64_t started_ms = 0, wait_until = 0;
	char how[200];
	sigset_t set;
	json_t *s;
	int status, i, ret = 1;
	struct pollfd p;

	upgrade_install(&ins);
	if (strcmp(ins.mode, "dir") != 0) {
		log_msg(LOG_LVL_ERROR, "supervise: %s is not installed as ROOT/versions/VERSION/"
			PROGRAM " with ROOT/current beside (it is a %s install)", PROGRAM,
			ins.mode);
		return 2;
	}
	snprintf(sv.root, sizeof(sv.root), "%s", ins.root);
	sv.argv = calloc((size_t)argc + 3, sizeof(*sv.argv));
	if (!sv.argv)
		return 1;
	for (i = 0; i < argc; i++)
		sv.argv[i + 1] = argv[i];
	sv.argv[argc + 1] = "run";
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sv.sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sv.sfd < 0) {
		log_msg(LOG_LVL_ERROR, "supervise: signalfd: %s", strerror(errno));
		goto out;
	}
	apply_staged(&sv);
	for (;;) {
		if (!sv.child) {
			if (wait_until && mono_ms() < wait_until) {
				/* backing off: wait below */
			} else {
				wait_until = 0;
				begin_trial(&sv);
				sv.child = start_child(&sv);
				if (sv.child < 0)
					goto out;
				started_ms = mono_ms();
			}
		}
		p = (struct pollfd){ .fd = sv.sfd, .events = POLLIN };
		if (poll(&p, 1, 500) > 0 && read(sv.sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo != SIGCHLD) {
				if (sv.child > 0)
					status = reap(sv.child, (int)si.ssi_signo);
				else
					status = 0;
				ret = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
				goto out;
			}
		}
		if (sv.child > 0 && waitpid(sv.child, &status, WNOHANG) == sv.child) {
			sv.child = 0;
			s = upgrade_record_load(a);
			/* Healthy before it ended: committed, whatever ended it. */
			if (sv.trial_end && s && strcmp(text(s, "state"), "healthy") == 0)
				commit(&sv, s);
			if (WIFEXITED(status) && WEXITSTATUS(status) == UPGRADE_EXIT_RESTART) {
				backoff = 1;
			} else if (sv.trial_end && on_trial(s)) {
				util_status_text(status, how, sizeof(how));
				roll_back(&sv, s, how, true);
				backoff = 1;
			} else {
				util_status_text(status, how, sizeof(how));
				log_msg(LOG_LVL_ERROR, "supervise: the agent %s; again in %u s",
					how, backoff);
				wait_until = mono_ms() + backoff * 1000;
				/* One that ran a minute was not failing at once. */
				backoff = mono_ms() - started_ms > 60000 ? 1 :
					  backoff >= 30 ? 60 : backoff * 2;
			}
			json_decref(s);
			continue;
		}
		if (sv.trial_end) {
			s = upgrade_record_load(a);
			if (s && strcmp(text(s, "state"), "healthy") == 0) {
				commit(&sv, s);
			} else if (on_trial(s) && mono_ms() > sv.trial_end) {
				snprintf(how, sizeof(how), "started but did not reach the server "
					 "within %lld s", (long long)json_integer_value(
						 json_object_get(s, "window")));
				if (sv.child > 0)
					reap(sv.child, SIGTERM);
				sv.child = 0;
				/* Read again once the child is gone: it may have
				 * recorded healthy on its way out. */
				json_decref(s);
				s = upgrade_record_load(a);
				if (s && strcmp(text(s, "state"), "healthy") == 0)
					commit(&sv, s);
				else if (on_trial(s))
					roll_back(&sv, s, how, false);
			} else if (!on_trial(s)) {
				sv.trial_end = 0;
			}
			json_decref(s);
		}
	}
out:
	if (sv.sfd >= 0)
		close(sv.sfd);
	free(sv.argv);
	return ret;
}
