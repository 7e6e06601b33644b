//! Spans leave the process over OTLP/HTTP: a collector stand-in on loopback receives them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_an_otlp_http_collector() {
    let received = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let collector = Router::new().route(
        "/v1/traces",
        post({
            let (received, bodies) = (received.clone(), bodies.clone());
            move |headers: HeaderMap, body: Bytes| {
                let (received, bodies) = (received.clone(), bodies.clone());
                async move {
                    assert_eq!(headers["content-type"], "application/x-protobuf");
                    received.fetch_add(1, Ordering::SeqCst);
                    bodies.lock().expect("lock").push(body.to_vec());
                    ""
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let guard =
        enclave_monitor::logging::init_with_otlp("orders", Some(&format!("http://{address}"))).expect("tracing set up");
    {
        let span = tracing::info_span!("lookup_order", order = 42);
        let _entered = span.enter();
        tracing::info!("looking the order up");
    }
    // Shutting the provider down flushes the batch; it blocks, so off the async threads.
    tokio::task::spawn_blocking(move || drop(guard)).await.expect("flush");
    for _ in 0..50 {
        if received.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(received.load(Ordering::SeqCst) >= 1, "the collector received no export");
    let bodies = bodies.lock().expect("lock");
    let all: Vec<u8> = bodies.iter().flatten().copied().collect();
    let contains = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"lookup_order"), "the span name is in the protobuf payload");
    assert!(contains(b"orders"), "service.name is in the resource");
}
