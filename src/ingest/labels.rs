//! Labels files (JSONL, one labelled account per line; contract in DESIGN.md):
//! `{"account_id": str, "label": 0|1, "campaign"?: str}`. Other fields are ignored except
//! `kind` (a string the simulator writes), which `eval` uses to break metrics down by strategy.
//!
//! Labels are the ground truth a retrained model learns from, so a bad line stops the read with
//! the file, line and field, and an account labelled twice is an error naming both lines:
//! quietly keeping one of two disagreeing labels would train on a guess.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{for_each_line, parse_json_line};
use crate::error::{Error, Result};

/// One labelled account.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// 1-based line in the labels file.
    pub line: u64,
    pub account_id: String,
    /// 1 = extraction, 0 = benign.
    pub label: u8,
    /// The confirmed campaign an extraction account belongs to.
    pub campaign: Option<String>,
    /// Strategy kind (simulated traffic), for per-kind breakdowns.
    pub kind: Option<String>,
}

/// All labels of one file, in file order, with an index by account.
#[derive(Debug, Clone)]
pub struct Labels {
    pub path: PathBuf,
    pub labels: Vec<Label>,
    index: HashMap<String, usize>,
}

impl Labels {
    /// Read and validate a labels file. Blank lines are allowed; an empty file is an error.
    pub fn read(path: &Path) -> Result<Labels> {
        let mut labels: Vec<Label> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for_each_line(path, |line_no, bytes| {
            let Some(value) = parse_json_line::<Value>(path, line_no, bytes)? else {
                return Ok(());
            };
            let label = parse_label(path, line_no, value)?;
            if let Some(&j) = index.get(&label.account_id) {
                let first: &Label = &labels[j];
                return Err(Error::input(
                    path,
                    line_no,
                    "account_id",
                    format!(
                        "account {:?} is already labelled on line {}",
                        label.account_id, first.line
                    ),
                ));
            }
            index.insert(label.account_id.clone(), labels.len());
            labels.push(label);
            Ok(())
        })?;
        if labels.is_empty() {
            return Err(Error::file(path, "no labels in file"));
        }
        Ok(Labels {
            path: path.to_path_buf(),
            labels,
            index,
        })
    }

    pub fn get(&self, account_id: &str) -> Option<&Label> {
        self.index.get(account_id).map(|&i| &self.labels[i])
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Every labelled account with its true campaign: the `campaign` of an extraction account,
    /// `None` for benign ones (the truth side of campaign pair precision/recall).
    pub fn true_campaigns(&self) -> HashMap<String, Option<String>> {
        self.labels
            .iter()
            .map(|l| {
                let c = (l.label == 1).then(|| l.campaign.clone()).flatten();
                (l.account_id.clone(), c)
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Error unless every labelled account is among `known` (the accounts of a log or a
    /// scores file), naming the first few missing ones: labels for accounts that are not there
    /// usually mean the wrong pair of files.
    pub fn check_known(&self, known: &dyn Fn(&str) -> bool, what: &str) -> Result<()> {
        let missing: Vec<&Label> = self
            .labels
            .iter()
            .filter(|l| !known(&l.account_id))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let first = missing[0];
        let names: Vec<String> = missing
            .iter()
            .take(5)
            .map(|l| format!("{:?}", l.account_id))
            .collect();
        Err(Error::input(
            &self.path,
            first.line,
            "account_id",
            format!(
                "{} labelled account{} not in {what} ({}{})",
                missing.len(),
                if missing.len() == 1 { " is" } else { "s are" },
                names.join(", "),
                if missing.len() > 5 { ", ..." } else { "" }
            ),
        ))
    }
}

fn parse_label(path: &Path, line: u64, v: Value) -> Result<Label> {
    let err = |field: &str, msg: String| Error::input(path, line, field, msg);
    let Value::Object(obj) = v else {
        return Err(err("(line)", "expected a JSON object".into()));
    };
    let account_id = match obj.get("account_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(err("account_id", "empty string".into())),
        Some(other) => return Err(err("account_id", format!("expected a string, got {other}"))),
        None => return Err(err("account_id", "missing".into())),
    };
    let label = match obj.get("label") {
        Some(Value::Number(n)) if n.as_u64() == Some(0) => 0,
        Some(Value::Number(n)) if n.as_u64() == Some(1) => 1,
        Some(Value::Bool(b)) => u8::from(*b),
        Some(other) => return Err(err("label", format!("expected 0 or 1, got {other}"))),
        None => return Err(err("label", "missing".into())),
    };
    let opt_str = |field: &str| -> Result<Option<String>> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(err(field, format!("expected a string, got {other}"))),
        }
    };
    Ok(Label {
        line,
        account_id,
        label,
        campaign: opt_str("campaign")?,
        kind: opt_str("kind")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Labels> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels.jsonl");
        std::fs::write(&p, text).unwrap();
        Labels::read(&p)
    }

    #[test]
    fn reads_labels_with_optional_fields() {
        let l = read(
            "{\"account_id\":\"a\",\"label\":1,\"campaign\":\"c1\",\"kind\":\"hydra\"}\n\n\
             {\"account_id\":\"b\",\"label\":0,\"note\":\"ignored\"}\n",
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        let a = l.get("a").unwrap();
        assert_eq!((a.label, a.campaign.as_deref()), (1, Some("c1")));
        assert_eq!(a.kind.as_deref(), Some("hydra"));
        let b = l.get("b").unwrap();
        assert_eq!((b.line, b.label, b.campaign.as_deref()), (3, 0, None));
        let truth = l.true_campaigns();
        assert_eq!(truth["a"].as_deref(), Some("c1"));
        assert_eq!(truth["b"], None);
    }

    #[test]
    fn bad_lines_name_line_and_field() {
        let cases = [
            ("{\"label\":1}", ":1: account_id: missing"),
            (
                "{\"account_id\":\"a\",\"label\":2}",
                ":1: label: expected 0 or 1",
            ),
            ("{\"account_id\":\"a\"}", ":1: label: missing"),
            (
                "{\"account_id\":\"a\",\"label\":1,\"campaign\":3}",
                ":1: campaign: expected a string",
            ),
            ("{\"account_id\":", ":1: (line): malformed JSON"),
            (
                "{\"account_id\":\"a\",\"label\":0}\n{\"account_id\":\"a\",\"label\":1}",
                ":2: account_id: account \"a\" is already labelled on line 1",
            ),
        ];
        for (text, want) in cases {
            let e = read(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        assert!(read("\n").unwrap_err().to_string().contains("no labels"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels.jsonl");
        std::fs::write(
            &p,
            b"{\"account_id\":\"a\",\"label\":0}\n{\"account_id\":\"\xff\"}\n",
        )
        .unwrap();
        let e = Labels::read(&p).unwrap_err().to_string();
        assert!(
            e.contains(":2: (line): not valid UTF-8 (bad byte at column 16)"),
            "{e}"
        );
    }

    #[test]
    fn unknown_accounts_are_named() {
        let l = read("{\"account_id\":\"a\",\"label\":0}\n{\"account_id\":\"zz\",\"label\":1}\n")
            .unwrap();
        let e = l
            .check_known(&|id| id == "a", "the request log")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":2: account_id: 1 labelled account is not in the request log (\"zz\")"),
            "{e}"
        );
        assert!(l.check_known(&|_| true, "x").is_ok());
    }
}
