/* cproto.c -- clamd's socket protocol (see cproto.h). */
#include "agent/cproto.h"

#include <string.h>

/* clamd's table (clamd/session.c, 1.4): the text, whether an argument
 * follows (after exactly one separator byte, whatever it is), whether the
 * unprefixed form is taken. SELFCHECK is newer clamd's; STREAM is 0.103's. */
static const struct {
	const char *text;
	bool arg, old;
} table[CPROTO_NCMDS] = {
	[CPROTO_SCAN] = { "SCAN", true, true },
	[CPROTO_QUIT] = { "QUIT", false, true },
	[CPROTO_RELOAD] = { "RELOAD", false, true },
	[CPROTO_PING] = { "PING", false, true },
	[CPROTO_CONTSCAN] = { "CONTSCAN", true, true },
	[CPROTO_VERSIONCOMMANDS] = { "VERSIONCOMMANDS", false, false },
	[CPROTO_VERSION] = { "VERSION", false, true },
	[CPROTO_END] = { "END", false, false },
	[CPROTO_SHUTDOWN] = { "SHUTDOWN", false, true },
	[CPROTO_MULTISCAN] = { "MULTISCAN", true, true },
	[CPROTO_FILDES] = { "FILDES", false, true },
	[CPROTO_STATS] = { "STATS", false, false },
	[CPROTO_IDSESSION] = { "IDSESSION", false, false },
	[CPROTO_INSTREAM] = { "INSTREAM", false, false },
	[CPROTO_DETSTATSCLEAR] = { "DETSTATSCLEAR", false, true },
	[CPROTO_DETSTATS] = { "DETSTATS", false, true },
	[CPROTO_ALLMATCHSCAN] = { "ALLMATCHSCAN", true, false },
	[CPROTO_SELFCHECK] = { "SELFCHECK", false, true },
	[CPROTO_STREAM] = { "STREAM", false, true },
};

const char *cproto_name(enum cproto_cmd c)
{
	return (unsigned)c < CPROTO_NCMDS ? table[c].text : "";
}

/* The command text is NUL-terminated at text. */
static enum cproto_cmd lookup(const char *text, bool oldstyle, const char **arg)
{
	size_t i, n;

	*arg = NULL;
	for (i = 0; i < CPROTO_NCMDS; i++) {
		n = strlen(table[i].text);
		if (strncmp(text, table[i].text, n) != 0)
			continue;
		if (table[i].arg ? !text[n] : text[n] != 0)
			return CPROTO_UNKNOWN;
		if (oldstyle && !table[i].old)
			return CPROTO_UNKNOWN;
		if (table[i].arg)
			*arg = text + n + 1;
		return (enum cproto_cmd)i;
	}
	return CPROTO_UNKNOWN;
}

int cproto_next(char *buf, size_t len, struct cproto_command *c)
{
	char *end, *text;
	size_t n;

	memset(c, 0, sizeof(*c));
	if (!len)
		return 0;
	if (buf[0] == 'z' || buf[0] == 'n') {
		c->term = buf[0] == 'z' ? '\0' : '\n';
		end = memchr(buf, c->term, len);
		if (!end)
			return 0;
		*end = 0;
		c->used = (size_t)(end - buf) + 1;
		text = buf + 1;
		/* clamd chomps n commands (a CR before the newline) and then
		 * goes on from the newline, now a NUL: a stray byte that
		 * follows the command (clamd's answer to it is what clients of
		 * CRLF lines get). */
		if (c->term) {
			n = strlen(text);
			if (n && text[n - 1] == '\r')
				c->used--;
			while (n && (text[n - 1] == '\r' || text[n - 1] == '\n'))
				text[--n] = 0;
		}
	} else {
		/* One read is one command, up to a newline. */
		c->term = '\n';
		c->oldstyle = true;
		end = memchr(buf, '\n', len);
		c->used = end ? (size_t)(end - buf) + 1 : len;
		buf[end ? (size_t)(end - buf) : len] = 0;
		text = buf;
		n = strlen(text);
		while (n && (text[n - 1] == '\r' || text[n - 1] == '\n'))
			text[--n] = 0;
	}
	c->cmd = lookup(text, c->oldstyle, &c->arg);
	return 1;
}

bool cproto_in_session(enum cproto_cmd c)
{
	switch (c) {
	case CPROTO_FILDES:
	case CPROTO_SCAN:
	case CPROTO_END:
	case CPROTO_INSTREAM:
	case CPROTO_VERSION:
	case CPROTO_PING:
	case CPROTO_STATS:
	case CPROTO_VERSIONCOMMANDS:
		return true;
	default:
		return false;
	}
}

void cproto_stream_init(struct cproto_stream *s, uint64_t limit)
{
	memset(s, 0, sizeof(*s));
	s->left = limit;
}

int cproto_stream_feed(struct cproto_stream *s, const unsigned char *in, size_t len,
		       size_t *used, int (*sink)(void *arg, const unsigned char *data, size_t n),
		       void *arg)
{
	size_t at = 0, n;
	uint32_t chunk;

	*used = 0;
	while (at < len) {
		if (s->chunk) {
			n = len - at < s->chunk ? len - at : s->chunk;
			if (sink(arg, in + at, n) != 0)
				return -1;
			s->chunk -= (uint32_t)n;
			at += n;
			*used = at;
			continue;
		}
		s->hdr[s->nhdr++] = in[at++];
		*used = at;
		if (s->nhdr < 4)
			continue;
		s->nhdr = 0;
		chunk = (uint32_t)s->hdr[0] << 24 | (uint32_t)s->hdr[1] << 16 |
			(uint32_t)s->hdr[2] << 8 | s->hdr[3];
		if (!chunk)
			return CPROTO_STREAM_END;
		if (chunk > s->left)
			return CPROTO_STREAM_LIMIT;
		s->left -= chunk;
		s->chunk = chunk;
	}
	return CPROTO_STREAM_MORE;
}
