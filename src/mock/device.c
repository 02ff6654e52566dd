/* nhslogin-mock: the Device Authorization Grant (RFC 8628), offered only with --device-endpoint
 * (real NHS login has none): POST /device_authorization, the /device page, and the grant at /token. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_time.h"
#include "nl_wipe.h"

/* No vowels (no words), no look-alikes. */
static const char user_code_alphabet[] = "BCDFGHJKLMNPQRSTVWXZ";

static int token_error(struct mock_req *r, const char *error, const char *desc)
{
	return mock_reply_oauth_error(r, 400, error, desc);
}

static int new_user_code(const struct mock *m, char out[10])
{
	unsigned char b[8];

	for (int attempt = 0; attempt < 16; attempt++) {
		if (nl_random_bytes(b, sizeof(b)) != 0)
			return NL_ERR_INTERNAL;
		for (int i = 0, o = 0; i < 8; i++) {
			if (i == 4)
				out[o++] = '-';
			out[o++] = user_code_alphabet[b[i] % (sizeof(user_code_alphabet) - 1)];
		}
		out[9] = '\0';
		if (mock_find_user_code(m, out) == NULL)
			return 0;
	}
	return NL_ERR_LIMIT;
}

/* Approve (or deny, if the user's level meets no vector) a pending device code. */
static void device_decide(struct mock_device *d, const struct mock_user *u)
{
	const char *vot = u != NULL ? mock_vot_choose(d->vtr, d->n_vtr, u) : NULL;

	if (vot == NULL || (d->vot = strdup(vot)) == NULL) {
		d->status = MOCK_DEVICE_DENIED;
		return;
	}
	d->user = u;
	d->auth_time = nl_now();
	d->status = MOCK_DEVICE_APPROVED;
}

static int device_response(struct mock_req *r, const struct mock *m, const struct mock_device *d)
{
	char *uri = NULL, *complete = NULL;
	json_t *o;
	int ret;

	if (asprintf(&uri, "%s/device", m->issuer) < 0) {
		uri = NULL;
		goto fail;
	}
	{
		const char *kv[] = {"user_code", d->user_code};
		if ((complete = mock_url_with_params(uri, kv, 2)) == NULL)
			goto fail;
	}
	o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i}", "device_code", d->device_code, "user_code", d->user_code,
	              "verification_uri", uri, "verification_uri_complete", complete, "expires_in",
	              MOCK_DEVICE_TTL, "interval", (int)m->set.device_interval);
	mock_fault_device_json(m, o);
	ret = mock_fault_reply_json(m, MOCK_EP_DEVICE_AUTHORIZATION, r, o);
	json_decref(o);
	free(uri);
	free(complete);
	return ret;
fail:
	free(uri);
	return mock_reply_oauth_error(r, 500, "server_error", "out of memory");
}

int mock_handle_device_authorization(struct mock_req *r)
{
	struct mock *m = mock_g;
	const char *aud[] = {m->token_endpoint, m->device_endpoint};
	const char *scope, *vtr, *nonce, *why = NULL;
	const struct mock_client *c;
	struct mock_device *d = NULL;
	char err[128];
	int rv = 0;

	if (!m->set.device_endpoint)
		return mock_reply(r, 404, "text/plain", "not found\n", 10, NULL);
	if (strcmp(r->method, "POST") != 0)
		return mock_reply(r, 405, "text/plain", "method not allowed\n", 19, NULL);
	if (mock_req_parse_form(r) != 0 || r->bad_params || r->dup_param)
		return token_error(r, "invalid_request",
		                   "the body must be a form without repeated parameters");
	if ((c = mock_client_auth(r, aud, 2, &rv)) == NULL)
		return rv;
	scope = mock_param(r, "scope");
	vtr = mock_param(r, "vtr");
	nonce = mock_param(r, "nonce");
	if (scope == NULL)
		return token_error(r, "invalid_request", "scope is required");
	if ((d = calloc(1, sizeof(*d))) == NULL)
		goto nomem;
	if ((rv = mock_scope_grant(c, scope, &d->scope, &why)) != 0) {
		mock_device_free(d);
		return rv == NL_ERR_NOMEM ? token_error(r, "server_error", "out of memory")
		                          : token_error(r, "invalid_scope", why);
	}
	if (mock_vtr_parse(vtr != NULL ? vtr : MOCK_DEFAULT_VTR, d->vtr, &d->n_vtr, err, sizeof(err)) != 0) {
		mock_device_free(d);
		return token_error(r, "invalid_request", err);
	}
	if (nl_random_token(32, &d->device_code) != 0 || new_user_code(m, d->user_code) != 0 ||
	    (d->client_id = strdup(c->client_id)) == NULL ||
	    (nonce != NULL && (d->nonce = strdup(nonce)) == NULL))
		goto nomem;
	d->expires = nl_now() + MOCK_DEVICE_TTL;
	d->status = MOCK_DEVICE_PENDING;
	if (m->auto_user != NULL)
		device_decide(d, m->auto_user);
	if (mock_list_add(&m->devices, d) != 0)
		goto nomem;
	return device_response(r, m, d);
nomem:
	mock_device_free(d);
	return mock_reply_oauth_error(r, 503, "temporarily_unavailable", "too many device codes in flight");
}

/* RFC 8628 §3.5. */
int mock_grant_device(struct mock_req *r, const struct mock_client *c)
{
	struct mock *m = mock_g;
	const char *code = mock_param(r, "device_code");
	struct mock_device *d;
	int64_t now_ms = nl_mono_ms(), last;

	if (code == NULL)
		return token_error(r, "invalid_request", "device_code is required");
	d = mock_find_device(m, code);
	if (d == NULL || strcmp(d->client_id, c->client_id) != 0)
		return token_error(r, "invalid_grant", "the device_code is unknown");
	if (d->status == MOCK_DEVICE_DONE)
		return token_error(r, "invalid_grant", "the device_code was already used");
	if (d->expires <= nl_now())
		return token_error(r, "expired_token", "the device_code has expired");
	last = d->last_poll_ms;
	d->last_poll_ms = now_ms;
	switch (d->status) {
	case MOCK_DEVICE_DENIED:
		return token_error(r, "access_denied",
		                   "the user declined or cannot meet the requested vectors");
	case MOCK_DEVICE_APPROVED:
		d->status = MOCK_DEVICE_DONE;
		d->grant = ++m->next_grant;
		return mock_issue_tokens(r, c, d->user, d->scope, d->vot, d->nonce, d->auth_time, d->grant,
		                         true);
	case MOCK_DEVICE_PENDING:
		if (last != 0 && now_ms - last < (int64_t)m->set.device_interval * 1000)
			return token_error(r, "slow_down", "polling faster than the interval");
		return token_error(r, "authorization_pending", "the user has not finished yet");
	case MOCK_DEVICE_DONE:
		break;
	}
	return token_error(r, "invalid_grant", "the device_code was already used");
}

/* Upper-case, drop '-' and spaces, and re-insert the dash: "kpwd rhxt" -> "KPWD-RHXT". */
static bool normalize_user_code(const char *in, char out[10])
{
	size_t o = 0;

	for (; in != NULL && *in != '\0'; in++) {
		char ch = *in >= 'a' && *in <= 'z' ? (char)(*in - 32) : *in;
		if (ch == '-' || ch == ' ')
			continue;
		if (o >= 9 || strchr(user_code_alphabet, ch) == NULL || ch == '\0')
			return false;
		if (o == 4)
			out[o++] = '-';
		out[o++] = ch;
	}
	out[o] = '\0';
	return o == 9;
}

static int device_form(struct mock_req *r, const struct mock *m, const char *prefill)
{
	char *buf = NULL, *code = mock_html_escape(prefill != NULL ? prefill : "");
	size_t len = 0;
	FILE *f = code != NULL ? open_memstream(&buf, &len) : NULL;
	int ret;

	if (f == NULL) {
		free(code);
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	}
	fprintf(f,
	        "<form method=\"post\" action=\"/device\">\n<p><label>Code <input name=\"user_code\" "
	        "value=\"%s\" "
	        "autocomplete=\"off\"></label></p>\n<p>Sign in as:</p>\n",
	        code);
	for (size_t i = 0; i < m->n_users; i++) {
		char *u = mock_html_escape(m->users[i].username);
		if (u == NULL)
			continue;
		fprintf(f, "<p><button type=\"submit\" name=\"user\" value=\"%s\">%s (P%d)</button></p>\n", u,
		        u, m->users[i].level);
		free(u);
	}
	fprintf(f, "<p><button type=\"submit\" name=\"decline\" value=\"1\">Decline</button></p>\n</form>\n");
	fclose(f);
	ret = mock_reply_html(r, 200, "Enter your code", buf != NULL ? buf : "");
	free(buf);
	free(code);
	return ret;
}

int mock_handle_device_page(struct mock_req *r)
{
	struct mock *m = mock_g;
	struct mock_device *d;
	char code[10];

	if (!m->set.device_endpoint)
		return mock_reply(r, 404, "text/plain", "not found\n", 10, NULL);
	if (strcmp(r->method, "GET") == 0)
		return device_form(r, m, mock_param(r, "user_code"));
	if (strcmp(r->method, "POST") != 0)
		return mock_reply(r, 405, "text/plain", "method not allowed\n", 19, NULL);
	if (mock_req_parse_form(r) != 0 || r->dup_param ||
	    !normalize_user_code(mock_param(r, "user_code"), code) ||
	    (d = mock_find_user_code(m, code)) == NULL || d->status != MOCK_DEVICE_PENDING ||
	    d->expires <= nl_now())
		return mock_reply_html(r, 400, "Code not recognised",
		                       "<p>That code is unknown, expired or already used.</p>");
	if (mock_param(r, "decline") != NULL) {
		d->status = MOCK_DEVICE_DENIED;
		return mock_reply_html(r, 200, "Sign-in declined", "<p>You can close this page.</p>");
	}
	if (mock_find_user(m, mock_param(r, "user")) == NULL)
		return mock_reply_html(r, 400, "Unknown user", "<p>No such test user.</p>");
	device_decide(d, mock_find_user(m, mock_param(r, "user")));
	if (d->status == MOCK_DEVICE_DENIED)
		return mock_reply_html(r, 200, "Identity level too low",
		                       "<p>This user's identity level does not meet the request.</p>");
	return mock_reply_html(r, 200, "Signed in", "<p>Signed in - return to your device.</p>");
}
