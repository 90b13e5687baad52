//! A real OCI registry on loopback for tests: Debian's `docker-registry` (distribution 2.8) with its
//! storage in a temporary directory, stopped when dropped. Tests that need it skip loudly when the
//! package is missing (`scripts/test.sh` installs it).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalRegistry {
    child: Child,
    dir: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl LocalRegistry {
    /// Starts a registry on a free port; `None` (with a message) when docker-registry is not installed.
    pub fn start() -> Option<LocalRegistry> {
        let binary = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            eprintln!("!!! SKIPPED: docker-registry is not installed (scripts/test.sh installs it) !!!");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = std::env::temp_dir().join(format!("palisade-registry-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let config = dir.join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        std::fs::write(&config, yaml).ok()?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let addr = format!("127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            if started.elapsed() > Duration::from_secs(15) {
                eprintln!("!!! docker-registry did not start on {addr} !!!");
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(LocalRegistry { child, dir, addr })
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
