/* rate.c -- the keys rate limits count by (see rate.h). */
#include "common/rate.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

void rate_peer_key(const char *peer, char key[RATE_KEY_MAX])
{
	unsigned char a[16];
	char net[INET6_ADDRSTRLEN];

	if (strchr(peer, ':') && inet_pton(AF_INET6, peer, a) == 1) {
		memset(a + 8, 0, 8);
		/* Named as the /64 it is, in logs as well ("2001:db8:6::/64",
		 * not the address "2001:db8:6::"). */
		if (inet_ntop(AF_INET6, a, net, sizeof(net))) {
			snprintf(key, RATE_KEY_MAX, "%s/64", net);
			return;
		}
	}
	snprintf(key, RATE_KEY_MAX, "%s", peer);
}
