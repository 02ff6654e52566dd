#!/bin/sh
# tests/pam/test_module_links.sh: pam_nhslogin.so is loaded into sshd, login, gdm and sudo, so it
# carries the no-network core (libnlcore) and nothing else of ours. Checks the built module's
# DT_NEEDED entries (no libcurl, cjose, libmicrohttpd, libssl, hiredis or ldap), its exported
# symbols (pam_sm_* only), and every symbol it defines against the names of the OIDC and daemon
# libraries (src/oidc, src/daemon). Fails if the module is linked with libnloidc or libnldaemon.
set -u
SO=${NL_TOP_BUILDDIR:-.}/.libs/pam_nhslogin.so
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }

echo "1..4"
for t in readelf nm; do
	if ! command -v $t >/dev/null 2>&1; then
		for i in 1 2 3 4; do echo "ok $i - # SKIP $t is not installed (binutils)"; done
		exit 0
	fi
done
if [ -f "$SO" ]; then ok "the module is built: $SO"; else
	not_ok "the module is built: $SO"
	for i in 2 3 4; do echo "not ok $i - no module"; done
	exit 1
fi

needed=$(readelf -d "$SO" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
bad=
for lib in $needed; do
	case $lib in
	libpam.so.* | libjansson.so.* | libqrencode.so.* | libcrypto.so.* | libc.so.*) ;;
	# The sanitizer runtimes in an --enable-sanitizers build.
	libasan.so.* | libubsan.so.* | libm.so.* | libdl.so.* | libpthread.so.* | libgcc_s.so.*) ;;
	libclang_rt.* | libstdc++.so.*) ;;
	*) bad="$bad $lib" ;;
	esac
done
if [ -z "$bad" ]; then ok "needs only libpam, jansson, qrencode, libcrypto and libc ($needed)"; else
	not_ok "needs only libpam, jansson, qrencode, libcrypto and libc: also$bad"
fi

exported=$(nm -D --defined-only "$SO" | awk '$2 ~ /^[TDBRVWi]$/ {print $3}' | grep -v '^pam_sm_' | tr '\n' ' ')
if [ -z "$exported" ]; then ok "exports pam_sm_* only"; else not_ok "exports pam_sm_* only: also $exported"; fi

# Prefixes of the OIDC library (HTTP, JOSE, OpenID client, ID token rules, mapping) and of the
# daemon (server, workers, flows, device poller, bridge, pages, sign-in, token cache).
foreign=$(nm "$SO" | awk '$2 ~ /^[TtDdBbRr]$/ {print $3}' |
	grep -E '^(nl_http|nl_jose|nl_jws|nl_jwk|nl_jwt|nl_oidc|nl_idtoken|nl_mapping|nl_map_|nl_identity|nl_server|nl_jobs|nl_flows?_|nl_device|nl_bridge|nl_pages?_|nl_signin|nl_tokcache|cjose_|curl_|MHD_)' |
	tr '\n' ' ')
if [ -z "$foreign" ]; then ok "defines no OIDC or daemon code"; else not_ok "defines no OIDC or daemon code: $foreign"; fi
[ $fails -eq 0 ]
