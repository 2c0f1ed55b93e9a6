/* ini.h -- strict INI configuration files, read into a struct by a table.
 *
 * A program describes its configuration once, as a table of fields (section,
 * key, type, where in its config struct the value goes, default, help).
 * ini_defaults() fills the struct from the defaults, so no file is needed;
 * ini_load() then applies a file. The format:
 *
 *     # comment            ; comment
 *     [section]
 *     key = value          (white space around '=' and the value is trimmed)
 *
 * Anything else -- a line outside a section, an unknown section or key, a
 * key given twice, a value of the wrong form -- is an error naming the
 * file, the line and the problem. Values are not quoted; '#' and ';' only
 * start a comment at the beginning of a line.
 */
#ifndef WARD_INI_H
#define WARD_INI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ini_type {
	INI_STRING,    /* char *, owned by the struct (ini_free() releases it) */
	INI_INT,       /* int64_t within [min, max] */
	INI_BOOL,      /* bool: yes/no, true/false, on/off, 1/0 */
	INI_DURATION,  /* int64_t seconds: "90", "90s", "15m", "2h", "7d" */
};

struct ini_field {
	const char *section;
	const char *key;
	enum ini_type type;
	size_t offset;        /* offsetof() the member in the config struct */
	const char *def;      /* default, in the file's own syntax */
	int64_t min, max;     /* INI_INT and INI_DURATION bounds */
	const char *help;
};

/* Sets every field of cfg to its default. Returns false (with a message in
 * errbuf) only when out of memory or when a default is malformed. */
bool ini_defaults(const struct ini_field *fields, size_t n, void *cfg,
		  char *errbuf, size_t errlen);

/* Applies the settings of the file at path to cfg (already defaulted).
 * Returns false with "PATH:LINE: message" in errbuf on the first error;
 * cfg then holds the defaults plus the lines before it. */
bool ini_load(const char *path, const struct ini_field *fields, size_t n, void *cfg,
	      char *errbuf, size_t errlen);

/* As ini_load(), for text already in memory; name stands for the path in
 * messages. */
bool ini_parse(const char *name, const char *text, size_t len, const struct ini_field *fields,
	       size_t n, void *cfg, char *errbuf, size_t errlen);

/* Prints every field at its default with its help above it, as a file
 * ini_load() reads back, under the heading "# PROGRAM configuration: ...".
 * Thread-safe (reads the table only). */
void ini_print_defaults(FILE *f, const char *program, const struct ini_field *fields,
			size_t n);

/* The start of a daemon's command line, "PROGRAM [--config FILE] COMMAND
 * ...": answers --version, --help and --print-defaults, loads the defaults
 * and the file into cfg; with --check-config (no COMMAND needed), only
 * says whether the file is valid. Returns the index of COMMAND, or 0 when
 * the program should exit with *status (0 after --version, --help,
 * --print-defaults or a valid --check-config; 2 with usage or the
 * configuration error on standard error). */
int ini_command_line(int argc, char **argv, const char *program, void (*usage)(FILE *f),
		     const struct ini_field *fields, size_t n, void *cfg, int *status);

/* Frees the INI_STRING members of cfg. */
void ini_free(const struct ini_field *fields, size_t n, void *cfg);

#endif
