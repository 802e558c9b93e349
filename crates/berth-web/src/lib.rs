//! Berth's web pages as HTML: the templates (askama, escaped by default), the page models
//! they render, the assets served from the binary (one stylesheet, one small script: no CDN,
//! works offline), and the conversion of submitted forms into the API's own JSON input.
//!
//! This crate owns markup and form fields only. It must not touch HTTP, the store, sessions or
//! authorization: `berth-server` authenticates, applies the one policy, calls the same
//! operations as the API and hands this crate the API's views to render. No secret ever
//! reaches a template: the views carry masked key ids and `*_set` flags only.

#![forbid(unsafe_code)]

pub mod assets;
pub mod forms;
pub mod pages;
pub mod regions;

pub use askama::Template;
