//! Server ids in LiveKit's shape: a prefix and 12 base62 characters.

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A fresh id such as `RM_Xy3…`; 12 base62 characters carry ~71 random bits.
pub fn new_sid(prefix: &str) -> String {
    let mut random = uuid::Uuid::new_v4().as_u128();
    let mut id = String::with_capacity(prefix.len() + 12);
    id.push_str(prefix);
    for _ in 0..12 {
        id.push(char::from(ALPHABET[(random % 62) as usize]));
        random /= 62;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_uniqueness() {
        let a = new_sid("RM_");
        let b = new_sid("RM_");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("RM_"));
        assert!(a[3..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
