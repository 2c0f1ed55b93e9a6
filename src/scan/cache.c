/* cache.c -- the persistent scan cache (see cache.h, docs/formats.md). */
#include "scan/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"

#define TABLE_MAGIC "WARDSCAN"
#define TABLE_VERSION 1u
#define TABLE_BOM 0x01020304u
#define TABLE_HEADER 64u
/* Tables of this many other signature sets survive a save. */
#define TABLES_KEPT 2

_Static_assert(sizeof(struct scache_key) == 40, "scache_key must have no padding");

struct table_header {
	char magic[8];
	uint32_t version;
	uint32_t bom;
	uint64_t count;
	uint32_t signatures;
	uint32_t record_size;
	unsigned char id[32];
};

_Static_assert(sizeof(struct table_header) == TABLE_HEADER, "header is 64 bytes");

struct scache {
	char *dir;
	char *table_path;
	unsigned char id[32];
	/* The table as opened: read-only, never modified in place. */
	void *map;
	size_t maplen;
	const struct scache_key *recs;
	size_t n;
	_Atomic unsigned char *hit;  /* per record: confirmed by this run */
	uint32_t sigs;
	bool dirty;
	pthread_mutex_t lock;  /* guards added, nadded, cap, dirty */
	struct scache_key *added;
	size_t nadded;
	size_t cap;
};

void scache_key_from_stat(struct scache_key *key, const struct stat *st)
{
	key->dev = (uint64_t)st->st_dev;
	key->ino = (uint64_t)st->st_ino;
	key->size = (uint64_t)st->st_size;
	key->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	key->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* Orders records by (device, inode): one entry per file. */
static int key_cmp(const struct scache_key *a, const struct scache_key *b)
{
	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return 0;
}

static int key_qsort_cmp(const void *a, const void *b)
{
	return key_cmp(a, b);
}

static bool key_same_version(const struct scache_key *a, const struct scache_key *b)
{
	return a->size == b->size && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

const char *scache_parse(const unsigned char *buf, size_t len, const unsigned char id[32],
			 const struct scache_key **recs, size_t *n, uint32_t *sigs)
{
	struct table_header h;
	const struct scache_key *r;
	size_t i;

	if (len < TABLE_HEADER)
		return "shorter than its header";
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, TABLE_MAGIC, 8) != 0)
		return "not a Ward scan cache table";
	if (h.bom != TABLE_BOM)
		return "written by a machine of another byte order";
	if (h.version != TABLE_VERSION)
		return "unsupported table version";
	if (h.record_size != sizeof(struct scache_key))
		return "unexpected record size";
	if (h.count > (len - TABLE_HEADER) / sizeof(struct scache_key) ||
	    len != TABLE_HEADER + h.count * sizeof(struct scache_key))
		return "size does not match its record count";
	if (memcmp(h.id, id, 32) != 0)
		return "belongs to another signature set";
	if ((uintptr_t)(buf + TABLE_HEADER) % _Alignof(struct scache_key) != 0)
		return "misaligned buffer";
	r = (const struct scache_key *)(const void *)(buf + TABLE_HEADER);
	for (i = 1; i < h.count; i++)
		if (key_cmp(&r[i - 1], &r[i]) >= 0)
			return "records out of order";
	*recs = r;
	*n = (size_t)h.count;
	*sigs = h.signatures;
	return NULL;
}

enum scan_err scache_serialise(const struct scache_key *recs, size_t n,
			       const unsigned char id[32], uint32_t sigs,
			       unsigned char **out, size_t *outlen)
{
	struct table_header h;
	size_t len = TABLE_HEADER + n * sizeof(*recs);
	unsigned char *buf = malloc(len);

	if (!buf)
		return SCAN_ENOMEM;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, TABLE_MAGIC, 8);
	h.version = TABLE_VERSION;
	h.bom = TABLE_BOM;
	h.count = n;
	h.signatures = sigs;
	h.record_size = sizeof(*recs);
	memcpy(h.id, id, 32);
	memcpy(buf, &h, sizeof(h));
	if (n)
		memcpy(buf + TABLE_HEADER, recs, n * sizeof(*recs));
	*out = buf;
	*outlen = len;
	return SCAN_OK;
}

/* Maps the table at path and validates it. On success *map and *maplen hold
 * the mapping (NULL/0 when the file is absent or empty). A defect is
 * described in warning and leaves nothing mapped. */
static enum scan_err map_table(const char *path, const unsigned char id[32], void **map,
			       size_t *maplen, const struct scache_key **recs, size_t *n,
			       uint32_t *sigs, char *warning, size_t warnlen)
{
	struct stat st;
	const char *defect;
	void *m;
	int fd;

	*map = NULL;
	*maplen = 0;
	*n = 0;
	*sigs = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			snprintf(warning, warnlen, "%s: %s; scanning without it", path,
				 strerror(errno));
		return SCAN_OK;
	}
	if (fstat(fd, &st) != 0 || st.st_size == 0) {
		close(fd);
		return SCAN_OK;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(warning, warnlen, "%s: %s; scanning without it", path, strerror(errno));
		return SCAN_OK;
	}
	defect = scache_parse(m, (size_t)st.st_size, id, recs, n, sigs);
	if (defect) {
		snprintf(warning, warnlen, "%s: %s; starting a new one", path, defect);
		munmap(m, (size_t)st.st_size);
		*n = 0;
		*sigs = 0;
		return SCAN_OK;
	}
	*map = m;
	*maplen = (size_t)st.st_size;
	return SCAN_OK;
}

enum scan_err scache_open(const char *dir, const unsigned char id[32],
			  struct scache **out, char *warning, size_t warnlen,
			  char *errbuf, size_t errlen)
{
	struct scache *c;
	char name[64];
	size_t i;

	warning[0] = '\0';
	if (util_mkdir_p(dir, 0700) != 0) {
		snprintf(errbuf, errlen, "cache directory %s: %s", dir, strerror(errno));
		return SCAN_EIO;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	pthread_mutex_init(&c->lock, NULL);
	memcpy(c->id, id, 32);
	strcpy(name, "clean-");
	for (i = 0; i < 16; i++)
		snprintf(name + 6 + 2 * i, 3, "%02x", id[i]);
	strcat(name, ".wsc");
	c->dir = strdup(dir);
	c->table_path = util_path_join(dir, name);
	if (!c->dir || !c->table_path)
		goto nomem;
	map_table(c->table_path, id, &c->map, &c->maplen, &c->recs, &c->n, &c->sigs,
		  warning, warnlen);
	if (c->n) {
		c->hit = calloc(c->n, 1);
		if (!c->hit)
			goto nomem;
	}
	*out = c;
	return SCAN_OK;
nomem:
	scache_close(c);
	snprintf(errbuf, errlen, "out of memory opening the scan cache");
	return SCAN_ENOMEM;
}

bool scache_lookup(struct scache *c, const struct scache_key *key)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = key_cmp(&c->recs[mid], key);

		if (d == 0) {
			if (!key_same_version(&c->recs[mid], key))
				return false;
			atomic_store_explicit(&c->hit[mid], 1, memory_order_relaxed);
			return true;
		}
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

enum scan_err scache_add(struct scache *c, const struct scache_key *key)
{
	enum scan_err rc = SCAN_OK;

	pthread_mutex_lock(&c->lock);
	if (c->nadded == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		struct scache_key *p = realloc(c->added, cap * sizeof(*p));

		if (!p) {
			rc = SCAN_ENOMEM;
			goto out;
		}
		c->added = p;
		c->cap = cap;
	}
	c->added[c->nadded++] = *key;
	c->dirty = true;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

uint32_t scache_signatures(const struct scache *c)
{
	return c->sigs;
}

void scache_set_signatures(struct scache *c, uint32_t sigs)
{
	pthread_mutex_lock(&c->lock);
	if (c->sigs != sigs) {
		c->sigs = sigs;
		c->dirty = true;
	}
	pthread_mutex_unlock(&c->lock);
}

/* Merges two sorted, unique runs into out (room for na + nb); on equal
 * (device, inode) the entry of b wins. Returns the merged count. */
static size_t merge(const struct scache_key *a, size_t na, const struct scache_key *b,
		    size_t nb, struct scache_key *out)
{
	size_t i = 0, j = 0, k = 0;

	while (i < na || j < nb) {
		int d = i == na ? 1 : j == nb ? -1 : key_cmp(&a[i], &b[j]);

		if (d < 0) {
			out[k++] = a[i++];
		} else {
			out[k++] = b[j++];
			if (d == 0)
				i++;
		}
	}
	return k;
}

/* Sorts keys and drops duplicates (same device and inode: the last added
 * wins, though within one run they can only be hard links, i.e. equal). */
static size_t sort_unique(struct scache_key *keys, size_t n)
{
	size_t i, k = 0;

	qsort(keys, n, sizeof(*keys), key_qsort_cmp);
	for (i = 0; i < n; i++) {
		if (k > 0 && key_cmp(&keys[k - 1], &keys[i]) == 0)
			keys[k - 1] = keys[i];
		else
			keys[k++] = keys[i];
	}
	return k;
}

/* Removes the tables of signature sets other than ours, keeping the
 * TABLES_KEPT most recently written. Failures only cost disk space. */
static void prune_tables(struct scache *c)
{
	struct dirent **ents = NULL;
	struct { char *path; struct timespec mtime; } old[64];
	size_t nold = 0, i, j;
	int n, k;

	n = scandir(c->dir, &ents, NULL, alphasort);
	for (k = 0; k < n; k++) {
		const char *nm = ents[k]->d_name;
		size_t l = strlen(nm);
		struct stat st;
		char *p;

		if (strncmp(nm, "clean-", 6) == 0 && l > 4 && strcmp(nm + l - 4, ".wsc") == 0 &&
		    nold < sizeof(old) / sizeof(old[0]) && (p = util_path_join(c->dir, nm))) {
			if (strcmp(p, c->table_path) != 0 && stat(p, &st) == 0) {
				old[nold].path = p;
				old[nold++].mtime = st.st_mtim;
			} else {
				free(p);
			}
		}
		free(ents[k]);
	}
	free(ents);
	/* Newest first: a few items, so a selection pass is enough. */
	for (i = 0; i < nold; i++) {
		for (j = i + 1; j < nold; j++) {
			if (old[j].mtime.tv_sec > old[i].mtime.tv_sec ||
			    (old[j].mtime.tv_sec == old[i].mtime.tv_sec &&
			     old[j].mtime.tv_nsec > old[i].mtime.tv_nsec)) {
				__typeof__(old[0]) t = old[i];

				old[i] = old[j];
				old[j] = t;
			}
		}
		if (i >= TABLES_KEPT)
			unlink(old[i].path);
		free(old[i].path);
	}
}

/* Keeps only the records this run confirmed, for when a table is full. */
static size_t keep_confirmed(const struct scache *c, struct scache_key *out)
{
	size_t i, k = 0;

	for (i = 0; i < c->n; i++)
		if (atomic_load_explicit(&c->hit[i], memory_order_relaxed))
			out[k++] = c->recs[i];
	return k;
}

enum scan_err scache_save(struct scache *c, char *errbuf, size_t errlen)
{
	const struct scache_key *disk = NULL;
	struct scache_key *merged = NULL, *base = NULL;
	unsigned char *ser = NULL;
	size_t ndisk = 0, nmerged, serlen, nbase;
	void *map = NULL;
	size_t maplen = 0;
	uint32_t disk_sigs;
	char warning[256], *lock_path = NULL, *tmp_path = NULL;
	enum scan_err rc = SCAN_EIO;
	int lockfd = -1;

	if (!c->dirty)
		return SCAN_OK;
	lock_path = util_path_join(c->dir, ".lock");
	tmp_path = malloc(strlen(c->table_path) + 32);
	if (!lock_path || !tmp_path)
		goto nomem;
	lockfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
		snprintf(errbuf, errlen, "%s: %s", lock_path, strerror(errno));
		goto out;
	}
	/* What is on disk now, not what we opened: another run may have
	 * saved since. An unusable table is simply replaced. */
	map_table(c->table_path, c->id, &map, &maplen, &disk, &ndisk, &disk_sigs, warning,
		  sizeof(warning));
	c->nadded = sort_unique(c->added, c->nadded);
	base = malloc((ndisk + c->n + 1) * sizeof(*base));
	merged = malloc((ndisk + c->n + c->nadded + 1) * sizeof(*merged));
	if (!base || !merged)
		goto nomem;
	nbase = ndisk;
	if (ndisk)
		memcpy(base, disk, ndisk * sizeof(*base));
	if (ndisk + c->nadded > SCACHE_MAX_ENTRIES)
		nbase = keep_confirmed(c, base);
	nmerged = merge(base, nbase, c->added, c->nadded, merged);
	if (scache_serialise(merged, nmerged, c->id, c->sigs, &ser, &serlen) != SCAN_OK)
		goto nomem;
	snprintf(tmp_path, strlen(c->table_path) + 32, "%s.tmp%ld", c->table_path,
		 (long)getpid());
	if (util_write_file(tmp_path, ser, serlen, 0600) != 0 ||
	    rename(tmp_path, c->table_path) != 0) {
		snprintf(errbuf, errlen, "%s: %s", c->table_path, strerror(errno));
		unlink(tmp_path);
		goto out;
	}
	prune_tables(c);
	c->dirty = false;
	rc = SCAN_OK;
	goto out;
nomem:
	snprintf(errbuf, errlen, "out of memory saving the scan cache");
	rc = SCAN_ENOMEM;
out:
	if (map)
		munmap(map, maplen);
	if (lockfd >= 0)
		close(lockfd);
	free(ser);
	free(merged);
	free(base);
	free(tmp_path);
	free(lock_path);
	return rc;
}

void scache_close(struct scache *c)
{
	if (!c)
		return;
	if (c->map)
		munmap(c->map, c->maplen);
	pthread_mutex_destroy(&c->lock);
	free((void *)c->hit);
	free(c->added);
	free(c->table_path);
	free(c->dir);
	free(c);
}
