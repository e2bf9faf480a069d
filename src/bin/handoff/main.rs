//! `handoff`: the command line of SPEC section 9. Mint keys and tokens, seal test handoffs,
//! verify what arrived, and look inside a token or envelope.
//!
//! Exit status: 0 success (every envelope allowed), 1 a verification or audit-log check
//! failed, 2 a usage or I/O error. Errors name the file or argument at fault and the fix, and
//! never print key material.

mod args;
// The library's escaping rule, compiled into the command line too: one rule for every output.
#[allow(dead_code)]
#[path = "../../escape.rs"]
mod escape;
mod inspect;
mod mint;
mod verify;

use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{AuditCommand, Cli, Command, PolicyCommand};

/// A usage or I/O error: printed as `error: ...` on standard error, exit status 2.
#[derive(Debug)]
pub(crate) struct CliError(String);

impl CliError {
    /// An error about one argument or file, with what is wrong and how to fix it.
    pub(crate) fn new(message: impl Into<String>) -> CliError {
        CliError(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) type CliResult<T> = Result<T, CliError>;

/// Explains a library error in the terms of the command line: which argument, and the fix.
/// Library errors never contain key material, so their text is safe to show.
pub(crate) fn explain(arg: &str, error: agent_handoff::Error) -> CliError {
    use agent_handoff::Error as E;
    let hint = match &error {
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "; check the path",
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            "; check the file's owner and permissions"
        }
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
            "; choose another `--out` directory or move the old file away"
        }
        E::Bundle { .. } => "; fix or regenerate the bundle (SPEC section 8)",
        E::AuditLog { source, .. }
            if source.kind == agent_handoff::audit::AuditLogFault::ModeMismatch =>
        {
            "; `handoff verify --audit` writes unsigned logs only: pass a new file"
        }
        _ => "",
    };
    CliError(format!("{arg}: {error}{hint}"))
}

/// Largest input read from a file or standard input for one token or envelope: the envelope
/// limit plus room for a trailing newline. Anything larger is refused before parsing.
pub(crate) const MAX_INPUT: u64 = agent_handoff::limits::MAX_ENVELOPE_BYTES as u64 + 2;

/// Largest `--payload` file read by `seal` and `verify`, in bytes.
pub(crate) const MAX_PAYLOAD_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Reads a whole file for `arg` the way the library reads its files
/// ([`agent_handoff::file::read_regular_file`]): a regular file only, opened without blocking, at
/// most `limit` bytes.
fn read_file(arg: &str, what: &'static str, path: &Path, limit: usize) -> CliResult<Vec<u8>> {
    agent_handoff::file::read_regular_file(path, what, limit).map_err(|e| match e {
        agent_handoff::Error::Io { source, .. } => CliError::new(format!(
            "{arg}: cannot read `{}`: {source}; check the path",
            path.display()
        )),
        other => explain(arg, other),
    })
}

/// Reads a small text file (a token, an envelope, a JWK or bundle), bounded in size.
pub(crate) fn read_text_file(
    arg: &str,
    what: &'static str,
    path: &Path,
    limit: usize,
) -> CliResult<String> {
    String::from_utf8(read_file(arg, what, path, limit)?).map_err(|_| {
        CliError::new(format!(
            "{arg}: `{}` is not UTF-8 text; it is not what this argument expects",
            path.display()
        ))
    })
}

/// An argument that is either the text itself or `@file` (a file holding it), trimmed.
pub(crate) fn text_or_file(arg: &str, value: &str) -> CliResult<String> {
    match value.strip_prefix('@') {
        Some(path) => Ok(
            read_text_file(arg, "file", Path::new(path), MAX_INPUT as usize)?
                .trim()
                .to_owned(),
        ),
        None => {
            // A compact JWS never names a file; a bare file name almost certainly meant `@`.
            if value.len() > 4096 || !Path::new(value).is_file() {
                return Ok(value.trim().to_owned());
            }
            Err(CliError::new(format!(
                "{arg}: `{value}` is a file name, not a token or envelope; pass `@{value}` to read it"
            )))
        }
    }
}

/// Reads a payload file: at most [`MAX_PAYLOAD_FILE_BYTES`].
pub(crate) fn read_payload_file(arg: &str, path: &Path) -> CliResult<Vec<u8>> {
    read_file(arg, "payload file", path, MAX_PAYLOAD_FILE_BYTES)
}

/// Writes one line to standard output; a closed pipe is an I/O error, not a panic.
pub(crate) fn print_line(line: &str) -> CliResult<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::new(format!("cannot write to standard output: {e}")))
}

fn run(cli: Cli) -> CliResult<ExitCode> {
    match cli.command {
        Command::Keygen(a) => mint::keygen(&a).map(|()| ExitCode::SUCCESS),
        Command::Issue(a) => mint::issue(&a).map(|()| ExitCode::SUCCESS),
        Command::Delegate(a) => mint::delegate(&a).map(|()| ExitCode::SUCCESS),
        Command::Seal(a) => mint::seal(&a).map(|()| ExitCode::SUCCESS),
        Command::Verify(a) => verify::verify(&a),
        Command::Inspect(a) => inspect::inspect(&a).map(|()| ExitCode::SUCCESS),
        Command::Audit {
            command: AuditCommand::Verify(a),
        } => verify::audit_verify(&a),
        Command::Policy {
            command: PolicyCommand::Check(a),
        } => verify::policy_check(&a),
    }
}

/// Prints a clap error (or `--help`/`--version`) and gives its exit status. clap's messages
/// quote the offending argument raw, so the message is rendered from the same arguments with
/// each one shown escaped; when that gives another kind of error, the original message is
/// printed escaped as a whole (its line breaks included).
fn usage_exit(e: clap::Error, args: &[std::ffi::OsString]) -> ExitCode {
    let shown: Vec<String> = args
        .iter()
        .map(|a| escape::escape_text(a.to_string_lossy()).into_owned())
        .collect();
    let text = match Cli::try_parse_from(&shown) {
        Err(same) if same.kind() == e.kind() => same.render().to_string(),
        _ => format!(
            "{}\n",
            escape::escape_text(e.render().to_string().trim_end())
        ),
    };
    if e.use_stderr() {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

fn main() -> ExitCode {
    // Usage errors exit with status 2 (clap's default), `--help` and `--version` with 0.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_exit(e, &args),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Messages quote inputs (file names, claims, member names): show them escaped.
            eprintln!("error: {}", escape::Escaped(&e.0));
            ExitCode::from(2)
        }
    }
}
