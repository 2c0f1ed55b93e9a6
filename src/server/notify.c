/* notify.c -- batched delivery of settings over event channels (see
 * notify.h). */
#include "server/notify.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "server/metrics.h"
#include "server/updates.h"

/* How often deadlines are checked. */
#define DEADLINE_MS 250

/* One agent's channel state, kept while its event channel is open or a
 * delivery to it is in flight. */
struct chan {
	struct http_req *req;      /* parked event channel, or NULL */
	int64_t have;              /* settings version the agent reported */
	uint64_t poll_deadline;    /* ms: answer the parked request empty then */
	int64_t sent_version;      /* in flight: version sent, 0 when none */
	uint64_t ack_deadline;     /* ms */
	uint64_t sent_ms;          /* when the version in flight was sent */
	int64_t client;
};

struct notify {
	struct store *st;
	const struct config *cfg;
	struct chan **chans;       /* indexed by client id */
	/* By client id as well: recorded in the store as polling this
	 * server (store_agent_here()) since it started. */
	bool *recorded;
	size_t nchans;
	int64_t in_flight;
	int kick;
	bool paused;               /* deliveries held (an upgrade), kept in the store */
	const struct updates *updates; /* signs moves; NULL until set */
	json_t *frontends;         /* what agents fail over between; NULL until set */
	struct metrics *metrics;   /* counts delivery latency; NULL: none */
};

/* The store's key of the pause. */
#define PAUSED_KEY "notify.paused"

static struct chan *chan_get(struct notify *n, int64_t client, int create)
{
	struct chan **grown, *c;
	bool *recorded;
	size_t want;

	if (client <= 0)
		return NULL;
	if ((size_t)client < n->nchans && n->chans[client])
		return n->chans[client];
	if (!create)
		return NULL;
	if ((size_t)client >= n->nchans) {
		want = n->nchans ? n->nchans : 1024;
		while (want <= (size_t)client)
			want *= 2;
		grown = realloc(n->chans, want * sizeof(*grown));
		if (!grown)
			return NULL;
		memset(grown + n->nchans, 0, (want - n->nchans) * sizeof(*grown));
		n->chans = grown;
		recorded = realloc(n->recorded, want * sizeof(*recorded));
		if (!recorded)
			return NULL;
		memset(recorded + n->nchans, 0, (want - n->nchans) * sizeof(*recorded));
		n->recorded = recorded;
		n->nchans = want;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->client = client;
	n->chans[client] = c;
	return c;
}

/* Frees c when it no longer holds anything. */
static void chan_release(struct notify *n, struct chan *c)
{
	if (c->req || c->sent_version)
		return;
	n->chans[c->client] = NULL;
	free(c);
}

static void on_drop(struct http_req *req, void *arg)
{
	struct chan *c = arg;

	(void)req;
	c->req = NULL;
}

/* Answers c's parked request with status and body (stolen). */
static void answer(struct chan *c, unsigned status, json_t *body)
{
	struct http_req *req = c->req;

	c->req = NULL;
	http_respond_json(req, status, body);
}

/* Adds c's tasks due now to body as "tasks" (none: nothing added); they
 * count as delivered. Returns how many, or -1 on a store failure. A task
 * goes again when notify.ack_timeout passes without a report on it. */
static int add_tasks(struct notify *n, struct chan *c, json_t *body)
{
	int64_t now = (int64_t)time(NULL);
	json_t *tasks = NULL;
	int count;

	if (!body || store_tasks_due(n->st, c->client, now - n->cfg->ack_timeout, now, &tasks) !=
	    SERR_OK)
		return -1;
	count = (int)json_array_size(tasks);
	if (count)
		json_object_set_new(body, "tasks", tasks);
	else
		json_decref(tasks);
	return count;
}

/* Answers c's parked channel with its tasks due, when it has some and no
 * settings are in flight to it. */
static void send_tasks(struct notify *n, struct chan *c)
{
	json_t *body;

	if (!c->req || c->sent_version)
		return;
	body = json_object();
	if (add_tasks(n, c, body) > 0)
		answer(c, 200, body);
	else
		json_decref(body);
}

/* Sends client its current settings over its parked channel; returns 1
 * when sent, 0 when it turned out to have them already (acknowledged
 * here), -1 on a store failure. */
static int send_settings(struct notify *n, struct chan *c, int64_t queued)
{
	char *text = NULL, msg[256];
	int64_t version;
	json_t *settings, *body;
	int pending = 0;

	if (store_agent_settings(n->st, c->client, &text, &version, msg, sizeof(msg)) !=
	    SERR_OK)
		return -1;
	if (c->have >= version || c->have >= queued) {
		free(text);
		store_agent_ack(n->st, c->client, c->have, msg, sizeof(msg));
		return 0;
	}
	settings = json_loads(text, 0, NULL);
	free(text);
	if (!settings)
		return -1;
	c->sent_version = version;
	c->sent_ms = http_now_ms();
	c->ack_deadline = c->sent_ms + (uint64_t)n->cfg->ack_timeout * 1000;
	n->in_flight++;
	body = json_pack("{sI so}", "version", (json_int_t)version, "settings", settings);
	if (body && n->frontends)
		json_object_set(body, "frontends", n->frontends);
	/* A client asked to update now is told so; it acknowledges once its
	 * components are current. */
	if (body && store_client_update_pending(n->st, c->client, &pending) == SERR_OK &&
	    pending)
		json_object_set_new(body, "update", json_true());
	/* A client that is to move to another server is told where, signed:
	 * an agent follows no move that does not come from its server's key. */
	if (body && n->updates && store_client_move_info(n->st, c->client, &text) == SERR_OK) {
		json_object_set_new(body, "move", updates_sign(n->updates, text));
		free(text);
	}
	add_tasks(n, c, body);
	answer(c, 200, body);
	return 1;
}

/* Takes the claimed deliveries whose agents have a channel open here and
 * nothing in flight, up to what the batch has room for. Sending waits
 * until the claim's transaction is done, since sending writes to the
 * store. */
struct picks {
	struct notify *n;
	struct store_delivery *list;
	size_t count;
};

static bool pick(const struct store_delivery *d, void *arg)
{
	struct picks *p = arg;
	struct chan *c = chan_get(p->n, d->client, 0);

	/* (A channel whose client has left is let go here, not sent to.) */
	if (!c || !c->req || c->sent_version || http_parked_gone(c->req))
		return false;
	p->list[p->count++] = *d;
	return true;
}

/* Sends due deliveries to connected agents until notify.batch are in
 * flight. Each due delivery is looked at once: one whose agent is not
 * here waits for its next poll (notify_poll()). */
static void fill(struct notify *n)
{
	struct picks p = { .n = n };
	struct chan *c;
	size_t i, room;

	n->kick = 0;
	if (n->paused || n->in_flight >= n->cfg->notify_batch)
		return;
	room = (size_t)(n->cfg->notify_batch - n->in_flight);
	p.list = calloc(room, sizeof(*p.list));
	if (!p.list || store_deliveries_claim(n->st, (int64_t)time(NULL), room, pick, &p) !=
	    SERR_OK) {
		free(p.list);
		n->kick = 1; /* try again on the next tick */
		return;
	}
	for (i = 0; i < p.count; i++) {
		c = chan_get(n, p.list[i].client, 0);
		if (c && c->req && send_settings(n, c, p.list[i].version) == 0)
			n->kick = 1; /* had it already: room for another */
	}
	free(p.list);
}

/* After each pass of the HTTP loop: when something may have made a
 * delivery possible (a change, an acknowledgement, a reconnect), look. */
static void after_pass(void *arg)
{
	struct notify *n = arg;

	if (n->kick)
		fill(n);
}

/* Logs that c's delivery d went unacknowledged. */
static void unacknowledged(struct notify *n, const struct chan *c,
			   const struct store_delivery *d)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "settings version %lld not acknowledged (attempt %lld)%s",
		 (long long)c->sent_version, (long long)d->attempts,
		 d->next_attempt == STORE_NEVER ? "; waiting for the agent to reconnect" :
		 "; retried later");
	log_msg(LOG_LVL_WARN, "notify: client %lld: %s", (long long)c->client, msg);
	store_event_add(n->st, "delivery", c->client, 0, msg);
}

/* Answers expired event channels empty, and counts unacknowledged
 * deliveries as failed. */
static void on_deadline_timer(void *arg)
{
	struct notify *n = arg;
	uint64_t now = http_now_ms();
	struct store_delivery d;
	size_t i;
	struct chan *c;

	for (i = 0; i < n->nchans; i++) {
		c = n->chans[i];
		if (!c)
			continue;
		if (c->req && c->poll_deadline <= now)
			answer(c, 204, NULL);
		if (c->sent_version && c->ack_deadline <= now) {
			n->in_flight--;
			n->kick = 1;
			if (store_delivery_get(n->st, c->client, &d) == SERR_OK) {
				d.attempts++;
				d.next_attempt = d.attempts > n->cfg->retries ? STORE_NEVER :
						 (int64_t)time(NULL) + n->cfg->retry_interval;
				store_delivery_retry(n->st, c->client, d.attempts, d.next_attempt);
				unacknowledged(n, c, &d);
			}
			c->sent_version = 0;
		}
		chan_release(n, c);
	}
}

struct notify *notify_new(struct store *st, const struct config *cfg, struct http_server *http)
{
	struct notify *n = calloc(1, sizeof(*n));
	char *paused = NULL;

	if (!n)
		return NULL;
	n->st = st;
	n->cfg = cfg;
	if (store_kv_get(st, PAUSED_KEY, &paused) == SERR_OK)
		n->paused = strcmp(paused, "1") == 0;
	free(paused);
	if (http_after_each(http, after_pass, n) != 0 ||
	    http_every(http, DEADLINE_MS, on_deadline_timer, n) != 0) {
		free(n);
		return NULL;
	}
	return n;
}

void notify_free(struct notify *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->nchans; i++)
		free(n->chans[i]);
	free(n->chans);
	free(n->recorded);
	free(n);
}

void notify_poll(struct notify *n, struct http_req *req, int64_t client, int64_t have,
		 int64_t wait)
{
	struct chan *c = chan_get(n, client, 1);
	struct store_delivery d;
	bool queued, tasks, here;
	json_t *body;
	int64_t now;
	char msg[256];

	if (!c) {
		http_respond_error(req, 503, "out of memory");
		return;
	}
	if (c->req) /* the agent opened a new channel: the old one is dead */
		answer(c, 204, NULL);
	if (c->sent_version) {
		/* Agents acknowledge before they poll again. One below what was
		 * sent never got it (it went to a dead connection): it is sent
		 * anew. One at or above it has it, and its acknowledgement was
		 * lost (it stopped before sending it): done. Either way the
		 * send no longer holds a place in the batch. */
		if (have >= c->sent_version) {
			store_agent_ack(n->st, client, have, msg, sizeof(msg));
			snprintf(msg, sizeof(msg), "settings version %lld delivered (its "
				 "acknowledgement was lost)", (long long)c->sent_version);
			store_event_add(n->st, "delivery", client, 0, msg);
		}
		c->sent_version = 0;
		n->in_flight--;
		n->kick = 1;
	}
	c->have = have;
	now = (int64_t)time(NULL);
	/* (On failure none: the next poll or change looks again.) An agent
	 * that last polled another server (it failed over) is this one's
	 * from now: the changes queued for it come here; what was queued
	 * before that is read after. An agent's first poll since this server
	 * started is recorded before the read (one that failed over costs
	 * no read more; one already here, a write of nothing). */
	if (!n->recorded[client] && store_agent_here(n->st, client) == SERR_OK)
		n->recorded[client] = true;
	if (store_poll_state(n->st, client, now - n->cfg->ack_timeout, &d, &queued, &tasks,
			     &here) == SERR_OK && !here &&
	    store_agent_here(n->st, client) == SERR_OK)
		store_poll_state(n->st, client, now - n->cfg->ack_timeout, &d, &queued, &tasks,
				 &here);
	if (queued) {
		/* The agent has this version already: its acknowledgement was
		 * lost (a crash on either side). Done, not sent again. */
		if (d.version <= have) {
			store_agent_ack(n->st, client, have, msg, sizeof(msg));
		} else if (d.next_attempt == STORE_NEVER) {
			/* Retries ran out; a reconnecting agent starts anew. */
			store_delivery_retry(n->st, client, 0, 0);
		} else {
			/* It waits for this poll (it was due while the agent had
			 * no channel open, or was sent to a channel that is gone),
			 * or a retry is due later (the agent went away
			 * unacknowledged, a restart say): the poll shows the agent
			 * lacks it, and it goes at once, from this server, which
			 * claims it from now on (the agent may have come from
			 * another). */
			store_delivery_retry(n->st, client, d.attempts, 0);
		}
		n->kick = 1;
	}
	/* Tasks due go at once (the request is not parked: an answer given
	 * while its handler runs is sent as it returns). */
	body = tasks ? json_object() : NULL;
	if (tasks && add_tasks(n, c, body) > 0) {
		http_respond_json(req, 200, body);
		return;
	}
	json_decref(body);
	c->req = req;
	if (wait <= 0 || wait > n->cfg->long_poll)
		wait = n->cfg->long_poll;
	c->poll_deadline = http_now_ms() + (uint64_t)wait * 1000;
	http_park(req, on_drop, c);
}

void notify_cut(struct notify *n)
{
	struct http_req *req;
	size_t i;

	for (i = 0; i < n->nchans; i++) {
		if (!n->chans[i] || !n->chans[i]->req)
			continue;
		req = n->chans[i]->req;
		n->chans[i]->req = NULL;
		http_respond_busy(req, 5, "this server cannot reach its database; turn to another");
	}
}

void notify_tasks(struct notify *n, int64_t client)
{
	struct chan *c = chan_get(n, client, 0);

	if (c)
		send_tasks(n, c);
}

void notify_ack(struct notify *n, int64_t client, int64_t version)
{
	struct chan *c = chan_get(n, client, 0);
	char msg[256];

	if (store_agent_ack(n->st, client, version, msg, sizeof(msg)) != SERR_OK)
		log_msg(LOG_LVL_ERROR, "notify: acknowledgement of client %lld: %s",
			(long long)client, msg);
	if (c && c->sent_version && c->sent_version <= version) {
		if (n->metrics)
			metrics_delivered(n->metrics,
					  (double)(http_now_ms() - c->sent_ms) / 1000.0);
		snprintf(msg, sizeof(msg), "settings version %lld delivered and acknowledged",
			 (long long)version);
		store_event_add(n->st, "delivery", client, 0, msg);
		c->sent_version = 0;
		n->in_flight--;
		chan_release(n, c);
	}
	n->kick = 1;
}

void notify_kick(struct notify *n)
{
	n->kick = 1;
}

int notify_connected(const struct notify *n, int64_t client)
{
	return client > 0 && (size_t)client < n->nchans && n->chans[client] &&
	       n->chans[client]->req != NULL;
}

int64_t notify_in_flight(const struct notify *n)
{
	return n->in_flight;
}

bool notify_paused(const struct notify *n)
{
	return n->paused;
}

enum serr notify_pause(struct notify *n, bool paused, char *errbuf, size_t errlen)
{
	enum serr err = store_kv_put(n->st, PAUSED_KEY, paused ? "1" : "0", errbuf, errlen);

	if (err != SERR_OK)
		return err;
	n->paused = paused;
	n->kick = 1;
	store_ring_deliveries(n->st);
	return SERR_OK;
}

/* Another server changed what is queued: the pause as stored, and a
 * look at the queue; tasks queued go to the channels open here. */
void notify_rung(struct notify *n, int rung)
{
	json_t *clients = NULL, *id;
	char *paused = NULL;
	size_t i;

	if (rung & STORE_RUNG_DELIVERIES) {
		if (store_kv_get(n->st, PAUSED_KEY, &paused) == SERR_OK)
			n->paused = strcmp(paused, "1") == 0;
		free(paused);
		n->kick = 1;
	}
	if ((rung & STORE_RUNG_TASKS) && store_tasks_queued_clients(n->st, &clients) == SERR_OK)
		json_array_foreach(clients, i, id)
			notify_tasks(n, json_integer_value(id));
	json_decref(clients);
}

void notify_set_signer(struct notify *n, const struct updates *u)
{
	n->updates = u;
}

void notify_set_frontends(struct notify *n, json_t *urls)
{
	n->frontends = urls;
}

void notify_set_metrics(struct notify *n, struct metrics *m)
{
	n->metrics = m;
}
