//! Adversarial losses as small pure functions of discriminator logits (`[b]`), batch-averaged.

use burn::tensor::Tensor;
use burn::tensor::activation::{relu, softplus};

/// `BCEWithLogits(x, t) = mean(max(x, 0) - x t + log(1 + exp(-|x|)))`, stable for any `x`.
pub fn bce_with_logits(logits: Tensor<1>, target: f32) -> Tensor<1> {
    let stable = relu(logits.clone()) - logits.clone() * target + softplus(logits.abs().neg(), 1.0);
    stable.mean()
}

/// DCGAN discriminator: `BCE(D(x), 1) + BCE(D(G(z)), 0)`.
pub fn d_bce_loss(real: Tensor<1>, fake: Tensor<1>) -> Tensor<1> {
    bce_with_logits(real, 1.0) + bce_with_logits(fake, 0.0)
}

/// Non-saturating generator loss: `BCE(D(G(z)), 1) = -mean(log sigmoid(D(G(z))))`.
pub fn g_nonsaturating_loss(fake: Tensor<1>) -> Tensor<1> {
    bce_with_logits(fake, 1.0)
}

/// SAGAN hinge loss for D: `mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))`.
pub fn d_hinge_loss(real: Tensor<1>, fake: Tensor<1>) -> Tensor<1> {
    relu(real.neg() + 1.0).mean() + relu(fake + 1.0).mean()
}

/// SAGAN hinge loss for G: `-mean(D(G(z)))`.
pub fn g_hinge_loss(fake: Tensor<1>) -> Tensor<1> {
    fake.mean().neg()
}

/// Wasserstein D loss with Progressive GAN's drift term: `mean(D(G(z))) - mean(D(x)) + drift
/// mean(D(x)^2)` (the drift keeps the real logits near zero; the gradient penalty is separate, see
/// [`super::regularizers::gradient_penalty_surrogate`]). The G loss is `-mean(D(G(z)))`, as
/// [`g_hinge_loss`].
pub fn d_wgan_loss(real: Tensor<1>, fake: Tensor<1>, drift: f64) -> Tensor<1> {
    fake.mean() - real.clone().mean() + real.square().mean() * drift
}

/// Balanced consistency regularization (Zhao et al. 2021): `mean((D(T(x)) - D(x))^2)` between
/// D's logits on augmented and plain copies of the same images.
pub fn bcr(augmented: Tensor<1>, plain: Tensor<1>) -> Tensor<1> {
    (augmented - plain).square().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t(v: &[f32]) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Device::flex())
    }
    fn s(x: Tensor<1>) -> f64 {
        x.into_scalar::<f32>() as f64
    }

    #[test]
    fn bce_matches_hand_values() {
        // -log(sigmoid(2)) = log(1 + e^-2) = 0.126928; -log(1 - sigmoid(-1)) = log(1 + e^-1) = 0.313262
        assert!((s(bce_with_logits(t(&[2.0]), 1.0)) - 0.126_928).abs() < 1e-5);
        assert!((s(bce_with_logits(t(&[-1.0]), 0.0)) - 0.313_262).abs() < 1e-5);
        // Large logits stay finite: BCE(100, 0) = 100.
        assert!((s(bce_with_logits(t(&[100.0]), 0.0)) - 100.0).abs() < 1e-3);
        // At logit 0 every term is log 2.
        let d = s(d_bce_loss(t(&[0.0, 0.0]), t(&[0.0])));
        assert!((d - 2.0 * std::f64::consts::LN_2).abs() < 1e-6);
        assert!(
            (s(g_nonsaturating_loss(t(&[2.0, -1.0]))) - (0.126_928 + 1.313_262) / 2.0).abs() < 1e-5
        );
    }

    #[test]
    fn bcr_is_zero_for_identity_augmentation_and_mse_otherwise() {
        assert_eq!(s(bcr(t(&[0.3, -2.0]), t(&[0.3, -2.0]))), 0.0);
        assert!((s(bcr(t(&[1.0, 0.0]), t(&[0.0, 2.0]))) - 2.5).abs() < 1e-6);
    }

    #[test]
    fn hinge_matches_hand_values() {
        // real [2, 0.5, -1]: relu(1 - x) = [0, 0.5, 2] -> 0.8333; fake [-3, 0]: relu(1 + x) = [0, 1] -> 0.5
        let d = s(d_hinge_loss(t(&[2.0, 0.5, -1.0]), t(&[-3.0, 0.0])));
        assert!((d - (2.5 / 3.0 + 0.5)).abs() < 1e-6, "{d}");
        assert!((s(g_hinge_loss(t(&[1.0, -3.0]))) - 1.0).abs() < 1e-6);
    }
}
