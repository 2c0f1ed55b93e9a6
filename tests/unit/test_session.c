/* test_session.c -- the console's session helpers and the event log's
 * parsers: the keys of wrong-password brakes (an IPv6 address by its
 * /64), the Cookie header, CSRF tokens, CSV
 * cells and agents' detection reports. */
#include <jansson.h>
#include <string.h>

#include "check.h"
#include "common/rate.h"
#include "server/logs.h"
#include "server/session.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The key names the /64 it stands for, as the logs show it. */
static void test_peer_key(void)
{
	char key[RATE_KEY_MAX];

	rate_peer_key("2001:db8:6:0:1:2:3:4", key);
	CHECK(strcmp(key, "2001:db8:6::/64") == 0);
	rate_peer_key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", key);
	CHECK(strcmp(key, "ffff:ffff:ffff:ffff::/64") == 0);
	rate_peer_key("192.0.2.7", key);
	CHECK(strcmp(key, "192.0.2.7") == 0);
}

static void test_cookie(void)
{
	char token[65];

	CHECK(session_cookie_parse("__Host-ward_session=" HEX64, token));
	CHECK_STR_EQ(token, HEX64);
	CHECK(session_cookie_parse("a=b; __Host-ward_session=" HEX64 "; c=d", token));
	CHECK(!session_cookie_parse(NULL, token));
	CHECK(!session_cookie_parse("", token));
	CHECK(!session_cookie_parse("__Host-ward_session=" HEX64 "0", token));
	CHECK(!session_cookie_parse("__Host-ward_session=abc", token));
	CHECK(!session_cookie_parse("__Host-ward_session=" "0123456789ABCDEF0123456789abcdef"
				    "0123456789abcdef0123456789abcdef", token));
	CHECK(!session_cookie_parse("x__Host-ward_session=" HEX64, token));
	CHECK(!session_cookie_parse("ward_session=" HEX64, token));
}

static void test_csrf(void)
{
	char a[65], b[65], c[65];

	session_csrf(HEX64, a);
	session_csrf(HEX64, b);
	session_csrf("f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", c);
	CHECK(strlen(a) == 64);
	CHECK(strcmp(a, b) == 0);
	CHECK(strcmp(a, c) != 0);
	CHECK(strcmp(a, HEX64) != 0);
}

static void csv_is(const char *in, const char *want)
{
	struct util_buf b = { 0 };

	CHECK(logs_csv_field(&b, in) == 0);
	CHECK(util_buf_append(&b, "", 1) == 0);
	CHECK_STR_EQ(b.data, want);
	util_buf_free(&b);
}

static void test_csv(void)
{
	csv_is("plain text", "plain text");
	csv_is("a,b", "\"a,b\"");
	csv_is("say \"hi\"", "\"say \"\"hi\"\"\"");
	csv_is("two\nlines", "\"two\nlines\"");
	csv_is("=SUM(A1)", "\"'=SUM(A1)\"");
	csv_is("+1", "\"'+1\"");
	csv_is("-1", "\"'-1\"");
	csv_is("@x", "\"'@x\"");
	csv_is("\tx", "\"'\tx\"");
	csv_is("\r=1", "\"'\r=1\"");
	csv_is("", "");
}

static void test_report(void)
{
	static const char good[] = "{\"detections\": [{\"time\": 1700000000, \"path\": \"/x\", "
				   "\"name\": \"Eicar\", \"method\": \"smart\"}]}";
	char msg[1200];
	json_t *list = logs_parse_report(good, strlen(good), msg, sizeof(msg));

	CHECK(json_array_size(list) == 1);
	json_decref(list);
	struct { const char *text, *want; } bad[] = {
		{ "", "expected {\"detections\"" },
		{ "[]", "expected {\"detections\"" },
		{ "{\"detections\": [], \"x\": 1}", "expected {\"detections\"" },
		{ "{\"detections\": [{\"time\": 1}]}", "detections[0]" },
		{ "{\"detections\": [{\"time\": 0, \"path\": \"/x\", \"name\": \"n\", "
		  "\"method\": \"smart\"}]}", "detections[0]" },
		{ "{\"detections\": [{\"time\": 1, \"path\": \"/x\", \"name\": \"n\", "
		  "\"method\": \"fast\"}]}", "detections[0]" },
		{ "{\"detections\": [{\"time\": 1, \"path\": \"/x\", \"name\": \"n\", "
		  "\"method\": \"smart\", \"extra\": 1}]}", "detections[0]" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		list = logs_parse_report(bad[i].text, strlen(bad[i].text), msg, sizeof(msg));
		CHECK(list == NULL);
		CHECK_STR_CONTAINS(msg, bad[i].want);
		json_decref(list);
	}
}

int main(void)
{
	test_peer_key();
	test_cookie();
	test_csrf();
	test_csv();
	test_report();
	return check_finish();
}
