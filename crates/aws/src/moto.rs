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
        let server = MotoServer { child, endpoint: format!("http://127.0.0.1:{port}") };
        let began = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if began.elapsed() > Duration::from_secs(30) {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "moto did not listen within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
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

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
