//! Word shingles of a prompt: what its *form* is made of, for template signatures.
//!
//! Extraction campaigns wrap varied items in a few fixed wrappers, instructions and output
//! formats, so the word n-grams that recur across an account's prompts are its template,
//! whatever the items ([`crate::campaign::form`] builds account signatures from them). The
//! text is normalised the way wrappers get perturbed: lower-cased, split on anything that is
//! not a letter or digit (punctuation, spacing and markup do not matter), every run of digits
//! read as one number token (item numbers and scores vary), and each CJK, kana or hangul
//! character a word of its own (those scripts have no spaces). A shingle is
//! [`SHINGLE_WORDS`] consecutive words, hashed to 32 bits (FNV-1a); wrappers sit at the ends
//! of a prompt, so only shingles starting among its first and last [`EDGE_SHINGLES`] positions
//! are kept, which bounds the storage per prompt whatever its length.

/// Words per shingle.
pub const SHINGLE_WORDS: usize = 3;
/// Shingles kept from each end of a prompt.
pub const EDGE_SHINGLES: usize = 48;

/// The stored scheme, written with the shingles so that another scheme is never mixed in.
pub const SCHEME: &str = "words3-edges48-fnv1a32-v1";

/// The prompt's shingle hashes, sorted and distinct. A prompt of fewer than
/// [`SHINGLE_WORDS`] words has one shingle of all its words; an empty one has none.
pub fn shingles(text: &str) -> Vec<u32> {
    let words = words(text);
    let mut out: Vec<u32> = if words.len() < SHINGLE_WORDS {
        if words.is_empty() {
            Vec::new()
        } else {
            vec![hash_words(&words)]
        }
    } else {
        let n = words.len() - SHINGLE_WORDS + 1;
        let starts: Vec<usize> = if n <= 2 * EDGE_SHINGLES {
            (0..n).collect()
        } else {
            (0..EDGE_SHINGLES).chain(n - EDGE_SHINGLES..n).collect()
        };
        starts
            .into_iter()
            .map(|i| hash_words(&words[i..i + SHINGLE_WORDS]))
            .collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether `c` is written without spaces between words (CJK ideographs, kana, hangul).
fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x2FFF | 0x3040..=0x30FF | 0x3100..=0x31FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

/// The normalised words of `text` (see the module header).
pub fn words(text: &str) -> Vec<String> {
    fn push(cur: &mut String, digits: &mut bool, out: &mut Vec<String>) {
        if !cur.is_empty() {
            out.push(if *digits {
                "#".to_string()
            } else {
                std::mem::take(cur)
            });
            cur.clear();
        }
        *digits = false;
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut digits = false;
    for c in text.chars() {
        if unspaced(c) {
            push(&mut cur, &mut digits, &mut out);
            out.push(c.to_string());
        } else if c.is_alphanumeric() {
            let d = c.is_ascii_digit();
            if !cur.is_empty() && d != digits {
                push(&mut cur, &mut digits, &mut out);
            }
            digits = d;
            cur.extend(c.to_lowercase());
        } else {
            push(&mut cur, &mut digits, &mut out);
        }
    }
    push(&mut cur, &mut digits, &mut out);
    out
}

fn hash_words(words: &[String]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            h ^= 0x1f;
            h = h.wrapping_mul(0x0100_0193);
        }
        for &b in w.as_bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_ignore_case_punctuation_and_numbers_and_split_cjk() {
        assert_eq!(
            words("Explain  your REASONING, step-by-step: Q12?"),
            [
                "explain",
                "your",
                "reasoning",
                "step",
                "by",
                "step",
                "q",
                "#"
            ]
        );
        assert_eq!(
            words("请一步一步思考"),
            ["请", "一", "步", "一", "步", "思", "考"]
        );
        assert_eq!(words("Score 7/10"), ["score", "#", "#"]);
        assert!(words(" \n\t--").is_empty());
    }

    #[test]
    fn a_perturbed_wrapper_keeps_its_shingles_and_items_differ() {
        let a = shingles("Explain your full reasoning step by step.\n\nWhat is 2+2?");
        let b = shingles("explain your full reasoning -- step by step!!  What is 17 + 5?");
        let c = shingles("Write a haiku about autumn leaves falling");
        assert_eq!(a, b, "same wrapper, numbers as one token");
        assert!(a.iter().all(|h| !c.contains(h)));
        assert_eq!(shingles(""), Vec::<u32>::new());
        assert_eq!(shingles("hi there").len(), 1);
        // Sorted, distinct, and bounded by both edges for a long prompt.
        // 1000 distinct words: the digits of i spelled as letters.
        let word = |i: u32| -> String {
            i.to_string()
                .bytes()
                .map(|d| char::from(b'a' + d - b'0'))
                .collect()
        };
        let long: String = (0..1000).map(|i| word(i) + " ").collect();
        let s = shingles(&long);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.len(), 2 * EDGE_SHINGLES);
    }
}
