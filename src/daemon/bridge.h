/* The bridge: nhslogind's web listener (libmicrohttpd). The phone enters the user code (or
 * arrives with it in the URL from the QR code), is sent to the provider's /authorize, and comes
 * back to the redirect_uri callback, where the code is exchanged and the flow finished. */
#ifndef NL_BRIDGE_H
#define NL_BRIDGE_H

#include <stddef.h>
#include <stdint.h>
#include "nl_config.h"
#include "flows.h"
#include "oidc.h"
#include "tokcache.h"

struct nl_bridge;

/* Start listening on cfg->listen (port 0 picks a free port) with TLS if cfg->tls_cert/tls_key.
 * The objects passed must outlive the bridge. */
int nl_bridge_start(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                    struct nl_tokcache *tc, struct nl_bridge **out, char *err, size_t errlen);
/* role = bridge (doc/bridge.md): flows in the store behind fl (nl_flows_new_store), the agent API
 * on the same listener, requests checked against hosts. index_key (the store's) derives the
 * confirmation form's key, so that a page shown by one instance is accepted by another; it is not
 * kept. */
struct nl_store;
struct nl_hostauth_hosts;
struct nl_bridge_cluster {
	struct nl_store *store;
	struct nl_hostauth_hosts *hosts;
	const unsigned char *index_key;
	size_t index_key_len;
};
int nl_bridge_start_cluster(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                            const struct nl_bridge_cluster *cl, struct nl_bridge **out, char *err,
                            size_t errlen);
void nl_bridge_stop(struct nl_bridge *b);
/* The port actually bound. */
uint16_t nl_bridge_port(const struct nl_bridge *b);
/* The page the phone opens (public_url + "/d"), and the same with the code for the QR code
 * (public_url + "/d?code=XXXXXXXX"). public_url defaults to http://<listen with the bound port>.
 * New strings in *uri and *uri_complete. */
int nl_bridge_verification_uri(const struct nl_bridge *b, const char *user_code, char **uri,
                               char **uri_complete);

#endif
