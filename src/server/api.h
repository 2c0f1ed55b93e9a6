/* api.h -- wardd's REST API: the route table and its handlers.
 *
 * JSON in and out under /api/v1. Administrators authenticate with a
 * bearer token from POST /api/v1/login, or in the web console (served here
 * too, under /console/) with a session cookie; docs/api.md describes every
 * route.
 * Handlers run on the HTTP loop's thread (see http.h).
 */
#ifndef WARD_API_H
#define WARD_API_H

#include "server/config.h"
#include "server/console.h"
#include "server/pki.h"
#include "common/ops.h"
#include "common/rate.h"
#include "common/http.h"
#include "server/notify.h"
#include "server/store.h"
#include "server/updates.h"

struct api_ctx {
	struct store *st;
	const struct config *cfg;
	struct notify *notify;
	json_t *rules;   /* the grouping rules (a list; empty: manual grouping) */
	json_t *sources; /* the update source table (a list; empty: the server) */
	json_t *sps_lists; /* smart protection source lists (empty: integrated) */
	struct updates *updates;
	struct sps_service *sps; /* the integrated smart protection server, or NULL */
	struct session_guard *guard; /* wrong passwords by address */
	struct signin *signin;   /* password work off the loop; the global brake */
	const char *password_file; /* the first start's password, until changed */
	struct logs_quota *quota;    /* detections reported by each agent */
	struct console *console;  /* the web console's files, or NULL */
	int64_t started;         /* when wardd started (seconds since the epoch) */
	const char *server_url;  /* https://NAME:PORT agents enroll with */
	const char *server_name; /* its NAME */
	const char *ca_pem;      /* the server CA's certificate */
	const char *server_crt;  /* wardd's own certificate */
	char server_pin[PKI_PIN_LEN]; /* the pin of its key (the integrated smart
				       * protection server's, for agents) */
	const char *sps_ca_pem;  /* the smart protection CA's certificate */
	const char *sps_ca_key_path, *sps_ca_crt_path; /* read for each enrollment */
	unsigned char caller_token[32]; /* during a handler of an enrollment route:
					 * the SHA-256 of the token presented */
	struct rate *enroll_by_token, *enroll_by_address;
};

/* An operation's arguments, decoded from its request by its row of
 * ops.def before its handler runs: each declared argument's value by its
 * index, of the declared type (a string, an integer, any JSON), NULL when
 * absent (a required one never is). Owned by api_handle(); valid during
 * the handler only. */
struct api_args {
	const struct ops_op *op;
	json_t *value[OPS_MAX_ARGS];
};

/* The string argument name of args (declared OPS_STRING or OPS_SECRET in
 * ops.def), or NULL when absent. The string lives as long as args. */
const char *api_arg_string(const struct api_args *args, const char *name);

/* Whether the integer argument name (OPS_INT) was given; its value in
 * *out when so. */
bool api_arg_int(const struct api_args *args, const char *name, int64_t *out);

/* The JSON argument name (OPS_JSON; borrowed: lives as long as args), or
 * NULL when absent. */
json_t *api_arg_json(const struct api_args *args, const char *name);

/* The arguments given, as an object {name: value} (new; the caller owns
 * it), or NULL when out of memory. */
json_t *api_args_object(const struct api_args *args);

/* The handler of each operation, as ops.def names it: answers req (or
 * parks it); who names the caller the credential identified (the
 * administrator, the enrollment token's domain path, or the agent's client
 * id); args are its arguments, checked against ops.def. Declared here for
 * every operation, so an operation whose handler is
 * defined nowhere fails the link. Loop thread only. */
#define OP(id, cli, method, path, auth, handler, summary) \
	void handler(struct api_ctx *ctx, struct http_req *req, const char *who, \
		     const struct api_args *args);
#define ARG(name, in, type, positional, required, help)
#define END_OP
#include "common/ops.def"
#undef OP
#undef ARG
#undef END_OP

/* Verifies every client's connection state and logs each change since the
 * last verification; with remove, also removes clients inactive for longer
 * than agents.remove_after (from the tree only: the daily task, and
 * verification on demand). Returns a new report {"summary": {...},
 * "changed": [...], "removed": [...]}, or NULL when out of memory. */
json_t *api_verify(struct api_ctx *ctx, bool remove);

/* Loads the grouping rules and the update source table from the store into
 * ctx. Returns false when out of memory or when they are unreadable. */
bool api_load_rules(struct api_ctx *ctx);

/* The request handler for http_new(): routes req by method and path,
 * checks its credentials and answers it. arg is a struct api_ctx. */
void api_handle(struct http_req *req, void *arg);

/* The http_privileged_fn of wardd (arg: the api_ctx): true for sign-in,
 * the console's files and a request with an administrator's session,
 * which the connections of http.admin_reserve serve. Loop thread only. */
bool api_privileged(struct http_req *req, void *arg);

/* Parses req's body as a JSON object. Returns it (owned by the caller),
 * or NULL after answering 400 naming what is wrong. */
json_t *api_body_object(struct http_req *req);

/* Returns a new random token as 64 hex digits in out (65 bytes) and its
 * SHA-256 in hash. */
void api_new_token(char out[65], unsigned char hash[32]);

#endif
