//! One record on disk: its payload's length, a CRC32C over the length and
//! the payload, then the payload. A frame that is cut short or whose
//! checksum does not match ends the readable log (a torn tail after a
//! crash); covering the length means a run of zeros is never a record.

/// Bytes before a payload: its length and its checksum, little-endian.
pub(crate) const HEADER: usize = 8;

/// Payloads longer than this are refused (a record is one change).
pub(crate) const MAX_PAYLOAD: usize = 16 << 20;

/// Appends the frame of `payload` to `out`.
pub(crate) fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&checksum(len, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// CRC32C of a frame's length bytes and payload.
fn checksum(len: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len), payload)
}

/// The bytes `payload` takes on disk.
pub(crate) fn framed_len(payload: &[u8]) -> u64 {
    (HEADER + payload.len()) as u64
}

/// What starts at an offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A whole, intact record and the bytes it takes.
    Record(&'a [u8], usize),
    /// The end of the readable log: nothing more, a partial frame or a
    /// checksum that does not match.
    End,
}

/// Reads the frame at the start of `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Decoded<'_> {
    if bytes.len() < HEADER {
        return Decoded::End;
    }
    let len_bytes = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if len > MAX_PAYLOAD || bytes.len() < HEADER + len {
        return Decoded::End;
    }
    let payload = &bytes[HEADER..HEADER + len];
    if checksum(len_bytes, payload) != crc {
        return Decoded::End;
    }
    Decoded::Record(payload, HEADER + len)
}

#[cfg(test)]
mod tests {
    use super::{Decoded, HEADER, decode, encode, framed_len};

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut out = Vec::new();
        encode(b"first", &mut out);
        encode(b"", &mut out);
        encode(b"third", &mut out);
        assert_eq!(
            out.len() as u64,
            framed_len(b"first") + framed_len(b"") + framed_len(b"third")
        );
        let mut at = 0;
        let mut seen = Vec::new();
        while let Decoded::Record(payload, used) = decode(&out[at..]) {
            seen.push(payload.to_vec());
            at += used;
        }
        assert_eq!(seen, vec![b"first".to_vec(), Vec::new(), b"third".to_vec()]);
        assert_eq!(at, out.len());
    }

    #[test]
    fn a_cut_or_corrupt_frame_ends_the_log() {
        let mut out = Vec::new();
        encode(b"payload", &mut out);
        for cut in 0..out.len() {
            assert_eq!(decode(&out[..cut]), Decoded::End, "cut at {cut}");
        }
        let mut flipped = out.clone();
        flipped[HEADER + 2] ^= 1;
        assert_eq!(decode(&flipped), Decoded::End);
        assert_eq!(decode(&[0u8; 64]), Decoded::End, "zeros are no record");
    }
}
