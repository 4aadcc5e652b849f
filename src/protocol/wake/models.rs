//! Loom models of the task wake-up protocol, one direction each: a task awaits, another thread
//! makes progress and notifies. The task's future is polled once with a mock waker that records
//! its wake-up; after the other thread finished, a future that returned `Pending` must have been
//! woken (a lost wake-up is a task asleep forever), and polled again it must be ready.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p ringmq --lib --release \
//!     --target-dir target/loom -- wake::models
//! ```

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Wake, Waker};

use crate::producer::Producer;
use crate::protocol::publish;
use crate::protocol::ring::Ring;
use crate::protocol::sequence::{Sequence, INITIAL};
use crate::protocol::sequencer::{LocalClaim, Mode, Multi, SequencerImpl, Single};
use crate::protocol::wait::{task_waits, Blocking, WaitStrategy};
use crate::protocol::wake::{poll_wait, Lease};
use crate::protocol::Core;
use crate::sync::{thread, Arc, AtomicBool, Ordering};
use crate::tracker::Tracker;

/// A waker that records that it was woken (in a loom atomic, so the model sees the store).
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn flag() -> (std::sync::Arc<Flag>, Waker) {
    let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    (flag, waker)
}

/// A core of capacity 2 with one gating sequence that the model moves by hand.
fn core<S: SequencerImpl>() -> (Arc<Core<u64, S, Blocking>>, Arc<Sequence>) {
    let core = Arc::new(Core::new(Ring::new(2, || 0), Blocking::with_task_slots(1)));
    let gate = Arc::new(Sequence::new(INITIAL));
    core.gating.replace(vec![gate.clone()]);
    (core, gate)
}

/// A task awaiting event 0 (the wait an async poller makes) while a producer publishes it: the
/// publish's notify wakes the task, or the task's second look sees the event.
#[test]
fn a_publish_wakes_a_task_awaiting_events() {
    loom::model(|| {
        let (core, _gate) = core::<Single>();
        let c = core.clone();
        let producer = thread::spawn(move || {
            let mut local = LocalClaim::new();
            let claim = publish::claim(&*c, &mut local, 1, Mode::Block).unwrap();
            publish::write_one(&*c, claim, |e| *e = 7);
        });
        let (woken, waker) = flag();
        let mut cx = Context::from_waker(&waker);
        let lease = Lease::default();
        let mut look = || (core.sequencer.highest_published(0) >= 0).then_some(());
        let first = poll_wait(task_waits(&core.wait), &lease, &mut cx, &mut look);
        producer.join().unwrap();
        if first.is_pending() {
            assert!(
                woken.0.load(Ordering::SeqCst),
                "lost wake-up: the task sleeps forever"
            );
            let again = poll_wait(task_waits(&core.wait), &lease, &mut cx, &mut look);
            assert_eq!(again, Poll::Ready(()));
        }
        lease.end(task_waits(&core.wait));
    });
}

/// A handle keeps its slot between waits: a task awaits event 0 (leasing and arming the
/// slot), is woken by its publish and completes, then awaits event 1 in the same slot while a
/// producer publishes it. The second wait must register and arm again (a slot already held is
/// not a waker already registered): the publish wakes it, or its second look sees the event.
#[test]
fn a_handles_slot_serves_its_next_wait() {
    loom::model(|| {
        let (core, _gate) = core::<Single>();
        let lease = Lease::default();
        let look = |want: i64| (core.sequencer.highest_published(want) >= want).then_some(());
        // The first wait, alone: pending, then woken by event 0's publish.
        let (woken, waker) = flag();
        let mut cx = Context::from_waker(&waker);
        let first = poll_wait(task_waits(&core.wait), &lease, &mut cx, || look(0));
        assert!(first.is_pending());
        let mut local = LocalClaim::new();
        let claim = publish::claim(&*core, &mut local, 1, Mode::Block).unwrap();
        publish::write_one(&*core, claim, |e| *e = 1);
        assert!(woken.0.load(Ordering::SeqCst));
        let done = poll_wait(task_waits(&core.wait), &lease, &mut cx, || look(0));
        assert_eq!(done, Poll::Ready(()));
        // The second wait, in the same slot, against a producer.
        let c = core.clone();
        let producer = thread::spawn(move || {
            let claim = publish::claim(&*c, &mut local, 1, Mode::Block).unwrap();
            publish::write_one(&*c, claim, |e| *e = 2);
        });
        let (woken, waker) = flag();
        let mut cx = Context::from_waker(&waker);
        let second = poll_wait(task_waits(&core.wait), &lease, &mut cx, || look(1));
        producer.join().unwrap();
        if second.is_pending() {
            assert!(
                woken.0.load(Ordering::SeqCst),
                "lost wake-up: the second wait in a held slot sleeps forever"
            );
        }
        lease.end(task_waits(&core.wait));
    });
}

/// A task's `publish_async` on a full ring (multi producer) while a consumer releases a slot:
/// the release's notify wakes it, or its second try-claim finds the room; either way it
/// publishes sequence 2, once.
#[test]
fn a_release_of_room_wakes_a_task_awaiting_it() {
    loom::model(|| {
        let (core, gate) = core::<Multi>();
        let mut producer = Producer::new(core.clone());
        for v in 0..2 {
            let (c, local, _) = producer.parts();
            let claim = publish::claim(c, local, 1, Mode::Try).unwrap();
            publish::write_one(c, claim, |e| *e = v);
        }
        let c = core.clone();
        let g = gate.clone();
        let consumer = thread::spawn(move || {
            g.set(0);
            c.wait.notify();
        });
        let (woken, waker) = flag();
        let mut cx = Context::from_waker(&waker);
        let mut publish = pin!(producer.publish_async(|e| *e = 2));
        let first = publish.as_mut().poll(&mut cx);
        consumer.join().unwrap();
        match first {
            Poll::Ready(r) => assert_eq!(r, Ok(2)),
            Poll::Pending => {
                assert!(
                    woken.0.load(Ordering::SeqCst),
                    "lost wake-up: the task sleeps forever"
                );
                assert_eq!(publish.as_mut().poll(&mut cx), Poll::Ready(Ok(2)));
            }
        }
    });
}

/// A task awaiting a receipt while the stage moves past the event: the stage's notify wakes it,
/// or its second look sees the stage's sequence.
#[test]
fn a_stage_moving_wakes_a_task_awaiting_a_receipt() {
    loom::model(|| {
        let (core, gate) = core::<Single>();
        let tracker = Tracker::graph(core.clone());
        let c = core.clone();
        let g = gate.clone();
        let stage = thread::spawn(move || {
            g.set(0);
            c.wait.notify();
        });
        let (woken, waker) = flag();
        let mut cx = Context::from_waker(&waker);
        let mut receipt = pin!(tracker.processed_async(0));
        let first = receipt.as_mut().poll(&mut cx);
        stage.join().unwrap();
        if first.is_pending() {
            assert!(
                woken.0.load(Ordering::SeqCst),
                "lost wake-up: the task sleeps forever"
            );
            assert_eq!(receipt.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
        }
    });
}
