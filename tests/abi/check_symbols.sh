#!/usr/bin/env bash
# Every exported symbol of libazfunc.so starts with azf_ and is in the committed
# manifest, and every manifest entry is exported (curl's symbol manifest test).
# To update after an intended API change: check_symbols.sh LIB MANIFEST --update
set -euo pipefail
lib="$1"
manifest="$2"
actual="$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u)"
if [ "${3:-}" = "--update" ]; then
  printf '%s\n' "$actual" > "$manifest"
  echo "updated $manifest"
  exit 0
fi
bad="$(printf '%s\n' "$actual" | grep -v '^azf_' || true)"
if [ -n "$bad" ]; then
  echo "exported symbols without the azf_ prefix:"; printf '%s\n' "$bad"; exit 1
fi
if ! diff -u "$manifest" <(printf '%s\n' "$actual"); then
  echo "the exported symbols differ from $manifest (lines with + are exported but not listed)"
  exit 1
fi
echo "$(printf '%s\n' "$actual" | wc -l) exported symbols match the manifest"
