/* nhslogin-mock: GET/POST /authorize and the user-picking page (POST /authorize/decision), with the
 * scope and vector-of-trust rules of the NHS login interface spec (EIS §3.4.1, Tables 1, 5, 21). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"
#include "nl_text.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_time.h"
#include "nl_wipe.h"

/* What the mock answers for a person below every requested level (see stepup_page). */
#define LEVEL_TOO_LOW                                                                                        \
	"identity level too low: the person's NHS login is not verified to a level the service asked for "   \
	"(step-up needed)"

const char *const mock_scopes_supported[] = {
    "openid",
    "profile",
    "email",
    "phone",
    "profile_extended",
    "basic_demographics",
    "gp_registration_details",
    NULL,
};

size_t mock_n_scopes(void)
{
	size_t n = 0;
	while (mock_scopes_supported[n] != NULL)
		n++;
	return n;
}

bool mock_scope_has(const char *scope, const char *name)
{
	return nl_words_has(scope, name);
}

static bool scope_known(const char *s, size_t len)
{
	for (size_t i = 0; mock_scopes_supported[i] != NULL; i++)
		if (strlen(mock_scopes_supported[i]) == len && strncmp(mock_scopes_supported[i], s, len) == 0)
			return true;
	return false;
}

int mock_scope_grant(const struct mock_client *c, const char *req, char **out, const char **why)
{
	char *g = calloc(1, strlen(req) + 1);
	size_t o = 0;

	if (g == NULL)
		return NL_ERR_NOMEM;
	for (const char *p = req + strspn(req, " "); *p != '\0';) {
		size_t len = strcspn(p, " ");
		if (scope_known(p, len)) {
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)len, p);
			if (c->scopes != NULL && !mock_scope_has(c->scopes, name)) {
				free(g);
				*why = "a scope is not allowed for this client";
				return NL_ERR_DENIED;
			}
			if (!mock_scope_has(g, name)) {
				if (o > 0)
					g[o++] = ' ';
				memcpy(g + o, p, len);
				o += len;
			}
		}
		p += len;
		p += strspn(p, " ");
	}
	if (!mock_scope_has(g, "openid")) {
		free(g);
		*why = "scope must include openid";
		return NL_ERR_DENIED;
	}
	if (mock_scope_has(g, "profile") && mock_scope_has(g, "basic_demographics")) {
		free(g);
		*why = "basic_demographics cannot be combined with profile";
		return NL_ERR_DENIED;
	}
	*out = g;
	return 0;
}

static bool vector_valid(const char *v)
{
	static const char *const tails[] = {".Cp", ".Cp.Cd", ".Cp.Ck", ".Cm", NULL};

	if (v[0] != 'P' || (v[1] != '0' && v[1] != '5' && v[1] != '9'))
		return false;
	for (size_t i = 0; tails[i] != NULL; i++)
		if (strcmp(v + 2, tails[i]) == 0)
			return true;
	return false;
}

int mock_vtr_parse(const char *json, char **vtr, size_t *n, char *err, size_t errlen)
{
	json_t *arr = NULL, *v;
	size_t i;
	int r = NL_ERR_INVALID;

	*n = 0;
	if (nl_json_parse(json, strlen(json), 4096, 2, false, &arr, NULL, 0) != 0 || !json_is_array(arr) ||
	    json_array_size(arr) == 0 || json_array_size(arr) > MOCK_MAX_VTR) {
		snprintf(err, errlen, "vtr must be a JSON array of 1 to %d vectors", MOCK_MAX_VTR);
		goto out;
	}
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || !vector_valid(json_string_value(v))) {
			snprintf(err, errlen, "vtr holds an unsupported vector");
			goto out;
		}
		if ((vtr[*n] = strdup(json_string_value(v))) == NULL) {
			r = NL_ERR_NOMEM;
			goto out;
		}
		(*n)++;
	}
	r = 0;
out:
	if (r != 0) {
		mock_vtr_free(vtr, *n);
		*n = 0;
	}
	json_decref(arr);
	return r;
}

const char *mock_vot_choose(char *const *vtr, size_t n, const struct mock_user *user)
{
	for (size_t i = 0; i < n; i++)
		if (user->level >= vtr[i][1] - '0')
			return vtr[i];
	return NULL;
}

static size_t count_param(const struct mock_req *r, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_params; i++)
		n += strcmp(r->params[i].name, name) == 0;
	return n;
}

static int error_page(struct mock_req *r, const char *title, const char *text)
{
	char *t = mock_html_escape(text), *body = NULL;
	int ret;

	if (t == NULL || asprintf(&body, "<p>%s</p><p>You have not been redirected.</p>", t) < 0) {
		free(t);
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	}
	ret = mock_reply_html(r, 400, title, body);
	free(t);
	free(body);
	return ret;
}

/* An error returned to the client on its redirect URI (EIS Table 5). */
static int error_redirect(struct mock_req *r, const char *redirect_uri, const char *error, const char *desc,
                          const char *state)
{
	const char *kv[] = {"error", error, "error_description", desc, "state", state};
	char *loc = mock_url_with_params(redirect_uri, kv, 6);
	int ret;

	if (loc == NULL)
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	ret = mock_reply_redirect(r, loc);
	free(loc);
	return ret;
}

/* Make a code for user and send the browser back with it. */
static int approve(struct mock_req *r, struct mock *m, const struct mock_authreq *a,
                   const struct mock_user *user)
{
	const char *vot = mock_vot_choose(a->vtr, a->n_vtr, user);
	struct mock_code *c = NULL;
	char *loc = NULL;
	int ret;

	if (vot == NULL)
		return error_redirect(r, a->redirect_uri, "access_denied", LEVEL_TOO_LOW, a->state);
	if ((c = calloc(1, sizeof(*c))) == NULL || nl_random_token(32, &c->code) != 0 ||
	    (c->client_id = strdup(a->client_id)) == NULL ||
	    (c->redirect_uri = strdup(a->redirect_uri)) == NULL || (c->nonce = strdup(a->nonce)) == NULL ||
	    (c->vot = strdup(vot)) == NULL || (c->scope = strdup(a->scope)) == NULL ||
	    (a->challenge != NULL && (c->challenge = strdup(a->challenge)) == NULL))
		goto fail;
	c->user = user;
	c->auth_time = nl_now();
	c->expires = c->auth_time + MOCK_CODE_TTL;
	c->grant = ++m->next_grant;
	if (mock_list_add(&m->codes, c) != 0)
		goto fail;
	{
		const char *kv[16] = {"code", c->code, "state", a->state};
		size_t n_kv = 4;
		mock_fault_authz_params(m, kv, &n_kv, sizeof(kv) / sizeof(kv[0]));
		loc = mock_url_with_params(a->redirect_uri, kv, n_kv);
	}
	if (loc == NULL)
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	ret = mock_reply_redirect(r, loc);
	nl_free_secret(loc);
	return ret;
fail:
	mock_code_free(c);
	return error_redirect(r, a->redirect_uri, "temporarily_unavailable", "too many codes in flight",
	                      a->state);
}

/* A person whose identity level meets none of the requested vectors (P5 when the service asks
 * for P9). NHS login would lead them into its step-up journey (prove their identity with photo ID);
 * the mock cannot, so its page says what happened and the person can only stop, which NHS login
 * answers as access_denied: the error word says no more than "denied", the description says why. */

static int stepup_page(struct mock_req *r, const struct mock_authreq *a, const struct mock_user *user)
{
	char *body = NULL, *name = mock_html_escape(user->username);
	int ret;

	if (name == NULL ||
	    asprintf(&body,
	             "<p><strong>Identity level too low.</strong> %s is verified to P%d; this service "
	             "asked for a higher level.</p>\n"
	             "<p>NHS login would now ask %s to prove their identity (step-up from P5 to P9, with "
	             "photo ID). The mock cannot do that: stopping here answers the service "
	             "<code>access_denied</code>, as NHS login does when a person stops.</p>\n"
	             "<form method=\"post\" action=\"/authorize/decision\">\n"
	             "<input type=\"hidden\" name=\"req\" value=\"%s\">\n"
	             "<p><button type=\"submit\" name=\"stepup_stop\" value=\"1\">Stop and return to the "
	             "service</button></p>\n</form>\n",
	             name, user->level, name, a->id) < 0)
		body = NULL;
	free(name);
	if (body == NULL)
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	ret = mock_reply_html(r, 200, "Identity level too low", body);
	free(body);
	return ret;
}

/* The page where the tester picks a user (no --auto-approve). */
static int user_page(struct mock_req *r, struct mock *m, struct mock_authreq *a)
{
	char *body = NULL, *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	if (f == NULL)
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	fprintf(f,
	        "<p>Choose a test user to sign in as.</p>\n<form method=\"post\" "
	        "action=\"/authorize/decision\">\n"
	        "<input type=\"hidden\" name=\"req\" value=\"%s\">\n",
	        a->id);
	for (size_t i = 0; i < m->n_users; i++) {
		char *u = mock_html_escape(m->users[i].username);
		if (u == NULL)
			continue;
		fprintf(f, "<p><button type=\"submit\" name=\"user\" value=\"%s\">%s (P%d%s)</button></p>\n",
		        u, u, m->users[i].level,
		        mock_vot_choose(a->vtr, a->n_vtr, &m->users[i]) == NULL ? ", identity level too low"
		                                                                : "");
		free(u);
	}
	fprintf(f, "<p><button type=\"submit\" name=\"decline\" value=\"1\">Decline</button></p>\n</form>\n");
	fclose(f);
	body = buf;
	ret = mock_reply_html(r, 200, "Sign in to NHS login (mock)", body != NULL ? body : "");
	free(buf);
	return ret;
}

/* Validate the request (EIS Table 1); on success *out is a new request. */
static int check_request(struct mock_req *r, const struct mock_client *c, const char *redirect_uri,
                         struct mock_authreq **out)
{
	const char *state = mock_param(r, "state"), *nonce = mock_param(r, "nonce"), *rt;
	const char *scope = mock_param(r, "scope"), *vtr = mock_param(r, "vtr"), *why = NULL;
	const char *prompt = mock_param(r, "prompt"), *display = mock_param(r, "display");
	const char *cc = mock_param(r, "code_challenge"), *ccm = mock_param(r, "code_challenge_method");
	const char *rm = mock_param(r, "response_mode");
	struct mock_authreq *a = NULL;
	char err[128];
	int ret;

	*out = NULL;
	if (r->dup_param)
		return error_redirect(r, redirect_uri, "invalid_request", "a parameter is repeated", state);
	if (mock_param(r, "request") != NULL)
		return error_redirect(r, redirect_uri, "request_not_supported",
		                      "request objects are not supported", state);
	if (mock_param(r, "request_uri") != NULL)
		return error_redirect(r, redirect_uri, "request_uri_not_supported",
		                      "request_uri is not supported", state);
	if (mock_param(r, "registration") != NULL)
		return error_redirect(r, redirect_uri, "registration_not_supported",
		                      "registration is not supported", state);
	if ((rt = mock_param(r, "response_type")) == NULL)
		return error_redirect(r, redirect_uri, "invalid_request", "response_type is required", state);
	if (strcmp(rt, "code") != 0)
		return error_redirect(r, redirect_uri, "unsupported_response_type", "only response_type=code",
		                      state);
	if (rm != NULL && strcmp(rm, "query") != 0)
		return error_redirect(r, redirect_uri, "invalid_request", "only response_mode=query", state);
	if (scope == NULL)
		return error_redirect(r, redirect_uri, "invalid_request", "scope is required", state);
	if (state == NULL || state[0] == '\0')
		return error_redirect(r, redirect_uri, "invalid_request", "state is required", NULL);
	if (nonce == NULL || nonce[0] == '\0')
		return error_redirect(r, redirect_uri, "invalid_request", "nonce is required", state);
	if (display != NULL && strcmp(display, "page") != 0 && strcmp(display, "touch") != 0)
		return error_redirect(r, redirect_uri, "invalid_request", "display must be page or touch",
		                      state);
	if (prompt != NULL && prompt[0] != '\0' && strcmp(prompt, "none") != 0 &&
	    strcmp(prompt, "login") != 0)
		return error_redirect(r, redirect_uri, "invalid_request", "prompt must be none or login",
		                      state);
	if (prompt != NULL && strcmp(prompt, "none") == 0 && mock_g->auto_user == NULL)
		return error_redirect(r, redirect_uri, "sso_login_required", "there is no session", state);
	if (prompt != NULL && strcmp(prompt, "login") == 0)
		mock_g->prompt_login++; /* counted for the tests: the mock has no session to forget */
	if (ccm != NULL && cc == NULL)
		return error_redirect(r, redirect_uri, "invalid_request",
		                      "code_challenge_method without code_challenge", state);
	if (cc != NULL && (ccm == NULL || strcmp(ccm, "S256") != 0))
		return error_redirect(r, redirect_uri, "invalid_request", "only code_challenge_method=S256",
		                      state);
	if (cc != NULL &&
	    (strlen(cc) != 43 ||
	     strspn(cc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != 43))
		return error_redirect(r, redirect_uri, "invalid_request",
		                      "code_challenge is not an S256 value", state);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto nomem;
	if ((ret = mock_scope_grant(c, scope, &a->scope, &why)) != 0) {
		mock_authreq_free(a);
		if (ret == NL_ERR_NOMEM)
			goto nomem;
		return error_redirect(r, redirect_uri, "invalid_scope", why, state);
	}
	if (mock_vtr_parse(vtr != NULL ? vtr : MOCK_DEFAULT_VTR, a->vtr, &a->n_vtr, err, sizeof(err)) != 0) {
		mock_authreq_free(a);
		return error_redirect(r, redirect_uri, "invalid_request", err, state);
	}
	if ((a->client_id = strdup(c->client_id)) == NULL ||
	    (a->redirect_uri = strdup(redirect_uri)) == NULL || (a->state = strdup(state)) == NULL ||
	    (a->nonce = strdup(nonce)) == NULL || (cc != NULL && (a->challenge = strdup(cc)) == NULL) ||
	    nl_random_token(16, &a->id) != 0) {
		mock_authreq_free(a);
		goto nomem;
	}
	a->expires = nl_now() + MOCK_AUTHREQ_TTL;
	*out = a;
	return 0;
nomem:
	return error_redirect(r, redirect_uri, "server_error", "out of memory", state);
}

int mock_handle_authorize(struct mock_req *r)
{
	struct mock *m = mock_g;
	const struct mock_client *c;
	const char *redirect_uri;
	struct mock_authreq *a = NULL;
	int ret;

	if (strcmp(r->method, "POST") == 0) {
		if (mock_req_parse_form(r) != 0)
			return error_page(r, "Bad request", "The request could not be read.");
	} else if (strcmp(r->method, "GET") != 0) {
		return mock_reply(r, 405, "text/plain", "method not allowed\n", 19, NULL);
	}
	if (r->bad_params)
		return error_page(r, "Bad request", "The request could not be read.");
	if (count_param(r, "client_id") != 1 || (c = mock_find_client(m, mock_param(r, "client_id"))) == NULL)
		return error_page(r, "Unknown client", "The client_id is missing or not registered.");
	redirect_uri = mock_param(r, "redirect_uri");
	if (count_param(r, "redirect_uri") != 1 || !mock_client_has_redirect(c, redirect_uri))
		return error_page(
		    r, "Invalid redirect URI",
		    "The redirect_uri is missing or does not match one registered for this client.");
	ret = check_request(r, c, redirect_uri, &a);
	if (a == NULL)
		return ret;
	if (m->auto_user != NULL) {
		ret = approve(r, m, a, m->auto_user);
		mock_authreq_free(a);
		return ret;
	}
	if (mock_list_add(&m->authreqs, a) != 0) {
		ret = error_redirect(r, a->redirect_uri, "temporarily_unavailable",
		                     "too many sign-ins in progress", a->state);
		mock_authreq_free(a);
		return ret;
	}
	return user_page(r, m, a);
}

int mock_handle_decision(struct mock_req *r)
{
	struct mock *m = mock_g;
	struct mock_authreq *a;
	const struct mock_user *u;
	const char *id;
	int ret;

	if (strcmp(r->method, "POST") != 0)
		return mock_reply(r, 405, "text/plain", "method not allowed\n", 19, NULL);
	if (mock_req_parse_form(r) != 0 || r->dup_param || (id = mock_param(r, "req")) == NULL ||
	    (a = mock_take_authreq(m, id)) == NULL)
		return error_page(r, "Sign-in expired",
		                  "This sign-in request has expired or was already used.");
	if (mock_param(r, "decline") != NULL)
		ret = error_redirect(r, a->redirect_uri, "access_denied", "the user declined", a->state);
	else if (mock_param(r, "stepup_stop") != NULL)
		ret = error_redirect(r, a->redirect_uri, "access_denied", LEVEL_TOO_LOW, a->state);
	else if ((u = mock_find_user(m, mock_param(r, "user"))) == NULL)
		ret = error_page(r, "Unknown user", "No such test user.");
	else if (mock_vot_choose(a->vtr, a->n_vtr, u) == NULL && mock_list_add(&m->authreqs, a) == 0)
		return stepup_page(r, a, u); /* the request stays pending for the page's button */
	else
		ret = approve(r, m, a, u);
	mock_authreq_free(a);
	return ret;
}
