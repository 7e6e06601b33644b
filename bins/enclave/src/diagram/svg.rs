//! The diagram as SVG, laid out by enclave (no Graphviz): a title, then one band per account,
//! stacked, each with its VPC (one column per AZ: the public subnet with its NAT gateway, then
//! the private tiers, the bastion under its subnet), a column of what the account runs beside
//! the VPC (endpoints, internet gateway, flow logs, session logs, trail) and a column of its
//! clusters (node groups, apps) and registry; a legend at the bottom. Text is set in Hack, a
//! monospaced font (embedded for the PNG), so widths are known without measuring.
//!
//! The width is fixed (wider only for VPCs of four AZs or more, so every column keeps its room)
//! and the height grows with the accounts, so a platform of three accounts is about as tall as
//! it is wide and one with more accounts gets taller, not wider.

use std::fmt::Write;

use enclave_net::model::{AccountNetwork, SubnetRole};

use super::{Inputs, access_of, nat_of, node_group_label, zone_letter};

/// The picture's width in points, unless an account's VPC needs more (four AZs or more).
const WIDTH: f64 = 1560.0;
/// The narrowest the clusters column gets.
const WORKLOADS_WIDTH: f64 = 358.0;
const MARGIN: f64 = 20.0;
const GAP: f64 = 10.0;
const ZONE_WIDTH: f64 = 250.0;
const SERVICES_WIDTH: f64 = 320.0;
const LINE: f64 = 16.0;
const FONT: f64 = 12.0;
/// Hack's advance width is 0.602 em for every glyph.
const ADVANCE: f64 = 0.602;
/// The font family the SVG names and the PNG renderer has embedded.
const FAMILY: &str = "Hack";

/// Fill colours of the kinds of boxes, with what each means (the legend).
const PUBLIC: (&str, &str) = ("#fde7c8", "public subnet: NAT gateways only");
const PRIVATE: (&str, &str) = ("#dbeafe", "private subnet: workloads");
const NAT: (&str, &str) = ("#f59e0b", "NAT gateway");
const ENDPOINTS: (&str, &str) = ("#e0e7ff", "VPC endpoints, internet gateway");
const BASTION: (&str, &str) = ("#fee2e2", "bastion: Session Manager only");
const LOGS: (&str, &str) = ("#ecfccb", "logs and trail (KMS)");
const CLUSTER: (&str, &str) = ("#d1fae5", "EKS cluster, node groups");
const APP: (&str, &str) = ("#fef9c3", "app");
const REGISTRY: (&str, &str) = ("#f3e8ff", "container registry");

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Characters of `size` that fit in `width`.
fn fits(width: f64, size: f64) -> usize {
    // Truncation is the point: a partial glyph does not fit.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let count = (width / (size * ADVANCE)).floor().max(1.0) as usize;
    count
}

/// `text` broken into lines of at most `width` characters, at spaces (a longer word is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let needed =
            if current.is_empty() { word.chars().count() } else { current.chars().count() + 1 + word.chars().count() };
        if needed > width && !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
        while current.chars().count() > width {
            let head: String = current.chars().take(width).collect();
            let tail: String = current.chars().skip(width).collect();
            lines.push(head);
            current = tail;
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// The SVG being written.
struct Canvas {
    body: String,
}

impl Canvas {
    fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, fill: &str, dashed: bool) {
        let dash = if dashed { " stroke-dasharray=\"5 3\"" } else { "" };
        let _ = writeln!(
            self.body,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{height:.1}" rx="5" fill="{fill}" stroke="#475569"{dash}/>"##
        );
    }

    fn text(&mut self, x: f64, y: f64, size: f64, bold: bool, text: &str) {
        let weight = if bold { r#" font-weight="bold""# } else { "" };
        let _ = writeln!(
            self.body,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="{size}"{weight} fill="#0f172a">{}</text>"##,
            escape(text)
        );
    }

    /// A box of `lines` (the first bold) at `x`, `y`, `width` wide; returns its height.
    fn card(&mut self, x: f64, y: f64, width: f64, fill: &str, lines: &[String]) -> f64 {
        let wrapped: Vec<(bool, String)> = lines
            .iter()
            .enumerate()
            .flat_map(|(index, line)| {
                wrap(line, fits(width - 2.0 * GAP, FONT)).into_iter().map(move |part| (index == 0, part))
            })
            .collect();
        #[allow(clippy::cast_precision_loss)] // a handful of lines
        let height = wrapped.len() as f64 * LINE + GAP;
        self.rect(x, y, width, height, fill, false);
        for (index, (bold, line)) in wrapped.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let baseline = y + 4.0 + LINE * (index as f64 + 1.0) - 3.0;
            self.text(x + GAP, baseline, FONT, *bold, line);
        }
        height
    }
}

/// The height of the VPC drawn at `x`, `y`.
fn vpc(canvas: &mut Canvas, inputs: &Inputs<'_>, network: &AccountNetwork, x: f64, y: f64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let zones = network.zones.len().max(1) as f64;
    let width = zones * ZONE_WIDTH + (zones + 1.0) * GAP;
    let bastion = access_of(inputs.access, &network.account).and_then(|access| access.bastion.as_ref());
    // Draw the zones first, on a scratch canvas, to know the VPC's height.
    let mut inner = Canvas { body: String::new() };
    let mut tallest: f64 = 0.0;
    for (index, zone) in network.zones.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let left = x + GAP + index as f64 * (ZONE_WIDTH + GAP);
        let mut top = y + 30.0 + 22.0;
        let mut subnets: Vec<&enclave_net::model::Subnet> =
            network.subnets.iter().filter(|s| &s.zone == zone).collect();
        subnets.sort_by_key(|subnet| subnet.role != SubnetRole::Egress);
        for subnet in subnets {
            let mut lines = vec![format!("{} {}", subnet.name, subnet.cidr)];
            match subnet.role {
                SubnetRole::Egress => {
                    let nats: Vec<&str> = network
                        .nat_gateways
                        .iter()
                        .filter(|nat| nat.subnet == subnet.name)
                        .map(|nat| nat.name.as_str())
                        .collect();
                    lines.push(if nats.is_empty() {
                        "public · no NAT".to_owned()
                    } else {
                        format!("public · NAT {} → internet", nats.join(", "))
                    });
                }
                SubnetRole::Workload => {
                    let table = format!("private-{}", zone_letter(&subnet.zone));
                    lines.push(match nat_of(network, &table) {
                        Some(nat) => format!("private · {} tier · out via NAT {nat}", subnet.tier),
                        None => format!("private · {} tier · no way out", subnet.tier),
                    });
                }
            }
            let fill = if subnet.role == SubnetRole::Egress { PUBLIC.0 } else { PRIVATE.0 };
            top += inner.card(left, top, ZONE_WIDTH, fill, &lines) + 6.0;
            if subnet.role == SubnetRole::Egress {
                for nat in network.nat_gateways.iter().filter(|nat| nat.subnet == subnet.name) {
                    top +=
                        inner.card(left + 20.0, top, ZONE_WIDTH - 40.0, NAT.0, &[format!("NAT gateway {}", nat.name)])
                            + 6.0;
                }
            }
            if let Some(bastion) = bastion.filter(|b| b.subnet.name() == subnet.name) {
                let lines = [
                    format!("bastion · {}", bastion.instance_type),
                    "no inbound · no key · IMDSv2 · Session Manager only".to_owned(),
                ];
                top += inner.card(left + 20.0, top, ZONE_WIDTH - 40.0, BASTION.0, &lines) + 6.0;
            }
        }
        tallest = tallest.max(top - y);
        inner.text(left, y + 30.0 + 14.0, FONT, true, zone);
    }
    let height = tallest + GAP;
    canvas.rect(x, y, width, height, "#f8fafc", true);
    canvas.text(
        x + GAP,
        y + 20.0,
        FONT + 1.0,
        true,
        &format!("VPC {} · {} AZs", network.vpc.cidr, network.zones.len()),
    );
    canvas.body.push_str(&inner.body);
    height
}

/// The height of the account column of services drawn at `x`, `y`.
fn services(canvas: &mut Canvas, inputs: &Inputs<'_>, network: &AccountNetwork, x: f64, y: f64) -> f64 {
    let mut top = y;
    let (interface, gateway) = super::endpoint_services(network);
    if !network.endpoints.is_empty() {
        let lines = vec![
            "VPC endpoints (private DNS)".to_owned(),
            format!("interface: {}", interface.join(", ")),
            format!("gateway: {}", if gateway.is_empty() { "none".to_owned() } else { gateway.join(", ") }),
        ];
        top += canvas.card(x, top, SERVICES_WIDTH, ENDPOINTS.0, &lines) + 8.0;
    }
    if network.internet_gateway {
        let lines = ["internet gateway".to_owned(), "routes the public subnets only (NAT egress)".to_owned()];
        top += canvas.card(x, top, SERVICES_WIDTH, ENDPOINTS.0, &lines) + 8.0;
    }
    if let Some(flow_log) = &network.flow_log {
        let lines =
            ["VPC flow logs".to_owned(), format!("{} traffic · {} days", flow_log.traffic, flow_log.retention_days)];
        top += canvas.card(x, top, SERVICES_WIDTH, LOGS.0, &lines) + 8.0;
    }
    if let Some(access) = access_of(inputs.access, &network.account) {
        if let Some(session) = &access.session {
            let lines = [
                "Session Manager logs".to_owned(),
                format!("S3 + CloudWatch Logs · KMS · idle timeout {} min", session.idle_timeout_minutes),
            ];
            top += canvas.card(x, top, SERVICES_WIDTH, LOGS.0, &lines) + 8.0;
        }
        if let Some(trail) = &access.trail {
            let lines = [
                format!("CloudTrail {}", trail.name),
                format!(
                    "{} · {} · S3 + CloudWatch Logs · KMS",
                    if trail.multi_region { "all regions" } else { "one region" },
                    if trail.log_file_validation { "validated" } else { "not validated" }
                ),
            ];
            top += canvas.card(x, top, SERVICES_WIDTH, LOGS.0, &lines) + 8.0;
        }
    }
    top - y
}

/// The height of the clusters and registry column drawn at `x`, `y`, `width` wide.
fn workloads(canvas: &mut Canvas, inputs: &Inputs<'_>, network: &AccountNetwork, x: f64, y: f64, width: f64) -> f64 {
    let mut top = y;
    for cluster in inputs.clusters(&network.account) {
        let mut inner = Canvas { body: String::new() };
        let mut inside = top + 4.0;
        let title = super::cluster_label(cluster);
        for line in wrap(&title, fits(width - 2.0 * GAP, FONT)) {
            inside += LINE;
            inner.text(x + GAP, inside - 3.0, FONT, true, &line);
        }
        inside += 6.0;
        for group in &cluster.node_groups {
            inside += inner.card(
                x + GAP,
                inside,
                width - 2.0 * GAP,
                "#a7f3d0",
                &[format!("node group {}", node_group_label(group))],
            ) + 6.0;
        }
        let apps = inputs.apps(&cluster.name);
        // Apps as pills, as many to a row as fit.
        let pill_width = (width - 3.0 * GAP) / 2.0;
        let mut row: f64 = 0.0;
        for (index, app) in apps.iter().enumerate() {
            let column = index % 2;
            #[allow(clippy::cast_precision_loss)]
            let left = x + GAP + column as f64 * (pill_width + GAP);
            let mut lines = vec![format!("app {}", app.name)];
            lines.push(format!(
                "{} replicas · port {}{}",
                app.replicas,
                app.port,
                app.team.as_ref().map(|team| format!(" · team {team}")).unwrap_or_default()
            ));
            row = row.max(inner.card(left, inside, pill_width, APP.0, &lines));
            if column == 1 || index + 1 == apps.len() {
                inside += row + 6.0;
                row = 0.0;
            }
        }
        let height = inside - top + 4.0;
        canvas.rect(x, top, width, height, CLUSTER.0, false);
        canvas.body.push_str(&inner.body);
        top += height + 8.0;
    }
    if let Some(registry) = inputs.registry(&network.account) {
        let mut lines = vec![format!("ECR {}", registry.host)];
        lines.push(format!(
            "{} repositories{}{} · pulled by every cluster",
            registry.repositories.len(),
            if registry.scan_on_push { " · scanned on push" } else { "" },
            if registry.immutable_tags { " · immutable tags" } else { "" }
        ));
        lines.push(registry.repositories.join(", "));
        top += canvas.card(x, top, width, REGISTRY.0, &lines) + 8.0;
    }
    top - y
}

/// The width of the picture: every account's VPC, its services and the narrowest clusters column
/// fit.
fn width_of(inputs: &Inputs<'_>) -> f64 {
    width_for(inputs.network.accounts.iter().map(|network| network.zones.len()).max().unwrap_or(1))
}

fn width_for(zones: usize) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let vpc = zones.max(1) as f64 * (ZONE_WIDTH + GAP) + GAP;
    WIDTH.max(MARGIN + GAP + vpc + 16.0 + SERVICES_WIDTH + 16.0 + WORKLOADS_WIDTH + GAP + MARGIN)
}

fn legend(canvas: &mut Canvas, y: f64, width: f64) -> f64 {
    canvas.text(MARGIN, y + 16.0, FONT + 1.0, true, "legend");
    let entries = [PUBLIC, PRIVATE, NAT, ENDPOINTS, BASTION, LOGS, CLUSTER, APP, REGISTRY];
    let per_row = 5;
    #[allow(clippy::cast_precision_loss)]
    let cell = (width - 2.0 * MARGIN) / per_row as f64;
    for (index, (fill, meaning)) in entries.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let left = MARGIN + (index % per_row) as f64 * cell;
        #[allow(clippy::cast_precision_loss)]
        let top = y + 26.0 + (index / per_row) as f64 * 24.0;
        canvas.rect(left, top, 18.0, 14.0, fill, false);
        canvas.text(left + 26.0, top + 11.0, FONT, false, meaning);
    }
    26.0 + entries.len().div_ceil(per_row) as f64 * 24.0
}

/// The diagram as an SVG document.
pub fn svg(inputs: &Inputs<'_>) -> String {
    let model = inputs.network;
    let width = width_of(inputs);
    let mut canvas = Canvas { body: String::new() };
    canvas.text(
        MARGIN,
        MARGIN + 18.0,
        20.0,
        true,
        &format!(
            "{} · stack {} · {} · {} account{}",
            inputs.organization,
            model.stack,
            model.region,
            model.accounts.len(),
            if model.accounts.len() == 1 { "" } else { "s" }
        ),
    );
    let mut y = MARGIN + 36.0;
    for network in &model.accounts {
        let left = MARGIN + GAP;
        let top = y + 34.0;
        let mut body = Canvas { body: String::new() };
        let vpc_height = vpc(&mut body, inputs, network, left, top);
        #[allow(clippy::cast_precision_loss)]
        let vpc_width = network.zones.len().max(1) as f64 * (ZONE_WIDTH + GAP) + GAP;
        let services_left = left + vpc_width + 16.0;
        let services_height = services(&mut body, inputs, network, services_left, top);
        let workloads_left = services_left + SERVICES_WIDTH + 16.0;
        let workloads_width = width - MARGIN - GAP - workloads_left;
        let workloads_height = workloads(&mut body, inputs, network, workloads_left, top, workloads_width);
        let height = 34.0 + vpc_height.max(services_height).max(workloads_height) + GAP;
        canvas.rect(MARGIN, y, width - 2.0 * MARGIN, height, "#ffffff", false);
        canvas.text(
            MARGIN + GAP,
            y + 22.0,
            FONT + 4.0,
            true,
            &format!("account {} · {} · {}", network.account, network.account_id, network.environment),
        );
        canvas.body.push_str(&body.body);
        y += height + 14.0;
    }
    y += legend(&mut canvas, y, width) + MARGIN;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{y:.0}\" viewBox=\"0 0 {width:.0} {y:.0}\" \
         font-family=\"{FAMILY}, monospace\">\n<rect width=\"100%\" height=\"100%\" fill=\"#f1f5f9\"/>\n{}</svg>\n",
        canvas.body
    )
}

/// Why a PNG could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PngError {
    /// The SVG did not parse (a defect of [`svg`]).
    #[error("the diagram's SVG does not parse: {0}")]
    Svg(#[from] resvg::usvg::Error),
    /// The picture has no area, or is too large to allocate.
    #[error("the diagram is {width} x {height} points: no picture of that size can be made")]
    Size {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Encoding failed.
    #[error("cannot encode the PNG: {0}")]
    Encode(String),
}

/// The diagram as a PNG, rendered from [`svg`] with resvg at `scale` pixels per point, text set
/// in the embedded Hack font.
pub fn png(inputs: &Inputs<'_>, scale: f32) -> Result<Vec<u8>, PngError> {
    let mut options = resvg::usvg::Options { font_family: FAMILY.to_owned(), ..resvg::usvg::Options::default() };
    options.fontdb_mut().load_font_data(epaint_default_fonts::HACK_REGULAR.to_vec());
    let tree = resvg::usvg::Tree::from_str(&svg(inputs), &options)?;
    let size = tree.size().to_int_size().scale_by(scale).ok_or(PngError::Size { width: 0, height: 0 })?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or(PngError::Size { width: size.width(), height: size.height() })?;
    resvg::render(&tree, resvg::tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|error| PngError::Encode(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("ssm, ssmmessages, ec2messages", 12), ["ssm,", "ssmmessages,", "ec2messages"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }

    #[test]
    fn three_zones_keep_the_fixed_width_and_more_widen_the_picture_for_every_column() {
        assert!((width_for(3) - WIDTH).abs() < f64::EPSILON);
        for zones in 4..=6 {
            #[allow(clippy::cast_precision_loss)]
            let vpc = zones as f64 * (ZONE_WIDTH + GAP) + GAP;
            let workloads = width_for(zones) - (MARGIN + GAP + vpc + 16.0 + SERVICES_WIDTH + 16.0) - GAP - MARGIN;
            assert!(workloads >= WORKLOADS_WIDTH - f64::EPSILON, "{zones} zones: {workloads}");
        }
    }
}
