//! One module per subcommand.

pub mod call;
pub mod run;
pub mod serve;
pub mod tools;

use std::io::Write as _;

/// Writes a command's output to stdout. A closed pipe (`switchboard tools | head`) ends the output
/// quietly instead of panicking.
pub fn emit(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
