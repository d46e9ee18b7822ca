//! The inner loop of the convolutions by taps: a sum over kernel taps of products with shifted
//! windows of one grid,
//!
//! ```text
//! out[j, q] = sum over taps t, rows i of  w[t.w + j js + i is] * x[t.x + i rs + q]
//! ```
//!
//! for `j < m` output rows and `q < n` positions. Done as one GEMM call per tap, every tap
//! re-reads and re-writes `out` and packs its window of `x` first. On CPUs with AVX-512 a
//! dedicated kernel keeps a `64 x 6` block of `out` in registers through all taps and rows and
//! reads `x` straight from the grid (the windows are plain offsets, so no packing is needed).
//! Both compute the same sums in a different order, so results agree to rounding.
//!
//! The weight gradient sums over positions instead ([`WeightGrad`]): a GEMM call per tap packs
//! both operands again for every tap (each runs along positions, gemm's inner dimension). The
//! kernel takes `dy` transposed once per task (output-major, channels along the vectors), keeps
//! `8 x 16..64` sums in registers, broadcasts the grid's values in place, and visits output
//! positions only, not the grid's padding. On small maps, where that padding is a tenth of the
//! grid or more, the forward and input-gradient sums take the same layout ([`OutputSum`]:
//! channels along the vectors, output positions only).

use rayon::prelude::*;

/// One tap: where its window starts in `x`, and where its `[m, k]` weights start in `w`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tap {
    pub x: usize,
    pub w: usize,
}

/// The operands of a sum of taps: `k` rows of `x`, `rs` apart; weight `(j, i)` of a tap at
/// `w[tap.w + j js + i is]`, and the same weights as [`pack`] lays them out for the kernel.
pub(crate) struct TapSum<'a> {
    pub x: &'a [f32],
    pub rs: usize,
    pub k: usize,
    pub w: &'a [f32],
    pub js: usize,
    pub is: usize,
    pub taps: &'a [Tap],
    pub packed: &'a [f32],
    /// Whether to run the AVX-512 kernel where the CPU has it (else the portable products).
    pub kernel: bool,
}

/// The weights `w[tap.w + j js + i is]` of `taps` for `m` output rows and `k` input rows in the
/// AVX-512 kernel's layout (blocks of its output rows, each `[tap][i][row]`, zeros past `m`), or
/// nothing where the kernel does not run. The layout depends only on the weights and the taps'
/// weight offsets, so a convolution pass packs once for all its tasks.
pub(crate) fn pack(
    w: &[f32],
    (js, is): (usize, usize),
    taps: &[Tap],
    (m, k): (usize, usize),
) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        let nr = avx512::NR;
        let mut packed = vec![0.0f32; m.div_ceil(nr) * taps.len() * k * nr];
        if taps.is_empty() || k == 0 {
            return packed;
        }
        let block_len = taps.len() * k * nr;
        packed
            .par_chunks_mut(block_len)
            .enumerate()
            .for_each(|(bi, block)| {
                for (t, tap) in taps.iter().enumerate() {
                    for i in 0..k {
                        for j in 0..nr.min(m - bi * nr) {
                            block[(t * k + i) * nr + j] = w[tap.w + (bi * nr + j) * js + i * is];
                        }
                    }
                }
            });
        return packed;
    }
    let _ = (w, js, is, taps, m, k);
    Vec::new()
}

/// Positions per vector of the AVX-512 kernel: callers give `x` and `out` room for `n` rounded
/// up to this ([`padded`]).
const LANES: usize = 16;

/// `n` rounded up to whole vectors.
pub(crate) fn padded(n: usize) -> usize {
    n.next_multiple_of(LANES)
}

impl TapSum<'_> {
    /// `out [m, n]` (rows `out_rs` apart) `=` the sum over taps; `x` and `out` must hold
    /// [`padded`]`(n)` positions past each window and row start.
    pub fn run(&self, (m, n): (usize, usize), out: &mut [f32], out_rs: usize) {
        if m == 0 || n == 0 {
            return;
        }
        let np = padded(n);
        let reach =
            self.taps.iter().map(|t| t.x).max().unwrap_or(0) + self.k.saturating_sub(1) * self.rs;
        assert!(self.x.len() >= reach + np, "tap window past the grid");
        assert!(
            out.len() >= (m - 1) * out_rs + np,
            "output rows past the buffer"
        );
        #[cfg(target_arch = "x86_64")]
        if self.kernel && avx512() && !self.taps.is_empty() && self.k > 0 {
            let blocks = m.div_ceil(avx512::NR);
            assert_eq!(
                self.packed.len(),
                blocks * self.taps.len() * self.k * avx512::NR,
                "weights packed for another sum"
            );
            // SAFETY: the CPU has AVX-512F, and the asserts above bound every index read and
            // written (each block reads whole vectors up to `padded(n)` from a window or row start).
            unsafe { avx512::run(self, (m, n), out, out_rs) };
            return;
        }
        self.by_products((m, n), out, out_rs);
    }

    /// One GEMM call per tap (the portable route).
    fn by_products(&self, (m, n): (usize, usize), out: &mut [f32], out_rs: usize) {
        if self.taps.is_empty() {
            out.chunks_mut(out_rs)
                .take(m)
                .for_each(|r| r[..n].fill(0.0));
        }
        for (i, t) in self.taps.iter().enumerate() {
            // out [m, n] (+)= w_t [m, k] . x[t.x..] [k, n]
            super::gemm::product(
                (m, n, self.k),
                super::gemm::mat(&self.w[t.w..], self.js, self.is),
                super::gemm::mat(&self.x[t.x..], self.rs, 1),
                super::gemm::rows_of(out, out_rs),
                i > 0,
                gemm::Parallelism::None,
            );
        }
    }
}

/// The weight gradient of a convolution by taps, summed over the output positions of a task:
///
/// ```text
/// dw[t, i, j] = sum over outputs r of  dy[r, j] * x[taps[t] + i rs + q(r)]
/// ```
///
/// for `i < k` input rows (channels) and `j < m` output channels, `dy` laid out `[outputs,
/// padded(m)]` (output-major, zeros past `m`) and `dw` as `[taps, k, padded(m)]`. Output `r` of
/// row `rho = r / run` sits at grid position `q(r) = (rho / rows) plane + (rho % rows) wu + r %
/// run`: rows of `run` outputs, `rows` of them per image plane. Only outputs are visited, not the
/// padding positions of the planes.
pub(crate) struct WeightGrad<'a> {
    pub x: &'a [f32],
    pub rs: usize,
    pub k: usize,
    pub taps: &'a [usize],
    pub dy: &'a [f32],
    pub m: usize,
    /// `(run, rows, wu, plane)`: outputs per row, rows per image, grid row and plane strides.
    pub layout: (usize, usize, usize, usize),
}

/// Grid position of output `r` in the `(run, rows, wu, plane)` layout of [`WeightGrad`].
fn position((run, rows, wu, plane): (usize, usize, usize, usize), r: usize) -> usize {
    let rho = r / run;
    rho / rows * plane + rho % rows * wu + r % run
}

/// Panics unless every window of `taps` over `k` rows `rs` apart reaches only inside `x` at
/// every output of `images` images in `layout`.
fn assert_reach(
    x: &[f32],
    (rs, k): (usize, usize),
    taps: &[usize],
    layout: (usize, usize, usize, usize),
    images: usize,
) {
    let last = position(layout, images * layout.0 * layout.1 - 1);
    let reach = taps.iter().max().unwrap() + (k - 1) * rs + last;
    assert!(x.len() > reach, "tap window past the grid");
}

/// Whether the AVX-512 kernels run on this CPU ([`WeightGrad`] and [`OutputSum`] have no other
/// route: their callers take the portable products where this is false).
pub(crate) fn kernel_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        return true;
    }
    false
}

impl WeightGrad<'_> {
    /// Adds the sums to `dw [taps, k, padded(m)]`, for `images` images.
    pub fn run(&self, images: usize, dw: &mut [f32]) {
        let (run, rows, _, _) = self.layout;
        let mp = padded(self.m);
        assert_eq!(
            self.dy.len(),
            images * rows * run * mp,
            "dy of another size"
        );
        assert_eq!(
            dw.len(),
            self.taps.len() * self.k * mp,
            "dw of another size"
        );
        if images == 0 || self.k == 0 || self.taps.is_empty() {
            return;
        }
        assert_reach(self.x, (self.rs, self.k), self.taps, self.layout, images);
        #[cfg(target_arch = "x86_64")]
        if avx512() {
            // SAFETY: the CPU has AVX-512F; the asserts above bound every read of `x`, `dy`
            // and every read and write of `dw`.
            unsafe { avx512::weight_grad(self, images, dw) };
            return;
        }
        unreachable!("WeightGrad::run without a kernel");
    }
}

/// The sums of [`TapSum`] with the output channels along the vectors instead of the positions,
/// at output positions only (those of [`WeightGrad`]'s layout, not the grid's padding):
///
/// ```text
/// out[r, j] = sum over taps t, rows i of  w[t, i, j] * x[taps[t] + i rs + q(r)]
/// ```
///
/// with `w` packed as `[taps, k, padded(m)]` ([`pack_channels`]) and `out` as `[outputs,
/// padded(m)]`.
pub(crate) struct OutputSum<'a> {
    pub x: &'a [f32],
    pub rs: usize,
    pub k: usize,
    pub taps: &'a [usize],
    pub w: &'a [f32],
    pub m: usize,
    /// As [`WeightGrad::layout`].
    pub layout: (usize, usize, usize, usize),
}

/// `w[t.w + j js + i is]` as `[taps, k, padded(m)]`, zeros past `m` ([`OutputSum`]'s layout).
pub(crate) fn pack_channels(
    w: &[f32],
    (js, is): (usize, usize),
    taps: &[Tap],
    (m, k): (usize, usize),
) -> Vec<f32> {
    let mp = padded(m);
    let mut packed = vec![0.0f32; taps.len() * k * mp];
    for (t, tap) in taps.iter().enumerate() {
        for i in 0..k {
            for j in 0..m {
                packed[(t * k + i) * mp + j] = w[tap.w + j * js + i * is];
            }
        }
    }
    packed
}

impl OutputSum<'_> {
    /// Writes `out [images * rows * run, padded(m)]`.
    pub fn run(&self, images: usize, out: &mut [f32]) {
        let (run, rows, _, _) = self.layout;
        let mp = padded(self.m);
        assert_eq!(out.len(), images * rows * run * mp, "out of another size");
        assert_eq!(
            self.w.len(),
            self.taps.len() * self.k * mp,
            "weights packed for another sum"
        );
        if images == 0 || self.k == 0 || self.taps.is_empty() {
            out.fill(0.0);
            return;
        }
        assert_reach(self.x, (self.rs, self.k), self.taps, self.layout, images);
        #[cfg(target_arch = "x86_64")]
        if avx512() {
            // SAFETY: the CPU has AVX-512F; the asserts above bound every read of `x` and `w`
            // and every write of `out`.
            unsafe { avx512::output_sum(self, images, out) };
            return;
        }
        unreachable!("OutputSum::run without a kernel");
    }
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f") && super::settings::settings().tap_kernel
    })
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{LANES, TapSum};
    use std::arch::x86_64::*;

    /// Output rows per block: 6 x 4 accumulators, 4 window vectors and a broadcast fill 29 of
    /// the 32 registers.
    pub(super) const NR: usize = 6;
    /// Positions per block: 4 vectors.
    const MR: usize = 4 * LANES;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run(s: &TapSum, (m, n): (usize, usize), out: &mut [f32], out_rs: usize) {
        // Weights packed per block of NR rows as [tap][i][NR] (`pack`).
        let (k, taps, packed) = (s.k, s.taps.len(), s.packed);
        let blocks = m.div_ceil(NR);
        let offsets: Vec<usize> = s.taps.iter().map(|t| t.x).collect();
        // Rows per pass, so that one block's windows over them stay in L1 while every block of
        // output rows runs on them; later passes add to what the earlier ones stored.
        let kc = ((24 << 10) / (4 * window_span(&offsets, s.rs)))
            .max(8)
            .min(k);
        for k0 in (0..k).step_by(kc) {
            let rows = kc.min(k - k0);
            for q in (0..n).step_by(MR) {
                let vectors = (n - q).div_ceil(LANES).min(4);
                let x = unsafe { s.x.as_ptr().add(k0 * s.rs + q) };
                for bi in 0..blocks {
                    let a = Args {
                        x,
                        rs: s.rs,
                        rows,
                        offsets: &offsets,
                        w: unsafe { packed.as_ptr().add(bi * taps * k * NR + k0 * NR) },
                        w_tap: k * NR,
                        out: unsafe { out.as_mut_ptr().add(bi * NR * out_rs + q) },
                        out_rs,
                        accumulate: k0 > 0,
                    };
                    macro_rules! dispatch {
                        ($($r:literal)*) => {
                            match (NR.min(m - bi * NR), vectors) {
                                $(
                                    ($r, 1) => unsafe { block::<$r, 1>(&a) },
                                    ($r, 2) => unsafe { block::<$r, 2>(&a) },
                                    ($r, 3) => unsafe { block::<$r, 3>(&a) },
                                    ($r, _) => unsafe { block::<$r, 4>(&a) },
                                )*
                                _ => unreachable!(),
                            }
                        };
                    }
                    dispatch!(1 2 3 4 5 6);
                }
            }
        }
    }

    /// Positions of `x` one block of `MR` positions reads per row: the union of the taps'
    /// windows (taps in different phases read different rows and never overlap).
    fn window_span(offsets: &[usize], rs: usize) -> usize {
        let mut windows: Vec<(usize, usize)> = offsets.iter().map(|&x| (x / rs, x % rs)).collect();
        windows.sort_unstable();
        let (mut span, mut end) = (0, None);
        for (row, x) in windows {
            let covered = match end {
                Some((r, e)) if r == row => x.max(e),
                _ => x,
            };
            span += (x + MR).saturating_sub(covered);
            end = Some((row, covered.max(x + MR)));
        }
        span.max(MR)
    }

    /// One block's operands: `x` at the block's first position and first row of the pass, `w`
    /// at the block's packed weights for that row, `out` at its first row and position.
    struct Args<'a> {
        x: *const f32,
        rs: usize,
        rows: usize,
        offsets: &'a [usize],
        w: *const f32,
        w_tap: usize,
        out: *mut f32,
        out_rs: usize,
        accumulate: bool,
    }

    /// `out[j, 0..16 V] (+)= sum_t sum_i w[t][i][j] x[off_t + i rs + 0..16 V]` for `j < R`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const R: usize, const V: usize>(a: &Args) {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        if a.accumulate {
            for (j, acc) in acc.iter_mut().enumerate() {
                for (l, acc) in acc.iter_mut().enumerate() {
                    *acc = unsafe { _mm512_loadu_ps(a.out.add(j * a.out_rs + LANES * l)) };
                }
            }
        }
        for (t, &off) in a.offsets.iter().enumerate() {
            let mut xp = unsafe { a.x.add(off) };
            let mut w = unsafe { a.w.add(t * a.w_tap) };
            for _ in 0..a.rows {
                let mut v = [_mm512_setzero_ps(); V];
                for (l, v) in v.iter_mut().enumerate() {
                    *v = unsafe { _mm512_loadu_ps(xp.add(LANES * l)) };
                }
                for (j, acc) in acc.iter_mut().enumerate() {
                    let wj = _mm512_set1_ps(unsafe { *w.add(j) });
                    for (acc, v) in acc.iter_mut().zip(v) {
                        *acc = _mm512_fmadd_ps(v, wj, *acc);
                    }
                }
                w = unsafe { w.add(NR) };
                xp = unsafe { xp.add(a.rs) };
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            for (l, acc) in acc.iter().enumerate() {
                unsafe { _mm512_storeu_ps(a.out.add(j * a.out_rs + LANES * l), *acc) };
            }
        }
    }

    /// [`WeightGrad::run`]: per block of `16 V` output channels and `R` input rows, `R x V`
    /// accumulators summed over a chunk of output rows (whose `dy` stays in L1) for each tap.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weight_grad(s: &super::WeightGrad, images: usize, dw: &mut [f32]) {
        let (run, rows, wu, plane) = s.layout;
        let mp = super::padded(s.m);
        let total_rows = images * rows;
        // Output rows per chunk: about 16 KiB of dy.
        let chunk = ((4096 / (mp.min(64) * run).max(1)).max(1)).min(total_rows);
        let (k, vectors) = (s.k, mp / LANES);
        for v0 in (0..vectors).step_by(4) {
            let v = (vectors - v0).min(4);
            let nr = [8, 8, 8, 6][v - 1];
            for rho0 in (0..total_rows).step_by(chunk) {
                let rho1 = (rho0 + chunk).min(total_rows);
                for (t, &off) in s.taps.iter().enumerate() {
                    for i0 in (0..k).step_by(nr) {
                        let a = Grad {
                            x: unsafe { s.x.as_ptr().add(off + i0 * s.rs) },
                            rs: s.rs,
                            dy: unsafe { s.dy.as_ptr().add(v0 * LANES) },
                            mp,
                            rows: (rho0, rho1),
                            layout: (run, rows, wu, plane),
                            dw: unsafe { dw.as_mut_ptr().add((t * k + i0) * mp + v0 * LANES) },
                        };
                        macro_rules! dispatch {
                            ($($r:literal)*) => {
                                match ((k - i0).min(nr), v) {
                                    $(
                                        ($r, 1) => unsafe { grad_block::<$r, 1>(&a) },
                                        ($r, 2) => unsafe { grad_block::<$r, 2>(&a) },
                                        ($r, 3) => unsafe { grad_block::<$r, 3>(&a) },
                                        ($r, _) => unsafe { grad_block::<$r, 4>(&a) },
                                    )*
                                    _ => unreachable!(),
                                }
                            };
                        }
                        dispatch!(1 2 3 4 5 6 7 8);
                    }
                }
            }
        }
    }

    /// One block of [`weight_grad`]: `x` at the tap's window of the block's first row, `dy` and
    /// `dw` at the block's first output channel.
    struct Grad {
        x: *const f32,
        rs: usize,
        dy: *const f32,
        mp: usize,
        rows: (usize, usize),
        layout: (usize, usize, usize, usize),
        dw: *mut f32,
    }

    /// `dw[i, 0..16 V] += sum over the chunk's outputs r of dy[r, 0..16 V] x[i rs + q(r)]` for
    /// `i < R`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn grad_block<const R: usize, const V: usize>(a: &Grad) {
        let (run, rows, wu, plane) = a.layout;
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for (i, acc) in acc.iter_mut().enumerate() {
            for (l, acc) in acc.iter_mut().enumerate() {
                *acc = unsafe { _mm512_loadu_ps(a.dw.add(i * a.mp + LANES * l)) };
            }
        }
        for rho in a.rows.0..a.rows.1 {
            let q0 = rho / rows * plane + rho % rows * wu;
            let mut dy = unsafe { a.dy.add(rho * run * a.mp) };
            let mut xp = unsafe { a.x.add(q0) };
            for _ in 0..run {
                let mut v = [_mm512_setzero_ps(); V];
                for (l, v) in v.iter_mut().enumerate() {
                    *v = unsafe { _mm512_loadu_ps(dy.add(LANES * l)) };
                }
                for (i, acc) in acc.iter_mut().enumerate() {
                    let xi = _mm512_set1_ps(unsafe { *xp.add(i * a.rs) });
                    for (acc, v) in acc.iter_mut().zip(v) {
                        *acc = _mm512_fmadd_ps(v, xi, *acc);
                    }
                }
                dy = unsafe { dy.add(a.mp) };
                xp = unsafe { xp.add(1) };
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (l, acc) in acc.iter().enumerate() {
                unsafe { _mm512_storeu_ps(a.dw.add(i * a.mp + LANES * l), *acc) };
            }
        }
    }
    /// [`OutputSum::run`]: per block of `16 V` output channels, passes over `kc` input rows
    /// whose weights for every tap stay in L1, and blocks of `R` outputs whose `R x V` sums stay
    /// in registers through the pass.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn output_sum(s: &super::OutputSum, images: usize, out: &mut [f32]) {
        let (run, rows, _, _) = s.layout;
        let (mp, k, taps) = (super::padded(s.m), s.k, s.taps.len());
        let outputs = images * rows * run;
        let q: Vec<usize> = (0..outputs).map(|r| super::position(s.layout, r)).collect();
        // Rows per pass: about 16 KiB of one block's weights.
        let kc = (4096 / (taps * 64)).clamp(1, k);
        let vectors = mp / LANES;
        for v0 in (0..vectors).step_by(4) {
            let v = (vectors - v0).min(4);
            let nr = [8, 8, 8, 6][v - 1];
            for i0 in (0..k).step_by(kc) {
                for r0 in (0..outputs).step_by(nr) {
                    let r = (outputs - r0).min(nr);
                    let a = Sum {
                        x: unsafe { s.x.as_ptr().add(i0 * s.rs) },
                        rs: s.rs,
                        q: &q[r0..r0 + r],
                        taps: s.taps,
                        rows: kc.min(k - i0),
                        w: unsafe { s.w.as_ptr().add(i0 * mp + v0 * LANES) },
                        w_tap: k * mp,
                        mp,
                        out: unsafe { out.as_mut_ptr().add(r0 * mp + v0 * LANES) },
                        accumulate: i0 > 0,
                    };
                    macro_rules! dispatch {
                        ($($r:literal)*) => {
                            match (r, v) {
                                $(
                                    ($r, 1) => unsafe { sum_block::<$r, 1>(&a) },
                                    ($r, 2) => unsafe { sum_block::<$r, 2>(&a) },
                                    ($r, 3) => unsafe { sum_block::<$r, 3>(&a) },
                                    ($r, _) => unsafe { sum_block::<$r, 4>(&a) },
                                )*
                                _ => unreachable!(),
                            }
                        };
                    }
                    dispatch!(1 2 3 4 5 6 7 8);
                }
            }
        }
    }

    /// One block of [`output_sum`]: `x` at the pass's first row, `q` the block's output
    /// positions, `w` and `out` at the block's first output channel.
    struct Sum<'a> {
        x: *const f32,
        rs: usize,
        q: &'a [usize],
        taps: &'a [usize],
        rows: usize,
        w: *const f32,
        w_tap: usize,
        mp: usize,
        out: *mut f32,
        accumulate: bool,
    }

    /// `out[r, 0..16 V] (+)= sum_t sum_i w[t, i, 0..16 V] x[taps[t] + i rs + q_r]` for `r < R`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn sum_block<const R: usize, const V: usize>(a: &Sum) {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        if a.accumulate {
            for (r, acc) in acc.iter_mut().enumerate() {
                for (l, acc) in acc.iter_mut().enumerate() {
                    *acc = unsafe { _mm512_loadu_ps(a.out.add(r * a.mp + LANES * l)) };
                }
            }
        }
        let xs: [*const f32; R] = std::array::from_fn(|r| unsafe { a.x.add(a.q[r]) });
        for (t, &off) in a.taps.iter().enumerate() {
            let mut w = unsafe { a.w.add(t * a.w_tap) };
            let mut at = off;
            for _ in 0..a.rows {
                let mut v = [_mm512_setzero_ps(); V];
                for (l, v) in v.iter_mut().enumerate() {
                    *v = unsafe { _mm512_loadu_ps(w.add(LANES * l)) };
                }
                for (acc, xp) in acc.iter_mut().zip(xs) {
                    let xr = _mm512_set1_ps(unsafe { *xp.add(at) });
                    for (acc, v) in acc.iter_mut().zip(v) {
                        *acc = _mm512_fmadd_ps(v, xr, *acc);
                    }
                }
                w = unsafe { w.add(a.mp) };
                at += a.rs;
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (l, acc) in acc.iter().enumerate() {
                unsafe { _mm512_storeu_ps(a.out.add(r * a.mp + LANES * l), *acc) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Both routes against the sum written out: row counts around the kernel's block of 6,
    /// partial last blocks of positions, taps whose windows overlap and taps in other rows (as
    /// phases are), enough rows for several passes, and an empty tap list.
    #[test]
    fn matches_the_sum_written_out() {
        let mut rng = Rng::new(3);
        let cases = [
            (13, 5, 150, 4),
            (6, 3, 64, 1),
            (1, 7, 70, 9),
            (4, 2, 10, 0),
            (7, 40, 100, 9),
        ];
        for (m, k, n, taps) in cases {
            let rs = padded(n) + 20;
            let x = rng.normal_vec((k + 2) * rs + 40, 0.0, 1.0);
            let w = rng.normal_vec(taps * m * k + 3, 0.0, 1.0);
            let taps: Vec<Tap> = (0..taps)
                .map(|t| Tap {
                    x: (t % 3) * rs + (t * 7) % 21,
                    w: t,
                })
                .collect();
            let (js, is) = (taps.len().max(1) * k, taps.len().max(1));
            let packed = pack(&w, (js, is), &taps, (m, k));
            let s = TapSum {
                x: &x,
                rs,
                k,
                w: &w,
                js,
                is,
                taps: &taps,
                packed: &packed,
                kernel: true,
            };
            let out_rs = padded(n) + 3;
            let mut want = vec![0.0f32; m * out_rs];
            for j in 0..m {
                for q in 0..n {
                    want[j * out_rs + q] = taps
                        .iter()
                        .map(|t| {
                            (0..k)
                                .map(|i| w[t.w + j * js + i * is] * x[t.x + i * rs + q])
                                .sum::<f32>()
                        })
                        .sum();
                }
            }
            let mut fast = vec![f32::NAN; m * out_rs];
            s.run((m, n), &mut fast, out_rs);
            let mut portable = vec![f32::NAN; m * out_rs];
            TapSum { kernel: false, ..s }.run((m, n), &mut portable, out_rs);
            for j in 0..m {
                for q in 0..n {
                    let i = j * out_rs + q;
                    let tol = 1e-4 * (1.0 + want[i].abs());
                    assert!(
                        (fast[i] - want[i]).abs() < tol && (portable[i] - want[i]).abs() < tol,
                        "m{m} k{k} n{n}: out[{j}, {q}] = {} and {}, want {}",
                        fast[i],
                        portable[i],
                        want[i]
                    );
                }
            }
        }
    }

    /// A grid in the kernels' output layout for `(k, images, run, rows, taps)`: `k` rows of
    /// random values, planes of `rows + 1` rows of `run + 2` positions (so that padding sits
    /// between rows and images), and `taps` windows three to a row, as a 3x3 kernel's.
    struct Grid {
        x: Vec<f32>,
        rs: usize,
        layout: (usize, usize, usize, usize),
        taps: Vec<usize>,
        outputs: usize,
    }

    fn grid(
        rng: &mut Rng,
        (k, images, run, rows, taps): (usize, usize, usize, usize, usize),
    ) -> Grid {
        let wu = run + 2;
        let plane = (rows + 1) * wu;
        let rs = images * plane + 3 * wu + 5;
        Grid {
            x: rng.normal_vec(k * rs + 8, 0.0, 1.0),
            rs,
            layout: (run, rows, wu, plane),
            taps: (0..taps).map(|t| (t / 3) * wu + t % 3).collect(),
            outputs: images * rows * run,
        }
    }

    fn assert_near(got: f32, want: f64, what: impl Fn() -> String) {
        let v = got as f64;
        assert!(
            (v - want).abs() < 1e-4 * (1.0 + want.abs()),
            "{}: {v}, want {want}",
            what()
        );
    }

    /// The weight-gradient kernel against the sum written out: output channels around its
    /// blocks of 16 and 64, input rows around its blocks of 6 and 8, several images with padding
    /// between rows and planes, chunks of output rows, and strided taps.
    #[test]
    fn weight_grad_matches_the_sum_written_out() {
        if !kernel_available() {
            eprintln!("skipped: this CPU has no AVX-512F (cpu::conv tests the portable route)");
            return;
        }
        let mut rng = Rng::new(4);
        // (m, k, images, run, rows, taps)
        let cases = [
            (1, 1, 1, 1, 1, 1),
            (16, 7, 2, 5, 4, 9),
            (37, 9, 3, 8, 8, 4),
            (70, 13, 2, 4, 3, 16),
            (130, 20, 1, 33, 2, 2),
            (64, 6, 5, 16, 16, 9),
        ];
        for (m, k, images, run, rows, taps) in cases {
            let g = grid(&mut rng, (k, images, run, rows, taps));
            let mp = padded(m);
            let mut dy = rng.normal_vec(g.outputs * mp, 0.0, 1.0);
            dy.chunks_mut(mp).for_each(|r| r[m..].fill(0.0));
            let start = rng.normal_vec(taps * k * mp, 0.0, 1.0);
            let mut got = start.clone();
            WeightGrad {
                x: &g.x,
                rs: g.rs,
                k,
                taps: &g.taps,
                dy: &dy,
                m,
                layout: g.layout,
            }
            .run(images, &mut got);
            for (t, off) in g.taps.iter().enumerate() {
                for i in 0..k {
                    for j in 0..m {
                        let at = (t * k + i) * mp + j;
                        let want = start[at] as f64
                            + (0..g.outputs)
                                .map(|r| {
                                    let q = position(g.layout, r);
                                    dy[r * mp + j] as f64 * g.x[off + i * g.rs + q] as f64
                                })
                                .sum::<f64>();
                        assert_near(got[at], want, || format!("m{m} k{k}: dw[{t}, {i}, {j}]"));
                    }
                }
            }
        }
    }

    /// The channels-along-vectors kernel against the sum written out: output channels around
    /// its blocks of 16 and 64, blocks of outputs that cross rows and images, and enough input
    /// rows for several passes.
    #[test]
    fn output_sum_matches_the_sum_written_out() {
        if !kernel_available() {
            eprintln!("skipped: this CPU has no AVX-512F (cpu::conv tests the portable route)");
            return;
        }
        let mut rng = Rng::new(6);
        // (m, k, images, run, rows, taps)
        let cases = [
            (1, 1, 1, 1, 1, 1),
            (17, 9, 2, 5, 4, 9),
            (64, 30, 3, 4, 4, 9),
            (70, 13, 2, 3, 3, 16),
            (130, 5, 1, 33, 2, 1),
        ];
        for (m, k, images, run, rows, taps) in cases {
            let g = grid(&mut rng, (k, images, run, rows, taps));
            let mp = padded(m);
            let w = rng.normal_vec(taps * m * k, 0.0, 1.0);
            let (js, is) = (taps * k, taps);
            let tap_list: Vec<Tap> = g
                .taps
                .iter()
                .enumerate()
                .map(|(t, &x)| Tap { x, w: t })
                .collect();
            let packed = pack_channels(&w, (js, is), &tap_list, (m, k));
            let mut got = vec![f32::NAN; g.outputs * mp];
            OutputSum {
                x: &g.x,
                rs: g.rs,
                k,
                taps: &g.taps,
                w: &packed,
                m,
                layout: g.layout,
            }
            .run(images, &mut got);
            for r in 0..g.outputs {
                let q = position(g.layout, r);
                for j in 0..m {
                    let want: f64 = (0..taps * k)
                        .map(|ti| {
                            let (t, i) = (ti / k, ti % k);
                            w[t + j * js + i * is] as f64 * g.x[g.taps[t] + i * g.rs + q] as f64
                        })
                        .sum();
                    assert_near(got[r * mp + j], want, || {
                        format!("m{m} k{k}: out[{r}, {j}]")
                    });
                }
            }
        }
    }
}
