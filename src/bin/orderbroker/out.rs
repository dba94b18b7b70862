//! Standard output that reports its failures: a full disk (`plan --json > plan.json` on a full
//! file system) or a descriptor that cannot be written ends the command with one line naming
//! it and exit 2, never a panic. A closed pipe still ends the CLI quietly (SIGPIPE, main.rs).

/// Standard output could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output: {0}")]
pub struct StdoutError(#[source] pub std::io::Error);

/// `println!` that returns `Result<(), StdoutError>`.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*).map_err($crate::out::StdoutError)
    }};
}

/// `print!` that returns `Result<(), StdoutError>`.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($t)*).map_err($crate::out::StdoutError)
    }};
}

/// Set before `main` when descriptor 1 was closed at exec time.
static CLOSED_AT_START: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs before Rust's runtime: the runtime reopens a closed descriptor 0-2 on /dev/null before
/// `main` (so `orderbroker ... >&-` would print nothing and exit 0); an `.init_array` entry runs
/// earlier still (called by the C runtime before `main`), so it sees the descriptor as given.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static CHECK_AT_START: extern "C" fn() = {
    extern "C" fn check() {
        // SAFETY: F_GETFD on descriptor 1 only reads its flags.
        if unsafe { libc::fcntl(1, libc::F_GETFD) } == -1 {
            CLOSED_AT_START.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    check
};

/// Whether standard output was open when the CLI was started.
pub fn stdout_is_open() -> bool {
    !CLOSED_AT_START.load(std::sync::atomic::Ordering::SeqCst)
}

/// Flushes standard output (a `print!` without a newline is still buffered at the end).
pub fn flush() -> Result<(), StdoutError> {
    use std::io::Write as _;
    std::io::stdout().flush().map_err(StdoutError)
}
