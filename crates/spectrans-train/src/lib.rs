//! Training for spectrans-rs GFNet models: losses, optimisers, the learning-rate schedule,
//! gradient clipping, the trainer with resumable checkpoints, and data sets for every head
//! (classification, regression, token labelling, hidden states), with the 8x8 digits
//! embedded.
//!
//! spectrans-models runs and loads models without any of this; depend on this crate to train.
//!
//! ```
//! use spectrans_models::{Config, Gfnet};
//! use spectrans_train::data::digits;
//! use spectrans_train::{Batch, TrainContext, TrainOptions, Trainer};
//!
//! let config = Config::from_toml_str(
//!     "[model]\nhidden_dim = 16\nnum_layers = 1\nsequence_length = 65\nvocab_size = 18\nnum_classes = 10\n",
//! )?;
//! let data = digits();
//! let mut trainer = Trainer::new(Gfnet::new(&config, 0)?, TrainOptions::default(), 1);
//! let first: Vec<_> = data.examples.iter().take(8).collect();
//! let batch = Batch::of(&first, data.seq_len)?;
//! let loss = trainer.step(&batch, &mut TrainContext::new(0, true))?;
//! assert!(loss.is_finite());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod batch;
pub mod data;
mod error;
pub mod loss;
mod metrics;
pub mod optim;
mod trainer;

pub use batch::{Batch, BatchInput, BatchTargets};
pub use data::{DataError, Dataset, Example, Task};
pub use error::{LossError, TrainError};
pub use loss::{LossKind, Targets, loss_and_grad};
pub use metrics::{EpochMetrics, Evaluation, argmax, evaluate};
pub use spectrans_models::TrainContext;
pub use trainer::{StepProgress, TrainOptions, Trainer, compute_gradients, optimizer_path};
