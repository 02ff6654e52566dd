/* Small helpers shared by the fault and local-security tests: talk to nhslogind's socket, read
 * files and logs, look at a process's memory use. */
#ifndef NL_TEST_FAULTUTIL_H
#define NL_TEST_FAULTUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct world;

/* The phone up to NHS login's answer, without going back to the bridge: POST user_code to the
 * bridge's /d, continue on its confirmation page (phone_confirm), follow to the mock's /authorize
 * and pick as_user there. *authorize_url gets the
 * /authorize URL the bridge sent the phone to (state and nonce in its query), *callback_url the
 * redirect back to the bridge (code and state): new strings (free), NULL on failure. 0 when every
 * hop answered as expected. Following *callback_url (mockproc_fetch) finishes the flow. */
int fu_phone_authorize(const struct world *w, const char *user_code, const char *as_user,
                       char **authorize_url, char **callback_url);

/* Connect to the socket at path (3 s at most) with the daemon client (nl_proto.h), as a plain fd
 * that tests may also write raw bytes to; -1 on failure. */
int fu_connect(const char *path);
/* Send one request line on fd and read one reply (nl_proto_call, timeout_ms each); NULL on failure. */
json_t *fu_call(int fd, const char *line, int timeout_ms);
/* fu_connect + fu_call + close. */
json_t *fu_call_once(const char *path, const char *line, int timeout_ms);
/* The string member key of o, or "" (never NULL). */
const char *fu_str(const json_t *o, const char *key);
/* Whole file in a new NUL-terminated buffer (free); NULL if it cannot be read. */
char *fu_read_file(const char *path, size_t *len);
/* Lines of the file at path that contain every one of the (NULL-terminated) needles. */
int fu_count_lines(const char *path, const char *const *needles);
/* Does the file contain needle anywhere (binary-safe)? */
bool fu_file_contains(const char *path, const char *needle);
/* VmRSS of pid in KiB, or -1. */
long fu_rss_kb(pid_t pid);
/* Raise RLIMIT_NOFILE's soft limit to want (or the hard limit); returns the new soft limit. */
long fu_raise_nofile(long want);

#endif
