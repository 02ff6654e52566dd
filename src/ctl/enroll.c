/* nhsloginctl enroll: the workstation's ES256 key pair for the trust-wide bridge (made once, 0600;
 * replaced only with --force), and what the bridge's operator registers: the file NAME.pem for its
 * hosts directory, the public key, and the key's RFC 7638 thumbprint to compare over the phone.
 * Running it again prints the same registration. Nothing of the private key is printed. */
#include "config.h"
#include "ctl.h"
#include "hostauth.h"
#include "nl_err.h"
#include "nl_jose.h"

#include <cjose/cjose.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The registration as one JSON object: {"name","file","pem","thumbprint","key","created"}. */
static json_t *registration(const cjose_jwk_t *jwk, const char *name, const char *path, bool created)
{
	char *pem = nl_jwk_public_pem(jwk), *thumb = nl_jwk_thumbprint(jwk), file[NL_HOSTAUTH_NAME_MAX + 8];
	json_t *out = NULL;

	snprintf(file, sizeof(file), "%s.pem", name);
	if (pem != NULL && thumb != NULL)
		out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "name", name, "file", file, "pem", pem,
		                "thumbprint", thumb, "key", path, "created", created);
	free(pem);
	free(thumb);
	return out;
}

/* The text is the same on every run for the same key: the bridge's operator may ask again. */
static void print_registration(const json_t *reg)
{
	const char *file = json_string_value(json_object_get(reg, "file"));
	const char *pem = json_string_value(json_object_get(reg, "pem"));

	printf("workstation: %s\n\n", json_string_value(json_object_get(reg, "name")));
	printf("On the bridge, save the public key below as %s in its hosts directory\n"
	       "([bridge] hosts_dir), owned by root and not writable by group or others:\n\n",
	       file);
	printf("%s%s", pem, pem[0] != '\0' && pem[strlen(pem) - 1] == '\n' ? "" : "\n");
	printf("\nthumbprint (RFC 7638, SHA-256): %s\n",
	       json_string_value(json_object_get(reg, "thumbprint")));
	printf("Read the thumbprint to the bridge's operator, who compares it with the one of the file\n"
	       "they saved before enabling this workstation.\n");
}

/* The name from --name or the host name; on failure says why and returns the exit code. */
static int choose_name(const struct ctl_opts *o, char name[NL_HOSTAUTH_NAME_MAX + 1])
{
	if (o->name != NULL) {
		if (!nl_hostauth_name_ok(o->name)) {
			fprintf(
			    stderr,
			    "nhsloginctl enroll: --name: not a workstation name: lower-case letters, digits, "
			    "'.' and '-', starting with a letter or digit, at most %d characters\n",
			    NL_HOSTAUTH_NAME_MAX);
			return CTL_EXIT_USAGE;
		}
		snprintf(name, NL_HOSTAUTH_NAME_MAX + 1, "%s", o->name);
		return CTL_EXIT_OK;
	}
	if (nl_hostauth_default_name(name) != 0) {
		fprintf(stderr,
		        "nhsloginctl enroll: the host name is not a workstation name (lower-case letters, "
		        "digits, '.' and '-', at most %d characters): give one with --name\n",
		        NL_HOSTAUTH_NAME_MAX);
		return CTL_EXIT_PROBLEM;
	}
	return CTL_EXIT_OK;
}

int ctl_enroll(const struct ctl_opts *o)
{
	const char *path = o->key != NULL ? o->key : CTL_HOST_KEY_DEFAULT;
	char name[NL_HOSTAUTH_NAME_MAX + 1], err[512];
	cjose_jwk_t *jwk = NULL;
	json_t *reg = NULL;
	bool created = false;
	int rc;

	if ((rc = choose_name(o, name)) != CTL_EXIT_OK)
		return rc;
	if (path[0] != '/') {
		fprintf(stderr, "nhsloginctl enroll: --key must be an absolute path\n");
		return CTL_EXIT_USAGE;
	}
	rc = CTL_EXIT_PROBLEM;
	if (nl_hostauth_key_create(path, o->force, &created, err, sizeof(err)) != 0) {
		fprintf(stderr, "nhsloginctl enroll: %s\n", err);
		goto out;
	}
	if (nl_hostauth_key_load(path, &jwk, err, sizeof(err)) != 0) {
		fprintf(stderr, "nhsloginctl enroll: %s\n", err);
		goto out;
	}
	if ((reg = registration(jwk, name, path, created)) == NULL) {
		fprintf(stderr, "nhsloginctl enroll: %s: cannot make the public key (out of memory?)\n",
		        path);
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (created)
		fprintf(stderr, "nhsloginctl enroll: %s key %s\n", o->force ? "new" : "created", path);
	else
		fprintf(stderr, "nhsloginctl enroll: kept the existing key %s (--force replaces it)\n", path);
	if (o->json)
		ctl_print_json(stdout, reg);
	else
		print_registration(reg);
	rc = CTL_EXIT_OK;
out:
	json_decref(reg);
	cjose_jwk_release(jwk);
	return rc;
}
