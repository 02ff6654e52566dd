/* Benchmark 1: ID token verifications per CPU-second through our JOSE layer (nl_jws_parse +
 * nl_jws_verify, and nl_idtoken_validate), against raw OpenSSL EVP_DigestVerify of the same
 * signature in this binary (the limit) and against libjwt verifying the same token. */
#include "config.h"

#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "idtoken.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_wipe.h"

#define ISSUER "https://auth.sandpit.signin.nhs.uk"
#define CLIENT "nhslogin-bench"
#define NONCE  "n-0S6_WzA2Mj"

struct subject {
	const char *alg;
	cjose_jwk_t *key;
	struct nl_jwks *set;
	char *token; /* compact JWS */
	char *pem;   /* the public key as PEM (libjwt, EVP) */
	EVP_PKEY *pkey;
	const EVP_MD *md;
	unsigned char *sig; /* as OpenSSL wants it (DER for ECDSA) */
	size_t sig_len;
	size_t input_len; /* header.payload */
};

static volatile int sink;

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One verification by each method; 1 on success. */
static int verify_ours(struct subject *s)
{
	const char *allowed[] = {s->alg};
	struct nl_jws *jws = NULL;
	int ok = nl_jws_parse(s->token, strlen(s->token), allowed, 1, &jws) == 0 &&
	         nl_jws_verify_jwks(jws, s->set) == 0;
	nl_jws_free(jws);
	return ok;
}

/* The two halves of verify_ours, apart: the strict parse, and the verification of a parsed token. */
static struct nl_jws *parsed;

static int parse_only(struct subject *s)
{
	const char *allowed[] = {s->alg};
	struct nl_jws *jws = NULL;
	int ok = nl_jws_parse(s->token, strlen(s->token), allowed, 1, &jws) == 0;
	nl_jws_free(jws);
	return ok;
}

static int verify_only(struct subject *s)
{
	return nl_jws_verify_jwks(parsed, s->set) == 0;
}

static int verify_idtoken(struct subject *s)
{
	const char *allowed[] = {s->alg};
	struct nl_idtoken_policy p = {.issuer = ISSUER,
	                              .client_id = CLIENT,
	                              .allowed_algs = allowed,
	                              .n_allowed_algs = 1,
	                              .nonce = NONCE,
	                              .vtr = "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]",
	                              .min_level = 9,
	                              .skew = 60,
	                              .now = time(NULL)};
	json_t *claims = NULL;
	int ok = nl_idtoken_validate(s->token, strlen(s->token), s->set, &p, &claims, NULL) == 0;
	json_decref(claims);
	return ok;
}

static int verify_evp(struct subject *s)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok =
	    ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, s->md, NULL, s->pkey) == 1 &&
	    EVP_DigestVerify(ctx, s->sig, s->sig_len, (const unsigned char *)s->token, s->input_len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static int verify_libjwt(struct subject *s)
{
	jwt_t *jwt = NULL;
	int ok = jwt_decode(&jwt, s->token, (const unsigned char *)s->pem, (int)strlen(s->pem)) == 0 &&
	         jwt_get_alg(jwt) != JWT_ALG_NONE;
	jwt_free(jwt);
	return ok;
}

/* Verifications per CPU-second: best of `rounds` runs of about `secs` CPU seconds each. */
static double rate(int (*fn)(struct subject *), struct subject *s, double secs, int rounds)
{
	double best = 0;
	for (int r = 0; r < rounds; r++) {
		long n = 0;
		double t0 = cpu_now(), t;
		do {
			for (int i = 0; i < 50; i++)
				sink += fn(s);
			n += 50;
		} while ((t = cpu_now() - t0) < secs);
		if (n / t > best)
			best = n / t;
	}
	return best;
}

static int make_subject(struct subject *s, const char *alg)
{
	static const uint8_t e[] = {0x01, 0x00, 0x01};
	json_t *claims, *doc;
	char *pubjson = NULL, *text = NULL;
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	cjose_err cerr;
	time_t now = time(NULL);
	BIO *bio;
	const char *dot;
	int r = -1;

	s->alg = alg;
	s->key = strcmp(alg, "ES256") == 0 ? cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr)
	                                   : cjose_jwk_create_RSA_random(2048, e, sizeof(e), &cerr);
	if (s->key == NULL || !cjose_jwk_set_kid(s->key, "bench-1", 7, &cerr))
		return -1;
	/* An NHS login ID token's claims (P9, profile scope). */
	claims =
	    json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "iss", ISSUER, "sub",
	              "2b6c1b7e-4f5d-4c1a-9b8e-0d9f3e6a7c21", "aud", CLIENT, "exp", (json_int_t)(now + 3600),
	              "iat", (json_int_t)now, "auth_time", (json_int_t)now, "jti",
	              "a7b4c2d9-1e3f-4a5b-8c6d-7e8f9a0b1c2d", "nonce", NONCE, "vot", "P9.Cp.Cd", "vtm",
	              ISSUER "/trustmark/auth.sandpit.signin.nhs.uk", "identity_proofing_level", "P9",
	              "nhs_number", "9686368973", "family_name", "MILLAR", "birthdate", "1968-02-12");
	if (claims == NULL || nl_jws_sign(s->key, alg, "bench-1", claims, &s->token) != 0)
		goto out;
	/* The key set as the provider's JWKS document, parsed by our layer. */
	if ((pubjson = nl_jwk_public_json(s->key, alg)) == NULL ||
	    (doc = json_pack("{s:[o]}", "keys", json_loads(pubjson, 0, NULL))) == NULL)
		goto out;
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (text == NULL || nl_jwks_parse(text, strlen(text), &s->set) != 0)
		goto out;
	/* The same public key and signature for OpenSSL. */
	if ((s->pem = nl_jwk_public_pem(s->key)) == NULL || (bio = BIO_new_mem_buf(s->pem, -1)) == NULL)
		goto out;
	s->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	s->md = strcmp(alg, "RS512") == 0 ? EVP_sha512() : EVP_sha256();
	if (s->pkey == NULL || (dot = strrchr(s->token, '.')) == NULL)
		goto out;
	s->input_len = (size_t)(dot - s->token);
	if (nl_b64url_decode(dot + 1, strlen(dot + 1), &raw, &raw_len) != 0)
		goto out;
	if (strcmp(alg, "ES256") == 0) {
		/* JOSE's r||s to DER, once, outside the timed loop. */
		ECDSA_SIG *es = ECDSA_SIG_new();
		unsigned char *der = NULL;
		int n;
		if (es == NULL || raw_len != 64 ||
		    !ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)) ||
		    (n = i2d_ECDSA_SIG(es, &der)) <= 0) {
			ECDSA_SIG_free(es);
			goto out;
		}
		ECDSA_SIG_free(es);
		s->sig = der;
		s->sig_len = (size_t)n;
		free(raw);
	} else {
		s->sig = raw;
		s->sig_len = raw_len;
	}
	raw = NULL;
	r = 0;
out:
	json_decref(claims);
	free(pubjson);
	free(text);
	free(raw);
	return r;
}

static void free_subject(struct subject *s)
{
	cjose_jwk_release(s->key);
	nl_jwks_free(s->set);
	nl_free_secret(s->token);
	free(s->pem);
	EVP_PKEY_free(s->pkey);
	OPENSSL_free(s->sig);
	memset(s, 0, sizeof(*s));
}

int main(int argc, char **argv)
{
	static const char *const algs[] = {"RS512", "RS256", "ES256"};
	/* bench_jose [CPU-SECONDS-PER-METHOD [ALG]] */
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	int rc = 0;

	if (secs <= 0)
		secs = 0.5;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		struct subject s = {0};
		char fig[64], note[160];
		if (argc > 2 && strcmp(argv[2], algs[i]) != 0)
			continue; /* one algorithm only (for a profiler) */
		if (make_subject(&s, algs[i]) != 0) {
			fprintf(stderr, "bench_jose: cannot make a %s token\n", algs[i]);
			rc = 1;
			continue;
		}
		/* Every method must accept the token, or its rate means nothing. */
		if (!verify_ours(&s) || !verify_idtoken(&s) || !verify_evp(&s) || !verify_libjwt(&s)) {
			fprintf(stderr,
			        "bench_jose: %s: a verifier refused the token (ours %d idtoken %d evp %d "
			        "libjwt %d)\n",
			        algs[i], verify_ours(&s), verify_idtoken(&s), verify_evp(&s),
			        verify_libjwt(&s));
			free_subject(&s);
			rc = 1;
			continue;
		}
		/* Interleaved rounds so that load from other processes hits every method alike. */
		double evp = 0, ours = 0, idt = 0, jwt = 0;
		for (int round = 0; round < 3; round++) {
			double v;
			if ((v = rate(verify_evp, &s, secs / 3, 1)) > evp)
				evp = v;
			if ((v = rate(verify_ours, &s, secs / 3, 1)) > ours)
				ours = v;
			if ((v = rate(verify_idtoken, &s, secs / 3, 1)) > idt)
				idt = v;
			if ((v = rate(verify_libjwt, &s, secs / 3, 1)) > jwt)
				jwt = v;
		}
		/* Where the time goes: parse and verify apart, in microseconds per token. */
		const char *allowed[] = {s.alg};
		double t_parse = 0, t_verify = 0;
		if (nl_jws_parse(s.token, strlen(s.token), allowed, 1, &parsed) == 0) {
			t_parse = 1e6 / rate(parse_only, &s, secs / 3, 1);
			t_verify = 1e6 / rate(verify_only, &s, secs / 3, 1);
		}
		nl_jws_free(parsed);
		parsed = NULL;
		fprintf(stderr,
		        "bench_jose: %s: EVP %.2f us, ours %.2f us = parse %.2f us + verify %.2f us\n",
		        algs[i], 1e6 / evp, 1e6 / ours, t_parse, t_verify);
		snprintf(note, sizeof(note), "parse %.1f us + verify %.1f us (EVP %.1f us)", t_parse,
		         t_verify, 1e6 / evp);
		snprintf(fig, sizeof(fig), "1 %s verify/s: nl_jws vs EVP", algs[i]);
		bench_row(fig, ours, "/s", evp, ">= 90% of EVP", ours >= 0.9 * evp, note);
		snprintf(fig, sizeof(fig), "1 %s verify/s: nl_jws vs libjwt", algs[i]);
		bench_row(fig, ours, "/s", jwt, "> libjwt", ours > jwt, "");
		snprintf(fig, sizeof(fig), "1 %s verify/s: idtoken vs EVP", algs[i]);
		snprintf(note, sizeof(note), "all ID token rules");
		bench_row(fig, idt, "/s", evp, ">= 90% of EVP", idt >= 0.9 * evp, note);
		free_subject(&s);
	}
	return rc;
}
