//! QUIC client Initial packets: header protection removal, AEAD decryption and the CRYPTO
//! frames they carry, so the TLS ClientHello of a QUIC connection can be inspected like one
//! sent over TCP.
//!
//! A passive observer can read Initial packets because their keys derive only from public
//! values: a per-version salt and the Destination Connection ID the client chose
//! (RFC 9001 §5.2, RFC 9369 §3.3). Nothing later in the handshake is readable, so this module
//! opens client Initials only and hands out CRYPTO data by offset; reassembling the TLS
//! handshake stream and parsing the ClientHello belong to the caller.
//!
//! Must never allocate, keep state between datagrams, or panic on any input: it runs on the
//! worker's hot path on attacker-chosen bytes and is fuzzed.

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::{AeadInOut, Aes128Gcm};
use hkdf::Hkdf;
use sha2::Sha256;

/// QUIC version 1 (RFC 9000).
pub const QUIC_V1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369 §3.1).
pub const QUIC_V2: u32 = 0x6b33_43cf;

/// Longest connection ID a version 1 or 2 long header may carry (RFC 9000 §17.2).
pub const MAX_CID_LEN: usize = 20;

/// AEAD_AES_128_GCM tag length (RFC 5116 §5.1), the Initial packets' AEAD (RFC 9001 §5.2).
const TAG_LEN: usize = 16;
/// Header protection samples 16 bytes starting 4 bytes after the packet number's first byte,
/// as if the packet number were 4 bytes long (RFC 9001 §5.4.2).
const SAMPLE_OFFSET: usize = 4;
const SAMPLE_LEN: usize = 16;
/// Largest value a variable-length integer can hold, and so the end of the CRYPTO stream
/// (RFC 9000 §16, §19.6).
const MAX_VARINT: u64 = (1 << 62) - 1;

/// Why a datagram's Initial packets could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuicError {
    /// The first byte has the header form bit clear: a short header (1-RTT) packet, or padding,
    /// neither of which a passive observer can open (RFC 9000 §17.3).
    NotLongHeader,
    /// A long header of a known version whose type is not Initial (0-RTT, Handshake, Retry).
    NotInitial,
    /// A long header of a version whose Initial salt we do not know (0 is Version
    /// Negotiation, RFC 9000 §17.2.1).
    UnknownVersion(u32),
    /// The datagram ends inside the header or before the end the Length field announces.
    Truncated,
    /// A connection ID longer than 20 bytes, or a Length too short to hold the header
    /// protection sample (RFC 9001 §5.4.2).
    BadLength,
    /// The AEAD tag did not verify: not a client Initial, a DCID other than the one the keys
    /// came from, or tampered bytes.
    Decrypt,
    /// An authenticated payload with no frames, a malformed frame, or a frame type that
    /// RFC 9000 §12.4 (table 3) does not allow in Initial packets.
    BadFrame,
    /// The caller's scratch buffer is shorter than the packet.
    BufferTooSmall,
}

/// What the Initial packets of one UDP datagram said.
#[derive(Debug, Clone, Copy, Default)]
pub struct InitialInfo {
    /// QUIC version of the packets (`QUIC_V1` or `QUIC_V2`).
    pub version: u32,
    /// Destination Connection ID of the first packet, the one the Initial keys derive from;
    /// only the first `dcid_len` bytes are meaningful.
    pub dcid: [u8; MAX_CID_LEN],
    pub dcid_len: u8,
    /// Initial packets decrypted in this datagram.
    pub packets: u8,
}

impl InitialInfo {
    /// The meaningful bytes of `dcid`.
    pub fn dcid(&self) -> &[u8] {
        self.dcid.get(..usize::from(self.dcid_len)).unwrap_or(&[])
    }
}

/// Decrypts every client Initial packet coalesced in `datagram` and calls
/// `on_crypto(offset, data)` for every CRYPTO frame in them, in packet order and, within a
/// packet, in frame order (which need not be offset order: Chrome shuffles them).
///
/// A datagram may carry several QUIC packets (RFC 9000 §12.2). The walk stops, keeping what it
/// has, at a short header or trailing zero padding, at a long header that is not an Initial of
/// the same version and Destination Connection ID (receivers SHOULD ignore a different DCID,
/// §12.2), and at the first later packet that fails to open. A packet whose frames are not all
/// allowed in an Initial (§12.4) contributes no CRYPTO data.
///
/// Keys derive from the DCID of the datagram's first packet (RFC 9001 §5.2). That is the right
/// DCID for a client's first flight, which carries the ClientHello; Initials the client sends
/// after the server chose its connection ID are keyed from the original DCID and do not open
/// here (`Err(Decrypt)`), nor do server Initials.
///
/// `scratch` is the work buffer the packets are copied into and decrypted in place; it must be
/// at least as long as the longest packet (the datagram length always suffices). The `data`
/// slices handed to `on_crypto` borrow from it.
///
/// Returns `Err` when the first packet could not be opened.
pub fn open_client_initials(
    datagram: &[u8],
    scratch: &mut [u8],
    mut on_crypto: impl FnMut(u64, &[u8]),
) -> Result<InitialInfo, QuicError> {
    let mut info = InitialInfo::default();
    let mut keys: Option<InitialKeys> = None;
    let mut at = 0usize;

    while let Some(rest) = datagram.get(at..).filter(|rest| !rest.is_empty()) {
        let first = keys.is_none();
        let header = match InitialHeader::parse(rest) {
            Ok(header) => header,
            Err(e) if first => return Err(e),
            Err(_) => break,
        };
        let packet_keys = match &keys {
            Some(k) => {
                if header.version != info.version || header.dcid() != info.dcid() {
                    break;
                }
                k
            }
            None => {
                info.version = header.version;
                info.dcid = header.dcid;
                info.dcid_len = header.dcid_len;
                keys.insert(InitialKeys::client(header.version, header.dcid())?)
            }
        };
        match open_packet(rest, &header, packet_keys, scratch, &mut on_crypto) {
            Ok(()) => info.packets = info.packets.saturating_add(1),
            Err(e) if first => return Err(e),
            Err(_) => break,
        }
        at = at.saturating_add(header.packet_len);
    }
    if info.packets == 0 {
        // Only an empty datagram gets here: a first packet that fails has returned already.
        return Err(QuicError::Truncated);
    }
    Ok(info)
}

/// The per-version constants of Initial protection.
struct VersionParams {
    /// Salt of the HKDF-Extract that makes the initial secret (RFC 9001 §5.2, RFC 9369 §3.3.1).
    salt: [u8; 20],
    /// HKDF labels of the packet protection key, IV and header protection key
    /// (RFC 9001 §5.1, RFC 9369 §3.3.2).
    key_label: &'static [u8],
    iv_label: &'static [u8],
    hp_label: &'static [u8],
    /// Long packet type of Initial packets: 0b00 in v1 (RFC 9000 §17.2), 0b01 in v2
    /// (RFC 9369 §3.2).
    initial_type: u8,
}

const V1_PARAMS: VersionParams = VersionParams {
    salt: [
        0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c,
        0xad, 0xcc, 0xbb, 0x7f, 0x0a,
    ],
    key_label: b"quic key",
    iv_label: b"quic iv",
    hp_label: b"quic hp",
    initial_type: 0b00,
};

const V2_PARAMS: VersionParams = VersionParams {
    salt: [
        0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d,
        0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
    ],
    key_label: b"quicv2 key",
    iv_label: b"quicv2 iv",
    hp_label: b"quicv2 hp",
    initial_type: 0b01,
};

fn version_params(version: u32) -> Option<&'static VersionParams> {
    match version {
        QUIC_V1 => Some(&V1_PARAMS),
        QUIC_V2 => Some(&V2_PARAMS),
        _ => None,
    }
}

/// client_initial_secret (RFC 9001 §5.2): HKDF-Extract(salt, client DCID) = initial_secret,
/// then HKDF-Expand-Label(initial_secret, "client in", "", 32); the label is the same in v2
/// (RFC 9369 §3.3).
fn client_initial_secret(params: &VersionParams, dcid: &[u8]) -> Result<[u8; 32], QuicError> {
    let initial = Hkdf::<Sha256>::new(Some(&params.salt), dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, b"client in", &mut secret)?;
    Ok(secret)
}

/// The client's packet protection key, IV and header protection key as bytes, kept apart from
/// the cipher objects so the RFC test vectors can be checked.
struct ClientKeyMaterial {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

impl ClientKeyMaterial {
    /// Expands key, iv and hp from a client_initial_secret with the version's labels
    /// (RFC 9001 §5.1, RFC 9369 §3.3.2).
    fn from_secret(params: &VersionParams, secret: &[u8; 32]) -> Result<Self, QuicError> {
        // A 32-byte PRK is always long enough for SHA-256; the error cannot happen.
        let client = Hkdf::<Sha256>::from_prk(secret).map_err(|_| QuicError::Decrypt)?;
        let mut material = ClientKeyMaterial {
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
        };
        expand_label(&client, params.key_label, &mut material.key)?;
        expand_label(&client, params.iv_label, &mut material.iv)?;
        expand_label(&client, params.hp_label, &mut material.hp)?;
        Ok(material)
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1), which QUIC uses for every
/// Initial secret (RFC 9001 §5.1). The HkdfLabel structure is fed in pieces, so no buffer is
/// built: uint16 length, opaque label<7..255> = "tls13 " + label, opaque context<0..255> = "".
fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) -> Result<(), QuicError> {
    const PREFIX: &[u8] = b"tls13 ";
    // Labels are our own constants and outputs at most 32 bytes; the errors cannot happen.
    let out_len = u16::try_from(out.len()).map_err(|_| QuicError::Decrypt)?;
    let label_len = u8::try_from(PREFIX.len() + label.len()).map_err(|_| QuicError::Decrypt)?;
    prk.expand_multi_info(
        &[&out_len.to_be_bytes(), &[label_len], PREFIX, label, &[0]],
        out,
    )
    .map_err(|_| QuicError::Decrypt)
}

/// The ciphers that open one connection's client Initials.
struct InitialKeys {
    aead: Aes128Gcm,
    iv: [u8; 12],
    hp: Aes128,
}

impl InitialKeys {
    fn client(version: u32, dcid: &[u8]) -> Result<Self, QuicError> {
        let params = version_params(version).ok_or(QuicError::UnknownVersion(version))?;
        let secret = client_initial_secret(params, dcid)?;
        let material = ClientKeyMaterial::from_secret(params, &secret)?;
        Ok(InitialKeys {
            aead: Aes128Gcm::new((&material.key).into()),
            iv: material.iv,
            hp: Aes128::new((&material.hp).into()),
        })
    }

    /// AES-based header protection mask: AES-ECB(hp_key, sample) (RFC 9001 §5.4.3).
    fn header_mask(&self, sample: [u8; SAMPLE_LEN]) -> [u8; SAMPLE_LEN] {
        let mut block = aes::Block::from(sample);
        self.hp.encrypt_block(&mut block);
        block.into()
    }

    /// The AEAD nonce is the IV XORed with the packet number, left-padded to the IV length
    /// (RFC 9001 §5.3).
    fn nonce(&self, packet_number: u64) -> [u8; 12] {
        let mut nonce = self.iv;
        for (n, p) in nonce.iter_mut().rev().zip(packet_number.to_le_bytes()) {
            *n ^= p;
        }
        nonce
    }
}

/// The fields of an Initial long header that are readable before header protection is
/// removed (RFC 9000 §17.2.2).
struct InitialHeader {
    version: u32,
    dcid: [u8; MAX_CID_LEN],
    dcid_len: u8,
    /// Offset of the (protected) packet number from the packet's first byte.
    pn_offset: usize,
    /// Total packet length: `pn_offset` + the Length field; never beyond the datagram.
    packet_len: usize,
}

impl InitialHeader {
    /// Parses the Initial long header at the start of `bytes` (the rest of the datagram).
    fn parse(bytes: &[u8]) -> Result<Self, QuicError> {
        let mut r = Reader::new(bytes);
        let first = r.u8().ok_or(QuicError::Truncated)?;
        if first & 0x80 == 0 {
            return Err(QuicError::NotLongHeader);
        }
        let version = r.u32().ok_or(QuicError::Truncated)?;
        let params = version_params(version).ok_or(QuicError::UnknownVersion(version))?;
        // The fixed bit (0x40) is not checked: RFC 9287 lets peers grease it.
        if (first >> 4) & 0x03 != params.initial_type {
            return Err(QuicError::NotInitial);
        }

        let dcid_len = r.u8().ok_or(QuicError::Truncated)?;
        if usize::from(dcid_len) > MAX_CID_LEN {
            return Err(QuicError::BadLength);
        }
        let dcid_bytes = r.bytes(usize::from(dcid_len)).ok_or(QuicError::Truncated)?;
        let mut dcid = [0u8; MAX_CID_LEN];
        for (d, s) in dcid.iter_mut().zip(dcid_bytes) {
            *d = *s;
        }
        let scid_len = r.u8().ok_or(QuicError::Truncated)?;
        if usize::from(scid_len) > MAX_CID_LEN {
            return Err(QuicError::BadLength);
        }
        r.bytes(usize::from(scid_len)).ok_or(QuicError::Truncated)?;

        let token_len = r.varint().ok_or(QuicError::Truncated)?;
        r.bytes_u64(token_len).ok_or(QuicError::Truncated)?;
        let length = r.varint().ok_or(QuicError::Truncated)?;
        let pn_offset = r.pos();
        let length = usize::try_from(length).map_err(|_| QuicError::Truncated)?;
        let packet_len = pn_offset.checked_add(length).ok_or(QuicError::Truncated)?;
        if packet_len > bytes.len() {
            return Err(QuicError::Truncated);
        }
        // RFC 9001 §5.4.2: a packet too short to hold the sample cannot be unprotected.
        if length < SAMPLE_OFFSET + SAMPLE_LEN {
            return Err(QuicError::BadLength);
        }
        Ok(InitialHeader {
            version,
            dcid,
            dcid_len,
            pn_offset,
            packet_len,
        })
    }

    fn dcid(&self) -> &[u8] {
        self.dcid.get(..usize::from(self.dcid_len)).unwrap_or(&[])
    }
}

/// Removes header protection from and decrypts the packet at the start of `bytes` into
/// `scratch`, then reports its CRYPTO frames. Frames are validated before any is reported, so
/// a packet with a forbidden frame reports nothing.
fn open_packet(
    bytes: &[u8],
    header: &InitialHeader,
    keys: &InitialKeys,
    scratch: &mut [u8],
    on_crypto: &mut impl FnMut(u64, &[u8]),
) -> Result<(), QuicError> {
    let packet = bytes.get(..header.packet_len).ok_or(QuicError::Truncated)?;
    let work = scratch
        .get_mut(..header.packet_len)
        .ok_or(QuicError::BufferTooSmall)?;
    work.copy_from_slice(packet);

    // Header protection (RFC 9001 §5.4.1): the low 4 bits of a long header's first byte
    // (reserved bits and packet number length) and the packet number bytes are masked.
    let sample_at = header.pn_offset + SAMPLE_OFFSET;
    let sample: [u8; SAMPLE_LEN] = work
        .get(sample_at..sample_at + SAMPLE_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(QuicError::Truncated)?;
    let mask = keys.header_mask(sample);
    let [mask_first, mask_pn @ ..] = mask;
    let first = work.first_mut().ok_or(QuicError::Truncated)?;
    *first ^= mask_first & 0x0f;
    let pn_len = usize::from(*first & 0x03) + 1;
    // The reserved bits (0x0c) must now be zero (RFC 9000 §17.2), but a passive observer
    // leaves that protocol violation to the server.

    // A client's first Initials have no largest acknowledged packet to decode against, so the
    // truncated packet number is the full one (RFC 9000 §17.1, appendix A.3).
    let pn_bytes = work
        .get_mut(header.pn_offset..header.pn_offset + pn_len)
        .ok_or(QuicError::Truncated)?;
    let mut packet_number = 0u64;
    for (b, m) in pn_bytes.iter_mut().zip(mask_pn) {
        *b ^= m;
        packet_number = (packet_number << 8) | u64::from(*b);
    }

    // AEAD (RFC 9001 §5.3): the associated data is the unprotected header, the tag is the
    // last 16 bytes. Parse guaranteed packet_len >= pn_offset + 20 >= header_len + TAG_LEN.
    let header_len = header.pn_offset + pn_len;
    let body_len = header
        .packet_len
        .checked_sub(header_len)
        .and_then(|n| n.checked_sub(TAG_LEN))
        .ok_or(QuicError::Truncated)?;
    let (aad, body) = work.split_at_mut(header_len);
    let (payload, tag) = body.split_at_mut(body_len);
    let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| QuicError::Truncated)?;
    let nonce = keys.nonce(packet_number);
    keys.aead
        .decrypt_inout_detached((&nonce).into(), aad, payload.into(), (&tag).into())
        .map_err(|_| QuicError::Decrypt)?;

    let payload = &*payload;
    walk_frames(payload, &mut |_, _| {})?;
    walk_frames(payload, on_crypto)
}

/// Walks the frames of a decrypted Initial payload, reporting CRYPTO frames. Only the frames
/// RFC 9000 §12.4 (table 3) allows in Initial packets are accepted: PADDING, PING, ACK,
/// CRYPTO and CONNECTION_CLOSE of type 0x1c.
fn walk_frames(payload: &[u8], on_crypto: &mut impl FnMut(u64, &[u8])) -> Result<(), QuicError> {
    // A packet with no frames is a PROTOCOL_VIOLATION (RFC 9000 §12.4).
    if payload.is_empty() {
        return Err(QuicError::BadFrame);
    }
    let mut r = Reader::new(payload);
    while !r.is_empty() {
        match r.varint().ok_or(QuicError::BadFrame)? {
            // PADDING (§19.1): clients pad Initials to 1200 bytes, often with hundreds of
            // these, so skip the whole run at once.
            0x00 => r.skip_zeros(),
            // PING (§19.2).
            0x01 => {}
            // ACK and ACK with ECN counts (§19.3): Largest Acknowledged, ACK Delay, ACK Range
            // Count, First ACK Range, then Count (Gap, ACK Range Length) pairs. Every varint
            // read consumes at least a byte, so a huge count ends at the payload's end.
            ty @ (0x02 | 0x03) => {
                r.varint().ok_or(QuicError::BadFrame)?;
                r.varint().ok_or(QuicError::BadFrame)?;
                let ranges = r.varint().ok_or(QuicError::BadFrame)?;
                r.varint().ok_or(QuicError::BadFrame)?;
                for _ in 0..ranges {
                    r.varint().ok_or(QuicError::BadFrame)?;
                    r.varint().ok_or(QuicError::BadFrame)?;
                }
                if ty == 0x03 {
                    for _ in 0..3 {
                        r.varint().ok_or(QuicError::BadFrame)?;
                    }
                }
            }
            // CRYPTO (§19.6): Offset, Length, Crypto Data; the stream may not pass 2^62 - 1.
            0x06 => {
                let offset = r.varint().ok_or(QuicError::BadFrame)?;
                let len = r.varint().ok_or(QuicError::BadFrame)?;
                let data = r.bytes_u64(len).ok_or(QuicError::BadFrame)?;
                if offset
                    .checked_add(len)
                    .filter(|&end| end <= MAX_VARINT)
                    .is_none()
                {
                    return Err(QuicError::BadFrame);
                }
                on_crypto(offset, data);
            }
            // CONNECTION_CLOSE of the QUIC layer (§19.19): Error Code, Frame Type, Reason
            // Phrase Length, Reason Phrase. A client may abandon a handshake with it.
            0x1c => {
                r.varint().ok_or(QuicError::BadFrame)?;
                r.varint().ok_or(QuicError::BadFrame)?;
                let reason_len = r.varint().ok_or(QuicError::BadFrame)?;
                r.bytes_u64(reason_len).ok_or(QuicError::BadFrame)?;
            }
            _ => return Err(QuicError::BadFrame),
        }
    }
    Ok(())
}

/// A bounds-checked cursor over wire bytes: every read returns `None` instead of running past
/// the end.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn pos(&self) -> usize {
        self.pos
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn bytes_u64(&mut self, n: u64) -> Option<&'a [u8]> {
        self.bytes(usize::try_from(n).ok()?)
    }

    fn u8(&mut self) -> Option<u8> {
        let [b] = *self.bytes(1)? else { return None };
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.bytes(4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }

    /// A variable-length integer: the two high bits of the first byte give its length,
    /// 1, 2, 4 or 8 bytes (RFC 9000 §16).
    fn varint(&mut self) -> Option<u64> {
        let first = self.u8()?;
        let extra = (1usize << (first >> 6)) - 1;
        let mut value = u64::from(first & 0x3f);
        for b in self.bytes(extra)? {
            value = (value << 8) | u64::from(*b);
        }
        Some(value)
    }

    fn skip_zeros(&mut self) {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let zeros = rest.iter().position(|&b| b != 0).unwrap_or(rest.len());
        self.pos += zeros;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s
            .bytes()
            .filter(|b| b.is_ascii_hexdigit())
            .map(|b| (b as char).to_digit(16).unwrap() as u8)
            .collect();
        assert_eq!(digits.len() % 2, 0, "odd hex length");
        digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
    }

    /// RFC 9001 appendix A: the client's Destination Connection ID.
    const RFC_DCID: &str = "8394c8f03e515708";

    /// RFC 9001 A.2 (and RFC 9369 A.2): the CRYPTO frame of the client Initial, followed by
    /// PADDING up to 1162 bytes.
    const RFC_CRYPTO_FRAME: &str = "
        060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
        04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
        616d706c652e636f6dff01000100000a00080006001d00170018001000070005
        04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
        baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
        0d0010000e0403050306030203080408050806002d00020101001c0002400100
        3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
        75300901100f088394c8f03e51570806048000ffff";

    fn rfc_payload() -> Vec<u8> {
        let mut payload = hex(RFC_CRYPTO_FRAME);
        payload.resize(1162, 0);
        payload
    }

    /// RFC 9001 A.2: the protected client Initial (packet number 2, 4-byte encoding).
    const RFC9001_CLIENT_INITIAL: &str = "
        c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11
        d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399
        1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c
        8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212
        30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5
        457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208
        4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec
        4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3
        485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db
        059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c
        7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8
        9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556
        be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74
        68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a
        c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00
        f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632
        291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964
        25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd
        14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff
        ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198
        e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd
        c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73
        203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f
        cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e
        fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade
        a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047
        90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2
        162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4
        40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0
        6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e
        8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0
        be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400
        54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab
        760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9
        f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4
        056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064
        7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241
        e221af44860018ab0856972e194cd934";

    /// RFC 9369 A.2: the same client Initial protected with QUIC v2 keys.
    const RFC9369_CLIENT_INITIAL: &str = "
        d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485
        dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04
        9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d
        250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a
        12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500
        cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68
        18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33
        12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3
        d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd
        6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520
        bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045
        636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f
        ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12
        16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5
        4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4
        fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b
        8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7
        14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9
        9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91
        abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd
        80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db
        848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18
        d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15
        c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc
        7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61
        f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710
        10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b
        3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e
        06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce
        8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1
        34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1
        e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd
        5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3
        8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89
        d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53
        6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19
        9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b
        a18b2faa745b6fe189cf772a9f84cbfc";

    /// The protection side, for building test packets: a client Initial of `version` with a
    /// 2-byte Length, AEAD-sealed and header-protected as RFC 9001 §5.3-5.4 describe.
    fn seal(
        version: u32,
        dcid: &[u8],
        scid: &[u8],
        pn: u32,
        pn_len: usize,
        payload: &[u8],
    ) -> Vec<u8> {
        seal_keyed(version, dcid, dcid, scid, pn, pn_len, payload)
    }

    /// As `seal`, with keys from `key_dcid` while the header carries `dcid`.
    fn seal_keyed(
        version: u32,
        key_dcid: &[u8],
        dcid: &[u8],
        scid: &[u8],
        pn: u32,
        pn_len: usize,
        payload: &[u8],
    ) -> Vec<u8> {
        let params = version_params(version).unwrap();
        let keys = InitialKeys::client(version, key_dcid).unwrap();
        let mut packet = vec![0xc0 | (params.initial_type << 4) | (pn_len as u8 - 1)];
        packet.extend_from_slice(&version.to_be_bytes());
        packet.push(dcid.len() as u8);
        packet.extend_from_slice(dcid);
        packet.push(scid.len() as u8);
        packet.extend_from_slice(scid);
        packet.push(0); // token length
        let length = pn_len + payload.len() + TAG_LEN;
        packet.extend_from_slice(&(0x4000 | length as u16).to_be_bytes());
        let pn_offset = packet.len();
        packet.extend_from_slice(&pn.to_be_bytes()[4 - pn_len..]);
        let mut body = payload.to_vec();
        let nonce = keys.nonce(u64::from(pn));
        let tag = keys
            .aead
            .encrypt_inout_detached((&nonce).into(), &packet, body.as_mut_slice().into())
            .unwrap();
        packet.extend_from_slice(&body);
        packet.extend_from_slice(&tag);
        let sample: [u8; 16] = packet[pn_offset + 4..pn_offset + 20].try_into().unwrap();
        let mask = keys.header_mask(sample);
        packet[0] ^= mask[0] & 0x0f;
        for i in 0..pn_len {
            packet[pn_offset + i] ^= mask[1 + i];
        }
        packet
    }

    /// The CRYPTO frames an open reported: (offset, data).
    type Frames = Vec<(u64, Vec<u8>)>;

    /// Opens `datagram`, collecting the CRYPTO frames it reports.
    fn open(datagram: &[u8]) -> (Result<InitialInfo, QuicError>, Frames) {
        let mut scratch = vec![0u8; datagram.len()];
        let mut frames = Vec::new();
        let result = open_client_initials(datagram, &mut scratch, |offset, data| {
            frames.push((offset, data.to_vec()))
        });
        (result, frames)
    }

    #[test]
    fn rfc9001_client_keys() {
        let secret = client_initial_secret(&V1_PARAMS, &hex(RFC_DCID)).unwrap();
        let m = ClientKeyMaterial::from_secret(&V1_PARAMS, &secret).unwrap();
        assert_eq!(
            secret.to_vec(),
            hex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
        );
        assert_eq!(m.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(m.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(m.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));

        // A.2: header protection sample and mask.
        let keys = InitialKeys::client(QUIC_V1, &hex(RFC_DCID)).unwrap();
        let sample: [u8; 16] = hex("d1b1c98dd7689fb8ec11d242b123dc9b").try_into().unwrap();
        assert_eq!(keys.header_mask(sample)[..5], hex("437b9aec36")[..]);
    }

    #[test]
    fn rfc9369_client_keys() {
        let secret = client_initial_secret(&V2_PARAMS, &hex(RFC_DCID)).unwrap();
        let m = ClientKeyMaterial::from_secret(&V2_PARAMS, &secret).unwrap();
        assert_eq!(
            secret.to_vec(),
            hex("14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b")
        );
        assert_eq!(m.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(m.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(m.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    #[test]
    fn seal_reproduces_rfc_packets() {
        let dcid = hex(RFC_DCID);
        let payload = rfc_payload();
        assert_eq!(
            seal(QUIC_V1, &dcid, &[], 2, 4, &payload),
            hex(RFC9001_CLIENT_INITIAL)
        );
        assert_eq!(
            seal(QUIC_V2, &dcid, &[], 2, 4, &payload),
            hex(RFC9369_CLIENT_INITIAL)
        );
    }

    fn check_rfc_initial(packet_hex: &str, version: u32) {
        let packet = hex(packet_hex);
        assert_eq!(packet.len(), 1200);
        let (result, frames) = open(&packet);
        let info = result.unwrap();
        assert_eq!(info.version, version);
        assert_eq!(info.dcid(), &hex(RFC_DCID)[..]);
        assert_eq!(info.packets, 1);
        assert_eq!(frames.len(), 1);
        let (offset, data) = &frames[0];
        assert_eq!(*offset, 0);
        assert_eq!(data.len(), 0xf1);
        assert!(data.starts_with(&hex("010000ed0303ebf8fa56")));
        assert_eq!(data[..], hex(RFC_CRYPTO_FRAME)[4..]);
    }

    #[test]
    fn opens_rfc9001_client_initial() {
        check_rfc_initial(RFC9001_CLIENT_INITIAL, QUIC_V1);
    }

    #[test]
    fn opens_rfc9369_client_initial() {
        check_rfc_initial(RFC9369_CLIENT_INITIAL, QUIC_V2);
    }

    #[test]
    fn coalesced_packets_in_order_with_allowed_frames() {
        let dcid = [0xaa; 20];
        let scid = [0xbb; 5];
        // pn 0: ACK with one extra range and ECN counts, CRYPTO at 0, PING, PADDING.
        let mut p0 = vec![0x03, 0x05, 0x00, 0x01, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00];
        p0.extend_from_slice(&[0x06, 0x00, 0x04, 1, 2, 3, 4, 0x01]);
        p0.resize(60, 0);
        // pn 1 (1-byte encoding): two CRYPTO frames out of offset order, CONNECTION_CLOSE.
        let mut p1 = vec![0x06, 0x40, 0x08, 0x02, 9, 9, 0x06, 0x04, 0x04, 5, 6, 7, 8];
        p1.extend_from_slice(&[0x1c, 0x0a, 0x00, 0x03, b'b', b'y', b'e']);
        let mut datagram = seal(QUIC_V2, &dcid, &scid, 0, 4, &p0);
        datagram.extend(seal(QUIC_V2, &dcid, &scid, 1, 1, &p1));
        // A v2 Handshake packet (type 0b11) ends the walk; zero padding follows.
        datagram.extend_from_slice(&[0xf0, 0x6b, 0x33, 0x43, 0xcf, 0x00, 0x00, 0x00]);
        datagram.resize(1200, 0);

        let (result, frames) = open(&datagram);
        let info = result.unwrap();
        assert_eq!(info.packets, 2);
        assert_eq!(info.version, QUIC_V2);
        assert_eq!(info.dcid(), &dcid[..]);
        assert_eq!(
            frames,
            vec![
                (0, vec![1, 2, 3, 4]),
                (8, vec![9, 9]),
                (4, vec![5, 6, 7, 8])
            ]
        );
    }

    #[test]
    fn later_packet_failures_keep_earlier_ones() {
        let dcid = [0x11; 8];
        let mut good = vec![0x06, 0x00, 0x02, 0xab, 0xcd];
        good.resize(40, 0);
        // A STREAM frame (0x08) is not allowed in an Initial: its CRYPTO frame must not leak.
        let bad_frame = seal(
            QUIC_V1,
            &dcid,
            &[],
            1,
            2,
            &[0x06, 0x02, 0x01, 0xee, 0x08, 0, 0, 0],
        );
        // A different DCID (keyed correctly for itself) is ignored per RFC 9000 §12.2.
        let other_dcid = seal(QUIC_V1, &[0x22; 8], &[], 1, 2, &good);
        // Keyed from another DCID than the one it carries: fails to decrypt.
        let wrong_key = seal_keyed(QUIC_V1, &[0x33; 8], &dcid, &[], 1, 2, &good);
        // A v2 packet after a v1 one.
        let other_version = seal(QUIC_V2, &dcid, &[], 1, 2, &good);
        for tail in [bad_frame.clone(), other_dcid, wrong_key, other_version] {
            let mut datagram = seal(QUIC_V1, &dcid, &[], 0, 1, &good);
            datagram.extend_from_slice(&tail);
            let (result, frames) = open(&datagram);
            assert_eq!(result.unwrap().packets, 1);
            assert_eq!(frames, vec![(0, vec![0xab, 0xcd])]);
        }

        // The same failures on the first packet are errors.
        let (result, frames) = open(&bad_frame);
        assert_eq!(result.unwrap_err(), QuicError::BadFrame);
        assert!(frames.is_empty());
        let wrong_key = seal_keyed(QUIC_V1, &[0x33; 8], &dcid, &[], 1, 2, &good);
        assert_eq!(open(&wrong_key).0.unwrap_err(), QuicError::Decrypt);
        // No frames at all, and a bad CRYPTO frame length.
        let empty = seal(QUIC_V1, &dcid, &[], 0, 4, &[]);
        assert_eq!(open(&empty).0.unwrap_err(), QuicError::BadFrame);
        let mut overlong = vec![0x06, 0x00, 0x40, 0x50];
        overlong.resize(40, 0);
        let overlong = seal(QUIC_V1, &dcid, &[], 0, 4, &overlong);
        assert_eq!(open(&overlong).0.unwrap_err(), QuicError::BadFrame);
        let mut beyond = vec![
            0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00,
        ];
        beyond.resize(40, 0);
        let beyond = seal(QUIC_V1, &dcid, &[], 0, 4, &beyond);
        assert_eq!(open(&beyond).0.unwrap_err(), QuicError::BadFrame);
    }

    #[test]
    fn header_errors() {
        let rfc = hex(RFC9001_CLIENT_INITIAL);
        let short = |d: &[u8]| open(d).0.unwrap_err();
        assert_eq!(short(&[]), QuicError::Truncated);
        assert_eq!(short(&[0x40, 1, 2, 3]), QuicError::NotLongHeader);
        assert_eq!(short(&[0xc0, 0, 0, 0]), QuicError::Truncated);
        assert_eq!(short(&[0xc0, 0, 0, 0, 0]), QuicError::UnknownVersion(0));
        assert_eq!(
            short(&[0xc0, 0xff, 0, 0, 0x1d]),
            QuicError::UnknownVersion(0xff00_001d)
        );
        // v1 Handshake type, and v1's Initial type bits under v2.
        assert_eq!(short(&[0xe0, 0, 0, 0, 1]), QuicError::NotInitial);
        assert_eq!(
            short(&[0xc0, 0x6b, 0x33, 0x43, 0xcf]),
            QuicError::NotInitial
        );
        assert_eq!(short(&[0xc0, 0, 0, 0, 1, 21]), QuicError::BadLength);
        assert_eq!(short(&rfc[..1199]), QuicError::Truncated);
        // Length 19: too short for the header protection sample.
        let mut tiny = rfc[..18].to_vec();
        tiny[16..18].copy_from_slice(&[0x40, 19]);
        tiny.resize(18 + 19, 0);
        assert_eq!(short(&tiny), QuicError::BadLength);
        let mut scratch = [0u8; 1199];
        assert_eq!(
            open_client_initials(&rfc, &mut scratch, |_, _| {}).unwrap_err(),
            QuicError::BufferTooSmall
        );
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
                let _ = open(&bytes);
            }

            #[test]
            fn long_header_garbage_never_panics(
                version in prop_oneof![Just(QUIC_V1), Just(QUIC_V2), any::<u32>()],
                first in any::<u8>(),
                rest in proptest::collection::vec(any::<u8>(), 0..1300),
            ) {
                let mut datagram = vec![first | 0x80];
                datagram.extend_from_slice(&version.to_be_bytes());
                datagram.extend_from_slice(&rest);
                let _ = open(&datagram);
            }

            /// Authentic packets with arbitrary frame bytes reach the frame walker; small byte
            /// values make real frame types and short varints likely.
            #[test]
            fn sealed_garbage_frames_never_panic(
                frames in proptest::collection::vec(
                    prop_oneof![0u8..8, Just(0x1c), Just(0x40), any::<u8>()],
                    4..200,
                ),
            ) {
                let datagram = seal(QUIC_V1, &[7; 8], &[], 0, 1, &frames);
                match open(&datagram).0 {
                    Ok(info) => prop_assert_eq!(info.packets, 1),
                    Err(e) => prop_assert_eq!(e, QuicError::BadFrame),
                }
            }

            #[test]
            fn any_changed_byte_is_rejected(at in 0usize..1200, flip in 1u8..=255) {
                let mut packet = hex(RFC9001_CLIENT_INITIAL);
                packet[at] ^= flip;
                let (result, frames) = open(&packet);
                prop_assert!(result.is_err());
                prop_assert!(frames.is_empty());
            }

            #[test]
            fn any_truncation_is_rejected(len in 0usize..1200) {
                let packet = hex(RFC9369_CLIENT_INITIAL);
                prop_assert!(open(&packet[..len]).0.is_err());
            }

            #[test]
            fn trailing_bytes_are_ignored(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
                let mut datagram = hex(RFC9001_CLIENT_INITIAL);
                datagram.extend_from_slice(&tail);
                let (result, frames) = open(&datagram);
                prop_assert_eq!(result.unwrap().packets, 1);
                prop_assert_eq!(frames.len(), 1);
            }
        }
    }

    /// Real captures: classic pcap files of the shared corpus, read by a minimal reader.
    mod captures {
        use super::*;
        use std::collections::HashMap;

        struct Datagram {
            dst_port: u16,
            payload: Vec<u8>,
        }

        /// UDP datagrams of a classic pcap file (Ethernet, BSD loopback, raw IP or Linux
        /// cooked link types; IPv4 without fragments or IPv6 without extension headers).
        fn udp_datagrams(file: &[u8]) -> Vec<Datagram> {
            let magic = u32::from_le_bytes(file[0..4].try_into().unwrap());
            let le = match magic {
                0xa1b2_c3d4 | 0xa1b2_3c4d => true,
                0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
                _ => panic!("not a classic pcap file"),
            };
            let rd32 = |b: &[u8]| {
                let a: [u8; 4] = b[..4].try_into().unwrap();
                if le {
                    u32::from_le_bytes(a)
                } else {
                    u32::from_be_bytes(a)
                }
            };
            let linktype = rd32(&file[20..24]) & 0x0fff_ffff;
            let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
            let mut out = Vec::new();
            let mut at = 24;
            while at + 16 <= file.len() {
                let caplen = rd32(&file[at + 8..]) as usize;
                let frame = &file[at + 16..(at + 16 + caplen).min(file.len())];
                at += 16 + caplen;
                let (ethertype, l3) = match linktype {
                    0 => {
                        // BSD loopback: the address family in the capturing host's order.
                        let family = u32::from_le_bytes(frame[..4].try_into().unwrap())
                            .min(u32::from_be_bytes(frame[..4].try_into().unwrap()));
                        (if family == 2 { 0x0800 } else { 0x86dd }, &frame[4..])
                    }
                    1 => {
                        let mut off = 12;
                        while be16(&frame[off..]) == 0x8100 {
                            off += 4;
                        }
                        (be16(&frame[off..]), &frame[off + 2..])
                    }
                    101 => (if frame[0] >> 4 == 4 { 0x0800 } else { 0x86dd }, frame),
                    113 => (be16(&frame[14..]), &frame[16..]),
                    other => panic!("link type {other} not supported"),
                };
                let udp = match ethertype {
                    0x0800 if l3[9] == 17 && be16(&l3[6..]) & 0x3fff == 0 => {
                        &l3[usize::from(l3[0] & 0x0f) * 4..]
                    }
                    0x86dd if l3[6] == 17 => &l3[40..],
                    _ => continue,
                };
                let len = usize::from(be16(&udp[4..])).min(udp.len());
                out.push(Datagram {
                    dst_port: be16(&udp[2..]),
                    payload: udp[8..len].to_vec(),
                });
            }
            out
        }

        /// The CRYPTO stream of one connection, by offset.
        #[derive(Default)]
        struct Stream {
            data: Vec<u8>,
            filled: Vec<bool>,
        }

        impl Stream {
            fn add(&mut self, offset: u64, bytes: &[u8]) {
                let start = offset as usize;
                let end = start + bytes.len();
                if self.data.len() < end {
                    self.data.resize(end, 0);
                    self.filled.resize(end, false);
                }
                self.data[start..end].copy_from_slice(bytes);
                self.filled[start..end].iter_mut().for_each(|f| *f = true);
            }

            /// The contiguous bytes from offset 0.
            fn prefix(&self) -> &[u8] {
                let n = self
                    .filled
                    .iter()
                    .position(|f| !f)
                    .unwrap_or(self.filled.len());
                &self.data[..n]
            }
        }

        /// Feeds the client→server datagrams of `name` (to port 443 or 4433) through
        /// `open_client_initials` and returns the complete ClientHellos reassembled per DCID.
        fn client_hellos(name: &str, version: u32) -> Option<Vec<Vec<u8>>> {
            let path = format!(
                "{}/../../shared/corpus/pcaps/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let Ok(file) = std::fs::read(&path) else {
                println!("skipping {name}: {path} not found");
                return None;
            };
            let mut streams: HashMap<Vec<u8>, Stream> = HashMap::new();
            let mut order = Vec::new();
            let mut scratch = vec![0u8; 65536];
            for d in udp_datagrams(&file) {
                if d.dst_port != 443 && d.dst_port != 4433 {
                    continue;
                }
                let mut frames = Vec::new();
                let result = open_client_initials(&d.payload, &mut scratch, |off, data| {
                    frames.push((off, data.to_vec()))
                });
                // Later client Initials (ACKs after the server's reply) carry the server's
                // connection ID and are keyed from the original one: they do not open here.
                let Ok(info) = result else { continue };
                assert_eq!(info.version, version, "{name}");
                assert!(info.packets >= 1);
                let stream = streams.entry(info.dcid().to_vec()).or_insert_with(|| {
                    order.push(info.dcid().to_vec());
                    Stream::default()
                });
                for (off, data) in frames {
                    stream.add(off, &data);
                }
            }
            let hellos = order
                .iter()
                .map(|dcid| {
                    let prefix = streams[dcid].prefix();
                    assert!(prefix.len() >= 4, "{name}: no handshake header");
                    assert_eq!(prefix[0], 0x01, "{name}: not a ClientHello");
                    let len = usize::from(prefix[1]) << 16
                        | usize::from(prefix[2]) << 8
                        | usize::from(prefix[3]);
                    assert!(prefix.len() >= 4 + len, "{name}: ClientHello incomplete");
                    prefix[..4 + len].to_vec()
                })
                .collect();
            Some(hellos)
        }

        fn contains(haystack: &[u8], needle: &[u8]) -> bool {
            haystack.windows(needle.len()).any(|w| w == needle)
        }

        fn check(name: &str, version: u32, snis: &[&str]) {
            let Some(hellos) = client_hellos(name, version) else {
                return;
            };
            assert_eq!(hellos.len(), snis.len().max(1), "{name}: ClientHello count");
            for (hello, sni) in hellos.iter().zip(snis) {
                assert!(contains(hello, sni.as_bytes()), "{name}: SNI {sni} missing");
            }
        }

        #[test]
        fn zeek_quic_v1_chromium() {
            check(
                "zeek__quic-v1-chromium.pcap",
                QUIC_V1,
                &["api.cirrus-ci.com"],
            );
        }

        #[test]
        fn zeek_quic_v1_port_4433() {
            check(
                "zeek__quic-v1-port-4433.pcap",
                QUIC_V1,
                &["api.cirrus-ci.com"],
            );
        }

        #[test]
        fn quic_v2() {
            // This ClientHello carries no SNI; check its ALPN "h3" instead.
            let Some(hellos) = client_hellos("sv__quic-v2.pcap", QUIC_V2) else {
                return;
            };
            assert_eq!(hellos.len(), 1);
            assert!(contains(&hellos[0], b"\x02h3"));
        }

        #[test]
        fn client_hello_across_packets_unordered() {
            check(
                "sv__quic-ch-frag-unordered.pcap",
                QUIC_V1,
                &["mastodon.social"],
            );
        }

        #[test]
        fn client_hello_across_packets_middle_gap() {
            check(
                "sv__quic-ch-frag-middle-gap.pcap",
                QUIC_V1,
                &["optimizationguide-pa.googleapis.com"],
            );
        }

        #[test]
        fn alpn_h3_29() {
            check("sv__quic-v1-alpn-h3-29.pcap", QUIC_V1, &["msquic.net"]);
        }

        #[test]
        fn eleven_connections() {
            check(
                "sv__quic-ja4-11ch.pcap",
                QUIC_V1,
                &[
                    "www.blogger.com",
                    "socpuppet.blogspot.com",
                    "apis.google.com",
                    "www.blogger.com",
                    "apis.google.com",
                    "www.google.com",
                    "www.gstatic.com",
                    "fonts.gstatic.com",
                    "4.bp.blogspot.com",
                    "1.bp.blogspot.com",
                    "2.bp.blogspot.com",
                ],
            );
        }
    }
}
