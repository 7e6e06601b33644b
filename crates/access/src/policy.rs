//! Every policy and document access generates, each as narrow as the service allows: IAM
//! policies name exact buckets, prefixes, log groups and (through its alias) the key; resource
//! policies name their one service and pin it with `aws:SourceArn` / `aws:SourceAccount`.
//! `cargo xtask test` has `parliament` judge each of them.

use enclave_core::Address;
use enclave_core::address::{ADDRESS_TAG, STACK_TAG};
use serde_json::{Value, json};

use crate::model::{AccessModel, AccountAccess, SESSION_DOCUMENT, SESSION_LOG_PREFIX, Session, Trail, key_alias};

/// ARNs of one account, region and partition.
#[derive(Clone, Copy, Debug)]
pub struct Arns<'a> {
    /// Partition (`aws`, `aws-us-gov`, `aws-cn`).
    pub partition: &'a str,
    /// Region.
    pub region: &'a str,
    /// Account id.
    pub account_id: &'a str,
}

impl<'a> Arns<'a> {
    /// The ARNs of `account` in `model`.
    pub fn of(model: &'a AccessModel, account: &'a AccountAccess) -> Self {
        Arns { partition: &model.partition, region: &model.region, account_id: &account.account_id }
    }
    /// The account's root principal.
    pub fn root(&self) -> String {
        format!("arn:{}:iam::{}:root", self.partition, self.account_id)
    }
    /// A bucket.
    pub fn bucket(&self, bucket: &str) -> String {
        format!("arn:{}:s3:::{bucket}", self.partition)
    }
    /// A log group (its streams are `<this>:log-stream:*`).
    pub fn log_group(&self, name: &str) -> String {
        format!("arn:{}:logs:{}:{}:log-group:{name}", self.partition, self.region, self.account_id)
    }
    /// A trail.
    pub fn trail(&self, name: &str) -> String {
        format!("arn:{}:cloudtrail:{}:{}:trail/{name}", self.partition, self.region, self.account_id)
    }
    /// Every key of the account (narrowed by the alias condition).
    pub fn keys(&self) -> String {
        format!("arn:{}:kms:{}:{}:key/*", self.partition, self.region, self.account_id)
    }
    /// An SSM document of the account.
    pub fn document(&self, name: &str) -> String {
        format!("arn:{}:ssm:{}:{}:document/{name}", self.partition, self.region, self.account_id)
    }
    /// A role under enclave's path.
    pub fn role(&self, name: &str) -> String {
        format!("arn:{}:iam::{}:role{}{name}", self.partition, self.account_id, crate::resources::ROLE_PATH)
    }
    /// An AWS-managed policy.
    pub fn aws_managed_policy(&self, name: &str) -> String {
        enclave_core::iam::aws_managed_policy(self.partition, name)
    }
}

/// Denies every request to `bucket` that does not use TLS.
fn deny_insecure_transport(arns: &Arns<'_>, bucket: &str) -> Value {
    json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": { "AWS": "*" },
        "Action": "s3:*",
        "Resource": [arns.bucket(bucket), format!("{}/*", arns.bucket(bucket))],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
    })
}

/// Every action on one key the account delegates through IAM (instead of `kms:*`, which also
/// names account-wide actions such as `kms:CreateKey` that a key policy cannot scope).
const KEY_ACTIONS: [&str; 28] = [
    "kms:CancelKeyDeletion",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
    "kms:DeleteImportedKeyMaterial",
];

/// The account's access key policy: the account administers and delegates the key through IAM
/// (the key is unusable otherwise); CloudWatch Logs may use it only for the stack's log groups;
/// CloudTrail only for this account's trail. In a key policy, `"Resource": "*"` means this key.
pub fn key_policy(model: &AccessModel, account: &AccountAccess) -> Value {
    let arns = Arns::of(model, account);
    let mut statements = vec![
        json!({
            "Sid": "AccountAdministersAndDelegatesThroughIam",
            "Effect": "Allow",
            "Principal": { "AWS": arns.root() },
            "Action": KEY_ACTIONS,
            "Resource": "*"
        }),
        json!({
            "Sid": "AccountManagesAliasesOfTheKey",
            "Effect": "Allow",
            "Principal": { "AWS": arns.root() },
            "Action": ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
            "Resource": "*"
        }),
    ];
    let groups: Vec<String> = account
        .session
        .iter()
        .map(|session| session.log_group.as_str())
        .chain(account.trail.iter().map(|trail| trail.log_group.as_str()))
        .map(|group| arns.log_group(group))
        .collect();
    if !groups.is_empty() {
        statements.push(json!({
            "Sid": "CloudWatchLogsForTheStackGroups",
            "Effect": "Allow",
            "Principal": { "Service": format!("logs.{}.amazonaws.com", model.region) },
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": { "StringEquals": { "kms:EncryptionContext:aws:logs:arn": groups } }
        }));
    }
    if let Some(trail) = &account.trail {
        let source = json!({ "aws:SourceArn": arns.trail(&trail.name) });
        statements.push(json!({
            "Sid": "CloudTrailEncryptsTheTrail",
            "Effect": "Allow",
            "Principal": { "Service": "cloudtrail.amazonaws.com" },
            "Action": "kms:GenerateDataKey",
            "Resource": "*",
            "Condition": {
                "StringEquals": source,
                "StringLike": {
                    "kms:EncryptionContext:aws:cloudtrail:arn":
                        format!("arn:{}:cloudtrail:*:{}:trail/*", model.partition, account.account_id)
                }
            }
        }));
        statements.push(json!({
            "Sid": "CloudTrailDescribesTheKey",
            "Effect": "Allow",
            "Principal": { "Service": "cloudtrail.amazonaws.com" },
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": { "StringEquals": source }
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The session log bucket: TLS only. Writers are authorised by their own IAM policy.
pub fn sessions_bucket_policy(arns: &Arns<'_>, session: &Session) -> Value {
    json!({ "Version": "2012-10-17", "Statement": [deny_insecure_transport(arns, &session.bucket)] })
}

/// The trail bucket: only this account's trail may read its ACL and write its log prefix, with
/// the owner in full control; TLS only.
pub fn trail_bucket_policy(arns: &Arns<'_>, trail: &Trail) -> Value {
    let bucket = arns.bucket(&trail.bucket);
    let source = json!({ "aws:SourceArn": arns.trail(&trail.name), "aws:SourceAccount": arns.account_id });
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CloudTrailChecksTheAcl",
                "Effect": "Allow",
                "Principal": { "Service": "cloudtrail.amazonaws.com" },
                "Action": "s3:GetBucketAcl",
                "Resource": bucket,
                "Condition": { "StringEquals": source }
            },
            {
                "Sid": "CloudTrailWritesItsPrefix",
                "Effect": "Allow",
                "Principal": { "Service": "cloudtrail.amazonaws.com" },
                "Action": "s3:PutObject",
                "Resource": format!("{bucket}/AWSLogs/{}/*", arns.account_id),
                "Condition": {
                    "StringEquals": {
                        "s3:x-amz-acl": "bucket-owner-full-control",
                        "aws:SourceArn": arns.trail(&trail.name),
                        "aws:SourceAccount": arns.account_id
                    }
                }
            },
            deny_insecure_transport(arns, &trail.bucket)
        ]
    })
}

/// Who may assume a role: one service, and for CloudTrail only this account's trail.
pub fn trust_policy(service: &str, source_arn: Option<&str>) -> Value {
    enclave_core::iam::trust_policy(service, source_arn)
}

/// What instances need besides `AmazonSSMManagedInstanceCore`: write session logs to the
/// bucket prefix and the log group, and use the access key for them (the one key of the
/// account carrying `key_address` as its address tag: its ARN is not known before it exists).
/// `logs:DescribeLogGroups` (the agent checks the group's encryption) has no resource-level
/// permissions, so it alone names `*`.
pub fn instance_policy(arns: &Arns<'_>, session: &Session, key_address: &Address) -> Value {
    let group = arns.log_group(&session.log_group);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteSessionLogObjects",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": format!("{}/{SESSION_LOG_PREFIX}/*", arns.bucket(&session.bucket))
            },
            {
                "Sid": "ReadSessionBucketEncryption",
                "Effect": "Allow",
                "Action": "s3:GetEncryptionConfiguration",
                "Resource": arns.bucket(&session.bucket)
            },
            {
                "Sid": "WriteSessionLogStreams",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": format!("{group}:log-stream:*")
            },
            {
                "Sid": "CheckLogGroupEncryption",
                "Effect": "Allow",
                "Action": "logs:DescribeLogGroups",
                "Resource": "*"
            },
            {
                "Sid": "UseTheAccessKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": arns.keys(),
                "Condition": {
                    "StringEquals": { format!("aws:ResourceTag/{ADDRESS_TAG}"): key_address.to_string() }
                }
            }
        ]
    })
}

/// What people are given to reach instances: sessions only on instances carrying the stack's
/// tag and only with the stack's session document, and only their own sessions to end or
/// resume.
pub fn people_policy(model: &AccessModel, arns: &Arns<'_>) -> Value {
    let document_check = json!({ "BoolIfExists": { "ssm:SessionDocumentAccessCheck": "true" } });
    let mut on_instances = document_check.clone();
    on_instances["StringEquals"] = json!({ format!("ssm:resourceTag/{STACK_TAG}"): model.stack });
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StartSessionsOnStackInstances",
                "Effect": "Allow",
                "Action": "ssm:StartSession",
                "Resource": format!("arn:{}:ec2:{}:{}:instance/*", arns.partition, arns.region, arns.account_id),
                "Condition": on_instances
            },
            {
                "Sid": "StartSessionsWithTheStackDocument",
                "Effect": "Allow",
                "Action": "ssm:StartSession",
                "Resource": arns.document(SESSION_DOCUMENT),
                "Condition": document_check
            },
            {
                "Sid": "EndAndResumeOwnSessions",
                "Effect": "Allow",
                "Action": ["ssm:TerminateSession", "ssm:ResumeSession"],
                "Resource": format!("arn:{}:ssm:*:{}:session/${{aws:userid}}-*", arns.partition, arns.account_id)
            }
        ]
    })
}

/// CloudTrail's delivery role may only create streams in, and write to, the trail's group.
pub fn trail_logs_policy(arns: &Arns<'_>, trail: &Trail) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "WriteTrailLogStreams",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": format!("{}:log-stream:*", arns.log_group(&trail.log_group))
        }]
    })
}

/// The Session Manager preferences: idle timeout, KMS-encrypted sessions, encrypted logs to S3
/// and CloudWatch Logs, run-as as the spec says.
pub fn session_document(model: &AccessModel, session: &Session) -> Value {
    json!({
        "schemaVersion": "1.0",
        "description": format!("Session Manager preferences of stack {}, managed by enclave", model.stack),
        "sessionType": "Standard_Stream",
        "inputs": {
            "s3BucketName": session.bucket,
            "s3KeyPrefix": SESSION_LOG_PREFIX,
            "s3EncryptionEnabled": true,
            "cloudWatchLogGroupName": session.log_group,
            "cloudWatchEncryptionEnabled": true,
            "cloudWatchStreamingEnabled": true,
            "kmsKeyId": key_alias(&model.stack),
            "runAsEnabled": session.run_as_user.is_some(),
            "runAsDefaultUser": session.run_as_user.clone().unwrap_or_default(),
            "idleSessionTimeout": session.idle_timeout_minutes.to_string(),
            "maxSessionDuration": "",
            "shellProfile": { "windows": "", "linux": "" }
        }
    })
}
