//! The workload, exactly as the course defines it; other tools use the same definition.
//!
//! - Keys: the key index in decimal, zero-padded to 16 digits.
//! - Values: 100 bytes out of a 4 MiB buffer of SplitMix64(42) outputs (little-endian); the value
//!   of index `i` in generation `g` starts at `((i + g * n) * 100) mod (4 MiB - 100)`.
//! - Random orders and choices come from SplitMix64 with fixed seeds: 42 for the fillrandom
//!   permutation (Fisher-Yates), 7 for readrandom, 11 for readmissing, 9 for overwrite.

/// Bytes in a key.
pub const KEY_LEN: usize = 16;
/// Bytes in a value.
pub const VALUE_LEN: usize = 100;
const VALUE_BUFFER: usize = 4 << 20;

/// The SplitMix64 generator.
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Keys and values of a run with `n` keys.
pub struct Workload {
    pub n: u64,
    values: Vec<u8>,
}

impl Workload {
    /// The workload over `n` keys.
    pub fn new(n: u64) -> Self {
        let mut rng = SplitMix64::new(42);
        let mut values = Vec::with_capacity(VALUE_BUFFER);
        while values.len() < VALUE_BUFFER {
            values.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        values.truncate(VALUE_BUFFER);
        Self { n, values }
    }

    /// The key of index `i`.
    pub fn key(&self, i: u64) -> [u8; KEY_LEN] {
        // Written two digits at a time: a `format!` per key put an allocation into every timed
        // operation, and a division per digit showed in the profile of scanall.
        let mut key = [b'0'; KEY_LEN];
        let mut rest = i;
        for pair in key.rchunks_exact_mut(2) {
            let two = (rest % 100) as u8;
            pair.copy_from_slice(&[b'0' + two / 10, b'0' + two % 10]);
            rest /= 100;
        }
        assert!(rest == 0, "key index {i} has more than {KEY_LEN} digits");
        key
    }

    /// Advances `key` from the key of index `i` to that of `i + 1`: a scan checks keys in order,
    /// and carrying a digit is cheaper than writing sixteen anew.
    pub fn increment_key(key: &mut [u8; KEY_LEN]) {
        for digit in key.iter_mut().rev() {
            if *digit == b'9' {
                *digit = b'0';
            } else {
                *digit += 1;
                return;
            }
        }
    }

    /// The absent key derived from index `i`: its key with the last digit replaced by `x`.
    pub fn missing_key(&self, i: u64) -> [u8; KEY_LEN] {
        let mut key = self.key(i);
        key[KEY_LEN - 1] = b'x';
        key
    }

    /// The value of index `i` in generation `g`.
    pub fn value(&self, i: u64, g: u64) -> &[u8] {
        let start = ((i + g * self.n) * VALUE_LEN as u64) % (VALUE_BUFFER - VALUE_LEN) as u64;
        &self.values[start as usize..start as usize + VALUE_LEN]
    }

    /// The fillrandom order: a Fisher-Yates permutation of `0..n` driven by SplitMix64(42).
    pub fn permutation(&self) -> Vec<u64> {
        let mut order: Vec<u64> = (0..self.n).collect();
        let mut rng = SplitMix64::new(42);
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys are 16 zero-padded digits; values are 100 bytes from the seeded buffer.
    #[test]
    fn keys_and_values_follow_the_definition() {
        let w = Workload::new(1000);
        assert_eq!(&w.key(42), b"0000000000000042");
        assert_eq!(&w.key(9_876_543_210), b"0000009876543210");
        assert_eq!(&w.key(0), b"0000000000000000");
        assert_eq!(&w.missing_key(42), b"000000000000004x");
        assert_eq!(w.value(3, 0).len(), VALUE_LEN);
        assert_eq!(w.value(3, 0), &w.values[300..400]);
        assert_eq!(w.value(3, 1), &w.values[100_300..100_400]);
        let first = SplitMix64::new(42).next_u64().to_le_bytes();
        assert_eq!(&w.values[..8], &first);
    }

    /// Incrementing a key gives the next index's key, across carries.
    #[test]
    fn increment_key_counts_in_decimal() {
        let w = Workload::new(10);
        let mut key = w.key(0);
        for i in 1..=10_100u64 {
            Workload::increment_key(&mut key);
            assert_eq!(key, w.key(i));
        }
    }

    /// The permutation holds every index once.
    #[test]
    fn permutation_is_a_permutation() {
        let w = Workload::new(10_000);
        let mut p = w.permutation();
        assert_ne!(p[..10], (0..10).collect::<Vec<_>>()[..]);
        p.sort_unstable();
        assert_eq!(p, (0..10_000).collect::<Vec<_>>());
    }
}
