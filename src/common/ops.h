/* ops.h -- every operation of wardd's REST API, defined once (in ops.def).
 *
 * The server routes requests by this table (method, path, credential) and
 * attaches a handler to each id; the `ward` command line builds requests
 * from it (its words, its arguments and where each goes) and prints its
 * help from it. An operation without CLI words is for agents or is the
 * login itself.
 */
#ifndef WARD_OPS_H
#define WARD_OPS_H

#include <stdbool.h>
#include <stddef.h>

/* OPS_HEALTH, OPS_LOGIN, ...: one per operation of ops.def, in its order. */
enum ops_id {
#define OP(id, cli, method, path, auth, handler, summary) OPS_##id,
#define ARG(name, in, type, positional, required, help)
#define END_OP
#include "common/ops.def"
#undef OP
#undef ARG
#undef END_OP
	OPS_COUNT
};

/* Who may call an operation. */
enum ops_auth {
	OPS_AUTH_NONE,
	OPS_AUTH_ADMIN,   /* a session of an administrator of role "admin": a bearer
			   * token, or the console's cookie with its CSRF token */
	OPS_AUTH_READ,    /* a session of any administrator, "read-only" too: what
			   * reads, and what concerns only the session itself */
	OPS_AUTH_ENROLL,  /* an agent enrollment token */
	OPS_AUTH_SPS_ENROLL, /* a smart protection server's enrollment token */
	OPS_AUTH_AGENT,   /* an agent's credential */
	OPS_AUTH_SPS,     /* a smart protection server's credential */
	OPS_AUTH_COMPONENTS, /* either: those who install components */
	OPS_AUTH_POSTURE, /* a policy server's posture token, or any administrator's
			   * session */
	OPS_AUTH_DEPLOY,  /* an agent enrollment token in the path: a deployment's
			   * script, package and reports */
};

/* Where an argument goes in the request. */
enum ops_in {
	OPS_IN_BODY,   /* a member of the JSON body */
	OPS_IN_QUERY,  /* a query-string parameter */
};

enum ops_type {
	OPS_STRING,
	OPS_SECRET,    /* a string never given on the command line: read from
			* $WARD_<NAME>, the terminal or standard input */
	OPS_INT,
	OPS_JSON,      /* any JSON value; on the command line, text that is not
			* JSON is taken as a string */
	OPS_IDS,       /* client ids: a JSON list of integers; on the command
			* line 6 8, 6,8 or [6,8] (a positional one takes every
			* remaining word, so it comes last) */
	OPS_TIME,      /* seconds since the epoch; on the command line also ISO
			* 8601 or a time ago (2h, 7d) */
};

struct ops_arg {
	const char *name;
	enum ops_in in;
	enum ops_type type;
	bool positional;  /* on the command line, given in order without --name */
	bool required;
	const char *help;
};

#define OPS_MAX_ARGS 9

struct ops_op {
	enum ops_id id;
	const char *cli;      /* command-line words ("domain create"), or NULL */
	const char *method;
	const char *path;
	enum ops_auth auth;
	const char *summary;
	struct ops_arg args[OPS_MAX_ARGS];  /* ended by a NULL name */
};

/* Returns the table (static storage, indexed by enum ops_id). */
const struct ops_op *ops_table(void);

/* The longest path parameter routed (with its NUL). */
#define OPS_MAX_PARAM 128

/* Copies into out (len bytes) the value of op's path parameter in path:
 * op's path is PREFIX{name}SUFFIX ("/api/v1/agent/quarantine/{item}",
 * "/deploy/{token}/install.sh") and path is PREFIX, a segment not empty
 * and without a slash, then SUFFIX. Returns false when op has no
 * parameter, path is not one of op's, or the value needs more than len
 * bytes. Safe from any thread. */
bool ops_path_param(const struct ops_op *op, const char *path, char *out, size_t len);

/* Finds the operation for method and path (a path ending in a parameter
 * matches the paths ops_path_param() takes); NULL when none. Sets
 * *path_known when some operation has that path (for 405 against 404). */
const struct ops_op *ops_route(const char *method, const char *path, bool *path_known);

#endif
