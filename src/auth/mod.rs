//! Who is calling: LiveKit-compatible access tokens and API key/secret pairs.

mod credentials;
mod token;

pub use credentials::{AuthError, Caller, Credentials, KeyRing, constant_time_eq};
pub use token::{AccessToken, Claims, TokenError, VideoGrant};

#[cfg(test)]
mod tests;
