/* rest.c -- JSON over HTTPS with libcurl (see rest.h). */
#include "common/rest.h"

#include <curl/curl.h>
#include <errno.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

/* Answers larger than this are refused: no API answer comes near it. */
#define MAX_ANSWER (64u << 20)

struct rest_client {
	CURL *curl;
	char *base;
	char *ca_file;  /* NULL: the system's CAs */
	char *auth;     /* "Authorization: Bearer ..." */
	char *proxy;    /* NULL: the environment's */
	char *pins;     /* "sha256//...;..." keys the server must have; NULL: any */
	long ipresolve; /* CURL_IPRESOLVE_* */
	const atomic_bool *abort; /* set: transfers end at once (NULL: never) */
};

void rest_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct rest_client *rest_new(const char *base, const char *ca_file)
{
	struct rest_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->curl = curl_easy_init();
	c->base = strdup(base);
	c->ca_file = ca_file ? strdup(ca_file) : NULL;
	c->ipresolve = CURL_IPRESOLVE_WHATEVER;
	if (!c->curl || !c->base || (ca_file && !c->ca_file)) {
		rest_free(c);
		return NULL;
	}
	return c;
}

void rest_free(struct rest_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->base);
	free(c->ca_file);
	free(c->auth);
	free(c->proxy);
	free(c->pins);
	free(c);
}

int rest_set_pins(struct rest_client *c, const char *pins)
{
	char *p = pins ? strdup(pins) : NULL;

	if (pins && !p)
		return -1;
	free(c->pins);
	c->pins = p;
	return 0;
}

int rest_set_route(struct rest_client *c, const char *proxy, int af)
{
	char *p = proxy ? strdup(proxy) : NULL;

	if (proxy && !p)
		return -1;
	free(c->proxy);
	c->proxy = p;
	c->ipresolve = af == AF_INET ? CURL_IPRESOLVE_V4 : af == AF_INET6 ? CURL_IPRESOLVE_V6 :
		       CURL_IPRESOLVE_WHATEVER;
	return 0;
}

/* libcurl's progress callback, called at least once a second while a
 * transfer waits: non-zero ends it (CURLE_ABORTED_BY_CALLBACK). */
static int check_abort(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load((const atomic_bool *)arg) ? 1 : 0;
}

void rest_set_abort(struct rest_client *c, const atomic_bool *flag)
{
	c->abort = flag;
}

/* Resets the handle for a transfer to url with the options every transfer
 * shares: timeouts, the route, certificate checks against the client's CA
 * (trust_ca) or the system's. */
static void prepare(struct rest_client *c, const char *url, long timeout, bool trust_ca)
{
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	if (trust_ca && c->ca_file) {
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_file);
		/* The server CA alone: not the system's CA directory as well. */
		curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
		if (c->pins)
			curl_easy_setopt(c->curl, CURLOPT_PINNEDPUBLICKEY, c->pins);
	}
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, timeout < 15 ? timeout : 15L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_IPRESOLVE, c->ipresolve);
	if (c->proxy)
		curl_easy_setopt(c->curl, CURLOPT_PROXY, c->proxy);
	if (c->abort) {
		curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, check_abort);
		curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, (void *)c->abort);
		curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	}
}

int rest_set_token(struct rest_client *c, const char *token)
{
	char *auth = NULL;

	if (token) {
		auth = util_printf("Authorization: Bearer %s", token);
		if (!auth)
			return -1;
	}
	free(c->auth);
	c->auth = auth;
	return 0;
}

/* Where an answer goes. */
struct answer_sink {
	struct util_buf *b;
	size_t max;
	bool over;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct answer_sink *a = arg;

	if (a->b->len + size * n > a->max) {
		a->over = true;
		return 0; /* libcurl fails the transfer */
	}
	if (util_buf_append(a->b, p, size * n) != 0)
		return 0;
	return size * n;
}

/* Sends method url with body (len bytes of content_type; NULL: none), the
 * token if any, and collects the answer (at most max bytes) in in. */
static enum err exchange(struct rest_client *c, const char *method, const char *url,
			 const char *body, size_t len, const char *content_type,
			 long timeout, size_t max, long *status, struct util_buf *in,
			 char *errbuf, size_t errlen)
{
	struct answer_sink sink = { in, max, false };
	struct curl_slist *headers = NULL;
	char ctype[128];
	CURLcode rc;

	*status = 0;
	snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
	headers = curl_slist_append(headers, ctype);
	if (c->auth)
		headers = curl_slist_append(headers, c->auth);
	prepare(c, url, timeout, true);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
	if (body) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(headers);
	if (rc != CURLE_OK) {
		snprintf(errbuf, errlen, "%s: %s", url, sink.over ? "answer too large" :
			 curl_easy_strerror(rc));
		return sink.over ? ERR_PROTO : ERR_NET;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	return ERR_OK;
}

/* Returns base + path, or NULL when out of memory. */
static char *make_url(const struct rest_client *c, const char *path)
{
	return util_printf("%s%s", c->base, path);
}

enum err rest_send(struct rest_client *c, const char *method, const char *path,
		   const char *body, size_t len, const char *content_type, long timeout,
		   size_t max, long *status, struct util_buf *answer, char *errbuf,
		   size_t errlen)
{
	char *url = make_url(c, path);
	enum err err;

	if (!url) {
		*status = 0;
		snprintf(errbuf, errlen, "out of memory");
		return ERR_NOMEM;
	}
	err = exchange(c, method, url, body, len, content_type, timeout, max, status, answer,
		       errbuf, errlen);
	free(url);
	return err;
}

enum err rest_post_text(struct rest_client *c, const char *path, const char *body,
			size_t len, const char *content_type, long timeout, size_t max,
			long *status, struct util_buf *answer, char *errbuf, size_t errlen)
{
	return rest_send(c, "POST", path, body, len, content_type, timeout, max, status, answer,
			 errbuf, errlen);
}

enum err rest_call(struct rest_client *c, const char *method, const char *path,
		   json_t *body, long timeout, long *status, json_t **answer,
		   char *errbuf, size_t errlen)
{
	struct util_buf in = { 0 };
	char *url = make_url(c, path), *text = NULL, *ctype = NULL;
	enum err err;
	json_error_t jerr;

	*answer = NULL;
	*status = 0;
	if (body)
		text = json_dumps(body, JSON_COMPACT);
	if (!url || (body && !text)) {
		err = ERR_NOMEM;
		snprintf(errbuf, errlen, "out of memory");
		goto out;
	}
	err = exchange(c, method, url, text, text ? strlen(text) : 0, "application/json",
		       timeout, MAX_ANSWER, status, &in, errbuf, errlen);
	/* A text answer (an export as CSV) is handed over as a JSON string. */
	if (err == ERR_OK && in.len && *status < 300 &&
	    curl_easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype &&
	    strncmp(ctype, "text/", 5) == 0) {
		*answer = json_stringn(in.data, in.len);
		if (!*answer) {
			snprintf(errbuf, errlen, "%s: answer %ld is not UTF-8 text", url, *status);
			err = ERR_PROTO;
		}
	} else if (err == ERR_OK && in.len) {
		*answer = json_loadb(in.data, in.len, 0, &jerr);
		if (!*answer) {
			snprintf(errbuf, errlen, "%s: answer %ld is not JSON: %s", url, *status,
				 jerr.text);
			err = ERR_PROTO;
		}
	}
out:
	util_buf_free(&in);
	free(text);
	free(url);
	return err;
}

/* Where a download goes. */
struct sink {
	int fd;
	long long got, max;
	int error;   /* errno of a failed write; EFBIG past max */
};

static size_t on_file_data(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n, done = 0;
	ssize_t w;

	if (s->got + (long long)len > s->max) {
		s->error = EFBIG;
		return 0;
	}
	while (done < len) {
		w = write(s->fd, p + done, len - done);
		if (w < 0) {
			s->error = errno;
			return 0;
		}
		done += (size_t)w;
	}
	s->got += (long long)len;
	return len;
}

enum err rest_download(struct rest_client *c, const char *where, int fd, long long max,
		       long timeout, long *status, long *retry_after, char *errbuf,
		       size_t errlen)
{
	bool absolute = strncmp(where, "https://", 8) == 0 || strncmp(where, "http://", 7) == 0;
	struct curl_slist *headers = NULL;
	struct sink sink = { fd, 0, max, 0 };
	struct curl_header *h = NULL;
	enum err err = ERR_OK;
	char *url = util_printf("%s%s", absolute ? "" : c->base, where);
	CURLcode rc;

	*status = 0;
	*retry_after = 0;
	if (!url) {
		snprintf(errbuf, errlen, "out of memory");
		return ERR_NOMEM;
	}
	/* The credential goes to this server only, never to a mirror; a
	 * mirror's certificate is checked against the system's CAs (what it
	 * serves is signed, so a mirror may also be plain HTTP). */
	prepare(c, url, timeout, !absolute);
	if (!absolute) {
		if (c->auth)
			headers = curl_slist_append(headers, c->auth);
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https");
	} else {
		curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	}
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_file_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
	rc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	if (rc != CURLE_OK) {
		snprintf(errbuf, errlen, "%s: %s", url, sink.error ? strerror(sink.error) :
			 curl_easy_strerror(rc));
		err = ERR_NET;
	} else if (curl_easy_header(c->curl, "Retry-After", 0, CURLH_HEADER, -1, &h) ==
		   CURLHE_OK) {
		*retry_after = strtol(h->value, NULL, 10);
	}
	curl_slist_free_all(headers);
	free(url);
	return err;
}
