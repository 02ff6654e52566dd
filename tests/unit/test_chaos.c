/* Allocation failure (chaos): the JSON parser, the JWS parser and verifier, the JWKS parser and the
 * configuration loader, each run with its Nth allocation failing for N = 1, 2, ... until a run
 * makes fewer than N allocations. Every run either fails with an error or succeeds with output
 * equal to a run without failures; a tampered token never verifies. Crashes and leaks show under
 * AddressSanitizer (--enable-sanitizers) or valgrind.
 *
 * Allocations counted: ours (malloc, calloc, realloc, strdup, strndup, through the linker's
 * --wrap, see unit.am), jansson's (json_set_alloc_funcs), cjose's (cjose_set_alloc_funcs) and
 * OpenSSL's (CRYPTO_set_mem_functions, first thing in main). Not counted: allocations inside libc
 * (fopen, asprintf, getline). */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/crypto.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nl_config.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_wipe.h"

#define CHAOS_MAX 100000 /* no parser here makes anything like this many allocations */

/* ---- the failing allocator ------------------------------------------------------------------ */

static unsigned long alloc_count; /* allocations since chaos_arm */
static unsigned long fail_at;     /* the one to fail (1-based); 0: none */
static bool openssl_counted;

static bool chaos_fail(void)
{
	return ++alloc_count == fail_at;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n)
{
	return chaos_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return chaos_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return chaos_fail() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return chaos_fail() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return chaos_fail() ? NULL : __real_strndup(s, n);
}

static void *lib_malloc(size_t n)
{
	return chaos_fail() ? NULL : __real_malloc(n);
}

static void *lib_realloc(void *p, size_t n)
{
	return chaos_fail() ? NULL : __real_realloc(p, n);
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
	(void)file, (void)line;
	return chaos_fail() ? NULL : __real_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file, (void)line;
	return chaos_fail() ? NULL : __real_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
	(void)file, (void)line;
	free(p);
}

/* cjose 0.6 leaks an RSA key's numbers when an allocation fails inside cjose_jwk_create_RSA_spec
 * (valgrind shows the same 1,216 bytes): those leaks, and only those, are told to LeakSanitizer as
 * not ours. Full stacks are needed to see cjose's frames under OpenSSL's allocator. */
const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void);

__attribute__((used)) const char *__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

__attribute__((used)) const char *__lsan_default_suppressions(void)
{
	return "leak:cjose_jwk_create_RSA_spec\n";
}

/* One piece of work under test: op makes the output (0 or an error), same() checks it against
 * the output of a run without failures, drop() frees it. */
struct chaos_op {
	const char *name;
	int (*op)(void *ctx);
	void (*same)(void *ctx);
	void (*drop)(void *ctx);
	bool must_fail; /* a run never succeeds (a tampered token) */
};

/* Fail the Nth allocation for N = 1, 2, ... until a run makes fewer than N. */
static void chaos_run(const struct chaos_op *c, void *ctx)
{
	unsigned long n, made, failures = 0;
	int r;

	/* A run without failures first: the reference, and OpenSSL's one-time set-up done. */
	r = c->op(ctx);
	if (c->must_fail)
		assert_int_not_equal(r, 0);
	else
		assert_int_equal(r, 0);
	c->drop(ctx);
	for (n = 1; n <= CHAOS_MAX; n++) {
		alloc_count = 0;
		fail_at = n;
		r = c->op(ctx);
		fail_at = 0;
		made = alloc_count;
		if (r == 0) {
			assert_false(c->must_fail);
			c->same(ctx);
		} else
			failures++;
		c->drop(ctx);
		if (made < n) {
			if (!c->must_fail)
				assert_int_equal(r, 0);
			print_message("# %s: %lu allocations, each failed once (%lu runs failed cleanly)\n",
			              c->name, n - 1, failures);
			return;
		}
	}
	fail_msg("%s: still allocating after %d failures", c->name, CHAOS_MAX);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static const char JSON_DOC[] =
    "{\"iss\":\"https://auth.sandpit.signin.nhs.uk\",\"sub\":\"2b6c1b7e\",\"aud\":[\"a\",\"b\"],"
    "\"exp\":1700000000,\"nested\":{\"list\":[1,2.5,true,false,null,\"\\u00e9\\n\"]},\"vot\":\"P9.Cp.Cd\"}";

struct json_ctx {
	json_t *ref, *out;
};

static int json_op(void *p)
{
	struct json_ctx *c = p;

	return nl_json_parse(JSON_DOC, strlen(JSON_DOC), NL_JSON_MAX_SIZE, NL_JSON_MAX_DEPTH, true, &c->out,
	                     NULL, 0);
}

/* jansson 2.14 drops a byte of a string when its lexer's buffer cannot grow (lex_save ignores
 * strbuffer_append_byte's failure): the one difference tolerated, counted and reported. */
static unsigned long jansson_dropped_a_byte;

static bool one_byte_dropped(const char *shorter, const char *longer)
{
	size_t i = 0;

	while (shorter[i] != '\0' && shorter[i] == longer[i])
		i++;
	return strlen(shorter) + 1 == strlen(longer) && strcmp(shorter + i, longer + i + 1) == 0;
}

static void json_same(void *p)
{
	struct json_ctx *c = p;
	char *a, *b;

	if (json_equal(c->out, c->ref))
		return;
	a = json_dumps(c->out, JSON_COMPACT);
	b = json_dumps(c->ref, JSON_COMPACT);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(one_byte_dropped(a, b));
	jansson_dropped_a_byte++;
	free(a);
	free(b);
}

static void json_drop(void *p)
{
	struct json_ctx *c = p;

	json_decref(c->out);
	c->out = NULL;
}

static void test_chaos_json_parser_fails_cleanly(void **state)
{
	const struct chaos_op op = {"nl_json_parse", json_op, json_same, json_drop, false};
	struct json_ctx c = {0};
	(void)state;

	assert_int_equal(nl_json_parse(JSON_DOC, strlen(JSON_DOC), NL_JSON_MAX_SIZE, NL_JSON_MAX_DEPTH, true,
	                               &c.ref, NULL, 0),
	                 0);
	chaos_run(&op, &c);
	json_decref(c.ref);
	if (jansson_dropped_a_byte > 0)
		print_message(
		    "# jansson dropped a byte of a string in %lu of those runs (a jansson defect)\n",
		    jansson_dropped_a_byte);
}

/* ---- JWS and JWKS ----------------------------------------------------------------------------- */

/* Keys, tokens and a JWKS made once, without failures. */
struct jose_fx {
	cjose_jwk_t *rsa, *ec;
	char *jwks_text;
	struct nl_jwks *set;
	char *token[2]; /* RS256 by rsa, ES256 by ec */
	char *tampered;
	json_t *claims;
};

static struct jose_fx J;

static const char *const ALGS[] = {"RS256", "ES256"};

/* {"keys":[rsa, ec, and an encryption key that is left out]} */
static char *make_jwks(void)
{
	char *r = nl_jwk_public_json(J.rsa, "RS256"), *e = nl_jwk_public_json(J.ec, "ES256"), *doc = NULL;

	assert_non_null(r);
	assert_non_null(e);
	assert_true(
	    asprintf(&doc, "{\"keys\":[%s,%s,{\"kty\":\"oct\",\"use\":\"enc\",\"k\":\"AAAA\"}]}", r, e) > 0);
	free(r);
	free(e);
	return doc;
}

static int setup_jose(void **state)
{
	static const uint8_t e65537[] = {1, 0, 1};
	cjose_err cerr;
	size_t i;
	char *dot;
	(void)state;

	J.rsa = cjose_jwk_create_RSA_random(2048, e65537, sizeof(e65537), &cerr);
	J.ec = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);
	assert_non_null(J.rsa);
	assert_non_null(J.ec);
	assert_true(cjose_jwk_set_kid(J.rsa, "r1", 2, &cerr));
	assert_true(cjose_jwk_set_kid(J.ec, "e1", 2, &cerr));
	J.claims = json_pack("{s:s, s:s, s:[s,s], s:I, s:{s:[i,b,n]}}", "iss", "https://issuer.example",
	                     "sub", "2b6c1b7e-4f5d", "aud", "client", "other", "exp", (json_int_t)1700000000,
	                     "x", "y", 1, 1);
	assert_non_null(J.claims);
	for (i = 0; i < 2; i++)
		assert_int_equal(
		    nl_jws_sign(i == 0 ? J.rsa : J.ec, ALGS[i], i == 0 ? "r1" : "e1", J.claims, &J.token[i]),
		    0);
	/* The RS256 token with one character of its signature changed. */
	J.tampered = strdup(J.token[0]);
	assert_non_null(J.tampered);
	dot = strrchr(J.tampered, '.') + 1;
	dot[10] = dot[10] == 'A' ? 'B' : 'A';
	J.jwks_text = make_jwks();
	assert_int_equal(nl_jwks_parse(J.jwks_text, strlen(J.jwks_text), &J.set), 0);
	assert_int_equal(nl_jwks_count(J.set), 2);
	return 0;
}

static int teardown_jose(void **state)
{
	(void)state;
	nl_jwks_free(J.set);
	free(J.jwks_text);
	nl_free_secret(J.token[0]);
	nl_free_secret(J.token[1]);
	free(J.tampered);
	json_decref(J.claims);
	cjose_jwk_release(J.rsa);
	cjose_jwk_release(J.ec);
	memset(&J, 0, sizeof(J));
	return 0;
}

struct jws_ctx {
	const char *token;
	const char *alg, *kid;
	bool select_then_verify; /* nl_jwks_select + nl_jws_verify (nl_idtoken's way) */
	struct nl_jws *jws;
};

static int jws_op(void *p)
{
	struct jws_ctx *c = p;
	const cjose_jwk_t *key = NULL;
	int r;

	c->jws = NULL;
	if ((r = nl_jws_parse(c->token, strlen(c->token), ALGS, 2, &c->jws)) != 0) {
		assert_null(c->jws); /* results are handed out only on success */
		return r;
	}
	if (!c->select_then_verify)
		return nl_jws_verify_jwks(c->jws, J.set);
	if ((r = nl_jwks_select(J.set, c->jws->kid, c->jws->alg, &key)) != 0)
		return r;
	return nl_jws_verify(c->jws, key);
}

static void jws_same(void *p)
{
	struct jws_ctx *c = p;

	assert_true(c->jws->verified);
	assert_string_equal(c->jws->alg, c->alg);
	assert_string_equal(c->jws->kid, c->kid);
	assert_string_equal(c->jws->typ, "JWT");
	assert_true(json_equal(c->jws->claims, J.claims));
}

static void jws_drop(void *p)
{
	struct jws_ctx *c = p;

	nl_jws_free(c->jws);
	c->jws = NULL;
}

static void test_chaos_jws_parse_and_verify_fail_cleanly(void **state)
{
	const struct chaos_op op = {"nl_jws_parse + nl_jws_verify_jwks", jws_op, jws_same, jws_drop, false};
	const struct chaos_op op2 = {"nl_jws_parse + nl_jwks_select + nl_jws_verify", jws_op, jws_same,
	                             jws_drop, false};
	struct jws_ctx c;
	size_t i;
	(void)state;

	for (i = 0; i < 2; i++) {
		c = (struct jws_ctx){.token = J.token[i], .alg = ALGS[i], .kid = i == 0 ? "r1" : "e1"};
		chaos_run(&op, &c);
		c.select_then_verify = true;
		chaos_run(&op2, &c);
	}
}

static void test_chaos_never_verifies_a_tampered_token(void **state)
{
	const struct chaos_op op = {"a tampered token", jws_op, jws_same, jws_drop, true};
	struct jws_ctx c = {.token = J.tampered, .alg = "RS256", .kid = "r1"};
	(void)state;

	chaos_run(&op, &c);
	c.select_then_verify = true;
	chaos_run(&op, &c);
}

struct jwks_ctx {
	struct nl_jwks *set;
	char why[160];
};

static int jwks_op(void *p)
{
	struct jwks_ctx *c = p;
	int r;

	c->set = NULL;
	r = nl_jwks_parse_report(J.jwks_text, strlen(J.jwks_text), &c->set, c->why, sizeof(c->why));
	if (r != 0)
		assert_null(c->set);
	return r;
}

/* The set is whole: both keys, each chosen by its kid and verifying its token. */
static void jwks_same(void *p)
{
	struct jwks_ctx *c = p;
	struct nl_jws *jws = NULL;
	size_t i;

	assert_int_equal(nl_jwks_count(c->set), 2);
	for (i = 0; i < 2; i++) {
		assert_int_equal(nl_jws_parse(J.token[i], strlen(J.token[i]), ALGS, 2, &jws), 0);
		assert_int_equal(nl_jws_verify_jwks(jws, c->set), 0);
		nl_jws_free(jws);
		jws = NULL;
	}
}

static void jwks_drop(void *p)
{
	struct jwks_ctx *c = p;

	nl_jwks_free(c->set);
	c->set = NULL;
}

static void test_chaos_jwks_parser_fails_cleanly(void **state)
{
	const struct chaos_op op = {"nl_jwks_parse_report", jwks_op, jwks_same, jwks_drop, false};
	struct jwks_ctx c = {0};
	(void)state;

	chaos_run(&op, &c);
}

/* ---- configuration ---------------------------------------------------------------------------- */

struct config_ctx {
	char dir[64];
	char main[128];
	struct nl_config ref, cfg;
	char err[512];
};

static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[8192];
	FILE *in = fopen(from, "rb");
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
	size_t n;

	assert_non_null(in);
	assert_true(fd >= 0);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
	fclose(in);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int config_op(void *p)
{
	struct config_ctx *c = p;

	nl_config_init(&c->cfg);
	c->err[0] = '\0';
	return nl_config_load(c->main, &c->cfg, 0, c->err, sizeof(c->err));
}

static void str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void config_same(void *p)
{
	struct config_ctx *c = p;
	const struct nl_config *a = &c->cfg, *b = &c->ref;
	size_t i;

	str_same(a->socket_path, b->socket_path);
	str_same(a->environment, b->environment);
	str_same(a->socket_group, b->socket_group);
	str_same(a->listen, b->listen);
	str_same(a->public_url, b->public_url);
	str_same(a->email_domain, b->email_domain);
	str_same(a->env.path, b->env.path);
	str_same(a->env.name, b->env.name);
	str_same(a->env.client_key, b->env.client_key);
	str_same(a->env.issuer, b->env.issuer);
	str_same(a->env.client_id, b->env.client_id);
	str_same(a->env.scope, b->env.scope);
	str_same(a->env.vtr, b->env.vtr);
	str_same(a->env.redirect_uri, b->env.redirect_uri);
	assert_int_equal(a->env.n_allowed_algs, b->env.n_allowed_algs);
	for (i = 0; i < b->env.n_allowed_algs; i++)
		str_same(a->env.allowed_algs[i], b->env.allowed_algs[i]);
	assert_int_equal(a->flow_ttl, b->flow_ttl);
	assert_int_equal(a->max_flows, b->max_flows);
	assert_int_equal(a->min_level, b->min_level);
	assert_int_equal(a->claim, b->claim);
	assert_int_equal(a->rule, b->rule);
}

static void config_drop(void *p)
{
	struct config_ctx *c = p;

	nl_config_free(&c->cfg);
}

static void test_chaos_config_load_fails_cleanly(void **state)
{
	const struct chaos_op op = {"nl_config_load", config_op, config_same, config_drop, false};
	const char *top = getenv("NL_TOP_SRCDIR");
	char from[PATH_MAX], to[PATH_MAX];
	struct config_ctx *c = calloc(1, sizeof(*c));
	(void)state;

	assert_non_null(c);
	snprintf(c->dir, sizeof(c->dir), "/tmp/nl-chaos-XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(to, sizeof(to), "%s/environments", c->dir);
	assert_int_equal(mkdir(to, 0755), 0);
	snprintf(to, sizeof(to), "%s/keys", c->dir);
	assert_int_equal(mkdir(to, 0700), 0);
	snprintf(to, sizeof(to), "%s/keys/client.pem", c->dir);
	copy_file("/dev/null", to, 0600);
	snprintf(from, sizeof(from), "%s/tests/unit/data/config/good/nhslogin.conf", top != NULL ? top : ".");
	snprintf(c->main, sizeof(c->main), "%s/nhslogin.conf", c->dir);
	copy_file(from, c->main, 0644);
	snprintf(from, sizeof(from), "%s/tests/unit/data/config/good/environments/test.conf",
	         top != NULL ? top : ".");
	snprintf(to, sizeof(to), "%s/environments/test.conf", c->dir);
	copy_file(from, to, 0644);

	nl_config_init(&c->ref);
	assert_int_equal(nl_config_load(c->main, &c->ref, 0, c->err, sizeof(c->err)), 0);
	chaos_run(&op, c);
	nl_config_free(&c->ref);

	unlink(to);
	snprintf(to, sizeof(to), "%s/keys/client.pem", c->dir);
	unlink(to);
	snprintf(to, sizeof(to), "%s/keys", c->dir);
	rmdir(to);
	snprintf(to, sizeof(to), "%s/environments", c->dir);
	rmdir(to);
	unlink(c->main);
	rmdir(c->dir);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chaos_json_parser_fails_cleanly),
	    cmocka_unit_test_setup_teardown(test_chaos_jws_parse_and_verify_fail_cleanly, setup_jose,
	                                    teardown_jose),
	    cmocka_unit_test_setup_teardown(test_chaos_never_verifies_a_tampered_token, setup_jose,
	                                    teardown_jose),
	    cmocka_unit_test_setup_teardown(test_chaos_jwks_parser_fails_cleanly, setup_jose, teardown_jose),
	    cmocka_unit_test(test_chaos_config_load_fails_cleanly),
	};

	/* Before OpenSSL allocates anything: afterwards it refuses a new allocator. */
	openssl_counted = CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) == 1;
	cjose_set_alloc_funcs(lib_malloc, lib_realloc, free);
	json_set_alloc_funcs(lib_malloc, free);
	if (!openssl_counted)
		printf("# OpenSSL had allocated before main: its allocations are not counted\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
