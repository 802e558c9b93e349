//! Values sealed here open with two independent implementations of the controller's decryption:
//! one written on Python's `cryptography` (installed with moto by `scripts/install-peers`),
//! which also makes the key pair and a self-signed certificate like the controller's, and PyPI's
//! `aes-gcm-rsa-oaep`; both decrypt what Berth sealed, in every scope, and a value sealed for
//! one name or namespace opens for no other.

use std::process::Command;

use berth_gitops::seal::{Scope, SealingKey};
use berth_testkit::{TempDir, peer};
use serde_json::{Value, json};

const ORACLE: &str = r#"
import base64, datetime, json, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

cmd, d = sys.argv[1], sys.argv[2]
if cmd == "keys":
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    open(f"{d}/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(f"{d}/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    open(f"{d}/pub.pem", "wb").write(key.public_key().public_bytes(serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo))
else:
    key = serialization.load_pem_private_key(open(f"{d}/key.pem", "rb").read(), None)
    out = []
    for item in json.load(open(f"{d}/sealed.json")):
        raw = base64.b64decode(item["sealed"])
        n = int.from_bytes(raw[:2], "big")
        def open_with(label):
            try:
                session = key.decrypt(raw[2:2 + n], padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                    algorithm=hashes.SHA256(), label=label.encode()))
                return AESGCM(session).decrypt(b"\0" * 12, raw[2 + n:], None).decode()
            except Exception:
                return None
        def second(label):
            # The second oracle: PyPI's aes-gcm-rsa-oaep, another implementation of the format.
            from aes_gcm_rsa_oaep import decrypt
            try:
                return decrypt(raw, key, label.encode()).decode()
            except Exception:
                return None
        out.append({"opened": open_with(item["label"]), "other": open_with(item["other"]),
                    "second": second(item["label"]), "second_other": second(item["other"])})
    print(json.dumps(out))
"#;

fn oracle(python: &std::path::Path, cmd: &str, dir: &std::path::Path) -> String {
    let out = Command::new(python)
        .args(["-c", ORACLE, cmd])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sealed_values_open_with_an_independent_decryptor_in_their_scope_only() {
    let Some(python) = peer("python") else {
        return;
    };
    let dir = TempDir::new("sealing");
    oracle(&python, "keys", dir.path());
    let from_cert =
        SealingKey::from_pem(&std::fs::read_to_string(dir.path().join("cert.pem")).unwrap())
            .unwrap();
    let from_key =
        SealingKey::from_pem(&std::fs::read_to_string(dir.path().join("pub.pem")).unwrap())
            .unwrap();
    let value = "{\"auths\":{\"123456789012.dkr.ecr.us-east-1.amazonaws.com\":{}}}";
    let cases = [
        (
            &from_cert,
            Scope::Strict,
            "berth/ecr-prod",
            "berth/ecr-other",
        ),
        (&from_key, Scope::Strict, "berth/ecr-prod", "other/ecr-prod"),
        (&from_cert, Scope::NamespaceWide, "berth", "other"),
        (&from_cert, Scope::ClusterWide, "", "berth"),
    ];
    let mut sealed = Vec::new();
    for (key, scope, label, other) in cases {
        assert_eq!(scope.label("berth", "ecr-prod"), label);
        let text = key
            .seal(scope, "berth", "ecr-prod", value.as_bytes())
            .unwrap();
        assert!(
            text.starts_with("Ag"),
            "a 4096-bit key's values start with Ag"
        );
        sealed.push(json!({"sealed": text, "label": label, "other": other}));
    }
    let again = from_cert
        .seal(Scope::Strict, "berth", "ecr-prod", value.as_bytes())
        .unwrap();
    assert_ne!(
        again, sealed[0]["sealed"],
        "every value gets a fresh session key"
    );
    std::fs::write(
        dir.path().join("sealed.json"),
        Value::Array(sealed).to_string(),
    )
    .unwrap();
    let answer: Value = serde_json::from_str(&oracle(&python, "open", dir.path())).unwrap();
    let expected = json!({"opened": value, "other": null, "second": value, "second_other": null});
    assert_eq!(answer, json!([expected, expected, expected, expected]));
    assert!(
        SealingKey::from_pem("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----")
            .is_err()
    );
}

/// The files of an integration shared with two runtimes validate against the Kubernetes
/// schemas (`kubernetes-validate`, strict), and the SealedSecret opens for its own name only.
#[test]
fn rendered_resources_validate_and_their_secrets_open_for_the_runtime() {
    use berth_core::{AwsAuth, RoleSource, RuntimeScope};
    use berth_gitops::resources::{config_map, sealed_secret, targets};
    use std::collections::BTreeMap;

    let (Some(python), Some(validate)) = (peer("python"), peer("kubernetes-validate")) else {
        return;
    };
    let dir = TempDir::new("resources");
    oracle(&python, "keys", dir.path());
    let key = SealingKey::from_pem(&std::fs::read_to_string(dir.path().join("cert.pem")).unwrap())
        .unwrap();
    let mut integration = berth_testkit::integration::EcrFixture::new("ECR_Prod")
        .auth(AwsAuth::AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/ci-push".into(),
            external_id: Some("ext-42".into()),
            session_name: None,
            source: RoleSource::Ambient,
        })
        .version(7)
        .build();
    integration.runtimes = RuntimeScope::Selected(vec![
        berth_core::Name::parse("r", "prod-eu").unwrap(),
        berth_core::Name::parse("r", "Staging_1").unwrap(),
    ]);
    let values = BTreeMap::from([("externalId".to_owned(), "ext-42".to_owned())]);
    let mut paths = Vec::new();
    let mut sealed = Vec::new();
    for target in targets(&integration.runtimes) {
        let cm = config_map(&integration, "codefresh", &target);
        let ss = sealed_secret(&integration, "codefresh", &target, &key, &values)
            .unwrap()
            .expect("a role with an external id has a secret");
        assert!(cm.path.starts_with("resources/runtimes/") && cm.path.ends_with(".configmap.yaml"));
        assert!(
            cm.yaml.contains("berth.io/revision: '7'")
                || cm.yaml.contains("berth.io/revision: \"7\""),
            "{}",
            cm.yaml
        );
        assert!(
            cm.yaml.contains("externalIdRef") && !cm.yaml.contains("ext-42"),
            "{}",
            cm.yaml
        );
        assert!(!ss.yaml.contains("ext-42"), "the secret is only sealed");
        let doc: Value = yaml_serde::from_str(&ss.yaml).unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
        // The template as the Secret the controller will make, for the schema check.
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": doc["spec"]["template"]["metadata"], "data": {"externalId": "ZXh0LTQy"}});
        for (file, text) in [
            (format!("{name}-{}.cm.yaml", paths.len()), cm.yaml.clone()),
            (
                format!("{name}-{}.secret.yaml", paths.len()),
                yaml_serde::to_string(&secret).unwrap(),
            ),
        ] {
            let path = dir.path().join(file);
            std::fs::write(&path, text).unwrap();
            paths.push(path);
        }
        sealed.push(json!({"sealed": doc["spec"]["encryptedData"]["externalId"],
            "label": format!("codefresh/{name}"), "other": "codefresh/another"}));
    }
    assert_eq!(paths.len(), 4, "two runtimes, two files each");
    let out = Command::new(validate)
        .arg("--strict")
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        dir.path().join("sealed.json"),
        Value::Array(sealed).to_string(),
    )
    .unwrap();
    let answer: Value = serde_json::from_str(&oracle(&python, "open", dir.path())).unwrap();
    let opened =
        json!({"opened": "ext-42", "other": null, "second": "ext-42", "second_other": null});
    assert_eq!(answer, json!([opened, opened]));
}
