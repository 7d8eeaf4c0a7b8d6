//! # privacy-router
//!
//! Decide, request by request, whether an LLM prompt may leave the company.
//!
//! This release ships the engine: [`scan`] finds personal data, payment data, credentials,
//! network identifiers and confidential terms in prompt text, fast and with byte-exact
//! spans. The Tower layer, team policies and the audit log build on it (see DESIGN.md).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

pub mod audit;
pub mod extract;
pub mod middleware;
pub mod policy;
pub mod proxy;
pub mod scan;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
