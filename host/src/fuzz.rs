//! The seeded series of inputs `fuzz-methods` calls every method with.
//!
//! Input `i` of seed `s` is a pure function of `(s, i)`: ChaCha8 keyed by
//! the seed, on stream `i`. So one input is made again without the ones
//! before it (the parent saves the input a worker died on, after the
//! worker is gone), and the series is the same byte for byte on every
//! platform and release (ChaCha is specified, and the key is spelled out
//! here rather than left to a seed-expansion routine).
//!
//! The series starts with the inputs that break parsers most often, then
//! sizes around every power of two up to 1 MiB, then random bytes of
//! random sizes.

use std::io::Write as _;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// The seed a run uses unless told otherwise: fixed, so a gate gives the
/// same verdict twice; `--seed` explores others.
pub const DEFAULT_SEED: u64 = 0x706c_7567_6368_6b31;

/// [`DEFAULT_SEED`] as `--seed` shows and takes it.
pub const DEFAULT_SEED_TEXT: &str = "0x706c756763686b31";

/// Inputs per method unless told otherwise: every named class, every
/// power-of-two size and about two hundred random ones.
pub const DEFAULT_INPUTS: u32 = 256;

/// The digest of the first [`DEFAULT_INPUTS`] inputs of [`DEFAULT_SEED`]
/// (see [`SeriesDigest`]): every leg's run of `fuzz-methods` with the
/// defaults must report it.
pub const DEFAULT_SERIES_DIGEST: &str = "5fe0718c3e1d4964";

/// The largest input of the series: sizes around powers of two stop here.
pub const MAX_INPUT: usize = 1 << 20;

/// The largest random-sized input: keeps the random tail cheap.
const MAX_RANDOM_SIZE: usize = 64 << 10;

/// Invalid UTF-8 of every kind: a lone continuation byte, an overlong
/// encoding, a surrogate, a sequence cut short, bytes no UTF-8 has.
const INVALID_UTF8: &[u8] =
    b"\x80 \xc0\xaf \xed\xa0\x80 \xe2\x82 \xf0\x9f\x98 \xfe\xff \xf8\x88\x80\x80\x80";

/// What an input is, for a person reading a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Empty,
    OneByte(u8),
    EveryByte,
    Run(u8, usize),
    InvalidUtf8,
    TextWithNul,
    /// Random bytes of this size.
    Sized(usize),
    /// Random bytes of a random size.
    Random,
}

/// The named classes first, in this order.
const NAMED: &[Class] = &[
    Class::Empty,
    Class::OneByte(0x00),
    Class::OneByte(0xff),
    Class::EveryByte,
    Class::Run(0x00, 64 << 10),
    Class::Run(0xff, 64 << 10),
    Class::InvalidUtf8,
    Class::TextWithNul,
];

fn class(index: u32) -> Class {
    let index = index as usize;
    if let Some(&class) = NAMED.get(index) {
        return class;
    }
    match powers_of_two().nth(index - NAMED.len()) {
        Some(size) => Class::Sized(size),
        None => Class::Random,
    }
}

/// 2^k − 1, 2^k and 2^k + 1 for k = 1 … 20, none above [`MAX_INPUT`].
fn powers_of_two() -> impl Iterator<Item = usize> {
    (1..=20)
        .flat_map(|k| {
            let size = 1usize << k;
            [size - 1, size, size + 1]
        })
        .filter(|&size| size <= MAX_INPUT)
}

/// Input `index` of the series of `seed`.
pub fn input(seed: u64, index: u32) -> Vec<u8> {
    let mut rng = rng(seed, index);
    match class(index) {
        Class::Empty => Vec::new(),
        Class::OneByte(byte) => vec![byte],
        Class::EveryByte => (0..=255).collect(),
        Class::Run(byte, len) => vec![byte; len],
        Class::InvalidUtf8 => INVALID_UTF8.to_vec(),
        Class::TextWithNul => b"plugcheck\0fuzz".to_vec(),
        Class::Sized(len) => random_bytes(&mut rng, len),
        Class::Random => {
            // Sizes spread evenly over orders of magnitude: most inputs
            // are short, some are tens of KiB.
            let bits = rng.next_u32() % (MAX_RANDOM_SIZE.trailing_zeros() + 1);
            let len = (rng.next_u64() as usize) % ((1usize << bits) + 1);
            random_bytes(&mut rng, len)
        }
    }
}

/// What input `index` is, in words: "empty", "65 536 bytes of 0x00",
/// "4 097 random bytes".
pub fn describe(seed: u64, index: u32) -> String {
    describe_input(index, || input(seed, index).len())
}

/// [`describe`], given the length of a random input (which only making the
/// input tells) by `random_len`: the series writer has the input already.
fn describe_input(index: u32, random_len: impl FnOnce() -> usize) -> String {
    let size = |len: usize| match len {
        1 => "1 byte".to_owned(),
        len => format!("{len} bytes"),
    };
    match class(index) {
        Class::Empty => "empty".into(),
        Class::OneByte(byte) => format!("1 byte, 0x{byte:02x}"),
        Class::EveryByte => "256 bytes, every byte value once".into(),
        Class::Run(byte, len) => format!("{} of 0x{byte:02x}", size(len)),
        Class::InvalidUtf8 => format!("{}, invalid UTF-8", size(INVALID_UTF8.len())),
        Class::TextWithNul => "14 bytes, text with a NUL inside".into(),
        Class::Sized(len) => format!("{} of random bytes", size(len)),
        Class::Random => format!("{} of random bytes", size(random_len())),
    }
}

fn rng(seed: u64, index: u32) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(u64::from(index));
    rng
}

fn random_bytes(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// A digest of a whole series, which two runs (or two platforms) compare
/// to know they fed the same bytes: XXH3 over each input's length and
/// bytes, in order.
#[derive(Default)]
pub struct SeriesDigest(xxhash_rust::xxh3::Xxh3Default);

impl SeriesDigest {
    pub fn add(&mut self, input: &[u8]) {
        self.0.update(&(input.len() as u64).to_le_bytes());
        self.0.update(input);
    }

    /// [`SeriesDigest::add`] of an input read piece by piece: its length
    /// first, then its pieces through [`SeriesDigest::piece`].
    fn begin(&mut self, len: usize) {
        self.0.update(&(len as u64).to_le_bytes());
    }

    fn piece(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0.digest())
    }
}

/// Writes the first `count` inputs of `seed`'s series to `file`, for a
/// worker that reads them instead of making them (the Go worker): a header
/// line `plugcheck-fuzz-series 1 DIGEST COUNT`, then per input its
/// description (see [`describe`]) as a line, and its bytes after their
/// length as a little-endian `u32`. Returns the series' digest.
pub fn write_series(
    file: &mut impl std::io::Write,
    seed: u64,
    count: u32,
) -> std::io::Result<String> {
    let inputs: Vec<Vec<u8>> = (0..count).map(|index| input(seed, index)).collect();
    let mut digest = SeriesDigest::default();
    inputs.iter().for_each(|input| digest.add(input));
    let digest = digest.hex();
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "plugcheck-fuzz-series 1 {digest} {count}")?;
    for (index, input) in (0..).zip(&inputs) {
        writeln!(out, "{}", describe_input(index, || input.len()))?;
        out.write_all(&(input.len() as u32).to_le_bytes())?;
        out.write_all(input)?;
    }
    out.flush()?;
    Ok(digest)
}

/// Whether `file` holds exactly what [`write_series`] writes for `count`
/// inputs whose digest is `digest`: the header, each input's description
/// and length, the inputs themselves (by their digest), and nothing after.
/// Read piece by piece through one small buffer (a series is ~6 MB): a
/// series read back from a cache is checked so before a worker reads it.
pub fn is_series(file: impl std::io::Read, count: u32, digest: &str) -> bool {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::with_capacity(64 << 10, file);
    // Lines are short: a description, or the header.
    let line = |reader: &mut std::io::BufReader<_>| -> Option<Vec<u8>> {
        let mut line = Vec::new();
        reader
            .by_ref()
            .take(256)
            .read_until(b'\n', &mut line)
            .ok()?;
        (line.pop() == Some(b'\n')).then_some(line)
    };
    if line(&mut reader) != Some(format!("plugcheck-fuzz-series 1 {digest} {count}").into_bytes()) {
        return false;
    }
    let mut found = SeriesDigest::default();
    for index in 0..count {
        let Some(description) = line(&mut reader) else {
            return false;
        };
        let mut len = [0u8; 4];
        if reader.read_exact(&mut len).is_err() {
            return false;
        }
        let len = u32::from_le_bytes(len) as usize;
        if description != describe_input(index, || len).as_bytes() {
            return false;
        }
        found.begin(len);
        let mut left = len;
        while left > 0 {
            let Ok(buffer) = reader.fill_buf() else {
                return false;
            };
            if buffer.is_empty() {
                return false;
            }
            let piece = buffer.len().min(left);
            found.piece(&buffer[..piece]);
            reader.consume(piece);
            left -= piece;
        }
    }
    matches!(reader.fill_buf(), Ok(rest) if rest.is_empty()) && found.hex() == digest
}

/// A seed as a person types it back: `0x…` hexadecimal or decimal.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => text.replace('_', "").parse(),
    };
    parsed.map_err(|_| format!("`{text}` is not a seed: give a number, decimal or 0x-hexadecimal"))
}

/// A seed as reports print it.
pub fn seed_text(seed: u64) -> String {
    format!("{seed:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_starts_with_the_named_classes() {
        let seed = DEFAULT_SEED;
        assert_eq!(input(seed, 0), b"");
        assert_eq!(input(seed, 1), [0]);
        assert_eq!(input(seed, 3), (0..=255).collect::<Vec<u8>>());
        assert!(input(seed, 4).iter().all(|&b| b == 0));
        assert!(input(seed, 5).iter().all(|&b| b == 0xff));
        assert!(std::str::from_utf8(&input(seed, 6)).is_err());
        assert!(input(seed, 7).contains(&0));
    }

    #[test]
    fn sizes_cover_every_power_of_two_up_to_a_mebibyte() {
        let sizes: Vec<usize> = (0..DEFAULT_INPUTS)
            .map(|i| input(DEFAULT_SEED, i).len())
            .collect();
        for k in 1..=20 {
            let power = 1usize << k;
            assert!(sizes.contains(&(power - 1)), "2^{k}-1 missing");
            assert!(sizes.contains(&power), "2^{k} missing");
        }
        assert_eq!(sizes.iter().max(), Some(&MAX_INPUT));
        assert!(sizes.len() > NAMED.len() + 59, "random inputs follow");
    }

    #[test]
    fn an_input_depends_only_on_seed_and_index() {
        assert_eq!(input(7, 100), input(7, 100));
        assert_ne!(input(7, 100), input(8, 100));
        assert_ne!(input(7, 40), input(7, 41));
    }

    /// ChaCha as Bernstein specified it (a 64-bit block counter in words
    /// 12–13, a 64-bit nonce in 14–15), written out here from the spec
    /// rather than taken from `rand_chacha`: block `counter` of stream
    /// `nonce` under `key`, after `rounds` rounds.
    fn chacha_block(key: &[u8; 32], nonce: u64, counter: u64, rounds: usize) -> [u8; 64] {
        fn quarter(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
            x[a] = x[a].wrapping_add(x[b]);
            x[d] = (x[d] ^ x[a]).rotate_left(16);
            x[c] = x[c].wrapping_add(x[d]);
            x[b] = (x[b] ^ x[c]).rotate_left(12);
            x[a] = x[a].wrapping_add(x[b]);
            x[d] = (x[d] ^ x[a]).rotate_left(8);
            x[c] = x[c].wrapping_add(x[d]);
            x[b] = (x[b] ^ x[c]).rotate_left(7);
        }
        let word = |bytes: &[u8]| u32::from_le_bytes(bytes.try_into().unwrap());
        let mut state = [0u32; 16];
        for (at, constant) in b"expand 32-byte k".chunks(4).enumerate() {
            state[at] = word(constant);
        }
        for (at, key) in key.chunks(4).enumerate() {
            state[4 + at] = word(key);
        }
        state[12] = counter as u32;
        state[13] = (counter >> 32) as u32;
        state[14] = nonce as u32;
        state[15] = (nonce >> 32) as u32;
        let mut x = state;
        for _ in 0..rounds / 2 {
            quarter(&mut x, 0, 4, 8, 12);
            quarter(&mut x, 1, 5, 9, 13);
            quarter(&mut x, 2, 6, 10, 14);
            quarter(&mut x, 3, 7, 11, 15);
            quarter(&mut x, 0, 5, 10, 15);
            quarter(&mut x, 1, 6, 11, 12);
            quarter(&mut x, 2, 7, 8, 13);
            quarter(&mut x, 3, 4, 9, 14);
        }
        let mut out = [0u8; 64];
        for (at, (x, state)) in x.iter().zip(state).enumerate() {
            out[at * 4..at * 4 + 4].copy_from_slice(&x.wrapping_add(state).to_le_bytes());
        }
        out
    }

    /// The first `len` bytes of ChaCha8's keystream for input `index` of
    /// `seed`: the key is the seed's little-endian bytes then zeros, the
    /// nonce (stream) is the index, blocks count from 0.
    fn keystream(seed: u64, index: u32, len: usize) -> Vec<u8> {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        let mut bytes = Vec::with_capacity(len + 64);
        let mut counter = 0;
        while bytes.len() < len {
            bytes.extend_from_slice(&chacha_block(&key, u64::from(index), counter, 8));
            counter += 1;
        }
        bytes.truncate(len);
        bytes
    }

    /// Input `index` of `seed` made as the module's doc and the README say
    /// the series is, with none of the code above: 8 named inputs; random
    /// bytes of the sizes 2^k − 1, 2^k, 2^k + 1 (k = 1 … 20, at most
    /// 1 MiB); then random sizes. Random bytes are the keystream as the
    /// generator hands it out: whole 32-bit words in order, a `u64` as two
    /// words low first, so a random-sized input's size takes words 0–2 and
    /// its bytes start at byte 12.
    fn made_from_the_spec(seed: u64, index: u32) -> Vec<u8> {
        let named: [Vec<u8>; 8] = [
            vec![],
            vec![0x00],
            vec![0xff],
            (0..=255).collect(),
            vec![0x00; 65536],
            vec![0xff; 65536],
            b"\x80 \xc0\xaf \xed\xa0\x80 \xe2\x82 \xf0\x9f\x98 \xfe\xff \xf8\x88\x80\x80\x80"
                .to_vec(),
            b"plugcheck\0fuzz".to_vec(),
        ];
        let sized: Vec<usize> = (1..=20)
            .flat_map(|k| [(1 << k) - 1, 1 << k, (1 << k) + 1])
            .filter(|&size| size <= 1 << 20)
            .collect();
        let at = index as usize;
        if at < named.len() {
            return named[at].clone();
        }
        if let Some(&size) = sized.get(at - named.len()) {
            return keystream(seed, index, size);
        }
        let head = keystream(seed, index, 12);
        let bits = u32::from_le_bytes(head[0..4].try_into().unwrap()) % 17;
        let len = u64::from_le_bytes(head[4..12].try_into().unwrap()) % ((1 << bits) + 1);
        keystream(seed, index, 12 + len as usize).split_off(12)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// The series against an implementation of its own here, checked in
    /// turn against ChaCha's published keystreams (all-zero key and
    /// nonce: RFC 8439's for 20 rounds, draft-strombergson-chacha-test-
    /// vectors' for 8). So a change of generator, of how the key is made,
    /// or of how the generator's words are taken fails here — it would
    /// change every saved input's meaning — and the pinned digest, which
    /// every leg's `fuzz-methods` reports and the Go worker checks its
    /// series file by, is the digest of bytes this code did not make.
    #[test]
    fn the_series_is_chacha8_as_specified_and_its_digest_is_pinned() {
        assert_eq!(
            hex(&chacha_block(&[0; 32], 0, 0, 20)),
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7\
             da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586",
            "ChaCha20, all-zero key and nonce"
        );
        assert_eq!(
            hex(&chacha_block(&[0; 32], 0, 0, 8)),
            "3e00ef2f895f40d67f5bb8e81f09a5a12c840ec3ce9a7f3b181be188ef711a1e\
             984ce172b9216f419f445367456d5619314a42a3da86b001387bfdb80e0cfe42",
            "ChaCha8, all-zero key and nonce"
        );
        let mut digest = SeriesDigest::default();
        for index in 0..DEFAULT_INPUTS {
            let expected = made_from_the_spec(DEFAULT_SEED, index);
            let made = input(DEFAULT_SEED, index);
            assert!(
                made == expected,
                "input {index} of the default seed: {} bytes, the spec's {} (first differing at {:?})",
                made.len(),
                expected.len(),
                made.iter().zip(&expected).position(|(a, b)| a != b)
            );
            digest.add(&expected);
        }
        assert_eq!(digest.hex(), DEFAULT_SERIES_DIGEST);
        // Another seed, where the key's other bytes matter.
        for index in [8, 66, 67, 200] {
            assert!(input(u64::MAX - 41, index) == made_from_the_spec(u64::MAX - 41, index));
        }
    }

    #[test]
    fn seeds_parse_in_both_bases() {
        assert_eq!(parse_seed("0x2a"), Ok(42));
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed(&seed_text(DEFAULT_SEED)), Ok(DEFAULT_SEED));
        assert_eq!(parse_seed(DEFAULT_SEED_TEXT), Ok(DEFAULT_SEED));
        assert!(parse_seed("forty-two").unwrap_err().contains("forty-two"));
    }

    #[test]
    fn descriptions_name_the_size() {
        assert_eq!(describe(DEFAULT_SEED, 0), "empty");
        assert_eq!(describe(DEFAULT_SEED, 4), "65536 bytes of 0x00");
        let random = describe(DEFAULT_SEED, 200);
        let len = input(DEFAULT_SEED, 200).len();
        assert!(random.starts_with(&len.to_string()), "{random}");
    }

    #[test]
    fn a_series_is_checked_whole() {
        let mut series = Vec::new();
        let digest = write_series(&mut series, 7, 40).unwrap();
        assert!(is_series(&series[..], 40, &digest));
        assert!(!is_series(&series[..], 39, &digest), "another count");
        assert!(!is_series(&series[..series.len() - 1], 40, &digest));
        let mut longer = series.clone();
        longer.push(0);
        assert!(!is_series(&longer[..], 40, &digest), "bytes after");
        let text = String::from_utf8_lossy(&series).into_owned();
        let renamed = text.replacen("random bytes", "random byte", 1);
        assert!(!is_series(renamed.as_bytes(), 40, &digest), "a description");
    }
}
