/* wmsg.c -- the scan worker channel's messages (see wmsg.h). */
#include "agent/wmsg.h"

#include <string.h>

/* A cursor over the bytes being decoded. */
struct rd {
	const unsigned char *p, *end;
	const char *what;  /* the field being read, for messages */
};

static bool get_u32(struct rd *r, const char *what, uint32_t *v)
{
	r->what = what;
	if (r->end - r->p < 4)
		return false;
	*v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
	     (uint32_t)r->p[3] << 24;
	r->p += 4;
	return true;
}

static bool get_u64(struct rd *r, const char *what, uint64_t *v)
{
	uint32_t lo, hi;

	if (!get_u32(r, what, &lo) || !get_u32(r, what, &hi))
		return false;
	*v = (uint64_t)hi << 32 | lo;
	return true;
}

/* A string: its length (u32), its bytes, a NUL. The bytes hold no NUL;
 * with printable, no control character either (a signature name). */
static bool get_str(struct rd *r, const char *what, size_t max, bool printable,
		    const char **s)
{
	uint32_t n, i;

	if (!get_u32(r, what, &n) || n > max || (size_t)(r->end - r->p) < (size_t)n + 1 ||
	    r->p[n] != 0)
		return false;
	for (i = 0; i < n; i++)
		if (r->p[i] == 0 || (printable && (r->p[i] < 0x20 || r->p[i] == 0x7f)))
			return false;
	*s = (const char *)r->p;
	r->p += n + 1;
	return true;
}

static int decode_payload(struct rd *r, struct wmsg *m)
{
	uint32_t v, i;

	switch (m->type) {
	case WMSG_READY:
		return get_u64(r, "signature count", &m->signatures) ? 0 : -1;
	case WMSG_SCAN:
		if (!get_u32(r, "flags", &m->flags) ||
		    (m->flags & ~(uint32_t)(WMSG_LOW | WMSG_ALLMATCH)))
			return -1;
		return get_str(r, "file name", WMSG_MAX_TEXT, false, &m->text) ? 0 : -1;
	case WMSG_RESULT:
		if (!get_u32(r, "verdict", &v) || v > WMSG_ERROR)
			return -1;
		m->verdict = (enum wmsg_verdict)v;
		if (!get_u32(r, "flags", &m->flags) || (m->flags & ~(uint32_t)WMSG_ASKED) ||
		    !get_u64(r, "bytes scanned", &m->bytes) || !get_u32(r, "name count", &v) ||
		    v > WMSG_MAX_NAMES || (v > 0) != (m->verdict == WMSG_INFECTED))
			return -1;
		m->nnames = v;
		for (i = 0; i < v; i++)
			if (!get_str(r, "signature name", WMSG_MAX_SIGNAME, true, &m->names[i]) ||
			    !*m->names[i])
				return -1;
		if (!get_str(r, "message", WMSG_MAX_TEXT, false, &m->text) ||
		    (m->verdict == WMSG_ERROR) != (*m->text != 0))
			return -1;
		return 0;
	case WMSG_QUERY:
		if (!get_u32(r, "source", &m->source) || !get_u32(r, "timeout", &m->timeout) ||
		    m->timeout == 0 || m->timeout > 3600)
			return -1;
		break;
	case WMSG_ANSWER:
		if (!get_u32(r, "status", &v) || v > 999)
			return -1;
		m->status = (int32_t)v;
		if (!get_str(r, "message", WMSG_MAX_TEXT, false, &m->text) ||
		    (m->status == 0) != (*m->text != 0))
			return -1;
		break;
	default:
		r->what = "type";
		return -1;
	}
	/* QUERY, ANSWER: the body is the rest; a query is never empty. */
	r->what = "body";
	m->body = r->p;
	m->body_len = (size_t)(r->end - r->p);
	r->p = r->end;
	return m->type == WMSG_QUERY && !m->body_len ? -1 : 0;
}

int wmsg_decode(const unsigned char *buf, size_t len, struct wmsg *m, char *errbuf,
		size_t errlen)
{
	struct rd r = { buf, buf + len, "header" };
	uint32_t type, plen;

	memset(m, 0, sizeof(*m));
	m->text = "";
	if (len < WMSG_HEADER || len > WMSG_MAX) {
		util_set_msg(errbuf, errlen, "scan worker channel: a message of %zu bytes "
			     "(%u to %u)", len, WMSG_HEADER, WMSG_MAX);
		return -1;
	}
	get_u32(&r, "type", &type);
	get_u32(&r, "length", &plen);
	get_u64(&r, "id", &m->id);
	if (plen != len - WMSG_HEADER) {
		util_set_msg(errbuf, errlen, "scan worker channel: the header says %u bytes of "
			     "payload, the message has %zu", plen, len - WMSG_HEADER);
		return -1;
	}
	m->type = (enum wmsg_type)type;
	if (decode_payload(&r, m) != 0) {
		util_set_msg(errbuf, errlen, "scan worker channel: message type %u, id %llu: bad "
			     "%s", type, (unsigned long long)m->id, r.what);
		return -1;
	}
	if (r.p != r.end) {
		util_set_msg(errbuf, errlen, "scan worker channel: message type %u, id %llu: %zu "
			     "bytes after the payload", type, (unsigned long long)m->id,
			     (size_t)(r.end - r.p));
		return -1;
	}
	return 0;
}

static int put_u32(struct util_buf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)v, (unsigned char)(v >> 8),
			       (unsigned char)(v >> 16), (unsigned char)(v >> 24) };

	return util_buf_append(b, x, 4);
}

static int put_u64(struct util_buf *b, uint64_t v)
{
	return put_u32(b, (uint32_t)v) | put_u32(b, (uint32_t)(v >> 32));
}

static int put_str(struct util_buf *b, const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n > max)
		return -1;
	return put_u32(b, (uint32_t)n) | util_buf_append(b, s ? s : "", n + 1);
}

int wmsg_encode(const struct wmsg *m, struct util_buf *b)
{
	size_t i;
	int rc;

	b->len = 0;
	rc = put_u32(b, (uint32_t)m->type) | put_u32(b, 0) | put_u64(b, m->id);
	switch (m->type) {
	case WMSG_READY:
		rc |= put_u64(b, m->signatures);
		break;
	case WMSG_SCAN:
		rc |= put_u32(b, m->flags) | put_str(b, m->text, WMSG_MAX_TEXT);
		break;
	case WMSG_RESULT:
		if (m->nnames > WMSG_MAX_NAMES)
			return -1;
		rc |= put_u32(b, (uint32_t)m->verdict) | put_u32(b, m->flags) |
		      put_u64(b, m->bytes) | put_u32(b, (uint32_t)m->nnames);
		for (i = 0; i < m->nnames; i++)
			rc |= put_str(b, m->names[i], WMSG_MAX_SIGNAME);
		rc |= put_str(b, m->text, WMSG_MAX_TEXT);
		break;
	case WMSG_QUERY:
		rc |= put_u32(b, m->source) | put_u32(b, m->timeout);
		break;
	case WMSG_ANSWER:
		rc |= put_u32(b, (uint32_t)m->status) | put_str(b, m->text, WMSG_MAX_TEXT);
		break;
	default:
		return -1;
	}
	if ((m->type == WMSG_QUERY || m->type == WMSG_ANSWER) && m->body_len)
		rc |= util_buf_append(b, m->body, m->body_len);
	if (rc != 0 || b->len > WMSG_MAX)
		return -1;
	b->data[4] = (char)((b->len - WMSG_HEADER) & 0xff);
	b->data[5] = (char)((b->len - WMSG_HEADER) >> 8 & 0xff);
	b->data[6] = (char)((b->len - WMSG_HEADER) >> 16 & 0xff);
	b->data[7] = (char)((b->len - WMSG_HEADER) >> 24 & 0xff);
	return 0;
}
