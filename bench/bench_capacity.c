/* Benchmarks 4 and 6 (flows): 10,000 flows in progress against the real nhslogind, each with a
 * client long-polling on the socket; the daemon's RSS and the round trip of `status` meanwhile;
 * then every flow completed through the bridge (phone threads against /d and nhslogin-mock). */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_util.h"
#include "harness.h"
#include "nl_err.h"
#include "nl_ipc.h"
#include "nl_json.h"
#include "nl_proto.h"
#include "nl_wipe.h"
#include "mockproc.h"

#define N_USERS  100 /* max_flows_per_user is at most 100: flows spread over this many accounts */
#define N_PHONES 16  /* phone threads (the bridge allows 32 connections per address) */
#define N_STATUS 300 /* status round trips per sample */
#define WAIT_S   60  /* each client's long-poll */

struct client {
	int fd;
	char device_code[128];
	char user_code[16];
	int user;
	int outcome; /* 0 pending, 1 approved, -1 other */
	struct nl_linebuf *lb;
};

/* One request on an open connection with the daemon client, answered within timeout_ms. */
static int call_fd(int fd, json_t *req, int timeout_ms, json_t **reply)
{
	struct nl_proto_client c = {.fd = fd, .peer = (uid_t)-1};
	int r = req != NULL ? nl_proto_call(&c, req, timeout_ms, reply) : NL_ERR_NOMEM;

	json_decref(req);
	return r;
}

/* status round trips on one connection: sorted latencies into v. */
static int status_sample(struct world *w, double *v, size_t n)
{
	struct nl_proto_client c;
	int r;

	if ((r = nl_proto_open(&c, w->socket, 5000, NL_PROTO_PEER_ANY)) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_t *reply = NULL;
		double t0 = bench_now_ms();
		if ((r = call_fd(c.fd, json_pack("{s:s}", "op", "status"), 10000, &reply)) != 0)
			goto out;
		v[i] = bench_now_ms() - t0;
		json_decref(reply);
		usleep(2000);
	}
	r = 0;
out:
	nl_proto_close(&c);
	return r;
}

/* Open, start a flow, park a wait: the clients. */
static int open_clients(struct world *w, struct client *c, size_t n, size_t *opened)
{
	for (size_t i = 0; i < n; i++) {
		struct nl_proto_client pc;
		if (nl_proto_open(&pc, w->socket, 5000, NL_PROTO_PEER_ANY) != 0) {
			fprintf(stderr, "bench_capacity: connect %zu: %s\n", i, strerror(errno));
			return -1;
		}
		c[i].fd = pc.fd;
		*opened = i + 1;
	}
	return 0;
}

/* Start a flow and park a wait on each client; returns how many started. A client the daemon
 * refuses (connection limit) is closed and left out. */
static size_t start_flows(struct client *c, size_t n)
{
	char user[16];
	size_t started = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *reply = NULL;
		const char *dc, *uc;
		snprintf(user, sizeof(user), "u%02d", c[i].user);
		json_t *req = json_pack("{s:s,s:s,s:s}", "op", "start", "user", user, "service", "bench");
		if (call_fd(c[i].fd, req, 10000, &reply) != 0 ||
		    (dc = nl_json_str(reply, "device_code")) == NULL ||
		    (uc = nl_json_str(reply, "user_code")) == NULL) {
			if (started == i)
				fprintf(stderr, "bench_capacity: start %zu failed: %s\n", i,
				        reply ? nl_json_str(reply, "message") ?: "?" : "no reply");
			json_decref(reply);
			close(c[i].fd);
			c[i].fd = -1;
			c[i].outcome = -2; /* never started */
			continue;
		}
		snprintf(c[i].device_code, sizeof(c[i].device_code), "%s", dc);
		snprintf(c[i].user_code, sizeof(c[i].user_code), "%s", uc);
		json_decref(reply);
		json_t *wreq = json_pack("{s:s,s:s,s:i}", "op", "wait", "device_code", c[i].device_code,
		                         "timeout", WAIT_S);
		int r = nl_ipc_send(c[i].fd, wreq, 10000);
		json_decref(wreq);
		if (r == 0)
			started++;
	}
	return started;
}

/* Collect wait replies until every client has an outcome or the deadline passes. Thousands of
 * long-polls at once, multiplexed with poll: the framing (nl_ipc.h) directly, each client with its
 * own line buffer, rather than the one-request-at-a-time client. */
static size_t collect(struct client *c, size_t n, double deadline_ms, double *t_last)
{
	struct pollfd *p = calloc(n, sizeof(*p));
	size_t done = 0, approved = 0;
	if (p == NULL)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (c[i].outcome != 0)
			done++;
	while (done < n && bench_now_ms() < deadline_ms) {
		for (size_t i = 0; i < n; i++)
			p[i] = (struct pollfd){.fd = c[i].outcome == 0 ? c[i].fd : -1, .events = POLLIN};
		if (poll(p, n, 200) <= 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			json_t *reply = NULL;
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (nl_ipc_recv(c[i].fd, c[i].lb, 0, &reply) != 0)
				continue;
			const char *st = nl_json_str(reply, "status");
			if (st != NULL && strcmp(st, "pending") == 0) {
				/* a long-poll ran out: wait again */
				json_t *wreq = json_pack("{s:s,s:s,s:i}", "op", "wait", "device_code",
				                         c[i].device_code, "timeout", WAIT_S);
				nl_ipc_send(c[i].fd, wreq, 1000);
				json_decref(wreq);
			} else {
				c[i].outcome = st != NULL && strcmp(st, "approved") == 0 ? 1 : -1;
				*t_last = bench_now_ms();
				done++;
			}
			json_decref(reply);
		}
	}
	for (size_t i = 0; i < n; i++)
		approved += c[i].outcome == 1;
	free(p);
	return approved;
}

struct phones {
	struct world *w;
	struct client *c;
	size_t n, next, failed, tried;
	double stop_at; /* no new sign-in after this (the time budget) */
	pthread_mutex_t mu;
};

static void *phone_thread(void *arg)
{
	struct phones *ph = arg;
	char user[16];
	CURL *cu = bench_phone_new(NULL);
	if (cu == NULL)
		return NULL;
	for (;;) {
		size_t i;
		pthread_mutex_lock(&ph->mu);
		i = ph->next++;
		pthread_mutex_unlock(&ph->mu);
		if (i >= ph->n || bench_now_ms() > ph->stop_at)
			break;
		if (ph->c[i].outcome != 0)
			continue;
		snprintf(user, sizeof(user), "u%02d", ph->c[i].user);
		int r = bench_phone_signin(cu, ph->w->bridge, mockproc_issuer(ph->w->mock),
		                           ph->c[i].user_code, user, NULL);
		pthread_mutex_lock(&ph->mu);
		ph->tried++;
		if (r != 0)
			ph->failed++;
		pthread_mutex_unlock(&ph->mu);
	}
	curl_easy_cleanup(cu);
	return NULL;
}

/* Complete the flows of c through the bridge with N_PHONES phones, starting no sign-in after
 * budget_ms; returns approvals, *ms the time from the first phone to the last outcome read. */
static size_t complete_all(struct world *w, struct client *c, size_t n, double budget_ms, double *ms,
                           size_t *failed, size_t *tried)
{
	struct phones ph = {.w = w, .c = c, .n = n, .mu = PTHREAD_MUTEX_INITIALIZER};
	pthread_t t[N_PHONES];
	int started = 0;
	double t0 = bench_now_ms(), t_last = t0;
	size_t approved;

	ph.stop_at = t0 + budget_ms;
	for (int i = 0; i < N_PHONES; i++)
		if (pthread_create(&t[i], NULL, phone_thread, &ph) == 0)
			started++;
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	approved = collect(c, n, bench_now_ms() + 15000, &t_last);
	*ms = t_last - t0;
	*failed = ph.failed;
	*tried = ph.tried;
	return approved;
}

static void close_clients(struct client *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (c[i].fd >= 0)
			close(c[i].fd);
		c[i].fd = -1;
		nl_wipe(c[i].device_code, sizeof(c[i].device_code));
	}
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? (size_t)atol(argv[1]) : 10000, n_small = 100, opened = 0;
	char statedir[] = "/tmp/nl-bench-mock.XXXXXX", mapfile[PATH_MAX + 32], note[200];
	const char *margs[8] = {"--state-dir", statedir, NULL};
	struct world_opts o = {.daemon_extra = "max_flows = 20000\nmax_flows_per_user = 100\nwait_max = 60"};
	struct world *w = NULL;
	struct client *c = NULL, *small = NULL;
	struct rlimit rl;
	double *st = NULL, ms_small = 0, ms_big = 0;
	long rss0, rss_conn, rss_flows, hwm;
	size_t failed = 0, tried = 0, ok;
	double budget_s = getenv("NL_BENCH_BUDGET") != NULL ? atof(getenv("NL_BENCH_BUDGET")) : 150;
	int rc = 1;

	memcpy(o.mock_args, margs, sizeof(margs));
	if (n < 100 || n > 15000)
		return 2;
	/* Room for n client sockets here (the daemon inherits the same limit). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < n + n_small + 200) {
		fprintf(stderr, "bench_capacity: RLIMIT_NOFILE %ld is too low for %zu clients\n",
		        (long)rl.rlim_cur, n);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (mkdtemp(statedir) == NULL || chmod(statedir, 0755) != 0)
		return 1;
	/* The map file is written into the world's dir after it starts (the daemon re-reads it). */
	char umap[PATH_MAX + 32];
	snprintf(umap, sizeof(umap), "%s/users.map", statedir);
	if (bench_write_users(statedir, umap, N_USERS) != 0 || world_start(&o, &w) != 0) {
		fprintf(stderr, "bench_capacity: cannot start the world\n");
		goto out;
	}
	snprintf(mapfile, sizeof(mapfile), "%s/nhslogin.map", w->dir);
	if (rename(umap, mapfile) != 0)
		goto out;
	if ((st = calloc(N_STATUS, sizeof(*st))) == NULL || (c = calloc(n, sizeof(*c))) == NULL ||
	    (small = calloc(n_small, sizeof(*small))) == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		c[i].fd = -1;
		c[i].user = (int)(i % N_USERS);
		if ((c[i].lb = calloc(1, sizeof(*c[i].lb))) == NULL)
			goto out;
	}
	for (size_t i = 0; i < n_small; i++) {
		small[i].fd = -1;
		small[i].user = (int)(i % N_USERS);
		if ((small[i].lb = calloc(1, sizeof(*small[i].lb))) == NULL)
			goto out;
	}

	/* Baselines on the idle daemon: a warm-up sign-in batch (caches loaded), status round trips,
	 * and the time 100 flows take to complete. */
	if (open_clients(w, small, n_small, &opened) != 0 || start_flows(small, n_small) != n_small)
		goto out;
	ok = complete_all(w, small, n_small, 60000, &ms_small, &failed, &tried);
	close_clients(small, n_small);
	if (ok != n_small) {
		fprintf(stderr, "bench_capacity: warm-up: %zu of %zu approved (%zu phone failures)\n", ok,
		        n_small, failed);
		goto out;
	}
	usleep(300000);
	if (status_sample(w, st, N_STATUS) != 0)
		goto out;
	double idle_p99 = bench_pct(st, N_STATUS, 0.99);
	rss0 = bench_proc_kib(w->daemon, "VmRSS");

	/* n connections, then n flows each with a parked wait. */
	double t0 = bench_now_ms();
	if (open_clients(w, c, n, &opened) != 0)
		goto out;
	usleep(300000);
	rss_conn = bench_proc_kib(w->daemon, "VmRSS");
	size_t held = start_flows(c, n);
	double t_started = bench_now_ms() - t0;
	usleep(500000);
	rss_flows = bench_proc_kib(w->daemon, "VmRSS");
	if (status_sample(w, st, N_STATUS) != 0)
		goto out;
	double busy_p99 = bench_pct(st, N_STATUS, 0.99), busy_p50 = bench_pct(st, N_STATUS, 0.5);

	/* Every flow completed through the bridge. */
	failed = 0;
	ok = complete_all(w, c, n, budget_s * 1000.0, &ms_big, &failed, &tried);
	hwm = bench_proc_kib(w->daemon, "VmHWM");

	snprintf(note, sizeof(note), "VmHWM of nhslogind, %zu of %zu flows held; baseline: VmRSS idle", held,
	         n);
	bench_row("4 daemon peak RSS, 10k flows", (double)hwm / 1024.0, "MiB", (double)rss0 / 1024.0,
	          "< 64 MiB", hwm < 64 * 1024 && held == n, note);
	snprintf(note, sizeof(note), "%zu waits parked (median %.3g ms); baseline: the idle daemon", held,
	         busy_p50);
	bench_row("4 status p99 during 10k flows", busy_p99, "ms", idle_p99, "< 5 ms",
	          busy_p99 < 5.0 && held == n, note);
	/* Time per completed flow under load against per flow with 100 on an idle daemon. */
	double per_big = ok > 0 ? ms_big / (double)ok : 0, per_small = ms_small / (double)n_small;
	snprintf(note, sizeof(note),
	         "%zu of %zu approved in %.1f s (%zu tried, %zu phone errors, budget %.0f s), %d phones; "
	         "ms per flow vs 100 on an idle daemon",
	         ok, n, ms_big / 1000.0, tried, failed, budget_s, N_PHONES);
	bench_row("4 complete 10k flows via bridge", per_big, "ms/flow", per_small, "all complete", ok == n,
	          note);
	snprintf(note, sizeof(note),
	         "RSS delta / flows; baseline: per idle connection (%zu connect+start+wait: %.1f s)", held,
	         t_started / 1000.0);
	bench_row("6 memory per flow", held > 0 ? (double)(rss_flows - rss_conn) * 1024.0 / (double)held : 0,
	          "B", (double)(rss_conn - rss0) * 1024.0 / (double)n, "(figure)", true, note);
	rc = ok == n ? 0 : 1;
out:
	if (c != NULL) {
		close_clients(c, n);
		for (size_t i = 0; i < n; i++)
			free(c[i].lb);
	}
	if (small != NULL) {
		close_clients(small, n_small);
		for (size_t i = 0; i < n_small; i++)
			free(small[i].lb);
	}
	free(c);
	free(small);
	free(st);
	world_stop(w);
	snprintf(mapfile, sizeof(mapfile), "%s/users.json", statedir);
	unlink(mapfile);
	unlink(umap);
	rmdir(statedir);
	curl_global_cleanup();
	return rc;
}
