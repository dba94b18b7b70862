//! Progress on the terminal: lines on stdout (stderr with --json); on a terminal, a status line
//! rewritten in place on stderr.

pub struct Terminal {
    tty: bool,
    to_stderr: bool,
    has_status: bool,
}

impl Terminal {
    pub fn new(to_stderr: bool) -> Self {
        use std::io::IsTerminal;
        Terminal {
            tty: std::io::stderr().is_terminal(),
            to_stderr,
            has_status: false,
        }
    }
}

impl orderbroker::deploy::aws::Progress for Terminal {
    fn line(&mut self, text: &str) {
        if self.has_status {
            eprint!("\r\x1b[K");
            self.has_status = false;
        }
        let stamp = chrono::Utc::now().format("%H:%M:%SZ");
        if self.to_stderr {
            eprintln!("{stamp} {text}");
        } else {
            println!("{stamp} {text}");
        }
    }
    fn status(&mut self, text: &str) {
        if self.tty {
            use std::io::Write;
            eprint!("\r\x1b[K{text}");
            let _ = std::io::stderr().flush();
            self.has_status = true;
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.has_status {
            eprintln!();
        }
    }
}
