/* nhsloginctl check, the network half: fetch the issuer's discovery document and say exactly what
 * is wrong with it, then load discovery and JWKS through the daemon's own OpenID client with a
 * throw-away cache directory, so the daemon's cache is never touched; with source = ldap, a bind and
 * a read of the directory's base. */
#include "config.h"
#include "ctl.h"
#include "directory.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_json.h"
#include "oidc.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DISCOVERY_MAX (256 * 1024)
#define LIST_TEXT_MAX 200

/* A JSON value as short text for a message. */
static void short_text(const json_t *v, char *out, size_t len)
{
	char *t = v != NULL ? nl_json_dump(v) : NULL;
	snprintf(out, len, "%.*s", LIST_TEXT_MAX, t != NULL ? t : "null");
	free(t);
}

static void check_algs(const struct nl_config *cfg, const json_t *doc, const char *url,
                       struct ctl_findings *f)
{
	const json_t *algs = json_object_get(doc, "id_token_signing_alg_values_supported");
	char text[LIST_TEXT_MAX + 8], want[128] = "";
	bool shared = false;

	for (size_t i = 0; i < cfg->env.n_allowed_algs; i++) {
		shared = shared || (json_is_array(algs) && nl_json_array_has(algs, cfg->env.allowed_algs[i]));
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s", i ? "," : "",
		         cfg->env.allowed_algs[i]);
	}
	if (algs == NULL) {
		ctl_finding(f, false, "discovery %s: no id_token_signing_alg_values_supported", url);
	} else if (!json_is_array(algs)) {
		ctl_finding(f, true, "discovery %s: id_token_signing_alg_values_supported is not a list",
		            url);
	} else if (!shared) {
		short_text(algs, text, sizeof(text));
		ctl_finding(
		    f, true,
		    "discovery %s: no %s in id_token_signing_alg_values_supported %s (allowed_algs in %s)",
		    url, want, text, cfg->env.path);
	}
}

/* What the daemon's client needs from the provider: the endpoints, private_key_jwt with RS512. */
static void check_endpoints(const struct nl_config *cfg, const json_t *doc, const char *url,
                            struct ctl_findings *f)
{
	const char *need[] = {"authorization_endpoint", "token_endpoint", "jwks_uri",
	                      cfg->env.flow == NL_FLOW_DEVICE ? "device_authorization_endpoint" : NULL};
	const json_t *methods = json_object_get(doc, "token_endpoint_auth_methods_supported");
	const json_t *salgs = json_object_get(doc, "token_endpoint_auth_signing_alg_values_supported");

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]) && need[i] != NULL; i++) {
		const char *v = nl_json_str(doc, need[i]);
		if (v == NULL)
			ctl_finding(f, true, "discovery %s: no %s%s", url, need[i],
			            i == 3 ? " (flow = device needs it; use flow = bridge)" : "");
		else if (!nl_url_allowed(v))
			ctl_finding(f, true, "discovery %s: %s %s is not https (or http on loopback)", url,
			            need[i], v);
	}
	if (json_is_array(methods) && !nl_json_array_has(methods, "private_key_jwt"))
		ctl_finding(f, true,
		            "discovery %s: token_endpoint_auth_methods_supported lacks private_key_jwt", url);
	if (json_is_array(salgs) && !nl_json_array_has(salgs, "RS512"))
		ctl_finding(
		    f, true,
		    "discovery %s: token_endpoint_auth_signing_alg_values_supported lacks RS512 (the client "
		    "assertion is signed with RS512)",
		    url);
}

/* Fetch and judge the discovery document. true if it is fit for the daemon. */
static bool check_discovery(const struct nl_config *cfg, struct ctl_findings *f)
{
	struct nl_http_opts opts = {.ca_file = cfg->env.ca_file,
	                            .total_timeout_ms = (long)cfg->http_timeout * 1000,
	                            .max_body = DISCOVERY_MAX};
	struct nl_http_resp resp;
	char *url = nl_oidc_discovery_url(cfg->env.issuer), err[512] = "", why[256] = "";
	unsigned before = f->errors;
	json_t *doc = NULL;
	const char *iss;

	memset(&resp, 0, sizeof(resp));
	if (url == NULL) {
		ctl_finding(f, true, "out of memory");
		return false;
	}
	if (nl_http_get(url, &opts, &resp, err, sizeof(err)) != 0) {
		ctl_finding(f, true, "issuer %s (%s) unreachable: %s", cfg->env.issuer, cfg->env.path, err);
		goto out;
	}
	if (resp.status != 200) {
		ctl_finding(f, true, "discovery %s: HTTP %ld (is issuer %s right?)", url, resp.status,
		            cfg->env.issuer);
		goto out;
	}
	if (nl_json_parse(resp.body, resp.body_len, DISCOVERY_MAX, NL_JSON_MAX_DEPTH, true, &doc, why,
	                  sizeof(why)) != 0) {
		ctl_finding(f, true, "discovery %s: not a JSON object: %s", url, why);
		goto out;
	}
	if ((iss = nl_json_str(doc, "issuer")) == NULL)
		ctl_finding(f, true, "discovery %s: no issuer", url);
	else if (strcmp(iss, cfg->env.issuer) != 0)
		ctl_finding(f, true,
		            "issuer mismatch: discovery %s says issuer \"%s\", but issuer in %s is \"%s\" "
		            "(they must be equal exactly)",
		            url, iss, cfg->env.path, cfg->env.issuer);
	check_algs(cfg, doc, url, f);
	check_endpoints(cfg, doc, url, f);
out:
	json_decref(doc);
	nl_http_resp_free(&resp);
	free(url);
	return f->errors == before;
}

/* Empty and remove the throw-away cache directory (flat: the client writes files only). */
static void remove_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d != NULL) {
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(path);
}

/* The library logs each fetch on stderr; check's findings say it better. */
static int quiet_begin(const struct ctl_opts *o)
{
	int saved, null;

	if (o->verbose || (null = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		return -1;
	fflush(stderr);
	saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (saved >= 0)
		dup2(null, STDERR_FILENO);
	close(null);
	return saved;
}

static void quiet_end(int saved)
{
	if (saved < 0)
		return;
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
}

/* Discovery and JWKS as the daemon loads them, with its client key. */
static void check_client(const struct nl_config *cfg, const struct ctl_opts *o, struct ctl_findings *f)
{
	struct nl_config tmp = *cfg; /* shallow: only cache_dir differs; never freed */
	struct nl_oidc *oidc = NULL;
	char dir[] = "/tmp/nhsloginctl-check.XXXXXX", err[512] = "";
	int quiet;

	if (mkdtemp(dir) == NULL) {
		ctl_finding(f, true, "cannot make a temporary cache directory in /tmp");
		return;
	}
	tmp.cache_dir = dir;
	quiet = quiet_begin(o);
	if (nl_oidc_new(&tmp, &oidc, err, sizeof(err)) != 0)
		ctl_finding(f, true, "%s (%s)", err, cfg->env.client_key);
	else if (nl_oidc_ready(oidc, err, sizeof(err)) != 0)
		ctl_finding(f, true, "provider %s: %s", cfg->env.issuer, err);
	quiet_end(quiet);
	nl_oidc_free(oidc);
	remove_dir(dir);
}

void ctl_check_provider(const struct nl_config *cfg, const struct ctl_opts *o, bool key_ok,
                        struct ctl_findings *f)
{
	if (check_discovery(cfg, f) && key_ok)
		check_client(cfg, o, f);
}

void ctl_check_directory(const struct nl_config *cfg, struct ctl_findings *f)
{
	char err[512] = "";

	if (cfg->source != NL_SOURCE_LDAP)
		return;
	if (nl_dir_check(cfg, err, sizeof(err)) != 0)
		ctl_finding(f, true, "[ldap] uri %s, base %s: %s", cfg->ldap_uri, cfg->ldap_base,
		            err[0] != '\0' ? err : "the directory cannot be used");
}
