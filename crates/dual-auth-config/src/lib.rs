//! # dual-auth-config
//!
//! Where configuration values come from: environment variables, `.env` files, and the
//! secret stores (AWS Secrets Manager, GCP Secret Manager, Azure Key Vault, HashiCorp
//! Vault), each behind its own feature, implementing [`dual_auth_core::SecretSource`].
//!
//! **Status: not built yet (issue 4).** This crate exports no loader today; nothing here
//! pretends to load configuration. See `docs/architecture.md`.
#![forbid(unsafe_code)]
