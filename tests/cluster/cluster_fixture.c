/* The trust-wide deployment for the tests (cluster_fixture.h). */
#include "config.h"
#include "cluster_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostauth.h"
#include "mockproc.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "ports.h"
#include "testsrv.h"

#define SENTINEL_READY_MS 30000 /* a hang bound */

/* A workstation: its own key in dir (0700), its public key enrolled as hosts/NAME.pem. */
static int enrol_agent(struct cluster *c, const char *name, const char *dir, char *key_path, size_t keylen)
{
	char err[256], pub_path[160];
	cjose_jwk_t *jwk = NULL;
	char *pem = NULL;
	bool created;
	int r;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return NL_ERR_IO;
	snprintf(key_path, keylen, "%s/host.key", dir);
	if ((r = nl_hostauth_key_create(key_path, false, &created, err, sizeof(err))) != 0 ||
	    (r = nl_hostauth_key_load(key_path, &jwk, err, sizeof(err))) != 0) {
		fprintf(stderr, "# cluster: %s\n", err);
		return r;
	}
	r = NL_ERR_NOMEM;
	if ((pem = nl_jwk_public_pem(jwk)) != NULL) {
		snprintf(pub_path, sizeof(pub_path), "%s/%s.pem", c->hosts, name);
		r = test_write_file(pub_path, 0644, pem);
	}
	free(pem);
	cjose_jwk_release(jwk);
	return r;
}

static const char *store_lines(const struct cluster *c, const struct cluster_opts *o, char *buf, size_t len)
{
	char timeout[64] = "";

	if (o->store_timeout_ms > 0)
		snprintf(timeout, sizeof(timeout), "timeout_ms = %u\n", o->store_timeout_ms);
	if (c->sentinel != NULL)
		snprintf(buf, len, "[store]\nsentinels = 127.0.0.1:%d\nmaster = %s\nindex_key_file = %s\n%s",
		         redisproc_port(c->sentinel), CLUSTER_MASTER, c->index_key, timeout);
	else
		snprintf(buf, len, "[store]\nurl = redis://127.0.0.1:%d\nindex_key_file = %s\n%s",
		         redisproc_port(c->redis), c->index_key, timeout);
	return buf;
}

static int start_bridge(struct cluster *c, const struct cluster_opts *o, int i)
{
	struct cluster_bridge *b = &c->b[i];
	char dir[96], text[4096], store[512];

	snprintf(dir, sizeof(dir), "%s/b%d", c->dir, i + 1);
	if (mkdir(dir, 0755) != 0)
		return NL_ERR_IO;
	if ((b->port = test_free_port()) <= 0)
		return NL_ERR_IO;
	snprintf(b->conf, sizeof(b->conf), "%s/nhslogin.conf", dir);
	snprintf(b->log, sizeof(b->log), "%s/daemon.log", dir);
	snprintf(b->socket, sizeof(b->socket), "%.60s/run/nhslogind.sock", dir);
	snprintf(text, sizeof(text),
	         "environment = local\nenvironments_dir = %s/environments\n"
	         "[daemon]\nrole = bridge\nsocket = %s\nstate_dir = %s/state\ncache_dir = %s/cache\n%s\n"
	         "[bridge]\nlisten = 127.0.0.1:%d\npublic_url = %s\ntrusted_proxies = 127.0.0.1/32\n"
	         "hosts_dir = %s\n"
	         "[identity]\nclaim = nhs_number\nmap_file = %s/nhslogin.map\nmin_level = P9\n%s\n%s\n",
	         c->w->dir, b->socket, dir, dir, o->daemon_extra ? o->daemon_extra : "", b->port, c->url,
	         c->hosts, c->w->dir, store_lines(c, o, store, sizeof(store)), o->policy ? o->policy : "");
	if (test_write_file(b->conf, 0644, text) != 0)
		return NL_ERR_IO;
	return harness_spawn_daemon(b->conf, b->log, &b->pid);
}

/* Agent k >= 1 (not a PAM world): its own key, socket and state, the world's environment and map. */
static int start_extra_agent(struct cluster *c, const struct cluster_opts *o, int k)
{
	struct cluster_agent *a = &c->a[k];
	char dir[96], key[128], text[4096];
	int r;

	snprintf(a->name, sizeof(a->name), "ws%d", k + 1);
	snprintf(dir, sizeof(dir), "%s/a%d", c->dir, k + 1);
	if ((r = enrol_agent(c, a->name, dir, key, sizeof(key))) != 0)
		return r;
	snprintf(a->conf, sizeof(a->conf), "%s/nhslogin.conf", dir);
	snprintf(a->log, sizeof(a->log), "%s/daemon.log", dir);
	snprintf(a->socket, sizeof(a->socket), "%.60s/run/nhslogind.sock", dir);
	snprintf(text, sizeof(text),
	         "environment = local\nenvironments_dir = %s/environments\n"
	         "[daemon]\nrole = agent\nsocket = %s\nstate_dir = %s/state\ncache_dir = %s/cache\n%s\n"
	         "[agent]\nbridge_url = %s\nname = %s\nhost_key = %s\nca_file = %s\n"
	         "[identity]\nclaim = nhs_number\nmap_file = %s/nhslogin.map\nmin_level = P9\n%s\n",
	         c->w->dir, a->socket, dir, dir, o->daemon_extra ? o->daemon_extra : "", c->url, a->name, key,
	         c->cert, c->w->dir, o->policy ? o->policy : "");
	if (test_write_file(a->conf, 0644, text) != 0)
		return NL_ERR_IO;
	return harness_spawn_daemon(a->conf, a->log, &a->pid);
}

static int start_redis(struct cluster *c, const struct cluster_opts *o)
{
	int64_t deadline;

	if (redisproc_start(NULL, &c->redis) != 0)
		return NL_ERR_IO;
	if (!o->sentinel)
		return 0;
	if (redisproc_start(c->redis, &c->replica) != 0 ||
	    redisproc_start_sentinel(c->redis, CLUSTER_MASTER, &c->sentinel) != 0)
		return NL_ERR_IO;
	deadline = nl_mono_ms() + (int64_t)SENTINEL_READY_MS * mockproc_timeout_scale();
	while (nl_mono_ms() < deadline) {
		if (redisproc_replica_synced(c->replica) &&
		    redisproc_sentinel_replicas(c->sentinel, CLUSTER_MASTER) >= 1)
			return 0;
		usleep(50000);
	}
	fprintf(stderr, "# cluster: the sentinel did not see the replica in time\n");
	return NL_ERR_TIMEOUT;
}

/* The README's nginx block for the bridges, as written, with this cluster's ports and files. */
static int start_lb(struct cluster *c)
{
	char servers[512] = "", listen[64];
	char *site = lbproc_readme_block("    # nginx, in front of the bridges\n", "\n");
	size_t n = 0;
	int r = NL_ERR_INVALID;

	if (site == NULL) {
		fprintf(stderr, "# README.md has no block after \"    # nginx, in front of the bridges\"\n");
		return NL_ERR_INVALID;
	}
	for (int i = 0; i < c->nb; i++)
		n +=
		    (size_t)snprintf(servers + n, sizeof(servers) - n,
		                     "    server 127.0.0.1:%d max_fails=1 fail_timeout=10s;\n", c->b[i].port);
	snprintf(listen, sizeof(listen), "listen 127.0.0.1:%d ssl http2;", c->lb_port);
	if (!lbproc_replace(&site,
	                    "    server 10.20.0.11:8765 max_fails=1 fail_timeout=10s;\n"
	                    "    server 10.20.0.12:8765 max_fails=1 fail_timeout=10s;\n",
	                    servers) ||
	    !lbproc_replace(&site, "listen 443 ssl http2;", listen) ||
	    !lbproc_replace(&site, "/etc/ssl/signin.example.trust.nhs.uk.pem", c->cert) ||
	    !lbproc_replace(&site, "/etc/ssl/private/signin.example.trust.nhs.uk.key", c->cert_key) ||
	    !lbproc_replace(&site, "allow 10.0.0.0/8;", "allow 127.0.0.0/8;")) {
		fprintf(stderr,
		        "# the README's nginx block for the bridges has changed shape: update "
		        "tests/cluster/cluster_fixture.c\n%s",
		        site);
		goto out;
	}
	r = lbproc_start(site, (unsigned short)c->lb_port, &c->lb) == 0 ? 0 : NL_ERR_IO;
out:
	free(site);
	return r;
}

/* The certificate nginx serves (self-signed for 127.0.0.1): the agents' ca_file and the phone's. */
static int make_cert(struct cluster *c)
{
	char *cert = NULL, *key = NULL;
	int r = NL_ERR_IO;

	snprintf(c->cert, sizeof(c->cert), "%s/lb-cert.pem", c->dir);
	snprintf(c->cert_key, sizeof(c->cert_key), "%s/lb-key.pem", c->dir);
	if (testsrv_selfsigned("127.0.0.1", &cert, &key) == 0 && test_write_file(c->cert, 0644, cert) == 0 &&
	    test_write_file(c->cert_key, 0600, key) == 0)
		r = 0;
	free(cert);
	if (key != NULL)
		nl_free_secret(key);
	return r;
}

static int start_agent_world(struct cluster *c, const struct cluster_opts *o)
{
	char daemon_extra[1024], main_extra[2048], redirect[128], key[128], dir[96];
	struct world_opts wo;
	int r;

	snprintf(dir, sizeof(dir), "%s/a1", c->dir);
	snprintf(c->a[0].name, sizeof(c->a[0].name), "ws1");
	if ((r = enrol_agent(c, "ws1", dir, key, sizeof(key))) != 0)
		return r;
	memset(&wo, 0, sizeof(wo));
	snprintf(daemon_extra, sizeof(daemon_extra), "role = agent\n%s",
	         o->daemon_extra ? o->daemon_extra : "");
	snprintf(main_extra, sizeof(main_extra),
	         "[agent]\nbridge_url = %s\nname = ws1\nhost_key = %s\nca_file = %s\n%s", c->url, key,
	         c->cert, o->policy ? o->policy : "");
	snprintf(redirect, sizeof(redirect), "%s/nhslogin/callback", c->url);
	wo.daemon_extra = daemon_extra;
	wo.main_extra = main_extra;
	wo.redirect_uri = redirect;
	wo.env_extra = o->agent_env;
	wo.mock_users = o->mock_users;
	if ((r = world_start(&wo, &c->w)) != 0)
		return r;
	/* the phone goes where the agent sent it: nginx in front of the bridges */
	snprintf(c->w->bridge, sizeof(c->w->bridge), "%s", c->url);
	snprintf(c->a[0].conf, sizeof(c->a[0].conf), "%s", c->w->conf);
	snprintf(c->a[0].log, sizeof(c->a[0].log), "%s/daemon.log", c->w->dir);
	snprintf(c->a[0].socket, sizeof(c->a[0].socket), "%s", c->w->socket);
	c->a[0].pid = c->w->daemon;
	return 0;
}

int cluster_start(const struct cluster_opts *o, struct cluster **out, char *why, size_t whylen)
{
	static const struct cluster_opts none;
	struct cluster *c;
	unsigned char ikey[32];
	const char *missing = NULL;
	int r = NL_ERR_IO;

	*out = NULL;
	if (o == NULL)
		o = &none;
	if (!redisproc_available(&missing) || (o->sentinel && !redisproc_sentinel_available(&missing)) ||
	    (lbproc_nginx() == NULL &&
	     (missing = "nginx is not installed (apt-get install nginx)") != NULL) ||
	    (!testsrv_tls_supported() && access("/usr/bin/openssl", X_OK) != 0 &&
	     (missing = "no way to make a certificate for nginx") != NULL)) {
		snprintf(why, whylen, "%s", missing);
		return 0;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NL_ERR_NOMEM;
	c->nb = o->bridges > 0 && o->bridges <= CLUSTER_MAX_BRIDGES ? o->bridges : 2;
	snprintf(c->dir, sizeof(c->dir), "/tmp/nl-cluster.XXXXXX");
	if (mkdtemp(c->dir) == NULL || chmod(c->dir, 0755) != 0)
		goto fail;
	snprintf(c->hosts, sizeof(c->hosts), "%s/hosts", c->dir);
	snprintf(c->index_key, sizeof(c->index_key), "%s/index.key", c->dir);
	if (mkdir(c->hosts, 0755) != 0 || RAND_bytes(ikey, sizeof(ikey)) != 1 ||
	    test_write_data(c->index_key, 0600, ikey, sizeof(ikey)) != 0)
		goto fail;
	nl_wipe(ikey, sizeof(ikey));
	if ((c->lb_port = test_free_port()) <= 0)
		goto fail;
	snprintf(c->url, sizeof(c->url), "https://127.0.0.1:%d", c->lb_port);
	if ((r = make_cert(c)) != 0 || (r = start_redis(c, o)) != 0 || (r = start_agent_world(c, o)) != 0)
		goto fail;
	c->na = 1;
	for (int i = 0; i < c->nb; i++)
		if ((r = start_bridge(c, o, i)) != 0)
			goto fail;
	if ((r = start_lb(c)) != 0)
		goto fail;
	for (int k = 1; k <= o->extra_agents && k < CLUSTER_MAX_AGENTS; k++, c->na++)
		if ((r = start_extra_agent(c, o, k)) != 0)
			goto fail;
	/* the phone reaches the bridges only through nginx, over TLS, from an address of its own */
	mockproc_phone_configure(c->cert, "127.0.0.2", NULL);
	*out = c;
	return 0;
fail:
	fprintf(stderr, "# cluster: could not start (%s); logs under %s\n", nl_strerror(r), c->dir);
	cluster_stop(c);
	return r != 0 ? r : NL_ERR_IO;
}

int cluster_group_start(const struct cluster_opts *o, struct cluster **c, char *why, size_t whylen)
{
	if (cluster_start(o, c, why, whylen) != 0)
		return -1;
	return *c != NULL && world_activate((*c)->w) != 0 ? -1 : 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

void cluster_stop(struct cluster *c)
{
	if (c == NULL)
		return;
	mockproc_phone_configure(NULL, NULL, NULL);
	for (int k = 1; k < c->na; k++)
		harness_stop_pid(&c->a[k].pid, SIGTERM);
	lbproc_stop(&c->lb);
	for (int i = 0; i < c->nb; i++)
		harness_stop_pid(&c->b[i].pid, SIGTERM);
	world_stop(c->w);
	redisproc_free(c->sentinel);
	redisproc_free(c->replica);
	redisproc_free(c->redis);
	if (c->dir[0] != '\0' && getenv("NL_KEEP_TEST_DIR") == NULL)
		nftw(c->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
}

void cluster_kill_bridge(struct cluster *c, int i, int sig)
{
	if (i >= 0 && i < c->nb)
		harness_stop_pid(&c->b[i].pid, sig);
}

int cluster_restart_bridge(struct cluster *c, int i)
{
	if (i < 0 || i >= c->nb)
		return NL_ERR_INVALID;
	return harness_spawn_daemon(c->b[i].conf, c->b[i].log, &c->b[i].pid);
}

int cluster_log_count(const struct cluster *c, int bridge, const char *needle)
{
	const char *path = bridge < 0 ? c->a[0].log : c->b[bridge].log;
	char line[4096];
	int n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

bool cluster_log_has(const struct cluster *c, int bridge, const char *needle)
{
	return cluster_log_count(c, bridge, needle) > 0;
}
