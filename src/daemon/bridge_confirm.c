/* The bridge's confirmation page (doc/threat-model.md): what the flow's own record says, the form
 * token, the browser binding cookie, and the hop to NHS login's /authorize or the refusal. */
#include "config.h"
#include "bridge_int.h"
#include "nl_text.h"

#include <microhttpd.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl_b64.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "pages.h"

/* ---- the confirmation page ---- */

static bool b64url_exact(const char *s, size_t n)
{
	return s != NULL && strlen(s) == n &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* The request's binding cookie, or NULL when it has none that could be ours. */
const char *bridge_request_cookie(struct MHD_Connection *conn)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, BRIDGE_COOKIE);

	return b64url_exact(v, BRIDGE_COOKIE_LEN) ? v : NULL;
}

/* A flow id as nl_flows hands them out: "f-" and 16 hex digits. */
static bool flow_id_ok(const char *id)
{
	return strlen(id) == NL_FLOW_ID_LEN - 2 && strncmp(id, "f-", 2) == 0 &&
	       strspn(id + 2, "0123456789abcdef") == NL_FLOW_ID_LEN - 4;
}

/* What the flow keeps of a browser: the SHA-256 of its cookie value. */
int bridge_browser_hash(const char *cookie, unsigned char out[NL_FLOW_BROWSER_LEN])
{
	unsigned int n = 0;

	return EVP_Digest(cookie, strlen(cookie), out, &n, EVP_sha256(), NULL) == 1 &&
	               n == NL_FLOW_BROWSER_LEN
	           ? 0
	           : NL_ERR_INTERNAL;
}

/* The confirmation form's anti-CSRF token: HMAC-SHA256 under the bridge's key of the flow id and
 * the cookie value, so only a page shown to the browser holding that cookie has it for that flow,
 * and two tabs of one browser agree. out gets BRIDGE_TOKEN_LEN characters. */
static int form_token(const struct nl_bridge *b, const char *id, const char *cookie,
                      char out[BRIDGE_TOKEN_LEN + 1])
{
	unsigned char msg[64 + NL_FLOW_ID_LEN + BRIDGE_COOKIE_LEN], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *t = NULL;
	int n, r = NL_ERR_INTERNAL;

	n = snprintf((char *)msg, sizeof(msg), "nhslogin-confirm|%s|%s", id, cookie);
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    HMAC(EVP_sha256(), b->csrf_key, (int)sizeof(b->csrf_key), msg, (size_t)n, md, &mdlen) == NULL ||
	    mdlen != 32 || nl_b64url_encode(md, mdlen, &t) != 0)
		goto out;
	if (strlen(t) == BRIDGE_TOKEN_LEN) {
		memcpy(out, t, BRIDGE_TOKEN_LEN + 1);
		r = 0;
	}
out:
	nl_free_secret(t);
	nl_wipe(msg, sizeof(msg));
	nl_wipe(md, sizeof(md));
	return r;
}

static bool one_of(const char *s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* The kind of access in words, from the flow's PAM service and remote host. */
static void describe_access(const char *service, const char *rhost, char *out, size_t len)
{
	static const char *const gui[] = {"gdm-password",
	                                  "gdm-fingerprint",
	                                  "gdm-smartcard",
	                                  "gdm",
	                                  "lightdm",
	                                  "sddm",
	                                  "xdm",
	                                  "kdm",
	                                  "lxdm",
	                                  "slim",
	                                  NULL};
	static const char *const lock[] = {"gnome-screensaver",
	                                   "xscreensaver",
	                                   "kde",
	                                   "kscreensaver",
	                                   "kscreenlocker",
	                                   "i3lock",
	                                   "swaylock",
	                                   "xlock",
	                                   "xsecurelock",
	                                   "mate-screensaver",
	                                   "cinnamon-screensaver",
	                                   "xfce4-screensaver",
	                                   "light-locker",
	                                   "physlock",
	                                   "vlock",
	                                   NULL};
	static const char *const sudo[] = {"sudo", "sudo-i", NULL};
	static const char *const su[] = {"su", "su-l", "runuser", "runuser-l", NULL};

	if (strcmp(service, "sshd") == 0)
		snprintf(out, len, rhost[0] != '\0' ? "SSH from %s" : "SSH", rhost);
	else if (one_of(service, sudo))
		snprintf(out, len, "sudo");
	else if (one_of(service, su))
		snprintf(out, len, "su");
	else if (strcmp(service, "login") == 0)
		snprintf(out, len, rhost[0] != '\0' ? "a remote login from %s" : "the console", rhost);
	else if (one_of(service, gui))
		snprintf(out, len, "the graphical login");
	else if (one_of(service, lock))
		snprintf(out, len, "unlocking the screen");
	else if (strcmp(service, "polkit-1") == 0)
		snprintf(out, len, "an administrator's approval (polkit)");
	else
		snprintf(out, len, rhost[0] != '\0' ? "a sign-in from %s" : "a sign-in at this computer",
		         rhost);
}

/* "40 seconds ago", "3 minutes ago". */
static void started_ago(time_t secs, char *out, size_t len)
{
	long s = secs > 0 ? (long)secs : 0;

	if (s < 2)
		snprintf(out, len, "just now");
	else if (s < 120)
		snprintf(out, len, "%ld seconds ago", s);
	else
		snprintf(out, len, "%ld minutes ago", s / 60);
}

/* This computer's name for the page: its host name. */
static void computer_name(char *out, size_t len)
{
	char h[256] = "";

	if (gethostname(h, sizeof(h) - 1) != 0)
		h[0] = '\0';
	h[sizeof(h) - 1] = '\0';
	nl_text_ascii_copy(h[0] != '\0' ? h : "this computer", out, len);
}

static mhd_result gone_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                            const char *url)
{
	return bridge_send_message(
	    b, conn, method, url, MHD_HTTP_GONE, "This code has expired - start again at your workstation",
	    "Codes only work for a few minutes. Start signing in again at your workstation "
	    "to get a new code.",
	    false, false);
}

static mhd_result broken_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url)
{
	return bridge_send_message(
	    b, conn, method, url, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-in is not available",
	    "Something went wrong on this server. Try again in a minute.", false, true);
}

/* The facts of flow id from its own record, a __Host- cookie (the browser's, if it has one) and a
 * form bound to both. */
static mhd_result confirm_page(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                               const char *url, const char *id, const char *client)
{
	struct nl_flow_view v;
	char cookie[BRIDGE_COOKIE_LEN + 1] = "", token[BRIDGE_TOKEN_LEN + 1] = "", *fresh = NULL;
	char setc[BRIDGE_COOKIE_LEN + 128], computer[256], rhost[NL_FIELD_MAX], svc[NL_FIELD_MAX];
	char tty[NL_FIELD_MAX], user[NL_USER_MAX + 1], access[NL_FIELD_MAX + 64],
	    service[2 * NL_FIELD_MAX + 16];
	char started[64];
	const char *have = bridge_request_cookie(conn);
	mhd_result ret;
	int r;

	if ((r = nl_flows_view(b->fl, id, &v)) != 0)
		return r == NL_ERR_EXPIRED || r == NL_ERR_NOT_FOUND ? gone_page(b, conn, method, url)
		                                                    : broken_page(b, conn, method, url);
	if (have == NULL && (nl_random_token(32, &fresh) != 0 || strlen(fresh) != BRIDGE_COOKIE_LEN)) {
		nl_free_secret(fresh);
		nl_wipe(&v, sizeof(v));
		return broken_page(b, conn, method, url);
	}
	snprintf(cookie, sizeof(cookie), "%s", have != NULL ? have : fresh);
	nl_free_secret(fresh);
	if (form_token(b, v.id, cookie, token) != 0) {
		nl_wipe(cookie, sizeof(cookie));
		nl_wipe(&v, sizeof(v));
		return broken_page(b, conn, method, url);
	}
	snprintf(setc, sizeof(setc), BRIDGE_COOKIE "=%s; Path=/; Max-Age=%d; Secure; HttpOnly; SameSite=Lax",
	         cookie, BRIDGE_COOKIE_AGE);
	nl_text_ascii_copy(v.user, user, sizeof(user));
	nl_text_ascii_copy(v.rhost, rhost, sizeof(rhost));
	nl_text_ascii_copy(v.service, svc, sizeof(svc));
	nl_text_ascii_copy(v.tty, tty, sizeof(tty));
	/* a bridge shows the enrolled name of the workstation that signed the start, and no other */
	if (v.host[0] != '\0')
		nl_text_ascii_copy(v.host, computer, sizeof(computer));
	else
		computer_name(computer, sizeof(computer));
	describe_access(svc, rhost, access, sizeof(access));
	snprintf(service, sizeof(service), "%s%s%s", svc[0] != '\0' ? svc : "(none given)",
	         tty[0] != '\0' ? ", terminal " : "", tty);
	started_ago(nl_now() - v.started_at, started, sizeof(started));
	struct nl_confirm pc = {.account = user,
	                        .computer = computer,
	                        .access = access,
	                        .service = service,
	                        .started = started,
	                        .code = v.user_code,
	                        .caller_supplied = v.caller_supplied,
	                        .flow_id = v.id,
	                        .token = token};
	nl_info("bridge: flow %s: code accepted from %s, confirmation page shown", v.id, client);
	ret = bridge_send_page_c(b, conn, method, url, MHD_HTTP_OK, nl_page_confirm(&pc), NULL, setc);
	nl_wipe(cookie, sizeof(cookie));
	nl_wipe(token, sizeof(token));
	nl_wipe(setc, sizeof(setc));
	nl_wipe(&v, sizeof(v));
	return ret;
}

/* "Continue to NHS login" from the bound browser: the 302 to /authorize. */
static mhd_result to_authorize(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                               const char *url, const struct nl_flow_authz *a, const char *client)
{
	char err[256] = "", *to = NULL;
	mhd_result ret;
	int r;

	if ((r = nl_oidc_ready(b->oidc, err, sizeof(err))) != 0 ||
	    (r = nl_oidc_authorize_url(b->oidc, a->state, a->nonce,
	                               nl_oidc_pkce_s256(b->oidc) ? a->code_challenge : NULL, &to)) != 0) {
		nl_err("bridge: flow %s: NHS login not reachable: %s", a->id,
		       err[0] != '\0' ? err : nl_strerror(r));
		return bridge_send_message(
		    b, conn, method, url, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "NHS login cannot be reached right now",
		    "Try again in a minute. If this keeps happening, use another way to sign in "
		    "and tell your IT service desk.",
		    false, true);
	}
	nl_info("bridge: flow %s: confirmed from %s, on to NHS login", a->id, client);
	bridge_learn_authz_origin(b, to);
	ret = bridge_send_page(
	    b, conn, method, url, MHD_HTTP_FOUND,
	    nl_page_message("Continue to NHS login", "Taking you to NHS login.", true, false), to);
	nl_free_secret(to);
	return ret;
}

static mhd_result refuse_answer(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                                const char *url, const char *id, const char *client)
{
	int r = nl_flows_refuse(b->fl, id, client);

	if (r == NL_ERR_EXPIRED || r == NL_ERR_NOT_FOUND)
		return gone_page(b, conn, method, url);
	if (r != 0)
		return broken_page(b, conn, method, url);
	return bridge_send_message(
	    b, conn, method, url, MHD_HTTP_OK, "Sign-in stopped",
	    "Nothing was signed in, and the computer stays locked. If someone sent you this "
	    "link or asked you for a code, tell your IT service desk.",
	    false, false);
}

/* POST /d/confirm: the confirmation form, from the browser its token was made for. */
mhd_result bridge_handle_confirm(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                                 const char *url, struct req *rq)
{
	const char *cookie = bridge_request_cookie(conn);
	char client[NI_MAXHOST], want[BRIDGE_TOKEN_LEN + 1] = "";
	unsigned char browser[NL_FLOW_BROWSER_LEN];
	struct nl_flow_authz a = {0};
	bool refuse = strcmp(rq->answer, "refuse") == 0, token_ok;
	mhd_result ret;
	int r;

	bridge_client_address(b, conn, client, sizeof(client));
	if (rq->confirm_bad || !flow_id_ok(rq->flow) || (!refuse && strcmp(rq->answer, "continue") != 0))
		return bridge_send_message(
		    b, conn, method, url, MHD_HTTP_BAD_REQUEST, "This page could not be used",
		    "Enter the code shown on your workstation screen again.", false, true);
	if (cookie == NULL) {
		nl_notice("bridge: flow %s: confirmation from %s without the sign-in cookie: refused",
		          rq->flow, client);
		return bridge_send_message(
		    b, conn, method, url, MHD_HTTP_FORBIDDEN, "Your browser did not keep the sign-in cookie",
		    "This page needs a cookie so that only this browser can finish your sign-in. Allow "
		    "cookies for this site, then enter the code shown on your workstation screen again.",
		    false, true);
	}
	token_ok = form_token(b, rq->flow, cookie, want) == 0 && nl_ct_streq(want, rq->token);
	nl_wipe(want, sizeof(want));
	if (!token_ok) {
		nl_notice(
		    "bridge: flow %s: confirmation from %s with a token not made for its cookie: refused",
		    rq->flow, client);
		return bridge_send_message(b, conn, method, url, MHD_HTTP_FORBIDDEN, "This page has expired",
		                           "Enter the code shown on your workstation screen again.", false,
		                           true);
	}
	if (refuse)
		return refuse_answer(b, conn, method, url, rq->flow, client);
	if (bridge_browser_hash(cookie, browser) != 0)
		return broken_page(b, conn, method, url);
	r = nl_flows_bind_browser(b->fl, rq->flow, browser, &a);
	nl_wipe(browser, sizeof(browser));
	switch (r) {
	case 0:
		ret = to_authorize(b, conn, method, url, &a, client);
		nl_flow_authz_clear(&a);
		return ret;
	case NL_ERR_PERM:
		nl_notice("bridge: flow %s: continue from %s in a second browser: refused (another browser "
		          "continued first)",
		          rq->flow, client);
		return bridge_send_message(
		    b, conn, method, url, MHD_HTTP_CONFLICT,
		    "This sign-in is being finished in another browser",
		    "Someone has already continued this sign-in in another browser. If that was not you, "
		    "do not sign in: start again at your workstation and tell your IT service desk.",
		    false, false);
	case NL_ERR_EXPIRED:
	case NL_ERR_NOT_FOUND:
		return gone_page(b, conn, method, url);
	default:
		return broken_page(b, conn, method, url);
	}
}

/* The phone sent a code (form or QR link): the confirmation page, or a page saying what is wrong. */
static mhd_result handle_code(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, const char *typed)
{
	struct nl_flow_authz a = {0};
	char client[NI_MAXHOST];
	mhd_result ret;
	int r;

	if (typed == NULL || typed[0] == '\0')
		return bridge_send_page(
		    b, conn, method, url, MHD_HTTP_BAD_REQUEST,
		    nl_page_form(NULL, "Enter the code shown on your workstation screen."), NULL);
	bridge_client_address(b, conn, client, sizeof(client));
	r = nl_flows_begin_authz(b->fl, typed, client, &a);
	switch (r) {
	case 0:
		break;
	case NL_ERR_NOT_FOUND:
	case NL_ERR_INVALID:
		return bridge_send_page(
		    b, conn, method, url, MHD_HTTP_BAD_REQUEST,
		    nl_page_form(strlen(typed) <= 20 ? typed : NULL,
		                 "That code was not recognised - check the code on your screen."),
		    NULL);
	case NL_ERR_LIMIT:
		return bridge_send_message(
		    b, conn, method, url, MHD_HTTP_TOO_MANY_REQUESTS, "Too many attempts - wait 10 minutes",
		    "Too many wrong codes were entered. Wait 10 minutes, then enter the code "
		    "shown on your workstation screen.",
		    false, false);
	case NL_ERR_EXPIRED:
		return gone_page(b, conn, method, url);
	default:
		nl_err("bridge: cannot start sign-in from a code: %s", nl_strerror(r));
		return broken_page(b, conn, method, url);
	}
	/* The flow's own record first, never straight on to NHS login (RFC 8628 5.4). */
	ret = confirm_page(b, conn, method, url, a.id, client);
	nl_flow_authz_clear(&a);
	return ret;
}

mhd_result bridge_handle_form(struct nl_bridge *b, struct MHD_Connection *conn, const char *method,
                              const char *url, struct req *rq)
{
	const char *code;

	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
		if (rq->code_too_long)
			return bridge_send_page(
			    b, conn, method, url, MHD_HTTP_BAD_REQUEST,
			    nl_page_form(NULL, "That code was not recognised - check the code on your "
			                       "screen."),
			    NULL);
		return handle_code(b, conn, method, url, rq->code);
	}
	/* GET /d?code=XXXXXXXX (the QR code) goes straight on; HEAD never changes anything */
	code = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "code");
	if (code != NULL && code[0] != '\0' && strcmp(method, MHD_HTTP_METHOD_GET) == 0)
		return handle_code(b, conn, method, url, strlen(code) <= BRIDGE_CODE_MAX ? code : "-");
	return bridge_send_page(b, conn, method, url, MHD_HTTP_OK, nl_page_form(NULL, NULL), NULL);
}
