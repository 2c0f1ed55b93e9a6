/* agent.c -- ward-agent: its configuration and commands. `run` is the
 * agent itself: an event loop (loop.h) on the main thread that owns the
 * control socket (control.h) and the table of scans (tasks.h), the
 * channel to the server on a thread of its own (channel.h), and the
 * component in use between them (components.h). `status`, `scan` and
 * `update` are clients of the running agent's control socket.
 *
 * State lives in one directory (agent.state_dir): the credential, the
 * server's CA certificate and the settings in effect, each replaced
 * atomically, so the agent may be killed at any moment.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/astate.h"
#include "agent/channel.h"
#include "agent/clamd.h"
#include "agent/components.h"
#include "agent/control.h"
#include "agent/dpkgup.h"
#include "agent/protect.h"
#include "agent/reports.h"
#include "agent/tasks.h"
#include "agent/upgrade.h"
#include "agent/vault.h"
#include "agent/worker.h"
#include "common/ini.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/pkg.h"
#include "common/rest.h"
#include "common/state.h"
#include "common/util.h"

static const struct ini_field fields[] = {
	{ "agent", "state_dir", INI_STRING, offsetof(struct agent_config, state_dir),
	  "/var/lib/ward/agent", 0, 0, "credential, server CA, settings in effect and the "
	  "control socket" },
	{ "agent", "networks", INI_STRING, offsetof(struct agent_config, networks), "auto", 0, 0,
	  "the address families this host's networks carry: auto (from its addresses), "
	  "ipv4, ipv6 or dual" },
	{ "agent", "control_connections", INI_INT,
	  offsetof(struct agent_config, control_connections), "16", 1, 1024,
	  "connections to the control socket served at once (ward-agent status, scan, "
	  "update); more are closed" },
	{ "agent", "max_scans", INI_INT, offsetof(struct agent_config, max_scans), "4", 1, 64,
	  "on-demand scans (ward-agent scan) run at once; more are refused" },
	{ "agent", "log_queue", INI_INT, offsetof(struct agent_config, log_queue), "1048576",
	  65536, 1073741824, "bytes of log lines the running agent keeps while its log's "
	  "reader (journald) does not take them; its threads never wait on the log, and "
	  "lines past this are dropped and counted" },
	{ "scan", "worker_user", INI_STRING, offsetof(struct agent_config, worker_user),
	  "ward-scan", 0, 0, "the user scan workers run as (must exist; empty: root without "
	  "capabilities, weaker)" },
	{ "scan", "worker_threads", INI_INT, offsetof(struct agent_config, worker_threads), "0",
	  0, 64, "scan threads in a scan worker; 0: one per CPU, at most 8" },
	{ "scan", "timeout", INI_DURATION, offsetof(struct agent_config, scan_timeout), "300",
	  1, 86400, "how long one file's scan may take before it is given up (an error)" },
	{ "scan", "scratch_dir", INI_STRING, offsetof(struct agent_config, scratch_dir),
	  "/run/ward-agent/scan", 0, 0, "where scan workers keep libclamav's temporary "
	  "files (a tmpfs costs least)" },
	{ "realtime", "cache_entries", INI_INT, offsetof(struct agent_config, rt_cache_entries),
	  "65536", 1024, 16777216, "verdicts real-time scanning keeps in memory (about 56 "
	  "bytes each), besides the kernel's ignore marks" },
	{ "realtime", "max_pending", INI_INT, offsetof(struct agent_config, rt_max_pending),
	  "8192", 64, 65536, "files waiting for a verdict at once, each an open descriptor; "
	  "written files past it are scanned when next opened, opens get "
	  "realtime.on_timeout" },
	{ "realtime", "log_queue", INI_INT, offsetof(struct agent_config, rt_log_queue), "256",
	  16, 65536, "real-time log lines waiting for their writer; more are dropped and "
	  "counted" },
	{ "clamd", "enabled", INI_BOOL, offsetof(struct agent_config, clamd_enabled), "no", 0, 0,
	  "serve clamd's socket protocol, for programs made for clamd (mail, web, file "
	  "servers): they scan with this agent's component and method" },
	{ "clamd", "socket", INI_STRING, offsetof(struct agent_config, clamd_socket),
	  "/run/ward-agent/clamd.ctl", 0, 0, "the UNIX socket it answers on; whoever may "
	  "connect may have the agent read any file by its path (SCAN)" },
	{ "clamd", "socket_mode", INI_STRING, offsetof(struct agent_config, clamd_socket_mode),
	  "0660", 0, 0, "the socket's permissions, in octal" },
	{ "clamd", "socket_group", INI_STRING, offsetof(struct agent_config, clamd_socket_group),
	  "", 0, 0, "the socket's group (the programs' users join it); empty: root's" },
	{ "clamd", "debian_socket", INI_BOOL, offsetof(struct agent_config, clamd_debian_socket),
	  "no", 0, 0, "also answer on /run/clamav/clamd.ctl, where Debian's clamd does, for "
	  "programs configured for it (not while a clamd answers there)" },
	{ "clamd", "tcp", INI_STRING, offsetof(struct agent_config, clamd_tcp), "", 0, 0,
	  "TCP addresses to answer on too, HOST:PORT separated by spaces ([::1]:3310); "
	  "empty: none" },
	{ "clamd", "tcp_remote", INI_BOOL, offsetof(struct agent_config, clamd_tcp_remote), "no",
	  0, 0, "allow clamd.tcp addresses that are not loopback: other hosts may then scan "
	  "streams here" },
	{ "clamd", "max_connections", INI_INT,
	  offsetof(struct agent_config, clamd_max_connections), "200", 1, 10000,
	  "connections served at once; more wait in the socket's backlog" },
	{ "clamd", "max_per_client", INI_INT,
	  offsetof(struct agent_config, clamd_max_per_client), "50", 1, 10000,
	  "connections of one client at once (a user on the UNIX socket, an address over TCP); "
	  "more are told so and closed" },
	{ "clamd", "max_threads", INI_INT, offsetof(struct agent_config, clamd_max_threads), "10",
	  2, 256, "path commands (SCAN, CONTSCAN, MULTISCAN, ALLMATCHSCAN) walked at once, "
	  "and a MULTISCAN's scans in parallel" },
	{ "clamd", "max_queue", INI_INT, offsetof(struct agent_config, clamd_max_queue), "100", 1,
	  10000, "requests of one connection (IDSESSION) waiting for their answers, and path "
	  "commands of all waiting for a walker (as clamd's MaxQueue); past either, further "
	  "commands are read once answers go out" },
	{ "clamd", "max_scans", INI_INT, offsetof(struct agent_config, clamd_max_scans), "256", 1,
	  8192, "streams and descriptors (INSTREAM, FILDES) with the scan workers at once; "
	  "past it no new command is read until one is answered (real-time scanning keeps "
	  "the rest of the workers' queue)" },
	{ "clamd", "stream_memory", INI_INT, offsetof(struct agent_config, clamd_stream_memory),
	  "536870912", 1048576, 68719476736LL, "bytes of streams held in memory at once; past "
	  "it no new command is read until a stream is scanned (each stream under way is "
	  "bounded by stream_max_length)" },
	{ "clamd", "stream_max_length", INI_INT, offsetof(struct agent_config, clamd_stream_max),
	  "104857600", 1024, 4294967295LL, "bytes of one INSTREAM; more: \"INSTREAM size limit "
	  "exceeded. ERROR\"" },
	{ "clamd", "command_timeout", INI_DURATION,
	  offsetof(struct agent_config, clamd_command_timeout), "30", 1, 3600,
	  "how long a new connection may take to send its first command" },
	{ "clamd", "read_timeout", INI_DURATION, offsetof(struct agent_config, clamd_read_timeout),
	  "120", 1, 3600, "how long a session or a stream may wait for its next bytes" },
	{ "clamd", "enable_shutdown", INI_BOOL, offsetof(struct agent_config, clamd_shutdown),
	  "no", 0, 0, "SHUTDOWN stops the clamd service (the agent goes on); else it answers "
	  "COMMAND UNAVAILABLE" },
	{ "clamd", "enable_reload", INI_BOOL, offsetof(struct agent_config, clamd_reload), "yes",
	  0, 0, "RELOAD has the agent update its component now (Update Now)" },
	{ "clamd", "unverified", INI_STRING, offsetof(struct agent_config, clamd_unverified),
	  "error", 0, 0, "the answer for what smart scan could not verify (no smart "
	  "protection source answered): error (a mail server defers the mail; never a silent "
	  "OK) or clean (logged and counted)" },
	{ "clamd", "stream_command", INI_BOOL, offsetof(struct agent_config, clamd_stream_command),
	  "no", 0, 0, "serve STREAM, which clamd removed in 0.104: \"PORT n\", the data on a "
	  "TCP port of its own (ClamAV::Client, and so qpsmtpd and Courier::Filter)" },
	{ "clamd", "stream_min_port", INI_INT,
	  offsetof(struct agent_config, clamd_stream_min_port), "1024", 1024, 65535,
	  "the lowest port STREAM offers" },
	{ "clamd", "stream_max_port", INI_INT,
	  offsetof(struct agent_config, clamd_stream_max_port), "2048", 1024, 65535,
	  "the highest port STREAM offers" },
	{ "clamd", "actions", INI_BOOL, offsetof(struct agent_config, clamd_actions), "no", 0, 0,
	  "take the policy's actions (action.*: quarantine, delete...) on the files SCAN and "
	  "its kin find and on FILDES descriptors' files, as the agent's own scans do; off, "
	  "the client decides, as with clamd" },
	{ "clamd", "cache", INI_BOOL, offsetof(struct agent_config, clamd_cache), "yes", 0, 0,
	  "remember the verdicts of the files MULTISCAN reads (by device, inode, size and "
	  "change time, under the component in use; in the state directory), so a tree "
	  "scanned again is read only where it changed" },
	{ "clamd", "allmatch", INI_BOOL, offsetof(struct agent_config, clamd_allmatch), "yes", 0,
	  0, "serve ALLMATCHSCAN" },
	{ "upgrade", "boot_id_file", INI_STRING, offsetof(struct agent_config, boot_id_file),
	  "/proc/sys/kernel/random/boot_id", 0, 0, "where this host's boot id is read: an "
	  "upgrade that needs the host restarted waits for another id" },
	{ "upgrade", "utmp_file", INI_STRING, offsetof(struct agent_config, utmp_file),
	  "/var/run/utmp", 0, 0, "who is logged in (utmp): their terminals are told of an "
	  "update that waits for a restart (restart.notify)" },
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* How to start the agent, for the commands that need it running. */
#define HOW_TO_START "start it with: systemctl start ward-agent (or ward-agent run)"

static void usage(FILE *f)
{
	fputs("usage: ward-agent [--config FILE] COMMAND\n"
	      "       ward-agent --print-defaults   every option at its default, as an INI file\n"
	      "       ward-agent [--config FILE] --check-config   whether FILE is valid\n\n"
	      "commands:\n"
	      "  enroll --bundle FILE [--server URL]\n"
	      "                                    enroll with the server the bundle names\n"
	      "                                    (or at URL, https://HOST[:PORT])\n"
	      "  enroll --server URL --token T --ca FILE\n"
	      "         [--deployment ID]           (the install script of a deployment\n"
	      "                                    names its id: the server records it)\n"
	      "  run                               serve: event channel, heartbeats, settings,\n"
	      "                                    component updates\n"
	      "  supervise                         run the agent of ROOT/current (a versioned\n"
	      "                                    install), restarting it, upgrading it and\n"
	      "                                    bringing its version back when a new one fails\n"
	      "  upgrade-dpkg                      install the version an upgrade of a packaged\n"
	      "                                    agent brought, or go back (systemd runs it)\n"
	      "  upgrade-dpkg-resume               start upgrade-dpkg again if an upgrade it\n"
	      "                                    began did not end (the service's start)\n"
	      "  update                            have the running agent update its\n"
	      "                                    components now (Update Now)\n"
	      "  scan PATH...                      have the running agent scan files and\n"
	      "                                    directories with the component in use\n"
	      "  status                            print the enrollment, settings and components,\n"
	      "                                    and what the running agent is doing\n"
	      "  quarantine list                   the running agent's quarantined files\n"
	      "  quarantine restore ID [--overwrite]\n"
	      "                                    put item ID back where it was\n"
	      "  quarantine delete ID              remove item ID for good\n",
	      f);
}

static int cmd_enroll(struct agent *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "server", required_argument, NULL, 's' },
		{ "token", required_argument, NULL, 't' },
		{ "ca", required_argument, NULL, 'c' },
		{ "deployment", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *bundle_path = NULL, *server = NULL, *token = NULL, *ca_file = NULL;
	const char *deployment = NULL;
	const char *bundle_ca, *bundle_server;
	json_t *bundle = NULL;
	char uuid[37], *ca = NULL;
	int c, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "b:s:t:c:d:", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			bundle_path = optarg;
			break;
		case 's':
			server = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'c':
			ca_file = optarg;
			break;
		case 'd':
			deployment = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (deployment && (strlen(deployment) != 32 ||
			   strspn(deployment, "0123456789abcdef") != 32)) {
		log_msg(LOG_LVL_ERROR, "enroll: --deployment: expected 32 lowercase hex digits");
		return 2;
	}
	if (bundle_path && (token || ca_file)) {
		log_msg(LOG_LVL_ERROR, "enroll: --bundle carries the token and the CA; of the "
			"other options only --server may go with it");
		ret = 2;
		goto out;
	}
	if (bundle_path) {
		/* --server overrides the bundle's address: the server as this
		 * host reaches it (another name, a proxy, an address). */
		bundle = state_read_bundle(bundle_path, server ? &bundle_server : &server,
					   &bundle_ca, &token);
		if (!bundle)
			goto out;
		ca = strdup(bundle_ca);
	} else if (server && token && ca_file) {
		ca = util_read_file(ca_file, 1 << 16, NULL);
		if (!ca) {
			log_msg(LOG_LVL_ERROR, "%s: %s", ca_file, strerror(errno));
			goto out;
		}
	} else {
		usage(stderr);
		ret = 2;
		goto out;
	}
	if (!util_url_valid(server)) {
		log_msg(LOG_LVL_ERROR, "enroll: server '%s' is not https://HOST[:PORT] (a name, "
			"an IPv4 address or an [IPv6] address; no path)", server);
		ret = 2;
		goto out;
	}
	if (!state_enroll_begin(a->cfg.state_dir, a->cred_path))
		goto out;
	util_uuid(uuid);
	if (ca && state_write(a->ca_path, ca) &&
	    channel_enroll(a, server, a->ca_path, token, uuid, NULL, deployment)) {
		printf("enrolled with %s as %s\n", server, uuid);
		ret = 0;
	}
out:
	free(ca);
	json_decref(bundle);
	return ret;
}

/* A scan request waiting for the channel to take the source list. */
struct waiting {
	uint64_t id;
	json_t *req;
	struct waiting *next;
};

/* The running agent's services, for the control socket's commands. */
struct services {
	struct agent *a;
	struct control *control;   /* NULL once closed */
	struct channel *channel;
	struct tasks *tasks;
	struct protect *protect;
	struct vault *vault;
	struct clamd *clamd;       /* NULL: clamd.enabled is off */
	struct waiting *waiting;
};

static void start_scan(struct services *sv, uint64_t id, const json_t *req);

/* An answer from the channel: to Update Now, or the source list taken
 * before a smart scan, which starts now. */
static void on_channel_answer(uint64_t id, json_t *answer, void *arg)
{
	struct services *sv = arg;
	struct waiting **pp, *w;

	for (pp = &sv->waiting; *pp && (*pp)->id != id; pp = &(*pp)->next)
		;
	if ((w = *pp) != NULL) {
		*pp = w->next;
		if (sv->control && json_object_get(answer, "error"))
			control_answer(sv->control, id, json_incref(answer));
		else if (sv->control)
			start_scan(sv, id, w->req);
		json_decref(w->req);
		free(w);
		json_decref(answer);
	} else if (sv->control) {
		control_answer(sv->control, id, answer);
	} else {
		json_decref(answer);
	}
}

/* A scan request: with smart scan, the channel takes the server's source
 * list first (as the administrator may just have changed it); so it does
 * while no component is in use yet (its scan worker may be starting, and
 * be smart). */
static void ask_scan(struct services *sv, uint64_t id, const json_t *req)
{
	const struct components_handle *h = components_acquire(sv->a->comps);
	bool conventional = h && !h->smart;
	struct waiting *w;

	components_release(sv->a->comps, h);
	if (conventional) {
		start_scan(sv, id, req);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		control_answer(sv->control, id, json_pack("{ss}", "error", "out of memory"));
		return;
	}
	w->id = id;
	w->req = json_incref((json_t *)req);
	w->next = sv->waiting;
	sv->waiting = w;
	channel_ask(sv->channel, CHANNEL_SOURCES, id);
}

/* What the running agent says of itself (`ward-agent status`). */
static json_t *live_status(struct services *sv)
{
	const struct components_handle *h = components_acquire(sv->a->comps);
	json_t *s = json_pack("{sb sI sI sI}", "running", 1, "pid", (json_int_t)getpid(), "scans",
			      (json_int_t)tasks_running(sv->tasks), "unverified",
			      (json_int_t)sv->a->unverified);

	if (s)
		json_object_set_new(s, "realtime", protect_status(sv->protect));
	if (s && sv->clamd)
		json_object_set_new(s, "clamd", clamd_status(sv->clamd));
	if (s && h)
		json_object_set_new(s, "in_use", json_pack("{ss sI}", "component", h->name,
							   "version", (json_int_t)h->version));
	components_release(sv->a->comps, h);
	return s;
}

/* A scan request: {"cmd": "scan", "paths": [ABSOLUTE...]}. */
static void start_scan(struct services *sv, uint64_t id, const json_t *req)
{
	const json_t *list = json_object_get(req, "paths"), *p;
	const char **paths = NULL;
	char msg[256];
	size_t i, n = json_array_size(list);
	int fd;

	if (!json_is_array(list) || n == 0) {
		control_answer(sv->control, id, json_pack("{ss}", "error", "scan: \"paths\" is "
							     "a non-empty array of paths"));
		return;
	}
	paths = calloc(n, sizeof(*paths));
	if (!paths) {
		control_answer(sv->control, id, json_pack("{ss}", "error", "out of memory"));
		return;
	}
	json_array_foreach(list, i, p) {
		paths[i] = json_string_value(p);
		if (!paths[i] || paths[i][0] != '/') {
			control_answer(sv->control, id, json_pack("{ss}", "error", "scan: every "
								     "path is absolute"));
			goto out;
		}
	}
	if (tasks_running(sv->tasks) >= (unsigned)sv->a->cfg.max_scans) {
		control_answer(sv->control, id, json_pack("{ss}", "error", "the agent runs as many "
							     "scans as it may already "
							     "(agent.max_scans)"));
		goto out;
	}
	fd = control_take(sv->control, id);
	if (fd >= 0 && tasks_scan(sv->tasks, paths, n, fd, msg, sizeof(msg)) != 0) {
		log_msg(LOG_LVL_ERROR, "scan: %s", msg);
		close(fd); /* the client hears the scan ended unfinished */
	}
out:
	free(paths);
}

static void task_done(struct services *sv, json_int_t id, int64_t started, const char *error);

/* A quarantine list, restore or delete, asked through the control socket
 * or by the server: run off the loop's thread (tasks_run()), since a
 * restore decrypts up to quarantine.max_size and holds the quarantine. */
struct qwork {
	struct services *sv;
	bool control;           /* asked through the control socket: ctl_id */
	uint64_t ctl_id;
	json_int_t task;        /* else the server's task */
	int64_t started;
	enum { QWORK_LIST, QWORK_RESTORE, QWORK_DELETE } what;
	char item[QUARANTINE_ID_LEN + 1];
	bool overwrite, exclude;
	json_t *items;          /* what a list found */
	enum aerr rc;
	char msg[512];
};

static void qwork_run(void *arg)
{
	struct qwork *w = arg;
	struct vault *v = w->sv->vault;

	if (w->what == QWORK_LIST) {
		w->items = vault_list(v, w->msg, sizeof(w->msg));
		w->rc = w->items ? AERR_OK : AERR_IO;
	} else if (w->what == QWORK_RESTORE) {
		w->rc = vault_restore(v, w->item, w->overwrite, w->exclude, w->msg, sizeof(w->msg));
	} else {
		w->rc = vault_delete(v, w->item, w->msg, sizeof(w->msg));
	}
}

/* The end of a qwork on the loop's thread: the answer or the task's
 * report (none when the agent stopped before it ran: the control socket
 * is gone, and the server delivers its task again). */
static void qwork_done(void *arg, bool ran)
{
	struct qwork *w = arg;
	struct services *sv = w->sv;
	json_t *answer;

	if (ran && w->rc == AERR_OK && w->what != QWORK_LIST)
		channel_wake(sv->channel); /* the server hears of it now */
	if (ran && !w->control) {
		task_done(sv, w->task, w->started, w->rc == AERR_OK ? NULL : w->msg);
	} else if (ran && sv->control) {
		if (w->rc != AERR_OK)
			answer = json_pack("{ss}", "error", w->msg);
		else if (w->what == QWORK_LIST)
			answer = json_pack("{sO}", "items", w->items);
		else
			answer = json_pack("{sb}", "ok", 1);
		control_answer(sv->control, w->ctl_id, answer);
	}
	json_decref(w->items);
	free(w);
}

/* Queues a qwork for cmd ("quarantine_list", "quarantine_restore", else a
 * delete) of item (NULL for a list); with control, for the control
 * request id, else for the server's task id. Returns NULL, or what is
 * wrong (nothing queued). */
static const char *quarantine_work(struct services *sv, bool control, uint64_t id,
				   const char *cmd, const char *item, bool overwrite, bool exclude)
{
	struct qwork *w;

	if (strcmp(cmd, "quarantine_list") != 0 && (!item || strlen(item) != QUARANTINE_ID_LEN))
		return "\"item\": expected a quarantine item id";
	w = calloc(1, sizeof(*w));
	if (!w)
		return "out of memory";
	w->sv = sv;
	w->control = control;
	w->ctl_id = id;
	w->task = (json_int_t)id;
	w->started = (int64_t)time(NULL);
	w->what = strcmp(cmd, "quarantine_list") == 0 ? QWORK_LIST :
		  strcmp(cmd, "quarantine_restore") == 0 ? QWORK_RESTORE : QWORK_DELETE;
	if (item)
		snprintf(w->item, sizeof(w->item), "%s", item);
	w->overwrite = overwrite;
	w->exclude = exclude;
	if (tasks_run(sv->tasks, qwork_run, qwork_done, w) != 0) {
		free(w);
		return "out of memory";
	}
	return NULL;
}

/* The quarantine commands: {"cmd": "quarantine_list"} -> {"items"},
 * {"cmd": "quarantine_restore", "item", "overwrite"} and
 * {"cmd": "quarantine_delete", "item"} -> {"ok": true} or {"error"}. */
static void quarantine_command(struct services *sv, uint64_t id, const char *cmd,
			       const json_t *req)
{
	const char *error = quarantine_work(sv, true, id, cmd, json_string_value(
						    json_object_get(req, "item")), json_is_true(
						    json_object_get(req, "overwrite")), false);

	if (error)
		control_answer(sv->control, id, json_pack("{ss}", "error", error));
}

static void on_command(struct control *ctl, uint64_t id, const char *cmd, const json_t *req,
		       void *arg)
{
	struct services *sv = arg;

	if (strcmp(cmd, "status") == 0)
		control_answer(ctl, id, live_status(sv));
	else if (strcmp(cmd, "scan") == 0)
		ask_scan(sv, id, req);
	else if (strcmp(cmd, "update") == 0)
		channel_ask(sv->channel, CHANNEL_UPDATE, id);
	else if (strcmp(cmd, "quarantine_list") == 0 || strcmp(cmd, "quarantine_restore") == 0 ||
		 strcmp(cmd, "quarantine_delete") == 0)
		quarantine_command(sv, id, cmd, req);
	else
		control_answer(ctl, id, json_pack("{ss}", "error", "unknown command (status, "
						     "scan, update, quarantine_list, "
						     "quarantine_restore, quarantine_delete)"));
}

/* A task report from the scans, for the channel to send. */
static void report_task(json_t *report, void *arg)
{
	channel_report_task(((struct services *)arg)->channel, report);
}

/* The last scan changed: the status goes to the server with the next poll,
 * which starts now. */
static void status_changed(void *arg)
{
	channel_wake(((struct services *)arg)->channel);
}

/* The end of a task run on the loop's thread. */
static void task_done(struct services *sv, json_int_t id, int64_t started, const char *error)
{
	json_t *r = json_pack("{sI ss sI sI}", "id", id, "state", error ? "failed" : "completed",
			      "started", (json_int_t)started, "finished", (json_int_t)time(NULL));

	if (r && error)
		json_object_set_new(r, "error", json_string(error));
	channel_report_task(sv->channel, r);
}

/* A task the server delivered (the channel checked it). */
static void on_task(json_t *task, void *arg)
{
	struct services *sv = arg;
	const char *kind = json_string_value(json_object_get(task, "kind"));
	json_int_t id = json_integer_value(json_object_get(task, "id")), target;
	const json_t *list = json_object_get(task, "paths");
	const char *item = json_string_value(json_object_get(task, "item")), *error;
	int64_t started = (int64_t)time(NULL);
	const char **paths = NULL;
	char msg[512];
	size_t i, n = json_array_size(list);

	if (strcmp(kind, "scan") == 0) {
		paths = list ? calloc(n, sizeof(*paths)) : NULL;
		for (i = 0; paths && i < n; i++)
			paths[i] = json_string_value(json_array_get(list, i));
		if (list && !paths)
			task_done(sv, id, started, "out of memory");
		else if (tasks_start(sv->tasks, id, paths, n, json_string_value(json_object_get(
					     task, "cpu")), msg, sizeof(msg)) != 0)
			task_done(sv, id, started, msg);
		free(paths);
	} else if (strcmp(kind, "cancel") == 0) {
		target = json_integer_value(json_object_get(task, "task"));
		/* No scan of it runs (it ended, or the agent restarted): it
		 * is cancelled as far as this agent goes. */
		if (!tasks_cancel(sv->tasks, target, id)) {
			task_done(sv, id, started, NULL);
			channel_report_task(sv->channel, json_pack("{sI ss sI sI}", "id", target,
								   "state", "cancelled", "started",
								   (json_int_t)started, "finished",
								   (json_int_t)time(NULL)));
		}
	} else {
		error = quarantine_work(sv, false, (uint64_t)id, kind, item, json_is_true(
						json_object_get(task, "overwrite")), json_is_true(
						json_object_get(task, "exclude")));
		if (error)
			task_done(sv, id, started, error);
	}
	json_decref(task);
}

/* The settings in effect changed (or the agent started). */
static void on_settings(json_t *settings, void *arg)
{
	struct services *sv = arg;

	vault_configure(sv->vault, settings);
	tasks_configure(sv->tasks, settings);
	protect_apply(sv->protect, settings);
	json_decref(settings);
}

/* The agent: the loop on this thread until SIGTERM or SIGINT, then every
 * service stopped in turn (the control socket first, so nothing new
 * comes; the channel and the scans are woken and joined). */
static int cmd_run(struct agent *a)
{
	struct services sv = { .a = a };
	struct loop *loop;
	char msg[512];
	bool off;
	int ret = 1;

	if (!astate_load(a))
		return 1;
	dpkgup_resume(a);
	/* Before any thread: the loop blocks the signals it reads. */
	loop = loop_new(msg, sizeof(msg));
	if (!loop) {
		log_msg(LOG_LVL_ERROR, "%s", msg);
		return 1;
	}
	/* No thread waits on the log's reader: journald may itself be waiting
	 * for a real-time verdict (fapolicyd's deadlock). */
	if (log_queue_start((size_t)a->cfg.log_queue) != 0)
		log_msg(LOG_LVL_WARN, "the log's writer thread: %s; lines are written directly",
			strerror(errno));
	sv.tasks = tasks_new(a, loop, (unsigned)a->cfg.max_scans);
	sv.channel = channel_new(a, loop, on_channel_answer, &sv);
	sv.vault = vault_open(a);
	if (!sv.tasks || !sv.channel || !sv.vault) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		goto out;
	}
	tasks_attach(sv.tasks, sv.vault, report_task, status_changed, &sv);
	channel_attach(sv.channel, sv.vault, on_task, on_settings, &sv);
	/* Real-time protection starts with the settings the channel posts at
	 * its start. */
	sv.protect = protect_new(a, loop, sv.channel);
	if (!sv.protect)
		goto out;
	protect_attach(sv.protect, sv.vault);
	a->protect = sv.protect;
	sv.control = control_new(loop, a->control_path, (unsigned)a->cfg.control_connections,
				 on_command, &sv, msg, sizeof(msg));
	if (!sv.control) {
		log_msg(LOG_LVL_ERROR, "control socket: %s", msg);
		goto out;
	}
	sv.clamd = clamd_new(a, loop, sv.channel, sv.vault, &off, msg, sizeof(msg));
	if (!sv.clamd && !off) {
		log_msg(LOG_LVL_ERROR, "clamd: %s", msg);
		goto out;
	}
	a->clamd = sv.clamd;
	log_msg(LOG_LVL_INFO, "ward-agent %s: %s, settings version %lld", WARD_VERSION, a->server,
		(long long)a->version);
	if (!channel_start(sv.channel))
		goto out;
	ret = loop_run(loop) == 0 ? 0 : 1;
	log_msg(LOG_LVL_INFO, "stopping");
out:
	control_free(sv.control);
	sv.control = NULL;
	if (sv.channel)
		channel_stop(sv.channel);
	a->clamd = NULL; /* the channel's heartbeats are over */
	if (sv.tasks)
		tasks_stop(sv.tasks);
	protect_stop(sv.protect);
	clamd_stop(sv.clamd);
	loop_free(loop);
	clamd_free(sv.clamd);
	while (sv.waiting) {
		struct waiting *w = sv.waiting;

		sv.waiting = w->next;
		json_decref(w->req);
		free(w);
	}
	tasks_free(sv.tasks);
	a->protect = NULL;
	protect_free(sv.protect);
	channel_free(sv.channel);
	vault_close(sv.vault);
	log_queue_stop(2000);
	/* A new version in place: the supervisor starts it. */
	return ret == 0 && atomic_load(&a->restart) ? UPGRADE_EXIT_RESTART : ret;
}

/* Connects to the running agent's control socket and sends req (a
 * reference taken). Returns the connection (*why = -1), or -1 with why
 * set: 0 when no agent runs, else an errno. */
static int connect_agent(const struct agent *a, json_t *req, int *why)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *text = json_dumps(req, JSON_COMPACT);
	size_t len, off = 0;
	ssize_t w;
	int fd = -1;

	json_decref(req);
	*why = ENOMEM;
	if (!text || strlen(a->control_path) >= sizeof(sun.sun_path))
		goto fail;
	memcpy(sun.sun_path, a->control_path, strlen(a->control_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)&sun, sizeof(sun)) != 0) {
		*why = errno == ENOENT || errno == ECONNREFUSED ? 0 : errno;
		goto fail;
	}
	len = strlen(text);
	text[len++] = '\n';
	while (off < len) {
		w = send(fd, text + off, len - off, MSG_NOSIGNAL);
		if (w <= 0) {
			*why = errno;
			goto fail;
		}
		off += (size_t)w;
	}
	free(text);
	*why = -1;
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	free(text);
	return -1;
}

/* Logs why the agent could not be reached (connect_agent()'s why). */
static void not_reached(const char *what, int why)
{
	if (why == 0)
		log_msg(LOG_LVL_ERROR, "%s: the agent is not running; " HOW_TO_START, what);
	else if (why == EACCES || why == EPERM)
		log_msg(LOG_LVL_ERROR, "%s: the agent's control socket: %s (only root and the "
			"agent's user may use it)", what, strerror(why));
	else
		log_msg(LOG_LVL_ERROR, "%s: the agent's control socket: %s", what, strerror(why));
}

/* Reads answer lines from fd, one at a time: returns the next (a new
 * reference), or NULL at the end or on an unreadable line (*bad set). */
static json_t *next_line(FILE *f, bool *bad)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	json_t *v = NULL;

	if (n > 0) {
		v = json_loadb(line, (size_t)n, 0, NULL);
		*bad = !json_is_object(v);
	}
	free(line);
	if (*bad) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* Asks the running agent for one answer to req (a reference taken); NULL
 * when none came (logged, as what). *why as connect_agent(). */
static json_t *ask(const struct agent *a, const char *what, json_t *req, int *why)
{
	int fd = connect_agent(a, req, why);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	bool bad = false;
	json_t *answer;

	if (!f) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	answer = next_line(f, &bad);
	fclose(f);
	if (!answer)
		log_msg(LOG_LVL_ERROR, "%s: the agent %s", what, bad ? "answered something "
			"unreadable" : "closed the connection without an answer");
	return answer;
}

/* The running agent's real-time scanning, one line: its state, and the
 * counters as JSON (for scripts and the curious). */
static void print_realtime(const json_t *rt)
{
	const char *state = json_string_value(json_object_get(rt, "state"));
	const json_t *counters = json_object_get(rt, "counters");
	char *text = counters ? json_dumps(counters, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	if (!state)
		return;
	printf("realtime: %s", state);
	if (strcmp(state, "off") != 0)
		printf(" (%s mode)", json_string_value(json_object_get(rt, "mode")));
	if (json_object_get(rt, "reason"))
		printf(": %s", json_string_value(json_object_get(rt, "reason")));
	if (json_integer_value(json_object_get(rt, "unscanned_recent")) > 0)
		printf("; failing: %lld accesses let through unscanned in the last 5 to 10 "
		       "minutes", (long long)json_integer_value(json_object_get(rt,
							      "unscanned_recent")));
	printf("\n");
	if (text)
		printf("realtime counters: %s\n", text);
	free(text);
}

/* The last scan of the server or the schedule (with its progress while it
 * runs), as the status reports it. */
static void print_last_scan(const json_t *last)
{
	static const char *const members[] = { "started", "finished" };
	const json_t *task = json_object_get(last, "task");
	const char *source, *state;
	char when[64];
	struct tm tm;
	time_t t;
	size_t i;

	if (!json_is_object(last)) {
		printf("last scan: (none)\n");
		return;
	}
	source = json_string_value(json_object_get(last, "source"));
	state = json_string_value(json_object_get(last, "state"));
	/* The file is the agent's own, but a damaged one prints as unknown. */
	printf("last scan: %s", source ? source : "(unknown)");
	if (json_is_integer(task))
		printf(" (task %lld)", (long long)json_integer_value(task));
	printf(", %s", state ? state : "(unknown)");
	for (i = 0; i < 2; i++) {
		t = (time_t)json_integer_value(json_object_get(last, members[i]));
		if (t && gmtime_r(&t, &tm) && strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC",
							 &tm))
			printf(", %s %s", members[i], when);
	}
	printf(": %lld files, %lld bytes, %lld detections\n",
	       (long long)json_integer_value(json_object_get(last, "files")),
	       (long long)json_integer_value(json_object_get(last, "bytes")),
	       (long long)json_integer_value(json_object_get(last, "detections")));
}

/* The stored state, and what the running agent says of itself (or that
 * none runs). */
static int cmd_status(struct agent *a)
{
	char *text, key[2 * PKG_PK_BYTES + 1];
	const json_t *in_use;
	json_t *comps, *live, *last;
	int why;

	if (!astate_load(a))
		return 1;
	sodium_bin2hex(key, sizeof(key), a->up.key, sizeof(a->up.key));
	printf("server: %s\nagent: %s\npackage key: %s\nsettings version: %lld\n", a->server,
	       a->uuid, key, (long long)a->version);
	text = a->settings ? json_dumps(a->settings, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	printf("settings: %s\n", text ? text : "(none yet)");
	free(text);
	comps = astate_installed(a);
	text = comps ? json_dumps(comps, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	printf("components: %s\n", text ? text : "(none)");
	free(text);
	json_decref(comps);
	last = reports_last_scan(a);
	print_last_scan(last);
	json_decref(last);
	live = ask(a, "status", json_pack("{ss}", "cmd", "status"), &why);
	if (!live) {
		if (why == 0)
			printf("running: no; " HOW_TO_START "\n");
		else
			printf("running: unknown (%s)\n", why > 0 ? strerror(why) : "no answer");
		return 0;
	}
	in_use = json_object_get(live, "in_use");
	printf("running: yes (pid %lld)\nin use: ",
	       (long long)json_integer_value(json_object_get(live, "pid")));
	if (in_use)
		printf("%s version %lld\n",
		       json_string_value(json_object_get(in_use, "component")),
		       (long long)json_integer_value(json_object_get(in_use, "version")));
	else
		printf("(none yet)\n");
	printf("scans running: %lld\nunverified files: %lld\n",
	       (long long)json_integer_value(json_object_get(live, "scans")),
	       (long long)json_integer_value(json_object_get(live, "unverified")));
	print_realtime(json_object_get(live, "realtime"));
	if (json_object_get(live, "clamd")) {
		json_t *cl = json_object_get(live, "clamd");
		const char *state = json_string_value(json_object_get(cl, "state"));
		char *counters = json_dumps(cl, JSON_COMPACT | JSON_SORT_KEYS);

		printf("clamd: %s; counters: %s\n", state && strcmp(state, "on") == 0 ?
		       "serving" : "stopped by SHUTDOWN", counters ? counters : "?");
		free(counters);
	}
	json_decref(live);
	return 0;
}

/* Update Now through the running agent: allowed unless the administrator
 * switched it off (update.allow_update_now), which the agent checks. */
static int cmd_update(struct agent *a)
{
	json_t *answer;
	const char *err;
	int why, ret = 1;

	answer = ask(a, "update", json_pack("{ss}", "cmd", "update"), &why);
	if (!answer) {
		if (why >= 0)
			not_reached("update", why);
		return 1;
	}
	err = json_string_value(json_object_get(answer, "error"));
	if (err) {
		log_msg(LOG_LVL_ERROR, "update: %s", err);
	} else {
		printf("%s version %lld\n", json_string_value(json_object_get(answer, "component")),
		       (long long)json_integer_value(json_object_get(answer, "version")));
		ret = 0;
	}
	json_decref(answer);
	return ret;
}

/* ward-agent quarantine list | restore ID [--overwrite] | delete ID,
 * through the running agent. */
static int cmd_quarantine(struct agent *a, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	json_t *req = NULL, *answer, *items, *r;
	const char *err;
	size_t i;
	int why;

	if (strcmp(sub, "list") == 0 && argc == 2)
		req = json_pack("{ss}", "cmd", "quarantine_list");
	else if (strcmp(sub, "restore") == 0 && (argc == 3 || (argc == 4 &&
		 strcmp(argv[3], "--overwrite") == 0)))
		req = json_pack("{ss ss sb}", "cmd", "quarantine_restore", "item", argv[2],
				"overwrite", argc == 4);
	else if (strcmp(sub, "delete") == 0 && argc == 3)
		req = json_pack("{ss ss}", "cmd", "quarantine_delete", "item", argv[2]);
	if (!req) {
		usage(stderr);
		return 2;
	}
	answer = ask(a, "quarantine", req, &why);
	if (!answer) {
		if (why >= 0)
			not_reached("quarantine", why);
		return 1;
	}
	err = json_string_value(json_object_get(answer, "error"));
	if (err) {
		log_msg(LOG_LVL_ERROR, "quarantine: %s", err);
		json_decref(answer);
		return 1;
	}
	items = json_object_get(answer, "items");
	json_array_foreach(items, i, r) {
		char path[1024];

		const char *id = json_string_value(json_object_get(r, "id"));
		const char *name = json_string_value(json_array_get(json_object_get(r, "names"),
								    0));
		const char *source = json_string_value(json_object_get(r, "source"));
		const char *p = json_string_value(json_object_get(r, "path"));

		util_escape(path, sizeof(path), p ? p : "");
		printf("%s  %s  %lld bytes  %s  %s\n", id ? id : "?", path,
		       (long long)json_integer_value(json_object_get(r, "size")),
		       name ? name : "?", source ? source : "?");
	}
	json_decref(answer);
	return 0;
}

/* The paths to scan, absolute (relative ones are taken from the current
 * directory), as the JSON array of a request; NULL with a message when
 * one cannot be sent (not UTF-8, out of memory). */
static json_t *absolute_paths(int n, char **args)
{
	json_t *list = json_array(), *v;
	char cwd[PATH_MAX], *joined;
	int i;

	if (!list || !getcwd(cwd, sizeof(cwd))) {
		log_msg(LOG_LVL_ERROR, "scan: the current directory: %s", strerror(errno));
		json_decref(list);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		joined = args[i][0] == '/' ? NULL : util_path_join(cwd, args[i]);
		v = json_string(joined ? joined : args[i]);
		free(joined);
		if (!v || json_array_append_new(list, v) != 0) {
			log_msg(LOG_LVL_ERROR, "scan: %s: the name is not UTF-8; scan the "
				"directory that holds it", args[i]);
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

/* An on-demand scan by the running agent, with the component it uses:
 * a line per file as it goes, then the summary; exit 1 when something
 * was found, 2 on errors or unverified files (or no scan), else 0. */
static int cmd_scan(struct agent *a, int argc, char **argv)
{
	json_t *paths, *line, *done = NULL;
	const char *file, *verdict, *err;
	FILE *f = NULL;
	bool bad = false, said = false;
	int why, fd;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	paths = absolute_paths(argc - 1, argv + 1);
	if (!paths)
		return 2;
	fd = connect_agent(a, json_pack("{ss so}", "cmd", "scan", "paths", paths), &why);
	if (fd < 0) {
		not_reached("scan", why);
		return 2;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		log_msg(LOG_LVL_ERROR, "scan: out of memory");
		return 2;
	}
	while (!done && (line = next_line(f, &bad)) != NULL) {
		file = json_string_value(json_object_get(line, "file"));
		verdict = json_string_value(json_object_get(line, "verdict"));
		err = json_string_value(json_object_get(line, "error"));
		if (json_is_true(json_object_get(line, "done"))) {
			done = json_incref(line);
		} else if (!file && err) {
			log_msg(LOG_LVL_ERROR, "scan: %s", err);
			said = true;
		} else if (file && verdict && strcmp(verdict, "FOUND") == 0) {
			printf("%s: %s FOUND\n", file,
			       json_string_value(json_object_get(line, "name")));
		} else if (file && verdict && strcmp(verdict, "error") == 0) {
			log_msg(LOG_LVL_ERROR, "scan: %s: %s", file, err ? err : "error");
		} else if (file && verdict) {
			printf("%s: %s\n", file, verdict);
		}
		fflush(stdout);
		json_decref(line);
	}
	fclose(f);
	if (!done) {
		if (bad)
			log_msg(LOG_LVL_ERROR, "scan: the agent answered something unreadable");
		else if (!said)
			log_msg(LOG_LVL_ERROR, "scan: the agent ended the scan unfinished (it "
				"stopped, or could not run it: see its log)");
		return 2;
	}
#define TOTAL(k) ((unsigned long long)json_integer_value(json_object_get(done, k)))
	printf("\n----------- SCAN SUMMARY -----------\nScan method: %s\nScanned files: %llu\n"
	       "Infected files: %llu\n", json_string_value(json_object_get(done, "method")),
	       TOTAL("files"), TOTAL("infected"));
	if (TOTAL("unverified"))
		printf("Unverified files: %llu (rescanned when a smart protection source "
		       "answers)\n", TOTAL("unverified"));
	if (TOTAL("errors"))
		printf("Total errors: %llu\n", TOTAL("errors"));
	why = TOTAL("infected") ? 1 : (TOTAL("errors") || TOTAL("unverified")) ? 2 : 0;
#undef TOTAL
	json_decref(done);
	return why;
}

int main(int argc, char **argv)
{
	struct agent a = { .heartbeat_interval = 60, .long_poll = 55 };
	int i, j, ret;

	if (argc > 1 && strcmp(argv[1], "worker") == 0)
		return worker_main(argc - 1, argv + 1);
	i = ini_command_line(argc, argv, "ward-agent", usage, fields, NFIELDS, &a.cfg, &ret);
	if (!i)
		return ret;
	if (!state_process_init())
		return 1;
	a.comps = components_new();
	if (!a.comps || !astate_init(&a)) {
		log_msg(LOG_LVL_ERROR, "out of memory");
		ret = 1;
		goto out;
	}
	if (strcmp(a.cfg.networks, "auto") != 0 && strcmp(a.cfg.networks, "ipv4") != 0 &&
	    strcmp(a.cfg.networks, "ipv6") != 0 && strcmp(a.cfg.networks, "dual") != 0) {
		log_msg(LOG_LVL_ERROR, "config: agent.networks: expected auto, ipv4, ipv6 or dual, "
			"not '%s'", a.cfg.networks);
		ret = 2;
		goto out;
	}
	a.up.max_wait = 3600;
	for (j = 1; j + 1 < i; j++)
		if (strcmp(argv[j], "--config") == 0)
			a.conf_path = argv[j + 1];
	if (strcmp(argv[i], "enroll") == 0)
		ret = cmd_enroll(&a, argc - i, argv + i);
	else if (strcmp(argv[i], "run") == 0 && i + 1 == argc)
		ret = cmd_run(&a);
	else if (strcmp(argv[i], "status") == 0 && i + 1 == argc)
		ret = cmd_status(&a);
	else if (strcmp(argv[i], "update") == 0 && i + 1 == argc)
		ret = cmd_update(&a);
	else if (strcmp(argv[i], "scan") == 0)
		ret = cmd_scan(&a, argc - i, argv + i);
	else if (strcmp(argv[i], "quarantine") == 0)
		ret = cmd_quarantine(&a, argc - i, argv + i);
	else if (strcmp(argv[i], "supervise") == 0 && i + 1 == argc)
		ret = upgrade_supervise(&a, i - 1, argv + 1);
	else if (strcmp(argv[i], "upgrade-dpkg") == 0 && i + 1 == argc)
		ret = dpkgup_helper(&a);
	else if (strcmp(argv[i], "upgrade-dpkg-resume") == 0 && i + 1 == argc)
		ret = (dpkgup_resume(&a), 0);
	else {
		usage(stderr);
		ret = 2;
	}
out:
	rest_free(a.up.rc);
	components_free(a.comps);
	astate_free(&a);
	ini_free(fields, NFIELDS, &a.cfg);
	return ret;
}
