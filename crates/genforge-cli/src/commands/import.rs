//! `genforge import`: a network trained elsewhere as a genforge run directory.

use std::path::PathBuf;

use anyhow::{Result, bail};
use genforge::import;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The checkpoint: a BigGAN-PyTorch generator state dict (`G_ema.pth`, `G.pth`, or the
    /// TF-Hub conversion `biggan-128.pth`).
    pub file: PathBuf,
    /// The network family (default: recognised from the file's keys).
    #[arg(long)]
    pub family: Option<String>,
    /// The config the network is built from (default: `biggan-imagenet128`, or
    /// `biggan-tfhub128` for the TF-Hub conversion).
    #[arg(long)]
    pub preset: Option<String>,
    /// Config overrides, `key=value` (e.g. `model.num_classes=10`).
    #[arg(long, num_args = 1..)]
    pub set: Vec<String>,
    /// The matching discriminator (`D.pth`), for D's attention figures.
    #[arg(long)]
    pub discriminator: Option<PathBuf>,
    /// The run directory to create.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn import(args: ImportArgs) -> Result<()> {
    match args.family.as_deref() {
        None | Some("biggan") => {}
        Some(other) => bail!(
            "config: --family {other}: genforge imports BigGAN-PyTorch checkpoints (--family \
             biggan) so far"
        ),
    }
    let done = import::biggan::import(
        &args.file,
        args.discriminator.as_deref(),
        args.preset.as_deref(),
        &args.set,
        &args.out,
    )?;
    println!(
        "imported {} tensors of {} (sha256 {}) as a {} run{}: {}",
        done.tensors,
        args.file.display(),
        done.sha256,
        done.preset,
        if done.discriminator {
            " with its discriminator"
        } else {
            ""
        },
        args.out.display()
    );
    if done.classes == 1000 {
        println!(
            "try: genforge sample {} --class \"golden retriever\" --truncation 0.5 --n 16 --out \
             samples.png",
            args.out.display()
        );
    }
    Ok(())
}
