#!/usr/bin/env bash
# Instructions per async round trip (two tasks, a current-thread tokio runtime) under callgrind,
# for ringmq and the async channels of benches/asyncs.rs: (I(N2) - I(N1)) / (N2 - N1), so the
# set-up and tear-down cancel out. Needs valgrind. Usage: tools/async_icount.sh [IMPL...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench asyncs --no-run 2>/dev/null
bin=$(ls -t target/release/deps/asyncs-* | grep -v '\.d$' | head -1)
impls=("$@")
[ ${#impls[@]} -eq 0 ] && impls=(ringmq tokio-mpsc flume kanal crossfire)
count() {
    RINGMQ_ASYNC_ICOUNT="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 |
        grep -oP 'Collected : \K[0-9]+'
}
for imp in "${impls[@]}"; do
    a=$(count "$imp" 2000)
    b=$(count "$imp" 12000)
    awk -v i="$imp" -v a="$a" -v b="$b" 'BEGIN { printf "%-12s %8.1f instructions per round trip\n", i, (b - a) / 10000 }'
done
