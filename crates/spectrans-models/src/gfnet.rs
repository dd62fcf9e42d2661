//! GFNet and GFNetEncoder (spectrans `models/gfnet.py` on `models/base.py`).
//!
//! input_ids → Embedding (or inputs_embeds) → positional encoding → dropout →
//! L pre-norm blocks [h = x + GF(LN1 x); out = h + FFN(LN2 h)] → final LayerNorm → head.

use ndarray::{Array2, Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewD, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use spectrans_config::{Config, ModelType, OutputType, PositionalEncodingType};
use spectrans_layers::{
    BlockOptions, Dropout, DropoutMask, Embedding, EmbeddingCache, EmbeddingGrads, GfnetBlock,
    GfnetBlockCache, GfnetBlockGrads, LayerNorm, LayerNormCache, LayerNormGrads, OutputTokens,
    PositionalEncoding, PositionalEncodingCache, PositionalEncodingGrads, Precision, TrainContext,
    reuse,
};

use crate::error::ModelError;
use crate::heads::{HeadKind, OutputHead, OutputHeadCache, OutputHeadGrads, Pooling, check_mask};
use crate::pool::on_pool;

/// The model's input: token ids or embeddings.
#[derive(Debug, Clone, Copy)]
pub enum ModelInput<'a> {
    /// `input_ids`, (B, N).
    TokenIds(ArrayView2<'a, i64>),
    /// `inputs_embeds`, (B, N, D).
    Embeddings(ArrayView3<'a, f32>),
}

impl ModelInput<'_> {
    fn batch_and_len(&self) -> (usize, usize) {
        match self {
            ModelInput::TokenIds(ids) => ids.dim(),
            ModelInput::Embeddings(e) => (e.dim().0, e.dim().1),
        }
    }
}

/// A GFNet (or GFNetEncoder, by its config's `model_type`).
///
/// ```
/// use ndarray::Array2;
/// use spectrans_config::Config;
/// use spectrans_models::{Gfnet, ModelInput};
///
/// let config = Config::builder()
///     .vocab_size(100).hidden_dim(32).num_layers(2).sequence_length(16).num_classes(2)
///     .build().unwrap();
/// let model = Gfnet::new(&config, 0).unwrap();
/// let ids = Array2::<i64>::from_shape_fn((8, 16), |(b, n)| ((b * 16 + n) % 100) as i64);
/// let logits = model.forward(ModelInput::TokenIds(ids.view()), None).unwrap();
/// assert_eq!(logits.shape(), &[8, 2]);
/// ```
#[derive(Debug, Clone)]
pub struct Gfnet {
    config: Config,
    pub(crate) embedding: Option<Embedding>,
    pub(crate) positional_encoding: Option<PositionalEncoding>,
    pub(crate) blocks: Vec<GfnetBlock>,
    pub(crate) final_norm: LayerNorm,
    pub(crate) output_head: Option<OutputHead>,
    dropout: Dropout,
    precision: Precision,
}

/// What a forward returns, by the kind of head, so a caller never guesses the rank.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelOutput {
    /// (B, C): one row per sequence (classification logits, regression values).
    PerSequence(Array2<f32>),
    /// (B, N, C): one row per token (sequence and lm logits).
    PerToken(Array3<f32>),
    /// (B, N, D): the hidden states of a model without a head.
    Hidden(Array3<f32>),
}

impl ModelOutput {
    /// The output as one array of any rank (what [`Gfnet::forward`] returns).
    pub fn into_dyn(self) -> ArrayD<f32> {
        match self {
            Self::PerSequence(a) => a.into_dyn(),
            Self::PerToken(a) | Self::Hidden(a) => a.into_dyn(),
        }
    }

    /// Its shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Self::PerSequence(a) => a.shape(),
            Self::PerToken(a) | Self::Hidden(a) => a.shape(),
        }
    }

    /// A view of any rank.
    pub fn view(&self) -> ArrayViewD<'_, f32> {
        match self {
            Self::PerSequence(a) => a.view().into_dyn(),
            Self::PerToken(a) | Self::Hidden(a) => a.view().into_dyn(),
        }
    }

    /// The number of sequences (the batch axis).
    pub fn batch(&self) -> usize {
        self.shape()[0]
    }

    /// Sequence `index` of the batch, without the batch axis: (C,) per sequence, (N, C) per
    /// token, (N, D) hidden states. `None` past the batch.
    pub fn sequence(&self, index: usize) -> Option<ArrayD<f32>> {
        (index < self.batch()).then(|| self.view().index_axis(Axis(0), index).to_owned())
    }
}

/// Gradients of every parameter of a [`Gfnet`], by the same names.
#[derive(Debug, Clone)]
pub struct GfnetGrads {
    /// Of `embedding`.
    pub embedding: Option<EmbeddingGrads>,
    /// Of `positional_encoding` (learned only).
    pub positional_encoding: Option<PositionalEncodingGrads>,
    /// Of `blocks.{i}`.
    pub blocks: Vec<GfnetBlockGrads>,
    /// Of `final_norm`.
    pub final_norm: LayerNormGrads,
    /// Of `output_head`.
    pub output_head: Option<OutputHeadGrads>,
}

/// What [`Gfnet::backward`] needs from a training forward.
#[derive(Debug)]
pub struct GfnetCache {
    embedding: Option<EmbeddingCache>,
    positional: Option<PositionalEncodingCache>,
    dropout: DropoutMask,
    blocks: BlockCaches,
    final_norm: LayerNormCache,
    head: Option<OutputHeadCache>,
    hidden_shape: (usize, usize, usize),
}

#[derive(Debug)]
enum BlockCaches {
    /// Every block's activations, kept.
    Kept(Vec<GfnetBlockCache>),
    /// Gradient checkpointing: each block's input and the RNG state it started from, to
    /// recompute its activations (with the same dropout masks) during backward.
    Recompute(Vec<(Array3<f32>, TrainContext)>),
}

impl GfnetCache {
    /// Hands its large arrays to the next training step's forward, which overwrites them
    /// instead of zeroing fresh ones ([`reuse`]); call it once backward is
    /// done with the cache.
    pub fn recycle(self) {
        let mut arrays = Vec::new();
        if let BlockCaches::Kept(blocks) = self.blocks {
            for block in blocks {
                block.into_arrays(&mut arrays);
            }
        }
        self.final_norm.into_arrays(&mut arrays);
        reuse::hand_over(arrays);
    }
}

/// Sets the number format of a block's Linears (`ffn.fc1`, `ffn.fc2`) and holds them in it.
fn set_block_precision(block: &mut GfnetBlock, precision: Precision) {
    for linear in [&mut block.ffn.fc1, &mut block.ffn.fc2] {
        linear.set_precision(precision);
        linear.pack();
    }
}

fn pooling_for(kind: HeadKind) -> Pooling {
    match kind {
        HeadKind::Regression => Pooling::Mean,
        _ => Pooling::Cls,
    }
}

impl Gfnet {
    /// Builds a model from a validated config, initialised as spectrans does, seeded.
    /// It reads no environment: a model whose parameters no allocation could hold (past
    /// `isize::MAX` bytes) is refused with [`ModelError::Memory`] before anything is
    /// allocated; to hold a model to the machine's memory, check it first against a
    /// [`crate::memory::MemoryBudget`] (`MemoryBudget::from_env(None)?.check_fits(..)`).
    pub fn new(config: &Config, seed: u64) -> Result<Self, ModelError> {
        Self::with_precision(config, seed, Precision::F32)
    }

    /// [`Gfnet::new`] with every Linear in `precision` from the start: each block's Linears
    /// are converted as soon as the block is built, so the f32 weights of at most one block
    /// exist at a time (the process's peak memory is that of the converted model, not of the
    /// f32 one). The same values as `new` followed by [`Gfnet::set_precision`].
    ///
    /// ```
    /// use spectrans_models::{Gfnet, Precision};
    /// let config = spectrans_config::Config::builder()
    ///     .vocab_size(50).hidden_dim(16).num_layers(2).sequence_length(8).num_classes(3)
    ///     .build()?;
    /// let model = Gfnet::with_precision(&config, 0, Precision::Int8)?;
    /// assert_eq!(model.precision(), Precision::Int8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_precision(
        config: &Config,
        seed: u64,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        let mut model = Self::new_unpacked(config, seed, precision)?;
        model.pack_weights();
        Ok(model)
    }

    /// The model of [`Gfnet::with_precision`], for the loaders, which overwrite every weight:
    /// at f32 nothing is packed yet (the loaders pack each part once it is loaded); at bf16
    /// and int8 each block's Linears are held in that format as soon as the block is built.
    pub(crate) fn new_unpacked(
        config: &Config,
        seed: u64,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        crate::memory::MemoryBudget::address_space().check_fits(
            config,
            crate::memory::Workload::Parameters,
            "the model",
        )?;
        let rng = &mut ChaCha8Rng::seed_from_u64(seed);
        let d = config.hidden_dim();
        let s = config.sequence_length();
        let dropout = config.dropout();
        let encoder = config.model_type() == ModelType::GfnetEncoder;
        let embedding = match (encoder, config.vocab_size()) {
            (false, Some(v)) => Some(Embedding::new(v, d, rng)),
            _ => None,
        };
        let positional_encoding = match config.positional_encoding() {
            PositionalEncodingType::Sinusoidal => {
                Some(PositionalEncoding::sinusoidal(s, d, dropout)?)
            }
            PositionalEncodingType::Learned => {
                Some(PositionalEncoding::learned(s, d, dropout, rng)?)
            }
            PositionalEncodingType::Rotary => Some(PositionalEncoding::rotary(d)?),
            PositionalEncodingType::None => None,
        };
        let options = BlockOptions::from(config);
        let blocks = (0..config.num_layers())
            .map(|_| {
                let mut block = GfnetBlock::new(options.clone(), rng)?;
                if precision != Precision::F32 {
                    set_block_precision(&mut block, precision);
                }
                Ok(block)
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let final_norm = LayerNorm::new(d, config.norm_eps() as f32);
        let output_head = match (encoder, config.output_type(), config.head_output_dim()) {
            (true, _, _) | (_, OutputType::None, _) | (_, _, None) => None,
            (false, kind, Some(out)) => {
                let kind = match kind {
                    OutputType::Classification => HeadKind::Classification,
                    OutputType::Regression => HeadKind::Regression,
                    _ => HeadKind::Sequence,
                };
                Some(OutputHead::new(
                    kind,
                    pooling_for(kind),
                    d,
                    out,
                    dropout,
                    rng,
                )?)
            }
        };
        let mut model = Self {
            config: config.clone(),
            embedding,
            positional_encoding,
            blocks,
            final_norm,
            output_head,
            dropout: Dropout::new(dropout)?,
            precision,
        };
        if let (Some(head), true) = (&mut model.output_head, precision != Precision::F32) {
            head.linear.set_precision(precision);
            head.linear.pack();
        }
        Ok(model)
    }

    /// Keeps every Linear's weight (each block's `ffn.fc1`, `ffn.fc2`, and the output head)
    /// in the layout our GEMM reads, so that eval forwards do not repack them on every call
    /// ([`spectrans_layers::Linear::pack`]: only at f32, only where that GEMM is the CPU's
    /// fastest; one copy of each weight either way). [`Gfnet::new`] and the weight loaders
    /// call it; any change to a weight (an optimiser step, `blocks_mut`, a load) unpacks that
    /// weight first, so a packed copy is never stale.
    pub fn pack_weights(&mut self) {
        for block in &mut self.blocks {
            block.ffn.fc1.pack();
            block.ffn.fc2.pack();
        }
        if let Some(head) = &mut self.output_head {
            head.linear.pack();
        }
    }

    /// Sets the number format of every Linear (each block's `ffn.fc1` and `ffn.fc2`, and the
    /// output head) in eval forwards; the embedding, the LayerNorms and the global filters stay
    /// in f32. See [`spectrans_layers::Linear::set_precision`] for what `Bf16` and `Int8` do.
    /// Training needs [`Precision::F32`]: [`Gfnet::forward_train`] refuses otherwise.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use spectrans_models::{Gfnet, ModelInput, Precision};
    /// let mut model = Gfnet::builder().vocab_size(50).hidden_dim(16).num_layers(1)
    ///     .max_sequence_length(8).num_classes(3).build(0)?;
    /// let ids = Array2::from_shape_fn((2, 8), |(b, n)| (b + 3 * n) as i64);
    /// let exact = model.forward(ModelInput::TokenIds(ids.view()), None)?.into_dyn();
    /// model.set_precision(Precision::Int8);
    /// let int8 = model.forward(ModelInput::TokenIds(ids.view()), None)?.into_dyn();
    /// let scale = exact.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    /// assert!(exact.iter().zip(&int8).all(|(a, b)| (a - b).abs() <= 0.1 * scale));
    /// # Ok::<(), spectrans_models::ModelError>(())
    /// ```
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
        for block in &mut self.blocks {
            set_block_precision(block, precision);
        }
        if let Some(head) = &mut self.output_head {
            head.linear.set_precision(precision);
        }
        self.pack_weights();
    }

    /// The number format set by [`Gfnet::set_precision`] (f32 unless set).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// `embedding`, when the config has a vocab_size.
    pub fn embedding(&self) -> Option<&Embedding> {
        self.embedding.as_ref()
    }

    /// `positional_encoding`, when enabled.
    pub fn positional_encoding(&self) -> Option<&PositionalEncoding> {
        self.positional_encoding.as_ref()
    }

    /// `blocks.{i}`: as many as the config's `num_layers`.
    pub fn blocks(&self) -> &[GfnetBlock] {
        &self.blocks
    }

    /// The blocks, to edit their parameters in place. A slice, so the count always matches
    /// the config; every layer checks its own fields on use, so a field set to a wrong shape
    /// is a typed error at the next forward, never a panic.
    pub fn blocks_mut(&mut self) -> &mut [GfnetBlock] {
        &mut self.blocks
    }

    /// `final_norm`.
    pub fn final_norm(&self) -> &LayerNorm {
        &self.final_norm
    }

    /// `output_head`, when the output type has one.
    pub fn output_head(&self) -> Option<&OutputHead> {
        self.output_head.as_ref()
    }

    /// The config the model was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the optimiser updates the parameter `name`: everything except the global
    /// filters when the config says `learnable_filters = false` (they are then frozen, still
    /// loaded and saved by name).
    pub fn is_trainable(&self, name: &str) -> bool {
        self.config.learnable_filters()
            || !(name.ends_with("mixing_layer.filter_real")
                || name.ends_with("mixing_layer.filter_imag"))
    }

    /// Sets the pooling of a classification or regression head (spectrans: cls, resp. mean).
    pub fn set_pooling(&mut self, pooling: Pooling) {
        if let Some(head) = &mut self.output_head {
            head.pooling = pooling;
        }
    }

    /// The tokens block `index` must compute: all of them, except in the last block when the
    /// head reads token 0 alone (cls pooling), where the FFN half runs on that token only.
    fn block_tokens(&self, index: usize) -> OutputTokens {
        let last = index + 1 == self.blocks.len();
        match &self.output_head {
            Some(h) if last && h.kind != HeadKind::Sequence && h.pooling == Pooling::Cls => {
                OutputTokens::First
            }
            _ => OutputTokens::All,
        }
    }

    fn embed(&self, input: ModelInput<'_>) -> Result<Array3<f32>, ModelError> {
        let d = self.config.hidden_dim();
        match input {
            ModelInput::TokenIds(ids) => match &self.embedding {
                Some(e) => Ok(e.forward(ids)?),
                None => Err(ModelError::NoEmbedding { hidden_dim: d }),
            },
            ModelInput::Embeddings(x) => {
                check_embeddings(x, d)?;
                Ok(x.as_standard_layout().into_owned())
            }
        }
    }

    fn check_input(
        &self,
        input: ModelInput<'_>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<(), ModelError> {
        let (b, n) = input.batch_and_len();
        if b == 0 || n == 0 {
            return Err(ModelError::Shape {
                what: "input",
                expected: "at least one sequence of at least one token".into(),
                found: vec![b, n],
            });
        }
        if let Some(m) = mask {
            check_mask(m, b, n)?;
        }
        Ok(())
    }

    /// Eval-mode forward (no dropout): [`ModelOutput::PerSequence`] (B, C) for classification
    /// and regression heads, [`ModelOutput::PerToken`] (B, N, C) for sequence and lm heads,
    /// [`ModelOutput::Hidden`] (B, N, D) without a head.
    ///
    /// **The attention mask is for the head's pooling only**, as in spectrans: a regression
    /// head averages the tokens the mask keeps (`true`); classification (first token),
    /// sequence and lm heads ignore it. Every block's global filter still mixes all N
    /// positions, pads included, so padding a sequence changes its answer even when the mask
    /// hides the pads. To score sequences of different lengths each as if alone, use
    /// [`Gfnet::forward_ragged`].
    ///
    /// ```
    /// use ndarray::{Array2, array};
    /// use spectrans_config::Config;
    /// use spectrans_models::{Gfnet, ModelInput, ModelOutput};
    /// let config = Config::from_toml_str(
    ///     "[model]\nhidden_dim = 8\nnum_layers = 1\nsequence_length = 4\n\
    ///      vocab_size = 10\nnum_classes = 1\noutput_type = \"regression\"\n",
    /// )?;
    /// let model = Gfnet::new(&config, 0)?;
    /// // [3, 1, 4] padded with 0 to length 4; the mask keeps the first three tokens.
    /// let ids = array![[3i64, 1, 4, 0]];
    /// let mask = array![[true, true, true, false]];
    /// let ModelOutput::PerSequence(padded) =
    ///     model.forward(ModelInput::TokenIds(ids.view()), Some(mask.view()))?
    /// else { unreachable!("a regression head gives one row per sequence") };
    /// assert_eq!(padded.dim(), (1, 1));
    /// // The pad still went through the filter: alone, [3, 1, 4] gets another answer.
    /// let alone = Array2::from_shape_vec((1, 3), vec![3i64, 1, 4])?;
    /// let alone = model.forward(ModelInput::TokenIds(alone.view()), None)?.into_dyn();
    /// assert_ne!(alone[[0, 0]], padded[[0, 0]]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forward(
        &self,
        input: ModelInput<'_>,
        attention_mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<ModelOutput, ModelError> {
        let out = on_pool(|| self.forward_dyn(input, attention_mask))?;
        Ok(match self.output_head.as_ref().map(|h| h.kind) {
            Some(HeadKind::Classification | HeadKind::Regression) => {
                ModelOutput::PerSequence(out.into_dimensionality()?)
            }
            Some(HeadKind::Sequence) => ModelOutput::PerToken(out.into_dimensionality()?),
            None => ModelOutput::Hidden(out.into_dimensionality()?),
        })
    }

    fn forward_dyn(
        &self,
        input: ModelInput<'_>,
        attention_mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<ArrayD<f32>, ModelError> {
        self.check_input(input, attention_mask)?;
        let mut x = self.embed(input)?;
        if let Some(pe) = &self.positional_encoding {
            x = pe.forward(x.view())?;
        }
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward_tokens(x.view(), self.block_tokens(i))?;
        }
        let x = self.final_norm.forward(x.view())?;
        match &self.output_head {
            Some(head) => head.forward(x.view(), attention_mask),
            None => Ok(x.into_dyn()),
        }
    }

    /// Training-mode forward: dropout per `ctx`, keeps what [`Gfnet::backward`] needs (or, with
    /// gradient checkpointing, only each block's input).
    pub fn forward_train(
        &self,
        input: ModelInput<'_>,
        attention_mask: Option<ArrayView2<'_, bool>>,
        ctx: &mut TrainContext,
    ) -> Result<(ArrayD<f32>, GfnetCache), ModelError> {
        on_pool(|| {
            if self.precision != Precision::F32 {
                return Err(ModelError::TrainingPrecision {
                    precision: self.precision,
                });
            }
            self.check_input(input, attention_mask)?;
            let (mut x, embedding) = match input {
                ModelInput::TokenIds(ids) => match &self.embedding {
                    Some(e) => {
                        let (x, c) = e.forward_train(ids, ctx)?;
                        (x, Some(c))
                    }
                    None => {
                        return Err(ModelError::NoEmbedding {
                            hidden_dim: self.config.hidden_dim(),
                        });
                    }
                },
                ModelInput::Embeddings(_) => (self.embed(input)?, None),
            };
            let positional = match &self.positional_encoding {
                Some(pe) => {
                    let (y, c) = pe.forward_train(x.view(), ctx)?;
                    x = y;
                    Some(c)
                }
                None => None,
            };
            let dropout = match x.as_slice_mut() {
                Some(slice) => self.dropout.apply(slice, ctx),
                None => DropoutMask::identity(),
            };
            let blocks = if self.config.gradient_checkpointing() {
                let mut saved = Vec::with_capacity(self.blocks.len());
                for (i, block) in self.blocks.iter().enumerate() {
                    let start = ctx.clone();
                    let (y, _) = block.forward_train_tokens(x.view(), ctx, self.block_tokens(i))?;
                    saved.push((x, start));
                    x = y;
                }
                BlockCaches::Recompute(saved)
            } else {
                let mut caches = Vec::with_capacity(self.blocks.len());
                for (i, block) in self.blocks.iter().enumerate() {
                    let (y, c) = block.forward_train_tokens(x.view(), ctx, self.block_tokens(i))?;
                    caches.push(c);
                    x = y;
                }
                BlockCaches::Kept(caches)
            };
            let hidden_shape = x.dim();
            let (x, final_norm) = self.final_norm.forward_train(x.view(), ctx)?;
            let (out, head) = match &self.output_head {
                Some(h) => {
                    let (o, c) = h.forward_train(x.view(), attention_mask, ctx)?;
                    (o, Some(c))
                }
                None => (x.into_dyn(), None),
            };
            Ok((
                out,
                GfnetCache {
                    embedding,
                    positional,
                    dropout,
                    blocks,
                    final_norm,
                    head,
                    hidden_shape,
                },
            ))
        })
    }

    /// Backward from dL/d(output); accumulates every parameter's gradient into `grads`. Takes
    /// the cache by reference, as every layer's backward does.
    pub fn backward(
        &self,
        cache: &GfnetCache,
        grad_output: ArrayViewD<'_, f32>,
        grads: &mut GfnetGrads,
    ) -> Result<(), ModelError> {
        on_pool(|| {
            let mut g = match (&self.output_head, &cache.head, &mut grads.output_head) {
                (Some(h), Some(c), Some(hg)) => h.backward(c, grad_output, hg)?,
                _ => {
                    let (b, n, d) = cache.hidden_shape;
                    grad_output
                        .as_standard_layout()
                        .into_owned()
                        .into_shape_with_order((b, n, d))
                        .map_err(|_| ModelError::Shape {
                            what: "output gradient",
                            expected: format!("({b}, {n}, {d})"),
                            found: grad_output.shape().to_vec(),
                        })?
                }
            };
            g = self
                .final_norm
                .backward(&cache.final_norm, g.view(), &mut grads.final_norm)?;
            match &cache.blocks {
                BlockCaches::Kept(caches) => {
                    for ((block, c), bg) in self
                        .blocks
                        .iter()
                        .zip(caches.iter())
                        .zip(grads.blocks.iter_mut())
                        .rev()
                    {
                        g = block.backward(c, g.view(), bg)?;
                    }
                }
                BlockCaches::Recompute(saved) => {
                    for (i, ((block, (input, start)), bg)) in self
                        .blocks
                        .iter()
                        .zip(saved)
                        .zip(grads.blocks.iter_mut())
                        .enumerate()
                        .rev()
                    {
                        let mut ctx = start.clone();
                        let tokens = self.block_tokens(i);
                        let (_, c) = block.forward_train_tokens(input.view(), &mut ctx, tokens)?;
                        g = block.backward(&c, g.view(), bg)?;
                        // The next block recomputed (the one before) takes these arrays.
                        let mut arrays = Vec::new();
                        c.into_arrays(&mut arrays);
                        reuse::hand_over(arrays);
                    }
                }
            }
            if let Some(slice) = g.as_slice_mut() {
                cache.dropout.backward_in_place(slice, "model dropout")?;
            }
            if let (Some(pe), Some(c), Some(pg)) = (
                &self.positional_encoding,
                &cache.positional,
                &mut grads.positional_encoding,
            ) {
                g = pe.backward(c, g.view(), pg)?;
            }
            if let (Some(e), Some(c), Some(eg)) =
                (&self.embedding, &cache.embedding, &mut grads.embedding)
            {
                e.backward(c, g.view(), eg)?;
            }
            Ok(())
        })
    }

    /// Zero gradients for every parameter.
    pub fn zero_grads(&self) -> GfnetGrads {
        GfnetGrads {
            embedding: self.embedding.as_ref().map(EmbeddingGrads::zeros_like),
            positional_encoding: self
                .positional_encoding
                .as_ref()
                .map(PositionalEncodingGrads::zeros_like),
            blocks: self
                .blocks
                .iter()
                .map(GfnetBlockGrads::zeros_like)
                .collect(),
            final_norm: LayerNormGrads::zeros_like(&self.final_norm),
            output_head: self.output_head.as_ref().map(OutputHeadGrads::zeros_like),
        }
    }
}

/// Checks that embeddings are (B, N, `hidden`) and finite.
fn check_embeddings(x: ArrayView3<'_, f32>, hidden: usize) -> Result<(), ModelError> {
    if x.dim().2 != hidden {
        return Err(ModelError::Shape {
            what: "inputs_embeds",
            expected: format!("(batch, seq, {hidden})"),
            found: x.shape().to_vec(),
        });
    }
    if let Some((index, _)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(ModelError::NonFinite {
            what: "inputs_embeds",
            index: vec![index.0, index.1, index.2],
        });
    }
    Ok(())
}

spectrans_layers::parameters!(Gfnet, GfnetGrads => [
    optional embedding,
    optional positional_encoding,
    list blocks,
    module final_norm,
    optional output_head,
]);
