/* Fixed key material and policy for the JOSE fuzz targets: the published example keys of
 * RFC 7515 A.2 (RSA) and A.3 (EC P-256) and RFC 7520 3.3 (RSA), so the committed seed tokens verify.
 * These keys are public test vectors: never use them for anything else. */
#ifndef NL_FUZZ_KEYS_H
#define NL_FUZZ_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The libFuzzer entry points (clang declares none for C). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* clang-format off */
/* The verifying set: RFC 7515 A.2 as "fuzz-rsa", A.3 as "fuzz-ec", RFC 7520 3.3 under its own kid. */
#define FUZZ_JWKS                                                                                            \
	"{\"keys\":["                                                                                        \
	"{\"kty\":\"RSA\",\"kid\":\"fuzz-rsa\",\"use\":\"sig\",\"e\":\"AQAB\",\"n\":\""                      \
	"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-" \
	"yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-" \
	"KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-"               \
	"DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"},"                                  \
	"{\"kty\":\"EC\",\"kid\":\"fuzz-ec\",\"crv\":\"P-256\","                                             \
	"\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","                                             \
	"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"                                            \
	"{\"kty\":\"RSA\",\"kid\":\"bilbo.baggins@hobbiton.example\",\"use\":\"sig\",\"e\":\"AQAB\",\"n\":\""  \
	"n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMR" \
	"BSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZ" \
	"cD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY" \
	"7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw\"}"                                                   \
	"]}"

/* RFC 7515 A.3's private EC key: fuzz_idtoken signs fuzzed claims with it (ES256, kid fuzz-ec). */
#define FUZZ_EC_PRIVATE_JWK                                                                                  \
	"{\"kty\":\"EC\",\"kid\":\"fuzz-ec\",\"crv\":\"P-256\","                                             \
	"\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","                                             \
	"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\","                                             \
	"\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}"

/* clang-format on */

/* The ID token policy of fuzz_idtoken (and of the seed tokens in fuzz/corpus/fuzz_idtoken). */
#define FUZZ_ISSUER    "https://auth.sandpit.signin.nhs.uk"
#define FUZZ_CLIENT_ID "fuzz-client"
#define FUZZ_NONCE     "fuzz-nonce-0123456789"
#define FUZZ_VTR       "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\",\"P5.Cp.Cd\"]" /* P5: the level rule is reachable */
#define FUZZ_NOW       ((time_t)1700000000)

#endif
