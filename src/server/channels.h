/* channels.h -- the ways alerts reach administrators, one backend per
 * kind of channel behind one seam: email over SMTP (libcurl), syslog in
 * the format of RFC 5424 (UDP, TCP with octet counting, or a local
 * socket), and a webhook (a JSON POST over HTTPS, signed with HMAC-SHA256
 * when the channel has a secret).
 *
 * A channel's configuration is a JSON object whose members depend on its
 * kind (docs/api.md, "Alerts"); channels_check() refuses anything else.
 * Sending blocks (each with a deadline) and is thread-safe: alerts.c calls
 * it from its sender thread, never from the loop.
 */
#ifndef WARD_CHANNELS_H
#define WARD_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* One message: its subject (one line), its text, and the alert as JSON
 * (the webhook's body; syslog's structured part names its rule). */
struct channels_msg {
	const char *rule;
	const char *kind;      /* the rule's kind */
	const char *subject;   /* with "[Ward] " before it, for mail */
	const char *summary;   /* "RULE: what", for syslog */
	const char *text;
	const json_t *alert;
	const char *server;    /* this server's name, syslog's HOSTNAME */
};

/* Whether kind names a kind of channel ("email", "syslog", "webhook"). */
bool channels_kind_valid(const char *kind);

/* Checks config for a channel of kind: members known, each of its type
 * and form (addresses, URLs, files readable). Returns false with what is
 * wrong and where in errbuf. */
bool channels_check(const char *kind, const json_t *config, char *errbuf, size_t errlen);

/* config as shown to administrators: secrets replaced by "(set)". New;
 * the caller owns it. */
json_t *channels_public(const json_t *config);

/* Sends msg by the channel of kind and config. Returns false with why in
 * errbuf (the server's answer where there is one). Blocks for at most
 * about 30 s; thread-safe. */
bool channels_send(const char *kind, const json_t *config, const struct channels_msg *msg,
		   char *errbuf, size_t errlen);

#endif
