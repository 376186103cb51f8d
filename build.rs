//! Records the git commit the binary is built from, for the `lhs_build_info` metric and the
//! start-up log line. A build outside a git checkout (a source tarball, a Docker context
//! without `.git`) says `unknown`, or what `LHS_GIT_COMMIT` says.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LHS_GIT_COMMIT");
    // The commit changes when HEAD moves or the branch it names moves.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = std::env::var("LHS_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|out| out.status.success())
                .and_then(|out| String::from_utf8(out.stdout).ok())
                .map(|c| c.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=LHS_GIT_COMMIT={commit}");
}
