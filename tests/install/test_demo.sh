#!/bin/sh
# tests/install/test_demo.sh: the README's first command works. Runs tools/demo (a whole sign-in:
# nhslogin-mock, nhslogind, pamtester under pam_wrapper with the real module, the phone over HTTP)
# on this build tree, and tools/demo --help. SKIP with the reason when pamtester or pam_wrapper
# is missing.
set -u
top=${NL_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${NL_TOP_BUILDDIR:-$(pwd)}
# A make of our own, not a job of the make that runs the tests.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS
echo "1..3"
if sh "$top/tools/demo" --help | grep -q '^usage: tools/demo' &&
	sh "$top/tools/check" --help | grep -q 'whole test suite'; then
	echo "ok 1 - tools/demo --help and tools/check --help print their usage (and run nothing)"
else
	echo "not ok 1 - tools/demo --help and tools/check --help print their usage (and run nothing)"
fi
for t in pamtester curl python3 openssl; do
	if ! command -v $t >/dev/null 2>&1; then
		echo "ok 2 - # SKIP $t is not installed (tools/install-deps)"
		echo "ok 3 - # SKIP $t is not installed (tools/install-deps)"
		exit 0
	fi
done
if ! pkg-config --exists pam_wrapper 2>/dev/null; then
	echo "ok 2 - # SKIP pam_wrapper is not installed (tools/install-deps)"
	echo "ok 3 - # SKIP pam_wrapper is not installed (tools/install-deps)"
	exit 0
fi
log=$build/tests/install/demo.log
mkdir -p "$build/tests/install"
NL_BUILD_DIR=$build timeout 120 sh "$top/tools/demo" >"$log" 2>&1
rc=$?
sed 's/\x1b\[[0-9;]*m//g; s/^/# /' "$log"
if [ $rc -eq 0 ]; then echo "ok 2 - tools/demo signs in (exit 0)"; else echo "not ok 2 - tools/demo signs in (exit $rc)"; fi
if grep -q "Signed in: pam_authenticate returned PAM_SUCCESS" "$log"; then
	echo "ok 3 - tools/demo reports PAM_SUCCESS"
else
	echo "not ok 3 - tools/demo reports PAM_SUCCESS"
fi
