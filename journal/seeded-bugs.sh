#!/usr/bin/env bash
# Shows that the journal's tests can fail: for each seeded bug, copy the tree, apply the bug, run
# the test meant to catch it, and report whether it did (a caught bug is a failing test).
# Usage: bash journal/seeded-bugs.sh [name-regex]. Not part of CI; results are in journal/README.md.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
target="${RINGMQ_MUTANT_TARGET:-$root/target/journal-mutants}"
filter="${1:-}"
trap 'rm -rf "$work"' EXIT

# name | file | perl substitution (must match exactly once) | test binary | test name filter
bugs=(
  "receipt-ahead-of-the-disk|journal/src/stage.rs|s/if end_of_batch \{\n            let count/if end_of_batch \&\& sequence % 2 == 0 {\n            let count/|crash|every_durable_receipt"
  "durable-before-write|journal/src/journal.rs|s/let start = self.end;\n/let start = self.end;\n        self.shared.durable.store(self.next + count, Ordering::Release);\n/|journal|a_reader_racing_the_writer"
  "mid-corruption-taken-for-a-torn-tail|journal/src/format.rs|s/if last && !valid_record_after\(bytes, at, next, max_record\)/if last/|journal|a_damaged_record_in_the_middle"
  "checksum-not-checked|journal/src/format.rs|s/if record_crc\(&rest\[..4\], &rest\[8..16\], &rest\[RECORD_HEADER..end\]\) != crc \{/if false \&\& record_crc(\&rest[..4], \&rest[8..16], \&rest[RECORD_HEADER..end]) != crc {/|journal|a_torn_tail_is_cut_off"
  "torn-tail-not-cut|journal/src/journal.rs|s/file.set_len\(offset\)\n/file.set_len(scan.len)\n/|journal|a_torn_tail_is_cut_off"
  "interval-does-not-wait|journal/src/journal.rs|s/std::thread::sleep\(every - since\);//|journal|the_interval_policy"
  "retry-keeps-the-half-built-batch|journal/src/stage.rs|s/        self.buf.clear\(\);\n        self.count = 0;\n    \}/    }/|journal|a_failed_batch_is_replayed"
)

package=ringmq-journal
# shellcheck source=../tools/seeded-run.sh
source "$root/tools/seeded-run.sh"
