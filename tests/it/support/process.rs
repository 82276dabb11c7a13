//! The real `vidx` binary as a child process: `vidx serve` on an ephemeral
//! loopback port with its stderr drained into a [`Log`], killed with SIGKILL
//! when dropped, and one-shot commands (`vidx gen`, `vidx link`, ...).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_vidx");

/// The server binary: `VIDX_BIN` if set (to measure another build), else
/// this build's.
fn server_bin() -> String {
    std::env::var("VIDX_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// What the stderr of one server process said: the last lines, and counts
/// of the events the tests look for.
#[derive(Default)]
pub struct Log {
    pub tail: VecDeque<String>,
    /// Every line (up to [`MAX_LINES`]), for tests that read the whole log.
    pub lines: Vec<String>,
    /// Where `--metrics-listen` ended up, once the server said so.
    pub metrics: Option<String>,
    pub seals: u64,
    pub merges: u64,
    /// Opens that cut a torn WAL tail.
    pub torn_tails: u64,
    pub errors: Vec<String>,
}

/// Lines kept in [`Log::lines`].
pub const MAX_LINES: usize = 20_000;

impl Log {
    fn push(&mut self, line: String) {
        if line.contains("metrics serving")
            && let Some(a) = field(&line, "listen")
        {
            self.metrics = Some(a.to_string());
        }
        if self.lines.len() < MAX_LINES {
            self.lines.push(line.clone());
        }
        if line.contains("segment sealed") {
            self.seals += 1;
        }
        if line.contains("segments merged") {
            self.merges += 1;
        }
        if line.contains("collection opened")
            && field(&line, "wal_bytes_dropped").is_some_and(|v| v != "0")
        {
            self.torn_tails += 1;
        }
        if line.contains("ERROR") {
            self.errors.push(line.clone());
        }
        if self.tail.len() == 40 {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

/// `name=value` in a tracing line, or `"name":"value"` (or a number) in a
/// JSON one (`--log-format json`).
pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    if let Some(at) = line.find(&format!("\"{name}\":")) {
        let rest = &line[at + name.len() + 3..];
        return match rest.strip_prefix('"') {
            Some(s) => s.split('"').next(),
            None => rest.split([',', '}']).next(),
        };
    }
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    line[at..].split_whitespace().next()
}

/// A `vidx serve` child; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    child: Child,
    log: Arc<Mutex<Log>>,
    reader: Option<std::thread::JoinHandle<()>>,
    addr: mpsc::Receiver<String>,
    killed: bool,
}

impl ServerProcess {
    /// Spawns `vidx serve --listen 127.0.0.1:0 --data-dir DIR ARGS...`.
    pub fn spawn<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> ServerProcess {
        Self::spawn_env(dir, args, &[])
    }

    /// [`ServerProcess::spawn`] with these environment variables set too.
    pub fn spawn_env<S: AsRef<OsStr>>(
        dir: &Path,
        args: &[S],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        Self::spawn_on(dir, "127.0.0.1:0", args, env)
    }

    /// Spawns `vidx serve --listen LISTEN --data-dir DIR ARGS...` with these
    /// environment variables set.
    pub fn spawn_on<S: AsRef<OsStr>>(
        dir: &Path,
        listen: &str,
        args: &[S],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut child = Command::new(server_bin())
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(dir)
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vidx serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Log::default()));
        let (tx, addr) = mpsc::channel();
        let l = log.clone();
        // Drains stderr for the whole life of the process so it never blocks.
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Listening comes first; ready once every collection is open.
                if line.contains("vidx ready")
                    && let Some(a) = field(&line, "listen")
                {
                    let _ = tx.send(a.to_string());
                }
                l.lock().unwrap().push(line);
            }
        });
        ServerProcess {
            child,
            log,
            reader: Some(reader),
            addr,
            killed: false,
        }
    }

    /// Spawns the server and blocks until it is ready; returns it with its URL.
    /// Panics with the server's last log lines if it does not come up.
    pub fn start<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> (ServerProcess, String) {
        let mut p = ServerProcess::spawn(dir, args);
        let started = Instant::now();
        loop {
            match p.poll_serving(started, Duration::from_secs(60)) {
                Some(Ok(url)) => return (p, url),
                Some(Err(e)) => panic!("vidx serve: {e}\n{}", p.tail()),
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Waits (without blocking the async runtime) for the "vidx ready
    /// listen=ADDR" line (every collection opened); Err if the process exits
    /// first or `timeout` passes.
    pub async fn serving(&mut self, timeout: Duration) -> Result<String, String> {
        let started = Instant::now();
        loop {
            if let Some(r) = self.poll_serving(started, timeout) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn poll_serving(
        &mut self,
        started: Instant,
        timeout: Duration,
    ) -> Option<Result<String, String>> {
        match self.addr.try_recv() {
            Ok(a) => Some(Ok(format!("http://{a}"))),
            Err(mpsc::TryRecvError::Disconnected) => {
                let status = self.child.wait().map(|s| s.to_string());
                Some(Err(format!(
                    "the server exited before serving ({status:?})"
                )))
            }
            Err(mpsc::TryRecvError::Empty) if started.elapsed() > timeout => {
                Some(Err(format!("no ready line after {timeout:?}")))
            }
            Err(mpsc::TryRecvError::Empty) => None,
        }
    }

    /// Sends SIGTERM (a polite stop) and returns at once.
    pub fn send_sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `timeout` for the process to exit; its exit status, or
    /// None if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.killed = true;
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return Some(s);
            }
            if started.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, reap, and collect the rest of its stderr.
    pub fn kill(&mut self) {
        if !self.killed {
            self.killed = true;
            let _ = self.child.kill();
            let _ = self.child.wait();
            if let Some(r) = self.reader.take() {
                let _ = r.join();
            }
        }
    }

    /// The metrics listener's `host:port` (with `--metrics-listen`).
    pub fn metrics_addr(&self) -> Option<String> {
        self.log().metrics.clone()
    }

    /// Stops the server with SIGTERM and waits for it to exit (its log is
    /// then complete); SIGKILL after 10 s.
    pub fn terminate(&mut self) {
        if self.killed {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }

    /// The last log lines, indented, for a failure message.
    pub fn tail(&self) -> String {
        self.log()
            .tail
            .iter()
            .map(|s| format!("    {s}\n"))
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `vidx ARGS...` to completion and returns its stdout; panics with
/// both streams if it fails.
pub fn run<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run vidx");
    assert!(
        out.status.success(),
        "vidx {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
