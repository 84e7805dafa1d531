//! The `embed` command as a user runs it: the run directory round trip, and every kind of bad
//! input giving a message with file, line and field and the documented exit code.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use distillguard::run::Run;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_distillguard"));
    c.env("DISTILLGUARD_MODEL_DIR", common::model_dir());
    c
}

fn embed(input: &Path, out: &Path, extra: &[&str]) -> Output {
    bin()
        .args(["embed", "--quiet", "--device", "cpu", "--input"])
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// A small simulated log from permissive corpora (tests/fixtures/README.md).
fn example() -> PathBuf {
    common::fixture("planted.jsonl")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const OK: &str = r#"{"account_id":"a1","timestamp":"2026-01-02T03:04:05Z","prompt":"hello there"}"#;

#[test]
fn embed_run_dir_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = embed(&example(), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "stdout must stay clean");

    let run = Run::open(&out).unwrap();
    let m = &run.manifest;
    let input_text = std::fs::read_to_string(example()).unwrap();
    let prompts: Vec<(String, String)> = input_text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["account_id"].as_str().unwrap().to_string(),
                v["prompt"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let distinct: std::collections::HashSet<&str> =
        prompts.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(m.input.requests, prompts.len() as u64);
    assert_eq!(m.embeddings.rows, distinct.len() as u64);
    assert_eq!(
        m.embeddings.duplicate_requests,
        (prompts.len() - distinct.len()) as u64
    );
    assert_eq!(m.embeddings.dim, 384);
    assert_eq!(m.model.sha256, distillguard::embed::MODEL_SHA256);
    assert_eq!(m.input.sha256.len(), 64);
    assert!(
        m.embeddings.truncated_prompts >= 1,
        "the fixture has prompts over 256 tokens"
    );
    assert_eq!(
        m.embeddings.tokens,
        run.rows.tokens.iter().map(|&t| t as u64).sum::<u64>()
    );

    // Every request maps to the row holding its prompt's embedding, in input order.
    let table: Vec<_> = run.requests().unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(table.len(), prompts.len());
    let emb = common::embedder(256);
    let all = run.embeddings.to_vec2::<f32>().unwrap();
    for (i, rec) in table.iter().enumerate().step_by(37) {
        assert_eq!(rec.line, i as u64 + 1);
        assert_eq!(rec.account_id, prompts[i].0);
        let direct = emb.embed(&[prompts[i].1.as_str()]).unwrap();
        let c = common::cosine(&direct, &all[rec.row as usize]);
        assert!(c > 0.99999, "request {i}: cosine {c}");
    }
    // Identical prompts share one row.
    let mut row_of = std::collections::HashMap::new();
    for (rec, (_, p)) in table.iter().zip(&prompts) {
        assert_eq!(*row_of.entry(p.clone()).or_insert(rec.row), rec.row);
    }
}

#[test]
fn f16_output_matches_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(
        tmp.path(),
        "in.jsonl",
        &format!("{OK}\n{}\n", OK.replace("hello there", "¿qué tal? 你好")),
    );
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    assert!(embed(&input, &a, &[]).status.success());
    assert!(embed(&input, &b, &["--out-dtype", "f16"]).status.success());
    let (ra, rb) = (Run::open(&a).unwrap(), Run::open(&b).unwrap());
    assert_eq!(rb.manifest.embeddings.dtype, "f16");
    let (va, vb) = (
        ra.embeddings.to_vec2::<f32>().unwrap(),
        rb.embeddings.to_vec2::<f32>().unwrap(),
    );
    for (x, y) in va.iter().zip(&vb) {
        assert!(common::cosine(x, y) > 0.9999);
    }
}

#[test]
fn bad_line_fails_with_file_line_field_and_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(
        tmp.path(),
        "in.jsonl",
        &format!("{OK}\n{OK}\n{{\"account_id\":\"a\",\"timestamp\":\"noon\",\"prompt\":\"x\"}}\n"),
    );
    let o = embed(&input, &tmp.path().join("run"), &[]);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(
        e.contains("in.jsonl:3: timestamp: not an RFC 3339 timestamp"),
        "{e}"
    );
    assert!(
        !tmp.path().join("run/manifest.json").exists(),
        "no manifest for a failed run"
    );
}

#[test]
fn skip_invalid_reports_skipped_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(
        tmp.path(),
        "in.jsonl",
        &format!("{OK}\n{{oops\n{OK}\n{{\"account_id\":\"a\"}}\n"),
    );
    let out = tmp.path().join("run");
    let o = bin()
        .args(["embed", "--device", "cpu", "--skip-invalid", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("skipped 2 invalid lines (lines 2, 4)"),
        "{}",
        stderr(&o)
    );
    let m = Run::open(&out).unwrap().manifest;
    assert_eq!(m.input.requests, 2);
    assert_eq!(m.input.skipped.count, 2);
    assert_eq!(m.input.skipped.first[0].line, 2);
    assert!(m.input.skipped.first[1]
        .error
        .contains("prompt: missing required field"));
}

#[test]
fn empty_and_missing_inputs_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = write(tmp.path(), "empty.jsonl", "");
    let o = embed(&empty, &tmp.path().join("r1"), &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("empty.jsonl: empty file: no requests"),
        "{}",
        stderr(&o)
    );
    let o = embed(&tmp.path().join("nope.jsonl"), &tmp.path().join("r2"), &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("nope.jsonl: no such file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn model_problems_fail_with_exit_4() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "in.jsonl", &format!("{OK}\n"));
    let real = common::model_dir();

    // A missing file is named.
    let broken = tmp.path().join("no-weights");
    std::fs::create_dir(&broken).unwrap();
    std::fs::copy(real.join("config.json"), broken.join("config.json")).unwrap();
    std::fs::copy(real.join("tokenizer.json"), broken.join("tokenizer.json")).unwrap();
    let o = embed(
        &input,
        &tmp.path().join("r"),
        &["--model-dir", broken.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("no-weights/model.safetensors: missing"),
        "{}",
        stderr(&o)
    );

    // A config whose vocabulary disagrees with the tokenizer.
    let mismatch = tmp.path().join("mismatch");
    std::fs::create_dir(&mismatch).unwrap();
    let cfg = std::fs::read_to_string(real.join("config.json"))
        .unwrap()
        .replace("30522", "250002");
    std::fs::write(mismatch.join("config.json"), cfg).unwrap();
    std::fs::copy(real.join("tokenizer.json"), mismatch.join("tokenizer.json")).unwrap();
    std::os::unix::fs::symlink(
        real.join("model.safetensors"),
        mismatch.join("model.safetensors"),
    )
    .unwrap();
    let o = embed(
        &input,
        &tmp.path().join("r"),
        &["--model-dir", mismatch.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("tokenizer and model do not match"),
        "{}",
        stderr(&o)
    );

    // A config whose shapes disagree with the weights.
    let shapes = tmp.path().join("shapes");
    std::fs::create_dir(&shapes).unwrap();
    let cfg = std::fs::read_to_string(real.join("config.json"))
        .unwrap()
        .replace("\"intermediate_size\": 1536", "\"intermediate_size\": 2048");
    std::fs::write(shapes.join("config.json"), cfg).unwrap();
    std::fs::copy(real.join("tokenizer.json"), shapes.join("tokenizer.json")).unwrap();
    std::os::unix::fs::symlink(
        real.join("model.safetensors"),
        shapes.join("model.safetensors"),
    )
    .unwrap();
    let o = embed(
        &input,
        &tmp.path().join("r"),
        &["--model-dir", shapes.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("weights do not fit"), "{}", stderr(&o));
}

#[test]
fn usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "in.jsonl", &format!("{OK}\n"));
    let o = embed(&input, &tmp.path().join("r"), &["--max-seq-len", "600"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "the longest prompt, 600 tokens, must be between 2 and the model's 512 positions"
        ),
        "{}",
        stderr(&o)
    );
    let o = bin()
        .args(["embed", "--device", "tpu", "--input", "x", "--out", "y"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown device \"tpu\""),
        "{}",
        stderr(&o)
    );
    // An incident weight with no base to add the incident to.
    let labels = write(tmp.path(), "labels.jsonl", "");
    let o = bin()
        .args(["train", "--device", "cpu", "--input"])
        .arg(&input)
        .arg("--labels")
        .arg(&labels)
        .args(["--out", "m", "--incident-weight", "3"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("without --base"), "{}", stderr(&o));
    // Fine-tuning settings, --refit or --warm, with no base to fine-tune or refit.
    for flags in [
        &["--fine-tune-epochs", "3"][..],
        &["--refit"][..],
        &["--warm"][..],
    ] {
        let o = bin()
            .args(["train", "--device", "cpu", "--input"])
            .arg(&input)
            .arg("--labels")
            .arg(&labels)
            .args(["--out", "m"])
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{flags:?}");
        assert!(stderr(&o).contains("without --base"), "{}", stderr(&o));
    }
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_fails_with_exit_5() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "in.jsonl", &format!("{OK}\n"));
    let o = bin()
        .args(["embed", "--device", "cuda", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(tmp.path().join("r"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert!(
        stderr(&o).contains("built without the `cuda` feature"),
        "{}",
        stderr(&o)
    );
}

/// Shingles are written by `embed` as it goes; a run directory without them (embedded by an
/// older build) gets the same file from one pass over the log when `score` reuses it.
#[test]
fn shingles_from_embed_and_from_the_upgrade_pass_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = embed(&example(), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = Run::open(&out).unwrap();
    assert_eq!(run.shingles.rows() as u64, run.manifest.embeddings.rows);
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(example())
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        run.shingles.row(0),
        distillguard::shingles::shingles(first["prompt"].as_str().unwrap()).as_slice()
    );
    let file = out.join(distillguard::run::SHINGLES);
    let written = std::fs::read(&file).unwrap();
    for broken in [None, Some(&b"not a safetensors file"[..])] {
        match broken {
            None => std::fs::remove_file(&file).unwrap(),
            Some(bytes) => std::fs::write(&file, bytes).unwrap(),
        }
        let o = bin()
            .args(["score", "--device", "cpu", "--no-summary", "--input"])
            .arg(example())
            .arg("--run-dir")
            .arg(&out)
            .arg("--out")
            .arg(tmp.path().join("scores.jsonl"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("reusing embeddings"), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("adding prompt shingles"),
            "{}",
            stderr(&o)
        );
        assert!(std::fs::read(&file).unwrap() == written);
    }
}
