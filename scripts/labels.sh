# Shell helpers over labels files (JSONL: account_id, label, campaign?, kind?), sourced by the
# evaluation scripts so that they read labels the same way, and the one scikit-learn venv.

kinds_of() { # labels-file label -> its kinds, one per line
  grep "\"label\":$2" "$1" | sed 's/.*"kind":"\([^"]*\)".*/\1/' | sort -u
}
only() { # labels-file kind-regex -> the labels of those kinds
  grep -E "\"kind\":\"($2)\"" "$1"
}
eval_venv() { # -> the venv's python with scikit-learn (for scripts/tfidf_baseline.py), made once
  local venv=target/venv-eval
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sklearn' 2>/dev/null || {
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check scikit-learn==1.5.2
  } >&2
  echo "$venv/bin/python"
}
