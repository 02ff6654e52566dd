#!/bin/sh
# bench/run.sh: run the benchmarks (from `make bench`, in the build directory) and print one
# table. Each program prints "ROW<TAB>figure<TAB>measured<TAB>baseline<TAB>ratio<TAB>goal<TAB>met<TAB>note"
# lines; everything else they say goes to bench/bench.log. Not a test: it never fails on a time.
# Settings (environment): NL_BENCH_JOSE_SECS (CPU seconds per verifier, default 1.5),
# NL_BENCH_PROMPTS (1000), NL_BENCH_SIGNINS (100), NL_BENCH_FLOWS (10000), NL_BENCH_BUDGET
# (seconds of phones for the capacity run, default 120), NL_BENCH_CLUSTER_SIGNINS (10000).
set -u
top=${NL_TOP_BUILDDIR:-.}
log=$top/bench/bench.log
rows=$top/bench/bench.rows
: >"$log"
: >"$rows"
start=$(date +%s)

# bench_pam loads the module under pam_wrapper with its copy of the test services (tests/services).
pam_env="env LD_PRELOAD=${NL_PAM_WRAPPER_LIB:-} PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$top/tests/services/bench_pam
	UID_WRAPPER_DISABLE_DEEPBIND=1 PAM_WRAPPER_DISABLE_DEEPBIND=1"

run() {
	name=$1
	shift
	echo "bench: $name ..." >&2
	echo "==== $name $*" >>"$log"
	wrap=
	[ "$name" = bench_pam ] && wrap=$pam_env
	if ! $wrap "$top/bench/$name" "$@" 2>>"$log" | grep '^ROW' >>"$rows"; then
		echo "bench: $name did not finish cleanly (see $log)" >&2
	fi
}

run bench_jose "${NL_BENCH_JOSE_SECS:-1.5}"
run bench_pam "${NL_BENCH_PROMPTS:-1000}" "${NL_BENCH_SIGNINS:-100}"
NL_BENCH_BUDGET=${NL_BENCH_BUDGET:-120} run bench_capacity "${NL_BENCH_FLOWS:-10000}"
run bench_cluster "${NL_BENCH_CLUSTER_SIGNINS:-10000}"

end=$(date +%s)
echo
echo "pam_nhslogin benchmarks ($(uname -n), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $((end - start)) s)"
awk -F '\t' '
BEGIN { n = 0; w[1] = length("figure"); w[2] = length("measured"); w[3] = length("baseline");
        w[4] = length("ratio"); w[5] = length("goal"); w[6] = length("met?") }
{ n++; for (i = 2; i <= 8; i++) { c[n, i - 1] = $i; if (i <= 7 && length($i) > w[i - 1]) w[i - 1] = length($i) } }
END {
	fmt = "%-" w[1] "s  %" w[2] "s  %" w[3] "s  %" w[4] "s  %-" w[5] "s  %-" w[6] "s\n"
	printf fmt, "figure", "measured", "baseline", "ratio", "goal", "met?"
	line = ""; for (i = 1; i <= 6; i++) { for (j = 0; j < w[i]; j++) line = line "-"; if (i < 6) line = line "  " }
	print line
	for (r = 1; r <= n; r++) printf fmt, c[r, 1], c[r, 2], c[r, 3], c[r, 4], c[r, 5], c[r, 6]
	print ""
	print "notes:"
	for (r = 1; r <= n; r++) if (c[r, 7] != "") printf "  %s: %s\n", c[r, 1], c[r, 7]
}' "$rows"
echo "(ratio = measured / baseline; details of each run in $log; bench/README.md explains the figures)"
exit 0
