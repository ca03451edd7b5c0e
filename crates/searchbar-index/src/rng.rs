//! SplitMix64: a tiny deterministic generator, identical on every target, enough for
//! sampling, fold assignment and test fixtures (no cryptographic or statistical-suite
//! claims; it only has to be reproducible). The workspace's one home for it: the FAISS
//! trainer's sample, the drift statistics and the synthetic benchmarks all draw from it.

/// Deterministic 64-bit generator.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`); the modulo bias is negligible for our sizes.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, 1)`, 24 bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Approximately standard normal (sum of 4 uniforms, rescaled): enough for fixtures.
    pub fn gaussian(&mut self) -> f32 {
        let s: f32 = (0..4).map(|_| self.next_f32()).sum();
        (s - 2.0) * 3.0f32.sqrt()
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Up to `max` distinct indices of `0..len`, chosen with `seed`, returned sorted.
pub fn sample_indices(len: usize, max: usize, seed: u64) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..len).collect();
    if len > max {
        let mut rng = SplitMix64::new(seed);
        // Partial Fisher-Yates: the first `max` slots end up a uniform sample.
        for i in 0..max {
            let j = i + rng.below(len - i);
            indices.swap(i, j);
        }
        indices.truncate(max);
        indices.sort_unstable();
    }
    indices
}
