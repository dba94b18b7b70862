//! What the integration tests share: the repository's files (`events/` fixtures, the template),
//! New York wall-clock instants, and local HTTP servers on 127.0.0.1 playing the OrderBroker
//! (green) for the validator and load tests. Each server answers by a behaviour chosen per test;
//! every request is recorded.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The repository root (template.yaml, samconfig.toml, events/).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// An `events/` fixture as text.
pub fn event_text(name: &str) -> String {
    std::fs::read_to_string(root().join("events").join(name)).unwrap()
}

/// An `events/` fixture as JSON.
pub fn event_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&event_text(name)).unwrap()
}

/// The `orderbroker` CLI this test run built.
pub fn orderbroker() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_orderbroker"))
}

/// Its standard output, after asserting it exited 0 (its standard error otherwise).
pub fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `date` at `hm` New York wall-clock time, as UTC.
pub fn ny(date: &str, hm: &str) -> chrono::DateTime<chrono::Utc> {
    orderbroker::calendar::local_instant(
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        chrono::NaiveTime::parse_from_str(hm, "%H:%M").unwrap(),
    )
    .unwrap()
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers: (status, body, delay) for the n-th request to a path kind.
/// Status 0 = read the request, then close the connection without answering (a crash).
pub type Behaviour = Arc<dyn Fn(&str, usize) -> (u16, String, Duration) + Send + Sync>;

pub struct Server {
    pub url: String,
    /// Every request read, answered or not.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Every request answered, with the status written (the server's ledger).
    pub answered: Arc<Mutex<Vec<(Seen, u16)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn order_ok(n: usize) -> String {
    format!(r#"{{"orderId":"o-{n}","status":"REJECTED_SYNTHETIC"}}"#)
}

#[derive(Clone)]
struct Shared {
    behaviour: Behaviour,
    seen: Arc<Mutex<Vec<Seen>>>,
    answered: Arc<Mutex<Vec<(Seen, u16)>>>,
    counts: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    total: Arc<std::sync::atomic::AtomicUsize>,
}

impl Shared {
    fn new(behaviour: Behaviour) -> Self {
        Shared {
            behaviour,
            seen: Arc::default(),
            answered: Arc::default(),
            counts: Arc::default(),
            total: Arc::default(),
        }
    }
}

/// Serves one connection; `crash_at` = the overall request number at which the process "dies".
async fn connection(
    mut sock: tokio::net::TcpStream,
    sh: Shared,
    crash: Option<(usize, Arc<tokio::sync::Notify>)>,
) {
    loop {
        let Some(req) = read_request(&mut sock).await else {
            return;
        };
        let n = {
            let mut c = sh.counts.lock().unwrap();
            let e = c.entry(req.path.clone()).or_insert(0);
            *e += 1;
            *e
        };
        let overall = sh.total.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        sh.seen.lock().unwrap().push(req.clone());
        if let Some((at, notify)) = &crash {
            if overall == *at {
                notify.notify_one();
                return; // the request is read and never answered
            }
        }
        let (status, body, delay) = (sh.behaviour)(&req.path, n);
        tokio::time::sleep(delay).await;
        if status == 0 {
            return;
        }
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if sock.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
        sh.answered.lock().unwrap().push((req, status));
    }
}

/// Starts a server; `behaviour(path, n)` gets the path and how many requests that path had.
pub async fn serve(behaviour: Behaviour) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sh = Shared::new(behaviour);
    let (seen, answered) = (sh.seen.clone(), sh.answered.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(connection(sock, sh.clone(), None));
        }
    });
    Server {
        url,
        seen,
        answered,
        task,
    }
}

/// A server whose process dies when it reads its `crash_at`-th request (that request and every
/// open connection get no answer, the port refuses connections) and comes back on the same
/// port after `down`.
pub async fn serve_restarting(behaviour: Behaviour, crash_at: usize, down: Duration) -> Server {
    let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = first.local_addr().unwrap();
    let sh = Shared::new(behaviour);
    let (seen, answered) = (sh.seen.clone(), sh.answered.clone());
    let task = tokio::spawn(async move {
        let mut next = Some(first);
        let mut crashed = false;
        loop {
            let listener = match next.take() {
                Some(l) => l,
                None => TcpListener::bind(addr).await.unwrap(),
            };
            let notify = Arc::new(tokio::sync::Notify::new());
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = notify.notified() => break,
                    acc = listener.accept() => {
                        let Ok((sock, _)) = acc else { return };
                        let crash = (!crashed).then(|| (crash_at, notify.clone()));
                        conns.spawn(connection(sock, sh.clone(), crash));
                    }
                }
            }
            crashed = true;
            drop(listener);
            conns.abort_all();
            while conns.join_next().await.is_some() {}
            tokio::time::sleep(down).await;
        }
    });
    Server {
        url: format!("http://{addr}"),
        seen,
        answered,
        task,
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}

/// An address where nothing listens (bound, then closed).
pub async fn refusing_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// A declared 08:30-09:00 CPI release on `date` (floor 12), checked against the plain calendar.
pub fn cpi_event(date: &str) -> orderbroker::warmup::events::Event {
    orderbroker::warmup::events::DeclaredEvent {
        date: chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        start: "08:30".into(),
        end: "09:00".into(),
        floor: Some(12),
        multiplier: None,
        of: None,
        reason: "CPI".into(),
    }
    .check(&orderbroker::calendar::Calendar::new())
    .unwrap()
}

/// `orderbroker plan ARGS FILE` without the shell's MARKET_CLOSURES (the file is the last
/// argument's value: `--events`, `--forecast` or `--svg`).
pub fn plan_cli(args: &[&str], file: &Path) -> std::process::Output {
    orderbroker()
        .arg("plan")
        .args(args)
        .arg(file)
        .env_remove("MARKET_CLOSURES")
        .output()
        .unwrap()
}

/// A SAM template's text as CloudFormation receives it (scripts/sam-translate.py in
/// .venv/tools, which `make test` installs first), translated once per distinct text.
pub fn translated(text: &str) -> orderbroker::cfn::template::Template {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static CACHE: OnceLock<Mutex<HashMap<String, orderbroker::cfn::template::Template>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(t) = cache.lock().unwrap().get(text) {
        return t.clone();
    }
    let raw = orderbroker::cfn::template::Template::parse(text).unwrap();
    let t = orderbroker::update::translate::translate_all(vec![raw], Duration::from_secs(120))
        .expect("the SAM translator (make setup installs it in .venv/tools)")
        .pop()
        .unwrap();
    cache.lock().unwrap().insert(text.to_string(), t.clone());
    t
}

/// template.yaml's text.
pub fn template_text() -> String {
    std::fs::read_to_string(root().join("template.yaml")).unwrap()
}
