//! The command-line grammar (SPEC section 9), with an example in every subcommand's `--help`.

use std::path::PathBuf;

use agent_handoff::{AgentId, ArgValue, Capability, TaskId};
use clap::{Args, Parser, Subcommand};

/// Checked trust boundaries for agent-to-agent handoffs.
#[derive(Debug, Parser)]
#[command(
    name = "handoff",
    version,
    about = "Mint keys and delegation tokens, seal handoff envelopes, verify and inspect them (SPEC section 9).",
    after_help = "Exit status: 0 success (every envelope allowed), 1 a verification or audit-log check \
failed, 2 a usage or I/O error.\n\nRun `handoff <command> --help` for an example of each command."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate an Ed25519 identity: `<name>.key.pem` (PKCS#8, mode 0600) and `<name>.jwk.json`.
    Keygen(KeygenArgs),
    /// Issue a root delegation token, signed by a trusted authority.
    Issue(IssueArgs),
    /// Attenuate a token you hold into a narrower child token for another agent.
    Delegate(DelegateArgs),
    /// Seal a handoff envelope for a recipient, carrying a delegation chain.
    Seal(SealArgs),
    /// Verify envelopes and print one JSON decision for each.
    Verify(VerifyArgs),
    /// Decode a token or envelope WITHOUT verifying it and print it as JSON.
    Inspect(InspectArgs),
    /// Work with hash-chained audit logs written by `verify --audit`.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Work with request-time policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

/// `handoff policy ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check a TOML rule policy file and name the line of the first problem.
    Check(PolicyCheckArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
handoff policy check examples/policies/policy.toml\n\n\
Prints {\"valid\":true,\"version\":...} for a good file. Exit status: 0 the file is valid, \
1 it is not (the problem and its line are printed), 2 it cannot be read.")]
pub(crate) struct PolicyCheckArgs {
    /// The policy file (TOML, see `RulePolicy`).
    #[arg(value_name = "POLICY.TOML")]
    pub file: PathBuf,
}

/// `handoff audit ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check an audit log's hash chain and name the first bad line.
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
handoff keygen --id spiffe://acme.example/orchestrator --out keys\n\n\
Writes keys/orchestrator.key.pem (secret, mode 0600) and keys/orchestrator.jwk.json (public), \
and prints the agent id and key id (kid). Never overwrites an existing file.")]
pub(crate) struct KeygenArgs {
    /// The agent id (SPIFFE id); its last path segment names the files.
    #[arg(long, value_name = "AGENT-ID")]
    pub id: AgentId,
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
handoff issue --key keys/orchestrator.key.pem --iss spiffe://acme.example/orchestrator \\\n    \
--sub spiffe://acme.example/agents/planner --sub-key keys/planner.jwk.json \\\n    \
--task task-42 --cap 'tickets.*=project/alpha/*' --depth 1 > root.jwt\n\n\
A capability may carry limits after `;`: `name<=NUMBER` or `name=a|b|c`, for example\n  \
--cap 'payments.execute=account/ops/*;amount<=500;currency=EUR|USD'")]
pub(crate) struct IssueArgs {
    /// The authority's private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "PEM")]
    pub key: PathBuf,
    /// The authority's agent id (must be in the verifiers' `authorities`).
    #[arg(long, value_name = "AGENT-ID")]
    pub iss: AgentId,
    /// The delegate's agent id.
    #[arg(long, value_name = "AGENT-ID")]
    pub sub: AgentId,
    /// The delegate's public key: a JWK file, or a trust bundle holding exactly one key for `--sub`.
    #[arg(long, value_name = "JWK|BUNDLE")]
    pub sub_key: PathBuf,
    /// The task id, fixed for the whole chain.
    #[arg(long, value_name = "TASK")]
    pub task: TaskId,
    #[command(flatten)]
    pub grant: GrantArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Example (run by the planner, who holds root.jwt):\n  \
handoff delegate --key keys/planner.key.pem --parent @root.jwt \\\n    \
--sub spiffe://acme.example/agents/executor --sub-key keys/executor.jwk.json \\\n    \
--cap 'tickets.read=project/alpha/*' > child.jwt\n\n\
The signer's id is the parent's subject; the key must be the one the parent is bound to.")]
pub(crate) struct DelegateArgs {
    /// Your private key (the parent token's subject), PKCS#8 PEM, mode 0600.
    #[arg(long, value_name = "PEM")]
    pub key: PathBuf,
    /// The parent token: its compact text, or `@file`.
    #[arg(long, value_name = "TOKEN|@FILE")]
    pub parent: String,
    /// The delegate's agent id.
    #[arg(long, value_name = "AGENT-ID")]
    pub sub: AgentId,
    /// The delegate's public key: a JWK file, or a trust bundle holding exactly one key for `--sub`.
    #[arg(long, value_name = "JWK|BUNDLE")]
    pub sub_key: PathBuf,
    #[command(flatten)]
    pub grant: GrantArgs,
}

/// What a token grants: shared by `issue` and `delegate`.
#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// A capability `<action>=<resource>`, with optional limits `;name<=N` or `;name=a|b`. Repeatable.
    #[arg(long = "cap", value_name = "ACTION=RESOURCE", required = true, value_parser = parse_capability)]
    pub caps: Vec<Capability>,
    /// Further delegations the delegate may make (root default 0, child default parent - 1).
    #[arg(long, value_name = "N")]
    pub depth: Option<u8>,
    /// Agent id patterns the delegate may delegate to (`spiffe://acme.example/agents/*`).
    #[arg(long, value_name = "PATTERN", num_args = 1..)]
    pub delegates: Vec<String>,
    /// Lifetime in seconds (root default 900; a child defaults to its parent's expiry).
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<u64>,
    /// Issue time as Unix seconds (default: the system clock), to mint reproducible examples.
    #[arg(long, value_name = "UNIX-SECS")]
    pub now: Option<u64>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example (the planner asks the executor to read a ticket):\n  \
handoff seal --key keys/planner.key.pem --iss spiffe://acme.example/agents/planner \\\n    \
--aud spiffe://acme.example/agents/executor --task task-42 \\\n    \
--action tickets.read --resource project/alpha/123 --arg priority=2 \\\n    \
--payload body.json --chain @root.jwt > envelope.jwt"
)]
pub(crate) struct SealArgs {
    /// The sender's private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "PEM")]
    pub key: PathBuf,
    /// The sender's agent id.
    #[arg(long, value_name = "AGENT-ID")]
    pub iss: AgentId,
    /// The recipient's agent id.
    #[arg(long, value_name = "AGENT-ID")]
    pub aud: AgentId,
    /// The task id (must equal the chain's task).
    #[arg(long, value_name = "TASK")]
    pub task: TaskId,
    /// The concrete action (no `*`).
    #[arg(long, value_name = "ACTION")]
    pub action: String,
    /// The concrete resource (no `*`).
    #[arg(long, value_name = "RESOURCE")]
    pub resource: String,
    /// An intent argument; the value is a JSON number or boolean if it parses as one, else a string. Repeatable.
    #[arg(long = "arg", value_name = "NAME=VALUE", value_parser = parse_arg)]
    pub args: Vec<(String, ArgValue)>,
    /// The payload file the envelope is bound to (default: an empty payload).
    #[arg(long, value_name = "FILE")]
    pub payload: Option<PathBuf>,
    /// The delegation chain, root first: compact tokens or `@file`s.
    #[arg(long, value_name = "TOKEN|@FILE", required = true, num_args = 1..)]
    pub chain: Vec<String>,
    /// Lifetime in seconds (default 60; verifiers allow at most 120 by default).
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<u64>,
    /// Issue time as Unix seconds (default: the system clock).
    #[arg(long, value_name = "UNIX-SECS")]
    pub now: Option<u64>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
handoff verify --trust bundle.json --me spiffe://acme.example/agents/executor \\\n    \
--payload body.json @envelope.jwt\n  \
cat envelopes.txt | handoff verify --trust bundle.json --me spiffe://acme.example/agents/executor -\n\n\
Prints one JSON object per envelope: {\"decision\":\"allow\",...} or \
{\"decision\":\"deny\",\"reason\":\"<code>\",...}.\n\
With `-`, reads one envelope a line from standard input, all against one replay cache.\n\
Exit status: 0 every envelope allowed, 1 any denied, 2 usage or I/O error.")]
pub(crate) struct VerifyArgs {
    /// The trust bundle file (SPEC section 8).
    #[arg(long, value_name = "BUNDLE.JSON")]
    pub trust: PathBuf,
    /// Your own agent id: envelopes must be addressed to it.
    #[arg(long, value_name = "AGENT-ID")]
    pub me: AgentId,
    /// A policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// A revocations file: {"tokens":[..],"tasks":[..],"agents":[..],"issued_before":N}.
    #[arg(long, value_name = "FILE")]
    pub revocations: Option<PathBuf>,
    /// The payload file the envelopes are bound to (default: an empty payload).
    #[arg(long, value_name = "FILE")]
    pub payload: Option<PathBuf>,
    /// Judge as if the time were this (Unix seconds), to reproduce a past decision.
    #[arg(long, value_name = "UNIX-SECS")]
    pub now: Option<u64>,
    /// Clock skew tolerated, in seconds (default 5, at most 300).
    #[arg(long, value_name = "SECS")]
    pub leeway: Option<u64>,
    /// A request-context attribute for the policy, such as `environment=prod`; the value is a
    /// JSON number or boolean if it parses as one, else a string. Repeatable.
    #[arg(long = "context", value_name = "NAME=VALUE", value_parser = parse_arg)]
    pub context: Vec<(String, ArgValue)>,
    /// Append one hash-chained audit record per decision to this JSON Lines file.
    #[arg(long, value_name = "FILE.JSONL")]
    pub audit: Option<PathBuf>,
    /// The envelope: its compact text, `@file`, or `-` for one envelope a line on standard input.
    #[arg(value_name = "ENVELOPE|@FILE|-")]
    pub envelope: String,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
handoff inspect @root.jwt\n  \
handoff inspect --now 1800000000 - < envelope.jwt\n\n\
Needs no keys and checks no signature: the output is marked \"verified\": false.")]
pub(crate) struct InspectArgs {
    /// Show time hints relative to this Unix time (default: the system clock).
    #[arg(long, value_name = "UNIX-SECS")]
    pub now: Option<u64>,
    /// A token or envelope: its compact text, `@file`, or `-` for standard input.
    #[arg(value_name = "TOKEN|ENVELOPE|@FILE|-")]
    pub input: String,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
handoff audit verify audit.jsonl\n  \
handoff audit verify --key executor.jwk.json audit.jsonl   # a log signed by the verifier's identity\n\n\
Prints `\"intact\":true` only for an unsigned log whose chain is intact, or a signed log \
whose every signature verified with --key. A signed log checked without --key prints \
`\"intact\":false,\"chain_intact\":true,\"signatures\":\"not_checked\"`.\n\n\
Exit status: 0 intact, 1 a line was edited, deleted, reordered or truncated (the first bad \
line is named), or a signed log was checked without --key, 2 the file cannot be read.")]
pub(crate) struct AuditVerifyArgs {
    /// The audit log (JSON Lines, written by `handoff verify --audit`).
    #[arg(value_name = "FILE.JSONL")]
    pub file: PathBuf,
    /// The public key (JWK file) of the identity that signed the log
    /// (`JsonlAudit::open_signed`): every line's signature is checked too.
    #[arg(long, value_name = "JWK")]
    pub key: Option<PathBuf>,
}

/// Parses `action=resource[;name<=N][;name=a|b]`.
fn parse_capability(text: &str) -> Result<Capability, String> {
    let mut parts = text.split(';');
    let head = parts.next().unwrap_or_default();
    let Some((action, resource)) = head.split_once('=') else {
        return Err(format!(
            "expected `<action>=<resource>` such as `tickets.read=project/alpha/*`, got `{head}`"
        ));
    };
    let mut cap = Capability::new(action, resource).map_err(|e| e.to_string())?;
    for limit in parts {
        cap = if let Some((name, max)) = limit.split_once("<=") {
            let number = agent_handoff::grant::exact_number(max.trim())
                .map_err(|e| format!("limit `{limit}`: {e}"))?;
            cap.max(name.trim(), number).map_err(|e| e.to_string())?
        } else if let Some((name, set)) = limit.split_once('=') {
            cap.one_of(name.trim(), set.split('|').map(str::to_owned))
                .map_err(|e| e.to_string())?
        } else {
            return Err(format!(
                "limit `{limit}` must be `name<=NUMBER` or `name=a|b|c`"
            ));
        };
    }
    Ok(cap)
}

/// Parses `name=value`: a JSON number or boolean if it parses as one, else a string. A number
/// must denote exactly the value it is read as (SPEC section 3), else it is refused.
fn parse_arg(text: &str) -> Result<(String, ArgValue), String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!(
            "expected `name=value` such as `amount=120`, got `{text}`"
        ));
    };
    let parsed = match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Number(_)) => ArgValue::Number(
            agent_handoff::grant::exact_number(value.trim())
                .map_err(|e| format!("argument `{name}`: {e}"))?,
        ),
        Ok(serde_json::Value::Bool(b)) => ArgValue::Bool(b),
        _ => ArgValue::String(value.to_owned()),
    };
    Ok((name.to_owned(), parsed))
}
