//! A small classifier whose pooled activations are the feature space for FID, KID,
//! precision/recall and, through its class probabilities, the Inception Score, on data the
//! Inception network was not made for. genforge trains it on the shipped digits (grey) and on
//! the shipped emoji's 10 categories (RGB) with `genforge train-classifier` and ships both
//! weights, so digit and emoji runs are scored out of the box. Its numbers compare genforge runs
//! with each other, never with published Inception FIDs.
//!
//! 32x32 grey or RGB in [-1, 1] -> conv3x3(32) -> conv3x3/2(32) -> conv3x3/2(64) -> conv3x3/2(64),
//! ReLU after each -> dense over the 4x4 map (128, ReLU) -> linear(10). The features are the
//! dense layer's activations times a fixed scale set after training so that their mean square
//! over the training digits is 1: KID's kernel `(x·y/d + 1)^3` then sees magnitudes like those
//! of Inception features, and KID values land in a familiar range.

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::{log_softmax, relu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::Dataset;
use crate::nn::conv::Conv2d;
use crate::rng::Rng;

/// Input side; other sizes are resized (bilinear) before the network.
pub const RESOLUTION: usize = 32;
pub const FEATURES: usize = 128;
pub const CLASSES: usize = 10;

#[derive(Module, Debug)]
pub struct MnistClassifier {
    convs: Vec<Conv2d>,
    /// The dense layer as a 4x4 valid convolution.
    dense: Conv2d,
    head: Conv2d,
    /// `[1]`: multiplies the features (not trained; see the module docs).
    feature_scale: Param<Tensor<1>>,
}

impl MnistClassifier {
    /// The digit classifier (grey input).
    pub fn new(rng: &mut Rng, device: &Device) -> Self {
        Self::with_channels(1, rng, device)
    }

    /// A classifier of `channels`-channel images.
    pub fn with_channels(channels: usize, rng: &mut Rng, device: &Device) -> Self {
        let widths = [channels, 32, 32, 64, 64];
        let convs = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let stride = if i == 0 { 1 } else { 2 };
                Conv2d::pytorch([w[0], w[1]], [3, 3], stride, 1, rng, device)
            })
            .collect();
        MnistClassifier {
            convs,
            dense: Conv2d::pytorch([64, FEATURES], [4, 4], 1, 0, rng, device),
            head: Conv2d::pytorch([FEATURES, CLASSES], [1, 1], 1, 0, rng, device),
            feature_scale: Param::from_tensor(Tensor::ones([1], device)).set_require_grad(false),
        }
    }

    /// Input channels.
    pub fn channels(&self) -> usize {
        self.convs[0].weight.dims()[1]
    }

    /// `x`: `[b, channels, 32, 32]` -> (features `[b, 128]`, logits `[b, 10]`).
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let mut h = x;
        for conv in &self.convs {
            h = relu(conv.forward(h)); // [b, 32, 32, 32] .. [b, 64, 4, 4]
        }
        let b = h.dims()[0];
        let f = relu(self.dense.forward(h)); // [b, 128, 1, 1]
        let logits = self.head.forward(f.clone()).reshape([b, CLASSES]);
        let scale = self.feature_scale.val().reshape([1, 1]);
        (f.reshape([b, FEATURES]) * scale, logits)
    }

    /// Class probabilities `[b, 10]`.
    pub fn probabilities(&self, x: Tensor<4>) -> Tensor<2> {
        softmax(self.forward(x).1, 1)
    }
}

/// Mean cross-entropy of `logits` `[b, k]` against `labels` `[b]`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let b = logits.dims()[0];
    -log_softmax(logits, 1)
        .gather(1, labels.reshape([b, 1]))
        .mean()
}

/// Fraction of `data` classified correctly.
pub fn accuracy(net: &MnistClassifier, data: &Dataset, device: &Device) -> f64 {
    let mut correct = 0usize;
    for start in (0..data.len()).step_by(256) {
        let idx: Vec<usize> = (start..(start + 256).min(data.len())).collect();
        let pred = net
            .forward(data.tensor(&idx, device))
            .1
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("argmax");
        correct += idx
            .iter()
            .zip(pred)
            .filter(|(i, p)| data.label(**i) as i64 == *p)
            .count();
    }
    correct as f64 / data.len().max(1) as f64
}

/// `x` (`[c, side, side]`) shifted by `(dy, dx)` pixels, each channel's background (its
/// top-left pixel: black for the digits, white for the emoji) filling what moves in.
fn shifted(x: &[f32], side: usize, dy: isize, dx: isize) -> Vec<f32> {
    let plane = side * side;
    let mut out = Vec::with_capacity(x.len());
    for ch in x.chunks(plane) {
        let mut o = vec![ch[0]; plane];
        for y in 0..side as isize {
            for xx in 0..side as isize {
                let (sy, sx) = (y - dy, xx - dx);
                if (0..side as isize).contains(&sy) && (0..side as isize).contains(&sx) {
                    o[(y as usize) * side + xx as usize] = ch[(sy as usize) * side + sx as usize];
                }
            }
        }
        out.extend(o);
    }
    out
}

/// Adam on cross-entropy over shuffled batches, each image shifted by up to 2 pixels, the
/// learning rate decaying from 1e-3 on a cosine; `progress(step, loss)` every 50 steps. The
/// network takes the data's channels.
pub fn train(
    data: &Dataset,
    steps: usize,
    batch: usize,
    seed: u64,
    device: &Device,
    mut progress: impl FnMut(usize, f64),
) -> MnistClassifier {
    let device = device.clone().autodiff();
    let mut rng = Rng::new(seed);
    let channels = data.channels;
    let mut net = MnistClassifier::with_channels(channels, &mut rng.fork(1), &device);
    let mut opt = AdamConfig::new().init();
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut pos = order.len();
    for step in 1..=steps {
        if pos + batch > order.len() {
            rng.shuffle(&mut order);
            pos = 0;
        }
        let idx = &order[pos..pos + batch];
        pos += batch;
        let labels: Vec<i64> = idx.iter().map(|&i| data.label(i) as i64).collect();
        let labels = Tensor::from_data(TensorData::new(labels, [batch]), &device);
        let side = data.height;
        let mut x = Vec::with_capacity(batch * channels * side * side);
        for &i in idx {
            let (dy, dx) = (rng.below(5) as isize - 2, rng.below(5) as isize - 2);
            x.extend(shifted(data.image(i), side, dy, dx));
        }
        let x = Tensor::from_data(TensorData::new(x, [batch, channels, side, side]), &device);
        let loss = cross_entropy(net.forward(x).1, labels);
        if step % 50 == 0 || step == steps {
            progress(step, loss.clone().into_scalar::<f32>() as f64);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let lr = 1e-3 * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / steps as f64).cos());
        net = opt.step(lr.max(1e-5), net, grads);
    }
    let mut net = net.valid();
    let device = net.devices()[0].clone();
    let ms = mean_square_feature(&net, data, &device);
    net.feature_scale = Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![(1.0 / ms.sqrt()) as f32], [1]),
        &device,
    ))
    .set_require_grad(false);
    net
}

/// Mean of the squared feature values over `data`.
pub fn mean_square_feature(net: &MnistClassifier, data: &Dataset, device: &Device) -> f64 {
    let mut sum = 0.0;
    for start in (0..data.len()).step_by(256) {
        let idx: Vec<usize> = (start..(start + 256).min(data.len())).collect();
        let f = net.forward(data.tensor(&idx, device)).0;
        sum += f.square().sum().into_scalar::<f32>() as f64;
    }
    sum / (data.len() * FEATURES) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_matches_a_host_computation() {
        let device = Device::flex();
        let logits = [1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0];
        let t = Tensor::<2>::from_data(TensorData::new(logits.to_vec(), [2, 3]), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 2], [2]), &device);
        let ce: f32 = cross_entropy(t, y).into_scalar();
        let lse = |r: &[f32]| r.iter().map(|v| v.exp()).sum::<f32>().ln();
        let want = ((lse(&logits[..3]) - 2.0) + (lse(&logits[3..]) - 3.0)) / 2.0;
        assert!((ce - want).abs() < 1e-6);
    }

    #[test]
    fn shifts_move_pixels_and_fill_with_background() {
        // Two channels: a black background (-1) and a white one (1, its top-left pixel).
        let mut x: Vec<f32> = (0..9).map(|v| v as f32).collect();
        x[0] = -1.0;
        x.extend([1.0, 0.5, 0.5, 1.0, 0.2, 1.0, 1.0, 1.0, 1.0]);
        let s = shifted(&x, 3, 1, -1);
        // Row 0 is new background; row 1 is row 0 moved left by one.
        assert_eq!(&s[..9], &[-1.0, -1.0, -1.0, 1.0, 2.0, -1.0, 4.0, 5.0, -1.0]);
        assert_eq!(&s[9..], &[1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 0.2, 1.0, 1.0]);
    }

    #[test]
    fn features_are_the_scaled_dense_activations_and_the_head_reads_them_unscaled() {
        let device = Device::flex();
        let mut net = MnistClassifier::new(&mut Rng::new(0), &device);
        let x = Tensor::<4>::random([3, 1, 32, 32], burn::tensor::Distribution::Default, &device);
        let (f, logits) = net.forward(x.clone());
        assert_eq!(f.dims(), [3, FEATURES]);
        assert_eq!(logits.dims(), [3, CLASSES]);
        let f1 = f.into_data().try_into_vec::<f32>().unwrap();
        // Features come after a ReLU.
        assert!(f1.iter().all(|v| *v >= 0.0) && f1.iter().any(|v| *v > 0.0));
        // The scale multiplies the features only; the classifier's decision does not move.
        net.feature_scale = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![2.0f32], [1]),
            &device,
        ));
        let (f2, logits2) = net.forward(x);
        let f2 = f2.into_data().try_into_vec::<f32>().unwrap();
        assert!(
            f1.iter()
                .zip(&f2)
                .all(|(a, b)| (2.0 * a - b).abs() <= 1e-6 * b.abs().max(1.0))
        );
        assert_eq!(logits.into_data(), logits2.into_data());
    }
}
