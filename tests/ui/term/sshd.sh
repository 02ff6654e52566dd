# tests/ui/term/sshd.sh: sourced after world.sh by the sshd terminal tests. Local test users, private
# sshd instances on free loopback ports under pam_wrapper (each with its own "sshd" PAM service: the
# real pam_nhslogin.so with the arguments given), and ssh logins in tmux. Root only.

SSHD=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)
SSHD_USERS=
SSHD_USER=
SSHD_PORT=
SSHD_RUNDIR_HELD=
# sshd's privilege separation needs its empty directory /run/sshd. Tests that run at once share it:
# each holds a mark in $SSHD_MARKS while it runs; the last to finish removes the directory if one of
# them made it ("made"), so a host's own /run/sshd stays; $SSHD_MARKS.lock serialises the two steps.
SSHD_MARKS=/run/nl-term-sshd

# sshd_require PLAN: skip the whole plan unless this is root with sshd and the tools installed.
sshd_require() {
	[ "$(id -u)" = 0 ] || skip_rest "not root: the test adds a local user for sshd" "$1"
	[ -x "$SSHD" ] || skip_rest "sshd is not installed (openssh-server; tools/install-deps)" "$1"
	for t in tmux ssh ssh-keygen useradd userdel curl openssl python3 flock; do
		command -v $t >/dev/null 2>&1 || skip_rest "$t is not installed (tools/install-deps)" "$1"
	done
	[ -n "$PWLIB" ] && [ -f "$PWLIB" ] || skip_rest "libpam_wrapper is not installed" "$1"
}

sshd_rundir_hold() {
	(
		flock 9
		mkdir -p "$SSHD_MARKS" && : >"$SSHD_MARKS/$$" || exit 1
		[ -d /run/sshd ] || { mkdir -m 755 /run/sshd && : >"$SSHD_MARKS/made"; }
	) 9>"$SSHD_MARKS.lock" && SSHD_RUNDIR_HELD=yes
}

sshd_rundir_release() {
	[ -n "$SSHD_RUNDIR_HELD" ] || return 0
	(
		flock 9
		rm -f "$SSHD_MARKS/$$"
		others=
		for m in "$SSHD_MARKS"/*; do
			[ -e "$m" ] && [ "${m##*/}" != made ] && others=yes
		done
		if [ -z "$others" ]; then
			[ -f "$SSHD_MARKS/made" ] && rmdir /run/sshd 2>/dev/null
			rm -rf "$SSHD_MARKS" "$SSHD_MARKS.lock"
		fi
	) 9>"$SSHD_MARKS.lock"
}

sshd_cleanup() {
	for u in $SSHD_USERS; do userdel "$u" >/dev/null 2>&1 || true; done
	sshd_rundir_release || true
}

# sshd_world PLAN USER [USER2 NHS-NUMBER]...: the users (no home of their own: the work directory,
# removed at the end, serves; userdel at cleanup), the world of world_start with USER mapped to the
# mock's p9 and each USER2 to its number, sshd's run directory and a host key. Skips PLAN when a
# user cannot be added; reports "not ok" and skips the rest when the world does not start.
sshd_world() {
	plan=$1
	shift
	WORLD_CLEANUP_HOOK=sshd_cleanup
	SSHD_USER=$1
	n=0
	for a in "$@"; do
		# the arguments' users: the first, then every other one
		if [ $n = 0 ] || [ $((n % 2)) = 1 ]; then
			useradd -M -d "$W" -s /bin/sh "$a" >/dev/null 2>&1 || skip_rest "useradd $a failed" "$plan"
			SSHD_USERS="$SSHD_USERS $a"
		fi
		n=$((n + 1))
	done
	world_start "$@" || { not_ok "nhslogin-mock and nhslogind are running"; skip_rest "no world" "$plan"; }
	sshd_rundir_hold || skip_rest "cannot make /run/sshd" "$plan"
	ssh-keygen -q -t ed25519 -N '' -f "$W/hostkey" || skip_rest "ssh-keygen failed" "$plan"
}

# sshd_start NAME GRACE MODULE-ARGS...: an sshd instance NAME, keyboard-interactive only, for the
# users added, with LoginGraceTime GRACE and pam_nhslogin.so MODULE-ARGS as its "sshd" service;
# waits (10 s at most) until it listens. Sets SSHD_PORT; its log is $W/sshd-NAME.log.
sshd_start() {
	d=$W/sshd-$1
	log=$W/sshd-$1.log
	grace=$2
	shift 2
	world_service_in "$d/pam.d" sshd "$@"
	SSHD_PORT=$(free_port)
	cat >"$d/sshd_config" <<-EOF
		ListenAddress 127.0.0.1
		Port $SSHD_PORT
		HostKey $W/hostkey
		PidFile $d/sshd.pid
		UsePAM yes
		KbdInteractiveAuthentication yes
		PasswordAuthentication no
		PubkeyAuthentication no
		AuthenticationMethods keyboard-interactive
		LoginGraceTime $grace
		PermitRootLogin no
		AllowUsers$SSHD_USERS
		LogLevel VERBOSE
	EOF
	env $(pam_wrapper_env "$d/pam.d") "$SSHD" -D -e -f "$d/sshd_config" >"$log" 2>&1 &
	WORLD_PIDS="$WORLD_PIDS $!"
	i=0
	until grep -q "Server listening on 127.0.0.1 port $SSHD_PORT" "$log" 2>/dev/null || [ $i -ge 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -q "Server listening on 127.0.0.1 port $SSHD_PORT" "$log" || { diag "$log"; return 1; }
}

# ssh_cmd USER PORT: ssh as a person types it (the client's defaults, NumberOfPasswordPrompts 3
# included; keyboard-interactive only), running "echo LOGGED-IN" once signed in, then its status.
ssh_cmd() {
	echo "ssh -F /dev/null -p $2 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
-o PreferredAuthentications=keyboard-interactive $1@127.0.0.1 echo LOGGED-IN; echo \"[ssh exit \$?]\""
}

# ssh_open SESSION USER PORT: ssh_cmd in an 80x30 tmux session SESSION beside the others.
ssh_open() { term_add "$1" 80 30 "$(ssh_cmd "$2" "$3")"; }

# login NAME [USER PORT]: ssh in a fresh 80x30 terminal (by default as the first user, to the last
# sshd started), up to the prompt. Leaves the capture in $ART/sshd-NAME.txt ($CAP), the code in $CODE.
login() {
	CAP=$ART/sshd-$1.txt
	rm -f "$CAP" "$ART/sshd-$1.png"
	term_start 80 30 "$(ssh_cmd "${2:-$SSHD_USER}" "${3:-$SSHD_PORT}")"
	term_wait 'Press Enter|ssh exit' 20 "$CAP"
	sleep 0.3
	term_capture "$CAP"
	CODE=$(code_of "$CAP")
}

# codes_in FILE: how many codes a capture shows, each time one was shown.
codes_in() { grep -Ec 'enter the code  [A-Z0-9]{4}-[A-Z0-9]{4}' "$1"; }
