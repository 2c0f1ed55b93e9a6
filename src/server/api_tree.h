/* api_tree.h -- the client tree's domains and its import, as functions that
 * take no request: the routes of api_tree.c answer with them, and a
 * command-line tool or a control socket can call them alike.
 *
 * Each returns SERR_OK with *out set to the answer (new; the caller owns
 * it; NULL when out of memory), or the store's error with msg (len bytes)
 * naming what was wrong: SERR_NOENT for a path that names no domain,
 * SERR_EXIST or SERR_NOTEMPTY for a conflict, SERR_INVAL for an
 * invalid value. who names the administrator in the event log. Loop
 * thread only (the store is not locked).
 */
#ifndef WARD_API_TREE_H
#define WARD_API_TREE_H

#include "server/api.h"

/* Creates the domain path (/A/B) and its missing parents: {"id", "path"}. */
enum serr api_tree_make(struct api_ctx *ctx, const char *who, const char *path,
			json_t **out, char *msg, size_t len);

/* Renames the domain path to name: {"id", "name"}. */
enum serr api_tree_rename(struct api_ctx *ctx, const char *who, const char *path,
			  const char *name, json_t **out, char *msg, size_t len);

/* Moves the domain path under the domain to: {"id"}. */
enum serr api_tree_move(struct api_ctx *ctx, const char *who, const char *path,
			const char *to, json_t **out, char *msg, size_t len);

/* Deletes the empty domain path: {"deleted": id}. */
enum serr api_tree_delete(struct api_ctx *ctx, const char *who, const char *path,
			  json_t **out, char *msg, size_t len);

/* Makes the domain structure, settings and grouping rules those of ex (an
 * export, format 1): {"imported": N, "results": [{"path", "ok",
 * "error"?}]}; SERR_INVAL when ex is not an export. */
enum serr api_tree_import_export(struct api_ctx *ctx, const char *who, json_t *ex,
				 json_t **out, char *msg, size_t len);

#endif
