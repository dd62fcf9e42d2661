//! Config enums onto the layers' options (spectrans-layers does not depend on the config crate).

use spectrans_config::{Config, FfnActivation, FftNorm, FilterActivation};
use spectrans_layers::{Activation, BlockOptions};

/// The filter activation of the layers crate.
pub fn filter_activation(a: FilterActivation) -> spectrans_layers::FilterActivation {
    match a {
        FilterActivation::Sigmoid => spectrans_layers::FilterActivation::Sigmoid,
        FilterActivation::Tanh => spectrans_layers::FilterActivation::Tanh,
        FilterActivation::Identity => spectrans_layers::FilterActivation::Identity,
    }
}

/// The FFN activation of the layers crate.
pub fn ffn_activation(a: FfnActivation) -> Activation {
    match a {
        FfnActivation::Gelu => Activation::Gelu,
        FfnActivation::Relu => Activation::Relu,
        FfnActivation::Silu => Activation::Silu,
        FfnActivation::Tanh => Activation::Tanh,
        FfnActivation::Sigmoid => Activation::Sigmoid,
        FfnActivation::Elu => Activation::Elu,
        FfnActivation::LeakyRelu => Activation::LeakyRelu,
    }
}

/// The FFT normalisation of the fft crate.
pub fn fft_norm(n: FftNorm) -> spectrans_fft::FftNorm {
    match n {
        FftNorm::Ortho => spectrans_fft::FftNorm::Ortho,
        FftNorm::Forward => spectrans_fft::FftNorm::Forward,
        FftNorm::Backward => spectrans_fft::FftNorm::Backward,
    }
}

/// Options of every block of a model built from `config`.
pub fn block_options(config: &Config) -> BlockOptions {
    BlockOptions {
        hidden_dim: config.hidden_dim(),
        sequence_length: config.sequence_length(),
        ffn_hidden_dim: config.ffn_hidden_dim(),
        filter_activation: filter_activation(config.filter_activation()),
        fft_norm: fft_norm(config.fft_norm()),
        filter_init_std: config.filter_init_std() as f32,
        ffn_activation: ffn_activation(config.ffn_activation()),
        dropout: config.dropout(),
        mixing_dropout: config.dropout(),
        ffn_dropout: config.dropout(),
        norm_eps: config.norm_eps() as f32,
    }
}
