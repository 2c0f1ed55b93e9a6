/* ini.c -- strict INI configuration files (see ini.h). */
#include "common/ini.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

/* Longest line accepted, and longest section name. */
#define LINE_MAX_LEN 4096
#define SECTION_MAX 64

static void fail(char *errbuf, size_t errlen, const char *name, size_t line,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(char *errbuf, size_t errlen, const char *name, size_t line,
		 const char *fmt, ...)
{
	va_list ap;
	int n;

	n = line ? snprintf(errbuf, errlen, "%s:%zu: ", name, line) :
		   snprintf(errbuf, errlen, "%s: ", name);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Parses a signed decimal integer filling all of s. */
static bool parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!*s)
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		return false;
	*out = v;
	return true;
}

/* Parses "N" or "N" followed by s, m, h or d, into seconds. */
static bool parse_duration(const char *s, int64_t *out)
{
	static const struct { char unit; int64_t secs; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	char num[32];
	size_t n = strlen(s), i;
	int64_t v, mult = 1;

	if (n == 0 || n >= sizeof(num))
		return false;
	memcpy(num, s, n + 1);
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (num[n - 1] == units[i].unit) {
			mult = units[i].secs;
			num[n - 1] = '\0';
			break;
		}
	}
	if (!parse_int(num, &v) || v < 0 || v > INT64_MAX / mult)
		return false;
	*out = v * mult;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* Stores value into field f of cfg. Returns false with the reason in
 * errbuf (without location). */
static bool set_field(const struct ini_field *f, const char *value, void *cfg,
		      char *errbuf, size_t errlen)
{
	char *base = (char *)cfg + f->offset, *copy;
	int64_t v;
	bool b;

	switch (f->type) {
	case INI_STRING:
		if (!util_utf8_valid(value, strlen(value))) {
			snprintf(errbuf, errlen, "%s.%s: not valid UTF-8", f->section, f->key);
			return false;
		}
		copy = strdup(value);
		if (!copy) {
			snprintf(errbuf, errlen, "out of memory");
			return false;
		}
		free(*(char **)base);
		*(char **)base = copy;
		return true;
	case INI_INT:
	case INI_DURATION:
		if (!(f->type == INI_INT ? parse_int(value, &v) : parse_duration(value, &v))) {
			snprintf(errbuf, errlen, "%s.%s: '%s' is not %s", f->section, f->key, value,
				 f->type == INI_INT ? "an integer" :
				 "a duration (N, Ns, Nm, Nh or Nd)");
			return false;
		}
		if (v < f->min || v > f->max) {
			snprintf(errbuf, errlen, "%s.%s: %s is out of range (%lld to %lld%s)",
				 f->section, f->key, value, (long long)f->min, (long long)f->max,
				 f->type == INI_DURATION ? " seconds" : "");
			return false;
		}
		*(int64_t *)base = v;
		return true;
	case INI_BOOL:
		if (!parse_bool(value, &b)) {
			snprintf(errbuf, errlen, "%s.%s: '%s' is not yes or no", f->section, f->key,
				 value);
			return false;
		}
		*(bool *)base = b;
		return true;
	}
	snprintf(errbuf, errlen, "%s.%s: unknown type", f->section, f->key);
	return false;
}

bool ini_defaults(const struct ini_field *fields, size_t n, void *cfg,
		  char *errbuf, size_t errlen)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (fields[i].type == INI_STRING)
			*(char **)((char *)cfg + fields[i].offset) = NULL;
		if (fields[i].def && !set_field(&fields[i], fields[i].def, cfg, errbuf, errlen))
			return false;
	}
	return true;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static bool known_section(const struct ini_field *fields, size_t n, const char *section)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(fields[i].section, section) == 0)
			return true;
	return false;
}

bool ini_parse(const char *name, const char *text, size_t len, const struct ini_field *fields,
	       size_t n, void *cfg, char *errbuf, size_t errlen)
{
	char line[LINE_MAX_LEN + 1], section[SECTION_MAX + 1] = "", why[256], *s, *eq, *key;
	unsigned char *seen = calloc(n ? n : 1, 1);
	size_t lineno = 0, pos = 0, i, ll;
	bool ok = false;

	if (!seen) {
		fail(errbuf, errlen, name, 0, "out of memory");
		return false;
	}
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);

		ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
		lineno++;
		if (ll > LINE_MAX_LEN) {
			fail(errbuf, errlen, name, lineno, "line longer than %d bytes",
			     LINE_MAX_LEN);
			goto out;
		}
		if (memchr(text + pos, '\0', ll)) {
			fail(errbuf, errlen, name, lineno, "NUL byte in line");
			goto out;
		}
		memcpy(line, text + pos, ll);
		line[ll] = '\0';
		pos += ll + (nl ? 1 : 0);
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			size_t sl = strlen(s);

			if (sl < 3 || s[sl - 1] != ']' || sl - 2 > SECTION_MAX) {
				fail(errbuf, errlen, name, lineno, "malformed section header '%s'",
				     s);
				goto out;
			}
			memcpy(section, s + 1, sl - 2);
			section[sl - 2] = '\0';
			if (!known_section(fields, n, section)) {
				fail(errbuf, errlen, name, lineno, "unknown section [%s]", section);
				goto out;
			}
			continue;
		}
		eq = strchr(s, '=');
		if (!eq) {
			fail(errbuf, errlen, name, lineno, "expected 'key = value', got '%s'", s);
			goto out;
		}
		*eq = '\0';
		key = trim(s);
		if (!*section) {
			fail(errbuf, errlen, name, lineno, "'%s' outside any [section]", key);
			goto out;
		}
		for (i = 0; i < n; i++)
			if (strcmp(fields[i].section, section) == 0 &&
			    strcmp(fields[i].key, key) == 0)
				break;
		if (i == n) {
			fail(errbuf, errlen, name, lineno, "unknown key '%s' in [%s]", key,
			     section);
			goto out;
		}
		if (seen[i]) {
			fail(errbuf, errlen, name, lineno, "%s.%s is set twice", section, key);
			goto out;
		}
		seen[i] = 1;
		if (!set_field(&fields[i], trim(eq + 1), cfg, why, sizeof(why))) {
			fail(errbuf, errlen, name, lineno, "%s", why);
			goto out;
		}
	}
	ok = true;
out:
	free(seen);
	return ok;
}

bool ini_load(const char *path, const struct ini_field *fields, size_t n, void *cfg,
	      char *errbuf, size_t errlen)
{
	size_t len;
	char *text = util_read_file(path, 1u << 20, &len);
	bool ok;

	if (!text) {
		fail(errbuf, errlen, path, 0, "%s", errno == EFBIG ? "larger than 1 MiB" :
		     strerror(errno));
		return false;
	}
	ok = ini_parse(path, text, len, fields, n, cfg, errbuf, errlen);
	free(text);
	return ok;
}

void ini_free(const struct ini_field *fields, size_t n, void *cfg)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (fields[i].type == INI_STRING) {
			char **p = (char **)((char *)cfg + fields[i].offset);

			free(*p);
			*p = NULL;
		}
	}
}

void ini_print_defaults(FILE *f, const char *program, const struct ini_field *fields,
			size_t n)
{
	const char *section = "";
	size_t i;

	fprintf(f, "# %s configuration: every option at its default.\n", program);
	for (i = 0; i < n; i++) {
		if (strcmp(section, fields[i].section) != 0) {
			section = fields[i].section;
			fprintf(f, "\n[%s]\n", section);
		}
		fprintf(f, "# %s\n%s =%s%s\n", fields[i].help, fields[i].key,
			fields[i].def[0] ? " " : "", fields[i].def);
	}
}

int ini_command_line(int argc, char **argv, const char *program, void (*usage)(FILE *f),
		     const struct ini_field *fields, size_t n, void *cfg, int *status)
{
	const char *conf = NULL;
	char msg[512];
	bool check = false;
	int i;

	*status = 2;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			conf = argv[++i];
		} else if (strcmp(argv[i], "--check-config") == 0) {
			check = true;
		} else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "--help") == 0) {
			if (argv[i][2] == 'v')
				printf("%s %s\n", program, WARD_VERSION);
			else
				usage(stdout);
			*status = 0;
			return 0;
		} else if (strcmp(argv[i], "--print-defaults") == 0) {
			ini_print_defaults(stdout, program, fields, n);
			*status = 0;
			return 0;
		} else {
			usage(stderr);
			return 0;
		}
	}
	if (i == argc && !check) {
		usage(stderr);
		return 0;
	}
	if (!ini_defaults(fields, n, cfg, msg, sizeof(msg)) ||
	    (conf && !ini_load(conf, fields, n, cfg, msg, sizeof(msg)))) {
		fprintf(stderr, "error: config: %s\n", msg);
		ini_free(fields, n, cfg);
		return 0;
	}
	if (check) {
		printf("%s: valid\n", conf ? conf : "defaults");
		ini_free(fields, n, cfg);
		*status = 0;
		return 0;
	}
	return i;
}
