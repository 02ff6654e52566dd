#!/bin/sh
# tests/install/check-layout.sh: `make install DESTDIR=<tmp>` from the build tree, then what it put
# where: programs, the module (mode, exports), configuration (modes, kept when edited), the unit,
# tmpfiles.d, man pages, examples; then `make uninstall`. TAP. Runs as root or not; cleans up.
set -u

top=${NL_TOP_BUILDDIR:-$(pwd)}
src=${NL_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
make=${MAKE:-make}
# A make of our own, not a job of the make that runs the tests (its jobserver is not ours).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS DESTDIR

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
# check DESCRIPTION COMMAND...: one test point from a command's status.
check() {
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
diag() { sed 's/^/# /' "$@"; }
mode_of() { stat -c %a "$1" 2>/dev/null; }
has_mode() { test -e "$2" && test "$(mode_of "$2")" = "$1"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nl-install.XXXXXX") || {
	echo "Bail out! cannot make a temporary directory"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
root=$tmp/root

if ! (cd "$top" && "$make" -s nl-print-install-dirs) >"$tmp/dirs" 2>"$tmp/dirs.err"; then
	echo "Bail out! cannot read the install directories from $top (is it a configured build tree?)"
	diag "$tmp/dirs.err"
	exit 1
fi
while IFS='=' read -r name value; do
	case $name in
	bindir) bindir=$value ;;
	sbindir) sbindir=$value ;;
	sysconfdir) sysconfdir=$value ;;
	localstatedir) localstatedir=$value ;;
	pamdir) pamdir=$value ;;
	mandir) mandir=$value ;;
	docdir) docdir=$value ;;
	systemdsystemunitdir) unitdir=$value ;;
	tmpfilesdir) tmpfilesdir=$value ;;
	esac
done <"$tmp/dirs"
conf=$root$sysconfdir/nhslogin
envs="mock sandpit integration live local"

# --- first install ---
if (cd "$top" && "$make" install DESTDIR="$root") >"$tmp/install1.log" 2>&1; then
	ok "make install DESTDIR=<tmp> succeeds"
else
	not_ok "make install DESTDIR=<tmp> succeeds"
	tail -n 30 "$tmp/install1.log" | diag
fi

# --- programs and the module ---
module=$root$pamdir/pam_nhslogin.so
check "pam_nhslogin.so is in the PAM directory ($pamdir)" test -f "$module"
check "pam_nhslogin.so has mode 0755" has_mode 755 "$module"
check "no libtool archive beside it (the PAM directory holds modules only)" test ! -e "$root$pamdir/pam_nhslogin.la"
if test -f "$module" && nm -D --defined-only "$module" >"$tmp/nm" 2>&1; then
	awk 'NF >= 3 { print $3 }' "$tmp/nm" | sed 's/@.*//' | sort -u >"$tmp/exports"
	if grep -v '^pam_sm_' "$tmp/exports" >"$tmp/extra"; then
		not_ok "pam_nhslogin.so exports only pam_sm_* symbols"
		diag "$tmp/extra"
	else
		ok "pam_nhslogin.so exports only pam_sm_* symbols"
	fi
	check "pam_nhslogin.so exports pam_sm_authenticate" grep -qx pam_sm_authenticate "$tmp/exports"
else
	not_ok "pam_nhslogin.so exports only pam_sm_* symbols"
	not_ok "pam_nhslogin.so exports pam_sm_authenticate"
fi
check "nhslogind is in sbin ($sbindir), mode 0755" has_mode 755 "$root$sbindir/nhslogind"
check "nhslogin-mock is in bin ($bindir), mode 0755" has_mode 755 "$root$bindir/nhslogin-mock"

# --- configuration ---
check "$sysconfdir/nhslogin has mode 0755" has_mode 755 "$conf"
check "$sysconfdir/nhslogin/environments has mode 0755" has_mode 755 "$conf/environments"
check "$sysconfdir/nhslogin/keys has mode 0700" has_mode 700 "$conf/keys"
for f in nhslogin.conf nhslogin.map.example; do
	check "$f is installed with mode 0644" has_mode 644 "$conf/$f"
done
for e in $envs; do
	check "environments/$e.conf is installed with mode 0644" has_mode 644 "$conf/environments/$e.conf"
done
check "a first install leaves no .dist file" test -z "$(find "$conf" -name '*.dist' 2>/dev/null)"

# --- systemd unit and tmpfiles.d ---
unit=$root$unitdir/nhslogind.service
check "nhslogind.service is in $unitdir" test -f "$unit"
check "nhslogind.service has no @variable@ left" eval "test -f '$unit' && ! grep -q '@[a-z_]*@' '$unit'"
check "nhslogind.service runs $sbindir/nhslogind with $sysconfdir/nhslogin/nhslogin.conf" \
	grep -qxF "ExecStart=$sbindir/nhslogind --config $sysconfdir/nhslogin/nhslogin.conf --foreground" "$unit"
tmpf=$root$tmpfilesdir/nhslogin.conf
check "tmpfiles.d/nhslogin.conf is in $tmpfilesdir" test -f "$tmpf"
check "tmpfiles.d/nhslogin.conf names $localstatedir/lib/nhslogin, no @variable@ left" \
	eval "grep -q '^d $localstatedir/lib/nhslogin 0700 ' '$tmpf' && ! grep -q '@[a-z_]*@' '$tmpf'"

# --- documentation ---
for m in man8/pam_nhslogin.8 man8/nhslogind.8 man5/nhslogin.conf.5 man1/nhslogin-mock.1; do
	check "man page $m is installed" test -f "$root$mandir/$m"
done
for p in common-auth-nhslogin login sshd sudo gdm-password; do
	check "pam.d example $p is installed" test -f "$root$docdir/pam.d-examples/$p"
done

# --- a second install over edited configuration ---
mark="# edited by check-layout.sh"
echo "$mark" >>"$conf/nhslogin.conf" 2>/dev/null
echo "$mark" >>"$conf/environments/sandpit.conf" 2>/dev/null
if (cd "$top" && "$make" install DESTDIR="$root") >"$tmp/install2.log" 2>&1; then
	ok "a second make install succeeds"
else
	not_ok "a second make install succeeds"
	tail -n 30 "$tmp/install2.log" | diag
fi
check "the edited nhslogin.conf is kept" grep -qxF "$mark" "$conf/nhslogin.conf"
check "the edited environments/sandpit.conf is kept" grep -qxF "$mark" "$conf/environments/sandpit.conf"
check "the shipped nhslogin.conf is installed as nhslogin.conf.dist" \
	cmp -s "$src/etc/nhslogin.conf" "$conf/nhslogin.conf.dist"
check "nhslogin.conf.dist has mode 0644" has_mode 644 "$conf/nhslogin.conf.dist"
check "the shipped sandpit.conf is installed as sandpit.conf.dist" \
	cmp -s "$src/etc/environments/sandpit.conf" "$conf/environments/sandpit.conf.dist"
check "an unedited file gets no .dist (live.conf)" test ! -e "$conf/environments/live.conf.dist"
check "make install names the kept files" grep -q "NOTICE: .*nhslogin.conf has local changes" "$tmp/install2.log"

# --- uninstall: everything goes but the edited files ---
if (cd "$top" && "$make" uninstall DESTDIR="$root") >"$tmp/uninstall.log" 2>&1; then
	ok "make uninstall DESTDIR=<tmp> succeeds"
else
	not_ok "make uninstall DESTDIR=<tmp> succeeds"
	tail -n 30 "$tmp/uninstall.log" | diag
fi
(cd "$root" && find . -type f | sort) >"$tmp/left"
printf '%s\n' ".$sysconfdir/nhslogin/environments/sandpit.conf" ".$sysconfdir/nhslogin/nhslogin.conf" |
	sort >"$tmp/expected-left"
if cmp -s "$tmp/left" "$tmp/expected-left"; then
	ok "make uninstall removes every installed file but the two edited ones"
else
	not_ok "make uninstall removes every installed file but the two edited ones"
	diff "$tmp/expected-left" "$tmp/left" | diag
fi

echo "1..$n"
test "$failed" -eq 0
