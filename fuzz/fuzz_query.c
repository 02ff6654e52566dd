/* libFuzzer target: what the bridge does with a phone's query string or form body after
 * libmicrohttpd has split and unescaped it - the typed user code (nl_user_code_normalize,
 * nl_flows_begin_authz with its guessing limit) and the callback's state (nl_flows_take_state, used
 * once) against a real flows table - plus nl_b64url_decode and nl_json_parse on the raw values.
 * Input: "key=value&key=value..." (application/x-www-form-urlencoded). The values "@CODE@" and
 * "@STATE@" stand for the live flow's user code and state, so the success paths are reachable. */
#include "config.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows.h"
#include "fuzz_keys.h"
#include "nl_b64.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_wipe.h"

#define CODE_MAX  64   /* the bridge keeps this much of a typed code (BRIDGE_CODE_MAX) */
#define PARAM_MAX 4096 /* and this much of state/code/error (BRIDGE_PARAM_MAX) */

static struct nl_config cfg;
static bool verbose; /* NL_FUZZ_VERBOSE=1: say what each field did (for reproducing) */

struct run {
	struct nl_flows *fl;
	struct nl_flow_started st;
	char code[NL_USER_CODE_LEN + 1]; /* the live flow's code, canonical */
	char *state;                     /* learned from a successful code entry */
	bool state_taken;
	char client[64];
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	nl_log_open("fuzz_query", NL_LOG_STDERR, false);
	verbose = getenv("NL_FUZZ_VERBOSE") != NULL;
	nl_config_init(&cfg);
	cfg.code_attempts = 5;
	return 0;
}

/* Strict base64url: whatever decodes must encode back to exactly the same text. */
static void b64_round_trip(const char *v, size_t len)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	char *again = NULL;

	if (nl_b64url_decode(v, len, &raw, &n) != 0)
		return;
	if (nl_b64url_encode(raw, n, &again) != 0 || strlen(again) != len || memcmp(again, v, len) != 0)
		abort();
	free(raw);
	free(again);
}

static void typed_code(struct run *rn, const char *v)
{
	struct nl_flow_authz a = {0};
	char canon[NL_USER_CODE_LEN + 1];
	int r, n;

	n = nl_user_code_normalize(v, canon);
	if (n == 0 &&
	    (strlen(canon) != NL_USER_CODE_LEN || strspn(canon, NL_USER_CODE_ALPHABET) != NL_USER_CODE_LEN))
		abort();
	if (strlen(v) > CODE_MAX)
		return;
	r = nl_flows_begin_authz(rn->fl, v, rn->client, &a);
	/* Only the live flow's code, however it was typed, may start a sign-in. */
	if (r == 0 && (n != 0 || strcmp(canon, rn->code) != 0 || a.state == NULL))
		abort();
	if (verbose)
		fprintf(stderr, "fuzz_query: code: normalize %s, begin_authz %s\n", nl_strerror(n),
		        nl_strerror(r));
	if (r == 0 && rn->state == NULL)
		rn->state = strdup(a.state);
	nl_flow_authz_clear(&a);
}

static void callback_state(struct run *rn, const char *v)
{
	struct nl_flow_exchange x = {0};
	int r;

	if (v[0] == '\0' || strlen(v) > PARAM_MAX)
		return;
	r = nl_flows_take_state(rn->fl, v, &x);
	if (verbose)
		fprintf(stderr, "fuzz_query: state: take_state %s\n", nl_strerror(r));
	/* Only the live flow's state, and only once. */
	if (r == 0) {
		if (rn->state == NULL || strcmp(v, rn->state) != 0 || rn->state_taken ||
		    strcmp(x.user, "alice") != 0 || x.code_verifier == NULL)
			abort();
		rn->state_taken = true;
	}
	nl_flow_exchange_clear(&x);
}

static void field(struct run *rn, char *key, char *value)
{
	const char *v = value;

	MHD_http_unescape(key);
	MHD_http_unescape(value);
	if (strcmp(value, "@CODE@") == 0)
		v = rn->st.user_code;
	else if (strcmp(value, "@STATE@") == 0)
		v = rn->state != NULL ? rn->state : "";
	b64_round_trip(v, strlen(v));
	if (strcmp(key, "code") == 0)
		typed_code(rn, v);
	else if (strcmp(key, "state") == 0)
		callback_state(rn, v);
	else if (strcmp(key, "client") == 0)
		snprintf(rn->client, sizeof(rn->client), "%s", v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run rn = {.client = "192.0.2.1"};
	json_t *j = NULL;
	char *text, *pair, *save = NULL, *eq;

	(void)nl_json_parse((const char *)data, size, NL_JSON_MAX_SIZE, NL_JSON_MAX_DEPTH, false, &j, NULL,
	                    0);
	json_decref(j);
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (nl_flows_new(&cfg, -1, &rn.fl) != 0 ||
	    nl_flows_start(rn.fl, "alice", "sshd", "10.0.0.5", "ssh", 1, &rn.st) != 0 ||
	    nl_user_code_normalize(rn.st.user_code, rn.code) != 0)
		abort();
	for (pair = strtok_r(text, "&", &save); pair != NULL; pair = strtok_r(NULL, "&", &save)) {
		if ((eq = strchr(pair, '=')) == NULL)
			continue;
		*eq = '\0';
		field(&rn, pair, eq + 1);
	}
	nl_flow_started_clear(&rn.st);
	nl_flows_free(rn.fl);
	nl_free_secret(rn.state);
	free(text);
	return 0;
}
