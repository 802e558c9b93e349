pub mod admin;
pub mod integration;
pub mod records;
pub mod serve;
