//! `--device cpu|vulkan|cuda` to a burn device.

use burn::tensor::Device;

use crate::{Error, Result};

pub fn parse(name: &str) -> Result<Device> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "vulkan")]
        "vulkan" => Ok(Device::vulkan(Default::default())),
        #[cfg(feature = "cuda")]
        "cuda" => {
            cuda_available()?;
            Ok(Device::cuda(0))
        }
        // A guard, so builds with both features do not warn of an unreachable arm.
        gpu if gpu == "vulkan" || gpu == "cuda" => Err(Error::Device(format!(
            "this genforge was built without the '{gpu}' feature; rebuild with `cargo build \
             --release --features {gpu}`{}",
            if gpu == "cuda" {
                " after `scripts/prepare_cuda_llvm.sh` (README, Devices)"
            } else {
                ""
            }
        ))),
        other => Err(Error::Device(format!(
            "unknown device '{other}'; use cpu, vulkan or cuda"
        ))),
    }
}

/// The driver, NVRTC and a GPU, checked up front: burn's CUDA client panics without them.
#[cfg(feature = "cuda")]
fn cuda_available() -> Result<()> {
    use cudarc::{driver, nvrtc};
    // SAFETY: these only try to dlopen the libraries by name.
    if !unsafe { driver::sys::is_culib_present() } {
        return Err(Error::Device(
            "--device cuda: the CUDA driver library (libcuda.so.1) was not found; install the \
             NVIDIA driver, or run on a machine with an NVIDIA GPU"
                .into(),
        ));
    }
    if !unsafe { nvrtc::sys::is_culib_present() } {
        return Err(Error::Device(
            "--device cuda: NVRTC (libnvrtc.so) was not found; install the CUDA toolkit's \
             NVRTC (for example `pip install nvidia-cuda-nvrtc`) and add the directory holding \
             libnvrtc.so to LD_LIBRARY_PATH"
                .into(),
        ));
    }
    let count = driver::result::init().and_then(|()| driver::result::device::get_count());
    match count {
        Ok(n) if n > 0 => Ok(()),
        Ok(_) => Err(Error::Device(
            "--device cuda: the CUDA driver sees no GPU".into(),
        )),
        Err(e) => Err(Error::Device(format!(
            "--device cuda: the CUDA driver failed to start ({e}); check `nvidia-smi`"
        ))),
    }
}
