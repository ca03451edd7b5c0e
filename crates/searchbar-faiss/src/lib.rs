//! Trains the searchbar's IVF-PQ index with real FAISS (statically linked
//! through `faiss-sys`) and exports it into `searchbar-index` structures,
//! which the pipeline and the browser then search with pure Rust.
//!
//! Native only (FAISS is C++). Everything is inner product over unit
//! vectors, like the rest of the searchbar.
//!
//! * [`train_ivfpq`]: train + add + export in one call.
//! * [`FaissIvfPq`]: the trained FAISS index itself, for exporting, FAISS's
//!   own IVF-PQ search (to compare against) and standalone codes.
//! * [`exact_search`]: FAISS `IndexFlatIP` ground truth.
//! * [`serial`]: a bounds-checked parser of FAISS's `IndexIVFPQ`
//!   serialization (where the PQ codebook is read from).
//!
//! # Determinism
//!
//! Training is a pure function of `(vectors, params)` as far as FAISS
//! allows: the training sample (when [`IvfPqParams::train_sample`] is set)
//! is drawn with a SplitMix64 seeded by [`IvfPqParams::seed`]; the coarse
//! k-means runs through `faiss::Clustering` with that seed (folded to 32
//! bits); the PQ k-means uses FAISS's fixed default seed (1234), which the
//! C API does not expose. FAISS k-means is deterministic for a given seed
//! (its OpenMP reductions are partitioned by centroid, not by thread), so
//! retraining gives bit-identical indexes on one machine; other CPUs or
//! BLAS builds may round differently.

mod error;
mod ffi;
pub mod serial;

pub use error::FaissError;

use faiss::index::IndexImpl;
use faiss::{FlatIndex, Idx, Index as _, MetricType};
use searchbar_index::{Int8Store, InvertedList, IvfPq, PqCodebook, MAX_DIM};

/// IVF-PQ training parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfPqParams {
    /// Number of inverted lists (coarse centroids).
    pub nlist: usize,
    /// Number of PQ sub-quantizers; must divide the dimension.
    pub m: usize,
    /// Bits per sub-quantizer code, `1..=8`.
    pub nbits: u32,
    /// Encode residuals from the coarse centroid (FAISS's default, and
    /// usually more accurate) rather than the vectors themselves.
    pub by_residual: bool,
    /// Seed of the training sample and of the coarse k-means.
    pub seed: u64,
    /// Train on at most this many vectors (a seeded random sample); `None`
    /// trains on all of them. All vectors are added either way.
    pub train_sample: Option<usize>,
}

impl Default for IvfPqParams {
    /// `nlist = 256, m = 48, nbits = 8, by_residual = true, seed = 1234`,
    /// training on everything. `m = 48` suits 384-d MiniLM embeddings
    /// (8 dims per sub-quantizer, 48 bytes per doc).
    fn default() -> Self {
        Self {
            nlist: 256,
            m: 48,
            nbits: 8,
            by_residual: true,
            seed: 1234,
            train_sample: None,
        }
    }
}

impl IvfPqParams {
    /// The FAISS `index_factory` description, e.g. `IVF256,PQ48x8np`
    /// (`np`: no polysemous training, which is slow and unused here).
    pub fn factory_string(&self) -> String {
        format!("IVF{},PQ{}x{}np", self.nlist, self.m, self.nbits)
    }

    /// Centroids per sub-quantizer, `2^nbits` (for valid `nbits`).
    pub fn ksub(&self) -> usize {
        1usize << self.nbits.min(8)
    }
}

/// Trains an IVF-PQ index with FAISS on `vectors` (`n * dim` row-major,
/// unit norm), adds all of them with ids `0..n`, and exports it (coarse
/// centroids, PQ codebook, lists in FAISS's order, int8 re-ranking store of
/// the original vectors) as a searchbar [`IvfPq`].
pub fn train_ivfpq(dim: usize, vectors: &[f32], params: &IvfPqParams) -> Result<IvfPq, FaissError> {
    FaissIvfPq::train(dim, vectors, params)?.export(vectors)
}

/// Exact top-`k` by inner product with FAISS `IndexFlatIP`: for each query
/// (`queries` is `nq * dim` row-major), `(doc, score)` best first.
pub fn exact_search(
    dim: usize,
    vectors: &[f32],
    queries: &[f32],
    k: usize,
) -> Result<Vec<Vec<(u32, f32)>>, FaissError> {
    let n = count_vectors(dim, vectors, "vectors")?;
    let nq = count_vectors(dim, queries, "queries")?;
    if nq == 0 {
        return Ok(Vec::new());
    }
    if k == 0 || n == 0 {
        return Ok(vec![Vec::new(); nq]);
    }
    let mut index = FlatIndex::new_ip(dim_u32(dim)?).map_err(FaissError::native("IndexFlatIP"))?;
    index.add(vectors).map_err(FaissError::native("add"))?;
    let k = k.min(n);
    let res = index
        .search(queries, k)
        .map_err(FaissError::native("search"))?;
    collect_hits(&res.labels, &res.distances, nq, k)
}

/// A trained, populated FAISS `IndexIVFPQ` (inner product), kept alive so
/// it can be exported, searched by FAISS itself, and compared with the
/// exported index.
#[derive(Debug)]
pub struct FaissIvfPq {
    index: IndexImpl,
    dim: usize,
    params: IvfPqParams,
}

impl FaissIvfPq {
    /// Validates `params`, builds `IVF{nlist},PQ{m}x{nbits}np` with
    /// `index_factory`, trains it (see the crate docs on determinism) and
    /// adds all `vectors` with ids `0..n`.
    pub fn train(dim: usize, vectors: &[f32], params: &IvfPqParams) -> Result<Self, FaissError> {
        let n = count_vectors(dim, vectors, "vectors")?;
        if n > u32::MAX as usize {
            return Err(FaissError::TooManyVectors(n));
        }
        if params.m == 0 || params.m > dim || !dim.is_multiple_of(params.m) {
            return Err(FaissError::MDoesNotDivideDim { m: params.m, dim });
        }
        if !(1..=8).contains(&params.nbits) {
            return Err(FaissError::BadNbits(params.nbits));
        }
        let sample = training_sample(dim, vectors, params)?;
        let train: &[f32] = sample.as_deref().unwrap_or(vectors);
        let n_train = train.len() / dim;
        if params.nlist == 0 || params.nlist > n_train {
            return Err(FaissError::BadNlist {
                nlist: params.nlist,
                n_train,
            });
        }
        if n_train < params.ksub() {
            return Err(FaissError::TrainingSetTooSmall {
                n_train,
                ksub: params.ksub(),
            });
        }

        let mut index = faiss::index_factory(
            dim_u32(dim)?,
            params.factory_string(),
            MetricType::InnerProduct,
        )
        .map_err(FaissError::native("index_factory"))?;
        // Coarse k-means with our seed (spherical, as IndexIVF does for IP).
        ffi::train_coarse(&index, train, params.nlist, true, fold_seed(params.seed))?;
        if !params.by_residual {
            // No C API setter: flip the flag in FAISS's own serialization of
            // the (not yet PQ-trained) index and load it back.
            let mut bytes = ffi::write_index_bytes(&index)?;
            serial::set_by_residual(&mut bytes, false)?;
            index = ffi::read_index_bytes(&bytes)?;
        }
        index.train(train).map_err(FaissError::native("train"))?;
        let ids: Vec<Idx> = (0..n as u64).map(Idx::new).collect();
        index
            .add_with_ids(vectors, &ids)
            .map_err(FaissError::native("add_with_ids"))?;
        Ok(Self {
            index,
            dim,
            params: *params,
        })
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The parameters it was trained with.
    pub fn params(&self) -> &IvfPqParams {
        &self.params
    }

    /// Number of vectors added.
    pub fn len(&self) -> usize {
        ffi::ntotal(&self.index)
    }

    /// Whether no vectors were added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The underlying `faiss` crate index.
    pub fn faiss_index(&self) -> &IndexImpl {
        &self.index
    }

    /// FAISS's serialization of the index (`faiss::write_index`).
    pub fn to_faiss_bytes(&self) -> Result<Vec<u8>, FaissError> {
        ffi::write_index_bytes(&self.index)
    }

    /// The serialized index, parsed.
    pub fn serialized(&self) -> Result<serial::SerializedIvfPq, FaissError> {
        serial::parse_ivfpq(&self.to_faiss_bytes()?)
    }

    /// Coarse centroids from the quantizer (`nlist * dim`).
    pub fn coarse_centroids(&self) -> Result<Vec<f32>, FaissError> {
        ffi::coarse_centroids(&self.index)
    }

    /// Bytes of the little-endian list-number prefix of standalone codes
    /// (`IndexIVF::coarse_code_size`: bytes needed for `nlist - 1`).
    pub fn coarse_code_size(&self) -> usize {
        let mut nl = self.params.nlist.saturating_sub(1);
        let mut bytes = 0;
        while nl > 0 {
            bytes += 1;
            nl >>= 8;
        }
        bytes
    }

    /// Bytes of a packed PQ code, `ceil(m * nbits / 8)`.
    pub fn pq_code_size(&self) -> usize {
        (self.params.m * self.params.nbits as usize).div_ceil(8)
    }

    /// Bytes per standalone code (`faiss_Index_sa_code_size`).
    pub fn sa_code_size(&self) -> Result<usize, FaissError> {
        ffi::sa_code_size(&self.index)
    }

    /// FAISS standalone codes (`faiss_Index_sa_encode`): per vector, the
    /// list number then the packed PQ code.
    pub fn sa_encode(&self, vectors: &[f32]) -> Result<Vec<u8>, FaissError> {
        count_vectors(self.dim, vectors, "vectors")?;
        ffi::sa_encode(&self.index, vectors)
    }

    /// FAISS's reconstruction from standalone codes (`faiss_Index_sa_decode`;
    /// includes the coarse centroid when `by_residual`).
    ///
    /// List numbers are checked here first: FAISS checks them inside an
    /// OpenMP region, where its exception would abort the process.
    pub fn sa_decode(&self, codes: &[u8]) -> Result<Vec<f32>, FaissError> {
        let size = self.sa_code_size()?;
        if size == 0 || !codes.len().is_multiple_of(size) {
            return Err(FaissError::InvalidParam(format!(
                "{} code bytes is not a multiple of sa_code_size {size}",
                codes.len()
            )));
        }
        for (i, code) in codes.chunks_exact(size).enumerate() {
            let (list, _) = self.split_sa_code(code)?;
            if list >= self.params.nlist {
                return Err(FaissError::InvalidParam(format!(
                    "code {i}: list number {list} >= nlist {}",
                    self.params.nlist
                )));
            }
        }
        ffi::sa_decode(&self.index, codes)
    }

    /// Splits a standalone code into (list number, unpacked PQ code).
    pub fn split_sa_code(&self, code: &[u8]) -> Result<(usize, Vec<u8>), FaissError> {
        let prefix = self.coarse_code_size();
        if code.len() != prefix + self.pq_code_size() {
            return Err(FaissError::InvalidParam(format!(
                "standalone code of {} bytes, expected {}",
                code.len(),
                prefix + self.pq_code_size()
            )));
        }
        let list = code[..prefix]
            .iter()
            .rev()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let pq = serial::unpack_code(&code[prefix..], self.params.m, self.params.nbits)?;
        Ok((list, pq))
    }

    /// FAISS's own IVF-PQ search with `nprobe` probes: per query
    /// (`nq * dim` row-major), `(doc, score)` best first.
    pub fn search(
        &mut self,
        queries: &[f32],
        k: usize,
        nprobe: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>, FaissError> {
        let nq = count_vectors(self.dim, queries, "queries")?;
        if nq == 0 {
            return Ok(Vec::new());
        }
        if k == 0 || self.is_empty() {
            return Ok(vec![Vec::new(); nq]);
        }
        ffi::set_nprobe(&mut self.index, nprobe.clamp(1, self.params.nlist))?;
        let res = self
            .index
            .search(queries, k)
            .map_err(FaissError::native("search"))?;
        collect_hits(&res.labels, &res.distances, nq, k)
    }

    /// Exports into a searchbar [`IvfPq`]. `vectors` must be the vectors
    /// that were added (they fill the int8 re-ranking store and are
    /// re-encoded with `sa_encode`).
    ///
    /// Coarse centroids come from the quantizer, list ids from the
    /// inverted lists, codes from `sa_encode` (list-number prefix stripped,
    /// bits unpacked) and the PQ codebook and `by_residual` from FAISS's
    /// serialization; the serialized centroids, ids and codes are checked
    /// against the C API's, and each code's list number against the list
    /// holding its id.
    pub fn export(&self, vectors: &[f32]) -> Result<IvfPq, FaissError> {
        let dim = self.dim;
        let n = count_vectors(dim, vectors, "vectors")?;
        let p = &self.params;
        let ser = self.serialized()?;
        if ser.dim != dim
            || ser.nlist != p.nlist
            || ser.pq_m != p.m
            || ser.pq_nbits != p.nbits as usize
        {
            return Err(FaissError::Export(format!(
                "serialized index has dim {}, nlist {}, M {}, nbits {}; expected {dim}, {}, {}, {}",
                ser.dim, ser.nlist, ser.pq_m, ser.pq_nbits, p.nlist, p.m, p.nbits
            )));
        }
        if !ser.is_trained || ser.metric_type != 0 {
            return Err(FaissError::Export(format!(
                "serialized index: is_trained {}, metric {} (want trained, inner product = 0)",
                ser.is_trained, ser.metric_type
            )));
        }
        if ser.ntotal != n as u64 {
            return Err(FaissError::Export(format!(
                "FAISS holds {} vectors but {n} were given",
                ser.ntotal
            )));
        }

        let nlist = ffi::nlist(&self.index)?;
        if nlist != p.nlist {
            return Err(FaissError::Export(format!(
                "FAISS index has nlist {nlist}, expected {}",
                p.nlist
            )));
        }
        let centroids = self.coarse_centroids()?;
        if centroids.len() != p.nlist * dim {
            return Err(FaissError::Export(format!(
                "quantizer holds {} floats, expected nlist * dim = {}",
                centroids.len(),
                p.nlist * dim
            )));
        }
        if centroids != ser.coarse_centroids {
            return Err(FaissError::Export(
                "quantizer centroids differ from the serialized ones".into(),
            ));
        }

        let prefix = self.coarse_code_size();
        let sa_size = self.sa_code_size()?;
        let pq_size = self.pq_code_size();
        if sa_size != prefix + pq_size || ser.code_size != pq_size {
            return Err(FaissError::Export(format!(
                "sa_code_size {sa_size} != list prefix {prefix} + PQ code {pq_size} \
                 (serialized code_size {})",
                ser.code_size
            )));
        }
        let sa = self.sa_encode(vectors)?;

        let mut lists = Vec::with_capacity(p.nlist);
        let mut seen = vec![false; n];
        for (l, sl) in ser.lists.iter().enumerate() {
            let ids = ffi::list_ids(&self.index, l)?;
            if ids != sl.ids {
                return Err(FaissError::Export(format!(
                    "list {l}: C API ids differ from the serialized ones"
                )));
            }
            let mut list = InvertedList {
                ids: Vec::with_capacity(ids.len()),
                codes: Vec::with_capacity(ids.len() * p.m),
            };
            for (j, &id) in ids.iter().enumerate() {
                let doc = usize::try_from(id).ok().filter(|&d| d < n).ok_or_else(|| {
                    FaissError::Export(format!("list {l}: id {id} out of 0..{n}"))
                })?;
                if std::mem::replace(&mut seen[doc], true) {
                    return Err(FaissError::Export(format!("id {doc} is in two lists")));
                }
                let code = &sa[doc * sa_size..(doc + 1) * sa_size];
                let (code_list, pq_code) = self.split_sa_code(code)?;
                if code_list != l {
                    return Err(FaissError::Export(format!(
                        "doc {doc} is stored in list {l} but sa_encode assigns it to list {code_list}"
                    )));
                }
                if code[prefix..] != sl.codes[j * pq_size..(j + 1) * pq_size] {
                    return Err(FaissError::Export(format!(
                        "doc {doc}: sa_encode code differs from the stored code"
                    )));
                }
                list.ids.push(doc as u32);
                list.codes.extend_from_slice(&pq_code);
            }
            lists.push(list);
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            return Err(FaissError::Export(format!("doc {missing} is in no list")));
        }

        let pq = PqCodebook::new(dim, p.m, p.nbits, ser.pq_centroids)?;
        let store = Int8Store::quantize(dim, vectors)?;
        Ok(IvfPq::from_parts(
            dim,
            centroids,
            pq,
            lists,
            ser.by_residual,
            store,
        )?)
    }
}

/// Checks `dim` and that `data` is a whole number of finite vectors;
/// returns how many.
fn count_vectors(dim: usize, data: &[f32], what: &'static str) -> Result<usize, FaissError> {
    if dim == 0 || dim > MAX_DIM {
        return Err(FaissError::Dimension(format!(
            "dim {dim} not in 1..={MAX_DIM}"
        )));
    }
    if !data.len().is_multiple_of(dim) {
        return Err(FaissError::Dimension(format!(
            "{what}: {} floats is not a multiple of dim {dim}",
            data.len()
        )));
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(FaissError::NonFinite(what));
    }
    Ok(data.len() / dim)
}

fn dim_u32(dim: usize) -> Result<u32, FaissError> {
    u32::try_from(dim).map_err(|_| FaissError::Dimension(format!("dim {dim} too large")))
}

/// FAISS seeds are C `int`s: fold the 64-bit seed (small seeds unchanged).
fn fold_seed(seed: u64) -> i32 {
    ((seed ^ (seed >> 32)) as u32) as i32
}

/// The seeded training subset, or `None` to train on everything.
fn training_sample(
    dim: usize,
    vectors: &[f32],
    params: &IvfPqParams,
) -> Result<Option<Vec<f32>>, FaissError> {
    let n = vectors.len() / dim;
    let Some(s) = params.train_sample else {
        return Ok(None);
    };
    if s >= n {
        return Ok(None);
    }
    if s == 0 {
        return Err(FaissError::InvalidParam("train_sample is 0".into()));
    }
    // Sorted indices, so the sample keeps corpus order.
    let picked = searchbar_index::rng::sample_indices(n, s, params.seed);
    let mut out = Vec::with_capacity(s * dim);
    for i in picked {
        out.extend_from_slice(&vectors[i * dim..(i + 1) * dim]);
    }
    Ok(Some(out))
}

/// FAISS result arrays (`nq * k`, `-1` labels for missing) to hit lists.
fn collect_hits(
    labels: &[Idx],
    distances: &[f32],
    nq: usize,
    k: usize,
) -> Result<Vec<Vec<(u32, f32)>>, FaissError> {
    if labels.len() != nq * k || distances.len() != nq * k {
        return Err(FaissError::Export(format!(
            "search returned {} labels / {} distances for {nq} x {k}",
            labels.len(),
            distances.len()
        )));
    }
    labels
        .chunks_exact(k)
        .zip(distances.chunks_exact(k))
        .map(|(ls, ds)| {
            ls.iter()
                .zip(ds)
                .filter_map(|(l, &d)| l.get().map(|id| (id, d)))
                .map(|(id, d)| {
                    u32::try_from(id)
                        .map(|id| (id, d))
                        .map_err(|_| FaissError::Export(format!("label {id} exceeds u32")))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faiss_exceptions_become_errors_with_their_message() {
        match ffi::read_index_bytes(b"not a faiss index") {
            Err(FaissError::Faiss { op, message }) => {
                assert_eq!(op, "read_index");
                assert!(message.contains("not recognized"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn seed_1234_reproduces_faiss_default_training() {
        let dim = 16;
        let vectors = searchbar_index::testing::clustered_unit_vectors(2000, dim, 20, 0.7, 3);
        let params = IvfPqParams {
            nlist: 16,
            m: 4,
            nbits: 4,
            seed: 1234, // ClusteringParameters' default seed
            ..IvfPqParams::default()
        };
        let ours = FaissIvfPq::train(dim, &vectors, &params).unwrap();
        // FAISS alone: IndexIVF::train runs its own coarse k-means.
        let mut plain = faiss::index_factory(
            dim as u32,
            params.factory_string(),
            MetricType::InnerProduct,
        )
        .unwrap();
        plain.train(&vectors).unwrap();
        assert_eq!(
            ffi::coarse_centroids(&plain).unwrap(),
            ours.coarse_centroids().unwrap()
        );
        plain.add(&vectors).unwrap();
        let ser = ours.serialized().unwrap();
        let plain_ser = serial::parse_ivfpq(&ffi::write_index_bytes(&plain).unwrap()).unwrap();
        assert_eq!(plain_ser.pq_centroids, ser.pq_centroids);
        assert_eq!(plain_ser.lists, ser.lists);
    }

    #[test]
    fn seed_folding_keeps_small_seeds() {
        assert_eq!(fold_seed(1234), 1234);
        assert_ne!(fold_seed(1 << 32), fold_seed(0));
    }
}
