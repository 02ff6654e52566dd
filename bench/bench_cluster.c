/* Benchmark 7 (issue 13): the trust-wide deployment against the local mode, in the same run.
 * Local: one nhslogind doing everything (tests/lib/harness world). Cluster: 100 agents (real
 * nhslogind, role = agent, each with its enrolled key), 2 bridges behind nginx, 1 redis-server
 * (tests/cluster/cluster_fixture). The same scripted people sign in on both: each person connects
 * to a workstation's socket, starts, parks a wait (as the module does), and their phone walks /d,
 * the confirmation page, the mock's sign-in and the callback. Measured: sign-ins per second, per
 * bridge CPU-second, Redis commands per sign-in (INFO commandstats: commands sent by the bridges,
 * and all commands run, script calls included), the time from the callback being sent to the wait
 * returning (p50, p99), each instance's peak RSS; then the cluster again with one bridge killed
 * halfway: the sign-ins whose callback came after the kill must all complete. */
#include "config.h"

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "bench_util.h"
#include "cluster_fixture.h"
#include "harness.h"
#include "nl_err.h"
#include "nl_ipc.h"
#include "nl_json.h"
#include "nl_proto.h"
#include "mockproc.h"

#define N_AGENTS 100
#define N_PEOPLE 32 /* signing in at once (threads); each a user of its own (u00..u31) */
#define WAIT_S   30

struct run {
	const char *name;
	char sockets[CLUSTER_MAX_AGENTS][108];
	int nsock;
	const char *bridge, *issuer, *cainfo;
	size_t total, next, ok, failed;
	double *lat; /* callback sent -> wait returned, ms, one a sign-in */
	size_t nlat;
	/* the kill: once `kill_after` sign-ins have completed, bridge 0 of cl is killed */
	struct cluster *cl;
	size_t kill_after;
	bool killed;
	double t_kill;
	size_t failed_after_kill; /* sign-ins whose callback was sent after the kill, and failed */
	size_t after_kill;
	pthread_mutex_t mu;
};

struct person {
	struct run *r;
	int id;
};

/* One sign-in of user at socket sock: start, park the wait, the phone, the answer. 0 if approved. */
static int sign_in(struct run *r, CURL *cu, const char *sock, const char *user, double *lat, double *t_cb)
{
	struct nl_proto_client c;
	struct nl_linebuf lb;
	json_t *reply = NULL, *req;
	char code[16] = "", dc[128] = "";
	int rc = -1, pr;

	*t_cb = 0;
	memset(&lb, 0, sizeof(lb));
	if (nl_proto_open(&c, sock, 5000, NL_PROTO_PEER_ANY) != 0)
		return -1;
	req = json_pack("{s:s,s:s,s:s}", "op", "start", "user", user, "service", "bench");
	if (nl_proto_call(&c, req, 15000, &reply) != 0 || nl_json_str(reply, "device_code") == NULL ||
	    nl_json_str(reply, "user_code") == NULL) {
		if (reply != NULL && nl_json_str(reply, "message") != NULL)
			fprintf(stderr, "bench_cluster: start refused: %s\n", nl_json_str(reply, "message"));
		goto out;
	}
	snprintf(dc, sizeof(dc), "%s", nl_json_str(reply, "device_code"));
	snprintf(code, sizeof(code), "%s", nl_json_str(reply, "user_code"));
	json_decref(reply);
	reply = NULL;
	json_decref(req);
	req = json_pack("{s:s,s:s,s:i}", "op", "wait", "device_code", dc, "timeout", WAIT_S);
	if (nl_ipc_send(c.fd, req, 5000) != 0)
		goto out;
	pr = bench_phone_signin(cu, r->bridge, r->issuer, code, user, t_cb);
	if (pr != 0)
		fprintf(stderr, "bench_cluster: %s: the phone failed for %s\n", r->name, user);
	for (int polls = 0; polls < 4; polls++) {
		if (nl_ipc_recv(c.fd, &lb, (WAIT_S + 10) * 1000, &reply) != 0)
			goto out;
		const char *st = nl_json_str(reply, "status");
		if (st != NULL && strcmp(st, "pending") == 0 && pr == 0) {
			json_decref(reply);
			reply = NULL;
			if (nl_ipc_send(c.fd, req, 5000) != 0)
				goto out;
			continue;
		}
		if (st != NULL && strcmp(st, "approved") == 0 && pr == 0) {
			*lat = bench_now_ms() - *t_cb;
			rc = 0;
		}
		break;
	}
out:
	json_decref(req);
	json_decref(reply);
	nl_linebuf_clear(&lb);
	nl_proto_close(&c);
	return rc;
}

static void *person_thread(void *arg)
{
	struct person *p = arg;
	struct run *r = p->r;
	char user[16];
	CURL *cu = bench_phone_new(r->cainfo);

	if (cu == NULL)
		return NULL;
	snprintf(user, sizeof(user), "u%02d", p->id);
	for (;;) {
		double lat = 0, t_cb = 0;
		size_t i;
		int rc;

		pthread_mutex_lock(&r->mu);
		i = r->next++;
		if (r->cl != NULL && !r->killed && r->ok + r->failed >= r->kill_after) {
			r->killed = true; /* one thread kills; the others go on meanwhile */
			pthread_mutex_unlock(&r->mu);
			cluster_kill_bridge(r->cl, 0, SIGKILL);
			pthread_mutex_lock(&r->mu);
			r->t_kill = bench_now_ms();
		}
		pthread_mutex_unlock(&r->mu);
		if (i >= r->total)
			break;
		rc = sign_in(r, cu, r->sockets[i % (size_t)r->nsock], user, &lat, &t_cb);
		pthread_mutex_lock(&r->mu);
		if (rc == 0) {
			r->ok++;
			r->lat[r->nlat++] = lat;
		} else {
			r->failed++;
		}
		if (r->killed && r->t_kill > 0 && t_cb > r->t_kill) {
			r->after_kill++;
			r->failed_after_kill += rc != 0;
		}
		pthread_mutex_unlock(&r->mu);
	}
	curl_easy_cleanup(cu);
	return NULL;
}

/* Runs r->total sign-ins with N_PEOPLE people; the wall time in *ms. */
static void drive(struct run *r, double *ms)
{
	pthread_t t[N_PEOPLE];
	struct person p[N_PEOPLE];
	int n = 0;
	double t0 = bench_now_ms();

	for (int i = 0; i < N_PEOPLE; i++) {
		p[i] = (struct person){.r = r, .id = i};
		if (pthread_create(&t[i], NULL, person_thread, &p[i]) == 0)
			n++;
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	*ms = bench_now_ms() - t0;
}

/* Seconds of CPU (user + system) pid has used. */
static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (p == NULL || (p = strrchr(buf, ')')) == NULL)
		return 0;
	/* after ") ": state(3) ... utime is field 14, stime 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* INFO commandstats of the Redis at port: every call (script calls included) in *all, and those the
 * bridges send themselves (EVALSHA, EVAL, GET, SET, PUBLISH... not the calls scripts make: those are
 * counted by the scripts' own names in Redis 7's stats only as the commands they run) in *sent,
 * approximated as the EVALSHA/EVAL/GET/SET/DEL/PING/ROLE/AUTH/SELECT/SUBSCRIBE calls. */
static int redis_calls(int port, long long *all, long long *sent)
{
	static const char *const top[] = {"evalsha", "eval", "get",    "ping",
	                                  "role",    "auth", "select", "subscribe"};
	redisContext *rc = redisConnect("127.0.0.1", port);
	redisReply *rep;
	const char *p;

	*all = *sent = 0;
	if (rc == NULL || rc->err) {
		redisFree(rc);
		return -1;
	}
	rep = redisCommand(rc, "INFO commandstats");
	if (rep == NULL || rep->type != REDIS_REPLY_STRING) {
		freeReplyObject(rep);
		redisFree(rc);
		return -1;
	}
	for (p = rep->str; (p = strstr(p, "cmdstat_")) != NULL;) {
		char name[64];
		long long calls;
		if (sscanf(p, "cmdstat_%63[^:]:calls=%lld", name, &calls) == 2) {
			*all += calls;
			for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
				if (strcmp(name, top[i]) == 0)
					*sent += calls;
		}
		p += 8;
	}
	freeReplyObject(rep);
	redisFree(rc);
	return 0;
}

static int setup_users(const char *dir, struct world *w)
{
	char users[PATH_MAX], map[PATH_MAX + 32];

	snprintf(users, sizeof(users), "%s/users.map", dir);
	if (bench_write_users(dir, users, N_PEOPLE) != 0)
		return -1;
	snprintf(map, sizeof(map), "%s/nhslogin.map", w->dir);
	return rename(users, map);
}

/* The mock's users file before it starts: bench_write_users writes it with the map. */
static char *users_json(const char *dir)
{
	char path[PATH_MAX], map[PATH_MAX], *buf = NULL;
	long n;
	FILE *f;

	snprintf(map, sizeof(map), "%s/tmp.map", dir);
	if (bench_write_users(dir, map, N_PEOPLE) != 0)
		return NULL;
	unlink(map);
	snprintf(path, sizeof(path), "%s/users.json", dir);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = calloc(1, (size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void row_latency(const char *what, struct run *r, double base_p50, double base_p99)
{
	char fig[96], note[200];
	double p50 = r->nlat ? bench_pct(r->lat, r->nlat, 0.5) : 0,
	       p99 = r->nlat ? bench_pct(r->lat, r->nlat, 0.99) : 0;

	snprintf(fig, sizeof(fig), "7 %s callback->PAM p50", what);
	snprintf(note, sizeof(note), "%zu sign-ins; baseline: local mode, same run", r->nlat);
	bench_row(fig, p50, "ms", base_p50, "(figure)", true, note);
	snprintf(fig, sizeof(fig), "7 %s callback->PAM p99", what);
	bench_row(fig, p99, "ms", base_p99, "< 1000 ms", p99 < 1000, note);
}

int main(int argc, char **argv)
{
	size_t total = argc > 1 ? (size_t)atol(argv[1]) : 10000;
	char dir[] = "/tmp/nl-bench-cl.XXXXXX", note[256], why[256] = "", *users = NULL;
	struct world_opts wo = {.daemon_extra = "max_flows_per_user = 4"};
	struct cluster_opts co = {
	    .bridges = 2, .extra_agents = N_AGENTS - 1, .daemon_extra = "max_flows_per_user = 4"};
	struct world *w = NULL;
	struct cluster *cl = NULL;
	struct run local = {.name = "local", .mu = PTHREAD_MUTEX_INITIALIZER};
	struct run clus = {.name = "cluster", .mu = PTHREAD_MUTEX_INITIALIZER};
	struct run kill = {.name = "cluster, a bridge killed", .mu = PTHREAD_MUTEX_INITIALIZER};
	double ms_local = 0, ms_clus = 0, ms_kill = 0, cpu0[2], cpu1[2];
	long long all0, sent0, all1, sent1;
	struct rlimit rl;
	int rc = 1;

	if (total < 100 || total > 100000)
		return 2;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (mkdtemp(dir) == NULL || (users = users_json(dir)) == NULL)
		goto out;
	wo.mock_users = users;
	co.mock_users = users;
	local.lat = calloc(total, sizeof(double));
	clus.lat = calloc(total, sizeof(double));
	kill.lat = calloc(total, sizeof(double));
	if (local.lat == NULL || clus.lat == NULL || kill.lat == NULL)
		goto out;

	/* Local mode: the baseline, in this run. */
	if (world_start(&wo, &w) != 0 || setup_users(dir, w) != 0) {
		fprintf(stderr, "bench_cluster: cannot start the local world\n");
		goto out;
	}
	snprintf(local.sockets[0], sizeof(local.sockets[0]), "%s", w->socket);
	local.nsock = 1;
	local.bridge = w->bridge;
	local.issuer = mockproc_issuer(w->mock);
	local.total = total;
	drive(&local, &ms_local);
	long local_hwm = bench_proc_kib(w->daemon, "VmHWM");
	world_stop(w);
	w = NULL;

	/* The cluster. */
	if (cluster_start(&co, &cl, why, sizeof(why)) != 0 || cl == NULL) {
		fprintf(stderr, "bench_cluster: cannot start the cluster%s%s\n", why[0] ? ": " : "", why);
		goto out;
	}
	if (setup_users(dir, cl->w) != 0)
		goto out;
	for (int k = 0; k < cl->na; k++)
		snprintf(clus.sockets[k], sizeof(clus.sockets[k]), "%s", cl->a[k].socket);
	clus.nsock = cl->na;
	clus.bridge = cl->url;
	clus.issuer = mockproc_issuer(cl->w->mock);
	clus.cainfo = cl->cert;
	clus.total = total;
	for (int i = 0; i < 2; i++)
		cpu0[i] = proc_cpu_s(cl->b[i].pid);
	redis_calls(redisproc_port(cl->redis), &all0, &sent0);
	drive(&clus, &ms_clus);
	redis_calls(redisproc_port(cl->redis), &all1, &sent1);
	for (int i = 0; i < 2; i++)
		cpu1[i] = proc_cpu_s(cl->b[i].pid);
	long hwm_b0 = bench_proc_kib(cl->b[0].pid, "VmHWM"), hwm_b1 = bench_proc_kib(cl->b[1].pid, "VmHWM");
	long hwm_agent = bench_proc_kib(cl->a[0].pid, "VmHWM");

	double rate_local = (double)local.ok / (ms_local / 1000.0),
	       rate_clus = (double)clus.ok / (ms_clus / 1000.0);
	double bridge_cpu = (cpu1[0] - cpu0[0]) + (cpu1[1] - cpu0[1]);
	snprintf(note, sizeof(note),
	         "%zu of %zu approved (local %zu of %zu), %d people at once, %d agents, 2 bridges", clus.ok,
	         total, local.ok, total, N_PEOPLE, cl->na);
	bench_row("7 cluster sign-ins per second", rate_clus, "/s", rate_local, "(figure)", clus.ok == total,
	          note);
	snprintf(note, sizeof(note), "%.1f bridge CPU-s for %zu sign-ins (%.1f + %.1f)", bridge_cpu, clus.ok,
	         cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]);
	bench_row("7 sign-ins per bridge CPU-second", bridge_cpu > 0 ? (double)clus.ok / bridge_cpu : 0, "/s",
	          -1, "(figure)", true, note);
	snprintf(note, sizeof(note),
	         "sent by the bridges (EVALSHA, GET, PING...); baseline: the minimum, 5 "
	         "(doc/store.md)");
	bench_row("7 Redis commands sent per sign-in",
	          clus.ok ? (double)(sent1 - sent0) / (double)clus.ok : 0, "", 5, "(figure)", true, note);
	snprintf(note, sizeof(note), "every command Redis ran, the scripts' own calls included");
	bench_row("7 Redis commands run per sign-in", clus.ok ? (double)(all1 - all0) / (double)clus.ok : 0,
	          "", -1, "(figure)", true, note);
	row_latency("cluster", &clus, local.nlat ? bench_pct(local.lat, local.nlat, 0.5) : 0,
	            local.nlat ? bench_pct(local.lat, local.nlat, 0.99) : 0);
	snprintf(note, sizeof(note),
	         "VmHWM: bridge 1 %.1f MiB, bridge 2 %.1f MiB, agent 1 %.1f MiB; baseline: local "
	         "nhslogind",
	         hwm_b0 / 1024.0, hwm_b1 / 1024.0, hwm_agent / 1024.0);
	bench_row("7 peak RSS per bridge", (double)(hwm_b0 > hwm_b1 ? hwm_b0 : hwm_b1) / 1024.0, "MiB",
	          (double)local_hwm / 1024.0, "(figure)", true, note);

	/* The same with bridge 1 killed halfway. */
	memcpy(kill.sockets, clus.sockets, sizeof(kill.sockets));
	kill.nsock = clus.nsock;
	kill.bridge = clus.bridge;
	kill.issuer = clus.issuer;
	kill.cainfo = clus.cainfo;
	kill.total = total;
	kill.cl = cl;
	kill.kill_after = total / 2;
	drive(&kill, &ms_kill);
	snprintf(note, sizeof(note),
	         "%zu of %zu approved in all; of the %zu whose callback came after the kill, %zu failed",
	         kill.ok, total, kill.after_kill, kill.failed_after_kill);
	bench_row("7 flows lost, a bridge killed halfway", (double)kill.failed_after_kill, "", -1, "0",
	          kill.failed_after_kill == 0, note);
	rc = clus.ok == total && kill.failed_after_kill == 0 ? 0 : 1;
out:
	world_stop(w);
	cluster_stop(cl);
	free(local.lat);
	free(clus.lat);
	free(kill.lat);
	free(users);
	{
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/users.json", dir);
		unlink(path);
		rmdir(dir);
	}
	curl_global_cleanup();
	return rc;
}
