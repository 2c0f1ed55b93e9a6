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
#include "common/comp.h"
#include "common/log.h"
#include "common/rest.h"
#include "common/state.h"
#include "common/updater.h"
#include "common/util.h"

/* An engine, shared by the holders made from it (a new source list for
 * smart scan keeps the engine). */
struct box {
	struct engine *engine;
	unsigned refs;
};

/* One component in use, and who holds it: the holder while it is the
 * one in use, and each scan with a handle. */
struct holder {
	struct components_handle h;   /* first: handles point here */
	struct box *box;
	unsigned refs;
};

struct components {
	pthread_mutex_t lock;
	struct holder *cur;
};

struct components *components_new(void)
{
	struct components *c = calloc(1, sizeof(*c));

	if (c)
		pthread_mutex_init(&c->lock, NULL);
	return c;
}

/* Frees what the last reference to h held. */
static void holder_free(struct holder *h)
{
	smart_free(h->h.smart);
	if (--h->box->refs == 0) {
		engine_free(h->box->engine);
		free(h->box);
	}
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

int components_scan_fd(const struct components_handle *h, int fd, const char *name,
		       struct engine_result *res, struct smart_outcome *out, char *errbuf,
		       size_t errlen)
{
	enum engine_err rc;

	*out = (struct smart_outcome){ 0 };
	rc = h->smart ? smart_scan_fd(h->smart, h->engine, fd, name, res, out, errbuf, errlen) :
	     engine_scan_fd(h->engine, fd, name, NULL, NULL, res, errbuf, errlen);
	return rc == ENGINE_OK ? 0 : -1;
}

/* Makes the engine of box (a reference taken) with sm (taken over) the
 * component in use; the one before is freed with its last holder. On
 * failure (out of memory) the one in use stays, sm is freed, and -1 is
 * returned. */
static int install(struct components *c, struct box *box, struct smart *sm,
		   const char *name, int64_t version)
{
	struct holder *h = calloc(1, sizeof(*h)), *old;

	if (!h) {
		log_msg(LOG_LVL_ERROR, "out of memory: %s version %lld not put in use", name,
			(long long)version);
		smart_free(sm);
		return -1;
	}
	h->h.engine = box->engine;
	h->h.smart = sm;
	h->h.name = name;
	h->h.version = version;
	h->box = box;
	h->refs = 1;
	pthread_mutex_lock(&c->lock);
	box->refs++;
	old = c->cur;
	c->cur = h;
	pthread_mutex_unlock(&c->lock);
	if (old)
		components_release(c, &old->h);
	return 0;
}

int components_install(struct components *c, struct engine *e, struct smart *sm,
		       const char *name, int64_t version)
{
	struct box *box = calloc(1, sizeof(*box));

	if (!box) {
		log_msg(LOG_LVL_ERROR, "out of memory: %s version %lld not put in use", name,
			(long long)version);
		smart_free(sm);
		engine_free(e);
		return -1;
	}
	box->engine = e;
	if (install(c, box, sm, name, version) != 0) {
		engine_free(e);
		free(box);
		return -1;
	}
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

/* Loads a new engine from the version of component in dir. */
static struct engine *load_engine(const char *component, const char *dir, char *errbuf,
				  size_t errlen)
{
	struct engine_config cfg = { .official = true };
	enum engine_err err;
	struct engine *e;

	engine_limits_default(&cfg.limits);
	if (components_is_smart(component))
		cfg = smart_engine_config(&cfg);
	e = engine_new(&cfg, &err, errbuf, errlen);
	if (e && ((engine_has_databases(dir) && engine_load(e, dir, errbuf, errlen) != ENGINE_OK) ||
		  engine_compile(e, errbuf, errlen) != ENGINE_OK)) {
		engine_free(e);
		e = NULL;
	}
	return e;
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

/* Sets up smart protection for the agent pattern in dir: its source list
 * (the integrated server is reached at the server's own address), what
 * the sources are trusted by, this host's address family. Returns NULL
 * when it cannot (logged). */
struct smart *components_open_smart(struct agent *a, const json_t *list, const char *dir)
{
	json_t *u;
	const char *urls[32];
	struct smart_config cfg = { .sources = urls, .family = astate_network_family(a) };
	struct smart *sm = NULL;
	char msg[512], *trust, *pins = NULL;
	size_t i;

	trust = sps_trust(a, list, &pins);
	if (!trust)
		return NULL;
	cfg.ca_file = trust;
	cfg.pins = pins;
	cfg.proxy = json_string_value(json_object_get(list, "proxy"));
	json_array_foreach(json_object_get(list, "sources"), i, u) {
		if (!json_is_string(u) || cfg.nsources == sizeof(urls) / sizeof(*urls))
			continue;
		urls[cfg.nsources++] = strcmp(json_string_value(u), "integrated") == 0 ?
				       a->server : json_string_value(u);
	}
	sm = smart_new(dir, &cfg, msg, sizeof(msg));
	if (!sm)
		log_msg(LOG_LVL_ERROR, "smart protection: %s", msg);
	else
		log_msg(LOG_LVL_INFO, "smart protection: %zu source%s from list %lld "
			"(0: none matched, the integrated server), %s networks", cfg.nsources,
			cfg.nsources == 1 ? "" : "s",
			(long long)json_integer_value(json_object_get(list, "list")),
			astate_network_name(cfg.family));
	free(trust);
	free(pins);
	return sm;
}

/* The smart protection state for version of component (NULL: not smart
 * scan, or it cannot be set up, logged), made with the source list fetched
 * now, so that no answer cached for an older pattern survives. */
static struct smart *new_smart(struct agent *a, const char *component, int64_t version)
{
	char dir[PATH_MAX];

	if (!components_is_smart(component))
		return NULL;
	updater_path(a->comp_dir, component, version, dir, sizeof(dir));
	json_decref(a->sps_sources);
	a->sps_sources = components_sps_list(a);
	return a->sps_sources ? components_open_smart(a, a->sps_sources, dir) : NULL;
}

/* Fetches the source list again; when it changed, smart protection
 * starts over with it (the engine stays). */
void components_refresh_sources(struct agent *a)
{
	const struct components_handle *h = components_acquire(a->comps);
	json_t *list = h && h->smart ? components_sps_list(a) : NULL;
	char dir[PATH_MAX];
	struct smart *sm;

	if (!list || (a->sps_sources && json_equal(list, a->sps_sources)))
		goto out;
	log_msg(LOG_LVL_INFO, "smart protection: the source list changed");
	updater_path(a->comp_dir, h->name, h->version, dir, sizeof(dir));
	sm = components_open_smart(a, list, dir);
	if (!sm)
		goto out;
	install(a->comps, ((const struct holder *)h)->box, sm, h->name, h->version);
	json_decref(a->sps_sources);
	a->sps_sources = list;
	list = NULL;
out:
	json_decref(list);
	components_release(a->comps, h);
}

/* Makes the engine the one of component's installed version, loading it
 * when it is not (after an update by `ward-agent update`, say). */
bool components_use_installed(struct agent *a, const char *component)
{
	int64_t v = updater_installed(a->comp_dir, component);
	char dir[PATH_MAX], msg[ENGINE_ERRLEN];
	struct engine *e;

	if (!v || in_use(a->comps, component, v))
		return true;
	updater_path(a->comp_dir, component, v, dir, sizeof(dir));
	e = load_engine(component, dir, msg, sizeof(msg));
	if (!e) {
		snprintf(a->update_error, sizeof(a->update_error), "%s version %lld does not "
			 "load: %s", component, (long long)v, msg);
		log_msg(LOG_LVL_ERROR, "%s", a->update_error);
		return false;
	}
	log_msg(LOG_LVL_INFO, "engine: %s version %lld, %u signatures", component, (long long)v,
		engine_signatures(e));
	components_install(a->comps, e, new_smart(a, component, v), component, v);
	return true;
}

/* Brings component up to date and loads it: a new version is used only
 * once an engine has loaded it, else the installed one stays in use and
 * the failure is reported. Returns true when component is current (or
 * the server has none yet). Serialised with other agent processes on the
 * same state by a lock. */
bool components_update(struct agent *a, const char *component)
{
	char lock_path[PATH_MAX], dir[PATH_MAX], msg[ENGINE_ERRLEN];
	enum err err;
	struct engine *e = NULL;
	struct smart *sm;
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
		updater_path(a->comp_dir, component, staged, dir, sizeof(dir));
		e = load_engine(component, dir, msg, sizeof(msg));
		if (!e) {
			updater_discard(&a->up, component, staged);
			snprintf(a->update_error, sizeof(a->update_error), "%s version %lld does "
				 "not load (%s); version %lld stays in use", component,
				 (long long)staged, msg,
				 (long long)updater_installed(a->comp_dir, component));
			log_msg(LOG_LVL_ERROR, "update: %s", a->update_error);
			goto out;
		}
		/* Everything ready before the switch on disk, so that the new
		 * version is in use as soon as it is the one installed. */
		sm = new_smart(a, component, staged);
		if (updater_commit(&a->up, component, staged) != 0) {
			snprintf(a->update_error, sizeof(a->update_error), "%s: %s", component,
				 strerror(errno));
			smart_free(sm);
			engine_free(e);
			goto out;
		}
		log_msg(LOG_LVL_INFO, "update: %s version %lld in use, %u signatures", component,
			(long long)staged, engine_signatures(e));
		components_install(a->comps, e, sm, component, staged);
	}
	a->update_error[0] = '\0';
	ok = components_use_installed(a, component);
out:
	flock(lock, LOCK_UN);
	close(lock);
	return ok;
}
