/* api_settings.h -- settings on the tree as functions that take no request
 * (the routes of api_settings.c answer with them; a command-line tool or a
 * control socket can call them alike), and what the other routes take from
 * src/server/api_settings.c.
 *
 * The functions returning enum store_err set *out to the answer (new; the
 * caller owns it; NULL when out of memory) on STORE_OK, else msg (len
 * bytes) names what was wrong: STORE_EINVAL for a scope, key or value that
 * is not valid, STORE_ENOENT for a scope that names nothing. scope is
 * "root", "domain:/PATH" or "client:ID"; who names the administrator in
 * the event log. Loop thread only (the store is not locked).
 */
#ifndef WARD_API_SETTINGS_H
#define WARD_API_SETTINGS_H

#include "server/api.h"

/* The settings placed on scope's node and those in effect there: {"own",
 * "effective", "origin"}. */
enum store_err api_settings_read(struct api_ctx *ctx, const char *scope, json_t **out,
				 char *msg, size_t len);

/* Places setting key = value on scope's node; apply "all" clears the values
 * below, "inherit" (or NULL) keeps them: {"changed": clients}. */
enum store_err api_settings_place(struct api_ctx *ctx, const char *who, const char *scope,
				  const char *key, json_t *value, const char *apply,
				  json_t **out, char *msg, size_t len);

/* Removes scope's own value of key, so that it inherits: {"changed"}. */
enum store_err api_settings_remove(struct api_ctx *ctx, const char *who, const char *scope,
				   const char *key, json_t **out, char *msg, size_t len);

/* Replaces the list kept in the store under key with list (the argument
 * member of the route) after validate, reloads ctx's lists and answers
 * req: 200 {member: list}, 400 with validate's message, 500 when saving
 * fails. what names the list in the event log. Loop thread only. */
void api_settings_put_list(struct api_ctx *ctx, struct http_req *req, const char *who,
			   json_t *list, const char *member, const char *key, const char *what,
			   bool (*validate)(const json_t *list, char *errbuf, size_t errlen));

#endif
