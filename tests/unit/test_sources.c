/* test_sources.c -- the update source table: selection for IPv4 and IPv6
 * agents in order, the server as fallback, and the limits on the table. */
#include <jansson.h>

#include "check.h"
#include "server/sources.h"

static const char *pick(const json_t *table, const char *addresses)
{
	json_t *a = json_loads(addresses, 0, NULL);
	const char *url = sources_select(table, a);

	json_decref(a);
	return url ? url : "(server)";
}

int main(void)
{
	char msg[256];
	json_t *t = json_loads(
		"[{\"range\": \"10.1.0.0/16\", \"url\": \"https://berlin.example/updates\"},"
		" {\"range\": \"10.0.0.0/8\", \"url\": \"https://corp.example/updates\"},"
		" {\"range\": \"2001:db8:10::/48\", \"url\": \"https://v6.example/updates\"},"
		" {\"range\": \"::1\", \"url\": \"https://loopback6.example\"}]", 0, NULL), *big;
	size_t i;

	CHECK(t && sources_validate(t, msg, sizeof(msg)));
	CHECK(strcmp(pick(t, "[\"10.1.9.9\"]"), "https://berlin.example/updates") == 0);
	CHECK(strcmp(pick(t, "[\"10.2.9.9\"]"), "https://corp.example/updates") == 0);
	CHECK(strcmp(pick(t, "[\"192.0.2.1\", \"2001:db8:10:5::1\"]"),
		     "https://v6.example/updates") == 0);
	CHECK(strcmp(pick(t, "[\"::1\"]"), "https://loopback6.example") == 0);
	CHECK(strcmp(pick(t, "[\"192.0.2.1\", \"2001:db8:11::1\"]"), "(server)") == 0);
	CHECK(strcmp(pick(t, "[]"), "(server)") == 0);
	json_decref(t);

	/* Plain HTTP mirrors are accepted (payloads are signed); other schemes
	 * and URLs with a query are not. */
	t = json_loads("[{\"range\": \"10.0.0.0/8\", \"url\": \"http://plain.example\"}]", 0, NULL);
	CHECK(sources_validate(t, msg, sizeof(msg)));
	json_decref(t);
	t = json_loads("[{\"range\": \"10.0.0.0/8\", \"url\": \"ftp://x.example\"},"
		       " {\"range\": \"::1\", \"url\": \"https://x.example/?a=b\"}]", 0, NULL);
	CHECK(!sources_validate(t, msg, sizeof(msg)));
	CHECK_STR_CONTAINS(msg, "update source 1: 'ftp://x.example' is not an http:// or "
			   "https:// URL");
	CHECK(json_array_remove(t, 0) == 0);
	CHECK(!sources_validate(t, msg, sizeof(msg)));
	CHECK_STR_CONTAINS(msg, "without query");
	json_decref(t);
	t = json_loads("[{\"range\": \"10.0.0.0/99\", \"url\": \"https://x\"}]", 0, NULL);
	CHECK(!sources_validate(t, msg, sizeof(msg)));
	CHECK_STR_CONTAINS(msg, "'10.0.0.0/99' is not an IPv4 or IPv6");
	json_decref(t);
	/* 1024 entries are accepted, 1025 are not. */
	big = json_array();
	for (i = 0; i < SOURCES_MAX; i++)
		json_array_append_new(big, json_pack("{ss ss}", "range", "10.0.0.0/8", "url",
						     "https://x.example"));
	CHECK(sources_validate(big, msg, sizeof(msg)));
	json_array_append_new(big, json_pack("{ss ss}", "range", "10.0.0.0/8", "url",
					     "https://x.example"));
	CHECK(!sources_validate(big, msg, sizeof(msg)));
	CHECK_STR_CONTAINS(msg, "at most 1024 entries");
	json_decref(big);
	return check_finish();
}
