/* Test helper: real redis-server and redis-sentinel processes (see redisproc.h). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nl_err.h"
#include "ports.h"
#include "nl_time.h"
#include "redisproc.h"

struct redisproc {
	char dir[64];
	char conf[96];
	char sock[96];
	int port;
	bool sentinel;
	pid_t pid;
};

static const char *server_bin(void)
{
	const char *e = getenv("REDIS_SERVER");
	return e != NULL && e[0] != '\0' ? e : "/usr/bin/redis-server";
}

static const char *sentinel_bin(void)
{
	const char *e = getenv("REDIS_SENTINEL");
	return e != NULL && e[0] != '\0' ? e : "/usr/bin/redis-sentinel";
}

bool redisproc_available(const char **why)
{
	if (access(server_bin(), X_OK) == 0)
		return true;
	*why = "redis-server is not installed (apt install redis-server)";
	return false;
}

bool redisproc_sentinel_available(const char **why)
{
	if (!redisproc_available(why))
		return false;
	if (access(sentinel_bin(), X_OK) == 0)
		return true;
	*why = "redis-sentinel is not installed (apt install redis-sentinel)";
	return false;
}

/* A command on a fresh loopback connection; the reply or NULL. */
static redisReply *ask(int port, int argc, const char **argv)
{
	struct timeval tv = {0, 200000};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *rep = NULL;

	if (c != NULL && c->err == 0) {
		redisSetTimeout(c, tv);
		rep = redisCommandArgv(c, argc, argv, NULL);
	}
	if (c != NULL)
		redisFree(c);
	return rep;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int spawn(struct redisproc *rp)
{
	int64_t deadline;
	pid_t pid = fork();

	if (pid < 0)
		return NL_ERR_IO;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execl(rp->sentinel ? sentinel_bin() : server_bin(),
		      rp->sentinel ? "redis-sentinel" : "redis-server", rp->conf, (char *)NULL);
		_exit(127);
	}
	rp->pid = pid;
	deadline = nl_mono_ms() + REDISPROC_START_TIMEOUT_MS;
	while (nl_mono_ms() < deadline) {
		const char *argv[] = {"PING"};
		redisReply *rep = ask(rp->port, 1, argv);
		bool up = rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
		if (rep != NULL)
			freeReplyObject(rep);
		if (up)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			rp->pid = 0;
			return NL_ERR_CLOSED;
		}
		sleep_ms(20);
	}
	redisproc_kill(rp);
	return NL_ERR_TIMEOUT;
}

static struct redisproc *make_dir(void)
{
	struct redisproc *rp = calloc(1, sizeof(*rp));
	if (rp == NULL)
		return NULL;
	snprintf(rp->dir, sizeof(rp->dir), "/tmp/nlredis-XXXXXX");
	if (mkdtemp(rp->dir) == NULL) {
		free(rp);
		return NULL;
	}
	rp->port = test_free_port();
	return rp;
}

static int write_conf(struct redisproc *rp, const char *text)
{
	FILE *f = fopen(rp->conf, "w");
	if (f == NULL)
		return NL_ERR_IO;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : NL_ERR_IO;
}

int redisproc_start(const struct redisproc *primary, struct redisproc **out)
{
	struct redisproc *rp = make_dir();
	char text[1024], replicaof[64] = "";
	int r;

	*out = NULL;
	if (rp == NULL)
		return NL_ERR_IO;
	snprintf(rp->conf, sizeof(rp->conf), "%s/redis.conf", rp->dir);
	snprintf(rp->sock, sizeof(rp->sock), "%s/redis.sock", rp->dir);
	if (primary != NULL)
		snprintf(replicaof, sizeof(replicaof), "replicaof 127.0.0.1 %d\n", primary->port);
	snprintf(text, sizeof(text),
	         "port %d\nbind 127.0.0.1\nprotected-mode no\nunixsocket %s\nunixsocketperm 700\n"
	         "save \"\"\nappendonly no\ndaemonize no\ndir %s\nlogfile %s/redis.log\n%s",
	         rp->port, rp->sock, rp->dir, rp->dir, replicaof);
	if ((r = write_conf(rp, text)) != 0 || (r = spawn(rp)) != 0) {
		redisproc_free(rp);
		return r;
	}
	*out = rp;
	return 0;
}

int redisproc_start_sentinel(const struct redisproc *primary, const char *master_name, struct redisproc **out)
{
	struct redisproc *rp = make_dir();
	char text[1024];
	int r;

	*out = NULL;
	if (rp == NULL)
		return NL_ERR_IO;
	rp->sentinel = true;
	snprintf(rp->conf, sizeof(rp->conf), "%s/sentinel.conf", rp->dir);
	snprintf(text, sizeof(text),
	         "port %d\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir %s\nlogfile %s/sentinel.log\n"
	         "sentinel monitor %s 127.0.0.1 %d 1\n"
	         "sentinel down-after-milliseconds %s 500\n"
	         "sentinel failover-timeout %s 2000\n"
	         "sentinel parallel-syncs %s 1\n",
	         rp->port, rp->dir, rp->dir, master_name, primary->port, master_name, master_name,
	         master_name);
	if ((r = write_conf(rp, text)) != 0 || (r = spawn(rp)) != 0) {
		redisproc_free(rp);
		return r;
	}
	*out = rp;
	return 0;
}

int redisproc_port(const struct redisproc *rp)
{
	return rp->port;
}

const char *redisproc_socket(const struct redisproc *rp)
{
	return rp->sock;
}

pid_t redisproc_pid(const struct redisproc *rp)
{
	return rp->pid;
}

void redisproc_kill(struct redisproc *rp)
{
	if (rp->pid <= 0)
		return;
	kill(rp->pid, SIGCONT); /* a test may have stopped it */
	kill(rp->pid, SIGKILL);
	while (waitpid(rp->pid, NULL, 0) < 0 && errno == EINTR)
		;
	rp->pid = 0;
}

int redisproc_restart(struct redisproc *rp)
{
	redisproc_kill(rp);
	return spawn(rp);
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

void redisproc_free(struct redisproc *rp)
{
	if (rp == NULL)
		return;
	redisproc_kill(rp);
	remove_dir(rp->dir);
	free(rp);
}

bool redisproc_replica_synced(const struct redisproc *replica)
{
	const char *argv[] = {"INFO", "replication"};
	redisReply *rep = ask(replica->port, 2, argv);
	bool up = rep != NULL && rep->type == REDIS_REPLY_STRING &&
	          strstr(rep->str, "master_link_status:up") != NULL;
	if (rep != NULL)
		freeReplyObject(rep);
	return up;
}

int redisproc_sentinel_replicas(const struct redisproc *sentinel, const char *master_name)
{
	const char *argv[] = {"SENTINEL", "replicas", master_name};
	redisReply *rep = ask(sentinel->port, 3, argv);
	int n = -1;

	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY)
		n = (int)rep->elements;
	if (rep != NULL)
		freeReplyObject(rep);
	return n;
}
