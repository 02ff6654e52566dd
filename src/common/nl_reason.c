/* The verdict table: for each way a sign-in ends, its wire word and what the terminal, the flow's
 * message, the phone's result page and the log make of it. The words are the socket protocol's
 * (doc/protocol.md) and must not change; the texts are what people read. */
#include "config.h"
#include "nl_reason.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

/* The phone's pages end a failure the person may retry with this sentence. */
#define PHONE_AGAIN " Start again at your workstation if you want to try again."
#define PHONE_EXPIRED_TITLE "This code has expired - start again at your workstation"
#define PHONE_EXPIRED_TEXT "The sign-in at your workstation has ended. Start again there to get a new code."
#define PHONE_UNREACHED_TITLE "Sign-in could not be finished"
#define PHONE_UNREACHED_TEXT "NHS login could not be reached to finish signing in." PHONE_AGAIN

static const struct nl_reason_row rows[NL_REASON_COUNT] = {
    [NL_REASON_NONE] = {"none", false, LOG_NOTICE, NULL, "", "Signed in - return to your workstation",
                        "You have signed in with NHS login. Your workstation will continue in a moment. "
                        "You can close this page.",
                        200, true},
    [NL_REASON_DENIED] = {"denied", false, LOG_NOTICE,
                          "NHS login: the sign-in was declined. To try again, start the login again.",
                          "The sign-in was declined.", "Sign-in was not completed",
                          "NHS login did not sign you in, so your workstation stays locked." PHONE_AGAIN, 403,
                          false},
    [NL_REASON_EXPIRED] = {"expired", false, LOG_NOTICE,
                           "NHS login: the code has expired. Start the login again to get a new code.",
                           "The sign-in code has expired.", PHONE_EXPIRED_TITLE, PHONE_EXPIRED_TEXT, 410,
                           false},
    [NL_REASON_MISMATCH] = {"mismatch", false, LOG_NOTICE,
                            "NHS login: this NHS login is not linked to the account you are signing in to. "
                            "Check the user name, or sign in on the phone with your own NHS login.",
                            "This NHS login is not linked to the account %s.", "Wrong account",
                            "This NHS login is not linked to the account being signed in to at the "
                            "workstation. Check the user name on the workstation, or ask your IT service "
                            "desk.",
                            403, false},
    [NL_REASON_NO_MAPPING] = {"no_mapping", false, LOG_NOTICE,
                              "NHS login: this NHS login is not linked to any account on this computer. Ask "
                              "IT to link it to your account.",
                              "This NHS login is not linked to any account on this computer.",
                              "No account for this NHS login",
                              "Your NHS login is not linked to an account on this workstation. Ask your IT "
                              "service desk to link it.",
                              403, false},
    [NL_REASON_LEVEL] = {"level", false, LOG_NOTICE,
                         "NHS login: your NHS login identity level is not high enough for this computer. "
                         "Prove your identity in the NHS App or at NHS login, then try again.",
                         "This NHS login does not have a high enough identity level.", "Identity check needed",
                         "Your NHS login has not been checked to the level this workstation needs. Prove "
                         "your identity in the NHS App or NHS login settings, then try again.",
                         403, false},
    [NL_REASON_INVALID_TOKEN] = {"invalid_token", false, LOG_WARNING,
                                 "NHS login: the sign-in could not be verified. Try again; if it happens "
                                 "again, ask IT.",
                                 "The answer from NHS login could not be verified.",
                                 "Sign-in could not be checked",
                                 "The answer from NHS login could not be checked." PHONE_AGAIN, 502, false},
    [NL_REASON_CANCELLED] = {"cancelled", false, LOG_NOTICE, "NHS login: sign-in cancelled.",
                             "The sign-in was cancelled.", PHONE_EXPIRED_TITLE, PHONE_EXPIRED_TEXT, 410,
                             false},
    [NL_REASON_UNAVAILABLE] = {"unavailable", true, LOG_WARNING,
                               "NHS login could not be reached. Try again later, or use your break-glass "
                               "login.",
                               "NHS login could not be reached; try again later.", PHONE_UNREACHED_TITLE,
                               PHONE_UNREACHED_TEXT, 502, false},
    [NL_REASON_RESTARTED] = {"restarted", true, LOG_NOTICE,
                             "NHS login stopped on this computer while you were signing in (it may be "
                             "restarting). Start the login again in a minute, or use your break-glass login.",
                             "NHS login stopped on this computer during the sign-in.", PHONE_UNREACHED_TITLE,
                             PHONE_UNREACHED_TEXT, 502, false},
    [NL_REASON_NO_CLAIM] = {"no_claim", false, LOG_NOTICE,
                            "NHS login: the sign-in did not include your NHS number (or verified email "
                            "address), which this computer uses to find your account. Ask IT.",
                            "The sign-in did not include what this computer needs to find your account.",
                            "NHS login did not say who you are",
                            "The sign-in did not include your NHS number (or verified email address), which "
                            "this workstation uses to find your account. Ask your IT service desk.",
                            403, false},
    [NL_REASON_MISCONFIGURED] = {"misconfigured", true, LOG_ERR,
                                 "NHS login is not set up correctly on this computer. Ask IT, or use your "
                                 "break-glass login.",
                                 "NHS login is not set up correctly on this computer; ask IT.",
                                 "Workstation not set up correctly",
                                 "You signed in to NHS login, but this workstation is not set up correctly "
                                 "to finish signing you in. Ask your IT service desk.",
                                 500, false},
    [NL_REASON_POLICY] = {"policy", false, LOG_NOTICE,
                          "NHS login: this computer does not allow signing in with NHS login this way (from "
                          "there, or with this program). Ask IT if you need to.",
                          "This computer does not allow signing in with NHS login this way.",
                          PHONE_UNREACHED_TITLE, PHONE_UNREACHED_TEXT, 502, false},
    [NL_REASON_WRONG_NUMBER] = {"wrong_number", false, LOG_NOTICE,
                                "NHS login: that is not the number shown on the phone, so the sign-in has "
                                "been stopped. If you did not start this sign-in, someone may be trying to "
                                "use your account: tell IT.",
                                "The number typed at the computer was not the one the phone showed.",
                                PHONE_UNREACHED_TITLE, PHONE_UNREACHED_TEXT, 502, false},
};

const struct nl_reason_row *nl_reason_row(enum nl_reason r)
{
	if ((unsigned)r >= NL_REASON_COUNT)
		r = NL_REASON_DENIED;
	return &rows[r];
}

const char *nl_reason_word(enum nl_reason r)
{
	return nl_reason_row(r)->word;
}

bool nl_reason_from_word(const char *word, enum nl_reason *out)
{
	if (word == NULL)
		return false;
	for (unsigned i = NL_REASON_NONE + 1; i < NL_REASON_COUNT; i++) {
		if (strcmp(word, rows[i].word) == 0) {
			*out = (enum nl_reason)i;
			return true;
		}
	}
	return false;
}

/* No printf with a format from the table (-Wformat-nonliteral): the one "%s" is spliced by hand. */
void nl_reason_flow_message(enum nl_reason r, const char *user, char *out, size_t outlen)
{
	const char *text = nl_reason_row(r)->flow;
	const char *at = strstr(text, "%s");

	if (outlen == 0)
		return;
	if (at == NULL)
		snprintf(out, outlen, "%s", text);
	else
		snprintf(out, outlen, "%.*s%s%s", (int)(at - text), text, user != NULL ? user : "", at + 2);
}
