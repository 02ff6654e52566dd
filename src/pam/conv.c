/* The PAM conversation: info and error lines, a prompt that carries text with it. */
#include "config.h"
#include "module.h"
#include "nl_err.h"
#include "nl_wipe.h"

#include <security/pam_ext.h>
#include <stdlib.h>

bool nl_conv_available(pam_handle_t *pamh)
{
	const struct pam_conv *conv = NULL;
	return pam_get_item(pamh, PAM_CONV, (const void **)&conv) == PAM_SUCCESS && conv != NULL &&
	       conv->conv != NULL;
}

/* One round of the conversation with n messages; only the last may be a prompt. */
static int converse(pam_handle_t *pamh, const struct pam_message **msgs, int n, char **answer)
{
	const struct pam_conv *conv = NULL;
	struct pam_response *resp = NULL;
	int r = NL_ERR_UNAVAILABLE, i;

	if (pam_get_item(pamh, PAM_CONV, (const void **)&conv) != PAM_SUCCESS || conv == NULL ||
	    conv->conv == NULL)
		return NL_ERR_UNAVAILABLE;
	if (conv->conv(n, msgs, &resp, conv->appdata_ptr) != PAM_SUCCESS)
		goto out;
	if (answer != NULL) {
		if (resp == NULL || resp[n - 1].resp == NULL)
			goto out;
		*answer = resp[n - 1].resp;
		resp[n - 1].resp = NULL;
	}
	r = 0;
out:
	if (resp != NULL) {
		for (i = 0; i < n; i++)
			nl_free_secret(resp[i].resp);
		free(resp);
	}
	return r;
}

static int say(pam_handle_t *pamh, int style, const char *text)
{
	struct pam_message m = {.msg_style = style, .msg = text};
	const struct pam_message *mp = &m;
	return converse(pamh, &mp, 1, NULL);
}

int nl_conv_info(pam_handle_t *pamh, const char *text)
{
	return say(pamh, PAM_TEXT_INFO, text);
}

int nl_conv_error(pam_handle_t *pamh, const char *text)
{
	return say(pamh, PAM_ERROR_MSG, text);
}

int nl_conv_prompt(pam_handle_t *pamh, const char *text, const char *prompt, bool echo, char **answer)
{
	struct pam_message info = {.msg_style = PAM_TEXT_INFO, .msg = text};
	struct pam_message ask = {.msg_style = echo ? PAM_PROMPT_ECHO_ON : PAM_PROMPT_ECHO_OFF,
	                          .msg = prompt};
	const struct pam_message *two[2] = {&info, &ask};
	const struct pam_message *one[1] = {&ask};

	*answer = NULL;
	/* Linux-PAM and OpenSSH take several messages in one call; this is what lets sshd show the
	 * URL and code together with the prompt. */
	if (text != NULL)
		return converse(pamh, two, 2, answer);
	return converse(pamh, one, 1, answer);
}
