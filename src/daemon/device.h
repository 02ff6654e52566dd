/* Native mode (RFC 8628): one thread polls the provider's token endpoint for each device-mode
 * flow at the provider's interval (+5 s on slow_down) and ends the flow through
 * nl_signin_complete. The provider's device_code is a secret kept only here. */
#ifndef NL_DEVICE_H
#define NL_DEVICE_H

#include <stddef.h>
#include "nl_config.h"
#include "flows.h"
#include "oidc.h"
#include "tokcache.h"

struct nl_device;

/* Start the poller thread. The objects passed must outlive it. */
int nl_device_start(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                    struct nl_tokcache *tc, struct nl_device **out);
/* Stop the thread (waits for a poll in progress) and wipe every job. NULL is fine. */
void nl_device_stop(struct nl_device *d);
/* Poll the provider for flow (flow_id, user) with the grant da from nl_oidc_device_start. Takes
 * da->device_code (set to NULL); the rest of da stays the caller's. NL_ERR_LIMIT when max_flows
 * jobs are running already. */
int nl_device_add(struct nl_device *d, const char *flow_id, const char *user, struct nl_device_auth *da);
/* Jobs being polled. */
size_t nl_device_count(struct nl_device *d);

#endif
