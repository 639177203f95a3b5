//! Shared test plumbing: a busybox rootfs per test, the nsinit binary, root checks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use fixtures::harness::{Ran, Trial};

/// The nsinit binary under test.
pub const NSINIT: &str = env!("CARGO_BIN_EXE_nsinit");

/// The seed sample minus `network` and `cgroups`.
pub fn seed() -> &'static str {
    fixtures::config("seed-no-net-cgroups").expect("fixture seed-no-net-cgroups")
}

/// Skip unless root: a container needs namespaces and mounts.
pub fn needs_root() -> Ran {
    fixtures::harness::needs_root("namespaces, mounts")
}

/// The template rootfs and the directory holding it, once built.
static TEMPLATE: OnceLock<(tempfile::TempDir, fixtures::Template)> = OnceLock::new();

/// A template busybox rootfs, built and read once per test binary.
pub fn template() -> &'static fixtures::Template {
    &TEMPLATE
        .get_or_init(|| {
            let busybox = fixtures::find_busybox().unwrap_or_else(|e| panic!("{e}"));
            let dir = tempfile::tempdir().expect("temp dir");
            fixtures::build_busybox_rootfs(dir.path(), &busybox).expect("build busybox rootfs");
            let template = fixtures::Template::read(dir.path()).expect("read the rootfs");
            (dir, template)
        })
        .1
}

/// Removes the template's directory, once every trial ran (a static is never dropped).
pub fn remove_template() {
    if let Some((dir, _)) = TEMPLATE.get() {
        let _ = std::fs::remove_dir_all(dir.path());
    }
}

/// A container directory of its own: a copy of the busybox rootfs plus a container.json.
pub struct Container {
    dir: tempfile::TempDir,
}

impl Container {
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        template().copy_to(dir.path()).expect("copy rootfs");
        std::fs::write(dir.path().join("container.json"), config).expect("write container.json");
        Container { dir }
    }

    /// A container whose rootfs is a full copy (no inode shared with the template), owned by
    /// `owner`:`owner` on the host: the rootfs of a user namespace mapping its root there.
    pub fn owned_by(config: &str, owner: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        fixtures::copy_owned(template().root(), dir.path(), owner).expect("copy the rootfs");
        std::fs::write(dir.path().join("container.json"), config).expect("write container.json");
        Container { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `nsinit exec ARGS...` in this directory, without a terminal.
    pub fn exec(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(NSINIT);
        cmd.current_dir(self.path())
            .arg("exec")
            .arg("-T")
            .args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run `nsinit exec ARGS...` to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.exec(args).output().expect("run nsinit")
    }

    /// The host pid in `.nspid`, waiting until it appears.
    pub fn wait_for_nspid(&self) -> i32 {
        let path = self.file(".nspid");
        wait_until(Duration::from_secs(10), || path.exists());
        let text = std::fs::read_to_string(path).expect("read .nspid");
        text.trim().parse().expect(".nspid holds a pid")
    }
}

/// Poll `done` until it holds or `limit` passes; panics on timeout.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether a process with this pid exists (zombies included).
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Replace `"key": [...]` or `"key": "..."` at the top of a config with new JSON text.
pub fn with_field(config: &str, key: &str, value: &str) -> String {
    let mut json: serde_json::Value = serde_json::from_str(config).expect("fixture is JSON");
    json[key] = serde_json::from_str(value).expect("value is JSON");
    json.to_string()
}

/// nsinit's state file for a container directory (`/run/nsinit/<dev>-<inode>`).
pub fn state_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).expect("container dir");
    Path::new("/run/nsinit").join(format!("{:x}-{:x}", meta.dev(), meta.ino()))
}
