//! The model supply against a real pip, offline: wheels come from a local wheelhouse folder.

use searchbar_model::{fetch, verify, FetchOptions, FetchOutcome, ModelDir, ModelError, ModelLock};
use searchbar_release::sha256_hex;
use std::io::Write;
use std::path::Path;

const MODEL: &[u8] = b"not really onnx, but bytes with a pinned hash";
const TOKENIZER: &[u8] = b"{\"pretend\": \"tokenizer\"}";

/// Writes a minimal wheel `tiny_model-1.0.0-py3-none-any.whl` holding `members`.
fn write_wheel(dir: &Path, members: &[(&str, &[u8])]) -> String {
    let path = dir.join("tiny_model-1.0.0-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    let record = "tiny_model-1.0.0.dist-info";
    let mut all: Vec<(String, Vec<u8>)> = members
        .iter()
        .map(|(n, b)| (n.to_string(), b.to_vec()))
        .collect();
    all.push((
        format!("{record}/METADATA"),
        b"Metadata-Version: 2.1\nName: tiny-model\nVersion: 1.0.0\n".to_vec(),
    ));
    all.push((
        format!("{record}/WHEEL"),
        b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_vec(),
    ));
    all.push((format!("{record}/RECORD"), Vec::new()));
    for (name, bytes) in all {
        zip.start_file(name, opts).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
    sha256_hex(&std::fs::read(&path).unwrap())
}

fn lock(wheel_sha: &str, model_sha: &str) -> ModelLock {
    let text = format!(
        r#"name = "tiny"
max_tokens = 16
pooling = "mean"
[[wheels]]
requirement = "tiny-model==1.0.0"
sha256 = "{wheel_sha}"
files = [
  {{ member = "tiny_model/model.onnx", path = "model.onnx", sha256 = "{model_sha}" }},
  {{ member = "tiny_model/tokenizer.json", path = "tokenizer.json", sha256 = "{}" }},
]
"#,
        sha256_hex(TOKENIZER)
    );
    ModelLock::parse(&text, "test lock").unwrap()
}

fn offline(house: &Path) -> FetchOptions {
    FetchOptions {
        wheelhouse: Some(house.to_path_buf()),
        ..Default::default()
    }
}

#[test]
fn fetches_verifies_and_then_does_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let house = tmp.path().join("house");
    std::fs::create_dir(&house).unwrap();
    let sha = write_wheel(
        &house,
        &[
            ("tiny_model/model.onnx", MODEL),
            ("tiny_model/tokenizer.json", TOKENIZER),
        ],
    );
    let lock = lock(&sha, &sha256_hex(MODEL));
    let cache = tmp.path().join("cache");

    let outcome = fetch(&lock, &cache, &offline(&house)).unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Fetched {
            wheels: vec!["tiny-model==1.0.0".into()]
        }
    );
    assert_eq!(std::fs::read(cache.join("model.onnx")).unwrap(), MODEL);
    assert!(verify(&lock, &cache).unwrap().is_empty());
    // No staging folder or temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // Complete cache: a no-op that does not even need pip.
    let no_pip = FetchOptions {
        python: "/nonexistent/python3".into(),
        wheelhouse: None,
    };
    assert_eq!(
        fetch(&lock, &cache, &no_pip).unwrap(),
        FetchOutcome::AlreadyComplete
    );

    // A corrupted file is reported, then repaired by the next fetch.
    std::fs::write(cache.join("model.onnx"), b"tampered").unwrap();
    let problems = verify(&lock, &cache).unwrap();
    assert!(
        problems.len() == 1 && problems[0].contains("model.onnx has sha256"),
        "{problems:?}"
    );
    assert!(matches!(
        fetch(&lock, &cache, &offline(&house)).unwrap(),
        FetchOutcome::Fetched { .. }
    ));
    assert_eq!(std::fs::read(cache.join("model.onnx")).unwrap(), MODEL);
}

#[test]
fn missing_pip_says_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let lock = lock(&"0".repeat(64), &sha256_hex(MODEL));
    let opts = FetchOptions {
        python: "/nonexistent/python3".into(),
        wheelhouse: None,
    };
    let err = fetch(&lock, tmp.path(), &opts).unwrap_err();
    assert!(matches!(err, ModelError::PipMissing { .. }), "{err}");
    assert!(
        err.to_string().contains("apt-get install python3-pip"),
        "{err}"
    );
}

#[test]
fn a_wheel_with_another_hash_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let house = tmp.path().join("house");
    std::fs::create_dir(&house).unwrap();
    write_wheel(
        &house,
        &[
            ("tiny_model/model.onnx", MODEL),
            ("tiny_model/tokenizer.json", TOKENIZER),
        ],
    );
    let lock = lock(&"a".repeat(64), &sha256_hex(MODEL));
    let err = fetch(&lock, &tmp.path().join("cache"), &offline(&house)).unwrap_err();
    assert!(matches!(err, ModelError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("tiny-model==1.0.0"), "{err}");
}

#[test]
fn a_member_with_another_hash_is_refused_and_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let house = tmp.path().join("house");
    std::fs::create_dir(&house).unwrap();
    let sha = write_wheel(
        &house,
        &[
            ("tiny_model/model.onnx", b"other bytes"),
            ("tiny_model/tokenizer.json", TOKENIZER),
        ],
    );
    let lock = lock(&sha, &sha256_hex(MODEL));
    let cache = tmp.path().join("cache");
    let err = fetch(&lock, &cache, &offline(&house)).unwrap_err();
    assert!(matches!(err, ModelError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("tiny_model/model.onnx"), "{err}");
    assert!(
        !cache.join("model.onnx").exists(),
        "a bad file must never reach the cache"
    );
}

#[test]
fn a_wheel_without_the_locked_member_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let house = tmp.path().join("house");
    std::fs::create_dir(&house).unwrap();
    let sha = write_wheel(&house, &[("tiny_model/model.onnx", MODEL)]);
    let lock = lock(&sha, &sha256_hex(MODEL));
    let err = fetch(&lock, &tmp.path().join("cache"), &offline(&house)).unwrap_err();
    assert!(
        matches!(err, ModelError::MissingMember { ref member, .. } if member == "tiny_model/tokenizer.json"),
        "{err}"
    );
}

#[test]
fn an_unreachable_package_names_the_offline_way_out() {
    let tmp = tempfile::tempdir().unwrap();
    let house = tmp.path().join("empty-house");
    std::fs::create_dir(&house).unwrap();
    let lock = lock(&"0".repeat(64), &sha256_hex(MODEL));
    let err = fetch(&lock, &tmp.path().join("cache"), &offline(&house)).unwrap_err();
    assert!(matches!(err, ModelError::Download { .. }), "{err}");
    assert!(err.to_string().contains("--wheelhouse"), "{err}");
}

#[test]
fn local_model_directories_are_checked_and_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let err = ModelDir::open(dir).unwrap_err().to_string();
    assert!(err.contains("no model.onnx"), "{err}");
    std::fs::create_dir(dir.join("onnx")).unwrap();
    std::fs::write(dir.join("onnx/model.onnx"), MODEL).unwrap();
    let err = ModelDir::open(dir).unwrap_err().to_string();
    assert!(err.contains("no tokenizer.json"), "{err}");
    std::fs::write(dir.join("tokenizer.json"), TOKENIZER).unwrap();
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 512}"#,
    )
    .unwrap();
    std::fs::create_dir(dir.join("1_Pooling")).unwrap();
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        r#"{"pooling_mode_cls_token": true}"#,
    )
    .unwrap();
    let m = ModelDir::open(dir).unwrap();
    assert_eq!(m.onnx, dir.join("onnx/model.onnx"));
    assert_eq!(m.max_tokens, Some(512));
    assert_eq!(m.pooling.as_deref(), Some("cls"));
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}"#,
    )
    .unwrap();
    let err = ModelDir::open(dir).unwrap_err().to_string();
    assert!(err.contains("2 pooling modes are on (mean, cls)"), "{err}");
    std::fs::write(dir.join("sentence_bert_config.json"), "{oops").unwrap();
    let err = ModelDir::open(dir).unwrap_err().to_string();
    assert!(err.contains("sentence_bert_config.json"), "{err}");
}
