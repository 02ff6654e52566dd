# tests/ui/term/world.sh: sourced by the terminal tests. A whole sign-in world in shell (as in
# tools/demo): nhslogin-mock auto-approving p9, nhslogind with a generated config and client key,
# pam_wrapper services, a curl "phone", a private tmux server, TAP output, a watchdog, and a
# cleanup that stops every process the test started.
#
# Needs: NL_TOP_BUILDDIR (set by make check), NL_PAM_WRAPPER_LIB (or pkg-config pam_wrapper).
# Artefacts (captured panes, QR images) go to $NL_TOP_BUILDDIR/tests/ui/term.

B=${NL_TOP_BUILDDIR:?NL_TOP_BUILDDIR is not set: run through make check}
HERE=$(cd "$(dirname "$0")" && pwd)
ART=$B/tests/ui/term
PWLIB=${NL_PAM_WRAPPER_LIB:-$(pkg-config --libs pam_wrapper 2>/dev/null | tr -d ' ')}
W=
TMUX_SOCK=nl-term-$$-0
TERM_T='nl'
TERM_RUN=0
WORLD_PIDS=
WATCHDOG=
TAP_N=0
TAP_FAILED=0
# What the cleanup runs first (the sshd test removes its user there).
WORLD_CLEANUP_HOOK=:

export LC_ALL=C.UTF-8 LANG=C.UTF-8
unset TMUX

# ---- TAP -------------------------------------------------------------------------------------
tap_plan() { echo "1..$1"; }
ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $*"
}
not_ok() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=1
	echo "not ok $TAP_N - $*"
}
# check DESCRIPTION COMMAND...: one TAP line from a command's exit status.
check() {
	d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
# Skip the rest of the plan: passing lines with a "# SKIP" note, then a clean exit.
skip_rest() {
	why=$1
	while [ "$TAP_N" -lt "$2" ]; do
		TAP_N=$((TAP_N + 1))
		echo "ok $TAP_N # SKIP $why"
	done
	exit 0
}
diag() { sed 's/^/# /' "$@" 2>/dev/null || true; }

# ---- lifetime --------------------------------------------------------------------------------
world_cleanup() {
	trap - EXIT INT TERM HUP
	$WORLD_CLEANUP_HOOK || true
	tmux -L "$TMUX_SOCK" kill-server 2>/dev/null || true
	for p in $WORLD_PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $WORLD_PIDS; do wait "$p" 2>/dev/null || true; done
	if [ -n "$WATCHDOG" ]; then
		kill "$WATCHDOG" 2>/dev/null || true
		wait "$WATCHDOG" 2>/dev/null || true
	fi
	[ -n "$W" ] && rm -rf "$W"
}

# world_init SECONDS: a work dir, the cleanup trap and a watchdog that ends the test in time.
world_init() {
	W=$(mktemp -d /tmp/nl-term.XXXXXX)
	chmod 755 "$W"
	mkdir -p "$ART" "$W/etc/environments" "$W/state" "$W/cache" "$W/run" "$W/pam.d"
	trap 'world_cleanup' EXIT
	trap 'echo "# interrupted"; exit 1' INT HUP
	trap 'echo "not ok - timed out after '"$1"' s"; exit 1' TERM
	main=$$
	(
		trap 'kill $s 2>/dev/null; exit 0' TERM
		sleep "$1" &
		s=$!
		wait $s && kill -TERM "$main" 2>/dev/null
	) &
	WATCHDOG=$!
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# first_line FILE: wait (at most 15 s) for a first line in FILE and print it.
first_line() {
	i=0
	while [ $i -lt 150 ]; do
		if [ -s "$1" ] && head -n1 "$1" | grep -q .; then
			head -n1 "$1"
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# world_start USER [USER2 NHS-NUMBER]...: the mock (approving p9), the config mapping USER to p9's
# NHS number (and each USER2 to its number), nhslogind.
# Sets BRIDGE (http://127.0.0.1:PORT) and CONF (the main config file).
world_start() {
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/client.key" 2>/dev/null || return 1
	chmod 600 "$W/client.key"
	openssl pkey -in "$W/client.key" -pubout -out "$W/client.pub" 2>/dev/null || return 1
	bport=$(free_port)
	BRIDGE=http://127.0.0.1:$bport
	redirect=$BRIDGE/callback
	"$B/nhslogin-mock" --listen 127.0.0.1:0 --auto-approve p9 --client "nl-term:$W/client.pub:$redirect" \
		>"$W/mock.out" 2>"$W/mock.log" &
	WORLD_PIDS="$WORLD_PIDS $!"
	issuer=$(first_line "$W/mock.out") || { diag "$W/mock.log"; return 1; }
	CONF=$W/etc/nhslogin.conf
	cat >"$CONF" <<-CONF
		environment = local
		[daemon]
		socket = $W/run/nhslogind.sock
		state_dir = $W/state
		cache_dir = $W/cache
		[bridge]
		listen = 127.0.0.1:$bport
		[identity]
		claim = nhs_number
		map_file = $W/etc/nhslogin.map
		min_level = P9
		[policy]
		number_matching = ${WORLD_NUMBER_MATCHING:-remote}
	CONF
	cat >"$W/etc/environments/local.conf" <<-CONF
		issuer = $issuer
		client_id = nl-term
		client_key = $W/client.key
		redirect_uri = $redirect
		scope = openid profile
		vtr = ["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"]
		allowed_algs = RS512
	CONF
	echo "$1 9686368973" >"$W/etc/nhslogin.map"
	shift
	while [ $# -ge 2 ]; do
		echo "$1 $2" >>"$W/etc/nhslogin.map"
		shift 2
	done
	chmod 644 "$CONF" "$W/etc/environments/local.conf" "$W/etc/nhslogin.map"
	"$B/nhslogind" --config "$CONF" --foreground >"$W/daemon.out" 2>"$W/daemon.log" &
	WORLD_PIDS="$WORLD_PIDS $!"
	first_line "$W/daemon.out" >/dev/null || { diag "$W/daemon.log"; return 1; }
}

# world_service NAME MODULE-ARGS...: a pam_wrapper service whose auth is pam_nhslogin.so alone.
world_service() { world_service_in "$W/pam.d" "$@"; }

# world_service_in DIR NAME MODULE-ARGS...: the same in another service directory (a program
# with a fixed service name, such as sshd, gets a directory of its own for each set of arguments).
world_service_in() {
	dir=$1
	name=$2
	shift 2
	mkdir -p "$dir"
	{
		echo "auth required $B/.libs/pam_nhslogin.so config=$CONF $*"
		echo "account required pam_permit.so"
		echo "session required pam_permit.so"
		echo "password required pam_deny.so"
	} >"$dir/$name"
	[ -f "$dir/other" ] || echo "auth required pam_deny.so" >"$dir/other"
}

# pam_wrapper_env [DIR]: the environment that makes a program use the services in DIR (by default
# $W/pam.d) instead of /etc/pam.d.
pam_wrapper_env() {
	echo "LD_PRELOAD=$PWLIB PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=${1:-$W/pam.d}"
}

# phone CODE: what a person does on the phone: open /d, type the code, press "Continue to NHS login"
# on the confirmation page, sign in at NHS login (the mock approves p9), land on the result page. A
# browser: the cookie the confirmation page sets goes back with the press and the callback (curl
# keeps a Secure cookie over http on loopback). Prints the result page's heading.
phone() {
	jar=$W/phone.cookies
	page=$(curl -sS -m 10 -b "$jar" -c "$jar" --data-urlencode "code=$1" "$BRIDGE/d") || return 1
	flow=$(echo "$page" | sed -n 's/.*name="flow" value="\([^"]*\)".*/\1/p' | head -n1)
	token=$(echo "$page" | sed -n 's/.*name="token" value="\([^"]*\)".*/\1/p' | head -n1)
	[ -n "$flow" ] && [ -n "$token" ] || return 1
	step=$(curl -sS -m 10 -b "$jar" -c "$jar" -o /dev/null -w '%{http_code} %{redirect_url}' \
		--data "flow=$flow&token=$token&answer=continue" "$BRIDGE/d/confirm") || return 1
	[ "${step%% *}" = 303 ] || [ "${step%% *}" = 302 ] || return 1
	step=$(curl -sS -m 10 -o /dev/null -w '%{http_code} %{redirect_url}' "${step#* }") || return 1
	page=$(curl -sS -m 10 -b "$jar" -c "$jar" "${step#* }") || return 1
	echo "$page" | sed -n 's:.*<h1[^>]*>\(.*\)</h1>.*:\1:p' | head -n1
	# number matching: the number the page asks the person to type at the computer
	echo "$page" | sed -n 's/.*type this number at the computer: \([0-9][0-9]*\)\..*/NUMBER \1/p' | head -n1
}

# The number in what phone printed, or nothing.
number_of() { echo "$1" | sed -n 's/^NUMBER //p'; }

# ---- tmux ------------------------------------------------------------------------------------
# The term_* functions below act on the session $TERM_T of the private server $TMUX_SOCK, named
# exactly ("=NAME:"): a bare name is first looked up as a window of the current session, by prefix,
# and a session "b" would match a window named "bash".

# term_start COLS ROWS COMMAND: a fresh private tmux server with one session ("nl") running
# COMMAND in a UTF-8 locale; the pane stays after COMMAND exits so it can be read.
term_start() {
	tmux -L "$TMUX_SOCK" kill-server 2>/dev/null || true
	TERM_RUN=$((TERM_RUN + 1))
	TMUX_SOCK=nl-term-$$-$TERM_RUN
	term_add nl "$@"
}

# term_add NAME COLS ROWS COMMAND: one more session NAME on the server (started if need be), for
# terminals side by side; it becomes the current one (term_use NAME switches back to it later).
term_add() {
	cat >"$W/tmux.conf" <<-EOF
		set -g remain-on-exit on
		set -g history-limit 10000
		set -g status off
		set -g default-terminal screen
	EOF
	tmux -u -L "$TMUX_SOCK" -f "$W/tmux.conf" new-session -d -s "$1" -x "$2" -y "$3" "$4"
	TERM_T=$1
}

term_use() { TERM_T=$1; }

# term_capture FILE: the whole pane, scrollback included, wrapped lines joined.
term_capture() {
	tmux -L "$TMUX_SOCK" capture-pane -p -J -S - -E - -t "=$TERM_T:" >"$1.tmp" 2>/dev/null || return 1
	# Drop the empty lines below the last line written.
	grep -v '^Pane is dead' "$1.tmp" |
		awk '{ l[NR] = $0; if ($0 != "") last = NR } END { for (i = 1; i <= last; i++) print l[i] }' >"$1"
	rm -f "$1.tmp"
}

# term_screen FILE: only what is on the screen now (no scrollback).
term_screen() { tmux -L "$TMUX_SOCK" capture-pane -p -t "=$TERM_T:" >"$1" 2>/dev/null; }

# term_wrapped: how many screen lines are the terminal's continuation of a line too long to fit.
term_wrapped() {
	a=$(tmux -L "$TMUX_SOCK" capture-pane -p -t "=$TERM_T:" | wc -l)
	b=$(tmux -L "$TMUX_SOCK" capture-pane -p -J -t "=$TERM_T:" | wc -l)
	echo $((a - b))
}

term_keys() { tmux -L "$TMUX_SOCK" send-keys -t "=$TERM_T:" "$@"; }

# term_wait REGEX SECONDS FILE: capture until an (extended) regex matches; FILE keeps the capture.
term_wait() {
	i=0
	n=$(($2 * 5))
	while [ $i -lt $n ]; do
		term_capture "$3" && grep -Eq "$1" "$3" && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# The code the screen shows ("enter the code  ABCD-EFGH").
code_of() { sed -n 's/.*enter the code  \([A-Z0-9]\{4\}-[A-Z0-9]\{4\}\).*/\1/p' "$1" | head -n1; }

# qr_decode CAPTURE PNG: draw the QR block of a capture as a terminal shows it and decode it.
qr_decode() { $PY "$HERE/qrpane.py" "$1" "$2" && zbarimg -q --raw "$2" 2>/dev/null; }

# A Python that has PIL (python3-pil is for the system's python3, maybe not the first on PATH).
PY=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import PIL' 2>/dev/null; then
		PY=$p
		break
	fi
done
