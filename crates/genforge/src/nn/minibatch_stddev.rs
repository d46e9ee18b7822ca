//! Minibatch standard deviation (Karras et al., Progressive GAN section 3): the discriminator
//! sees how varied its batch is. Samples are split into groups of `group` (sample `n` is in
//! group slot `n / m`, member `n % m` with `m = b / group`, as the official code's reshape);
//! the standard deviation of each feature over a group is averaged into one number per member,
//! appended as an extra feature map.

use burn::tensor::Tensor;

/// The group size used for a batch of `b`: the largest divisor of `b` not above `group`.
pub fn group_size(b: usize, group: usize) -> usize {
    (1..=group.min(b))
        .rev()
        .find(|g| b.is_multiple_of(*g))
        .unwrap_or(1)
}

/// `[b, c, h, w] -> [b, c + 1, h, w]`.
pub fn minibatch_stddev(x: Tensor<4>, group: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let g = group_size(b, group);
    let m = b / g;
    let y = x.clone().reshape([g, m, c, h, w]); // [G, M, c, h, w]
    let y = y.clone() - y.mean_dim(0); // deviations from the group mean
    let std = (y.square().mean_dim(0) + 1e-8).sqrt(); // [1, M, c, h, w]
    let s = std.reshape([m, c * h * w]).mean_dim(1); // [M, 1]
    let s = s
        .reshape([1, m, 1, 1, 1])
        .repeat_dim(0, g)
        .reshape([b, 1, 1, 1])
        .repeat_dim(2, h)
        .repeat_dim(3, w); // [b, 1, h, w]
    Tensor::cat(vec![x, s], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn matches_an_explicit_computation() {
        let device = Device::flex();
        let mut rng = crate::rng::Rng::new(5);
        let (b, c, h, w, group) = (8, 2, 3, 3, 4);
        let v = rng.normal_vec(b * c * h * w, 0.0, 2.0);
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [b, c, h, w]), &device);
        let y = minibatch_stddev(x, group)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let per = c * h * w;
        let m = b / group;
        for n in 0..b {
            // Members of n's group: every sample with the same index modulo m.
            let members: Vec<usize> = (0..b).filter(|k| k % m == n % m).collect();
            assert_eq!(members.len(), group);
            let mut acc = 0.0f64;
            for f in 0..per {
                let vals: Vec<f64> = members.iter().map(|k| v[k * per + f] as f64).collect();
                let mean = vals.iter().sum::<f64>() / group as f64;
                let var = vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / group as f64;
                acc += (var + 1e-8).sqrt();
            }
            let want = acc / per as f64;
            let base = n * (c + 1) * h * w;
            // The original features are kept, the extra map is constant at the group's value.
            assert_eq!(y[base], v[n * per]);
            for k in 0..h * w {
                let got = y[base + c * h * w + k] as f64;
                assert!((got - want).abs() < 1e-4, "{got} {want}");
            }
        }
        assert_eq!(group_size(6, 4), 3);
        assert_eq!(group_size(2, 4), 2);
    }
}
