//! The Raft log's on-disk record format, with no I/O: framing entries into records and
//! scanning a segment's bytes back into them.
//!
//! A record is a 16-byte header, then the entry's encoded bytes:
//!
//! ```text
//! length: u32 LE   (of the entry bytes)
//! crc:    u32 LE   (CRC-32 of the index bytes and the entry bytes)
//! index:  u64 LE   (the entry's log index)
//! entry:  length bytes
//! ```
//!
//! A crash can leave a segment ending in part of a record (a torn write). Scanning stops at
//! the first record that is cut short or fails its checksum and reports how many bytes are
//! whole; the store cuts the segment there.

/// Bytes in front of each entry.
pub const HEADER: usize = 16;

/// Appends the record of entry `index` with encoded bytes `entry` to `out`.
pub fn frame(index: u64, entry: &[u8], out: &mut Vec<u8>) {
    let length = u32::try_from(entry.len()).expect("a raft entry is far smaller than 4 GiB");
    let index = index.to_le_bytes();
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&crc32(&[&index, entry]).to_le_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(entry);
}

/// Where one record's entry bytes are in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The entry's log index.
    pub index: u64,
    /// The offset of the entry bytes (after the header).
    pub offset: u64,
    /// The number of entry bytes.
    pub length: u32,
}

impl Record {
    /// The offset just past this record.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.length)
    }
}

/// What a segment's bytes hold.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// The whole records, in file order.
    pub records: Vec<Record>,
    /// How many leading bytes those records fill; anything after is a torn or corrupt tail.
    pub whole: u64,
}

/// Reads the records in `bytes`, stopping at the first one cut short or failing its checksum.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut records = Vec::new();
    let mut at = 0usize;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let field = |range: std::ops::Range<usize>| -> [u8; 8] {
            let mut out = [0u8; 8];
            out[..range.len()].copy_from_slice(&header[range]);
            out
        };
        let length = u64::from_le_bytes(field(0..4));
        let crc = u64::from_le_bytes(field(4..8));
        let index = field(8..16);
        let start = at + HEADER;
        let Some(entry) = usize::try_from(length)
            .ok()
            .and_then(|length| bytes.get(start..start.checked_add(length)?))
        else {
            break;
        };
        if u64::from(crc32(&[&index, entry])) != crc {
            break;
        }
        records.push(Record {
            index: u64::from_le_bytes(index),
            offset: start as u64,
            length: entry.len() as u32,
        });
        at = start + entry.len();
    }
    Scan {
        records,
        whole: at as u64,
    }
}

/// CRC-32 (IEEE, reflected, as zlib computes it) over the concatenated `parts`.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        crc = CRC_TABLE[((crc ^ u32::from(*byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(entries: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, entry) in entries {
            frame(*index, entry, &mut out);
        }
        out
    }

    #[test]
    fn crc_matches_the_zlib_check_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    #[test]
    fn records_scan_back_with_their_indexes_and_offsets() {
        let bytes = framed(&[(7, b"first"), (8, b""), (9, b"third entry")]);
        let scan = scan(&bytes);
        assert_eq!(scan.whole, bytes.len() as u64);
        let indexes: Vec<u64> = scan.records.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [7, 8, 9]);
        let third = scan.records[2];
        assert_eq!(
            &bytes[third.offset as usize..third.end() as usize],
            b"third entry"
        );
        assert_eq!(scan.records[1].length, 0);
        assert_eq!(scan.records[1].end(), third.offset - HEADER as u64);
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_cut_at_the_last_whole_record() {
        let whole = framed(&[(1, b"one"), (2, b"two")]);
        let with_third = framed(&[(1, b"one"), (2, b"two"), (3, b"three")]);
        // Cut anywhere inside the third record (header or entry): two records survive.
        for cut in whole.len()..with_third.len() {
            let scan = scan(&with_third[..cut]);
            assert_eq!(scan.records.len(), 2, "cut at {cut}");
            assert_eq!(scan.whole, whole.len() as u64, "cut at {cut}");
        }
        // A flipped bit in the third entry, its index or its length ends the scan there too.
        for at in [with_third.len() - 1, whole.len() + 9, whole.len()] {
            let mut bad = with_third.clone();
            bad[at] ^= 0x10;
            let scan = scan(&bad);
            assert_eq!(scan.records.len(), 2, "flip at {at}");
            assert_eq!(scan.whole, whole.len() as u64, "flip at {at}");
        }
        // Zeroes after the last record (space a crash left allocated) are no record.
        let mut zeroed = whole.clone();
        zeroed.extend_from_slice(&[0u8; 40]);
        assert_eq!(scan(&zeroed).whole, whole.len() as u64);
        assert_eq!(scan(&[]).records, []);
    }
}
