/* Internal interfaces of pam_nhslogin.so: options, the conversation, the QR code, and the daemon
 * client (nl_proto.h: one connection for the whole sign-in, so that closing it, the login abandoned
 * or the process killed, cancels the flow in the daemon at once). Nothing here is exported from the
 * module (pam_nhslogin.map keeps only pam_sm_*). */
#ifndef NL_PAM_MODULE_H
#define NL_PAM_MODULE_H

#include <jansson.h>
#include <security/pam_modules.h>
#include <stdbool.h>
#include <stddef.h>
#include "nl_config.h"
#include "nl_proto.h"
#include "nl_qr.h"

struct nl_pam_opts {
	struct nl_config cfg; /* [pam] and [daemon] socket from the main file, then argv */
	enum nl_qr_style qr_style;
};

/* Parse the module arguments: config=FILE first (default NL_CONFIG_DEFAULT_PATH; read with
 * NL_CONFIG_MAIN_ONLY), then every other argument through nl_config_set: socket=PATH,
 * timeout=SECONDS, debug, noqr, qr=utf8|ascii, strict, enter_prompt, noninteractive=ignore|deny.
 * Unknown arguments are errors (err names the argument). Free with nl_pam_opts_free. */
int nl_pam_opts_parse(int argc, const char **argv, struct nl_pam_opts *o, char *err, size_t errlen);
void nl_pam_opts_free(struct nl_pam_opts *o);

/* The conversation. */
int nl_conv_info(pam_handle_t *pamh, const char *text);
int nl_conv_error(pam_handle_t *pamh, const char *text);
/* Show text (may be NULL) and a prompt in one call (OpenSSH keyboard-interactive shows info only
 * with a prompt). *answer is a new string (free with nl_free_secret) or NULL. */
int nl_conv_prompt(pam_handle_t *pamh, const char *text, const char *prompt, bool echo, char **answer);
/* Does the application give us a conversation at all? */
bool nl_conv_available(pam_handle_t *pamh);

#endif
