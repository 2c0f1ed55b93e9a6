/* loadgen.c -- simulates many ward agents against one wardd, over real
 * HTTPS connections: each agent enrolls, then keeps its event channel open
 * exactly as ward-agent does -- one connection, a long poll carrying its
 * status whenever the heartbeat interval has passed, acknowledging every
 * delivery.
 *
 * One thread, libcurl's multi interface on epoll, the agents split into
 * groups of GROUP_AGENTS with a multi handle each: libcurl walks every
 * connection of a multi handle's cache now and then, so one for the whole
 * fleet would make the generator, not the server, what a large run
 * measures. Every delivery received
 * is written to the --events file as "CLIENT VERSION UNIX_NS", so a driver
 * can measure delivery times against the moment it changed a setting; each
 * acknowledgement wardd answered to the --acks file as "CLIENT VERSION".
 * "READY N" goes to standard output once every agent has its channel open;
 * a JSON summary when it stops (SIGINT, SIGTERM or --duration).
 *
 * Agents fail over as ward-agent does: the enrollment answer lists the
 * server's frontends, and an agent whose frontend does not answer (or
 * answers 502, 503, 504) turns to the next; "STATS" lines and the summary
 * count the turns ("failovers"). Agents that turned make their new
 * connections --setups at a time (256), as hosts of their own would
 * rather than in one process's lockstep, the next starting as soon as one
 * is made.
 *
 * With --update COMPONENT --have N, each agent instead updates that
 * component from version N as ward-agent does: it asks for the plan, then
 * downloads every step's payload, waiting out 503 answers for their
 * Retry-After plus random jitter; the run ends when every agent holds the
 * newest version, and the summary gives the time the last one took.
 *
 * With --upgrade-from VERSION --platform OS/ARCH, each agent reports
 * itself as ward-agent VERSION installed in versioned directories under
 * its supervisor, and takes the agent_upgrade tasks its polls bring as
 * ward-agent does (docs/protocol.md, "Agent upgrades"): it reports the
 * task running, downloads the offer's package (waiting out 503 answers as
 * above) and checks its size; then the new version reports its status
 * and the task completed, or with --broken it "crashes" and the old
 * version reports the task failed and keeps reporting the old version.
 * The summary counts the upgrades and the rollbacks; the run goes on
 * until it is stopped.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The frontends of a server an agent turns between, at most. */
#define MAX_FRONTENDS 16

/* Agents per multi handle. */
#define GROUP_AGENTS 256

enum lg_state { LG_ENROLL, LG_POLL, LG_ACK, LG_WAIT, LG_PLAN, LG_DOWNLOAD, LG_DONE,
		LG_TASK_RUN, LG_PACKAGE, LG_BEAT, LG_TASK_END };

struct lg_agent {
	int idx;
	char uuid[37];
	char auth[160];        /* "Authorization: Bearer UUID:SECRET" */
	int64_t client;
	int64_t version;
	int frontend;          /* its index in lg.frontends */
	int tried;             /* frontends turned to since the last answer */
	unsigned backoff;      /* s: the pause once each was tried (1 doubling to 60) */
	CURL *h;
	struct curl_slist *hdrs;
	struct curl_slist *connect_to; /* --spread: the loopback address it uses */
	char *in;              /* answer being received */
	size_t inlen;
	char *body;            /* request body */
	enum lg_state st;
	bool busy;             /* a transfer is running */
	bool ready;            /* had its first poll answered and polls again */
	uint64_t next_status;  /* ms: send status with the next poll after this */
	uint64_t retry_at;     /* ms: in LG_WAIT, start the next poll then */
	json_t *steps;         /* update mode: the plan's steps */
	size_t step;           /* the step being downloaded */
	bool discard;          /* count the answer's bytes, keep none */
	bool turned;           /* failed over: its next request makes a connection */
	bool setting_up;       /* counted in *setups until that connection is made */
	bool queued;           /* in lg.queue, due and waiting for a setup */
	int *setups;
	/* upgrade mode */
	char pkg_version[64];  /* the version it runs */
	int64_t tasks_seen;    /* the highest task id an answer brought */
	int64_t task;          /* the agent_upgrade task taken, 0: none */
	int64_t task_started;
	char offer_file[128], offer_version[64];
	long long offer_size;
	enum lg_state retry_st; /* the step of the task to do again after a wait */
};

struct lg;

/* A group of agents on one multi handle. */
struct lg_group {
	struct lg *lg;
	CURLM *multi;
	uint32_t idx;
	uint64_t timeout_at;   /* ms: run the handle's timers then, 0: none */
};

struct lg {
	struct lg_group *groups;
	int ngroups;
	int epfd;
	struct lg_agent *agents;
	int n;
	const char *server, *ca, *token;
	/* The server's frontends, from the first enrollment answer that lists
	 * them (until then the --server URL alone). */
	char *frontends[MAX_FRONTENDS];
	int nfrontends;
	long failovers;
	int64_t heartbeat_ms;
	long long_poll;
	int enrolling, enroll_max, next_enroll;
	/* Agents that failed over making their connection (TCP and TLS), at
	 * most setup_max at once: one process's thousands of handshakes would
	 * otherwise go on in step and none end before nearly all do, which
	 * no fleet of hosts, each with its own processor, does. */
	int setting_up, setup_max;
	/* Turned agents due to start, waiting for one of those setups: the
	 * next starts as soon as one ends, not at the next scan. */
	int *queue;
	int queue_head, queue_len;
	int spread;             /* loopback addresses the agents connect from, 0: as the URL says */
	int nready;
	FILE *events;
	FILE *acks;             /* "CLIENT VERSION" once acknowledged, or NULL */
	const char *component;  /* update mode, else NULL */
	long have;
	const char *upgrade_from; /* upgrade mode, else NULL */
	char os[64], arch[32];
	bool broken;
	long upgraded, rolled_back;
	/* counters */
	long deliveries, polls_empty, errors, enrolled, status_sent;
	/* failed requests by cause: timed out, not connected, cut off (any
	 * other transfer error), answered 503 */
	long timeouts, refusals, cuts, unavailable;
	long updated, refused, downloads;
	long long bytes;
	uint64_t last_done;
};

static volatile sig_atomic_t stopping;

/* A spread for timings and fake uuids (a PCG-style LCG step), not secrets. */
static uint64_t lg_seed = 1;

static uint64_t lg_random(void)
{
	lg_seed = lg_seed * 6364136223846793005ull + 1442695040888963407ull;
	return lg_seed >> 33;
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct lg_agent *a = arg;
	char *grown;

	if (a->discard) {
		a->inlen += size * n;
		return size * n;
	}
	grown = realloc(a->in, a->inlen + size * n + 1);
	if (!grown)
		return 0;
	a->in = grown;
	memcpy(a->in + a->inlen, p, size * n);
	a->inlen += size * n;
	a->in[a->inlen] = '\0';
	return size * n;
}

static int on_socket(CURL *h, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct lg_group *g = arg;
	struct lg *lg = g->lg;
	struct epoll_event ev = { .data.u64 = (uint64_t)g->idx << 32 | (uint32_t)fd };

	(void)h;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(lg->epfd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(lg->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
		epoll_ctl(lg->epfd, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *arg)
{
	struct lg_group *g = arg;

	(void)m;
	g->timeout_at = timeout_ms < 0 ? 0 : now_ms() + (uint64_t)timeout_ms;
	return 0;
}

/* Starts a request for agent a on its own handle (which keeps its
 * connection between requests). body is stolen. */
static void start(struct lg *lg, struct lg_agent *a, const char *path, char *body,
		  long timeout)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", lg->frontends[a->frontend], path);
	free(a->body);
	a->body = body;
	free(a->in);
	a->in = NULL;
	a->inlen = 0;
	a->discard = a->st == LG_DOWNLOAD || a->st == LG_PACKAGE;
	curl_easy_setopt(a->h, CURLOPT_URL, url);
	if (body)
		curl_easy_setopt(a->h, CURLOPT_POSTFIELDS, body);
	else
		curl_easy_setopt(a->h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(a->h, CURLOPT_TIMEOUT, timeout);
	if (a->turned) {
		a->turned = false;
		a->setting_up = true;
		lg->setting_up++;
	}
	a->busy = true;
	curl_multi_add_handle(lg->groups[a->idx / GROUP_AGENTS].multi, a->h);
}

/* Upgrade mode: the status of an agent installed in versioned directories
 * under its supervisor, running a->pkg_version: a new string. */
static char *upgrade_status(const struct lg *lg, const struct lg_agent *a)
{
	char *s = malloc(512);

	if (s)
		snprintf(s, 512, "{\"hostname\":\"loadgen-%d\",\"os\":\"loadgen\","
			 "\"agent_version\":\"%s\",\"platform\":{\"os\":\"%s\",\"arch\":\"%s\"},"
			 "\"install\":\"dir\",\"supervised\":true,\"package_version\":\"%s\","
			 "\"scan_method\":\"conventional\",\"components\":{\"virus-pattern\":1}}",
			 a->idx, a->pkg_version, lg->os, lg->arch, a->pkg_version);
	return s;
}

static void start_poll(struct lg *lg, struct lg_agent *a)
{
	char *body = malloc(1024), *status;
	uint64_t now = now_ms();

	if (!body)
		return;
	if (lg->upgrade_from) {
		/* The status with every poll: what the rollout goes by. */
		status = upgrade_status(lg, a);
		snprintf(body, 1024, "{\"version\":%lld,\"tasks_seen\":%lld,\"status\":%s}",
			 (long long)a->version, (long long)a->tasks_seen, status ? status : "{}");
		free(status);
		lg->status_sent++;
	} else if (now + (uint64_t)lg->heartbeat_ms / 10 >= a->next_status) {
		/* As ward-agent: status once 90% of the heartbeat interval passed. */
		/* What a real agent reports, as far as the console shows it: a
		 * scan method (every third agent smart), an address, components. */
		snprintf(body, 1024, "{\"version\":%lld,\"status\":{\"hostname\":\"loadgen-%d\","
			 "\"os\":\"loadgen\",\"agent_version\":\"loadgen\",\"settings_version\":"
			 "%lld,\"ipv4\":[\"10.%d.%d.%d\"],\"scan_method\":\"%s\",\"components\":"
			 "{\"%s\":1}}}", (long long)a->version, a->idx, (long long)a->version,
			 a->idx >> 16 & 255, a->idx >> 8 & 255, a->idx & 255,
			 a->idx % 3 ? "conventional" : "smart",
			 a->idx % 3 ? "virus-pattern" : "smart-agent-pattern");
		a->next_status = now + (uint64_t)lg->heartbeat_ms;
		lg->status_sent++;
	} else {
		snprintf(body, 1024, "{\"version\":%lld}", (long long)a->version);
	}
	a->st = LG_POLL;
	start(lg, a, "/api/v1/agent/events", body, lg->long_poll + 30);
}

static void set_auth(struct lg_agent *a, const char *token)
{
	snprintf(a->auth, sizeof(a->auth), "Authorization: Bearer %s", token);
	curl_slist_free_all(a->hdrs);
	a->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	a->hdrs = curl_slist_append(a->hdrs, a->auth);
	curl_easy_setopt(a->h, CURLOPT_HTTPHEADER, a->hdrs);
}

static void start_enroll(struct lg *lg, struct lg_agent *a)
{
	char *body = malloc(160);

	if (!body)
		return;
	snprintf(body, 160, "{\"uuid\":\"%s\",\"hostname\":\"loadgen-%d\"}", a->uuid, a->idx);
	set_auth(a, lg->token);
	a->st = LG_ENROLL;
	lg->enrolling++;
	start(lg, a, "/api/v1/agent/enroll", body, 120);
}

/* Update mode: asks how to get the component from the version held. */
static void start_plan(struct lg *lg, struct lg_agent *a)
{
	char *body = malloc(160);

	if (!body)
		return;
	snprintf(body, 160, "{\"component\":\"%s\",\"have\":%ld}", lg->component, lg->have);
	a->st = LG_PLAN;
	start(lg, a, "/api/v1/agent/update", body, 60);
}

/* Update mode: downloads the current step's payload, or is done. */
static void start_download(struct lg *lg, struct lg_agent *a)
{
	json_t *st = json_array_get(a->steps, a->step);
	char path[512];

	if (!st) {
		a->st = LG_DONE;
		lg->updated++;
		lg->last_done = now_ms();
		return;
	}
	snprintf(path, sizeof(path), "/api/v1/agent/download?file=%s",
		 json_string_value(json_object_get(st, "file")));
	a->st = LG_DOWNLOAD;
	start(lg, a, path, NULL, 600);
}

/* A download answered 503: as ward-agent, the agent waits the answer's
 * Retry-After (1 s without one) plus up to as much again. */
static void refused(struct lg *lg, struct lg_agent *a)
{
	struct curl_header *h;
	long after = 1;

	lg->refused++;
	if (curl_easy_header(a->h, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK &&
	    strtol(h->value, NULL, 10) > 0)
		after = strtol(h->value, NULL, 10);
	a->retry_at = now_ms() + (uint64_t)after * 1000 +
		      lg_random() % ((uint64_t)after * 1000 + 1);
	a->st = LG_WAIT;
}

/* Update mode: the end of a plan or download. */
static void finished_update(struct lg *lg, struct lg_agent *a, long status, json_t *ans)
{
	if (a->st == LG_PLAN && status == 200 && json_is_array(json_object_get(ans, "steps"))) {
		a->steps = json_incref(json_object_get(ans, "steps"));
		a->step = 0;
		start_download(lg, a);
		return;
	}
	if (a->st == LG_DOWNLOAD && status == 200 &&
	    (json_int_t)a->inlen == json_integer_value(json_object_get(
		    json_array_get(a->steps, a->step), "size"))) {
		lg->downloads++;
		lg->bytes += (long long)a->inlen;
		a->step++;
		start_download(lg, a);
		return;
	}
	if (a->st == LG_DOWNLOAD && status == 503) {
		refused(lg, a);
		return;
	}
	lg->errors++;
	fprintf(stderr, "loadgen: update of agent %d: %ld\n", a->idx, status);
	a->retry_at = now_ms() + 1000;
	a->st = LG_WAIT;
}

/* Upgrade mode: takes the first agent_upgrade task of a poll's answer
 * (one at a time; every id seen raises tasks_seen, so none comes twice). */
static void take_tasks(struct lg_agent *a, const json_t *tasks)
{
	const json_t *t;
	json_t *env, *desc;
	json_int_t id, size;
	const char *file, *version;
	size_t i;

	json_array_foreach(tasks, i, t) {
		id = json_integer_value(json_object_get(t, "id"));
		if (id <= a->tasks_seen)
			continue;
		a->tasks_seen = id;
		if (a->task || strcmp(json_string_value(json_object_get(t, "kind")) ?
				      json_string_value(json_object_get(t, "kind")) : "",
				      "agent_upgrade") != 0)
			continue;
		env = json_loads(json_string_value(json_object_get(json_object_get(t, "offer"),
								   "signed")) ?
				 json_string_value(json_object_get(json_object_get(t, "offer"),
								   "signed")) : "", 0, NULL);
		desc = json_loads(json_string_value(json_object_get(env, "manifest")) ?
				  json_string_value(json_object_get(env, "manifest")) : "", 0,
				  NULL);
		if (json_unpack(desc, "{s:s, s:I, s:s}", "file", &file, "size", &size, "version",
				&version) == 0) {
			a->task = id;
			a->task_started = (int64_t)time(NULL);
			snprintf(a->offer_file, sizeof(a->offer_file), "%s", file);
			snprintf(a->offer_version, sizeof(a->offer_version), "%s", version);
			a->offer_size = size;
		}
		json_decref(desc);
		json_decref(env);
	}
}

/* Upgrade mode: reports a->task in state (with error when failed). */
static void report_task(struct lg *lg, struct lg_agent *a, const char *state,
			const char *error)
{
	char *body = malloc(512);
	int n;

	if (!body)
		return;
	n = snprintf(body, 512, "{\"id\":%lld,\"state\":\"%s\",\"started\":%lld",
		     (long long)a->task, state, (long long)a->task_started);
	if (strcmp(state, "running") != 0)
		n += snprintf(body + n, 512 - (size_t)n, ",\"finished\":%lld",
			      (long long)time(NULL));
	if (error)
		n += snprintf(body + n, 512 - (size_t)n, ",\"error\":\"%s\"", error);
	snprintf(body + n, 512 - (size_t)n, "}");
	a->st = strcmp(state, "running") == 0 ? LG_TASK_RUN : LG_TASK_END;
	start(lg, a, "/api/v1/agent/tasks", body, 60);
}

static void start_package(struct lg *lg, struct lg_agent *a)
{
	char path[256];

	snprintf(path, sizeof(path), "/api/v1/agent/download?file=%s", a->offer_file);
	a->st = LG_PACKAGE;
	start(lg, a, path, NULL, 600);
}

/* Upgrade mode: the package is here and checked; the new version starts. */
static void installed(struct lg *lg, struct lg_agent *a)
{
	char why[200];

	if (lg->broken) {
		/* It crashes at once; the supervisor brings the old one back,
		 * which says why. */
		snprintf(why, sizeof(why), "%s was killed by signal 11 (Segmentation fault); %s "
			 "came back", a->offer_version, a->pkg_version);
		report_task(lg, a, "failed", why);
		return;
	}
	/* The new version's first status, then its report. */
	snprintf(a->pkg_version, sizeof(a->pkg_version), "%s", a->offer_version);
	a->st = LG_BEAT;
	start(lg, a, "/api/v1/agent/heartbeat", upgrade_status(lg, a), 60);
}

/* What an agent with nothing running does next: its upgrade task, else
 * its poll. */
static void next(struct lg *lg, struct lg_agent *a)
{
	if (lg->upgrade_from && a->task && a->st != LG_TASK_END)
		report_task(lg, a, "running", NULL);
	else
		start_poll(lg, a);
}

/* Upgrade mode: the end of a task report, download or heartbeat. */
static void finished_upgrade(struct lg *lg, struct lg_agent *a, long status)
{
	if (a->st == LG_TASK_RUN && status == 200) {
		start_package(lg, a);
		return;
	}
	if (a->st == LG_PACKAGE && status == 200 && (long long)a->inlen == a->offer_size) {
		lg->downloads++;
		lg->bytes += (long long)a->inlen;
		installed(lg, a);
		return;
	}
	if (a->st == LG_PACKAGE && status == 503) {
		refused(lg, a);
		a->retry_st = LG_PACKAGE;
		return;
	}
	if (a->st == LG_BEAT && status == 200) {
		report_task(lg, a, "completed", NULL);
		return;
	}
	/* 409: reported before (an answer lost); the task is over either way. */
	if (a->st == LG_TASK_END && (status == 200 || status == 409)) {
		if (lg->broken)
			lg->rolled_back++;
		else
			lg->upgraded++;
		a->task = 0;
		lg->last_done = now_ms();
		start_poll(lg, a);
		return;
	}
	lg->errors++;
	fprintf(stderr, "loadgen: upgrade of agent %d: %ld %s\n", a->idx, status,
		a->in && a->st != LG_PACKAGE ? a->in : "");
	a->retry_st = a->st;
	a->retry_at = now_ms() + 1000;
	a->st = LG_WAIT;
}

/* Upgrade mode: the step of its task an agent does again after a wait. */
static void resume_upgrade(struct lg *lg, struct lg_agent *a)
{
	switch (a->retry_st) {
	case LG_TASK_RUN:
		report_task(lg, a, "running", NULL);
		break;
	case LG_BEAT:
		installed(lg, a);
		break;
	case LG_TASK_END:
		if (lg->broken)
			installed(lg, a);
		else
			report_task(lg, a, "completed", NULL);
		break;
	default:
		start_package(lg, a);
		break;
	}
}

/* Handles the end of a's transfer with HTTP status (0: no answer). */
/* Keeps the frontends the first enrollment answer lists, turned so that
 * the --server URL, which every agent uses until it fails over, stays
 * first (when it is not among them, the list is not taken). */
static void take_frontends(struct lg *lg, const json_t *urls)
{
	const json_t *u;
	size_t i, n = json_array_size(urls), home = n;

	if (lg->nfrontends > 1 || !json_is_array(urls) || n < 2 || n > MAX_FRONTENDS)
		return;
	json_array_foreach(urls, i, u) {
		if (!json_is_string(u) || strncmp(json_string_value(u), "https://", 8) != 0)
			return;
		if (strcmp(json_string_value(u), lg->server) == 0)
			home = i;
	}
	if (home == n)
		return;
	for (i = 0; i < n; i++)
		lg->frontends[i] = strdup(json_string_value(json_array_get(urls, (home + i) % n)));
	lg->nfrontends = (int)n;
}

/* After a failed request, as ward-agent: an agent whose frontend is gone
 * or cannot serve turns to another at once (at random, so that the fleet
 * of a frontend gone spreads over the others; the agents of a process
 * spread over half a second, as separate hosts would), and once it has
 * tried as many as there are, pauses (1 s doubling to 60 s, with
 * jitter); any other failure waits a second. */
static void failed(struct lg *lg, struct lg_agent *a, long status)
{
	uint64_t wait = 1000;

	lg->errors++;
	if ((status == 0 || status == 502 || status == 503 || status == 504) &&
	    lg->nfrontends > 1) {
		a->frontend = (a->frontend + 1 + (int)(lg_random() %
						       (uint64_t)(lg->nfrontends - 1))) %
			      lg->nfrontends;
		lg->failovers++;
		a->turned = true;
		wait = lg_random() % 500;
		if (++a->tried >= lg->nfrontends) {
			a->tried = 0;
			a->backoff = a->backoff ? (a->backoff >= 60 ? 60 : a->backoff * 2) : 1;
			wait = a->backoff * 500u + lg_random() % (a->backoff * 500u + 1);
		}
	}
	a->st = LG_WAIT;
	a->retry_at = now_ms() + wait;
}

/* Its connection is made (or the request ended without one). */
static void set_up(struct lg_agent *a)
{
	if (a->setting_up) {
		a->setting_up = false;
		(*a->setups)--;
	}
}

static int on_prereq(void *arg, char *ip, char *local_ip, int port, int local_port)
{
	(void)ip;
	(void)local_ip;
	(void)port;
	(void)local_port;
	set_up(arg);
	return CURL_PREREQFUNC_OK;
}

/* An answer from the server: the agent's failover starts afresh. */
static void answered(struct lg_agent *a)
{
	a->tried = 0;
	a->backoff = 0;
}

static void finished(struct lg *lg, struct lg_agent *a, long status)
{
	json_t *ans = a->in ? json_loads(a->in, 0, NULL) : NULL;
	json_int_t version;
	const char *secret;
	char token[128], *body;

	a->busy = false;
	set_up(a);
	switch (a->st) {
	case LG_ENROLL:
		lg->enrolling--;
		if (status == 201 && json_unpack(ans, "{s:s, s:I}", "secret", &secret, "client",
						 &version) == 0) {
			a->client = version;
			take_frontends(lg, json_object_get(ans, "frontends"));
			snprintf(token, sizeof(token), "%s:%s", a->uuid, secret);
			set_auth(a, token);
			lg->enrolled++;
			if (lg->component)
				start_plan(lg, a);
			else
				start_poll(lg, a);
		} else {
			lg->errors++;
			fprintf(stderr, "loadgen: enroll of agent %d: %ld %s\n", a->idx, status,
				a->in ? a->in : "");
			a->st = LG_WAIT;
			a->retry_at = now_ms() + 1000;
		}
		break;
	case LG_POLL:
		if (status == 200 && lg->upgrade_from)
			take_tasks(a, json_object_get(ans, "tasks"));
		if (status == 200 && json_unpack(ans, "{s:I}", "version", &version) == 0) {
			answered(a);
			lg->deliveries++;
			a->version = version;
			fprintf(lg->events, "%lld %lld %lld\n", (long long)a->client,
				(long long)version, (long long)real_ns());
			body = malloc(64);
			if (body) {
				snprintf(body, 64, "{\"version\":%lld}", (long long)version);
				a->st = LG_ACK;
				start(lg, a, "/api/v1/agent/ack", body, 30);
			}
		} else if (status == 204 || (status == 200 && lg->upgrade_from)) {
			lg->polls_empty += status == 204;
			answered(a);
			next(lg, a);
		} else {
			failed(lg, a, status);
		}
		break;
	case LG_ACK:
		/* Not acknowledged: the next poll says the version it has. */
		if (status != 200 && status != 0 && status < 500)
			lg->errors++;
		else if (status != 200)
			failed(lg, a, status);
		else if (lg->acks)
			fprintf(lg->acks, "%lld %lld\n", (long long)a->client,
				(long long)a->version);
		if (!a->ready) {
			a->ready = true;
			lg->nready++;
		}
		if (a->st == LG_ACK)
			next(lg, a);
		break;
	case LG_PLAN:
	case LG_DOWNLOAD:
		finished_update(lg, a, status, ans);
		break;
	case LG_TASK_RUN:
	case LG_PACKAGE:
	case LG_BEAT:
	case LG_TASK_END:
		finished_upgrade(lg, a, status);
		break;
	case LG_WAIT:
	case LG_DONE:
		break;
	}
	json_decref(ans);
}

static void drain(struct lg *lg, CURLM *multi)
{
	struct lg_agent *a;
	CURLMsg *msg;
	long status;
	int left;

	while ((msg = curl_multi_info_read(multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&a);
		status = 0;
		if (msg->data.result == CURLE_OK)
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		else if (msg->data.result == CURLE_OPERATION_TIMEDOUT)
			lg->timeouts++;
		else if (msg->data.result == CURLE_COULDNT_CONNECT)
			lg->refusals++;
		else
			lg->cuts++;
		if (status == 503)
			lg->unavailable++;
		curl_multi_remove_handle(multi, msg->easy_handle);
		finished(lg, a, status);
	}
}

/* Starts what agent a, due (retry_at passed), does next. */
static void resume(struct lg *lg, struct lg_agent *a)
{
	a->retry_at = 0;
	if (!a->client)
		start_enroll(lg, a);
	else if (lg->component && a->steps)
		start_download(lg, a);
	else if (lg->component)
		start_plan(lg, a);
	else if (lg->upgrade_from && a->task)
		resume_upgrade(lg, a);
	else
		start_poll(lg, a);
}

/* Starts the queued agents the setups have room for. */
static void start_queued(struct lg *lg)
{
	struct lg_agent *a;

	while (lg->queue_len && lg->setting_up < lg->setup_max) {
		a = &lg->agents[lg->queue[lg->queue_head]];
		lg->queue_head = (lg->queue_head + 1) % lg->n;
		lg->queue_len--;
		a->queued = false;
		resume(lg, a);
	}
}

/* A number option's value, or exit 2 naming the option. */
static long long lg_number(const char *text, const char *option)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno || end == text || *end) {
		fprintf(stderr, "ward-loadgen: --%s: '%s' is not a number\n", option, text);
		exit(2);
	}
	return v;
}

static void new_uuid(char out[37], int idx)
{
	uint64_t r = (lg_random() << 32) ^ lg_random() ^ ((uint64_t)time(NULL) << 20);

	snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)idx, (unsigned)(r & 0xffff),
		 (unsigned)((r >> 16) & 0xfff), (unsigned)((r >> 28) & 0xfff),
		 (unsigned long long)(r >> 8) & 0xffffffffffffULL);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "ca", required_argument, NULL, 'c' },
		{ "token", required_argument, NULL, 't' },
		{ "agents", required_argument, NULL, 'n' },
		{ "heartbeat", required_argument, NULL, 'h' },
		{ "long-poll", required_argument, NULL, 'l' },
		{ "duration", required_argument, NULL, 'd' },
		{ "events", required_argument, NULL, 'e' },
		{ "concurrency", required_argument, NULL, 'k' },
		{ "update", required_argument, NULL, 'u' },
		{ "have", required_argument, NULL, 'v' },
		{ "spread", required_argument, NULL, 'p' },
		{ "acks", required_argument, NULL, 'a' },
		{ "setups", required_argument, NULL, 'S' },
		{ "upgrade-from", required_argument, NULL, 'U' },
		{ "platform", required_argument, NULL, 'P' },
		{ "broken", no_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	struct lg lg = { .heartbeat_ms = 60000, .long_poll = 55,
			 .enroll_max = 32, .setup_max = 256 };
	struct epoll_event evs[256];
	struct rlimit rl;
	const char *events_path = "/dev/null", *acks_path = NULL;
	uint64_t start_ms, duration_ms = 0, now, last_retry_scan = 0, last_stats = 0;
	int c, i, n, running, wait, announced = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': lg.server = optarg; break;
		case 'c': lg.ca = optarg; break;
		case 't': lg.token = optarg; break;
		case 'n': lg.n = (int)lg_number(optarg, "agents"); break;
		case 'h': lg.heartbeat_ms = lg_number(optarg, "heartbeat") * 1000; break;
		case 'l': lg.long_poll = (long)lg_number(optarg, "long-poll"); break;
		case 'd': duration_ms = (uint64_t)lg_number(optarg, "duration") * 1000; break;
		case 'e': events_path = optarg; break;
		case 'k': lg.enroll_max = (int)lg_number(optarg, "concurrency"); break;
		case 'u': lg.component = optarg; break;
		case 'v': lg.have = (long)lg_number(optarg, "have"); break;
		case 'a': acks_path = optarg; break;
		case 'p': lg.spread = (int)lg_number(optarg, "spread"); break;
		case 'S': lg.setup_max = (int)lg_number(optarg, "setups"); break;
		case 'U': lg.upgrade_from = optarg; break;
		case 'P':
			if (sscanf(optarg, "%63[^/]/%31s", lg.os, lg.arch) != 2) {
				fprintf(stderr, "ward-loadgen: --platform: expected OS/ARCH "
					"(debian-12/amd64), not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'B': lg.broken = true; break;
		default: return 2;
		}
	}
	lg.frontends[0] = (char *)lg.server;
	lg.nfrontends = 1;
	if (!lg.server || !lg.ca || !lg.token || lg.n <= 0) {
		fprintf(stderr, "usage: ward-loadgen --server URL --ca FILE --token ENROLL_TOKEN "
			"--agents N [--heartbeat S] [--long-poll S] [--duration S] "
			"[--events FILE] [--concurrency N] [--update COMPONENT --have N] "
			"[--spread N] [--acks FILE] [--setups N] [--upgrade-from VERSION "
			"--platform OS/ARCH [--broken]]\n");
		return 2;
	}
	if (lg.upgrade_from && (!lg.os[0] || strlen(lg.upgrade_from) >= 64)) {
		fprintf(stderr, "ward-loadgen: --upgrade-from needs --platform OS/ARCH\n");
		return 2;
	}
	if (lg.spread > 250 * 256) {
		fprintf(stderr, "loadgen: --spread: at most %d addresses\n", 250 * 256);
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	lg_seed = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	lg.events = fopen(events_path, "w");
	lg.acks = acks_path ? fopen(acks_path, "w") : NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	lg.epfd = epoll_create1(EPOLL_CLOEXEC);
	lg.agents = calloc((size_t)lg.n, sizeof(*lg.agents));
	lg.queue = calloc((size_t)lg.n, sizeof(*lg.queue));
	lg.ngroups = (lg.n + GROUP_AGENTS - 1) / GROUP_AGENTS;
	lg.groups = calloc((size_t)lg.ngroups, sizeof(*lg.groups));
	if (!lg.events || (acks_path && !lg.acks) || lg.epfd < 0 || !lg.agents || !lg.queue ||
	    !lg.groups) {
		fprintf(stderr, "loadgen: cannot start: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < lg.ngroups; i++) {
		struct lg_group *g = &lg.groups[i];

		g->lg = &lg;
		g->idx = (uint32_t)i;
		g->multi = curl_multi_init();
		if (!g->multi)
			return 1;
		curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
		curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g);
		curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, on_timer);
		curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g);
		curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, (long)GROUP_AGENTS + 16);
	}
	for (i = 0; i < lg.n; i++) {
		struct lg_agent *a = &lg.agents[i];

		a->idx = i;
		new_uuid(a->uuid, i);
		a->h = curl_easy_init();
		if (!a->h)
			return 1;
		curl_easy_setopt(a->h, CURLOPT_PRIVATE, (char *)a);
		curl_easy_setopt(a->h, CURLOPT_CAINFO, lg.ca);
		/* Only the server CA: without this libcurl also loads the
		 * system's whole CA directory for every connection (megabytes
		 * and milliseconds each). */
		curl_easy_setopt(a->h, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(a->h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(a->h, CURLOPT_WRITEDATA, a);
		curl_easy_setopt(a->h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(a->h, CURLOPT_CONNECTTIMEOUT, 60L);
		curl_easy_setopt(a->h, CURLOPT_PREREQFUNCTION, on_prereq);
		curl_easy_setopt(a->h, CURLOPT_PREREQDATA, a);
		a->setups = &lg.setting_up;
		if (lg.upgrade_from)
			snprintf(a->pkg_version, sizeof(a->pkg_version), "%s", lg.upgrade_from);
		/* With a server on loopback, agents connect to 127.0.0.1 to
		 * 127.0.0.N (certificates still checked against the URL's name):
		 * libcurl looks for a connection to reuse among all those to the
		 * same address, and the kernel for a free port among those to
		 * it, each a walk as long as the fleet, so one address would make
		 * the generator, not the server, what a large run measures. */
		if (lg.spread > 0) {
			char to[64];
			int j = i % lg.spread;

			snprintf(to, sizeof(to), "::127.0.%d.%d:", j / 250, 1 + j % 250);
			a->connect_to = curl_slist_append(NULL, to);
			if (!a->connect_to)
				return 1;
			curl_easy_setopt(a->h, CURLOPT_CONNECT_TO, a->connect_to);
		}
		/* Spread the heartbeats over the interval, as real agents are. */
		a->next_status = lg_random() % (uint64_t)lg.heartbeat_ms;
		a->st = LG_WAIT;
	}
	start_ms = now_ms();
	for (i = 0; i < lg.n; i++)
		lg.agents[i].next_status += start_ms;
	while (!stopping && (!duration_ms || now_ms() - start_ms < duration_ms) &&
	       (!lg.component || lg.updated < lg.n)) {
		now = now_ms();
		while (lg.next_enroll < lg.n && lg.enrolling < lg.enroll_max)
			start_enroll(&lg, &lg.agents[lg.next_enroll++]);
		for (i = 0; now - last_retry_scan >= 100 && i < lg.n; i++) {
			struct lg_agent *a = &lg.agents[i];

			if (a->st != LG_WAIT || a->busy || a->queued || !a->retry_at ||
			    a->retry_at > now)
				continue;
			if (a->turned && lg.setting_up >= lg.setup_max) {
				a->queued = true;
				lg.queue[(lg.queue_head + lg.queue_len++) % lg.n] = i;
			} else {
				resume(&lg, a);
			}
		}
		if (now - last_retry_scan >= 100)
			last_retry_scan = now;
		wait = 100;
		for (i = 0; i < lg.ngroups; i++) {
			uint64_t at = lg.groups[i].timeout_at;

			if (at && (int64_t)(at - now) < wait)
				wait = at <= now ? 0 : (int)(at - now);
		}
		n = epoll_wait(lg.epfd, evs, 256, wait);
		for (i = 0; i < n; i++)
			curl_multi_socket_action(lg.groups[evs[i].data.u64 >> 32].multi,
						 (curl_socket_t)(uint32_t)evs[i].data.u64,
						 (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
						 (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
						 (evs[i].events & (EPOLLERR | EPOLLHUP) ?
						  CURL_CSELECT_ERR : 0), &running);
		now = now_ms();
		for (i = 0; i < lg.ngroups; i++) {
			struct lg_group *g = &lg.groups[i];

			if (g->timeout_at && g->timeout_at <= now) {
				g->timeout_at = 0;
				curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0,
							 &running);
			}
			drain(&lg, g->multi);
		}
		start_queued(&lg);
		fflush(lg.events);
		if (lg.acks)
			fflush(lg.acks);
		if (now - last_stats >= 5000) {
			/* For the driver: counters as they grow. */
			fprintf(stderr, "STATS %.1f deliveries %ld status_reports %ld errors %ld "
				"(timeouts %ld refusals %ld cuts %ld 503 %ld) ready %d "
				"failovers %ld upgraded %ld rolled_back %ld downloads %ld\n",
				(double)(now - start_ms) / 1000.0, lg.deliveries, lg.status_sent,
				lg.errors, lg.timeouts, lg.refusals, lg.cuts, lg.unavailable,
				lg.nready, lg.failovers, lg.upgraded, lg.rolled_back, lg.downloads);
			last_stats = now;
		}
		if (!announced && lg.nready == lg.n) {
			printf("READY %d %.1f\n", lg.n, (double)(now_ms() - start_ms) / 1000.0);
			fflush(stdout);
			announced = 1;
		}
	}
	if (lg.upgrade_from)
		printf("{\"agents\": %d, \"enrolled\": %ld, \"upgraded\": %ld, \"rolled_back\": "
		       "%ld, \"downloads\": %ld, \"refused\": %ld, \"bytes\": %lld, "
		       "\"errors\": %ld}\n",
		       lg.n, lg.enrolled, lg.upgraded, lg.rolled_back, lg.downloads, lg.refused,
		       lg.bytes, lg.errors);
	else if (lg.component)
		printf("{\"agents\": %d, \"enrolled\": %ld, \"updated\": %ld, \"downloads\": %ld, "
		       "\"refused\": %ld, \"bytes\": %lld, \"seconds\": %.2f, \"errors\": %ld}\n",
		       lg.n, lg.enrolled, lg.updated, lg.downloads, lg.refused, lg.bytes,
		       lg.updated ? (double)(lg.last_done - start_ms) / 1000.0 : 0.0, lg.errors);
	else
		printf("{\"agents\": %d, \"enrolled\": %ld, \"ready\": %d, \"deliveries\": "
		       "%ld, \"empty_polls\": %ld, \"status_reports\": %ld, \"errors\": %ld, "
		       "\"failovers\": %ld, \"timeouts\": %ld, \"refusals\": %ld, \"cuts\": %ld, "
		       "\"unavailable\": %ld}\n", lg.n, lg.enrolled, lg.nready, lg.deliveries,
		       lg.polls_empty, lg.status_sent, lg.errors, lg.failovers, lg.timeouts,
		       lg.refusals, lg.cuts, lg.unavailable);
	fclose(lg.events);
	if (lg.acks)
		fclose(lg.acks);
	return 0;
}
