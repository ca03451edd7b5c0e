//! Float arithmetic for the fused ops (`attention.rs`, `layer_norm.rs`, `gelu.rs`) that gives
//! a native build and the browser's wasm the same bits.
//!
//! * [`F4`]: four f32 lanes, a simd128 register in wasm and an array elsewhere. rustc leaves these
//!   loops scalar for wasm, so the wasm build spells the vector instructions out. Every op is the
//!   IEEE operation per lane, so both representations compute the same bits.
//! * [`Lane`]: what a formula needs, for `f32` and [`F4`] alike, so one generic function
//!   serves a vector body and its scalar tail.
//! * Reductions ([`dot`], [`sum`], [`sum_sq_dev`]) add eight interleaved partial sums (two
//!   [`F4`]s) in one spelled-out order: the compiler never reorders a float sum.

use std::ops::{Add, Div, Mul, Sub};

/// What the fused ops' formulas use: IEEE operations, the same per lane on every target.
pub(crate) trait Lane:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self>
{
    fn splat(v: f32) -> Self;
    fn abs(self) -> Self;
    /// `self`'s magnitude with `sign`'s sign.
    fn copysign(self, sign: Self) -> Self;
    /// `if self < floor { floor } else { self }` (NaN stays NaN).
    fn at_least(self, floor: f32) -> Self;
    /// `2^n` for `self = 1.5 * 2^23 + n`, an integer `n` in -126..=127 (the rounding trick
    /// leaves `n` in the low bits of such a sum).
    fn pow2_of_rounded(self) -> Self;
}

/// `1.5 * 2^23`: adding it rounds a float of magnitude under 2^22 to an integer (ties to
/// even); the sum's bits minus this one's are that integer.
pub(crate) const ROUND: f32 = 12_582_912.0;

impl Lane for f32 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        f32::copysign(self, sign)
    }
    #[inline(always)]
    fn at_least(self, floor: f32) -> Self {
        if self < floor {
            floor
        } else {
            self
        }
    }
    #[inline(always)]
    fn pow2_of_rounded(self) -> Self {
        let n = self.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
        f32::from_bits((n.wrapping_add(127) as u32) << 23)
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod f4 {
    use core::arch::wasm32::*;

    /// Four f32 lanes in one simd128 register.
    #[derive(Clone, Copy)]
    pub(crate) struct F4(pub(super) v128);

    impl F4 {
        #[inline(always)]
        pub(crate) fn load(s: &[f32]) -> Self {
            Self(searchbar_simd::load_f32x4(s))
        }

        #[inline(always)]
        pub(crate) fn store(self, d: &mut [f32]) {
            searchbar_simd::store_f32x4(d, self.0)
        }

        #[inline(always)]
        pub(crate) fn to_array(self) -> [f32; 4] {
            [
                f32x4_extract_lane::<0>(self.0),
                f32x4_extract_lane::<1>(self.0),
                f32x4_extract_lane::<2>(self.0),
                f32x4_extract_lane::<3>(self.0),
            ]
        }
    }

    impl super::Lane for F4 {
        #[inline(always)]
        fn splat(v: f32) -> Self {
            Self(f32x4_splat(v))
        }
        #[inline(always)]
        fn abs(self) -> Self {
            Self(f32x4_abs(self.0))
        }
        #[inline(always)]
        fn copysign(self, sign: Self) -> Self {
            Self(v128_bitselect(sign.0, self.0, u32x4_splat(0x8000_0000)))
        }
        #[inline(always)]
        fn at_least(self, floor: f32) -> Self {
            // `pmax(a, b)` is `a < b ? b : a`.
            Self(f32x4_pmax(self.0, f32x4_splat(floor)))
        }
        #[inline(always)]
        fn pow2_of_rounded(self) -> Self {
            let n = i32x4_sub(self.0, i32x4_splat(super::ROUND.to_bits() as i32));
            Self(i32x4_shl(i32x4_add(n, i32x4_splat(127)), 23))
        }
    }

    macro_rules! op {
        ($trait:ident, $method:ident, $f:ident) => {
            impl std::ops::$trait for F4 {
                type Output = Self;
                #[inline(always)]
                fn $method(self, rhs: Self) -> Self {
                    Self($f(self.0, rhs.0))
                }
            }
        };
    }
    op!(Add, add, f32x4_add);
    op!(Sub, sub, f32x4_sub);
    op!(Mul, mul, f32x4_mul);
    op!(Div, div, f32x4_div);
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod f4 {
    use super::Lane;

    /// Four f32 lanes as an array (the compiler vectorises what it will).
    #[derive(Clone, Copy)]
    pub(crate) struct F4(pub(super) [f32; 4]);

    impl F4 {
        #[inline(always)]
        pub(crate) fn load(s: &[f32]) -> Self {
            Self(s[..4].try_into().expect("4 lanes"))
        }

        #[inline(always)]
        pub(crate) fn store(self, d: &mut [f32]) {
            d[..4].copy_from_slice(&self.0);
        }

        #[inline(always)]
        pub(crate) fn to_array(self) -> [f32; 4] {
            self.0
        }

        #[inline(always)]
        fn map(self, f: impl Fn(f32) -> f32) -> Self {
            Self(self.0.map(f))
        }

        #[inline(always)]
        fn zip(self, rhs: Self, f: impl Fn(f32, f32) -> f32) -> Self {
            Self(std::array::from_fn(|l| f(self.0[l], rhs.0[l])))
        }
    }

    impl Lane for F4 {
        #[inline(always)]
        fn splat(v: f32) -> Self {
            Self([v; 4])
        }
        #[inline(always)]
        fn abs(self) -> Self {
            self.map(f32::abs)
        }
        #[inline(always)]
        fn copysign(self, sign: Self) -> Self {
            self.zip(sign, f32::copysign)
        }
        #[inline(always)]
        fn at_least(self, floor: f32) -> Self {
            self.map(|v| v.at_least(floor))
        }
        #[inline(always)]
        fn pow2_of_rounded(self) -> Self {
            self.map(f32::pow2_of_rounded)
        }
    }

    macro_rules! op {
        ($trait:ident, $method:ident) => {
            impl std::ops::$trait for F4 {
                type Output = Self;
                #[inline(always)]
                fn $method(self, rhs: Self) -> Self {
                    self.zip(rhs, std::ops::$trait::$method)
                }
            }
        };
    }
    op!(Add, add);
    op!(Sub, sub);
    op!(Mul, mul);
    op!(Div, div);
}

pub(crate) use f4::F4;

/// Applies `f` to every value in place: four at a time, then one at a time.
#[inline(always)]
pub(crate) fn map_in_place(x: &mut [f32], f4: impl Fn(F4) -> F4, f: impl Fn(f32) -> f32) {
    let mut fours = x.chunks_exact_mut(4);
    for c in &mut fours {
        f4(F4::load(c)).store(c);
    }
    for v in fours.into_remainder() {
        *v = f(*v);
    }
}

/// `y[i] = f(y[i], x[i])` over the shorter of the two, four at a time.
#[inline(always)]
pub(crate) fn zip_in_place(
    y: &mut [f32],
    x: &[f32],
    f4: impl Fn(F4, F4) -> F4,
    f: impl Fn(f32, f32) -> f32,
) {
    let n = y.len().min(x.len());
    let (y, x) = (&mut y[..n], &x[..n]);
    let mut ys = y.chunks_exact_mut(4);
    let mut xs = x.chunks_exact(4);
    for (y, x) in (&mut ys).zip(&mut xs) {
        f4(F4::load(y), F4::load(x)).store(y);
    }
    for (y, x) in ys.into_remainder().iter_mut().zip(xs.remainder()) {
        *y = f(*y, *x);
    }
}

/// `Σ f(a[i], b[i])` over the shorter of the two slices: eight interleaved partial sums
/// (lane `l` takes every `i` with `i % 8 == l`), added as `((s0 + s4) + (s1 + s5)) + ((s2 + s6)
/// + (s3 + s7))`, then the tail in order. `f4` and `f` must be the same formula.
#[inline(always)]
fn sum_pairs(a: &[f32], b: &[f32], f4: impl Fn(F4, F4) -> F4, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [F4::splat(0.0); 2];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = a8.remainder().iter().zip(b8.remainder());
    for (x, y) in a8.zip(b8) {
        acc[0] = acc[0] + f4(F4::load(&x[..4]), F4::load(&y[..4]));
        acc[1] = acc[1] + f4(F4::load(&x[4..]), F4::load(&y[4..]));
    }
    // Lanes (s0 + s4), (s1 + s5), (s2 + s6), (s3 + s7).
    let t = (acc[0] + acc[1]).to_array();
    let mut s = (t[0] + t[1]) + (t[2] + t[3]);
    for (x, y) in tail {
        s += f(*x, *y);
    }
    s
}

/// `a · b` over the shorter of the two.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum_pairs(a, b, |x, y| x * y, |x, y| x * y)
}

/// `Σ x[i]`.
#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    sum_pairs(x, x, |v, _| v, |v, _| v)
}

/// `Σ (x[i] - mean)²`.
#[inline(always)]
pub(crate) fn sum_sq_dev(x: &[f32], mean: f32) -> f32 {
    let m = F4::splat(mean);
    sum_pairs(
        x,
        x,
        |v, _| (v - m) * (v - m),
        |v, _| (v - mean) * (v - mean),
    )
}

/// The bits of `x` folded into one number (FNV-style), for tests that check that two
/// targets compute the same floats.
#[cfg(test)]
pub(crate) fn fingerprint(x: &[f32]) -> u64 {
    x.iter().fold(0u64, |h, v| {
        (h ^ v.to_bits() as u64).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn sums_every_element_whatever_the_length() {
        for n in [0, 1, 7, 8, 9, 16, 33, 384] {
            // Small integers: every order of summing them is exact.
            let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
            let want: usize = (0..n).map(|i| i % 7).sum();
            assert_eq!(sum(&x), want as f32, "n = {n}");
            let want: usize = (0..n).map(|i| (i % 7) * (i % 7)).sum();
            assert_eq!(dot(&x, &x), want as f32, "n = {n}");
            assert_eq!(sum_sq_dev(&x, 0.0), want as f32, "n = {n}");
        }
    }

    /// The vector lanes and the scalar formula agree bit for bit, on whichever target runs
    /// this (the wasm run is the one where they are different code).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn lanes_equal_the_scalar_ops() {
        let vals = [
            -0.0,
            0.0,
            1.5,
            -2.25,
            f32::MIN_POSITIVE,
            -1e-40,
            3.4e38,
            -7.0e-3,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -100.0,
            42.0,
        ];
        for a in vals.chunks_exact(4) {
            for b in vals.chunks_exact(4) {
                let (x, y) = (F4::load(a), F4::load(b));
                // Any NaN counts as one (which NaN an op returns is the hardware's choice).
                let bits = |v: f32| {
                    if v.is_nan() {
                        f32::NAN.to_bits()
                    } else {
                        v.to_bits()
                    }
                };
                let lanes = |v: F4| v.to_array().map(bits);
                let each = |f: fn(f32, f32) -> f32| -> [u32; 4] {
                    std::array::from_fn(|l| bits(f(a[l], b[l])))
                };
                assert_eq!(lanes(x + y), each(|p, q| p + q));
                assert_eq!(lanes(x - y), each(|p, q| p - q));
                assert_eq!(lanes(x * y), each(|p, q| p * q));
                assert_eq!(lanes(x / y), each(|p, q| p / q));
                assert_eq!(lanes(x.copysign(y)), each(f32::copysign));
                assert_eq!(lanes(Lane::abs(x)), each(|p, _| p.abs()));
                assert_eq!(lanes(x.at_least(-87.0)), each(|p, _| p.at_least(-87.0)));
            }
        }
        for n in [-126, -87, -1, 0, 1, 127] {
            let t = F4::splat(ROUND + n as f32);
            let want = 2f32.powi(n);
            assert_eq!(t.pow2_of_rounded().to_array(), [want; 4], "2^{n}");
            assert_eq!((ROUND + n as f32).pow2_of_rounded(), want, "2^{n}");
        }
    }
}
