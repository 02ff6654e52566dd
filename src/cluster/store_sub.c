/* Wake-ups across bridge instances: a thread of its own on a connection of its own, subscribed to the
 * "ended" channel, calling the caller's function for each message. A thread rather than an fd for the
 * caller to poll: reconnecting (through the sentinels), resubscribing and the keep-alive pings then
 * live here once, and the caller's function only has to note an id and wake its own loop. */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "store_int.h"

#define SUB_PING_MS    1000 /* a PING when the connection has been quiet this long */
#define SUB_DEAD_MS    3500 /* nothing at all for this long: the connection is dead */
#define SUB_TICK_MS    100
#define SUB_BACKOFF_MS 1000 /* the longest wait between two connection attempts */

struct nl_store_sub {
	struct nl_store *st;
	nl_store_event_fn fn;
	void *arg;
	pthread_t thread;
	int wake[2]; /* written once by nl_store_sub_stop */
	char channel[96];
};

static bool stopping(struct nl_store_sub *s, int wait_ms)
{
	struct pollfd p = {.fd = s->wake[0], .events = POLLIN};
	return poll(&p, 1, wait_ms) > 0;
}

static int subscribe(struct nl_store_sub *s, redisContext **out)
{
	int64_t deadline = nl_mono_ms() + s->st->command_ms;
	const char *argv[] = {"SUBSCRIBE", s->channel};
	size_t lens[] = {9, strlen(s->channel)};
	redisContext *c = NULL;
	redisReply *rep = NULL;
	int r;

	if ((r = store_connect(s->st, deadline, &c)) != 0)
		return r;
	atomic_fetch_add(&s->st->setup_commands, 1);
	r = store_exec(c, 2, argv, lens, deadline, &rep);
	if (r == 0 &&
	    !(rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
	      rep->element[0]->type == REDIS_REPLY_STRING && strcmp(rep->element[0]->str, "subscribe") == 0))
		r = NL_ERR_INVALID;
	freeReplyObject(rep);
	if (r != 0) {
		redisFree(c);
		return r;
	}
	*out = c;
	return 0;
}

static void deliver(struct nl_store_sub *s, const redisReply *rep)
{
	char id[NL_STORE_ID_MAX + 1];
	const redisReply *m;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") != 0)
		return; /* pong and the like */
	m = rep->element[2];
	if (m->type != REDIS_REPLY_STRING || m->len == 0 || m->len > NL_STORE_ID_MAX ||
	    strspn(m->str, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != m->len)
		return;
	memcpy(id, m->str, m->len + 1);
	s->fn(s->arg, NL_STORE_ENDED, id);
}

static int send_ping(struct nl_store_sub *s, redisContext *c)
{
	int done = 0;
	if (redisAppendCommand(c, "PING") != REDIS_OK)
		return -1;
	atomic_fetch_add(&s->st->setup_commands, 1);
	while (!done)
		if (redisBufferWrite(c, &done) != REDIS_OK)
			return -1;
	return 0;
}

/* Deliver messages until the connection fails (returns false) or the caller stops (true). */
static bool listen_on(struct nl_store_sub *s, redisContext *c)
{
	int64_t last_rx = nl_mono_ms(), last_tx = last_rx;

	for (;;) {
		struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
		int64_t now;
		int n = poll(p, 2, SUB_TICK_MS);

		if (n > 0 && p[1].revents != 0)
			return true;
		now = nl_mono_ms();
		if (n > 0 && p[0].revents != 0) {
			void *rep = NULL;
			if (redisBufferRead(c) != REDIS_OK ||
			    c->reader->len - c->reader->pos > STORE_READ_MAX)
				return false;
			last_rx = now;
			while (redisGetReplyFromReader(c, &rep) == REDIS_OK && rep != NULL) {
				deliver(s, rep);
				freeReplyObject(rep);
				rep = NULL;
			}
			if (c->err != 0)
				return false;
		}
		if (now - last_rx > SUB_DEAD_MS)
			return false;
		if (now - last_rx >= SUB_PING_MS && now - last_tx >= SUB_PING_MS) {
			if (send_ping(s, c) != 0)
				return false;
			last_tx = now;
		}
	}
}

static void *sub_main(void *arg)
{
	struct nl_store_sub *s = arg;
	int backoff = 50;

	for (;;) {
		redisContext *c = NULL;
		if (subscribe(s, &c) == 0) {
			bool stop;
			backoff = 50;
			s->fn(s->arg, NL_STORE_SUBSCRIBED, NULL);
			stop = listen_on(s, c);
			redisFree(c);
			if (stop)
				break;
			nl_notice("store: wake-up subscription lost; reconnecting");
			s->fn(s->arg, NL_STORE_LOST, NULL);
		}
		if (stopping(s, backoff))
			break;
		backoff = backoff * 2 > SUB_BACKOFF_MS ? SUB_BACKOFF_MS : backoff * 2;
	}
	return NULL;
}

int nl_store_subscribe(struct nl_store *st, nl_store_event_fn fn, void *arg, struct nl_store_sub **out)
{
	struct nl_store_sub *s;

	*out = NULL;
	if (fn == NULL)
		return NL_ERR_INVALID;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NL_ERR_NOMEM;
	s->st = st;
	s->fn = fn;
	s->arg = arg;
	snprintf(s->channel, sizeof(s->channel), "%s%s", st->prefix, NL_STORE_CHANNEL);
	if (pipe(s->wake) != 0) {
		free(s);
		return NL_ERR_IO;
	}
	if (pthread_create(&s->thread, NULL, sub_main, s) != 0) {
		close(s->wake[0]);
		close(s->wake[1]);
		free(s);
		return NL_ERR_INTERNAL;
	}
	*out = s;
	return 0;
}

void nl_store_sub_stop(struct nl_store_sub *s)
{
	if (s == NULL)
		return;
	if (write(s->wake[1], "x", 1) != 1)
		nl_err("store: cannot wake the subscriber thread");
	pthread_join(s->thread, NULL);
	close(s->wake[0]);
	close(s->wake[1]);
	free(s);
}
