//! The failure matrix: a panic in every handler hook, under every panic policy, in every handler
//! flavour and stage kind, with both producer kinds. Each cell checks the documented outcome and
//! the integrity of everyone else:
//! - no stage ever reads a slot the producer has not published (every event carries its own
//!   sequence and a checksum; a stale or half-written slot fails the reader);
//! - the healthy stages (a bystander beside or before the failing stage, a stage after it) get
//!   exactly the events they should, in order, once each;
//! - the failing stage's report (skips, passed-over hooks, its panic) is exact;
//! - producers and `shutdown()` name the same failure;
//! - no one hangs (every cell runs under a hang guard).
//!
//! The rules being checked are those of `PanicPolicy`'s docs. Under miri a deterministic ninth of
//! the cells runs (the whole matrix would take most of an hour there).

mod common;

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::*;
use ringmq::{
    Blocking, Builder, Consumer, Disruptor, EventHandler, ExclusiveHandler, FallibleHandler, Hook,
    PanicPolicy, PollState, Producer, PublishError, Retry, RetryPolicy, Sequencer, ShutdownError,
    ShutdownReport, StageId, WaitStrategy, WorkPool, Yielding,
};

/// Events per cell, the ring's capacity, and the event whose handling fails.
const N: u64 = if cfg!(miri) { 16 } else { 64 };
const CAPACITY: usize = if cfg!(miri) { 4 } else { 8 };
const K: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// `EventHandler` (`&E`).
    Shared,
    /// `ExclusiveHandler` (`&mut E`): it marks each event it handled for the stage after it.
    Exclusive,
    /// `FallibleHandler`: its `on_event` failure is an `Err(Retry)` at `K`, every time, so the
    /// retries run out and the panic policy applies.
    Fallible,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Consumer,
    /// A work pool of two workers, one of which fails.
    Pool,
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    hook: Hook,
    policy: PanicPolicy,
    flavour: Flavour,
    kind: Kind,
    multi: bool,
}

/// What the failing handler shares with the test.
#[derive(Default)]
struct Probe {
    /// One panic per cell (across a pool's workers): taken by the hook that panics.
    armed: AtomicBool,
    /// `on_timeout` panicked (the producer waits for it before the second half).
    timeout_fired: AtomicBool,
    /// Sequences whose `on_event` returned normally (a replayed batch shows up again).
    handled: Mutex<Vec<i64>>,
    handled_count: AtomicU64,
}

struct Failing {
    hook: Hook,
    probe: Arc<Probe>,
}

impl Failing {
    fn fire(&self, hook: Hook) {
        if self.hook == hook && self.probe.armed.swap(false, Ordering::SeqCst) {
            if hook == Hook::OnTimeout {
                self.probe.timeout_fired.store(true, Ordering::SeqCst);
            }
            panic!("planted panic in {hook}");
        }
    }
    fn event(&self, e: &Ev, seq: i64) {
        check_event("failing", e, seq);
        if self.hook == Hook::OnEvent && seq == K {
            panic!("planted panic at event {K}");
        }
        self.handled(seq);
    }
    fn handled(&self, seq: i64) {
        self.probe.handled.lock().unwrap().push(seq);
        self.probe.handled_count.fetch_add(1, Ordering::SeqCst);
    }
    fn batch_start(&self) {
        // A later batch (the stage handled something already), so it is not the first call.
        if self.probe.handled_count.load(Ordering::SeqCst) > 0 {
            self.fire(Hook::OnBatchStart);
        }
    }
}

/// A reader of an unpublished slot would see the previous lap's event (or the factory's).
fn check_event(who: &str, e: &Ev, seq: i64) {
    assert_eq!(
        e.n, seq as u64,
        "{who} read slot {seq} before it was published"
    );
    assert_eq!(
        e.check,
        checksum(e.producer, e.n),
        "{who}: torn event at {seq}"
    );
}

impl EventHandler<Ev> for Failing {
    fn on_event(&mut self, e: &Ev, seq: i64, _: bool) {
        self.event(e, seq);
    }
    fn on_start(&mut self) {
        self.fire(Hook::OnStart);
    }
    fn on_shutdown(&mut self) {
        self.fire(Hook::OnShutdown);
    }
    fn on_batch_start(&mut self, _: i64, _: i64) {
        self.batch_start();
    }
    fn on_timeout(&mut self, _: i64) {
        self.fire(Hook::OnTimeout);
    }
}

impl ExclusiveHandler<Ev> for Failing {
    fn on_event(&mut self, e: &mut Ev, seq: i64, _: bool) {
        self.event(e, seq);
        e.enriched = 1;
    }
    fn on_start(&mut self) {
        self.fire(Hook::OnStart);
    }
    fn on_shutdown(&mut self) {
        self.fire(Hook::OnShutdown);
    }
    fn on_batch_start(&mut self, _: i64, _: i64) {
        self.batch_start();
    }
    fn on_timeout(&mut self, _: i64) {
        self.fire(Hook::OnTimeout);
    }
}

impl FallibleHandler<Ev> for Failing {
    fn on_event(&mut self, e: &Ev, seq: i64, _: bool) -> Result<(), Retry> {
        check_event("failing", e, seq);
        if self.hook == Hook::OnEvent && seq == K {
            return Err(Retry::new(format!("event {K} keeps failing")));
        }
        self.handled(seq);
        Ok(())
    }
    fn on_start(&mut self) {
        self.fire(Hook::OnStart);
    }
    fn on_shutdown(&mut self) {
        self.fire(Hook::OnShutdown);
    }
    fn on_batch_start(&mut self, _: i64, _: i64) {
        self.batch_start();
    }
    fn on_timeout(&mut self, _: i64) {
        self.fire(Hook::OnTimeout);
    }
}

/// The factory of the failing handler: it panics itself in a `Factory` cell.
fn factory(hook: Hook, probe: &Arc<Probe>) -> impl FnOnce() -> Failing + Send + 'static {
    let probe = probe.clone();
    move || {
        if hook == Hook::Factory && probe.armed.swap(false, Ordering::SeqCst) {
            panic!("planted panic in the factory");
        }
        Failing { hook, probe }
    }
}

/// Applies the options every failing consumer gets: the policy, a timeout (so `on_timeout` runs
/// in every cell), and two quick replays for fallible handlers.
fn options<H: ringmq::IntoProcess<Ev>>(c: Consumer<Ev, H>, policy: PanicPolicy) -> Consumer<Ev, H> {
    c.panic_policy(policy)
        .timeout(Duration::from_millis(1))
        .retry(RetryPolicy::new(2, Duration::ZERO))
}

/// Adds the failing stage (after `upstream`) in the cell's flavour and kind.
fn add_failing<S: Sequencer, W: WaitStrategy>(
    b: &mut Builder<Ev, S, W>,
    upstream: &[StageId],
    cell: Cell,
    probe: &Arc<Probe>,
) -> StageId {
    let (hook, policy) = (cell.hook, cell.policy);
    macro_rules! stage {
        ($make:path) => {
            match cell.kind {
                Kind::Consumer => b
                    .add_after(
                        upstream,
                        options($make("failing", factory(hook, probe)), policy),
                    )
                    .unwrap(),
                Kind::Pool => b
                    .add_pool(
                        upstream,
                        WorkPool::new("failing", 2, |i| {
                            options($make(format!("failing-{i}"), factory(hook, probe)), policy)
                        })
                        .batch(2),
                    )
                    .unwrap(),
            }
        };
    }
    match cell.flavour {
        Flavour::Shared => stage!(Consumer::with_handler),
        Flavour::Exclusive => stage!(Consumer::exclusive_with_handler),
        Flavour::Fallible => stage!(Consumer::fallible_with_handler),
    }
}

/// Publishes `range` one event at a time until a publish fails; returns the failure.
fn publish<S: Sequencer, W: WaitStrategy>(
    p: &mut Producer<Ev, S, W>,
    range: std::ops::Range<u64>,
) -> Option<PublishError> {
    for n in range {
        if let Err(e) = p.publish(|e| fill(e, 0, n)) {
            return Some(e);
        }
    }
    None
}

/// What a cell observed.
struct Observed {
    publish_error: Option<PublishError>,
    shutdown: Result<ShutdownReport, ShutdownError>,
    seen: std::collections::HashMap<String, Seen>,
    handled: Vec<i64>,
}

fn run_cell<S: Sequencer, W: WaitStrategy>(mut b: Builder<Ev, S, W>, cell: Cell) -> Observed {
    let probe = Arc::new(Probe::default());
    probe.armed.store(true, Ordering::SeqCst);
    let (tx, rx) = mpsc::channel();
    // An exclusive stage must be ordered with every other: the bystander goes before it.
    let failing = if cell.flavour == Flavour::Exclusive {
        let bystander = b.add(recorder("bystander", &tx));
        add_failing(&mut b, &[bystander], cell, &probe)
    } else {
        b.add(recorder("bystander", &tx));
        add_failing(&mut b, &[], cell, &probe)
    };
    b.add_after(&[failing], recorder("downstream", &tx))
        .unwrap();
    let (mut p, q) = b.build().unwrap();

    let mut publish_error = publish(&mut p, 0..N / 2);
    // Let the failing stage finish the first half (or fail), so the second half is a new batch.
    let _ = q
        .tracker(failing)
        .unwrap()
        .wait_processed(N as i64 / 2 - 1, Duration::from_secs(20));
    if cell.hook == Hook::OnTimeout {
        // Bounded: the consumer idles with a 1 ms timeout, so its `on_timeout` comes soon.
        for _ in 0..20_000_000u64 {
            if probe.timeout_fired.load(Ordering::SeqCst) {
                break;
            }
            std::thread::yield_now();
        }
        assert!(
            probe.timeout_fired.load(Ordering::SeqCst),
            "{cell:?}: on_timeout never ran"
        );
    }
    if publish_error.is_none() {
        publish_error = publish(&mut p, N / 2..N);
    }
    drop(p);
    let shutdown = q.shutdown();
    let seen = collect(&rx, 2);
    let handled = probe.handled.lock().unwrap().clone();
    Observed {
        publish_error,
        shutdown,
        seen,
        handled,
    }
}

/// Asserts `seen` is a contiguous run of intact events from 0 (each once, in order), of exactly
/// `want` events if given; returns how many.
fn check_run(who: &str, cell: Cell, seen: &Seen, want: Option<u64>) -> u64 {
    for (i, (seq, e, _)) in seen.iter().enumerate() {
        assert_eq!(
            *seq, i as i64,
            "{cell:?}: {who} lost or repeated an event at {i}"
        );
        check_event(who, e, *seq);
    }
    if let Some(want) = want {
        assert_eq!(
            seen.len() as u64,
            want,
            "{cell:?}: {who} saw {} events",
            seen.len()
        );
    }
    seen.len() as u64
}

fn check_cell(cell: Cell, o: Observed) {
    let effective = match (cell.hook, cell.policy) {
        (Hook::Factory, PanicPolicy::SkipEvent) => PanicPolicy::HaltConsumer,
        (_, p) => p,
    };
    let on_shutdown = cell.hook == Hook::OnShutdown;
    let fails_queue = effective == PanicPolicy::HaltAll && !on_shutdown;
    let report = match &o.shutdown {
        Ok(r) => r.clone(),
        Err(ShutdownError::ConsumerPanicked { report, .. }) => report.clone(),
        Err(e) => panic!("{cell:?}: shutdown failed with {e}"),
    };
    let failing: Vec<_> = report
        .consumers
        .iter()
        .filter(|c| c.name.starts_with("failing"))
        .collect();
    let skipped: u64 = failing.iter().map(|c| c.skipped).sum();
    let skipped_hooks: u64 = failing.iter().map(|c| c.skipped_hooks).sum();
    let passed_max = failing.iter().map(|c| c.last_sequence).max().unwrap();
    for c in &failing {
        assert!(
            c.last_sequence < N as i64,
            "{cell:?}: {} reports {} past the last published",
            c.name,
            c.last_sequence
        );
    }
    // Sequences the failing stage handled; a fallible handler's replays repeat some.
    let handled: BTreeSet<i64> = o.handled.iter().copied().collect();
    if cell.flavour != Flavour::Fallible {
        assert_eq!(
            handled.len(),
            o.handled.len(),
            "{cell:?}: an event handled twice"
        );
    }
    assert!(handled.iter().all(|&s| s < N as i64));

    // Who panicked, as shutdown tells it, must be the stage's and agree with the producers.
    let panicked_in = match &o.shutdown {
        Err(ShutdownError::ConsumerPanicked {
            consumer,
            hook,
            sequence,
            ..
        }) => {
            assert!(
                consumer.starts_with("failing"),
                "{cell:?}: {consumer} panicked"
            );
            assert_eq!(*hook, cell.hook, "{cell:?}");
            if *hook == Hook::OnEvent {
                assert_eq!(*sequence, K, "{cell:?}");
            }
            if let Some(PublishError::ConsumerFailed {
                consumer: c,
                sequence: s,
            }) = &o.publish_error
            {
                assert_eq!(
                    (c, s),
                    (consumer, sequence),
                    "{cell:?}: producers and shutdown disagree"
                );
            }
            Some(*hook)
        }
        _ => None,
    };

    if fails_queue {
        assert_eq!(
            panicked_in,
            Some(cell.hook),
            "{cell:?}: shutdown must return the panic"
        );
        match &o.publish_error {
            None | Some(PublishError::ConsumerFailed { .. }) => {}
            Some(e) => panic!("{cell:?}: producers got {e}"),
        }
        let by = check_run("bystander", cell, &o.seen["bystander"], None);
        let down = check_run("downstream", cell, &o.seen["downstream"], None);
        assert!(
            down as i64 <= passed_max + 1,
            "{cell:?}: downstream ran ahead of the failing stage"
        );
        if cell.flavour == Flavour::Exclusive {
            assert!(
                down <= by,
                "{cell:?}: the stage after ran ahead of the one before"
            );
        }
        return;
    }

    // The queue goes on: every publish succeeds, every healthy stage gets everything.
    assert_eq!(o.publish_error, None, "{cell:?}");
    check_run("bystander", cell, &o.seen["bystander"], Some(N));
    check_run("downstream", cell, &o.seen["downstream"], Some(N));
    if cell.flavour == Flavour::Exclusive {
        for (seq, e, _) in &o.seen["downstream"] {
            let want = u64::from(handled.contains(seq));
            assert_eq!(
                e.enriched, want,
                "{cell:?}: the stage after saw {seq} as if handled={}",
                e.enriched
            );
        }
    }
    match (effective, cell.hook) {
        (_, Hook::OnShutdown) => {
            assert_eq!(panicked_in, Some(Hook::OnShutdown), "{cell:?}");
            assert_eq!(handled.len() as u64, N, "{cell:?}");
            assert_eq!((skipped, skipped_hooks), (0, 0), "{cell:?}");
        }
        (PanicPolicy::SkipEvent, Hook::OnEvent) => {
            assert_eq!(panicked_in, None, "{cell:?}");
            assert_eq!((skipped, skipped_hooks), (1, 0), "{cell:?}");
            assert_eq!(
                handled,
                (0..N as i64).filter(|&s| s != K).collect(),
                "{cell:?}"
            );
        }
        (PanicPolicy::SkipEvent, _) => {
            // A hook call was passed over; every event was still handed to the handler.
            assert_eq!(panicked_in, None, "{cell:?}");
            assert_eq!((skipped, skipped_hooks), (0, 1), "{cell:?}");
            assert_eq!(handled.len() as u64, N, "{cell:?}");
        }
        (PanicPolicy::HaltConsumer, hook) => {
            assert_eq!(panicked_in, Some(hook), "{cell:?}");
            assert_eq!(skipped_hooks, 0, "{cell:?}");
            // Every event was handled or passed, never both.
            assert_eq!(
                handled.len() as u64 + skipped,
                N,
                "{cell:?}: handled {handled:?}, skipped {skipped}"
            );
            if cell.kind == Kind::Consumer {
                // The handler stopped for good: what it handled is a prefix.
                let h = handled.len() as i64;
                assert_eq!(handled, (0..h).collect(), "{cell:?}");
                match hook {
                    Hook::OnEvent => assert_eq!(h, K, "{cell:?}"),
                    Hook::Factory | Hook::OnStart => assert_eq!(h, 0, "{cell:?}"),
                    _ => {}
                }
            }
        }
        (PanicPolicy::HaltAll, _) => unreachable!(),
    }
}

fn cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for hook in [
        Hook::Factory,
        Hook::OnStart,
        Hook::OnEvent,
        Hook::OnBatchStart,
        Hook::OnTimeout,
        Hook::OnShutdown,
    ] {
        for policy in [
            PanicPolicy::HaltAll,
            PanicPolicy::SkipEvent,
            PanicPolicy::HaltConsumer,
        ] {
            for flavour in [Flavour::Shared, Flavour::Exclusive, Flavour::Fallible] {
                for kind in [Kind::Consumer, Kind::Pool] {
                    for multi in [false, true] {
                        cells.push(Cell {
                            hook,
                            policy,
                            flavour,
                            kind,
                            multi,
                        });
                    }
                }
            }
        }
    }
    cells
}

fn run_and_check(cell: Cell) {
    let o = if cell.multi {
        run_cell(
            Builder::multi_producer(CAPACITY, Ev::default, Yielding).unwrap(),
            cell,
        )
    } else {
        run_cell(
            Builder::single_producer(CAPACITY, Ev::default, Blocking::new()).unwrap(),
            cell,
        )
    };
    check_cell(cell, o);
}

#[test]
fn every_hook_under_every_policy_in_every_stage_kind() {
    let all = cells();
    assert_eq!(all.len(), 6 * 3 * 3 * 2 * 2);
    for (i, cell) in all.into_iter().enumerate() {
        if cfg!(miri) && i % 9 != 0 {
            continue;
        }
        with_timeout(60, move || run_and_check(cell));
    }
}

/// A fallible stage keeps failing event `K` with endless replays; the queue is stopped while it
/// retries, by `halt()` or by another stage failing. The interrupted batch is not done: the stage
/// after it never sees it, and the report does not count it.
#[test]
fn a_replay_interrupted_by_halt_or_another_failure_passes_nothing() {
    fn run<S: Sequencer, W: WaitStrategy>(mut b: Builder<Ev, S, W>, kind: Kind, by_failure: bool) {
        let retried = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (boom_tx, boom_rx) = mpsc::channel::<()>();
        let make = |name: String, retried: Arc<AtomicBool>| {
            let mut failures = 0;
            Consumer::fallible(name, move |e: &Ev, seq, _| {
                check_event("retrying", e, seq);
                if seq == K {
                    failures += 1;
                    if failures >= 2 {
                        retried.store(true, Ordering::SeqCst);
                    }
                    return Err(Retry::new("still down"));
                }
                Ok(())
            })
            .retry(RetryPolicy::new(u32::MAX, Duration::from_millis(1)))
        };
        let stage = match kind {
            Kind::Consumer => b.add(make("retrying".into(), retried.clone())),
            Kind::Pool => b
                .add_pool(
                    &[],
                    WorkPool::new("retrying", 2, |i| {
                        make(format!("retrying-{i}"), retried.clone())
                    })
                    .batch(4),
                )
                .unwrap(),
        };
        b.add_after(&[stage], recorder("downstream", &tx)).unwrap();
        // A stage that fails the queue on demand.
        b.add(Consumer::new("other", move |_: &Ev, _, _| {
            if boom_rx.try_recv().is_ok() {
                panic!("another stage fails");
            }
        }));
        let (mut p, q) = b.build().unwrap();
        for n in 0..K as u64 + 3 {
            p.publish(|e| fill(e, 0, n)).unwrap();
        }
        for _ in 0..20_000_000u64 {
            if retried.load(Ordering::SeqCst) {
                break;
            }
            std::thread::yield_now();
        }
        assert!(
            retried.load(Ordering::SeqCst),
            "the batch was never replayed"
        );
        let report = if by_failure {
            boom_tx.send(()).unwrap();
            // The other stage's next event fails the queue.
            let _ = p.publish(|e| fill(e, 0, K as u64 + 3));
            match q.shutdown() {
                Err(ShutdownError::ConsumerPanicked {
                    consumer, report, ..
                }) => {
                    assert_eq!(consumer, "other");
                    report
                }
                other => panic!("{other:?}"),
            }
        } else {
            q.halt().unwrap()
        };
        let seen = collect(&rx, 1);
        let down = &seen["downstream"];
        assert!(
            down.iter().all(|s| s.0 < K),
            "{kind:?} by_failure={by_failure}: downstream got {:?}, past the interrupted batch",
            down.iter().map(|s| s.0).collect::<Vec<_>>()
        );
        // The worker holding the interrupted batch (the only one, for a plain consumer) does not
        // count it as done; another pool worker may have finished later claims.
        let lowest = report
            .consumers
            .iter()
            .filter(|c| c.name.starts_with("retrying"))
            .map(|c| c.last_sequence)
            .min();
        assert!(lowest < Some(K), "{kind:?}: reported {lowest:?} as done");
        drop(p);
    }
    for kind in [Kind::Consumer, Kind::Pool] {
        for by_failure in [false, true] {
            with_timeout(60, move || {
                run(
                    Builder::single_producer(16, Ev::default, Blocking::new()).unwrap(),
                    kind,
                    by_failure,
                );
                run(
                    Builder::multi_producer(16, Ev::default, Yielding).unwrap(),
                    kind,
                    by_failure,
                );
            });
        }
    }
}

/// A publish closure that panics, in every stage kind and for every publish call: the slot is
/// passed by everyone (never read), the panic reaches the caller, everything else arrives.
#[test]
fn a_publish_closure_panic_skips_its_slot_for_every_stage_kind() {
    #[derive(Debug, Clone, Copy)]
    enum Call {
        Publish,
        TryPublish,
        PublishTimeout,
        BatchMiddle,
    }
    fn run<S: Sequencer, W: WaitStrategy>(mut b: Builder<Ev, S, W>, call: Call) {
        let (tx, rx) = mpsc::channel();
        let enrich = b.add(Consumer::exclusive("enrich", |e: &mut Ev, seq, _| {
            check_event("enrich", e, seq);
            e.enriched = 1;
        }));
        b.add_after(&[enrich], recorder("after-exclusive", &tx))
            .unwrap();
        let pooled = Arc::new(Mutex::new(Vec::new()));
        let pool_out = pooled.clone();
        b.add_pool(
            &[enrich],
            WorkPool::new("pool", 2, move |i| {
                let out = pool_out.clone();
                Consumer::new(format!("pool-{i}"), move |e: &Ev, seq, _| {
                    check_event("pool", e, seq);
                    out.lock().unwrap().push(seq);
                })
            }),
        )
        .unwrap();
        let poller_id = b.add_poller(&[enrich]).unwrap();
        let (mut p, q) = b.build().unwrap();
        let mut poller = poller_id;
        let mut polled = Vec::new();
        let mut expected = Vec::new();
        let mut seq = 0i64;
        for n in 0..40u64 {
            if n % 10 == 3 {
                // The blocking calls wait for room that only this thread's poller makes.
                for _ in 0..10_000_000u64 {
                    if p.remaining_capacity() >= 3 {
                        break;
                    }
                    poller.poll(|e, s, _| {
                        polled.push((s, e.enriched));
                        true
                    });
                    std::thread::yield_now();
                }
                let r = catch_unwind(AssertUnwindSafe(|| match call {
                    Call::Publish => p
                        .publish(|e| {
                            e.n = 999;
                            panic!("producer bug")
                        })
                        .map(|_| ()),
                    Call::TryPublish => p
                        .try_publish(|e| {
                            e.n = 999;
                            panic!("producer bug")
                        })
                        .map(|_| ()),
                    Call::PublishTimeout => p
                        .publish_timeout(Duration::from_secs(10), |e| {
                            e.n = 999;
                            panic!("producer bug")
                        })
                        .map(|_| ()),
                    Call::BatchMiddle => p
                        .publish_batch(3, |e, i| {
                            if i == 1 {
                                e.n = 999;
                                panic!("producer bug");
                            }
                            fill(e, 0, seq as u64 + i as u64);
                        })
                        .map(|_| ()),
                }));
                assert!(r.is_err(), "the panic reaches the caller");
                if let Call::BatchMiddle = call {
                    expected.push(seq); // index 0 of the batch was written and is delivered
                    seq += 3;
                } else {
                    seq += 1;
                }
            } else {
                // `try_publish` may find the ring full: poll and try again (bounded).
                let mut tries = 0;
                loop {
                    let r = p.try_publish(|e| fill(e, 0, seq as u64));
                    match r {
                        Ok(s) => {
                            assert_eq!(s, seq);
                            break;
                        }
                        Err(PublishError::Full) => {
                            poller.poll(|e, s, _| {
                                polled.push((s, e.enriched));
                                true
                            });
                            tries += 1;
                            assert!(tries < 10_000_000, "the ring never had room");
                            std::thread::yield_now();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                expected.push(seq);
                seq += 1;
            }
            poller.poll(|e, s, _| {
                check_event("poller", e, s);
                polled.push((s, e.enriched));
                true
            });
        }
        drop(p);
        // Drain the poller until it is closed (the shutdown does not wait for it).
        let shutdown = std::thread::spawn(move || q.shutdown());
        for _ in 0..20_000_000u64 {
            match poller.poll(|e, s, _| {
                check_event("poller", e, s);
                polled.push((s, e.enriched));
                true
            }) {
                PollState::Closed => break,
                _ => std::thread::yield_now(),
            }
        }
        shutdown.join().unwrap().unwrap();
        let seen = collect(&rx, 1);
        let after: Vec<i64> = seen["after-exclusive"].iter().map(|s| s.0).collect();
        assert_eq!(
            after, expected,
            "{call:?}: the stage after the exclusive one"
        );
        assert!(seen["after-exclusive"].iter().all(|s| s.1.enriched == 1));
        let mut pooled = pooled.lock().unwrap().clone();
        pooled.sort_unstable();
        assert_eq!(pooled, expected, "{call:?}: the pool (each event once)");
        assert_eq!(
            polled.iter().map(|s| s.0).collect::<Vec<_>>(),
            expected,
            "{call:?}: the poller"
        );
        assert!(
            polled.iter().all(|s| s.1 == 1),
            "{call:?}: the poller read before the exclusive stage"
        );
    }
    for call in [
        Call::Publish,
        Call::TryPublish,
        Call::PublishTimeout,
        Call::BatchMiddle,
    ] {
        with_timeout(60, move || {
            run(
                Builder::single_producer(8, Ev::default, Blocking::new()).unwrap(),
                call,
            );
            run(
                Builder::multi_producer(8, Ev::default, Yielding).unwrap(),
                call,
            );
        });
    }
}

/// A panic in a poller's closure reaches the caller; the event it panicked on is not consumed
/// (the next poll hands it again), nothing after it is lost, and the stage after the poller's
/// upstream is unaffected.
#[test]
fn a_panic_in_a_poll_closure_redelivers_that_event() {
    fn run<S: Sequencer, W: WaitStrategy>(b: Builder<Ev, S, W>) {
        let mut b = b;
        let id = b.add_poller(&[]).unwrap();
        let (mut p, q): (_, Disruptor<Ev, S, W>) = b.build().unwrap();
        let mut poller = id;
        for n in 0..6 {
            p.publish(|e| fill(e, 0, n)).unwrap();
        }
        let mut got = Vec::new();
        let r = catch_unwind(AssertUnwindSafe(|| {
            poller.poll(|e, s, _| {
                if s == 3 {
                    panic!("poll bug");
                }
                got.push(e.n);
                true
            })
        }));
        assert!(r.is_err());
        assert_eq!(got, vec![0, 1, 2]);
        assert_eq!(
            poller.sequence(),
            2,
            "the event that panicked is not consumed"
        );
        assert_eq!(
            poller.poll(|e, _, _| {
                got.push(e.n);
                true
            }),
            PollState::Processed(3)
        );
        assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(poller.poll(|_, _, _| true), PollState::Closed);
    }
    with_timeout(60, || {
        run(Builder::single_producer(8, Ev::default, Blocking::new()).unwrap());
        run(Builder::multi_producer(8, Ev::default, Yielding).unwrap());
    });
}
