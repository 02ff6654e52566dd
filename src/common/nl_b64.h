/* base64url (RFC 4648 §5) without padding, strict: no padding, no whitespace,
 * no characters outside the alphabet, no non-zero trailing bits. */
#ifndef NL_B64_H
#define NL_B64_H

#include <stddef.h>
#include <stdint.h>

/* Encode len bytes; *out is a new NUL-terminated string (free()). */
int nl_b64url_encode(const uint8_t *in, size_t len, char **out);
/* Decode inlen characters; *out is new memory of *outlen bytes plus a NUL (free()).
 * NL_ERR_INVALID on any non-canonical input. */
int nl_b64url_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen);

#endif
