/* values.c -- client id lists and times on the command line (see values.h). */
#include "cli/values.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses the decimal digits at *p (at most max digits, at least one) and
 * advances *p past them; -1 when there are none or too many. */
static long digits(const char **p, int min, int max)
{
	long v = 0;
	int n = 0;

	while (n < max && isdigit((unsigned char)**p)) {
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	return n < min ? -1 : v;
}

/* A positive id from all of text (n bytes); 0 when it is not one. */
static int64_t one_id(const char *text, size_t n)
{
	char buf[24], *end;
	long long v;

	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, text, n);
	buf[n] = '\0';
	if (!isdigit((unsigned char)buf[0]))
		return 0;
	errno = 0;
	v = strtoll(buf, &end, 10);
	return *end || errno == ERANGE || v <= 0 ? 0 : (int64_t)v;
}

bool values_parse_ids(const char *word, json_t *list)
{
	json_t *parsed, *ids = json_array(), *v;
	const char *p = word;
	size_t i, n;
	int64_t id;
	bool ok = ids != NULL;

	if (ok && word[strspn(word, " \t")] == '[') {
		/* A JSON list: only positive integers. */
		parsed = json_loads(word, 0, NULL);
		ok = json_is_array(parsed) && json_array_size(parsed) > 0;
		json_array_foreach(parsed, i, v)
			if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
			    json_array_append(ids, v) != 0)
				ok = false;
		json_decref(parsed);
	} else if (ok) {
		/* Ids apart by commas or spaces; each separator between two ids,
		 * but for a comma ending the word: "6, 8" in a shell is "6," "8". */
		for (;;) {
			p += strspn(p, " \t");
			n = strcspn(p, ", \t");
			id = one_id(p, n);
			if (!id || json_array_append_new(ids, json_integer(id)) != 0) {
				ok = false;
				break;
			}
			p += n;
			p += strspn(p, " \t");
			if (*p == '\0')
				break;
			if (*p == ',' && *++p == '\0')
				break;
		}
	}
	ok = ok && json_array_extend(list, ids) == 0;
	json_decref(ids);
	return ok;
}

/* Parses an offset after a time: Z, +HH, +HHMM or +HH:MM; *seconds east of
 * UTC. Returns false when p holds something else. */
static bool parse_offset(const char *p, long *seconds)
{
	int sign;
	long h, m = 0;

	if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0) {
		*seconds = 0;
		return true;
	}
	if (*p != '+' && *p != '-')
		return false;
	sign = *p++ == '-' ? -1 : 1;
	h = digits(&p, 2, 2);
	if (*p == ':')
		p++;
	if (*p)
		m = digits(&p, 2, 2);
	if (h < 0 || h > 23 || m < 0 || m > 59 || *p)
		return false;
	*seconds = sign * (h * 3600 + m * 60);
	return true;
}

/* Parses an ISO 8601 date with an optional time and offset. */
static bool parse_iso(const char *p, int64_t *out)
{
	struct tm tm = { 0 }, check;
	long y, mo, d, h = 0, mi = 0, s = 0, offset = 0;
	bool has_offset = false;
	time_t t;

	y = digits(&p, 4, 4);
	if (y < 0 || *p++ != '-' || (mo = digits(&p, 2, 2)) < 0 || *p++ != '-' ||
	    (d = digits(&p, 2, 2)) < 0)
		return false;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if ((h = digits(&p, 2, 2)) < 0 || *p++ != ':' || (mi = digits(&p, 2, 2)) < 0)
			return false;
		if (*p == ':' && (p++, (s = digits(&p, 2, 2)) < 0))
			return false;
		if (*p) {
			if (!parse_offset(p, &offset))
				return false;
			has_offset = true;
		}
	} else if (*p) {
		return false;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59)
		return false;
	tm.tm_year = (int)y - 1900;
	tm.tm_mon = (int)mo - 1;
	tm.tm_mday = (int)d;
	tm.tm_hour = (int)h;
	tm.tm_min = (int)mi;
	tm.tm_sec = (int)s;
	tm.tm_isdst = -1;
	check = tm;
	t = has_offset ? timegm(&tm) : mktime(&tm);
	/* A day the month does not have (02-30) comes back normalised. */
	if (tm.tm_mon != check.tm_mon || tm.tm_mday != check.tm_mday)
		return false;
	*out = (int64_t)t - (has_offset ? offset : 0);
	return true;
}

bool values_parse_time(const char *text, time_t now, int64_t *out)
{
	static const struct { char unit; long seconds; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	const char *p = text;
	long n;
	size_t i, len = strlen(text);

	if (len == 0 || len > 40)
		return false;
	if (strspn(text, "0123456789") == len) {
		/* Unix seconds, up to the year 9999. */
		if (len > 12)
			return false;
		*out = strtoll(text, NULL, 10);
		return *out <= 253402300799LL;
	}
	if (strspn(text, "0123456789") == len - 1 && len <= 7) {
		n = digits(&p, 1, 6);
		if (n < 0)
			return false;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (*p == units[i].unit) {
				*out = (int64_t)now - (int64_t)n * units[i].seconds;
				return true;
			}
		return false;
	}
	return parse_iso(text, out);
}

void values_format_time(int64_t t, char *out, size_t size)
{
	time_t when = (time_t)t;
	struct tm tm;
	char date[32];
	long off;

	if (!localtime_r(&when, &tm) || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S",
						 &tm) == 0) {
		snprintf(out, size, "%lld", (long long)t);
		return;
	}
	off = tm.tm_gmtoff;
	snprintf(out, size, "%s%c%02ld:%02ld", date, off < 0 ? '-' : '+', labs(off) / 3600,
		 labs(off) % 3600 / 60);
}
