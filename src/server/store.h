/* store.h -- wardd's persistent state: every SQL statement lives behind this.
 *
 * The client tree (the root, nested domains, clients), the settings placed
 * on its nodes and the settings each client effectively has, and the queue
 * of setting deliveries to agents, on the database layer (db/db.h): SQLite
 * or PostgreSQL, as server.database says; the interface names neither.
 * Where a function takes a path, it is that of a SQLite file or a
 * PostgreSQL connection URI.
 *
 * A store handle is not thread-safe: one thread uses it at a time. Every
 * function that changes state does so in one transaction, all or nothing.
 * Functions returning SERR_DB or SERR_INVAL write a message to errbuf.
 */
#ifndef WARD_STORE_H
#define WARD_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "server/serr.h"


/* The root's node id: the tree always has it. */
#define STORE_ROOT 1

/* Domains nest at most this deep: every tree walk (and jansson's
 * recursive encoding of the tree) stays shallow. */
#define STORE_MAX_DEPTH 32

enum store_kind {
	STORE_KIND_ROOT = 0,
	STORE_KIND_DOMAIN = 1,
	STORE_KIND_CLIENT = 2,
};

/* How a setting placed on a node treats the values below it. */
enum store_apply {
	STORE_APPLY_ALL = 0,   /* every node below takes it: their own values go */
	STORE_APPLY_INHERIT,   /* only nodes below without their own value take it */
};

struct store;

/* Opens (creating when missing) the database at path, checks its
 * structure (a damaged one is refused with a message that names the file
 * and says to restore it) and brings its schema up to date; a new
 * database gets the root with every setting at its default. Returns NULL
 * with a message in errbuf on failure. The caller owns the handle and
 * closes it with store_close(). */
struct store *store_open(const char *path, char *errbuf, size_t errlen);

/* Closes the handle (NULL is accepted), saving store_observed(). */
void store_close(struct store *st);

/* Sets this server's number among several on one database (0: alone,
 * as opened): it claims the deliveries of the agents that last polled
 * it. */
void store_set_frontend(struct store *st, int64_t frontend);

/* What a store_bell heard: */
#define STORE_RUNG_DELIVERIES 1   /* settings were queued or the queue held/let go */
#define STORE_RUNG_TASKS 2        /* tasks were queued */

struct store_bell;

/* The doorbell of servers sharing a database (db_bell): NULL with errbuf
 * empty for a database no two servers share (SQLite), NULL with a
 * message when it cannot be opened or another server runs as frontend.
 * The caller owns it; not thread-safe. */
struct store_bell *store_bell_open(const char *target, int64_t frontend, char *errbuf,
				   size_t errlen);

/* The descriptor to wait on (readable) for rings. */
int store_bell_fd(const struct store_bell *b);

/* STORE_RUNG_* bits of what rang since the last read; -1: the
 * connection was lost (close the bell, open another). */
int store_bell_read(struct store_bell *b);

/* Closes the bell (NULL is accepted). */
void store_bell_close(struct store_bell *b);

/* Asks for an answer on the bell's connection (db_postgres_bell_ask()):
 * the milliseconds the awaited answer has been waited for (0: none). */
uint64_t store_bell_ask(struct store_bell *b);

/* The milliseconds the awaited answer has been waited for (0: none);
 * asks nothing. */
uint64_t store_bell_waited(const struct store_bell *b);

/* Lets the store's statements that wait long ask on bell (NULL: none;
 * it must outlive its registration) whether the server lives. */
void store_set_bell(struct store *st, struct store_bell *bell);

/* Tells the store whether its database is within reach (the doorbell's
 * finding): while it is not, a lost connection is not opened again. */
void store_set_reachable(struct store *st, bool reachable);

/* Rings the deliveries' bell now: the queue was held or let go. */
enum serr store_ring_deliveries(struct store *st);

/* The clients of this server with tasks queued, each once, as a JSON
 * array of ids (the caller owns it). */
enum serr store_tasks_queued_clients(struct store *st, json_t **out);

/* The schema version this build brings databases to. */
int64_t store_schema_version(void);

/* Describes the database file at path, opened read only and left as it
 * is (its schema may be older or newer than this build's): its structure
 * is checked, and *info (the caller owns it) gets {"schema": N,
 * "clients": N, "events": N, "packages": [{"file", "component",
 * "version"}], "deliveries": N (queued), "paused": bool (deliveries held),
 * "importing": text or null (when an import started, while it runs),
 * "agents": [{"id", "hostname", "version"}] (as each last reported; null
 * when it never did), "deploying": [deployments in progress, as
 * store_deploy_list() has them, up to 1000], "servers": [the server
 * numbers of the wardd serving from it now] (PostgreSQL only)} as far as
 * that schema holds them. thorough: the structure is checked as
 * db_check() says (an upgrade's preflight, a restore), else only its
 * pages (a copy just made). */
enum serr store_inspect(const char *path, bool thorough, json_t **info, char *errbuf,
			size_t errlen);

/* The schema version of the database file at path (0: a new one), read
 * without checking or changing anything. */
enum serr store_schema_of(const char *path, int64_t *version, char *errbuf, size_t errlen);

/* Removes key's value (none there is no error). */
enum serr store_kv_delete(struct store *st, const char *key);

/* Copies the database at path to the new file out as of one moment,
 * while its server goes on writing, without changing it, and describes
 * the copy as store_inspect() does, with "snapshot_seconds": how long the
 * copy held its read transaction. The copy is a SQLite database, or a
 * PostgreSQL dump (pg_dump's custom format) for a database there. */
enum serr store_snapshot(const char *path, const char *out, json_t **info, char *errbuf,
			 size_t errlen);

/* The name of store_snapshot()'s copy of the database at target in a
 * backup archive: "data/ward.db" (SQLite) or "database/ward.pgdump"
 * (PostgreSQL). */
const char *store_copy_part(const char *target);

/* The schema version of the copy at path, whose name in its archive is
 * part (store_copy_part()), checking that it reads whole. */
enum serr store_copy_schema(const char *part, const char *path, int64_t *version,
			    char *errbuf, size_t errlen);

/* Replaces what the PostgreSQL database at target holds with the dump at
 * copy, in one transaction; one that holds a server's data already only
 * with force (SERR_EXIST otherwise). Its schema is brought up to date by
 * the next store_open(). */
enum serr store_restore(const char *target, const char *copy, bool force, char *errbuf,
			size_t errlen);

/* Returns the seconds this server has run, over every start (monotonic
 * time, saved by store_observed_save() and at close). Decisions that
 * remove or expire something need both it and the clock to agree, so a
 * clock step removes nothing: a client's last contact, a token's expiry,
 * an event's and a removal's time are recorded in both. */
int64_t store_observed(const struct store *st);

/* The work the database did for this handle so far (struct db's work):
 * a count to compare operations by, as a test of linear costs does. */
int64_t store_work(const struct store *st);

/* Saves store_observed() (never moving it back): wardd does so every
 * verification, so a crash loses at most that much of the count, which
 * only ever delays a removal. */
enum serr store_observed_save(struct store *st);

/* Creates domain name under parent (the root or a domain). Names are 1-64
 * printable characters without '/', unique among their siblings. Stores
 * the new node id in *id. */
enum serr store_domain_create(struct store *st, int64_t parent, const char *name,
			      int64_t *id, char *errbuf, size_t errlen);

/* Renames a domain. */
enum serr store_domain_rename(struct store *st, int64_t id, const char *name,
			      char *errbuf, size_t errlen);

/* Deletes an empty domain (SERR_NOTEMPTY otherwise) and its settings. */
enum serr store_domain_delete(struct store *st, int64_t id, char *errbuf, size_t errlen);

/* Moves a domain under another parent (not into itself or below itself). */
enum serr store_domain_move(struct store *st, int64_t id, int64_t parent,
			    char *errbuf, size_t errlen);

/* Resolves a domain path ("/" for the root, "/a/b" for domain b in a) to
 * its node id. With create, missing domains along the path are created
 * (a moved client lands in the domain of the same path). */
enum serr store_domain_lookup(struct store *st, const char *path, int create, int64_t *id,
			      char *errbuf, size_t errlen);

/* Writes the path of domain (or root) id into buf: "/" or "/a/b". */
enum serr store_domain_path(struct store *st, int64_t id, char *buf, size_t len);

/* Returns the tree as a new JSON object {id, name, kind, children: [...],
 * clients: [{id, uuid, hostname, moved?: true}]}; the caller owns the
 * reference. */
enum serr store_tree(struct store *st, json_t **out, char *errbuf, size_t errlen);

/* Adds a client with the given unique uuid, host name and credential (the
 * SHA-256 of its secret) in domain (or the root) and stores its node id in
 * *id. Its effective settings are computed and, being new, queued for
 * delivery. */
enum serr store_client_add(struct store *st, int64_t domain, const char *uuid,
			   const char *hostname, const unsigned char secret_hash[32],
			   int64_t *id, char *errbuf, size_t errlen);

/* Moves a client to another domain (or the root); its effective settings
 * are recomputed and queued for delivery if they changed. */
enum serr store_client_move(struct store *st, int64_t client, int64_t domain,
			    char *errbuf, size_t errlen);

/* Places setting key = value on node with the given apply mode. The value
 * is validated against the settings table (settings.h) for the node's
 * level. Every client whose effective settings change gets a new version
 * and a queued delivery; their number is stored in *changed (may be NULL). */
enum serr store_setting_set(struct store *st, int64_t node, const char *key,
			    const json_t *value, enum store_apply mode, size_t *changed,
			    char *errbuf, size_t errlen);

/* Removes node's own value of key, so it inherits again (not on the root,
 * which holds every setting). Changed clients as for store_setting_set(). */
enum serr store_setting_unset(struct store *st, int64_t node, const char *key,
			      size_t *changed, char *errbuf, size_t errlen);

/* Returns node's own values (*own) and its effective ones (*effective),
 * each a new JSON object the caller owns; either pointer may be NULL. */
enum serr store_settings_get(struct store *st, int64_t node, json_t **own,
			     json_t **effective, char *errbuf, size_t errlen);

/* The settings node would have from above it without its own: a new
 * object in *out the caller owns (the root's: none). */
enum serr store_settings_inherited(struct store *st, int64_t node, json_t **out,
				   char *errbuf, size_t errlen);

/* Stores in *out (a new object the caller owns) where each setting in
 * effect at node comes from: "root", "domain:/PATH" or "client:ID". */
enum serr store_settings_origin(struct store *st, int64_t node, json_t **out);

/* Returns a client's effective settings version (0 before the first). */
enum serr store_client_version(struct store *st, int64_t client, int64_t *version);

/* Kinds of bearer tokens. Only a token's SHA-256 is stored: tokens are 256
 * random bits, so a fast hash suffices where a password needs Argon2id. */
enum store_token {
	STORE_TOKEN_SESSION = 1,  /* an administrator's API session; subject: admin name */
	STORE_TOKEN_ENROLL = 2,   /* lets agents enroll; subject: the domain path */
	STORE_TOKEN_CONSOLE = 3,  /* a web console session (a cookie): ends when unused
				   * for a while; subject: admin name */
	STORE_TOKEN_SPS_ENROLL = 4, /* lets one smart protection server enroll;
				     * subject: the administrator who made it */
	STORE_TOKEN_POSTURE = 5,  /* a policy server's: asks for one host's posture;
				   * subject: the name it was given */
};

/* Creates administrator name (role "admin") with an Argon2id hash string,
 * or sets an existing one's password hash. */
enum serr store_admin_put(struct store *st, const char *name, const char *pwhash,
			  char *errbuf, size_t errlen);

/* Returns administrator name's password hash in *pwhash (caller frees);
 * SERR_NOENT when there is no such administrator. */
enum serr store_admin_get(struct store *st, const char *name, char **pwhash,
			  char *errbuf, size_t errlen);

/* Returns the number of administrators. */
enum serr store_admin_count(struct store *st, int64_t *count);

/* Adds administrator name with an Argon2id hash string and a role
 * ("admin" or "read-only"); SERR_EXIST when the name is taken. */
enum serr store_admin_add(struct store *st, const char *name, const char *pwhash,
			  const char *role, char *errbuf, size_t errlen);

/* Returns administrator name's role in *role (caller frees); SERR_NOENT
 * when there is no such administrator. */
enum serr store_admin_role(struct store *st, const char *name, char **role);

/* Sets administrator name's role ("admin" or "read-only"). */
enum serr store_admin_set_role(struct store *st, const char *name, const char *role,
			       char *errbuf, size_t errlen);

/* Removes administrator name and ends their sessions, in one transaction. */
enum serr store_admin_remove(struct store *st, const char *name, char *errbuf,
			     size_t errlen);

/* Lists the administrators by name as [{"name", "role"}]; the caller owns
 * *out. */
enum serr store_admin_list(struct store *st, json_t **out);

/* Returns the number of administrators of role. */
enum serr store_admin_count_role(struct store *st, const char *role, int64_t *count);

/* Ends administrator name's sessions (API and console) but the one whose
 * token's SHA-256 is keep (NULL: all). */
enum serr store_admin_end_sessions(struct store *st, const char *name,
				   const unsigned char keep[32]);

/* Records a token by its SHA-256, valid until expires (Unix time); ends,
 * when not 0, is the latest a sliding token may be extended to. Expired
 * tokens are deleted first. */
enum serr store_token_put(struct store *st, const unsigned char hash[32],
			  enum store_token kind, const char *subject, int64_t expires,
			  int64_t ends, char *errbuf, size_t errlen);

/* Looks up a token of kind valid at now by its SHA-256: SERR_OK with its
 * subject copied into subject (len bytes) and, when expires is not NULL,
 * its expiry there; SERR_NOENT when unknown or expired. With idle > 0 a
 * sliding token's expiry moves to now + idle (never past its end). */
enum serr store_token_check(struct store *st, const unsigned char hash[32],
			    enum store_token kind, int64_t now, int64_t idle,
			    char *subject, size_t len, int64_t *expires);

/* With max_uses >= 0, caps the uses of the token whose SHA-256 is hash
 * (0: no cap); with max_uses < 0, counts one use of it. A token used up is
 * no longer valid (store_token_check) nor listed. */
enum serr store_token_use(struct store *st, const unsigned char hash[32],
			  int64_t max_uses);

/* Deletes a token (a session that signs out); unknown ones are no error. */
enum serr store_token_delete(struct store *st, const unsigned char hash[32]);

/* Lists the tokens of kind valid at now, soonest expiry first, as
 * [{"id", "subject", "expires", "uses", "max_uses"}]: id is the first 8 bytes of the token's
 * SHA-256 in hex (naming it without revealing it). The caller owns *out. */
enum serr store_tokens_list(struct store *st, enum store_token kind, int64_t now,
			    json_t **out);

/* Deletes the token of kind named id (as store_tokens_list names it); *n
 * is the number deleted (0: no such token). */
enum serr store_token_revoke(struct store *st, enum store_token kind, const char *id,
			     int64_t *n);

/* Returns the number of tokens of kind valid at now. */
enum serr store_token_count(struct store *st, enum store_token kind, int64_t now,
			    int64_t *count);

/* Records a smart protection server enrolled as uuid with the credential
 * whose SHA-256 is secret_hash, its host name, the names its certificate
 * carries (a JSON list, as text) and the pin of its key (pki_pin()),
 * enabled. SERR_EXIST when uuid is taken. */
enum serr store_sps_add(struct store *st, const char *uuid,
			const unsigned char secret_hash[32], const char *hostname,
			const char *names, const char *pin, int64_t now, char *errbuf,
			size_t errlen);

/* Authenticates a smart protection server as store_agent_auth() does an
 * agent; *id is its row id. A revoked one is unknown. */
enum serr store_sps_auth(struct store *st, const char *uuid,
			 const unsigned char secret_hash[32], int64_t *id);

/* Records what smart protection server id reported (JSON text) and when. */
enum serr store_sps_seen(struct store *st, int64_t id, const char *status, int64_t now,
			 char *errbuf, size_t errlen);

/* Stores in *out (a new list) every enrolled smart protection server:
 * {id, uuid, hostname, names, enrolled, last_seen, status, pin, trust}, trust
 * being its state: enabled, disabled or revoked. */
enum serr store_sps_list(struct store *st, json_t **out);

/* Sets smart protection server id's state ("enabled", "disabled" or
 * "revoked"); a revoked one stays so. *n: 1 when changed, 0 when there is
 * no such server or it is revoked. */
enum serr store_sps_set_state(struct store *st, int64_t id, const char *state,
			      int64_t *n);

/* Stores in *out (a new list of {"pin"}) the pins of the enabled smart
 * protection servers' keys: the ones agents may trust. */
enum serr store_sps_pins(struct store *st, json_t **out);

/* Authenticates an agent: SERR_OK with its node id in *id when a client
 * has uuid and the credential whose SHA-256 is secret_hash, else
 * SERR_NOENT. */
enum serr store_agent_auth(struct store *st, const char *uuid,
			   const unsigned char secret_hash[32], int64_t *id);

/* Records that agent id was seen at now, with its reported status
 * (JSON text, copied; NULL keeps the last one). Held in memory until
 * store_seen_flush() writes every agent's latest in one statement (soft
 * state every agent sends every minute: a statement and a commit each
 * took most of a frontend's loop at 14,000 agents); store_clients_each()
 * shows what is held. SERR_NOMEM only. */
enum serr store_agent_seen(struct store *st, int64_t id, const char *status, int64_t now,
			   char *errbuf, size_t errlen);

/* Writes the reports store_agent_seen() holds (called every second, and
 * at store_close()): when each agent was seen and its status, soft state
 * (where its channel is, which routes its deliveries, is written at once
 * by store_agent_here()). Kept for the next call on failure, which the
 * message says. */
enum serr store_seen_flush(struct store *st, char *errbuf, size_t errlen);

/* Returns agent id's effective settings (canonical JSON text in *json,
 * caller frees) and their version. */
enum serr store_agent_settings(struct store *st, int64_t id, char **json,
			       int64_t *version, char *errbuf, size_t errlen);

/* Records that agent id applied its settings up to version: its queued
 * delivery of that version or an older one is done. Acknowledging the
 * version of its move (or a later one) marks it moved, cancels what is
 * queued for it and logs that. */
enum serr store_agent_ack(struct store *st, int64_t id, int64_t version, char *errbuf,
			  size_t errlen);

/* A queued delivery of a client's settings. */
struct store_delivery {
	int64_t client;
	int64_t version;
	int64_t attempts;
	int64_t next_attempt;  /* Unix time; STORE_NEVER, STORE_WAITING: see below */
};

/* Retries ran out: waits for the agent to reconnect. */
#define STORE_NEVER INT64_MAX
/* Sent and not acknowledged yet, or due while the agent had no channel
 * open: waits for the acknowledgement, the agent's next poll, or a retry
 * set when the acknowledgement does not come. */
#define STORE_WAITING (INT64_MAX - 1)

/* Claims deliveries due at now (next_attempt <= now) of the agents that
 * last polled this server, fresh ones first, then by age: fn(d, arg)
 * takes one (returns true: it is sent at once) or passes it over (its
 * agent has no channel open here). Either way it waits from now
 * (STORE_WAITING), so none is looked at twice. Stops once room are taken
 * or none is due; one transaction, whose rows no other server claims
 * meanwhile. fn must not use the store. */
enum serr store_deliveries_claim(struct store *st, int64_t now, size_t room,
				 bool (*fn)(const struct store_delivery *d, void *arg), void *arg);

/* Returns client's queued delivery in *d; SERR_NOENT when none. */
enum serr store_delivery_get(struct store *st, int64_t client, struct store_delivery *d);

/* What a poll of client finds, in one query (each poll's round trips
 * are its frontend's loop's time): its queued delivery in *d (*queued
 * false when none), whether it has tasks to send (*tasks: queued, or
 * delivered and sent at or before resend_before: store_tasks_due()), and
 * whether the database names this server as the one it last polled
 * (*here). All false on failure. */
enum serr store_poll_state(struct store *st, int64_t client, int64_t resend_before,
			   struct store_delivery *d, bool *queued, bool *tasks, bool *here);

/* Records this server as the one client last polled: the changes queued
 * for it from now on are this server's to deliver. */
enum serr store_agent_here(struct store *st, int64_t client);

/* Sets client's delivery to be tried again at next_attempt (0: now),
 * with attempts counted; it is this server's to send from now. */
enum serr store_delivery_retry(struct store *st, int64_t client, int64_t attempts,
			       int64_t next_attempt);

/* Lists every queued delivery as a new JSON array of {client, uuid,
 * hostname, version, attempts, next_attempt}; the caller owns it. */
enum serr store_deliveries_json(struct store *st, json_t **out);

/* Cancels client's queued delivery (client < 0: all). Stores the number
 * cancelled in *n. */
enum serr store_deliveries_cancel(struct store *st, int64_t client, int64_t *n);

/* Calls fn(c, arg) for every client at or below node only (a client, a
 * domain or the root; 0: all): c is
 * a JSON object {id, uuid, hostname, domain (node id), last_seen, version,
 * acked_version, status, roaming, verified_state} valid during the call. Stops when fn
 * returns nonzero. */
enum serr store_clients_each(struct store *st, int64_t only,
			     int (*fn)(json_t *c, void *arg), void *arg);

/* store_clients_each(), c with "settings" too: the client's effective
 * settings (an object; null when they cannot be read). */
enum serr store_clients_each_settings(struct store *st, int64_t only,
				      int (*fn)(json_t *c, void *arg), void *arg);

/* Records the connection state the last verification found for client id. */
enum serr store_client_set_state(struct store *st, int64_t id, const char *state);

/* Removes client id from the tree (its queued delivery goes with it; its
 * credential stops working) and logs a system event about it saying why
 * (its host name and domain kept there). It is kept, with its credential
 * and own settings, among the removed clients until restored or purged
 * (store_client_restore(), store_removed_purge()). Nothing is done to the
 * endpoint. */
enum serr store_client_remove(struct store *st, int64_t id, const char *why,
			      char *errbuf, size_t errlen);

/* Stores in *out (a new list) the removed clients kept for restoring,
 * newest removal first: [{"id", "uuid", "hostname", "domain" (the path it
 * was in), "last_seen", "removed", "why"}]. */
enum serr store_removed_list(struct store *st, json_t **out);

/* Puts removed client id back, with its id, credential and own settings,
 * in the domain of its path (the root when that is gone), seen now, and
 * queues its settings. SERR_NOENT when it is not kept; SERR_EXIST when
 * its agent has enrolled again meanwhile. */
enum serr store_client_restore(struct store *st, int64_t id, char *errbuf, size_t errlen);

/* Forgets the removed clients older than keep seconds at now (the clock)
 * and by store_observed(); *n is how many. */
enum serr store_removed_purge(struct store *st, int64_t keep, int64_t now, int64_t *n);

/* Records that client id is to move to another server (move: JSON text
 * {"server", "ca", "token", "domain"}) and queues it for delivery under a
 * new version; when the agent acknowledges that version, the client's
 * state becomes "moved". */
enum serr store_client_move_server(struct store *st, int64_t id, const char *move,
				   char *errbuf, size_t errlen);

/* Returns the pending move of client id (JSON text, caller frees), or
 * SERR_NOENT. */
enum serr store_client_move_info(struct store *st, int64_t id, char **move);

/* Asks client id to update its components now: a new version carries the
 * request to the agent like a settings change, and the request stays
 * pending until the agent acknowledges that version (or a later one). */
enum serr store_client_update_now(struct store *st, int64_t id, char *errbuf, size_t errlen);

/* Sets *pending to whether client id has an update request not yet
 * acknowledged. */
enum serr store_client_update_pending(struct store *st, int64_t id, int *pending);

/* Records a component package: version of component, a full package
 * (base 0) or a delta from base, whose payload is file (a name in the
 * package directory) of size bytes, with its signed envelope. With path
 * (the file's, or NULL), the file goes into the database too, in parts,
 * for the other servers on it to copy: in the same transaction, so that a
 * package listed always has its parts. SERR_EXIST (nothing changed) when
 * file is recorded already. */
enum serr store_package_add(struct store *st, const char *component, int64_t version,
			    int64_t base, const char *file, int64_t size,
			    const char *envelope, const char *path, char *errbuf, size_t errlen);

/* Forgets the package whose payload is file, and its parts. */
enum serr store_package_remove(struct store *st, const char *file);

/* The size of a package file's parts in the database. */
#define STORE_PART_BYTES (1024 * 1024)

/* Whether other servers may share this store's database (PostgreSQL):
 * then packages are kept in the database as well, for them to copy. */
bool store_shared(const struct store *st);

/* Part number part of file's parts: *data (the caller frees it) holds
 * *len bytes, at most STORE_PART_BYTES. SERR_NOENT when there is none. */
enum serr store_package_part(struct store *st, const char *file, int64_t part, void **data,
			     size_t *len);

/* What one server at a time does among several on one database, held
 * for as long as it takes (store_hold()). */
enum store_hold {
	STORE_HOLD_IMPORT = 100,  /* a signature import */
};

/* Takes (on) what, unless another server on the database holds it
 * (*taken false), or gives it back. A database no two servers share:
 * always taken. */
enum serr store_hold(struct store *st, enum store_hold what, bool on, bool *taken);

/* Signs every package anew after a key rotation, in one transaction:
 * replaces the envelope of each package named in envelopes (an object
 * payload file -> envelope text) and sets server value key to value (the
 * rotation chain). */
enum serr store_package_reseal(struct store *st, const json_t *envelopes, const char *key,
			       const char *value, char *errbuf, size_t errlen);

/* Lists component's packages as a new JSON array of {version, base, file,
 * size, envelope, created}, by version then base; the caller owns it. */
enum serr store_packages(struct store *st, const char *component, json_t **out);

/* Returns the domain structure as a new JSON list of {"path", "settings"}
 * (each node's own values), the root first. */
enum serr store_export(struct store *st, json_t **out);

/* Server-wide values by key (grouping rules, for one): the value of key
 * in *value (caller frees), or SERR_NOENT. */
enum serr store_kv_get(struct store *st, const char *key, char **value);

/* Sets key to value. */
enum serr store_kv_put(struct store *st, const char *key, const char *value,
		       char *errbuf, size_t errlen);

/* Sets key to value unless it has one: *claimed says whether this call
 * set it, so that of servers sharing the database one does a thing once.
 * When it does and also (may be NULL) names a key, that key is set to
 * also_value in the same transaction. */
enum serr store_kv_claim(struct store *st, const char *key, const char *value,
			 const char *also, const char *also_value, bool *claimed, char *errbuf,
			 size_t errlen);

/* The keys starting with prefix (letters, digits, '.', ':', '-' and '_'
 * only) and their values: a new JSON array of {key, value}, by key; the
 * caller owns it. */
enum serr store_kv_list(struct store *st, const char *prefix, json_t **out);

/* Returns the number of queued deliveries. */
enum serr store_delivery_count(struct store *st, int64_t *count);

/* The kinds of event the log holds (NULL-terminated): system events,
 * connection verification, notification deliveries, detections. */
extern const char *const store_event_kinds[];

/* Appends an event of kind about client (0: none; its host name and
 * domain path are copied in) to the log, stamped when (0: now). */
enum serr store_event_add(struct store *st, const char *kind, int64_t client,
			  int64_t when, const char *message);

/* Appends n events of kind about client, stamped when[i] (0: now), with
 * messages[i] and details[i] (JSON text of an object, or NULL; details
 * may be NULL: none), in one transaction: all or none. Not inside another
 * transaction. */
enum serr store_events_add(struct store *st, const char *kind, int64_t client,
			   const int64_t *when, const char *const *messages,
			   const char *const *details, size_t n);

/* store_event_add() of a formatted message, which also goes to the
 * daemon's log (info level). */
enum serr store_eventf(struct store *st, const char *kind, int64_t client,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Which events store_events() returns; zero or NULL members match all. */
struct store_event_filter {
	const char *kind;
	int64_t since, until;    /* seconds since the epoch, inclusive */
	int64_t client;
	const char *domain;      /* a domain path: it and every domain below */
	int64_t before;          /* only events older than this id (paging) */
	int64_t limit;
};

/* Stores in *out (a new array the caller owns) the events f selects,
 * newest first: {id, time, kind, client, hostname, domain, detail (an
 * object, or null), message} (the message last: the CLI's tables show
 * the last column whole). */
enum serr store_events(struct store *st, const struct store_event_filter *f,
		       json_t **out);

/* Deletes the events older than keep seconds at now (the clock) and by
 * store_observed(); *n is how many. */
enum serr store_events_prune(struct store *st, int64_t keep, int64_t now, int64_t *n);

/* Limits counted in the database, so that every server on it (several
 * frontends) enforces one limit together rather than one each
 * (store/limits.c). Names are rate_peer_key()s of addresses, or the
 * enrollment token's id in hex. */
enum store_limit {
	STORE_LIMIT_ENROLL_TOKEN = 1,   /* enrollments per token */
	STORE_LIMIT_ENROLL_ADDRESS = 2, /* enrollments per address */
};

/* Spends one request of name under limit, allowed per_minute a minute with
 * burst at once (per_minute 0: no limit), at now_ms (the clock, in ms: a
 * time all servers share). *wait gets 0 when it may go, else the seconds
 * until it may (at least 1; nothing is spent). *first is set when this
 * refusal is name's first since it was allowed or since log_interval
 * seconds: refusals are logged once per offender and interval. A clock
 * stepped back forgets what was spent rather than refusing for as long as
 * the step. */
enum serr store_rate_take(struct store *st, enum store_limit limit, const char *name,
			  int64_t per_minute, int64_t burst, int64_t now_ms, int64_t log_interval,
			  unsigned *wait, bool *first, char *errbuf, size_t errlen);

/* Wrong passwords an address may give before it must wait, and how long
 * it waits then: 30 seconds, doubling with each further wrong password up
 * to 15 minutes. Failures older than STORE_GUARD_WINDOW no longer count. */
#define STORE_GUARD_FREE 5
#define STORE_GUARD_FIRST_WAIT 30
#define STORE_GUARD_MAX_WAIT 900
#define STORE_GUARD_WINDOW 900

/* The seconds address (a rate_peer_key()) must still wait at now before it
 * may try a password (0: it may now). */
enum serr store_guard_wait(struct store *st, const char *address, int64_t now,
			   unsigned *wait);

/* Counts a wrong password from address at now; *wait gets the seconds it
 * must now wait (0 while it has free tries left). */
enum serr store_guard_fail(struct store *st, const char *address, int64_t now,
			   unsigned *wait);

/* Forgets address's wrong passwords (after a password it gave matched). */
enum serr store_guard_clear(struct store *st, const char *address);

/* Counts a wrong password from any address at now towards the global
 * brake: failures of them within window seconds engage it, until window
 * seconds after the last. *engaged is set when this one engaged it. */
enum serr store_brake_fail(struct store *st, int64_t failures, int64_t window, int64_t now,
			   bool *engaged);

/* *until gets when the global brake lets go (<= now: not engaged). */
enum serr store_brake_until(struct store *st, int64_t *until);

/* While the brake is engaged, passwords are verified one per pace
 * seconds, by all servers together: *turn gets when the caller's
 * verification may start (the clock), the first free turn from now. A turn
 * more than cap seconds ahead (the clock stepped back) starts over. */
enum serr store_brake_turn(struct store *st, int64_t pace, int64_t cap, int64_t now,
			   int64_t *turn);

/* Forgets limits that no longer hold anything back at now (the clock). */
enum serr store_limits_prune(struct store *st, int64_t now);

/* A task's states (NULL-terminated): queued, delivered (sent to its agent,
 * which has not reported on it yet), running, and the final ones,
 * completed, cancelled, failed. */
extern const char *const store_task_states[];

/* Queues a task of kind ("scan", "cancel", "quarantine_restore",
 * "quarantine_delete") for client: args is JSON text of an object, the
 * task's members but id and kind, as the agent gets them; who asked is
 * logged. The new task's id in *id; an event logs it. SERR_EXIST (msg
 * names it, its id in *id) when client has an unfinished task of kind
 * with the same "item" and "task" members, or when it has max unfinished
 * tasks (*id 0); SERR_NOENT when client is not a client. */
enum serr store_task_add(struct store *st, int64_t client, const char *kind, const char *args,
			 const char *who, int64_t max, int64_t *id, char *errbuf,
			 size_t errlen);

/* Stores in *out (a new list) client's tasks to deliver now, as its agent
 * gets them ({"id", "kind", ...args}): the queued ones, and those
 * delivered at or before resend_before without a report since; marks
 * them delivered at now (an event for each first delivery). */
enum serr store_tasks_due(struct store *st, int64_t client, int64_t resend_before,
			  int64_t now, json_t **out);

/* client's agent has had every task up to id seen (the highest id in the
 * answers it got): its delivered tasks past seen were in an answer it lost
 * (a long poll it cut short as the answer came) and go with its next poll,
 * not notify.ack_timeout later. */
enum serr store_tasks_seen(struct store *st, int64_t client, int64_t seen);

/* An agent's report on one of its tasks (validated by the caller). */
struct store_task_report {
	int64_t id;
	const char *state;     /* running, completed, cancelled or failed */
	const char *progress;  /* JSON text {files, bytes, detections}, or NULL */
	const char *error;     /* or NULL */
	int64_t started, finished; /* Unix time; 0: not given */
};

/* Records r about client's task: SERR_NOENT when client has no task
 * r->id (another client's is none of its business), SERR_EXIST when the
 * task is finished already. A change of state is logged; a scan task
 * becomes the client's last scan, running with its progress or finished
 * (unless it reported a later one). */
enum serr store_task_report(struct store *st, int64_t client,
			    const struct store_task_report *r, char *errbuf, size_t errlen);

/* Cancels task id for who: a queued one at once (*cancel 0); for one
 * delivered or running, queues a "cancel" task for its agent (its id in
 * *cancel; the task stays as it is until the agent reports). *client is
 * the task's client. SERR_NOENT: no such task; SERR_EXIST: finished
 * already (or a cancellation is queued already: its id in *cancel). */
enum serr store_task_cancel(struct store *st, int64_t id, const char *who, int64_t max,
			    int64_t *client, int64_t *cancel, char *errbuf, size_t errlen);

/* Which tasks store_tasks_list() returns; zero or NULL members match all. */
struct store_task_filter {
	int64_t node;          /* a client, or every client at or below a domain */
	int64_t id;
	const char *state, *kind;
	int64_t since;         /* created at or after */
	int64_t before;        /* only ids below this (paging) */
	int64_t limit;
};

/* Stores in *out (a new list) the tasks f selects, newest first: {id,
 * client, hostname, kind, args, state, progress, error, who, created,
 * updated, delivered, started, finished}. */
enum serr store_tasks_list(struct store *st, const struct store_task_filter *f, json_t **out);

/* Fails every unfinished task not changed for older seconds at now (an
 * event each); *n is how many. An agent upgrade whose agent reports its
 * version waiting for a restart (restart_pending), and was seen within
 * older + offline (seconds an agent counts as online after it was seen,
 * its event channel open), is kept running: it counts as changed now. */
enum serr store_tasks_expire(struct store *st, int64_t older, int64_t offline, int64_t now,
			     int64_t *n);

/* Deletes the finished tasks last changed more than keep seconds before
 * now; *n is how many. */
enum serr store_tasks_prune(struct store *st, int64_t keep, int64_t now, int64_t *n);

/* Records scan (JSON text of the "last_scan" of an agent's status) as
 * client's last scan, unless the one stored finished (or started) later,
 * or is the same task's scan running (its reports are the fresher). */
enum serr store_client_last_scan(struct store *st, int64_t client, const char *scan);

/* Records client's quarantine inventory items (validated records {"id",
 * "path", "size", "sha256", "names", "time", "source", "state"}): each
 * added or replaced; when complete, those not in items are forgotten, and
 * *gone lists (new) the ids of those among them that had a central copy.
 * SERR_INVAL (nothing stored) when client would have more than max
 * records. */
enum serr store_quarantine_put(struct store *st, int64_t client, const json_t *items,
			       bool complete, int64_t max, json_t **gone, char *errbuf,
			       size_t errlen);

/* Stores in *out (a new list) the quarantine records of the clients at or
 * below node (0: all), of one item id and of one state when not NULL,
 * newest first, at most limit: {client, hostname, id, path, size, sha256,
 * names, time, source, state, reported, central (bytes of the central
 * copy; 0: none)}. */
enum serr store_quarantine_list(struct store *st, int64_t node, const char *item,
				const char *state, int64_t limit, json_t **out);

/* Records that client's item has a central copy of size bytes (0: none). */
enum serr store_quarantine_central(struct store *st, int64_t client, const char *item,
				   int64_t size);

/* Stores in *total the bytes of every central copy. */
enum serr store_quarantine_central_total(struct store *st, int64_t *total);

/* Stores in *out (a new object the caller owns) a member "CLIENT/ITEM"
 * for each record with a central copy. */
enum serr store_quarantine_centrals(struct store *st, json_t **out);

/* A deployment's states (NULL-terminated): "script" (its host fetched the
 * install script), "package" (and the agent's package), and the final
 * ones, "enrolled", "failed", "timed-out", "cancelled". A deployment is in
 * progress while it is in one of the first two with its deadline ahead.
 * Rows as the functions below hand them: {id, token (the enrollment
 * token's id), domain, address (the host that fetched the script), state,
 * arch, version (of the package), message (why it failed), client (the
 * agent it enrolled), started, updated, deadline}. */
extern const char *const store_deploy_states[];

/* Records deployment id (32 hex digits) of enrollment token token into
 * domain, whose script address fetched at now, open until deadline:
 * SERR_EXIST with a message when max_open are in progress already. */
enum serr store_deploy_start(struct store *st, const char *id, const char *token,
			     const char *domain, const char *address, int64_t now,
			     int64_t deadline, int64_t max_open, char *errbuf, size_t errlen);

/* Moves deployment id of token, still in progress, to state, setting arch,
 * version, message and client where given (NULL, 0: as they are):
 * SERR_NOENT when there is no such deployment in progress. */
enum serr store_deploy_step(struct store *st, const char *id, const char *token,
			    const char *state, const char *arch, const char *version,
			    const char *message, int64_t client, int64_t now);

/* Cancels deployment id in progress (who did it goes in its message);
 * *row (may be NULL) gets it afterwards. SERR_NOENT when none is. */
enum serr store_deploy_cancel(struct store *st, const char *id, const char *who, int64_t now,
			      json_t **row);

/* Stores deployment id in *row (the caller owns it); SERR_NOENT when none. */
enum serr store_deploy_get(struct store *st, const char *id, json_t **row);

/* Ends the deployments whose deadline passed by now (state "timed-out"),
 * handing them in *expired (a new list, as they were), and removes ended
 * ones last changed before keep_before. */
enum serr store_deploy_expire(struct store *st, int64_t now, int64_t keep_before,
			      json_t **expired);

/* Stores in *out (a new list) the deployments, newest first, at most
 * limit; only those in progress at now when open_only. */
enum serr store_deploy_list(struct store *st, bool open_only, int64_t now, int64_t limit,
			    json_t **out);

/* Stores in *counts (a new list of {state, n}) the deployments by state at
 * now (those past their deadline count as "timed-out"). */
enum serr store_deploy_count(struct store *st, int64_t now, json_t **counts);

/* Fills host (hlen bytes) and domain (dlen bytes) with client's host name
 * and domain path: SERR_NOENT when there is no such client. */
enum serr store_client_place(struct store *st, int64_t client, char *host, size_t hlen,
			     char *domain, size_t dlen);

/* Counts the detections logged since then by clients in the domain path
 * scope and below ("/": all), into *n, and the clients they came from,
 * into *clients. */
enum serr store_detections_count(struct store *st, const char *scope, int64_t since,
				 int64_t *n, int64_t *clients);

/* Stores in *out (a new object) each component's package versions, with
 * when each was made: {component: [{"version", "created"}]}, oldest
 * first. */
enum serr store_package_versions(struct store *st, json_t **out);

/* Alerts (alerts.c). A channel: {name, kind, config (an object, secrets
 * included), updated}. Sets channel name (kind "email", "syslog" or
 * "webhook"; config JSON text), replacing one of that name. */
enum serr store_alert_channel_put(struct store *st, const char *name, const char *kind,
				  const char *config, int64_t now, char *errbuf, size_t errlen);

/* Removes channel name: SERR_NOENT when there is none. */
enum serr store_alert_channel_delete(struct store *st, const char *name);

/* Stores in *out (a new list) every channel, by name. */
enum serr store_alert_channels(struct store *st, json_t **out);

/* Sets rule name (params: JSON text of an object; channels: of a list of
 * names), replacing one of that name; a rule whose kind, scope or
 * parameters changed forgets the conditions it had told. */
enum serr store_alert_rule_put(struct store *st, const char *name, const char *kind,
			       const char *scope, const char *params, const char *channels,
			       int64_t every, bool enabled, int64_t now, char *errbuf,
			       size_t errlen);

/* Removes rule name with what it holds: SERR_NOENT when there is none. */
enum serr store_alert_rule_delete(struct store *st, const char *name);

/* Stores in *out (a new list) every rule: {name, kind, scope, params,
 * channels, every, enabled, last_sent, dropped (raised beyond what it
 * holds), updated, held (items waiting)}. */
enum serr store_alert_rules(struct store *st, json_t **out);

/* Holds an item rule raised (detail: JSON text of an object) for its next
 * message; past max_held held, counts it only. */
enum serr store_alert_raise(struct store *st, const char *rule, int64_t now,
			    const char *subject, const char *detail, int64_t max_held);

/* Stores in *out (a new list) the first limit items rule holds: {id,
 * time, subject, detail}. */
enum serr store_alert_items(struct store *st, const char *rule, int64_t limit, json_t **out);

/* In one transaction: queues the message subject/body (JSON text) of rule
 * for each channel named in the list channels, lets go of the items up to
 * id upto, and records now as the rule's last message. */
enum serr store_alert_flush(struct store *st, const char *rule, int64_t upto, int64_t now,
			    const json_t *channels, const char *subject, const char *body);

/* Records the conditions of rule true now (the keys of now_true), and
 * forgets those no longer; *fresh (a new list) gets those not true
 * before. */
enum serr store_alert_open(struct store *st, const char *rule, const json_t *now_true,
			   int64_t now, json_t **fresh);

/* Stores in *out (a new list) at most limit messages due at now: {id,
 * rule, channel, subject, attempts, body (object), kind and config of its
 * channel (null when it was removed), time}. */
enum serr store_alert_pending(struct store *st, int64_t now, int64_t limit, json_t **out);

/* Records message id's outcome: state "sent", "failed", or "pending"
 * again (tried at next_try), after attempts, with error. */
enum serr store_alert_result(struct store *st, int64_t id, const char *state,
			     int64_t attempts, int64_t next_try, const char *error, int64_t now);

/* Stores in *out (a new list) the newest limit messages (of rule only,
 * when not NULL): {id, time, rule, channel, subject, body, state,
 * attempts, error, done}. */
enum serr store_alert_log(struct store *st, const char *rule, int64_t limit, json_t **out);

/* Stores in *out (a new list of {state, n}) the messages by state. */
enum serr store_alert_counts(struct store *st, json_t **out);

/* Removes the messages sent or given up before then. */
enum serr store_alert_prune(struct store *st, int64_t before);

#endif
