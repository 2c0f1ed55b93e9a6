/* test_sources.c -- the update source table: selection for IPv4 and IPv6
 * agents in order, the server as fallback, and the limits on the table;
 * the smart protection source lists: the standard list, checks naming the
 * list, and which address families reach a list. */
#include <jansson.h>
#include <sys/socket.h>

#include "check.h"
#include "server/sources.h"

static const char *pick(const json_t *table, const char *addresses)
{
	json_t *a = json_loads(addresses, 0, NULL);
	const char *url = json_string_value(json_object_get(sources_match(table, a), "url"));

	json_decref(a);
	return url ? url : "(server)";
}

static void test_sps_lists(void)
{
	char msg[256];
	json_t *t = json_loads(
		"[{\"range\": \"10.1.0.0/16\", \"sources\": [\"https://192.0.2.10:8443\"]},"
		" {\"range\": \"2001:db8::/32\", \"sources\": [\"https://[2001:db8::5]:8443\","
		"  \"integrated\"]},"
		" {\"range\": \"10.0.0.0/8\", \"sources\": [\"https://192.0.2.11\"],"
		"  \"proxy\": \"http://[2001:db8::8]:3128\"},"
		" {\"range\": \"*\", \"sources\": [\"https://sps.example\"]}]", 0, NULL);
	json_t *a = json_loads("[\"10.1.2.3\"]", 0, NULL), *b = json_loads("[\"192.0.2.99\"]", 0,
									   NULL);
	const json_t *e;

	CHECK(t && sources_sps_validate(t, msg, sizeof(msg)));
	e = sources_match(t, a);
	CHECK(e && json_array_get(t, 0) == e);
	/* The IPv4-only list: an IPv6-only agent reaches none of it. */
	CHECK(sources_sps_reachable(e, AF_INET) && !sources_sps_reachable(e, AF_INET6));
	/* The integrated server is reached as the server is. */
	CHECK(sources_sps_reachable(json_array_get(t, 1), AF_INET));
	/* A proxy decides: an IPv6 proxy for IPv4 sources. */
	CHECK(!sources_sps_reachable(json_array_get(t, 2), AF_INET));
	CHECK(sources_sps_reachable(json_array_get(t, 2), AF_INET6));
	/* "*" is the standard list; a host name is reachable either way. */
	e = sources_match(t, b);
	CHECK(e && json_array_get(t, 3) == e && sources_sps_reachable(e, AF_INET6));
	json_decref(a);
	json_decref(b);
	json_decref(t);
	CHECK_REFUSED(sources_sps_validate,
		      "[{\"range\": \"*\", \"sources\": [\"http://plain.example\"]}]",
		      "smart protection list 1, source 1: expected an https:// URL");
	CHECK_REFUSED(sources_sps_validate, "[{\"range\": \"*\", \"sources\": []}]",
		      "expected 1 to 16 sources");
	CHECK_REFUSED(sources_sps_validate, "[{\"range\": \"x\", \"sources\": [\"integrated\"]}]",
		      "'x' is not \"*\"");
	CHECK_REFUSED(sources_sps_validate,
		      "[{\"range\": \"*\", \"sources\": [\"integrated\"], "
		      "\"proxy\": \"socks5://p\"}]",
		      "proxy 'socks5://p'");
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
	CHECK_REFUSED(sources_validate, "[{\"range\": \"10.0.0.0/99\", \"url\": \"https://x\"}]",
		      "'10.0.0.0/99' is not an IPv4 or IPv6");
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
	test_sps_lists();
	return check_finish();
}
