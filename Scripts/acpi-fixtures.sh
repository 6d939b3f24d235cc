#!/usr/bin/env bash
# Regenerates the ACPI fixtures under Tests/Fixtures/acpi/<platform>/ with ACPICA's iasl
# (Debian/Ubuntu: apt-get install acpica-tools), an implementation independent of Doorbell:
#   <table>.source.dsl  iasl data-table source (committed, hand-written or `iasl -T`)
#   <table>.dat         the binary table, compiled by `iasl`
#   <table>.dsl         `iasl -d` of the binary: the oracle the tests compare the reader's dump with
#   <table>.hex         (RMR fixture only) hex bytes for tables iasl cannot compile; length and
#                       checksum are filled in here
# The tests read only .dat and .dsl; they never run iasl.
set -euo pipefail
cd "$(dirname "$0")/../Tests/Fixtures/acpi"
command -v iasl >/dev/null || { echo "iasl not found (apt-get install acpica-tools)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

disassemble() { # <dir> <name>: <dir>/<name>.dat -> <dir>/<name>.dsl, without iasl's dated banner line
  cp "$1/$2.dat" "$work/$2.dat"
  (cd "$work" && iasl -d "$2.dat" >/dev/null 2>&1) || true
  [ -f "$work/$2.dsl" ] || { echo "iasl -d failed on $1/$2.dat" >&2; exit 1; }
  grep -v '^ \* Disassembly of ' "$work/$2.dsl" > "$1/$2.dsl"
  rm -f "$work/$2.dsl" "$work/$2.dat"
}

for source in */*.source.dsl; do
  dir=$(dirname "$source"); name=$(basename "$source" .source.dsl)
  cp "$source" "$work/$name.asl"
  (cd "$work" && iasl "$name.asl" >"$work/log" 2>&1) || { cat "$work/log" >&2; exit 1; }
  mv "$work/$name.aml" "$dir/$name.dat"
  disassemble "$dir" "$name"
  echo "$dir/$name.dat"
done

for hex in */*.hex; do
  dir=$(dirname "$hex"); name=$(basename "$hex" .hex)
  grep -v '^#' "$hex" | xxd -r -p > "$work/$name.raw"
  python3 - "$work/$name.raw" "$dir/$name.dat" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], 'rb').read())
data[4:8] = struct.pack('<I', len(data))
data[9] = 0
data[9] = (-sum(data)) & 0xFF
open(sys.argv[2], 'wb').write(data)
PY
  disassemble "$dir" "$name"
  echo "$dir/$name.dat"
done
