/* The flows table tests' fixture, shared by the tests/unit/test_flows_*.c programs: a table made
 * anew for each test on a fake clock, and the steps of a sign-in as the tests take them. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "flows.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "flows_fixture.h"

time_t fake_now = 1700000000;
static time_t fake_clock(void)
{
	return fake_now;
}

int setup_with(void **state, unsigned max_flows, unsigned per_user)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->cfg.flow_ttl = 300;
	fx->cfg.max_flows = max_flows;
	fx->cfg.max_flows_per_user = per_user;
	fx->cfg.code_attempts = 5;
	fx->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(fx->efd >= 0);
	fake_now = 1700000000;
	nl_set_clock(fake_clock);
	assert_int_equal(nl_flows_new(&fx->cfg, fx->efd, &fx->fl), 0);
	*state = fx;
	return 0;
}

int setup(void **state)
{
	return setup_with(state, 1024, 3);
}

int teardown(void **state)
{
	struct fx *fx = *state;
	nl_flows_free(fx->fl);
	close(fx->efd);
	free(fx);
	nl_set_clock(NULL);
	return 0;
}

void start_ok(struct fx *fx, const char *user, uint64_t owner, struct nl_flow_started *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(nl_flows_start(fx->fl, user, "sshd", "10.0.0.5", "ssh", owner, s), 0);
}

/* The phone's side: user code -> authz (state, challenge) -> state -> exchange (verifier). */
void begin_and_take(struct fx *fx, struct nl_flow_started *s, struct nl_flow_exchange *x)
{
	struct nl_flow_authz a = {0};
	assert_int_equal(nl_flows_begin_authz(fx->fl, s->user_code, "192.0.2.1", &a), 0);
	assert_string_equal(a.id, s->id);
	assert_int_equal(nl_flows_take_state(fx->fl, a.state, x), 0);
	nl_flow_authz_clear(&a);
}
