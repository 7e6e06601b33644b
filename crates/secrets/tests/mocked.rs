//! What moto cannot show, against `aws-smithy-mocks`: rotation (moto's `RotateSecret` without a
//! real function corrupts the secret), Pod Identity associations (moto answers 404), and the
//! exact calls of an update: a changed value is one `PutSecretValue`, nothing else writes one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_eks::types::{PodIdentityAssociation, PodIdentityAssociationSummary};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use enclave_core::Address;
use enclave_core::plan::Attributes;
use enclave_core::reconcile::{Ids, Operation, Provider, Step};
use enclave_core::secret::Secret;
use enclave_secrets::apply::Secrets;
use enclave_secrets::clients::Clients;
use serde_json::json;

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    rules.iter().fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, rule| i.with_rule(rule))
}

macro_rules! client {
    ($service:ident, $rules:expr) => {
        $service::Client::from_conf(
            $service::Config::builder()
                .behavior_version_latest()
                .region($service::config::Region::new("eu-west-1"))
                .credentials_provider($service::config::Credentials::new("test", "test", None, None, "mock"))
                .http_client(create_mock_http_client())
                .interceptor(interceptor($rules))
                .build(),
        )
    };
}

fn provider(rules: &[&Rule]) -> Secrets {
    let clients = Clients {
        secrets: client!(aws_sdk_secretsmanager, rules),
        iam: client!(aws_sdk_iam, rules),
        eks: client!(aws_sdk_eks, rules),
        kms: client!(aws_sdk_kms, rules),
    };
    Secrets::new("acme", BTreeMap::from([("prod".to_owned(), clients)]))
}

fn attributes(value: serde_json::Value) -> Attributes {
    value.as_object().expect("an object").clone().into_iter().collect()
}

const ARN: &str = "arn:aws:secretsmanager:eu-west-1:333333333333:secret:acme/prod/orders/db-AbCdEf";
const LAMBDA: &str = "arn:aws:lambda:eu-west-1:333333333333:function:rotate";

fn secret_after(rotation: serde_json::Value) -> Attributes {
    attributes(json!({
        "name": "acme/prod/orders/db",
        "description": "db of app orders (acme)",
        "key": "prod/access/kms-key/access",
        "policy": { "Version": "2012-10-17", "Statement": [] },
        "rotation": rotation,
        "source": "generated",
        "recovery_days": 7,
        "value": "(sensitive)"
    }))
}

#[tokio::test]
async fn a_secret_is_rotated_only_by_the_function_the_spec_names_never_at_once() {
    let address: Address = "prod/secrets/secret/orders-db".parse().expect("address");
    let create = mock!(aws_sdk_secretsmanager::Client::create_secret)
        .match_requests(|r| {
            r.name() == Some("acme/prod/orders/db")
                && r.kms_key_id() == Some("alias/enclave/acme/access")
                && r.secret_string() == Some("generated-value")
                && r.client_request_token().is_some_and(|t| t.len() >= 32)
                && r.tags()
                    .iter()
                    .any(|t| t.key() == Some("enclave:address") && t.value() == Some("prod/secrets/secret/orders-db"))
        })
        .then_output(|| {
            aws_sdk_secretsmanager::operation::create_secret::CreateSecretOutput::builder().arn(ARN).build()
        });
    let policy = mock!(aws_sdk_secretsmanager::Client::put_resource_policy)
        .match_requests(|r| r.block_public_policy() == Some(true))
        .then_output(|| {
            aws_sdk_secretsmanager::operation::put_resource_policy::PutResourcePolicyOutput::builder().build()
        });
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    let rotate = mock!(aws_sdk_secretsmanager::Client::rotate_secret)
        .match_requests(move |r| {
            let right = r.secret_id() == Some(ARN)
                && r.rotation_lambda_arn() == Some(LAMBDA)
                && r.rotation_rules().and_then(|rules| rules.automatically_after_days()) == Some(30)
                && r.rotate_immediately() == Some(false);
            if right {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            right
        })
        .then_output(|| aws_sdk_secretsmanager::operation::rotate_secret::RotateSecretOutput::builder().build());
    let secrets = provider(&[&create, &policy, &rotate]);
    let after = secret_after(json!({ "lambda": LAMBDA, "days": 30 }));
    let values = BTreeMap::from([("value".to_owned(), Secret::new("generated-value"))]);
    let step =
        Step { address: &address, operation: Operation::Create, before: None, after: Some(&after), secrets: &values };
    let id = secrets.run(&step, &Ids::default()).await.expect("created");
    assert_eq!(id.as_deref(), Some(ARN));
    assert_eq!((create.num_calls(), policy.num_calls(), seen.load(Ordering::SeqCst)), (1, 1, 1));

    // Taking rotation away cancels it.
    let cancel = mock!(aws_sdk_secretsmanager::Client::cancel_rotate_secret)
        .match_requests(|r| r.secret_id() == Some(ARN))
        .then_output(|| {
            aws_sdk_secretsmanager::operation::cancel_rotate_secret::CancelRotateSecretOutput::builder().build()
        });
    let secrets = provider(&[&cancel]);
    let before = after.clone();
    let after = secret_after(serde_json::Value::Null);
    let ids = Ids::new(BTreeMap::from([(address.clone(), ARN.to_owned())]));
    secrets.run(&Step::update(&address, &before, &after), &ids).await.expect("cancelled");
    assert_eq!(cancel.num_calls(), 1);
}

#[tokio::test]
async fn an_update_writes_a_value_only_when_its_digest_differs() {
    let address: Address = "prod/secrets/secret/orders-db".parse().expect("address");
    let put = mock!(aws_sdk_secretsmanager::Client::put_secret_value)
        .match_requests(|r| {
            r.secret_id() == Some(ARN) && r.secret_string() == Some("new") && r.client_request_token().is_some()
        })
        .then_output(|| aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueOutput::builder().build());
    let policy = mock!(aws_sdk_secretsmanager::Client::put_resource_policy).then_output(|| {
        aws_sdk_secretsmanager::operation::put_resource_policy::PutResourcePolicyOutput::builder().build()
    });
    let secrets = provider(&[&put, &policy]);
    let ids = Ids::new(BTreeMap::from([(address.clone(), ARN.to_owned())]));
    let before = secret_after(serde_json::Value::Null);
    // Only the policy differs: the plan hands over no value, none is written.
    let mut after = before.clone();
    after.insert("policy".into(), json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Deny" }] }));
    secrets.run(&Step::update(&address, &before, &after), &ids).await.expect("policy");
    assert_eq!((put.num_calls(), policy.num_calls()), (0, 1));
    // The value differs: one PutSecretValue.
    let values = BTreeMap::from([("value".to_owned(), Secret::new("new"))]);
    let step = Step {
        address: &address,
        operation: Operation::Update,
        before: Some(&before),
        after: Some(&before),
        secrets: &values,
    };
    secrets.run(&step, &ids).await.expect("value");
    assert_eq!(put.num_calls(), 1);
}

fn association(tags: &[(&str, &str)], role: &str) -> PodIdentityAssociation {
    let mut builder = PodIdentityAssociation::builder()
        .cluster_name("platform-dev")
        .namespace("external-secrets")
        .service_account("external-secrets")
        .association_id("a-1")
        .role_arn(role);
    for (k, v) in tags {
        builder = builder.tags(*k, *v);
    }
    builder.build()
}

const ASSOCIATION: &str = "prod/secrets/pod-identity-association/platform-dev-external-secrets-external-secrets";
const ROLE: &str = "arn:aws:iam::333333333333:role/enclave/platform-dev-external-secrets";

#[tokio::test]
async fn pod_identity_associations_are_made_once_and_someone_elses_is_never_taken() {
    let address: Address = ASSOCIATION.parse().expect("address");
    let after = attributes(json!({
        "cluster": "prod/deploy/eks-cluster/platform-dev",
        "namespace": "external-secrets",
        "service_account": "external-secrets",
        "role": "prod/secrets/iam-role/platform-dev-external-secrets"
    }));
    let ids = Ids::new(BTreeMap::from([
        ("prod/deploy/eks-cluster/platform-dev".parse().expect("address"), "platform-dev".to_owned()),
        ("prod/secrets/iam-role/platform-dev-external-secrets".parse().expect("address"), ROLE.to_owned()),
    ]));
    let create = mock!(aws_sdk_eks::Client::create_pod_identity_association)
        .match_requests(|r| {
            r.cluster_name() == Some("platform-dev")
                && r.role_arn() == Some(ROLE)
                && r.client_request_token().is_some()
                && r.tags().is_some_and(|t| t.get("enclave:stack").map(String::as_str) == Some("acme"))
        })
        .then_output(|| {
            aws_sdk_eks::operation::create_pod_identity_association::CreatePodIdentityAssociationOutput::builder()
                .association(association(&[], ROLE))
                .build()
        });
    let id = provider(&[&create]).run(&Step::create(&address, &after), &ids).await.expect("created");
    assert_eq!(id.as_deref(), Some("platform-dev/a-1"));

    // The service account has an association already: ours is adopted (its role brought to the
    // spec's), someone else's is an error.
    let in_use = || {
        mock!(aws_sdk_eks::Client::create_pod_identity_association).then_error(|| {
            aws_sdk_eks::operation::create_pod_identity_association::CreatePodIdentityAssociationError::ResourceInUseException(
                aws_sdk_eks::types::error::ResourceInUseException::builder()
                    .message("exists")
                    .meta(aws_sdk_eks::error::ErrorMetadata::builder().code("ResourceInUseException").build())
                    .build(),
            )
        })
    };
    let list = mock!(aws_sdk_eks::Client::list_pod_identity_associations).then_output(|| {
        aws_sdk_eks::operation::list_pod_identity_associations::ListPodIdentityAssociationsOutput::builder()
            .associations(PodIdentityAssociationSummary::builder().association_id("a-1").build())
            .build()
    });
    let ours = mock!(aws_sdk_eks::Client::describe_pod_identity_association).then_output(|| {
        aws_sdk_eks::operation::describe_pod_identity_association::DescribePodIdentityAssociationOutput::builder()
            .association(association(
                &[("enclave:stack", "acme"), ("enclave:address", ASSOCIATION)],
                "arn:aws:iam::333333333333:role/old",
            ))
            .build()
    });
    let update = mock!(aws_sdk_eks::Client::update_pod_identity_association)
        .match_requests(|r| r.role_arn() == Some(ROLE) && r.association_id() == Some("a-1"))
        .then_output(|| {
            aws_sdk_eks::operation::update_pod_identity_association::UpdatePodIdentityAssociationOutput::builder()
                .build()
        });
    let taken = in_use();
    let id =
        provider(&[&taken, &list, &ours, &update]).run(&Step::create(&address, &after), &ids).await.expect("adopted");
    assert_eq!((id.as_deref(), update.num_calls()), (Some("platform-dev/a-1"), 1));

    let theirs = mock!(aws_sdk_eks::Client::describe_pod_identity_association).then_output(|| {
        aws_sdk_eks::operation::describe_pod_identity_association::DescribePodIdentityAssociationOutput::builder()
            .association(association(&[("team", "platform")], ROLE))
            .build()
    });
    let taken = in_use();
    let error =
        provider(&[&taken, &list, &theirs]).run(&Step::create(&address, &after), &ids).await.expect_err("not ours");
    assert!(error.to_string().contains("without this stack's tags"), "{error}");
}
