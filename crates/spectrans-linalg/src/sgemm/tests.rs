use ndarray::{Array2, ArrayView2};
use proptest::prelude::*;

use super::kernel::{APanel, BPanel, Kernel, MR, NR};
use super::*;
use crate::RowMap;
use crate::precision::{quantize_rows_into, round_bf16};

/// [`super::gemm_packed`] on the rayon pool.
fn gemm_packed(
    dst: ArrayViewMut2<'_, f32>,
    lhs: ArrayView2<'_, f32>,
    rhs: &PackedRhs,
    epilogue: Epilogue<'_>,
) -> Result<(), LinalgError> {
    super::gemm_packed(dst, lhs, rhs, epilogue, Parallelism::Rayon)
}

/// [`super::gemm_unpacked`] on the rayon pool.
fn gemm_unpacked(
    dst: ArrayViewMut2<'_, f32>,
    lhs: ArrayView2<'_, f32>,
    rhs: ArrayView2<'_, f32>,
    epilogue: Epilogue<'_>,
) -> Result<(), LinalgError> {
    super::gemm_unpacked(dst, lhs, rhs, epilogue, Parallelism::Rayon)
}

/// Row functions for the epilogue tests.
#[derive(Debug, Clone, Copy)]
enum Act {
    Gelu,
    Relu,
}

impl Act {
    fn apply(self, x: f32) -> f32 {
        match self {
            Act::Gelu => {
                x * 0.5 * (1.0 + crate::fast_math::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
            }
            Act::Relu => x.max(0.0),
        }
    }
}

impl RowMap for Act {
    fn map_row(&self, row: &mut [f32], bias: &[f32]) {
        match self {
            Act::Gelu => crate::fast_math::gelu_bias_row(row, bias),
            Act::Relu => row
                .iter_mut()
                .zip(bias)
                .for_each(|(v, b)| *v = (*v + b).max(0.0)),
        }
    }
}

/// `act(c0 + a · b + bias)` in f64.
fn naive(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    c0: Option<&Array2<f32>>,
    bias: Option<&[f32]>,
    act: Option<Act>,
) -> Array2<f64> {
    let (m, k) = a.dim();
    let n = b.ncols();
    Array2::from_shape_fn((m, n), |(i, j)| {
        let mut s: f64 = (0..k)
            .map(|p| f64::from(a[[i, p]]) * f64::from(b[[p, j]]))
            .sum();
        s += c0.map_or(0.0, |c| f64::from(c[[i, j]]));
        s += bias.map_or(0.0, |b| f64::from(b[j]));
        match act {
            Some(act) => f64::from(act.apply(s as f32)),
            None => s,
        }
    })
}

fn matrix(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        let x = (i as u64 * 7919 + j as u64 * 104_729 + seed * 31) % 2003;
        x as f32 / 1001.5 - 1.0
    })
}

fn check_close(got: &Array2<f32>, want: &Array2<f64>, k: usize) {
    let tol = 1e-5 * (k as f64).sqrt().max(1.0) * 4.0;
    for ((i, j), &w) in want.indexed_iter() {
        let g = f64::from(got[[i, j]]);
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "({i}, {j}): {g} vs {w}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::util::proptest_cases(48)))]

    /// Every shape (edges included), k past one block, each epilogue, transposed A.
    #[test]
    fn matches_the_naive_product(
        m in 1usize..40, k in 1usize..600, n in 1usize..90, seed in 0u64..1000,
        accumulate: bool, with_bias: bool, gelu: bool, transposed: bool, scaled: bool,
    ) {
        let a_store = if transposed { matrix(k, m, seed) } else { matrix(m, k, seed) };
        let a = if transposed { a_store.t() } else { a_store.view() };
        let w = matrix(n, k, seed + 1);
        let bias: Vec<f32> = (0..n).map(|j| (j as f32 * 0.37).sin()).collect();
        let c0 = matrix(m, n, seed + 2);
        let s = matrix(m, n, seed + 3);
        let mut c = c0.clone();
        let epilogue = Epilogue {
            accumulate,
            bias: with_bias.then_some(&bias[..]),
            map: gelu.then_some(&Act::Gelu as &dyn RowMap),
            scale: scaled.then(|| s.as_slice().unwrap()),
        };
        gemm_packed(c.view_mut(), a, &PackedRhs::from_weight(w.view()), epilogue).unwrap();
        let mut want =
            naive(a, w.t(), accumulate.then_some(&c0), epilogue.bias, gelu.then_some(Act::Gelu));
        if scaled {
            want.zip_mut_with(&s, |w, &s| *w *= f64::from(s));
        }
        check_close(&c, &want, k);
    }
}

/// Two panels of A in one pass ([`Kernel::run_tile`] with one B panel: the AVX-512 12 x 16
/// tile where the CPU has it) give the same bits as one panel at a time, and two panels of A
/// by two of B (the 12 x 32 tile) the bits of a pair per B panel: for packed and
/// in-place A, f32 and bf16 panels, overwriting and accumulating.
#[test]
fn wider_tiles_give_the_bits_of_one_panel_at_a_time() {
    let kc = 259;
    let a: Vec<f32> = (0..2 * kc * MR)
        .map(|i| ((i * 13) % 17) as f32 * 0.1 - 0.8)
        .collect();
    // Two B panels, one after the other.
    let f32s: Vec<f32> = (0..2 * kc * NR)
        .map(|i| ((i * 7) % 11) as f32 * 0.2 - 1.0)
        .collect();
    let bf16s: Vec<u16> = f32s
        .iter()
        .map(|&v| (round_bf16(v).to_bits() >> 16) as u16)
        .collect();
    // The same 2·MR rows of A in place (row-major, 3 floats of padding per row).
    let lda = kc + 3;
    let rows: Vec<f32> = (0..2 * MR * lda)
        .map(|i| {
            let (r, p) = (i / lda, i % lda);
            if p < kc {
                a[(r / MR) * kc * MR + p * MR + r % MR]
            } else {
                f32::NAN
            }
        })
        .collect();
    let ldc = 2 * NR + 5;
    let same = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits());
    for kernel in Kernel::available() {
        let both = [BPanel::F32(&f32s), BPanel::Bf16(&bf16s)];
        for (b, (left, right)) in both.into_iter().zip([
            (BPanel::F32(&f32s[..kc * NR]), BPanel::F32(&f32s[kc * NR..])),
            (
                BPanel::Bf16(&bf16s[..kc * NR]),
                BPanel::Bf16(&bf16s[kc * NR..]),
            ),
        ]) {
            for panel in [APanel::Packed(a.as_ptr()), APanel::Rows(rows.as_ptr(), lda)] {
                for accumulate in [false, true] {
                    let mut wide = vec![0.5f32; 2 * MR * ldc];
                    let mut pairs = wide.clone();
                    let mut single = wide.clone();
                    let second = match panel {
                        APanel::Packed(p) => APanel::Packed(p.wrapping_add(kc * MR)),
                        APanel::Rows(p, lda) => APanel::Rows(p.wrapping_add(MR * lda), lda),
                    };
                    // SAFETY: every tile is 2·MR rows of ldc >= 2 NR floats; A's two panels
                    // hold kc steps each (packed) or 2·MR rows of lda >= kc floats; each B
                    // half holds kc steps.
                    unsafe {
                        kernel.run_tile::<2>(kc, panel, b, wide.as_mut_ptr(), ldc, accumulate);
                        let c = pairs.as_mut_ptr();
                        kernel.run_tile::<1>(kc, panel, left, c, ldc, accumulate);
                        kernel.run_tile::<1>(kc, panel, right, c.add(NR), ldc, accumulate);
                        let c = single.as_mut_ptr();
                        for (half, col) in [(left, 0), (right, NR)] {
                            kernel.run(kc, panel, half, c.add(col), ldc, accumulate);
                            kernel.run(kc, second, half, c.add(MR * ldc + col), ldc, accumulate);
                        }
                    }
                    let what = format!("{kernel:?} {b:?} {panel:?} accumulate {accumulate}");
                    assert!(same(&pairs, &single), "pair: {what}");
                    assert!(same(&wide, &single), "wide: {what}");
                }
            }
        }
    }
}

#[test]
fn the_portable_kernel_agrees_with_the_dispatched_one() {
    let kc = 300;
    let a: Vec<f32> = (0..kc * MR)
        .map(|i| ((i * 13) % 17) as f32 * 0.1 - 0.8)
        .collect();
    let b: Vec<f32> = (0..kc * NR)
        .map(|i| ((i * 7) % 11) as f32 * 0.2 - 1.0)
        .collect();
    for accumulate in [false, true] {
        let mut fast = [0.5f32; MR * NR];
        let mut slow = [0.5f32; MR * NR];
        // SAFETY: both tiles are local MR x NR buffers with rows NR apart; the panels hold
        // kc steps each.
        unsafe {
            let packed = APanel::Packed(a.as_ptr());
            Kernel::detect().run(
                kc,
                packed,
                BPanel::F32(&b),
                fast.as_mut_ptr(),
                NR,
                accumulate,
            );
            Kernel::Portable.run(
                kc,
                packed,
                BPanel::F32(&b),
                slow.as_mut_ptr(),
                NR,
                accumulate,
            );
        }
        // The same A read in place as MR rows of kc (row-major), a transposed copy.
        let rows: Vec<f32> = (0..MR * kc).map(|i| a[(i % kc) * MR + i / kc]).collect();
        let mut direct = [0.5f32; MR * NR];
        // SAFETY: as above; `rows` holds MR rows of kc values.
        unsafe {
            let panel = APanel::Rows(rows.as_ptr(), kc);
            Kernel::detect().run(
                kc,
                panel,
                BPanel::F32(&b),
                direct.as_mut_ptr(),
                NR,
                accumulate,
            );
        }
        assert_eq!(direct, fast);
        for (f, s) in fast.iter().zip(&slow) {
            assert!((f - s).abs() <= 1e-4 * (1.0 + s.abs()), "{f} vs {s}");
        }
    }
}

#[test]
fn the_bits_do_not_depend_on_the_thread_count() {
    let (m, k, n) = (301, 700, 83);
    let a = matrix(m, k, 3);
    let packed = PackedRhs::from_weight(matrix(n, k, 4).view());
    let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
    let run = |threads: usize| {
        let mut c = Array2::zeros((m, n));
        let epilogue = Epilogue {
            bias: Some(&bias),
            map: Some(&Act::Gelu),
            ..Epilogue::default()
        };
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| gemm_packed(c.view_mut(), a.view(), &packed, epilogue).unwrap());
        c
    };
    let one = run(1);
    for threads in [2, 3, 4, 16] {
        assert_eq!(run(threads), one, "{threads} threads");
    }
}

#[test]
fn a_destination_with_strided_rows_gets_the_same_values() {
    let (m, k, n) = (9, 20, 18);
    let a = matrix(m, k, 5);
    let packed = PackedRhs::from_weight(matrix(n, k, 6).view());
    let mut plain = Array2::zeros((m, n));
    gemm_packed(plain.view_mut(), a.view(), &packed, Epilogue::default()).unwrap();
    let mut store = Array2::zeros((n, m));
    gemm_packed(
        store.view_mut().reversed_axes(),
        a.view(),
        &packed,
        Epilogue::default(),
    )
    .unwrap();
    assert_eq!(store.t(), plain);
}

/// A column-major C larger than one copy block, accumulated into with a bias and a scale: the
/// row-major scratch is filled from C, summed into, scaled, and copied back block by block.
#[test]
fn a_transposed_destination_is_accumulated_into_block_by_block() {
    let (m, k, n) = (45, 300, 70);
    let a = matrix(m, k, 11);
    let w = matrix(n, k, 12);
    let bias: Vec<f32> = (0..n).map(|j| (j as f32 * 0.29).cos()).collect();
    let c0 = matrix(m, n, 13);
    let scale = matrix(m, n, 14);
    let mut store = c0.t().to_owned();
    let epilogue = Epilogue {
        accumulate: true,
        bias: Some(&bias),
        map: None,
        scale: Some(scale.as_slice().unwrap()),
    };
    let packed = PackedRhs::from_weight(w.view());
    gemm_packed(
        store.view_mut().reversed_axes(),
        a.view(),
        &packed,
        epilogue,
    )
    .unwrap();
    let mut want = naive(a.view(), w.t(), Some(&c0), Some(&bias), None);
    want.zip_mut_with(&scale, |w, &s| *w *= f64::from(s));
    check_close(&store.t().to_owned(), &want, k);
}

/// Blocks of A packed just before use (one stripe of C's columns per task) and all at once
/// (several stripes), each for k past one block, row-major and transposed A. On one thread a
/// task is all 168 rows, so a stripe is 24 panels: n = 90 is one stripe, n = 500 two.
#[test]
fn one_stripe_and_several_give_the_naive_product() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for (m, k, n) in [(168, 600, 90), (168, 600, 500)] {
        for transposed in [false, true] {
            let a_store = if transposed {
                matrix(k, m, 21)
            } else {
                matrix(m, k, 21)
            };
            let a = if transposed {
                a_store.t()
            } else {
                a_store.view()
            };
            let w = matrix(n, k, 22);
            let mut c = Array2::zeros((m, n));
            let packed = PackedRhs::from_weight(w.view());
            pool.install(|| gemm_packed(c.view_mut(), a, &packed, Epilogue::default()))
                .unwrap();
            check_close(&c, &naive(a, w.t(), None, None, None), k);
        }
    }
}

#[test]
fn wrong_shapes_are_typed_errors() {
    let packed = PackedRhs::from_weight(matrix(4, 3, 0).view());
    let mut c = Array2::zeros((2, 4));
    let err = gemm_packed(
        c.view_mut(),
        matrix(2, 5, 0).view(),
        &packed,
        Epilogue::default(),
    );
    assert!(matches!(err, Err(LinalgError::Shape { .. })), "{err:?}");
    let mut c = Array2::zeros((2, 3));
    let err = gemm_packed(
        c.view_mut(),
        matrix(2, 3, 0).view(),
        &packed,
        Epilogue::default(),
    );
    assert!(matches!(err, Err(LinalgError::Shape { .. })), "{err:?}");
    let mut c = Array2::zeros((2, 4));
    let bias = [0.0f32; 3];
    let epilogue = Epilogue {
        bias: Some(&bias),
        ..Epilogue::default()
    };
    let err = gemm_packed(c.view_mut(), matrix(2, 3, 0).view(), &packed, epilogue);
    assert!(matches!(err, Err(LinalgError::Shape { .. })), "{err:?}");
}

#[test]
fn a_packed_weight_unpacks_to_itself() {
    for (n, k) in [(1, 1), (17, 300), (33, 513), (16, 256)] {
        let w = matrix(n, k, 9);
        assert_eq!(PackedRhs::from_weight(w.view()).to_weight(), w);
    }
}

#[test]
fn the_unpacked_entry_matches_the_packed_one() {
    let (m, k, n) = (50, 270, 40);
    let a = matrix(m, k, 1);
    let w = matrix(n, k, 2);
    let mut packed = Array2::zeros((m, n));
    gemm_packed(
        packed.view_mut(),
        a.view(),
        &PackedRhs::from_weight(w.view()),
        Epilogue::default(),
    )
    .unwrap();
    let mut unpacked = Array2::zeros((m, n));
    gemm_unpacked(unpacked.view_mut(), a.view(), w.t(), Epilogue::default()).unwrap();
    assert_eq!(packed, unpacked);
    let add = Epilogue {
        accumulate: true,
        ..Epilogue::default()
    };
    gemm_unpacked(unpacked.view_mut(), a.view(), w.t(), add).unwrap();
    for (u, p) in unpacked.iter().zip(&packed) {
        assert!(
            (u - 2.0 * p).abs() <= 1e-5 * (1.0 + p.abs()),
            "{u} vs 2 x {p}"
        );
    }
}

/// A B at least twice as wide as A is tall is computed as `Cᵀ = Bᵀ Aᵀ`: the same bits as
/// the product in its own orientation, overwriting or accumulating, A plain or transposed.
#[test]
fn a_wide_unpacked_product_gives_the_bits_of_the_packed_one() {
    let (m, k, n) = (20, 300, 90);
    let c0 = matrix(m, n, 3);
    let w = matrix(n, k, 2);
    for transposed in [false, true] {
        let a_store = if transposed {
            matrix(k, m, 1)
        } else {
            matrix(m, k, 1)
        };
        let a = if transposed {
            a_store.t()
        } else {
            a_store.view()
        };
        for accumulate in [false, true] {
            let epilogue = Epilogue {
                accumulate,
                ..Epilogue::default()
            };
            let mut packed = c0.clone();
            let rhs = PackedRhs::from_weight(w.view());
            gemm_packed(packed.view_mut(), a, &rhs, epilogue).unwrap();
            let mut unpacked = c0.clone();
            gemm_unpacked(unpacked.view_mut(), a, w.t(), epilogue).unwrap();
            let same = packed
                .iter()
                .zip(&unpacked)
                .all(|(p, u)| p.to_bits() == u.to_bits());
            assert!(same, "transposed {transposed}, accumulate {accumulate}");
        }
    }
}

#[test]
fn packing_reads_any_layout_the_same() {
    for (n, k) in [(5, 3), (17, 300), (40, 513)] {
        let w = matrix(n, k, 4);
        let from_weight = PackedRhs::from_weight(w.view());
        let row_major_b = w.t().as_standard_layout().into_owned();
        assert_eq!(PackedRhs::new(row_major_b.view()), from_weight);
        let reversed = w.slice(ndarray::s![..;-1, ..]).to_owned();
        let flipped = PackedRhs::new(reversed.slice(ndarray::s![..;-1, ..]).t());
        assert_eq!(flipped, from_weight);
    }
}

/// A weight held in bf16 or int8 unpacks to exactly the values the portable quantizer gives
/// (`round_bf16`; `s · q` per output channel), and a row of zeros stays zero.
#[test]
fn quantized_weights_hold_the_quantizers_values() {
    let mut w = matrix(37, 300, 8);
    w.row_mut(5).fill(0.0);
    for precision in [Precision::Bf16, Precision::Int8] {
        let packed = PackedRhs::quantized_from_weight(w.view(), precision);
        assert_eq!(packed.precision(), precision);
        let mut want = Array2::zeros(w.dim());
        quantize_rows_into(w.view(), want.view_mut(), precision, true).unwrap();
        assert_eq!(packed.to_weight(), want, "{precision}");
    }
    let f32_packed = PackedRhs::quantized_from_weight(w.view(), Precision::F32);
    assert_eq!(f32_packed, PackedRhs::from_weight(w.view()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::util::proptest_cases(24)))]

    /// A product with a bf16 or int8 weight is the f64 product with the weight's held values
    /// (and, for int8, the input's quantized values), k past one block, edges in m and n.
    #[test]
    fn quantized_products_match_the_naive_product(
        m in 1usize..40,
        k in prop_oneof![1usize..40, 250usize..600],
        n in 1usize..50,
        int8 in any::<bool>(),
        accumulate in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let precision = if int8 { Precision::Int8 } else { Precision::Bf16 };
        let a = matrix(m, k, seed);
        let w = matrix(n, k, seed + 1);
        let packed = PackedRhs::quantized_from_weight(w.view(), precision);
        let held = packed.to_weight();
        let bias: Vec<f32> = (0..n).map(|j| (j as f32 * 0.37).sin()).collect();
        let c0 = matrix(m, n, seed + 2);
        let mut c = c0.clone();
        let epilogue = Epilogue {
            accumulate,
            bias: Some(&bias),
            map: Some(&Act::Gelu),
            scale: None,
        };
        gemm_packed(c.view_mut(), a.view(), &packed, epilogue).unwrap();
        // The product converts the input itself: int8 per row to 7-bit codes, bf16 by
        // rounding each value.
        let mut input = a.clone();
        quantize_rows_into(a.view(), input.view_mut(), precision, false).unwrap();
        let want = naive(input.view(), held.t(), accumulate.then_some(&c0), epilogue.bias, Some(Act::Gelu));
        check_close(&c, &want, k);
    }
}

/// The AVX2 kernel reads bf16 panels as the portable one does.
#[test]
fn quantized_panels_agree_across_kernels() {
    let kc = 260;
    let a: Vec<f32> = (0..kc * MR)
        .map(|i| ((i * 13) % 17) as f32 * 0.1 - 0.8)
        .collect();
    let bf16: Vec<u16> = (0..kc * NR)
        .map(|i| (round_bf16(((i * 7) % 11) as f32 * 0.2 - 1.0).to_bits() >> 16) as u16)
        .collect();
    for panel in [BPanel::Bf16(&bf16)] {
        let mut fast = [0.5f32; MR * NR];
        let mut slow = [0.5f32; MR * NR];
        // SAFETY: local MR x NR tiles, rows NR apart; the panels hold kc steps.
        unsafe {
            let packed = APanel::Packed(a.as_ptr());
            Kernel::detect().run(kc, packed, panel, fast.as_mut_ptr(), NR, true);
            Kernel::Portable.run(kc, packed, panel, slow.as_mut_ptr(), NR, true);
        }
        for (f, s) in fast.iter().zip(&slow) {
            assert!((f - s).abs() <= 1e-4 * (1.0 + s.abs()), "{f} vs {s}");
        }
    }
}

/// An empty inner dimension (k = 0) in every format: C = act(bias), or act(C + bias) when
/// accumulating; no kernel runs, nothing panics.
#[test]
fn empty_inner_dimension_gives_the_epilogue_of_zero() {
    let w = Array2::<f32>::zeros((5, 0));
    let x = Array2::<f32>::zeros((3, 0));
    let bias: Vec<f32> = (0..5).map(|j| j as f32 - 2.0).collect();
    let c0 = matrix(3, 5, 4);
    for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
        let packed = PackedRhs::quantized_from_weight(w.view(), precision);
        for accumulate in [false, true] {
            let mut c = c0.clone();
            let epilogue = Epilogue {
                accumulate,
                bias: Some(&bias),
                map: Some(&Act::Relu),
                scale: None,
            };
            gemm_packed(c.view_mut(), x.view(), &packed, epilogue).unwrap();
            for ((i, j), &v) in c.indexed_iter() {
                let base = if accumulate { c0[[i, j]] } else { 0.0 };
                assert_eq!(v, (base + bias[j]).max(0.0), "{precision} ({i}, {j})");
            }
        }
    }
}

/// The tasks cover every (row, panel) of C exactly once; row blocks start on 12-row units,
/// are never empty, and differ in size by one unit at most (the last may be cut short by m).
#[test]
fn the_plan_covers_c_once_in_balanced_blocks() {
    for threads in [1, 2, 3, 4, 16] {
        for m in [1, 5, 12, 13, 128, 512, 1000, 4096, 4097] {
            for n in [1, 16, 40, 1024] {
                let tasks = plan(m, n, threads);
                let np = panels(n);
                let mut seen = vec![0u8; m * np];
                for t in &tasks {
                    assert!(t.mc > 0 && t.j1 > t.j0, "{m} {n} {threads}: {t:?}");
                    assert_eq!(t.i0 % (2 * MR), 0, "{m} {n} {threads}: {t:?}");
                    for r in t.i0..t.i0 + t.mc {
                        for j in t.j0..t.j1 {
                            seen[r * np + j] += 1;
                        }
                    }
                }
                assert!(seen.iter().all(|&s| s == 1), "{m} {n} {threads}");
                let mut sizes: Vec<usize> = tasks
                    .iter()
                    .filter(|t| t.i0 + t.mc < m)
                    .map(|t| t.mc)
                    .collect();
                sizes.sort_unstable();
                if let (Some(lo), Some(hi)) = (sizes.first(), sizes.last()) {
                    assert!(hi - lo <= 2 * MR, "{m} {n} {threads}: {sizes:?}");
                }
            }
        }
    }
}

/// The edge sizes of every blocking: 0, 1, primes, and one past each block (MR, 2·MR, NR,
/// KC, MC).
const EDGES: [usize; 9] = [0, 1, 7, 13, 17, 31, 257, 169, 2];

/// `kernel`'s product of `a` (any view) and W (n, k) packed, into `c` (any view): the whole
/// driver (planner, packing, edges, epilogue) with that kernel.
fn product_with(
    kernel: Kernel,
    c: ArrayViewMut2<'_, f32>,
    a: ArrayView2<'_, f32>,
    w: &PackedRhs,
    epilogue: Epilogue<'_>,
) {
    product(c, a, w.view(), epilogue, Parallelism::Rayon, kernel).unwrap();
}

/// Every f32 kernel this CPU runs (AVX-512, AVX2 + FMA, portable) through the whole driver,
/// at the edge sizes of each dimension, on views with strides and offsets: the vector
/// kernels give each other's bits, and the portable one's values (it rounds each product
/// and sum apart, the vector ones fuse them).
#[test]
fn every_kernel_agrees_with_the_portable_one_at_the_edges() {
    let kernels = Kernel::available();
    assert_eq!(kernels[0], Kernel::Portable);
    let mut shapes = Vec::new();
    for &m in &EDGES {
        for &n in &[0usize, 1, 17, 33, 2] {
            for &k in &[0usize, 1, 7, 257] {
                shapes.push((m, k, n));
            }
        }
    }
    for &k in &[13usize, 513] {
        shapes.push((169, k, 31));
    }
    for (case, &(m, k, n)) in shapes.iter().enumerate() {
        let seed = case as u64;
        // A as every third row and second column of a larger matrix, offset by (1, 3);
        // transposed for odd cases.
        let big = matrix(3 * m + 2, 2 * k + 4, seed);
        let big_t = matrix(2 * k + 4, 3 * m + 2, seed);
        let a = if case % 2 == 0 {
            big.slice(ndarray::s![1..1 + 3 * m;3, 3..3 + 2 * k;2])
        } else {
            big_t
                .slice(ndarray::s![3..3 + 2 * k;2, 1..1 + 3 * m;3])
                .reversed_axes()
        };
        assert_eq!(a.dim(), (m, k));
        let w = matrix(n, k, seed + 1);
        let packed = PackedRhs::from_weight(w.view());
        let bias: Vec<f32> = (0..n).map(|j| (j as f32 * 0.37).sin()).collect();
        let epilogue = Epilogue {
            accumulate: case % 3 == 0,
            bias: (case % 4 != 1).then_some(&bias[..]),
            ..Epilogue::default()
        };
        // C as every second row of a larger matrix, offset by one column.
        let c0 = matrix(2 * m + 1, n + 2, seed + 2);
        let run = |kernel: Kernel| {
            let mut c = c0.clone();
            let view = c.slice_mut(ndarray::s![1..1 + 2 * m;2, 1..1 + n]);
            product_with(kernel, view, a, &packed, epilogue);
            c
        };
        let portable = run(Kernel::Portable);
        // What lies outside the view is untouched.
        for ((i, j), &v) in portable.indexed_iter() {
            let inside = i % 2 == 1 && i < 2 * m + 1 && (1..1 + n).contains(&j);
            if !inside {
                assert_eq!(
                    v.to_bits(),
                    c0[[i, j]].to_bits(),
                    "({i}, {j}) of {m}x{k}x{n}"
                );
            }
        }
        let want = naive(
            a,
            w.t(),
            epilogue
                .accumulate
                .then(|| c0.slice(ndarray::s![1..1 + 2 * m;2, 1..1 + n]).to_owned())
                .as_ref(),
            epilogue.bias,
            None,
        );
        check_close(
            &portable
                .slice(ndarray::s![1..1 + 2 * m;2, 1..1 + n])
                .to_owned(),
            &want,
            k,
        );
        let mut vector_bits: Option<Vec<u32>> = None;
        for &kernel in &kernels[1..] {
            let got = run(kernel);
            let close = got
                .iter()
                .zip(&portable)
                .all(|(g, p)| (g - p).abs() <= 1e-5 * (k as f32).sqrt().max(1.0) * (1.0 + p.abs()));
            assert!(close, "{kernel:?} vs portable at {m}x{k}x{n}");
            let bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
            match &vector_bits {
                Some(first) => assert_eq!(first, &bits, "{kernel:?} at {m}x{k}x{n}"),
                None => vector_bits = Some(bits),
            }
        }
    }
}
