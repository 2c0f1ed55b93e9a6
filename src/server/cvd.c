/* cvd.c -- CVD/CLD headers and checks (see cvd.h). */
#include "server/cvd.h"

#include <clamav.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Copies field f (not NUL-terminated, n bytes) into out, refusing what
 * does not fit or holds control characters. */
static bool copy_field(char *out, size_t size, const char *f, size_t n)
{
	size_t i;

	if (n >= size)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)f[i] < 0x20 || f[i] == 0x7f)
			return false;
	memcpy(out, f, n);
	out[n] = '\0';
	return true;
}

static bool parse_u64(const char *f, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20)
		return false;
	for (i = 0; i < n; i++) {
		if (f[i] < '0' || f[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(f[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

enum serr cvd_parse_header(const unsigned char *buf, size_t len, struct cvd_header *h,
			   char *errbuf, size_t errlen)
{
	static const char magic[] = "ClamAV-VDB:";
	const char *f[9], *p = (const char *)buf, *end;
	size_t n[9], i, k;
	uint32_t *counts[3] = { &h->version, &h->sigs, &h->flevel };
	uint64_t v = 0;
	char dsig[CVD_HEADER_SIZE];
	bool ok;

	memset(h, 0, sizeof(*h));
	if (len < CVD_HEADER_SIZE || memcmp(buf, magic, sizeof(magic) - 1) != 0) {
		snprintf(errbuf, errlen,
			 "not a CVD/CLD: the 512-byte ClamAV-VDB header is missing");
		return SERR_FORMAT;
	}
	end = p + CVD_HEADER_SIZE;
	while (end > p && end[-1] == ' ')
		end--;
	/* Nine colon-separated fields; the first is the magic word. */
	for (i = 0, k = 0; i < 9; i++) {
		f[i] = p + k;
		while (p + k < end && p[k] != ':')
			k++;
		n[i] = (size_t)(p + k - f[i]);
		if (i < 8 && p + k == end)
			break;
		k++;
	}
	if (i < 9 || f[8] + n[8] != end) {
		snprintf(errbuf, errlen, "CVD header: expected 9 fields separated by ':'");
		return SERR_FORMAT;
	}
	ok = copy_field(h->build_time, sizeof(h->build_time), f[1], n[1]) &&
	     copy_field(dsig, sizeof(dsig), f[6], n[6]) &&
	     copy_field(h->builder, sizeof(h->builder), f[7], n[7]) &&
	     n[5] == 32 && strspn(f[5], "0123456789abcdef") >= 32 &&
	     copy_field(h->md5, sizeof(h->md5), f[5], n[5]) &&
	     parse_u64(f[8], n[8], UINT64_MAX, &h->stime);
	for (i = 0; ok && i < 3; i++) {
		ok = parse_u64(f[2 + i], n[2 + i], UINT32_MAX, &v);
		*counts[i] = (uint32_t)v;
	}
	if (!ok || h->version == 0) {
		snprintf(errbuf, errlen, "CVD header: a field is malformed (version, counts, MD5 "
			 "or times)");
		return SERR_FORMAT;
	}
	return SERR_OK;
}

enum serr cvd_check_file(const char *path, struct cvd_header *h, char *errbuf,
			 size_t errlen)
{
	unsigned char head[CVD_HEADER_SIZE], buf[65536], md5[16];
	gnutls_hash_hd_t hd;
	char hex[33], msg[200];
	enum serr err;
	size_t n = strlen(path);
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return SERR_IO;
	}
	got = read(fd, head, sizeof(head));
	err = cvd_parse_header(head, got > 0 ? (size_t)got : 0, h, msg, sizeof(msg));
	if (err != SERR_OK) {
		close(fd);
		snprintf(errbuf, errlen, "%s: %s", path, msg);
		return err;
	}
	if (n < 4 || strcmp(path + n - 4, ".cvd") != 0) {
		close(fd);
		return SERR_OK;
	}
	if (gnutls_hash_init(&hd, GNUTLS_DIG_MD5) < 0) {
		close(fd);
		snprintf(errbuf, errlen, "%s: MD5 unavailable", path);
		return SERR_IO;
	}
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		gnutls_hash(hd, buf, (size_t)got);
	gnutls_hash_deinit(hd, md5);
	close(fd);
	if (got < 0) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return SERR_IO;
	}
	sodium_bin2hex(hex, sizeof(hex), md5, sizeof(md5));
	if (strcmp(hex, h->md5) != 0) {
		snprintf(errbuf, errlen, "%s: the body's MD5 %s differs from the header's %s "
			 "(corrupt or truncated)", path, hex, h->md5);
		return SERR_HASH;
	}
	if (cl_init(CL_INIT_DEFAULT) != CL_SUCCESS || cl_cvdverify(path) != CL_SUCCESS) {
		snprintf(errbuf, errlen, "%s: ClamAV's digital signature does not verify", path);
		return SERR_SIG;
	}
	return SERR_OK;
}
