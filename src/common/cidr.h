/* cidr.h -- IPv4 and IPv6 address ranges ("10.0.0.0/8", "2001:db8::/32",
 * or a bare address for exactly that one), as grouping rules and the
 * update source table use them. Pure functions; thread-safe. */
#ifndef WARD_CIDR_H
#define WARD_CIDR_H

#include <stdbool.h>

struct cidr {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned bits;
};

/* Parses text as a range; false when it is not one. */
bool cidr_parse(const char *text, struct cidr *c);

/* Whether address (text) lies in c; false for an address of the other
 * family or one that does not parse. */
bool cidr_contains(const struct cidr *c, const char *address);

/* The address family a URL's host names literally (AF_INET for
 * "https://192.0.2.1:8443", AF_INET6 for "https://[2001:db8::1]/"), or
 * AF_UNSPEC for a host name, which may resolve to either. */
int cidr_url_family(const char *url);

#endif
