/* rest.c -- JSON over HTTPS with libcurl (see rest.h). */
#include "common/rest.h"

#include <curl/curl.h>
#include <errno.h>
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
	char *ca_file;
	char *auth;   /* "Authorization: Bearer ..." */
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
	c->ca_file = strdup(ca_file);
	if (!c->curl || !c->base || !c->ca_file) {
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
	free(c);
}

int rest_set_token(struct rest_client *c, const char *token)
{
	char *auth = NULL;

	if (token) {
		auth = malloc(strlen(token) + 32);
		if (!auth)
			return -1;
		sprintf(auth, "Authorization: Bearer %s", token);
	}
	free(c->auth);
	c->auth = auth;
	return 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct util_buf *b = arg;

	if (b->len + size * n > MAX_ANSWER || util_buf_append(b, p, size * n) != 0)
		return 0; /* libcurl fails the transfer */
	return size * n;
}

enum rest_err rest_call(struct rest_client *c, const char *method, const char *path,
			json_t *body, long timeout, long *status, json_t **answer,
			char *errbuf, size_t errlen)
{
	struct curl_slist *headers = NULL;
	struct util_buf in = { 0 };
	char *url = NULL, *text = NULL;
	enum rest_err err = REST_OK;
	json_error_t jerr;
	CURLcode rc;

	*answer = NULL;
	*status = 0;
	url = malloc(strlen(c->base) + strlen(path) + 1);
	if (body)
		text = json_dumps(body, JSON_COMPACT);
	if (!url || (body && !text)) {
		err = REST_ENOMEM;
		snprintf(errbuf, errlen, "out of memory");
		goto out;
	}
	sprintf(url, "%s%s", c->base, path);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	if (c->auth)
		headers = curl_slist_append(headers, c->auth);
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_file);
	/* The server CA alone: not the system's CA directory as well. */
	curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &in);
	if (text)
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, text);
	rc = curl_easy_perform(c->curl);
	if (rc != CURLE_OK) {
		snprintf(errbuf, errlen, "%s: %s", url, curl_easy_strerror(rc));
		err = REST_ENET;
		goto out;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	if (in.len) {
		*answer = json_loadb(in.data, in.len, 0, &jerr);
		if (!*answer) {
			snprintf(errbuf, errlen, "%s: answer %ld is not JSON: %s", url, *status,
				 jerr.text);
			err = REST_EPROTO;
		}
	}
out:
	curl_slist_free_all(headers);
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

enum rest_err rest_download(struct rest_client *c, const char *where, int fd, long long max,
			    long timeout, long *status, long *retry_after, char *errbuf,
			    size_t errlen)
{
	bool absolute = strncmp(where, "https://", 8) == 0 || strncmp(where, "http://", 7) == 0;
	struct curl_slist *headers = NULL;
	struct sink sink = { fd, 0, max, 0 };
	struct curl_header *h = NULL;
	enum rest_err err = REST_OK;
	char *url = malloc(strlen(c->base) + strlen(where) + 1);
	CURLcode rc;

	*status = 0;
	*retry_after = 0;
	if (!url) {
		snprintf(errbuf, errlen, "out of memory");
		return REST_ENOMEM;
	}
	sprintf(url, "%s%s", absolute ? "" : c->base, where);
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	/* The credential goes to this server only, never to a mirror; a
	 * mirror's certificate is checked against the system's CAs (what it
	 * serves is signed, so a mirror may also be plain HTTP). */
	if (!absolute) {
		if (c->auth)
			headers = curl_slist_append(headers, c->auth);
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_file);
		curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https");
	} else {
		curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	}
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_file_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
	rc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	if (rc != CURLE_OK) {
		snprintf(errbuf, errlen, "%s: %s", url, sink.error ? strerror(sink.error) :
			 curl_easy_strerror(rc));
		err = REST_ENET;
	} else if (curl_easy_header(c->curl, "Retry-After", 0, CURLH_HEADER, -1, &h) ==
		   CURLHE_OK) {
		*retry_after = strtol(h->value, NULL, 10);
	}
	curl_slist_free_all(headers);
	free(url);
	return err;
}
