#!/usr/bin/env bash
# Fetches the Debian packages whose photos make the demo catalog (opencv-doc sample
# images, visp-images-data sequences), unpacks them without installing, and builds
# data/demo/ in the Amazon Reviews 2023 layout. Nothing fetched here is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-data/demo}"
cache=".cache/debs"
if [ -f "$out/meta_demo.jsonl" ]; then
  echo "demo data: $out is ready"
  exit 0
fi
mkdir -p "$cache/root"
packages=(opencv-doc visp-images-data)
for pkg in "${packages[@]}"; do
  if ! ls "$cache"/"${pkg}"_*.deb >/dev/null 2>&1; then
    (cd "$cache" && apt-get download "$pkg" 2>/dev/null) || {
      echo "demo data: refreshing the package lists to fetch $pkg" >&2
      apt-get update -qq
      (cd "$cache" && apt-get download "$pkg")
    }
  fi
  dpkg-deb -x "$cache"/"${pkg}"_*.deb "$cache/root"
done
npx tsx scripts/build-demo-catalog.ts "$cache/root" "$out"
