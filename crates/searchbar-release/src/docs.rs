use crate::table::{Fetch, PartList, Parts, Want};
use crate::{FileRef, Files, ReleaseError};
use serde::{Deserialize, Serialize};

/// What a result shows for one document. Shards are JSON arrays of these, in index
/// ordinal order, so hit `doc` is record `doc % per_shard` of shard `doc / per_shard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocRecord {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub snippet: String,
}

/// Splits records into shard payloads of at most `per_shard` documents each.
pub fn shard_docs(docs: &[DocRecord], per_shard: usize) -> Vec<Vec<u8>> {
    docs.chunks(per_shard.max(1))
        .map(|chunk| serde_json::to_vec(chunk).expect("records serialize"))
        .collect()
}

/// A release's display records, shard by shard as they arrive: a page fetches only the shards
/// of the results it shows ([`DocShards::missing`]), and first their table pages where the
/// shards are paged in a table without proofs ([`crate::PartList`]); the pipeline and the CLI
/// insert them all. Each shard is verified (against its entry, or its path to its page's tree
/// root) and must hold exactly the documents its place says, so a record is never taken from
/// the wrong shard.
#[derive(Debug, Clone)]
pub struct DocShards {
    per_shard: usize,
    count: usize,
    parts: Parts,
    shards: Vec<Option<Vec<DocRecord>>>,
}

impl DocShards {
    /// The shards `files` lists for `documents` records, none loaded yet; `table_root` is the
    /// bytes of their part table's root where they are paged. The counts come from a file
    /// anyone could edit: they must agree with each other and with the listed sizes (a record
    /// is never under two bytes of JSON) before anything is sized by them.
    pub fn new(
        files: &Files,
        documents: usize,
        table_root: Option<&[u8]>,
    ) -> Result<Self, ReleaseError> {
        Self::with_parts(files, documents, Parts::new(&files.docs, table_root)?)
    }

    /// [`DocShards::new`], the part table's root to come where paged
    /// ([`DocShards::insert_table_root`]): a page can rank before it is in, and needs it only
    /// to name the shards of its results.
    pub fn awaiting_table_root(files: &Files, documents: usize) -> Result<Self, ReleaseError> {
        Self::with_parts(files, documents, Parts::awaiting_root(&files.docs)?)
    }

    fn with_parts(files: &Files, documents: usize, parts: Parts) -> Result<Self, ReleaseError> {
        let invalid = |message: String| ReleaseError::Invalid {
            file: crate::MANIFEST_NAME.into(),
            message,
        };
        let per_shard = files.docs_per_shard;
        if per_shard == 0 {
            return Err(invalid("files.docs_per_shard must be at least 1".into()));
        }
        if let Some(listed) = parts.listed_bytes() {
            if documents as u64 > listed / 2 {
                return Err(invalid(format!(
                    "data.documents = {documents} cannot fit in the {listed} bytes of its \
                     document shards"
                )));
            }
        }
        if parts.len() != documents.div_ceil(per_shard) {
            return Err(invalid(format!(
                "{} document shards listed; {documents} documents in shards of {per_shard} \
                 make {}",
                parts.len(),
                documents.div_ceil(per_shard)
            )));
        }
        // A paged list's count is bounded by its root's length, so nothing is sized by it
        // before the root is in.
        let shards = match parts.awaited_root() {
            Some(_) => Vec::new(),
            None => vec![None; parts.len()],
        };
        Ok(Self {
            per_shard,
            count: documents,
            shards,
            parts,
        })
    }

    /// Records already verified (the pipeline's evaluation, before any manifest exists).
    pub fn whole(docs: Vec<DocRecord>) -> Self {
        Self {
            per_shard: docs.len().max(1),
            count: docs.len(),
            parts: Parts::new(&PartList::Listed(Vec::new()), None).expect("an empty list"),
            shards: vec![Some(docs)],
        }
    }

    /// The shards' part table root while it has yet to come
    /// ([`DocShards::awaiting_table_root`]): until it does, [`DocShards::missing`] names nothing.
    pub fn awaited_table_root(&self) -> Option<&FileRef> {
        self.parts.awaited_root()
    }

    /// Checks and keeps the shards' part table root.
    pub fn insert_table_root(&mut self, root: &[u8]) -> Result<(), ReleaseError> {
        self.parts.insert_root(root)?;
        self.shards.resize(self.parts.len(), None);
        Ok(())
    }

    /// How many documents the release has (loaded or not).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many records shard `number` holds.
    fn expected(&self, number: usize) -> usize {
        self.per_shard
            .min(self.count.saturating_sub(number * self.per_shard))
    }

    /// Keeps what [`DocShards::missing`] asked for: a table page, or a shard (verified
    /// against its entry, parsed, and checked to hold the records of its place).
    pub fn insert(&mut self, want: Want, bytes: &[u8]) -> Result<(), ReleaseError> {
        let number = match want {
            Want::Page(page) => return self.parts.insert_page(page, bytes),
            Want::Part(number) => number,
        };
        let (path, bytes) = self.parts.verify(number, bytes)?;
        let records: Vec<DocRecord> =
            serde_json::from_slice(bytes).map_err(|e| ReleaseError::Invalid {
                file: path.clone(),
                message: e.to_string(),
            })?;
        if records.len() != self.expected(number) {
            return Err(ReleaseError::Invalid {
                file: path,
                message: format!(
                    "{} records; shard {number} of {} documents in shards of {} holds {}",
                    records.len(),
                    self.count,
                    self.per_shard,
                    self.expected(number)
                ),
            });
        }
        self.shards[number] = Some(records);
        Ok(())
    }

    /// What to fetch for the records of `docs`, each file once: the shards not at hand, and,
    /// in a table without proofs, the pages that name them where those are not at hand either
    /// (inserted first).
    pub fn missing(&self, docs: impl IntoIterator<Item = u32>) -> Vec<Fetch> {
        self.parts.wanted(
            docs.into_iter()
                .map(|d| d as usize / self.per_shard)
                .filter(|&n| matches!(self.shards.get(n), Some(None))),
        )
    }

    /// The record of document `doc`; an error naming its shard where that is not loaded.
    pub fn get(&self, doc: u32) -> Result<&DocRecord, ReleaseError> {
        let (number, at) = (doc as usize / self.per_shard, doc as usize % self.per_shard);
        match self.shards.get(number) {
            Some(Some(records)) if at < records.len() => Ok(&records[at]),
            Some(None) => Err(ReleaseError::Invalid {
                file: self
                    .parts
                    .path(number)
                    .unwrap_or_else(|| format!("document shard {number}")),
                message: "document shard not loaded".into(),
            }),
            _ => Err(ReleaseError::Invalid {
                file: crate::MANIFEST_NAME.into(),
                message: format!("document {doc} of {} does not exist", self.count),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256_hex;

    fn record(i: usize) -> DocRecord {
        DocRecord {
            id: format!("d{i}"),
            title: format!("Title {i}"),
            url: None,
            snippet: String::new(),
        }
    }

    /// Five records in shards of two, and the files listing them.
    fn release() -> (Files, Vec<Vec<u8>>) {
        let docs: Vec<DocRecord> = (0..5).map(record).collect();
        let shards = shard_docs(&docs, 2);
        let entry = |name: &str, bytes: &[u8]| crate::FileRef {
            path: format!("../../files/{name}"),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        };
        let files = Files {
            encoder: entry("e", b""),
            tokenizer: entry("t", b""),
            index: entry("i", b""),
            docs: PartList::Listed(
                shards
                    .iter()
                    .enumerate()
                    .map(|(i, s)| entry(&format!("docs-{i}.json"), s))
                    .collect(),
            ),
            docs_per_shard: 2,
            app: Vec::new(),
            rows: None,
            lists: None,
            tokens: None,
            lexical: None,
        };
        (files, shards)
    }

    #[test]
    fn records_come_from_the_shards_of_the_results_only() {
        let (files, shards) = release();
        let mut docs = DocShards::new(&files, 5, None).unwrap();
        assert_eq!(docs.len(), 5);
        let e = docs.get(3).unwrap_err().to_string();
        assert!(e.contains("docs-1.json") && e.contains("not loaded"), "{e}");
        // Documents 4, 1 and 0: shards 0 and 2, once each; shard 1 is never asked for.
        let missing: Vec<Want> = docs.missing([4, 1, 0]).iter().map(|m| m.want).collect();
        assert_eq!(missing, [Want::Part(0), Want::Part(2)]);
        docs.insert(Want::Part(0), &shards[0]).unwrap();
        docs.insert(Want::Part(2), &shards[2]).unwrap();
        assert!(docs.missing([4, 1, 0]).is_empty());
        assert_eq!(docs.get(1).unwrap().id, "d1");
        assert_eq!(docs.get(4).unwrap().id, "d4");
        let e = docs.get(5).unwrap_err().to_string();
        assert!(e.contains("document 5 of 5 does not exist"), "{e}");
        assert!(docs.missing([9]).is_empty());
    }

    #[test]
    fn a_shard_that_does_not_fit_its_place_or_its_entry_is_refused() {
        let (files, shards) = release();
        let mut docs = DocShards::new(&files, 5, None).unwrap();
        // Shard 2's bytes offered as shard 0: its hash is not shard 0's.
        assert!(docs.insert(Want::Part(0), &shards[2]).is_err());
        assert!(docs.insert(Want::Part(7), &shards[0]).is_err());
        // An entry that lists the wrong number of records for its place.
        let mut odd = files.clone();
        let three = serde_json::to_vec(&[record(0), record(1), record(2)]).unwrap();
        let PartList::Listed(listed) = &mut odd.docs else {
            unreachable!()
        };
        listed[0].bytes = three.len() as u64;
        listed[0].sha256 = sha256_hex(&three);
        let mut docs = DocShards::new(&odd, 5, None).unwrap();
        let e = docs.insert(Want::Part(0), &three).unwrap_err().to_string();
        assert!(e.contains("3 records") && e.contains("holds 2"), "{e}");
    }

    #[test]
    fn counts_that_do_not_fit_together_are_errors_not_allocations() {
        let (files, _) = release();
        for (documents, per_shard, wanted) in [
            (usize::MAX, 2, "cannot fit"),
            (7, 2, "3 document shards listed"),
            (5, 0, "at least 1"),
        ] {
            let mut f = files.clone();
            f.docs_per_shard = per_shard;
            let e = DocShards::new(&f, documents, None).unwrap_err().to_string();
            assert!(e.contains(wanted), "{e}");
        }
        let whole = DocShards::whole((0..3).map(record).collect());
        assert_eq!(whole.get(2).unwrap().id, "d2");
        assert!(whole.missing(0..3).is_empty());
    }

    #[test]
    fn paged_shards_are_checked_by_their_paths_to_the_table_root() {
        let docs: Vec<DocRecord> = (0..9).map(record).collect();
        let mut store = std::collections::BTreeMap::new();
        let mut put = |name: &str, bytes: &[u8]| {
            store.insert(name.to_string(), bytes.to_vec());
            Ok(())
        };
        // Nine records in shards of two: five shards, in pages of two.
        let list = crate::ReleaseWriter::new(&mut put)
            .put_docs(&docs, 2, Some(2))
            .unwrap();
        let read = |path: &str| store[crate::layout::artifact_name(path).unwrap()].clone();
        let (mut files, _) = release();
        files.docs = list;
        let root = read(&files.docs.root().unwrap().path);
        let e = DocShards::new(&files, 9, None).unwrap_err().to_string();
        assert!(e.contains("root was not loaded"), "{e}");
        // Or left to come: nothing is named before it, everything as above once it is in.
        let mut later = DocShards::awaiting_table_root(&files, 9).unwrap();
        assert_eq!(later.awaited_table_root(), files.docs.root());
        assert!(later.missing([8, 0]).is_empty());
        later.insert_table_root(&root).unwrap();
        assert_eq!(later.awaited_table_root(), None);
        let mut shards = DocShards::new(&files, 9, Some(&root)).unwrap();
        assert_eq!(later.missing([8, 0]), shards.missing([8, 0]));
        // Documents 8 and 0: shards 4 and 0, without their pages (each carries its path).
        let first = shards.missing([8, 0]);
        assert_eq!(
            first.iter().map(|m| m.want).collect::<Vec<_>>(),
            [Want::Part(0), Want::Part(4)]
        );
        // A shard in another's place is refused.
        let e = shards
            .insert(Want::Part(4), &read(&first[0].path))
            .unwrap_err()
            .to_string();
        assert!(e.contains("docs-4-") && e.contains("refusing"), "{e}");
        for f in &first {
            shards.insert(f.want, &read(&f.path)).unwrap();
        }
        assert!(shards.missing([8, 0]).is_empty());
        assert_eq!(shards.get(8).unwrap().id, "d8");
        let e = shards.get(3).unwrap_err().to_string();
        assert!(e.contains("docs-1-") && e.contains("not loaded"), "{e}");
        let e = shards.get(6).unwrap_err().to_string();
        assert!(e.contains("docs-3-") && e.contains("not loaded"), "{e}");
    }
}
