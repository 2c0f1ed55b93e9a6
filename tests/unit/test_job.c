/* test_job.c -- parallel ordered tree scans on the real engine. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "check.h"
#include "common/util.h"
#include "scan/job.h"

static const char eicar[] =
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/* Every report of a run as "kind path[ names]" lines. */
struct log {
	struct util_buf text;
	unsigned reports;
};

struct engine_holder {
	struct engine *engine;
	unsigned builds;
	bool fail;
};

static const char *const kinds[] = {
	[SJOB_FILE] = "file", [SJOB_EMPTY] = "empty", [SJOB_EXCLUDED] = "excluded",
	[SJOB_LINK] = "link", [SJOB_SKIPPED] = "skipped", [SJOB_UNSCANNABLE] = "unscannable",
	[SJOB_ERROR] = "error",
};

static void on_report(const struct sjob_report *r, void *arg)
{
	struct log *l = arg;
	size_t i;

	l->reports++;
	util_buf_printf(&l->text, "%s%s %s", kinds[r->kind], r->cached ? "(cached)" : "",
			r->path);
	for (i = 0; i < r->nnames; i++)
		util_buf_printf(&l->text, " %s", r->names[i]);
	if (r->message && (r->kind == SJOB_SKIPPED || r->kind == SJOB_UNSCANNABLE))
		util_buf_printf(&l->text, " [%s]", r->message);
	util_buf_printf(&l->text, "\n");
}

/* Occurrences of needle in hay. */
static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	while (hay && (hay = strstr(hay, needle)) != NULL) {
		n++;
		hay++;
	}
	return n;
}

static const struct engine *get_engine(void *arg, char *errbuf, size_t errlen)
{
	struct engine_holder *h = arg;
	struct engine_config cfg = { 0 };
	enum engine_err err;

	h->builds++;
	if (h->fail) {
		snprintf(errbuf, errlen, "test: engine refused");
		return NULL;
	}
	if (!h->engine) {
		engine_limits_default(&cfg.limits);
		h->engine = engine_new(&cfg, &err, errbuf, errlen);
		if (!h->engine || engine_load_builtin(h->engine, errbuf, errlen) != ENGINE_OK ||
		    engine_compile(h->engine, errbuf, errlen) != ENGINE_OK)
			return NULL;
	}
	return h->engine;
}

static enum scan_err run(struct sjob_config *cfg, const char *path, struct log *log,
			 struct engine_holder *h, struct sjob_stats *st)
{
	char err[512];
	const char *paths[1] = { path };

	memset(log, 0, sizeof(*log));
	cfg->get_engine = get_engine;
	cfg->engine_arg = h;
	cfg->report = on_report;
	cfg->report_arg = log;
	return sjob_run(cfg, paths, 1, st, err, sizeof(err));
}

static void base_config(struct sjob_config *cfg, unsigned jobs)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->jobs = jobs;
	cfg->recursive = true;
	cfg->max_depth = 15;
	cfg->follow_dirs = SJOB_FOLLOW_ARGS;
	cfg->follow_files = SJOB_FOLLOW_ARGS;
}

/* A tree with files in several directories, written in an order unlike
 * the sorted one. */
static void make_tree(const char *root)
{
	char sub[600];
	int i;

	snprintf(sub, sizeof(sub), "%s/b-dir", root);
	mkdir(sub, 0700);
	for (i = 30; i > 0; i--) {
		char name[32], body[64];

		snprintf(name, sizeof(name), "f%02d.txt", i);
		snprintf(body, sizeof(body), "file number %d\n", i);
		free(test_write(sub, name, body, strlen(body)));
	}
	free(test_write(sub, "virus.com", eicar, sizeof(eicar) - 1));
	free(test_write(root, "z-last.txt", "last\n", 5));
	free(test_write(root, "a-first.txt", "first\n", 6));
	free(test_write(root, "empty", "", 0));
	snprintf(sub, sizeof(sub), "%s/c-dir", root);
	mkdir(sub, 0700);
	free(test_write(sub, "inner.com", eicar, sizeof(eicar) - 1));
}

static void test_order_independent_of_threads(void)
{
	char root[512];
	struct sjob_config cfg;
	struct engine_holder h = { 0 };
	struct log one, many;
	struct sjob_stats st;

	snprintf(root, sizeof(root), "%s", test_tmpdir());
	make_tree(root);
	base_config(&cfg, 1);
	CHECK(run(&cfg, root, &one, &h, &st) == SCAN_OK);
	CHECK(st.dirs == 3);
	base_config(&cfg, 4);
	CHECK(run(&cfg, root, &many, &h, &st) == SCAN_OK);
	CHECK(one.text.data && many.text.data && strcmp(one.text.data, many.text.data) == 0);
	CHECK(one.reports == 35);
	/* Sorted, depth first: a-first.txt, b-dir/..., c-dir/..., empty, z-last.txt */
	CHECK_STR_CONTAINS(one.text.data, "/a-first.txt\nfile ");
	CHECK(strstr(one.text.data, "a-first.txt") < strstr(one.text.data, "b-dir/f01.txt"));
	CHECK(strstr(one.text.data, "b-dir/f30.txt") < strstr(one.text.data, "b-dir/virus.com"));
	CHECK(strstr(one.text.data, "b-dir/virus.com") < strstr(one.text.data, "c-dir/inner.com"));
	CHECK(strstr(one.text.data, "c-dir/inner.com") < strstr(one.text.data, "/z-last.txt"));
	CHECK_STR_CONTAINS(one.text.data, "b-dir/virus.com Eicar-Test-Signature");
	CHECK_STR_CONTAINS(one.text.data, "empty ");
	CHECK(h.builds == 2);  /* no cache: built (once per run) when first needed */
	util_buf_free(&one.text);
	util_buf_free(&many.text);
	engine_free(h.engine);
}

static void test_cache_skips_engine(void)
{
	char root[512], cdir[600], errbuf[256], warning[256], *changed;
	unsigned char id[32];
	struct sjob_config cfg;
	struct engine_holder h = { 0 };
	struct log log;
	struct sjob_stats st;
	struct scache *c;
	int pass;

	snprintf(root, sizeof(root), "%s", test_tmpdir());
	snprintf(cdir, sizeof(cdir), "%s-cache", root);
	make_tree(root);
	memset(id, 9, sizeof(id));
	for (pass = 0; pass < 3; pass++) {
		if (pass == 2) {
			/* Rewrite one file with the same size: a real scan again. */
			changed = test_write(root, "a-first.txt", "FIRST\n", 6);
			free(changed);
		}
		CHECK(scache_open(cdir, id, &c, warning, sizeof(warning), errbuf,
				  sizeof(errbuf)) == SCAN_OK);
		base_config(&cfg, 2);
		cfg.cache = c;
		h.builds = 0;
		CHECK(run(&cfg, root, &log, &h, &st) == SCAN_OK);
		CHECK(scache_save(c, errbuf, sizeof(errbuf)) == SCAN_OK);
		scache_close(c);
		if (pass == 0) {
			CHECK(h.builds == 1);
			CHECK(strstr(log.text.data, "(cached)") == NULL);
		} else if (pass == 1) {
			/* Nothing changed: every verdict, detections with their
			 * names, comes from the cache; no engine is built. */
			CHECK(h.builds == 0);
			CHECK(count(log.text.data, "file /") == 0);
			CHECK_STR_CONTAINS(log.text.data, "/b-dir/f17.txt\n");
			CHECK_STR_CONTAINS(log.text.data, "file(cached) ");
			CHECK_STR_CONTAINS(log.text.data, "/b-dir/virus.com Eicar-Test-Signature");
		} else {
			/* Only the rewritten file is scanned. */
			CHECK(h.builds == 1);
			CHECK(count(log.text.data, "file /") == 1);
			CHECK_STR_CONTAINS(log.text.data, "/a-first.txt\nfile(cached) ");
		}
		util_buf_free(&log.text);
	}
	engine_free(h.engine);
}

static void on_alarm(int sig)
{
	(void)sig;
	fputs("test_job: a scan hung (FIFO opened?)\n", stderr);
	_exit(1);
}

static void test_special_files_and_links(void)
{
	char root[512], p[700];
	struct sjob_config cfg;
	struct engine_holder h = { 0 };
	struct log log;
	struct sjob_stats st;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sock;

	snprintf(root, sizeof(root), "%s", test_tmpdir());
	free(test_write(root, "file.txt", "x\n", 2));
	snprintf(p, sizeof(p), "%s/fifo", root);
	CHECK(mkfifo(p, 0600) == 0);
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%.90s/sock", root) >=
	    sizeof(sa.sun_path))
		abort();
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(sock >= 0 && bind(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	snprintf(p, sizeof(p), "%s/loop", root);
	CHECK(symlink("loop", p) == 0);
	snprintf(p, sizeof(p), "%s/link.txt", root);
	CHECK(symlink("file.txt", p) == 0);
	snprintf(p, sizeof(p), "%s/sub", root);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/sub/up", root);
	CHECK(symlink("..", p) == 0);

	signal(SIGALRM, on_alarm);
	alarm(30);
	/* Default: links inside the tree are reported, not followed. */
	base_config(&cfg, 2);
	CHECK(run(&cfg, root, &log, &h, &st) == SCAN_OK);
	CHECK_STR_CONTAINS(log.text.data, "skipped ");
	CHECK_STR_CONTAINS(log.text.data, "/fifo [a FIFO; not opened]");
	CHECK_STR_CONTAINS(log.text.data, "/sock [a socket; not opened]");
	CHECK_STR_CONTAINS(log.text.data, "link ");
	CHECK_STR_CONTAINS(log.text.data, "/loop\n");
	util_buf_free(&log.text);

	/* Following every link: a loop link and a directory cycle each get one
	 * report and the walk ends. */
	cfg.follow_dirs = SJOB_FOLLOW_ALWAYS;
	cfg.follow_files = SJOB_FOLLOW_ALWAYS;
	CHECK(run(&cfg, root, &log, &h, &st) == SCAN_OK);
	CHECK_STR_CONTAINS(log.text.data, "/loop [symbolic link loop; not followed]");
	CHECK_STR_CONTAINS(log.text.data, "/sub/up [directory loop");
	CHECK_STR_CONTAINS(log.text.data, "file /");
	CHECK_STR_CONTAINS(log.text.data, "/link.txt\n");
	util_buf_free(&log.text);

	/* A FIFO named directly cannot be scanned. */
	snprintf(p, sizeof(p), "%s/fifo", root);
	CHECK(run(&cfg, p, &log, &h, &st) == SCAN_OK);
	CHECK_STR_CONTAINS(log.text.data, "unscannable ");
	util_buf_free(&log.text);
	snprintf(p, sizeof(p), "%s/missing", root);
	CHECK(run(&cfg, p, &log, &h, &st) == SCAN_OK);
	CHECK_STR_CONTAINS(log.text.data, "[No such file or directory]");
	util_buf_free(&log.text);
	alarm(0);
	close(sock);
	engine_free(h.engine);
}

static void test_depth_and_excludes(void)
{
	char root[512], p[900];
	struct sjob_config cfg;
	struct sjob_pattern pat;
	struct engine_holder h = { 0 };
	struct log log;
	struct sjob_stats st;
	int i;

	snprintf(root, sizeof(root), "%s", test_tmpdir());
	snprintf(p, sizeof(p), "%s", root);
	for (i = 0; i < 4; i++) {
		snprintf(p + strlen(p), sizeof(p) - strlen(p), "/d");
		mkdir(p, 0700);
		free(test_write(p, "f.txt", "x\n", 2));
	}
	base_config(&cfg, 2);
	cfg.max_depth = 3;
	CHECK(run(&cfg, root, &log, &h, &st) == SCAN_OK);
	CHECK(st.dirs == 3);
	CHECK_STR_CONTAINS(log.text.data, "/d/d/d [deeper than the directory depth limit");
	util_buf_free(&log.text);

	CHECK(regcomp(&pat.re, "/d/d$", REG_EXTENDED | REG_NOSUB) == 0);
	pat.dir_suffix = false;
	cfg.max_depth = 15;
	cfg.exclude_dir = &pat;
	cfg.nexclude_dir = 1;
	CHECK(run(&cfg, root, &log, &h, &st) == SCAN_OK);
	CHECK_STR_CONTAINS(log.text.data, "excluded ");
	CHECK(strstr(log.text.data, "/d/d/d/") == NULL);
	CHECK(st.dirs == 2);
	util_buf_free(&log.text);
	regfree(&pat.re);
	engine_free(h.engine);
}

static void test_engine_failure_stops(void)
{
	char root[512];
	struct sjob_config cfg;
	struct engine_holder h = { .fail = true };
	struct log log;
	struct sjob_stats st;

	snprintf(root, sizeof(root), "%s", test_tmpdir());
	make_tree(root);
	base_config(&cfg, 2);
	CHECK(run(&cfg, root, &log, &h, &st) == SCAN_EENGINE);
	CHECK(h.builds == 1);
	/* Nothing was scanned, so no file outcome was reported. */
	CHECK(!log.text.data || strstr(log.text.data, "file ") == NULL);
	util_buf_free(&log.text);
}

/* Records the order in which files (depth-0 layers) are scanned. */
struct scan_order {
	pthread_mutex_t lock;
	size_t n;
	size_t big_at;  /* position of the large file, 1-based; 0 = not seen */
};

static enum engine_layer_action on_layer_order(const struct engine_layer *l, void *arg)
{
	struct scan_order *o = arg;

	if (l->depth != 0)
		return ENGINE_LAYER_SCAN;
	pthread_mutex_lock(&o->lock);
	o->n++;
	if (l->size == 1u << 20)
		o->big_at = o->n;
	pthread_mutex_unlock(&o->lock);
	return ENGINE_LAYER_SCAN;
}

static const struct engine *get_hooked_engine(void *arg, char *errbuf, size_t errlen)
{
	struct engine_config cfg = { .layer_hook = true };
	struct engine **e = arg;
	enum engine_err err;

	engine_limits_default(&cfg.limits);
	*e = engine_new(&cfg, &err, errbuf, errlen);
	if (!*e || engine_load_builtin(*e, errbuf, errlen) != ENGINE_OK ||
	    engine_compile(*e, errbuf, errlen) != ENGINE_OK)
		return NULL;
	return *e;
}

static void test_largest_first(void)
{
	char root[512], name[32], err[256];
	struct scan_order order = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct engine *e = NULL;
	struct sjob_config cfg;
	struct sjob_stats st;
	struct log log = { 0 };
	const char *paths[1];
	char *big = calloc(1, 1u << 20);
	int i;

	snprintf(root, sizeof(root), "%s", test_tmpdir());
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "a%04d.txt", i);
		free(test_write(root, name, name, strlen(name)));
	}
	/* Last in traversal order, and by far the largest. */
	free(test_write(root, "z-big.bin", big, 1u << 20));
	base_config(&cfg, 1);
	cfg.get_engine = get_hooked_engine;
	cfg.engine_arg = &e;
	cfg.layer_hook = on_layer_order;
	cfg.layer_arg = &order;
	cfg.report = on_report;
	cfg.report_arg = &log;
	paths[0] = root;
	CHECK(sjob_run(&cfg, paths, 1, &st, err, sizeof(err)) == SCAN_OK);
	CHECK(order.n == 1001);
	/* The walker queues files far faster than one worker scans them, so
	 * the large file is taken long before the small ones run out... */
	CHECK(order.big_at > 0 && order.big_at < 500);
	/* ...while the report order stays the traversal order. */
	CHECK(log.text.data && strstr(log.text.data, "z-big.bin\n") ==
	      log.text.data + log.text.len - strlen("z-big.bin\n"));
	util_buf_free(&log.text);
	engine_free(e);
	free(big);
}

/* Gives path an access time a day before its modification time, which a
 * read would update (relatime); returns it. */
static struct timespec stale_atime(const char *path)
{
	struct stat st;
	struct timespec ts[2];

	CHECK(stat(path, &st) == 0);
	ts[0] = st.st_mtim;
	ts[0].tv_sec -= 86400;
	ts[1] = st.st_mtim;
	CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
	return ts[0];
}

/* A scan reads without touching the access time (a quarantined file keeps
 * its own); checked against a plain read of a twin file, which does
 * touch it (unless the file system is mounted noatime). */
static void test_atime_kept(void)
{
	const char *dir = test_tmpdir();
	char *file = test_write(dir, "a.txt", "contents\n", 9),
	     *twin = test_write(dir, "twin.txt", "contents\n", 9), buf[16];
	struct timespec before = stale_atime(file), twin_before = stale_atime(twin);
	struct engine_holder h = { 0 };
	struct sjob_config cfg;
	struct sjob_stats st;
	struct log log;
	struct stat after;
	bool touches;
	int fd;

	fd = open(twin, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 9);
	close(fd);
	CHECK(stat(twin, &after) == 0);
	touches = after.st_atim.tv_sec != twin_before.tv_sec;
	base_config(&cfg, 1);
	CHECK(run(&cfg, file, &log, &h, &st) == SCAN_OK);
	CHECK(log.reports == 1);
	CHECK(stat(file, &after) == 0);
	CHECK(after.st_atim.tv_sec == before.tv_sec && after.st_atim.tv_nsec == before.tv_nsec);
	if (!touches)
		fprintf(stderr, "test_atime_kept: %s is mounted noatime: the check proves "
			"nothing here\n", dir);
	util_buf_free(&log.text);
	engine_free(h.engine);
	free(file);
	free(twin);
}

int main(void)
{
	test_order_independent_of_threads();
	test_cache_skips_engine();
	test_special_files_and_links();
	test_depth_and_excludes();
	test_engine_failure_stops();
	test_largest_first();
	test_atime_kept();
	return check_finish();
}
