/* util.h -- small helpers every Ward program uses. */
#ifndef WARD_UTIL_H
#define WARD_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* A growable byte buffer, always NUL-terminated when non-empty. Zero-
 * initialise it; release with util_buf_free(). Not thread-safe. */
struct util_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Appends formatted text. Returns 0, or -1 when out of memory. */
int util_buf_printf(struct util_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends n bytes. Returns 0, or -1 when out of memory. */
int util_buf_append(struct util_buf *b, const void *p, size_t n);

/* Frees the contents and leaves b empty and reusable. */
void util_buf_free(struct util_buf *b);

/* Returns "dir/name" (a single slash between them) in a new allocation the
 * caller frees, or NULL when out of memory. */
char *util_path_join(const char *dir, const char *name);

/* Stops the program (abort, after a message naming the condition and where)
 * when an invariant does not hold: for states that cannot happen unless the
 * code is wrong, where going on would corrupt stored data. Unlike assert(),
 * it is never compiled out. */
#define util_assert(cond) \
	((cond) ? (void)0 : util_assert_fail(#cond, __FILE__, __LINE__, __func__))

/* util_assert's failure: writes the message to standard error, then aborts. */
_Noreturn void util_assert_fail(const char *cond, const char *file, int line, const char *func);

/* Returns the formatted text in a new allocation the caller frees, or
 * NULL when out of memory. Thread-safe. */
char *util_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Formats a message into errbuf (errlen bytes); does nothing when errbuf
 * is NULL or errlen is 0, so callers may pass a caller's optional buffer. */
void util_set_msg(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes n bytes to path, creating or truncating it with the given mode.
 * Returns 0, or -1 with errno set. */
int util_write_file(const char *path, const void *p, size_t n, mode_t mode);

/* Replaces path atomically with n bytes of the given mode: written to
 * "path.tmp", flushed to disk, then renamed over path, so a crash leaves
 * the old contents or the new, never a mix. Returns 0, or -1 with errno
 * set (the temporary file removed). */
int util_replace_file(const char *path, const void *p, size_t n, mode_t mode);

/* Replaces path like util_replace_file() (mode 0600) with obj as JSON,
 * indented and with sorted keys. Returns 0, or -1 with errno set. */
int util_write_json(const char *path, const json_t *obj);

/* Writes this machine's host name into out ("localhost" when it has
 * none). */
void util_host_name(char out[256]);

/* Writes a new random (version 4) UUID, lowercase, into out. */
void util_uuid(char out[37]);

/* Reads the whole file at path (at most max bytes) into a new
 * NUL-terminated allocation the caller frees, its length in *len (may be
 * NULL). Returns NULL with errno set (EFBIG when larger than max). */
char *util_read_file(const char *path, size_t max, size_t *len);

/* Creates path and its missing parents with mode. Returns 0 (also when it
 * exists as a directory), or -1 with errno set. */
int util_mkdir_p(const char *path, mode_t mode);

/* Removes path and, for a directory, everything below it (symbolic links
 * are removed, never followed). Returns 0 (also when path does not exist),
 * or -1 with errno set. */
int util_remove_tree(const char *path);

/* Returns true when the n bytes at s are valid UTF-8 (no overlong forms,
 * no surrogates, nothing above U+10FFFF). */
bool util_utf8_valid(const char *s, size_t n);

/* Compares two versions "A.B.C" number by number (a missing number is
 * 0): below 0, 0 or above 0 as a is older than, as old as or newer than b. */
int util_version_cmp(const char *a, const char *b);

/* Compares two Debian version strings ([EPOCH:]UPSTREAM[-REVISION]) as
 * dpkg does: <0, 0 or >0. Parts past 127 bytes are not compared. */
int util_deb_version_cmp(const char *a, const char *b);

/* Returns s as a new JSON string; when s is not UTF-8 (any bytes may name
 * a file), its bytes from 0x80 up are written as \xNN, so that it is
 * reported all the same. NULL when out of memory. Thread-safe. */
json_t *util_json_bytes(const char *s);

/* Copies s to out (outlen > 0 bytes, always NUL-terminated, cut short when
 * full) with every control character escaped, so that text from elsewhere
 * cannot start a new line or drive a terminal: newline, CR and tab as \n,
 * \r, \t, a backslash as \\, other C0 bytes, DEL and the C1 controls
 * (U+0080-U+009F in UTF-8) as \xNN per byte. Returns the length written.
 * Thread-safe. */
size_t util_escape(char *out, size_t outlen, const char *s);

/* Returns the name of the kernel's pseudo file system (proc, sysfs, ...)
 * path is on, or NULL when it is on a real one or cannot be looked at.
 * Thread-safe. */
const char *util_pseudo_fs(const char *path);

/* Reads up to n bytes of fd into p (fewer only at its end; again after a
 * partial read or EINTR). Returns how many, or -1 with errno set. */
ssize_t util_read_full(int fd, void *p, size_t n);

/* Writes all n bytes of p to fd (again after a partial write or EINTR).
 * Returns 0, or -1 with errno set. */
int util_write_all(int fd, const void *p, size_t n);

/* Returns a monotonic clock reading in nanoseconds. */
uint64_t util_now_ns(void);

/* Returns the clock (milliseconds since the epoch): a time that servers
 * sharing a database agree on, unlike the monotonic clock. */
int64_t util_clock_ms(void);

/* Initialises c for pthread_cond_timedwait() deadlines on CLOCK_MONOTONIC
 * (a step of the wall clock neither hastens nor holds them). */
void util_cond_init_monotonic(pthread_cond_t *c);

/* Runs argv (argv[0] a path) in the caller's environment, its stdin
 * /dev/null and its stdout and stderr into out (the last outlen - 1 bytes
 * of them, NUL-terminated; out NULL: to /dev/null), for at most timeout_s
 * seconds, then kills it (SIGKILL). Returns its wait status, or -1 with
 * errno set when it could not be started (or ETIMEDOUT: it was killed
 * for time). Thread-safe: the child only execs. */
int util_run(char *const *argv, int timeout_s, char *out, size_t outlen);

/* How a process ended, from its wait status, in words ("exited with
 * status 3", "was killed by signal 11 (Segmentation fault)"). */
void util_status_text(int status, char *out, size_t len);

/* Whether url is a server's base address: https://HOST[:PORT] with HOST a
 * name, an IPv4 address or a bracketed IPv6 address, at most 300 bytes;
 * no path, which the API's paths are appended to. */
bool util_url_valid(const char *url);

#endif
