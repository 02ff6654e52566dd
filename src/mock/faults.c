/* nhslogin-mock: fault injection for tests, switched through POST /_mock/control. A fault is a
 * row in the table below plus a case in the hook where it acts; "none" clears them all. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mock.h"
#include "nl_err.h"
#include "nl_json.h"

#define MOCK_MAX_DELAY_MS 60000

enum fault_action { FA_RESET, FA_ROTATE_KEY, FA_SET };

static const struct fault_def {
	const char *name;
	enum fault_action action;
	unsigned bit;
} fault_defs[] = {
    {"none", FA_RESET, 0},
    {"rotate_key", FA_ROTATE_KEY, 0},
    {"status_500", FA_SET, MOCK_FAULT_STATUS_500},
    {"delay_ms", FA_SET, MOCK_FAULT_DELAY},
    {"token_no_id_token", FA_SET, MOCK_FAULT_TOKEN_NO_ID_TOKEN},
    {"token_not_json", FA_SET, MOCK_FAULT_TOKEN_NOT_JSON},
};

static const struct fault_def *find_fault(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof(fault_defs) / sizeof(fault_defs[0]); i++)
		if (strcmp(fault_defs[i].name, name) == 0)
			return &fault_defs[i];
	return NULL;
}

/* The parameter a fault needs, if any: {"fault":"delay_ms","ms":N}. */
static int fault_param(struct mock *m, const struct fault_def *f, const json_t *req, char *err, size_t errlen)
{
	long long ms;

	switch (f->bit) {
	case MOCK_FAULT_DELAY:
		if (nl_json_int(req, "ms", &ms) != 0 || ms < 0 || ms > MOCK_MAX_DELAY_MS) {
			snprintf(err, errlen, "delay_ms needs \"ms\": an integer 0..%d", MOCK_MAX_DELAY_MS);
			return NL_ERR_INVALID;
		}
		m->faults.delay_ms = (long)ms;
		return 0;
	default:
		return 0;
	}
}

int mock_fault_control(struct mock *m, const json_t *req, char *err, size_t errlen)
{
	const struct fault_def *f = find_fault(nl_json_str(req, "fault"));
	int r;

	if (f == NULL) {
		snprintf(err, errlen, "unknown or missing \"fault\"");
		return NL_ERR_INVALID;
	}
	switch (f->action) {
	case FA_RESET:
		memset(&m->faults, 0, sizeof(m->faults));
		return 0;
	case FA_ROTATE_KEY:
		if ((r = mock_keys_rotate(m)) != 0)
			snprintf(err, errlen, "cannot make a new key: %s", nl_strerror(r));
		return r;
	case FA_SET:
		if ((r = fault_param(m, f, req, err, errlen)) != 0)
			return r;
		m->faults.active |= f->bit;
		return 0;
	}
	return NL_ERR_INTERNAL;
}

json_t *mock_faults_json(const struct mock *m)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < sizeof(fault_defs) / sizeof(fault_defs[0]); i++)
		if (fault_defs[i].bit != 0 && (m->faults.active & fault_defs[i].bit) != 0)
			json_array_append_new(arr, json_string(fault_defs[i].name));
	return arr;
}

void mock_fault_before(struct mock *m, enum mock_ep ep, long *delay_ms, bool *status_500)
{
	(void)ep;
	*delay_ms = (m->faults.active & MOCK_FAULT_DELAY) != 0 ? m->faults.delay_ms : 0;
	*status_500 = (m->faults.active & MOCK_FAULT_STATUS_500) != 0;
}

void mock_fault_id_token_claims(const struct mock *m, json_t *claims)
{
	/* Hostile claim faults (wrong iss, wrong aud, expired, ...) act here. */
	(void)m;
	(void)claims;
}

bool mock_fault_token_body(const struct mock *m, const char **body, const char **ctype)
{
	if ((m->faults.active & MOCK_FAULT_TOKEN_NOT_JSON) != 0) {
		*body = "<html><body>Service temporarily unavailable</body></html>\n";
		*ctype = "text/html";
		return true;
	}
	return false;
}

void mock_fault_token_json(const struct mock *m, json_t *resp)
{
	if ((m->faults.active & MOCK_FAULT_TOKEN_NO_ID_TOKEN) != 0)
		json_object_del(resp, "id_token");
}
