/* nhsloginctl key: the public half of the environment's client key, in every form NHS login's
 * registration may ask for: PEM, a JWK and a JWKS. The kid is the one nhslogind puts in every
 * client assertion (nl_oidc_client_kid: the key's RFC 7638 thumbprint unless client_key_id says
 * otherwise), so that a provider that matches keys by kid finds the registered key. The private key is read
 * (as a secret: owner and mode checked) only to derive the public one; nothing of it is printed. */
#include "config.h"
#include "ctl.h"
#include "nl_config.h"
#include "nl_jose.h"
#include "nl_wipe.h"
#include "oidc.h"

#include <cjose/cjose.h>
#include <stdlib.h>
#include <string.h>

/* The algorithm of the client assertion (RS512: NHS login's private_key_jwt). */
#define CTL_KEY_ALG "RS512"

/* The three forms as one JSON object: {"kid","pem","jwk","jwks"}. */
static json_t *key_forms(const cjose_jwk_t *jwk, const char *kid)
{
	char *pem = nl_jwk_public_pem(jwk);
	char *jwk_text = nl_jwk_public_json(jwk, CTL_KEY_ALG);
	json_t *out = NULL, *one = NULL;

	if (pem != NULL && jwk_text != NULL && (one = json_loads(jwk_text, 0, NULL)) != NULL)
		out = json_pack("{s:s?, s:s, s:O, s:{s:[O]}}", "kid", kid, "pem", pem, "jwk", one, "jwks",
		                "keys", one);
	json_decref(one);
	free(pem);
	free(jwk_text);
	return out;
}

static void print_forms(const json_t *forms, const char *path)
{
	char *jwk = json_dumps(json_object_get(forms, "jwk"), JSON_INDENT(2) | JSON_SORT_KEYS);
	char *jwks = json_dumps(json_object_get(forms, "jwks"), JSON_INDENT(2) | JSON_SORT_KEYS);
	const char *kid = json_string_value(json_object_get(forms, "kid"));

	printf("client key: %s\n", path);
	if (kid != NULL)
		printf(
		    "kid (sent in every client assertion; by default the key's RFC 7638 thumbprint): %s\n\n",
		    kid);
	else
		printf("kid: none (client_key_id = none: the client assertions carry no kid)\n\n");
	printf("public key, PEM:\n%s\n", json_string_value(json_object_get(forms, "pem")));
	printf("public key, JWK (use sig, alg %s):\n%s\n\n", CTL_KEY_ALG, jwk != NULL ? jwk : "");
	printf("public key, JWKS (register this where a key set is asked for):\n%s\n",
	       jwks != NULL ? jwks : "");
	free(jwk);
	free(jwks);
}

int ctl_key(const struct ctl_opts *o)
{
	const char *path = o->config != NULL ? o->config : NL_CONFIG_DEFAULT_PATH;
	struct nl_config cfg;
	cjose_jwk_t *jwk = NULL;
	cjose_err cerr;
	char err[512];
	char *kid = NULL;
	json_t *forms = NULL;
	int rc = CTL_EXIT_PROBLEM;

	memset(&cfg, 0, sizeof(cfg));
	if (nl_config_load(path, &cfg, NL_CONFIG_NO_OWNER_CHECK, err, sizeof(err)) != 0) {
		fprintf(stderr, "nhsloginctl key: %s\n", err);
		goto out;
	}
	if (nl_jwk_load_private_pem(cfg.env.client_key, &jwk, err, sizeof(err)) != 0) {
		fprintf(stderr, "nhsloginctl key: client_key: %s\n", err);
		goto out;
	}
	if (nl_oidc_client_kid(&cfg.env, jwk, &kid) != 0 ||
	    (kid != NULL && !cjose_jwk_set_kid(jwk, kid, strlen(kid), &cerr)) ||
	    (forms = key_forms(jwk, kid)) == NULL) {
		fprintf(stderr, "nhsloginctl key: %s: cannot make the public key (out of memory?)\n",
		        cfg.env.client_key);
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (o->json)
		ctl_print_json(stdout, forms);
	else
		print_forms(forms, cfg.env.client_key);
	rc = CTL_EXIT_OK;
out:
	json_decref(forms);
	free(kid);
	cjose_jwk_release(jwk);
	nl_config_free(&cfg);
	return rc;
}
