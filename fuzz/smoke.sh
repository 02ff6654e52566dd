#!/bin/sh
# fuzz/smoke.sh: run each libFuzzer target for FUZZ_SECONDS on a copy of its seed corpus (and of
# the unit tests' data cases) and report execs/s and the final corpus; exit 1 on any crash, leak,
# timeout or UB report.
# Usage: FUZZ_SECONDS=60 smoke.sh ABS_BUILDDIR ABS_SRCDIR TARGET...
set -u

if [ $# -lt 3 ]; then
	echo "usage: FUZZ_SECONDS=N $0 BUILDDIR SRCDIR TARGET..." >&2
	exit 2
fi
builddir=$1
srcdir=$2
shift 2
seconds=${FUZZ_SECONDS:-60}
case $seconds in
'' | *[!0-9]*)
	echo "fuzz-smoke: FUZZ_SECONDS must be a number of seconds" >&2
	exit 2
	;;
esac

# UBSan only reports and goes on by default: make it a crash libFuzzer notices.
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS ASAN_OPTIONS

# The unit tests' data cases (tests/unit/data) are seeds too, put in the target's input format:
# one corpus of cases, kept in one place, for the unit tests and the fuzz targets.
unit_seeds() {
	data="$srcdir/tests/unit/data"
	case $1 in
	fuzz_jws)
		for f in "$data"/jose/*.jws; do cp "$f" "$2/unit-${f##*/}"; done ;;
	fuzz_jwks) # single keys, as a set of one
		for f in "$data"/jose/*.json; do
			{ printf '{"keys": ['; cat "$f"; printf ']}'; } >"$2/unit-${f##*/}"
		done ;;
	fuzz_config) # first byte even: a main file; odd: an environment file
		for f in "$data"/config/*/nhslogin.conf; do
			{ printf 0; cat "$f"; } >"$2/unit-main-$(basename "$(dirname "$f")")"
		done
		for f in "$data"/config/*/environments/*.conf; do
			{ printf 1; cat "$f"; } >"$2/unit-env-${f##*/}"
		done ;;
	esac
}

failed=
summary="$builddir/fuzz/smoke/summary.txt"
mkdir -p "$builddir/fuzz/smoke"
printf '%-14s %10s %10s %8s %12s %7s %s\n' target seconds execs exec/s corpus cov result >"$summary"

for t in "$@"; do
	bin="$builddir/fuzz/$t"
	work="$builddir/fuzz/smoke/$t"
	seeds="$srcdir/fuzz/corpus/$t"
	rm -rf "$work"
	mkdir -p "$work/corpus" "$work/artifacts"
	if [ -d "$seeds" ]; then
		cp "$seeds"/* "$work/corpus/" 2>/dev/null
	fi
	unit_seeds "$t" "$work/corpus"
	nseeds=$(find "$work/corpus" -type f | wc -l)
	set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-close_fd_mask=3 -artifact_prefix="$work/artifacts/"
	if [ -f "$srcdir/fuzz/$t.dict" ]; then
		set -- "$@" -dict="$srcdir/fuzz/$t.dict"
	fi
	echo "fuzz-smoke: $t: $seconds s from $nseeds seeds ..."
	(cd "$work" && "$bin" "$@" "$work/corpus" >"$work/log" 2>&1)
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
	# The last status line: "#N DONE cov: C ft: F corp: FILES/SIZE lim: ..."
	last=$(grep -E '^#[0-9]+' "$work/log" | tail -n 1)
	cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
	nfiles=$(find "$work/corpus" -type f | wc -l)
	if [ "$rc" -eq 0 ] && ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$work/log"; then
		result=ok
	else
		result="FAILED (exit $rc)"
		failed="$failed $t"
	fi
	printf '%-14s %10s %10s %8s %12s %7s %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" \
		"${nfiles} (${corp:-?})" "${cov:-?}" "$result" >>"$summary"
	if [ "$result" != ok ]; then
		echo "fuzz-smoke: $t FAILED; the end of $work/log:" >&2
		tail -n 60 "$work/log" >&2
		ls -l "$work/artifacts" >&2
	fi
done

echo
echo "corpus = files in the run's corpus (libFuzzer's in-memory corp: files/size); cov = edges"
cat "$summary"
if [ -n "$failed" ]; then
	echo "fuzz-smoke: FAILED:$failed (reproduce with: fuzz/TARGET ARTIFACT)" >&2
	exit 1
fi
echo "fuzz-smoke: all targets ran ${seconds} s without a crash, leak or timeout"
exit 0
