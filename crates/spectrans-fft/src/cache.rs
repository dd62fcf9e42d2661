//! Process-wide cache of real FFT plans, one per length.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::{FftError, SeqRealFft};

static REAL_PLANS: OnceLock<Mutex<HashMap<usize, Arc<SeqRealFft>>>> = OnceLock::new();

/// The shared plan for length `n`, made on first request.
///
/// ```
/// let a = spectrans_fft::real_plan(12)?;
/// let b = spectrans_fft::real_plan(12)?;
/// assert!(std::sync::Arc::ptr_eq(&a, &b));
/// # Ok::<(), spectrans_fft::FftError>(())
/// ```
pub fn real_plan(n: usize) -> Result<Arc<SeqRealFft>, FftError> {
    let plans = REAL_PLANS.get_or_init(Default::default);
    let mut plans = plans.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(plan) = plans.get(&n) {
        return Ok(Arc::clone(plan));
    }
    let plan = Arc::new(SeqRealFft::new(n)?);
    plans.insert(n, Arc::clone(&plan));
    Ok(plan)
}
