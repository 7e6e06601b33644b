//! The service's log lines are what Filebeat's `ndjson` parser expects: one JSON object per
//! line with `timestamp`, `level` and `message`, event fields beside them.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn every_log_line_is_a_json_object_filebeat_can_decode() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-service"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--database-down", "--health-refresh-seconds", "1"])
        .args(["--internal-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let began = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(began.elapsed() < Duration::from_secs(10), "service did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A failing order lookup logs an error with fields.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    std::io::Write::write_all(&mut stream, b"GET /orders/9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut response);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    let _ = child.kill();
    let output = child.stdout.take().expect("stdout");
    let lines: Vec<String> = BufReader::new(output).lines().map_while(Result::ok).collect();
    let _ = child.wait();
    assert!(lines.len() >= 2, "{lines:?}");
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["timestamp", "level", "message"] {
            assert!(event[key].is_string(), "`{key}` missing in {line}");
        }
    }
    let failure = lines.iter().find(|l| l.contains("order lookup failed")).expect("the failure is logged");
    let event: serde_json::Value = serde_json::from_str(failure).expect("json");
    assert_eq!(event["level"], "ERROR");
    assert_eq!(event["order"], 9, "event fields sit beside the message");
    assert_eq!(event["span"]["name"], "get_order", "the current span is attached");
}
