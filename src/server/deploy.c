/* deploy.c -- deploying agents: the package directory, the install
 * script, and each deployment from the script's download to the agent it
 * enrolled (see deploy.h). */
#include "server/deploy.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/http.h"
#include "common/log.h"
#include "common/util.h"
#include "server/config.h"
#include "server/enroll.h"
#include "server/store.h"

#define PACKAGE "ward-agent"
#define MAX_FILES 64                 /* packages looked at in the directory */
#define MAX_PACKAGE (512LL << 20)    /* bytes of one package */
#define MAX_CONTROL_TAR (4 << 20)    /* bytes of a package's control member */
#define MAX_CONTROL (64 << 10)       /* bytes of its control file */
#define MAX_FIELD 128                /* bytes of a field's value we take */
#define MAX_REPORT 4096              /* bytes of a failure's text kept */
#define SWEEP_MS 10000
#define LIST_LIMIT 500
#define ALNUM "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* Where a script may say it failed, and what each means. */
static const char *const steps[] = { "root", "system", "package", "enrolled", "download",
				     "checksum", "install", "enroll", "start", NULL };

struct deploy {
	const struct config *cfg;
	struct store *st;
	json_t *cache;  /* file name -> {"size", "mtime", "row" | "error"} */
};

/* Ends the deployments whose deadline passed, each logged. */
static void sweep(void *arg)
{
	struct deploy *d = arg;
	int64_t now = (int64_t)time(NULL);
	json_t *expired = NULL, *row;
	size_t i;

	if (store_deploy_expire(d->st, now, now - d->cfg->deploy_keep, &expired) != SERR_OK) {
		log_msg(LOG_LVL_ERROR, "deployments: the database failed ending those past their "
			"deadline; trying again");
		return;
	}
	json_array_foreach(expired, i, row)
		store_eventf(d->st, "system", 0, "deployment %s (from %s, into %s) timed out at "
			     "step %s: no agent enrolled within deploy.timeout",
			     json_string_value(json_object_get(row, "id")),
			     json_string_value(json_object_get(row, "address")),
			     json_string_value(json_object_get(row, "domain")),
			     json_string_value(json_object_get(row, "state")));
	json_decref(expired);
}

struct deploy *deploy_new(const struct config *cfg, struct store *st, struct http_server *http)
{
	struct deploy *d = calloc(1, sizeof(*d));

	if (!d || !(d->cache = json_object()) || http_every(http, SWEEP_MS, sweep, d) != 0) {
		deploy_free(d);
		return NULL;
	}
	d->cfg = cfg;
	d->st = st;
	return d;
}

void deploy_free(struct deploy *d)
{
	if (!d)
		return;
	json_decref(d->cache);
	free(d);
}

bool deploy_id_valid(const char *text)
{
	return text && strlen(text) == 32 && strspn(text, "0123456789abcdef") == 32;
}

static bool digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Reads the current member of a into a new buffer of at most max bytes
 * (NUL-terminated; *len without it). NULL with a message in errbuf when it
 * is larger or unreadable. */
static char *read_member(struct archive *a, size_t max, size_t *len, const char *what,
			 char *errbuf, size_t errlen)
{
	struct util_buf b = { 0 };
	char chunk[16384];
	la_ssize_t got;

	while ((got = archive_read_data(a, chunk, sizeof(chunk))) > 0) {
		if (b.len + (size_t)got > max) {
			util_set_msg(errbuf, errlen, "%s is larger than %zu bytes", what, max);
			goto fail;
		}
		if (util_buf_append(&b, chunk, (size_t)got) != 0) {
			util_set_msg(errbuf, errlen, "out of memory");
			goto fail;
		}
	}
	if (got < 0) {
		util_set_msg(errbuf, errlen, "%s: %s", what, archive_error_string(a));
		goto fail;
	}
	if (util_buf_append(&b, "", 1) != 0) {
		util_set_msg(errbuf, errlen, "out of memory");
		goto fail;
	}
	*len = b.len - 1;
	return b.data;
fail:
	util_buf_free(&b);
	return NULL;
}

/* The value of field name in a control file's text, copied into out
 * (MAX_FIELD bytes): false when absent or longer. */
static bool control_field(const char *text, const char *name, char *out)
{
	size_t n = strlen(name), len;
	const char *line = text, *v, *end;

	for (; *line; line = end + (*end == '\n')) {
		end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		if (strncasecmp(line, name, n) != 0 || line[n] != ':')
			continue;
		for (v = line + n + 1; v < end && (*v == ' ' || *v == '\t'); v++)
			;
		len = (size_t)(end - v);
		while (len && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r'))
			len--;
		if (len == 0 || len >= MAX_FIELD)
			return false;
		memcpy(out, v, len);
		out[len] = '\0';
		return true;
	}
	return false;
}

/* Reads the control file out of the control member's bytes. */
static char *control_of(const char *tar, size_t tar_len, char *errbuf, size_t errlen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	const char *name;
	char *text = NULL;
	size_t len;
	int rc;

	if (!a) {
		util_set_msg(errbuf, errlen, "out of memory");
		return NULL;
	}
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_none(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, tar, tar_len) != ARCHIVE_OK) {
		util_set_msg(errbuf, errlen, "its control member: %s", archive_error_string(a));
		goto out;
	}
	while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		name = archive_entry_pathname(e);
		if (!name || (strcmp(name, "./control") != 0 && strcmp(name, "control") != 0))
			continue;
		if (archive_entry_filetype(e) != AE_IFREG) {
			util_set_msg(errbuf, errlen, "its control file is not a plain file");
			goto out;
		}
		text = read_member(a, MAX_CONTROL, &len, "its control file", errbuf, errlen);
		if (text && strlen(text) != len) {
			util_set_msg(errbuf, errlen, "its control file holds a NUL byte");
			free(text);
			text = NULL;
		}
		goto out;
	}
	util_set_msg(errbuf, errlen, rc == ARCHIVE_EOF ? "its control member has no control "
		     "file" : "its control member: %s", archive_error_string(a));
out:
	archive_read_free(a);
	return text;
}

/* Whether value holds only the characters of set, and at least one. */
static bool only(const char *value, const char *set)
{
	return value[0] && strspn(value, set) == strlen(value);
}

bool deploy_read_control(int fd, json_t **out, char *errbuf, size_t errlen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char *member = NULL, *control = NULL, package[MAX_FIELD], version[MAX_FIELD],
	     arch[MAX_FIELD], platform[MAX_FIELD] = "", restart[MAX_FIELD] = "service";
	const char *name;
	size_t len = 0;
	bool ok = false, first = true;
	int rc;

	*out = NULL;
	if (!a) {
		util_set_msg(errbuf, errlen, "out of memory");
		return false;
	}
	archive_read_support_format_ar(a);
	if (archive_read_open_fd(a, fd, 16384) != ARCHIVE_OK) {
		util_set_msg(errbuf, errlen, "not a Debian package: %s", archive_error_string(a));
		goto out;
	}
	while (!control && (rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		name = archive_entry_pathname(e);
		if (first) {
			/* A Debian binary package starts with its format's version. */
			member = name && strcmp(name, "debian-binary") == 0 ?
				 read_member(a, 64, &len, "debian-binary", errbuf, errlen) : NULL;
			if (!member || strncmp(member, "2.", 2) != 0) {
				util_set_msg(errbuf, errlen, "not a Debian binary package (no "
					     "debian-binary member of format 2.x first)");
				goto out;
			}
			free(member);
			member = NULL;
			first = false;
			continue;
		}
		if (!name || strncmp(name, "control.tar", 11) != 0)
			continue;
		member = read_member(a, MAX_CONTROL_TAR, &len, "its control member", errbuf,
				     errlen);
		if (!member)
			goto out;
		control = control_of(member, len, errbuf, errlen);
		if (!control)
			goto out;
	}
	if (!control) {
		util_set_msg(errbuf, errlen, first ? "not a Debian package: %s" :
			     "no control member", archive_error_string(a));
		goto out;
	}
	if (!control_field(control, "Package", package) ||
	    !control_field(control, "Version", version) ||
	    !control_field(control, "Architecture", arch)) {
		util_set_msg(errbuf, errlen, "its control file lacks Package, Version or "
			     "Architecture (or one is over %d bytes)", MAX_FIELD - 1);
		goto out;
	}
	/* What the install script writes into a file name and a shell word. */
	if (!only(version, ALNUM ".+~:-") ||
	    !digit(version[0]) || !only(arch, "abcdefghijklmnopqrstuvwxyz0123456789-") ||
	    !only(package, "abcdefghijklmnopqrstuvwxyz0123456789.+-")) {
		util_set_msg(errbuf, errlen, "its Package, Version or Architecture holds "
			     "characters Debian does not allow there");
		goto out;
	}
	/* Optional: the system release it was built for (make deb writes it;
	 * without it no agent is upgraded to it) and what applying it needs. */
	if ((control_field(control, "Ward-Platform", platform) &&
	     !only(platform, "abcdefghijklmnopqrstuvwxyz0123456789.-")) ||
	    (control_field(control, "Ward-Restart", restart) && strcmp(restart, "none") != 0 &&
	     strcmp(restart, "service") != 0 && strcmp(restart, "host") != 0)) {
		util_set_msg(errbuf, errlen, "its Ward-Platform (a release such as debian-12) or "
			     "Ward-Restart (none, service or host) is malformed");
		goto out;
	}
	*out = json_pack("{ss ss ss ss}", "package", package, "version", version, "arch", arch,
			 "restart", restart);
	if (*out && platform[0])
		json_object_set_new(*out, "platform", json_string(platform));
	ok = *out != NULL;
	if (!ok)
		util_set_msg(errbuf, errlen, "out of memory");
out:
	free(member);
	free(control);
	archive_read_free(a);
	return ok;
}

/* The SHA-256 of the len bytes of fd from its start, in hex. */
static bool hash_file(int fd, char hex[65], char *errbuf, size_t errlen)
{
	crypto_hash_sha256_state h;
	unsigned char buf[65536], sum[32];
	ssize_t got;
	off_t at = 0;

	crypto_hash_sha256_init(&h);
	while ((got = pread(fd, buf, sizeof(buf), at)) > 0) {
		crypto_hash_sha256_update(&h, buf, (unsigned long long)got);
		at += got;
	}
	if (got < 0) {
		util_set_msg(errbuf, errlen, "reading it: %s", strerror(errno));
		return false;
	}
	crypto_hash_sha256_final(&h, sum);
	sodium_bin2hex(hex, 65, sum, sizeof(sum));
	return true;
}

/* Reads one package file into {"row": {...}} or {"error": "..."}, as the
 * cache keeps it; NULL when out of memory. */
static json_t *read_package(int fd, const char *file, const struct stat *st)
{
	char msg[300], hex[65];
	json_t *row = NULL;

	if (!S_ISREG(st->st_mode))
		snprintf(msg, sizeof(msg), "not a plain file");
	else if (st->st_size > MAX_PACKAGE)
		snprintf(msg, sizeof(msg), "larger than %lld bytes", MAX_PACKAGE);
	else if (deploy_read_control(fd, &row, msg, sizeof(msg)) &&
		 strcmp(json_string_value(json_object_get(row, "package")), PACKAGE) != 0)
		snprintf(msg, sizeof(msg), "the package %s, not %s",
			 json_string_value(json_object_get(row, "package")), PACKAGE);
	else if (row && hash_file(fd, hex, msg, sizeof(msg))) {
		json_object_set_new(row, "file", json_string(file));
		json_object_set_new(row, "size", json_integer(st->st_size));
		json_object_set_new(row, "sha256", json_string(hex));
		return json_pack("{so}", "row", row);
	}
	json_decref(row);
	return json_pack("{ss}", "error", msg);
}

/* The cache's entry for file (open at fd), read again when its size or
 * time changed; borrowed. */
static json_t *package_entry(struct deploy *d, int fd, const char *file, json_t *seen)
{
	json_t *entry = json_object_get(d->cache, file), *fresh;
	struct stat st;
	json_int_t mtime;

	if (fstat(fd, &st) != 0)
		return NULL;
	mtime = (json_int_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (!entry || json_integer_value(json_object_get(entry, "size")) != st.st_size ||
	    json_integer_value(json_object_get(entry, "mtime")) != mtime) {
		fresh = read_package(fd, file, &st);
		if (!fresh)
			return NULL;
		json_object_set_new(fresh, "size", json_integer(st.st_size));
		json_object_set_new(fresh, "mtime", json_integer(mtime));
		json_object_set_new(d->cache, file, fresh);
		entry = fresh;
	}
	json_object_set_new(seen, file, json_true());
	return entry;
}

static const char *version_of(const json_t *row)
{
	return json_string_value(json_object_get(row, "version"));
}

json_t *deploy_packages(struct deploy *d)
{
	const char *dir = d->cfg->deploy_package_dir, *file, *arch;
	json_t *out = json_pack("{ss s[] s[]}", "dir", dir, "packages", "problems");
	json_t *packages = json_object_get(out, "packages"), *problems, *seen = json_object();
	json_t *entry, *row, *best = json_object(), *prev;
	struct dirent *de;
	size_t n = 0, i;
	DIR *dh;
	int fd;
	void *tmp;

	problems = json_object_get(out, "problems");
	if (!out || !seen || !best)
		goto fail;
	dh = opendir(dir);
	if (!dh)
		json_array_append_new(problems, json_pack("{ss ss}", "file", dir, "error",
				      errno == ENOENT ? "no such directory: make it and put "
				      "ward-agent_VERSION_ARCH.deb files (make deb) in it" :
				      strerror(errno)));
	while (dh && (de = readdir(dh)) != NULL) {
		file = de->d_name;
		if (file[0] == '.' || strlen(file) < 5 || strcmp(file + strlen(file) - 4, ".deb"))
			continue;
		if (++n > MAX_FILES) {
			json_array_append_new(problems, json_pack("{ss ss}", "file", file, "error",
					      "left out: more than 64 packages in the directory"));
			continue;
		}
		fd = openat(dirfd(dh), file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		entry = fd >= 0 ? package_entry(d, fd, file, seen) : NULL;
		if (fd >= 0)
			close(fd);
		if (!entry) {
			json_array_append_new(problems, json_pack("{ss ss}", "file", file, "error",
					      fd < 0 ? strerror(errno) : "unreadable"));
			continue;
		}
		row = json_object_get(entry, "row");
		if (!row) {
			json_array_append_new(problems, json_pack("{ss sO}", "file", file, "error",
					      json_object_get(entry, "error")));
			continue;
		}
		row = json_deep_copy(row);
		json_array_append_new(packages, row);
		arch = json_string_value(json_object_get(row, "arch"));
		prev = json_object_get(best, arch);
		if (!prev || util_deb_version_cmp(version_of(row), version_of(prev)) > 0)
			json_object_set(best, arch, row);
	}
	if (dh)
		closedir(dh);
	/* Files gone from the directory leave the cache. */
	json_object_foreach_safe(d->cache, tmp, file, entry)
		if (!json_object_get(seen, file))
			json_object_del(d->cache, file);
	json_array_foreach(packages, i, row) {
		arch = json_string_value(json_object_get(row, "arch"));
		json_object_set_new(row, "served",
				    json_boolean(json_object_get(best, arch) == row));
	}
	json_decref(seen);
	json_decref(best);
	return out;
fail:
	json_decref(out);
	json_decref(seen);
	json_decref(best);
	return NULL;
}

void deploy_redact(struct http_req *req)
{
	const char *path = http_req_path(req), *slash;
	unsigned char hash[32];
	char id[17], shown[128];

	if (strncmp(path, "/deploy/", 8) != 0)
		return;
	slash = strchr(path + 8, '/');
	crypto_hash_sha256(hash, (const unsigned char *)path + 8,
			   slash ? (size_t)(slash - path - 8) : strlen(path + 8));
	sodium_bin2hex(id, sizeof(id), hash, 8);
	/* The token's id, as `ward enroll tokens` names it. */
	snprintf(shown, sizeof(shown), "/deploy/(token %s)%.80s", id, slash ? slash : "");
	http_req_set_shown(req, shown);
}

/* The token's id of ctx->caller_token, as `ward enroll tokens` names it. */
static void caller_id(const struct api_ctx *ctx, char id[17])
{
	sodium_bin2hex(id, 17, ctx->caller_token, 8);
}

/* Appends s to b as one single-quoted shell word. */
static void shell_word(struct util_buf *b, const char *s)
{
	util_buf_append(b, "'", 1);
	for (; *s; s++)
		if (*s == '\'')
			util_buf_append(b, "'\\''", 4);
		else
			util_buf_append(b, s, 1);
	util_buf_append(b, "'", 1);
}

/* The script's start: what it is, and the values it works with. */
static void script_head(struct util_buf *b, const struct api_ctx *ctx, const char *base,
			const char *id, const char *token, const char *domain)
{
	util_buf_printf(b, "#!/bin/sh\n"
			"# Ward: installs the agent on this host and enrolls it with %s into the\n"
			"# domain %s. Made by wardd for deployment %s; run it as root:\n"
			"#   curl -fsS --cacert ca.crt %s/deploy/.../install.sh | sudo sh\n"
			"# Nothing runs until the whole script is read: a download cut short\n"
			"# does nothing.\n"
			"ward_install() {\n"
			"\tset -u\n\tserver=", ctx->server_url, domain, id, ctx->server_url);
	shell_word(b, ctx->server_url);
	util_buf_printf(b, "\n\tbase=");
	shell_word(b, base);
	util_buf_printf(b, "\n\tdeployment=%s\n\ttoken=%s\n\tdomain=", id, token);
	shell_word(b, domain);
	util_buf_printf(b, "\n\tconf=/etc/ward/ward-agent.ini\n"
			"\ttmp=$(mktemp -d) || { echo 'ward install: mktemp failed' >&2; "
			"exit 1; }\n"
			"\ttrap 'rm -rf \"$tmp\"' EXIT\n"
			"\ttrap 'exit 1' HUP INT TERM\n"
			"\tcat >\"$tmp/ca.crt\" <<'WARD_CA'\n%sWARD_CA\n", ctx->ca_pem);
}

/* The script's steps, after the head; archs is the case branches of the
 * packages served. */
static void script_body(struct util_buf *b, const char *archs, const char *names)
{
	util_buf_printf(b,
	"\t# fail STEP MESSAGE: says why on the terminal and to wardd, and stops.\n"
	"\tfail() {\n"
	"\t\techo \"ward install: $2\" >&2\n"
	"\t\tprintf '%%s\\n' \"$2\" | curl -fsS --cacert \"$tmp/ca.crt\" --max-time 30 \\\n"
	"\t\t\t-H 'Content-Type: text/plain' --data-binary @- \\\n"
	"\t\t\t\"$base/report?deployment=$deployment&step=$1\" >/dev/null 2>&1 || true\n"
	"\t\texit 1\n"
	"\t}\n"
	"\t[ \"$(id -u)\" = 0 ] || fail root 'run it as root (... | sudo sh)'\n"
	"\tcommand -v dpkg >/dev/null 2>&1 ||\n"
	"\t\tfail system 'no dpkg here: the agent is packaged for Debian and its derivatives'\n"
	"\tarch=$(dpkg --print-architecture) || fail system 'dpkg --print-architecture failed'\n"
	"\tcase \"$arch\" in\n%s"
	"\t*) fail package \"no ward-agent package for $arch on $server (it has: %s)\" ;;\n"
	"\tesac\n"
	"\t[ ! -e /var/lib/ward/agent/credential.json ] ||\n"
	"\t\tfail enrolled 'the agent of this host is enrolled already "
	"(/var/lib/ward/agent/credential.json)'\n"
	"\tdeb=\"$tmp/ward-agent_${version}_$arch.deb\"\n"
	"\techo \"ward install: downloading ward-agent $version ($arch) from $server\"\n"
	"\tcurl -fsS --cacert \"$tmp/ca.crt\" --max-time 900 -o \"$deb\" \\\n"
	"\t\t\"$base/ward-agent.deb?arch=$arch&deployment=$deployment\" ||\n"
	"\t\tfail download \"downloading the package from $server failed\"\n"
	"\techo \"$sha256  $deb\" | sha256sum -c --status ||\n"
	"\t\tfail checksum 'the package downloaded is not the one this script names (its "
	"SHA-256 differs)'\n"
	"\techo 'ward install: installing it'\n"
	"\tinstall_deb() {\n"
	"\t\tif command -v apt-get >/dev/null 2>&1; then\n"
	"\t\t\tDEBIAN_FRONTEND=noninteractive apt-get install -y -q \"$deb\"\n"
	"\t\telse\n"
	"\t\t\tdpkg -i \"$deb\"\n"
	"\t\tfi </dev/null >\"$tmp/install.log\" 2>&1\n"
	"\t}\n"
	"\t# Dependencies not in the package lists yet: those are updated once.\n"
	"\tinstall_deb || { command -v apt-get >/dev/null 2>&1 &&\n"
	"\t\tapt-get update -q </dev/null >\"$tmp/update.log\" 2>&1 && install_deb; } ||\n"
	"\t\tfail install \"installing the package failed: $(tail -n 15 \"$tmp/install.log\")\"\n"
	"\techo \"ward install: enrolling into $domain\"\n"
	"\t/usr/sbin/ward-agent --config \"$conf\" enroll --server \"$server\" --token \"$token\" "
	"\\\n"
	"\t\t--ca \"$tmp/ca.crt\" --deployment \"$deployment\" </dev/null >\"$tmp/enroll.log\" "
	"2>&1 ||\n"
	"\t\tfail enroll \"enrolling failed: $(tail -n 5 \"$tmp/enroll.log\")\"\n"
	"\tif [ -d /run/systemd/system ]; then\n"
	"\t\t{ systemctl enable ward-agent && systemctl restart ward-agent; } "
	"</dev/null >/dev/null 2>&1 ||\n"
	"\t\t\tfail start 'the agent is enrolled, but its unit did not start (systemctl "
	"status ward-agent)'\n"
	"\t\techo 'ward install: done: the agent runs (systemctl status ward-agent)'\n"
	"\telse\n"
	"\t\techo \"ward install: done: the agent is enrolled; this host runs no systemd: "
	"start it with /usr/sbin/ward-agent --config $conf run\"\n"
	"\tfi\n"
	"}\n"
	"ward_install\n", archs, names);
}

/* The case branches of the packages served, into archs, and their
 * architectures' names, into names; false when none is served. */
static bool served(json_t *pk, struct util_buf *archs, struct util_buf *names)
{
	json_t *row;
	size_t i;

	json_array_foreach(json_object_get(pk, "packages"), i, row) {
		if (!json_is_true(json_object_get(row, "served")))
			continue;
		/* Quoted: after an epoch's ':' a '~' would be expanded. */
		util_buf_printf(archs, "\t%s) version='%s' sha256=%s ;;\n",
				json_string_value(json_object_get(row, "arch")),
				json_string_value(json_object_get(row, "version")),
				json_string_value(json_object_get(row, "sha256")));
		util_buf_printf(names, "%s%s", names->len ? ", " : "",
				json_string_value(json_object_get(row, "arch")));
	}
	return archs->len > 0;
}

void deploy_get_script(struct api_ctx *ctx, struct http_req *req, const char *who,
		       const struct api_args *args)
{
	struct util_buf archs = { 0 }, names = { 0 }, script = { 0 };
	unsigned char raw[16];
	char id[33], tid[17], msg[256], token[OPS_MAX_PARAM], *base = NULL;
	json_t *pk = NULL;
	int64_t now = (int64_t)time(NULL);
	enum serr err;

	/* Routed here, so the token is in the path (authorized() checked it). */
	if (!ops_path_param(args->op, http_req_path(req), token, sizeof(token))) {
		http_respond_error(req, 400, "expected /deploy/TOKEN/install.sh");
		return;
	}
	if (!enroll_admit(ctx, req))
		return;
	pk = deploy_packages(ctx->deploy);
	if (!pk || !served(pk, &archs, &names)) {
		http_respond_busy(req, 300, "no agent package to install: none in "
				  "deploy.package_dir");
		log_msg(LOG_LVL_WARN, "deploy: an install script asked for from %s, but no %s "
			"package is in %s", http_req_peer(req), PACKAGE,
			ctx->cfg->deploy_package_dir);
		goto out;
	}
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(id, sizeof(id), raw, sizeof(raw));
	caller_id(ctx, tid);
	err = store_deploy_start(ctx->st, id, tid, who, http_req_peer(req), now,
				 now + ctx->cfg->deploy_timeout, ctx->cfg->deploy_max_in_progress,
				 msg, sizeof(msg));
	if (err == SERR_EXIST) {
		http_respond_busy(req, 60, "%s", msg);
		goto out;
	}
	if (err != SERR_OK) {
		http_respond_error(req, 500, "deployment: %s", msg);
		goto out;
	}
	base = util_printf("%s/deploy/%s", ctx->server_url, token);
	if (!base)
		goto nomem;
	script_head(&script, ctx, base, id, token, who);
	script_body(&script, archs.data, names.data);
	if (!script.data)
		goto nomem;
	store_eventf(ctx->st, "system", 0, "deployment %s: %s downloaded the install script "
		     "(enrollment token %s, domain %s)", id, http_req_peer(req), tid, who);
	http_respond_data(req, 200, "text/x-shellscript; charset=utf-8", &script);
	goto out;
nomem:
	http_respond_error(req, 500, "out of memory");
out:
	util_buf_free(&archs);
	util_buf_free(&names);
	util_buf_free(&script);
	free(base);
	json_decref(pk);
}

void deploy_get_package(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	const char *arch = api_arg_string(args, "arch"), *id = api_arg_string(args, "deployment");
	json_t *pk = deploy_packages(ctx->deploy), *row, *pick = NULL;
	char tid[17], *path = NULL;
	struct stat st;
	size_t i;
	int fd = -1;

	(void)who;
	if (!deploy_id_valid(id)) {
		http_respond_error(req, 400, "deployment: expected 32 lowercase hex digits");
		goto out;
	}
	json_array_foreach(json_object_get(pk, "packages"), i, row)
		if (json_is_true(json_object_get(row, "served")) &&
		    strcmp(json_string_value(json_object_get(row, "arch")), arch) == 0)
			pick = row;
	if (!pick) {
		http_respond_error(req, 404, "no %s package for %.32s", PACKAGE, arch);
		goto out;
	}
	if (http_downloads(ctx->http, NULL) >= (unsigned)ctx->cfg->max_downloads) {
		http_respond_busy(req, 30, "%u downloads are being sent (updates.max_downloads): "
				  "try again later", http_downloads(ctx->http, NULL));
		goto out;
	}
	caller_id(ctx, tid);
	if (store_deploy_step(ctx->st, id, tid, "package", arch,
			      json_string_value(json_object_get(pick, "version")), NULL, 0,
			      (int64_t)time(NULL)) != SERR_OK) {
		http_respond_error(req, 410, "deployment %s: not in progress (it ended, timed out "
				   "or is another token's): download the install script again", id);
		goto out;
	}
	path = util_path_join(ctx->cfg->deploy_package_dir,
			      json_string_value(json_object_get(pick, "file")));
	fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	if (fd < 0 || fstat(fd, &st) != 0) {
		http_respond_error(req, 500, "%s: %s", path ? path : "?", strerror(errno));
		goto out;
	}
	/* Changed since it was read: the script's SHA-256 tells the host. */
	http_respond_file(req, fd, (uint64_t)st.st_size, (unsigned)ctx->cfg->download_idle);
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	json_decref(pk);
}

/* Copies the failure's text into out (len bytes), keeping printable ASCII,
 * tabs and line ends; anything else becomes '?'. */
static void clean_text(const char *text, size_t n, char *out, size_t len)
{
	size_t i;

	if (n >= len)
		n = len - 1;
	for (i = 0; i < n; i++)
		out[i] = (text[i] >= 0x20 && text[i] < 0x7f) || text[i] == '\n' ||
			 text[i] == '\t' ? text[i] : '?';
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		n--;
	out[n] = '\0';
}

void deploy_post_report(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	const char *id = api_arg_string(args, "deployment"), *step = api_arg_string(args, "step");
	const char *body;
	char text[MAX_REPORT + 1], msg[MAX_REPORT + 64], tid[17];
	json_t *row = NULL;
	size_t len, i;
	enum serr err;

	(void)who;
	if (!enroll_admit(ctx, req))
		return;
	for (i = 0; steps[i] && strcmp(steps[i], step) != 0; i++)
		;
	if (!steps[i] || !deploy_id_valid(id)) {
		http_respond_error(req, 400, "report: expected deployment=32 hex digits and a step "
				   "of the install script");
		return;
	}
	body = http_req_body(req, &len);
	clean_text(body ? body : "", body ? len : 0, text, sizeof(text));
	snprintf(msg, sizeof(msg), "%s: %s", step, text[0] ? text : "(no reason given)");
	caller_id(ctx, tid);
	err = store_deploy_step(ctx->st, id, tid, "failed", NULL, NULL, msg, 0,
				(int64_t)time(NULL));
	if (err != SERR_OK && err != SERR_NOENT) {
		http_respond_error(req, 500, "report: the database failed");
		return;
	}
	if (store_deploy_get(ctx->st, id, &row) != SERR_OK ||
	    strcmp(json_string_value(json_object_get(row, "token")), tid) != 0) {
		json_decref(row);
		http_respond_error(req, 404, "deployment %s: none of this token", id);
		return;
	}
	/* One that ended (its agent enrolled, then its unit did not start) is
	 * logged and stays as it is. */
	store_eventf(ctx->st, "system", json_integer_value(json_object_get(row, "client")),
		     "deployment %s on %s failed at step %s: %.300s", id, http_req_peer(req), step,
		     text[0] ? text : "(no reason given)");
	http_respond_json(req, 200, json_pack("{ss sO}", "id", id, "state",
					      json_object_get(row, "state")));
	json_decref(row);
}

void deploy_enrolled(struct api_ctx *ctx, const unsigned char token_hash[32], const char *id,
		     int64_t client, const char *hostname)
{
	char tid[17];

	sodium_bin2hex(tid, sizeof(tid), token_hash, 8);
	if (store_deploy_step(ctx->st, id, tid, "enrolled", NULL, NULL, NULL, client,
			      (int64_t)time(NULL)) == SERR_OK)
		store_eventf(ctx->st, "system", client, "deployment %s: %s enrolled as client "
			     "%lld", id, hostname, (long long)client);
	else
		log_msg(LOG_LVL_INFO, "deploy: client %lld (%s) named deployment %s, which is "
			"not in progress for its token", (long long)client, hostname, id);
}

void deploy_post_script(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	json_t *made = NULL, *pk = NULL, *answer = NULL, *list = NULL, *row;
	char *url = NULL, *cmd = NULL;
	size_t i;

	/* The token and its checks are those of `ward enroll new`. */
	made = enroll_new_agent_token(ctx, req, who, args);
	if (!made)
		return;
	url = util_printf("%s/deploy/%s/install.sh", ctx->server_url,
			  json_string_value(json_object_get(made, "token")));
	cmd = url ? util_printf("curl -fsS --cacert ca.crt %s | sudo sh", url) : NULL;
	pk = deploy_packages(ctx->deploy);
	list = json_array();
	if (!cmd || !pk || !list)
		goto nomem;
	json_array_foreach(json_object_get(pk, "packages"), i, row)
		if (json_is_true(json_object_get(row, "served")))
			json_array_append_new(list, json_pack("{sO sO}", "arch",
					      json_object_get(row, "arch"), "version",
					      json_object_get(row, "version")));
	answer = json_pack("{ss ss sO sO sO sO sO sO sI}", "command", cmd, "url", url, "ca",
			   json_object_get(made, "ca"), "token_id", json_object_get(made, "id"),
			   "domain", json_object_get(made, "domain"), "expires",
			   json_object_get(made, "expires"), "max_uses",
			   json_object_get(made, "max_uses"), "packages", list, "timeout",
			   (json_int_t)ctx->cfg->deploy_timeout);
	if (!answer)
		goto nomem;
	if (json_array_size(list) == 0)
		json_object_set_new(answer, "warning", json_sprintf("no %s package in %s: hosts "
				    "cannot install until one is there (make deb)", PACKAGE,
				    ctx->cfg->deploy_package_dir));
	http_respond_json(req, 201, answer);
	goto out;
nomem:
	http_respond_error(req, 500, "out of memory");
out:
	json_decref(made);
	json_decref(pk);
	json_decref(list);
	free(url);
	free(cmd);
}

void deploy_get(struct api_ctx *ctx, struct http_req *req, const char *who,
		const struct api_args *args)
{
	int64_t all = 0, now = (int64_t)time(NULL), open;
	json_t *list = NULL, *counts = NULL, *by = json_object(), *c;
	size_t i;

	(void)who;
	api_arg_int(args, "all", &all);
	if (!by || store_deploy_list(ctx->st, all == 0, now, LIST_LIMIT, &list) != SERR_OK ||
	    store_deploy_count(ctx->st, now, &counts) != SERR_OK) {
		http_respond_error(req, 500, "deployments: the database failed");
		goto out;
	}
	json_array_foreach(counts, i, c)
		json_object_set(by, json_string_value(json_object_get(c, "state")),
				json_object_get(c, "n"));
	/* Those past their deadline count as timed out already. */
	open = json_integer_value(json_object_get(by, "script")) +
	       json_integer_value(json_object_get(by, "package"));
	http_respond_json(req, 200, json_pack("{sI sO sI sO}", "in_progress", (json_int_t)open,
					      "by_state", by, "timeout",
					      (json_int_t)ctx->cfg->deploy_timeout, "deployments",
					      list));
out:
	json_decref(list);
	json_decref(counts);
	json_decref(by);
}

void deploy_post_cancel(struct api_ctx *ctx, struct http_req *req, const char *who,
			const struct api_args *args)
{
	const char *id = api_arg_string(args, "id");
	json_t *row = NULL;
	enum serr err;

	if (!deploy_id_valid(id)) {
		http_respond_error(req, 400, "id: expected a deployment's id (32 hex digits, from "
				   "ward deploy list)");
		return;
	}
	err = store_deploy_cancel(ctx->st, id, who, (int64_t)time(NULL), &row);
	if (err == SERR_NOENT) {
		http_respond_error(req, 404, "deployment %s: none in progress", id);
		return;
	}
	if (err != SERR_OK) {
		http_respond_error(req, 500, "deployment %s: the database failed", id);
		return;
	}
	store_eventf(ctx->st, "system", 0, "%s cancelled deployment %s (from %s)", who, id,
		     json_string_value(json_object_get(row, "address")));
	http_respond_json(req, 200, row);
}

void deploy_get_packages(struct api_ctx *ctx, struct http_req *req, const char *who,
			 const struct api_args *args)
{
	json_t *pk = deploy_packages(ctx->deploy);

	(void)who;
	(void)args;
	if (!pk)
		http_respond_error(req, 500, "out of memory");
	else
		http_respond_json(req, 200, pk);
}
