//! The custom-resource protocol: a local server on 127.0.0.1 plays the presigned ResponseURL and
//! must receive exactly one well-formed answer on every path.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{serve, Behaviour, Server};
use orderbroker::cfn::custom_resource::{handle, ResponseUrl, Success, MAX_BODY};
use serde_json::{Map, Value};

fn event(name: &str, server: &Server) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v["ResponseURL"] = Value::from(format!(
        "{}/cfn-response?X-Amz-Signature=secret-signature",
        server.url
    ));
    v
}

async fn ok_server() -> Server {
    let b: Behaviour = Arc::new(|_: &str, _: usize| (200u16, String::new(), Duration::ZERO));
    serve(b).await
}

/// The PUT bodies the server received.
fn answers(s: &Server) -> Vec<Value> {
    s.seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r.method, "PUT");
            assert!(
                r.header("content-type").is_none(),
                "presigned PUT: no Content-Type"
            );
            assert!(r.body.len() <= MAX_BODY);
            serde_json::from_str(&r.body).unwrap()
        })
        .collect()
}

fn success(id: &str) -> Result<Success, String> {
    let mut data = Map::new();
    data.insert("Compliant".into(), Value::from(41));
    Ok(Success {
        physical_resource_id: id.into(),
        data,
    })
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn echoes(answer: &Value, ev: &Value) {
    for k in ["StackId", "RequestId", "LogicalResourceId"] {
        assert_eq!(answer[k], ev[k], "{k} echoed");
    }
}

#[tokio::test]
async fn create_update_delete_each_get_exactly_one_success() {
    let http = reqwest::Client::new();
    for (name, id) in [
        ("cfn-create.json", "tag-policy:orderbroker"),
        ("cfn-update.json", "tag-policy:orderbroker"),
        ("cfn-delete.json", "tag-policy:orderbroker"),
    ] {
        let s = ok_server().await;
        let ev = event(name, &s);
        let out = handle(
            ev.clone(),
            &http,
            deadline(),
            Duration::from_secs(5),
            move |req, _| async move {
                if let Some(old) = &req.physical_resource_id {
                    assert_eq!(old, "tag-policy:orderbroker");
                }
                success(id)
            },
        )
        .await
        .unwrap();
        let a = answers(&s);
        assert_eq!(a.len(), 1, "{name}");
        assert_eq!(a[0]["Status"], "SUCCESS");
        assert_eq!(
            a[0]["PhysicalResourceId"], "tag-policy:orderbroker",
            "stable across updates"
        );
        assert_eq!(a[0]["Data"]["Compliant"], 41);
        echoes(&a[0], &ev);
        assert_eq!(out.put_attempts, 1);
    }
}

#[tokio::test]
async fn a_handler_error_is_failed_with_its_reason_and_a_marker_id_on_create() {
    let s = ok_server().await;
    let ev = event("cfn-create.json", &s);
    handle(
        ev.clone(),
        &reqwest::Client::new(),
        deadline(),
        Duration::from_secs(5),
        |_, _| async { Err("CostCenter is empty".to_string()) },
    )
    .await
    .unwrap();
    let a = answers(&s);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["Status"], "FAILED");
    assert_eq!(a[0]["Reason"], "CostCenter is empty");
    assert_eq!(
        a[0]["PhysicalResourceId"],
        "failed-create:8a4f3c1e-7f6b-4d2a-9e1c-2b3a4c5d6e7f"
    );
    echoes(&a[0], &ev);
}

#[tokio::test]
async fn a_failed_update_keeps_the_current_id() {
    let s = ok_server().await;
    handle(
        event("cfn-update.json", &s),
        &reqwest::Client::new(),
        deadline(),
        Duration::from_secs(5),
        |_, _| async { Err("boom".to_string()) },
    )
    .await
    .unwrap();
    assert_eq!(
        answers(&s)[0]["PhysicalResourceId"],
        "tag-policy:orderbroker"
    );
}

#[tokio::test]
async fn a_panic_is_answered_failed() {
    let s = ok_server().await;
    handle(
        event("cfn-create.json", &s),
        &reqwest::Client::new(),
        deadline(),
        Duration::from_secs(5),
        |_, _| async {
            if std::hint::black_box(true) {
                panic!("tag map was empty");
            }
            success("x")
        },
    )
    .await
    .unwrap();
    let a = answers(&s);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["Status"], "FAILED");
    assert!(a[0]["Reason"]
        .as_str()
        .unwrap()
        .contains("panicked: tag map was empty"));
}

#[tokio::test]
async fn the_deadline_is_answered_before_the_lambda_times_out() {
    let s = ok_server().await;
    let lambda_deadline = Instant::now() + Duration::from_secs(3);
    handle(
        event("cfn-create.json", &s),
        &reqwest::Client::new(),
        lambda_deadline,
        Duration::from_secs(2),
        |_, _| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            success("x")
        },
    )
    .await
    .unwrap();
    assert!(Instant::now() < lambda_deadline);
    let a = answers(&s);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["Status"], "FAILED");
    assert!(a[0]["Reason"].as_str().unwrap().contains("deadline"));
}

#[tokio::test]
async fn a_malformed_request_is_answered_failed_without_calling_the_handler() {
    let s = ok_server().await;
    let ev = event("cfn-malformed.json", &s);
    handle(
        ev.clone(),
        &reqwest::Client::new(),
        deadline(),
        Duration::from_secs(5),
        |_, _| async {
            panic!("the handler must not run");
        },
    )
    .await
    .unwrap();
    let a = answers(&s);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["Status"], "FAILED");
    assert!(
        a[0]["Reason"].as_str().unwrap().contains("ResourceType"),
        "{}",
        a[0]["Reason"]
    );
    echoes(&a[0], &ev);
}

#[tokio::test]
async fn the_delete_after_a_failed_create_is_a_no_op_success() {
    let s = ok_server().await;
    handle(
        event("cfn-delete-after-failed-create.json", &s),
        &reqwest::Client::new(),
        deadline(),
        Duration::from_secs(5),
        |_, _| async { panic!("nothing was created: the handler must not run") },
    )
    .await
    .unwrap();
    let a = answers(&s);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["Status"], "SUCCESS");
    assert_eq!(
        a[0]["PhysicalResourceId"],
        "failed-create:8a4f3c1e-7f6b-4d2a-9e1c-2b3a4c5d6e7f"
    );
}

#[tokio::test]
async fn a_long_reason_and_large_data_stay_within_4096_bytes() {
    let s = ok_server().await;
    handle(
        event("cfn-create.json", &s),
        &reqwest::Client::new(),
        deadline(),
        Duration::from_secs(5),
        |_, _| async { Err("x".repeat(20_000)) },
    )
    .await
    .unwrap();
    let len = s.seen.lock().unwrap()[0].body.len();
    assert!(len <= MAX_BODY, "{len}");
    let s = ok_server().await;
    handle(
        event("cfn-create.json", &s),
        &reqwest::Client::new(),
        deadline(),
        Duration::from_secs(5),
        |_, _| async {
            let mut data = Map::new();
            data.insert("Failed".into(), Value::from("y".repeat(10_000)));
            Ok(Success {
                physical_resource_id: "p".into(),
                data,
            })
        },
    )
    .await
    .unwrap();
    let a = answers(&s);
    assert_eq!(a[0]["Status"], "SUCCESS");
    assert!(a[0]["Data"]["Truncated"].is_string());
    assert!(
        a[0]["Data"]["Failed"].is_string(),
        "the key stays, shortened"
    );

    // The tag policy's own shape with ten long IAM error texts: the counts the template reads
    // (`!GetAtt TagPolicy.Compliant/Fixed/Failed`) survive whole, every key stays, the body fits.
    let iam = "arn:aws:iam::111122223333:role/orderbroker-TagEnforcerFunctionRole-1A2B3C4D5E6F is not authorized to perform: elasticloadbalancing:AddTags on resource: arn:aws:elasticloadbalancing:us-east-2:111122223333:targetgroup/orderb-Green-1XQ4Z0KJ3W9YB/73e2d6bc24d8a067 because no identity-based policy allows the elasticloadbalancing:AddTags action (Service: ElasticLoadBalancingV2, Status Code: 403, Request ID: 5c3f0b8e-2a1d-4e6f-9b7c-0d1e2f3a4b5c)";
    let failures: Vec<String> = (0..10).map(|i| format!("resource {i}: {iam}")).collect();
    let s = ok_server().await;
    let errors = failures.join("; ");
    handle(
        event("cfn-create.json", &s),
        &reqwest::Client::new(),
        deadline(),
        Duration::from_secs(5),
        move |_, _| async move {
            let data = match serde_json::json!({
                "Compliant": false,
                "Fixed": 12,
                "Failed": 10,
                "Untaggable": 23,
                "Errors": errors.clone(),
                "FirstFailures": errors,
            }) {
                Value::Object(m) => m,
                _ => unreachable!(),
            };
            Ok(Success {
                physical_resource_id: "tag-policy:TagPolicy".into(),
                data,
            })
        },
    )
    .await
    .unwrap();
    let len = s.seen.lock().unwrap()[0].body.len();
    assert!(len > 0 && len <= MAX_BODY, "{len}");
    let a = answers(&s);
    let d = &a[0]["Data"];
    assert_eq!(
        (&d["Compliant"], &d["Fixed"], &d["Failed"], &d["Untaggable"]),
        (
            &Value::from(false),
            &Value::from(12),
            &Value::from(10),
            &Value::from(23)
        )
    );
    for key in ["Errors", "FirstFailures", "Truncated"] {
        assert!(d[key].is_string(), "{key} present");
    }
    assert!(d["Errors"]
        .as_str()
        .unwrap()
        .starts_with("resource 0: arn:aws:iam"));
}

#[tokio::test]
async fn the_answer_put_is_retried_until_delivered() {
    let b: Behaviour = Arc::new(|_: &str, n: usize| {
        (
            if n < 3 { 503u16 } else { 200 },
            String::new(),
            Duration::ZERO,
        )
    });
    let s = serve(b).await;
    let out = handle(
        event("cfn-create.json", &s),
        &reqwest::Client::new(),
        deadline(),
        Duration::from_secs(5),
        |_, _| async { success("tag-policy:orderbroker") },
    )
    .await
    .unwrap();
    assert_eq!(out.put_attempts, 3);
    let a = answers(&s);
    assert_eq!(a.len(), 3, "two refused, one delivered");
    assert!(a
        .iter()
        .all(|x| x["Status"] == "SUCCESS" && x["RequestId"] == a[0]["RequestId"]));
}

#[tokio::test]
async fn an_event_without_a_response_url_cannot_be_answered() {
    let s = ok_server().await;
    let mut ev = event("cfn-create.json", &s);
    ev.as_object_mut().unwrap().remove("ResponseURL");
    ev.as_object_mut().unwrap().remove("ResourceType");
    let err = handle(
        ev,
        &reqwest::Client::new(),
        deadline(),
        Duration::from_secs(5),
        |_, _| async { success("x") },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("nothing can be answered"));
    assert!(s.seen.lock().unwrap().is_empty());
}

#[test]
fn the_response_url_never_prints() {
    let u = ResponseUrl::new("https://bucket.s3.amazonaws.com/x?X-Amz-Signature=secret");
    assert!(!format!("{u:?} {u}").contains("secret"));
}
