/* Wiping secrets, constant-time comparison and random tokens. */
#include "config.h"
#include "nl_wipe.h"
#include "nl_b64.h"
#include "nl_err.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

void nl_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

void nl_free_secret(char *s)
{
	if (s == NULL)
		return;
	nl_wipe(s, strlen(s));
	free(s);
}

void nl_free_secret_buf(void *p, size_t n)
{
	if (p == NULL)
		return;
	nl_wipe(p, n);
	free(p);
}

bool nl_ct_equal(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return true;
	return CRYPTO_memcmp(a, b, n) == 0;
}

bool nl_ct_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return false;
	size_t la = strlen(a), lb = strlen(b);
	/* Compare over the shorter length anyway so that time depends only on the lengths. */
	bool same = nl_ct_equal(a, b, la < lb ? la : lb);
	return same && la == lb;
}

int nl_random_bytes(void *buf, size_t n)
{
	if (n > (size_t)0x7fffffff)
		return NL_ERR_INTERNAL;
	return RAND_bytes(buf, (int)n) == 1 ? 0 : NL_ERR_INTERNAL;
}

int nl_random_token(size_t nbytes, char **out)
{
	unsigned char raw[64];
	int r;

	if (nbytes < 16 || nbytes > sizeof(raw))
		return NL_ERR_INTERNAL;
	if ((r = nl_random_bytes(raw, nbytes)) != 0)
		goto out;
	r = nl_b64url_encode(raw, nbytes, out);
out:
	nl_wipe(raw, sizeof(raw));
	return r;
}
