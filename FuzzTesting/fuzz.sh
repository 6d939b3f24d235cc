#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer + AddressSanitizer and runs one of them.
# Usage: FuzzTesting/fuzz.sh TARGET [SECONDS]   (TARGET: FuzzTranslation, FuzzSMMUCommands,
#        FuzzITS, FuzzMSIX, FuzzDTB). Crashes are written to FuzzTesting/FailCases/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?target}
seconds=${2:-60}
swift build -c release --product "$target" --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
mkdir -p "corpus-$target" "FailCases/$target"
seeds=()
[ -d "Corpus/$target" ] && seeds=("Corpus/$target")
SWIFT_BACKTRACE=enable=off SWIFT_DETERMINISTIC_HASHING=1 \
  ".build/release/$target" "corpus-$target" "${seeds[@]}" \
  -max_total_time="$seconds" -artifact_prefix="FailCases/$target/"
