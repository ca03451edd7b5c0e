//! Sentence pooling over the encoder's token vectors.

/// Attention-masked mean of `hidden` (`[len, dim]`, row-major) over the tokens whose mask is 1.
///
/// A mask of all zeros yields the zero vector instead of dividing by zero.
pub fn masked_mean(hidden: &[f32], mask: &[i64], dim: usize) -> Vec<f32> {
    let mut sum = vec![0f32; dim];
    let mut count = 0f32;
    for (row, &m) in hidden.chunks_exact(dim).zip(mask) {
        if m != 0 {
            count += 1.0;
            sum.iter_mut().zip(row).for_each(|(s, x)| *s += x);
        }
    }
    let inv = 1.0 / count.max(1e-9);
    sum.iter_mut().for_each(|s| *s *= inv);
    sum
}

/// Scales `v` to unit length in place; a zero vector stays zero (sentence-transformers clamps
/// the norm at 1e-12 the same way).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_ignores_masked_tokens() {
        // Two real tokens (1,2) and (3,4); the padded (100,100) must not count.
        let hidden = [1.0, 2.0, 3.0, 4.0, 100.0, 100.0];
        assert_eq!(masked_mean(&hidden, &[1, 1, 0], 2), vec![2.0, 3.0]);
    }

    #[test]
    fn empty_mask_gives_zero_not_nan() {
        assert_eq!(masked_mean(&[5.0, 5.0], &[0], 2), vec![0.0, 0.0]);
    }

    #[test]
    fn normalize_makes_unit_length_and_keeps_zero() {
        let mut v = [3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = [0.0, 0.0];
        l2_normalize(&mut z);
        assert_eq!(z, [0.0, 0.0]);
    }
}
