//! The only module that calls the FAISS C API directly (through
//! `faiss-sys`), for what the `faiss` crate does not wrap: IVF internals,
//! standalone codes, seeded clustering, in-memory (de)serialization.
//!
//! Every function here is safe to call: pointers come from live
//! [`IndexImpl`]s borrowed for the duration of the call, and every buffer
//! handed to FAISS is allocated here with the size FAISS documents.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::CStr;
use std::os::raw::{c_int, c_void};
use std::ptr;

use faiss::index::{FromInnerPtr, IndexImpl};
use faiss_sys::{
    faiss_ClusteringParameters_init, faiss_Clustering_free, faiss_Clustering_new_with_params,
    faiss_Clustering_train, faiss_CustomIOReader_free, faiss_CustomIOReader_new,
    faiss_CustomIOWriter_free, faiss_CustomIOWriter_new, faiss_IndexFlat_cast, faiss_IndexFlat_xb,
    faiss_IndexIVF_cast, faiss_IndexIVF_get_list_size, faiss_IndexIVF_invlists_get_ids,
    faiss_IndexIVF_nlist, faiss_IndexIVF_quantizer, faiss_IndexIVF_set_nprobe, faiss_Index_d,
    faiss_Index_ntotal, faiss_Index_sa_code_size, faiss_Index_sa_decode, faiss_Index_sa_encode,
    faiss_get_last_error, faiss_read_index_custom, faiss_write_index_custom, idx_t,
    FaissClusteringParameters, FaissIOReader, FaissIOWriter, FaissIndex, FaissIndexIVF,
};

use crate::error::FaissError;

/// Text of FAISS's last error on this thread (FAISS keeps it thread-local).
fn last_error() -> String {
    // SAFETY: takes no arguments; returns null or a NUL-terminated string
    // that stays valid until the next FAISS call on this thread, and we copy
    // it out before making any.
    let msg = unsafe { faiss_get_last_error() };
    if msg.is_null() {
        return "unknown error (no message from FAISS)".to_owned();
    }
    // SAFETY: non-null, NUL-terminated, valid until the next FAISS call (above).
    unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned()
}

/// Maps a FAISS C API return code to a result.
fn check(code: c_int, op: &'static str) -> Result<(), FaissError> {
    if code == 0 {
        Ok(())
    } else {
        Err(FaissError::Faiss {
            op,
            message: format!("{} (code {code})", last_error()),
        })
    }
}

fn to_idx(n: usize, what: &str) -> Result<idx_t, FaissError> {
    idx_t::try_from(n).map_err(|_| FaissError::InvalidParam(format!("{what} = {n} too large")))
}

fn to_int(n: usize, what: &str) -> Result<c_int, FaissError> {
    c_int::try_from(n).map_err(|_| FaissError::InvalidParam(format!("{what} = {n} too large")))
}

/// The index as an `IndexIVF`, or an error when it is not one.
fn ivf(index: &IndexImpl) -> Result<*mut FaissIndexIVF, FaissError> {
    // SAFETY: `inner_ptr` is the live index owned by `index`; the cast is a
    // checked `dynamic_cast` that returns null for other index types.
    let p = unsafe { faiss_IndexIVF_cast(index.inner_ptr()) };
    if p.is_null() {
        Err(FaissError::Export("FAISS index is not an IndexIVF".into()))
    } else {
        Ok(p)
    }
}

/// Vector dimension of any index.
pub(crate) fn dim(index: &IndexImpl) -> usize {
    // SAFETY: live index pointer owned by `index`.
    let d = unsafe { faiss_Index_d(index.inner_ptr()) };
    usize::try_from(d).unwrap_or(0)
}

/// Number of vectors stored in any index.
pub(crate) fn ntotal(index: &IndexImpl) -> usize {
    // SAFETY: live index pointer owned by `index`.
    let n = unsafe { faiss_Index_ntotal(index.inner_ptr()) };
    usize::try_from(n).unwrap_or(0)
}

/// Number of inverted lists of an IVF index.
pub(crate) fn nlist(index: &IndexImpl) -> Result<usize, FaissError> {
    let p = ivf(index)?;
    // SAFETY: `p` is a valid IndexIVF pointer derived from `index`, alive for this call.
    Ok(unsafe { faiss_IndexIVF_nlist(p) })
}

/// Sets the number of probed lists of an IVF index.
pub(crate) fn set_nprobe(index: &mut IndexImpl, nprobe: usize) -> Result<(), FaissError> {
    let p = ivf(index)?;
    // SAFETY: valid IndexIVF pointer; we hold `&mut` so no concurrent search reads it.
    unsafe { faiss_IndexIVF_set_nprobe(p, nprobe) };
    Ok(())
}

/// The IVF's coarse quantizer (owned by the IVF index).
fn quantizer(index: &IndexImpl) -> Result<*mut FaissIndex, FaissError> {
    let p = ivf(index)?;
    // SAFETY: valid IndexIVF pointer; returns the quantizer it owns (or null).
    let q = unsafe { faiss_IndexIVF_quantizer(p) };
    if q.is_null() {
        Err(FaissError::Export("IVF index has no quantizer".into()))
    } else {
        Ok(q)
    }
}

/// Coarse centroids (`nlist * dim` floats) from the IVF's flat quantizer.
pub(crate) fn coarse_centroids(index: &IndexImpl) -> Result<Vec<f32>, FaissError> {
    let q = quantizer(index)?;
    // SAFETY: `q` is the live quantizer; checked dynamic_cast, null if not flat.
    let flat = unsafe { faiss_IndexFlat_cast(q) };
    if flat.is_null() {
        return Err(FaissError::Export(
            "IVF quantizer is not an IndexFlat".into(),
        ));
    }
    let mut xb: *mut f32 = ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: `flat` is valid; FAISS writes its data pointer and float count.
    unsafe { faiss_IndexFlat_xb(flat, &mut xb, &mut len) };
    if len == 0 {
        return Ok(Vec::new());
    }
    if xb.is_null() {
        return Err(FaissError::Export("quantizer returned no data".into()));
    }
    // SAFETY: FAISS guarantees `len` floats at `xb`, owned by the quantizer,
    // which `index` keeps alive while we copy them.
    Ok(unsafe { std::slice::from_raw_parts(xb, len) }.to_vec())
}

/// Ids of inverted list `l` (in FAISS's order).
pub(crate) fn list_ids(index: &IndexImpl, l: usize) -> Result<Vec<i64>, FaissError> {
    let p = ivf(index)?;
    // SAFETY: valid IndexIVF pointer.
    let nlist = unsafe { faiss_IndexIVF_nlist(p) };
    if l >= nlist {
        return Err(FaissError::Export(format!("list {l} >= nlist {nlist}")));
    }
    // SAFETY: valid pointer, `l < nlist`.
    let size = unsafe { faiss_IndexIVF_get_list_size(p, l) };
    let mut ids = vec![0 as idx_t; size];
    if size > 0 {
        // SAFETY: `ids` holds exactly `get_list_size(l)` entries, which is
        // what FAISS copies.
        unsafe { faiss_IndexIVF_invlists_get_ids(p, l, ids.as_mut_ptr()) };
    }
    Ok(ids)
}

/// Bytes per standalone code (`faiss_Index_sa_code_size`).
pub(crate) fn sa_code_size(index: &IndexImpl) -> Result<usize, FaissError> {
    let mut size = 0usize;
    // SAFETY: live index; FAISS writes one usize.
    check(
        unsafe { faiss_Index_sa_code_size(index.inner_ptr(), &mut size) },
        "sa_code_size",
    )?;
    Ok(size)
}

/// Standalone codes of `x` (`n * dim` floats), `n * sa_code_size` bytes.
pub(crate) fn sa_encode(index: &IndexImpl, x: &[f32]) -> Result<Vec<u8>, FaissError> {
    let d = dim(index);
    if d == 0 || !x.len().is_multiple_of(d) {
        return Err(FaissError::Dimension(format!(
            "{} floats is not a multiple of dim {d}",
            x.len()
        )));
    }
    let n = x.len() / d;
    let size = sa_code_size(index)?;
    let mut out = vec![0u8; n * size];
    if n == 0 {
        return Ok(out);
    }
    // SAFETY: `x` holds `n * d` floats and `out` `n * sa_code_size` bytes,
    // exactly the buffer sizes sa_encode reads and writes.
    let code = unsafe {
        faiss_Index_sa_encode(
            index.inner_ptr(),
            to_idx(n, "n")?,
            x.as_ptr(),
            out.as_mut_ptr(),
        )
    };
    check(code, "sa_encode")?;
    Ok(out)
}

/// Vectors decoded from standalone codes (`n * sa_code_size` bytes).
pub(crate) fn sa_decode(index: &IndexImpl, codes: &[u8]) -> Result<Vec<f32>, FaissError> {
    let size = sa_code_size(index)?;
    if size == 0 || !codes.len().is_multiple_of(size) {
        return Err(FaissError::InvalidParam(format!(
            "{} code bytes is not a multiple of sa_code_size {size}",
            codes.len()
        )));
    }
    let n = codes.len() / size;
    let mut out = vec![0f32; n * dim(index)];
    if n == 0 {
        return Ok(out);
    }
    // SAFETY: `codes` holds `n * sa_code_size` bytes and `out` `n * d` floats.
    // FAISS validates the list number prefix (throws, caught by the C API).
    let code = unsafe {
        faiss_Index_sa_decode(
            index.inner_ptr(),
            to_idx(n, "n")?,
            codes.as_ptr(),
            out.as_mut_ptr(),
        )
    };
    check(code, "sa_decode")?;
    Ok(out)
}

/// Trains the IVF's (empty, flat) coarse quantizer with FAISS k-means as
/// `IndexIVF::train` would (`niter = 10`, spherical for inner product, other
/// `ClusteringParameters` at their defaults) but with our `seed`. The IVF's
/// own `train` then sees a trained quantizer with `nlist` entries and only
/// trains the PQ.
pub(crate) fn train_coarse(
    index: &IndexImpl,
    x: &[f32],
    nlist: usize,
    spherical: bool,
    seed: i32,
) -> Result<(), FaissError> {
    let d = dim(index);
    if d == 0 || !x.len().is_multiple_of(d) {
        return Err(FaissError::Dimension(format!(
            "{} floats is not a multiple of dim {d}",
            x.len()
        )));
    }
    let n = x.len() / d;
    let q = quantizer(index)?;
    let mut cp = FaissClusteringParameters {
        niter: 0,
        nredo: 0,
        verbose: 0,
        spherical: 0,
        int_centroids: 0,
        update_index: 0,
        frozen_centroids: 0,
        min_points_per_centroid: 0,
        max_points_per_centroid: 0,
        seed: 0,
        decode_block_size: 0,
    };
    // SAFETY: fills the plain C struct we own with FAISS's defaults.
    unsafe { faiss_ClusteringParameters_init(&mut cp) };
    cp.niter = 10; // Level1Quantizer's default
    cp.spherical = c_int::from(spherical);
    cp.seed = seed;
    let mut clus = ptr::null_mut();
    // SAFETY: out-pointer to a local; `cp` is initialized above.
    check(
        unsafe {
            faiss_Clustering_new_with_params(
                &mut clus,
                to_int(d, "dim")?,
                to_int(nlist, "nlist")?,
                &cp,
            )
        },
        "Clustering::new",
    )?;
    // SAFETY: `clus` was just created; `x` holds `n * d` floats; `q` is the
    // live quantizer of `index`, which k-means resets and fills with the
    // final centroids.
    let code = unsafe { faiss_Clustering_train(clus, to_idx(n, "n")?, x.as_ptr(), q) };
    // SAFETY: `clus` was created above and is not used afterwards.
    unsafe { faiss_Clustering_free(clus) };
    check(code, "Clustering::train")
}

thread_local! {
    /// Sink of [`write_cb`]; FAISS writes synchronously on the calling thread.
    static WRITE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Source of [`read_cb`]: bytes and read position.
    static READ_BUF: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

/// `IOWriter` callback: appends `size * nitems` bytes, returns items written.
unsafe extern "C" fn write_cb(ptr: *const c_void, size: usize, nitems: usize) -> usize {
    let Some(total) = size.checked_mul(nitems) else {
        return 0;
    };
    if total == 0 {
        return nitems;
    }
    if ptr.is_null() {
        return 0;
    }
    // SAFETY: FAISS's IOWriter contract: `ptr` points to `size * nitems`
    // readable bytes for the duration of the call.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), total) };
    WRITE_BUF.with(|b| b.borrow_mut().extend_from_slice(bytes));
    nitems
}

/// `IOReader` callback: copies up to `nitems` whole items, returns how many.
unsafe extern "C" fn read_cb(ptr: *mut c_void, size: usize, nitems: usize) -> usize {
    if size == 0 || nitems == 0 {
        return nitems;
    }
    if ptr.is_null() {
        return 0;
    }
    READ_BUF.with(|b| {
        let mut state = b.borrow_mut();
        let (ref bytes, ref mut pos) = *state;
        let remaining = bytes.len().saturating_sub(*pos);
        let items = nitems.min(remaining / size);
        let len = items * size;
        // SAFETY: FAISS's IOReader contract: `ptr` has room for
        // `size * nitems >= len` bytes; the source range is in bounds.
        unsafe { ptr::copy_nonoverlapping(bytes[*pos..].as_ptr(), ptr.cast::<u8>(), len) };
        *pos += len;
        items
    })
}

/// FAISS's own serialization of `index` (`faiss::write_index`), in memory.
pub(crate) fn write_index_bytes(index: &IndexImpl) -> Result<Vec<u8>, FaissError> {
    let mut writer = ptr::null_mut();
    // SAFETY: out-pointer to a local; `write_cb` matches the C signature.
    check(
        unsafe { faiss_CustomIOWriter_new(&mut writer, Some(write_cb)) },
        "CustomIOWriter::new",
    )?;
    WRITE_BUF.with(|b| b.borrow_mut().clear());
    // SAFETY: live index; `writer` is a CustomIOWriter, whose IOWriter base
    // is at offset 0 (the C API itself casts this way).
    let code =
        unsafe { faiss_write_index_custom(index.inner_ptr(), writer.cast::<FaissIOWriter>(), 0) };
    // SAFETY: created above, not used afterwards.
    unsafe { faiss_CustomIOWriter_free(writer) };
    let bytes = WRITE_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    check(code, "write_index")?;
    Ok(bytes)
}

/// Loads an index from FAISS's serialization (`faiss::read_index`).
pub(crate) fn read_index_bytes(bytes: &[u8]) -> Result<IndexImpl, FaissError> {
    let mut reader = ptr::null_mut();
    // SAFETY: out-pointer to a local; `read_cb` matches the C signature.
    check(
        unsafe { faiss_CustomIOReader_new(&mut reader, Some(read_cb)) },
        "CustomIOReader::new",
    )?;
    READ_BUF.with(|b| *b.borrow_mut() = (bytes.to_vec(), 0));
    let mut out = ptr::null_mut();
    // SAFETY: `reader` is a CustomIOReader (IOReader base at offset 0);
    // out-pointer to a local.
    let code = unsafe { faiss_read_index_custom(reader.cast::<FaissIOReader>(), 0, &mut out) };
    // SAFETY: created above, not used afterwards.
    unsafe { faiss_CustomIOReader_free(reader) };
    READ_BUF.with(|b| *b.borrow_mut() = (Vec::new(), 0));
    check(code, "read_index")?;
    if out.is_null() {
        return Err(FaissError::Export("read_index returned no index".into()));
    }
    // SAFETY: `out` is a freshly allocated index we now own exclusively;
    // IndexImpl frees it on drop.
    Ok(unsafe { IndexImpl::from_inner_ptr(out) })
}
