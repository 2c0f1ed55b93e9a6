/* grouping.c -- automatic client grouping rules (see grouping.h). */
#include "server/grouping.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cidr.h"

/* Whether host is suffix or ends with "." followed by it, ignoring case. */
static bool host_in(const char *host, const char *suffix)
{
	size_t h = strlen(host), s;

	while (*suffix == '.')
		suffix++;
	s = strlen(suffix);
	if (s == 0 || h < s || strcasecmp(host + h - s, suffix) != 0)
		return false;
	return h == s || host[h - s - 1] == '.';
}

/* What is wrong with a rule's match and value, or NULL. */
static const char *rule_problem(const char *match, const char *value)
{
	struct cidr c;

	if (strcmp(match, "ip") == 0)
		return cidr_parse(value, &c) ? NULL :
		       "is not an IPv4 or IPv6 address or CIDR range";
	if (strcmp(match, "host") == 0)
		return *value && strlen(value) <= 253 ? NULL : "is not a host name suffix";
	return "has a match other than ip or host";
}

bool grouping_validate(const json_t *rules, char *errbuf, size_t errlen)
{
	const char *match, *value, *domain, *problem;
	json_t *r;
	size_t i;

	if (!json_is_array(rules)) {
		snprintf(errbuf, errlen, "rules: expected a list");
		return false;
	}
	json_array_foreach(rules, i, r) {
		if (json_unpack(r, "{s:s, s:s, s:s !}", "match", &match, "value", &value, "domain",
				&domain) != 0) {
			snprintf(errbuf, errlen, "rule %zu: expected {\"match\": \"ip\" or "
				 "\"host\", \"value\", \"domain\"}", i + 1);
			return false;
		}
		problem = rule_problem(match, value);
		if (problem) {
			snprintf(errbuf, errlen, "rule %zu: '%s' %s", i + 1, value, problem);
			return false;
		}
		if (domain[0] != '/') {
			snprintf(errbuf, errlen, "rule %zu: domain '%s' must be a path (/A/B)",
				 i + 1, domain);
			return false;
		}
	}
	return true;
}

/* Whether any address in list lies in c. */
static bool any_in(const struct cidr *c, const json_t *list)
{
	json_t *a;
	size_t i;

	json_array_foreach(list, i, a)
		if (json_is_string(a) && cidr_contains(c, json_string_value(a)))
			return true;
	return false;
}

const char *grouping_match(const json_t *rules, const json_t *status)
{
	const char *host = json_string_value(json_object_get(status, "hostname"));
	const char *match, *value;
	struct cidr c;
	json_t *r;
	size_t i;

	json_array_foreach(rules, i, r) {
		match = json_string_value(json_object_get(r, "match"));
		value = json_string_value(json_object_get(r, "value"));
		if (!match || !value)
			continue;
		if (strcmp(match, "ip") == 0 && cidr_parse(value, &c) &&
		    any_in(&c, json_object_get(status, c.family == AF_INET ? "ipv4" : "ipv6")))
			return json_string_value(json_object_get(r, "domain"));
		if (strcmp(match, "host") == 0 && host && host_in(host, value))
			return json_string_value(json_object_get(r, "domain"));
	}
	return NULL;
}
