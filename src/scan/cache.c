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
#define TABLE_HEADER 96u
/* Tables of this many other signature sets survive a save. */
#define TABLES_KEPT 2

_Static_assert(sizeof(struct scache_key) == 40, "scache_key must have no padding");
_Static_assert(sizeof(struct scache_entry) == 48, "scache_entry must have no padding");

struct table_header {
	char magic[8];
	uint32_t version;
	uint32_t bom;
	uint64_t count;
	uint64_t names_len;
	uint32_t signatures;
	uint32_t entry_size;
	unsigned char id[32];
	unsigned char reserved[24];
};

_Static_assert(sizeof(struct table_header) == TABLE_HEADER, "header is 96 bytes");

struct scache {
	char *dir;
	char *table_path;
	unsigned char id[32];
	/* The table as opened: read-only, never modified in place. */
	void *map;
	size_t maplen;
	struct scache_table t;
	_Atomic unsigned char *hit;  /* per entry: confirmed by this run */
	pthread_mutex_t lock;        /* guards everything below */
	uint32_t sigs;
	bool dirty;
	struct scache_entry *added;  /* names_off into added_names */
	size_t nadded;
	size_t cap;
	struct util_buf added_names;
};

void scache_key_from_stat(struct scache_key *key, const struct stat *st)
{
	key->dev = (uint64_t)st->st_dev;
	key->ino = (uint64_t)st->st_ino;
	key->size = (uint64_t)st->st_size;
	key->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	key->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* Orders entries by (device, inode): one entry per file. */
static int key_cmp(const struct scache_key *a, const struct scache_key *b)
{
	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return 0;
}

static int entry_qsort_cmp(const void *a, const void *b)
{
	return key_cmp(&((const struct scache_entry *)a)->key,
		       &((const struct scache_entry *)b)->key);
}

static bool key_same_version(const struct scache_key *a, const struct scache_key *b)
{
	return a->size == b->size && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

const char *scache_parse(const unsigned char *buf, size_t len, const unsigned char id[32],
			 struct scache_table *t)
{
	struct table_header h;
	const struct scache_entry *e;
	const char *names;
	size_t i, room;

	if (len < TABLE_HEADER)
		return "shorter than its header";
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, TABLE_MAGIC, 8) != 0)
		return "not a Ward scan cache table";
	if (h.bom != TABLE_BOM)
		return "written by a machine of another byte order";
	if (h.version != TABLE_VERSION)
		return "unsupported table version";
	if (h.entry_size != sizeof(struct scache_entry))
		return "unexpected entry size";
	room = len - TABLE_HEADER;
	if (h.count > room / sizeof(*e) || h.names_len != room - h.count * sizeof(*e))
		return "size does not match its entry count";
	if (memcmp(h.id, id, 32) != 0)
		return "belongs to another signature set";
	if ((uintptr_t)(buf + TABLE_HEADER) % _Alignof(struct scache_entry) != 0)
		return "misaligned buffer";
	e = (const struct scache_entry *)(const void *)(buf + TABLE_HEADER);
	names = (const char *)(buf + TABLE_HEADER + h.count * sizeof(*e));
	for (i = 0; i < h.count; i++) {
		if (i > 0 && key_cmp(&e[i - 1].key, &e[i].key) >= 0)
			return "entries out of order";
		if (e[i].names_len == 0)
			continue;
		if (e[i].names_off > h.names_len || e[i].names_len > h.names_len - e[i].names_off)
			return "signature names outside the names area";
		if (names[e[i].names_off] == '\0' ||
		    names[e[i].names_off + e[i].names_len - 1] != '\0')
			return "malformed signature names";
	}
	t->entries = e;
	t->n = (size_t)h.count;
	t->names = names;
	t->names_len = (size_t)h.names_len;
	t->signatures = h.signatures;
	return NULL;
}

enum scan_err scache_serialise(const struct scache_table *t, const unsigned char id[32],
			       unsigned char **out, size_t *outlen)
{
	struct table_header h;
	size_t elen = t->n * sizeof(*t->entries);
	size_t len = TABLE_HEADER + elen + t->names_len;
	unsigned char *buf = malloc(len);

	if (!buf)
		return SCAN_ENOMEM;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, TABLE_MAGIC, 8);
	h.version = TABLE_VERSION;
	h.bom = TABLE_BOM;
	h.count = t->n;
	h.names_len = t->names_len;
	h.signatures = t->signatures;
	h.entry_size = sizeof(*t->entries);
	memcpy(h.id, id, 32);
	memcpy(buf, &h, sizeof(h));
	if (elen)
		memcpy(buf + TABLE_HEADER, t->entries, elen);
	if (t->names_len)
		memcpy(buf + TABLE_HEADER + elen, t->names, t->names_len);
	*out = buf;
	*outlen = len;
	return SCAN_OK;
}

/* Maps the table at path and validates it into *t. On success *map and
 * *maplen hold the mapping (NULL and 0 when the file is absent or empty).
 * A defect is described in warning and leaves nothing mapped. */
static void map_table(const char *path, const unsigned char id[32], void **map, size_t *maplen,
		      struct scache_table *t, char *warning, size_t warnlen)
{
	struct stat st;
	const char *defect;
	void *m;
	int fd;

	*map = NULL;
	*maplen = 0;
	memset(t, 0, sizeof(*t));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			snprintf(warning, warnlen, "%s: %s; scanning without it", path,
				 strerror(errno));
		return;
	}
	if (fstat(fd, &st) != 0 || st.st_size == 0) {
		close(fd);
		return;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(warning, warnlen, "%s: %s; scanning without it", path, strerror(errno));
		return;
	}
	defect = scache_parse(m, (size_t)st.st_size, id, t);
	if (defect) {
		snprintf(warning, warnlen, "%s: %s; starting a new one", path, defect);
		munmap(m, (size_t)st.st_size);
		memset(t, 0, sizeof(*t));
		return;
	}
	*map = m;
	*maplen = (size_t)st.st_size;
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
	memcpy(name, "sigset-", 7);
	for (i = 0; i < 16; i++)
		snprintf(name + 7 + 2 * i, 3, "%02x", id[i]);
	snprintf(name + 7 + 32, sizeof(name) - 7 - 32, ".wsc");
	c->dir = strdup(dir);
	c->table_path = util_path_join(dir, name);
	if (!c->dir || !c->table_path)
		goto nomem;
	map_table(c->table_path, id, &c->map, &c->maplen, &c->t, warning, warnlen);
	c->sigs = c->t.signatures;
	if (c->t.n) {
		c->hit = calloc(c->t.n, 1);
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

bool scache_lookup(struct scache *c, const struct scache_key *key, const char **names,
		   size_t *len)
{
	size_t lo = 0, hi = c->t.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct scache_entry *e = &c->t.entries[mid];
		int d = key_cmp(&e->key, key);

		if (d == 0) {
			if (!key_same_version(&e->key, key))
				return false;
			atomic_store_explicit(&c->hit[mid], 1, memory_order_relaxed);
			*names = e->names_len ? c->t.names + e->names_off : NULL;
			*len = e->names_len;
			return true;
		}
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

enum scan_err scache_add(struct scache *c, const struct scache_key *key, char *const *names,
			 size_t nnames)
{
	struct scache_entry *e;
	enum scan_err rc = SCAN_ENOMEM;
	size_t i, before;

	pthread_mutex_lock(&c->lock);
	before = c->added_names.len;
	if (c->nadded == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		struct scache_entry *p = realloc(c->added, cap * sizeof(*p));

		if (!p)
			goto out;
		c->added = p;
		c->cap = cap;
	}
	for (i = 0; i < nnames; i++)
		if (util_buf_append(&c->added_names, names[i], strlen(names[i]) + 1) != 0)
			goto out;
	if (c->added_names.len > UINT32_MAX)
		goto out;
	e = &c->added[c->nadded++];
	e->key = *key;
	e->names_off = (uint32_t)before;
	e->names_len = (uint32_t)(c->added_names.len - before);
	c->dirty = true;
	rc = SCAN_OK;
out:
	if (rc != SCAN_OK)
		c->added_names.len = before;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

size_t scache_entries(const struct scache *c)
{
	return c->t.n;
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

/* Sorts entries and drops duplicates (same device and inode, which within
 * one run can only be hard links, i.e. the same file). */
static size_t sort_unique(struct scache_entry *e, size_t n)
{
	size_t i, k = 0;

	qsort(e, n, sizeof(*e), entry_qsort_cmp);
	for (i = 0; i < n; i++) {
		if (k > 0 && key_cmp(&e[k - 1].key, &e[i].key) == 0)
			e[k - 1] = e[i];
		else
			e[k++] = e[i];
	}
	return k;
}

/* Appends entry e (whose names live in src) to out, copying its names into
 * the output names area. Returns 0, or -1 when out of memory. */
static int emit(struct scache_entry *out, size_t *k, struct util_buf *names,
		const struct scache_entry *e, const char *src)
{
	struct scache_entry copy = *e;

	if (e->names_len) {
		if (names->len > UINT32_MAX - e->names_len ||
		    util_buf_append(names, src + e->names_off, e->names_len) != 0)
			return -1;
		copy.names_off = (uint32_t)(names->len - e->names_len);
	}
	out[(*k)++] = copy;
	return 0;
}

/* Merges two sorted, unique runs (a with names in an, b with names in bn)
 * into out (room for na + nb) and names; on equal device and inode the
 * entry of b wins. Returns the merged count, or (size_t)-1 when out of
 * memory. */
static size_t merge(const struct scache_entry *a, size_t na, const char *an,
		    const struct scache_entry *b, size_t nb, const char *bn,
		    struct scache_entry *out, struct util_buf *names)
{
	size_t i = 0, j = 0, k = 0;

	while (i < na || j < nb) {
		int d = i == na ? 1 : j == nb ? -1 : key_cmp(&a[i].key, &b[j].key);
		int rc;

		if (d < 0) {
			rc = emit(out, &k, names, &a[i++], an);
		} else {
			rc = emit(out, &k, names, &b[j++], bn);
			if (d == 0)
				i++;
		}
		if (rc != 0)
			return (size_t)-1;
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

		if (strncmp(nm, "sigset-", 7) == 0 && l > 4 && strcmp(nm + l - 4, ".wsc") == 0 &&
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

/* Copies the entries of our opened table that this run confirmed, for when
 * a table is full; their names stay in c->t.names. */
static size_t keep_confirmed(const struct scache *c, struct scache_entry *out)
{
	size_t i, k = 0;

	for (i = 0; i < c->t.n; i++)
		if (atomic_load_explicit(&c->hit[i], memory_order_relaxed))
			out[k++] = c->t.entries[i];
	return k;
}

enum scan_err scache_save(struct scache *c, char *errbuf, size_t errlen)
{
	struct scache_table disk, result;
	struct scache_entry *merged = NULL, *base = NULL;
	struct util_buf names = { 0 };
	const char *base_names;
	unsigned char *ser = NULL;
	size_t nmerged, serlen, nbase, tmplen;
	void *map = NULL;
	size_t maplen = 0;
	char warning[256], *lock_path = NULL, *tmp_path = NULL;
	enum scan_err rc = SCAN_EIO;
	int lockfd = -1;

	if (!c->dirty)
		return SCAN_OK;
	tmplen = strlen(c->table_path) + 32;
	lock_path = util_path_join(c->dir, ".lock");
	tmp_path = malloc(tmplen);
	if (!lock_path || !tmp_path)
		goto nomem;
	lockfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
		snprintf(errbuf, errlen, "%s: %s", lock_path, strerror(errno));
		goto out;
	}
	/* What is on disk now, not what we opened: another run may have
	 * saved since. An unusable table is simply replaced. */
	map_table(c->table_path, c->id, &map, &maplen, &disk, warning, sizeof(warning));
	c->nadded = sort_unique(c->added, c->nadded);
	base = malloc((disk.n + c->t.n + 1) * sizeof(*base));
	merged = malloc((disk.n + c->t.n + c->nadded + 1) * sizeof(*merged));
	if (!base || !merged)
		goto nomem;
	if (disk.n + c->nadded > SCACHE_MAX_ENTRIES) {
		nbase = keep_confirmed(c, base);
		base_names = c->t.names;
	} else {
		nbase = disk.n;
		if (nbase)
			memcpy(base, disk.entries, nbase * sizeof(*base));
		base_names = disk.names;
	}
	nmerged = merge(base, nbase, base_names, c->added, c->nadded, c->added_names.data,
			merged, &names);
	if (nmerged == (size_t)-1)
		goto nomem;
	/* merged was sized for both inputs; more would have overrun it. */
	util_assert(nmerged <= nbase + c->nadded);
	result.entries = merged;
	result.n = nmerged;
	result.names = names.data;
	result.names_len = names.len;
	result.signatures = c->sigs;
	if (scache_serialise(&result, c->id, &ser, &serlen) != SCAN_OK)
		goto nomem;
	snprintf(tmp_path, tmplen, "%s.tmp%ld", c->table_path, (long)getpid());
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
	util_buf_free(&names);
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
	util_buf_free(&c->added_names);
	free(c->table_path);
	free(c->dir);
	free(c);
}
