//! Across processes: ringmq's cross-process ring beside the in-process ring, a Unix-domain
//! socket pair, and the floor, a cache line bounced between two processes.
//!
//! Groups (ids are `group/implementation/burst`):
//! - `ipc_unicast_1p1c`: one producer (this process) and one consumer (a child process, this
//!   binary re-executed; a thread for the in-process ring); one criterion iteration publishes
//!   one burst (single publishes for 1, `publish_batch` otherwise), a measurement publishes
//!   `iters` bursts and waits until the consumer has handled the last. Bursts 1, 10, 100.
//! - `ipc_round_trip`: one event to a child process and one back (two rings: ping and pong; a
//!   socket's write and read).
//! - `ipc_floor`: the floor, a shared word set odd by us, even by the child, probed before and
//!   after the rest (`before`, `after`).
//!
//! `RINGMQ_IPC_ONLY=ringmq-ipc,unix-socket` runs only those implementations (with the floor
//! probes): what `tools/ipc_compare.py` does, one implementation per fresh process, in shuffled
//! rounds.
//!
//! Implementations: `ringmq-ipc` (`ringmq::ipc`), `ringmq-threads` (the in-process ring, a
//! consumer thread), `unix-socket` (a Unix-domain stream, 8-byte messages), `iceoryx2`
//! (publish-subscribe, `send_copy` of a `u64`, a subscriber buffer as deep as the ring,
//! no overwrite). Everybody spins (busy waits) on its own core: two processes on two cores.
//!
//! `cargo bench --bench ipc`; `-- --test` runs each once.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ringmq::ipc::{IpcWait, ShmOptions, ShmRing};
use ringmq::{Builder, BusySpin, Consumer};

const CAPACITY: usize = 1024;
const BURSTS: [u64; 3] = [1, 10, 100];

fn options() -> ShmOptions {
    ShmOptions::single_producer(CAPACITY).wait(IpcWait::BusySpin)
}

fn shm_path(what: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(format!("ringmq-bench-{what}-{}", std::process::id()))
}

/// This binary, re-executed as a child playing `role`.
fn spawn(role: &str, args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("RINGMQ_BENCH_CHILD", role)
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn main() {
    if let Ok(role) = std::env::var("RINGMQ_BENCH_CHILD") {
        let args: Vec<String> = std::env::args().skip(1).collect();
        return child(&role, &args);
    }
    let mut c = Criterion::default().configure_from_args();
    let only = std::env::var("RINGMQ_IPC_ONLY").ok();
    let wanted = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|w| w == name))
    };
    floor(&mut c, "before");
    unicast(&mut c, &wanted);
    round_trip(&mut c, &wanted);
    floor(&mut c, "after");
    c.final_summary();
}

/// The cross-process cache-line round trip, probed before and after the implementations (the
/// host's placement of the two vCPUs can change between them: `tools/ipc_compare.py` keeps a
/// trial only if both probes agree).
fn floor(c: &mut Criterion, when: &str) {
    let mut group = c.benchmark_group("ipc_floor");
    group
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300));
    let path = shm_path(&format!("floor-{when}"));
    let word = map_word(&path);
    word.store(0, Ordering::Release);
    let mut kid = spawn("floor", &[path.to_str().unwrap()]);
    let mut v = 0u64;
    group.bench_function(when, |b| {
        b.iter(|| {
            v += 1;
            word.store(v, Ordering::Release);
            v += 1;
            while word.load(Ordering::Acquire) != v {
                std::hint::spin_loop();
            }
        })
    });
    word.store(u64::MAX, Ordering::Release);
    kid.wait().unwrap();
    let _ = std::fs::remove_file(&path);
    group.finish();
}

fn child(role: &str, args: &[String]) {
    match role {
        "shm-consumer" => {
            let ring = ShmRing::<u64>::open(&args[0], options()).unwrap();
            let mut consumer = ring.consumer("bench").unwrap();
            let mut sum = 0u64;
            consumer.run(|e, _, _| sum = sum.wrapping_add(*e));
            std::hint::black_box(sum);
        }
        "shm-echo" => {
            let ping = ShmRing::<u64>::open(&args[0], options()).unwrap();
            let pong = ShmRing::<u64>::open(&args[1], options()).unwrap();
            let mut consumer = ping.consumer("echo").unwrap();
            // The parent attached its pong consumer before starting us.
            let mut producer = pong.producer().unwrap();
            consumer.run(|e, _, _| {
                let v = *e;
                producer.publish(|slot| *slot = v).unwrap();
            });
        }
        "uds-consumer" => {
            let mut s = UnixStream::connect(&args[0]).unwrap();
            let mut buf = [0u8; 8 * 128];
            let mut pending = 0usize;
            loop {
                let n = match s.read(&mut buf[pending..]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let total = pending + n;
                let whole = total / 8 * 8;
                for m in buf[..whole].chunks(8) {
                    if u64::from_le_bytes(m.try_into().unwrap()) == u64::MAX {
                        s.write_all(&[1]).unwrap();
                    }
                }
                buf.copy_within(whole..total, 0);
                pending = total - whole;
            }
        }
        "uds-echo" => {
            let mut s = UnixStream::connect(&args[0]).unwrap();
            let mut m = [0u8; 8];
            while s.read_exact(&mut m).is_ok() {
                s.write_all(&m).unwrap();
            }
        }
        "iox-consumer" => {
            let (service, word) = (iox_service(&args[0]), map_word(Path::new(&args[1])));
            let subscriber = service
                .subscriber_builder()
                .buffer_size(IOX_BUFFER)
                .create()
                .unwrap();
            let mut count = 0u64;
            word.store(1, Ordering::Release);
            loop {
                while let Some(sample) = subscriber.receive().unwrap() {
                    match *sample {
                        IOX_HELLO => {}
                        IOX_SYNC => word.store(count + 2, Ordering::Release),
                        IOX_END => return,
                        _ => count += 1,
                    }
                }
                std::hint::spin_loop();
            }
        }
        "iox-echo" => {
            let ping = iox_service(&args[0]);
            let pong = iox_service(&args[1]);
            let subscriber = ping
                .subscriber_builder()
                .buffer_size(IOX_BUFFER)
                .create()
                .unwrap();
            let publisher = iox_publisher(&pong);
            loop {
                while let Some(sample) = subscriber.receive().unwrap() {
                    match *sample {
                        IOX_HELLO => {}
                        IOX_END => return,
                        v => {
                            publisher.send_copy(v).unwrap();
                        }
                    }
                }
                std::hint::spin_loop();
            }
        }
        "floor" => {
            let word = map_word(Path::new(&args[0]));
            let mut seen = 0;
            loop {
                let v = word.load(Ordering::Acquire);
                if v == u64::MAX {
                    return;
                }
                if v != seen && v % 2 == 1 {
                    seen = v + 1;
                    word.store(seen, Ordering::Release);
                }
                std::hint::spin_loop();
            }
        }
        other => panic!("unknown child role {other}"),
    }
}

/// One shared word in a file mapping, for the floor: leaked (the process ends with it).
fn map_word(path: &Path) -> &'static AtomicU64 {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    file.set_len(4096).unwrap();
    let map = Box::leak(Box::new(
        memmap2::MmapOptions::new()
            .len(4096)
            .map_raw(&file)
            .unwrap(),
    ));
    // SAFETY: the mapping is 4096 bytes, page-aligned, shared, and leaked (lives forever); an
    // AtomicU64 may alias memory another process writes atomically.
    unsafe { &*(map.as_mut_ptr() as *const AtomicU64) }
}

/// iceoryx2: its own buffer per subscriber (as deep as our ring), no overwrite: the publisher
/// retries until the subscriber took some (backpressure, as ringmq's).
const IOX_BUFFER: usize = CAPACITY;
const IOX_HELLO: u64 = u64::MAX - 2;
const IOX_SYNC: u64 = u64::MAX - 1;
const IOX_END: u64 = u64::MAX;

type IoxService = iceoryx2::service::port_factory::publish_subscribe::PortFactory<
    iceoryx2::service::ipc::Service,
    u64,
    (),
>;

fn iox_service(name: &str) -> IoxService {
    use iceoryx2::prelude::*;
    // Leaked: a node lives as long as the process (each process makes one per service).
    let node = Box::leak(Box::new(
        NodeBuilder::new().create::<ipc::Service>().unwrap(),
    ));
    node.service_builder(&name.try_into().unwrap())
        .publish_subscribe::<u64>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(IOX_BUFFER)
        .open_or_create()
        .unwrap()
}

fn iox_publisher(
    service: &IoxService,
) -> iceoryx2::port::publisher::Publisher<iceoryx2::service::ipc::Service, u64, ()> {
    use iceoryx2::prelude::*;
    let publisher = service
        .publisher_builder()
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()
        .unwrap();
    // Until the subscriber is connected, a sample reaches nobody: greet until it does.
    while publisher.send_copy(IOX_HELLO).unwrap() == 0 {
        std::thread::yield_now();
    }
    publisher
}

fn wait_drained(producer: &ringmq::ipc::ShmProducer<u64>) {
    while producer.remaining_capacity() != CAPACITY {
        std::hint::spin_loop();
    }
}

fn unicast(c: &mut Criterion, wanted: &dyn Fn(&str) -> bool) {
    let mut group = c.benchmark_group("ipc_unicast_1p1c");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    if wanted("ringmq-ipc") {
        unicast_ringmq_ipc(&mut group);
    }
    if wanted("ringmq-threads") {
        unicast_ringmq_threads(&mut group);
    }
    if wanted("unix-socket") {
        unicast_unix_socket(&mut group);
    }
    if wanted("iceoryx2") {
        unicast_iceoryx2(&mut group);
    }
    group.finish();
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn unicast_ringmq_ipc(group: &mut Group<'_>) {
    let path = shm_path("unicast");
    let ring = ShmRing::<u64>::create(&path, options()).unwrap();
    let mut kid = spawn("shm-consumer", &[path.to_str().unwrap()]);
    while ring.stages().is_empty() {
        std::thread::yield_now();
    }
    let mut producer = ring.producer().unwrap();
    for burst in BURSTS {
        group.throughput(Throughput::Elements(burst));
        group.bench_function(BenchmarkId::new("ringmq-ipc", burst), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    if burst == 1 {
                        producer.publish(|e| *e = i).unwrap();
                    } else {
                        producer
                            .publish_batch(burst as usize, |e, k| *e = i + k as u64)
                            .unwrap();
                    }
                }
                wait_drained(&producer);
                start.elapsed()
            })
        });
    }
    drop(producer);
    kid.wait().unwrap();
}

/// ringmq in one process (the consumer a thread).
fn unicast_ringmq_threads(group: &mut Group<'_>) {
    let mut builder = Builder::single_producer(CAPACITY, || 0u64, BusySpin).unwrap();
    let done = Arc::new(AtomicI64::new(-1));
    let sink = done.clone();
    // Reads every event, as the cross-process consumer does (a sum), and says how far it got at
    // the end of each batch.
    let mut sum = 0u64;
    builder.add(Consumer::new("bench", move |e: &u64, seq, end| {
        sum = sum.wrapping_add(*e);
        if end {
            std::hint::black_box(sum);
            sink.store(seq, Ordering::Release);
        }
    }));
    let (mut p, queue) = builder.build().unwrap();
    let mut last = -1i64;
    for burst in BURSTS {
        group.throughput(Throughput::Elements(burst));
        group.bench_function(BenchmarkId::new("ringmq-threads", burst), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    last = if burst == 1 {
                        p.publish(|e| *e = i).unwrap()
                    } else {
                        p.publish_batch(burst as usize, |e, k| *e = i + k as u64)
                            .unwrap()
                            .end
                            - 1
                    };
                }
                while done.load(Ordering::Acquire) < last {
                    std::hint::spin_loop();
                }
                start.elapsed()
            })
        });
    }
    drop(p);
    queue.shutdown().unwrap();
}

/// A Unix-domain socket pair: 8-byte messages, a marker to learn the consumer caught up.
fn unicast_unix_socket(group: &mut Group<'_>) {
    let sock = shm_path("unicast.sock");
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    let mut kid = spawn("uds-consumer", &[sock.to_str().unwrap()]);
    let (mut s, _) = listener.accept().unwrap();
    let mut buf = Vec::with_capacity(8 * 100);
    for burst in BURSTS {
        group.throughput(Throughput::Elements(burst));
        group.bench_function(BenchmarkId::new("unix-socket", burst), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    buf.clear();
                    for k in 0..burst {
                        buf.extend_from_slice(&(i + k).to_le_bytes());
                    }
                    s.write_all(&buf).unwrap();
                }
                s.write_all(&u64::MAX.to_le_bytes()).unwrap();
                let mut ack = [0u8; 1];
                s.read_exact(&mut ack).unwrap();
                start.elapsed()
            })
        });
    }
    drop(s);
    kid.wait().unwrap();
    let _ = std::fs::remove_file(&sock);
}

fn round_trip(c: &mut Criterion, wanted: &dyn Fn(&str) -> bool) {
    let mut group = c.benchmark_group("ipc_round_trip");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    if wanted("ringmq-ipc") {
        round_trip_ringmq_ipc(&mut group);
    }
    if wanted("unix-socket") {
        round_trip_unix_socket(&mut group);
    }
    if wanted("iceoryx2") {
        round_trip_iceoryx2(&mut group);
    }
    group.finish();
}

/// ringmq: a ping ring to the child, a pong ring back.
fn round_trip_ringmq_ipc(group: &mut Group<'_>) {
    let (ping_path, pong_path) = (shm_path("ping"), shm_path("pong"));
    let ping = ShmRing::<u64>::create(&ping_path, options()).unwrap();
    let pong = ShmRing::<u64>::create(&pong_path, options()).unwrap();
    let mut back = pong.consumer("back").unwrap();
    let mut kid = spawn(
        "shm-echo",
        &[ping_path.to_str().unwrap(), pong_path.to_str().unwrap()],
    );
    while ping.stages().is_empty() {
        std::thread::yield_now();
    }
    let mut out = ping.producer().unwrap();
    let mut i = 0u64;
    group.bench_function("ringmq-ipc", |b| {
        b.iter(|| {
            i += 1;
            out.publish(|e| *e = i).unwrap();
            let mut got = false;
            while !got {
                back.poll(|e, _, _| {
                    got = *e == i;
                    true
                });
            }
        })
    });
    drop(out);
    kid.wait().unwrap();
    drop(back);
}

/// A Unix-domain socket: 8 bytes there, 8 back.
fn round_trip_unix_socket(group: &mut Group<'_>) {
    let sock = shm_path("rtt.sock");
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    let mut kid = spawn("uds-echo", &[sock.to_str().unwrap()]);
    let (mut s, _) = listener.accept().unwrap();
    let mut m = [0u8; 8];
    group.bench_function("unix-socket", |b| {
        b.iter(|| {
            s.write_all(&m).unwrap();
            s.read_exact(&mut m).unwrap();
        })
    });
    drop(s);
    kid.wait().unwrap();
    let _ = std::fs::remove_file(&sock);
}

/// iceoryx2 publish-subscribe: one sample per event (it has no batch publish), a sync sample at
/// the end of a measurement that the child answers through a shared word.
fn unicast_iceoryx2(group: &mut Group<'_>) {
    let name = format!("ringmq-bench/unicast/{}", std::process::id());
    let service = iox_service(&name);
    let word_path = shm_path("iox-word");
    let word = map_word(&word_path);
    word.store(0, Ordering::Release);
    let mut kid = spawn("iox-consumer", &[&name, word_path.to_str().unwrap()]);
    while word.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    let publisher = iox_publisher(&service);
    let mut sent = 0u64;
    for burst in BURSTS {
        group.throughput(Throughput::Elements(burst));
        group.bench_function(BenchmarkId::new("iceoryx2", burst), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    for k in 0..burst {
                        publisher.send_copy(i + k).unwrap();
                    }
                }
                sent += iters * burst;
                publisher.send_copy(IOX_SYNC).unwrap();
                while word.load(Ordering::Acquire) != sent + 2 {
                    std::hint::spin_loop();
                }
                start.elapsed()
            })
        });
    }
    publisher.send_copy(IOX_END).unwrap();
    kid.wait().unwrap();
    let _ = std::fs::remove_file(&word_path);
}

/// iceoryx2: a ping service to the child, a pong service back.
fn round_trip_iceoryx2(group: &mut Group<'_>) {
    let ping_name = format!("ringmq-bench/ping/{}", std::process::id());
    let pong_name = format!("ringmq-bench/pong/{}", std::process::id());
    let ping = iox_service(&ping_name);
    let pong = iox_service(&pong_name);
    let back = pong
        .subscriber_builder()
        .buffer_size(IOX_BUFFER)
        .create()
        .unwrap();
    let mut kid = spawn("iox-echo", &[&ping_name, &pong_name]);
    let out = iox_publisher(&ping);
    // The child's publisher greets us once connected.
    loop {
        if let Some(s) = back.receive().unwrap() {
            if *s == IOX_HELLO {
                break;
            }
        }
        std::hint::spin_loop();
    }
    let mut i = 0u64;
    group.bench_function("iceoryx2", |b| {
        b.iter(|| {
            i += 1;
            out.send_copy(i).unwrap();
            loop {
                if let Some(s) = back.receive().unwrap() {
                    if *s == i {
                        break;
                    }
                }
                std::hint::spin_loop();
            }
        })
    });
    out.send_copy(IOX_END).unwrap();
    kid.wait().unwrap();
}
