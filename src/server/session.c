/* session.c -- console cookies and CSRF tokens (see session.h). */
#include "server/session.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool session_token(const struct http_req *req, char token[65], bool *cookie)
{
	const char *h = http_req_header(req, "Authorization");

	*cookie = false;
	if (h && strncmp(h, "Bearer ", 7) == 0 && strlen(h + 7) == 64) {
		memcpy(token, h + 7, 65);
		return true;
	}
	*cookie = !h && session_cookie(req, token);
	return *cookie;
}

bool session_cookie(const struct http_req *req, char token[65])
{
	return session_cookie_parse(http_req_header(req, "Cookie"), token);
}

bool session_cookie_parse(const char *h, char token[65])
{
	size_t n = strlen(SESSION_COOKIE), i;
	const char *p;

	/* Cookie: a=b; __Host-ward_session=HEX; c=d */
	for (p = h; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
		while (*p == ' ')
			p++;
		if (strncmp(p, SESSION_COOKIE, n) != 0 || p[n] != '=')
			continue;
		p += n + 1;
		for (i = 0; i < 64 && p[i] && strchr("0123456789abcdef", p[i]); i++)
			token[i] = p[i];
		if (i == 64 && (p[64] == '\0' || p[64] == ';' || p[64] == ' ')) {
			token[64] = '\0';
			return true;
		}
	}
	return false;
}

void session_csrf(const char *token, char out[65])
{
	static const unsigned char key[] = "ward console csrf token";
	unsigned char h[32];

	crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), key,
			   sizeof(key) - 1);
	sodium_bin2hex(out, 65, h, sizeof(h));
}

void session_set_cookie(struct http_req *req, const char *token, int64_t max_age)
{
	char v[256];

	snprintf(v, sizeof(v), "%s=%s; Path=/; Max-Age=%lld; Secure; HttpOnly; SameSite=Strict",
		 SESSION_COOKIE, token ? token : "", token ? (long long)max_age : 0LL);
	http_add_header(req, "Set-Cookie", v);
}
