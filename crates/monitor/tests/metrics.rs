//! RED metrics through a real axum router, read back in OpenMetrics text.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use enclave_monitor::metrics::{MetricsBuilder, RedLayer};
use tower::ServiceExt;

#[tokio::test]
async fn requests_errors_and_durations_are_recorded_per_route_template() {
    let mut builder = MetricsBuilder::new();
    let red = RedLayer::new(builder.http());
    let business = builder.business();
    let endpoint = builder.build();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "ok" }))
        .route("/fail", get(|| async { StatusCode::BAD_GATEWAY }))
        .layer(red)
        .merge(endpoint.router());
    for path in ["/orders/1", "/orders/2", "/fail", "/nowhere"] {
        let _ = app.clone().oneshot(Request::get(path).body(Body::empty()).expect("request")).await.expect("response");
    }
    let odd = Request::builder().method("FROBNICATE").uri("/orders/3").body(Body::empty()).expect("request");
    let _ = app.clone().oneshot(odd).await.expect("response");
    business.jobs_processed("invoice", "ok");
    business.data_processed(2048);
    business.queue_depth("invoices", 7);

    let response = app.oneshot(Request::get("/metrics").body(Body::empty()).expect("request")).await.expect("response");
    assert_eq!(response.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    for line in [
        "http_requests_total{method=\"GET\",route=\"/orders/{id}\",status=\"200\"} 2",
        "http_requests_total{method=\"GET\",route=\"/fail\",status=\"502\"} 1",
        "http_request_errors_total{method=\"GET\",route=\"/fail\",status=\"502\"} 1",
        "http_request_duration_seconds_count{method=\"GET\",route=\"/orders/{id}\"} 2",
        "http_request_duration_seconds_bucket{le=\"2.0\",method=\"GET\",route=\"/orders/{id}\"} 2",
        "jobs_processed_total{job_type=\"invoice\",outcome=\"ok\"} 1",
        "data_processed_bytes_total 2048",
        "queue_depth{queue=\"invoices\"} 7",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(!text.contains("route=\"/orders/1\""), "raw paths never become labels");
    assert!(text.contains("method=\"other\"") && !text.contains("FROBNICATE"), "unknown methods are folded");
    assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics text ends with # EOF");
}
