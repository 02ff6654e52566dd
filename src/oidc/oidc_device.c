/* RFC 8628 native mode of the OpenID client: the device authorization request, its answer's
 * rules (what reaches the person's terminal is printable ASCII), and one poll of the token endpoint. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl_err.h"
#include "nl_json.h"
#include "nl_wipe.h"
#include "oidc_int.h"

#define MAX_DEVICE_RESP     (16 * 1024)
#define MAX_USER_CODE       64
#define MAX_DEVICE_INTERVAL 60 /* the longest polling interval the device poller keeps */

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
		nl_errf(why, whylen, r, "a code or URI is missing, empty, too long or not a string");
		goto fail;
	}
	r = NL_ERR_INVALID;
	if (!visible_ascii(d.user_code)) {
		nl_errf(why, whylen, r, "user_code is not printable ASCII");
		goto fail;
	}
	/* A URI is ASCII (RFC 3986); the parser below would pass UTF-8 such as a C1 control (CSI) or a
	 * right-to-left override, which a terminal obeys or shows reversed. */
	if (!visible_ascii(d.verification_uri) ||
	    (d.verification_uri_complete != NULL && !visible_ascii(d.verification_uri_complete))) {
		nl_errf(why, whylen, r, "a verification URI is not printable ASCII");
		goto fail;
	}
	if (!nl_url_allowed(d.verification_uri) ||
	    (d.verification_uri_complete != NULL && !nl_url_allowed(d.verification_uri_complete))) {
		nl_errf(why, whylen, r, "a verification URI is not an allowed URL");
		goto fail;
	}
	if (nl_json_int(j, "expires_in", &v) != 0 || v < 1 || v > 86400) {
		nl_errf(why, whylen, r, "expires_in is not an integer of 1..86400 (RFC 8628 3.2)");
		goto fail;
	}
	d.expires_in = (int)v;
	d.interval = 5;
	if ((r = nl_json_int(j, "interval", &v)) == 0) {
		/* The minimum wait between polls: waiting longer is allowed (so 0 becomes 1), waiting
		 * less is not - an interval we cannot keep is refused, not shortened. */
		r = NL_ERR_INVALID;
		if (v < 0 || v > MAX_DEVICE_INTERVAL || v >= d.expires_in) {
			nl_errf(why, whylen, r, "interval is not an integer of 0..%d below expires_in",
			        MAX_DEVICE_INTERVAL);
			goto fail;
		}
		d.interval = v < 1 ? 1 : (int)v;
	} else if (r != NL_ERR_NOT_FOUND) {
		nl_errf(why, whylen, r, "interval is not an integer (RFC 8628 3.2)");
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
	if ((r = nl_oidc_copy_disc(o, &d, err, errlen)) != 0) {
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if (d.device_endpoint == NULL) {
		nl_oidc_err(o, err, errlen, "discovery has no device_authorization_endpoint");
		r = NL_ERR_CONFIG;
		goto out;
	}
	if ((r = nl_form_add(&form, "scope", o->cfg->env.scope != NULL ? o->cfg->env.scope : "openid")) !=
	        0 ||
	    (o->cfg->env.vtr != NULL && (r = nl_form_add(&form, "vtr", o->cfg->env.vtr)) != 0) ||
	    (r = nl_oidc_client_auth(o, d.token_endpoint, &form)) != 0) {
		nl_oidc_err(o, err, errlen, "device authorization request: %s", nl_strerror(r));
		goto out;
	}
	if ((r = nl_oidc_post(o, d.device_endpoint, form, MAX_DEVICE_RESP, &resp,
	                      "device authorization endpoint", err, errlen)) != 0)
		goto out;
	r = NL_ERR_UNAVAILABLE;
	if (resp.status != 200) {
		nl_oidc_err(o, err, errlen, "device authorization endpoint: HTTP %ld", resp.status);
		goto out;
	}
	if (nl_oidc_parse_body(&resp, MAX_DEVICE_RESP, &j) != 0) {
		nl_oidc_err(o, err, errlen, "device authorization endpoint: malformed response");
		goto out;
	}
	if (!nl_oidc_is_json_type(resp.content_type)) {
		nl_oidc_err(
		    o, err, errlen,
		    "device authorization endpoint: Content-Type is not application/json (RFC 8628 3.2)");
		goto out;
	}
	if (parse_device_auth(j, out, why, sizeof(why)) != 0) {
		nl_oidc_err(o, err, errlen, "device authorization endpoint: malformed response: %s", why);
		goto out;
	}
	r = 0;
out:
	nl_oidc_wipe_token_json(j);
	nl_http_resp_free(&resp);
	nl_free_secret(form);
	nl_oidc_disc_clear(&d);
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

int nl_oidc_device_poll(struct nl_oidc *o, const char *device_code, struct nl_grant_result *res)
{
	struct disc d;
	struct nl_oidc_token_reply reply;
	struct nl_oidc_token_req req = {.disc = &d, .nonce = NULL};
	const char *word;
	char *form = NULL;
	int r;

	memset(&d, 0, sizeof(d));
	memset(&reply, 0, sizeof(reply));
	if (o == NULL || device_code == NULL || res == NULL)
		return NL_ERR_INTERNAL;
	nl_oidc_grant_begin(res);
	if (*device_code == '\0' || strlen(device_code) > MAX_DEVICE_CODE) {
		nl_oidc_err(o, res->error, sizeof(res->error), "device code missing or too long");
		return NL_ERR_UNAVAILABLE;
	}
	if ((r = nl_oidc_copy_disc(o, &d, res->error, sizeof(res->error))) != 0) {
		r = NL_ERR_UNAVAILABLE;
		goto out;
	}
	if ((r = nl_form_add(&form, "grant_type", "urn:ietf:params:oauth:grant-type:device_code")) != 0 ||
	    (r = nl_form_add(&form, "device_code", device_code)) != 0 ||
	    (r = nl_oidc_client_auth(o, d.token_endpoint, &form)) != 0) {
		nl_oidc_err(o, res->error, sizeof(res->error), "device token request: %s", nl_strerror(r));
		goto out;
	}
	req.form = form;
	r = nl_oidc_token_request(o, &req, res, &reply);
	if (reply.final)
		goto out;
	word = reply.word;
	res->outcome = reply.resp.status == 400 ? device_error_outcome(word) : NL_OUT_UNAVAILABLE;
	r = nl_oidc_outcome_err(res->outcome);
	if (res->outcome == NL_OUT_UNAVAILABLE)
		nl_oidc_err(o, res->error, sizeof(res->error), "token endpoint: HTTP %ld%s%s%s",
		            reply.resp.status, word ? " " : "", word ? word : "", nl_oidc_error_hint(word));
	else if (res->outcome != NL_OUT_PENDING && res->outcome != NL_OUT_SLOW_DOWN)
		nl_oidc_err(o, res->error, sizeof(res->error), "device grant: %s", word);
	else /* the usual answer while the person signs in: not an error for status */
		nl_errf(res->error, sizeof(res->error), r, "device grant: %s", word);
out:
	r = nl_oidc_grant_end(res, r);
	nl_oidc_token_reply_clear(&reply);
	nl_free_secret(form);
	nl_oidc_disc_clear(&d);
	return r;
}
