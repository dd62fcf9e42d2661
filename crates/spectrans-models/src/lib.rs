//! GFNet and GFNetEncoder models with PyTorch spectrans parity: output heads, safetensors
//! weights by `state_dict` name, losses, optimisers and training.

pub mod data;
pub mod loss;
pub mod optim;
pub mod tensor_file;
