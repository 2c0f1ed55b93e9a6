/* components.c -- the component in use, reference counted, and its
 * updates (see components.h). */
#include "agent/components.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "agent/astate.h"
#include "agent/sandbox.h"
#include "agent/scanner.h"
#include "common/comp.h"
#include "common/log.h"
#include "common/rest.h"
#include "common/state.h"
#include "common/updater.h"
#include "common/util.h"

/* One generation in use, and who holds it: the holder while it is the
 * one in use, and each scan with a handle. */
struct holder {
	struct components_handle h;   /* first: handles point here */
	unsigned refs;
};

struct components {
	pthread_mutex_t lock;
	struct holder *cur;
	char error[1024];             /* why the last start failed */
};

struct components *components_new(void)
{
	struct components *c = calloc(1, sizeof(*c));

	if (c)
		pthread_mutex_init(&c->lock, NULL);
	return c;
}

/* Retires what the last reference to h held: the worker's channel is
 * closed once its requests are answered, and the relay it posts through
 * goes with the generation (scanner_config.relay_free). */
static void holder_free(struct holder *h)
{
	scanner_release(h->h.scanner);
	free(h);
}

void components_free(struct components *c)
{
	if (!c)
		return;
	if (c->cur)
		components_release(c, &c->cur->h);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const struct components_handle *components_acquire(struct components *c)
{
	struct holder *h;

	pthread_mutex_lock(&c->lock);
	h = c->cur;
	if (h)
		h->refs++;
	pthread_mutex_unlock(&c->lock);
	return h ? &h->h : NULL;
}

void components_release(struct components *c, const struct components_handle *handle)
{
	struct holder *h = (struct holder *)handle;
	bool last;

	if (!h)
		return;
	pthread_mutex_lock(&c->lock);
	last = --h->refs == 0;
	if (last && c->cur == h)
		c->cur = NULL;
	pthread_mutex_unlock(&c->lock);
	if (last)
		holder_free(h);
}

const struct components_handle *components_acquire_wait(struct agent *a,
							 const atomic_bool *cancel)
{
	const struct components_handle *h;
	char why[2];
	int i;

	for (i = 0;; i++) {
		h = components_acquire(a->comps);
		if (h || i >= 600 || (cancel && atomic_load(cancel)))
			return h;
		components_error(a->comps, why, sizeof(why));
		if (why[0] ||
		    (!updater_installed(a->comp_dir, comp_table()[COMP_VIRUS].name) &&
		     !updater_installed(a->comp_dir, comp_table()[COMP_SMART_AGENT].name)))
			return NULL;
		usleep(100000);
	}
}

void components_error(struct components *c, char *buf, size_t len)
{
	pthread_mutex_lock(&c->lock);
	util_set_msg(buf, len, "%s", c->error);
	pthread_mutex_unlock(&c->lock);
}

/* Says why no generation could be started (empty: one was). */
static void set_error(struct components *c, const char *why)
{
	pthread_mutex_lock(&c->lock);
	util_set_msg(c->error, sizeof(c->error), "%s", why);
	pthread_mutex_unlock(&c->lock);
}

int components_scan_fd(const struct components_handle *h, int fd, const char *name,
		       unsigned flags, struct engine_result *res, struct smart_outcome *out,
		       char *errbuf, size_t errlen)
{
	return scanner_scan_fd(h->scanner, fd, name, flags, 0, res, out, errbuf, errlen) ==
	       AERR_OK ? 0 : -1;
}

int components_install(struct components *c, struct scanner *g, struct smart *relay,
		       const char *name, int64_t version)
{
	struct holder *h = calloc(1, sizeof(*h)), *old;

	if (!h) {
		log_msg(LOG_LVL_ERROR, "out of memory: %s version %lld not put in use", name,
			(long long)version);
		scanner_release(g);
		return -1;
	}
	h->h.scanner = g;
	h->h.smart = relay;
	h->h.name = name;
	h->h.version = version;
	h->refs = 1;
	pthread_mutex_lock(&c->lock);
	old = c->cur;
	c->cur = h;
	c->error[0] = 0;
	pthread_mutex_unlock(&c->lock);
	if (old)
		components_release(c, &old->h);
	return 0;
}

/* Whether version of component is the one in use. */
static bool in_use(struct components *c, const char *component, int64_t version)
{
	const struct components_handle *h = components_acquire(c);
	bool same = h && strcmp(h->name, component) == 0 && h->version == version;

	components_release(c, h);
	return same;
}

bool components_is_smart(const char *component)
{
	return strcmp(component, comp_table()[COMP_SMART_AGENT].name) == 0;
}

const char *components_needed(const struct agent *a, const json_t *settings)
{
	json_t *method = astate_setting(a, settings, "scan_method");
	bool smart = method && strcmp(json_string_value(method), "smart") == 0;

	json_decref(method);
	return comp_table()[smart ? COMP_SMART_AGENT : COMP_VIRUS].name;
}

/* The agent's smart protection source list: from the server (kept in the
 * state directory), else the one kept, else the server's integrated one.
 * The caller releases it. */
json_t *components_sps_list(struct agent *a)
{
	char *path = astate_file(a, "sps-sources.json"), msg[512];
	json_t *list = NULL;
	long status = 0;

	if (rest_call(a->up.rc, "GET", "/api/v1/agent/sps-sources", NULL, 30, &status, &list,
			    msg, sizeof(msg)) == ERR_OK && status == 200 &&
	    json_is_array(json_object_get(list, "sources"))) {
		if (path)
			state_write_json(path, list);
	} else {
		json_decref(list);
		list = path ? json_load_file(path, 0, NULL) : NULL;
		if (!list)
			list = json_pack("{s[s] sn}", "sources", "integrated", "proxy");
	}
	free(path);
	return list;
}

/* Writes what smart protection sources are trusted by: the server CA
 * (the integrated server is wardd itself) and the smart protection CA the
 * list names, to sps-ca.crt; and the keys the list pins, joined as libcurl
 * takes them, to pins (NULL: none pinned). Returns the file's path (the
 * caller frees it), or NULL when it cannot be written (logged). */
static char *sps_trust(struct agent *a, const json_t *list, char **pins)
{
	const char *sps_ca = json_string_value(json_object_get(list, "ca"));
	char *server_ca = util_read_file(a->ca_path, 1 << 16, NULL);
	char *path = astate_file(a, "sps-ca.crt");
	struct util_buf b = { 0 };
	const json_t *p;
	size_t i;

	*pins = NULL;
	if (!server_ca || !path || util_buf_append(&b, server_ca, strlen(server_ca)) != 0 ||
	    (sps_ca && util_buf_append(&b, sps_ca, strlen(sps_ca)) != 0) ||
	    util_buf_append(&b, "", 1) != 0 || !state_write(path, b.data)) {
		log_msg(LOG_LVL_ERROR, "smart protection: cannot write %s", path ? path : "its CA");
		free(path);
		path = NULL;
		goto out;
	}
	util_buf_free(&b);
	json_array_foreach(json_object_get(list, "pins"), i, p) {
		const char *pin = json_string_value(p);

		if (!pin || strchr(pin, ';'))
			continue;
		if ((b.len && util_buf_append(&b, ";", 1) != 0) ||
		    util_buf_append(&b, pin, strlen(pin)) != 0)
			goto out;
	}
	if (b.len && util_buf_append(&b, "", 1) == 0) {
		*pins = b.data;
		b = (struct util_buf){ 0 };
	}
out:
	util_buf_free(&b);
	free(server_ca);
	return path;
}

/* Sets up the agent's smart protection relay for the source list (the
 * integrated server is reached at the server's own address), what the
 * sources are trusted by, this host's address family; cfg keeps the
 * sources (urls) for the workers. Returns NULL when it cannot (logged). */
struct smart *components_open_smart(struct agent *a, const json_t *list,
				    struct smart_config *cfg, const char **urls)
{
	json_t *u;
	struct smart *sm = NULL;
	char msg[512], *trust, *pins = NULL;
	size_t i;

	*cfg = (struct smart_config){ .sources = urls, .family = astate_network_family(a) };
	trust = sps_trust(a, list, &pins);
	if (!trust)
		return NULL;
	cfg->ca_file = trust;
	cfg->pins = pins;
	cfg->proxy = json_string_value(json_object_get(list, "proxy"));
	json_array_foreach(json_object_get(list, "sources"), i, u) {
		if (!json_is_string(u) || cfg->nsources == 32)
			continue;
		urls[cfg->nsources++] = strcmp(json_string_value(u), "integrated") == 0 ?
					a->server : json_string_value(u);
	}
	sm = smart_new(NULL, cfg, msg, sizeof(msg));
	if (!sm)
		log_msg(LOG_LVL_ERROR, "smart protection: %s", msg);
	else
		log_msg(LOG_LVL_INFO, "smart protection: %zu source%s from list %lld "
			"(0: none matched, the integrated server), %s networks", cfg->nsources,
			cfg->nsources == 1 ? "" : "s",
			(long long)json_integer_value(json_object_get(list, "list")),
			astate_network_name(cfg->family));
	free(trust);
	free(pins);
	cfg->ca_file = cfg->pins = NULL;
	return sm;
}

/* The workers' relay: a worker's request posted through the agent's
 * smart protection state. */
static void relay_free(void *arg)
{
	smart_free(arg);
}

static int relay_post(void *arg, size_t i, const char *body, size_t len, long timeout,
		      size_t max, long *status, struct util_buf *answer, char *errbuf,
		      size_t errlen)
{
	return smart_post(arg, i, body, len, timeout, max, status, answer, errbuf, errlen);
}

/* Scan threads in a worker: scan.worker_threads, or one per CPU, at most
 * 8. */
static unsigned worker_threads(const struct agent *a)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (a->cfg.worker_threads > 0)
		return (unsigned)a->cfg.worker_threads;
	return ncpu < 1 ? 1 : ncpu > 8 ? 8 : (unsigned)ncpu;
}

/* Starts the generation of version of component: its worker loads the
 * version and, for smart scan, relays through a state made from list.
 * Returns 0 with *g and *relay (NULL: conventional) the caller's, or -1
 * with errbuf saying why. */
static int start_generation(struct agent *a, const char *component, int64_t version,
			    const json_t *list, struct scanner **g, struct smart **relay,
			    char *errbuf, size_t errlen)
{
	struct scanner_config cfg = { .smart = components_is_smart(component) };
	struct sandbox_config user;
	struct smart_config sc;
	const char *urls[32];
	char dir[PATH_MAX], msg[256];

	*g = NULL;
	*relay = NULL;
	/* No fallback to root: a missing user stops the scans, by name. */
	if (a->cfg.worker_user[0] && geteuid() == 0 &&
	    sandbox_lookup_user(a->cfg.worker_user, &user, msg, sizeof(msg)) != 0) {
		util_set_msg(errbuf, errlen, "scan.worker_user: %s (make the user, as "
			     "packaging/ward-agent.sysusers does, or name another; empty keeps "
			     "uid 0 without capabilities)", msg);
		return -1;
	}
	if (util_mkdir_p(a->cfg.scratch_dir, 0711) != 0) {
		util_set_msg(errbuf, errlen, "scan.scratch_dir: %s: %s", a->cfg.scratch_dir,
			     strerror(errno));
		return -1;
	}
	updater_path(a->comp_dir, component, version, dir, sizeof(dir));
	cfg.component = dir;
	engine_limits_default(&cfg.limits);
	/* A file up to the largest realtime.max_size is scanned whole, in real
	 * time and on demand: libclamav's default 100 MiB would pass larger
	 * ones over as clean. */
	cfg.limits.max_filesize = COMPONENTS_MAX_FILESIZE;
	cfg.limits.max_scansize = COMPONENTS_MAX_FILESIZE;
	cfg.threads = worker_threads(a);
	cfg.user = a->cfg.worker_user[0] ? a->cfg.worker_user : NULL;
	cfg.scratch = a->cfg.scratch_dir;
	cfg.scan_timeout = (unsigned)a->cfg.scan_timeout;
	if (cfg.smart) {
		*relay = list ? components_open_smart(a, list, &sc, urls) : NULL;
		if (!*relay) {
			util_set_msg(errbuf, errlen, "smart protection could not be set up (see "
				     "the agent's log)");
			return -1;
		}
		cfg.sources = sc.sources;
		cfg.nsources = sc.nsources;
		cfg.proxy = sc.proxy;
		cfg.family = sc.family;
		cfg.source_timeout = sc.timeout > 0 ? sc.timeout : SMART_DEFAULT_TIMEOUT;
		cfg.retry_after = sc.retry_after > 0 ? sc.retry_after : SMART_DEFAULT_RETRY_AFTER;
		cfg.relay = relay_post;
		cfg.relay_arg = *relay;
		cfg.relay_free = relay_free;
	}
	*g = scanner_start(&cfg, errbuf, errlen);
	if (!*g) {
		smart_free(*relay);
		*relay = NULL;
		return -1;
	}
	return 0;
}

/* Starts the generation of version of component, with the source list
 * fetched now for smart scan (so that no answer cached for an older
 * pattern survives). On failure a->update_error says why. */
static int new_generation(struct agent *a, const char *component, int64_t version,
			  struct scanner **g, struct smart **relay)
{
	char msg[768];

	if (components_is_smart(component)) {
		json_decref(a->sps_sources);
		a->sps_sources = components_sps_list(a);
	}
	if (start_generation(a, component, version, a->sps_sources, g, relay, msg,
			     sizeof(msg)) == 0)
		return 0;
	set_error(a->comps, msg);
	snprintf(a->update_error, sizeof(a->update_error), "%s version %lld: no scan worker: "
		 "%s", component, (long long)version, msg);
	log_msg(LOG_LVL_ERROR, "%s", a->update_error);
	return -1;
}

/* Fetches the source list again; when it changed, a generation of the
 * same version made with it takes over. */
void components_refresh_sources(struct agent *a)
{
	const struct components_handle *h = components_acquire(a->comps);
	json_t *list = h && h->smart ? components_sps_list(a) : NULL;
	struct scanner *g;
	struct smart *relay;
	char msg[768];

	if (!list || (a->sps_sources && json_equal(list, a->sps_sources)))
		goto out;
	log_msg(LOG_LVL_INFO, "smart protection: the source list changed");
	if (start_generation(a, h->name, h->version, list, &g, &relay, msg, sizeof(msg)) != 0) {
		log_msg(LOG_LVL_ERROR, "smart protection: the new source list is not in use: %s",
			msg);
		goto out;
	}
	components_install(a->comps, g, relay, h->name, h->version);
	json_decref(a->sps_sources);
	a->sps_sources = list;
	list = NULL;
out:
	json_decref(list);
	components_release(a->comps, h);
}

/* Makes the generation the one of component's installed version,
 * starting it when it is not (after an update by another process, say). */
bool components_use_installed(struct agent *a, const char *component)
{
	int64_t v = updater_installed(a->comp_dir, component);
	struct scanner *g;
	struct smart *relay;

	if (!v || in_use(a->comps, component, v))
		return true;
	if (new_generation(a, component, v, &g, &relay) != 0)
		return false;
	log_msg(LOG_LVL_INFO, "components: %s version %lld in use (scan worker %d)", component,
		(long long)v, (int)scanner_pid(g));
	components_install(a->comps, g, relay, component, v);
	return true;
}

/* Brings component up to date and starts its generation: a new version
 * is used only once its worker is ready, else the installed one stays in
 * use and the failure is reported. Returns true when component is current
 * (or the server has none yet). Serialised with other agent processes on
 * the same state by a lock. */
bool components_update(struct agent *a, const char *component)
{
	char lock_path[PATH_MAX];
	enum err err;
	struct scanner *g;
	struct smart *relay;
	int64_t staged = 0;
	bool ok = false;
	int lock;

	snprintf(lock_path, sizeof(lock_path), "%s/.lock", a->comp_dir);
	if (util_mkdir_p(a->comp_dir, 0700) != 0 ||
	    (lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		snprintf(a->update_error, sizeof(a->update_error), "%s: %s", a->comp_dir,
			 strerror(errno));
		return false;
	}
	flock(lock, LOCK_EX);
	err = updater_fetch(&a->up, component, &staged, a->update_error,
			    sizeof(a->update_error));
	if (a->up.rotated)
		updater_store_pin(&a->up, a->cred_path);
	if (err == ERR_NONE) {
		log_msg(LOG_LVL_INFO, "update: %s", a->update_error);
		a->update_error[0] = '\0';
		ok = true;
		goto out;
	}
	if (err != ERR_OK)
		goto out;
	if (staged) {
		/* Everything ready before the switch on disk, so that the new
		 * version is in use as soon as it is the one installed. */
		if (new_generation(a, component, staged, &g, &relay) != 0) {
			updater_discard(&a->up, component, staged);
			snprintf(a->update_error + strlen(a->update_error),
				 sizeof(a->update_error) - strlen(a->update_error),
				 "; version %lld stays in use",
				 (long long)updater_installed(a->comp_dir, component));
			goto out;
		}
		if (updater_commit(&a->up, component, staged) != 0) {
			snprintf(a->update_error, sizeof(a->update_error), "%s: %s", component,
				 strerror(errno));
			scanner_release(g);
			goto out;
		}
		log_msg(LOG_LVL_INFO, "update: %s version %lld in use (scan worker %d)",
			component, (long long)staged, (int)scanner_pid(g));
		components_install(a->comps, g, relay, component, staged);
	}
	a->update_error[0] = '\0';
	ok = components_use_installed(a, component);
out:
	flock(lock, LOCK_UN);
	close(lock);
	return ok;
}
