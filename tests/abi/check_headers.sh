#!/usr/bin/env bash
# Every public header compiles alone as C99 and as C++, with -pedantic -Werror.
set -euo pipefail
inc="$1"
cc="${CC:-cc}"
cxx="${CXX:-c++}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
while IFS= read -r h; do
  rel="${h#"$inc"/}"
  printf '#include <%s>\nint azf_header_test_dummy;\n' "$rel" > "$tmp/t.c"
  cp "$tmp/t.c" "$tmp/t.cpp"
  for lang in c cpp; do
    n=$((n + 1))
    if [ "$lang" = c ]; then
      cmd=("$cc" -std=c99 -Wall -Wextra -pedantic -Werror -DAZF_EXPERIMENTAL -I"$inc" -c "$tmp/t.c" -o "$tmp/t.o")
    else
      cmd=("$cxx" -std=c++11 -Wall -Wextra -pedantic -Werror -DAZF_EXPERIMENTAL -I"$inc" -c "$tmp/t.cpp" -o "$tmp/t.o")
    fi
    if ! "${cmd[@]}" 2> "$tmp/err"; then
      echo "FAIL: $rel as $lang"; cat "$tmp/err"; fail=$((fail + 1))
    fi
  done
done < <(find "$inc" -name '*.h' | sort)
echo "$n header compilations, $fail failed"
[ "$fail" -eq 0 ]
