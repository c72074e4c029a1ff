//! kcp-go's FEC layer (kcp-go v5.4.20 fec.go): Reed-Solomon over groups of `data + parity`
//! consecutive packets.
//!
//! Every packet carries `seqid u32 | flag u16` (fec.go:21-23, fec.go:326-337). A data packet then
//! has `size u16` (2 + the KCP bytes, fec.go:281) and the KCP packet; the RS shard of a data packet
//! is `size | kcp bytes`, zero-padded to the longest shard of its group (fec.go:295-307). A parity
//! packet carries one parity shard after its 6-byte header. Seqids run `0, 1, ...` and wrap at the
//! largest multiple of the group size below 2^32 (`paws`, fec.go:254 and fec.go:336), so group
//! `k` is seqids `k*(d+p) .. k*(d+p)+d+p-1`, its data shards first.

use reed_solomon_erasure::galois_8::ReedSolomon;

/// FEC header: seqid (4) + flag (2) (fec.go:11).
pub(crate) const FEC_HEADER: usize = 6;
/// FEC header plus the 2-byte size of a data shard (fec.go:12).
pub(crate) const FEC_HEADER_PLUS2: usize = FEC_HEADER + 2;
/// Flag of a data packet (fec.go:13).
pub(crate) const TYPE_DATA: u16 = 0xf1;
/// Flag of a parity packet (fec.go:14).
pub(crate) const TYPE_PARITY: u16 = 0xf2;
/// Received shards older than this (ms) are dropped (fec.go:15).
const FEC_EXPIRE_MS: i32 = 60_000;
/// The decoder keeps at most this many groups' worth of shards (sess.go:39, sess.go:155).
const RX_FEC_MULTI: usize = 3;

fn timediff(later: u32, earlier: u32) -> i32 {
    later.wrapping_sub(earlier) as i32
}

/// Builds the Reed-Solomon codec kcp-go builds with `reedsolomon.New(data, parity)`: the
/// Vandermonde matrix made systematic by the inverse of its top square (Backblaze's construction,
/// which both klauspost/reedsolomon and reed-solomon-erasure implement).
pub(crate) fn codec(data: usize, parity: usize) -> Option<ReedSolomon> {
    ReedSolomon::new(data, parity).ok()
}

/// Marks outgoing packets and emits parity packets (fec.go:219-337).
pub(crate) struct FecEncoder {
    data: usize,
    parity: usize,
    paws: u32,
    next: u32,
    /// Offset of the FEC header in an outgoing packet (the crypto header before it, or 0).
    header_offset: usize,
    /// `size | kcp` of the data packets of the group collected so far.
    shards: Vec<Vec<u8>>,
    count: usize,
    max_len: usize,
    rs: ReedSolomon,
}

impl FecEncoder {
    pub(crate) fn new(data: usize, parity: usize, header_offset: usize) -> Option<Self> {
        if data == 0 || parity == 0 {
            return None;
        }
        let group = (data + parity) as u32;
        Some(FecEncoder {
            data,
            parity,
            paws: u32::MAX / group * group,
            next: 0,
            header_offset,
            shards: vec![Vec::new(); data],
            count: 0,
            max_len: 0,
            rs: codec(data, parity)?,
        })
    }

    /// Marks `pkt` (`header_offset` reserved bytes, then 8 bytes for the FEC header and size, then
    /// the KCP packet) as the next data shard; once `data` shards are collected, returns the
    /// group's parity packets (each with `header_offset` reserved bytes first).
    pub(crate) fn encode(&mut self, pkt: &mut [u8]) -> Vec<Vec<u8>> {
        let h = self.header_offset;
        pkt[h..h + 4].copy_from_slice(&self.next.to_le_bytes());
        pkt[h + 4..h + 6].copy_from_slice(&TYPE_DATA.to_le_bytes());
        self.next = self.next.wrapping_add(1);
        let payload_len = pkt.len() - h - FEC_HEADER;
        pkt[h + FEC_HEADER..h + FEC_HEADER_PLUS2]
            .copy_from_slice(&(payload_len as u16).to_le_bytes());

        let shard = &mut self.shards[self.count];
        shard.clear();
        shard.extend_from_slice(&pkt[h + FEC_HEADER..]);
        self.count += 1;
        self.max_len = self.max_len.max(payload_len);
        if self.count < self.data {
            return Vec::new();
        }

        for shard in &mut self.shards {
            shard.resize(self.max_len, 0);
        }
        let mut parity = vec![vec![0u8; self.max_len]; self.parity];
        let ok = self.rs.encode_sep(&self.shards, &mut parity).is_ok();
        let mut out = Vec::with_capacity(self.parity);
        if ok {
            for shard in parity {
                let mut p = vec![0u8; h + FEC_HEADER + shard.len()];
                p[h..h + 4].copy_from_slice(&self.next.to_le_bytes());
                p[h + 4..h + 6].copy_from_slice(&TYPE_PARITY.to_le_bytes());
                p[h + FEC_HEADER..].copy_from_slice(&shard);
                // Sequence wrap only happens at a parity shard (fec.go:335-336).
                self.next = self.next.wrapping_add(1) % self.paws;
                out.push(p);
            }
        }
        self.count = 0;
        self.max_len = 0;
        out
    }
}

struct RxShard {
    seqid: u32,
    flag: u16,
    /// The bytes after the 6-byte FEC header.
    data: Vec<u8>,
    ts: u32,
}

/// Recovers lost data packets from parity packets (fec.go:31-217). Holds at most
/// `3 * (data + parity)` shards of at most one datagram each.
pub(crate) struct FecDecoder {
    rxlimit: usize,
    data: usize,
    group: usize,
    rx: Vec<RxShard>,
    rs: ReedSolomon,
}

impl FecDecoder {
    pub(crate) fn new(data: usize, parity: usize) -> Option<Self> {
        if data == 0 || parity == 0 {
            return None;
        }
        Some(FecDecoder {
            rxlimit: RX_FEC_MULTI * (data + parity),
            data,
            group: data + parity,
            rx: Vec::new(),
            rs: codec(data, parity)?,
        })
    }

    /// Number of shards held (for tests).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.rx.len()
    }

    /// Takes one FEC packet (`seqid`, `flag` and the bytes after the 6-byte header) received at
    /// `now` (ms) and returns the data shards (`size | kcp | padding`) it let us recover.
    pub(crate) fn decode(&mut self, seqid: u32, flag: u16, data: &[u8], now: u32) -> Vec<Vec<u8>> {
        let mut recovered = Vec::new();
        // Ordered insertion, de-duplicated (fec.go:76-100).
        let mut insert_idx = 0;
        for i in (0..self.rx.len()).rev() {
            if self.rx[i].seqid == seqid {
                return recovered;
            }
            if timediff(seqid, self.rx[i].seqid) > 0 {
                insert_idx = i + 1;
                break;
            }
        }
        self.rx.insert(
            insert_idx,
            RxShard {
                seqid,
                flag,
                data: data.to_vec(),
                ts: now,
            },
        );

        let group = self.group as u32;
        let shard_begin = seqid - seqid % group;
        let shard_end = shard_begin.wrapping_add(group - 1);
        let search_begin = insert_idx.saturating_sub((seqid % group) as usize);
        let search_end = (search_begin + self.group - 1).min(self.rx.len() - 1);

        if search_end + 1 - search_begin >= self.data {
            let mut shards: Vec<Option<Vec<u8>>> = vec![None; self.group];
            let (mut numshard, mut num_data, mut first, mut max_len) = (0, 0, 0, 0);
            for i in search_begin..=search_end {
                let s = &self.rx[i];
                if timediff(s.seqid, shard_end) > 0 {
                    break;
                }
                if timediff(s.seqid, shard_begin) >= 0 {
                    let idx = (s.seqid % group) as usize;
                    if shards[idx].is_none() {
                        shards[idx] = Some(Vec::new());
                    }
                    numshard += 1;
                    if s.flag == TYPE_DATA {
                        num_data += 1;
                    }
                    if numshard == 1 {
                        first = i;
                    }
                    max_len = max_len.max(s.data.len());
                }
            }

            if num_data == self.data {
                // No loss on the data shards (fec.go:149-151).
                self.rx.drain(first..first + numshard);
            } else if numshard >= self.data {
                // Recoverable from parity (fec.go:152-172): zero-pad every shard to the longest.
                let present: Vec<bool> = shards.iter().map(Option::is_some).collect();
                for s in &self.rx[first..first + numshard] {
                    if timediff(s.seqid, shard_begin) >= 0 && timediff(s.seqid, shard_end) <= 0 {
                        let mut v = s.data.clone();
                        v.resize(max_len, 0);
                        shards[(s.seqid % group) as usize] = Some(v);
                    }
                }
                if self.rs.reconstruct_data(&mut shards).is_ok() {
                    for (k, shard) in shards.into_iter().take(self.data).enumerate() {
                        if !present[k] {
                            if let Some(shard) = shard {
                                recovered.push(shard);
                            }
                        }
                    }
                }
                self.rx.drain(first..first + numshard);
            }
        }

        // Bound the queue (fec.go:175-181) and expire old shards (fec.go:183-195).
        if self.rx.len() > self.rxlimit {
            self.rx.remove(0);
        }
        let expired = self
            .rx
            .iter()
            .take_while(|s| timediff(now, s.ts) > FEC_EXPIRE_MS)
            .count();
        self.rx.drain(..expired);
        recovered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parity printed by tests/go/kcpvectors: klauspost/reedsolomon `New(10, 3).Encode` of data
    /// shards `shard[i][j] = i*31 + j*17 + 3`, 8 bytes each.
    const KLAUSPOST_PARITY: [&str; 3] =
        ["8a68366b7d87702b", "a486b1411c0411f4", "030e03f2a6eb7298"];

    #[test]
    fn parity_matches_klauspost() {
        let rs = codec(10, 3).unwrap();
        let data: Vec<Vec<u8>> = (0..10u32)
            .map(|i| (0..8u32).map(|j| (i * 31 + j * 17 + 3) as u8).collect())
            .collect();
        let mut parity = vec![vec![0u8; 8]; 3];
        rs.encode_sep(&data, &mut parity).unwrap();
        for (p, want) in parity.iter().zip(KLAUSPOST_PARITY) {
            assert_eq!(hex::encode(p), want);
        }
    }

    /// Builds `n` data packets (no crypto header) with KCP-ish payloads of varying length and
    /// returns them with the parity packets the encoder emitted.
    fn group(enc: &mut FecEncoder, n: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut data = Vec::new();
        let mut parity = Vec::new();
        for i in 0..n {
            let mut pkt = vec![0u8; FEC_HEADER_PLUS2];
            pkt.extend((0..(30 + i * 7)).map(|j| (i * 3 + j) as u8));
            parity.extend(enc.encode(&mut pkt));
            data.push(pkt);
        }
        (data, parity)
    }

    fn split(pkt: &[u8]) -> (u32, u16, &[u8]) {
        (
            u32::from_le_bytes(pkt[0..4].try_into().unwrap()),
            u16::from_le_bytes(pkt[4..6].try_into().unwrap()),
            &pkt[FEC_HEADER..],
        )
    }

    #[test]
    fn encoder_marks_seqids_flags_and_sizes() {
        let mut enc = FecEncoder::new(10, 3, 0).unwrap();
        let (data, parity) = group(&mut enc, 10);
        assert_eq!(parity.len(), 3);
        for (i, pkt) in data.iter().enumerate() {
            let (seqid, flag, rest) = split(pkt);
            assert_eq!((seqid, flag), (i as u32, TYPE_DATA));
            assert_eq!(u16::from_le_bytes([rest[0], rest[1]]) as usize, rest.len());
        }
        let longest = data.iter().map(|p| p.len() - FEC_HEADER).max().unwrap();
        for (i, pkt) in parity.iter().enumerate() {
            let (seqid, flag, rest) = split(pkt);
            assert_eq!((seqid, flag), (10 + i as u32, TYPE_PARITY));
            assert_eq!(rest.len(), longest);
        }
        let (data2, _) = group(&mut enc, 1);
        assert_eq!(split(&data2[0]).0, 13);
    }

    #[test]
    fn recovers_three_lost_of_thirteen() {
        let mut enc = FecEncoder::new(10, 3, 0).unwrap();
        let mut dec = FecDecoder::new(10, 3).unwrap();
        let (data, parity) = group(&mut enc, 10);
        let lost = [1usize, 4, 9];
        let mut recovered = Vec::new();
        for (i, pkt) in data.iter().chain(parity.iter()).enumerate() {
            if lost.contains(&i) {
                continue;
            }
            let (seqid, flag, rest) = split(pkt);
            recovered.extend(dec.decode(seqid, flag, rest, 0));
        }
        assert_eq!(recovered.len(), 3);
        for (r, &i) in recovered.iter().zip(&lost) {
            let size = u16::from_le_bytes([r[0], r[1]]) as usize;
            assert_eq!(&r[..size], &data[i][FEC_HEADER..], "shard {i}");
        }
        assert_eq!(dec.held(), 0, "a decoded group is freed");
    }

    #[test]
    fn four_lost_are_not_recovered_and_memory_is_bounded() {
        let mut enc = FecEncoder::new(10, 3, 0).unwrap();
        let mut dec = FecDecoder::new(10, 3).unwrap();
        let (data, parity) = group(&mut enc, 10);
        let mut recovered = 0;
        for (i, pkt) in data.iter().chain(parity.iter()).enumerate() {
            if [0, 2, 5, 7].contains(&i) {
                continue;
            }
            let (seqid, flag, rest) = split(pkt);
            recovered += dec.decode(seqid, flag, rest, 0).len();
        }
        assert_eq!(recovered, 0);
        assert!(dec.held() <= 39);
    }

    #[test]
    fn absurd_seqids_and_sizes_do_not_panic_and_stay_bounded() {
        let mut dec = FecDecoder::new(10, 3).unwrap();
        let mut x: u32 = 0x1234_5678;
        for round in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let seqid = match round % 4 {
                0 => x,
                1 => u32::MAX - (x % 40),
                2 => x % 40,
                _ => (x % 3).wrapping_sub(1),
            };
            let flag = if x & 1 == 0 { TYPE_DATA } else { TYPE_PARITY };
            let len = (x >> 8) as usize % 1500;
            let data = vec![(x >> 3) as u8; len];
            for r in dec.decode(seqid, flag, &data, round) {
                assert!(r.len() <= 1500);
            }
            assert!(dec.held() <= 3 * 13, "held {}", dec.held());
        }
    }
}
