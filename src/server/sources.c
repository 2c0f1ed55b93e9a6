/* sources.c -- the update source table (see sources.h). */
#include "server/sources.h"

#include <stdio.h>
#include <sys/socket.h>
#include <string.h>

#include "common/cidr.h"

/* Whether url is an http(s) URL without query or fragment, of sane length. */
static bool plain_url(const char *url, bool https_only)
{
	return (strncmp(url, "https://", 8) == 0 ||
		(!https_only && strncmp(url, "http://", 7) == 0)) &&
	       strlen(url) <= 2048 && strcspn(url, " \t\r\n\"?#") == strlen(url);
}

bool sources_validate(const json_t *table, char *errbuf, size_t errlen)
{
	const char *range, *url;
	struct cidr c;
	json_t *e;
	size_t i;

	if (!json_is_array(table) || json_array_size(table) > SOURCES_MAX) {
		snprintf(errbuf, errlen, "update sources: expected a list of at most %d entries",
			 SOURCES_MAX);
		return false;
	}
	json_array_foreach(table, i, e) {
		if (json_unpack(e, "{s:s, s:s !}", "range", &range, "url", &url) != 0) {
			snprintf(errbuf, errlen, "update source %zu: expected {\"range\", \"url\"}",
				 i + 1);
			return false;
		}
		if (!cidr_parse(range, &c)) {
			snprintf(errbuf, errlen, "update source %zu: '%s' is not an IPv4 or IPv6 "
				 "address or CIDR range", i + 1, range);
			return false;
		}
		/* Plain HTTP is allowed: what a source serves is signed, and a
		 * mirror is often a plain web server inside the network. */
		if (!plain_url(url, false)) {
			snprintf(errbuf, errlen, "update source %zu: '%s' is not an http:// or "
				 "https:// URL (without query or fragment)", i + 1, url);
			return false;
		}
	}
	return true;
}

const json_t *sources_match(const json_t *table, const json_t *addresses)
{
	struct cidr c;
	const char *range;
	json_t *e, *a;
	size_t i, j;

	json_array_foreach(table, i, e) {
		range = json_string_value(json_object_get(e, "range"));
		if (range && strcmp(range, "*") == 0)
			return e;
		if (!range || !cidr_parse(range, &c))
			continue;
		json_array_foreach(addresses, j, a)
			if (json_is_string(a) && cidr_contains(&c, json_string_value(a)))
				return e;
	}
	return NULL;
}

bool sources_sps_validate(const json_t *lists, char *errbuf, size_t errlen)
{
	const char *range, *proxy = NULL;
	json_t *e, *urls, *u;
	struct cidr c;
	size_t i, j;

	if (!json_is_array(lists) || json_array_size(lists) > SOURCES_MAX) {
		snprintf(errbuf, errlen, "smart protection lists: expected a list of at most %d "
			 "entries", SOURCES_MAX);
		return false;
	}
	json_array_foreach(lists, i, e) {
		proxy = NULL;
		if (json_unpack(e, "{s:s, s:o, s?s !}", "range", &range, "sources", &urls,
				"proxy", &proxy) != 0) {
			snprintf(errbuf, errlen, "smart protection list %zu: expected {\"range\", "
				 "\"sources\", \"proxy\" (optional)}", i + 1);
			return false;
		}
		if (strcmp(range, "*") != 0 && !cidr_parse(range, &c)) {
			snprintf(errbuf, errlen, "smart protection list %zu: '%s' is not \"*\" or "
				 "an IPv4 or IPv6 address or CIDR range", i + 1, range);
			return false;
		}
		if (!json_is_array(urls) || json_array_size(urls) < 1 ||
		    json_array_size(urls) > SOURCES_SPS_URLS) {
			snprintf(errbuf, errlen, "smart protection list %zu: expected 1 to %d "
				 "sources", i + 1, SOURCES_SPS_URLS);
			return false;
		}
		json_array_foreach(urls, j, u)
			if (!json_is_string(u) ||
			    (strcmp(json_string_value(u), SOURCES_INTEGRATED) != 0 &&
			     !plain_url(json_string_value(u), true))) {
				snprintf(errbuf, errlen, "smart protection list %zu, source %zu: "
					 "expected an https:// URL or \"" SOURCES_INTEGRATED "\"",
					 i + 1, j + 1);
				return false;
			}
		if (proxy && !plain_url(proxy, false)) {
			snprintf(errbuf, errlen, "smart protection list %zu: proxy '%s' is not an "
				 "http:// URL", i + 1, proxy);
			return false;
		}
	}
	return true;
}

bool sources_sps_reachable(const json_t *list, int af)
{
	const char *proxy = json_string_value(json_object_get(list, "proxy"));
	json_t *u;
	size_t i;
	int f;

	if (proxy)
		return (f = cidr_url_family(proxy)) == AF_UNSPEC || f == af;
	json_array_foreach(json_object_get(list, "sources"), i, u) {
		if (strcmp(json_string_value(u), SOURCES_INTEGRATED) == 0)
			return true;
		f = cidr_url_family(json_string_value(u));
		if (f == AF_UNSPEC || f == af)
			return true;
	}
	return false;
}
