/* control.c -- the agent's control socket (see control.h). */
#include "agent/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

struct conn {
	uint64_t id;
	int fd;
	uint64_t since_ms;
	bool dispatched;          /* its request was handed on */
	struct util_buf in;
	struct conn *next;
};

struct control {
	struct loop *loop;
	char *path;
	int fd;
	unsigned max, nconns;
	uint64_t next_id, sweeper;
	control_cmd_fn fn;
	void *arg;
	struct conn *conns;
};

static struct conn *find(struct control *ctl, uint64_t id, struct conn ***where)
{
	struct conn **pp;

	for (pp = &ctl->conns; *pp && (*pp)->id != id; pp = &(*pp)->next)
		;
	if (where)
		*where = pp;
	return *pp;
}

/* Forgets connection c; closes its descriptor unless keep_fd. */
static void drop(struct control *ctl, struct conn *c, bool keep_fd)
{
	struct conn **pp;

	find(ctl, c->id, &pp);
	*pp = c->next;
	loop_fd_remove(ctl->loop, c->fd);
	if (!keep_fd)
		close(c->fd);
	util_buf_free(&c->in);
	free(c);
	ctl->nconns--;
}

void control_answer(struct control *ctl, uint64_t id, json_t *answer)
{
	struct conn *c = find(ctl, id, NULL);
	char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
	size_t len;

	json_decref(answer);
	if (c && text) {
		len = strlen(text);
		text[len++] = '\n'; /* over the NUL */
		/* One short line, into an empty socket buffer: a client that
		 * does not take it loses it. */
		if (send(c->fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
			log_msg(LOG_LVL_WARN, "control: an answer could not be sent");
	}
	if (c)
		drop(ctl, c, false);
	free(text);
}

int control_take(struct control *ctl, uint64_t id)
{
	struct conn *c = find(ctl, id, NULL);
	int fd;

	if (!c)
		return -1;
	fd = c->fd;
	drop(ctl, c, true);
	return fd;
}

/* Answers an error and closes the connection. */
static void refuse(struct control *ctl, struct conn *c, const char *why)
{
	control_answer(ctl, c->id, json_pack("{ss}", "error", why));
}

/* Hands a complete request line on. */
static void dispatch(struct control *ctl, struct conn *c, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(c->in.data, len, 0, &jerr);
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	char msg[300];

	if (!json_is_object(req) || !cmd) {
		snprintf(msg, sizeof(msg), "a request is a JSON object with \"cmd\"%s%s",
			 req ? "" : ": ", req ? "" : jerr.text);
		refuse(ctl, c, msg);
	} else {
		c->dispatched = true;
		loop_fd_modify(ctl->loop, c->fd, 0); /* nothing more is read */
		ctl->fn(ctl, c->id, cmd, req, ctl->arg);
	}
	json_decref(req);
}

static void on_conn(int fd, uint32_t events, void *arg)
{
	struct control *ctl = arg;
	struct conn *c;
	char buf[4096], *nl;
	ssize_t n;

	for (c = ctl->conns; c && c->fd != fd; c = c->next)
		;
	if (!c)
		return;
	if (c->dispatched) {
		/* The client left while its answer is being made: the answer
		 * will find the connection gone. */
		if (events & (EPOLLHUP | EPOLLERR))
			drop(ctl, c, false);
		return;
	}
	n = read(fd, buf, sizeof(buf));
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		drop(ctl, c, false);
		return;
	}
	if (n < 0)
		return;
	if (util_buf_append(&c->in, buf, (size_t)n) != 0) {
		refuse(ctl, c, "out of memory");
		return;
	}
	nl = memchr(c->in.data, '\n', c->in.len);
	if (nl)
		dispatch(ctl, c, (size_t)(nl - c->in.data));
	else if (c->in.len > CONTROL_MAX_LINE)
		refuse(ctl, c, "request line too long");
}

/* Whether the peer of fd is root or this process's user. */
static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	log_msg(LOG_LVL_WARN, "control: refused a client of uid %u (pid %d): only root and "
		"the agent's user may use it", (unsigned)cred.uid, (int)cred.pid);
	return false;
}

static void on_listen(int fd, uint32_t events, void *arg)
{
	struct control *ctl = arg;
	struct conn *c;
	int cfd;

	(void)events;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	if (!peer_allowed(cfd) || ctl->nconns >= ctl->max) {
		if (ctl->nconns >= ctl->max)
			log_msg(LOG_LVL_WARN, "control: %u connections wait already; one more "
				"closed", ctl->max);
		close(cfd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || loop_fd_add(ctl->loop, cfd, EPOLLIN, on_conn, ctl) != 0) {
		free(c);
		close(cfd);
		return;
	}
	c->id = ctl->next_id++;
	c->fd = cfd;
	c->since_ms = loop_now_ms();
	c->next = ctl->conns;
	ctl->conns = c;
	ctl->nconns++;
}

/* Closes connections whose request is late (CONTROL_TIMEOUT). */
static void sweep(void *arg)
{
	struct control *ctl = arg;
	uint64_t now = loop_now_ms();
	struct conn *c, *next;

	for (c = ctl->conns; c; c = next) {
		next = c->next;
		if (!c->dispatched && now - c->since_ms > CONTROL_TIMEOUT * 1000u)
			refuse(ctl, c, "no complete request in time");
	}
}

/* Whether an agent answers at path. */
static bool answered(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool yes = fd >= 0 && connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;

	if (fd >= 0)
		close(fd);
	return yes;
}

struct control *control_new(struct loop *loop, const char *path, unsigned max_conns,
			    control_cmd_fn fn, void *arg, char *errbuf, size_t errlen)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;
	int rc;

	if (!ctl || !(ctl->path = strdup(path))) {
		free(ctl);
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	ctl->fd = -1;
	ctl->loop = loop;
	ctl->max = max_conns;
	ctl->fn = fn;
	ctl->arg = arg;
	ctl->next_id = 1;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(errbuf, errlen, "%s: too long for a socket's path (agent.state_dir)",
			 path);
		goto fail;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (answered(&sun)) {
		snprintf(errbuf, errlen, "%s: another agent runs on this state directory", path);
		goto fail;
	}
	unlink(path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0)
		goto sysfail;
	/* Made 0600 from the start: no moment when others may connect. */
	old = umask(0177);
	rc = bind(ctl->fd, (const struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc != 0 || listen(ctl->fd, 16) != 0 ||
	    loop_fd_add(loop, ctl->fd, EPOLLIN, on_listen, ctl) != 0)
		goto sysfail;
	ctl->sweeper = loop_every(loop, 1000, sweep, ctl);
	if (!ctl->sweeper) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	return ctl;
sysfail:
	snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
fail:
	if (ctl->fd >= 0) {
		loop_fd_remove(loop, ctl->fd);
		close(ctl->fd);
		unlink(path);
	}
	free(ctl->path);
	free(ctl);
	return NULL;
}

void control_free(struct control *ctl)
{
	if (!ctl)
		return;
	while (ctl->conns)
		drop(ctl, ctl->conns, false);
	loop_cancel(ctl->loop, ctl->sweeper);
	loop_fd_remove(ctl->loop, ctl->fd);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
