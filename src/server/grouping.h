/* grouping.h -- automatic client grouping: ordered rules that place an
 * agent in a domain by its IP addresses (IPv4 or IPv6 CIDR) or by its host
 * name's domain suffix.
 *
 * Rules are JSON: [{"match": "ip", "value": "10.1.0.0/16", "domain": "/A"},
 * {"match": "host", "value": "lab.example.com", "domain": "/Lab"}, ...].
 * The first rule that matches wins. Pure functions; thread-safe.
 */
#ifndef WARD_GROUPING_H
#define WARD_GROUPING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Checks a rule list; false with a message naming the rule and what is
 * wrong in errbuf. */
bool grouping_validate(const json_t *rules, char *errbuf, size_t errlen);

/* Returns the domain path of the first rule matching an agent with the
 * given status ({"hostname", "ipv4": [...], "ipv6": [...]}), or NULL when
 * none does. The string belongs to rules. */
const char *grouping_match(const json_t *rules, const json_t *status);

#endif
