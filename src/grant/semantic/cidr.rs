//! `cidr`: an IP address, in canonical text, inside one of a list of networks.

use super::{shown, string_list};
use ipnet::IpNet;
use serde_json::Value;
use std::net::IpAddr;

/// A `cidr` constraint: the argument is an IPv4 or IPv6 address, written in canonical text,
/// inside one of `nets`.
///
/// Canonical text is what Rust's `IpAddr` displays: IPv4 as a dotted quad without leading zeros;
/// IPv6 as RFC 5952 recommends (lowercase, the longest run of two or more zero groups as `::`,
/// and an IPv4-mapped address as `::ffff:a.b.c.d`). Any other spelling (`127.1`, `0x7f000001`,
/// `010.0.0.1`, `::FFFF:7f00:1`, a zone `%eth0`, surrounding space) is refused. An IPv4-mapped
/// IPv6 address is an IPv6 address: no IPv4 network contains it, an IPv6 network may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CidrRule {
    /// The networks as written (canonical, host bits zero), sorted, without duplicates.
    nets: Vec<IpNet>,
}

/// Why a value is refused before any network is looked at.
fn address(value: &str) -> Result<IpAddr, &'static str> {
    let addr: IpAddr = value.parse().map_err(|_| "is not an IP address")?;
    if addr.to_string() != value {
        return Err("is not an IP address in canonical text");
    }
    Ok(addr)
}

impl CidrRule {
    /// Parses the constraint's JSON value: one network or a non-empty list of networks, each
    /// `address/prefix` in canonical text with the host bits zero (`10.0.0.0/8`,
    /// `2001:db8::/32`), or a bare address in canonical text, meaning that address alone.
    pub(crate) fn parse(value: &Value) -> Result<Self, String> {
        let mut nets = Vec::new();
        for text in string_list(value, "cidr")? {
            let problem = |what: &str| format!("cidr network `{}` {what}", shown(text));
            let net = if text.contains('/') {
                let net: IpNet = text
                    .parse()
                    .map_err(|_| problem("is not a network (`address/prefix`)"))?;
                if net.trunc() != net {
                    return Err(problem("has host bits set (write the network address)"));
                }
                if net.to_string() != text {
                    return Err(problem("is not in canonical text"));
                }
                net
            } else {
                IpNet::from(address(text).map_err(problem)?)
            };
            nets.push(net);
        }
        nets.sort();
        nets.dedup();
        Ok(CidrRule { nets })
    }

    /// Whether `value` is an IP address in canonical text inside one of the networks.
    pub(crate) fn allows(&self, value: &str) -> bool {
        address(value).is_ok_and(|addr| self.nets.iter().any(|net| net.contains(&addr)))
    }

    /// Whether every address the child allows, this rule allows: each child network lies
    /// inside one network of this rule's list once aggregated (adjacent and overlapping
    /// networks merged, so `10.0.0.0/9` and `10.128.0.0/9` together cover `10.0.0.0/8`).
    pub(crate) fn covers(&self, child: &Self) -> bool {
        let parent = IpNet::aggregate(&self.nets);
        child
            .nets
            .iter()
            .all(|c| parent.iter().any(|p| p.contains(c)))
    }

    /// Why `value` is refused (the value shown escaped and truncated); for an allowed value,
    /// a sentence saying it is allowed.
    pub(crate) fn refusal(&self, value: &str) -> String {
        match address(value) {
            Err(why) => format!("`{}` {why}", shown(value)),
            Ok(addr) if !self.nets.iter().any(|net| net.contains(&addr)) => {
                format!("`{}` is not in {}", shown(value), self.list_text())
            }
            Ok(_) => format!("`{}` is allowed by cidr {}", shown(value), self.list_text()),
        }
    }

    /// The networks as a JSON list of strings (`address/prefix`).
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Value {
        Value::Array(
            self.nets
                .iter()
                .map(|n| Value::String(n.to_string()))
                .collect(),
        )
    }

    fn list_text(&self) -> String {
        let nets: Vec<String> = self.nets.iter().map(|n| format!("`{n}`")).collect();
        nets.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use serde_json::json;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn rule(v: Value) -> CidrRule {
        CidrRule::parse(&v).unwrap()
    }

    #[test]
    fn cidr_allows_table() {
        let r = rule(json!(["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"]));
        let cases: &[(&str, bool)] = &[
            ("10.0.0.1", true),
            ("10.255.255.255", true),
            ("192.168.1.7", true),
            ("2001:db8::1", true),
            ("2001:db8:ffff::", true),
            ("11.0.0.1", false),
            ("192.168.1.8", false),
            ("2001:db9::1", false),
            // non-canonical spellings of allowed addresses
            ("010.0.0.1", false),
            ("10.0.0.01", false),
            ("10.1", false),
            ("0x0a000001", false),
            ("167772161", false),
            (" 10.0.0.1", false),
            ("10.0.0.1 ", false),
            ("2001:DB8::1", false),
            ("2001:db8:0:0:0:0:0:1", false),
            ("2001:0db8::1", false),
            ("[2001:db8::1]", false),
            ("2001:db8::1%eth0", false),
            ("10.0.0.0/8", false),
            // IPv4-mapped IPv6: an IPv6 address, not in any IPv4 network
            ("::ffff:10.0.0.1", false),
            ("::ffff:a00:1", false),
            ("", false),
            ("localhost", false),
        ];
        for (value, want) in cases {
            assert_eq!(r.allows(value), *want, "{value:?}");
            if !want {
                assert!(!r.refusal(value).contains("is allowed"), "{value:?}");
            }
        }
    }

    #[test]
    fn cidr_mapped_only_in_v6_networks() {
        let r = rule(json!("::ffff:0.0.0.0/96"));
        assert!(r.allows("::ffff:10.0.0.1"));
        assert!(!r.allows("10.0.0.1"));
        assert!(!r.allows("::ffff:a00:1"));
        let any6 = rule(json!("::/0"));
        assert!(any6.allows("::ffff:127.0.0.1"));
        assert!(!any6.allows("127.0.0.1"));
    }

    #[test]
    fn cidr_malformed() {
        for bad in [
            json!("10.0.0.1/8"),
            json!("10.0.0.0/33"),
            json!("010.0.0.0/8"),
            json!("10.0.0.0/08"),
            json!("2001:DB8::/32"),
            json!("2001:db8::1/32"),
            json!("10.0.0.0/"),
            json!("not-an-ip"),
            json!([]),
            json!(["10.0.0.0/8", 7]),
            json!(7),
            json!({"nets": ["10.0.0.0/8"]}),
        ] {
            assert!(CidrRule::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_covers_table() {
        let p = rule(json!(["10.0.0.0/8", "2001:db8::/32"]));
        assert!(p.covers(&rule(json!("10.1.0.0/16"))));
        assert!(p.covers(&rule(json!(["10.0.0.0/8", "2001:db8:1::/48", "10.2.3.4"]))));
        assert!(!p.covers(&rule(json!("0.0.0.0/0"))));
        assert!(!p.covers(&rule(json!("11.0.0.0/16"))));
        assert!(!p.covers(&rule(json!("::ffff:10.0.0.0/104"))));
        // aggregation: two halves cover the whole
        let halves = rule(json!(["10.0.0.0/9", "10.128.0.0/9"]));
        assert!(halves.covers(&rule(json!("10.0.0.0/8"))));
        assert!(!rule(json!("10.0.0.0/9")).covers(&rule(json!("10.0.0.0/8"))));
    }

    #[test]
    fn cidr_refusal_texts() {
        let r = rule(json!("10.0.0.0/8"));
        assert_eq!(r.refusal("11.0.0.1"), "`11.0.0.1` is not in `10.0.0.0/8`");
        assert_eq!(r.refusal("010.0.0.1"), "`010.0.0.1` is not an IP address");
        assert_eq!(
            r.refusal("2001:DB8::1"),
            "`2001:DB8::1` is not an IP address in canonical text"
        );
    }

    #[test]
    fn cidr_round_trips() {
        let r = rule(json!([
            "2001:db8::/32",
            "10.0.0.0/8",
            "10.0.0.0/8",
            "1.2.3.4"
        ]));
        assert_eq!(
            r.to_json(),
            json!(["1.2.3.4/32", "10.0.0.0/8", "2001:db8::/32"])
        );
        assert_eq!(CidrRule::parse(&r.to_json()).unwrap(), r);
    }

    /// Networks concentrated in a small space, so that covering pairs are frequent.
    fn net() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<u8>(), 0u8..=32).prop_map(|(b, len)| {
                let addr = Ipv4Addr::new(10, b & 0x0f, b >> 4, b);
                IpNet::new(IpAddr::V4(addr), len).unwrap().trunc()
            }),
            (any::<u16>(), 0u8..=128).prop_map(|(w, len)| {
                let addr = Ipv6Addr::new(0x2001, 0xdb8, w & 0x3, 0, 0, 0, 0, w);
                IpNet::new(IpAddr::V6(addr), len).unwrap().trunc()
            }),
        ]
    }

    fn from_nets(nets: &[IpNet]) -> CidrRule {
        let list: Vec<Value> = nets.iter().map(|n| json!(n.to_string())).collect();
        rule(Value::Array(list))
    }

    /// Addresses inside and around a network: its first and last address, its neighbours, and
    /// the IPv4-mapped form of IPv4 ones.
    fn around(net: &IpNet, k: u32) -> Vec<IpAddr> {
        match net {
            IpNet::V4(n) => {
                let lo = u32::from(n.network());
                let hi = u32::from(n.broadcast());
                let mid = lo.wrapping_add(k % (hi - lo).saturating_add(1).max(1));
                [lo, hi, mid, lo.wrapping_sub(1), hi.wrapping_add(1)]
                    .into_iter()
                    .flat_map(|a| {
                        let v4 = Ipv4Addr::from(a);
                        [IpAddr::V4(v4), IpAddr::V6(v4.to_ipv6_mapped())]
                    })
                    .collect()
            }
            IpNet::V6(n) => {
                let lo = u128::from(n.network());
                let hi = u128::from(n.broadcast());
                let mid = lo.wrapping_add(u128::from(k) % (hi - lo).saturating_add(1).max(1));
                [lo, hi, mid, lo.wrapping_sub(1), hi.wrapping_add(1)]
                    .into_iter()
                    .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
                    .collect()
            }
        }
    }

    /// The range of a network as numbers, with its family.
    fn range(n: &IpNet) -> (bool, u128, u128) {
        match n {
            IpNet::V4(n) => (
                true,
                u32::from(n.network()).into(),
                u32::from(n.broadcast()).into(),
            ),
            IpNet::V6(n) => (false, n.network().into(), n.broadcast().into()),
        }
    }

    /// An address of `child` inside none of `parents`, if there is one.
    fn gap(child: &IpNet, parents: &[IpNet]) -> Option<IpAddr> {
        let (v4, lo, hi) = range(child);
        let mut blocks: Vec<(u128, u128)> = parents
            .iter()
            .map(range)
            .filter(|(f, _, _)| *f == v4)
            .map(|(_, a, b)| (a, b))
            .collect();
        blocks.sort();
        let mut at = lo;
        for (a, b) in blocks {
            if b < at {
                continue;
            }
            if a > at {
                break;
            }
            if b >= hi {
                return None;
            }
            at = b + 1;
        }
        Some(if v4 {
            IpAddr::V4(Ipv4Addr::from(at as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(at))
        })
    }

    proptest! {
        #![proptest_config(Config::with_cases(crate::grant::semantic::tests::cases()))]

        /// Soundness: when the parent covers the child, every address the child allows, the
        /// parent allows. Children are mostly subnets of the parent's networks.
        #[test]
        fn cidr_covering_is_sound(
            parent in prop::collection::vec(net(), 1..4),
            narrow in prop::collection::vec((0usize..4, 0u8..=8, any::<u32>()), 1..4),
            free in prop::collection::vec(net(), 0..2),
            k in any::<u32>(),
        ) {
            let p = from_nets(&parent);
            let mut child_nets: Vec<IpNet> = narrow
                .iter()
                .map(|(i, more, bits)| {
                    let base = parent[i % parent.len()];
                    let len = base.prefix_len().saturating_add(*more).min(base.max_prefix_len());
                    // a subnet of `base` of length `len`, picked by `bits`
                    let addrs = around(&base, *bits);
                    IpNet::new(addrs[2], len).unwrap().trunc()
                })
                .collect();
            child_nets.extend(free);
            let c = from_nets(&child_nets);
            let values: Vec<IpAddr> = child_nets
                .iter()
                .chain(parent.iter())
                .flat_map(|n| around(n, k))
                .collect();
            if p.covers(&c) {
                for v in &values {
                    let text = v.to_string();
                    if c.allows(&text) {
                        prop_assert!(p.allows(&text), "{text} {p:?} {c:?}");
                    }
                }
            }
            // Reflexive.
            prop_assert!(p.covers(&p));
        }

        /// Converse spot check: for an uncovered child, an address the child allows and the
        /// parent refuses exists (found by walking the gaps of the parent's networks).
        #[test]
        fn cidr_uncovered_has_witness(
            parent in prop::collection::vec(net(), 1..4),
            child in prop::collection::vec(net(), 1..3),
        ) {
            let p = from_nets(&parent);
            let c = from_nets(&child);
            if !p.covers(&c) {
                let witness = child.iter().find_map(|n| gap(n, &parent));
                prop_assert!(witness.is_some(), "no witness for {p:?} {c:?}");
                let t = witness.unwrap().to_string();
                prop_assert!(c.allows(&t) && !p.allows(&t), "{t} {p:?} {c:?}");
            }
        }
    }
}
