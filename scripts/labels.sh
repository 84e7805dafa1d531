# Shell helpers over labels files (JSONL: account_id, label, campaign?, kind?), sourced by the
# evaluation scripts so that they read labels the same way.

kinds_of() { # labels-file label -> its kinds, one per line
  grep "\"label\":$2" "$1" | sed 's/.*"kind":"\([^"]*\)".*/\1/' | sort -u
}
only() { # labels-file kind-regex -> the labels of those kinds
  grep -E "\"kind\":\"($2)\"" "$1"
}
