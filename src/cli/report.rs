//! `vidx series report`: one series as a single self-contained HTML file
//! that people would rather look at than read. Inline CSS and SVG only: no
//! script, no font, no image and no network reference, so it opens the same
//! on an air-gapped workstation. vidx has no images: media are drawn as ids
//! with their metadata.
//!
//! Sections: the countries and agencies involved; a timeline of capture and
//! upload dates per country; the evidence graph (media as nodes, edges by
//! kind, investigators' decisions drawn apart from measured evidence,
//! rejected pairs in red); the decision history; the "same person" leads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

use crate::cli::link::date;
use crate::pb;

/// Country colours, assigned in sorted country order (Tableau 10, which
/// stays apart for the common colour-vision deficiencies).
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
const GRAPH_W: f64 = 1040.0;
const GRAPH_H: f64 = 620.0;
/// Members beyond which node labels are left to tooltips.
const LABELLED_NODES: usize = 80;

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A node's text: short ids whole, long ones (SHA-1s) cut to 8 characters.
fn short(id: &str) -> String {
    if id.chars().count() <= 12 {
        id.to_string()
    } else {
        format!("{}…", id.chars().take(8).collect::<String>())
    }
}

fn kind_name(k: i32) -> &'static str {
    match pb::EvidenceKind::try_from(k) {
        Ok(pb::EvidenceKind::EvidenceNearDuplicate) => "near-duplicate",
        Ok(pb::EvidenceKind::EvidenceImage) => "image",
        Ok(pb::EvidenceKind::EvidenceImageAndFace) => "image+face",
        Ok(pb::EvidenceKind::EvidenceDecision) => "decision",
        _ => "face",
    }
}

/// Stroke style per edge kind: (colour, width, dash).
fn edge_style(kind: &str) -> (&'static str, f64, &'static str) {
    match kind {
        "near-duplicate" => ("#1f2933", 3.2, ""),
        "image" => ("#9aa5b1", 1.6, ""),
        "image+face" => ("#2f6fdf", 2.4, ""),
        "face" => ("#8e44ad", 2.0, "2 3"),
        "decision" => ("#1b9e4b", 3.0, "9 4"),
        _ => ("#d64545", 2.0, "5 4"),
    }
}

/// Everything the report draws, gathered from a `GetSeries` answer.
struct Model<'a> {
    resp: &'a pb::GetSeriesResponse,
    series: &'a pb::Series,
    meta: HashMap<&'a str, &'a pb::Metadata>,
    faces: HashMap<&'a str, u32>,
    colour: BTreeMap<String, &'static str>,
}

impl<'a> Model<'a> {
    fn new(resp: &'a pb::GetSeriesResponse, series: &'a pb::Series) -> Model<'a> {
        let mut meta = HashMap::new();
        let mut faces = HashMap::new();
        for m in &resp.media {
            if let Some(x) = &m.metadata {
                meta.insert(m.media_id.as_str(), x);
            }
            faces.insert(m.media_id.as_str(), m.faces);
        }
        let countries: BTreeSet<String> = meta.values().map(|m| country(m)).collect();
        let colour = countries
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c, PALETTE[i % PALETTE.len()]))
            .collect();
        Model {
            resp,
            series,
            meta,
            faces,
            colour,
        }
    }

    /// The members' metadata in member order (deterministic drawing).
    fn metas(&self) -> impl Iterator<Item = &'a pb::Metadata> + '_ {
        self.resp.media.iter().filter_map(|x| x.metadata.as_ref())
    }

    fn colour_of(&self, media: &str) -> &'static str {
        self.meta
            .get(media)
            .and_then(|m| self.colour.get(&country(m)).copied())
            .unwrap_or("#ffffff")
    }
}

fn country(m: &pb::Metadata) -> String {
    if m.country.is_empty() {
        "??".into()
    } else {
        m.country.clone()
    }
}

const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;background:#f4f6f8;color:#1f2933;font:14px/1.45 -apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif}
header{background:#1f2933;color:#f5f7fa;padding:22px 36px}
header h1{margin:0;font-size:22px;font-weight:600;letter-spacing:.2px}
header .sub{color:#cbd2d9;margin-top:4px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-size:12px;font-weight:600;margin-left:8px;vertical-align:middle}
.b-label{background:#f0b429;color:#1f2933}.b-id{background:#3ebd93;color:#fff}.b-open{background:#e12d39;color:#fff}.b-cross{background:#4098d7;color:#fff}
main{padding:20px 36px 40px;max-width:1180px}
.stats{display:flex;gap:14px;flex-wrap:wrap;margin:0 0 18px}
.stat{background:#fff;border-radius:8px;padding:10px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08);min-width:128px}
.stat b{display:block;font-size:20px}.stat span{color:#616e7c;font-size:12px}
section{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:16px 20px;margin:0 0 18px}
section h2{font-size:16px;margin:0 0 10px;color:#323f4b}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px}
.card{border:1px solid #e4e7eb;border-radius:8px;padding:10px 12px;border-left-width:6px}
.card h3{margin:0 0 4px;font-size:15px}.card .n{color:#616e7c;font-size:12px}
.card ul{margin:6px 0 0;padding-left:18px;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;color:#616e7c;font-weight:600;border-bottom:2px solid #e4e7eb;padding:6px 8px}
td{border-bottom:1px solid #eef0f2;padding:6px 8px;vertical-align:top}
td.k,td.w{font-weight:600;white-space:nowrap}td.w{font-weight:400}
.legend{display:flex;gap:18px;flex-wrap:wrap;font-size:12px;color:#52606d;margin:4px 0 8px}
.legend svg{vertical-align:middle;margin-right:5px}
.muted{color:#7b8794}
footer{color:#7b8794;font-size:12px;padding:0 36px 30px}
svg text{font-family:-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif}
";

/// The whole report. `generated` is shown in the footer (e.g. a date).
pub fn render(resp: &pb::GetSeriesResponse, collection: &str, generated: &str) -> String {
    let default = pb::Series::default();
    let s = resp.series.as_ref().unwrap_or(&default);
    let m = Model::new(resp, s);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Series {id} — vidx report</title><style>{STYLE}</style></head><body>",
        id = esc(&s.series_id)
    );
    header(&mut h, &m, collection);
    h.push_str("<main>");
    stats(&mut h, &m);
    countries(&mut h, &m);
    timeline(&mut h, &m);
    graph(&mut h, &m);
    decisions(&mut h, &m);
    same_person(&mut h, &m);
    h.push_str("</main>");
    let _ = writeln!(
        h,
        "<footer>Generated by vidx from collection {} on {}. vidx stores embeddings and metadata only, \
         never images: every media here is an id with its metadata.</footer></body></html>",
        esc(collection),
        esc(generated)
    );
    h
}

fn header(h: &mut String, m: &Model, collection: &str) {
    let s = m.series;
    let mut badges = String::new();
    if !s.label.is_empty() {
        let _ = write!(
            badges,
            "<span class=\"badge b-label\">{}</span>",
            esc(&s.label)
        );
    }
    if s.victim_identified {
        badges.push_str("<span class=\"badge b-id\">victim identified</span>");
    } else {
        badges.push_str("<span class=\"badge b-open\">victim not identified</span>");
    }
    if s.cross_border {
        badges.push_str("<span class=\"badge b-cross\">cross-border</span>");
    }
    let _ = write!(
        h,
        "<header><h1>Series {}{badges}</h1><div class=\"sub\">collection {} · captured {} to {} · uploaded {} to {}</div></header>",
        esc(&s.series_id),
        esc(collection),
        date(s.captured_from),
        date(s.captured_until),
        date(s.uploaded_from),
        date(s.uploaded_until)
    );
}

fn stats(h: &mut String, m: &Model) {
    let s = m.series;
    let refs = if s.identified_references.is_empty() {
        "—".to_string()
    } else {
        s.identified_references.join(", ")
    };
    h.push_str("<div class=\"stats\">");
    for (v, label) in [
        (s.media_ids.len().to_string(), "media"),
        (s.countries.len().to_string(), "countries"),
        (s.agencies.len().to_string(), "agencies"),
        (s.upload_ids.len().to_string(), "uploads"),
        (s.media_with_faces.to_string(), "media with faces"),
        (m.resp.decisions.len().to_string(), "decisions"),
        (refs, "identification"),
    ] {
        let _ = write!(
            h,
            "<div class=\"stat\"><b>{}</b><span>{label}</span></div>",
            esc(&v)
        );
    }
    h.push_str("</div>");
}

fn countries(h: &mut String, m: &Model) {
    let mut by: BTreeMap<String, Vec<&pb::Metadata>> = BTreeMap::new();
    for x in m.metas() {
        by.entry(country(x)).or_default().push(x);
    }
    h.push_str("<section><h2>Countries and agencies</h2><div class=\"cards\">");
    for (cc, list) in &by {
        let agencies: BTreeMap<&str, usize> = list.iter().fold(BTreeMap::new(), |mut a, x| {
            *a.entry(x.agency.as_str()).or_default() += 1;
            a
        });
        let uploads: BTreeSet<&str> = list.iter().map(|x| x.upload_id.as_str()).collect();
        let cases: BTreeSet<&str> = list.iter().map(|x| x.case_id.as_str()).collect();
        let _ = write!(
            h,
            "<div class=\"card\" style=\"border-left-color:{}\"><h3>{}</h3><div class=\"n\">{} media · {} uploads · {} cases</div><ul>",
            m.colour.get(cc).copied().unwrap_or("#ccc"),
            esc(cc),
            list.len(),
            uploads.len(),
            cases.len()
        );
        for (a, n) in agencies {
            let name = if a.is_empty() {
                "(agency not given)"
            } else {
                a
            };
            let _ = write!(
                h,
                "<li>{} <span class=\"muted\">({n} media)</span></li>",
                esc(name)
            );
        }
        h.push_str("</ul></div>");
    }
    h.push_str("</div></section>");
}

/// Unix seconds → fractional year, for the timeline's axis.
fn year(t: i64) -> f64 {
    1970.0 + t as f64 / (365.2425 * 86_400.0)
}

fn timeline(h: &mut String, m: &Model) {
    let mut rows: BTreeMap<String, Vec<&pb::Metadata>> = BTreeMap::new();
    for x in m.metas() {
        rows.entry(country(x)).or_default().push(x);
    }
    let times: Vec<i64> = m
        .metas()
        .flat_map(|x| [x.captured_at, x.uploaded_at])
        .filter(|&t| t != 0)
        .collect();
    h.push_str("<section><h2>Timeline of capture and upload, per country</h2>");
    let (Some(&lo), Some(&hi)) = (times.iter().min(), times.iter().max()) else {
        h.push_str("<p class=\"muted\">No dates are known for these media.</p></section>");
        return;
    };
    let (y0, y1) = (
        year(lo).floor(),
        (year(hi) + 0.0001).ceil().max(year(lo).floor() + 1.0),
    );
    let (left, right, row_h, top) = (70.0, 1080.0, 34.0, 16.0);
    let height = top + rows.len() as f64 * row_h + 34.0;
    let x = |t: i64| left + (year(t) - y0) / (y1 - y0) * (right - left);
    let _ = write!(
        h,
        "<div class=\"legend\"><span><svg width=\"14\" height=\"14\"><circle cx=\"7\" cy=\"7\" r=\"5\" fill=\"#52606d\"/></svg>captured</span>\
         <span><svg width=\"14\" height=\"14\"><path d=\"M7 1 L13 7 L7 13 L1 7 Z\" fill=\"none\" stroke=\"#52606d\" stroke-width=\"2\"/></svg>uploaded</span>\
         <span><svg width=\"26\" height=\"14\"><line x1=\"1\" y1=\"7\" x2=\"25\" y2=\"7\" stroke=\"#9aa5b1\" stroke-width=\"1.2\"/></svg>one media, capture to upload</span></div>\
         <svg viewBox=\"0 0 1100 {height}\" width=\"100%\" role=\"img\" aria-label=\"Timeline\">"
    );
    let years = (y1 - y0) as i64;
    let step = ((years as f64) / 12.0).ceil().max(1.0) as i64;
    for k in (0..=years).step_by(step as usize) {
        let xx = left + k as f64 / (y1 - y0) * (right - left);
        let _ = write!(
            h,
            "<line x1=\"{xx:.1}\" y1=\"{top}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#e4e7eb\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#616e7c\">{}</text>",
            height - 26.0,
            height - 10.0,
            y0 as i64 + k
        );
    }
    for (i, (cc, list)) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h + row_h / 2.0;
        let col = m.colour.get(cc).copied().unwrap_or("#999");
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" font-weight=\"600\" text-anchor=\"end\" fill=\"{col}\">{}</text>",
            left - 12.0,
            y + 4.0,
            esc(cc)
        );
        for (j, x_) in list.iter().enumerate() {
            // Spread a row's media over its height so they do not all overlap.
            let jitter = ((j % 5) as f64 - 2.0) * 3.0;
            let yy = y + jitter;
            if x_.captured_at != 0 && x_.uploaded_at != 0 {
                let _ = write!(
                    h,
                    "<line x1=\"{:.1}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"{col}\" stroke-opacity=\".35\" stroke-width=\"1.2\"/>",
                    x(x_.captured_at),
                    x(x_.uploaded_at)
                );
            }
            if x_.captured_at != 0 {
                let _ = write!(
                    h,
                    "<circle cx=\"{:.1}\" cy=\"{yy:.1}\" r=\"4.5\" fill=\"{col}\" fill-opacity=\".85\"><title>{} captured {}</title></circle>",
                    x(x_.captured_at),
                    esc(&x_.media_id),
                    date(x_.captured_at)
                );
            }
            if x_.uploaded_at != 0 {
                let ux = x(x_.uploaded_at);
                let _ = write!(
                    h,
                    "<path d=\"M{ux:.1} {:.1} L{:.1} {yy:.1} L{ux:.1} {:.1} L{:.1} {yy:.1} Z\" fill=\"#fff\" stroke=\"{col}\" stroke-width=\"2\"><title>{} uploaded {} ({})</title></path>",
                    yy - 5.5,
                    ux + 5.5,
                    yy + 5.5,
                    ux - 5.5,
                    esc(&x_.media_id),
                    date(x_.uploaded_at),
                    esc(&x_.upload_id)
                );
            }
        }
    }
    h.push_str("</svg></section>");
}

/// Positions for nodes joined by `edges` in a `GRAPH_W` × `GRAPH_H` box:
/// Fruchterman–Reingold from a circle, deterministic.
fn layout(n: usize, edges: &[(usize, usize)]) -> Vec<(f64, f64)> {
    if n == 0 {
        return Vec::new();
    }
    let mut p: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = i as f64 / n as f64 * std::f64::consts::TAU;
            (a.cos() * 200.0, a.sin() * 130.0)
        })
        .collect();
    let k = ((GRAPH_W * GRAPH_H) / n as f64).sqrt() * 0.75;
    let iterations = if n > 600 { 80 } else { 300 };
    let mut temp = 120.0;
    for _ in 0..iterations {
        let mut d = vec![(0.0f64, 0.0f64); n];
        for i in 0..n {
            for j in i + 1..n {
                let (dx, dy) = (p[i].0 - p[j].0, p[i].1 - p[j].1);
                let dist = (dx * dx + dy * dy).sqrt().max(0.01);
                let f = k * k / dist;
                d[i].0 += dx / dist * f;
                d[i].1 += dy / dist * f;
                d[j].0 -= dx / dist * f;
                d[j].1 -= dy / dist * f;
            }
        }
        for &(a, b) in edges {
            let (dx, dy) = (p[a].0 - p[b].0, p[a].1 - p[b].1);
            let dist = (dx * dx + dy * dy).sqrt().max(0.01);
            let f = dist * dist / k;
            d[a].0 -= dx / dist * f;
            d[a].1 -= dy / dist * f;
            d[b].0 += dx / dist * f;
            d[b].1 += dy / dist * f;
        }
        for i in 0..n {
            // A weak pull to the centre keeps loose parts in the picture.
            d[i].0 -= p[i].0 * 0.02;
            d[i].1 -= p[i].1 * 0.03;
            let len = (d[i].0 * d[i].0 + d[i].1 * d[i].1).sqrt().max(0.01);
            p[i].0 += d[i].0 / len * len.min(temp);
            p[i].1 += d[i].1 / len * len.min(temp);
        }
        temp = (temp * 0.985).max(1.0);
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in &p {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    // Labels go right of their node: more room on that side.
    let (left, right, my) = (40.0, 110.0, 40.0);
    let sx = (GRAPH_W - left - right) / (x1 - x0).max(1.0);
    let sy = (GRAPH_H - 2.0 * my) / (y1 - y0).max(1.0);
    p.into_iter()
        .map(|(x, y)| (left + (x - x0) * sx, my + (y - y0) * sy))
        .collect()
}

fn legend_line(kind: &str, label: &str) -> String {
    let (c, w, dash) = edge_style(kind);
    format!(
        "<span><svg width=\"34\" height=\"12\"><line x1=\"2\" y1=\"6\" x2=\"32\" y2=\"6\" stroke=\"{c}\" stroke-width=\"{w}\" stroke-dasharray=\"{dash}\"/></svg>{label}</span>"
    )
}

/// One edge of the drawing: (node, node, kind, tooltip).
type Edge = (usize, usize, &'static str, String);

/// The graph's nodes (members, then media outside the series that a
/// rejection keeps apart from it) and edges (evidence, then rejections).
fn graph_parts(m: &Model) -> (Vec<String>, Vec<Edge>) {
    let s = m.series;
    let mut nodes: Vec<String> = s.media_ids.clone();
    for r in &m.resp.rejected {
        if !nodes.contains(&r.media_b) {
            nodes.push(r.media_b.clone());
        }
    }
    let at: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, x)| (x.as_str(), i))
        .collect();
    let mut edges: Vec<Edge> = Vec::new();
    for e in &s.evidence {
        if let (Some(&a), Some(&b)) = (at.get(e.media_a.as_str()), at.get(e.media_b.as_str())) {
            let kind = kind_name(e.kind);
            let title = if kind == "decision" {
                format!("decision #{}", e.decision_id)
            } else {
                let face = e
                    .face_distance
                    .map(|f| format!(", face {f:.3}"))
                    .unwrap_or_default();
                format!(
                    "{kind}: image distance {:.3}{face}, {} shared neighbours",
                    e.distance, e.shared_neighbours
                )
            };
            edges.push((a, b, kind, title));
        }
    }
    for r in &m.resp.rejected {
        if let (Some(&a), Some(&b)) = (at.get(r.media_a.as_str()), at.get(r.media_b.as_str())) {
            let title = format!("rejected by decision #{}", r.decision_id);
            edges.push((a, b, "rejected", title));
        }
    }
    (nodes, edges)
}

/// The section's heading, its counts and the legend.
fn graph_legend(h: &mut String, m: &Model, edges: &[Edge]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in edges {
        *counts.entry(e.2).or_default() += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let _ = write!(
        h,
        "<section><h2>Evidence graph</h2><p class=\"muted\">Media as nodes (coloured by country; a ring marks media with faces), \
         the edges that linked them: {}. Hover a node or edge for its details.</p><div class=\"legend\">",
        esc(&summary.join(", "))
    );
    for (k, label) in [
        ("near-duplicate", "near-duplicate"),
        ("image", "image"),
        ("image+face", "image+face"),
        ("face", "face"),
        ("decision", "decision (investigator)"),
        ("rejected", "rejected (investigator)"),
    ] {
        h.push_str(&legend_line(k, label));
    }
    for (cc, col) in &m.colour {
        let _ = write!(
            h,
            "<span><svg width=\"14\" height=\"14\"><circle cx=\"7\" cy=\"7\" r=\"6\" fill=\"{col}\"/></svg>{}</span>",
            esc(cc)
        );
    }
    h.push_str("</div>");
}

fn draw_edges(h: &mut String, edges: &[Edge], pos: &[(f64, f64)]) {
    for (a, b, kind, title) in edges {
        let ((x1, y1), (x2, y2)) = (pos[*a], pos[*b]);
        let (c, w, dash) = edge_style(kind);
        let _ = write!(
            h,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{c}\" stroke-width=\"{w}\" stroke-dasharray=\"{dash}\" stroke-linecap=\"round\"><title>{}</title></line>",
            esc(title)
        );
        if *kind == "rejected" {
            // A cross on the middle of a rejected pair's line.
            let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
            let _ = write!(
                h,
                "<path d=\"M{:.1} {:.1} L{:.1} {:.1} M{:.1} {:.1} L{:.1} {:.1}\" stroke=\"#d64545\" stroke-width=\"3\"/>",
                mx - 6.0,
                my - 6.0,
                mx + 6.0,
                my + 6.0,
                mx - 6.0,
                my + 6.0,
                mx + 6.0,
                my - 6.0
            );
        }
    }
}

fn draw_nodes(h: &mut String, m: &Model, nodes: &[String], pos: &[(f64, f64)]) {
    let members = m.series.media_ids.len();
    let label_all = nodes.len() <= LABELLED_NODES;
    for (i, id) in nodes.iter().enumerate() {
        let (x, y) = pos[i];
        let member = i < members;
        let info = m
            .meta
            .get(id.as_str())
            .map(|x| {
                format!(
                    "{} · {} · {} · captured {} · uploaded {}",
                    x.country,
                    x.agency,
                    x.upload_id,
                    date(x.captured_at),
                    date(x.uploaded_at)
                )
            })
            .unwrap_or_else(|| "outside this series".into());
        let (fill, ring) = if !member {
            (
                "#ffffff",
                "stroke=\"#d64545\" stroke-width=\"2\" stroke-dasharray=\"3 2\"",
            )
        } else if m.faces.get(id.as_str()).copied().unwrap_or(0) > 0 {
            (m.colour_of(id), "stroke=\"#1f2933\" stroke-width=\"2.2\"")
        } else {
            (m.colour_of(id), "stroke=\"#ffffff\" stroke-width=\"1.5\"")
        };
        let _ = write!(
            h,
            "<g><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"9\" fill=\"{fill}\" {ring}/><title>{}\n{}</title>",
            esc(id),
            esc(&info)
        );
        if label_all || !member {
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#323f4b\" paint-order=\"stroke\" stroke=\"#fbfcfd\" stroke-width=\"3\">{}</text>",
                x + 12.0,
                y + 4.0,
                esc(&short(id))
            );
        }
        h.push_str("</g>");
    }
}

fn graph(h: &mut String, m: &Model) {
    let (nodes, edges) = graph_parts(m);
    let pairs: Vec<(usize, usize)> = edges.iter().map(|e| (e.0, e.1)).collect();
    let pos = layout(nodes.len(), &pairs);
    graph_legend(h, m, &edges);
    let _ = write!(
        h,
        "<svg viewBox=\"0 0 {GRAPH_W} {GRAPH_H}\" width=\"100%\" role=\"img\" aria-label=\"Evidence graph\" style=\"background:#fbfcfd;border-radius:8px\">"
    );
    draw_edges(h, &edges, &pos);
    draw_nodes(h, m, &nodes, &pos);
    h.push_str("</svg></section>");
}

fn decision_text(d: &pb::Decision) -> String {
    match pb::DecisionKind::try_from(d.kind).unwrap_or(pb::DecisionKind::Unspecified) {
        pb::DecisionKind::ConfirmLink => format!("{} and {} belong together", d.media_a, d.media_b),
        pb::DecisionKind::RejectLink => {
            format!("{} and {} are never in one series", d.media_a, d.media_b)
        }
        pb::DecisionKind::Merge => format!("merged {}", d.series_ids.join(", ")),
        pb::DecisionKind::Split => format!(
            "{} media left {}: {}",
            d.media_ids.len(),
            d.series_id,
            d.media_ids.join(", ")
        ),
        pb::DecisionKind::Label => format!("{} labelled {}", d.series_id, d.label),
        pb::DecisionKind::MarkIdentified => {
            format!("victim of {} identified ({})", d.series_id, d.reference)
        }
        pb::DecisionKind::Unspecified => String::new(),
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC.
fn when(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    format!("{} {:02}:{:02}", date(t), secs / 3600, secs % 3600 / 60)
}

fn decisions(h: &mut String, m: &Model) {
    h.push_str("<section><h2>Decision history</h2>");
    if m.resp.decisions.is_empty() {
        h.push_str("<p class=\"muted\">No investigator has decided on this series yet: it is as linking proposed it.</p></section>");
        return;
    }
    h.push_str("<table><tr><th>#</th><th>when (UTC)</th><th>reviewer</th><th>decision</th><th>what</th><th>why</th></tr>");
    for r in &m.resp.decisions {
        let d = r.decision.clone().unwrap_or_default();
        let kind = pb::DecisionKind::try_from(d.kind).map_or("?", |k| k.as_str_name());
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"w\">{}</td><td class=\"w\">{}</td><td class=\"k\">{kind}</td><td>{}</td><td>{}</td></tr>",
            r.decision_id,
            when(r.decided_at),
            esc(&r.reviewer),
            esc(&decision_text(&d)),
            esc(&r.note)
        );
    }
    h.push_str("</table></section>");
}

fn same_person(h: &mut String, m: &Model) {
    h.push_str("<section><h2>Same person in other series</h2>");
    if m.resp.same_person.is_empty() {
        h.push_str("<p class=\"muted\">No \"same person\" leads: no face of this series matches a face in another series.</p></section>");
        return;
    }
    h.push_str("<table><tr><th>other series</th><th>face matches</th><th>closest pair</th><th>face distance</th></tr>");
    for l in &m.resp.same_person {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} ↔ {}</td><td>{:.3}</td></tr>",
            esc(&l.other_series_id),
            l.matches,
            esc(&l.media_id),
            esc(&l.other_media_id),
            l.face_distance
        );
    }
    h.push_str("</table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_layout_stays_in_the_box() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(short("a1"), "a1");
        assert_eq!(
            short("83baad6d0428a02e5a979e1ffff2f2d8c2269935"),
            "83baad6d…"
        );
        let p = layout(30, &(1..30).map(|i| (i - 1, i)).collect::<Vec<_>>());
        assert!(
            p.iter()
                .all(|&(x, y)| (0.0..=GRAPH_W).contains(&x) && (0.0..=GRAPH_H).contains(&y))
        );
        assert_eq!(
            p,
            layout(30, &(1..30).map(|i| (i - 1, i)).collect::<Vec<_>>()),
            "deterministic"
        );
    }
}
