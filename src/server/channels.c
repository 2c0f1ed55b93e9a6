/* channels.c -- alert channels: email, syslog, webhook (see channels.h). */
#include "server/channels.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define SEND_TIMEOUT 30L          /* seconds for one message */
#define CONNECT_TIMEOUT 10L
#define MAX_RECIPIENTS 20
#define MAX_TEXT 255              /* bytes of an address, a user, a file name */
#define MAX_SYSLOG 2048           /* bytes of one syslog message */
#define MAX_LINE 990              /* bytes of a mail's line (RFC 5322: 998) */

/* The members a kind of channel takes: name, whether required, and how
 * its value is checked. */
enum form { F_SMTP_URL, F_HTTPS_URL, F_ADDRESS, F_ADDRESSES, F_TEXT, F_SECRET, F_FILE,
	    F_STARTTLS, F_SYSLOG_ADDRESS, F_FACILITY };

struct member {
	const char *name;
	bool required;
	enum form form;
};

struct kind {
	const char *name;
	const struct member *members;
	bool (*send)(const json_t *config, const struct channels_msg *msg, char *errbuf,
		     size_t errlen);
};

static const char *const facilities[] = { "kern", "user", "mail", "daemon", "auth", "syslog",
	"lpr", "news", "uucp", "cron", "authpriv", "ftp", NULL };

/* Whether s has 1 to MAX_TEXT bytes and no control character. */
static bool plain(const char *s)
{
	size_t i, n = strlen(s);

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return n > 0 && n <= MAX_TEXT;
}

/* A mail address as SMTP takes it between <>: local@domain, printable,
 * without spaces, brackets, quotes or commas. */
static bool address(const char *s)
{
	const char *at = strchr(s, '@');

	return plain(s) && at && at != s && at[1] && !strchr(at + 1, '@') &&
	       !strpbrk(s, " <>\"(),;:\\[]");
}

/* Whether s is a URL of scheme (one of "a,b") whose host is given. */
static bool url_of(const char *s, const char *schemes)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok;

	ok = u && plain(s) && curl_url_set(u, CURLUPART_URL, s, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0];
	if (ok) {
		char list[32];
		char *tok, *save;

		snprintf(list, sizeof(list), "%s", schemes);
		ok = false;
		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (strcmp(tok, scheme) == 0)
				ok = true;
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/* "udp://HOST:PORT", "tcp://HOST:PORT" or "unix:/PATH". */
static bool syslog_address(const char *s)
{
	const char *colon;
	char *end;
	long port;

	if (!plain(s))
		return false;
	if (strncmp(s, "unix:/", 6) == 0)
		return strlen(s + 5) < sizeof(((struct sockaddr_un *)0)->sun_path);
	if (strncmp(s, "udp://", 6) != 0 && strncmp(s, "tcp://", 6) != 0)
		return false;
	colon = strrchr(s + 6, ':');
	if (!colon || colon == s + 6 || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5)
		return false;
	port = strtol(colon + 1, &end, 10);
	return *end == '\0' && port > 0 && port < 65536;
}

static int facility_code(const char *name)
{
	int i;

	for (i = 0; facilities[i]; i++)
		if (strcmp(facilities[i], name) == 0)
			return i;
	if (strncmp(name, "local", 5) == 0 && name[5] >= '0' && name[5] <= '7' && !name[6])
		return 16 + name[5] - '0';
	return -1;
}

/* Checks value v of member m; false with the reason in errbuf. */
static bool check_member(const struct member *m, const json_t *v, char *errbuf, size_t errlen)
{
	const char *s = json_string_value(v);
	const json_t *e;
	size_t i;

	if (m->form == F_ADDRESSES) {
		if (!json_is_array(v) || json_array_size(v) == 0 ||
		    json_array_size(v) > MAX_RECIPIENTS)
			goto bad;
		json_array_foreach(v, i, e)
			if (!json_is_string(e) || !address(json_string_value(e)))
				goto bad;
		return true;
	}
	if (!s)
		goto bad;
	switch (m->form) {
	case F_SMTP_URL:
		if (url_of(s, "smtp,smtps"))
			return true;
		break;
	case F_HTTPS_URL:
		if (url_of(s, "https"))
			return true;
		break;
	case F_ADDRESS:
		if (address(s))
			return true;
		break;
	case F_TEXT:
	case F_SECRET:
		if (plain(s))
			return true;
		break;
	case F_FILE:
		if (plain(s) && s[0] == '/' && access(s, R_OK) == 0)
			return true;
		break;
	case F_STARTTLS:
		if (!strcmp(s, "required") || !strcmp(s, "try") || !strcmp(s, "no"))
			return true;
		break;
	case F_SYSLOG_ADDRESS:
		if (syslog_address(s))
			return true;
		break;
	case F_FACILITY:
		if (facility_code(s) >= 0)
			return true;
		break;
	case F_ADDRESSES:
		break;
	}
bad:
	switch (m->form) {
	case F_SMTP_URL:
		util_set_msg(errbuf, errlen, "%s: expected smtp://HOST[:PORT] or smtps://...",
			     m->name);
		break;
	case F_HTTPS_URL:
		util_set_msg(errbuf, errlen, "%s: expected an https:// URL", m->name);
		break;
	case F_ADDRESS:
		util_set_msg(errbuf, errlen, "%s: expected a mail address (user@domain)", m->name);
		break;
	case F_ADDRESSES:
		util_set_msg(errbuf, errlen, "%s: expected a list of 1 to %d mail addresses",
			     m->name, MAX_RECIPIENTS);
		break;
	case F_FILE:
		util_set_msg(errbuf, errlen, "%s: expected the absolute path of a file wardd can "
			     "read", m->name);
		break;
	case F_STARTTLS:
		util_set_msg(errbuf, errlen, "%s: expected required, try or no", m->name);
		break;
	case F_SYSLOG_ADDRESS:
		util_set_msg(errbuf, errlen, "%s: expected udp://HOST:PORT, tcp://HOST:PORT or "
			     "unix:/PATH", m->name);
		break;
	case F_FACILITY:
		util_set_msg(errbuf, errlen, "%s: expected a syslog facility (daemon, user, "
			     "auth, local0 to local7, ...)", m->name);
		break;
	default:
		util_set_msg(errbuf, errlen, "%s: expected 1 to %d characters, none a control "
			     "character", m->name, MAX_TEXT);
	}
	return false;
}

/* A copy of s (new; NULL when out of memory) with every control
 * character but those in keep replaced by '?': what a hostile agent named
 * (a file called "x\r\nBcc: ...") never starts a header or a syslog
 * line of its own. */
static char *defang(const char *s, const char *keep)
{
	char *out = strdup(s), *p;

	for (p = out; p && *p; p++)
		if (((unsigned char)*p < 0x20 || *p == 0x7f) && !strchr(keep, *p))
			*p = '?';
	return out;
}

/* ---- email ---------------------------------------------------------- */

struct reader {
	const char *data;
	size_t len, off;
};

static size_t read_mail(char *buf, size_t size, size_t n, void *arg)
{
	struct reader *r = arg;
	size_t left = r->len - r->off, take = size * n < left ? size * n : left;

	memcpy(buf, r->data + r->off, take);
	r->off += take;
	return take;
}

/* Appends the subject as a header: as it is when it is ASCII, else as
 * RFC 2047 encoded words of whole UTF-8 characters, folded. */
static void subject_header(struct util_buf *b, const char *s)
{
	size_t n = strlen(s), i, start, len;
	char enc[128];
	bool ascii = true;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			ascii = false;
	if (ascii) {
		util_buf_printf(b, "Subject: %s\r\n", s);
		return;
	}
	util_buf_printf(b, "Subject:");
	for (start = 0; start < n; start += len) {
		len = n - start < 45 ? n - start : 45;
		/* Not inside a character: back to its first byte. */
		while (start + len < n && ((unsigned char)s[start + len] & 0xc0) == 0x80)
			len--;
		sodium_bin2base64(enc, sizeof(enc), (const unsigned char *)s + start, len,
				  sodium_base64_VARIANT_ORIGINAL);
		util_buf_printf(b, " =?UTF-8?B?%s?=\r\n", enc);
	}
}

/* The message as SMTP carries it: headers, then the text with CRLF line
 * ends and lines cut at MAX_LINE bytes. */
static void mail_text(struct util_buf *b, const json_t *cfg, const struct channels_msg *m)
{
	char *subject = defang(m->subject, ""), *text = defang(m->text, "\n\t");
	const json_t *to;
	const char *p, *end;
	unsigned char raw[12];
	char date[64], id[25];
	struct tm tm;
	time_t now = time(NULL);
	size_t i;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(id, sizeof(id), raw, sizeof(raw));
	util_buf_printf(b, "Date: %s\r\nFrom: %s\r\nTo: ", date,
			json_string_value(json_object_get(cfg, "from")));
	json_array_foreach(json_object_get(cfg, "to"), i, to)
		util_buf_printf(b, "%s%s", i ? ", " : "", json_string_value(to));
	util_buf_printf(b, "\r\nMessage-ID: <%s@%s>\r\n", id, m->server);
	if (!subject || !text)
		goto out;
	subject_header(b, subject);
	util_buf_printf(b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
			"Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n"
			"X-Ward-Rule: %s\r\n\r\n", m->rule);
	for (p = text; *p; p = end + (*end == '\n')) {
		end = strchr(p, '\n');
		if (!end)
			end = p + strlen(p);
		util_buf_append(b, p, (size_t)(end - p) < MAX_LINE ? (size_t)(end - p) : MAX_LINE);
		util_buf_append(b, "\r\n", 2);
	}
out:
	free(subject);
	free(text);
}

/* The common options of one libcurl transfer. */
static void curl_common(CURL *c, const json_t *cfg, const char *url, const char *protocols,
			char *err)
{
	const char *ca = json_string_value(json_object_get(cfg, "ca_file"));

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, SEND_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	if (ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
}

static bool send_email(const json_t *cfg, const struct channels_msg *m, char *errbuf,
		       size_t errlen)
{
	const char *url = json_string_value(json_object_get(cfg, "url"));
	const char *tls = json_string_value(json_object_get(cfg, "starttls"));
	const char *user = json_string_value(json_object_get(cfg, "user"));
	const char *pass = json_string_value(json_object_get(cfg, "password"));
	struct curl_slist *rcpt = NULL, *more;
	struct util_buf mail = { 0 };
	struct reader r = { 0 };
	char err[CURL_ERROR_SIZE] = "", *from = NULL, *one;
	const json_t *to;
	CURL *c = curl_easy_init();
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	size_t i;

	from = util_printf("<%s>", json_string_value(json_object_get(cfg, "from")));
	json_array_foreach(json_object_get(cfg, "to"), i, to) {
		one = util_printf("<%s>", json_string_value(to));
		more = one ? curl_slist_append(rcpt, one) : NULL;
		free(one);
		if (!more)
			goto out;
		rcpt = more;
	}
	mail_text(&mail, cfg, m);
	if (!c || !from || !mail.data || !strstr(mail.data, "\r\n\r\n"))
		goto out;
	r.data = mail.data;
	r.len = mail.len;
	curl_common(c, cfg, url, "smtp,smtps", err);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_mail);
	curl_easy_setopt(c, CURLOPT_READDATA, &r);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_USE_SSL, !tls || strcmp(tls, "try") == 0 ? CURLUSESSL_TRY :
			 strcmp(tls, "required") == 0 ? CURLUSESSL_ALL : CURLUSESSL_NONE);
	if (user)
		curl_easy_setopt(c, CURLOPT_USERNAME, user);
	if (pass)
		curl_easy_setopt(c, CURLOPT_PASSWORD, pass);
	rc = curl_easy_perform(c);
out:
	if (rc != CURLE_OK)
		util_set_msg(errbuf, errlen, "%s: %s", url, err[0] ? err : curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	curl_slist_free_all(rcpt);
	util_buf_free(&mail);
	free(from);
	return rc == CURLE_OK;
}

/* ---- syslog --------------------------------------------------------- */

/* The severity of an alert of rule kind kind (RFC 5424, 6.2.1). */
static int severity(const char *kind)
{
	if (strcmp(kind, "outbreak") == 0)
		return 2;
	if (strcmp(kind, "detection") == 0)
		return 4;
	return strcmp(kind, "test") == 0 ? 6 : 3;
}

/* Copies at most max bytes of s into b, ending on a whole UTF-8
 * character. */
static void append_cut(struct util_buf *b, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max) {
		n = max;
		while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	util_buf_append(b, s, n);
}

/* One message in RFC 5424's format: PRI, version 1, the time in UTC,
 * this server's name, "wardd", its pid, MSGID "alert", no structured data,
 * and as MSG a byte order mark and UTF-8 text (the summary, then the
 * alert's JSON). */
static void syslog_line(struct util_buf *b, const json_t *cfg, const struct channels_msg *m)
{
	const char *fac = json_string_value(json_object_get(cfg, "facility"));
	struct timeval tv;
	struct tm tm;
	char when[40], *json = json_dumps(m->alert, JSON_COMPACT), host[256];
	char *summary = defang(m->summary, "");
	size_t i;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	/* HOSTNAME: printable ASCII without spaces, at most 255. */
	snprintf(host, sizeof(host), "%s", m->server);
	for (i = 0; host[i]; i++)
		if (host[i] <= ' ' || host[i] >= 0x7f)
			host[i] = '-';
	util_buf_printf(b, "<%d>1 %s.%06ldZ %s wardd %ld alert - \xef\xbb\xbf",
			facility_code(fac ? fac : "daemon") * 8 + severity(m->kind), when,
			(long)tv.tv_usec, host[0] ? host : "-", (long)getpid());
	append_cut(b, summary ? summary : "", 400);
	util_buf_append(b, " ", 1);
	if (json && b->len < MAX_SYSLOG)
		append_cut(b, json, MAX_SYSLOG - b->len);
	free(json);
	free(summary);
}

/* Connects fd to addr within CONNECT_TIMEOUT seconds. */
static bool connect_within(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int flags = fcntl(fd, F_GETFL), err = 0;
	socklen_t elen = sizeof(err);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
		return false;
	if (connect(fd, addr, len) != 0) {
		if (errno != EINPROGRESS ||
		    poll(&p, 1, (int)CONNECT_TIMEOUT * 1000) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err) {
			if (err)
				errno = err;
			else if (errno == EINPROGRESS)
				errno = ETIMEDOUT;
			return false;
		}
	}
	return fcntl(fd, F_SETFL, flags) == 0;
}

/* Sends the len bytes at data to address (syslog_address()). */
static bool syslog_deliver(const char *address, const char *data, size_t len, char *errbuf,
			   size_t errlen)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = SEND_TIMEOUT };
	struct util_buf framed = { 0 };
	char host[256];
	const char *colon, *what = "sending";
	bool tcp = strncmp(address, "tcp://", 6) == 0, ok = false;
	int fd = -1, rc;

	if (strncmp(address, "unix:", 5) == 0) {
		snprintf(un.sun_path, sizeof(un.sun_path), "%s", address + 5);
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		ok = fd >= 0 && sendto(fd, data, len, 0, (struct sockaddr *)&un, sizeof(un)) ==
		     (ssize_t)len;
		goto out;
	}
	colon = strrchr(address + 6, ':');
	snprintf(host, sizeof(host), "%.*s", (int)(colon - address - 6), address + 6);
	/* A bracketed IPv6 address loses its brackets. */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	hints.ai_socktype = tcp ? SOCK_STREAM : SOCK_DGRAM;
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc != 0) {
		util_set_msg(errbuf, errlen, "%s: %s", address, gai_strerror(rc));
		return false;
	}
	what = "connecting";
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    !connect_within(fd, ai->ai_addr, ai->ai_addrlen))
		goto out;
	what = "sending";
	/* Over TCP each message goes with its length first (RFC 6587,
	 * octet counting). */
	if (tcp && util_buf_printf(&framed, "%zu ", len) == 0 &&
	    util_buf_append(&framed, data, len) == 0) {
		data = framed.data;
		len = framed.len;
	}
	ok = send(fd, data, len, MSG_NOSIGNAL) == (ssize_t)len;
out:
	if (!ok)
		util_set_msg(errbuf, errlen, "%s: %s: %s", address, what, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	util_buf_free(&framed);
	return ok;
}

static bool send_syslog(const json_t *cfg, const struct channels_msg *m, char *errbuf,
			size_t errlen)
{
	struct util_buf line = { 0 };
	bool ok;

	syslog_line(&line, cfg, m);
	if (!line.data) {
		util_set_msg(errbuf, errlen, "out of memory");
		return false;
	}
	ok = syslog_deliver(json_string_value(json_object_get(cfg, "address")), line.data,
			    line.len, errbuf, errlen);
	util_buf_free(&line);
	return ok;
}

/* ---- webhook -------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static bool send_webhook(const json_t *cfg, const struct channels_msg *m, char *errbuf,
			 size_t errlen)
{
	const char *url = json_string_value(json_object_get(cfg, "url"));
	const char *secret = json_string_value(json_object_get(cfg, "secret"));
	char *body = json_dumps(m->alert, JSON_COMPACT), err[CURL_ERROR_SIZE] = "";
	char hex[2 * crypto_auth_hmacsha256_BYTES + 1], *sig = NULL;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	struct curl_slist *headers = NULL, *more;
	CURL *c = curl_easy_init();
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	long status = 0;
	crypto_auth_hmacsha256_state st;

	headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!c || !body || !headers)
		goto out;
	/* The receiver checks the body came from this server: HMAC-SHA256 of
	 * it under the channel's secret. */
	if (secret) {
		crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
		crypto_auth_hmacsha256_final(&st, mac);
		sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
		sig = util_printf("X-Ward-Signature: sha256=%s", hex);
		more = sig ? curl_slist_append(headers, sig) : NULL;
		if (!more)
			goto out;
		headers = more;
	}
	curl_common(c, cfg, url, "https", err);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "wardd/" WARD_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
out:
	if (rc != CURLE_OK)
		util_set_msg(errbuf, errlen, "%s: %s", url, err[0] ? err : curl_easy_strerror(rc));
	else if (status < 200 || status > 299)
		util_set_msg(errbuf, errlen, "%s answered HTTP %ld", url, status);
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	free(body);
	free(sig);
	return rc == CURLE_OK && status >= 200 && status <= 299;
}

/* ---- the table ------------------------------------------------------ */

static const struct member email_members[] = {
	{ "url", true, F_SMTP_URL },
	{ "from", true, F_ADDRESS },
	{ "to", true, F_ADDRESSES },
	{ "starttls", false, F_STARTTLS },
	{ "user", false, F_TEXT },
	{ "password", false, F_SECRET },
	{ "ca_file", false, F_FILE },
	{ NULL, false, F_TEXT },
};

static const struct member syslog_members[] = {
	{ "address", true, F_SYSLOG_ADDRESS },
	{ "facility", false, F_FACILITY },
	{ NULL, false, F_TEXT },
};

static const struct member webhook_members[] = {
	{ "url", true, F_HTTPS_URL },
	{ "secret", false, F_SECRET },
	{ "ca_file", false, F_FILE },
	{ NULL, false, F_TEXT },
};

static const struct kind kinds[] = {
	{ "email", email_members, send_email },
	{ "syslog", syslog_members, send_syslog },
	{ "webhook", webhook_members, send_webhook },
};

static const struct kind *kind_of(const char *name)
{
	size_t i;

	for (i = 0; name && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

bool channels_kind_valid(const char *kind)
{
	return kind_of(kind) != NULL;
}

bool channels_check(const char *kind, const json_t *config, char *errbuf, size_t errlen)
{
	const struct kind *k = kind_of(kind);
	const struct member *m;
	const char *key;
	json_t *v;

	if (!k) {
		util_set_msg(errbuf, errlen, "kind: expected email, syslog or webhook");
		return false;
	}
	if (!json_is_object(config)) {
		util_set_msg(errbuf, errlen, "config: expected an object");
		return false;
	}
	json_object_foreach((json_t *)config, key, v) {
		for (m = k->members; m->name && strcmp(m->name, key) != 0; m++)
			;
		if (!m->name) {
			util_set_msg(errbuf, errlen, "config: %.64s: not an option of a%s %s "
				     "channel", key, kind[0] == 'e' ? "n" : "", kind);
			return false;
		}
		if (!check_member(m, v, errbuf, errlen))
			return false;
	}
	for (m = k->members; m->name; m++)
		if (m->required && !json_object_get(config, m->name)) {
			util_set_msg(errbuf, errlen, "config: %s: missing (a%s %s channel needs "
				     "it)", m->name, kind[0] == 'e' ? "n" : "", kind);
			return false;
		}
	return true;
}

json_t *channels_public(const json_t *config)
{
	json_t *out = json_deep_copy(config);
	const char *key;
	json_t *v;

	json_object_foreach(out, key, v)
		if (strcmp(key, "password") == 0 || strcmp(key, "secret") == 0)
			json_object_set_new(out, key, json_string("(set)"));
	return out;
}

bool channels_send(const char *kind, const json_t *config, const struct channels_msg *msg,
		   char *errbuf, size_t errlen)
{
	const struct kind *k = kind_of(kind);

	if (!k) {
		util_set_msg(errbuf, errlen, "no channel of kind %s", kind ? kind : "(none)");
		return false;
	}
	return k->send(config, msg, errbuf, errlen);
}
