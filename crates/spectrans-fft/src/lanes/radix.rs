//! The radix kernels of the complex FFT: one Stockham radix-4 stage, and the last radix-2
//! stage, over work-buffer slots of eight lanes.

use num_complex::Complex32;

use super::vector::{Lanes, Slot, SplitComplex};

/// One Stockham radix-4 step of a length-`l` transform over `s` interleaved sub-sequences:
/// `x[q + s(p + j·l/4)]` (`j < 4`) → `y[q + s(4p + r)]`, twiddled by `w^{pr}`,
/// `w = e^{∓2πi/l}`.
#[inline(always)]
pub(super) fn radix4_stage<V: Lanes, const INVERSE: bool>(
    cpu: V::Cpu,
    x: &[Slot],
    y: &mut [Slot],
    s: usize,
    twiddles: &[[Complex32; 3]],
) {
    let quarter_len = twiddles.len() * s;
    let (x0, rest) = x.split_at(quarter_len);
    let (x1, rest) = rest.split_at(quarter_len);
    let (x2, x3) = rest.split_at(quarter_len);
    for (p, (w, out)) in twiddles.iter().zip(y.chunks_exact_mut(4 * s)).enumerate() {
        let range = p * s..(p + 1) * s;
        let (a, b) = (&x0[range.clone()], &x1[range.clone()]);
        let (c, d) = (&x2[range.clone()], &x3[range]);
        let (y0, rest) = out.split_at_mut(s);
        let (y1, rest) = rest.split_at_mut(s);
        let (y2, y3) = rest.split_at_mut(s);
        for q in 0..s {
            let a = SplitComplex::<V>::get(cpu, &a[q]);
            let b = SplitComplex::<V>::get(cpu, &b[q]);
            let c = SplitComplex::<V>::get(cpu, &c[q]);
            let d = SplitComplex::<V>::get(cpu, &d[q]);
            let apc = a.add(c);
            let amc = a.sub(c);
            let bpd = b.add(d);
            let jbmd = b.sub(d).times_i();
            // Forward: X1 = a − ib − c + id, X3 = a + ib − c − id; the inverse swaps them.
            let (r1, r3) = if INVERSE {
                (amc.add(jbmd), amc.sub(jbmd))
            } else {
                (amc.sub(jbmd), amc.add(jbmd))
            };
            let r2 = apc.sub(bpd);
            apc.add(bpd).put(&mut y0[q]);
            if p == 0 {
                r1.put(&mut y1[q]);
                r2.put(&mut y2[q]);
                r3.put(&mut y3[q]);
            } else {
                r1.times::<INVERSE>(w[0]).put(&mut y1[q]);
                r2.times::<INVERSE>(w[1]).put(&mut y2[q]);
                r3.times::<INVERSE>(w[2]).put(&mut y3[q]);
            }
        }
    }
}

/// The last radix-2 step (`l = 2`, twiddles 1): `y[q] = x[q] + x[q+s]`,
/// `y[q+s] = x[q] − x[q+s]`.
#[inline(always)]
pub(super) fn radix2_stage<V: Lanes>(cpu: V::Cpu, x: &[Slot], y: &mut [Slot], s: usize) {
    let (x0, x1) = x.split_at(s);
    let (y0, y1) = y.split_at_mut(s);
    for q in 0..s {
        let (a, b) = (
            SplitComplex::<V>::get(cpu, &x0[q]),
            SplitComplex::<V>::get(cpu, &x1[q]),
        );
        a.add(b).put(&mut y0[q]);
        a.sub(b).put(&mut y1[q]);
    }
}
