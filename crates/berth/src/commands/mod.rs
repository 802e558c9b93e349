pub mod admin;
pub mod ci;
pub mod integration;
pub mod login;
pub mod records;
pub mod serve;
pub mod transfer;
pub mod users;
