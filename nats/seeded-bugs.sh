#!/usr/bin/env bash
# Shows that the bridge tests can fail: for each seeded bug, copy the tree, apply the bug, run
# the test meant to catch it, and report whether it did (a caught bug is a failing test).
# Usage: bash journal/seeded-bugs.sh [name-regex]. Not part of CI; results are in nats/README.md.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
target="${RINGMQ_MUTANT_TARGET:-$root/target/nats-mutants}"
filter="${1:-}"
trap 'rm -rf "$work"' EXIT

# name | file | perl substitution (must match exactly once) | test binary | test name filter
bugs=(
  "receipt-before-the-ack|nats/src/publisher.rs|s/for \(id, ack\) in acks \{/for (id, ack) in acks.into_iter().take(0) {/|bridge|the_server_restarted"
  "failed-batch-not-resent|nats/src/publisher.rs|s/return Err\(Retry::new\(why\)\);/return Ok(());/|bridge|the_server_restarted"
  "no-message-id|nats/src/publisher.rs|s/\.message_id\(id\);/;/|bridge|a_resend_is_dropped"
  "ack-before-the-stage|nats/src/source.rs|s/if let Err\(e\) = processed.processed_async\(sequence\).await \{/if let Err(e) = std::future::ready(Ok::<(), ringmq::TrackerError>(())).await {/|bridge|two_processes"
  "cluster-list-as-one-address|nats/src/lib.rs|s/\.connect\(servers\),/.connect(url),/|bridge|a_three_server_cluster"
)

package=ringmq-nats
# shellcheck source=../tools/seeded-run.sh
source "$root/tools/seeded-run.sh"
