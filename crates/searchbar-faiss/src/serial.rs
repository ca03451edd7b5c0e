//! A small, bounds-checked parser for FAISS's serialization of an
//! `IndexIVFPQ` (fourcc `IwPQ`), following `faiss/impl/index_write.cpp`
//! (FAISS 1.x as vendored by `faiss-sys` 0.7). All integers are
//! little-endian; `size_t` and `idx_t` are 8 bytes, `int` and enums 4,
//! `bool` and `char` 1. Layout:
//!
//! ```text
//! "IwPQ"
//! ivf header:   index header, nlist: size_t, nprobe: size_t,
//!               quantizer: a whole nested index (here "IxFI"/"IxF2"/"IxFl":
//!                          index header, xb: size_t count of floats, floats),
//!               direct map: type: char, array: vector<idx_t>,
//!                           [type == 2 (hashtable): vector<pair<idx_t, idx_t>>]
//! by_residual: bool, code_size: size_t
//! ProductQuantizer: d: size_t, M: size_t, nbits: size_t, centroids: vector<float>
//! inverted lists: "ilar", nlist: size_t, code_size: size_t,
//!                 list type "full" (sizes: vector<size_t>, one per list) or
//!                 "sprs" (sizes: vector<size_t> of (list_no, size) pairs),
//!                 then for each non-empty list: size * code_size code bytes,
//!                 size idx_t ids
//!
//! index header: d: int, ntotal: idx_t, dummy: idx_t, dummy: idx_t,
//!               is_trained: bool, metric_type: int, [metric_arg: float if metric_type > 1]
//! vector<T>:    count: size_t, then count items of T
//! ```
//!
//! Parsing never panics and never allocates more than the input's size
//! (every count is checked against the remaining bytes before allocating).

use crate::error::FaissError;

/// One inverted list as serialized: ids and packed PQ codes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SerializedList {
    /// Vector ids, in FAISS's order.
    pub ids: Vec<i64>,
    /// `ids.len() * code_size` bytes of (bit-packed) PQ codes.
    pub codes: Vec<u8>,
}

/// The fields of a serialized `IndexIVFPQ` this crate uses.
#[derive(Debug, Clone, PartialEq)]
pub struct SerializedIvfPq {
    /// Vector dimension.
    pub dim: usize,
    /// Number of stored vectors.
    pub ntotal: u64,
    /// Whether the index is trained.
    pub is_trained: bool,
    /// FAISS metric code (0 = inner product, 1 = L2).
    pub metric_type: u32,
    /// Number of inverted lists.
    pub nlist: usize,
    /// Default number of probes.
    pub nprobe: usize,
    /// Coarse centroids, `nlist * dim` row-major (empty when untrained).
    pub coarse_centroids: Vec<f32>,
    /// Whether codes encode residuals from the coarse centroid.
    pub by_residual: bool,
    /// Byte offset of the `by_residual` flag.
    pub by_residual_offset: usize,
    /// Bytes per (packed) PQ code.
    pub code_size: usize,
    /// PQ dimension (= `dim`).
    pub pq_dim: usize,
    /// Number of sub-quantizers.
    pub pq_m: usize,
    /// Bits per sub-quantizer code.
    pub pq_nbits: usize,
    /// PQ centroids, `[m][2^nbits][dim / m]`.
    pub pq_centroids: Vec<f32>,
    /// The `nlist` inverted lists.
    pub lists: Vec<SerializedList>,
}

/// FAISS's fourcc as it appears in the byte stream.
const fn fourcc(s: &[u8; 4]) -> [u8; 4] {
    *s
}

const IWPQ: [u8; 4] = fourcc(b"IwPQ");
const ILAR: [u8; 4] = fourcc(b"ilar");
const FULL: [u8; 4] = fourcc(b"full");
const SPRS: [u8; 4] = fourcc(b"sprs");
/// 2^40: FAISS's own sanity bound on vector lengths (READVECTOR).
const MAX_COUNT: u64 = 1 << 40;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, field: &'static str, offset: usize, reason: impl Into<String>) -> FaissError {
        FaissError::Format {
            field,
            offset,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FaissError> {
        let available = self.bytes.len() - self.pos;
        if n > available {
            return Err(self.err(
                field,
                self.pos,
                format!("truncated: need {n} bytes, {available} left"),
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], FaissError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, FaissError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn bool(&mut self, field: &'static str) -> Result<bool, FaissError> {
        let at = self.pos;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.err(field, at, format!("bool byte {v} is not 0 or 1"))),
        }
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, FaissError> {
        Ok(i32::from_le_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, FaissError> {
        Ok(i64::from_le_bytes(self.array(field)?))
    }

    fn f32(&mut self, field: &'static str) -> Result<f32, FaissError> {
        Ok(f32::from_le_bytes(self.array(field)?))
    }

    /// A `size_t` that must fit `usize` and stay below `limit`.
    fn size(&mut self, field: &'static str, limit: u64) -> Result<usize, FaissError> {
        let at = self.pos;
        let v = u64::from_le_bytes(self.array(field)?);
        if v >= limit {
            return Err(self.err(field, at, format!("value {v} >= limit {limit}")));
        }
        usize::try_from(v).map_err(|_| self.err(field, at, format!("value {v} overflows usize")))
    }

    /// A vector count whose items (`elem` bytes each) must fit in the rest.
    fn count(&mut self, field: &'static str, elem: usize) -> Result<usize, FaissError> {
        let at = self.pos;
        let n = self.size(field, MAX_COUNT)?;
        let available = self.bytes.len() - self.pos;
        match n.checked_mul(elem) {
            Some(b) if b <= available => Ok(n),
            _ => Err(self.err(
                field,
                at,
                format!("count {n} x {elem} bytes exceeds the {available} bytes left"),
            )),
        }
    }

    fn f32s(&mut self, n: usize, field: &'static str) -> Result<Vec<f32>, FaissError> {
        let bytes = self.take(n.saturating_mul(4), field)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn i64s(&mut self, n: usize, field: &'static str) -> Result<Vec<i64>, FaissError> {
        let bytes = self.take(n.saturating_mul(8), field)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }

    fn u64s(&mut self, n: usize, field: &'static str) -> Result<Vec<u64>, FaissError> {
        Ok(self.i64s(n, field)?.into_iter().map(|v| v as u64).collect())
    }

    fn expect_fourcc(&mut self, want: [u8; 4], field: &'static str) -> Result<(), FaissError> {
        let at = self.pos;
        let got = self.array::<4>(field)?;
        if got == want {
            Ok(())
        } else {
            Err(self.err(
                field,
                at,
                format!(
                    "expected fourcc {:?}, found {:?}",
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                ),
            ))
        }
    }
}

/// The common `write_index_header` fields.
struct Header {
    d: usize,
    ntotal: u64,
    is_trained: bool,
    metric_type: u32,
}

fn index_header(r: &mut Reader<'_>) -> Result<Header, FaissError> {
    let at = r.pos;
    let d = r.i32("index header d")?;
    let d = usize::try_from(d).ok().filter(|&d| d > 0).ok_or_else(|| {
        r.err(
            "index header d",
            at,
            format!("dimension {d} is not positive"),
        )
    })?;
    let at = r.pos;
    let ntotal = r.i64("index header ntotal")?;
    let ntotal = u64::try_from(ntotal).map_err(|_| {
        r.err(
            "index header ntotal",
            at,
            format!("negative count {ntotal}"),
        )
    })?;
    r.i64("index header dummy")?;
    r.i64("index header dummy")?;
    let is_trained = r.bool("index header is_trained")?;
    let at = r.pos;
    let metric = r.i32("index header metric_type")?;
    let metric_type = u32::try_from(metric).map_err(|_| {
        r.err(
            "index header metric_type",
            at,
            format!("negative metric {metric}"),
        )
    })?;
    if metric_type > 1 {
        r.f32("index header metric_arg")?;
    }
    Ok(Header {
        d,
        ntotal,
        is_trained,
        metric_type,
    })
}

/// Parses a whole serialized `IndexIVFPQ` (`IwPQ`, not `IwQR`), checking
/// shapes for consistency and that nothing trails it.
pub fn parse_ivfpq(bytes: &[u8]) -> Result<SerializedIvfPq, FaissError> {
    let mut r = Reader { bytes, pos: 0 };
    r.expect_fourcc(IWPQ, "index fourcc")?;
    let header = index_header(&mut r)?;
    let dim = header.d;
    let nlist = r.size("ivf nlist", u64::from(u32::MAX) + 1)?;
    if nlist == 0 {
        return Err(r.err("ivf nlist", r.pos - 8, "nlist is 0"));
    }
    let nprobe = r.size("ivf nprobe", u64::MAX)?;

    // Quantizer: a flat index.
    let at = r.pos;
    let q4 = r.array::<4>("quantizer fourcc")?;
    if !matches!(&q4, b"IxFI" | b"IxF2" | b"IxFl") {
        return Err(r.err(
            "quantizer fourcc",
            at,
            format!(
                "expected a flat quantizer (IxFI/IxF2/IxFl), found {:?}",
                String::from_utf8_lossy(&q4)
            ),
        ));
    }
    let qh = index_header(&mut r)?;
    if qh.d != dim {
        return Err(r.err(
            "quantizer d",
            at + 4,
            format!("quantizer dim {} != index dim {dim}", qh.d),
        ));
    }
    let at = r.pos;
    let nfloat = r.count("quantizer xb", 4)?;
    let coarse_centroids = r.f32s(nfloat, "quantizer xb")?;
    let expected_q = usize::try_from(qh.ntotal)
        .ok()
        .and_then(|n| n.checked_mul(dim));
    if expected_q != Some(nfloat) {
        return Err(r.err(
            "quantizer xb",
            at,
            format!("{nfloat} floats for {} vectors of dim {dim}", qh.ntotal),
        ));
    }
    if header.is_trained && nfloat != nlist * dim {
        return Err(r.err(
            "quantizer xb",
            at,
            format!("{nfloat} floats, expected nlist {nlist} * dim {dim}"),
        ));
    }

    // Direct map.
    let at = r.pos;
    let dm_type = r.u8("direct_map type")?;
    if dm_type > 2 {
        return Err(r.err("direct_map type", at, format!("unknown type {dm_type}")));
    }
    let n = r.count("direct_map array", 8)?;
    r.take(n * 8, "direct_map array")?;
    if dm_type == 2 {
        let n = r.count("direct_map hashtable", 16)?;
        r.take(n * 16, "direct_map hashtable")?;
    }

    let by_residual_offset = r.pos;
    let by_residual = r.bool("by_residual")?;
    let code_size = r.size("code_size", 1 << 20)?;

    // ProductQuantizer.
    let at = r.pos;
    let pq_dim = r.size("pq d", u64::from(u32::MAX))?;
    let pq_m = r.size("pq M", u64::from(u32::MAX))?;
    let pq_nbits = r.size("pq nbits", 17)?;
    if pq_dim != dim || pq_m == 0 || !pq_dim.is_multiple_of(pq_m) {
        return Err(r.err(
            "pq d/M",
            at,
            format!("pq d {pq_dim}, M {pq_m} inconsistent with index dim {dim}"),
        ));
    }
    if code_size != (pq_m * pq_nbits).div_ceil(8) {
        return Err(r.err(
            "code_size",
            by_residual_offset + 1,
            format!("code_size {code_size} != ceil(M {pq_m} * nbits {pq_nbits} / 8)"),
        ));
    }
    let at = r.pos;
    let ncent = r.count("pq centroids", 4)?;
    if ncent != (1usize << pq_nbits) * dim {
        return Err(r.err(
            "pq centroids",
            at,
            format!(
                "{ncent} floats, expected 2^nbits * d = {}",
                (1usize << pq_nbits) * dim
            ),
        ));
    }
    let pq_centroids = r.f32s(ncent, "pq centroids")?;

    // Inverted lists.
    r.expect_fourcc(ILAR, "invlists fourcc")?;
    let at = r.pos;
    let il_nlist = r.size("invlists nlist", u64::MAX)?;
    let il_code_size = r.size("invlists code_size", u64::MAX)?;
    if il_nlist != nlist || il_code_size != code_size {
        return Err(r.err(
            "invlists nlist/code_size",
            at,
            format!(
                "invlists have nlist {il_nlist}, code_size {il_code_size}; \
                 index has {nlist}, {code_size}"
            ),
        ));
    }
    let at = r.pos;
    let kind = r.array::<4>("invlists list type")?;
    let nsizes = r.count("invlists sizes", 8)?;
    let sizes_at = r.pos;
    let raw = r.u64s(nsizes, "invlists sizes")?;
    let mut sizes = vec![0usize; nlist];
    if kind == FULL {
        if raw.len() != nlist {
            return Err(r.err(
                "invlists sizes",
                sizes_at,
                format!("{} sizes for {nlist} lists", raw.len()),
            ));
        }
        for (s, &v) in sizes.iter_mut().zip(&raw) {
            *s = usize::try_from(v).map_err(|_| r.err("invlists sizes", sizes_at, "overflow"))?;
        }
    } else if kind == SPRS {
        if !raw.len().is_multiple_of(2) {
            return Err(r.err(
                "invlists sizes",
                sizes_at,
                "sparse sizes are not (list, size) pairs",
            ));
        }
        for pair in raw.chunks_exact(2) {
            let l = usize::try_from(pair[0])
                .ok()
                .filter(|&l| l < nlist)
                .ok_or_else(|| {
                    r.err(
                        "invlists sizes",
                        sizes_at,
                        format!("list {} >= nlist {nlist}", pair[0]),
                    )
                })?;
            sizes[l] = usize::try_from(pair[1])
                .map_err(|_| r.err("invlists sizes", sizes_at, "overflow"))?;
        }
    } else {
        return Err(r.err(
            "invlists list type",
            at,
            format!(
                "expected \"full\" or \"sprs\", found {:?}",
                String::from_utf8_lossy(&kind)
            ),
        ));
    }
    let mut lists = Vec::with_capacity(nlist);
    let mut total = 0u64;
    for &n in &sizes {
        let mut list = SerializedList::default();
        if n > 0 {
            let ncode = n.saturating_mul(code_size);
            list.codes = r.take(ncode, "invlists codes")?.to_vec();
            list.ids = r.i64s(n, "invlists ids")?;
        }
        total += n as u64;
        lists.push(list);
    }
    if total != header.ntotal {
        return Err(r.err(
            "invlists sizes",
            sizes_at,
            format!("lists hold {total} vectors, ntotal is {}", header.ntotal),
        ));
    }
    if r.pos != bytes.len() {
        return Err(r.err(
            "end of index",
            r.pos,
            format!("{} unexpected trailing bytes", bytes.len() - r.pos),
        ));
    }
    Ok(SerializedIvfPq {
        dim,
        ntotal: header.ntotal,
        is_trained: header.is_trained,
        metric_type: header.metric_type,
        nlist,
        nprobe,
        coarse_centroids,
        by_residual,
        by_residual_offset,
        code_size,
        pq_dim,
        pq_m,
        pq_nbits,
        pq_centroids,
        lists,
    })
}

/// Rewrites the `by_residual` flag of a serialized `IndexIVFPQ` in place
/// (FAISS's C API has no setter for it).
pub fn set_by_residual(bytes: &mut [u8], by_residual: bool) -> Result<(), FaissError> {
    let offset = parse_ivfpq(bytes)?.by_residual_offset;
    bytes[offset] = u8::from(by_residual);
    Ok(())
}

/// Unpacks FAISS's bit-packed PQ code (`ceil(m * nbits / 8)` bytes,
/// sub-quantizer `i` in bits `i * nbits ..` counted LSB first, as
/// `PQEncoderGeneric` writes them) into one byte per sub-quantizer.
pub fn unpack_code(packed: &[u8], m: usize, nbits: u32) -> Result<Vec<u8>, FaissError> {
    check_code_shape(packed.len(), m, nbits)?;
    if nbits == 8 {
        return Ok(packed.to_vec());
    }
    let mask = (1u16 << nbits) - 1;
    let nbits = nbits as usize;
    Ok((0..m)
        .map(|i| {
            let bit = i * nbits;
            let (byte, shift) = (bit / 8, bit % 8);
            let lo = u16::from(packed[byte]);
            let hi = packed.get(byte + 1).map_or(0, |&b| u16::from(b));
            // Masked to nbits <= 8 bits, so it fits a byte.
            (((lo | (hi << 8)) >> shift) & mask) as u8
        })
        .collect())
}

/// Inverse of [`unpack_code`]: packs one-byte-per-sub-quantizer codes the
/// way FAISS stores them. Errors when a code does not fit `nbits`.
pub fn pack_code(codes: &[u8], nbits: u32) -> Result<Vec<u8>, FaissError> {
    if !(1..=8).contains(&nbits) {
        return Err(FaissError::BadNbits(nbits));
    }
    if let Some(c) = codes.iter().find(|&&c| u32::from(c) >> nbits != 0) {
        return Err(FaissError::InvalidParam(format!(
            "code {c} does not fit {nbits} bits"
        )));
    }
    let nbits = nbits as usize;
    let mut out = vec![0u8; (codes.len() * nbits).div_ceil(8)];
    for (i, &c) in codes.iter().enumerate() {
        let bit = i * nbits;
        let (byte, shift) = (bit / 8, bit % 8);
        let v = u16::from(c) << shift;
        out[byte] |= v as u8;
        if let Some(next) = out.get_mut(byte + 1) {
            *next |= (v >> 8) as u8;
        }
    }
    Ok(out)
}

fn check_code_shape(len: usize, m: usize, nbits: u32) -> Result<(), FaissError> {
    if !(1..=8).contains(&nbits) {
        return Err(FaissError::BadNbits(nbits));
    }
    let expected = (m * nbits as usize).div_ceil(8);
    if len != expected {
        return Err(FaissError::InvalidParam(format!(
            "packed code of {len} bytes, expected ceil(m {m} * nbits {nbits} / 8) = {expected}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_roundtrip() {
        for nbits in 1..=8u32 {
            let m = 13;
            let codes: Vec<u8> = (0..m)
                .map(|i| ((i * 37 + 5) % (1 << nbits)) as u8)
                .collect();
            let packed = pack_code(&codes, nbits).unwrap();
            assert_eq!(packed.len(), (m * nbits as usize).div_ceil(8));
            assert_eq!(unpack_code(&packed, m, nbits).unwrap(), codes);
        }
    }

    #[test]
    fn pack_is_lsb_first() {
        // nbits 4: code i in the low nibble when i is even.
        assert_eq!(pack_code(&[1, 2, 3], 4).unwrap(), vec![0x21, 0x03]);
        // nbits 3: 0b101, 0b011, 0b111 -> bits 101 011 11|1
        assert_eq!(pack_code(&[5, 3, 7], 3).unwrap(), vec![0b1101_1101, 0b1]);
        assert!(pack_code(&[16], 4).is_err());
        assert!(unpack_code(&[0; 3], 3, 4).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            parse_ivfpq(b"IwPQ"),
            Err(FaissError::Format {
                field: "index header d",
                ..
            })
        ));
        assert!(matches!(
            parse_ivfpq(b"IxFI\0\0\0\0"),
            Err(FaissError::Format {
                field: "index fourcc",
                ..
            })
        ));
        assert!(parse_ivfpq(&[]).is_err());
    }
}
