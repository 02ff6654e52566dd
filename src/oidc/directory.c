/* Identity from the directory (DESIGN.md "Identity mapping and policy", [identity] source = ldap):
 * one bounded, TLS-protected search per sign-in through OpenLDAP's libldap, one handle per lookup
 * (so threads share nothing but the cache), and a small cache of found names. */
#include "config.h"

#include <ldap.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"

#define MAX_PASSWORD 4096 /* longest password file */

/* ---- escaping and the filter ---- */

int nl_dir_escape(const char *in, size_t n, char **out)
{
	static const char hex[] = "0123456789abcdef";
	char *s, *o;
	size_t i;

	*out = NULL;
	if (in == NULL || n > NL_DIR_MAX_VALUE)
		return NL_ERR_INVALID;
	if ((s = malloc(3 * n + 1)) == NULL)
		return NL_ERR_NOMEM;
	for (o = s, i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c > 0x7e || c == '*' || c == '(' || c == ')' || c == '\\') {
			*o++ = '\\';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 0x0f];
		} else {
			*o++ = (char)c;
		}
	}
	*o = '\0';
	*out = s;
	return 0;
}

int nl_dir_filter(const char *tmpl, const char *value, size_t n, char **out)
{
	const char *pct = tmpl != NULL ? strstr(tmpl, "%s") : NULL;
	char *esc = NULL, *f = NULL;
	int r;

	*out = NULL;
	if (pct == NULL || strchr(pct + 2, '%') != NULL || memchr(tmpl, '%', (size_t)(pct - tmpl)) != NULL)
		return NL_ERR_CONFIG;
	if ((r = nl_dir_escape(value, n, &esc)) != 0)
		return r;
	if (asprintf(&f, "%.*s%s%s", (int)(pct - tmpl), tmpl, esc, pct + 2) < 0) {
		free(esc);
		return NL_ERR_NOMEM;
	}
	free(esc);
	*out = f;
	return 0;
}

/* ---- the cache of found names ---- */

struct cache_entry {
	unsigned char key[32]; /* SHA-256 of the settings and the value, never the value */
	char name[NL_DIR_MAX_NAME + 1];
	int64_t expires_ms; /* monotonic; 0: free */
};

static struct {
	pthread_mutex_t lock;
	struct cache_entry e[NL_DIR_CACHE_MAX];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The key names the directory and the question as well as the value, so that changed settings
 * never answer from an old directory's names. */
static int cache_key(const struct nl_config *cfg, const char *value, unsigned char key[32])
{
	const char *parts[] = {cfg->ldap_uri,       cfg->ldap_base,    cfg->ldap_filter,
	                       cfg->ldap_attribute, cfg->ldap_bind_dn, value};
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned len = 0;
	int ok;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	for (size_t i = 0; ok && i < sizeof(parts) / sizeof(parts[0]); i++) {
		const char *p = parts[i] != NULL ? parts[i] : "";
		ok = EVP_DigestUpdate(ctx, p, strlen(p) + 1) == 1; /* the NUL separates the parts */
	}
	ok = ok && EVP_DigestFinal_ex(ctx, key, &len) == 1 && len == 32;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : NL_ERR_INTERNAL;
}

/* A live entry for key: its name copied into a new string. */
static char *cache_get(const unsigned char key[32])
{
	int64_t now = nl_mono_ms();
	char *name = NULL;

	pthread_mutex_lock(&cache.lock);
	for (size_t i = 0; i < NL_DIR_CACHE_MAX; i++) {
		struct cache_entry *e = &cache.e[i];

		if (e->expires_ms != 0 && e->expires_ms <= now)
			memset(e, 0, sizeof(*e));
		if (e->expires_ms != 0 && memcmp(e->key, key, 32) == 0) {
			name = strdup(e->name);
			break;
		}
	}
	pthread_mutex_unlock(&cache.lock);
	return name;
}

/* Remember name for ttl seconds: in the entry of the same key, a free or expired one, or else the
 * one that expires first (the cache stays bounded). */
static void cache_put(const unsigned char key[32], const char *name, unsigned ttl)
{
	int64_t now = nl_mono_ms();
	struct cache_entry *same = NULL, *spare = NULL, *oldest = NULL, *slot;

	if (strlen(name) > NL_DIR_MAX_NAME)
		return;
	pthread_mutex_lock(&cache.lock);
	for (size_t i = 0; i < NL_DIR_CACHE_MAX && same == NULL; i++) {
		struct cache_entry *e = &cache.e[i];

		if (e->expires_ms <= now) { /* free (0) or expired */
			if (spare == NULL)
				spare = e;
		} else if (memcmp(e->key, key, 32) == 0) {
			same = e;
		} else if (oldest == NULL || e->expires_ms < oldest->expires_ms) {
			oldest = e;
		}
	}
	slot = same != NULL ? same : spare != NULL ? spare : oldest;
	memcpy(slot->key, key, 32);
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	slot->expires_ms = now + (int64_t)ttl * 1000;
	pthread_mutex_unlock(&cache.lock);
}

void nl_dir_cache_flush(void)
{
	pthread_mutex_lock(&cache.lock);
	memset(cache.e, 0, sizeof(cache.e));
	pthread_mutex_unlock(&cache.lock);
}

/* ---- talking to the directory ---- */

/* The server's own words about a failure (bind, TLS), if any, for err. */
static const char *diagnostic(LDAP *ld, char *buf, size_t len)
{
	char *msg = NULL;

	buf[0] = '\0';
	if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS && msg != NULL &&
	    msg[0] != '\0')
		snprintf(buf, len, " (%.120s)", msg);
	ldap_memfree(msg);
	return buf;
}

static int unavailable(LDAP *ld, int rc, const char *what, char *err, size_t errlen)
{
	char diag[160];

	return nl_errf(err, errlen, NL_ERR_UNAVAILABLE, "directory: %s: %s%s", what, ldap_err2string(rc),
	               diagnostic(ld, diag, sizeof(diag)));
}

/* Per-handle options: LDAPv3, no referral chasing, every wait bounded by the timeout, and unless
 * tls = none a certificate that must verify (against ca_file if set) and TLS 1.2 or later. */
static int set_options(LDAP *ld, const struct nl_config *cfg, char *err, size_t errlen)
{
	struct timeval tv = {(time_t)cfg->ldap_timeout, 0};
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, tls12 = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
	int zero = 0, limit = (int)cfg->ldap_timeout;
	bool ok;

	ok = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) == LDAP_OPT_SUCCESS &&
	     ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) == LDAP_OPT_SUCCESS &&
	     ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) == LDAP_OPT_SUCCESS &&
	     ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) == LDAP_OPT_SUCCESS &&
	     ldap_set_option(ld, LDAP_OPT_TIMELIMIT, &limit) == LDAP_OPT_SUCCESS;
	if (!ok)
		return nl_errf(err, errlen, NL_ERR_INTERNAL, "directory: cannot set connection options");
	if (nl_ldap_tls_of(cfg) == NL_LDAP_TLS_NONE)
		return 0;
	ok = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) == LDAP_OPT_SUCCESS &&
	     ldap_set_option(ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, &tls12) == LDAP_OPT_SUCCESS &&
	     (cfg->ldap_ca_file == NULL ||
	      ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cfg->ldap_ca_file) == LDAP_OPT_SUCCESS);
	/* a new TLS context for this handle, from the options just set */
	if (!ok || ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS)
		return nl_errf(err, errlen, NL_ERR_UNAVAILABLE,
		               "directory: cannot set up TLS (is [ldap] ca_file a readable PEM bundle?)");
	return 0;
}

/* The password file through the checked read (root- or our own, no group/other access), without
 * a final newline, in a buffer of *size bytes (for nl_free_secret_buf). An empty password would
 * make a simple bind "unauthenticated" (RFC 4513 5.1.2), which servers may take as anonymous:
 * refused. */
static int bind_password(const struct nl_config *cfg, char **pw, size_t *pwlen, size_t *size, char *err,
                         size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = nl_read_file_checked(cfg->ldap_password_file, true, MAX_PASSWORD, &buf, &len, err,
	                              errlen)) != 0)
		return r == NL_ERR_NOT_FOUND ? NL_ERR_CONFIG : r;
	*size = len + 1;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (len == 0) {
		nl_free_secret_buf(buf, *size);
		return nl_errf(err, errlen, NL_ERR_CONFIG, "%s: [ldap] bind_password_file is empty",
		               cfg->ldap_password_file);
	}
	*pw = buf;
	*pwlen = len;
	return 0;
}

static int bind_dir(LDAP *ld, const struct nl_config *cfg, char *err, size_t errlen)
{
	struct berval cred;
	char *pw = NULL;
	size_t len = 0, size = 0;
	int r, rc;

	if (cfg->ldap_bind_dn == NULL)
		return 0; /* anonymous */
	if ((r = bind_password(cfg, &pw, &len, &size, err, errlen)) != 0)
		return r;
	cred.bv_val = pw;
	cred.bv_len = len;
	rc = ldap_sasl_bind_s(ld, cfg->ldap_bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	nl_free_secret_buf(pw, size);
	if (rc != LDAP_SUCCESS)
		return unavailable(ld, rc, "bind refused or failed", err, errlen);
	return 0;
}

/* A handle connected to one of the URIs, with TLS as configured (starttls must succeed: never
 * on in plaintext), and bound. */
static int open_dir(const struct nl_config *cfg, LDAP **out, char *err, size_t errlen)
{
	LDAP *ld = NULL;
	int r, rc;

	*out = NULL;
	if (cfg->ldap_uri == NULL || cfg->ldap_base == NULL || cfg->ldap_filter == NULL ||
	    cfg->ldap_attribute == NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "[ldap] uri, base, filter and attribute are needed");
	if ((rc = ldap_initialize(&ld, cfg->ldap_uri)) != LDAP_SUCCESS)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "[ldap] uri: %s", ldap_err2string(rc));
	if ((r = set_options(ld, cfg, err, errlen)) != 0)
		goto out;
	if (nl_ldap_tls_of(cfg) == NL_LDAP_TLS_STARTTLS &&
	    (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
		r = unavailable(ld, rc, "StartTLS failed", err, errlen);
		goto out;
	}
	if ((r = bind_dir(ld, cfg, err, errlen)) != 0)
		goto out;
	*out = ld;
	ld = NULL;
out:
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	return r;
}

/* The one value of the attribute in entry e, checked for size and NULs (the caller checks it is
 * a user name). */
static int entry_name(LDAP *ld, LDAPMessage *e, const char *attr, const char *claim_desc, char **name,
                      char *err, size_t errlen)
{
	struct berval **vals = ldap_get_values_len(ld, e, attr);
	int n = vals != NULL ? ldap_count_values_len(vals) : 0, r;

	if (n != 1) {
		r = nl_errf(err, errlen, NL_ERR_NOT_FOUND,
		            "directory: the entry for this %s has %d values of %s (want exactly one)",
		            claim_desc, n, attr);
	} else if (vals[0]->bv_len == 0 || vals[0]->bv_len > NL_DIR_MAX_NAME ||
	           memchr(vals[0]->bv_val, '\0', vals[0]->bv_len) != NULL) {
		r = nl_errf(err, errlen, NL_ERR_NOT_FOUND,
		            "directory: the entry's %s is not a user name (empty, too long or binary)", attr);
	} else if ((*name = strndup(vals[0]->bv_val, vals[0]->bv_len)) == NULL) {
		r = NL_ERR_NOMEM;
	} else {
		r = 0;
	}
	ldap_value_free_len(vals);
	return r;
}

/* Search for the filter: sizelimit 2 is enough to see "more than one". */
static int search_dir(LDAP *ld, const struct nl_config *cfg, const char *filter, const char *claim_desc,
                      char **name, char *err, size_t errlen)
{
	struct timeval tv = {(time_t)cfg->ldap_timeout, 0};
	char *attrs[] = {cfg->ldap_attribute, NULL};
	LDAPMessage *res = NULL;
	int rc, n, r;

	rc = ldap_search_ext_s(ld, cfg->ldap_base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, &tv, 2,
	                       &res);
	if (rc == LDAP_NO_SUCH_OBJECT) {
		r = nl_errf(err, errlen, NL_ERR_CONFIG, "directory: [ldap] base %s does not exist",
		            cfg->ldap_base);
		goto out;
	}
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		r = nl_errf(err, errlen, NL_ERR_UNAVAILABLE, "directory: search failed: %s",
		            ldap_err2string(rc));
		goto out;
	}
	n = ldap_count_entries(ld, res);
	if (rc == LDAP_SIZELIMIT_EXCEEDED || n > 1) {
		r = nl_errf(err, errlen, NL_ERR_NOT_FOUND,
		            "directory: more than one entry matches this %s (ambiguous): fix the directory "
		            "or [ldap] filter",
		            claim_desc);
		nl_warn("%s", err != NULL ? err : "directory: ambiguous match");
		goto out;
	}
	if (n <= 0) {
		r = nl_errf(err, errlen, NL_ERR_NOT_FOUND, "directory: no entry for this %s", claim_desc);
		goto out;
	}
	r = entry_name(ld, ldap_first_entry(ld, res), cfg->ldap_attribute, claim_desc, name, err, errlen);
out:
	ldap_msgfree(res);
	return r;
}

static const char *claim_desc_of(enum nl_claim c)
{
	return c == NL_CLAIM_NHS_NUMBER ? "nhs_number" : c == NL_CLAIM_EMAIL ? "email" : "sub";
}

int nl_dir_lookup(const struct nl_config *cfg, const char *value, char **name, char *err, size_t errlen)
{
	unsigned char key[32];
	bool cached = false;
	char *filter = NULL, *found = NULL;
	LDAP *ld = NULL;
	int r = NL_ERR_INTERNAL;

	if (name != NULL)
		*name = NULL;
	if (cfg == NULL || value == NULL || name == NULL)
		return NL_ERR_INVALID;
	if (cfg->ldap_cache_ttl > 0 && (r = cache_key(cfg, value, key)) == 0 &&
	    (found = cache_get(key)) != NULL) {
		*name = found;
		return 0;
	}
	cached = cfg->ldap_cache_ttl > 0 && r == 0;
	if ((r = nl_dir_filter(cfg->ldap_filter, value, strlen(value), &filter)) != 0) {
		r = nl_errf(err, errlen, r, "[ldap] filter cannot take the %s", claim_desc_of(cfg->claim));
		goto out;
	}
	if ((r = open_dir(cfg, &ld, err, errlen)) != 0 ||
	    (r = search_dir(ld, cfg, filter, claim_desc_of(cfg->claim), &found, err, errlen)) != 0)
		goto out;
	if (cached)
		cache_put(key, found, cfg->ldap_cache_ttl);
	*name = found;
	found = NULL;
out:
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	free(filter);
	free(found);
	return r;
}

int nl_dir_check(const struct nl_config *cfg, char *err, size_t errlen)
{
	struct timeval tv = {(time_t)cfg->ldap_timeout, 0};
	char *attrs[] = {LDAP_NO_ATTRS, NULL};
	LDAPMessage *res = NULL;
	LDAP *ld = NULL;
	int r, rc;

	if ((r = open_dir(cfg, &ld, err, errlen)) != 0)
		return r;
	rc = ldap_search_ext_s(ld, cfg->ldap_base, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
	                       &tv, 1, &res);
	if (rc == LDAP_NO_SUCH_OBJECT)
		r = nl_errf(err, errlen, NL_ERR_CONFIG, "directory: [ldap] base %s does not exist",
		            cfg->ldap_base);
	else if (rc != LDAP_SUCCESS)
		r = unavailable(ld, rc, "reading the base entry failed", err, errlen);
	ldap_msgfree(res);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return r;
}
