//! Berth's OCI distribution client and transfer engine: `push`, `pull`, `copy`, `build`,
//! `inspect` and `tags` between registries (any registry v2, Basic or Bearer auth), OCI image
//! layouts and Docker archives, streaming and verifying every blob, in constant memory.
//!
//! This crate owns the wire protocol of registries and the on-disk image formats. It must not
//! touch the AWS SDK, the store or the Berth API: where credentials come from is the caller's
//! business, given as a [`CredentialSource`]. It never prints; it reports [`Event`]s.

#![forbid(unsafe_code)]
// No function over 100 lines in `src/`: a longer one is doing two jobs.
#![deny(clippy::too_many_lines)]

mod archive;
mod build;
mod copy;
mod digest;
mod error;
mod layout;
mod location;
mod manifest;
mod progress;
mod registry;
mod remote;
mod transport;
mod verify;

pub use archive::DockerArchive;
pub use build::{BuildSpec, Built, Scratch, build, read_blob, read_config};
pub use copy::{CopyOptions, Plan, copy, copy_plan, plan};
pub use digest::{sha256_digest, sha256_hex};
pub use error::{Error, RegistryFailure, Result};
pub use layout::OciLayout;
pub use location::Location;
pub use manifest::{Descriptor, Manifest, Platform};
pub use progress::{BlobOutcome, Event, Progress, SharedProgress, Silent, Summary};
pub use registry::{
    Anonymous, CredentialSource, Credentials, RegistryClient, RetryPolicy, StaticCredentials,
};
pub use remote::RemoteImage;
pub use transport::{BlobStream, Destination, RegistryLocation, Source};
