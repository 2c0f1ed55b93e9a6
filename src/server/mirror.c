/* mirror.c -- copies of the packages another server on the database built
 * (see mirror.h). */
#include "server/mirror.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/comp.h"
#include "common/log.h"
#include "common/pack.h"
#include "common/util.h"
#include "sps/pattern.h"

/* How often the package table is looked at. */
#define LOOK_MS 2000

/* Parts copied per step: the loop is held for about as many database
 * round trips of STORE_PART_BYTES. */
#define PARTS_PER_STEP 4

/* A copy that failed is tried again after this long. */
#define RETRY_MS 30000

/* Putting one component's version together, on a thread. */
struct assembly {
	int c;                      /* the component */
	int64_t version;
	json_t *manifest;           /* its full package's, checked */
	char payload[4200], components_dir[4096];
	bool load_pattern;
	/* Set by the thread. */
	bool failed;
	char msg[512];
	struct sps_pattern *pattern;
	atomic_bool done;
};

struct mirror {
	struct store *st;
	const char *packages_dir, *components_dir;
	const unsigned char *pk;
	struct sps_service *sps;
	uint64_t next_look_ms, retry_ms;
	bool current;
	/* The copy under way (fd >= 0). */
	int fd;
	char file[256], tmp[4400];
	char *envelope;
	int64_t size, part, parts;
	/* The assembly under way. */
	struct assembly *job;
	pthread_t thread;
	int64_t assembled[COMP_COUNT];   /* the version last put together (or failed) */
};

struct mirror *mirror_new(struct store *st, const char *packages_dir, const char *components_dir,
			  const unsigned char *pk, struct sps_service *sps)
{
	struct mirror *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->st = st;
	m->packages_dir = packages_dir;
	m->components_dir = components_dir;
	m->pk = pk;
	m->sps = sps;
	m->fd = -1;
	return m;
}

/* Ends the copy under way, removing its file unless it was moved. */
static void end_copy(struct mirror *m)
{
	if (m->fd >= 0) {
		close(m->fd);
		unlink(m->tmp);
	}
	m->fd = -1;
	free(m->envelope);
	m->envelope = NULL;
}

static void assembly_free(struct assembly *a)
{
	if (!a)
		return;
	json_decref(a->manifest);
	if (a->pattern)
		sps_pattern_free(a->pattern);
	free(a);
}

void mirror_free(struct mirror *m)
{
	if (!m)
		return;
	if (m->job) {
		pthread_join(m->thread, NULL);
		assembly_free(m->job);
	}
	end_copy(m);
	free(m);
}

bool mirror_current(const struct mirror *m)
{
	return m->current;
}

void mirror_keep_only(const char *dir, int64_t version)
{
	char path[4400];
	struct dirent *de;
	DIR *dp = opendir(dir);

	while (dp && (de = readdir(dp))) {
		if (de->d_name[0] == '.' || strtoll(de->d_name, NULL, 10) == version)
			continue;
		snprintf(path, sizeof(path), "%.4000s/%s", dir, de->d_name);
		util_remove_tree(path);
	}
	if (dp)
		closedir(dp);
}

/* The thread: puts the version together beside the others, moves it into
 * place, loads its Smart Scan Pattern. */
static void *assemble(void *arg)
{
	struct assembly *a = arg;
	const char *name = comp_table()[a->c].name;
	char dir[4200], work[4300], out[4300], to[4300], path[4400];

	snprintf(dir, sizeof(dir), "%s/%s", a->components_dir, name);
	snprintf(work, sizeof(work), "%s/.work", dir);
	snprintf(out, sizeof(out), "%s/.new", dir);
	snprintf(to, sizeof(to), "%s/%lld", dir, (long long)a->version);
	util_remove_tree(work);
	util_remove_tree(out);
	if (util_mkdir_p(work, 0700) != 0) {
		util_set_msg(a->msg, sizeof(a->msg), "%s: %s", work, strerror(errno));
		a->failed = true;
	} else if (comp_assemble(a->manifest, a->payload, NULL, work, out, a->msg,
				 sizeof(a->msg)) != ERR_OK) {
		a->failed = true;
	} else if (util_remove_tree(to) != 0 || rename(out, to) != 0) {
		util_set_msg(a->msg, sizeof(a->msg), "%s: %s", to, strerror(errno));
		a->failed = true;
	}
	util_remove_tree(work);
	util_remove_tree(out);
	if (!a->failed && a->load_pattern) {
		snprintf(path, sizeof(path), "%s/%s", to, COMP_HASHES_FILE);
		a->pattern = sps_pattern_load(path, a->version, a->msg, sizeof(a->msg));
		a->failed = !a->pattern;
	}
	if (!a->failed)
		mirror_keep_only(dir, a->version);
	atomic_store(&a->done, true);
	return NULL;
}

/* Collects a finished assembly. */
static void collect(struct mirror *m)
{
	struct assembly *a = m->job;
	const char *title = comp_table()[a->c].title;

	if (!atomic_load(&a->done))
		return;
	pthread_join(m->thread, NULL);
	m->job = NULL;
	m->assembled[a->c] = a->version;
	if (a->failed) {
		log_msg(LOG_LVL_ERROR, "update: %s version %lld, copied from the database, could "
			"not be put together: %s", title, (long long)a->version, a->msg);
	} else {
		log_msg(LOG_LVL_INFO, "update: %s version %lld in place, as another server built "
			"it",
			title, (long long)a->version);
		if (a->pattern) {
			log_msg(LOG_LVL_INFO, "sps: Smart Scan Pattern version %lld in use, %llu "
				"entries", (long long)a->version,
				(unsigned long long)sps_pattern_entries(a->pattern));
			sps_service_set(m->sps, a->pattern);
			a->pattern = NULL;
		}
	}
	assembly_free(a);
	m->next_look_ms = 0;
}

/* Starts putting component c's version together from its full package
 * (its file in place, its envelope env). */
static void start_assembly(struct mirror *m, int c, int64_t version, const char *file,
			   const char *env)
{
	struct assembly *a = calloc(1, sizeof(*a));
	char msg[512];

	if (!a)
		return;
	a->c = c;
	a->version = version;
	a->load_pattern = c == COMP_SMART && m->sps;
	snprintf(a->payload, sizeof(a->payload), "%s/%s", m->packages_dir, file);
	snprintf(a->components_dir, sizeof(a->components_dir), "%s", m->components_dir);
	if (pkg_open(env, strlen(env), m->pk, &a->manifest, msg, sizeof(msg)) != ERR_OK) {
		log_msg(LOG_LVL_ERROR, "update: package %s refused: %s", file, msg);
		m->assembled[c] = version;
		assembly_free(a);
		return;
	}
	if (pthread_create(&m->thread, NULL, assemble, a) != 0) {
		log_msg(LOG_LVL_ERROR, "update: cannot start a thread to put %s together", file);
		assembly_free(a);
		return;
	}
	m->job = a;
}

/* Starts copying file (size bytes, envelope env) from the database. */
static void start_copy(struct mirror *m, const char *file, int64_t size, const char *env)
{
	snprintf(m->file, sizeof(m->file), "%s", file);
	snprintf(m->tmp, sizeof(m->tmp), "%s/.copy-%s", m->packages_dir, file);
	m->envelope = strdup(env);
	m->size = size;
	m->part = 0;
	m->parts = (size + STORE_PART_BYTES - 1) / STORE_PART_BYTES;
	m->fd = m->envelope ? open(m->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
	if (m->fd < 0) {
		log_msg(LOG_LVL_ERROR, "update: %s: %s", m->tmp, m->envelope ? strerror(errno) :
			"out of memory");
		end_copy(m);
	}
}

/* Copies a few more parts of the file under way; at its end, checks the
 * copy against the envelope and moves it into place. */
static void copy_parts(struct mirror *m, uint64_t now_ms)
{
	json_t *manifest = NULL;
	char msg[512], to[4400];
	const char *why = NULL;
	void *data;
	size_t len;
	int i;

	for (i = 0; i < PARTS_PER_STEP && m->part < m->parts; i++, m->part++) {
		if (store_package_part(m->st, m->file, m->part, &data, &len) != SERR_OK) {
			why = "a part is missing from the database (the package was removed?)";
			break;
		}
		if (util_write_all(m->fd, data, len) != 0)
			why = strerror(errno);
		free(data);
		if (why)
			break;
	}
	if (!why && m->part < m->parts)
		return;
	if (!why && (fsync(m->fd) != 0 ||
		     pkg_open(m->envelope, strlen(m->envelope), m->pk, &manifest, msg,
			      sizeof(msg)) != ERR_OK ||
		     pkg_check_payload(manifest, m->file, m->tmp, msg, sizeof(msg)) != ERR_OK))
		why = msg;
	snprintf(to, sizeof(to), "%s/%s", m->packages_dir, m->file);
	if (!why && rename(m->tmp, to) != 0)
		why = strerror(errno);
	json_decref(manifest);
	if (why) {
		log_msg(LOG_LVL_ERROR, "update: the copy of package %s from the database is "
			"refused: %s; trying again in %d s", m->file, why, RETRY_MS / 1000);
		m->retry_ms = now_ms + RETRY_MS;
	} else {
		close(m->fd);
		m->fd = -1;
		log_msg(LOG_LVL_INFO, "update: package %s (%lld bytes) copied from the database",
			m->file, (long long)m->size);
		m->next_look_ms = 0;
	}
	end_copy(m);
}

/* Whether the package file is in place with its size. */
static bool in_place(const struct mirror *m, const char *file, int64_t size)
{
	char path[4400];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", m->packages_dir, file);
	return stat(path, &sb) == 0 && sb.st_size == size;
}

/* Removes the files of the packages directory no package names. */
static void remove_unlisted(const struct mirror *m, const json_t *listed)
{
	char path[4400];
	struct dirent *de;
	DIR *dp = opendir(m->packages_dir);

	while (dp && (de = readdir(dp))) {
		if (de->d_name[0] == '.' || json_object_get(listed, de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", m->packages_dir, de->d_name);
		if (unlink(path) == 0)
			log_msg(LOG_LVL_INFO, "update: package %s removed, as another server "
				"removed it", de->d_name);
	}
	if (dp)
		closedir(dp);
}

/* Looks at the package table: the first file missing here is copied, or
 * else the newest version of a component missing from the components
 * directory is put together. */
static void look(struct mirror *m, uint64_t now_ms)
{
	json_t *packages, *p, *listed = json_object(), *newest[COMP_COUNT] = { NULL };
	const char *file, *env;
	char dir[4400];
	struct stat sb;
	int64_t size, v;
	bool current = true;
	size_t i;
	int c;

	if (!listed)
		return;
	for (c = 0; c < COMP_COUNT; c++) {
		packages = NULL;
		if (store_packages(m->st, comp_table()[c].name, &packages) != SERR_OK)
			goto out;
		/* The newest first: what agents ask for next. */
		for (i = json_array_size(packages); i-- > 0;) {
			p = json_array_get(packages, i);
			file = json_string_value(json_object_get(p, "file"));
			size = json_integer_value(json_object_get(p, "size"));
			env = json_string_value(json_object_get(p, "envelope"));
			if (!file || !env || !pack_plain_name(file))
				continue;
			json_object_set_new(listed, file, json_true());
			if (json_integer_value(json_object_get(p, "base")) == 0 && !newest[c])
				newest[c] = json_incref(p);
			if (m->fd < 0 && now_ms >= m->retry_ms && !in_place(m, file, size))
				start_copy(m, file, size, env);
		}
		json_decref(packages);
	}
	remove_unlisted(m, listed);
	for (c = 0; c < COMP_COUNT; c++) {
		if (!newest[c])
			continue;
		v = json_integer_value(json_object_get(newest[c], "version"));
		snprintf(dir, sizeof(dir), "%s/%s/%lld", m->components_dir, comp_table()[c].name,
			 (long long)v);
		if (stat(dir, &sb) == 0)
			continue;
		current = false;
		file = json_string_value(json_object_get(newest[c], "file"));
		env = json_string_value(json_object_get(newest[c], "envelope"));
		size = json_integer_value(json_object_get(newest[c], "size"));
		if (!m->job && m->assembled[c] != v && in_place(m, file, size))
			start_assembly(m, c, v, file, env);
	}
	m->current = current && m->fd < 0;
out:
	for (c = 0; c < COMP_COUNT; c++)
		json_decref(newest[c]);
	json_decref(listed);
}

void mirror_step(struct mirror *m, uint64_t now_ms)
{
	if (m->job)
		collect(m);
	if (m->fd >= 0) {
		copy_parts(m, now_ms);
		return;
	}
	if (now_ms < m->next_look_ms)
		return;
	m->next_look_ms = now_ms + LOOK_MS;
	look(m, now_ms);
}
