/* rtdirs.c -- directories watched for moves (see rtdirs.h). */
#include "agent/rtdirs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Directories watched in one call at most: a directory deeper below the
 * last one watched is not marked. */
#define MAX_CHAIN 64

/* A directory watched, by identity, with its watch's descriptor. */
struct slot {
	uint64_t dev, ino;
	int wd;
	bool used;
};

struct rtdirs {
	int fd;                  /* inotify */
	size_t max, count, cap;  /* cap: a power of two, at least 2 * max */
	bool full;               /* a directory was refused for want of room */
	struct slot *slots;
};

static size_t hash(uint64_t dev, uint64_t ino)
{
	uint64_t h = (dev * 0x9e3779b97f4a7c15ull) ^ (ino * 0xc2b2ae3d27d4eb4full);

	return (size_t)(h ^ (h >> 29));
}

static struct slot *find(struct rtdirs *d, uint64_t dev, uint64_t ino)
{
	size_t i = hash(dev, ino) & (d->cap - 1);

	while (d->slots[i].used && (d->slots[i].dev != dev || d->slots[i].ino != ino))
		i = (i + 1) & (d->cap - 1);
	return &d->slots[i];
}

/* Ownership: the caller owns the set (and its inotify descriptor). */
struct rtdirs *rtdirs_new(size_t max_dirs)
{
	struct rtdirs *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->max = max_dirs ? max_dirs : 1;
	for (d->cap = 16; d->cap < 2 * d->max; d->cap *= 2)
		;
	d->slots = calloc(d->cap, sizeof(*d->slots));
	d->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (!d->slots || d->fd < 0) {
		rtdirs_free(d);
		return NULL;
	}
	return d;
}

int rtdirs_fd(const struct rtdirs *d)
{
	return d->fd;
}

size_t rtdirs_count(const struct rtdirs *d)
{
	return d->count;
}

bool rtdirs_full(const struct rtdirs *d)
{
	return d->full;
}

/* Starts over: no directory watched, a new inotify instance (which drops
 * the old one's watches with it). */
static void reset(struct rtdirs *d)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	memset(d->slots, 0, d->cap * sizeof(*d->slots));
	d->count = 0;
	d->full = false;
	if (fd < 0)
		return;  /* the old instance serves on, its watches kept */
	close(d->fd);
	d->fd = fd;
}

bool rtdirs_watch(struct rtdirs *d, int dfd)
{
	struct { uint64_t dev, ino; int wd; bool fresh; } chain[MAX_CHAIN];
	char link[40];
	struct stat st, up;
	struct slot *s;
	size_t n = 0, i;
	bool ok = false;
	int cur, parent, wd;

	cur = openat(dfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	while (cur >= 0 && n < MAX_CHAIN) {
		if (fstat(cur, &st) != 0)
			break;
		s = find(d, st.st_dev, st.st_ino);
		if (!s->used && d->count + n >= d->max) {
			d->full = true;
			break;
		}
		/* Watching a watched inode again gives its descriptor back: a
		 * folder deleted, its number given to a new one, is watched anew
		 * (and so are those above the new one). */
		snprintf(link, sizeof(link), "/proc/self/fd/%d", cur);
		wd = inotify_add_watch(d->fd, link, IN_MOVE_SELF | IN_ONLYDIR);
		if (wd < 0)
			break;  /* ENOSPC: the user's inotify watches are used up */
		if (s->used && s->wd == wd) {
			ok = true;  /* it and those above it are watched */
			break;
		}
		chain[n].dev = st.st_dev;
		chain[n].ino = st.st_ino;
		chain[n].wd = wd;
		chain[n].fresh = !s->used;
		n++;
		parent = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(cur);
		cur = parent;
		if (cur < 0 || fstat(cur, &up) != 0)
			break;
		/* The root of the mount: ".." stays, or leaves the filesystem. */
		if (up.st_dev != st.st_dev || up.st_ino == st.st_ino) {
			ok = true;
			break;
		}
	}
	if (cur >= 0)
		close(cur);
	for (i = 0; i < n; i++) {
		if (!ok) {
			/* Not kept: a watch nobody counts would only flush for
			 * nothing when its folder moves. */
			if (chain[i].fresh)
				inotify_rm_watch(d->fd, chain[i].wd);
			continue;
		}
		s = find(d, chain[i].dev, chain[i].ino);
		if (!s->used)
			d->count++;
		*s = (struct slot){ .dev = chain[i].dev, .ino = chain[i].ino, .wd = chain[i].wd,
				    .used = true };
	}
	return ok;
}

bool rtdirs_moved(struct rtdirs *d)
{
	union {
		struct inotify_event ev;
		char bytes[4096];
	} buf;
	const struct inotify_event *e;
	bool moved = false;
	ssize_t n, off;

	/* IN_IGNORED (a folder deleted) needs nothing: its slot is found
	 * stale by rtdirs_watch() if its number comes back. */
	while ((n = read(d->fd, buf.bytes, sizeof(buf.bytes))) > 0) {
		for (off = 0; off + (ssize_t)sizeof(*e) <= n; off += sizeof(*e) + e->len) {
			e = (const struct inotify_event *)(buf.bytes + off);
			if (e->mask & (IN_MOVE_SELF | IN_Q_OVERFLOW))
				moved = true;
		}
	}
	if (moved)
		reset(d);
	return moved;
}

void rtdirs_reset(struct rtdirs *d)
{
	reset(d);
}

void rtdirs_free(struct rtdirs *d)
{
	if (!d)
		return;
	if (d->fd >= 0)
		close(d->fd);
	free(d->slots);
	free(d);
}
