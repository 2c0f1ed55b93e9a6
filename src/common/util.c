/* util.c -- see util.h. */
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/random.h>
#include <sys/statfs.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int buf_reserve(struct util_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int util_buf_append(struct util_buf *b, const void *p, size_t n)
{
	if (n == 0) /* p may be NULL then (an empty buffer's data) */
		return 0;
	if (buf_reserve(b, n) != 0)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int util_buf_printf(struct util_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) != 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void util_buf_free(struct util_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *util_path_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *p;

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	p = malloc(dl + nl + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	if (dl == 0 || dir[dl - 1] != '/')
		p[dl++] = '/';
	memcpy(p + dl, name, nl + 1);
	return p;
}

void util_set_msg(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

void util_assert_fail(const char *cond, const char *file, int line, const char *func)
{
	fprintf(stderr, "ward: invariant broken at %s:%d in %s(): %s\n", file, line, func, cond);
	fflush(stderr);
	abort();
}

char *util_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* Writes n bytes to path; with sync, flushes them to disk before closing. */
static int write_file(const char *path, const void *p, size_t n, mode_t mode, bool sync)
{
	const char *c = p;
	int fd, saved;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto fail;
		c += w;
		n -= (size_t)w;
	}
	if (sync && fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0)
		return -1;
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int util_write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	return write_file(path, p, n, mode, false);
}

int util_write_json(const char *path, const json_t *obj)
{
	char *text = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
	int rc;

	if (!text) {
		errno = ENOMEM;
		return -1;
	}
	rc = util_replace_file(path, text, strlen(text), 0600);
	free(text);
	return rc;
}

void util_host_name(char out[256])
{
	if (gethostname(out, 256) != 0)
		snprintf(out, 256, "localhost");
	out[255] = '\0';
}

void util_uuid(char out[37])
{
	unsigned char b[16];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(b)) {
		n = getrandom(b + got, sizeof(b) - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
		 b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int util_replace_file(const char *path, const void *p, size_t n, mode_t mode)
{
	char *tmp = util_printf("%s.tmp", path);
	int saved;

	if (!tmp)
		return -1;
	if (write_file(tmp, p, n, mode, true) != 0 || rename(tmp, path) != 0) {
		saved = errno;
		unlink(tmp);
		free(tmp);
		errno = saved;
		return -1;
	}
	free(tmp);
	return 0;
}

int util_mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path), *s;
	struct stat st;
	int rc = -1;

	if (!p)
		return -1;
	if (!*p) {
		errno = ENOENT;
		goto out;
	}
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST)
			goto out;
		*s = c;
		if (c == '\0')
			break;
	}
	if (stat(path, &st) != 0)
		goto out;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		goto out;
	}
	rc = 0;
out:
	free(p);
	return rc;
}

ssize_t util_read_full(int fd, void *p, size_t n)
{
	unsigned char *c = p;
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, c + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int util_write_all(int fd, const void *p, size_t n)
{
	const unsigned char *c = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

uint64_t util_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Keeps the last outlen - 1 bytes read from fd in out (*n of them). */
static void run_keep(int fd, char *out, size_t outlen, size_t *n, bool *open_)
{
	char buf[4096];
	ssize_t got = read(fd, buf, sizeof(buf));
	size_t take, drop;

	if (got <= 0) {
		*open_ = got < 0 && (errno == EINTR || errno == EAGAIN);
		return;
	}
	if (!out || outlen < 2)
		return;
	take = (size_t)got > outlen - 1 ? outlen - 1 : (size_t)got;
	drop = *n + take > outlen - 1 ? *n + take - (outlen - 1) : 0;
	memmove(out, out + drop, *n - drop);
	*n -= drop;
	memcpy(out + *n, buf + (size_t)got - take, take);
	*n += take;
	out[*n] = '\0';
}

int util_run(char *const *argv, int timeout_s, char *out, size_t outlen)
{
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_s * 1000000000u;
	int fds[2] = { -1, -1 }, status = 0, null, err;
	struct pollfd p;
	bool open_ = true;
	size_t n = 0;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	pid_t pid, done = 0;

	if (out && outlen)
		out[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		/* A group of its own, which a timeout kills whole (dpkg's
		 * maintainer scripts with dpkg); the signals the caller's threads
		 * block or ignore are the program's again. */
		setsid();
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		sigaction(SIGPIPE, &dfl, NULL);
		null = open("/dev/null", O_RDWR);
		if (null >= 0)
			dup2(null, 0);
		dup2(out ? fds[1] : null, 1);
		dup2(out ? fds[1] : null, 2);
		close_range(3, ~0U, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	err = errno;
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		errno = err;
		return -1;
	}
	/* The output until it ends (a daemon the program leaves behind may
	 * hold the pipe: the deadline ends that too), then the program. */
	while (open_ && util_now_ns() < deadline) {
		p = (struct pollfd){ .fd = fds[0], .events = POLLIN };
		if (poll(&p, 1, 100) > 0)
			run_keep(fds[0], out, outlen, &n, &open_);
	}
	close(fds[0]);
	while ((done = waitpid(pid, &status, WNOHANG)) == 0 &&
	       util_now_ns() < deadline)
		usleep(20000);
	if (done != pid) {
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
		errno = ETIMEDOUT;
		return -1;
	}
	return status;
}

void util_status_text(int status, char *out, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(out, len, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
}

int64_t util_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

const char *util_pseudo_fs(const char *path)
{
	static const struct {
		unsigned long magic;
		const char *name;
	} pseudo[] = {
		{ PROC_SUPER_MAGIC, "proc" }, { SYSFS_MAGIC, "sysfs" },
		{ DEVPTS_SUPER_MAGIC, "devpts" }, { DEBUGFS_MAGIC, "debugfs" },
		{ TRACEFS_MAGIC, "tracefs" }, { SECURITYFS_MAGIC, "securityfs" },
		{ CGROUP_SUPER_MAGIC, "cgroup" }, { CGROUP2_SUPER_MAGIC, "cgroup2" },
		{ BPF_FS_MAGIC, "bpf" }, { PSTOREFS_MAGIC, "pstore" },
		{ EFIVARFS_MAGIC, "efivarfs" }, { SELINUX_MAGIC, "selinuxfs" },
		{ SMACK_MAGIC, "smackfs" }, { BINFMTFS_MAGIC, "binfmt_misc" },
		{ NSFS_MAGIC, "nsfs" },
	};
	struct statfs sf;
	size_t i;

	if (statfs(path, &sf) != 0)
		return NULL;
	for (i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
		if ((unsigned long)sf.f_type == pseudo[i].magic)
			return pseudo[i].name;
	return NULL;
}

/* Writes byte c as \xNN at out. */
static void hex_escape(char *out, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";

	out[0] = '\\';
	out[1] = 'x';
	out[2] = hex[c >> 4];
	out[3] = hex[c & 15];
}

size_t util_escape(char *out, size_t outlen, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char esc[8];
	size_t n = 0, k, used;

	for (; *p; p += used) {
		used = 1;
		if (*p == '\n' || *p == '\r' || *p == '\t' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : *p == '\t' ? 't' : '\\';
			k = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			hex_escape(esc, *p);
			k = 4;
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) { /* a C1 control */
			hex_escape(esc, p[0]);
			hex_escape(esc + 4, p[1]);
			k = 8;
			used = 2;
		} else {
			esc[0] = (char)*p;
			k = 1;
		}
		if (n + k >= outlen)
			break;
		memcpy(out + n, esc, k);
		n += k;
	}
	out[n] = '\0';
	return n;
}

#define DEB_VERSION_MAX 128

/* dpkg's order of a character in a version's non-digit part: letters
 * before other characters, '~' before the end. */
static int order(int c)
{
	if (c >= '0' && c <= '9')
		return 0;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return c;
	if (c == '~')
		return -1;
	return c ? c + 256 : 0;
}

static bool deb_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Compares an upstream version or a revision as dpkg does. */
static int part_cmp(const char *a, const char *b)
{
	int first, ac, bc;

	while (*a || *b) {
		first = 0;
		while ((*a && !deb_digit(*a)) || (*b && !deb_digit(*b))) {
			ac = order(*a);
			bc = order(*b);
			if (ac != bc)
				return ac - bc;
			a++;
			b++;
		}
		while (*a == '0')
			a++;
		while (*b == '0')
			b++;
		while (deb_digit(*a) && deb_digit(*b)) {
			if (!first)
				first = *a - *b;
			a++;
			b++;
		}
		if (deb_digit(*a))
			return 1;
		if (deb_digit(*b))
			return -1;
		if (first)
			return first;
	}
	return 0;
}

/* Splits version v ([EPOCH:]UPSTREAM[-REVISION]) into its parts, copied
 * into up and rev (DEB_VERSION_MAX bytes each). */
static long split_version(const char *v, char *up, char *rev)
{
	const char *colon = strchr(v, ':'), *dash;
	long epoch = colon ? strtol(v, NULL, 10) : 0;

	snprintf(up, DEB_VERSION_MAX, "%s", colon ? colon + 1 : v);
	dash = strrchr(up, '-');
	snprintf(rev, DEB_VERSION_MAX, "%s", dash ? dash + 1 : "");
	if (dash)
		up[dash - up] = '\0';
	return epoch;
}

int util_deb_version_cmp(const char *a, const char *b)
{
	char up_a[DEB_VERSION_MAX], rev_a[DEB_VERSION_MAX];
	char up_b[DEB_VERSION_MAX], rev_b[DEB_VERSION_MAX];
	long ea = split_version(a, up_a, rev_a), eb = split_version(b, up_b, rev_b);
	int c;

	if (ea != eb)
		return ea < eb ? -1 : 1;
	c = part_cmp(up_a, up_b);
	return c ? c : part_cmp(rev_a, rev_b);
}

int util_version_cmp(const char *a, const char *b)
{
	long x, y;
	char *ea, *eb;

	while (*a || *b) {
		x = strtol(a, &ea, 10);
		y = strtol(b, &eb, 10);
		if (x != y)
			return x < y ? -1 : 1;
		if (ea == a && eb == b)
			break;
		a = *ea == '.' ? ea + 1 : ea;
		b = *eb == '.' ? eb + 1 : eb;
	}
	return 0;
}

bool util_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	unsigned need;
	uint32_t cp, min;

	while (p < end) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			need = 1, cp = *p & 0x1f, min = 0x80;
		} else if ((*p & 0xf0) == 0xe0) {
			need = 2, cp = *p & 0x0f, min = 0x800;
		} else if ((*p & 0xf8) == 0xf0) {
			need = 3, cp = *p & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= need)
			return false;
		for (p++; need > 0; need--, p++) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*p & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

json_t *util_json_bytes(const char *s)
{
	struct util_buf b = { 0 };
	json_t *v = json_string(s);
	const char *p;
	int rc = 0;

	if (v)
		return v;
	for (p = s; *p; p++)
		rc |= (unsigned char)*p < 0x80 ? util_buf_append(&b, p, 1) :
		      util_buf_printf(&b, "\\x%02x", (unsigned char)*p);
	rc |= util_buf_append(&b, "", 1);
	v = rc == 0 ? json_string(b.data) : NULL;
	util_buf_free(&b);
	return v;
}

char *util_read_file(const char *path, size_t max, size_t *len)
{
	struct util_buf b = { 0 };
	char chunk[8192];
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC), saved;

	if (fd < 0)
		return NULL;
	while ((got = read(fd, chunk, sizeof(chunk))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			goto fail;
		if (b.len + (size_t)got > max) {
			errno = EFBIG;
			goto fail;
		}
		if (util_buf_append(&b, chunk, (size_t)got) != 0) {
			errno = ENOMEM;
			goto fail;
		}
	}
	close(fd);
	if (!b.data && util_buf_append(&b, "", 0) != 0)
		return NULL;
	if (len)
		*len = b.len;
	return b.data;
fail:
	saved = errno;
	close(fd);
	util_buf_free(&b);
	errno = saved;
	return NULL;
}

/* nftw() callback of util_remove_tree(). */
static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int util_remove_tree(const char *path)
{
	if (access(path, F_OK) != 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* Whether url is a server's base address: https://HOST[:PORT] with HOST a
 * name, an IPv4 address or a bracketed IPv6 address; no path, which the
 * API's paths are appended to. */
bool util_url_valid(const char *url)
{
	const char *p = url + 8;
	char *end;
	size_t n;
	long port;

	if (strncmp(url, "https://", 8) != 0 || strlen(url) > 300)
		return false;
	if (*p == '[') {
		n = strspn(p + 1, "0123456789abcdefABCDEF:.");
		if (n == 0 || p[1 + n] != ']')
			return false;
		p += n + 2;
	} else {
		n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.");
		if (n == 0 || p[0] == '-' || p[0] == '.')
			return false;
		p += n;
	}
	if (*p == '\0')
		return true;
	if (*p != ':' || !isdigit((unsigned char)p[1]))
		return false;
	port = strtol(p + 1, &end, 10);
	return port >= 1 && port <= 65535 && *end == '\0';
}
