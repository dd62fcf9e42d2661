//! Shape checks shared by the transforms.

use crate::FftError;

/// Ok when `found == expected`, else a [`FftError::ShapeMismatch`] naming `argument`.
pub(crate) fn expect_shape(
    argument: &'static str,
    found: &[usize],
    expected: &[usize],
) -> Result<(), FftError> {
    if found == expected {
        Ok(())
    } else {
        Err(FftError::ShapeMismatch {
            argument,
            expected: expected.to_vec(),
            found: found.to_vec(),
        })
    }
}
