/* console.h -- the web console's files, served by wardd under /console/.
 *
 * The files (web/ in the source tree, installed as share/ward/console) are
 * read into memory when wardd starts, so a request never reaches the file
 * system and a path cannot escape the directory. The console is a page of
 * the same origin as the REST API, which it uses for everything.
 */
#ifndef WARD_CONSOLE_H
#define WARD_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/http.h"

/* Most bytes of console files wardd holds. */
#define CONSOLE_MAX_BYTES (16u << 20)

struct console;

/* Reads every regular file under dir (subdirectories included; hidden
 * names skipped). Returns NULL with a message naming the file and what
 * went wrong in errbuf. The caller frees the console with console_free(). */
struct console *console_load(const char *dir, char *errbuf, size_t errlen);

/* Answers req when it is the console's: GET or HEAD of /, /console or a
 * path under /console/ (/console/ itself is index.html). Returns false,
 * leaving req alone, for any other path. c may be NULL (not installed):
 * the console's paths are then answered 404 with a message saying so. */
bool console_handle(const struct console *c, struct http_req *req);

/* Returns how many files c holds. */
size_t console_files(const struct console *c);

/* Frees c (NULL is accepted). */
void console_free(struct console *c);

#endif
