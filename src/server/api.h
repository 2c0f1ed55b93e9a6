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
	struct signin *signin;   /* password work off the loop; the global brake */
	const char *password_file; /* the first start's password, until changed */
	struct logs_quota *quota;    /* detections reported by each agent */
	struct console *console;  /* the web console's files, or NULL */
	int64_t started;         /* when wardd started (seconds since the epoch) */
	const char *server_url;  /* https://NAME:PORT agents enroll with */
	json_t *frontends;       /* the URLs agents may use (server.frontends), strings */
	const char *server_name; /* its NAME */
	json_t *warnings;        /* what is wrong in wardd's setup (strings, logged
				  * at start), shown in the overview's health */
	const char *ca_pem;      /* the server CA's certificate */
	const char *server_crt;  /* wardd's own certificate */
	char server_pin[PKI_PIN_LEN]; /* the pin of its key (the integrated smart
				       * protection server's, for agents) */
	const char *sps_ca_pem;  /* the smart protection CA's certificate */
	const char *sps_ca_key_path, *sps_ca_crt_path; /* read for each enrollment */
	unsigned char caller_token[32]; /* during a handler of an enrollment route:
					 * the SHA-256 of the token presented */
	int64_t uploads;         /* central quarantine copies being received */
	struct backups *backups; /* the backups wardd makes itself */
	struct doorbell *bell;   /* hears the other servers on the database; NULL: none */
	struct metrics *metrics; /* what GET /metrics counts */
	struct deploy *deploy;   /* agent deployments */
	struct alerts *alerts;   /* alert rules and the thread that sends them */
	struct licenses *licenses; /* the licenses held and what they allow */
	struct rollout *rollout; /* agent upgrades */
	struct posture *posture; /* the posture report's index of hosts */
	struct http_server *http;
	bool metrics_token;      /* metrics.token_file is set: its token's SHA-256 */
	unsigned char metrics_token_hash[32];
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

/* The http_headers_fn of wardd (arg: the api_ctx): a copy for the central
 * quarantine is admitted (or refused) by api_quarantine_admit() before
 * its body is read; every other request takes http.max_request. Loop
 * thread only. */
bool api_headers(struct http_req *req, void *arg, size_t *max_body);

/* Admits the body of PUT /api/v1/agent/quarantine/ITEM from client:
 * answers and returns false when refused (400 no item, 404 unknown item,
 * 403 quarantine.central off, 413 past the caps, 200 a copy there
 * already, 507 the central quarantine full, 503 too many at once); else
 * sets *max_body to the cap and counts the upload in ctx->uploads until
 * the request ends. Loop thread only. */
bool api_quarantine_admit(struct api_ctx *ctx, struct http_req *req, int64_t client,
			  size_t *max_body);

/* Removes the central quarantine copies of client (its records went with
 * it when it was removed from the tree). Loop thread only. */
void api_quarantine_forget(struct api_ctx *ctx, int64_t client);

/* Removes the central quarantine copies that no record holds any more:
 * those whose removal (or whose client's) another wardd on the same
 * database heard of, each keeping the copies its agents sent it, and one
 * a kill left between writing a copy and recording it. Returns how many
 * went. Loop thread only (copies are written there too). */
size_t api_quarantine_sweep(struct api_ctx *ctx);

/* Parses req's body as a JSON object. Returns it (owned by the caller),
 * or NULL after answering 400 naming what is wrong. */
json_t *api_body_object(struct http_req *req);

/* Answers a store failure err with msg: 404 for a missing node, 409 for
 * a taken name or a domain that is not empty, 400 for an invalid value,
 * 500 otherwise. The HTTP side of every function that returns a store
 * error. */
void api_store_error(struct http_req *req, enum serr err, const char *msg);

/* Resolves a scope ("root", "domain:/PATH" or "client:ID"; NULL is
 * missing) to its node in *node; SERR_INVAL or SERR_NOENT with msg
 * naming what is wrong. Loop thread only. */
enum serr api_scope(struct api_ctx *ctx, const char *scope, int64_t *node, char *msg,
		    size_t len);

/* Refuses an action naming client id (SERR_EXIST, answered 409, msg
 * saying why) when the client was moved to another server: it answers to
 * that server now, and here it can only be removed. SERR_OK otherwise
 * (a domain or the root too). Loop thread only. */
enum serr api_refuse_moved(struct api_ctx *ctx, int64_t id, char *msg, size_t len);

/* api_refuse_moved() for each client of ids (ID or [IDS]). */
enum serr api_refuse_moved_ids(struct api_ctx *ctx, json_t *ids, char *msg, size_t len);

/* Answers req with the outcome err of a function that takes no request:
 * *out (stolen) with status on SERR_OK (500 when it is NULL: out of
 * memory), else as api_store_error() with msg. out is a pointer so that a
 * call api_answer(req, 200, fn(..., &out, ...), &out, msg) reads it after
 * fn has set it. */
void api_answer(struct http_req *req, unsigned status, enum serr err, json_t **out,
		const char *msg);

/* Returns a new random token as 64 hex digits in out (65 bytes) and its
 * SHA-256 in hash. */
void api_new_token(char out[65], unsigned char hash[32]);

#endif
