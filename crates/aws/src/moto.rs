//! A moto server on a free loopback port, for integration tests: started by [`MotoServer::start`],
//! killed when dropped. The binary is `$MOTO_SERVER`, or `moto_server` on `PATH`
//! (`cargo xtask test` installs a pinned moto into the project's virtualenv and sets it). moto is
//! started with `MOTO_IAM_LOAD_MANAGED_POLICIES=true`, so AWS-managed IAM policies exist.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

/// A running moto server.
pub struct MotoServer {
    child: Child,
    endpoint: String,
    /// With feature `fault-proxy`: the proxy in front of moto serving what moto lacks of EKS
    /// (add-ons, access entries), stopped when this is dropped.
    #[cfg(feature = "fault-proxy")]
    front: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MotoServer {
    /// Starts moto on a free port and waits until it answers (at most 30 s).
    pub fn start() -> std::io::Result<MotoServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let binary = std::env::var_os("MOTO_SERVER").unwrap_or_else(|| "moto_server".into());
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // AWS-managed policies (`AmazonSSMManagedInstanceCore`) exist only with this.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| {
                std::io::Error::new(error.kind(), format!("cannot start {}: {error}", binary.to_string_lossy()))
            })?;
        #[cfg_attr(not(feature = "fault-proxy"), allow(unused_mut))]
        let mut server = MotoServer {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            #[cfg(feature = "fault-proxy")]
            front: None,
        };
        let began = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if began.elapsed() > Duration::from_secs(30) {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "moto did not listen within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        #[cfg(feature = "fault-proxy")]
        {
            let (endpoint, stop) = front(&server.endpoint)?;
            server.endpoint = endpoint;
            server.front = Some(stop);
        }
        Ok(server)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A config pointing at this server with throwaway credentials (the management identity).
    pub fn sdk_config(&self, region: &str) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "moto",
            )))
            .build()
    }
}

/// A [`crate::proxy::FaultProxy`] without faults in front of `upstream`, serving EKS add-ons and
/// access entries (`Faults::eks_gaps`), on its own thread and runtime; it stops when the
/// returned sender is dropped.
#[cfg(feature = "fault-proxy")]
fn front(upstream: &str) -> std::io::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let (ready, endpoint) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        runtime.block_on(async move {
            let faults = crate::proxy::Faults { eks_gaps: true, ..crate::proxy::Faults::default() };
            match crate::proxy::FaultProxy::start(&upstream, faults).await {
                Ok(proxy) => {
                    let _ = ready.send(Ok(proxy.endpoint()));
                    let _ = stopped.await;
                }
                Err(error) => {
                    let _ = ready.send(Err(error));
                }
            }
        });
    });
    let endpoint = endpoint.recv().map_err(|_| std::io::Error::other("the proxy in front of moto did not start"))??;
    Ok((endpoint, stop))
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
