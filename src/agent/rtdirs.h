/* rtdirs.h -- the directories whose path decisions the kernel caches for
 * the real-time scanner, and the watch that drops those decisions when a
 * directory moves.
 *
 * A decision that rests on a path (out of realtime.paths, or excluded) is
 * cached by the kernel on the file's directory, never on the file: a file
 * moved or linked into the trees is reached through another directory and
 * asked about again. A directory that moves keeps its mark, so before a
 * directory is marked it and every directory above it, up to the root of
 * its filesystem, are watched (inotify IN_MOVE_SELF); rtdirs_moved() tells
 * the caller when one moved, and the caller drops every mark.
 *
 * Thread-safety: none; one thread (the real-time reader) owns a set.
 */
#ifndef WARD_AGENT_RTDIRS_H
#define WARD_AGENT_RTDIRS_H

#include <stdbool.h>
#include <stddef.h>

struct rtdirs;

/* Creates a set of at most max_dirs watched directories. Returns NULL
 * with errno set when inotify or memory is refused. The caller owns it. */
struct rtdirs *rtdirs_new(size_t max_dirs);

/* The descriptor to poll for readability (then call rtdirs_moved()). */
int rtdirs_fd(const struct rtdirs *d);

/* Watches the directory open at dfd (O_PATH is enough) and each directory
 * above it up to the root of its filesystem, unless watched already.
 * Returns false when one cannot be watched (the set is full, inotify
 * refuses, the chain is deeper than 64 directories not yet watched): then
 * the directory must not be marked. */
bool rtdirs_watch(struct rtdirs *d, int dfd);

/* Whether a directory was refused because the set is full: the caller
 * drops its marks and calls rtdirs_reset() to start over. */
bool rtdirs_full(const struct rtdirs *d);

/* Starts over with no directory watched. */
void rtdirs_reset(struct rtdirs *d);

/* Reads what the watch reported. Returns true when a watched directory
 * moved (or inotify lost events): the caller drops every mark it made,
 * and the set starts empty. */
bool rtdirs_moved(struct rtdirs *d);

/* Directories watched now. */
size_t rtdirs_count(const struct rtdirs *d);

/* Frees d and its inotify descriptor (its watches go with it). */
void rtdirs_free(struct rtdirs *d);

#endif
