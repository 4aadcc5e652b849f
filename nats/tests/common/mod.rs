//! A real `nats-server` with JetStream for the tests: started on a loopback port with a store
//! directory of its own, stopped (and its directory removed) when dropped; or three of them
//! routed into one JetStream cluster.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const GUARD: Duration = Duration::from_secs(120);

/// The nats-server binary: `$NATS_SERVER`, else `nats-server` on the PATH or in /usr/sbin
/// (Debian's package). `None` if there is none: the test then says so and passes, unless
/// `RINGMQ_REQUIRE_NATS=1` (as in CI), where it fails.
pub fn server_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::var_os("NATS_SERVER")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::split_paths(&path).map(|p| p.join("nats-server")))
        .chain([
            PathBuf::from("/usr/sbin/nats-server"),
            PathBuf::from("/usr/bin/nats-server"),
        ]);
    for c in candidates {
        if c.is_file() {
            return Some(c);
        }
    }
    if std::env::var("RINGMQ_REQUIRE_NATS").as_deref() == Ok("1") {
        panic!("nats-server not found (RINGMQ_REQUIRE_NATS=1): apt-get install nats-server");
    }
    eprintln!("SKIPPED: nats-server not found; install it (apt-get install nats-server) to run the bridge tests");
    None
}

pub struct NatsServer {
    binary: PathBuf,
    pub dir: PathBuf,
    pub port: u16,
    /// The server's name (`-n`): what JetStream names a stream's leader and replicas by.
    pub name: String,
    /// Arguments beyond the store and the client port (the cluster's).
    args: Vec<String>,
    child: Option<Child>,
}

/// A free loopback port (bound, read and released: a port for a cluster route, which the
/// servers must know before they start).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsServer {
    /// Starts a server on a free loopback port; `None` if nats-server is not installed.
    pub fn start(name: &str) -> Option<NatsServer> {
        let binary = server_binary()?;
        let mut server = NatsServer::new(binary, name, Vec::new());
        server.launch();
        Some(server)
    }

    fn new(binary: PathBuf, name: &str, args: Vec<String>) -> NatsServer {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringmq-nats-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        NatsServer {
            binary,
            dir,
            port: 0,
            name: name.to_string(),
            args,
            child: None,
        }
    }

    /// Three servers routed into one JetStream cluster (`ringmq`), each with its own store and
    /// client port; `None` if nats-server is not installed. The cluster elects its JetStream
    /// meta leader by itself after start (streams can be created once it has one).
    pub fn cluster(name: &str) -> Option<Vec<NatsServer>> {
        let binary = server_binary()?;
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let all_routes = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers: Vec<NatsServer> = routes
            .iter()
            .enumerate()
            .map(|(i, route)| {
                let args = [
                    "--cluster_name",
                    "ringmq",
                    "--cluster",
                    &format!("nats://127.0.0.1:{route}"),
                    "--routes",
                    &all_routes,
                ]
                .map(String::from)
                .to_vec();
                NatsServer::new(binary.clone(), &format!("{name}-{i}"), args)
            })
            .collect();
        for s in &mut servers {
            s.launch();
        }
        Some(servers)
    }

    /// Starts the process (on `self.port`, or a free one the first time) and waits for it to
    /// say it is ready (bounded).
    pub fn launch(&mut self) {
        let port = if self.port == 0 {
            "-1".to_string()
        } else {
            self.port.to_string()
        };
        let mut child = Command::new(&self.binary)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &port,
                "-n",
                &self.name,
                "-sd",
            ])
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nats-server");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + GUARD;
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("nats-server did not become ready");
            if let Some(at) = line.find("Listening for client connections on ") {
                let addr = &line[at + "Listening for client connections on ".len()..];
                self.port = addr.rsplit(':').next().unwrap().trim().parse().unwrap();
            }
            if line.contains("Server is ready") {
                break;
            }
            assert!(!line.contains("[FTL]"), "nats-server failed: {line}");
        }
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server gracefully (SIGTERM: JetStream flushes its store) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .unwrap();
            assert!(status.success());
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(child.wait());
            });
            rx.recv_timeout(GUARD)
                .expect("nats-server did not stop")
                .unwrap();
        }
    }

    /// Kills the server with SIGKILL (no flush, no goodbye to its routes) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Stops the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
