/* nhslogin-mock: the in-memory store of codes, tokens, pending authorize pages, device codes and
 * the client-assertion jti replay set. Every table is bounded; expired entries are purged. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"
#include "nl_err.h"
#include "nl_wipe.h"

int mock_list_add(struct mock_list *l, void *item)
{
	if (l->n >= MOCK_MAX_ENTRIES)
		return NL_ERR_LIMIT;
	if (l->n == l->cap) {
		size_t cap = l->cap == 0 ? 16 : l->cap * 2;
		void **items = realloc(l->items, cap * sizeof(*items));
		if (items == NULL)
			return NL_ERR_NOMEM;
		l->items = items;
		l->cap = cap;
	}
	l->items[l->n++] = item;
	return 0;
}

/* Remove item i by moving the last one into its place. */
static void list_remove(struct mock_list *l, size_t i)
{
	l->items[i] = l->items[--l->n];
}

void mock_code_free(struct mock_code *c)
{
	if (c == NULL)
		return;
	nl_free_secret(c->code);
	free(c->client_id);
	free(c->redirect_uri);
	nl_free_secret(c->nonce);
	free(c->vot);
	free(c->scope);
	free(c->challenge);
	free(c);
}

void mock_token_free(struct mock_token *t)
{
	if (t == NULL)
		return;
	nl_free_secret(t->token);
	free(t->client_id);
	free(t->scope);
	free(t->vot);
	nl_free_secret(t->nonce);
	free(t);
}

void mock_vtr_free(char **vtr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(vtr[i]);
		vtr[i] = NULL;
	}
}

void mock_authreq_free(struct mock_authreq *a)
{
	if (a == NULL)
		return;
	free(a->id);
	free(a->client_id);
	free(a->redirect_uri);
	free(a->state);
	nl_free_secret(a->nonce);
	free(a->scope);
	free(a->challenge);
	mock_vtr_free(a->vtr, a->n_vtr);
	free(a);
}

void mock_device_free(struct mock_device *d)
{
	if (d == NULL)
		return;
	nl_free_secret(d->device_code);
	free(d->client_id);
	free(d->scope);
	nl_free_secret(d->nonce);
	free(d->vot);
	mock_vtr_free(d->vtr, d->n_vtr);
	free(d);
}

static void jti_free(struct mock_jti *j)
{
	if (j == NULL)
		return;
	free(j->client_id);
	free(j->jti);
	free(j);
}

/* Used codes are kept until they expire so that a replay is recognised (and revokes). */
void mock_store_purge(struct mock *m, time_t now)
{
	size_t i;

	for (i = 0; i < m->codes.n;) {
		struct mock_code *c = m->codes.items[i];
		if (c->expires <= now) {
			mock_code_free(c);
			list_remove(&m->codes, i);
		} else {
			i++;
		}
	}
	for (i = 0; i < m->tokens.n;) {
		struct mock_token *t = m->tokens.items[i];
		if (t->expires <= now) {
			mock_token_free(t);
			list_remove(&m->tokens, i);
		} else {
			i++;
		}
	}
	for (i = 0; i < m->authreqs.n;) {
		struct mock_authreq *a = m->authreqs.items[i];
		if (a->expires <= now) {
			mock_authreq_free(a);
			list_remove(&m->authreqs, i);
		} else {
			i++;
		}
	}
	for (i = 0; i < m->devices.n;) {
		struct mock_device *d = m->devices.items[i];
		/* keep expired device codes a while so a late poll gets expired_token */
		if (d->expires + MOCK_DEVICE_TTL <= now) {
			mock_device_free(d);
			list_remove(&m->devices, i);
		} else {
			i++;
		}
	}
	for (i = 0; i < m->jtis.n;) {
		struct mock_jti *j = m->jtis.items[i];
		if (j->exp + MOCK_SKEW < now) {
			jti_free(j);
			list_remove(&m->jtis, i);
		} else {
			i++;
		}
	}
}

static void list_free(struct mock_list *l, void (*fn)(void *))
{
	for (size_t i = 0; i < l->n; i++)
		fn(l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

static void code_free_v(void *p)
{
	mock_code_free(p);
}
static void token_free_v(void *p)
{
	mock_token_free(p);
}
static void authreq_free_v(void *p)
{
	mock_authreq_free(p);
}
static void device_free_v(void *p)
{
	mock_device_free(p);
}
static void jti_free_v(void *p)
{
	jti_free(p);
}

void mock_store_free(struct mock *m)
{
	list_free(&m->codes, code_free_v);
	list_free(&m->tokens, token_free_v);
	list_free(&m->authreqs, authreq_free_v);
	list_free(&m->devices, device_free_v);
	list_free(&m->jtis, jti_free_v);
}

struct mock_code *mock_find_code(const struct mock *m, const char *code)
{
	struct mock_code *found = NULL;
	/* look at every entry so the time does not depend on where a match is */
	for (size_t i = 0; i < m->codes.n; i++) {
		struct mock_code *c = m->codes.items[i];
		if (nl_ct_streq(c->code, code))
			found = c;
	}
	return found;
}

struct mock_token *mock_find_token(const struct mock *m, const char *token, enum mock_token_kind kind)
{
	struct mock_token *found = NULL;
	for (size_t i = 0; i < m->tokens.n; i++) {
		struct mock_token *t = m->tokens.items[i];
		if (nl_ct_streq(t->token, token) && t->kind == kind)
			found = t;
	}
	return found;
}

struct mock_authreq *mock_take_authreq(struct mock *m, const char *id)
{
	for (size_t i = 0; i < m->authreqs.n; i++) {
		struct mock_authreq *a = m->authreqs.items[i];
		if (nl_ct_streq(a->id, id)) {
			list_remove(&m->authreqs, i);
			return a;
		}
	}
	return NULL;
}

struct mock_device *mock_find_device(const struct mock *m, const char *device_code)
{
	struct mock_device *found = NULL;
	for (size_t i = 0; i < m->devices.n; i++) {
		struct mock_device *d = m->devices.items[i];
		if (nl_ct_streq(d->device_code, device_code))
			found = d;
	}
	return found;
}

struct mock_device *mock_find_user_code(const struct mock *m, const char *user_code)
{
	for (size_t i = 0; i < m->devices.n; i++) {
		struct mock_device *d = m->devices.items[i];
		if (nl_ct_streq(d->user_code, user_code))
			return d;
	}
	return NULL;
}

void mock_revoke_grant(struct mock *m, uint64_t grant)
{
	for (size_t i = 0; i < m->tokens.n; i++) {
		struct mock_token *t = m->tokens.items[i];
		if (t->grant == grant)
			t->revoked = true;
	}
}

int mock_jti_remember(struct mock *m, const char *client_id, const char *jti, time_t exp)
{
	struct mock_jti *j = NULL;
	int r = NL_ERR_INTERNAL;

	for (size_t i = 0; i < m->jtis.n; i++) {
		const struct mock_jti *e = m->jtis.items[i];
		if (strcmp(e->client_id, client_id) == 0 && strcmp(e->jti, jti) == 0)
			return NL_ERR_DENIED;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL || (j->client_id = strdup(client_id)) == NULL ||
	    (j->jti = strdup(jti)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	j->exp = exp;
	if ((r = mock_list_add(&m->jtis, j)) != 0)
		goto out;
	j = NULL;
	r = 0;
out:
	jti_free(j);
	return r;
}

int mock_uuid(char out[37])
{
	unsigned char b[16];
	int r;

	if ((r = nl_random_bytes(b, sizeof(b))) != 0)
		return r;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}
