//! `keygen`, `issue`, `delegate` and `seal`: everything that signs.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use agent_handoff::{
    keys::AgentKey, limits::MAX_TOKEN_BYTES, AgentId, AgentIdentity, DelegationToken,
    HandoffEnvelope, PublicIdentity, TokenBuilder, TrustBundle, UnixTime,
};

use crate::args::{DelegateArgs, GrantArgs, IssueArgs, KeygenArgs, SealArgs};
use crate::CliResult;
use crate::{explain, print_line, read_payload_file, read_text_file, text_or_file, CliError};

/// `handoff keygen`.
pub(crate) fn keygen(args: &KeygenArgs) -> CliResult<()> {
    let name = args.id.name();
    let key_path = args.out.join(format!("{name}.key.pem"));
    let jwk_path = args.out.join(format!("{name}.jwk.json"));
    for path in [&key_path, &jwk_path] {
        if path.exists() {
            return Err(CliError::new(format!(
                "--out: `{}` already exists; keygen never overwrites a key: choose another \
                 `--out` directory or move the old file away",
                path.display()
            )));
        }
    }
    std::fs::create_dir_all(&args.out).map_err(|e| {
        CliError::new(format!(
            "--out: cannot create directory `{}`: {e}",
            args.out.display()
        ))
    })?;
    let identity = AgentIdentity::generate(args.id.clone());
    identity.save(&key_path).map_err(|e| explain("--out", e))?;
    let jwk = serde_json::to_string_pretty(&identity.key().to_jwk())
        .map_err(|e| CliError::new(format!("cannot encode the public key as JWK: {e}")))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&jwk_path)
        .and_then(|mut f| f.write_all(format!("{jwk}\n").as_bytes()).map(|()| f))
        .map_err(|e| CliError::new(format!("--out: cannot write `{}`: {e}", jwk_path.display())))?;
    file.flush()
        .map_err(|e| CliError::new(format!("--out: cannot write `{}`: {e}", jwk_path.display())))?;
    print_line(&format!("id   {}", identity.id()))?;
    print_line(&format!("kid  {}", identity.kid()))?;
    print_line(&format!("key  {} (secret, mode 0600)", key_path.display()))?;
    print_line(&format!("jwk  {}", jwk_path.display()))
}

/// Loads a private key for `id` from `--key`. The library refuses group- or world-readable
/// files and anything that is not Ed25519 PKCS#8 PEM; its messages carry the fix.
pub(crate) fn load_key(id: &AgentId, path: &Path) -> CliResult<AgentIdentity> {
    AgentIdentity::load(id.clone(), path).map_err(|e| explain("--key", e))
}

/// Reads `--sub-key`: a JWK file, or a trust bundle holding exactly one key for `sub`.
fn load_sub_key(sub: &AgentId, path: &Path) -> CliResult<PublicIdentity> {
    let text = read_text_file(
        "--sub-key",
        "JWK or trust bundle",
        path,
        agent_handoff::limits::MAX_BUNDLE_BYTES,
    )?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        CliError::new(format!(
            "--sub-key: `{}` is not JSON ({e}); pass a JWK file from `handoff keygen` or a trust bundle",
            path.display()
        ))
    })?;
    let key = if value.get("kty").is_some() {
        AgentKey::from_jwk_json(&text).map_err(|e| {
            CliError::new(format!("--sub-key: `{}` is refused: {e}", path.display()))
        })?
    } else if value.get("trust_domain").is_some() {
        let bundle = TrustBundle::from_json(&text).map_err(|e| {
            CliError::new(format!(
                "--sub-key: trust bundle `{}` is refused: {e}",
                path.display()
            ))
        })?;
        match bundle.keys(sub) {
            [key] => key.clone(),
            [] => {
                return Err(CliError::new(format!(
                "--sub-key: trust bundle `{}` has no key for `{sub}`; add it or pass its JWK file",
                path.display()
            )))
            }
            keys => {
                return Err(CliError::new(format!(
                    "--sub-key: trust bundle `{}` has {} keys for `{sub}` (a rotation?); pass the \
                     JWK file of the key the delegate will sign with",
                    path.display(),
                    keys.len()
                )))
            }
        }
    } else {
        return Err(CliError::new(format!(
            "--sub-key: `{}` is neither a JWK (no `kty`) nor a trust bundle (no `trust_domain`)",
            path.display()
        )));
    };
    Ok(PublicIdentity::new(sub.clone(), key))
}

/// Applies `--cap`, `--depth`, `--delegates`, `--ttl`, `--now` and signs.
fn grant_and_sign(
    command: &str,
    mut builder: TokenBuilder<'_>,
    grant: &GrantArgs,
) -> CliResult<()> {
    for cap in &grant.caps {
        builder = builder.grant(cap.clone());
    }
    if let Some(depth) = grant.depth {
        builder = builder.depth(depth);
    }
    if !grant.delegates.is_empty() {
        builder = builder
            .delegates(&grant.delegates)
            .map_err(|e| explain("--delegates", e))?;
    }
    if let Some(ttl) = grant.ttl {
        builder = builder.ttl(Duration::from_secs(ttl));
    }
    if let Some(now) = grant.now {
        builder = builder.issued_at(UnixTime::from_secs(now));
    }
    let token = builder.sign().map_err(|e| explain(command, e))?;
    print_line(token.as_str())
}

/// `handoff issue`.
pub(crate) fn issue(args: &IssueArgs) -> CliResult<()> {
    let authority = load_key(&args.iss, &args.key)?;
    let subject = load_sub_key(&args.sub, &args.sub_key)?;
    let builder = DelegationToken::root(&authority)
        .delegate_to(&subject)
        .task(args.task.clone());
    grant_and_sign("issue", builder, &args.grant)
}

/// Decodes a token argument (text or `@file`) without verifying it.
fn decode_token(arg: &str, value: &str) -> CliResult<DelegationToken> {
    let text = text_or_file(arg, value)?;
    if text.len() > MAX_TOKEN_BYTES {
        return Err(CliError::new(format!(
            "{arg}: the token is {} bytes, more than the {MAX_TOKEN_BYTES}-byte limit",
            text.len()
        )));
    }
    DelegationToken::decode(&text).map_err(|e| {
        CliError::new(format!(
            "{arg}: {e}; pass a compact delegation token or `@file` holding one"
        ))
    })
}

/// `handoff delegate`.
pub(crate) fn delegate(args: &DelegateArgs) -> CliResult<()> {
    let parent = decode_token("--parent", &args.parent)?;
    let holder = load_key(parent.claimed_subject(), &args.key)?;
    let subject = load_sub_key(&args.sub, &args.sub_key)?;
    let builder = parent.attenuate(&holder).delegate_to(&subject);
    grant_and_sign("delegate", builder, &args.grant)
}

/// `handoff seal`.
pub(crate) fn seal(args: &SealArgs) -> CliResult<()> {
    let sender = load_key(&args.iss, &args.key)?;
    let chain = args
        .chain
        .iter()
        .map(|t| decode_token("--chain", t))
        .collect::<CliResult<Vec<_>>>()?;
    let payload = match &args.payload {
        Some(path) => read_payload_file("--payload", path)?,
        None => Vec::new(),
    };
    let mut builder = HandoffEnvelope::builder(&sender)
        .to(&args.aud)
        .task(args.task.clone())
        .intent(&args.action, &args.resource)
        .map_err(|e| explain("--action/--resource", e))?;
    for (name, value) in &args.args {
        builder = builder.arg(name, value.clone());
    }
    builder = builder.payload(&payload).chain(chain);
    if let Some(ttl) = args.ttl {
        builder = builder.ttl(Duration::from_secs(ttl));
    }
    if let Some(now) = args.now {
        builder = builder.issued_at(UnixTime::from_secs(now));
    }
    let envelope = builder.seal().map_err(|e| explain("seal", e))?;
    print_line(envelope.as_str())
}
