//! Hashing: the seed of an answer and every value derived from it.

use sha2::{Digest, Sha256};

/// The key of a request with several images: the concatenated sha256 digests of each image's
/// key (bytes or URL). One image's key is the image itself; no images give an empty key.
pub fn image_key(images: &[&[u8]]) -> Vec<u8> {
    match images {
        [] => Vec::new(),
        [one] => one.to_vec(),
        many => many.iter().flat_map(|image| sha256(image)).collect(),
    }
}

/// Hex sha256, the form used by `/admin/calls` and `reject_images`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

pub(super) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A value for `path`, independent of every other path.
pub(super) fn derive(seed: &[u8; 32], path: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed);
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.finalize().into()
}

pub(super) fn word(hash: &[u8; 32]) -> u64 {
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(bytes)
}

pub(super) fn index(hash: &[u8; 32], len: usize) -> usize {
    (word(hash) % len.max(1) as u64) as usize
}

/// A fraction in `[0, 1)`.
pub(super) fn fraction(hash: &[u8; 32]) -> f64 {
    (word(hash) >> 11) as f64 / (1_u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_images_are_keyed_by_their_digests_in_order() {
        assert_eq!(image_key(&[]), Vec::<u8>::new());
        assert_eq!(image_key(&[b"a"]), b"a".to_vec());
        let key = image_key(&[b"a", b"b"]);
        assert_eq!(key.len(), 64);
        assert_ne!(key, image_key(&[b"b", b"a"]));
    }
}
