//! The `pyinit` binary; all logic lives in the library.

/// Captures the signal state pyinit was started with before Rust's runtime
/// changes it (std sets SIGPIPE to SIG_IGN before `main`).
#[used]
#[link_section = ".init_array"]
static CAPTURE_STARTUP_SIGNALS: extern "C" fn() = pyinit::signals::mask::capture_startup;

fn main() {
    let code = pyinit::main_entry(std::env::args_os());
    std::process::exit(code);
}
