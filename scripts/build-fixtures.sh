#!/usr/bin/env bash
# Compiles the FDT fixtures test/fixtures/fdt/NAME.dts into NAME.dtb with dtc.
#   build-fixtures.sh              regenerate deep.dts and wide.dts, compile all
#                                  (and basic.dts again as basic-v2/-v3/-v16.dtb)
#   build-fixtures.sh --check      compile into a temporary folder and fail if any
#                                  committed .dtb or generated .dts differs
set -euo pipefail
cd "$(dirname "$0")/.."
dir=test/fixtures/fdt
command -v dtc >/dev/null || { echo "build-fixtures: dtc is missing (apt-get install device-tree-compiler)" >&2; exit 1; }

# A chain of 40 nested nodes, each with a property at its depth.
gen_deep() {
  echo '/dts-v1/;'
  echo ''
  echo '/ {'
  echo '	compatible = "livekexec,deep";'
  local i pad=$'\t'
  for ((i = 1; i <= 40; i++)); do
    echo "${pad}level${i} {"
    pad+=$'\t'
    echo "${pad}depth = <${i}>;"
  done
  for ((i = 40; i >= 1; i--)); do
    pad=${pad%?}
    echo "${pad}};"
  done
  echo '};'
}

# 500 sibling nodes under /bus with unit addresses, three properties each.
gen_wide() {
  echo '/dts-v1/;'
  echo ''
  echo '/ {'
  echo '	compatible = "livekexec,wide";'
  echo '	#address-cells = <1>;'
  echo '	#size-cells = <1>;'
  echo ''
  echo '	bus {'
  echo '		#address-cells = <1>;'
  echo '		#size-cells = <1>;'
  echo '		ranges;'
  local i
  for ((i = 0; i < 500; i++)); do
    printf '\n\t\tdev@%x {\n\t\t\treg = <0x%x 0x100>;\n\t\t\tindex = <%d>;\n\t\t\tlabel = "dev%d";\n\t\t};\n' \
      $((i * 0x100)) $((i * 0x100)) "$i" "$i"
  done
  echo '	};'
  echo '};'
}

check=0
[ "${1:-}" = "--check" ] && check=1
out=$dir
if [ $check = 1 ]; then out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi

gen_deep >"$out/deep.dts.gen"
gen_wide >"$out/wide.dts.gen"
status=0
for g in deep wide; do
  if [ $check = 1 ]; then
    cmp -s "$out/$g.dts.gen" "$dir/$g.dts" || { echo "build-fixtures: $dir/$g.dts is stale" >&2; status=1; }
    rm "$out/$g.dts.gen"
  else
    mv "$out/$g.dts.gen" "$dir/$g.dts"
  fi
done

for src in "$dir"/*.dts; do
  name=$(basename "$src" .dts)
  dtc -q -I dts -O dtb -o "$out/$name.dtb" "$src"
  if [ $check = 1 ]; then
    cmp -s "$out/$name.dtb" "$dir/$name.dtb" || { echo "build-fixtures: $dir/$name.dtb differs from dtc's output" >&2; status=1; }
  fi
done
# Old formats of the same tree (v2, v3: full-path names, 8-aligned long values; v16: no size_dt_struct).
for v in 2 3 16; do
  dtc -q -I dts -O dtb -V "$v" -o "$out/basic-v$v.dtb" "$dir/basic.dts"
  if [ $check = 1 ]; then
    cmp -s "$out/basic-v$v.dtb" "$dir/basic-v$v.dtb" || { echo "build-fixtures: $dir/basic-v$v.dtb differs from dtc's output" >&2; status=1; }
  fi
done
exit $status
