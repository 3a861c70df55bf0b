//! Memoized pure functions. Admission requests bring the same Secrets again and again, and parsing
//! PEM (base64, X.509) or loading a private key costs more than all the rules together. Answers are
//! kept by a SHA-256 digest of the input (never the input itself), so a memoized function stays a
//! pure function: the same input always gets the same answer.

use std::collections::HashMap;
use std::sync::Mutex;

/// A bounded table of answers keyed by input digest. When full, it starts over (inputs are few:
/// one entry per distinct PEM blob in the cluster's Secrets).
pub struct Memo<V> {
    answers: Mutex<Option<HashMap<[u8; 32], V>>>,
    max: usize,
}

impl<V: Clone> Memo<V> {
    pub const fn new(max: usize) -> Self {
        Self { answers: Mutex::new(None), max }
    }

    /// The answer for `key`, computing it with `f` the first time.
    pub fn get_or_compute(&self, key: [u8; 32], f: impl FnOnce() -> V) -> V {
        if let Some(v) = self.answers.lock().ok().and_then(|m| m.as_ref()?.get(&key).cloned()) {
            return v;
        }
        let v = f();
        if let Ok(mut m) = self.answers.lock() {
            let map = m.get_or_insert_with(HashMap::new);
            if map.len() >= self.max {
                map.clear();
            }
            map.insert(key, v.clone());
        }
        v
    }
}

/// SHA-256 over length-prefixed parts, so that part boundaries cannot be shifted to collide.
pub fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_once_per_input_and_stays_bounded() {
        let memo = Memo::new(2);
        let mut calls = 0;
        for _ in 0..3 {
            assert_eq!(
                memo.get_or_compute(digest(&[b"a"]), || {
                    calls += 1;
                    1
                }),
                1
            );
        }
        assert_eq!(calls, 1);
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        memo.get_or_compute(digest(&[b"b"]), || 2);
        memo.get_or_compute(digest(&[b"c"]), || 3);
        assert!(memo.answers.lock().unwrap().as_ref().unwrap().len() <= 2);
    }
}
