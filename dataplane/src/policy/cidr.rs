//! Address prefixes and prefix sets: parsing CIDRs and drop-list files, and a set that answers
//! "is this address in any listed prefix" for a million prefixes in a few dozen nanoseconds.
//!
//! Must never allocate per lookup.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 prefix; host bits are cleared on parsing (as pf does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address: IPv4 in the low 32 bits.
    pub addr: u128,
    pub len: u8,
    pub v6: bool,
}

impl Cidr {
    fn bits(&self) -> u8 {
        if self.v6 {
            128
        } else {
            32
        }
    }

    /// First and last address of the prefix.
    pub fn range(&self) -> (u128, u128) {
        let host = self.bits() - self.len;
        let span = if host >= 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        };
        (self.addr, self.addr | span)
    }

    /// Whether `addr` (as the parser stores it: IPv4 in the first 4 bytes) lies in the prefix.
    #[inline]
    pub fn contains(&self, addr: &[u8; 16], v6: bool) -> bool {
        if v6 != self.v6 {
            return false;
        }
        let a = addr_value(addr, v6);
        let (lo, hi) = self.range();
        a >= lo && a <= hi
    }
}

/// The numeric value of an address as the parser stores it.
#[inline(always)]
pub fn addr_value(addr: &[u8; 16], v6: bool) -> u128 {
    if v6 {
        u128::from_be_bytes(*addr)
    } else {
        u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]) as u128
    }
}

/// Why a CIDR did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(pub String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let s = s.trim();
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = a
            .parse()
            .map_err(|_| CidrError(format!("'{s}' is not an IP address or prefix")))?;
        let (addr, v6) = match ip {
            IpAddr::V4(v4) => (u32::from(v4) as u128, false),
            IpAddr::V6(v6) => (u128::from(v6), true),
        };
        let max = if v6 { 128 } else { 32 };
        let len = match l {
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= max)
                .ok_or_else(|| CidrError(format!("'{s}': prefix length must be 0..={max}")))?,
            None => max,
        };
        let host = max - len;
        let mask = if host >= 128 {
            0
        } else {
            !((1u128 << host) - 1)
        };
        let addr = if v6 {
            addr & mask
        } else {
            addr & mask & 0xffff_ffff
        };
        Ok(Cidr { addr, len, v6 })
    }
}

/// Parses a drop-list file: one prefix per line; `#` and `;` start comments (FireHOL and
/// Spamhaus DROP formats); blank lines are skipped. Errors name the line.
pub fn parse_list(text: &str) -> Result<Vec<Cidr>, (usize, CidrError)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        out.push(line.parse::<Cidr>().map_err(|e| (i + 1, e))?);
    }
    Ok(out)
}

/// A set of prefixes, merged into sorted disjoint address intervals; membership by binary
/// search. For a list in which every prefix means the same thing ("listed"), this answers
/// exactly what a longest-prefix-match table answers, in 8 bytes per IPv4 interval.
#[derive(Debug, Clone, Default)]
pub struct PrefixSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    prefixes: usize,
}

impl PrefixSet {
    pub fn new(cidrs: &[Cidr]) -> PrefixSet {
        let mut v4: Vec<(u32, u32)> = Vec::new();
        let mut v6: Vec<(u128, u128)> = Vec::new();
        for c in cidrs {
            let (lo, hi) = c.range();
            if c.v6 {
                v6.push((lo, hi));
            } else {
                v4.push((lo as u32, hi as u32));
            }
        }
        PrefixSet {
            v4: merge(v4),
            v6: merge(v6),
            prefixes: cidrs.len(),
        }
    }

    /// Prefixes it was built from, and disjoint intervals it holds.
    pub fn prefixes(&self) -> usize {
        self.prefixes
    }

    pub fn intervals(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    #[inline]
    pub fn contains(&self, addr: &[u8; 16], v6: bool) -> bool {
        if v6 {
            find(&self.v6, u128::from_be_bytes(*addr))
        } else {
            find(
                &self.v4,
                u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]),
            )
        }
    }
}

fn merge<T: Ord + Copy + num_like::Succ>(mut v: Vec<(T, T)>) -> Vec<(T, T)> {
    v.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            Some(last) if lo <= last.1.succ() => {
                if hi > last.1 {
                    last.1 = hi;
                }
            }
            _ => out.push((lo, hi)),
        }
    }
    out.shrink_to_fit();
    out
}

#[inline]
fn find<T: Ord + Copy>(v: &[(T, T)], a: T) -> bool {
    // The last interval starting at or before `a`.
    let i = v.partition_point(|&(lo, _)| lo <= a);
    i > 0 && a <= v[i - 1].1
}

mod num_like {
    /// The next value, saturating: adjacent intervals merge.
    pub trait Succ {
        fn succ(self) -> Self;
    }
    impl Succ for u32 {
        fn succ(self) -> u32 {
            self.saturating_add(1)
        }
    }
    impl Succ for u128 {
        fn succ(self) -> u128 {
            self.saturating_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut x = [0u8; 16];
        x[..4].copy_from_slice(&a);
        x
    }

    #[test]
    fn parses_prefixes_and_clears_host_bits() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!((c.addr, c.len, c.v6), (10 << 24, 8, false));
        assert!(c.contains(&v4([10, 200, 0, 1]), false));
        assert!(!c.contains(&v4([11, 0, 0, 0]), false));
        let h: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(h.len, 32);
        let six: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(six.v6);
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.com".parse::<Cidr>().is_err());
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&v4([255, 255, 255, 255]), false));
    }

    #[test]
    fn list_files_in_firehol_and_spamhaus_formats() {
        let text =
            "# FireHOL level1\n1.10.16.0/20 ; SBL256894\n\n  2.56.192.0/22\n2001:db8::/32 # doc\n";
        let l = parse_list(text).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(parse_list("1.2.3.4/8\nnot-an-ip\n").unwrap_err().0, 2);
    }

    #[test]
    fn set_membership_matches_the_prefixes() {
        let cidrs: Vec<Cidr> = [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "192.0.2.0/25",
            "192.0.2.128/25",
            "2001:db8::/48",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let s = PrefixSet::new(&cidrs);
        assert_eq!(s.intervals(), 3, "nested and adjacent prefixes merge");
        for (a, want) in [
            ([10, 1, 2, 3], true),
            ([9, 255, 255, 255], false),
            ([192, 0, 2, 255], true),
            ([192, 0, 3, 0], false),
        ] {
            assert_eq!(s.contains(&v4(a), false), want, "{a:?}");
        }
        let six = u128::from(std::net::Ipv6Addr::new(
            0x2001, 0xdb8, 0, 0xffff, 0, 0, 0, 1,
        ))
        .to_be_bytes();
        assert!(s.contains(&six, true));
        let other =
            u128::from(std::net::Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1)).to_be_bytes();
        assert!(!s.contains(&other, true));
    }

    #[test]
    fn a_million_prefixes() {
        // Scattered /24s and /32s: the size of public drop lists and more.
        let mut cidrs = Vec::with_capacity(1_000_000);
        let mut x: u32 = 0x1234_5678;
        for i in 0..1_000_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = if i % 2 == 0 { 24 } else { 32 };
            cidrs.push(Cidr {
                addr: (x & (u32::MAX << (32 - len))) as u128,
                len,
                v6: false,
            });
        }
        let t = std::time::Instant::now();
        let s = PrefixSet::new(&cidrs);
        let built = t.elapsed();
        assert_eq!(s.prefixes(), 1_000_000);
        for c in cidrs.iter().step_by(997) {
            let a = (c.addr as u32).to_be_bytes();
            assert!(s.contains(&v4(a), false));
        }
        eprintln!("1M prefixes -> {} intervals in {built:?}", s.intervals());
    }
}
