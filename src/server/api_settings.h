/* api_settings.h -- settings on the tree as functions that take no request
 * (the routes of api_settings.c, and api_sps.c for the smart protection
 * source lists, answer with them; a command-line tool or a control socket
 * can call them alike).
 *
 * The functions returning enum serr set *out to the answer (new; the
 * caller owns it; NULL when out of memory) on SERR_OK, else msg (len
 * bytes) names what was wrong: SERR_INVAL for a scope, key or value that
 * is not valid, SERR_NOENT for a scope that names nothing. scope is
 * "root", "domain:/PATH" or "client:ID"; who names the administrator in
 * the event log. Loop thread only (the store is not locked).
 */
#ifndef WARD_API_SETTINGS_H
#define WARD_API_SETTINGS_H

#include "server/api.h"

/* The settings placed on scope's node and those in effect there: {"own",
 * "effective", "origin"}. */
enum serr api_settings_read(struct api_ctx *ctx, const char *scope, json_t **out,
			    char *msg, size_t len);

/* Places setting key = value on scope's node; apply "all" clears the values
 * below, "inherit" (or NULL) keeps them: {"changed": clients}. */
enum serr api_settings_place(struct api_ctx *ctx, const char *who, const char *scope,
			     const char *key, json_t *value, const char *apply,
			     json_t **out, char *msg, size_t len);

/* Removes scope's own value of key, so that it inherits: {"changed"}. */
enum serr api_settings_remove(struct api_ctx *ctx, const char *who, const char *scope,
			      const char *key, json_t **out, char *msg, size_t len);

/* Replaces the list kept in the store under key with list (the route's
 * argument member) after validate (SERR_INVAL with validate's message),
 * and reloads ctx's lists: {member: list}. what names the list in the
 * event log. */
enum serr api_settings_replace(struct api_ctx *ctx, const char *who, json_t *list,
			       const char *member, const char *key, const char *what,
			       bool (*validate)(const json_t *list, char *errbuf,
			       size_t errlen),
			       json_t **out, char *msg, size_t len);

/* Cancels the queued deliveries of settings: all (client -1) or one
 * client's: {"cancelled": N}. */
enum serr api_settings_cancel_queue(struct api_ctx *ctx, const char *who, int64_t client,
				    json_t **out, char *msg, size_t len);

#endif
