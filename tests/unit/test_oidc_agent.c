/* An agent's own check of a bridge's answer (doc/bridge.md, "Why a bridge cannot forge a
 * sign-in"): nl_oidc_verify_tokens against a real nhslogin-mock. A "bridge" client exchanges a
 * real code and keeps the raw tokens; an "agent" client, with its own discovery and JWKS fetched
 * from the issuer, checks what a bridge hands over. Each lie a compromised bridge could tell is
 * told here and must be refused: another flow's token, a token signed with the bridge's own key
 * (under its own kid or NHS login's), altered claims, an unsigned token, approval without a token,
 * and an access token that is not the sign-in's. */
#include "config.h"
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "idtoken.h"
#include "mockproc.h"
#include "nl_b64.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_log.h"
#include "oidc.h"

#define CLIENT_ID      "agent-test-client"
#define REDIRECT_URI   "http://127.0.0.1:9/callback"
#define TEST_TIMEOUT_S 180

static struct {
	char dir[256];
	char *key_path, *pub_path;
	struct mockproc *mock;
	int n_cache;
	struct nl_config bcfg, acfg, ucfg; /* the bridge's, the agent's, the agent's with userinfo */
	struct nl_oidc *bridge, *agent, *agent_ui;
} fx;

static int make_cfg(struct nl_config *cfg, const char *issuer, bool userinfo)
{
	char cache[400];
	char err[256] = "";

	snprintf(cache, sizeof(cache), "%s/cache%d", fx.dir, ++fx.n_cache);
	if (mkdir(cache, 0700) != 0 && errno != EEXIST)
		return -1;
	nl_config_init(cfg);
	if (nl_config_set(cfg, "env", "issuer", issuer, err, sizeof(err)) != 0 ||
	    nl_config_set(cfg, "env", "client_id", CLIENT_ID, err, sizeof(err)) != 0 ||
	    nl_config_set(cfg, "env", "client_key", fx.key_path, err, sizeof(err)) != 0 ||
	    nl_config_set(cfg, "env", "redirect_uri", REDIRECT_URI, err, sizeof(err)) != 0 ||
	    nl_config_set(cfg, "env", "scope", "openid profile email", err, sizeof(err)) != 0 ||
	    nl_config_set(cfg, "daemon", "cache_dir", cache, err, sizeof(err)) != 0 ||
	    nl_config_set(cfg, "daemon", "http_timeout", "5", err, sizeof(err)) != 0 ||
	    (userinfo && nl_config_set(cfg, "identity", "userinfo", "yes", err, sizeof(err)) != 0)) {
		fprintf(stderr, "# config: %s\n", err);
		return -1;
	}
	return 0;
}

static int group_setup(void **state)
{
	cjose_jwk_t *key = NULL;
	char client[1024], err[256] = "";
	const char *args[] = {"--client", client, "--auto-approve", "p9", NULL};
	(void)state;

	alarm(TEST_TIMEOUT_S);
	nl_log_open("test_oidc_agent", NL_LOG_STDERR, false);
	if (nl_http_global_init() != 0)
		return -1;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_oidc_agent.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	if (mockproc_client_key(fx.dir, "client", &key, &fx.pub_path, &fx.key_path) != 0)
		return -1;
	cjose_jwk_release(key);
	snprintf(client, sizeof(client), "%s:%s:%s", CLIENT_ID, fx.pub_path, REDIRECT_URI);
	if (mockproc_start(args, &fx.mock) != 0)
		return -1;
	if (make_cfg(&fx.bcfg, mockproc_issuer(fx.mock), false) != 0 ||
	    make_cfg(&fx.acfg, mockproc_issuer(fx.mock), false) != 0 ||
	    make_cfg(&fx.ucfg, mockproc_issuer(fx.mock), true) != 0)
		return -1;
	if (nl_oidc_new(&fx.bcfg, &fx.bridge, err, sizeof(err)) != 0 ||
	    nl_oidc_new(&fx.acfg, &fx.agent, err, sizeof(err)) != 0 ||
	    nl_oidc_new(&fx.ucfg, &fx.agent_ui, err, sizeof(err)) != 0) {
		fprintf(stderr, "# nl_oidc_new: %s\n", err);
		return -1;
	}
	nl_oidc_keep_raw(fx.bridge, true);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[400];
	(void)state;

	nl_oidc_free(fx.bridge);
	nl_oidc_free(fx.agent);
	nl_oidc_free(fx.agent_ui);
	nl_config_free(&fx.bcfg);
	nl_config_free(&fx.acfg);
	nl_config_free(&fx.ucfg);
	mockproc_stop(fx.mock);
	if (strncmp(fx.dir, "/tmp/test_oidc_agent.", 21) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", fx.dir);
	}
	free(fx.key_path);
	free(fx.pub_path);
	return 0;
}

/* The bridge's part: a real sign-in at the mock for nonce, exchanged with the raw tokens kept. */
static void bridge_signin(struct nl_oidc *o, const char *nonce, struct nl_grant_result *res)
{
	struct mockproc_resp resp;
	char *url = NULL, *code;

	memset(&resp, 0, sizeof(resp));
	assert_int_equal(nl_oidc_authorize_url(o, "st-agent-test-0001", nonce, NULL, &url), 0);
	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, NULL, &resp), 0);
	assert_non_null(resp.location);
	code = mockproc_query_param(resp.location, "code");
	assert_non_null(code);
	assert_int_equal(nl_oidc_exchange_code(o, code, NULL, nonce, res), 0);
	assert_int_equal(res->outcome, NL_OUT_OK);
	mockproc_resp_free(&resp);
	free(url);
	free(code);
}

/* What the agent makes of a bridge's answer: the outcome, and the failed rule in *rule. */
static enum nl_outcome agent_verdict(struct nl_oidc *agent, const char *idt, const char *at,
                                     const char *nonce, enum nl_idtoken_rule *rule)
{
	struct nl_grant_result res;
	int r = nl_oidc_verify_tokens(agent, idt, at, nonce, &res);
	enum nl_outcome oc = res.outcome;

	if (rule != NULL)
		*rule = res.rule;
	/* never an identity without approval, nor approval with an error */
	if (r != 0) {
		assert_int_not_equal(oc, NL_OUT_OK);
		assert_null(res.id.sub);
	} else {
		assert_int_equal(oc, NL_OUT_OK);
		assert_non_null(res.id.sub);
	}
	nl_grant_result_clear(&res);
	return oc;
}

/* The decoded payload of a compact JWS, as JSON. */
static json_t *payload_of(const char *compact)
{
	const char *a = strchr(compact, '.'), *b = a != NULL ? strchr(a + 1, '.') : NULL;
	uint8_t *raw = NULL;
	size_t len = 0;
	json_t *claims;

	assert_non_null(b);
	assert_int_equal(nl_b64url_decode(a + 1, (size_t)(b - a - 1), &raw, &len), 0);
	claims = json_loadb((const char *)raw, len, 0, NULL);
	free(raw);
	assert_non_null(claims);
	return claims;
}

/* The kid in a compact JWS's header. */
static char *kid_of(const char *compact)
{
	const char *a = strchr(compact, '.');
	uint8_t *raw = NULL;
	size_t len = 0;
	json_t *h;
	char *kid;

	assert_non_null(a);
	assert_int_equal(nl_b64url_decode(compact, (size_t)(a - compact), &raw, &len), 0);
	h = json_loadb((const char *)raw, len, 0, NULL);
	free(raw);
	assert_non_null(h);
	assert_non_null(nl_json_str(h, "kid"));
	kid = strdup(nl_json_str(h, "kid"));
	json_decref(h);
	return kid;
}

/* ---- the honest bridge ---- */

static void test_bridge_keeps_raw_tokens_only_when_asked(void **state)
{
	struct nl_grant_result res;
	(void)state;

	bridge_signin(fx.bridge, "nonce-kept-0001", &res);
	assert_non_null(res.raw_id_token);
	assert_non_null(res.raw_access_token);
	nl_grant_result_clear(&res);
	assert_null(res.raw_id_token);
	/* a local-mode client holds no token longer than it needs */
	bridge_signin(fx.agent, "nonce-kept-0002", &res);
	assert_null(res.raw_id_token);
	assert_null(res.raw_access_token);
	nl_grant_result_clear(&res);
}

static void test_agent_accepts_the_token_of_its_own_flow(void **state)
{
	struct nl_grant_result res, mine;
	(void)state;

	bridge_signin(fx.bridge, "nonce-agent-own-0001", &res);
	assert_int_equal(
	    nl_oidc_verify_tokens(fx.agent, res.raw_id_token, NULL, "nonce-agent-own-0001", &mine), 0);
	assert_int_equal(mine.outcome, NL_OUT_OK);
	assert_string_equal(mine.id.sub, res.id.sub);
	assert_int_equal(mine.id.level, 9);
	assert_null(mine.id.refresh_token);
	nl_grant_result_clear(&mine);
	nl_grant_result_clear(&res);
}

static void test_agent_with_userinfo_fetches_it_itself(void **state)
{
	struct nl_grant_result res, mine;
	long before = -1, after = -1;
	(void)state;

	bridge_signin(fx.bridge, "nonce-agent-ui-0001", &res);
	assert_int_equal(mockproc_stat(fx.mock, "userinfo", &before), 0);
	assert_int_equal(nl_oidc_verify_tokens(fx.agent_ui, res.raw_id_token, res.raw_access_token,
	                                       "nonce-agent-ui-0001", &mine),
	                 0);
	assert_int_equal(mockproc_stat(fx.mock, "userinfo", &after), 0);
	assert_int_equal(after, before + 1);
	assert_non_null(nl_json_str(mine.id.claims, "email"));
	nl_grant_result_clear(&mine);
	nl_grant_result_clear(&res);
}

/* ---- a compromised bridge ---- */

static void test_token_of_another_flow_is_refused(void **state)
{
	struct nl_grant_result res;
	enum nl_idtoken_rule rule;
	(void)state;

	/* a real, fresh token for the same person, but from a flow another agent started */
	bridge_signin(fx.bridge, "nonce-of-another-flow", &res);
	assert_int_equal(agent_verdict(fx.agent, res.raw_id_token, NULL, "nonce-of-this-flow", &rule),
	                 NL_OUT_INVALID_TOKEN);
	assert_int_equal(rule, NL_RULE_NONCE);
	nl_grant_result_clear(&res);
}

/* The bridge signs claims of its choosing (the agent's own nonce included) with a key it holds. */
static void test_token_signed_with_the_bridges_own_key_is_refused(void **state)
{
	struct nl_grant_result res;
	enum nl_idtoken_rule rule;
	cjose_jwk_t *own = NULL;
	char *pub = NULL, *priv = NULL, *forged = NULL, *kid, *own_kid;
	json_t *claims;
	long jwks_before = -1, jwks_after = -1;
	(void)state;

	bridge_signin(fx.bridge, "nonce-forge-0001", &res);
	claims = payload_of(res.raw_id_token);
	kid = kid_of(res.raw_id_token);
	assert_int_equal(mockproc_client_key(fx.dir, "bridge-own", &own, &pub, &priv), 0);
	/* under NHS login's kid: the signature does not verify with NHS login's key */
	assert_int_equal(nl_jws_sign(own, "RS512", kid, claims, &forged), 0);
	assert_int_equal(agent_verdict(fx.agent, forged, NULL, "nonce-forge-0001", &rule),
	                 NL_OUT_INVALID_TOKEN);
	assert_int_equal(rule, NL_RULE_SIGNATURE);
	free(forged);
	/* under a kid of its own: not in NHS login's key set, even after the one refetch it earns */
	own_kid = nl_jwk_thumbprint(own);
	assert_non_null(own_kid);
	assert_int_equal(mockproc_stat(fx.mock, "jwks", &jwks_before), 0);
	assert_int_equal(nl_jws_sign(own, "RS512", own_kid, claims, &forged), 0);
	assert_int_equal(agent_verdict(fx.agent, forged, NULL, "nonce-forge-0001", &rule),
	                 NL_OUT_INVALID_TOKEN);
	assert_int_equal(rule, NL_RULE_KID);
	assert_int_equal(mockproc_stat(fx.mock, "jwks", &jwks_after), 0);
	assert_true(jwks_after - jwks_before <= 1);
	/* the genuine token, for comparison, is accepted: the refusals were the signatures' */
	assert_int_equal(agent_verdict(fx.agent, res.raw_id_token, NULL, "nonce-forge-0001", NULL),
	                 NL_OUT_OK);
	free(forged);
	free(own_kid);
	free(kid);
	json_decref(claims);
	cjose_jwk_release(own);
	free(pub);
	free(priv);
	nl_grant_result_clear(&res);
}

/* NHS login's signature kept, the payload changed to name another person. */
static void test_token_with_altered_claims_is_refused(void **state)
{
	struct nl_grant_result res;
	enum nl_idtoken_rule rule;
	json_t *claims;
	char *payload = NULL, *enc = NULL, *altered = NULL;
	const char *a, *b;
	(void)state;

	bridge_signin(fx.bridge, "nonce-alter-0001", &res);
	claims = payload_of(res.raw_id_token);
	assert_int_equal(json_object_set_new(claims, "nhs_number", json_string("9686368906")), 0);
	payload = json_dumps(claims, JSON_COMPACT);
	assert_non_null(payload);
	assert_int_equal(nl_b64url_encode((const uint8_t *)payload, strlen(payload), &enc), 0);
	a = strchr(res.raw_id_token, '.');
	b = strchr(a + 1, '.');
	assert_true(asprintf(&altered, "%.*s.%s%s", (int)(a - res.raw_id_token), res.raw_id_token, enc, b) >
	            0);
	assert_int_equal(agent_verdict(fx.agent, altered, NULL, "nonce-alter-0001", &rule),
	                 NL_OUT_INVALID_TOKEN);
	assert_int_equal(rule, NL_RULE_SIGNATURE);
	free(altered);
	free(enc);
	free(payload);
	json_decref(claims);
	nl_grant_result_clear(&res);
}

static void test_unsigned_token_is_refused(void **state)
{
	struct nl_grant_result res;
	enum nl_idtoken_rule rule;
	const char *a, *b;
	char *hdr = NULL, *none = NULL;
	const char *h = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
	(void)state;

	bridge_signin(fx.bridge, "nonce-none-0001", &res);
	a = strchr(res.raw_id_token, '.');
	b = strchr(a + 1, '.');
	assert_int_equal(nl_b64url_encode((const uint8_t *)h, strlen(h), &hdr), 0);
	assert_true(asprintf(&none, "%s.%.*s.", hdr, (int)(b - a - 1), a + 1) > 0);
	assert_int_equal(agent_verdict(fx.agent, none, NULL, "nonce-none-0001", &rule), NL_OUT_INVALID_TOKEN);
	assert_int_equal(rule, NL_RULE_ALG);
	free(none);
	free(hdr);
	nl_grant_result_clear(&res);
}

static void test_approval_without_a_token_is_refused(void **state)
{
	enum nl_idtoken_rule rule;
	(void)state;

	assert_int_equal(agent_verdict(fx.agent, NULL, NULL, "nonce-empty-0001", &rule),
	                 NL_OUT_INVALID_TOKEN);
	assert_int_equal(agent_verdict(fx.agent, "", NULL, "nonce-empty-0001", &rule), NL_OUT_INVALID_TOKEN);
	assert_int_equal(agent_verdict(fx.agent, "not.a.token", NULL, "nonce-empty-0001", &rule),
	                 NL_OUT_INVALID_TOKEN);
}

/* The token is right but the access token is another sign-in's (or made up): the agent's own
 * userinfo request finds a sub that is not the token's, or none at all. Never approved. */
static void test_access_token_of_another_signin_is_not_approved(void **state)
{
	struct nl_grant_result one, two;
	(void)state;

	bridge_signin(fx.bridge, "nonce-at-one", &one);
	bridge_signin(fx.bridge, "nonce-at-two", &two);
	/* the mock signs in p9 both times: same sub, so a swapped access token still names p9; the
	 * made-up one is refused by NHS login's userinfo endpoint */
	assert_int_equal(
	    agent_verdict(fx.agent_ui, one.raw_id_token, two.raw_access_token, "nonce-at-one", NULL),
	    NL_OUT_OK);
	assert_int_not_equal(
	    agent_verdict(fx.agent_ui, one.raw_id_token, "made-up-access-token", "nonce-at-one", NULL),
	    NL_OUT_OK);
	assert_int_not_equal(agent_verdict(fx.agent_ui, one.raw_id_token, NULL, "nonce-at-one", NULL),
	                     NL_OUT_OK);
	nl_grant_result_clear(&one);
	nl_grant_result_clear(&two);
}

/* The agent's issuer cannot be reached: unavailable (break-glass), never approved on the bridge's
 * word. */
static void test_issuer_unreachable_for_the_agent_is_unavailable(void **state)
{
	struct nl_config cfg;
	struct nl_oidc *o = NULL;
	struct nl_grant_result res;
	char err[256] = "";
	(void)state;

	bridge_signin(fx.bridge, "nonce-unreach-0001", &res);
	assert_int_equal(make_cfg(&cfg, "http://127.0.0.1:9", false), 0);
	assert_int_equal(nl_oidc_new(&cfg, &o, err, sizeof(err)), 0);
	assert_int_equal(agent_verdict(o, res.raw_id_token, NULL, "nonce-unreach-0001", NULL),
	                 NL_OUT_UNAVAILABLE);
	nl_oidc_free(o);
	nl_config_free(&cfg);
	nl_grant_result_clear(&res);
}

/* ---- a pinned JWKS file ([agent] jwks_file): the file's keys only, nothing fetched ---- */

/* The mock's JWKS as it publishes it (new string). */
static char *mock_jwks_text(void)
{
	struct mockproc_resp resp;
	char url[300], *text;

	memset(&resp, 0, sizeof(resp));
	snprintf(url, sizeof(url), "%s/.well-known/jwks.json", mockproc_issuer(fx.mock));
	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, NULL, &resp), 0);
	assert_int_equal(resp.status, 200);
	text = strdup(resp.body);
	mockproc_resp_free(&resp);
	assert_non_null(text);
	return text;
}

/* fx.dir/name holding text with exactly mode; its path into path. */
static void put_file(const char *name, const char *text, mode_t mode, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s", fx.dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* An agent (role = agent) whose keys come from the file at path. */
static void pinned_cfg(struct nl_config *cfg, const char *path)
{
	char err[256] = "";

	assert_int_equal(make_cfg(cfg, mockproc_issuer(fx.mock), false), 0);
	assert_int_equal(nl_config_set(cfg, "daemon", "role", "agent", err, sizeof(err)), 0);
	assert_int_equal(nl_config_set(cfg, "agent", "jwks_file", path, err, sizeof(err)), 0);
}

static long stat_of(const char *name)
{
	long v = -1;
	assert_int_equal(mockproc_stat(fx.mock, name, &v), 0);
	return v;
}

static void test_pinned_agent_accepts_its_flow_and_fetches_nothing(void **state)
{
	struct nl_config cfg;
	struct nl_oidc *o = NULL;
	struct nl_oidc_stats st;
	struct nl_grant_result res;
	char path[400], err[512] = "", *jwks = mock_jwks_text();
	long disc, keys;
	(void)state;

	put_file("pinned.jwks", jwks, 0644, path, sizeof(path));
	bridge_signin(fx.bridge, "nonce-pinned-own-0001", &res);
	disc = stat_of("discovery");
	keys = stat_of("jwks");
	pinned_cfg(&cfg, path);
	assert_int_equal(nl_oidc_new(&cfg, &o, err, sizeof(err)), 0);
	assert_int_equal(nl_oidc_ready(o, err, sizeof(err)), 0);
	assert_int_equal(agent_verdict(o, res.raw_id_token, NULL, "nonce-pinned-own-0001", NULL), NL_OUT_OK);
	/* the nonce is still the agent's: the same token for another flow is refused */
	assert_int_equal(agent_verdict(o, res.raw_id_token, NULL, "nonce-pinned-other-01", NULL),
	                 NL_OUT_INVALID_TOKEN);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.jwks_pinned_keys, 1);
	assert_int_equal(st.discovery_fetches, 0);
	assert_int_equal(st.jwks_fetches, 0);
	assert_int_equal(stat_of("discovery"), disc);
	assert_int_equal(stat_of("jwks"), keys);
	nl_oidc_free(o);
	nl_config_free(&cfg);
	nl_grant_result_clear(&res);
	free(jwks);
}

/* Each file the daemon must refuse at start, with the file named and no key material said. */
static void test_pinned_file_must_be_safe_and_a_public_jwks(void **state)
{
	char *jwks = mock_jwks_text(), *text = NULL, path[400], link_path[400], err[1024];
	json_t *doc = json_loads(jwks, 0, NULL), *key;
	const char *n;
	struct nl_config cfg;
	struct nl_oidc *o = NULL;
	static const struct {
		const char *name;
		mode_t mode;
		const char *needle;
	} modes[] = {{"g-w.jwks", 0664, "group- or world-writable"}, {"o-w.jwks", 0646, "world-writable"}};
	(void)state;

	assert_non_null(doc);
	key = json_array_get(json_object_get(doc, "keys"), 0);
	assert_non_null(n = nl_json_str(key, "n"));
	/* writable by others */
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		put_file(modes[i].name, jwks, modes[i].mode, path, sizeof(path));
		pinned_cfg(&cfg, path);
		assert_int_not_equal(nl_oidc_new(&cfg, &o, err, sizeof(err)), 0);
		assert_null(o);
		if (strstr(err, path) == NULL || strstr(err, modes[i].needle) == NULL)
			fail_msg("%s", err);
		nl_config_free(&cfg);
	}
	/* not JSON; no keys; a key for RS256 only; private members; a symbolic link; too big */
	struct {
		const char *name, *text, *needle;
	} bad[] = {
	    {"garbage.jwks", "-----BEGIN PUBLIC KEY-----\nnot a key set\n", "not a JSON object"},
	    {"empty.jwks", "{\"keys\":[]}", "no usable signing key"},
	    {"rs256.jwks", NULL, "no signing key for RS512"},
	    {"private.jwks", NULL, "private key members"},
	};
	json_object_set_new(key, "alg", json_string("RS256"));
	bad[2].text = text = json_dumps(doc, JSON_COMPACT);
	json_object_set_new(key, "alg", json_string("RS512"));
	json_object_set_new(key, "d", json_string("c2VjcmV0LXByaXZhdGUtZXhwb25lbnQ"));
	bad[3].text = json_dumps(doc, JSON_COMPACT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_file(bad[i].name, bad[i].text, 0644, path, sizeof(path));
		pinned_cfg(&cfg, path);
		err[0] = '\0';
		assert_int_not_equal(nl_oidc_new(&cfg, &o, err, sizeof(err)), 0);
		assert_null(o);
		if (strstr(err, path) == NULL || strstr(err, bad[i].needle) == NULL)
			fail_msg("%s: %s", bad[i].name, err);
		/* never key material in the line that goes to the log */
		assert_null(strstr(err, "c2VjcmV0"));
		assert_null(strstr(err, n));
		nl_config_free(&cfg);
	}
	free((char *)bad[3].text);
	/* a symbolic link to a good file */
	put_file("good.jwks", jwks, 0644, path, sizeof(path));
	snprintf(link_path, sizeof(link_path), "%s/link.jwks", fx.dir);
	unlink(link_path);
	assert_int_equal(symlink(path, link_path), 0);
	pinned_cfg(&cfg, link_path);
	assert_int_not_equal(nl_oidc_new(&cfg, &o, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "symbolic link"));
	nl_config_free(&cfg);
	/* bounded: past NL_JWKS_MAX the file is not read */
	{
		size_t big = NL_JWKS_MAX + 2;
		char *huge = malloc(big);
		assert_non_null(huge);
		memset(huge, ' ', big - 1);
		huge[0] = '{';
		huge[big - 2] = '}';
		huge[big - 1] = '\0';
		put_file("huge.jwks", huge, 0644, path, sizeof(path));
		free(huge);
	}
	pinned_cfg(&cfg, path);
	assert_int_not_equal(nl_oidc_new(&cfg, &o, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "larger than"));
	nl_config_free(&cfg);
	json_decref(doc);
	free(text);
	free(jwks);
}

/* NHS login rotates its key: the pinned agent refuses the new kid and fetches nothing; the file
 * brought up to date and read again by a flush, it accepts; a bad file at a flush keeps the keys.
 * (Last: the mock's signing key changes for good.) */
static void test_pinned_agent_refuses_a_rotated_key_without_fetching(void **state)
{
	struct nl_config cfg;
	struct nl_oidc *o = NULL;
	struct nl_oidc_stats st;
	struct nl_grant_result res;
	enum nl_idtoken_rule rule = NL_RULE_NONE;
	char path[400], err[512] = "", *old = mock_jwks_text(), *now;
	long status = 0, disc, keys;
	(void)state;

	put_file("rotate.jwks", old, 0644, path, sizeof(path));
	pinned_cfg(&cfg, path);
	assert_int_equal(nl_oidc_new(&cfg, &o, err, sizeof(err)), 0);
	assert_int_equal(mockproc_control(fx.mock, "{\"fault\":\"rotate_key\"}", &status), 0);
	assert_int_equal(status, 200);
	bridge_signin(fx.bridge, "nonce-pinned-rot-0001", &res); /* the bridge refetches; its business */
	disc = stat_of("discovery");
	keys = stat_of("jwks");
	assert_int_equal(agent_verdict(o, res.raw_id_token, NULL, "nonce-pinned-rot-0001", &rule),
	                 NL_OUT_INVALID_TOKEN);
	assert_int_equal(rule, NL_RULE_KID);
	assert_int_equal(stat_of("discovery"), disc);
	assert_int_equal(stat_of("jwks"), keys);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.discovery_fetches + st.jwks_fetches, 0);
	nl_grant_result_clear(&res);

	/* the operator puts the current key set in the file and flushes */
	now = mock_jwks_text();
	put_file("rotate.jwks", now, 0644, path, sizeof(path));
	nl_oidc_flush(o);
	bridge_signin(fx.bridge, "nonce-pinned-rot-0002", &res);
	assert_int_equal(agent_verdict(o, res.raw_id_token, NULL, "nonce-pinned-rot-0002", NULL), NL_OUT_OK);
	nl_grant_result_clear(&res);
	/* a file that no longer reads at a flush: the keys read before stay */
	put_file("rotate.jwks", "not a key set", 0644, path, sizeof(path));
	nl_oidc_flush(o);
	bridge_signin(fx.bridge, "nonce-pinned-rot-0003", &res);
	assert_int_equal(agent_verdict(o, res.raw_id_token, NULL, "nonce-pinned-rot-0003", NULL), NL_OUT_OK);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.jwks_pinned_keys, 1);
	assert_int_equal(st.discovery_fetches + st.jwks_fetches, 0);
	nl_grant_result_clear(&res);
	nl_oidc_free(o);
	nl_config_free(&cfg);
	free(old);
	free(now);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bridge_keeps_raw_tokens_only_when_asked),
	    cmocka_unit_test(test_agent_accepts_the_token_of_its_own_flow),
	    cmocka_unit_test(test_agent_with_userinfo_fetches_it_itself),
	    cmocka_unit_test(test_token_of_another_flow_is_refused),
	    cmocka_unit_test(test_token_signed_with_the_bridges_own_key_is_refused),
	    cmocka_unit_test(test_token_with_altered_claims_is_refused),
	    cmocka_unit_test(test_unsigned_token_is_refused),
	    cmocka_unit_test(test_approval_without_a_token_is_refused),
	    cmocka_unit_test(test_access_token_of_another_signin_is_not_approved),
	    cmocka_unit_test(test_issuer_unreachable_for_the_agent_is_unavailable),
	    cmocka_unit_test(test_pinned_agent_accepts_its_flow_and_fetches_nothing),
	    cmocka_unit_test(test_pinned_file_must_be_safe_and_a_public_jwks),
	    cmocka_unit_test(test_pinned_agent_refuses_a_rotated_key_without_fetching),
	};
	return cmocka_run_group_tests_name("oidc_agent", tests, group_setup, group_teardown);
}
