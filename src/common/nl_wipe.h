/* The one wiping API for secrets (tokens, codes, assertions, keys, socket buffers),
 * and constant-time comparison. */
#ifndef NL_WIPE_H
#define NL_WIPE_H

#include <stdbool.h>
#include <stddef.h>

/* Overwrite n bytes at p with zeros in a way the compiler cannot drop. p may be NULL. */
void nl_wipe(void *p, size_t n);
/* Wipe a NUL-terminated secret string (strlen bytes) and free it. s may be NULL. */
void nl_free_secret(char *s);
/* Wipe n bytes and free. p may be NULL. */
void nl_free_secret_buf(void *p, size_t n);
/* Constant-time equality of two buffers of the same length n. */
bool nl_ct_equal(const void *a, const void *b, size_t n);
/* Constant-time string equality: time depends only on the lengths. NULL never equals. */
bool nl_ct_streq(const char *a, const char *b);
/* Fill buf with n cryptographically random bytes (OpenSSL RAND_bytes). 0 or NL_ERR_INTERNAL. */
int nl_random_bytes(void *buf, size_t n);
/* Allocate a random base64url token of nbytes of entropy (>=16). Caller frees with nl_free_secret. */
int nl_random_token(size_t nbytes, char **out);

#endif
