//! TCP frames of numbered connections, shared by the engine benchmark and the HA sync benchmark
//! (`#[path]`-included; not a bench target itself).

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;

/// 60-byte Ethernet/IPv4/TCP frame of connection `n`; `reply` from the server side.
pub fn frame(n: u32, reply: bool, seq: u32, ack: u32, flags: u8) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[..14].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    f[14..26].copy_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    let client = [10, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    let server = [192, 0, 2, (n % 7) as u8 + 1];
    let (cport, sport) = (1024 + (n % 50_000) as u16, 443u16);
    let (src, dst, sp, dp) = if reply {
        (server, client, sport, cport)
    } else {
        (client, server, cport, sport)
    };
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    f[34..36].copy_from_slice(&sp.to_be_bytes());
    f[36..38].copy_from_slice(&dp.to_be_bytes());
    f[38..42].copy_from_slice(&seq.to_be_bytes());
    f[42..46].copy_from_slice(&ack.to_be_bytes());
    f[46] = 0x50;
    f[47] = flags;
    f[48..50].copy_from_slice(&64_240u16.to_be_bytes());
    // Real checksums: the engine verifies them off the established fast path.
    dataplane::verify::fill_checksums(&mut f);
    f
}
