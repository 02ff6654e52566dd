/* Strict base64url without padding (RFC 4648 §5). */
#include "config.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_wipe.h"

#include <stdlib.h>

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int nl_b64url_encode(const uint8_t *in, size_t len, char **out)
{
	size_t outlen, i, o = 0;
	char *s;

	if (len > ((size_t)-1) / 2)
		return NL_ERR_TOO_BIG;
	outlen = (len / 3) * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
	if ((s = malloc(outlen + 1)) == NULL)
		return NL_ERR_NOMEM;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		s[o++] = b64url_alphabet[(v >> 18) & 63];
		s[o++] = b64url_alphabet[(v >> 12) & 63];
		s[o++] = b64url_alphabet[(v >> 6) & 63];
		s[o++] = b64url_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		s[o++] = b64url_alphabet[(v >> 18) & 63];
		s[o++] = b64url_alphabet[(v >> 12) & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		s[o++] = b64url_alphabet[(v >> 18) & 63];
		s[o++] = b64url_alphabet[(v >> 12) & 63];
		s[o++] = b64url_alphabet[(v >> 6) & 63];
	}
	s[o] = '\0';
	*out = s;
	return 0;
}

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int nl_b64url_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	size_t full = inlen / 4, rest = inlen % 4, i, o = 0, n;
	uint8_t *buf;
	int r = NL_ERR_INVALID;

	if (rest == 1)
		return NL_ERR_INVALID;
	n = full * 3 + (rest == 0 ? 0 : rest - 1);
	if ((buf = malloc(n + 1)) == NULL)
		return NL_ERR_NOMEM;
	for (i = 0; i < full * 4; i += 4) {
		int a = b64url_value(in[i]), b = b64url_value(in[i + 1]);
		int c = b64url_value(in[i + 2]), d = b64url_value(in[i + 3]);
		if ((a | b | c | d) < 0)
			goto out;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		buf[o++] = (uint8_t)(v >> 16);
		buf[o++] = (uint8_t)(v >> 8);
		buf[o++] = (uint8_t)v;
	}
	if (rest >= 2) {
		int a = b64url_value(in[i]), b = b64url_value(in[i + 1]);
		int c = rest == 3 ? b64url_value(in[i + 2]) : 0;
		if ((a | b | c) < 0)
			goto out;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
		/* Canonical form only: the bits past the last whole byte must be zero. */
		if ((rest == 2 && (v & 0xffff) != 0) || (rest == 3 && (v & 0xff) != 0))
			goto out;
		buf[o++] = (uint8_t)(v >> 16);
		if (rest == 3)
			buf[o++] = (uint8_t)(v >> 8);
	}
	buf[o] = 0;
	*out = buf;
	*outlen = o;
	buf = NULL;
	r = 0;
out:
	nl_free_secret_buf(buf, n + 1);
	return r;
}
