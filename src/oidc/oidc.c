/* The OpenID client of nhslogind: discovery and JWKS (memory, then cache_dir, then network), the
 * authorize URL, the code and device grants with a private_key_jwt assertion, ID token validation
 * (one JWKS refetch on an unknown kid) and userinfo. One mutex guards the caches and counters. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "idtoken.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "oidc.h"

#define MAX_DISCOVERY       (256 * 1024)
#define MAX_TOKEN_RESP      (64 * 1024)
#define MAX_USERINFO        (64 * 1024)
#define MAX_DEVICE_RESP     (16 * 1024)
#define MAX_CACHE_FILE      (1024 * 1024)
#define MAX_URL             2048
#define MAX_DEVICE_CODE     1024
#define MAX_USER_CODE       64
#define MAX_TOKEN           16384 /* an access or refresh token */
#define MAX_ERROR_WORD      64    /* an OAuth "error" value we repeat in a log line */
#define MAX_DEVICE_INTERVAL 60    /* the longest polling interval the device poller keeps */
#define MAX_AGE_MIN         300
#define MAX_AGE_MAX         86400
#define MAX_AGE_DEFAULT     3600
#define KID_REFETCH_MS      60000 /* at most one unknown-kid JWKS refetch a minute */
#define ASSERTION_ALG       "RS512"
#define ASSERTION_LIFETIME  60
#define ID_TOKEN_SKEW       60
#define CACHE_FUTURE_SKEW   300 /* a cache file "fetched" further in the future is damaged */

#define DISCOVERY_FILE "discovery.json"
#define JWKS_FILE      "jwks.json"

/* The endpoints of a validated discovery document. */
struct disc {
	char *authorization_endpoint;
	char *token_endpoint;
	char *jwks_uri;
	char *userinfo_endpoint; /* NULL if absent */
	char *device_endpoint;   /* NULL if absent */
	bool pkce_s256;
	bool iss_param; /* RFC 9207: authorization responses carry iss */
};

/* A document as fetched (or read back from the disk cache). */
struct fetched {
	char *body;
	size_t len;
	time_t fetched_at;
	long max_age;
};

struct nl_oidc {
	const struct nl_config *cfg;
	cjose_jwk_t *key;
	char *kid;
	pthread_mutex_t mu;
	/* Guarded by mu. */
	struct disc *disc;
	time_t disc_expires;
	struct nl_jwks *jwks;
	time_t jwks_expires;
	bool kid_refetched;
	int64_t kid_refetch_ms;
	struct nl_oidc_stats st;
};

const char *nl_outcome_word(enum nl_outcome o)
{
	switch (o) {
	case NL_OUT_OK:
		return "ok";
	case NL_OUT_DENIED:
		return "denied";
	case NL_OUT_EXPIRED:
		return "expired";
	case NL_OUT_INVALID_TOKEN:
		return "invalid_token";
	case NL_OUT_LEVEL:
		return "level";
	case NL_OUT_UNAVAILABLE:
		return "unavailable";
	case NL_OUT_PENDING:
		return "pending";
	case NL_OUT_SLOW_DOWN:
		return "slow_down";
	}
	return "unavailable";
}

/* The nl_err a failed outcome returns (callers switch on the outcome, not on this). */
static int outcome_err(enum nl_outcome o)
{
	switch (o) {
	case NL_OUT_OK:
		return 0;
	case NL_OUT_DENIED:
		return NL_ERR_DENIED;
	case NL_OUT_EXPIRED:
		return NL_ERR_EXPIRED;
	case NL_OUT_INVALID_TOKEN:
		return NL_ERR_CLAIM;
	case NL_OUT_LEVEL:
		return NL_ERR_DENIED;
	case NL_OUT_UNAVAILABLE:
		return NL_ERR_UNAVAILABLE;
	case NL_OUT_PENDING:
	case NL_OUT_SLOW_DOWN:
		return NL_ERR_LIMIT;
	}
	return NL_ERR_INTERNAL;
}

void nl_identity_clear(struct nl_identity *id)
{
	if (id == NULL)
		return;
	json_decref(id->claims);
	free(id->sub);
	free(id->vot);
	nl_free_secret(id->refresh_token);
	memset(id, 0, sizeof(*id));
}

void nl_device_auth_clear(struct nl_device_auth *d)
{
	if (d == NULL)
		return;
	nl_free_secret(d->device_code);
	free(d->user_code);
	free(d->verification_uri);
	free(d->verification_uri_complete);
	memset(d, 0, sizeof(*d));
}

/* One line into err and into the stats' last_error. Never called with mu held. */
static void set_err(struct nl_oidc *o, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_err(struct nl_oidc *o, char *err, size_t errlen, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", line);
	pthread_mutex_lock(&o->mu);
	snprintf(o->st.last_error, sizeof(o->st.last_error), "%s", line);
	pthread_mutex_unlock(&o->mu);
}

static void http_opts(const struct nl_oidc *o, size_t max_body, const char *bearer, struct nl_http_opts *opts)
{
	long total = (long)o->cfg->http_timeout * 1000;

	if (total <= 0)
		total = 10000;
	memset(opts, 0, sizeof(*opts));
	opts->ca_file = o->cfg->env.ca_file;
	opts->total_timeout_ms = total;
	opts->connect_timeout_ms = total < 5000 ? total : 5000;
	opts->max_body = max_body;
	opts->bearer = bearer;
}

static void disc_free(struct disc *d)
{
	if (d == NULL)
		return;
	free(d->authorization_endpoint);
	free(d->token_endpoint);
	free(d->jwks_uri);
	free(d->userinfo_endpoint);
	free(d->device_endpoint);
	free(d);
}

static void fetched_clear(struct fetched *f)
{
	free(f->body);
	memset(f, 0, sizeof(*f));
}

/* Cache-Control max-age, clamped to [MAX_AGE_MIN, MAX_AGE_MAX]; MAX_AGE_DEFAULT when absent. */
static long parse_max_age(const char *cc)
{
	const char *p = cc;
	long long v;
	char *end;

	while (p != NULL && *p != '\0') {
		p += strspn(p, " \t,");
		if (strncasecmp(p, "max-age=", 8) == 0) {
			errno = 0;
			v = strtoll(p + 8, &end, 10);
			if (errno != 0 || end == p + 8 || v < 0)
				break;
			if (v < MAX_AGE_MIN)
				return MAX_AGE_MIN;
			return v > MAX_AGE_MAX ? MAX_AGE_MAX : (long)v;
		}
		p = strchr(p, ',');
	}
	return MAX_AGE_DEFAULT;
}

/* Is a Content-Type application/json (any case, parameters such as charset allowed)? */
static bool is_json_type(const char *ct)
{
	static const char json[] = "application/json";
	size_t n = sizeof(json) - 1;

	if (ct == NULL)
		return false;
	ct += strspn(ct, " \t");
	return strncasecmp(ct, json, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

/* An endpoint member of discovery: absent is fine unless required; present must be a URL we may
 * call, without a fragment (RFC 6749 3.1 and 3.2 say so of the authorization and token endpoints;
 * we hold every endpoint to it). */
static int disc_url(const json_t *doc, const char *name, bool required, char **out, char *why, size_t whylen)
{
	const json_t *v = json_object_get(doc, name);
	const char *s;

	*out = NULL;
	if (v == NULL && !required)
		return 0;
	if ((s = json_string_value(v)) == NULL || *s == '\0' || strlen(s) > MAX_URL) {
		snprintf(why, whylen, "%s missing or not a string", name);
		return NL_ERR_INVALID;
	}
	if (!nl_url_allowed(s)) {
		snprintf(why, whylen, "%s is not an allowed URL (https, or http on loopback)", name);
		return NL_ERR_INVALID;
	}
	if (strchr(s, '#') != NULL) {
		snprintf(why, whylen, "%s has a fragment (RFC 6749 3.1)", name);
		return NL_ERR_INVALID;
	}
	if ((*out = strdup(s)) == NULL)
		return NL_ERR_NOMEM;
	return 0;
}

static bool json_array_has(const json_t *arr, const char *word)
{
	size_t i;
	const json_t *v;

	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), word) == 0)
			return true;
	}
	return false;
}

/* Parse and check a discovery document for the configured issuer. why names the rule broken. */
static int disc_parse(const struct nl_oidc *o, const char *body, size_t len, struct disc **out, char *why,
                      size_t whylen)
{
	const struct nl_env *env = &o->cfg->env;
	struct disc *d = NULL;
	json_t *doc = NULL;
	const json_t *algs, *methods, *iss_param;
	const char *iss;
	bool shared = false;
	size_t i;
	int r;

	if ((r = nl_json_parse(body, len, MAX_DISCOVERY, NL_JSON_MAX_DEPTH, true, &doc, why, whylen)) != 0)
		goto out;
	r = NL_ERR_INVALID;
	if ((iss = nl_json_str(doc, "issuer")) == NULL || env->issuer == NULL ||
	    strcmp(iss, env->issuer) != 0) {
		snprintf(why, whylen, "issuer does not equal the configured issuer");
		goto out;
	}
	if ((algs = json_object_get(doc, "id_token_signing_alg_values_supported")) != NULL) {
		if (!json_is_array(algs)) {
			snprintf(why, whylen, "id_token_signing_alg_values_supported is not an array");
			goto out;
		}
		for (i = 0; i < env->n_allowed_algs && !shared; i++)
			shared = json_array_has(algs, env->allowed_algs[i]);
		if (!shared) {
			snprintf(why, whylen,
			         "id_token_signing_alg_values_supported has none of allowed_algs");
			goto out;
		}
	}
	r = NL_ERR_NOMEM;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		goto out;
	if ((r = disc_url(doc, "authorization_endpoint", true, &d->authorization_endpoint, why, whylen)) !=
	        0 ||
	    (r = disc_url(doc, "token_endpoint", true, &d->token_endpoint, why, whylen)) != 0 ||
	    (r = disc_url(doc, "jwks_uri", true, &d->jwks_uri, why, whylen)) != 0 ||
	    (r = disc_url(doc, "userinfo_endpoint", false, &d->userinfo_endpoint, why, whylen)) != 0 ||
	    (r = disc_url(doc, "device_authorization_endpoint", false, &d->device_endpoint, why, whylen)) !=
	        0)
		goto out;
	methods = json_object_get(doc, "code_challenge_methods_supported");
	d->pkce_s256 = json_is_array(methods) && json_array_has(methods, "S256");
	/* RFC 9207 3: a boolean; true obliges us to refuse authorization responses without iss. */
	iss_param = json_object_get(doc, "authorization_response_iss_parameter_supported");
	if (iss_param != NULL && !json_is_boolean(iss_param)) {
		snprintf(why, whylen, "authorization_response_iss_parameter_supported is not a boolean");
		r = NL_ERR_INVALID;
		goto out;
	}
	d->iss_param = json_is_true(iss_param);
	*out = d;
	d = NULL;
	r = 0;
out:
	disc_free(d);
	json_decref(doc);
	return r;
}

/* ---- the disk cache ---- */

static char *cache_path(const struct nl_oidc *o, const char *name)
{
	char *p = NULL;

	if (o->cfg->cache_dir == NULL || *o->cfg->cache_dir == '\0')
		return NULL;
	if (asprintf(&p, "%s/%s", o->cfg->cache_dir, name) < 0)
		return NULL;
	return p;
}

/* Read cache_dir/name if present, fresh and ours. Returns 0 with *f filled; NL_ERR_NOT_FOUND when
 * there is nothing usable (a damaged or foreign file is logged once and ignored). */
static int cache_read(const struct nl_oidc *o, const char *name, struct fetched *f)
{
	char *path = cache_path(o, name), *buf = NULL;
	char why[160] = "";
	json_t *env = NULL;
	const char *iss, *body;
	long long fetched_at, max_age;
	size_t len = 0;
	struct stat sb;
	time_t now = nl_now();
	int r = NL_ERR_NOT_FOUND;

	memset(f, 0, sizeof(*f));
	if (path == NULL || (lstat(path, &sb) != 0 && errno == ENOENT))
		goto out;
	if (nl_read_file_checked(path, false, MAX_CACHE_FILE, &buf, &len, why, sizeof(why)) != 0)
		goto damaged;
	if (nl_json_parse(buf, len, MAX_CACHE_FILE, 4, true, &env, why, sizeof(why)) != 0)
		goto damaged;
	if (nl_json_int(env, "fetched_at", &fetched_at) != 0 || nl_json_int(env, "max_age", &max_age) != 0 ||
	    (body = nl_json_str(env, "body")) == NULL || (iss = nl_json_str(env, "issuer")) == NULL ||
	    max_age < MAX_AGE_MIN || max_age > MAX_AGE_MAX || fetched_at <= 0 ||
	    fetched_at > (long long)now + CACHE_FUTURE_SKEW) {
		snprintf(why, sizeof(why), "bad envelope");
		goto damaged;
	}
	if (strcmp(iss, o->cfg->env.issuer) != 0) {
		nl_warn("oidc: cache file %s is for another issuer; ignoring it", path);
		goto out;
	}
	if ((long long)now >= fetched_at + max_age) {
		nl_debug("oidc: cache file %s is stale", path);
		goto out;
	}
	if ((f->body = strdup(body)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	f->len = strlen(body);
	f->fetched_at = (time_t)fetched_at;
	f->max_age = (long)max_age;
	r = 0;
	goto out;
damaged:
	nl_warn("oidc: cache file %s is damaged (%s); ignoring it", path, why);
out:
	json_decref(env);
	free(buf);
	free(path);
	return r;
}

static int write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return NL_ERR_IO;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Write cache_dir/name atomically (temp file in the same directory, fsync, rename), mode 0600.
 * Failure only costs a refetch later, so it is logged, not returned. */
static void cache_write(const struct nl_oidc *o, const char *name, const struct fetched *f)
{
	char *path = cache_path(o, name), *tmp = NULL, *text = NULL;
	json_t *env = NULL;
	int fd = -1, dfd;

	if (path == NULL)
		return;
	if (asprintf(&tmp, "%s/.%s.XXXXXX", o->cfg->cache_dir, name) < 0) {
		tmp = NULL;
		goto fail;
	}
	env = json_pack("{s:I, s:I, s:s, s:s%}", "fetched_at", (json_int_t)f->fetched_at, "max_age",
	                (json_int_t)f->max_age, "issuer", o->cfg->env.issuer, "body", f->body, f->len);
	if (env == NULL || (text = nl_json_dump(env)) == NULL)
		goto fail;
	/* The daemon normally creates cache_dir; a missing one is made private. */
	if (mkdir(o->cfg->cache_dir, 0700) != 0 && errno != EEXIST)
		goto fail;
	if ((fd = mkstemp(tmp)) < 0)
		goto fail;
	if (fchmod(fd, 0600) != 0 || write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	if ((dfd = open(o->cfg->cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	goto out;
fail:
	nl_warn("oidc: could not write cache file %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
out:
	json_decref(env);
	free(text);
	free(tmp);
	free(path);
}

/* ---- fetching discovery and JWKS ---- */

/* GET url; 200 only. what names the document in err. */
static int fetch(struct nl_oidc *o, const char *url, size_t max, const char *what, struct fetched *f,
                 char *err, size_t errlen)
{
	struct nl_http_opts opts;
	struct nl_http_resp resp;
	char herr[200] = "";
	int r;

	memset(&resp, 0, sizeof(resp));
	memset(f, 0, sizeof(*f));
	http_opts(o, max, NULL, &opts);
	if ((r = nl_http_get(url, &opts, &resp, herr, sizeof(herr))) != 0) {
		set_err(o, err, errlen, "%s: %s", what, herr);
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if (resp.status != 200 || resp.body == NULL) {
		set_err(o, err, errlen, "%s: HTTP %ld from %s", what, resp.status, url);
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	f->body = resp.body;
	f->len = resp.body_len;
	resp.body = NULL;
	f->fetched_at = nl_now();
	f->max_age = parse_max_age(resp.cache_control);
	r = 0;
out:
	nl_http_resp_free(&resp);
	return r;
}

static char *discovery_url(const char *issuer)
{
	size_t n = strlen(issuer);
	char *u = NULL;

	while (n > 0 && issuer[n - 1] == '/')
		n--;
	if (asprintf(&u, "%.*s/.well-known/openid-configuration", (int)n, issuer) < 0)
		return NULL;
	return u;
}

static int load_discovery(struct nl_oidc *o, char *err, size_t errlen)
{
	struct fetched f;
	struct disc *d = NULL;
	char why[200] = "", *url = NULL;
	bool from_disk = false;
	time_t now = nl_now();
	int r;

	memset(&f, 0, sizeof(f));
	pthread_mutex_lock(&o->mu);
	r = (o->disc != NULL && now < o->disc_expires) ? 0 : NL_ERR_NOT_FOUND;
	pthread_mutex_unlock(&o->mu);
	if (r == 0)
		return 0;

	if (cache_read(o, DISCOVERY_FILE, &f) == 0) {
		if (disc_parse(o, f.body, f.len, &d, why, sizeof(why)) == 0)
			from_disk = true;
		else
			nl_warn("oidc: cached discovery refused (%s); refetching", why);
	}
	if (!from_disk) {
		fetched_clear(&f);
		if ((url = discovery_url(o->cfg->env.issuer)) == NULL) {
			r = NL_ERR_NOMEM;
			goto out;
		}
		pthread_mutex_lock(&o->mu);
		o->st.discovery_fetches++;
		pthread_mutex_unlock(&o->mu);
		if ((r = fetch(o, url, MAX_DISCOVERY, "discovery", &f, err, errlen)) != 0)
			goto out;
		if ((r = disc_parse(o, f.body, f.len, &d, why, sizeof(why))) != 0) {
			set_err(o, err, errlen, "discovery refused: %s", why);
			nl_err("oidc: discovery from %s refused: %s", url, why);
			r = NL_ERR_CONFIG;
			goto out;
		}
		cache_write(o, DISCOVERY_FILE, &f);
		nl_info("oidc: discovery fetched from %s (max-age %ld)", url, f.max_age);
	}
	pthread_mutex_lock(&o->mu);
	disc_free(o->disc);
	o->disc = d;
	d = NULL;
	o->disc_expires = f.fetched_at + f.max_age;
	o->st.discovery_fetched_at = f.fetched_at;
	pthread_mutex_unlock(&o->mu);
	r = 0;
out:
	disc_free(d);
	fetched_clear(&f);
	free(url);
	return r;
}

/* Load the JWKS: from memory or disk unless force, else from jwks_uri. NL_ERR_NOT_FOUND if discovery
 * is not loaded (flushed meanwhile). */
static int load_jwks(struct nl_oidc *o, bool force, char *err, size_t errlen)
{
	struct fetched f;
	struct nl_jwks *set = NULL;
	char *uri = NULL, why[200] = "";
	bool from_disk = false;
	time_t now = nl_now();
	int r = NL_ERR_NOMEM;

	memset(&f, 0, sizeof(f));
	pthread_mutex_lock(&o->mu);
	if (!force && o->jwks != NULL && now < o->jwks_expires) {
		pthread_mutex_unlock(&o->mu);
		return 0;
	}
	if (o->disc != NULL && (uri = strdup(o->disc->jwks_uri)) == NULL)
		r = NL_ERR_NOMEM;
	else if (o->disc == NULL)
		r = NL_ERR_NOT_FOUND;
	pthread_mutex_unlock(&o->mu);
	if (uri == NULL) {
		if (r == NL_ERR_NOT_FOUND)
			set_err(o, err, errlen, "jwks: discovery is not loaded");
		goto out;
	}

	if (!force && cache_read(o, JWKS_FILE, &f) == 0) {
		if (nl_jwks_parse_report(f.body, f.len, &set, why, sizeof(why)) == 0)
			from_disk = true;
		else
			nl_warn("oidc: cached JWKS refused; refetching");
	}
	if (!from_disk) {
		fetched_clear(&f);
		pthread_mutex_lock(&o->mu);
		o->st.jwks_fetches++;
		pthread_mutex_unlock(&o->mu);
		if ((r = fetch(o, uri, NL_JWKS_MAX, "jwks", &f, err, errlen)) != 0)
			goto out;
		if ((r = nl_jwks_parse_report(f.body, f.len, &set, why, sizeof(why))) != 0) {
			set_err(o, err, errlen, "jwks refused: %s", why[0] != '\0' ? why : nl_strerror(r));
			nl_err("oidc: JWKS from %s refused: %s", uri, why[0] != '\0' ? why : nl_strerror(r));
			r = NL_ERR_CONFIG;
			goto out;
		}
		if (why[0] != '\0') /* keys left out for breaking a rule: the others serve */
			nl_warn("oidc: JWKS from %s: %s", uri, why);
		cache_write(o, JWKS_FILE, &f);
		nl_info("oidc: JWKS fetched from %s (%zu keys, max-age %ld)", uri, nl_jwks_count(set),
		        f.max_age);
	}
	pthread_mutex_lock(&o->mu);
	nl_jwks_free(o->jwks);
	o->jwks = set;
	set = NULL;
	o->jwks_expires = f.fetched_at + f.max_age;
	o->st.jwks_fetched_at = f.fetched_at;
	pthread_mutex_unlock(&o->mu);
	r = 0;
out:
	nl_jwks_free(set);
	fetched_clear(&f);
	free(uri);
	return r;
}

/* An unknown kid: refetch the JWKS, at most once a minute. NL_ERR_LIMIT when rate-limited. */
static int refetch_jwks_for_kid(struct nl_oidc *o, char *err, size_t errlen)
{
	int64_t now = nl_mono_ms();
	bool allowed;

	pthread_mutex_lock(&o->mu);
	allowed = !o->kid_refetched || now - o->kid_refetch_ms >= KID_REFETCH_MS;
	if (allowed) {
		o->kid_refetched = true;
		o->kid_refetch_ms = now;
	}
	pthread_mutex_unlock(&o->mu);
	if (!allowed) {
		nl_warn("oidc: unknown kid, but the JWKS was refetched less than a minute ago");
		return NL_ERR_LIMIT;
	}
	nl_info("oidc: unknown kid in an ID token; refetching the JWKS");
	return load_jwks(o, true, err, errlen);
}

int nl_oidc_ready(struct nl_oidc *o, char *err, size_t errlen)
{
	int r = NL_ERR_INTERNAL;

	if (o == NULL)
		return NL_ERR_INTERNAL;
	/* A flush from another thread between the two steps empties discovery: one more round. */
	for (int i = 0; i < 2; i++) {
		if ((r = load_discovery(o, err, errlen)) != 0)
			return r;
		if ((r = load_jwks(o, false, err, errlen)) != NL_ERR_NOT_FOUND)
			return r;
	}
	return NL_ERR_UNAVAILABLE;
}

/* Copy the endpoints out from under the lock after making sure discovery is loaded. */
static int copy_disc(struct nl_oidc *o, struct disc *out, char *err, size_t errlen)
{
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = nl_oidc_ready(o, err, errlen)) != 0)
		return r;
	r = NL_ERR_NOMEM;
	pthread_mutex_lock(&o->mu);
	if (o->disc == NULL) {
		r = NL_ERR_UNAVAILABLE;
		goto unlock;
	}
	if ((out->authorization_endpoint = strdup(o->disc->authorization_endpoint)) == NULL ||
	    (out->token_endpoint = strdup(o->disc->token_endpoint)) == NULL ||
	    (out->jwks_uri = strdup(o->disc->jwks_uri)) == NULL)
		goto unlock;
	if (o->disc->userinfo_endpoint != NULL &&
	    (out->userinfo_endpoint = strdup(o->disc->userinfo_endpoint)) == NULL)
		goto unlock;
	if (o->disc->device_endpoint != NULL &&
	    (out->device_endpoint = strdup(o->disc->device_endpoint)) == NULL)
		goto unlock;
	out->pkce_s256 = o->disc->pkce_s256;
	out->iss_param = o->disc->iss_param;
	r = 0;
unlock:
	pthread_mutex_unlock(&o->mu);
	if (r != 0) {
		free(out->authorization_endpoint);
		free(out->token_endpoint);
		free(out->jwks_uri);
		free(out->userinfo_endpoint);
		free(out->device_endpoint);
		memset(out, 0, sizeof(*out));
		if (r == NL_ERR_UNAVAILABLE)
			set_err(o, err, errlen, "discovery is not loaded");
	}
	return r;
}

static void disc_clear(struct disc *d)
{
	free(d->authorization_endpoint);
	free(d->token_endpoint);
	free(d->jwks_uri);
	free(d->userinfo_endpoint);
	free(d->device_endpoint);
	memset(d, 0, sizeof(*d));
}

/* ---- the object ---- */

int nl_oidc_new(const struct nl_config *cfg, struct nl_oidc **out, char *err, size_t errlen)
{
	struct nl_oidc *o = NULL;
	char kerr[200] = "";
	int r = NL_ERR_CONFIG;

	if (cfg == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	if (cfg->env.issuer == NULL || cfg->env.client_id == NULL || cfg->env.client_key == NULL ||
	    cfg->env.redirect_uri == NULL) {
		snprintf(err, errlen, "environment needs issuer, client_id, client_key and redirect_uri");
		return NL_ERR_CONFIG;
	}
	if (cfg->env.n_allowed_algs == 0) {
		snprintf(err, errlen, "environment has no allowed_algs");
		return NL_ERR_CONFIG;
	}
	if ((r = nl_http_global_init()) != 0) {
		snprintf(err, errlen, "HTTP client init failed");
		return r;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return NL_ERR_NOMEM;
	o->cfg = cfg;
	if (pthread_mutex_init(&o->mu, NULL) != 0) {
		free(o);
		return NL_ERR_INTERNAL;
	}
	if ((r = nl_jwk_load_private_pem(cfg->env.client_key, &o->key, kerr, sizeof(kerr))) != 0) {
		snprintf(err, errlen, "client key: %s", kerr);
		goto out;
	}
	/* The RFC 7638 thumbprint is a stable kid for the assertion header. */
	if ((o->kid = nl_jwk_thumbprint(o->key)) == NULL) {
		snprintf(err, errlen, "client key: cannot compute its thumbprint");
		r = NL_ERR_KEY;
		goto out;
	}
	*out = o;
	o = NULL;
	r = 0;
out:
	nl_oidc_free(o);
	return r;
}

void nl_oidc_free(struct nl_oidc *o)
{
	if (o == NULL)
		return;
	disc_free(o->disc);
	nl_jwks_free(o->jwks);
	if (o->key != NULL)
		cjose_jwk_release(o->key);
	free(o->kid);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

void nl_oidc_flush(struct nl_oidc *o)
{
	char *p;

	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	disc_free(o->disc);
	o->disc = NULL;
	o->disc_expires = 0;
	nl_jwks_free(o->jwks);
	o->jwks = NULL;
	o->jwks_expires = 0;
	/* status reports cache ages: after a flush there is no cache to be old */
	o->st.discovery_fetched_at = 0;
	o->st.jwks_fetched_at = 0;
	if ((p = cache_path(o, DISCOVERY_FILE)) != NULL && unlink(p) != 0 && errno != ENOENT)
		nl_warn("oidc: could not remove %s: %s", p, strerror(errno));
	free(p);
	if ((p = cache_path(o, JWKS_FILE)) != NULL && unlink(p) != 0 && errno != ENOENT)
		nl_warn("oidc: could not remove %s: %s", p, strerror(errno));
	free(p);
	pthread_mutex_unlock(&o->mu);
	nl_info("oidc: discovery and JWKS caches flushed");
}

void nl_oidc_get_stats(struct nl_oidc *o, struct nl_oidc_stats *st)
{
	if (st == NULL)
		return;
	memset(st, 0, sizeof(*st));
	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	*st = o->st;
	pthread_mutex_unlock(&o->mu);
}

bool nl_oidc_pkce_s256(struct nl_oidc *o)
{
	bool v;

	if (o == NULL)
		return false;
	pthread_mutex_lock(&o->mu);
	v = o->disc != NULL && o->disc->pkce_s256;
	pthread_mutex_unlock(&o->mu);
	return v;
}

bool nl_oidc_iss_param_required(struct nl_oidc *o)
{
	bool v;

	if (o == NULL)
		return false;
	pthread_mutex_lock(&o->mu);
	v = o->disc != NULL && o->disc->iss_param;
	pthread_mutex_unlock(&o->mu);
	return v;
}

bool nl_oidc_has_device_endpoint(struct nl_oidc *o)
{
	bool v;

	if (o == NULL)
		return false;
	pthread_mutex_lock(&o->mu);
	v = o->disc != NULL && o->disc->device_endpoint != NULL;
	pthread_mutex_unlock(&o->mu);
	return v;
}

/* ---- authorize URL and PKCE ---- */

int nl_oidc_authorize_url(struct nl_oidc *o, const char *state, const char *nonce, const char *code_challenge,
                          char **url)
{
	const struct nl_env *env;
	struct disc d;
	char *q = NULL, *u = NULL, err[200] = "";
	int r;

	if (o == NULL || state == NULL || nonce == NULL || url == NULL)
		return NL_ERR_INTERNAL;
	env = &o->cfg->env;
	if ((r = copy_disc(o, &d, err, sizeof(err))) != 0) {
		nl_err("oidc: no authorize URL: %s", err);
		return r;
	}
	if ((r = nl_form_add(&q, "response_type", "code")) != 0 ||
	    (r = nl_form_add(&q, "scope", env->scope != NULL ? env->scope : "openid")) != 0 ||
	    (r = nl_form_add(&q, "client_id", env->client_id)) != 0 ||
	    (r = nl_form_add(&q, "redirect_uri", env->redirect_uri)) != 0 ||
	    (r = nl_form_add(&q, "state", state)) != 0 || (r = nl_form_add(&q, "nonce", nonce)) != 0)
		goto out;
	if (env->vtr != NULL && (r = nl_form_add(&q, "vtr", env->vtr)) != 0)
		goto out;
	/* A fresh sign-in every time: without it a phishing victim with a live NHS login session in
	 * that browser would approve a stranger's sign-in without typing anything. */
	if (env->prompt_login && (r = nl_form_add(&q, "prompt", "login")) != 0)
		goto out;
	if (code_challenge != NULL && ((r = nl_form_add(&q, "code_challenge", code_challenge)) != 0 ||
	                               (r = nl_form_add(&q, "code_challenge_method", "S256")) != 0))
		goto out;
	r = NL_ERR_NOMEM;
	if (asprintf(&u, "%s%c%s", d.authorization_endpoint,
	             strchr(d.authorization_endpoint, '?') ? '&' : '?', q) < 0) {
		u = NULL;
		goto out;
	}
	*url = u;
	u = NULL;
	r = 0;
out:
	nl_free_secret(q);
	nl_free_secret(u);
	disc_clear(&d);
	return r;
}

int nl_pkce_pair(char **verifier, char **challenge)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *v = NULL, *c = NULL;
	int r = NL_ERR_INTERNAL;

	if (verifier == NULL || challenge == NULL)
		return NL_ERR_INTERNAL;
	if ((r = nl_random_token(32, &v)) != 0)
		goto out;
	r = NL_ERR_INTERNAL;
	if (strlen(v) < 43 || EVP_Digest(v, strlen(v), md, &mdlen, EVP_sha256(), NULL) != 1)
		goto out;
	if ((r = nl_b64url_encode(md, mdlen, &c)) != 0)
		goto out;
	*verifier = v;
	*challenge = c;
	v = c = NULL;
	r = 0;
out:
	nl_wipe(md, sizeof(md));
	nl_free_secret(v);
	nl_free_secret(c);
	return r;
}

/* ---- the token endpoint ---- */

/* Append client_id and the private_key_jwt assertion (aud = the token endpoint) to *form. */
static int add_client_auth(struct nl_oidc *o, const char *token_endpoint, char **form)
{
	const struct nl_env *env = &o->cfg->env;
	char *assertion = NULL;
	int r;

	if ((r = nl_client_assertion(o->key, ASSERTION_ALG, o->kid, env->client_id, token_endpoint, nl_now(),
	                             ASSERTION_LIFETIME, &assertion)) != 0)
		return r;
	if ((r = nl_form_add(form, "client_id", env->client_id)) == 0 &&
	    (r = nl_form_add(form, "client_assertion_type",
	                     "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")) == 0)
		r = nl_form_add(form, "client_assertion", assertion);
	nl_free_secret(assertion);
	return r;
}

/* POST form to url; the transport error (never a secret) goes to err. */
static int post(struct nl_oidc *o, const char *url, const char *form, size_t max, struct nl_http_resp *resp,
                const char *what, char *err, size_t errlen)
{
	struct nl_http_opts opts;
	char herr[200] = "";
	int r;

	memset(resp, 0, sizeof(*resp));
	http_opts(o, max, NULL, &opts);
	if ((r = nl_http_post_form(url, form, &opts, resp, herr, sizeof(herr))) != 0) {
		set_err(o, err, errlen, "%s: %s", what, herr);
		return NL_ERR_UNAVAILABLE;
	}
	return 0;
}

/* The OAuth "error" word of an error response, if it is a plain short word; else NULL. */
static const char *error_word(const json_t *body)
{
	const char *e = nl_json_str(body, "error");
	size_t i, n;

	if (e == NULL || (n = strlen(e)) == 0 || n > MAX_ERROR_WORD)
		return NULL;
	for (i = 0; i < n; i++) {
		if (!((e[i] >= 'a' && e[i] <= 'z') || e[i] == '_'))
			return NULL;
	}
	return e;
}

/* Wipe a string member of a parsed response in place (jansson keeps its own copy). */
static void wipe_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		nl_wipe((char *)json_string_value(v), json_string_length(v));
}

static void wipe_token_json(json_t *tok)
{
	if (tok == NULL)
		return;
	wipe_member(tok, "access_token");
	wipe_member(tok, "refresh_token");
	wipe_member(tok, "id_token");
	wipe_member(tok, "device_code");
	json_decref(tok);
}

/* Parse a response body as a bounded JSON object. */
static int parse_body(const struct nl_http_resp *resp, size_t max, json_t **out)
{
	if (resp->body == NULL)
		return NL_ERR_INVALID;
	return nl_json_parse(resp->body, resp->body_len, max, NL_JSON_MAX_DEPTH, true, out, NULL, 0);
}

static int validate_once(struct nl_oidc *o, const char *compact, size_t len, const char *nonce,
                         json_t **claims, enum nl_idtoken_rule *rule)
{
	const struct nl_config *cfg = o->cfg;
	struct nl_idtoken_policy p;
	int r;

	memset(&p, 0, sizeof(p));
	p.issuer = cfg->env.issuer;
	p.client_id = cfg->env.client_id;
	p.allowed_algs = (const char *const *)cfg->env.allowed_algs;
	p.n_allowed_algs = cfg->env.n_allowed_algs;
	p.nonce = nonce;
	p.vtr = cfg->env.vtr;
	p.min_level = cfg->min_level;
	p.skew = ID_TOKEN_SKEW;
	p.now = nl_now();
	/* Validation is CPU only; the lock keeps the key set alive while it is used. */
	pthread_mutex_lock(&o->mu);
	if (o->jwks == NULL) {
		*rule = NL_RULE_KID;
		r = NL_ERR_KEY;
	} else {
		r = nl_idtoken_validate(compact, len, o->jwks, &p, claims, rule);
	}
	pthread_mutex_unlock(&o->mu);
	if (r != 0 && *rule == NL_RULE_NONE)
		*rule = NL_RULE_FORMAT;
	return r;
}

/* Validate the ID token; on an unknown kid refetch the JWKS (rate-limited) and try once more. */
static int validate_id_token(struct nl_oidc *o, const char *compact, const char *nonce, json_t **claims,
                             enum nl_outcome *outcome, char *err, size_t errlen)
{
	enum nl_idtoken_rule rule = NL_RULE_NONE;
	size_t len = strlen(compact);
	int r;

	r = validate_once(o, compact, len, nonce, claims, &rule);
	if (r != 0 && rule == NL_RULE_KID && refetch_jwks_for_kid(o, NULL, 0) == 0) {
		rule = NL_RULE_NONE;
		r = validate_once(o, compact, len, nonce, claims, &rule);
	}
	if (r == 0)
		return 0;
	if (rule == NL_RULE_LEVEL) {
		*outcome = NL_OUT_LEVEL;
		set_err(o, err, errlen, "identity level below the configured minimum");
	} else {
		*outcome = NL_OUT_INVALID_TOKEN;
		set_err(o, err, errlen, "ID token rejected: %s", nl_idtoken_rule_word(rule));
	}
	nl_debug("oidc: ID token rejected by rule %s", nl_idtoken_rule_word(rule)); /* the flow's outcome line says it */
	return outcome_err(*outcome);
}

/* GET userinfo with the access token; its sub must equal the ID token's; merge its other claims. */
static int fetch_userinfo(struct nl_oidc *o, const char *endpoint, const char *access_token, json_t *claims,
                          enum nl_outcome *outcome, char *err, size_t errlen)
{
	struct nl_http_opts opts;
	struct nl_http_resp resp;
	json_t *ui = NULL;
	const char *sub, *uisub;
	char herr[200] = "";
	int r;

	memset(&resp, 0, sizeof(resp));
	*outcome = NL_OUT_UNAVAILABLE;
	if (endpoint == NULL || access_token == NULL) {
		set_err(o, err, errlen, "userinfo: %s",
		        endpoint == NULL ? "discovery has no userinfo_endpoint"
		                         : "token response has no access_token");
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	pthread_mutex_lock(&o->mu);
	o->st.userinfo_requests++;
	pthread_mutex_unlock(&o->mu);
	http_opts(o, MAX_USERINFO, access_token, &opts);
	if ((r = nl_http_get(endpoint, &opts, &resp, herr, sizeof(herr))) != 0) {
		set_err(o, err, errlen, "userinfo: %s", herr);
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if (resp.status != 200) {
		set_err(o, err, errlen, "userinfo: HTTP %ld", resp.status);
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if (parse_body(&resp, MAX_USERINFO, &ui) != 0) {
		set_err(o, err, errlen, "userinfo: response is not a JSON object");
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	/* OIDC Core 5.3.2: an unsigned answer MUST be application/json (a signed one, application/jwt,
	 * is not something we asked for) */
	if (!is_json_type(resp.content_type)) {
		set_err(o, err, errlen, "userinfo: Content-Type is not application/json (OIDC Core 5.3.2)");
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	sub = nl_jwt_str(claims, "sub");
	uisub = nl_json_str(ui, "sub");
	if (sub == NULL || uisub == NULL || strcmp(sub, uisub) != 0) {
		*outcome = NL_OUT_INVALID_TOKEN;
		set_err(o, err, errlen, "userinfo sub mismatch");
		nl_warn("oidc: userinfo sub does not equal the ID token's");
		r = NL_ERR_CLAIM;
		goto out;
	}
	if (json_object_update_missing(claims, ui) != 0) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	*outcome = NL_OUT_OK;
	r = 0;
out:
	json_decref(ui);
	nl_http_resp_free(&resp);
	return r;
}

static int fill_identity(json_t *claims, const char *refresh, struct nl_identity *id)
{
	struct nl_identity n;
	const char *sub = nl_jwt_str(claims, "sub"), *vot = nl_jwt_str(claims, "vot");
	long long v;

	memset(&n, 0, sizeof(n));
	if (sub == NULL || (n.sub = strdup(sub)) == NULL)
		goto fail;
	if (vot != NULL && (n.vot = strdup(vot)) == NULL)
		goto fail;
	n.level = vot != NULL ? nl_vot_level(vot) : 0;
	if (n.level < 0)
		n.level = 0;
	if (nl_json_int(claims, "auth_time", &v) == 0 || nl_json_int(claims, "iat", &v) == 0)
		n.auth_time = (time_t)v;
	if (nl_json_int(claims, "exp", &v) == 0)
		n.id_exp = (time_t)v;
	if (refresh != NULL && (n.refresh_token = strdup(refresh)) == NULL)
		goto fail;
	n.claims = json_incref(claims);
	*id = n;
	return 0;
fail:
	nl_identity_clear(&n);
	return NL_ERR_NOMEM;
}

/* RFC 6749 5.1, 7.1 and OIDC Core 3.1.3.3: the members of a successful token response, before any
 * of it is used. why names the first that breaks a rule. (id_token is checked by the caller.) */
static bool token_response_ok(const json_t *tok, char *why, size_t whylen)
{
	const json_t *v;
	const char *s;

	s = nl_json_str(tok, "access_token");
	if (s == NULL || *s == '\0') {
		snprintf(why, whylen, "has no access_token (RFC 6749 5.1)");
		return false;
	}
	if ((s = nl_json_str(tok, "token_type")) == NULL) {
		snprintf(why, whylen, "has no token_type (RFC 6749 5.1)");
		return false;
	}
	/* compared without regard to case (RFC 6749 5.1); a type we do not understand must not be
	 * used (7.1), and OIDC Core 3.1.3.3 says it MUST be Bearer */
	if (strcasecmp(s, "Bearer") != 0) {
		snprintf(why, whylen, "has a token_type other than Bearer (RFC 6749 7.1)");
		return false;
	}
	v = json_object_get(tok, "expires_in");
	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0)) {
		snprintf(why, whylen, "has an expires_in that is not a non-negative integer (RFC 6749 5.1)");
		return false;
	}
	if ((v = json_object_get(tok, "refresh_token")) != NULL && !json_is_string(v)) {
		snprintf(why, whylen, "has a refresh_token that is not a string (RFC 6749 5.1)");
		return false;
	}
	if ((v = json_object_get(tok, "scope")) != NULL && !json_is_string(v)) {
		snprintf(why, whylen, "has a scope that is not a string (RFC 6749 5.1)");
		return false;
	}
	return true;
}

/* A 200 answer of the token endpoint: validate the ID token, fetch userinfo, fill id. */
static int token_success(struct nl_oidc *o, const struct disc *d, json_t *tok, const char *nonce,
                         struct nl_identity *id, enum nl_outcome *outcome, char *err, size_t errlen)
{
	const char *idt = nl_json_str(tok, "id_token"), *at = nl_json_str(tok, "access_token");
	const char *rt = nl_json_str(tok, "refresh_token");
	json_t *claims = NULL;
	char why[160] = "";
	int r;

	*outcome = NL_OUT_UNAVAILABLE;
	/* OIDC Core 3.1.3.3: an ID token is REQUIRED in a successful response */
	if (idt == NULL || *idt == '\0' || strlen(idt) > NL_JWS_MAX) {
		set_err(o, err, errlen, "token response has no usable id_token");
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if (!token_response_ok(tok, why, sizeof(why))) {
		set_err(o, err, errlen, "token response %s", why);
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if ((at != NULL && strlen(at) > MAX_TOKEN) || (rt != NULL && strlen(rt) > MAX_TOKEN)) {
		set_err(o, err, errlen, "token response has an oversized token");
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if ((r = validate_id_token(o, idt, nonce, &claims, outcome, err, errlen)) != 0)
		goto out;
	if (o->cfg->userinfo &&
	    (r = fetch_userinfo(o, d->userinfo_endpoint, at, claims, outcome, err, errlen)) != 0)
		goto out;
	*outcome = NL_OUT_UNAVAILABLE;
	if ((r = fill_identity(claims, rt, id)) != 0)
		goto out;
	*outcome = NL_OUT_OK;
	r = 0;
out:
	json_decref(claims);
	return r;
}

/* One grant at the token endpoint (the form is ready, client authentication included). *final
 * is true when the result is decided here: a transport failure, or a 200 whose tokens were
 * validated by token_success (nonce may be NULL). Otherwise the caller judges resp->status and
 * *word, the OAuth error word of a 400/401 JSON body (owned by *tok), or NULL. */
static int token_request(struct nl_oidc *o, const struct disc *d, const char *form, const char *nonce,
                         struct nl_identity *id, enum nl_outcome *oc, struct nl_http_resp *resp, json_t **tok,
                         const char **word, bool *final, char *err, size_t errlen)
{
	int r;

	*word = NULL;
	*final = true;
	pthread_mutex_lock(&o->mu);
	o->st.token_requests++;
	pthread_mutex_unlock(&o->mu);
	if ((r = post(o, d->token_endpoint, form, MAX_TOKEN_RESP, resp, "token endpoint", err, errlen)) != 0)
		return r;
	if (resp->status == 200) {
		if (parse_body(resp, MAX_TOKEN_RESP, tok) != 0) {
			set_err(o, err, errlen, "token endpoint: response is not a JSON object");
			return NL_ERR_UNAVAILABLE;
		}
		if (!is_json_type(resp->content_type)) {
			set_err(o, err, errlen,
			        "token endpoint: Content-Type is not application/json (RFC 6749 5.1)");
			return NL_ERR_UNAVAILABLE;
		}
		return token_success(o, d, *tok, nonce, id, oc, err, errlen);
	}
	if ((resp->status == 400 || resp->status == 401) && parse_body(resp, MAX_TOKEN_RESP, tok) == 0)
		*word = error_word(*tok);
	*final = false;
	return NL_ERR_UNAVAILABLE;
}

int nl_oidc_exchange_code(struct nl_oidc *o, const char *code, const char *code_verifier, const char *nonce,
                          struct nl_identity *id, enum nl_outcome *outcome, char *err, size_t errlen)
{
	struct disc d;
	struct nl_http_resp resp;
	json_t *tok = NULL;
	const char *word;
	char *form = NULL;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	bool final;
	int r;

	memset(&d, 0, sizeof(d));
	memset(&resp, 0, sizeof(resp));
	if (o == NULL || code == NULL || nonce == NULL || id == NULL || outcome == NULL)
		return NL_ERR_INTERNAL;
	*outcome = NL_OUT_UNAVAILABLE;
	if (*code == '\0' || strlen(code) > MAX_TOKEN) {
		set_err(o, err, errlen, "authorization code missing or too long");
		*outcome = NL_OUT_DENIED;
		return NL_ERR_DENIED;
	}
	if ((r = copy_disc(o, &d, err, errlen)) != 0) {
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if ((r = nl_form_add(&form, "grant_type", "authorization_code")) != 0 ||
	    (r = nl_form_add(&form, "code", code)) != 0 ||
	    (r = nl_form_add(&form, "redirect_uri", o->cfg->env.redirect_uri)) != 0 ||
	    (code_verifier != NULL && (r = nl_form_add(&form, "code_verifier", code_verifier)) != 0) ||
	    (r = add_client_auth(o, d.token_endpoint, &form)) != 0) {
		set_err(o, err, errlen, "token request: %s", nl_strerror(r));
		goto out;
	}
	r = token_request(o, &d, form, nonce, id, &oc, &resp, &tok, &word, &final, err, errlen);
	if (final)
		goto out;
	if (resp.status == 400 && word != NULL &&
	    (strcmp(word, "invalid_grant") == 0 || strcmp(word, "access_denied") == 0)) {
		oc = NL_OUT_DENIED;
		r = NL_ERR_DENIED;
		set_err(o, err, errlen, "token endpoint refused the code: %s", word);
	} else if (word != NULL) {
		set_err(o, err, errlen, "token endpoint: HTTP %ld %s", resp.status, word);
	} else {
		set_err(o, err, errlen, "token endpoint: HTTP %ld", resp.status);
	}
out:
	if (r != 0 && oc == NL_OUT_OK)
		oc = NL_OUT_UNAVAILABLE;
	*outcome = r == 0 ? NL_OUT_OK : oc;
	if (r != 0)
		nl_debug("oidc: code exchange failed (%s)", nl_outcome_word(*outcome));
	wipe_token_json(tok);
	nl_http_resp_free(&resp);
	nl_free_secret(form);
	disc_clear(&d);
	return r == 0 ? 0 : outcome_err(*outcome);
}

/* ---- RFC 8628 native mode ---- */

static int dup_bounded(const json_t *obj, const char *key, size_t max, bool required, char **out)
{
	const char *s = nl_json_str(obj, key);

	*out = NULL;
	if (s == NULL)
		return required ? NL_ERR_INVALID : 0;
	if (*s == '\0' || strlen(s) > max)
		return NL_ERR_INVALID;
	return (*out = strdup(s)) != NULL ? 0 : NL_ERR_NOMEM;
}

/* Printable ASCII without spaces: the user code and URIs go on the person's terminal as they are. */
static bool visible_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x21 || *s > 0x7e)
			return false;
	return true;
}

/* RFC 8628 3.2: device_code, user_code, verification_uri and expires_in REQUIRED;
 * verification_uri_complete and interval OPTIONAL (5 s when absent). why names what is wrong. */
static int parse_device_auth(const json_t *j, struct nl_device_auth *out, char *why, size_t whylen)
{
	struct nl_device_auth d;
	long long v;
	int r;

	memset(&d, 0, sizeof(d));
	if ((r = dup_bounded(j, "device_code", MAX_DEVICE_CODE, true, &d.device_code)) != 0 ||
	    (r = dup_bounded(j, "user_code", MAX_USER_CODE, true, &d.user_code)) != 0 ||
	    (r = dup_bounded(j, "verification_uri", MAX_URL, true, &d.verification_uri)) != 0 ||
	    (r = dup_bounded(j, "verification_uri_complete", MAX_URL, false, &d.verification_uri_complete)) !=
	        0) {
		snprintf(why, whylen, "a code or URI is missing, empty, too long or not a string");
		goto fail;
	}
	r = NL_ERR_INVALID;
	if (!visible_ascii(d.user_code)) {
		snprintf(why, whylen, "user_code is not printable ASCII");
		goto fail;
	}
	/* A URI is ASCII (RFC 3986); the parser below would pass UTF-8 such as a C1 control (CSI) or a
	 * right-to-left override, which a terminal obeys or shows reversed. */
	if (!visible_ascii(d.verification_uri) ||
	    (d.verification_uri_complete != NULL && !visible_ascii(d.verification_uri_complete))) {
		snprintf(why, whylen, "a verification URI is not printable ASCII");
		goto fail;
	}
	if (!nl_url_allowed(d.verification_uri) ||
	    (d.verification_uri_complete != NULL && !nl_url_allowed(d.verification_uri_complete))) {
		snprintf(why, whylen, "a verification URI is not an allowed URL");
		goto fail;
	}
	if (nl_json_int(j, "expires_in", &v) != 0 || v < 1 || v > 86400) {
		snprintf(why, whylen, "expires_in is not an integer of 1..86400 (RFC 8628 3.2)");
		goto fail;
	}
	d.expires_in = (int)v;
	d.interval = 5;
	if ((r = nl_json_int(j, "interval", &v)) == 0) {
		/* The minimum wait between polls: waiting longer is allowed (so 0 becomes 1), waiting
		 * less is not - an interval we cannot keep is refused, not shortened. */
		r = NL_ERR_INVALID;
		if (v < 0 || v > MAX_DEVICE_INTERVAL || v >= d.expires_in) {
			snprintf(why, whylen, "interval is not an integer of 0..%d below expires_in",
			         MAX_DEVICE_INTERVAL);
			goto fail;
		}
		d.interval = v < 1 ? 1 : (int)v;
	} else if (r != NL_ERR_NOT_FOUND) {
		snprintf(why, whylen, "interval is not an integer (RFC 8628 3.2)");
		goto fail;
	}
	*out = d;
	return 0;
fail:
	nl_device_auth_clear(&d);
	return r;
}

int nl_oidc_device_start(struct nl_oidc *o, struct nl_device_auth *out, char *err, size_t errlen)
{
	struct disc d;
	struct nl_http_resp resp;
	json_t *j = NULL;
	char *form = NULL, why[160] = "";
	int r;

	memset(&d, 0, sizeof(d));
	memset(&resp, 0, sizeof(resp));
	if (o == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	if ((r = copy_disc(o, &d, err, errlen)) != 0) {
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if (d.device_endpoint == NULL) {
		set_err(o, err, errlen, "discovery has no device_authorization_endpoint");
		r = NL_ERR_CONFIG;
		goto out;
	}
	if ((r = nl_form_add(&form, "scope", o->cfg->env.scope != NULL ? o->cfg->env.scope : "openid")) !=
	        0 ||
	    (o->cfg->env.vtr != NULL && (r = nl_form_add(&form, "vtr", o->cfg->env.vtr)) != 0) ||
	    (r = add_client_auth(o, d.token_endpoint, &form)) != 0) {
		set_err(o, err, errlen, "device authorization request: %s", nl_strerror(r));
		goto out;
	}
	if ((r = post(o, d.device_endpoint, form, MAX_DEVICE_RESP, &resp, "device authorization endpoint",
	              err, errlen)) != 0)
		goto out;
	r = NL_ERR_UNAVAILABLE;
	if (resp.status != 200) {
		set_err(o, err, errlen, "device authorization endpoint: HTTP %ld", resp.status);
		goto out;
	}
	if (parse_body(&resp, MAX_DEVICE_RESP, &j) != 0) {
		set_err(o, err, errlen, "device authorization endpoint: malformed response");
		goto out;
	}
	if (!is_json_type(resp.content_type)) {
		set_err(o, err, errlen,
		        "device authorization endpoint: Content-Type is not application/json (RFC 8628 3.2)");
		goto out;
	}
	if (parse_device_auth(j, out, why, sizeof(why)) != 0) {
		set_err(o, err, errlen, "device authorization endpoint: malformed response: %s", why);
		goto out;
	}
	r = 0;
out:
	wipe_token_json(j);
	nl_http_resp_free(&resp);
	nl_free_secret(form);
	disc_clear(&d);
	return r;
}

/* RFC 8628 §3.5 error words. */
static enum nl_outcome device_error_outcome(const char *word)
{
	if (word == NULL)
		return NL_OUT_UNAVAILABLE;
	if (strcmp(word, "authorization_pending") == 0)
		return NL_OUT_PENDING;
	if (strcmp(word, "slow_down") == 0)
		return NL_OUT_SLOW_DOWN;
	if (strcmp(word, "access_denied") == 0 || strcmp(word, "invalid_grant") == 0)
		return NL_OUT_DENIED;
	if (strcmp(word, "expired_token") == 0)
		return NL_OUT_EXPIRED;
	return NL_OUT_UNAVAILABLE;
}

int nl_oidc_device_poll(struct nl_oidc *o, const char *device_code, struct nl_identity *id,
                        enum nl_outcome *outcome, char *err, size_t errlen)
{
	struct disc d;
	struct nl_http_resp resp;
	json_t *tok = NULL;
	const char *word = NULL;
	char *form = NULL;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	bool final;
	int r;

	memset(&d, 0, sizeof(d));
	memset(&resp, 0, sizeof(resp));
	if (o == NULL || device_code == NULL || id == NULL || outcome == NULL)
		return NL_ERR_INTERNAL;
	*outcome = NL_OUT_UNAVAILABLE;
	if (*device_code == '\0' || strlen(device_code) > MAX_DEVICE_CODE) {
		set_err(o, err, errlen, "device code missing or too long");
		return NL_ERR_UNAVAILABLE;
	}
	if ((r = copy_disc(o, &d, err, errlen)) != 0) {
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if ((r = nl_form_add(&form, "grant_type", "urn:ietf:params:oauth:grant-type:device_code")) != 0 ||
	    (r = nl_form_add(&form, "device_code", device_code)) != 0 ||
	    (r = add_client_auth(o, d.token_endpoint, &form)) != 0) {
		set_err(o, err, errlen, "device token request: %s", nl_strerror(r));
		goto out;
	}
	r = token_request(o, &d, form, NULL, id, &oc, &resp, &tok, &word, &final, err, errlen);
	if (final)
		goto out;
	oc = resp.status == 400 ? device_error_outcome(word) : NL_OUT_UNAVAILABLE;
	r = outcome_err(oc);
	if (oc == NL_OUT_UNAVAILABLE)
		set_err(o, err, errlen, "token endpoint: HTTP %ld%s%s", resp.status, word ? " " : "",
		        word ? word : "");
	else if (oc != NL_OUT_PENDING && oc != NL_OUT_SLOW_DOWN)
		set_err(o, err, errlen, "device grant: %s", word);
	else if (err != NULL && errlen > 0)
		snprintf(err, errlen, "device grant: %s", word);
out:
	if (r != 0 && oc == NL_OUT_OK)
		oc = NL_OUT_UNAVAILABLE;
	*outcome = r == 0 ? NL_OUT_OK : oc;
	wipe_token_json(tok);
	nl_http_resp_free(&resp);
	nl_free_secret(form);
	disc_clear(&d);
	return r == 0 ? 0 : outcome_err(*outcome);
}
