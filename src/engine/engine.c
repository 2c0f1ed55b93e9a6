/* engine.c -- libclamav behind Ward's engine interface (see engine.h). */
#include "engine/engine.h"

#include <clamav.h>
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

struct engine {
	struct cl_engine *cl;
	struct engine_config cfg;
	unsigned sigs;
	bool compiled;
};

/* The names a layer hook reported for one layer still being scanned. */
struct frame {
	char **names;
	size_t n;
};

/* Per-scan state handed to libclamav's callbacks as their context. The
 * frames follow libclamav's recursion: the inspection callback opens one
 * for each layer and the post-scan callback, which ends every inspected
 * layer (the clean cache, whose hits skip it, is off with a hook), closes
 * it. */
struct scan_ctx {
	const struct engine *e;
	struct engine_result *res;
	engine_layer_fn hook;
	void *hook_arg;
	struct frame *frames;
	size_t depth, cap;
	size_t lost;          /* layers opened without a frame (out of memory) */
	struct frame *emit;   /* the names "Detected.By.Callback" stands for */
	bool allmatch;        /* every match is reported */
	bool nomem;
};

/* The name libclamav reports when the post-scan callback detects. */
#define CALLBACK_NAME "Detected.By.Callback"

/* libclamav reports errors through a process-wide message callback, not
 * through return values. While a thread runs a load, compile or scan it
 * points this at a buffer, so the error texts land in that thread's own
 * message instead of on stderr. capture_subject is the path being loaded:
 * libclamav's closing "Can't load SUBJECT" line only repeats it. */
static _Thread_local char *capture_buf;
static _Thread_local size_t capture_len;
static _Thread_local const char *capture_subject;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static cl_error_t init_status = CL_SUCCESS;

/* Strips libclamav's "function_name: " prefix, which names its internals
 * rather than anything the user can act on. */
static const char *strip_func_prefix(const char *msg)
{
	const char *p = msg;

	while ((*p >= 'a' && *p <= 'z') || *p == '_' || (*p >= '0' && *p <= '9'))
		p++;
	if (p > msg && p[0] == '(' && p[1] == ')')
		p += 2;
	if (p > msg && p[0] == ':' && p[1] == ' ' && memchr(msg, '_', (size_t)(p - msg)))
		return p + 2;
	return msg;
}

/* Appends one error text to the capture buffer, "; "-separated. */
static void capture(const char *msg)
{
	size_t n = strlen(capture_buf), len = strlen(msg);

	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '.'))
		len--;
	if (capture_subject && strncmp(msg, "Can't load ", 11) == 0 &&
	    strncmp(msg + 11, capture_subject, strlen(capture_subject)) == 0 &&
	    msg[11 + strlen(capture_subject)] == ':')
		return;
	if (n + 2 < capture_len)
		snprintf(capture_buf + n, capture_len - n, "%s%.*s", n ? "; " : "", (int)len, msg);
}

static void on_message(enum cl_msg severity, const char *fullmsg, const char *msg,
		       void *context)
{
	(void)context;
	if (severity == CL_MSG_ERROR && capture_buf) {
		capture(strip_func_prefix(msg));
		return;
	}
	if (severity == CL_MSG_ERROR || severity == CL_MSG_WARN)
		fputs(fullmsg, stderr);
}

static void init_libclamav(void)
{
	cl_set_clcb_msg(on_message);
	init_status = cl_init(CL_INIT_DEFAULT);
}

/* Formats "prefix: reason[ (detail)]" into errbuf, where detail is the
 * libclamav message captured during the failed call, if any. */
__attribute__((format(printf, 4, 5)))
static void set_error(char *errbuf, size_t errlen, const char *detail, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (!errbuf || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	n = strlen(errbuf);
	if (detail && detail[0] && n < errlen)
		snprintf(errbuf + n, errlen - n, " (%s)", detail);
}

void engine_limits_default(struct engine_limits *limits)
{
	/* libclamav 1.x defaults, which clamscan and clamd also use. */
	limits->max_filesize = 100ull << 20;
	limits->max_scansize = 400ull << 20;
	limits->max_files = 10000;
	limits->max_recursion = 17;
	limits->max_scantime = 120000;
}

/* libclamav allocates and frees buffers of a few hundred KiB to a few MiB
 * for every file it scans. Left to glibc's defaults these come from fresh
 * mmaps, or from arena memory that was just trimmed back to the kernel, so
 * each file faults its pages in again, and in a threaded process every
 * unmapping flushes the TLB of all CPUs by IPI. Fixed thresholds keep
 * that memory in the arenas: on a 257 MiB directory of the benchmark
 * corpus, page faults fell from 0.6-2.1 million (varying with allocation
 * history) to 0.63 million, every run. The cost is up to the trim
 * threshold of free memory kept per arena. */
void engine_tune_allocator(void)
{
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

const char *engine_version(void)
{
	return cl_retver();
}

static void frame_clear(struct frame *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->names[i]);
	free(f->names);
	f->names = NULL;
	f->n = 0;
}

/* Moves the names of the frame being emitted into the result: all of them
 * with allmatch, else the first, as libclamav reports one match. */
static void emit_frame(struct scan_ctx *ctx)
{
	struct engine_result *res = ctx->res;
	struct frame *f = ctx->emit;
	size_t n = ctx->allmatch ? f->n : 1, i;
	char **names = realloc(res->names, (res->nnames + n) * sizeof(*names));

	ctx->emit = NULL;
	if (!names) {
		ctx->nomem = true;
		frame_clear(f);
		return;
	}
	res->names = names;
	for (i = 0; i < n; i++) {
		res->names[res->nnames++] = f->names[i];
		f->names[i] = NULL;
	}
	frame_clear(f);
}

static void on_virus_found(int fd, const char *virname, void *context)
{
	struct scan_ctx *ctx = context;
	struct engine_result *res = ctx->res;
	char **names;
	char *name;

	(void)fd;
	if (ctx->emit && strcmp(virname, CALLBACK_NAME) == 0) {
		emit_frame(ctx);
		return;
	}
	names = realloc(res->names, (res->nnames + 1) * sizeof(*names));
	name = strdup(virname);
	if (!names || !name) {
		free(name);
		if (names)
			res->names = names;
		ctx->nomem = true;
		return;
	}
	res->names = names;
	res->names[res->nnames++] = name;
}

static cl_error_t on_file_inspection(int fd, const char *type, const char **ancestors,
				     size_t parent_file_size, const char *file_name,
				     size_t file_size, const char *file_buffer,
				     uint32_t recursion_level, uint32_t layer_attributes,
				     void *context)
{
	struct scan_ctx *ctx = context;
	struct engine_layer layer;
	struct frame *frames;

	(void)fd;
	(void)ancestors;
	(void)parent_file_size;
	if (!ctx)
		return CL_CLEAN;
	if (ctx->depth == ctx->cap) {
		frames = realloc(ctx->frames, (ctx->cap + 8) * sizeof(*frames));
		if (!frames) {
			ctx->nomem = true;
			ctx->lost++;
			return CL_CLEAN;
		}
		memset(frames + ctx->cap, 0, 8 * sizeof(*frames));
		ctx->frames = frames;
		ctx->cap += 8;
	}
	frame_clear(&ctx->frames[ctx->depth++]);
	if (!ctx->hook)
		return CL_CLEAN;
	layer.scan = ctx;
	layer.depth = recursion_level;
	layer.type = type;
	layer.name = file_name;
	layer.data = (const unsigned char *)file_buffer;
	layer.size = file_buffer ? file_size : 0;
	layer.attributes = 0;
	if (layer_attributes & LAYER_ATTRIBUTES_NORMALIZED)
		layer.attributes |= ENGINE_LAYER_NORMALIZED;
	if (layer_attributes & LAYER_ATTRIBUTES_DECRYPTED)
		layer.attributes |= ENGINE_LAYER_DECRYPTED;
	return ctx->hook(&layer, ctx->hook_arg) == ENGINE_LAYER_SKIP ? CL_BREAK : CL_CLEAN;
}

/* Ends a layer: the names its hook reported are detected now (libclamav
 * appends "Detected.By.Callback", which on_virus_found() replaces). */
static cl_error_t on_post_scan(int fd, int result, const char *virname, void *context)
{
	struct scan_ctx *ctx = context;
	struct frame *f;

	(void)fd;
	(void)result;
	(void)virname;
	if (!ctx)
		return CL_CLEAN;
	if (ctx->lost) {
		ctx->lost--;
		return CL_CLEAN;
	}
	if (ctx->depth == 0)
		return CL_CLEAN;
	f = &ctx->frames[--ctx->depth];
	if (f->n && (ctx->allmatch || ctx->res->nnames == 0)) {
		ctx->emit = f;
		return CL_VIRUS;
	}
	frame_clear(f);
	return CL_CLEAN;
}

int engine_layer_detect(const struct engine_layer *layer, const char *name)
{
	struct scan_ctx *ctx = layer->scan;
	struct frame *f = &ctx->frames[ctx->depth - 1];
	char **names = realloc(f->names, (f->n + 1) * sizeof(*names));

	if (names)
		f->names = names;
	if (!names || !(f->names[f->n] = strdup(name))) {
		ctx->nomem = true;
		return -1;
	}
	f->n++;
	return 0;
}

bool engine_hash(const char *alg, const void *data, size_t n, unsigned char *out)
{
	unsigned int len = 0;

	pthread_once(&init_once, init_libclamav);
	return cl_hash_data(alg, data, n, out, &len) != NULL && len > 0;
}

static bool set_num(struct cl_engine *cl, enum cl_engine_field f, long long v)
{
	return cl_engine_set_num(cl, f, v) == CL_SUCCESS;
}

struct engine *engine_new(const struct engine_config *cfg, enum engine_err *err,
			  char *errbuf, size_t errlen)
{
	struct engine *e = NULL;
	const struct engine_limits *l = &cfg->limits;

	pthread_once(&init_once, init_libclamav);
	if (init_status != CL_SUCCESS) {
		*err = ENGINE_EINIT;
		set_error(errbuf, errlen, NULL, "libclamav: %s", cl_strerror(init_status));
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		goto nomem;
	e->cfg = *cfg;
	e->cl = cl_engine_new();
	if (!e->cl)
		goto nomem;
	if (!set_num(e->cl, CL_ENGINE_MAX_FILESIZE, (long long)l->max_filesize) ||
	    !set_num(e->cl, CL_ENGINE_MAX_SCANSIZE, (long long)l->max_scansize) ||
	    !set_num(e->cl, CL_ENGINE_MAX_FILES, l->max_files) ||
	    !set_num(e->cl, CL_ENGINE_MAX_RECURSION, l->max_recursion) ||
	    !set_num(e->cl, CL_ENGINE_MAX_SCANTIME, l->max_scantime) ||
	    /* clamscan's settings, so verdicts match it exactly. */
	    !set_num(e->cl, CL_ENGINE_CACHE_SIZE, 65536) ||
	    !set_num(e->cl, CL_ENGINE_BYTECODE_TIMEOUT, 10000) ||
	    !set_num(e->cl, CL_ENGINE_BYTECODE_MODE, CL_BYTECODE_MODE_AUTO) ||
	    (cfg->ac_depth && (!set_num(e->cl, CL_ENGINE_AC_MINDEPTH, cfg->ac_depth) ||
			       !set_num(e->cl, CL_ENGINE_AC_MAXDEPTH, cfg->ac_depth)))) {
		*err = ENGINE_EINIT;
		set_error(errbuf, errlen, NULL, "libclamav refused a scan limit");
		engine_free(e);
		return NULL;
	}
	cl_engine_set_clcb_virus_found(e->cl, on_virus_found);
	if (cfg->layer_hook) {
		cl_engine_set_clcb_file_inspection(e->cl, on_file_inspection);
		cl_engine_set_clcb_post_scan(e->cl, on_post_scan);
		if (!set_num(e->cl, CL_ENGINE_DISABLE_CACHE, 1)) {
			*err = ENGINE_EINIT;
			set_error(errbuf, errlen, NULL, "libclamav refused to turn its cache off");
			engine_free(e);
			return NULL;
		}
	}
	*err = ENGINE_OK;
	return e;
nomem:
	engine_free(e);
	*err = ENGINE_ENOMEM;
	set_error(errbuf, errlen, NULL, "out of memory creating the scan engine");
	return NULL;
}

enum engine_err engine_load(struct engine *e, const char *path, char *errbuf, size_t errlen)
{
	char detail[ENGINE_ERRLEN] = "";
	unsigned sigs = 0;
	struct stat st;
	cl_error_t rc;

	if (e->compiled) {
		set_error(errbuf, errlen, NULL, "%s: engine already compiled", path);
		return ENGINE_ESTATE;
	}
	/* libclamav's own message for a missing path is "Can't get status". */
	if (stat(path, &st) != 0) {
		set_error(errbuf, errlen, NULL, "%s: %s", path, strerror(errno));
		return ENGINE_EDB;
	}
	capture_buf = detail;
	capture_len = sizeof(detail);
	capture_subject = path;
	/* The same database options clamscan and clamd use by default. */
	rc = cl_load(path, e->cl, &sigs, CL_DB_STDOPT | (e->cfg.official ? CL_DB_OFFICIAL : 0));
	capture_buf = NULL;
	capture_subject = NULL;
	if (rc != CL_SUCCESS) {
		set_error(errbuf, errlen, detail, "%s: %s", path, cl_strerror(rc));
		return rc == CL_EMEM ? ENGINE_ENOMEM : ENGINE_EDB;
	}
	e->sigs += sigs;
	return ENGINE_OK;
}

bool engine_has_databases(const char *dir)
{
	static const char *const exts[] = {
		".cvd", ".cld", ".cud", ".hdb", ".hsb", ".mdb", ".msb", ".ndb", ".ldb",
		".cdb", ".idb", ".fp", ".sfp", ".ign2", ".ftm", ".pdb", ".wdb", ".cbc",
		".yar", ".yara", ".crb", ".cat",
	};
	struct dirent **ents = NULL;
	bool found = false;
	int i, n;
	size_t k;

	n = scandir(dir, &ents, NULL, NULL);
	for (i = 0; i < n; i++) {
		const char *dot = strrchr(ents[i]->d_name, '.');

		for (k = 0; dot && !found && k < sizeof(exts) / sizeof(exts[0]); k++)
			found = strcmp(dot, exts[k]) == 0;
		free(ents[i]);
	}
	free(ents);
	return found;
}

/* The EICAR test file is 68 bytes of printable ASCII; anything may follow
 * it (commonly a newline), so the signature anchors it at offset 0. */
static const char eicar[] =
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

enum engine_err engine_load_builtin(struct engine *e, char *errbuf, size_t errlen)
{
	char dir[] = "/tmp/ward-builtin-XXXXXX";
	char path[sizeof(dir) + 32];
	char line[256];
	size_t i, n;
	enum engine_err rc = ENGINE_EDB;

	n = (size_t)snprintf(line, sizeof(line), "Eicar-Test-Signature:0:0:");
	for (i = 0; i < sizeof(eicar) - 1; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%02x", (unsigned char)eicar[i]);
	line[n++] = '\n';
	if (!mkdtemp(dir)) {
		set_error(errbuf, errlen, NULL, "built-in signature: %s: %s", dir, strerror(errno));
		return ENGINE_EDB;
	}
	snprintf(path, sizeof(path), "%s/builtin.ndb", dir);
	if (util_write_file(path, line, n, 0600) != 0)
		set_error(errbuf, errlen, NULL, "built-in signature: %s: %s", path,
			  strerror(errno));
	else
		rc = engine_load(e, path, errbuf, errlen);
	unlink(path);
	rmdir(dir);
	return rc;
}

enum engine_err engine_compile(struct engine *e, char *errbuf, size_t errlen)
{
	char detail[ENGINE_ERRLEN] = "";
	cl_error_t rc;

	if (e->compiled) {
		set_error(errbuf, errlen, NULL, "engine already compiled");
		return ENGINE_ESTATE;
	}
	capture_buf = detail;
	capture_len = sizeof(detail);
	rc = cl_engine_compile(e->cl);
	capture_buf = NULL;
	if (rc != CL_SUCCESS) {
		set_error(errbuf, errlen, detail, "compiling signatures: %s", cl_strerror(rc));
		return rc == CL_EMEM ? ENGINE_ENOMEM : ENGINE_EDB;
	}
	e->compiled = true;
	return ENGINE_OK;
}

unsigned engine_signatures(const struct engine *e)
{
	return e->sigs;
}

/* Files up to this size are scanned through a map whose buffer comes from
 * malloc (see scan_desc). Equal to the mmap threshold of
 * engine_tune_allocator(), so such buffers are recycled arena memory. */
#define HEAP_MAP_MAX ((off_t)32 << 20)

static off_t pread_fd(void *handle, void *buf, size_t count, off_t offset)
{
	return pread((int)(intptr_t)handle, buf, count, offset);
}

/* Scans fd like cl_scandesc_callback(). libclamav's own map of a
 * descriptor reads the file into a fresh anonymous mapping, touching each
 * page before pread() fills it: the touch maps the shared zero page and the
 * fill copies it on write, which in a threaded process flushes the TLB of
 * every CPU by IPI, once per 4 KiB page. For files up to HEAP_MAP_MAX the
 * map is built here over a malloc'd buffer instead (libclamav's non-aging
 * handle map), whose pages are already writable; larger files keep
 * libclamav's aging map, which bounds their memory. Both maps name fd as
 * their handle, so parsers that need the descriptor still get it. */
static cl_error_t scan_desc(const struct engine *e, int fd, const char *name,
			    const char **virname, unsigned long *scanned,
			    struct cl_scan_options *opts, struct scan_ctx *ctx)
{
	struct stat st;
	cl_fmap_t *map;
	cl_error_t rc;

	if (fstat(fd, &st) != 0 || st.st_size == 0 || st.st_size > HEAP_MAP_MAX)
		return cl_scandesc_callback(fd, name, virname, scanned, e->cl, opts, ctx);
	map = cl_fmap_open_handle((void *)(intptr_t)fd, 0, (size_t)st.st_size, pread_fd, 0);
	if (!map)
		return CL_EMEM;
	rc = cl_scanmap_callback(map, name, virname, scanned, e->cl, opts, ctx);
	cl_fmap_close(map);
	return rc;
}

enum engine_err engine_scan_fd(const struct engine *e, int fd, const char *name,
			       unsigned flags, engine_layer_fn hook, void *hook_arg,
			       struct engine_result *res, char *errbuf, size_t errlen)
{
	struct scan_ctx ctx = { .e = e, .res = res, .hook = hook, .hook_arg = hook_arg,
				.allmatch = e->cfg.allmatch || (flags & ENGINE_SCAN_ALLMATCH) };
	struct cl_scan_options opts;
	char detail[ENGINE_ERRLEN] = "";
	const char *virname = NULL;
	unsigned long scanned = 0;
	cl_error_t rc;

	memset(res, 0, sizeof(*res));
	if (!e->compiled) {
		set_error(errbuf, errlen, NULL, "%s: engine not compiled", name);
		return ENGINE_ESTATE;
	}
	/* clamscan's defaults: every parser, heuristic alerts on. */
	memset(&opts, 0, sizeof(opts));
	opts.parse = CL_SCAN_PARSE_ARCHIVE | CL_SCAN_PARSE_ELF | CL_SCAN_PARSE_PDF |
		     CL_SCAN_PARSE_SWF | CL_SCAN_PARSE_HWP3 | CL_SCAN_PARSE_XMLDOCS |
		     CL_SCAN_PARSE_MAIL | CL_SCAN_PARSE_OLE2 | CL_SCAN_PARSE_HTML |
		     CL_SCAN_PARSE_PE | CL_SCAN_PARSE_ONENOTE | CL_SCAN_PARSE_IMAGE |
		     CL_SCAN_PARSE_IMAGE_FUZZY_HASH;
	opts.general = CL_SCAN_GENERAL_HEURISTICS;
	if (ctx.allmatch)
		opts.general |= CL_SCAN_GENERAL_ALLMATCHES;

	capture_buf = detail;
	capture_len = sizeof(detail);
	rc = scan_desc(e, fd, name, &virname, &scanned, &opts, &ctx);
	capture_buf = NULL;
	while (ctx.cap)
		frame_clear(&ctx.frames[--ctx.cap]);
	free(ctx.frames);
	/* libclamav counts in blocks of CL_COUNT_PRECISION bytes. */
	res->bytes_scanned = (uint64_t)scanned * CL_COUNT_PRECISION;
	if (ctx.nomem) {
		set_error(errbuf, errlen, NULL, "%s: out of memory recording matches", name);
		return ENGINE_ENOMEM;
	}
	if (rc == CL_VIRUS) {
		res->infected = true;
		/* The callback normally recorded the names; keep libclamav's
		 * own answer if it did not. */
		if (res->nnames == 0 && virname) {
			on_virus_found(fd, virname, &ctx);
			if (ctx.nomem)
				return ENGINE_ENOMEM;
		}
		return ENGINE_OK;
	}
	if (rc == CL_CLEAN)
		return ENGINE_OK;
	set_error(errbuf, errlen, detail, "%s", cl_strerror(rc));
	return rc == CL_EMEM ? ENGINE_ENOMEM : ENGINE_ESCAN;
}

void engine_result_clear(struct engine_result *res)
{
	size_t i;

	for (i = 0; i < res->nnames; i++)
		free(res->names[i]);
	free(res->names);
	memset(res, 0, sizeof(*res));
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	if (e->cl)
		cl_engine_free(e->cl);
	free(e);
}

/* Appends one stat record to the identity buffer. */
static int id_add_stat(struct util_buf *b, const char *name, const struct stat *st)
{
	return util_buf_printf(b, "%s\t%llu\t%llu\t%lld\t%lld.%09ld\t%lld.%09ld\n", name,
			       (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
			       (long long)st->st_size, (long long)st->st_mtim.tv_sec,
			       st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec,
			       st->st_ctim.tv_nsec);
}

/* Adds a database directory: its own record and one per entry, sorted by
 * name so the identity does not depend on readdir order. */
static enum engine_err id_add_dir(struct util_buf *b, const char *path, char *errbuf,
				  size_t errlen)
{
	struct dirent **ents = NULL;
	enum engine_err rc = ENGINE_OK;
	int i, n;

	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0) {
		set_error(errbuf, errlen, NULL, "%s: %s", path, strerror(errno));
		return ENGINE_EDB;
	}
	for (i = 0; i < n; i++) {
		char *sub;
		struct stat st;

		if (rc != ENGINE_OK || strcmp(ents[i]->d_name, ".") == 0 ||
		    strcmp(ents[i]->d_name, "..") == 0)
			goto next;
		sub = util_path_join(path, ents[i]->d_name);
		if (!sub) {
			rc = ENGINE_ENOMEM;
		} else if (stat(sub, &st) != 0) {
			/* A dangling entry cannot be loaded; name it in the
			 * identity so it appearing later changes it. */
			if (util_buf_printf(b, "%s\tmissing\n", ents[i]->d_name) != 0)
				rc = ENGINE_ENOMEM;
		} else if (id_add_stat(b, ents[i]->d_name, &st) != 0) {
			rc = ENGINE_ENOMEM;
		}
		free(sub);
next:
		free(ents[i]);
	}
	free(ents);
	if (rc == ENGINE_ENOMEM)
		set_error(errbuf, errlen, NULL, "out of memory");
	return rc;
}

enum engine_err engine_sigset_id(const char *const *paths, size_t npaths, bool builtin,
				 const struct engine_config *cfg, unsigned char id[32],
				 char *errbuf, size_t errlen)
{
	struct util_buf b = { 0 };
	enum engine_err rc = ENGINE_OK;
	const struct engine_limits *l = &cfg->limits;
	size_t i;

	pthread_once(&init_once, init_libclamav);
	if (util_buf_printf(&b, "ward-sigset 1\nlibclamav %s\nlimits %llu %llu %u %u %u\n"
			    "allmatch %d\nofficial %d\nac_depth %u\nbuiltin %d\n",
			    cl_retver(), (unsigned long long)l->max_filesize,
			    (unsigned long long)l->max_scansize, l->max_files,
			    l->max_recursion, l->max_scantime, cfg->allmatch, cfg->official,
			    cfg->ac_depth, builtin) != 0)
		rc = ENGINE_ENOMEM;
	for (i = 0; i < npaths && rc == ENGINE_OK; i++) {
		struct stat st;

		if (stat(paths[i], &st) != 0) {
			set_error(errbuf, errlen, NULL, "%s: %s", paths[i], strerror(errno));
			rc = ENGINE_EDB;
		} else if (id_add_stat(&b, paths[i], &st) != 0) {
			rc = ENGINE_ENOMEM;
		} else if (S_ISDIR(st.st_mode)) {
			rc = id_add_dir(&b, paths[i], errbuf, errlen);
		}
	}
	if (rc == ENGINE_OK && !cl_hash_data("sha256", b.data, b.len, id, NULL)) {
		set_error(errbuf, errlen, NULL, "cannot compute the signature set identity");
		rc = ENGINE_EINIT;
	}
	if (rc == ENGINE_ENOMEM)
		set_error(errbuf, errlen, NULL, "out of memory");
	util_buf_free(&b);
	return rc;
}
