//! cloudauth-batch: re-verifies identities in bulk through Alibaba Cloud Cloudauth.
//!
//! The modules follow the data as it flows:
//!
//! - [`cloudauth`]: the wire. RPC signature v1, the typed API model of version 2018-09-16,
//!   a blocking client, and OSS uploads with the StsToken.
//! - [`sandbox`]: a local emulator of the service (gateway checks, verdicts, review delays,
//!   quotas, faults) for the demo and the tests. It shares the wire code with the client.

pub mod cloudauth;
pub mod sandbox;
