#!/bin/sh
# tests/ui/browser/run.sh: the phone pages in headless Chromium (phone.test.mjs), from the build tree.
# Installs the pinned playwright-core (npm ci, no browser download) into a work directory of the build
# tree, runs the test there (TAP), and keeps the screenshots in tests/ui/browser/shots/ of the build
# tree. A passing, skipped line when node, npm or Debian's chromium is missing. 2 minutes at most.
set -u

src=${NL_TOP_SRCDIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
top=${NL_TOP_BUILDDIR:-$(pwd)}
chromium=${NL_CHROMIUM:-/usr/bin/chromium}
here=$src/tests/ui/browser
work=$top/tests/ui/browser/work

skip() {
	echo "1..1"
	echo "ok 1 - the phone pages in a browser # SKIP skipped: $*"
	exit 0
}

command -v node >/dev/null 2>&1 || skip "node is not installed (apt-get install nodejs)"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (apt-get install npm)"
[ -x "$chromium" ] || skip "$chromium is not installed (apt-get install chromium)"
command -v openssl >/dev/null 2>&1 || skip "openssl is not installed"
if [ ! -x "$top/nhslogind" ] || [ ! -x "$top/nhslogin-mock" ]; then
	echo "Bail out! $top/nhslogind or $top/nhslogin-mock is not built"
	exit 1
fi

# node_modules lives in the build tree only, and only while the test runs (npm ci makes it anew
# each time from npm's cache), so that `make distcheck` finds a clean tree.
mkdir -p "$work" "$top/tests/ui/browser/shots" || exit 1
cleanup() { rm -rf "$work/node_modules"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
for f in package.json package-lock.json phone.test.mjs; do
	rm -f "$work/$f"
	cp "$here/$f" "$work/$f" || exit 1
	chmod u+w "$work/$f"
done
cd "$work" || exit 1
npm_ci() {
	t=$1
	shift
	timeout -k 5 "$t" npm ci --ignore-scripts --no-audit --no-fund --loglevel=error "$@"
}
if ! npm_ci 60 --offline >npm.log 2>&1 && ! npm_ci 120 >>npm.log 2>&1; then
	sed 's/^/# /' npm.log
	skip "playwright-core could not be installed with npm ci (no network and nothing in npm's cache)"
fi

# phone.test.mjs stops itself after 90 s; this is the backstop (timeout signals its process group).
NL_SHOTS_DIR=$top/tests/ui/browser/shots NL_CHROMIUM=$chromium NL_TOP_BUILDDIR=$top \
	timeout -k 5 110 node phone.test.mjs
