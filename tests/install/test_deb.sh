#!/bin/sh
# tests/install/test_deb.sh: the Debian packages as a sysadmin meets them. Builds them with
# tools/build-deb (dpkg-buildpackage, then lintian: no errors or warnings), installs them with dpkg
# into a throwaway root (dpkg --root, maintainer scripts run chrootless with DPKG_ROOT), then
# checks the installed paths and modes, the pam-auth-update profile (off by default; once enabled,
# NHS login first with the break-glass password and module_unknown handled), an upgrade over an
# edited conffile, the removal of the module from the PAM stack, and a clean purge.
# Root only (dpkg --root and chown); SKIP with the reason otherwise. Artefacts: tests/install/deb/.
set -u
PLAN=16
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else not_ok "$d"; fi; }
skip_rest() {
	while [ $n -lt $PLAN ]; do n=$((n + 1)); echo "ok $n - # SKIP $1"; done
	exit 0
}
echo "1..$PLAN"
[ "$(id -u)" = 0 ] || skip_rest "not root: dpkg --root and the packages' chown need root"
for t in dpkg-buildpackage dh lintian pam-auth-update; do
	command -v $t >/dev/null 2>&1 || skip_rest "$t is not installed (tools/install-deps)"
done
[ -f /usr/share/pam-configs/unix ] && [ -f /usr/share/pam/common-auth ] && [ -f /etc/debconf.conf ] ||
	skip_rest "libpam-runtime's profiles and templates or debconf.conf are missing"

top=${NL_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
art=${NL_TOP_BUILDDIR:-.}/tests/install/deb
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
# NL_DEB_REUSE=1 reuses packages already in $art (when working on this test alone).
if [ "${NL_DEB_REUSE:-}" = 1 ] && ls "$art"/nhslogind_*.deb >/dev/null 2>&1 && [ -f "$art/lintian.log" ] &&
	! grep -qE '^[EW]: ' "$art/lintian.log"; then
	ok "the packages build with dpkg-buildpackage and lintian reports no error or warning (reused)"
elif "$top/tools/build-deb" "$art" >"$art.log" 2>&1; then
	ok "the packages build with dpkg-buildpackage and lintian reports no error or warning"
else
	sed 's/^/# /' "$art.log"
	not_ok "the packages build with dpkg-buildpackage and lintian reports no error or warning"
	skip_rest "no packages"
fi
sed -n 's/^/# lintian: /p' "$art/lintian.log"
debs=$(ls "$art"/libpam-nhslogin_*.deb "$art"/nhslogind_*.deb "$art"/nhslogin-mock_*.deb 2>/dev/null)
check "three packages: libpam-nhslogin, nhslogind, nhslogin-mock" test "$(echo "$debs" | wc -l)" = 3

root=$(mktemp -d "${TMPDIR:-/tmp}/nl-deb-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc/pam.d" \
	"$root/usr/share/pam-configs"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
# The throwaway root has what every Debian system has for pam-auth-update: libpam-runtime's
# profile for pam_unix and debconf's configuration and database directory.
cp /usr/share/pam-configs/unix "$root/usr/share/pam-configs/"
mkdir -p "$root/usr/share/pam" "$root/var/lib/pam"
for f in auth account password session session-noninteractive; do
	cp /usr/share/pam/common-$f /usr/share/pam/common-$f.md5sums "$root/usr/share/pam/"
done
# As libpam-runtime's postinst does on its first install.
pam-auth-update --root "$root" --package --force >"$art/pam-auth-update.log" 2>&1
cp /etc/debconf.conf "$root/etc/"
mkdir -p "$root/var/cache/debconf"
dpkg_root() {
	dpkg --root="$root" --force-script-chrootless --force-depends --force-not-root \
		--log=/dev/null "$@"
}
# shellcheck disable=SC2086
if dpkg_root -i $debs >"$art/install.log" 2>&1; then ok "dpkg installs the three packages into a throwaway root"; else
	sed 's/^/# /' "$art/install.log"
	not_ok "dpkg installs the three packages into a throwaway root"
fi

check "the module is in Debian's multiarch PAM directory (/usr/lib/$ma/security)" \
	test -f "$root/usr/lib/$ma/security/pam_nhslogin.so"
check "nhslogind and nhsloginctl in /usr/sbin, nhslogin-mock in /usr/bin" \
	test -x "$root/usr/sbin/nhslogind" -a -x "$root/usr/sbin/nhsloginctl" -a -x "$root/usr/bin/nhslogin-mock"
check "the unit (paths /usr/sbin and /etc) and the tmpfiles.d entry (/run, /var/lib, /var/cache)" \
	sh -c "grep -q '^ExecStart=/usr/sbin/nhslogind --config /etc/nhslogin/nhslogin.conf' '$root/lib/systemd/system/nhslogind.service' &&
		grep -q ' /run/nhslogin ' '$root/usr/lib/tmpfiles.d/nhslogin.conf' &&
		grep -q ' /var/lib/nhslogin ' '$root/usr/lib/tmpfiles.d/nhslogin.conf' &&
		grep -q ' /var/cache/nhslogin ' '$root/usr/lib/tmpfiles.d/nhslogin.conf'"
check "the map file is made from the example, 0600 root, and keys/ is 0700" \
	sh -c "test \"\$(stat -c '%a %U' '$root/etc/nhslogin/nhslogin.map')\" = '600 root' &&
		test \"\$(stat -c '%a' '$root/etc/nhslogin/keys')\" = 700"
check "the unit is enabled at install but not started (it waits for the configuration)" \
	sh -c "test -L '$root/etc/systemd/system/multi-user.target.wants/nhslogind.service' &&
		! grep -q 'deb-systemd-invoke.*start' '$root/var/lib/dpkg/info/nhslogind.postinst'"
check "the configuration files are conffiles of nhslogind" \
	sh -c "grep -qx /etc/nhslogin/nhslogin.conf '$root/var/lib/dpkg/info/nhslogind.conffiles' &&
		grep -qx /etc/nhslogin/environments/live.conf '$root/var/lib/dpkg/info/nhslogind.conffiles'"

auth=$root/etc/pam.d/common-auth
check "installed, the profile is off: common-auth has pam_unix and no pam_nhslogin" \
	sh -c "grep -q pam_unix.so '$auth' && ! grep -q pam_nhslogin '$auth'"
pam-auth-update --root "$root" --enable nhslogin >"$art/enable.log" 2>&1
sed -n 's/^/# common-auth: /p' "$auth"
# NHS login first: success jumps over pam_unix and pam_deny; unavailable, module missing or "not
# for this account" fall through to the password; anything else (declined, wrong account) dies.
nl_line=$(grep -n 'pam_nhslogin.so' "$auth" | head -1)
unix_line=$(grep -n 'pam_unix.so' "$auth" | head -1)
check "enabled: NHS login comes first, success skips the password" \
	sh -c "echo '$nl_line' | grep -q 'success=2 ' && test ${nl_line%%:*} -lt ${unix_line%%:*}"
check "enabled: authinfo_unavail and module_unknown fall through to pam_unix (break-glass), others die" \
	sh -c "echo '$nl_line' | grep -q 'authinfo_unavail=ignore' && echo '$nl_line' | grep -q 'module_unknown=ignore' &&
		echo '$nl_line' | grep -q 'default=die'"

echo "# an administrator's edit" >>"$root/etc/nhslogin/nhslogin.conf"
# shellcheck disable=SC2086
dpkg_root --force-confold -i $debs >"$art/upgrade.log" 2>&1
check "reinstalling keeps the edited nhslogin.conf" grep -q "an administrator's edit" "$root/etc/nhslogin/nhslogin.conf"

dpkg_root -r libpam-nhslogin >"$art/remove.log" 2>&1
check "removing libpam-nhslogin takes pam_nhslogin out of common-auth and removes the module" \
	sh -c "! grep -q pam_nhslogin '$auth' && grep -q pam_unix.so '$auth' &&
		! test -e '$root/usr/lib/$ma/security/pam_nhslogin.so'"
dpkg_root -P nhslogind nhslogin-mock >"$art/purge.log" 2>&1
check "purging nhslogind removes /etc/nhslogin (map file included) and the binaries" \
	sh -c "! test -e '$root/etc/nhslogin' && ! test -e '$root/usr/sbin/nhslogind'"
check "purged: dpkg knows no package of ours" \
	sh -c "! grep -q '^Package: \(nhslogind\|nhslogin-mock\)' '$root/var/lib/dpkg/status' ||
		! grep -A1 -E '^Package: (nhslogind|nhslogin-mock)' '$root/var/lib/dpkg/status' | grep -q 'install ok'"
[ $n -eq $PLAN ] || { echo "not ok - plan mismatch ($n of $PLAN)"; exit 1; }
[ $fails -eq 0 ]
