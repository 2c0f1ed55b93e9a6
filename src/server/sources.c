/* sources.c -- the update source table (see sources.h). */
#include "server/sources.h"

#include <stdio.h>
#include <string.h>

#include "common/cidr.h"

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
		if ((strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) ||
		    strlen(url) > 2048 || strcspn(url, " \t\r\n\"?#") != strlen(url)) {
			snprintf(errbuf, errlen, "update source %zu: '%s' is not an http:// or "
				 "https:// URL (without query or fragment)", i + 1, url);
			return false;
		}
	}
	return true;
}

const char *sources_select(const json_t *table, const json_t *addresses)
{
	struct cidr c;
	json_t *e, *a;
	size_t i, j;

	json_array_foreach(table, i, e) {
		if (!cidr_parse(json_string_value(json_object_get(e, "range")), &c))
			continue;
		json_array_foreach(addresses, j, a)
			if (json_is_string(a) && cidr_contains(&c, json_string_value(a)))
				return json_string_value(json_object_get(e, "url"));
	}
	return NULL;
}
