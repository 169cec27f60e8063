//! A tiny MaxMind DB (MMDB format 2.0) writer for tests: one IPv4 prefix → one country.
//! Written by hand because the test needs a real database file and none ships with the reader.

fn string(s: &str) -> Vec<u8> {
    assert!(s.len() < 29);
    let mut out = vec![(2 << 5) | s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

fn map(pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![(7 << 5) | pairs.len() as u8];
    for (k, v) in pairs {
        out.extend(string(k));
        out.extend_from_slice(v);
    }
    out
}

fn uint(type_bits: u8, value: u64, width: usize) -> Vec<u8> {
    let bytes = &value.to_be_bytes()[8 - width..];
    let mut out = vec![(type_bits << 5) | width as u8];
    out.extend_from_slice(bytes);
    out
}

fn uint64(value: u64) -> Vec<u8> {
    let mut out = vec![8, 9 - 7];
    out.extend_from_slice(&value.to_be_bytes());
    out
}

fn array_of_strings(items: &[&str]) -> Vec<u8> {
    let mut out = vec![items.len() as u8, 11 - 7];
    for i in items {
        out.extend(string(i));
    }
    out
}

/// An IPv4 database where every address whose first octet is `first_octet` is in `iso`.
pub fn country_db(first_octet: u8, iso: &str) -> Vec<u8> {
    const NODES: u32 = 8;
    let mut tree = Vec::new();
    for depth in 0..NODES {
        let bit = (first_octet >> (7 - depth)) & 1;
        let next = if depth + 1 == NODES {
            NODES + 16
        } else {
            depth + 1
        };
        let (left, right) = if bit == 0 {
            (next, NODES)
        } else {
            (NODES, next)
        };
        tree.extend_from_slice(&left.to_be_bytes()[1..]);
        tree.extend_from_slice(&right.to_be_bytes()[1..]);
    }
    let data = map(&[("country", map(&[("iso_code", string(iso))]))]);
    let metadata = map(&[
        ("node_count", uint(6, u64::from(NODES), 4)),
        ("record_size", uint(5, 24, 2)),
        ("ip_version", uint(5, 4, 2)),
        ("database_type", string("Callopt-Test-Country")),
        ("languages", array_of_strings(&["en"])),
        ("binary_format_major_version", uint(5, 2, 2)),
        ("binary_format_minor_version", uint(5, 0, 2)),
        ("build_epoch", uint64(1_700_000_000)),
        ("description", map(&[("en", string("test"))])),
    ]);
    let mut out = tree;
    out.extend_from_slice(&[0; 16]);
    out.extend(data);
    out.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
    out.extend(metadata);
    out
}
