/* JWKS (RFC 7517 5): a provider's key set parsed for verifying signatures, every key checked, and
 * the choice of one key for a JWS header. */
#include "config.h"
#include "nl_jose_int.h"
#include "nl_err.h"
#include "nl_json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JWKS --------------------------------------------------------------------------------------- */

struct jwks_key {
	cjose_jwk_t *jwk;
	EVP_MD_CTX *ready[NL_JOSE_N_ALGS]; /* for each alg of its type, initialised when the set is read */
	char *kid;                         /* NULL if absent */
	char *alg;                         /* the key's own "alg", NULL if absent */
	enum key_family fam;
	bool ambiguous; /* another key of the same family has the same kid: never chosen */
};

struct nl_jwks {
	struct jwks_key keys[NL_JWKS_MAX_KEYS];
	size_t n;
	struct nl_jwks *next; /* in the list of live sets */
};

/* Every set handed out and not yet freed. nl_jws_verify is given a key, not its set (nl_idtoken
 * selects, then verifies): this list is how it finds the contexts made when the set was read. A
 * key is found only while its set is alive, so a freed key's address can never bring a stale
 * context back; the copy is made under the lock, so the set may be freed at any time after. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nl_jwks *live;

static void live_add(struct nl_jwks *set)
{
	pthread_mutex_lock(&live_lock);
	set->next = live;
	live = set;
	pthread_mutex_unlock(&live_lock);
}

static void live_remove(struct nl_jwks *set)
{
	struct nl_jwks **p;

	pthread_mutex_lock(&live_lock);
	for (p = &live; *p != NULL; p = &(*p)->next)
		if (*p == set) {
			*p = set->next;
			break;
		}
	pthread_mutex_unlock(&live_lock);
}

EVP_MD_CTX *nl_jose_jwks_verify_ctx(const cjose_jwk_t *jwk, const struct alg_info *a)
{
	EVP_MD_CTX *ctx = NULL;
	const struct nl_jwks *set;
	size_t i;
	bool found = false;

	pthread_mutex_lock(&live_lock);
	for (set = live; set != NULL && !found; set = set->next)
		for (i = 0; i < set->n && !found; i++)
			if (set->keys[i].jwk == jwk) {
				found = true;
				if (set->keys[i].ready[a->idx] != NULL)
					ctx = nl_jose_verify_ctx_copy(set->keys[i].ready[a->idx]);
			}
	pthread_mutex_unlock(&live_lock);
	return ctx;
}

/* The initialised contexts of a key for every alg of its type (RFC 7517 4.4: its own alg limits
 * what nl_jwks_select chooses it for, not what nl_jws_verify may be asked). */
static int jwks_key_ready(struct jwks_key *k, EVP_PKEY *pkey)
{
	const struct alg_info *a;
	size_t i;

	for (i = 0; i < NL_JOSE_N_ALGS; i++) {
		if ((a = nl_jose_alg_at(i))->fam != k->fam)
			continue;
		if ((k->ready[a->idx] = nl_jose_verify_ctx_new(pkey, a)) == NULL)
			return NL_ERR_NOMEM;
	}
	return 0;
}

static void jwks_key_clear(struct jwks_key *k)
{
	size_t i;

	cjose_jwk_release(k->jwk);
	free(k->kid);
	free(k->alg);
	for (i = 0; i < NL_JOSE_N_ALGS; i++)
		EVP_MD_CTX_free(k->ready[i]);
	memset(k, 0, sizeof(*k));
}

void nl_jwks_free(struct nl_jwks *set)
{
	size_t i;

	if (set == NULL)
		return;
	live_remove(set);
	for (i = 0; i < set->n; i++)
		jwks_key_clear(&set->keys[i]);
	free(set);
}

size_t nl_jwks_count(const struct nl_jwks *set)
{
	return set == NULL ? 0 : set->n;
}

size_t nl_jwks_count_for_alg(const struct nl_jwks *set, const char *alg)
{
	const struct alg_info *a = alg != NULL ? nl_jose_alg_lookup(alg) : NULL;
	size_t i, n = 0;

	if (set == NULL || a == NULL)
		return 0;
	for (i = 0; i < set->n; i++)
		if (set->keys[i].fam == a->fam && !set->keys[i].ambiguous &&
		    (set->keys[i].alg == NULL || strcmp(set->keys[i].alg, a->name) == 0))
			n++;
	return n;
}

/* Why a JWKS entry is not used. notable: it breaks a rule of the RFCs (worth a warning), as
 * opposed to a well-formed key that is simply not for us (use enc, an unknown kty or alg). */
struct skip {
	char why[160];
	bool notable;
};

static bool skip_because(struct skip *sk, bool notable, const char *why)
{
	snprintf(sk->why, sizeof(sk->why), "%s", why);
	sk->notable = notable;
	return false;
}

/* RFC 7517 4.3: key_ops, when present, is an array of distinct strings that must include
 * "verify"; with "use" also present the two must agree (sig allows sign and verify only). */
static bool key_ops_for_verify(const json_t *ops, bool has_use, struct skip *sk)
{
	const json_t *op, *other;
	bool verify = false;
	size_t i, j;

	if (!json_is_array(ops))
		return skip_because(sk, true, "key_ops is not an array (RFC 7517 4.3)");
	json_array_foreach(ops, i, op)
	{
		if (!json_is_string(op))
			return skip_because(sk, true, "key_ops holds a non-string (RFC 7517 4.3)");
		for (j = 0; j < i; j++) {
			other = json_array_get(ops, j);
			if (json_string_length(other) == json_string_length(op) &&
			    strcmp(json_string_value(other), json_string_value(op)) == 0)
				return skip_because(sk, true, "key_ops repeats a value (RFC 7517 4.3)");
		}
		if (strcmp(json_string_value(op), "verify") == 0)
			verify = true;
		else if (has_use && strcmp(json_string_value(op), "sign") != 0)
			return skip_because(sk, true, "key_ops disagrees with use sig (RFC 7517 4.3)");
	}
	if (!verify)
		return skip_because(sk, false, "key_ops does not allow verify");
	return true;
}

/* Is this JWKS entry meant for verifying signatures? "use" other than sig, "key_ops" without
 * "verify", or an "alg" we do not do, all say no (RFC 7517 4.2-4.4). */
static bool jwks_entry_for_sig(const json_t *obj, const struct alg_info **alg, struct skip *sk)
{
	const json_t *use = json_object_get(obj, "use"), *ops = json_object_get(obj, "key_ops");
	const json_t *jalg = json_object_get(obj, "alg");

	*alg = NULL;
	if (use != NULL && !json_is_string(use))
		return skip_because(sk, true, "use is not a string (RFC 7517 4.2)");
	if (use != NULL && strcmp(json_string_value(use), "sig") != 0)
		return skip_because(sk, false, "use is not sig");
	if (ops != NULL && !key_ops_for_verify(ops, use != NULL, sk))
		return false;
	if (jalg != NULL && !json_is_string(jalg))
		return skip_because(sk, true, "alg is not a string (RFC 7517 4.4)");
	if (jalg != NULL && (*alg = nl_jose_alg_lookup(json_string_value(jalg))) == NULL)
		return skip_because(sk, false, "alg is not one we verify");
	return true;
}

/* Add one entry to the set, or leave it out with the reason in sk (returns 0 either way);
 * only NL_ERR_NOMEM fails the set. */
static int jwks_add(struct nl_jwks *set, json_t *obj, struct skip *sk)
{
	struct jwks_key *k = &set->keys[set->n];
	const struct alg_info *alg;
	struct pubkey pk;
	EVP_PKEY *pkey = NULL;
	const char *kid;
	cjose_jwk_t *jwk = NULL;
	cjose_err cerr;
	int r;

	sk->why[0] = '\0';
	sk->notable = false;
	if (!jwks_entry_for_sig(obj, &alg, sk))
		return 0;
	if ((r = nl_jose_jwk_from_object(obj, &jwk, sk->why, sizeof(sk->why))) != 0) {
		/* RFC 7517 5: ignore keys of a kty we do not understand, missing required members or
		 * with values out of range; other keys may serve. */
		if (r == NL_ERR_NOMEM)
			return r;
		sk->notable = strcmp(sk->why, "kty is not RSA or EC") != 0 &&
		              strcmp(sk->why, "an EC key on a curve other than P-256") != 0;
		return 0;
	}
	k->fam = cjose_jwk_get_kty(jwk, &cerr) == CJOSE_JWK_KTY_RSA ? FAM_RSA : FAM_EC_P256;
	if (alg != NULL && alg->fam != k->fam) {
		cjose_jwk_release(jwk);
		skip_because(sk, true, "alg does not fit the key type (RFC 7517 4.4)");
		return 0;
	}
	/* The numbers were checked by nl_jose_jwk_from_object: only a lack of memory fails here. */
	pk = (struct pubkey){.fam = k->fam,
	                     .n = nl_json_str(obj, "n"),
	                     .e = nl_json_str(obj, "e"),
	                     .x = nl_json_str(obj, "x"),
	                     .y = nl_json_str(obj, "y")};
	kid = cjose_jwk_get_kid(jwk, &cerr);
	k->jwk = jwk;
	r = NL_ERR_NOMEM;
	if ((kid != NULL && (k->kid = strdup(kid)) == NULL) ||
	    (alg != NULL && (k->alg = strdup(alg->name)) == NULL) ||
	    (pkey = nl_jose_pkey_from_pubkey(&pk)) == NULL || (r = jwks_key_ready(k, pkey)) != 0) {
		EVP_PKEY_free(pkey);
		jwks_key_clear(k);
		return r;
	}
	EVP_PKEY_free(pkey); /* the contexts hold it */
	set->n++;
	return 0;
}

/* RFC 7517 4.5: keys of one type in a set should have distinct kids. Two with the same kid leave
 * no way to tell which one the provider meant, so neither is ever chosen by that kid. */
static void jwks_mark_ambiguous(struct nl_jwks *set)
{
	size_t i, j;

	for (i = 0; i < set->n; i++)
		for (j = 0; j < i; j++)
			if (set->keys[i].kid != NULL && set->keys[j].kid != NULL &&
			    set->keys[i].fam == set->keys[j].fam &&
			    strcmp(set->keys[i].kid, set->keys[j].kid) == 0)
				set->keys[i].ambiguous = set->keys[j].ambiguous = true;
}

/* The private members of RFC 7518 6.2.2 and 6.3.2. A published key set is public: a key with
 * its private half in it is a provider's key made public, and nothing in such a set is trusted. */
static bool has_private_members(const json_t *obj)
{
	static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
	size_t i;

	for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		if (json_object_get(obj, priv[i]) != NULL)
			return true;
	return false;
}

int nl_jwks_parse_report(const char *json, size_t len, struct nl_jwks **out, char *why, size_t whylen)
{
	struct nl_jwks *set = NULL;
	json_t *doc = NULL, *keys = NULL, *entry;
	struct skip sk, first = {.why = ""};
	size_t i, n_notable = 0;
	int r;

	nl_errf(why, whylen, 0, "%s", "");
	if (out == NULL)
		return NL_ERR_INVALID;
	if ((r = nl_jose_json_parse(json, len, NL_JWKS_MAX, &doc)) != 0)
		return nl_errf(why, whylen, r, "not a JSON object");
	r = NL_ERR_INVALID;
	if (!json_is_array(keys = json_object_get(doc, "keys"))) {
		nl_errf(why, whylen, r, "no \"keys\" array (RFC 7517 5.1)");
		keys = NULL;
		goto out;
	}
	if (json_array_size(keys) > NL_JWKS_MAX_KEYS) {
		r = nl_errf(why, whylen, NL_ERR_TOO_BIG, "more than %d keys", NL_JWKS_MAX_KEYS);
		goto out;
	}
	json_array_foreach(keys, i, entry)
	{
		if (!json_is_object(entry)) {
			nl_errf(why, whylen, r, "key %zu is not a JSON object", i + 1);
			goto out;
		}
		if (has_private_members(entry)) {
			r = nl_errf(why, whylen, NL_ERR_KEY, "key %zu carries private key members", i + 1);
			goto out;
		}
	}
	if ((set = calloc(1, sizeof(*set))) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	json_array_foreach(keys, i, entry)
	{
		if ((r = jwks_add(set, entry, &sk)) != 0)
			goto out;
		if (sk.notable && n_notable++ == 0)
			snprintf(first.why, sizeof(first.why), "key %zu: %s", i + 1, sk.why);
	}
	jwks_mark_ambiguous(set);
	if (set->n == 0) {
		r = nl_errf(why, whylen, NL_ERR_KEY, "no usable signing key%s%s", n_notable > 0 ? "; " : "",
		            first.why);
		goto out;
	}
	if (n_notable > 0)
		nl_errf(why, whylen, 0, "%zu key(s) ignored; %s", n_notable, first.why);
	live_add(set);
	*out = set;
	set = NULL;
	r = 0;
out:
	nl_jwks_free(set);
	/* jansson frees strings without wiping them; a broken set may hold private members. */
	json_array_foreach(keys, i, entry)
	{
		nl_jose_jwk_wipe_private(entry);
	}
	json_decref(doc);
	return r;
}

int nl_jwks_parse(const char *json, size_t len, struct nl_jwks **out)
{
	return nl_jwks_parse_report(json, len, out, NULL, 0);
}

int nl_jose_jwks_choose(const struct nl_jwks *set, const char *kid, const char *alg, const cjose_jwk_t **jwk,
                        const EVP_MD_CTX **ready)
{
	const struct alg_info *a = nl_jose_alg_lookup(alg);
	const struct jwks_key *found = NULL;
	size_t i, matches = 0;
	bool ambiguous = false;

	if (a == NULL)
		return NL_ERR_ALG;
	if (set == NULL || jwk == NULL)
		return NL_ERR_INVALID;
	for (i = 0; i < set->n; i++) {
		const struct jwks_key *k = &set->keys[i];
		if (kid != NULL && (k->kid == NULL || strcmp(k->kid, kid) != 0))
			continue;
		/* A kid shared by two keys of this type names neither, whatever their alg says. */
		if (kid != NULL && k->ambiguous && k->fam == a->fam)
			ambiguous = true;
		if (k->fam != a->fam || (k->alg != NULL && strcmp(k->alg, a->name) != 0))
			continue;
		found = k;
		matches++;
	}
	/* Exactly one candidate: never guess between keys. */
	if (matches != 1 || ambiguous)
		return NL_ERR_KEY;
	*jwk = found->jwk;
	if (ready != NULL)
		*ready = found->ready[a->idx];
	return 0;
}

int nl_jwks_select(const struct nl_jwks *set, const char *kid, const char *alg, const cjose_jwk_t **out)
{
	return nl_jose_jwks_choose(set, kid, alg, out, NULL);
}
