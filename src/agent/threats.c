/* threats.c -- the threats found and left in place (see threats.h). */
#include "agent/threats.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/astate.h"
#include "common/log.h"
#include "common/state.h"
#include "common/util.h"

/* Threats kept at most: past it the oldest go (the count a posture report
 * needs is "any"; the newest say what). */
#define MAX_THREATS 1000

/* Threats a status names (the count covers all). */
#define STATUS_NEWEST 5

/* Bytes of a path or name a status carries at most (the server takes
 * strings of 256 bytes, without control characters). */
#define STATUS_TEXT 200

/* An action that took the threat away: the file is in the quarantine, gone
 * or renamed out of use. "pass" left it; "deny" (real time's block mode)
 * only kept it from being opened once. */
static bool removing(const char *action)
{
	return action && (strcmp(action, "quarantine") == 0 || strcmp(action, "delete") == 0 ||
			  strcmp(action, "rename") == 0);
}

static const char *text(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Whether detection d left its file's threat where it was. */
static bool left(const json_t *d)
{
	const char *r1 = text(d, "action_result"), *r2 = text(d, "second_result");

	if (removing(text(d, "action")) && r1 && strcmp(r1, "ok") == 0)
		return false;
	return !(removing(text(d, "second_action")) && r2 && strcmp(r2, "ok") == 0);
}

/* Takes the list's lock (every process and thread that changes it does):
 * the descriptor to close, or -1. */
static int lock_list(const struct agent *a)
{
	char *path = astate_file(a, "threats.json.lock");
	int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;

	free(path);
	if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The list kept (a new array; empty when none), and its path in *path
 * (caller frees). */
static json_t *load(const struct agent *a, char **path)
{
	json_t *list;

	*path = astate_file(a, "threats.json");
	list = *path ? json_load_file(*path, 0, NULL) : NULL;
	if (!json_is_array(list)) {
		json_decref(list);
		list = json_array();
	}
	return list;
}

static void save(const char *path, json_t *list)
{
	if (!path || !list || !state_write_json(path, list))
		log_msg(LOG_LVL_WARN, "%s: the threats left in place could not be kept",
			path ? path : "threats.json");
}

/* Removes the entries of list for path. */
static void forget(json_t *list, const char *path)
{
	size_t i = 0;

	while (i < json_array_size(list)) {
		if (strcmp(text(json_array_get(list, i), "path"), path) == 0)
			json_array_remove(list, i);
		else
			i++;
	}
}

void threats_note(const struct agent *a, const json_t *found)
{
	int lock = lock_list(a);
	const char *path, *source;
	char *file = NULL;
	json_t *list, *d;
	size_t i;

	if (lock < 0)
		return;
	list = load(a, &file);
	json_array_foreach(found, i, d) {
		path = text(d, "path");
		source = text(d, "source");
		/* What clamd's clients ask about is theirs to act on (mail, an
		 * upload): not a threat on this host's files. */
		if (!path || (source && strcmp(source, "clamd") == 0))
			continue;
		forget(list, path);
		if (left(d))
			json_array_append_new(list, json_pack("{sO sO sO*}", "time",
					      json_object_get(d, "time"), "path",
					      json_object_get(d, "path"), "name",
					      json_object_get(d, "name")));
	}
	while (json_array_size(list) > MAX_THREATS)
		json_array_remove(list, 0);
	save(file, list);
	json_decref(list);
	free(file);
	close(lock);
}

/* Whether path is tree or beneath it. */
static bool beneath(const char *path, const char *tree)
{
	size_t n = strlen(tree);

	while (n > 1 && tree[n - 1] == '/')
		n--;
	return strncmp(path, tree, n) == 0 &&
	       (path[n] == '\0' || path[n] == '/' || (n == 1 && tree[0] == '/'));
}

static bool beneath_any(const char *path, const char *const *trees, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (beneath(path, trees[i]))
			return true;
	return false;
}

void threats_full_scan(const struct agent *a, int64_t started, const char *const *roots,
		       size_t nroots, const char *const *exclude, size_t nexclude)
{
	int lock = lock_list(a);
	const char *path;
	char *file = NULL;
	json_t *list, *t;
	size_t i = 0;

	if (lock < 0)
		return;
	list = load(a, &file);
	while (i < json_array_size(list)) {
		t = json_array_get(list, i);
		path = text(t, "path");
		if (json_integer_value(json_object_get(t, "time")) < started && path &&
		    beneath_any(path, roots, nroots) && !beneath_any(path, exclude, nexclude))
			json_array_remove(list, i);
		else
			i++;
	}
	save(file, list);
	json_decref(list);
	free(file);
	close(lock);
}

/* Whether the file at path (as a detection names it) is gone. A name with
 * bytes that are not UTF-8 is kept written as \xNN: it cannot be looked
 * up, and stays until a full scan. */
static bool gone(const char *path)
{
	struct stat st;

	return !strstr(path, "\\x") && lstat(path, &st) != 0 && (errno == ENOENT ||
								  errno == ENOTDIR);
}

/* s as a status carries it: control characters escaped, at most
 * STATUS_TEXT bytes, cut between characters. */
static json_t *status_text(const char *s)
{
	char buf[STATUS_TEXT + 1];
	size_t n = util_escape(buf, sizeof(buf), s ? s : "");

	while (n > 0 && !util_utf8_valid(buf, n))
		n--;
	buf[n] = '\0';
	return json_string(buf);
}

json_t *threats_status(const struct agent *a)
{
	int lock = lock_list(a);
	char *file = NULL;
	json_t *list, *newest, *out, *t;
	size_t i = 0, n, before;

	if (lock < 0)
		return json_null();
	list = load(a, &file);
	before = json_array_size(list);
	while (i < json_array_size(list)) {
		if (gone(text(json_array_get(list, i), "path")))
			json_array_remove(list, i);
		else
			i++;
	}
	if (json_array_size(list) != before)
		save(file, list);
	n = json_array_size(list);
	newest = json_array();
	for (i = n > STATUS_NEWEST ? n - STATUS_NEWEST : 0; newest && i < n; i++) {
		t = json_array_get(list, i);
		json_array_append_new(newest, json_pack("{sO* so so}", "time",
				      json_object_get(t, "time"), "path",
				      status_text(text(t, "path")), "name",
				      status_text(text(t, "name"))));
	}
	out = newest ? json_pack("{sI so}", "count", (json_int_t)n, "newest", newest) : NULL;
	json_decref(list);
	free(file);
	close(lock);
	return out ? out : json_null();
}
