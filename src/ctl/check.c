/* nhsloginctl check, the local half: the configuration and environment files, the secret files'
 * owner and mode, the client key, the TLS pair, the map file and its accounts, the directory's
 * files and TLS mode, the URLs, and (in
 * check_timing.c) the host's time limits. Every problem is one finding naming the file or setting;
 * nothing stops at the first one except a configuration that cannot be read at all. */
#include "config.h"
#include "ctl.h"
#include "nl_text.h"
#include "mapping.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_json.h"
#include "nl_wipe.h"
#include "oidc.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PEM_MAX        (64 * 1024)
#define CA_FILE_MAX    (16 * 1024 * 1024)
#define MIN_RSA_BITS   2048
#define CERT_SOON_DAYS 14
#define MAP_USER_MAX   64 /* longer than any valid user name: such a line is not one */
#define MAP_WARN_MAX   20 /* missing accounts named one by one; the rest counted */

void ctl_finding(struct ctl_findings *f, bool error, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	nl_text_mask_controls(line);
	if (error)
		f->errors++;
	else
		f->warnings++;
	json_array_append_new(f->list,
	                      json_pack("{ssss}", "level", error ? "error" : "warning", "message", line));
}

/* A file's owner and mode, as the daemon will judge them (root-owned, not group/world-writable;
 * a secret with no group/other access at all). Only that: a missing file is reported elsewhere. */
static void check_mode(struct ctl_findings *f, const char *setting, const char *path, bool secret, size_t max)
{
	char err[1024] = "";
	int fd = -1, r;

	if (path == NULL)
		return;
	if ((r = nl_open_checked(path, secret, max, &fd, err, sizeof(err))) == 0) {
		close(fd);
		return;
	}
	if (r == NL_ERR_PERM || r == NL_ERR_TOO_BIG || setting != NULL)
		ctl_finding(f, true, "%s%s%s", setting != NULL ? setting : "", setting != NULL ? ": " : "",
		            err);
}

/* Read a PEM file (checked as the daemon would) into an OpenSSL BIO; errors become findings. */
static BIO *read_pem(struct ctl_findings *f, const char *setting, const char *path, bool secret, char **buf,
                     size_t *len)
{
	char err[1024] = "";
	BIO *bio;

	*buf = NULL;
	if (nl_read_file_checked(path, secret, PEM_MAX, buf, len, err, sizeof(err)) != 0) {
		ctl_finding(f, true, "%s: %s", setting, err);
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(*buf, (int)*len)) == NULL) {
		ctl_finding(f, true, "%s: %s: out of memory", setting, path);
		nl_free_secret_buf(*buf, *len + 1);
		*buf = NULL;
	}
	return bio;
}

static EVP_PKEY *load_key(struct ctl_findings *f, const char *setting, const char *path)
{
	EVP_PKEY *pkey = NULL;
	char *buf;
	size_t len = 0;
	BIO *bio = read_pem(f, setting, path, true, &buf, &len);

	if (bio == NULL)
		return NULL;
	if ((pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
		ctl_finding(f, true, "%s: %s: not a PEM private key (or it is encrypted)", setting, path);
	BIO_free(bio);
	nl_free_secret_buf(buf, len + 1);
	return pkey;
}

/* The client key: readable by root only (the checked read says so otherwise), an RSA key NHS login
 * accepts (2048 bits or more). true if the daemon could use it. */
static bool check_client_key(const struct nl_config *cfg, struct ctl_findings *f)
{
	const char *path = cfg->env.client_key;
	EVP_PKEY *pkey;
	bool ok = false;

	if (path == NULL || (pkey = load_key(f, "client_key", path)) == NULL)
		return false;
	if (!EVP_PKEY_is_a(pkey, "RSA"))
		ctl_finding(f, true, "client_key: %s: not an RSA key (NHS login needs RSA 2048 for RS512)",
		            path);
	else if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS)
		ctl_finding(f, true, "client_key: %s: RSA %d bits; NHS login needs at least %d", path,
		            EVP_PKEY_get_bits(pkey), MIN_RSA_BITS);
	else
		ok = true;
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return ok;
}

static X509 *load_cert(struct ctl_findings *f, const char *path)
{
	X509 *x = NULL;
	char *buf;
	size_t len = 0;
	BIO *bio = read_pem(f, "tls_cert", path, false, &buf, &len);

	if (bio == NULL)
		return NULL;
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		ctl_finding(f, true, "tls_cert: %s: not a PEM certificate", path);
	BIO_free(bio);
	free(buf);
	return x;
}

/* Is the certificate for the host of url (a name or an IP address)? */
static bool cert_names_host(X509 *x, const char *url)
{
	const char *p = strstr(url, "://");
	char host[256];
	size_t n;

	if (p == NULL)
		return true;
	p += 3;
	if (*p == '[') {
		n = strcspn(++p, "]");
	} else {
		n = strcspn(p, ":/?#");
	}
	if (n == 0 || n >= sizeof(host))
		return true;
	memcpy(host, p, n);
	host[n] = '\0';
	return X509_check_host(x, host, n, 0, NULL) == 1 || X509_check_ip_asc(x, host, 0) == 1;
}

static void check_cert_dates(X509 *x, const char *path, struct ctl_findings *f)
{
	time_t soon = time(NULL) + (time_t)CERT_SOON_DAYS * 86400;

	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
		ctl_finding(f, true, "tls_cert: %s: not valid yet", path);
	else if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		ctl_finding(f, true, "tls_cert: %s: expired", path);
	else if (X509_cmp_time(X509_get0_notAfter(x), &soon) < 0)
		ctl_finding(f, false, "tls_cert: %s: expires within %d days", path, CERT_SOON_DAYS);
}

/* The listener's certificate and key: readable, a pair, in date, for the public_url host. */
static void check_tls(const struct nl_config *cfg, struct ctl_findings *f)
{
	X509 *x;
	EVP_PKEY *pkey = NULL;

	if (cfg->tls_cert == NULL || cfg->tls_key == NULL)
		return;
	x = load_cert(f, cfg->tls_cert);
	pkey = load_key(f, "tls_key", cfg->tls_key);
	if (x != NULL && pkey != NULL && X509_check_private_key(x, pkey) != 1)
		ctl_finding(f, true,
		            "tls_cert %s and tls_key %s do not match (the key is not the certificate's)",
		            cfg->tls_cert, cfg->tls_key);
	if (x != NULL) {
		check_cert_dates(x, cfg->tls_cert, f);
		if (cfg->public_url != NULL && strncmp(cfg->public_url, "https://", 8) == 0 &&
		    !cert_names_host(x, cfg->public_url))
			ctl_finding(
			    f, false,
			    "tls_cert: %s is not for the host of public_url %s; phones will refuse it",
			    cfg->tls_cert, cfg->public_url);
	}
	X509_free(x);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
}

/* The local user at the start of a map line (blank and # lines have none). */
static bool map_line_user(const char *line, size_t n, char *user, size_t size)
{
	size_t skip = strspn(line, " \t"), len;

	if (skip >= n || line[skip] == '#' || line[skip] == '\n' || line[skip] == '\r')
		return false;
	len = strcspn(line + skip, " \t\r\n");
	if (len == 0 || len >= size || skip + len > n)
		return false;
	memcpy(user, line + skip, len);
	user[len] = '\0';
	return true;
}

/* Every map line names an account that exists here. A warning: the account may be made later, or
 * come from a directory service that is not up yet. The file is already known to be well formed. */
static void check_map_accounts(const struct nl_config *cfg, struct ctl_findings *f)
{
	char err[1024] = "", user[MAP_USER_MAX], *text = NULL;
	unsigned lineno = 0, missing = 0;
	size_t len = 0;

	if (cfg->source != NL_SOURCE_MAP_FILE || cfg->rule != NL_MAP_FILE || cfg->map_file == NULL ||
	    nl_read_file_checked(cfg->map_file, false, NL_MAP_MAX_FILE, &text, &len, err, sizeof(err)) != 0)
		return;
	for (const char *p = text, *end = text + len; p < end; lineno++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl != NULL ? nl : end) - p);
		if (map_line_user(p, n, user, sizeof(user)) && getpwnam(user) == NULL &&
		    ++missing <= MAP_WARN_MAX)
			ctl_finding(
			    f, false,
			    "map_file: %s:%u: no local account '%s' on this computer: this line signs "
			    "nobody in",
			    cfg->map_file, lineno + 1, user);
		p += n + (nl != NULL);
	}
	if (missing > MAP_WARN_MAX)
		ctl_finding(f, false, "map_file: %s: %u more lines name accounts that do not exist",
		            cfg->map_file, missing - MAP_WARN_MAX);
	free(text);
}

static void check_map(const struct nl_config *cfg, struct ctl_findings *f)
{
	char err[1024] = "";

	if (nl_map_check(cfg, err, sizeof(err)) != 0)
		ctl_finding(f, true, "map_file: %s", err[0] != '\0' ? err : "unusable");
	else
		check_map_accounts(cfg, f);
	/* The same scope rule nhslogind refuses to start without. */
	err[0] = '\0';
	if (nl_map_check_scope(cfg, err, sizeof(err)) != 0)
		ctl_finding(f, true, "scope: %s", err[0] != '\0' ? err : "does not ask for the mapped claim");
}

/* [identity] source = ldap: the files the lookup reads, and plaintext said out loud (the network
 * half, a bind and a read of the base, is ctl_check_directory). */
static void check_directory(const struct nl_config *cfg, struct ctl_findings *f)
{
	if (cfg->source != NL_SOURCE_LDAP)
		return;
	check_mode(f, "[ldap] bind_password_file", cfg->ldap_password_file, true, 4096);
	check_mode(f, "[ldap] ca_file", cfg->ldap_ca_file, false, CA_FILE_MAX);
	if (nl_ldap_tls_of(cfg) == NL_LDAP_TLS_NONE)
		ctl_finding(
		    f, false,
		    "[ldap] tls = none: the directory's answers (which account a person signs in to)%s "
		    "cross the network in plaintext to %s; use starttls or ldaps",
		    cfg->ldap_bind_dn != NULL ? " and the bind password" : "", cfg->ldap_uri);
	if (cfg->ldap_bind_dn == NULL)
		ctl_finding(f, false, "[ldap] no bind_dn: the directory is searched anonymously");
	if (cfg->map_file != NULL)
		ctl_finding(f, false, "[identity] map_file %s is not used: source = ldap", cfg->map_file);
}

/* role = agent with [agent] jwks_file: the file as nhslogind reads it at start (owner, mode, size,
 * a JWKS with a key for allowed_algs and no private members). */
static void check_pinned_jwks(const struct nl_config *cfg, struct ctl_findings *f)
{
	struct nl_jwks *set = NULL;
	char err[1024] = "", note[256] = "";

	if (cfg->agent_jwks_file == NULL)
		return;
	if (nl_oidc_pinned_read(cfg, &set, note, sizeof(note), err, sizeof(err)) != 0) {
		ctl_finding(f, true, "%s", err);
		return;
	}
	if (note[0] != '\0')
		ctl_finding(f, false, "[agent] jwks_file %s: %s", cfg->agent_jwks_file, note);
	nl_jwks_free(set);
}

static void check_ca_file(const struct nl_config *cfg, struct ctl_findings *f)
{
	check_mode(f, "ca_file", cfg->env.ca_file, false, CA_FILE_MAX);
}

/* "scheme://host[:port]" of url, into out. */
static void origin_of(const char *url, char *out, size_t len)
{
	const char *p = strstr(url, "://");
	size_t n = p != NULL ? (size_t)(p + 3 - url) + strcspn(p + 3, "/?#") : strlen(url);
	snprintf(out, len, "%.*s", (int)n, url);
}

/* The path of url without query or fragment ("" if none). */
static const char *path_of(const char *url, size_t *n)
{
	const char *p = strstr(url, "://");
	p = p != NULL ? p + 3 + strcspn(p + 3, "/?#") : url;
	*n = *p == '/' ? strcspn(p, "?#") : 0;
	return p;
}

/* Where the phone goes: public_url + /d, then NHS login, then redirect_uri on the same bridge. */
static void check_urls(const struct nl_config *cfg, struct ctl_findings *f)
{
	const char *ru = cfg->env.redirect_uri, *pu = cfg->public_url, *path;
	bool local = cfg->environment != NULL && strcmp(cfg->environment, "local") == 0;
	char ro[512], po[512];
	size_t n;

	if (ru == NULL) /* an agent: the bridge has the callback and the phone's pages */
		return;
	path = path_of(ru, &n);
	if (n == 0 || (n == 1 && path[0] == '/') || (n == 2 && strncmp(path, "/d", 2) == 0))
		ctl_finding(f, true, "redirect_uri %s (%s): needs its own path for the callback, not / or /d",
		            ru, cfg->env.path);
	if (!local && strncmp(ru, "https://", 8) != 0)
		ctl_finding(f, false, "redirect_uri %s (%s): NHS login registers https redirect URIs only",
		            ru, cfg->env.path);
	if (pu == NULL)
		return;
	origin_of(ru, ro, sizeof(ro));
	origin_of(pu, po, sizeof(po));
	if (strcasecmp(ro, po) != 0)
		ctl_finding(
		    f, false,
		    "redirect_uri %s is not on [bridge] public_url %s: NHS login sends the phone back to "
		    "redirect_uri, and only nhslogind's bridge can finish the sign-in there",
		    ru, pu);
	path = path_of(pu, &n);
	if (n > 1)
		ctl_finding(f, false,
		            "[bridge] public_url %s has a path: phones open %.*s/d, but nhslogind serves /d "
		            "(a proxy must map it)",
		            pu, (int)n, path);
	if (!local && nl_url_is_loopback(pu))
		ctl_finding(
		    f, false,
		    "[bridge] public_url %s is a loopback address but environment is %s: phones cannot "
		    "reach it; set public_url to the address phones use",
		    pu, cfg->environment);
	/* Plain http off loopback without behind_tls_proxy does not load (nl_config_validate). */
	if (cfg->tls_cert == NULL && strncmp(pu, "https://", 8) == 0 && cfg->n_trusted_proxies == 0)
		ctl_finding(
		    f, false,
		    "[bridge] public_url %s is https but listen %s has no TLS, so a proxy is in front "
		    "and every phone has its address: set trusted_proxies to the proxy's address (and "
		    "have it send X-Forwarded-For), or one person's wrong codes refuse all phones",
		    pu, cfg->listen);
}

/* The well-known NHS login environments and their issuers (NHSLOGIN.md). */
static void check_known_issuer(const struct nl_config *cfg, struct ctl_findings *f)
{
	static const struct {
		const char *name, *issuer;
	} known[] = {
	    {"mock", "https://oidc.mock.signin.nhs.uk"},
	    {"sandpit", "https://auth.sandpit.signin.nhs.uk"},
	    {"integration", "https://auth.aos.signin.nhs.uk"},
	    {"live", "https://auth.login.nhs.uk"},
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(cfg->environment, known[i].name) == 0 &&
		    strcmp(cfg->env.issuer, known[i].issuer) != 0)
			ctl_finding(f, false, "issuer %s (%s) is not NHS login's %s issuer %s",
			            cfg->env.issuer, cfg->env.path, known[i].name, known[i].issuer);
}

static int report(const struct ctl_findings *f, const struct ctl_opts *o)
{
	size_t i;
	const json_t *e;

	if (o->json) {
		json_t *m = json_pack("{sbsIsIsO}", "ok", f->errors == 0, "errors", (json_int_t)f->errors,
		                      "warnings", (json_int_t)f->warnings, "findings", f->list);
		ctl_print_json(stdout, m);
		json_decref(m);
	} else {
		json_array_foreach(f->list, i, e)
		    printf("%s: %s\n", nl_json_str(e, "level"), nl_json_str(e, "message"));
		if (f->errors == 0 && f->warnings == 0)
			printf("ok\n");
		else if (f->errors == 0)
			printf("ok, %u warning%s\n", f->warnings, f->warnings == 1 ? "" : "s");
		else
			printf("%u problem%s\n", f->errors, f->errors == 1 ? "" : "s");
	}
	return f->errors == 0 ? CTL_EXIT_OK : CTL_EXIT_PROBLEM;
}

int ctl_check(const struct ctl_opts *o)
{
	struct ctl_findings f = {json_array(), 0, 0};
	const char *path = o->config != NULL ? o->config : NL_CONFIG_DEFAULT_PATH;
	struct nl_config cfg;
	char err[1024] = "";
	bool key_ok;
	int rc;

	if (f.list == NULL)
		return CTL_EXIT_USAGE;
	nl_config_init(&cfg);
	/* Owner and mode are reported on their own, so the load that follows can go on past them. */
	check_mode(&f, NULL, path, false, NL_CONFIG_MAX_FILE);
	if (nl_config_load(path, &cfg, NL_CONFIG_NO_OWNER_CHECK, err, sizeof(err)) != 0) {
		ctl_finding(&f, true, "%s", err);
		check_mode(&f, NULL, cfg.env.path, false, NL_CONFIG_MAX_FILE);
		goto out;
	}
	check_mode(&f, NULL, cfg.env.path, false, NL_CONFIG_MAX_FILE);
	key_ok = check_client_key(&cfg, &f);
	check_tls(&cfg, &f);
	check_map(&cfg, &f);
	check_directory(&cfg, &f);
	check_ca_file(&cfg, &f);
	check_pinned_jwks(&cfg, &f);
	check_urls(&cfg, &f);
	check_known_issuer(&cfg, &f);
	ctl_check_host_timing(&cfg, o, &f);
	if (!o->offline) {
		/* an agent with pinned keys does not reach NHS login: nothing there to check */
		if (cfg.agent_jwks_file == NULL)
			ctl_check_provider(&cfg, o, key_ok, &f);
		ctl_check_directory(&cfg, &f);
	}
out:
	rc = report(&f, o);
	json_decref(f.list);
	nl_config_free(&cfg);
	return rc;
}
