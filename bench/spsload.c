/* spsload.c -- load generator for smart protection servers: sends
 * hash-prefix lookups over real HTTPS connections and reports lookups per
 * second and latency percentiles as JSON.
 *
 *   spsload --url https://127.0.0.1:8444 --ca ca.crt --connections 8
 *           --batch 1024 --duration 10
 *       closed loop: each connection sends a request of --batch random
 *       queries as soon as the previous one is answered;
 *   spsload ... --batch 1 --rate 5000
 *       open loop: single-query requests started at --rate per second
 *       in all, on whichever connection is free; latency counts from the
 *       moment a request was due, so a server that falls behind shows it.
 *
 * The first --warmup seconds (default 1: connections and TLS sessions being
 * set up) are run but not counted.
 *
 * One thread, libcurl's multi interface.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct conn {
	CURL *h;
	struct curl_slist *hdrs;
	char *body;
	size_t answered;   /* bytes of the answer */
	uint64_t due_ns;   /* when the request was due (open loop) or sent */
	bool busy;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	((struct conn *)arg)->answered += size * n;
	return size * n;
}

/* A request body of n random md5 queries of bits bits. */
static char *make_body(unsigned n, unsigned bits, uint64_t *seed)
{
	char *b = malloc((size_t)n * 24 + 1), *p = b;
	uint32_t v, mask = bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
	unsigned i;

	for (i = 0; b && i < n; i++) {
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		v = (uint32_t)(*seed >> 32) & mask;
		p += snprintf(p, 24 + 1, "md5:%08x/%u\n", v, bits);
	}
	return b;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void start(CURLM *m, struct conn *c, const char *url, const char *ca, unsigned batch,
		  unsigned bits, uint64_t *seed, uint64_t due)
{
	free(c->body);
	c->body = make_body(batch, bits, seed);
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	curl_easy_setopt(c->h, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 30L);
	c->answered = 0;
	c->due_ns = due;
	c->busy = true;
	curl_multi_add_handle(m, c->h);
}

/* A number option's value, or exit 2 naming the option. */
static double spsload_number(const char *text, const char *option)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || v < 0) {
		fprintf(stderr, "ward-spsload: --%s: '%s' is not a number\n", option, text);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "ca", required_argument, NULL, 'c' },
		{ "connections", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "bits", required_argument, NULL, 'B' },
		{ "duration", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "warmup", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	const char *base = NULL, *ca = NULL;
	unsigned nconn = 8, batch = 1024, bits = 30, i;
	double duration = 10, rate = 0, warmup = 1;
	uint64_t seed = 1, t0, end, next_due, lookups = 0, requests = 0, errors = 0;
	uint64_t *lat = NULL;
	size_t nlat = 0, caplat = 0;
	struct conn *conns;
	char url[1024];
	CURLM *m;
	CURLMsg *msg;
	int c, running, left;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': base = optarg; break;
		case 'c': ca = optarg; break;
		case 'n': nconn = (unsigned)spsload_number(optarg, "connections"); break;
		case 'b': batch = (unsigned)spsload_number(optarg, "batch"); break;
		case 'B': bits = (unsigned)spsload_number(optarg, "bits"); break;
		case 'd': duration = spsload_number(optarg, "duration"); break;
		case 'r': rate = spsload_number(optarg, "rate"); break;
		case 'w': warmup = spsload_number(optarg, "warmup"); break;
		default: return 2;
		}
	}
	if (!base || !ca || !nconn || !batch || bits < 8 || bits > 32) {
		fprintf(stderr, "usage: spsload --url URL --ca FILE [--connections N] [--batch N] "
			"[--bits B] [--duration S] [--rate PER_S]\n");
		return 2;
	}
	snprintf(url, sizeof(url), "%s/sps/v1/lookup", base);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	/* Keep every connection: the multi handle's cache otherwise shrinks
	 * with the handles added at a moment, and closes the rest. */
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)nconn);
	conns = calloc(nconn, sizeof(*conns));
	for (i = 0; i < nconn; i++) {
		conns[i].h = curl_easy_init();
		conns[i].hdrs = curl_slist_append(NULL, "Content-Type: text/plain");
	}
	next_due = now_ns();
	t0 = next_due + (uint64_t)(warmup * 1e9);
	end = t0 + (uint64_t)(duration * 1e9);
	for (;;) {
		uint64_t now = now_ns();

		/* Start what is due: every free connection (closed loop), or
		 * requests at the rate (open loop). */
		for (i = 0; now < end && i < nconn; i++) {
			if (conns[i].busy)
				continue;
			if (rate > 0) {
				if (next_due > now)
					break;
				start(m, &conns[i], url, ca, batch, bits, &seed, next_due);
				next_due += (uint64_t)(1e9 / rate);
			} else {
				start(m, &conns[i], url, ca, batch, bits, &seed, now);
			}
		}
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			struct conn *cn = NULL;
			long status = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			for (i = 0; i < nconn; i++)
				if (conns[i].h == msg->easy_handle)
					cn = &conns[i];
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			curl_multi_remove_handle(m, msg->easy_handle);
			cn->busy = false;
			if (cn->due_ns < t0)
				continue;
			requests++;
			if (msg->data.result != CURLE_OK || status != 200) {
				errors++;
				continue;
			}
			lookups += batch;
			if (nlat == caplat) {
				caplat = caplat ? caplat * 2 : 4096;
				lat = realloc(lat, caplat * sizeof(*lat));
			}
			lat[nlat++] = now_ns() - cn->due_ns;
		}
		if (now_ns() >= end && !running)
			break;
		curl_multi_poll(m, NULL, 0, rate > 0 ? 1 : 100, NULL);
	}
	{
		double secs = (double)(now_ns() - t0) / 1e9;

		qsort(lat, nlat, sizeof(*lat), cmp_u64);
		printf("{\"connections\": %u, \"batch\": %u, \"bits\": %u, \"rate\": %.0f, "
		       "\"seconds\": %.2f, \"requests\": %llu, \"errors\": %llu, "
		       "\"lookups\": %llu, \"lookups_per_s\": %.0f, \"requests_per_s\": %.0f, "
		       "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
		       nconn, batch, bits, rate, secs, (unsigned long long)requests,
		       (unsigned long long)errors, (unsigned long long)lookups,
		       (double)lookups / secs, (double)requests / secs,
		       nlat ? (double)lat[nlat / 2] / 1e6 : 0.0,
		       nlat ? (double)lat[nlat * 99 / 100] / 1e6 : 0.0,
		       nlat ? (double)lat[nlat - 1] / 1e6 : 0.0);
	}
	for (i = 0; i < nconn; i++) {
		curl_easy_cleanup(conns[i].h);
		curl_slist_free_all(conns[i].hdrs);
		free(conns[i].body);
	}
	free(conns);
	free(lat);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	return errors ? 1 : 0;
}
