//! Names several domains must agree on, defined once: a Service port the monitoring renders a
//! scrape for and the deploy domain opens, the tags the Cluster Autoscaler discovers node groups
//! by (scaling renders the autoscaler, deploy tags the node groups), and the IAM role names of
//! service accounts (IRSA: scaling and secrets render the service accounts, deploy and secrets
//! create the roles).

use std::collections::BTreeMap;

/// The Service port the ServiceMonitor scrapes: the app's internal port (`monitoring.port`),
/// never the traffic port.
pub const METRICS_PORT_NAME: &str = "metrics";

/// The IAM path of every role and policy enclave creates, in every domain.
pub const ROLE_PATH: &str = "/enclave/";

/// The tags a node group (auto scaling group) carries so the Cluster Autoscaler of `cluster`
/// discovers it (`--node-group-auto-discovery=asg:tag=...`).
pub fn node_group_discovery_tags(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("k8s.io/cluster-autoscaler/enabled".to_owned(), "true".to_owned()),
        (format!("k8s.io/cluster-autoscaler/{cluster}"), "owned".to_owned()),
    ])
}

/// The IAM role a service account of `cluster` assumes through IRSA or Pod Identity:
/// `<cluster>-<purpose>` (`main-cluster-autoscaler`, `main-orders`). Validation keeps it within
/// IAM's 64 characters.
pub fn service_account_role_name(cluster: &str, purpose: &str) -> String {
    format!("{cluster}-{purpose}")
}

/// The IAM role of `cluster`'s nodes (under [`ROLE_PATH`]): deploy creates it, and the
/// registry's repository policy lets exactly these roles of the other accounts pull.
pub fn node_role_name(cluster: &str) -> String {
    format!("{cluster}-node")
}

/// The alias of each account's KMS key (made by the access domain), by which other domains
/// name it: session logs and the trail, EKS secrets, ECR repositories.
pub fn account_key_alias(stack: &str) -> String {
    format!("alias/enclave/{stack}/access")
}

/// The plan address of `account`'s KMS key, which other domains' resources come after.
pub fn account_key_address(account: &str) -> crate::Address {
    crate::Address::new(account, "access", "kms-key", "access")
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

/// The plan address of the alias of `account`'s KMS key.
pub fn account_key_alias_address(account: &str) -> crate::Address {
    crate::Address::new(account, "access", "kms-alias", "access")
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

/// The plan address of EKS cluster `cluster` of `account` (made by the deploy domain; the
/// secrets domain's Pod Identity associations come after it).
pub fn cluster_address(account: &str, cluster: &str) -> crate::Address {
    crate::Address::new(account, "deploy", "eks-cluster", cluster)
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

/// The plan address of the IAM OIDC provider of `cluster` (made by the deploy domain; IRSA roles
/// of other domains trust it and come after it).
pub fn oidc_provider_address(account: &str, cluster: &str) -> crate::Address {
    crate::Address::new(account, "deploy", "oidc-provider", cluster)
        .unwrap_or_else(|error| panic!("internal address error: {error}"))
}

/// The namespace the monitoring stack (Prometheus) runs in: the add-ons install it there, and
/// the NetworkPolicies of every workload admit scrapes from it.
pub const MONITORING_NAMESPACE: &str = "monitoring";

/// The owner of the monitoring stack's secrets in the secrets domain: the alert receivers'
/// credentials (mounted into Alertmanager) and Grafana's admin password. Their Kubernetes Secrets
/// are `monitoring-<secret>` in [`MONITORING_NAMESPACE`]; one owner per namespace, so one
/// reader identity.
pub const MONITORING_SECRETS_OWNER: &str = "monitoring";

/// Grafana's generated admin password among the monitoring stack's secrets (its Kubernetes
/// Secret is `monitoring-grafana-admin-password`, its one key the same name); reserved in
/// `alerting.secrets`.
pub const GRAFANA_ADMIN_SECRET: &str = "grafana-admin-password";

/// The service account of the Prometheus pods: in a mesh, the identity allowed to scrape every
/// app's internal port. Prometheus must then run in the mesh and scrape with the mesh's
/// certificates (kube-prometheus-stack's `prometheus.serviceAccount.name` is set to this by
/// `enclave-deploy`'s add-ons).
pub const PROMETHEUS_SERVICE_ACCOUNT: &str = "prometheus";

/// Where Prometheus reads the mesh's certificates to scrape apps through STRICT mutual TLS
/// (Istio's recipe: its sidecar writes them there and captures no traffic).
pub const PROMETHEUS_MESH_CERTS: &str = "/etc/prom-certs";

/// The labels of the Prometheus pods that scrape workloads (kube-prometheus-stack's).
pub fn prometheus_pod_labels() -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_owned(), "prometheus".to_owned())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_names_are_stable() {
        assert_eq!(service_account_role_name("main", "cluster-autoscaler"), "main-cluster-autoscaler");
        assert_eq!(
            node_group_discovery_tags("main").keys().map(String::as_str).collect::<Vec<_>>(),
            ["k8s.io/cluster-autoscaler/enabled", "k8s.io/cluster-autoscaler/main"]
        );
    }
}
