//! The session layer around KCP segments: nonce, checksum and encryption (kcp-go v5.4.20
//! sess.go:539-560 and sess.go:635-654), and the checks a KCP packet passes before it reaches the
//! ARQ state machine.

use crate::crypt::BlockCrypt;

/// Nonce at the start of an encrypted packet (sess.go:27).
pub(crate) const NONCE_SIZE: usize = 16;
/// CRC32 (IEEE) of everything after it, little-endian (sess.go:30, sess.go:550-551).
pub(crate) const CRC_SIZE: usize = 4;
/// Crypto header: nonce + checksum (sess.go:33).
pub(crate) const CRYPT_HEADER: usize = NONCE_SIZE + CRC_SIZE;
/// kcp-go never sends nor reads datagrams larger than this (sess.go:36).
pub(crate) const MTU_LIMIT: usize = 1500;
/// KCP segment header: conv u32, cmd u8, frg u8, wnd u16, ts u32, sn u32, una u32, len u32
/// (kcp.go:119-130).
pub(crate) const KCP_OVERHEAD: usize = 24;
/// Offset of `sn` in a segment (kcp.go:31).
pub(crate) const KCP_SN_OFFSET: usize = 12;

const CMD_PUSH: u8 = 81;
const CMD_ACK: u8 = 82;
const CMD_WASK: u8 = 83;
const CMD_WINS: u8 = 84;

/// An ACK echoing a timestamp older than this (ms) is not from an honest peer: a segment is
/// retransmitted at most `dead_link` times with an RTO of at most 60 s.
const MAX_ACK_AGE_MS: u32 = 1 << 22;

pub(crate) fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

pub(crate) fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Fills the nonce, writes the checksum and encrypts `pkt` in place (sess.go:548-559). `pkt`
/// starts with `CRYPT_HEADER` reserved bytes.
pub(crate) fn seal(crypt: &BlockCrypt, pkt: &mut [u8]) {
    rand::Rng::fill(&mut rand::rng(), &mut pkt[..NONCE_SIZE]);
    let crc = crc32fast::hash(&pkt[CRYPT_HEADER..]);
    pkt[NONCE_SIZE..CRYPT_HEADER].copy_from_slice(&crc.to_le_bytes());
    crypt.encrypt(pkt);
}

/// Decrypts `pkt` in place and checks its checksum (sess.go:637-649); returns what follows the
/// crypto header, or `None` when the checksum fails. Without a cipher the packet is returned whole.
pub(crate) fn open<'a>(crypt: Option<&BlockCrypt>, pkt: &'a mut [u8]) -> Option<&'a [u8]> {
    let Some(crypt) = crypt else {
        return Some(pkt);
    };
    if pkt.len() < CRYPT_HEADER {
        return None;
    }
    crypt.decrypt(pkt);
    let crc = le32(&pkt[NONCE_SIZE..]);
    (crc32fast::hash(&pkt[CRYPT_HEADER..]) == crc).then_some(&pkt[CRYPT_HEADER..])
}

/// Checks every segment of a KCP packet before it is given to the ARQ state machine: the
/// conversation, a known command, a length within the packet, and sequence numbers and echoed
/// timestamps in the range an honest kcp-go peer produces (our counters start at 0; `now` is the
/// session clock in ms, `None` for the packet that opens a session). This keeps a peer from
/// driving the `kcp` crate's unchecked arithmetic into an overflow.
pub(crate) fn valid_kcp(mut p: &[u8], conv: u32, now: Option<u32>) -> bool {
    if p.len() < KCP_OVERHEAD {
        return false;
    }
    while p.len() >= KCP_OVERHEAD {
        let cmd = p[4];
        let frg = p[5];
        let ts = le32(&p[8..]);
        let sn = le32(&p[KCP_SN_OFFSET..]);
        let una = le32(&p[16..]);
        let len = le32(&p[20..]) as usize;
        if le32(p) != conv
            || !matches!(cmd, CMD_PUSH | CMD_ACK | CMD_WASK | CMD_WINS)
            || frg == u8::MAX
            || sn >= 1 << 31
            || una >= 1 << 31
            || len > p.len() - KCP_OVERHEAD
        {
            return false;
        }
        if cmd == CMD_ACK {
            match now {
                Some(now) if ts <= now && now - ts <= MAX_ACK_AGE_MS => {}
                _ => return false,
            }
        }
        p = &p[KCP_OVERHEAD + len..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fec::{FecEncoder, FEC_HEADER_PLUS2, TYPE_DATA};

    /// One PUSH segment, laid out by hand from kcp.go:119-130.
    fn push_segment(conv: u32, sn: u32, payload: &[u8]) -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(&conv.to_le_bytes()); // conv
        s.push(81); // cmd: IKCP_CMD_PUSH
        s.push(0); // frg: 0 in stream mode
        s.extend_from_slice(&32u16.to_le_bytes()); // wnd
        s.extend_from_slice(&1000u32.to_le_bytes()); // ts
        s.extend_from_slice(&sn.to_le_bytes()); // sn
        s.extend_from_slice(&0u32.to_le_bytes()); // una
        s.extend_from_slice(&(payload.len() as u32).to_le_bytes()); // len
        s.extend_from_slice(payload);
        s
    }

    #[test]
    fn packet_layout_nonce_crc_fec_size_segment() {
        let crypt = BlockCrypt::aes(&[7u8; 32]).unwrap();
        let seg = push_segment(0xdead_beef, 0, b"hello kcp-go");

        // What the session's output builds: reserved crypto + FEC header, then the KCP packet.
        let mut pkt = vec![0u8; CRYPT_HEADER + FEC_HEADER_PLUS2];
        pkt.extend_from_slice(&seg);
        let mut enc = FecEncoder::new(10, 3, CRYPT_HEADER).unwrap();
        assert!(enc.encode(&mut pkt).is_empty());
        seal(&crypt, &mut pkt);

        // The same packet by hand, with the nonce the sealed packet drew.
        let mut clear = pkt.clone();
        crypt.decrypt(&mut clear);
        let nonce = &clear[..16];
        let mut body = Vec::new();
        body.extend_from_slice(&0u32.to_le_bytes()); // FEC seqid
        body.extend_from_slice(&0xf1u16.to_le_bytes()); // FEC flag: typeData
        body.extend_from_slice(&((2 + seg.len()) as u16).to_le_bytes()); // size incl. itself
        body.extend_from_slice(&seg);
        let mut by_hand = nonce.to_vec();
        by_hand.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        by_hand.extend_from_slice(&body);
        assert_eq!(clear, by_hand);
        assert_eq!(pkt.len(), 16 + 4 + 6 + 2 + 24 + 12);

        // And it opens again.
        let mut rx = pkt.clone();
        let payload = open(Some(&crypt), &mut rx).unwrap();
        assert_eq!(le16(&payload[4..]), TYPE_DATA);
        assert_eq!(&payload[FEC_HEADER_PLUS2..], &seg[..]);
        assert!(valid_kcp(&payload[FEC_HEADER_PLUS2..], 0xdead_beef, None));
        assert_eq!(le32(&payload[FEC_HEADER_PLUS2 + KCP_SN_OFFSET..]), 0);
    }

    #[test]
    fn wrong_key_or_corruption_fails_the_checksum() {
        let crypt = BlockCrypt::aes(&[7u8; 16]).unwrap();
        let other = BlockCrypt::aes(&[8u8; 16]).unwrap();
        let mut pkt = vec![0u8; CRYPT_HEADER];
        pkt.extend_from_slice(&push_segment(1, 0, b"x"));
        seal(&crypt, &mut pkt);
        assert!(open(Some(&other), &mut pkt.clone()).is_none());
        let mut flipped = pkt.clone();
        flipped[30] ^= 1;
        assert!(open(Some(&crypt), &mut flipped).is_none());
        assert!(open(Some(&crypt), &mut pkt[..10].to_vec()).is_none());
        assert!(open(Some(&crypt), &mut pkt).is_some());
    }

    #[test]
    fn segment_checks() {
        let good = push_segment(5, 3, b"abc");
        assert!(valid_kcp(&good, 5, Some(0)));
        assert!(!valid_kcp(&good, 6, Some(0)), "conv");
        assert!(!valid_kcp(&good[..good.len() - 1], 5, Some(0)), "length");
        let mut bad = good.clone();
        bad[4] = 99;
        assert!(!valid_kcp(&bad, 5, Some(0)), "cmd");
        let mut bad = good.clone();
        bad[5] = 255;
        assert!(!valid_kcp(&bad, 5, Some(0)), "frg");
        let mut bad = good.clone();
        bad[12..16].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        assert!(!valid_kcp(&bad, 5, Some(0)), "sn");
        let mut ack = push_segment(5, 3, b"");
        ack[4] = 82;
        assert!(valid_kcp(&ack, 5, Some(1000)));
        assert!(!valid_kcp(&ack, 5, Some(999)), "ack from the future");
        assert!(!valid_kcp(&ack, 5, None), "ack opening a session");
        let mut two = good.clone();
        two.extend_from_slice(&ack);
        assert!(valid_kcp(&two, 5, Some(5000)));
    }
}
