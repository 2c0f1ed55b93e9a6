/* pack.c -- tar archives of flat directories (see pack.h). */
#include "common/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#define CHUNK 65536

bool pack_plain_name(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > 255 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (i = 0; i < n; i++)
		if (name[i] == '/' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

/* Appends the file at path to a as member name. */
static enum err add_member(struct archive *a, const char *path, const char *name,
			   char *errbuf, size_t errlen)
{
	struct archive_entry *e = archive_entry_new();
	enum err err = ERR_OK;
	char *buf = malloc(CHUNK);
	struct stat sb;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (!e || !buf) {
		err = ERR_NOMEM;
		goto out;
	}
	if (fd < 0 || fstat(fd, &sb) != 0) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		err = ERR_IO;
		goto out;
	}
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, sb.st_size);
	if (archive_write_header(a, e) != ARCHIVE_OK)
		goto archive_failed;
	while ((got = read(fd, buf, CHUNK)) > 0)
		if (archive_write_data(a, buf, (size_t)got) != got)
			goto archive_failed;
	if (got < 0) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		err = ERR_IO;
	}
	goto out;
archive_failed:
	snprintf(errbuf, errlen, "%s: %s", path, archive_error_string(a));
	err = ERR_IO;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	archive_entry_free(e);
	return err;
}

enum err pack_write(const char *path, const char *dir, const char *const *names, size_t n,
		    int level, char *errbuf, size_t errlen)
{
	struct archive *a = archive_write_new();
	enum err err = ERR_OK;
	char opt[32], *from;
	size_t i;

	if (!a)
		return ERR_NOMEM;
	snprintf(opt, sizeof(opt), "zstd:compression-level=%d", level);
	unlink(path);
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
	    archive_write_set_options(a, opt) != ARCHIVE_OK ||
	    archive_write_open_filename(a, path) != ARCHIVE_OK) {
		snprintf(errbuf, errlen, "%s: %s", path, archive_error_string(a));
		archive_write_free(a);
		return ERR_IO;
	}
	for (i = 0; err == ERR_OK && i < n; i++) {
		from = util_path_join(dir, names[i]);
		err = from ? add_member(a, from, names[i], errbuf, errlen) : ERR_NOMEM;
		free(from);
	}
	if (archive_write_close(a) != ARCHIVE_OK && err == ERR_OK) {
		snprintf(errbuf, errlen, "%s: %s", path, archive_error_string(a));
		err = ERR_IO;
	}
	archive_write_free(a);
	if (err == ERR_OK)
		chmod(path, 0600);
	else
		unlink(path);
	return err;
}

/* Writes the current member of a into dir/name, refusing to go past max
 * bytes; *total counts every member's bytes. */
static enum err write_member(struct archive *a, const char *label, const char *dir,
			     const char *name, long long max, long long *total,
			     long long max_total, char *errbuf, size_t errlen)
{
	char *path = util_path_join(dir, name), *buf = malloc(CHUNK);
	enum err err = ERR_OK;
	long long size = 0;
	la_ssize_t got;
	int fd = -1;

	if (!path || !buf) {
		err = ERR_NOMEM;
		goto out;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(errbuf, errlen, "%s: %s", path, errno == EEXIST ?
			 "a member of that name came earlier" : strerror(errno));
		err = errno == EEXIST ? ERR_FORMAT : ERR_IO;
		goto out;
	}
	while ((got = archive_read_data(a, buf, CHUNK)) > 0) {
		size += got;
		*total += got;
		if (size > max || *total > max_total) {
			snprintf(errbuf, errlen, "%s: member '%s' %s", label, name,
				 size > max ? "is larger than the limit" :
				 "takes the archive over its size limit");
			err = ERR_LIMIT;
			goto out;
		}
		if (write(fd, buf, (size_t)got) != got) {
			snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
			err = ERR_IO;
			goto out;
		}
	}
	if (got < 0) {
		snprintf(errbuf, errlen, "%s: %s", label, archive_error_string(a));
		err = ERR_FORMAT;
	}
out:
	if (fd >= 0 && close(fd) != 0 && err == ERR_OK) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		err = ERR_IO;
	}
	free(path);
	free(buf);
	return err;
}

enum err pack_extract_fd(int fd, const char *label, const char *dir,
			 long long max_member, long long max_total, char *errbuf,
			 size_t errlen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *entry;
	enum err err = ERR_OK;
	long long total = 0;
	const char *name;
	int rc = ARCHIVE_OK;

	if (!a)
		return ERR_NOMEM;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_none(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, CHUNK) != ARCHIVE_OK) {
		snprintf(errbuf, errlen, "%s: %s", label, archive_error_string(a));
		err = ERR_FORMAT;
		goto out;
	}
	while (err == ERR_OK && (rc = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
		name = archive_entry_pathname(entry);
		if (archive_entry_filetype(entry) == AE_IFDIR)
			continue;
		if (!name || archive_entry_filetype(entry) != AE_IFREG || !pack_plain_name(name)) {
			snprintf(errbuf, errlen, "%s: member '%s' is not a plain file", label,
				 name ? name : "?");
			err = ERR_FORMAT;
			break;
		}
		err = write_member(a, label, dir, name, max_member, &total, max_total, errbuf,
				   errlen);
	}
	if (err == ERR_OK && rc != ARCHIVE_EOF) {
		snprintf(errbuf, errlen, "%s: %s", label, archive_error_string(a));
		err = ERR_FORMAT;
	}
out:
	archive_read_free(a);
	return err;
}
