/* libFuzzer target: the bridge's check of a workstation's signed request (nl_hostauth_verify)
 * against a real hosts directory made at start: ws-a (RFC 7515 A.3's P-256 key), ws-b (RFC 7517
 * A.1's), ws-junk (not a key), in a cache of two keys. Byte 0 is the mode; the rest is split at the
 * first newline into the Authorization value and the request's body. Mode even: the value as is.
 * Odd: the value is a payload that this target signs with ws-a's key (kid and typ chosen by the
 * mode's bits), so that fuzzed claims get past the signature to the binding, time and jti rules. */
#include "config.h"

#include <cjose/cjose.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_keys.h"
#include "hostauth.h"
#include "nl_err.h"
#include "nl_jose.h"
#include "nl_log.h"

#define FUZZ_AUDIENCE "https://bridge.fuzz.example"
#define FUZZ_PATH     "/api/v1/flows?wait=1"

/* RFC 7517 A.1's public EC key (P-256): ws-b, a second enrolled workstation nobody here can sign for. */
#define FUZZ_EC_B_JWK                                                                                        \
	"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\","           \
	"\"y\":\"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM\"}"

static const char *const host_names[] = {"ws-a", "ws-b", "ws-junk"};
static char dir[PATH_MAX];
static struct nl_hostauth_hosts *hosts;
static cjose_jwk_t *signer; /* ws-a's private key, kid its thumbprint */
static char *kid_a, *kid_b;
static bool verbose; /* NL_FUZZ_VERBOSE=1: say what each input did (for reproducing) */

/* What the replay callback saw for one input. */
struct replay_seen {
	unsigned calls;
	char name[NL_HOSTAUTH_NAME_MAX + 1];
};

/* The bridge's replay cache, answering NEW; its arguments checked on the way. */
static enum nl_hostauth_replay replay_new(void *ctx, const char *name, const char *jti, time_t expires_at)
{
	struct replay_seen *seen = ctx;

	if (name == NULL || !nl_hostauth_name_ok(name) || jti == NULL || expires_at <= 0)
		abort();
	seen->calls++;
	snprintf(seen->name, sizeof(seen->name), "%s", name);
	return NL_HOSTAUTH_REPLAY_NEW;
}

static void write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fchmod(fd, 0644) != 0 || close(fd) != 0)
		abort();
}

static void cleanup(void)
{
	char path[PATH_MAX + 32];
	size_t i;

	for (i = 0; i < sizeof(host_names) / sizeof(host_names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s.pem", dir, host_names[i]);
		unlink(path);
	}
	rmdir(dir);
	nl_hostauth_hosts_free(hosts);
	cjose_jwk_release(signer);
	free(kid_a);
	free(kid_b);
}

/* The public key of jwk as PEM (new string). */
static char *pem_of(const cjose_jwk_t *jwk)
{
	char *pem = nl_jwk_public_pem(jwk);

	if (pem == NULL)
		abort();
	return pem;
}

/* Enrol text as dir/NAME.pem; the bridge's own judgement of it must be want_ok. */
static void enrol(const char *name, const char *text, bool want_ok)
{
	char path[PATH_MAX + 32], file[NL_HOSTAUTH_NAME_MAX + 8], got[NL_HOSTAUTH_NAME_MAX + 1];
	char *thumb = NULL;

	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	write_file(path, text);
	snprintf(file, sizeof(file), "%s.pem", name);
	if ((nl_hostauth_hosts_check_file(hosts, file, got, &thumb, NULL) == 0) != want_ok)
		abort();
	free(thumb);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("NL_FUZZ_TMPDIR");
	cjose_jwk_t *b = NULL;
	char *pem;
	struct stat st;
	cjose_err cerr;

	(void)argc, (void)argv;
	nl_log_open("fuzz_hostauth", NL_LOG_STDERR, false);
	verbose = getenv("NL_FUZZ_VERBOSE") != NULL;
	if (tmp == NULL || tmp[0] != '/')
		tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
		          ? "/dev/shm"
		          : "/tmp";
	/* The directory is ours and 0700: the bridge's checks of owner and mode pass. */
	if ((size_t)snprintf(dir, sizeof(dir), "%s/nl-fuzz-hostauth.XXXXXX", tmp) >= sizeof(dir) ||
	    mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	if (nl_jwk_from_json(FUZZ_EC_PRIVATE_JWK, strlen(FUZZ_EC_PRIVATE_JWK), &signer) != 0 ||
	    nl_jwk_from_json(FUZZ_EC_B_JWK, strlen(FUZZ_EC_B_JWK), &b) != 0 ||
	    (kid_a = nl_jwk_thumbprint(signer)) == NULL || (kid_b = nl_jwk_thumbprint(b)) == NULL ||
	    !cjose_jwk_set_kid(signer, kid_a, strlen(kid_a), &cerr))
		abort();
	/* Two keys kept for three names: eviction and reloading are exercised too. */
	if (nl_hostauth_hosts_new(dir, 2, &hosts) != 0)
		abort();
	enrol("ws-a", pem = pem_of(signer), true);
	free(pem);
	enrol("ws-b", pem = pem_of(b), true);
	free(pem);
	enrol("ws-junk", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", false);
	cjose_jwk_release(b);
	return 0;
}

/* "NL-Host " and a compact ES256 JWS of payload signed by ws-a's key; mode bits 1-2 choose the kid
 * (ws-a's, none, ws-b's, an unknown one), bits 3-4 the typ (nl-host+jwt, none, JWT, another spelling
 * of ours). New string, or NULL if cjose will not sign it. */
static char *sign_payload(uint8_t mode, const char *payload, size_t len)
{
	const char *kids[] = {kid_a, NULL, kid_b, "unknown"};
	static const char *const typs[] = {NL_HOSTAUTH_JWS_TYP, NULL, "JWT", "application/NL-Host+JWT"};
	const char *kid = kids[(mode >> 1) & 3], *typ = typs[(mode >> 3) & 3], *ser = NULL;
	cjose_header_t *h = NULL;
	cjose_jws_t *jws = NULL;
	cjose_err cerr;
	char *out = NULL;

	if ((h = cjose_header_new(&cerr)) == NULL ||
	    !cjose_header_set(h, CJOSE_HDR_ALG, NL_HOSTAUTH_JWS_ALG, &cerr) ||
	    (kid != NULL && !cjose_header_set(h, CJOSE_HDR_KID, kid, &cerr)) ||
	    (typ != NULL && !cjose_header_set(h, "typ", typ, &cerr)))
		goto out;
	if (len == 0 || (jws = cjose_jws_sign(signer, h, (const uint8_t *)payload, len, &cerr)) == NULL ||
	    !cjose_jws_export(jws, &ser, &cerr))
		goto out;
	if (asprintf(&out, NL_HOSTAUTH_SCHEME " %s", ser) < 0)
		out = NULL;
out:
	cjose_jws_release(jws);
	cjose_header_release(h);
	return out;
}

/* The contract beyond memory safety: a result only on success, a reason with every refusal, one
 * line of detail, the replay cache asked exactly when all else passed, and only an enrolled name
 * that a key here can sign for handed out. */
static void check_result(int r, const struct nl_hostauth_error *err, const char *name,
                         const struct replay_seen *seen)
{
	if (strnlen(err->detail, sizeof(err->detail)) == sizeof(err->detail) ||
	    strchr(err->detail, '\n') != NULL)
		abort();
	if (r == 0) {
		if (err->reason != NL_HOSTAUTH_E_OK || strcmp(name, "ws-a") != 0 || seen->calls != 1 ||
		    strcmp(seen->name, name) != 0)
			abort();
		return;
	}
	if (r > 0 || err->reason == NL_HOSTAUTH_E_OK || strcmp(name, "unset") != 0 || seen->calls != 0 ||
	    err->detail[0] == '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl;
	char *value = NULL, *part = NULL;
	uint8_t *body = NULL;
	size_t vlen, blen;
	char name[NL_HOSTAUTH_NAME_MAX + 1];
	struct nl_hostauth_error err;
	struct replay_seen seen;
	uint8_t mode;
	int r;

	if (size < 1 || size > 3 * NL_HOSTAUTH_HEADER_MAX)
		return 0;
	mode = data[0];
	data++, size--;
	nl = memchr(data, '\n', size);
	vlen = nl != NULL ? (size_t)(nl - data) : size;
	blen = nl != NULL ? size - vlen - 1 : 0;
	/* Exact-size copies, so that any read past either end is caught. */
	if ((part = malloc(vlen + 1)) == NULL || (body = malloc(blen != 0 ? blen : 1)) == NULL)
		abort();
	memcpy(part, data, vlen);
	part[vlen] = '\0';
	if (blen != 0)
		memcpy(body, nl + 1, blen);
	if ((mode & 1) != 0) {
		value = sign_payload(mode, part, strlen(part));
		free(part);
		if (value == NULL) {
			free(body);
			return 0;
		}
	} else {
		value = part;
	}
	memset(&seen, 0, sizeof(seen));
	memset(&err, 0x5a, sizeof(err));
	snprintf(name, sizeof(name), "unset");
	r = nl_hostauth_verify(hosts, value, (mode & 32) != 0 ? "GET" : "POST", FUZZ_PATH,
	                       (mode & 64) != 0 && blen == 0 ? NULL : body, blen, FUZZ_AUDIENCE, FUZZ_NOW,
	                       replay_new, &seen, name, &err);
	if (verbose)
		fprintf(stderr, "fuzz_hostauth: mode %u: %s%s%s\n", mode, nl_hostauth_reason_word(err.reason),
		        err.detail[0] != '\0' ? ": " : "", err.detail);
	check_result(r, &err, name, &seen);
	free(value);
	free(body);
	return 0;
}
