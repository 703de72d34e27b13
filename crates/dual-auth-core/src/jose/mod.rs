//! JOSE: keys, compact JWS, and the act JWT. The only module that names josekit, so the
//! rest of the workspace never depends on it directly.

pub(crate) mod act_jwt;
pub(crate) mod assertion;
pub(crate) mod compact;
pub(crate) mod dpop;
pub(crate) mod keys;
mod prepared;
pub mod validation;

#[cfg(test)]
mod tests;
