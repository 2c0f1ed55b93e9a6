/* test_pki.c -- the server CA and server certificates: a certificate
 * issued by the CA verifies against it for each of its names and for
 * nothing else, and not against another CA. */
#include "check.h"
#include "server/pki.h"

int main(void)
{
	const char *names[] = { "wardd.example.net", "127.0.0.1", "::1", "localhost" };
	const char *bad[] = { "not a host" };
	char *cakey = NULL, *cacrt = NULL, *key = NULL, *crt = NULL, *k2 = NULL, *c2 = NULL;
	char msg[256];

	CHECK(pki_make_ca("Ward CA test", 3650, &cakey, &cacrt, msg, sizeof(msg)) == SERR_OK);
	CHECK(cakey && strstr(cakey, "PRIVATE KEY"));
	CHECK(cacrt && strstr(cacrt, "BEGIN CERTIFICATE"));
	CHECK(pki_issue_server(cakey, cacrt, names, 4, 825, &key, &crt, msg, sizeof(msg)) ==
	      SERR_OK);
	if (crt) {
		CHECK(pki_verify_server(cacrt, crt, "wardd.example.net", msg, sizeof(msg)) ==
		      SERR_OK);
		CHECK(pki_verify_server(cacrt, crt, "127.0.0.1", msg, sizeof(msg)) == SERR_OK);
		CHECK(pki_verify_server(cacrt, crt, "::1", msg, sizeof(msg)) == SERR_OK);
		CHECK(pki_verify_server(cacrt, crt, "other.example.net", msg, sizeof(msg)) ==
		      SERR_CRYPTO);
		CHECK_STR_CONTAINS(msg, "does not name other.example.net");
		CHECK(pki_verify_server(cacrt, crt, "10.0.0.1", msg, sizeof(msg)) == SERR_CRYPTO);
	}
	/* Another CA's certificate is not trusted. */
	CHECK(pki_make_ca("Other CA", 3650, &k2, &c2, msg, sizeof(msg)) == SERR_OK);
	if (crt && c2)
		CHECK(pki_verify_server(c2, crt, "wardd.example.net", msg, sizeof(msg)) ==
		      SERR_CRYPTO);
	free(k2);
	free(c2);
	k2 = c2 = NULL;
	CHECK(pki_issue_server(cakey, cacrt, bad, 1, 825, &k2, &c2, msg, sizeof(msg)) ==
	      SERR_INVAL);
	CHECK_STR_CONTAINS(msg, "'not a host' is neither");
	CHECK(pki_issue_server("garbage", cacrt, names, 1, 825, &k2, &c2, msg, sizeof(msg)) ==
	      SERR_CRYPTO);
	CHECK_STR_CONTAINS(msg, "reading the CA");
	free(cakey);
	free(cacrt);
	free(key);
	free(crt);
	return check_finish();
}
