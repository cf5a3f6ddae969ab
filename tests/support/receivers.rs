//! Real notification receivers on loopback for the delivery tests: a plain
//! SMTP server (mailin-embedded, on std threads) and a small HTTP/1.1 server
//! (tokio) that records every request and answers what the test says.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Polls `collect` until it holds `n` items or `timeout` passes; returns
/// what it holds then.
async fn poll_until<T>(n: usize, timeout: Duration, collect: impl Fn() -> Vec<T>) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = collect();
        if got.len() >= n || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ------------------------------------------------------------------ SMTP ---

/// One message the SMTP server accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The raw message (headers and body), as sent after `DATA`.
    pub data: Vec<u8>,
}

impl Mail {
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    fn split(&self) -> (String, String) {
        let raw = self.raw();
        match raw.split_once("\r\n\r\n") {
            Some((h, b)) => (h.to_string(), b.to_string()),
            None => (raw, String::new()),
        }
    }

    /// A header's value (folded lines joined), by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.split();
        let mut unfolded: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(last) = unfolded.last_mut() {
                    last.push_str(line);
                }
            } else {
                unfolded.push(line.to_string());
            }
        }
        unfolded.into_iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// The body, decoded from quoted-printable or base64 when so encoded.
    pub fn body_text(&self) -> String {
        use base64::Engine;
        let (_, body) = self.split();
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        match encoding.as_str() {
            "base64" => {
                let compact: String = body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("base64 body");
                String::from_utf8_lossy(&bytes).into_owned()
            }
            "quoted-printable" => decode_qp(&body),
            _ => body,
        }
    }
}

fn decode_qp(text: &str) -> String {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct SmtpShared {
    mails: Mutex<Vec<Mail>>,
    /// Answer to `RCPT TO` instead of 250, e.g. `(451, "greylisted")`.
    fail_with: Mutex<Option<(u16, String)>>,
    /// Every transaction (`MAIL FROM`), accepted or not.
    attempts: AtomicUsize,
}

#[derive(Clone)]
struct SmtpHandler {
    shared: Arc<SmtpShared>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for SmtpHandler {
    fn mail(
        &mut self,
        _ip: std::net::IpAddr,
        _domain: &str,
        from: &str,
    ) -> mailin_embedded::Response {
        self.shared.attempts.fetch_add(1, Ordering::SeqCst);
        self.from = from.to_string();
        self.to.clear();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn rcpt(&mut self, to: &str) -> mailin_embedded::Response {
        if let Some((code, text)) = self.shared.fail_with.lock().unwrap().clone() {
            return mailin_embedded::Response::custom(code, text);
        }
        self.to.push(to.to_string());
        mailin_embedded::response::OK
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> mailin_embedded::Response {
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        self.shared.mails.lock().unwrap().push(Mail {
            from: self.from.clone(),
            to: std::mem::take(&mut self.to),
            data: std::mem::take(&mut self.data),
        });
        mailin_embedded::response::OK
    }
}

/// A plain SMTP server (no TLS, no AUTH) on `127.0.0.1`, for the life of
/// the test process.
pub struct SmtpServer {
    pub addr: SocketAddr,
    shared: Arc<SmtpShared>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(SmtpShared {
            mails: Mutex::new(Vec::new()),
            fail_with: Mutex::new(None),
            attempts: AtomicUsize::new(0),
        });
        let handler = SmtpHandler {
            shared: shared.clone(),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = mailin_embedded::Server::new(handler);
        server
            .with_name("receiver.test")
            .with_num_threads(16)
            .with_tcp_listener(listener);
        std::thread::Builder::new()
            .name(format!("smtp-{}", addr.port()))
            .spawn(move || {
                let _ = server.serve();
            })
            .expect("SMTP thread");
        SmtpServer { addr, shared }
    }

    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// From now on, refuse every recipient with this reply (451: temporary,
    /// as greylisting does; 550: permanent); `None` accepts again.
    ///
    /// At `RCPT` rather than at the end of `DATA`: after refusing a message
    /// there, mailin stays in its data state and never answers the client's
    /// `QUIT`.
    pub fn fail_with(&self, reply: Option<(u16, &str)>) {
        *self.shared.fail_with.lock().unwrap() = reply.map(|(c, t)| (c, t.to_string()));
    }

    /// How many transactions were started (accepted or refused).
    pub fn attempts(&self) -> usize {
        self.shared.attempts.load(Ordering::SeqCst)
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.shared.mails.lock().unwrap().clone()
    }

    /// The accepted messages once there are `n`, or all there are after
    /// `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        poll_until(n, timeout, || self.mails()).await
    }
}

// ------------------------------------------------------------------ HTTP ---

/// One request the HTTP receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, as in the request line.
    pub path: String,
    /// Lower-cased names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the HTTP receiver answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            body: String::new(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.to_string();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

struct HttpShared {
    requests: Mutex<Vec<Received>>,
    reply: Mutex<Reply>,
    connections: AtomicUsize,
}

/// A small HTTP/1.1 server on `127.0.0.1` (keep-alive, `Content-Length`
/// and chunked request bodies) that records every request and answers
/// [`Reply`], changeable while it runs. [`stop`](Self::stop) closes the
/// listener and every open connection; [`restart`](Self::restart) listens
/// again on the same port.
pub struct HttpReceiver {
    pub addr: SocketAddr,
    shared: Arc<HttpShared>,
    running: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl HttpReceiver {
    /// Answers `200 ok`.
    pub async fn start() -> HttpReceiver {
        let shared = Arc::new(HttpShared {
            requests: Mutex::new(Vec::new()),
            reply: Mutex::new(Reply::status(200).body("ok")),
            connections: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let mut r = HttpReceiver {
            addr,
            shared,
            running: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((sock, _)) = accepted else { continue };
                        shared.connections.fetch_add(1, Ordering::SeqCst);
                        conns.spawn(connection(sock, shared.clone()));
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    _ = stop_rx.changed() => break,
                }
            }
            // Closes every connection before the listener goes.
            conns.shutdown().await;
            drop(listener);
        });
        self.running = Some((stop_tx, task));
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_reply(&self, reply: Reply) {
        *self.shared.reply.lock().unwrap() = reply;
    }

    /// Answer `status` with an empty body from now on.
    pub fn set_status(&self, status: u16) {
        self.set_reply(Reply::status(status));
    }

    pub fn requests(&self) -> Vec<Received> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many TCP connections were accepted (keep-alive reuses one).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The requests once there are `n`, or all there are after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        poll_until(n, timeout, || self.requests()).await
    }

    /// Stops listening and closes every connection: clients now get
    /// "connection refused".
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind the same port again");
        self.serve(listener);
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(true);
            task.abort();
        }
    }
}

const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// Reads more bytes into `buf`; false at end of stream or on error.
async fn fill(sock: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match sock.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            buf.len() <= MAX_REQUEST
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads exactly `n` bytes from the front of `buf`, reading more as needed.
async fn take(sock: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> Option<Vec<u8>> {
    while buf.len() < n {
        if !fill(sock, buf).await {
            return None;
        }
    }
    Some(buf.drain(..n).collect())
}

/// Reads one CRLF-terminated line from the front of `buf`.
async fn line(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(p) = find(buf, b"\r\n") {
            let l = String::from_utf8_lossy(&buf[..p]).into_owned();
            buf.drain(..p + 2);
            return Some(l);
        }
        if !fill(sock, buf).await {
            return None;
        }
    }
}

async fn chunked_body(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size_line = line(sock, buf).await?;
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !line(sock, buf).await?.is_empty() {}
            return Some(body);
        }
        body.extend(take(sock, buf, size).await?);
        take(sock, buf, 2).await?; // CRLF after the chunk
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn connection(mut sock: TcpStream, shared: Arc<HttpShared>) {
    let mut buf = Vec::new();
    loop {
        // Head.
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p;
            }
            if !fill(&mut sock, &mut buf).await {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or("").split(' ');
        let method = request_line.next().unwrap_or("").to_string();
        let path = request_line.next().unwrap_or("").to_string();
        let version = request_line.next().unwrap_or("HTTP/1.1").to_string();
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim().to_string();
                headers
                    .entry(k)
                    .and_modify(|old| {
                        old.push_str(", ");
                        old.push_str(&v);
                    })
                    .or_insert(v);
            }
        }

        // Body.
        let chunked = headers
            .get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            match chunked_body(&mut sock, &mut buf).await {
                Some(b) => b,
                None => return,
            }
        } else {
            let len = headers
                .get("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            match take(&mut sock, &mut buf, len).await {
                Some(b) => b,
                None => return,
            }
        };

        let close = headers
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || version == "HTTP/1.0";
        shared.requests.lock().unwrap().push(Received {
            method,
            path,
            headers,
            body,
        });

        // Answer.
        let reply = shared.reply.lock().unwrap().clone();
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-length: {}\r\ncontent-type: text/plain\r\nconnection: {}\r\n",
            reply.status,
            reason(reply.status),
            reply.body.len(),
            if close { "close" } else { "keep-alive" },
        );
        for (k, v) in &reply.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&reply.body);
        if sock.write_all(out.as_bytes()).await.is_err() || close {
            let _ = sock.shutdown().await;
            return;
        }
    }
}
