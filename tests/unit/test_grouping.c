/* test_grouping.c -- grouping rules: IPv4 and IPv6 ranges, host suffixes,
 * first match wins, and messages for bad rules. */
#include <jansson.h>

#include "check.h"
#include "server/grouping.h"

static const char *match(const json_t *rules, const char *status)
{
	json_t *s = json_loads(status, 0, NULL);
	const char *d = grouping_match(rules, s);

	json_decref(s);
	return d ? d : "(none)";
}

int main(void)
{
	char msg[256];
	json_t *rules = json_loads(
		"[{\"match\": \"ip\", \"value\": \"10.1.0.0/16\", \"domain\": \"/Berlin\"},"
		" {\"match\": \"ip\", \"value\": \"10.0.0.0/8\", \"domain\": \"/Corp\"},"
		" {\"match\": \"ip\", \"value\": \"2001:db8:1::/48\", \"domain\": \"/V6\"},"
		" {\"match\": \"ip\", \"value\": \"192.0.2.7\", \"domain\": \"/One\"},"
		" {\"match\": \"host\", \"value\": \"lab.example.com\", \"domain\": \"/Lab\"}]",
		0, NULL);

	CHECK(rules && grouping_validate(rules, msg, sizeof(msg)));
	CHECK(strcmp(match(rules, "{\"ipv4\": [\"10.1.2.3\"]}"), "/Berlin") == 0);
	CHECK(strcmp(match(rules, "{\"ipv4\": [\"10.2.2.3\"]}"), "/Corp") == 0);
	CHECK(strcmp(match(rules, "{\"ipv4\": [\"172.16.0.1\", \"10.200.0.1\"]}"), "/Corp") == 0);
	CHECK(strcmp(match(rules, "{\"ipv4\": [\"11.0.0.1\"]}"), "(none)") == 0);
	CHECK(strcmp(match(rules, "{\"ipv6\": [\"2001:db8:1:ff::9\"]}"), "/V6") == 0);
	CHECK(strcmp(match(rules, "{\"ipv6\": [\"2001:db8:2::9\"]}"), "(none)") == 0);
	CHECK(strcmp(match(rules, "{\"ipv4\": [\"192.0.2.7\"]}"), "/One") == 0);
	CHECK(strcmp(match(rules, "{\"ipv4\": [\"192.0.2.8\"]}"), "(none)") == 0);
	CHECK(strcmp(match(rules, "{\"hostname\": \"pc1.LAB.example.com\"}"), "/Lab") == 0);
	CHECK(strcmp(match(rules, "{\"hostname\": \"lab.example.com\"}"), "/Lab") == 0);
	CHECK(strcmp(match(rules, "{\"hostname\": \"mylab.example.com\"}"), "(none)") == 0);
	/* Rules apply in order: the first match wins. */
	CHECK(strcmp(match(rules, "{\"hostname\": \"x.lab.example.com\", "
				  "\"ipv4\": [\"10.9.9.9\"]}"), "/Corp") == 0);
	json_decref(rules);

	CHECK_REFUSED(grouping_validate,
		      "[{\"match\": \"ip\", \"value\": \"10.0.0.0/33\", \"domain\": \"/A\"}]",
		      "rule 1: '10.0.0.0/33' is not an IPv4 or IPv6 address");
	CHECK_REFUSED(grouping_validate,
		      "[{\"match\": \"mac\", \"value\": \"x\", \"domain\": \"/A\"}]",
		      "match other than ip or host");
	CHECK_REFUSED(grouping_validate,
		      "[{\"match\": \"host\", \"value\": \"a.b\", \"domain\": \"A\"}]",
		      "must be a path");
	rules = json_loads("{}", 0, NULL);
	CHECK(!grouping_validate(rules, msg, sizeof(msg)));
	json_decref(rules);
	return check_finish();
}
