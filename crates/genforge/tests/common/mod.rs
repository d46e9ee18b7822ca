//! Helpers shared by the golden-output tests against reference implementations.

/// `got` equals `want` within `tol` relative to the larger of `want`'s magnitude and 1e-3.
pub fn assert_close(got: Vec<f32>, want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: sizes");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= tol * scale,
        "{what}: max |diff| {worst} (scale {scale})"
    );
}
