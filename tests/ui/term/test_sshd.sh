#!/bin/sh
# tests/ui/term/test_sshd.sh: an OpenSSH keyboard-interactive login with NHS login, in a real
# terminal. A private sshd on a free loopback port runs under pam_wrapper (its "sshd" PAM service
# comes from a temporary directory, not /etc/pam.d) with the real pam_nhslogin.so (enter_prompt);
# tmux runs ssh; the captured prompt must show the URL, the grouped code, a QR code that decodes to
# the verification URL, and "Press Enter"; the phone signs in, Enter is sent, and the remote command
# runs. Needs root (it adds a test user and removes it again); skips cleanly otherwise.
# Captures: $NL_TOP_BUILDDIR/tests/ui/term/sshd-*.txt
set -u
. "$(dirname "$0")/world.sh"

PLAN=8
tap_plan $PLAN
SSHD=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)
[ "$(id -u)" = 0 ] || skip_rest "not root: the test adds a local user for sshd" $PLAN
[ -x "$SSHD" ] || skip_rest "sshd is not installed (openssh-server; tools/install-deps)" $PLAN
for t in tmux ssh ssh-keygen useradd userdel curl openssl python3; do
	command -v $t >/dev/null 2>&1 || skip_rest "$t is not installed (tools/install-deps)" $PLAN
done
[ -n "$PWLIB" ] && [ -f "$PWLIB" ] || skip_rest "libpam_wrapper is not installed" $PLAN
DECODE=yes
[ -n "$PY" ] && command -v zbarimg >/dev/null 2>&1 || DECODE=
world_init 90

U=nlterm$$
MADE_RUNDIR=
sshd_cleanup() {
	userdel "$U" >/dev/null 2>&1 || true
	[ -n "$MADE_RUNDIR" ] && rmdir /run/sshd 2>/dev/null || true
}
WORLD_CLEANUP_HOOK=sshd_cleanup
# No home directory of its own: the work directory (removed at the end) serves.
useradd -M -d "$W" -s /bin/sh "$U" >/dev/null 2>&1 || skip_rest "useradd $U failed" $PLAN

world_start "$U" || { not_ok "nhslogin-mock and nhslogind are running"; skip_rest "no world" $PLAN; }
# As pam.d-examples/sshd: text only with a prompt, and give up before LoginGraceTime.
world_service sshd "enter_prompt timeout=110"
# sshd's privilege separation needs its empty directory.
if [ ! -d /run/sshd ]; then
	mkdir -m 755 /run/sshd && MADE_RUNDIR=yes
fi

ssh-keygen -q -t ed25519 -N '' -f "$W/hostkey" || skip_rest "ssh-keygen failed" $PLAN
PORT=$(free_port)
cat >"$W/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $PORT
HostKey $W/hostkey
PidFile $W/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication no
AuthenticationMethods keyboard-interactive
LoginGraceTime 300
PermitRootLogin no
AllowUsers $U
LogLevel VERBOSE
EOF
env $(pam_wrapper_env) "$SSHD" -D -e -f "$W/sshd_config" >"$W/sshd.log" 2>&1 &
WORLD_PIDS="$WORLD_PIDS $!"
i=0
until grep -q "Server listening on 127.0.0.1 port $PORT" "$W/sshd.log" 2>/dev/null || [ $i -ge 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if grep -q "Server listening" "$W/sshd.log"; then ok "sshd (under pam_wrapper) listens on 127.0.0.1:$PORT"; else
	not_ok "sshd (under pam_wrapper) listens on 127.0.0.1:$PORT"
	diag "$W/sshd.log"
	skip_rest "sshd did not start" $PLAN
fi

# login NAME: ssh in an 80x30 terminal, running "echo LOGGED-IN" once authenticated.
login() {
	CAP=$ART/sshd-$1.txt
	rm -f "$CAP" "$ART/sshd-$1.png"
	term_start 80 30 "ssh -F /dev/null -p $PORT -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
-o PreferredAuthentications=keyboard-interactive -o NumberOfPasswordPrompts=1 \
$U@127.0.0.1 echo LOGGED-IN; echo \"[ssh exit \$?]\""
	term_wait 'Press Enter|ssh exit' 20 "$CAP"
	sleep 0.3
	term_capture "$CAP"
	CODE=$(code_of "$CAP")
}
expect_uri() { echo "$BRIDGE/d?code=$(echo "$CODE" | tr -d -)"; }
decodes() {
	[ -n "$DECODE" ] || return 0
	got=$(qr_decode "$1" "$2") || return 1
	[ "$got" = "$(expect_uri)" ] || { echo "# decoded '$got', expected '$(expect_uri)'"; return 1; }
}
decode_note() { [ -n "$DECODE" ] && echo "$1" || echo "$1 # SKIP zbarimg or python3-pil missing"; }

# 1. Sign in: Enter too early is answered with how long is left; then the phone, then Enter.
login signin
check "ssh: the keyboard-interactive prompt shows the URL, the grouped code, the QR code and 'Press Enter'" \
	sh -c 'grep -Fq "open $1/d" "$2" && grep -Eq "enter the code  [A-Z0-9]{4}-[A-Z0-9]{4}\$" "$2" &&
		grep -q "█" "$2" && grep -q "The code expires in 1 minute 50 seconds" "$2" &&
		grep -q "^Press Enter when you have signed in on your phone (c to cancel): " "$2"' - "$BRIDGE" "$CAP"
check "ssh: $(decode_note "the QR code in the prompt decodes to the verification URL with the code")" \
	decodes "$CAP" "$ART/sshd-signin.png"
term_keys Enter
term_wait 'not signed in yet' 10 "$CAP"
check "ssh: Enter before signing in says 'not signed in yet' with the time left, and asks again" \
	sh -c 'grep -Eq "not signed in yet \(1:[0-9]{2} left\)" "$1" && [ "$(grep -c "^Press Enter" "$1")" = 2 ]' - "$CAP"
PAGE=
[ -n "$CODE" ] && PAGE=$(phone "$CODE")
check "ssh: the phone signs in and the result page says so" sh -c 'echo "$1" | grep -qi "signed in"' - "$PAGE"
term_keys Enter
term_wait 'ssh exit' 20 "$CAP"
check "ssh: after Enter the login completes and the remote command runs" \
	sh -c 'grep -qx "LOGGED-IN" "$1" && grep -q "ssh exit 0" "$1"' - "$CAP"

# 2. Cancel: "c" at the prompt ends the sign-in, the person is told, and ssh is refused.
login cancel
term_keys c Enter
term_wait 'ssh exit' 20 "$CAP"
check "ssh: 'c' cancels: the terminal says so and the login is refused" \
	sh -c 'grep -q "NHS login: sign-in cancelled" "$1" && grep -q "Permission denied" "$1" &&
		! grep -q "LOGGED-IN" "$1"' - "$CAP"
check "ssh: the daemon saw the flow cancelled" sh -c 'grep "$1" "$2" | grep -q "cancelled"' - "$U" "$W/daemon.log"

[ $TAP_FAILED = 0 ] || {
	echo "# sshd log:"
	diag "$W/sshd.log"
	echo "# daemon log:"
	diag "$W/daemon.log"
}
exit $TAP_FAILED
