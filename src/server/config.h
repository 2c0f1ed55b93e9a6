/* config.h -- wardd's configuration: an INI file over built-in defaults.
 *
 * Every option is one row of the table in config.c, which docs/configuration.md
 * documents; `wardd --config FILE` applies a file, without one the defaults
 * serve. */
#ifndef WARD_SERVER_CONFIG_H
#define WARD_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* At most this many URLs in server.frontends. */
#define CONFIG_MAX_FRONTENDS 16

/* At most this many license issuers' keys in license.issuers. */
#define CONFIG_MAX_ISSUERS 16

struct config {
	/* [server] */
	char *listen;            /* "ADDR:PORT, ..."; "*:PORT" = every IPv4 and IPv6 address */
	char *hostname;          /* the name agents use; empty = this host's FQDN */
	char *data_dir;
	char *database;          /* empty: SQLite in data_dir; else a PostgreSQL URI */
	int64_t frontend;        /* this wardd's number among several on one database */
	char *frontends;         /* "URL, URL": what agents fail over between; "": its own */
	char *console_dir;       /* empty: beside the program */
	int64_t session_lifetime;    /* seconds */
	int64_t session_idle;        /* seconds a console session may go unused */
	int64_t signin_workers;      /* threads verifying and hashing passwords */
	int64_t signin_queue;        /* password jobs waiting or running, at most */
	int64_t signin_brake_failures; /* wrong passwords (all addresses) engaging the brake */
	int64_t signin_brake_window; /* seconds they are counted over */
	int64_t signin_brake_pace;   /* seconds between verifications while braked */
	int64_t password_min_length; /* bytes */
	/* [agents] */
	int64_t heartbeat_interval;  /* seconds */
	int64_t offline_after;
	int64_t inactive_after;
	int64_t remove_after;
	int64_t removed_keep;        /* seconds a removed client can be restored */
	char *default_domain;
	int64_t verify_interval;
	/* [enroll] */
	int64_t bootstrap_lifetime;  /* seconds wardd's own enrollment token is valid */
	int64_t enroll_per_token;    /* enrollments a minute per token; 0: no limit */
	int64_t enroll_per_address;  /* enrollments a minute per address; 0: no limit */
	/* [notify] */
	int64_t notify_batch;
	int64_t ack_timeout;
	int64_t retry_interval;
	int64_t retries;
	/* [updates] */
	char *source_dir;            /* ClamAV databases and custom signature files */
	int64_t watch_interval;      /* seconds between looks for a changed source */
	int64_t check_interval;      /* seconds between full imports of the source */
	int64_t keep_deltas;         /* versions back that deltas reach */
	int64_t max_downloads;       /* simultaneous package downloads */
	int64_t retry_after;         /* seconds a refused download is told to wait */
	int64_t max_downloads_per_client; /* simultaneous downloads of one agent */
	int64_t download_idle;       /* seconds a download may go unread */
	/* [sps] */
	bool sps_enabled;            /* the integrated smart protection server */
	int64_t sps_ttl;             /* seconds agents may keep its answers */
	int64_t sps_max_answer_entries;  /* entries of one answer */
	int64_t sps_max_answer_bytes;    /* bytes of one answer */
	int64_t sps_max_held_answers;    /* bytes of answers not yet read */
	/* [logs] */
	int64_t logs_keep;           /* seconds */
	int64_t detections_per_hour; /* one agent's detections an hour */
	int64_t detections_per_day;  /* and a day */

	int64_t tasks_expire;        /* seconds an unfinished task waits for its agent */
	int64_t tasks_max_per_client; /* unfinished tasks of one client */

	int64_t quarantine_max_items; /* inventory records kept per client */
	int64_t quarantine_max_report; /* records of one inventory report */
	int64_t quarantine_central_max_file; /* bytes of one central copy */
	int64_t quarantine_central_max_total; /* bytes of every central copy */
	int64_t quarantine_max_uploads; /* central copies being received at once */
	/* [backup] */
	char *backup_dir;            /* where archives are written by default */
	char *backup_passphrase_file; /* the passphrase archives are encrypted with */
	char *backup_schedule;       /* when wardd backs itself up; empty: never */
	int64_t backup_keep;         /* archives kept in backup_dir */
	/* [deploy] */
	char *deploy_package_dir;    /* the agent's packages served to deployments */
	int64_t deploy_timeout;      /* seconds from the script to the enrollment */
	int64_t deploy_max_in_progress; /* deployments in progress at once */
	int64_t deploy_keep;         /* seconds ended deployments are listed */
	/* [alerts] */
	int64_t alerts_check_interval; /* seconds between looks at the conditions */
	/* [metrics] */
	char *metrics_token_file;    /* a scraper's bearer token for GET /metrics */
	/* [license] */
	char *license_issuers;       /* issuers' public keys, hex, as written */
	size_t nissuers;             /* ... decoded by config_load() into issuers */
	unsigned char issuers[CONFIG_MAX_ISSUERS][32];
	/* [http] */
	int64_t max_connections;
	int64_t admin_reserve;       /* connections beyond max_connections for administrators */
	int64_t max_per_address;     /* connections per IPv4 address or IPv6 /64 */
	int64_t header_timeout;      /* seconds to a request's complete headers */
	int64_t body_timeout;        /* seconds from the headers to the complete body */
	int64_t max_request;         /* bytes of a request body */
	int64_t long_poll;           /* seconds an event channel is held open */
};

/* Fills cfg with the defaults, then applies the file at path (NULL: none).
 * Returns false with "PATH:LINE: message" in errbuf. Free with
 * config_free() in either case. */
bool config_load(struct config *cfg, const char *path, char *errbuf, size_t errlen);

/* Writes every option with its default and help as an INI file to f:
 * a starting point for a configuration file, and the reference in
 * docs/configuration.md (a test keeps the two equal). */
void config_print_defaults(FILE *f);

/* Frees what config_load() allocated. */
void config_free(struct config *cfg);

#endif
