#!/bin/sh
# tests/ui/term/test_sshd.sh: an OpenSSH keyboard-interactive login with NHS login, in a real
# terminal. A private sshd on a free loopback port runs under pam_wrapper (its "sshd" PAM service
# comes from a temporary directory, not /etc/pam.d) with the real pam_nhslogin.so (enter_prompt);
# tmux runs ssh; the captured prompt must show the URL, the grouped code, a QR code that decodes to
# the verification URL, and "Press Enter"; the phone signs in, Enter is sent, and the remote command
# runs. "c" cancels at once, without the client asking again. Needs root (it adds a test user and
# removes it again); skips cleanly otherwise. The sshd set-up is shared with test_sshd_human.sh
# (sshd.sh).
# Captures: $NL_TOP_BUILDDIR/tests/ui/term/sshd-*.txt
set -u
. "$(dirname "$0")/world.sh"
. "$(dirname "$0")/sshd.sh"

PLAN=10
tap_plan $PLAN
sshd_require $PLAN
DECODE=yes
[ -n "$PY" ] && command -v zbarimg >/dev/null 2>&1 || DECODE=
world_init 150

U=nlterm$$
sshd_world $PLAN "$U"
# As pam.d-examples/sshd: text only with a prompt, and give up before LoginGraceTime.
if sshd_start main 300 "enter_prompt timeout=110"; then
	ok "sshd (under pam_wrapper) listens on 127.0.0.1:$SSHD_PORT"
else
	not_ok "sshd (under pam_wrapper) listens on 127.0.0.1:$SSHD_PORT"
	skip_rest "sshd did not start" $PLAN
fi

expect_uri() { echo "$BRIDGE/d?code=$(echo "$CODE" | tr -d -)"; }
decodes() {
	[ -n "$DECODE" ] || return 0
	got=$(qr_decode "$1" "$2") || return 1
	[ "$got" = "$(expect_uri)" ] || { echo "# decoded '$got', expected '$(expect_uri)'"; return 1; }
}
decode_note() { [ -n "$DECODE" ] && echo "$1" || echo "$1 # SKIP zbarimg or python3-pil missing"; }

# 1. Sign in (number matching, the default for a remote sign-in): Enter too early is answered with
# how long is left; then the phone, which shows a number, then the number typed at the prompt.
login signin
check "ssh: the keyboard-interactive prompt shows the URL, the grouped code, the QR code and asks for the phone's number" \
	sh -c 'grep -Fq "open $1/d" "$2" && grep -Eq "enter the code  [A-Z0-9]{4}-[A-Z0-9]{4}\$" "$2" &&
		grep -q "█" "$2" && grep -q "The code expires in 1 minute 50 seconds" "$2" &&
		grep -q "^When you have signed in, type the number shown on your phone (c to cancel): " "$2"' - "$BRIDGE" "$CAP"
check "ssh: $(decode_note "the QR code in the prompt decodes to the verification URL with the code")" \
	decodes "$CAP" "$ART/sshd-signin.png"
term_keys Enter
term_wait 'not signed in yet' 10 "$CAP"
check "ssh: Enter before signing in says 'not signed in yet' with the time left, and asks again" \
	sh -c 'grep -Eq "not signed in yet \(1:[0-9]{2} left\)" "$1" && [ "$(grep -c "^When you have signed in" "$1")" = 2 ]' - "$CAP"
PAGE=
[ -n "$CODE" ] && PAGE=$(phone "$CODE")
NUM=$(number_of "$PAGE")
check "ssh: the phone signs in and its page shows a two-digit number to type at the computer" \
	sh -c 'echo "$1" | grep -qi "type the number" && [ "$2" -ge 10 ] && [ "$2" -le 99 ]' - "$PAGE" "${NUM:-0}"
term_keys "$NUM" Enter
term_wait 'ssh exit' 20 "$CAP"
check "ssh: after the number the login completes and the remote command runs" \
	sh -c 'grep -qx "LOGGED-IN" "$1" && grep -q "ssh exit 0" "$1"' - "$CAP"

# 2. Cancel, with the client's default NumberOfPasswordPrompts (3): "c" at the prompt ends the
# sign-in, the person is told, and ssh is refused at once. The module answers PAM_MAXTRIES, on which
# sshd turns keyboard-interactive off for the connection, so the client cannot ask again and no
# fresh code is shown (with PAM_AUTH_ERR it would retry up to three times, each with a new code).
login cancel
term_keys c Enter
term_wait 'ssh exit' 20 "$CAP"
check "ssh: 'c' cancels: the terminal says so and the login is refused" \
	sh -c 'grep -q "NHS login: sign-in cancelled" "$1" && grep -q "Permission denied" "$1" &&
		grep -q "ssh exit 255" "$1" && ! grep -q "LOGGED-IN" "$1"' - "$CAP"
check "ssh: after 'c' the client does not ask again: one code was ever shown (default NumberOfPasswordPrompts)" \
	test "$(codes_in "$CAP")" = 1
check "ssh: the daemon saw the flow cancelled" sh -c 'grep "user=$1" "$2" | grep -q "reason=cancelled"' - "$U" "$W/daemon.log"

# 3. Number matching against a phishing victim: someone signs in on their phone but the number
# typed at the terminal is not the one it shows: the sign-in ends, refused, logged as possible
# phishing.
login wrongnum
PAGE=
[ -n "$CODE" ] && PAGE=$(phone "$CODE")
NUM=$(number_of "$PAGE")
WRONG=$(( ${NUM:-10} == 10 ? 11 : 10 ))
term_keys "$WRONG" Enter
term_wait 'not the number' 20 "$CAP"
# PAM_AUTH_ERR: the client asks again with a fresh code, which the person cancels.
sleep 1
term_keys c Enter
term_wait 'ssh exit' 20 "$CAP"
check "ssh: a wrong number ends the sign-in: the terminal says so, no login, the daemon logs wrong_number" \
	sh -c 'grep -q "that is not the number shown on the phone" "$1" && ! grep -q "LOGGED-IN" "$1" &&
		grep "user=$3" "$2" | grep -q "denied reason=wrong_number"' - "$CAP" "$W/daemon.log" "$U"

[ $TAP_FAILED = 0 ] || {
	echo "# sshd log:"
	diag "$W/sshd-main.log"
	echo "# daemon log:"
	diag "$W/daemon.log"
}
exit $TAP_FAILED
