/* scan_cmd.c -- `ward scan`: clamscan-compatible scanning, in parallel and
 * with a persistent cache of files known clean. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/util.h"
#include "engine/engine.h"
#include "scan/cache.h"
#include "scan/job.h"
#include "scan/smart.h"
#include "common/pack.h"

/* Where clamscan looks when no database is named (freshclam keeps it);
 * the environment variable overrides it. */
#define DEFAULT_DATABASE_DIR "/var/lib/clamav"
#define DATABASE_DIR_ENV "WARD_DATABASE_DIR"

struct scan_opts {
	const char **dbs;
	size_t ndbs;
	bool builtin;         /* no database available: the EICAR test signature */
	bool infected_only;
	bool summary;
	bool json;
	bool use_cache;
	const char *cache_dir;
	struct engine_config ecfg;
	struct sjob_config job;
	/* A Ward component to scan with, as an agent does (directory or full
	 * package payload): the Virus Pattern, or for smart scan the agent
	 * pattern with its smart protection sources. */
	const char *pattern;
	bool smart;
	const char **sps;
	size_t nsps;
	const char *sps_ca;
	struct sjob_pattern *exclude, *exclude_dir;
	size_t nexclude, nexclude_dir;
};

/* The engine, built when the job first needs it. */
struct engine_src {
	const struct scan_opts *o;
	struct scache *cache;
	struct engine *engine;
	uint64_t load_ns;
	char *pattern_dir;      /* the agent pattern in use, when smart */
	char *extracted;        /* a temporary directory to remove, or NULL */
};

/* What the reports add up to, for the summary and the exit status. */
struct tally {
	const struct scan_opts *o;
	uint64_t files, infected, errors, cached, unverified;
	uint64_t blocks_scanned, blocks_read;  /* 4 KiB blocks, as clamscan counts */
	bool unscannable;  /* a named path was missing or of an unsupported type */
};

enum {
	OPT_NO_SUMMARY = 256,
	OPT_EXCLUDE,
	OPT_EXCLUDE_DIR,
	OPT_JSON,
	OPT_CACHE,
	OPT_NO_CACHE,
	OPT_MAX_FILESIZE,
	OPT_MAX_SCANSIZE,
	OPT_MAX_FILES,
	OPT_MAX_RECURSION,
	OPT_MAX_SCANTIME,
	OPT_FOLLOW_DIR,
	OPT_FOLLOW_FILE,
	OPT_MAX_DIR_RECURSION,
	OPT_AGENT_PATTERN,
	OPT_VIRUS_PATTERN,
	OPT_SPS,
	OPT_SPS_CA,
};

static const struct option long_opts[] = {
	{ "database", required_argument, NULL, 'd' },
	{ "recursive", no_argument, NULL, 'r' },
	{ "infected", no_argument, NULL, 'i' },
	{ "allmatch", no_argument, NULL, 'z' },
	{ "jobs", required_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ "no-summary", no_argument, NULL, OPT_NO_SUMMARY },
	{ "exclude", required_argument, NULL, OPT_EXCLUDE },
	{ "exclude-dir", required_argument, NULL, OPT_EXCLUDE_DIR },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "cache", required_argument, NULL, OPT_CACHE },
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
	{ "max-filesize", required_argument, NULL, OPT_MAX_FILESIZE },
	{ "max-scansize", required_argument, NULL, OPT_MAX_SCANSIZE },
	{ "max-files", required_argument, NULL, OPT_MAX_FILES },
	{ "max-recursion", required_argument, NULL, OPT_MAX_RECURSION },
	{ "max-scantime", required_argument, NULL, OPT_MAX_SCANTIME },
	{ "follow-dir-symlinks", optional_argument, NULL, OPT_FOLLOW_DIR },
	{ "follow-file-symlinks", optional_argument, NULL, OPT_FOLLOW_FILE },
	{ "max-dir-recursion", required_argument, NULL, OPT_MAX_DIR_RECURSION },
	{ "agent-pattern", required_argument, NULL, OPT_AGENT_PATTERN },
	{ "virus-pattern", required_argument, NULL, OPT_VIRUS_PATTERN },
	{ "sps", required_argument, NULL, OPT_SPS },
	{ "sps-ca", required_argument, NULL, OPT_SPS_CA },
	{ NULL, 0, NULL, 0 },
};

static void help(void)
{
	fputs("usage: ward scan [OPTIONS] [PATH...]\n"
	      "\n"
	      "Scans files and directories with ClamAV signatures. Output and exit status\n"
	      "follow clamscan: 0 nothing found, 1 something found, 2 an error occurred.\n"
	      "\n"
	      "  -d, --database=PATH       signature database file or directory (repeatable;\n"
	      "                            default $" DATABASE_DIR_ENV " or\n"
	      "                            " DEFAULT_DATABASE_DIR ")\n"
	      "  -r, --recursive           scan directories recursively\n"
	      "  -i, --infected            print only infected files\n"
	      "  -z, --allmatch            report every matching signature\n"
	      "      --no-summary          do not print the summary\n"
	      "      --exclude=REGEX       skip files whose path matches (repeatable)\n"
	      "      --exclude-dir=REGEX   skip directories whose path matches (repeatable)\n"
	      "  -j, --jobs=N              scanning threads (default: online CPUs)\n"
	      "      --json                one JSON object per file (see docs/scan.md)\n"
	      "      --cache=DIR           the scan cache directory (default\n"
	      "                            $XDG_CACHE_HOME/ward/scan or ~/.cache/ward/scan)\n"
	      "      --no-cache            neither use nor update the scan cache\n"
	      "      --max-filesize=SIZE   skip files larger than SIZE (default 100M)\n"
	      "      --max-scansize=SIZE   scan at most SIZE per file (default 400M)\n"
	      "      --max-files=N         members scanned per container (default 10000)\n"
	      "      --max-recursion=N     container nesting depth (default 17)\n"
	      "      --max-scantime=MS     time limit per file (default 120000)\n"
	      "      --max-dir-recursion=N directory depth scanned (default 15)\n"
	      "      --follow-dir-symlinks[=0|1|2]   never / on the command line only\n"
	      "      --follow-file-symlinks[=0|1|2]  (default 1) / always\n"
	      "\n"
	      "Scanning as an agent does, with a component of a Ward server (an installed\n"
	      "version's directory or a full package payload, .tar.zst):\n"
	      "      --virus-pattern=PATH  conventional scan with the Virus Pattern\n"
	      "      --agent-pattern=PATH  smart scan with the Smart Scan Agent Pattern\n"
	      "      --sps=URL             a smart protection server (repeatable; tried in\n"
	      "                            order), e.g. https://wardd.example:8443\n"
	      "      --sps-ca=FILE         CA certificates the servers chain to (default:\n"
	      "                            the system's)\n"
	      "\n"
	      "SIZE takes a K or M suffix. With no database available, the built-in EICAR\n"
	      "test signature is used (and said so).\n",
	      stdout);
}

/* Parses a clamscan-style number: digits with an optional K or M suffix. */
static int parse_size(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		goto bad;
	v = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	if (*end == 'k' || *end == 'K') {
		v <<= 10;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		v <<= 20;
		end++;
	}
	if (*end || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	fprintf(stderr, "ward scan: --%s: invalid value '%s'\n", opt, s);
	return -1;
}

static int parse_u32(const char *opt, const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_size(opt, s, UINT32_MAX, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_follow(const char *opt, const char *s, enum sjob_follow *out)
{
	if (!s) {
		*out = SJOB_FOLLOW_ALWAYS;
		return 0;
	}
	if (s[0] >= '0' && s[0] <= '2' && s[1] == '\0') {
		*out = (enum sjob_follow)(s[0] - '0');
		return 0;
	}
	fprintf(stderr, "ward scan: --%s: expected 0, 1 or 2, not '%s'\n", opt, s);
	return -1;
}

static int add_pattern(struct sjob_pattern **list, size_t *n, const char *opt,
		       const char *pattern)
{
	struct sjob_pattern *p = realloc(*list, (*n + 1) * sizeof(*p));
	size_t len = strlen(pattern);
	char msg[256];
	int rc;

	if (!p)
		return -1;
	*list = p;
	p[*n].dir_suffix = len > 0 && pattern[len - 1] == '/';
	rc = regcomp(&p[*n].re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		regerror(rc, &p[*n].re, msg, sizeof(msg));
		fprintf(stderr, "ward scan: --%s: invalid regular expression '%s': %s\n", opt,
			pattern, msg);
		return -1;
	}
	(*n)++;
	return 0;
}

static const char *default_cache_dir(void)
{
	static char buf[PATH_MAX];
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (xdg && xdg[0] == '/')
		snprintf(buf, sizeof(buf), "%s/ward/scan", xdg);
	else if (home && home[0] == '/')
		snprintf(buf, sizeof(buf), "%s/.cache/ward/scan", home);
	else
		return NULL;
	return buf;
}

/* Parses the command line into o; returns the index of the first path, or
 * -1 after printing a message (exit status 2), or -2 after --help. */
static int parse_args(int argc, char **argv, struct scan_opts *o)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->summary = true;
	o->use_cache = true;
	engine_limits_default(&o->ecfg.limits);
	o->job.jobs = ncpu > 0 ? (unsigned)ncpu : 1;
	o->job.follow_dirs = SJOB_FOLLOW_ARGS;
	o->job.follow_files = SJOB_FOLLOW_ARGS;
	o->job.max_depth = 15;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:rizj:h", long_opts, NULL)) != -1) {
		const char *name = NULL;
		int i;

		for (i = 0; long_opts[i].name; i++)
			if (long_opts[i].val == c)
				name = long_opts[i].name;
		switch (c) {
		case 'd': {
			const char **p = realloc(o->dbs, (o->ndbs + 1) * sizeof(*p));

			if (!p)
				return -1;
			o->dbs = p;
			o->dbs[o->ndbs++] = optarg;
			break;
		}
		case 'r': o->job.recursive = true; break;
		case 'i': o->infected_only = true; break;
		case 'z': o->ecfg.allmatch = true; break;
		case 'j':
			if (parse_size(name, optarg, 1024, &v) != 0 || v == 0) {
				if (v == 0)
					fprintf(stderr, "ward scan: --jobs: must be at least 1\n");
				return -1;
			}
			o->job.jobs = (unsigned)v;
			break;
		case 'h': help(); return -2;
		case OPT_NO_SUMMARY: o->summary = false; break;
		case OPT_EXCLUDE:
			if (add_pattern(&o->exclude, &o->nexclude, name, optarg) != 0)
				return -1;
			break;
		case OPT_EXCLUDE_DIR:
			if (add_pattern(&o->exclude_dir, &o->nexclude_dir, name, optarg) != 0)
				return -1;
			break;
		case OPT_JSON: o->json = true; break;
		case OPT_CACHE: o->cache_dir = optarg; o->use_cache = true; break;
		case OPT_NO_CACHE: o->use_cache = false; break;
		case OPT_MAX_FILESIZE:
			if (parse_size(name, optarg, INT64_MAX, &o->ecfg.limits.max_filesize) != 0)
				return -1;
			break;
		case OPT_MAX_SCANSIZE:
			if (parse_size(name, optarg, INT64_MAX, &o->ecfg.limits.max_scansize) != 0)
				return -1;
			break;
		case OPT_MAX_FILES:
			if (parse_u32(name, optarg, &o->ecfg.limits.max_files) != 0)
				return -1;
			break;
		case OPT_MAX_RECURSION:
			if (parse_u32(name, optarg, &o->ecfg.limits.max_recursion) != 0)
				return -1;
			break;
		case OPT_MAX_SCANTIME:
			if (parse_u32(name, optarg, &o->ecfg.limits.max_scantime) != 0)
				return -1;
			break;
		case OPT_FOLLOW_DIR:
			if (parse_follow(name, optarg, &o->job.follow_dirs) != 0)
				return -1;
			break;
		case OPT_FOLLOW_FILE:
			if (parse_follow(name, optarg, &o->job.follow_files) != 0)
				return -1;
			break;
		case OPT_MAX_DIR_RECURSION:
			if (parse_u32(name, optarg, &o->job.max_depth) != 0)
				return -1;
			break;
		case OPT_AGENT_PATTERN:
		case OPT_VIRUS_PATTERN:
			if (o->pattern) {
				fprintf(stderr, "ward scan: one --agent-pattern or "
					"--virus-pattern only\n");
				return -1;
			}
			o->pattern = optarg;
			o->smart = c == OPT_AGENT_PATTERN;
			break;
		case OPT_SPS: {
			const char **p = realloc(o->sps, (o->nsps + 1) * sizeof(*p));

			if (!p)
				return -1;
			o->sps = p;
			o->sps[o->nsps++] = optarg;
			break;
		}
		case OPT_SPS_CA: o->sps_ca = optarg; break;
		default:
			fputs("Try 'ward scan --help'.\n", stderr);
			return -1;
		}
	}
	if (o->pattern && o->ndbs) {
		fprintf(stderr, "ward scan: --database does not go with --%s-pattern\n",
			o->smart ? "agent" : "virus");
		return -1;
	}
	if (o->smart != (o->nsps > 0) || (o->sps_ca && !o->smart)) {
		fprintf(stderr, "ward scan: %s\n", o->smart ? "--agent-pattern needs at least "
			"one --sps" : "--sps and --sps-ca need --agent-pattern");
		return -1;
	}
	if (o->ndbs == 0 && !o->pattern) {
		const char *dir = getenv(DATABASE_DIR_ENV);

		if (!dir || !*dir)
			dir = DEFAULT_DATABASE_DIR;
		if (engine_has_databases(dir)) {
			o->dbs = malloc(sizeof(*o->dbs));
			if (!o->dbs)
				return -1;
			o->dbs[o->ndbs++] = dir;
		} else {
			o->builtin = true;
			fprintf(stderr, "WARNING: no signature database in %s; using the built-in "
				"EICAR test signature only (name databases with -d)\n", dir);
		}
	}
	if (o->use_cache && !o->cache_dir)
		o->cache_dir = default_cache_dir();
	if (!o->cache_dir)
		o->use_cache = false;
	return optind;
}

/* Makes the component ready: a directory is used as it is, a package
 * payload is extracted into a temporary directory. It becomes the one
 * database, loaded as an agent loads it (official names; for smart scan,
 * with the layer hook). Returns false with errbuf set. */
static bool open_pattern(struct scan_opts *o, struct engine_src *src, char *errbuf,
			       size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX];
	struct stat st;
	enum err err;
	int fd;

	if (stat(o->pattern, &st) != 0) {
		util_set_msg(errbuf, errlen, "%s: %s", o->pattern, strerror(errno));
		return false;
	}
	if (S_ISDIR(st.st_mode)) {
		src->pattern_dir = strdup(o->pattern);
	} else {
		snprintf(dir, sizeof(dir), "%s/ward-pattern-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			util_set_msg(errbuf, errlen, "%s: %s", dir, strerror(errno));
			return false;
		}
		src->extracted = strdup(dir);
		fd = open(o->pattern, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			util_set_msg(errbuf, errlen, "%s: %s", o->pattern, strerror(errno));
			return false;
		}
		err = pack_extract_fd(fd, o->pattern, dir, 1ll << 30, 4ll << 30, errbuf,
				      errlen);
		close(fd);
		if (err != ERR_OK)
			return false;
		src->pattern_dir = strdup(dir);
	}
	o->dbs = malloc(sizeof(*o->dbs));
	if (!src->pattern_dir || !o->dbs) {
		util_set_msg(errbuf, errlen, "out of memory");
		return false;
	}
	o->dbs[0] = src->pattern_dir;
	o->ndbs = 1;
	o->ecfg.official = true;
	if (o->smart)
		o->ecfg = smart_engine_config(&o->ecfg);
	return true;
}

/* Loads and compiles the engine (sjob_engine_fn). */
static const struct engine *build_engine(void *arg, char *errbuf, size_t errlen)
{
	struct engine_src *src = arg;
	const struct scan_opts *o = src->o;
	uint64_t t0 = util_now_ns();
	enum engine_err err;
	size_t i;

	if (src->engine)
		return src->engine;
	src->engine = engine_new(&o->ecfg, &err, errbuf, errlen);
	if (!src->engine)
		return NULL;
	if (o->builtin)
		err = engine_load_builtin(src->engine, errbuf, errlen);
	for (i = 0; i < o->ndbs && err == ENGINE_OK; i++)
		/* A component may hold no signature file at all. */
		if (!o->pattern || engine_has_databases(o->dbs[i]))
			err = engine_load(src->engine, o->dbs[i], errbuf, errlen);
	if (err == ENGINE_OK)
		err = engine_compile(src->engine, errbuf, errlen);
	if (err != ENGINE_OK) {
		engine_free(src->engine);
		src->engine = NULL;
		return NULL;
	}
	src->load_ns = util_now_ns() - t0;
	if (src->cache)
		scache_set_signatures(src->cache, engine_signatures(src->engine));
	return src->engine;
}

static const char *kind_name(const struct sjob_report *r)
{
	switch (r->kind) {
	case SJOB_FILE: return r->infected ? "infected" : r->unverified ? "unverified" : "clean";
	case SJOB_EMPTY: return "empty";
	case SJOB_EXCLUDED: return "excluded";
	case SJOB_LINK: return "symlink";
	case SJOB_SKIPPED: return "skipped";
	case SJOB_UNSCANNABLE: return "unscannable";
	case SJOB_ERROR: return "error";
	}
	return "error";
}

static void report_json(const struct sjob_report *r)
{
	json_t *o = json_object(), *names;
	size_t i;

	json_object_set_new(o, "path", json_string(r->path));
	json_object_set_new(o, "result", json_string(kind_name(r)));
	if (r->kind == SJOB_FILE) {
		names = json_array();
		for (i = 0; i < r->nnames; i++)
			json_array_append_new(names, json_string(r->names[i]));
		json_object_set_new(o, "signatures", names);
		json_object_set_new(o, "size", json_integer((json_int_t)r->size));
		json_object_set_new(o, "bytes_scanned", json_integer((json_int_t)r->bytes_scanned));
		json_object_set_new(o, "cached", json_boolean(r->cached));
		json_object_set_new(o, "changed_during_scan", json_boolean(r->changed));
	}
	if (r->message)
		json_object_set_new(o, "message", json_string(r->message));
	json_dumpf(o, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
	fputc('\n', stdout);
	json_decref(o);
}

/* The result line clamscan prints on stdout for r, if any. */
static void report_line(const struct scan_opts *o, const struct sjob_report *r)
{
	size_t i;

	if (r->kind == SJOB_FILE && r->infected) {
		/* One line per match, as clamscan's --allmatch prints them. */
		for (i = 0; i < r->nnames; i++)
			printf("%s: %s FOUND\n", r->path, r->names[i]);
		return;
	}
	if (o->infected_only)
		return;
	switch (r->kind) {
	case SJOB_FILE: printf("%s: %s\n", r->path, r->unverified ? "Unverified" : "OK"); break;
	case SJOB_EMPTY: printf("%s: Empty file\n", r->path); break;
	case SJOB_EXCLUDED: printf("%s: Excluded\n", r->path); break;
	case SJOB_LINK: printf("%s: Symbolic link\n", r->path); break;
	case SJOB_ERROR:
		if (r->is_dir)
			printf("%s: Can't open directory.\n", r->path);
		else if (r->err == EACCES)
			printf("%s: Access denied\n", r->path);
		else if (r->err == 0)
			printf("%s: %s ERROR\n", r->path, r->message);
		break;
	case SJOB_SKIPPED:
	case SJOB_UNSCANNABLE:
		break;
	}
}

/* The one stderr line that says what went wrong with r, if anything. */
static void report_problem(const struct sjob_report *r)
{
	switch (r->kind) {
	case SJOB_FILE:
		if (r->changed)
			fprintf(stderr, "WARNING: %s: changed while being scanned; "
				"the result is not cached\n", r->path);
		if (r->unverified)
			fprintf(stderr, "WARNING: %s: unverified: no smart protection server "
				"answered for a hash of it\n", r->path);
		break;
	case SJOB_SKIPPED:
	case SJOB_UNSCANNABLE:
		fprintf(stderr, "WARNING: %s: %s\n", r->path, r->message);
		break;
	case SJOB_ERROR:
		fprintf(stderr, "ERROR: %s: %s%s\n", r->path,
			r->is_dir ? "can't read directory: " : "", r->message);
		break;
	case SJOB_EMPTY:
	case SJOB_EXCLUDED:
	case SJOB_LINK:
		break;
	}
}

/* sjob_report_fn: counts one outcome and prints it as text or JSON. */
static void report(const struct sjob_report *r, void *arg)
{
	struct tally *t = arg;

	switch (r->kind) {
	case SJOB_FILE:
		t->files++;
		t->infected += r->infected;
		t->cached += r->cached;
		t->unverified += r->unverified;
		t->blocks_scanned += r->bytes_scanned / 4096;
		if (!r->cached)
			t->blocks_read += r->size / 4096;
		break;
	case SJOB_ERROR: t->errors++; break;
	case SJOB_UNSCANNABLE: t->unscannable = true; break;
	default: break;
	}
	report_problem(r);
	if (!t->o->json)
		report_line(t->o, r);
	else if (!t->o->infected_only || r->infected)
		report_json(r);
	/* Interactive readers see each line as it is decided. */
	fflush(stdout);
}

static void print_summary(const struct scan_opts *o, const struct engine_src *src,
			  struct smart *smart, uint64_t dirs, const struct tally *t, double secs,
			  time_t start, time_t end)
{
	unsigned sigs = src->engine ? engine_signatures(src->engine) :
			src->cache ? scache_signatures(src->cache) : 0;
	char sdate[32], edate[32];
	/* clamscan's units: 4 KiB blocks shown as MB. */
	double scanned_mb = (double)t->blocks_scanned * 4 / 1024.0;
	double read_mb = (double)t->blocks_read * 4 / 1024.0;

	struct tm stm, etm;

	localtime_r(&start, &stm);
	localtime_r(&end, &etm);
	strftime(sdate, sizeof(sdate), "%Y:%m:%d %H:%M:%S", &stm);
	strftime(edate, sizeof(edate), "%Y:%m:%d %H:%M:%S", &etm);
	if (o->json) {
		json_t *j = json_pack("{s:{s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:b,s:f}}",
				      "summary",
				      "known_viruses", (json_int_t)sigs,
				      "engine_version", engine_version(),
				      "scanned_directories", (json_int_t)dirs,
				      "scanned_files", (json_int_t)t->files,
				      "infected_files", (json_int_t)t->infected,
				      "errors", (json_int_t)t->errors,
				      "cached_files", (json_int_t)t->cached,
				      "data_scanned_mb", scanned_mb,
				      "data_read_mb", read_mb,
				      "seconds", secs,
				      "signatures_loaded", src->engine != NULL,
				      "load_seconds", (double)src->load_ns / 1e9);

		if (smart) {
			struct smart_stats st;
			uint64_t prefixes;
			size_t bytes = smart_memory(smart, &prefixes);

			smart_stats(smart, &st);
			json_object_set_new(json_object_get(j, "summary"), "smart", json_pack(
				"{sI sI sI sI sI sI sI sI}", "prefixes", (json_int_t)prefixes,
				"prefix_bytes", (json_int_t)bytes, "layers",
				(json_int_t)st.layers, "prefix_hits", (json_int_t)st.prefix_hits,
				"cache_hits", (json_int_t)st.cache_hits, "requests",
				(json_int_t)st.requests, "failures", (json_int_t)st.failures,
				"pattern", (json_int_t)st.pattern));
		}
		json_dumpf(j, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(j);
		return;
	}
	printf("\n----------- SCAN SUMMARY -----------\n");
	printf("Known viruses: %u\n", sigs);
	printf("Engine version: %s\n", engine_version());
	printf("Scanned directories: %llu\n", (unsigned long long)dirs);
	printf("Scanned files: %llu\n", (unsigned long long)t->files);
	printf("Infected files: %llu\n", (unsigned long long)t->infected);
	if (t->errors)
		printf("Total errors: %llu\n", (unsigned long long)t->errors);
	if (t->unverified)
		printf("Unverified files: %llu\n", (unsigned long long)t->unverified);
	printf("Data scanned: %2.2lf MB\n", scanned_mb);
	printf("Data read: %2.2lf MB (ratio %.2f:1)\n", read_mb,
	       t->blocks_read ? (double)t->blocks_scanned / (double)t->blocks_read : 0.0);
	printf("Time: %.3f sec (%d m %d s)\n", secs, (int)secs / 60, (int)secs % 60);
	printf("Start Date: %s\n", sdate);
	printf("End Date:   %s\n", edate);
}

int scan_cmd_main(int argc, char **argv)
{
	struct scan_opts o;
	struct engine_src src = { 0 };
	struct tally tally = { 0 };
	struct sjob_stats stats = { 0 };
	char errbuf[ENGINE_ERRLEN + 128], warning[512], *cwd = NULL;
	unsigned char id[32];
	const char *const *paths;
	size_t npaths;
	uint64_t t0 = util_now_ns();
	time_t start = time(NULL);
	struct smart *smart = NULL;
	bool failed = false;
	int first, status = 2;
	size_t i;

	engine_tune_allocator();
	first = parse_args(argc, argv, &o);
	if (first < 0) {
		status = first == -2 ? 0 : 2;
		goto out;
	}
	paths = (const char *const *)argv + first;
	npaths = (size_t)(argc - first);
	if (npaths == 0) {
		/* Like clamscan: no path means the current directory, named
		 * absolutely. */
		cwd = getcwd(NULL, 0);
		if (!cwd) {
			fprintf(stderr, "ERROR: current directory: %s\n", strerror(errno));
			goto out;
		}
		paths = (const char *const *)&cwd;
		npaths = 1;
	}
	src.o = &o;
	tally.o = &o;
	if (o.pattern) {
		struct smart_config sc = { .sources = o.sps, .nsources = o.nsps,
					   .ca_file = o.sps_ca, .family = AF_UNSPEC };

		if (!open_pattern(&o, &src, errbuf, sizeof(errbuf)) ||
		    (o.smart && !(smart = smart_new(src.pattern_dir, &sc, errbuf,
						    sizeof(errbuf))))) {
			fprintf(stderr, "ERROR: pattern %s\n", errbuf);
			failed = true;
			goto summary;
		}
		o.job.smart = smart;
	}
	if (o.use_cache) {
		if (engine_sigset_id(o.dbs, o.ndbs, o.builtin, &o.ecfg, id, errbuf,
				     sizeof(errbuf)) != ENGINE_OK) {
			fprintf(stderr, "ERROR: database %s\n", errbuf);
			failed = true;
			goto summary;
		}
		if (scache_open(o.cache_dir, id, &src.cache, warning, sizeof(warning), errbuf,
				sizeof(errbuf)) != SCAN_OK)
			fprintf(stderr, "WARNING: scan cache unavailable: %s\n", errbuf);
		else if (warning[0])
			fprintf(stderr, "WARNING: scan cache: %s\n", warning);
	}
	/* With no verdicts cached for this signature set every file needs the
	 * engine: build it now, before the scanning threads start (measured:
	 * the first scan of the benchmark corpus is markedly slower with the
	 * engine built later, on demand, by a worker). Otherwise build it
	 * only if some file misses the cache. */
	if ((!src.cache || scache_entries(src.cache) == 0) &&
	    !build_engine(&src, errbuf, sizeof(errbuf))) {
		/* Fail before scanning anything, as clamscan does. */
		fprintf(stderr, "ERROR: database %s\n", errbuf);
		failed = true;
		goto summary;
	}
	o.job.exclude = o.exclude;
	o.job.nexclude = o.nexclude;
	o.job.exclude_dir = o.exclude_dir;
	o.job.nexclude_dir = o.nexclude_dir;
	o.job.cache = src.cache;
	o.job.get_engine = build_engine;
	o.job.engine_arg = &src;
	o.job.report = report;
	o.job.report_arg = &tally;
	switch (sjob_run(&o.job, paths, npaths, &stats, errbuf, sizeof(errbuf))) {
	case SCAN_OK:
		if (src.cache && scache_save(src.cache, errbuf, sizeof(errbuf)) != SCAN_OK)
			fprintf(stderr, "WARNING: scan cache not saved: %s\n", errbuf);
		break;
	case SCAN_EENGINE:
		fprintf(stderr, "ERROR: database %s\n", errbuf);
		failed = true;
		break;
	default:
		fprintf(stderr, "ERROR: %s\n", errbuf);
		failed = true;
		break;
	}
summary:
	if (o.summary)
		print_summary(&o, &src, smart, stats.dirs, &tally,
			      (double)(util_now_ns() - t0) / 1e9, start, time(NULL));
	/* clamscan's precedence: a detection beats every error. */
	status = tally.infected ? 1 : (failed || tally.errors || tally.unscannable ||
				       tally.unverified) ? 2 : 0;
out:
	scache_close(src.cache);
	engine_free(src.engine);
	smart_free(smart);
	if (src.extracted)
		util_remove_tree(src.extracted);
	free(src.extracted);
	free(src.pattern_dir);
	for (i = 0; i < o.nexclude; i++)
		regfree(&o.exclude[i].re);
	for (i = 0; i < o.nexclude_dir; i++)
		regfree(&o.exclude_dir[i].re);
	free(o.exclude);
	free(o.exclude_dir);
	free(o.dbs);
	free(o.sps);
	free(cwd);
	return status;
}
