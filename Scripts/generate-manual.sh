#!/usr/bin/env bash
# Regenerates Documentation/doorbell.1 with swift-argument-parser's generate-manual plugin
# (one page holding every subcommand). Run after changing a command's help; a test checks the
# page names every subcommand.
set -euo pipefail
cd "$(dirname "$0")/.."
swift package --allow-writing-to-package-directory generate-manual --configuration debug \
  --date "$(git log -1 --format=%cs)" --authors "Doorbell developers"
cp .build/plugins/GenerateManual/outputs/doorbell/doorbell.1 Documentation/doorbell.1
echo "wrote Documentation/doorbell.1 (view with: man -l Documentation/doorbell.1)"
