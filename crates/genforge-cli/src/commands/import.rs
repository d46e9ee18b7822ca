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
    if args.file.extension().is_some_and(|e| e == "pkl") {
        return describe_pickle(&args.file);
    }
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

/// NVlabs' network pickles are read (without running them) and described; building their
/// networks is not implemented yet, which the error says.
fn describe_pickle(path: &std::path::Path) -> Result<()> {
    use genforge::import::{persistent, pickle::Pickle};
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let p = Pickle::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a readable pickle: {e}", path.display()))?;
    let nets = persistent::summarize(&p).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for n in &nets {
        let kwargs = n
            .init_kwargs
            .as_ref()
            .map_or(String::new(), |k| format!(" {k}"));
        println!("{}: {} ({} values){kwargs}", n.key, n.class_name, n.values);
    }
    bail!(
        "{}: {}; genforge reads such pickles (nothing in them is run) but cannot build \
         NVlabs' StyleGAN networks yet; BigGAN-PyTorch's .pth files import",
        path.display(),
        if nets.is_empty() {
            "holds no torch networks".to_string()
        } else {
            format!("holds {} network(s), listed above", nets.len())
        }
    )
}
