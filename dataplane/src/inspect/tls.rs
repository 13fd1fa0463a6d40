//! TLS handshake metadata: ClientHello, ServerHello and Certificate messages read with
//! `tls-parser` (certificates with `x509-parser`), and the fingerprints built on them: JA3, JA3S
//! (Salesforce) and client JA4 (FoxIO's spec). JA4S and the other JA4+ methods are not here:
//! their licence forbids shipping them in a product.
//!
//! These functions run on a flow's first packets only, never on the established fast path. They
//! take handshake *message* bytes: `gather_handshake` strips the TLS record layer off a
//! reassembled byte stream first (a message may span records and records span segments).
//!
//! They allocate (tls-parser returns vectors, the metadata owns its strings): a handful of small
//! allocations per handshake, from the worker thread's own allocator cache.

use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::fmt::Write as _;
use tls_parser::{
    parse_tls_client_hello_extension, parse_tls_handshake_client_hello,
    parse_tls_handshake_server_hello, parse_tls_server_hello_extension, TlsExtension,
};

/// Handshake message types (RFC 8446 §4).
pub const HS_CLIENT_HELLO: u8 = 1;
pub const HS_SERVER_HELLO: u8 = 2;
pub const HS_CERTIFICATE: u8 = 11;
pub const HS_SERVER_HELLO_DONE: u8 = 14;

/// Extension numbers this module looks at (IANA TLS ExtensionType registry).
const EXT_SNI: u16 = 0x0000;
const EXT_GROUPS: u16 = 0x000a;
const EXT_POINT_FORMATS: u16 = 0x000b;
const EXT_SIG_ALGS: u16 = 0x000d;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
/// Encrypted Client Hello (draft-ietf-tls-esni-18 and later) and its predecessor ESNI.
const EXT_ECH: u16 = 0xfe0d;
const EXT_ESNI: u16 = 0xffce;

/// The random of a HelloRetryRequest (RFC 8446 §4.1.3): a ServerHello carrying it asks again.
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Why a handshake message could not be read. A malformed hello is a verdict of its own
/// (parsers disagree on such messages; a fingerprint of one would be a guess).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsError {
    Malformed,
}

/// GREASE values (RFC 8701): 0x?a?a with equal bytes. Ignored by every fingerprint.
#[inline]
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// What a ClientHello offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The record layer's version (0x0002 for an SSLv2-format hello).
    pub record_version: u16,
    /// `legacy_version` (client_version before TLS 1.3).
    pub legacy_version: u16,
    /// supported_versions, GREASE removed, in the client's order.
    pub versions: Vec<u16>,
    pub ciphers: Vec<u16>,
    /// Extension types in the client's order, GREASE included (fingerprints drop it).
    pub extensions: Vec<u16>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub sig_algs: Vec<u16>,
    /// The host_name of server_name, raw bytes (not always UTF-8 on the wire).
    pub sni: Option<Vec<u8>>,
    pub alpn: Vec<Vec<u8>>,
    /// Encrypted Client Hello (or its predecessor, ESNI) offered.
    pub ech: bool,
    /// An SSLv2-format (RFC 6101 appendix E.2) hello.
    pub sslv2: bool,
}

impl ClientHello {
    /// The highest version offered: supported_versions when present, else `legacy_version`.
    pub fn highest_version(&self) -> u16 {
        self.versions
            .iter()
            .copied()
            .filter(|v| is_known_version(*v))
            .max()
            .or_else(|| self.versions.iter().copied().max())
            .unwrap_or(self.legacy_version)
    }

    pub fn sni_str(&self) -> Option<String> {
        self.sni
            .as_ref()
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    /// ALPN protocol names as text (lossy for non-UTF-8 bytes, which JA4 reads raw).
    pub fn alpn_strs(&self) -> Vec<String> {
        self.alpn
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// JA3's input: `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`,
    /// decimal, `-` separated, GREASE removed.
    pub fn ja3_string(&self) -> String {
        let mut s = String::with_capacity(256);
        let _ = write!(s, "{},", self.legacy_version);
        join_dec(
            &mut s,
            self.ciphers.iter().copied().filter(|v| !is_grease(*v)),
        );
        s.push(',');
        join_dec(
            &mut s,
            self.extensions.iter().copied().filter(|v| !is_grease(*v)),
        );
        s.push(',');
        join_dec(
            &mut s,
            self.groups.iter().copied().filter(|v| !is_grease(*v)),
        );
        s.push(',');
        join_dec(&mut s, self.point_formats.iter().map(|v| *v as u16));
        s
    }

    /// JA4 for a TLS-over-TCP (`quic == false`) or QUIC ClientHello: `a_b_c` where a is
    /// protocol, version, SNI or not, cipher and extension counts and the ALPN's ends; b the
    /// truncated SHA-256 of the sorted ciphers; c of the sorted extensions (without SNI and ALPN)
    /// and the signature algorithms in order. GREASE ignored everywhere.
    pub fn ja4(&self, quic: bool) -> String {
        let mut s = String::with_capacity(36);
        s.push(if quic { 'q' } else { 't' });
        s.push_str(ja4_version(if self.sslv2 {
            self.legacy_version
        } else {
            self.highest_ja4_version()
        }));
        s.push(if self.sni.is_some() { 'd' } else { 'i' });
        let ciphers: Vec<u16> = self
            .ciphers
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .collect();
        let exts: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .collect();
        let _ = write!(s, "{:02}{:02}", ciphers.len().min(99), exts.len().min(99));
        s.push_str(&ja4_alpn(self.alpn.first().map(|a| a.as_slice())));
        s.push('_');
        let mut sorted = ciphers;
        sorted.sort_unstable();
        s.push_str(&hash12(&hex_list(&sorted)));
        s.push('_');
        let mut ext_sorted: Vec<u16> = exts
            .into_iter()
            .filter(|v| *v != EXT_SNI && *v != EXT_ALPN)
            .collect();
        ext_sorted.sort_unstable();
        let sigs: Vec<u16> = self
            .sig_algs
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .collect();
        if ext_sorted.is_empty() {
            s.push_str("000000000000");
        } else {
            let mut raw = hex_list(&ext_sorted);
            if !sigs.is_empty() {
                raw.push('_');
                raw.push_str(&hex_list(&sigs));
            }
            s.push_str(&hash12(&raw));
        }
        s
    }

    /// JA4's version: the highest non-GREASE supported_versions value, else the legacy one.
    fn highest_ja4_version(&self) -> u16 {
        self.versions
            .iter()
            .copied()
            .max()
            .unwrap_or(self.legacy_version)
    }
}

fn is_known_version(v: u16) -> bool {
    matches!(v, 0x0002 | 0x0300..=0x0304)
}

fn ja4_version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4's ALPN field: the first and last characters of the first protocol; `00` without ALPN;
/// the first and last hex digits of its bytes when either end is not alphanumeric.
fn ja4_alpn(first: Option<&[u8]>) -> String {
    let Some(a) = first.filter(|a| !a.is_empty()) else {
        return "00".into();
    };
    let (f, l) = (a[0], a[a.len() - 1]);
    if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
        let mut s = String::with_capacity(2);
        s.push(f as char);
        s.push(l as char);
        s
    } else {
        let hf = format!("{f:02x}");
        let hl = format!("{l:02x}");
        let mut s = String::with_capacity(2);
        s.push(hf.as_bytes()[0] as char);
        s.push(hl.as_bytes()[1] as char);
        s
    }
}

fn hex_list(v: &[u16]) -> String {
    let mut s = String::with_capacity(v.len() * 5);
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{x:04x}");
    }
    s
}

/// The first 12 hex digits of SHA-256, or twelve zeros for an empty input (JA4's rule for an
/// empty list).
fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let d = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(12);
    for b in &d[..6] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// MD5 in lowercase hex, as JA3 and JA3S print it.
pub fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

pub fn hex(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(out, "{x:02x}");
    }
    out
}

fn join_dec(s: &mut String, it: impl Iterator<Item = u16>) {
    for (i, v) in it.enumerate() {
        if i > 0 {
            s.push('-');
        }
        let _ = write!(s, "{v}");
    }
}

/// Walks an extensions block as type-length-value triples, calling `f(type, whole_tlv)`.
/// `Err` if a length runs past the block (the hello is malformed).
fn for_each_extension(mut b: &[u8], mut f: impl FnMut(u16, &[u8])) -> Result<(), TlsError> {
    while !b.is_empty() {
        if b.len() < 4 {
            return Err(TlsError::Malformed);
        }
        let t = u16::from_be_bytes([b[0], b[1]]);
        let len = u16::from_be_bytes([b[2], b[3]]) as usize;
        let Some(tlv) = b.get(..4 + len) else {
            return Err(TlsError::Malformed);
        };
        f(t, tlv);
        b = &b[4 + len..];
    }
    Ok(())
}

/// Reads a ClientHello message body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8], record_version: u16) -> Result<ClientHello, TlsError> {
    let (_, ch) = parse_tls_handshake_client_hello(body).map_err(|_| TlsError::Malformed)?;
    let mut out = ClientHello {
        record_version,
        legacy_version: ch.version.0,
        ciphers: ch.ciphers.iter().map(|c| c.0).collect(),
        ..ClientHello::default()
    };
    let mut bad = false;
    if let Some(ext) = ch.ext {
        for_each_extension(ext, |t, tlv| {
            out.extensions.push(t);
            if t == EXT_ECH || t == EXT_ESNI {
                out.ech = true;
            }
            if !matches!(
                t,
                EXT_SNI
                    | EXT_GROUPS
                    | EXT_POINT_FORMATS
                    | EXT_SIG_ALGS
                    | EXT_ALPN
                    | EXT_SUPPORTED_VERSIONS
            ) {
                return;
            }
            match parse_tls_client_hello_extension(tlv) {
                Ok((_, TlsExtension::SNI(names))) => {
                    // host_name (type 0) is the only name type defined (RFC 6066 §3).
                    out.sni = names
                        .iter()
                        .find(|(t, _)| t.0 == 0)
                        .map(|(_, n)| n.to_vec())
                        .or(Some(Vec::new()));
                }
                Ok((_, TlsExtension::EllipticCurves(g))) => {
                    out.groups = g.iter().map(|g| g.0).collect()
                }
                Ok((_, TlsExtension::EcPointFormats(p))) => out.point_formats = p.to_vec(),
                Ok((_, TlsExtension::SignatureAlgorithms(s))) => out.sig_algs = s,
                Ok((_, TlsExtension::ALPN(a))) => out.alpn = a.iter().map(|p| p.to_vec()).collect(),
                Ok((_, TlsExtension::SupportedVersions(v))) => {
                    out.versions = v.iter().map(|v| v.0).filter(|v| !is_grease(*v)).collect()
                }
                _ => bad = true,
            }
        })?;
    }
    if bad {
        return Err(TlsError::Malformed);
    }
    Ok(out)
}

/// Reads an SSLv2-format ClientHello record (RFC 6101 appendix E.2: 2-byte length with the top
/// bit set, msg_type 1, version, cipher-spec, session-id and challenge lengths). It has no
/// extensions; its 3-byte cipher specs are not TLS cipher suites, so JA4 counts none, as FoxIO
/// does.
pub fn parse_sslv2_client_hello(rec: &[u8]) -> Result<ClientHello, TlsError> {
    if rec.len() < 11 || rec[0] & 0x80 == 0 || rec[2] != 1 {
        return Err(TlsError::Malformed);
    }
    let len = (((rec[0] & 0x7f) as usize) << 8) | rec[1] as usize;
    let version = u16::from_be_bytes([rec[3], rec[4]]);
    let specs = u16::from_be_bytes([rec[5], rec[6]]) as usize;
    let sid = u16::from_be_bytes([rec[7], rec[8]]) as usize;
    let challenge = u16::from_be_bytes([rec[9], rec[10]]) as usize;
    if !specs.is_multiple_of(3) || 9 + specs + sid + challenge > len || rec.len() < 2 + len {
        return Err(TlsError::Malformed);
    }
    Ok(ClientHello {
        record_version: 0x0002,
        legacy_version: version,
        sslv2: true,
        ..ClientHello::default()
    })
}

/// What a ServerHello selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: u16,
    /// supported_versions when present (TLS 1.3), else `legacy_version`.
    pub selected_version: u16,
    pub cipher: u16,
    pub extensions: Vec<u16>,
    pub alpn: Option<Vec<u8>>,
    /// A HelloRetryRequest (TLS 1.3): the real ServerHello follows the client's second hello.
    pub hello_retry: bool,
}

impl ServerHello {
    /// JA3S's input: `SSLVersion,Cipher,Extensions`, decimal.
    pub fn ja3s_string(&self) -> String {
        let mut s = String::with_capacity(64);
        let _ = write!(s, "{},{},", self.legacy_version, self.cipher);
        join_dec(
            &mut s,
            self.extensions.iter().copied().filter(|v| !is_grease(*v)),
        );
        s
    }
}

/// Reads a ServerHello message body.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, TlsError> {
    let (_, sh) = parse_tls_handshake_server_hello(body).map_err(|_| TlsError::Malformed)?;
    let mut out = ServerHello {
        legacy_version: sh.version.0,
        selected_version: sh.version.0,
        cipher: sh.cipher.0,
        hello_retry: sh.random == HRR_RANDOM,
        ..ServerHello::default()
    };
    if let Some(ext) = sh.ext {
        for_each_extension(ext, |t, tlv| {
            out.extensions.push(t);
            if t != EXT_ALPN && t != EXT_SUPPORTED_VERSIONS {
                return;
            }
            match parse_tls_server_hello_extension(tlv) {
                Ok((_, TlsExtension::ALPN(a))) => out.alpn = a.first().map(|p| p.to_vec()),
                Ok((_, TlsExtension::SupportedVersions(v))) => {
                    if let Some(v) = v.first() {
                        out.selected_version = v.0
                    }
                }
                _ => {}
            }
        })?;
    }
    Ok(out)
}

/// What a certificate says, for events and checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    /// Validity as Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-1 of the DER, as `aa:bb:...` (EVE's `fingerprint`).
    pub sha1: String,
    /// Issuer equals subject (and the key identifiers, when present, agree).
    pub self_signed: bool,
}

/// Reads the first (leaf) certificate of a Certificate message body (TLS <= 1.2: a 3-byte
/// list length, then 3-byte length-prefixed DER certificates). `Ok(None)` for an empty list.
pub fn parse_certificate(body: &[u8]) -> Result<Option<CertInfo>, TlsError> {
    let list = u24(body).ok_or(TlsError::Malformed)?;
    let certs = body.get(3..3 + list).ok_or(TlsError::Malformed)?;
    if certs.is_empty() {
        return Ok(None);
    }
    let len = u24(certs).ok_or(TlsError::Malformed)?;
    let der = certs.get(3..3 + len).ok_or(TlsError::Malformed)?;
    Ok(Some(cert_info(der)?))
}

fn cert_info(der: &[u8]) -> Result<CertInfo, TlsError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| TlsError::Malformed)?;
    let sha1 = sha1::Sha1::digest(der);
    let mut fp = String::with_capacity(59);
    for (i, b) in sha1.iter().enumerate() {
        if i > 0 {
            fp.push(':');
        }
        let _ = write!(fp, "{b:02x}");
    }
    let mut sans = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                sans.push(d.to_string());
            }
        }
    }
    let (subject, issuer) = (cert.subject().to_string(), cert.issuer().to_string());
    let ski = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        });
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0),
            _ => None,
        });
    let keys_agree = match (ski, aki) {
        (Some(s), Some(a)) => s == a,
        _ => true,
    };
    Ok(CertInfo {
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw() && keys_agree,
        subject,
        issuer,
        sans,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sha1: fp,
    })
}

fn u24(b: &[u8]) -> Option<usize> {
    let b = b.get(..3)?;
    Some(((b[0] as usize) << 16) | ((b[1] as usize) << 8) | b[2] as usize)
}

/// What `gather_handshake` found at the start of a byte stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gathered {
    /// Handshake bytes copied into the output (record headers stripped).
    pub len: usize,
    /// A record other than handshake followed (ChangeCipherSpec, alert, application data): no
    /// more plaintext handshake comes in this direction.
    pub ended: bool,
    /// The bytes are not TLS records (or a record is malformed).
    pub not_tls: bool,
    /// The output filled up before the stream's complete records did.
    pub full: bool,
    /// Bytes of a handshake record not all in yet, copied after the `len` complete ones (for
    /// reading a hello's start early; never parsed as a whole message).
    pub partial: usize,
}

/// Copies the handshake-record payloads at the start of `stream` (complete records only) into
/// `out`, so that messages split over records read as one.
/// The server name of a ClientHello whose body (`body`: after the 4-byte handshake header) may
/// not have arrived whole: the first host name once the server_name extension is all in, None
/// before that or when the hello carries none.
pub fn partial_sni(body: &[u8]) -> Option<&[u8]> {
    let mut at = 2 + 32; // version, random
    let u8_at = |i: usize| body.get(i).map(|&b| b as usize);
    let u16_at = |i: usize| {
        body.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    };
    at += 1 + u8_at(at)?; // session id
    at += 2 + u16_at(at)?; // cipher suites
    at += 1 + u8_at(at)?; // compression methods
    at += 2; // extensions length
    loop {
        let (ty, len) = (u16_at(at)?, u16_at(at + 2)?);
        let data = body.get(at + 4..at + 4 + len)?;
        if ty == 0 {
            // server_name_list: length, then (name_type, length, name) entries.
            let mut i = 2;
            while let (Some(&kind), Some(l)) = (data.get(i), data.get(i + 1..i + 3)) {
                let l = u16::from_be_bytes([l[0], l[1]]) as usize;
                let name = data.get(i + 3..i + 3 + l)?;
                if kind == 0 {
                    return Some(name);
                }
                i += 3 + l;
            }
            return None;
        }
        at += 4 + len;
    }
}

pub fn gather_handshake(stream: &[u8], out: &mut [u8]) -> Gathered {
    let mut g = Gathered::default();
    let mut s = stream;
    while s.len() >= 5 {
        let (ct, ver) = (s[0], u16::from_be_bytes([s[1], s[2]]));
        let len = u16::from_be_bytes([s[3], s[4]]) as usize;
        if !(20..=24).contains(&ct) || ver >> 8 != 3 || len > 16_384 + 2048 {
            g.not_tls = true;
            return g;
        }
        if ct != 22 {
            g.ended = true;
            return g;
        }
        let Some(frag) = s.get(5..5 + len) else {
            let part = &s[5..];
            if let Some(dst) = out.get_mut(g.len..g.len + part.len()) {
                dst.copy_from_slice(part);
                g.partial = part.len();
            }
            break;
        };
        let Some(dst) = out.get_mut(g.len..g.len + len) else {
            g.full = true;
            return g;
        };
        dst.copy_from_slice(frag);
        g.len += len;
        s = &s[5 + len..];
    }
    g
}

/// Splits the next complete handshake message off `hs`: `(type, body, rest)`.
pub fn next_message(hs: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let t = *hs.first()?;
    let len = u24(hs.get(1..)?)?;
    let body = hs.get(4..4 + len)?;
    Some((t, body, &hs[4 + len..]))
}

/// The weak ciphers a server may select: NULL encryption, EXPORT, RC4, (3)DES, anonymous key
/// exchange. By IANA name of the suite number (the common ones; unknown numbers are not weak).
pub fn weak_cipher(c: u16) -> bool {
    match tls_parser::TlsCipherSuite::from_id(c) {
        Some(cs) => {
            let n = cs.name;
            n.contains("NULL")
                || n.contains("EXPORT")
                || n.contains("RC4")
                || n.contains("DES")
                || n.contains("_anon_")
        }
        None => false,
    }
}

/// A readable version name (EVE's `version` field style).
pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v if v >> 8 == 0x7f => format!("TLS 1.3 draft {}", v & 0xff),
        v => format!("0x{v:04x}"),
    }
}

#[cfg(test)]
mod tests {

    /// A ClientHello body: TLS 1.2, a session id, two suites, then ALPN and server_name.
    fn hello_body(name: &str) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[9; 32]);
        b.push(32);
        b.extend_from_slice(&[5; 32]);
        b.extend_from_slice(&[0, 4, 0x13, 0x01, 0xc0, 0x2f, 1, 0]);
        let mut ext = vec![0, 16, 0, 5, 0, 3, 2, b'h', b'2'];
        let n = name.len() as u16;
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&(n + 5).to_be_bytes());
        ext.extend_from_slice(&(n + 3).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&n.to_be_bytes());
        ext.extend_from_slice(name.as_bytes());
        ext.extend_from_slice(&[0, 23, 0, 0]);
        b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        b.extend_from_slice(&ext);
        b
    }

    #[test]
    fn the_sni_of_a_partial_hello_is_read_once_it_is_all_in() {
        let body = hello_body("evil.example");
        let end = body.windows(12).position(|w| w == b"evil.example").unwrap() + 12;
        for cut in 0..body.len() {
            let got = partial_sni(&body[..cut]);
            if cut < end {
                assert_eq!(got, None, "a name before it arrived, at {cut}");
            } else {
                assert_eq!(got, Some(&b"evil.example"[..]), "no name at {cut}");
            }
        }
        assert_eq!(partial_sni(&hello_body("")[..]), Some(&b""[..]));
    }

    use super::*;

    #[test]
    fn grease_values() {
        for i in 0..16u16 {
            let g = (i << 12) | 0x0a00 | (i << 4) | 0x0a;
            assert!(is_grease(g), "{g:04x}");
        }
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }

    #[test]
    fn ja4_alpn_rules() {
        assert_eq!(ja4_alpn(None), "00");
        assert_eq!(ja4_alpn(Some(b"h2")), "h2");
        assert_eq!(ja4_alpn(Some(b"http/1.1")), "h1");
        assert_eq!(ja4_alpn(Some(b"h3-29")), "h9");
        // Non-alphanumeric ends: first hex digit of the first byte, last of the last.
        assert_eq!(ja4_alpn(Some(&[0xab, 0xcd])), "ad");
    }

    #[test]
    fn weak_ciphers() {
        assert!(weak_cipher(0x0004)); // TLS_RSA_WITH_RC4_128_MD5
        assert!(weak_cipher(0x000a)); // TLS_RSA_WITH_3DES_EDE_CBC_SHA
        assert!(weak_cipher(0x0001)); // TLS_RSA_WITH_NULL_MD5
        assert!(weak_cipher(0x0018)); // TLS_DH_anon_WITH_RC4_128_MD5
        assert!(!weak_cipher(0x1301)); // TLS_AES_128_GCM_SHA256
        assert!(!weak_cipher(0xc02f)); // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    }

    #[test]
    fn gather_strips_records_and_joins_messages() {
        // One handshake message split over two records, then a ChangeCipherSpec.
        let msg = [1u8, 0, 0, 4, 0xaa, 0xbb, 0xcc, 0xdd];
        let mut s = vec![22, 3, 1, 0, 3];
        s.extend_from_slice(&msg[..3]);
        s.extend_from_slice(&[22, 3, 3, 0, 5]);
        s.extend_from_slice(&msg[3..]);
        s.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
        let mut out = [0u8; 64];
        let g = gather_handshake(&s, &mut out);
        assert_eq!(g.len, 8);
        assert!(g.ended && !g.not_tls);
        let (t, body, rest) = next_message(&out[..g.len]).unwrap();
        assert_eq!((t, body, rest.len()), (1, &[0xaa, 0xbb, 0xcc, 0xdd][..], 0));
        // An incomplete record is waited for; plain text is not TLS.
        let g = gather_handshake(&s[..6], &mut out);
        assert_eq!((g.len, g.ended, g.not_tls), (0, false, false));
        assert!(gather_handshake(b"GET / HTTP/1.1\r\n", &mut out).not_tls);
        // A small output fills up rather than overflowing.
        assert!(gather_handshake(&s, &mut out[..2]).full);
    }
}
