//! `deploy`: pre-flight refusals, the derived revision, following by id, alarm overrides.

use super::world::*;
use super::*;

#[tokio::test]
async fn a_good_deployment_registers_the_derived_revision_and_follows_it_to_success() {
    let (r, calls, lines) = run(World::default(), request(eleven())).await;
    let d = r.unwrap();
    assert_eq!(d.task_definition, NEW_TD);
    assert_eq!(d.deployment_id, "d-NEW");
    assert_eq!(
        d.outcome,
        Some(Outcome::Succeeded {
            deployment_id: "d-NEW".into()
        })
    );

    // Exactly one revision: the stack's (the template's settings) with the image and the
    // architecture, whatever the revision the service ran before.
    let reg = calls.registered.lock().unwrap();
    assert_eq!(reg.len(), 1);
    let base = stack_task_definition();
    let r = &reg[0];
    assert_eq!(r.family(), base.family());
    assert_eq!(r.task_role_arn(), base.task_role_arn());
    assert_eq!(r.execution_role_arn(), base.execution_role_arn());
    assert_eq!(r.network_mode(), base.network_mode());
    assert_eq!(r.cpu(), Some("2048"));
    assert_eq!(r.memory(), Some("4096"));
    assert_eq!(r.volumes(), base.volumes());
    assert_eq!(
        r.requires_compatibilities(),
        base.requires_compatibilities()
    );
    assert_eq!(
        r.runtime_platform(),
        base.runtime_platform(),
        "ARM64 stays ARM64"
    );
    assert_eq!(r.tags().len(), 1, "the revision keeps the tags");
    let defs = r.container_definitions();
    assert_eq!(defs.len(), 2);
    assert_eq!(defs[0].image(), Some(IMAGE));
    let mut expected = base.container_definitions()[0].clone();
    expected.image = Some(IMAGE.into());
    assert_eq!(
        defs[0], expected,
        "only the image of the service container changed: the template's StopTimeout and idle timeout come with it"
    );
    assert_eq!(defs[0].stop_timeout(), Some(30));
    assert_eq!(
        defs[1],
        base.container_definitions()[1],
        "sidecars untouched"
    );

    // One deployment, with the AppSpec naming the new revision, the strategy and the gates.
    let created = calls.created.lock().unwrap();
    assert_eq!(created.len(), 1);
    let c = &created[0];
    assert_eq!(c.application_name(), Some(APP));
    assert_eq!(c.deployment_group_name(), Some(GROUP));
    assert_eq!(
        c.deployment_config_name(),
        None,
        "the group's canary config"
    );
    assert!(c.override_alarm_configuration().is_none());
    let appspec = c
        .revision()
        .and_then(|r| r.app_spec_content())
        .and_then(|a| a.content())
        .unwrap();
    assert!(appspec.contains(NEW_TD));
    assert!(appspec.contains("CapacityProvider: FARGATE"));
    // The template's network settings and platform version ride with every deployment.
    assert!(appspec.contains("subnet-0a1b2c3d4e5f60002"), "{appspec}");
    assert!(appspec.contains("sg-0a1b2c3d4e5f60010"), "{appspec}");
    assert!(appspec.contains("AssignPublicIp: DISABLED"), "{appspec}");
    assert!(appspec.contains("PlatformVersion: LATEST"), "{appspec}");
    assert!(appspec.contains("AfterAllowTestTraffic: CodeDeployHook_orderbroker-test"));

    // Followed by id until it succeeded, with lifecycle events and traffic shown.
    let polled = calls.polled.lock().unwrap();
    assert!(polled.iter().all(|id| id == "d-NEW"));
    assert_eq!(polled.len(), 4, "Created, InProgress x2, Succeeded");
    let text = lines.join("\n");
    assert!(text.contains("pre-flight: image"), "{text}");
    assert!(text.contains("linux/arm64"), "{text}");
    assert!(
        text.contains("Fargate On-Demand vCPU: the peak needs 28 more (14 x 2: both task sets at MaxTasks 10, 6 running now)"),
        "{text}"
    );
    assert!(
        text.contains("d-NEW: AfterAllowTestTraffic Succeeded"),
        "{text}"
    );
    assert!(
        text.contains("d-NEW: traffic Blue 100% (6/6 running, orderb-Blue)"),
        "{text}"
    );
    assert!(text.contains("d-NEW: deployment Succeeded"), "{text}");
}

#[tokio::test]
async fn a_failed_deployment_without_rollback_ends_with_the_reason() {
    let w = World {
        statuses: HashMap::from([("d-NEW".to_string(), vec!["InProgress", "Failed"])]),
        failed_event: Some("AfterAllowTestTraffic"),
        ..World::default()
    };
    let (r, _calls, _) = run(w, request(eleven())).await;
    match r.unwrap().outcome.unwrap() {
        Outcome::Failed {
            deployment_id,
            status,
            reason,
        } => {
            assert_eq!(deployment_id, "d-NEW");
            assert_eq!(status, "Failed");
            assert!(
                reason.contains("lifecycle event AfterAllowTestTraffic failed"),
                "{reason}"
            );
            assert!(
                reason.contains("3 synthetic orders answered 500"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_rolled_back_deployment_is_followed_through_its_rollback_id() {
    let w = World {
        statuses: HashMap::from([
            ("d-NEW".to_string(), vec!["InProgress", "Failed"]),
            (
                "d-ROLLBACK".to_string(),
                vec!["Created", "InProgress", "Succeeded"],
            ),
        ]),
        rollback_of: HashMap::from([("d-NEW".to_string(), "d-ROLLBACK".to_string())]),
        failed_event: Some("AfterAllowTestTraffic"),
        ..World::default()
    };
    let (r, calls, lines) = run(w, request(eleven())).await;
    let outcome = r.unwrap().outcome.unwrap();
    assert!(
        !outcome.succeeded(),
        "a rollback is a failed deployment: exit 1"
    );
    match &outcome {
        Outcome::RolledBack {
            deployment_id,
            reason,
            rollback_id,
            rollback_status,
        } => {
            assert_eq!(deployment_id, "d-NEW");
            assert_eq!(rollback_id, "d-ROLLBACK");
            assert_eq!(rollback_status, "Succeeded");
            assert!(reason.contains("AfterAllowTestTraffic"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(outcome
        .describe()
        .contains("the previous version holds all traffic"));
    let polled = calls.polled.lock().unwrap();
    assert_eq!(
        polled.iter().filter(|i| *i == "d-ROLLBACK").count(),
        3,
        "the rollback is followed by its own id to the end"
    );
    let text = lines.join("\n");
    assert!(
        text.contains("following rollback deployment d-ROLLBACK"),
        "{text}"
    );
    assert!(text.contains("d-ROLLBACK: deployment Succeeded"), "{text}");
}

#[tokio::test]
async fn a_second_deployment_while_one_is_in_progress_is_refused_before_any_write() {
    let w = World {
        active: vec!["d-RUNNING".into()],
        statuses: HashMap::from([("d-RUNNING".to_string(), vec!["InProgress"])]),
        ..World::default()
    };
    let (r, calls, _) = run(w, request(eleven())).await;
    let e = r.unwrap_err();
    assert!(
        matches!(&e, DeployError::InProgress { id, status, .. } if id == "d-RUNNING" && status == "InProgress")
    );
    let text = e.to_string();
    assert!(
        text.contains("orderbroker rollback --deployment d-RUNNING"),
        "{text}"
    );
    assert!(calls.registered.lock().unwrap().is_empty());
    assert!(calls.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_window_guard_refuses_near_the_open_and_the_close_unless_forced() {
    // Raise at 09:17 New York, margin 20 min: 08:56 is fine, 08:58 is refused; 09:45 refused;
    // 15:00 refused (close raise 15:17); 13:00 fine; 16:20 fine.
    for (hm, refused) in [
        ("08:56", false),
        ("08:58", true),
        ("09:45", true),
        ("13:00", false),
        ("15:00", true),
        ("16:20", false),
    ] {
        let (r, calls, _) = run(World::default(), request(ny("2026-11-30", hm))).await;
        match (r, refused) {
            (Err(DeployError::SpikeWindow { spike, .. }), true) => {
                assert!(spike == "open" || spike == "close");
                assert!(calls.created.lock().unwrap().is_empty(), "{hm}");
            }
            (Ok(_), false) => {}
            (other, _) => panic!("{hm}: {other:?}"),
        }
    }
    // The day after Thanksgiving closes at 13:00: its close window is 12:17-13:15.
    let (r, _, _) = run(World::default(), request(ny("2026-11-27", "12:30"))).await;
    assert!(matches!(r, Err(DeployError::SpikeWindow { .. })), "{r:?}");
    // A holiday has no windows.
    let (r, _, _) = run(World::default(), request(ny("2026-11-26", "09:30"))).await;
    assert!(r.is_ok(), "{r:?}");
    // --force deploys, saying so.
    let mut req = request(ny("2026-11-30", "09:45"));
    req.force = true;
    let (r, calls, lines) = run(World::default(), req).await;
    assert!(r.is_ok());
    assert_eq!(calls.created.lock().unwrap().len(), 1);
    assert!(lines
        .iter()
        .any(|l| l.contains("--force: deploying despite")));
}

#[tokio::test]
async fn an_image_without_the_platform_is_refused_before_any_write() {
    let w = World {
        manifest: (
            "application/vnd.oci.image.index.v1+json".into(),
            index_manifest(&["amd64"]),
        ),
        ..World::default()
    };
    let (r, calls, _) = run(w.clone(), request(eleven())).await;
    let e = r.unwrap_err();
    assert!(
        matches!(&e, DeployError::WrongPlatform { wanted, has, .. } if wanted == "arm64" && has == "linux/amd64"),
        "{e}"
    );
    assert!(calls.registered.lock().unwrap().is_empty());
    // The same image is fine for X86_64 (the stack's strategy has no Spot share).
    let mut req = request(eleven());
    req.arch = Some("X86_64".into());
    let (r, calls, _) = run(w, req).await;
    r.unwrap();
    let platform = calls.registered.lock().unwrap()[0]
        .runtime_platform()
        .cloned()
        .unwrap();
    assert_eq!(
        platform.cpu_architecture(),
        Some(&ecs::types::CpuArchitecture::X8664)
    );
    // A tag that does not exist.
    let mut req = request(eleven());
    req.image = IMAGE.replace("1.4.2", "missing");
    let (r, _, _) = run(World::default(), req).await;
    assert!(matches!(r, Err(DeployError::ImageNotFound { .. })), "{r:?}");
    // Not ECR.
    let mut req = request(eleven());
    req.image = "docker.io/library/orderbroker:1".into();
    let (r, _, _) = run(World::default(), req).await;
    assert!(matches!(r, Err(DeployError::NotEcrImage(_))), "{r:?}");
}

#[tokio::test]
async fn a_single_platform_image_is_checked_through_its_config_blob() {
    use crate::support::{serve, Behaviour};
    for (arch, ok) in [("arm64", true), ("amd64", false)] {
        let body = format!(r#"{{"architecture":"{arch}","os":"linux","config":{{}}}}"#);
        let b: Behaviour = Arc::new(move |_, _| (200, body.clone(), Duration::ZERO));
        let server = serve(b).await;
        let manifest = serde_json::json!({"schemaVersion":2,
            "mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,
                "digest":format!("sha256:{}", "3".repeat(64))},
            "layers":[]})
        .to_string();
        let w = World {
            manifest: (
                "application/vnd.docker.distribution.manifest.v2+json".into(),
                manifest,
            ),
            config_url: Some(format!("{}/blob?X-Amz-Signature=secret", server.url)),
            ..World::default()
        };
        let (r, _, _) = run(w, request(eleven())).await;
        match (r, ok) {
            (Ok(_), true) => {}
            (Err(e @ DeployError::WrongPlatform { .. }), false) => {
                assert!(!e.to_string().contains("secret"), "never the presigned URL");
            }
            (other, _) => panic!("{arch}: {other:?}"),
        }
        assert_eq!(server.seen.lock().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn the_quota_check_refuses_a_deployment_whose_peak_does_not_fit() {
    // Both task sets at MaxTasks 10, 6 running now: 14 more x 2 vCPU = 28 needed; quota 130 -
    // usage 120 = 10 free.
    let w = World {
        quota: 130.0,
        ..World::default()
    };
    let (r, calls, _) = run(w.clone(), request(eleven())).await;
    match r {
        Err(DeployError::Quota {
            needed,
            headroom,
            code,
            ..
        }) => {
            assert_eq!(needed, 28.0);
            assert_eq!(headroom, 10.0);
            assert_eq!(code, "L-3032A538");
        }
        other => panic!("{other:?}"),
    }
    assert!(calls.registered.lock().unwrap().is_empty());
    // No usage datapoint: refused as unknown, not assumed zero.
    let w2 = World {
        usage: None,
        ..World::default()
    };
    let (r, _, _) = run(w2, request(eleven())).await;
    assert!(matches!(r, Err(DeployError::UsageUnknown { .. })), "{r:?}");
    // --force goes past it, saying so.
    let mut req = request(eleven());
    req.force = true;
    let (r, _, lines) = run(w, req).await;
    assert!(r.is_ok());
    assert!(lines
        .iter()
        .any(|l| l.contains("--force") && l.contains("L-3032A538")));
}

#[tokio::test]
async fn force_gets_past_an_unreadable_quota_as_its_help_says() {
    let denied = || World {
        quota_denied: true,
        ..World::default()
    };
    let (r, calls, _) = run(denied(), request(eleven())).await;
    let e = r.unwrap_err();
    assert!(
        e.to_string().contains("servicequotas:GetServiceQuota"),
        "names the call: {e}"
    );
    assert!(calls.registered.lock().unwrap().is_empty());
    let mut req = request(eleven());
    req.force = true;
    let (r, calls, lines) = run(denied(), req).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(calls.registered.lock().unwrap().len(), 1);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("--force: deploying despite") && l.contains("GetServiceQuota")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn override_alarms_ignores_only_the_firing_alarms_and_says_so() {
    let w = World {
        firing: vec!["ob-5xx"],
        ..World::default()
    };
    let mut req = request(eleven());
    req.override_alarms = true;
    req.wait = false;
    let (r, calls, lines) = run(w, req).await;
    assert!(
        r.unwrap().outcome.is_none(),
        "no --wait: created, not followed"
    );
    let created = calls.created.lock().unwrap();
    let cfg = created[0].override_alarm_configuration().unwrap();
    assert!(cfg.enabled());
    let names: Vec<&str> = cfg.alarms().iter().filter_map(|a| a.name()).collect();
    assert_eq!(names, ["ob-p99", "ob-heap"]);
    let loud = lines
        .iter()
        .find(|l| l.starts_with("!!! --override-alarms"))
        .unwrap();
    assert!(
        loud.contains("IGNORES 1 firing") && loud.contains("ob-5xx"),
        "{loud}"
    );
    assert!(calls.polled.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_declared_market_event_window_is_refused_like_the_open() {
    let cpi = crate::support::cpi_event("2026-12-02");
    let mut req = request(ny("2026-12-02", "08:05"));
    req.events = vec![cpi];
    let (r, calls, _) = run(World::default(), req).await;
    match r {
        Err(DeployError::SpikeWindow { spike, detail }) => {
            assert_eq!(spike, "event");
            assert!(detail.contains("08:30-09:00"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(calls.registered.lock().unwrap().is_empty());
    // The same time without the event deploys.
    let (r, _, _) = run(World::default(), request(ny("2026-12-02", "08:05"))).await;
    assert!(r.is_ok(), "{r:?}");
}
