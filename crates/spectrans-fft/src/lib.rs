//! spectrans-fft
