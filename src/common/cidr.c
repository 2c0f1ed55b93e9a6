/* cidr.c -- IPv4 and IPv6 ranges (see cidr.h). */
#include "common/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cidr_parse(const char *text, struct cidr *c)
{
	char buf[64], *slash, *end;
	unsigned long bits;

	if ((size_t)snprintf(buf, sizeof(buf), "%s", text) >= sizeof(buf))
		return false;
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, c->addr) == 1)
		c->family = AF_INET6;
	else
		return false;
	c->bits = c->family == AF_INET ? 32 : 128;
	if (slash) {
		bits = strtoul(slash + 1, &end, 10);
		if (*end || end == slash + 1 || bits > c->bits)
			return false;
		c->bits = (unsigned)bits;
	}
	return true;
}

bool cidr_contains(const struct cidr *c, const char *address)
{
	unsigned char a[16];
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (inet_pton(c->family, address, a) != 1)
		return false;
	if (memcmp(a, c->addr, full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ c->addr[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

int cidr_url_family(const char *url)
{
	char host[INET6_ADDRSTRLEN + 2];
	unsigned char addr[16];
	const char *p = strstr(url, "://"), *end;
	size_t n;

	p = p ? p + 3 : url;
	if (*p == '[') {
		end = strchr(p, ']');
		n = end ? (size_t)(end - p - 1) : 0;
		if (!end || n >= sizeof(host))
			return AF_UNSPEC;
		memcpy(host, p + 1, n);
		host[n] = '\0';
		return inet_pton(AF_INET6, host, addr) == 1 ? AF_INET6 : AF_UNSPEC;
	}
	n = strcspn(p, ":/");
	if (n >= sizeof(host))
		return AF_UNSPEC;
	memcpy(host, p, n);
	host[n] = '\0';
	return inet_pton(AF_INET, host, addr) == 1 ? AF_INET : AF_UNSPEC;
}
