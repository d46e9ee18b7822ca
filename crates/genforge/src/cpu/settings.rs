//! The environment switches that pick between the CPU kernels and their reference paths, parsed
//! once. Each exists to compare speed or to rule a kernel out; results agree to rounding either
//! way.

use std::sync::OnceLock;

use burn::tensor::Device;

/// How convolutions run (`GENFORGE_CONV`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvRoute {
    /// On the CPU the kernels of `cpu::conv`; elsewhere burn's convolutions.
    Auto,
    /// burn's convolutions everywhere.
    Burn,
    /// The batch-wide product route everywhere (on other devices built from tensor operations).
    Gemm,
}

/// The five switches, with their defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSettings {
    /// `GENFORGE_CONV=auto|burn|gemm`.
    pub conv: ConvRoute,
    /// `GENFORGE_FUSED=1|0`: the fused element-wise, dense, normalisation, resampling and im2row
    /// operations (`0`: burn's compositions).
    pub fused: bool,
    /// `GENFORGE_TAPS=1|0`: convolutions by kernel taps (`0`: burn-flex's kernel or im2col).
    pub taps: bool,
    /// `GENFORGE_TAP_KERNEL=1|0`: the AVX-512 register-blocked tap kernels where the CPU has them
    /// (`0`: one GEMM call per tap).
    pub tap_kernel: bool,
    /// `GENFORGE_BLUR=fused|slices`: StyleGAN's blur as one operation or as shifted slices.
    pub blur_slices: bool,
}

impl Default for KernelSettings {
    fn default() -> Self {
        KernelSettings {
            conv: ConvRoute::Auto,
            fused: true,
            taps: true,
            tap_kernel: true,
            blur_slices: false,
        }
    }
}

/// Each switch: its variable and its accepted values, the default first.
pub const SWITCHES: [(&str, &[&str]); 5] = [
    ("GENFORGE_CONV", &["auto", "burn", "gemm"]),
    ("GENFORGE_FUSED", &["1", "0"]),
    ("GENFORGE_TAPS", &["1", "0"]),
    ("GENFORGE_TAP_KERNEL", &["1", "0"]),
    ("GENFORGE_BLUR", &["fused", "slices"]),
];

impl KernelSettings {
    /// The settings `var` gives (a variable's value, `None` when unset); an unknown value is an
    /// error naming the variable and the values it takes.
    pub fn parse(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut chosen = [0usize; 5];
        for (slot, (name, values)) in chosen.iter_mut().zip(SWITCHES) {
            if let Some(v) = var(name) {
                *slot = values.iter().position(|&a| a == v.trim()).ok_or_else(|| {
                    format!(
                        "{name}={v:?} is not a setting: use one of {}",
                        values.join(", ")
                    )
                })?;
            }
        }
        let [conv, fused, taps, tap_kernel, blur] = chosen;
        Ok(KernelSettings {
            conv: [ConvRoute::Auto, ConvRoute::Burn, ConvRoute::Gemm][conv],
            fused: fused == 0,
            taps: taps == 0,
            tap_kernel: tap_kernel == 0,
            blur_slices: blur == 1,
        })
    }

    /// The settings of this process's environment.
    pub fn from_env() -> Result<Self, String> {
        Self::parse(|name| std::env::var(name).ok())
    }

    /// `(variable, value)` for each switch, in [`SWITCHES`] order.
    pub fn pairs(&self) -> [(&'static str, &'static str); 5] {
        let conv = match self.conv {
            ConvRoute::Auto => "auto",
            ConvRoute::Burn => "burn",
            ConvRoute::Gemm => "gemm",
        };
        let bit = |b: bool| if b { "1" } else { "0" };
        let values = [
            conv,
            bit(self.fused),
            bit(self.taps),
            bit(self.tap_kernel),
            if self.blur_slices { "slices" } else { "fused" },
        ];
        let mut out = [("", ""); 5];
        for (o, ((name, _), v)) in out.iter_mut().zip(SWITCHES.iter().zip(values)) {
            *o = (*name, v);
        }
        out
    }

    /// `NAME=value` for each switch, in [`SWITCHES`] order.
    pub fn describe(&self) -> String {
        self.pairs()
            .iter()
            .map(|(name, v)| format!("{name}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The process's settings, read from the environment on first use. The binary checks them
/// with [`KernelSettings::from_env`] before any work; a library caller with an unknown value
/// gets the defaults and a warning.
pub fn settings() -> &'static KernelSettings {
    static SETTINGS: OnceLock<KernelSettings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        KernelSettings::from_env().unwrap_or_else(|e| {
            tracing::warn!("{e}; using the defaults");
            KernelSettings::default()
        })
    })
}

/// The CPU's vector features the kernels look for.
pub fn cpu_features() -> Vec<&'static str> {
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            found.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("fma") {
            found.push("fma");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push("avx512f");
        }
    }
    #[cfg(target_arch = "aarch64")]
    found.push("neon");
    found
}

/// Whether tensors on `device` live on the CPU backend, where this module's kernels are
/// registered.
pub fn is_cpu(device: &Device) -> bool {
    device.clone().without_autodiff() == Device::flex()
}

/// Whether the fused operations serve tensors on `device`.
pub fn fused_on(device: &Device) -> bool {
    settings().fused && is_cpu(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<KernelSettings, String> {
        KernelSettings::parse(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_when_unset_and_each_switch_read() {
        assert_eq!(parse(&[]).unwrap(), KernelSettings::default());
        let s = parse(&[
            ("GENFORGE_CONV", "burn"),
            ("GENFORGE_FUSED", "0"),
            ("GENFORGE_TAPS", "0"),
            ("GENFORGE_TAP_KERNEL", "0"),
            ("GENFORGE_BLUR", "slices"),
        ])
        .unwrap();
        assert_eq!(s.conv, ConvRoute::Burn);
        assert!(!s.fused && !s.taps && !s.tap_kernel && s.blur_slices);
        assert_eq!(
            s.describe(),
            "GENFORGE_CONV=burn GENFORGE_FUSED=0 GENFORGE_TAPS=0 GENFORGE_TAP_KERNEL=0 \
             GENFORGE_BLUR=slices"
        );
        assert_eq!(
            parse(&[("GENFORGE_CONV", "gemm")]).unwrap().conv,
            ConvRoute::Gemm
        );
    }

    #[test]
    fn unknown_values_are_errors_naming_the_switch() {
        let e = parse(&[("GENFORGE_CONV", "gem")]).unwrap_err();
        assert!(
            e.contains("GENFORGE_CONV") && e.contains("auto, burn, gemm"),
            "{e}"
        );
        assert!(parse(&[("GENFORGE_FUSED", "no")]).is_err());
        assert!(parse(&[("GENFORGE_BLUR", "")]).is_err());
    }
}
