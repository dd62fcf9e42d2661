//! Everything a [`Config`] does, in one place: its constructors (text, file, raw values,
//! builder), file I/O, the accessors, and what follows from the fields (head width, parameter
//! count, a one-line summary). The struct itself is in `values.rs`, a leaf that validation
//! fills in, so no module here imports one that imports it back.

use std::path::Path;

use std::collections::BTreeSet;

use crate::builder::ConfigBuilder;
use crate::enums::{
    Activation, FftNorm, FilterActivation, MixingType, ModelType, OutputType,
    PositionalEncodingType,
};
use crate::error::ConfigError;
use crate::parse::parse;
use crate::raw::{RawConfig, RawFfn, RawLayers, RawMixing, RawModel};
use crate::validate::{sorted, validate};
use crate::values::Config;

impl Config {
    /// Parses and validates TOML text; every violation of the text is reported.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let parsed = parse(s)?;
        let mut violations = parsed.violations;
        match validate(&parsed.raw, &parsed.rejected) {
            Ok(c) if violations.is_empty() => Ok(c),
            Ok(_) => Err(ConfigError::Invalid(violations)),
            Err(more) => {
                violations.extend(more);
                Err(ConfigError::Invalid(sorted(violations)))
            }
        }
    }

    /// Reads and validates a TOML file; a read error names the path.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml_str(&text)
    }

    /// Validates a raw config: the value rules, the defaults, and the rules between fields.
    /// Every violation is reported.
    ///
    /// ```
    /// use spectrans_config::{Config, RawConfig, RawModel};
    /// let raw = RawConfig {
    ///     model: Some(RawModel { hidden_dim: Some(0), num_layers: Some(2), ..Default::default() }),
    ///     layers: None,
    /// };
    /// let err = Config::validate(raw).unwrap_err();
    /// let text = err.to_string();
    /// assert!(text.contains("model.hidden_dim: got 0; must be > 0"));
    /// assert!(text.contains("model.sequence_length: missing"));
    /// ```
    pub fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        validate(&raw, &BTreeSet::new()).map_err(|v| ConfigError::Invalid(sorted(v)))
    }

    /// The config as TOML with every value written out (defaults resolved), so that
    /// `Config::from_toml_str(&c.to_toml_string()) == Ok(c)`.
    pub fn to_toml_string(&self) -> String {
        self.to_raw().to_toml_string()
    }

    /// Writes [`Config::to_toml_string`] to `path` with [`crate::write_atomically`]: a synced
    /// temporary file in the same folder, renamed over `path`, so a reader never sees half a
    /// file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        let path = path.as_ref();
        crate::write_atomically(path, self.to_toml_string().as_bytes()).map_err(|source| {
            ConfigError::Io {
                path: path.to_owned(),
                source,
            }
        })
    }

    /// A builder starting from the defaults of spectrans' Python API (`GFNet()`): hidden 768,
    /// 12 layers, sequence length 512, dropout 0.1, norm_eps 1e-12, sinusoidal positions,
    /// classification, sigmoid filters, ffn = 4 * hidden.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::new()
    }

    /// The raw form of this config, every field given (what [`Config::to_toml_string`] writes).
    pub fn to_raw(&self) -> RawConfig {
        let i = |v: usize| i64::try_from(v).ok();
        RawConfig {
            model: Some(RawModel {
                model_type: Some(self.model_type),
                hidden_dim: i(self.hidden_dim),
                num_layers: i(self.num_layers),
                sequence_length: i(self.sequence_length),
                dropout: Some(self.dropout),
                vocab_size: self.vocab_size.and_then(i),
                num_classes: self.num_classes.and_then(i),
                ffn_hidden_dim: i(self.ffn_hidden_dim),
                use_positional_encoding: Some(self.use_positional_encoding),
                positional_encoding_type: Some(self.positional_encoding_type),
                norm_eps: Some(self.norm_eps),
                output_type: Some(self.output_type),
                gradient_checkpointing: Some(self.gradient_checkpointing),
                filter_activation: Some(self.filter_activation),
            }),
            layers: Some(RawLayers {
                mixing: Some(RawMixing {
                    kind: Some(MixingType::GlobalFilter),
                    learnable_filters: Some(self.learnable_filters),
                    fft_norm: Some(self.fft_norm),
                    filter_init_std: Some(self.filter_init_std),
                    ..RawMixing::default()
                }),
                ffn: Some(RawFfn {
                    activation: Some(self.ffn_activation),
                    ..RawFfn::default()
                }),
            }),
        }
    }

    /// gfnet or gfnet_encoder.
    pub fn model_type(&self) -> ModelType {
        self.model_type
    }
    /// Width D of every token vector.
    pub fn hidden_dim(&self) -> usize {
        self.hidden_dim
    }
    /// Number L of GFNet blocks.
    pub fn num_layers(&self) -> usize {
        self.num_layers
    }
    /// Filter length and positional table length S.
    pub fn sequence_length(&self) -> usize {
        self.sequence_length
    }
    /// Dropout probability (training only).
    pub fn dropout(&self) -> f32 {
        self.dropout as f32
    }
    /// Dropout probability as written in the config, at full precision.
    pub fn dropout_f64(&self) -> f64 {
        self.dropout
    }
    /// Token embedding rows V, if the model embeds token ids.
    pub fn vocab_size(&self) -> Option<usize> {
        self.vocab_size
    }
    /// Output classes, if given.
    pub fn num_classes(&self) -> Option<usize> {
        self.num_classes
    }
    /// FFN inner width F: model.ffn_hidden_dim, else layers.ffn.intermediate_dim, else 4 * D.
    pub fn ffn_hidden_dim(&self) -> usize {
        self.ffn_hidden_dim
    }
    /// The positional encoding in effect: `None` when `use_positional_encoding` is false.
    pub fn positional_encoding(&self) -> PositionalEncodingType {
        if self.use_positional_encoding {
            self.positional_encoding_type
        } else {
            PositionalEncodingType::None
        }
    }
    /// The `use_positional_encoding` field.
    pub fn use_positional_encoding(&self) -> bool {
        self.use_positional_encoding
    }
    /// The `positional_encoding_type` field (see [`Config::positional_encoding`] for the one in
    /// effect).
    pub fn positional_encoding_type(&self) -> PositionalEncodingType {
        self.positional_encoding_type
    }
    /// LayerNorm epsilon.
    pub fn norm_eps(&self) -> f64 {
        self.norm_eps
    }
    /// The task head; always `None` for gfnet_encoder.
    pub fn output_type(&self) -> OutputType {
        self.output_type
    }
    /// Whether to recompute activations in the backward pass.
    pub fn gradient_checkpointing(&self) -> bool {
        self.gradient_checkpointing
    }
    /// Applied to the real and imaginary filter weights.
    pub fn filter_activation(&self) -> FilterActivation {
        self.filter_activation
    }
    /// FFT scaling of the global filter.
    pub fn fft_norm(&self) -> FftNorm {
        self.fft_norm
    }
    /// Standard deviation of the random filter initialisation.
    pub fn filter_init_std(&self) -> f64 {
        self.filter_init_std
    }
    /// Whether the filters are trainable.
    pub fn learnable_filters(&self) -> bool {
        self.learnable_filters
    }
    /// Activation between the two FFN linears.
    pub fn ffn_activation(&self) -> Activation {
        self.ffn_activation
    }

    /// Output width of the head: classification -> num_classes (None without it: the model
    /// returns hidden states), regression -> 1, sequence -> num_classes | vocab_size | hidden_dim,
    /// lm -> num_classes | vocab_size, none -> None.
    pub fn head_output_dim(&self) -> Option<usize> {
        match self.output_type {
            OutputType::Classification => self.num_classes,
            OutputType::Regression => Some(1),
            OutputType::Sequence => Some(
                self.num_classes
                    .or(self.vocab_size)
                    .unwrap_or(self.hidden_dim),
            ),
            OutputType::Lm => self.num_classes.or(self.vocab_size),
            OutputType::None => None,
        }
    }

    /// Trainable parameters, as PyTorch's `sum(p.numel() for p in model.parameters())` counts
    /// them (buffers such as the sinusoidal table excluded):
    /// V·D (embedding) + S·D (learned positions) + L·(2·S·D + 4·D + 2·D·F + F + D) + 2·D
    /// + head (D·out + out). Filters count only when `learnable_filters`.
    pub fn parameter_count(&self) -> usize {
        // Validation rejects configs whose count overflows, so this never saturates.
        self.checked_parameter_count().unwrap_or(usize::MAX)
    }

    /// [`Config::parameter_count`], or None when it overflows usize.
    pub(crate) fn checked_parameter_count(&self) -> Option<usize> {
        let (d, s, f, l) = (
            self.hidden_dim,
            self.sequence_length,
            self.ffn_hidden_dim,
            self.num_layers,
        );
        let embedding = match self.vocab_size {
            Some(v) if self.model_type == ModelType::Gfnet => v.checked_mul(d)?,
            _ => 0,
        };
        let positions = if self.positional_encoding() == PositionalEncodingType::Learned {
            s.checked_mul(d)?
        } else {
            0
        };
        let filters = if self.learnable_filters {
            s.checked_mul(d)?.checked_mul(2)?
        } else {
            0
        };
        let norms = d.checked_mul(4)?;
        let fc1 = d.checked_mul(f)?.checked_add(f)?;
        let fc2 = f.checked_mul(d)?.checked_add(d)?;
        let block = filters
            .checked_add(norms)?
            .checked_add(fc1)?
            .checked_add(fc2)?;
        let blocks = block.checked_mul(l)?;
        let final_norm = d.checked_mul(2)?;
        let head = match self.head_output_dim() {
            Some(out) => d.checked_mul(out)?.checked_add(out)?,
            None => 0,
        };
        embedding
            .checked_add(positions)?
            .checked_add(blocks)?
            .checked_add(final_norm)?
            .checked_add(head)
    }

    /// One line describing the model: type, sizes, positions, head, parameter count, and the
    /// input and output shapes (B = batch, N = tokens).
    ///
    /// ```
    /// let c = spectrans_config::Config::builder()
    ///     .hidden_dim(8).num_layers(2).sequence_length(16).vocab_size(100).num_classes(3)
    ///     .build()?;
    /// assert_eq!(
    ///     c.summary(),
    ///     "gfnet: 2 layers, hidden 8, sequence 16, ffn 32, sinusoidal positions, sigmoid filters, \
    ///      classification head; 2523 parameters; input_ids (B, N) < 100 or inputs_embeds (B, N, 8) \
    ///      -> output (B, 3)"
    /// );
    /// # Ok::<(), spectrans_config::ConfigError>(())
    /// ```
    pub fn summary(&self) -> String {
        let d = self.hidden_dim;
        let input = match (self.model_type, self.vocab_size) {
            (ModelType::Gfnet, Some(v)) => {
                format!("input_ids (B, N) < {v} or inputs_embeds (B, N, {d})")
            }
            _ => format!("inputs_embeds (B, N, {d})"),
        };
        let output = match (self.output_type, self.head_output_dim()) {
            (OutputType::Classification | OutputType::Regression, Some(out)) => {
                format!("(B, {out})")
            }
            (OutputType::Sequence | OutputType::Lm, Some(out)) => format!("(B, N, {out})"),
            _ => format!("(B, N, {d}) hidden states"),
        };
        let head = match (self.output_type, self.head_output_dim()) {
            (OutputType::None, _) | (OutputType::Classification, None) => "no head".to_owned(),
            (o, _) => format!("{o} head"),
        };
        format!(
            "{}: {} layers, hidden {d}, sequence {}, ffn {}, {} positions, {} filters, {head}; \
             {} parameters; {input} -> output {output}",
            self.model_type,
            self.num_layers,
            self.sequence_length,
            self.ffn_hidden_dim,
            self.positional_encoding(),
            self.filter_activation,
            self.parameter_count(),
        )
    }
}
