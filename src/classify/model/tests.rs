use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::dataset::*;
use super::ensemble::*;
use super::folds::*;
use super::mlp::*;
use super::*;
use crate::campaign::BEHAVIOUR_PREFIX;
use rand_distr::{Distribution, StandardNormal};

/// `n` accounts x `d` features; positives come in campaigns of 5 whose means are shifted
/// along the first few features, so the classes are separable.
fn synthetic(n: usize, d: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut data = Dataset {
        features: (0..d).map(|j| format!("f{j}")).collect(),
        ..Dataset::default()
    };
    for i in 0..n {
        let pos = i % 4 == 0;
        for j in 0..d {
            let noise: f32 = StandardNormal.sample(&mut rng);
            let shift = if pos && j < 4 { 3.0 } else { 0.0 };
            data.x.push(noise + shift + j as f32);
        }
        data.y.push(pos as u8);
        data.names.push(format!("acct{i}"));
        data.groups.push(if pos {
            format!("campaign{}", i / 20)
        } else {
            format!("acct{i}")
        });
    }
    data
}

/// Small and fast; no blind rounds, which only their own test needs (the synthetic features
/// have no behaviour vector).
fn quick() -> TrainOptions {
    TrainOptions {
        epochs: 15,
        seed: 7,
        repeats: 2,
        blind_rounds: 0,
        ..TrainOptions::default()
    }
}

#[test]
fn loss_weights_balance_classes_and_groups() {
    // Positives: campaign c (2 accounts) and d (1); negatives: two accounts.
    let weights = |gw: &BTreeMap<String, f32>| {
        balance_weights(&[1, 1, 1, 0, 0], &["c", "c", "d", "a", "b"], gw)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let w = weights(&BTreeMap::new());
    assert_eq!(w, vec![0.625, 0.625, 1.25, 1.25, 1.25]);
    // Each class carries half, each group half of its class, the mean is 1.
    assert_eq!(w.iter().sum::<f32>(), 5.0);
    // An incident group weighted 3 takes three shares of its class; the class still
    // carries half of the loss.
    let w = weights(&BTreeMap::from([("d".to_string(), 3.0)]));
    assert_eq!(w, vec![0.3125, 0.3125, 1.875, 1.25, 1.25]);
    assert_eq!(w[..3].iter().sum::<f32>(), 2.5);
}

/// The L2 penalty shrinks the weights it is put on; a model file written before the option
/// existed reads as trained without it, not with today's default.
#[test]
fn the_l2_penalty_shrinks_the_weights() {
    let data = synthetic(600, 12, 3);
    let norm = |m: &Model| -> f32 {
        m.members
            .iter()
            .flatten()
            .map(|l| {
                l.weight()
                    .sqr()
                    .and_then(|w| w.sum_all())
                    .and_then(|w| w.to_scalar::<f32>())
                    .unwrap()
            })
            .sum()
    };
    // A larger step than the default so that 40 epochs leave the initial weights behind.
    let opts = TrainOptions {
        epochs: 40,
        patience: 0,
        lr: 1e-2,
        ..quick()
    };
    let free = train(
        &data,
        &TrainOptions {
            l2: 0.0,
            ..opts.clone()
        },
    )
    .unwrap();
    let held = train(&data, &TrainOptions { l2: 0.1, ..opts }).unwrap();
    assert!(
        norm(&held) < 0.5 * norm(&free),
        "sum of squared weights {} with the penalty, {} without",
        norm(&held),
        norm(&free)
    );
    assert_eq!(held.training.options.l2, 0.1);
    let old: TrainOptions = serde_json::from_str(r#"{"hidden": [16, 8], "seed": 3}"#).unwrap();
    assert_eq!((old.l2, old.seed), (0.0, 3));
}

#[test]
fn trains_separable_data_to_high_auroc() {
    let data = synthetic(2000, 12, 1);
    let model = train(&data, &quick()).unwrap();
    let auroc = model.metrics.auroc.unwrap();
    assert!(auroc > 0.99, "validation AUROC {auroc}");
    let t = &model.training;
    assert_eq!((t.rows, t.folds, t.members.len()), (2000, 5, 10));
    // Every row is scored out of fold exactly once per repeat, each fold holding both
    // classes, and the repeats deal the folds differently.
    for r in 0..2 {
        let round: Vec<&MemberSummary> = t.members.iter().filter(|m| m.repeat == r).collect();
        assert_eq!(round.len(), 5);
        assert_eq!(round.iter().map(|m| m.held_rows).sum::<usize>(), 2000);
    }
    assert_ne!(
        assign_folds(&data, 5, 7).of,
        assign_folds(&data, 5, 7 + REPEAT_SEED_STRIDE).of
    );
    assert!(t
        .members
        .iter()
        .all(|m| m.held_positives > 0 && m.held_positives < m.held_rows));
    assert!(model.threshold.is_finite());
    // The threshold keeps the out-of-fold FPR at or under the target.
    assert!(model.metrics.fpr_at_threshold.unwrap() <= 0.01);
}

#[test]
fn folds_keep_groups_whole_and_hold_both_classes() {
    let data = synthetic(400, 4, 2);
    let f = assign_folds(&data, 5, 7);
    assert_eq!((f.k, f.pos_groups, f.neg_groups), (5, 20, 300));
    let mut fold_of_group: HashMap<&str, usize> = HashMap::new();
    for (g, &fold) in data.groups.iter().zip(&f.of) {
        assert_eq!(
            *fold_of_group.entry(g).or_insert(fold),
            fold,
            "group {g} split"
        );
    }
    for fold in 0..5 {
        let rows: Vec<usize> = (0..data.len()).filter(|&i| f.of[i] == fold).collect();
        let pos = rows.iter().filter(|&&i| data.y[i] == 1).count();
        assert!(pos > 0 && pos < rows.len(), "fold {fold}");
    }
    // Fewer positive groups than folds: fewer folds.
    assert_eq!(assign_folds(&data, 50, 7).k, 20);
    // Row order does not change the assignment.
    let mut rev = data.clone();
    rev.groups.reverse();
    rev.y.reverse();
    let r = assign_folds(&rev, 5, 7);
    for (i, g) in data.groups.iter().enumerate() {
        let j = data.len() - 1 - i;
        assert_eq!(&rev.groups[j], g);
        assert_eq!(r.of[j], f.of[i]);
    }
}

#[test]
fn split_keeps_groups_whole() {
    let data = synthetic(400, 4, 2);
    let all: Vec<usize> = (0..data.len()).collect();
    let split = split_groups(&data, &all, 0.25, 7);
    assert!(split.both_classes_each_side(&data.y));
    let train_groups: HashSet<&str> = split
        .train
        .iter()
        .map(|&i| data.groups[i].as_str())
        .collect();
    assert!(split
        .held
        .iter()
        .all(|&i| !train_groups.contains(data.groups[i].as_str())));
    assert_eq!(split.train.len() + split.held.len(), data.len());
    // About a quarter of each kind of group is held out.
    let held_groups: HashSet<&str> = split
        .held
        .iter()
        .map(|&i| data.groups[i].as_str())
        .collect();
    assert_eq!(held_groups.len(), 5 + 75);
    // A subset splits among its own rows only.
    let inner = split_groups(&data, &split.train, 0.2, 10);
    assert!(inner.held.iter().all(|i| split.train.contains(i)));
    assert!(inner.both_classes_each_side(&data.y));
    // Row order does not change the split.
    let mut rev = data.clone();
    rev.x = data.x.chunks(4).rev().flatten().copied().collect();
    rev.y.reverse();
    rev.names.reverse();
    rev.groups.reverse();
    let rev_split = split_groups(&rev, &all, 0.25, 7);
    let mut a: Vec<&str> = split.held.iter().map(|&i| data.names[i].as_str()).collect();
    let mut b: Vec<&str> = rev_split
        .held
        .iter()
        .map(|&i| rev.names[i].as_str())
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn early_stopping_uses_training_groups_only() {
    let data = synthetic(800, 8, 8);
    let opts = TrainOptions {
        epochs: 300,
        patience: 3,
        ..quick()
    };
    let model = train(&data, &opts).unwrap();
    let t = &model.training;
    for m in &t.members {
        // Early stopping watches part of the member's training folds, never its held fold.
        assert!(m.early_stop_rows > 0 && m.fit_rows + m.early_stop_rows + m.held_rows == 800);
        let best = m.best_epoch.unwrap();
        assert!(m.epochs_run < 300 && m.epochs_run == best + 3, "{m:?}");
        assert!(m.early_stop_loss.unwrap().is_finite());
    }
    // The folds are the same with or without early stopping.
    let off = train(
        &data,
        &TrainOptions {
            epochs: 5,
            patience: 0,
            ..quick()
        },
    )
    .unwrap();
    for (m0, m) in off.training.members.iter().zip(&t.members) {
        assert_eq!(
            (m0.held_rows, m0.held_positives),
            (m.held_rows, m.held_positives)
        );
        assert_eq!((m0.early_stop_rows, m0.fit_rows), (0, 800 - m0.held_rows));
        assert_eq!((m0.epochs_run, m0.best_epoch), (5, None));
    }
}

#[test]
fn same_seed_same_predictions() {
    let data = synthetic(600, 8, 3);
    let a = train(&data, &quick()).unwrap();
    let b = train(&data, &quick()).unwrap();
    assert_eq!(a.predict(&data.x).unwrap(), b.predict(&data.x).unwrap());
    assert_eq!(a.threshold, b.threshold);
    let c = train(&data, &TrainOptions { seed: 8, ..quick() }).unwrap();
    assert_ne!(a.predict(&data.x).unwrap(), c.predict(&data.x).unwrap());
}

#[test]
fn save_load_round_trip() {
    let data = synthetic(400, 6, 4);
    let model = train(&data, &quick()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let loaded = Model::load(dir.path(), &data.features).unwrap();
    assert_eq!(
        model.predict(&data.x).unwrap(),
        loaded.predict(&data.x).unwrap()
    );
    assert_eq!(loaded.threshold, model.threshold);
    // serde_json (without its float_roundtrip feature) may move an f64 by one ulp, so the
    // reported metrics are compared to 1e-12; weights, mean, std and threshold are exact.
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-12,
        (a, b) => a.is_none() && b.is_none(),
    };
    for (a, b) in [
        (&loaded.metrics, &model.metrics),
        (
            &loaded.training.train_metrics,
            &model.training.train_metrics,
        ),
    ] {
        assert!(close(a.auroc, b.auroc) && close(a.average_precision, b.average_precision));
        assert!(close(a.precision_at_threshold, b.precision_at_threshold));
        assert_eq!((a.positives, a.negatives), (b.positives, b.negatives));
        assert_eq!(
            (a.threshold, a.true_positives),
            (b.threshold, b.true_positives)
        );
    }
    assert_eq!(loaded.training.options, model.training.options);
    assert_eq!(loaded.training.members, model.training.members);
    assert_eq!(
        (loaded.mean.clone(), loaded.std.clone()),
        (model.mean, model.std)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(META_FILE)).unwrap())
            .unwrap();
    assert_eq!(json["format_version"], FORMAT_VERSION);
    assert_eq!(json["members"], 10);
    assert_eq!(json["hidden"], serde_json::json!(model.hidden));
    assert_eq!(model.hidden, TrainOptions::default().hidden);
    assert!(!dir.path().join("model.json.partial").exists());
}

#[test]
fn other_linking_settings_are_refused_naming_each_difference() {
    let (dir, schema) = saved();
    let mut model = Model::load(dir.path(), &schema).unwrap();
    let build = serde_json::json!({"k": 10, "form": {"min_jaccard": 0.5, "ring": 10}});
    model.linking = serde_json::json!({"k": 10, "form": {"min_jaccard": 0.4, "ring": 10}});
    model.save(dir.path()).unwrap();
    let loaded = Model::load(dir.path(), &schema).unwrap();
    assert_eq!(loaded.linking, model.linking, "saved and read back");
    let err = loaded.check_linking(dir.path(), &build).unwrap_err();
    assert_eq!(err.exit_code(), 4);
    let msg = err.to_string();
    assert!(
        msg.contains("form.min_jaccard: model 0.4, this build 0.5") && !msg.contains("ring"),
        "{msg}"
    );
    model.linking = build.clone();
    assert!(model.check_linking(dir.path(), &build).is_ok());
    // A model.json from before linking settings were saved has none: refused.
    model.linking = serde_json::Value::Null;
    let msg = model
        .check_linking(dir.path(), &build)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("linking: model null"), "{msg}");
}

fn saved() -> (tempfile::TempDir, Vec<String>) {
    let data = synthetic(200, 4, 5);
    let model = train(
        &data,
        &TrainOptions {
            epochs: 2,
            hidden: vec![8],
            ..quick()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    (dir, data.features)
}

fn load_err(dir: &Path, schema: &[String]) -> String {
    let err = Model::load(dir, schema).unwrap_err();
    assert!(matches!(err, Error::Model { .. }), "{err}");
    err.to_string()
}

#[test]
fn load_refuses_schema_mismatch() {
    let (dir, schema) = saved();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let msg = load_err(dir.path(), &names(&["f0", "f1", "f2", "g9"]));
    assert!(msg.contains("missing from the model: g9"), "{msg}");
    assert!(msg.contains("extra in the model: f3"), "{msg}");
    assert!(msg.contains("model.json"), "{msg}");
    let msg = load_err(dir.path(), &names(&["f0", "f2", "f1", "f3"]));
    assert!(msg.contains("different order"), "{msg}");
    assert!(
        msg.contains("position 1: model has f1, expected f2"),
        "{msg}"
    );
    let msg = load_err(dir.path(), &names(&["f0", "f1", "f2"]));
    assert!(msg.contains("extra in the model: f3"), "{msg}");
    assert!(Model::load(dir.path(), &schema).is_ok());
}

#[test]
fn load_refuses_missing_and_corrupt_files() {
    let (dir, schema) = saved();
    let json = dir.path().join(META_FILE);
    let weights = dir.path().join(WEIGHTS_FILE);
    let original = std::fs::read_to_string(&json).unwrap();

    std::fs::write(&json, "{\"format_version\": 3, \"schema\": [").unwrap();
    let msg = load_err(dir.path(), &schema);
    assert!(
        msg.contains("corrupt JSON") && msg.contains("model.json"),
        "{msg}"
    );

    std::fs::write(
        &json,
        original.replace("\"format_version\": 3", "\"format_version\": 1"),
    )
    .unwrap();
    let msg = load_err(dir.path(), &schema);
    assert!(msg.contains("format_version 1"), "{msg}");

    std::fs::write(&json, original.replace("\"threshold\"", "\"thresh\"")).unwrap();
    let msg = load_err(dir.path(), &schema);
    assert!(msg.contains("invalid model metadata"), "{msg}");

    std::fs::write(&json, &original).unwrap();
    std::fs::write(&weights, b"not safetensors").unwrap();
    let msg = load_err(dir.path(), &schema);
    assert!(
        msg.contains("corrupt weights") && msg.contains("model.safetensors"),
        "{msg}"
    );

    std::fs::remove_file(&weights).unwrap();
    let msg = load_err(dir.path(), &schema);
    assert!(
        msg.contains("not found") && msg.contains("model.safetensors"),
        "{msg}"
    );

    std::fs::remove_file(&json).unwrap();
    let msg = load_err(dir.path(), &schema);
    assert!(
        msg.contains("not found") && msg.contains("model.json"),
        "{msg}"
    );
}

#[test]
fn load_refuses_weights_of_another_shape() {
    let (dir, schema) = saved();
    let mut tensors = HashMap::new();
    tensors.insert(
        "m0.fc0.weight",
        Tensor::zeros((9, 4), DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, dir.path().join(WEIGHTS_FILE)).unwrap();
    let msg = load_err(dir.path(), &schema);
    assert!(
        msg.contains("m0.fc0.weight") && msg.contains("[9, 4]"),
        "{msg}"
    );
}

#[test]
fn rejects_bad_options_and_data() {
    let data = synthetic(200, 4, 6);
    let usage = |r: Result<Model>| match r {
        Err(Error::Usage(m)) => m,
        other => panic!("expected usage error, got {other:?}"),
    };
    for opts in [
        TrainOptions {
            folds: 1,
            ..quick()
        },
        TrainOptions {
            repeats: 0,
            ..quick()
        },
        TrainOptions {
            target_fpr: 0.0,
            ..quick()
        },
        TrainOptions {
            hidden: vec![0],
            ..quick()
        },
        TrainOptions {
            epochs: 0,
            ..quick()
        },
        TrainOptions {
            early_stop_fraction: 0.0,
            ..quick()
        },
        TrainOptions {
            lr: f64::NAN,
            ..quick()
        },
        TrainOptions {
            l2: -1.0,
            ..quick()
        },
    ] {
        usage(train(&data, &opts));
    }
    let mut bad = data.clone();
    bad.x[5] = f32::NAN;
    let msg = usage(train(&bad, &quick()));
    assert!(msg.contains("acct1") && msg.contains("f1"), "{msg}");
    let mut bad = data.clone();
    bad.y[3] = 2;
    usage(train(&bad, &quick()));
    let mut bad = data.clone();
    bad.x.pop();
    usage(train(&bad, &quick()));
    // One campaign only: a fold's members cannot train and be scored on positives.
    let mut one = data.clone();
    for (g, &y) in one.groups.iter_mut().zip(&data.y) {
        if y == 1 {
            *g = "only".into();
        }
    }
    let msg = usage(train(&one, &quick()));
    assert!(msg.contains("1 groups hold positives"), "{msg}");
}

#[test]
fn predict_checks_input() {
    let (dir, schema) = saved();
    let model = Model::load(dir.path(), &schema).unwrap();
    assert!(matches!(model.predict(&[0.0; 5]), Err(Error::Usage(_))));
    assert!(matches!(
        model.predict(&[0.0, f32::INFINITY, 0.0, 0.0]),
        Err(Error::Usage(_))
    ));
    let p = model.predict(&[0.0; 8]).unwrap();
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(model.predict(&[]).unwrap().is_empty());
}

/// `data` plus `n` accounts of one new campaign, shifted along features the base's campaigns
/// never use (6..10), so the base has not learnt them.
fn with_new_campaign(data: &Dataset, n: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = data.clone();
    let d = data.dim();
    for i in 0..n {
        for j in 0..d {
            let noise: f32 = StandardNormal.sample(&mut rng);
            let shift = if (6..10).contains(&j) { 3.0 } else { 0.0 };
            out.x.push(noise + shift + j as f32);
        }
        out.y.push(1);
        out.names.push(format!("new{i}"));
        out.groups.push("incident1/campaign:new".into());
    }
    out
}

#[test]
fn folds_of_a_fresh_training_are_dealt_again_exactly() {
    let data = synthetic(400, 12, 3);
    let fitted = train_scored(&data, &quick()).unwrap();
    assert_eq!(fitted.folds.len(), 400 * 2);
    assert_eq!(dealt_folds(&data, &quick()), fitted.folds);
}

#[test]
fn a_warm_start_learns_the_new_rows_and_keeps_the_base_scores_of_the_old() {
    // A wide network, so that the test checks the mechanism and not the default shape's
    // capacity (16-8 learns this toy's new campaign slowly even when trained afresh).
    let opts = TrainOptions {
        hidden: vec![128, 64],
        ..quick()
    };
    let base_data = synthetic(800, 12, 4);
    let base = train_scored(&base_data, &opts).unwrap();
    let data = with_new_campaign(&base_data, 30, 5);
    let new: Vec<usize> = (800..830).collect();
    let mut folds = base.folds.clone();
    folds.resize(830 * opts.repeats, 0);
    deal_new_groups(&data, &new, &mut folds, base.model.training.folds, &opts);
    // A group is never split across folds.
    for r in 0..opts.repeats {
        let f: HashSet<u8> = new.iter().map(|&i| folds[i * opts.repeats + r]).collect();
        assert_eq!(f.len(), 1, "round {r}: {f:?}");
    }
    // A campaign along features the base ignores is as new as it gets; a longer fine-tuning
    // than the default (chosen on the evaluation's incidents) learns it in this small set.
    let tune = WarmStart {
        lr: 3e-4,
        epochs: 10,
    };
    let warm = train_warm(&data, &base.model, &folds, &opts, tune).unwrap();
    assert_eq!(warm.folds, folds);
    assert_eq!(warm.model.members.len(), base.model.members.len());
    assert_eq!(warm.model.mean, base.model.mean);
    assert!(warm.model.training.warm_start.is_some());
    let refit = train_scored(&data, &opts).unwrap();

    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let x_new = &data.x[800 * 12..];
    let before = mean(&base.model.predict(x_new).unwrap());
    let after = mean(&warm.model.predict(x_new).unwrap());
    let refit_after = mean(&refit.model.predict(x_new).unwrap());
    assert!(
        after > before + 0.2,
        "new campaign {before} -> {after} (refit {refit_after})"
    );
    // The old rows' out-of-fold scores move less than under a fresh training.
    let moved = |oof: &[f32]| {
        mean(
            &oof[..800]
                .iter()
                .zip(&base.oof)
                .map(|(a, b)| (a - b).abs())
                .collect::<Vec<_>>(),
        )
    };
    let (warm_moved, refit_moved) = (moved(&warm.oof), moved(&refit.oof));
    assert!(
        warm_moved < refit_moved,
        "base rows moved {warm_moved} warm, {refit_moved} refit"
    );

    // A base trained with other layers or rounds cannot be continued.
    let other = TrainOptions {
        repeats: 3,
        ..opts.clone()
    };
    let err = train_warm(&data, &base.model, &folds, &other, tune).unwrap_err();
    assert!(err.to_string().contains("cannot fine-tune"), "{err}");
    let bad = WarmStart { lr: 0.0, epochs: 1 };
    assert!(train_warm(&data, &base.model, &folds, &opts, bad).is_err());
}

/// With link pooling, the out-of-fold scores (and so the threshold and metrics) are the
/// members' scores pooled over link groups, and `Model::score` pools the same way; a model
/// file written before the option existed reads as trained without it.
#[test]
fn link_pooling_scores_a_group_by_its_middle_member_out_of_fold_and_when_scoring() {
    let mut data = synthetic(400, 8, 5);
    // One link group of four positives and one of four negatives; the rest in none.
    data.links = (0..data.len())
        .map(|i| match i {
            0 | 4 | 8 | 12 => "link:p".to_string(),
            1 | 2 | 3 | 5 => "link:n".to_string(),
            _ => String::new(),
        })
        .collect();
    let pooled = train_scored(&data, &quick()).unwrap();
    let plain = train_scored(
        &data,
        &TrainOptions {
            link_pooling: false,
            ..quick()
        },
    )
    .unwrap();
    assert!(pooled.model.pools_links() && !plain.model.pools_links());
    // Same members (pooling is after them), so pooled OOF scores are the plain ones pooled.
    assert_eq!(
        pooled.oof,
        crate::classify::pool_by_group(&plain.oof, &data.link_of())
    );
    assert_ne!(pooled.oof, plain.oof);
    let x = &data.x[..16 * data.dim()];
    let links = &data.link_of()[..16];
    let own = pooled.model.predict(x).unwrap();
    assert_eq!(
        pooled.model.score(x, links).unwrap(),
        crate::classify::pool_by_group(&own, links)
    );
    assert_eq!(plain.model.score(x, links).unwrap(), own);
    let mut opts = serde_json::to_value(quick()).unwrap();
    opts.as_object_mut().unwrap().remove("link_pooling");
    let old: TrainOptions = serde_json::from_value(opts).unwrap();
    assert!(!old.link_pooling);
}

/// Blind rounds add members that never read the behaviour vector: their first layer's weights
/// on it are exactly 0, so their output does not move with it; the members that read every
/// input are those of a model without blind rounds; the out-of-fold scores blend both views by
/// their rounds; more blind rounds than rounds train as many as there are rounds; a model file
/// written before the option existed has none.
#[test]
fn blind_rounds_add_members_that_never_read_the_behaviour_vector() {
    let d = 12;
    let mut data = synthetic(400, d, 9);
    // The last four features stand for the behaviour vector.
    for j in 8..d {
        data.features[j] = format!("{BEHAVIOUR_PREFIX}{j:03}");
    }
    let is_behaviour = |c: usize| c % d >= 8;
    let with = train_scored(
        &data,
        &TrainOptions {
            blind_rounds: 1,
            ..quick()
        },
    )
    .unwrap();
    let without = train_scored(
        &data,
        &TrainOptions {
            blind_rounds: 0,
            ..quick()
        },
    )
    .unwrap();
    let k = with.model.training.folds;
    assert_eq!(
        (with.model.members.len(), without.model.members.len()),
        (3 * k, 2 * k)
    );
    let first_layer = |m: &[candle_nn::Linear]| {
        m[0].weight()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    for (i, m) in with.model.members.iter().enumerate() {
        let blind = i >= 2 * k;
        assert_eq!(with.model.training.members[i].blind, blind, "member {i}");
        let w = first_layer(m);
        let on_behaviour = (0..w.len())
            .filter(|&c| is_behaviour(c))
            .map(|c| w[c].abs())
            .fold(0f32, f32::max);
        if blind {
            assert_eq!(on_behaviour, 0.0, "member {i}");
        } else {
            assert!(on_behaviour > 0.0, "member {i}");
            assert_eq!(w, first_layer(&without.model.members[i]), "member {i}");
        }
    }
    let blind_only = Model {
        members: with.model.members[2 * k..].to_vec(),
        ..with.model.clone()
    };
    let mut x = data.x[..d * 20].to_vec();
    let before = blind_only.predict(&x).unwrap();
    for (c, v) in x.iter_mut().enumerate() {
        if is_behaviour(c) {
            *v += 5.0;
        }
    }
    assert_eq!(blind_only.predict(&x).unwrap(), before);
    assert_ne!(with.model.predict(&x).unwrap(), before);
    // The two views' scores: the blind one is the blind members', and the ensemble's score
    // is their mean weighted by rounds (2 that read everything, 1 blind).
    let (all, views) = with.model.predict_views(&x).unwrap();
    assert_eq!(all, with.model.predict(&x).unwrap());
    let Views { topic, blind } = views.unwrap();
    assert_eq!(blind, before);
    for ((p, t), b) in with
        .model
        .predict(&x)
        .unwrap()
        .iter()
        .zip(&topic)
        .zip(&blind)
    {
        assert!((p - (2.0 * t + b) / 3.0).abs() < 1e-5, "{p} {t} {b}");
    }
    assert!(without.model.predict_views(&x).unwrap().1.is_none());
    // Out of fold, two rounds read everything and one is blind: what the blind round gave
    // each row, 3 * with - 2 * without, is a probability, and not the same as the others'.
    let mut differs = 0;
    for (a, b) in with.oof.iter().zip(&without.oof) {
        let blind = 3.0 * a - 2.0 * b;
        assert!((-1e-4..=1.0 + 1e-4).contains(&blind), "{a} {b}");
        differs += usize::from((blind - b).abs() > 1e-3);
    }
    assert!(differs > 0);
    // More blind rounds than rounds train as many as there are rounds.
    let too_many = TrainOptions {
        blind_rounds: 3,
        ..quick()
    };
    assert_eq!(train(&data, &too_many).unwrap().members.len(), 4 * k);
    let old: TrainOptions = serde_json::from_str(r#"{"hidden": [16, 8]}"#).unwrap();
    assert_eq!(old.blind_rounds, 0);
}
