//! `genforge report`: one self-contained HTML file per run, with loss and metric curves (inline
//! SVG drawn by plotters), the sample-grid timeline, the figures in the run directory, timing
//! and the resolved config. Images are embedded as data URIs, so the file can be mailed or
//! archived on its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine;
use plotters::prelude::*;

use crate::run::{self, checkpoint};
use crate::{Error, Result};

/// Keys of `stats.jsonl` that are bookkeeping, not curves.
const NOT_CURVES: [&str; 4] = ["step", "images_seen", "sec_per_step", "img_per_s"];
/// At most this many sample grids in the timeline (evenly spaced, the last always included).
const MAX_GRIDS: usize = 12;

/// One named series of (step, value) points.
type Series = (String, Vec<(f64, f64)>);

fn read_jsonl(path: &Path) -> Result<Vec<serde_json::Value>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Every numeric key of `lines` (except `skip`) as a series over `step`.
fn series(lines: &[serde_json::Value], skip: &[&str]) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut out: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for l in lines {
        let (Some(obj), Some(step)) = (l.as_object(), l.get("step").and_then(|s| s.as_f64()))
        else {
            continue;
        };
        for (k, v) in obj {
            if let Some(v) = v.as_f64().filter(|v| v.is_finite())
                && !skip.contains(&k.as_str())
            {
                out.entry(k.clone()).or_default().push((step, v));
            }
        }
    }
    // Evaluations of older checkpoints may be appended after newer ones.
    for points in out.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Minutes of wall-clock time at each logged step of `stats`: every line with `sec_per_step`
/// covers the steps since the line before it, evaluations and snapshots included (a resumed
/// run's file keeps only lines up to its checkpoint, so steps only grow).
fn wall_clock(stats: &[serde_json::Value]) -> Vec<(f64, f64)> {
    let (mut prev, mut total, mut out) = (0.0, 0.0, Vec::new());
    for l in stats {
        let (Some(step), Some(sps)) = (
            l.get("step").and_then(|v| v.as_f64()),
            l.get("sec_per_step").and_then(|v| v.as_f64()),
        ) else {
            continue;
        };
        total += sps * (step - prev).max(0.0);
        prev = step;
        out.push((step, total / 60.0));
    }
    out
}

/// `fid` points `(step, value)` against wall-clock minutes: each at the time of the first logged
/// step at or after it.
fn fid_against_time(fid: &[(f64, f64)], clock: &[(f64, f64)]) -> Vec<(f64, f64)> {
    fid.iter()
        .filter_map(|&(step, v)| {
            let t = clock.iter().find(|(s, _)| *s >= step)?.1;
            Some((t, v))
        })
        .collect()
}

/// The latest `genforge eval --sweep` of `evals` as charts of FID, IS and precision/recall
/// against the truncation threshold (BigGAN), psi (StyleGAN) or the latent variance (the other
/// GANs); empty without a sweep.
fn truncation_curve(evals: &[serde_json::Value]) -> Result<String> {
    let Some(id) = evals.iter().rev().find_map(|e| e.get("sweep")?.as_u64()) else {
        return Ok(String::new());
    };
    let sweep: Vec<&serde_json::Value> = evals
        .iter()
        .filter(|e| e.get("sweep").and_then(|s| s.as_u64()) == Some(id))
        .collect();
    let has = |key: &str| sweep.iter().any(|e| e.get(key).is_some());
    let (key, x_desc) = if has("truncation") {
        ("truncation", "truncation threshold")
    } else if has("z_var") {
        ("z_var", "latent variance z_var")
    } else {
        ("psi", "psi")
    };
    let points = |metric: &str| -> Vec<(f64, f64)> {
        let mut p: Vec<(f64, f64)> = sweep
            .iter()
            .filter_map(|e| Some((e.get(key)?.as_f64()?, e.get(metric)?.as_f64()?)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
        p
    };
    let mut html = format!(
        "<h2>Truncation trade-off</h2><p>genforge eval --sweep: {} values, {} samples each.</p>\
         <div class=\"charts\">",
        sweep.len(),
        sweep[0]["n_fake"]
    );
    for (title, metrics) in [
        ("FID", &["fid"][..]),
        ("IS", &["is"][..]),
        ("precision and recall", &["precision", "recall"][..]),
    ] {
        let lines: Vec<Series> = metrics
            .iter()
            .map(|m| (m.to_string(), points(m)))
            .filter(|(_, p)| !p.is_empty())
            .collect();
        if !lines.is_empty() {
            html.push_str(&chart(title, x_desc, &lines)?);
        }
    }
    html.push_str("</div>\n");
    Ok(html)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A line chart of `lines` over training steps as an SVG string.
pub fn line_chart(title: &str, lines: &[Series]) -> Result<String> {
    chart(title, "step", lines)
}

/// A line chart of `lines` with the x axis labelled `x_desc`, as an SVG string.
pub fn chart(title: &str, x_desc: &str, lines: &[Series]) -> Result<String> {
    let pts = lines.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return Ok(String::new());
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let mut svg = String::new();
    let err = |e: String| Error::Config(format!("plot '{title}': {e}"));
    {
        let root = SVGBackend::with_string(&mut svg, (560, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (i, (name, points)) in lines.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| err(e.to_string()))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
            // Sparse series (evaluations) get a marker per point.
            if points.len() <= 40 {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        if lines.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

fn data_uri(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mime = match path.extension().and_then(|e| e.to_str()) {
        Some("gif") => "image/gif",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        _ => "image/png",
    };
    Ok(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn images_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "gif", "jpg", "jpeg"].contains(&e))
        })
        .collect();
    out.sort();
    out
}

/// Evenly spaced picks of at most `k` items, the last always included.
fn spaced<T: Clone>(items: &[T], k: usize) -> Vec<T> {
    if items.len() <= k {
        return items.to_vec();
    }
    (0..k)
        .map(|i| items[(i * (items.len() - 1)) / (k - 1)].clone())
        .collect()
}

/// Another training's FID against wall-clock minutes, for the report's time chart: a JSON-lines
/// file of `{"minutes", "fid"}` records (`bench/fid_curve.py` writes one from a reference
/// training's samples), named by its `label` or else the file's name.
fn compare_curve(path: &Path) -> Result<Series> {
    if !path.is_file() {
        return Err(Error::data(
            path,
            "no such file (--compare takes a curve.jsonl)",
        ));
    }
    let lines = read_jsonl(path)?;
    let mut points: Vec<(f64, f64)> = lines
        .iter()
        .filter_map(|l| Some((l.get("minutes")?.as_f64()?, l.get("fid")?.as_f64()?)))
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .collect();
    if points.is_empty() {
        return Err(Error::data(
            path,
            "no JSON lines with numeric \"minutes\" and \"fid\" (bench/fid_curve.py writes them)",
        ));
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let label = lines
        .iter()
        .find_map(|l| l.get("label")?.as_str().map(str::to_string))
        .unwrap_or_else(|| {
            path.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
    Ok((label, points))
}

/// Write `run_dir/report.html` (or `out`) and return its path; `compare` adds other trainings'
/// FID-against-time curves (see [`compare_curve`]) to the run's.
pub fn write(run_dir: &Path, out: Option<&Path>, compare: &[PathBuf]) -> Result<PathBuf> {
    let cfg = run::open(run_dir)?;
    let config_text = std::fs::read_to_string(run_dir.join(run::CONFIG_FILE))
        .map_err(|e| Error::io(run_dir.join(run::CONFIG_FILE), e))?;
    let stats = read_jsonl(&run_dir.join("stats.jsonl"))?;
    let evals = read_jsonl(&run_dir.join(crate::metrics::eval::METRICS_FILE))?;
    let timing = series(&stats, &[]);
    let curves: BTreeMap<String, Vec<(f64, f64)>> = timing
        .iter()
        .filter(|(k, _)| !NOT_CURVES.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    let mut html = String::new();
    let title = format!("{} ({})", cfg.name, run_dir.display());
    let _ = write!(
        html,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>genforge report: {t}</title>\n\
         <style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}}\
         h2{{border-bottom:1px solid #ccc;margin-top:2em}}.charts{{display:flex;flex-wrap:wrap;gap:8px}}\
         figure{{display:inline-block;margin:6px;text-align:center}}figure img{{image-rendering:pixelated;max-width:540px}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head><body>\n\
         <h1>{t}</h1>\n<p>{family} run. {desc}</p>\n",
        t = escape(&title),
        family = cfg.model.family(),
        desc = escape(&cfg.description),
    );

    // Summary and timing.
    let last = stats.iter().rev().find(|l| l.get("images_seen").is_some());
    let step = last.and_then(|l| l["step"].as_u64()).unwrap_or(0);
    let seen = last.and_then(|l| l["images_seen"].as_u64()).unwrap_or(0);
    let mut seconds = 0.0;
    let mut prev = 0.0;
    if let Some(sps) = timing.get("sec_per_step") {
        for &(s, v) in sps {
            seconds += (s - prev) * v;
            prev = s;
        }
    }
    let checkpoints = checkpoint::list(run_dir)?;
    let _ = writeln!(
        html,
        "<h2>Summary</h2><table><tr><th>steps</th><th>images seen</th><th>training time</th>\
         <th>checkpoints</th><th>best FID (during training)</th></tr><tr><td>{step}</td><td>{seen}</td>\
         <td>{:.0} s</td><td>{}</td><td>{}</td></tr></table>",
        seconds,
        checkpoints
            .iter()
            .map(|(s, _)| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        checkpoint::best_fid(run_dir).map_or("-".into(), |f| format!("{f:.3}")),
    );

    // Curves: losses together, every other value on its own.
    html.push_str("<h2>Training curves</h2><div class=\"charts\">\n");
    let (losses, others): (Vec<_>, Vec<_>) = curves
        .clone()
        .into_iter()
        .filter(|(k, _)| !["fid", "kid", "precision", "recall"].contains(&k.as_str()))
        .partition(|(k, _)| k.ends_with("loss"));
    if !losses.is_empty() {
        html.push_str(&line_chart("losses", &losses)?);
    }
    for s in &others {
        html.push_str(&line_chart(&s.0, std::slice::from_ref(s))?);
    }
    if let Some(ips) = timing.get("img_per_s") {
        html.push_str(&line_chart(
            "images per second",
            &[("img/s".into(), ips.clone())],
        )?);
    }
    html.push_str("</div>\n");

    // Metrics: during training (stats.jsonl) and from `genforge eval` (metrics.jsonl); scores
    // of truncated samples form the trade-off curve, not the curves over training.
    let train_metrics = curves;
    let truncated = |e: &serde_json::Value| {
        ["truncation", "psi", "temperature"]
            .iter()
            .any(|k| e.get(k).is_some())
    };
    let plain: Vec<serde_json::Value> = evals.iter().filter(|e| !truncated(e)).cloned().collect();
    let eval_metrics = series(&plain, &["seed", "seconds", "n_real", "n_fake"]);
    let mut metric_charts = String::new();
    for key in ["fid", "kid", "is", "precision", "recall"] {
        let mut lines: Vec<Series> = Vec::new();
        if let Some(p) = train_metrics.get(key) {
            lines.push((format!("{key} (training)"), p.clone()));
        }
        if let Some(p) = eval_metrics.get(key) {
            lines.push((format!("{key} (genforge eval)"), p.clone()));
        }
        // A metric taken at one step only is read from the table below.
        lines.retain(|(_, p)| p.iter().any(|q| q.0 != p[0].0));
        if !lines.is_empty() {
            metric_charts.push_str(&line_chart(&key.to_uppercase(), &lines)?);
        }
    }
    let mut timed: Vec<Series> = Vec::new();
    if let Some(fid) = train_metrics.get("fid") {
        let points = fid_against_time(fid, &wall_clock(&stats));
        if points.len() > 1 {
            timed.push(("FID (training)".to_string(), points));
        }
    }
    for path in compare {
        timed.push(compare_curve(path)?);
    }
    if !timed.is_empty() {
        metric_charts.push_str(&chart("FID against wall-clock time", "minutes", &timed)?);
    }
    if !metric_charts.is_empty() {
        let _ = writeln!(
            html,
            "<h2>Metrics</h2><div class=\"charts\">{metric_charts}</div>"
        );
    }
    html.push_str(&truncation_curve(&evals)?);
    if !evals.is_empty() {
        html.push_str("<table><tr><th>step</th><th>checkpoint</th><th>features</th><th>n</th><th>truncation</th><th>FID</th><th>KID</th><th>IS</th><th>precision</th><th>recall</th></tr>\n");
        for e in &evals {
            let f = |k: &str| {
                e.get(k)
                    .and_then(|v| v.as_f64())
                    .map_or("-".into(), |v| format!("{v:.4}"))
            };
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e["step"],
                escape(e["checkpoint"].as_str().unwrap_or("-")),
                escape(e["features"].as_str().unwrap_or("-")),
                e["n_fake"],
                if let Some(t) = e.get("truncation").and_then(|v| v.as_f64()) {
                    format!("threshold {t}")
                } else if let Some(p) = e.get("psi").and_then(|v| v.as_f64()) {
                    format!("psi {p}")
                } else if let Some(t) = e.get("temperature").and_then(|v| v.as_f64()) {
                    format!("temperature {t}")
                } else {
                    "-".into()
                },
                f("fid"),
                f("kid"),
                f("is"),
                f("precision"),
                f("recall"),
            );
        }
        html.push_str("</table>\n");
    }

    // Sample-grid timeline.
    let samples = run_dir.join("samples");
    let grids: Vec<PathBuf> = images_in(&samples)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
        })
        .collect();
    if !grids.is_empty() {
        html.push_str("<h2>Samples over training</h2>\n");
        for g in spaced(&grids, MAX_GRIDS) {
            let name = g
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let _ = writeln!(
                html,
                "<figure><img src=\"{}\" alt=\"{name}\"><figcaption>{name}</figcaption></figure>",
                data_uri(&g)?
            );
        }
    }
    let reals = samples.join("reals.png");
    if reals.is_file() {
        let _ = writeln!(
            html,
            "<h2>Training images</h2><figure><img src=\"{}\" alt=\"reals\"></figure>",
            data_uri(&reals)?
        );
    }
    let figures: Vec<PathBuf> = images_in(run_dir)
        .into_iter()
        .chain(images_in(&run_dir.join("figures")))
        .collect();
    if !figures.is_empty() {
        html.push_str("<h2>Figures</h2>\n");
        for f in figures {
            let name = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let _ = writeln!(
                html,
                "<figure><img src=\"{}\" alt=\"{n}\"><figcaption>{n}</figcaption></figure>",
                data_uri(&f)?,
                n = escape(&name)
            );
        }
    }
    let _ = write!(
        html,
        "<h2>Config</h2><pre>{}</pre>\n</body></html>\n",
        escape(&config_text)
    );
    let path = out.map_or_else(|| run_dir.join("report.html"), Path::to_path_buf);
    run::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fid_is_placed_at_the_wall_clock_time_of_its_step() {
        let lines: Vec<serde_json::Value> = [
            r#"{"step": 10, "sec_per_step": 0.5, "d_loss": 1.0}"#,
            r#"{"step": 20, "sec_per_step": 1.0}"#,
            r#"{"step": 20, "fid": 40.0}"#,
            r#"{"step": 30, "sec_per_step": 3.0}"#,
            r#"{"step": 25, "fid": 30.0}"#,
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let clock = wall_clock(&lines);
        assert_eq!(clock, vec![(10.0, 5.0 / 60.0), (20.0, 0.25), (30.0, 0.75)]);
        let fid = series(&lines, &[])["fid"].clone();
        assert_eq!(
            fid_against_time(&fid, &clock),
            vec![(0.25, 40.0), (0.75, 30.0)]
        );
    }

    #[test]
    fn a_compared_curve_is_read_sorted_by_time_with_its_label() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curve.jsonl");
        std::fs::write(
            &path,
            "{\"label\": \"PyTorch\", \"minutes\": 5.0, \"fid\": 20.0}\n\
             {\"minutes\": 2.5, \"fid\": 40.0, \"step\": 100}\n\
             {\"minutes\": 7.5}\n",
        )
        .unwrap();
        let (label, points) = compare_curve(&path).unwrap();
        assert_eq!(label, "PyTorch");
        assert_eq!(points, vec![(2.5, 40.0), (5.0, 20.0)]);

        std::fs::write(&path, "{\"step\": 1, \"fid\": 3.0}\n").unwrap();
        let err = compare_curve(&path).unwrap_err().to_string();
        assert!(
            err.contains("curve.jsonl") && err.contains("minutes"),
            "{err}"
        );
        let err = compare_curve(&dir.path().join("none.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("none.jsonl: no such file"), "{err}");
    }

    #[test]
    fn series_reads_numeric_keys_over_steps() {
        let lines: Vec<serde_json::Value> = [
            r#"{"step": 5, "d_loss": 1.0, "g_loss": 2.0, "img_per_s": 9.0}"#,
            r#"{"step": 10, "d_loss": 0.5, "g_loss": null, "note": "x"}"#,
            r#"{"step": 10, "fid": 30.0}"#,
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let s = series(&lines, &NOT_CURVES);
        assert_eq!(s["d_loss"], vec![(5.0, 1.0), (10.0, 0.5)]);
        assert_eq!(s["g_loss"], vec![(5.0, 2.0)]);
        assert_eq!(s["fid"], vec![(10.0, 30.0)]);
        assert!(!s.contains_key("img_per_s") && !s.contains_key("note"));
    }

    #[test]
    fn the_truncation_curve_is_the_latest_sweep_over_its_thresholds() {
        let rec = |sweep: u64, t: f64, fid: f64| serde_json::json!({"step": 100, "sweep": sweep, "truncation": t, "fid": fid, "is": 2.0, "n_fake": 40});
        let evals = vec![
            rec(1, 1.0, 50.0),
            rec(2, 1.0, 10.0),
            rec(2, 0.5, 12.0),
            serde_json::json!({"step": 100, "fid": 9.0}),
        ];
        let html = truncation_curve(&evals).unwrap();
        assert!(html.contains("2 values, 40 samples each"), "{html}");
        assert!(html.contains("truncation threshold"));
        assert!(!html.contains(">50<"));
        assert!(truncation_curve(&evals[3..]).unwrap().is_empty());
    }

    #[test]
    fn spaced_keeps_first_and_last() {
        let v: Vec<usize> = (0..30).collect();
        let s = spaced(&v, 4);
        assert_eq!(s.first(), Some(&0));
        assert_eq!(s.last(), Some(&29));
        assert_eq!(s.len(), 4);
        assert_eq!(spaced(&v[..3], 4), vec![0, 1, 2]);
    }

    #[test]
    fn charts_are_svg_with_the_series_names() {
        let svg = line_chart(
            "losses",
            &[
                ("d_loss".into(), vec![(0.0, 1.0), (1.0, 0.5)]),
                ("g_loss".into(), vec![(0.0, 2.0), (1.0, 1.5)]),
            ],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("d_loss") && svg.contains("g_loss") && svg.contains("polyline"));
    }
}
