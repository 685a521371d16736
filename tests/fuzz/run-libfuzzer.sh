#!/bin/sh
# Build one fuzz target as a real libFuzzer binary and run it for a while.
#
#   tests/fuzz/run-libfuzzer.sh TARGET SECONDS [BUILDDIR]
#
# TARGET is fuzz_table or fuzz_frame.  BUILDDIR (or $WARREN_BUILDDIR) is a
# configured build tree: fuzz_frame needs the generated
# src/codec/gen_methods.[ch] from it (run `make` there first).  The target is
# compiled straight from the sources with clang and
# -fsanitize=fuzzer,address,undefined, then run on a copy of the committed
# corpus, so the source tree is never written to.
#
# Environment: CLANG (default clang), FUZZ_WORKDIR (default a new temporary
# directory, kept afterwards), FUZZ_MAX_LEN (default 16384), FUZZ_ARGS (more
# libFuzzer flags).  Exit status: 0 if the run ended without a finding, 1 on
# a crash, leak, timeout or sanitizer report (the reproducer's path is
# printed: copy it to tests/fuzz/corpus/TARGET/crash-<what> once fixed),
# 2 on a usage or build error.
set -eu

usage() {
	echo "usage: $0 fuzz_table|fuzz_frame SECONDS [BUILDDIR]" >&2
	exit 2
}

[ $# -ge 2 ] || usage
target=$1
seconds=$2
builddir=${3:-${WARREN_BUILDDIR:-}}
case $target in
fuzz_table|fuzz_frame) ;;
*) usage ;;
esac
case $seconds in
''|*[!0-9]*) usage ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cc=${CLANG:-clang}
max_len=${FUZZ_MAX_LEN:-16384}

srcs="$here/$target.c $here/walk.c $top/src/codec/errors.c
      $top/src/codec/table.c $top/src/codec/frame.c"
incs="-I$here -I$top/src"
if [ "$target" = fuzz_frame ]; then
	if [ -z "$builddir" ] || [ ! -f "$builddir/src/codec/gen_methods.c" ]; then
		echo "$0: fuzz_frame needs BUILDDIR with src/codec/gen_methods.c (run make there)" >&2
		exit 2
	fi
	builddir=$(cd "$builddir" && pwd)
	srcs="$srcs $builddir/src/codec/gen_methods.c"
	incs="$incs -I$builddir/src"
fi

work=${FUZZ_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/warren-$target.XXXXXX")}
mkdir -p "$work/corpus" "$work/artifacts"
bin="$work/$target"

echo "== building $bin"
# shellcheck disable=SC2086 # word splitting of the source lists is wanted
if ! "$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Wall -Wextra -Werror $incs $srcs -o "$bin"; then
	echo "$0: build failed" >&2
	exit 2
fi

cp "$top/tests/fuzz/corpus/$target/"* "$work/corpus/"
seeds=$(find "$work/corpus" -type f | wc -l)

echo "== running $target for ${seconds}s on $seeds seeds in $work/corpus"
log="$work/fuzz.log"
rc=0
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	"$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
	-print_final_stats=1 -artifact_prefix="$work/artifacts/" \
	${FUZZ_ARGS:-} "$work/corpus" >"$log" 2>&1 || rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
final=$(find "$work/corpus" -type f | wc -l)
artifacts=$(ls "$work/artifacts")

echo "== summary: $target"
echo "   time:        ${seconds}s"
echo "   executions:  ${execs:-?} (${speed:-?}/s)"
echo "   coverage:    ${cov:-?} edges"
echo "   corpus:      $seeds seeds -> $final inputs"
echo "   log:         $log"
if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
	echo "== FAILED (libFuzzer exit $rc)"
	for a in $artifacts; do
		echo "   reproducer: $work/artifacts/$a"
	done
	grep -E 'ERROR|SUMMARY|invariant failed|runtime error' "$log" | head -n 20
	exit 1
fi
echo "== no findings"
