//! `--device cpu|vulkan|cuda` to a burn device.

use burn::tensor::Device;

use crate::{Error, Result};

pub fn parse(name: &str) -> Result<Device> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "vulkan")]
        "vulkan" => Ok(Device::vulkan(Default::default())),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        "vulkan" | "cuda" => Err(Error::Device(format!(
            "this genforge was built without the '{name}' feature; rebuild with `cargo build --release --features {name}`"
        ))),
        other => Err(Error::Device(format!(
            "unknown device '{other}'; use cpu or vulkan"
        ))),
    }
}
