#!/bin/sh
# tests/ui/term/test_sshd_human.sh: OpenSSH sign-ins at the pace of a person, in real time (no clock
# tricks), against private sshds as pam.d-examples/sshd sets them up (enter_prompt timeout=110,
# LoginGraceTime 120, the Debian default) and an ssh client with its defaults. Three terminals run
# side by side, so the whole takes about 100 s:
#   a. the person signs in on the phone at ~75 s and types the number it shows (number matching,
#      the default for a remote sign-in) at ~95 s: logged in;
#   b. Enter too early (~20 s: "not signed in yet"), phone at ~70 s, the number at ~85 s (more
#      than 60 s after the early Enter, the longest the daemon once let a quiet connection live):
#      logged in;
#   c. a short code (timeout=8, a second sshd): Enter at ~12 s says the code has expired, the
#      daemon logs reason=expired (never cancelled); the ssh client asks again twice, each time
#      with a fresh code that expires the same way, and is then refused.
# Each of a, b and c fails against the daemon and module before "sign-in at a person's pace".
# Needs root (it adds two test users and removes them again); skips cleanly otherwise.
# Captures: $NL_TOP_BUILDDIR/tests/ui/term/sshd-human-{a,b,c,before,after}.txt
set -u
. "$(dirname "$0")/world.sh"
. "$(dirname "$0")/sshd.sh"

PLAN=15
tap_plan $PLAN
sshd_require $PLAN
world_init 170

UA=nlhuma$$ # a and b: two logins of one person, mapped to the mock's p9
UC=nlhumc$$ # c: a code that expires (mapped to another NHS number; never signs in)
sshd_world $PLAN "$UA" "$UC" 9434765919
# As pam.d-examples/sshd and Debian's sshd_config.
if sshd_start human 120 "enter_prompt timeout=110"; then
	ok "sshd (enter_prompt timeout=110, LoginGraceTime 120) listens on 127.0.0.1:$SSHD_PORT"
else
	not_ok "sshd (enter_prompt timeout=110, LoginGraceTime 120) listens"
	skip_rest "sshd did not start" $PLAN
fi
PORT_HUMAN=$SSHD_PORT
if sshd_start short 120 "enter_prompt timeout=8"; then
	ok "sshd (enter_prompt timeout=8, LoginGraceTime 120) listens on 127.0.0.1:$SSHD_PORT"
else
	not_ok "sshd (enter_prompt timeout=8, LoginGraceTime 120) listens"
	skip_rest "sshd did not start" $PLAN
fi
PORT_SHORT=$SSHD_PORT

# ---- time ------------------------------------------------------------------------------------
now_ms() { date +%s%3N; }
# until_ms MS: sleep until the wall-clock time MS (milliseconds since the epoch).
until_ms() {
	d=$(($1 - $(now_ms)))
	[ $d -le 0 ] || sleep "$(awk -v d=$d 'BEGIN { printf "%.3f", d / 1000 }')"
}
# after T0 SECONDS: sleep until SECONDS after T0 (ms).
after() { until_ms $(($1 + $2 * 1000)); }
# note SESSION T0 WHAT: a TAP comment with the time since that session's code was shown.
note() { echo "# $1 at $(awk -v d=$(($(now_ms) - $2)) 'BEGIN { printf "%5.1f", d / 1000 }') s: $3"; }
# shown SESSION FILE SECONDS N: wait until the session shows its N-th code (or ssh ends); prints the
# time (ms) it was seen.
shown() {
	term_use "$1"
	i=0
	while [ $i -lt $(($3 * 5)) ]; do
		if term_capture "$2" && { [ "$(codes_in "$2")" -ge "$4" ] || grep -q 'ssh exit' "$2"; }; then
			break
		fi
		sleep 0.2
		i=$((i + 1))
	done
	t=$(now_ms)
	sleep 0.3 # the rest of the prompt
	term_capture "$2"
	echo "$t"
}
# left_s FILE: the seconds of the first "not signed in yet (m:ss left)" in a capture.
left_s() { sed -n 's/.*not signed in yet (\([0-9]*\):\([0-9]*\) left).*/\1 \2/p' "$1" | awk 'NR == 1 { print $1 * 60 + $2 }'; }

CA=$ART/sshd-human-a.txt
CB=$ART/sshd-human-b.txt
CC=$ART/sshd-human-c.txt
rm -f "$CA" "$CB" "$CC" "$ART/sshd-human-before.txt" "$ART/sshd-human-after.txt"
ssh_open a "$UA" "$PORT_HUMAN"
ssh_open b "$UA" "$PORT_HUMAN"
ssh_open c "$UC" "$PORT_SHORT"
TA=$(shown a "$CA" 20 1)
TB=$(shown b "$CB" 20 1)
TC=$(shown c "$CC" 20 1)
CODE_A=$(code_of "$CA")
CODE_B=$(code_of "$CB")
CODE_C1=$(code_of "$CC")
check "a, b: the prompts show a code each and 'The code expires in 1 minute 50 seconds'" \
	sh -c 'for f in "$1" "$2"; do grep -q "The code expires in 1 minute 50 seconds" "$f" &&
		grep -q "^When you have signed in, type the number shown on your phone (c to cancel): " "$f" || exit 1; done &&
		[ -n "$3" ] && [ -n "$4" ] && [ "$3" != "$4" ]' - "$CA" "$CB" "$CODE_A" "$CODE_B"
check "c: the prompt says 'The code expires in 8 seconds'" \
	sh -c 'grep -q "The code expires in 8 seconds\." "$1" && grep -q "^When you have signed in" "$1"' - "$CC"

# c. The code expires while the prompt waits; Enter after 12 s. The module says so and answers
# PAM_AUTH_ERR. What the ssh client does then, with its default NumberOfPasswordPrompts (3): it tries
# keyboard-interactive again, and sshd runs the PAM stack again, so a fresh code (a new flow) is
# shown at once; each expires the same way, and after the third the client gives up: "Permission
# denied", exit 255. Each flow is logged reason=expired; nothing is logged as cancelled.
after "$TC" 12
note c "$TC" "Enter (code $CODE_C1)"
term_use c
term_keys Enter
TC2=$(shown c "$CC" 10 2)
check "c: Enter after the code's 8 seconds says 'the code has expired'" \
	grep -q "NHS login: the code has expired. Start the login again to get a new code." "$CC"
CODE_C2=$(sed -n 's/.*enter the code  \([A-Z0-9]\{4\}-[A-Z0-9]\{4\}\).*/\1/p' "$CC" | sed -n 2p)
check "c: the ssh client asks again (default NumberOfPasswordPrompts): a fresh code is shown" \
	sh -c '[ -n "$2" ] && [ "$1" != "$2" ] && ! grep -q "ssh exit" "$3"' - "$CODE_C1" "$CODE_C2" "$CC"

# b. Enter too early.
after "$TB" 20
note b "$TB" "Enter, not signed in yet"
term_use b
term_keys Enter
term_wait 'not signed in yet' 10 "$CB"
LEFT_B=$(left_s "$CB")
check "b: Enter at ~20 s says 'not signed in yet (1:30 left)' or so, and asks again" \
	sh -c '[ -n "$1" ] && [ "$1" -ge 80 ] && [ "$1" -le 95 ] && [ "$(grep -c "^When you have signed in" "$2")" = 2 ]' - \
	"${LEFT_B:-}" "$CB"

# c, the second and third codes.
TC3=
if [ -n "$CODE_C2" ]; then
	after "$TC2" 12
	note c "$TC" "Enter (code $CODE_C2)"
	term_use c
	term_keys Enter
	TC3=$(shown c "$CC" 10 3)
fi
if [ -n "$TC3" ] && [ "$(codes_in "$CC")" = 3 ]; then
	after "$TC3" 12
	note c "$TC" "Enter (third code)"
	term_use c
	term_keys Enter
fi
term_use c
term_wait 'ssh exit' 15 "$CC"
note c "$TC" "ssh ended"
check "c: three codes, each expired, then ssh is refused (Permission denied, exit 255)" \
	sh -c '[ "$(grep -c "NHS login: the code has expired" "$1")" = 3 ] && [ "$2" = 3 ] &&
		grep -q "Permission denied" "$1" && grep -q "ssh exit 255" "$1" && ! grep -q LOGGED-IN "$1"' - \
	"$CC" "$(codes_in "$CC")"
check "c: the daemon logged reason=expired for each of the three codes and never reason=cancelled" \
	sh -c '[ "$(grep "user=$1" "$2" | grep -c "denied reason=expired")" = 3 ] &&
		! grep "user=$1" "$2" | grep -q "reason=cancelled"' - "$UC" "$W/daemon.log"

# The phone: b at ~70 s, a at ~75 s.
after "$TB" 70
note b "$TB" "phone signs in"
PAGE=$(phone "$CODE_B")
NUM_B=$(number_of "$PAGE")
check "b: the phone signs in at ~70 s and its page shows the number to type" \
	sh -c 'echo "$1" | grep -qi "type the number" && [ -n "$2" ]' - "$PAGE" "$NUM_B"
after "$TA" 75
note a "$TA" "phone signs in"
PAGE=$(phone "$CODE_A")
NUM_A=$(number_of "$PAGE")
check "a: the phone signs in at ~75 s and its page shows the number to type" \
	sh -c 'echo "$1" | grep -qi "type the number" && [ -n "$2" ]' - "$PAGE" "$NUM_A"

# b. Enter again, more than 60 s after the early Enter was answered: the module has said nothing to
# the daemon since (it sits in the conversation), and the connection must not be closed for that.
after "$TB" 85
note b "$TB" "the number"
term_use b
term_keys "$NUM_B" Enter
term_wait 'ssh exit' 15 "$CB"
check "b: the number typed at ~85 s: the login completes and the remote command runs" \
	sh -c 'grep -qx "LOGGED-IN" "$1" && grep -q "ssh exit 0" "$1"' - "$CB"

# a. Enter at ~95 s, 20 s after the approval.
after "$TA" 95
term_use a
term_capture "$ART/sshd-human-before.txt"
check "a: at ~95 s, before the number is typed, the screen still shows the code and the prompt (sshd-human-before.txt)" \
	sh -c 'tail -n1 "$1" | grep -q "^When you have signed in, type the number shown on your phone (c to cancel): *\$" &&
		[ "$2" = 1 ] && ! grep -q "not signed in yet\|ssh exit\|NHS login is not" "$1"' - \
	"$ART/sshd-human-before.txt" "$(codes_in "$ART/sshd-human-before.txt")"
note a "$TA" "the number"
term_keys "$NUM_A" Enter
term_wait 'ssh exit' 15 "$CA"
note a "$TA" "ssh ended"
term_capture "$ART/sshd-human-after.txt"
check "a: the number typed at ~95 s: the login completes and the remote command runs (sshd-human-after.txt)" \
	sh -c 'grep -qx "LOGGED-IN" "$1" && grep -q "ssh exit 0" "$1" && [ "$2" = 1 ]' - \
	"$ART/sshd-human-after.txt" "$(codes_in "$ART/sshd-human-after.txt")"
check "a, b: the daemon logged two approvals for the person and no denial" \
	sh -c '[ "$(grep "approved user=$1" "$2" | wc -l)" = 2 ] && ! grep "user=$1" "$2" | grep -q "denied"' - \
	"$UA" "$W/daemon.log"

[ $TAP_FAILED = 0 ] || {
	for n in human short; do
		echo "# sshd log ($n):"
		diag "$W/sshd-$n.log"
	done
	echo "# daemon log:"
	diag "$W/daemon.log"
}
exit $TAP_FAILED
