//! The `cloudauth-batch` command.

fn main() {}
