//! A full disk answers 507, stores nothing of the request, loses nothing
//! acknowledged, and the server takes writes again once space returns.

use crate::harness::{self, ago, ADMIN};
use std::path::Path;
use std::process::Command;

struct Tmpfs<'a>(&'a Path);

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

fn body(prefix: &str, n: usize, time: &str) -> String {
    (0..n)
        .map(|i| format!(r#"{{"id":"{prefix}{i}","account":"full","time":"{time}","interface":"webdav","method":"PROPFIND","path":"/some/rather/long/path/to/make/the/block/bigger/{i}"}}"#) + "\n")
        .collect()
}

#[test]
fn full_disk_answers_507_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "this test mounts a small tmpfs and must run as root (CI does)");
    let _guard = Tmpfs(&mnt);
    let data = mnt.join("data");
    let server = harness::start(&data, &["--min-free-mb", "8"]);
    let t = ago(20);
    let (s, v) = server.post_events(ADMIN, &body("a", 500, &t));
    assert_eq!((s, v["accepted"].as_u64()), (200, Some(500)));

    // Fill the disk to below the reserve.
    let filler = mnt.join("filler");
    let free = |p: &Path| {
        let out = Command::new("df").args(["--output=avail", "-B1"]).arg(p).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse::<u64>().unwrap()
    };
    let size = free(&mnt).saturating_sub(4 << 20);
    std::fs::write(&filler, vec![0u8; size as usize]).unwrap();
    assert!(free(&mnt) < 8 << 20);

    let (s, v) = server.post_events(ADMIN, &body("b", 500, &t));
    assert_eq!(s, 507, "{v}");
    assert_eq!(v["error"]["code"], "disk_full");
    assert_eq!(server.usage("full", "current")["calls"], 500, "nothing of the refused request counts");

    // Space returns: the same request is accepted, whole.
    std::fs::remove_file(&filler).unwrap();
    let (s, v) = server.post_events(ADMIN, &body("b", 500, &t));
    assert_eq!((s, v["accepted"].as_u64()), (200, Some(500)), "{v}");
    server.stop();
    let server = harness::start(&data, &["--min-free-mb", "8"]);
    assert_eq!(server.usage("full", "current")["calls"], 1000);
}
