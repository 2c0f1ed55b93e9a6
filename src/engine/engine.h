/* engine.h -- Ward's scan engine: libclamav behind a small interface.
 *
 * An engine is created, loaded with one or more signature sets (a ClamAV
 * database directory or single file), compiled, and then shared read-only
 * by any number of scanning threads. Every layer of a scanned file (the file
 * itself and each member extracted from archives, packers and documents) can
 * be reported to a hook with its bytes.
 */
#ifndef WARD_ENGINE_H
#define WARD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors of the engine layer. */
enum engine_err {
	ENGINE_OK = 0,
	ENGINE_ENOMEM,  /* out of memory */
	ENGINE_EINIT,   /* libclamav could not be initialised */
	ENGINE_EDB,     /* a database is missing, unreadable or malformed */
	ENGINE_ESTATE,  /* call out of order (load after compile, scan before) */
	ENGINE_ESCAN,   /* the file could not be scanned */
};

/* Size of the error text buffers the engine functions fill. */
#define ENGINE_ERRLEN 512

/* Resource limits applied to every scan. Defaults are libclamav's (and so
 * clamscan's), which bound what an archive bomb can make the engine read,
 * extract or write. A member beyond a limit is skipped, not reported. */
struct engine_limits {
	uint64_t max_filesize;   /* bytes: larger files/members are not scanned */
	uint64_t max_scansize;   /* bytes scanned per file, all layers together */
	uint32_t max_files;      /* members scanned per container */
	uint32_t max_recursion;  /* nesting depth of containers */
	uint32_t max_scantime;   /* milliseconds per file; 0 = no limit */
};

struct engine_config {
	struct engine_limits limits;
	bool allmatch;    /* report every matching signature, not the first */
	bool layer_hook;  /* enable the per-layer hook of engine_scan_fd(); this
			   * turns libclamav's clean cache off, since a hook's
			   * decisions may change from one scan to the next */
	bool official;    /* the databases are Ward's signed components: names
			   * stay as signed (libclamav marks the names of
			   * loose database files ".UNOFFICIAL") */
	unsigned ac_depth; /* 0: libclamav's content matcher as it comes (trie
			    * depth 2 to 3); else that fixed depth: 2 holds
			    * the matcher in a fraction of the memory, at
			    * some scan speed (docs/benchmarks.md, smart scan) */
};

/* Layer attributes (mirroring libclamav's). */
#define ENGINE_LAYER_NORMALIZED 0x1  /* bytes were normalised (e.g. HTML) */
#define ENGINE_LAYER_DECRYPTED  0x2  /* an earlier layer had to be decrypted */

/* One layer of a scanned file, valid only during the hook call. */
struct engine_layer {
	uint32_t depth;            /* 0 for the scanned file itself */
	const char *type;          /* libclamav file type, e.g. "CL_TYPE_ZIP" */
	const char *name;          /* member name, or NULL when unknown */
	const unsigned char *data; /* the layer's bytes (NULL when size is 0) */
	size_t size;
	uint32_t attributes;       /* ENGINE_LAYER_* */
	void *scan;                /* the scan's state, for engine_layer_detect() */
};

/* What a layer hook decides for its layer. */
enum engine_layer_action {
	ENGINE_LAYER_SCAN = 0,  /* scan it as usual */
	ENGINE_LAYER_SKIP,      /* allow-listed: neither it nor anything in it
				 * is scanned or reported, as libclamav treats
				 * a layer whose hash is on a .fp/.sfp list */
};

/* Called once per layer, in scan order, on the scanning thread, before
 * libclamav looks at the layer. */
typedef enum engine_layer_action (*engine_layer_fn)(const struct engine_layer *layer,
						    void *arg);

/* The outcome of one scan. Owned by the caller; release with
 * engine_result_clear(). */
struct engine_result {
	bool infected;
	char **names;          /* matching signature names, in match order */
	size_t nnames;
	uint64_t bytes_scanned;  /* in whole 4 KiB blocks, as libclamav counts */
};

struct engine;

/* Fills *limits with the defaults. */
void engine_limits_default(struct engine_limits *limits);

/* Sets the process's malloc parameters for scanning with libclamav.
 * Process-wide: call it once, before any thread starts. */
void engine_tune_allocator(void);

/* Returns the libclamav version string (static storage). */
const char *engine_version(void);

/* Creates an empty engine with the given configuration. Initialises
 * libclamav on first use (thread-safe). Returns NULL and sets *err (and a
 * message in errbuf) on failure. The caller owns the engine. */
struct engine *engine_new(const struct engine_config *cfg, enum engine_err *err,
			  char *errbuf, size_t errlen);

/* Loads the databases at path: a directory of ClamAV database files or one
 * file (.cvd/.cld/.cud, .hdb, .hsb, .mdb, .msb, .ndb, .ldb, .fp, .sfp, .ign2,
 * .ftm, ...). On failure errbuf names the path and the reason, and the engine
 * must not be compiled. Not thread-safe with other calls on the engine. */
enum engine_err engine_load(struct engine *e, const char *path, char *errbuf,
			    size_t errlen);

/* Returns whether the directory dir holds at least one file libclamav
 * would load (by its extension). A component may hold none: an agent
 * pattern of a database made of hash signatures only is just prefixes. */
bool engine_has_databases(const char *dir);

/* Loads Ward's built-in test signature, which detects the EICAR test file
 * as "Eicar-Test-Signature". Same contract as engine_load(). */
enum engine_err engine_load_builtin(struct engine *e, char *errbuf, size_t errlen);

/* Prepares the loaded signatures for scanning. After it the engine is
 * read-only and engine_scan_fd() may be called from any number of threads. */
enum engine_err engine_compile(struct engine *e, char *errbuf, size_t errlen);

/* Returns how many signatures have been loaded. */
unsigned engine_signatures(const struct engine *e);

/* engine_scan_fd() flags. */
#define ENGINE_SCAN_ALLMATCH 0x1  /* this scan reports every match (as the
				   * engine's allmatch does for all) */

/* Scans the open file fd (its name is used in messages only) as flags
 * say (0: none). When the
 * engine was configured with layer_hook, hook (if non-NULL) sees each layer.
 * Thread-safe. On ENGINE_ESCAN errbuf says why; *res is filled on ENGINE_OK
 * and must be cleared by the caller in every case. */
enum engine_err engine_scan_fd(const struct engine *e, int fd, const char *name,
			       unsigned flags, engine_layer_fn hook, void *hook_arg,
			       struct engine_result *res, char *errbuf, size_t errlen);

/* Called by a layer hook: reports the layer as matching signature name
 * (copied), as a hash signature of the layer would. The name is reported
 * when libclamav has finished the layer (so the layer's own content and
 * members are scanned first): with allmatch always, otherwise only when
 * nothing else was reported yet. Returns 0, or -1 when out of memory (the
 * scan then fails with ENGINE_ENOMEM). */
int engine_layer_detect(const struct engine_layer *layer, const char *name);

/* Computes the digest of n bytes at data with algorithm alg ("md5",
 * "sha1" or "sha256") into out (16, 20 or 32 bytes). Returns false for
 * an unknown algorithm. Thread-safe. */
bool engine_hash(const char *alg, const void *data, size_t n, unsigned char *out);

/* Frees the names held by res and zeroes it. */
void engine_result_clear(struct engine_result *res);

/* Frees the engine. Must not race with scans. */
void engine_free(struct engine *e);

/* Computes the identity of a signature set: a SHA-256 over the libclamav
 * version, the engine configuration, the built-in flag and, for every
 * database path (for a directory: each entry in it), its name, device,
 * inode, size, mtime and ctime. Any change to a database file changes its
 * ctime and so the identity; no file is read. Returns ENGINE_EDB with
 * errbuf naming the path when one cannot be examined. */
enum engine_err engine_sigset_id(const char *const *paths, size_t npaths, bool builtin,
				 const struct engine_config *cfg, unsigned char id[32],
				 char *errbuf, size_t errlen);

#endif
