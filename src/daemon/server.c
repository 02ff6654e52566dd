/* The nhslogind socket server's event loop (doc/protocol.md): accept with SO_PEERCRED peer
 * checks, framing of what each connection sends, idle connections, parked waits woken by the flows
 * table, signals. Never trusts a byte. Costs scale with what happens, not with what is open: epoll
 * hands back the connections that are ready, one min-heap holds every deadline, and a flow's end
 * wakes only the waits parked on it. */
#include "config.h"
#include "server_int.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define SWEEP_MS          1000
#define ACCEPTS_PER_ROUND 64
#define EVENTS_PER_ROUND  256
#define TAGS_PER_TAKE     256
#define ACCEPT_PAUSE_MS   100 /* after EMFILE/ENFILE: let fds come back before accepting again */

char srv_mark_listen, srv_mark_notify, srv_mark_stop, srv_mark_signal, srv_mark_jobs;

/* Answer the complete lines c has, one at a time: not while a wait is parked or a reply is
 * still going out. */
void srv_process(struct nl_server *s, struct conn *c)
{
	char err[160];
	json_t *req;
	int r;

	while (!c->dead && !c->parked && c->job == NULL && c->outlen == 0 && c->lb.len > 0) {
		req = NULL;
		err[0] = '\0';
		if ((r = nl_linebuf_dyn_take(&c->lb, &req, err, sizeof(err))) == 0)
			break;
		c->idle_deadline = nl_mono_ms() + NL_SERVER_IDLE_MS;
		if (r < 0) {
			srv_reply_error(c, NL_EWORD_BAD_REQUEST, err[0] ? err : "not a JSON object");
			continue;
		}
		srv_dispatch(s, c, req);
		json_decref(req);
	}
}

/* Bring the server's count of buffered input up to date with c's buffer. */
static void account(struct nl_server *s, struct conn *c)
{
	s->bufbytes = s->bufbytes - c->counted + c->lb.cap;
	c->counted = c->lb.cap;
}

/* Too much input held over all connections: the one that has more than a small request's worth is
 * closed, as for an over-long line. */
static bool over_budget(const struct nl_server *s, const struct conn *c)
{
	return s->bufbytes > NL_SERVER_INPUT_BUDGET && c->lb.cap > 4 * NL_LINEBUF_MIN;
}

static void conn_read(struct nl_server *s, struct conn *c)
{
	int r = nl_linebuf_dyn_fill(&c->lb, c->fd);

	account(s, c);
	if (r == NL_ERR_TOO_BIG || over_budget(s, c)) {
		if (r == NL_ERR_TOO_BIG)
			nl_warn("connection %llu: line over %d bytes; closed", (unsigned long long)c->id,
			        NL_IPC_MAX_LINE);
		else
			nl_warn("connection %llu: over %d bytes held by all connections; closed",
			        (unsigned long long)c->id, NL_SERVER_INPUT_BUDGET);
		nl_linebuf_dyn_clear(&c->lb);
		account(s, c);
		srv_unpark(s, c);
		nl_free_secret_buf(c->out, c->outlen);
		c->out = NULL;
		c->outlen = c->outoff = 0;
		c->close_after = true;
		srv_reply_error(c, NL_EWORD_TOO_BIG, "request line over 65536 bytes");
		return;
	}
	if (r < 0) {
		c->dead = true;
		return;
	}
	srv_process(s, c);
}

/* ---- connections ---- */

static bool in_group(uid_t uid, gid_t gid, gid_t want)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	gid_t groups[256];
	int n = (int)(sizeof(groups) / sizeof(groups[0]));

	if (gid == want)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || pwp == NULL)
		return false;
	if (pw.pw_gid == want)
		return true;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return false; /* more groups than we look at: refuse rather than guess */
	for (int i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

/* 1 admin (root, or the daemon's own uid: a daemon a person runs, as the tests do, serves that
 * person), 0 allowed (socket group), -1 refused. */
static int peer_class(const struct nl_server *s, int fd, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct group gr, *grp = NULL;
	char buf[4096];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
		return -1;
	*uid = cr.uid;
	if (cr.uid == 0 || cr.uid == geteuid())
		return 1;
	if (s->ctx.cfg->socket_group == NULL)
		return -1;
	if (getgrnam_r(s->ctx.cfg->socket_group, &gr, buf, sizeof(buf), &grp) != 0 || grp == NULL)
		return -1;
	return in_group(cr.uid, cr.gid, grp->gr_gid) ? 0 : -1;
}

/* Answer a connection that will not be served with one error line, and close it. */
static void refuse(int fd, enum nl_error_word e, const char *message)
{
	char line[160];
	int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\",\"message\":\"%s\"}\n",
	                 nl_error_word(e), message);
	ssize_t sent =
	    n > 0 && (size_t)n < sizeof(line) ? send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;

	(void)sent;
	close(fd);
}

/* ---- deadlines: one min-heap of connections, keyed by the wait's or the idle deadline ---- */

static int64_t conn_deadline(const struct conn *c)
{
	return c->parked ? c->wait_deadline : c->idle_deadline;
}

static void heap_swap(struct nl_server *s, size_t i, size_t j)
{
	struct conn *t = s->heap[i];
	s->heap[i] = s->heap[j];
	s->heap[j] = t;
	s->heap[i]->heap_ix = i;
	s->heap[j]->heap_ix = j;
}

static void heap_fix(struct nl_server *s, size_t i)
{
	while (i > 0 && conn_deadline(s->heap[i]) < conn_deadline(s->heap[(i - 1) / 2])) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->heap_n && conn_deadline(s->heap[l]) < conn_deadline(s->heap[m]))
			m = l;
		if (r < s->heap_n && conn_deadline(s->heap[r]) < conn_deadline(s->heap[m]))
			m = r;
		if (m == i)
			break;
		heap_swap(s, i, m);
		i = m;
	}
}

static int heap_add(struct nl_server *s, struct conn *c)
{
	if (s->heap_n == s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
		struct conn **h = realloc(s->heap, cap * sizeof(*h));
		if (h == NULL)
			return NL_ERR_NOMEM;
		s->heap = h;
		s->heap_cap = cap;
	}
	c->heap_ix = s->heap_n;
	s->heap[s->heap_n++] = c;
	heap_fix(s, c->heap_ix);
	return 0;
}

static void heap_del(struct nl_server *s, struct conn *c)
{
	size_t i = c->heap_ix;

	if (i == NO_HEAP)
		return;
	c->heap_ix = NO_HEAP;
	if (i != --s->heap_n) {
		s->heap[i] = s->heap[s->heap_n];
		s->heap[i]->heap_ix = i;
		heap_fix(s, i);
	}
}

/* ---- connections ---- */

static void set_events(struct nl_server *s, struct conn *c, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};

	if (ev == c->events)
		return;
	if (epoll_ctl(s->ep_fd, EPOLL_CTL_MOD, c->fd, &e) != 0) {
		nl_warn("connection %llu: epoll: %s", (unsigned long long)c->id, strerror(errno));
		c->dead = true;
		return;
	}
	c->events = ev;
}

/* After anything happened to c: a dead connection goes on the list to be freed; a live one gets
 * its deadline and its epoll interest brought up to date. */
void srv_settle(struct nl_server *s, struct conn *c)
{
	uint32_t ev = 0;

	account(s, c);
	if (!c->dead) {
		/* A full buffer is not read further until a line is answered (no busy loop). */
		if (!nl_linebuf_dyn_full(&c->lb))
			ev |= EPOLLIN;
		if (c->outlen > 0)
			ev |= EPOLLOUT;
		set_events(s, c, ev);
		heap_fix(s, c->heap_ix);
	}
	if (c->dead && !c->on_dead_list) {
		heap_del(s, c);
		c->on_dead_list = true;
		c->next_dead = s->dead;
		s->dead = c;
	}
}

static void accept_some(struct nl_server *s)
{
	for (int i = 0; i < ACCEPTS_PER_ROUND; i++) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), cls;
		struct epoll_event e = {.events = EPOLLIN};
		struct conn *c;
		uid_t uid = (uid_t)-1;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* The listener stays readable: stop watching it for a moment. */
				nl_warn("accept: %s; not accepting for %d ms", strerror(errno),
				        ACCEPT_PAUSE_MS);
				e.events = 0;
				e.data.ptr = &srv_mark_listen;
				if (epoll_ctl(s->ep_fd, EPOLL_CTL_MOD, s->listen_fd, &e) == 0) {
					s->accept_paused = true;
					s->accept_resume = nl_mono_ms() + ACCEPT_PAUSE_MS;
				}
			}
			return;
		}
		if ((cls = peer_class(s, fd, &uid)) < 0) {
			nl_notice("socket peer uid %ld refused", (long)uid);
			refuse(fd, NL_EWORD_FORBIDDEN, "not allowed to use nhslogind");
			continue;
		}
		if (s->nconns >= s->max_conns) {
			/* "unavailable": the daemon is full, not the person refused (break-glass applies) */
			refuse(fd, NL_EWORD_UNAVAILABLE, "too many connections");
			continue;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			refuse(fd, NL_EWORD_INTERNAL, "out of memory");
			continue;
		}
		c->fd = fd;
		c->id = s->next_id++;
		c->uid = uid;
		c->admin = cls == 1;
		c->idle_deadline = nl_mono_ms() + NL_SERVER_IDLE_MS;
		c->events = EPOLLIN;
		c->heap_ix = NO_HEAP;
		e.data.ptr = c;
		if (heap_add(s, c) != 0 || epoll_ctl(s->ep_fd, EPOLL_CTL_ADD, fd, &e) != 0) {
			heap_del(s, c);
			free(c);
			refuse(fd, NL_EWORD_INTERNAL, "out of memory");
			continue;
		}
		c->next = s->conns;
		if (s->conns != NULL)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
	}
	__atomic_store_n(&s->nconns_public, s->nconns, __ATOMIC_RELAXED);
}

void srv_conn_free(struct nl_server *s, struct conn *c)
{
	srv_start_forget(c);
	nl_flows_cancel_owner(s->ctx.flows, c->id);
	srv_unpark(s, c);
	heap_del(s, c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	nl_free_secret_buf(c->out, c->outlen);
	nl_linebuf_dyn_clear(&c->lb);
	account(s, c);
	close(c->fd); /* also takes it out of the epoll set */
	free(c);
}

/* Free the connections that died this round. */
static void reap(struct nl_server *s)
{
	while (s->dead != NULL) {
		struct conn *c = s->dead;
		s->dead = c->next_dead;
		srv_conn_free(s, c);
	}
	__atomic_store_n(&s->nconns_public, s->nconns, __ATOMIC_RELAXED);
}

/* A parked wait's flow changed, or its time ran out: answer it if there is an answer. */
static void wake(struct nl_server *s, struct conn *c, int64_t now)
{
	uint64_t tag = 0;

	if (c->dead || !c->parked)
		return;
	if (srv_wait_check(s, c, c->wait_code, now >= c->wait_deadline, &tag)) {
		srv_unpark(s, c);
		c->idle_deadline = now + NL_SERVER_IDLE_MS;
		srv_process(s, c);
	}
	srv_settle(s, c);
}

/* The flows table says some flows ended: wake the waits parked on them (every wait if the table
 * could not keep count). */
static void wake_changed(struct nl_server *s)
{
	uint64_t tags[TAGS_PER_TAKE];
	int64_t now = nl_mono_ms();
	bool overflow = false, all = false;
	size_t n;

	do {
		n = nl_flows_take_changed(s->ctx.flows, tags, TAGS_PER_TAKE, &overflow);
		all = all || overflow;
		for (size_t i = 0; i < n && !all; i++) {
			struct conn *c = s->wait_bucket[tags[i] & (WAIT_BUCKETS - 1)], *next;
			/* Waking c may only unpark c itself; a new wait goes to a bucket's head. */
			for (; c != NULL; c = next) {
				next = c->wnext;
				if (c->wait_tag == tags[i])
					wake(s, c, now);
			}
		}
	} while (n > 0);
	if (all) {
		for (struct conn *c = s->conns; c != NULL; c = c->next)
			wake(s, c, now);
	}
}

/* Deadlines: waits that ran out, idle connections, the once-a-second sweep, the paused listener.
 * Returns the epoll timeout until the next one. */
static int timers(struct nl_server *s)
{
	int64_t now = nl_mono_ms(), next;

	if (now >= s->next_sweep) {
		nl_flows_sweep(s->ctx.flows);
		s->next_sweep = now + SWEEP_MS;
	}
	if (s->accept_paused && now >= s->accept_resume) {
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = &srv_mark_listen};
		if (epoll_ctl(s->ep_fd, EPOLL_CTL_MOD, s->listen_fd, &e) == 0)
			s->accept_paused = false;
		else
			s->accept_resume = now + ACCEPT_PAUSE_MS;
	}
	while (s->heap_n > 0 && conn_deadline(s->heap[0]) <= now) {
		struct conn *c = s->heap[0];
		if (c->dead) {
			heap_del(s, c);
			continue;
		}
		if (c->parked) {
			wake(s, c, now); /* timed out: always answered */
			continue;
		}
		/* A person is reading a code or signing in on the phone, and the module is quiet while
		 * it waits for them to press Enter: not idle. The flow's own expiry, a cancel, or the
		 * connection closing ends it, never silence. */
		if (c->job != NULL || nl_flows_owner_active(s->ctx.flows, c->id)) {
			c->idle_deadline = now + NL_SERVER_IDLE_MS;
			heap_fix(s, c->heap_ix);
			continue;
		}
		nl_debug("connection %llu idle; closed", (unsigned long long)c->id);
		c->dead = true;
		srv_settle(s, c); /* out of the heap; freed at the end of the round */
	}
	next = s->next_sweep;
	if (s->accept_paused && s->accept_resume < next)
		next = s->accept_resume;
	if (s->heap_n > 0 && conn_deadline(s->heap[0]) < next)
		next = conn_deadline(s->heap[0]);
	now = nl_mono_ms();
	return next <= now ? 0 : next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

static void drain_fd(int fd)
{
	uint64_t v;
	for (int i = 0; i < 64 && read(fd, &v, sizeof(v)) > 0; i++)
		;
}

static void read_signals(struct nl_server *s)
{
	struct signalfd_siginfo si;
	while (read(s->ctx.signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			nl_notice(
			    "SIGHUP: reload is not supported; restart nhslogind to read the configuration");
		} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			nl_notice("signal %u: stopping", si.ssi_signo);
			s->stopping = true;
		}
	}
}

/* What epoll said about connection c. */
static void conn_event(struct nl_server *s, struct conn *c, uint32_t re)
{
	if (c->dead)
		return;
	if (re & EPOLLOUT) {
		srv_flush(c);
		if (c->outlen == 0)
			srv_process(s, c);
	}
	if (re & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (nl_linebuf_dyn_full(&c->lb) && (re & (EPOLLHUP | EPOLLERR)))
			c->dead = true; /* gone, and nothing more can be read: the reply has nowhere to go */
		else if (!c->dead)
			conn_read(s, c);
	}
	srv_settle(s, c);
}

/* Stopping: every sign-in in progress ends as "restarted" (logged once each), and the waits parked
 * on them are told so before the socket closes, rather than seeing it drop. */
static void goodbye(struct nl_server *s)
{
	if (nl_flows_end_all(s->ctx.flows, NL_REASON_RESTARTED, "daemon restarted or stopped") > 0) {
		drain_fd(s->ctx.notify_fd);
		wake_changed(s);
	}
	reap(s);
}

int nl_server_run(struct nl_server *s)
{
	struct epoll_event ev[EVENTS_PER_ROUND];
	int timeout = 0, n;

	if (s == NULL)
		return NL_ERR_INTERNAL;
	s->next_sweep = nl_mono_ms() + SWEEP_MS;
	while (!s->stopping) {
		bool accept = false, changed = false;

		if ((n = epoll_wait(s->ep_fd, ev, EVENTS_PER_ROUND, timeout)) < 0) {
			if (errno != EINTR) {
				nl_err("epoll_wait: %s", strerror(errno));
				return NL_ERR_IO;
			}
			n = 0;
		}
		for (int i = 0; i < n; i++) {
			void *p = ev[i].data.ptr;
			if (p == &srv_mark_stop) {
				goodbye(s);
				return 0;
			}
			if (p == &srv_mark_signal)
				read_signals(s);
			else if (p == &srv_mark_notify)
				changed = true;
			else if (p == &srv_mark_listen)
				accept = true;
			else if (p == &srv_mark_jobs)
				srv_take_jobs(s);
			else
				conn_event(s, p, ev[i].events);
		}
		if (changed) {
			drain_fd(s->ctx.notify_fd);
			wake_changed(s);
		}
		if (accept)
			accept_some(s);
		timeout = timers(s);
		reap(s);
	}
	goodbye(s);
	return 0;
}
