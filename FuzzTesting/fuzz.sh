#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer + AddressSanitizer and runs them.
#
# Usage (from anywhere):
#   FuzzTesting/fuzz.sh build                 build every target (one `swift build`, shared work)
#   FuzzTesting/fuzz.sh TARGET [SECONDS]      build every target, then run TARGET (default 60 s)
#   FuzzTesting/fuzz.sh all [SECONDS]         build once, then run each target in turn
#   NO_BUILD=1 FuzzTesting/fuzz.sh ...        skip the build (binaries already in .build/release)
# TARGET: FuzzTranslation, FuzzSMMUCommands, FuzzSMMUv2, FuzzITS, FuzzGICSPI, FuzzMSIX, FuzzDTB, FuzzACPI, FuzzScenarioFile, FuzzScenarioRun, FuzzSnapshot.
#
# The growing corpus goes to corpus-TARGET/ (ignored by git); seeds checked in under
# Corpus/TARGET/ are read too. Crash inputs are written to FailCases/TARGET/: commit them.
# Extra libFuzzer flags can be passed in FUZZ_FLAGS (e.g. FUZZ_FLAGS="-max_len=4096").
set -euo pipefail
cd "$(dirname "$0")"
targets=(FuzzTranslation FuzzSMMUCommands FuzzSMMUv2 FuzzITS FuzzGICSPI FuzzMSIX FuzzDTB FuzzACPI FuzzScenarioFile FuzzScenarioRun FuzzSnapshot)
what=${1:?"usage: fuzz.sh build | all | TARGET [SECONDS]"}
seconds=${2:-60}

build() {
  # Building every product in one invocation shares the instrumented Doorbell modules; a
  # per-product build recompiles much of it. -Xswiftc -sanitize=fuzzer alone builds a binary
  # that does nothing, and --sanitize=address beside --sanitize=fuzzer leaves Swift code
  # uninstrumented: both flags are needed exactly like this (FuzzTesting/README.md).
  swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
}

run() {
  local target=$1
  mkdir -p "corpus-$target" "FailCases/$target"
  local seeds=()
  [ -d "Corpus/$target" ] && seeds=("Corpus/$target")
  # Without SWIFT_BACKTRACE=enable=off the Swift runtime's backtracer takes the crash and
  # libFuzzer writes no crash file.
  # shellcheck disable=SC2086
  SWIFT_BACKTRACE=enable=off SWIFT_DETERMINISTIC_HASHING=1 \
    ".build/release/$target" "corpus-$target" ${seeds[@]+"${seeds[@]}"} \
    -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="FailCases/$target/" ${FUZZ_FLAGS:-}
}

[ -n "${NO_BUILD:-}" ] || build
case "$what" in
  build) ;;
  all)
    status=0
    for target in "${targets[@]}"; do
      echo "=== $target (${seconds}s)"
      run "$target" || { echo "=== $target exited with $?"; status=1; }
    done
    exit $status
    ;;
  *)
    [[ " ${targets[*]} " == *" $what "* ]] || { echo "unknown target $what (one of: ${targets[*]})" >&2; exit 64; }
    run "$what"
    ;;
esac
