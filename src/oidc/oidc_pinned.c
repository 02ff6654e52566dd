/* An agent's pinned JWKS ([agent] jwks_file): NHS login's keys read from a file the site keeps,
 * instead of fetched from the issuer. The file is read and judged here, for the daemon (at start and
 * at a flush) and for nhsloginctl check alike; the OpenID client then verifies with these keys only. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl_b64.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_text.h"
#include "oidc_int.h"

#define PINNED_KID_MAX 64 /* a kid repeated in a log line is cut to this */

int nl_oidc_pinned_read(const struct nl_config *cfg, struct nl_jwks **out, char *note, size_t notelen,
                        char *err, size_t errlen)
{
	const char *path = cfg->agent_jwks_file;
	struct nl_jwks *set = NULL;
	char *text = NULL, why[256] = "", algs[96] = "";
	size_t len = 0, usable = 0;
	int r;

	*out = NULL;
	if (note != NULL && notelen > 0)
		note[0] = '\0';
	if (path == NULL)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "no [agent] jwks_file");
	/* the owner, mode and size rules of every file nhslogind trusts; the path in its messages */
	if ((r = nl_read_file_checked(path, false, NL_JWKS_MAX, &text, &len, why, sizeof(why))) != 0)
		return nl_errf(err, errlen, r, "[agent] jwks_file %s", why);
	if ((r = nl_jwks_parse_report(text, len, &set, why, sizeof(why))) != 0) {
		nl_errf(
		    err, errlen, r == NL_ERR_NOMEM ? r : NL_ERR_CONFIG,
		    "[agent] jwks_file %s: not a usable JWKS: %s%s", path, why[0] ? why : nl_strerror(r),
		    r == NL_ERR_KEY && strstr(why, "private") != NULL
		        ? " (a published key set is public: remove the file, and never copy a private key "
		          "into it)"
		        : "");
		r = r == NL_ERR_NOMEM ? r : NL_ERR_CONFIG;
		goto out;
	}
	for (size_t i = 0; i < cfg->env.n_allowed_algs; i++) {
		usable += nl_jwks_count_for_alg(set, cfg->env.allowed_algs[i]);
		snprintf(algs + strlen(algs), sizeof(algs) - strlen(algs), "%s%s", i > 0 ? "," : "",
		         cfg->env.allowed_algs[i]);
	}
	if (usable == 0) {
		r = nl_errf(err, errlen, NL_ERR_CONFIG,
		            "[agent] jwks_file %s: no signing key for %s (allowed_algs): NHS login signs ID "
		            "tokens with RSA keys for RS512",
		            path, algs);
		goto out;
	}
	if (why[0] != '\0' && note != NULL) /* keys left out for breaking a rule: the others serve */
		snprintf(note, notelen, "%s", why);
	*out = set;
	set = NULL;
	r = 0;
out:
	nl_jwks_free(set);
	free(text);
	return r;
}

void nl_oidc_pinned_kid(const char *compact, char *out, size_t outlen)
{
	const char *dot = compact != NULL ? strchr(compact, '.') : NULL;
	uint8_t *hdr = NULL;
	size_t hdr_len = 0;
	json_t *h = NULL;
	const char *kid;

	snprintf(out, outlen, "(none)");
	if (dot == NULL || nl_b64url_decode(compact, (size_t)(dot - compact), &hdr, &hdr_len) != 0)
		return;
	if (nl_json_parse((const char *)hdr, hdr_len, NL_JWS_MAX, NL_JSON_MAX_DEPTH, true, &h, NULL, 0) ==
	        0 &&
	    (kid = nl_json_str(h, "kid")) != NULL) {
		/* the bridge chose these bytes: printable ASCII only, and short, in a log line */
		char cut[PINNED_KID_MAX + 1];
		nl_text_ascii_copy(kid, cut, sizeof(cut));
		snprintf(out, outlen, "\"%s\"%s", cut, strlen(kid) > PINNED_KID_MAX ? "..." : "");
	}
	json_decref(h);
	free(hdr);
}

/* Called by nl_oidc_new: the agent's keys from its file, or the daemon does not start. */
int nl_oidc_pinned_load(struct nl_oidc *o, char *err, size_t errlen)
{
	struct nl_jwks *set = NULL;
	char note[256] = "";
	int r;

	if ((r = nl_oidc_pinned_read(o->cfg, &set, note, sizeof(note), err, errlen)) != 0)
		return r;
	if (note[0] != '\0')
		nl_warn("oidc: [agent] jwks_file %s: %s", o->cfg->agent_jwks_file, note);
	pthread_mutex_lock(&o->mu);
	nl_jwks_free(o->jwks);
	o->jwks = set;
	o->pinned = true;
	o->st.jwks_pinned_keys = nl_jwks_count(set);
	pthread_mutex_unlock(&o->mu);
	nl_notice("oidc: NHS login's keys are pinned: %zu from %s; discovery and JWKS are never fetched",
	          nl_jwks_count(set), o->cfg->agent_jwks_file);
	return 0;
}

/* A flush re-reads the file; a file that no longer reads keeps the keys read before. */
void nl_oidc_pinned_reload(struct nl_oidc *o)
{
	struct nl_jwks *set = NULL;
	char note[256] = "", err[512] = "";
	size_t kept;

	if (nl_oidc_pinned_read(o->cfg, &set, note, sizeof(note), err, sizeof(err)) != 0) {
		pthread_mutex_lock(&o->mu);
		kept = nl_jwks_count(o->jwks);
		pthread_mutex_unlock(&o->mu);
		nl_err("oidc: %s; the keys read before (%zu) stay in use", err, kept);
		return;
	}
	if (note[0] != '\0')
		nl_warn("oidc: [agent] jwks_file %s: %s", o->cfg->agent_jwks_file, note);
	pthread_mutex_lock(&o->mu);
	nl_jwks_free(o->jwks);
	o->jwks = set;
	o->st.jwks_pinned_keys = nl_jwks_count(set);
	pthread_mutex_unlock(&o->mu);
	nl_notice("oidc: [agent] jwks_file %s read again: %zu keys", o->cfg->agent_jwks_file,
	          nl_jwks_count(set));
}
