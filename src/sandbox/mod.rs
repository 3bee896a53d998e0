//! A local emulator of the Cloudauth API, for the demo pipeline and the tests.

pub mod authority;
pub mod idnumber;
pub mod synthetic;
