//! A fault-injecting HTTP proxy for AWS API calls, on loopback: in front of moto it throttles,
//! fails with 500s, drops connections (after the request reached the server, so the caller
//! cannot know whether it took effect), delays every call, and can freeze after the N-th
//! mutating call so a test can kill the client at that exact point. Faults are drawn from a
//! seeded generator, so a run can be repeated.
//!
//! Errors are shaped like each protocol's: EC2's XML `<Response><Errors>`, IAM's and STS's
//! `<ErrorResponse>`, and JSON `__type` for CloudWatch Logs, so the SDKs classify them as they
//! would real ones (`RequestLimitExceeded` and `Throttling` as throttling, 500 as transient).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// What to inject, as fractions of requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Seed of the generator.
    pub seed: u64,
    /// Throttling errors, answered without forwarding.
    pub throttle: f64,
    /// 500s: half answered without forwarding, half after the server handled the request.
    pub server_error: f64,
    /// Connections closed without an answer after the server handled the request.
    pub drop: f64,
    /// Added to every call.
    pub delay: Duration,
    /// Stop answering anything once this many mutating calls have reached the server (the last
    /// one's answer is held too).
    pub freeze_after_mutations: Option<u64>,
    /// Serve what moto lacks of EKS (add-ons, access entries and their policies) in memory
    /// (`crate::eks_gaps`); every other call goes to the server.
    pub eks_gaps: bool,
}

/// Counts of what the proxy did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Requests received.
    pub requests: u64,
    /// Throttling errors sent.
    pub throttled: u64,
    /// 500s sent.
    pub server_errors: u64,
    /// Connections dropped after forwarding.
    pub dropped: u64,
    /// Mutating calls that reached the server.
    pub mutations_forwarded: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    dropped: AtomicU64,
    mutations: AtomicU64,
    frozen: AtomicBool,
}

struct Shared {
    upstream: String,
    faults: Faults,
    rng: Mutex<fastrand::Rng>,
    counters: Counters,
    frozen: tokio::sync::Notify,
    client: Client<HttpConnector, Full<Bytes>>,
    eks: crate::eks_gaps::EksGaps,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// The protocol family of a request, for shaping errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Ec2,
    Query,
    Json,
    /// S3's REST protocol: the operation is the method and path, not a field.
    RestXml,
}

/// The operation name and protocol of an AWS request. A REST request (S3) without a target
/// header or an `Action` field is named by its method: `GetObject`-like reads are `Get`, every
/// other method (`PUT`, `POST`, `DELETE`) is a mutation.
fn operation(method: &hyper::Method, request_target: Option<&str>, body: &[u8]) -> (String, Protocol) {
    if let Some(target) = request_target {
        return (target.rsplit('.').next().unwrap_or(target).to_owned(), Protocol::Json);
    }
    let text = String::from_utf8_lossy(body);
    if !text.contains("Action=") {
        let name = match *method {
            hyper::Method::GET | hyper::Method::HEAD => "Get",
            _ => "RestWrite",
        };
        return (name.to_owned(), Protocol::RestXml);
    }
    let body = text;
    let field = |name: &str| {
        body.split('&')
            .find_map(|pair| pair.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')).map(str::to_owned))
    };
    let protocol = if field("Version").as_deref() == Some("2016-11-15") { Protocol::Ec2 } else { Protocol::Query };
    (field("Action").unwrap_or_default(), protocol)
}

fn is_mutation(operation: &str) -> bool {
    !operation.is_empty() && !["Describe", "Get", "List"].iter().any(|read| operation.starts_with(read))
}

fn error_response(protocol: Protocol, status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let (body, content_type) = match protocol {
        Protocol::Ec2 => (
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
            ),
            "text/xml",
        ),
        Protocol::Query => (
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
            ),
            "text/xml",
        ),
        Protocol::Json => {
            (format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"), "application/x-amz-json-1.1")
        }
        Protocol::RestXml => (
            format!("<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"),
            "application/xml",
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    response
}

fn throttling(protocol: Protocol) -> Response<Full<Bytes>> {
    match protocol {
        Protocol::Ec2 => {
            error_response(protocol, StatusCode::SERVICE_UNAVAILABLE, "RequestLimitExceeded", "Request limit exceeded.")
        }
        Protocol::Query => error_response(protocol, StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded"),
        Protocol::Json => error_response(protocol, StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded"),
        Protocol::RestXml => {
            error_response(protocol, StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "Please reduce your request rate.")
        }
    }
}

fn internal(protocol: Protocol) -> Response<Full<Bytes>> {
    let code = if protocol == Protocol::Ec2 { "InternalError" } else { "InternalFailure" };
    error_response(protocol, StatusCode::INTERNAL_SERVER_ERROR, code, "An internal error has occurred")
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

impl Shared {
    /// Counts a mutating call that took effect; at the freeze limit, never returns.
    async fn counted_mutation(&self) {
        let count = self.counters.mutations.fetch_add(1, Ordering::SeqCst) + 1;
        if self.faults.freeze_after_mutations.is_some_and(|limit| count >= limit) {
            self.counters.frozen.store(true, Ordering::SeqCst);
            self.frozen.notify_waiters();
            std::future::pending::<()>().await;
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        if self.counters.frozen.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let (parts, body) = request.into_parts();
        let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
        let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
        let (operation, protocol) = operation(&parts.method, target, &body);
        if !self.faults.delay.is_zero() {
            tokio::time::sleep(self.faults.delay).await;
        }
        let roll = self.rng.lock().map(|mut rng| rng.f64()).unwrap_or(1.0);
        let faults = &self.faults;
        if roll < faults.throttle {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            return Ok(throttling(protocol));
        }
        if roll < faults.throttle + faults.server_error / 2.0 {
            self.counters.server_errors.fetch_add(1, Ordering::Relaxed);
            return Ok(internal(protocol));
        }
        let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok());
        let local = (faults.eks_gaps && crate::eks_gaps::is_eks(authorization))
            .then(|| self.eks.answer(parts.method.as_str(), parts.uri.path(), &body))
            .flatten();
        if let Some(answer) = local {
            let mut response = Response::builder()
                .status(answer.status)
                .header("content-type", "application/json")
                .header("x-amzn-requestid", "fault-proxy");
            if let Some(code) = answer.error {
                response = response.header("x-amzn-errortype", code);
            }
            let response = response.body(Full::new(Bytes::from(answer.body.to_string()))).map_err(|_| Dropped)?;
            if is_mutation(&operation) {
                self.counted_mutation().await;
            }
            return Ok(response);
        }
        let mut upstream = Request::builder().method(parts.method.clone()).uri(format!(
            "{}{}",
            self.upstream,
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        ));
        for (name, value) in &parts.headers {
            if name != "host" {
                upstream = upstream.header(name, value);
            }
        }
        let upstream = upstream.body(Full::new(body)).map_err(|_| Dropped)?;
        let response = self.client.request(upstream).await.map_err(|_| Dropped)?;
        let (head, body) = response.into_parts();
        let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
        if is_mutation(&operation) {
            self.counted_mutation().await;
        }
        if roll < faults.throttle + faults.server_error {
            self.counters.server_errors.fetch_add(1, Ordering::Relaxed);
            return Ok(internal(protocol));
        }
        if roll < faults.throttle + faults.server_error + faults.drop {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(Dropped);
        }
        Ok(Response::from_parts(head, Full::new(body)))
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:port`) on a free loopback port.
    pub async fn start(upstream: &str, faults: Faults) -> std::io::Result<FaultProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rng: Mutex::new(fastrand::Rng::with_seed(faults.seed)),
            faults,
            counters: Counters::default(),
            frozen: tokio::sync::Notify::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            eks: crate::eks_gaps::EksGaps::default(),
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| shared.clone().handle(request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(FaultProxy { address, shared, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> FaultStats {
        let counters = &self.shared.counters;
        FaultStats {
            requests: counters.requests.load(Ordering::Relaxed),
            throttled: counters.throttled.load(Ordering::Relaxed),
            server_errors: counters.server_errors.load(Ordering::Relaxed),
            dropped: counters.dropped.load(Ordering::Relaxed),
            mutations_forwarded: counters.mutations.load(Ordering::SeqCst),
        }
    }

    /// Whether the proxy froze after its mutation limit.
    pub fn is_frozen(&self) -> bool {
        self.shared.counters.frozen.load(Ordering::SeqCst)
    }

    /// Waits until the proxy freezes, or `timeout` passes; returns whether it froze.
    pub async fn frozen(&self, timeout: Duration) -> bool {
        let notified = self.shared.frozen.notified();
        if self.is_frozen() {
            return true;
        }
        tokio::time::timeout(timeout, notified).await.is_ok() || self.is_frozen()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_and_protocols_are_recognised() {
        assert_eq!(
            operation(&hyper::Method::POST, None, b"Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16"),
            ("CreateVpc".into(), Protocol::Ec2)
        );
        assert_eq!(operation(&hyper::Method::PUT, None, b"<Tagging/>"), ("RestWrite".into(), Protocol::RestXml));
        assert!(is_mutation("RestWrite") && !is_mutation("Get"));
        assert_eq!(
            operation(&hyper::Method::POST, None, b"Action=AssumeRole&Version=2011-06-15"),
            ("AssumeRole".into(), Protocol::Query)
        );
        assert_eq!(
            operation(&hyper::Method::POST, Some("Logs_20140328.CreateLogGroup"), b"{}"),
            ("CreateLogGroup".into(), Protocol::Json)
        );
        assert!(is_mutation("CreateVpc") && !is_mutation("DescribeVpcs") && !is_mutation("GetRole"));
    }
}
