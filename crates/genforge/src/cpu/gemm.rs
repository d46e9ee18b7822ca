//! Strided matrix products through the `gemm` crate (the GEMM burn-flex itself uses): the one
//! place the CPU kernels call it.

/// A strided matrix: element `(i, j)` at `data[i * rs + j * cs]`.
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rs: isize,
    cs: isize,
}

pub(crate) fn mat(data: &[f32], rs: usize, cs: usize) -> Mat<'_> {
    Mat {
        data,
        rs: rs as isize,
        cs: cs as isize,
    }
}

/// `dst [m, n] (+)= lhs [m, k] . rhs [k, n]`; `dst` row-major, or column-major with
/// `col_major`; with `accumulate` the product is added to what `dst` holds. Threads split
/// products from `64^3` multiply-adds up.
pub(crate) fn matmul(
    dims: (usize, usize, usize),
    lhs: Mat,
    rhs: Mat,
    dst: &mut [f32],
    col_major: bool,
    accumulate: bool,
) {
    let (m, n, k) = dims;
    let parallelism = if m * n * k >= 64 * 64 * 64 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let (rs, cs) = if col_major { (1, m) } else { (n, 1) };
    let dst = MatMut { data: dst, rs, cs };
    product(dims, lhs, rhs, dst, accumulate, parallelism);
}

/// A strided output matrix: element `(i, j)` at `data[i * rs + j * cs]`.
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rs: usize,
    cs: usize,
}

/// A row-major output whose rows are `rs` apart.
pub(crate) fn rows_of(data: &mut [f32], rs: usize) -> MatMut<'_> {
    MatMut { data, rs, cs: 1 }
}

/// [`matmul`] into a strided `dst`, on the threads `parallelism` gives it.
pub(crate) fn product(
    (m, n, k): (usize, usize, usize),
    lhs: Mat,
    rhs: Mat,
    dst: MatMut,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.data.len() > (m - 1) * dst.rs + (n - 1) * dst.cs);
    // SAFETY: the callers size every slice from the same (m, n, k) and strides, so each index
    // `i * rs + j * cs` the product reaches lies inside its slice (checked above for `dst`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.cs as isize,
            dst.rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs,
            lhs.rs,
            rhs.data.as_ptr(),
            rhs.cs,
            rhs.rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}
