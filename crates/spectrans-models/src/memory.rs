//! How much memory a model, a batch or a training run needs, and the guard that refuses one
//! that cannot fit before anything is allocated.
//!
//! Estimates are in bytes of f32 and computed with saturating arithmetic, so an absurd config
//! gives a huge number, never an overflow.
//!
//! The budget is explicit: a [`MemoryBudget`] value that the caller passes. The library's
//! constructors ([`crate::Gfnet::new`] and the loaders) read no environment: they refuse only
//! a model past `isize::MAX` bytes, which no allocation can satisfy
//! ([`MemoryBudget::address_space`]). Programs (the CLI, the Python module, the server) make
//! their budget with [`MemoryBudget::from_env`]: in order, their `--max-memory` flag, the
//! `SPECTRANS_MAX_MEMORY` environment variable, then `MemAvailable` of `/proc/meminfo`; and
//! check each workload against it with [`MemoryBudget::check_fits`] before they build or run.
//!
//! ```
//! use spectrans_config::Config;
//! use spectrans_models::memory::{estimate, Workload};
//!
//! let config = Config::from_toml_str(
//!     "[model]\nhidden_dim = 1000000\nnum_layers = 1000\nsequence_length = 1000000\n",
//! ).unwrap();
//! let bytes = estimate(&config, Workload::Parameters).total();
//! assert!(bytes > 1 << 50);
//! ```

use std::fmt;

use spectrans_config::{Config, ModelType, OutputType, PositionalEncodingType};

/// The environment variable that overrides the available memory (bytes, or with a unit:
/// `512M`, `8G`, `1.5GiB`).
pub const MAX_MEMORY_ENV: &str = "SPECTRANS_MAX_MEMORY";

/// What an estimate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Building the model: its parameters and buffers.
    Parameters,
    /// An eval-mode forward of `batch` sequences of `seq_len` tokens.
    Inference {
        /// Sequences in the batch.
        batch: usize,
        /// Tokens per sequence.
        seq_len: usize,
    },
    /// A training-mode forward and backward (no optimiser): `spectrans grad`.
    Gradients {
        /// Sequences in the batch.
        batch: usize,
        /// Tokens per sequence.
        seq_len: usize,
    },
    /// Training steps: gradients plus AdamW's two moments and the clipped gradient copy.
    Training {
        /// Sequences in the batch.
        batch: usize,
        /// Tokens per sequence.
        seq_len: usize,
    },
}

/// Bytes needed, by what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryEstimate {
    /// Parameters and buffers (the sinusoidal table).
    pub parameters: u64,
    /// Gradients and optimiser state.
    pub optimizer: u64,
    /// Activations of one batch, kept for backward in training, and the global filters at
    /// the batch's length.
    pub activations: u64,
}

impl MemoryEstimate {
    /// The sum, saturating.
    pub fn total(&self) -> u64 {
        self.parameters
            .saturating_add(self.optimizer)
            .saturating_add(self.activations)
    }
}

const F32: u64 = 4;

fn mul(values: &[usize]) -> u64 {
    values
        .iter()
        .fold(1u64, |acc, &v| acc.saturating_mul(v as u64))
}

/// The bytes `workload` needs for a model of `config`.
pub fn estimate(config: &Config, workload: Workload) -> MemoryEstimate {
    let (d, s, f, l) = (
        config.hidden_dim(),
        config.sequence_length(),
        config.ffn_hidden_dim(),
        config.num_layers(),
    );
    let table = if config.positional_encoding() == PositionalEncodingType::Sinusoidal {
        mul(&[s, d])
    } else {
        0
    };
    let parameters = (config.parameter_count() as u64)
        .saturating_add(table)
        .saturating_mul(F32);
    let (batch, seq_len, training, optimizer_copies) = match workload {
        Workload::Parameters => {
            return MemoryEstimate {
                parameters,
                ..MemoryEstimate::default()
            };
        }
        Workload::Inference { batch, seq_len } => (batch, seq_len, false, 0),
        Workload::Gradients { batch, seq_len } => (batch, seq_len, true, 1),
        // Gradients, the clipped copy, and AdamW's first and second moments.
        Workload::Training { batch, seq_len } => (batch, seq_len, true, 4),
    };
    let tokens = mul(&[batch, seq_len]);
    // One block's working set: the hidden state, its norm, the filter's spectrum (n/2+1
    // complex values per channel) and output, the FFN's input, and its (N, F) intermediate
    // with act'(z).
    let block = tokens.saturating_mul(mul(&[6, d]).saturating_add(mul(&[2, f])));
    let head_out = match (
        config.model_type(),
        config.output_type(),
        config.head_output_dim(),
    ) {
        (ModelType::Gfnet, OutputType::Sequence | OutputType::Lm, Some(out)) => {
            tokens.saturating_mul(out as u64)
        }
        (ModelType::Gfnet, _, Some(out)) => mul(&[batch, out]),
        _ => tokens.saturating_mul(d as u64),
    };
    let kept_blocks = match (training, config.gradient_checkpointing()) {
        (false, _) => 1,
        // Each block's input, plus one block recomputed at a time.
        (true, true) => 1,
        (true, false) => l as u64,
    };
    let checkpoint_inputs = if training && config.gradient_checkpointing() {
        tokens.saturating_mul(mul(&[l, d]))
    } else {
        0
    };
    // Backward holds the gradient of one block's activations next to the caches.
    let backward = if training { block } else { 0 };
    // The global filter at this length, folded: (n/2+1) x D complex per layer, which an eval
    // forward keeps (GlobalFilter keeps it per length) and a training forward caches with
    // the resampled Wr and Wi (2 n D); plus the (n, D) complex filter while one is built.
    let half_filter = mul(&[seq_len / 2 + 1, d, 2]);
    let filter_building = mul(&[seq_len, d, 2]);
    let filters = if training {
        half_filter
            .saturating_add(mul(&[2, seq_len, d]))
            .saturating_mul(kept_blocks)
    } else {
        half_filter.saturating_mul(l as u64)
    }
    .saturating_add(filter_building);
    let activations = block
        .saturating_mul(kept_blocks)
        .saturating_add(filters)
        .saturating_add(checkpoint_inputs)
        .saturating_add(backward)
        .saturating_add(head_out.saturating_mul(if training { 2 } else { 1 }))
        .saturating_mul(F32);
    let optimizer = (config.parameter_count() as u64)
        .saturating_mul(optimizer_copies)
        .saturating_mul(F32);
    MemoryEstimate {
        parameters,
        optimizer,
        activations,
    }
}

/// Where a budget comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSource {
    /// Given by the program (the CLI's `--max-memory`).
    Explicit,
    /// The `SPECTRANS_MAX_MEMORY` environment variable.
    Environment,
    /// `MemAvailable` of `/proc/meminfo`.
    MemAvailable,
    /// Nothing known: the largest size an allocation may have.
    AddressSpace,
}

/// The memory this process may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes.
    pub bytes: u64,
    /// Where the number comes from.
    pub source: BudgetSource,
}

impl MemoryBudget {
    /// The budget a program runs under: `max_memory` (its `--max-memory` flag) when given,
    /// else the `SPECTRANS_MAX_MEMORY` environment variable, else `MemAvailable` of
    /// `/proc/meminfo`, else [`MemoryBudget::address_space`]. An unparsable variable is
    /// [`MemoryError::BadLimit`].
    ///
    /// ```
    /// use spectrans_models::memory::{BudgetSource, MemoryBudget};
    /// let budget = MemoryBudget::from_env(Some(8 << 30))?;
    /// assert_eq!((budget.bytes, budget.source), (8 << 30, BudgetSource::Explicit));
    /// # Ok::<(), spectrans_models::memory::MemoryError>(())
    /// ```
    pub fn from_env(max_memory: Option<u64>) -> Result<Self, MemoryError> {
        if let Some(bytes) = max_memory {
            return Ok(Self {
                bytes: bytes.max(1),
                source: BudgetSource::Explicit,
            });
        }
        if let Ok(value) = std::env::var(MAX_MEMORY_ENV) {
            let bytes = parse_size(&value).map_err(|reason| MemoryError::BadLimit {
                setting: MAX_MEMORY_ENV,
                value: value.clone(),
                reason,
            })?;
            return Ok(Self {
                bytes,
                source: BudgetSource::Environment,
            });
        }
        Ok(match mem_available() {
            Some(bytes) => Self {
                bytes,
                source: BudgetSource::MemAvailable,
            },
            None => Self::address_space(),
        })
    }

    /// No limit but the largest size an allocation may have (`isize::MAX` bytes): what the
    /// library's constructors check against.
    pub fn address_space() -> Self {
        Self {
            bytes: isize::MAX as u64,
            source: BudgetSource::AddressSpace,
        }
    }

    /// Checks that `workload` for `config` fits this budget; the error names `what`.
    ///
    /// ```
    /// use spectrans_config::Config;
    /// use spectrans_models::memory::{MemoryBudget, Workload};
    ///
    /// let huge = Config::from_toml_str(
    ///     "[model]\nhidden_dim = 1000000\nnum_layers = 1000\nsequence_length = 1000000\n",
    /// ).unwrap();
    /// let budget = MemoryBudget::from_env(Some(1 << 30))?;
    /// let err = budget.check_fits(&huge, Workload::Parameters, "the model").unwrap_err();
    /// assert!(err.to_string().contains("needs"));
    /// # Ok::<(), spectrans_models::memory::MemoryError>(())
    /// ```
    pub fn check_fits(
        &self,
        config: &Config,
        workload: Workload,
        what: &str,
    ) -> Result<(), MemoryError> {
        self.check(what, estimate(config, workload).total())
    }

    /// `Ok` when `needed` bytes fit, else [`MemoryError::TooLarge`] naming `what`.
    pub fn check(&self, what: &str, needed: u64) -> Result<(), MemoryError> {
        if needed <= self.bytes {
            Ok(())
        } else {
            Err(MemoryError::TooLarge {
                what: what.to_string(),
                needed,
                available: self.bytes,
                budget: self.source,
            })
        }
    }
}

/// Why the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// The estimate exceeds the budget.
    #[error("{what} needs {} of memory, {} available ({})", format_bytes(*needed), format_bytes(*available), budget_hint(*budget))]
    TooLarge {
        /// What was refused (the model, a batch, a training run).
        what: String,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
        /// Where the budget comes from.
        budget: BudgetSource,
    },
    /// A memory limit that is not a size.
    #[error("{setting} = {value:?}: {reason}")]
    BadLimit {
        /// Where the limit came from (the flag or the variable).
        setting: &'static str,
        /// The text given.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

fn budget_hint(budget: BudgetSource) -> &'static str {
    match budget {
        BudgetSource::Explicit => "the limit set by --max-memory",
        BudgetSource::Environment => "the limit set by SPECTRANS_MAX_MEMORY",
        BudgetSource::MemAvailable => {
            "MemAvailable; --max-memory or SPECTRANS_MAX_MEMORY overrides it"
        }
        BudgetSource::AddressSpace => "the largest possible allocation",
    }
}

/// Bytes as GiB, MiB or KiB (the largest unit that gives at least 1), for messages.
///
/// ```
/// use spectrans_models::memory::format_bytes;
/// assert_eq!(format_bytes(3 << 30), "3.0 GiB");
/// assert_eq!(format_bytes(5 << 20), "5.0 MiB");
/// assert_eq!(format_bytes(32528), "31.8 KiB");
/// assert_eq!(format_bytes(12), "12 bytes");
/// ```
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|&&(size, _)| bytes >= size)
        .map(|&(size, unit)| format!("{:.1} {unit}", bytes as f64 / size as f64))
        .unwrap_or_else(|| format!("{bytes} bytes"))
}

/// Parses `8589934592`, `512M`, `8G`, `8GiB`, `1.5 GB`, `2T` (binary units) into bytes.
///
/// ```
/// use spectrans_models::memory::parse_size;
/// assert_eq!(parse_size("2G").unwrap(), 2 << 30);
/// assert_eq!(parse_size("1.5 MiB").unwrap(), 3 << 19);
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        "expected a number of bytes, optionally with a unit (K, M, G, T)".to_string()
    })?;
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        other => return Err(format!("unknown unit {other:?}: use K, M, G or T")),
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err("expected a size of at least 1 byte".into());
    }
    Ok(bytes as u64)
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

impl fmt::Display for BudgetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BudgetSource::Explicit => "--max-memory",
            BudgetSource::Environment => MAX_MEMORY_ENV,
            BudgetSource::MemAvailable => "MemAvailable",
            BudgetSource::AddressSpace => "address space",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config::from_toml_str(toml).unwrap()
    }

    #[test]
    fn parameters_are_four_bytes_each_plus_the_sinusoidal_table() {
        let c = config("[model]\nhidden_dim = 16\nnum_layers = 2\nsequence_length = 8\n");
        let e = estimate(&c, Workload::Parameters);
        assert_eq!(e.parameters, (c.parameter_count() as u64 + 8 * 16) * 4);
        assert_eq!(e.optimizer + e.activations, 0);
    }

    #[test]
    fn training_needs_more_than_gradients_which_need_more_than_inference() {
        let c = config(
            "[model]\nhidden_dim = 32\nnum_layers = 3\nsequence_length = 64\nvocab_size = 10\nnum_classes = 2\n",
        );
        let w = |f: fn(usize, usize) -> Workload| estimate(&c, f(8, 64)).total();
        let inference = w(|batch, seq_len| Workload::Inference { batch, seq_len });
        let grads = w(|batch, seq_len| Workload::Gradients { batch, seq_len });
        let train = w(|batch, seq_len| Workload::Training { batch, seq_len });
        assert!(
            inference < grads && grads < train,
            "{inference} {grads} {train}"
        );
    }

    #[test]
    fn a_long_sequence_counts_the_filters_kept_at_its_length() {
        let c = config(
            "[model]\nhidden_dim = 256\nnum_layers = 4\nsequence_length = 512\nvocab_size = 10\n",
        );
        let at = |seq_len| estimate(&c, Workload::Inference { batch: 1, seq_len }).activations;
        // Four layers keep (n/2+1) x 256 complex values each: 268 MB at n = 65,536.
        let kept = 4 * (65_536 / 2 + 1) * 256 * 8;
        assert!(at(65_536) > kept, "{}", at(65_536));
        assert!(at(65_536) < 64 * at(1024), "linear in n");
    }

    #[test]
    fn an_absurd_config_saturates_instead_of_overflowing() {
        let c =
            config("[model]\nhidden_dim = 1000000\nnum_layers = 1000\nsequence_length = 1000000\n");
        let e = estimate(
            &c,
            Workload::Training {
                batch: usize::MAX,
                seq_len: usize::MAX,
            },
        );
        assert_eq!(e.total(), u64::MAX);
        let budget = MemoryBudget {
            bytes: 24 << 30,
            source: BudgetSource::MemAvailable,
        };
        let err = budget
            .check("the model", estimate(&c, Workload::Parameters).total())
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("the model needs ") && msg.contains("24.0 GiB available"),
            "{msg}"
        );
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size(" 3 GiB ").unwrap(), 3 << 30);
        for bad in ["", "-1", "0", "1.2.3G", "5 parsecs", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
