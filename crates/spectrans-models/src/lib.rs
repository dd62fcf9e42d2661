//! GFNet and GFNetEncoder models with PyTorch spectrans parity: output heads, safetensors
//! weights by `state_dict` name, forward and backward. Training (losses, optimisers, the
//! trainer, data sets) is in spectrans-train; inference needs only this crate.
//!
//! ```
//! use ndarray::Array3;
//! use spectrans_config::Config;
//! use spectrans_models::{Gfnet, ModelInput};
//!
//! // An encoder (spectrans' GFNetEncoder): inputs_embeds in, hidden states of the same shape out.
//! let config = Config::from_toml_str(
//!     "[model]\nmodel_type = \"gfnet_encoder\"\nhidden_dim = 32\nnum_layers = 2\nsequence_length = 16\n",
//! ).unwrap();
//! let encoder = Gfnet::new(&config, 0).unwrap();
//! let x = Array3::<f32>::ones((2, 16, 32));
//! let h = encoder.forward(ModelInput::Embeddings(x.view()), None).unwrap();
//! assert_eq!(h.shape(), &[2, 16, 32]);
//! ```

#![deny(missing_docs)]

mod builder;
mod error;
pub mod filter_response;
mod gfnet;
pub mod heads;
pub mod memory;
mod pool;
pub mod ragged;
pub mod tensor_file;
pub mod weights;

pub use builder::GfnetBuilder;
pub use error::{ModelError, WeightProblem};
pub use gfnet::{Gfnet, GfnetCache, GfnetGrads, ModelInput, ModelOutput};
// What a models user needs from the crates below, so one dependency is enough: the ndarray
// of our signatures, at the matching version, too.
pub use heads::{HeadKind, OutputHead, Pooling};
pub use ndarray;
pub use pool::on_pool;
pub use spectrans_config::{
    Activation, Config, ConfigError, FftNorm, FilterActivation, ModelType, OutputType,
    PositionalEncodingType,
};
pub use spectrans_layers::{Parameters, Precision, TrainContext, parameter_count, reuse};
