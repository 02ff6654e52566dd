/* Enrolled workstations, end to end: requests signed by the agent's code and checked by the bridge's
 * against a real hosts directory, and every attack the check exists for (a replay, a stale or
 * early request, a request altered in transit, one workstation posing as another, re-enrolment and
 * revocation, a token naming its own key or alg, a name that is a path, unsafe files). Then
 * `nhsloginctl enroll` as a program, and the cost of a signature and of its check (diagnostics). */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostauth.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_wipe.h"
#include "skip.h"

#define AUD     "https://signin.example.trust.nhs.uk"
#define PATH    "/api/v1/flows?wait=1"
#define BODY    "{\"user\":\"alice\",\"service\":\"login\",\"tty\":\"tty1\"}"
#define T0      1764928800 /* a fixed "now" */
#define OUT_MAX (64 * 1024)
/* The header our signer writes, for tokens made by hand. */
#define TYPED_HEADER "{\"alg\":\"ES256\",\"typ\":\"nl-host+jwt\"}"

/* ---- an in-memory replay cache (the bridge's is Redis SET NX) ---- */

#define REPLAY_MAX 4096
struct replay {
	struct {
		char key[160];
		time_t until;
	} seen[REPLAY_MAX];
	size_t n;
	bool fail; /* answer ERROR, as an unreachable Redis would */
	unsigned calls;
};

static enum nl_hostauth_replay replay_check(void *ctx, const char *name, const char *jti, time_t expires_at)
{
	struct replay *rp = ctx;
	char key[160];
	size_t i;

	rp->calls++;
	if (rp->fail)
		return NL_HOSTAUTH_REPLAY_ERROR;
	snprintf(key, sizeof(key), "%s/%s", name, jti);
	for (i = 0; i < rp->n; i++)
		if (strcmp(rp->seen[i].key, key) == 0)
			return NL_HOSTAUTH_REPLAY_SEEN;
	if (rp->n == REPLAY_MAX)
		rp->n = 0; /* the benchmark's jtis: forgetting old ones is enough here */
	snprintf(rp->seen[rp->n].key, sizeof(rp->seen[rp->n].key), "%s", key);
	rp->seen[rp->n++].until = expires_at;
	return NL_HOSTAUTH_REPLAY_NEW;
}

/* ---- fixtures: keys A, B (enrolled as ws-a, ws-b), C (never enrolled), and the directories ---- */

static struct {
	char dir[64];   /* everything, removed at the end */
	char hosts[96]; /* dir/hosts: the bridge's enrolment directory */
	char keys[96];  /* dir/keys: the workstations' private keys */
	cjose_jwk_t *a, *b, *c;
	EVP_PKEY *evp_a; /* A again, to craft tokens by hand */
	struct nl_hostauth_hosts *h;
	struct replay rp;
} fx;

static int write_file(const char *path, mode_t mode, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	size_t len = strlen(text);

	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) != 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, OUT_MAX);
	size_t n;

	if (f == NULL || buf == NULL) {
		if (f != NULL)
			fclose(f);
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, OUT_MAX - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A new workstation key at keys/FILE (through the code enroll uses), loaded. */
static cjose_jwk_t *new_key(const char *file, char *path, size_t pathlen)
{
	cjose_jwk_t *jwk = NULL;
	char err[512];
	bool created = false;

	snprintf(path, pathlen, "%s/%s", fx.keys, file);
	if (nl_hostauth_key_create(path, true, &created, err, sizeof(err)) != 0 || !created ||
	    nl_hostauth_key_load(path, &jwk, err, sizeof(err)) != 0) {
		print_error("%s\n", err);
		return NULL;
	}
	return jwk;
}

/* Enrol key as hosts/NAME.pem (mode 0644), the way the bridge's operator does. */
static int enrol(const char *name, const cjose_jwk_t *key)
{
	char path[256], *pem = nl_jwk_public_pem(key);
	int r;

	snprintf(path, sizeof(path), "%s/%s.pem", fx.hosts, name);
	r = pem != NULL ? write_file(path, 0644, pem) : -1;
	free(pem);
	return r;
}

static int group_setup(void **state)
{
	char path[256];
	FILE *f;
	(void)state;

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/nl-hostauth-XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	snprintf(fx.hosts, sizeof(fx.hosts), "%s/hosts", fx.dir);
	snprintf(fx.keys, sizeof(fx.keys), "%s/keys", fx.dir);
	if (mkdir(fx.hosts, 0755) != 0 || mkdir(fx.keys, 0700) != 0 || chmod(fx.hosts, 0755) != 0)
		return -1;
	if ((fx.a = new_key("a.key", path, sizeof(path))) == NULL)
		return -1;
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	fx.evp_a = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (fx.evp_a == NULL || (fx.b = new_key("b.key", path, sizeof(path))) == NULL ||
	    (fx.c = new_key("c.key", path, sizeof(path))) == NULL)
		return -1;
	if (enrol("ws-a", fx.a) != 0 || enrol("ws-b", fx.b) != 0)
		return -1;
	return nl_hostauth_hosts_new(fx.hosts, 0, &fx.h) == 0 ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_teardown(void **state)
{
	(void)state;
	nl_hostauth_hosts_free(fx.h);
	cjose_jwk_release(fx.a);
	cjose_jwk_release(fx.b);
	cjose_jwk_release(fx.c);
	EVP_PKEY_free(fx.evp_a);
	if (fx.dir[0] != '\0') {
		chmod(fx.hosts, 0755);
		nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	return 0;
}

/* ---- helpers ---- */

static char *sign(const cjose_jwk_t *key, const char *name, const char *method, const char *path,
                  const char *body, const char *aud, time_t now)
{
	char *value = NULL;

	assert_int_equal(nl_hostauth_sign(key, name, method, path, body, strlen(body), aud, now, &value), 0);
	assert_non_null(value);
	return value;
}

/* The bridge's check of one request; the reason in *why; name_out filled on success. */
static int verify_at(const char *value, const char *method, const char *path, const char *body, time_t now,
                     enum nl_hostauth_reason *why, char name[NL_HOSTAUTH_NAME_MAX + 1])
{
	struct nl_hostauth_error err;
	int r;

	memset(&err, 0xa5, sizeof(err));
	name[0] = '\0';
	r = nl_hostauth_verify(fx.h, value, method, path, body, strlen(body), AUD, now, replay_check, &fx.rp,
	                       name, &err);
	*why = err.reason;
	/* The reason line never carries the token. */
	if (value != NULL && strlen(value) > 40)
		assert_null(strstr(err.detail, value + strlen(value) - 40));
	if (r != 0)
		print_message("# refused: %s: %s\n", nl_hostauth_reason_word(err.reason), err.detail);
	return r;
}

/* Refused for exactly this reason (and no name handed out). */
#define assert_refused(value, method, path, body, now, reason)                                               \
	do {                                                                                                 \
		enum nl_hostauth_reason why_;                                                                \
		char name_[NL_HOSTAUTH_NAME_MAX + 1];                                                        \
		assert_int_not_equal(verify_at((value), (method), (path), (body), (now), &why_, name_), 0);  \
		assert_int_equal(why_, (reason));                                                            \
		assert_string_equal(name_, "");                                                              \
	} while (0)

static void assert_accepted(const char *value, const char *method, const char *path, const char *body,
                            time_t now, const char *want_name)
{
	enum nl_hostauth_reason why;
	char name[NL_HOSTAUTH_NAME_MAX + 1];

	assert_int_equal(verify_at(value, method, path, body, now, &why, name), 0);
	assert_int_equal(why, NL_HOSTAUTH_E_OK);
	assert_string_equal(name, want_name);
}

static char *b64(const void *p, size_t n)
{
	char *s = NULL;

	assert_int_equal(nl_b64url_encode(p, n, &s), 0);
	return s;
}

static char *bh_of(const char *body)
{
	uint8_t md[32];

	assert_int_equal(EVP_Digest(body, strlen(body), md, NULL, EVP_sha256(), NULL), 1);
	return b64(md, sizeof(md));
}

/* The claims of a request as the agent would make them, with the times and jti given. */
static json_t *claims_of(const char *iss, const char *method, const char *path, const char *body,
                         long long iat, long long exp, const char *jti)
{
	char *bh = bh_of(body), *fresh = NULL;
	json_t *c;

	if (jti == NULL) {
		assert_int_equal(nl_random_token(16, &fresh), 0);
		jti = fresh;
	}
	c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss", iss, "aud", AUD, "htm", method,
	              "htu", path, "bh", bh, "jti", jti, "iat", (json_int_t)iat, "exp", (json_int_t)exp);
	assert_non_null(c);
	free(bh);
	free(fresh);
	return c;
}

/* "NL-Host " and a JWS of claims signed by key through the project's signer (kid and typ as given;
 * typ NULL: none). */
static char *signed_typed(const cjose_jwk_t *key, const char *kid, const char *typ, json_t *claims)
{
	char *jws = NULL, *value = NULL;

	assert_int_equal(nl_jws_sign_typed(key, "ES256", kid, typ, claims, &jws), 0);
	json_decref(claims);
	assert_true(asprintf(&value, "NL-Host %s", jws) > 0);
	nl_free_secret(jws);
	return value;
}

/* The same, typed as a request. */
static char *signed_value(const cjose_jwk_t *key, const char *kid, json_t *claims)
{
	return signed_typed(key, kid, NL_HOSTAUTH_JWS_TYP, claims);
}

/* A compact JWS made by hand: header and payload JSON as given, signature bytes as given. */
static char *by_hand(const char *header, const char *payload, const uint8_t *sig, size_t siglen,
                     char **input_out)
{
	char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload)), *s = b64(sig, siglen);
	char *value = NULL;

	if (input_out != NULL)
		assert_true(asprintf(input_out, "%s.%s", h, p) > 0);
	assert_true(asprintf(&value, "NL-Host %s.%s.%s", h, p, s) > 0);
	free(h);
	free(p);
	free(s);
	return value;
}

/* ES256 over header.payload with A's private key, as r || s: a valid signature on a hand-made header. */
static char *es256_by_hand(const char *header, const char *payload)
{
	char *input = NULL, *value = by_hand(header, payload, (const uint8_t *)"x", 1, &input);
	uint8_t der[80], rs[64];
	const uint8_t *p = der;
	size_t derlen = sizeof(der);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ECDSA_SIG *sig;
	const BIGNUM *r, *s;

	free(value);
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, fx.evp_a), 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &derlen, (const uint8_t *)input, strlen(input)), 1);
	EVP_MD_CTX_free(ctx);
	assert_non_null(sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen));
	ECDSA_SIG_get0(sig, &r, &s);
	assert_int_equal(BN_bn2binpad(r, rs, 32), 32);
	assert_int_equal(BN_bn2binpad(s, rs + 32, 32), 32);
	ECDSA_SIG_free(sig);
	free(input);
	return by_hand(header, payload, rs, sizeof(rs), NULL);
}

static char *payload_text(const char *iss, time_t now)
{
	json_t *c = claims_of(iss, "POST", PATH, BODY, now, now + 30, NULL);
	char *s = json_dumps(c, JSON_COMPACT);

	json_decref(c);
	assert_non_null(s);
	return s;
}

/* ---- a request accepted, and one replayed ---- */

static void test_valid_request_is_accepted_with_its_enrolled_name(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	static const char *const es256[] = {"ES256"};
	struct nl_jws *jws = NULL;
	(void)state;

	assert_int_equal(strncmp(v, "NL-Host ", 8), 0);
	assert_int_equal(nl_jws_parse(v + 8, strlen(v + 8), es256, 1, &jws), 0);
	assert_string_equal(jws->typ, NL_HOSTAUTH_JWS_TYP);
	nl_jws_free(jws);
	assert_accepted(v, "POST", PATH, BODY, T0, "ws-a");
	free(v);
}

static void test_empty_body_request_is_accepted(void **state)
{
	char *v = sign(fx.b, "ws-b", "GET", "/api/v1/flows/f-1", "", AUD, T0);
	(void)state;

	assert_accepted(v, "GET", "/api/v1/flows/f-1", "", T0, "ws-b");
	free(v);
}

static void test_replayed_request_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	(void)state;

	assert_accepted(v, "POST", PATH, BODY, T0 + 1, "ws-a");
	assert_refused(v, "POST", PATH, BODY, T0 + 2, NL_HOSTAUTH_E_REPLAYED);
	free(v);
}

static void test_replay_cache_failure_refuses(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	(void)state;

	fx.rp.fail = true;
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_REPLAY_STORE);
	fx.rp.fail = false;
	free(v);
}

/* ---- time ---- */

static void test_expired_request_is_refused(void **state)
{
	/* Signed 100 s ago: exp was 70 s ago, past the 30 s of skew. */
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0 - 100);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_EXPIRED);
	free(v);
}

static void test_request_within_skew_is_accepted(void **state)
{
	/* A bridge clock 25 s ahead of the agent's, then 25 s behind. */
	char *late = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0 - NL_HOSTAUTH_LIFETIME - 25);
	char *early = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0 + 25);
	(void)state;

	assert_accepted(late, "POST", PATH, BODY, T0, "ws-a");
	assert_accepted(early, "POST", PATH, BODY, T0, "ws-a");
	free(late);
	free(early);
}

static void test_request_issued_in_the_future_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0 + NL_HOSTAUTH_SKEW + 5);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_NOT_YET_VALID);
	free(v);
}

static void test_lifetime_over_60_seconds_is_refused(void **state)
{
	char *kid = nl_jwk_thumbprint(fx.a);
	char *v = signed_value(fx.a, kid, claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 61, NULL));
	char *zero = signed_value(fx.a, kid, claims_of("ws-a", "POST", PATH, BODY, T0, T0, NULL));
	char *sixty = signed_value(fx.a, kid, claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 60, NULL));
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_LIFETIME);
	assert_refused(zero, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_LIFETIME);
	assert_accepted(sixty, "POST", PATH, BODY, T0, "ws-a");
	free(v);
	free(zero);
	free(sixty);
	free(kid);
}

/* Times at the ends of the integer range are refused without arithmetic overflow (found by
 * fuzz_hostauth: the lifetime in the refusal's message was exp - iat whatever they were; the
 * sanitizer build stops on the overflow). */
static void test_extreme_times_are_refused_without_overflow(void **state)
{
	static const struct {
		long long iat, exp;
		enum nl_hostauth_reason why;
	} cases[] = {
	    {-9223372036854775807LL, 9223372036854775807LL, NL_HOSTAUTH_E_LIFETIME},
	    {5, -9223372036854775807LL - 1, NL_HOSTAUTH_E_LIFETIME},
	    {0, 9223372036854775807LL, NL_HOSTAUTH_E_LIFETIME},
	    {9223372036854775807LL - 30, 9223372036854775807LL, NL_HOSTAUTH_E_NOT_YET_VALID},
	};
	char *kid = nl_jwk_thumbprint(fx.a), *v;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = signed_value(fx.a, kid,
		                 claims_of("ws-a", "POST", PATH, BODY, cases[i].iat, cases[i].exp, NULL));
		assert_refused(v, "POST", PATH, BODY, T0, cases[i].why);
		free(v);
	}
	free(kid);
}

/* ---- what the signature binds ---- */

static void test_request_for_another_bridge_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, "https://signin.other-trust.nhs.uk", T0);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_AUDIENCE);
	free(v);
}

static void test_changed_method_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "GET", PATH, BODY, AUD, T0);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_METHOD);
	free(v);
}

static void test_changed_path_or_query_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	char *w = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	(void)state;

	assert_refused(v, "POST", "/api/v1/flows/f-2/cancel", BODY, T0, NL_HOSTAUTH_E_PATH);
	assert_refused(w, "POST", "/api/v1/flows?wait=30", BODY, T0, NL_HOSTAUTH_E_PATH);
	free(v);
	free(w);
}

static void test_body_changed_by_one_byte_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	char body[] = BODY;
	(void)state;

	body[10] ^= 1; /* "alice" -> "alhce" */
	assert_refused(v, "POST", PATH, body, T0, NL_HOSTAUTH_E_BODY);
	free(v);
}

static void test_short_jti_is_refused(void **state)
{
	char *kid = nl_jwk_thumbprint(fx.a);
	char *v = signed_value(fx.a, kid, claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, "AAAAAAAAAAA"));
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_JTI);
	free(v);
	free(kid);
}

/* ---- who signed ---- */

static void test_unknown_workstation_is_refused(void **state)
{
	char *v = sign(fx.c, "ws-c", "POST", PATH, BODY, AUD, T0);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_UNKNOWN_HOST);
	free(v);
}

static void test_workstation_a_cannot_sign_as_b(void **state)
{
	/* A's key, A's kid, iss = ws-b: the kid is not B's key. */
	char *v = sign(fx.a, "ws-b", "POST", PATH, BODY, AUD, T0);
	/* Without a kid, or with B's kid copied: the signature does not verify with B's key. */
	char *kid_b = nl_jwk_thumbprint(fx.b);
	char *nokid = signed_value(fx.a, NULL, claims_of("ws-b", "POST", PATH, BODY, T0, T0 + 30, NULL));
	char *bkid = signed_value(fx.a, kid_b, claims_of("ws-b", "POST", PATH, BODY, T0, T0 + 30, NULL));
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_OTHER_KEY);
	assert_refused(nokid, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_SIGNATURE);
	assert_refused(bkid, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_SIGNATURE);
	free(v);
	free(nokid);
	free(bkid);
	free(kid_b);
}

static void test_reenrolled_workstation_refuses_the_old_key(void **state)
{
	char path[256], hostfile[256];
	cjose_jwk_t *old = new_key("r1.key", path, sizeof(path)),
	            *now_key = new_key("r2.key", path, sizeof(path));
	char *before, *after, *stale, *fresh, *pem;
	(void)state;

	assert_non_null(old);
	assert_non_null(now_key);
	assert_int_equal(enrol("ws-r", old), 0);
	before = sign(old, "ws-r", "POST", PATH, BODY, AUD, T0);
	assert_accepted(before, "POST", PATH, BODY, T0, "ws-r");
	/* Re-enrolment by rename over the file (a new inode)... */
	snprintf(hostfile, sizeof(hostfile), "%s/ws-r.pem", fx.hosts);
	snprintf(path, sizeof(path), "%s/.ws-r.new", fx.hosts);
	pem = nl_jwk_public_pem(now_key);
	assert_int_equal(write_file(path, 0644, pem), 0);
	assert_int_equal(rename(path, hostfile), 0);
	stale = sign(old, "ws-r", "POST", PATH, BODY, AUD, T0);
	assert_refused(stale, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_OTHER_KEY);
	fresh = sign(now_key, "ws-r", "POST", PATH, BODY, AUD, T0);
	assert_accepted(fresh, "POST", PATH, BODY, T0, "ws-r");
	/* ...and back to the old key by rewriting the same file in place (same inode). */
	free(pem);
	pem = nl_jwk_public_pem(old);
	assert_int_equal(write_file(hostfile, 0644, pem), 0);
	after = sign(now_key, "ws-r", "POST", PATH, BODY, AUD, T0);
	assert_refused(after, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_OTHER_KEY);
	free(pem);
	free(before);
	free(after);
	free(stale);
	free(fresh);
	cjose_jwk_release(old);
	cjose_jwk_release(now_key);
}

static void test_deleted_file_revokes_at_once(void **state)
{
	char path[256], hostfile[256];
	cjose_jwk_t *key = new_key("d.key", path, sizeof(path));
	char *first, *second;
	size_t cached;
	(void)state;

	assert_non_null(key);
	assert_int_equal(enrol("ws-d", key), 0);
	first = sign(key, "ws-d", "POST", PATH, BODY, AUD, T0);
	assert_accepted(first, "POST", PATH, BODY, T0, "ws-d");
	cached = nl_hostauth_hosts_cached(fx.h);
	snprintf(hostfile, sizeof(hostfile), "%s/ws-d.pem", fx.hosts);
	assert_int_equal(unlink(hostfile), 0);
	/* The very next request, in the same second, with the key still in the cache. */
	second = sign(key, "ws-d", "POST", PATH, BODY, AUD, T0);
	assert_refused(second, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_UNKNOWN_HOST);
	assert_int_equal(nl_hostauth_hosts_cached(fx.h), cached - 1);
	free(first);
	free(second);
	cjose_jwk_release(key);
}

static void test_enrolled_file_without_an_ec_key_is_refused(void **state)
{
	char path[256];
	char *v = sign(fx.c, "ws-junk", "POST", PATH, BODY, AUD, T0);
	(void)state;

	snprintf(path, sizeof(path), "%s/ws-junk.pem", fx.hosts);
	assert_int_equal(
	    write_file(path, 0644, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_HOST_KEY_BAD);
	unlink(path);
	free(v);
}

/* ---- tokens that choose their own alg or key ---- */

static void test_alg_none_is_refused(void **state)
{
	char *payload = payload_text("ws-a", T0);
	char *v = by_hand("{\"alg\":\"none\"}", payload, (const uint8_t *)"\0", 1, NULL);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_ALG);
	free(v);
	free(payload);
}

static void test_hs256_with_the_public_key_as_secret_is_refused(void **state)
{
	char *payload = payload_text("ws-a", T0), *pem = nl_jwk_public_pem(fx.a), *input = NULL, *v;
	uint8_t mac[32];
	unsigned int maclen = sizeof(mac);
	(void)state;

	free(by_hand("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, mac, 1, &input));
	assert_non_null(
	    HMAC(EVP_sha256(), pem, (int)strlen(pem), (const uint8_t *)input, strlen(input), mac, &maclen));
	v = by_hand("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, mac, maclen, NULL);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_ALG);
	free(v);
	free(input);
	free(pem);
	free(payload);
}

static void test_rs256_and_es512_are_refused(void **state)
{
	char *payload = payload_text("ws-a", T0);
	char *rs = by_hand("{\"alg\":\"RS512\"}", payload, (const uint8_t *)"sig", 3, NULL);
	char *es = by_hand("{\"alg\":\"ES512\"}", payload, (const uint8_t *)"sig", 3, NULL);
	(void)state;

	assert_refused(rs, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_ALG);
	assert_refused(es, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_ALG);
	free(rs);
	free(es);
	free(payload);
}

static void test_header_carrying_its_own_key_is_refused(void **state)
{
	char *payload = payload_text("ws-c", T0), *jwk = nl_jwk_public_json(fx.c, "ES256"), *hdr = NULL;
	char *with_jwk, *with_x5c, *control;
	(void)state;

	/* Valid ES256 signatures (by A) over headers that name a key: refused for naming it. */
	assert_true(asprintf(&hdr, "{\"alg\":\"ES256\",\"typ\":\"nl-host+jwt\",\"jwk\":%s}", jwk) > 0);
	with_jwk = es256_by_hand(hdr, payload);
	with_x5c = es256_by_hand("{\"alg\":\"ES256\",\"typ\":\"nl-host+jwt\",\"x5c\":[\"MIIB\"]}", payload);
	assert_refused(with_jwk, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_MALFORMED);
	assert_refused(with_x5c, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_MALFORMED);
	/* The hand-made signer is sound: the same header without a key, for ws-a, passes. */
	free(payload);
	payload = payload_text("ws-a", T0);
	control = es256_by_hand(TYPED_HEADER, payload);
	assert_accepted(control, "POST", PATH, BODY, T0, "ws-a");
	free(control);
	free(with_jwk);
	free(with_x5c);
	free(hdr);
	free(jwk);
	free(payload);
}

/* ---- tokens of another type signed with an enrolled key ---- */

/* Every claim a valid request has: only the typ can refuse these. */
static void test_request_typed_jwt_is_refused(void **state)
{
	char *kid = nl_jwk_thumbprint(fx.a);
	char *v = signed_typed(fx.a, kid, "JWT", claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, NULL));
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
	free(v);
	free(kid);
}

static void test_request_without_typ_is_refused(void **state)
{
	char *kid = nl_jwk_thumbprint(fx.a);
	char *v = signed_typed(fx.a, kid, NULL, claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, NULL));
	char *payload = payload_text("ws-a", T0);
	char *by_hand_v = es256_by_hand("{\"alg\":\"ES256\"}", payload);
	(void)state;

	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
	assert_refused(by_hand_v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
	free(v);
	free(by_hand_v);
	free(payload);
	free(kid);
}

/* An ID token (typ JWT) signed by a workstation's key, carrying the request's claims as well: refused
 * for its typ alone. A client assertion made by the project's own code with that key, likewise, and
 * before its missing claims are looked at. */
static void test_id_token_signed_by_an_enrolled_key_is_refused(void **state)
{
	char *kid = nl_jwk_thumbprint(fx.a), *bh = bh_of(BODY), *jti = NULL, *assertion = NULL, *ca;
	json_t *c;
	char *v;
	(void)state;

	assert_int_equal(nl_random_token(16, &jti), 0);
	c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "iss", "ws-a",
	              "sub", "9686368973", "aud", AUD, "nonce", "n-0S6_WzA2Mj", "vot", "P9.Cp.Cd", "iat",
	              (json_int_t)T0, "exp", (json_int_t)T0 + 30, "auth_time", (json_int_t)T0, "jti", jti,
	              "htm", "POST", "htu", PATH, "bh", bh, "identity_proofing_level", "P9");
	assert_non_null(c);
	v = signed_typed(fx.a, kid, "JWT", c);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
	assert_int_equal(nl_client_assertion(fx.a, "ES256", kid, "ws-a", AUD, T0, 30, &assertion), 0);
	assert_true(asprintf(&ca, "NL-Host %s", assertion) > 0);
	assert_refused(ca, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
	free(ca);
	nl_free_secret(assertion);
	free(v);
	free(jti);
	free(bh);
	free(kid);
}

/* typ is a media type (RFC 7515 4.1.9): any case, "application/" implied; nothing else is it. */
static void test_typ_is_compared_as_a_media_type(void **state)
{
	static const char *const same[] = {"nl-host+jwt", "NL-Host+JWT", "application/nl-host+jwt"};
	static const char *const other[] = {"at+jwt",
	                                    "nl-host",
	                                    "nl-host+jwt ",
	                                    "application/jwt",
	                                    "nl-host+jwt2",
	                                    "application/application/nl-host+jwt",
	                                    ""};
	char *kid = nl_jwk_thumbprint(fx.a), *v;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		v = signed_typed(fx.a, kid, same[i],
		                 claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, NULL));
		assert_accepted(v, "POST", PATH, BODY, T0, "ws-a");
		free(v);
	}
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		v = signed_typed(fx.a, kid, other[i],
		                 claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, NULL));
		assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TYP);
		free(v);
	}
	free(kid);
}

/* ---- names and files ---- */

static void test_name_that_is_a_path_is_refused_before_any_file(void **state)
{
	static const char *const names[] = {"../evil", "hosts/../evil", "/tmp/evil", "sub/ws-a",
	                                    "WS-A",    ".hidden",       "ws-a\n",    ""};
	char path[256], *payload, *v;
	size_t i;
	(void)state;

	/* A key the attacker controls, where "../evil" would lead if names were paths. */
	snprintf(path, sizeof(path), "%s/evil.pem", fx.dir);
	v = nl_jwk_public_pem(fx.a);
	assert_int_equal(write_file(path, 0644, v), 0);
	free(v);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *c = claims_of(names[i], "POST", PATH, BODY, T0, T0 + 30, NULL);
		payload = json_dumps(c, JSON_COMPACT);
		json_decref(c);
		v = es256_by_hand(TYPED_HEADER, payload);
		assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_BAD_NAME);
		free(v);
		free(payload);
	}
	assert_false(nl_hostauth_name_ok("a..b"));
	assert_false(nl_hostauth_name_ok("a234567890123456789012345678901234567890123456789012345678901234"));
	assert_true(nl_hostauth_name_ok("a23456789012345678901234567890123456789012345678901234567890123"));
	assert_true(nl_hostauth_name_ok("ws-0042.ward7.example"));
	unlink(path);
}

static void test_group_writable_hosts_dir_is_refused(void **state)
{
	char *v = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	(void)state;

	assert_int_equal(chmod(fx.hosts, 0775), 0);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_HOSTS_UNSAFE);
	assert_int_equal(chmod(fx.hosts, 0755), 0);
	/* Nothing was spent: the same request passes once the directory is safe. */
	assert_accepted(v, "POST", PATH, BODY, T0, "ws-a");
	free(v);
}

static void test_world_writable_host_file_is_refused(void **state)
{
	char path[256];
	char *v = sign(fx.b, "ws-b", "POST", PATH, BODY, AUD, T0);
	(void)state;

	snprintf(path, sizeof(path), "%s/ws-b.pem", fx.hosts);
	assert_int_equal(chmod(path, 0666), 0);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_HOSTS_UNSAFE);
	assert_int_equal(chmod(path, 0644), 0);
	assert_accepted(v, "POST", PATH, BODY, T0, "ws-b");
	free(v);
}

static void test_symlinked_host_file_is_refused(void **state)
{
	char path[256], target[256];
	char *v = sign(fx.a, "ws-link", "POST", PATH, BODY, AUD, T0);
	(void)state;

	snprintf(path, sizeof(path), "%s/ws-link.pem", fx.hosts);
	snprintf(target, sizeof(target), "%s/ws-a.pem", fx.hosts);
	assert_int_equal(symlink(target, path), 0);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_HOSTS_UNSAFE);
	unlink(path);
	free(v);
}

static void test_host_file_owned_by_another_user_is_refused(void **state)
{
	char path[256];
	char *v;
	(void)state;

	if (geteuid() != 0)
		skip_because("needs root to give the file to another user");
	v = sign(fx.b, "ws-b", "POST", PATH, BODY, AUD, T0);
	snprintf(path, sizeof(path), "%s/ws-b.pem", fx.hosts);
	assert_int_equal(chown(path, 4242, 4242), 0);
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_HOSTS_UNSAFE);
	assert_int_equal(chown(path, 0, 0), 0);
	free(v);
}

/* ---- several bridge threads on one cache ---- */

#define THREADS     4
#define PER_THREAD  150
#define CHURN_HOSTS 3

struct worker {
	struct nl_hostauth_hosts *h;
	char **vals; /* PER_THREAD requests, each for one of the churned hosts */
	unsigned long replays;
	int accepted, refused;
};

static enum nl_hostauth_replay replay_count(void *ctx, const char *name, const char *jti, time_t expires_at)
{
	(void)name;
	(void)jti;
	(void)expires_at;
	__atomic_fetch_add((unsigned long *)ctx, 1, __ATOMIC_RELAXED);
	return NL_HOSTAUTH_REPLAY_NEW;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct nl_hostauth_error err;
	char name[NL_HOSTAUTH_NAME_MAX + 1];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		if (nl_hostauth_verify(w->h, w->vals[i], "POST", PATH, BODY, strlen(BODY), AUD, T0,
		                       replay_count, &w->replays, name, &err) == 0)
			w->accepted++;
		else
			w->refused++;
	}
	return NULL;
}

/* Threads check requests of three workstations through a cache of one key (every check evicts
 * another thread's key while it may be in use) while the main thread rewrites their files: every
 * request is either accepted or refused cleanly (ASan: no key is freed while in use). */
static void test_concurrent_checks_share_a_small_cache_safely(void **state)
{
	static const char *const names[CHURN_HOSTS] = {"ws-t0", "ws-t1", "ws-t2"};
	struct worker w[THREADS];
	pthread_t tid[THREADS];
	cjose_jwk_t *keys[CHURN_HOSTS];
	struct nl_hostauth_hosts *small = NULL;
	char path[256];
	int i, j, total = 0;
	(void)state;

	assert_int_equal(nl_hostauth_hosts_new(fx.hosts, 1, &small), 0);
	for (j = 0; j < CHURN_HOSTS; j++) {
		char file[32];
		snprintf(file, sizeof(file), "t%d.key", j);
		assert_non_null(keys[j] = new_key(file, path, sizeof(path)));
		assert_int_equal(enrol(names[j], keys[j]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].h = small;
		assert_non_null(w[i].vals = calloc(PER_THREAD, sizeof(char *)));
		for (j = 0; j < PER_THREAD; j++)
			w[i].vals[j] = sign(keys[(i + j) % CHURN_HOSTS], names[(i + j) % CHURN_HOSTS], "POST",
			                    PATH, BODY, AUD, T0);
	}
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, worker_run, &w[i]), 0);
	/* The same keys written again: new times, so each is read again. */
	for (j = 0; j < 30; j++)
		assert_int_equal(enrol(names[j % CHURN_HOSTS], keys[j % CHURN_HOSTS]), 0);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		total += w[i].accepted;
		assert_int_equal(w[i].accepted + w[i].refused, PER_THREAD);
		assert_int_equal(w[i].replays, (unsigned long)w[i].accepted);
		for (j = 0; j < PER_THREAD; j++)
			free(w[i].vals[j]);
		free(w[i].vals);
	}
	/* A file caught half-written may refuse a request; the rest pass. */
	print_message("# concurrent: %d of %d accepted\n", total, THREADS * PER_THREAD);
	assert_true(total > THREADS * PER_THREAD / 2);
	assert_true(nl_hostauth_hosts_cached(small) <= 1);
	nl_hostauth_hosts_free(small);
	for (j = 0; j < CHURN_HOSTS; j++)
		cjose_jwk_release(keys[j]);
}

/* ---- the header itself ---- */

static void test_oversize_header_is_refused(void **state)
{
	char *v = malloc(NL_HOSTAUTH_HEADER_MAX + 16);
	(void)state;

	assert_non_null(v);
	memcpy(v, "NL-Host ", 8);
	memset(v + 8, 'A', NL_HOSTAUTH_HEADER_MAX);
	v[NL_HOSTAUTH_HEADER_MAX + 8] = '\0';
	assert_refused(v, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_TOO_BIG);
	free(v);
}

static void test_malformed_values_are_refused(void **state)
{
	static const char *const values[] = {"",
	                                     "NL-Host",
	                                     "NL-Host ",
	                                     "Bearer abc.def.ghi",
	                                     "NL-Host a.b",
	                                     "NL-Host a.b.c.d",
	                                     "NL-Host  a.b.c",
	                                     "NL-Host a.b.c ",
	                                     "NL-Host a+b.c.d"};
	char *good = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0), *json_ser = NULL;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		assert_refused(values[i], "POST", PATH, BODY, T0, NL_HOSTAUTH_E_MALFORMED);
	/* The JSON serialization of a JWS is not accepted, only the compact one. */
	assert_true(asprintf(&json_ser, "NL-Host {\"payload\":\"%s\"}", good + 8) > 0);
	assert_refused(json_ser, "POST", PATH, BODY, T0, NL_HOSTAUTH_E_MALFORMED);
	free(json_ser);
	free(good);
}

/* ---- nhsloginctl enroll ---- */

/* Run nhsloginctl with args; stdout into *out (new), the exit status returned. */
static int run_ctl(char **out, const char *const *args)
{
	const char *top = getenv("NL_TOP_BUILDDIR");
	char prog[4096], outfile[256];
	const char *argv[16];
	size_t i;
	pid_t pid;
	int status = 0, fd;

	snprintf(prog, sizeof(prog), "%s/nhsloginctl", top != NULL ? top : ".");
	snprintf(outfile, sizeof(outfile), "%s/ctl.out", fx.dir);
	argv[0] = prog;
	for (i = 0; i < 14 && args[i] != NULL; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(127);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	*out = read_text(outfile);
	assert_non_null(*out);
	return WEXITSTATUS(status);
}

static const char *line_after(const char *text, const char *prefix)
{
	const char *p = strstr(text, prefix);

	assert_non_null(p);
	return p + strlen(prefix);
}

static void test_enroll_creates_a_0600_key_and_prints_the_registration(void **state)
{
	char key[256], *out = NULL, *thumb;
	const char *args[] = {"enroll", "--name", "ws-0042.ward7", "--key", key, NULL};
	cjose_jwk_t *jwk = NULL;
	struct stat st;
	(void)state;

	snprintf(key, sizeof(key), "%s/enrolled.key", fx.keys);
	assert_int_equal(run_ctl(&out, args), 0);
	assert_int_equal(lstat(key, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	assert_non_null(strstr(out, "ws-0042.ward7.pem"));
	assert_non_null(strstr(out, "-----BEGIN PUBLIC KEY-----"));
	assert_null(strstr(out, "PRIVATE"));
	assert_int_equal(nl_hostauth_key_load(key, &jwk, NULL, 0), 0);
	thumb = nl_jwk_thumbprint(jwk);
	assert_int_equal(strncmp(line_after(out, "thumbprint (RFC 7638, SHA-256): "), thumb, strlen(thumb)),
	                 0);
	free(thumb);
	free(out);
	cjose_jwk_release(jwk);
}

static void test_enroll_again_keeps_the_key_and_prints_the_same(void **state)
{
	char key[256], *first = NULL, *second = NULL, *before, *after;
	const char *args[] = {"enroll", "--name", "ws-again", "--key", key, NULL};
	(void)state;

	snprintf(key, sizeof(key), "%s/again.key", fx.keys);
	assert_int_equal(run_ctl(&first, args), 0);
	before = read_text(key);
	assert_int_equal(run_ctl(&second, args), 0);
	after = read_text(key);
	assert_string_equal(before, after);
	assert_string_equal(first, second);
	free(first);
	free(second);
	free(before);
	free(after);
}

static void test_enroll_force_replaces_the_key(void **state)
{
	char key[256], *first = NULL, *second = NULL, *t1, *t2;
	const char *args[] = {"enroll", "--name", "ws-force", "--key", key, NULL};
	const char *force[] = {"enroll", "--name", "ws-force", "--key", key, "--force", NULL};
	struct stat st;
	(void)state;

	snprintf(key, sizeof(key), "%s/force.key", fx.keys);
	assert_int_equal(run_ctl(&first, args), 0);
	assert_int_equal(run_ctl(&second, force), 0);
	t1 = strdup(line_after(first, "thumbprint (RFC 7638, SHA-256): "));
	t2 = strdup(line_after(second, "thumbprint (RFC 7638, SHA-256): "));
	t1[strcspn(t1, "\n")] = t2[strcspn(t2, "\n")] = '\0';
	assert_string_not_equal(t1, t2);
	assert_int_equal(lstat(key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	free(t1);
	free(t2);
	free(first);
	free(second);
}

static void test_enroll_refuses_a_bad_name(void **state)
{
	char key[256], *out = NULL;
	const char *args[] = {"enroll", "--name", "../ws", "--key", key, NULL};
	const char *upper[] = {"enroll", "--name", "WS-1", "--key", key, NULL};
	(void)state;

	snprintf(key, sizeof(key), "%s/badname.key", fx.keys);
	assert_int_equal(run_ctl(&out, args), 2);
	free(out);
	assert_int_equal(run_ctl(&out, upper), 2);
	free(out);
	assert_int_equal(access(key, F_OK), -1);
}

static void test_enroll_refuses_an_unsafe_key_place(void **state)
{
	char dir[200], key[256], link[256], *out = NULL, *target;
	const char *args[] = {"enroll", "--name", "ws-x", "--key", key, NULL};
	const char *via_link[] = {"enroll", "--name", "ws-x", "--key", link, NULL};
	(void)state;

	/* A group-writable directory: another user could swap the key. */
	snprintf(dir, sizeof(dir), "%s/shared", fx.dir);
	assert_int_equal(mkdir(dir, 0770), 0);
	assert_int_equal(chmod(dir, 0770), 0);
	snprintf(key, sizeof(key), "%s/host.key", dir);
	assert_int_equal(run_ctl(&out, args), 1);
	free(out);
	assert_int_equal(access(key, F_OK), -1);
	/* A symbolic link at the key's path is neither followed nor taken for a key. */
	snprintf(key, sizeof(key), "%s/target", fx.keys);
	assert_int_equal(write_file(key, 0600, "not a key\n"), 0);
	snprintf(link, sizeof(link), "%s/link.key", fx.keys);
	assert_int_equal(symlink(key, link), 0);
	assert_int_equal(run_ctl(&out, via_link), 1);
	free(out);
	target = read_text(key);
	assert_string_equal(target, "not a key\n");
	free(target);
	/* A relative path is a usage error. */
	snprintf(key, sizeof(key), "relative.key");
	assert_int_equal(run_ctl(&out, args), 2);
	free(out);
}

static void test_enroll_as_root_makes_a_root_owned_key(void **state)
{
	char key[256], *out = NULL;
	const char *args[] = {"enroll", "--name", "ws-root", "--key", key, NULL};
	struct stat st;
	(void)state;

	if (geteuid() != 0)
		skip_because("needs root: the key must be owned by root");
	snprintf(key, sizeof(key), "%s/root.key", fx.keys);
	assert_int_equal(run_ctl(&out, args), 0);
	free(out);
	assert_int_equal(lstat(key, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* A key file that another user owns is not this workstation's key. */
	assert_int_equal(chown(key, 4242, 4242), 0);
	assert_int_equal(run_ctl(&out, args), 1);
	free(out);
}

/* What enroll prints is what the bridge needs: saved as hosts/NAME.pem, it verifies the agent. */
static void test_enroll_registration_lets_the_agent_in(void **state)
{
	char key[256], hostfile[256], *out = NULL, *v;
	const char *args[] = {"-j", "enroll", "--name", "ws-e2e", "--key", key, NULL};
	cjose_jwk_t *jwk = NULL;
	json_t *reg;
	(void)state;

	snprintf(key, sizeof(key), "%s/e2e.key", fx.keys);
	assert_int_equal(run_ctl(&out, args), 0);
	assert_non_null(reg = json_loads(out, 0, NULL));
	snprintf(hostfile, sizeof(hostfile), "%s/%s", fx.hosts,
	         json_string_value(json_object_get(reg, "file")));
	assert_int_equal(write_file(hostfile, 0644, json_string_value(json_object_get(reg, "pem"))), 0);
	assert_int_equal(nl_hostauth_key_load(key, &jwk, NULL, 0), 0);
	v = sign(jwk, "ws-e2e", "POST", PATH, BODY, AUD, T0);
	assert_accepted(v, "POST", PATH, BODY, T0, "ws-e2e");
	free(v);
	free(out);
	json_decref(reg);
	cjose_jwk_release(jwk);
}

/* ---- nhsloginctl hosts ---- */

/* A new hosts directory fx.dir/SUB (0755) with two workstations enrolled the way the operators do it:
 * nhsloginctl enroll on each, its PEM saved as NAME.pem. Their thumbprints as enroll printed them. */
static void enrolled_dir(const char *sub, char *dir, size_t dirlen, char thumbs[2][64])
{
	static const char *const names[] = {"ws-h1", "ws-h2"};
	char key[256], hostfile[512], *out = NULL;
	const char *args[] = {"-j", "enroll", "--name", NULL, "--key", key, NULL};
	json_t *reg;
	int i;

	snprintf(dir, dirlen, "%s/%s", fx.dir, sub);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	for (i = 0; i < 2; i++) {
		args[3] = names[i];
		snprintf(key, sizeof(key), "%s/%s-%s.key", fx.keys, sub, names[i]);
		assert_int_equal(run_ctl(&out, args), 0);
		assert_non_null(reg = json_loads(out, 0, NULL));
		snprintf(thumbs[i], 64, "%s", json_string_value(json_object_get(reg, "thumbprint")));
		assert_int_equal(strlen(thumbs[i]), 43);
		snprintf(hostfile, sizeof(hostfile), "%s/%s", dir,
		         json_string_value(json_object_get(reg, "file")));
		assert_int_equal(write_file(hostfile, 0644, json_string_value(json_object_get(reg, "pem"))),
		                 0);
		json_decref(reg);
		free(out);
	}
}

/* The line of the listing that begins with label and two spaces (NULL if none). */
static const char *line_of(const char *text, const char *label)
{
	size_t n = strlen(label);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, label, n) == 0 && p[n] == ' ')
			return p;
		p = strchr(p, '\n');
		p = p != NULL ? p + 1 : NULL;
	}
	return NULL;
}

/* The listing's text for label: "thumbprint" or "-  refused: ..." (new string). */
static char *listed(const char *text, const char *label)
{
	const char *p = line_of(text, label);
	char *v;

	assert_non_null(p);
	p += strlen(label);
	while (*p == ' ')
		p++;
	v = strndup(p, strcspn(p, "\n"));
	assert_non_null(v);
	return v;
}

static void test_hosts_lists_each_workstation_with_the_thumbprint_enroll_printed(void **state)
{
	char dir[256], thumbs[2][64], *out = NULL, *t;
	const char *args[] = {"hosts", "--dir", dir, NULL};
	const char *json_args[] = {"-j", "hosts", "--dir", dir, NULL};
	json_t *doc, *h;
	(void)state;

	enrolled_dir("hosts-list", dir, sizeof(dir), thumbs);
	assert_int_equal(run_ctl(&out, args), 0);
	t = listed(out, "ws-h1");
	assert_string_equal(t, thumbs[0]);
	free(t);
	t = listed(out, "ws-h2");
	assert_string_equal(t, thumbs[1]);
	free(t);
	assert_null(strstr(out, "refused"));
	free(out);
	assert_int_equal(run_ctl(&out, json_args), 0);
	assert_non_null(doc = json_loads(out, 0, NULL));
	assert_true(json_is_true(json_object_get(doc, "ok")));
	assert_int_equal(json_integer_value(json_object_get(doc, "enrolled")), 2);
	assert_int_equal(json_integer_value(json_object_get(doc, "refused")), 0);
	assert_true(json_is_false(json_object_get(doc, "cut")));
	assert_int_equal(json_array_size(json_object_get(doc, "hosts")), 2);
	h = json_array_get(json_object_get(doc, "hosts"), 1);
	assert_string_equal(json_string_value(json_object_get(h, "name")), "ws-h2");
	assert_string_equal(json_string_value(json_object_get(h, "file")), "ws-h2.pem");
	assert_string_equal(json_string_value(json_object_get(h, "thumbprint")), thumbs[1]);
	assert_true(json_is_true(json_object_get(h, "ok")));
	json_decref(doc);
	free(out);
}

/* A file the bridge would refuse is listed with why, and the command says so with exit 1; the good
 * ones are still listed. */
static void test_hosts_reports_unsafe_and_garbage_files_as_refused(void **state)
{
	char dir[256], thumbs[2][64], path[512], *out = NULL, *t, *pem = nl_jwk_public_pem(fx.c);
	const char *args[] = {"hosts", "--dir", dir, NULL};
	const char *json_args[] = {"-j", "hosts", "--dir", dir, NULL};
	json_t *doc, *h;
	size_t i;
	(void)state;

	enrolled_dir("hosts-bad", dir, sizeof(dir), thumbs);
	snprintf(path, sizeof(path), "%s/ws-open.pem", dir);
	assert_int_equal(write_file(path, 0666, pem), 0);
	snprintf(path, sizeof(path), "%s/ws-junk.pem", dir);
	assert_int_equal(write_file(path, 0644, "garbage\n"), 0);
	snprintf(path, sizeof(path), "%s/Notes\n.txt", dir);
	assert_int_equal(write_file(path, 0644, pem), 0);
	assert_int_equal(run_ctl(&out, args), 1);
	t = listed(out, "ws-open");
	assert_int_equal(strncmp(t, "-  refused: hosts-unsafe: ", 26), 0);
	free(t);
	t = listed(out, "ws-junk");
	assert_int_equal(strncmp(t, "-  refused: host-key-bad: ", 26), 0);
	free(t);
	/* A name that is not NAME.pem, shown without its control character. */
	t = listed(out, "Notes\\x0a.txt");
	assert_int_equal(strncmp(t, "-  refused: bad-name: ", 22), 0);
	free(t);
	t = listed(out, "ws-h1");
	assert_string_equal(t, thumbs[0]);
	free(t);
	free(out);
	assert_int_equal(run_ctl(&out, json_args), 1);
	assert_non_null(doc = json_loads(out, 0, NULL));
	assert_true(json_is_false(json_object_get(doc, "ok")));
	assert_int_equal(json_integer_value(json_object_get(doc, "enrolled")), 2);
	assert_int_equal(json_integer_value(json_object_get(doc, "refused")), 3);
	json_array_foreach(json_object_get(doc, "hosts"), i, h)
	{
		const char *file = json_string_value(json_object_get(h, "file"));
		if (strcmp(file, "ws-open.pem") == 0) {
			assert_true(json_is_false(json_object_get(h, "ok")));
			assert_string_equal(json_string_value(json_object_get(h, "problem")), "hosts-unsafe");
			assert_null(json_object_get(h, "thumbprint"));
		}
	}
	json_decref(doc);
	free(out);
	/* Fixed, it is listed like the others. */
	snprintf(path, sizeof(path), "%s/ws-open.pem", dir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(run_ctl(&out, args), 1);
	t = listed(out, "ws-open");
	assert_int_equal(strlen(t), 43);
	free(t);
	free(out);
	free(pem);
}

static void test_hosts_refuses_an_unsafe_or_missing_directory_and_bad_usage(void **state)
{
	char dir[256], thumbs[2][64], missing[300], *out = NULL;
	const char *args[] = {"hosts", "--dir", dir, NULL};
	const char *gone[] = {"hosts", "--dir", missing, NULL};
	const char *relative[] = {"hosts", "--dir", "hosts", NULL};
	const char *extra[] = {"hosts", "ws-h1", NULL};
	(void)state;

	enrolled_dir("hosts-dir", dir, sizeof(dir), thumbs);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(run_ctl(&out, args), 1);
	assert_null(strstr(out, thumbs[0]));
	free(out);
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(missing, sizeof(missing), "%s/none", dir);
	assert_int_equal(run_ctl(&out, gone), 1);
	free(out);
	assert_int_equal(run_ctl(&out, relative), 2);
	free(out);
	assert_int_equal(run_ctl(&out, extra), 2);
	free(out);
}

/* The listing is bounded, sorted, and says when it was cut. */
static void test_hosts_list_is_sorted_and_cut_at_its_bound(void **state)
{
	char dir[256], thumbs[2][64], path[512], **files = NULL;
	struct nl_hostauth_hosts *h = NULL;
	struct nl_hostauth_error err;
	size_t n = 0;
	bool cut = true;
	(void)state;

	enrolled_dir("hosts-cut", dir, sizeof(dir), thumbs);
	snprintf(path, sizeof(path), "%s/ws-h0.pem", dir);
	assert_int_equal(write_file(path, 0644, "x"), 0);
	assert_int_equal(nl_hostauth_hosts_new(dir, 1, &h), 0);
	assert_int_equal(nl_hostauth_hosts_list(h, 3, &files, &n, &cut, &err), 0);
	assert_int_equal(n, 3);
	assert_false(cut);
	assert_string_equal(files[0], "ws-h0.pem");
	assert_string_equal(files[2], "ws-h2.pem");
	nl_hostauth_files_free(files, n);
	assert_int_equal(nl_hostauth_hosts_list(h, 2, &files, &n, &cut, &err), 0);
	assert_int_equal(n, 2);
	assert_true(cut);
	nl_hostauth_files_free(files, n);
	nl_hostauth_hosts_free(h);
}

/* ---- cost (diagnostics, not assertions) ---- */

/* The benchmark's replay cache: an answer without a search, so that the figure is the check's own
 * (the bridge's is one Redis round trip, measured with the store). */
static enum nl_hostauth_replay replay_new(void *ctx, const char *name, const char *jti, time_t expires_at)
{
	(void)name;
	(void)jti;
	(void)expires_at;
	(*(unsigned long *)ctx)++;
	return NL_HOSTAUTH_REPLAY_NEW;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long bench_n(long dflt)
{
	const char *s = getenv("NL_HOSTAUTH_BENCH_N");

	return s != NULL && atol(s) > 0 ? atol(s) : dflt;
}

/* ES256 request signatures and their full check (directory, cache, signature, claims, replay) against
 * RS512 through the same JOSE code (sign: nl_jws_sign; verify: a key set of one key). */
static void test_cost_of_signing_and_verifying(void **state)
{
	static const uint8_t e[] = {1, 0, 1};
	long n = bench_n(2000), nrsa = bench_n(2000) / 10 + 1, i;
	char **vals = calloc((size_t)n, sizeof(char *)), *rs = NULL, *pub, *doc = NULL;
	cjose_jwk_t *rsa = cjose_jwk_create_RSA_random(2048, e, sizeof(e), NULL);
	struct nl_jwks *set = NULL;
	struct nl_jws *jws = NULL;
	double t, sign_us, verify_us, es_verify_us, rs_sign_us, rs_verify_us;
	static const char *const rs512[] = {"RS512"}, *const es256[] = {"ES256"};
	unsigned long replays = 0;
	json_t *claims;
	(void)state;

	assert_non_null(vals);
	assert_non_null(rsa);
	t = now_us();
	for (i = 0; i < n; i++)
		vals[i] = sign(fx.a, "ws-a", "POST", PATH, BODY, AUD, T0);
	sign_us = (now_us() - t) / (double)n;
	t = now_us();
	for (i = 0; i < n; i++) {
		enum nl_hostauth_reason why;
		char name[NL_HOSTAUTH_NAME_MAX + 1];
		struct nl_hostauth_error err;
		assert_int_equal(nl_hostauth_verify(fx.h, vals[i], "POST", PATH, BODY, strlen(BODY), AUD, T0,
		                                    replay_new, &replays, name, &err),
		                 0);
		why = err.reason;
		assert_int_equal(why, NL_HOSTAUTH_E_OK);
	}
	verify_us = (now_us() - t) / (double)n;
	assert_int_equal(replays, (unsigned long)n);
	/* The signature alone, as the baseline below is measured. */
	{
		char *pubes = nl_jwk_public_json(fx.a, "ES256"), *esdoc = NULL;
		struct nl_jwks *esset = NULL;
		assert_true(asprintf(&esdoc, "{\"keys\":[%s]}", pubes) > 0);
		assert_int_equal(nl_jwks_parse(esdoc, strlen(esdoc), &esset), 0);
		t = now_us();
		for (i = 0; i < n; i++) {
			assert_int_equal(nl_jws_parse(vals[i] + 8, strlen(vals[i] + 8), es256, 1, &jws), 0);
			assert_int_equal(nl_jws_verify_jwks(jws, esset), 0);
			nl_jws_free(jws);
		}
		es_verify_us = (now_us() - t) / (double)n;
		nl_jwks_free(esset);
		free(esdoc);
		free(pubes);
	}
	for (i = 0; i < n; i++)
		free(vals[i]);
	free(vals);

	claims = claims_of("ws-a", "POST", PATH, BODY, T0, T0 + 30, NULL);
	t = now_us();
	for (i = 0; i < nrsa; i++) {
		nl_free_secret(rs);
		rs = NULL;
		assert_int_equal(nl_jws_sign(rsa, "RS512", NULL, claims, &rs), 0);
	}
	rs_sign_us = (now_us() - t) / (double)nrsa;
	json_decref(claims);
	pub = nl_jwk_public_json(rsa, "RS512");
	assert_true(asprintf(&doc, "{\"keys\":[%s]}", pub) > 0);
	assert_int_equal(nl_jwks_parse(doc, strlen(doc), &set), 0);
	t = now_us();
	for (i = 0; i < n; i++) {
		assert_int_equal(nl_jws_parse(rs, strlen(rs), rs512, 1, &jws), 0);
		assert_int_equal(nl_jws_verify_jwks(jws, set), 0);
		nl_jws_free(jws);
	}
	rs_verify_us = (now_us() - t) / (double)n;
	print_message("# cost per request (%ld ES256, %ld RS512 signatures; %ld checks each):\n", n, nrsa, n);
	print_message("#   ES256 nl_hostauth_sign    %8.1f us\n", sign_us);
	print_message(
	    "#   ES256 nl_hostauth_verify  %8.1f us (files, cache, signature, claims, replay call)\n",
	    verify_us);
	print_message("#   ES256 parse + verify      %8.1f us (signature and parse only)\n", es_verify_us);
	print_message("#   RS512 nl_jws_sign         %8.1f us (baseline, 2048-bit key)\n", rs_sign_us);
	print_message("#   RS512 parse + verify      %8.1f us (baseline, signature and parse only)\n",
	              rs_verify_us);
	nl_free_secret(rs);
	nl_jwks_free(set);
	free(doc);
	free(pub);
	cjose_jwk_release(rsa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_request_is_accepted_with_its_enrolled_name),
	    cmocka_unit_test(test_empty_body_request_is_accepted),
	    cmocka_unit_test(test_replayed_request_is_refused),
	    cmocka_unit_test(test_replay_cache_failure_refuses),
	    cmocka_unit_test(test_expired_request_is_refused),
	    cmocka_unit_test(test_request_within_skew_is_accepted),
	    cmocka_unit_test(test_request_issued_in_the_future_is_refused),
	    cmocka_unit_test(test_lifetime_over_60_seconds_is_refused),
	    cmocka_unit_test(test_extreme_times_are_refused_without_overflow),
	    cmocka_unit_test(test_request_for_another_bridge_is_refused),
	    cmocka_unit_test(test_changed_method_is_refused),
	    cmocka_unit_test(test_changed_path_or_query_is_refused),
	    cmocka_unit_test(test_body_changed_by_one_byte_is_refused),
	    cmocka_unit_test(test_short_jti_is_refused),
	    cmocka_unit_test(test_unknown_workstation_is_refused),
	    cmocka_unit_test(test_workstation_a_cannot_sign_as_b),
	    cmocka_unit_test(test_reenrolled_workstation_refuses_the_old_key),
	    cmocka_unit_test(test_deleted_file_revokes_at_once),
	    cmocka_unit_test(test_enrolled_file_without_an_ec_key_is_refused),
	    cmocka_unit_test(test_alg_none_is_refused),
	    cmocka_unit_test(test_hs256_with_the_public_key_as_secret_is_refused),
	    cmocka_unit_test(test_rs256_and_es512_are_refused),
	    cmocka_unit_test(test_header_carrying_its_own_key_is_refused),
	    cmocka_unit_test(test_request_typed_jwt_is_refused),
	    cmocka_unit_test(test_request_without_typ_is_refused),
	    cmocka_unit_test(test_id_token_signed_by_an_enrolled_key_is_refused),
	    cmocka_unit_test(test_typ_is_compared_as_a_media_type),
	    cmocka_unit_test(test_name_that_is_a_path_is_refused_before_any_file),
	    cmocka_unit_test(test_group_writable_hosts_dir_is_refused),
	    cmocka_unit_test(test_world_writable_host_file_is_refused),
	    cmocka_unit_test(test_symlinked_host_file_is_refused),
	    cmocka_unit_test(test_host_file_owned_by_another_user_is_refused),
	    cmocka_unit_test(test_concurrent_checks_share_a_small_cache_safely),
	    cmocka_unit_test(test_oversize_header_is_refused),
	    cmocka_unit_test(test_malformed_values_are_refused),
	    cmocka_unit_test(test_enroll_creates_a_0600_key_and_prints_the_registration),
	    cmocka_unit_test(test_enroll_again_keeps_the_key_and_prints_the_same),
	    cmocka_unit_test(test_enroll_force_replaces_the_key),
	    cmocka_unit_test(test_enroll_refuses_a_bad_name),
	    cmocka_unit_test(test_enroll_refuses_an_unsafe_key_place),
	    cmocka_unit_test(test_enroll_as_root_makes_a_root_owned_key),
	    cmocka_unit_test(test_enroll_registration_lets_the_agent_in),
	    cmocka_unit_test(test_hosts_lists_each_workstation_with_the_thumbprint_enroll_printed),
	    cmocka_unit_test(test_hosts_reports_unsafe_and_garbage_files_as_refused),
	    cmocka_unit_test(test_hosts_refuses_an_unsafe_or_missing_directory_and_bad_usage),
	    cmocka_unit_test(test_hosts_list_is_sorted_and_cut_at_its_bound),
	    cmocka_unit_test(test_cost_of_signing_and_verifying),
	};

	return cmocka_run_group_tests_name("hostauth", tests, group_setup, group_teardown);
}
