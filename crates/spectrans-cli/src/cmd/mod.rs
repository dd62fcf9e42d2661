//! One module per subcommand.

pub mod bench;
pub mod demo;
pub mod filters;
pub mod forward;
pub mod grad;
pub mod init;
pub mod inspect;
pub mod predict;
pub mod serve;
pub mod train;
pub mod validate;
