/* The discovery and JWKS caches of the OpenID client: memory, then files in cache_dir, then the
 * network (Cache-Control max-age within [300 s, 24 h]); one JWKS refetch a minute on an unknown kid. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nl_config.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "oidc_int.h"

#define MAX_DISCOVERY     (256 * 1024)
#define MAX_CACHE_FILE    (1024 * 1024)
#define MAX_AGE_MIN       300
#define MAX_AGE_MAX       86400
#define MAX_AGE_DEFAULT   3600
#define KID_REFETCH_MS    60000 /* at most one unknown-kid JWKS refetch a minute */
#define CACHE_FUTURE_SKEW 300   /* a cache file "fetched" further in the future is damaged */

#define DISCOVERY_FILE "discovery.json"
#define JWKS_FILE      "jwks.json"

/* A document as fetched (or read back from the disk cache). */
struct fetched {
	char *body;
	size_t len;
	time_t fetched_at;
	long max_age;
};

void nl_oidc_disc_clear(struct disc *d)
{
	free(d->authorization_endpoint);
	free(d->token_endpoint);
	free(d->jwks_uri);
	free(d->userinfo_endpoint);
	free(d->device_endpoint);
	memset(d, 0, sizeof(*d));
}

void nl_oidc_disc_free(struct disc *d)
{
	if (d == NULL)
		return;
	nl_oidc_disc_clear(d);
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
	if ((s = json_string_value(v)) == NULL || *s == '\0' || strlen(s) > MAX_URL)
		return nl_errf(why, whylen, NL_ERR_INVALID, "%s missing or not a string", name);
	if (!nl_url_allowed(s))
		return nl_errf(why, whylen, NL_ERR_INVALID,
		               "%s is not an allowed URL (https, or http on loopback)", name);
	if (strchr(s, '#') != NULL)
		return nl_errf(why, whylen, NL_ERR_INVALID, "%s has a fragment (RFC 6749 3.1)", name);
	if ((*out = strdup(s)) == NULL)
		return NL_ERR_NOMEM;
	return 0;
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
		nl_errf(why, whylen, r, "issuer does not equal the configured issuer");
		goto out;
	}
	if ((algs = json_object_get(doc, "id_token_signing_alg_values_supported")) != NULL) {
		if (!json_is_array(algs)) {
			nl_errf(why, whylen, r, "id_token_signing_alg_values_supported is not an array");
			goto out;
		}
		for (i = 0; i < env->n_allowed_algs && !shared; i++)
			shared = nl_json_array_has(algs, env->allowed_algs[i]);
		if (!shared) {
			nl_errf(why, whylen, r,
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
	d->pkce_s256 = json_is_array(methods) && nl_json_array_has(methods, "S256");
	/* RFC 9207 3: a boolean; true obliges us to refuse authorization responses without iss. */
	iss_param = json_object_get(doc, "authorization_response_iss_parameter_supported");
	if (iss_param != NULL && !json_is_boolean(iss_param)) {
		r = nl_errf(why, whylen, NL_ERR_INVALID,
		            "authorization_response_iss_parameter_supported is not a boolean");
		goto out;
	}
	d->iss_param = json_is_true(iss_param);
	*out = d;
	d = NULL;
	r = 0;
out:
	nl_oidc_disc_free(d);
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
		nl_errf(why, sizeof(why), r, "bad envelope");
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
	nl_oidc_http_opts(o, max, NULL, &opts);
	if ((r = nl_http_get(url, &opts, &resp, herr, sizeof(herr))) != 0) {
		nl_oidc_err(o, err, errlen, "%s: %s", what, herr);
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if (resp.status != 200 || resp.body == NULL) {
		nl_oidc_err(o, err, errlen, "%s: HTTP %ld from %s", what, resp.status, url);
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

char *nl_oidc_discovery_url(const char *issuer)
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
		if ((url = nl_oidc_discovery_url(o->cfg->env.issuer)) == NULL) {
			r = NL_ERR_NOMEM;
			goto out;
		}
		pthread_mutex_lock(&o->mu);
		o->st.discovery_fetches++;
		pthread_mutex_unlock(&o->mu);
		if ((r = fetch(o, url, MAX_DISCOVERY, "discovery", &f, err, errlen)) != 0)
			goto out;
		if ((r = disc_parse(o, f.body, f.len, &d, why, sizeof(why))) != 0) {
			nl_oidc_err(o, err, errlen, "discovery refused: %s", why);
			nl_err("oidc: discovery from %s refused: %s", url, why);
			r = NL_ERR_CONFIG;
			goto out;
		}
		cache_write(o, DISCOVERY_FILE, &f);
		nl_info("oidc: discovery fetched from %s (max-age %ld)", url, f.max_age);
	}
	pthread_mutex_lock(&o->mu);
	nl_oidc_disc_free(o->disc);
	o->disc = d;
	d = NULL;
	o->disc_expires = f.fetched_at + f.max_age;
	o->st.discovery_fetched_at = f.fetched_at;
	pthread_mutex_unlock(&o->mu);
	r = 0;
out:
	nl_oidc_disc_free(d);
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
			nl_oidc_err(o, err, errlen, "jwks: discovery is not loaded");
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
			nl_oidc_err(o, err, errlen, "jwks refused: %s",
			            why[0] != '\0' ? why : nl_strerror(r));
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
int nl_oidc_refetch_jwks_for_kid(struct nl_oidc *o, char *err, size_t errlen)
{
	int64_t now = nl_mono_ms();
	bool allowed;

	pthread_mutex_lock(&o->mu);
	if (o->pinned) { /* the file is the only source: an unknown kid is not fetched */
		pthread_mutex_unlock(&o->mu);
		return NL_ERR_KEY;
	}
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
	bool pinned, have;

	if (o == NULL)
		return NL_ERR_INTERNAL;
	/* [agent] jwks_file: no discovery, no JWKS from the network; the file's keys never expire */
	pthread_mutex_lock(&o->mu);
	pinned = o->pinned;
	have = o->jwks != NULL;
	pthread_mutex_unlock(&o->mu);
	if (pinned) {
		if (!have)
			nl_oidc_err(o, err, errlen, "the pinned JWKS file %s has no keys loaded",
			            o->cfg->agent_jwks_file);
		return have ? 0 : NL_ERR_UNAVAILABLE;
	}
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
int nl_oidc_copy_disc(struct nl_oidc *o, struct disc *out, char *err, size_t errlen)
{
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = nl_oidc_ready(o, err, errlen)) != 0)
		return r;
	r = NL_ERR_NOMEM;
	pthread_mutex_lock(&o->mu);
	if (o->disc == NULL) { /* flushed meanwhile; or never loaded with a pinned JWKS */
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
		nl_oidc_disc_clear(out);
		if (r == NL_ERR_UNAVAILABLE)
			nl_oidc_err(o, err, errlen, "discovery is not loaded");
	}
	return r;
}

void nl_oidc_flush(struct nl_oidc *o)
{
	bool pinned;
	char *p;

	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	pinned = o->pinned;
	nl_oidc_disc_free(o->disc);
	o->disc = NULL;
	o->disc_expires = 0;
	if (!pinned) { /* a pinned set is replaced only by a good read of its file, below */
		nl_jwks_free(o->jwks);
		o->jwks = NULL;
	}
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
	if (pinned)
		nl_oidc_pinned_reload(o);
}
