//! `url`: a WHATWG URL (parsed by the `url` crate, as HTTP clients parse it) whose scheme, host,
//! port and path are on allow lists.

use super::{shown, string_list};
use ::url::{Host, Url};
use serde_json::Value;
use std::collections::BTreeSet;

/// The schemes a `url` constraint may list: the special schemes that have a host and a default
/// port.
const SCHEMES: [&str; 5] = ["ftp", "http", "https", "ws", "wss"];

/// The default port of a listed scheme (as the WHATWG URL standard defines it).
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        _ => None,
    }
}

/// One entry of the host allow list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum HostPattern {
    /// Exactly this domain (lowercase ASCII, IDNs in punycode, no trailing dot).
    Domain(String),
    /// `*.suffix`: every domain strictly below `suffix` (not `suffix` itself).
    Below(String),
    /// Exactly this IP address, in the parser's canonical text (`127.0.0.1`, `[::1]`).
    Ip(String),
}

impl HostPattern {
    fn parse(text: &str) -> Result<Self, String> {
        let problem = |what: &str| format!("url host `{}` {what}", shown(text));
        if let Some(suffix) = text.strip_prefix("*.") {
            check_domain(suffix).map_err(&problem)?;
            return Ok(HostPattern::Below(suffix.to_owned()));
        }
        match Host::parse(text) {
            Ok(Host::Domain(_)) => {
                check_domain(text).map_err(&problem)?;
                Ok(HostPattern::Domain(text.to_owned()))
            }
            Ok(host @ (Host::Ipv4(_) | Host::Ipv6(_))) => {
                if is_mapped(&host) {
                    return Err(problem("is an IPv4-mapped IPv6 address (never allowed)"));
                }
                if host.to_string() != text {
                    return Err(problem(
                        "is not in canonical text (IPv4 as a dotted quad, IPv6 in brackets as the URL parser writes it)",
                    ));
                }
                Ok(HostPattern::Ip(text.to_owned()))
            }
            Err(_) => Err(problem(
                "is not a host name, an IP address or `*.` and a host name",
            )),
        }
    }

    #[cfg(test)]
    fn text(&self) -> String {
        match self {
            HostPattern::Domain(d) | HostPattern::Ip(d) => d.clone(),
            HostPattern::Below(s) => format!("*.{s}"),
        }
    }

    /// Whether this entry allows the host of a parsed URL, serialised as `host` (`Host` tells
    /// which kind it is).
    fn matches(&self, host: &Host<&str>) -> bool {
        match (self, host) {
            (HostPattern::Domain(d), Host::Domain(h)) => d == h,
            (HostPattern::Below(s), Host::Domain(h)) => strictly_below(h, s),
            (HostPattern::Ip(ip), Host::Ipv4(_) | Host::Ipv6(_)) => *ip == host.to_string(),
            _ => false,
        }
    }

    /// Whether every host `child` allows, this entry allows.
    fn covers(&self, child: &HostPattern) -> bool {
        match (self, child) {
            (HostPattern::Domain(p), HostPattern::Domain(c)) => p == c,
            (HostPattern::Below(s), HostPattern::Domain(c)) => strictly_below(c, s),
            (HostPattern::Below(s), HostPattern::Below(t)) => s == t || strictly_below(t, s),
            (HostPattern::Ip(p), HostPattern::Ip(c)) => p == c,
            _ => false,
        }
    }
}

/// Whether domain `host` is strictly below domain `suffix` (`x.a.com` below `a.com`).
fn strictly_below(host: &str, suffix: &str) -> bool {
    host.strip_suffix(suffix)
        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

/// A domain as an allow list writes it: what the URL parser would make of it already (lowercase
/// ASCII, IDNs in punycode), labels of letters, digits, `-` and `_`, no empty label, no trailing
/// dot, not read as an IP address.
fn check_domain(text: &str) -> Result<(), &'static str> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    if text.len() > 253 || !text.split('.').all(label_ok) {
        return Err(
            "is not a domain name in lowercase ASCII (IDNs in punycode), without a trailing dot",
        );
    }
    match Host::parse(text) {
        Ok(Host::Domain(d)) if d == text => Ok(()),
        _ => Err("is not a domain name as the URL parser writes it"),
    }
}

/// Whether a host is an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
fn is_mapped(host: &Host<impl AsRef<str>>) -> bool {
    matches!(host, Host::Ipv6(a) if a.to_ipv4_mapped().is_some())
}

/// Why a path prefix (from the policy) is not in normal form, if it is not.
fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix == "/" {
        return None;
    }
    if !prefix.starts_with('/') || prefix.ends_with('/') {
        return Some("must start with `/` and not end with `/` (except `/` itself)");
    }
    if prefix.contains(['?', '#', '\\']) || prefix.split('/').skip(1).any(str::is_empty) {
        return Some("holds `?`, `#`, `\\` or an empty segment");
    }
    if path_problem(prefix).is_some() {
        return Some("holds an encoded `/` or `\\`, or a dot segment");
    }
    match Url::parse(&format!("http://h{prefix}")) {
        Ok(u) if u.path() == prefix => None,
        _ => Some("is not in the URL parser's normal form (dot segments, percent-encoding)"),
    }
}

/// Why a parsed URL's path is refused whatever the allow list: an encoded `/` or `\` (a server
/// that decodes it sees other segments), or a segment that is a dot segment up to a `;`
/// (`..;`, read as `..` by some servers).
fn path_problem(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Some("has an encoded `/` or `\\` in its path");
    }
    let dotty = lower.split('/').any(|seg| {
        let base = seg.split(';').next().unwrap_or(seg).replace("%2e", ".");
        base == "." || base == ".."
    });
    if dotty {
        return Some("has a dot segment in its path (`..;` or the like)");
    }
    None
}

/// A URL argument as the rules read it: parsed, and checked for what any allow list refuses.
struct Parsed {
    url: Url,
}

/// Parses `value` and refuses what no allow list allows: text a parser may read differently
/// (control characters, spaces, backslashes, a missing `//`, a host not written as the parser
/// writes it), userinfo, a fragment, an IPv4-mapped IPv6 host, and unsafe paths.
fn parse_value(value: &str) -> Result<Parsed, &'static str> {
    if value
        .chars()
        .any(|c| c.is_ascii_control() || c == ' ' || c == '\\')
    {
        return Err("holds a control character, a space or a backslash");
    }
    if value.contains('#') {
        return Err("has a fragment (`#`)");
    }
    let url = Url::parse(value).map_err(|_| "is not a URL")?;
    let scheme = url.scheme();
    let rest = value
        .get(..scheme.len() + 3)
        .filter(|head| head.eq_ignore_ascii_case(&format!("{scheme}://")))
        .and_then(|_| value.get(scheme.len() + 3..))
        .ok_or("does not start with a scheme and `//`")?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    if authority.contains('@') || !url.username().is_empty() || url.password().is_some() {
        return Err("has userinfo (`user@` or `user:password@`)");
    }
    let host_text = if authority.starts_with('[') {
        authority
            .find(']')
            .and_then(|end| authority.get(..=end))
            .unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    let host = url.host().ok_or("has no host")?;
    if is_mapped(&host) {
        return Err("has an IPv4-mapped IPv6 host");
    }
    if host_text.to_ascii_lowercase() != host.to_string() {
        return Err(
            "has a host not written as the URL parser writes it (Unicode, percent-encoding, or a non-canonical IP address)",
        );
    }
    if let Some(why) = path_problem(url.path()) {
        return Err(why);
    }
    Ok(Parsed { url })
}

/// A `url` constraint: allow lists of schemes, hosts, ports and path prefixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UrlRule {
    /// Lowercase, each one of [`SCHEMES`]; not empty.
    schemes: BTreeSet<String>,
    /// Not empty.
    hosts: BTreeSet<HostPattern>,
    /// `None`: each scheme's default port only.
    ports: Option<BTreeSet<u16>>,
    /// Path prefixes in the parser's normal form; not empty (`/` allows every path).
    paths: BTreeSet<String>,
}

impl UrlRule {
    /// Parses the constraint's JSON value: an object with `schemes` and `hosts` (required),
    /// `ports` and `paths` (optional); each a string or a non-empty list (ports: a number or
    /// a non-empty list of numbers). No other member.
    pub(crate) fn parse(value: &Value) -> Result<Self, String> {
        let obj = value
            .as_object()
            .ok_or("a url constraint is an object (`schemes`, `hosts`, `ports`, `paths`)")?;
        if let Some(other) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "schemes" | "hosts" | "ports" | "paths"))
        {
            return Err(format!(
                "url constraint has an unknown member `{}`",
                shown(other)
            ));
        }
        let required = |name: &str| {
            obj.get(name)
                .ok_or_else(|| format!("url constraint lacks `{name}`"))
        };
        let mut schemes = BTreeSet::new();
        for s in string_list(required("schemes")?, "schemes")? {
            if !SCHEMES.contains(&s) {
                return Err(format!(
                    "url scheme `{}` is not one of `ftp`, `http`, `https`, `ws`, `wss` (lowercase)",
                    shown(s)
                ));
            }
            schemes.insert(s.to_owned());
        }
        let mut hosts = BTreeSet::new();
        for h in string_list(required("hosts")?, "hosts")? {
            hosts.insert(HostPattern::parse(h)?);
        }
        let ports = match obj.get("ports") {
            None => None,
            Some(v) => {
                let items = match v {
                    Value::Array(a) if a.is_empty() => {
                        return Err("`ports` is an empty list (it would allow nothing)".into())
                    }
                    Value::Array(a) => a.iter().collect(),
                    one => vec![one],
                };
                let mut set = BTreeSet::new();
                for p in items {
                    let port = p
                        .as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .filter(|n| *n != 0)
                        .ok_or("a url port is a whole number from 1 to 65535")?;
                    set.insert(port);
                }
                Some(set)
            }
        };
        let mut paths = BTreeSet::new();
        match obj.get("paths") {
            None => {
                paths.insert("/".to_owned());
            }
            Some(v) => {
                for p in string_list(v, "paths")? {
                    if let Some(why) = prefix_problem(p) {
                        return Err(format!("url path prefix `{}` {why}", shown(p)));
                    }
                    paths.insert(p.to_owned());
                }
            }
        }
        Ok(UrlRule {
            schemes,
            hosts,
            ports,
            paths,
        })
    }

    /// Whether `value` is a URL this rule allows.
    pub(crate) fn allows(&self, value: &str) -> bool {
        parse_value(value).is_ok_and(|p| self.mismatch(&p.url).is_none())
    }

    /// Whether every URL the child allows, this rule allows: schemes ⊇, each child host entry
    /// covered by one of these, for each child scheme the child's ports ⊆ these, each child
    /// path prefix under one of these.
    pub(crate) fn covers(&self, child: &Self) -> bool {
        child.schemes.is_subset(&self.schemes)
            && child
                .hosts
                .iter()
                .all(|c| self.hosts.iter().any(|p| p.covers(c)))
            && child.schemes.iter().all(|s| {
                let theirs = child.ports_for(s);
                let ours = self.ports_for(s);
                theirs.is_subset(&ours)
            })
            && child
                .paths
                .iter()
                .all(|c| self.paths.iter().any(|p| under(c, p)))
    }

    /// Why `value` is refused (the value shown escaped and truncated); for an allowed value,
    /// a sentence saying it is allowed.
    pub(crate) fn refusal(&self, value: &str) -> String {
        match parse_value(value) {
            Err(why) => format!("`{}` {why}", shown(value)),
            Ok(p) => match self.mismatch(&p.url) {
                Some(why) => format!("`{}` {why}", shown(value)),
                None => format!("`{}` is allowed by the url constraint", shown(value)),
            },
        }
    }

    /// The canonical JSON form: every member a sorted list, `ports` only when listed.
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Value {
        let list = |items: Vec<Value>| Value::Array(items);
        let mut obj = serde_json::Map::new();
        obj.insert(
            "schemes".into(),
            list(
                self.schemes
                    .iter()
                    .map(|s| Value::from(s.as_str()))
                    .collect(),
            ),
        );
        obj.insert(
            "hosts".into(),
            list(self.hosts.iter().map(|h| Value::from(h.text())).collect()),
        );
        if let Some(ports) = &self.ports {
            obj.insert(
                "ports".into(),
                list(ports.iter().map(|p| Value::from(*p)).collect()),
            );
        }
        obj.insert(
            "paths".into(),
            list(self.paths.iter().map(|p| Value::from(p.as_str())).collect()),
        );
        Value::Object(obj)
    }

    /// Whether `port` is allowed with `scheme`.
    fn port_allowed(&self, scheme: &str, port: u16) -> bool {
        match &self.ports {
            Some(ports) => ports.contains(&port),
            None => default_port(scheme) == Some(port),
        }
    }

    /// The ports allowed with `scheme`.
    fn ports_for(&self, scheme: &str) -> BTreeSet<u16> {
        match &self.ports {
            Some(ports) => ports.clone(),
            None => default_port(scheme).into_iter().collect(),
        }
    }

    /// Which allow list a parsed URL fails, if any.
    fn mismatch(&self, url: &Url) -> Option<String> {
        if !self.schemes.contains(url.scheme()) {
            return Some(format!("has scheme `{}`, not listed", shown(url.scheme())));
        }
        let Some(host) = url.host() else {
            return Some("has no host".into());
        };
        if !self.hosts.iter().any(|h| h.matches(&host)) {
            return Some(format!(
                "has host `{}`, not listed",
                shown(&host.to_string())
            ));
        }
        let Some(port) = url.port_or_known_default() else {
            return Some("has no port".into());
        };
        if !self.port_allowed(url.scheme(), port) {
            return Some(format!(
                "has port {port}, not listed for `{}`",
                url.scheme()
            ));
        }
        let path = url.path();
        if !self.paths.iter().any(|p| under(path, p)) {
            return Some(format!(
                "has path `{}` (after normalisation), under no listed prefix",
                shown(path)
            ));
        }
        None
    }
}

/// Whether `path` is `prefix` or below it on a segment boundary.
fn under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use serde_json::json;

    fn rule(v: Value) -> UrlRule {
        UrlRule::parse(&v).unwrap()
    }

    fn check(r: &UrlRule, cases: &[(&str, bool)]) {
        for (value, want) in cases {
            assert_eq!(r.allows(value), *want, "{value:?}: {}", r.refusal(value));
            assert_eq!(
                r.refusal(value)
                    .ends_with("is allowed by the url constraint"),
                *want,
                "{value:?}"
            );
        }
    }

    #[test]
    fn url_allows_table_good_com() {
        let r = rule(json!({"schemes": ["http", "https"], "hosts": ["good.com"]}));
        check(
            &r,
            &[
                ("http://good.com", true),
                ("http://good.com/", true),
                ("https://good.com/x?q=1&r=%20", true),
                ("HTTP://GOOD.COM", true),
                ("HtTp://Good.Com/A", true),
                ("http://good.com:80/", true),
                ("https://good.com:443/x", true),
                ("http://good.com:080/", true),
                ("http://good.com/%2e%2e/x", true),
                ("http://good.com/a/../b", true),
                // ports: only each scheme's default
                ("http://good.com:8080/", false),
                ("https://good.com:80/", false),
                ("http://good.com:443/", false),
                // the tricky inputs
                ("http://evil.com#@good.com", false),
                ("http://good.com.evil.com", false),
                ("http://0x7f000001", false),
                ("http://[::ffff:127.0.0.1]", false),
                ("http://good.com@evil.com", false),
                // userinfo, even to the listed host
                ("http://user@good.com/", false),
                ("http://user:pw@good.com/", false),
                ("http://@good.com/", false),
                ("http://:@good.com/", false),
                // IDNA look-alikes and other spellings of a host
                ("http://g\u{43e}\u{43e}d.com/", false),
                ("http://xn--gd-fmca.com/", false),
                ("http://\u{ff47}\u{ff4f}\u{ff4f}\u{ff44}.com/", false),
                ("http://good\u{3002}com/", false),
                ("http://g%6Fod.com/", false),
                ("http://good.com./", false),
                ("http://sub.good.com/", false),
                ("http://good.co/", false),
                // text that parsers read differently
                ("http:good.com", false),
                ("http:/good.com", false),
                ("http:///good.com", false),
                ("http:\\\\good.com", false),
                ("http://good.com\\@evil.com", false),
                ("http://evil.com\\@good.com", false),
                (" http://good.com", false),
                ("http://good.com/\t", false),
                ("http://go\nod.com/", false),
                ("http://good.com/ x", false),
                // fragments are refused
                ("http://good.com/#frag", false),
                ("http://good.com/#", false),
                // unsafe paths
                ("http://good.com/a%2f..%2fadmin", false),
                ("http://good.com/a%5C..%5Cadmin", false),
                ("http://good.com/a/..;/admin", false),
                ("http://good.com/a/.;x/admin", false),
                ("http://good.com/a/%2e%2e;/admin", false),
                // schemes
                ("ftp://good.com/", false),
                ("ws://good.com/", false),
                ("file:///etc/passwd", false),
                ("javascript:alert(1)", false),
                ("data:text/plain,good.com", false),
                ("good.com", false),
                ("//good.com/", false),
                ("", false),
                // IP literals, not listed
                ("http://127.0.0.1/", false),
                ("http://[::1]/", false),
            ],
        );
    }

    #[test]
    fn url_path_prefixes_after_normalisation() {
        let api = rule(json!({"schemes": "http", "hosts": "good.com", "paths": ["/api"]}));
        check(
            &api,
            &[
                ("http://good.com/api", true),
                ("http://good.com/api/", true),
                ("http://good.com/api/v1?x=1", true),
                ("http://good.com/api/./v1", true),
                ("http://good.com:80/../api/v1", true),
                ("http://good.com:80/../admin", false),
                ("http://good.com/api/../admin", false),
                ("http://good.com/api/%2e%2e/admin", false),
                ("http://good.com/api/.%2e/admin", false),
                ("http://good.com/apix", false),
                ("http://good.com/API", false),
                ("http://good.com/", false),
                ("http://good.com", false),
                ("http://good.com?/api", false),
            ],
        );
        let admin = rule(json!({"schemes": "http", "hosts": "good.com", "paths": "/admin"}));
        assert!(admin.allows("http://good.com:80/../admin"));
        assert_eq!(
            api.refusal("http://good.com:80/../admin"),
            "`http://good.com:80/../admin` has path `/admin` (after normalisation), under no listed prefix"
        );
    }

    #[test]
    fn url_wildcard_hosts_are_strictly_below() {
        let r = rule(json!({"schemes": ["https"], "hosts": ["*.a.com"]}));
        check(
            &r,
            &[
                ("https://x.a.com/", true),
                ("https://y.x.a.com/", true),
                ("https://X.A.com/", true),
                ("https://a.com/", false),
                ("https://xa.com/", false),
                ("https://x.a.com.evil.com/", false),
                ("https://x.a.com./", false),
                ("https://x.a.co/", false),
            ],
        );
    }

    #[test]
    fn url_ip_literals_only_when_listed_in_canonical_text() {
        let r = rule(
            json!({"schemes": ["http"], "hosts": ["127.0.0.1", "[::1]"], "ports": [80, 8080]}),
        );
        check(
            &r,
            &[
                ("http://127.0.0.1/", true),
                ("http://127.0.0.1:8080/", true),
                ("http://[::1]/", true),
                ("http://[::1]:8080/x", true),
                ("http://127.0.0.1:81/", false),
                ("http://0x7f000001/", false),
                ("http://2130706433/", false),
                ("http://0177.0.0.1/", false),
                ("http://127.1/", false),
                ("http://127.000.000.001/", false),
                ("http://[0:0:0:0:0:0:0:1]/", false),
                ("http://[::ffff:127.0.0.1]/", false),
                ("http://[::ffff:7f00:1]/", false),
                ("http://127.0.0.2/", false),
                ("http://localhost/", false),
            ],
        );
    }

    /// A Unicode look-alike is refused as written, and its punycode is another host: neither
    /// reaches `good.com`, even when the look-alike's punycode is what the policy lists.
    #[test]
    fn url_idna_look_alikes() {
        let lookalike = "http://g\u{43e}\u{43e}d.com/";
        assert_eq!(
            Url::parse(lookalike).unwrap().host_str(),
            Some("xn--gd-fmca.com")
        );
        let good = rule(json!({"schemes": "http", "hosts": "good.com"}));
        assert!(!good.allows(lookalike));
        let puny = rule(json!({"schemes": "http", "hosts": "xn--gd-fmca.com"}));
        assert!(puny.allows("http://xn--gd-fmca.com/"));
        assert!(!puny.allows(lookalike));
        assert!(puny
            .refusal(lookalike)
            .contains("not written as the URL parser writes it"));
    }

    #[test]
    fn url_explicit_ports_apply_to_every_scheme() {
        let r = rule(json!({"schemes": ["http", "https"], "hosts": ["good.com"], "ports": 8443}));
        assert!(r.allows("https://good.com:8443/"));
        assert!(r.allows("http://good.com:8443/"));
        assert!(!r.allows("https://good.com/"));
    }

    #[test]
    fn url_malformed() {
        let ok = json!({"schemes": ["https"], "hosts": ["good.com"]});
        assert!(UrlRule::parse(&ok).is_ok());
        let with = |k: &str, v: Value| {
            let mut o = ok.clone();
            o[k] = v;
            o
        };
        for bad in [
            json!("https://good.com/*"),
            json!({"hosts": ["good.com"]}),
            json!({"schemes": ["https"]}),
            with("extra", json!(1)),
            with("schemes", json!([])),
            with("schemes", json!(["HTTPS"])),
            with("schemes", json!(["file"])),
            with("schemes", json!(["javascript"])),
            with("hosts", json!([])),
            with("hosts", json!(["Good.com"])),
            with("hosts", json!(["good.com."])),
            with("hosts", json!(["g\u{43e}\u{43e}d.com"])),
            with("hosts", json!(["*"])),
            with("hosts", json!(["*."])),
            with("hosts", json!(["*.*.a.com"])),
            with("hosts", json!(["a.*.com"])),
            with("hosts", json!(["good..com"])),
            with("hosts", json!(["a.123"])),
            with("hosts", json!(["0x7f000001"])),
            with("hosts", json!(["127.000.0.1"])),
            with("hosts", json!(["::1"])),
            with("hosts", json!(["[::FFFF:7f00:1]"])),
            with("hosts", json!(["[::ffff:7f00:1]"])),
            with("hosts", json!(["[0:0:0:0:0:0:0:1]"])),
            with("hosts", json!(["user@good.com"])),
            with("hosts", json!(["good.com:80"])),
            with("hosts", json!([7])),
            with("ports", json!([])),
            with("ports", json!([0])),
            with("ports", json!([70000])),
            with("ports", json!(["80"])),
            with("ports", json!([80.5])),
            with("paths", json!([])),
            with("paths", json!(["v1"])),
            with("paths", json!(["/v1/"])),
            with("paths", json!(["/a/../b"])),
            with("paths", json!(["/a/./b"])),
            with("paths", json!(["/a//b"])),
            with("paths", json!(["/a b"])),
            with("paths", json!(["/a%2fb"])),
            with("paths", json!(["/a?b"])),
            with("paths", json!(["/a#b"])),
            with("paths", json!(["/..;"])),
        ] {
            assert!(UrlRule::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_covers_table() {
        let p = rule(json!({
            "schemes": ["http", "https"],
            "hosts": ["good.com", "*.a.com", "127.0.0.1"],
            "paths": ["/api", "/static"]
        }));
        let c = |v: Value| rule(v);
        assert!(p.covers(&p));
        assert!(p.covers(&c(
            json!({"schemes": "https", "hosts": "good.com", "paths": "/api/v1"})
        )));
        assert!(p.covers(&c(json!({"schemes": "https", "hosts": ["x.a.com", "*.x.a.com", "*.a.com"], "paths": "/static"}))));
        assert!(p.covers(&c(
            json!({"schemes": "http", "hosts": "127.0.0.1", "paths": "/api", "ports": 80})
        )));
        // not covered
        assert!(!p.covers(&c(
            json!({"schemes": "ws", "hosts": "good.com", "paths": "/api"})
        )));
        assert!(!p.covers(&c(
            json!({"schemes": "https", "hosts": "a.com", "paths": "/api"})
        )));
        assert!(!p.covers(&c(
            json!({"schemes": "https", "hosts": "*.good.com", "paths": "/api"})
        )));
        assert!(!p.covers(&c(json!({"schemes": "https", "hosts": "good.com"}))));
        assert!(!p.covers(&c(
            json!({"schemes": "https", "hosts": "good.com", "paths": "/apix"})
        )));
        assert!(!p.covers(&c(
            json!({"schemes": "https", "hosts": "good.com", "paths": "/api", "ports": 8080})
        )));
        assert!(!p.covers(&c(
            json!({"schemes": "https", "hosts": "10.0.0.1", "paths": "/api"})
        )));
        assert!(!p.covers(&c(
            json!({"schemes": "https", "hosts": "[::1]", "paths": "/api"})
        )));
        // an explicit port list covers the default only where it lists it
        let https443 = c(json!({"schemes": "https", "hosts": "good.com", "ports": [443]}));
        let https_default = c(json!({"schemes": "https", "hosts": "good.com"}));
        assert!(https443.covers(&https_default));
        assert!(https_default.covers(&https443));
        let both = c(json!({"schemes": ["http", "https"], "hosts": "good.com", "ports": [443]}));
        assert!(!https_default.covers(&both));
        assert!(!c(json!({"schemes": ["http", "https"], "hosts": "good.com"})).covers(&both));
    }

    #[test]
    fn url_round_trips() {
        for v in [
            json!({"schemes": ["https", "http"], "hosts": ["*.a.com", "good.com", "[::1]", "10.0.0.1"], "ports": [8443, 443], "paths": ["/v1", "/"]}),
            json!({"schemes": "wss", "hosts": "good.com"}),
        ] {
            let r = rule(v);
            assert_eq!(UrlRule::parse(&r.to_json()).unwrap(), r);
        }
        assert_eq!(
            rule(json!({"schemes": "wss", "hosts": "good.com"})).to_json(),
            json!({"schemes": ["wss"], "hosts": ["good.com"], "paths": ["/"]})
        );
    }

    #[test]
    fn url_refusal_texts() {
        let r = rule(json!({"schemes": "https", "hosts": "good.com"}));
        assert_eq!(
            r.refusal("https://evil.com/"),
            "`https://evil.com/` has host `evil.com`, not listed"
        );
        assert_eq!(
            r.refusal("https://good.com@evil.com/"),
            "`https://good.com@evil.com/` has userinfo (`user@` or `user:password@`)"
        );
        assert_eq!(
            r.refusal("http://good.com/"),
            "`http://good.com/` has scheme `http`, not listed"
        );
        let long = format!("https://good.com/{}#", "a".repeat(1000));
        assert!(r.refusal(&long).len() < 200);
    }

    // ------------------------------------------------------------ soundness property

    fn domain() -> impl Strategy<Value = String> {
        "[ab]{1,2}(\\.[ab]{1,2}){0,2}"
    }

    fn host_pattern() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => domain(),
            3 => domain().prop_map(|d| format!("*.{d}")),
            1 => prop::sample::select(vec!["127.0.0.1", "10.0.0.1", "[::1]"]).prop_map(str::to_owned),
        ]
    }

    fn prefix() -> impl Strategy<Value = String> {
        prop::collection::vec("[xy]{1,2}", 0..3).prop_map(|s| format!("/{}", s.join("/")))
    }

    fn ports() -> impl Strategy<Value = Option<Vec<u16>>> {
        prop::option::of(prop::sample::subsequence(vec![21u16, 80, 443, 8080], 1..=4))
    }

    fn schemes() -> impl Strategy<Value = Vec<&'static str>> {
        prop::sample::subsequence(vec!["ftp", "http", "https", "ws"], 1..=4)
    }

    fn build(
        schemes: &[&str],
        hosts: &[String],
        ports: &Option<Vec<u16>>,
        paths: &[String],
    ) -> UrlRule {
        let mut v = json!({"schemes": schemes, "hosts": hosts, "paths": paths});
        if let Some(p) = ports {
            v["ports"] = json!(p);
        }
        rule(v)
    }

    /// A child entry derived from a parent entry: itself, a name below it, or a narrower
    /// wildcard; `k` picks.
    fn narrower(host: &str, k: u8) -> String {
        match (host.strip_prefix("*."), k % 4) {
            (Some(s), 0) => format!("q.{s}"),
            (Some(s), 1) => format!("*.q.{s}"),
            (Some(s), 2) => s.to_owned(),
            (None, 1) if !host.starts_with(['1', '[']) => format!("*.{host}"),
            _ => host.to_owned(),
        }
    }

    /// Hosts to try against a child entry.
    fn hosts_near(entry: &str) -> Vec<String> {
        match entry.strip_prefix("*.") {
            Some(s) => vec![
                format!("z.{s}"),
                format!("z.q.{s}"),
                s.to_owned(),
                format!("z{s}"),
            ],
            None => vec![
                entry.to_owned(),
                entry.to_ascii_uppercase(),
                format!("{entry}."),
                format!("z.{entry}"),
            ],
        }
    }

    proptest! {
        #![proptest_config(Config::with_cases(crate::grant::semantic::tests::cases()))]

        /// Soundness: when the parent covers the child, every URL the child allows, the parent
        /// allows. Children are mostly derived from the parent (so that most pairs are
        /// covered), and values from the child's own lists (so that most values are allowed).
        #[test]
        fn url_covering_is_sound(
            p_schemes in schemes(),
            p_hosts in prop::collection::vec(host_pattern(), 1..4),
            p_ports in ports(),
            p_paths in prop::collection::vec(prefix(), 1..3),
            derive in prop::collection::vec(any::<u8>(), 5),
            c_free_host in host_pattern(),
            c_ports in ports(),
            c_extra in "[xy]{1,2}",
            tails in prop::collection::vec(
                prop::sample::select(vec!["", "/", "/x", "x", "/../y", "/./x", "/x/..", "?q=/..", "/%2e%2e/y", "/..;/y"]),
                1..4,
            ),
        ) {
            let parent = build(&p_schemes, &p_hosts, &p_ports, &p_paths);
            let c_schemes: Vec<&str> = p_schemes
                .iter()
                .enumerate()
                .filter(|(i, _)| derive[0] >> (i % 8) & 1 == 0 || *i == 0)
                .map(|(_, s)| *s)
                .collect();
            let mut c_hosts: Vec<String> =
                p_hosts.iter().map(|h| narrower(h, derive[1])).collect();
            if derive[2] % 5 == 0 {
                c_hosts.push(c_free_host);
            }
            let c_ports = if derive[3] % 2 == 0 { p_ports.clone() } else { c_ports };
            let c_paths: Vec<String> = p_paths
                .iter()
                .map(|p| match derive[4] % 4 {
                    0 => p.clone(),
                    // not on a segment boundary: `/x` to `/xy` (uncovered)
                    1 if p != "/" => format!("{p}{c_extra}"),
                    _ => format!("{}/{c_extra}", p.trim_end_matches('/')),
                })
                .collect();
            let child = build(&c_schemes, &c_hosts, &c_ports, &c_paths);
            prop_assert!(parent.covers(&parent));
            if parent.covers(&child) {
                for scheme in ["ftp", "http", "https", "ws", "wss"] {
                    for host in c_hosts.iter().flat_map(|h| hosts_near(h)) {
                        for port in ["", ":21", ":80", ":443", ":8080"] {
                            for path in &c_paths {
                                for tail in &tails {
                                    let v = format!("{scheme}://{host}{port}{path}{tail}");
                                    if child.allows(&v) {
                                        prop_assert!(parent.allows(&v), "{v} {parent:?} {child:?}");
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        /// Converse spot check: for an uncovered pair, a URL the child allows and the parent
        /// refuses is found among the child's own schemes, hosts, ports and prefixes (covering
        /// is exact for this kind: its allowed set is a product of the allow lists).
        #[test]
        fn url_uncovered_has_witness(
            p_schemes in schemes(),
            p_hosts in prop::collection::vec(host_pattern(), 1..4),
            p_ports in ports(),
            p_paths in prop::collection::vec(prefix(), 1..3),
            c_schemes in schemes(),
            c_hosts in prop::collection::vec(host_pattern(), 1..3),
            c_ports in ports(),
            c_paths in prop::collection::vec(prefix(), 1..3),
        ) {
            let parent = build(&p_schemes, &p_hosts, &p_ports, &p_paths);
            let child = build(&c_schemes, &c_hosts, &c_ports, &c_paths);
            if !parent.covers(&child) {
                let mut grid = Vec::new();
                for scheme in &child.schemes {
                    for host in &child.hosts {
                        let host = match host {
                            HostPattern::Below(s) => format!("z.{s}"),
                            HostPattern::Domain(d) | HostPattern::Ip(d) => d.clone(),
                        };
                        for port in child.ports_for(scheme) {
                            for path in &child.paths {
                                grid.push(format!("{scheme}://{host}:{port}{path}"));
                            }
                        }
                    }
                }
                let witness = grid.iter().find(|v| child.allows(v) && !parent.allows(v));
                prop_assert!(witness.is_some(), "no witness: {parent:?} {child:?}");
            }
        }
    }
}
