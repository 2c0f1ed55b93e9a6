/* updater.c -- the agent's signature components (see updater.h). */
#include "common/updater.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/comp.h"
#include "common/log.h"
#include "common/util.h"

/* Seconds a payload download may take. */
#define DOWNLOAD_TIMEOUT 3600

void updater_path(const char *dir, const char *component, int64_t version, char *buf,
		  size_t len)
{
	snprintf(buf, len, "%s/%s/%lld", dir, component, (long long)version);
}

int64_t updater_installed(const char *dir, const char *component)
{
	char link[PATH_MAX], target[64], *end;
	ssize_t n;
	long long v;

	snprintf(link, sizeof(link), "%s/%s/current", dir, component);
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	v = strtoll(target, &end, 10);
	return *end == '\0' && v > 0 ? v : 0;
}

enum err updater_download(struct updater *u, const char *source, const char *file,
			  int64_t size, const char *path, char *errbuf, size_t errlen)
{
	char where[2048], msg[512];
	bool mirror = source != NULL;
	unsigned waited = 0, delay;
	long status, retry;
	enum err rerr;
	int fd;

	for (;;) {
		if (mirror)
			snprintf(where, sizeof(where), "%s%s%s", source,
				 source[strlen(source) - 1] == '/' ? "" : "/", file);
		else
			snprintf(where, sizeof(where), "/api/v1/agent/download?file=%s", file);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
			return ERR_IO;
		}
		rerr = rest_download(u->rc, where, fd, size, DOWNLOAD_TIMEOUT, &status, &retry,
				     msg, sizeof(msg));
		if (close(fd) != 0 && rerr == ERR_OK) {
			snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
			return ERR_IO;
		}
		if (rerr == ERR_OK && status == 200)
			return ERR_OK;
		if (mirror) {
			log_msg(LOG_LVL_WARN, "update: source %s: %s; downloading from the server",
				source, rerr == ERR_OK ? "it answered with an error" : msg);
			mirror = false;
			continue;
		}
		/* 503: the server's cap; 429: this agent's own. */
		if (rerr == ERR_OK && (status == 503 || status == 429) && waited < u->max_wait) {
			delay = retry > 0 && retry < 3600 ? (unsigned)retry : 5;
			delay += randombytes_uniform(delay + 1);
			log_msg(LOG_LVL_DEBUG, "update: the server is busy; again in %u s", delay);
			/* A second at a time: the agent may be stopping. */
			for (; delay && !(u->abort && atomic_load(u->abort)); delay--, waited++)
				sleep(1);
			if (!delay)
				continue;
			snprintf(errbuf, errlen, "download of %s: aborted", file);
			return ERR_NET;
		}
		if (rerr == ERR_OK)
			snprintf(errbuf, errlen, "download of %s: the server answered %ld", file,
				 status);
		else
			snprintf(errbuf, errlen, "download of %s: %s", file, msg);
		return ERR_NET;
	}
}

/* Walks the key rotation chain (oldest first) from key: each record the
 * trusted key signed moves trust to the key it names. Records from before
 * key, and any the trusted key did not sign, move nothing, so a forged one
 * can at most leave key where it is. Returns the number of moves; logs
 * each when log is set. */
static unsigned walk_rotations(const json_t *chain, unsigned char key[PKG_PK_BYTES], bool log)
{
	unsigned char next[PKG_PK_BYTES];
	char hex[2 * PKG_PK_BYTES + 1], msg[256];
	const json_t *rec;
	unsigned moved = 0;
	size_t i;

	json_array_foreach(chain, i, rec) {
		if (!json_is_string(rec) ||
		    pkg_rotate(json_string_value(rec), key, next, msg, sizeof(msg)) != ERR_OK)
			continue;
		memcpy(key, next, PKG_PK_BYTES);
		moved++;
		sodium_bin2hex(hex, sizeof(hex), next, PKG_PK_BYTES);
		if (log)
			log_msg(LOG_LVL_INFO, "update: the package signing key rotated to %s "
				"(signed by the key pinned before it)", hex);
	}
	return moved;
}

/* Follows the rotation chain from the pinned key. */
static void follow_rotations(struct updater *u, const json_t *chain)
{
	if (walk_rotations(chain, u->key, true))
		u->rotated = true;
}

/* The file naming the package signing key a version of component was
 * verified with, and that version ("KEYHEX VERSION"): the server whose
 * sequence the installed version belongs to. */
static void origin_path(const char *dir, const char *component, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/origin", dir, component);
}

/* Whether the installed version of component belongs to the version
 * sequence of the server whose key u pins: the key it was verified with
 * is that key, or leads to it by the server's rotation chain. A version
 * the record does not name (an update cut short between the two, or one
 * from before records were kept) belongs to none. */
static bool same_sequence(const struct updater *u, const char *component, const json_t *chain)
{
	unsigned char key[PKG_PK_BYTES];
	char path[PATH_MAX], *text, *end;
	size_t got = 0;
	bool ok;

	origin_path(u->dir, component, path, sizeof(path));
	text = util_read_file(path, 256, NULL);
	ok = text && strlen(text) > 2 * PKG_PK_BYTES + 1 && text[2 * PKG_PK_BYTES] == ' ' &&
	     sodium_hex2bin(key, sizeof(key), text, 2 * PKG_PK_BYTES, NULL, &got, NULL) == 0 &&
	     got == PKG_PK_BYTES &&
	     strtoll(text + 2 * PKG_PK_BYTES + 1, &end, 10) ==
	     updater_installed(u->dir, component) && *end == '\n';
	free(text);
	if (!ok)
		return false;
	walk_rotations(chain, key, false);
	return sodium_memcmp(key, u->key, PKG_PK_BYTES) == 0;
}

/* Where the installed version's directory waits while a version of the
 * same number from another server's sequence is put together in its
 * place (see apply_step()); restored by updater_discard(). */
static void aside_path(const char *dir, const char *component, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/.previous", dir, component);
}

/* Asks the server how to bring component from have to the newest. */
static enum err plan(struct updater *u, const char *component, int64_t have, bool full,
		     json_t **answer, char *errbuf, size_t errlen)
{
	json_t *body = json_pack("{ss sI sb}", "component", component, "have", (json_int_t)have,
				 "full", full);
	const char *msg;
	char net[512];
	long status;
	enum err rerr;

	*answer = NULL;
	if (!body)
		return ERR_NOMEM;
	rerr = rest_call(u->rc, "POST", "/api/v1/agent/update", body, 60, &status, answer, net,
			 sizeof(net));
	json_decref(body);
	if (rerr != ERR_OK) {
		snprintf(errbuf, errlen, "update of %s: %s", component, net);
		return ERR_NET;
	}
	if (status == 200 && json_is_array(json_object_get(*answer, "steps"))) {
		follow_rotations(u, json_object_get(*answer, "rotations"));
		return ERR_OK;
	}
	msg = json_string_value(json_object_get(*answer, "error"));
	snprintf(errbuf, errlen, "update of %s: the server answered %ld: %s", component, status,
		 msg ? msg : "(no message)");
	json_decref(*answer);
	*answer = NULL;
	return status == 404 ? ERR_NONE : ERR_NET;
}

/* The update source the server names for this agent; NULL: the server. */
static char *source_url(struct updater *u)
{
	json_t *answer = NULL;
	const char *url;
	char msg[512], *out = NULL;
	long status;

	if (rest_call(u->rc, "GET", "/api/v1/agent/update-source", NULL, 60, &status, &answer,
		      msg, sizeof(msg)) == ERR_OK && status == 200 &&
	    (url = json_string_value(json_object_get(answer, "source"))))
		out = strdup(url);
	json_decref(answer);
	return out;
}

/* What one step of a plan does to the installed version. */
struct step {
	struct updater *u;
	const char *component;
	const char *source;
	int64_t cur;           /* the version the step starts from (0: none) */
	json_t *manifest;
	bool delta_failed;     /* the step was a delta that did not fit */
};

/* Verifies, downloads and puts together one step into DIR/NAME/VERSION. */
static enum err apply_step(struct step *s, const json_t *step, char *errbuf,
			   size_t errlen)
{
	struct updater *u = s->u;
	const char *env = json_string_value(json_object_get(step, "envelope"));
	const char *file = json_string_value(json_object_get(step, "file"));
	json_int_t size = json_integer_value(json_object_get(step, "size"));
	char base[PATH_MAX], tmp[PATH_MAX], work[PATH_MAX], out[PATH_MAX], to[PATH_MAX];
	char aside[PATH_MAX], msg[512];
	const char *pname, *comp;
	enum err err;
	enum err cerr;
	int64_t version, from;

	json_decref(s->manifest);
	s->manifest = NULL;
	if (!env || !file || size < 0 ||
	    pkg_open(env, strlen(env), u->key, &s->manifest, msg, sizeof(msg)) != ERR_OK ||
	    pkg_check_version(s->manifest, s->cur, msg, sizeof(msg)) != ERR_OK) {
		snprintf(errbuf, errlen, "package %s refused: %s", file ? file : "?",
			 env && file ? msg : "malformed plan");
		return ERR_REFUSED;
	}
	comp = json_string_value(json_object_get(s->manifest, "component"));
	pname = json_string_value(json_object_get(json_array_get(
		json_object_get(s->manifest, "payloads"), 0), "name"));
	version = json_integer_value(json_object_get(s->manifest, "version"));
	from = json_integer_value(json_object_get(s->manifest, "base"));
	if (strcmp(comp, s->component) != 0 || !pname || strcmp(pname, file) != 0) {
		snprintf(errbuf, errlen, "package %s refused: it is not the %s package planned",
			 file, s->component);
		return ERR_REFUSED;
	}
	if (from && from != s->cur) {
		snprintf(errbuf, errlen, "delta %s applies to version %lld, not %lld", file,
			 (long long)from, (long long)s->cur);
		s->delta_failed = true;
		return ERR_REFUSED;
	}
	snprintf(tmp, sizeof(tmp), "%s/%s/.download", u->dir, s->component);
	snprintf(work, sizeof(work), "%s/%s/.work", u->dir, s->component);
	snprintf(out, sizeof(out), "%s/%s/.new", u->dir, s->component);
	updater_path(u->dir, s->component, s->cur, base, sizeof(base));
	updater_path(u->dir, s->component, version, to, sizeof(to));
	err = updater_download(u, s->source, file, size, tmp, errbuf, errlen);
	/* A source that served something else is passed over for the server. */
	if (err == ERR_OK && s->source &&
	    pkg_check_payload(s->manifest, pname, tmp, msg, sizeof(msg)) != ERR_OK) {
		log_msg(LOG_LVL_WARN, "update: source %s served a bad %s (%s); downloading from "
			"the server", s->source, file, msg);
		err = updater_download(u, NULL, file, size, tmp, errbuf, errlen);
	}
	if (err != ERR_OK)
		goto out;
	if (pkg_check_payload(s->manifest, pname, tmp, msg, sizeof(msg)) != ERR_OK) {
		snprintf(errbuf, errlen, "package %s refused: %s", file, msg);
		err = ERR_REFUSED;
		goto out;
	}
	util_remove_tree(work);
	util_remove_tree(out);
	if (mkdir(work, 0700) != 0) {
		snprintf(errbuf, errlen, "%s: %s", work, strerror(errno));
		err = ERR_IO;
		goto out;
	}
	cerr = comp_assemble(s->manifest, tmp, from ? base : NULL, work, out, msg, sizeof(msg));
	if (cerr != ERR_OK) {
		snprintf(errbuf, errlen, "%s version %lld: %s", s->component, (long long)version,
			 msg);
		s->delta_failed = from && (cerr == ERR_BASE || cerr == ERR_HASH);
		err = cerr == ERR_IO || cerr == ERR_NOMEM ? ERR_IO : ERR_REFUSED;
		goto out;
	}
	/* Starting over with another server's sequence, the new version may
	 * have the number of the one in use: that one is kept aside until
	 * the new one is committed or discarded. */
	if (version == updater_installed(u->dir, s->component)) {
		aside_path(u->dir, s->component, aside, sizeof(aside));
		if (util_remove_tree(aside) != 0 || rename(to, aside) != 0) {
			snprintf(errbuf, errlen, "%s: %s", aside, strerror(errno));
			err = ERR_IO;
			goto out;
		}
	}
	if (util_remove_tree(to) != 0 || rename(out, to) != 0) {
		snprintf(errbuf, errlen, "%s: %s", to, strerror(errno));
		err = ERR_IO;
		goto out;
	}
	log_msg(LOG_LVL_INFO, "update: %s %lld -> %lld by %s (%lld bytes)", s->component,
		(long long)s->cur, (long long)version, from ? "delta" : "full package",
		(long long)size);
	s->cur = version;
out:
	unlink(tmp);
	util_remove_tree(work);
	util_remove_tree(out);
	return err;
}

enum err updater_fetch(struct updater *u, const char *component, int64_t *staged,
		       char *errbuf, size_t errlen)
{
	int64_t have = updater_installed(u->dir, component);
	struct step s = { .u = u, .component = component };
	enum err err;
	char *source = NULL, path[PATH_MAX];
	json_t *answer = NULL, *st;
	bool full = false;
	size_t i;

	*staged = 0;
	snprintf(path, sizeof(path), "%s/%s", u->dir, component);
	if (util_mkdir_p(path, 0700) != 0) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return ERR_IO;
	}
	/* A version kept aside by an update cut short (a crash before the
	 * commit) goes back in place. */
	updater_discard(u, component, have);
again:
	err = plan(u, component, have, full, &answer, errbuf, errlen);
	if (err != ERR_OK)
		goto out;
	/* Version numbers count within one server's sequence: a version from
	 * another server (before a move), or newer than the server's newest,
	 * is no base for this server's packages. Start over with the full
	 * package. */
	if (have > 0 && (!same_sequence(u, component, json_object_get(answer, "rotations")) ||
			 json_integer_value(json_object_get(answer, "version")) < have)) {
		log_msg(LOG_LVL_WARN, "update: %s version %lld is not of this server's sequence "
			"of versions (another server's, or newer than its newest %lld); "
			"starting over with its full package", component, (long long)have,
			(long long)json_integer_value(json_object_get(answer, "version")));
		have = 0;
		full = true;
		json_decref(answer);
		answer = NULL;
		goto again;
	}
	if (json_array_size(json_object_get(answer, "steps")) == 0)
		goto out;
	if (!source)
		source = source_url(u);
	s.source = source;
	s.cur = have;
	s.delta_failed = false;
	json_array_foreach(json_object_get(answer, "steps"), i, st) {
		err = apply_step(&s, st, errbuf, errlen);
		if (err != ERR_OK)
			break;
		/* Versions passed through on the way are not kept. */
		if (i > 0) {
			updater_path(u->dir, component, json_integer_value(json_object_get(
				s.manifest, "base")), path, sizeof(path));
			util_remove_tree(path);
		}
	}
	if (err != ERR_OK && s.delta_failed && !full) {
		log_msg(LOG_LVL_WARN, "update: %s; taking the full package", errbuf);
		if (s.cur != have)
			updater_discard(u, component, s.cur);
		full = true;
		json_decref(answer);
		answer = NULL;
		goto again;
	}
	if (err == ERR_OK)
		*staged = s.cur;
	else if (s.cur != have)
		updater_discard(u, component, s.cur);
out:
	if (err != ERR_OK && err != ERR_NONE)
		log_msg(LOG_LVL_ERROR, "update: %s; version %lld stays in use", errbuf,
			(long long)updater_installed(u->dir, component));
	json_decref(s.manifest);
	json_decref(answer);
	free(source);
	return err;
}

int updater_commit(const struct updater *u, const char *component, int64_t version)
{
	char link[PATH_MAX], tmp[PATH_MAX], target[32], dir[PATH_MAX];
	char hex[2 * PKG_PK_BYTES + 1], rec[2 * PKG_PK_BYTES + 32];
	struct dirent *de;
	DIR *dp;

	snprintf(link, sizeof(link), "%s/%s/current", u->dir, component);
	snprintf(target, sizeof(target), "%lld", (long long)version);
	/* The record first: it names the version, so a crash before the
	 * switch leaves it naming one not in use, and the next update merely
	 * starts over. */
	sodium_bin2hex(hex, sizeof(hex), u->key, sizeof(u->key));
	snprintf(rec, sizeof(rec), "%s %lld\n", hex, (long long)version);
	origin_path(u->dir, component, tmp, sizeof(tmp));
	if (util_replace_file(tmp, rec, strlen(rec), 0600) != 0)
		log_msg(LOG_LVL_ERROR, "%s: %s; the next update starts over", tmp,
			strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s/%s/.current", u->dir, component);
	unlink(tmp);
	if (symlink(target, tmp) != 0 || rename(tmp, link) != 0)
		return -1;
	aside_path(u->dir, component, tmp, sizeof(tmp));
	util_remove_tree(tmp);
	snprintf(dir, sizeof(dir), "%s/%s", u->dir, component);
	dp = opendir(dir);
	while (dp && (de = readdir(dp))) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "current") == 0 ||
		    strcmp(de->d_name, "origin") == 0 || strcmp(de->d_name, target) == 0)
			continue;
		snprintf(tmp, sizeof(tmp), "%.3800s/%s", dir, de->d_name);
		util_remove_tree(tmp);
	}
	if (dp)
		closedir(dp);
	return 0;
}

void updater_discard(const struct updater *u, const char *component, int64_t version)
{
	char path[PATH_MAX], aside[PATH_MAX];
	struct stat st;

	if (version <= 0)
		return;
	updater_path(u->dir, component, version, path, sizeof(path));
	aside_path(u->dir, component, aside, sizeof(aside));
	if (version != updater_installed(u->dir, component)) {
		util_remove_tree(path);
		return;
	}
	/* The installed version was kept aside for one of the same number;
	 * the record may name the one staged by now: it goes, and the next
	 * update starts over. */
	if (lstat(aside, &st) != 0)
		return;
	origin_path(u->dir, component, aside, sizeof(aside));
	unlink(aside);
	aside_path(u->dir, component, aside, sizeof(aside));
	if (util_remove_tree(path) != 0 || rename(aside, path) != 0)
		log_msg(LOG_LVL_ERROR, "%s: cannot restore the installed version: %s", path,
			strerror(errno));
}

bool updater_load_pin(struct updater *u, const json_t *cred)
{
	const char *key = json_string_value(json_object_get(cred, "package_key"));
	size_t got = 0;

	return key && strlen(key) == 2 * PKG_PK_BYTES &&
	       sodium_hex2bin(u->key, sizeof(u->key), key, strlen(key), NULL, &got, NULL) == 0 &&
	       got == PKG_PK_BYTES;
}

void updater_store_pin(struct updater *u, const char *path)
{
	json_t *cred = json_load_file(path, 0, NULL);
	char hex[2 * PKG_PK_BYTES + 1];
	int rc = -1;

	u->rotated = false;
	sodium_bin2hex(hex, sizeof(hex), u->key, sizeof(u->key));
	if (cred && json_object_set_new(cred, "package_key", json_string(hex)) == 0)
		rc = util_write_json(path, cred);
	else
		errno = cred ? ENOMEM : EINVAL;
	json_decref(cred);
	if (rc != 0)
		log_msg(LOG_LVL_ERROR, "%s: cannot store the rotated package signing key: %s",
			path, strerror(errno));
}

enum err updater_open_signed(struct updater *u, const json_t *instruction, json_t **content,
			     char *errbuf, size_t errlen)
{
	const char *env = json_string_value(json_object_get(instruction, "signed"));

	*content = NULL;
	if (!env) {
		snprintf(errbuf, errlen, "not signed");
		return ERR_FORMAT;
	}
	follow_rotations(u, json_object_get(instruction, "rotations"));
	return pkg_open_signed(env, strlen(env), u->key, content, errbuf, errlen);
}
