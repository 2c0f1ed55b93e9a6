/* console.c -- the web console's files in memory (see console.h). */
#include "server/console.h"

#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"

#define MAX_DEPTH 4

struct console_file {
	char *name;       /* relative to the directory: "index.html", "js/app.js" */
	char *data;
	size_t len;
	const char *type;
	char etag[24];    /* "\"" + 20 hex digits of the BLAKE2b of data + "\"" */
};

struct console {
	struct console_file *files;
	size_t n, cap, bytes;
};

/* The content type of a file name by its extension. */
static const char *type_of(const char *name)
{
	static const char *const types[][2] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".json", "application/json" },
		{ ".txt", "text/plain; charset=utf-8" },
		{ ".woff2", "font/woff2" },
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	for (i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i][0]) == 0)
			return types[i][1];
	return "application/octet-stream";
}

/* Adds the file at path as name; false with errbuf set on failure. */
static bool add_file(struct console *c, const char *path, const char *name, char *errbuf,
		     size_t errlen)
{
	struct console_file *f, *grown;
	unsigned char h[10];
	char hex[21];
	size_t len = 0;
	char *data = util_read_file(path, CONSOLE_MAX_BYTES, &len);

	if (!data) {
		util_set_msg(errbuf, errlen, "console: %s: %s", path, strerror(errno));
		return false;
	}
	if (c->bytes + len > CONSOLE_MAX_BYTES) {
		util_set_msg(errbuf, errlen, "console: %s: the console's files pass %u bytes",
			     path, CONSOLE_MAX_BYTES);
		free(data);
		return false;
	}
	if (c->n == c->cap) {
		grown = realloc(c->files, (c->cap ? c->cap * 2 : 32) * sizeof(*grown));
		if (!grown) {
			free(data);
			util_set_msg(errbuf, errlen, "console: out of memory");
			return false;
		}
		c->files = grown;
		c->cap = c->cap ? c->cap * 2 : 32;
	}
	f = &c->files[c->n];
	f->name = strdup(name);
	if (!f->name) {
		free(data);
		util_set_msg(errbuf, errlen, "console: out of memory");
		return false;
	}
	f->data = data;
	f->len = len;
	f->type = type_of(name);
	crypto_generichash(h, sizeof(h), (const unsigned char *)data, len, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(f->etag, sizeof(f->etag), "\"%s\"", hex);
	c->n++;
	c->bytes += len;
	return true;
}

/* Adds the files under dir (named prefix + their name), depth levels deep. */
static bool add_dir(struct console *c, const char *dir, const char *prefix, int depth,
		    char *errbuf, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat sb;
	char path[4096], name[1024];
	bool ok = true;

	if (!d) {
		util_set_msg(errbuf, errlen, "console: %s: %s", dir, strerror(errno));
		return false;
	}
	while (ok && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &sb) != 0) {
			util_set_msg(errbuf, errlen, "console: %s: %s", path, strerror(errno));
			ok = false;
			break;
		}
		/* A folder's name ends in a slash: the prefix of what is in it. */
		snprintf(name, sizeof(name), "%s%s%s", prefix, e->d_name,
			 S_ISDIR(sb.st_mode) ? "/" : "");
		if (S_ISDIR(sb.st_mode) && depth > 0)
			ok = add_dir(c, path, name, depth - 1, errbuf, errlen);
		else if (S_ISREG(sb.st_mode))
			ok = add_file(c, path, name, errbuf, errlen);
	}
	closedir(d);
	return ok;
}

struct console *console_load(const char *dir, char *errbuf, size_t errlen)
{
	struct console *c = calloc(1, sizeof(*c));

	if (!c) {
		util_set_msg(errbuf, errlen, "console: out of memory");
		return NULL;
	}
	if (!add_dir(c, dir, "", MAX_DEPTH, errbuf, errlen)) {
		console_free(c);
		return NULL;
	}
	return c;
}

size_t console_files(const struct console *c)
{
	return c ? c->n : 0;
}

/* Answers with a redirection to the console's page. */
static void redirect(struct http_req *req)
{
	http_respond_json(req, 302, NULL);
	http_add_header(req, "Location", "/console/");
}

bool console_handle(const struct console *c, struct http_req *req)
{
	const char *path = http_req_path(req), *method = http_req_method(req), *name;
	size_t i;

	if (strcmp(path, "/") != 0 && strcmp(path, "/console") != 0 &&
	    strncmp(path, "/console/", 9) != 0)
		return false;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		http_respond_error(req, 405, "%s is not allowed on %s", method, path);
		return true;
	}
	if (strcmp(path, "/") == 0 || strcmp(path, "/console") == 0) {
		redirect(req);
		return true;
	}
	name = path[9] ? path + 9 : "index.html";
	for (i = 0; c && i < c->n; i++) {
		if (strcmp(c->files[i].name, name) == 0) {
			http_respond_static(req, c->files[i].data, c->files[i].len,
					    c->files[i].type, c->files[i].etag);
			return true;
		}
	}
	if (!c)
		http_respond_error(req, 404, "the web console is not installed on this server "
				   "(see server.console_dir)");
	else
		http_respond_error(req, 404, "no such console file: %s", path);
	return true;
}

void console_free(struct console *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->files[i].name);
		free(c->files[i].data);
	}
	free(c->files);
	free(c);
}
