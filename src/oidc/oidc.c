/* The OpenID client of nhslogind: the object (client key, counters), the outcome words, the
 * authorize URL and PKCE. The caches are in oidc_cache.c, the token endpoint in oidc_grant.c and
 * RFC 8628 native mode in oidc_device.c; one mutex guards the caches and counters. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "nl_b64.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_jose.h"
#include "nl_log.h"
#include "nl_wipe.h"
#include "oidc_int.h"

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
int nl_oidc_outcome_err(enum nl_outcome o)
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

/* The identity holds the refresh token: nl_identity_clear wipes it. */
void nl_grant_result_clear(struct nl_grant_result *res)
{
	if (res == NULL)
		return;
	nl_identity_clear(&res->id);
	nl_free_secret(res->raw_id_token);
	nl_free_secret(res->raw_access_token);
	memset(res, 0, sizeof(*res));
}

void nl_oidc_keep_raw(struct nl_oidc *o, bool keep)
{
	pthread_mutex_lock(&o->mu);
	o->keep_raw = keep;
	pthread_mutex_unlock(&o->mu);
}

/* The line is kept for status (last_error) as well as given to the caller. */
void nl_oidc_err(struct nl_oidc *o, char *err, size_t errlen, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	nl_verrf(line, sizeof(line), 0, fmt, ap);
	va_end(ap);
	nl_errf(err, errlen, 0, "%s", line);
	pthread_mutex_lock(&o->mu);
	snprintf(o->st.last_error, sizeof(o->st.last_error), "%s", line);
	pthread_mutex_unlock(&o->mu);
}

void nl_oidc_http_opts(const struct nl_oidc *o, size_t max_body, const char *bearer,
                       struct nl_http_opts *opts)
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

/* Is a Content-Type application/json (any case, parameters such as charset allowed)? */
bool nl_oidc_is_json_type(const char *ct)
{
	static const char json[] = "application/json";
	size_t n = sizeof(json) - 1;

	if (ct == NULL)
		return false;
	ct += strspn(ct, " \t");
	return strncasecmp(ct, json, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

/* ---- the object ---- */

int nl_oidc_new(const struct nl_config *cfg, struct nl_oidc **out, char *err, size_t errlen)
{
	struct nl_oidc *o = NULL;
	char kerr[200] = "";
	int r = NL_ERR_CONFIG;
	bool agent;

	if (cfg == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	/* An agent only checks what its bridge hands over (doc/bridge.md): it never calls the token
	 * endpoint, so it holds no client key, and every grant fails closed without one. */
	agent = cfg->role == NL_ROLE_AGENT;
	if (cfg->env.issuer == NULL || cfg->env.client_id == NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "environment needs issuer and client_id");
	if (!agent && (cfg->env.client_key == NULL || cfg->env.redirect_uri == NULL))
		return nl_errf(err, errlen, NL_ERR_CONFIG,
		               "environment needs issuer, client_id, client_key and redirect_uri");
	if (cfg->env.n_allowed_algs == 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "environment has no allowed_algs");
	if ((r = nl_http_global_init()) != 0)
		return nl_errf(err, errlen, r, "HTTP client init failed");
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return NL_ERR_NOMEM;
	o->cfg = cfg;
	if (pthread_mutex_init(&o->mu, NULL) != 0) {
		free(o);
		return NL_ERR_INTERNAL;
	}
	if (agent) {
		if (cfg->agent_jwks_file != NULL && (r = nl_oidc_pinned_load(o, err, errlen)) != 0)
			goto out;
		goto done;
	}
	if ((r = nl_jwk_load_private_pem(cfg->env.client_key, &o->key, kerr, sizeof(kerr))) != 0) {
		nl_errf(err, errlen, r, "client key: %s", kerr);
		goto out;
	}
	if ((r = nl_oidc_client_kid(&cfg->env, o->key, &o->kid)) != 0) {
		nl_errf(err, errlen, r, "client key: cannot compute its thumbprint");
		goto out;
	}
done:
	*out = o;
	o = NULL;
	r = 0;
out:
	nl_oidc_free(o);
	return r;
}

int nl_oidc_client_kid(const struct nl_env *env, const cjose_jwk_t *key, char **kid)
{
	*kid = NULL;
	if (env->client_key_id != NULL && strcmp(env->client_key_id, "none") == 0)
		return 0;
	/* The RFC 7638 thumbprint is a stable kid for the assertion header. */
	*kid = env->client_key_id != NULL ? strdup(env->client_key_id) : nl_jwk_thumbprint(key);
	return *kid != NULL ? 0 : NL_ERR_KEY;
}

const char *nl_oidc_error_hint(const char *word)
{
	if (word != NULL && strcmp(word, "invalid_client") == 0)
		return " (NHS login refused the client assertion: register the public key as `nhsloginctl "
		       "key` "
		       "prints it, with its kid, or set client_key_id to the kid it was registered with, or "
		       "none)";
	return "";
}

void nl_oidc_free(struct nl_oidc *o)
{
	if (o == NULL)
		return;
	nl_oidc_disc_free(o->disc);
	nl_jwks_free(o->jwks);
	if (o->key != NULL)
		cjose_jwk_release(o->key);
	free(o->kid);
	pthread_mutex_destroy(&o->mu);
	free(o);
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
	if (env->redirect_uri == NULL)
		return NL_ERR_CONFIG; /* an agent's: its bridge makes the authorize URL */
	if ((r = nl_oidc_copy_disc(o, &d, err, sizeof(err))) != 0) {
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
	nl_oidc_disc_clear(&d);
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
