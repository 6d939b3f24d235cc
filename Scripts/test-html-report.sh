#!/usr/bin/env bash
# Opens `doorbell report`'s HTML in a real browser (Debian's chromium, headless) and checks what
# it shows: the page loads without a script error, the matrix has every strategy × scenario
# cell, failing cells are marked, and a screenshot of the seed matrix with legacy's failing cell
# open shows the failing layer drawn in the report's failure red (#c62828).
# Needs: a built `doorbell` (swift build) and chromium. Without chromium it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$browser" ]]; then
  echo "test-html-report: SKIPPED — no chromium on this machine (apt-get install chromium)"
  exit 0
fi
bin="$(swift build --show-bin-path)/doorbell"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
flags=(--headless=new --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile")

"$bin" report --out "$work/all.html" > /dev/null
"$bin" report --scenario seed --out "$work/seed.html" > /dev/null

fail() { echo "test-html-report: FAILED — $*"; exit 1; }

dom="$(timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$work/all.html" 2> "$work/all.log")"
grep -q 'data-ready="1"' <<< "$dom" || fail "the page's script did not run to the end"
grep -q '<div id="errors" hidden=""></div>' <<< "$dom" || fail "script errors: $(grep -o '<div id="errors".*</div>' <<< "$dom" | head -c 400)"
! grep -q "Uncaught" "$work/all.log" || fail "console: $(grep Uncaught "$work/all.log" | head -3)"
cells="$(grep -o 'data-cells="[0-9]*"' <<< "$dom" | grep -o '[0-9]*')"
scenarios="$("$bin" compare --format json | grep -c '"summary"')"
[[ "$cells" == "$((scenarios * 6))" ]] || fail "expected $((scenarios * 6)) cells, the browser counted $cells"
failed="$(grep -o 'data-failed="[0-9]*"' <<< "$dom" | grep -o '[0-9]*')"
[[ "$failed" -gt 0 ]] || fail "no failing cell marked"
grep -q 'id="cell-seed-legacy" class="cell failed"' <<< "$dom" || fail "seed × legacy is not marked failed"

timeout 120 "$browser" "${flags[@]}" --window-size=1400,700 --screenshot="$work/seed.png" "file://$work/seed.html#cell-seed-legacy" 2> /dev/null > /dev/null
[[ -s "$work/seed.png" ]] || fail "no screenshot"
opened="$(timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$work/seed.html#cell-seed-legacy" 2> /dev/null | grep -o 'data-open="[0-9]*"' | grep -o '[0-9]*')"
[[ "$opened" == "1" ]] || fail "the legacy cell did not open (data-open=$opened)"
python3 - "$work/seed.png" <<'PY' || fail "the screenshot shows no failing layer in #c62828"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
pos, chunks, width, height, ctype = 8, b"", 0, 0, 0
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        chunks += body
    pos += 12 + length
raw = zlib.decompress(chunks)
bpp = 4 if ctype == 6 else 3
stride = width * bpp
rows, prev, red = [], bytearray(stride), 0
i = 0
for _ in range(height):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        if abs(line[x] - 0xC6) <= 6 and abs(line[x + 1] - 0x28) <= 6 and abs(line[x + 2] - 0x28) <= 6:
            red += 1
    prev = line
print(f"test-html-report: {red} pixels of the failure red in the screenshot")
sys.exit(0 if red > 1000 else 1)
PY
echo "test-html-report: OK — $cells cells ($failed failing) in chromium $("$browser" --version 2>/dev/null | grep -o '[0-9.]*' | head -1), no script errors, failing layer drawn"
