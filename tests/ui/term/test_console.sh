#!/bin/sh
# tests/ui/term/test_console.sh: what a person sees at a console login, in a real terminal. tmux
# (80x24, UTF-8) runs pamtester under pam_wrapper with the real pam_nhslogin.so against nhslogin-mock
# and nhslogind; the captured screen must show the URL, the grouped code and a QR code that zbarimg
# decodes to the verification URL, and the sign-in must complete. Then the ASCII QR fallback, and
# what an account that is not linked is told. Captures: $NL_TOP_BUILDDIR/tests/ui/term/console-*.txt
set -u
. "$(dirname "$0")/world.sh"

PLAN=12
tap_plan $PLAN
for t in tmux pamtester stdbuf curl openssl python3; do
	command -v $t >/dev/null 2>&1 || skip_rest "$t is not installed (tools/install-deps)" $PLAN
done
[ -n "$PWLIB" ] && [ -f "$PWLIB" ] || skip_rest "libpam_wrapper is not installed" $PLAN
DECODE=yes
[ -n "$PY" ] && command -v zbarimg >/dev/null 2>&1 || DECODE=
world_init 90

USER_OK=clinician
if world_start $USER_OK; then ok "nhslogin-mock and nhslogind are running"; else
	not_ok "nhslogin-mock and nhslogind are running"
	skip_rest "no world" $PLAN
fi

# console NAME USER MODULE-ARGS: pamtester in an 80x24 terminal, up to the code on the screen.
# Leaves the capture in $ART/console-NAME.txt and the code in $CODE.
console() {
	world_service "nl-$1" "$3"
	CAP=$ART/console-$1.txt
	rm -f "$CAP" "$ART/console-$1.png"
	term_start 80 24 "env $(pam_wrapper_env) stdbuf -oL -eL pamtester -v nl-$1 $2 authenticate; \
echo \"[pamtester exit \$?]\""
	term_wait 'expires in|exit' 20 "$CAP"
	sleep 0.3 # the rest of the message
	term_screen "$CAP.screen"
	WRAPPED=$(term_wrapped)
	term_capture "$CAP"
	CODE=$(code_of "$CAP")
}

# finish: the phone signs in with $CODE; wait for pamtester to end.
finish() {
	[ -n "$CODE" ] && PAGE=$(phone "$CODE")
	term_wait '\[pamtester exit' 20 "$CAP"
}

expect_uri() { echo "$BRIDGE/d?code=$(echo "$CODE" | tr -d -)"; }

decodes() {
	[ -n "$DECODE" ] || return 0
	got=$(qr_decode "$1" "$2") || return 1
	[ "$got" = "$(expect_uri)" ] || { echo "# decoded '$got', expected '$(expect_uri)'"; return 1; }
}
decode_note() { [ -n "$DECODE" ] && echo "$1" || echo "$1 # SKIP zbarimg or python3-pil missing"; }

# 1. UTF-8 QR code, the default.
console utf8 $USER_OK ""
S=$CAP.screen
check "console: the URL, the grouped code and the QR code fit on one 80x24 screen" \
	sh -c 'grep -Fq "open $1/d" "$2" && grep -Eq "enter the code  [A-Z0-9]{4}-[A-Z0-9]{4}\$" "$2" &&
		grep -q "█" "$2" && grep -q "expires in 5 minutes" "$2"' - "$BRIDGE" "$S"
check "console: $(decode_note "the UTF-8 QR code on the screen decodes to the verification URL with the code")" \
	decodes "$S" "$ART/console-utf8.png"
check "console: no line of the message wraps at 80 columns" [ "$WRAPPED" = 0 ]
finish
check "console: the phone signs in and the result page says so" sh -c 'echo "$1" | grep -qi "signed in"' - "$PAGE"
check "console: the terminal says 'signed in' and the login completes" \
	sh -c 'grep -q "^NHS login: signed in" "$1" && grep -q "successfully authenticated" "$1" &&
		grep -q "pamtester exit 0" "$1"' - "$CAP"

# 2. The plain fallback: qr=ascii.
console ascii $USER_OK "qr=ascii"
check "console qr=ascii: the URL, the code and a '#' QR code appear, no UTF-8 blocks" \
	sh -c 'grep -Fq "open $1/d" "$2" && grep -Eq "enter the code  [A-Z0-9]{4}-[A-Z0-9]{4}" "$2" &&
		grep -q "^######" "$2" && ! grep -q "█" "$2"' - "$BRIDGE" "$CAP"
check "console qr=ascii: $(decode_note "the ASCII QR code decodes to the verification URL with the code")" \
	decodes "$CAP" "$ART/console-ascii.png"
finish
check "console qr=ascii: the login completes" grep -q "pamtester exit 0" "$CAP"

# 3. noqr: just the words.
console noqr $USER_OK "noqr"
check "console noqr: the URL and the code, no QR code" \
	sh -c 'grep -Fq "open $1/d" "$2" && grep -Eq "enter the code  [A-Z0-9]{4}-[A-Z0-9]{4}" "$2" &&
		! grep -q "█\|####\|scan" "$2"' - "$BRIDGE" "$CAP"
finish
check "console noqr: the login completes" grep -q "pamtester exit 0" "$CAP"

# 4. The phone's NHS login belongs to another account: the person is told why and what to do.
console mismatch other "noqr"
finish
check "console, another account: says the NHS login is not linked and what to do, and refuses" \
	sh -c 'grep -q "not linked to the account you are signing in to" "$1" && grep -q "Check the user name" "$1" &&
		grep -q "Authentication failure" "$1" && ! grep -q "pamtester exit 0" "$1"' - "$CAP"

for f in "$ART"/console-*.txt.screen; do [ -f "$f" ] && rm -f "$f"; done
[ $TAP_FAILED = 0 ] || { echo "# daemon log:"; diag "$W/daemon.log"; }
exit $TAP_FAILED
