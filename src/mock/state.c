/* nhslogin-mock: test users and registered clients, from the state dir (users.json, clients.json),
 * the command line (--client) or built-in defaults. Strict: any problem names the file and stops. */
#include "config.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mock.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_json.h"

#define PEM_MAX (16 * 1024)

static const struct {
	const char *username, *sub, *nhs_number, *email, *family_name, *given_name, *birthdate, *phone;
	int level;
} default_users[] = {
    {"p9", "2b6c1b7e-4f5d-4c1a-9b8e-0d9f3e6a7c21", "9686368973", "p9@example.nhs.uk", "MILLAR", "Mona",
     "1968-02-12", "+447700900001", 9},
    {"p5", "8e1f4a2d-3c6b-4d7e-a1f0-5b2c9d8e7f43", "9686368906", "p5@example.nhs.uk", "SMITH", "Sam",
     "1980-07-30", "+447700900002", 5},
    {"p0", "c7d2e9f1-6a3b-4e8c-8d1f-2a4b6c8e0f65", NULL, "p0@example.nhs.uk", NULL, NULL, NULL, NULL, 0},
};

const struct mock_user *mock_find_user(const struct mock *m, const char *username)
{
	for (size_t i = 0; username != NULL && i < m->n_users; i++)
		if (strcmp(m->users[i].username, username) == 0)
			return &m->users[i];
	return NULL;
}

const struct mock_client *mock_find_client(const struct mock *m, const char *client_id)
{
	for (size_t i = 0; client_id != NULL && i < m->n_clients; i++)
		if (strcmp(m->clients[i].client_id, client_id) == 0)
			return &m->clients[i];
	return NULL;
}

bool mock_client_has_redirect(const struct mock_client *c, const char *redirect_uri)
{
	for (size_t i = 0; redirect_uri != NULL && i < c->n_redirect_uris; i++)
		if (strcmp(c->redirect_uris[i], redirect_uri) == 0)
			return true;
	return false;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* A stable UUID-shaped sub for a user that has none: SHA-256 of the username. */
static char *derived_sub(const char *username)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *out = malloc(37);

	if (out == NULL || EVP_Digest(username, strlen(username), md, &mdlen, EVP_sha256(), NULL) != 1) {
		free(out);
		return NULL;
	}
	md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
	md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0],
	         md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11], md[12],
	         md[13], md[14], md[15]);
	return out;
}

static void user_clear(struct mock_user *u)
{
	free(u->username);
	free(u->sub);
	free(u->nhs_number);
	free(u->email);
	free(u->family_name);
	free(u->given_name);
	free(u->birthdate);
	free(u->phone_number);
	free(u->gp_ods_code);
	memset(u, 0, sizeof(*u));
}

static void client_clear(struct mock_client *c)
{
	free(c->client_id);
	for (size_t i = 0; i < c->n_redirect_uris; i++)
		free(c->redirect_uris[i]);
	if (c->key != NULL)
		cjose_jwk_release(c->key);
	free(c->scopes);
	memset(c, 0, sizeof(*c));
}

void mock_free_state(struct mock *m)
{
	for (size_t i = 0; i < m->n_users; i++)
		user_clear(&m->users[i]);
	free(m->users);
	for (size_t i = 0; i < m->n_clients; i++)
		client_clear(&m->clients[i]);
	free(m->clients);
	m->users = NULL;
	m->clients = NULL;
	m->n_users = m->n_clients = 0;
}

static int load_default_users(struct mock *m)
{
	size_t n = sizeof(default_users) / sizeof(default_users[0]);

	if ((m->users = calloc(n, sizeof(*m->users))) == NULL)
		return NL_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct mock_user *u = &m->users[i];
		m->n_users++;
		u->username = strdup(default_users[i].username);
		u->sub = strdup(default_users[i].sub);
		u->nhs_number = dup_or_null(default_users[i].nhs_number);
		u->email = dup_or_null(default_users[i].email);
		u->family_name = dup_or_null(default_users[i].family_name);
		u->given_name = dup_or_null(default_users[i].given_name);
		u->birthdate = dup_or_null(default_users[i].birthdate);
		u->phone_number = dup_or_null(default_users[i].phone);
		if (default_users[i].level > 0)
			u->gp_ods_code = strdup("A12345");
		u->level = default_users[i].level;
		if (u->username == NULL || u->sub == NULL)
			return NL_ERR_NOMEM;
	}
	return 0;
}

/* Read path; *out NULL (and 0) if the file does not exist. */
static int read_json_file(const char *path, json_t **out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	char jerr[160];
	int r;

	*out = NULL;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NL_ERR_IO;
	}
	if ((r = nl_read_file_checked(path, false, MOCK_MAX_STATE_FILE, &buf, &len, err, errlen)) != 0)
		return r;
	r = nl_json_parse(buf, len, MOCK_MAX_STATE_FILE, 8, false, out, jerr, sizeof(jerr));
	free(buf);
	if (r != 0) {
		snprintf(err, errlen, "%s: not valid JSON: %s", path, jerr);
		return NL_ERR_CONFIG;
	}
	if (!json_is_array(*out)) {
		snprintf(err, errlen, "%s: the top level must be a JSON array", path);
		json_decref(*out);
		*out = NULL;
		return NL_ERR_CONFIG;
	}
	return 0;
}

/* A string member; NL_ERR_CONFIG if present and not a non-empty string. */
static int opt_str(const json_t *obj, const char *key, char **out, const char *path, size_t idx, char *err,
                   size_t errlen)
{
	const json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 255 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(err, errlen, "%s: entry %zu: \"%s\" must be a non-empty string (at most 255 bytes)",
		         path, idx, key);
		return NL_ERR_CONFIG;
	}
	if ((*out = strdup(json_string_value(v))) == NULL)
		return NL_ERR_NOMEM;
	return 0;
}

static int check_keys(const json_t *obj, const char *const *allowed, const char *path, size_t idx, char *err,
                      size_t errlen)
{
	const char *key;
	const json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		size_t i;
		(void)v;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], key) == 0)
				break;
		if (allowed[i] == NULL) {
			snprintf(err, errlen, "%s: entry %zu: unknown key \"%s\"", path, idx, key);
			return NL_ERR_CONFIG;
		}
	}
	return 0;
}

static int parse_user(const json_t *obj, struct mock_user *u, const char *path, size_t idx, char *err,
                      size_t errlen)
{
	static const char *const keys[] = {
	    "username",  "sub",          "nhs_number",  "email",          "family_name", "given_name",
	    "birthdate", "phone_number", "gp_ods_code", "identity_level", NULL};
	char *level = NULL;
	int r;

	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: entry %zu: must be an object", path, idx);
		return NL_ERR_CONFIG;
	}
	if ((r = check_keys(obj, keys, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "username", &u->username, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "sub", &u->sub, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "nhs_number", &u->nhs_number, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "email", &u->email, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "family_name", &u->family_name, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "given_name", &u->given_name, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "birthdate", &u->birthdate, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "phone_number", &u->phone_number, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "gp_ods_code", &u->gp_ods_code, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "identity_level", &level, path, idx, err, errlen)) != 0)
		goto out;
	r = NL_ERR_CONFIG;
	if (u->username == NULL) {
		snprintf(err, errlen, "%s: entry %zu: \"username\" is required", path, idx);
		goto out;
	}
	if (level == NULL ||
	    (strcmp(level, "P0") != 0 && strcmp(level, "P5") != 0 && strcmp(level, "P9") != 0)) {
		snprintf(err, errlen, "%s: entry %zu: \"identity_level\" must be \"P0\", \"P5\" or \"P9\"",
		         path, idx);
		goto out;
	}
	u->level = level[1] - '0';
	if (u->nhs_number != NULL &&
	    (strlen(u->nhs_number) != 10 || strspn(u->nhs_number, "0123456789") != 10)) {
		snprintf(err, errlen, "%s: entry %zu: \"nhs_number\" must be 10 digits", path, idx);
		goto out;
	}
	if (u->sub == NULL && (u->sub = derived_sub(u->username)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	r = 0;
out:
	free(level);
	return r;
}

static int load_users(struct mock *m, const char *path, char *err, size_t errlen)
{
	json_t *arr = NULL, *v;
	size_t i;
	int r;

	if ((r = read_json_file(path, &arr, err, errlen)) != 0)
		return r;
	if (arr == NULL)
		return load_default_users(m);
	r = NL_ERR_CONFIG;
	if (json_array_size(arr) == 0 || json_array_size(arr) > MOCK_MAX_USERS) {
		snprintf(err, errlen, "%s: must list 1 to %d users", path, MOCK_MAX_USERS);
		goto out;
	}
	if ((m->users = calloc(json_array_size(arr), sizeof(*m->users))) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	json_array_foreach(arr, i, v)
	{
		m->n_users++;
		if ((r = parse_user(v, &m->users[i], path, i + 1, err, errlen)) != 0)
			goto out;
		if (mock_find_user(m, m->users[i].username) != &m->users[i]) {
			snprintf(err, errlen, "%s: entry %zu: duplicate username \"%s\"", path, i + 1,
			         m->users[i].username);
			r = NL_ERR_CONFIG;
			goto out;
		}
	}
	r = 0;
out:
	json_decref(arr);
	return r;
}

/* A public RSA key from PEM text. */
static int key_from_pem(const char *pem, size_t len, cjose_jwk_t **out, const char *what, char *err,
                        size_t errlen)
{
	int r = nl_jwk_from_pem(pem, len, out);

	if (r != 0) {
		snprintf(err, errlen, "%s: not a usable PEM key (%s)", what, nl_strerror(r));
		return NL_ERR_CONFIG;
	}
	if (cjose_jwk_get_kty(*out, NULL) != CJOSE_JWK_KTY_RSA) {
		cjose_jwk_release(*out);
		*out = NULL;
		snprintf(err, errlen, "%s: the client key must be RSA (RS512)", what);
		return NL_ERR_CONFIG;
	}
	return 0;
}

static int key_from_file(const char *path, cjose_jwk_t **out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	if ((r = nl_read_file_checked(path, false, PEM_MAX, &buf, &len, err, errlen)) != 0)
		return r;
	r = key_from_pem(buf, len, out, path, err, errlen);
	free(buf);
	return r;
}

static int key_from_jwks(const json_t *jwks, cjose_jwk_t **out, const char *what, char *err, size_t errlen)
{
	struct nl_jwks *set = NULL;
	const cjose_jwk_t *k = NULL;
	char *text = nl_json_dump(jwks);
	cjose_err cerr;
	int r = NL_ERR_CONFIG;

	if (text == NULL)
		return NL_ERR_NOMEM;
	if (nl_jwks_parse(text, strlen(text), &set) != 0 ||
	    nl_jwks_select(set, NULL, MOCK_JWT_ALG, &k) != 0) {
		snprintf(err, errlen, "%s: \"jwks\" must hold exactly one RSA signing key", what);
		goto out;
	}
	if ((*out = cjose_jwk_retain((cjose_jwk_t *)k, &cerr)) == NULL) {
		r = NL_ERR_INTERNAL;
		goto out;
	}
	r = 0;
out:
	nl_jwks_free(set);
	free(text);
	return r;
}

static int parse_client(const struct mock *m, const json_t *obj, struct mock_client *c, const char *path,
                        size_t idx, char *err, size_t errlen)
{
	static const char *const keys[] = {"client_id", "redirect_uris",  "public_key_pem", "public_key_file",
	                                   "jwks",      "refresh_tokens", "scopes",         NULL};
	const json_t *uris, *v, *refresh;
	char *file = NULL, what[4096 + 32];
	size_t i, n_keys = 0;
	int r;

	if (!json_is_object(obj)) {
		snprintf(err, errlen, "%s: entry %zu: must be an object", path, idx);
		return NL_ERR_CONFIG;
	}
	if ((r = check_keys(obj, keys, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "client_id", &c->client_id, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "scopes", &c->scopes, path, idx, err, errlen)) != 0 ||
	    (r = opt_str(obj, "public_key_file", &file, path, idx, err, errlen)) != 0)
		goto out;
	r = NL_ERR_CONFIG;
	if (c->client_id == NULL) {
		snprintf(err, errlen, "%s: entry %zu: \"client_id\" is required", path, idx);
		goto out;
	}
	uris = json_object_get(obj, "redirect_uris");
	if (!json_is_array(uris) || json_array_size(uris) == 0 ||
	    json_array_size(uris) > MOCK_MAX_REDIRECT_URIS) {
		snprintf(err, errlen, "%s: entry %zu: \"redirect_uris\" must list 1 to %d URIs", path, idx,
		         MOCK_MAX_REDIRECT_URIS);
		goto out;
	}
	json_array_foreach(uris, i, v)
	{
		if (!json_is_string(v) || strncmp(json_string_value(v), "http", 4) != 0) {
			snprintf(err, errlen, "%s: entry %zu: redirect URI %zu must be an http(s) URL", path,
			         idx, i + 1);
			goto out;
		}
		if ((c->redirect_uris[c->n_redirect_uris++] = strdup(json_string_value(v))) == NULL) {
			r = NL_ERR_NOMEM;
			goto out;
		}
	}
	refresh = json_object_get(obj, "refresh_tokens");
	if (refresh != NULL && !json_is_boolean(refresh)) {
		snprintf(err, errlen, "%s: entry %zu: \"refresh_tokens\" must be true or false", path, idx);
		goto out;
	}
	c->refresh_tokens = json_is_true(refresh);
	v = json_object_get(obj, "public_key_pem");
	n_keys = (v != NULL) + (file != NULL) + (json_object_get(obj, "jwks") != NULL);
	if (n_keys != 1) {
		snprintf(err, errlen,
		         "%s: entry %zu: give exactly one of public_key_pem, public_key_file, jwks", path,
		         idx);
		goto out;
	}
	snprintf(what, sizeof(what), "%s: entry %zu", path, idx);
	if (v != NULL) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "%s: \"public_key_pem\" must be a string", what);
			goto out;
		}
		r = key_from_pem(json_string_value(v), json_string_length(v), &c->key, what, err, errlen);
	} else if (file != NULL) {
		char full[4096];
		if (file[0] == '/')
			snprintf(full, sizeof(full), "%s", file);
		else
			snprintf(full, sizeof(full), "%s/%s", m->set.state_dir, file);
		r = key_from_file(full, &c->key, err, errlen);
	} else {
		r = key_from_jwks(json_object_get(obj, "jwks"), &c->key, what, err, errlen);
	}
out:
	free(file);
	return r;
}

static int add_client_slot(struct mock *m, struct mock_client **out)
{
	struct mock_client *cl;

	if (m->n_clients >= MOCK_MAX_CLIENTS)
		return NL_ERR_LIMIT;
	if ((cl = realloc(m->clients, (m->n_clients + 1) * sizeof(*cl))) == NULL)
		return NL_ERR_NOMEM;
	m->clients = cl;
	memset(&cl[m->n_clients], 0, sizeof(*cl));
	*out = &cl[m->n_clients++];
	return 0;
}

static int check_unique_client(const struct mock *m, const struct mock_client *c, const char *what, char *err,
                               size_t errlen)
{
	if (mock_find_client(m, c->client_id) != c) {
		snprintf(err, errlen, "%s: duplicate client_id \"%s\"", what, c->client_id);
		return NL_ERR_CONFIG;
	}
	return 0;
}

static int load_clients(struct mock *m, const char *path, char *err, size_t errlen)
{
	json_t *arr = NULL, *v;
	struct mock_client *c;
	size_t i;
	int r;

	if ((r = read_json_file(path, &arr, err, errlen)) != 0 || arr == NULL)
		return r;
	json_array_foreach(arr, i, v)
	{
		if ((r = add_client_slot(m, &c)) != 0) {
			snprintf(err, errlen, "%s: too many clients", path);
			goto out;
		}
		if ((r = parse_client(m, v, c, path, i + 1, err, errlen)) != 0 ||
		    (r = check_unique_client(m, c, path, err, errlen)) != 0)
			goto out;
	}
	r = 0;
out:
	json_decref(arr);
	return r;
}

/* --client CLIENT_ID:PUBKEY_PEM_PATH:REDIRECT_URI (the URI keeps its own colons). */
static int add_cli_client(struct mock *m, const char *spec, char *err, size_t errlen)
{
	const char *c1 = strchr(spec, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
	struct mock_client *c;
	char path[4096];
	int r;

	if (c1 == NULL || c2 == NULL || c1 == spec || c2 == c1 + 1 || strncmp(c2 + 1, "http", 4) != 0 ||
	    (size_t)(c2 - c1) >= sizeof(path)) {
		snprintf(err, errlen, "--client %s: expected CLIENT_ID:PUBKEY_PEM_PATH:REDIRECT_URI", spec);
		return NL_ERR_CONFIG;
	}
	snprintf(path, sizeof(path), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
	if ((r = add_client_slot(m, &c)) != 0)
		return r;
	if ((c->client_id = strndup(spec, (size_t)(c1 - spec))) == NULL ||
	    (c->redirect_uris[0] = strdup(c2 + 1)) == NULL)
		return NL_ERR_NOMEM;
	c->n_redirect_uris = 1;
	c->refresh_tokens = true;
	if ((r = key_from_file(path, &c->key, err, errlen)) != 0)
		return r;
	return check_unique_client(m, c, "--client", err, errlen);
}

int mock_load_state(struct mock *m, char *err, size_t errlen)
{
	char path[4096];
	int r;

	if (m->set.state_dir != NULL) {
		snprintf(path, sizeof(path), "%s/users.json", m->set.state_dir);
		if ((r = load_users(m, path, err, errlen)) != 0)
			return r;
		snprintf(path, sizeof(path), "%s/clients.json", m->set.state_dir);
		if ((r = load_clients(m, path, err, errlen)) != 0)
			return r;
	} else if ((r = load_default_users(m)) != 0) {
		return r;
	}
	for (size_t i = 0; i < m->set.n_cli_clients; i++)
		if ((r = add_cli_client(m, m->set.cli_clients[i], err, errlen)) != 0)
			return r;
	if (m->set.auto_approve != NULL && (m->auto_user = mock_find_user(m, m->set.auto_approve)) == NULL) {
		snprintf(err, errlen, "--auto-approve %s: no such test user", m->set.auto_approve);
		return NL_ERR_CONFIG;
	}
	return 0;
}
