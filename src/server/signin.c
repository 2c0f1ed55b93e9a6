/* signin.c -- password work on worker threads, verified at their turns
 * while the global brake is engaged (see signin.h). */
#include "server/signin.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* One password job, handed to a worker and back. */
struct job {
	/* Set on the loop's thread; req is never touched by a worker. */
	struct http_req *req;
	signin_done_fn done;
	void *arg;
	char *hash, *password, *new_password;
	int64_t turn;      /* not started before (the clock; 0: at once) */
	/* Set by the worker. */
	enum signin_outcome outcome;
	char new_hash[crypto_pwhash_STRBYTES];
	struct job *next;
};

struct signin {
	struct signin_config cfg;
	pthread_t *threads;
	unsigned started;
	pthread_mutex_t lock;
	pthread_cond_t wake;        /* a job queued, or stop */
	/* Under lock: */
	struct job *queue, **queue_tail, *finished;
	bool stop;
	bool rung;                  /* finished holds jobs, and the bell was rung */
	/* The loop's: */
	struct loop *loop;
	int bell;                   /* eventfd: jobs finished */
	unsigned pending;           /* submitted and not yet collected */
	int64_t full_logged;        /* when a full queue was last logged */
};

/* The hash an unknown name is verified against: made once, with the same
 * parameters as every stored one, of a password nobody knows. */
static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
	unsigned char secret[32];

	randombytes_buf(secret, sizeof(secret));
	if (crypto_pwhash_str(dummy_hash, (const char *)secret, sizeof(secret), SIGNIN_OPSLIMIT,
			      SIGNIN_MEMLIMIT) != 0)
		dummy_hash[0] = '\0';
	sodium_memzero(secret, sizeof(secret));
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	if (j->password)
		sodium_memzero(j->password, strlen(j->password));
	if (j->new_password)
		sodium_memzero(j->new_password, strlen(j->new_password));
	free(j->hash);
	free(j->password);
	free(j->new_password);
	free(j);
}

static void run_job(struct job *j)
{
	const char *hash = j->hash;

	j->outcome = SIGNIN_MATCH;
	if (j->password) {
		if (!hash) {
			pthread_once(&dummy_once, make_dummy);
			hash = dummy_hash;
		}
		/* The dummy is verified like any hash, then refused. */
		if (crypto_pwhash_str_verify(hash, j->password, strlen(j->password)) != 0 ||
		    !j->hash)
			j->outcome = SIGNIN_MISMATCH;
	}
	if (j->outcome == SIGNIN_MATCH && j->new_password &&
	    crypto_pwhash_str(j->new_hash, j->new_password, strlen(j->new_password),
			      SIGNIN_OPSLIMIT, SIGNIN_MEMLIMIT) != 0)
		j->outcome = SIGNIN_ENOMEM;
}

/* Holds job j back until its turn (lock held; released while waiting).
 * The turn is by the clock, which servers sharing a database agree on;
 * the wait is by the monotonic clock, which no clock step moves. Returns
 * false when stopping. */
static bool wait_turn(struct signin *s, const struct job *j)
{
	int64_t ahead = j->turn - (int64_t)time(NULL);
	struct timespec until;

	if (ahead <= 0)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ahead;
	while (!s->stop && pthread_cond_timedwait(&s->wake, &s->lock, &until) != ETIMEDOUT)
		;
	return !s->stop;
}

static void *worker(void *arg)
{
	struct signin *s = arg;
	struct job *j;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->stop && !s->queue)
			pthread_cond_wait(&s->wake, &s->lock);
		if (s->stop)
			break;
		j = s->queue;
		s->queue = j->next;
		if (!s->queue)
			s->queue_tail = &s->queue;
		if (!wait_turn(s, j)) {
			/* Stopping: back in the queue, for signin_free(). */
			j->next = s->queue;
			s->queue = j;
			if (!j->next)
				s->queue_tail = &j->next;
			break;
		}
		pthread_mutex_unlock(&s->lock);
		run_job(j);
		pthread_mutex_lock(&s->lock);
		j->next = s->finished;
		s->finished = j;
		if (!s->rung) {
			uint64_t one = 1;

			s->rung = true;
			/* (Fails only past 2^64 - 2 unread rings.) */
			(void)!write(s->bell, &one, sizeof(one));
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Calls a job's done function and frees it. */
static void finish(struct job *j)
{
	j->done(j->req, j->arg, j->outcome, j->outcome == SIGNIN_MATCH ? j->new_hash : "");
	job_free(j);
}

/* The bell rang: answers the requests whose jobs are done. */
static void collect(int fd, uint32_t events, void *arg)
{
	struct signin *s = arg;
	struct job *list, *j;
	uint64_t rings;

	(void)events;
	if (read(fd, &rings, sizeof(rings)) != sizeof(rings))
		return;
	pthread_mutex_lock(&s->lock);
	list = s->finished;
	s->finished = NULL;
	s->rung = false;
	pthread_mutex_unlock(&s->lock);
	while ((j = list)) {
		list = j->next;
		s->pending--;
		finish(j);
	}
}

/* A request dropped while its job runs: the job stays, answered to no one. */
static void drop(struct http_req *req, void *arg)
{
	struct job *j = arg;

	(void)req;
	j->req = NULL;
}

struct signin *signin_new(const struct signin_config *cfg, struct loop *loop)
{
	struct signin *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->queue_tail = &s->queue;
	s->threads = calloc(cfg->workers, sizeof(*s->threads));
	pthread_mutex_init(&s->lock, NULL);
	util_cond_init_monotonic(&s->wake);
	s->bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!s->threads || s->bell < 0 ||
	    (loop && loop_fd_add(loop, s->bell, EPOLLIN, collect, s) != 0))
		goto fail;
	s->loop = loop;
	for (s->started = 0; s->started < cfg->workers; s->started++)
		if (pthread_create(&s->threads[s->started], NULL, worker, s) != 0)
			goto fail;
	return s;
fail:
	signin_free(s);
	return NULL;
}

void signin_free(struct signin *s)
{
	struct job *j;
	unsigned i;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < s->started; i++)
		pthread_join(s->threads[i], NULL);
	while ((j = s->finished)) {
		s->finished = j->next;
		finish(j);
	}
	while ((j = s->queue)) {
		s->queue = j->next;
		j->outcome = SIGNIN_ENOMEM;
		finish(j);
	}
	if (s->loop)
		loop_fd_remove(s->loop, s->bell);
	if (s->bell >= 0)
		close(s->bell);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s->threads);
	free(s);
}

/* strdup() of s, NULL staying NULL; *ok turns false when out of memory. */
static char *copy(const char *text, bool *ok)
{
	char *c = text ? strdup(text) : NULL;

	if (text && !c)
		*ok = false;
	return c;
}

bool signin_submit(struct signin *s, struct http_req *req, const char *hash,
		   const char *password, const char *new_password, int64_t turn,
		   signin_done_fn done, void *arg)
{
	struct job *j;
	bool ok = true;

	if (s->pending >= s->cfg.queue) {
		/* Logged once a minute, not per request turned away. */
		if (time(NULL) - s->full_logged >= 60) {
			s->full_logged = time(NULL);
			log_msg(LOG_LVL_WARN, "sign-in: %u password checks wait or run "
				"(server.signin_queue); more are answered 503 for now", s->pending);
		}
		return false;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return false;
	j->hash = copy(hash, &ok);
	j->password = copy(password, &ok);
	j->new_password = copy(new_password, &ok);
	if (!ok) {
		job_free(j);
		return false;
	}
	j->req = req;
	j->done = done;
	j->arg = arg;
	j->turn = turn;
	http_park(req, drop, j);
	s->pending++;
	pthread_mutex_lock(&s->lock);
	*s->queue_tail = j;
	s->queue_tail = &j->next;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return true;
}

bool signin_room(const struct signin *s)
{
	return s->pending < s->cfg.queue;
}

unsigned signin_retry_after(const struct signin *s, int64_t pace)
{
	/* Those queued go first, one per pace interval. */
	int64_t wait = (int64_t)s->pending * pace;

	return (unsigned)(wait < 1 ? 1 : wait > 3600 ? 3600 : wait);
}
