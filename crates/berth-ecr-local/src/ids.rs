//! Random identifiers in the shapes AWS uses.

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source is unavailable");
    b
}

pub use berth_files::hex;

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as AWS request ids and upload ids look.
pub fn request_id() -> String {
    let h = hex(&random_bytes::<16>());
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// An access key id: `prefix` (AKIA for users, ASIA for sessions) and 16 upper-case characters.
pub fn access_key_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = random_bytes::<16>()
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// A 40-character secret access key.
pub fn secret_access_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(random_bytes::<30>())
}
