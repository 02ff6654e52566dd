/* Configuration: nhslogin.conf and the environment file it selects, parsed into one struct
 * through one table-driven setter (nl_config_keys.c). Defaults, loading, cross-field validation;
 * files are opened safely (nl_config_file.c) and values checked one by one (nl_config_check.c). */
#include "config.h"
#include "nl_config.h"
#include "nl_config_int.h"
#include "nl_err.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_LISTEN    "127.0.0.1:8765"
#define DEFAULT_SCOPE     "openid profile"
#define DEFAULT_VTR       "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]"
#define DEFAULT_STATE_DIR NL_LOCALSTATEDIR "/lib/nhslogin"
#define DEFAULT_CACHE_DIR NL_LOCALSTATEDIR "/cache/nhslogin"
#define DEFAULT_ALG       "RS512"
#define PLACEHOLDER       "REPLACE-"

/* ---- init, load, validate, free ---- */

void nl_config_init(struct nl_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* A failed strdup leaves NULL; nl_config_validate reports it as out of memory. */
	cfg->socket_path = strdup(NL_DEFAULT_SOCKET);
	cfg->state_dir = strdup(DEFAULT_STATE_DIR);
	cfg->cache_dir = strdup(DEFAULT_CACHE_DIR);
	cfg->flow_ttl = 300;
	cfg->max_flows = 1024;
	cfg->max_flows_per_user = 3;
	cfg->wait_max = 25;
	cfg->http_timeout = 10;
	cfg->listen = strdup(DEFAULT_LISTEN);
	cfg->code_attempts = 10;
	cfg->claim = NL_CLAIM_NHS_NUMBER;
	cfg->rule = NL_MAP_FILE;
	cfg->min_level = 9;
	cfg->min_uid = 1000;
	cfg->source = NL_SOURCE_MAP_FILE;
	cfg->ldap_tls = NL_LDAP_TLS_DEFAULT;
	cfg->ldap_timeout = 5;
	cfg->ldap_cache_ttl = 60;
	cfg->role = NL_ROLE_LOCAL;
	cfg->store_timeout_ms = 1000;
	cfg->pam_noninteractive = NL_NONINTERACTIVE_IGNORE;
	cfg->env.scope = strdup(DEFAULT_SCOPE);
	cfg->env.vtr = strdup(DEFAULT_VTR);
	cfg->env.flow = NL_FLOW_BRIDGE;
	cfg->env.prompt_login = true;
	if ((cfg->env.allowed_algs[0] = strdup(DEFAULT_ALG)) != NULL)
		cfg->env.n_allowed_algs = 1;
}

void nl_config_free(struct nl_config *cfg)
{
	if (cfg == NULL)
		return;
	char **strs[] = {&cfg->path,
	                 &cfg->environment,
	                 &cfg->environments_dir,
	                 &cfg->socket_path,
	                 &cfg->socket_group,
	                 &cfg->state_dir,
	                 &cfg->cache_dir,
	                 &cfg->listen,
	                 &cfg->public_url,
	                 &cfg->tls_cert,
	                 &cfg->tls_key,
	                 &cfg->map_file,
	                 &cfg->email_domain,
	                 &cfg->env.name,
	                 &cfg->env.path,
	                 &cfg->env.issuer,
	                 &cfg->env.client_id,
	                 &cfg->env.client_key,
	                 &cfg->env.client_key_id,
	                 &cfg->env.scope,
	                 &cfg->env.vtr,
	                 &cfg->env.redirect_uri,
	                 &cfg->env.ca_file,
	                 &cfg->ldap_uri,
	                 &cfg->ldap_base,
	                 &cfg->ldap_filter,
	                 &cfg->ldap_attribute,
	                 &cfg->ldap_bind_dn,
	                 &cfg->ldap_password_file,
	                 &cfg->ldap_ca_file,
	                 &cfg->store_url,
	                 &cfg->store_sentinels,
	                 &cfg->store_master,
	                 &cfg->store_password_file,
	                 &cfg->store_index_key_file,
	                 &cfg->agent_bridge_url,
	                 &cfg->agent_name,
	                 &cfg->agent_host_key,
	                 &cfg->agent_ca_file,
	                 &cfg->agent_jwks_file,
	                 &cfg->hosts_dir};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	free(cfg->reuse_unlock_services);
	nl_cfg_free_algs(cfg->env.allowed_algs, cfg->env.n_allowed_algs);
	free(cfg->services_allow);
	free(cfg->services_deny);
	memset(cfg, 0, sizeof(*cfg));
}

/* Absolute directory of path (a new string). */
static int dir_of(const char *path, char **out, char *err, size_t errlen)
{
	char *copy = NULL, *slash, *real = NULL;
	int r = NL_ERR_INTERNAL;

	if ((copy = strdup(path)) == NULL) {
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((slash = strrchr(copy, '/')) == NULL) {
		free(copy);
		copy = strdup(".");
	} else if (slash == copy) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	if (copy == NULL || (real = realpath(copy, NULL)) == NULL) {
		r = nl_errf(err, errlen, copy == NULL ? NL_ERR_NOMEM : NL_ERR_IO,
		            "%s: cannot resolve its directory: %s", path,
		            copy == NULL ? "out of memory" : strerror(errno));
		goto out;
	}
	if (strcmp(real, "/") == 0)
		real[0] = '\0'; /* so that base + "/" + name is "/name" */
	*out = real;
	real = NULL;
	r = 0;
out:
	free(copy);
	free(real);
	return r;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* environment = NAME names no environments/NAME.conf: point at that line, and list the
 * environments there are (the *.conf files of the directory, sorted). */
static int unknown_environment(const struct nl_config *cfg, char *err, size_t errlen)
{
	char *names[32];
	char list[512] = "";
	size_t n = 0, used = 0;
	struct dirent *e;
	DIR *d = opendir(cfg->environments_dir);

	while (d != NULL && n < sizeof(names) / sizeof(names[0]) && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);

		if (len > 5 && e->d_name[0] != '.' && strcmp(e->d_name + len - 5, ".conf") == 0 &&
		    (names[n] = strndup(e->d_name, len - 5)) != NULL)
			n++;
	}
	if (d != NULL)
		closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? ", " : "", names[i]);

		if (w > 0 && (size_t)w < sizeof(list) - used)
			used += (size_t)w;
		free(names[i]);
	}
	return nl_errf(err, errlen, NL_ERR_CONFIG,
	               "%s:%u: environment = %s: there is no %s/%s.conf; the environments there are: %s",
	               cfg->path, cfg->environment_line, cfg->environment, cfg->environments_dir,
	               cfg->environment, n > 0 ? list : "none");
}

static int load_env(struct nl_config *cfg, unsigned flags, char *err, size_t errlen)
{
	struct nl_cfg_parse_ctx pc;
	char *path = NULL, *base = NULL;
	int r = NL_ERR_INTERNAL;

	if (cfg->environment == NULL) {
		r = nl_errf(err, errlen, NL_ERR_CONFIG,
		            "%s: environment is not set (mock, sandpit, integration, live or local)",
		            cfg->path);
		goto out;
	}
	if (asprintf(&path, "%s/%s.conf", cfg->environments_dir, cfg->environment) < 0) {
		path = NULL;
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		r = unknown_environment(cfg, err, errlen);
		goto out;
	}
	if ((r = dir_of(path, &base, err, errlen)) != 0)
		goto out;
	free(cfg->env.path);
	cfg->env.path = path;
	path = NULL;
	if ((r = nl_cfg_replace_str(&cfg->env.name, cfg->environment, err, errlen)) != 0)
		goto out;
	pc = (struct nl_cfg_parse_ctx){cfg,  cfg->env.path, base,
	                               true, true,          !(flags & NL_CONFIG_NO_OWNER_CHECK)};
	r = nl_cfg_parse_file(&pc, err, errlen);
out:
	free(path);
	free(base);
	return r;
}

int nl_config_load(const char *path, struct nl_config *cfg, unsigned flags, char *err, size_t errlen)
{
	struct nl_cfg_parse_ctx pc;
	char *base = NULL;
	int r = NL_ERR_INTERNAL;

	if (path == NULL || cfg == NULL)
		return nl_errf(err, errlen, NL_ERR_INVALID, "no configuration file given");
	if ((r = dir_of(path, &base, err, errlen)) != 0)
		goto out;
	if ((r = nl_cfg_replace_str(&cfg->path, path, err, errlen)) != 0)
		goto out;
	/* Secret files named by the main file (tls_key) matter to the daemon only; the module may
	 * run unprivileged and must not fail on a key it never reads. */
	pc = (struct nl_cfg_parse_ctx){
	    cfg, path, base, false, !(flags & NL_CONFIG_MAIN_ONLY), !(flags & NL_CONFIG_NO_OWNER_CHECK)};
	if ((r = nl_cfg_parse_file(&pc, err, errlen)) != 0)
		goto out;
	if (cfg->environments_dir == NULL && asprintf(&cfg->environments_dir, "%s/environments", base) < 0) {
		cfg->environments_dir = NULL;
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (cfg->public_url == NULL && cfg->listen != NULL &&
	    asprintf(&cfg->public_url, "%s://%s", cfg->tls_cert != NULL ? "https" : "http", cfg->listen) <
	        0) {
		cfg->public_url = NULL;
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!(flags & NL_CONFIG_MAIN_ONLY) && (r = load_env(cfg, flags, err, errlen)) != 0)
		goto out;
	r = nl_config_validate(cfg, flags, err, errlen);
out:
	free(base);
	return r;
}

static int validate_env(const struct nl_config *cfg, char *err, size_t errlen)
{
	const char *file = cfg->env.path != NULL ? cfg->env.path : "environment";
	const char *req[] = {"issuer", "client_id", "client_key", "redirect_uri"};
	const char *val[] = {cfg->env.issuer, cfg->env.client_id, cfg->env.client_key, cfg->env.redirect_uri};
	char why[512];
	bool id_ph, uri_ph;
	int lvl;

	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
		/* an agent holds no client key and has no callback: the bridge does both */
		if (cfg->role == NL_ROLE_AGENT && i >= 2)
			continue;
		if (val[i] == NULL)
			return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: %s is required", file, req[i]);
	}
	/* Every placeholder at once: one round of editing, not one per run. */
	id_ph = strncmp(cfg->env.client_id, PLACEHOLDER, strlen(PLACEHOLDER)) == 0;
	uri_ph = cfg->env.redirect_uri != NULL && strstr(cfg->env.redirect_uri, PLACEHOLDER) != NULL;
	if (id_ph && uri_ph)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: client_id is still the placeholder '%s' and "
		               "redirect_uri is still the placeholder '%s': set the client_id NHS login gave "
		               "you and your registered redirect URI",
		               file, cfg->env.client_id, cfg->env.redirect_uri);
	if (id_ph)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: client_id is still the placeholder '%s': "
		               "set the client_id NHS login gave you",
		               file, cfg->env.client_id);
	if (uri_ph)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: redirect_uri is still the placeholder '%s': "
		               "set your registered redirect URI",
		               file, cfg->env.redirect_uri);
	if (nl_cfg_check_url(cfg->env.issuer, false, why, sizeof(why)) != 0 ||
	    (cfg->env.redirect_uri != NULL &&
	     nl_cfg_check_url(cfg->env.redirect_uri, false, why, sizeof(why)) != 0))
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: %s", file, why);
	if (cfg->env.n_allowed_algs == 0 || cfg->env.scope == NULL || cfg->env.vtr == NULL)
		return nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
	if (nl_cfg_parse_vtr(cfg->env.vtr, &lvl, NULL, why, sizeof(why)) != 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: %s", file, why);
	if (lvl < cfg->min_level)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: no vector in vtr reaches [identity] min_level P%d, "
		               "so no sign-in could succeed",
		               file, cfg->min_level);
	return 0;
}

static bool listen_is_loopback(const char *listen)
{
	char host[256];
	const char *port;
	bool bracketed;

	return listen != NULL && nl_cfg_split_host_port(listen, host, sizeof(host), &port, &bracketed) &&
	       nl_cfg_is_loopback_host(host, bracketed);
}

/* Plain http off loopback only when the configuration says a TLS proxy alone reaches the listener
 * (an https public_url says nothing about who else can connect), and a proxy in front must be
 * named: otherwise every phone has the proxy's address and one person's wrong codes refuse all. */
static int validate_transport(const struct nl_config *cfg, const char *file, char *err, size_t errlen)
{
	if (cfg->tls_cert == NULL && !listen_is_loopback(cfg->listen) && !cfg->behind_tls_proxy)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: [bridge] listen %s is not a loopback address and there is no tls_cert: "
		               "plain http there can be read on the network; "
		               "set tls_cert and tls_key, listen on loopback, "
		               "or set behind_tls_proxy = yes if only a TLS reverse proxy can reach it",
		               file, cfg->listen);
	if (cfg->behind_tls_proxy && cfg->n_trusted_proxies == 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: [bridge] behind_tls_proxy needs trusted_proxies (the proxy's address), "
		               "or every phone has the proxy's address and one person's wrong codes refuse "
		               "all",
		               file);
	return 0;
}

enum nl_ldap_tls nl_ldap_tls_of(const struct nl_config *cfg)
{
	if (cfg->ldap_tls != NL_LDAP_TLS_DEFAULT)
		return cfg->ldap_tls;
	return cfg->ldap_uri != NULL && nl_cfg_ldap_uri_scheme(cfg->ldap_uri) == 1 ? NL_LDAP_TLS_LDAPS
	                                                                           : NL_LDAP_TLS_STARTTLS;
}

/* source = ldap: what the lookup needs, and a TLS mode the URIs can give. "FILE:LINE" is the
 * line of [identity] source = ldap. */
static int validate_ldap(const struct nl_config *cfg, const char *file, char *err, size_t errlen)
{
	const char *req[] = {"uri", "base", "filter", "attribute"};
	const char *val[] = {cfg->ldap_uri, cfg->ldap_base, cfg->ldap_filter, cfg->ldap_attribute};
	int scheme;

	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
		if (val[i] == NULL)
			return nl_errf(err, errlen, NL_ERR_CONFIG,
			               "%s:%u: [identity] source = ldap needs [ldap] %s", file,
			               cfg->source_line, req[i]);
	if (cfg->rule == NL_MAP_EMAIL_LOCAL)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s:%u: [identity] source = ldap does not go with rule = email_local "
		               "(the directory names the account)",
		               file, cfg->source_line);
	if ((cfg->ldap_bind_dn == NULL) != (cfg->ldap_password_file == NULL))
		return nl_errf(
		    err, errlen, NL_ERR_CONFIG,
		    "%s:%u: [ldap] bind_dn and bind_password_file go together (neither: anonymous)", file,
		    cfg->source_line);
	scheme = nl_cfg_ldap_uri_scheme(cfg->ldap_uri);
	if (cfg->ldap_tls == NL_LDAP_TLS_STARTTLS && scheme != 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s:%u: [ldap] tls = starttls needs ldap:// URIs (ldaps:// is TLS already)",
		               file, cfg->source_line);
	if (cfg->ldap_tls == NL_LDAP_TLS_LDAPS && scheme != 1)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s:%u: [ldap] tls = ldaps needs ldaps:// URIs",
		               file, cfg->source_line);
	if (cfg->ldap_tls == NL_LDAP_TLS_NONE && scheme != 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s:%u: [ldap] tls = none contradicts ldaps:// URIs", file, cfg->source_line);
	return 0;
}

/* role = bridge or agent: what the role needs. "FILE:LINE" is the line of [daemon] role. */
static int validate_role(const struct nl_config *cfg, const char *file, char *err, size_t errlen)
{
	char why[512];

	if (cfg->role == NL_ROLE_BRIDGE) {
		if ((cfg->store_url == NULL) == (cfg->store_sentinels == NULL))
			return nl_errf(
			    err, errlen, NL_ERR_CONFIG,
			    "%s:%u: role = bridge needs [store] url, or sentinels with master (one of "
			    "the two)",
			    file, cfg->role_line);
		if ((cfg->store_sentinels == NULL) != (cfg->store_master == NULL))
			return nl_errf(err, errlen, NL_ERR_CONFIG,
			               "%s:%u: [store] sentinels and master go together", file,
			               cfg->role_line);
		if (cfg->store_index_key_file == NULL)
			return nl_errf(
			    err, errlen, NL_ERR_CONFIG,
			    "%s:%u: role = bridge needs [store] index_key_file (32-64 random bytes, "
			    "the same file on every bridge)",
			    file, cfg->role_line);
		if (cfg->hosts_dir == NULL)
			return nl_errf(
			    err, errlen, NL_ERR_CONFIG,
			    "%s:%u: role = bridge needs [bridge] hosts_dir (the enrolled workstations)", file,
			    cfg->role_line);
		if (cfg->env.flow == NL_FLOW_DEVICE)
			return nl_errf(
			    err, errlen, NL_ERR_CONFIG,
			    "%s:%u: role = bridge serves the phone pages itself: flow = device does not "
			    "go with it",
			    file, cfg->role_line);
	}
	if (cfg->agent_jwks_file != NULL && cfg->role != NL_ROLE_AGENT)
		return nl_errf(
		    err, errlen, NL_ERR_CONFIG,
		    "%s:%u: [agent] jwks_file is only for role = agent (this nhslogind is %s: it "
		    "fetches NHS login's keys from the issuer itself); remove it, or set role = agent",
		    file, cfg->agent_jwks_file_line, cfg->role == NL_ROLE_BRIDGE ? "a bridge" : "local");
	/* A pinned key set is for agents that do not reach NHS login; userinfo would reach it (through
	 * discovery and the userinfo endpoint) on every sign-in. */
	if (cfg->agent_jwks_file != NULL && cfg->userinfo)
		return nl_errf(
		    err, errlen, NL_ERR_CONFIG,
		    "%s:%u: [agent] jwks_file does not go with [identity] userinfo = yes: userinfo "
		    "needs NHS login's discovery and userinfo endpoint, which an agent with a "
		    "pinned key set does not call; set userinfo = no, or remove jwks_file",
		    file, cfg->agent_jwks_file_line);
	if (cfg->role == NL_ROLE_AGENT) {
		if (cfg->agent_bridge_url == NULL)
			return nl_errf(err, errlen, NL_ERR_CONFIG,
			               "%s:%u: role = agent needs [agent] bridge_url", file, cfg->role_line);
		if (nl_cfg_check_url(cfg->agent_bridge_url, false, why, sizeof(why)) != 0)
			return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: [agent] bridge_url: %s", file, why);
		if (cfg->env.flow == NL_FLOW_DEVICE)
			return nl_errf(
			    err, errlen, NL_ERR_CONFIG,
			    "%s:%u: role = agent signs in through the bridge: flow = device does not "
			    "go with it",
			    file, cfg->role_line);
	}
	return 0;
}

static int validate_main(const struct nl_config *cfg, char *err, size_t errlen)
{
	const char *file = cfg->path != NULL ? cfg->path : "configuration";
	char why[512];
	int r;

	if ((r = validate_role(cfg, file, err, errlen)) != 0)
		return r;
	if (cfg->source == NL_SOURCE_LDAP && (r = validate_ldap(cfg, file, err, errlen)) != 0)
		return r;
	if (cfg->source == NL_SOURCE_MAP_FILE && cfg->rule == NL_MAP_FILE && cfg->map_file == NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: [identity] rule = map needs map_file", file);
	if (cfg->source == NL_SOURCE_MAP_FILE && cfg->rule == NL_MAP_EMAIL_LOCAL && cfg->email_domain == NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: [identity] rule = email_local needs email_domain", file);
	if (cfg->rule == NL_MAP_EMAIL_LOCAL && cfg->claim != NL_CLAIM_EMAIL)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: [identity] rule = email_local needs claim = email", file);
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: [bridge] tls_cert and tls_key go together",
		               file);
	if (cfg->public_url != NULL && nl_cfg_check_url(cfg->public_url, false, why, sizeof(why)) != 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: [bridge] public_url: %s (set public_url to the address phones use)", file,
		               why);
	return validate_transport(cfg, file, err, errlen);
}

int nl_config_validate(const struct nl_config *cfg, unsigned flags, char *err, size_t errlen)
{
	int r;

	if (cfg->socket_path == NULL || cfg->state_dir == NULL || cfg->cache_dir == NULL ||
	    cfg->listen == NULL)
		return nl_errf(err, errlen, NL_ERR_NOMEM, "out of memory");
	if (flags & NL_CONFIG_MAIN_ONLY)
		return 0;
	if (cfg->environment == NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "%s: environment is not set (mock, sandpit, integration, live or local)",
		               cfg->path != NULL ? cfg->path : "configuration");
	if ((r = validate_main(cfg, err, errlen)) != 0)
		return r;
	return validate_env(cfg, err, errlen);
}
