//! Where alerts go: the Alertmanager configuration of the spec's `alerting` section, and the
//! alert table it routes.
//!
//! The configuration is typed ([`Config`]) and serialises to the YAML Alertmanager reads (the
//! `alertmanager.config` value of kube-prometheus-stack). Receivers read their credentials from
//! files (`routing_key_file`, `api_url_file`, `auth_password_file`): the files are the keys of
//! the Kubernetes Secrets the secrets domain syncs into the `monitoring` namespace
//! (`monitoring-<secret>`), mounted by the Prometheus Operator under
//! [`SECRETS_DIR`]. No credential is ever in the configuration.
//!
//! Routing is first match: an alert goes to the receiver of the first route whose severity and
//! team it has, else to the default receiver. [`receiver_for`] says so from the spec alone;
//! [`table`] lists every alert of a cluster's apps with its labels and that receiver, which
//! `cargo xtask test` hands to `amtool config routes test` against the rendered file.

use std::collections::BTreeMap;

use enclave_core::names::MONITORING_SECRETS_OWNER;
use enclave_core::spec::{AlertSeverity, AlertingSpec, AppSpec, SecretSpec, Spec};
use serde::Serialize;

use crate::render::alert_rules;

/// Where the Prometheus Operator mounts the Secrets listed in `alertmanagerSpec.secrets`.
pub const SECRETS_DIR: &str = "/etc/alertmanager/secrets";
/// The receiver that notifies nobody: kube-prometheus-stack's always-firing `Watchdog` and
/// `InfoInhibitor` go there, and so does everything no route takes when there is no default.
pub const NOBODY: &str = "nobody";
/// Alerts that fire by design (a dead man's switch, an inhibitor), never for a person.
const BY_DESIGN: &[&str] = &["Watchdog", "InfoInhibitor"];

/// An Alertmanager configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// The routing tree.
    pub route: Route,
    /// Receivers.
    pub receivers: Vec<ReceiverConfig>,
    /// Inhibitions.
    pub inhibit_rules: Vec<InhibitRule>,
}

/// A route.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Route {
    /// Its receiver.
    pub receiver: String,
    /// Label matchers (`severity="critical"`); none on the root.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    /// Grouping labels (root only; children inherit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    /// First notification delay of a new group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<String>,
    /// Delay between notifications about a group's new alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<String>,
    /// Delay before a firing alert is notified again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    /// Child routes, first match wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

/// A receiver and its integrations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReceiverConfig {
    /// Name.
    pub name: String,
    /// PagerDuty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pagerduty_configs: Vec<PagerDutyConfig>,
    /// Slack.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<SlackConfig>,
    /// E-mail.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<EmailConfig>,
}

/// PagerDuty (Events API v2).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PagerDutyConfig {
    /// The file holding the routing key.
    pub routing_key_file: String,
    /// Also notify when the alert resolves.
    pub send_resolved: bool,
}

/// Slack.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlackConfig {
    /// The file holding the webhook URL.
    pub api_url_file: String,
    /// The channel.
    pub channel: String,
    /// Also notify when the alert resolves.
    pub send_resolved: bool,
}

/// E-mail.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EmailConfig {
    /// Recipient.
    pub to: String,
    /// Sender.
    pub from: String,
    /// SMTP relay, `host:port`.
    pub smarthost: String,
    /// SMTP user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    /// The file holding the SMTP password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_password_file: Option<String>,
    /// STARTTLS required.
    pub require_tls: bool,
    /// Also notify when the alert resolves.
    pub send_resolved: bool,
}

/// An inhibition: while a source alert fires, matching target alerts with the same `equal`
/// labels are not notified.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InhibitRule {
    /// The silencing alerts (any when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_matchers: Vec<String>,
    /// The silenced alerts.
    pub target_matchers: Vec<String>,
    /// Labels both must share.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

/// The file a receiver reads `secret` from: the secret's one key, in the directory of its
/// Kubernetes Secret (`monitoring-<secret>`).
pub fn secret_file(secret: &SecretSpec) -> String {
    let key = secret.keys_or_default().into_iter().next().map(|k| k.key).unwrap_or_else(|| secret.name.to_string());
    format!("{SECRETS_DIR}/{}/{key}", kubernetes_secret(secret))
}

/// The Kubernetes Secret the secrets domain syncs `secret` into.
pub fn kubernetes_secret(secret: &SecretSpec) -> String {
    format!("{MONITORING_SECRETS_OWNER}-{}", secret.name)
}

/// The Kubernetes Secrets Alertmanager mounts (kube-prometheus-stack's
/// `alertmanager.alertmanagerSpec.secrets`).
pub fn mounted_secrets(alerting: Option<&AlertingSpec>) -> Vec<String> {
    alerting.map(|alerting| alerting.secrets.iter().map(kubernetes_secret).collect()).unwrap_or_default()
}

fn matcher(label: &str, value: &str) -> String {
    // Values here are names and severities (`[a-z0-9-]`): nothing to escape.
    format!("{label}=\"{value}\"")
}

/// The Alertmanager configuration of `alerting` (the same in every cluster). Without a section,
/// every alert goes to [`NOBODY`].
pub fn config(alerting: Option<&AlertingSpec>) -> Config {
    let by_design = Route {
        receiver: NOBODY.to_owned(),
        matchers: vec![format!("alertname=~\"{}\"", BY_DESIGN.join("|"))],
        group_by: Vec::new(),
        group_wait: None,
        group_interval: None,
        repeat_interval: None,
        routes: Vec::new(),
    };
    let mut receivers = vec![ReceiverConfig {
        name: NOBODY.to_owned(),
        pagerduty_configs: Vec::new(),
        slack_configs: Vec::new(),
        email_configs: Vec::new(),
    }];
    let inhibit_rules = vec![
        // The whole service is down: its instances, errors and latency say nothing more.
        InhibitRule {
            source_matchers: vec![matcher("alertname", "ServiceDown")],
            target_matchers: vec!["alertname=~\"InstanceDown|HighErrorRate|HighLatencyP95\"".to_owned()],
            equal: vec!["service".to_owned()],
        },
        // An instance is down: the service's error rate follows from it until it is back.
        InhibitRule {
            source_matchers: vec![matcher("alertname", "InstanceDown")],
            target_matchers: vec![matcher("alertname", "HighErrorRate")],
            equal: vec!["service".to_owned()],
        },
        // kube-prometheus-stack's own, which this configuration replaces: the same alert at a
        // higher severity silences the lower ones, and `InfoInhibitor` the `info` alerts of its
        // namespace (and itself).
        InhibitRule {
            source_matchers: vec![matcher("severity", "critical")],
            target_matchers: vec!["severity=~\"warning|info\"".to_owned()],
            equal: vec!["namespace".to_owned(), "alertname".to_owned()],
        },
        InhibitRule {
            source_matchers: vec![matcher("severity", "warning")],
            target_matchers: vec![matcher("severity", "info")],
            equal: vec!["namespace".to_owned(), "alertname".to_owned()],
        },
        InhibitRule {
            source_matchers: vec![matcher("alertname", "InfoInhibitor")],
            target_matchers: vec![matcher("severity", "info")],
            equal: vec!["namespace".to_owned()],
        },
        InhibitRule {
            source_matchers: Vec::new(),
            target_matchers: vec![matcher("alertname", "InfoInhibitor")],
            equal: Vec::new(),
        },
    ];
    let Some(alerting) = alerting else {
        return Config {
            route: Route {
                receiver: NOBODY.to_owned(),
                matchers: Vec::new(),
                group_by: vec!["alertname".to_owned(), "service".to_owned()],
                group_wait: None,
                group_interval: None,
                repeat_interval: None,
                routes: vec![by_design],
            },
            receivers,
            inhibit_rules,
        };
    };
    let secret = |name: &enclave_core::spec::Name| {
        alerting.secrets.iter().find(|s| &s.name == name).map(secret_file).unwrap_or_default()
    };
    for receiver in &alerting.receivers {
        receivers.push(ReceiverConfig {
            name: receiver.name.to_string(),
            pagerduty_configs: receiver
                .pagerduty
                .iter()
                .map(|p| PagerDutyConfig { routing_key_file: secret(&p.routing_key_secret), send_resolved: true })
                .collect(),
            slack_configs: receiver
                .slack
                .iter()
                .map(|s| SlackConfig {
                    api_url_file: secret(&s.webhook_secret),
                    channel: s.channel.clone(),
                    send_resolved: true,
                })
                .collect(),
            email_configs: receiver
                .email
                .iter()
                .map(|e| EmailConfig {
                    to: e.to.clone(),
                    from: e.from.clone(),
                    smarthost: e.smarthost.clone(),
                    auth_username: e.username.clone(),
                    auth_password_file: e.password_secret.as_ref().map(secret),
                    require_tls: true,
                    send_resolved: true,
                })
                .collect(),
        });
    }
    let mut routes = vec![by_design];
    routes.extend(alerting.routes.iter().map(|route| {
        Route {
            receiver: route.receiver.to_string(),
            matchers: route
                .severity
                .map(|s| matcher("severity", s.as_str()))
                .into_iter()
                .chain(route.team.as_ref().map(|t| matcher("team", t.as_str())))
                .collect(),
            group_by: Vec::new(),
            group_wait: None,
            group_interval: None,
            repeat_interval: route.repeat_interval.map(|r| r.to_string()),
            routes: Vec::new(),
        }
    }));
    Config {
        route: Route {
            receiver: alerting.default_receiver.as_ref().map_or_else(|| NOBODY.to_owned(), ToString::to_string),
            matchers: Vec::new(),
            group_by: alerting.group_by.clone(),
            group_wait: Some(alerting.group_wait.to_string()),
            group_interval: Some(alerting.group_interval.to_string()),
            repeat_interval: Some(alerting.repeat_interval.to_string()),
            routes,
        },
        receivers,
        inhibit_rules,
    }
}

/// The receiver the spec sends an alert with `severity` and `team` to: the first route both
/// match, else the default, else [`NOBODY`].
pub fn receiver_for(alerting: Option<&AlertingSpec>, severity: AlertSeverity, team: Option<&str>) -> String {
    let Some(alerting) = alerting else { return NOBODY.to_owned() };
    alerting
        .routes
        .iter()
        .find(|route| {
            route.severity.is_none_or(|s| s == severity) && route.team.as_ref().is_none_or(|t| Some(t.as_str()) == team)
        })
        .map(|route| route.receiver.to_string())
        .or_else(|| alerting.default_receiver.as_ref().map(ToString::to_string))
        .unwrap_or_else(|| NOBODY.to_owned())
}

/// One alert of the table and where it goes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Case {
    /// The labels the alert fires with (`alertname`, `severity`, `service`, `team`).
    pub labels: BTreeMap<String, String>,
    /// Its severity (the `severity` label's).
    #[serde(skip)]
    pub severity: AlertSeverity,
    /// The receiver the spec sends it to.
    pub receiver: String,
}

/// Every alert of the apps of `cluster`, with its labels and receiver.
pub fn table(spec: &Spec, cluster: &str) -> Vec<Case> {
    let apps = spec.apps.iter().filter(|app| app.cluster.as_str() == cluster);
    apps.flat_map(|app| app_cases(spec.alerting.as_ref(), app)).collect()
}

fn app_cases(alerting: Option<&AlertingSpec>, app: &AppSpec) -> Vec<Case> {
    let rules = alert_rules(app);
    rules
        .groups
        .iter()
        .flat_map(|group| &group.rules)
        .map(|rule| {
            let mut labels = rule.labels.clone();
            labels.insert("alertname".to_owned(), rule.alert.clone());
            let severity = AlertSeverity::ALL
                .into_iter()
                .find(|s| Some(s.as_str()) == rule.labels.get("severity").map(String::as_str))
                .unwrap_or(AlertSeverity::Warning);
            let receiver = receiver_for(alerting, severity, rule.labels.get("team").map(String::as_str));
            Case { labels, severity, receiver }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use enclave_core::config;

    use super::*;

    fn spec(alerting: &str) -> Spec {
        let text = format!(
            "organization: {{ name: acme, region: eu-west-1 }}\nnetwork: {{ tiers: [{{ name: app, size: 20, slot: 0 }}] }}\n\
             accounts: [{{ name: prod, id: \"333333333333\", environment: prod, vpc_cidr: 10.3.0.0/16 }}]\n\
             clusters: [{{ name: main, account: prod, version: \"1.33\" }}]\n\
             apps:\n  - {{ name: orders, cluster: main, image: orders:1.0.0, port: 8080, team: payments }}\n\
             \x20 - {{ name: reports, cluster: main, image: reports:1.0.0, port: 8080 }}\n{alerting}"
        );
        config::load_str("spec.yaml", &text).expect("valid").spec
    }

    const ALERTING: &str = "alerting:\n  receivers:\n    - { name: pager, pagerduty: { routing_key_secret: pagerduty } }\n\
        \x20   - { name: payments-chat, slack: { channel: \"#payments\", webhook_secret: slack } }\n\
        \x20   - { name: mail, email: { to: ops@acme.example, from: am@acme.example, smarthost: \"smtp.acme.example:587\", username: am, password_secret: smtp } }\n\
        \x20 secrets:\n    - { name: pagerduty, source: { env: PD_KEY } }\n    - { name: slack, source: { env: SLACK_URL } }\n    - { name: smtp, source: { env: SMTP_PASSWORD } }\n\
        \x20 routes:\n    - { severity: critical, receiver: pager }\n    - { team: payments, receiver: payments-chat, repeat_interval: 12h }\n\
        \x20 default_receiver: mail\n";

    #[test]
    fn first_match_wins_then_the_default() {
        let spec = spec(ALERTING);
        let alerting = spec.alerting.as_ref();
        assert_eq!(receiver_for(alerting, AlertSeverity::Critical, Some("payments")), "pager");
        assert_eq!(receiver_for(alerting, AlertSeverity::Warning, Some("payments")), "payments-chat");
        assert_eq!(receiver_for(alerting, AlertSeverity::Warning, None), "mail");
        assert_eq!(receiver_for(None, AlertSeverity::Critical, None), NOBODY);
        let cases = table(&spec, "main");
        let orders_latency = cases
            .iter()
            .find(|c| c.labels["alertname"] == "HighLatencyP95" && c.labels["service"] == "orders")
            .expect("orders' latency alert");
        assert_eq!(
            (orders_latency.labels["team"].as_str(), orders_latency.receiver.as_str()),
            ("payments", "payments-chat")
        );
        assert!(cases.iter().filter(|c| c.labels["service"] == "reports").all(|c| !c.labels.contains_key("team")));
    }

    #[test]
    fn credentials_are_files_of_the_mounted_secrets_never_values() {
        let spec = spec(ALERTING);
        let config = config(spec.alerting.as_ref());
        let pager = config.receivers.iter().find(|r| r.name == "pager").expect("pager");
        assert_eq!(
            pager.pagerduty_configs[0].routing_key_file,
            "/etc/alertmanager/secrets/monitoring-pagerduty/pagerduty"
        );
        let mail = config.receivers.iter().find(|r| r.name == "mail").expect("mail");
        assert_eq!(
            mail.email_configs[0].auth_password_file.as_deref(),
            Some("/etc/alertmanager/secrets/monitoring-smtp/smtp")
        );
        assert_eq!(
            mounted_secrets(spec.alerting.as_ref()),
            ["monitoring-pagerduty", "monitoring-slack", "monitoring-smtp"]
        );
        assert_eq!(config.route.routes[0].receiver, NOBODY, "Watchdog first, to nobody");
        assert_eq!(config.route.routes[2].repeat_interval.as_deref(), Some("12h"));
    }
}
