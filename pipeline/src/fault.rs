//! Fault injection for the crash tests: with `SEARCHBAR_FAULT_AT=n` the process kills itself
//! with SIGKILL when it reaches the n-th fault point, as a power cut or OOM kill would.
//! `SEARCHBAR_FAULT_TRACE=1` prints every point reached, so tests can count them.

use std::sync::atomic::{AtomicUsize, Ordering};

static REACHED: AtomicUsize = AtomicUsize::new(0);

pub fn point(name: &str) {
    let n = REACHED.fetch_add(1, Ordering::SeqCst) + 1;
    if std::env::var_os("SEARCHBAR_FAULT_TRACE").is_some() {
        eprintln!("fault point {n}: {name}");
    }
    let Some(at) = std::env::var("SEARCHBAR_FAULT_AT")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    if n == at {
        eprintln!("fault injection: SIGKILL at point {n} ({name})");
        // No `unsafe` libc call: ask the system's kill(1) to deliver a real SIGKILL.
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}
