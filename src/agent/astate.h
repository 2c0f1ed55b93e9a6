/* astate.h -- the running agent's state: its configuration, the paths in
 * its state directory, the credential and the settings in effect.
 *
 * Threads: the paths and the configuration are fixed once astate_init()
 * returned; the credential, the settings in effect, the updater and the
 * update plan belong to the thread that talks to the server (the
 * channel's while the agent runs, channel.h); comps is thread-safe
 * (components.h), unverified atomic.
 *
 * Every file is replaced atomically, so the agent may be killed at any
 * moment.
 */
#ifndef WARD_AGENT_ASTATE_H
#define WARD_AGENT_ASTATE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/updater.h"

struct agent_config {
	char *state_dir;
	char *networks;
	int64_t control_connections;
	int64_t max_scans;
	int64_t log_queue;      /* agent.log_queue: bytes of log lines waiting to be written */
	/* The scan workers (components.h, scanner.h). */
	char *worker_user;      /* scan.worker_user; empty: uid 0 without capabilities */
	int64_t worker_threads; /* scan.worker_threads; 0: one per CPU, at most 8 */
	int64_t scan_timeout;   /* scan.timeout, seconds per file */
	char *scratch_dir;      /* scan.scratch_dir */
	/* The real-time scanner's limits (realtime.h's struct realtime_config). */
	int64_t rt_cache_entries; /* realtime.cache_entries */
	int64_t rt_max_pending;   /* realtime.max_pending */
	int64_t rt_log_queue;     /* realtime.log_queue */
	/* The clamd service (clamd.h). */
	bool clamd_enabled;
	char *clamd_socket, *clamd_socket_mode, *clamd_socket_group;
	bool clamd_debian_socket;
	char *clamd_tcp;
	bool clamd_tcp_remote;
	int64_t clamd_max_connections, clamd_max_threads, clamd_max_queue;
	int64_t clamd_stream_max;
	int64_t clamd_command_timeout, clamd_read_timeout;
	bool clamd_shutdown, clamd_reload, clamd_allmatch;
	char *clamd_unverified;
	bool clamd_cache;
	int64_t clamd_max_scans, clamd_stream_memory;
	bool clamd_actions;
	int64_t clamd_max_per_client;
	bool clamd_stream_command;
	int64_t clamd_stream_min_port, clamd_stream_max_port;
	/* Upgrades (upgrade.h). */
	char *boot_id_file;     /* upgrade.boot_id_file: a new id, a new boot */
	char *utmp_file;        /* upgrade.utmp_file: who is logged in */
};

struct agent {
	struct agent_config cfg;
	const char *conf_path;         /* the configuration file given (--config), or NULL */
	char *cred_path, *ca_path, *settings_path, *comp_dir;
	char *unverified_path;         /* the files smart scan left unverified */
	char *detections_path;         /* detections not yet reported to the server */
	char *control_path;            /* the control socket */
	/* The server conversation (the channel's thread while running). */
	char *server, *uuid, *token;   /* token = "UUID:SECRET" */
	json_t *servers;               /* the URLs of its server's frontends; server among them */
	int64_t version;
	json_t *settings;
	int64_t heartbeat_interval;
	long long_poll;
	struct updater up;
	char update_error[1024];       /* the last update's failure; empty: none */
	time_t next_update;            /* the next scheduled update; 0: none */
	json_t *sps_sources;           /* the source list smart scan was set up with */
	uint64_t last_sources;         /* when that list was last fetched (monotonic s) */
	uint64_t last_rescan;          /* when unverified files were last tried */
	/* Shared with the other threads. */
	struct components *comps;      /* the component in use */
	atomic_size_t unverified;      /* how many files are on the unverified list */
	struct protect *protect;       /* real-time protection (protect.h); set
					* before the channel starts */
	struct clamd *clamd;           /* the clamd service (clamd.h), NULL when
					* off; set before the channel starts */
	atomic_bool restart;           /* a new version is in place: exit to start it */
};

/* Sets a's paths from a->cfg.state_dir and its defaults. Returns false
 * when out of memory. */
bool astate_init(struct agent *a);

/* Frees what a holds (not a itself, nor a->comps). */
void astate_free(struct agent *a);

/* The path of name in the state directory (the caller frees it; NULL when
 * out of memory). */
char *astate_file(const struct agent *a, const char *name);

/* The URLs of a server's frontends an agent keeps: at most this many. */
#define ASTATE_MAX_SERVERS 16

/* The list of URLs an agent of server keeps from urls (a server's
 * "frontends"): urls when it is an array of at most ASTATE_MAX_SERVERS
 * valid URLs, server put first when it is not among them; else [server].
 * New (the caller owns it); NULL when out of memory. */
json_t *astate_servers(const json_t *urls, const char *server);

/* Loads the credential and the settings in effect (logged on failure). */
bool astate_load(struct agent *a);

/* Logs each setting that changes, then makes settings (version) the ones
 * in effect, on disk first. */
bool astate_apply(struct agent *a, int64_t version, json_t *settings);

/* A setting in effect: from settings (NULL: a's in effect), else its
 * default. The caller releases the reference. */
json_t *astate_setting(const struct agent *a, const json_t *settings, const char *key);

/* {name: version} of the installed components. */
json_t *astate_installed(const struct agent *a);

/* The address family smart protection sources must be reached by:
 * agent.networks, or with "auto" the families of the host's addresses;
 * AF_UNSPEC for both. */
int astate_network_family(const struct agent *a);

/* "ipv4", "ipv6" or "dual" for an address family of
 * astate_network_family(). */
const char *astate_network_name(int af);

/* MAC addresses a status names at most. */
#define ASTATE_MAX_MACS 16

/* The host's addresses other hosts reach it by, as {"ipv4": [...],
 * "ipv6": [...], "macs": [...]} members added to status (macs: its
 * interfaces' hardware addresses, aa:bb:cc:dd:ee:ff, loopback's not). */
void astate_add_addresses(json_t *status);

#endif
