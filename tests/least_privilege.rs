//! Least privilege, checked: every real Lambda binary runs the pipeline with credentials that
//! carry only its own role's policy from `infra/template.yaml`, on a moto of this test's own that
//! enforces IAM. A call a function makes that its policy does not allow is denied, its Task
//! fails, and the run does not reach the fixture dataset, failing this test.
//!
//! What moto enforces: the action of every request, and for S3 the resource too (bucket and key
//! ARNs). For DynamoDB and Secrets Manager, moto asks the policy about resource `*`, so their
//! statements are checked here by action only (their resources become `*`); conditions
//! (`kms:ViaService`) are not evaluated, and the KMS statements drop out because a local run
//! has no key. Google and Comprehend are fakes that check no IAM.

#[path = "../steps/pii/tests/support/comprehend_server.rs"]
mod comprehend_server;
#[path = "../steps/gmail/tests/support/fake_google.rs"]
mod fake_google;
#[path = "support/fixture_dataset.rs"]
mod fixture_dataset;
#[path = "support/real_binaries.rs"]
mod real_binaries;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use real_binaries::{RunSetup, repo_root};
use serde_json::{Value, json};
use sluice::runner::template::{LocalStack, SamTemplate};

/// A moto server of this test's own: IAM enforcement would fail every other test's requests.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let server = repo_root().join(".venv/bin/moto_server");
        assert!(
            server.is_file(),
            "{} is missing: scripts/test.sh installs moto[server] into .venv",
            server.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        // Its request log, for a denied call's action and resource.
        let log = std::fs::File::create(repo_root().join("target/least-privilege-moto.log")).unwrap();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint }
    }

    /// Runs `script` with boto3 (moto's own dependency) against this moto; its JSON output.
    fn python(&self, script: &str, input: &Value) -> Value {
        let python = repo_root().join(".venv/bin/python");
        let output = Command::new(python)
            .args(["-c", script, &self.endpoint, &input.to_string()])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates one IAM user per `{"name": policy}` entry, with that inline policy and an access key;
/// prints `{"name": [key id, secret]}`.
const CREATE_USERS: &str = r#"
import boto3, json, sys
iam = boto3.client("iam", endpoint_url=sys.argv[1])
keys = {}
for name, policy in json.loads(sys.argv[2]).items():
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="role", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    keys[name] = [key["AccessKeyId"], key["SecretAccessKey"]]
print(json.dumps(keys))
"#;

/// From now on, moto checks every request's credentials and policy.
const ENFORCE: &str = r#"
import json, sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/moto-api/reset-auth", data=b"0",
    headers={"Content-Type": "text/plain"}, method="POST"))
print(json.dumps("enforced"))
"#;

/// A role policy as moto can enforce it: S3 statements as they are; other services' resources
/// widened to `*` (moto asks about `*` for them), conditions dropped (moto does not evaluate them).
fn as_moto_enforces(policy: &Value) -> Value {
    let statements: Vec<Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|statement| {
            let actions: Vec<&str> = match &statement["Action"] {
                Value::String(one) => vec![one.as_str()],
                Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                other => panic!("an Action that is {other}"),
            };
            let mut statement = statement.clone();
            let object = statement.as_object_mut().unwrap();
            object.remove("Condition");
            object.remove("Sid");
            if !actions.iter().all(|a| a.starts_with("s3:")) {
                object.insert("Resource".into(), json!("*"));
            }
            statement
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[test]
fn every_binary_runs_the_pipeline_with_only_its_own_roles_policy() {
    if sluice_core::testing::aws_endpoint().is_none() {
        return;
    }
    let moto = Moto::start();
    // This process's own calls (provisioning, the engine's Distributed Map reader and writer,
    // the test's checks) go as an administrator; the functions go as themselves.
    let admin = moto.python(
        CREATE_USERS,
        &json!({"administrator": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}),
    );
    // SAFETY: nothing else runs yet: this is the binary's only test, and no runtime or thread
    // that reads the environment has started.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", admin["administrator"][0].as_str().unwrap());
        std::env::set_var("AWS_SECRET_ACCESS_KEY", admin["administrator"][1].as_str().unwrap());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(moto));
}

async fn run(moto: Moto) {
    let google = fake_google::FakeGoogle::start().await;
    google.add_dir(&repo_root().join("fixtures/mail"));
    let comprehend = comprehend_server::ComprehendServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let setup = RunSetup::new(&moto.endpoint, &google, &comprehend, dir.path());
    let template = SamTemplate::load(&repo_root().join("infra/template.yaml")).unwrap();
    let local = LocalStack {
        config: &setup.config,
        config_document: &setup.document,
        rust_log: None,
    };
    let mut binaries = setup.binaries(&template);
    let mut policies = BTreeMap::new();
    for function in template.functions().unwrap() {
        if binaries.functions.contains_key(&function.binary) {
            let policy = template.role_policy(&function, &local).unwrap();
            assert!(
                !policy["Statement"].as_array().unwrap().is_empty(),
                "{} has no policy",
                function.logical_id
            );
            policies.insert(function.binary.clone(), as_moto_enforces(&policy));
        }
    }
    let keys = moto.python(CREATE_USERS, &json!(policies));
    for (binary, function) in binaries.functions.iter_mut() {
        let key = &keys[binary.as_str()];
        function
            .environment
            .insert("AWS_ACCESS_KEY_ID".into(), key[0].as_str().unwrap().into());
        function
            .environment
            .insert("AWS_SECRET_ACCESS_KEY".into(), key[1].as_str().unwrap().into());
    }
    let backends = setup.provision().await;
    moto.python(ENFORCE, &json!(null));

    // Enforcement is live: each role is refused what its policy leaves out.
    let denied = |binary: &str| {
        let key = &keys[binary];
        aws_sdk_s3::config::Credentials::new(key[0].as_str().unwrap(), key[1].as_str().unwrap(), None, None, "test")
    };
    let sdk = sluice_core::aws::sdk_config(&setup.config.aws).await;
    let bucket = setup.config.aws.bucket.clone().unwrap();
    let detect_s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .credentials_provider(denied("sluice-pii-detect"))
            .force_path_style(true)
            .build(),
    );
    let refused = detect_s3
        .put_object()
        .bucket(&bucket)
        .key("raw/orders/x/orders.csv")
        .body(Vec::new().into())
        .send()
        .await
        .expect_err("pii-detect may not write originals");
    assert!(format!("{refused:?}").contains("AccessDenied"), "{refused:?}");
    let stage_dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .credentials_provider(denied("sluice-stage"))
            .build(),
    );
    let refused = stage_dynamodb
        .scan()
        .table_name(&setup.config.aws.records_table)
        .send()
        .await
        .expect_err("the stage function may not read records");
    assert!(format!("{refused:?}").contains("AccessDenied"), "{refused:?}");

    let pipeline = setup.pipeline(&backends, binaries).await;
    let output = real_binaries::run_with_first_consent(&pipeline, &google).await;
    fixture_dataset::assert_fixture_dataset(&backends, &output).await;
    fixture_dataset::assert_consumer_key_works(&setup.config, &backends).await;
}
