/* Benchmarks 2, 3, 5 and 6 (cached sign-ins): the real pam_nhslogin.so under pam_wrapper against
 * the real nhslogind and nhslogin-mock (tests/lib/harness.h): prompt latency, completion latency,
 * provider requests per sign-in cold and warm, and the token cache's memory per entry. */
#include "config.h"

#include <curl/curl.h>
#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "bench.h"
#include "bench_util.h"
#include "harness.h"
#include "idtoken.h"
#include "nl_err.h"
#include "nl_proto.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_wipe.h"
#include "oidc.h"
#include "tokcache.h"

#define USER    "clinician" /* maps to the mock's P9 user p9 (harness map file) */
#define SERVICE "nl-login"
#define VTR     "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]"

/* ---- one PAM sign-in ---- */

enum mode { MODE_PROMPT, MODE_SIGNIN };

struct run {
	struct world *w;
	enum mode mode;
	char code[16];
	double t_prompt;   /* the conversation got the URL and code */
	double t_callback; /* the phone is about to GET the callback */
	int phone_rc;
	long phone_status;
	pthread_t phone;
	bool phone_started;
};

/* The phone: the verification page with the code and its confirmation page, the mock's /authorize
 * (auto-approve: straight back with a code), then the callback, timed from just before it is
 * requested. */
static void *phone_thread(void *arg)
{
	struct run *r = arg;
	struct mockproc_resp a = {0}, b = {0}, c = {0};

	r->phone_rc = -1;
	if (phone_confirm(r->w, r->code, "continue", NULL, &a) != 0 || a.location == NULL ||
	    mockproc_fetch("GET", a.location, NULL, NULL, NULL, &b) != 0 || b.location == NULL)
		goto out;
	r->t_callback = bench_now_ms();
	if (mockproc_fetch("GET", b.location, NULL, NULL, NULL, &c) != 0)
		goto out;
	r->phone_status = c.status;
	r->phone_rc = 0;
out:
	mockproc_resp_free(&a);
	mockproc_resp_free(&b);
	mockproc_resp_free(&c);
	return NULL;
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct run *r = data;
	struct pam_response *out;
	const char *p;

	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style != PAM_TEXT_INFO ||
		    (p = strstr(msg[i]->msg, "enter the code  ")) == NULL)
			continue;
		r->t_prompt = bench_now_ms();
		snprintf(r->code, sizeof(r->code), "%.9s", p + strlen("enter the code  "));
		if (r->mode == MODE_PROMPT)
			return PAM_CONV_ERR; /* the module gives up at once and its flow is cancelled */
		if (pthread_create(&r->phone, NULL, phone_thread, r) == 0)
			r->phone_started = true;
	}
	if (n <= 0 || n > PAM_MAX_NUM_MSG || (out = calloc((size_t)n, sizeof(*out))) == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_ON || msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			out[i].resp = strdup("");
	*resp = out;
	return PAM_SUCCESS;
}

/* One pam_authenticate. *latency: prompt mode, call -> code shown; sign-in mode, callback
 * requested -> pam_authenticate returned. Returns pam_authenticate's code (or -1). */
static int pam_once(struct world *w, enum mode mode, double *latency)
{
	struct run r = {.w = w, .mode = mode};
	struct pam_conv c = {conv, &r};
	pam_handle_t *pamh = NULL;
	double t0, t_end;
	int rc;

	if (pam_start(SERVICE, USER, &c, &pamh) != PAM_SUCCESS)
		return -1;
	t0 = bench_now_ms();
	rc = pam_authenticate(pamh, 0);
	t_end = bench_now_ms();
	pam_end(pamh, rc);
	if (r.phone_started)
		pthread_join(r.phone, NULL);
	if (r.t_prompt == 0)
		return -1;
	if (mode == MODE_PROMPT)
		*latency = r.t_prompt - t0;
	else if (r.phone_rc != 0 || r.phone_status != 200)
		return -1;
	else
		*latency = t_end - r.t_callback;
	return rc;
}

/* ---- the daemon's socket, by hand (baseline, admin flush) ---- */

static int sock_call(struct world *w, json_t *req, json_t **reply)
{
	struct nl_proto_client c;
	int r;

	/* The module's own client and peer check. */
	if ((r = nl_proto_open(&c, w->socket, 2000, NL_PROTO_PEER_DAEMON)) == 0)
		r = nl_proto_call(&c, req, 5000, reply);
	nl_proto_close(&c);
	json_decref(req);
	return r;
}

/* Baseline of figure 2: what the module must do at the least: connect, `start`, read the reply. */
static int raw_start(struct world *w, double *ms)
{
	json_t *reply = NULL;
	double t0 = bench_now_ms();
	int r =
	    sock_call(w, json_pack("{s:s,s:s,s:s}", "op", "start", "user", USER, "service", SERVICE), &reply);
	*ms = bench_now_ms() - t0;
	if (r == 0 && !json_is_true(json_object_get(reply, "ok")))
		r = NL_ERR_INTERNAL;
	json_decref(reply);
	return r;
}

/* ---- baseline of figure 3: the code exchange itself, done by hand ---- */

struct exchange {
	cjose_jwk_t *client_key;
	struct nl_jwks *jwks;
	char token_url[256], redirect[256];
};

static int exchange_setup(struct world *w, struct exchange *x)
{
	char path[PATH_MAX + 32], err[256], url[256];
	struct mockproc_resp jw = {0};
	int r;

	snprintf(path, sizeof(path), "%s/client.key.pem", w->dir);
	if ((r = nl_jwk_load_private_pem(path, &x->client_key, err, sizeof(err))) != 0)
		return r;
	snprintf(x->token_url, sizeof(x->token_url), "%s/token", mockproc_issuer(w->mock));
	snprintf(x->redirect, sizeof(x->redirect), "%s/callback", w->bridge);
	snprintf(url, sizeof(url), "%s/.well-known/jwks.json", mockproc_issuer(w->mock));
	if ((r = mockproc_fetch("GET", url, NULL, NULL, NULL, &jw)) == 0)
		r = nl_jwks_parse(jw.body, jw.body_len, &x->jwks);
	mockproc_resp_free(&jw);
	return r;
}

/* A code from /authorize (auto-approve), then timed: POST /token with a fresh client assertion
 * and validate the ID token - the provider work a completion cannot avoid. */
static int exchange_once(struct world *w, struct exchange *x, double *ms)
{
	static const char *const rs512[] = {"RS512"};
	struct mockproc_resp a = {0}, t = {0};
	char url[1024], *body = NULL, *assertion = NULL, *enc_r = NULL, *enc_v = NULL;
	const char *code;
	json_t *tok = NULL, *claims = NULL;
	CURL *cu = curl_easy_init();
	int r = NL_ERR_HTTP;
	double t0;

	if (cu == NULL)
		return NL_ERR_NOMEM;
	enc_r = curl_easy_escape(cu, x->redirect, 0);
	enc_v = curl_easy_escape(cu, VTR, 0);
	snprintf(
	    url, sizeof(url),
	    "%s/authorize?response_type=code&client_id=nhslogin-test&redirect_uri=%s&scope=openid%%20profile"
	    "&state=bench-state&nonce=bench-nonce&vtr=%s",
	    mockproc_issuer(w->mock), enc_r, enc_v);
	if (mockproc_fetch("GET", url, NULL, NULL, NULL, &a) != 0 || a.location == NULL ||
	    (code = strstr(a.location, "code=")) == NULL)
		goto out;
	code += 5;
	t0 = bench_now_ms();
	if (nl_client_assertion(x->client_key, "RS512", NULL, "nhslogin-test", x->token_url, time(NULL), 60,
	                        &assertion) != 0 ||
	    asprintf(
	        &body,
	        "grant_type=authorization_code&code=%.*s&redirect_uri=%s&client_assertion_type="
	        "urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=%s",
	        (int)strcspn(code, "&"), code, enc_r, assertion) < 0) {
		body = NULL;
		goto out;
	}
	if (mockproc_fetch("POST", x->token_url, "application/x-www-form-urlencoded", body, NULL, &t) != 0 ||
	    t.status != 200 || nl_json_parse(t.body, t.body_len, 1 << 20, 8, true, &tok, NULL, 0) != 0)
		goto out;
	const char *idt = nl_json_str(tok, "id_token");
	struct nl_idtoken_policy p = {.issuer = mockproc_issuer(w->mock),
	                              .client_id = "nhslogin-test",
	                              .allowed_algs = rs512,
	                              .n_allowed_algs = 1,
	                              .nonce = "bench-nonce",
	                              .vtr = VTR,
	                              .min_level = 9,
	                              .skew = 60,
	                              .now = time(NULL)};
	if (idt == NULL || (r = nl_idtoken_validate(idt, strlen(idt), x->jwks, &p, &claims, NULL)) != 0)
		goto out;
	*ms = bench_now_ms() - t0;
	r = 0;
out:
	json_decref(tok);
	json_decref(claims);
	nl_free_secret(assertion);
	nl_free_secret(body);
	curl_free(enc_r);
	curl_free(enc_v);
	curl_easy_cleanup(cu);
	mockproc_resp_free(&a);
	mockproc_resp_free(&t);
	return r;
}

/* ---- figure 5: provider requests per sign-in ---- */

static long provider_calls(struct world *w, long *parts)
{
	static const char *const eps[] = {"discovery", "jwks", "token", "userinfo"};
	long total = 0;
	for (size_t i = 0; i < 4; i++) {
		long n = 0;
		mockproc_stat(w->mock, eps[i], &n);
		parts[i] = n;
		total += n;
	}
	return total;
}

static void calls_row(struct world *w, const char *figure, bool cold, long minimum)
{
	long before[4], after[4], b, a;
	double ms;
	char note[128];

	if (cold) {
		json_t *reply = NULL;
		sock_call(w, json_pack("{s:s}", "op", "flush"), &reply);
		json_decref(reply);
	}
	b = provider_calls(w, before);
	if (pam_once(w, MODE_SIGNIN, &ms) != PAM_SUCCESS) {
		bench_row(figure, 0, "req", (double)minimum, "protocol minimum", false, "sign-in failed");
		return;
	}
	a = provider_calls(w, after);
	snprintf(note, sizeof(note), "discovery %ld, jwks %ld, token %ld, userinfo %ld", after[0] - before[0],
	         after[1] - before[1], after[2] - before[2], after[3] - before[3]);
	bench_row(figure, (double)(a - b), "req", (double)minimum, "= protocol minimum", a - b <= minimum,
	          note);
}

/* ---- figure 6b: token cache memory per cached sign-in ---- */

static void tokcache_row(size_t n)
{
	char dir[] = "/tmp/nl-bench-tc.XXXXXX", err[256], user[32];
	struct nl_tokcache *tc = NULL;
	json_t *claims;
	time_t now = time(NULL);
	struct mallinfo2 m0, m1;
	long long disk = 0;
	struct nl_config cfg;
	char cerr[256];

	nl_config_init(&cfg);
	if (mkdtemp(dir) == NULL ||
	    nl_config_set(&cfg, "identity", "reuse_window", "600", cerr, sizeof(cerr)) != 0) {
		nl_config_free(&cfg);
		return;
	}
	claims =
	    json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "iss",
	              "https://auth.sandpit.signin.nhs.uk", "sub", "2b6c1b7e-4f5d-4c1a-9b8e-0d9f3e6a7c21",
	              "aud", "nhslogin-bench", "exp", (json_int_t)(now + 3600), "iat", (json_int_t)now,
	              "auth_time", (json_int_t)now, "jti", "a7b4c2d9-1e3f-4a5b-8c6d-7e8f9a0b1c2d", "nonce",
	              "n-0S6_WzA2Mj", "vot", "P9.Cp.Cd", "vtm",
	              "https://auth.sandpit.signin.nhs.uk/trustmark/auth.sandpit", "identity_proofing_level",
	              "P9", "nhs_number", "9686368973", "family_name", "MILLAR", "birthdate", "1968-02-12");
	if (claims == NULL || nl_tokcache_open(dir, &tc, err, sizeof(err)) != 0)
		goto out;
	m0 = mallinfo2();
	for (size_t i = 0; i < n; i++) {
		struct nl_identity id = {.claims = claims,
		                         .sub = (char *)"2b6c1b7e-4f5d-4c1a-9b8e-0d9f3e6a7c21",
		                         .vot = (char *)"P9.Cp.Cd",
		                         .level = 9,
		                         .auth_time = now,
		                         .id_exp = now + 3600,
		                         .refresh_token =
		                             (char *)"rt-0123456789abcdef0123456789abcdef0123456789ab"};
		/* a console sign-in of its own (the cache notes the start, then stores the approval) */
		struct nl_reuse_place where = {.service = "login",
		                               .tty = "tty1",
		                               .by_root = true,
		                               .audit_session = (uint32_t)(i + 1),
		                               .conn = (uint64_t)(i + 1)};
		snprintf(user, sizeof(user), "u%05zu", i);
		(void)nl_tokcache_reuse(tc, &cfg, user, &where, now, NULL);
		nl_tokcache_store(tc, &cfg, user, &id, &where, now);
	}
	m1 = mallinfo2();
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		struct stat st;
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (de->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
			disk += st.st_size;
	}
	if (d != NULL)
		closedir(d);
	double per = (double)(m1.uordblks - m0.uordblks) / (double)n;
	char note[128];
	snprintf(note, sizeof(note), "%zu entries; heap bytes (mallinfo2) vs bytes on disk per entry", n);
	bench_row("6 memory per cached sign-in", per, "B", (double)disk / (double)n, "(figure)", true, note);
out:
	nl_tokcache_close(tc);
	json_decref(claims);
	nl_config_free(&cfg);
	/* The cache files are the bench's own: remove them. */
	d = opendir(dir);
	while (d != NULL && (de = readdir(d)) != NULL) {
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (de->d_name[0] != '.')
			unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	struct world_opts o = {.mock_args = {"--auto-approve", "p9", NULL},
	                       .daemon_extra = "max_flows_per_user = 100\nmax_flows = 20000"};
	struct world_opts oi = o;
	struct world *w = NULL, *wi = NULL;
	size_t n_prompt = 1000, n_signin = 100;
	double *lat = NULL, *base = NULL, ms;
	struct exchange x = {0};
	char note[160];
	int rc = 1;

	harness_under_pam_wrapper();
	if (argc > 1)
		n_prompt = (size_t)atoi(argv[1]);
	if (argc > 2)
		n_signin = (size_t)atoi(argv[2]);
	if (n_prompt < 10 || n_signin < 10)
		return 2;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (world_start(&o, &w) != 0 || world_activate(w) != 0) {
		fprintf(stderr, "bench_pam: cannot start the world\n");
		goto out;
	}
	if (getenv("NL_BENCH_HOLD") != NULL) { /* debugging: keep the world up for a profiler */
		fprintf(stderr, "bench_pam: socket %s, bridge %s; holding %s s\n", w->socket, w->bridge,
		        getenv("NL_BENCH_HOLD"));
		sleep((unsigned)atoi(getenv("NL_BENCH_HOLD")));
	}
	if ((lat = calloc(n_prompt, sizeof(*lat))) == NULL ||
	    (base = calloc(n_prompt, sizeof(*base))) == NULL)
		goto out;

	/* 5 first, while the caches are cold. */
	calls_row(w, "5 provider requests, cold", true, 3);
	calls_row(w, "5 provider requests, warm", false, 1);

	/* 2: prompt latency, warm caches; the baseline interleaved with it. */
	for (int i = 0; i < 20; i++)
		pam_once(w, MODE_PROMPT, &ms);
	for (size_t i = 0; i < n_prompt; i++) {
		if (pam_once(w, MODE_PROMPT, &lat[i]) < 0 || raw_start(w, &base[i]) != 0) {
			fprintf(stderr, "bench_pam: prompt run %zu failed\n", i);
			goto out;
		}
	}
	double p50 = bench_pct(lat, n_prompt, 0.5), p99 = bench_pct(lat, n_prompt, 0.99);
	double b50 = bench_pct(base, n_prompt, 0.5), b99 = bench_pct(base, n_prompt, 0.99);
	snprintf(note, sizeof(note), "%zu runs; baseline: connect + start + reply on the raw socket",
	         n_prompt);
	bench_row("2 prompt latency, median", p50, "ms", b50, "< 2 ms", p50 < 2.0, note);
	bench_row("2 prompt latency, p99", p99, "ms", b99, "(figure)", true, "");

	/* 3: completion latency; the baseline is the bare code exchange. */
	if (exchange_setup(w, &x) != 0) {
		fprintf(stderr, "bench_pam: exchange baseline setup failed\n");
		goto out;
	}
	for (size_t i = 0; i < n_signin; i++) {
		int r = pam_once(w, MODE_SIGNIN, &lat[i]);
		if (r != PAM_SUCCESS || exchange_once(w, &x, &base[i]) != 0) {
			fprintf(stderr, "bench_pam: sign-in %zu failed (%d)\n", i, r);
			goto out;
		}
	}
	p50 = bench_pct(lat, n_signin, 0.5);
	p99 = bench_pct(lat, n_signin, 0.99);
	b50 = bench_pct(base, n_signin, 0.5);
	b99 = bench_pct(base, n_signin, 0.99);
	snprintf(note, sizeof(note), "%zu sign-ins; baseline: POST /token + ID token check by hand",
	         n_signin);
	bench_row("3 completion latency, median", p50, "ms", b50, "< 50 ms", p50 < 50.0, note);
	bench_row("3 completion latency, p99", p99, "ms", b99, "(figure)", true, "");

	/* 5 with userinfo: its own daemon. */
	oi.identity_extra = "userinfo = true";
	if (world_start(&oi, &wi) == 0 && world_activate(wi) == 0) {
		calls_row(wi, "5 provider requests, cold, userinfo", true, 4);
		calls_row(wi, "5 provider requests, warm, userinfo", false, 2);
	}

	tokcache_row(1000);
	rc = 0;
out:
	if (x.client_key != NULL)
		cjose_jwk_release(x.client_key);
	nl_jwks_free(x.jwks);
	free(lat);
	free(base);
	world_stop(wi);
	world_stop(w);
	curl_global_cleanup();
	return rc;
}
