//! Every shipped preset parses, validates and builds its networks; the GAN presets up to 64
//! pixels draw an image of the size their config names. Larger ones (the 128 to 1024 pixel
//! article settings) are built but not run: a forward pass there takes longer than this suite
//! should.

use genforge::burn::module::Module;
use genforge::burn::tensor::Device;
use genforge::config::{PRESETS, TrainConfig};
use genforge::models::ModelConfig;
use genforge::rng::Rng;

#[test]
fn every_preset_validates_and_builds() {
    let device = Device::flex();
    assert!(PRESETS.len() >= 25, "{} presets", PRESETS.len());
    for (name, text) in PRESETS {
        let cfg = TrainConfig::from_toml(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&cfg.name, name, "{name}: the file's name key");
        let loaded = TrainConfig::load(name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            loaded.to_toml(),
            cfg.to_toml(),
            "{name}: load and from_toml differ"
        );
        let mut rng = Rng::new(0);
        let params = match &cfg.model {
            ModelConfig::Vqvae2(c) => {
                genforge::models::vqvae2::VqVae2::new(c, &mut rng, &device).num_params()
            }
            ModelConfig::Pixelcnn(c) => {
                let (top, bottom) = c.init(&mut rng, &device);
                top.num_params() + bottom.num_params()
            }
            ModelConfig::Dcgan(_)
            | ModelConfig::Sagan(_)
            | ModelConfig::Vitgan(_)
            | ModelConfig::Stylegan(_)
            | ModelConfig::Stylegan2(_)
            | ModelConfig::Biggan(_)
            | ModelConfig::Pggan(_) => {
                let (g, d) = cfg
                    .model
                    .init_gan(cfg.train.progressive, &mut rng, &device)
                    .unwrap_or_else(|| panic!("{name}: not built as a GAN"));
                let (channels, res) = cfg.model.image_shape().expect("an image family");
                if res <= 64 {
                    let z = genforge::sample::latents(1, cfg.model.z_dim().unwrap(), 0, &device);
                    let img = g.forward(z, None);
                    assert_eq!(img.dims(), [1, channels, res, res], "{name}: image size");
                    let v = img.into_data().try_to_vec::<f32>().unwrap();
                    assert!(v.iter().all(|x| x.is_finite()), "{name}: non-finite pixels");
                }
                g.num_params() + d.num_params()
            }
        };
        assert!(params > 0, "{name}: no parameters");
    }
}
