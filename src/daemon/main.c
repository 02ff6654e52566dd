/* nhslogind: the helper daemon's entry point. Options, configuration, process hardening, the parts
 * in the order they depend on each other, then the socket server until SIGTERM/SIGINT. */
#include "config.h"
#include "agent.h"
#include "bridge.h"
#include "device.h"
#include "flows.h"
#include "flows_store.h"
#include "hostauth.h"
#include "mapping.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_log.h"
#include "nl_wipe.h"
#include "oidc.h"
#include "server.h"
#include "store.h"
#include "tokcache.h"

#include <cjose/util.h>
#include <getopt.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct daemon {
	struct nl_config cfg;
	struct nl_oidc *oidc;
	struct nl_tokcache *tc;
	struct nl_flows *flows;
	struct nl_bridge *bridge;
	struct nl_device *device;
	struct nl_agent *agent;
	struct nl_server *server;
	struct nl_store *store;          /* role = bridge */
	struct nl_hostauth_hosts *hosts; /* role = bridge */
	int notify_fd, signal_fd;
};

/* jansson's memory is wiped when freed: requests and replies carry device codes, and parsed
 * provider answers carry tokens. Blocks stay plain malloc blocks, so free() on json_dumps output
 * elsewhere keeps working. */
static void json_free_wiped(void *p)
{
	if (p != NULL) {
		nl_wipe(p, malloc_usable_size(p));
		free(p);
	}
}

/* cjose's realloc twin of json_free_wiped: a block that moves is wiped before it is freed. */
static void *realloc_wiped(void *p, size_t n)
{
	size_t old = p != NULL ? malloc_usable_size(p) : 0;
	void *q;

	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		json_free_wiped(p);
		return NULL;
	}
	if (n <= old)
		return p;
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, old);
	json_free_wiped(p);
	return q;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: nhslogind [--config FILE] [--foreground] [--debug]\n"
	        "       nhslogind --help | --version\n"
	        "  -c, --config FILE  main configuration (default %s)\n"
	        "  -f, --foreground   log to stderr and print a ready line (tests, debugging)\n"
	        "  -d, --debug        debug log lines\n",
	        NL_CONFIG_DEFAULT_PATH);
}

/* The bridge's own address, for the ready line: http(s)://HOST:PORT with the bound port. */
static void bridge_url(const struct daemon *d, char *out, size_t outlen)
{
	const char *listen = d->cfg.listen != NULL ? d->cfg.listen : "127.0.0.1:0";
	const char *colon = strrchr(listen, ':');
	int hostlen = colon != NULL ? (int)(colon - listen) : (int)strlen(listen);

	snprintf(out, outlen, "%s://%.*s:%u", d->cfg.tls_cert != NULL ? "https" : "http", hostlen, listen,
	         (unsigned)nl_bridge_port(d->bridge));
}

/* Signals arrive through a signalfd that the server polls; they are blocked before any thread
 * starts so that every thread inherits the mask. */
static int setup_signals(int *fd)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return NL_ERR_INTERNAL;
	if ((*fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return NL_ERR_IO;
	return 0;
}

/* The line of the main file that sets key ("key = ..."), for a message that points at it; 0 if it
 * cannot be found (the file was already parsed and checked by nl_config_load). */
static unsigned setting_line(const char *path, const char *key)
{
	char *text = NULL, e[256];
	size_t len = 0, klen = strlen(key);
	unsigned lineno = 0, found = 0;

	if (path == NULL ||
	    nl_read_file_checked(path, false, NL_CONFIG_MAX_FILE, &text, &len, e, sizeof(e)) != 0)
		return 0;
	for (const char *p = text; found == 0 && p < text + len; lineno++) {
		const char *nl = strchr(p, '\n'), *q = p + strspn(p, " \t");
		if (strncmp(q, key, klen) == 0 && (q[klen] == '=' || q[klen] == ' ' || q[klen] == '\t'))
			found = lineno + 1;
		p = nl != NULL ? nl + 1 : text + len;
	}
	free(text);
	return found;
}

/* Identity settings that would fail every sign-in (a map file that is missing, malformed or
 * unsafe; a scope without the claim) stop the daemon here, with what nhsloginctl check says and
 * the fix, instead of failing each person later. */
static int check_identity(const struct nl_config *cfg, char *err, size_t errlen)
{
	char why[768] = "", where[300];
	unsigned line;
	int r;

	if ((r = nl_map_check_scope(cfg, why, sizeof(why))) != 0)
		return nl_errf(err, errlen, r, "%s", why);
	if ((r = nl_map_check(cfg, why, sizeof(why))) == 0)
		return 0;
	if ((line = setting_line(cfg->path, "map_file")) > 0)
		snprintf(where, sizeof(where), "%s:%u", cfg->path, line);
	else
		snprintf(where, sizeof(where), "%s", cfg->path != NULL ? cfg->path : "the configuration");
	return nl_errf(err, errlen, r,
	               "%s. Every sign-in would fail, so nhslogind does not start: "
	               "correct it (map_file is set at %s; the map's format is in nhslogin.conf(5)), "
	               "run nhsloginctl check, then start nhslogind again",
	               why, where);
}

/* role = bridge: the store (its password and index key read from their secret files, wiped once the
 * store has its copy and the derived keys are made), its flows, the enrolled workstations, the
 * listener with the agent API. */
static int start_bridge_role(struct daemon *d, char *err, size_t errlen)
{
	const struct nl_config *cfg = &d->cfg;
	struct nl_store_config sc = {0};
	struct nl_bridge_cluster cl = {0};
	char *pw = NULL, *key = NULL;
	size_t pwlen = 0, keylen = 0;
	int r;

	if (cfg->store_index_key_file == NULL || cfg->hosts_dir == NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "role = bridge needs [store] index_key_file and [bridge] hosts_dir");
	if (cfg->store_password_file != NULL &&
	    (r = nl_read_file_checked(cfg->store_password_file, true, 1024, &pw, &pwlen, err, errlen)) != 0)
		goto out;
	while (pwlen > 0 && (pw[pwlen - 1] == '\n' || pw[pwlen - 1] == '\r'))
		pw[--pwlen] = '\0';
	if ((r = nl_read_file_checked(cfg->store_index_key_file, true, 64, &key, &keylen, err, errlen)) != 0)
		goto out;
	if (keylen < NL_STORE_HKEY_MIN) {
		r = nl_errf(err, errlen, NL_ERR_CONFIG, "%s: the index key must be 32..64 random bytes",
		            cfg->store_index_key_file);
		goto out;
	}
	sc.url = cfg->store_url;
	sc.sentinels = cfg->store_sentinels;
	sc.master = cfg->store_master;
	sc.password = pw;
	sc.hash_key = (const unsigned char *)key;
	sc.hash_key_len = keylen;
	sc.command_timeout_ms = cfg->store_timeout_ms;
	if ((r = nl_store_open(&sc, &d->store, err, errlen)) != 0)
		goto out;
	if ((r = nl_flows_new_store(cfg, d->store, (const unsigned char *)key, keylen, &d->flows)) != 0) {
		r = nl_errf(err, errlen, r, "flows: %s", nl_strerror(r));
		goto out;
	}
	if ((r = nl_hostauth_hosts_new(cfg->hosts_dir, 0, &d->hosts)) != 0) {
		r = nl_errf(err, errlen, r, "hosts_dir %s: %s", cfg->hosts_dir, nl_strerror(r));
		goto out;
	}
	nl_oidc_keep_raw(d->oidc, true);
	cl.store = d->store;
	cl.hosts = d->hosts;
	cl.index_key = (const unsigned char *)key;
	cl.index_key_len = keylen;
	r = nl_bridge_start_cluster(cfg, d->flows, d->oidc, &cl, &d->bridge, err, errlen);
out:
	if (pw != NULL)
		nl_free_secret_buf(pw, pwlen + 1);
	if (key != NULL)
		nl_free_secret_buf(key, keylen + 1);
	return r;
}

static int start_parts(struct daemon *d, char *err, size_t errlen)
{
	struct nl_server_ctx ctx;
	int r;

	if ((r = nl_http_global_init()) != 0)
		return nl_errf(err, errlen, r, "libcurl initialisation failed");
	if ((r = nl_oidc_new(&d->cfg, &d->oidc, err, errlen)) != 0)
		return r;
	if ((r = nl_tokcache_open(d->cfg.state_dir, &d->tc, err, errlen)) != 0)
		return r;
	if (d->cfg.reuse_window == 0) { /* no sign-in is kept; one an earlier configuration kept goes */
		if (nl_tokcache_count(d->tc) > 0)
			nl_notice("reuse_window is 0: removing the sign-ins kept in %s", d->cfg.state_dir);
		nl_tokcache_flush(d->tc);
	}
	if ((d->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return nl_errf(err, errlen, NL_ERR_IO, "eventfd failed");
	if (d->cfg.role == NL_ROLE_BRIDGE) {
		if ((r = start_bridge_role(d, err, errlen)) != 0)
			return r;
	} else {
		if ((r = nl_flows_new(&d->cfg, d->notify_fd, &d->flows)) != 0)
			return nl_errf(err, errlen, r, "flows table: %s", nl_strerror(r));
		if (d->cfg.role == NL_ROLE_AGENT) {
			/* no public listener and no device poller: the bridge has both (doc/bridge.md) */
			if ((r = nl_agent_new(&d->cfg, d->flows, d->oidc, d->tc, &d->agent, err, errlen)) !=
			    0)
				return r;
		} else if ((r = nl_bridge_start(&d->cfg, d->flows, d->oidc, d->tc, &d->bridge, err,
		                                errlen)) != 0) {
			return r;
		}
	}
	if (d->cfg.role == NL_ROLE_LOCAL && d->cfg.env.flow == NL_FLOW_DEVICE &&
	    (r = nl_device_start(&d->cfg, d->flows, d->oidc, d->tc, &d->device)) != 0)
		return nl_errf(err, errlen, r, "device poller: %s", nl_strerror(r));
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &d->cfg;
	ctx.flows = d->flows;
	ctx.oidc = d->oidc;
	ctx.tc = d->tc;
	ctx.bridge = d->bridge;
	ctx.device = d->device;
	ctx.agent = d->agent;
	ctx.notify_fd = d->notify_fd;
	ctx.signal_fd = d->signal_fd;
	ctx.store = d->store;
	ctx.hosts = d->hosts;
	return nl_server_new(&ctx, &d->server, err, errlen);
}

/* Stop in the reverse order: nothing can reach a flow once the server and the bridge are gone. */
static void stop_parts(struct daemon *d)
{
	nl_server_free(d->server);
	nl_bridge_stop(d->bridge);
	nl_device_stop(d->device);
	nl_agent_stop(d->agent);
	nl_flows_free(d->flows);
	nl_hostauth_hosts_free(d->hosts);
	nl_store_close(d->store);
	nl_tokcache_close(d->tc);
	nl_oidc_free(d->oidc);
	if (d->notify_fd >= 0)
		close(d->notify_fd);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	nl_config_free(&d->cfg);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"foreground", no_argument, NULL, 'f'},
	    {"debug", no_argument, NULL, 'd'},        {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	struct daemon d = {.notify_fd = -1, .signal_fd = -1};
	const char *path = NL_CONFIG_DEFAULT_PATH;
	bool foreground = false, debug = false;
	char err[1536] = "", url[600];
	int c, r, status = 1;

	/* cjose's decoded JWS payloads (ID token claims: nonce, sub, NHS number) are wiped too. Its
	 * setter also points jansson at these functions, so jansson's own is set after it. */
	cjose_set_alloc_funcs(malloc, realloc_wiped, json_free_wiped);
	json_set_alloc_funcs(malloc, json_free_wiped);
	while ((c = getopt_long(argc, argv, "c:fdhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("nhslogind %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	nl_config_init(&d.cfg);
	/* a bridge maps no identity (the agents do): no map to check */
	if (nl_config_load(path, &d.cfg, 0, err, sizeof(err)) != 0 ||
	    (d.cfg.role != NL_ROLE_BRIDGE && check_identity(&d.cfg, err, sizeof(err)) != 0)) {
		fprintf(stderr, "nhslogind: %s\n", err);
		nl_config_free(&d.cfg);
		return 2;
	}
	nl_log_open("nhslogind", foreground ? NL_LOG_STDERR : NL_LOG_SYSLOG, debug || d.cfg.debug);
	/* No core dumps or ptrace by other users: the process holds the client key and tokens. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		nl_warn("prctl(PR_SET_DUMPABLE): cannot disable core dumps");
	umask(077);
	if ((r = setup_signals(&d.signal_fd)) != 0) {
		nl_err("signals: %s", nl_strerror(r));
		goto out;
	}
	if ((r = start_parts(&d, err, sizeof(err))) != 0) {
		nl_err("%s", err[0] ? err : nl_strerror(r));
		goto out;
	}
	/* Warm the caches now so that the first sign-in needs no network; failure is not fatal (the
	 * provider may be down at boot: each start retries). */
	if (nl_oidc_ready(d.oidc, err, sizeof(err)) != 0)
		nl_warn("identity provider not ready yet: %s", err);
	if (d.agent != NULL)
		snprintf(url, sizeof(url), "%s (agent)", d.cfg.agent_bridge_url);
	else
		bridge_url(&d, url, sizeof(url));
	nl_notice("ready: environment %s, socket %s, bridge %s", d.cfg.environment ? d.cfg.environment : "-",
	          d.cfg.socket_path, url);
	if (foreground) {
		printf("nhslogind: ready socket=%s bridge=%s\n", d.cfg.socket_path, url);
		fflush(stdout);
	}
	if ((r = nl_server_run(d.server)) != 0)
		goto out;
	nl_notice("stopped");
	status = 0;
out:
	stop_parts(&d);
	return status;
}
