/* ops.c -- the table of API operations (see ops.h). */
#include "common/ops.h"

#include <string.h>

#define BODY(n, t, req, h)  { n, OPS_IN_BODY, t, false, req, h }
#define POS(n, t, h)        { n, OPS_IN_BODY, t, true, true, h }
#define QPOS(n, t, h)       { n, OPS_IN_QUERY, t, true, true, h }
#define QUERY(n, t, req, h) { n, OPS_IN_QUERY, t, false, req, h }
#define SECRET(n, h)        { n, OPS_IN_BODY, OPS_SECRET, false, true, h }

/* Ends an operation's argument list. */
#define END                 { NULL, OPS_IN_BODY, OPS_STRING, false, false, NULL }

#define SCOPE_HELP "root, domain:/PATH or client:ID"
#define IDS_HELP "client ids: 6 8, 6,8 or [6,8]"
#define TIME_HELP "(2026-12-05, 2026-12-05T07:12:03, with +01:00 or Z, else local " \
	"time; 30s, 15m, 2h, 7d ago; or seconds since the epoch)"

static const struct ops_op table[OPS_COUNT] = {
	{ OPS_HEALTH, NULL, "GET", "/api/v1/health", OPS_AUTH_NONE,
	  "the server's status and version", { END } },
	{ OPS_LOGIN, NULL, "POST", "/api/v1/login", OPS_AUTH_NONE,
	  "an administrator's session token", { END } },
	{ OPS_LOGOUT, "logout", "POST", "/api/v1/logout", OPS_AUTH_READ,
	  "end this session: its token stops working", { END } },
	{ OPS_SESSION, "session", "GET", "/api/v1/session", OPS_AUTH_READ,
	  "show this session: administrator, role and expiry", { END } },
	{ OPS_ADMIN_PASSWD, "admin passwd", "POST", "/api/v1/admins/passwd", OPS_AUTH_READ,
	  "change your password, or (an administrator) reset another's; your current "
	  "password is asked either way ($WARD_PASSWORD, the new one $WARD_NEW_PASSWORD, "
	  "else the terminal), and the changed one's other sessions end",
	  { BODY("user", OPS_STRING, false, "whose password (default: yours)"),
	    SECRET("password", "your current password"),
	    SECRET("new_password", "the new password"), END } },
	{ OPS_ADMIN_LIST, "admin list", "GET", "/api/v1/admins", OPS_AUTH_READ,
	  "list the administrators and their roles", { END } },
	{ OPS_ADMIN_ADD, "admin add", "POST", "/api/v1/admins", OPS_AUTH_ADMIN,
	  "add an administrator (the password from $WARD_NEW_PASSWORD, else the terminal)",
	  { POS("name", OPS_STRING, "the new administrator's name"),
	    BODY("role", OPS_STRING, false, "admin (the default) or read-only"),
	    SECRET("new_password", "the new administrator's password"), END } },
	{ OPS_ADMIN_REMOVE, "admin remove", "DELETE", "/api/v1/admins", OPS_AUTH_ADMIN,
	  "remove an administrator; their sessions end",
	  { QPOS("name", OPS_STRING, "the administrator's name"), END } },
	{ OPS_ADMIN_ROLE, "admin role", "PUT", "/api/v1/admins/role", OPS_AUTH_ADMIN,
	  "set an administrator's role: admin, or read-only (every read, no change)",
	  { POS("name", OPS_STRING, "the administrator's name"),
	    POS("role", OPS_STRING, "admin or read-only"), END } },
	{ OPS_OVERVIEW, "overview", "GET", "/api/v1/overview", OPS_AUTH_READ,
	  "agents by state, scan method and component version; the notification queue, "
	  "recent detections and the health of the server and smart protection servers",
	  { END } },
	{ OPS_TREE, "tree", "GET", "/api/v1/tree", OPS_AUTH_READ,
	  "show the client tree: domains and clients", { END } },
	{ OPS_DOMAIN_CREATE, "domain create", "POST", "/api/v1/domains", OPS_AUTH_ADMIN,
	  "create a domain (and its missing parents)",
	  { POS("path", OPS_STRING, "/PARENT/NAME"), END } },
	{ OPS_DOMAIN_RENAME, "domain rename", "POST", "/api/v1/domains/rename", OPS_AUTH_ADMIN,
	  "rename a domain",
	  { POS("path", OPS_STRING, "/PATH of the domain"), POS("name", OPS_STRING, "new name"),
	    END } },
	{ OPS_DOMAIN_MOVE, "domain move", "POST", "/api/v1/domains/move", OPS_AUTH_ADMIN,
	  "move a domain under another parent",
	  { POS("path", OPS_STRING, "/PATH of the domain"),
	    BODY("to", OPS_STRING, true, "/PATH of the new parent"), END } },
	{ OPS_DOMAIN_DELETE, "domain delete", "DELETE", "/api/v1/domains", OPS_AUTH_ADMIN,
	  "delete an empty domain", { QPOS("path", OPS_STRING, "/PATH"), END } },
	{ OPS_CLIENT_LIST, "client list", "GET", "/api/v1/clients", OPS_AUTH_READ,
	  "list clients with their connection states",
	  { QUERY("summary", OPS_INT, false, "1: only the count per state"), END } },
	{ OPS_CLIENT_SHOW, "client show", "GET", "/api/v1/client", OPS_AUTH_READ,
	  "show one client: status, settings in effect, state",
	  { QPOS("id", OPS_INT, "client id"), END } },
	{ OPS_CLIENT_MOVE, "client move", "POST", "/api/v1/clients/move", OPS_AUTH_ADMIN,
	  "move clients to a domain",
	  { POS("ids", OPS_IDS, IDS_HELP),
	    BODY("to", OPS_STRING, true, "/PATH of the domain"), END } },
	{ OPS_CLIENT_VERIFY, "client verify", "POST", "/api/v1/clients/verify", OPS_AUTH_ADMIN,
	  "verify every client's connection now; log and show what changed", { END } },
	{ OPS_CLIENT_MOVE_SERVER, "client move-server", "POST", "/api/v1/clients/move-server",
	  OPS_AUTH_ADMIN, "move clients to another wardd: they re-enroll there, in the "
	  "domain of the same path",
	  { POS("ids", OPS_IDS, IDS_HELP),
	    BODY("server", OPS_STRING, true, "https://HOST:PORT of the target server"),
	    BODY("token", OPS_STRING, true, "an enrollment token of the target server"),
	    BODY("ca", OPS_STRING, true, "the target server's CA certificate (PEM, or @FILE)"),
	    END } },
	{ OPS_CLIENT_REMOVE, "client remove", "POST", "/api/v1/clients/remove", OPS_AUTH_ADMIN,
	  "remove clients from the tree (their credentials stop working; nothing is "
	  "uninstalled; they can be restored for agents.removed_keep)",
	  { POS("ids", OPS_IDS, IDS_HELP), END } },
	{ OPS_CLIENT_REMOVED, "client removed", "GET", "/api/v1/clients/removed", OPS_AUTH_READ,
	  "list the clients removed from the tree that can still be restored", { END } },
	{ OPS_CLIENT_RESTORE, "client restore", "POST", "/api/v1/clients/restore",
	  OPS_AUTH_ADMIN, "put removed clients back: their credentials work again, in the "
	  "domain they were in", { POS("ids", OPS_IDS, IDS_HELP),
				   END } },
	{ OPS_ENROLL_TOKENS, "enroll tokens", "GET", "/api/v1/enroll/tokens", OPS_AUTH_READ,
	  "list the enrollment tokens in force: their ids, domains and expiry", { END } },
	{ OPS_ENROLL_TOKEN_NEW, "enroll new", "POST", "/api/v1/enroll/tokens", OPS_AUTH_ADMIN,
	  "create an enrollment token for agents; the answer "
	  "(the token shown once) is itself the bundle `ward-agent enroll --bundle` reads",
	  { BODY("domain", OPS_STRING, false, "the domain new agents land in (default: "
		 "agents.default_domain); grouping rules apply within it"),
	    BODY("days", OPS_INT, false, "days the token is valid (1 to 3650, default 30)"),
	    BODY("max_uses", OPS_INT, false, "agents it may enroll (default 0: no cap)"),
	    END } },
	{ OPS_ENROLL_TOKEN_REVOKE, "enroll revoke", "POST", "/api/v1/enroll/tokens/revoke",
	  OPS_AUTH_ADMIN, "revoke an enrollment token (enrolled agents are not affected)",
	  { POS("id", OPS_STRING, "the token's id (from enroll tokens)"), END } },
	{ OPS_EXPORT, "export", "GET", "/api/v1/export", OPS_AUTH_READ,
	  "the domain structure with its settings and grouping rules, as JSON", { END } },
	{ OPS_IMPORT, "import", "POST", "/api/v1/import", OPS_AUTH_ADMIN,
	  "make the domain structure, settings and rules those of an export",
	  { POS("export", OPS_JSON, "the export (JSON, or @FILE)"), END } },
	{ OPS_SETTINGS_KEYS, "settings keys", "GET", "/api/v1/settings/keys", OPS_AUTH_READ,
	  "list every setting: its type, choices or range, where it may be placed, its "
	  "default", { END } },
	{ OPS_SETTINGS_GET, "settings get", "GET", "/api/v1/settings", OPS_AUTH_READ,
	  "show the settings placed on a node and those in effect there",
	  { QUERY("scope", OPS_STRING, true, SCOPE_HELP), END } },
	{ OPS_SETTINGS_SET, "settings set", "PUT", "/api/v1/settings", OPS_AUTH_ADMIN,
	  "place a setting on a node",
	  { BODY("scope", OPS_STRING, true, SCOPE_HELP), POS("key", OPS_STRING, "setting"),
	    POS("value", OPS_JSON, "value (JSON, or text)"),
	    BODY("apply", OPS_STRING, false,
		 "all (clear values below) or inherit (keep them; the default)"),
	    END } },
	{ OPS_SETTINGS_UNSET, "settings unset", "DELETE", "/api/v1/settings", OPS_AUTH_ADMIN,
	  "remove a node's own value so that it inherits again",
	  { QUERY("scope", OPS_STRING, true, SCOPE_HELP), QPOS("key", OPS_STRING, "setting"),
	    END } },
	{ OPS_NOTIFY_QUEUE, "notify queue", "GET", "/api/v1/notify/queue", OPS_AUTH_READ,
	  "show the queued deliveries of settings", { END } },
	{ OPS_NOTIFY_CANCEL, "notify cancel", "DELETE", "/api/v1/notify/queue", OPS_AUTH_ADMIN,
	  "cancel queued deliveries (all, or one client's)",
	  { QUERY("client", OPS_INT, false, "client id"), END } },
	{ OPS_GROUPING_GET, "grouping get", "GET", "/api/v1/grouping", OPS_AUTH_READ,
	  "show the automatic grouping rules", { END } },
	{ OPS_GROUPING_SET, "grouping set", "PUT", "/api/v1/grouping", OPS_AUTH_ADMIN,
	  "replace the grouping rules (a JSON list; [] for manual grouping)",
	  { POS("rules", OPS_JSON,
		"[{\"match\": \"ip\"|\"host\", \"value\", \"domain\"}, ...]"), END } },
	{ OPS_SOURCES_GET, "sources get", "GET", "/api/v1/update-sources", OPS_AUTH_READ,
	  "show the update source table", { END } },
	{ OPS_SOURCES_SET, "sources set", "PUT", "/api/v1/update-sources", OPS_AUTH_ADMIN,
	  "replace the update source table (a JSON list, checked in order)",
	  { POS("sources", OPS_JSON, "[{\"range\": CIDR, \"url\": \"https://...\"}, ...]"),
	    END } },
	{ OPS_SPS_GET, "sps get", "GET", "/api/v1/sps-lists", OPS_AUTH_READ,
	  "show the smart protection source lists, with address-family warnings",
	  { END } },
	{ OPS_SPS_SET, "sps set", "PUT", "/api/v1/sps-lists", OPS_AUTH_ADMIN,
	  "replace the smart protection source lists (a JSON list, checked in order; "
	  "range \"*\" is the standard list; agents in none use the integrated server)",
	  { POS("lists", OPS_JSON, "[{\"range\": CIDR|\"*\", \"sources\": [\"https://...\"|"
		"\"integrated\", ...], \"proxy\": \"http://...\"}, ...]"), END } },
	{ OPS_SPS_SERVERS, "sps servers", "GET", "/api/v1/sps-servers", OPS_AUTH_READ,
	  "list the enrolled smart protection servers (ward-sps) with what they last "
	  "reported", { END } },
	{ OPS_SPS_TOKEN_NEW, "sps token", "POST", "/api/v1/sps/tokens", OPS_AUTH_ADMIN,
	  "create a token that enrolls one smart protection server (ward-sps); the answer "
	  "(the token shown once) is itself the bundle `ward-sps enroll --bundle` reads",
	  { BODY("days", OPS_INT, false, "days the token is valid (1 to 30, default 1)"),
	    END } },
	{ OPS_SPS_DISABLE, "sps disable", "POST", "/api/v1/sps-servers/disable", OPS_AUTH_ADMIN,
	  "stop agents trusting a smart protection server until it is enabled again",
	  { POS("id", OPS_INT, "the server's id (from sps servers)"), END } },
	{ OPS_SPS_ENABLE, "sps enable", "POST", "/api/v1/sps-servers/enable", OPS_AUTH_ADMIN,
	  "let agents trust a disabled smart protection server again",
	  { POS("id", OPS_INT, "the server's id (from sps servers)"), END } },
	{ OPS_SPS_REVOKE, "sps revoke", "POST", "/api/v1/sps-servers/revoke", OPS_AUTH_ADMIN,
	  "revoke a smart protection server for good: agents stop trusting its certificate "
	  "and its credential stops working (it must enroll again, with a new token)",
	  { POS("id", OPS_INT, "the server's id (from sps servers)"), END } },
	{ OPS_SPS_ENROLL, NULL, "POST", "/api/v1/sps/enroll", OPS_AUTH_SPS_ENROLL,
	  "enroll a smart protection server", { END } },
	{ OPS_SPS_HEARTBEAT, NULL, "POST", "/api/v1/sps/heartbeat", OPS_AUTH_SPS,
	  "a smart protection server reports its status", { END } },
	{ OPS_UPDATE_STATUS, "update status", "GET", "/api/v1/update", OPS_AUTH_READ,
	  "show the signature components, their packages and the last import", { END } },
	{ OPS_UPDATE_NOW, "update now", "POST", "/api/v1/update/now", OPS_AUTH_ADMIN,
	  "import the signature source now and wait for the outcome", { END } },
	{ OPS_UPDATE_AGENTS, "update agents", "POST", "/api/v1/update/agents", OPS_AUTH_ADMIN,
	  "tell the online agents of a scope to update their components now (roaming "
	  "agents update at their next scheduled update)",
	  { BODY("scope", OPS_STRING, true, SCOPE_HELP), END } },
	{ OPS_UPDATE_ROTATE_KEY, "update rotate-key", "POST", "/api/v1/update/rotate-key",
	  OPS_AUTH_ADMIN, "replace the package signing key with a new one it signs; agents "
	  "follow at their next update", { END } },
	{ OPS_UPDATE_SETTINGS, "update settings", "GET", "/api/v1/update/settings", OPS_AUTH_READ,
	  "show the signature source, the import schedule and the download cap in use",
	  { END } },
	{ OPS_UPDATE_CONFIGURE, "update configure", "PUT", "/api/v1/update/settings",
	  OPS_AUTH_ADMIN, "change the signature source, the import schedule or the download cap "
	  "(kept over wardd.conf's values; null: back to them)",
	  { BODY("source_dir", OPS_JSON, false, "directory of ClamAV databases on the server"),
	    BODY("watch_interval", OPS_JSON, false, "seconds between looks for a changed source"),
	    BODY("check_interval", OPS_JSON, false, "seconds between full imports"),
	    BODY("max_downloads", OPS_JSON, false, "package downloads served at once"), END } },
	{ OPS_LOGS, "logs", "GET", "/api/v1/logs", OPS_AUTH_READ,
	  "show the event log, newest first: system events, connection verification, "
	  "notification deliveries, detections",
	  { QUERY("kind", OPS_STRING, false, "system, verify, delivery or detection"),
	    QUERY("since", OPS_TIME, false, "from this time " TIME_HELP),
	    QUERY("until", OPS_TIME, false, "up to this time " TIME_HELP),
	    QUERY("client", OPS_INT, false, "one client's events (its id)"),
	    QUERY("domain", OPS_STRING, false, "events of clients in this domain and below"),
	    QUERY("before", OPS_INT, false, "only events older than this id (the next page)"),
	    QUERY("limit", OPS_INT, false, "at most this many (default 100, at most 100000)"),
	    QUERY("format", OPS_STRING, false, "json (the default) or csv"), END } },
	{ OPS_AGENT_ENROLL, NULL, "POST", "/api/v1/agent/enroll", OPS_AUTH_ENROLL,
	  "enroll an agent", { END } },
	{ OPS_AGENT_EVENTS, NULL, "POST", "/api/v1/agent/events", OPS_AUTH_AGENT,
	  "an agent's event channel", { END } },
	{ OPS_AGENT_ACK, NULL, "POST", "/api/v1/agent/ack", OPS_AUTH_AGENT,
	  "an agent acknowledges settings", { END } },
	{ OPS_AGENT_HEARTBEAT, NULL, "POST", "/api/v1/agent/heartbeat", OPS_AUTH_AGENT,
	  "an agent reports its status", { END } },
	{ OPS_AGENT_SOURCE, NULL, "GET", "/api/v1/agent/update-source", OPS_AUTH_AGENT,
	  "where an agent downloads updates from", { END } },
	{ OPS_AGENT_SPS, NULL, "GET", "/api/v1/agent/sps-sources", OPS_AUTH_AGENT,
	  "the smart protection sources of an agent", { END } },
	{ OPS_AGENT_UPDATE, NULL, "POST", "/api/v1/agent/update", OPS_AUTH_COMPONENTS,
	  "how an agent gets a component's newest version", { END } },
	{ OPS_AGENT_DOWNLOAD, NULL, "GET", "/api/v1/agent/download", OPS_AUTH_COMPONENTS,
	  "a package payload", { END } },
	{ OPS_AGENT_DETECTIONS, NULL, "POST", "/api/v1/agent/detections", OPS_AUTH_AGENT,
	  "an agent reports what its scans detected", { END } },
};

const struct ops_op *ops_table(void)
{
	return table;
}

const struct ops_op *ops_route(const char *method, const char *path, bool *path_known)
{
	size_t i;

	*path_known = false;
	for (i = 0; i < OPS_COUNT; i++) {
		if (strcmp(table[i].path, path) != 0)
			continue;
		*path_known = true;
		if (strcmp(table[i].method, method) == 0)
			return &table[i];
	}
	return NULL;
}
