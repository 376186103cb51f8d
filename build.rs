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
    pack_relative_relocations();
    startup_order();
}

/// Release builds on Linux lay out the functions that run from start to idle together, at the
/// front of the code, with the linker script `scripts/startup-order` writes. The kernel maps
/// code 64 kB at a time around each page touched: spread over the binary, the 3 MB start-up
/// runs kept about 12 MB resident; together, they keep about 4 MB (BENCHMARKS.md). GNU ld and
/// lld read the script's `INSERT`; functions it does not list are laid out as without it.
fn startup_order() {
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cargo/startup-order.ld");
    println!("cargo:rerun-if-changed=.cargo/startup-order.ld");
    if linux_gnu() && release && script.is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}

/// Links the service with its relative relocations packed (`DT_RELR`). The binary is
/// position-independent (ASLR), so the loader patches about 83,000 pointers at start; as
/// classic `RELA` entries they take 2 MB of the file that every start reads, and stay resident.
/// Packed, they take 30 kB (measured in BENCHMARKS.md). The loader needs glibc 2.36 (Debian 12,
/// the Docker image's base), and the binutils that come with it (2.38 or later) write them; on
/// an older glibc the binary is linked as before.
fn pack_relative_relocations() {
    if linux_gnu() && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the binary is built for Linux with glibc (GNU ld or lld, the glibc loader).
fn linux_gnu() -> bool {
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu"
}

/// Whether the build machine's glibc (`getconf GNU_LIBC_VERSION`: "glibc 2.36") is this new.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Some(out) = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .filter(|out| out.status.success())
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .trim()
        .trim_start_matches("glibc ")
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let found = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    found >= (major, minor)
}
