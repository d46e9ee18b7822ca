//! `genforge import`: a network trained elsewhere as a genforge run directory.

use std::path::PathBuf;

use anyhow::{Result, bail};
use genforge::import;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The network: an NVlabs network pickle (stylegan2-ada-pytorch's `ffhq.pkl`,
    /// `network-snapshot-*.pkl`; TF StyleGAN2's `stylegan2-ffhq-config-f.pkl`; StyleGAN's
    /// `karras2019stylegan-ffhq-1024x1024.pkl`; Progressive GAN's
    /// `karras2018iclr-celebahq-1024x1024.pkl`; read, never run), or a BigGAN-PyTorch generator
    /// state dict (`G_ema.pth`, `G.pth`, or the TF-Hub conversion `biggan-128.pth`).
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
    /// The run directory to create (default: `runs/<file name without extension>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn import(mut args: ImportArgs) -> Result<()> {
    if args.out.is_none() {
        let stem = args.file.file_stem().unwrap_or(args.file.as_os_str());
        args.out = Some(PathBuf::from("runs").join(stem));
    }
    let out = args.out.as_deref().expect("set above");
    if args.file.extension().is_some_and(|e| e == "pkl") {
        return import_pickle(&args);
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
        out,
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
        out.display()
    );
    if done.classes == 1000 {
        println!(
            "try: genforge sample {} --class \"golden retriever\" --truncation 0.5 --n 16 --out \
             samples.png",
            out.display()
        );
    }
    Ok(())
}

/// An NVlabs network pickle: its networks listed, then its generator (and D) imported as a run
/// of the family it is (stylegan2, stylegan or pggan).
fn import_pickle(args: &ImportArgs) -> Result<()> {
    use genforge::import::{network_pickle, persistent, pickle::Pickle, stylegan2};
    if args.discriminator.is_some() || args.preset.is_some() {
        bail!(
            "config: --discriminator and --preset are for BigGAN-PyTorch files; an NVlabs pickle \
             holds its D and its configuration"
        );
    }
    let path = &args.file;
    let out = args.out.as_deref().expect("set by import");
    let map = stylegan2::map_file(path)?;
    let p = Pickle::parse(&map)
        .map_err(|e| anyhow::anyhow!("{}: not a readable pickle: {e}", path.display()))?;
    for n in persistent::summarize(&p).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))? {
        let kwargs = n
            .init_kwargs
            .as_ref()
            .map_or(String::new(), |k| format!(" {k}"));
        println!("{}: {} ({} values){kwargs}", n.key, n.class_name, n.values);
    }
    let tf = genforge::import::tflib::networks(&p)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for n in tf {
        let values: usize = n.variables.values().map(|t| t.values.len()).sum();
        println!(
            "{}: TF network version {} ({values} values) {}",
            n.name, n.version, n.static_kwargs
        );
    }
    drop(p);
    let done = network_pickle::import(path, args.family.as_deref(), &args.set, out)?;
    println!(
        "imported {} tensors of {} ({}, sha256 {}) as a {} run ({}x{}{}{}){}: {}",
        done.tensors,
        path.display(),
        done.format,
        done.sha256,
        done.family,
        done.resolution,
        done.resolution,
        if done.styles > 0 {
            format!(", {} ws", done.styles)
        } else {
            String::new()
        },
        if done.classes > 0 {
            format!(", {} classes", done.classes)
        } else {
            String::new()
        },
        if done.discriminator {
            " with its discriminator"
        } else {
            ""
        },
        out.display()
    );
    let class = if done.classes > 0 { " --class 0" } else { "" };
    // NVlabs' defaults: StyleGAN (2019) truncates the first 8 ws only.
    let psi = match done.family {
        "stylegan" => " --psi 0.7 --cutoff 8",
        _ if done.styles > 0 => " --psi 0.7",
        _ => "",
    };
    println!(
        "try: genforge sample {}{psi}{class} --n 4 --out samples.png",
        out.display()
    );
    Ok(())
}
