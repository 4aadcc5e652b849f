#!/usr/bin/env bash
# The loop behind journal/seeded-bugs.sh and nats/seeded-bugs.sh, sourced by them after they set
# `root`, `work`, `target`, `filter`, `package` and `bugs` (entries: name | file | perl
# substitution, which must match exactly once | test binary | test name filter). For each bug:
# copy the tree (tracked and new files), apply the bug, run the test; a caught bug fails it.
caught=0
total=0
for entry in "${bugs[@]}"; do
    IFS='|' read -r name file subst test filter_name <<<"$entry"
    [[ -n "$filter" && ! "$name" =~ $filter ]] && continue
    total=$((total + 1))
    rm -rf "$work/tree" && mkdir -p "$work/tree"
    (cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$work/tree/")
    if ! perl -0pi -e "\$n = ($subst); die \"matched \$n times\\n\" unless \$n == 1" "$work/tree/$file"; then
        echo "SEED FAILED  $name (the substitution did not match once)"
        continue
    fi
    if (cd "$work/tree" && CARGO_TARGET_DIR="$target" timeout 900 \
        cargo test -q -p "$package" --test "$test" -- "$filter_name" >"$work/log" 2>&1); then
        echo "MISSED       $name ($test::$filter_name passed)"
    else
        echo "caught       $name ($test::$filter_name failed)"
        caught=$((caught + 1))
    fi
done
echo "$caught of $total seeded bugs caught"
[[ $caught -eq $total ]]
