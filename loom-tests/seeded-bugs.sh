#!/usr/bin/env bash
# Shows that each loom model can fail: for each seeded bug (an ordering weakened, or the step a
# model guards removed), copy the tree, apply the bug, run the model meant to catch it, and report
# whether it did. Usage: bash loom-tests/seeded-bugs.sh [name-regex]. Takes a while (each bug
# rebuilds the crate); not part of CI. Results are listed in loom-tests/README.md.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
target="${RINGMQ_MUTANT_TARGET:-$root/target/loom-mutants}"
filter="${1:-}"
trap 'rm -rf "$work"' EXIT

# name | file | perl substitution (must match exactly once; no '|' in it: it splits entries) | model
bugs=(
  "sequence-store-relaxed|src/protocol/sequence.rs|s/self.0.store\(value, Ordering::Release\)/self.0.store(value, Ordering::Relaxed)/|single_producer_wrap_never_overwrites"
  "single-producer-no-wrap-check|src/protocol/sequencer/single.rs|s/if last > this.line.limit.load\(Ordering::Relaxed\) \{/if false \&\& last > this.line.limit.load(Ordering::Relaxed) {/|single_producer_wrap_never_overwrites"
  "gating-reads-first-consumer-only|src/protocol/sequence.rs|s/sequences.iter\(\).fold/sequences.iter().take(1).fold/|multicast_wrap_waits_for_every_gating_consumer"
  "availability-store-relaxed|src/protocol/sequencer/multi.rs|s/this.entry\(s\).store\(Lookup::stamp\(s\), Ordering::Release\)/this.entry(s).store(Lookup::stamp(s), Ordering::Relaxed)/|multi_producer_availability_and_per_producer_order"
  "consumer-reads-one-past-published|src/protocol/sequencer/multi.rs|s/            s \+= 1;\n        \}\n        s - 1/            s += 1;\n        }\n        s.min(end - 1)/|multi_producer_availability_and_per_producer_order"
  "multi-producer-no-room-wait|src/protocol/sequencer/multi.rs|s/if wrap > min \{\n            min = wait_for_room/if false {\n            min = wait_for_room/|multi_producer_availability_and_per_producer_order"
  "try-claim-no-room-check|src/protocol/sequencer/multi.rs|s/if wrap > min \{\n            min = wait_for_room/if false {\n            min = wait_for_room/|try_publish_is_full_or_delivered_never_overwrites"
  "timed-claim-no-room-check|src/protocol/sequencer/multi.rs|s/if wrap > min \{\n            min = wait_for_room/if false {\n            min = wait_for_room/|timed_publish_claims_with_cas_and_waits_for_room"
  "batch-publishes-first-slot-only|src/protocol/sequencer/single.rs|s/fn publish\(&self, _lo: i64, hi: i64\) \{\n        self.cursor.set\(hi\);/fn publish(\&self, lo: i64, _hi: i64) {\n        self.cursor.set(lo);/|batch_publish_wraps_and_publishes_whole_batches"
  "multi-batch-publishes-first-slot-only|src/protocol/sequencer/multi.rs|s/            if s == hi \{\n                break;/            if s >= lo {\n                break;/|multi_producer_batch_publish"
  "downstream-ignores-upstream|src/protocol/barrier.rs|s/if self.upstream.is_empty\(\) \{/if true {/|pipeline_stage_two_sees_stage_one_writes"
  "join-waits-for-first-branch-only|src/protocol/barrier.rs|s/minimum\(&self.upstream, i64::MAX\)/minimum(\&self.upstream[..1], i64::MAX)/|diamond_join_waits_for_both_branches"
  "notify-without-fence|src/protocol/wait.rs|s/fence\(Ordering::SeqCst\);\n        let seen = self.count/let seen = self.count/|blocking_wait_loses_no_wake_up"
  "waiter-sleeps-without-recheck|src/protocol/wait.rs|s/let outcome = if let Some\(v\) = ready\(\) \{/let outcome = if let Some(v) = None::<T> {/|blocking_wait_loses_no_wake_up"
  "close-drains-one-short|src/protocol/sequencer/multi.rs|s/let next = self.words.next.fetch_or\(CLOSED, Ordering::AcqRel\) & !FLAGS;\n        next - 1/let next = self.words.next.fetch_or(CLOSED, Ordering::AcqRel) \& !FLAGS;\n        next - 2/|shutdown_drains_every_publish_that_returned_ok"
  "close-ignores-announced-claim|src/protocol/sequencer/single.rs|s/if cursor >= announced \{/if true {/|shutdown_releases_a_producer_blocked_on_a_full_ring"
  "refused-claim-not-retracted|src/protocol/sequencer/single.rs|s/let refused = (.)e\1 \{\n            this.retract\(local.claimed\);/let refused = \${1}e\${1} {/|shutdown_releases_a_producer_blocked_on_a_full_ring"
  "single-producer-no-light-fence|src/protocol/sequencer/single.rs|s/crate::protocol::fence::light\(\);//|single_producer_publish_racing_shutdown_is_drained_or_refused"
  "close-does-not-poison-the-limit|src/protocol/mod.rs|s/if self.lifecycle.begin_close\(\) \{\n            self.sequencer.refuse\(\);/if self.lifecycle.begin_close() {/|single_producer_publish_racing_shutdown_is_drained_or_refused"
  "no-stage-does-not-poison-the-limit|src/protocol/mod.rs|s/if none \{\n            self.sequencer.refuse\(\);\n        \}//|a_refusal_racing_the_clearing_of_an_earlier_one_still_refuses_single"
  "limit-restored-without-a-second-look|src/protocol/sequencer/single.rs|s/if !cx.phase\(\).is_open\(\) \{\n                    \/\/ A swap/if false {\n                    \/\/ A swap/|a_refusal_racing_the_clearing_of_an_earlier_one_still_refuses_single"
  "multi-refusal-not-flagged|src/protocol/sequencer/multi.rs|s/self.words.next.fetch_or\(REFUSED, Ordering::Release\);//|a_refusal_racing_the_clearing_of_an_earlier_one_still_refuses_multi"
  "multi-flag-cleared-without-a-second-look|src/protocol/sequencer/multi.rs|s/                    if phase.refuses_claims\(\) \{\n                        this.refuse\(\);/                    if false {\n                        this.refuse();/|a_refusal_racing_the_clearing_of_an_earlier_one_still_refuses_multi"
  "blocked-producer-ignores-stop|src/protocol/sequencer/mod.rs|s/cx.phase\(\).refuses_claims\(\).then_some\(\(\)\)/None::<()>/|handler_panic_releases_producers_and_is_reported"
  "waiting-producer-drains-like-a-claim|src/protocol/sequencer/mod.rs|s/cx.phase\(\).refuses_claims\(\).then_some/cx.phase().is_halted().then_some/|shutdown_refuses_a_multi_producer_waiting_on_an_unpolled_poller"
  "panic-does-not-fail-the-queue|src/consume/batch.rs|s/\.fail\(&self.name, self.worker, sequence\);/.lifecycle.is_running();/|handler_panic_releases_producers_and_is_reported"
  "pool-claim-without-cas|src/consume/pool.rs|s/match self.next.compare_exchange_weak\(\n                first,\n                first \+ n,\n                Ordering::Relaxed,\n                Ordering::Relaxed,\n            \) \{/match { self.next.store(first + n, Ordering::Relaxed); Ok::<i64, i64>(first) } {/|work_pool_claims_each_event_once_and_gates_reuse"
  "pool-worker-releases-claim-early|src/consume/batch.rs|s/now.\n                self.sequence.set\(first - 1\);\n                core.wait.notify/now.\n                self.sequence.set(last);\n                core.wait.notify/|stage_after_a_pool_waits_for_the_worker_that_took_the_event"
  "join-skips-wake-up|src/graph/queue.rs|s/core.wait.notify\(\);\n        self.launch\(index, stage.kind, stage.workers\)/self.launch(index, stage.kind, stage.workers)/|joining_consumer_never_reads_an_overwritten_slot"
  "removed-stage-keeps-gating|src/graph/queue.rs|s/self.wired.change\((.)g\1 g.stages\[index\].gone = true\);/self.wired.graph.lock().unwrap().stages[index].gone = true;/|removed_consumer_stops_gating"
  "hook-panic-taken-for-event|src/consume/batch.rs|s/let hook = at.hook;/let hook = if at.hook == Hook::OnTimeout { Hook::OnEvent } else { at.hook };/|hook_panic_while_waiting_never_passes_an_unpublished_slot"
  "follow-passes-without-waiting|src/consume/batch.rs|s/        let mut next = from;\n        while next <= to \{/        self.sequence.set(from);\n        let mut next = from + 1;\n        while next <= to {/|hook_panic_while_waiting_under_halt_consumer_follows_only_published"
  "no-stage-not-flagged|src/graph/graph.rs|s/core.set_no_stage\(true\);/core.sequencer.refuse();/|dropping_the_last_stage_refuses_producers_instead_of_stranding_them"
  "dropped-poller-keeps-gating|src/graph/graph.rs|s/change\(&core, &graph, (.)g\1 g.stages\[index\].gone = true\)/{ let _ = \&core; graph.lock().unwrap().stages[index].gone = true }/|dropping_a_poller_releases_a_blocked_producer"
  # The sequencer models inside the crate (src/protocol/sequencer/models.rs), at preemption bound 3.
  "lib-single-no-wrap-check|src/protocol/sequencer/single.rs|s/if last > this.line.limit.load\(Ordering::Relaxed\) \{/if false \&\& last > this.line.limit.load(Ordering::Relaxed) {/|protocol::sequencer::models::single_claims_wait_for_the_gating_sequence"
  "lib-scan-one-past-published|src/protocol/sequencer/multi.rs|s/            s \+= 1;\n        \}\n        s - 1/            s += 1;\n        }\n        s.min(end - 1)/|protocol::sequencer::models::multi_scan_never_passes_an_unpublished_claim"
  "lib-availability-store-relaxed|src/protocol/sequencer/multi.rs|s/this.entry\(s\).store\(Lookup::stamp\(s\), Ordering::Release\)/this.entry(s).store(Lookup::stamp(s), Ordering::Relaxed)/|protocol::sequencer::models::multi_scan_never_passes_an_unpublished_claim"
  "lib-close-ignores-announced-claim|src/protocol/sequencer/single.rs|s/if cursor >= announced \{/if true {/|protocol::sequencer::models::single_close_drains_or_refuses_every_publish"
  "lib-single-no-light-fence|src/protocol/sequencer/single.rs|s/crate::protocol::fence::light\(\);//|protocol::sequencer::models::single_close_drains_or_refuses_every_publish"
  "lib-close-drains-one-short|src/protocol/sequencer/multi.rs|s/let next = self.words.next.fetch_or\(CLOSED, Ordering::AcqRel\) & !FLAGS;\n        next - 1/let next = self.words.next.fetch_or(CLOSED, Ordering::AcqRel) \& !FLAGS;\n        next - 2/|protocol::sequencer::models::multi_close_drains_or_refuses_every_publish"
  "lib-cursor-reads-a-copy-stored-after-the-mark|src/protocol/sequencer/multi.rs|s/\(self.words.next.load\(Ordering::Relaxed\) & !FLAGS\) - 1/{ let n = self.words.next.load(Ordering::Relaxed); if n \& CLOSED != 0 { -1 } else { (n \& !FLAGS) - 1 } }/|protocol::sequencer::models::multi_close_drains_or_refuses_every_publish"
  "lib-single-waiter-ignores-stop|src/protocol/sequencer/mod.rs|s/cx.phase\(\).refuses_claims\(\).then_some\(\(\)\)/None::<()>/|protocol::sequencer::models::single_halt_releases_a_producer_waiting_for_room"
  "lib-halt-does-not-refuse|src/protocol/mod.rs|s/self.lifecycle.halt\(\);\n        self.sequencer.refuse\(\);/self.lifecycle.halt();/|protocol::sequencer::models::multi_halt_releases_a_producer_waiting_for_room"
  # The cross-process tables (src/protocol/table/models.rs), at preemption bound 3.
  "lib-join-minimum-not-capped-at-the-bound|src/protocol/table.rs|s/stages.iter\(\).fold\(bound,/stages.iter().fold(i64::MAX,/|protocol::table::models::a_stage_joining_while_a_producer_rereads_the_table_is_never_lapped"
  "lib-join-bound-a-plain-load|src/protocol/sequencer/multi.rs|s/self.words.next.fetch_add\(0, Ordering::AcqRel\)/self.words.next.load(Ordering::Relaxed)/|protocol::table::models::a_stage_joining_while_a_producer_rereads_the_table_is_never_lapped"
  "lib-single-join-bound-without-fence|src/protocol/sequencer/single.rs|s/crate::sync::fence\(Ordering::SeqCst\);\n        self.cursor.get\(\)/self.cursor.get()/|protocol::table::models::a_stage_joining_while_the_single_producer_rereads_the_table_is_never_lapped"
  "lib-evicted-stage-still-gates|src/protocol/table.rs|s/if s.state\(\) == ACTIVE \{\n            min.min/if true {\n            min.min/|protocol::table::models::evicting_a_dead_stage_frees_a_producer_waiting_on_it_but_not_past_the_live_one"
  "lib-repair-ignores-live-announcements|src/protocol/table.rs|s/        if covered \{/        if false \&\& covered {/|protocol::table::models::a_dead_producers_hole_is_repaired_and_nothing_else_is"
  # The task wake-up protocol (src/protocol/wake/models.rs), at preemption bound 3.
  "lib-task-arms-without-fence|src/protocol/wake.rs|s/    fence\(Ordering::SeqCst\);\n    if let Some\(done\) = attempt\(\)/    if let Some(done) = attempt()/|protocol::wake::models::a_publish_wakes_a_task_awaiting_events"
  "lib-task-no-second-try|src/protocol/wake.rs|s/    fence\(Ordering::SeqCst\);\n    if let Some\(done\) = attempt\(\)/    fence(Ordering::SeqCst);\n    if let Some(done) = None::<T>/|protocol::wake::models::a_release_of_room_wakes_a_task_awaiting_it"
  "lib-notify-skips-tasks|src/protocol/wait.rs|s/        notify_tasks\(&self.tasks, seen\);//|protocol::wake::models::a_stage_moving_wakes_a_task_awaiting_a_receipt"
  "lib-held-slot-not-rearmed|src/protocol/wake.rs|s/    if lease.0.get\(\).is_none\(\) \{\n        lease.0.set/    if lease.0.get().is_some() {\n        return Poll::Pending;\n    }\n    if lease.0.get().is_none() {\n        lease.0.set/|protocol::wake::models::a_handles_slot_serves_its_next_wait"
  "lib-task-never-armed|src/protocol/wake.rs|s/    w.tasks.armed\[i \/ 64\].fetch_or\(1 << \(i % 64\), Ordering::Release\);//|protocol::wake::models::a_release_of_room_wakes_a_task_awaiting_it"
  "lib-multi-refusal-not-flagged|src/protocol/sequencer/multi.rs|s/self.words.next.fetch_or\(REFUSED, Ordering::Release\);//|protocol::sequencer::models::multi_halt_releases_a_producer_waiting_for_room"
)

copy_tree() {
  rm -rf "$work/tree" && mkdir -p "$work/tree"
  # Tracked and untracked (not ignored) files: the tree as it is in the working copy.
  (cd "$root" && git ls-files -z --cached --others --exclude-standard \
      | xargs -0 -I{} cp --parents {} "$work/tree/")
}

run_model() { # model log
  if [[ "$1" == *::* ]]; then
    # A model inside the crate (a path): the lib's tests under loom, at preemption bound 3.
    (cd "$work/tree" && RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 timeout 900 \
        cargo test -p ringmq --lib --release --target-dir "$target-lib" -- "$1" --exact >"$2" 2>&1)
  else
    (cd "$work/tree" && RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 timeout 900 \
        cargo test -p ringmq-loom-tests --release --target-dir "$target" -- "$1" --exact >"$2" 2>&1)
  fi
}

# Baseline: the unmutated copy must build and pass, or every "catch" below would mean nothing.
copy_tree
if ! run_model single_producer_wrap_never_overwrites "$work/baseline.log" \
    || ! run_model protocol::sequencer::models::single_claims_wait_for_the_gating_sequence "$work/baseline-lib.log"; then
  echo "ERROR the unmutated tree does not pass; see below"; tail -30 "$work/baseline.log" "$work/baseline-lib.log"; exit 2
fi

caught=0; missed=0
for entry in "${bugs[@]}"; do
  IFS='|' read -r name file subst model <<<"$entry"
  [[ -n "$filter" && ! "$name" =~ $filter ]] && continue
  copy_tree
  before=$(md5sum "$work/tree/$file")
  perl -0pi -e "$subst" "$work/tree/$file"
  if [[ "$before" == "$(md5sum "$work/tree/$file")" ]]; then
    echo "ERROR  $name: the substitution did not apply to $file"; missed=$((missed + 1)); continue
  fi
  log="$work/$name.log"
  run_model "$model" "$log"
  status=$?
  if grep -qE "could not compile|^error\[" "$log"; then
    echo "ERROR  $name: the mutant does not compile"; grep -m3 -E "^error" "$log"; missed=$((missed + 1))
    continue
  fi
  # The most telling reason first: a data race, a deadlock, a failed assertion, then any panic.
  how=""
  for pattern in "Causality violation[^.]*" "deadlock" "assertion .{0,40} failed" "panicked at (loom-tests|src)[^ ]*"; do
    how=$(grep -oE "$pattern" "$log" | head -1)
    [[ -n "$how" ]] && break
  done
  # A loom deadlock aborts the test binary (a panic while panicking), so no "test result" line.
  if [[ $status -ne 0 && $status -ne 124 ]] && grep -qE "test result: FAILED|panicked at" "$log"; then
    echo "caught $name -> $model: ${how:-a failing test}"; caught=$((caught + 1))
  elif [[ $status -eq 124 ]]; then
    echo "MISSED $name -> $model: timed out"; missed=$((missed + 1))
  else
    echo "MISSED $name -> $model (exit $status)"; missed=$((missed + 1))
  fi
done
echo "seeded bugs: $caught caught, $missed missed"
[[ $missed -eq 0 ]]
