//! `subpath`: a POSIX path that, after lexical normalisation, lies inside a root.

use super::shown;
use serde_json::Value;

/// A `subpath` constraint: the argument is an absolute POSIX path inside `root` (the root itself
/// included), compared segment by segment after collapsing `.` segments.
///
/// Refused: a relative path, NUL, a backslash, an empty segment (`//`, or a trailing `/` except
/// in `/` itself), and any `..` segment (never resolved: after a symbolic link, `..` leaves
/// wherever the link pointed, so a lexical reading of it is unsound).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubpathRule {
    /// The root's segments (none for `/`); each is neither empty nor `.` nor `..`.
    root: Vec<String>,
}

/// Why a path is not a usable path at all, independently of any root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PathProblem {
    Relative,
    Nul,
    Backslash,
    EmptySegment,
    DotDot,
}

impl PathProblem {
    fn text(self) -> &'static str {
        match self {
            PathProblem::Relative => "is not an absolute path (it must start with `/`)",
            PathProblem::Nul => "holds a NUL character",
            PathProblem::Backslash => "holds a backslash (a separator on some systems)",
            PathProblem::EmptySegment => "has an empty segment (`//` or a trailing `/`)",
            PathProblem::DotDot => "has a `..` segment (never resolved: symbolic links)",
        }
    }
}

/// The segments of an absolute path after collapsing `.` segments, or why it is refused.
fn segments(path: &str) -> Result<Vec<&str>, PathProblem> {
    let rest = path.strip_prefix('/').ok_or(PathProblem::Relative)?;
    if path.contains('\0') {
        return Err(PathProblem::Nul);
    }
    if path.contains('\\') {
        return Err(PathProblem::Backslash);
    }
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for segment in rest.split('/') {
        match segment {
            "" => return Err(PathProblem::EmptySegment),
            "." => {}
            ".." => return Err(PathProblem::DotDot),
            s => out.push(s),
        }
    }
    Ok(out)
}

impl SubpathRule {
    /// Parses the constraint's JSON value: the root, a string holding an absolute path in
    /// normal form (no empty, `.` or `..` segment, no trailing `/` except `/` itself, no NUL,
    /// no backslash).
    pub(crate) fn parse(value: &Value) -> Result<Self, String> {
        let root = value
            .as_str()
            .ok_or("a subpath root is a string (an absolute path)")?;
        let problem = |what: &str| format!("subpath root `{}` {what}", shown(root));
        let segs = segments(root).map_err(|p| problem(p.text()))?;
        if root.split('/').any(|s| s == ".") {
            return Err(problem("has a `.` segment (write the root in normal form)"));
        }
        Ok(SubpathRule {
            root: segs.into_iter().map(str::to_owned).collect(),
        })
    }

    /// Whether `value` is an absolute path inside the root (or the root itself).
    pub(crate) fn allows(&self, value: &str) -> bool {
        segments(value).is_ok_and(|segs| self.contains(&segs))
    }

    /// Whether every path the child allows, this rule allows: this root is the child's root or
    /// a segment-wise ancestor of it.
    pub(crate) fn covers(&self, child: &Self) -> bool {
        child.root.starts_with(&self.root)
    }

    /// Why `value` is refused (the value shown escaped and truncated); for an allowed value,
    /// a sentence saying it is allowed.
    pub(crate) fn refusal(&self, value: &str) -> String {
        match segments(value) {
            Err(p) => format!("`{}` {}", shown(value), p.text()),
            Ok(segs) if !self.contains(&segs) => {
                format!("`{}` is not inside `{}`", shown(value), self.root_text())
            }
            Ok(_) => format!(
                "`{}` is allowed by subpath `{}`",
                shown(value),
                self.root_text()
            ),
        }
    }

    /// The root as a JSON string.
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Value {
        Value::String(self.root_text())
    }

    /// Whether normalised segments start with the root's segments.
    fn contains(&self, segs: &[&str]) -> bool {
        segs.len() >= self.root.len() && self.root.iter().zip(segs).all(|(r, s)| r == s)
    }

    fn root_text(&self) -> String {
        format!("/{}", self.root.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use serde_json::json;

    fn rule(root: &str) -> SubpathRule {
        SubpathRule::parse(&json!(root)).unwrap()
    }

    #[test]
    fn subpath_allows_table() {
        let r = rule("/data/reports");
        let cases: &[(&str, bool)] = &[
            ("/data/reports", true),
            ("/data/reports/q1.csv", true),
            ("/data/reports/2026/q1.csv", true),
            ("/data/reports/./q1.csv", true),
            ("/data/./reports/q1.csv", true),
            ("/data/reports/.", true),
            ("/data/reports/..data", true),
            ("/data/reports/x..", true),
            ("/data/reportsX", false),
            ("/data/reportsX/q1.csv", false),
            ("/data/report", false),
            ("/data", false),
            ("/", false),
            ("/data/reports/../../etc/passwd", false),
            ("/data/reports/a/../b", false),
            ("/data/reports/..", false),
            ("/data/reports//x", false),
            ("//data/reports/x", false),
            ("/data/reports/", false),
            ("/data/reports/x/", false),
            ("data/reports/x", false),
            ("./data/reports/x", false),
            ("", false),
            ("/data/reports/x\0", false),
            ("/data/reports\\..\\..\\etc", false),
            ("/data/reports/a\\b", false),
            ("/DATA/reports/x", false),
        ];
        for (value, want) in cases {
            assert_eq!(r.allows(value), *want, "{value:?}");
            if !want {
                assert!(!r.refusal(value).contains("is allowed"), "{value:?}");
            }
        }
    }

    #[test]
    fn subpath_issue_inputs_under_data() {
        let r = rule("/data");
        assert!(!r.allows("/data/../etc"));
        assert!(!r.allows("/data//x"));
        assert!(r.allows("/data/./x"));
        assert!(!r.allows("/datax"));
        assert!(!r.allows("/data/x\0/y"));
        assert!(r.allows("/data"));
    }

    #[test]
    fn subpath_root_slash_allows_every_normal_absolute_path() {
        let r = rule("/");
        assert!(r.allows("/"));
        assert!(r.allows("/etc/passwd"));
        assert!(r.allows("/."));
        assert!(!r.allows("/etc/../x"));
        assert!(!r.allows("relative"));
        assert_eq!(r.to_json(), json!("/"));
    }

    #[test]
    fn subpath_malformed_roots() {
        for bad in [
            json!("data"),
            json!(""),
            json!("/data/"),
            json!("/data//x"),
            json!("/data/./x"),
            json!("/data/.."),
            json!("/data\0"),
            json!("/data\\x"),
            json!(7),
            json!({"root": "/data"}),
            json!(["/data"]),
        ] {
            assert!(SubpathRule::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subpath_refusal_texts() {
        let r = rule("/data/reports");
        assert_eq!(
            r.refusal("/data/../etc"),
            "`/data/../etc` has a `..` segment (never resolved: symbolic links)"
        );
        assert_eq!(
            r.refusal("/datax"),
            "`/datax` is not inside `/data/reports`"
        );
        assert_eq!(
            r.refusal("/data/\u{1b}[2J"),
            "`/data/\\u{1b}[2J` is not inside `/data/reports`"
        );
        let long = format!("/{}", "a".repeat(500));
        assert!(r.refusal(&long).len() < 200);
    }

    #[test]
    fn subpath_covers_table() {
        assert!(rule("/data").covers(&rule("/data/reports")));
        assert!(rule("/data").covers(&rule("/data")));
        assert!(rule("/").covers(&rule("/data")));
        assert!(!rule("/data").covers(&rule("/datax")));
        assert!(!rule("/data/reports").covers(&rule("/data")));
        assert!(!rule("/data").covers(&rule("/")));
    }

    #[test]
    fn subpath_round_trips() {
        for root in ["/", "/data", "/data/reports/2026"] {
            let r = rule(root);
            assert_eq!(r.to_json(), json!(root));
            assert_eq!(SubpathRule::parse(&r.to_json()).unwrap(), r);
        }
    }

    /// Roots over a tiny alphabet, so that covering pairs are frequent.
    fn root() -> impl Strategy<Value = String> {
        prop::collection::vec("[ab]{1,2}", 0..4).prop_map(|s| format!("/{}", s.join("/")))
    }

    /// Paths near the roots: tiny segments with `.`, `..`, empty segments and backslashes.
    fn path() -> impl Strategy<Value = String> {
        let seg = prop_oneof![
            6 => "[ab]{1,2}",
            1 => Just(".".to_owned()),
            1 => Just("..".to_owned()),
            1 => Just(String::new()),
            1 => Just("a\\b".to_owned()),
        ];
        (prop::bool::weighted(0.95), prop::collection::vec(seg, 0..6)).prop_map(|(abs, s)| {
            let body = s.join("/");
            if abs {
                format!("/{body}")
            } else {
                body
            }
        })
    }

    proptest! {
        #![proptest_config(Config::with_cases(crate::grant::semantic::tests::cases()))]

        /// Soundness: when the parent covers the child, every path the child allows, the parent
        /// allows; the child is derived from the parent so that covering pairs are the norm.
        #[test]
        fn subpath_covering_is_sound(
            parent in root(),
            extra in prop::collection::vec("[ab]{1,2}", 0..3),
            other in root(),
            pick_other in prop::bool::weighted(0.3),
            tails in prop::collection::vec(path(), 1..16),
        ) {
            let parent = rule(&parent);
            let child_root = if pick_other {
                other
            } else {
                let mut r = parent.root_text();
                for e in &extra {
                    if !r.ends_with('/') { r.push('/'); }
                    r.push_str(e);
                }
                r
            };
            let child = rule(&child_root);
            if parent.covers(&child) {
                for tail in &tails {
                    // Values that start inside the child's root, and free ones.
                    let inside = format!("{}{}", child.root_text().trim_end_matches('/'), tail);
                    for v in [inside.as_str(), tail.as_str()] {
                        if child.allows(v) {
                            prop_assert!(parent.allows(v), "{v:?} {parent:?} {child:?}");
                        }
                    }
                }
            } else {
                // Uncovered: the child's root itself is a witness the parent refuses.
                prop_assert!(child.allows(&child.root_text()));
                prop_assert!(!parent.allows(&child.root_text()));
            }
        }

        /// `parse(to_json(r)) == r`, and `allows` agrees with the segment-prefix reading.
        #[test]
        fn subpath_round_trip_property(r in root()) {
            let rule = rule(&r);
            prop_assert_eq!(SubpathRule::parse(&rule.to_json()).unwrap(), rule);
        }
    }
}
